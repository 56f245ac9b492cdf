/* The conformance suite's view of a SQLite store, through libsqlite3 itself. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/sqlite.h"
#include "tests/backends/native.h"

static char dir[64];
static char path[128];
static sqlite3 *locker;

static int setup(struct ldr_store_config *cfg) {
  snprintf(dir, sizeof dir, "/tmp/larder-conf-XXXXXX");
  if (mkdtemp(dir) == NULL) return -1;
  snprintf(path, sizeof path, "%s/sub/online.db", dir); /* the parent folder is created on open */
  static struct ldr_sqlite_options o;
  o.path = path;
  cfg->schema = &ldr_sqlite_schema;
  cfg->type_name = "sqlite";
  cfg->opts = &o;
  return 0;
}

static void cleanup(void) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int run(const char *sql) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  int rc = sqlite3_open(path, &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fprintf(stderr, "sqlite: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

static int poison(const char *table) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "CREATE TRIGGER \"%s_poison\" BEFORE INSERT ON \"%s\" WHEN NEW.feature_name = 'poison' "
           "BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
           table, table);
  return run(sql);
}

static int raw_row(const char *table, const uint8_t *key, size_t key_len, const char *feature,
                   struct raw_row *out) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  char sql[256];
  int rc = -1;
  memset(out, 0, sizeof *out);
  snprintf(
      sql, sizeof sql,
      "SELECT entity_key, value, value_text, event_ts, created_ts, typeof(event_ts) FROM \"%s\" "
      "WHERE entity_key = ? AND feature_name = ?",
      table);
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_blob(st, 1, key, (int)key_len, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, feature, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) {
    out->found = 1;
    out->key_len = (size_t)sqlite3_column_bytes(st, 0);
    memcpy(out->key, sqlite3_column_blob(st, 0), out->key_len);
    out->value_len = (size_t)sqlite3_column_bytes(st, 1);
    if (out->value_len) memcpy(out->value, sqlite3_column_blob(st, 1), out->value_len);
    out->has_text = sqlite3_column_type(st, 2) != SQLITE_NULL;
    if (out->has_text) snprintf(out->text, sizeof out->text, "%s", sqlite3_column_text(st, 2));
    /* Feast stores INTEGER epoch seconds; anything else is a layout bug. */
    out->has_event_ts = !strcmp((const char *)sqlite3_column_text(st, 5), "integer");
    out->event_ts = sqlite3_column_int64(st, 3);
    out->has_created = sqlite3_column_type(st, 4) == SQLITE_INTEGER;
    out->created_ts = sqlite3_column_int64(st, 4);
  }
  rc = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : -1;
out:
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

static int lock(const char *table) {
  char sql[256];
  if (sqlite3_open(path, &locker) != SQLITE_OK) return -1;
  snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; DELETE FROM \"%s\" WHERE 0;", table);
  return sqlite3_exec(locker, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void unlock(void) {
  sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(locker);
  locker = NULL;
}

const struct native native_sqlite = {
    .name = "sqlite",
    .setup = setup,
    .cleanup = cleanup,
    .poison = poison,
    .raw_row = raw_row,
    .exec = run,
    .lock = lock,
    .unlock = unlock,
};
