/* What the backends share beside the public interface: collecting read rows
 * per requested key, and flattening a write batch. */
#ifndef LDR_BACKEND_INT_H
#define LDR_BACKEND_INT_H

#include "backends/backend.h"

/* A request key and where it stands in the request. */
struct ldr_key_ref {
  const uint8_t *bytes;
  size_t len;
  size_t idx;
};

struct ldr_got;

/*
 * Gathers the rows a read returns, in any order, and lays them out as one
 * ldr_read_row per requested key. The distinct keys (`uniq`, sorted by their
 * bytes) are what a backend sends to the database; duplicates share results.
 */
struct ldr_collector {
  struct ldr_arena *arena;
  struct ldr_key_ref *refs; /* every request key, sorted by bytes */
  size_t nrefs;
  struct ldr_key_ref *uniq; /* one per distinct key */
  size_t nuniq;
  size_t *uniq_of_ref; /* refs[i] is uniq[uniq_of_ref[i]] */
  struct ldr_got *got;
  size_t ngot, capgot;
  size_t last;    /* the uniq index of the previous row, for runs of one key */
  size_t *budget; /* bytes of names and values the call may still take (shared by its reads) */
  size_t spent;   /* what the rows added so far took from it */
};

/* Sorts the request keys and finds the distinct ones. Rows added later are
 * counted against *budget. LDR_EXHAUSTED when the arena is full. */
enum ldr_rc ldr_collect_begin(struct ldr_collector *c, struct ldr_arena *a,
                              const struct ldr_key *keys, size_t n, size_t *budget,
                              struct ldr_err *err);

/* The budget of a read by `b`: its result_cap, or no limit. */
static inline size_t ldr_read_budget(const struct ldr_backend *b) {
  return b->result_cap ? b->result_cap : (size_t)-1;
}

/* Forgets the rows added so far (a retried statement adds them again). */
void ldr_collect_reset(struct ldr_collector *c);

/* Adds one stored row, copying name and value into the arena; `ts` NULL means
 * the row has no event_ts. Rows of keys nobody asked for are ignored. */
enum ldr_rc ldr_collect_row(struct ldr_collector *c, const void *key, size_t key_len,
                            const void *name, size_t name_len, const void *value, size_t value_len,
                            const struct ldr_ts *ts, struct ldr_err *err);

/* Checks that a row of these sizes still fits the budget, before its columns
 * are fetched (a driver that reads a column of unknown width first). */
enum ldr_rc ldr_collect_reserve(const struct ldr_collector *c, size_t name_len, size_t value_len,
                                struct ldr_err *err);

/* As ldr_collect_row, but the name and value are not copied: they must live
 * as long as the arena (see ldr_arena_on_reset). */
enum ldr_rc ldr_collect_row_ref(struct ldr_collector *c, const void *key, size_t key_len,
                                const void *name, size_t name_len, const void *value,
                                size_t value_len, const struct ldr_ts *ts, struct ldr_err *err);

/* As ldr_collect_row, for a row known to belong to uniq[u] (a read of one key). */
enum ldr_rc ldr_collect_row_of(struct ldr_collector *c, size_t u, const void *name, size_t name_len,
                               const void *value, size_t value_len, const struct ldr_ts *ts,
                               struct ldr_err *err);

/* As ldr_collect_row_of, without copying, as ldr_collect_row_ref. */
enum ldr_rc ldr_collect_row_of_ref(struct ldr_collector *c, size_t u, const void *name,
                                   size_t name_len, const void *value, size_t value_len,
                                   const struct ldr_ts *ts, struct ldr_err *err);

/* The order of a collector's distinct keys: their bytes, then their lengths. */
int ldr_blob_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb);

/* LDR_OK, or RESOURCE_EXHAUSTED naming requested_features when a read names
 * more than LDR_READ_FEATURES_MAX features. */
enum ldr_rc ldr_read_features_check(const struct ldr_read *r, struct ldr_err *err);

/* The feature names a read requests, for keeping only their rows where the
 * statement returned every feature of a key. They are sorted once per read, so
 * that a row costs one comparison when rows come in request order and a binary
 * search otherwise, whatever the number and order of the names. */
struct ldr_wanted_name {
  const char *name;
  size_t len;
  size_t at; /* its place in the request */
};
struct ldr_wanted {
  const char *const *names;
  size_t n;                       /* 0: no names (ldr_wanted_has is false for every name) */
  size_t next;                    /* the place after the previous match */
  size_t *lens;                   /* the names' lengths, in request order */
  struct ldr_wanted_name *sorted; /* by length, then bytes */
};

/* Makes w the names[0..n) (NUL-terminated), taking its memory from `a`:
 * RESOURCE_EXHAUSTED if the arena is full. */
enum ldr_rc ldr_wanted_init(struct ldr_wanted *w, const char *const *names, size_t n,
                            struct ldr_arena *a, struct ldr_err *err);
/* Whether `name` (len bytes, not NUL-terminated) is one of w's names, byte for byte. */
int ldr_wanted_has(struct ldr_wanted *w, const char *name, size_t len);
/* Whether one of w's names has `len` bytes (a name of another length is not one of them). */
int ldr_wanted_len(const struct ldr_wanted *w, size_t len);

/* Fills out[0..nrefs) in request order: found, features, latest event_ts. */
enum ldr_rc ldr_collect_end(struct ldr_collector *c, struct ldr_read_row *out, struct ldr_err *err);

/* One (row, feature) of a write batch. */
struct ldr_flat {
  const struct ldr_write_row *row;
  const struct ldr_write_feature *feature;
};

/*
 * Lists every (row, feature) of a batch once: where a (key, feature name)
 * repeats, only its last occurrence is kept, as if the batch were applied in
 * order. The list lives in `a`.
 */
enum ldr_rc ldr_flatten_last_wins(const struct ldr_write_row *rows, size_t n, struct ldr_arena *a,
                                  struct ldr_flat **out, size_t *nout, struct ldr_err *err);

/* Feast's vector and text search options, which larder accepts only at their defaults. */
#define LDR_VECTOR_OPTIONS                                                                         \
  {.key = "vector_enabled",                                                                        \
   .kind = LDR_FIELD_FALSE_ONLY,                                                                   \
   .offset = LDR_NO_FIELD,                                                                         \
   .why = "vector search is not implemented"},                                                     \
      {.key = "similarity",                                                                        \
       .kind = LDR_FIELD_STRING,                                                                   \
       .offset = LDR_NO_FIELD,                                                                     \
       .choices = ldr_cosine_only,                                                                 \
       .why = "vector search is not implemented"},                                                 \
      {.key = "text_search_enabled",                                                               \
       .kind = LDR_FIELD_FALSE_ONLY,                                                               \
       .offset = LDR_NO_FIELD,                                                                     \
       .why = "text search is not implemented"},                                                   \
  {                                                                                                \
    .key = "enable_openai_compatible_store", .kind = LDR_FIELD_FALSE_ONLY, .offset = LDR_NO_FIELD, \
    .why = "the value_num column is not written"                                                   \
  }
extern const char *const ldr_cosine_only[];

/* A string member of a backend's options struct as a config key. */
#define LDR_STRING_KEY(type, k, member, req)                                                       \
  { .key = k, .kind = LDR_FIELD_STRING, .offset = offsetof(type, member), .required = req }
#define LDR_INT_KEY(type, k, member, lo, hi)                                                       \
  { .key = k, .kind = LDR_FIELD_INT, .offset = offsetof(type, member), .min = lo, .max = hi }

#endif
