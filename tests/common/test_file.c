/* common/file.c: whole files into memory, NUL-terminated, at every size
 * around the reader's growth steps; errors keep errno. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"

static char dir[] = "/tmp/larder-file-XXXXXX";

static void sizes(void **state) {
  (void)state;
  /* The reader starts with 64 KiB and doubles: the sizes around each step. */
  static const size_t cases[] = {0,     1,      100,    65534,  65535, 65536,
                                 65537, 131071, 131072, 131073, 300000};
  char path[256];
  snprintf(path, sizeof path, "%s/f", dir);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = cases[i];
    uint8_t *want = malloc(n + 1);
    for (size_t k = 0; k < n; k++) want[k] = (uint8_t)(k * 131 + k / 256 + 1); /* no NULs */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(want, 1, n, f), n);
    fclose(f);
    uint8_t *got = NULL;
    size_t len = 12345;
    if (ldr_read_file(path, &got, &len) != 0) fail_msg("size %zu: %s", n, strerror(errno));
    if (len != n) fail_msg("size %zu: read %zu bytes", n, len);
    if (n) assert_memory_equal(got, want, n);
    assert_int_equal(got[n], 0); /* a NUL after the bytes, not counted */
    free(got);
    free(want);
  }
  unlink(path);
}

static void errors(void **state) {
  (void)state;
  static const struct {
    const char *name; /* under dir */
    int err;
  } cases[] = {{"missing", ENOENT}, {".", EISDIR}, {"missing/x", ENOENT}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
    uint8_t *out = (uint8_t *)"untouched";
    size_t len = 7;
    errno = 0;
    assert_int_equal(ldr_read_file(path, &out, &len), -1);
    if (errno != cases[i].err)
      fail_msg("%s: errno %d (%s), want %d", cases[i].name, errno, strerror(errno), cases[i].err);
    assert_string_equal((const char *)out, "untouched");
    assert_int_equal(len, 7);
  }
}

int main(void) {
  if (mkdtemp(dir) == NULL) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sizes),
      cmocka_unit_test(errors),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(dir);
  return failed;
}
