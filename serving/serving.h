/*
 * GetOnlineFeatures, whatever the transport: a request of feature references
 * (or a feature service) and entity columns is resolved against the registry
 * by Feast's serving rules (SPEC §2.3, REGISTRY.md §7), every view it names is
 * read with one backend read, and the answer is a table of columns, each a
 * serialized Value, a status and a timestamp per entity row. gRPC
 * (service/serving.c) and HTTP (http/) decode their requests into this form
 * and encode the table each in its own way.
 */
#ifndef LDR_SERVING_H
#define LDR_SERVING_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/rc.h"
#include "config/config.h"
#include "feast/types/Value.pb-c.h"
#include "registry/registry.h"

/* feast.serving.FieldStatus */
enum { LDR_FIELD_PRESENT = 1, LDR_FIELD_NOT_FOUND = 3, LDR_FIELD_OUTSIDE_MAX_AGE = 4 };

/* One cell of the answer: a serialized feast.types.Value (len 0: the empty
 * Value), its status, and its event time (has_ts 0: the zero Timestamp). */
struct ldr_cell {
  const uint8_t *value;
  size_t len;
  int status;
  int has_ts;
  struct ldr_ts ts;
};

struct ldr_column {
  const char *name;
  struct ldr_cell *cells; /* one per row */
};

/*
 * An entity (or request_context) column of a request, in the transport's own
 * form: `data` is the transport's, `n` its number of values.
 */
struct ldr_serving_column {
  const char *name;
  size_t n;
  const void *data;
};

/*
 * Gives row `row` of `col` as a Value in *out (memory in `a`). `type` is the
 * join key's declared feast.types.ValueType, 0 when the registry declares
 * none: a transport with typed values (gRPC) returns them as they are, one
 * with untyped ones (JSON) converts to `type` or infers one. On a value that
 * cannot be converted: LDR_INVALID with a message that says why, without the
 * field (the caller prefixes it).
 */
typedef enum ldr_rc (*ldr_serving_value_fn)(const struct ldr_serving_column *col, size_t row,
                                            int type, struct ldr_arena *a,
                                            const Feast__Types__Value **out, struct ldr_err *err);

struct ldr_serving_request {
  const char *const *features; /* references "view:feature", "view@v2:feature" */
  size_t n_features;
  const char *feature_service; /* instead of features when not NULL */
  const struct ldr_serving_column *entities;
  size_t n_entities;
  const struct ldr_serving_column *context; /* request_context: lengths are checked, no more */
  size_t n_context;
  int full_feature_names;
  ldr_serving_value_fn value;
};

/* Why a request was refused, beyond its status, for transports that say more
 * (HTTP's error classes, HTTP.md §2). */
enum ldr_serving_fault {
  LDR_SERVING_FAULT_NONE,
  LDR_SERVING_NO_VIEW,    /* a reference names no feature view */
  LDR_SERVING_NO_SERVICE, /* no feature service of that name */
  LDR_SERVING_COLLISION,  /* two columns of one name */
};

/* A view the answer read, for Feast's feature_view_metadata. */
struct ldr_serving_view {
  const char *name; /* the alias or the view's name */
  int version;      /* the pinned version, else the view's current one (0 when unset) */
};

struct ldr_serving_result {
  size_t n_rows;
  size_t n_cols;
  struct ldr_column *cols; /* the join-key columns given, then the features */
  size_t n_views;
  const struct ldr_serving_view *views; /* distinct, in first-seen order */
  enum ldr_serving_fault fault;         /* set with an error */
  /* The backend read, for metrics: whether there was one, when it started
   * (ldr_now_ns) and how many keys it looked up. */
  int read;
  int64_t read_start_ns;
  size_t keys_read;
};

/* What a call brings: all of it outlives the result. */
struct ldr_serving_env {
  const struct ldr_config *cfg;
  const struct ldr_registry *reg;
  struct ldr_backend *backend;
  struct ldr_arena *arena;
};

/*
 * Answers `q` into `out`; everything the result points to lives in the
 * arena or the registry. Checks come in DESIGN §9's order: INVALID_ARGUMENT
 * (references, columns, values), FAILED_PRECONDITION (disabled views, a view
 * not AVAILABLE_ONLINE, a pinned version with versioning off, a registry that
 * names what it lacks), then UNIMPLEMENTED (on-demand views computed at
 * request time), all before anything is read; then the read's own errors.
 * Limits on sizes (rows, columns, bytes) are the transport's to check first.
 */
enum ldr_rc ldr_serving_get(const struct ldr_serving_env *env, const struct ldr_serving_request *q,
                            struct ldr_serving_result *out, struct ldr_err *err);

#endif
