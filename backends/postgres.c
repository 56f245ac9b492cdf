/*
 * Feast's PostgreSQL online store (postgres.py) on libpq: the same schema,
 * tables and upsert. Every request is one round trip: libpq's pipeline mode
 * sends the statement timeout when it changes, the preparation of statements
 * not cached yet, one statement per feature view (a read with the keys as one
 * binary bytea[] parameter; a write as INSERT ... SELECT FROM unnest(arrays)
 * ... ON CONFLICT), and one Sync; the statements up to the Sync are one
 * implicit transaction, so a write to several views is all or nothing. Rows
 * are read one at a time (single-row mode) and counted against the call's
 * result cap as they arrive. Every table, index and schema name is qualified
 * with db_schema, never left to search_path.
 *
 * Every command is sent asynchronously and waited for with poll(), so a call
 * never blocks past its deadline even when the server stalls; the deadline
 * also becomes the session's statement_timeout, so the server stops the work.
 *
 * Scale-out (issue 15): `host` and `port` may list several servers (libpq's
 * multi-host form). Writes, Update and Teardown go to a connection opened
 * with target_session_attrs=read-write, which finds a promoted standby by
 * itself; with larder.read_from standby or any, reads have a connection of
 * their own (prefer-standby, any). larder.prepared_statements: false keeps
 * no state in the session, for pgbouncer in transaction pooling.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres_int.h"
#include "common/log.h"

/* ---- DDL ----------------------------------------------------------------- */

static int quote_identifier(char *buf, size_t cap, const char *name);

/* The schema the tables live in: db_schema, or the user's name when it is null (as Feast). */
static const char *schema_of(struct ldr_backend *b) {
  return options(b)->db_schema ? options(b)->db_schema : options(b)->user;
}

/* Feast creates the schema only when information_schema says it is missing:
 * CREATE SCHEMA needs a privilege that users of an existing schema may lack. */
static enum ldr_rc ensure_schema(struct ldr_backend *b, struct pg_conn *c, struct ldr_err *err) {
  const char *params[1] = {schema_of(b)};
  PGresult *res = NULL;
  enum ldr_rc rc =
      ldr_pg_query(b, c, "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", 1,
                   params, PGRES_TUPLES_OK, "update", &res, err);
  int exists = res != NULL && PQntuples(res) > 0;
  PQclear(res);
  if (rc != LDR_OK || exists) return rc;
  char user[200];
  if (quote_identifier(user, sizeof user, options(b)->user) != 0)
    return ldr_err_set(err, LDR_INVALID, "online_store.user: too long");
  struct ldr_sb sql = {0};
  ldr_sb_printf(&sql, "CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s", impl(b)->schema, user);
  rc = ldr_sb_str(&sql) ? ldr_pg_simple(b, c, ldr_sb_str(&sql), PGRES_COMMAND_OK,
                                        "update: create schema", NULL, err)
                        : ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  ldr_sb_free(&sql);
  return rc;
}

struct ddl_arg {
  const char *const *keep, *const *drop;
  size_t n_keep, n_drop;
};

/*
 * A table to create must not take the name of another table's index, nor its
 * index the name of a table: PostgreSQL keeps both in one namespace. What
 * exists is asked of pg_class in the schema.
 */
