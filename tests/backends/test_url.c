/* backends/url.c: the SQLAlchemy URL forms of REGISTRY.md §2, and their redaction;
 * backend.c's names for a write's rows in messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "backends/sql.h"

/* A URL and what it decodes to; NULL where a part is absent. `query` lists
 * the decoded pairs as "k=v&k=v". */
struct good_case {
  const char *url;
  const char *scheme, *dialect, *user, *password, *host, *database, *path;
  int port;
  const char *query;
};

static const struct good_case good[] = {
    {"postgresql://feast:pw@db.internal:5433/registry", "postgresql", "postgresql", "feast", "pw",
     "db.internal", "registry", NULL, 5433, ""},
    /* Feast rewrites a bare postgresql:// to psycopg 3; psycopg2 still parses. */
    {"postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg", "postgresql", "u", "p@ss", "h",
     "db", NULL, 0, ""},
    {"postgresql+psycopg2://u@h:5432/db", "postgresql+psycopg2", "postgresql", "u", NULL, "h", "db",
     NULL, 5432, ""},
    /* Every reserved character of a password, percent-encoded. */
    {"postgresql://us%40er:%3A%2F%40%3F%23%25%26%3D@h/db", "postgresql", "postgresql", "us@er",
     ":/@?#%&=", "h", "db", NULL, 0, ""},
    /* An '@' left unencoded in the password: the last '@' ends the credentials. */
    {"postgresql://u:p@ss@h/db", "postgresql", "postgresql", "u", "p@ss", "h", "db", NULL, 0, ""},
    {"postgresql://u:p@[::1]:5432/db", "postgresql", "postgresql", "u", "p", "::1", "db", NULL,
     5432, ""},
    {"postgresql://[fe80::1%25eth0]/db", "postgresql", "postgresql", NULL, NULL, "fe80::1%eth0",
     "db", NULL, 0, ""},
    /* No host: libpq's default socket, or a socket folder as a query key. */
    {"postgresql:///db", "postgresql", "postgresql", NULL, NULL, NULL, "db", NULL, 0, ""},
    {"postgresql://u:p@/db?host=/var/run/postgresql", "postgresql", "postgresql", "u", "p", NULL,
     "db", NULL, 0, "host=/var/run/postgresql"},
    {"postgresql://u:p@h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=c.pem&sslkey=k.pem"
     "&connect_timeout=3&options=-c%20search_path%3Dfeast&application_name=larder"
     "&target_session_attrs=read-only",
     "postgresql", "postgresql", "u", "p", "h", "db", NULL, 0,
     "sslmode=verify-full&sslrootcert=/ca.pem&sslcert=c.pem&sslkey=k.pem&connect_timeout=3"
     "&options=-c search_path=feast&application_name=larder&target_session_attrs=read-only"},
    /* A key without '=' is skipped; one with an empty value kept. */
    {"postgresql://h/db?flag&empty=", "postgresql", "postgresql", NULL, NULL, "h", "db", NULL, 0,
     "empty="},
    {"mysql://u:p@h:3307/db", "mysql", "mysql", "u", "p", "h", "db", NULL, 3307, ""},
    {"MySQL+PyMySQL://u:p@h/db?charset=utf8mb4&unix_socket=/run/mysqld/mysqld.sock"
     "&ssl_ca=/ca.pem&ssl_cert=/c.pem&ssl_key=/k.pem",
     "mysql+pymysql", "mysql", "u", "p", "h", "db", NULL, 0,
     "charset=utf8mb4&unix_socket=/run/mysqld/mysqld.sock&ssl_ca=/ca.pem&ssl_cert=/c.pem"
     "&ssl_key=/k.pem"},
    {"mysql://u:p@h:65535/db", "mysql", "mysql", "u", "p", "h", "db", NULL, 65535, ""},
    /* Three slashes: relative to the yaml's folder; four: absolute. */
    {"sqlite:///a/b.db", "sqlite", "sqlite", NULL, NULL, NULL, NULL, "a/b.db", 0, ""},
    {"sqlite:////abs/b.db", "sqlite", "sqlite", NULL, NULL, NULL, NULL, "/abs/b.db", 0, ""},
    {"sqlite:///data/my%20registry.db", "sqlite", "sqlite", NULL, NULL, NULL, NULL,
     "data/my registry.db", 0, ""},
    {"sqlite+pysqlite:///r.db", "sqlite+pysqlite", "sqlite", NULL, NULL, NULL, NULL, "r.db", 0, ""},
};

