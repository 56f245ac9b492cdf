/* What the files of service/ share: the method table and the handler context. */
#ifndef LDR_SERVICE_INT_H
#define LDR_SERVICE_INT_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/histogram.h"
#include "common/rc.h"
#include "config/config.h"
#include "http/http.h"
#include "registry/registry.h"
#include "serving/serving.h"

/* ---- metrics (metrics.c) ---- */

#define LDR_METRIC_BUCKETS LDR_HISTOGRAM_BUCKETS
#define LDR_METHODS_MAX 16

/* One worker's counters: written by that worker only, read by the scrape. The
 * last method slot counts calls of unknown methods. */
struct ldr_metrics_worker {
  atomic_ullong started[LDR_METHODS_MAX + 1];
  atomic_ullong handled[LDR_METHODS_MAX + 1][17];
  atomic_ullong latency[LDR_METHODS_MAX + 1][LDR_METRIC_BUCKETS + 1];
  atomic_ullong latency_ns[LDR_METHODS_MAX + 1];
  atomic_ullong backend[LDR_METRIC_BUCKETS + 1];
  atomic_ullong backend_ns, rows_read, rows_written;
  atomic_ullong connected; /* this worker's open store connections */
  /* Each connection of the worker's store: 0 none, else (role + 1) << 8 | (its server's index + 1),
   * the index 0 while it is not open (ldr_conn_state). */
  atomic_uint conn_where[LDR_CONNS_MAX];
  char pad[64]; /* no false sharing with the next worker's block */
};

struct ldr_metrics;

/* The counters of `nworkers` workers; NULL when memory is short. */
struct ldr_metrics *ldr_metrics_new(const struct ldr_config *cfg, int nworkers);
/* Serves GET /metrics on `listen` (host:port) on a thread of libmicrohttpd;
 * sets *port to the bound port. 0, or -1 (logged). */
int ldr_metrics_serve(struct ldr_metrics *m, const char *listen, int *port);
/* Stops serving /metrics (the counters stay); then nothing scrapes. */
void ldr_metrics_stop(struct ldr_metrics *m);
void ldr_metrics_free(struct ldr_metrics *m);
/* Adds the registry's loads and failures to the exposition; set before serving. */
void ldr_metrics_registry(struct ldr_metrics *m, struct ldr_registry_source *s);
/* Adds the HTTP listener's families; set before serving. */
void ldr_metrics_http(struct ldr_metrics *m, struct ldr_http *h);
struct ldr_metrics_worker *ldr_metrics_worker(struct ldr_metrics *m, int i);
/* The exposition text (malloc'd, *len bytes), or NULL. */
char *ldr_metrics_text(const struct ldr_metrics *m, size_t *len);
/* Counting, from the worker that owns `m` (NULL: nothing is counted). */
void ldr_metrics_started(struct ldr_metrics_worker *m, size_t method);
void ldr_metrics_handled(struct ldr_metrics_worker *m, size_t method, int code, int64_t ns);
void ldr_metrics_backend(struct ldr_metrics_worker *m, int64_t ns, size_t rows_read,
                         size_t rows_written);
void ldr_metrics_connected(struct ldr_metrics_worker *m, int up);
/* Where the worker's store connections are (ldr_backend_conns): which server, for what. */
void ldr_metrics_conns(struct ldr_metrics_worker *m, const struct ldr_conn_state *conns, size_t n);
/* Both of the above for the worker's store `b`. */
void ldr_metrics_store(struct ldr_metrics_worker *m, struct ldr_backend *b);
/* The status code's name as go-grpc-prometheus writes it ("InvalidArgument"). */
const char *ldr_grpc_code_name(int code);

/* What a handler may know of the worker thread it runs on. */
struct ldr_worker_state {
  const atomic_int *stopping; /* nonzero once SIGTERM or SIGINT came */
  int64_t ping_at_ns;         /* when the backend was last pinged (health) */
  int ping_ok;                /* and whether it answered */
  struct ldr_metrics_worker *metrics;
};

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
  struct ldr_registry_source *registry; /* NULL when none is configured or readable */
  const char *registry_why;             /* then why, for ServingService's answers, or NULL */
  size_t reader;                        /* this thread's slot in `registry` */
  struct ldr_worker_state *worker;
};

