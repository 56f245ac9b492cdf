/*
 * Feast's MySQL online store (mysql.py) on MariaDB Connector/C: the same
 * tables, with the entity key stored as the lowercase hex of its version-3
 * serialization, as Feast does whatever the config says. A read of any number
 * of views is one prepared statement, a UNION ALL of one SELECT per view with
 * IN (...) lists in ldr_sql_bucket sizes, whose rows are fetched as they
 * arrive; a write is multi-row INSERT ... ON DUPLICATE KEY UPDATE statements,
 * in one transaction when it needs more than one.
 *
 * The connector's non-blocking API is used throughout, so a call never waits
 * past its deadline even when the server stalls; the deadline also becomes
 * the session's max_statement_time (MariaDB) or max_execution_time (MySQL).
 * Connecting with back-off, retries and the statement cache are backends/sql.c's.
 */
#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/mysql_int.h"
#include "common/log.h"

/* ---- writes ---- */

/* One (key, feature) to write, with its parameters. */
struct write_item {
  const char *hex;
  size_t hex_len, name_len;
  const struct ldr_write_feature *f;
  MYSQL_TIME event, created;
  my_bool created_null;
};

/* The items one INSERT writes, all of one table. */
struct chunk {
  const char *table;
  size_t off, n;
};

struct write_arg {
  struct write_item *items;
  struct chunk *chunks;
  size_t n_chunks;
  const char **empty; /* tables the call writes no rows to: they must exist all the same */
  size_t n_empty;
  unsigned max_rows; /* the largest chunk's bucket, for the binds */
  struct ldr_arena *arena;
};

static void to_mysql_time(struct ldr_ts t, MYSQL_TIME *out) {
  struct tm tm;
  time_t s = (time_t)t.s; /* whole seconds, truncated as in the other stores */
  gmtime_r(&s, &tm);
  memset(out, 0, sizeof *out);
  out->year = (unsigned)tm.tm_year + 1900;
  out->month = (unsigned)tm.tm_mon + 1;
  out->day = (unsigned)tm.tm_mday;
  out->hour = (unsigned)tm.tm_hour;
  out->minute = (unsigned)tm.tm_min;
  out->second = (unsigned)tm.tm_sec;
  out->time_type = MYSQL_TIMESTAMP_DATETIME;
}

/* The bytes an item's five parameters take in the statement, framing included. */
static size_t item_bytes(const struct write_item *it) {
  return it->hex_len + it->name_len + it->f->len + 2 * 12 + 5 * PARAM_FRAMING;
}

/* One INSERT for chunk `c`; `p` holds 5 * max_rows binds. */
static enum ldr_rc write_chunk(struct ldr_backend *b, struct my_conn *s, struct write_arg *a,
                               const struct chunk *c, MYSQL_BIND *p, struct ldr_err *err) {
  unsigned rows = ldr_sql_bucket(c->n);
  struct ldr_sb key = {0}, sql = {0};
  ldr_sb_printf(&key, "W|%s|%u", c->table, rows);
  MYSQL_STMT *st = ldr_sb_str(&key) ? ldr_stmt_find(&s->stmts, ldr_sb_str(&key)) : NULL;
  enum ldr_rc rc = LDR_OK;
  if (st == NULL) {
    /* The statement of Feast's batch_write path, for `rows` rows at once. */
    ldr_sb_printf(
        &sql, "INSERT INTO `%s` (entity_key, feature_name, value, event_ts, created_ts) VALUES ",
        c->table);
    ldr_sb_repeat(&sql, rows, "(?,?,?,?,?)", ",");
    ldr_sb_puts(&sql, " ON DUPLICATE KEY UPDATE value = VALUES(value), event_ts = "
                      "VALUES(event_ts), created_ts = VALUES(created_ts)");
    if (ldr_sb_str(&key) == NULL || ldr_sb_str(&sql) == NULL)
      rc = ldr_err_set(err, LDR_NOMEM, "write: out of memory");
    else
      rc = ldr_my_prepare(b, s, ldr_sb_str(&key), ldr_sb_str(&sql), &c->table, 1, &st, err);
  }
  ldr_sb_free(&key);
  ldr_sb_free(&sql);
  if (rc != LDR_OK) return rc;
  /* Unused rows repeat the last one: the same upsert again changes nothing. */
  for (unsigned r = 0; r < rows; r++) {
    struct write_item *it = &a->items[c->off + (r < c->n ? r : c->n - 1)];
    MYSQL_BIND *bd = &p[5 * r];
    ldr_my_bind_string(&bd[0], it->hex, it->hex_len, MYSQL_TYPE_STRING);
    ldr_my_bind_string(&bd[1], it->f->name, it->name_len, MYSQL_TYPE_STRING);
    ldr_my_bind_string(&bd[2], it->f->len ? (const void *)it->f->bytes : "", it->f->len,
                       MYSQL_TYPE_BLOB);
    memset(&bd[3], 0, 2 * sizeof *bd);
    bd[3].buffer_type = MYSQL_TYPE_TIMESTAMP;
    bd[3].buffer = &it->event;
    bd[4].buffer_type = MYSQL_TYPE_TIMESTAMP;
    bd[4].buffer = &it->created;
    bd[4].is_null = &it->created_null;
  }
  return ldr_my_execute(b, s, st, p, "write", &c->table, 1, err);
}

