/*
 * service/metrics.c: what a scrape shows after counting on several workers.
 * The exposition text is parsed back: every family has its HELP and TYPE,
 * every sample's labels are well-formed, histogram buckets are cumulative
 * with increasing bounds and end in +Inf equal to _count, _sum is the time
 * counted, counters are summed over the workers, and status codes are named
 * as go-grpc-prometheus names them. Then the same text over HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service/service_int.h"

/* ---- a small parser of the text format ---- */

#define MAX_LABELS 8

struct sample {
  char name[96];
  size_t n_labels;
  char key[MAX_LABELS][32], val[MAX_LABELS][96];
  double value;
};

struct family {
  char name[96], type[16];
  int help;
};

struct scrape {
  struct sample *s;
  size_t n;
  struct family f[32];
  size_t nf;
};

static const struct family *family_of(const struct scrape *x, const char *sample) {
  for (size_t i = 0; i < x->nf; i++) {
    size_t n = strlen(x->f[i].name);
    if (strncmp(sample, x->f[i].name, n)) continue;
    const char *rest = sample + n;
    if (*rest == '\0') return &x->f[i];
    if (!strcmp(x->f[i].type, "histogram") &&
        (!strcmp(rest, "_bucket") || !strcmp(rest, "_sum") || !strcmp(rest, "_count")))
      return &x->f[i];
  }
  return NULL;
}

/* Parses `text` or fails the test naming the line. */
static void parse(const char *text, size_t len, struct scrape *x) {
  memset(x, 0, sizeof *x);
  x->s = calloc(4096, sizeof *x->s);
  assert_true(len > 0 && text[len - 1] == '\n');
  assert_int_equal(strlen(text), len); /* no NUL inside */
  const char *p = text;
  int line_no = 0;
  while (*p) {
    const char *nl = strchr(p, '\n');
    char line[512];
    assert_true((size_t)(nl - p) < sizeof line);
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    p = nl + 1;
    line_no++;
    if (line[0] == '#') {
      char kind[8], name[96], rest[256];
      if (sscanf(line, "# %7s %95s %255[^\n]", kind, name, rest) != 3)
        fail_msg("line %d: '%s'", line_no, line);
      struct family *f = NULL;
      for (size_t i = 0; i < x->nf; i++)
        if (!strcmp(x->f[i].name, name)) f = &x->f[i];
      if (!strcmp(kind, "HELP")) {
        if (f != NULL) fail_msg("line %d: second HELP for %s", line_no, name);
        f = &x->f[x->nf++];
        snprintf(f->name, sizeof f->name, "%s", name);
        f->help = 1;
      } else if (!strcmp(kind, "TYPE")) {
        if (f == NULL || f->type[0])
          fail_msg("line %d: TYPE of %s without its HELP", line_no, name);
        if (strlen(rest) >= sizeof f->type) fail_msg("line %d: type '%s'", line_no, rest);
        memcpy(f->type, rest, strlen(rest) + 1);
      } else {
        fail_msg("line %d: '%s'", line_no, line);
      }
      continue;
    }
    struct sample *s = &x->s[x->n++];
    char *q = line;
    size_t nlen = strcspn(q, "{ ");
    assert_true(nlen > 0 && nlen < sizeof s->name);
    memcpy(s->name, q, nlen);
    q += nlen;
    if (*q == '{') {
      q++;
      while (*q != '}') {
        assert_true(s->n_labels < MAX_LABELS);
        size_t klen = strcspn(q, "=");
        assert_true(klen > 0 && klen < 32 && q[klen] == '=' && q[klen + 1] == '"');
        memcpy(s->key[s->n_labels], q, klen);
        q += klen + 2;
        size_t vlen = strcspn(q, "\"");
        assert_true(vlen < 96 && q[vlen] == '"');
        memcpy(s->val[s->n_labels], q, vlen);
        q += vlen + 1;
        s->n_labels++;
        if (*q == ',')
          q++;
        else if (*q != '}')
          fail_msg("line %d: bad labels: '%s'", line_no, line);
      }
      q++;
    }
    if (*q != ' ') fail_msg("line %d: no value: '%s'", line_no, line);
    char *end = NULL;
    s->value = strtod(q + 1, &end);
    if (end == q + 1 || *end != '\0') fail_msg("line %d: bad value: '%s'", line_no, line);
    const struct family *f = family_of(x, s->name);
    if (f == NULL || !f->type[0])
      fail_msg("line %d: %s has no HELP and TYPE before it", line_no, s->name);
  }
}

