/* The conformance suite's view of a PostgreSQL store, through libpq itself.
 * The server comes from integration/services.sh (TEST_PG_* variables). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres.h"
#include "tests/backends/native.h"

static PGconn *locker;

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static int setup(struct ldr_store_config *cfg) {
  if (!env("TEST_PG_HOST")) return -1;
  static struct ldr_postgres_options o;
  o.host = (char *)env("TEST_PG_HOST");
  o.port = (char *)(env("TEST_PG_PORT") ? env("TEST_PG_PORT") : "5432");
  /* conformance.postgres.unnamed and .split run the suite as pgbouncer needs
   * it (no session state) and with reads on a connection of their own. */
  o.prepared_statements =
      !(env("TEST_PG_PREPARED_STATEMENTS") && !strcmp(env("TEST_PG_PREPARED_STATEMENTS"), "0"));
  o.read_from = (char *)(env("TEST_PG_READ_FROM") ? env("TEST_PG_READ_FROM") : "primary");
  o.database = (char *)env("TEST_PG_DB");
  o.user = (char *)env("TEST_PG_USER");
  o.password = (char *)env("TEST_PG_PASSWORD");
  o.db_schema = "public";
  o.sslmode = "disable";
  cfg->schema = &ldr_postgres_schema;
  cfg->type_name = "postgres";
  cfg->opts = &o;
  return 0;
}

static void cleanup(void) {}

static PGconn *open_conn(void) {
  const char *kw[] = {"host", "port", "dbname", "user", "password", "sslmode", "options", NULL};
  const char *val[] = {
      env("TEST_PG_HOST"),     env("TEST_PG_PORT"), env("TEST_PG_DB"), env("TEST_PG_USER"),
      env("TEST_PG_PASSWORD"), "disable",           "-c TimeZone=UTC", NULL};
  PGconn *c = PQconnectdbParams(kw, val, 0);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

static int run_on(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) fprintf(stderr, "postgres: %s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : -1;
}

static int run(const char *sql) {
  PGconn *c = open_conn();
  int rc = c ? run_on(c, sql) : -1;
  PQfinish(c);
  return rc;
}

static int poison(const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "ALTER TABLE \"%s\" ADD CONSTRAINT \"%s_poison\" CHECK (feature_name <> 'poison')",
           table, table);
  return run(sql);
}

static long long be64(const char *p) {
  unsigned long long v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | (unsigned char)p[i];
  return (long long)v;
}

static long long floor_div(long long a, long long b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int raw_row(const char *table, const uint8_t *key, size_t key_len, const char *feature,
                   struct raw_row *out) {
  char sql[512];
  memset(out, 0, sizeof *out);
  snprintf(
      sql, sizeof sql,
      "SELECT entity_key, value, value_text, (extract(epoch from event_ts) * 1000000)::bigint, "
      "(extract(epoch from created_ts) * 1000000)::bigint FROM \"%s\" "
      "WHERE entity_key = $1 AND feature_name = $2",
      table);
  PGconn *c = open_conn();
  if (c == NULL) return -1;
  const char *params[2] = {(const char *)key, feature};
  int lengths[2] = {(int)key_len, (int)strlen(feature)};
  int formats[2] = {1, 0};
  PGresult *r = PQexecParams(c, sql, 2, NULL, params, lengths, formats, 1);
  int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
  if (rc != 0) fprintf(stderr, "postgres: %s", PQresultErrorMessage(r));
  if (rc == 0 && PQntuples(r) == 1) {
    out->found = 1;
    out->key_len = (size_t)PQgetlength(r, 0, 0);
    memcpy(out->key, PQgetvalue(r, 0, 0), out->key_len);
    out->value_len = (size_t)PQgetlength(r, 0, 1);
    memcpy(out->value, PQgetvalue(r, 0, 1), out->value_len);
    out->has_text = !PQgetisnull(r, 0, 2);
    if (out->has_text)
      snprintf(out->text, sizeof out->text, "%.*s", PQgetlength(r, 0, 2), PQgetvalue(r, 0, 2));
    out->has_event_ts = !PQgetisnull(r, 0, 3);
    if (out->has_event_ts) {
      long long us = be64(PQgetvalue(r, 0, 3));
      out->event_ts = floor_div(us, 1000000);
      out->event_us = us - out->event_ts * 1000000;
    }
    out->has_created = !PQgetisnull(r, 0, 4);
    if (out->has_created) out->created_ts = floor_div(be64(PQgetvalue(r, 0, 4)), 1000000);
  }
  PQclear(r);
  PQfinish(c);
  return rc;
}

static int lock(const char *table) {
  char sql[256];
  locker = open_conn();
  if (locker == NULL) return -1;
  snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE \"%s\" IN EXCLUSIVE MODE;", table);
  return run_on(locker, sql);
}

static void unlock(void) {
  run_on(locker, "ROLLBACK");
  PQfinish(locker);
  locker = NULL;
}

const struct native native_postgres = {
    .name = "postgres",
    .keeps_micros = 1,
    .setup = setup,
    .cleanup = cleanup,
    .poison = poison,
    .raw_row = raw_row,
    .exec = run,
    .lock = lock,
    .unlock = unlock,
};
