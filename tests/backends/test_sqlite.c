/* backends/sqlite.c: the online_store keys of Feast's SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sqlite.h"
#include "tests/backends/store_options.h"

#define OPTS(cfg) ((const struct ldr_sqlite_options *)(cfg).store.opts)

static void feast_keys_and_defaults(void **state) {
  (void)state;
  static const struct {
    const char *text, *path;
  } cases[] = {
      {"project: p\n", "/repo/data/online.db"}, /* Feast's default store and path */
      {"project: p\nonline_store: sqlite\n", "/repo/data/online.db"},
      {"project: p\nonline_store: feast.infra.online_stores.sqlite.SqliteOnlineStore\n",
       "/repo/data/online.db"},
      {"project: p\nonline_store:\n  path: sub/online.db\n", "/repo/sub/online.db"},
      {"project: p\nonline_store:\n  path:\n", "/repo/data/online.db"},
      {"project: p\nonline_store:\n  type: sqlite\n  path: /var/lib/x.db\n  vector_enabled: "
       "false\n  similarity: cosine\n  text_search_enabled: no\n"
       "  enable_openai_compatible_store: ~\n",
       "/var/lib/x.db"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_sqlite_schema, cases[i].text, &cfg, &err) != 0)
      fail_msg("case %zu: %s", i, err.msg);
    assert_ptr_equal(cfg.store.schema, &ldr_sqlite_schema);
    assert_string_equal(OPTS(cfg)->path, cases[i].path);
    ldr_config_destroy(&cfg);
  }
}

static void errors(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"project: p\nonline_store:\n  type: sqlite\n  pathh: x.db\n",
       "fs.yaml:4:3: online_store: unknown key 'pathh' for the sqlite store"},
      {"project: p\nonline_store:\n  path: [a]\n",
       "fs.yaml:3:9: online_store.path: expected a string"},
      {"project: p\nonline_store:\n  path: ''\n",
       "fs.yaml:3:9: online_store.path: must not be empty"},
      {"project: p\nonline_store:\n  vector_enabled: true\n",
       "fs.yaml:3:19: online_store.vector_enabled: only false is accepted"},
      {"project: p\nonline_store:\n  similarity: l2\n",
       "fs.yaml:3:15: online_store.similarity: only 'cosine' is accepted"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_sqlite_schema, cases[i][0], &cfg, &err) == 0)
      fail_msg("case %zu loaded, want error '%s'", i, cases[i][1]);
    if (strncmp(err.msg, cases[i][1], strlen(cases[i][1])) != 0)
      fail_msg("case %zu:\n got  '%s'\n want '%s...'", i, err.msg, cases[i][1]);
    ldr_config_destroy(&cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(feast_keys_and_defaults),
      cmocka_unit_test(errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
