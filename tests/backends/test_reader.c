/*
 * The registry readers (ldr_reader_ops in backends/backend.h), one suite run
 * once per store against a real database: test_reader STORE (sqlite,
 * postgres, mysql). Tables are made and changed with the database's own
 * client (tests/backends/native_*.c) and read through the reader.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "backends/sqlite.h"
#include "tests/backends/native.h"

#ifdef LDR_WITH_SQLITE
#include <sqlite3.h>
#endif

#define SEC 1000000000LL
#define BIG_BLOB 70000 /* above 64 KiB: a BLOB (not LONGBLOB) column would cut it */

/* What differs between stores in this suite. */
struct store {
  const char *name; /* the native's name, argv[1] */
  const struct native *native;
  const char *blob_type; /* the proto columns' type in Feast's tables */
  const char *hex_fmt;   /* a binary literal from hex digits (one %s) */
  const char *slow_sql;  /* a statement that runs for many seconds */
  const char *pid_sql;   /* the reader's connection id; NULL: no server */
  const char *kill_fmt;  /* ends that connection (one %s), from another one */
  const char *env;       /* TEST_<env>_HOST...; NULL: a file */
  const char *scheme;    /* for the URL built from the environment */
};

static const struct store stores[] = {
#ifdef LDR_WITH_SQLITE
    {"sqlite", &native_sqlite, "BLOB", "X'%s'",
     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", NULL,
     NULL, NULL, NULL},
#endif
#ifdef LDR_WITH_POSTGRES
    {"postgres", &native_postgres, "BYTEA", "decode('%s', 'hex')", "SELECT pg_sleep(30)",
     "SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%s)", "PG", "postgresql+psycopg"},
#endif
#ifdef LDR_WITH_MYSQL
    {"mysql", &native_mysql, "LONGBLOB", "X'%s'", "SELECT SLEEP(30)", "SELECT CONNECTION_ID()",
     "KILL %s", "MYSQL", "mysql+pymysql"},
#endif
};

static const struct store *st;
static const struct ldr_reader_ops *ops;
static char url_text[1024];
static struct ldr_url url;
static char dir[512]; /* anchors a relative SQLite path */
static char objs[64], more[64], missing[64];
static unsigned char bin_all[256], bin_big[BIG_BLOB];

static const char *env(const char *suffix) {
  char name[64];
  snprintf(name, sizeof name, "TEST_%s_%s", st->env, suffix);
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Percent-encodes what a URL's credentials cannot hold as they are. */
static void encode(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 4 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~", c))
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
  }
  out[o] = '\0';
}

/* A URL of the test server with `password` and `port` (NULL: the real ones). */
static void server_url(char *buf, size_t cap, const char *password, const char *port,
                       const char *query) {
  char user[128], pw[128];
  encode(env("USER"), user, sizeof user);
  encode(password ? password : env("PASSWORD"), pw, sizeof pw);
  snprintf(buf, cap, "%s://%s:%s@%s:%s/%s%s", st->scheme, user, pw, env("HOST"),
           port ? port : env("PORT"), env("DB"), query ? query : "");
}

/* Opens a reader of `text`; its result, with *r to close in any case. */
static enum ldr_rc open_url(const char *text, int timeout_s, struct ldr_reader **r,
                            struct ldr_err *err) {
  struct ldr_url u;
  ldr_err_clear(err);
  *r = NULL;
  enum ldr_rc rc = ldr_url_parse(text, &u, err);
  if (rc == LDR_OK) rc = ops->open(&u, dir, timeout_s, r, err);
  ldr_url_free(&u);
  return rc;
}

static struct ldr_reader *must_open(void) {
  struct ldr_reader *r = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ops->open(&url, dir, 5, &r, &err) != LDR_OK) fail_msg("open: %s", err.msg);
  return r;
}

/* The password can be looked for in messages only when no other part of the
 * URL they may name (user, host, database) contains it. */
static void no_password_in(const char *msg) {
  const char *pw = st->env ? env("PASSWORD") : NULL;
  if (pw == NULL || strstr(env("USER"), pw) || strstr(env("DB"), pw) || strstr(env("HOST"), pw))
    return;
  if (strstr(msg, pw) != NULL) fail_msg("the password is in: %s", msg);
}

