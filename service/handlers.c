/*
 * The OnlineStore methods: decode, validate, call the backend, encode. Every
 * error names the request field it is about (DESIGN §3, §9).
 */
#include <grpc/slice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "larder/v1/online_store.pb-c.h"
#include "service/service_int.h"
#include "service/wire.h"

static ProtobufCAllocator arena_allocator(struct ldr_arena *a) {
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, a};
  return al;
}

/*
 * The checks every request passes before protobuf-c decodes it: well-formed
 * and not too deep, then the size limits on the repeated top-level field
 * `counted` (RESOURCE_EXHAUSTED comes before INVALID_ARGUMENT), then strings.
 */
static enum ldr_rc precheck(struct ldr_handler_ctx *c, const ProtobufCMessageDescriptor *desc,
                            unsigned counted, const char *counted_name, const char *unit) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(desc, c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  if (counted && scan.top_count[counted] > (size_t)c->cfg->max_batch_rows)
    return ldr_err_set(&c->err, LDR_EXHAUSTED, "%s: %zu %s exceed larder.max_batch_rows (%ld)",
                       counted_name, scan.top_count[counted], unit, c->cfg->max_batch_rows);
  /* OnlineReadRequest's requested_features (field 3): sizes before names. */
  if (desc == &larder__v1__online_read_request__descriptor &&
      scan.top_count[3] > LDR_READ_FEATURES_MAX)
    return ldr_err_set(&c->err, LDR_EXHAUSTED, "requested_features: more than %d features",
                       LDR_READ_FEATURES_MAX);
  if (scan.bad_field) {
    c->err = scan.field_err;
    return c->err.rc;
  }
  return LDR_OK;
}

enum ldr_rc ldr_undecodable(struct ldr_handler_ctx *c, const char *type) {
  /* A valid request that the call's memory cannot hold is no bad request. */
  if (c->arena->exhausted)
    return ldr_err_set(&c->err, LDR_EXHAUSTED,
                       "request: too large to decode within the call's memory");
  return ldr_err_set(&c->err, LDR_INVALID, "request: not a valid %s", type);
}

static enum ldr_rc no_memory(struct ldr_handler_ctx *c) {
  return ldr_err_set(&c->err, LDR_EXHAUSTED, "request: needs more memory than a call may use");
}

static enum ldr_rc read_only(struct ldr_handler_ctx *c, const char *method) {
  return ldr_err_set(&c->err, LDR_FAILED_PRECONDITION,
                     "%s: this larder serves reads only (larder.read_only: true)", method);
}

static enum ldr_rc check_ts(const Google__Protobuf__Timestamp *ts, const char *field, size_t row,
                            struct ldr_err *err) {
  if (ts->nanos < 0 || ts->nanos > 999999999)
    return ldr_err_set(err, LDR_INVALID, "rows[%zu].%s.nanos: %d is outside [0, 999999999]", row,
                       field, (int)ts->nanos);
  if (ts->seconds < LDR_TS_MIN_SECONDS || ts->seconds > LDR_TS_MAX_SECONDS)
    return ldr_err_set(err, LDR_INVALID,
                       "rows[%zu].%s.seconds: %lld is outside the years 0001 to 9999", row, field,
                       (long long)ts->seconds);
  return LDR_OK;
}

/* Serializes a request key for the backend; refuses keys without join keys.
 * The key's field path is "<list>[<i>]<sub>", built only for a message. */
static enum ldr_rc make_key(struct ldr_handler_ctx *c, const Feast__Types__EntityKey *ek,
                            const char *list, size_t i, const char *sub, struct ldr_key *out) {
  enum ldr_rc rc;
  if (ek == NULL) return ldr_err_set(&c->err, LDR_INVALID, "%s[%zu]%s: required", list, i, sub);
  if (ek->n_join_keys == 0)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "%s[%zu]%s.join_keys: an entity key needs at least one join key", list, i,
                       sub);
  if (ek->n_join_keys > (size_t)c->cfg->max_join_keys)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "%s[%zu]%s.join_keys: %zu join keys, more than larder.max_join_keys (%d)",
                       list, i, sub, ek->n_join_keys, c->cfg->max_join_keys);
  rc = ldr_entity_key_serialize(ek, c->backend->key_version, c->arena, out, &c->err);
  if (rc != LDR_OK) ldr_err_prefix(&c->err, "%s[%zu]%s.", list, i, sub);
  return rc;
}

