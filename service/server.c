/*
 * The async server on the gRPC C core. Each worker thread owns a completion
 * queue, a backend connection and a fixed set of call contexts, so a call is
 * handled start to finish on one thread and the request path takes no lock.
 * A call context is the completion-queue tag of its call; it moves through
 * REQUESTED (waiting for a client) -> RECEIVING (matched, reading the
 * request) -> SENDING (reply batch started) and back to REQUESTED.
 *
 * Methods are registered with GRPC_SRM_PAYLOAD_NONE, so the core matches a
 * call to a requested context as soon as its headers arrive, not after its
 * message has been read. A call is in flight from that moment, and a server
 * shutdown lets it finish; the core would cancel a call whose message was
 * still arriving when the shutdown began.
 */
#define _GNU_SOURCE
#include "service/server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "service/service_int.h"

/* Calls kept requested per method across all workers (DESIGN §9), and slots
 * per worker that answer unknown methods. */
#define REQUESTED_PER_METHOD 64
#define MIN_PER_WORKER 8
#define GENERIC_PER_WORKER 2
#define FIRST_ARENA_BLOCK 16384
/* Events a worker takes from its queue without waiting, after one it waited
 * for, so that the reads among them can be served together. */
#define DRAIN_MAX 64
/* Most keys served with one statement when reads are served together. */
#define BATCH_KEYS_MAX 256
/* Contexts requested at SIGTERM, per method across workers, to take in calls
 * queued beyond the usual contexts before the shutdown would cancel them. */
#define DRAIN_EXTRA_PER_METHOD 256
/* How long SIGTERM keeps taking in calls already on the wire before the server
 * stops accepting (see drain()). */
#define DRAIN_TAKE_IN_MS 200

/* How often a worker looks at its health Watch streams, at the most. */
#define TICK_NS 200000000
/* Contexts per worker for each streaming method (health Watch, reflection). */
#define STREAMS_PER_WORKER 8

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
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *reply;
  grpc_slice status_msg;
  int cancelled;
  int64_t started_ns;
  int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
  struct ldr_handler_ctx ctx;
  struct ldr_read_job job; /* a read waiting in its worker's batch */
  struct ldr_arena arena;
  /* Streaming calls: the batches outstanding, and where the stream stands. */
  int close_pending, recv_pending, send_pending;
  int md_sent, status_sent;
  int hold;                  /* a Watch waiting for its status to change */
  int watch_status;          /* the status a Watch sent last */
  const char *watch_service; /* in the arena */
};

struct worker {
  struct server *srv;
  int idx;
  pthread_t thread;
  int started;
  int cq_shut; /* this worker shut its queue down (srv->closing) */
  grpc_completion_queue *cq;
  struct ldr_backend *backend;
  struct call *calls;
  size_t ncalls;
  struct call *extra; /* requested at SIGTERM */
  size_t nextra;
  unsigned long long served;
  int64_t last_failure_log_ns; /* server-side failures are logged at most once a second */
  unsigned long long failures_not_logged;
  struct ldr_worker_state ws;
  int streams; /* streaming calls in progress on this worker */
  int64_t last_tick_ns;
  struct call *batch[DRAIN_MAX + 1]; /* reads to serve together */
  size_t nbatch;
  struct ldr_arena batch_arena; /* keys and results of reads served together */
};

struct server {
  const struct ldr_config *cfg;
  grpc_server *grpc;
  void *handles[16];                    /* registered method handles, as ldr_methods */
  struct ldr_registry_source *registry; /* NULL: no file registry configured */
  struct worker *workers;
  int nworkers;
  struct ldr_auth *auth;       /* NULL: no bearer tokens needed */
  struct ldr_metrics *metrics; /* counters, always kept; served when metrics_listen is set */
  atomic_int draining;         /* the server no longer accepts calls */
  atomic_int closing;          /* the gRPC server is gone: workers shut their queues down */
  atomic_int stopping;         /* a signal came: health says NOT_SERVING */
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

static void request(struct call *c) {
  struct server *srv = c->w->srv;
  grpc_call_error e;
  c->call = NULL;
  c->payload = NULL;
  c->md.count = 0;
  /* Before the request: from then on the call may be matched, and its
   * completion taken by its worker while this thread (main, in a drain) is
   * still here. Nothing of `c` is written after. */
  c->state = CALL_REQUESTED;
  HANDED_OVER(c);
  if (c->method == NULL) {
    e = grpc_server_request_call(srv->grpc, &c->call, &c->details, &c->md, c->w->cq, c->w->cq, c);
  } else {
    void *handle = srv->handles[c->method - ldr_methods];
    e = grpc_server_request_registered_call(srv->grpc, handle, &c->call, &c->deadline, &c->md, NULL,
                                            c->w->cq, c->w->cq, c);
  }
  if (e != GRPC_CALL_OK) {
    /* Only a programming error gets here (no tag will come); the slot stays idle. */
    ldr_log(LDR_LOG_ERROR, "requesting a call failed: %s", grpc_call_error_to_string(e));
    c->state = CALL_IDLE;
  }
}

/* Starts reading the request message; returns -1 when no tag will come. */
static int start_receive(struct call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->payload;
  c->state = CALL_RECEIVING;
  if (c->w->cq_shut) return -1; /* the server is gone: the call goes unanswered */
  grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, c, NULL);
  if (e != GRPC_CALL_OK) {
    ldr_log(LDR_LOG_ERROR, "reading a request failed: %s", grpc_call_error_to_string(e));
    return -1;
  }
  return 0;
}

