/*
 * Who may call what: bearer tokens with scopes (larder.auth), the same for
 * gRPC metadata and HTTP headers. Transport security is service/tls.c.
 */
#ifndef LDR_AUTH_H
#define LDR_AUTH_H

#include <stddef.h>

#include "common/rc.h"
#include "config/config.h"

struct ldr_auth;

/* Loads the tokens of every larder.auth source; *out stays NULL when auth is
 * off. The caller frees *out with ldr_auth_free. */
enum ldr_rc ldr_auth_load(const struct ldr_config *cfg, struct ldr_auth **out, struct ldr_err *err);
void ldr_auth_free(struct ldr_auth *a);

/*
 * Checks an Authorization value (`value` NULL: the header is missing; the
 * scheme word "Bearer" in any case): LDR_OK with *scopes set to what the
 * token grants, or LDR_UNAUTHENTICATED. `a` must not be NULL.
 */
enum ldr_rc ldr_auth_header(const struct ldr_auth *a, const char *value, size_t len,
                            unsigned *scopes, struct ldr_err *err);

/* LDR_OK when `granted` holds every scope in `needed`; else LDR_DENIED naming
 * `what` (a method) and the scope missing. */
enum ldr_rc ldr_auth_allow(unsigned granted, unsigned needed, const char *what,
                           struct ldr_err *err);

#endif
