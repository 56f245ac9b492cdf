/*
 * The PostgreSQL backend's requests as one libpq pipeline each: the statement
 * timeout when it changes (and generic plans, once per session), the
 * deallocation of evicted statements, the preparation of statements not
 * cached yet, one statement per view and one Sync; rows of reads taken one at
 * a time as they arrive.
 *
 * With larder.prepared_statements: false (pgbouncer in transaction pooling,
 * where consecutive transactions may run on different server connections) a
 * pipeline keeps nothing in the session: its statements are unnamed (parsed,
 * bound and run in the one round trip), and the deadline is set for its own
 * transaction only, with set_config(..., true), SET LOCAL's function form.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backends/postgres_int.h"
#include "common/log.h"

/* ---- binary parameters --------------------------------------------------- */

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v) {
  return put_be32(put_be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* A one-dimensional array in PostgreSQL's binary format, built element by element. */
struct pg_array {
  uint8_t *buf, *p;
  size_t n;
  int has_null;
  Oid elem;
};

static int array_begin(struct pg_array *a, struct ldr_arena *arena, Oid elem, size_t n,
                       size_t payload) {
  a->buf = ldr_arena_alloc(arena, 20 + 4 * n + payload);
  a->p = a->buf ? a->buf + 20 : NULL;
  a->n = n;
  a->has_null = 0;
  a->elem = elem;
  return a->buf ? 0 : -1;
}

static void array_put(struct pg_array *a, const void *p, size_t n) {
  a->p = put_be32(a->p, (uint32_t)n);
  if (n) memcpy(a->p, p, n);
  a->p += n;
}

static void array_null(struct pg_array *a) {
  a->p = put_be32(a->p, 0xffffffffu);
  a->has_null = 1;
}

/* Writes the header; returns the array's length in bytes. */
static int array_end(struct pg_array *a) {
  if (a->n == 0) { /* an empty array has no dimensions */
    uint8_t *h = put_be32(put_be32(a->buf, 0), 0);
    put_be32(h, a->elem);
    return 12;
  }
  uint8_t *h = put_be32(a->buf, 1);
  h = put_be32(h, (uint32_t)a->has_null);
  h = put_be32(h, a->elem);
  h = put_be32(h, (uint32_t)a->n);
  put_be32(h, 1);
  return (int)(a->p - a->buf);
}

/* Microseconds since 2000-01-01 UTC (timestamptz's binary form); the
 * nanoseconds are truncated, as Python's datetime does. */
static int64_t to_pg_micros(struct ldr_ts t) {
  return (t.s - PG_EPOCH_OFFSET) * 1000000 + t.ns / 1000;
}

static struct ldr_ts from_pg_micros(int64_t us) {
  int64_t s = us / 1000000, rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    s--;
  }
  struct ldr_ts t = {s + PG_EPOCH_OFFSET, (int32_t)(rem * 1000)};
  return t;
}

/* ---- a pipeline: the commands of one request, and their results ---------- */

enum cmd_kind { CMD_TIMEOUT, CMD_DEALLOCATE, CMD_PREPARE, CMD_READ, CMD_WRITE };

struct cmd {
  enum cmd_kind kind;
  const char *table;
  size_t read;            /* CMD_READ: which read */
  int by_key;             /* CMD_READ: every feature of the keys (the table's width is learned) */
  struct ldr_wanted want; /* CMD_READ: for a read naming features, the rows to keep */
  size_t rows;            /* CMD_READ: rows received */
  char *name;             /* CMD_PREPARE: the statement's name (owned by the cache once prepared) */
  char key[LDR_TABLE_NAME_MAX + 8];
};

struct pipeline {
  struct cmd *cmds;
  size_t n, cap;
  size_t prepared; /* CMD_PREPAREs queued: at most LDR_STMT_CACHE, what pg_conn.stale holds */
  long timeout;    /* CMD_TIMEOUT's value */
  int generic;     /* CMD_TIMEOUT sets plan_cache_mode too */
};

/* A statement to run: prepared under `name`, or (unnamed) its text. */
struct stmt_ref {
  const char *name;
  const char *sql;
  enum stmt_kind kind;
};

static const Oid stmt_types[][6] = {
    [ST_READ_ALL] = {OID_BYTEA_ARRAY},
    [ST_READ_SOME] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY},
    [ST_WRITE] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY, OID_BYTEA_ARRAY, OID_TEXT_ARRAY,
                  OID_TIMESTAMPTZ_ARRAY, OID_TIMESTAMPTZ_ARRAY},
};
static const int stmt_nparams[] = {[ST_READ_ALL] = 1, [ST_READ_SOME] = 2, [ST_WRITE] = 6};

