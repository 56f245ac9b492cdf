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

#endif
