/*
 * Frames into rows (HTTP.md §6.3, §7), every view converted before anything
 * is written, then one backend write for all of them: one transaction.
 */
#include "serving/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A column name and its place in the frame, for lookups by name. */
struct named {
  const char *name;
  size_t idx;
};

static int name_cmp(const void *x, const void *y) {
  return strcmp(((const struct named *)x)->name, ((const struct named *)y)->name);
}

/* By name, then place: a repeated name's columns in frame order. */
static int by_name(const void *x, const void *y) {
  const struct named *a = x, *b = y;
  int c = strcmp(a->name, b->name);
  return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

struct ingest {
  const struct ldr_ingest_env *env;
  const struct ldr_frame *f;
  struct ldr_err *err;
  struct named *cols; /* sorted */
  struct ldr_write *writes;
  size_t n_writes;
  size_t stored; /* the bytes the writes store, over every row and view (stored_bytes) */
};

/* What a call may store at most: the memory a request may take
 * (ldr_config_call_bytes). Rows sharing a broadcast value take no memory for
 * it, but each stores it again. */
static enum ldr_rc count_stored(struct ingest *g, const struct ldr_write_feature *w) {
  const Feast__Types__Value *v = w->value;
  size_t text =
      v && v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL ? strlen(v->string_val) : 32;
  size_t limit = ldr_config_call_bytes(g->env->cfg);
  g->stored += w->len + text;
  if (g->stored <= limit) return LDR_OK;
  return ldr_err_set(g->err, LDR_EXHAUSTED,
                     "%s: the values to store pass 16 x larder.max_message_bytes (%zu bytes); a "
                     "value given once for every row counts once per row",
                     g->f->field, limit);
}

static enum ldr_rc no_memory(struct ldr_err *err) {
  return ldr_err_set(err, LDR_EXHAUSTED, "request: needs more memory than a request may use");
}

/* The frame's column `name`, or -1. Of a name given twice, the last column
 * counts, as in the dict Python's json.loads makes of the frame. */
static long find(const struct ingest *g, const char *name) {
  struct named key = {name, 0};
  const struct named *hit = bsearch(&key, g->cols, g->f->n_cols, sizeof key, name_cmp);
  if (hit == NULL) return -1;
  while (hit + 1 < g->cols + g->f->n_cols && !strcmp(hit[1].name, name)) hit++;
  return (long)hit->idx;
}

/* The frame column that the view calls `name`: the batch source's
 * field_mapping renames frame columns (source column -> view's name). */
static long column_for(const struct ingest *g, const struct ldr_view *v, const char *name) {
  for (size_t i = 0; v->source != NULL && i < v->source->n_mapping; i++)
    if (!strcmp(v->source->mapping_to[i], name)) {
      long c = find(g, v->source->mapping_from[i]);
      if (c >= 0) return c;
    }
  return find(g, name);
}

static enum ldr_rc cell_error(struct ingest *g, size_t col, size_t row) {
  ldr_err_prefix(g->err, "%s.%s[%zu]: ", g->f->field, g->f->names[col], row);
  return g->err->rc;
}

/* Whether column `col` is one cell for every row: its cell is converted once,
 * so that a long value in it costs its length once, not once per row. */
static int broadcast(const struct ldr_frame *f, long col) {
  return col >= 0 && f->broadcast != NULL && f->broadcast(f, (size_t)col);
}

/* Every row's timestamp from column `col` (required: no null). */
static enum ldr_rc timestamps(struct ingest *g, long col, int required, struct ldr_ts *out,
                              int *has) {
  int once = broadcast(g->f, col);
  for (size_t r = 0; r < g->f->n_rows; r++) {
    has[r] = 0;
    if (col < 0) continue;
    if (once && r > 0) {
      has[r] = has[0];
      out[r] = out[0];
      continue;
    }
    enum ldr_rc rc = g->f->timestamp(g->f, (size_t)col, r, &has[r], &out[r], g->err);
    if (rc == LDR_OK && has[r] && (out[r].s < LDR_TS_MIN_SECONDS || out[r].s > LDR_TS_MAX_SECONDS))
      rc = ldr_err_set(g->err, LDR_INVALID, "outside the years 0001 to 9999");
    if (rc == LDR_OK && required && !has[r])
      rc = ldr_err_set(g->err, LDR_INVALID, "the event timestamp may not be null");
    if (rc != LDR_OK) return cell_error(g, (size_t)col, r);
  }
  return LDR_OK;
}

/* The entity keys of every row for view `v`. */
static enum ldr_rc keys(struct ingest *g, const struct ldr_view *v, struct ldr_write_row *rows) {
  const struct ldr_frame *f = g->f;
  struct ldr_arena *a = g->env->arena;
  size_t nk = v->n_join_keys;
  char **names = ldr_arena_calloc(a, nk + 1, sizeof *names);
  Feast__Types__Value **vals = ldr_arena_calloc(a, nk + 1, sizeof *vals);
  long *cols = ldr_arena_calloc(a, nk + 1, sizeof *cols);
  if (names == NULL || vals == NULL || cols == NULL) return no_memory(g->err);
  Feast__Types__Value dummy = FEAST__TYPES__VALUE__INIT;
  if (v->entityless) {
    /* Feast's dummy key, which its reads look for (Feast's own push writes an
     * empty key here that nothing finds). */
    dummy.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    dummy.string_val = (char *)"";
    names[0] = (char *)LDR_DUMMY_JOIN_KEY;
    vals[0] = &dummy;
  }
  for (size_t k = 0; k < nk && !v->entityless; k++) {
    names[k] = (char *)v->join_keys[k].name;
    cols[k] = column_for(g, v, v->join_keys[k].name);
    if (cols[k] < 0)
      return ldr_err_set(g->err, LDR_INVALID,
                         "%s: missing column '%s', a join key of feature view '%s'", f->field,
                         v->join_keys[k].name, v->name);
  }
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  ek.n_join_keys = ek.n_entity_values = nk;
  ek.join_keys = names;
  ek.entity_values = vals;
  for (size_t r = 0; r < f->n_rows; r++) {
    for (size_t k = 0; k < nk && !v->entityless; k++) {
      if (r > 0 && broadcast(f, cols[k])) continue; /* vals[k] is still the first row's */
      enum ldr_rc rc =
          f->value(f, (size_t)cols[k], r, v->join_keys[k].type, 1, a, &vals[k], g->err);
      if (rc == LDR_OK && vals[k] == NULL)
        rc = ldr_err_set(g->err, LDR_INVALID, "an entity value may not be null");
      if (rc != LDR_OK) return cell_error(g, (size_t)cols[k], r);
    }
    enum ldr_rc rc =
        ldr_entity_key_serialize(&ek, g->env->backend->key_version, a, &rows[r].key, g->err);
    if (rc != LDR_OK) {
      ldr_err_prefix(g->err, "%s: row %zu, feature view '%s': ", f->field, r, v->name);
      return rc;
    }
  }
  return LDR_OK;
}

/* How the backend's messages name what a row of `v` came from: the frame's
 * columns (NULL when memory is short). */
static const struct ldr_write_names *names_of(const struct ingest *g, const struct ldr_view *v,
                                              const long *fcols, long tcol, long ccol) {
  const struct ldr_frame *f = g->f;
  struct ldr_arena *a = g->env->arena;
  struct ldr_write_names *n = ldr_arena_calloc(a, 1, sizeof *n);
  const char **features = ldr_arena_calloc(a, v->n_features + 1, sizeof *features);
  const char **keys = ldr_arena_calloc(a, v->n_join_keys + 1, sizeof *keys);
  if (n == NULL || features == NULL || keys == NULL) return NULL;
  for (size_t j = 0; j < v->n_features; j++)
    features[j] = fcols[j] >= 0 ? f->names[fcols[j]] : v->features[j].name;
  size_t len = 1;
  for (size_t k = 0; k < v->n_join_keys; k++) {
    long c = v->entityless ? -1 : column_for(g, v, v->join_keys[k].name);
    keys[k] = c >= 0 ? f->names[c] : v->join_keys[k].name;
    len += strlen(keys[k]) + 2;
  }
  char *list = ldr_arena_alloc(a, len);
  if (list == NULL) return NULL;
  list[0] = '\0';
  for (size_t k = 0, at = 0; k < v->n_join_keys; k++)
    at += (size_t)snprintf(list + at, len - at, "%s%s", k ? ", " : "", keys[k]);
  n->frame = f->field;
  n->event = tcol >= 0 ? f->names[tcol] : "event_timestamp";
  n->created = ccol >= 0 ? f->names[ccol] : "created";
  n->keys = list;
  n->features = features;
  return n;
}

/*
 * The rows of view `v` into g->writes (or nothing, when every feature cell is
 * null: Feast writes nothing then). `odfv`: an on-demand view's write — its
 * absent features are empty Values, and both timestamps are now.
 */
static enum ldr_rc prepare(struct ingest *g, const struct ldr_view *v, int odfv) {
  const struct ldr_ingest_env *env = g->env;
  const struct ldr_frame *f = g->f;
  struct ldr_arena *a = env->arena;
  size_t n = f->n_rows, nf = v->n_features;
  char *table = ldr_arena_alloc(a, LDR_TABLE_NAME_MAX + 1);
  struct ldr_write_row *rows = ldr_arena_calloc(a, n + 1, sizeof *rows);
  struct ldr_write_feature *cells = ldr_arena_calloc(a, n * nf + 1, sizeof *cells);
  long *fcols = ldr_arena_calloc(a, nf + 1, sizeof *fcols);
  struct ldr_ts *event = ldr_arena_calloc(a, n + 1, sizeof *event);
  struct ldr_ts *created = ldr_arena_calloc(a, n + 1, sizeof *created);
  int *has_event = ldr_arena_calloc(a, n + 1, sizeof *has_event);
  int *has_created = ldr_arena_calloc(a, n + 1, sizeof *has_created);
  if (table == NULL || rows == NULL || cells == NULL || fcols == NULL || event == NULL ||
      created == NULL || has_event == NULL || has_created == NULL)
    return no_memory(g->err);
  enum ldr_rc rc = ldr_table_name_version(env->cfg->project, v->name,
                                          env->cfg->registry_versioning ? v->version : 0,
                                          "feature_view", table, g->err);
  if (rc != LDR_OK) {
    g->err->rc = LDR_FAILED_PRECONDITION;
    return LDR_FAILED_PRECONDITION;
  }
  if (n == 0) return LDR_OK; /* an empty frame writes nothing (Feast: df.empty) */
  for (size_t j = 0; j < nf; j++) {
    fcols[j] = column_for(g, v, v->features[j].name);
    if (fcols[j] < 0 && !odfv)
      return ldr_err_set(g->err, LDR_INVALID, "%s: missing column '%s' for feature view '%s'",
                         f->field, v->features[j].name, v->name);
  }
  /* The features first: when every cell is null Feast returns before it
   * looks at the join keys or the timestamps, so nothing else is checked. */
  int any = 0;
  for (size_t r = 0; r < n; r++) {
    struct ldr_write_feature *row = &cells[r * nf];
    for (size_t j = 0; j < nf; j++) {
      if (r > 0 && broadcast(f, fcols[j])) {
        row[j] = cells[j];             /* the first row's, shared */
        rc = count_stored(g, &row[j]); /* but stored by each row */
        if (rc != LDR_OK) return rc;
        continue;
      }
      Feast__Types__Value *val = NULL;
      if (fcols[j] >= 0) {
        rc = f->value(f, (size_t)fcols[j], r, v->features[j].type, 0, a, &val, g->err);
        if (rc != LDR_OK) return cell_error(g, (size_t)fcols[j], r);
      }
      if (val == NULL) {
        val = ldr_arena_alloc(a, sizeof *val);
        if (val == NULL) return no_memory(g->err);
        feast__types__value__init(val);
      } else {
        any = 1;
      }
      size_t len = feast__types__value__get_packed_size(val);
      uint8_t *bytes = ldr_arena_alloc(a, len + 1);
      if (bytes == NULL) return no_memory(g->err);
      feast__types__value__pack(val, bytes);
      row[j] = (struct ldr_write_feature){v->features[j].name, val, bytes, len};
      rc = count_stored(g, &row[j]);
      if (rc != LDR_OK) return rc;
    }
    rows[r].features = row;
    rows[r].n_features = nf;
  }
  if (!any) return LDR_OK; /* every feature null (or absent): nothing to write (Feast) */
  rc = keys(g, v, rows);
  if (rc != LDR_OK) return rc;
  long tcol = -1, ccol = -1;
  if (odfv) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (size_t r = 0; r < n; r++) {
      event[r] = created[r] = (struct ldr_ts){now.tv_sec, (int32_t)now.tv_nsec};
      has_event[r] = has_created[r] = 1;
    }
  } else {
    const char *ts =
        v->source && v->source->timestamp_field[0] ? v->source->timestamp_field : "event_timestamp";
    tcol = column_for(g, v, ts);
    if (tcol < 0) tcol = find(g, "event_timestamp"); /* what Feast's remote store sends */
    if (tcol < 0)
      return ldr_err_set(g->err, LDR_INVALID,
                         "%s: missing column '%s', the event timestamp of feature view '%s'",
                         f->field, ts, v->name);
    if (v->source && v->source->created_column[0])
      ccol = column_for(g, v, v->source->created_column);
    if (ccol < 0) ccol = find(g, "created");
    rc = timestamps(g, tcol, 1, event, has_event);
    if (rc == LDR_OK) rc = timestamps(g, ccol, 0, created, has_created);
    if (rc != LDR_OK) return rc;
  }
  for (size_t r = 0; r < n; r++) {
    rows[r].event_ts = event[r];
    rows[r].has_created = has_created[r];
    rows[r].created_ts = created[r];
  }
  const struct ldr_write_names *names = names_of(g, v, fcols, tcol, ccol);
  if (names == NULL) return no_memory(g->err);
  g->writes[g->n_writes++] = (struct ldr_write){table, rows, n, names};
  return LDR_OK;
}

