/* Feast's PostgreSQL online store: its options and its ops. */
#ifndef LDR_POSTGRES_H
#define LDR_POSTGRES_H

#include "backends/backend.h"

/* online_store keys of `type: postgres`. */
struct ldr_postgres_options {
  char *host; /* one host, or several separated by commas (libpq's multi-host form) */
  char *port; /* "5432": one port for every host, or one per host ("5432,5433") */
  char *database;
  char *db_schema; /* "public"; NULL (db_schema: null) means the user's name */
  char *user;
  char *password;
  char *sslmode; /* "require", as in Feast */
  char *sslkey_path, *sslcert_path, *sslrootcert_path;
  int keepalives_idle; /* 0: libpq's default */
  /* Under `larder:` (issue 15). */
  char *read_from;         /* "primary", "standby" (libpq's prefer-standby) or "any" */
  int prepared_statements; /* 1; 0 for pgbouncer in transaction pooling: no session state */
};

extern const struct ldr_store_schema ldr_postgres_schema;
extern const struct ldr_backend_ops ldr_postgres_ops;

/* Feast's SQL registry in this store's database, read-only (postgres_reader.c). */
extern const struct ldr_reader_ops ldr_postgres_reader;

#endif