/* Converts the call deadline to CLOCK_MONOTONIC nanoseconds (0 = none). */
static int64_t deadline_ns(gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) return 0;
  gpr_timespec now = gpr_now(deadline.clock_type);
  gpr_timespec left = gpr_time_sub(deadline, now);
  int64_t ns = (int64_t)left.tv_sec * 1000000000 + left.tv_nsec;
  int64_t at = ldr_now_ns() + (ns > 0 ? ns : 0);
  return at ? at : 1;
}

static enum ldr_rc take_payload(struct call *c);

/* Takes the request bytes of `c` and checks what comes before any handler. */
static enum ldr_rc begin(struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  const struct ldr_method *m = c->method;
  if (m->admin && !c->w->srv->cfg->admin_rpcs)
    return ldr_err_set(&ctx->err, LDR_DENIED,
                       "%s: administrative calls are disabled (larder.admin_rpcs: false)", m->name);
  if (c->payload == NULL)
    return ldr_err_set(&ctx->err, LDR_INVALID, "request: no message was sent");
  enum ldr_rc rc = take_payload(c);
  if (rc != LDR_OK) return rc;
  c->deadline_ns = deadline_ns(c->deadline);
  /* A call without a deadline still gets one for its database work, so a
   * stalled database cannot hold a worker for ever. */
  if (c->deadline_ns == 0 && c->w->srv->cfg->default_deadline_s > 0)
    c->deadline_ns = ldr_now_ns() + (int64_t)c->w->srv->cfg->default_deadline_s * 1000000000;
  if (c->deadline_ns != 0 && ldr_now_ns() >= c->deadline_ns)
    return ldr_err_set(&ctx->err, LDR_DEADLINE, "%s: the deadline passed before the call started",
                       m->name);
  return LDR_OK;
}

/* Points the handler at the bytes of c->payload (joined in the arena when they
 * come in several slices or compressed). */
static enum ldr_rc take_payload(struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  const grpc_byte_buffer *bb = c->payload;
  if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
      bb->data.raw.slice_buffer.count == 1) {
    /* The usual case: one uncompressed slice, read where it is (the payload
     * lives until the call ends). Through a pointer: a small slice holds its
     * bytes inline, so a copy of the slice struct would hold a copy of them. */
    const grpc_slice *only = &bb->data.raw.slice_buffer.slices[0];
    ctx->req = GRPC_SLICE_START_PTR(*only);
    ctx->req_len = GRPC_SLICE_LENGTH(*only);
  } else {
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, c->payload))
      return ldr_err_set(&ctx->err, LDR_INVALID, "request: cannot decompress the message");
    grpc_slice in = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    /* Several slices: join them in the arena, which goes when the call ends. */
    size_t n = GRPC_SLICE_LENGTH(in);
    uint8_t *bytes = ldr_arena_alloc(&c->arena, n);
    if (bytes == NULL) {
      grpc_slice_unref(in);
      return ldr_err_set(&ctx->err, LDR_EXHAUSTED, "request: too large for the call's memory");
    }
    if (n) memcpy(bytes, GRPC_SLICE_START_PTR(in), n);
    grpc_slice_unref(in);
    ctx->req = bytes;
    ctx->req_len = n;
  }
  return LDR_OK;
}

/* Logs a failure of the server's side, at most once a second per worker so an
 * outage under load does not flood the log; the lines say how many were not logged. */
static void log_failure(struct worker *w, const char *method, enum ldr_rc rc, const char *msg) {
  int64_t now = ldr_now_ns();
  if (w->last_failure_log_ns != 0 && now - w->last_failure_log_ns < 1000000000) {
    w->failures_not_logged++;
    return;
  }
  char more[64] = "";
  if (w->failures_not_logged)
    snprintf(more, sizeof more, " (%llu more failures since the last line)",
             w->failures_not_logged);
  ldr_log(rc == LDR_UNAVAILABLE ? LDR_LOG_WARN : LDR_LOG_ERROR, "worker %d: %s: %s: %s%s", w->idx,
          method, ldr_rc_str(rc), msg, more);
  w->last_failure_log_ns = now;
  w->failures_not_logged = 0;
}

/* The method's slot in the metrics: its index, or the last slot for unknown methods. */
static size_t method_index(const struct call *c) {
  return c->method ? (size_t)(c->method - ldr_methods) : ldr_n_methods;
}

/* Counts a call's end and, at debug level, writes its access-log line. */
static void account(struct call *c, enum ldr_rc rc) {
  int64_t took = ldr_now_ns() - c->started_ns;
  ldr_metrics_handled(c->w->ws.metrics, method_index(c), ldr_rc_grpc_status(rc), took);
  ldr_metrics_connected(c->w->ws.metrics, c->w->backend->ops->connected(c->w->backend));
  if (!ldr_log_enabled(LDR_LOG_DEBUG)) return;
  char *peer = grpc_call_get_peer(c->call);
  char *unknown = c->method ? NULL : grpc_slice_to_c_string(c->details.method);
  ldr_log(LDR_LOG_DEBUG, "access: worker=%d method=%s status=%s duration_us=%lld peer=%s",
          c->w->idx, c->method ? c->method->path : unknown,
          ldr_grpc_code_name(ldr_rc_grpc_status(rc)), (long long)(took / 1000), peer ? peer : "?");
  gpr_free(peer);
  gpr_free(unknown);
}

