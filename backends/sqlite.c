/*
 * Feast's SQLite online store (sqlite.py): the same DDL, rows and upsert, read
 * with one statement per request. One connection per worker in WAL mode, so
 * readers never wait for a writer; statements are prepared once and cached.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend_int.h"
#include "backends/sql.h"
#include "backends/sqlite.h"
#include "common/log.h"

#define STMT_CACHE 48
#define MAX_KEY_BUCKET 8192 /* most keys bound to one read statement */
#define BUSY_WAIT_NS 5000000000LL

enum stmt_kind { ST_READ, ST_WRITE };

struct cached_stmt {
  sqlite3_stmt *st;
  enum stmt_kind kind;
  unsigned kb, fb; /* key and feature placeholders of a read */
  uint64_t used;
  char table[LDR_TABLE_NAME_MAX + 1];
};

struct sqlite_impl {
  sqlite3 *db;
  sqlite3_stmt *begin, *commit, *rollback;
  struct cached_stmt cache[STMT_CACHE];
  uint64_t tick;
  struct ldr_stmt_cache widths; /* per table, rows per key (ldr_width_names) */
  int64_t busy_since;
  int deadline_hit;
};

static struct sqlite_impl *impl(struct ldr_backend *b) { return b->impl; }

/* Maps the connection's last error to a code and copies its message at once. */
static enum ldr_rc db_error(struct ldr_backend *b, int rc, const char *what, const char *table,
                            struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  const char *msg = sqlite3_errmsg(s->db);
  int primary = rc & 0xff;
  if (strncmp(msg, "no such table", 13) == 0 && table != NULL)
    return ldr_err_set(err, LDR_NOT_FOUND,
                       "feature_view: table \"%s\" does not exist (create it with Update or "
                       "larder apply)",
                       table);
  if (primary == SQLITE_INTERRUPT ||
      ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && s->deadline_hit))
    return ldr_err_set(err, LDR_DEADLINE, "%s: deadline passed while waiting for the database",
                       what);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: database is locked: %s", what, msg);
  /* The disk (or a file size limit) is full, the file cannot be written or
   * read: the store refuses now, whatever the request; the log says why. */
  if (primary == SQLITE_FULL || primary == SQLITE_READONLY || primary == SQLITE_IOERR ||
      primary == SQLITE_CANTOPEN)
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: sqlite: %s", what, msg);
  if (primary == SQLITE_NOMEM) return ldr_err_set(err, LDR_NOMEM, "%s: out of memory", what);
  return ldr_err_set(err, LDR_INTERNAL, "%s: sqlite: %s", what, msg);
}

/* Waits for a lock until the call's deadline or BUSY_WAIT_NS, whichever comes first. */
static int busy_cb(void *arg, int count) {
  struct ldr_backend *b = arg;
  struct sqlite_impl *s = impl(b);
  int64_t now = ldr_now_ns();
  if (count == 0) s->busy_since = now;
  if (ldr_backend_past_deadline(b)) {
    s->deadline_hit = 1;
    return 0;
  }
  if (now - s->busy_since > BUSY_WAIT_NS) return 0;
  struct timespec ts = {0, count < 10 ? 100000 : 1000000};
  nanosleep(&ts, NULL);
  return 1;
}

/* Interrupts a statement that runs past the call's deadline. */
static int progress_cb(void *arg) {
  struct ldr_backend *b = arg;
  if (!ldr_backend_past_deadline(b)) return 0;
  impl(b)->deadline_hit = 1;
  return 1;
}

static int mkdir_parents(const char *path) {
  char *dir = strdup(path);
  if (dir == NULL) return -1;
  char *slash = strrchr(dir, '/');
  int rc = 0;
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    for (char *p = dir + 1; rc == 0 && *p; p++) {
      if (*p != '/') continue;
      *p = '\0';
      if (mkdir(dir, 0777) != 0 && errno != EEXIST) rc = -1;
      *p = '/';
    }
    if (rc == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST) rc = -1;
  }
  free(dir);
  return rc;
}