static enum ldr_rc begin(struct ingest *g, const struct ldr_ingest_env *env,
                         const struct ldr_frame *f, size_t max_views, struct ldr_err *err) {
  memset(g, 0, sizeof *g);
  g->env = env;
  g->f = f;
  g->err = err;
  g->cols = ldr_arena_calloc(env->arena, f->n_cols + 1, sizeof *g->cols);
  g->writes = ldr_arena_calloc(env->arena, max_views + 1, sizeof *g->writes);
  if (g->cols == NULL || g->writes == NULL) return no_memory(err);
  for (size_t i = 0; i < f->n_cols; i++) g->cols[i] = (struct named){f->names[i], i};
  qsort(g->cols, f->n_cols, sizeof *g->cols, by_name);
  return LDR_OK;
}

/* Writes what was prepared: one backend write, one transaction. */
static enum ldr_rc commit(struct ingest *g, const char *what, struct ldr_ingest_result *out) {
  const struct ldr_ingest_env *env = g->env;
  if (env->cfg->read_only)
    return ldr_err_set(g->err, LDR_FAILED_PRECONDITION,
                       "%s: this larder serves reads only (larder.read_only: true)", what);
  if (g->n_writes == 0) return LDR_OK;
  out->wrote = 1;
  out->write_start_ns = ldr_now_ns();
  enum ldr_rc rc =
      env->backend->ops->write(env->backend, g->writes, g->n_writes, env->arena, g->err);
  if (rc != LDR_OK) return rc;
  out->views_written = g->n_writes;
  for (size_t i = 0; i < g->n_writes; i++) out->rows_written += g->writes[i].n_rows;
  return LDR_OK;
}

