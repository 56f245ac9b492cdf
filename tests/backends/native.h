/*
 * What the backend conformance suite needs to do beside the backend: look at
 * stored rows with the database's own client, make a write fail part-way, and
 * hold a lock. One implementation per backend (native_<name>.c).
 */
#ifndef LDR_TEST_NATIVE_H
#define LDR_TEST_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A stored row as the database's own client reads it. */
struct raw_row {
  int found;
  uint8_t key[1024]; /* entity_key as stored (MySQL: the hex text) */
  size_t key_len;
  uint8_t value[4096];
  size_t value_len;
  int has_text;
  char text[256];
  int has_event_ts;
  long long event_ts; /* epoch seconds */
  long long event_us; /* microseconds within the second, where the store keeps them */
  int has_created;
  long long created_ts;
};

struct native {
  const char *name;
  int keeps_micros;   /* timestamps keep microseconds (else whole seconds, truncated toward zero) */
  int no_value_text;  /* the table has no value_text column (MySQL) */
  int narrow_columns; /* MySQL: keys of 256 bytes, names of 256 characters, 64 KiB values and
                         timestamps in 1970-2038 at most; beyond them writes are refused */
  /* Fills `cfg` (store part) for a fresh store; returns 0, or -1 to skip the suite. */
  int (*setup)(struct ldr_store_config *cfg);
  void (*cleanup)(void);
  /* Makes every insert or update of feature "poison" into `table` fail. */
  int (*poison)(const char *table);
  /* Reads the row (stored key bytes, feature); 0 with out->found set or not, -1 on error. */
  int (*raw_row)(const char *table, const uint8_t *key, size_t key_len, const char *feature,
                 struct raw_row *out);
  /* Runs a statement with the native client (the SQL of Feast's own store). */
  int (*exec)(const char *sql);
  /* Starts a transaction that holds the write lock on `table` until unlock. */
  int (*lock)(const char *table);
  void (*unlock)(void);
};

extern const struct native native_sqlite;
extern const struct native native_postgres;
extern const struct native native_mysql;

#endif