/* Fails with NOT_FOUND naming the first of `tables` that does not exist. */
static enum ldr_rc tables_exist(struct ldr_backend *b, struct my_conn *c, const char *const *tables,
                                size_t n, struct ldr_err *err) {
  struct ldr_sb sql = {0};
  for (size_t i = 0; i < n; i++)
    ldr_sb_printf(&sql, "%sSELECT 1 FROM `%s` WHERE 1 = 0", i ? " UNION ALL " : "", tables[i]);
  enum ldr_rc rc = ldr_sb_str(&sql) == NULL
                       ? ldr_err_set(err, LDR_NOMEM, "write: out of memory")
                       : ldr_my_query(b, c, ldr_sb_str(&sql), "write", tables, n, NULL, err);
  ldr_sb_free(&sql);
  return rc;
}

static enum ldr_rc op_write(struct ldr_backend *b, struct ldr_sql_conn *sc, void *varg,
                            struct ldr_err *err) {
  struct write_arg *a = varg;
  struct my_conn *c = myc(sc);
  /* One statement is atomic by itself; several share a transaction. */
  int several = a->n_chunks > 1;
  MYSQL_BIND *binds = ldr_arena_alloc(a->arena, (size_t)a->max_rows * 5 * sizeof *binds);
  if (binds == NULL) return ldr_my_too_big(err, "write");
  /* Checked first, so that a missing table leaves nothing written. */
  enum ldr_rc rc = a->n_empty ? tables_exist(b, c, a->empty, a->n_empty, err) : LDR_OK;
  if (rc == LDR_OK && several)
    rc = ldr_my_query(b, c, "START TRANSACTION", "write", NULL, 0, NULL, err);
  for (size_t i = 0; rc == LDR_OK && i < a->n_chunks; i++)
    rc = write_chunk(b, c, a, &a->chunks[i], binds, err);
  if (rc == LDR_OK && several)
    rc = ldr_my_query(b, c, "COMMIT", "write: commit", NULL, 0, NULL, err);
  if (rc != LDR_OK && several && c->conn != NULL) {
    struct ldr_err ignored;
    ldr_err_clear(&ignored);
    ldr_my_query(b, c, "ROLLBACK", "write: rollback", NULL, 0, NULL, &ignored);
  }
  return rc;
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static enum ldr_rc check_ts(const struct ldr_write *w, size_t row, enum ldr_write_part part,
                            struct ldr_ts t, struct ldr_err *err) {
  char where[256];
  if (t.s < TS_MIN || t.s > TS_MAX)
    return ldr_err_set(err, LDR_INVALID,
                       "%s: %lld seconds since 1970 is outside MySQL's timestamp range "
                       "(1970-01-01T00:00:01Z to 2038-01-19T03:14:07Z)",
                       ldr_write_where(w, row, part, 0, where, sizeof where), (long long)t.s);
  return LDR_OK;
}

/* What the columns cannot hold is refused, never stored cut short; the message
 * names the field (or a push's column) the row came from. */
static enum ldr_rc check_rows(const struct ldr_write *w, struct ldr_err *err) {
  char where[256];
  for (size_t i = 0; i < w->n_rows; i++) {
    const struct ldr_write_row *r = &w->rows[i];
    if (r->key.len * 2 > KEY_HEX_MAX)
      return ldr_err_set(err, LDR_INVALID,
                         "%s: the serialized key has %zu bytes; MySQL's entity_key column holds %d",
                         ldr_write_where(w, i, LDR_PART_KEY, 0, where, sizeof where), r->key.len,
                         KEY_HEX_MAX / 2);
    enum ldr_rc rc = check_ts(w, i, LDR_PART_EVENT, r->event_ts, err);
    if (rc == LDR_OK && r->has_created) rc = check_ts(w, i, LDR_PART_CREATED, r->created_ts, err);
    if (rc != LDR_OK) return rc;
    for (size_t j = 0; j < r->n_features; j++) {
      const struct ldr_write_feature *f = &r->features[j];
      if (utf8_chars(f->name) > NAME_CHARS_MAX)
        return ldr_err_set(
            err, LDR_INVALID, "%s: the feature name is longer than MySQL's %d characters",
            ldr_write_where(w, i, LDR_PART_FEATURE, j, where, sizeof where), NAME_CHARS_MAX);
      if (f->len > VALUE_MAX)
        return ldr_err_set(
            err, LDR_INVALID, "%s: the value has %zu bytes; MySQL's BLOB column holds %d",
            ldr_write_where(w, i, LDR_PART_FEATURE, j, where, sizeof where), f->len, VALUE_MAX);
    }
  }
  return LDR_OK;
}

/* A write's place in the call, for ordering by table. */
struct by_table {
  const struct ldr_write *w;
  size_t idx;
};

static int by_table_cmp(const void *x, const void *y) {
  const struct by_table *a = x, *b = y;
  int c = strcmp(a->w->table, b->w->table);
  return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Adds the items and chunks of one table's rows: those of every write to it,
 * in call order, so that the last of a repeated (key, feature) wins across writes. */
static enum ldr_rc add_table(struct write_arg *a, const struct by_table *ws, size_t n,
                             struct ldr_err *err) {
  const struct ldr_write_row *rows = ws[0].w->rows;
  size_t n_rows = 0, n_flat = 0, base = 0;
  struct ldr_flat *flat = NULL;
  for (size_t i = 0; i < n; i++) n_rows += ws[i].w->n_rows;
  if (n > 1) {
    struct ldr_write_row *all = ldr_arena_calloc(a->arena, n_rows + 1, sizeof *all);
    if (all == NULL) goto full;
    for (size_t i = 0, k = 0; i < n; k += ws[i++].w->n_rows)
      if (ws[i].w->n_rows) memcpy(all + k, ws[i].w->rows, ws[i].w->n_rows * sizeof *all);
    rows = all;
  }
  /* Rows are written in key order, as any other writer that sorts does, so
   * concurrent batches take their row locks in one order and rarely deadlock. */
  enum ldr_rc rc = ldr_flatten_last_wins(rows, n_rows, a->arena, &flat, &n_flat, err);
  if (rc != LDR_OK) return rc;
  const char *table = ws[0].w->table;
  if (n_flat == 0) {
    a->empty[a->n_empty++] = table;
    return LDR_OK;
  }
  if (a->n_chunks) base = a->chunks[a->n_chunks - 1].off + a->chunks[a->n_chunks - 1].n;
  const struct ldr_write_row *last_row = NULL;
  const char *hex = NULL;
  for (size_t i = 0; i < n_flat; i++) {
    const struct ldr_write_row *r = flat[i].row;
    if (r != last_row) {
      hex = ldr_my_hex_of(a->arena, r->key.bytes, r->key.len);
      if (hex == NULL) goto full;
      last_row = r;
    }
    struct write_item *it = &a->items[base + i];
    it->hex = hex;
    it->hex_len = r->key.len * 2;
    it->f = flat[i].feature;
    it->name_len = strlen(it->f->name);
    to_mysql_time(r->event_ts, &it->event);
    it->created_null = !r->has_created;
    if (r->has_created) to_mysql_time(r->created_ts, &it->created);
  }
  for (size_t off = 0; off < n_flat;) {
    size_t k = 0, sum = 0;
    while (off + k < n_flat && k < MAX_BUCKET &&
           ldr_my_fits(k, sum, item_bytes(&a->items[base + off + k])))
      sum += item_bytes(&a->items[base + off + k++]);
    a->chunks[a->n_chunks++] = (struct chunk){table, base + off, k};
    if (ldr_sql_bucket(k) > a->max_rows) a->max_rows = ldr_sql_bucket(k);
    off += k;
  }
  return LDR_OK;
full:
  return ldr_my_too_big(err, "write");
}

static enum ldr_rc my_write(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                            struct ldr_arena *arena, struct ldr_err *err) {
  struct write_arg a = {.arena = arena};
  size_t total = 0;
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < n; i++) {
    rc = ldr_my_check_table(writes[i].table, err);
    if (rc == LDR_OK) rc = check_rows(&writes[i], err);
    for (size_t j = 0; j < writes[i].n_rows; j++) total += writes[i].rows[j].n_features;
  }
  if (rc != LDR_OK || n == 0) return rc;
  /* Each (key, feature) is at most one item, and each item starts at most one chunk. */
  struct by_table *order = ldr_arena_calloc(arena, n, sizeof *order);
  a.empty = ldr_arena_calloc(arena, n, sizeof *a.empty);
  a.items = ldr_arena_calloc(arena, total + 1, sizeof *a.items);
  a.chunks = ldr_arena_calloc(arena, total + 1, sizeof *a.chunks);
  if (order == NULL || a.empty == NULL || a.items == NULL || a.chunks == NULL)
    return ldr_my_too_big(err, "write");
  for (size_t i = 0; i < n; i++) order[i] = (struct by_table){&writes[i], i};
  /* Tables in name order, so that concurrent calls lock them in one order too. */
  qsort(order, n, sizeof *order, by_table_cmp);
  for (size_t i = 0, j = 0; rc == LDR_OK && i < n; i = j) {
    for (j = i + 1; j < n && !strcmp(order[j].w->table, order[i].w->table); j++) continue;
    rc = add_table(&a, order + i, j - i, err);
  }
  if (rc != LDR_OK) return rc;
  return ldr_my_run(b, impl(b)->wr, op_write, &a, err);
}

/* ---- update, teardown, ping ---- */

struct ddl_arg {
  const char *const *keep, *const *drop;
  size_t n_keep, n_drop;
};

static int listed(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(name, list[i])) return 1;
  return 0;
}

