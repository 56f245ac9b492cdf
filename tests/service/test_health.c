/*
 * service/health.c: ldr_health_status for liveness (""), the served names
 * (readiness: a ping of the real SQLite store, and for ServingService a
 * loaded registry), unknown names and while stopping; a ping's answer,
 * failed or good, kept for a second (counted with a fake ops table); the
 * ping's own deadline; and ldr_health_check on request bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "service/service_int.h"
#include "tests/support/store.h"

enum {
  SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
  NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
  UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
};

static struct ldr_test_store with_registry, without_registry;
static struct ldr_arena arena;
static atomic_int stopping;
static struct ldr_worker_state worker;

static struct ldr_handler_ctx ctx_for(struct ldr_test_store *s, struct ldr_backend *b) {
  struct ldr_handler_ctx c = {
      .cfg = &s->cfg,
      .backend = b ? b : s->backend,
      .arena = &arena,
      .registry = s->registry,
      .reader = 0,
      .worker = &worker,
  };
  ldr_err_clear(&c.err);
  return c;
}

static void fresh_worker(void) {
  memset(&worker, 0, sizeof worker);
  worker.stopping = &stopping;
  atomic_store(&stopping, 0);
}

/* Every service name against every state, on the real SQLite store. */
static void status_of_each_name(void **state) {
  (void)state;
  static const char *const names[] = {
      "",
      "larder.v1.OnlineStore",
      "feast.serving.ServingService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "larder.v1.OnlineStor", /* near misses of served names */
      "larder.v1.OnlineStore ",
      "Larder.v1.OnlineStore",
      "grpc.health.v1",
      "unknown.Service",
  };
  /* want[name][case]: cases are (registry, running), (no registry, running), (registry, stopping).
   */
  static const int want[][3] = {
      {SERVING, SERVING, NOT_SERVING},     {SERVING, SERVING, NOT_SERVING},
      {SERVING, NOT_SERVING, NOT_SERVING}, {SERVING, SERVING, NOT_SERVING},
      {SERVING, SERVING, NOT_SERVING},     {SERVING, SERVING, NOT_SERVING},
      {UNKNOWN, UNKNOWN, UNKNOWN},         {UNKNOWN, UNKNOWN, UNKNOWN},
      {UNKNOWN, UNKNOWN, UNKNOWN},         {UNKNOWN, UNKNOWN, UNKNOWN},
      {UNKNOWN, UNKNOWN, UNKNOWN},
  };
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      fresh_worker();
      atomic_store(&stopping, k == 2);
      struct ldr_handler_ctx c = ctx_for(k == 1 ? &without_registry : &with_registry, NULL);
      int got = ldr_health_status(&c, names[i]);
      if (got != want[i][k])
        fail_msg("'%s' (case %d): status %d, want %d", names[i], k, got, want[i][k]);
      /* The registry a readiness check took is handed back. */
      if (c.registry) {
        struct ldr_err err;
        ldr_err_clear(&err);
        assert_non_null(ldr_registry_acquire(c.registry, 0, &err));
        ldr_registry_release(c.registry, 0);
      }
    }
}

/* ServingService is not ready while its registry has not loaded. */
static void registry_not_loaded(void **state) {
  (void)state;
  fresh_worker();
  struct ldr_registry_source *missing = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  char path[128];
  snprintf(path, sizeof path, "%s/no-such-registry.pb", with_registry.dir);
  struct ldr_registry_location loc = {path, 0, NULL};
  assert_int_equal(ldr_registry_source_new(&loc, 0, LDR_TEST_PROJECT, 1, &missing, &err), LDR_OK);
  struct ldr_handler_ctx c = ctx_for(&with_registry, NULL);
  c.registry = missing;
  assert_int_equal(ldr_health_status(&c, "feast.serving.ServingService"), NOT_SERVING);
  assert_int_equal(ldr_health_status(&c, "larder.v1.OnlineStore"), SERVING);
  ldr_registry_source_free(missing);
}

/* ---- a store whose ping is scripted ---- */

static struct ldr_backend_ops fake_ops;
static int pings, ping_ok;
static int64_t ping_deadline;

static enum ldr_rc fake_ping(struct ldr_backend *b, struct ldr_err *err) {
  pings++;
  ping_deadline = b->deadline_ns;
  return ping_ok ? LDR_OK : ldr_err_set(err, LDR_UNAVAILABLE, "the database is down");
}

static struct ldr_backend fake_backend(void) {
  struct ldr_backend b = *with_registry.backend;
  fake_ops = *b.ops;
  fake_ops.ping = fake_ping;
  b.ops = &fake_ops;
  return b;
}

/* A ping's answer holds for a second: a failed one too, so probes of a store
 * that is down cost it one attempt a second. Liveness never pings. */
