/*
 * The writing half of the JSON layer, what a reply needs: strings escaped as
 * little as RFC 8259 allows, doubles as Python writes them (Feast's feature
 * server is Python, and clients compare its replies), and base64 both ways
 * for bytes values.
 */
#include "common/json.h"

#include <math.h>
#include <string.h>

#include "common/pyfloat.h"

void ldr_json_put_string(struct ldr_sb *sb, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  ldr_sb_put(sb, "\"", 1);
  size_t run = 0; /* start of the bytes not yet written that need no escape */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (i > run) ldr_sb_put(sb, s + run, i - run);
    run = i + 1;
    char e[6] = {'\\', 0};
    size_t en = 2;
    switch (c) {
    case '"':
    case '\\':
      e[1] = (char)c;
      break;
    case '\b':
      e[1] = 'b';
      break;
    case '\f':
      e[1] = 'f';
      break;
    case '\n':
      e[1] = 'n';
      break;
    case '\r':
      e[1] = 'r';
      break;
    case '\t':
      e[1] = 't';
      break;
    default:
      memcpy(e + 1, "u00", 3);
      e[4] = hex[c >> 4];
      e[5] = hex[c & 15];
      en = 6;
    }
    ldr_sb_put(sb, e, en);
  }
  if (n > run) ldr_sb_put(sb, s + run, n - run);
  ldr_sb_put(sb, "\"", 1);
}

void ldr_json_put_double(struct ldr_sb *sb, double d) {
  if (!isfinite(d)) {
    ldr_sb_put(sb, "null", 4);
    return;
  }
  char buf[32];
  ldr_sb_put(sb, buf, ldr_format_double(d, buf));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ldr_json_put_base64(struct ldr_sb *sb, const uint8_t *s, size_t n) {
  char buf[256];
  size_t k = 0;
  buf[k++] = '"';
  for (size_t i = 0; i < n; i += 3) {
    if (k > sizeof buf - 5) { /* room for a quad and the closing quote */
      ldr_sb_put(sb, buf, k);
      k = 0;
    }
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < n) v |= s[i + 2];
    buf[k++] = b64[v >> 18];
    buf[k++] = b64[v >> 12 & 63];
    buf[k++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
    buf[k++] = i + 2 < n ? b64[v & 63] : '=';
  }
  buf[k++] = '"';
  ldr_sb_put(sb, buf, k);
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes the quads of s[0..n), the last with `pad` '=', into o unless o is
 * NULL; returns the byte count, or -1 when s is not canonical base64. */
static long long b64_quads(const char *s, size_t n, size_t pad, uint8_t *o) {
  size_t k = 0;
  for (size_t i = 0; i < n; i += 4) {
    size_t q = i + 4 == n ? pad : 0;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; j++) {
      int d = j < 4 - q ? b64_value((unsigned char)s[i + j]) : 0;
      if (d < 0) return -1;
      v = v << 6 | (uint32_t)d;
    }
    /* Canonical: the bits past the last whole byte are zero, so each byte
     * string has exactly one encoding. */
    if ((q == 2 && (v & 0xFFFF) != 0) || (q == 1 && (v & 0xFF) != 0)) return -1;
    if (o != NULL) {
      o[k] = (uint8_t)(v >> 16);
      if (q < 2) o[k + 1] = (uint8_t)(v >> 8);
      if (q < 1) o[k + 2] = (uint8_t)v;
    }
    k += 3 - q;
  }
  return (long long)k;
}

int ldr_base64_decode(const char *s, size_t n, struct ldr_arena *a, uint8_t **out,
                      size_t *out_len) {
  if (n % 4 != 0) return -1;
  /* '=' only ends the last quad: one or two of them. */
  size_t pad = 0;
  if (n > 0 && s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
  /* Checked before anything is allocated: text that is not base64 costs no memory. */
  long long k = b64_quads(s, n, pad, NULL);
  if (k < 0) return -1;
  uint8_t *o = ldr_arena_alloc(a, (size_t)k + 1);
  if (o == NULL) return -1;
  b64_quads(s, n, pad, o);
  o[k] = 0;
  *out = o;
  *out_len = (size_t)k;
  return 0;
}
