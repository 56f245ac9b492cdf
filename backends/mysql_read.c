/* The MySQL backend's reads: every view of a request in one UNION ALL statement,
 * rows fetched as they arrive into the call's budget. */
#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/mysql_int.h"
#include "common/log.h"
#include "common/tz.h"

/* ---- reads ---- */

/* A distinct key of a group, and the reads that asked for it: owners[owner..owner + n_owners). */
struct gkey {
  const uint8_t *bytes;
  size_t len;
  size_t owner, n_owners;
};

struct owner {
  size_t read, u; /* the read and its collector's distinct key */
};

/* The reads of several keys of one table that name the same features (reads
 * served together usually do): one SELECT serves them all, for a UNION ALL
 * costs MariaDB a copy of every row into a record of the union (select_union_direct). */
struct group {
  const char *table;
  size_t first; /* its first read, whose features the SELECT names */
  struct gkey *keys;
  size_t n_keys;
  struct owner *owners;
  int named;              /* the SELECT names the features (ldr_width_names); else by key */
  struct ldr_wanted want; /* reads naming features: the rows to keep */
};

/* One SELECT of a read statement: the keys keys[off..off+n) of a group. */
struct part {
  const char *table;
  size_t group, off, n, bytes;
  unsigned kb, fb; /* key and feature placeholders */
  size_t rows;     /* rows received */
};

/* Parts in one order whatever the order of the views, so that reads served
 * together (service/batch.c) in another order reuse the same statement. */
static int part_cmp(const void *x, const void *y) {
  const struct part *a = x, *b = y;
  int c = strcmp(a->table, b->table);
  if (c == 0) c = (a->kb > b->kb) - (a->kb < b->kb);
  if (c == 0) c = (a->fb > b->fb) - (a->fb < b->fb);
  if (c == 0) c = (a->group > b->group) - (a->group < b->group);
  return c ? c : (a->off > b->off) - (a->off < b->off);
}

struct read_arg {
  struct ldr_read *reads;
  struct ldr_collector *cs; /* one per read */
  size_t n;
  struct group *groups;
  size_t n_groups;
  struct part *parts;
  size_t n_parts;
  size_t *stmt_end; /* statement i runs parts [stmt_end[i - 1], stmt_end[i]) */
  size_t n_stmts;
  struct ldr_arena *arena;
  long long last_part; /* the previous row's part and key, for runs of one key */
  size_t last_key;
};

static int same_features(const struct ldr_read *x, const struct ldr_read *y) {
  if (x->n_features != y->n_features) return 0;
  for (size_t i = 0; i < x->n_features; i++)
    if (strcmp(x->features[i], y->features[i]) != 0) return 0;
  return 1;
}

/* A key as one read asked for it. */
struct owned {
  const uint8_t *bytes;
  size_t len;
  struct owner by;
};

static int owned_cmp(const void *x, const void *y) {
  const struct owned *a = x, *b = y;
  int c = ldr_blob_cmp(a->bytes, a->len, b->bytes, b->len);
  return c ? c : (a->by.read > b->by.read) - (a->by.read < b->by.read);
}

/* The group's distinct keys, each with the reads that asked for it. */
static enum ldr_rc group_keys(struct read_arg *a, struct group *g, const size_t *group_of,
                              struct ldr_err *err) {
  size_t total = 0, n_reads = 0;
  for (size_t r = g->first; r < a->n; r++)
    if (group_of[r] == (size_t)(g - a->groups)) total += a->cs[r].nuniq, n_reads++;
  struct owned *all = ldr_arena_calloc(a->arena, total + 1, sizeof *all);
  g->keys = ldr_arena_calloc(a->arena, total + 1, sizeof *g->keys);
  g->owners = ldr_arena_calloc(a->arena, total + 1, sizeof *g->owners);
  if (all == NULL || g->keys == NULL || g->owners == NULL) return ldr_my_too_big(err, "read");
  size_t k = 0;
  for (size_t r = g->first; r < a->n; r++) {
    if (group_of[r] != (size_t)(g - a->groups)) continue;
    for (size_t u = 0; u < a->cs[r].nuniq; u++)
      all[k++] = (struct owned){a->cs[r].uniq[u].bytes, a->cs[r].uniq[u].len, {r, u}};
  }
  /* A collector's keys are sorted already: one read's need no sort. */
  if (n_reads > 1) qsort(all, total, sizeof *all, owned_cmp);
  for (size_t i = 0; i < total; i++) {
    if (g->n_keys == 0 || ldr_blob_cmp(all[i].bytes, all[i].len, g->keys[g->n_keys - 1].bytes,
                                       g->keys[g->n_keys - 1].len) != 0)
      g->keys[g->n_keys++] = (struct gkey){.bytes = all[i].bytes, .len = all[i].len, .owner = i};
    g->owners[i] = all[i].by;
    g->keys[g->n_keys - 1].n_owners++;
  }
  return LDR_OK;
}

