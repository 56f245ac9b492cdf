/*
 * feature_store.yaml: Feast's file as Feast reads it, plus larder's own
 * `larder:` section. This module is plain data: it uses nothing else of ours.
 */
#ifndef LDR_CONFIG_H
#define LDR_CONFIG_H

#include <stddef.h>

/*
 * One key of a store's `online_store` mapping. A key fills a member of the
 * store's own options struct (at `offset`), or is one of Feast's options that
 * larder accepts only at its default (`why` says why), or is checked and then
 * ignored (offset LDR_NO_FIELD).
 */
enum ldr_field_kind {
  LDR_FIELD_STRING,     /* char *, malloc'd */
  LDR_FIELD_PATH,       /* char *, relative paths joined to the yaml file's folder */
  LDR_FIELD_INT,        /* int, in [min, max] */
  LDR_FIELD_BOOL,       /* int, 0 or 1 */
  LDR_FIELD_FALSE_ONLY, /* only false is accepted */
  LDR_FIELD_INT_ONLY,   /* Feast's integer setting larder does not implement: only its default,
                           `min`, is accepted (and null); with max < min, only null */
  LDR_FIELD_PORTS,      /* char *, malloc'd: a port, or ports separated by commas (libpq's
                           multi-host form), each in 1-65535; stored as "5432" or "5432,5433" */
  LDR_FIELD_ADDRESSES,  /* char **, malloc'd and NULL-terminated: a list of "host:port" */
};
#define LDR_NO_FIELD ((size_t)-1)

struct ldr_config_field {
  const char *key;
  enum ldr_field_kind kind;
  size_t offset;
  int required;
  long min, max;              /* LDR_FIELD_INT */
  const char *const *choices; /* strings: the allowed values, NULL-terminated; NULL = any */
  const char *why;            /* why a value outside `choices` (or true) is refused */
  int null_clears;            /* null sets the string to NULL instead of keeping the default */
};

/*
 * What a backend tells the loader about its configuration (each backend file
 * owns its schema): the store's name as `online_store.type` gives it, the
 * size of its options struct, the keys, the defaults and the checks that span
 * several keys. The loader allocates the options zeroed, calls `defaults`,
 * fills the keys, joins PATH fields to the file's folder, then calls `check`.
 */
struct ldr_store_schema {
  const char *name;
  size_t size;
  const struct ldr_config_field *fields;
  size_t n_fields;
  /* Sets the defaults that are not zero (strings malloc'd); 0, or -1 when memory is short. */
  int (*defaults)(void *opts);
  /* NULL, or a message "online_store.<key>: what is wrong" written into buf. */
  const char *(*check)(const void *opts, char *buf, size_t cap);
  /* The store's own keys under `larder:` (how it uses replicas, say), filled
   * into the same options struct; none when n_larder_fields is 0. Such a key
   * given for another store is a config error naming the store it belongs to. */
  const struct ldr_config_field *larder_fields;
  size_t n_larder_fields;
};

/* Everything a backend needs to open its store. Owned by the ldr_config that holds it. */
struct ldr_store_config {
  const struct ldr_store_schema *schema;
  const char *type_name;  /* schema->name */
  const char *project;    /* validated: [A-Za-z0-9_], not starting with '_' */
  int key_version;        /* entity_key_serialization_version (default 3) */
  int wait_for_backend_s; /* larder.wait_for_backend_s: retry an unreachable database */
  int read_only;          /* larder.read_only: the store is only read */
  void *opts;             /* the schema's options struct */
};

/* What a credential may do (larder.auth.scoped, larder.tls.client_scopes). */
enum { LDR_SCOPE_READ = 1, LDR_SCOPE_WRITE = 2, LDR_SCOPE_ADMIN = 4 };

/* A file (one token per line, '#' comments) or an environment variable (tokens
 * separated by commas or white space) of bearer tokens, and their scopes. */
struct ldr_token_source {
  char *file; /* joined to the yaml file's folder */
  char *env;
  unsigned scopes;
};

