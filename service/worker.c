/*
 * A worker thread: its completion queue loop, and the pool of call contexts
 * it keeps requested.
 *
 * Slots cannot be held by idle clients. Every method keeps `want` contexts
 * requested: when one is matched to a client, another is requested at once,
 * so a call that never sends its message (or never takes its reply) holds
 * only its own context. Contexts come from an idle list or are allocated, up
 * to a cap per kind; at the cap the oldest call in flight is ended to make
 * room, and each tick ends the calls that waited past larder.receive_timeout_s.
 * Contexts beyond the first ones are freed when their call ends, so memory
 * goes back after a burst.
 */
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "service/server_int.h"

/* Calls kept requested per unary method across all workers (DESIGN §9), at
 * least MIN_PER_WORKER on each; per streaming method on each worker; and
 * slots per worker that answer unknown methods. */
#define REQUESTED_PER_METHOD 64
#define MIN_PER_WORKER 8
#define STREAMS_WANTED 4
#define GENERIC_WANTED 2
#define HEALTH "/grpc.health.v1.Health/"
/* Most contexts of each kind per worker (see the top of this file). */
#define UNARY_CAP 1024
#define STREAM_CAP 1024
/* Arena blocks of a unary and of a streaming call, and the batch's arena. */
#define UNARY_ARENA_BLOCK 16384
/* Most bytes a worker keeps between batches of reads served together, and
 * how long it keeps them once no read comes. */
#define BATCH_ARENA_KEEP (16u << 20)
#define BATCH_ARENA_IDLE_NS 1000000000
#define STREAM_ARENA_BLOCK 4096
/* How often a worker looks at its calls in flight and its streams, at the most. */
#define TICK_NS 200000000
/* The health thread looks this often whether every worker has been out of
 * its queue for STUCK_NS, and then polls the network in steps of RESCUE_MS. */
#define LOOK_MS 100
#define STUCK_NS 100000000
#define RESCUE_MS 5

static int kind_of_slot(size_t slot) {
  return slot < ldr_n_methods && ldr_methods[slot].stream ? KIND_STREAM : KIND_UNARY;
}

size_t ldr_call_slot(const struct call *c) {
  return c->method ? (size_t)(c->method - ldr_methods) : ldr_n_methods;
}

static void list_remove(struct call_list *l, struct call *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  c->prev = c->next = NULL;
  l->n--;
}

static void list_append(struct call_list *l, struct call *c) {
  c->next = NULL;
  c->prev = l->tail;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
  l->n++;
}

/* A new context of `kind`, not yet requested. NULL when memory is short. */
static struct call *new_context(struct worker *w, int kind) {
  struct call *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  size_t cap = ldr_config_call_arena_cap(w->srv->cfg);
  c->w = w;
  c->status_msg = grpc_empty_slice();
  grpc_metadata_array_init(&c->md);
  grpc_call_details_init(&c->details);
  ldr_arena_init(&c->arena, kind == KIND_STREAM ? STREAM_ARENA_BLOCK : UNARY_ARENA_BLOCK, cap);
  w->pools[kind].owned++;
  return c;
}

static void free_context(struct call *c) {
  if (c->payload != NULL) grpc_byte_buffer_destroy(c->payload);
  grpc_metadata_array_destroy(&c->md);
  grpc_call_details_destroy(&c->details);
  ldr_arena_destroy(&c->arena);
  free(c);
}

static void give_back(struct worker *w, int kind, struct call *c) {
  struct pool *p = &w->pools[kind];
  if (p->owned > p->base) {
    p->owned--;
    free_context(c);
    return;
  }
  c->state = CALL_IDLE;
  c->next = p->idle;
  p->idle = c;
}

/*
 * Ends the oldest call in flight of `kind` that is waiting on its client, to
 * free a context for a new call: the new call is more likely to be useful
 * than one that has been waiting longest.
 */
