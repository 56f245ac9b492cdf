/*
 * larder-bench: a closed-loop load generator on the gRPC C core.
 *
 *   larder-bench [--target HOST:PORT] [--method read|write|gof] [--view NAME]
 *                [--keys K] [--features F] [--rows R] [--key-space N]
 *                [--concurrency C] [--channels N] [--warmup S] [--duration S]
 *                [--rate QPS] [--preload] [--label TEXT]
 *                [--dump-request FILE] [--dump-reply FILE] [--cpu-pid NAME=PID]...
 *                [--requested]
 *
 * Reads ask for K random keys of a view whose entities have F features (all
 * of them, or with --requested naming f0..f<F-1> as Feast's online_read does);
 * writes send R rows of F features. `gof` is the same read through Feast's
 * ServingService/GetOnlineFeatures: features "VIEW:f0".."VIEW:f<F-1>" for a
 * driver_id column of K random keys (it needs larder's `registry`); with
 * --view V1,V2,... the features of every view listed. Requests are encoded
 * before the run (a pool of 512), so the client spends its time on gRPC, not
 * on protobuf.
 * C calls are kept outstanding on one completion queue, spread over N
 * channels (each its own TCP connection). With --rate the calls start on a
 * fixed schedule and latency is measured from the scheduled start, so a slow
 * server cannot hide its queueing (no coordinated omission).
 *
 * --preload creates the view (Update) and writes every entity of the key
 * space before the run. --dump-request writes one request as a gRPC frame
 * (for h2load); --dump-reply writes the reply to one request (for the echo
 * server). Prints a text summary and one JSON line.
 *
 * --cpu-pid NAME=PID (up to 4): the CPU time of that process and of what it
 * started (/proc) over the measured seconds, per call answered OK, is in the
 * JSON line as "cpu_us_per_call": {"NAME": ...}. The line's "ok_all" counts
 * every call answered OK, warm-up included (round trips per call at a proxy).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feast/serving/ServingService.pb-c.h"
#include "larder/v1/online_store.pb-c.h"
#include "proc_cpu.h"

#define POOL 512

struct opts {
  const char *target, *method, *view, *label;
  int keys, features, rows, key_space, concurrency, channels, preload, requested;
  double warmup, duration, rate;
  const char *dump_request, *dump_reply;
};

struct slot {
  grpc_call *call;
  int channel;
  grpc_byte_buffer *send, *recv;
  grpc_metadata_array init_md, trail_md;
  grpc_status_code status;
  grpc_slice details;
  uint64_t t0; /* when the call started, or was scheduled to */
};

static grpc_channel **channels;
static void **registered;
static grpc_completion_queue *cq;
static grpc_slice pool[POOL];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* ---- requests ---------------------------------------------------------- */

struct key_storage {
  Feast__Types__EntityKey ek;
  Feast__Types__Value v, *vp[1];
  char *names[1];
};

static void make_key(struct key_storage *k, int64_t id) {
  feast__types__entity_key__init(&k->ek);
  feast__types__value__init(&k->v);
  k->v.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  k->v.int64_val = id;
  k->vp[0] = &k->v;
  k->names[0] = "driver_id";
  k->ek.n_join_keys = k->ek.n_entity_values = 1;
  k->ek.join_keys = k->names;
  k->ek.entity_values = k->vp;
}

static grpc_slice pack(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  grpc_slice s = grpc_slice_malloc(n);
  protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
  return s;
}

static grpc_slice read_request(const struct opts *o) {
  struct key_storage *ks = calloc((size_t)o->keys, sizeof *ks);
  Feast__Types__EntityKey **eks = calloc((size_t)o->keys, sizeof *eks);
  for (int i = 0; i < o->keys; i++) {
    make_key(&ks[i], (int64_t)(rnd() % (uint64_t)o->key_space));
    eks[i] = &ks[i].ek;
  }
  Larder__V1__OnlineReadRequest req = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  req.feature_view = (char *)o->view;
  req.n_entity_keys = (size_t)o->keys;
  req.entity_keys = eks;
  /* --requested: the features named f0..f<F-1>, as Feast's online_read is
   * called by get_online_features; else every feature of the view. */
  char(*names)[16] = calloc((size_t)o->features, sizeof *names);
  char **refs = calloc((size_t)o->features, sizeof *refs);
  for (int f = 0; o->requested && f < o->features; f++) {
    snprintf(names[f], sizeof names[f], "f%d", f);
    refs[f] = names[f];
  }
  if (o->requested) {
    req.n_requested_features = (size_t)o->features;
    req.requested_features = refs;
  }
  grpc_slice s = pack(&req.base);
  free(refs);
  free(names);
  free(ks);
  free(eks);
  return s;
}