static const char *label(const struct sample *s, const char *key) {
  for (size_t i = 0; i < s->n_labels; i++)
    if (!strcmp(s->key[i], key)) return s->val[i];
  return NULL;
}

/* The samples named `name` whose labels include every pair of `want` ("k=v,k=v"). */
static size_t find(const struct scrape *x, const char *name, const char *want,
                   const struct sample **out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < x->n; i++) {
    if (strcmp(x->s[i].name, name)) continue;
    int ok = 1;
    char pairs[512];
    snprintf(pairs, sizeof pairs, "%s", want);
    for (char *save = NULL, *kv = strtok_r(pairs, ",", &save); ok && kv;
         kv = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(kv, '=');
      *eq = '\0';
      const char *v = label(&x->s[i], kv);
      ok = v != NULL && !strcmp(v, eq + 1);
    }
    if (ok && n < cap) out[n] = &x->s[i];
    n += ok;
  }
  return n;
}

static double value_of(const struct scrape *x, const char *name, const char *labels) {
  const struct sample *s[2];
  size_t n = find(x, name, labels, s, 2);
  if (n != 1) fail_msg("%s{%s}: %zu samples, want 1", name, labels, n);
  return s[0]->value;
}

/* ---- the test ---- */

static struct ldr_config cfg;

static size_t method_index(const char *path) {
  for (size_t i = 0; i < ldr_n_methods; i++)
    if (!strcmp(ldr_methods[i].path, path)) return i;
  fail_msg("no method %s", path);
  return 0;
}

/* What is counted: on which worker, which method slot, code and duration. */
static const struct {
  int worker;
  const char *path; /* NULL: an unknown method */
  int code;
  int64_t ns;
} calls[] = {
    {0, "/larder.v1.OnlineStore/OnlineRead", 0, 50000},          /* 50 µs */
    {1, "/larder.v1.OnlineStore/OnlineRead", 0, 300000},         /* 300 µs */
    {0, "/larder.v1.OnlineStore/OnlineRead", 3, 1000000000},     /* exactly 1 s */
    {1, "/larder.v1.OnlineStore/OnlineRead", 8, 20000000000LL},  /* past the last bound */
    {0, "/larder.v1.OnlineStore/OnlineWriteBatch", 16, 2000000}, /* 2 ms */
    {1, "/grpc.health.v1.Health/Watch", 1, 7000000},
    {0, NULL, 12, 1000},
    {1, "/larder.v1.OnlineStore/Update", 17, 1000}, /* not a status: counted as Unknown */
    {1, "/larder.v1.OnlineStore/Update", -1, -5},   /* a negative time counts as 0 */
};
#define N_CALLS (sizeof calls / sizeof calls[0])

static const char *const code_names[17] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

static void code_names_match_go_grpc_prometheus(void **state) {
  (void)state;
  for (int code = 0; code < 17; code++)
    assert_string_equal(ldr_grpc_code_name(code), code_names[code]);
  assert_string_equal(ldr_grpc_code_name(17), "Unknown");
  assert_string_equal(ldr_grpc_code_name(-1), "Unknown");
}

static struct ldr_metrics *counted(void) {
  struct ldr_metrics *m = ldr_metrics_new(&cfg, 2);
  assert_non_null(m);
  for (size_t i = 0; i < N_CALLS; i++) {
    struct ldr_metrics_worker *w = ldr_metrics_worker(m, calls[i].worker);
    size_t slot = calls[i].path ? method_index(calls[i].path) : ldr_n_methods;
    ldr_metrics_started(w, slot);
    ldr_metrics_handled(w, slot, calls[i].code, calls[i].ns);
  }
  ldr_metrics_backend(ldr_metrics_worker(m, 0), 400000, 10, 0);  /* 0.4 ms */
  ldr_metrics_backend(ldr_metrics_worker(m, 1), 3000000, 0, 25); /* 3 ms */
  ldr_metrics_backend(ldr_metrics_worker(m, 1), 60000000, 5, 0); /* 60 ms */
  ldr_metrics_connected(ldr_metrics_worker(m, 0), 1);
  ldr_metrics_connected(ldr_metrics_worker(m, 1), 2); /* a read and a write connection */
  /* A NULL block (no metrics) counts nothing and does not crash. */
  ldr_metrics_started(NULL, 0);
  ldr_metrics_handled(NULL, 0, 0, 1);
  ldr_metrics_backend(NULL, 1, 1, 1);
  ldr_metrics_connected(NULL, 1);
  assert_null(ldr_metrics_worker(NULL, 0));
  return m;
}