static enum ldr_rc reply_packed(struct ldr_handler_ctx *c, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  c->reply = n ? grpc_slice_malloc(n) : grpc_empty_slice();
  if (n) protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(c->reply));
  return LDR_OK;
}

static enum ldr_rc online_write_batch(struct ldr_handler_ctx *c) {
  ProtobufCAllocator al = arena_allocator(c->arena);
  char table[LDR_TABLE_NAME_MAX + 1];
  static const Feast__Types__Value empty_value = FEAST__TYPES__VALUE__INIT;
  enum ldr_rc rc =
      precheck(c, &larder__v1__online_write_batch_request__descriptor, 2, "rows", "rows");
  if (rc != LDR_OK) return rc;
  Larder__V1__OnlineWriteBatchRequest *req =
      larder__v1__online_write_batch_request__unpack(&al, c->req_len, c->req);
  if (req == NULL) return ldr_undecodable(c, "OnlineWriteBatchRequest");
  rc = ldr_table_name(c->cfg->project, req->feature_view, "feature_view", table, &c->err);
  if (rc != LDR_OK) return rc;

  struct ldr_write_row *rows =
      ldr_arena_calloc(c->arena, req->n_rows ? req->n_rows : 1, sizeof *rows);
  if (rows == NULL) return no_memory(c);
  for (size_t i = 0; i < req->n_rows; i++) {
    const Larder__V1__WriteRow *in = req->rows[i];
    struct ldr_write_row *r = &rows[i];
    rc = make_key(c, in->entity_key, "rows", i, ".entity_key", &r->key);
    if (rc != LDR_OK) return rc;
    if (in->event_ts == NULL)
      return ldr_err_set(&c->err, LDR_INVALID, "rows[%zu].event_ts: required", i);
    rc = check_ts(in->event_ts, "event_ts", i, &c->err);
    if (rc != LDR_OK) return rc;
    r->event_ts.s = in->event_ts->seconds;
    r->event_ts.ns = in->event_ts->nanos;
    if (in->created_ts != NULL) {
      rc = check_ts(in->created_ts, "created_ts", i, &c->err);
      if (rc != LDR_OK) return rc;
      r->has_created = 1;
      r->created_ts.s = in->created_ts->seconds;
      r->created_ts.ns = in->created_ts->nanos;
    }
    struct ldr_write_feature *fs =
        ldr_arena_calloc(c->arena, in->n_features ? in->n_features : 1, sizeof *fs);
    if (fs == NULL) return no_memory(c);
    for (size_t j = 0; j < in->n_features; j++) {
      const Larder__V1__WriteRow__FeaturesEntry *e = in->features[j];
      if (e->key[0] == '\0')
        return ldr_err_set(&c->err, LDR_INVALID, "rows[%zu].features[%zu]: empty feature name", i,
                           j);
      const Feast__Types__Value *v = e->value ? e->value : &empty_value;
      size_t len = feast__types__value__get_packed_size(v);
      uint8_t *bytes = ldr_arena_alloc(c->arena, len);
      if (bytes == NULL) return no_memory(c);
      feast__types__value__pack(v, bytes);
      fs[j].name = e->key;
      fs[j].value = v;
      fs[j].bytes = bytes;
      fs[j].len = len;
    }
    r->features = fs;
    r->n_features = in->n_features;
  }
  if (c->cfg->read_only) return read_only(c, "OnlineWriteBatch");
  int64_t t0 = ldr_now_ns();
  struct ldr_write w = {table, rows, req->n_rows, NULL};
  rc = c->backend->ops->write(c->backend, &w, 1, c->arena, &c->err);
  ldr_count_backend(c, t0, 0, rc == LDR_OK ? req->n_rows : 0);
  if (rc != LDR_OK) return rc;
  Larder__V1__OnlineWriteBatchResponse resp = LARDER__V1__ONLINE_WRITE_BATCH_RESPONSE__INIT;
  resp.rows_written = req->n_rows;
  return reply_packed(c, &resp.base);
}