static enum ldr_rc check_clash(struct ldr_backend *b, struct pg_conn *c, const struct ddl_arg *a,
                               struct ldr_err *err) {
  /* Table names are [A-Za-z0-9_] (ldr_table_name): an array literal needs no escaping. */
  struct ldr_sb names = {0};
  ldr_sb_puts(&names, "{");
  for (size_t i = 0; i < a->n_keep; i++)
    ldr_sb_printf(&names, "%s%s,%s_ek", i ? "," : "", a->keep[i], a->keep[i]);
  ldr_sb_puts(&names, "}");
  const char *params[2] = {schema_of(b), ldr_sb_str(&names)};
  PGresult *res = NULL;
  enum ldr_rc rc = params[1]
                       ? ldr_pg_query(b, c,
                                      "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN "
                                      "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE n.nspname = $1 AND c.relname = ANY($2::text[])",
                                      2, params, PGRES_TUPLES_OK, "update", &res, err)
                       : ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  ldr_sb_free(&names);
  if (rc != LDR_OK) return rc;
  for (int r = 0; rc == LDR_OK && res != NULL && r < PQntuples(res); r++) {
    const char *name = PQgetvalue(res, r, 0), kind = PQgetvalue(res, r, 1)[0];
    for (size_t i = 0; i < a->n_keep; i++) {
      size_t len = strlen(a->keep[i]);
      /* keep[i]'s own index is fine; a table (or other relation) named like it is not */
      if (kind != 'i' && !strncmp(name, a->keep[i], len) && !strcmp(name + len, "_ek"))
        rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                         "tables_to_keep[%zu]: the index of table %s would be %s, which is a table",
                         i, a->keep[i], name);
      else if (kind == 'i' && !strcmp(name, a->keep[i]))
        rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                         "tables_to_keep[%zu]: %s is the index of another table", i, a->keep[i]);
    }
  }
  PQclear(res);
  return rc;
}

static enum ldr_rc op_update(struct ldr_backend *b, struct ldr_sql_conn *conn, void *varg,
                             struct ldr_err *err) {
  struct ddl_arg *a = varg;
  struct pg_conn *c = pgc(conn);
  const char *sc = impl(b)->schema;
  /* Everything here runs under this call's time limit, not the session's
   * statement_timeout, which is the last read's and may have had a few
   * milliseconds left. With named statements the session's is set (and
   * remembered, as a read's pipeline does); without session state (pgbouncer)
   * the session keeps the server's, and the DDL below sets its own. */
  long limit = ldr_sql_timeout_ms(b->deadline_ns);
  if (limit < 0) return ldr_err_set(err, LDR_DEADLINE, "update: the call's deadline passed");
  enum ldr_rc rc = LDR_OK;
  if (impl(b)->named && c->timeout_ms != limit) {
    char set[64];
    snprintf(set, sizeof set, "SET statement_timeout = %ld", limit);
    c->timeout_ms = -1; /* unknown until it took */
    rc = ldr_pg_simple(b, c, set, PGRES_COMMAND_OK, "update", NULL, err);
    if (rc != LDR_OK) return rc;
    c->timeout_ms = limit;
  }
  if (a->n_keep) rc = ensure_schema(b, c, err);
  if (rc == LDR_OK && a->n_keep) rc = check_clash(b, c, a, err);
  if (rc != LDR_OK) return rc;
  /* One simple query of several statements runs as one transaction. */
  struct ldr_sb sql = {0};
  if (!impl(b)->named) ldr_sb_printf(&sql, "SET LOCAL statement_timeout = %ld;\n", limit);
  for (size_t i = 0; i < a->n_keep; i++) {
    const char *t = a->keep[i];
    ldr_sb_printf(
        &sql,
        "CREATE TABLE IF NOT EXISTS %s.\"%s\"\n(\n    entity_key BYTEA,\n    feature_name TEXT,\n"
        "    value BYTEA,\n    value_text TEXT NULL,\n    vector_value BYTEA NULL,\n"
        "    event_ts TIMESTAMPTZ,\n    created_ts TIMESTAMPTZ,\n"
        "    PRIMARY KEY(entity_key, feature_name)\n);\n"
        "CREATE INDEX IF NOT EXISTS \"%s_ek\" ON %s.\"%s\" (entity_key);\n",
        sc, t, t, sc, t);
  }
  for (size_t i = 0; i < a->n_drop; i++)
    ldr_sb_printf(&sql, "DROP TABLE IF EXISTS %s.\"%s\"; DROP INDEX IF EXISTS %s.\"%s_ek\";\n", sc,
                  a->drop[i], sc, a->drop[i]);
  if (ldr_sb_str(&sql) == NULL)
    rc = ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  else if (a->n_keep + a->n_drop > 0)
    rc = ldr_pg_simple(b, c, ldr_sb_str(&sql), PGRES_COMMAND_OK, "update", NULL, err);
  ldr_sb_free(&sql);
  /* Statements of dropped tables are stale; the next use prepares them again.
   * A read connection of its own drops them when it next meets the missing
   * table (the server then says the cached plan is gone). */
  if (rc == LDR_OK && a->n_drop && impl(b)->named &&
      ldr_pg_simple(b, c, "DEALLOCATE ALL", PGRES_COMMAND_OK, "update", NULL, err) == LDR_OK) {
    ldr_stmt_clear(&c->stmts, free);
    ldr_pg_forget_stale(c); /* gone with the rest: deallocating them again would fail */
  }
  return rc;
}

