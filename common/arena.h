/* A per-call memory pool: many small allocations, freed in one go. */
#ifndef LDR_ARENA_H
#define LDR_ARENA_H

#include <stddef.h>

struct ldr_arena_block;
struct ldr_arena_cleanup;

/*
 * Allocations come from a chain of blocks. ldr_arena_reset frees every block
 * but the first, so a call context that is reused for call after call does not
 * go back to malloc for small requests (with ldr_arena_keep, it may replace
 * them with one block the size of the use). `cap` bounds the bytes held in blocks:
 * an allocation that would pass it fails and sets `exhausted`, which callers
 * report as RESOURCE_EXHAUSTED instead of aborting.
 */
struct ldr_arena {
  struct ldr_arena_block *first;      /* kept across resets (or replaced, see ldr_arena_keep) */
  struct ldr_arena_block *cur;        /* allocations come from here */
  size_t first_size;                  /* size of the usual first block, allocated lazily */
  size_t held;                        /* bytes held in blocks */
  size_t cap;                         /* most bytes that may be held */
  size_t keep;                        /* most bytes kept across resets (ldr_arena_keep) */
  unsigned small;                     /* resets in a row that used under a quarter of it */
  int exhausted;                      /* an allocation failed since the last reset */
  struct ldr_arena_cleanup *cleanups; /* run at reset and destroy, newest first */
};

/* Prepares `a`; no memory is taken until the first allocation. */
void ldr_arena_init(struct ldr_arena *a, size_t first_size, size_t cap);

/* Frees every block. `a` may be initialized again afterwards. */
void ldr_arena_destroy(struct ldr_arena *a);

/* Frees all blocks but the first (unless it is larger than first_size, or
 * than what ldr_arena_keep allows) and forgets every allocation. With
 * ldr_arena_keep, it may malloc the block it keeps; when that fails, the
 * arena allocates its usual first block lazily again. */
void ldr_arena_reset(struct ldr_arena *a);

/* Lets reset keep up to `bytes` (in one block, sized to the largest use that
 * outgrew it plus an eighth, within `bytes`; smaller once 64 uses in a row
 * took under a quarter) instead of
 * only the first block: for an arena reused for work of about the same size,
 * whose blocks would otherwise be mmapped and unmapped each time. */
void ldr_arena_keep(struct ldr_arena *a, size_t bytes);

/* Bytes the arena holds in blocks (after a reset: what it kept). */
size_t ldr_arena_held(const struct ldr_arena *a);

/* Resets `a` and gives back what ldr_arena_keep let it keep: only a first
 * block of the usual size stays. */
void ldr_arena_trim(struct ldr_arena *a);

/* Returns `n` bytes aligned for any type, owned by the arena, or NULL when
 * the cap or malloc says no. ldr_arena_alloc(a, 0) returns a valid pointer. */
void *ldr_arena_alloc(struct ldr_arena *a, size_t n);

/* As ldr_arena_alloc, zero-filled, for `n` elements of `size` bytes (overflow-checked). */
void *ldr_arena_calloc(struct ldr_arena *a, size_t n, size_t size);

/* Returns a copy of `n` bytes of `p` in the arena (plus a terminating NUL), or NULL. */
void *ldr_arena_memdup(struct ldr_arena *a, const void *p, size_t n);

/*
 * Registers fn(arg) to run when the arena is next reset or destroyed, newest
 * first, for what the arena's memory points into but does not own (a
 * database driver's result, say). Returns 0, or -1 (nothing registered, the
 * caller must release `arg` itself) when the arena is full.
 */
int ldr_arena_on_reset(struct ldr_arena *a, void (*fn)(void *), void *arg);

/* Adaptors with protobuf-c's ProtobufCAllocator signatures; `data` is the arena.
 * Freeing is a no-op: the memory goes when the arena is reset. */
void *ldr_arena_pb_alloc(void *data, size_t n);
void ldr_arena_pb_free(void *data, void *p);

#endif
