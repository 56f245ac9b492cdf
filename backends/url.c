/*
 * SQLAlchemy database URLs (REGISTRY.md §2):
 *   dialect[+driver]://[user[:password]@]host[:port]/database[?key=value&...]
 * with user and password percent-encoded, and sqlite:///relative/path or
 * sqlite:////absolute/path for files. Error messages never repeat the URL: it
 * may hold a password.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"

/* A malloc'd copy of s[0..n) with %XX decoded, or NULL (no memory, or a bad escape). */
static char *decode(const char *s, size_t n, int *bad) {
  char *out = malloc(n + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) {
        *bad = 1;
        break;
      }
      char hex[3] = {s[i + 1], s[i + 2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  if (*bad) {
    free(out);
    return NULL;
  }
  return out;
}

static enum ldr_rc no_memory(struct ldr_err *err) {
  return ldr_err_set(err, LDR_NOMEM, "registry.path: out of memory");
}

/* Decodes s[0..n) into *out; an empty part stays NULL. */
static enum ldr_rc part(const char *s, size_t n, char **out, const char *what,
                        struct ldr_err *err) {
  int bad = 0;
  if (n == 0) return LDR_OK;
  *out = decode(s, n, &bad);
  if (bad) return ldr_err_set(err, LDR_INVALID, "registry.path: a bad %%-escape in the %s", what);
  return *out ? LDR_OK : no_memory(err);
}

static enum ldr_rc parse_query(const char *q, struct ldr_url *u, struct ldr_err *err) {
  size_t n = 1;
  for (const char *p = q; *p; p++) n += *p == '&';
  u->query_keys = calloc(n, sizeof *u->query_keys);
  u->query_values = calloc(n, sizeof *u->query_values);
  if (u->query_keys == NULL || u->query_values == NULL) return no_memory(err);
  while (*q) {
    const char *end = strchr(q, '&');
    if (end == NULL) end = q + strlen(q);
    const char *eq = memchr(q, '=', (size_t)(end - q));
    if (eq != NULL && eq > q) {
      /* The pair counts from here, so that ldr_url_free frees its key also
       * when its value fails (a failed parse is only ever freed). */
      size_t k = u->n_query++;
      enum ldr_rc rc = part(q, (size_t)(eq - q), &u->query_keys[k], "query", err);
      if (rc == LDR_OK)
        rc = part(eq + 1, (size_t)(end - eq - 1), &u->query_values[k], "query", err);
      if (rc != LDR_OK) return rc;
      if (u->query_values[k] == NULL) u->query_values[k] = strdup("");
      if (u->query_values[k] == NULL) return no_memory(err);
    }
    q = *end ? end + 1 : end;
  }
  return LDR_OK;
}

enum ldr_rc ldr_url_parse(const char *s, struct ldr_url *u, struct ldr_err *err) {
  memset(u, 0, sizeof *u);
  const char *sep = strstr(s, "://");
  if (sep == NULL || sep == s)
    return ldr_err_set(err, LDR_INVALID, "registry.path: not a database URL (dialect://...)");
  u->scheme = malloc((size_t)(sep - s) + 1);
  if (u->scheme == NULL) return no_memory(err);
  for (size_t i = 0; i < (size_t)(sep - s); i++) u->scheme[i] = (char)tolower((unsigned char)s[i]);
  u->scheme[sep - s] = '\0';
  const char *plus = strchr(u->scheme, '+');
  u->dialect = plus ? strndup(u->scheme, (size_t)(plus - u->scheme)) : strdup(u->scheme);
  if (u->dialect == NULL) return no_memory(err);
  const char *rest = sep + 3;
  if (!strcmp(u->dialect, "sqlite")) {
    /* sqlite:///relative or sqlite:////absolute: the path is what follows "/". */
    if (rest[0] != '/' || rest[1] == '\0')
      return ldr_err_set(err, LDR_INVALID,
                         "registry.path: an SQLite registry is sqlite:///path (a file)");
    const char *q = strchr(rest + 1, '?');
    return part(rest + 1, q ? (size_t)(q - rest - 1) : strlen(rest + 1), &u->path, "path", err);
  }
  const char *slash = strchr(rest, '/');
  const char *query = strchr(rest, '?');
  if (slash == NULL || (query != NULL && query < slash))
    return ldr_err_set(err, LDR_INVALID, "registry.path: the URL names no database");
  /* The authority: user[:password]@host[:port]; the last '@' ends the credentials. */
  const char *auth_end = slash, *at = NULL;
  for (const char *p = rest; p < auth_end; p++)
    if (*p == '@') at = p;
  const char *host = rest;
  enum ldr_rc rc = LDR_OK;
  if (at != NULL) {
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    rc = part(rest, (size_t)((colon ? colon : at) - rest), &u->user, "user", err);
    if (rc == LDR_OK && colon)
      rc = part(colon + 1, (size_t)(at - colon - 1), &u->password, "password", err);
    host = at + 1;
  }
  const char *host_end = auth_end, *port = NULL;
  if (rc == LDR_OK && host < auth_end && *host == '[') { /* [IPv6]:port */
    const char *close = memchr(host, ']', (size_t)(auth_end - host));
    if (close == NULL) return ldr_err_set(err, LDR_INVALID, "registry.path: a bad IPv6 host");
    rc = part(host + 1, (size_t)(close - host - 1), &u->host, "host", err);
    if (close + 1 < auth_end && close[1] == ':') port = close + 2;
  } else if (rc == LDR_OK) {
    const char *colon = memchr(host, ':', (size_t)(auth_end - host));
    if (colon) {
      host_end = colon;
      port = colon + 1;
    }
    rc = part(host, (size_t)(host_end - host), &u->host, "host", err);
  }
  if (rc == LDR_OK && port != NULL) {
    long v = 0;
    const char *p = port;
    for (; p < auth_end && *p >= '0' && *p <= '9' && v <= 65535; p++) v = v * 10 + (*p - '0');
    if (p != auth_end || p == port || v < 1 || v > 65535)
      return ldr_err_set(err, LDR_INVALID, "registry.path: the port is not a number in 1..65535");
    u->port = (int)v;
  }
  const char *db = slash + 1;
  size_t dblen = query ? (size_t)(query - db) : strlen(db);
  if (rc == LDR_OK) rc = part(db, dblen, &u->database, "database", err);
  if (rc == LDR_OK && u->database == NULL)
    return ldr_err_set(err, LDR_INVALID, "registry.path: the URL names no database");
  if (rc == LDR_OK && query != NULL) rc = parse_query(query + 1, u, err);
  return rc;
}

void ldr_url_free(struct ldr_url *u) {
  free(u->scheme);
  free(u->dialect);
  free(u->user);
  if (u->password != NULL) memset(u->password, 0, strlen(u->password));
  free(u->password);
  free(u->host);
  free(u->database);
  free(u->path);
  for (size_t i = 0; i < u->n_query; i++) {
    free(u->query_keys[i]);
    free(u->query_values[i]);
  }
  free(u->query_keys);
  free(u->query_values);
  memset(u, 0, sizeof *u);
}

/* Nonzero when the query key at k[0..n) names a secret (libpq's and
 * MariaDB's password keys, any case). */
static int secret_key(const char *k, size_t n) {
  static const char *const keys[] = {"password", "passwd", "sslpassword"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strlen(keys[i]) == n && !strncasecmp(k, keys[i], n)) return 1;
  return 0;
}

void ldr_url_redacted(const char *s, char *buf, size_t cap) {
  const char *sep = strstr(s, "://");
  const char *rest = sep ? sep + 3 : s;
  const char *slash = strchr(rest, '/');
  const char *end = slash ? slash : rest + strlen(rest);
  const char *at = NULL;
  for (const char *p = rest; p < end; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
  size_t n = 0;
  if (cap == 0) return;
  buf[0] = '\0';
  /* The user's password, then every query value of a password key. */
  if (colon != NULL) n = (size_t)snprintf(buf, cap, "%.*s:***", (int)(colon - s), s), s = at;
  for (const char *p = s; *p && n + 1 < cap;) {
    if ((*p == '?' || *p == '&') && p > s) {
      const char *k = p + 1, *eq = k;
      while (*eq && *eq != '=' && *eq != '&') eq++;
      if (*eq == '=' && secret_key(k, (size_t)(eq - k))) {
        n += (size_t)snprintf(buf + n, cap - n, "%.*s=***", (int)(eq - p), p);
        p = eq + 1;
        while (*p && *p != '&') p++;
        continue;
      }
    }
    buf[n++] = *p++;
    buf[n] = '\0';
  }
  if (n >= cap) buf[cap - 1] = '\0';
}
