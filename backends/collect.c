/* Laying out read rows per requested key, and last-wins flattening of writes. */
#include <stdlib.h>
#include <string.h>

#include "backends/backend_int.h"

struct ldr_got {
  size_t uniq;
  struct ldr_read_feature f;
  int has_ts;
  struct ldr_ts ts;
};

int ldr_blob_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
  int c = la && lb ? memcmp(a, b, la < lb ? la : lb) : 0;
  if (c != 0) return c;
  return la < lb ? -1 : la > lb;
}

static int ref_cmp(const void *x, const void *y) {
  const struct ldr_key_ref *a = x, *b = y;
  int c = ldr_blob_cmp(a->bytes, a->len, b->bytes, b->len);
  if (c != 0) return c;
  return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* What a row adds to a reply, near enough: its name and value and their framing. */
static size_t row_cost(size_t name_len, size_t value_len) { return name_len + value_len + 16; }

static enum ldr_rc over_budget(struct ldr_err *err) {
  return ldr_err_set(err, LDR_EXHAUSTED,
                     "read: the rows read pass larder.max_message_bytes; ask for fewer keys or "
                     "features");
}

enum ldr_rc ldr_collect_reserve(const struct ldr_collector *c, size_t name_len, size_t value_len,
                                struct ldr_err *err) {
  return *c->budget < row_cost(name_len, value_len) ? over_budget(err) : LDR_OK;
}

static enum ldr_rc full(struct ldr_err *err) {
  return ldr_err_set(err, LDR_EXHAUSTED, "read: the result is larger than a call may hold");
}

enum ldr_rc ldr_collect_begin(struct ldr_collector *c, struct ldr_arena *a,
                              const struct ldr_key *keys, size_t n, size_t *budget,
                              struct ldr_err *err) {
  memset(c, 0, sizeof *c);
  c->arena = a;
  c->budget = budget;
  c->nrefs = n;
  c->refs = ldr_arena_alloc(a, (n ? n : 1) * sizeof *c->refs);
  c->uniq = ldr_arena_alloc(a, (n ? n : 1) * sizeof *c->uniq);
  c->uniq_of_ref = ldr_arena_alloc(a, (n ? n : 1) * sizeof *c->uniq_of_ref);
  if (c->refs == NULL || c->uniq == NULL || c->uniq_of_ref == NULL) return full(err);
  for (size_t i = 0; i < n; i++) {
    c->refs[i].bytes = keys[i].bytes;
    c->refs[i].len = keys[i].len;
    c->refs[i].idx = i;
  }
  qsort(c->refs, n, sizeof *c->refs, ref_cmp);
  for (size_t i = 0; i < n; i++) {
    const struct ldr_key_ref *r = &c->refs[i];
    if (i == 0 || ldr_blob_cmp(r->bytes, r->len, c->refs[i - 1].bytes, c->refs[i - 1].len) != 0)
      c->uniq[c->nuniq++] = *r;
    c->uniq_of_ref[i] = c->nuniq - 1;
  }
  c->last = c->nuniq;
  return LDR_OK;
}

void ldr_collect_reset(struct ldr_collector *c) {
  *c->budget += c->spent;
  c->spent = 0;
  c->ngot = 0;
  c->last = c->nuniq;
}

/* The uniq index of (p, n), or nuniq when no request key has these bytes. */
static size_t find_uniq(const struct ldr_collector *c, const uint8_t *p, size_t n) {
  size_t lo = 0, hi = c->nuniq;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = ldr_blob_cmp(c->uniq[mid].bytes, c->uniq[mid].len, p, n);
    if (cmp == 0) return mid;
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return c->nuniq;
}

static enum ldr_rc add_row(struct ldr_collector *c, size_t u, const void *name, size_t name_len,
                           const void *value, size_t value_len, const struct ldr_ts *ts, int copy,
                           struct ldr_err *err);

enum ldr_rc ldr_collect_row(struct ldr_collector *c, const void *key, size_t key_len,
                            const void *name, size_t name_len, const void *value, size_t value_len,
                            const struct ldr_ts *ts, struct ldr_err *err) {
  /* Rows of one key usually come together: look a key up only when it changes. */
  size_t u = c->last;
  if (u == c->nuniq || ldr_blob_cmp(c->uniq[u].bytes, c->uniq[u].len, key, key_len) != 0)
    u = find_uniq(c, key, key_len);
  c->last = u;
  if (u == c->nuniq) return LDR_OK;
  return add_row(c, u, name, name_len, value, value_len, ts, 1, err);
}

enum ldr_rc ldr_collect_row_ref(struct ldr_collector *c, const void *key, size_t key_len,
                                const void *name, size_t name_len, const void *value,
                                size_t value_len, const struct ldr_ts *ts, struct ldr_err *err) {
  size_t u = c->last;
  if (u == c->nuniq || ldr_blob_cmp(c->uniq[u].bytes, c->uniq[u].len, key, key_len) != 0)
    u = find_uniq(c, key, key_len);
  c->last = u;
  if (u == c->nuniq) return LDR_OK;
  return add_row(c, u, name, name_len, value, value_len, ts, 0, err);
}

enum ldr_rc ldr_collect_row_of(struct ldr_collector *c, size_t u, const void *name, size_t name_len,
                               const void *value, size_t value_len, const struct ldr_ts *ts,
                               struct ldr_err *err) {
  return add_row(c, u, name, name_len, value, value_len, ts, 1, err);
}

enum ldr_rc ldr_collect_row_of_ref(struct ldr_collector *c, size_t u, const void *name,
                                   size_t name_len, const void *value, size_t value_len,
                                   const struct ldr_ts *ts, struct ldr_err *err) {
  return add_row(c, u, name, name_len, value, value_len, ts, 0, err);
}

/* Appends a row for uniq[u]; `copy` says whether name and value move into the arena. */
static enum ldr_rc add_row(struct ldr_collector *c, size_t u, const void *name, size_t name_len,
                           const void *value, size_t value_len, const struct ldr_ts *ts, int copy,
                           struct ldr_err *err) {
  size_t cost = row_cost(name_len, value_len);
  if (*c->budget < cost) return over_budget(err);
  *c->budget -= cost;
  c->spent += cost;
  if (c->ngot == c->capgot) {
    size_t cap = c->capgot ? c->capgot * 2 : 64;
    struct ldr_got *g = ldr_arena_alloc(c->arena, cap * sizeof *g);
    if (g == NULL) return full(err);
    if (c->ngot) memcpy(g, c->got, c->ngot * sizeof *g);
    c->got = g;
    c->capgot = cap;
  }
  struct ldr_got *g = &c->got[c->ngot];
  g->uniq = u;
  g->f.name = copy ? ldr_arena_memdup(c->arena, name_len ? name : "", name_len) : name;
  g->f.name_len = name_len;
  g->f.value = copy ? ldr_arena_memdup(c->arena, value_len ? value : "", value_len) : value;
  g->f.value_len = value_len;
  g->has_ts = ts != NULL;
  if (ts != NULL) g->ts = *ts;
  if (g->f.name == NULL || g->f.value == NULL) return full(err);
  c->ngot++;
  return LDR_OK;
}

static int ts_after(struct ldr_ts a, struct ldr_ts b) {
  return a.s > b.s || (a.s == b.s && a.ns > b.ns);
}

enum ldr_rc ldr_collect_end(struct ldr_collector *c, struct ldr_read_row *out,
                            struct ldr_err *err) {
  struct ldr_read_row *per = ldr_arena_calloc(c->arena, c->nuniq + 1, sizeof *per);
  struct ldr_read_feature *features = ldr_arena_alloc(c->arena, (c->ngot + 1) * sizeof *features);
  if (per == NULL || features == NULL) return full(err);
  /* Count rows per key, then give each key its slice of one array. */
  for (size_t i = 0; i < c->ngot; i++) per[c->got[i].uniq].n_features++;
  size_t at = 0;
  for (size_t u = 0; u < c->nuniq; u++) {
    per[u].features = features + at;
    per[u].found = per[u].n_features > 0;
    at += per[u].n_features;
    per[u].n_features = 0;
  }
  for (size_t i = 0; i < c->ngot; i++) {
    const struct ldr_got *g = &c->got[i];
    struct ldr_read_row *r = &per[g->uniq];
    r->features[r->n_features++] = g->f;
    if (g->has_ts && (!r->has_event_ts || ts_after(g->ts, r->event_ts))) {
      r->has_event_ts = 1;
      r->event_ts = g->ts;
    }
  }
  for (size_t i = 0; i < c->nrefs; i++) out[c->refs[i].idx] = per[c->uniq_of_ref[i]];
  return LDR_OK;
}

/* A (row, feature) with its place in the batch, for sorting. */
struct flat_key {
  struct ldr_flat flat;
  size_t seq;
};

static int flat_cmp(const void *x, const void *y) {
  const struct flat_key *a = x, *b = y;
  const struct ldr_key *ka = &a->flat.row->key, *kb = &b->flat.row->key;
  int c = ldr_blob_cmp(ka->bytes, ka->len, kb->bytes, kb->len);
  if (c == 0) c = strcmp(a->flat.feature->name, b->flat.feature->name);
  if (c == 0) c = a->seq < b->seq ? -1 : a->seq > b->seq;
  return c;
}

enum ldr_rc ldr_flatten_last_wins(const struct ldr_write_row *rows, size_t n, struct ldr_arena *a,
                                  struct ldr_flat **out, size_t *nout, struct ldr_err *err) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += rows[i].n_features;
  struct flat_key *all = ldr_arena_alloc(a, (total + 1) * sizeof *all);
  struct ldr_flat *kept = ldr_arena_alloc(a, (total + 1) * sizeof *kept);
  if (all == NULL || kept == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < rows[i].n_features; j++, k++) {
      all[k].flat.row = &rows[i];
      all[k].flat.feature = &rows[i].features[j];
      all[k].seq = k;
    }
  qsort(all, total, sizeof *all, flat_cmp);
  size_t m = 0;
  for (size_t i = 0; i < total; i++) {
    /* Keep the last of each run of equal (key, name): the next one differs. */
    if (i + 1 < total) {
      struct flat_key probe = all[i + 1];
      probe.seq = all[i].seq;
      if (flat_cmp(&all[i], &probe) == 0) continue;
    }
    kept[m++] = all[i].flat;
  }
  *out = kept;
  *nout = m;
  return LDR_OK;
}

