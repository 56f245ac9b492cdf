/*
 * Request heads and chunked bodies, strictly: a request that two parsers
 * could read two ways (request smuggling: both Content-Length and
 * Transfer-Encoding, two different lengths, whitespace before a colon,
 * folded lines, bare LF) is refused rather than guessed at.
 */
#include "http/parse.h"

#include <string.h>
#include <strings.h>

static int tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A header value's characters: visible ASCII, obs-text, space and tab. */
static int vchar(unsigned char c) { return c == '\t' || c >= 0x20 ? c != 0x7f : 0; }

static int is(const char *s, size_t n, const char *word) {
  return strlen(word) == n && !strncasecmp(s, word, n);
}

/* The end of the head (the index after "\r\n\r\n"), or 0; the search starts
 * at buf[*from] and leaves *from where the next one, on more bytes, starts. */
static size_t head_end(const char *buf, size_t len, size_t *from) {
  size_t lim = len < LDR_HTTP_HEAD_MAX ? len : LDR_HTTP_HEAD_MAX;
  for (size_t i = *from > 3 ? *from : 3; i < lim; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
      return i + 1;
  if (lim > *from) *from = lim;
  return 0;
}

static int header(struct ldr_http_head *h, const char *name, size_t nlen, const char *v,
                  size_t vlen, int *seen_te, int *seen_close) {
  if (is(name, nlen, "content-length")) {
    if (vlen == 0 || vlen > 18) return -400;
    int64_t n = 0;
    for (size_t i = 0; i < vlen; i++) {
      if (v[i] < '0' || v[i] > '9') return -400;
      n = n * 10 + (v[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != n) return -400;
    h->content_length = n;
  } else if (is(name, nlen, "transfer-encoding")) {
    if (*seen_te) return -400;
    *seen_te = 1;
    if (!is(v, vlen, "chunked")) return -501;
    h->chunked = 1;
  } else if (is(name, nlen, "connection")) {
    /* A list of tokens: "close" ends the connection, "keep-alive" keeps a 1.0 one
     * unless "close" came too, in any order (RFC 9112 §9.3). */
    for (size_t i = 0; i < vlen;) {
      while (i < vlen && (v[i] == ',' || v[i] == ' ' || v[i] == '\t')) i++;
      size_t s = i;
      while (i < vlen && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
      if (is(v + s, i - s, "close")) h->close = *seen_close = 1;
      if (is(v + s, i - s, "keep-alive") && h->minor == 0 && !*seen_close) h->close = 0;
    }
  } else if (is(name, nlen, "expect")) {
    if (is(v, vlen, "100-continue")) h->expect_continue = 1;
  } else if (is(name, nlen, "authorization")) {
    h->authorization = v;
    h->authorization_len = vlen;
  }
  return 0;
}

long ldr_http_parse_head(const char *buf, size_t len, size_t *scanned, struct ldr_http_head *h) {
  size_t from = scanned ? *scanned : 0;
  size_t end = head_end(buf, len, &from);
  if (scanned) *scanned = end ? 0 : from;
  if (end == 0) return len >= LDR_HTTP_HEAD_MAX ? -431 : 0;
  memset(h, 0, sizeof *h);
  h->content_length = -1;
  /* Request line: method SP target SP HTTP/1.x CRLF */
  size_t i = 0;
  while (i < end && tchar((unsigned char)buf[i])) i++;
  if (i == 0 || buf[i] != ' ') return -400;
  if (i == 3 && !strncmp(buf, "GET", 3))
    h->method = LDR_HTTP_GET;
  else if (i == 4 && !strncmp(buf, "POST", 4))
    h->method = LDR_HTTP_POST;
  else if (i == 4 && !strncmp(buf, "HEAD", 4))
    h->method = LDR_HTTP_HEAD;
  else
    h->method = LDR_HTTP_OTHER;
  size_t t = ++i;
  while (i < end && buf[i] != ' ' && buf[i] != '\r' && (unsigned char)buf[i] > 0x20 &&
         buf[i] != 0x7f)
    i++;
  if (i == t || buf[i] != ' ') return -400;
  size_t tlen = i - t;
  const char *target = buf + t;
  if (target[0] != '/' && !(tlen == 1 && target[0] == '*')) return -400;
  h->path = target;
  h->path_len = tlen;
  for (size_t k = 0; k < tlen; k++)
    if (target[k] == '?' || target[k] == '#') {
      h->path_len = k;
      break;
    }
  i++;
  if (end - i < 10 || strncmp(buf + i, "HTTP/", 5)) return -400;
  if (buf[i + 5] != '1' || buf[i + 6] != '.') return -505;
  if (buf[i + 7] < '0' || buf[i + 7] > '9' || buf[i + 8] != '\r' || buf[i + 9] != '\n') return -400;
  h->minor = buf[i + 7] - '0';
  h->close = h->minor == 0;
  i += 10;
  /* Header fields until the blank line. */
  int seen_te = 0, seen_close = 0;
  while (i < end - 2) {
    size_t n = i;
    while (n < end && tchar((unsigned char)buf[n])) n++;
    if (n == i || buf[n] != ':') return -400; /* no name, or space before ':' (RFC 9112 §5.1) */
    size_t v = n + 1;
    while (v < end && (buf[v] == ' ' || buf[v] == '\t')) v++;
    size_t e = v;
    while (e < end && buf[e] != '\r' && buf[e] != '\n') {
      if (!vchar((unsigned char)buf[e])) return -400;
      e++;
    }
    if (e + 1 >= end || buf[e] != '\r' || buf[e + 1] != '\n') return -400; /* bare LF */
    size_t ve = e;
    while (ve > v && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
    int r = header(h, buf + i, n - i, buf + v, ve - v, &seen_te, &seen_close);
    if (r < 0) return r;
    i = e + 2;
    if (i < end - 2 && (buf[i] == ' ' || buf[i] == '\t')) return -400; /* obs-fold */
  }
  if (h->chunked && (h->content_length >= 0 || h->minor == 0)) return -400;
  return (long)end;
}

enum {
  S_SIZE,
  S_SIZE_WS,
  S_EXT,
  S_SIZE_LF,
  S_DATA,
  S_DATA_CR,
  S_DATA_LF,
  S_TRAILER_START,
  S_TRAILER_LINE,
  S_TRAILER_LF,
  S_END_LF
};

static int hex(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

long ldr_http_dechunk(struct ldr_http_chunks *st, const char *in, size_t len, char *out,
                      size_t *out_len, size_t max) {
  size_t i = 0;
  while (i < len && !st->done) {
    char c = in[i];
    switch (st->state) {
    case S_SIZE:
      if (hex(c) >= 0) {
        if (++st->digits > 15) return -413;
        st->left = st->left * 16 + (uint64_t)hex(c);
      } else if (st->digits == 0) {
        return -400;
      } else if (c == ';') {
        st->state = S_EXT;
      } else if (c == ' ' || c == '\t') {
        st->state = S_SIZE_WS;
      } else if (c == '\r') {
        st->state = S_SIZE_LF;
      } else {
        return -400;
      }
      i++;
      break;
    case S_SIZE_WS: /* whitespace after the size leads to an extension or the line's end */
      if (c == ';')
        st->state = S_EXT;
      else if (c == '\r')
        st->state = S_SIZE_LF;
      else if (c != ' ' && c != '\t')
        return -400;
      i++;
      break;
    case S_EXT: /* extensions are ignored, but hold no control bytes (RFC 9112 §7.1.1) */
      if (c == '\r')
        st->state = S_SIZE_LF;
      else if (!vchar((unsigned char)c))
        return -400;
      i++;
      break;
    case S_SIZE_LF:
      if (c != '\n') return -400;
      i++;
      if (st->left == 0) {
        st->state = S_TRAILER_START;
      } else {
        if (st->left > max - *out_len) return -413;
        st->state = S_DATA;
      }
      break;
    case S_DATA: {
      size_t n = len - i < st->left ? len - i : (size_t)st->left;
      memcpy(out + *out_len, in + i, n);
      *out_len += n;
      st->left -= n;
      i += n;
      if (st->left == 0) st->state = S_DATA_CR;
      break;
    }
    case S_DATA_CR:
      if (c != '\r') return -400;
      st->state = S_DATA_LF;
      i++;
      break;
    case S_DATA_LF:
      if (c != '\n') return -400;
      st->state = S_SIZE;
      st->digits = 0;
      i++;
      break;
    case S_TRAILER_START:
      st->state = c == '\r' ? S_END_LF : S_TRAILER_LINE;
      if (c != '\r' && !vchar((unsigned char)c)) return -400;
      i++;
      break;
    case S_TRAILER_LINE: /* trailers are dropped, but hold no control bytes either */
      if (c == '\r')
        st->state = S_TRAILER_LF;
      else if (!vchar((unsigned char)c))
        return -400;
      i++;
      break;
    case S_TRAILER_LF:
      if (c != '\n') return -400;
      st->state = S_TRAILER_START;
      i++;
      break;
    case S_END_LF:
      if (c != '\n') return -400;
      st->done = 1;
      i++;
      break;
    }
  }
  return (long)i;
}