/* The statement text for (kind, table), with the schema-qualified table. */
static void statement_sql(struct ldr_sb *sql, const char *schema, enum stmt_kind kind,
                          const char *t) {
  if (kind != ST_WRITE) {
    ldr_sb_printf(sql,
                  "SELECT entity_key, feature_name, value, event_ts FROM %s.\"%s\" "
                  "WHERE entity_key = ANY($1)%s",
                  schema, t, kind == ST_READ_SOME ? " AND feature_name = ANY($2)" : "");
    return;
  }
  /* Feast's upsert, fed from arrays so that the batch is one statement. */
  ldr_sb_printf(
      sql,
      "INSERT INTO %s.\"%s\" (\"entity_key\", \"feature_name\", \"value\", \"value_text\", "
      "\"vector_value\", \"event_ts\", \"created_ts\") "
      "SELECT k, f, v, t, NULL::bytea, e, c "
      "FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], "
      "$5::timestamptz[], $6::timestamptz[]) AS r(k, f, v, t, e, c) "
      "ON CONFLICT (entity_key, feature_name) DO UPDATE SET \"value\" = EXCLUDED.\"value\", "
      "\"value_text\" = EXCLUDED.\"value_text\", \"vector_value\" = EXCLUDED.\"vector_value\", "
      "\"event_ts\" = EXCLUDED.\"event_ts\", \"created_ts\" = EXCLUDED.\"created_ts\"",
      schema, t);
}

/*
 * Queues the statement timeout: with named statements, the session's, when
 * the call's deadline calls for another value; without, this transaction's.
 *
 * A new session with named statements also gets plan_cache_mode =
 * force_generic_plan (PostgreSQL 12 and later). Left to choose, the server
 * plans a read for its parameters on every execution, for ever: the generic
 * plan's estimate for `entity_key = ANY($1)` assumes ten keys, so it never
 * looks cheaper than a custom plan for one. The plan is the same index scan
 * either way; planning it again costs a one-key read a third of the
 * database's CPU (bench/analysis.md).
 */
static enum ldr_rc queue_timeout(struct ldr_backend *b, struct pg_conn *c, struct pipeline *p,
                                 struct ldr_err *err) {
  long want = ldr_sql_timeout_ms(b->deadline_ns);
  if (want < 0) return ldr_err_set(err, LDR_DEADLINE, "the call's deadline passed");
  char value[200];
  int sent;
  if (impl(b)->named) {
    p->generic = !c->generic && PQserverVersion(c->conn) >= 120000;
    if (want == c->timeout_ms && !p->generic) return LDR_OK;
    snprintf(value, sizeof value,
             "SELECT pg_catalog.set_config('statement_timeout', '%ld', false)%s", want,
             p->generic ? ", pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', false)"
                        : "");
    sent = PQsendQueryParams(c->conn, value, 0, NULL, NULL, NULL, NULL, 0);
    p->timeout = want;
  } else {
    const char *params[1] = {value};
    snprintf(value, sizeof value, "%ld", want);
    sent = PQsendQueryParams(c->conn, "SELECT pg_catalog.set_config('statement_timeout', $1, true)",
                             1, NULL, params, NULL, NULL, 0);
    p->timeout = -1; /* gone with the transaction */
    p->generic = 0;
  }
  if (!sent) return ldr_pg_result_error(b, c, NULL, "statement_timeout", NULL, err);
  p->cmds[p->n++] = (struct cmd){.kind = CMD_TIMEOUT};
  return LDR_OK;
}

/* The statement for (kind, table): cached, queued for preparation now, or
 * (without named statements) its text in the arena. A pipeline prepares at
 * most LDR_STMT_CACHE statements, as many as the cache can evict into
 * pg_conn.stale before the next pipeline deallocates them; a request of more
 * tables than that runs the rest unnamed. */
