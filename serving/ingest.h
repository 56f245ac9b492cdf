/*
 * Push and write-to-online-store, whatever the transport (HTTP.md §6-§8): a
 * frame of named columns becomes, for each target view, the rows Feast would
 * write — join keys from the view's entity columns, features by declared
 * type, event and created timestamps from the batch source's columns — and
 * every view's rows are written in one transaction through the backend's
 * write, the path OnlineWriteBatch takes. Nothing is written unless every
 * row of every view converts.
 */
#ifndef LDR_INGEST_H
#define LDR_INGEST_H

#include <stddef.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/rc.h"
#include "config/config.h"
#include "feast/types/Value.pb-c.h"
#include "registry/registry.h"

/* A column-oriented frame in the transport's form (a JSON object of arrays,
 * a map of text, a map of Values). */
struct ldr_frame {
  size_t n_rows;
  size_t n_cols;
  const char *const *names; /* the columns' names */
  const void *data;         /* the transport's */
  const char *field;        /* how messages name the frame: "df", "features" */
  /* Cell (col, row) as a Value of `type` (0: inferred), in `a`; *out NULL
   * for a null cell. LDR_INVALID with a message without the field. */
  enum ldr_rc (*value)(const struct ldr_frame *f, size_t col, size_t row, int type, int key,
                       struct ldr_arena *a, Feast__Types__Value **out, struct ldr_err *err);
  /* Cell (col, row) as a timestamp; *has 0 for a null cell. */
  enum ldr_rc (*timestamp)(const struct ldr_frame *f, size_t col, size_t row, int *has,
                           struct ldr_ts *out, struct ldr_err *err);
  /* Nonzero when column `col` is one cell for every row (pandas broadcasts a
   * scalar): it is converted once, not once per row. NULL: no column is. */
  int (*broadcast)(const struct ldr_frame *f, size_t col);
};

/* Why an ingest was refused, beyond its status, for HTTP's error classes. */
enum ldr_ingest_fault {
  LDR_INGEST_FAULT_NONE,
  LDR_INGEST_NO_PUSH_SOURCE, /* no view is fed by that push source */
  LDR_INGEST_NO_VIEW,        /* write-to-online-store: no such view */
  LDR_INGEST_TRANSFORM,      /* an on-demand view with transform_on_write: true */
};

struct ldr_ingest_env {
  const struct ldr_config *cfg;
  const struct ldr_registry *reg;
  struct ldr_backend *backend;
  struct ldr_arena *arena;
};

struct ldr_ingest_result {
  size_t views_written;
  size_t rows_written; /* over all views */
  enum ldr_ingest_fault fault;
  int wrote; /* the backend was called: for metrics */
  int64_t write_start_ns;
};

/* Writes `f` to every view fed by the push source `source` (§6). */
enum ldr_rc ldr_ingest_push(const struct ldr_ingest_env *env, const struct ldr_frame *f,
                            const char *source, struct ldr_ingest_result *out, struct ldr_err *err);

/* Writes `f` to the view `view` (§7): a feature view, stream feature view or
 * on-demand view stored online. `transform_on_write` is Feast's flag: an
 * on-demand view is only written with it false. */
enum ldr_rc ldr_ingest_write(const struct ldr_ingest_env *env, const struct ldr_frame *f,
                             const char *view, int transform_on_write,
                             struct ldr_ingest_result *out, struct ldr_err *err);

/* `to` of a push: LDR_OK for "online"; INVALID for the offline targets
 * (larder has none) and for anything else; `grpc` takes "" as online. */
enum ldr_rc ldr_ingest_check_to(const char *to, int grpc, struct ldr_err *err);

/*
 * pandas' to_datetime of a text (HTTP.md §6.3): YYYY-MM-DD, optionally 'T' or
 * ' ' and HH:MM[:SS[.fraction up to 9 digits]], optionally 'Z' or ±HH:MM or
 * ±HHMM; no offset is UTC. 0, or -1 when the text is not such a time or is
 * outside the years 0001-9999.
 */
int ldr_parse_iso8601(const char *s, size_t n, struct ldr_ts *out);

#endif
