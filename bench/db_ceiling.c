/*
 * db-ceiling: the database's own ceiling for larder's read. C threads, one
 * connection each, issue the very statement larder prepares, with the same
 * binary parameters and results, back to back, and report what larder-bench
 * reports. No gRPC, no decoding: what is left is the database and its client
 * library.
 *
 *   db-ceiling --backend postgres|mysql --table NAME [--keys K] [--features F] [--key-space N]
 *              [--concurrency C] [--warmup S] [--duration S] [--label TEXT]
 *
 * The server comes from TEST_PG_* or TEST_MYSQL_* (integration/services.sh).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <libpq-fe.h>
#include <math.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
  const char *backend, *table, *label;
  int keys, features, key_space, concurrency;
  double warmup, duration;
};

struct worker {
  pthread_t thread;
  const struct opts *o;
  uint64_t seed;
  uint32_t *lat;
  size_t nlat, cap;
  unsigned long long errors, rows;
};

static uint64_t t_rec, t_end;
static atomic_int failed_start;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static void *pg_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  const char *kw[] = {"host", "port", "dbname", "user", "password", "sslmode", "options", NULL};
  const char *val[] = {
      env("TEST_PG_HOST"),     env("TEST_PG_PORT"), env("TEST_PG_DB"), env("TEST_PG_USER"),
      env("TEST_PG_PASSWORD"), "disable",           "-c TimeZone=UTC", NULL};
  PGconn *c = PQconnectdbParams(kw, val, 0);
  char sql[256];
  snprintf(
      sql, sizeof sql,
      "SELECT entity_key, feature_name, value, event_ts FROM \"%s\" WHERE entity_key = ANY($1)",
      o->table);
  Oid types[1] = {1001};
  PGresult *r = PQstatus(c) == CONNECTION_OK ? PQprepare(c, "q", sql, 1, types) : NULL;
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    atomic_store(&failed_start, 1);
    PQclear(r);
    PQfinish(c);
    return NULL;
  }
  PQclear(r);
  size_t len = 20 + (size_t)o->keys * (4 + 37);
  uint8_t *arr = malloc(len);
  for (;;) {
    uint64_t t0 = now_ns();
    if (t0 >= t_end) break;
    /* bytea[] in binary: one dimension of `keys` elements */
    uint8_t *p =
        put_be32(put_be32(put_be32(put_be32(put_be32(arr, 1), 0), 17), (uint32_t)o->keys), 1);
    for (int i = 0; i < o->keys; i++) {
      p = put_be32(p, 37);
      key_bytes((int64_t)(rnd(&w->seed) % (uint64_t)o->key_space), p);
      p += 37;
    }
    const char *values[1] = {(const char *)arr};
    int lengths[1] = {(int)len}, formats[1] = {1};
    r = PQexecPrepared(c, "q", 1, values, lengths, formats, 1);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
      for (int i = 0; i < PQntuples(r); i++)
        w->rows += (unsigned long long)PQgetlength(r, i, 2) > 0;
    PQclear(r);
    record(w, t0, now_ns(), ok);
  }
  free(arr);
  PQfinish(c);
  return NULL;
}

static unsigned bucket(int n) {
  if (n <= 8) return (unsigned)n;
  unsigned b = 16;
  while (b < (unsigned)n) b *= 2;
  return b;
}

