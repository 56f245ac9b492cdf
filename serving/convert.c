/*
 * JSON → feast.types.Value by declared type (HTTP.md §4.2, §5). Each
 * declared type takes a few JSON kinds and refuses the rest: larder does not
 * make up a value Feast's Python would have coerced silently (a fraction
 * truncated, a boolean taken as an integer).
 */
#include "serving/convert_int.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/pyfloat.h"

/* ValueType numbers, as Value.proto declares them. */
const char *ldr_value_type_name(int type) {
  static const struct {
    int type;
    const char *name;
  } names[] = {{T_INVALID, "INVALID"},
               {T_BYTES, "BYTES"},
               {T_STRING, "STRING"},
               {T_INT32, "INT32"},
               {T_INT64, "INT64"},
               {T_DOUBLE, "DOUBLE"},
               {T_FLOAT, "FLOAT"},
               {T_BOOL, "BOOL"},
               {T_UNIX_TIMESTAMP, "UNIX_TIMESTAMP"},
               {T_BYTES_LIST, "BYTES_LIST"},
               {T_STRING_LIST, "STRING_LIST"},
               {T_INT32_LIST, "INT32_LIST"},
               {T_INT64_LIST, "INT64_LIST"},
               {T_DOUBLE_LIST, "DOUBLE_LIST"},
               {T_FLOAT_LIST, "FLOAT_LIST"},
               {T_BOOL_LIST, "BOOL_LIST"},
               {T_UNIX_TIMESTAMP_LIST, "UNIX_TIMESTAMP_LIST"},
               {T_NULL, "NULL"},
               {T_MAP, "MAP"},
               {T_MAP_LIST, "MAP_LIST"},
               {T_BYTES_SET, "BYTES_SET"},
               {T_STRING_SET, "STRING_SET"},
               {T_INT32_SET, "INT32_SET"},
               {T_INT64_SET, "INT64_SET"},
               {T_DOUBLE_SET, "DOUBLE_SET"},
               {T_FLOAT_SET, "FLOAT_SET"},
               {T_BOOL_SET, "BOOL_SET"},
               {T_UNIX_TIMESTAMP_SET, "UNIX_TIMESTAMP_SET"},
               {LDR_TYPE_PDF_BYTES, "PDF_BYTES"},
               {LDR_TYPE_IMAGE_BYTES, "IMAGE_BYTES"},
               {T_JSON, "JSON"},
               {T_JSON_LIST, "JSON_LIST"},
               {T_STRUCT, "STRUCT"},
               {T_STRUCT_LIST, "STRUCT_LIST"},
               {T_UUID, "UUID"},
               {T_TIME_UUID, "TIME_UUID"},
               {T_UUID_LIST, "UUID_LIST"},
               {T_TIME_UUID_LIST, "TIME_UUID_LIST"},
               {T_UUID_SET, "UUID_SET"},
               {T_TIME_UUID_SET, "TIME_UUID_SET"},
               {T_VALUE_LIST, "VALUE_LIST"},
               {T_VALUE_SET, "VALUE_SET"},
               {T_DECIMAL, "DECIMAL"},
               {T_DECIMAL_LIST, "DECIMAL_LIST"},
               {T_DECIMAL_SET, "DECIMAL_SET"},
               {T_SCALAR_MAP, "SCALAR_MAP"},
               {T_ZONED_TIMESTAMP, "ZONED_TIMESTAMP"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].type == type) return names[i].name;
  return "an unknown type";
}

/* What a JSON value is, in a message: "integer" and "number" apart. */
const char *ldr_cv_kind(const struct ldr_json *j) {
  switch (j->type) {
  case LDR_JSON_NUMBER:
    if (j->len == 3 && !memcmp(j->s, "NaN", 3)) return "NaN"; /* service/push.c's */
    return ldr_json_has_fraction(j) ? "number with a fraction" : "integer";
  case LDR_JSON_TRUE:
  case LDR_JSON_FALSE:
    return "boolean";
  default:
    return ldr_json_type_name(j->type);
  }
}

enum ldr_rc ldr_cv_refuse(struct ldr_err *err, const struct ldr_json *j, int type) {
  return ldr_err_set(err, LDR_INVALID, "a JSON %s cannot be a %s value", ldr_cv_kind(j),
                     ldr_value_type_name(type));
}

enum ldr_rc ldr_cv_no_memory(struct ldr_err *err) {
  return ldr_err_set(err, LDR_EXHAUSTED, "request: needs more memory than a call may use");
}

