/*
 * POST /get-online-features (HTTP.md §4): Feast's request model checked as
 * pydantic checks it (422), the request answered by serving/ as gRPC's is,
 * and the result table written as Feast's feature server writes it.
 */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"
#include "serving/convert.h"

/* A field of the wrong JSON type: FastAPI's 422. */
static void wrong_type(struct ldr_http_exchange *x, const char *field, const char *want) {
  char loc[96], msg[96];
  snprintf(loc, sizeof loc, "[\"body\",\"%s\"]", field);
  snprintf(msg, sizeof msg, "Input should be %s", want);
  ldr_http_answer_422(x, "type_error", loc, msg);
}

/* An optional boolean field: 0 or 1 in *out; -1 when answered (422). */
static int bool_field(struct ldr_http_exchange *x, const struct ldr_json *body, const char *name,
                      int *out) {
  const struct ldr_json *j = ldr_json_get(body, name);
  *out = 0;
  if (j == NULL) return 0;
  if (j->type != LDR_JSON_TRUE && j->type != LDR_JSON_FALSE) {
    wrong_type(x, name, "a valid boolean");
    return -1;
  }
  *out = j->type == LDR_JSON_TRUE;
  return 0;
}

/* An entity value of a join key, converted to the key's declared type. */
static enum ldr_rc json_key(const struct ldr_serving_column *col, size_t row, int type,
                            struct ldr_arena *a, const Feast__Types__Value **out,
                            struct ldr_err *err) {
  const struct ldr_json *values = col->data;
  Feast__Types__Value *v = NULL;
  enum ldr_rc rc = ldr_json_to_value(&values->items[row], type, 1, a, &v, err);
  *out = v;
  return rc;
}

/* The serving request of a body that fits Feast's model; -1 when answered. */
static int decode(struct ldr_http_exchange *x, const struct ldr_json *body,
                  struct ldr_serving_request *q, int *metadata) {
  const struct ldr_config *cfg = x->t->env->cfg;
  struct ldr_arena *a = &x->t->arena;
  if (body->type != LDR_JSON_OBJECT) {
    ldr_http_answer_422(x, "type_error", "[\"body\"]", "Input should be a valid dictionary");
    return -1;
  }
  const struct ldr_json *ents = ldr_json_get(body, "entities");
  if (ents == NULL) {
    ldr_http_answer_422(x, "missing", "[\"body\",\"entities\"]", "Field required");
    return -1;
  }
  /* A column given twice is the last one given (HTTP.md §1). */
  if ((ents = ldr_json_unique(ents, a)) == NULL) {
    ldr_http_answer_no_memory(x);
    return -1;
  }
  int ok = ents->type == LDR_JSON_OBJECT;
  for (size_t i = 0; ok && i < ents->n; i++) ok = ents->items[i].type == LDR_JSON_ARRAY;
  if (!ok) {
    wrong_type(x, "entities", "entities");
    return -1;
  }
  const struct ldr_json *fs = ldr_json_get(body, "features");
  ok = fs == NULL || fs->type == LDR_JSON_ARRAY;
  for (size_t i = 0; ok && fs != NULL && i < fs->n; i++) ok = fs->items[i].type == LDR_JSON_STRING;
  if (!ok) {
    wrong_type(x, "features", "a valid list of strings");
    return -1;
  }
  const struct ldr_json *svc = ldr_json_get(body, "feature_service");
  if (svc != NULL && svc->type != LDR_JSON_STRING && svc->type != LDR_JSON_NULL) {
    wrong_type(x, "feature_service", "a valid string");
    return -1;
  }
  if (bool_field(x, body, "full_feature_names", &q->full_feature_names) != 0 ||
      bool_field(x, body, "include_feature_view_version_metadata", metadata) != 0)
    return -1;
  for (size_t i = 0; i < ents->n; i++)
    if (ldr_http_nul_name(x, &ents->keys[i], "entities")) return -1;
  for (size_t i = 0; fs != NULL && i < fs->n; i++)
    if (ldr_http_nul_name(x, &fs->items[i], "features")) return -1;
  if (ldr_http_nul_name(x, svc, "feature_service")) return -1;
  /* Limits, as over gRPC. */
  if (ents->n > (size_t)cfg->max_columns) {
    char msg[128];
    snprintf(msg, sizeof msg, "entities: %zu columns, more than larder.max_columns (%d)",
             (size_t)ents->n, cfg->max_columns);
    ldr_http_answer_error(x, LDR_INVALID, "FeastError", msg);
    return -1;
  }
  for (size_t i = 0; i < ents->n; i++)
    if (ents->items[i].n > (size_t)cfg->max_batch_rows) {
      char msg[128];
      snprintf(msg, sizeof msg, "entities: %zu rows exceed larder.max_batch_rows (%ld)",
               (size_t)ents->items[i].n, cfg->max_batch_rows);
      ldr_http_answer_error(x, LDR_EXHAUSTED, "FeastError", msg);
      return -1;
    }
  struct ldr_serving_column *cols = ldr_arena_calloc(a, ents->n + 1, sizeof *cols);
  if (cols == NULL) {
    ldr_http_answer_no_memory(x);
    return -1;
  }
  for (size_t i = 0; i < ents->n; i++)
    cols[i] = (struct ldr_serving_column){ents->keys[i].s, ents->items[i].n, &ents->items[i]};
  q->entities = cols;
  q->n_entities = ents->n;
  q->value = json_key;
  if (svc != NULL && svc->type == LDR_JSON_STRING && svc->len > 0) {
    q->feature_service = svc->s;
  } else if (fs != NULL) {
    const char **refs = ldr_arena_calloc(a, fs->n + 1, sizeof *refs);
    if (refs == NULL) {
      ldr_http_answer_no_memory(x);
      return -1;
    }
    for (size_t i = 0; i < fs->n; i++) refs[i] = fs->items[i].s;
    q->features = refs;
    q->n_features = fs->n;
  }
  return 0;
}

