/*
 * The backend interface: one const ops table per store, one instance per
 * worker thread. Nothing here knows about gRPC.
 */
#ifndef LDR_BACKEND_H
#define LDR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/pyfloat.h"
#include "common/rc.h"
#include "config/config.h"
#include "feast/types/EntityKey.pb-c.h"
#include "feast/types/Value.pb-c.h"

/* Longest table name: "<project>_<view>" plus "_ek" must fit PostgreSQL's 63. */
#define LDR_TABLE_NAME_MAX 60

/* A timestamp as google.protobuf.Timestamp holds it. */
struct ldr_ts {
  int64_t s;
  int32_t ns;
};

/* The seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a
 * written timestamp must be in (DESIGN §9). */
#define LDR_TS_MIN_SECONDS (-62135596800LL)
#define LDR_TS_MAX_SECONDS 253402300799LL

/* A serialized entity key (the storage key). */
struct ldr_key {
  const uint8_t *bytes;
  size_t len;
};

struct ldr_write_feature {
  const char *name;                 /* NUL-free UTF-8 */
  const Feast__Types__Value *value; /* decoded, for value_text */
  const uint8_t *bytes;             /* the Value's wire bytes, stored as they are */
  size_t len;
};

struct ldr_write_row {
  struct ldr_key key;
  const struct ldr_write_feature *features;
  size_t n_features;
  struct ldr_ts event_ts;
  int has_created;
  struct ldr_ts created_ts;
};

struct ldr_read_feature {
  const char *name; /* NUL-terminated copy in the call's arena */
  size_t name_len;
  const uint8_t *value; /* the stored Value wire bytes, in the arena */
  size_t value_len;
};

struct ldr_read_row {
  int found;
  int has_event_ts;
  struct ldr_ts event_ts; /* the latest among the returned features */
  size_t n_features;
  struct ldr_read_feature *features;
};

/* The most features one read of a view may name, on every store: SQLite's
 * limit on a statement's placeholders (RESOURCE_EXHAUSTED past it). */
#define LDR_READ_FEATURES_MAX 8192

/* One view's part of a read: its keys, and where the results go. */
struct ldr_read {
  const char *table;
  const struct ldr_key *keys;
  size_t n_keys;
  const char *const *features; /* n_features == 0: every stored feature */
  size_t n_features;
  struct ldr_read_row *out; /* n_keys results, in request order */
};

/* How a frame's write names what its rows came from, for messages about a
 * row's content (a push's df: "df.event_timestamp[3]"). */
struct ldr_write_names {
  const char *frame;           /* "df", "features" */
  const char *event, *created; /* the timestamp columns */
  const char *keys;            /* the join key columns, ", " between them */
  const char *const *features; /* the column of each feature */
};

/* One view's part of a write. */
struct ldr_write {
  const char *table;
  const struct ldr_write_row *rows;
  size_t n_rows;
  const struct ldr_write_names *names; /* NULL: OnlineWriteBatch's rows[i] */
};

enum ldr_write_part { LDR_PART_KEY, LDR_PART_EVENT, LDR_PART_CREATED, LDR_PART_FEATURE };

/* Where row `row`'s part (feature `feature` of it) came from, for a message:
 * "rows[3].event_ts", "rows[3].features[1]", or by w->names "df.ts[3]". */
const char *ldr_write_where(const struct ldr_write *w, size_t row, enum ldr_write_part part,
                            size_t feature, char *buf, size_t cap);

/* A database URL as SQLAlchemy writes it (REGISTRY.md §2), decoded by
 * ldr_url_parse: dialect[+driver]://[user[:password]@]host[:port]/database[?k=v&...]. */
struct ldr_url {
  char *scheme;  /* as given, lowercase: "postgresql+psycopg" */
  char *dialect; /* the part before '+': "postgresql", "mysql", "sqlite" */
  char *user, *password, *host, *database; /* percent-decoded; NULL when absent */
  int port;                                /* 0: the default */
  size_t n_query;
  char **query_keys, **query_values; /* percent-decoded */
  char *path; /* sqlite: the file, relative (to the yaml's folder) or absolute */
};

/* Parses `s` into `out` (free it with ldr_url_free, also after a failure).
 * LDR_INVALID with a message that never repeats the URL. */
enum ldr_rc ldr_url_parse(const char *s, struct ldr_url *out, struct ldr_err *err);
void ldr_url_free(struct ldr_url *u);

/* `s` with its password replaced by "***", for the log. */
void ldr_url_redacted(const char *s, char *buf, size_t cap);

/* One column of a row a reader returns: text as text, binary as it is. */
struct ldr_row_cell {
  const void *data;
  size_t len;
  int null;
};

