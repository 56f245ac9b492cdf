/*
 * The server's lifecycle: start-up, the signals (SIGHUP reloads tokens and
 * certificates, SIGTERM/SIGINT drain), and the drain. The calls themselves
 * are worker.c, call.c, batch.c and stream.c (server_int.h says how).
 */
#define _GNU_SOURCE
#include "service/server.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "service/server_int.h"

/* Contexts requested at SIGTERM, per method across workers, to take in calls
 * queued beyond the usual contexts before the shutdown would cancel them. */
#define DRAIN_EXTRA_PER_METHOD 256
/* How long SIGTERM keeps taking in calls already on the wire before the server
 * stops accepting (see drain()). */
#define DRAIN_TAKE_IN_MS 200
/* How long the shutdown may wait for connections once no call of larder's is
 * in flight: a stream a client sent as the GOAWAY crossed it is answered by
 * nobody, and holds its connection (and the shutdown) until its deadline. */
#define DRAIN_IDLE_MS 500
/* Token sets replaced by SIGHUP are freed this long after, when no worker can
 * still be comparing against them. */
#define RETIRED_AUTH_NS (60 * 1000000000LL)

/* Token sets that SIGHUP replaced, freed once they are old enough. */
struct retired {
  struct ldr_auth *auth;
  int64_t since_ns;
  struct retired *next;
};

/* gRPC's own messages go through larder's log, one line each, with its level. */
static void grpc_log_line(gpr_log_func_args *args) {
  enum ldr_log_level level =
      args->severity == GPR_LOG_SEVERITY_ERROR ? LDR_LOG_WARN : LDR_LOG_DEBUG;
  if (ldr_log_enabled(level)) ldr_log(level, "grpc: %s", args->message);
}

/* Nonzero when `listen` binds beyond the loopback interface. */
static int beyond_loopback(const char *listen) {
  const char *colon = strrchr(listen, ':');
  size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
  return !((n == 9 && !strncmp(listen, "127.0.0.1", 9)) ||
           (n == 9 && !strncmp(listen, "localhost", 9)) ||
           (n == 5 && !strncmp(listen, "[::1]", 5)));
}

/* SIGHUP: tokens and certificates are read again; a file that cannot be used
 * keeps what was loaded before. */
static void reload(struct server *srv, struct retired **retired) {
  struct ldr_err err;
  ldr_err_clear(&err);
  int64_t now = ldr_now_ns();
  for (struct retired **r = retired; *r != NULL;) {
    if (now - (*r)->since_ns < RETIRED_AUTH_NS) {
      r = &(*r)->next;
      continue;
    }
    struct retired *gone = *r;
    *r = gone->next;
    ldr_auth_free(gone->auth);
    free(gone);
  }
  if (srv->cfg->n_token_sources > 0) {
    struct ldr_auth *auth = NULL;
    struct retired *r = malloc(sizeof *r);
    if (r != NULL && ldr_auth_load(srv->cfg, &auth, &err) == LDR_OK) {
      r->auth = atomic_exchange(&srv->auth, auth);
      r->since_ns = now;
      r->next = *retired;
      *retired = r;
      ldr_log(LDR_LOG_INFO, "SIGHUP: bearer tokens reloaded");
    } else {
      free(r);
      ldr_log(LDR_LOG_ERROR, "SIGHUP: keeping the tokens loaded before: %s",
              err.rc ? err.msg : "out of memory");
    }
  }
  ldr_err_clear(&err);
  if (srv->http != NULL && ldr_http_reload_tls(srv->http, &err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "SIGHUP: HTTPS keeps the certificate loaded before: %s", err.msg);
    ldr_err_clear(&err);
  }
  if (srv->tls != NULL) {
    if (ldr_tls_reload(srv->tls, &err) == LDR_OK)
      ldr_log(LDR_LOG_INFO, "SIGHUP: TLS certificate reloaded; new connections use it");
    else
      ldr_log(LDR_LOG_ERROR, "SIGHUP: keeping the TLS certificate loaded before: %s", err.msg);
  }
}

