/* The error record (first error wins, prefixes) and the per-call arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/rc.h"

static void first_error_wins(void **state) {
  (void)state;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(err.rc, LDR_OK);
  assert_int_equal(ldr_err_set(&err, LDR_INVALID, "rows[%d].event_ts: required", 3), LDR_INVALID);
  assert_int_equal(ldr_err_set(&err, LDR_INTERNAL, "later"), LDR_INVALID);
  assert_string_equal(err.msg, "rows[3].event_ts: required");
  ldr_err_prefix(&err, "outer%s", ".");
  assert_string_equal(err.msg, "outer.rows[3].event_ts: required");
}

static void prefix_never_overflows(void **state) {
  (void)state;
  struct ldr_err err;
  ldr_err_clear(&err);
  char long_msg[300];
  memset(long_msg, 'x', sizeof long_msg - 1);
  long_msg[sizeof long_msg - 1] = '\0';
  ldr_err_set(&err, LDR_INVALID, "%s", long_msg);
  ldr_err_prefix(&err, "p.");
  assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
  assert_memory_equal(err.msg, "p.xx", 4);
}

static void status_mapping(void **state) {
  (void)state;
  static const struct {
    enum ldr_rc rc;
    int status;
  } cases[] = {{LDR_OK, 0},           {LDR_INVALID, 3},  {LDR_NOT_FOUND, 5},
               {LDR_EXHAUSTED, 8},    {LDR_DENIED, 7},   {LDR_UNAUTHENTICATED, 16},
               {LDR_UNAVAILABLE, 14}, {LDR_DEADLINE, 4}, {LDR_UNIMPLEMENTED, 12},
               {LDR_INTERNAL, 13}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(ldr_rc_grpc_status(cases[i].rc), cases[i].status);
  assert_string_equal(ldr_rc_str(LDR_NOT_FOUND), "not found");
}

static void arena_alignment_and_growth(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 64, 0);
  for (size_t n = 1; n < 5000; n += 37) {
    unsigned char *p = ldr_arena_alloc(&a, n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, n); /* ASan catches an allocation shorter than asked */
  }
  char *s = ldr_arena_memdup(&a, "abc", 3);
  assert_string_equal(s, "abc");
  ldr_arena_destroy(&a);
}

static void arena_cap_is_an_error_not_an_abort(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 1024, 4096);
  assert_non_null(ldr_arena_alloc(&a, 1000));
  assert_null(ldr_arena_alloc(&a, 8192));
  assert_true(a.exhausted);
  assert_null(ldr_arena_calloc(&a, SIZE_MAX / 2, 4)); /* overflow-checked */
  ldr_arena_reset(&a);
  assert_false(a.exhausted);
  assert_non_null(ldr_arena_alloc(&a, 3000));
  ldr_arena_destroy(&a);
}

static void arena_reset_keeps_first_block(void **state) {
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
}

static int cleaned[3];
static void note(void *arg) { cleaned[(int *)arg - cleaned] += 1; }

static void arena_cleanups_run_once_newest_first(void **state) {
  (void)state;
  struct ldr_arena a;
  ldr_arena_init(&a, 64, 0);
  assert_int_equal(ldr_arena_on_reset(&a, note, &cleaned[0]), 0);
  assert_int_equal(ldr_arena_on_reset(&a, note, &cleaned[1]), 0);
  assert_int_equal(cleaned[0] + cleaned[1], 0);
  ldr_arena_reset(&a);
  assert_int_equal(cleaned[0], 1);
  assert_int_equal(cleaned[1], 1);
  ldr_arena_reset(&a); /* a reset forgets them: they run once */
  assert_int_equal(cleaned[0], 1);
  assert_int_equal(ldr_arena_on_reset(&a, note, &cleaned[2]), 0);
  ldr_arena_destroy(&a);
  assert_int_equal(cleaned[2], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_error_wins),
      cmocka_unit_test(prefix_never_overflows),
      cmocka_unit_test(status_mapping),
      cmocka_unit_test(arena_alignment_and_growth),
      cmocka_unit_test(arena_cap_is_an_error_not_an_abort),
      cmocka_unit_test(arena_reset_keeps_first_block),
      cmocka_unit_test(arena_cleanups_run_once_newest_first),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
