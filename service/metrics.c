/*
 * Prometheus metrics. Each worker counts in its own block, which only its
 * thread writes (relaxed atomic loads and stores, no read-modify-write, so
 * the request path takes no lock and no locked instruction); the scrape,
 * on libmicrohttpd's thread, sums the blocks. Names follow go-grpc-prometheus.
 */
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/histogram.h"
#include "common/log.h"
#include "service/service_int.h"

static const char *const code_names[17] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

/* The servers a store's connections may use, as configured (ldr_backend_host_label). */
#define LDR_METRIC_HOSTS 32

struct ldr_metrics {
  const struct ldr_config *cfg;
  struct ldr_metrics_worker *workers;
  int n;
  struct MHD_Daemon *httpd;
  const char *store;
  struct ldr_registry_source *registry; /* NULL: none configured */
  _Atomic(struct ldr_http *) http;      /* NULL: no HTTP listener */
  char hosts[LDR_METRIC_HOSTS][160];    /* escaped for a label value */
  size_t n_hosts;
  /* libmicrohttpd complains once per bad request or connection past the
   * limit: a line a second at most. Its thread's, and the starting thread's
   * before it: the lock is for the overlap. */
  pthread_mutex_t log_lock;
  struct ldr_log_limit log_limit;
};

static void bump(atomic_ullong *x, unsigned long long by) {
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + by,
                        memory_order_relaxed);
}

static size_t bucket_of(int64_t ns) { return ldr_histogram_bucket(ns); }

void ldr_metrics_started(struct ldr_metrics_worker *m, size_t method) {
  if (m != NULL) bump(&m->started[method], 1);
}

void ldr_metrics_handled(struct ldr_metrics_worker *m, size_t method, int code, int64_t ns) {
  if (m == NULL) return;
  if (code < 0 || code > 16) code = 2;
  bump(&m->handled[method][code], 1);
  bump(&m->latency[method][bucket_of(ns)], 1);
  bump(&m->latency_ns[method], (unsigned long long)(ns > 0 ? ns : 0));
}

void ldr_metrics_backend(struct ldr_metrics_worker *m, int64_t ns, size_t rows_read,
                         size_t rows_written) {
  if (m == NULL) return;
  bump(&m->backend[bucket_of(ns)], 1);
  bump(&m->backend_ns, (unsigned long long)(ns > 0 ? ns : 0));
  bump(&m->rows_read, rows_read);
  bump(&m->rows_written, rows_written);
}

void ldr_metrics_registry(struct ldr_metrics *m, struct ldr_registry_source *s) { m->registry = s; }

/* Set once the listener runs, while /metrics may already be scraped. */
void ldr_metrics_http(struct ldr_metrics *m, struct ldr_http *h) { atomic_store(&m->http, h); }

void ldr_metrics_connected(struct ldr_metrics_worker *m, int up) {
  if (m != NULL)
    atomic_store_explicit(&m->connected, up > 0 ? (unsigned long long)up : 0, memory_order_relaxed);
}

void ldr_metrics_conns(struct ldr_metrics_worker *m, const struct ldr_conn_state *conns, size_t n) {
  for (size_t i = 0; m != NULL && i < LDR_CONNS_MAX; i++) {
    unsigned v = 0;
    if (i < n && conns[i].host < LDR_METRIC_HOSTS)
      v = (unsigned)(conns[i].role + 1) << 8 | (unsigned)(conns[i].host + 1);
    atomic_store_explicit(&m->conn_where[i], v, memory_order_relaxed);
  }
}

void ldr_metrics_store(struct ldr_metrics_worker *m, struct ldr_backend *b) {
  struct ldr_conn_state conns[LDR_CONNS_MAX];
  if (m == NULL || b == NULL) return;
  ldr_metrics_connected(m, b->ops->connected(b));
  ldr_metrics_conns(m, conns, ldr_backend_conns(b, conns));
}

/* `s` as a Prometheus label value: backslash, quote and newline escaped. */
static void label_value(const char *s, char *buf, size_t cap) {
  size_t o = 0;
  for (; *s && o + 3 < cap; s++) {
    if (*s == '\\' || *s == '"' || *s == '\n') buf[o++] = '\\';
    buf[o++] = *s == '\n' ? 'n' : *s;
  }
  buf[o] = '\0';
}

