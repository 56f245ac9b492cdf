/*
 * service/auth.c: bearer tokens from files and environment variables, with
 * the scopes of the source each came from; the Authorization header check
 * (scheme, exact token: no prefix, no longer text) and the scope check with
 * its message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"

#define R LDR_SCOPE_READ
#define W LDR_SCOPE_WRITE
#define A LDR_SCOPE_ADMIN

static char dir[] = "/tmp/larder-auth-XXXXXX";

static char *put_file(const char *name, const char *text) {
  static char path[4][256];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof path[0], "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return p;
}

/* The scopes `header` grants, or -1 when it is refused (the message in *msg). */
static int grants(const struct ldr_auth *a, const char *header, size_t len, const char **msg) {
  static struct ldr_err err;
  unsigned scopes = 12345;
  ldr_err_clear(&err);
  enum ldr_rc rc = ldr_auth_header(a, header, len, &scopes, &err);
  if (msg) *msg = err.msg;
  if (rc == LDR_OK) return (int)scopes;
  assert_int_equal(rc, LDR_UNAUTHENTICATED);
  assert_int_equal(scopes, 0);
  return -1;
}

static int grants_str(const struct ldr_auth *a, const char *header) {
  return grants(a, header, header ? strlen(header) : 0, NULL);
}

static struct ldr_auth *load(struct ldr_token_source *src, size_t n) {
  struct ldr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.token_sources = src;
  cfg.n_token_sources = n;
  struct ldr_auth *a = (struct ldr_auth *)1;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_auth_load(&cfg, &a, &err) != LDR_OK) fail_msg("load: %s", err.msg);
  assert_non_null(a);
  return a;
}

/* Files: one token per line, white space around it trimmed; '#' starts a
 * comment line. The environment: commas or white space, no comments. */