static enum ldr_rc exec(struct ldr_backend *b, const char *sql, const char *what,
                        struct ldr_err *err) {
  int rc = sqlite3_exec(impl(b)->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? LDR_OK : db_error(b, rc, what, NULL, err);
}

static enum ldr_rc prepare(struct ldr_backend *b, const char *sql, sqlite3_stmt **st,
                           const char *what, const char *table, struct ldr_err *err) {
  int rc = sqlite3_prepare_v3(impl(b)->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
  return rc == SQLITE_OK ? LDR_OK : db_error(b, rc, what, table, err);
}

/* A file URI for `path` with `query`, percent-encoding what a URI would read otherwise. */
static char *file_uri(const char *path, const char *query) {
  size_t n = strlen(path);
  char *u = malloc(8 + 3 * n + strlen(query) + 2);
  if (u == NULL) return NULL;
  char *o = u + sprintf(u, "file:");
  for (const char *p = path; *p; p++) {
    if (*p == '?' || *p == '#' || *p == '%')
      o += sprintf(o, "%%%02X", (unsigned char)*p);
    else
      *o++ = *p;
  }
  sprintf(o, "?%s", query);
  return u;
}

/*
 * Opens the file read-only (larder.read_only). A WAL database whose -shm file
 * is gone and whose folder cannot be written can only be read as immutable:
 * then nothing else can be writing it either.
 */
static int open_read_only(struct sqlite_impl *s, const char *path) {
  static const char *const queries[] = {"mode=ro", "immutable=1"};
  int r = SQLITE_CANTOPEN;
  for (size_t i = 0; i < 2; i++) {
    char *uri = file_uri(path, queries[i]);
    if (uri == NULL) return SQLITE_NOMEM;
    sqlite3_close(s->db);
    s->db = NULL;
    r = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        NULL);
    free(uri);
    if (r == SQLITE_OK)
      r = sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (r == SQLITE_OK) {
      if (i == 1)
        ldr_log(LDR_LOG_INFO, "sqlite: %s is read as immutable (read-only WAL database)", path);
      return SQLITE_OK;
    }
  }
  return r;
}

/* A store larder writes must be writable, file and folder (WAL adds files
 * beside it): found now, not at the first write. */
static enum ldr_rc check_writable(const char *path, struct ldr_err *err) {
  char *dir = strdup(path);
  if (dir == NULL) return ldr_err_set(err, LDR_NOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash != NULL)
    *slash = '\0';
  const char *folder = slash ? dir : ".";
  enum ldr_rc rc = LDR_OK;
  if (access(path, F_OK) == 0 && access(path, R_OK | W_OK) != 0)
    rc = ldr_err_set(err, LDR_UNAVAILABLE, "online_store.path: %s cannot be written: %s", path,
                     strerror(errno));
  else if (access(folder, W_OK | X_OK) != 0)
    rc = ldr_err_set(err, LDR_UNAVAILABLE,
                     "online_store.path: the folder of %s cannot be written: %s", path,
                     strerror(errno));
  free(dir);
  return rc;
}

static enum ldr_rc sqlite_open(struct ldr_backend *b, struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  /* Memory statistics cost a global mutex on every allocation; larder reads
   * none. This must precede SQLite's initialization, and open() runs on the
   * main thread before workers start, so a plain flag suffices. */
  static int configured;
  if (!configured) {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    configured = 1;
  }
  const char *path = ((const struct ldr_sqlite_options *)b->cfg->opts)->path;
  int read_only = b->cfg->read_only;
  enum ldr_rc rc;
  if (!read_only && mkdir_parents(path) != 0)
    return ldr_err_set(err, LDR_UNAVAILABLE,
                       "online_store.path: cannot create the folder of %s: %s", path,
                       strerror(errno));
  if (!read_only && check_writable(path, err) != LDR_OK) return err->rc;
  int r =
      read_only
          ? open_read_only(s, path)
          : sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (r != SQLITE_OK)
    return ldr_err_set(err, LDR_UNAVAILABLE, "online_store.path: cannot open %s%s: %s", path,
                       read_only ? " to read" : "",
                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(r));
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_handler(s->db, busy_cb, b);
  sqlite3_progress_handler(s->db, 4000, progress_cb, b);
  /* WAL lets readers run beside the one writer; FULL makes an acknowledged
   * write survive a power loss, not only a crash of this process. */
  rc = read_only ? LDR_OK : exec(b, "PRAGMA journal_mode=WAL", "open", err);
  if (rc == LDR_OK && !read_only) rc = exec(b, "PRAGMA synchronous=FULL", "open", err);
  /* SQLite's default page cache (2 MiB) misses on every read of a large view;
   * 8 MiB per connection keeps the inner pages of the indexes and tables, and
   * measured as fast as memory-mapping the file (bench/), without mapping the
   * whole database into the process's resident memory. */
  if (rc == LDR_OK) rc = exec(b, "PRAGMA cache_size=-8192", "open", err);
  if (rc == LDR_OK) rc = prepare(b, "BEGIN IMMEDIATE", &s->begin, "open", NULL, err);
  if (rc == LDR_OK) rc = prepare(b, "COMMIT", &s->commit, "open", NULL, err);
  if (rc == LDR_OK) rc = prepare(b, "ROLLBACK", &s->rollback, "open", NULL, err);
  if (rc != LDR_OK) ldr_err_prefix(err, "online_store.path: %s: ", path);
  return rc;
}

static void forget_statements(struct sqlite_impl *s) {
  for (size_t i = 0; i < STMT_CACHE; i++) {
    sqlite3_finalize(s->cache[i].st);
    s->cache[i].st = NULL;
  }
  ldr_stmt_clear(&s->widths, NULL); /* tables may have been made again */
}

static void sqlite_close(struct ldr_backend *b) {
  struct sqlite_impl *s = impl(b);
  forget_statements(s);
  sqlite3_finalize(s->begin);
  sqlite3_finalize(s->commit);
  sqlite3_finalize(s->rollback);
  sqlite3_close(s->db);
  s->db = NULL;
}

static enum ldr_rc step_done(struct ldr_backend *b, sqlite3_stmt *st, const char *what,
                             const char *table, struct ldr_err *err) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return LDR_OK;
  return db_error(b, rc, what, table, err);
}

