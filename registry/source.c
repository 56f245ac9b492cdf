/*
 * The live registry: one pointer that the reload thread replaces, and one
 * hazard slot per reader thread. A reader publishes the registry it is about
 * to use in its slot and checks that it is still current; the reloader swaps
 * the pointer first and frees the old registry only once no slot holds it.
 * With sequentially consistent atomics that is enough: a reader either sees
 * the new pointer, or its slot is visible to the reloader's scan. Readers never
 * wait; the reloader waits, on its own thread, at most for a call to finish.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/file.h"
#include "common/log.h"
#include "registry/registry.h"

struct slot {
  _Atomic(struct ldr_registry *) held;
  char pad[64 - sizeof(void *)]; /* one cache line per reader */
};

/* What identifies one version of the file. */
struct file_id {
  dev_t dev;
  ino_t ino;
  off_t size;
  int64_t mtime_ns;
};

struct ldr_registry_source {
  char *path;
  char *project;
  int check_s;
  _Atomic(struct ldr_registry *) cur;
  struct slot *slots;
  size_t n_slots;
  atomic_ulong loads;
  /* Used by the checking thread only. */
  struct file_id seen; /* the version last loaded or last refused */
  int seen_valid;
  int last_errno; /* the stat error last logged, so it is logged once */
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

static int same_id(const struct file_id *a, const struct file_id *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static int stat_id(const char *path, struct file_id *id) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->size = st.st_size;
  id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  return 0;
}

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
  struct file_id before, after;
  if (stat_id(s->path, &before) != 0) {
    /* A registry that `feast apply` has not written yet is normal for a
     * store that only serves the OnlineStore service: not a warning. */
    if (errno != s->last_errno)
      ldr_log(errno == ENOENT && atomic_load(&s->cur) == NULL ? LDR_LOG_INFO : LDR_LOG_WARN,
              "registry %s: %s; %s", s->path, strerror(errno),
              atomic_load(&s->cur) ? "serving the registry loaded before"
                                   : "ServingService answers FAILED_PRECONDITION until it loads");
    s->last_errno = errno;
    return 0;
  }
  s->last_errno = 0;
  if (s->seen_valid && same_id(&before, &s->seen)) return 0;

  uint8_t *bytes = NULL;
  size_t len = 0;
  if (ldr_read_file(s->path, &bytes, &len) != 0) {
    ldr_log(LDR_LOG_WARN, "registry %s: %s", s->path, strerror(errno));
    return 0;
  }
  /* A file still being written: try again at the next check. */
  if (stat_id(s->path, &after) != 0 || !same_id(&before, &after)) {
    free(bytes);
    return 0;
  }
  s->seen = before;
  s->seen_valid = 1;
  struct ldr_registry *r = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  enum ldr_rc rc = ldr_registry_parse(bytes, len, s->project, &r, &err);
  free(bytes);
  if (rc != LDR_OK) {
    ldr_log(LDR_LOG_WARN, "registry %s: %s; %s", s->path, err.msg,
            atomic_load(&s->cur) ? "serving the registry loaded before"
                                 : "ServingService answers FAILED_PRECONDITION until it loads");
    return 0;
  }
  unsigned long n = atomic_fetch_add(&s->loads, 1) + 1;
  ldr_log(LDR_LOG_INFO, "registry %s %s: %zu views, %zu feature services of project %s", s->path,
          n == 1 ? "loaded" : "reloaded", r->n_views, r->n_services, s->project);
  replace(s, r);
  return 1;
}

enum ldr_rc ldr_registry_source_new(const char *path, int check_s, const char *project,
                                    size_t n_readers, struct ldr_registry_source **out,
                                    struct ldr_err *err) {
  struct ldr_registry_source *s = calloc(1, sizeof *s);
  *out = NULL;
  if (s == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  s->path = strdup(path);
  s->project = strdup(project);
  s->slots = calloc(n_readers ? n_readers : 1, sizeof *s->slots);
  s->n_slots = n_readers;
  s->check_s = check_s;
  atomic_init(&s->cur, NULL);
  atomic_init(&s->loads, 0);
  for (size_t i = 0; s->slots != NULL && i < n_readers; i++) atomic_init(&s->slots[i].held, NULL);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (s->path == NULL || s->project == NULL || s->slots == NULL) {
    ldr_registry_source_free(s);
    return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  }
  ldr_registry_source_check(s);
  *out = s;
  return LDR_OK;
}

static void *reload_main(void *arg) {
  struct ldr_registry_source *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += s->check_s;
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
  if (s->check_s <= 0) return 0;
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
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->slots);
  free(s->path);
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

unsigned long ldr_registry_source_loads(struct ldr_registry_source *s) {
  return atomic_load(&s->loads);
}
