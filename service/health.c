/*
 * grpc.health.v1.Health. The empty service name is liveness: SERVING while
 * the process serves and is not draining, answered without touching the
 * database. Each served service's name is readiness: SERVING when, besides,
 * this worker's database connection answered a ping within the last second
 * (and, for feast.serving.ServingService and GrpcFeatureServer, a registry is
 * loaded).
 */
#include <string.h>

#include "common/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "service/service_int.h"

static const char *const served[] = {
    "larder.v1.OnlineStore",
    "feast.serving.ServingService",
    "GrpcFeatureServer",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};

/* A ping waits at most LDR_PING_LIMIT_NS. Every health call is served by one
 * thread (service/worker.c), so a liveness Check queued behind a ping of a
 * database that does not answer waits this long at the most: well within a
 * probe's usual 1 s timeout. */

/* The backend's answer to a ping, at most a second old: a failed ping is
 * remembered as long as a good one, so probes of a database that is down
 * cost it at most one attempt a second. */
static int backend_ready(struct ldr_handler_ctx *c) {
  int64_t now = ldr_now_ns();
  if (c->worker->ping_at_ns != 0 && now - c->worker->ping_at_ns < 1000000000)
    return c->worker->ping_ok;
  struct ldr_err err;
  ldr_err_clear(&err);
  /* A probe never waits long for a database that does not answer. */
  int64_t saved = c->backend->deadline_ns, limit = now + LDR_PING_LIMIT_NS;
  if (saved == 0 || saved > limit) c->backend->deadline_ns = limit;
  enum ldr_rc rc = c->backend->ops->ping(c->backend, &err);
  c->backend->deadline_ns = saved;
  c->worker->ping_at_ns = ldr_now_ns();
  c->worker->ping_ok = rc == LDR_OK;
  if (rc != LDR_OK) ldr_log(LDR_LOG_DEBUG, "health: the store does not answer: %s", err.msg);
  return c->worker->ping_ok;
}

int ldr_health_status(struct ldr_handler_ctx *c, const char *service) {
  int known = service[0] == '\0';
  for (size_t i = 0; !known && i < sizeof served / sizeof served[0]; i++)
    known = !strcmp(service, served[i]);
  if (!known) return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
  if (atomic_load(c->worker->stopping))
    return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  if (service[0] == '\0') return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  if (!strcmp(service, "feast.serving.ServingService") || !strcmp(service, "GrpcFeatureServer")) {
    struct ldr_err err;
    ldr_err_clear(&err);
    if (c->registry == NULL || ldr_registry_acquire(c->registry, c->reader, &err) == NULL)
      return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    ldr_registry_release(c->registry, c->reader);
  }
  return backend_ready(c) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

enum ldr_rc ldr_health_request(struct ldr_handler_ctx *c, const char **service) {
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  Grpc__Health__V1__HealthCheckRequest *q =
      grpc__health__v1__health_check_request__unpack(&al, c->req_len, c->req);
  if (q == NULL) return ldr_undecodable(c, "HealthCheckRequest");
  *service = q->service;
  return LDR_OK;
}

enum ldr_rc ldr_health_reply(struct ldr_handler_ctx *c, int status) {
  Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
  size_t n = grpc__health__v1__health_check_response__get_packed_size(&r);
  c->reply = grpc_slice_malloc(n);
  grpc__health__v1__health_check_response__pack(&r, GRPC_SLICE_START_PTR(c->reply));
  return LDR_OK;
}

enum ldr_rc ldr_health_check(struct ldr_handler_ctx *c) {
  const char *service = NULL;
  enum ldr_rc rc = ldr_health_request(c, &service);
  if (rc != LDR_OK) return rc;
  int status = ldr_health_status(c, service);
  if (status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN)
    return ldr_err_set(&c->err, LDR_NOT_FOUND, "service: '%s' is not served here", service);
  return ldr_health_reply(c, status);
}