/* Runs the text built in `sql` for Update or Teardown, and empties it. */
static enum ldr_rc ddl(struct ldr_backend *b, struct my_conn *c, struct ldr_sb *sql,
                       unsigned long long *rows, struct ldr_err *err) {
  enum ldr_rc rc = ldr_sb_str(sql) == NULL
                       ? ldr_err_set(err, LDR_NOMEM, "update: out of memory")
                       : ldr_my_query(b, c, ldr_sb_str(sql), "update", NULL, 0, rows, err);
  ldr_sb_free(sql);
  return rc;
}

static enum ldr_rc table_exists(struct ldr_backend *b, struct my_conn *c, const char *t, int *yes,
                                struct ldr_err *err) {
  struct ldr_sb sql = {0};
  unsigned long long rows = 0;
  ldr_sb_printf(&sql,
                "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                "table_name = '%s'",
                t);
  enum ldr_rc rc = ddl(b, c, &sql, &rows, err);
  *yes = rows > 0;
  return rc;
}

/*
 * PostgreSQL and SQLite name a table T's index "T_ek" in the same namespace as
 * tables, so T and a table T_ek cannot both exist there. MySQL keeps index
 * names per table and would allow it; refusing anyway keeps a project portable.
 */
static enum ldr_rc check_clashes(struct ldr_backend *b, struct my_conn *c, const struct ddl_arg *a,
                                 struct ldr_err *err) {
  for (size_t i = 0; i < a->n_keep; i++) {
    const char *t = a->keep[i];
    size_t len = strlen(t);
    char other[2][LDR_TABLE_NAME_MAX + 4]; /* names are checked: at most 60 characters */
    int n_other = 1;
    snprintf(other[0], sizeof other[0], "%s_ek", t);
    if (len > 3 && !strcmp(t + len - 3, "_ek"))
      snprintf(other[n_other++], sizeof other[1], "%.*s", (int)(len - 3), t);
    for (int k = 0; k < n_other; k++) {
      int dropped = listed(other[k], a->drop, a->n_drop);
      int clash = !dropped && listed(other[k], a->keep, a->n_keep);
      if (!clash && !dropped) {
        enum ldr_rc rc = table_exists(b, c, other[k], &clash, err);
        if (rc != LDR_OK) return rc;
      }
      if (clash)
        return ldr_err_set(err, LDR_FAILED_PRECONDITION,
                           "tables_to_keep[%zu]: table \"%s\" clashes with table \"%s\": "
                           "PostgreSQL and SQLite name the index of \"%s\" \"%s_ek\"",
                           i, t, other[k], k == 0 ? t : other[k], k == 0 ? t : other[k]);
    }
  }
  return LDR_OK;
}

