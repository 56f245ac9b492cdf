/*
 * Values and answers as Feast's feature server writes them in JSON
 * (HTTP.md §4.3, §4.4): each stored Value as the JSON of its kind, and
 * timestamps as _timestamp_to_str writes them. The common scalar kinds are
 * read straight off the wire; the rest are decoded with protobuf-c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/tz.h"
#include "feast/types/Value.pb-c.h"
#include "http/http_int.h"

/* Stored values nest no deeper than this when written out (deeper: null). */
#define RENDER_DEPTH 100

/* A time as a quoted ISO 8601 string, `tail` before the closing quote; null
 * for one gmtime cannot express (a row written by another tool at the ends of
 * int64), so that the body stays JSON. */
static void put_civil(struct ldr_sb *sb, int64_t s, const char *tail) {
  time_t t = (time_t)s;
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL) {
    ldr_sb_puts(sb, "null");
    return;
  }
  ldr_sb_printf(sb, "\"%04d-%02d-%02dT%02d:%02d:%02d%s\"", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tail);
}

void ldr_http_put_timestamp(struct ldr_sb *sb, int has_ts, struct ldr_ts ts) {
  if (!has_ts) {
    ldr_sb_puts(sb, "\"1970-01-01T00:00:00Z\"");
    return;
  }
  char frac[16] = "";
  if (ts.ns % 1000000000 != 0) {
    if (ts.ns % 1000000 == 0)
      snprintf(frac, sizeof frac, ".%03d", (int)(ts.ns / 1000000));
    else if (ts.ns % 1000 == 0)
      snprintf(frac, sizeof frac, ".%06d", (int)(ts.ns / 1000));
    else
      snprintf(frac, sizeof frac, ".%09d", (int)ts.ns);
  }
  char tail[24];
  snprintf(tail, sizeof tail, "%sZ", frac);
  put_civil(sb, ts.s, tail);
}

/* A zoned timestamp as Python's datetime.isoformat() in its zone (an
 * unknown zone reads as UTC, as in Feast); null when there is no time. */
static void put_zoned(struct ldr_sb *sb, const Feast__Types__ZonedTimestamp *z) {
  char buf[LDR_TZ_ISO_MAX];
  int n = z->unix_timestamp == INT64_MIN
              ? -1
              : ldr_tz_format(z->zone, z->unix_timestamp, 0, buf, sizeof buf);
  if (n < 0) {
    ldr_sb_puts(sb, "null");
    return;
  }
  ldr_json_put_string(sb, buf, (size_t)n);
}

static void put_str(struct ldr_sb *sb, const char *s) {
  ldr_json_put_string(sb, s ? s : "", s ? strlen(s) : 0);
}

static void put_value(struct ldr_sb *sb, const Feast__Types__Value *v, int depth);

static void put_map(struct ldr_sb *sb, const Feast__Types__Map *m, int depth) {
  ldr_sb_puts(sb, "{");
  for (size_t i = 0; m != NULL && i < m->n_val; i++) {
    if (i) ldr_sb_puts(sb, ",");
    put_str(sb, m->val[i]->key);
    ldr_sb_puts(sb, ":");
    put_value(sb, m->val[i]->value, depth + 1);
  }
  ldr_sb_puts(sb, "}");
}

static void put_map_list(struct ldr_sb *sb, const Feast__Types__MapList *l, int depth) {
  ldr_sb_puts(sb, "[");
  for (size_t i = 0; l != NULL && i < l->n_val; i++) {
    if (i) ldr_sb_puts(sb, ",");
    put_map(sb, l->val[i], depth + 1);
  }
  ldr_sb_puts(sb, "]");
}

/* Every repeated-scalar message of Value.proto is { repeated T val = 1 }. */
#define PUT_LIST(sb, l, fmt_elem)                                                                  \
  do {                                                                                             \
    ldr_sb_puts(sb, "[");                                                                          \
    for (size_t i_ = 0; (l) != NULL && i_ < (l)->n_val; i_++) {                                    \
      if (i_) ldr_sb_puts(sb, ",");                                                                \
      fmt_elem((sb), (l)->val[i_]);                                                                \
    }                                                                                              \
    ldr_sb_puts(sb, "]");                                                                          \
  } while (0)

static void put_i64(struct ldr_sb *sb, int64_t x) { ldr_sb_printf(sb, "%" PRId64, x); }
static void put_i32(struct ldr_sb *sb, int32_t x) { ldr_sb_printf(sb, "%" PRId32, x); }
static void put_dbl(struct ldr_sb *sb, double x) { ldr_json_put_double(sb, x); }
static void put_flt(struct ldr_sb *sb, float x) { ldr_json_put_double(sb, (double)x); }
static void put_bool(struct ldr_sb *sb, protobuf_c_boolean x) {
  ldr_sb_puts(sb, x ? "true" : "false");
}
static void put_b64(struct ldr_sb *sb, ProtobufCBinaryData b) {
  ldr_json_put_base64(sb, b.data, b.len);
}

