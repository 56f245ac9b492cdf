/*
 * HTTP/1.1 framing (http/parse.c): request heads, every field larder reads
 * checked for heads that parse, the exact status for those refused (the
 * request-smuggling shapes among them: both Content-Length and
 * Transfer-Encoding, two lengths, whitespace before a colon, folded lines,
 * bare LF), 0 for every prefix of a valid head, the 16 KiB limit at its
 * boundary; then chunked bodies decoded whole and byte by byte, with
 * extensions and trailers, and refused with 400 or 413.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- heads that parse ---- */

static const struct valid_head {
  const char *name;
  const char *text;
  enum ldr_http_method method;
  const char *path;
  int minor;
  int64_t content_length;
  int chunked, expect_continue, close;
  const char *authorization; /* NULL: absent */
} valid_heads[] = {
    {"GET, HTTP/1.1 keeps the connection", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", LDR_HTTP_GET,
     "/health", 1, -1, 0, 0, 0, NULL},
    {"POST with a query, a length and a token",
     "POST /push?a=1&b=/x HTTP/1.1\r\nContent-Length: 12\r\nAuthorization: Bearer abc \r\n\r\n",
     LDR_HTTP_POST, "/push", 1, 12, 0, 0, 0, "Bearer abc"},
    {"HEAD, HTTP/1.0 closes by default", "HEAD / HTTP/1.0\r\n\r\n", LDR_HTTP_HEAD, "/", 0, -1, 0, 0,
     1, NULL},
    {"HTTP/1.0 with keep-alive stays open", "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     LDR_HTTP_GET, "/a", 0, -1, 0, 0, 0, NULL},
    {"HTTP/1.1 with close in a token list",
     "GET /a HTTP/1.1\r\nConnection: Upgrade,\tCLOSE , te\r\n\r\n", LDR_HTTP_GET, "/a", 1, -1, 0, 0,
     1, NULL},
    {"HTTP/1.1 with keep-alive stays open", "GET /a HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
     LDR_HTTP_GET, "/a", 1, -1, 0, 0, 0, NULL},
    {"HTTP/1.0: close wins over keep-alive (RFC 9112 §9.3)",
     "GET /a HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n", LDR_HTTP_GET, "/a", 0, -1, 0, 0, 1,
     NULL},
    {"HTTP/1.0: close in another Connection field wins too",
     "GET /a HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", LDR_HTTP_GET, "/a",
     0, -1, 0, 0, 1, NULL},
    {"a token that only contains close is not close",
     "GET /a HTTP/1.1\r\nConnection: closed, xclose\r\n\r\n", LDR_HTTP_GET, "/a", 1, -1, 0, 0, 0,
     NULL},
    {"chunked with Expect: 100-continue",
     "POST /push HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n",
     LDR_HTTP_POST, "/push", 1, -1, 1, 1, 0, NULL},
    {"another expectation is not 100-continue",
     "POST /push HTTP/1.1\r\nExpect: 100-continue-ish\r\nContent-Length: 0\r\n\r\n", LDR_HTTP_POST,
     "/push", 1, 0, 0, 0, 0, NULL},
    {"the same length twice", "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
     LDR_HTTP_POST, "/", 1, 5, 0, 0, 0, NULL},
    {"18 digits of length", "POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n",
     LDR_HTTP_POST, "/", 1, 999999999999999999LL, 0, 0, 0, NULL},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n\r\n", LDR_HTTP_OTHER, "*", 1, -1, 0, 0, 0, NULL},
    {"methods are case-sensitive", "get / HTTP/1.1\r\n\r\n", LDR_HTTP_OTHER, "/", 1, -1, 0, 0, 0,
     NULL},
    {"a fragment ends the path", "GET /a/b#frag?x HTTP/1.1\r\n\r\n", LDR_HTTP_GET, "/a/b", 1, -1, 0,
     0, 0, NULL},
    {"tabs around a value, an empty value, HTTP/1.9",
     "GET / HTTP/1.9\r\nX-Empty:\r\nauthorization:\t Bearer t\t \r\n\r\n", LDR_HTTP_GET, "/", 9, -1,
     0, 0, 0, "Bearer t"},
    {"obs-text in a value", "GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n", LDR_HTTP_GET, "/", 1,
     -1, 0, 0, 0, NULL},
};

static void heads_that_parse(void **state) {
  (void)state;
  for (size_t i = 0; i < N_OF(valid_heads); i++) {
    const struct valid_head *c = &valid_heads[i];
    size_t len = strlen(c->text);
    /* Bytes after the head (a body) are not part of it. */
    char buf[512];
    snprintf(buf, sizeof buf, "%sBODY", c->text);
    struct ldr_http_head h;
    memset(&h, 0x55, sizeof h);
    long r = ldr_http_parse_head(buf, len + 4, NULL, &h);
    if (r != (long)len) fail_msg("%s: %ld, want %zu", c->name, r, len);
    if (h.method != c->method) fail_msg("%s: method %d, want %d", c->name, h.method, c->method);
    if (h.path_len != strlen(c->path) || memcmp(h.path, c->path, h.path_len))
      fail_msg("%s: path '%.*s', want '%s'", c->name, (int)h.path_len, h.path, c->path);
    if (h.minor != c->minor) fail_msg("%s: minor %d, want %d", c->name, h.minor, c->minor);
    if (h.content_length != c->content_length)
      fail_msg("%s: content_length %lld, want %lld", c->name, (long long)h.content_length,
               (long long)c->content_length);
    if (h.chunked != c->chunked) fail_msg("%s: chunked %d", c->name, h.chunked);
    if (h.expect_continue != c->expect_continue)
      fail_msg("%s: expect_continue %d", c->name, h.expect_continue);
    if (h.close != c->close) fail_msg("%s: close %d, want %d", c->name, h.close, c->close);
    if (c->authorization == NULL) {
      if (h.authorization != NULL) fail_msg("%s: an Authorization", c->name);
    } else if (h.authorization == NULL || h.authorization_len != strlen(c->authorization) ||
               memcmp(h.authorization, c->authorization, h.authorization_len)) {
      fail_msg("%s: Authorization '%.*s', want '%s'", c->name, (int)h.authorization_len,
               h.authorization ? h.authorization : "", c->authorization);
    }
  }
}

/* Every proper prefix of a valid head needs more bytes: 0, whatever it ends with. */
static void incomplete_heads(void **state) {
  (void)state;
  for (size_t i = 0; i < N_OF(valid_heads); i++) {
    const char *text = valid_heads[i].text;
    size_t len = strlen(text);
    for (size_t n = 0; n < len; n++) {
      struct ldr_http_head h;
      /* A copy of exactly n bytes: ASan sees any read past them. */
      char *p = malloc(n + 1);
      memcpy(p, text, n);
      long r = ldr_http_parse_head(p, n, NULL, &h);
      free(p);
      if (r != 0) fail_msg("%s: %ld for its first %zu bytes, want 0", valid_heads[i].name, r, n);
    }
  }
}

/* A head arriving a byte at a time, as a connection reads it: `scanned` keeps
 * how far the search for its end got, so each byte is searched once (a slow
 * client sending 16 KiB so cost 130 million comparisons), and the answer is
 * the same as for the whole head. */
static void heads_a_byte_at_a_time(void **state) {
  (void)state;
  for (size_t i = 0; i < N_OF(valid_heads); i++) {
    const char *text = valid_heads[i].text;
    size_t len = strlen(text);
    struct ldr_http_head whole, h;
    long want = ldr_http_parse_head(text, len, NULL, &whole);
    size_t scanned = 0;
    long r = 0;
    size_t n;
    for (n = 1; n <= len && r == 0; n++) {
      char *p = malloc(n);
      memcpy(p, text, n);
      r = ldr_http_parse_head(p, n, &scanned, &h);
      free(p);
      if (r == 0 && scanned != n)
        fail_msg("%s: searched to %zu of %zu bytes, want all", valid_heads[i].name, scanned, n);
    }
    if (r != want || n - 1 != len)
      fail_msg("%s: %ld after %zu bytes, want %ld after %zu", valid_heads[i].name, r, n - 1, want,
               len);
    assert_int_equal(scanned, 0); /* ready for the next head */
    assert_int_equal(h.method, whole.method);
    assert_int_equal(h.content_length, whole.content_length);
  }
  /* The end is found where it straddles what came before and what came now. */
  const char *two = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t len = strlen(two), scanned = 0;
  struct ldr_http_head h;
  assert_int_equal(ldr_http_parse_head(two, len - 2, &scanned, &h), 0);
  assert_int_equal(scanned, len - 2);
  assert_int_equal(ldr_http_parse_head(two, len, &scanned, &h), (long)len);
}

/* ---- heads refused ---- */

static void heads_refused(void **state) {
  (void)state;
  static const struct {
    const char *name;
    const char *text;
    long want;
  } cases[] = {
      /* Smuggling: two parsers could frame these two ways. */
      {"Content-Length and Transfer-Encoding",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
      {"Transfer-Encoding and Content-Length",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -400},
      {"two different lengths", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       -400},
      {"a length list", "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", -400},
      {"a non-digit length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", -400},
      {"a signed length", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", -400},
      {"a negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400},
      {"an empty length", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", -400},
      {"19 digits of length", "POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n",
       -400},
      {"whitespace before ':'", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", -400},
      {"a tab before ':'", "POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n", -400},
      {"obs-fold with a space", "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", -400},
      {"obs-fold with a tab", "GET / HTTP/1.1\r\nX-A: b\r\n\tc\r\nHost: x\r\n\r\n", -400},
      {"a field line starting with a space", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", -400},
      {"bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", -400},
      {"bare LF in a field", "GET / HTTP/1.1\r\nHost: x\nX-B: y\r\n\r\n", -400},
      {"bare CR in a field", "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", -400},
      {"two Transfer-Encoding fields",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
      {"chunked on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
      /* The request line. */
      {"no target", "GET  HTTP/1.1\r\n\r\n", -400},
      {"no target and no space", "GET HTTP/1.1\r\n\r\n", -400},
      {"an absolute-form target", "GET http://x/ HTTP/1.1\r\n\r\n", -400},
      {"a target without '/'", "GET health HTTP/1.1\r\n\r\n", -400},
      {"a target '**'", "OPTIONS ** HTTP/1.1\r\n\r\n", -400},
      {"no method", " / HTTP/1.1\r\n\r\n", -400},
      {"a method with a separator", "GE(T / HTTP/1.1\r\n\r\n", -400},
      {"a control character in the target", "GET /a\x01 HTTP/1.1\r\n\r\n", -400},
      {"two spaces after the target", "GET /  HTTP/1.1\r\n\r\n", -400},
      {"not HTTP", "GET / FTP/1.1\r\n\r\n", -400},
      {"a lowercase protocol", "GET / http/1.1\r\n\r\n", -400},
      {"a minor version of two digits", "GET / HTTP/1.10\r\n\r\n", -400},
      {"a minor version that is not a digit", "GET / HTTP/1.x\r\n\r\n", -400},
      {"no version", "GET /\r\n\r\n", -400},
      /* Fields. */
      {"a field without a name", "GET / HTTP/1.1\r\n: x\r\n\r\n", -400},
      {"a field without a colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", -400},
      {"a control character in a value", "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", -400},
      {"DEL in a value", "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n", -400},
      {"a separator in a name", "GET / HTTP/1.1\r\nX(y): z\r\n\r\n", -400},
      /* Codings and versions larder does not speak. */
      {"gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", -501},
      {"gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
      {"identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", -501},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", -505},
      {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", -505},
      {"HTTP/3", "GET / HTTP/3\r\n\r\n", -505},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_http_head h;
    long r = ldr_http_parse_head(cases[i].text, strlen(cases[i].text), NULL, &h);
    if (r != cases[i].want) fail_msg("%s: %ld, want %ld", cases[i].name, r, cases[i].want);
  }
}

/* A head of `total` bytes: the request line, filler fields "X: aaa\r\n" of at
 * most 104 bytes, the blank line. */
static char *head_of(size_t total) {
  static const char line[] = "GET / HTTP/1.1\r\n";
  char *p = malloc(total + 1);
  size_t n = sizeof line - 1;
  memcpy(p, line, n);
  for (size_t rem = total - n - 2; rem > 0;) {
    size_t f = rem > 104 ? 100 : rem; /* the last field takes what is left, 5 bytes or more */
    assert_true(f >= 5);
    memcpy(p + n, "X: ", 3);
    memset(p + n + 3, 'a', f - 5);
    memcpy(p + n + f - 2, "\r\n", 2);
    n += f;
    rem -= f;
  }
  memcpy(p + n, "\r\n", 2);
  p[total] = '\0';
  return p;
}

/* LDR_HTTP_HEAD_MAX bytes of head are taken, one more is 431, complete or not. */
static void head_limit(void **state) {
  (void)state;
  struct ldr_http_head h;
  char *at_max = head_of(LDR_HTTP_HEAD_MAX);
  assert_int_equal(strlen(at_max), LDR_HTTP_HEAD_MAX);
  assert_int_equal(ldr_http_parse_head(at_max, LDR_HTTP_HEAD_MAX, NULL, &h), LDR_HTTP_HEAD_MAX);
  assert_int_equal(h.method, LDR_HTTP_GET);
  /* Without its last byte it is incomplete, and still within the limit. */
  assert_int_equal(ldr_http_parse_head(at_max, LDR_HTTP_HEAD_MAX - 1, NULL, &h), 0);
  free(at_max);

  char *past = head_of(LDR_HTTP_HEAD_MAX + 1);
  assert_int_equal(ldr_http_parse_head(past, LDR_HTTP_HEAD_MAX + 1, NULL, &h), -431);
  /* The first LDR_HTTP_HEAD_MAX bytes hold no end: refused once that many are in. */
  assert_int_equal(ldr_http_parse_head(past, LDR_HTTP_HEAD_MAX, NULL, &h), -431);
  assert_int_equal(ldr_http_parse_head(past, LDR_HTTP_HEAD_MAX - 1, NULL, &h), 0);
  free(past);

  /* A head that never ends, however many bytes come. */
  size_t big = 3 * LDR_HTTP_HEAD_MAX;
  char *endless = malloc(big);
  memset(endless, 'a', big);
  memcpy(endless, "GET / HTTP/1.1\r\nX: ", 19);
  assert_int_equal(ldr_http_parse_head(endless, big, NULL, &h), -431);
  free(endless);
}

/* ---- chunked bodies ---- */

struct dechunked {
  long r;          /* the last return: the bytes consumed, or the error */
  size_t consumed; /* over all calls */
  int done;
  char out[256];
  size_t out_len;
};

/* Decodes `in` in calls of `step` bytes (0: all at once), stopping at an error or when done. */
static struct dechunked dechunk(const char *in, size_t len, size_t step, size_t max) {
  struct dechunked d;
  memset(&d, 0, sizeof d);
  struct ldr_http_chunks st;
  memset(&st, 0, sizeof st);
  assert_true(max <= sizeof d.out);
  for (size_t at = 0; at < len && !st.done;) {
    size_t n = step == 0 || len - at < step ? len - at : step;
    /* A copy of exactly n bytes: ASan sees any read past them. */
    char *p = malloc(n);
    memcpy(p, in + at, n);
    d.r = ldr_http_dechunk(&st, p, n, d.out, &d.out_len, max);
    free(p);
    if (d.r < 0) break;
    assert_true((size_t)d.r <= n);
    if ((size_t)d.r < n) assert_true(st.done); /* only the end leaves bytes */
    d.consumed += (size_t)d.r;
    at += (size_t)d.r;
  }
  d.done = st.done;
  return d;
}

static void chunked_bodies(void **state) {
  (void)state;
  static const struct {
    const char *name;
    const char *in;
    const char *body;
    size_t consumed; /* 0: all of it */
  } cases[] = {
      {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 0},
      {"hex sizes in both cases", "3\r\nabc\r\nA\r\n0123456789\r\nb\r\nABCDEFGHIJK\r\n0\r\n\r\n",
       "abc0123456789ABCDEFGHIJK", 0},
      {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 0},
      {"15 hex digits", "000000000000003\r\nabc\r\n0\r\n\r\n", "abc", 0},
      {"an empty body", "0\r\n\r\n", "", 0},
      {"chunk extensions", "5;name=val\r\nhello\r\n1 ; x=\"a;b\"\r\n!\r\n0;last\r\n\r\n", "hello!",
       0},
      {"an extension after a tab", "2\t;x\r\nhi\r\n0\r\n\r\n", "hi", 0},
      {"whitespace before the line's end", "2 \t \r\nhi\r\n0\r\n\r\n", "hi", 0},
      {"an extension with a tab and obs-text", "2;x=\"a\t\xe9\"\r\nhi\r\n0\r\n\r\n", "hi", 0},
      {"trailers", "2\r\nok\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", "ok", 0},
      {"CR LF inside a chunk is data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", 0},
      {"bytes after the end are left", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "x", 11},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    size_t len = strlen(cases[i].in);
    size_t want_consumed = cases[i].consumed ? cases[i].consumed : len;
    /* Whole, byte by byte, and in threes: one result. */
    static const size_t steps[] = {0, 1, 3};
    for (size_t s = 0; s < N_OF(steps); s++) {
      struct dechunked d = dechunk(cases[i].in, len, steps[s], 64);
      if (d.r < 0) fail_msg("%s (step %zu): %ld", cases[i].name, steps[s], d.r);
      if (!d.done || d.consumed != want_consumed)
        fail_msg("%s (step %zu): done %d after %zu bytes, want %zu", cases[i].name, steps[s],
                 d.done, d.consumed, want_consumed);
      if (d.out_len != strlen(cases[i].body) || memcmp(d.out, cases[i].body, d.out_len))
        fail_msg("%s (step %zu): '%.*s', want '%s'", cases[i].name, steps[s], (int)d.out_len, d.out,
                 cases[i].body);
    }
  }
  /* A body cut short is not done, and takes every byte given. */
  struct dechunked d = dechunk("5\r\nhel", 6, 0, 64);
  assert_int_equal(d.r, 6);
  assert_false(d.done);
  assert_int_equal(d.out_len, 3);
}

static void chunked_refused(void **state) {
  (void)state;
  static const struct {
    const char *name;
    const char *in;
    size_t max;
    long want;
  } cases[] = {
      {"a size that is not hex", "x\r\n", 64, -400},
      {"no size", "\r\n0\r\n\r\n", 64, -400},
      {"a signed size", "-5\r\nhello\r\n", 64, -400},
      {"a 0x size", "0x5\r\nhello\r\n", 64, -400},
      {"an extension without a size", ";x\r\n", 64, -400},
      {"a bare LF after the size", "5\nhello\r\n0\r\n\r\n", 64, -400},
      {"a bare CR after the size", "5\rhello\r\n", 64, -400},
      {"a bare LF in an extension", "5;x\nhello\r\n", 64, -400},
      {"no CR after the data", "5\r\nhelloX\r\n0\r\n\r\n", 64, -400},
      {"no LF after the data", "5\r\nhello\rX0\r\n\r\n", 64, -400},
      {"a bare LF after the data", "5\r\nhello\n0\r\n\r\n", 64, -400},
      {"a bare LF in a trailer", "0\r\nX: 1\n\r\n", 64, -400},
      {"a bare CR in a trailer", "0\r\nX: 1\rY\r\n\r\n", 64, -400},
      {"a bare LF for the last line", "0\r\n\n", 64, -400},
      {"CR without LF at the end", "0\r\n\rX", 64, -400},
      /* After the size: whitespace, then an extension or the line's end (RFC 9112 §7.1.1);
       * extensions and trailers hold no control bytes. */
      {"words after the size", "5 junk\r\nhello\r\n0\r\n\r\n", 64, -400},
      {"a tab and a word after the size", "5\tx\r\nhello\r\n", 64, -400},
      {"a control byte in an extension", "5;a\x1f\r\nhello\r\n", 64, -400},
      {"a DEL in an extension", "5;a\x7f\r\nhello\r\n", 64, -400},
      {"a control byte in a trailer", "0\r\nX: a\002b\r\n\r\n", 64, -400},
      {"a control byte starting a trailer", "0\r\n\x01X: 1\r\n\r\n", 64, -400},
      /* 413: a chunk or the body past `max`, and size lines too long to be sizes. */
      {"one chunk past max", "10\r\n", 15, -413},
      {"the second chunk past max", "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 8, -413},
      {"one byte past max", "5\r\nhello\r\n0\r\n\r\n", 4, -413},
      {"16 hex digits", "0000000000000001\r\nx\r\n0\r\n\r\n", 64, -413},
      {"16 hex digits of F", "FFFFFFFFFFFFFFFF\r\n", 64, -413},
      {"15 hex digits of F", "FFFFFFFFFFFFFFF\r\n", 64, -413},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    size_t len = strlen(cases[i].in);
    for (size_t step = 0; step <= 1; step++) {
      struct dechunked d = dechunk(cases[i].in, len, step, cases[i].max);
      if (d.r != cases[i].want)
        fail_msg("%s (step %zu): %ld, want %ld", cases[i].name, step, d.r, cases[i].want);
      assert_true(d.out_len <= cases[i].max);
    }
  }
  /* NUL bytes, which strlen() would not reach, in an extension and a trailer. */
  static const char nul_ext[] = "5;a\0b\r\nhello\r\n0\r\n\r\n",
                    nul_trailer[] = "0\r\nX: a\0b\r\n\r\n";
  assert_int_equal(dechunk(nul_ext, sizeof nul_ext - 1, 0, 64).r, -400);
  assert_int_equal(dechunk(nul_trailer, sizeof nul_trailer - 1, 0, 64).r, -400);
  /* A body of exactly `max` bytes fits. */
  static const char exact[] = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
  struct dechunked d = dechunk(exact, sizeof exact - 1, 0, 8);
  assert_int_equal(d.consumed, sizeof exact - 1);
  assert_true(d.done);
  assert_int_equal(d.out_len, 8);
  assert_memory_equal(d.out, "helloabc", 8);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(heads_that_parse),
      cmocka_unit_test(incomplete_heads),
      cmocka_unit_test(heads_a_byte_at_a_time),
      cmocka_unit_test(heads_refused),
      cmocka_unit_test(head_limit),
      cmocka_unit_test(chunked_bodies),
      cmocka_unit_test(chunked_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
