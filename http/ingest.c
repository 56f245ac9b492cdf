/*
 * POST /push and POST /write-to-online-store (HTTP.md §6, §7): Feast's request
 * models checked as pydantic checks them, `df` read as pandas reads a dict of
 * columns, and the frame written by serving/ingest.c.
 */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"
#include "serving/convert.h"
#include "serving/ingest.h"

/* The JSON value of cell (col, row): an array's item, or a broadcast scalar. */
static const struct ldr_json *cell(const struct ldr_frame *f, size_t col, size_t row) {
  const struct ldr_json *df = f->data;
  const struct ldr_json *c = &df->items[col];
  return c->type == LDR_JSON_ARRAY ? &c->items[row] : c;
}

static int json_broadcast(const struct ldr_frame *f, size_t col) {
  const struct ldr_json *df = f->data;
  return df->items[col].type != LDR_JSON_ARRAY;
}

static enum ldr_rc json_cell(const struct ldr_frame *f, size_t col, size_t row, int type, int key,
                             struct ldr_arena *a, Feast__Types__Value **out, struct ldr_err *err) {
  const struct ldr_json *j = cell(f, col, row);
  *out = NULL;
  if (j->type == LDR_JSON_NULL && !key) return LDR_OK;
  return ldr_json_to_value(j, type, key, a, out, err);
}

/* pandas' to_datetime of a JSON cell: ISO text, or an integer of nanoseconds. */
static enum ldr_rc json_time(const struct ldr_frame *f, size_t col, size_t row, int *has,
                             struct ldr_ts *out, struct ldr_err *err) {
  const struct ldr_json *j = cell(f, col, row);
  int64_t ns;
  *has = 0;
  switch (j->type) {
  case LDR_JSON_NULL:
    return LDR_OK;
  case LDR_JSON_STRING:
    if (ldr_parse_iso8601(j->s, j->len, out) != 0)
      return ldr_err_set(err, LDR_INVALID,
                         "'%.60s' is not an ISO 8601 time such as 2024-05-01T12:00:00Z", j->s);
    *has = 1;
    return LDR_OK;
  case LDR_JSON_NUMBER:
    if (ldr_json_int64(j, &ns) == 1) {
      /* pandas' unit: nanoseconds since the epoch, floored. */
      int64_t s = ns / 1000000000, rem = ns % 1000000000;
      if (rem < 0) {
        rem += 1000000000;
        s--;
      }
      *out = (struct ldr_ts){s, (int32_t)rem};
      *has = 1;
      return LDR_OK;
    }
    return ldr_err_set(err, LDR_INVALID,
                       "%.40s: a time is ISO 8601 text or an integer of nanoseconds", j->s);
  default:
    return ldr_err_set(err, LDR_INVALID, "a JSON %s is not a time", ldr_json_type_name(j->type));
  }
}

static void wrong_type(struct ldr_http_exchange *x, const char *field, const char *want) {
  char loc[96], msg[96];
  snprintf(loc, sizeof loc, "[\"body\",\"%s\"]", field);
  snprintf(msg, sizeof msg, "Input should be %s", want);
  ldr_http_answer_422(x, "type_error", loc, msg);
}

/* A required string field; NULL when answered. */
static const char *string_field(struct ldr_http_exchange *x, const struct ldr_json *body,
                                const char *name) {
  const struct ldr_json *j = ldr_json_get(body, name);
  if (j == NULL) {
    char loc[96];
    snprintf(loc, sizeof loc, "[\"body\",\"%s\"]", name);
    ldr_http_answer_422(x, "missing", loc, "Field required");
    return NULL;
  }
  if (j->type != LDR_JSON_STRING) {
    wrong_type(x, name, "a valid string");
    return NULL;
  }
  return j->s;
}

/* An optional boolean with Feast's default; -1 when answered. */
static int bool_field(struct ldr_http_exchange *x, const struct ldr_json *body, const char *name,
                      int dflt) {
  const struct ldr_json *j = ldr_json_get(body, name);
  if (j == NULL) return dflt;
  if (j->type == LDR_JSON_TRUE || j->type == LDR_JSON_FALSE) return j->type == LDR_JSON_TRUE;
  wrong_type(x, name, "a valid boolean");
  return -1;
}

