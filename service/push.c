/*
 * GrpcFeatureServer's Push and WriteToOnlineStore (HTTP.md §8): a request is
 * a frame of one row, its cells text (`features`, each read as a JSON string
 * of the column's declared type) or Values (`typed_features`), written by
 * serving/ingest.c as HTTP's /push and /write-to-online-store are.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "feast/serving/GrpcServer.pb-c.h"
#include "service/service_int.h"
#include "service/wire.h"
#include "serving/convert.h"
#include "serving/ingest.h"

/* Both maps have this entry layout: key = 1, value = 2. */
struct text_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
};
struct typed_entry {
  ProtobufCMessage base;
  char *key;
  Feast__Types__Value *value;
};

struct grpc_frame {
  struct ldr_frame f;
  int typed;
  void *const *entries;
};

static enum ldr_rc text_value(const struct ldr_frame *f, size_t col, size_t row, int type, int key,
                              struct ldr_arena *a, Feast__Types__Value **out, struct ldr_err *err) {
  (void)row;
  const struct grpc_frame *g = (const struct grpc_frame *)f;
  const struct text_entry *e = g->entries[col];
  struct ldr_json j = {.type = LDR_JSON_STRING, .s = e->value, .len = strlen(e->value)};
  return ldr_json_to_value(&j, type, key, a, out, err);
}

/* The JSON value a typed Value stands for, for a Value of another kind than
 * the column's: scalars and lists of scalars; NULL when it stands for none. */
