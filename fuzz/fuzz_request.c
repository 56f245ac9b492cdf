/*
 * libFuzzer target for one method's request decoder and its validation, run
 * as the server runs it: the handler of FUZZ_METHOD (a path of ldr_methods)
 * on a real SQLite store holding the tables of two views, with Feast's
 * registry_example (tests/data/vectors.json) loaded for ServingService.
 *
 * Every input must end in a status a client may get for a bad request, with
 * a message; INTERNAL, UNAVAILABLE or a crash is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "service/service_int.h"

/* Feast's registry_example: project my_project, view driver_hourly_stats. */
static const char registry_hex[] = "0a2e0a2c0a0664726976657210041a096472697665722069642209647269766"
                                   "5725f69644a0a6d795f70726f6a656374"
                                   "1a0131222430303030303030302d303030302d303030302d303030302d30303"
                                   "03030303030303030302a060880e2cfaa"
                                   "0632740a720a136472697665725f686f75726c795f7374617473120a6d795f7"
                                   "0726f6a6563741a06647269766572220d"
                                   "0a09636f6e765f726174651006220c0a086163635f72617465100622130a0f6"
                                   "176675f6461696c795f74726970731004"
                                   "32040880a3054001620d0a096472697665725f69641004";

static struct ldr_config cfg;
static struct ldr_backend *backend;
static struct ldr_registry_source *registry;
static struct ldr_arena arena;
static const struct ldr_method *method;
static atomic_int stopping;
static struct ldr_worker_state worker = {.stopping = &stopping};

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz_request: %s: %s\n", what, msg);
  abort();
}

static void setup(void) {
  static char dir[] = "/tmp/larder-fuzz-XXXXXX";
  if (mkdtemp(dir) == NULL) die("mkdtemp", "failed");
  char path[256];
  snprintf(path, sizeof path, "%s/registry.pb", dir);
  FILE *f = fopen(path, "wb");
  if (f == NULL) die(path, "cannot write");
  for (size_t i = 0; registry_hex[i] && registry_hex[i + 1]; i += 2) {
    unsigned byte;
    sscanf(registry_hex + i, "%2x", &byte);
    fputc((int)byte, f);
  }
  fclose(f);
  static const char yaml[] = "project: my_project\n"
                             "registry: registry.pb\n"
                             "online_store:\n  type: sqlite\n  path: online.db\n"
                             "larder:\n  max_batch_rows: 1000\n  log_level: error\n";
  struct ldr_config_error cerr;
  if (ldr_config_load_text("fuzz.yaml", dir, yaml, strlen(yaml), no_env, ldr_backend_schemas(),
                           &cfg, &cerr) != 0)
    die("config", cerr.msg);
  ldr_log_set_level(LDR_LOG_ERROR);
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_backend_new(&cfg.store, &backend, &err) != LDR_OK) die("backend", err.msg);
  const char *tables[] = {"my_project_driver_hourly_stats", "my_project_v"};
  if (backend->ops->update(backend, tables, 2, NULL, 0, &err) != LDR_OK) die("update", err.msg);
  struct ldr_registry_location loc = {cfg.registry_path, cfg.registry_sql, cfg.dir};
  if (ldr_registry_source_new(&loc, 0, cfg.project, 1, &registry, &err) != LDR_OK)
    die("registry", err.msg);
  if (ldr_reflection_init(&err) != LDR_OK) die("reflection", err.msg);
  ldr_arena_init(&arena, 65536, ldr_config_call_arena_cap(&cfg));
  for (size_t i = 0; i < ldr_n_methods; i++)
    if (!strcmp(ldr_methods[i].path, FUZZ_METHOD)) method = &ldr_methods[i];
  if (method == NULL) die(FUZZ_METHOD, "no such method");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (method == NULL) setup();
  if (size > (size_t)cfg.max_message_bytes) return 0; /* gRPC refuses these before any handler */
  struct ldr_handler_ctx ctx = {
      .cfg = &cfg,
      .backend = backend,
      .arena = &arena,
      .req = data,
      .req_len = size,
      .registry = registry,
      .worker = &worker,
  };
  ldr_err_clear(&ctx.err);
  enum ldr_rc rc;
  if (method->batched) { /* the server's path for OnlineRead: prepared, read in a batch, answered */
    struct ldr_read_job job, *jobs[1] = {&job};
    rc = ldr_read_prepare(&ctx, &job);
    if (rc == LDR_OK) rc = ldr_read_jobs(&cfg, backend, jobs, 1, &arena, NULL, &ctx.err);
    if (rc == LDR_OK) rc = ldr_read_reply(&ctx, &job);
  } else {
    rc = method->fn(&ctx);
  }
  switch (rc) {
  case LDR_OK:
    grpc_slice_unref(ctx.reply);
    break;
  case LDR_INVALID:
  case LDR_NOT_FOUND:
  case LDR_EXHAUSTED:
  case LDR_FAILED_PRECONDITION:
  case LDR_UNIMPLEMENTED:
    if (ctx.err.msg[0] == '\0') die(ldr_rc_str(rc), "an error without a message");
    break;
  default:
    die(ldr_rc_str(rc), ctx.err.msg);
  }
  ldr_arena_reset(&arena);
  return 0;
}