/* A GetOnlineFeatures request: K random driver_id values and F references VIEW:f<i> for
 * each VIEW of the comma-separated list o->view. */
static grpc_slice gof_request(const struct opts *o) {
  Feast__Types__Value *vals = calloc((size_t)o->keys, sizeof *vals);
  Feast__Types__Value **valp = calloc((size_t)o->keys, sizeof *valp);
  for (int i = 0; i < o->keys; i++) {
    feast__types__value__init(&vals[i]);
    vals[i].val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    vals[i].int64_val = (int64_t)(rnd() % (uint64_t)o->key_space);
    valp[i] = &vals[i];
  }
  Feast__Types__RepeatedValue column = FEAST__TYPES__REPEATED_VALUE__INIT;
  column.n_val = (size_t)o->keys;
  column.val = valp;
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry entry =
      FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT;
  entry.key = "driver_id";
  entry.value = &column;
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *entries[1] = {&entry};
  int nviews = 1;
  for (const char *p = o->view; *p; p++) nviews += *p == ',';
  size_t nrefs = (size_t)nviews * (size_t)o->features, r = 0;
  char **refs = calloc(nrefs, sizeof *refs);
  for (const char *v = o->view; r < nrefs; v += strcspn(v, ",") + 1) {
    int len = (int)strcspn(v, ",");
    for (int f = 0; f < o->features; f++) {
      size_t n = (size_t)len + 16;
      refs[r] = malloc(n);
      snprintf(refs[r++], n, "%.*s:f%d", len, v, f);
    }
  }
  Feast__Serving__FeatureList list = FEAST__SERVING__FEATURE_LIST__INIT;
  list.n_val = nrefs;
  list.val = refs;
  Feast__Serving__GetOnlineFeaturesRequest req = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
  req.n_entities = 1;
  req.entities = entries;
  req.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
  req.features = &list;
  req.full_feature_names = nviews > 1; /* f0 of g0 and f0 of g1 would collide */
  grpc_slice s = pack(&req.base);
  for (size_t f = 0; f < nrefs; f++) free(refs[f]);
  free(refs);
  free(vals);
  free(valp);
  return s;
}

/* `rows` rows with ids from `first` (or random ids when first < 0), each with o->features features.
 */
static grpc_slice write_request(const struct opts *o, int rows, int64_t first) {
  struct key_storage *ks = calloc((size_t)rows, sizeof *ks);
  Larder__V1__WriteRow *r = calloc((size_t)rows, sizeof *r),
                       **rp = calloc((size_t)rows, sizeof *rp);
  size_t nf = (size_t)rows * (size_t)o->features;
  Feast__Types__Value *vals = calloc(nf, sizeof *vals);
  Larder__V1__WriteRow__FeaturesEntry *ents = calloc(nf, sizeof *ents),
                                      **entp = calloc(nf, sizeof *entp);
  char(*names)[16] = calloc((size_t)o->features, sizeof *names);
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = 1700000000;
  for (int f = 0; f < o->features; f++) snprintf(names[f], sizeof names[f], "f%d", f);
  for (int i = 0; i < rows; i++) {
    make_key(&ks[i], first >= 0 ? first + i : (int64_t)(rnd() % (uint64_t)o->key_space));
    larder__v1__write_row__init(&r[i]);
    r[i].entity_key = &ks[i].ek;
    r[i].event_ts = &ts;
    r[i].n_features = (size_t)o->features;
    r[i].features = &entp[(size_t)i * (size_t)o->features];
    for (int f = 0; f < o->features; f++) {
      size_t k = (size_t)i * (size_t)o->features + (size_t)f;
      feast__types__value__init(&vals[k]);
      /* Typical feature values: rates (double) and counts (int64). */
      if (f % 2 == 0) {
        vals[k].val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
        vals[k].double_val = (double)(rnd() % 100000) / 1000.0;
      } else {
        vals[k].val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
        vals[k].int64_val = (int64_t)(rnd() % 100000);
      }
      larder__v1__write_row__features_entry__init(&ents[k]);
      ents[k].key = names[f];
      ents[k].value = &vals[k];
      entp[k] = &ents[k];
    }
    rp[i] = &r[i];
  }
  Larder__V1__OnlineWriteBatchRequest req = LARDER__V1__ONLINE_WRITE_BATCH_REQUEST__INIT;
  req.feature_view = (char *)o->view;
  req.n_rows = (size_t)rows;
  req.rows = rp;
  grpc_slice s = pack(&req.base);
  free(ks);
  free(r);
  free(rp);
  free(vals);
  free(ents);
  free(entp);
  free(names);
  return s;
}