struct ldr_metrics *ldr_metrics_new(const struct ldr_config *cfg, int nworkers) {
  struct ldr_metrics *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->workers = calloc((size_t)nworkers, sizeof *m->workers);
  if (m->workers == NULL) {
    free(m);
    return NULL;
  }
  m->n = nworkers;
  m->cfg = cfg;
  pthread_mutex_init(&m->log_lock, NULL);
  m->store = cfg->store.type_name;
  char label[160];
  while (m->n_hosts < LDR_METRIC_HOSTS &&
         ldr_backend_host_label(&cfg->store, m->n_hosts, label, sizeof label)) {
    label_value(label, m->hosts[m->n_hosts], sizeof m->hosts[0]);
    m->n_hosts++;
  }
  return m;
}

struct ldr_metrics_worker *ldr_metrics_worker(struct ldr_metrics *m, int i) {
  return m ? &m->workers[i] : NULL;
}

/* A growing text buffer for one scrape. */
struct out {
  char *p;
  size_t len, cap;
  int failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = o->failed ? 0 : vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (o->failed || n < 0) {
      o->failed = 1;
      return;
    }
    if ((size_t)n < o->cap - o->len) {
      o->len += (size_t)n;
      return;
    }
    char *bigger = realloc(o->p, o->cap * 2 + (size_t)n);
    if (bigger == NULL) {
      o->failed = 1;
      return;
    }
    o->p = bigger;
    o->cap = o->cap * 2 + (size_t)n;
  }
}

static unsigned long long sum(const struct ldr_metrics *m, size_t offset) {
  unsigned long long s = 0;
  for (int i = 0; i < m->n; i++)
    s += atomic_load_explicit((atomic_ullong *)((char *)&m->workers[i] + offset),
                              memory_order_relaxed);
  return s;
}

/* Where `field` of a worker's block lies, for summing it over the workers. */
static const struct ldr_metrics_worker probe;
#define OFF(field) ((size_t)((const char *)&probe.field - (const char *)&probe))
#define SUM(m, field) sum((m), OFF(field))

/* "/larder.v1.OnlineStore/OnlineRead" -> service and method. */
static void split(const char *path, char *service, size_t scap, const char **method) {
  const char *slash = strrchr(path, '/');
  size_t n = (size_t)(slash - path - 1);
  if (n >= scap) n = scap - 1;
  memcpy(service, path + 1, n);
  service[n] = '\0';
  *method = slash + 1;
}

static void histogram(struct out *o, const char *name, const char *labels,
                      const struct ldr_metrics *m, size_t buckets_off, size_t ns_off) {
  unsigned long long cum = 0;
  for (size_t b = 0; b <= LDR_METRIC_BUCKETS; b++) {
    cum += sum(m, buckets_off + b * sizeof(atomic_ullong));
    if (b < LDR_METRIC_BUCKETS)
      put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, labels[0] ? "," : "",
          ldr_histogram_bounds_s[b], cum);
    else
      put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "", cum);
  }
  put(o, "%s_sum{%s} %.9f\n", name, labels, (double)sum(m, ns_off) / 1e9);
  put(o, "%s_count{%s} %llu\n", name, labels, cum);
}

const char *ldr_grpc_code_name(int code) {
  return code >= 0 && code < 17 ? code_names[code] : "Unknown";
}

/* go-grpc-prometheus's grpc_type of method i (the last slot: unknown methods). */
static const char *method_type(size_t i) {
  if (i == ldr_n_methods) return "unary";
  return ldr_methods[i].stream == LDR_STREAM_BIDI    ? "bidi_stream"
         : ldr_methods[i].stream == LDR_STREAM_WATCH ? "server_stream"
                                                     : "unary";
}

/* larder_backend_host_connections: the open connections on each server, by
 * what they serve, for every role the workers' stores use (a store without
 * servers has none). */
static void host_connections(struct out *o, const struct ldr_metrics *m, const char *store) {
  unsigned long long count[3][LDR_METRIC_HOSTS] = {{0}};
  int roles[3] = {0};
  for (int w = 0; w < m->n; w++)
    for (size_t i = 0; i < LDR_CONNS_MAX; i++) {
      unsigned v = atomic_load_explicit(&m->workers[w].conn_where[i], memory_order_relaxed);
      unsigned role = (v >> 8) - 1, host = v & 0xff;
      if (v == 0 || role > 2) continue;
      roles[role] = 1;
      if (host > 0 && host <= m->n_hosts) count[role][host - 1]++;
    }
  if (m->n_hosts == 0) return;
  put(o, "# HELP larder_backend_host_connections Open connections to the online store, by the "
         "server each is on and what it serves (all: reads and writes).\n"
         "# TYPE larder_backend_host_connections gauge\n");
  for (int r = 0; r < 3; r++)
    for (size_t h = 0; roles[r] && h < m->n_hosts; h++)
      put(o, "larder_backend_host_connections{%s,role=\"%s\",host=\"%s\"} %llu\n", store,
          ldr_conn_role_name((enum ldr_conn_role)r), m->hosts[h], count[r][h]);
}