static void ping_remembered_for_a_second(void **state) {
  (void)state;
  fresh_worker();
  struct ldr_backend b = fake_backend();
  struct ldr_handler_ctx c = ctx_for(&with_registry, &b);
  static const struct {
    const char *service;
    int ok;     /* what the store would answer now */
    int age_ms; /* how old the last ping is made to be first (-1: left as it is) */
    int want;   /* status */
    int pings;  /* pings so far */
  } steps[] = {
      {"larder.v1.OnlineStore", 0, -1, NOT_SERVING, 1},
      {"larder.v1.OnlineStore", 1, -1, NOT_SERVING, 1}, /* up again, but the failure holds */
      {"grpc.health.v1.Health", 1, 900, NOT_SERVING, 1},
      {"", 1, -1, SERVING, 1}, /* liveness: no ping */
      {"no.such.Service", 1, -1, UNKNOWN, 1},
      {"larder.v1.OnlineStore", 1, 1001, SERVING, 2}, /* a second on: pinged again */
      {"larder.v1.OnlineStore", 0, -1, SERVING, 2},   /* down, but the success holds */
      {"feast.serving.ServingService", 0, 999, SERVING, 2},
      {"larder.v1.OnlineStore", 0, 1500, NOT_SERVING, 3},
      {"", 0, 5000, SERVING, 3},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    ping_ok = steps[i].ok;
    if (steps[i].age_ms >= 0) worker.ping_at_ns = ldr_now_ns() - (int64_t)steps[i].age_ms * 1000000;
    int got = ldr_health_status(&c, steps[i].service);
    if (got != steps[i].want || pings != steps[i].pings)
      fail_msg("step %zu ('%s'): status %d after %d pings, want %d after %d", i, steps[i].service,
               got, pings, steps[i].want, steps[i].pings);
  }
  /* Stopping: NOT_SERVING at once, no ping. */
  atomic_store(&stopping, 1);
  worker.ping_at_ns = 0;
  ping_ok = 1;
  assert_int_equal(ldr_health_status(&c, "larder.v1.OnlineStore"), NOT_SERVING);
  assert_int_equal(pings, 3);
}

/* A ping waits at most 250 ms, and the call's own deadline comes back after it. */
static void ping_deadline_is_capped(void **state) {
  (void)state;
  static const struct {
    int64_t deadline_in_ms; /* the call's deadline from now; 0: none */
    int64_t want_max_ms;    /* the ping's deadline at most this far away */
    int64_t want_min_ms;
  } cases[] = {{0, 250, 200}, {200, 200, 100}, {5000, 250, 200}, {-10, 0, -1000}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_worker();
    struct ldr_backend b = fake_backend();
    int64_t now = ldr_now_ns();
    int64_t deadline = cases[i].deadline_in_ms ? now + cases[i].deadline_in_ms * 1000000 : 0;
    b.deadline_ns = deadline;
    struct ldr_handler_ctx c = ctx_for(&with_registry, &b);
    ping_ok = 1;
    pings = 0;
    ldr_health_status(&c, "larder.v1.OnlineStore");
    int64_t after = ldr_now_ns();
    assert_int_equal(pings, 1);
    int64_t away = ping_deadline - now;
    if (ping_deadline == 0 || ping_deadline > after + cases[i].want_max_ms * 1000000 ||
        away < cases[i].want_min_ms * 1000000)
      fail_msg("case %zu: the ping's deadline is %lld ms away", i, (long long)(away / 1000000));
    assert_true(b.deadline_ns == deadline);
  }
}

/* The Check method on request bytes. */
static void check_on_the_wire(void **state) {
  (void)state;
  static const struct {
    const char *service; /* NULL: bytes that are no HealthCheckRequest */
    enum ldr_rc rc;
    int status;
    const char *msg;
  } cases[] = {
      {"", LDR_OK, SERVING, ""},
      {"larder.v1.OnlineStore", LDR_OK, SERVING, ""},
      {"nope.Service", LDR_NOT_FOUND, 0, "service: 'nope.Service' is not served here"},
      {NULL, LDR_INVALID, 0, "request: not a valid HealthCheckRequest"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_worker();
    uint8_t buf[128];
    size_t n;
    if (cases[i].service) {
      Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
      q.service = (char *)cases[i].service;
      n = grpc__health__v1__health_check_request__pack(&q, buf);
    } else {
      memcpy(buf, "\x0a\x10xx", 4); /* a string longer than the bytes */
      n = 4;
    }
    struct ldr_handler_ctx c = ctx_for(&with_registry, NULL);
    c.req = buf;
    c.req_len = n;
    enum ldr_rc rc = ldr_health_check(&c);
    if (rc != cases[i].rc) fail_msg("case %zu: %s (%s)", i, ldr_rc_str(rc), c.err.msg);
    assert_string_equal(c.err.msg, cases[i].msg);
    if (rc == LDR_OK) {
      Grpc__Health__V1__HealthCheckResponse *r = grpc__health__v1__health_check_response__unpack(
          NULL, GRPC_SLICE_LENGTH(c.reply), GRPC_SLICE_START_PTR(c.reply));
      assert_non_null(r);
      assert_int_equal(r->status, cases[i].status);
      grpc__health__v1__health_check_response__free_unpacked(r, NULL);
      grpc_slice_unref(c.reply);
    }
    ldr_arena_reset(&arena);
  }
}

int main(void) {
  static const char *const views[] = {LDR_TEST_VIEW, NULL};
  ldr_log_set_level(LDR_LOG_ERROR);
  ldr_test_store_open(&with_registry, NULL, 1, views);
  ldr_test_store_open(&without_registry, NULL, 0, NULL);
  ldr_arena_init(&arena, 4096, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(status_of_each_name),
      cmocka_unit_test(registry_not_loaded),
      cmocka_unit_test(ping_remembered_for_a_second),
      cmocka_unit_test(ping_deadline_is_capped),
      cmocka_unit_test(check_on_the_wire),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_arena_destroy(&arena);
  ldr_test_store_close(&without_registry);
  ldr_test_store_close(&with_registry);
  return failed;
}