/* ---- rows as the reader hands them over ---- */

#define MAX_ROWS 16
#define MAX_COLS 8

struct got {
  size_t rows, cols;
  struct {
    int null;
    size_t len;
    unsigned char *data; /* a copy, NUL-terminated */
  } cell[MAX_ROWS][MAX_COLS];
  size_t stop_after; /* 0: take every row; else refuse row number stop_after + 1 */
};

static enum ldr_rc collect(void *arg, const struct ldr_row_cell *cells, size_t n,
                           struct ldr_err *err) {
  struct got *g = arg;
  if (g->stop_after != 0 && g->rows == g->stop_after)
    return ldr_err_set(err, LDR_EXHAUSTED, "enough rows");
  if (g->rows == MAX_ROWS || n > MAX_COLS) return ldr_err_set(err, LDR_INTERNAL, "too many");
  g->cols = n;
  for (size_t i = 0; i < n; i++) {
    assert_non_null(cells[i].data); /* also for NULL and empty values */
    g->cell[g->rows][i].null = cells[i].null;
    g->cell[g->rows][i].len = cells[i].len;
    g->cell[g->rows][i].data = malloc(cells[i].len + 1);
    memcpy(g->cell[g->rows][i].data, cells[i].data, cells[i].len);
    g->cell[g->rows][i].data[cells[i].len] = '\0';
  }
  g->rows++;
  return LDR_OK;
}

static void got_free(struct got *g) {
  for (size_t r = 0; r < g->rows; r++)
    for (size_t i = 0; i < g->cols; i++) free(g->cell[r][i].data);
  memset(g, 0, sizeof *g);
}

static enum ldr_rc query(struct ldr_reader *r, const char *sql, struct got *g,
                         struct ldr_err *err) {
  got_free(g);
  ldr_err_clear(err);
  return ops->query(r, sql, collect, g, err);
}

static void must_query(struct ldr_reader *r, const char *sql, struct got *g) {
  struct ldr_err err;
  if (query(r, sql, g, &err) != LDR_OK) fail_msg("%s: %s", sql, err.msg);
}

static void expect_text(const struct got *g, size_t row, size_t col, const char *want) {
  if (g->cell[row][col].null) fail_msg("row %zu column %zu is NULL, wanted %s", row, col, want);
  if (g->cell[row][col].len != strlen(want) ||
      memcmp(g->cell[row][col].data, want, strlen(want)) != 0)
    fail_msg("row %zu column %zu is \"%s\", wanted \"%s\"", row, col, g->cell[row][col].data, want);
}

static void expect_bytes(const struct got *g, size_t row, size_t col, const void *want, size_t n) {
  assert_false(g->cell[row][col].null);
  assert_int_equal(g->cell[row][col].len, n);
  if (n) assert_memory_equal(g->cell[row][col].data, want, n);
}

/* The count of rows of `more`, through the reader. */
static long count_more(struct ldr_reader *r) {
  struct got g = {0};
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", more);
  must_query(r, sql, &g);
  long n = atol((const char *)g.cell[0][0].data);
  got_free(&g);
  return n;
}

static void native_exec(const char *fmt, const char *arg) {
  char sql[512];
  snprintf(sql, sizeof sql, fmt, arg);
  if (st->native->exec(sql) != 0) fail_msg("native: %s", sql);
}

/* ---- the tests ---- */

/* How often each of this run's table names came back, among however many
 * tables other tests sharing the database have made. */
struct listing {
  int objs, more, missing, other_columns;
};

static enum ldr_rc list_tables(void *arg, const struct ldr_row_cell *cells, size_t n,
                               struct ldr_err *err) {
  struct listing *l = arg;
  (void)err;
  l->other_columns += n != 1;
  if (n < 1 || cells[0].null) return LDR_OK;
  char name[128];
  snprintf(name, sizeof name, "%.*s", (int)cells[0].len, (const char *)cells[0].data);
  l->objs += !strcmp(name, objs);
  l->more += !strcmp(name, more);
  l->missing += !strcmp(name, missing);
  /* SQLite's own tables are not the registry's. */
  l->other_columns += !strncmp(name, "sqlite_", 7);
  return LDR_OK;
}