/* Sends the reply (rc == LDR_OK) or the error of c->ctx with its status, in
 * one batch; returns -1 when no tag will come. */
static int send_reply(struct call *c, enum ldr_rc rc) {
  struct worker *w = c->w;
  c->reply = NULL;
  if (rc == LDR_OK) {
    c->reply = grpc_raw_byte_buffer_create(&c->ctx.reply, 1);
    grpc_slice_unref(c->ctx.reply);
    c->status_msg = grpc_empty_slice();
  } else if (rc == LDR_INTERNAL || rc == LDR_NOMEM || rc == LDR_UNAVAILABLE) {
    /* The driver's words (and the database's address) stay in the log; the
     * client learns only what kind of failure it was. */
    log_failure(w, c->method ? c->method->name : "call", rc, c->ctx.err.msg);
    c->status_msg = grpc_slice_from_static_string(
        rc == LDR_UNAVAILABLE
            ? "the online store's database is unavailable; the server log has the cause"
            : "internal error; the server log has the cause");
  } else {
    c->status_msg = grpc_slice_from_copied_string(c->ctx.err.msg);
  }

  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t nops = 0;
  ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (c->reply != NULL) {
    ops[nops].op = GRPC_OP_SEND_MESSAGE;
    ops[nops++].data.send_message.send_message = c->reply;
  }
  ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[nops].data.send_status_from_server.status = (grpc_status_code)ldr_rc_grpc_status(rc);
  ops[nops++].data.send_status_from_server.status_details = rc == LDR_OK ? NULL : &c->status_msg;
  ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[nops++].data.recv_close_on_server.cancelled = &c->cancelled;
  account(c, rc);
  c->state = CALL_SENDING;
  if (c->w->cq_shut) return -1;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, nops, c, NULL);
  if (e != GRPC_CALL_OK) {
    ldr_log(LDR_LOG_ERROR, "sending a reply failed: %s", grpc_call_error_to_string(e));
    return -1;
  }
  return 0;
}

/* What a handler of `c` sees of its worker. */
static void init_ctx(struct call *c) {
  struct worker *w = c->w;
  struct ldr_handler_ctx *ctx = &c->ctx;
  memset(ctx, 0, sizeof *ctx);
  ctx->cfg = w->srv->cfg;
  ctx->backend = w->backend;
  ctx->arena = &c->arena;
  ctx->registry = w->srv->registry;
  ctx->reader = (size_t)w->idx;
  ctx->worker = &w->ws;
}

/*
 * Handles a call whose request has arrived: a read joins its worker's batch
 * (served by run_batch), anything else runs now. Returns -1 when no tag will
 * come for the call.
 */
static int on_received(struct call *c) {
  struct worker *w = c->w;
  struct ldr_handler_ctx *ctx = &c->ctx;
  enum ldr_rc rc;
  init_ctx(c);
  /* Without a valid token a client learns nothing, not even which methods exist. */
  if ((c->method == NULL || !c->method->open) &&
      (rc = ldr_auth_check(w->srv->auth, &c->md, &ctx->err)) != LDR_OK)
    return send_reply(c, rc);
  if (c->method == NULL) {
    char *path = grpc_slice_to_c_string(c->details.method);
    rc = ldr_err_set(&ctx->err, LDR_UNIMPLEMENTED, "method %s is not served here", path);
    gpr_free(path);
    return send_reply(c, rc);
  }
  rc = begin(c);
  if (rc == LDR_OK && c->method->read) {
    rc = ldr_read_prepare(ctx, &c->job);
    if (rc == LDR_OK) {
      c->state = CALL_BATCHED;
      w->batch[w->nbatch++] = c;
      return 0;
    }
  } else if (rc == LDR_OK) {
    w->backend->deadline_ns = c->deadline_ns;
    rc = c->method->fn(ctx);
    w->backend->deadline_ns = 0;
  }
  return send_reply(c, rc);
}

static void finish_call(struct call *c);

/* Ends a call whose reply could not be sent, and makes its context available again. */
static void recycle(struct call *c) {
  finish_call(c);
  if (atomic_load(&c->w->srv->draining))
    c->state = CALL_IDLE;
  else
    request(c);
}

static int same_features(const struct ldr_read_job *a, const struct ldr_read_job *b) {
  if (a->n_features != b->n_features) return 0;
  for (size_t i = 0; i < a->n_features; i++)
    if (strcmp(a->features[i], b->features[i])) return 0;
  return 1;
}