static void expect_str(const char *want, const char *got, const char *url, const char *part) {
  if (want == NULL && got == NULL) return;
  if (want == NULL || got == NULL || strcmp(want, got) != 0)
    fail_msg("%s: %s is \"%s\", wanted \"%s\"", url, part, got ? got : "(null)",
             want ? want : "(null)");
}

static void parses_every_form(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    const struct good_case *c = &good[i];
    struct ldr_url u;
    struct ldr_err err;
    ldr_err_clear(&err);
    if (ldr_url_parse(c->url, &u, &err) != LDR_OK) fail_msg("%s: %s", c->url, err.msg);
    expect_str(c->scheme, u.scheme, c->url, "scheme");
    expect_str(c->dialect, u.dialect, c->url, "dialect");
    expect_str(c->user, u.user, c->url, "user");
    expect_str(c->password, u.password, c->url, "password");
    expect_str(c->host, u.host, c->url, "host");
    expect_str(c->database, u.database, c->url, "database");
    expect_str(c->path, u.path, c->url, "path");
    if (u.port != c->port) fail_msg("%s: port %d, wanted %d", c->url, u.port, c->port);
    char query[512] = "";
    for (size_t k = 0; k < u.n_query; k++)
      snprintf(query + strlen(query), sizeof query - strlen(query), "%s%s=%s", k ? "&" : "",
               u.query_keys[k], u.query_values[k]);
    expect_str(c->query, query, c->url, "query");
    ldr_url_free(&u);
  }
}

/* Refused URLs. Each holds the password "hunter2": no message may repeat
 * it, nor the URL. */
static const char *const bad[] = {
    "sqlite://",                                   /* in-memory */
    "sqlite:///",                                  /* no file */
    "sqlite:hunter2",                              /* no "://" */
    "postgresql://u:hunter2@h",                    /* no database */
    "postgresql://u:hunter2@h/",                   /* an empty database */
    "postgresql://u:hunter2@h?db=x",               /* the query before any '/' */
    "mysql://u:hunter2@h:3306",                    /* no database */
    "postgresql://u:hunter2@h:port/db",            /* a port that is no number */
    "postgresql://u:hunter2@h:0/db",               /* a port out of range */
    "postgresql://u:hunter2@h:65536/db",           /* a port out of range */
    "postgresql://u:hunter2@h:/db",                /* an empty port */
    "postgresql://u:hunter2@[::1:5432/db",         /* an IPv6 host without ']' */
    "postgresql://u:hunter2%zz@h/db",              /* a bad escape in the password */
    "postgresql://u%4:hunter2@h/db",               /* a truncated escape in the user */
    "postgresql://u:hunter2@h/d%b",                /* a bad escape in the database */
    "postgresql://u:hunter2@h/db?k=%g1&x=hunter2", /* a bad escape in a query value */
    "postgresql://u:hunter2@h/db?%zz=1",           /* a bad escape in a query key */
    "://u:hunter2@h/db",                           /* no scheme */
    "hunter2",                                     /* no URL at all */
};

static void refuses_and_never_repeats_it(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct ldr_url u;
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_url_parse(bad[i], &u, &err);
    if (rc != LDR_INVALID) fail_msg("%s: %s, wanted invalid", bad[i], ldr_rc_str(rc));
    if (strstr(err.msg, "hunter2") != NULL)
      fail_msg("%s: the message holds it: %s", bad[i], err.msg);
    if (strstr(err.msg, "registry.path") == NULL)
      fail_msg("%s: the message names no field: %s", bad[i], err.msg);
    ldr_url_free(&u);
  }
}

static const struct {
  const char *url, *shown;
} redactions[] = {
    {"postgresql://feast:hunter2@db:5432/registry", "postgresql://feast:***@db:5432/registry"},
    {"postgresql+psycopg://u:p%40ss@h/db?sslmode=require",
     "postgresql+psycopg://u:***@h/db?sslmode=require"},
    {"mysql://u:p@ss@h/db", "mysql://u:***@h/db"},
    {"postgresql://u:p@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"},
    {"postgresql://u@h/db", "postgresql://u@h/db"}, /* no password: as it is */
    {"postgresql://h/db", "postgresql://h/db"},
    {"postgresql:///db", "postgresql:///db"},
    {"sqlite:////abs/registry.db", "sqlite:////abs/registry.db"},
    {"sqlite:///a:b@c.db", "sqlite:///a:b@c.db"}, /* a file name, not credentials */
    /* A password given as a query key (libpq takes one; MariaDB's clients passwd). */
    {"postgresql://h/db?sslmode=require&password=hunter2&application_name=x",
     "postgresql://h/db?sslmode=require&password=***&application_name=x"},
    {"mysql://u@h/db?PASSWD=hunter2", "mysql://u@h/db?PASSWD=***"},
    {"postgresql://u:p@h/db?sslpassword=k", "postgresql://u:***@h/db?sslpassword=***"},
};

