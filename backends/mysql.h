/* Feast's MySQL online store (MySQL or MariaDB): its options and its ops. */
#ifndef LDR_MYSQL_H
#define LDR_MYSQL_H

#include "backends/backend.h"

/* online_store keys of `type: mysql`. */
struct ldr_mysql_options {
  char *host;                        /* "127.0.0.1"; always reached over TCP */
  int port;                          /* 3306 */
  char *user, *password;             /* "test", "test": pymysql's defaults in Feast */
  char *database;                    /* "feast" */
  char *ssl_ca, *ssl_cert, *ssl_key; /* any of them turns TLS on */
  char **read_hosts; /* larder.read_hosts: "host:port" of replicas for reads, NULL-terminated */
};

extern const struct ldr_store_schema ldr_mysql_schema;
extern const struct ldr_backend_ops ldr_mysql_ops;

/* Feast's SQL registry in this store's database, read-only (mysql_reader.c). */
extern const struct ldr_reader_ops ldr_mysql_reader;

#endif