static enum ldr_rc op_update(struct ldr_backend *b, struct ldr_sql_conn *sc, void *varg,
                             struct ldr_err *err) {
  struct ddl_arg *a = varg;
  struct my_conn *c = myc(sc);
  struct ldr_sb sql = {0};
  enum ldr_rc rc = check_clashes(b, c, a, err);
  /* MySQL commits each DDL statement by itself: Update is not one transaction here. */
  for (size_t i = 0; rc == LDR_OK && i < a->n_keep; i++) {
    const char *t = a->keep[i];
    unsigned long long found = 0;
    /* Feast's DDL, whitespace included. */
    ldr_sb_printf(&sql,
                  "CREATE TABLE IF NOT EXISTS `%s` (entity_key VARCHAR(512),\n"
                  "                feature_name VARCHAR(256),\n"
                  "                value BLOB,\n"
                  "                event_ts timestamp NULL DEFAULT NULL,\n"
                  "                created_ts timestamp NULL DEFAULT NULL,\n"
                  "                PRIMARY KEY(entity_key, feature_name))",
                  t);
    rc = ddl(b, c, &sql, NULL, err);
    if (rc != LDR_OK) break;
    ldr_sb_printf(&sql,
                  "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
                  "AND table_name = '%s' AND index_name = '%s_ek'",
                  t, t);
    rc = ddl(b, c, &sql, &found, err);
    if (rc != LDR_OK || found) continue;
    ldr_sb_printf(&sql, "ALTER TABLE `%s` ADD INDEX `%s_ek` (entity_key)", t, t);
    rc = ddl(b, c, &sql, NULL, err);
  }
  for (size_t i = 0; rc == LDR_OK && i < a->n_drop; i++) {
    ldr_sb_printf(&sql, "DROP TABLE IF EXISTS `%s`", a->drop[i]);
    rc = ddl(b, c, &sql, NULL, err);
  }
  return rc;
}