/* Waits for the calls in flight, for at most the grace period or until a second signal. */
static void drain(struct server *srv, grpc_completion_queue *shutdown_cq, sigset_t *sigs) {
  static int shutdown_tag;
  /*
   * Only threads inside grpc_completion_queue_next read the sockets, and while
   * every worker is busy in the database none does: calls a client sent just
   * before the signal may still be unread. Once the shutdown starts, the core
   * cancels (CANCELLED) every call it reads, so first let this thread poll
   * for a moment; what it reads is matched and served normally.
   */
  gpr_timespec take_in_end = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(DRAIN_TAKE_IN_MS, GPR_TIMESPAN));
  while (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), take_in_end) < 0)
    grpc_completion_queue_next(shutdown_cq, take_in_end, NULL);
  atomic_store(&srv->draining, 1);
  ldr_http_drain(srv->http);
  /* A call the core holds because every context was busy would be cancelled
   * by the shutdown: give such calls contexts first. */
  size_t extra = (DRAIN_EXTRA_PER_METHOD + (size_t)srv->nworkers - 1) / (size_t)srv->nworkers;
  for (int i = 0; i < srv->nthreads; i++)
    if (ldr_worker_add_extra(&srv->workers[i], extra) != 0)
      ldr_log(LDR_LOG_WARN, "drain: no memory for the extra contexts of worker %d", i);
  grpc_server_shutdown_and_notify(srv->grpc, shutdown_cq, &shutdown_tag);
  gpr_timespec grace_end = gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(srv->cfg->grace_period_s, GPR_TIMESPAN));
  int cancelled = 0, grpc_done = 0;
  gpr_timespec idle_since = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  /* Both transports drain within the one grace period: gRPC's calls, and the
   * HTTP requests being answered (their connections close once answered). */
  while (!grpc_done || (!cancelled && ldr_http_open_connections(srv->http) > 0)) {
    gpr_timespec tick =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
    if (!grpc_done) {
      grpc_event ev = grpc_completion_queue_next(shutdown_cq, tick, NULL);
      if (ev.type == GRPC_OP_COMPLETE) grpc_done = 1;
    } else {
      struct timespec pause = {0, 50 * 1000000};
      nanosleep(&pause, NULL);
    }
    if (cancelled) continue;
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    if (grpc_done || atomic_load(&srv->in_flight) > 0) {
      idle_since = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    } else if (gpr_time_cmp(idle_since, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) {
      idle_since = now;
    } else if (gpr_time_cmp(gpr_time_sub(now, idle_since),
                            gpr_time_from_millis(DRAIN_IDLE_MS, GPR_TIMESPAN)) >= 0) {
      /* Every call is answered, yet a connection holds on: close them all
       * (its client's stream fails UNAVAILABLE now, not at its deadline). */
      ldr_log(LDR_LOG_INFO, "drain: every call answered; closing the connections left open");
      grpc_server_cancel_all_calls(srv->grpc);
      idle_since = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    }
    struct timespec zero = {0, 0};
    int again = sigtimedwait(sigs, NULL, &zero) > 0;
    if (again || gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), grace_end) >= 0) {
      ldr_log(LDR_LOG_WARN, "%s: cancelling the calls still in flight",
              again ? "second signal" : "grace period over");
      grpc_server_cancel_all_calls(srv->grpc);
      /* Workers waiting for a database give up too, so the process can end. */
      ldr_backend_abort_waits();
      cancelled = 1;
    }
  }
}

static void add_arg(grpc_arg *args, size_t *n, const char *key, int value) {
  args[*n].type = GRPC_ARG_INTEGER;
  args[*n].key = (char *)key;
  args[*n].value.integer = value;
  (*n)++;
}