/* `df` as pandas reads a dict: arrays of one length, scalars broadcast. */
static int read_frame(struct ldr_http_exchange *x, const struct ldr_json *df, struct ldr_frame *f) {
  const struct ldr_config *cfg = x->t->env->cfg;
  /* A column given twice is the last one given (HTTP.md §1). */
  if ((df = ldr_json_unique(df, &x->t->arena)) == NULL) {
    ldr_http_answer_no_memory(x);
    return -1;
  }
  char msg[256];
  for (size_t i = 0; i < df->n; i++)
    if (ldr_http_nul_name(x, &df->keys[i], "df")) return -1;
  if (df->n > (size_t)cfg->max_columns) {
    snprintf(msg, sizeof msg, "df: %zu columns, more than larder.max_columns (%d)", (size_t)df->n,
             cfg->max_columns);
    ldr_http_answer_error(x, LDR_INVALID, "FeastError", msg);
    return -1;
  }
  long rows = -1;
  const char *first = NULL;
  for (size_t i = 0; i < df->n; i++) {
    const struct ldr_json *c = &df->items[i];
    if (c->type == LDR_JSON_OBJECT) {
      snprintf(msg, sizeof msg, "df.%.60s: a column is an array (or one value), not an object",
               df->keys[i].s);
      ldr_http_answer_error(x, LDR_INVALID, "FeastError", msg);
      return -1;
    }
    if (c->type != LDR_JSON_ARRAY) continue;
    if (c->n > (size_t)cfg->max_batch_rows) {
      snprintf(msg, sizeof msg, "df: %zu rows exceed larder.max_batch_rows (%ld)", (size_t)c->n,
               cfg->max_batch_rows);
      ldr_http_answer_error(x, LDR_EXHAUSTED, "FeastError", msg);
      return -1;
    }
    if (rows >= 0 && (size_t)rows != c->n) {
      snprintf(msg, sizeof msg,
               "df: column '%.60s' has %zu values, column '%.60s' has %ld; all arrays must be of "
               "the same length",
               df->keys[i].s, (size_t)c->n, first, rows);
      ldr_http_answer_error(x, LDR_INVALID, "FeastError", msg);
      return -1;
    }
    rows = (long)c->n;
    first = df->keys[i].s;
  }
  if (rows < 0 && df->n > 0) {
    ldr_http_answer_error(x, LDR_INVALID, "FeastError",
                          "df: If using all scalar values, you must pass an index (give the "
                          "columns as arrays)");
    return -1;
  }
  const char **names = ldr_arena_calloc(&x->t->arena, df->n + 1, sizeof *names);
  if (names == NULL) {
    ldr_http_answer_no_memory(x);
    return -1;
  }
  for (size_t i = 0; i < df->n; i++) names[i] = df->keys[i].s;
  *f = (struct ldr_frame){.n_rows = rows > 0 ? (size_t)rows : 0,
                          .n_cols = df->n,
                          .names = names,
                          .data = df,
                          .field = "df",
                          .value = json_cell,
                          .timestamp = json_time,
                          .broadcast = json_broadcast};
  return 0;
}

static void answer_ingest(struct ldr_http_exchange *x, enum ldr_rc rc,
                          const struct ldr_ingest_result *res, const char *msg) {
  switch (res->fault) {
  case LDR_INGEST_NO_PUSH_SOURCE:
    ldr_http_answer_feast(x, 422, "PushSourceNotFoundException", msg);
    return;
  case LDR_INGEST_NO_VIEW:
    ldr_http_answer_feast(x, 404, "FeastObjectNotFoundException", msg);
    return;
  case LDR_INGEST_TRANSFORM:
    ldr_http_answer_feast(x, 422, "FeastError", msg);
    return;
  default:
    ldr_http_answer_error(x, rc,
                          rc == LDR_NOT_FOUND ? "FeastObjectNotFoundException" : "FeastError", msg);
  }
}