static void rollback(struct ldr_backend *b) {
  struct sqlite_impl *s = impl(b);
  if (!sqlite3_get_autocommit(s->db)) {
    sqlite3_step(s->rollback);
    sqlite3_reset(s->rollback);
  }
}

/* The upsert of sqlite.py, character for character. */
static int write_sql(char *buf, size_t cap, const char *t) {
  return snprintf(
      buf, cap,
      "INSERT INTO \"%s\" (entity_key, feature_name, value, value_text, event_ts, "
      "created_ts)\nVALUES (?, ?, ?, ?, ?, ?)\nON CONFLICT(entity_key, feature_name) DO "
      "UPDATE SET value = excluded.value, value_text = excluded.value_text, event_ts = "
      "excluded.event_ts, created_ts = excluded.created_ts;",
      t);
}

static size_t placeholders(char *p, unsigned n) {
  char *o = p;
  for (unsigned i = 0; i < n; i++) {
    if (i) *o++ = ',';
    *o++ = '?';
  }
  return (size_t)(o - p);
}

/* Returns the cached statement for (kind, table, kb, fb), preparing it on a miss. */
static enum ldr_rc get_stmt(struct ldr_backend *b, enum stmt_kind kind, const char *table,
                            unsigned kb, unsigned fb, struct cached_stmt **out,
                            struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  struct cached_stmt *victim = &s->cache[0];
  for (size_t i = 0; i < STMT_CACHE; i++) {
    struct cached_stmt *c = &s->cache[i];
    if (c->st != NULL && c->kind == kind && c->kb == kb && c->fb == fb &&
        !strcmp(c->table, table)) {
      c->used = ++s->tick;
      *out = c;
      return LDR_OK;
    }
    if (c->st == NULL || (victim->st != NULL && c->used < victim->used)) victim = c;
  }
  size_t cap = 512 + 2 * (size_t)(kb + fb);
  char *sql = malloc(cap);
  if (sql == NULL) return ldr_err_set(err, LDR_NOMEM, "out of memory");
  if (kind == ST_WRITE) {
    write_sql(sql, cap, table);
  } else {
    size_t n = (size_t)snprintf(sql, cap,
                                "SELECT entity_key, feature_name, value, event_ts FROM \"%s\" "
                                "WHERE entity_key IN (",
                                table);
    n += placeholders(sql + n, kb);
    if (fb > 0) {
      n += (size_t)snprintf(sql + n, cap - n, ") AND feature_name IN (");
      n += placeholders(sql + n, fb);
    }
    snprintf(sql + n, cap - n, ")");
  }
  sqlite3_stmt *st = NULL;
  enum ldr_rc rc = prepare(b, sql, &st, kind == ST_WRITE ? "write" : "read", table, err);
  free(sql);
  if (rc != LDR_OK) return rc;
  if (kind == ST_READ && ldr_log_enabled(LDR_LOG_DEBUG)) {
    if (fb)
      ldr_log(LDR_LOG_DEBUG, "sqlite: prepared a read of %s for %u keys, naming %u features", table,
              kb, fb);
    else
      ldr_log(LDR_LOG_DEBUG, "sqlite: prepared a read of %s for %u keys, by key", table, kb);
  }
  sqlite3_finalize(victim->st);
  victim->st = st;
  victim->kind = kind;
  victim->kb = kb;
  victim->fb = fb;
  victim->used = ++s->tick;
  snprintf(victim->table, sizeof victim->table, "%s", table);
  *out = victim;
  return LDR_OK;
}

