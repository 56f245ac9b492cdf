/* Feast's environment substitution: Python's os.path.expandvars over the whole file text. */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

struct buf {
  char *p;
  size_t len, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const char *env_lookup(const char *name) { return getenv(name); }

/*
 * The regular expression Python uses is `\$(\w+|\{[^}]*\})` with re.ASCII. A
 * `$` that starts no match is copied as it is and the search goes on at the
 * next byte, so `$$X` expands the second `$X`. Substituted text is not scanned
 * again, and an undefined name leaves the whole match in place.
 */
char *ldr_config_expand_vars(const char *text, size_t len, const char *(*lookup)(const char *),
                             size_t *out_len) {
  struct buf b = {0};
  if (lookup == NULL) lookup = env_lookup;
  if (buf_put(&b, "", 0) != 0) return NULL;
  size_t i = 0;
  while (i < len) {
    const char *dollar = memchr(text + i, '$', len - i);
    size_t at = dollar ? (size_t)(dollar - text) : len;
    if (buf_put(&b, text + i, at - i) != 0) goto fail;
    if (dollar == NULL) break;
    size_t name_start, name_end, match_end;
    if (at + 1 < len && is_word((unsigned char)text[at + 1])) {
      name_start = at + 1;
      name_end = name_start;
      while (name_end < len && is_word((unsigned char)text[name_end])) name_end++;
      match_end = name_end;
    } else if (at + 1 < len && text[at + 1] == '{') {
      const char *close = memchr(text + at + 2, '}', len - (at + 2));
      if (close == NULL) {
        if (buf_put(&b, "$", 1) != 0) goto fail;
        i = at + 1;
        continue;
      }
      name_start = at + 2;
      name_end = (size_t)(close - text);
      match_end = name_end + 1;
    } else {
      if (buf_put(&b, "$", 1) != 0) goto fail;
      i = at + 1;
      continue;
    }
    const char *value = NULL;
    size_t name_len = name_end - name_start;
    /* A name with a NUL byte cannot be in the environment. */
    if (name_len > 0 && memchr(text + name_start, '\0', name_len) == NULL) {
      char *name = malloc(name_len + 1);
      if (name == NULL) goto fail;
      memcpy(name, text + name_start, name_len);
      name[name_len] = '\0';
      value = lookup(name);
      free(name);
    }
    if (value != NULL) {
      if (buf_put(&b, value, strlen(value)) != 0) goto fail;
    } else {
      if (buf_put(&b, text + at, match_end - at) != 0) goto fail;
    }
    i = match_end;
  }
  *out_len = b.len;
  return b.p;
fail:
  free(b.p);
  return NULL;
}
