/*
 * A unary call. Methods are registered with GRPC_SRM_PAYLOAD_NONE, so the core
 * matches a call to a requested context as soon as its headers arrive: the
 * caller's credentials are checked then, before a byte of its message is read,
 * and a call is in flight from that moment (a server shutdown lets it finish;
 * the core would cancel a call whose message was still arriving when the
 * shutdown began).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "service/server_int.h"

/* Longest deadline taken as given: past it a call's database work still
 * ends, and the clock arithmetic cannot overflow. */
#define DEADLINE_MAX_S 1000000

/* CLOCK_MONOTONIC nanoseconds of a gRPC deadline; 0 for none. */
static int64_t deadline_ns(gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) return 0;
  gpr_timespec left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
  int64_t ns = left.tv_sec > DEADLINE_MAX_S ? (int64_t)DEADLINE_MAX_S * 1000000000
               : left.tv_sec < 0            ? 0
                                            : (int64_t)left.tv_sec * 1000000000 + left.tv_nsec;
  int64_t at = ldr_now_ns() + ns;
  return at ? at : 1;
}

void ldr_call_init_ctx(struct call *c) {
  struct worker *w = c->w;
  struct ldr_handler_ctx *ctx = &c->ctx;
  memset(ctx, 0, sizeof *ctx);
  ctx->cfg = w->srv->cfg;
  ctx->backend = w->backend;
  ctx->arena = &c->arena;
  ctx->registry = w->srv->registry;
  ctx->registry_why = w->srv->registry_why[0] ? w->srv->registry_why : NULL;
  ctx->reader = (size_t)w->idx;
  ctx->worker = &w->ws;
}

/* The value of the call's `authorization` metadata, or NULL. */
static const grpc_slice *authorization(const grpc_metadata_array *md) {
  const grpc_slice *found = NULL;
  for (size_t i = 0; i < md->count; i++) {
    grpc_slice k = md->metadata[i].key;
    if (GRPC_SLICE_LENGTH(k) == 13 && !memcmp(GRPC_SLICE_START_PTR(k), "authorization", 13))
      found = &md->metadata[i].value;
  }
  return found;
}

enum ldr_rc ldr_call_admit(struct call *c) {
  struct server *srv = c->w->srv;
  struct ldr_err *err = &c->ctx.err;
  const struct ldr_method *m = c->method;
  struct ldr_auth *auth = atomic_load(&srv->auth);
  /* With no tokens configured every caller may do everything but what mutual
   * TLS narrows to larder.tls.client_scopes. */
  c->scopes = srv->cfg->tls_client_ca ? srv->cfg->tls_client_scopes
                                      : LDR_SCOPE_READ | LDR_SCOPE_WRITE | LDR_SCOPE_ADMIN;
  if (m != NULL && m->scope == 0) return LDR_OK; /* health: open to probes */
  if (auth != NULL) {
    const grpc_slice *v = authorization(&c->md);
    enum ldr_rc rc = ldr_auth_header(auth, v ? (const char *)GRPC_SLICE_START_PTR(*v) : NULL,
                                     v ? GRPC_SLICE_LENGTH(*v) : 0, &c->scopes, err);
    if (rc != LDR_OK) return rc;
  }
  if (m == NULL) return LDR_OK;
  enum ldr_rc rc = ldr_auth_allow(c->scopes, m->scope, m->name, err);
  if (rc == LDR_OK && (m->scope & LDR_SCOPE_ADMIN) && !srv->cfg->admin_rpcs)
    rc = ldr_err_set(err, LDR_DENIED,
                     "%s: administrative calls are disabled (larder.admin_rpcs: false)", m->name);
  return rc;
}

enum ldr_rc ldr_call_take_payload(struct call *c) {
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
    return LDR_OK;
  }
  /* Compressed messages are refused by the channel (server.c); this holds
   * whatever comes: no request past the limit is copied or decoded. */
  size_t len = grpc_byte_buffer_length(c->payload);
  if (len > (size_t)ctx->cfg->max_message_bytes)
    return ldr_err_set(&ctx->err, LDR_EXHAUSTED,
                       "request: %zu bytes, more than larder.max_message_bytes (%ld)", len,
                       (long)ctx->cfg->max_message_bytes);
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

/* Counts a call's end with the gRPC status it ended with. */
static void account_status(struct call *c, int status) {
  int64_t took = ldr_now_ns() - c->started_ns;
  ldr_metrics_handled(c->w->ws.metrics, ldr_call_slot(c), status, took);
  ldr_metrics_store(c->w->ws.metrics, c->w->backend);
  if (!ldr_log_enabled(LDR_LOG_DEBUG)) return;
  char *peer = grpc_call_get_peer(c->call);
  char *unknown = c->method ? NULL : grpc_slice_to_c_string(c->details.method);
  ldr_log(LDR_LOG_DEBUG, "access: worker=%d method=%s status=%s duration_us=%lld peer=%s",
          c->w->idx, c->method ? c->method->path : unknown, ldr_grpc_code_name(status),
          (long long)(took / 1000), peer ? peer : "?");
  gpr_free(peer);
  gpr_free(unknown);
}

void ldr_call_account(struct call *c, enum ldr_rc rc) { account_status(c, ldr_rc_grpc_status(rc)); }

/* How a call whose message never came ended: with the status the server
 * cancelled it with, cancelled by its client, or closed by the client
 * without a message (INVALID_ARGUMENT, the status it was sent). */
static int unreceived_status(const struct call *c, int closed_normally) {
  if (c->evicted) return c->evicted;
  return closed_normally && !c->cancelled ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_CANCELLED;
}

