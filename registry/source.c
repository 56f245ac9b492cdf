/*
 * The live registry: one pointer that the reload thread replaces, and one
 * hazard slot per reader thread. A reader publishes the registry it is about
 * to use in its slot and checks that it is still current; the reloader swaps
 * the pointer first and frees the old registry only once no slot holds it.
 * With sequentially consistent atomics that is enough: a reader either sees
 * the new pointer, or its slot is visible to the reloader's scan. Readers never
 * wait; the reloader waits, on its own thread, at most for a call to finish.
 * What to load is a loader's (source_file.c, source_sql.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "registry/source_int.h"

#define UNLOADED_RETRY_MS 1000

struct slot {
  _Atomic(struct ldr_registry *) held;
  char pad[64 - sizeof(void *)]; /* one cache line per reader */
};

struct ldr_registry_source {
  char *project;
  int check_s;
  struct ldr_loader *loader;
  _Atomic(struct ldr_registry *) cur;
  struct slot *slots;
  size_t n_slots;
  atomic_ulong loads, failures;
  atomic_llong last_load_s;
  atomic_int failing;
  int64_t next_ms; /* what the loader asked for at its last check (checking thread only) */
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

static int held_anywhere(struct ldr_registry_source *s, const struct ldr_registry *r) {
  for (size_t i = 0; i < s->n_slots; i++)
    if (atomic_load(&s->slots[i].held) == r) return 1;
  return 0;
}

static void replace(struct ldr_registry_source *s, struct ldr_registry *r) {
  struct ldr_registry *old = atomic_exchange(&s->cur, r);
  if (old == NULL) return;
  struct timespec ms = {0, 1000000};
  while (held_anywhere(s, old)) nanosleep(&ms, NULL);
  ldr_registry_free(old);
}

int ldr_registry_source_check(struct ldr_registry_source *s) {
  struct ldr_registry *r = NULL;
  s->next_ms = 0;
  int got = s->loader->check(s->loader, atomic_load(&s->cur) != NULL, &r, &s->next_ms);
  if (got < 0) {
    if (got == -1) atomic_fetch_add(&s->failures, 1);
    atomic_store(&s->failing, 1);
    return 0;
  }
  atomic_store(&s->failing, 0);
  if (got == 0) return 0;
  unsigned long n = atomic_fetch_add(&s->loads, 1) + 1;
  atomic_store(&s->last_load_s, (long long)time(NULL));
  ldr_log(LDR_LOG_INFO, "registry %s %s: %zu views, %zu feature services of project %s",
          s->loader->where, n == 1 ? "loaded" : "reloaded", r->n_views, r->n_services, s->project);
  replace(s, r);
  return 1;
}

enum ldr_rc ldr_registry_source_new(const struct ldr_registry_location *loc, int check_s,
                                    const char *project, size_t n_readers,
                                    struct ldr_registry_source **out, struct ldr_err *err) {
  struct ldr_registry_source *s = calloc(1, sizeof *s);
  *out = NULL;
  if (s == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  s->project = strdup(project);
  s->slots = calloc(n_readers ? n_readers : 1, sizeof *s->slots);
  s->n_slots = n_readers;
  s->check_s = check_s;
  atomic_init(&s->cur, NULL);
  atomic_init(&s->loads, 0);
  atomic_init(&s->failures, 0);
  atomic_init(&s->last_load_s, 0);
  atomic_init(&s->failing, 0);
  for (size_t i = 0; s->slots != NULL && i < n_readers; i++) atomic_init(&s->slots[i].held, NULL);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (s->project == NULL || s->slots == NULL) {
    ldr_registry_source_free(s);
    return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  }
  s->loader = loc->sql ? ldr_sql_loader_new(loc->path, loc->dir, project, err)
                       : ldr_file_loader_new(loc->path, project, err);
  if (s->loader == NULL) {
    enum ldr_rc rc = err->rc;
    ldr_registry_source_free(s);
    return rc;
  }
  ldr_registry_source_check(s);
  *out = s;
  return LDR_OK;
}

/* How long to wait before the next check: the poll interval, or sooner when
 * the loader asked (a retry, a confirmation). Until a registry has loaded (a
 * file `feast apply` has not written yet, a database not up yet) the thread
 * retries every second unless the loader asks otherwise, whatever the
 * interval; with an interval of 0 the registry is then read no more. */
static int64_t wait_ms(const struct ldr_registry_source *s) {
  if (atomic_load(&s->cur) == NULL) return s->next_ms > 0 ? s->next_ms : UNLOADED_RETRY_MS;
  if (s->check_s <= 0) return -1;
  int64_t ms = (int64_t)s->check_s * 1000;
  if (s->next_ms > 0 && s->next_ms < ms) ms = s->next_ms;
  return ms;
}

static void *reload_main(void *arg) {
  struct ldr_registry_source *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    int64_t ms = wait_ms(s);
    if (ms < 0) break; /* read once, and it was */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
    }
    if (s->stop) break;
    pthread_mutex_unlock(&s->mu);
    ldr_registry_source_check(s);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int ldr_registry_source_start(struct ldr_registry_source *s) {
  if (wait_ms(s) < 0) return 0;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_destroy(&s->cv);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&s->thread, NULL, reload_main, s) != 0) return -1;
  s->started = 1;
  return 0;
}

void ldr_registry_source_free(struct ldr_registry_source *s) {
  if (s == NULL) return;
  if (s->started) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
  }
  ldr_registry_free(atomic_load(&s->cur));
  if (s->loader != NULL) s->loader->free(s->loader);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->slots);
  free(s->project);
  free(s);
}

const struct ldr_registry *ldr_registry_acquire(struct ldr_registry_source *s, size_t reader,
                                                struct ldr_err *err) {
  struct slot *slot = &s->slots[reader];
  for (;;) {
    struct ldr_registry *r = atomic_load(&s->cur);
    if (r == NULL) {
      ldr_err_set(err, LDR_FAILED_PRECONDITION,
                  "the feature registry has not loaded (the server log says why)");
      return NULL;
    }
    atomic_store(&slot->held, r);
    if (atomic_load(&s->cur) == r) return r;
  }
}

void ldr_registry_release(struct ldr_registry_source *s, size_t reader) {
  atomic_store(&s->slots[reader].held, NULL);
}

void ldr_registry_source_stats(struct ldr_registry_source *s, struct ldr_registry_stats *out) {
  out->loads = atomic_load(&s->loads);
  out->failures = atomic_load(&s->failures);
  out->last_load_s = atomic_load(&s->last_load_s);
  out->failing = atomic_load(&s->failing);
}

unsigned long ldr_registry_source_loads(struct ldr_registry_source *s) {
  return atomic_load(&s->loads);
}