static struct listing tables_of(struct ldr_reader *r) {
  struct listing l = {0};
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ops->query(r, ops->tables_sql, list_tables, &l, &err) != LDR_OK)
    fail_msg("tables_sql: %s", err.msg);
  return l;
}

/* tables_sql lists the tables this suite made, one name per row. */
static void lists_tables(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct listing l = tables_of(r);
  assert_int_equal(l.objs, 1);
  assert_int_equal(l.more, 1);
  assert_int_equal(l.missing, 0);
  assert_int_equal(l.other_columns, 0);
  ops->close(r);
}

/* Text as text, binary as its bytes (NULs and high bytes too, above 64 KiB,
 * and empty), numbers as decimal text, NULL flagged. */
static void reads_every_kind_of_column(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct got g = {0};
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT name, proto, ts, note FROM %s ORDER BY name", objs);
  must_query(r, sql, &g);
  assert_int_equal(g.rows, 3);
  assert_int_equal(g.cols, 4);
  expect_text(&g, 0, 0, "a");
  expect_bytes(&g, 0, 1, bin_all, sizeof bin_all);
  expect_text(&g, 0, 2, "4000000000");
  expect_text(&g, 0, 3, "h\xc3\xa9llo");
  expect_text(&g, 1, 0, "b");
  expect_bytes(&g, 1, 1, bin_big, sizeof bin_big);
  expect_text(&g, 1, 2, "5000000000");
  assert_true(g.cell[1][3].null);
  assert_int_equal(g.cell[1][3].len, 0);
  expect_text(&g, 2, 0, "c");
  expect_bytes(&g, 2, 1, "", 0);
  expect_text(&g, 2, 2, "-1");
  expect_text(&g, 2, 3, ""); /* empty, not NULL */
  assert_false(g.cell[2][3].null);

  snprintf(sql, sizeof sql, "SELECT COUNT(*), SUM(ts), MAX(ts), MIN(ts) FROM %s", objs);
  must_query(r, sql, &g);
  assert_int_equal(g.rows, 1);
  expect_text(&g, 0, 0, "3");
  expect_text(&g, 0, 1, "8999999999");
  expect_text(&g, 0, 2, "5000000000");
  expect_text(&g, 0, 3, "-1");

  snprintf(sql, sizeof sql, "SELECT COUNT(*), SUM(ts), MAX(ts) FROM %s WHERE name = 'none'", objs);
  must_query(r, sql, &g);
  assert_int_equal(g.rows, 1);
  expect_text(&g, 0, 0, "0");
  assert_true(g.cell[0][1].null);
  assert_true(g.cell[0][2].null);

  snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE name = 'none'", objs);
  must_query(r, sql, &g);
  assert_int_equal(g.rows, 0);
  got_free(&g);
  ops->close(r);
}

/* A table that does not exist is NOT_FOUND, in a snapshot too, and the
 * snapshot goes on (older registries lack optional tables). */
static void missing_table_is_not_found(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct got g = {0};
  struct ldr_err err;
  char sql[128], ok_sql[128];
  snprintf(sql, sizeof sql, "SELECT * FROM %s", missing);
  snprintf(ok_sql, sizeof ok_sql, "SELECT name FROM %s ORDER BY name", objs);
  assert_int_equal(query(r, sql, &g, &err), LDR_NOT_FOUND);
  assert_non_null(strstr(err.msg, missing));
  no_password_in(err.msg);
  ldr_err_clear(&err);
  assert_int_equal(ops->begin(r, &err), LDR_OK);
  assert_int_equal(query(r, sql, &g, &err), LDR_NOT_FOUND);
  must_query(r, ok_sql, &g);
  assert_int_equal(g.rows, 3);
  assert_int_equal(query(r, sql, &g, &err), LDR_NOT_FOUND);
  must_query(r, ok_sql, &g);
  assert_int_equal(g.rows, 3);
  ops->end(r);
  must_query(r, ok_sql, &g);
  assert_int_equal(g.rows, 3);
  got_free(&g);
  ops->close(r);
}

