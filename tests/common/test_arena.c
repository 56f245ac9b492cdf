/* common/arena.c: the per-call pool — alignment, growth, the byte cap, reset
 * (and what ldr_arena_keep lets it keep) and destroy, and the cleanups that
 * run at reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"

static void alignment_and_growth(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 64, 0);
  unsigned char *prev = NULL;
  size_t prev_n = 0;
  for (size_t n = 1; n < 5000; n += 37) {
    unsigned char *p = ldr_arena_alloc(&a, n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, n); /* ASan catches an allocation shorter than asked */
    /* No allocation overlaps the one before it. */
    if (prev != NULL) assert_true(p >= prev + prev_n || p + n <= prev);
    prev = p;
    prev_n = n;
  }
  /* Zero bytes is a valid, distinct pointer. */
  void *z1 = ldr_arena_alloc(&a, 0), *z2 = ldr_arena_alloc(&a, 0);
  assert_non_null(z1);
  assert_non_null(z2);
  assert_ptr_not_equal(z1, z2);
  ldr_arena_destroy(&a);
}

static void memdup_and_calloc(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 64, 0);
  static const struct {
    const char *bytes;
    size_t n;
  } cases[] = {{"abc", 3}, {"", 0}, {"a\0b", 3}, {"0123456789abcdef0123456789abcdef", 32}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *s = ldr_arena_memdup(&a, cases[i].bytes, cases[i].n);
    assert_non_null(s);
    assert_ptr_not_equal(s, cases[i].bytes);
    if (cases[i].n) assert_memory_equal(s, cases[i].bytes, cases[i].n);
    assert_int_equal(s[cases[i].n], '\0'); /* terminated, not counted */
  }
  unsigned char *z = ldr_arena_alloc(&a, 100);
  memset(z, 0xff, 100);
  ldr_arena_reset(&a); /* the same memory comes back: calloc must clear it */
  unsigned char *c = ldr_arena_calloc(&a, 25, 4);
  assert_non_null(c);
  for (size_t i = 0; i < 100; i++) assert_int_equal(c[i], 0);
  ldr_arena_destroy(&a);
}

static void cap_is_an_error_not_an_abort(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 1024, 4096);
  assert_non_null(ldr_arena_alloc(&a, 1000));
  assert_false(a.exhausted);
  assert_null(ldr_arena_alloc(&a, 8192));
  assert_true(a.exhausted);
  assert_true(a.held <= 4096);
  assert_null(ldr_arena_calloc(&a, SIZE_MAX / 2, 4)); /* overflow-checked */
  assert_null(ldr_arena_alloc(&a, SIZE_MAX - 8));
  assert_null(ldr_arena_memdup(&a, "x", SIZE_MAX));
  ldr_arena_reset(&a);
  assert_false(a.exhausted);
  assert_non_null(ldr_arena_alloc(&a, 3000));
  ldr_arena_destroy(&a);
}

/* The cap bounds the bytes held, whatever the sizes asked: every cap from 1
 * to 2 KiB, allocations of 1..100 bytes until one fails. */
static void cap_is_never_passed(void **state) {
  (void)state;
  for (size_t cap = 1; cap <= 2048; cap++) {
    struct ldr_arena a;
    ldr_arena_init(&a, 32, cap);
    size_t got = 0;
    for (size_t n = 1;; n = n % 100 + 1) {
      void *p = ldr_arena_alloc(&a, n);
      if (p == NULL) break;
      got += n;
      if (a.held > cap) fail_msg("cap %zu: %zu bytes held", cap, a.held);
    }
    assert_true(a.exhausted);
    assert_true(got <= cap);
    /* The blocks grow up to the cap, so a cap is not wasted: most of it was used
     * (each block loses at most one allocation's worth plus alignment). */
    if (cap >= 1024 && got < cap / 4) fail_msg("cap %zu: only %zu bytes given out", cap, got);
    ldr_arena_destroy(&a);
  }
}

static void reset_keeps_first_block(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 256, 0);
  void *first = ldr_arena_alloc(&a, 16);
  ldr_arena_alloc(&a, 10000);
  assert_true(a.held > 256);
  ldr_arena_reset(&a);
  assert_int_equal(a.held, 256);
  assert_ptr_equal(ldr_arena_alloc(&a, 16), first);
  ldr_arena_destroy(&a);
  assert_int_equal(a.held, 0);
  /* A first block grown past first_size for one large call is not kept. */
  ldr_arena_init(&a, 256, 0);
  assert_non_null(ldr_arena_alloc(&a, 5000));
  assert_true(a.held >= 5000);
  ldr_arena_reset(&a);
  assert_int_equal(a.held, 0);
  assert_non_null(ldr_arena_alloc(&a, 8));
  assert_int_equal(a.held, 256);
  ldr_arena_destroy(&a);
}

/* Allocations of 1,000 bytes (1,008 with alignment) until `n` were given out. */
static void use(struct ldr_arena *a, size_t n) {
  for (size_t i = 0; i < n; i++) memset(ldr_arena_alloc(a, 1000), 0x5a, 1000);
}

/* `times` uses of `n` allocations, each followed by a reset; what the arena then holds. */
static size_t uses(struct ldr_arena *a, size_t n, int times) {
  for (int i = 0; i < times; i++) {
    use(a, n);
    ldr_arena_reset(a);
  }
  return a->held;
}

