/* A growable NUL-terminated string for building SQL and messages of any length. */
#ifndef LDR_STRBUF_H
#define LDR_STRBUF_H

#include <stddef.h>

/* Zero-initialized is empty and valid. Once an allocation fails, `failed` is
 * set, later appends do nothing, and the caller reports out of memory. */
struct ldr_sb {
  char *p; /* malloc'd; NULL until something is appended */
  size_t len, cap;
  int failed;
};

void ldr_sb_put(struct ldr_sb *sb, const char *s, size_t n);
void ldr_sb_puts(struct ldr_sb *sb, const char *s);
void ldr_sb_printf(struct ldr_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `item` n times, separated by `sep`. */
void ldr_sb_repeat(struct ldr_sb *sb, size_t n, const char *item, const char *sep);
/* The text ("" when empty), or NULL after a failed allocation. */
const char *ldr_sb_str(const struct ldr_sb *sb);
void ldr_sb_free(struct ldr_sb *sb);

#endif