static enum ldr_rc statement(struct ldr_backend *b, struct pg_conn *c, struct pipeline *p,
                             enum stmt_kind kind, const char *table, struct ldr_arena *arena,
                             struct stmt_ref *out, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  struct cmd cmd = {.kind = CMD_PREPARE, .table = table};
  *out = (struct stmt_ref){.kind = kind};
  if (s->named) {
    snprintf(cmd.key, sizeof cmd.key, "%d:%s", (int)kind, table);
    out->name = ldr_stmt_find(&c->stmts, cmd.key);
    if (out->name != NULL) return LDR_OK;
    /* Prepared in this pipeline already (two reads of one view)? */
    for (size_t i = 0; i < p->n; i++)
      if (p->cmds[i].kind == CMD_PREPARE && !strcmp(p->cmds[i].key, cmd.key)) {
        out->name = p->cmds[i].name;
        return LDR_OK;
      }
  }
  struct ldr_sb sql = {0};
  statement_sql(&sql, s->schema, kind, table);
  if (ldr_sb_str(&sql) == NULL) return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  if (!s->named || p->prepared >= LDR_STMT_CACHE) {
    char *text = ldr_arena_alloc(arena, sql.len + 1);
    if (text != NULL) memcpy(text, ldr_sb_str(&sql), sql.len + 1);
    ldr_sb_free(&sql);
    out->sql = text;
    return text ? LDR_OK
                : ldr_err_set(err, LDR_EXHAUSTED, "the request is larger than a call may hold");
  }
  cmd.name = malloc(48);
  if (cmd.name == NULL) {
    ldr_sb_free(&sql);
    return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  }
  /* Named per session: behind a pooler that ignores startup options and
   * lends server connections per transaction (a misconfiguration, see
   * docs/scale-out.md), a statement of another session is never taken for
   * this one's, whose name it would share: the name is missing (26000) and
   * the session is dropped (ldr_pg_result_error). */
  while (c->tag == 0) {
    ssize_t got = getrandom(&c->tag, sizeof c->tag, GRND_NONBLOCK);
    if (got < 0 && errno == EINTR) continue;
    /* The pool not ready yet (just after boot): distinct from other sessions still. */
    if (got != (ssize_t)sizeof c->tag) c->tag = (uintptr_t)c ^ (unsigned long long)ldr_now_ns();
  }
  snprintf(cmd.name, 48, "ldr_%016llx_%llu", c->tag, ++c->seq);
  int sent =
      PQsendPrepare(c->conn, cmd.name, ldr_sb_str(&sql), stmt_nparams[kind], stmt_types[kind]);
  if (sent && ldr_log_enabled(LDR_LOG_DEBUG))
    ldr_log(LDR_LOG_DEBUG, "postgres: prepared %s: %s", cmd.name, ldr_sb_str(&sql));
  ldr_sb_free(&sql);
  if (!sent) {
    free(cmd.name);
    return ldr_pg_result_error(b, c, NULL, "prepare", table, err);
  }
  p->cmds[p->n++] = cmd;
  p->prepared++;
  out->name = cmd.name;
  return LDR_OK;
}

/* Queues the execution of a statement with binary parameters and results. */
static int send_statement(struct pg_conn *c, const struct stmt_ref *st, const char *const *values,
                          const int *lengths) {
  static const int formats[6] = {1, 1, 1, 1, 1, 1};
  int n = stmt_nparams[st->kind];
  if (st->name != NULL)
    return PQsendQueryPrepared(c->conn, st->name, n, values, lengths, formats, 1);
  return PQsendQueryParams(c->conn, st->sql, n, stmt_types[st->kind], values, lengths, formats, 1);
}

/* Sends the Sync that ends the pipeline and makes its statements one transaction. */
static enum ldr_rc sync_pipeline(struct ldr_backend *b, struct pg_conn *c, const char *what,
                                 struct ldr_err *err) {
  if (!PQpipelineSync(c->conn)) return ldr_pg_result_error(b, c, NULL, what, NULL, err);
  return ldr_pg_flush(b, c, ldr_pg_command_until(b), what, err);
}

