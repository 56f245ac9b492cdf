/*
 * What a request is and who may make it, decided from its head (route,
 * method, token: HTTP.md §1's order), and the answers every endpoint shares:
 * Feast's error bodies (§2), FastAPI's detail bodies, /health (§3), and the
 * 501 of what larder does not serve (§9).
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http_int.h"
#include "serving/convert.h"

static void health(struct ldr_http_exchange *x);
static void not_served(struct ldr_http_exchange *x);

const struct ldr_http_route ldr_http_routes[] = {
    {"/get-online-features", LDR_HTTP_POST, LDR_SCOPE_READ, ldr_http_get_online_features},
    {"/push", LDR_HTTP_POST, LDR_SCOPE_WRITE, ldr_http_push},
    {"/write-to-online-store", LDR_HTTP_POST, LDR_SCOPE_WRITE, ldr_http_write_to_online_store},
    {"/health", LDR_HTTP_GET, 0, health},
    /* Feast serves these; larder serves stored features only (HTTP.md §9). */
    {"/materialize", LDR_HTTP_POST, LDR_SCOPE_WRITE, not_served},
    {"/materialize-incremental", LDR_HTTP_POST, LDR_SCOPE_WRITE, not_served},
    {"/search", LDR_HTTP_POST, LDR_SCOPE_READ, not_served},
    {"/retrieve-online-documents", LDR_HTTP_POST, LDR_SCOPE_READ, not_served},
    {"/v1/vector_stores", LDR_HTTP_OTHER, LDR_SCOPE_READ, not_served},
};
const size_t ldr_http_n_routes = sizeof ldr_http_routes / sizeof ldr_http_routes[0];

static int path_is(const struct ldr_http_head *h, const char *path) {
  return strlen(path) == h->path_len && !memcmp(h->path, path, h->path_len);
}

/* /v1/vector_stores and everything below it. */
static int under(const struct ldr_http_head *h, const char *prefix) {
  size_t n = strlen(prefix);
  return h->path_len >= n && !memcmp(h->path, prefix, n) && (h->path_len == n || h->path[n] == '/');
}

static void put_detail(struct ldr_http_exchange *x, int status, const char *detail) {
  x->status = status;
  x->content_type = "application/json";
  ldr_sb_puts(&x->out, "{\"detail\":");
  ldr_json_put_string(&x->out, detail, strlen(detail));
  ldr_sb_puts(&x->out, "}");
}

void ldr_http_answer_status(struct ldr_http_exchange *x, int status) {
  const char *what = status == 400   ? "request: not a valid HTTP/1.1 request"
                     : status == 408 ? "request: it did not arrive within larder.receive_timeout_s"
                     : status == 413 ? "body: longer than larder.max_message_bytes"
                     : status == 431 ? "request: the header block is longer than 16 KiB"
                     : status == 501 ? "Transfer-Encoding: only chunked is taken"
                     : status == 503 ? "larder is draining or busy: try again (another replica)"
                     : status == 505 ? "request: only HTTP/1.x is served"
                                     : "request: refused";
  ldr_http_answer_feast(x, status, "FeastError", what);
}

int ldr_http_admit(struct ldr_http_exchange *x, const struct ldr_auth *auth, unsigned cert_scopes,
                   const struct ldr_http_route **route) {
  const struct ldr_http_head *h = x->head;
  const struct ldr_http_route *match = NULL;
  for (size_t i = 0; i < ldr_http_n_routes && match == NULL; i++)
    if (ldr_http_routes[i].method == LDR_HTTP_OTHER ? under(h, ldr_http_routes[i].path)
                                                    : path_is(h, ldr_http_routes[i].path))
      match = &ldr_http_routes[i];
  if (match == NULL) {
    put_detail(x, 404, "Not Found");
    return -1;
  }
  int get = match->method == LDR_HTTP_GET;
  if (match->method != LDR_HTTP_OTHER && h->method != match->method &&
      !(get && h->method == LDR_HTTP_HEAD)) {
    snprintf(x->headers, sizeof x->headers, "Allow: %s\r\n", get ? "GET" : "POST");
    put_detail(x, 405, "Method Not Allowed");
    return -1;
  }
  /* /health's probes send no body, and a body there would take from the
   * budget of all bodies without a token: refused from the head. */
  if (get && (h->chunked || h->content_length > 0)) {
    ldr_http_answer_feast(x, 400, "FeastError", "body: GET /health takes none");
    return -1;
  }
  x->scopes = cert_scopes;
  if (match->scope == 0) {
    *route = match;
    return 0;
  }
  if (auth != NULL) {
    struct ldr_err err = {0};
    if (ldr_auth_header(auth, h->authorization, h->authorization_len, &x->scopes, &err) != LDR_OK) {
      snprintf(x->headers, sizeof x->headers, "WWW-Authenticate: Bearer\r\n");
      put_detail(x, 401,
                 h->authorization ? "Invalid or expired access token"
                                  : "Missing authentication token");
      return -1;
    }
  }
  if ((x->scopes & match->scope) != match->scope) {
    char msg[160];
    snprintf(msg, sizeof msg, "%.*s: the token does not grant the %s scope", (int)h->path_len,
             h->path, match->scope == LDR_SCOPE_WRITE ? "write" : "read");
    ldr_http_answer_error(x, LDR_DENIED, "FeastPermissionError", msg);
    return -1;
  }
  *route = match;
  return 0;
}

