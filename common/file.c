#include "common/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int ldr_read_file(const char *path, uint8_t **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  size_t cap = 65536, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    uint8_t *bigger = realloc(buf, cap * 2);
    if (bigger == NULL) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int failed = buf == NULL || ferror(f);
  int saved = buf == NULL ? ENOMEM : errno;
  fclose(f);
  if (failed) {
    free(buf);
    errno = saved ? saved : EIO;
    return -1;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}
