/* common/log.c: one line per event on stderr — the text and JSON forms, the
 * level filter, newlines kept out of a line, and long messages cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/log.h"

/* Runs `fn` with stderr sent to a file and returns what it wrote (static buffer). */
static const char *captured(void (*fn)(void)) {
  static char out[16384];
  char path[] = "/tmp/larder-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  fn();
  assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  off_t n = lseek(fd, 0, SEEK_CUR);
  assert_true(n >= 0 && (size_t)n < sizeof out);
  assert_int_equal(pread(fd, out, (size_t)n, 0), n);
  out[n] = '\0';
  close(fd);
  return out;
}

/* "2024-01-02T03:04:05.678Z": the UTC time stamp every line starts with. */
static void assert_timestamp(const char *p) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < sizeof shape - 1; i++) {
    if (shape[i] == 'd') {
      if (p[i] < '0' || p[i] > '9') fail_msg("time stamp '%.24s': not a digit at %zu", p, i);
    } else if (p[i] != shape[i]) {
      fail_msg("time stamp '%.24s': want '%c' at %zu", p, shape[i], i);
    }
  }
}

static void text_lines(void) {
  ldr_log_set_json(0);
  ldr_log_set_level(LDR_LOG_INFO);
  ldr_log(LDR_LOG_DEBUG, "hidden %d", 1);
  ldr_log(LDR_LOG_INFO, "shown %d", 2);
  ldr_log(LDR_LOG_WARN, "two\nlines\rhere");
  ldr_log(LDR_LOG_ERROR, "last");
}

static void text_form_and_levels(void **state) {
  (void)state;
  const char *out = captured(text_lines);
  static const char *const want[] = {"info shown 2", "warn two lines here", "error last"};
  const char *p = out;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *nl = strchr(p, '\n');
    if (nl == NULL) fail_msg("line %zu missing in:\n%s", i, out);
    assert_timestamp(p);
    assert_int_equal(p[24], ' ');
    if ((size_t)(nl - p - 25) != strlen(want[i]) || memcmp(p + 25, want[i], strlen(want[i])))
      fail_msg("line %zu: '%.*s', want '<time> %s'", i, (int)(nl - p), p, want[i]);
    p = nl + 1;
  }
  assert_string_equal(p, ""); /* nothing else: the debug line was not written */
}

static void json_lines(void) {
  ldr_log_set_json(1);
  ldr_log_set_level(LDR_LOG_DEBUG);
  ldr_log(LDR_LOG_DEBUG, "quote \" backslash \\ tab \t newline \n bell \a end");
  ldr_log(LDR_LOG_WARN, "plain");
  ldr_log_set_json(0);
  ldr_log_set_level(LDR_LOG_INFO);
}

static void json_form_escapes(void **state) {
  (void)state;
  const char *out = captured(json_lines);
  static const struct {
    const char *level, *msg;
  } want[] = {
      {"debug", "quote \" backslash \\ tab \t newline \n bell \a end"},
      {"warn", "plain"},
  };
  const char *p = out;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    char line[2048];
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    json_object *o = json_tokener_parse(line);
    if (o == NULL) fail_msg("line %zu is not JSON: %s", i, line);
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, "time", &v));
    assert_timestamp(json_object_get_string(v));
    assert_true(json_object_object_get_ex(o, "level", &v));
    assert_string_equal(json_object_get_string(v), want[i].level);
    assert_true(json_object_object_get_ex(o, "msg", &v));
    assert_string_equal(json_object_get_string(v), want[i].msg);
    assert_int_equal(json_object_object_length(o), 3);
    json_object_put(o);
    p = nl + 1;
  }
  assert_string_equal(p, "");
}

static void long_lines(void) {
  char big[5000];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ldr_log(LDR_LOG_ERROR, "%s", big);
  ldr_log_set_json(1);
  memset(big, '"', sizeof big - 1); /* every character doubles when escaped */
  ldr_log(LDR_LOG_ERROR, "%s", big);
  ldr_log_set_json(0);
}

/* Long messages are cut, yet each is one line and the JSON one still parses. */
static void long_messages_stay_one_line(void **state) {
  (void)state;
  const char *out = captured(long_lines);
  const char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_true(nl - out < 2048);
  assert_int_equal(nl[-1], 'm');
  const char *second = nl + 1;
  nl = strchr(second, '\n');
  assert_non_null(nl);
  assert_string_equal(nl + 1, "");
  char line[4096];
  memcpy(line, second, (size_t)(nl - second));
  line[nl - second] = '\0';
  json_object *o = json_tokener_parse(line);
  if (o == NULL) fail_msg("a cut JSON line does not parse: %.80s...", line);
  json_object_put(o);
}

static void enabled_follows_the_level(void **state) {
  (void)state;
  static const struct {
    enum ldr_log_level min, level;
    int on;
  } cases[] = {
      {LDR_LOG_INFO, LDR_LOG_DEBUG, 0},  {LDR_LOG_INFO, LDR_LOG_INFO, 1},
      {LDR_LOG_INFO, LDR_LOG_ERROR, 1},  {LDR_LOG_ERROR, LDR_LOG_WARN, 0},
      {LDR_LOG_DEBUG, LDR_LOG_DEBUG, 1}, {LDR_LOG_WARN, LDR_LOG_WARN, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ldr_log_set_level(cases[i].min);
    assert_int_equal(ldr_log_enabled(cases[i].level) != 0, cases[i].on);
  }
  ldr_log_set_level(LDR_LOG_INFO);
}

/* A line a second at most, with how many were held back since the last. */
static void limited_to_a_line_a_second(void **state) {
  (void)state;
  struct ldr_log_limit l = {0};
  unsigned long long held = 99;
  const long long s = 1000000000;
  assert_int_equal(ldr_log_allow(&l, 5 * s, &held), 1); /* the first line passes */
  assert_int_equal(held, 0);
  for (int i = 0; i < 7; i++) assert_int_equal(ldr_log_allow(&l, 5 * s + i * (s / 8), &held), 0);
  assert_int_equal(ldr_log_allow(&l, 6 * s - 1, &held), 0);
  assert_int_equal(ldr_log_allow(&l, 6 * s, &held), 1); /* a second after the last line */
  assert_int_equal(held, 8);
  assert_int_equal(ldr_log_allow(&l, 6 * s + 1, &held), 0);
  assert_int_equal(ldr_log_allow(&l, 9 * s, &held), 1);
  assert_int_equal(held, 1); /* the count starts again at each line */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(text_form_and_levels),        cmocka_unit_test(json_form_escapes),
      cmocka_unit_test(long_messages_stay_one_line), cmocka_unit_test(enabled_follows_the_level),
      cmocka_unit_test(limited_to_a_line_a_second),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
