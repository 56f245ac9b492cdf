/*
 * feast.serving.ServingService over gRPC: GetOnlineFeatures decoded into
 * serving/'s request, answered there, and encoded as Feast lays out its
 * response (SPEC §2.3); GetFeastServingInfo. The same GetOnlineFeatures is
 * served at /GrpcFeatureServer/GetOnlineFeatures, the path of Feast's Python
 * server.
 */
#include <grpc/slice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feast/serving/ServingService.pb-c.h"
#include "registry/registry.h"
#include "service/service_int.h"
#include "service/wire.h"

/* A RepeatedValue's values as they were sent: gRPC values are typed. */
static enum ldr_rc grpc_value(const struct ldr_serving_column *col, size_t row, int type,
                              struct ldr_arena *a, const Feast__Types__Value **out,
                              struct ldr_err *err) {
  (void)type;
  (void)a;
  (void)err;
  *out = ((const Feast__Types__RepeatedValue *)col->data)->val[row];
  return LDR_OK;
}

/* The map entries of a request as serving columns. */
static struct ldr_serving_column *
columns(struct ldr_arena *a, Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *const *e,
        size_t n) {
  struct ldr_serving_column *cols = ldr_arena_calloc(a, n + 1, sizeof *cols);
  for (size_t i = 0; cols != NULL && i < n; i++)
    cols[i] =
        (struct ldr_serving_column){e[i]->key, e[i]->value ? e[i]->value->n_val : 0, e[i]->value};
  return cols;
}

enum ldr_rc ldr_get_online_features(struct ldr_handler_ctx *c) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(&feast__serving__get_online_features_request__descriptor, c->req,
                                 c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  Feast__Serving__GetOnlineFeaturesRequest *pb =
      feast__serving__get_online_features_request__unpack(&al, c->req_len, c->req);
  if (pb == NULL) return ldr_undecodable(c, "GetOnlineFeaturesRequest");
  /* Limits first, then strings, then meaning (DESIGN §9). */
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **ctx =
      (Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **)pb->request_context;
  for (size_t i = 0; i < pb->n_entities + pb->n_request_context; i++) {
    const Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *e =
        i < pb->n_entities ? pb->entities[i] : ctx[i - pb->n_entities];
    if (e->value && e->value->n_val > (size_t)c->cfg->max_batch_rows)
      return ldr_err_set(&c->err, LDR_EXHAUSTED, "%s: %zu rows exceed larder.max_batch_rows (%ld)",
                         i < pb->n_entities ? "entities" : "request_context", e->value->n_val,
                         c->cfg->max_batch_rows);
  }
  if (scan.bad_field) {
    c->err = scan.field_err;
    return c->err.rc;
  }
  if (pb->n_entities + pb->n_request_context > (size_t)c->cfg->max_columns)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "entities: %zu entity and request_context columns, more than "
                       "larder.max_columns (%d)",
                       pb->n_entities + pb->n_request_context, c->cfg->max_columns);

  struct ldr_serving_request q = {
      .full_feature_names = pb->full_feature_names,
      .value = grpc_value,
      .n_entities = pb->n_entities,
      .n_context = pb->n_request_context,
  };
  if (pb->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE) {
    q.feature_service = pb->feature_service;
  } else if (pb->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES) {
    q.features = (const char *const *)pb->features->val;
    q.n_features = pb->features->n_val;
  }
  q.entities = columns(c->arena, pb->entities, pb->n_entities);
  q.context = columns(c->arena, ctx, pb->n_request_context);
  if (q.entities == NULL || q.context == NULL)
    return ldr_err_set(&c->err, LDR_EXHAUSTED, "request: needs more memory than a call may use");

  if (c->registry == NULL)
    return ldr_err_set(&c->err, LDR_FAILED_PRECONDITION, "%s",
                       c->registry_why ? c->registry_why
                       : c->cfg->registry_unsupported
                           ? c->cfg->registry_unsupported
                           : "no registry: ServingService needs `registry` in feature_store.yaml");
  const struct ldr_registry *reg = ldr_registry_acquire(c->registry, c->reader, &c->err);
  if (reg == NULL) return c->err.rc;
  struct ldr_serving_env env = {c->cfg, reg, c->backend, c->arena};
  struct ldr_serving_result res;
  rc = ldr_serving_get(&env, &q, &res, &c->err);
  if (res.read) ldr_count_backend(c, res.read_start_ns, rc == LDR_OK ? res.keys_read : 0, 0);
  if (rc == LDR_OK)
    rc = ldr_serving_encode(res.cols, res.n_cols, res.n_rows, res.views,
                            pb->include_feature_view_version_metadata ? res.n_views : 0,
                            (size_t)c->cfg->max_message_bytes, &c->reply, &c->err);
  ldr_registry_release(c->registry, c->reader);
  return rc;
}