Feast__Types__Value *ldr_cv_new_value(struct conv *c) {
  Feast__Types__Value *v = ldr_arena_alloc(c->a, sizeof *v);
  if (v != NULL) feast__types__value__init(v);
  return v;
}

/* ---- scalars: each returns 1 when `j` converts, 0 when its kind does not,
 * -1 when it is of the kind but out of range or malformed. */

/* Optional sign and decimal digits, whole: Python's int() of the text. */
static int digits_int64(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == n) return 0;
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (limit - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

static int to_int64(const struct ldr_json *j, int64_t *out) {
  if (j->type == LDR_JSON_NUMBER) {
    int r = ldr_json_int64(j, out);
    if (r != 0) return r;
    return ldr_json_integral(j, out) ? 1 : -1;
  }
  if (j->type == LDR_JSON_STRING) {
    int r = digits_int64(j->s, j->len, out);
    return r;
  }
  return 0;
}

/* Python's float() of a text: decimal forms, "inf", "infinity", "nan". */
static int text_double(const char *s, size_t n, double *out) {
  char buf[64];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  const char *p = buf[0] == '+' || buf[0] == '-' ? buf + 1 : buf;
  if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity") || !strcasecmp(p, "nan")) {
    *out = !strcasecmp(p, "nan") ? NAN : buf[0] == '-' ? -INFINITY : INFINITY;
    return 1;
  }
  int digits = 0;
  for (const char *q = p; *q; q++) {
    if (*q >= '0' && *q <= '9')
      digits = 1;
    else if (*q != '.' && *q != 'e' && *q != 'E' && *q != '+' && *q != '-')
      return 0; /* no hex, no spaces, no "_" */
  }
  if (!digits) return 0;
  char *end;
  errno = 0;
  *out = strtod(buf, &end);
  return *end == '\0' ? 1 : 0;
}

static int to_double(const struct ldr_json *j, double *out) {
  if (j->type == LDR_JSON_NUMBER) {
    *out = ldr_json_double(j);
    return 1;
  }
  if (j->type == LDR_JSON_STRING) return text_double(j->s, j->len, out) ? 1 : -1;
  return 0;
}

static int to_bool(const struct ldr_json *j, int *out) {
  int64_t i;
  switch (j->type) {
  case LDR_JSON_TRUE:
  case LDR_JSON_FALSE:
    *out = j->type == LDR_JSON_TRUE;
    return 1;
  case LDR_JSON_NUMBER:
    if (ldr_json_int64(j, &i) != 1 || (i != 0 && i != 1)) return -1;
    *out = (int)i;
    return 1;
  case LDR_JSON_STRING:
    if (j->len == 4 && !strncasecmp(j->s, "true", 4))
      *out = 1;
    else if (j->len == 5 && !strncasecmp(j->s, "false", 5))
      *out = 0;
    else
      return -1;
    return 1;
  default:
    return 0;
  }
}

/* A string, or an integer as Python's str() writes it. */
static int to_text(struct conv *c, const struct ldr_json *j, const char **s, size_t *n) {
  int64_t i;
  if (j->type == LDR_JSON_STRING) {
    *s = j->s;
    *n = j->len;
    return 1;
  }
  if (j->type != LDR_JSON_NUMBER || ldr_json_has_fraction(j)) return 0;
  if (ldr_json_int64(j, &i) == 1) {
    char buf[24];
    int len = snprintf(buf, sizeof buf, "%lld", (long long)i);
    *s = ldr_arena_memdup(c->a, buf, (size_t)len + 1);
    *n = (size_t)len;
    return *s != NULL ? 1 : -2;
  }
  /* Beyond int64: Python's int has no bound, and its text is the literal's. */
  *s = j->s;
  *n = j->len;
  return 1;
}

static int to_bytes(struct conv *c, const struct ldr_json *j, ProtobufCBinaryData *out) {
  if (j->type != LDR_JSON_STRING) return 0;
  uint8_t *b;
  size_t n;
  if (ldr_base64_decode(j->s, j->len, c->a, &b, &n) != 0) return -1;
  out->data = b;
  out->len = n;
  return 1;
}