/* Whether read r joins group g: the same table and features, and more than
 * one key in each. A read of one key is a lookup of the primary key; several
 * of them in one SELECT became a range scan and cost MariaDB 10-20% more per
 * read (1x10, concurrency 16) than a UNION ALL of lookups. */
static int joins(const struct read_arg *a, const struct group *g, size_t r) {
  return a->cs[g->first].nuniq > 1 && a->cs[r].nuniq > 1 &&
         strcmp(g->table, a->reads[r].table) == 0 &&
         same_features(&a->reads[g->first], &a->reads[r]);
}

/* Puts the reads of one table and the same features in one group. */
static enum ldr_rc group_reads(struct ldr_backend *b, struct read_arg *a, struct ldr_err *err) {
  size_t *group_of = ldr_arena_calloc(a->arena, a->n, sizeof *group_of);
  a->groups = ldr_arena_calloc(a->arena, a->n, sizeof *a->groups);
  if (group_of == NULL || a->groups == NULL) return ldr_my_too_big(err, "read");
  for (size_t r = 0; r < a->n; r++) {
    size_t g = a->cs[r].nuniq > 1 ? 0 : a->n_groups;
    while (g < a->n_groups && !joins(a, &a->groups[g], r)) g++;
    if (g == a->n_groups)
      a->groups[a->n_groups++] = (struct group){.table = a->reads[r].table, .first = r};
    group_of[r] = g;
  }
  enum ldr_rc rc = LDR_OK;
  for (size_t g = 0; rc == LDR_OK && g < a->n_groups; g++) {
    struct group *gr = &a->groups[g];
    const struct ldr_read *rd = &a->reads[gr->first];
    gr->named = ldr_width_names(&impl(b)->widths, gr->table, rd->n_features);
    /* Kept in C also after `IN`: MariaDB compares names by the column's collation
     * (case and trailing spaces ignored), Feast and the other stores byte by byte. */
    rc = ldr_wanted_init(&gr->want, rd->features, rd->n_features, a->arena, err);
    if (rc == LDR_OK) rc = group_keys(a, gr, group_of, err);
  }
  return rc;
}

/* The parameter bytes of `n` values whose last one (which pads them to
 * `bucket`) has `last` bytes, `sum` bytes in all. */
static size_t padded(size_t sum, size_t n, size_t last, unsigned bucket) {
  return sum + n * PARAM_FRAMING + (bucket - n) * (last + PARAM_FRAMING);
}

/* Splits each group into SELECTs of at most MAX_BUCKET keys, and the SELECTs
 * into as few statements as the protocol allows: one, unless the call binds
 * more than MAX_PARAMS values or MAX_PACKET bytes. A group of no keys still
 * gets a SELECT: it checks that the table exists. */