/* Between begin and end the reader sees one state: rows committed by
 * another connection after begin (before its first query too) show only
 * after end and a new begin. */
static void one_snapshot_from_begin_to_end(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct ldr_err err;
  ldr_err_clear(&err);
  native_exec("DELETE FROM %s", more);
  assert_int_equal(ops->begin(r, &err), LDR_OK);
  native_exec("INSERT INTO %s VALUES (1)", more);
  assert_int_equal(count_more(r), 0);
  native_exec("INSERT INTO %s VALUES (2)", more);
  assert_int_equal(count_more(r), 0);
  ops->end(r);
  assert_int_equal(count_more(r), 2);
  assert_int_equal(ops->begin(r, &err), LDR_OK);
  native_exec("INSERT INTO %s VALUES (3)", more);
  assert_int_equal(count_more(r), 2);
  /* begin while a snapshot is open starts a new one. */
  assert_int_equal(ops->begin(r, &err), LDR_OK);
  assert_int_equal(count_more(r), 3);
  ops->end(r);
  ops->end(r); /* a second end is harmless */
  native_exec("DELETE FROM %s", more);
  assert_int_equal(count_more(r), 0);
  ops->close(r);
}

/* Nothing can be written through the reader, in a snapshot or not. */
static void writes_are_refused(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct got g = {0};
  struct ldr_err err;
  char insert[128], create[128];
  snprintf(insert, sizeof insert, "INSERT INTO %s VALUES (42)", more);
  snprintf(create, sizeof create, "CREATE TABLE %s (x INT)", missing);
  long before = count_more(r);
  assert_int_equal(query(r, insert, &g, &err), LDR_DENIED);
  no_password_in(err.msg);
  assert_int_equal(query(r, create, &g, &err), LDR_DENIED);
  ldr_err_clear(&err);
  assert_int_equal(ops->begin(r, &err), LDR_OK);
  assert_int_equal(query(r, insert, &g, &err), LDR_DENIED);
  ops->end(r);
  assert_int_equal(count_more(r), before);
  assert_int_equal(tables_of(r).missing, 0);
  got_free(&g);
  ops->close(r);
}

/* A query is one statement; the row callback's error stops it and is returned. */
static void one_statement_and_callback_errors(void **state) {
  (void)state;
  struct ldr_reader *r = must_open();
  struct got g = {0};
  struct ldr_err err;
  char sql[128];
  assert_int_not_equal(query(r, "SELECT 1; SELECT 2", &g, &err), LDR_OK);
  assert_int_equal(g.rows, 0);
  snprintf(sql, sizeof sql, "SELECT name FROM %s ORDER BY name", objs);
  got_free(&g);
  g.stop_after = 1;
  ldr_err_clear(&err);
  assert_int_equal(ops->query(r, sql, collect, &g, &err), LDR_EXHAUSTED);
  assert_string_equal(err.msg, "enough rows");
  assert_int_equal(g.rows, 1);
  must_query(r, sql, &g); /* the reader is still usable */
  assert_int_equal(g.rows, 3);
  got_free(&g);
  ops->close(r);
}

/* A statement that runs long is stopped after the timeout: UNAVAILABLE. In
 * a snapshot, what follows either fails too or still sees the snapshot:
 * never a newer state as if it were the same snapshot. */
static void a_slow_statement_is_stopped(void **state) {
  (void)state;
  struct ldr_reader *r = NULL;
  struct got g = {0};
  struct ldr_err err;
  char sql[128];
  ldr_err_clear(&err);
  native_exec("DELETE FROM %s", more);
  assert_int_equal(ops->open(&url, dir, 1, &r, &err), LDR_OK);
  for (int in_snapshot = 0; in_snapshot <= 1; in_snapshot++) {
    if (in_snapshot) {
      assert_int_equal(ops->begin(r, &err), LDR_OK);
      assert_int_equal(count_more(r), 0);
      native_exec("INSERT INTO %s VALUES (1)", more);
    }
    int64_t start = ldr_now_ns();
    assert_int_equal(query(r, st->slow_sql, &g, &err), LDR_UNAVAILABLE);
    int64_t took = ldr_now_ns() - start;
    if (took < SEC * 9 / 10 || took > SEC * 5 / 2)
      fail_msg("stopped after %lld ms", (long long)(took / 1000000));
    no_password_in(err.msg);
  }
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", more);
  enum ldr_rc rc = query(r, sql, &g, &err);
  if (rc == LDR_OK)
    expect_text(&g, 0, 0, "0");
  else
    assert_int_equal(rc, LDR_UNAVAILABLE);
  ops->end(r);
  ops->close(r);
  native_exec("DELETE FROM %s", more);
  got_free(&g);
}