static void evict_oldest(struct worker *w, int kind) {
  for (struct call *c = w->pools[kind].inflight.head; c != NULL; c = c->next) {
    if (c->evicted || c->state == CALL_BATCHED) continue;
    c->evicted = GRPC_STATUS_RESOURCE_EXHAUSTED;
    /* A line a second at most: a client, without a token for health calls,
     * makes evictions as fast as it opens calls. */
    unsigned long long held;
    if (ldr_log_allow(&w->evict_log, ldr_now_ns(), &held))
      ldr_log(LDR_LOG_WARN,
              "worker %d: %zu calls in flight: ending the oldest (%s) to make room for new ones "
              "(%llu more since the last line)",
              w->idx, w->pools[kind].inflight.n, c->method ? c->method->name : "unknown method",
              held);
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "larder is holding too many calls; this one waited longest", NULL);
    return;
  }
}

/* Keeps `want` contexts requested for method slot `slot`, as far as the cap allows. */
static void replenish(struct worker *w, size_t slot) {
  int kind = kind_of_slot(slot);
  struct pool *p = &w->pools[kind];
  while (w->requested[slot] < w->want[slot] && !atomic_load(&w->srv->draining)) {
    struct call *c = p->idle;
    if (c != NULL) {
      p->idle = c->next;
      c->next = NULL;
    } else if (p->owned < p->cap) {
      c = new_context(w, kind);
    }
    if (c == NULL) {
      evict_oldest(w, kind);
      return;
    }
    c->method = slot < ldr_n_methods ? &ldr_methods[slot] : NULL;
    ldr_call_request(c);
  }
}

void ldr_call_request(struct call *c) {
  struct server *srv = c->w->srv;
  grpc_call_error e;
  c->call = NULL;
  c->payload = NULL;
  c->md.count = 0;
  c->evicted = 0;
  c->count_at_close = 0;
  if (!c->extra) c->w->requested[ldr_call_slot(c)]++;
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
    if (!c->extra) c->w->requested[ldr_call_slot(c)]--;
  }
}

void ldr_call_wait(struct call *c) {
  c->waiting_ns = ldr_now_ns();
  c->busy_mark_ns = c->w->busy_ns;
}

int64_t ldr_call_waited(const struct call *c, int64_t now) {
  return now - c->waiting_ns - (c->w->busy_ns - c->busy_mark_ns);
}

void ldr_pool_matched(struct call *c) {
  struct worker *w = c->w;
  atomic_fetch_add(&w->srv->in_flight, 1);
  c->started_ns = ldr_now_ns();
  ldr_call_wait(c);
  if (c->extra) return;
  size_t slot = ldr_call_slot(c);
  w->requested[slot]--;
  list_append(&w->pools[kind_of_slot(slot)].inflight, c);
  replenish(w, slot);
}

void ldr_pool_done(struct call *c) {
  struct worker *w = c->w;
  atomic_fetch_sub(&w->srv->in_flight, 1);
  if (c->extra) {
    c->state = CALL_IDLE;
    return;
  }
  size_t slot = ldr_call_slot(c);
  int kind = kind_of_slot(slot);
  list_remove(&w->pools[kind].inflight, c);
  if (atomic_load(&w->srv->draining)) {
    give_back(w, kind, c);
    return;
  }
  /* The method a context served last is the likeliest to need it again. */
  if (w->requested[slot] < w->want[slot]) {
    ldr_call_request(c);
    return;
  }
  for (size_t s = 0; s <= ldr_n_methods; s++)
    if (kind_of_slot(s) == kind && w->requested[s] < w->want[s]) {
      c->method = s < ldr_n_methods ? &ldr_methods[s] : NULL;
      ldr_call_request(c);
      return;
    }
  give_back(w, kind, c);
}