static enum ldr_rc plan_read(struct read_arg *a, struct ldr_err *err) {
  size_t count = 0, params = 0, bytes = 0;
  for (size_t g = 0; g < a->n_groups; g++) count += a->groups[g].n_keys / MAX_BUCKET + 1;
  a->parts = ldr_arena_calloc(a->arena, count, sizeof *a->parts);
  a->stmt_end = ldr_arena_calloc(a->arena, count, sizeof *a->stmt_end);
  if (a->parts == NULL || a->stmt_end == NULL) return ldr_my_too_big(err, "read");
  for (size_t g = 0; g < a->n_groups; g++) {
    const struct group *gr = &a->groups[g];
    const struct ldr_read *rd = &a->reads[gr->first];
    size_t fsum = 0, off = 0;
    for (size_t i = 0; gr->named && i < rd->n_features; i++) fsum += strlen(rd->features[i]);
    do {
      struct part *p = &a->parts[a->n_parts++];
      size_t ksum = 0;
      p->table = gr->table;
      p->group = g;
      p->off = off;
      p->n = gr->n_keys - off < MAX_BUCKET ? gr->n_keys - off : MAX_BUCKET;
      p->kb = ldr_sql_bucket(p->n);
      p->fb = gr->named ? ldr_sql_bucket(rd->n_features) : 0;
      for (size_t i = 0; i < p->n; i++) ksum += gr->keys[off + i].len;
      p->bytes = padded(ksum, p->n, p->n ? gr->keys[off + p->n - 1].len : 0, p->kb);
      if (p->fb)
        p->bytes += padded(fsum, rd->n_features, strlen(rd->features[rd->n_features - 1]), p->fb);
      off += p->n;
    } while (off < gr->n_keys);
  }
  qsort(a->parts, a->n_parts, sizeof *a->parts, part_cmp);
  for (size_t i = 0; i < a->n_parts; i++) {
    const struct part *p = &a->parts[i];
    if (params && (params + p->kb + p->fb > MAX_PARAMS || bytes + p->bytes > MAX_PACKET)) {
      a->stmt_end[a->n_stmts++] = i;
      params = bytes = 0;
    }
    params += p->kb + p->fb;
    bytes += p->bytes;
  }
  a->stmt_end[a->n_stmts++] = a->n_parts;
  return LDR_OK;
}

/* Copies column `col` of the current row, `len` bytes, into the arena, NUL-terminated:
 * from its buffer `buf`, or, when the column did not fit it (`cut`), from the server's row. */
static enum ldr_rc column(struct ldr_backend *b, struct my_conn *s, MYSQL_STMT *st, unsigned col,
                          const char *buf, my_bool cut, unsigned long len, struct ldr_arena *a,
                          char **out, struct ldr_err *err) {
  *out = ldr_arena_alloc(a, (size_t)len + 1);
  if (*out == NULL) return ldr_my_too_big(err, "read");
  if (!cut || len == 0) { /* a NULL column leaves the flag as the last row set it */
    memcpy(*out, buf, len);
  } else {
    MYSQL_BIND bd;
    unsigned long got = 0;
    my_bool is_null = 0, error = 0;
    ldr_my_bind_string(&bd, *out, len, MYSQL_TYPE_STRING);
    bd.length = &got;
    bd.is_null = &is_null;
    bd.error = &error;
    if (mysql_stmt_fetch_column(st, &bd, col, 0) != 0)
      return ldr_my_stmt_error(b, s, st, "read", NULL, 0, err);
  }
  (*out)[len] = '\0';
  return LDR_OK;
}

/* The row's key among the keys of its part, or SIZE_MAX. */
static size_t find_key(struct read_arg *a, const struct part *p, const struct group *g,
                       const char *key, size_t len) {
  const uint8_t *k = (const uint8_t *)key;
  if (a->last_part == (long long)(p - a->parts) && a->last_key != SIZE_MAX &&
      ldr_blob_cmp(g->keys[a->last_key].bytes, g->keys[a->last_key].len, k, len) == 0)
    return a->last_key;
  size_t lo = p->off, hi = p->off + p->n, found = SIZE_MAX;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = ldr_blob_cmp(g->keys[mid].bytes, g->keys[mid].len, k, len);
    if (cmp == 0) {
      found = mid;
      break;
    }
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  a->last_part = p - a->parts;
  a->last_key = found;
  return found;
}