static void call_start(struct ldr_backend *b) { impl(b)->deadline_hit = 0; }

static enum ldr_rc read_one(struct ldr_backend *b, struct ldr_read *r, struct ldr_arena *a,
                            size_t *budget, struct ldr_err *err);

/* Feast stores int(datetime.timestamp()), which truncates toward zero. */
static int64_t epoch_seconds(struct ldr_ts t) { return t.s < 0 && t.ns > 0 ? t.s + 1 : t.s; }

/* Upserts the rows of one write inside the transaction begun by sqlite_write. */
static enum ldr_rc write_rows(struct ldr_backend *b, const struct ldr_write *w,
                              struct ldr_err *err) {
  /* Rows are bound as they are: the upserts run in batch order, so the last
   * occurrence of a (key, feature) wins without flattening. */
  struct cached_stmt *ce = NULL;
  char text_buf[32];
  enum ldr_rc rc = get_stmt(b, ST_WRITE, w->table, 0, 0, &ce, err);
  if (rc != LDR_OK) return rc;
  sqlite3_stmt *st = ce->st;
  for (size_t i = 0; i < w->n_rows && rc == LDR_OK; i++) {
    const struct ldr_write_row *r = &w->rows[i];
    for (size_t j = 0; j < r->n_features && rc == LDR_OK; j++) {
      const struct ldr_write_feature *f = &r->features[j];
      const char *text;
      size_t tlen;
      sqlite3_bind_blob(st, 1, r->key.bytes, (int)r->key.len, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
      sqlite3_bind_blob(st, 3, f->len ? (const void *)f->bytes : "", (int)f->len, SQLITE_STATIC);
      if (ldr_value_text(f->value, text_buf, &text, &tlen))
        sqlite3_bind_text(st, 4, text, (int)tlen, SQLITE_TRANSIENT);
      else
        sqlite3_bind_null(st, 4);
      sqlite3_bind_int64(st, 5, epoch_seconds(r->event_ts));
      if (r->has_created)
        sqlite3_bind_int64(st, 6, epoch_seconds(r->created_ts));
      else
        sqlite3_bind_null(st, 6);
      rc = step_done(b, st, "write", w->table, err);
      if (rc != LDR_OK) ldr_err_prefix(err, "rows[%zu]: ", i);
    }
  }
  sqlite3_clear_bindings(st);
  return rc;
}

/* Every write in one transaction: all rows of all views, or none. */
static enum ldr_rc sqlite_write(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                                struct ldr_arena *a, struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  call_start(b);
  enum ldr_rc rc = step_done(b, s->begin, "write", NULL, err);
  for (size_t w = 0; rc == LDR_OK && w < n; w++) {
    if (writes[w].n_rows > 0) {
      rc = write_rows(b, &writes[w], err);
      continue;
    }
    /* A write of no rows writes nothing, but its table must exist: the read
     * statement checks it even when a cached upsert outlived the table. */
    size_t budget = (size_t)-1;
    struct ldr_read none = {writes[w].table, NULL, 0, NULL, 0, NULL};
    rc = read_one(b, &none, a, &budget, err);
  }
  if (rc == LDR_OK) rc = step_done(b, s->commit, "write: commit", NULL, err);
  if (rc != LDR_OK) rollback(b);
  return rc;
}

static unsigned bucket(size_t n) {
  if (n <= 8) return n ? (unsigned)n : 1;
  unsigned b = 16;
  while (b < n) b *= 2;
  return b;
}

/* Parses "YYYY-MM-DD HH:MM:SS[.ffffff]" (Python's str(datetime)) as UTC. */
static int parse_text_ts(const char *s, struct ldr_ts *out) {
  struct tm tm = {0};
  int us = 0, nus = 0;
  if (sscanf(s, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec) != 6)
    return 0;
  const char *dot = strchr(s, '.');
  if (dot != NULL)
    for (const char *p = dot + 1; *p >= '0' && *p <= '9' && nus < 6; p++, nus++)
      us = us * 10 + (*p - '0');
  while (nus > 0 && nus < 6) {
    us *= 10;
    nus++;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  out->s = (int64_t)timegm(&tm);
  out->ns = us * 1000;
  return 1;
}

/* Feast writes INTEGER seconds; older files may hold text or real values. */
static int column_ts(sqlite3_stmt *st, int col, struct ldr_ts *out) {
  switch (sqlite3_column_type(st, col)) {
  case SQLITE_INTEGER:
    out->s = sqlite3_column_int64(st, col);
    out->ns = 0;
    return 1;
  case SQLITE_FLOAT: {
    /* Any REAL a file may hold: NaN is no time, the rest held to int64's range. */
    double d = sqlite3_column_double(st, col);
    if (d != d) return 0;
    out->s = d >= 9223372036854775807.0    ? INT64_MAX
             : d <= -9223372036854775808.0 ? INT64_MIN
                                           : (int64_t)d;
    out->ns = 0;
    return 1;
  }
  case SQLITE_TEXT:
    return parse_text_ts((const char *)sqlite3_column_text(st, col), out);
  default:
    return 0;
  }
}

/*
 * Runs the read statement for keys uniq[0..n) (n = 0 only checks the table
 * exists). The statement selects by key only and the rows of other features
 * are skipped here: SQLite answers `feature_name IN (...)` with one primary-key
 * lookup per (key, feature) after sorting the list, about twice the work of
 * walking the key's entries in the `_ek` index. Where a table has turned out to
 * hold many more features per key than are asked for, the statement filters.
 */
static enum ldr_rc read_chunk(struct ldr_backend *b, const char *table, struct ldr_collector *c,
                              const struct ldr_key_ref *uniq, size_t n, const char *const *features,
                              size_t n_features, struct ldr_wanted *w, struct ldr_err *err) {
  struct cached_stmt *ce = NULL;
  unsigned kb = bucket(n), fb = 0;
  if (ldr_width_names(&impl(b)->widths, table, n_features)) fb = bucket(n_features);
  enum ldr_rc rc = get_stmt(b, ST_READ, table, kb, fb, &ce, err);
  /* The names are sorted for the first chunk read by key (ldr_wanted). */
  if (rc == LDR_OK && fb == 0 && n_features > 0 && w->n == 0)
    rc = ldr_wanted_init(w, features, n_features, c->arena, err);
  if (rc != LDR_OK) return rc;
  sqlite3_stmt *st = ce->st;
  /* Unused placeholders repeat the last key or feature. */
  for (unsigned i = 0; i < kb; i++) {
    const struct ldr_key_ref *k = n ? &uniq[i < n ? i : n - 1] : NULL;
    sqlite3_bind_blob(st, (int)i + 1, k && k->len ? (const void *)k->bytes : "",
                      k ? (int)k->len : 0, SQLITE_STATIC);
  }
  for (unsigned i = 0; i < fb; i++)
    sqlite3_bind_text(st, (int)(kb + i + 1), features[i < n_features ? i : n_features - 1], -1,
                      SQLITE_STATIC);
  size_t fetched = 0;
  int r;
  for (;;) {
    r = sqlite3_step(st);
    if (r != SQLITE_ROW || n == 0) break;
    fetched++;
    const char *name = (const char *)sqlite3_column_text(st, 1);
    size_t name_len = (size_t)sqlite3_column_bytes(st, 1);
    if (fb == 0 && n_features > 0 && (name == NULL || !ldr_wanted_has(w, name, name_len))) continue;
    struct ldr_ts ts;
    int has_ts = column_ts(st, 3, &ts);
    const void *value = sqlite3_column_blob(st, 2);
    size_t value_len = (size_t)sqlite3_column_bytes(st, 2);
    /* With one key asked for, every row is that key's: no need to read it back. */
    if (n == 1)
      rc = ldr_collect_row_of(c, (size_t)(uniq - c->uniq), name, name_len, value, value_len,
                              has_ts ? &ts : NULL, err);
    else
      rc = ldr_collect_row(c, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), name,
                           name_len, value, value_len, has_ts ? &ts : NULL, err);
    if (rc != LDR_OK) break;
  }
  if (rc == LDR_OK && r != SQLITE_DONE && r != SQLITE_ROW) rc = db_error(b, r, "read", table, err);
  /* Every placeholder is bound again by the next call: no need to clear them. */
  sqlite3_reset(st);
  /* Rows taken before a failure count too: fewer than the table holds, never more. */
  if (fb == 0) ldr_width_learn(&impl(b)->widths, table, fetched, n);
  return rc;
}

/* One view's read: a statement per MAX_KEY_BUCKET distinct keys (SQLite's
 * limit on placeholders), so a read of 10,000 keys takes two. */
static enum ldr_rc read_one(struct ldr_backend *b, struct ldr_read *r, struct ldr_arena *a,
                            size_t *budget, struct ldr_err *err) {
  struct ldr_collector c;
  struct ldr_wanted w = {0};
  enum ldr_rc rc = ldr_read_features_check(r, err);
  if (rc != LDR_OK) return rc;
  rc = ldr_collect_begin(&c, a, r->keys, r->n_keys, budget, err);
  size_t off = 0;
  while (rc == LDR_OK) {
    size_t chunk = c.nuniq - off > MAX_KEY_BUCKET ? MAX_KEY_BUCKET : c.nuniq - off;
    rc = read_chunk(b, r->table, &c, c.uniq + off, chunk, r->features, r->n_features, &w, err);
    off += chunk;
    if (off >= c.nuniq) break;
  }
  if (rc == LDR_OK && r->out != NULL) rc = ldr_collect_end(&c, r->out, err);
  return rc;
}

/* No round trip to pay: the views are read one after another, in one read
 * transaction, so that they agree with each other. */
static enum ldr_rc sqlite_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                               struct ldr_arena *a, struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  size_t budget = ldr_read_budget(b);
  call_start(b);
  int txn = n > 1 && sqlite3_get_autocommit(s->db);
  enum ldr_rc rc = txn ? exec(b, "BEGIN", "read", err) : LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < n; i++) rc = read_one(b, &reads[i], a, &budget, err);
  if (txn && !sqlite3_get_autocommit(s->db)) {
    if (rc == LDR_OK)
      rc = exec(b, "COMMIT", "read", err);
    else
      rollback(b);
  }
  return rc;
}

