/*
 * db-ceiling: the database's own ceiling for larder's read. C threads, one
 * connection each, issue the very statement larder prepares, with the same
 * binary parameters and results, and report what larder-bench reports. No
 * gRPC, no decoding: what is left is the database and its client library.
 *
 *   db-ceiling --backend postgres|mysql --table NAME [--keys K] [--features F] [--key-space N]
 *              [--concurrency C] [--connections M] [--per-key] [--warmup S] [--duration S]
 *              [--db-pid PID] [--label TEXT] [--single-row] [--per-entity] [--session SQL]
 *
 * C reads are kept in flight on M connections (default M = C).
 *
 * - naive (C / M = 1): each connection waits for one statement's answer
 *   before it sends the next: a round trip per read. On MySQL the statement
 *   is prepared (binary protocol), as larder's.
 * - pipelined (C / M > 1): each connection keeps C / M reads in flight.
 *   PostgreSQL: libpq's pipeline mode, every read its own prepared statement
 *   and Sync, sent without waiting for the answers before it. MariaDB:
 *   Connector/C has one command in flight per connection (its API refuses a
 *   second before the first's answer is read: "commands out of sync"), so the
 *   way it allows several statements per round trip is a multi-statement text
 *   query: the C / M reads' SELECTs in one COM_QUERY, their result sets read
 *   one after another (CLIENT_MULTI_STATEMENTS), and the next batch sent when
 *   they are in.
 *
 * A read is one statement for its K keys (entity_key = ANY($1), IN (...)),
 * as larder's; with --per-key, K statements of one key each, as Feast's MySQL
 * store does. With --db-pid, the CPU time of the database (that process and
 * every process it started, from /proc) over the measured seconds per read
 * is in the JSON line as "db_cpu_us_per_read"; the client's own CPU per read
 * (getrusage) always is, as "client_cpu_us_per_read".
 *
 * Two PostgreSQL variants measure what larder's choices cost (naive mode):
 * --single-row reads the rows in libpq's single-row mode, one PGresult per
 * row, as larder does to bound its memory; --per-entity asks for one row per
 * key (GROUP BY entity_key, the features and values as arrays). --session SQL
 * runs a statement on each connection first (a session setting to try).
 *
 * The server comes from TEST_PG_* or TEST_MYSQL_* (integration/services.sh).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <libpq-fe.h>
#include <math.h>
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proc_cpu.h"

struct opts {
  const char *backend, *table, *label;
  int keys, features, key_space, concurrency, connections, per_key, db_pid, single_row, per_entity;
  double warmup, duration;
};

struct worker {
  pthread_t thread;
  const struct opts *o;
  int depth; /* reads in flight on this connection */
  uint64_t seed;
  uint32_t *lat;
  size_t nlat, cap;
  unsigned long long errors, rows;
};

