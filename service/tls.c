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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

/* gRPC takes PEM text as it is and finds out at the next handshake that it
 * cannot be used, keeping the old certificate (or, at start-up, failing to
 * listen) with a log line of its own. The same checks are made here first, so
 * that the operator is told which file is wrong and a reload that will not
 * take effect says so — read as gRPC reads them: certificates with their
 * trust settings (_AUX), and a key with the empty passphrase, never asked
 * for on a terminal. */
static int pem_certificates(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  int n = 0;
  X509 *x;
  while (bio != NULL && (x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
    X509_free(x);
    n++;
  }
  BIO_free(bio);
  ERR_clear_error();
  return n;
}

static int usable(const char *cert, const char *key, const char *ca, struct ldr_err *err) {
  BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
  X509 *leaf = cb ? PEM_read_bio_X509_AUX(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *pkey = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, (void *)"") : NULL;
  int ok = 0;
  if (cb == NULL || kb == NULL)
    ldr_err_set(err, LDR_NOMEM, "larder.tls: out of memory");
  else if (leaf == NULL)
    ldr_err_set(err, LDR_INVALID, "larder.tls.cert: the certificate cannot be read");
  else if (pkey == NULL)
    ldr_err_set(err, LDR_INVALID,
                "larder.tls.key: the private key cannot be read (or is encrypted)");
  else if (X509_check_private_key(leaf, pkey) != 1)
    ldr_err_set(err, LDR_INVALID, "larder.tls.key: the private key does not match larder.tls.cert");
  else if (ca != NULL && pem_certificates(ca) == 0)
    ldr_err_set(err, LDR_INVALID, "larder.tls.client_ca: no certificate can be read from it");
  else
    ok = 1;
  EVP_PKEY_free(pkey);
  X509_free(leaf);
  BIO_free(kb);
  BIO_free(cb);
  ERR_clear_error();
  return ok;
}

/* A certificate config from the files, or NULL with `err` set. */
static grpc_ssl_server_certificate_config *load(const struct ldr_config *cfg, struct ldr_err *err) {
  char *cert = read_pem(cfg->tls_cert, "larder.tls.cert", "CERTIFICATE-----", err);
  char *key = cert ? read_pem(cfg->tls_key, "larder.tls.key", "PRIVATE KEY-----", err) : NULL;
  char *ca = key && cfg->tls_client_ca
                 ? read_pem(cfg->tls_client_ca, "larder.tls.client_ca", "CERTIFICATE-----", err)
                 : NULL;
  grpc_ssl_server_certificate_config *c = NULL;
  if (cert != NULL && key != NULL && (cfg->tls_client_ca == NULL || ca != NULL) &&
      usable(cert, key, ca, err)) {
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
