/* common/strbuf.c: the growable string — appends of every kind, growth past
 * its first block, repeat lists, and the failed state that sticks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/strbuf.h"

static void empty_is_valid(void **state) {
  (void)state;
  struct ldr_sb sb = {0};
  assert_string_equal(ldr_sb_str(&sb), "");
  assert_int_equal(sb.len, 0);
  ldr_sb_put(&sb, "", 0);
  assert_string_equal(ldr_sb_str(&sb), "");
  ldr_sb_free(&sb);
  ldr_sb_free(&sb); /* twice is harmless */
  assert_null(sb.p);
}

static void appends(void **state) {
  (void)state;
  struct ldr_sb sb = {0};
  ldr_sb_puts(&sb, "SELECT ");
  ldr_sb_put(&sb, "a, b, c", 4); /* only n bytes */
  ldr_sb_printf(&sb, " FROM \"%s_%s\" WHERE k = %d", "proj", "view", -42);
  ldr_sb_puts(&sb, "");
  assert_string_equal(ldr_sb_str(&sb), "SELECT a, b FROM \"proj_view\" WHERE k = -42");
  assert_int_equal(sb.len, strlen(ldr_sb_str(&sb)));
  ldr_sb_free(&sb);
  assert_int_equal(sb.len, 0);
  assert_int_equal(sb.cap, 0);
}

static void repeat_lists(void **state) {
  (void)state;
  static const struct {
    size_t n;
    const char *item, *sep, *want;
  } cases[] = {
      {0, "?", ", ", ""},        {1, "?", ", ", "?"},
      {3, "?", ", ", "?, ?, ?"}, {4, "($1,$2)", ",", "($1,$2),($1,$2),($1,$2),($1,$2)"},
      {2, "x", "", "xx"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_sb sb = {0};
    ldr_sb_puts(&sb, "[");
    ldr_sb_repeat(&sb, cases[i].n, cases[i].item, cases[i].sep);
    ldr_sb_puts(&sb, "]");
    char want[128];
    snprintf(want, sizeof want, "[%s]", cases[i].want);
    assert_string_equal(ldr_sb_str(&sb), want);
    assert_int_equal(sb.len, strlen(want));
    ldr_sb_free(&sb);
  }
}

/* Appends of many sizes across the growth steps: the text is what was appended. */
static void growth(void **state) {
  (void)state;
  struct ldr_sb sb = {0};
  char *model = calloc(1, 200000);
  size_t len = 0;
  for (size_t step = 0; len < 150000; step++) {
    char piece[700];
    size_t n = (step * 37) % sizeof piece;
    for (size_t k = 0; k < n; k++) piece[k] = (char)('a' + (step + k) % 26);
    if (step % 3 == 0) {
      ldr_sb_put(&sb, piece, n);
    } else {
      piece[n] = '\0';
      ldr_sb_printf(&sb, "%s", piece);
    }
    memcpy(model + len, piece, n);
    len += n;
    assert_int_equal(sb.len, len);
    assert_true(sb.cap > sb.len); /* room for the NUL */
    assert_int_equal(sb.p[sb.len], '\0');
  }
  assert_memory_equal(ldr_sb_str(&sb), model, len);
  free(model);
  ldr_sb_free(&sb);
}

/* A size no buffer can reach fails the buffer; it stays failed until freed. */
static void failure_sticks(void **state) {
  (void)state;
  struct ldr_sb sb = {0};
  ldr_sb_puts(&sb, "start");
  ldr_sb_put(&sb, "x", SIZE_MAX / 2 + 1);
  assert_true(sb.failed);
  assert_null(ldr_sb_str(&sb));
  ldr_sb_puts(&sb, "more");
  ldr_sb_printf(&sb, "%d", 1);
  ldr_sb_repeat(&sb, 3, "?", ",");
  assert_null(ldr_sb_str(&sb));
  assert_int_equal(sb.len, 5); /* nothing was appended after the failure */
  ldr_sb_free(&sb);
  assert_false(sb.failed);
  ldr_sb_puts(&sb, "again");
  assert_string_equal(ldr_sb_str(&sb), "again");
  ldr_sb_free(&sb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_is_valid), cmocka_unit_test(appends),
      cmocka_unit_test(repeat_lists),   cmocka_unit_test(growth),
      cmocka_unit_test(failure_sticks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
