/*
 * One HTTP connection, served by whichever thread owns it (server_int.h):
 * bytes in (within what the request being read may take), the request's
 * head decided on before its body (routes.c), the body (Content-Length or
 * chunked, counted against the budget of all bodies), the answer, and the
 * next request on the connection. TLS goes through the same two I/O calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server_int.h"

/* ---- connection I/O: >0 bytes, 0 the peer closed, -1 try later, -2 failed */

static ssize_t conn_recv(struct conn *c, char *buf, size_t n) {
  if (c->ssl == NULL) {
    ssize_t r = recv(c->fd, buf, n, 0);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    return r;
  }
  int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
  if (r > 0) {
    c->handshake = 0;
    return r;
  }
  int e = SSL_get_error(c->ssl, r);
  ERR_clear_error();
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
  return e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

static ssize_t conn_send(struct conn *c, const char *buf, size_t n) {
  if (c->ssl == NULL) {
    ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    return r;
  }
  int r = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  ERR_clear_error();
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : -2;
}

static void release_body(struct conn *c) {
  if (c->reserved) atomic_fetch_sub(&c->h->body_bytes, c->reserved);
  c->reserved = 0;
}

/* Frees what a connection reads into and writes from. */
static void drop_buffers(struct conn *c) {
  ldr_sb_free(&c->x.out);
  free(c->in);
  free(c->body);
  free(c->out);
  c->in = c->body = c->out = NULL;
  c->in_len = c->in_cap = c->body_len = c->body_cap = c->out_len = c->out_off = c->out_cap = 0;
}

/* Ends a connection its thread owns. Its memory stays until every thread
 * has come round its loop: one may hold an event for it from before. */
void ldr_conn_close(struct conn *c) {
  struct ldr_http *h = c->h;
  release_body(c);
  atomic_store(&c->state, CLOSED);
  if (c->ssl != NULL) SSL_free(c->ssl);
  c->ssl = NULL;
  drop_buffers(c);
  /* The descriptor goes under the lock the ticker arms connections under:
   * the ticker cannot arm it after it is closed and reused by a new
   * connection (whose events would then reach this one). */
  pthread_mutex_lock(&h->lock);
  epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    h->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->dead_at = atomic_load(&h->epoch);
  c->prev = NULL;
  c->next = h->graves;
  h->graves = c;
  pthread_mutex_unlock(&h->lock);
  atomic_fetch_sub(&h->nconns, 1);
}

/* Hands a connection its thread is done with back to epoll, armed for what
 * it waits for: the rest of its reply, or more bytes; `again`: for writing
 * in any case, so that a thread takes it up again once the events ahead of
 * it are served. */
static void conn_park_as(struct conn *c, int again) {
  int writing = c->out_len > 0;
  /* Timed as a reply going out (no progress for receive_timeout_s: closed):
   * when the socket is full, EPOLLOUT waits for the client to read. */
  atomic_store(&c->pending, writing || again);
  c->w = NULL;
  /* Armed before it is PARKED: the ticker claims only PARKED connections, so
   * it cannot arm this one in between and have its arming overwritten. */
  atomic_store_explicit(&c->state, PARKING, memory_order_release);
  struct epoll_event ev = {.events = (writing || again ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT,
                           .data.ptr = c};
  epoll_ctl(c->h->ep, EPOLL_CTL_MOD, c->fd, &ev);
  atomic_store_explicit(&c->state, PARKED, memory_order_release);
}

static void conn_park(struct conn *c) { conn_park_as(c, 0); }

/* Writes what `out` holds, as far as the socket takes it; 0, or -1 when the
 * connection failed. */
static int conn_flush(struct conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t r = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
    if (r == -1) return 0; /* the rest when the socket has room (conn_park) */
    if (r <= 0) return -1;
    c->out_off += (size_t)r;
    atomic_store_explicit(&c->last_ns, ldr_now_ns(), memory_order_relaxed);
  }
  c->out_off = c->out_len = 0;
  if (c->out_cap > 65536) { /* a large reply's buffer goes */
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  return 0;
}

static int out_reserve(struct conn *c, size_t more) {
  if (c->out_len + more <= c->out_cap) return 0;
  size_t cap = c->out_cap ? c->out_cap : 4096;
  while (cap < c->out_len + more) cap *= 2;
  char *p = realloc(c->out, cap);
  if (p == NULL) return -1;
  c->out = p;
  c->out_cap = cap;
  return 0;
}

static const char *reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Content Too Large";
  case 422:
    return "Unprocessable Content";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

/* Queues the answer in `x` and writes what the socket takes. */
static int conn_reply(struct conn *c, struct ldr_http_exchange *x) {
  const char *body = ldr_sb_str(&x->out);
  size_t blen = body ? x->out.len : 0;
  if (body == NULL) { /* the body could not be built: memory */
    ldr_sb_free(&x->out);
    x->status = 500;
    x->content_type = NULL;
    x->headers[0] = '\0';
    body = "";
  }
  int head_only = c->head.method == LDR_HTTP_HEAD;
  if (x->close || c->head.close || atomic_load(&c->h->draining)) c->closing = 1;
  char head[512];
  int n =
      snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
               x->status, reason(x->status), blen, x->content_type ? "Content-Type: " : "",
               x->content_type ? x->content_type : "", x->content_type ? "\r\n" : "", x->headers,
               c->closing           ? "Connection: close\r\n"
               : c->head.minor == 0 ? "Connection: keep-alive\r\n"
                                    : "");
  if (n < 0 || (size_t)n >= sizeof head || out_reserve(c, (size_t)n + blen) != 0) {
    ldr_sb_free(&x->out);
    return -1;
  }
  memcpy(c->out + c->out_len, head, (size_t)n);
  c->out_len += (size_t)n;
  c->answered++;
  if (!head_only && blen) {
    memcpy(c->out + c->out_len, body, blen);
    c->out_len += blen;
  }
  ldr_sb_free(&x->out);
  return conn_flush(c);
}

/* ---- requests */

static void exchange_init(struct conn *c) {
  struct ldr_http_exchange *x = &c->x;
  ldr_sb_free(&x->out);
  memset(x, 0, sizeof *x);
  x->t = &c->w->t;
  x->head = &c->head;
  x->scopes = c->cert_scopes;
}

/* Answers a request that cannot be read on (bad framing, too large, too
 * slow) and closes the connection once the answer is out. */
/* Sends the answer `x` holds for a request not read on, and closes after it. */
static int answer_and_close(struct conn *c) {
  c->x.close = 1;
  c->head_len = 0;
  ldr_http_count(c->w, NULL, c->x.status, 0);
  return conn_reply(c, &c->x);
}

static int refuse(struct conn *c, int status) {
  exchange_init(c);
  ldr_http_answer_status(&c->x, status);
  return answer_and_close(c);
}

/* Makes this request hold `total` bytes of the budget of all bodies (it
 * grows as the body comes, never ahead of it); 0, or -1 when all connections
 * together already hold the budget. */
static int reserve_body(struct conn *c, size_t total) {
  struct ldr_http *h = c->h;
  if (total <= c->reserved) return 0;
  size_t n = total - c->reserved;
  size_t now = atomic_fetch_add(&h->body_bytes, n);
  if (now + n > h->body_budget && now > 0) {
    atomic_fetch_sub(&h->body_bytes, n);
    return -1;
  }
  c->reserved += n;
  return 0;
}

/* The head is in: decide what can be decided before the body. */
static int on_head(struct conn *c) {
  const struct ldr_config *cfg = c->h->env->cfg;
  struct ldr_http *h = c->h;
  exchange_init(c);
  c->early = 0;
  c->route = NULL;
  c->chunks = (struct ldr_http_chunks){0};
  c->chunk_raw = 0;
  c->body_len = 0;
  c->over_budget = 0;
  if (atomic_load(&h->draining)) { /* 503 and closed: /health's as when not ready */
    ldr_http_answer_draining(&c->x);
    return answer_and_close(c);
  }
  /* Route and token first, then size (HTTP.md §1). */
  struct ldr_auth *auth = atomic_load(c->h->env->auth);
  if (ldr_http_admit(&c->x, auth, c->cert_scopes, &c->route) != 0) c->early = 1;
  int has_body = c->head.chunked || c->head.content_length > 0;
  if (!c->early && c->head.content_length > (int64_t)cfg->max_message_bytes) return refuse(c, 413);
  if (c->early && has_body &&
      (c->head.expect_continue || c->head.chunked || c->head.content_length > EARLY_BODY_MAX)) {
    /* The answer does not depend on the body: answer now and close, rather
     * than take in a body only to drop it (or make a client waiting for
     * "100 Continue" wait in vain). */
    return answer_and_close(c);
  }
  if (has_body && !c->early && reserve_body(c, READ_CHUNK) != 0) return refuse(c, 503);
  if (has_body && c->head.expect_continue && !c->early &&
      c->in_len == c->head_len) { /* nothing of the body yet: say go ahead */
    static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (out_reserve(c, sizeof go - 1) != 0) return -1;
    memcpy(c->out + c->out_len, go, sizeof go - 1);
    c->out_len += sizeof go - 1;
    return conn_flush(c);
  }
  return 0;
}

/* Decodes more of a chunked body into c->body and drops the encoded bytes
 * from `in`, so that the body is held once; 1 when it is complete, 0 for
 * more, or -status. */
static int take_chunks(struct conn *c) {
  const struct ldr_config *cfg = c->h->env->cfg;
  size_t max = (size_t)cfg->max_message_bytes;
  char *in = c->in + c->head_len;
  size_t avail = c->in_len - c->head_len;
  /* Decoded bytes are never more than the encoded ones: room for those. */
  size_t need = c->body_len + avail < max ? c->body_len + avail : max;
  if (need + 1 > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : READ_CHUNK;
    while (cap < need + 1) cap *= 2;
    if (cap > max + 1) cap = max + 1;
    /* The decoded body's buffer, and a read's worth of encoded bytes. */
    if (!c->early && reserve_body(c, cap + READ_CHUNK) != 0) return -503;
    char *p = realloc(c->body, cap);
    if (p == NULL) return -503;
    c->body = p;
    c->body_cap = cap;
  }
  long r = ldr_http_dechunk(&c->chunks, in, avail, c->body, &c->body_len, max);
  if (r < 0) return (int)r;
  memmove(in, in + r, avail - (size_t)r);
  c->in_len -= (size_t)r;
  c->chunk_raw += (size_t)r;
  /* The framing around the data may not run on without bound either. */
  if (c->chunk_raw > 2 * max + 65536) return -413;
  return c->chunks.done ? 1 : 0;
}

/* A whole request is in: answer it and drop its bytes. */
static int on_request(struct conn *c) {
  struct ldr_http_exchange *x = &c->x;
  size_t consumed;
  if (c->head.chunked) {
    x->body = c->body;
    x->body_len = c->body_len;
    consumed = c->head_len; /* the body's bytes were dropped as they were decoded */
  } else {
    size_t cl = c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
    x->body = c->in + c->head_len;
    x->body_len = cl;
    consumed = c->head_len + cl;
  }
  int64_t t0 = ldr_now_ns();
  if (!c->early) {
    struct ldr_http_thread *t = &c->w->t;
    x->t = t; /* the thread serving it now, which may not be the one that read its head */
    c->route->fn(x);
    if (x->body_len >= LARGE_BYTES || t->arena.held >= LARGE_BYTES || x->out.len >= LARGE_BYTES)
      c->w->trim = 1;
    ldr_arena_reset(&t->arena);
  }
  release_body(c);
  ldr_http_count(c->w, c->early ? NULL : c->route, x->status, ldr_now_ns() - t0);
  int rc = conn_reply(c, x);
  memmove(c->in, c->in + consumed, c->in_len - consumed);
  c->in_len -= consumed;
  c->head_len = 0;
  /* A refusal before the next head is complete (408, 431) must not answer
   * as this request's method asked (HEAD: no body). */
  c->head = (struct ldr_http_head){.content_length = -1};
  c->head_scanned = 0;
  free(c->body);
  c->body = NULL;
  c->body_len = c->body_cap = 0;
  atomic_store_explicit(&c->started_ns, c->in_len ? ldr_now_ns() : 0, memory_order_relaxed);
  if (c->in_cap > 65536 && c->in_len < 4096) { /* a large body's buffer goes */
    char *small = malloc(4096);
    if (small != NULL) {
      memcpy(small, c->in, c->in_len);
      free(c->in);
      c->in = small;
      c->in_cap = 4096;
    }
  }
  return rc;
}

/* Moves every request the buffer holds on as far as it goes; -1 to close. */
static int conn_process(struct conn *c) {
  while (!c->closing && c->out_len == 0 && c->answered < ANSWERS_PER_EVENT) {
    if (c->head_len == 0) {
      if (c->in_len == 0) return 0;
      long r = ldr_http_parse_head(c->in, c->in_len, &c->head_scanned, &c->head);
      if (r == 0) return 0;
      if (r < 0) return refuse(c, (int)-r);
      c->head_len = (size_t)r;
      if (on_head(c) != 0) return -1;
      if (c->head_len == 0 || c->out_len > 0) continue; /* answered, or 100 Continue pending */
    }
    if (c->head.chunked) {
      int r = take_chunks(c);
      if (r < 0) return refuse(c, -r);
      if (r == 0) return 0;
    } else if (c->in_len - c->head_len <
               (size_t)(c->head.content_length > 0 ? c->head.content_length : 0)) {
      return c->over_budget ? refuse(c, 503) : 0; /* the rest cannot be taken */
    }
    if (on_request(c) != 0) return -1;
  }
  return 0;
}

/* Makes `in` hold `cap` bytes; the parsed head's pointers into it move with
 * it (a handler reads the path after the body came). 0, or -1 for memory. */
static int grow_in(struct conn *c, size_t cap) {
  ptrdiff_t path = c->head_len && c->head.path ? c->head.path - c->in : -1;
  ptrdiff_t auth = c->head_len && c->head.authorization ? c->head.authorization - c->in : -1;
  char *p = realloc(c->in, cap);
  if (p == NULL) return -1;
  c->in = p;
  c->in_cap = cap;
  if (path >= 0) c->head.path = p + path;
  if (auth >= 0) c->head.authorization = p + auth;
  return 0;
}

/* Reads what the socket holds, within the room the request being read may
 * take: its head, then its body (a chunked one a read at a time, decoded
 * before the next; a Content-Length one step by step, each step taken from
 * the budget of all bodies first). Returns the bytes read, or -1 when the
 * connection failed; sets c->eof when the peer closed its side. */
static long conn_read(struct conn *c) {
  long total = 0;
  for (;;) {
    size_t limit = LDR_HTTP_HEAD_MAX + READ_CHUNK;
    int counted = c->head_len && !c->early && !c->head.chunked && c->head.content_length > 0;
    if (c->head_len && c->head.chunked)
      limit = c->head_len + READ_CHUNK;
    else if (c->head_len)
      limit = c->head_len + (size_t)(c->head.content_length > 0 ? c->head.content_length : 0) +
              READ_CHUNK;
    if (c->in_len >= limit) return total; /* the rest waits until this request is answered */
    if (c->in_cap - c->in_len < READ_CHUNK / 4) {
      size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK;
      if (cap > limit) cap = limit;
      if (grow_in(c, cap) != 0) return -1;
    }
    size_t room = c->in_cap - c->in_len;
    if (room > limit - c->in_len) room = limit - c->in_len;
    if (counted) {
      if (room > BODY_STEP) room = BODY_STEP;
      /* Bytes past the body (a pipelined request's) are not the body's. */
      size_t want = c->in_len - c->head_len + room, cl = (size_t)c->head.content_length;
      if (reserve_body(c, want < cl ? want : cl) != 0) {
        c->over_budget = 1;
        return total;
      }
    }
    ssize_t r = conn_recv(c, c->in + c->in_len, room);
    if (r == -1) return total;
    if (r == 0) {
      c->eof = 1;
      return total;
    }
    if (r < 0) return -1;
    int64_t now = ldr_now_ns();
    if (atomic_load_explicit(&c->started_ns, memory_order_relaxed) == 0)
      atomic_store_explicit(&c->started_ns, now, memory_order_relaxed);
    atomic_store_explicit(&c->last_ns, now, memory_order_relaxed);
    c->in_len += (size_t)r;
    total += r;
    if ((size_t)r < room && c->ssl == NULL) return total;
  }
}

/* Drops what a lingering connection received; 1 when it is done (the
 * client closed, failed, or sent more than LINGER_MAX), 0 to wait for more. */
static int linger_drain(struct conn *c) {
  char buf[READ_CHUNK];
  for (;;) {
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r == 0) return 1;
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
    c->lingered += (size_t)r;
    if (c->lingered > LINGER_MAX) return 1;
  }
}

