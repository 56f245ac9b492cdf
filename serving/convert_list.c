/*
 * JSON arrays and objects as Feast Values (HTTP.md §5): lists and sets of
 * every scalar type (sets deduplicated in n log n, first occurrence kept),
 * maps and structs, lists of maps, JSON lists, lists of lists, and values of
 * no declared type, whose kind is inferred from the JSON.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serving/convert_int.h"

/* ---- inferred values (map entries, untyped) */

/* A map of the object's members; a repeated key is one entry, with its last
 * value (Python's dict, which Feast converts). */
enum ldr_rc ldr_cv_make_map(struct conv *c, const struct ldr_json *obj, Feast__Types__Map **out) {
  Feast__Types__Map *m = ldr_arena_alloc(c->a, sizeof *m);
  Feast__Types__Map__ValEntry **entries = ldr_arena_alloc(c->a, (obj->n + 1) * sizeof *entries);
  size_t *members = obj->n > 1 ? ldr_json_members(obj, c->a) : NULL;
  if (m == NULL || entries == NULL || (obj->n > 1 && members == NULL))
    return ldr_cv_no_memory(c->err);
  feast__types__map__init(m);
  size_t n = 0;
  for (size_t i = 0; i < obj->n; i++) {
    size_t from = members ? members[i] : i;
    if (from == SIZE_MAX) continue;
    Feast__Types__Map__ValEntry *e = ldr_arena_alloc(c->a, sizeof *e);
    Feast__Types__Value *v = ldr_cv_new_value(c);
    if (e == NULL || v == NULL) return ldr_cv_no_memory(c->err);
    feast__types__map__val_entry__init(e);
    if (memchr(obj->keys[i].s, 0, obj->keys[i].len) != NULL)
      return ldr_err_set(c->err, LDR_INVALID, "a map key must not hold a NUL character (\\u0000)");
    e->key = (char *)obj->keys[i].s;
    e->value = v;
    enum ldr_rc rc = ldr_cv_inferred(c, &obj->items[from], v);
    if (rc != LDR_OK) {
      ldr_err_prefix(c->err, "[%.60s]: ", obj->keys[i].s);
      return rc;
    }
    entries[n++] = e;
  }
  m->n_val = n;
  m->val = entries;
  *out = m;
  return LDR_OK;
}

/* An object, or a string holding one (Feast's remote store sends maps as JSON text). */
enum ldr_rc ldr_cv_map_of(struct conv *c, const struct ldr_json *j, int type,
                          Feast__Types__Map **out) {
  struct ldr_json *parsed = NULL;
  if (j->type == LDR_JSON_STRING) {
    enum ldr_rc rc = ldr_cv_nested(c, j, 1, &parsed);
    if (rc != LDR_OK) return rc;
    j = parsed;
  }
  if (j->type != LDR_JSON_OBJECT) return ldr_cv_refuse(c->err, j, type);
  return ldr_cv_make_map(c, j, out);
}

enum ldr_rc ldr_cv_map_list(struct conv *c, const struct ldr_json *j, int type,
                            Feast__Types__MapList **out) {
  if (j->type != LDR_JSON_ARRAY) return ldr_cv_refuse(c->err, j, type);
  Feast__Types__MapList *l = ldr_arena_alloc(c->a, sizeof *l);
  Feast__Types__Map **maps = ldr_arena_alloc(c->a, (j->n + 1) * sizeof *maps);
  if (l == NULL || maps == NULL) return ldr_cv_no_memory(c->err);
  feast__types__map_list__init(l);
  for (size_t i = 0; i < j->n; i++) {
    enum ldr_rc rc;
    if (j->items[i].type == LDR_JSON_NULL) {
      maps[i] = ldr_arena_alloc(c->a, sizeof **maps);
      if (maps[i] == NULL) return ldr_cv_no_memory(c->err);
      feast__types__map__init(maps[i]);
      continue;
    }
    rc = ldr_cv_map_of(c, &j->items[i], type, &maps[i]);
    if (rc != LDR_OK) {
      ldr_err_prefix(c->err, "[%zu]: ", i);
      return rc;
    }
  }
  l->n_val = j->n;
  l->val = maps;
  *out = l;
  return LDR_OK;
}

