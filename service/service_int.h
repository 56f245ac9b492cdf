/* What the files of service/ share: the method table and the handler context. */
#ifndef LDR_SERVICE_INT_H
#define LDR_SERVICE_INT_H

#include <grpc/slice.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/rc.h"
#include "config/config.h"
#include "registry/registry.h"

/* One call as a handler sees it. The request bytes and everything a handler
 * allocates live in `arena`; the reply is a slice the server sends and releases. */
struct ldr_handler_ctx {
  const struct ldr_config *cfg;
  struct ldr_backend *backend;
  struct ldr_arena *arena;
  const uint8_t *req;
  size_t req_len;
  grpc_slice reply; /* set on LDR_OK */
  struct ldr_err err;
  struct ldr_registry_source *registry; /* NULL when none is configured */
  size_t reader;                        /* this thread's slot in `registry` */
};

typedef enum ldr_rc (*ldr_handler_fn)(struct ldr_handler_ctx *ctx);

struct ldr_method {
  const char *path;
  const char *name; /* for messages: "OnlineRead" */
  ldr_handler_fn fn;
  int admin; /* refused when larder.admin_rpcs is false */
  int read;  /* an OnlineRead: may be served together with others (ldr_read_prepare) */
};

/* A decoded, checked read, between ldr_read_prepare and ldr_read_reply. */
struct ldr_read_job {
  char table[LDR_TABLE_NAME_MAX + 1];
  const struct ldr_key *keys; /* in the call's arena */
  size_t n_keys;
  const char *const *features;
  size_t n_features;
  const struct ldr_read_row *rows; /* n_keys results, set before ldr_read_reply */
};

/* Decodes and checks an OnlineRead request of `c` into `job`; its memory is
 * the call's arena. On an error, c->err says what is wrong. */
enum ldr_rc ldr_read_prepare(struct ldr_handler_ctx *c, struct ldr_read_job *job);

/* Encodes job->rows as the reply of `c` (c->reply), or fails with
 * RESOURCE_EXHAUSTED when it would pass larder.max_message_bytes. */
enum ldr_rc ldr_read_reply(struct ldr_handler_ctx *c, const struct ldr_read_job *job);

/* feast.serving.ServingService (serving.c). */
enum ldr_rc ldr_get_online_features(struct ldr_handler_ctx *c);
enum ldr_rc ldr_get_feast_serving_info(struct ldr_handler_ctx *c);

/* feast.serving.FieldStatus */
enum { LDR_FIELD_PRESENT = 1, LDR_FIELD_NOT_FOUND = 3, LDR_FIELD_OUTSIDE_MAX_AGE = 4 };

/* One row of one column of a GetOnlineFeaturesResponse. */
struct ldr_cell {
  const uint8_t *value; /* Value wire bytes; NULL with len 0 is the empty Value */
  size_t len;
  int status;
  int has_ts; /* 0: the zero Timestamp */
  struct ldr_ts ts;
};

struct ldr_column {
  const char *name;
  struct ldr_cell *cells; /* one per row */
};

/*
 * Encodes a GetOnlineFeaturesResponse of `n_cols` columns of `n_rows` rows
 * (and, when n_views > 0, feature_view_metadata naming `views`) into *out, a
 * new slice the caller owns. LDR_EXHAUSTED when it would pass `max_bytes`.
 */
enum ldr_rc ldr_serving_encode(const struct ldr_column *cols, size_t n_cols, size_t n_rows,
                               const char *const *views, size_t n_views, size_t max_bytes,
                               grpc_slice *out, struct ldr_err *err);

/* The methods served, in registration order, and how many there are. */
extern const struct ldr_method ldr_methods[];
extern const size_t ldr_n_methods;

#endif