/* Encoded size of a google.protobuf.Timestamp body. */
static size_t ts_size(struct ldr_ts t) {
  return (t.s ? 1 + ldr_pb_varint_size((uint64_t)t.s) : 0) +
         (t.ns ? 1 + ldr_pb_varint_size((uint64_t)t.ns) : 0);
}

static size_t entry_size(const struct ldr_read_feature *f) {
  return 1 + ldr_pb_varint_size(f->name_len) + f->name_len + 1 + ldr_pb_varint_size(f->value_len) +
         f->value_len;
}

static size_t result_size(const struct ldr_read_row *r) {
  size_t n = 0;
  if (!r->found) return 0;
  n += 2; /* found = true */
  if (r->has_event_ts) {
    size_t t = ts_size(r->event_ts);
    n += 1 + ldr_pb_varint_size(t) + t;
  }
  for (size_t i = 0; i < r->n_features; i++) {
    size_t e = entry_size(&r->features[i]);
    n += 1 + ldr_pb_varint_size(e) + e;
  }
  return n;
}

/* OnlineReadResponse is written by hand: stored Value bytes are copied as they
 * are, never decoded and re-encoded. */
static uint8_t *put_result(uint8_t *p, const struct ldr_read_row *r, size_t size) {
  *p++ = 0x0a; /* results = 1 */
  p = ldr_pb_put_varint(p, size);
  if (!r->found) return p;
  *p++ = 0x08; /* found = 1 */
  *p++ = 0x01;
  if (r->has_event_ts) {
    *p++ = 0x12; /* event_ts = 2 */
    p = ldr_pb_put_varint(p, ts_size(r->event_ts));
    if (r->event_ts.s) {
      *p++ = 0x08;
      p = ldr_pb_put_varint(p, (uint64_t)r->event_ts.s);
    }
    if (r->event_ts.ns) {
      *p++ = 0x10;
      p = ldr_pb_put_varint(p, (uint64_t)r->event_ts.ns);
    }
  }
  for (size_t i = 0; i < r->n_features; i++) {
    const struct ldr_read_feature *f = &r->features[i];
    *p++ = 0x1a; /* features = 3: map entry {key = 1, value = 2} */
    p = ldr_pb_put_varint(p, entry_size(f));
    *p++ = 0x0a;
    p = ldr_pb_put_varint(p, f->name_len);
    memcpy(p, f->name, f->name_len);
    p += f->name_len;
    *p++ = 0x12;
    p = ldr_pb_put_varint(p, f->value_len);
    if (f->value_len) memcpy(p, f->value, f->value_len);
    p += f->value_len;
  }
  return p;
}

enum ldr_rc ldr_read_prepare(struct ldr_handler_ctx *c, struct ldr_read_job *job) {
  ProtobufCAllocator al = arena_allocator(c->arena);
  enum ldr_rc rc =
      precheck(c, &larder__v1__online_read_request__descriptor, 2, "entity_keys", "keys");
  if (rc != LDR_OK) return rc;
  Larder__V1__OnlineReadRequest *req =
      larder__v1__online_read_request__unpack(&al, c->req_len, c->req);
  if (req == NULL) return ldr_undecodable(c, "OnlineReadRequest");
  rc = ldr_table_name(c->cfg->project, req->feature_view, "feature_view", job->table, &c->err);
  if (rc != LDR_OK) return rc;
  size_t n = req->n_entity_keys;
  struct ldr_key *keys = ldr_arena_alloc(c->arena, (n ? n : 1) * sizeof *keys);
  if (keys == NULL) return no_memory(c);
  for (size_t i = 0; i < n; i++) {
    rc = make_key(c, req->entity_keys[i], "entity_keys", i, "", &keys[i]);
    if (rc != LDR_OK) return rc;
  }
  job->keys = keys;
  job->n_keys = n;
  job->features = (const char *const *)req->requested_features;
  job->n_features = req->n_requested_features;
  job->rows = NULL;
  return LDR_OK;
}

