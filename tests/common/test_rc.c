/* common/rc.c: the result codes' gRPC statuses and names, and the error
 * record (the first error wins, prefixes never overflow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <grpc/status.h>

#include "common/rc.h"

/*
 * Every code of LDR_RC_TABLE with the status gRPC's own header gives it and
 * its name, written out here rather than taken from the table, so a wrong
 * column in the table fails. The table's codes are counted below: a code
 * appended to it without a line here fails too.
 */
static const struct {
  enum ldr_rc rc;
  const char *enum_name; /* the X-macro's first column */
  grpc_status_code status;
  const char *text;
} codes[] = {
    {LDR_OK, "OK", GRPC_STATUS_OK, "ok"},
    {LDR_INVALID, "INVALID", GRPC_STATUS_INVALID_ARGUMENT, "invalid argument"},
    {LDR_NOT_FOUND, "NOT_FOUND", GRPC_STATUS_NOT_FOUND, "not found"},
    {LDR_EXHAUSTED, "EXHAUSTED", GRPC_STATUS_RESOURCE_EXHAUSTED, "resource exhausted"},
    {LDR_DENIED, "DENIED", GRPC_STATUS_PERMISSION_DENIED, "permission denied"},
    {LDR_UNAUTHENTICATED, "UNAUTHENTICATED", GRPC_STATUS_UNAUTHENTICATED, "unauthenticated"},
    {LDR_UNAVAILABLE, "UNAVAILABLE", GRPC_STATUS_UNAVAILABLE, "unavailable"},
    {LDR_DEADLINE, "DEADLINE", GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded"},
    {LDR_UNIMPLEMENTED, "UNIMPLEMENTED", GRPC_STATUS_UNIMPLEMENTED, "unimplemented"},
    {LDR_INTERNAL, "INTERNAL", GRPC_STATUS_INTERNAL, "internal error"},
    {LDR_NOMEM, "NOMEM", GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory"},
    {LDR_FAILED_PRECONDITION, "FAILED_PRECONDITION", GRPC_STATUS_FAILED_PRECONDITION,
     "failed precondition"},
};
#define N_CODES (sizeof codes / sizeof codes[0])

/* The table as the header has it: enum value, name, status, text. */
static const struct {
  enum ldr_rc rc;
  const char *enum_name;
  int status;
  const char *text;
} table[] = {
#define ROW(name, status, text) {LDR_##name, #name, status, text},
    LDR_RC_TABLE(ROW)
#undef ROW
};
#define N_TABLE (sizeof table / sizeof table[0])

static void status_mapping(void **state) {
  (void)state;
  assert_int_equal(N_TABLE, N_CODES);
  for (size_t i = 0; i < N_TABLE; i++) {
    /* Codes are only appended: each keeps its place. */
    assert_int_equal(table[i].rc, i);
    assert_int_equal(codes[i].rc, i);
    assert_string_equal(table[i].enum_name, codes[i].enum_name);
    if (ldr_rc_grpc_status(codes[i].rc) != (int)codes[i].status)
      fail_msg("%s: gRPC status %d, want %d", codes[i].enum_name, ldr_rc_grpc_status(codes[i].rc),
               (int)codes[i].status);
    assert_int_equal(table[i].status, codes[i].status);
    assert_string_equal(ldr_rc_str(codes[i].rc), codes[i].text);
  }
  /* Outside the table: a name that says so, and INTERNAL rather than a read past its end. */
  static const int outside[] = {(int)N_TABLE, (int)N_TABLE + 1, 1000, -1};
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
    assert_string_equal(ldr_rc_str((enum ldr_rc)outside[i]), "unknown");
    assert_int_equal(ldr_rc_grpc_status((enum ldr_rc)outside[i]), GRPC_STATUS_INTERNAL);
  }
}

static void first_error_wins(void **state) {
  (void)state;
  struct ldr_err err;
  memset(&err, 0x55, sizeof err);
  ldr_err_clear(&err);
  assert_int_equal(err.rc, LDR_OK);
  assert_string_equal(err.msg, "");
  assert_int_equal(ldr_err_set(&err, LDR_INVALID, "rows[%d].event_ts: required", 3), LDR_INVALID);
  assert_int_equal(err.rc, LDR_INVALID);
  assert_int_equal(ldr_err_set(&err, LDR_INTERNAL, "later"), LDR_INVALID);
  assert_int_equal(err.rc, LDR_INVALID);
  assert_string_equal(err.msg, "rows[3].event_ts: required");
  ldr_err_prefix(&err, "outer%s", ".");
  assert_string_equal(err.msg, "outer.rows[3].event_ts: required");
  /* Clearing lets the next error in. */
  ldr_err_clear(&err);
  assert_int_equal(ldr_err_set(&err, LDR_NOT_FOUND, "x"), LDR_NOT_FOUND);
  assert_string_equal(err.msg, "x");
}

/* A message longer than the record is cut, never overrun. */
static void long_messages_are_cut(void **state) {
  (void)state;
  struct ldr_err err;
  char long_msg[600];
  memset(long_msg, 'y', sizeof long_msg - 1);
  long_msg[sizeof long_msg - 1] = '\0';
  ldr_err_clear(&err);
  ldr_err_set(&err, LDR_INVALID, "%s", long_msg);
  assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

static void prefix_never_overflows(void **state) {
  (void)state;
  static const struct {
    size_t msg_len; /* of 'x's */
    const char *prefix;
    size_t want_len;
  } cases[] = {
      {300, "p.", 255},                             /* already full: the end of the message goes */
      {253, "p.", 255},                             /* just fits */
      {254, "p.", 255},                             /* one over */
      {10, "p.", 12},   {0, "p.", 2}, {10, "", 10}, /* an empty prefix changes nothing */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_err err;
    char msg[400];
    memset(msg, 'x', cases[i].msg_len);
    msg[cases[i].msg_len] = '\0';
    ldr_err_clear(&err);
    ldr_err_set(&err, LDR_INVALID, "%s", msg);
    ldr_err_prefix(&err, "%s", cases[i].prefix);
    if (strlen(err.msg) != cases[i].want_len)
      fail_msg("case %zu: length %zu, want %zu", i, strlen(err.msg), cases[i].want_len);
    size_t pl = strlen(cases[i].prefix);
    assert_memory_equal(err.msg, cases[i].prefix, pl);
    for (size_t k = pl; k < cases[i].want_len; k++) assert_int_equal(err.msg[k], 'x');
  }
  /* A prefix longer than the prefix buffer is cut to 127 bytes; the message stays. */
  struct ldr_err err;
  char huge[300];
  memset(huge, 'h', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  ldr_err_clear(&err);
  ldr_err_set(&err, LDR_INVALID, "kept");
  ldr_err_prefix(&err, "%s", huge);
  assert_int_equal(strlen(err.msg), 127 + 4);
  assert_string_equal(err.msg + 127, "kept");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(status_mapping),
      cmocka_unit_test(first_error_wins),
      cmocka_unit_test(long_messages_are_cut),
      cmocka_unit_test(prefix_never_overflows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