/* What both requests have: an object with a name field (the push source, or
 * the view), `df`, Feast's two flags, and for a push `to`. Every field's type
 * is checked (422, in the order of Feast's model) before what `df` holds
 * (400): HTTP.md §1's order. NULL when answered. */
static const struct ldr_json *decode(struct ldr_http_exchange *x, const char *name_field,
                                     const char **name, struct ldr_frame *f, int *transform) {
  const struct ldr_json *body = ldr_http_body_json(x);
  if (body == NULL) return NULL;
  if (body->type != LDR_JSON_OBJECT) {
    ldr_http_answer_422(x, "type_error", "[\"body\"]", "Input should be a valid dictionary");
    return NULL;
  }
  if ((*name = string_field(x, body, name_field)) == NULL) return NULL;
  const struct ldr_json *df = ldr_json_get(body, "df");
  if (df == NULL) {
    ldr_http_answer_422(x, "missing", "[\"body\",\"df\"]", "Field required");
    return NULL;
  }
  if (df->type != LDR_JSON_OBJECT) {
    wrong_type(x, "df", "a valid dictionary");
    return NULL;
  }
  if (bool_field(x, body, "allow_registry_cache", 1) < 0) return NULL;
  const struct ldr_json *to = ldr_json_get(body, "to");
  if (!strcmp(name_field, "push_source_name") && to != NULL && to->type != LDR_JSON_STRING) {
    wrong_type(x, "to", "a valid string");
    return NULL;
  }
  *transform = bool_field(x, body, "transform_on_write", 1);
  if (*transform < 0 || ldr_http_nul_name(x, ldr_json_get(body, name_field), name_field) ||
      ldr_http_nul_name(x, to, "to") || read_frame(x, df, f) != 0)
    return NULL;
  return body;
}

/* Writes the frame (to the views of push source `source`, or to `view`)
 * with the registry held, and answers. */
static void ingest(struct ldr_http_exchange *x, const struct ldr_frame *f, const char *source,
                   const char *view, int transform) {
  const struct ldr_registry *reg = ldr_http_registry(x);
  if (reg == NULL) return;
  struct ldr_http_thread *t = x->t;
  ldr_http_deadline(x);
  struct ldr_ingest_env env = {t->env->cfg, reg, t->backend, &t->arena};
  struct ldr_ingest_result res;
  struct ldr_err err = {0};
  enum ldr_rc rc = source ? ldr_ingest_push(&env, f, source, &res, &err)
                          : ldr_ingest_write(&env, f, view, transform, &res, &err);
  if (rc != LDR_OK) {
    answer_ingest(x, rc, &res, err.msg);
  } else if (source) {
    x->status = 200; /* an empty body, as Feast's Response(status_code=200) */
  } else {
    x->status = 200; /* FastAPI renders the handler's None */
    x->content_type = "application/json";
    ldr_sb_puts(&x->out, "null");
  }
  ldr_registry_release(t->env->registry, t->reader);
}

void ldr_http_push(struct ldr_http_exchange *x) {
  const char *source;
  struct ldr_frame f;
  int transform;
  const struct ldr_json *body = decode(x, "push_source_name", &source, &f, &transform);
  if (body == NULL) return;
  const struct ldr_json *to = ldr_json_get(body, "to"); /* a string, if given (decode) */
  /* `to` before the push source (HTTP.md §6.5): offline targets are refused
   * whole, unknown ones are a bad request. */
  struct ldr_err err = {0};
  if (to != NULL && ldr_ingest_check_to(to->s, 0, &err) != LDR_OK) {
    int offline = !strcmp(to->s, "offline") || !strcmp(to->s, "online_and_offline");
    ldr_http_answer_feast(x, offline ? 422 : 400, "FeastError", err.msg);
    return;
  }
  ingest(x, &f, source, NULL, transform);
}

void ldr_http_write_to_online_store(struct ldr_http_exchange *x) {
  const char *view;
  struct ldr_frame f;
  int transform;
  if (decode(x, "feature_view_name", &view, &f, &transform) != NULL)
    ingest(x, &f, NULL, view, transform);
}