void ldr_pool_unmatched(struct call *c) {
  if (c->extra) {
    c->state = CALL_IDLE;
    return;
  }
  size_t slot = ldr_call_slot(c);
  c->w->requested[slot]--;
  give_back(c->w, kind_of_slot(slot), c);
}

/* Ends the calls whose client has kept them waiting past larder.receive_timeout_s. */
static void end_stalled(struct worker *w, int64_t now) {
  int64_t limit = (int64_t)w->srv->cfg->receive_timeout_s * 1000000000;
  for (struct call *c = w->pools[KIND_UNARY].inflight.head; c != NULL; c = c->next) {
    if (c->evicted || (c->state != CALL_RECEIVING && c->state != CALL_SENDING)) continue;
    if (ldr_call_waited(c, now) < limit) continue;
    c->evicted = GRPC_STATUS_DEADLINE_EXCEEDED;
    ldr_log(LDR_LOG_DEBUG, "worker %d: %s: the client kept the call waiting for %d s", w->idx,
            c->method ? c->method->name : "unknown method", w->srv->cfg->receive_timeout_s);
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                 c->state == CALL_RECEIVING
                                     ? "request: the message did not arrive within "
                                       "larder.receive_timeout_s"
                                     : "the reply was not taken within larder.receive_timeout_s",
                                 NULL);
  }
}

/* Moves a call one step on for a completion-queue event. */
static void dispatch(struct worker *w, grpc_event ev) {
  uintptr_t tag = (uintptr_t)ev.tag;
  struct call *c = (struct call *)(tag & ~(uintptr_t)7);
  TAKEN_OVER(c);
  if (c->state == CALL_REQUESTED && ev.success) {
    ldr_pool_matched(c);
    ldr_metrics_started(w->ws.metrics, ldr_call_slot(c));
  }
  if (c->method != NULL && c->method->stream)
    ldr_stream_event(c, (int)(tag & 7), ev.success);
  else
    ldr_call_event(c, ev.success);
}

/* Every worker has been out of its queue (in the database) for STUCK_NS. A
 * worker whose thread did not start polls nothing: it does not count. (The
 * health thread starts last, after every worker's `started` is set.) */
static int workers_stuck(const struct server *srv, int64_t now) {
  for (int i = 0; i < srv->nworkers; i++) {
    if (!srv->workers[i].started) continue;
    int64_t since = atomic_load_explicit(&srv->workers[i].out_since_ns, memory_order_relaxed);
    if (since == 0 || now - since < STUCK_NS) return 0;
  }
  return 1;
}

/*
 * The health thread's queue does not poll: the workers read the network for
 * it as they wait for their own calls. A queue that polled would take the
 * workers' reads too and hand each one over, two thread switches per call.
 * Only while every worker is stuck in the database does this thread poll
 * (the rescue queue, which receives nothing), so that a Check is still read.
 */
static grpc_event probe_next(struct worker *w, gpr_timespec until) {
  for (;;) {
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    int stuck = workers_stuck(w->srv, ldr_now_ns());
    gpr_timespec look = gpr_time_add(now, gpr_time_from_millis(LOOK_MS, GPR_TIMESPAN));
    gpr_timespec wait = stuck                           ? gpr_inf_past(GPR_CLOCK_MONOTONIC)
                        : gpr_time_cmp(until, look) < 0 ? until
                                                        : look;
    grpc_event ev = grpc_completion_queue_next(w->cq, wait, NULL);
    if (ev.type != GRPC_QUEUE_TIMEOUT || gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) >= 0)
      return ev;
    if (stuck)
      grpc_completion_queue_next(
          w->srv->rescue_cq,
          gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(RESCUE_MS, GPR_TIMESPAN)),
          NULL);
  }
}