static struct ldr_json *as_json(const Feast__Types__Value *v, struct ldr_arena *a) {
  struct ldr_json *j = ldr_arena_calloc(a, 1, sizeof *j);
  if (j == NULL) return NULL;
  char buf[40];
  int n = -1;
  switch (v->val_case) {
  case FEAST__TYPES__VALUE__VAL__NOT_SET:
  case FEAST__TYPES__VALUE__VAL_NULL_VAL:
    j->type = LDR_JSON_NULL;
    return j;
  case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
    j->type = v->bool_val ? LDR_JSON_TRUE : LDR_JSON_FALSE;
    return j;
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    j->type = LDR_JSON_STRING;
    j->s = v->string_val;
    j->len = strlen(v->string_val);
    return j;
  case FEAST__TYPES__VALUE__VAL_INT32_VAL:
    n = snprintf(buf, sizeof buf, "%" PRId32, v->int32_val);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
    n = snprintf(buf, sizeof buf, "%" PRId64, v->int64_val);
    break;
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
    n = snprintf(buf, sizeof buf, "%" PRId64, v->unix_timestamp_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
  case FEAST__TYPES__VALUE__VAL_FLOAT_VAL: {
    double d = v->val_case == FEAST__TYPES__VALUE__VAL_DOUBLE_VAL ? v->double_val : v->float_val;
    if (isnan(d)) { /* pandas' missing value: Feast writes it as null (HTTP.md §5) */
      j->type = LDR_JSON_NULL;
      return j;
    }
    /* %.17g reads back exactly; the exponent or point marks it a number with a fraction.
     * A whole number within int64's range is written out in full, so that an
     * integer column gets the double's own value (2^60, not its 17 digits then
     * zeros). An infinity is the JSON number past a double's range, as larder
     * reads 1e400. */
    if (isinf(d))
      n = snprintf(buf, sizeof buf, "%s", d < 0 ? "-1e999" : "1e999");
    else if (d == trunc(d) && fabs(d) <= 0x1p63) /* 2^63 itself: refused as past int64 */
      n = snprintf(buf, sizeof buf, "%.1f", d);
    else
      n = snprintf(buf, sizeof buf, "%.17g", d);
    if (n > 0 && strpbrk(buf, ".eEn") == NULL && n + 2 < (int)sizeof buf) {
      buf[n++] = '.';
      buf[n++] = '0';
      buf[n] = '\0';
    }
    break;
  }
  default: {
    /* Lists of scalars: an array of the elements' JSON. */
    size_t count = 0;
    const void *vals = NULL;
    int kind = 0; /* 1 int64, 2 int32, 3 double, 4 float, 5 bool, 6 string */
    switch (v->val_case) {
    case FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL:
      count = v->int64_list_val->n_val;
      vals = v->int64_list_val->val;
      kind = 1;
      break;
    case FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL:
      count = v->int32_list_val->n_val;
      vals = v->int32_list_val->val;
      kind = 2;
      break;
    case FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL:
      count = v->double_list_val->n_val;
      vals = v->double_list_val->val;
      kind = 3;
      break;
    case FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL:
      count = v->float_list_val->n_val;
      vals = v->float_list_val->val;
      kind = 4;
      break;
    case FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL:
      count = v->bool_list_val->n_val;
      vals = v->bool_list_val->val;
      kind = 5;
      break;
    case FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL:
      count = v->string_list_val->n_val;
      vals = v->string_list_val->val;
      kind = 6;
      break;
    default:
      return NULL;
    }
    j->type = LDR_JSON_ARRAY;
    j->n = count;
    j->items = ldr_arena_calloc(a, count + 1, sizeof *j->items);
    if (j->items == NULL) return NULL;
    for (size_t i = 0; i < count; i++) {
      Feast__Types__Value e = FEAST__TYPES__VALUE__INIT;
      switch (kind) {
      case 1:
        e.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
        e.int64_val = ((const int64_t *)vals)[i];
        break;
      case 2:
        e.val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
        e.int32_val = ((const int32_t *)vals)[i];
        break;
      case 3:
        e.val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
        e.double_val = ((const double *)vals)[i];
        break;
      case 4:
        e.val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
        e.float_val = ((const float *)vals)[i];
        break;
      case 5:
        e.val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
        e.bool_val = ((const protobuf_c_boolean *)vals)[i];
        break;
      default:
        e.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
        e.string_val = ((char *const *)vals)[i];
        break;
      }
      /* NaN in a list is an element, not pandas' missing value: a number a
       * float column reads as NaN, and an int column refuses. */
      if ((kind == 3 && isnan(e.double_val)) || (kind == 4 && isnan(e.float_val))) {
        j->items[i] = (struct ldr_json){.type = LDR_JSON_NUMBER, .s = "NaN", .len = 3};
        continue;
      }
      struct ldr_json *ej = as_json(&e, a);
      if (ej == NULL) return NULL;
      j->items[i] = *ej;
    }
    return j;
  }
  }
  if (n < 0) return NULL;
  j->type = LDR_JSON_NUMBER;
  j->s = ldr_arena_memdup(a, buf, (size_t)n);
  j->len = (size_t)n;
  return j->s ? j : NULL;
}

/* The Value member a declared type is stored in (ValueType and the oneof's
 * field numbers agree; bytes with a meaning are bytes). */
static int member_of(int type) {
  return type == LDR_TYPE_PDF_BYTES || type == LDR_TYPE_IMAGE_BYTES ? 1 : type;
}

static enum ldr_rc typed_value(const struct ldr_frame *f, size_t col, size_t row, int type, int key,
                               struct ldr_arena *a, Feast__Types__Value **out,
                               struct ldr_err *err) {
  (void)row;
  const struct grpc_frame *g = (const struct grpc_frame *)f;
  const struct typed_entry *e = g->entries[col];
  static Feast__Types__Value unset = FEAST__TYPES__VALUE__INIT;
  const Feast__Types__Value *v = e->value ? e->value : &unset;
  *out = NULL;
  /* A Value of the declared kind is written as it is. */
  if (type != 0 && (int)v->val_case == member_of(type)) {
    *out = (Feast__Types__Value *)v;
    return LDR_OK;
  }
  if (type == 0 && v->val_case != FEAST__TYPES__VALUE__VAL__NOT_SET &&
      v->val_case != FEAST__TYPES__VALUE__VAL_NULL_VAL) {
    *out = (Feast__Types__Value *)v;
    return LDR_OK;
  }
  struct ldr_json *j = as_json(v, a);
  if (j == NULL)
    return a->exhausted
               ? ldr_err_set(err, LDR_EXHAUSTED, "request: needs more memory than a call may use")
               : ldr_err_set(err, LDR_INVALID, "a %s Value cannot be written to a %s column",
                             ldr_value_type_name((int)v->val_case), ldr_value_type_name(type));
  if (j->type == LDR_JSON_NULL && !key) return LDR_OK;
  return ldr_json_to_value(j, type, key, a, out, err);
}

static enum ldr_rc text_time(const struct ldr_frame *f, size_t col, size_t row, int *has,
                             struct ldr_ts *out, struct ldr_err *err) {
  (void)row;
  const struct grpc_frame *g = (const struct grpc_frame *)f;
  const struct text_entry *e = g->entries[col];
  *has = 0;
  if (ldr_parse_iso8601(e->value, strlen(e->value), out) != 0)
    return ldr_err_set(err, LDR_INVALID,
                       "'%.60s' is not an ISO 8601 time such as 2024-05-01T12:00:00Z", e->value);
  *has = 1;
  return LDR_OK;
}

/* A typed timestamp: unix_timestamp_val seconds, string_val ISO text,
 * int64_val nanoseconds (HTTP.md §8). */
static enum ldr_rc typed_time(const struct ldr_frame *f, size_t col, size_t row, int *has,
                              struct ldr_ts *out, struct ldr_err *err) {
  (void)row;
  const struct grpc_frame *g = (const struct grpc_frame *)f;
  const struct typed_entry *e = g->entries[col];
  const Feast__Types__Value *v = e->value;
  *has = 0;
  if (v == NULL || v->val_case == FEAST__TYPES__VALUE__VAL__NOT_SET ||
      v->val_case == FEAST__TYPES__VALUE__VAL_NULL_VAL)
    return LDR_OK;
  switch (v->val_case) {
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
    *out = (struct ldr_ts){v->unix_timestamp_val, 0};
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL: {
    int64_t s = v->int64_val / 1000000000, rem = v->int64_val % 1000000000;
    if (rem < 0) {
      rem += 1000000000;
      s--;
    }
    *out = (struct ldr_ts){s, (int32_t)rem};
    break;
  }
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    if (ldr_parse_iso8601(v->string_val, strlen(v->string_val), out) != 0)
      return ldr_err_set(err, LDR_INVALID, "'%.60s' is not an ISO 8601 time", v->string_val);
    break;
  default:
    return ldr_err_set(err, LDR_INVALID,
                       "a time is a unix_timestamp_val (seconds), an int64_val (nanoseconds) or "
                       "a string_val (ISO 8601)");
  }
  *has = 1;
  return LDR_OK;
}

/* The one-row frame of a request's two maps. */
static enum ldr_rc frame_of(struct ldr_handler_ctx *c, size_t n_text, void **text, size_t n_typed,
                            void **typed, struct grpc_frame *g) {
  if (n_text > 0 && n_typed > 0)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "Only one of features or typed_features may be set, not both");
  size_t n = n_text ? n_text : n_typed;
  if (n > (size_t)c->cfg->max_columns)
    return ldr_err_set(&c->err, LDR_INVALID, "%s: %zu columns, more than larder.max_columns (%d)",
                       n_text ? "features" : "typed_features", n, c->cfg->max_columns);
  const char **names = ldr_arena_calloc(c->arena, n + 1, sizeof *names);
  if (names == NULL)
    return ldr_err_set(&c->err, LDR_EXHAUSTED, "request: needs more memory than a call may use");
  void **entries = n_text ? text : typed;
  for (size_t i = 0; i < n; i++)
    names[i] =
        n_text ? ((struct text_entry *)entries[i])->key : ((struct typed_entry *)entries[i])->key;
  g->typed = n_text == 0;
  g->entries = (void *const *)entries;
  g->f = (struct ldr_frame){.n_rows = n ? 1 : 0,
                            .n_cols = n,
                            .names = names,
                            .field = n_text ? "features" : "typed_features",
                            .value = g->typed ? typed_value : text_value,
                            .timestamp = g->typed ? typed_time : text_time};
  return LDR_OK;
}

