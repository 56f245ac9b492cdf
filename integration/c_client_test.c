/*
 * The real larder process driven by a client on the gRPC C core: it starts
 * `larder serve` on a free port with a fresh SQLite store, creates a view,
 * writes and reads with protobuf-c messages, checks statuses of bad calls,
 * and stops the server with SIGTERM (exit 0).
 * Usage: c_client_test PATH_TO_LARDER
 */
#include <arpa/inet.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "larder/v1/online_store.pb-c.h"

extern char **environ;

static char addr[64];
static char dir[64];
static pid_t server_pid;
static grpc_channel *channel;

struct reply {
  grpc_status_code status;
  char details[256];
  uint8_t *bytes;
  size_t len;
};

/* One unary call with a 10 s deadline; the reply bytes are malloc'ed. */
static void call(const char *method, const ProtobufCMessage *req, const uint8_t *raw,
                 size_t raw_len, struct reply *out) {
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice path = grpc_slice_from_static_string(method);
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN));
  grpc_call *c = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path, NULL,
                                          deadline, NULL);
  size_t n = req ? protobuf_c_message_get_packed_size(req) : raw_len;
  grpc_slice body = grpc_slice_malloc(n);
  if (req)
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(body));
  else if (n)
    memcpy(GRPC_SLICE_START_PTR(body), raw, n);
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
  grpc_slice_unref(body);
  grpc_byte_buffer *recv = NULL;
  grpc_metadata_array init_md, trail_md;
  grpc_metadata_array_init(&init_md);
  grpc_metadata_array_init(&trail_md);
  grpc_slice details;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
  ops[5].data.recv_status_on_client.status = &out->status;
  ops[5].data.recv_status_on_client.status_details = &details;
  assert_int_equal(grpc_call_start_batch(c, ops, 6, (void *)1, NULL), GRPC_CALL_OK);
  grpc_event ev =
      grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  assert_int_equal(ev.type, GRPC_OP_COMPLETE);
  char *d = grpc_slice_to_c_string(details);
  snprintf(out->details, sizeof out->details, "%s", d);
  gpr_free(d);
  grpc_slice_unref(details);
  out->bytes = NULL;
  out->len = 0;
  if (recv != NULL) {
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, recv);
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    out->len = GRPC_SLICE_LENGTH(s);
    out->bytes = malloc(out->len + 1);
    memcpy(out->bytes, GRPC_SLICE_START_PTR(s), out->len);
    grpc_slice_unref(s);
    grpc_byte_buffer_destroy(recv);
  }
  grpc_byte_buffer_destroy(send);
  grpc_metadata_array_destroy(&init_md);
  grpc_metadata_array_destroy(&trail_md);
  grpc_call_unref(c);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
}

static Feast__Types__EntityKey *driver_key(int64_t id, Feast__Types__EntityKey *ek,
                                           Feast__Types__Value *v, Feast__Types__Value **vp,
                                           char **names) {
  feast__types__entity_key__init(ek);
  feast__types__value__init(v);
  v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  v->int64_val = id;
  names[0] = "driver_id";
  vp[0] = v;
  ek->n_join_keys = ek->n_entity_values = 1;
  ek->join_keys = names;
  ek->entity_values = vp;
  return ek;
}

static void write_then_read(void **state) {
  (void)state;
  struct reply r;
  Larder__V1__UpdateRequest up = LARDER__V1__UPDATE_REQUEST__INIT;
  char *keep[] = {"c_view"};
  up.n_tables_to_keep = 1;
  up.tables_to_keep = keep;
  call("/larder.v1.OnlineStore/Update", &up.base, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_OK);
  free(r.bytes);

  /* Two rows: driver 1 and driver 2, features trips (int64) and name (string). */
  Feast__Types__EntityKey ek[2];
  Feast__Types__Value kv[2], *kvp[2][1];
  char *kn[2][1];
  Feast__Types__Value trips[2], name[2];
  Larder__V1__WriteRow__FeaturesEntry e[2][2], *ep[2][2];
  Larder__V1__WriteRow rows[2], *rp[2];
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = 1700000000;
  char *names[2] = {"driver one", "driver two"};
  for (int i = 0; i < 2; i++) {
    larder__v1__write_row__init(&rows[i]);
    rows[i].entity_key = driver_key(i + 1, &ek[i], &kv[i], kvp[i], kn[i]);
    feast__types__value__init(&trips[i]);
    trips[i].val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    trips[i].int64_val = 100 * (i + 1);
    feast__types__value__init(&name[i]);
    name[i].val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    name[i].string_val = names[i];
    for (int j = 0; j < 2; j++) {
      larder__v1__write_row__features_entry__init(&e[i][j]);
      e[i][j].key = j ? "name" : "trips";
      e[i][j].value = j ? &name[i] : &trips[i];
      ep[i][j] = &e[i][j];
    }
    rows[i].n_features = 2;
    rows[i].features = ep[i];
    rows[i].event_ts = &ts;
    rp[i] = &rows[i];
  }
  Larder__V1__OnlineWriteBatchRequest wr = LARDER__V1__ONLINE_WRITE_BATCH_REQUEST__INIT;
  wr.feature_view = "c_view";
  wr.n_rows = 2;
  wr.rows = rp;
  call("/larder.v1.OnlineStore/OnlineWriteBatch", &wr.base, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_OK);
  Larder__V1__OnlineWriteBatchResponse *wresp =
      larder__v1__online_write_batch_response__unpack(NULL, r.len, r.bytes);
  assert_non_null(wresp);
  assert_int_equal(wresp->rows_written, 2);
  larder__v1__online_write_batch_response__free_unpacked(wresp, NULL);
  free(r.bytes);

  /* Read driver 2, a missing driver 3, driver 1. */
  Feast__Types__EntityKey rk[3], *rkp[3];
  Feast__Types__Value rv[3], *rvp[3][1];
  char *rn[3][1];
  int64_t ids[3] = {2, 3, 1};
  for (int i = 0; i < 3; i++) rkp[i] = driver_key(ids[i], &rk[i], &rv[i], rvp[i], rn[i]);
  Larder__V1__OnlineReadRequest rr = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  rr.feature_view = "c_view";
  rr.n_entity_keys = 3;
  rr.entity_keys = rkp;
  call("/larder.v1.OnlineStore/OnlineRead", &rr.base, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_OK);
  Larder__V1__OnlineReadResponse *resp =
      larder__v1__online_read_response__unpack(NULL, r.len, r.bytes);
  assert_non_null(resp);
  assert_int_equal(resp->n_results, 3);
  assert_false(resp->results[1]->found);
  assert_int_equal(resp->results[1]->n_features, 0);
  for (int k = 0; k < 3; k += 2) {
    Larder__V1__ReadResult *res = resp->results[k];
    assert_true(res->found);
    assert_int_equal(res->event_ts->seconds, 1700000000);
    assert_int_equal(res->n_features, 2);
    for (size_t j = 0; j < res->n_features; j++) {
      Larder__V1__ReadResult__FeaturesEntry *fe = res->features[j];
      if (!strcmp(fe->key, "trips"))
        assert_int_equal(fe->value->int64_val, 100 * ids[k]);
      else
        assert_string_equal(fe->value->string_val, names[ids[k] - 1]);
    }
  }
  larder__v1__online_read_response__free_unpacked(resp, NULL);
  free(r.bytes);
}