char *ldr_metrics_text(const struct ldr_metrics *m, size_t *len) {
  struct out o = {malloc(16384), 0, 16384, 0};
  if (o.p == NULL) return NULL;
  put(&o,
      "# HELP larder_build_info larder's version and online store.\n"
      "# TYPE larder_build_info gauge\n"
      "larder_build_info{version=\"%s\",store=\"%s\"} 1\n",
      LDR_VERSION, m->store);
  put(&o, "# HELP grpc_server_started_total RPCs started on the server.\n"
          "# TYPE grpc_server_started_total counter\n");
  /* The unknown methods' slot too: each call counted handled was counted started. */
  for (size_t i = 0; i <= ldr_n_methods; i++) {
    char svc[128] = "unknown";
    const char *meth = "unknown";
    if (i < ldr_n_methods) split(ldr_methods[i].path, svc, sizeof svc, &meth);
    put(&o,
        "grpc_server_started_total{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"} "
        "%llu\n",
        method_type(i), svc, meth, SUM(m, started[i]));
  }
  put(&o, "# HELP grpc_server_handled_total RPCs completed on the server, by status code.\n"
          "# TYPE grpc_server_handled_total counter\n");
  for (size_t i = 0; i <= ldr_n_methods; i++) {
    char svc[128] = "unknown";
    const char *meth = "unknown";
    if (i < ldr_n_methods) split(ldr_methods[i].path, svc, sizeof svc, &meth);
    const char *type = method_type(i);
    for (int code = 0; code < 17; code++) {
      unsigned long long n = SUM(m, handled[i][code]);
      /* Every OK line is there; other codes once they happened. */
      if (n == 0 && code != 0) continue;
      put(&o,
          "grpc_server_handled_total{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\","
          "grpc_code=\"%s\"} %llu\n",
          type, svc, meth, code_names[code], n);
    }
  }
  put(&o, "# HELP grpc_server_handling_seconds Time from a call's start to its status.\n"
          "# TYPE grpc_server_handling_seconds histogram\n");
  for (size_t i = 0; i < ldr_n_methods; i++) {
    char svc[128], labels[256];
    const char *meth;
    split(ldr_methods[i].path, svc, sizeof svc, &meth);
    snprintf(labels, sizeof labels, "grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"",
             method_type(i), svc, meth);
    histogram(&o, "grpc_server_handling_seconds", labels, m, OFF(latency[i]), OFF(latency_ns[i]));
  }
  put(&o, "# HELP larder_backend_statement_seconds Time of each call into the online store "
          "(one statement or transaction).\n"
          "# TYPE larder_backend_statement_seconds histogram\n");
  char store[64];
  snprintf(store, sizeof store, "store=\"%s\"", m->store);
  histogram(&o, "larder_backend_statement_seconds", store, m, OFF(backend), OFF(backend_ns));
  put(&o,
      "# HELP larder_rows_read_total Entity keys looked up in the online store.\n"
      "# TYPE larder_rows_read_total counter\nlarder_rows_read_total{%s} %llu\n"
      "# HELP larder_rows_written_total Rows written to the online store.\n"
      "# TYPE larder_rows_written_total counter\nlarder_rows_written_total{%s} %llu\n",
      store, SUM(m, rows_read), store, SUM(m, rows_written));
  put(&o,
      "# HELP larder_backend_connections Open connections to the online store.\n"
      "# TYPE larder_backend_connections gauge\nlarder_backend_connections{%s} %llu\n",
      store, SUM(m, connected));
  host_connections(&o, m, store);
  put(&o,
      "# HELP larder_workers Threads serving gRPC calls: the workers and the health thread.\n"
      "# TYPE larder_workers gauge\nlarder_workers %d\n",
      m->n);
  if (m->registry != NULL) {
    struct ldr_registry_stats st;
    ldr_registry_source_stats(m->registry, &st);
    put(&o,
        "# HELP larder_registry_loads_total Registries loaded (the first one and every change).\n"
        "# TYPE larder_registry_loads_total counter\nlarder_registry_loads_total %lu\n"
        "# HELP larder_registry_load_failures_total Attempts to read the registry that failed; "
        "the last good registry keeps serving.\n"
        "# TYPE larder_registry_load_failures_total counter\n"
        "larder_registry_load_failures_total %lu\n"
        "# HELP larder_registry_up 1 when the last attempt to read the registry succeeded.\n"
        "# TYPE larder_registry_up gauge\nlarder_registry_up %d\n"
        "# HELP larder_registry_last_load_timestamp_seconds When the registry in use was "
        "loaded (0: none yet).\n"
        "# TYPE larder_registry_last_load_timestamp_seconds gauge\n"
        "larder_registry_last_load_timestamp_seconds %lld\n",
        st.loads, st.failures, !st.failing && st.loads > 0, (long long)st.last_load_s);
  }
  struct ldr_http *http = atomic_load(&((struct ldr_metrics *)m)->http);
  if (http != NULL) {
    struct ldr_sb sb = {0};
    ldr_http_metrics(http, &sb);
    const char *text = ldr_sb_str(&sb);
    if (text == NULL)
      o.failed = 1;
    else
      put(&o, "%s", text);
    ldr_sb_free(&sb);
  }
  if (o.failed) {
    free(o.p);
    return NULL;
  }
  *len = o.len;
  return o.p;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state) {
  (void)version;
  (void)upload;
  (void)upload_len;
  (void)state;
  struct ldr_metrics *m = cls;
  struct MHD_Response *r;
  unsigned status = MHD_HTTP_OK;
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    static char no[] = "only GET\n";
    r = MHD_create_response_from_buffer(sizeof no - 1, no, MHD_RESPMEM_PERSISTENT);
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
  } else if (strcmp(url, "/metrics")) {
    static char no[] = "not found: the metrics are at /metrics\n";
    r = MHD_create_response_from_buffer(sizeof no - 1, no, MHD_RESPMEM_PERSISTENT);
    status = MHD_HTTP_NOT_FOUND;
  } else {
    size_t len = 0;
    char *text = ldr_metrics_text(m, &len);
    if (text == NULL) return MHD_NO;
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  }
  if (r == NULL) return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* libmicrohttpd's own messages, as lines of larder's log: a client can make
 * them as fast as it connects, so at most one a second. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  struct ldr_metrics *m = cls;
  unsigned long long held = 0;
  pthread_mutex_lock(&m->log_lock);
  int allow = ldr_log_allow(&m->log_limit, ldr_now_ns(), &held);
  pthread_mutex_unlock(&m->log_lock);
  if (!allow) return;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
  if (held)
    ldr_log(LDR_LOG_WARN, "metrics: %s (and %llu more messages since the last line)", msg, held);
  else
    ldr_log(LDR_LOG_WARN, "metrics: %s", msg);
}

