/*
 * larder-echo: the transport's ceiling. A server on the same gRPC C core with
 * larder's threading and call sequence (a completion queue per worker, at
 * least 64 calls requested per method, PAYLOAD_NONE then RECV_MESSAGE, one
 * reply batch), which answers OnlineRead and OnlineWriteBatch with fixed
 * reply bytes — larder's own reply for the shape being measured — and does no
 * other work: no decoding, no database.
 *
 *   larder-echo [--listen HOST:PORT] [--workers N] [--reply FILE]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state { REQUESTED, RECEIVING, SENDING };

struct ctx {
  enum state state;
  int method;
  grpc_completion_queue *cq;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload, *reply;
  int cancelled;
};

static grpc_server *server;
static void *methods[2];
static grpc_slice reply_bytes;
static atomic_int stopping;

static void request(struct ctx *c) {
  c->state = REQUESTED;
  c->call = NULL;
  c->payload = NULL;
  c->md.count = 0;
  grpc_server_request_registered_call(server, methods[c->method], &c->call, &c->deadline, &c->md,
                                      NULL, c->cq, c->cq, c);
}

static void *worker(void *arg) {
  grpc_completion_queue *cq = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    struct ctx *c = ev.tag;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    if (c->state == REQUESTED) {
      if (!ev.success) continue;
      ops[0].op = GRPC_OP_RECV_MESSAGE;
      ops[0].data.recv_message.recv_message = &c->payload;
      c->state = RECEIVING;
      if (grpc_call_start_batch(c->call, ops, 1, c, NULL) == GRPC_CALL_OK) continue;
    } else if (c->state == RECEIVING && ev.success) {
      c->reply = grpc_raw_byte_buffer_create(&reply_bytes, 1);
      ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
      ops[1].op = GRPC_OP_SEND_MESSAGE;
      ops[1].data.send_message.send_message = c->reply;
      ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
      ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
      ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
      ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
      c->state = SENDING;
      if (grpc_call_start_batch(c->call, ops, 4, c, NULL) == GRPC_CALL_OK) continue;
    }
    if (c->reply) grpc_byte_buffer_destroy(c->reply);
    if (c->payload) grpc_byte_buffer_destroy(c->payload);
    c->reply = c->payload = NULL;
    c->md.count = 0;
    grpc_call_unref(c->call);
    if (!atomic_load(&stopping)) request(c);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:6567", *reply_file = NULL;
  int workers = 0;
  static const struct option lopts[] = {
      {"listen", 1, 0, 'l'}, {"workers", 1, 0, 'w'}, {"reply", 1, 0, 'r'}, {0, 0, 0, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "", lopts, NULL);
    if (c == -1) break;
    if (c == 'l')
      listen = optarg;
    else if (c == 'w')
      workers = atoi(optarg);
    else if (c == 'r')
      reply_file = optarg;
    else {
      fprintf(stderr, "usage: larder-echo [--listen HOST:PORT] [--workers N] [--reply FILE]\n");
      return 2;
    }
  }
  if (workers <= 0) { /* as larder: the CPUs in the affinity mask */
    cpu_set_t set;
    workers = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  }
  reply_bytes = grpc_empty_slice();
  if (reply_file) {
    FILE *f = fopen(reply_file, "rb");
    if (f == NULL) {
      perror(reply_file);
      return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    reply_bytes = grpc_slice_malloc((size_t)n);
    if (fread(GRPC_SLICE_START_PTR(reply_bytes), 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  grpc_init();
  grpc_arg args[2] = {{GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 4194304}},
                      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = 4194304}}};
  grpc_channel_args ca = {2, args};
  server = grpc_server_create(&ca, NULL);
  methods[0] = grpc_server_register_method(server, "/larder.v1.OnlineStore/OnlineRead", NULL,
                                           GRPC_SRM_PAYLOAD_NONE, 0);
  methods[1] = grpc_server_register_method(server, "/larder.v1.OnlineStore/OnlineWriteBatch", NULL,
                                           GRPC_SRM_PAYLOAD_NONE, 0);
  grpc_completion_queue **cqs = calloc((size_t)workers, sizeof *cqs);
  for (int i = 0; i < workers; i++) {
    cqs[i] = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server, cqs[i], NULL);
  }
  grpc_completion_queue *shutdown_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(server, shutdown_cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  if (!grpc_server_add_http2_port(server, listen, creds)) {
    fprintf(stderr, "cannot listen on %s\n", listen);
    return 1;
  }
  grpc_server_credentials_release(creds);
  grpc_server_start(server);
  int per = (64 + workers - 1) / workers;
  if (per < 8) per = 8;
  struct ctx *ctxs = calloc((size_t)(workers * per * 2), sizeof *ctxs);
  pthread_t *threads = calloc((size_t)workers, sizeof *threads);
  for (int i = 0; i < workers; i++) {
    for (int j = 0; j < per * 2; j++) {
      struct ctx *c = &ctxs[i * per * 2 + j];
      c->cq = cqs[i];
      c->method = j % 2;
      grpc_metadata_array_init(&c->md);
      request(c);
    }
    pthread_create(&threads[i], NULL, worker, cqs[i]);
  }
  fprintf(stderr, "larder-echo listening on %s, %d workers, %zu-byte replies\n", listen, workers,
          GRPC_SLICE_LENGTH(reply_bytes));
  int sig;
  sigwait(&sigs, &sig);
  atomic_store(&stopping, 1);
  grpc_server_shutdown_and_notify(server, shutdown_cq, NULL);
  grpc_server_cancel_all_calls(server);
  grpc_completion_queue_next(shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  grpc_server_destroy(server);
  for (int i = 0; i < workers; i++) grpc_completion_queue_shutdown(cqs[i]);
  grpc_completion_queue_shutdown(shutdown_cq);
  for (int i = 0; i < workers; i++) {
    pthread_join(threads[i], NULL);
    grpc_completion_queue_destroy(cqs[i]);
  }
  while (grpc_completion_queue_next(shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(shutdown_cq);
  for (int i = 0; i < workers * per * 2; i++) grpc_metadata_array_destroy(&ctxs[i].md);
  grpc_slice_unref(reply_bytes);
  free(ctxs);
  free(threads);
  free(cqs);
  grpc_shutdown();
  return 0;
}