/* The server closes the connection: UNAVAILABLE, then again until reopened. */
static void a_lost_connection_is_unavailable(void **state) {
  (void)state;
  if (st->pid_sql == NULL) skip();
  struct ldr_reader *r = must_open();
  struct got g = {0};
  struct ldr_err err;
  must_query(r, st->pid_sql, &g);
  native_exec(st->kill_fmt, (const char *)g.cell[0][0].data);
  assert_int_equal(query(r, "SELECT 1", &g, &err), LDR_UNAVAILABLE);
  no_password_in(err.msg);
  assert_int_equal(query(r, "SELECT 1", &g, &err), LDR_UNAVAILABLE);
  ldr_err_clear(&err);
  assert_int_equal(ops->begin(r, &err), LDR_UNAVAILABLE);
  ops->end(r);
  ops->close(r);
  r = must_open();
  must_query(r, "SELECT 1", &g);
  expect_text(&g, 0, 0, "1");
  got_free(&g);
  ops->close(r);
}

/* A local port nothing listens on, and one that accepts and never answers. */
static int local_port(int listening, int *fd) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(*fd >= 0);
  assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &n), 0);
  if (listening)
    assert_int_equal(listen(*fd, 8), 0);
  else
    close(*fd);
  return ntohs(a.sin_port);
}

/* No server: UNAVAILABLE at once; a server that never answers: UNAVAILABLE
 * within the timeout. Neither message holds the password; both name the server. */
static void connects_are_bounded(void **state) {
  (void)state;
  if (st->env == NULL) skip();
  static const char secret[] = "Wr0ng-P@ss:w/rd";
  for (int listening = 0; listening <= 1; listening++) {
    int fd = -1;
    char port[16], text[512];
    snprintf(port, sizeof port, "%d", local_port(listening, &fd));
    server_url(text, sizeof text, secret, port, NULL);
    struct ldr_reader *r = NULL;
    struct ldr_err err;
    int64_t start = ldr_now_ns();
    assert_int_equal(open_url(text, 1, &r, &err), LDR_UNAVAILABLE);
    int64_t took = ldr_now_ns() - start;
    ops->close(r);
    if (listening) close(fd);
    if (took > SEC * 5 / 2) fail_msg("gave up after %lld ms", (long long)(took / 1000000));
    if (listening && took < SEC * 9 / 10)
      fail_msg("gave up after %lld ms", (long long)(took / 1000000));
    assert_null(strstr(err.msg, secret));
    assert_null(strstr(err.msg, "Wr0ng"));
    assert_non_null(strstr(err.msg, port));
  }
}

/* A wrong password: UNAVAILABLE, and the message holds neither password. */
static void a_wrong_password_is_never_shown(void **state) {
  (void)state;
  if (st->env == NULL) skip();
  static const char secret[] = "Wr0ng-P@ss:w/rd";
  char text[512];
  server_url(text, sizeof text, secret, NULL, NULL);
  struct ldr_reader *r = NULL;
  struct ldr_err err;
  assert_int_equal(open_url(text, 5, &r, &err), LDR_UNAVAILABLE);
  ops->close(r);
  assert_null(strstr(err.msg, secret));
  assert_null(strstr(err.msg, "Wr0ng"));
  assert_non_null(strstr(err.msg, env("USER"))); /* it names whom it tried */
  no_password_in(err.msg);
}