static enum ldr_rc my_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                             const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct ddl_arg a = {keep, drop, n_keep, n_drop};
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < n_keep; i++) rc = ldr_my_check_table(keep[i], err);
  for (size_t i = 0; rc == LDR_OK && i < n_drop; i++) rc = ldr_my_check_table(drop[i], err);
  if (rc != LDR_OK) return rc;
  return ldr_my_run(b, impl(b)->wr, op_update, &a, err);
}

static enum ldr_rc my_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                               struct ldr_err *err) {
  return my_update(b, NULL, 0, tables, n, err);
}

static enum ldr_rc op_ping(struct ldr_backend *b, struct ldr_sql_conn *c, void *arg,
                           struct ldr_err *err) {
  (void)arg;
  unsigned long long rows = 0;
  return ldr_my_query(b, myc(c), "SELECT 1", "ping", NULL, 0, &rows, err);
}

/* Readiness: the store answers when any connection the served calls need
 * does (reads on a replica while the primary is away, say). */
static enum ldr_rc my_ping(struct ldr_backend *b, struct ldr_err *err) {
  struct my_impl *s = impl(b);
  enum ldr_rc rc = ldr_my_run(b, s->rd, op_ping, NULL, err);
  if (s->wr != s->rd) {
    struct ldr_err e;
    ldr_err_clear(&e);
    if (ldr_my_run(b, s->wr, op_ping, NULL, &e) == LDR_OK) rc = LDR_OK;
  }
  return rc;
}