static enum ldr_rc reply_status(struct ldr_handler_ctx *c) {
  /* PushResponse and WriteToOnlineStoreResponse: status = 1, true. */
  static const uint8_t ok[] = {0x08, 0x01};
  c->reply = grpc_slice_from_static_buffer(ok, sizeof ok);
  return LDR_OK;
}

/* Runs one ingest with the registry held; answers status: true. */
static enum ldr_rc ingest(struct ldr_handler_ctx *c, const struct grpc_frame *g, const char *push,
                          const char *view) {
  if (c->registry == NULL)
    return ldr_err_set(
        &c->err, LDR_FAILED_PRECONDITION, "%s",
        c->registry_why ? c->registry_why
        : c->cfg->registry_unsupported
            ? c->cfg->registry_unsupported
            : "no registry: GrpcFeatureServer needs `registry` in feature_store.yaml");
  const struct ldr_registry *reg = ldr_registry_acquire(c->registry, c->reader, &c->err);
  if (reg == NULL) return c->err.rc;
  struct ldr_ingest_env env = {c->cfg, reg, c->backend, c->arena};
  struct ldr_ingest_result res;
  enum ldr_rc rc = push ? ldr_ingest_push(&env, &g->f, push, &res, &c->err)
                        : ldr_ingest_write(&env, &g->f, view, 1, &res, &c->err);
  if (res.wrote) ldr_count_backend(c, res.write_start_ns, 0, rc == LDR_OK ? res.rows_written : 0);
  ldr_registry_release(c->registry, c->reader);
  return rc == LDR_OK ? reply_status(c) : rc;
}

enum ldr_rc ldr_grpc_push(struct ldr_handler_ctx *c) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(&push_request__descriptor, c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  if (scan.bad_field) {
    c->err = scan.field_err;
    return c->err.rc;
  }
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  PushRequest *q = push_request__unpack(&al, c->req_len, c->req);
  if (q == NULL) return ldr_undecodable(c, "PushRequest");
  struct grpc_frame g;
  rc = frame_of(c, q->n_features, (void **)q->features, q->n_typed_features,
                (void **)q->typed_features, &g);
  if (rc == LDR_OK) rc = ldr_ingest_check_to(q->to, 1, &c->err);
  if (rc != LDR_OK) return rc;
  return ingest(c, &g, q->stream_feature_view, NULL);
}

enum ldr_rc ldr_grpc_write_to_online_store(struct ldr_handler_ctx *c) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc =
      ldr_wire_scan(&write_to_online_store_request__descriptor, c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  if (scan.bad_field) {
    c->err = scan.field_err;
    return c->err.rc;
  }
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  WriteToOnlineStoreRequest *q = write_to_online_store_request__unpack(&al, c->req_len, c->req);
  if (q == NULL) return ldr_undecodable(c, "WriteToOnlineStoreRequest");
  struct grpc_frame g;
  rc = frame_of(c, q->n_features, (void **)q->features, q->n_typed_features,
                (void **)q->typed_features, &g);
  if (rc != LDR_OK) return rc;
  return ingest(c, &g, NULL, q->feature_view_name);
}