enum ldr_rc ldr_read_reply(struct ldr_handler_ctx *c, const struct ldr_read_job *job) {
  size_t n = job->n_keys;
  size_t *sizes = ldr_arena_alloc(c->arena, (n ? n : 1) * sizeof *sizes);
  if (sizes == NULL) return no_memory(c);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    sizes[i] = result_size(&job->rows[i]);
    total += 1 + ldr_pb_varint_size(sizes[i]) + sizes[i];
  }
  if (total > (size_t)c->cfg->max_message_bytes)
    return ldr_err_set(
        &c->err, LDR_EXHAUSTED,
        "entity_keys: the reply would be %zu bytes, more than larder.max_message_bytes "
        "(%ld); ask for fewer keys or features",
        total, c->cfg->max_message_bytes);
  c->reply = total ? grpc_slice_malloc(total) : grpc_empty_slice();
  uint8_t *p = GRPC_SLICE_START_PTR(c->reply);
  for (size_t i = 0; i < n; i++) p = put_result(p, &job->rows[i], sizes[i]);
  return LDR_OK;
}

int ldr_read_job_joins(const struct ldr_read_job *a, const struct ldr_read_job *b) {
  if (strcmp(a->table, b->table) || a->n_features != b->n_features) return 0;
  for (size_t i = 0; i < a->n_features; i++)
    if (strcmp(a->features[i], b->features[i])) return 0;
  return 1;
}

enum ldr_rc ldr_read_jobs(const struct ldr_config *cfg, struct ldr_backend *b,
                          struct ldr_read_job *const *jobs, size_t n, struct ldr_arena *arena,
                          struct ldr_worker_state *ws, struct ldr_err *err) {
  struct ldr_read *reads = ldr_arena_calloc(arena, n + 1, sizeof *reads);
  if (reads == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "read: out of memory");
  size_t n_reads = 0, keys_read = 0;
  for (size_t i = 0; i < n;) {
    const struct ldr_read_job *first = jobs[i];
    size_t j = i, nkeys = 0;
    while (j < n && ldr_read_job_joins(jobs[j], first) &&
           (j == i || nkeys + jobs[j]->n_keys <= LDR_BATCH_KEYS))
      nkeys += jobs[j++]->n_keys;
    struct ldr_key *keys = ldr_arena_alloc(arena, (nkeys ? nkeys : 1) * sizeof *keys);
    struct ldr_read_row *rows = ldr_arena_alloc(arena, (nkeys ? nkeys : 1) * sizeof *rows);
    if (keys == NULL || rows == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "read: out of memory");
    size_t off = 0;
    for (size_t k = i; k < j; k++) {
      if (jobs[k]->n_keys) memcpy(keys + off, jobs[k]->keys, jobs[k]->n_keys * sizeof *keys);
      jobs[k]->rows = rows + off;
      off += jobs[k]->n_keys;
    }
    reads[n_reads++] =
        (struct ldr_read){first->table, keys, nkeys, first->features, first->n_features, rows};
    keys_read += nkeys;
    if (j - i > 1 && ldr_log_enabled(LDR_LOG_DEBUG))
      ldr_log(LDR_LOG_DEBUG, "%zu reads of %s served together (%zu keys)", j - i, first->table,
              nkeys);
    i = j;
  }
  b->result_cap = (size_t)cfg->max_message_bytes * n;
  int64_t t0 = ldr_now_ns();
  enum ldr_rc rc = b->ops->read(b, reads, n_reads, arena, err);
  if (ws != NULL)
    ldr_metrics_backend(ws->metrics, ldr_now_ns() - t0, rc == LDR_OK ? keys_read : 0, 0);
  b->result_cap = 0;
  return rc;
}