/* Called for each row of a query; an error stops the query. */
typedef enum ldr_rc (*ldr_row_fn)(void *arg, const struct ldr_row_cell *cells, size_t n,
                                  struct ldr_err *err);

/*
 * Reading another database, read-only: Feast's SQL registry. registry/ uses
 * this, never a database driver. Every wait is bounded by the timeout given
 * to open. Messages may name the server (they go to the log), never the password.
 */
struct ldr_reader;
struct ldr_reader_ops {
  const char *const *dialects; /* the URL dialects it reads, NULL-terminated */
  /* Connects, or opens a file read-only (never creating it); `dir` anchors a
   * relative SQLite path. *out is freed with close, also after a failure. */
  enum ldr_rc (*open)(const struct ldr_url *url, const char *dir, int timeout_s,
                      struct ldr_reader **out, struct ldr_err *err);
  /* One read-only snapshot: the queries until end() see one state. */
  enum ldr_rc (*begin)(struct ldr_reader *r, struct ldr_err *err);
  /* Runs `sql` (no parameters: callers put only validated names in it),
   * calling fn per row. LDR_NOT_FOUND when a table it names does not exist,
   * LDR_UNAVAILABLE when the connection is lost or times out. */
  enum ldr_rc (*query)(struct ldr_reader *r, const char *sql, ldr_row_fn fn, void *arg,
                       struct ldr_err *err);
  void (*end)(struct ldr_reader *r);
  void (*close)(struct ldr_reader *r); /* NULL is harmless */
  /* SQL listing the tables of the connection's default schema (one column). */
  const char *tables_sql;
};

/* The reader of a URL dialect among the stores built in, or NULL. */
const struct ldr_reader_ops *ldr_backend_reader(const char *dialect);

struct ldr_backend;

/* What one of a store's connections serves. */
enum ldr_conn_role {
  LDR_CONN_ALL,   /* reads and writes: the only connection */
  LDR_CONN_READ,  /* reads (read_from, read_hosts) */
  LDR_CONN_WRITE, /* writes, Update and Teardown */
};
#define LDR_CONNS_MAX 2

/* Where one connection of an instance stands, for metrics. */
struct ldr_conn_state {
  enum ldr_conn_role role;
  int host; /* the index of its server (ldr_backend_host_label); -1 while not connected */
};

/*
 * What each store implements. Every function returns LDR_OK or the code it
 * also records in `err`, whose message names what failed. The core allocates
 * `impl_size` zeroed bytes for the instance state before `open`, and calls
 * `close` exactly once, also after a failed `open`.
 */
struct ldr_backend_ops {
  const struct ldr_store_schema *schema; /* its online_store keys; schema->name is its type */
  size_t impl_size;
  enum ldr_rc (*open)(struct ldr_backend *b, struct ldr_err *err);
  void (*close)(struct ldr_backend *b);
  /* Creates the tables in `keep` (and their index) when missing; drops those in `drop`. */
  enum ldr_rc (*update)(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                        const char *const *drop, size_t n_drop, struct ldr_err *err);
  /* Drops the tables; missing ones are fine. Never deletes the database itself. */
  enum ldr_rc (*teardown)(struct ldr_backend *b, const char *const *tables, size_t n,
                          struct ldr_err *err);
  /* Upserts every feature of every row of every write in one transaction:
   * all or nothing; a (key, feature) repeated in a write ends with its last
   * value. LDR_NOT_FOUND when a table does not exist (also for a write with
   * no rows). Scratch memory comes from `arena`. */
  enum ldr_rc (*write)(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                       struct ldr_arena *arena, struct ldr_err *err);
  /* Fills the `out` of every read, copying results into `arena`, with one
   * round trip to a database server whatever `n` and the number of keys.
   * LDR_NOT_FOUND when a table does not exist (also for a read of no keys);
   * LDR_EXHAUSTED as soon as the names and values read pass b->result_cap. */
  enum ldr_rc (*read)(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                      struct ldr_arena *arena, struct ldr_err *err);
  /* Checks the store answers: OK when any of the connections the served calls
   * need does (reads while the primary is away are still served). */
  enum ldr_rc (*ping)(struct ldr_backend *b, struct ldr_err *err);
  /* Nonzero while the connection to the store is open (for metrics). */
  int (*connected)(struct ldr_backend *b);
  /* The instance's connections (NULL for a store without servers): fills
   * out[0..n) and returns n, at most LDR_CONNS_MAX. */
  size_t (*conns)(struct ldr_backend *b, struct ldr_conn_state *out);
  /* Writes the label of server `i` of `cfg` ("host:port", as configured) into
   * buf and returns 1; 0 past the last one. NULL for a store without servers. */
  int (*host_label)(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap);
  /* How this store's database is read as a registry; NULL: it is not. */
  const struct ldr_reader_ops *reader;
};