/* Reads the keys of the batched calls `group` with one backend read. */
static enum ldr_rc read_group(struct worker *w, struct call **group, size_t n, size_t nkeys,
                              struct ldr_err *err) {
  struct ldr_backend *b = w->backend;
  struct ldr_arena *a = &w->batch_arena;
  struct ldr_key *keys = ldr_arena_alloc(a, (nkeys ? nkeys : 1) * sizeof *keys);
  struct ldr_read_row *rows = ldr_arena_alloc(a, (nkeys ? nkeys : 1) * sizeof *rows);
  if (keys == NULL || rows == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "read: out of memory");
  /* The backend waits for the latest deadline among the calls (none if one has none). */
  int64_t deadline = group[0]->deadline_ns;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    struct ldr_read_job *job = &group[i]->job;
    if (job->n_keys) memcpy(keys + off, job->keys, job->n_keys * sizeof *keys);
    job->rows = rows + off;
    off += job->n_keys;
    if (deadline != 0 && (group[i]->deadline_ns == 0 || group[i]->deadline_ns > deadline))
      deadline = group[i]->deadline_ns;
  }
  b->deadline_ns = deadline;
  int64_t t0 = ldr_now_ns();
  enum ldr_rc rc = b->ops->read(b, group[0]->job.table, keys, nkeys, group[0]->job.features,
                                group[0]->job.n_features, a, rows, err);
  ldr_metrics_backend(w->ws.metrics, ldr_now_ns() - t0, rc == LDR_OK ? nkeys : 0, 0);
  b->deadline_ns = 0;
  return rc;
}

/*
 * Serves the reads a worker has gathered. Reads of the same view asking for
 * the same features share one backend read (one statement, one round trip to
 * a database server): under load many small reads cost about what one larger
 * one does. A shared read that fails is done again call by call, so one bad
 * call (a key a store cannot hold, say) never fails the others.
 */
static void run_batch(struct worker *w) {
  size_t n = w->nbatch;
  struct call *group[DRAIN_MAX + 1];
  w->nbatch = 0;
  for (size_t i = 0; i < n; i++) {
    struct call *first = w->batch[i];
    if (first == NULL) continue;
    size_t ng = 0, nkeys = 0;
    for (size_t j = i; j < n; j++) {
      struct call *c = w->batch[j];
      if (c == NULL || strcmp(c->job.table, first->job.table) ||
          !same_features(&c->job, &first->job))
        continue;
      if (ng > 0 && nkeys + c->job.n_keys > BATCH_KEYS_MAX) continue;
      group[ng++] = c;
      nkeys += c->job.n_keys;
      w->batch[j] = NULL;
    }
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = read_group(w, group, ng, nkeys, &err);
    if (ng > 1 && ldr_log_enabled(LDR_LOG_DEBUG))
      ldr_log(LDR_LOG_DEBUG, "worker %d: %zu reads of %s served together (%zu keys): %s", w->idx,
              ng, first->job.table, nkeys, ldr_rc_str(rc));
    for (size_t k = 0; k < ng; k++) {
      struct call *c = group[k];
      enum ldr_rc crc = rc;
      if (rc != LDR_OK && ng > 1) {
        ldr_err_clear(&err);
        crc = read_group(w, &c, 1, c->job.n_keys, &err);
      }
      if (crc == LDR_OK)
        crc = ldr_read_reply(&c->ctx, &c->job);
      else
        c->ctx.err = err;
      if (send_reply(c, crc) != 0) recycle(c);
    }
    ldr_arena_reset(&w->batch_arena);
  }
}

/* ---- streaming calls: health Watch and server reflection ----------------- */

static void *tag_of(struct call *c, int kind) { return (void *)((uintptr_t)c | (uintptr_t)kind); }

static void stream_batch(struct call *c, grpc_op *ops, size_t n, int kind, int *pending) {
  grpc_call_error e = c->w->cq_shut ? GRPC_CALL_ERROR_COMPLETION_QUEUE_SHUTDOWN
                                    : grpc_call_start_batch(c->call, ops, n, tag_of(c, kind), NULL);
  if (e == GRPC_CALL_OK) {
    *pending = 1;
    return;
  }
  /* No tag will come for this batch: end the call, so the others complete. */
  if (!c->w->cq_shut)
    ldr_log(LDR_LOG_ERROR, "%s: a stream batch failed: %s", c->method->name,
            grpc_call_error_to_string(e));
  grpc_call_cancel(c->call, NULL);
}

static void stream_recv(struct call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->payload;
  stream_batch(c, &op, 1, TAG_RECV, &c->recv_pending);
}

/* Sends c->ctx.reply (with_message), then the status `rc` (finish). */
static void stream_send(struct call *c, int with_message, int finish, enum ldr_rc rc,
                        const char *msg) {
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->md_sent) {
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->md_sent = 1;
  }
  if (with_message) {
    c->reply = grpc_raw_byte_buffer_create(&c->ctx.reply, 1);
    grpc_slice_unref(c->ctx.reply);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->reply;
  }
  if (finish) {
    grpc_slice_unref(c->status_msg);
    c->status_msg = rc == LDR_OK ? grpc_empty_slice() : grpc_slice_from_copied_string(msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)ldr_rc_grpc_status(rc);
    ops[n++].data.send_status_from_server.status_details = rc == LDR_OK ? NULL : &c->status_msg;
    c->status_sent = 1;
    account(c, rc);
  }
  stream_batch(c, ops, n, TAG_SEND, &c->send_pending);
}

static void stream_fail(struct call *c, enum ldr_rc rc) {
  stream_send(c, 0, 1, rc, c->ctx.err.msg);
}

