/*
 * What http/server.c (threads, accept, timeouts, lifecycle) and http/conn.c
 * (a connection: bytes in and out, requests, answers) share.
 */
#ifndef LDR_HTTP_SERVER_INT_H
#define LDR_HTTP_SERVER_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/histogram.h"
#include "http/http_int.h"

#define IDLE_NS (60 * 1000000000LL) /* an idle keep-alive connection closes */
#define TICK_MS 250                 /* how often timeouts are looked at */
#define READ_CHUNK 16384
#define EVENTS 64
/* A request this large leaves freed memory that malloc keeps; the thread
 * gives it back once it has nothing to do. */
#define LARGE_BYTES (1u << 20)
/* A request refused from its head alone keeps its connection when its body
 * is at most this long (it is read and dropped); a longer one is not read. */
#define EARLY_BODY_MAX 65536
/* A body is read at most this much at a time, each step taken from the
 * budget of all bodies before it is read. */
#define BODY_STEP (256u << 10)
/* Requests one connection has answered before its thread turns to other
 * connections' events (a client pipelining without end keeps no thread). */
#define ANSWERS_PER_EVENT 16
/* A connection closed after its answer (a body refused from its head, a
 * framing error) drops what the client still sends, up to this much and for
 * at most receive_timeout_s, before it is closed (conn.c, conn_linger). */
#define LINGER_MAX (64u << 20)

struct worker;

/* Who has a connection: parked in epoll (armed), served by one thread,
 * claimed by the ticker for a timeout (then armed to wake a thread), or
 * closed (its memory waits until no thread can still hold an event for it).
 * PARKING: its thread is arming it; the ticker leaves it alone (its arming
 * would be overwritten), and an event that comes meanwhile waits for PARKED. */
enum { PARKED, OWNED, EXPIRED, CLOSED, PARKING };

struct conn {
  int fd;
  SSL *ssl;
  unsigned cert_scopes;
  struct ldr_http *h;
  struct worker *w; /* the thread serving it now (while OWNED) */
  atomic_int state;
  struct conn *prev, *next;   /* in h->conns, under h->lock; in h->graves once closed */
  unsigned long long dead_at; /* h->epoch when it was closed */
  char *in;                   /* bytes received and not yet consumed */
  size_t in_len, in_cap;
  size_t head_len;     /* 0: the head is not complete */
  size_t head_scanned; /* bytes of an incomplete head searched for its end (ldr_http_parse_head) */
  struct ldr_http_head head;
  const struct ldr_http_route *route;
  int early; /* the answer was decided from the head; the body is read and dropped */
  struct ldr_http_exchange x;
  struct ldr_http_chunks chunks;
  size_t chunk_raw; /* bytes of chunked framing and data decoded (and dropped from `in`) */
  char *body;       /* a chunked body, decoded */
  size_t body_len, body_cap;
  size_t reserved; /* bytes of the body budget this request holds: what its body takes */
  char *out;
  size_t out_len, out_off, out_cap;
  /* Read by the ticker while the connection is parked, hence atomic. */
  _Atomic int64_t started_ns; /* the first byte of the request being read; 0: none */
  _Atomic int64_t last_ns;    /* the last byte in or out */
  atomic_int pending;         /* a reply is not yet written out */
  int closing;                /* close once `out` is written */
  int handshake;              /* TLS: not yet through the handshake */
  int eof;                    /* the peer closed its side: answer what is in, then close */
  int over_budget;            /* the body budget had no room for more of this request */
  int answered;               /* requests answered in the current event */
  atomic_int lingering;       /* answered, shut for writing, dropping what comes (ticker reads) */
  size_t lingered;            /* bytes dropped so */
};

/* The HTTP statuses larder answers, each with a slot in the counters; the
 * last slot counts any other. */
#define LDR_HTTP_STATUSES 18
extern const int ldr_http_statuses[LDR_HTTP_STATUSES - 1];

/* One thread's counters, written by that thread only (as gRPC's workers'):
 * per route (the last: requests no route took) and status, and latency. */
struct http_counts {
  atomic_ullong requests[LDR_HTTP_ROUTES_MAX + 1][LDR_HTTP_STATUSES];
  atomic_ullong latency[LDR_HTTP_ROUTES_MAX + 1][LDR_HISTOGRAM_BUCKETS + 1];
  atomic_ullong latency_ns[LDR_HTTP_ROUTES_MAX + 1];
};

struct worker {
  struct ldr_http *h;
  atomic_ullong seen; /* h->epoch at the top of this thread's last loop */
  struct http_counts counts;
  int idx;
  pthread_t thread;
  atomic_int started; /* set by the thread that starts it, read by any thread's bury() */
  struct ldr_http_thread t;
  int trim;
};

struct ldr_http {
  const struct ldr_http_env *env;
  int lfd;
  int ep;   /* every connection, the listener and `wake` */
  int wake; /* eventfd, never read: once written it wakes every thread (stop) */
  int nworkers;
  struct worker *workers;
  pthread_mutex_t lock; /* guards `conns` and `graves` (accept, close, the ticker) */
  struct conn *conns;
  struct conn *graves; /* closed, freed once every thread has seen a later epoch */
  atomic_ullong epoch; /* advanced by each tick */
  atomic_llong last_tick_ns;
  atomic_int draining, stop;
  atomic_int nconns;
  /* One thread accepts at a time. With no descriptor left (EMFILE), `spare`
   * is given up to take the waiting connection and close it at once, as past
   * http_max_connections, instead of every thread waking for it again; when
   * even that fails the listener rests until `rest_until_ns` (server.c). */
  pthread_mutex_t accept_lock;
  int spare;
  atomic_llong rest_until_ns;
  atomic_size_t body_bytes; /* bytes of bodies being received, all connections */
  size_t body_budget;
  pthread_mutex_t tls_lock; /* guards `ctx` between SIGHUP and accepts */
  SSL_CTX *ctx;             /* NULL: plaintext */
};

/* Marker pointers that tell the listener and the wake-up fd from connections. */
/* conn.c */
/* Serves a connection this thread owns (it won the state's CAS) for an
 * epoll event; `expired`: the ticker claimed it. Leaves it parked or closed. */
void ldr_conn_event(struct worker *w, struct conn *c, uint32_t events, int expired);
/* Ends a connection its thread owns; its memory goes to h->graves. */
void ldr_conn_close(struct conn *c);
/* Counts an answer on thread `w`: its route (NULL: none), status, and the
 * time its handler took. */
void ldr_http_count(struct worker *w, const struct ldr_http_route *route, int status, int64_t ns);

#endif