/* Why a value of the right kind was refused, for each scalar type. */
static enum ldr_rc out_of_range(struct conv *c, const struct ldr_json *j, int type) {
  switch (type) {
  case T_BYTES:
  case LDR_TYPE_PDF_BYTES:
  case LDR_TYPE_IMAGE_BYTES:
    return ldr_err_set(c->err, LDR_INVALID, "a BYTES value must be standard base64 with padding");
  case T_BOOL:
    return ldr_err_set(c->err, LDR_INVALID,
                       "a BOOL value is true, false, 0, 1, \"true\" or \"false\", not %.40s",
                       j->s ? j->s : ldr_cv_kind(j));
  case T_FLOAT:
  case T_DOUBLE:
    return ldr_err_set(c->err, LDR_INVALID, "'%.40s' is not a number for a %s value", j->s,
                       ldr_value_type_name(type));
  default:
    return ldr_err_set(c->err, LDR_INVALID, "%.40s%s is out of range for %s, or not an integer",
                       j->s ? j->s : "", j->type == LDR_JSON_STRING ? " (a string)" : "",
                       ldr_value_type_name(type));
  }
}

/* One scalar of `type` into `v` (the member of v's oneof for that type). */
enum ldr_rc ldr_cv_scalar(struct conv *c, const struct ldr_json *j, int type,
                          Feast__Types__Value *v) {
  int64_t i = 0;
  double d = 0;
  int b = 0, r = 0;
  const char *s = NULL;
  size_t n = 0;
  /* Text is kept as a C string (as gRPC's refuses it, serving/wire.c): a NUL
   * would end it early, another entity's key or a shorter value. */
  if (j->type == LDR_JSON_STRING && memchr(j->s, 0, j->len) != NULL &&
      (type == T_STRING || type == T_UUID || type == T_TIME_UUID || type == T_DECIMAL))
    return ldr_err_set(c->err, LDR_INVALID, "a %s value must not hold a NUL character (\\u0000)",
                       ldr_value_type_name(type));
  switch (type) {
  case T_INT32:
  case T_INT64:
  case T_UNIX_TIMESTAMP:
    r = to_int64(j, &i);
    if (r == 1 && type == T_INT32 && (i < INT32_MIN || i > INT32_MAX)) r = -1;
    if (r != 1) break;
    if (type == T_INT32) {
      v->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
      v->int32_val = (int32_t)i;
    } else if (type == T_INT64) {
      v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
      v->int64_val = i;
    } else {
      v->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
      v->unix_timestamp_val = i;
    }
    return LDR_OK;
  case T_DOUBLE:
  case T_FLOAT:
    r = to_double(j, &d);
    if (r != 1) break;
    if (type == T_DOUBLE) {
      v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
      v->double_val = d;
      return LDR_OK;
    }
    v->val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
    v->float_val = (float)d;
    if (isinf(v->float_val) && !isinf(d))
      return ldr_err_set(c->err, LDR_INVALID, "%.40s is beyond the range of a FLOAT value",
                         j->s ? j->s : "");
    return LDR_OK;
  case T_BOOL:
    r = to_bool(j, &b);
    if (r != 1) break;
    v->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
    v->bool_val = b;
    return LDR_OK;
  case T_STRING:
    r = to_text(c, j, &s, &n);
    if (r == -2) return ldr_cv_no_memory(c->err);
    if (r != 1) break;
    v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    v->string_val = (char *)s;
    return LDR_OK;
  case T_UUID:
  case T_TIME_UUID:
  case T_DECIMAL:
    if (j->type != LDR_JSON_STRING) break;
    v->val_case = type == T_UUID        ? FEAST__TYPES__VALUE__VAL_UUID_VAL
                  : type == T_TIME_UUID ? FEAST__TYPES__VALUE__VAL_TIME_UUID_VAL
                                        : FEAST__TYPES__VALUE__VAL_DECIMAL_VAL;
    *(type == T_UUID        ? &v->uuid_val
      : type == T_TIME_UUID ? &v->time_uuid_val
                            : &v->decimal_val) = (char *)j->s;
    return LDR_OK;
  case T_BYTES:
  case LDR_TYPE_PDF_BYTES:
  case LDR_TYPE_IMAGE_BYTES:
    r = to_bytes(c, j, &v->bytes_val);
    if (r != 1) break;
    v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
    return LDR_OK;
  default:
    break;
  }
  if (c->a->exhausted) return ldr_cv_no_memory(c->err);
  return r == 0 ? ldr_cv_refuse(c->err, j, type) : out_of_range(c, j, type);
}

/* ---- json.dumps */