enum ldr_rc ldr_ingest_check_to(const char *to, int grpc, struct ldr_err *err) {
  if (!strcmp(to, "online") || (grpc && to[0] == '\0')) return LDR_OK;
  if (!strcmp(to, "offline") || !strcmp(to, "online_and_offline"))
    return ldr_err_set(err, LDR_INVALID,
                       "to=%s: larder has no offline store; push with to=online, and write the "
                       "offline store with Feast",
                       to);
  return ldr_err_set(err, LDR_INVALID,
                     "to=%.60s is not a supported push format. Please specify one of these "
                     "['online', 'offline', 'online_and_offline'].",
                     to);
}

enum ldr_rc ldr_ingest_push(const struct ldr_ingest_env *env, const struct ldr_frame *f,
                            const char *source, struct ldr_ingest_result *out,
                            struct ldr_err *err) {
  memset(out, 0, sizeof *out);
  const struct ldr_registry *reg = env->reg;
  size_t targets = 0;
  for (size_t i = 0; i < reg->n_views; i++) {
    const struct ldr_view *v = &reg->views[i];
    if (v->kind == LDR_VIEW_ON_DEMAND || v->source == NULL || v->source->push_source == NULL ||
        strcmp(v->source->push_source, source))
      continue;
    /* Rows keyed without the view's join keys could never be read: the whole
     * push is refused, before anything is written. */
    const char *why = v->unservable;
    if (why != NULL)
      return ldr_err_set(
          err, LDR_FAILED_PRECONDITION,
          "push source '%.100s' feeds feature view '%s', which cannot be written: %s", source,
          v->name, why);
    targets++;
  }
  if (targets == 0) {
    out->fault = LDR_INGEST_NO_PUSH_SOURCE;
    return ldr_err_set(err, LDR_INVALID, "Unable to find push source '%.100s'.", source);
  }
  struct ingest g;
  enum ldr_rc rc = begin(&g, env, f, targets, err);
  for (size_t i = 0; rc == LDR_OK && i < reg->n_views; i++) {
    const struct ldr_view *v = &reg->views[i];
    if (v->kind != LDR_VIEW_ON_DEMAND && v->source && v->source->push_source &&
        !strcmp(v->source->push_source, source))
      rc = prepare(&g, v, 0);
  }
  return rc == LDR_OK ? commit(&g, "push", out) : rc;
}