static enum ldr_rc op_ping(struct ldr_backend *b, struct ldr_sql_conn *c, void *arg,
                           struct ldr_err *err) {
  (void)arg;
  return ldr_pg_simple(b, pgc(c), "SELECT 1", PGRES_TUPLES_OK, "ping", NULL, err);
}

/* ---- the operations, through the shared plumbing --------------------------- */

static enum ldr_rc pg_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                             const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct ddl_arg a = {keep, drop, n_keep, n_drop};
  return ldr_sql_run(b, &ldr_pg_driver, &impl(b)->wr->sql, op_update, &a, err);
}

static enum ldr_rc pg_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                               struct ldr_err *err) {
  return pg_update(b, NULL, 0, tables, n, err);
}

/* Readiness: the store answers when any connection the served calls need
 * does. Reads served from a standby while the primary is away keep the
 * replica in its load balancer; its writes meanwhile are UNAVAILABLE. */
static enum ldr_rc pg_ping(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  enum ldr_rc rc = ldr_sql_run(b, &ldr_pg_driver, &s->rd->sql, op_ping, NULL, err);
  if (s->wr != s->rd) {
    struct ldr_err e;
    ldr_err_clear(&e);
    if (ldr_sql_run(b, &ldr_pg_driver, &s->wr->sql, op_ping, NULL, &e) == LDR_OK) rc = LDR_OK;
  }
  return rc;
}

static size_t pg_conns(struct ldr_backend *b, struct ldr_conn_state *out) {
  struct pg_impl *s = impl(b);
  for (size_t i = 0; i < s->n_conns; i++)
    out[i] = (struct ldr_conn_state){s->conns[i].sql.role,
                                     s->conns[i].conn != NULL ? s->conns[i].sql.host : -1};
  return s->n_conns;
}

static void add_param(struct pg_impl *s, size_t *n, const char *k, const char *v) {
  if (v == NULL) return;
  s->kw[*n] = k;
  s->val[*n] = v;
  (*n)++;
}

