/*
 * TLS for the gRPC port through gRPC's certificate-config fetcher: gRPC asks
 * for the current certificate before every handshake, and gets a new one
 * once ldr_tls_reload has read the files again. Private keys are wiped from
 * memory as soon as gRPC has its copy.
 */
#include "service/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"

struct ldr_tls {
  const struct ldr_config *cfg;
  pthread_mutex_t mu;
  grpc_ssl_server_certificate_config *pending; /* handed to gRPC at the next handshake */
};

static char *read_pem(const char *path, const char *field, const char *marker,
                      struct ldr_err *err) {
  uint8_t *text = NULL;
  size_t len = 0;
  if (ldr_read_file(path, &text, &len) != 0) {
    ldr_err_set(err, errno == ENOMEM ? LDR_NOMEM : LDR_INVALID, "%s %s: %s", field, path,
                strerror(errno));
    return NULL;
  }
  if (strstr((const char *)text, marker) == NULL) {
    memset(text, 0, len);
    free(text);
    ldr_err_set(err, LDR_INVALID, "%s %s: no PEM %s in it", field, path, marker);
    return NULL;
  }
  return (char *)text;
}

/* A certificate config from the files, or NULL with `err` set. */
static grpc_ssl_server_certificate_config *load(const struct ldr_config *cfg, struct ldr_err *err) {
  char *cert = read_pem(cfg->tls_cert, "larder.tls.cert", "CERTIFICATE-----", err);
  char *key = cert ? read_pem(cfg->tls_key, "larder.tls.key", "PRIVATE KEY-----", err) : NULL;
  char *ca = key && cfg->tls_client_ca
                 ? read_pem(cfg->tls_client_ca, "larder.tls.client_ca", "CERTIFICATE-----", err)
                 : NULL;
  grpc_ssl_server_certificate_config *c = NULL;
  if (cert != NULL && key != NULL && (cfg->tls_client_ca == NULL || ca != NULL)) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    /* gRPC's fetcher path insists on root certificates even when client
     * certificates are never requested; the server's own chain stands in,
     * unused, since GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE asks for none. */
    c = grpc_ssl_server_certificate_config_create(ca ? ca : cert, &pair, 1);
    if (c == NULL) ldr_err_set(err, LDR_NOMEM, "larder.tls: out of memory");
  }
  if (key != NULL) memset(key, 0, strlen(key));
  free(cert);
  free(key);
  free(ca);
  return c;
}

static grpc_ssl_certificate_config_reload_status fetch(void *arg,
                                                       grpc_ssl_server_certificate_config **out) {
  struct ldr_tls *t = arg;
  pthread_mutex_lock(&t->mu);
  grpc_ssl_server_certificate_config *c = t->pending;
  t->pending = NULL;
  pthread_mutex_unlock(&t->mu);
  if (c == NULL) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  *out = c; /* gRPC owns it now */
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

grpc_server_credentials *ldr_tls_credentials(const struct ldr_config *cfg, struct ldr_tls **tls,
                                             struct ldr_err *err) {
  *tls = NULL;
  if (cfg->tls_cert == NULL) return grpc_insecure_server_credentials_create();
  struct ldr_tls *t = calloc(1, sizeof *t);
  if (t == NULL) {
    ldr_err_set(err, LDR_NOMEM, "larder.tls: out of memory");
    return NULL;
  }
  t->cfg = cfg;
  pthread_mutex_init(&t->mu, NULL);
  t->pending = load(cfg, err);
  if (t->pending == NULL) {
    ldr_tls_free(t);
    return NULL;
  }
  grpc_ssl_server_credentials_options *opts =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          cfg->tls_client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
          fetch, t);
  grpc_server_credentials *creds =
      opts ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
  if (creds == NULL) {
    ldr_err_set(err, LDR_INVALID, "larder.tls: the certificate or key is not valid");
    ldr_tls_free(t);
    return NULL;
  }
  *tls = t;
  return creds;
}

enum ldr_rc ldr_tls_reload(struct ldr_tls *t, struct ldr_err *err) {
  grpc_ssl_server_certificate_config *c = load(t->cfg, err);
  if (c == NULL) return err->rc;
  pthread_mutex_lock(&t->mu);
  grpc_ssl_server_certificate_config *old = t->pending;
  t->pending = c;
  pthread_mutex_unlock(&t->mu);
  if (old != NULL) grpc_ssl_server_certificate_config_destroy(old);
  return LDR_OK;
}

void ldr_tls_free(struct ldr_tls *t) {
  if (t == NULL) return;
  if (t->pending != NULL) grpc_ssl_server_certificate_config_destroy(t->pending);
  pthread_mutex_destroy(&t->mu);
  free(t);
}