/* Results of the reads, routed to their collectors as they arrive. */
struct read_sink {
  struct ldr_read *reads;
  struct ldr_collector *cols;
};

/* Takes the rows of a result into their collector (copied): one row in
 * single-row mode, all of them when libpq had the result before the mode was
 * set. Rows of features the read did not name are skipped. */
static enum ldr_rc take_rows(const PGresult *r, struct cmd *cmd, struct ldr_collector *c,
                             struct ldr_err *err) {
  enum ldr_rc rc = LDR_OK;
  for (int i = 0; rc == LDR_OK && i < PQntuples(r); i++) {
    cmd->rows++;
    const char *name = PQgetvalue(r, i, 1);
    size_t name_len = (size_t)PQgetlength(r, i, 1);
    if (cmd->want.n && !ldr_wanted_has(&cmd->want, name, name_len)) continue;
    struct ldr_ts ts;
    int has_ts = !PQgetisnull(r, i, 3) && PQgetlength(r, i, 3) == 8;
    if (has_ts) ts = from_pg_micros((int64_t)get_be64((const uint8_t *)PQgetvalue(r, i, 3)));
    rc = ldr_collect_row(c, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), name, name_len,
                         PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2), has_ts ? &ts : NULL,
                         err);
  }
  return rc;
}

/*
 * Collects the results of a pipeline sent and synced, command by command, up to
 * its Sync. The first error is kept; the commands after it were skipped by
 * the server (PGRES_PIPELINE_ABORTED). Prepared statements that made it are
 * cached; the statement timeout is remembered once it took.
 */
static enum ldr_rc collect(struct ldr_backend *b, struct pg_conn *s, struct pipeline *p,
                           struct read_sink *sink, const char *what, struct ldr_err *err) {
  int64_t until = ldr_pg_command_until(b);
  enum ldr_rc rc = LDR_OK;
  int failed = 0, in_transaction_error = 0;
  for (size_t i = 0; i < p->n && s->conn != NULL; i++) {
    struct cmd *c = &p->cmds[i];
    /* Rows one at a time, as they arrive: set before the command's first result. */
    if (c->kind == CMD_READ) PQsetSingleRowMode(s->conn);
    int ok = 0;
    for (;;) {
      PGresult *r = ldr_pg_next_result(b, s, until, what, &failed, err);
      if (failed) {
        rc = err->rc;
        break;
      }
      if (r == NULL) break;
      ExecStatusType st = PQresultStatus(r);
      if ((st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) && c->kind == CMD_READ &&
          rc == LDR_OK && PQntuples(r) > 0) {
        rc = take_rows(r, c, &sink->cols[c->read], err);
        ok = st == PGRES_TUPLES_OK;
        if (rc != LDR_OK) {
          /* Past the cap, or no memory: the rest of the rows are not read;
           * the connection is dropped rather than drained. */
          PQclear(r);
          ldr_pg_drop_connection(s);
          break;
        }
      } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        ok = 1;
      } else if (st == PGRES_FATAL_ERROR) {
        in_transaction_error = 1;
        if (rc == LDR_OK) rc = ldr_pg_result_error(b, s, r, what, c->table, err);
      }
      PQclear(r);
    }
    if (c->kind == CMD_PREPARE) {
      int nomem = 0;
      void *old = ok && s->conn ? ldr_stmt_put(&s->stmts, c->key, c->name, &nomem) : NULL;
      if (!ok || s->conn == NULL || nomem) free(c->name);
      c->name = NULL;
      if (old != NULL) s->stale[s->n_stale++] = old; /* deallocated by the next pipeline */
    } else if (c->kind == CMD_READ && c->by_key) {
      /* Also from a read that failed part-way (past its deadline or the reply's cap):
       * the rows it took are fewer than the table holds, never more. */
      ldr_width_learn(&impl(b)->widths, c->table, c->rows, sink->cols[c->read].nuniq);
    } else if (c->kind == CMD_TIMEOUT && ok) {
      s->timeout_ms = p->timeout;
      if (p->generic) s->generic = 1;
    }
    if (failed) break;
  }
  for (size_t i = 0; i < p->n; i++) /* names of preparations never collected */
    if (p->cmds[i].kind == CMD_PREPARE) free(p->cmds[i].name);
  if (s->conn == NULL)
    return rc != LDR_OK ? rc : ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the connection", what);
  /* The Sync's own result, then the pipeline is over. */
  PGresult *r = ldr_pg_next_result(b, s, until, what, &failed, err);
  if (failed) return err->rc;
  if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
    PQclear(r);
    ldr_pg_drop_connection(s);
    return rc != LDR_OK
               ? rc
               : ldr_err_set(err, LDR_INTERNAL, "%s: postgres: the pipeline lost its sync", what);
  }
  PQclear(r);
  /* A SET in a transaction that failed was rolled back with it. */
  if (in_transaction_error) {
    s->timeout_ms = -1;
    s->generic = 0;
  }
  if (!PQexitPipelineMode(s->conn)) {
    ldr_pg_drop_connection(s);
    if (rc == LDR_OK)
      rc = ldr_err_set(err, LDR_INTERNAL, "%s: postgres: cannot leave pipeline mode", what);
  }
  return rc;
}