static void labels_of(size_t slot, char *buf, size_t cap) {
  if (slot == ldr_n_methods) {
    snprintf(buf, cap, "grpc_type=unary,grpc_service=unknown,grpc_method=unknown");
    return;
  }
  const char *path = ldr_methods[slot].path, *slash = strrchr(path, '/');
  const char *type = ldr_methods[slot].stream == LDR_STREAM_BIDI    ? "bidi_stream"
                     : ldr_methods[slot].stream == LDR_STREAM_WATCH ? "server_stream"
                                                                    : "unary";
  snprintf(buf, cap, "grpc_type=%s,grpc_service=%.*s,grpc_method=%s", type, (int)(slash - path - 1),
           path + 1, slash + 1);
}

/* Checks one histogram series: bounds, cumulative counts, +Inf = _count, _sum. */
static void check_histogram(const struct scrape *x, const char *name, const char *labels,
                            const double *want_le, const double *want_cum, size_t n_want,
                            double want_count, double want_sum) {
  const struct sample *b[32];
  char buckets[128];
  snprintf(buckets, sizeof buckets, "%s_bucket", name);
  size_t n = find(x, buckets, labels, b, 32);
  assert_int_equal(n, LDR_METRIC_BUCKETS + 1);
  double prev_le = -1, prev = 0;
  for (size_t i = 0; i < n; i++) {
    const char *le = label(b[i], "le");
    assert_non_null(le);
    double bound = i + 1 == n ? INFINITY : strtod(le, NULL);
    if (i + 1 == n) assert_string_equal(le, "+Inf");
    if (!(bound > prev_le)) fail_msg("%s{%s}: le %s after %g", name, labels, le, prev_le);
    if (b[i]->value < prev)
      fail_msg("%s{%s}: le %s holds %g < %g", name, labels, le, b[i]->value, prev);
    for (size_t w = 0; w < n_want; w++)
      if (bound == want_le[w] && b[i]->value != want_cum[w])
        fail_msg("%s{%s}: le=%s holds %g, want %g", name, labels, le, b[i]->value, want_cum[w]);
    prev_le = bound;
    prev = b[i]->value;
  }
  char sum[128], count[128];
  snprintf(sum, sizeof sum, "%s_sum", name);
  snprintf(count, sizeof count, "%s_count", name);
  assert_true(value_of(x, count, labels) == want_count);
  assert_true(b[n - 1]->value == want_count);
  double got_sum = value_of(x, sum, labels);
  if (fabs(got_sum - want_sum) > 1e-9)
    fail_msg("%s{%s}: sum %.9f, want %.9f", name, labels, got_sum, want_sum);
}