/* A request protobuf-c could not decode: INVALID_ARGUMENT naming the message
 * `type`, or RESOURCE_EXHAUSTED when a valid one did not fit the call's arena. */
enum ldr_rc ldr_undecodable(struct ldr_handler_ctx *c, const char *type);

/* Counts one backend statement of a handler that started at `t0` (ldr_now_ns). */
static inline void ldr_count_backend(struct ldr_handler_ctx *c, int64_t t0, size_t rows_read,
                                     size_t rows_written) {
  if (c->worker != NULL)
    ldr_metrics_backend(c->worker->metrics, ldr_now_ns() - t0, rows_read, rows_written);
}

typedef enum ldr_rc (*ldr_handler_fn)(struct ldr_handler_ctx *ctx);

struct ldr_method {
  const char *path;
  const char *name; /* for messages: "OnlineRead" */
  ldr_handler_fn fn;
  unsigned scope; /* LDR_SCOPE_* the caller needs (admin also needs larder.admin_rpcs); 0: open */
  int batched;    /* an OnlineRead: may be served together with others (ldr_read_prepare) */
  int stream;     /* LDR_STREAM_*: `fn` answers each request message of the stream */
};

enum { LDR_UNARY = 0, LDR_STREAM_BIDI = 1, LDR_STREAM_WATCH = 2 };

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

/*
 * Reads the keys of `n` prepared jobs with one backend read (one round trip):
 * jobs of one table asking for the same features, next to each other in
 * `jobs`, share a statement, at most LDR_BATCH_KEYS keys each. Sets each
 * job's rows (in `arena`). The backend's deadline is the caller's to set;
 * its result cap is n × larder.max_message_bytes here.
 */
#define LDR_BATCH_KEYS 256
/* Nonzero when two jobs may share one statement: one table, the same features. */
int ldr_read_job_joins(const struct ldr_read_job *a, const struct ldr_read_job *b);
enum ldr_rc ldr_read_jobs(const struct ldr_config *cfg, struct ldr_backend *b,
                          struct ldr_read_job *const *jobs, size_t n, struct ldr_arena *arena,
                          struct ldr_worker_state *ws, struct ldr_err *err);

/* GrpcFeatureServer's Push and WriteToOnlineStore (push.c). */
enum ldr_rc ldr_grpc_push(struct ldr_handler_ctx *c);
enum ldr_rc ldr_grpc_write_to_online_store(struct ldr_handler_ctx *c);

/* feast.serving.ServingService (serving.c). */
enum ldr_rc ldr_get_online_features(struct ldr_handler_ctx *c);
enum ldr_rc ldr_get_feast_serving_info(struct ldr_handler_ctx *c);

/* grpc.health.v1 (health.c). ldr_health_status returns the ServingStatus of
 * `service` (SERVICE_UNKNOWN for a name not served), pinging the backend when
 * its last answer is more than a second old. */
enum ldr_rc ldr_health_check(struct ldr_handler_ctx *c);
enum ldr_rc ldr_health_request(struct ldr_handler_ctx *c, const char **service);
enum ldr_rc ldr_health_reply(struct ldr_handler_ctx *c, int status);
int ldr_health_status(struct ldr_handler_ctx *c, const char *service);

/* Server reflection (reflection.c): init indexes the embedded descriptors
 * once, before any worker starts; answer replies to one request message. */
enum ldr_rc ldr_reflection_init(struct ldr_err *err);
void ldr_reflection_free(void);
enum ldr_rc ldr_reflection_answer(struct ldr_handler_ctx *c);

/*
 * Encodes a GetOnlineFeaturesResponse of `n_cols` columns of `n_rows` rows
 * (and, when n_views > 0, feature_view_metadata of `views`) into *out, a new
 * slice the caller owns. LDR_EXHAUSTED when it would pass `max_bytes`.
 */
enum ldr_rc ldr_serving_encode(const struct ldr_column *cols, size_t n_cols, size_t n_rows,
                               const struct ldr_serving_view *views, size_t n_views,
                               size_t max_bytes, grpc_slice *out, struct ldr_err *err);

/* The methods served, in registration order, and how many there are. */
extern const struct ldr_method ldr_methods[];
extern const size_t ldr_n_methods;

#endif