/* Hands the current row to the collectors of the reads that asked for its key. */
static enum ldr_rc take_row(struct ldr_backend *b, struct my_conn *s, struct read_arg *a,
                            MYSQL_STMT *st, struct part *parts, size_t n_parts,
                            struct ldr_err *err) {
  if (s->part < 0 || (unsigned long long)s->part >= n_parts)
    return ldr_err_set(err, LDR_INTERNAL, "read: a row of no view (v = %lld)", s->part);
  struct part *p = &parts[s->part];
  struct group *g = &a->groups[p->group];
  p->rows++;
  /* A key longer than any requested one cannot be one of them. */
  if (s->key_null || s->key_len > KEY_HEX_MAX) return LDR_OK;
  size_t k = find_key(a, p, g, s->key, s->key_len);
  if (k == SIZE_MAX) return LDR_OK;
  const struct gkey *gk = &g->keys[k];
  unsigned long name_len = s->name_null ? 0 : s->name_len;
  unsigned long value_len = s->value_null ? 0 : s->value_len;
  char *name = NULL, *value = NULL;
  enum ldr_rc rc = LDR_OK;
  /* Reads naming features: only the named ones. A name wider than its buffer
   * is fetched first, if a named feature has its length. */
  if (g->want.n) {
    const char *have = s->name;
    if (s->name_cut) {
      if (!ldr_wanted_len(&g->want, name_len)) return LDR_OK;
      rc = column(b, s, st, 2, s->name, s->name_cut, name_len, a->arena, &name, err);
      if (rc != LDR_OK) return rc;
      have = name;
    }
    if (!ldr_wanted_has(&g->want, have, name_len)) return LDR_OK;
  }
  /* The budget (one for the call's reads) is checked before a column of any
   * width takes memory; the collector counts the row exactly afterwards. */
  rc = ldr_collect_reserve(&a->cs[g->owners[gk->owner].read], name_len, value_len, err);
  if (rc == LDR_OK && name == NULL)
    rc = column(b, s, st, 2, s->name, s->name_cut, name_len, a->arena, &name, err);
  if (rc == LDR_OK)
    rc = column(b, s, st, 3, s->value, s->value_cut, value_len, a->arena, &value, err);
  if (rc != LDR_OK) return rc;
  struct ldr_ts ts = {0, 0};
  if (!s->ts_null) {
    /* The session's time zone is UTC (mysql_conn.c): no zone to apply. */
    ts.s = ldr_utc_from_civil(s->ts.year, (int)s->ts.month, (int)s->ts.day, (int)s->ts.hour,
                              (int)s->ts.minute, (int)s->ts.second);
    ts.ns = (int32_t)s->ts.second_part * 1000;
  }
  /* Reads that share a key share the row's copies in the arena. */
  for (size_t o = gk->owner; rc == LDR_OK && o < gk->owner + gk->n_owners; o++)
    rc = ldr_collect_row_of_ref(&a->cs[g->owners[o].read], g->owners[o].u, name, name_len, value,
                                value_len, s->ts_null ? NULL : &ts, err);
  return rc;
}

/* Reads the next row off the connection; *more is 0 after the last one. */
static enum ldr_rc fetch(struct ldr_backend *b, struct my_conn *s, MYSQL_STMT *st, int *more,
                         struct ldr_err *err) {
  int ret = 0, status = mysql_stmt_fetch_start(&ret, st);
  int64_t until = ldr_my_command_until(b);
  while (status) {
    status = ldr_my_wait_io(s->conn, status, until);
    if (status < 0) return ldr_my_timed_out(s, "read", err);
    status = mysql_stmt_fetch_cont(&ret, st, status);
  }
  /* A name or value wider than its buffer reports truncation. */
  *more = ret == 0 || ret == MYSQL_DATA_TRUNCATED;
  return ret == 1 ? ldr_my_stmt_error(b, s, st, "read", NULL, 0, err) : LDR_OK;
}

static void bind_results(struct my_conn *s, MYSQL_BIND *res) {
  memset(res, 0, 5 * sizeof *res);
  res[0].buffer_type = MYSQL_TYPE_LONGLONG;
  res[0].buffer = &s->part;
  ldr_my_bind_string(&res[1], s->key, sizeof s->key, MYSQL_TYPE_STRING);
  res[1].length = &s->key_len;
  res[1].is_null = &s->key_null;
  ldr_my_bind_string(&res[2], s->name, sizeof s->name, MYSQL_TYPE_STRING);
  res[2].length = &s->name_len;
  res[2].is_null = &s->name_null;
  res[2].error = &s->name_cut;
  ldr_my_bind_string(&res[3], s->value, sizeof s->value, MYSQL_TYPE_BLOB);
  res[3].length = &s->value_len;
  res[3].is_null = &s->value_null;
  res[3].error = &s->value_cut;
  res[4].buffer_type = MYSQL_TYPE_TIMESTAMP;
  res[4].buffer = &s->ts;
  res[4].is_null = &s->ts_null;
}

