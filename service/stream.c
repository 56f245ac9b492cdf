/*
 * Streaming calls: health Watch (one request, then a message at every change
 * of the status, until larder.watch_max_s) and server reflection (a reply to
 * each request message, until the client closes). A stream has one
 * completion-queue tag per kind of batch, and ends when none is outstanding.
 */
#include <grpc/byte_buffer.h>
#include <string.h>

#include "common/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "service/server_int.h"

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
  ldr_call_wait(c);
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
    ldr_call_account(c, rc);
  }
  ldr_call_wait(c); /* for the client to take it (ldr_stream_tick) */
  stream_batch(c, ops, n, TAG_SEND, &c->send_pending);
}

static void stream_fail(struct call *c, enum ldr_rc rc) {
  stream_send(c, 0, 1, rc, c->ctx.err.msg);
}

/* The status of the service a Watch watches. */
static int watch_status(struct call *c) {
  enum { UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN };
  return c->watch_unknown ? UNKNOWN : ldr_health_status(&c->ctx, c->watch_service);
}

/* Keeps the service a Watch asked for in the call, and gives back the memory
 * its request took: up to max_message_bytes, for as long as the Watch lasts. */
static void watch_keep(struct call *c, const char *service) {
  size_t n = strlen(service);
  c->watch_unknown = n >= sizeof c->watch_name;
  if (c->watch_unknown) n = 0;
  memcpy(c->watch_name, service, n);
  c->watch_name[n] = '\0';
  c->watch_service = c->watch_name;
  ldr_arena_reset(&c->arena); /* the request's memory goes now */
}

/* A request message of the stream arrived (or, c->payload NULL, the client closed its side). */
static void stream_message(struct call *c) {
  struct ldr_handler_ctx *ctx = &c->ctx;
  const struct ldr_method *m = c->method;
  if (c->payload == NULL) {
    if (m->stream == LDR_STREAM_BIDI) {
      stream_send(c, 0, 1, LDR_OK, NULL);
    } else {
      /* A Watch reads only until its one request (it goes on after the client's
       * half-close): this is a client that closed without sending it, whose
       * stream no timer would end. */
      stream_fail(c, ldr_err_set(&ctx->err, LDR_INVALID,
                                 "request: the stream ended without its HealthCheckRequest"));
    }
    return;
  }
  if (m->stream == LDR_STREAM_BIDI) ldr_arena_reset(&c->arena); /* one message at a time */
  ldr_err_clear(&ctx->err);
  enum ldr_rc rc = ldr_call_take_payload(c);
  if (rc == LDR_OK && m->stream == LDR_STREAM_BIDI) {
    rc = m->fn(ctx);
  } else if (rc == LDR_OK && c->watch_service == NULL) {
    const char *service = NULL;
    rc = ldr_health_request(ctx, &service);
    if (rc == LDR_OK) {
      watch_keep(c, service);
      c->watch_status = watch_status(c);
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

static void stream_start(struct call *c) {
  ldr_call_init_ctx(c);
  c->state = CALL_STREAM;
  c->md_sent = c->status_sent = c->hold = 0;
  c->watch_status = -1;
  c->watch_service = NULL;
  c->watch_unknown = 0;
  c->cancelled = 0;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled;
  stream_batch(c, &op, 1, TAG_CLOSE, &c->close_pending);
  enum ldr_rc rc = ldr_call_admit(c);
  if (rc != LDR_OK)
    stream_fail(c, rc);
  else
    stream_recv(c);
}

void ldr_stream_event(struct call *c, int kind, int success) {
  if (kind == TAG_CALL) { /* matched to a client, or (success = 0) the server is shutting down */
    if (!success) {
      ldr_pool_unmatched(c);
      return;
    }
    stream_start(c);
  } else if (kind == TAG_CLOSE) {
    c->close_pending = 0;
    if (!c->status_sent) {
      /* The client went away (a Watch that was closed, say). */
      c->status_sent = 1;
      ldr_metrics_handled(c->w->ws.metrics, ldr_call_slot(c), 1 /* CANCELLED */,
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
  if (c->state == CALL_STREAM && !c->close_pending && !c->recv_pending && !c->send_pending)
    ldr_call_finish(c);
}

/* Ends `c` as the server stops, telling a Watch NOT_SERVING first. */
static void end_for_shutdown(struct call *c) {
  if (c->method->stream == LDR_STREAM_WATCH &&
      c->watch_status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN &&
      c->watch_service != NULL) {
    ldr_health_reply(&c->ctx, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    stream_send(c, 1, 1, LDR_UNAVAILABLE, "the server is shutting down");
  } else {
    stream_send(c, 0, 1, LDR_UNAVAILABLE, "the server is shutting down");
  }
}

void ldr_stream_tick(struct worker *w, int64_t now) {
  const struct ldr_config *cfg = w->srv->cfg;
  int stopping = atomic_load(&w->srv->stopping);
  int64_t watch_max = (int64_t)cfg->watch_max_s * 1000000000;
  int64_t receive_max = (int64_t)cfg->receive_timeout_s * 1000000000;
  for (struct call *c = w->pools[KIND_STREAM].inflight.head; c != NULL; c = c->next) {
    if (c->state != CALL_STREAM) continue;
    /* A message or status the client does not take in time (it stopped
     * reading: HTTP/2 flow control holds the send) ends the stream, which
     * would otherwise hold the call and its memory for as long as it likes. */
    if (c->send_pending) {
      if (!c->evicted && ldr_call_waited(c, now) >= receive_max) {
        c->evicted = GRPC_STATUS_DEADLINE_EXCEEDED;
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "the reply was not taken within larder.receive_timeout_s",
                                     NULL);
      }
      continue;
    }
    if (c->status_sent) continue;
    int watch = c->method->stream == LDR_STREAM_WATCH;
    /* A stream whose client has not sent its next message in time ends. */
    if (c->recv_pending && (!watch || c->watch_service == NULL) &&
        ldr_call_waited(c, now) >= receive_max) {
      stream_send(c, 0, 1, LDR_DEADLINE,
                  "request: the next message did not arrive within larder.receive_timeout_s");
      continue;
    }
    if (stopping) { /* every stream: a Watch still waiting for its request too */
      end_for_shutdown(c);
      continue;
    }
    if (!watch || !c->hold) continue;
    /* A Watch lasts larder.watch_max_s at the most: its client watches again. */
    if (now - c->started_ns >= watch_max) {
      stream_send(c, 0, 1, LDR_OK, NULL);
      continue;
    }
    int status = watch_status(c);
    if (status == c->watch_status) continue;
    c->watch_status = status;
    c->hold = 0;
    ldr_health_reply(&c->ctx, status);
    stream_send(c, 1, 0, LDR_OK, NULL);
  }
}