/* `name` as a quoted SQL identifier ("" doubled inside). */
static int quote_identifier(char *buf, size_t cap, const char *name) {
  size_t o = 0;
  if (cap < 3) return -1;
  buf[o++] = '"';
  for (const char *p = name; *p; p++) {
    if (o + 3 >= cap) return -1;
    if (*p == '"') buf[o++] = '"';
    buf[o++] = *p;
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return 0;
}

static void init_conn(struct pg_conn *c, enum ldr_conn_role role, const char *target) {
  memset(c, 0, sizeof *c);
  ldr_sql_conn_init(&c->sql, role);
  c->target = target;
  c->timeout_ms = -1;
}

static enum ldr_rc pg_open(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *c = options(b);
  size_t n = 0;
  s->named = c->prepared_statements;
  if (quote_identifier(s->schema, sizeof s->schema, schema_of(b)) != 0)
    return ldr_err_set(err, LDR_INVALID, "online_store.user: too long to name a schema");
  s->host_at = c->host ? n : SIZE_MAX;
  add_param(s, &n, "host", c->host);
  s->port_at = c->port ? n : SIZE_MAX;
  add_param(s, &n, "port", c->port);
  char label[280];
  for (s->n_hosts = 0; ldr_pg_host_label(b->cfg, s->n_hosts, label, sizeof label);) s->n_hosts++;
  add_param(s, &n, "dbname", c->database);
  add_param(s, &n, "user", c->user);
  add_param(s, &n, "password", c->password);
  add_param(s, &n, "sslmode", c->sslmode);
  add_param(s, &n, "sslkey", c->sslkey_path);
  add_param(s, &n, "sslcert", c->sslcert_path);
  add_param(s, &n, "sslrootcert", c->sslrootcert_path);
  /* UTC for the session, so that timestamps in text never depend on the
   * server's time zone. Without session state (pgbouncer refuses startup
   * options it does not know) nothing needs it: timestamps travel in binary,
   * which is UTC by definition. No search_path: every name is qualified. */
  if (s->named) add_param(s, &n, "options", "-c TimeZone=UTC");
  add_param(s, &n, "application_name", "larder");
  add_param(s, &n, "client_encoding", "UTF8");
  add_param(s, &n, "keepalives", "1");
  if (c->keepalives_idle > 0) {
    snprintf(s->keepalives_idle, sizeof s->keepalives_idle, "%d", c->keepalives_idle);
    add_param(s, &n, "keepalives_idle", s->keepalives_idle);
  }
  s->target = n;
  add_param(s, &n, "target_session_attrs", "read-write"); /* each connection's own */
  s->kw[n] = s->val[n] = NULL;
  /*
   * Writes need the primary: read-write finds it among the hosts, also once a
   * standby has been promoted. Reads take it too unless read_from says
   * otherwise, and then have their own connection; a larder that serves no
   * writes (read_only) holds that one only.
   */
  int writes = !b->cfg->read_only;
  const char *rf = c->read_from ? c->read_from : "primary";
  const char *reads = !strcmp(rf, "standby") ? "prefer-standby"
                      : !strcmp(rf, "any")   ? "any"
                      : writes               ? "read-write"
                                             : "primary";
  if (writes && !strcmp(reads, "read-write")) {
    init_conn(&s->conns[0], LDR_CONN_ALL, reads);
    s->n_conns = 1;
  } else if (!writes) {
    init_conn(&s->conns[0], LDR_CONN_ALL, reads);
    s->n_conns = 1;
  } else {
    init_conn(&s->conns[0], LDR_CONN_READ, reads);
    init_conn(&s->conns[1], LDR_CONN_WRITE, "read-write");
    s->n_conns = 2;
  }
  s->rd = &s->conns[0];
  s->wr = &s->conns[s->n_conns - 1];
  struct ldr_sql_conn *conns[LDR_CONNS_MAX] = {&s->conns[0].sql, &s->conns[1].sql};
  return ldr_sql_open(b, &ldr_pg_driver, conns, s->n_conns, err);
}

static void pg_close(struct ldr_backend *b) {
  struct pg_impl *s = impl(b);
  for (size_t i = 0; i < s->n_conns; i++) ldr_pg_drop_connection(&s->conns[i]);
  ldr_stmt_clear(&s->widths, NULL);
}

#define PG_STRING(k, member, req) LDR_STRING_KEY(struct ldr_postgres_options, k, member, req)
static const char *const sslmodes[] = {"disable",   "allow",       "prefer", "require",
                                       "verify-ca", "verify-full", NULL};
static const char *const conn_types[] = {"singleton", NULL};
#define POOL_WHY "no connection pool: one connection per worker thread"
static const char *const read_froms[] = {"primary", "standby", "any", NULL};

static const struct ldr_config_field fields[] = {
    PG_STRING("host", host, 1),
    {.key = "port", .kind = LDR_FIELD_PORTS, .offset = offsetof(struct ldr_postgres_options, port)},
    PG_STRING("database", database, 1),
    {.key = "db_schema",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct ldr_postgres_options, db_schema),
     .null_clears = 1},
    PG_STRING("user", user, 1),
    PG_STRING("password", password, 1),
    {.key = "sslmode",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct ldr_postgres_options, sslmode),
     .choices = sslmodes,
     .why = "libpq's sslmodes"},
    PG_STRING("sslkey_path", sslkey_path, 0),
    PG_STRING("sslcert_path", sslcert_path, 0),
    PG_STRING("sslrootcert_path", sslrootcert_path, 0),
    LDR_INT_KEY(struct ldr_postgres_options, "keepalives_idle", keepalives_idle, 1, 86400),
    /* Feast's connection pool settings, at their defaults (DESIGN §5): larder
     * opens one connection per worker, so another value would not be done. */
    {.key = "min_conn",
     .kind = LDR_FIELD_INT_ONLY,
     .offset = LDR_NO_FIELD,
     .min = 1,
     .max = 1,
     .why = POOL_WHY},
    {.key = "max_conn",
     .kind = LDR_FIELD_INT_ONLY,
     .offset = LDR_NO_FIELD,
     .min = 10,
     .max = 10,
     .why = POOL_WHY},
    {.key = "conn_type",
     .kind = LDR_FIELD_STRING,
     .offset = LDR_NO_FIELD,
     .choices = conn_types,
     .why = POOL_WHY},
    LDR_VECTOR_OPTIONS,
};

