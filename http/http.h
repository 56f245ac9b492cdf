/*
 * Feast's feature-server HTTP API (feast-compat/HTTP.md) on
 * larder.http_listen: HTTP/1.1 with persistent connections, or HTTPS with
 * larder.tls. Worker threads of its own, each with an epoll loop and its own
 * connection to the online store, answer requests start to finish on one
 * thread, as the gRPC workers do; what they answer comes from serving/, the
 * same logic as gRPC's.
 */
#ifndef LDR_HTTP_H
#define LDR_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "common/rc.h"
#include "common/strbuf.h"
#include "config/config.h"
#include "registry/registry.h"

struct ldr_auth;
struct ldr_http;

/* What the HTTP listener shares with the rest of the server. */
struct ldr_http_env {
  const struct ldr_config *cfg;
  struct ldr_registry_source *registry; /* NULL: none loaded or readable */
  const char *registry_why;             /* then why, or NULL */
  size_t first_reader;                  /* registry slots first_reader.. are the HTTP threads' */
  _Atomic(struct ldr_auth *) *auth;     /* NULL inside: no tokens needed */
  const atomic_int *stopping;           /* a signal came: /health answers 503 */
};

/* How many threads ldr_http_start runs for `cfg` (registry slots to reserve). */
int ldr_http_threads(const struct ldr_config *cfg);

/*
 * Binds cfg->http_listen and starts the threads; *port is the bound port.
 * `env` must outlive the listener. Returns LDR_OK, or an error (logged by
 * the caller) with nothing left running.
 */
enum ldr_rc ldr_http_start(const struct ldr_http_env *env, struct ldr_http **out, int *port,
                           struct ldr_err *err);

/* Stops accepting connections; requests already received are answered, new
 * ones get 503 with Connection: close. Returns at once. */
void ldr_http_drain(struct ldr_http *h);

/* Appends the listener's Prometheus families (requests by route and status,
 * handling time, open connections) to `sb`; nothing for NULL. */
void ldr_http_metrics(struct ldr_http *h, struct ldr_sb *sb);

/* Connections still open (while draining: requests not yet answered). */
int ldr_http_open_connections(struct ldr_http *h);

/* Reads the TLS certificate and key again for new connections (SIGHUP). */
enum ldr_rc ldr_http_reload_tls(struct ldr_http *h, struct ldr_err *err);

/* Waits for the threads to finish what they hold (at most `grace_s`), then
 * frees everything; NULL is harmless. */
void ldr_http_stop(struct ldr_http *h, int grace_s);

#endif