static enum ldr_rc my_open(struct ldr_backend *b, struct ldr_err *err) {
  /* Feast's MySQL store always serializes keys with version 3 (SPEC §4.3). */
  b->key_version = 3;
  return ldr_my_open(b, err);
}

static void my_close(struct ldr_backend *b) {
  struct my_impl *s = impl(b);
  for (size_t i = 0; i < s->n_conns; i++) ldr_my_drop_connection(&s->conns[i]);
  ldr_stmt_clear(&s->widths, NULL);
}

#define MY_STRING(k, member) LDR_STRING_KEY(struct ldr_mysql_options, k, member, 0)

#define BATCH_WHY "batches are always written with multi-row statements"

static const struct ldr_config_field fields[] = {
    MY_STRING("host", host),
    LDR_INT_KEY(struct ldr_mysql_options, "port", port, 1, 65535),
    MY_STRING("user", user),
    MY_STRING("password", password),
    MY_STRING("database", database),
    MY_STRING("ssl_ca", ssl_ca),
    MY_STRING("ssl_cert", ssl_cert),
    MY_STRING("ssl_key", ssl_key),
    /* Feast's batching switch, at its default (DESIGN §5): larder always
     * writes a batch with multi-row statements, in one transaction. */
    {.key = "batch_write", .kind = LDR_FIELD_FALSE_ONLY, .offset = LDR_NO_FIELD, .why = BATCH_WHY},
    {.key = "batch_size",
     .kind = LDR_FIELD_INT_ONLY,
     .offset = LDR_NO_FIELD,
     .min = 1,
     .max = 0,
     .why = BATCH_WHY},
};

/* larder's keys of this store (issue 15). */
static const struct ldr_config_field larder_fields[] = {
    {.key = "read_hosts",
     .kind = LDR_FIELD_ADDRESSES,
     .offset = offsetof(struct ldr_mysql_options, read_hosts)},
};

/* What Feast's MySQL store ends up with when a key is not set (pymysql's defaults). */
static int defaults(void *opts) {
  struct ldr_mysql_options *o = opts;
  o->host = strdup("127.0.0.1");
  o->port = 3306;
  o->user = strdup("test");
  o->password = strdup("test");
  o->database = strdup("feast");
  return o->host && o->user && o->password && o->database ? 0 : -1;
}

const struct ldr_store_schema ldr_mysql_schema = {
    .name = "mysql",
    .size = sizeof(struct ldr_mysql_options),
    .fields = fields,
    .n_fields = sizeof fields / sizeof fields[0],
    .defaults = defaults,
    .larder_fields = larder_fields,
    .n_larder_fields = sizeof larder_fields / sizeof larder_fields[0],
};

const struct ldr_backend_ops ldr_mysql_ops = {
    .schema = &ldr_mysql_schema,
    .impl_size = sizeof(struct my_impl),
    .open = my_open,
    .close = my_close,
    .update = my_update,
    .teardown = my_teardown,
    .write = my_write,
    .read = ldr_my_read,
    .ping = my_ping,
    .connected = ldr_my_connected,
    .conns = ldr_my_conns,
    .host_label = ldr_my_host_label,
    .reader = &ldr_mysql_reader,
};