int ldr_metrics_serve(struct ldr_metrics *m, const char *listen, int *port) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  size_t hl = (size_t)(colon - listen);
  const char *from = listen;
  if (listen[0] == '[' && hl >= 2) { /* [v6 address]:port */
    from = listen + 1;
    hl -= 2;
  }
  if (hl >= sizeof host) {
    ldr_log(LDR_LOG_ERROR, "larder.metrics_listen: the host is longer than %zu bytes",
            sizeof host - 1);
    return -1;
  }
  memcpy(host, from, hl);
  host[hl] = '\0';
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0 || ai == NULL) {
    ldr_log(LDR_LOG_ERROR, "larder.metrics_listen: cannot resolve %s", listen);
    return -1;
  }
  /* epoll, not select(): a process holding more than 1,024 descriptors (HTTP
   * and gRPC connections) must still be scraped. An IPv6 address listens for
   * IPv4 too, as gRPC's and HTTP's listeners do ("[::]:9090"). */
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_DUAL_STACK;
  /* The logger first: libmicrohttpd warns about any option that comes before it. */
  m->httpd = MHD_start_daemon(flags, 0, NULL, NULL, answer, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                              m, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                              64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (m->httpd == NULL) {
    ldr_log(LDR_LOG_ERROR, "larder.metrics_listen: cannot listen on %s", listen);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : 0;
  return 0;
}

void ldr_metrics_stop(struct ldr_metrics *m) {
  if (m == NULL || m->httpd == NULL) return;
  MHD_stop_daemon(m->httpd);
  m->httpd = NULL;
}

void ldr_metrics_free(struct ldr_metrics *m) {
  if (m == NULL) return;
  ldr_metrics_stop(m);
  pthread_mutex_destroy(&m->log_lock);
  free(m->workers);
  free(m);
}
