/*
 * Feast's SQL registry in an SQLite file, read through ldr_reader_ops. The
 * file is opened through a file: URI with mode=ro, so that a missing registry
 * is reported (it may appear later) and never created, and nothing through
 * this connection can write. Every wait is bounded by the timeout given to
 * open: a lock held by a writer by the busy timeout, a long statement by a
 * progress handler that interrupts it.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/sqlite.h"

/* Virtual machine steps between two looks at the clock. */
#define PROGRESS_STEPS 4000

/* Each reader file completes this type for itself, as curl's TLS backends
 * each define their own struct ssl_backend_data. */
struct ldr_reader {
  sqlite3 *db;
  char *path; /* the file as opened, for messages */
  int timeout_s;
  int64_t until_ns; /* when the statement running is interrupted */
  int timed_out;    /* the progress handler interrupted it */
  int in_snapshot;  /* between begin and end */
};

/* Interrupts a statement past its time, or once larder stops waiting for
 * databases (ldr_backend_abort_waits) at shutdown. */
static int past_until(void *arg) {
  struct ldr_reader *r = arg;
  if (ldr_now_ns() < r->until_ns && !ldr_backend_aborting()) return 0;
  r->timed_out = 1;
  return 1;
}

/* Starts the clock of one statement. */
static void start_clock(struct ldr_reader *r) {
  r->timed_out = 0;
  r->until_ns = ldr_now_ns() + (int64_t)r->timeout_s * 1000000000;
}

/* Maps SQLite's code for what just failed to ours, copying its message at
 * once. The message names the file: it goes to the log. */
static enum ldr_rc fail(struct ldr_reader *r, int code, const char *what, struct ldr_err *err) {
  const char *msg = sqlite3_errmsg(r->db);
  int primary = code & 0xff;
  if (strncmp(msg, "no such table", 13) == 0)
    return ldr_err_set(err, LDR_NOT_FOUND, "registry %s: %s: %s", r->path, what, msg);
  if (primary == SQLITE_INTERRUPT || r->timed_out)
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: %s took longer than %d s", r->path, what,
                       r->timeout_s);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: %s waited %d s for a lock: %s", r->path,
                       what, r->timeout_s, msg);
  /* The plain code is a write refused on this read-only connection; the
   * extended ones (a WAL file that cannot be set up read-only) may pass. */
  if (code == SQLITE_READONLY)
    return ldr_err_set(err, LDR_DENIED, "registry %s: %s: the registry is opened read-only: %s",
                       r->path, what, msg);
  if (primary == SQLITE_NOMEM) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  if (primary == SQLITE_READONLY || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
      primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT || primary == SQLITE_PROTOCOL ||
      primary == SQLITE_FULL)
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: %s: %s", r->path, what, msg);
  return ldr_err_set(err, LDR_INTERNAL, "registry %s: %s: %s", r->path, what, msg);
}

static enum ldr_rc exec(struct ldr_reader *r, const char *sql, const char *what,
                        struct ldr_err *err) {
  if (r->db == NULL)
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry: %s: the reader is closed", what);
  start_clock(r);
  int code = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
  return code == SQLITE_OK ? LDR_OK : fail(r, code, what, err);
}

/* `path` joined to `dir` unless it is absolute (or there is no dir); malloc'd. */
static char *resolve(const char *dir, const char *path) {
  size_t dn = dir != NULL && path[0] != '/' ? strlen(dir) : 0;
  char *p = malloc(dn + 1 + strlen(path) + 1);
  if (p == NULL) return NULL;
  if (dn == 0)
    strcpy(p, path);
  else
    sprintf(p, "%s%s%s", dir, dir[dn - 1] == '/' ? "" : "/", path);
  return p;
}

/* A file URI opening `path` read-only. '?', '#' and '%' are percent-encoded,
 * since the URI would read them as its own; an absolute path gets an empty
 * authority ("file:///x"), so that one starting with "//" is not read as a host. */
static char *file_uri(const char *path) {
  static const char query[] = "?mode=ro";
  char *u = malloc(sizeof "file://" + 3 * strlen(path) + sizeof query);
  if (u == NULL) return NULL;
  char *o = u + sprintf(u, "%s", path[0] == '/' ? "file://" : "file:");
  for (const char *p = path; *p; p++) {
    if (*p == '?' || *p == '#' || *p == '%')
      o += sprintf(o, "%%%02X", (unsigned)(unsigned char)*p);
    else
      *o++ = *p;
  }
  strcpy(o, query);
  return u;
}