static void sources_and_separators(void **state) {
  (void)state;
  char *file = put_file("tokens", "# the readers\n"
                                  "tok-file-1\n"
                                  "  tok-file-2\t\r\n"
                                  "\n"
                                  "   # tok-commented-indented\n"
                                  "#tok-commented\n"
                                  "tok-file-3\r\n"
                                  "tok-file-5#not-a-comment");
  setenv("LARDER_TEST_TOKENS", " tok-env-1,tok-env-2  #tok-env-3\n", 1);
  struct ldr_token_source src[] = {
      {.file = file, .scopes = R},
      {.env = "LARDER_TEST_TOKENS", .scopes = R | W},
  };
  struct ldr_auth *a = load(src, 2);
  static const struct {
    const char *token;
    int scopes; /* -1: refused */
  } cases[] = {
      {"tok-file-1", R},
      {"tok-file-2", R},
      {"tok-file-3", R},
      {"tok-file-5#not-a-comment", R}, /* a '#' inside a token is part of it; no last newline */
      {"tok-commented-indented", -1},
      {"tok-file-5", -1},
      {"tok-commented", -1},
      {"#tok-commented", -1},
      {"# the readers", -1},
      {"the", -1},
      {"tok-env-1", R | W},
      {"tok-env-2", R | W},
      {"#tok-env-3", R | W}, /* no comments in a variable */
      {"tok-env-3", -1},
      {"", -1},
      {",", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char header[128];
    snprintf(header, sizeof header, "Bearer %s", cases[i].token);
    int got = grants_str(a, header);
    if (got != cases[i].scopes)
      fail_msg("token '%s': scopes %d, want %d", cases[i].token, got, cases[i].scopes);
  }
  ldr_auth_free(a);
  unsetenv("LARDER_TEST_TOKENS");
}

/* A token listed by several sources has the scopes of all of them. */
static void scopes_of_each_source(void **state) {
  (void)state;
  char *ro = put_file("ro", "reader\nshared\n");
  char *adm = put_file("adm", "admin-only\nshared\n");
  setenv("LARDER_TEST_WRITERS", "writer shared", 1);
  struct ldr_token_source src[] = {
      {.file = ro, .scopes = R},
      {.env = "LARDER_TEST_WRITERS", .scopes = W},
      {.file = adm, .env = "LARDER_TEST_WRITERS", .scopes = A}, /* both, one source */
  };
  struct ldr_auth *a = load(src, 3);
  static const struct {
    const char *token;
    int scopes;
  } cases[] = {
      {"reader", R}, {"writer", W | A}, {"admin-only", A}, {"shared", R | W | A}, {"nobody", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char header[64];
    snprintf(header, sizeof header, "Bearer %s", cases[i].token);
    int got = grants_str(a, header);
    if (got != cases[i].scopes)
      fail_msg("token '%s': scopes %d, want %d", cases[i].token, got, cases[i].scopes);
  }
  ldr_auth_free(a);
  unsetenv("LARDER_TEST_WRITERS");
}

static void load_errors(void **state) {
  (void)state;
  char *empty = put_file("empty", "# only a comment\n\n  \n");
  /* Words of one line are not split into tokens: "horse" alone must grant nothing. */
  char *phrase = put_file("phrase", "good-token\n\ncorrect horse battery staple\n");
  char *commas = put_file("commas", "tok-a,tok-b\n");
  char missing[300];
  snprintf(missing, sizeof missing, "%s/missing", dir);
  unsetenv("LARDER_TEST_UNSET");
  setenv("LARDER_TEST_BLANK", " , ", 1);
  static const struct {
    int file; /* 0 none, 1 empty, 2 missing, 3 a phrase, 4 commas */
    const char *env;
    const char *msg;
  } cases[] = {
      {1, NULL, "larder.auth: no tokens found"},
      {3, NULL, "/phrase line 3: one token per line, and a token holds no white space or comma"},
      {4, NULL, "/commas line 1: one token per line"},
      {0, "LARDER_TEST_BLANK", "larder.auth: no tokens found"},
      {0, "LARDER_TEST_UNSET", "larder.auth (source 0): $LARDER_TEST_UNSET is not set"},
      {2, NULL, "/missing: No such file or directory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_token_source src = {.env = (char *)cases[i].env, .scopes = R};
    char *files[] = {NULL, empty, missing, phrase, commas};
    src.file = files[cases[i].file];
    struct ldr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.token_sources = &src;
    cfg.n_token_sources = 1;
    struct ldr_auth *a = (struct ldr_auth *)1;
    struct ldr_err err;
    ldr_err_clear(&err);
    assert_int_equal(ldr_auth_load(&cfg, &a, &err), LDR_INVALID);
    assert_null(a);
    if (strstr(err.msg, cases[i].msg) == NULL)
      fail_msg("case %zu: '%s', want '%s'", i, err.msg, cases[i].msg);
  }
  /* No sources: auth is off, and that is no error. */
  struct ldr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  struct ldr_auth *a = (struct ldr_auth *)1;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_auth_load(&cfg, &a, &err), LDR_OK);
  assert_null(a);
  ldr_auth_free(NULL);
  unsetenv("LARDER_TEST_BLANK");
}

/* The header: "Bearer" in any case, one space, then exactly a token. */
static void header_check(void **state) {
  (void)state;
  char *file = put_file("hdr", "s3cret-token\nother\n");
  struct ldr_token_source src = {.file = file, .scopes = R | W};
  struct ldr_auth *a = load(&src, 1);
  static const struct {
    const char *header; /* NULL: no header */
    int scopes;
    const char *msg;
  } cases[] = {
      {"Bearer s3cret-token", R | W, ""},
      {"bearer s3cret-token", R | W, ""},
      {"BEARER other", R | W, ""},
      {"BeArEr other", R | W, ""},
      {NULL, -1, "authorization: a bearer token is required (authorization: Bearer ...)"},
      {"", -1, "authorization: expected 'Bearer <token>'"},
      {"Basic s3cret-token", -1, "authorization: expected 'Bearer <token>'"},
      {"Bearer", -1, "authorization: expected 'Bearer <token>'"},
      {"Bearers3cret-token", -1, "authorization: expected 'Bearer <token>'"},
      {"s3cret-token", -1, "authorization: expected 'Bearer <token>'"},
      {"Bearer ", -1, "authorization: the token is not valid"},
      {"Bearer unknown", -1, "authorization: the token is not valid"},
      {"Bearer s3cret", -1, "authorization: the token is not valid"},        /* a prefix */
      {"Bearer s3cret-token2", -1, "authorization: the token is not valid"}, /* longer */
      {"Bearer s3cret-tokens3cret-token", -1, "authorization: the token is not valid"},
      {"Bearer  s3cret-token", -1, "authorization: the token is not valid"}, /* two spaces */
      {"Bearer s3cret-tokeN", -1, "authorization: the token is not valid"},  /* case counts */
      {"Bearer S3cret-token", -1, "authorization: the token is not valid"},
      {"Bearer otherother", -1, "authorization: the token is not valid"},
      {"Bearer othe", -1, "authorization: the token is not valid"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *msg = NULL;
    const char *h = cases[i].header;
    int got = grants(a, h, h ? strlen(h) : 0, &msg);
    if (got != cases[i].scopes) fail_msg("'%s': scopes %d, want %d", h, got, cases[i].scopes);
    assert_string_equal(msg, cases[i].msg);
  }
  /* Only `len` bytes count: the value need not be NUL-terminated where it ends. */
  static const char longer[] = "Bearer s3cret-token-and-more";
  assert_int_equal(grants(a, longer, strlen("Bearer s3cret-token"), NULL), R | W);
  assert_int_equal(grants(a, longer, strlen("Bearer s3cret"), NULL), -1);
  ldr_auth_free(a);
}

/* Every combination of granted scopes against each scope a method needs. */
static void allow_every_combination(void **state) {
  (void)state;
  static const struct {
    unsigned scope;
    const char *name;
  } needs[] = {{R, "read"}, {W, "write"}, {A, "admin"}};
  for (unsigned granted = 0; granted < 8; granted++)
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++) {
      struct ldr_err err;
      ldr_err_clear(&err);
      enum ldr_rc rc = ldr_auth_allow(granted, needs[i].scope, "OnlineWriteBatch", &err);
      if (granted & needs[i].scope) {
        if (rc != LDR_OK) fail_msg("granted %u, needs %s: %s", granted, needs[i].name, err.msg);
        assert_string_equal(err.msg, "");
        continue;
      }
      assert_int_equal(rc, LDR_DENIED);
      char want[200];
      snprintf(want, sizeof want,
               "authorization: OnlineWriteBatch needs the '%s' scope, which these credentials do "
               "not grant",
               needs[i].name);
      assert_string_equal(err.msg, want);
    }
  /* Needing several: every one must be granted; the message names one that is missing. */
  static const struct {
    unsigned granted, needed;
    const char *missing; /* NULL: allowed */
  } multi[] = {
      {R | W, R | W, NULL},   {R | W | A, R | W | A, NULL}, {R, R | W, "write"}, {W, R | W, "read"},
      {0, R | W | A, "read"}, {R | W, R | A, "admin"},      {A, W | A, "write"}, {R, 0, NULL},
  };
  for (size_t i = 0; i < sizeof multi / sizeof multi[0]; i++) {
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_auth_allow(multi[i].granted, multi[i].needed, "Update", &err);
    if (multi[i].missing == NULL) {
      assert_int_equal(rc, LDR_OK);
      continue;
    }
    assert_int_equal(rc, LDR_DENIED);
    char want[64];
    snprintf(want, sizeof want, "'%s' scope", multi[i].missing);
    if (strstr(err.msg, want) == NULL) fail_msg("case %zu: '%s', want %s", i, err.msg, want);
  }
}

int main(void) {
  if (mkdtemp(dir) == NULL) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sources_and_separators),
      cmocka_unit_test(scopes_of_each_source),
      cmocka_unit_test(load_errors),
      cmocka_unit_test(header_check),
      cmocka_unit_test(allow_every_combination),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) failed++;
  return failed;
}