/* The server's Unix socket as a query key (host=/dir, unix_socket=). */
static void connects_over_a_socket(void **state) {
  (void)state;
  if (st->env == NULL || env("SVC_DIR") == NULL) skip();
  char text[1024], user[128], pw[128];
  encode(env("USER"), user, sizeof user);
  encode(env("PASSWORD"), pw, sizeof pw);
  if (!strcmp(st->name, "postgres"))
    snprintf(text, sizeof text, "postgresql://%s:%s@/%s?host=%s/postgres/sock&port=%s", user, pw,
             env("DB"), env("SVC_DIR"), env("PORT"));
  else
    snprintf(text, sizeof text, "mysql://%s:%s@/%s?unix_socket=%s/mariadb/mysqld.sock", user, pw,
             env("DB"), env("SVC_DIR"));
  struct ldr_reader *r = NULL;
  struct ldr_err err;
  if (open_url(text, 5, &r, &err) != LDR_OK) fail_msg("%s", err.msg);
  struct got g = {0};
  must_query(r, "SELECT 7", &g);
  expect_text(&g, 0, 0, "7");
  got_free(&g);
  ops->close(r);
}

/* SQLite: a missing file is UNAVAILABLE and not created; a relative path is
 * anchored at `dir`, an absolute one not; '?', '#' and '%' in a name are
 * read as themselves; a file that is no database is refused at open. */