static enum ldr_rc sq_open(const struct ldr_url *url, const char *dir, int timeout_s,
                           struct ldr_reader **out, struct ldr_err *err) {
  struct ldr_reader *r = calloc(1, sizeof *r);
  char *uri = NULL;
  enum ldr_rc rc = LDR_OK;
  *out = r;
  if (r == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  r->timeout_s = timeout_s > 0 ? timeout_s : 1;
  if (url->path == NULL || url->path[0] == '\0') {
    rc = ldr_err_set(err, LDR_INVALID, "registry.path: an SQLite registry is sqlite:///path");
    goto out;
  }
  r->path = resolve(dir, url->path);
  uri = r->path != NULL ? file_uri(r->path) : NULL;
  if (uri == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  int code = sqlite3_open_v2(uri, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
  if (code != SQLITE_OK) {
    struct stat st;
    if (stat(r->path, &st) != 0 && errno == ENOENT)
      rc = ldr_err_set(err, LDR_UNAVAILABLE,
                       "registry %s: the file is missing (it is never created: Feast makes it)",
                       r->path);
    else
      rc = ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: cannot open it: %s", r->path,
                       r->db != NULL ? sqlite3_errmsg(r->db) : sqlite3_errstr(code));
    goto out;
  }
  sqlite3_extended_result_codes(r->db, 1);
  sqlite3_busy_timeout(r->db, r->timeout_s * 1000);
  sqlite3_progress_handler(r->db, PROGRESS_STEPS, past_until, r);
  /* The registry is one file: no query may ATTACH another one. */
  sqlite3_limit(r->db, SQLITE_LIMIT_ATTACHED, 0);
  /* Reading the schema now finds a file that is no database at open. */
  rc = exec(r, "SELECT count(*) FROM sqlite_master", "open", err);
out:
  free(uri);
  return rc;
}

static void sq_close(struct ldr_reader *r) {
  if (r == NULL) return;
  sqlite3_close_v2(r->db);
  free(r->path);
  free(r);
}

/* Ends the snapshot; a transaction that would not end leaves the reader
 * closed, so that the next call fails and the caller opens it again instead
 * of reading an old snapshot on. */
static void sq_end(struct ldr_reader *r) {
  if (r != NULL) r->in_snapshot = 0;
  if (r == NULL || r->db == NULL || sqlite3_get_autocommit(r->db)) return;
  struct ldr_err ignored;
  ldr_err_clear(&ignored);
  exec(r, "ROLLBACK", "end", &ignored);
  if (!sqlite3_get_autocommit(r->db)) {
    sqlite3_close_v2(r->db);
    r->db = NULL;
  }
}

/* A deferred transaction takes its snapshot at the first read: reading the
 * schema here takes it now, so that begin() is the moment it shows. */
static enum ldr_rc sq_begin(struct ldr_reader *r, struct ldr_err *err) {
  sq_end(r);
  enum ldr_rc rc = exec(r, "BEGIN", "begin", err);
  if (rc == LDR_OK) rc = exec(r, "SELECT count(*) FROM sqlite_master", "begin", err);
  if (rc != LDR_OK) sq_end(r);
  r->in_snapshot = rc == LDR_OK;
  return rc;
}

/* Points `c` at column i of the current row: text as text, numbers as SQLite
 * writes them in text, blobs as they are. Returns 0, or -1 out of memory. */
static int cell_of(sqlite3_stmt *st, int i, struct ldr_row_cell *c) {
  int type = sqlite3_column_type(st, i);
  c->null = type == SQLITE_NULL;
  c->data =
      type == SQLITE_BLOB ? sqlite3_column_blob(st, i) : (const void *)sqlite3_column_text(st, i);
  c->len = (size_t)sqlite3_column_bytes(st, i);
  /* Only a conversion to text can fail (no memory); an empty blob is NULL too. */
  if (c->data == NULL && type != SQLITE_NULL && type != SQLITE_BLOB) return -1;
  if (c->data == NULL) c->data = "";
  return 0;
}

static enum ldr_rc sq_query(struct ldr_reader *r, const char *sql, ldr_row_fn fn, void *arg,
                            struct ldr_err *err) {
  sqlite3_stmt *st = NULL;
  struct ldr_row_cell *cells = NULL;
  const char *tail = NULL;
  enum ldr_rc rc = LDR_OK;
  if (r->db == NULL)
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: the reader is closed", r->path);
  /* SQLite rolls a whole transaction back after some errors (an interrupt,
   * a full disk): a query now would see another state than the snapshot's. */
  if (r->in_snapshot && sqlite3_get_autocommit(r->db))
    return ldr_err_set(err, LDR_UNAVAILABLE, "registry %s: the snapshot was lost to an error",
                       r->path);
  start_clock(r);
  int code = sqlite3_prepare_v2(r->db, sql, -1, &st, &tail);
  if (code != SQLITE_OK) {
    rc = fail(r, code, "query", err);
    goto out;
  }
  /* One statement, as the other stores run it: what follows is not run. */
  if (st == NULL || tail[strspn(tail, " \t\r\n;")] != '\0') {
    rc = ldr_err_set(err, LDR_INVALID, "registry: a query is one SQL statement");
    goto out;
  }
  int n = sqlite3_column_count(st);
  cells = calloc(n > 0 ? (size_t)n : 1, sizeof *cells);
  if (cells == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  for (;;) {
    code = sqlite3_step(st);
    if (code != SQLITE_ROW) break;
    for (int i = 0; i < n; i++) {
      if (cell_of(st, i, &cells[i]) != 0) {
        rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
        goto out;
      }
    }
    rc = fn(arg, cells, (size_t)n, err);
    if (rc != LDR_OK) {
      ldr_err_set(err, rc, "registry %s: a row was refused", r->path);
      goto out;
    }
  }
  if (code != SQLITE_DONE) rc = fail(r, code, "query", err);
out:
  sqlite3_finalize(st);
  free(cells);
  return rc;
}

static const char *const dialects[] = {"sqlite", NULL};

const struct ldr_reader_ops ldr_sqlite_reader = {
    .dialects = dialects,
    .open = sq_open,
    .begin = sq_begin,
    .query = sq_query,
    .end = sq_end,
    .close = sq_close,
    .tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                  "'sqlite\\_%' ESCAPE '\\' ORDER BY name",
};
