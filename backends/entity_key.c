/* Feast's entity-key byte encoding (key_encoding_utils.py), versions 1 to 3. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"

enum { TYPE_BYTES = 1, TYPE_STRING = 2, TYPE_INT32 = 3, TYPE_INT64 = 4, TYPE_UNIX_TIMESTAMP = 8 };

static uint8_t *put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  return p + 4;
}

static uint8_t *put_le64(uint8_t *p, uint64_t v) {
  p = put_le32(p, (uint32_t)v);
  return put_le32(p, (uint32_t)(v >> 32));
}

static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A join key and where it stands in the request, for sorting. */
struct named_key {
  const char *name;
  size_t len;
  size_t idx;
};

/* Python's sorted() on str compares code points, which for UTF-8 is memcmp
 * with the shorter string first on a common prefix. Equal names keep their
 * request order, so a repeated one is reported at its second place. */
static int key_cmp(const void *x, const void *y) {
  const struct named_key *a = x, *b = y;
  int c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
  if (c != 0) return c;
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static const char *member_name(const Feast__Types__Value *v) {
  if (v == NULL || v->val_case == FEAST__TYPES__VALUE__VAL__NOT_SET) return "unset";
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
      &feast__types__value__descriptor, (unsigned)v->val_case);
  return f ? f->name : "unknown";
}

/* The payload length of a key value for `version`, or -1 when Feast refuses it. */
static long payload_len(const Feast__Types__Value *v, int version, size_t i, struct ldr_err *err) {
  switch (v ? v->val_case : FEAST__TYPES__VALUE__VAL__NOT_SET) {
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    return (long)strlen(v->string_val);
  case FEAST__TYPES__VALUE__VAL_BYTES_VAL:
    return (long)v->bytes_val.len;
  case FEAST__TYPES__VALUE__VAL_INT32_VAL:
    return 4;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
    if (version > 1) return 8;
    /* Versions 0 and 1 pack int64 with struct "<l": 4 bytes, int32 range. */
    if (v->int64_val < INT32_MIN || v->int64_val > INT32_MAX) {
      ldr_err_set(err, LDR_INVALID,
                  "entity_values[%zu]: int64 %lld does not fit the 4 bytes of key version %d", i,
                  (long long)v->int64_val, version);
      return -1;
    }
    return 4;
  case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
    return 8;
  default:
    ldr_err_set(err, LDR_INVALID,
                "entity_values[%zu]: %s cannot be part of an entity key "
                "(string, bytes, int32, int64 and unix_timestamp can)",
                i, member_name(v));
    return -1;
  }
}

