/*
 * `larder health`: a grpc.health.v1 client for container health checks, so
 * an image needs no probe binary of its own. One Check call, plaintext.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <string.h>

#include "service/server.h"

static const char *const status_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

/* The ServingStatus of a HealthCheckResponse (field 1, varint); -1 if malformed. */
static int decode_status(grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  const uint8_t *p = GRPC_SLICE_START_PTR(all);
  size_t n = GRPC_SLICE_LENGTH(all);
  int status = n == 0 ? 0 : -1; /* proto3: an absent field is 0 */
  if (n == 2 && p[0] == 0x08 && p[1] < 0x80) status = p[1];
  grpc_slice_unref(all);
  return status;
}

int ldr_health_probe(const char *target, const char *service, int timeout_ms) {
  size_t len = strlen(service);
  if (len > 127) {
    fprintf(stderr, "larder health: the service name is longer than 127 bytes\n");
    return 2;
  }
  uint8_t req[130] = {0x0a, (uint8_t)len};
  memcpy(req + 2, service, len);

  grpc_init();
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
  grpc_call *call =
      grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);

  grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len + 2);
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
  grpc_slice_unref(body);
  grpc_byte_buffer *recv = NULL;
  grpc_metadata_array initial, trailing;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailing);
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  ops[5].data.recv_status_on_client.status = &code;
  ops[5].data.recv_status_on_client.status_details = &details;
  int result = 1;
  if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_OP_COMPLETE && code == GRPC_STATUS_OK && recv != NULL) {
      int status = decode_status(recv);
      printf("%s\n", status >= 0 && status <= 3 ? status_names[status] : "malformed reply");
      result = status == 1 ? 0 : 1;
    } else {
      char *msg = grpc_slice_to_c_string(details);
      fprintf(stderr, "larder health: %s: status %d: %s\n", target, (int)code, msg);
      gpr_free(msg);
    }
  } else {
    fprintf(stderr, "larder health: the call could not start\n");
  }
  grpc_byte_buffer_destroy(send);
  if (recv != NULL) grpc_byte_buffer_destroy(recv);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailing);
  grpc_slice_unref(details);
  grpc_call_unref(call);
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  grpc_shutdown();
  return result;
}
