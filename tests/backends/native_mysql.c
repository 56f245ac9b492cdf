/* The conformance suite's view of a MySQL/MariaDB store, through the
 * connector itself. The server comes from integration/services.sh
 * (TEST_MYSQL_* variables). Keys are stored as hex text: raw_row returns
 * them decoded, after checking they are lowercase hex. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/mysql.h"
#include "tests/backends/native.h"

static MYSQL *locker;

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static int setup(struct ldr_store_config *cfg) {
  if (!env("TEST_MYSQL_HOST")) return -1;
  static struct ldr_mysql_options o;
  o.host = (char *)env("TEST_MYSQL_HOST");
  o.port = atoi(env("TEST_MYSQL_PORT") ? env("TEST_MYSQL_PORT") : "3306");
  o.user = (char *)env("TEST_MYSQL_USER");
  o.password = (char *)env("TEST_MYSQL_PASSWORD");
  o.database = (char *)env("TEST_MYSQL_DB");
  cfg->schema = &ldr_mysql_schema;
  cfg->type_name = "mysql";
  cfg->opts = &o;
  return 0;
}

static void cleanup(void) {}

static MYSQL *open_conn(void) {
  MYSQL *m = mysql_init(NULL);
  unsigned protocol = MYSQL_PROTOCOL_TCP;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  if (mysql_real_connect(m, env("TEST_MYSQL_HOST"), env("TEST_MYSQL_USER"),
                         env("TEST_MYSQL_PASSWORD"), env("TEST_MYSQL_DB"),
                         (unsigned)atoi(env("TEST_MYSQL_PORT")), NULL, 0) == NULL) {
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
    mysql_close(m);
    return NULL;
  }
  return m;
}

static int run_on(MYSQL *m, const char *sql) {
  if (mysql_query(m, sql) != 0) {
    fprintf(stderr, "mysql: %s: %s\n", sql, mysql_error(m));
    return -1;
  }
  MYSQL_RES *r = mysql_store_result(m);
  mysql_free_result(r);
  return 0;
}

static int run(const char *sql) {
  MYSQL *m = open_conn();
  int rc = m ? run_on(m, sql) : -1;
  if (m) mysql_close(m);
  return rc;
}

static int poison(const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "ALTER TABLE `%s` ADD CONSTRAINT `%s_poison` CHECK (feature_name <> 'poison')", table,
           table);
  return run(sql);
}

static int unhex(const char *h, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i += 2) {
    unsigned v = 0;
    for (size_t k = 0; k < 2; k++) {
      char c = h[i + k];
      if (c >= '0' && c <= '9')
        v = v * 16 + (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f')
        v = v * 16 + (unsigned)(c - 'a' + 10);
      else
        return -1; /* Feast stores lowercase hex, nothing else */
    }
    out[i / 2] = (uint8_t)v;
  }
  return n % 2 ? -1 : 0;
}

static int raw_row(const char *table, const uint8_t *key, size_t key_len, const char *feature,
                   struct raw_row *out) {
  char hex[1100], sql[2200];
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < key_len; i++) sprintf(hex + 2 * i, "%02x", key[i]);
  hex[2 * key_len] = '\0';
  MYSQL *m = open_conn();
  if (m == NULL) return -1;
  char feat[600];
  mysql_real_escape_string(m, feat, feature, (unsigned long)strlen(feature));
  snprintf(
      sql, sizeof sql,
      "SELECT entity_key, value, UNIX_TIMESTAMP(event_ts), UNIX_TIMESTAMP(created_ts) FROM `%s` "
      "WHERE entity_key = '%s' AND feature_name = '%s'",
      table, hex, feat);
  int rc = -1;
  if (mysql_query(m, sql) == 0) {
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    rc = r ? 0 : -1;
    if (row != NULL) {
      unsigned long *len = mysql_fetch_lengths(r);
      out->found = 1;
      out->key_len = len[0] / 2;
      if (unhex(row[0], len[0], out->key) != 0) rc = -1;
      out->value_len = len[1];
      memcpy(out->value, row[1], len[1]);
      out->has_event_ts = row[2] != NULL;
      if (row[2]) out->event_ts = atoll(row[2]);
      out->has_created = row[3] != NULL;
      if (row[3]) out->created_ts = atoll(row[3]);
    }
    mysql_free_result(r);
  } else {
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
  }
  mysql_close(m);
  return rc;
}

static int lock(const char *table) {
  char sql[256];
  locker = open_conn();
  if (locker == NULL) return -1;
  snprintf(sql, sizeof sql, "UPDATE `%s` SET value = value", table);
  if (run_on(locker, "START TRANSACTION") != 0) return -1;
  return run_on(locker, sql);
}

static void unlock(void) {
  run_on(locker, "ROLLBACK");
  mysql_close(locker);
  locker = NULL;
}

const struct native native_mysql = {
    .name = "mysql",
    .keeps_micros = 0,
    .no_value_text = 1,
    .narrow_columns = 1,
    .setup = setup,
    .cleanup = cleanup,
    .poison = poison,
    .raw_row = raw_row,
    .exec = run,
    .lock = lock,
    .unlock = unlock,
};