/* The gRPC server with larder's channel arguments and methods; NULL when memory is short. */
static grpc_server *create_grpc(const struct ldr_config *cfg, void **handles) {
  grpc_arg args[16];
  size_t nargs = 0;
  add_arg(args, &nargs, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)cfg->max_message_bytes);
  add_arg(args, &nargs, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (int)cfg->max_message_bytes);
  /* gRPC binds with SO_REUSEPORT by default, so a second larder on the same
   * port would start and silently take half the connections. */
  add_arg(args, &nargs, GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (cfg->keepalive_time_s > 0) {
    /* An idle connection too: that is the one whose peer may have vanished. */
    add_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIME_MS, cfg->keepalive_time_s * 1000);
    add_arg(args, &nargs, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  if (cfg->keepalive_timeout_s > 0)
    add_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, cfg->keepalive_timeout_s * 1000);
  if (cfg->max_connection_idle_s > 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_IDLE_MS, cfg->max_connection_idle_s * 1000);
  if (cfg->max_connection_age_s > 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_MS, cfg->max_connection_age_s * 1000);
  if (cfg->max_connection_age_grace_s >= 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
            cfg->max_connection_age_grace_s * 1000);
  add_arg(args, &nargs, GRPC_ARG_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams);
  /* A new connection's TLS handshake and HTTP/2 preface and SETTINGS must
   * arrive within receive_timeout_s, as a call's message must: gRPC's own
   * 120 s let a client hold silent connections for two minutes each. */
  add_arg(args, &nargs, GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, cfg->receive_timeout_s * 1000);
  /* Uncompressed messages only: gRPC checks max_receive_message_length
   * against a message as it came and inflates it without a bound, so 4 MiB
   * of gzip could take gigabytes before larder saw it. A compressed request
   * is UNIMPLEMENTED, naming the algorithm (docs/api.md). */
  add_arg(args, &nargs, GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
          1 << GRPC_COMPRESS_NONE);
  grpc_channel_args chargs = {nargs, args};
  grpc_server *s = grpc_server_create(&chargs, NULL);
  for (size_t i = 0; s != NULL && i < ldr_n_methods; i++)
    handles[i] =
        grpc_server_register_method(s, ldr_methods[i].path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
  return s;
}

/* A warning when `addr` (the gRPC or the HTTP listener: both take the same
 * tokens and certificate) is open beyond loopback with neither. */
static void warn_if_open(const struct ldr_config *cfg, const char *what, const char *addr) {
  if (!beyond_loopback(addr) || cfg->n_token_sources != 0 || cfg->tls_cert != NULL) return;
  ldr_log(LDR_LOG_WARN,
          "%s listening beyond loopback (%s) with neither larder.auth nor larder.tls: any client "
          "that reaches the port can read%s; see docs/security.md",
          what, addr, cfg->read_only ? "" : " and write features");
}

static void log_started(const struct server *srv, int port, int metrics_port, int http_port) {
  const struct ldr_config *cfg = srv->cfg;
  ldr_log(LDR_LOG_INFO,
          "larder %s listening on %s (port %d, %s), %d workers, %s store, project %s%s%s",
          LDR_VERSION, cfg->listen, port,
          cfg->tls_client_ca ? "mutual TLS"
          : cfg->tls_cert    ? "TLS"
                             : "plaintext",
          srv->nworkers, cfg->store.type_name, cfg->project,
          atomic_load(&srv->auth) ? ", bearer tokens required" : "",
          cfg->read_only ? ", read-only" : "");
  if (metrics_port)
    ldr_log(LDR_LOG_INFO, "metrics at http://%s/metrics (port %d)", cfg->metrics_listen,
            metrics_port);
  if (http_port)
    ldr_log(LDR_LOG_INFO, "Feast's HTTP API at %s://%s (port %d), %d threads",
            cfg->tls_cert ? "https" : "http", cfg->http_listen, http_port, ldr_http_threads(cfg));
  warn_if_open(cfg, "gRPC", cfg->listen);
  if (http_port) warn_if_open(cfg, "the HTTP API", cfg->http_listen);
}

/* Serves until SIGTERM or SIGINT; SIGHUP reloads. */
static void serve(struct server *srv, grpc_completion_queue *shutdown_cq) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) break;
    reload(srv, &srv->retired);
  }
  atomic_store(&srv->stopping, 1);
  ldr_log(LDR_LOG_INFO, "%s: draining (grace period %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
          srv->cfg->grace_period_s);
  sigdelset(&sigs, SIGHUP);
  drain(srv, shutdown_cq, &sigs);
}

/* A completion queue for grpc_completion_queue_next, registered with the server. */
static grpc_completion_queue *new_queue(grpc_server *s, grpc_cq_polling_type polling) {
  grpc_completion_queue_attributes attr = {GRPC_CQ_CURRENT_VERSION, GRPC_CQ_NEXT, polling, NULL};
  grpc_completion_queue *cq =
      grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
  grpc_server_register_completion_queue(s, cq, NULL);
  return cq;
}

