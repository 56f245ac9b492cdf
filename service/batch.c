/*
 * Reads served together. A worker that has a read in hand takes what else its
 * queue already holds (at most DRAIN_MAX events, and none started after
 * DRAIN_NS) before it serves any read, so under load several OnlineReads wait
 * in its batch at once; reads of the same view asking for the same features
 * share one backend read (one statement, one round trip to a database
 * server): many small reads cost about what one larger one does.
 */
#include <string.h>

#include "common/log.h"
#include "service/server_int.h"

/* Reads the jobs of `calls` (each group's calls next to each other) with one
 * backend read, until the latest deadline among them (none if one has none). */
static enum ldr_rc read_calls(struct worker *w, struct call **calls, size_t n,
                              struct ldr_err *err) {
  struct ldr_read_job *jobs[DRAIN_MAX + 1];
  int64_t deadline = calls[0]->deadline_ns;
  for (size_t i = 0; i < n; i++) {
    jobs[i] = &calls[i]->job;
    if (deadline != 0 && (calls[i]->deadline_ns == 0 || calls[i]->deadline_ns > deadline))
      deadline = calls[i]->deadline_ns;
  }
  w->backend->deadline_ns = deadline;
  enum ldr_rc rc = ldr_read_jobs(w->srv->cfg, w->backend, jobs, n, &w->batch_arena, &w->ws, err);
  w->backend->deadline_ns = 0;
  return rc;
}

/* Orders the batch so that each group's calls are next to each other, keeping
 * the first-come order of groups. */
static size_t group_order(struct worker *w, struct call **out) {
  size_t n = w->nbatch, m = 0;
  for (size_t i = 0; i < n; i++) {
    struct call *first = w->batch[i];
    if (first == NULL) continue;
    for (size_t j = i; j < n; j++) {
      struct call *c = w->batch[j];
      if (c == NULL || !ldr_read_job_joins(&c->job, &first->job)) continue;
      out[m++] = c;
      w->batch[j] = NULL;
    }
  }
  return m;
}

/* Keys read together at the most: reads waiting beyond them are served in the
 * next round trip, so a worker never holds the rows of a whole queue at once
 * (64 reads of 100 keys x 50 features were 30 MB of rows). Each read is still
 * one round trip. 512 keys of 50 features take about 7 MB, the block a worker
 * then keeps from batch to batch (worker.c). */
#define CHUNK_KEYS (2 * LDR_BATCH_KEYS)

/* Answers a call from its read (rc LDR_OK) or with the read's error; 0 while
 * the call waits for its reply to go, -1 when it is finished. */
static int answer(struct call *c, enum ldr_rc rc, const struct ldr_err *err) {
  if (rc == LDR_OK)
    rc = ldr_read_reply(&c->ctx, &c->job);
  else
    c->ctx.err = *err;
  if (ldr_call_send_reply(c, rc) == 0) return 0;
  ldr_call_finish(c);
  return -1;
}

/* Whether the calls all read one table for the same features (one group). */
static int one_group(struct call **calls, size_t n) {
  for (size_t k = 1; k < n; k++)
    if (!ldr_read_job_joins(&calls[k]->job, &calls[0]->job)) return 0;
  return 1;
}

/* A shared read that fails is done again in halves, down to the call that
 * fails alone, so one bad call (a key a store cannot hold, say), or calls
 * whose rows together pass the arena's cap, never fail the others; and one
 * bad call among n costs about 2 log2 n more reads, not n (a client sending
 * bad reads on purpose cannot make every batch of the worker one round trip
 * per call). Calls of one group whose table does not exist fail together:
 * that answer is the table's, not a call's. */
static void serve(struct worker *w, struct call **calls, size_t n) {
  struct ldr_err err;
  ldr_err_clear(&err);
  ldr_arena_reset(&w->batch_arena); /* nothing of a failed read is needed: the calls have it all */
  enum ldr_rc rc = read_calls(w, calls, n, &err);
  if (rc != LDR_OK && n > 1 && !(rc == LDR_NOT_FOUND && one_group(calls, n))) {
    if (ldr_log_enabled(LDR_LOG_DEBUG))
      ldr_log(LDR_LOG_DEBUG, "worker %d: %zu reads served together: %s; read again in halves",
              w->idx, n, ldr_rc_str(rc));
    serve(w, calls, n / 2);
    serve(w, calls + n / 2, n - n / 2);
    return;
  }
  /* Requests go once every reply is built: rows of one read may point into
   * another's request (reads joined in one statement share names). */
  for (size_t k = 0; k < n; k++)
    if (answer(calls[k], rc, &err) != 0) calls[k] = NULL;
  for (size_t k = 0; k < n; k++)
    if (calls[k] != NULL) ldr_call_release_request(calls[k]);
  ldr_arena_reset(&w->batch_arena);
}

void ldr_batch_run(struct worker *w) {
  struct call *calls[DRAIN_MAX + 1];
  size_t n = group_order(w, calls);
  w->nbatch = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i, keys = 0;
    while (j < n && (j == i || keys + calls[j]->job.n_keys <= CHUNK_KEYS))
      keys += calls[j++]->job.n_keys;
    serve(w, calls + i, j - i);
    i = j;
  }
}
