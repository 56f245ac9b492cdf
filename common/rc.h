/* Result codes shared by every module, and the error record that travels with them. */
#ifndef LDR_RC_H
#define LDR_RC_H

#include <stddef.h>

/*
 * One table generates the enum, the names and the gRPC status of each code.
 * The third column is the canonical gRPC status number (grpc/status.h); the
 * numbers are fixed by the gRPC protocol, so this header needs no gRPC include.
 * Codes are only ever appended.
 */
#define LDR_RC_TABLE(X)                                                                            \
  X(OK, 0, "ok")                                                                                   \
  X(INVALID, 3, "invalid argument")                                                                \
  X(NOT_FOUND, 5, "not found")                                                                     \
  X(EXHAUSTED, 8, "resource exhausted")                                                            \
  X(DENIED, 7, "permission denied")                                                                \
  X(UNAUTHENTICATED, 16, "unauthenticated")                                                        \
  X(UNAVAILABLE, 14, "unavailable")                                                                \
  X(DEADLINE, 4, "deadline exceeded")                                                              \
  X(UNIMPLEMENTED, 12, "unimplemented")                                                            \
  X(INTERNAL, 13, "internal error")                                                                \
  X(NOMEM, 8, "out of memory")                                                                     \
  X(FAILED_PRECONDITION, 9, "failed precondition")

enum ldr_rc {
#define LDR_RC_ENUM(name, status, text) LDR_##name,
  LDR_RC_TABLE(LDR_RC_ENUM)
#undef LDR_RC_ENUM
};

/* Returns a static, human-readable name for `rc`. */
const char *ldr_rc_str(enum ldr_rc rc);

/* What a client is told of an LDR_INTERNAL or LDR_UNAVAILABLE failure, whose
 * own message (the driver's words, the database's address) stays in the log;
 * NULL for every other code, whose message is the client's to read. */
const char *ldr_rc_public_text(enum ldr_rc rc);

/* Returns the gRPC status number (grpc_status_code) for `rc`. */
int ldr_rc_grpc_status(enum ldr_rc rc);

/*
 * The first error set wins: later calls to ldr_err_set on an error that
 * already holds one are ignored, so the message a caller sees is the cause,
 * not a consequence. Messages start with the field path they are about.
 */
struct ldr_err {
  enum ldr_rc rc;
  char msg[256];
};

/* Resets `err` to LDR_OK with an empty message. */
void ldr_err_clear(struct ldr_err *err);

/* Records `rc` and a printf-style message unless `err` already holds an error;
 * returns `err->rc` (the recorded or the earlier code). */
enum ldr_rc ldr_err_set(struct ldr_err *err, enum ldr_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends a printf-style prefix (a field path such as "rows[3].") to the message. */
void ldr_err_prefix(struct ldr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