/* larder's keys of this store (issue 15). */
static const struct ldr_config_field larder_fields[] = {
    {.key = "read_from",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct ldr_postgres_options, read_from),
     .choices = read_froms},
    {.key = "prepared_statements",
     .kind = LDR_FIELD_BOOL,
     .offset = offsetof(struct ldr_postgres_options, prepared_statements)},
};

static int defaults(void *opts) {
  struct ldr_postgres_options *o = opts;
  o->port = strdup("5432");
  o->db_schema = strdup("public");
  o->sslmode = strdup("require");
  o->read_from = strdup("primary");
  o->prepared_statements = 1;
  return o->port && o->db_schema && o->sslmode && o->read_from ? 0 : -1;
}

/* The number of items of a comma-separated list, or 0 when one is empty. */
static size_t list_items(const char *s) {
  size_t n = 1;
  for (const char *p = s; *p; p++) {
    if (*p != ',') continue;
    if (p == s || p[1] == ',' || p[1] == '\0') return 0;
    n++;
  }
  return *s ? n : 0;
}

static const char *check(const void *opts, char *buf, size_t cap) {
  const struct ldr_postgres_options *o = opts;
  /* Quoted in every statement, and at most PostgreSQL's identifier length. */
  if (o->db_schema != NULL && !ldr_config_identifier(o->db_schema, 63))
    return "online_store.db_schema: letters, digits and '_' only, at most 63 of them";
  size_t hosts = o->host ? list_items(o->host) : 1, ports = list_items(o->port);
  if (hosts == 0) return "online_store.host: a list of hosts separated by commas has an empty one";
  /* libpq's rule: one port for every host, or one per host. */
  if (ports != 1 && ports != hosts) {
    snprintf(buf, cap,
             "online_store.port: %zu ports for %zu hosts (give one port for all, or one per host)",
             ports, hosts);
    return buf;
  }
  return NULL;
}

const struct ldr_store_schema ldr_postgres_schema = {
    .name = "postgres",
    .size = sizeof(struct ldr_postgres_options),
    .fields = fields,
    .n_fields = sizeof fields / sizeof fields[0],
    .defaults = defaults,
    .check = check,
    .larder_fields = larder_fields,
    .n_larder_fields = sizeof larder_fields / sizeof larder_fields[0],
};

const struct ldr_backend_ops ldr_postgres_ops = {
    .schema = &ldr_postgres_schema,
    .impl_size = sizeof(struct pg_impl),
    .open = pg_open,
    .close = pg_close,
    .update = pg_update,
    .teardown = pg_teardown,
    .write = ldr_pg_write,
    .read = ldr_pg_read,
    .ping = pg_ping,
    .connected = ldr_pg_connected,
    .conns = pg_conns,
    .host_label = ldr_pg_host_label,
    .reader = &ldr_postgres_reader,
};