/*
 * Starts a pipeline for `views` statements: pipeline mode, the statements the
 * cache evicted deallocated, and, when it changes, the statement timeout.
 */
static enum ldr_rc begin_pipeline(struct ldr_backend *b, struct pg_conn *s, struct pipeline *p,
                                  size_t views, struct ldr_arena *arena, const char *what,
                                  struct ldr_err *err) {
  p->n = 0;
  p->prepared = 0;
  p->generic = 0;
  p->cap = 1 + s->n_stale + 2 * views;
  p->cmds = ldr_arena_calloc(arena, p->cap, sizeof *p->cmds);
  if (p->cmds == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "%s: the request is larger than a call may hold", what);
  if (!PQenterPipelineMode(s->conn)) return ldr_pg_result_error(b, s, NULL, what, NULL, err);
  while (s->n_stale > 0) {
    char sql[80], *name = s->stale[--s->n_stale]; /* out of the list before it is freed */
    snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
    free(name);
    if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
      return ldr_pg_result_error(b, s, NULL, what, NULL, err);
    p->cmds[p->n++] = (struct cmd){.kind = CMD_DEALLOCATE};
  }
  return queue_timeout(b, s, p, err);
}

/* After a failure while queueing: the pipeline is abandoned with the connection. */
static enum ldr_rc abandon(struct pg_conn *c, struct pipeline *p, enum ldr_rc rc) {
  for (size_t i = 0; i < p->n; i++)
    if (p->cmds[i].kind == CMD_PREPARE) free(p->cmds[i].name);
  ldr_pg_drop_connection(c);
  return rc;
}

/* ---- reads --------------------------------------------------------------- */

struct read_arg {
  struct ldr_read *reads;
  size_t n;
  struct ldr_collector *cols;
  struct ldr_wanted *wants; /* per read: its named features (ldr_wanted), set once */
  struct ldr_arena *arena;
};

/* Queues the execution of one read: its distinct keys (and, where its table
 * is wide enough, features: ldr_width_names) as binary arrays. */