void *ldr_worker_main(void *arg) {
  struct worker *w = arg;
  int stop = 0;
  while (!stop) {
    /* A worker shuts its own queue down, once out of any handler: a handler
     * that ends later must still be able to start its reply batch. */
    if (!w->cq_shut && atomic_load(&w->srv->closing)) {
      grpc_completion_queue_shutdown(w->cq);
      w->cq_shut = 1;
    }
    /* Wake up now and then while calls are in flight, to end stalled ones
     * and push health changes to streams, and while draining, to notice the end. */
    int busy = w->pools[KIND_UNARY].inflight.n || w->pools[KIND_STREAM].inflight.n ||
               atomic_load(&w->srv->draining);
    /* A worker that kept a block for reads served together wakes once more
     * when reads stop, to give it back. */
    int kept = ldr_arena_held(&w->batch_arena) > UNARY_ARENA_BLOCK;
    int64_t wait_ns = busy ? TICK_NS : kept ? BATCH_ARENA_IDLE_NS : 0;
    gpr_timespec until = wait_ns
                             ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                            gpr_time_from_millis(wait_ns / 1000000, GPR_TIMESPAN))
                             : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_event ev;
    if (w->probe) {
      ev = probe_next(w, until);
    } else {
      atomic_store_explicit(&w->out_since_ns, 0, memory_order_relaxed);
      ev = grpc_completion_queue_next(w->cq, until, NULL);
    }
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    int64_t t0 = ldr_now_ns();
    atomic_store_explicit(&w->out_since_ns, t0, memory_order_relaxed);
    if (ev.type == GRPC_OP_COMPLETE) dispatch(w, ev);
    /* Take what else the queue already holds, without waiting, so that the
     * reads among it are served together; an idle server adds no delay. The
     * queue of a busy worker never runs dry, and the other events in it may be
     * costly (a refused key of 100,000 join keys is decoded first): the reads
     * waiting wait at most DRAIN_NS, and one event, for the batch to fill. */
    int64_t drain_end = ldr_now_ns() + DRAIN_NS;
    for (int k = 0; w->nbatch > 0 && k < DRAIN_MAX && ldr_now_ns() < drain_end; k++) {
      ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
      if (ev.type == GRPC_QUEUE_TIMEOUT) break;
      if (ev.type == GRPC_QUEUE_SHUTDOWN) {
        stop = 1;
        break;
      }
      if (ev.type == GRPC_OP_COMPLETE) dispatch(w, ev);
    }
    if (w->nbatch) {
      ldr_batch_run(w);
      w->batch_ns = ldr_now_ns(); /* the idle second counts from its end */
    }
    /* After a burst of large calls, malloc keeps their freed memory for reuse
     * (in arenas of gRPC's threads too): give it back once nothing is in flight. */
    if (w->trim && w->pools[KIND_UNARY].inflight.n == 0) {
      w->trim = 0;
      malloc_trim(0);
    }
    int64_t now = ldr_now_ns();
    w->busy_ns += now - t0;
    if (kept && now - w->batch_ns >= BATCH_ARENA_IDLE_NS) ldr_arena_trim(&w->batch_arena);
    if (now - w->last_tick_ns >= TICK_NS || atomic_load(&w->srv->stopping)) {
      w->last_tick_ns = now;
      if (w->pools[KIND_UNARY].inflight.n) end_stalled(w, now);
      if (w->pools[KIND_STREAM].inflight.n) ldr_stream_tick(w, now);
    }
  }
  return NULL;
}