/* A request message of the stream arrived (or, c->payload NULL, the client closed its side). */
static void stream_message(struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  const struct ldr_method *m = c->method;
  if (c->payload == NULL) {
    if (m->stream == LDR_STREAM_BIDI) stream_send(c, 0, 1, LDR_OK, NULL);
    /* A Watch goes on after its client has sent its one request. */
    return;
  }
  if (m->stream == LDR_STREAM_BIDI) ldr_arena_reset(&c->arena); /* one message at a time */
  ldr_err_clear(&ctx->err);
  enum ldr_rc rc = take_payload(c);
  if (rc == LDR_OK && m->stream == LDR_STREAM_BIDI) {
    rc = m->fn(ctx);
  } else if (rc == LDR_OK && c->watch_service == NULL) {
    rc = ldr_health_request(ctx, &c->watch_service);
    if (rc == LDR_OK) {
      c->watch_status = ldr_health_status(ctx, c->watch_service);
      rc = ldr_health_reply(ctx, c->watch_status);
    }
  } else if (rc == LDR_OK) {
    rc = ldr_err_set(&ctx->err, LDR_INVALID, "request: Watch takes one message");
  }
  grpc_byte_buffer_destroy(c->payload);
  c->payload = NULL;
  if (rc == LDR_OK)
    stream_send(c, 1, 0, LDR_OK, NULL);
  else
    stream_fail(c, rc);
}

static void stream_start(struct worker *w, struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  init_ctx(c);
  c->state = CALL_STREAM;
  c->md_sent = c->status_sent = c->hold = 0;
  c->watch_status = -1;
  c->watch_service = NULL;
  c->cancelled = 0;
  w->streams++;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled;
  stream_batch(c, &op, 1, TAG_CLOSE, &c->close_pending);
  enum ldr_rc rc = c->method->open ? LDR_OK : ldr_auth_check(w->srv->auth, &c->md, &ctx->err);
  if (rc != LDR_OK)
    stream_fail(c, rc);
  else
    stream_recv(c);
}

static void stream_event(struct worker *w, struct call *c, int kind, int success) {
  if (kind == TAG_CALL) { /* matched to a client, or (success = 0) the server is shutting down */
    if (!success) {
      c->state = CALL_IDLE;
      return;
    }
    stream_start(w, c);
  } else if (kind == TAG_CLOSE) {
    c->close_pending = 0;
    if (!c->status_sent) {
      /* The client went away (a Watch that was closed, say). */
      c->status_sent = 1;
      ldr_metrics_handled(w->ws.metrics, method_index(c), 1 /* CANCELLED */,
                          ldr_now_ns() - c->started_ns);
    }
  } else if (kind == TAG_RECV) {
    c->recv_pending = 0;
    if (success && !c->status_sent)
      stream_message(c);
    else if (!success && !c->status_sent)
      grpc_call_cancel(c->call, NULL);
  } else {
    c->send_pending = 0;
    if (c->reply != NULL) grpc_byte_buffer_destroy(c->reply);
    c->reply = NULL;
    if (success && !c->status_sent) {
      if (c->method->stream == LDR_STREAM_BIDI)
        stream_recv(c);
      else
        c->hold = 1;
    }
  }
  if (c->state == CALL_STREAM && !c->close_pending && !c->recv_pending && !c->send_pending) {
    w->streams--;
    recycle(c);
  }
}