static int quote_ident(char *buf, size_t cap, const char *fmt, const char *table) {
  /* Table names were checked to be [A-Za-z0-9_]: quoting needs no escaping. */
  return snprintf(buf, cap, fmt, table, table, table, table) < (int)cap ? 0 : -1;
}

static enum ldr_rc ddl(struct ldr_backend *b, const char *fmt, const char *table,
                       struct ldr_err *err) {
  char sql[512];
  if (quote_ident(sql, sizeof sql, fmt, table) != 0)
    return ldr_err_set(err, LDR_INVALID, "table name too long: %s", table);
  return exec(b, sql, table, err);
}

/*
 * SQLite keeps tables and indexes in one namespace: a table must not take the
 * name of another table's index (<table>_ek), nor its own index that of a table.
 */
static enum ldr_rc check_clash(struct ldr_backend *b, const char *t, size_t i,
                               struct ldr_err *err) {
  sqlite3_stmt *st = NULL;
  enum ldr_rc rc =
      prepare(b, "SELECT type, name FROM sqlite_master WHERE name = ?1 OR name = ?1 || '_ek'", &st,
              "update", NULL, err);
  if (rc != LDR_OK) return rc;
  sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
  while (rc == LDR_OK && sqlite3_step(st) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    int own = !strcmp(name, t);
    if (own && !strcmp(type, "index"))
      rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                       "tables_to_keep[%zu]: %s is the index of another table", i, t);
    else if (!own && strcmp(type, "index"))
      rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                       "tables_to_keep[%zu]: the index of table %s would be %s, which is a table",
                       i, t, name);
  }
  sqlite3_finalize(st);
  return rc;
}