/*
 * Closes a connection whose answer is out while the client may still be
 * sending (a body refused from its head: 413, 401, 503 ...). close() with
 * bytes unread makes the kernel reset the connection, and a client still
 * sending its body then fails on its write before it reads the answer. So
 * the write side is shut (after TLS's close_notify) and what comes is read
 * and dropped until the client closes, for at most receive_timeout_s (the
 * ticker) and LINGER_MAX bytes: RFC 9112 §9.6, nginx's lingering_close.
 */
static void conn_linger(struct conn *c) {
  if (c->eof) { /* the client is done sending: nothing to wait for */
    ldr_conn_close(c);
    return;
  }
  c->lingering = 1;
  if (c->ssl != NULL) {
    SSL_shutdown(c->ssl);
    ERR_clear_error();
  }
  shutdown(c->fd, SHUT_WR);
  /* Nothing more is read or written: the buffers go now, not when it closes
   * (the bodies' budget no longer counts them). */
  release_body(c);
  drop_buffers(c);
  atomic_store_explicit(&c->started_ns, ldr_now_ns(), memory_order_relaxed);
  if (linger_drain(c)) {
    ldr_conn_close(c);
    return;
  }
  conn_park(c);
}

/* Serves a connection this thread owns for an event; leaves it parked again
 * or closed. */