/* The order of w.sorted: by length, then bytes (a name may hold no NUL, but a row's may). */
static int wanted_cmp(const char *a, size_t la, const char *b, size_t lb) {
  if (la != lb) return la < lb ? -1 : 1;
  return memcmp(a, b, la);
}

static int wanted_sort(const void *x, const void *y) {
  const struct ldr_wanted_name *a = x, *b = y;
  return wanted_cmp(a->name, a->len, b->name, b->len);
}

enum ldr_rc ldr_read_features_check(const struct ldr_read *r, struct ldr_err *err) {
  if (r->n_features <= LDR_READ_FEATURES_MAX) return LDR_OK;
  return ldr_err_set(err, LDR_EXHAUSTED, "requested_features: more than %d features",
                     LDR_READ_FEATURES_MAX);
}

enum ldr_rc ldr_wanted_init(struct ldr_wanted *w, const char *const *names, size_t n,
                            struct ldr_arena *a, struct ldr_err *err) {
  memset(w, 0, sizeof *w);
  if (n == 0) return LDR_OK;
  w->lens = ldr_arena_alloc(a, n * sizeof *w->lens);
  w->sorted = ldr_arena_alloc(a, n * sizeof *w->sorted);
  if (w->lens == NULL || w->sorted == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  for (size_t i = 0; i < n; i++) {
    w->lens[i] = strlen(names[i]);
    w->sorted[i] = (struct ldr_wanted_name){names[i], w->lens[i], i};
  }
  qsort(w->sorted, n, sizeof *w->sorted, wanted_sort);
  w->names = names;
  w->n = n;
  return LDR_OK;
}

int ldr_wanted_has(struct ldr_wanted *w, const char *name, size_t len) {
  if (w->n == 0) return 0;
  /* Rows tend to come in request order: the name after the previous match first. */
  size_t at = w->next;
  if (w->lens[at] != len || memcmp(w->names[at], name, len) != 0) {
    size_t lo = 0, hi = w->n;
    for (;;) {
      if (lo >= hi) return 0;
      size_t mid = lo + (hi - lo) / 2;
      int c = wanted_cmp(name, len, w->sorted[mid].name, w->sorted[mid].len);
      if (c == 0) {
        at = w->sorted[mid].at;
        break;
      }
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  }
  w->next = at + 1 < w->n ? at + 1 : 0;
  return 1;
}

int ldr_wanted_len(const struct ldr_wanted *w, size_t len) {
  size_t lo = 0, hi = w->n; /* the first name of `len` bytes or more */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (w->sorted[mid].len < len)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < w->n && w->sorted[lo].len == len;
}