/* Sends Watch streams their new status; once a signal came, ends every stream. */
static void stream_tick(struct worker *w) {
  int stopping = atomic_load(&w->srv->stopping);
  for (size_t i = 0; i < w->ncalls; i++) {
    struct call *c = &w->calls[i];
    if (c->state != CALL_STREAM || c->status_sent || c->send_pending) continue;
    if (c->method->stream == LDR_STREAM_WATCH && !c->hold) continue;
    if (stopping) {
      if (c->method->stream == LDR_STREAM_WATCH &&
          c->watch_status !=
              GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN) {
        ldr_health_reply(&c->ctx,
                         GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
        stream_send(c, 1, 1, LDR_UNAVAILABLE, "the server is shutting down");
      } else {
        stream_send(c, 0, 1, LDR_UNAVAILABLE, "the server is shutting down");
      }
      continue;
    }
    if (c->method->stream != LDR_STREAM_WATCH) continue;
    int status = ldr_health_status(&c->ctx, c->watch_service);
    if (status == c->watch_status) continue;
    c->watch_status = status;
    c->hold = 0;
    ldr_health_reply(&c->ctx, status);
    stream_send(c, 1, 0, LDR_OK, NULL);
  }
}

/* Moves a call one step on for a completion-queue event. */
static void dispatch(struct worker *w, grpc_event ev) {
  uintptr_t tag = (uintptr_t)ev.tag;
  struct call *c = (struct call *)(tag & ~(uintptr_t)7);
  TAKEN_OVER(c);
  if (c->state == CALL_REQUESTED && ev.success) {
    c->started_ns = ldr_now_ns();
    ldr_metrics_started(w->ws.metrics, method_index(c));
  }
  if (c->method != NULL && c->method->stream) {
    stream_event(w, c, (int)(tag & 7), ev.success);
    return;
  }
  if (c->state == CALL_REQUESTED) {
    if (!ev.success) { /* the server is shutting down: no call came */
      c->state = CALL_IDLE;
      return;
    }
    /* Unknown methods are answered without reading their message. */
    if (c->method == NULL ? on_received(c) == 0 : start_receive(c) == 0) return;
  } else if (c->state == CALL_RECEIVING) {
    /* ev.success = 0: the client cancelled or went away while sending. */
    if (ev.success && on_received(c) == 0) return;
    if (!ev.success)
      ldr_log(LDR_LOG_DEBUG, "worker %d: %s: the client went away before its request arrived",
              w->idx, c->method->name);
  }
  /* The reply batch is done (ev.success = 0: the client went away). */
  recycle(c);
}

static void finish_call(struct call *c) {
  if (c->reply != NULL) grpc_byte_buffer_destroy(c->reply);
  if (c->payload != NULL) grpc_byte_buffer_destroy(c->payload);
  c->reply = NULL;
  c->payload = NULL;
  grpc_slice_unref(c->status_msg);
  c->status_msg = grpc_empty_slice();
  /* Metadata elements belong to the call: forget them before the unref. */
  c->md.count = 0;
  if (c->method == NULL) {
    grpc_call_details_destroy(&c->details);
    grpc_call_details_init(&c->details);
  }
  grpc_call_unref(c->call);
  c->call = NULL;
  ldr_arena_reset(&c->arena);
  c->w->served++;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int stop = 0;
  while (!stop) {
    /* Wake up now and then while streams are open, to push health changes. */
    /* A worker shuts its own queue down, once out of any handler: a handler
     * that ends later must still be able to start its reply batch. */
    if (!w->cq_shut && atomic_load(&w->srv->closing)) {
      grpc_completion_queue_shutdown(w->cq);
      w->cq_shut = 1;
    }
    /* Wake up now and then while streams are open, to push health changes,
     * and while draining, to notice the end. */
    gpr_timespec until = w->streams || atomic_load(&w->srv->draining)
                             ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                            gpr_time_from_millis(TICK_NS / 1000000, GPR_TIMESPAN))
                             : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_event ev = grpc_completion_queue_next(w->cq, until, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) dispatch(w, ev);
    /* Take what else the queue already holds, without waiting, so that the
     * reads among it are served together; an idle server adds no delay. */
    for (int k = 0; w->nbatch > 0 && k < DRAIN_MAX; k++) {
      ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
      if (ev.type == GRPC_QUEUE_TIMEOUT) break;
      if (ev.type == GRPC_QUEUE_SHUTDOWN) {
        stop = 1;
        break;
      }
      if (ev.type == GRPC_OP_COMPLETE) dispatch(w, ev);
    }
    if (w->nbatch) run_batch(w);
    if (w->streams) {
      int64_t now = ldr_now_ns();
      if (now - w->last_tick_ns >= TICK_NS || atomic_load(&w->srv->stopping)) {
        w->last_tick_ns = now;
        stream_tick(w);
      }
    }
  }
  return NULL;
}

/* gRPC's own messages go through larder's log, one line each, with its level. */
static void grpc_log_line(gpr_log_func_args *args) {
  enum ldr_log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LDR_LOG_WARN
                             : args->severity == GPR_LOG_SEVERITY_INFO ? LDR_LOG_DEBUG
                                                                       : LDR_LOG_DEBUG;
  if (ldr_log_enabled(level)) ldr_log(level, "grpc: %s", args->message);
}

static int cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return 1;
}

static void free_calls(struct call *calls, size_t n) {
  for (size_t j = 0; j < n; j++) {
    struct call *c = &calls[j];
    if (c->payload != NULL) grpc_byte_buffer_destroy(c->payload);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    ldr_arena_destroy(&c->arena);
  }
  free(calls);
}

static void free_workers(struct server *srv) {
  for (int i = 0; i < srv->nworkers; i++) {
    struct worker *w = &srv->workers[i];
    free_calls(w->calls, w->ncalls);
    free_calls(w->extra, w->nextra);
    ldr_arena_destroy(&w->batch_arena);
    if (w->cq != NULL) grpc_completion_queue_destroy(w->cq);
    ldr_backend_free(w->backend);
  }
  free(srv->workers);
}

static int open_backends(struct server *srv) {
  for (int i = 0; i < srv->nworkers; i++) {
    struct ldr_err err;
    ldr_err_clear(&err);
    size_t cap = (size_t)srv->cfg->max_message_bytes * 16;
    ldr_arena_init(&srv->workers[i].batch_arena, FIRST_ARENA_BLOCK,
                   cap < (64u << 20) ? 64u << 20 : cap);
    srv->workers[i].srv = srv;
    srv->workers[i].idx = i;
    srv->workers[i].ws.stopping = &srv->stopping;
    if (ldr_backend_new(&srv->cfg->store, &srv->workers[i].backend, &err) != LDR_OK) {
      ldr_log(LDR_LOG_ERROR, "cannot open the %s store: %s", srv->cfg->store.type_name, err.msg);
      return -1;
    }
  }
  return 0;
}

/*
 * Allocates `per` contexts for each unary method, `streams` for each
 * streaming one (and `generic` for unknown methods) on worker `w` and
 * requests them all. Returns the array, or NULL
 * with *n = 0 when memory is short.
 */