void ldr_http_answer_draining(struct ldr_http_exchange *x) {
  const struct ldr_http_head *h = x->head;
  if (path_is(h, "/health") && (h->method == LDR_HTTP_GET || h->method == LDR_HTTP_HEAD))
    x->status = 503; /* no body, no Content-Type (HTTP.md §3) */
  else
    ldr_http_answer_status(x, 503);
}

static int status_of(enum ldr_rc rc) {
  switch (rc) {
  case LDR_OK:
    return 200;
  case LDR_INVALID:
    return 400;
  case LDR_UNAUTHENTICATED:
    return 401;
  case LDR_DENIED:
    return 403;
  case LDR_NOT_FOUND:
    return 404;
  case LDR_FAILED_PRECONDITION:
    return 409;
  case LDR_EXHAUSTED:
    return 413;
  case LDR_UNIMPLEMENTED:
    return 501;
  case LDR_UNAVAILABLE:
    return 503;
  case LDR_DEADLINE:
    return 504;
  default:
    return 500;
  }
}

/* Python's json.dumps of a string (ASCII only, as Feast's to_error_detail
 * writes it), appended without quotes escaping beyond JSON's. */
static void put_py_string(struct ldr_sb *sb, const char *s) {
  struct ldr_json j = {.type = LDR_JSON_STRING, .s = s, .len = strlen(s)};
  ldr_json_dumps(sb, &j);
}

void ldr_http_answer_no_memory(struct ldr_http_exchange *x) {
  ldr_http_answer_error(x, LDR_EXHAUSTED, "FeastError",
                        "request: needs more memory than a request may use");
}

int ldr_http_nul_name(struct ldr_http_exchange *x, const struct ldr_json *s, const char *field) {
  if (s == NULL || s->type != LDR_JSON_STRING || memchr(s->s, 0, s->len) == NULL) return 0;
  char msg[160];
  snprintf(msg, sizeof msg, "%s: '%.60s...' contains a NUL byte", field, s->s);
  ldr_http_answer_error(x, LDR_INVALID, "FeastError", msg);
  return 1;
}

/* An internal or unavailable failure's message holds the driver's words and
 * the database's address: it goes to the log (a line a second at most per
 * thread), and the client learns only what kind of failure it was, as over
 * gRPC (service/call.c). */
void ldr_http_answer_error(struct ldr_http_exchange *x, enum ldr_rc rc, const char *cls,
                           const char *msg) {
  if (rc == LDR_INTERNAL || rc == LDR_UNAVAILABLE) {
    unsigned long long held = 0;
    if (x->t == NULL || ldr_log_allow(&x->t->failure_log, ldr_now_ns(), &held)) {
      char more[64] = "";
      if (held) snprintf(more, sizeof more, " (%llu more failures since the last line)", held);
      ldr_log(rc == LDR_UNAVAILABLE ? LDR_LOG_WARN : LDR_LOG_ERROR, "http: %.*s: %s: %s%s",
              x->head ? (int)x->head->path_len : 0, x->head ? x->head->path : "", ldr_rc_str(rc),
              msg, more);
    }
    msg = ldr_rc_public_text(rc);
  }
  ldr_http_answer_feast(x, status_of(rc), cls, msg);
}

