/*
 * feature_store.yaml: Feast's file as Feast reads it, plus larder's own
 * `larder:` section. This module is plain data: it uses nothing else of ours.
 */
#ifndef LDR_CONFIG_H
#define LDR_CONFIG_H

#include <stddef.h>

enum ldr_store_type { LDR_STORE_SQLITE, LDR_STORE_POSTGRES, LDR_STORE_MYSQL };

/* Everything a backend needs to open its store. Strings are owned by the
 * ldr_config that holds this struct. */
struct ldr_store_config {
  enum ldr_store_type type;
  const char *type_name;  /* "sqlite", "postgres" or "mysql" */
  const char *project;    /* validated: [A-Za-z0-9_], not starting with '_' */
  int key_version;        /* entity_key_serialization_version (default 3) */
  int wait_for_backend_s; /* larder.wait_for_backend_s: retry an unreachable database */
  struct {
    char *path; /* absolute, or relative to the working directory */
  } sqlite;
  struct ldr_postgres_config {
    char *host;
    int port; /* 5432 */
    char *database;
    char *db_schema; /* "public"; NULL (db_schema: null) means the user's name */
    char *user;
    char *password;
    char *sslmode; /* "require", as in Feast */
    char *sslkey_path, *sslcert_path, *sslrootcert_path;
    int keepalives_idle; /* 0: libpq's default */
  } postgres;
  struct ldr_mysql_config {
    char *host;                        /* "127.0.0.1"; always reached over TCP */
    int port;                          /* 3306 */
    char *user, *password;             /* "test", "test": pymysql's defaults in Feast */
    char *database;                    /* "feast" */
    char *ssl_ca, *ssl_cert, *ssl_key; /* any of them turns TLS on */
  } mysql;
};

struct ldr_config {
  char *file; /* the path it was loaded from */
  char *dir;  /* the folder of that file: relative paths start here */
  char *project;
  char *registry; /* registry path as given (not resolved), or NULL */
  /* The registry file to read, relative paths joined to `dir`; NULL when no
   * registry is configured or it is not a file (then registry_unsupported
   * says why, for ServingService's answers and the log). */
  char *registry_path;
  char *registry_unsupported;
  int registry_cache_ttl_s; /* registry.cache_ttl_seconds: 600; 0 = read once */
  struct ldr_store_config store;
  /* larder: */
  char *listen;
  int workers; /* 0 = CPUs in the affinity mask */
  int admin_rpcs;
  long max_batch_rows;
  long max_message_bytes;
  int grace_period_s;
  int default_deadline_s; /* how long the database may take for a call that has no deadline; 0: no
                             limit */
  int log_level;          /* 0 debug, 1 info, 2 warn, 3 error */
  int log_json;           /* larder.log_format: json */
  int enforce_ttl;        /* values older than their view's ttl come back OUTSIDE_MAX_AGE */
  char *metrics_listen;   /* host:port of the Prometheus endpoint, or NULL */
  /* larder.tls: PEM files, joined to `dir`; NULL when TLS is off. client_ca
   * turns on mutual TLS. */
  char *tls_cert, *tls_key, *tls_client_ca;
  /* larder.auth: bearer tokens, one per line in a file and/or separated by
   * commas or white space in an environment variable. Both NULL: no auth. */
  char *auth_tokens_file, *auth_tokens_env;
  /* HTTP/2 connection settings; -1 = gRPC's default. */
  int keepalive_time_s, keepalive_timeout_s, max_connection_idle_s, max_connection_age_s,
      max_connection_age_grace_s, max_concurrent_streams;
};

/* The error a load returns: `msg` is "file:line:column: what is wrong"
 * (or "file: reason" when the file cannot be read). */
struct ldr_config_error {
  char msg[512];
};

/*
 * Loads `path` into `cfg`, which the caller owns and releases with
 * ldr_config_destroy, also after a failure. Returns 0 on success, -1 with
 * `err` filled otherwise.
 */
int ldr_config_load(const char *path, struct ldr_config *cfg, struct ldr_config_error *err);

/* As ldr_config_load, for YAML text already in memory; `name` is used in error
 * messages and `dir` anchors relative paths. `lookup` returns the value of an
 * environment variable or NULL (getenv when NULL). */
int ldr_config_load_text(const char *name, const char *dir, const char *text, size_t len,
                         const char *(*lookup)(const char *), struct ldr_config *cfg,
                         struct ldr_config_error *err);

/* Returns nonzero when `s` looks like host:port (IPv6 hosts in brackets). */
int ldr_config_valid_listen(const char *s);

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