enum ldr_rc ldr_entity_key_serialize(const Feast__Types__EntityKey *ek, int version,
                                     struct ldr_arena *arena, struct ldr_key *out,
                                     struct ldr_err *err) {
  size_t n = ek->n_join_keys;
  if (ek->n_entity_values != n)
    return ldr_err_set(err, LDR_INVALID, "join_keys: %zu join keys but %zu entity_values", n,
                       ek->n_entity_values);
  struct named_key *sorted = ldr_arena_alloc(arena, (n ? n : 1) * sizeof *sorted);
  size_t *order = ldr_arena_alloc(arena, (n ? n : 1) * sizeof *order);
  long *plen = ldr_arena_alloc(arena, (n ? n : 1) * sizeof *plen);
  if (sorted == NULL || order == NULL || plen == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");

  /* Feast sorts the (key, value) pairs by key; a client decides how many
   * there are, so the sort is O(n log n), and so is finding a repeated one. */
  size_t total = version > 2 ? 4 : 0;
  for (size_t i = 0; i < n; i++)
    sorted[i] = (struct named_key){ek->join_keys[i], strlen(ek->join_keys[i]), i};
  qsort(sorted, n, sizeof *sorted, key_cmp);
  for (size_t i = 0; i < n; i++) order[i] = sorted[i].idx;
  for (size_t i = 0; i + 1 < n; i++)
    if (sorted[i].len == sorted[i + 1].len &&
        !memcmp(sorted[i].name, sorted[i + 1].name, sorted[i].len))
      return ldr_err_set(err, LDR_INVALID, "join_keys[%zu]: join key \"%s\" appears twice",
                         sorted[i + 1].idx, sorted[i].name);
  for (size_t i = 0; i < n; i++) {
    size_t klen = strlen(ek->join_keys[i]);
    if (klen > UINT32_MAX) return ldr_err_set(err, LDR_INVALID, "join_keys[%zu]: too long", i);
    total += 4 + (version > 2 ? 4 : 0) + klen;
    plen[i] = payload_len(ek->entity_values[i], version, i, err);
    if (plen[i] < 0) return err->rc;
    total += 8 + (size_t)plen[i];
  }

  uint8_t *buf = ldr_arena_alloc(arena, total ? total : 1);
  if (buf == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
  uint8_t *p = buf;
  if (version > 2) p = put_le32(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    const char *k = ek->join_keys[order[i]];
    size_t klen = strlen(k);
    p = put_le32(p, TYPE_STRING);
    if (version > 2) p = put_le32(p, (uint32_t)klen);
    memcpy(p, k, klen);
    p += klen;
  }
  for (size_t i = 0; i < n; i++) {
    const Feast__Types__Value *v = ek->entity_values[order[i]];
    uint32_t len = (uint32_t)plen[order[i]];
    switch (v->val_case) {
    case FEAST__TYPES__VALUE__VAL_STRING_VAL:
      p = put_le32(put_le32(p, TYPE_STRING), len);
      memcpy(p, v->string_val, len);
      p += len;
      break;
    case FEAST__TYPES__VALUE__VAL_BYTES_VAL:
      p = put_le32(put_le32(p, TYPE_BYTES), len);
      if (len > 0) memcpy(p, v->bytes_val.data, len);
      p += len;
      break;
    case FEAST__TYPES__VALUE__VAL_INT32_VAL:
      p = put_le32(put_le32(put_le32(p, TYPE_INT32), 4), (uint32_t)v->int32_val);
      break;
    case FEAST__TYPES__VALUE__VAL_INT64_VAL:
      p = put_le32(put_le32(p, TYPE_INT64), len);
      p = len == 8 ? put_le64(p, (uint64_t)v->int64_val) : put_le32(p, (uint32_t)v->int64_val);
      break;
    default: /* UNIX_TIMESTAMP: payload_len refused everything else */
      p = put_le64(put_le32(put_le32(p, TYPE_UNIX_TIMESTAMP), 8), (uint64_t)v->unix_timestamp_val);
      break;
    }
  }
  out->bytes = buf;
  out->len = (size_t)(p - buf);
  return LDR_OK;
}

static enum ldr_rc truncated(size_t off, struct ldr_err *err) {
  return ldr_err_set(err, LDR_INVALID, "entity key: truncated at byte %zu", off);
}

/* Decodes one value of `len` bytes at `q`; LDR_INVALID for a type Feast does not read back. */
static enum ldr_rc decode_value(uint32_t type, const uint8_t *q, uint32_t len,
                                struct ldr_arena *arena, Feast__Types__Value *v,
                                struct ldr_err *err) {
  feast__types__value__init(v);
  switch (type) {
  case TYPE_INT64:
  case TYPE_UNIX_TIMESTAMP: {
    if (len != 8) return ldr_err_set(err, LDR_INVALID, "entity key: int64 of %u bytes", len);
    int64_t x = (int64_t)((uint64_t)get_le32(q) | (uint64_t)get_le32(q + 4) << 32);
    if (type == TYPE_INT64) {
      v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
      v->int64_val = x;
    } else {
      v->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
      v->unix_timestamp_val = x;
    }
    return LDR_OK;
  }
  case TYPE_INT32:
    if (len != 4) return ldr_err_set(err, LDR_INVALID, "entity key: int32 of %u bytes", len);
    v->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
    v->int32_val = (int32_t)get_le32(q);
    return LDR_OK;
  case TYPE_STRING:
    v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    v->string_val = ldr_arena_memdup(arena, q, len);
    if (v->string_val == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
    return LDR_OK;
  case TYPE_BYTES:
    v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
    v->bytes_val.len = len;
    v->bytes_val.data = ldr_arena_memdup(arena, q, len);
    if (v->bytes_val.data == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
    return LDR_OK;
  default:
    return ldr_err_set(err, LDR_INVALID, "entity key: value type %u is not supported", type);
  }
}

enum ldr_rc ldr_entity_key_deserialize(const uint8_t *p, size_t n, struct ldr_arena *arena,
                                       Feast__Types__EntityKey **out, struct ldr_err *err) {
  if (n < 4) return truncated(0, err);
  uint32_t nkeys = get_le32(p);
  size_t off = 4;
  if (nkeys > n / 8)
    return ldr_err_set(err, LDR_INVALID, "entity key: %u join keys do not fit", nkeys);
  Feast__Types__EntityKey *ek = ldr_arena_alloc(arena, sizeof *ek);
  char **keys = ldr_arena_alloc(arena, (nkeys ? nkeys : 1) * sizeof *keys);
  /* Every value takes at least 8 bytes. */
  Feast__Types__Value **vals = ldr_arena_alloc(arena, (n / 8 + 1) * sizeof *vals);
  if (ek == NULL || keys == NULL || vals == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
  feast__types__entity_key__init(ek);
  for (uint32_t i = 0; i < nkeys; i++) {
    if (n - off < 8) return truncated(off, err);
    uint32_t type = get_le32(p + off), len = get_le32(p + off + 4);
    off += 8;
    if (type != TYPE_STRING)
      return ldr_err_set(err, LDR_INVALID, "entity key: join key %u has type %u, not string", i,
                         type);
    if (n - off < len) return truncated(off, err);
    /* Feast strips trailing NULs from join keys. */
    size_t klen = len;
    while (klen > 0 && p[off + klen - 1] == '\0') klen--;
    keys[i] = ldr_arena_memdup(arena, p + off, klen);
    if (keys[i] == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
    off += len;
  }
  size_t nvals = 0;
  while (off < n) {
    if (n - off < 8) return truncated(off, err);
    uint32_t type = get_le32(p + off), len = get_le32(p + off + 4);
    off += 8;
    if (n - off < len) return truncated(off, err);
    Feast__Types__Value *v = ldr_arena_alloc(arena, sizeof *v);
    if (v == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "entity key: no memory");
    enum ldr_rc rc = decode_value(type, p + off, len, arena, v, err);
    if (rc != LDR_OK) return rc;
    off += len;
    vals[nvals++] = v;
  }
  ek->n_join_keys = nkeys;
  ek->join_keys = keys;
  ek->n_entity_values = nvals;
  ek->entity_values = vals;
  *out = ek;
  return LDR_OK;
}
