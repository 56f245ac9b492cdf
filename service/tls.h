/* Transport security for the gRPC port: TLS or mutual TLS from PEM files,
 * reloaded on SIGHUP without dropping a connection. */
#ifndef LDR_TLS_H
#define LDR_TLS_H

#include <grpc/grpc_security.h>

#include "common/rc.h"
#include "config/config.h"

struct ldr_tls;

/*
 * The server's credentials: plaintext when larder.tls is unset (*tls NULL),
 * else TLS whose certificate, key and client CA are read now and again after
 * each ldr_tls_reload (*tls set; free it with ldr_tls_free once the gRPC server
 * is destroyed). NULL with `err` set when the PEM files cannot be used.
 */
grpc_server_credentials *ldr_tls_credentials(const struct ldr_config *cfg, struct ldr_tls **tls,
                                             struct ldr_err *err);

/* Reads the PEM files again; the next TLS handshake uses them. A file that
 * cannot be used keeps the old ones (LDR_INVALID, `err` says why). */
enum ldr_rc ldr_tls_reload(struct ldr_tls *t, struct ldr_err *err);

void ldr_tls_free(struct ldr_tls *t);

#endif