static enum ldr_rc queue_read(struct ldr_backend *b, struct pg_conn *pc, struct pipeline *p,
                              struct read_arg *a, size_t i, struct ldr_err *err) {
  struct ldr_read *r = &a->reads[i];
  struct ldr_collector *c = &a->cols[i];
  struct cmd cmd = {.kind = CMD_READ, .table = r->table, .read = i, .by_key = 1};
  size_t nf = 0;
  if (ldr_width_names(&impl(b)->widths, r->table, r->n_features)) {
    nf = r->n_features;
    cmd.by_key = 0;
  }
  /* Kept in C also after ANY($2): names match byte for byte whatever the column's collation. */
  cmd.want = a->wants[i];
  struct stmt_ref st;
  enum ldr_rc rc =
      statement(b, pc, p, nf ? ST_READ_SOME : ST_READ_ALL, r->table, a->arena, &st, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, fbytes = 0;
  for (size_t k = 0; k < c->nuniq; k++) kbytes += c->uniq[k].len;
  for (size_t k = 0; k < nf; k++) fbytes += strlen(r->features[k]);
  struct pg_array keys, feats;
  if (array_begin(&keys, a->arena, OID_BYTEA, c->nuniq, kbytes) != 0 ||
      array_begin(&feats, a->arena, OID_TEXT, nf, fbytes) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  for (size_t k = 0; k < c->nuniq; k++) array_put(&keys, c->uniq[k].bytes, c->uniq[k].len);
  for (size_t k = 0; k < nf; k++) array_put(&feats, r->features[k], strlen(r->features[k]));
  const char *values[2] = {(const char *)keys.buf, (const char *)feats.buf};
  int lengths[2] = {array_end(&keys), array_end(&feats)};
  if (!send_statement(pc, &st, values, lengths))
    return ldr_pg_result_error(b, pc, NULL, "read", r->table, err);
  /* The first command's mode is set now: libpq may read its result before collect() runs. */
  if (p->n == 0) PQsetSingleRowMode(pc->conn);
  p->cmds[p->n++] = cmd;
  return LDR_OK;
}

static enum ldr_rc op_read(struct ldr_backend *b, struct ldr_sql_conn *sc, void *varg,
                           struct ldr_err *err) {
  struct read_arg *a = varg;
  struct pg_conn *c = pgc(sc);
  struct pipeline pl, *p = &pl;
  for (size_t i = 0; i < a->n; i++) ldr_collect_reset(&a->cols[i]);
  enum ldr_rc rc = begin_pipeline(b, c, p, a->n, a->arena, "read", err);
  for (size_t i = 0; rc == LDR_OK && i < a->n; i++) rc = queue_read(b, c, p, a, i, err);
  if (rc == LDR_OK) rc = sync_pipeline(b, c, "read", err);
  if (rc != LDR_OK) return abandon(c, p, rc);
  struct read_sink sink = {a->reads, a->cols};
  return collect(b, c, p, &sink, "read", err);
}

/* ---- writes -------------------------------------------------------------- */

struct write_arg {
  const struct ldr_write *writes;
  size_t n;
  struct ldr_flat **flat; /* per write: its (row, feature) pairs, last occurrence kept */
  size_t *nflat;
  struct ldr_arena *arena;
};

static enum ldr_rc queue_write(struct ldr_backend *b, struct pg_conn *pc, struct pipeline *p,
                               struct write_arg *a, size_t w, struct ldr_err *err) {
  const char *table = a->writes[w].table;
  const struct ldr_flat *flat = a->flat[w];
  size_t n = a->nflat[w];
  struct stmt_ref st;
  enum ldr_rc rc = statement(b, pc, p, ST_WRITE, table, a->arena, &st, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, nbytes = 0, vbytes = 0, tbytes = 0;
  for (size_t i = 0; i < n; i++) {
    kbytes += flat[i].row->key.len;
    nbytes += strlen(flat[i].feature->name);
    vbytes += flat[i].feature->len;
    /* value_text is at most 32 bytes for numbers, or the string itself */
    const Feast__Types__Value *v = flat[i].feature->value;
    tbytes += v && v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL ? strlen(v->string_val) : 32;
  }
  struct pg_array keys, names, values, texts, events, created;
  if (array_begin(&keys, a->arena, OID_BYTEA, n, kbytes) != 0 ||
      array_begin(&names, a->arena, OID_TEXT, n, nbytes) != 0 ||
      array_begin(&values, a->arena, OID_BYTEA, n, vbytes) != 0 ||
      array_begin(&texts, a->arena, OID_TEXT, n, tbytes) != 0 ||
      array_begin(&events, a->arena, OID_TIMESTAMPTZ, n, 8 * n) != 0 ||
      array_begin(&created, a->arena, OID_TIMESTAMPTZ, n, 8 * n) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  for (size_t i = 0; i < n; i++) {
    const struct ldr_write_row *row = flat[i].row;
    const struct ldr_write_feature *f = flat[i].feature;
    char buf[32];
    const char *text;
    size_t tlen;
    uint8_t ts[8];
    array_put(&keys, row->key.bytes, row->key.len);
    array_put(&names, f->name, strlen(f->name));
    array_put(&values, f->bytes, f->len);
    if (ldr_value_text(f->value, buf, &text, &tlen))
      array_put(&texts, text, tlen);
    else
      array_null(&texts);
    put_be64(ts, (uint64_t)to_pg_micros(row->event_ts));
    array_put(&events, ts, 8);
    if (row->has_created) {
      put_be64(ts, (uint64_t)to_pg_micros(row->created_ts));
      array_put(&created, ts, 8);
    } else {
      array_null(&created);
    }
  }
  struct pg_array *arrays[6] = {&keys, &names, &values, &texts, &events, &created};
  const char *params[6];
  int lengths[6];
  for (int i = 0; i < 6; i++) {
    lengths[i] = array_end(arrays[i]);
    params[i] = (const char *)arrays[i]->buf;
  }
  if (!send_statement(pc, &st, params, lengths))
    return ldr_pg_result_error(b, pc, NULL, "write", table, err);
  p->cmds[p->n++] = (struct cmd){.kind = CMD_WRITE, .table = table};
  return LDR_OK;
}

static enum ldr_rc op_write(struct ldr_backend *b, struct ldr_sql_conn *sc, void *varg,
                            struct ldr_err *err) {
  struct write_arg *a = varg;
  struct pg_conn *c = pgc(sc);
  struct pipeline pl, *p = &pl;
  c->unreplicated = 0;
  enum ldr_rc rc = begin_pipeline(b, c, p, a->n, a->arena, "write", err);
  for (size_t w = 0; rc == LDR_OK && w < a->n; w++) rc = queue_write(b, c, p, a, w, err);
  if (rc == LDR_OK) rc = sync_pipeline(b, c, "write", err);
  if (rc != LDR_OK) return abandon(c, p, rc);
  struct read_sink none = {NULL, NULL};
  rc = collect(b, c, p, &none, "write", err);
  /* Committed on the primary, but a synchronous standby had not confirmed it
   * when the deadline came: not acknowledged, since a failover may lose it.
   * Repeating the write is safe (an upsert). */
  if (rc == LDR_OK && c->unreplicated)
    rc = ldr_err_set(err, LDR_DEADLINE,
                     "write: committed on the primary, but no synchronous standby had confirmed it "
                     "by the call's deadline");
  return rc;
}

enum ldr_rc ldr_pg_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                        struct ldr_arena *arena, struct ldr_err *err) {
  struct ldr_collector *cols = ldr_arena_calloc(arena, n + 1, sizeof *cols);
  struct ldr_wanted *wants = ldr_arena_calloc(arena, n + 1, sizeof *wants);
  if (cols == NULL || wants == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  size_t budget = ldr_read_budget(b);
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < n; i++) {
    rc = ldr_read_features_check(&reads[i], err);
    if (rc == LDR_OK)
      rc = ldr_wanted_init(&wants[i], reads[i].features, reads[i].n_features, arena, err);
    if (rc == LDR_OK)
      rc = ldr_collect_begin(&cols[i], arena, reads[i].keys, reads[i].n_keys, &budget, err);
  }
  struct read_arg a = {reads, n, cols, wants, arena};
  if (rc == LDR_OK) rc = ldr_sql_run(b, &ldr_pg_driver, &impl(b)->rd->sql, op_read, &a, err);
  for (size_t i = 0; rc == LDR_OK && i < n; i++) rc = ldr_collect_end(&cols[i], reads[i].out, err);
  return rc;
}

enum ldr_rc ldr_pg_write(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                         struct ldr_arena *arena, struct ldr_err *err) {
  struct write_arg a = {writes, n, ldr_arena_calloc(arena, n + 1, sizeof *a.flat),
                        ldr_arena_calloc(arena, n + 1, sizeof *a.nflat), arena};
  if (a.flat == NULL || a.nflat == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  /* One statement may not update a row twice: keep the last of each (key, feature). */
  enum ldr_rc rc = LDR_OK;
  for (size_t w = 0; rc == LDR_OK && w < n; w++)
    rc = ldr_flatten_last_wins(writes[w].rows, writes[w].n_rows, arena, &a.flat[w], &a.nflat[w],
                               err);
  if (rc == LDR_OK) rc = ldr_sql_run(b, &ldr_pg_driver, &impl(b)->wr->sql, op_write, &a, err);
  return rc;
}
