/*
 * Reads served together. A worker takes every completion its queue already
 * holds before it serves any read, so under load several OnlineReads wait in
 * its batch at once; reads of the same view asking for the same features
 * share one backend read (one statement, one round trip to a database
 * server): many small reads cost about what one larger one does.
 */
#include <string.h>

#include "common/log.h"
#include "service/server_int.h"

/* Most keys served with one statement when reads are served together. */
#define BATCH_KEYS_MAX 256

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

/* A shared read that fails is done again call by call, so one bad call (a key
 * a store cannot hold, say) never fails the others. */
void ldr_batch_run(struct worker *w) {
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
      if (ldr_call_send_reply(c, crc) != 0) ldr_call_finish(c);
    }
    ldr_arena_reset(&w->batch_arena);
  }
}