/* The list kind an array's elements share (REGISTRY-free inference), or -1. */
static int list_kind(const struct ldr_json *a) {
  int ints = 1, nums = 1, strs = 1, bools = 1, objs = 1, arrs = 1;
  for (size_t i = 0; i < a->n; i++) {
    const struct ldr_json *e = &a->items[i];
    int is_num = e->type == LDR_JSON_NUMBER;
    ints &= is_num && !ldr_json_has_fraction(e);
    nums &= is_num;
    strs &= e->type == LDR_JSON_STRING;
    bools &= e->type == LDR_JSON_TRUE || e->type == LDR_JSON_FALSE;
    objs &= e->type == LDR_JSON_OBJECT;
    arrs &= e->type == LDR_JSON_ARRAY;
  }
  return ints    ? T_INT64_LIST
         : nums  ? T_DOUBLE_LIST
         : strs  ? T_STRING_LIST
         : bools ? T_BOOL_LIST
         : objs  ? T_MAP_LIST
         : arrs  ? T_VALUE_LIST
                 : -1;
}

/* An array whose kind is inferred: a list Value, or the empty Value when empty. */
static enum ldr_rc inferred_list(struct conv *c, const struct ldr_json *j, Feast__Types__Value *v) {
  if (j->n == 0) return LDR_OK;
  int t = list_kind(j);
  if (t < 0)
    return ldr_err_set(c->err, LDR_INVALID,
                       "an array of mixed kinds (or with null) has no list type");
  return ldr_cv_typed(c, j, t, v);
}

enum ldr_rc ldr_cv_inferred(struct conv *c, const struct ldr_json *j, Feast__Types__Value *v) {
  switch (j->type) {
  case LDR_JSON_NULL:
    return LDR_OK;
  case LDR_JSON_TRUE:
  case LDR_JSON_FALSE:
    return ldr_cv_scalar(c, j, T_BOOL, v);
  case LDR_JSON_STRING:
    return ldr_cv_scalar(c, j, T_STRING, v);
  case LDR_JSON_NUMBER:
    return ldr_cv_scalar(c, j, ldr_json_has_fraction(j) ? T_DOUBLE : T_INT64, v);
  case LDR_JSON_OBJECT:
    v->val_case = FEAST__TYPES__VALUE__VAL_MAP_VAL;
    return ldr_cv_make_map(c, j, &v->map_val);
  case LDR_JSON_ARRAY:
    return inferred_list(c, j, v);
  }
  return LDR_OK;
}

/* ---- lists and sets */

/* The scalar type of a list or set type, or 0. */
int ldr_cv_element_type(int type) {
  switch (type) {
  case T_BYTES_LIST:
  case T_BYTES_SET:
    return T_BYTES;
  case T_STRING_LIST:
  case T_STRING_SET:
    return T_STRING;
  case T_INT32_LIST:
  case T_INT32_SET:
    return T_INT32;
  case T_INT64_LIST:
  case T_INT64_SET:
    return T_INT64;
  case T_DOUBLE_LIST:
  case T_DOUBLE_SET:
    return T_DOUBLE;
  case T_FLOAT_LIST:
  case T_FLOAT_SET:
    return T_FLOAT;
  case T_BOOL_LIST:
  case T_BOOL_SET:
    return T_BOOL;
  case T_UNIX_TIMESTAMP_LIST:
  case T_UNIX_TIMESTAMP_SET:
    return T_UNIX_TIMESTAMP;
  case T_UUID_LIST:
  case T_UUID_SET:
    return T_UUID;
  case T_TIME_UUID_LIST:
  case T_TIME_UUID_SET:
    return T_TIME_UUID;
  case T_DECIMAL_LIST:
  case T_DECIMAL_SET:
    return T_DECIMAL;
  default:
    return 0;
  }
}

static int is_set(int type) {
  return (type >= T_BYTES_SET && type <= T_UNIX_TIMESTAMP_SET) || type == T_UUID_SET ||
         type == T_TIME_UUID_SET || type == T_DECIMAL_SET;
}

/* One element of a list, converted: the zero of its type for null. */
struct elem {
  Feast__Types__Value v;
  size_t idx;
};