static uint64_t t_rec, t_end;
static const char *session_sql; /* --session */
static atomic_int failed_start;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
  uint64_t now = now_ns();
  if (t <= now) return;
  struct timespec ts = {(time_t)((t - now) / 1000000000u), (long)((t - now) % 1000000000u)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static const char *env(const char *n) {
  const char *v = getenv(n);
  if (v == NULL) {
    fprintf(stderr, "db-ceiling: %s is not set (source the env file of integration/services.sh)\n",
            n);
    exit(2);
  }
  return v;
}

/* serialize_entity_key({driver_id: int64 id}), version 3: 37 bytes. */
static void key_bytes(int64_t id, uint8_t *out) {
  static const uint8_t head[29] = {1,   0,   0,   0,   2,   0,   0, 0, 9, 0, 0, 0, 'd', 'r', 'i',
                                   'v', 'e', 'r', '_', 'i', 'd', 4, 0, 0, 0, 8, 0, 0,   0};
  memcpy(out, head, 29);
  for (int i = 0; i < 8; i++) out[29 + i] = (uint8_t)((uint64_t)id >> (8 * i));
}

/* The lowercase hex of a random key, as MySQL stores it: 74 characters and a NUL. */
static void key_hex(struct worker *w, char *out) {
  uint8_t k[37];
  key_bytes((int64_t)(rnd(&w->seed) % (uint64_t)w->o->key_space), k);
  for (int j = 0; j < 37; j++) sprintf(out + 2 * j, "%02x", k[j]);
}

static void record(struct worker *w, uint64_t t0, uint64_t t1, int ok) {
  if (t0 < t_rec || t1 > t_end) return;
  if (!ok) {
    w->errors++;
    return;
  }
  if (w->nlat == w->cap)
    w->lat = realloc(w->lat, (w->cap = w->cap ? w->cap * 2 : 65536) * sizeof *w->lat);
  w->lat[w->nlat++] = (uint32_t)((t1 - t0) / 1000);
}

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

/* ---- PostgreSQL ------------------------------------------------------------- */

static PGconn *pg_connect(const struct opts *o) {
  const char *kw[] = {"host", "port", "dbname", "user", "password", "sslmode", "options", NULL};
  /* Generic plans, as larder's sessions have them (backends/postgres_pipe.c):
   * otherwise the server plans each read for its parameters again. */
  static const char *session = "-c TimeZone=UTC -c plan_cache_mode=force_generic_plan";
  const char *val[] = {
      env("TEST_PG_HOST"),     env("TEST_PG_PORT"), env("TEST_PG_DB"), env("TEST_PG_USER"),
      env("TEST_PG_PASSWORD"), "disable",           session,           NULL};
  PGconn *c = PQconnectdbParams(kw, val, 0);
  char sql[512];
  if (o->per_entity)
    snprintf(sql, sizeof sql,
             "SELECT entity_key, array_agg(feature_name), array_agg(value), max(event_ts) FROM "
             "\"%s\" WHERE entity_key = ANY($1) GROUP BY entity_key",
             o->table);
  else
    snprintf(
        sql, sizeof sql,
        "SELECT entity_key, feature_name, value, event_ts FROM \"%s\" WHERE entity_key = ANY($1)",
        o->table);
  Oid types[1] = {1001};
  if (session_sql != NULL && PQstatus(c) == CONNECTION_OK) {
    PGresult *s = PQexec(c, session_sql);
    if (PQresultStatus(s) != PGRES_COMMAND_OK) fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    PQclear(s);
  }
  PGresult *r = PQstatus(c) == CONNECTION_OK ? PQprepare(c, "q", sql, 1, types) : NULL;
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    atomic_store(&failed_start, 1);
    PQclear(r);
    PQfinish(c);
    return NULL;
  }
  PQclear(r);
  return c;
}

/* bytea[] in binary, one dimension of `n` random keys; returns its length. */
static int pg_keys(struct worker *w, uint8_t *arr, int n) {
  uint8_t *p = put_be32(put_be32(put_be32(put_be32(put_be32(arr, 1), 0), 17), (uint32_t)n), 1);
  for (int i = 0; i < n; i++) {
    p = put_be32(p, 37);
    key_bytes((int64_t)(rnd(&w->seed) % (uint64_t)w->o->key_space), p);
    p += 37;
  }
  return (int)(p - arr);
}

/* Naive: one read, one round trip (K with --per-key), then the next. */
static void *pg_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  PGconn *c = pg_connect(o);
  if (c == NULL) return NULL;
  uint8_t *arr = malloc(20 + (size_t)o->keys * (4 + 37));
  int stmts = o->per_key ? o->keys : 1, per = o->per_key ? 1 : o->keys;
  for (;;) {
    uint64_t t0 = now_ns();
    if (t0 >= t_end) break;
    int ok = 1;
    for (int s = 0; s < stmts; s++) {
      const char *values[1] = {(const char *)arr};
      int lengths[1] = {pg_keys(w, arr, per)}, formats[1] = {1};
      if (o->single_row) { /* a PGresult per row, as larder reads */
        ok &= PQsendQueryPrepared(c, "q", 1, values, lengths, formats, 1) && PQsetSingleRowMode(c);
        for (PGresult *r; (r = PQgetResult(c)) != NULL; PQclear(r)) {
          ExecStatusType st = PQresultStatus(r);
          ok &= st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK;
          w->rows += (unsigned long long)PQntuples(r);
        }
        continue;
      }
      PGresult *r = PQexecPrepared(c, "q", 1, values, lengths, formats, 1);
      ok &= PQresultStatus(r) == PGRES_TUPLES_OK;
      if (PQresultStatus(r) == PGRES_TUPLES_OK) w->rows += (unsigned long long)PQntuples(r);
      PQclear(r);
    }
    record(w, t0, now_ns(), ok);
  }
  free(arr);
  PQfinish(c);
  return NULL;
}

