/*
 * What the files of the gRPC server share: the call context, the worker that
 * owns it, and the server. server.c is the lifecycle and the drain, worker.c
 * the worker loop and its pool of call contexts, call.c a unary call, batch.c
 * reads served together, stream.c the streaming calls (health Watch,
 * reflection).
 *
 * A call context is the completion-queue tag of its call and belongs to one
 * worker for its whole life, so a call is handled start to finish on one
 * thread and the request path takes no lock.
 */
#ifndef LDR_SERVER_INT_H
#define LDR_SERVER_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "common/log.h"
#include "http/http.h"
#include "service/service_int.h"
#include "service/tls.h"

/*
 * A unary call moves REQUESTED (waiting for a client) -> RECEIVING (matched,
 * its message on the way) -> [BATCHED (a read waiting for its worker's
 * batch)] -> SENDING (reply batch started) -> back to REQUESTED, IDLE (not
 * requested, in the pool) or freed. A streaming call is STREAM from its match
 * until its last batch completes. A call refused before its message is read
 * goes from REQUESTED to SENDING at once.
 */
enum call_state {
  CALL_IDLE,
  CALL_REQUESTED,
  CALL_RECEIVING,
  CALL_BATCHED,
  CALL_SENDING,
  CALL_STREAM
};

/* A streaming call has one completion-queue tag per kind of batch: the
 * context's address with the kind in its low bits (contexts are aligned). */
enum { TAG_CALL = 0, TAG_CLOSE = 1, TAG_RECV = 2, TAG_SEND = 3 };

struct worker;

struct call {
  enum call_state state;
  const struct ldr_method *method; /* NULL: a slot for unregistered methods */
  struct worker *w;
  int extra;   /* requested by a drain: never requested again, not in the pool */
  int evicted; /* the status it was cancelled with (to make room, or for a timeout); 0: none */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *reply;
  grpc_slice status_msg;
  int cancelled;
  int count_at_close;   /* no message came: counted when the status batch says how the call ended */
  unsigned scopes;      /* what the caller's credentials grant */
  int64_t started_ns;   /* when it was matched */
  int64_t waiting_ns;   /* since when it waits for the client (a message, or taking a reply) */
  int64_t busy_mark_ns; /* its worker's busy_ns then: the worker's own work is not the client's */
  int64_t deadline_ns;  /* CLOCK_MONOTONIC; 0: none */
  struct call *prev, *next; /* in its worker's list of calls in flight, oldest first */
  struct ldr_handler_ctx ctx;
  struct ldr_read_job job; /* a read waiting in its worker's batch */
  struct ldr_arena arena;
  /* Streaming calls: the batches outstanding, and where the stream stands. */
  int close_pending, recv_pending, send_pending;
  int md_sent, status_sent;
  int hold;                  /* a Watch waiting for its status to change */
  int watch_status;          /* the status a Watch sent last */
  const char *watch_service; /* watch_name once the Watch's request came, else NULL */
  /* The Watch's service, copied so that its request's memory goes at once (a
   * Watch lasts up to larder.watch_max_s); a longer name is no service's. */
  char watch_name[64];
  int watch_unknown; /* the name did not fit: SERVICE_UNKNOWN */
};

/* Calls in flight of one kind, oldest match first. */
struct call_list {
  struct call *head, *tail;
  size_t n;
};

enum { KIND_UNARY, KIND_STREAM, KINDS };

/* How many call contexts of one kind a worker owns, keeps, and may have. */
struct pool {
  struct call *idle; /* not requested, linked through `next` */
  size_t owned;      /* contexts allocated */
  size_t base;       /* kept when idle; more are freed when they come back */
  size_t cap;        /* most contexts; past it, the oldest call in flight makes room */
  struct call_list inflight;
};

#define DRAIN_MAX 64     /* events taken without waiting before a batch is served */
#define DRAIN_NS 2000000 /* nor for longer than this */
/* A call this large leaves freed memory that malloc keeps for reuse; the
 * worker hands it back to the system once it is idle (malloc_trim). */
#define LDR_LARGE_CALL_BYTES (1u << 20)

struct server;

struct worker {
  struct server *srv;
  int idx;
  int probe; /* serves the health methods, and only them */
  pthread_t thread;
  int started;
  int cq_shut; /* this worker shut its queue down (srv->closing) */
  grpc_completion_queue *cq;
  struct ldr_backend *backend;
  struct pool pools[KINDS];
  size_t requested[LDR_METHODS_MAX + 1]; /* per method slot; the last: unknown methods */
  size_t want[LDR_METHODS_MAX + 1];      /* how many to keep requested */
  struct call *extra;                    /* requested at SIGTERM */
  size_t nextra;
  unsigned long long served;
  int64_t last_failure_log_ns; /* server-side failures are logged at most once a second */
  unsigned long long failures_not_logged;
  struct ldr_log_limit evict_log; /* calls ended to make room: a line a second at most */
  struct ldr_worker_state ws;
  int64_t last_tick_ns;
  int64_t busy_ns;                   /* time spent handling events, which clients do not wait for */
  atomic_llong out_since_ns;         /* when the thread last left its queue; 0: waiting in it */
  int trim;                          /* a large call ended: give freed memory back once idle */
  struct call *batch[DRAIN_MAX + 1]; /* reads to serve together */
  size_t nbatch;
  struct ldr_arena batch_arena; /* keys and results of reads served together */
  int64_t batch_ns;             /* when the last batch of reads was served */
};