static int elem_cmp(const void *x, const void *y) {
  const struct elem *a = x, *b = y;
  const Feast__Types__Value *p = &a->v, *q = &b->v;
  int c = 0;
  switch (p->val_case) {
  case FEAST__TYPES__VALUE__VAL_BYTES_VAL: {
    size_t n = p->bytes_val.len < q->bytes_val.len ? p->bytes_val.len : q->bytes_val.len;
    c = n ? memcmp(p->bytes_val.data, q->bytes_val.data, n) : 0;
    if (c == 0) c = (p->bytes_val.len > q->bytes_val.len) - (p->bytes_val.len < q->bytes_val.len);
    break;
  }
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
  case FEAST__TYPES__VALUE__VAL_UUID_VAL:
  case FEAST__TYPES__VALUE__VAL_TIME_UUID_VAL:
  case FEAST__TYPES__VALUE__VAL_DECIMAL_VAL:
    c = strcmp(p->string_val, q->string_val); /* one union member for all strings */
    break;
  case FEAST__TYPES__VALUE__VAL_INT32_VAL:
    c = (p->int32_val > q->int32_val) - (p->int32_val < q->int32_val);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
    c = (p->int64_val > q->int64_val) - (p->int64_val < q->int64_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
    /* NaN sorts last and is never a duplicate (Python's set keeps each NaN object). */
    if (isnan(p->double_val) || isnan(q->double_val))
      c = isnan(p->double_val) - isnan(q->double_val);
    else
      c = (p->double_val > q->double_val) - (p->double_val < q->double_val);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
    if (isnan(p->float_val) || isnan(q->float_val))
      c = isnan(p->float_val) - isnan(q->float_val);
    else
      c = (p->float_val > q->float_val) - (p->float_val < q->float_val);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
    c = (int)p->bool_val - (int)q->bool_val;
    break;
  default:
    break;
  }
  return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int elem_equal(const struct elem *a, const struct elem *b) {
  struct elem x = *a, y = *b;
  x.idx = y.idx = 0;
  if (a->v.val_case == FEAST__TYPES__VALUE__VAL_DOUBLE_VAL && isnan(a->v.double_val)) return 0;
  if (a->v.val_case == FEAST__TYPES__VALUE__VAL_FLOAT_VAL && isnan(a->v.float_val)) return 0;
  return elem_cmp(&x, &y) == 0;
}

/* The zero Feast gives a null element of a list (INT64_MIN for timestamps). */
static void zero_of(int et, Feast__Types__Value *v) {
  static char empty[] = "";
  switch (et) {
  case T_BYTES:
    v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
    break;
  case T_STRING:
  case T_UUID:
  case T_TIME_UUID:
  case T_DECIMAL:
    v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    v->string_val = empty;
    break;
  case T_INT32:
    v->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
    break;
  case T_INT64:
    v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    break;
  case T_UNIX_TIMESTAMP:
    v->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
    v->unix_timestamp_val = INT64_MIN;
    break;
  case T_DOUBLE:
    v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
    break;
  case T_FLOAT:
    v->val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
    break;
  case T_BOOL:
    v->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
    break;
  }
}

/* Converts the elements of an array to scalars of `et`, sets deduplicated
 * keeping first occurrences in order (sorted copies: n log n). */
static enum ldr_rc elements(struct conv *c, const struct ldr_json *j, int et, int set,
                            struct elem **out, size_t *n_out) {
  struct elem *es = ldr_arena_calloc(c->a, j->n + 1, sizeof *es);
  if (es == NULL) return ldr_cv_no_memory(c->err);
  for (size_t i = 0; i < j->n; i++) {
    feast__types__value__init(&es[i].v);
    es[i].idx = i;
    const struct ldr_json *e = &j->items[i];
    enum ldr_rc rc = e->type == LDR_JSON_NULL ? (zero_of(et, &es[i].v), LDR_OK)
                                              : ldr_cv_scalar(c, e, et, &es[i].v);
    if (rc != LDR_OK) {
      ldr_err_prefix(c->err, "[%zu]: ", i);
      return rc;
    }
  }
  size_t n = j->n;
  if (set && n > 1) {
    struct elem *sorted = ldr_arena_alloc(c->a, n * sizeof *sorted);
    unsigned char *dup = ldr_arena_calloc(c->a, n, 1);
    if (sorted == NULL || dup == NULL) return ldr_cv_no_memory(c->err);
    memcpy(sorted, es, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, elem_cmp);
    for (size_t i = 1; i < n; i++)
      if (elem_equal(&sorted[i - 1], &sorted[i])) dup[sorted[i].idx] = 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (!dup[i]) es[k++] = es[i];
    n = k;
  }
  *out = es;
  *n_out = n;
  return LDR_OK;
}

/* Fills the list (or set) member of `v` for `type` from converted elements. */
static enum ldr_rc fill_list(struct conv *c, int type, const struct elem *es, size_t n,
                             Feast__Types__Value *v) {
  int et = ldr_cv_element_type(type);
  /* Every list message of Value.proto is { repeated T val = 1 }: one layout
   * per element type, whichever list or set it is. */
  void *msg = NULL;
  switch (et) {
  case T_BYTES: {
    Feast__Types__BytesList *l = ldr_arena_alloc(c->a, sizeof *l);
    ProtobufCBinaryData *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__bytes_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.bytes_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_STRING:
  case T_UUID:
  case T_TIME_UUID:
  case T_DECIMAL: {
    Feast__Types__StringList *l = ldr_arena_alloc(c->a, sizeof *l);
    char **val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__string_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.string_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_INT32: {
    Feast__Types__Int32List *l = ldr_arena_alloc(c->a, sizeof *l);
    int32_t *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__int32_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.int32_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_INT64:
  case T_UNIX_TIMESTAMP: {
    Feast__Types__Int64List *l = ldr_arena_alloc(c->a, sizeof *l);
    int64_t *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__int64_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.int64_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_DOUBLE: {
    Feast__Types__DoubleList *l = ldr_arena_alloc(c->a, sizeof *l);
    double *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__double_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.double_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_FLOAT: {
    Feast__Types__FloatList *l = ldr_arena_alloc(c->a, sizeof *l);
    float *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__float_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.float_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  case T_BOOL: {
    Feast__Types__BoolList *l = ldr_arena_alloc(c->a, sizeof *l);
    protobuf_c_boolean *val = ldr_arena_alloc(c->a, (n + 1) * sizeof *val);
    if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
    feast__types__bool_list__init(l);
    for (size_t i = 0; i < n; i++) val[i] = es[i].v.bool_val;
    l->n_val = n;
    l->val = val;
    msg = l;
    break;
  }
  default:
    return ldr_err_set(c->err, LDR_INVALID, "%s values cannot be written from JSON",
                       ldr_value_type_name(type));
  }
  /* The list and set messages share their element type's layout, so the
   * pointer goes in the member the oneof's case names; the descriptor of
   * that member packs it. */
  v->val_case = (Feast__Types__Value__ValCase)type;
  switch (type) {
  case T_BYTES_LIST:
    v->bytes_list_val = msg;
    break;
  case T_STRING_LIST:
    v->string_list_val = msg;
    break;
  case T_INT32_LIST:
    v->int32_list_val = msg;
    break;
  case T_INT64_LIST:
    v->int64_list_val = msg;
    break;
  case T_DOUBLE_LIST:
    v->double_list_val = msg;
    break;
  case T_FLOAT_LIST:
    v->float_list_val = msg;
    break;
  case T_BOOL_LIST:
    v->bool_list_val = msg;
    break;
  case T_UNIX_TIMESTAMP_LIST:
    v->unix_timestamp_list_val = msg;
    break;
  case T_BYTES_SET:
    v->bytes_set_val = msg;
    break;
  case T_STRING_SET:
    v->string_set_val = msg;
    break;
  case T_INT32_SET:
    v->int32_set_val = msg;
    break;
  case T_INT64_SET:
    v->int64_set_val = msg;
    break;
  case T_DOUBLE_SET:
    v->double_set_val = msg;
    break;
  case T_FLOAT_SET:
    v->float_set_val = msg;
    break;
  case T_BOOL_SET:
    v->bool_set_val = msg;
    break;
  case T_UNIX_TIMESTAMP_SET:
    v->unix_timestamp_set_val = msg;
    break;
  case T_UUID_LIST:
    v->uuid_list_val = msg;
    break;
  case T_TIME_UUID_LIST:
    v->time_uuid_list_val = msg;
    break;
  case T_DECIMAL_LIST:
    v->decimal_list_val = msg;
    break;
  case T_UUID_SET:
    v->uuid_set_val = msg;
    break;
  case T_TIME_UUID_SET:
    v->time_uuid_set_val = msg;
    break;
  case T_DECIMAL_SET:
    v->decimal_set_val = msg;
    break;
  default:
    break;
  }
  return LDR_OK;
}

enum ldr_rc ldr_cv_json_list(struct conv *c, const struct ldr_json *j, Feast__Types__Value *v) {
  if (j->type != LDR_JSON_ARRAY) return ldr_cv_refuse(c->err, j, T_JSON_LIST);
  Feast__Types__StringList *l = ldr_arena_alloc(c->a, sizeof *l);
  char **val = ldr_arena_alloc(c->a, (j->n + 1) * sizeof *val);
  if (l == NULL || val == NULL) return ldr_cv_no_memory(c->err);
  feast__types__string_list__init(l);
  for (size_t i = 0; i < j->n; i++) {
    const struct ldr_json *e = &j->items[i];
    struct ldr_json *parsed;
    if (e->type == LDR_JSON_STRING) {
      enum ldr_rc rc = ldr_cv_nested(c, e, 0, &parsed);
      if (rc != LDR_OK) {
        ldr_err_prefix(c->err, "[%zu]: ", i);
        return rc;
      }
      val[i] = (char *)e->s;
    } else {
      val[i] = ldr_cv_dumps(c, e);
      if (val[i] == NULL) return ldr_cv_no_memory(c->err);
    }
  }
  l->n_val = j->n;
  l->val = val;
  v->val_case = FEAST__TYPES__VALUE__VAL_JSON_LIST_VAL;
  v->json_list_val = l;
  return LDR_OK;
}

/* VALUE_LIST / VALUE_SET: arrays of arrays, each an inferred list Value. */
enum ldr_rc ldr_cv_value_list(struct conv *c, const struct ldr_json *j, int type,
                              Feast__Types__Value *v) {
  if (j->type != LDR_JSON_ARRAY) return ldr_cv_refuse(c->err, j, type);
  Feast__Types__RepeatedValue *r = ldr_arena_alloc(c->a, sizeof *r);
  Feast__Types__Value **val = ldr_arena_alloc(c->a, (j->n + 1) * sizeof *val);
  if (r == NULL || val == NULL) return ldr_cv_no_memory(c->err);
  feast__types__repeated_value__init(r);
  for (size_t i = 0; i < j->n; i++) {
    const struct ldr_json *e = &j->items[i];
    val[i] = ldr_cv_new_value(c);
    if (val[i] == NULL) return ldr_cv_no_memory(c->err);
    if (e->type == LDR_JSON_NULL) continue;
    if (e->type != LDR_JSON_ARRAY) {
      enum ldr_rc rc = ldr_cv_refuse(c->err, e, type);
      ldr_err_prefix(c->err, "[%zu]: ", i);
      return rc;
    }
    enum ldr_rc rc = inferred_list(c, e, val[i]);
    if (rc != LDR_OK) {
      ldr_err_prefix(c->err, "[%zu]: ", i);
      return rc;
    }
  }
  r->n_val = j->n;
  r->val = val;
  v->val_case =
      type == T_VALUE_LIST ? FEAST__TYPES__VALUE__VAL_LIST_VAL : FEAST__TYPES__VALUE__VAL_SET_VAL;
  if (type == T_VALUE_LIST)
    v->list_val = r;
  else
    v->set_val = r;
  return LDR_OK;
}

/* A value of `type` from a non-null JSON value. */
/* A list or set type (ldr_cv_element_type nonzero) from a JSON array. */
enum ldr_rc ldr_cv_list(struct conv *c, const struct ldr_json *j, int type,
                        Feast__Types__Value *v) {
  if (j->type != LDR_JSON_ARRAY) return ldr_cv_refuse(c->err, j, type);
  struct elem *es = NULL;
  size_t n = 0;
  enum ldr_rc rc = elements(c, j, ldr_cv_element_type(type), is_set(type), &es, &n);
  return rc != LDR_OK ? rc : fill_list(c, type, es, n, v);
}
