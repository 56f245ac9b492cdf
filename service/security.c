/*
 * Transport security and bearer tokens. TLS credentials come from PEM files;
 * a client CA turns on mutual TLS. Tokens are compared in time that depends
 * on the length of what the client sent and the number of tokens, never on
 * how much of a token matched; they are never logged.
 */
#include <ctype.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "service/service_int.h"

struct ldr_auth {
  size_t n;
  char **tokens;
  size_t *lens;
};

static int add_token(struct ldr_auth *a, const char *p, size_t len) {
  char **t = realloc(a->tokens, (a->n + 1) * sizeof *t);
  if (t == NULL) return -1;
  a->tokens = t;
  size_t *l = realloc(a->lens, (a->n + 1) * sizeof *l);
  if (l == NULL) return -1;
  a->lens = l;
  a->tokens[a->n] = malloc(len + 1);
  if (a->tokens[a->n] == NULL) return -1;
  memcpy(a->tokens[a->n], p, len);
  a->tokens[a->n][len] = '\0';
  a->lens[a->n++] = len;
  return 0;
}

/* Adds the tokens of `text`: separated by white space or commas; in a file,
 * a line starting with '#' is a comment. */
static int add_tokens(struct ldr_auth *a, const char *text, int comments) {
  const char *p = text;
  while (*p) {
    while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
    if (comments && *p == '#') {
      while (*p && *p != '\n') p++;
      continue;
    }
    const char *start = p;
    while (*p && !isspace((unsigned char)*p) && *p != ',') p++;
    if (p > start && add_token(a, start, (size_t)(p - start)) != 0) return -1;
  }
  return 0;
}

void ldr_auth_free(struct ldr_auth *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) {
    /* Secrets do not outlive their use in freed memory. */
    memset(a->tokens[i], 0, a->lens[i]);
    free(a->tokens[i]);
  }
  free(a->tokens);
  free(a->lens);
  free(a);
}

/* The text of a file, or NULL with `err` saying why. */
static char *read_all(const char *path, struct ldr_err *err, const char *what) {
  uint8_t *text;
  size_t len;
  if (ldr_read_file(path, &text, &len) != 0) {
    ldr_err_set(err, errno == ENOMEM ? LDR_NOMEM : LDR_INVALID, "%s %s: %s", what, path,
                strerror(errno));
    return NULL;
  }
  return (char *)text;
}

enum ldr_rc ldr_auth_load(const struct ldr_config *cfg, struct ldr_auth **out,
                          struct ldr_err *err) {
  *out = NULL;
  if (cfg->auth_tokens_file == NULL && cfg->auth_tokens_env == NULL) return LDR_OK;
  struct ldr_auth *a = calloc(1, sizeof *a);
  if (a == NULL) return ldr_err_set(err, LDR_NOMEM, "auth: out of memory");
  if (cfg->auth_tokens_file != NULL) {
    char *text = read_all(cfg->auth_tokens_file, err, "larder.auth.tokens_file");
    if (text == NULL) { /* err says why */
      enum ldr_rc rc = err->rc;
      ldr_auth_free(a);
      return rc;
    }
    int bad = add_tokens(a, text, 1) != 0;
    memset(text, 0, strlen(text));
    free(text);
    if (bad) {
      ldr_auth_free(a);
      return ldr_err_set(err, LDR_NOMEM, "auth: out of memory");
    }
  }
  if (cfg->auth_tokens_env != NULL) {
    const char *v = getenv(cfg->auth_tokens_env);
    if (v == NULL) {
      ldr_auth_free(a);
      return ldr_err_set(err, LDR_INVALID, "larder.auth.tokens_env: $%s is not set",
                         cfg->auth_tokens_env);
    }
    if (add_tokens(a, v, 0) != 0) {
      ldr_auth_free(a);
      return ldr_err_set(err, LDR_NOMEM, "auth: out of memory");
    }
  }
  if (a->n == 0) {
    ldr_auth_free(a);
    return ldr_err_set(err, LDR_INVALID, "larder.auth: no tokens found");
  }
  *out = a;
  return LDR_OK;
}

size_t ldr_auth_count(const struct ldr_auth *a) { return a ? a->n : 0; }

/* 1 when given[0..glen) equals the token, in time that depends on glen only. */
static int same(const uint8_t *given, size_t glen, const char *token, size_t tlen) {
  unsigned diff = glen != tlen;
  for (size_t i = 0; i < glen; i++) diff |= given[i] ^ (uint8_t)token[i % tlen];
  return diff == 0;
}

enum ldr_rc ldr_auth_check(const struct ldr_auth *a, const grpc_metadata_array *md,
                           struct ldr_err *err) {
  if (a == NULL) return LDR_OK;
  static const char prefix[] = "Bearer ";
  const grpc_metadata *found = NULL;
  for (size_t i = 0; i < md->count; i++) {
    grpc_slice k = md->metadata[i].key;
    if (GRPC_SLICE_LENGTH(k) == 13 && !memcmp(GRPC_SLICE_START_PTR(k), "authorization", 13))
      found = &md->metadata[i];
  }
  if (found == NULL)
    return ldr_err_set(err, LDR_UNAUTHENTICATED,
                       "authorization: a bearer token is required (authorization: Bearer ...)");
  const uint8_t *v = GRPC_SLICE_START_PTR(found->value);
  size_t len = GRPC_SLICE_LENGTH(found->value);
  if (len < sizeof prefix - 1 || strncasecmp((const char *)v, prefix, sizeof prefix - 1))
    return ldr_err_set(err, LDR_UNAUTHENTICATED, "authorization: expected 'Bearer <token>'");
  v += sizeof prefix - 1;
  len -= sizeof prefix - 1;
  int ok = 0;
  for (size_t i = 0; i < a->n; i++) ok |= same(v, len, a->tokens[i], a->lens[i]);
  if (!ok) return ldr_err_set(err, LDR_UNAUTHENTICATED, "authorization: the token is not valid");
  return LDR_OK;
}

grpc_server_credentials *ldr_server_credentials(const struct ldr_config *cfg, struct ldr_err *err) {
  if (cfg->tls_cert == NULL) return grpc_insecure_server_credentials_create();
  char *cert = read_all(cfg->tls_cert, err, "larder.tls.cert");
  char *key = cert ? read_all(cfg->tls_key, err, "larder.tls.key") : NULL;
  char *ca =
      key && cfg->tls_client_ca ? read_all(cfg->tls_client_ca, err, "larder.tls.client_ca") : NULL;
  grpc_server_credentials *creds = NULL;
  if (cert != NULL && key != NULL && (cfg->tls_client_ca == NULL || ca != NULL)) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    creds = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    if (creds == NULL)
      ldr_err_set(err, LDR_INVALID, "larder.tls: the certificate or key is not valid");
  }
  if (key != NULL) memset(key, 0, strlen(key));
  free(cert);
  free(key);
  free(ca);
  return creds;
}