/* Runs parts[0..n) as one statement and collects its rows as they arrive. */
static enum ldr_rc read_stmt(struct ldr_backend *b, struct my_conn *s, struct read_arg *a,
                             struct part *parts, size_t n, struct ldr_err *err) {
  struct ldr_sb key = {0}, sql = {0};
  MYSQL_STMT *st = NULL;
  MYSQL_BIND res[5];
  enum ldr_rc rc = LDR_OK;
  size_t n_params = 0;
  const char **tables = ldr_arena_calloc(a->arena, n, sizeof *tables);
  if (tables == NULL) {
    rc = ldr_my_too_big(err, "read");
    goto out;
  }
  ldr_sb_puts(&key, "R");
  for (size_t i = 0; i < n; i++) {
    tables[i] = parts[i].table;
    ldr_sb_printf(&key, "|%s:%u:%u", tables[i], parts[i].kb, parts[i].fb);
    n_params += parts[i].kb + parts[i].fb;
  }
  if (ldr_sb_str(&key) == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "read: out of memory");
    goto out;
  }
  st = ldr_stmt_find(&s->stmts, ldr_sb_str(&key));
  if (st == NULL) {
    /* The part's number (v) routes each row to the collector of its view.
     * Keys and names are read as bytes: a UNION of text columns of two
     * collations is an error (1271), and tables made before and after a
     * server's default changed differ; they are compared here byte for byte. */
    for (size_t i = 0; i < n; i++) {
      ldr_sb_printf(&sql,
                    "%sSELECT %zu AS v, CAST(entity_key AS BINARY), CAST(feature_name AS BINARY), "
                    "value, event_ts FROM `%s` WHERE entity_key IN (",
                    i ? " UNION ALL " : "", i, tables[i]);
      ldr_sb_repeat(&sql, parts[i].kb, "?", ",");
      if (parts[i].fb) {
        ldr_sb_puts(&sql, ") AND feature_name IN (");
        ldr_sb_repeat(&sql, parts[i].fb, "?", ",");
      }
      ldr_sb_puts(&sql, ")");
    }
    if (ldr_sb_str(&sql) == NULL) {
      rc = ldr_err_set(err, LDR_NOMEM, "read: out of memory");
      goto out;
    }
    rc = ldr_my_prepare(b, s, ldr_sb_str(&key), ldr_sb_str(&sql), tables, n, &st, err);
    if (rc != LDR_OK) goto out;
  }
  MYSQL_BIND *params = ldr_arena_calloc(a->arena, n_params, sizeof *params), *p = params;
  if (params == NULL) {
    rc = ldr_my_too_big(err, "read");
    goto out;
  }
  /* Unused placeholders repeat the last key or feature. */
  for (size_t i = 0; i < n; i++) {
    const struct group *g = &a->groups[parts[i].group];
    const struct ldr_read *rd = &a->reads[g->first];
    const struct gkey *uniq = g->keys + parts[i].off;
    size_t nk = parts[i].n, nf = rd->n_features;
    for (unsigned j = 0; j < parts[i].kb; j++) {
      const struct gkey *k = nk ? &uniq[j < nk ? j : nk - 1] : NULL;
      ldr_my_bind_string(p++, k ? (const void *)k->bytes : "", k ? k->len : 0, MYSQL_TYPE_STRING);
    }
    for (unsigned j = 0; j < parts[i].fb; j++) {
      const char *f = rd->features[j < nf ? j : nf - 1];
      ldr_my_bind_string(p++, f, strlen(f), MYSQL_TYPE_STRING);
    }
  }
  rc = ldr_my_execute(b, s, st, params, "read", tables, n, err);
  if (rc != LDR_OK) goto out;
  bind_results(s, res);
  a->last_part = -1;
  if (mysql_stmt_bind_result(st, res)) {
    rc = ldr_my_stmt_error(b, s, st, "read", NULL, 0, err);
    ldr_my_drop_connection(s); /* its rows are still coming */
    goto out;
  }
  for (;;) {
    int more = 0;
    rc = fetch(b, s, st, &more, err);
    if (rc != LDR_OK || !more) break;
    rc = take_row(b, s, a, st, parts, n, err);
    if (rc != LDR_OK) {
      /* Draining what is left could mean reading gigabytes: a new connection is cheaper. */
      ldr_my_drop_connection(s);
      break;
    }
  }
  /* Also after a failure part-way: the rows taken are fewer than the table holds, never more. */
  for (size_t i = 0; i < n; i++)
    if (!a->groups[parts[i].group].named)
      ldr_width_learn(&impl(b)->widths, parts[i].table, parts[i].rows, parts[i].n);