static void *my_main(void *arg) {
  struct worker *w = arg;
  const struct opts *o = w->o;
  MYSQL *m = mysql_init(NULL);
  unsigned protocol = MYSQL_PROTOCOL_TCP;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  unsigned kb = bucket(o->keys);
  char *sql = malloc(256 + 2 * kb);
  int n = snprintf(
      sql, 256, "SELECT entity_key, feature_name, value, event_ts FROM `%s` WHERE entity_key IN (",
      o->table);
  for (unsigned i = 0; i < kb; i++) n += sprintf(sql + n, i ? ",?" : "?");
  strcpy(sql + n, ")");
  MYSQL_STMT *st = NULL;
  if (mysql_real_connect(m, env("TEST_MYSQL_HOST"), env("TEST_MYSQL_USER"),
                         env("TEST_MYSQL_PASSWORD"), env("TEST_MYSQL_DB"),
                         (unsigned)atoi(env("TEST_MYSQL_PORT")), NULL, 0) == NULL ||
      (st = mysql_stmt_init(m)) == NULL || mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
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
    for (unsigned i = 0; i < kb; i++) {
      if (i < (unsigned)o->keys) {
        uint8_t k[37];
        key_bytes((int64_t)(rnd(&w->seed) % (uint64_t)o->key_space), k);
        for (int j = 0; j < 37; j++) sprintf(hex[i] + 2 * j, "%02x", k[j]);
      }
      const char *h = hex[i < (unsigned)o->keys ? i : (unsigned)o->keys - 1];
      params[i].buffer_type = MYSQL_TYPE_STRING;
      params[i].buffer = (void *)h;
      params[i].buffer_length = 74;
    }
    mysql_stmt_bind_param(st, params);
    int ok = mysql_stmt_execute(st) == 0 && mysql_stmt_store_result(st) == 0;
    while (ok && mysql_stmt_fetch(st) == 0) w->rows++;
    mysql_stmt_free_result(st);
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

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)ceil(p / 100.0 * (double)n);
  return v[i ? i - 1 : 0];
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
                                        {"features", 1, 0, 'f'},    {0, 0, 0, 0}};
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
      fprintf(stderr,
              "usage: db-ceiling --backend postgres|mysql --table NAME [--keys K] [--key-space N]\n"
              "                  [--concurrency C] [--warmup S] [--duration S] [--label TEXT]\n");
      return 2;
    }
  }
  int pg = !strcmp(o.backend, "postgres");
  if ((!pg && strcmp(o.backend, "mysql")) || o.table == NULL || o.keys < 1 || o.concurrency < 1)
    return 2;
  if (o.label == NULL) o.label = pg ? "postgres-c" : "mysql-c";
  if (!pg) mysql_library_init(0, NULL, NULL);
  uint64_t t0 = now_ns();
  t_rec = t0 + (uint64_t)(o.warmup * 1e9);
  t_end = t_rec + (uint64_t)(o.duration * 1e9);
  struct worker *ws = calloc((size_t)o.concurrency, sizeof *ws);
  for (int i = 0; i < o.concurrency; i++) {
    ws[i].o = &o;
    ws[i].seed = 0x9e3779b97f4a7c15ull + (uint64_t)i * 7919;
    pthread_create(&ws[i].thread, NULL, pg ? pg_main : my_main, &ws[i]);
  }
  size_t total = 0;
  unsigned long long errors = 0;
  for (int i = 0; i < o.concurrency; i++) {
    pthread_join(ws[i].thread, NULL);
    total += ws[i].nlat;
    errors += ws[i].errors;
  }
  if (atomic_load(&failed_start)) return 1;
  uint32_t *lat = malloc((total + 1) * sizeof *lat);
  size_t at = 0;
  for (int i = 0; i < o.concurrency; i++) {
    memcpy(lat + at, ws[i].lat, ws[i].nlat * sizeof *lat);
    at += ws[i].nlat;
    free(ws[i].lat);
  }
  qsort(lat, total, sizeof *lat, cmp_u32);
  double qps = (double)total / o.duration;
  printf("%s read keys=%d c=%d: %.0f QPS, p50 %u us, p90 %u us, p99 %u us, p99.9 %u us, max %u us, "
         "errors %llu\n",
         o.label, o.keys, o.concurrency, qps, pct(lat, total, 50), pct(lat, total, 90),
         pct(lat, total, 99), pct(lat, total, 99.9), total ? lat[total - 1] : 0, errors);
  printf("{\"label\":\"%s\",\"method\":\"read\",\"keys\":%d,\"features\":%d,\"concurrency\":%d,"
         "\"qps\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
         "\"calls\":%llu,\"errors\":{\"FAILED\":%llu}}\n",
         o.label, o.keys, o.features, o.concurrency, qps, pct(lat, total, 50), pct(lat, total, 90),
         pct(lat, total, 99), pct(lat, total, 99.9), total ? lat[total - 1] : 0,
         (unsigned long long)total + errors, errors);
  free(lat);
  free(ws);
  if (!pg) mysql_library_end();
  return 0;
}