static enum ldr_rc sqlite_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                                 const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct sqlite_impl *s = impl(b);
  call_start(b);
  forget_statements(s);
  enum ldr_rc rc = step_done(b, s->begin, "update", NULL, err);
  for (size_t i = 0; rc == LDR_OK && i < n_keep; i++) rc = check_clash(b, keep[i], i, err);
  for (size_t i = 0; rc == LDR_OK && i < n_keep; i++) {
    /* Feast's DDL, double spaces included. */
    rc = ddl(b,
             "CREATE TABLE IF NOT EXISTS \"%s\" (entity_key BLOB, feature_name TEXT, value BLOB, "
             "value_text TEXT,  vector_value BLOB, event_ts timestamp, created_ts timestamp,  "
             "PRIMARY KEY(entity_key, feature_name))",
             keep[i], err);
    if (rc == LDR_OK)
      rc = ddl(b, "CREATE INDEX IF NOT EXISTS \"%s_ek\" ON \"%s\" (entity_key);", keep[i], err);
    if (rc == LDR_OK) {
      /* Tables from Feast releases before value_text get the column, as Feast adds it. */
      char sql[256];
      snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"value_text\" TEXT", keep[i]);
      sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    }
  }
  for (size_t i = 0; rc == LDR_OK && i < n_drop; i++)
    rc = ddl(b, "DROP TABLE IF EXISTS \"%s\"", drop[i], err);
  if (rc == LDR_OK) rc = step_done(b, s->commit, "update: commit", NULL, err);
  if (rc != LDR_OK) rollback(b);
  return rc;
}