static void dumps_string(struct ldr_sb *sb, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  ldr_sb_put(sb, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      ldr_sb_put(sb, e, 2);
      i++;
      continue;
    }
    if (ch >= 0x20 && ch < 0x7f) { /* Python escapes DEL too */
      ldr_sb_put(sb, (const char *)&s[i], 1);
      i++;
      continue;
    }
    const char *named = ch == '\n'   ? "\\n"
                        : ch == '\r' ? "\\r"
                        : ch == '\t' ? "\\t"
                        : ch == '\b' ? "\\b"
                        : ch == '\f' ? "\\f"
                                     : NULL;
    if (named != NULL) {
      ldr_sb_puts(sb, named);
      i++;
      continue;
    }
    /* A code point (the text is valid UTF-8: the parser checked), as \uXXXX. */
    uint32_t cp = ch;
    size_t len = 1;
    if (ch >= 0xf0) {
      cp = ch & 0x07;
      len = 4;
    } else if (ch >= 0xe0) {
      cp = ch & 0x0f;
      len = 3;
    } else if (ch >= 0xc0) {
      cp = ch & 0x1f;
      len = 2;
    }
    for (size_t k = 1; k < len && i + k < n; k++) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
    i += len;
    uint32_t units[2] = {cp, 0};
    size_t nu = 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units[0] = 0xd800 + (cp >> 10);
      units[1] = 0xdc00 + (cp & 0x3ff);
      nu = 2;
    }
    for (size_t u = 0; u < nu; u++) {
      char e[6] = {'\\',
                   'u',
                   hex[(units[u] >> 12) & 15],
                   hex[(units[u] >> 8) & 15],
                   hex[(units[u] >> 4) & 15],
                   hex[units[u] & 15]};
      ldr_sb_put(sb, e, 6);
    }
  }
  ldr_sb_put(sb, "\"", 1);
}

void ldr_json_dumps(struct ldr_sb *sb, const struct ldr_json *j) {
  switch (j->type) {
  case LDR_JSON_NULL:
    ldr_sb_puts(sb, "null");
    return;
  case LDR_JSON_TRUE:
    ldr_sb_puts(sb, "true");
    return;
  case LDR_JSON_FALSE:
    ldr_sb_puts(sb, "false");
    return;
  case LDR_JSON_STRING:
    dumps_string(sb, j->s, j->len);
    return;
  case LDR_JSON_NUMBER: {
    int64_t i;
    if (!ldr_json_has_fraction(j)) {
      /* An int: its digits, "-0" read as 0. */
      if (ldr_json_int64(j, &i) == 1)
        ldr_sb_printf(sb, "%lld", (long long)i);
      else
        ldr_sb_put(sb, j->s, j->len);
      return;
    }
    double d = ldr_json_double(j);
    if (isinf(d) || isnan(d)) { /* as Python's json.dumps writes them */
      ldr_sb_puts(sb, isnan(d) ? "NaN" : d < 0 ? "-Infinity" : "Infinity");
      return;
    }
    char buf[32];
    size_t n = ldr_format_double(d, buf);
    ldr_sb_put(sb, buf, n);
    return;
  }
  case LDR_JSON_ARRAY:
    ldr_sb_put(sb, "[", 1);
    for (size_t i = 0; i < j->n; i++) {
      if (i) ldr_sb_put(sb, ", ", 2);
      ldr_json_dumps(sb, &j->items[i]);
    }
    ldr_sb_put(sb, "]", 1);
    return;
  case LDR_JSON_OBJECT: {
    /* Python's dict: a repeated key in its first place, with its last value. */
    size_t *members = j->n > 1 ? ldr_json_members(j, NULL) : NULL;
    if (j->n > 1 && members == NULL) {
      sb->failed = 1;
      return;
    }
    ldr_sb_put(sb, "{", 1);
    for (size_t i = 0, k = 0; i < j->n; i++) {
      size_t from = members ? members[i] : i;
      if (from == SIZE_MAX) continue;
      if (k++) ldr_sb_put(sb, ", ", 2);
      dumps_string(sb, j->keys[i].s, j->keys[i].len);
      ldr_sb_put(sb, ": ", 2);
      ldr_json_dumps(sb, &j->items[from]);
    }
    ldr_sb_put(sb, "}", 1);
    free(members);
    return;
  }
  }
}

/* json.dumps text of `j` in the arena. */
char *ldr_cv_dumps(struct conv *c, const struct ldr_json *j) {
  struct ldr_sb sb = {0};
  ldr_json_dumps(&sb, j);
  const char *s = ldr_sb_str(&sb);
  char *out = s ? ldr_arena_memdup(c->a, s, sb.len + 1) : NULL;
  ldr_sb_free(&sb);
  return out;
}