static void sqlite_files(void **state) {
  (void)state;
  if (st->env != NULL) skip();
#ifdef LDR_WITH_SQLITE
  struct ldr_reader *r = NULL;
  struct ldr_err err;
  char text[1024], path[768];
  struct stat sb;
  assert_int_equal(open_url("sqlite:///sub/nope.db", 5, &r, &err), LDR_UNAVAILABLE);
  ops->close(r);
  assert_non_null(strstr(err.msg, "missing"));
  snprintf(path, sizeof path, "%s/sub/nope.db", dir);
  assert_int_equal(stat(path, &sb), -1);
  assert_int_equal(errno, ENOENT);

  snprintf(path, sizeof path, "%s/we?ird#%%.db", dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (5)", 0, 0, 0), 0);
  sqlite3_close(db);
  snprintf(text, sizeof text, "sqlite:///%s/we%%3Fird%%23%%25.db", dir); /* four slashes */
  if (open_url(text, 5, &r, &err) != LDR_OK) fail_msg("%s", err.msg);
  struct got g = {0};
  must_query(r, "SELECT x FROM t", &g);
  expect_text(&g, 0, 0, "5");
  got_free(&g);
  ops->close(r);

  snprintf(path, sizeof path, "%s/text.db", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < 200; i++) fputs("not a database at all. ", f);
  fclose(f);
  assert_int_equal(open_url("sqlite:///text.db", 5, &r, &err), LDR_UNAVAILABLE);
  ops->close(r);
#endif
}

/* ---- the tables, made with the native client ---- */

static char *hex_of(const unsigned char *p, size_t n) {
  char *h = malloc(2 * n + 1);
  for (size_t i = 0; i < n; i++) sprintf(h + 2 * i, "%02x", p[i]);
  h[2 * n] = '\0';
  return h;
}

static int insert_obj(const char *name, const unsigned char *p, size_t n, const char *ts,
                      const char *note) {
  char *hex = hex_of(p, n);
  size_t cap = 2 * n + 512;
  char *lit = malloc(cap), *sql = malloc(cap);
  snprintf(lit, cap, st->hex_fmt, hex);
  snprintf(sql, cap, "INSERT INTO %s (name, proto, ts, note) VALUES ('%s', %s, %s, %s)", objs, name,
           lit, ts, note);
  int rc = st->native->exec(sql);
  free(hex);
  free(lit);
  free(sql);
  return rc;
}

static int make_tables(void **state) {
  (void)state;
  char sql[512];
  for (size_t i = 0; i < sizeof bin_all; i++) bin_all[i] = (unsigned char)i;
  for (size_t i = 0; i < sizeof bin_big; i++) bin_big[i] = (unsigned char)(i * 7 + 3);
  /* WAL lets a writer commit beside the reader's snapshot, as Feast's
   * writes would in a rollback journal only between the reader's reads. */
  if (st->env == NULL && st->native->exec("PRAGMA journal_mode=WAL") != 0) return -1;
  snprintf(sql, sizeof sql,
           "CREATE TABLE %s (name VARCHAR(255) NOT NULL, proto %s NOT NULL, ts BIGINT NOT NULL, "
           "note TEXT, PRIMARY KEY (name))",
           objs, st->blob_type);
  if (st->native->exec(sql) != 0) return -1;
  snprintf(sql, sizeof sql, "CREATE TABLE %s (id BIGINT)", more);
  if (st->native->exec(sql) != 0) return -1;
  if (insert_obj("a", bin_all, sizeof bin_all, "4000000000", "'h\xc3\xa9llo'") != 0 ||
      insert_obj("b", bin_big, sizeof bin_big, "5000000000", "NULL") != 0 ||
      insert_obj("c", (const unsigned char *)"", 0, "-1", "''") != 0)
    return -1;
  return 0;
}

static int drop_tables(void **state) {
  (void)state;
  char sql[128];
  snprintf(sql, sizeof sql, "DROP TABLE %s", objs);
  st->native->exec(sql);
  snprintf(sql, sizeof sql, "DROP TABLE %s", more);
  st->native->exec(sql);
  return 0;
}

/* Where the reader finds the database: from TEST_<X>_* for a server; for
 * SQLite, the native's file, named relative to its folder's parent. */
static int locate(void) {
  static struct ldr_store_config cfg;
  if (st->native->setup(&cfg) != 0) return -1;
  if (st->env != NULL) {
    server_url(url_text, sizeof url_text, NULL, NULL, "?connect_timeout=10");
    return 0;
  }
  const char *path = ((const struct ldr_sqlite_options *)cfg.opts)->path;
  const char *sub = strstr(path, "/sub/");
  if (sub == NULL) return -1;
  snprintf(dir, sizeof dir, "%.*s", (int)(sub - path), path);
  char folder[600];
  snprintf(folder, sizeof folder, "%s/sub", dir);
  if (mkdir(folder, 0700) != 0 && errno != EEXIST) return -1;
  snprintf(url_text, sizeof url_text, "sqlite:///%s", sub + 1);
  return 0;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "sqlite";
  for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++)
    if (!strcmp(stores[i].name, name)) st = &stores[i];
  if (st == NULL) {
    fprintf(stderr, "no store named %s\n", name);
    return 2;
  }
  if (locate() != 0) {
    /* No server to test against: skipped (77) unless the caller requires one. */
    const char *require = getenv("LARDER_REQUIRE_DB");
    fprintf(stderr, "no %s server to test against (start integration/services.sh)\n", name);
    return require && *require == '1' ? 1 : 77;
  }
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_url_parse(url_text, &url, &err) != LDR_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  ops = ldr_backend_reader(url.dialect);
  if (ops == NULL) {
    fprintf(stderr, "no reader for %s\n", url.dialect);
    return 1;
  }
  /* Names of this run's own, so that runs sharing a database never meet. */
  snprintf(objs, sizeof objs, "rd%ld_objs", (long)getpid());
  snprintf(more, sizeof more, "rd%ld_more", (long)getpid());
  snprintf(missing, sizeof missing, "rd%ld_missing", (long)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lists_tables),
      cmocka_unit_test(reads_every_kind_of_column),
      cmocka_unit_test(missing_table_is_not_found),
      cmocka_unit_test(one_snapshot_from_begin_to_end),
      cmocka_unit_test(writes_are_refused),
      cmocka_unit_test(one_statement_and_callback_errors),
      cmocka_unit_test(a_slow_statement_is_stopped),
      cmocka_unit_test(a_lost_connection_is_unavailable),
      cmocka_unit_test(connects_are_bounded),
      cmocka_unit_test(a_wrong_password_is_never_shown),
      cmocka_unit_test(connects_over_a_socket),
      cmocka_unit_test(sqlite_files),
  };
  int failed = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], make_tables,
                                       drop_tables);
  ldr_url_free(&url);
  st->native->cleanup();
  return failed;
}