static enum ldr_rc sqlite_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                                   struct ldr_err *err) {
  return sqlite_update(b, NULL, 0, tables, n, err);
}

static enum ldr_rc sqlite_ping(struct ldr_backend *b, struct ldr_err *err) {
  call_start(b);
  return exec(b, "SELECT 1", "ping", err);
}

static int sqlite_connected(struct ldr_backend *b) { return impl(b)->db != NULL; }

static const struct ldr_config_field fields[] = {
    {.key = "path", .kind = LDR_FIELD_PATH, .offset = offsetof(struct ldr_sqlite_options, path)},
    LDR_VECTOR_OPTIONS,
};

static int defaults(void *opts) {
  struct ldr_sqlite_options *o = opts;
  o->path = strdup("data/online.db"); /* Feast's default, beside feature_store.yaml */
  return o->path ? 0 : -1;
}

const struct ldr_store_schema ldr_sqlite_schema = {
    .name = "sqlite",
    .size = sizeof(struct ldr_sqlite_options),
    .fields = fields,
    .n_fields = sizeof fields / sizeof fields[0],
    .defaults = defaults,
};

const struct ldr_backend_ops ldr_sqlite_ops = {
    .schema = &ldr_sqlite_schema,
    .impl_size = sizeof(struct sqlite_impl),
    .open = sqlite_open,
    .close = sqlite_close,
    .update = sqlite_update,
    .teardown = sqlite_teardown,
    .write = sqlite_write,
    .read = sqlite_read,
    .ping = sqlite_ping,
    .connected = sqlite_connected,
    .reader = &ldr_sqlite_reader,
};