void ldr_conn_event(struct worker *w, struct conn *c, uint32_t events, int expired) {
  c->w = w;
  if (c->lingering) { /* its time is up (expired), or more to drop */
    if (expired || linger_drain(c))
      ldr_conn_close(c);
    else
      conn_park(c);
    return;
  }
  int64_t now = ldr_now_ns();
  int64_t limit = (int64_t)c->h->env->cfg->receive_timeout_s * 1000000000;
  if (expired) {
    /* The ticker found it waiting too long (or the server draining): */
    int64_t started = atomic_load_explicit(&c->started_ns, memory_order_relaxed);
    int64_t last = atomic_load_explicit(&c->last_ns, memory_order_relaxed);
    if (c->out_len > 0 && now - last > limit) { /* a reply the client does not take */
      ldr_conn_close(c);
      return;
    }
    if (c->out_len == 0 && started && now - started > limit) { /* a request that does not come */
      if (c->handshake || refuse(c, 408) != 0) {
        ldr_conn_close(c);
        return;
      }
      if (c->out_len == 0) { /* the 408 is out: as after any answer that closes */
        conn_linger(c);
        return;
      }
      conn_park(c);
      return;
    }
    if (c->out_len == 0 && !started &&
        (atomic_load(&c->h->draining) || now - last > IDLE_NS)) { /* idle */
      ldr_conn_close(c);
      return;
    }
  }
  if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN) && c->out_len == 0) {
    ldr_conn_close(c);
    return;
  }
  c->answered = 0;
  for (;;) {
    if (c->out_len > 0) {
      if (conn_flush(c) != 0) {
        ldr_conn_close(c);
        return;
      }
      if (c->out_len > 0) break; /* the rest when the socket has room */
      if (c->closing) {
        conn_linger(c);
        return;
      }
    }
    long got = c->eof || c->over_budget ? 0 : conn_read(c);
    if (got < 0) { /* the connection failed: nothing can be answered */
      ldr_conn_close(c);
      return;
    }
    if (conn_process(c) != 0) {
      ldr_conn_close(c);
      return;
    }
    if (c->closing && c->out_len == 0) {
      conn_linger(c);
      return;
    }
    /* Go on while there is more to take without waiting: the socket gave
     * bytes (a full buffer may have left some), or TLS holds decrypted ones
     * epoll does not know of. A reply still going out waits for room. After
     * ANSWERS_PER_EVENT answers the connection goes to the back of the
     * line: armed for writing, which wakes a thread at once (epoll would
     * not wake one for requests already read). */
    if (c->out_len > 0) continue;
    if (c->answered >= ANSWERS_PER_EVENT) {
      conn_park_as(c, 1);
      return;
    }
    if (c->eof) { /* what was in is answered; a request cut short never will be */
      ldr_conn_close(c);
      return;
    }
    if (got == 0 && !(c->ssl != NULL && SSL_pending(c->ssl) > 0)) break;
  }
  conn_park(c);
}
