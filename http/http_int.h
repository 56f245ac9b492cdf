/*
 * What the files of http/ share. server.c owns connections and threads,
 * routes.c decides what a request is and answers errors, features.c,
 * ingest.c and render.c are the endpoints' bodies.
 */
#ifndef LDR_HTTP_INT_H
#define LDR_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "http/http.h"
#include "http/parse.h"
#include "registry/registry.h"
#include "serving/serving.h"

/* What one HTTP worker thread brings to a request. */
struct ldr_http_thread {
  const struct ldr_http_env *env;
  struct ldr_backend *backend; /* this thread's own connection to the store */
  size_t reader;               /* this thread's registry slot */
  struct ldr_arena arena;      /* a request's memory, reset after each */
  int64_t ping_at_ns;          /* /health: when the store last answered a ping, or failed to */
  int ping_ok;
  struct ldr_log_limit failure_log; /* internal and unavailable answers: a line a second */
};

/* A request, and the answer its handler builds. */
struct ldr_http_exchange {
  struct ldr_http_thread *t;
  const struct ldr_http_head *head;
  const char *body;
  size_t body_len;
  unsigned scopes; /* what the caller's token (or certificate) grants */
  /* The answer: */
  int status;
  const char *content_type; /* NULL: no Content-Type */
  struct ldr_sb out;        /* the body */
  char headers[160];        /* more header lines, each ending "\r\n" */
  int close;                /* close the connection after it */
};

/* A route: what answers a path, with which method, needing which scope. */
struct ldr_http_route {
  const char *path;
  enum ldr_http_method method;
  unsigned scope; /* LDR_SCOPE_*; 0: open (health) */
  void (*fn)(struct ldr_http_exchange *x);
};

/* ---- routes.c */

/* The routes, in the order /metrics lists them. */
#define LDR_HTTP_ROUTES_MAX 16
extern const struct ldr_http_route ldr_http_routes[];
extern const size_t ldr_http_n_routes;

/*
 * Decides from the head alone whether the request can be served: 0 when it
 * can (*route set, x->scopes set), else the answer is in `x` (404, 405, 401,
 * 403). `auth` is the token set in force (NULL: none needed); `cert_scopes`
 * what a verified client certificate grants.
 */
int ldr_http_admit(struct ldr_http_exchange *x, const struct ldr_auth *auth, unsigned cert_scopes,
                   const struct ldr_http_route **route);

/* Answers with a bare status: 503 while draining, 413, 408, 400 ... */
void ldr_http_answer_status(struct ldr_http_exchange *x, int status);

/* Answers a request that comes while the server drains: 503, and for
 * /health the empty 503 of a server that is not ready (HTTP.md §3). */
void ldr_http_answer_draining(struct ldr_http_exchange *x);

/* Answers a failed operation: its status from `rc` (and the serving fault),
 * the body Feast's error handler writes (HTTP.md §2). */
void ldr_http_answer_error(struct ldr_http_exchange *x, enum ldr_rc rc, const char *cls,
                           const char *msg);

/* The same with the status given (Feast's 422 for an unknown push source). */
void ldr_http_answer_feast(struct ldr_http_exchange *x, int status, const char *cls,
                           const char *msg);

/* Answers 422 with FastAPI's detail list: one item of `type`, `loc`
 * (a JSON array text, e.g. ["body","entities"]) and `msg`. */
void ldr_http_answer_422(struct ldr_http_exchange *x, const char *type, const char *loc,
                         const char *msg);

/* Answers 413: the request needs more memory than its arena may hold. */
void ldr_http_answer_no_memory(struct ldr_http_exchange *x);

/* Nonzero, having answered 400 naming `field`, when the string `s` (a name:
 * of a column, view, source, feature) holds a NUL byte, which no name can
 * (larder's names are C strings; over gRPC such a string is refused too). */
int ldr_http_nul_name(struct ldr_http_exchange *x, const struct ldr_json *s, const char *field);

/* Parses the body as JSON within the request's arena; on failure answers
 * (422, 400 for nesting, 413 for memory) and returns NULL. */
const struct ldr_json *ldr_http_body_json(struct ldr_http_exchange *x);

/* The registry for this request, or NULL with the answer (503) given. The
 * caller releases it with ldr_registry_release(env->registry, t->reader). */
const struct ldr_registry *ldr_http_registry(struct ldr_http_exchange *x);

/* Sets the backend deadline of this request (default_deadline_s). */
void ldr_http_deadline(struct ldr_http_exchange *x);

/* ---- the endpoints */
void ldr_http_get_online_features(struct ldr_http_exchange *x);
void ldr_http_push(struct ldr_http_exchange *x);
void ldr_http_write_to_online_store(struct ldr_http_exchange *x);

/* ---- render.c: Values and answers as JSON */

/* Appends the Value serialized in v[0..len) as Feast's JSON (HTTP.md §4.4). */
void ldr_http_put_value(struct ldr_sb *sb, const uint8_t *v, size_t len, struct ldr_arena *a);

/* Appends a timestamp as Feast writes it: "2023-11-14T22:13:20Z", with 3, 6
 * or 9 fraction digits when there are nanoseconds. */
void ldr_http_put_timestamp(struct ldr_sb *sb, int has_ts, struct ldr_ts ts);

/* Appends the answer of GetOnlineFeatures (HTTP.md §4.3); -1, having stopped,
 * as soon as it passes `max` bytes (a cell's worth past it at most). */
int ldr_http_put_result(struct ldr_sb *sb, const struct ldr_serving_result *r, size_t max,
                        struct ldr_arena *a);

#endif