/* Pipelined: `depth` reads in flight, each its statement(s) and a Sync, sent
 * without waiting; a read is done when its Sync's result arrives. */
static void *pg_pipe_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  PGconn *c = pg_connect(o);
  if (c == NULL) return NULL;
  if (!PQenterPipelineMode(c) || PQsetnonblocking(c, 1) != 0) {
    fprintf(stderr, "postgres: cannot enter pipeline mode: %s", PQerrorMessage(c));
    atomic_store(&failed_start, 1);
    PQfinish(c);
    return NULL;
  }
  uint8_t *arr = malloc(20 + (size_t)o->keys * (4 + 37));
  int stmts = o->per_key ? o->keys : 1, per = o->per_key ? 1 : o->keys;
  struct {
    uint64_t t0;
    int ok;
  } *ring = calloc((size_t)w->depth, sizeof *ring);
  int head = 0, count = 0, broken = 0;
  while (!broken) {
    uint64_t now = now_ns();
    while (count < w->depth && now < t_end) { /* the libpq buffer takes the parameters */
      for (int s = 0; s < stmts && !broken; s++) {
        const char *values[1] = {(const char *)arr};
        int lengths[1] = {pg_keys(w, arr, per)}, formats[1] = {1};
        broken = !PQsendQueryPrepared(c, "q", 1, values, lengths, formats, 1);
      }
      broken = broken || !PQpipelineSync(c);
      int at = (head + count++) % w->depth;
      ring[at].t0 = now;
      ring[at].ok = 1;
    }
    if (count == 0 || broken) break;
    int f = PQflush(c);
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN | (f == 1 ? POLLOUT : 0)};
    if (f < 0 || poll(&pfd, 1, 5000) <= 0) break;
    if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c)) break;
    while (count > 0 && !PQisBusy(c)) {
      PGresult *r = PQgetResult(c);
      if (r == NULL) continue; /* the end of one statement's results */
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_PIPELINE_SYNC) {
        record(w, ring[head].t0, now_ns(), ring[head].ok);
        head = (head + 1) % w->depth;
        count--;
      } else if (st == PGRES_TUPLES_OK) {
        w->rows += (unsigned long long)PQntuples(r);
      } else {
        ring[head].ok = 0;
      }
      PQclear(r);
    }
  }
  if (count > 0 || broken) {
    fprintf(stderr, "postgres: the pipeline broke: %s", PQerrorMessage(c));
    w->errors += (unsigned long long)count;
  }
  free(ring);
  free(arr);
  PQfinish(c);
  return NULL;
}

/* ---- MariaDB ------------------------------------------------------------------ */

static unsigned bucket(int n) {
  if (n <= 8) return (unsigned)n;
  unsigned b = 16;
  while (b < (unsigned)n) b *= 2;
  return b;
}

static MYSQL *my_connect(unsigned long flags) {
  MYSQL *m = mysql_init(NULL);
  unsigned protocol = MYSQL_PROTOCOL_TCP;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  if (mysql_real_connect(m, env("TEST_MYSQL_HOST"), env("TEST_MYSQL_USER"),
                         env("TEST_MYSQL_PASSWORD"), env("TEST_MYSQL_DB"),
                         (unsigned)atoi(env("TEST_MYSQL_PORT")), NULL, flags) == NULL) {
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
    atomic_store(&failed_start, 1);
    mysql_close(m);
    return NULL;
  }
  if (session_sql != NULL && mysql_query(m, session_sql) != 0)
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
  return m;
}