struct ldr_config {
  char *file; /* the path it was loaded from */
  char *dir;  /* the folder of that file: relative paths start here */
  char *project;
  char *registry; /* registry.path as given (not resolved), or NULL */
  /* What to read: the registry file (relative paths joined to `dir`) for a
   * file registry, the database URL (read_path, else path) for an SQL one;
   * NULL when no registry is configured or larder cannot read it (then
   * registry_unsupported says why, naming no location: ServingService's
   * callers are told). */
  char *registry_path;
  int registry_sql; /* registry_type: sql */
  char *registry_unsupported;
  int registry_cache_ttl_s; /* registry.cache_ttl_seconds: 600; 0 = read once */
  int registry_versioning;  /* registry.enable_online_feature_view_versioning */
  struct ldr_store_config store;
  /* larder: (defaults in DESIGN §5) */
  char *listen;
  int workers; /* 0 = CPUs in the affinity mask */
  int admin_rpcs;
  long max_batch_rows;
  long max_message_bytes;
  int max_join_keys; /* join keys in one entity key */
  int max_columns;   /* entity and request_context columns of one GetOnlineFeatures */
  int grace_period_s;
  int default_deadline_s; /* the database's time for a call that has no deadline; 0: no limit */
  int receive_timeout_s;  /* a matched call's message must arrive within it */
  int watch_max_s;        /* the lifetime of one health Watch */
  int read_only;          /* writes, Update and Teardown are refused; the store may be read-only */
  int log_level;          /* 0 debug, 1 info, 2 warn, 3 error */
  int log_json;           /* larder.log_format: json */
  int enforce_ttl;        /* values older than their view's ttl come back OUTSIDE_MAX_AGE */
  char *metrics_listen;   /* host:port of the Prometheus endpoint, or NULL */
  char *http_listen;      /* host:port of Feast's HTTP endpoints, or NULL */
  int http_max_connections;
  /* larder.tls: PEM files, joined to `dir`; NULL when TLS is off. client_ca
   * turns on mutual TLS; a verified client certificate then grants
   * tls_client_scopes when auth is off. */
  char *tls_cert, *tls_key, *tls_client_ca;
  unsigned tls_client_scopes;
  /* larder.auth: where bearer tokens come from and what each grants; none: no auth. */
  struct ldr_token_source *token_sources;
  size_t n_token_sources;
  /* HTTP/2 connection settings; -1 = gRPC's default. */
  int keepalive_time_s, keepalive_timeout_s, max_connection_idle_s, max_connection_age_s,
      max_connection_age_grace_s, max_concurrent_streams;
};

/* The error a load returns: `msg` is "file:line:column: what is wrong"
 * (or "file: reason" when the file cannot be read). */
struct ldr_config_error {
  char msg[512];
};

/* The memory one request may take: 16 x max_message_bytes. It bounds what one
 * write may store, and with a floor of its own each memory that serves
 * requests: a call's arena (ldr_config_call_arena_cap), a worker's batch of
 * reads and an HTTP thread's arena (at least 64 MiB), the HTTP bodies being
 * read at once (at least 256 MiB). docs/security.md has the figures. */
static inline size_t ldr_config_call_bytes(const struct ldr_config *cfg) {
  return (size_t)cfg->max_message_bytes * 16;
}

/* What one gRPC call's arena may hold: ldr_config_call_bytes, at least 16 MiB. */
static inline size_t ldr_config_call_arena_cap(const struct ldr_config *cfg) {
  size_t cap = ldr_config_call_bytes(cfg);
  return cap < (16u << 20) ? 16u << 20 : cap;
}

/*
 * Loads `path` into `cfg`, which the caller owns and releases with
 * ldr_config_destroy, also after a failure. `stores` lists the stores this
 * build serves (NULL-terminated; borrowed, and must outlive `cfg`): another
 * online_store.type is a config error. Returns 0 on success, -1 with `err`
 * filled otherwise.
 */
int ldr_config_load(const char *path, const struct ldr_store_schema *const *stores,
                    struct ldr_config *cfg, struct ldr_config_error *err);

/* As ldr_config_load, for YAML text already in memory; `name` is used in error
 * messages and `dir` anchors relative paths. `lookup` returns the value of an
 * environment variable or NULL (getenv when NULL). */
int ldr_config_load_text(const char *name, const char *dir, const char *text, size_t len,
                         const char *(*lookup)(const char *),
                         const struct ldr_store_schema *const *stores, struct ldr_config *cfg,
                         struct ldr_config_error *err);

/* Returns nonzero when `s` is 1 to `max` bytes of [A-Za-z0-9_]: a name that goes
 * into SQL identifiers quoted, without escaping. */
int ldr_config_identifier(const char *s, size_t max);

/* Returns nonzero when `s` looks like host:port (IPv6 hosts in brackets). */
int ldr_config_valid_listen(const char *s);

/* larder.workers, or when 0 the CPUs in the process's affinity mask: the
 * gRPC workers, and the HTTP threads when the HTTP API is on. */
int ldr_config_workers(const struct ldr_config *cfg);

/* Frees a NULL-terminated list of strings (LDR_FIELD_ADDRESSES) and its strings; NULL is fine. */
void ldr_config_free_list(char **list);

/* Frees what the config owns; `cfg` may be zeroed or partly filled. */
void ldr_config_destroy(struct ldr_config *cfg);

/*
 * Feast's os.path.expandvars over `text`: `$NAME` and `${NAME}` (NAME of ASCII
 * word characters; inside braces anything but '}') are replaced by the
 * variable's value; undefined variables are left as they are. Returns a
 * malloc'ed, NUL-terminated string (length in *out_len), or NULL on no memory.
 */
char *ldr_config_expand_vars(const char *text, size_t len, const char *(*lookup)(const char *),
                             size_t *out_len);

#endif