/* A string that must hold JSON text (of an object, when `object`): parsed. */
enum ldr_rc ldr_cv_nested(struct conv *c, const struct ldr_json *j, int object,
                          struct ldr_json **out) {
  struct ldr_err inner = {0};
  enum ldr_rc rc = ldr_json_parse(j->s, j->len, c->a, LDR_CV_NESTED_DEPTH, out, NULL, &inner);
  if (rc == LDR_EXHAUSTED) return ldr_cv_no_memory(c->err);
  if (rc != LDR_OK)
    return ldr_err_set(c->err, LDR_INVALID, "the string is not JSON text (%s)",
                       inner.msg + (strncmp(inner.msg, "body: ", 6) ? 0 : 6));
  if (object && (*out)->type != LDR_JSON_OBJECT)
    return ldr_err_set(c->err, LDR_INVALID, "the string holds a JSON %s, not an object",
                       ldr_cv_kind(*out));
  return LDR_OK;
}

enum ldr_rc ldr_cv_typed(struct conv *c, const struct ldr_json *j, int type,
                         Feast__Types__Value *v) {
  if (ldr_cv_element_type(type) != 0) return ldr_cv_list(c, j, type, v);
  switch (type) {
  case T_INVALID:
    return ldr_cv_inferred(c, j, v);
  case T_JSON:
    if (j->type == LDR_JSON_STRING) {
      struct ldr_json *parsed;
      enum ldr_rc rc = ldr_cv_nested(c, j, 0, &parsed);
      if (rc != LDR_OK) return rc;
      v->json_val = (char *)j->s;
    } else {
      v->json_val = ldr_cv_dumps(c, j);
      if (v->json_val == NULL) return ldr_cv_no_memory(c->err);
    }
    v->val_case = FEAST__TYPES__VALUE__VAL_JSON_VAL;
    return LDR_OK;
  case T_JSON_LIST:
    return ldr_cv_json_list(c, j, v);
  case T_MAP:
  case T_STRUCT:
    v->val_case =
        type == T_MAP ? FEAST__TYPES__VALUE__VAL_MAP_VAL : FEAST__TYPES__VALUE__VAL_STRUCT_VAL;
    return ldr_cv_map_of(c, j, type, type == T_MAP ? &v->map_val : &v->struct_val);
  case T_MAP_LIST:
  case T_STRUCT_LIST:
    v->val_case = type == T_MAP_LIST ? FEAST__TYPES__VALUE__VAL_MAP_LIST_VAL
                                     : FEAST__TYPES__VALUE__VAL_STRUCT_LIST_VAL;
    return ldr_cv_map_list(c, j, type, type == T_MAP_LIST ? &v->map_list_val : &v->struct_list_val);
  case T_VALUE_LIST:
  case T_VALUE_SET:
    return ldr_cv_value_list(c, j, type, v);
  case T_SCALAR_MAP:
  case T_ZONED_TIMESTAMP:
  case T_NULL:
    return ldr_err_set(c->err, LDR_INVALID, "%s values cannot be written from JSON",
                       ldr_value_type_name(type));
  default:
    return ldr_cv_scalar(c, j, type, v);
  }
}

static int key_type(int type) {
  return type == T_INVALID || type == T_BYTES || type == T_STRING || type == T_INT32 ||
         type == T_INT64 || type == T_UNIX_TIMESTAMP;
}

enum ldr_rc ldr_json_to_value(const struct ldr_json *j, int type, int key, struct ldr_arena *a,
                              Feast__Types__Value **out, struct ldr_err *err) {
  struct conv c = {a, err};
  Feast__Types__Value *v = ldr_cv_new_value(&c);
  if (v == NULL) return ldr_cv_no_memory(err);
  *out = v;
  if (key) {
    if (!key_type(type))
      return ldr_err_set(err, LDR_INVALID, "%s is not a type an entity key can have",
                         ldr_value_type_name(type));
    if (j->type == LDR_JSON_NULL)
      return ldr_err_set(err, LDR_INVALID, "null: an entity key needs a value");
    if (type == T_INVALID) {
      if (j->type == LDR_JSON_NUMBER && !ldr_json_has_fraction(j))
        type = T_INT64;
      else if (j->type == LDR_JSON_STRING)
        type = T_STRING;
      else
        return ldr_err_set(err, LDR_INVALID, "a JSON %s cannot be an entity key", ldr_cv_kind(j));
    }
    return ldr_cv_scalar(&c, j, type, v);
  }
  if (j->type == LDR_JSON_NULL) return LDR_OK; /* the empty Value */
  if (type == LDR_TYPE_PDF_BYTES || type == LDR_TYPE_IMAGE_BYTES) type = T_BYTES;
  return ldr_cv_typed(&c, j, type, v);
}