enum ldr_rc ldr_ingest_write(const struct ldr_ingest_env *env, const struct ldr_frame *f,
                             const char *view, int transform_on_write,
                             struct ldr_ingest_result *out, struct ldr_err *err) {
  memset(out, 0, sizeof *out);
  const struct ldr_view *v = ldr_registry_view(env->reg, view, strlen(view));
  if (v == NULL || v->kind == LDR_VIEW_LABEL) {
    out->fault = LDR_INGEST_NO_VIEW;
    return ldr_err_set(err, LDR_NOT_FOUND, "Can't recognize feast object with a name %.100s", view);
  }
  int odfv = v->kind == LDR_VIEW_ON_DEMAND;
  if (odfv && v->unservable_computed)
    return ldr_err_set(err, LDR_FAILED_PRECONDITION,
                       "feature_view_name: '%s' is an on-demand feature view computed at request "
                       "time; it is not stored online",
                       v->name);
  if (odfv && transform_on_write) {
    out->fault = LDR_INGEST_TRANSFORM;
    return ldr_err_set(err, LDR_INVALID,
                       "transform_on_write: larder runs no transformations; send the transformed "
                       "columns of on-demand feature view '%s' with transform_on_write: false",
                       v->name);
  }
  if (v->unservable != NULL)
    return ldr_err_set(err, LDR_FAILED_PRECONDITION,
                       "feature_view_name: '%s' cannot be written: %s", v->name, v->unservable);
  struct ingest g;
  enum ldr_rc rc = begin(&g, env, f, 1, err);
  if (rc == LDR_OK) rc = prepare(&g, v, odfv);
  return rc == LDR_OK ? commit(&g, "write-to-online-store", out) : rc;
}

