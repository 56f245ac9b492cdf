#include "common/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct ldr_sb *sb, size_t more) {
  if (sb->failed) return -1;
  if (sb->len + more + 1 <= sb->cap) return 0;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < sb->len + more + 1) {
    if (cap > ((size_t)-1) / 2) {
      sb->failed = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = realloc(sb->p, cap);
  if (p == NULL) {
    sb->failed = 1;
    return -1;
  }
  sb->p = p;
  sb->cap = cap;
  return 0;
}

void ldr_sb_put(struct ldr_sb *sb, const char *s, size_t n) {
  if (grow(sb, n) != 0) return;
  if (n) memcpy(sb->p + sb->len, s, n);
  sb->len += n;
  sb->p[sb->len] = '\0';
}

void ldr_sb_puts(struct ldr_sb *sb, const char *s) { ldr_sb_put(sb, s, strlen(s)); }

void ldr_sb_printf(struct ldr_sb *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || grow(sb, (size_t)n) != 0) {
    sb->failed = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

void ldr_sb_repeat(struct ldr_sb *sb, size_t n, const char *item, const char *sep) {
  size_t il = strlen(item), sl = strlen(sep);
  if (n == 0 || grow(sb, n * il + (n - 1) * sl) != 0) return;
  for (size_t i = 0; i < n; i++) {
    if (i) ldr_sb_put(sb, sep, sl);
    ldr_sb_put(sb, item, il);
  }
}

const char *ldr_sb_str(const struct ldr_sb *sb) {
  if (sb->failed) return NULL;
  return sb->p ? sb->p : "";
}

void ldr_sb_free(struct ldr_sb *sb) {
  free(sb->p);
  sb->p = NULL;
  sb->len = sb->cap = 0;
  sb->failed = 0;
}