/* ---- calls --------------------------------------------------------------- */

static const char *method_path(const char *m) {
  if (!strcmp(m, "write")) return "/larder.v1.OnlineStore/OnlineWriteBatch";
  if (!strcmp(m, "update")) return "/larder.v1.OnlineStore/Update";
  if (!strcmp(m, "gof")) return "/feast.serving.ServingService/GetOnlineFeatures";
  return "/larder.v1.OnlineStore/OnlineRead";
}

/* One blocking call; returns the status and (when reply != NULL) the reply bytes. */
static grpc_status_code unary(int channel, const char *path, grpc_slice req, grpc_slice *reply,
                              char *details, size_t cap) {
  grpc_completion_queue *q = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method = grpc_slice_from_static_string(path);
  grpc_call *c = grpc_channel_create_call(
      channels[channel], NULL, GRPC_PROPAGATE_DEFAULTS, q, method, NULL,
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(120, GPR_TIMESPAN)), NULL);
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req, 1), *recv = NULL;
  grpc_metadata_array im, tm;
  grpc_metadata_array_init(&im);
  grpc_metadata_array_init(&tm);
  grpc_status_code status;
  grpc_slice d;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &im;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &tm;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &d;
  grpc_call_start_batch(c, ops, 6, (void *)1, NULL);
  grpc_completion_queue_pluck(q, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (details) {
    char *s = grpc_slice_to_c_string(d);
    snprintf(details, cap, "%s", s);
    gpr_free(s);
  }
  if (reply != NULL && recv != NULL) {
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, recv);
    *reply = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
  }
  grpc_slice_unref(d);
  grpc_byte_buffer_destroy(send);
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_metadata_array_destroy(&im);
  grpc_metadata_array_destroy(&tm);
  grpc_call_unref(c);
  grpc_completion_queue_shutdown(q);
  grpc_completion_queue_destroy(q);
  return status;
}

static void start(struct slot *s, grpc_slice req, uint64_t t0) {
  s->t0 = t0;
  s->call = grpc_channel_create_registered_call(channels[s->channel], NULL, GRPC_PROPAGATE_DEFAULTS,
                                                cq, registered[s->channel],
                                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  s->send = grpc_raw_byte_buffer_create(&req, 1);
  s->recv = NULL;
  s->init_md.count = 0;
  s->trail_md.count = 0;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = s->send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &s->recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &s->trail_md;
  ops[5].data.recv_status_on_client.status = &s->status;
  ops[5].data.recv_status_on_client.status_details = &s->details;
  if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
    fprintf(stderr, "start_batch failed\n");
    exit(1);
  }
}

static void finish(struct slot *s) {
  grpc_slice_unref(s->details);
  grpc_byte_buffer_destroy(s->send);
  if (s->recv) grpc_byte_buffer_destroy(s->recv);
  grpc_call_unref(s->call);
  s->call = NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)ceil(p / 100.0 * (double)n);
  return v[i ? i - 1 : 0];
}

static const char *code_name(int c) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  return c >= 0 && c <= 16 ? names[c] : "OTHER";
}

static void usage(void) {
  fprintf(stderr,
          "usage: larder-bench [--target HOST:PORT] [--method read|write|gof] [--view NAME[,...]]\n"
          "                    [--keys K] [--features F] [--rows R] [--key-space N]\n"
          "                    [--concurrency C] [--channels N] [--warmup S] [--duration S]\n"
          "                    [--rate QPS] [--preload] [--label TEXT] [--dump-request FILE]\n"
          "                    [--dump-reply FILE] [--cpu-pid NAME=PID]... [--requested]\n");
  exit(2);
}