int ldr_worker_init(struct server *srv, int i) {
  struct worker *w = &srv->workers[i];
  struct ldr_err err;
  ldr_err_clear(&err);
  size_t cap = ldr_config_call_bytes(srv->cfg);
  ldr_arena_init(&w->batch_arena, UNARY_ARENA_BLOCK, cap < (64u << 20) ? 64u << 20 : cap);
  /* Reads served together take about the same memory batch after batch: a
   * block kept from the last one spares an mmap, page faults and munmap each. */
  ldr_arena_keep(&w->batch_arena, BATCH_ARENA_KEEP);
  w->srv = srv;
  w->idx = i;
  w->ws.stopping = &srv->stopping;
  size_t per = (REQUESTED_PER_METHOD + (size_t)srv->nworkers - 1) / (size_t)srv->nworkers;
  if (per < MIN_PER_WORKER) per = MIN_PER_WORKER;
  /* The last thread serves the health methods and nothing else, and the
   * workers every other method: a Check never waits behind a read. */
  w->probe = i == srv->nworkers;
  for (size_t m = 0; m <= ldr_n_methods; m++) {
    int health = m < ldr_n_methods && !strncmp(ldr_methods[m].path, HEALTH, sizeof HEALTH - 1);
    if (health != w->probe)
      w->want[m] = 0;
    else if (m == ldr_n_methods)
      w->want[m] = GENERIC_WANTED;
    else
      w->want[m] = ldr_methods[m].stream ? STREAMS_WANTED : w->probe ? REQUESTED_PER_METHOD : per;
  }
  for (size_t m = 0; m <= ldr_n_methods; m++) w->pools[kind_of_slot(m)].base += w->want[m];
  w->pools[KIND_UNARY].cap = UNARY_CAP;
  /* Every Watch stream is the health thread's: it may hold as many as all the
   * threads together would. */
  w->pools[KIND_STREAM].cap = STREAM_CAP * (w->probe ? (size_t)srv->nthreads : 1);
  if (ldr_backend_new(&srv->cfg->store, &w->backend, &err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "cannot open the %s store: %s", srv->cfg->store.type_name, err.msg);
    return -1;
  }
  ldr_metrics_store(w->ws.metrics, w->backend);
  return 0;
}

int ldr_worker_start_calls(struct worker *w) {
  for (size_t m = 0; m <= ldr_n_methods; m++) {
    replenish(w, m);
    if (w->requested[m] < w->want[m]) return -1;
  }
  return 0;
}

int ldr_worker_add_extra(struct worker *w, size_t n) {
  size_t count = 0;
  for (size_t m = 0; m < ldr_n_methods; m++) count += ldr_methods[m].stream || !w->want[m] ? 0 : n;
  w->extra = calloc(count ? count : 1, sizeof *w->extra);
  if (w->extra == NULL) return -1;
  size_t next = 0;
  for (size_t m = 0; m < ldr_n_methods; m++)
    for (size_t k = 0; !ldr_methods[m].stream && w->want[m] && k < n; k++) {
      struct call *c = &w->extra[next++];
      c->w = w;
      c->extra = 1;
      c->method = &ldr_methods[m];
      c->status_msg = grpc_empty_slice();
      grpc_metadata_array_init(&c->md);
      grpc_call_details_init(&c->details);
      ldr_arena_init(&c->arena, UNARY_ARENA_BLOCK, ldr_config_call_arena_cap(w->srv->cfg));
    }
  w->nextra = count;
  for (size_t j = 0; j < count; j++) ldr_call_request(&w->extra[j]);
  return 0;
}

/* Every context is idle or in a list once the queue is shut down and drained. */
void ldr_worker_destroy(struct worker *w) {
  for (int k = 0; k < KINDS; k++) {
    struct pool *p = &w->pools[k];
    while (p->inflight.head != NULL) {
      struct call *c = p->inflight.head;
      list_remove(&p->inflight, c);
      free_context(c);
    }
    while (p->idle != NULL) {
      struct call *c = p->idle;
      p->idle = c->next;
      free_context(c);
    }
  }
  for (size_t j = 0; j < w->nextra; j++) {
    struct call *c = &w->extra[j];
    if (c->payload != NULL) grpc_byte_buffer_destroy(c->payload);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    ldr_arena_destroy(&c->arena);
  }
  free(w->extra);
  ldr_arena_destroy(&w->batch_arena);
  if (w->cq != NULL) grpc_completion_queue_destroy(w->cq);
  ldr_backend_free(w->backend);
}