static struct call *add_calls(struct server *srv, struct worker *w, size_t per, size_t streams,
                              size_t generic, size_t *n) {
  size_t arena_cap = (size_t)srv->cfg->max_message_bytes * 16;
  if (arena_cap < (16u << 20)) arena_cap = 16u << 20;
  *n = generic;
  for (size_t m = 0; m < ldr_n_methods; m++) *n += ldr_methods[m].stream ? streams : per;
  struct call *calls = calloc(*n ? *n : 1, sizeof *calls);
  if (calls == NULL) {
    *n = 0;
    return NULL;
  }
  size_t next = 0;
  for (size_t m = 0; m < ldr_n_methods; m++)
    for (size_t k = 0; k < (ldr_methods[m].stream ? streams : per); k++)
      calls[next++].method = &ldr_methods[m];
  for (size_t j = 0; j < *n; j++) {
    struct call *c = &calls[j];
    c->w = w;
    c->status_msg = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    ldr_arena_init(&c->arena, FIRST_ARENA_BLOCK, arena_cap);
  }
  for (size_t j = 0; j < *n; j++) request(&calls[j]);
  return calls;
}

/* Waits for the calls in flight, for at most the grace period or until a second signal. */
static void drain(struct server *srv, grpc_completion_queue *shutdown_cq, sigset_t *sigs) {
  static int shutdown_tag;
  /*
   * Only threads inside grpc_completion_queue_next read the sockets, and while
   * every worker is busy in the database none does: calls a client sent just
   * before the signal may still be unread. Once the shutdown starts, the core
   * cancels (CANCELLED) every call it reads, so first let this thread poll
   * for a moment; what it reads is matched and served normally.
   */
  gpr_timespec take_in_end = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(DRAIN_TAKE_IN_MS, GPR_TIMESPAN));
  while (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), take_in_end) < 0)
    grpc_completion_queue_next(shutdown_cq, take_in_end, NULL);
  atomic_store(&srv->draining, 1);
  /* A call the core holds because every context was busy would be cancelled
   * by the shutdown: give such calls contexts first. */
  size_t extra = (DRAIN_EXTRA_PER_METHOD + (size_t)srv->nworkers - 1) / (size_t)srv->nworkers;
  for (int i = 0; i < srv->nworkers; i++)
    srv->workers[i].extra = add_calls(srv, &srv->workers[i], extra, 0, 0, &srv->workers[i].nextra);
  grpc_server_shutdown_and_notify(srv->grpc, shutdown_cq, &shutdown_tag);
  gpr_timespec grace_end = gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(srv->cfg->grace_period_s, GPR_TIMESPAN));
  int cancelled = 0;
  for (;;) {
    gpr_timespec tick =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(shutdown_cq, tick, NULL);
    if (ev.type == GRPC_OP_COMPLETE) break;
    if (cancelled) continue;
    struct timespec zero = {0, 0};
    int again = sigtimedwait(sigs, NULL, &zero) > 0;
    if (again || gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), grace_end) >= 0) {
      ldr_log(LDR_LOG_WARN, "%s: cancelling the calls still in flight",
              again ? "second signal" : "grace period over");
      grpc_server_cancel_all_calls(srv->grpc);
      /* Workers waiting for a database give up too, so the process can end. */
      ldr_backend_abort_waits();
      cancelled = 1;
    }
  }
}

static void add_arg(grpc_arg *args, size_t *n, const char *key, int value) {
  args[*n].type = GRPC_ARG_INTEGER;
  args[*n].key = (char *)key;
  args[*n].value.integer = value;
  (*n)++;
}