void ldr_http_answer_feast(struct ldr_http_exchange *x, int status, const char *cls,
                           const char *msg) {
  /* FeastError.to_error_detail(): json.dumps of {module, class, message};
   * FastAPI's JSONResponse then writes that text as a JSON string. */
  struct ldr_sb inner = {0};
  ldr_sb_puts(&inner, "{\"module\": \"feast.errors\", \"class\": ");
  put_py_string(&inner, cls ? cls : "FeastError");
  ldr_sb_puts(&inner, ", \"message\": ");
  put_py_string(&inner, msg);
  ldr_sb_puts(&inner, "}");
  ldr_sb_free(&x->out);
  const char *text = ldr_sb_str(&inner);
  x->status = status;
  x->content_type = "application/json";
  if (text != NULL)
    ldr_json_put_string(&x->out, text, inner.len);
  else
    x->out.failed = 1;
  ldr_sb_free(&inner);
}

void ldr_http_answer_422(struct ldr_http_exchange *x, const char *type, const char *loc,
                         const char *msg) {
  ldr_sb_free(&x->out);
  x->status = 422;
  x->content_type = "application/json";
  ldr_sb_puts(&x->out, "{\"detail\":[{\"type\":");
  ldr_json_put_string(&x->out, type, strlen(type));
  ldr_sb_printf(&x->out, ",\"loc\":%s,\"msg\":", loc);
  ldr_json_put_string(&x->out, msg, strlen(msg));
  ldr_sb_puts(&x->out, "}]}");
}

/* Nesting beyond this is refused with 400 (HTTP.md §1). */
#define BODY_DEPTH 64

const struct ldr_json *ldr_http_body_json(struct ldr_http_exchange *x) {
  struct ldr_json *j = NULL;
  struct ldr_json_error where = {0};
  struct ldr_err err = {0};
  enum ldr_rc rc = ldr_json_parse(x->body, x->body_len, &x->t->arena, BODY_DEPTH, &j, &where, &err);
  if (rc == LDR_OK) return j;
  if (rc == LDR_EXHAUSTED) {
    ldr_http_answer_error(x, LDR_EXHAUSTED, "FeastError",
                          "body: needs more memory than a request may use");
  } else if (where.too_deep) {
    ldr_http_answer_error(x, LDR_INVALID, "FeastError", "body: JSON nested deeper than 64 levels");
  } else {
    char loc[48];
    snprintf(loc, sizeof loc, "[\"body\",%zu]", where.offset);
    ldr_http_answer_422(x, "json_invalid", loc, "JSON decode error");
  }
  return NULL;
}

const struct ldr_registry *ldr_http_registry(struct ldr_http_exchange *x) {
  const struct ldr_http_env *env = x->t->env;
  struct ldr_err err = {0};
  const struct ldr_registry *r =
      env->registry ? ldr_registry_acquire(env->registry, x->t->reader, &err) : NULL;
  if (r == NULL) /* why, in words written for clients (no path or address) */
    ldr_http_answer_feast(x, 503, "FeastError",
                          env->registry_why ? env->registry_why
                          : err.rc          ? err.msg
                                            : "the feature registry has not loaded");
  return r;
}

void ldr_http_deadline(struct ldr_http_exchange *x) {
  int s = x->t->env->cfg->default_deadline_s;
  x->t->backend->deadline_ns = s > 0 ? ldr_now_ns() + (int64_t)s * 1000000000 : 0;
}

/* GET /health: 200 when serving from a loaded registry and an answering
 * store, else 503; an empty body either way (Feast's). */
static void health(struct ldr_http_exchange *x) {
  const struct ldr_http_env *env = x->t->env;
  int ok = !atomic_load(env->stopping);
  struct ldr_err err = {0};
  if (ok) {
    const struct ldr_registry *r =
        env->registry ? ldr_registry_acquire(env->registry, x->t->reader, &err) : NULL;
    ok = r != NULL;
    if (r != NULL) ldr_registry_release(env->registry, x->t->reader);
  }
  /* A ping answered (or failed) within the last second stands: probes do not
   * storm a store that is down. */
  int64_t now = ldr_now_ns();
  if (ok && now - x->t->ping_at_ns > 1000000000) {
    struct ldr_backend *b = x->t->backend;
    b->deadline_ns = now + LDR_PING_LIMIT_NS; /* not default_deadline_s: a probe fails fast */
    x->t->ping_ok = b->ops->ping(b, &err) == LDR_OK;
    x->t->ping_at_ns = now;
  }
  ok = ok && x->t->ping_ok;
  x->status = ok ? 200 : 503;
}

static void not_served(struct ldr_http_exchange *x) {
  char msg[160];
  snprintf(msg, sizeof msg, "%.*s is not served by larder: it serves stored features only",
           (int)(x->head->path_len > 100 ? 100 : x->head->path_len), x->head->path);
  ldr_http_answer_error(x, LDR_UNIMPLEMENTED, "FeastError", msg);
}