static void exposition_after_counting(void **state) {
  (void)state;
  struct ldr_metrics *m = counted();
  size_t len = 0;
  char *text = ldr_metrics_text(m, &len);
  assert_non_null(text);
  struct scrape x;
  parse(text, len, &x);

  static const struct {
    const char *name, *type;
  } families[] = {
      {"larder_build_info", "gauge"},
      {"grpc_server_started_total", "counter"},
      {"grpc_server_handled_total", "counter"},
      {"grpc_server_handling_seconds", "histogram"},
      {"larder_backend_statement_seconds", "histogram"},
      {"larder_rows_read_total", "counter"},
      {"larder_rows_written_total", "counter"},
      {"larder_backend_connections", "gauge"},
      {"larder_workers", "gauge"},
  };
  assert_int_equal(x.nf, sizeof families / sizeof families[0]);
  for (size_t i = 0; i < x.nf; i++) {
    assert_string_equal(x.f[i].name, families[i].name);
    assert_string_equal(x.f[i].type, families[i].type);
  }
  assert_true(value_of(&x, "larder_build_info", "version=" LDR_VERSION ",store=sqlite") == 1);
  assert_true(value_of(&x, "larder_workers", "") == 2);

  /* Per method: started, handled by code, and the latency histogram, from the calls above. */
  for (size_t slot = 0; slot <= ldr_n_methods; slot++) {
    char labels[256];
    labels_of(slot, labels, sizeof labels);
    double started = 0, handled[17] = {0}, sum = 0;
    double cum_at[4] = {0}; /* le = 0.0001, 0.0005, 1, 10 */
    static const double les[4] = {0.0001, 0.0005, 1, 10};
    for (size_t i = 0; i < N_CALLS; i++) {
      size_t s = calls[i].path ? method_index(calls[i].path) : ldr_n_methods;
      if (s != slot) continue;
      started++;
      handled[calls[i].code >= 0 && calls[i].code <= 16 ? calls[i].code : 2]++;
      double secs = calls[i].ns > 0 ? (double)calls[i].ns / 1e9 : 0;
      sum += secs;
      for (int k = 0; k < 4; k++) cum_at[k] += secs <= les[k];
    }
    assert_true(value_of(&x, "grpc_server_started_total", labels) == started);
    if (slot < ldr_n_methods) {
      check_histogram(&x, "grpc_server_handling_seconds", labels, les, cum_at, 4, started, sum);
    }
    for (int code = 0; code < 17; code++) {
      char with_code[300];
      snprintf(with_code, sizeof with_code, "%s,grpc_code=%s", labels, code_names[code]);
      const struct sample *s[2];
      size_t n = find(&x, "grpc_server_handled_total", with_code, s, 2);
      /* Every OK line is shown; other codes once they happened. */
      size_t want_lines = code == 0 || handled[code] > 0;
      if (n != want_lines) fail_msg("handled{%s}: %zu lines, want %zu", with_code, n, want_lines);
      if (n) assert_true(s[0]->value == handled[code]);
    }
  }
  /* No handled line carries a code name outside the table. */
  for (size_t i = 0; i < x.n; i++) {
    if (strcmp(x.s[i].name, "grpc_server_handled_total")) continue;
    const char *code = label(&x.s[i], "grpc_code");
    int known = 0;
    for (int c = 0; c < 17; c++) known |= code && !strcmp(code, code_names[c]);
    if (!known) fail_msg("grpc_code=%s", code ? code : "(none)");
  }
  /* The store's statements: 0.4 ms, 3 ms, 60 ms. */
  static const double les[] = {0.00025, 0.0005, 0.0025, 0.005, 0.05, 0.1};
  static const double cum[] = {0, 1, 1, 2, 2, 3};
  check_histogram(&x, "larder_backend_statement_seconds", "store=sqlite", les, cum, 6, 3, 0.0634);
  assert_true(value_of(&x, "larder_rows_read_total", "store=sqlite") == 15);
  assert_true(value_of(&x, "larder_rows_written_total", "store=sqlite") == 25);
  assert_true(value_of(&x, "larder_backend_connections", "store=sqlite") == 3);
  /* A store without servers has no connections by server. */
  assert_null(family_of(&x, "larder_backend_host_connections"));
  ldr_metrics_connected(ldr_metrics_worker(m, 1), 0);
  free(text);
  text = ldr_metrics_text(m, &len);
  free(x.s);
  parse(text, len, &x);
  assert_true(value_of(&x, "larder_backend_connections", "store=sqlite") == 1);
  free(x.s);
  free(text);
  ldr_metrics_free(m);
  ldr_metrics_free(NULL);
}

/* One HTTP/1.0 request to 127.0.0.1:port; returns the response (malloc'd). */
static char *http(int port, const char *request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  for (ssize_t r; (r = read(fd, buf + n, cap - n - 1)) > 0;) n += (size_t)r;
  buf[n] = '\0';
  close(fd);
  return buf;
}