/* One open store connection. Used by one thread at a time. */
struct ldr_backend {
  const struct ldr_backend_ops *ops;
  const struct ldr_store_config *cfg; /* borrowed; outlives the backend */
  int key_version;                    /* the version keys are serialized with */
  int64_t deadline_ns;                /* CLOCK_MONOTONIC; 0 = none. Set per call. */
  size_t result_cap;                  /* most bytes of names and values a read returns; 0 = none */
  void *impl;
};

/* The config schemas of the stores built in, NULL-terminated, for ldr_config_load. */
const struct ldr_store_schema *const *ldr_backend_schemas(void);

/*
 * Opens the store `cfg` names. Returns LDR_OK with *out set (free it with
 * ldr_backend_free), or an error with *out NULL. `cfg` must outlive it.
 */
enum ldr_rc ldr_backend_new(const struct ldr_store_config *cfg, struct ldr_backend **out,
                            struct ldr_err *err);

/* Closes and frees `b`; NULL is fine. */
void ldr_backend_free(struct ldr_backend *b);

/* ops->conns, or none: the connections of `b` and the servers they are on. */
size_t ldr_backend_conns(struct ldr_backend *b, struct ldr_conn_state *out);

/* ops->host_label of the store `cfg` names: 1 with the label of server `i`
 * in buf, 0 past the last one (or for a store without servers). */
int ldr_backend_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap);

/* "all", "read" or "write". */
const char *ldr_conn_role_name(enum ldr_conn_role role);

/* Returns nonzero once the call's deadline (b->deadline_ns) has passed, or
 * once ldr_backend_abort_waits was called. */
int ldr_backend_past_deadline(const struct ldr_backend *b);

/* Makes every backend in the process stop waiting for its database within
 * LDR_ABORT_CHECK_MS, as if each call's deadline had passed: the server's last
 * step when it cancels the calls still in flight. Cannot be undone. */
void ldr_backend_abort_waits(void);
int ldr_backend_aborting(void);
#define LDR_ABORT_CHECK_MS 100

/* The longest a health probe waits for a ping of the store (gRPC readiness
 * and HTTP /health): a database that stopped answering makes probes fail
 * fast, well within a probe's usual 1 s, instead of holding their threads. */
#define LDR_PING_LIMIT_NS 250000000LL

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ldr_now_ns(void);

/* Nonzero when SIGTERM or SIGINT waits for the process: the server blocks
 * them in every thread and takes them with sigwait once it serves, so before
 * that (waiting for the database at start) a pending one means "stop". */
int ldr_stop_signal_pending(void);

/*
 * Checks a feature view name and builds "<project>_<view>" into `table`
 * (LDR_TABLE_NAME_MAX + 1 bytes). LDR_INVALID, naming `field`, when the view
 * is empty, not [A-Za-z0-9_], or the table name would pass the limit.
 */
enum ldr_rc ldr_table_name(const char *project, const char *view, const char *field, char *table,
                           struct ldr_err *err);

/* The same for version `version` of the view: "<project>_<view>_v<N>" when
 * N > 0 (Feast's compute_table_id with versioning on), else as above. */
enum ldr_rc ldr_table_name_version(const char *project, const char *view, int version,
                                   const char *field, char *table, struct ldr_err *err);

/*
 * Feast's serialize_entity_key: the exact bytes for versions 1, 2 and 3
 * (0 as 1, above 3 as 3). Fails with LDR_INVALID for a repeated join key, a
 * join_keys/entity_values count mismatch, a value type Feast cannot serialize,
 * or (versions 0 and 1) an int64 outside int32. Zero join keys serialize as
 * Feast does; callers that need a key refuse them first. The bytes live in `arena`.
 */
enum ldr_rc ldr_entity_key_serialize(const Feast__Types__EntityKey *ek, int version,
                                     struct ldr_arena *arena, struct ldr_key *out,
                                     struct ldr_err *err);

/*
 * Feast's deserialize_entity_key (always the version 3 layout). The key and
 * its strings live in `arena`. LDR_INVALID for truncated or unknown input.
 */
enum ldr_rc ldr_entity_key_deserialize(const uint8_t *p, size_t n, struct ldr_arena *arena,
                                       Feast__Types__EntityKey **out, struct ldr_err *err);

/*
 * The value_text column: Python's str() of the value for string, int32,
 * int64, double, float (widened to double) and bool values. Returns 1 and
 * points *text at the text (in `buf`, or the string itself) with its length,
 * or 0 when the column is NULL for this value. `buf` holds at least 32 bytes.
 */
int ldr_value_text(const Feast__Types__Value *v, char *buf, const char **text, size_t *len);

#endif