/* Checks each view name of a list and turns it into its table name. */
static enum ldr_rc table_list(struct ldr_handler_ctx *c, char **views, size_t n, const char *field,
                              const char ***out) {
  char **tables = ldr_arena_alloc(c->arena, (n ? n : 1) * sizeof *tables);
  if (tables == NULL) return no_memory(c);
  for (size_t i = 0; i < n; i++) {
    char fname[64];
    snprintf(fname, sizeof fname, "%s[%zu]", field, i);
    tables[i] = ldr_arena_alloc(c->arena, LDR_TABLE_NAME_MAX + 1);
    if (tables[i] == NULL) return no_memory(c);
    enum ldr_rc rc = ldr_table_name(c->cfg->project, views[i], fname, tables[i], &c->err);
    if (rc != LDR_OK) return rc;
  }
  *out = (const char **)tables;
  return LDR_OK;
}

static int by_string(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/*
 * Feast names a table's index <table>_ek, and PostgreSQL and SQLite keep
 * indexes and tables in one namespace: views `x` and `x_ek` in one Update
 * would collide. Found with a sort and a search per table, not pairwise.
 */
static enum ldr_rc no_index_clash(struct ldr_handler_ctx *c, const char **tables, size_t n) {
  const char **sorted = ldr_arena_alloc(c->arena, (n ? n : 1) * sizeof *sorted);
  if (sorted == NULL) return no_memory(c);
  if (n) memcpy(sorted, tables, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, by_string);
  for (size_t i = 0; i < n; i++) {
    char index[LDR_TABLE_NAME_MAX + 4];
    snprintf(index, sizeof index, "%s_ek", tables[i]);
    const char *key = index;
    if (bsearch(&key, sorted, n, sizeof *sorted, by_string) == NULL) continue;
    for (size_t j = 0; j < n; j++)
      if (!strcmp(tables[j], index))
        return ldr_err_set(&c->err, LDR_INVALID,
                           "tables_to_keep[%zu]: table %s would take the name of the index of "
                           "tables_to_keep[%zu] (%s); give the feature view another name",
                           j, index, i, tables[i]);
  }
  return LDR_OK;
}

static enum ldr_rc update(struct ldr_handler_ctx *c) {
  ProtobufCAllocator al = arena_allocator(c->arena);
  const char **keep = NULL, **drop = NULL;
  /* Counted on the wire, before any name is looked at: RESOURCE_EXHAUSTED
   * comes before INVALID_ARGUMENT (DESIGN §9), as in Teardown's precheck. */
  struct ldr_wire_scan scan;
  enum ldr_rc rc =
      ldr_wire_scan(&larder__v1__update_request__descriptor, c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  size_t n_keep = scan.top_count[1], n_drop = scan.top_count[2]; /* tables_to_keep, _delete */
  if (n_keep + n_drop > (size_t)c->cfg->max_batch_rows)
    return ldr_err_set(
        &c->err, LDR_EXHAUSTED,
        "%s: %zu tables to keep and %zu to delete exceed larder.max_batch_rows (%ld)",
        n_keep > (size_t)c->cfg->max_batch_rows ? "tables_to_keep"
        : n_keep == 0                           ? "tables_to_delete"
                                                : "tables_to_keep, tables_to_delete",
        n_keep, n_drop, c->cfg->max_batch_rows);
  if (scan.bad_field) {
    c->err = scan.field_err;
    return c->err.rc;
  }
  Larder__V1__UpdateRequest *req = larder__v1__update_request__unpack(&al, c->req_len, c->req);
  if (req == NULL) return ldr_undecodable(c, "UpdateRequest");
  rc = table_list(c, req->tables_to_keep, req->n_tables_to_keep, "tables_to_keep", &keep);
  if (rc == LDR_OK)
    rc = table_list(c, req->tables_to_delete, req->n_tables_to_delete, "tables_to_delete", &drop);
  if (rc == LDR_OK) rc = no_index_clash(c, keep, req->n_tables_to_keep);
  if (rc == LDR_OK && c->cfg->read_only) rc = read_only(c, "Update");
  if (rc == LDR_OK) {
    int64_t t0 = ldr_now_ns();
    rc = c->backend->ops->update(c->backend, keep, req->n_tables_to_keep, drop,
                                 req->n_tables_to_delete, &c->err);
    ldr_count_backend(c, t0, 0, 0);
  }
  if (rc != LDR_OK) return rc;
  Larder__V1__UpdateResponse resp = LARDER__V1__UPDATE_RESPONSE__INIT;
  return reply_packed(c, &resp.base);
}

static enum ldr_rc teardown(struct ldr_handler_ctx *c) {
  ProtobufCAllocator al = arena_allocator(c->arena);
  const char **tables = NULL;
  enum ldr_rc rc = precheck(c, &larder__v1__teardown_request__descriptor, 1, "tables", "tables");
  if (rc != LDR_OK) return rc;
  Larder__V1__TeardownRequest *req = larder__v1__teardown_request__unpack(&al, c->req_len, c->req);
  if (req == NULL) return ldr_undecodable(c, "TeardownRequest");
  rc = table_list(c, req->tables, req->n_tables, "tables", &tables);
  if (rc == LDR_OK && c->cfg->read_only) rc = read_only(c, "Teardown");
  if (rc == LDR_OK) {
    int64_t t0 = ldr_now_ns();
    rc = c->backend->ops->teardown(c->backend, tables, req->n_tables, &c->err);
    ldr_count_backend(c, t0, 0, 0);
  }
  if (rc != LDR_OK) return rc;
  Larder__V1__TeardownResponse resp = LARDER__V1__TEARDOWN_RESPONSE__INIT;
  return reply_packed(c, &resp.base);
}

const struct ldr_method ldr_methods[] = {
    {.path = "/larder.v1.OnlineStore/OnlineWriteBatch",
     .name = "OnlineWriteBatch",
     .fn = online_write_batch,
     .scope = LDR_SCOPE_WRITE},
    /* Served by ldr_read_prepare, ldr_read_jobs and ldr_read_reply, in batches. */
    {.path = "/larder.v1.OnlineStore/OnlineRead",
     .name = "OnlineRead",
     .scope = LDR_SCOPE_READ,
     .batched = 1},
    {.path = "/larder.v1.OnlineStore/Update",
     .name = "Update",
     .fn = update,
     .scope = LDR_SCOPE_ADMIN},
    {.path = "/larder.v1.OnlineStore/Teardown",
     .name = "Teardown",
     .fn = teardown,
     .scope = LDR_SCOPE_ADMIN},
    {.path = "/feast.serving.ServingService/GetFeastServingInfo",
     .name = "GetFeastServingInfo",
     .fn = ldr_get_feast_serving_info,
     .scope = LDR_SCOPE_READ},
    {.path = "/feast.serving.ServingService/GetOnlineFeatures",
     .name = "GetOnlineFeatures",
     .fn = ldr_get_online_features,
     .scope = LDR_SCOPE_READ},
    /* Feast's Python gRPC server: GrpcServer.proto has no package. */
    {.path = "/GrpcFeatureServer/GetOnlineFeatures",
     .name = "GrpcFeatureServer/GetOnlineFeatures",
     .fn = ldr_get_online_features,
     .scope = LDR_SCOPE_READ},
    {.path = "/GrpcFeatureServer/Push",
     .name = "GrpcFeatureServer/Push",
     .fn = ldr_grpc_push,
     .scope = LDR_SCOPE_WRITE},
    {.path = "/GrpcFeatureServer/WriteToOnlineStore",
     .name = "GrpcFeatureServer/WriteToOnlineStore",
     .fn = ldr_grpc_write_to_online_store,
     .scope = LDR_SCOPE_WRITE},
    {.path = "/grpc.health.v1.Health/Check", .name = "Health/Check", .fn = ldr_health_check},
    {.path = "/grpc.health.v1.Health/Watch", .name = "Health/Watch", .stream = LDR_STREAM_WATCH},
    {.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     .name = "ServerReflectionInfo",
     .fn = ldr_reflection_answer,
     .scope = LDR_SCOPE_READ,
     .stream = LDR_STREAM_BIDI},
    {.path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     .name = "v1alpha/ServerReflectionInfo",
     .fn = ldr_reflection_answer,
     .scope = LDR_SCOPE_READ,
     .stream = LDR_STREAM_BIDI},
};
const size_t ldr_n_methods = sizeof ldr_methods / sizeof ldr_methods[0];