/* Naive: larder's prepared statement (IN list padded to a bucket), one read at a time. */
static void *my_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  int per = o->per_key ? 1 : o->keys, stmts = o->per_key ? o->keys : 1;
  MYSQL *m = my_connect(0);
  if (m == NULL) return NULL;
  unsigned kb = bucket(per);
  char *sql = malloc(256 + 2 * kb);
  int n = snprintf(
      sql, 256, "SELECT entity_key, feature_name, value, event_ts FROM `%s` WHERE entity_key IN (",
      o->table);
  for (unsigned i = 0; i < kb; i++) n += sprintf(sql + n, i ? ",?" : "?");
  strcpy(sql + n, ")");
  MYSQL_STMT *st = mysql_stmt_init(m);
  if (st == NULL || mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
    atomic_store(&failed_start, 1);
    free(sql);
    mysql_close(m);
    return NULL;
  }
  free(sql);
  char(*hex)[75] = calloc(kb, sizeof *hex);
  MYSQL_BIND *params = calloc(kb, sizeof *params), res[4];
  char *key = malloc(513), *name = malloc(1025); /* this thread's result buffers */
  unsigned char *value = malloc(65536);
  unsigned long lens[3];
  MYSQL_TIME ts;
  my_bool ts_null;
  memset(res, 0, sizeof res);
  res[0].buffer_type = MYSQL_TYPE_STRING;
  res[0].buffer = key;
  res[0].buffer_length = 513;
  res[0].length = &lens[0];
  res[1].buffer_type = MYSQL_TYPE_STRING;
  res[1].buffer = name;
  res[1].buffer_length = 1025;
  res[1].length = &lens[1];
  res[2].buffer_type = MYSQL_TYPE_BLOB;
  res[2].buffer = value;
  res[2].buffer_length = 65536;
  res[2].length = &lens[2];
  res[3].buffer_type = MYSQL_TYPE_TIMESTAMP;
  res[3].buffer = &ts;
  res[3].is_null = &ts_null;
  mysql_stmt_bind_result(st, res);
  for (;;) {
    uint64_t t0 = now_ns();
    if (t0 >= t_end) break;
    int ok = 1;
    for (int s = 0; s < stmts; s++) {
      for (unsigned i = 0; i < kb; i++) {
        if (i < (unsigned)per) key_hex(w, hex[i]);
        const char *h = hex[i < (unsigned)per ? i : (unsigned)per - 1];
        params[i].buffer_type = MYSQL_TYPE_STRING;
        params[i].buffer = (void *)h;
        params[i].buffer_length = 74;
      }
      mysql_stmt_bind_param(st, params);
      int sok = mysql_stmt_execute(st) == 0 && mysql_stmt_store_result(st) == 0;
      while (sok && mysql_stmt_fetch(st) == 0) w->rows++;
      mysql_stmt_free_result(st);
      ok &= sok;
    }
    record(w, t0, now_ns(), ok);
  }
  free(hex);
  free(params);
  free(key);
  free(name);
  free(value);
  mysql_stmt_close(st);
  mysql_close(m);
  return NULL;
}

/* Pipelined as far as Connector/C allows: `depth` reads' SELECTs in one
 * multi-statement query, their result sets read as they come. */
static void *my_multi_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  int per = o->per_key ? 1 : o->keys, stmts = o->per_key ? o->keys : 1;
  MYSQL *m = my_connect(CLIENT_MULTI_STATEMENTS);
  if (m == NULL) return NULL;
  size_t cap = (size_t)w->depth * (size_t)stmts * (200 + (size_t)per * 80);
  char *sql = malloc(cap);
  int *last = calloc((size_t)w->depth * (size_t)stmts, sizeof *last); /* a read's last SELECT */
  for (;;) {
    uint64_t t0 = now_ns();
    if (t0 >= t_end) break;
    size_t n = 0;
    int total = w->depth * stmts;
    for (int q = 0; q < total; q++) {
      n += (size_t)snprintf(sql + n, cap - n,
                            "%sSELECT entity_key, feature_name, value, event_ts FROM `%s` WHERE "
                            "entity_key IN (",
                            q ? ";" : "", o->table);
      for (int k = 0; k < per; k++) {
        char h[75];
        key_hex(w, h);
        n += (size_t)snprintf(sql + n, cap - n, "%s'%s'", k ? "," : "", h);
      }
      n += (size_t)snprintf(sql + n, cap - n, ")");
      last[q] = q % stmts == stmts - 1;
    }
    int ok = mysql_real_query(m, sql, (unsigned long)n) == 0;
    for (int q = 0; ok && q < total; q++) {
      MYSQL_RES *res = mysql_use_result(m);
      if (res == NULL) {
        ok = 0;
        break;
      }
      while (mysql_fetch_row(res) != NULL) w->rows++;
      ok = mysql_errno(m) == 0;
      mysql_free_result(res);
      if (last[q]) record(w, t0, now_ns(), ok);
      if (q + 1 < total && mysql_next_result(m) != 0) ok = 0;
    }
    if (!ok) {
      fprintf(stderr, "mysql: %s\n", mysql_error(m));
      w->errors++;
      break;
    }
    while (mysql_next_result(m) == 0) { /* nothing is left; drains a protocol surprise */
    }
  }
  free(sql);
  free(last);
  mysql_close(m);
  return NULL;
}