static void put_value(struct ldr_sb *sb, const Feast__Types__Value *v, int depth) {
  if (v == NULL || depth > RENDER_DEPTH) {
    ldr_sb_puts(sb, "null");
    return;
  }
  switch (v->val_case) {
  case FEAST__TYPES__VALUE__VAL_BYTES_VAL:
    put_b64(sb, v->bytes_val);
    break;
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    put_str(sb, v->string_val);
    break;
  case FEAST__TYPES__VALUE__VAL_JSON_VAL:
    put_str(sb, v->json_val);
    break;
  case FEAST__TYPES__VALUE__VAL_UUID_VAL:
    put_str(sb, v->uuid_val);
    break;
  case FEAST__TYPES__VALUE__VAL_TIME_UUID_VAL:
    put_str(sb, v->time_uuid_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DECIMAL_VAL:
    put_str(sb, v->decimal_val);
    break;
  case FEAST__TYPES__VALUE__VAL_INT32_VAL:
    put_i32(sb, v->int32_val);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
    put_i64(sb, v->int64_val);
    break;
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
    put_i64(sb, v->unix_timestamp_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
    put_dbl(sb, v->double_val);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
    put_flt(sb, v->float_val);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
    put_bool(sb, v->bool_val);
    break;
  case FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL:
    PUT_LIST(sb, v->bytes_list_val, put_b64);
    break;
  case FEAST__TYPES__VALUE__VAL_BYTES_SET_VAL:
    PUT_LIST(sb, v->bytes_set_val, put_b64);
    break;
  case FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL:
    PUT_LIST(sb, v->string_list_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_STRING_SET_VAL:
    PUT_LIST(sb, v->string_set_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_JSON_LIST_VAL:
    PUT_LIST(sb, v->json_list_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_UUID_LIST_VAL:
    PUT_LIST(sb, v->uuid_list_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_UUID_SET_VAL:
    PUT_LIST(sb, v->uuid_set_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_TIME_UUID_LIST_VAL:
    PUT_LIST(sb, v->time_uuid_list_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_TIME_UUID_SET_VAL:
    PUT_LIST(sb, v->time_uuid_set_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_DECIMAL_LIST_VAL:
    PUT_LIST(sb, v->decimal_list_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_DECIMAL_SET_VAL:
    PUT_LIST(sb, v->decimal_set_val, put_str);
    break;
  case FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL:
    PUT_LIST(sb, v->int32_list_val, put_i32);
    break;
  case FEAST__TYPES__VALUE__VAL_INT32_SET_VAL:
    PUT_LIST(sb, v->int32_set_val, put_i32);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL:
    PUT_LIST(sb, v->int64_list_val, put_i64);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_SET_VAL:
    PUT_LIST(sb, v->int64_set_val, put_i64);
    break;
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_LIST_VAL:
    PUT_LIST(sb, v->unix_timestamp_list_val, put_i64);
    break;
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_SET_VAL:
    PUT_LIST(sb, v->unix_timestamp_set_val, put_i64);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL:
    PUT_LIST(sb, v->double_list_val, put_dbl);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_SET_VAL:
    PUT_LIST(sb, v->double_set_val, put_dbl);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL:
    PUT_LIST(sb, v->float_list_val, put_flt);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_SET_VAL:
    PUT_LIST(sb, v->float_set_val, put_flt);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL:
    PUT_LIST(sb, v->bool_list_val, put_bool);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_SET_VAL:
    PUT_LIST(sb, v->bool_set_val, put_bool);
    break;
  case FEAST__TYPES__VALUE__VAL_MAP_VAL:
    put_map(sb, v->map_val, depth);
    break;
  case FEAST__TYPES__VALUE__VAL_STRUCT_VAL:
    put_map(sb, v->struct_val, depth);
    break;
  case FEAST__TYPES__VALUE__VAL_MAP_LIST_VAL:
    put_map_list(sb, v->map_list_val, depth);
    break;
  case FEAST__TYPES__VALUE__VAL_STRUCT_LIST_VAL:
    put_map_list(sb, v->struct_list_val, depth);
    break;
  case FEAST__TYPES__VALUE__VAL_LIST_VAL:
  case FEAST__TYPES__VALUE__VAL_SET_VAL: {
    const Feast__Types__RepeatedValue *r =
        v->val_case == FEAST__TYPES__VALUE__VAL_LIST_VAL ? v->list_val : v->set_val;
    ldr_sb_puts(sb, "[");
    for (size_t i = 0; r != NULL && i < r->n_val; i++) {
      if (i) ldr_sb_puts(sb, ",");
      put_value(sb, r->val[i], depth + 1);
    }
    ldr_sb_puts(sb, "]");
    break;
  }
  case FEAST__TYPES__VALUE__VAL_ZONED_TIMESTAMP_VAL:
    put_zoned(sb, v->zoned_timestamp_val);
    break;
  default: /* unset, null_val, scalar_map_val (Feast: not yet supported) */
    ldr_sb_puts(sb, "null");
    break;
  }
}

/* A varint at p[0..end): its value and the byte after it, or NULL. */
static const uint8_t *varint(const uint8_t *p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    uint8_t b = *p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return p;
    }
  }
  return NULL;
}

/* The common kinds, read off the wire when the Value is that one field
 * alone: 1 when written, 0 to decode it in full. */
static int put_simple(struct ldr_sb *sb, const uint8_t *b, size_t len) {
  const uint8_t *p = b, *end = b + len;
  uint64_t tag, x;
  if ((p = varint(p, end, &tag)) == NULL) return 0;
  unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
  switch (field) {
  case 3: /* int32 */
  case 4: /* int64 */
  case 8: /* unix_timestamp */
  case 7: /* bool */
    if (wt != 0 || (p = varint(p, end, &x)) == NULL || p != end) return 0;
    if (field == 7)
      ldr_sb_puts(sb, x ? "true" : "false");
    else if (field == 3)
      put_i32(sb, (int32_t)x);
    else
      put_i64(sb, (int64_t)x);
    return 1;
  case 5: /* double */
    if (wt != 1 || end - p != 8) return 0;
    {
      uint64_t bits = 0;
      for (int i = 7; i >= 0; i--) bits = bits << 8 | p[i];
      double d;
      memcpy(&d, &bits, sizeof d);
      ldr_json_put_double(sb, d);
    }
    return 1;
  case 6: /* float */
    if (wt != 5 || end - p != 4) return 0;
    {
      uint32_t bits =
          (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
      float f;
      memcpy(&f, &bits, sizeof f);
      ldr_json_put_double(sb, (double)f);
    }
    return 1;
  default:
    return 0; /* strings are checked for UTF-8 after decoding */
  }
}

/* Nonzero when p[0..n) is UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = p[i], len = c < 0x80             ? 1
                             : (c & 0xe0) == 0xc0 ? 2
                             : (c & 0xf0) == 0xe0 ? 3
                             : (c & 0xf8) == 0xf0 ? 4
                                                  : 0;
    if (len == 0 || n - i < len) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (unsigned k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

void ldr_http_put_value(struct ldr_sb *sb, const uint8_t *v, size_t len, struct ldr_arena *a) {
  if (len == 0) {
    ldr_sb_puts(sb, "null");
    return;
  }
  if (put_simple(sb, v, len)) return;
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, a};
  Feast__Types__Value *val = feast__types__value__unpack(&al, len, v);
  size_t start = sb->len;
  put_value(sb, val, 0); /* a Value that does not decode is written as null */
  /* protobuf-c does not check that strings are UTF-8; the JSON must be. What
   * put_value writes is ASCII but for the strings themselves, so a Value
   * with a string that is not UTF-8 is written as null, as if it did not
   * decode (Feast's protobuf refuses to decode it). */
  if (!sb->failed && !utf8_ok((const unsigned char *)sb->p + start, sb->len - start)) {
    sb->len = start;
    sb->p[start] = '\0';
    ldr_sb_puts(sb, "null");
  }
}

int ldr_http_put_result(struct ldr_sb *sb, const struct ldr_serving_result *r, size_t max,
                        struct ldr_arena *a) {
  static const char *const status_names[] = {"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND",
                                             "OUTSIDE_MAX_AGE"};
  ldr_sb_puts(sb, "{\"metadata\":{\"feature_names\":[");
  for (size_t c = 0; c < r->n_cols; c++) {
    if (c) ldr_sb_puts(sb, ",");
    put_str(sb, r->cols[c].name);
  }
  ldr_sb_puts(sb, "]},\"results\":[");
  for (size_t c = 0; c < r->n_cols; c++) {
    const struct ldr_cell *cells = r->cols[c].cells;
    ldr_sb_puts(sb, c ? ",{\"values\":[" : "{\"values\":[");
    for (size_t i = 0; i < r->n_rows; i++) {
      if (sb->len > max) return -1; /* checked per cell: each decodes a Value */
      if (i) ldr_sb_puts(sb, ",");
      ldr_http_put_value(sb, cells[i].value, cells[i].len, a);
    }
    ldr_sb_puts(sb, "],\"statuses\":[");
    for (size_t i = 0; i < r->n_rows; i++) {
      int s = cells[i].status;
      ldr_sb_printf(sb, "%s\"%s\"", i ? "," : "", s >= 0 && s <= 4 ? status_names[s] : "INVALID");
    }
    ldr_sb_puts(sb, "]");
    if (r->n_rows) { /* Feast's converter drops an empty list */
      ldr_sb_puts(sb, ",\"event_timestamps\":[");
      for (size_t i = 0; i < r->n_rows; i++) {
        if (i) ldr_sb_puts(sb, ",");
        ldr_http_put_timestamp(sb, cells[i].has_ts, cells[i].ts);
      }
      ldr_sb_puts(sb, "]");
    }
    ldr_sb_puts(sb, "}");
  }
  ldr_sb_puts(sb, "]}");
  return sb->len > max ? -1 : 0;
}