/* ---- ISO 8601, as pandas reads it */

static int digits(const char *s, size_t n, size_t at, size_t count, int *out) {
  if (at + count > n) return -1;
  int v = 0;
  for (size_t i = 0; i < count; i++) {
    if (s[at + i] < '0' || s[at + i] > '9') return -1;
    v = v * 10 + (s[at + i] - '0');
  }
  *out = v;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

int ldr_parse_iso8601(const char *s, size_t n, struct ldr_ts *out) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  int32_t ns = 0;
  if (digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
      digits(s, n, 8, 2, &d))
    return -1;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return -1;
  size_t i = 10;
  if (i < n && (s[i] == 'T' || s[i] == ' ')) {
    if (digits(s, n, i + 1, 2, &h) || i + 3 >= n || s[i + 3] != ':' || digits(s, n, i + 4, 2, &mi))
      return -1;
    i += 6;
    if (i < n && s[i] == ':') {
      if (digits(s, n, i + 1, 2, &sec)) return -1;
      i += 3;
      if (i < n && (s[i] == '.' || s[i] == ',')) {
        size_t k = 0;
        int32_t scale = 100000000;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
          if (k >= 9) return -1;
          ns += (s[i] - '0') * scale;
          scale /= 10;
        }
        if (k == 0) return -1;
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return -1;
  }
  int offset = 0;
  if (i < n && s[i] == 'Z') {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
    if (digits(s, n, i + 1, 2, &oh)) return -1;
    i += 3;
    int colon = i < n && s[i] == ':';
    i += (size_t)colon;
    if (i < n || colon) { /* "+01:" needs its minutes */
      if (digits(s, n, i, 2, &om)) return -1;
      i += 2;
    }
    if (oh > 23 || om > 59) return -1;
    offset = sign * (oh * 3600 + om * 60);
  }
  if (i != n) return -1;
  int64_t t =
      days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  if (t < LDR_TS_MIN_SECONDS || t > LDR_TS_MAX_SECONDS) return -1;
  out->s = t;
  out->ns = ns;
  return 0;
}