out:
  ldr_sb_free(&key);
  ldr_sb_free(&sql);
  return rc;
}

static enum ldr_rc op_read(struct ldr_backend *b, struct ldr_sql_conn *c, void *varg,
                           struct ldr_err *err) {
  struct read_arg *a = varg;
  enum ldr_rc rc = LDR_OK;
  for (size_t r = 0; r < a->n; r++) ldr_collect_reset(&a->cs[r]);
  for (size_t i = 0; i < a->n_parts; i++) a->parts[i].rows = 0;
  for (size_t i = 0, from = 0; rc == LDR_OK && i < a->n_stmts; from = a->stmt_end[i++])
    rc = read_stmt(b, myc(c), a, a->parts + from, a->stmt_end[i] - from, err);
  return rc;
}

/* Keys travel and are stored as the lowercase hex of their bytes. */
static enum ldr_rc hex_keys(const struct ldr_key *keys, size_t n, struct ldr_arena *a,
                            struct ldr_key **out, struct ldr_err *err) {
  *out = ldr_arena_alloc(a, (n ? n : 1) * sizeof **out);
  if (*out == NULL) return ldr_my_too_big(err, "read");
  for (size_t i = 0; i < n; i++) {
    if (keys[i].len * 2 > KEY_HEX_MAX)
      return ldr_err_set(
          err, LDR_INVALID,
          "entity_keys[%zu]: the serialized key has %zu bytes; MySQL's entity_key column holds %d",
          i, keys[i].len, KEY_HEX_MAX / 2);
    (*out)[i].bytes = (const uint8_t *)ldr_my_hex_of(a, keys[i].bytes, keys[i].len);
    (*out)[i].len = keys[i].len * 2;
    if ((*out)[i].bytes == NULL) return ldr_my_too_big(err, "read");
  }
  return LDR_OK;
}

enum ldr_rc ldr_my_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                        struct ldr_arena *arena, struct ldr_err *err) {
  size_t budget = ldr_read_budget(b);
  struct read_arg a = {.reads = reads, .n = n, .arena = arena};
  if (n == 0) return LDR_OK;
  struct ldr_key **hex = ldr_arena_calloc(arena, n, sizeof *hex);
  a.cs = ldr_arena_calloc(arena, n, sizeof *a.cs);
  if (hex == NULL || a.cs == NULL) return ldr_my_too_big(err, "read");
  enum ldr_rc rc = LDR_OK;
  for (size_t r = 0; rc == LDR_OK && r < n; r++) {
    rc = ldr_my_check_table(reads[r].table, err);
    if (rc == LDR_OK) rc = ldr_read_features_check(&reads[r], err);
    /* Views of one entity usually share their keys: hex them once. */
    for (size_t q = 0; rc == LDR_OK && q < r && hex[r] == NULL; q++)
      if (reads[q].keys == reads[r].keys && reads[q].n_keys == reads[r].n_keys) hex[r] = hex[q];
    if (rc == LDR_OK && hex[r] == NULL)
      rc = hex_keys(reads[r].keys, reads[r].n_keys, arena, &hex[r], err);
    if (rc == LDR_OK)
      rc = ldr_collect_begin(&a.cs[r], arena, hex[r], reads[r].n_keys, &budget, err);
  }
  if (rc == LDR_OK) rc = group_reads(b, &a, err);
  if (rc == LDR_OK) rc = plan_read(&a, err);
  if (rc == LDR_OK) rc = ldr_my_run(b, impl(b)->rd, op_read, &a, err);
  for (size_t r = 0; rc == LDR_OK && r < n; r++) rc = ldr_collect_end(&a.cs[r], reads[r].out, err);
  return rc;
}