/* ---- main ----------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)ceil(p / 100.0 * (double)n);
  return v[i ? i - 1 : 0];
}

/* This process's CPU time, every thread's. */
static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void usage(void) {
  fprintf(stderr,
          "usage: db-ceiling --backend postgres|mysql --table NAME [--keys K] [--features F]\n"
          "                  [--key-space N] [--concurrency C] [--connections M] [--per-key]\n"
          "                  [--warmup S] [--duration S] [--db-pid PID] [--label TEXT]\n"
          "                  [--single-row] [--per-entity] [--session SQL]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct opts o = {.backend = "postgres",
                   .table = NULL,
                   .label = NULL,
                   .keys = 1,
                   .key_space = 10000,
                   .concurrency = 16,
                   .warmup = 1,
                   .duration = 5};
  static const struct option lopts[] = {{"backend", 1, 0, 'b'},     {"table", 1, 0, 't'},
                                        {"keys", 1, 0, 'k'},        {"key-space", 1, 0, 'K'},
                                        {"concurrency", 1, 0, 'c'}, {"warmup", 1, 0, 'w'},
                                        {"duration", 1, 0, 'd'},    {"label", 1, 0, 'l'},
                                        {"features", 1, 0, 'f'},    {"connections", 1, 0, 'n'},
                                        {"per-key", 0, 0, 'p'},     {"db-pid", 1, 0, 'P'},
                                        {"single-row", 0, 0, 's'},  {"per-entity", 0, 0, 'e'},
                                        {"session", 1, 0, 'S'},     {0, 0, 0, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "", lopts, NULL);
    if (c == -1) break;
    switch (c) {
    case 'b':
      o.backend = optarg;
      break;
    case 't':
      o.table = optarg;
      break;
    case 'k':
      o.keys = atoi(optarg);
      break;
    case 'f': /* only reported: the table decides the features */
      o.features = atoi(optarg);
      break;
    case 'K':
      o.key_space = atoi(optarg);
      break;
    case 'c':
      o.concurrency = atoi(optarg);
      break;
    case 'n':
      o.connections = atoi(optarg);
      break;
    case 'p':
      o.per_key = 1;
      break;
    case 'P':
      o.db_pid = atoi(optarg);
      break;
    case 's':
      o.single_row = 1;
      break;
    case 'e':
      o.per_entity = 1;
      break;
    case 'S':
      session_sql = optarg;
      break;
    case 'w':
      o.warmup = atof(optarg);
      break;
    case 'd':
      o.duration = atof(optarg);
      break;
    case 'l':
      o.label = optarg;
      break;
    default:
      usage();
    }
  }
  int pg = !strcmp(o.backend, "postgres");
  if ((!pg && strcmp(o.backend, "mysql")) || o.table == NULL || o.keys < 1 || o.concurrency < 1)
    usage();
  if (o.connections <= 0 || o.connections > o.concurrency) o.connections = o.concurrency;
  int pipelined = o.concurrency > o.connections;
  if ((o.single_row || o.per_entity) && (!pg || pipelined || o.per_key)) {
    fprintf(stderr, "db-ceiling: --single-row and --per-entity are for naive PostgreSQL reads\n");
    return 2;
  }
  if (o.label == NULL) o.label = pg ? "postgres-c" : "mysql-c";
  if (!pg) mysql_library_init(0, NULL, NULL);
  uint64_t t0 = now_ns();
  t_rec = t0 + (uint64_t)(o.warmup * 1e9);
  t_end = t_rec + (uint64_t)(o.duration * 1e9);
  struct worker *ws = calloc((size_t)o.connections, sizeof *ws);
  void *(*run)(void *) =
      pg ? (pipelined ? pg_pipe_main : pg_main) : (pipelined ? my_multi_main : my_main);
  for (int i = 0; i < o.connections; i++) {
    ws[i].o = &o;
    /* C reads over M connections: the first C mod M take one more. */
    ws[i].depth = o.concurrency / o.connections + (i < o.concurrency % o.connections);
    ws[i].seed = 0x9e3779b97f4a7c15ull + (uint64_t)i * 7919;
    pthread_create(&ws[i].thread, NULL, run, &ws[i]);
  }
  double cpu0 = -1, cpu1 = -1, self0, self1;
  sleep_until(t_rec);
  self0 = self_cpu_s();
  if (o.db_pid > 0) cpu0 = proc_tree_cpu_s(o.db_pid);
  sleep_until(t_end);
  self1 = self_cpu_s();
  if (o.db_pid > 0) cpu1 = proc_tree_cpu_s(o.db_pid);
  size_t total = 0;
  unsigned long long errors = 0;
  for (int i = 0; i < o.connections; i++) {
    pthread_join(ws[i].thread, NULL);
    total += ws[i].nlat;
    errors += ws[i].errors;
  }
  if (atomic_load(&failed_start)) return 1;
  uint32_t *lat = malloc((total + 1) * sizeof *lat);
  size_t at = 0;
  for (int i = 0; i < o.connections; i++) {
    memcpy(lat + at, ws[i].lat, ws[i].nlat * sizeof *lat);
    at += ws[i].nlat;
    free(ws[i].lat);
  }
  qsort(lat, total, sizeof *lat, cmp_u32);
  double qps = (double)total / o.duration;
  double db_cpu = cpu0 >= 0 && cpu1 >= 0 && total ? (cpu1 - cpu0) * 1e6 / (double)total : -1;
  double client_cpu = total ? (self1 - self0) * 1e6 / (double)total : -1;
  const char *mode = pipelined      ? (pg ? "pipeline" : "multi-statement")
                     : o.single_row ? "naive, single-row"
                     : o.per_entity ? "naive, a row per key"
                                    : "naive";
  printf("%s read keys=%d c=%d (%d connections, %s%s): %.0f QPS, p50 %u us, p90 %u us, p99 %u us, "
         "p99.9 %u us, max %u us, errors %llu",
         o.label, o.keys, o.concurrency, o.connections, mode, o.per_key ? ", per key" : "", qps,
         pct(lat, total, 50), pct(lat, total, 90), pct(lat, total, 99), pct(lat, total, 99.9),
         total ? lat[total - 1] : 0, errors);
  if (db_cpu >= 0) printf(", database CPU %.1f us per read", db_cpu);
  printf(", client CPU %.1f us per read\n", client_cpu);
  printf("{\"label\":\"%s\",\"method\":\"read\",\"keys\":%d,\"features\":%d,\"concurrency\":%d,"
         "\"connections\":%d,\"mode\":\"%s\",\"per_key\":%d,"
         "\"qps\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
         "\"calls\":%llu,\"errors\":{\"FAILED\":%llu}",
         o.label, o.keys, o.features, o.concurrency, o.connections, mode, o.per_key, qps,
         pct(lat, total, 50), pct(lat, total, 90), pct(lat, total, 99), pct(lat, total, 99.9),
         total ? lat[total - 1] : 0, (unsigned long long)total + errors, errors);
  if (db_cpu >= 0) printf(",\"db_cpu_us_per_read\":%.2f", db_cpu);
  printf(",\"client_cpu_us_per_read\":%.2f}\n", client_cpu);
  free(lat);
  free(ws);
  if (!pg) mysql_library_end();
  return 0;
}