struct retired; /* token sets SIGHUP replaced (server.c) */

struct server {
  const struct ldr_config *cfg;
  struct retired *retired; /* freed once every thread that may read them is joined */
  grpc_server *grpc;
  void *handles[LDR_METHODS_MAX];       /* registered method handles, as ldr_methods */
  struct ldr_registry_source *registry; /* NULL: no registry configured, or one not readable */
  char registry_why[256];               /* why a configured registry cannot be read, or "" */
  struct worker *workers; /* nthreads: the workers, then the one that answers health probes */
  grpc_completion_queue *rescue_cq; /* polled by the health thread while every worker is stuck */
  int nworkers;
  int nthreads;
  _Atomic(struct ldr_auth *) auth; /* NULL: no bearer tokens needed; replaced by SIGHUP */
  struct ldr_tls *tls;             /* NULL: plaintext */
  struct ldr_metrics *metrics;     /* counters, always kept; served when metrics_listen is set */
  struct ldr_http *http;           /* Feast's HTTP endpoints, or NULL */
  struct ldr_http_env http_env;
  atomic_int draining;   /* the server no longer accepts calls */
  atomic_long in_flight; /* contexts matched to a call and not yet done, on every thread */
  atomic_int closing;    /* the gRPC server is gone: workers shut their queues down */
  atomic_int stopping;   /* a signal came: health says NOT_SERVING */
};

/*
 * A call context is handed from the thread that starts an operation on it to
 * the worker that takes its completion from the queue. gRPC orders the two,
 * but inside a library ThreadSanitizer cannot see; these mark the hand-over
 * for it (the main thread requests the extra contexts of a drain).
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HANDED_OVER(c) __tsan_release(c)
#define TAKEN_OVER(c) __tsan_acquire(c)
#else
#define HANDED_OVER(c) ((void)(c))
#define TAKEN_OVER(c) ((void)(c))
#endif

/* ---- worker.c: the loop and the pool of contexts ---- */

/* Sets up worker `i` (its arenas and backend); 0, or -1 logged. */
int ldr_worker_init(struct server *srv, int i);
/* Allocates and requests the worker's first contexts; 0, or -1 when memory is short. */
int ldr_worker_start_calls(struct worker *w);
void *ldr_worker_main(void *arg);
void ldr_worker_destroy(struct worker *w);
/* Requests `n` more contexts for each unary method on `w`, from another
 * thread (a drain), as extras that are never requested again. */
int ldr_worker_add_extra(struct worker *w, size_t n);
/* The index of c's method in ldr_methods, or ldr_n_methods for unknown methods. */
size_t ldr_call_slot(const struct call *c);
/* The call was matched to a client: it is in flight, and its method gets a
 * new requested context. */
void ldr_pool_matched(struct call *c);
/* The server shut down before a client came for the requested call `c`. */
void ldr_pool_unmatched(struct call *c);
/* The call is over (its last tag came): its context is requested again,
 * kept, or freed. */
void ldr_pool_done(struct call *c);
/* Requests c for its method (c->method, NULL for unknown ones). */
void ldr_call_request(struct call *c);

/* Marks the start of a wait for the client of `c` (its message, or taking its reply). */
void ldr_call_wait(struct call *c);
/* How long the client of `c` has kept it waiting, the worker's busy time left out. */
int64_t ldr_call_waited(const struct call *c, int64_t now);

/* ---- call.c: a unary call ---- */

/* Moves a unary call one step on for a completion of its tag. */
void ldr_call_event(struct call *c, int success);
/* Prepares c->ctx for a handler of `c`. */
void ldr_call_init_ctx(struct call *c);
/* What the caller's credentials grant, checked against what c's method needs.
 * LDR_OK, or UNAUTHENTICATED / PERMISSION_DENIED in c->ctx.err. */
enum ldr_rc ldr_call_admit(struct call *c);
/* Points the handler at the bytes of c->payload. */
enum ldr_rc ldr_call_take_payload(struct call *c);
/* Sends the reply (LDR_OK) or c->ctx.err with its status; -1 when no tag will come. */
int ldr_call_send_reply(struct call *c, enum ldr_rc rc);
/* Releases what a finished call holds and hands its context back to the pool. */
void ldr_call_finish(struct call *c);
/* Releases a call's request (its message and what was decoded from it) once
 * its reply is on its way: a client that does not take the reply holds the
 * reply alone until receive_timeout_s, not the request beside it. */
void ldr_call_release_request(struct call *c);
/* Counts a call's end and, at debug level, writes its access-log line. */
void ldr_call_account(struct call *c, enum ldr_rc rc);

/* ---- batch.c: reads served together ---- */

/* Serves the reads w->batch[0..nbatch) gathered. */
void ldr_batch_run(struct worker *w);

/* ---- stream.c: streaming calls ---- */

void ldr_stream_event(struct call *c, int kind, int success);
/* Sends Watch streams their new status, ends streams past their time; once a
 * signal came, ends every stream. */
void ldr_stream_tick(struct worker *w, int64_t now);

#endif
