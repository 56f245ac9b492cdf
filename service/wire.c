#include "service/wire.h"

#include <stdio.h>
#include <string.h>

size_t ldr_pb_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

uint8_t *ldr_pb_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

int ldr_utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c == 0) return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

/* The field path of the walk, printed only when something is wrong. */
struct path {
  const char *name[LDR_WIRE_MAX_DEPTH + 1];
  long index[LDR_WIRE_MAX_DEPTH + 1]; /* -1: not repeated */
};

static void format_path(const struct path *path, int depth, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < depth && n < cap; i++) {
    int w = path->index[i] >= 0 ? snprintf(buf + n, cap - n, "%s%s[%ld]", i ? "." : "",
                                           path->name[i], path->index[i])
                                : snprintf(buf + n, cap - n, "%s%s", i ? "." : "", path->name[i]);
    if (w < 0) break;
    n += (size_t)w;
  }
}

static int get_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*off >= n) return -1;
    uint8_t b = p[(*off)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static enum ldr_rc malformed(struct ldr_err *err, const struct path *path, int depth) {
  char where[192];
  format_path(path, depth, where, sizeof where);
  return ldr_err_set(err, LDR_INVALID, "%s%snot a valid protobuf message", where,
                     depth ? ": " : "request: ");
}

/* Whether a known field may arrive with wire type `wt`: its type's, or for a
 * repeated number, packed (length-delimited) as well. protobuf-c refuses the
 * rest without saying which field; this says it. */
static int wire_type_fits(const ProtobufCFieldDescriptor *f, int wt) {
  int want;
  switch (f->type) {
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    want = 1;
    break;
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    want = 5;
    break;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return wt == 2;
  default: /* the varint types */
    want = 0;
  }
  return wt == want || (wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED);
}

static enum ldr_rc walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                        struct path *path, int depth, struct ldr_wire_scan *scan,
                        struct ldr_err *err) {
  /* Occurrences per field of this message, to index repeated fields. */
  unsigned seen[64] = {0};
  size_t off = 0;
  if (depth > LDR_WIRE_MAX_DEPTH)
    return ldr_err_set(err, LDR_INVALID, "request: messages nest deeper than %d levels",
                       LDR_WIRE_MAX_DEPTH);
  while (off < n) {
    uint64_t tag, len;
    if (get_varint(p, n, &off, &tag) != 0) return malformed(err, path, depth);
    uint64_t number = tag >> 3;
    if (number == 0 || number > 536870911) return malformed(err, path, depth);
    const ProtobufCFieldDescriptor *f =
        desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)number) : NULL;
    switch (tag & 7) {
    case 0:
      if (get_varint(p, n, &off, &len) != 0) return malformed(err, path, depth);
      break;
    case 1:
      if (n - off < 8) return malformed(err, path, depth);
      off += 8;
      break;
    case 5:
      if (n - off < 4) return malformed(err, path, depth);
      off += 4;
      break;
    case 2: {
      if (get_varint(p, n, &off, &len) != 0 || len > n - off) return malformed(err, path, depth);
      if (f != NULL) {
        size_t fi = (size_t)(f - desc->fields);
        long index = f->label == PROTOBUF_C_LABEL_REPEATED ? (long)(fi < 64 ? seen[fi] : 0) : -1;
        if (fi < 64) seen[fi]++;
        path->name[depth] = f->name;
        path->index[depth] = index;
        if ((f->type == PROTOBUF_C_TYPE_STRING) && !scan->bad_field &&
            !ldr_utf8_valid(p + off, (size_t)len)) {
          char where[192];
          format_path(path, depth + 1, where, sizeof where);
          scan->bad_field = 1;
          ldr_err_set(&scan->field_err, LDR_INVALID, "%s: %s", where,
                      memchr(p + off, 0, (size_t)len) ? "contains a NUL byte"
                                                      : "is not valid UTF-8");
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
          enum ldr_rc rc = walk(f->descriptor, p + off, (size_t)len, path, depth + 1, scan, err);
          if (rc != LDR_OK) return rc;
        }
      }
      off += (size_t)len;
      break;
    }
    default: /* groups (3, 4) are not proto3, and 6, 7 do not exist */
      return malformed(err, path, depth);
    }
    if (f != NULL && !scan->bad_field && !wire_type_fits(f, (int)(tag & 7))) {
      /* Well-formed, of another type: reported after the limits, as strings are. */
      char where[192];
      path->name[depth] = f->name;
      path->index[depth] = -1;
      format_path(path, depth + 1, where, sizeof where);
      scan->bad_field = 1;
      ldr_err_set(&scan->field_err, LDR_INVALID,
                  "%s: wire type %d does not carry a field of its type", where, (int)(tag & 7));
    }
    if (depth == 0 && number < 16) scan->top_count[number]++;
  }
  return LDR_OK;
}

enum ldr_rc ldr_wire_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                          struct ldr_wire_scan *scan, struct ldr_err *err) {
  struct path path;
  memset(scan, 0, sizeof *scan);
  return walk(desc, p, n, &path, 0, scan, err);
}