static int run(const struct ldr_config *cfg) {
  struct server srv = {.cfg = cfg};
  grpc_completion_queue *shutdown_cq = NULL;
  int status = 1;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);

  srv.nworkers = cfg->workers > 0 ? cfg->workers : cpu_count();
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_auth_load(cfg, &srv.auth, &err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    return 1;
  }
  srv.workers = calloc((size_t)srv.nworkers, sizeof *srv.workers);
  srv.metrics = ldr_metrics_new(cfg, srv.nworkers);
  if (srv.workers == NULL || srv.metrics == NULL) {
    free(srv.workers);
    ldr_metrics_free(srv.metrics);
    ldr_auth_free(srv.auth);
    return 1;
  }
  for (int i = 0; i < srv.nworkers; i++)
    srv.workers[i].ws.metrics = ldr_metrics_worker(srv.metrics, i);
  if (open_backends(&srv) != 0) goto early;

  if (cfg->registry_path != NULL) {
    if (ldr_registry_source_new(cfg->registry_path, cfg->registry_cache_ttl_s, cfg->project,
                                (size_t)srv.nworkers, &srv.registry, &err) != LDR_OK ||
        ldr_registry_source_start(srv.registry) != 0) {
      ldr_log(LDR_LOG_ERROR, "registry %s: %s", cfg->registry_path,
              err.rc ? err.msg : "cannot start the thread that reloads it");
      ldr_registry_source_free(srv.registry);
      goto early;
    }
  } else if (cfg->registry_unsupported != NULL) {
    ldr_log(LDR_LOG_WARN, "registry %s; ServingService will refuse calls",
            cfg->registry_unsupported);
  }

  gpr_set_log_function(grpc_log_line);
  gpr_set_log_verbosity(ldr_log_enabled(LDR_LOG_DEBUG) ? GPR_LOG_SEVERITY_DEBUG
                                                       : GPR_LOG_SEVERITY_ERROR);
  grpc_init();
  grpc_arg args[16];
  size_t nargs = 0;
  add_arg(args, &nargs, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)cfg->max_message_bytes);
  add_arg(args, &nargs, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (int)cfg->max_message_bytes);
  /* gRPC binds with SO_REUSEPORT by default, so a second larder on the same
   * port would start and silently take half the connections. */
  add_arg(args, &nargs, GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (cfg->keepalive_time_s > 0)
    add_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIME_MS, cfg->keepalive_time_s * 1000);
  if (cfg->keepalive_timeout_s > 0)
    add_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, cfg->keepalive_timeout_s * 1000);
  if (cfg->max_connection_idle_s > 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_IDLE_MS, cfg->max_connection_idle_s * 1000);
  if (cfg->max_connection_age_s > 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_MS, cfg->max_connection_age_s * 1000);
  if (cfg->max_connection_age_grace_s >= 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
            cfg->max_connection_age_grace_s * 1000);
  if (cfg->max_concurrent_streams > 0)
    add_arg(args, &nargs, GRPC_ARG_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams);
  grpc_channel_args chargs = {nargs, args};
  srv.grpc = grpc_server_create(&chargs, NULL);
  for (size_t i = 0; i < ldr_n_methods; i++)
    srv.handles[i] =
        grpc_server_register_method(srv.grpc, ldr_methods[i].path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
  for (int i = 0; i < srv.nworkers; i++) {
    srv.workers[i].cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv.grpc, srv.workers[i].cq, NULL);
  }
  shutdown_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(srv.grpc, shutdown_cq, NULL);

  /* Everything that can fail comes before the gRPC port is added: a server
   * with a listener must be started and shut down, not just destroyed. */
  int metrics_port = 0;
  if (cfg->metrics_listen != NULL &&
      ldr_metrics_serve(srv.metrics, cfg->metrics_listen, &metrics_port) != 0) {
    grpc_server_destroy(srv.grpc);
    goto out;
  }
  grpc_server_credentials *creds = ldr_server_credentials(cfg, &err);
  if (creds == NULL) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    grpc_server_destroy(srv.grpc);
    goto out;
  }
  int port = grpc_server_add_http2_port(srv.grpc, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    ldr_log(LDR_LOG_ERROR, "cannot listen on %s (address in use or not valid)", cfg->listen);
    grpc_server_destroy(srv.grpc);
    goto out;
  }
  grpc_server_start(srv.grpc);
  for (int i = 0; i < srv.nworkers; i++) {
    struct worker *w = &srv.workers[i];
    size_t per = (REQUESTED_PER_METHOD + (size_t)srv.nworkers - 1) / (size_t)srv.nworkers;
    w->calls = add_calls(&srv, w, per < MIN_PER_WORKER ? MIN_PER_WORKER : per, STREAMS_PER_WORKER,
                         GENERIC_PER_WORKER, &w->ncalls);
    w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
  }
  ldr_log(
      LDR_LOG_INFO, "larder %s listening on %s (port %d, %s), %d workers, %s store, project %s%s",
      LDR_VERSION, cfg->listen, port,
      cfg->tls_client_ca ? "mutual TLS"
      : cfg->tls_cert    ? "TLS"
                         : "plaintext",
      srv.nworkers, cfg->store.type_name, cfg->project, srv.auth ? ", bearer tokens required" : "");
  if (metrics_port)
    ldr_log(LDR_LOG_INFO, "metrics at http://%s/metrics (port %d)", cfg->metrics_listen,
            metrics_port);

  int sig = 0;
  sigwait(&sigs, &sig);
  atomic_store(&srv.stopping, 1);
  ldr_log(LDR_LOG_INFO, "%s: draining (grace period %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
          cfg->grace_period_s);
  drain(&srv, shutdown_cq, &sigs);
  grpc_server_destroy(srv.grpc);
  status = 0;
out:
  atomic_store(&srv.closing, 1);
  for (int i = 0; i < srv.nworkers; i++)
    if (!srv.workers[i].started) grpc_completion_queue_shutdown(srv.workers[i].cq);
  grpc_completion_queue_shutdown(shutdown_cq);
  while (grpc_completion_queue_next(shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(shutdown_cq);
  unsigned long long served = 0;
  for (int i = 0; i < srv.nworkers; i++) {
    struct worker *w = &srv.workers[i];
    if (w->started)
      pthread_join(w->thread, NULL);
    else /* no thread drained this queue */
      while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
             GRPC_QUEUE_SHUTDOWN) {
      }
    served += w->served;
  }
  free_workers(&srv);
  ldr_registry_source_free(srv.registry);
  ldr_metrics_free(srv.metrics);
  ldr_auth_free(srv.auth);
  grpc_shutdown();
  if (status == 0) ldr_log(LDR_LOG_INFO, "stopped after %llu calls", served);
  return status;
early: /* before gRPC was started */
  free_workers(&srv);
  ldr_metrics_free(srv.metrics);
  ldr_auth_free(srv.auth);
  return 1;
}

int ldr_server_run(const struct ldr_config *cfg) {
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_reflection_init(&err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "%s", err.msg);
    return 1;
  }
  int status = run(cfg);
  ldr_reflection_free();
  return status;
}