static void write_file(const char *path, const void *p, size_t n, int grpc_frame) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  if (grpc_frame) { /* 0 (uncompressed) + big-endian length, as on the wire */
    unsigned char h[5] = {0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    fwrite(h, 1, 5, f);
  }
  fwrite(p, 1, n, f);
  fclose(f);
}

static void preload(const struct opts *o) {
  char details[256];
  Larder__V1__UpdateRequest up = LARDER__V1__UPDATE_REQUEST__INIT;
  char *keep[] = {(char *)o->view};
  up.n_tables_to_keep = 1;
  up.tables_to_keep = keep;
  grpc_slice s = pack(&up.base);
  grpc_status_code st = unary(0, method_path("update"), s, NULL, details, sizeof details);
  grpc_slice_unref(s);
  if (st != GRPC_STATUS_OK) {
    fprintf(stderr, "preload: Update: %s: %s\n", code_name(st), details);
    exit(1);
  }
  int batch = 200000 / (o->features > 0 ? o->features : 1);
  if (batch > 2000) batch = 2000;
  for (int first = 0; first < o->key_space; first += batch) {
    int n = o->key_space - first < batch ? o->key_space - first : batch;
    s = write_request(o, n, first);
    st = unary(0, method_path("write"), s, NULL, details, sizeof details);
    grpc_slice_unref(s);
    if (st != GRPC_STATUS_OK) {
      fprintf(stderr, "preload: write: %s: %s\n", code_name(st), details);
      exit(1);
    }
  }
}

/* The processes whose CPU time is measured (--cpu-pid), and their readings. */
static int n_cpu, cpu_pid[4];
static char cpu_name[4][32];
static double cpu_at_rec[4], cpu_at_end[4];

static void cpu_sample(double *out) {
  for (int i = 0; i < n_cpu; i++) out[i] = proc_tree_cpu_s(cpu_pid[i]);
}

