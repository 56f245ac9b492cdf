/*
 * Bearer tokens and their scopes (larder.auth). Tokens are compared in time
 * that depends on the length of what the client sent and the number of
 * tokens, never on how much of a token matched; they are never logged. The
 * check takes the value of an Authorization header, so gRPC metadata and
 * HTTP headers go through the same code.
 */
#include "auth/auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/file.h"

struct token {
  char *text;
  size_t len;
  unsigned scopes;
};

struct ldr_auth {
  size_t n;
  struct token *tokens;
};

static int add_token(struct ldr_auth *a, const char *p, size_t len, unsigned scopes) {
  struct token *t = realloc(a->tokens, (a->n + 1) * sizeof *t);
  if (t == NULL) return -1;
  a->tokens = t;
  t[a->n].text = malloc(len + 1);
  if (t[a->n].text == NULL) return -1;
  memcpy(t[a->n].text, p, len);
  t[a->n].text[len] = '\0';
  t[a->n].len = len;
  t[a->n].scopes = scopes;
  a->n++;
  return 0;
}

/* Adds the tokens of a variable: separated by white space or commas. */
static int add_tokens(struct ldr_auth *a, const char *text, unsigned scopes) {
  const char *p = text;
  while (*p) {
    while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
    const char *start = p;
    while (*p && !isspace((unsigned char)*p) && *p != ',') p++;
    if (p > start && add_token(a, start, (size_t)(p - start), scopes) != 0) return -1;
  }
  return 0;
}

/* Adds the tokens of a file: one per line, white space around it trimmed,
 * blank lines and lines starting with '#' skipped. A line holding white space
 * or a comma inside is refused rather than split: "correct horse battery"
 * would otherwise grant "horse" alone. */
static enum ldr_rc add_file_tokens(struct ldr_auth *a, const char *text, size_t len,
                                   const char *file, unsigned scopes, struct ldr_err *err) {
  size_t line = 0;
  for (const char *p = text, *end = text + len; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    line++;
    const char *s = p, *e = eol;
    p = eol < end ? eol + 1 : end;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if (s == e || *s == '#') continue;
    for (const char *q = s; q < e; q++)
      if (isspace((unsigned char)*q) || *q == ',' || *q == '\0')
        return ldr_err_set(err, LDR_INVALID,
                           "larder.auth: %s line %zu: one token per line, and a token holds no "
                           "white space or comma",
                           file, line);
    if (add_token(a, s, (size_t)(e - s), scopes) != 0)
      return ldr_err_set(err, LDR_NOMEM, "larder.auth: out of memory");
  }
  return LDR_OK;
}

void ldr_auth_free(struct ldr_auth *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) {
    /* Secrets do not outlive their use in freed memory. */
    memset(a->tokens[i].text, 0, a->tokens[i].len);
    free(a->tokens[i].text);
  }
  free(a->tokens);
  free(a);
}

static enum ldr_rc load_source(struct ldr_auth *a, const struct ldr_token_source *s, size_t i,
                               struct ldr_err *err) {
  if (s->file != NULL) {
    uint8_t *text = NULL;
    size_t len = 0;
    if (ldr_read_file(s->file, &text, &len) != 0)
      return ldr_err_set(err, errno == ENOMEM ? LDR_NOMEM : LDR_INVALID, "larder.auth: %s: %s",
                         s->file, strerror(errno));
    enum ldr_rc rc = add_file_tokens(a, (const char *)text, len, s->file, s->scopes, err);
    memset(text, 0, len);
    free(text);
    if (rc != LDR_OK) return rc;
  }
  if (s->env != NULL) {
    const char *v = getenv(s->env);
    if (v == NULL)
      return ldr_err_set(err, LDR_INVALID, "larder.auth (source %zu): $%s is not set", i, s->env);
    if (add_tokens(a, v, s->scopes) != 0)
      return ldr_err_set(err, LDR_NOMEM, "larder.auth: out of memory");
  }
  return LDR_OK;
}

enum ldr_rc ldr_auth_load(const struct ldr_config *cfg, struct ldr_auth **out,
                          struct ldr_err *err) {
  *out = NULL;
  if (cfg->n_token_sources == 0) return LDR_OK;
  struct ldr_auth *a = calloc(1, sizeof *a);
  if (a == NULL) return ldr_err_set(err, LDR_NOMEM, "larder.auth: out of memory");
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < cfg->n_token_sources; i++)
    rc = load_source(a, &cfg->token_sources[i], i, err);
  if (rc == LDR_OK && a->n == 0) rc = ldr_err_set(err, LDR_INVALID, "larder.auth: no tokens found");
  if (rc != LDR_OK) {
    ldr_auth_free(a);
    return rc;
  }
  *out = a;
  return LDR_OK;
}

/* 1 when given[0..glen) equals the token, in time that depends on glen only. */
static int same(const char *given, size_t glen, const struct token *t) {
  unsigned diff = glen != t->len;
  for (size_t i = 0; i < glen; i++)
    diff |= (unsigned char)given[i] ^ (unsigned char)t->text[i % t->len];
  return diff == 0;
}

enum ldr_rc ldr_auth_header(const struct ldr_auth *a, const char *value, size_t len,
                            unsigned *scopes, struct ldr_err *err) {
  static const char prefix[] = "Bearer ";
  *scopes = 0;
  if (value == NULL)
    return ldr_err_set(err, LDR_UNAUTHENTICATED,
                       "authorization: a bearer token is required (authorization: Bearer ...)");
  if (len < sizeof prefix - 1 || strncasecmp(value, prefix, sizeof prefix - 1) != 0)
    return ldr_err_set(err, LDR_UNAUTHENTICATED, "authorization: expected 'Bearer <token>'");
  value += sizeof prefix - 1;
  len -= sizeof prefix - 1;
  /* Every token is compared, so the time taken does not say which matched. */
  unsigned granted = 0;
  int ok = 0;
  for (size_t i = 0; i < a->n; i++) {
    int hit = same(value, len, &a->tokens[i]);
    ok |= hit;
    granted |= hit ? a->tokens[i].scopes : 0;
  }
  if (!ok) return ldr_err_set(err, LDR_UNAUTHENTICATED, "authorization: the token is not valid");
  *scopes = granted;
  return LDR_OK;
}

static const char *scope_name(unsigned scope) {
  return scope == LDR_SCOPE_ADMIN ? "admin" : scope == LDR_SCOPE_WRITE ? "write" : "read";
}

enum ldr_rc ldr_auth_allow(unsigned granted, unsigned needed, const char *what,
                           struct ldr_err *err) {
  if ((granted & needed) == needed) return LDR_OK;
  return ldr_err_set(err, LDR_DENIED,
                     "authorization: %s needs the '%s' scope, which these credentials do not grant",
                     what, scope_name(needed & ~granted & (0u - (needed & ~granted))));
}