/* Feast's exception class for a refused request (HTTP.md §2). */
static void answer_refusal(struct ldr_http_exchange *x, enum ldr_rc rc,
                           enum ldr_serving_fault fault, const char *msg) {
  switch (fault) {
  case LDR_SERVING_NO_VIEW:
    ldr_http_answer_error(x, LDR_NOT_FOUND, "FeatureViewNotFoundException", msg);
    return;
  case LDR_SERVING_NO_SERVICE:
    ldr_http_answer_error(x, LDR_NOT_FOUND, "FeatureServiceNotFoundException", msg);
    return;
  case LDR_SERVING_COLLISION:
    ldr_http_answer_error(x, LDR_INVALID, "FeatureNameCollisionError", msg);
    return;
  default:
    ldr_http_answer_error(x, rc,
                          rc == LDR_NOT_FOUND ? "FeastObjectNotFoundException" : "FeastError", msg);
  }
}

void ldr_http_get_online_features(struct ldr_http_exchange *x) {
  const struct ldr_json *body = ldr_http_body_json(x);
  if (body == NULL) return;
  struct ldr_serving_request q = {0};
  int metadata = 0;
  if (decode(x, body, &q, &metadata) != 0) return;
  const struct ldr_registry *reg = ldr_http_registry(x);
  if (reg == NULL) return;
  struct ldr_http_thread *t = x->t;
  ldr_http_deadline(x);
  struct ldr_serving_env env = {t->env->cfg, reg, t->backend, &t->arena};
  struct ldr_serving_result res;
  struct ldr_err err = {0};
  enum ldr_rc rc = ldr_serving_get(&env, &q, &res, &err);
  if (rc != LDR_OK) {
    answer_refusal(x, rc, res.fault, err.msg);
  } else {
    x->status = 200;
    x->content_type = "application/json";
    /* Rendering stops once the reply passes the limit: rows of a key given many
     * times, or cells that are all null, make far more JSON than request. */
    if (ldr_http_put_result(&x->out, &res, (size_t)t->env->cfg->max_message_bytes, &t->arena)) {
      char msg[160];
      snprintf(msg, sizeof msg, "entities: the reply passes larder.max_message_bytes (%ld bytes)",
               t->env->cfg->max_message_bytes);
      ldr_http_answer_error(x, LDR_EXHAUSTED, "FeastError", msg);
    }
  }
  (void)metadata; /* Feast's converter never writes feature_view_metadata (HTTP.md §4.1) */
  ldr_registry_release(t->env->registry, t->reader);
}