/* With ldr_arena_keep, a reset keeps what the use took, in one block with an
 * eighth more; a use of the same size then takes no new block. 64 uses in a
 * row under a quarter of the block shrink it; a use over `keep`, and
 * ldr_arena_trim, give it back. */
static void reset_keeps_what_keep_allows(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 256, 0);
  ldr_arena_keep(&a, 100000);
  size_t used = 40 * 1008, kept = uses(&a, 40, 1);
  assert_true(kept >= used && kept <= used + used / 8);
  void *p = ldr_arena_alloc(&a, 1000);
  use(&a, 39);
  assert_int_equal(a.held, kept); /* no new block */
  ldr_arena_reset(&a);
  assert_int_equal(a.held, kept);
  assert_ptr_equal(ldr_arena_alloc(&a, 1000), p); /* the same block, from its start */
  ldr_arena_reset(&a);
  /* A third of it: still kept, not shrunk to fit. */
  assert_int_equal(uses(&a, 13, 1), kept);
  /* A use over a quarter of it grows... */
  size_t grown = uses(&a, 60, 1);
  assert_true(grown >= 60 * 1008 && grown <= 60 * 1008 + 60 * 1008 / 8);
  /* ... and 64 uses in a row under a quarter shrink it to fit, not 63; a use
   * of a quarter or more starts the count again. */
  assert_int_equal(uses(&a, 1, 63), grown);
  assert_int_equal(uses(&a, 20, 1), grown);
  assert_int_equal(uses(&a, 1, 63), grown);
  assert_int_equal(uses(&a, 1, 1), 1008 + 1008 / 8);
  /* The count starts again after a shrink: the next small use keeps the block. */
  void *shrunk = ldr_arena_alloc(&a, 8);
  ldr_arena_reset(&a);
  memset(ldr_arena_alloc(&a, 260), 0, 260);
  ldr_arena_reset(&a);
  assert_int_equal(a.held, 1008 + 1008 / 8);
  assert_ptr_equal(ldr_arena_alloc(&a, 8), shrunk);
  ldr_arena_reset(&a);
  /* A use over `keep` is not kept. */
  assert_true(uses(&a, 120, 1) <= 256);
  /* ldr_arena_trim gives the kept block back, and keeping goes on after it. */
  assert_int_equal(uses(&a, 40, 1), kept);
  ldr_arena_trim(&a);
  assert_true(a.held <= 256);
  use(&a, 40); /* and in the middle of a use too */
  ldr_arena_trim(&a);
  assert_true(a.held <= 256);
  assert_int_equal(uses(&a, 40, 1), kept);
  ldr_arena_destroy(&a);
  assert_int_equal(a.held, 0);
  /* The block kept is never larger than `keep`, eighth or not. */
  ldr_arena_init(&a, 256, 0);
  ldr_arena_keep(&a, 40 * 1008 + 100);
  assert_int_equal(uses(&a, 40, 1), 40 * 1008 + 100);
  ldr_arena_destroy(&a);
  /* The block kept at reset counts against the cap: none is taken past it. */
  ldr_arena_init(&a, 256, 30000);
  ldr_arena_keep(&a, 100000);
  assert_true(uses(&a, 28, 1) <= 30000);
  ldr_arena_destroy(&a);
}

/* Each cleanup records the order it ran in. */
static int order[4], runs;
static void note(void *arg) { order[runs++] = *(const int *)arg; }

static void cleanups_run_once_newest_first(void **state) {
  (void)state;
  static const int ids[] = {1, 2, 3, 4};
  struct ldr_arena a;
  runs = 0;
  memset(order, 0, sizeof order);
  ldr_arena_init(&a, 64, 0);
  for (size_t i = 0; i < 3; i++) assert_int_equal(ldr_arena_on_reset(&a, note, (void *)&ids[i]), 0);
  assert_int_equal(runs, 0);
  ldr_arena_reset(&a);
  assert_int_equal(runs, 3);
  static const int newest_first[] = {3, 2, 1};
  for (size_t i = 0; i < 3; i++) assert_int_equal(order[i], newest_first[i]);
  ldr_arena_reset(&a); /* a reset forgets them: they run once */
  assert_int_equal(runs, 3);
  assert_int_equal(ldr_arena_on_reset(&a, note, (void *)&ids[3]), 0);
  ldr_arena_destroy(&a); /* destroy runs them too */
  assert_int_equal(runs, 4);
  assert_int_equal(order[3], 4);
  /* A full arena refuses the cleanup: the caller keeps the resource. */
  ldr_arena_init(&a, 16, 8);
  assert_int_equal(ldr_arena_on_reset(&a, note, (void *)&ids[0]), -1);
  ldr_arena_destroy(&a);
  assert_int_equal(runs, 4);
}

static void protobuf_allocator(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 64, 0);
  void *p = ldr_arena_pb_alloc(&a, 40);
  assert_non_null(p);
  memset(p, 1, 40);
  ldr_arena_pb_free(&a, p); /* a no-op: the memory stays until the reset */
  assert_int_equal(((unsigned char *)p)[39], 1);
  ldr_arena_destroy(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(alignment_and_growth),
      cmocka_unit_test(memdup_and_calloc),
      cmocka_unit_test(cap_is_an_error_not_an_abort),
      cmocka_unit_test(cap_is_never_passed),
      cmocka_unit_test(reset_keeps_first_block),
      cmocka_unit_test(reset_keeps_what_keep_allows),
      cmocka_unit_test(cleanups_run_once_newest_first),
      cmocka_unit_test(protobuf_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