int main(int argc, char **argv) {
  struct opts o = {.target = "127.0.0.1:6566",
                   .method = "read",
                   .view = "bench",
                   .label = "larder",
                   .keys = 1,
                   .features = 10,
                   .rows = 100,
                   .key_space = 10000,
                   .concurrency = 16,
                   .channels = 0,
                   .warmup = 1,
                   .duration = 5};
  static const struct option lopts[] = {{"target", 1, 0, 't'},
                                        {"method", 1, 0, 'm'},
                                        {"view", 1, 0, 'v'},
                                        {"keys", 1, 0, 'k'},
                                        {"features", 1, 0, 'f'},
                                        {"rows", 1, 0, 'r'},
                                        {"key-space", 1, 0, 'K'},
                                        {"concurrency", 1, 0, 'c'},
                                        {"channels", 1, 0, 'n'},
                                        {"warmup", 1, 0, 'w'},
                                        {"duration", 1, 0, 'd'},
                                        {"rate", 1, 0, 'R'},
                                        {"preload", 0, 0, 'p'},
                                        {"label", 1, 0, 'l'},
                                        {"dump-request", 1, 0, 'Q'},
                                        {"dump-reply", 1, 0, 'P'},
                                        {"cpu-pid", 1, 0, 'C'},
                                        {"requested", 0, 0, 'q'},
                                        {0, 0, 0, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "", lopts, NULL);
    if (c == -1) break;
    switch (c) {
    case 't':
      o.target = optarg;
      break;
    case 'm':
      o.method = optarg;
      break;
    case 'v':
      o.view = optarg;
      break;
    case 'k':
      o.keys = atoi(optarg);
      break;
    case 'f':
      o.features = atoi(optarg);
      break;
    case 'r':
      o.rows = atoi(optarg);
      break;
    case 'K':
      o.key_space = atoi(optarg);
      break;
    case 'c':
      o.concurrency = atoi(optarg);
      break;
    case 'n':
      o.channels = atoi(optarg);
      break;
    case 'w':
      o.warmup = atof(optarg);
      break;
    case 'd':
      o.duration = atof(optarg);
      break;
    case 'R':
      o.rate = atof(optarg);
      break;
    case 'p':
      o.preload = 1;
      break;
    case 'q':
      o.requested = 1;
      break;
    case 'l':
      o.label = optarg;
      break;
    case 'Q':
      o.dump_request = optarg;
      break;
    case 'P':
      o.dump_reply = optarg;
      break;
    case 'C': {
      const char *eq = strchr(optarg, '=');
      if (eq == NULL || n_cpu == 4 || atoi(eq + 1) <= 0) usage();
      snprintf(cpu_name[n_cpu], sizeof cpu_name[n_cpu], "%.*s", (int)(eq - optarg), optarg);
      cpu_pid[n_cpu++] = atoi(eq + 1);
      break;
    }
    default:
      usage();
    }
  }
  int write = !strcmp(o.method, "write"), gof = !strcmp(o.method, "gof");
  if ((!write && !gof && strcmp(o.method, "read")) || o.keys < 1 || o.features < 1 ||
      o.concurrency < 1 || o.key_space < 1 || o.rows < 1)
    usage();
  if (o.channels <= 0) o.channels = o.concurrency < 4 ? o.concurrency : 4;

  grpc_init();
  channels = calloc((size_t)o.channels, sizeof *channels);
  registered = calloc((size_t)o.channels, sizeof *registered);
  for (int i = 0; i < o.channels; i++) {
    /* A distinct argument per channel: each gets its own TCP connection. */
    grpc_arg args[2] = {{GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
                        {GRPC_ARG_INTEGER, "larder.bench.channel", {.integer = i}}};
    grpc_channel_args ca = {2, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    channels[i] = grpc_channel_create(o.target, creds, &ca);
    grpc_channel_credentials_release(creds);
    registered[i] = grpc_channel_register_call(channels[i], method_path(o.method), NULL, NULL);
  }
  if (o.preload) preload(&o);
  for (int i = 0; i < POOL; i++)
    pool[i] = write ? write_request(&o, o.rows, -1) : gof ? gof_request(&o) : read_request(&o);
  if (o.dump_request)
    write_file(o.dump_request, GRPC_SLICE_START_PTR(pool[0]), GRPC_SLICE_LENGTH(pool[0]), 1);
  if (o.dump_reply) {
    grpc_slice reply = grpc_empty_slice();
    char details[256];
    grpc_status_code st = unary(0, method_path(o.method), pool[0], &reply, details, sizeof details);
    if (st != GRPC_STATUS_OK) {
      fprintf(stderr, "dump-reply: %s: %s\n", code_name(st), details);
      return 1;
    }
    write_file(o.dump_reply, GRPC_SLICE_START_PTR(reply), GRPC_SLICE_LENGTH(reply), 0);
    grpc_slice_unref(reply);
  }
  if (o.duration <= 0) return 0;

  cq = grpc_completion_queue_create_for_next(NULL);
  struct slot *slots = calloc((size_t)o.concurrency, sizeof *slots);
  size_t cap = 1 << 20, nlat = 0;
  uint32_t *lat = malloc(cap * sizeof *lat);
  unsigned long long codes[18] = {0}, done = 0, next_req = 0, ok_all = 0;
  int sampled = 0; /* 1: at the start of the measured seconds, 2: at their end too */
  uint64_t t_start = now_ns();
  uint64_t t_rec = t_start + (uint64_t)(o.warmup * 1e9),
           t_end = t_rec + (uint64_t)(o.duration * 1e9);
  double interval = o.rate > 0 ? 1e9 / o.rate : 0;
  uint64_t next_at = t_start;
  int outstanding = 0, idle = 0;
  int *idle_list = calloc((size_t)o.concurrency, sizeof *idle_list);
  for (int i = 0; i < o.concurrency; i++) {
    slots[i].channel = i % o.channels;
    grpc_metadata_array_init(&slots[i].init_md);
    grpc_metadata_array_init(&slots[i].trail_md);
    idle_list[idle++] = i;
  }
  for (;;) {
    uint64_t now = now_ns();
    if (n_cpu && sampled == 0 && now >= t_rec) {
      cpu_sample(cpu_at_rec);
      sampled = 1;
    }
    if (n_cpu && sampled == 1 && now >= t_end) {
      cpu_sample(cpu_at_end);
      sampled = 2;
    }
    /* Start calls while slots are free (and, with --rate, while their time has come). */
    while (idle > 0 && now < t_end && (interval == 0 || next_at <= now)) {
      int i = idle_list[--idle];
      start(&slots[i], pool[next_req++ % POOL], interval ? next_at : now);
      next_at += (uint64_t)interval;
      outstanding++;
    }
    if (outstanding == 0 && now >= t_end) break;
    gpr_timespec until = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    uint64_t wake = 0; /* the next scheduled start or CPU sample, if any */
    if (interval && idle > 0 && now < t_end) wake = next_at > now ? next_at : now;
    if (n_cpu && sampled < 2) {
      uint64_t at = sampled == 0 ? t_rec : t_end;
      if (wake == 0 || at < wake) wake = at;
    }
    if (wake)
      until =
          gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                       gpr_time_from_nanos((int64_t)(wake > now ? wake - now : 0), GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(cq, until, NULL);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    struct slot *s = ev.tag;
    uint64_t t1 = now_ns();
    int code = ev.success ? (int)s->status : 17;
    if (code == 0 && s->recv == NULL) code = 17;
    ok_all += code == 0;
    finish(s);
    outstanding--;
    idle_list[idle++] = (int)(s - slots);
    if (s->t0 >= t_rec && t1 <= t_end) {
      codes[code <= 17 ? code : 17]++;
      done++;
      if (code == 0) {
        if (nlat == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
        uint64_t us = (t1 - s->t0) / 1000;
        lat[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
      }
    }
  }
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  double qps = (double)codes[0] / o.duration;
  unsigned long long errors = done - codes[0];
  printf("%s %s keys=%d features=%d rows=%d c=%d: %.0f QPS, p50 %u us, p90 %u us, p99 %u us, p99.9 "
         "%u us, "
         "max %u us, errors %llu\n",
         o.label, o.method, o.keys, o.features, write ? o.rows : 0, o.concurrency, qps,
         pct(lat, nlat, 50), pct(lat, nlat, 90), pct(lat, nlat, 99), pct(lat, nlat, 99.9),
         nlat ? lat[nlat - 1] : 0, errors);
  printf(
      "{\"label\":\"%s\",\"method\":\"%s\",\"keys\":%d,\"features\":%d,\"rows\":%d,\"concurrency\":"
      "%d,"
      "\"channels\":%d,\"rate\":%.0f,\"duration_s\":%.1f,\"qps\":%.1f,\"p50_us\":%u,\"p90_us\":%u,"
      "\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,\"calls\":%llu,\"errors\":{",
      o.label, o.method, write ? 0 : o.keys, o.features, write ? o.rows : 0, o.concurrency,
      o.channels, o.rate, o.duration, qps, pct(lat, nlat, 50), pct(lat, nlat, 90),
      pct(lat, nlat, 99), pct(lat, nlat, 99.9), nlat ? lat[nlat - 1] : 0, done);
  int first = 1;
  for (int c = 1; c <= 17; c++)
    if (codes[c]) {
      printf("%s\"%s\":%llu", first ? "" : ",", c == 17 ? "TRANSPORT" : code_name(c), codes[c]);
      first = 0;
    }
  printf("},\"ok_all\":%llu", ok_all);
  if (n_cpu && sampled == 2) {
    printf(",\"cpu_us_per_call\":{");
    for (int i = 0; i < n_cpu; i++)
      printf("%s\"%s\":%.2f", i ? "," : "", cpu_name[i],
             codes[0] && cpu_at_rec[i] >= 0 && cpu_at_end[i] >= 0
                 ? (cpu_at_end[i] - cpu_at_rec[i]) * 1e6 / (double)codes[0]
                 : -1.0);
    printf("}");
  }
  printf("}\n");
  for (int i = 0; i < POOL; i++) grpc_slice_unref(pool[i]);
  for (int i = 0; i < o.concurrency; i++) {
    grpc_metadata_array_destroy(&slots[i].init_md);
    grpc_metadata_array_destroy(&slots[i].trail_md);
  }
  for (int i = 0; i < o.channels; i++) grpc_channel_destroy(channels[i]);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  free(slots);
  free(lat);
  free(idle_list);
  free(channels);
  free(registered);
  grpc_shutdown();
  return errors ? 3 : 0;
}