static void redacts_the_password(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof redactions / sizeof redactions[0]; i++) {
    char buf[256];
    ldr_url_redacted(redactions[i].url, buf, sizeof buf);
    assert_string_equal(buf, redactions[i].shown);
  }
  /* A buffer too small cuts the text; it never shows what the cut hid. */
  char small[16];
  ldr_url_redacted("postgresql://u:hunter2@h/db", small, sizeof small);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_null(strstr(small, "hunter2"));
}

/* The readers' other guard: a driver's message that quotes the password
 * loses it before it reaches the log. */
static void redacts_driver_messages(void **state) {
  (void)state;
  static const struct {
    const char *msg, *secret, *shown;
  } cases[] = {
      {"auth failed: hunter2 is wrong", "hunter2", "auth failed: *** is wrong"},
      {"hunter2hunter2 x hunter2", "hunter2", "****** x ***"},
      {"nothing to hide", "hunter2", "nothing to hide"},
      {"pw a and a", "a", "pw * *nd *"},
      {"keep it", "", "keep it"},
      {"keep it", NULL, "keep it"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s", cases[i].msg);
    ldr_sql_redact(msg, cases[i].secret);
    assert_string_equal(msg, cases[i].shown);
  }
}

/* The readers of the stores built in are found by dialect, and no other. */
static void readers_by_dialect(void **state) {
  (void)state;
  static const struct {
    const char *dialect;
    int built;
  } dialects[] = {
#ifdef LDR_WITH_SQLITE
      {"sqlite", 1},
#else
      {"sqlite", 0},
#endif
#ifdef LDR_WITH_POSTGRES
      {"postgresql", 1},
#else
      {"postgresql", 0},
#endif
#ifdef LDR_WITH_MYSQL
      {"mysql", 1},
#else
      {"mysql", 0},
#endif
      {"mssql", 0},      {"snowflake", 0},
      {"postgres", 0}, /* SQLAlchemy's dialect is "postgresql" */
  };
  for (size_t i = 0; i < sizeof dialects / sizeof dialects[0]; i++) {
    const struct ldr_reader_ops *r = ldr_backend_reader(dialects[i].dialect);
    if ((r != NULL) != dialects[i].built)
      fail_msg("%s: reader %s", dialects[i].dialect, r ? "found" : "missing");
    if (r == NULL) continue;
    assert_string_equal(r->dialects[0], dialects[i].dialect);
    assert_non_null(r->tables_sql);
    r->close(NULL); /* harmless */
  }
}

/* OnlineWriteBatch's fields, or the push frame's columns a row came from. */
static void names_where_a_row_came_from(void **state) {
  (void)state;
  static const char *const features[] = {"src_rate", "label"};
  static const struct ldr_write_names df = {"df", "ts", "made", "cust, driver_id", features};
  static const struct ldr_write grpc = {"t", NULL, 4, NULL}, push = {"t", NULL, 4, &df};
  static const struct {
    const struct ldr_write *w;
    enum ldr_write_part part;
    const char *want;
  } cases[] = {
      {&grpc, LDR_PART_KEY, "rows[3].entity_key"},
      {&grpc, LDR_PART_EVENT, "rows[3].event_ts"},
      {&grpc, LDR_PART_CREATED, "rows[3].created_ts"},
      {&grpc, LDR_PART_FEATURE, "rows[3].features[1]"},
      {&push, LDR_PART_KEY, "df[3] (join keys cust, driver_id)"},
      {&push, LDR_PART_EVENT, "df.ts[3]"},
      {&push, LDR_PART_CREATED, "df.made[3]"},
      {&push, LDR_PART_FEATURE, "df.label[3]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    assert_string_equal(ldr_write_where(cases[i].w, 3, cases[i].part, 1, buf, sizeof buf),
                        cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_every_form),    cmocka_unit_test(refuses_and_never_repeats_it),
      cmocka_unit_test(redacts_the_password), cmocka_unit_test(redacts_driver_messages),
      cmocka_unit_test(readers_by_dialect),   cmocka_unit_test(names_where_a_row_came_from),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
