/* Feast's SQLite online store: its options and its ops. */
#ifndef LDR_SQLITE_H
#define LDR_SQLITE_H

#include "backends/backend.h"

/* online_store keys of `type: sqlite`. */
struct ldr_sqlite_options {
  char *path; /* absolute, or joined to the yaml file's folder; default data/online.db */
};

extern const struct ldr_store_schema ldr_sqlite_schema;
extern const struct ldr_backend_ops ldr_sqlite_ops;

/* Feast's SQL registry in this store's database, read-only (sqlite_reader.c). */
extern const struct ldr_reader_ops ldr_sqlite_reader;

#endif