enum ldr_rc ldr_get_feast_serving_info(struct ldr_handler_ctx *c) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(&feast__serving__get_feast_serving_info_request__descriptor,
                                 c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  Feast__Serving__GetFeastServingInfoResponse resp =
      FEAST__SERVING__GET_FEAST_SERVING_INFO_RESPONSE__INIT;
  resp.version = (char *)LDR_VERSION;
  size_t n = feast__serving__get_feast_serving_info_response__get_packed_size(&resp);
  c->reply = grpc_slice_malloc(n);
  feast__serving__get_feast_serving_info_response__pack(&resp, GRPC_SLICE_START_PTR(c->reply));
  return LDR_OK;
}

/* ---- the reply, written by hand: stored Value bytes are copied as they are */

static size_t ts_body(const struct ldr_cell *cell) {
  if (!cell->has_ts) return 0;
  return (cell->ts.s ? 1 + ldr_pb_varint_size((uint64_t)cell->ts.s) : 0) +
         (cell->ts.ns ? 1 + ldr_pb_varint_size((uint64_t)cell->ts.ns) : 0);
}

static size_t len_field(size_t body) { return 1 + ldr_pb_varint_size(body) + body; }

static size_t vector_body(const struct ldr_column *col, size_t n_rows) {
  size_t n = 0;
  for (size_t r = 0; r < n_rows; r++)
    n += len_field(col->cells[r].len) + len_field(ts_body(&col->cells[r]));
  if (n_rows) n += len_field(n_rows); /* statuses, packed: every status is one byte */
  return n;
}

static uint8_t *put_len(uint8_t *p, uint8_t tag, size_t len) {
  *p++ = tag;
  return ldr_pb_put_varint(p, len);
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *b, size_t len) {
  p = put_len(p, tag, len);
  if (len) memcpy(p, b, len);
  return p + len;
}

/* FeatureViewMetadata { name = 1, version = 2 } */
static size_t view_body(const struct ldr_serving_view *v) {
  return len_field(strlen(v->name)) +
         (v->version ? 1 + ldr_pb_varint_size((uint64_t)(int64_t)v->version) : 0);
}

enum ldr_rc ldr_serving_encode(const struct ldr_column *cols, size_t n_cols, size_t n_rows,
                               const struct ldr_serving_view *views, size_t n_views,
                               size_t max_bytes, grpc_slice *out, struct ldr_err *err) {
  /* metadata = 1 { feature_names = 1 { val = 1 ... }, feature_view_metadata = 2 {...} } */
  size_t names = 0, meta_views = 0;
  for (size_t i = 0; i < n_cols; i++) names += len_field(strlen(cols[i].name));
  for (size_t i = 0; i < n_views; i++) meta_views += len_field(view_body(&views[i]));
  size_t meta = len_field(names) + meta_views;
  size_t total = len_field(meta);
  for (size_t i = 0; i < n_cols; i++) total += len_field(vector_body(&cols[i], n_rows));
  if (total > max_bytes)
    return ldr_err_set(err, LDR_EXHAUSTED,
                       "entities: the reply would be %zu bytes, more than larder.max_message_bytes "
                       "(%zu); ask for fewer entities or features",
                       total, max_bytes);
  *out = grpc_slice_malloc(total);
  uint8_t *p = GRPC_SLICE_START_PTR(*out);
  p = put_len(p, 0x0a, meta);
  p = put_len(p, 0x0a, names);
  for (size_t i = 0; i < n_cols; i++) p = put_bytes(p, 0x0a, cols[i].name, strlen(cols[i].name));
  for (size_t i = 0; i < n_views; i++) {
    p = put_len(p, 0x12, view_body(&views[i]));
    p = put_bytes(p, 0x0a, views[i].name, strlen(views[i].name));
    if (views[i].version) {
      *p++ = 0x10;
      p = ldr_pb_put_varint(p, (uint64_t)(int64_t)views[i].version);
    }
  }
  for (size_t i = 0; i < n_cols; i++) {
    const struct ldr_column *col = &cols[i];
    p = put_len(p, 0x12, vector_body(col, n_rows)); /* results = 2 */
    for (size_t r = 0; r < n_rows; r++)
      p = put_bytes(p, 0x0a, col->cells[r].value, col->cells[r].len);
    if (n_rows) {
      p = put_len(p, 0x12, n_rows);
      for (size_t r = 0; r < n_rows; r++) *p++ = (uint8_t)col->cells[r].status;
    }
    for (size_t r = 0; r < n_rows; r++) {
      const struct ldr_cell *cell = &col->cells[r];
      p = put_len(p, 0x1a, ts_body(cell));
      if (cell->has_ts && cell->ts.s) {
        *p++ = 0x08;
        p = ldr_pb_put_varint(p, (uint64_t)cell->ts.s);
      }
      if (cell->has_ts && cell->ts.ns) {
        *p++ = 0x10;
        p = ldr_pb_put_varint(p, (uint64_t)cell->ts.ns);
      }
    }
  }
  return LDR_OK;
}
