/* The gRPC server: worker threads, completion queues, the call state machine. */
#ifndef LDR_SERVER_H
#define LDR_SERVER_H

#include "config/config.h"

/*
 * Opens one backend per worker, serves until SIGTERM or SIGINT, drains the
 * calls in flight (for at most larder.grace_period_s), closes everything and
 * returns the process exit status: 0 after a clean stop, 1 when start-up fails.
 * The caller must have blocked SIGTERM and SIGINT in every thread.
 */
int ldr_server_run(const struct ldr_config *cfg);

/* One grpc.health.v1.Health/Check of `service` ("" for the whole server) at
 * `target` over plaintext; prints the ServingStatus. Returns 0 when SERVING,
 * 1 otherwise (errors on stderr), 2 for a service name too long. */
int ldr_health_probe(const char *target, const char *service, int timeout_ms);

#endif