static void served_over_http(void **state) {
  (void)state;
  struct ldr_metrics *m = counted();
  int port = 0;
  /* Starting writes nothing to the log (the log is stderr: caught in a file meanwhile). */
  char log_path[] = "/tmp/larder-metrics-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  assert_true(log_fd >= 0);
  unlink(log_path);
  int saved = dup(STDERR_FILENO);
  dup2(log_fd, STDERR_FILENO);
  int rc = ldr_metrics_serve(m, "127.0.0.1:0", &port);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char logged[512] = "";
  ssize_t nlog = pread(log_fd, logged, sizeof logged - 1, 0);
  close(log_fd);
  assert_int_equal(rc, 0);
  assert_true(port > 0);
  if (nlog != 0) fail_msg("starting the endpoint logged: %s", logged);
  static const struct {
    const char *request, *status;
    int body_is_metrics;
  } cases[] = {
      {"GET /metrics HTTP/1.0\r\n\r\n", "200", 1},
      {"GET /other HTTP/1.0\r\n\r\n", "404", 0},
      {"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", "405", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *resp = http(port, cases[i].request);
    /* "HTTP/1.x NNN ...": whichever version the library answers with. */
    if (strncmp(resp, "HTTP/1.", 7) || strncmp(resp + 9, cases[i].status, 3))
      fail_msg("%s-> %.40s", cases[i].request, resp);
    if (cases[i].body_is_metrics) {
      assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
      const char *body = strstr(resp, "\r\n\r\n") + 4;
      size_t len = 0;
      char *text = ldr_metrics_text(m, &len);
      assert_string_equal(body, text);
      free(text);
    }
    free(resp);
  }
  ldr_metrics_free(m);
}

#ifdef LDR_WITH_POSTGRES
#include "backends/postgres.h"

/* larder_backend_host_connections: each worker's connections counted on the
 * server each is on, by role, with every configured server listed. */
static void connections_by_server(void **state) {
  (void)state;
  struct ldr_postgres_options o = {.host = "db1,db2", .port = "5432,5433"};
  struct ldr_config pg = {0};
  pg.store.schema = &ldr_postgres_schema;
  pg.store.type_name = "postgres";
  pg.store.opts = &o;
  struct ldr_metrics *m = ldr_metrics_new(&pg, 3);
  assert_non_null(m);
  const struct ldr_conn_state w0[] = {{LDR_CONN_READ, 1}, {LDR_CONN_WRITE, 0}};
  const struct ldr_conn_state w1[] = {{LDR_CONN_READ, 1}, {LDR_CONN_WRITE, -1}};
  const struct ldr_conn_state w2[] = {{LDR_CONN_READ, 0}, {LDR_CONN_WRITE, 0}};
  ldr_metrics_conns(ldr_metrics_worker(m, 0), w0, 2);
  ldr_metrics_conns(ldr_metrics_worker(m, 1), w1, 2);
  ldr_metrics_conns(ldr_metrics_worker(m, 2), w2, 2);
  ldr_metrics_conns(NULL, w2, 2);
  size_t len = 0;
  char *text = ldr_metrics_text(m, &len);
  struct scrape x;
  parse(text, len, &x);
  static const struct {
    const char *labels;
    double want;
  } cases[] = {
      {"store=postgres,role=read,host=db1:5432", 1},
      {"store=postgres,role=read,host=db2:5433", 2},
      {"store=postgres,role=write,host=db1:5432", 2},
      {"store=postgres,role=write,host=db2:5433", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (value_of(&x, "larder_backend_host_connections", cases[i].labels) != cases[i].want)
      fail_msg("%s: %g, want %g", cases[i].labels,
               value_of(&x, "larder_backend_host_connections", cases[i].labels), cases[i].want);
  /* No role that no worker has. */
  const struct sample *none[1];
  assert_int_equal(find(&x, "larder_backend_host_connections", "role=all", none, 1), 0);
  free(x.s);
  free(text);
  /* A worker whose reads moved: the counts follow. */
  const struct ldr_conn_state moved[] = {{LDR_CONN_READ, 0}, {LDR_CONN_WRITE, 0}};
  ldr_metrics_conns(ldr_metrics_worker(m, 1), moved, 2);
  text = ldr_metrics_text(m, &len);
  parse(text, len, &x);
  assert_true(value_of(&x, "larder_backend_host_connections", "role=read,host=db2:5433") == 1);
  assert_true(value_of(&x, "larder_backend_host_connections", "role=read,host=db1:5432") == 2);
  free(x.s);
  free(text);
  ldr_metrics_free(m);
}
#endif

int main(void) {
  cfg.store.type_name = "sqlite";
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(code_names_match_go_grpc_prometheus),
      cmocka_unit_test(exposition_after_counting),
      cmocka_unit_test(served_over_http),
#ifdef LDR_WITH_POSTGRES
      cmocka_unit_test(connections_by_server),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
