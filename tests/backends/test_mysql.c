/* backends/mysql.c: the online_store keys of Feast's MySQL store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "backends/mysql.h"
#include "tests/backends/store_options.h"

#define OPTS(cfg) ((const struct ldr_mysql_options *)(cfg).store.opts)

static void feast_keys_and_defaults(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  setenv("PGPASS", "s3cr:et$x", 1);
  if (load_for(&ldr_mysql_schema, "project: p\nonline_store: mysql\n", &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  /* pymysql's defaults, which Feast's store ends up with. */
  assert_string_equal(OPTS(cfg)->host, "127.0.0.1");
  assert_int_equal(OPTS(cfg)->port, 3306);
  assert_string_equal(OPTS(cfg)->user, "test");
  assert_string_equal(OPTS(cfg)->password, "test");
  assert_string_equal(OPTS(cfg)->database, "feast");
  assert_null(OPTS(cfg)->ssl_ca);
  ldr_config_destroy(&cfg);
  static const char text[] =
      "project: p\nonline_store:\n  type: "
      "feast.infra.online_stores.mysql_online_store.mysql.MySQLOnlineStore\n"
      "  host: db\n  port: 3307\n  user: u\n  password: ${PGPASS}\n  database: d\n"
      "  batch_write: true\n  batch_size: 100\n  ssl_ca: /ca.pem\n  ssl_cert: c.pem\n"
      "  ssl_key: k.pem\n";
  if (load_for(&ldr_mysql_schema, text, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(cfg.store.type_name, "mysql");
  assert_string_equal(OPTS(cfg)->host, "db");
  assert_int_equal(OPTS(cfg)->port, 3307);
  assert_string_equal(OPTS(cfg)->password, "s3cr:et$x");
  assert_string_equal(OPTS(cfg)->database, "d");
  assert_string_equal(OPTS(cfg)->ssl_ca, "/ca.pem");
  assert_string_equal(OPTS(cfg)->ssl_key, "k.pem");
  ldr_config_destroy(&cfg);
  assert_int_equal(load_for(&ldr_mysql_schema,
                            "project: p\nonline_store:\n  type: mysql\n  batch_write: sometimes\n",
                            &cfg, &err),
                   -1);
  assert_string_equal(err.msg, "fs.yaml:4:16: online_store.batch_write: expected true or false");
  ldr_config_destroy(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(feast_keys_and_defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