/* Shuts a queue down and takes every event left in it, so it can be destroyed. */
static void shut_down_queue(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
}

/* The exit status of a start that failed: 0 when SIGTERM or SIGINT asked for
 * it (a stop while waiting for the database), else 1. */
static int stopped_before_serving(void) {
  if (!ldr_stop_signal_pending()) return 1;
  ldr_log(LDR_LOG_INFO, "stopped before serving");
  return 0;
}

static int run(const struct ldr_config *cfg) {
  struct server srv = {.cfg = cfg};
  grpc_completion_queue *shutdown_cq = NULL;
  int status = 1, grpc_up = 0, port = 0, metrics_port = 0, http_port = 0;
  struct ldr_auth *auth = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);

  srv.nworkers = ldr_config_workers(cfg);
  /* One more thread answers health probes alone, so that they are answered
   * while every worker is busy in the database. */
  srv.nthreads = srv.nworkers + 1;
  if (ldr_auth_load(cfg, &auth, &err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  atomic_init(&srv.auth, auth);
  srv.workers = calloc((size_t)srv.nthreads, sizeof *srv.workers);
  srv.metrics = ldr_metrics_new(cfg, srv.nthreads);
  if (srv.workers == NULL || srv.metrics == NULL) goto out;
  for (int i = 0; i < srv.nthreads; i++) {
    srv.workers[i].ws.metrics = ldr_metrics_worker(srv.metrics, i);
    if (ldr_worker_init(&srv, i) != 0) {
      status = stopped_before_serving();
      goto out;
    }
  }
  if (cfg->registry_path != NULL) {
    /* A registry slot per thread that reads it: the gRPC threads, then HTTP's. */
    size_t readers = (size_t)srv.nthreads + (size_t)ldr_http_threads(cfg);
    struct ldr_registry_location loc = {cfg->registry_path, cfg->registry_sql, cfg->dir};
    enum ldr_rc rc = ldr_registry_source_new(&loc, cfg->registry_cache_ttl_s, cfg->project, readers,
                                             &srv.registry, &err);
    if (rc == LDR_FAILED_PRECONDITION || rc == LDR_INVALID) {
      /* A registry this larder cannot read: OnlineStore serves, ServingService says why. */
      snprintf(srv.registry_why, sizeof srv.registry_why, "%s", err.msg);
      ldr_log(LDR_LOG_WARN, "%s; ServingService will refuse calls", err.msg);
      ldr_err_clear(&err);
    } else if (rc != LDR_OK || ldr_registry_source_start(srv.registry) != 0) {
      ldr_log(LDR_LOG_ERROR, "registry: %s",
              err.rc ? err.msg : "cannot start the thread that reloads it");
      goto out;
    }
    ldr_metrics_registry(srv.metrics, srv.registry);
  } else if (cfg->registry_unsupported != NULL) {
    ldr_log(LDR_LOG_WARN, "registry %s; ServingService will refuse calls",
            cfg->registry_unsupported);
  }

  gpr_set_log_function(grpc_log_line);
  gpr_set_log_verbosity(ldr_log_enabled(LDR_LOG_DEBUG) ? GPR_LOG_SEVERITY_DEBUG
                                                       : GPR_LOG_SEVERITY_ERROR);
  grpc_init();
  grpc_up = 1;
  srv.grpc = create_grpc(cfg, srv.handles);
  if (srv.grpc == NULL) goto out;
  /* The health thread's queue leaves the network to the workers (worker.c).
   * Queues that take no calls poll without listening: gRPC gives each new
   * connection to the listening queues in turn, and a connection given to a
   * queue with no calls requested would send its calls to the first worker. */
  for (int i = 0; i < srv.nthreads; i++)
    srv.workers[i].cq =
        new_queue(srv.grpc, srv.workers[i].probe ? GRPC_CQ_NON_POLLING : GRPC_CQ_DEFAULT_POLLING);
  srv.rescue_cq = new_queue(srv.grpc, GRPC_CQ_NON_LISTENING);
  shutdown_cq = new_queue(srv.grpc, GRPC_CQ_NON_LISTENING);

  /* Everything that can fail comes before the gRPC port is added: a server
   * with a listener must be started and shut down, not just destroyed. */
  if (cfg->metrics_listen != NULL &&
      ldr_metrics_serve(srv.metrics, cfg->metrics_listen, &metrics_port) != 0)
    goto out;
  if (cfg->http_listen != NULL) {
    srv.http_env = (struct ldr_http_env){
        .cfg = cfg,
        .registry = srv.registry,
        .registry_why = srv.registry_why[0] ? srv.registry_why : cfg->registry_unsupported,
        .first_reader = (size_t)srv.nthreads,
        .auth = &srv.auth,
        .stopping = &srv.stopping};
    if (ldr_http_start(&srv.http_env, &srv.http, &http_port, &err) != LDR_OK) {
      ldr_log(LDR_LOG_ERROR, "%s", err.msg);
      status = stopped_before_serving();
      goto out;
    }
    ldr_metrics_http(srv.metrics, srv.http);
  }
  grpc_server_credentials *creds = ldr_tls_credentials(cfg, &srv.tls, &err);
  if (creds == NULL) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  port = grpc_server_add_http2_port(srv.grpc, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    ldr_log(LDR_LOG_ERROR,
            "cannot listen on %s: the address is in use or not valid, or the TLS key does not fit "
            "its certificate (see above)",
            cfg->listen);
    goto out;
  }
  grpc_server_start(srv.grpc);
  for (int i = 0; i < srv.nthreads; i++) {
    struct worker *w = &srv.workers[i];
    if (ldr_worker_start_calls(w) != 0)
      ldr_log(LDR_LOG_WARN, "worker %d: not every call context could be requested", i);
    w->started = pthread_create(&w->thread, NULL, ldr_worker_main, w) == 0;
  }
  log_started(&srv, port, metrics_port, http_port);
  serve(&srv, shutdown_cq);
  status = 0;
out:
  /* The gRPC server goes first (nothing fails once its port is added, so a
   * server with a listener has been started and drained), then the queues,
   * drained to their end, then what the calls used. */
  if (srv.grpc != NULL) grpc_server_destroy(srv.grpc);
  /* HTTP requests in flight were waited for in the drain. /metrics reads the
   * listener's counters: it stops first. */
  ldr_metrics_stop(srv.metrics);
  ldr_http_stop(srv.http, 0);
  atomic_store(&srv.closing, 1);
  unsigned long long served = 0;
  for (int i = 0; srv.workers != NULL && i < srv.nthreads; i++) {
    struct worker *w = &srv.workers[i];
    if (w->cq == NULL) continue;
    if (w->started) {
      pthread_join(w->thread, NULL);
    } else { /* no thread drains this queue */
      shut_down_queue(w->cq);
    }
    served += w->served;
  }
  if (srv.rescue_cq != NULL) { /* the health thread that polled it is joined */
    shut_down_queue(srv.rescue_cq);
    grpc_completion_queue_destroy(srv.rescue_cq);
  }
  if (shutdown_cq != NULL) {
    shut_down_queue(shutdown_cq);
    grpc_completion_queue_destroy(shutdown_cq);
  }
  for (int i = 0; srv.workers != NULL && i < srv.nthreads; i++) ldr_worker_destroy(&srv.workers[i]);
  free(srv.workers);
  ldr_registry_source_free(srv.registry);
  ldr_metrics_free(srv.metrics);
  ldr_tls_free(srv.tls);
  ldr_auth_free(atomic_load(&srv.auth));
  while (srv.retired != NULL) { /* the gRPC and HTTP threads are joined */
    struct retired *next = srv.retired->next;
    ldr_auth_free(srv.retired->auth);
    free(srv.retired);
    srv.retired = next;
  }
  if (grpc_up) grpc_shutdown();
  if (status == 0) ldr_log(LDR_LOG_INFO, "stopped after %llu calls", served);
  return status;
}

int ldr_server_run(const struct ldr_config *cfg) {
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_reflection_init(&err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    return 1;
  }
  int status = run(cfg);
  ldr_reflection_free();
  return status;
}
