#include "common/rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *text;
  int status;
} rc_info[] = {
#define LDR_RC_INFO(name, status, text) {text, status},
    LDR_RC_TABLE(LDR_RC_INFO)
#undef LDR_RC_INFO
};

const char *ldr_rc_public_text(enum ldr_rc rc) {
  return rc == LDR_UNAVAILABLE ? "the online store's database is unavailable; the server log has "
                                 "the cause"
         : rc == LDR_INTERNAL  ? "internal error; the server log has the cause"
                               : NULL;
}

const char *ldr_rc_str(enum ldr_rc rc) {
  if ((size_t)rc >= sizeof rc_info / sizeof rc_info[0]) return "unknown";
  return rc_info[rc].text;
}

int ldr_rc_grpc_status(enum ldr_rc rc) {
  if ((size_t)rc >= sizeof rc_info / sizeof rc_info[0]) return 13;
  return rc_info[rc].status;
}

void ldr_err_clear(struct ldr_err *err) {
  err->rc = LDR_OK;
  err->msg[0] = '\0';
}

enum ldr_rc ldr_err_set(struct ldr_err *err, enum ldr_rc rc, const char *fmt, ...) {
  if (err->rc != LDR_OK) return err->rc;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  err->rc = rc;
  return rc;
}

void ldr_err_prefix(struct ldr_err *err, const char *fmt, ...) {
  char prefix[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  size_t plen = strlen(prefix);
  size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
  if (plen >= sizeof err->msg) return;
  if (plen + mlen >= sizeof err->msg) mlen = sizeof err->msg - 1 - plen;
  memmove(err->msg + plen, err->msg, mlen);
  memcpy(err->msg, prefix, plen);
  err->msg[plen + mlen] = '\0';
}
