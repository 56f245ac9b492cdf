#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16u
/* Uses in a row under a quarter of a kept block before it shrinks to fit. */
#define SHRINK_AFTER 64u

struct ldr_arena_block {
  struct ldr_arena_block *next;
  size_t size; /* usable bytes in data */
  size_t used;
  _Alignas(16) unsigned char data[];
};

struct ldr_arena_cleanup {
  struct ldr_arena_cleanup *next;
  void (*fn)(void *);
  void *arg;
};

static void run_cleanups(struct ldr_arena *a) {
  while (a->cleanups != NULL) {
    struct ldr_arena_cleanup *c = a->cleanups;
    a->cleanups = c->next;
    c->fn(c->arg);
  }
}

int ldr_arena_on_reset(struct ldr_arena *a, void (*fn)(void *), void *arg) {
  struct ldr_arena_cleanup *c = ldr_arena_alloc(a, sizeof *c);
  if (c == NULL) return -1;
  c->fn = fn;
  c->arg = arg;
  c->next = a->cleanups;
  a->cleanups = c;
  return 0;
}

void ldr_arena_init(struct ldr_arena *a, size_t first_size, size_t cap) {
  memset(a, 0, sizeof *a);
  a->first_size = first_size ? first_size : 4096;
  a->cap = cap ? cap : SIZE_MAX;
}

static void free_chain(struct ldr_arena_block *b) {
  while (b != NULL) {
    struct ldr_arena_block *next = b->next;
    free(b);
    b = next;
  }
}

void ldr_arena_destroy(struct ldr_arena *a) {
  run_cleanups(a);
  free_chain(a->first);
  a->first = a->cur = NULL;
  a->held = 0;
  a->exhausted = 0;
}

static struct ldr_arena_block *new_block(struct ldr_arena *a, size_t size);

void ldr_arena_reset(struct ldr_arena *a) {
  /* The cleanup records live in the blocks: run them before freeing those. */
  run_cleanups(a);
  /* The first block stays at its usual size: a reused context keeps only its
   * usual block, not the largest request it ever served. An arena that may
   * keep up to `keep` bytes keeps one block sized to the largest use that
   * needed a new one (with an eighth more, within `keep`), so that the next use of about
   * that size neither mallocs nor faults in fresh pages. It shrinks to fit
   * after SHRINK_AFTER uses in a row took under a quarter of it. */
  size_t used = 0;
  for (struct ldr_arena_block *b = a->first; b != NULL; b = b->next) used += b->used;
  size_t size = a->first_size;
  if (used <= a->keep) {
    size_t room = used / 8 < a->keep - used ? used / 8 : a->keep - used; /* never past keep */
    if (used + room > size) size = used + room;
  }
  struct ldr_arena_block *f = a->first;
  int roomy = 0;
  if (f != NULL && a->keep != 0 && used <= a->keep && f->next == NULL && f->size >= used) {
    a->small = used >= f->size / 4 ? 0 : a->small + 1;
    roomy = a->small < SHRINK_AFTER;
  }
  if (f != NULL && f->size != size && !roomy) {
    free_chain(f);
    a->first = NULL;
    a->held = 0;
    a->small = 0;
  }
  if (a->first != NULL) {
    free_chain(a->first->next);
    a->first->next = NULL;
    a->first->used = 0;
    a->held = a->first->size;
  } else if (size > a->first_size) {
    a->first = new_block(a, size); /* without it, the usual block when next needed */
  }
  a->cur = a->first;
  a->exhausted = 0;
}

void ldr_arena_keep(struct ldr_arena *a, size_t bytes) { a->keep = bytes; }

size_t ldr_arena_held(const struct ldr_arena *a) { return a->held; }

void ldr_arena_trim(struct ldr_arena *a) {
  size_t keep = a->keep;
  a->keep = 0;
  ldr_arena_reset(a);
  a->keep = keep;
}

static struct ldr_arena_block *new_block(struct ldr_arena *a, size_t size) {
  if (size > a->cap || a->held > a->cap - size) {
    a->exhausted = 1;
    return NULL;
  }
  struct ldr_arena_block *b = malloc(sizeof *b + size);
  if (b == NULL) {
    a->exhausted = 1;
    return NULL;
  }
  b->next = NULL;
  b->size = size;
  b->used = 0;
  a->held += size;
  return b;
}

void *ldr_arena_alloc(struct ldr_arena *a, size_t n) {
  if (n > SIZE_MAX / 2) {
    a->exhausted = 1;
    return NULL;
  }
  size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (need == 0) need = ARENA_ALIGN;
  struct ldr_arena_block *b = a->cur;
  if (b != NULL && b->size - b->used >= need) {
    void *p = b->data + b->used;
    b->used += need;
    return p;
  }
  if (a->first == NULL) {
    size_t size = a->first_size > need ? a->first_size : need;
    b = new_block(a, size);
    if (b == NULL) return NULL;
    a->first = a->cur = b;
  } else {
    /* Grow geometrically so a large reply costs few mallocs. */
    size_t size = b->size * 2;
    if (size < need) size = need;
    if (size > a->cap - a->held && need <= a->cap - a->held) size = a->cap - a->held;
    struct ldr_arena_block *nb = new_block(a, size);
    if (nb == NULL) return NULL;
    b->next = nb;
    a->cur = b = nb;
  }
  b->used = need;
  return b->data;
}

void *ldr_arena_calloc(struct ldr_arena *a, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) {
    a->exhausted = 1;
    return NULL;
  }
  void *p = ldr_arena_alloc(a, n * size);
  if (p != NULL) memset(p, 0, n * size);
  return p;
}

void *ldr_arena_memdup(struct ldr_arena *a, const void *p, size_t n) {
  if (n == SIZE_MAX) {
    a->exhausted = 1;
    return NULL;
  }
  unsigned char *q = ldr_arena_alloc(a, n + 1);
  if (q == NULL) return NULL;
  if (n > 0) memcpy(q, p, n);
  q[n] = '\0';
  return q;
}

void *ldr_arena_pb_alloc(void *data, size_t n) { return ldr_arena_alloc(data, n); }

void ldr_arena_pb_free(void *data, void *p) {
  (void)data;
  (void)p;
}
