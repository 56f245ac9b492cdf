/*
 * libFuzzer target for HTTP/1.1 framing (http/parse.c): request heads and
 * chunked bodies. A head that parses must lie within the input and say
 * sensible things; a chunked body is decoded fed whole and fed a byte at a
 * time, and both ways must agree (the decoder keeps its state between calls).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  struct ldr_http_head h;
  long r = ldr_http_parse_head(in, size, NULL, &h);
  check(r <= (long)size, "a head longer than its input");
  check(r == 0 || r > 0 || r == -400 || r == -431 || r == -501 || r == -505, "an unknown answer");
  if (r > 0) {
    check(h.path >= in && h.path + h.path_len <= in + r, "a path outside the head");
    check(!(h.chunked && h.content_length >= 0), "both framings accepted");
  }
  /* Everything after the head (or all of it) as a chunked body. */
  size_t start = r > 0 ? (size_t)r : 0, max = 4096;
  char *whole = malloc(max + 1), *bytewise = malloc(max + 1);
  if (whole == NULL || bytewise == NULL) abort();
  struct ldr_http_chunks a = {0}, b = {0};
  size_t la = 0, lb = 0;
  long ra = ldr_http_dechunk(&a, in + start, size - start, whole, &la, max);
  long rb = 0;
  size_t used = 0;
  for (size_t i = start; i < size && rb >= 0 && !b.done; i++) {
    rb = ldr_http_dechunk(&b, in + i, 1, bytewise, &lb, max);
    if (rb > 0) used += (size_t)rb;
  }
  check(la <= max && lb <= max, "a body past its limit");
  if (ra >= 0 && rb >= 0) {
    check(a.done == b.done, "whole and bytewise disagree on the end");
    check(la == lb && memcmp(whole, bytewise, la) == 0, "whole and bytewise decode differently");
    if (a.done) check((size_t)ra == used, "whole and bytewise end at different bytes");
  } else {
    check(ra < 0 && rb < 0, "one way refused what the other took");
  }
  free(whole);
  free(bytewise);
  return 0;
}