static void bad_calls(void **state) {
  (void)state;
  struct reply r;
  Larder__V1__OnlineReadRequest rr = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  rr.feature_view = "no-such view";
  call("/larder.v1.OnlineStore/OnlineRead", &rr.base, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
  assert_memory_equal(r.details, "feature_view:", 13);
  rr.feature_view = "absent";
  call("/larder.v1.OnlineStore/OnlineRead", &rr.base, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_NOT_FOUND);
  static const uint8_t garbage[] = {0xff, 0xff};
  call("/larder.v1.OnlineStore/OnlineWriteBatch", NULL, garbage, sizeof garbage, &r);
  assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
  call("/larder.v1.OnlineStore/Missing", NULL, NULL, 0, &r);
  assert_int_equal(r.status, GRPC_STATUS_UNIMPLEMENTED);
}

static void sigterm_exits_cleanly(void **state) {
  (void)state;
  int status = 0;
  /* This client does not poll while it waits: close its connection first, or
   * the server waits for it to acknowledge the GOAWAY. */
  grpc_channel_destroy(channel);
  channel = NULL;
  kill(server_pid, SIGTERM);
  assert_int_equal(waitpid(server_pid, &status, 0), server_pid);
  server_pid = 0;
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(s, (struct sockaddr *)&a, sizeof a);
  getsockname(s, (struct sockaddr *)&a, &len);
  close(s);
  return ntohs(a.sin_port);
}

static int start_server(const char *larder) {
  char config[128];
  snprintf(dir, sizeof dir, "/tmp/larder-cclient-XXXXXX");
  if (mkdtemp(dir) == NULL) return -1;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
  snprintf(config, sizeof config, "%s/feature_store.yaml", dir);
  FILE *f = fopen(config, "w");
  if (f == NULL) return -1;
  fprintf(f,
          "project: cc\nonline_store:\n  path: online.db\nlarder:\n  listen: %s\n  workers: 2\n"
          "  admin_rpcs: true\n",
          addr);
  fclose(f);
  char *argv[] = {(char *)larder, "serve", "-c", config, NULL};
  if (posix_spawn(&server_pid, larder, NULL, NULL, argv, environ) != 0) return -1;
  /* Wait for the port with plain connects: a gRPC channel that meets a closed
   * port backs off for seconds before it tries again. */
  int up = 0;
  for (int i = 0; i < 400 && !up; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a.sin_port = htons((uint16_t)atoi(strchr(addr, ':') + 1));
    up = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    if (!up) usleep(25000);
  }
  if (!up) return -1;
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  channel = grpc_channel_create(addr, creds, NULL);
  grpc_channel_credentials_release(creds);
  /* Wait until the server answers: any status but UNAVAILABLE. */
  for (int i = 0; i < 200; i++) {
    struct reply r;
    Larder__V1__OnlineReadRequest rr = LARDER__V1__ONLINE_READ_REQUEST__INIT;
    call("/larder.v1.OnlineStore/OnlineRead", &rr.base, NULL, 0, &r);
    free(r.bytes);
    if (r.status != GRPC_STATUS_UNAVAILABLE) return 0;
    usleep(50000);
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: c_client_test PATH_TO_LARDER\n");
    return 2;
  }
  grpc_init();
  if (start_server(argv[1]) != 0) {
    fprintf(stderr, "larder did not start\n");
    if (server_pid) kill(server_pid, SIGKILL);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(write_then_read),
      cmocka_unit_test(bad_calls),
      cmocka_unit_test(sigterm_exits_cleanly),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (server_pid) kill(server_pid, SIGKILL);
  if (channel != NULL) grpc_channel_destroy(channel);
  grpc_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return failed;
}