int ldr_call_send_reply(struct call *c, enum ldr_rc rc) {
  struct worker *w = c->w;
  c->reply = NULL;
  if (rc == LDR_OK) {
    c->reply = grpc_raw_byte_buffer_create(&c->ctx.reply, 1);
    grpc_slice_unref(c->ctx.reply);
    c->status_msg = grpc_empty_slice();
  } else if (rc == LDR_INTERNAL || rc == LDR_UNAVAILABLE) {
    /* The driver's words (and the database's address) stay in the log; the
     * client learns only what kind of failure it was. */
    log_failure(w, c->method ? c->method->name : "call", rc, c->ctx.err.msg);
    c->status_msg = grpc_slice_from_static_string(ldr_rc_public_text(rc));
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
  /* A call whose message did not come is counted when this batch ends: only
   * then does RECV_CLOSE_ON_SERVER tell a cancelled call from an empty one. */
  if (!c->count_at_close) ldr_call_account(c, rc);
  c->state = CALL_SENDING;
  ldr_call_wait(c);
  if (c->w->cq_shut) return -1;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, nops, c, NULL);
  if (e != GRPC_CALL_OK) {
    ldr_log(LDR_LOG_ERROR, "sending a reply failed: %s", grpc_call_error_to_string(e));
    return -1;
  }
  return 0;
}

void ldr_call_release_request(struct call *c) {
  if (c->arena.held > LDR_LARGE_CALL_BYTES || c->ctx.req_len > LDR_LARGE_CALL_BYTES) c->w->trim = 1;
  if (c->payload != NULL) grpc_byte_buffer_destroy(c->payload);
  c->payload = NULL;
  c->ctx.req = NULL;
  c->ctx.req_len = 0;
  ldr_arena_reset(&c->arena);
}

void ldr_call_finish(struct call *c) {
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
  if (c->arena.held > LDR_LARGE_CALL_BYTES || c->ctx.req_len > LDR_LARGE_CALL_BYTES) c->w->trim = 1;
  ldr_arena_reset(&c->arena);
  c->w->served++;
  ldr_pool_done(c);
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

/* Takes the request bytes of `c` and checks what comes before any handler. */
static enum ldr_rc begin(struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  if (c->payload == NULL) {
    /* The client closed its side without a message, or the call was
     * cancelled (by the client, or by the server for waiting too long). */
    c->count_at_close = 1;
    return ldr_err_set(&ctx->err, LDR_INVALID, "request: no message was sent");
  }
  enum ldr_rc rc = ldr_call_take_payload(c);
  if (rc != LDR_OK) return rc;
  c->deadline_ns = deadline_ns(c->deadline);
  /* A call without a deadline still gets one for its database work, so a
   * stalled database cannot hold a worker for ever. */
  if (c->deadline_ns == 0 && c->w->srv->cfg->default_deadline_s > 0)
    c->deadline_ns = ldr_now_ns() + (int64_t)c->w->srv->cfg->default_deadline_s * 1000000000;
  if (c->deadline_ns != 0 && ldr_now_ns() >= c->deadline_ns)
    return ldr_err_set(&ctx->err, LDR_DEADLINE, "%s: the deadline passed before the call started",
                       c->method->name);
  return LDR_OK;
}

/*
 * Handles a call whose request has arrived: a read joins its worker's batch
 * (served by ldr_batch_run), anything else runs now. Returns -1 when no tag
 * will come for the call.
 */
static int on_received(struct call *c) {
  struct worker *w = c->w;
  enum ldr_rc rc = begin(c);
  if (rc == LDR_OK && c->method->batched) {
    rc = ldr_read_prepare(&c->ctx, &c->job);
    if (rc == LDR_OK) {
      c->state = CALL_BATCHED;
      w->batch[w->nbatch++] = c;
      return 0;
    }
  } else if (rc == LDR_OK) {
    w->backend->deadline_ns = c->deadline_ns;
    rc = c->method->fn(&c->ctx);
    w->backend->deadline_ns = 0;
  }
  if (ldr_call_send_reply(c, rc) != 0) return -1;
  ldr_call_release_request(c);
  return 0;
}

/* A matched call: its credentials are checked before its message is read. */
static int on_matched(struct call *c) {
  ldr_call_init_ctx(c);
  enum ldr_rc rc = ldr_call_admit(c);
  if (rc == LDR_OK && c->method == NULL) {
    char *path = grpc_slice_to_c_string(c->details.method);
    rc = ldr_err_set(&c->ctx.err, LDR_UNIMPLEMENTED, "method %.200s is not served here", path);
    gpr_free(path);
  }
  if (rc != LDR_OK) return ldr_call_send_reply(c, rc);
  return start_receive(c);
}

void ldr_call_event(struct call *c, int success) {
  switch (c->state) {
  case CALL_REQUESTED:
    if (!success) { /* the server is shutting down: no call came */
      ldr_pool_unmatched(c);
      return;
    }
    if (on_matched(c) == 0) return;
    break;
  case CALL_RECEIVING:
    /* success = 0: the client cancelled or went away while sending, or the
     * call was ended for waiting too long. */
    if (success && on_received(c) == 0) return;
    if (!success) {
      ldr_log(LDR_LOG_DEBUG, "worker %d: %s: the client went away before its request arrived",
              c->w->idx, c->method->name);
      account_status(c, unreceived_status(c, 0));
    }
    break;
  default: /* the reply batch is done (success = 0: the client went away) */
    if (c->count_at_close) {
      c->count_at_close = 0;
      account_status(c, unreceived_status(c, success));
    }
    break;
  }
  ldr_call_finish(c);
}
