/*
 * HTTP/1.1 request framing (RFC 9112): the request head, and chunked bodies.
 * Pure functions over bytes, so that they are tested and fuzzed alone.
 */
#ifndef LDR_HTTP_PARSE_H
#define LDR_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The largest request head taken; a larger one is refused with 431. */
#define LDR_HTTP_HEAD_MAX 16384

enum ldr_http_method { LDR_HTTP_OTHER, LDR_HTTP_GET, LDR_HTTP_HEAD, LDR_HTTP_POST };

/* What larder needs of a request head; pointers into the parsed bytes. */
struct ldr_http_head {
  enum ldr_http_method method;
  const char *path; /* the target's path, without the query */
  size_t path_len;
  int minor;                 /* HTTP/1.<minor> */
  int64_t content_length;    /* -1: none */
  int chunked;               /* Transfer-Encoding: chunked */
  int expect_continue;       /* Expect: 100-continue */
  int close;                 /* the connection ends after this request */
  const char *authorization; /* NULL: absent */
  size_t authorization_len;
};

/*
 * Parses the head at buf[0..len). Returns the head's length (through the
 * blank line) when it is complete and valid; 0 when more bytes are needed;
 * or minus the HTTP status to answer: -400 (malformed, or both
 * Content-Length and Transfer-Encoding, or a Content-Length that is not one
 * number), -431 (the head passes LDR_HTTP_HEAD_MAX), -501 (a transfer coding
 * other than chunked), -505 (not HTTP/1.x).
 *
 * `scanned` (NULL: none) keeps, between calls on a growing buffer, how far
 * the search for the blank line got, so that a head arriving a byte at a time
 * is searched once, not once per byte; 0 for a new head.
 */
long ldr_http_parse_head(const char *buf, size_t len, size_t *scanned, struct ldr_http_head *h);

/* A chunked body being decoded (RFC 9112 §7.1): zero-initialized to start. */
struct ldr_http_chunks {
  int state;
  int digits;    /* hex digits of the size line so far */
  uint64_t left; /* bytes of the current chunk still to come */
  int done;      /* the last chunk and the trailers were read */
};

/*
 * Decodes what it can of in[0..len) into out (appending at *out_len, never
 * past `max`). Returns the bytes of `in` consumed (all of them unless done),
 * or -400 for a malformed body, -413 when the decoded body would pass `max`.
 */
long ldr_http_dechunk(struct ldr_http_chunks *st, const char *in, size_t len, char *out,
                      size_t *out_len, size_t max);

#endif
