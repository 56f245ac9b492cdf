/* The command line: serve, apply, teardown. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backends/backend.h"
#include "common/log.h"
#include "config/config.h"
#include "service/server.h"

static const char usage_text[] =
    "usage: larder serve [-c PATH] [--listen HOST:PORT]\n"
    "       larder apply -c PATH VIEW...      create the tables of feature views\n"
    "       larder teardown -c PATH VIEW...   drop the tables of feature views\n"
    "       larder health [-c PATH | --listen HOST:PORT] [SERVICE]\n"
    "                                         grpc.health.v1 Check of a running larder:\n"
    "                                         exit 0 when SERVING (SERVICE \"\": alive)\n"
    "       larder --version | --help\n"
    "\n"
    "The config file is -c PATH, else $FEAST_FS_YAML_FILE_PATH, else ./feature_store.yaml.\n"
    "Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "larder: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage_text);
  return 2;
}

/* Runs Update or Teardown locally for the views on the command line. */
static int admin(const struct ldr_config *cfg, int create, char **views, int n) {
  struct ldr_err err;
  struct ldr_backend *b = NULL;
  char(*tables)[LDR_TABLE_NAME_MAX + 1] = calloc((size_t)n, sizeof *tables);
  const char **names = calloc((size_t)n, sizeof *names);
  int status = 1;
  ldr_err_clear(&err);
  if (tables == NULL || names == NULL) goto out;
  for (int i = 0; i < n; i++) {
    if (ldr_table_name(cfg->project, views[i], "VIEW", tables[i], &err) != LDR_OK) {
      fprintf(stderr, "larder: %s: %s\n", views[i], err.msg);
      status = 2;
      goto out;
    }
    names[i] = tables[i];
  }
  if (ldr_backend_new(&cfg->store, &b, &err) != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "cannot open the %s store: %s", cfg->store.type_name, err.msg);
    goto out;
  }
  enum ldr_rc rc = create ? b->ops->update(b, names, (size_t)n, NULL, 0, &err)
                          : b->ops->teardown(b, names, (size_t)n, &err);
  if (rc != LDR_OK) {
    ldr_log(LDR_LOG_ERROR, "%s failed: %s", create ? "apply" : "teardown", err.msg);
    goto out;
  }
  for (int i = 0; i < n; i++)
    ldr_log(LDR_LOG_INFO, "%s table %s", create ? "created or kept" : "dropped", names[i]);
  status = 0;
out:
  ldr_backend_free(b);
  free(tables);
  free(names);
  return status;
}

/* `larder health`: the address is --listen, else the config's, where a
 * wildcard host means this machine. */
static int probe(const char *path, const char *listen, int nargs, char **args) {
  if (nargs > 1) return usage_error("unexpected argument '%s'", args[1]);
  if (listen != NULL && !ldr_config_valid_listen(listen))
    return usage_error("--listen: expected HOST:PORT, not '%s'", listen);
  struct ldr_config cfg;
  int loaded = 0;
  if (listen == NULL) {
    struct ldr_config_error cerr;
    if (path == NULL) path = getenv("FEAST_FS_YAML_FILE_PATH");
    if (path == NULL || path[0] == '\0') path = "feature_store.yaml";
    if (ldr_config_load(path, ldr_backend_schemas(), &cfg, &cerr) != 0) {
      fprintf(stderr, "%s\n", cerr.msg);
      ldr_config_destroy(&cfg);
      return 2;
    }
    loaded = 1;
    listen = cfg.listen;
  }
  char target[300];
  const char *colon = strrchr(listen, ':');
  size_t hl = (size_t)(colon - listen);
  if ((hl == 7 && !strncmp(listen, "0.0.0.0", 7)) || (hl == 4 && !strncmp(listen, "[::]", 4)) ||
      hl == 0)
    snprintf(target, sizeof target, "127.0.0.1%s", colon);
  else
    snprintf(target, sizeof target, "%s", listen);
  if (loaded) ldr_config_destroy(&cfg);
  return ldr_health_probe(target, nargs ? args[0] : "", 3000);
}

int main(int argc, char **argv) {
  /*
   * glibc raises its mmap threshold to the size of any large block freed, so
   * after one big batch every later large call arena comes from the heap and
   * stays resident. A fixed threshold keeps large blocks in their own
   * mappings, returned to the system when a call ends.
   */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  /* A file size limit (ulimit -f) makes a write fail with EFBIG, which the
   * store reports like a full disk, instead of killing the server. */
  signal(SIGXFSZ, SIG_IGN);
  /* A client gone while its TLS reply is written (OpenSSL writes with
   * write(), not send(MSG_NOSIGNAL)) ends that connection, not the server. */
  signal(SIGPIPE, SIG_IGN);
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"listen", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  const char *path = NULL, *listen = NULL;
  int opt;
  for (;;) {
    opt = getopt_long(argc, argv, "+c:hV", opts, NULL);
    if (opt == -1) break;
    switch (opt) {
    case 'c':
      path = optarg;
      break;
    case 'l':
      listen = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    case 'V':
      printf("larder %s\n", LDR_VERSION);
      return 0;
    default:
      fputs(usage_text, stderr);
      return 2;
    }
  }
  if (optind >= argc) return usage_error("%s", "a command is required");
  const char *cmd = argv[optind++];
  /* Options may also follow the command: "larder serve -c x.yaml". */
  for (;;) {
    opt = getopt_long(argc, argv, "+c:hV", opts, NULL);
    if (opt == -1) break;
    if (opt == 'c')
      path = optarg;
    else if (opt == 'l')
      listen = optarg;
    else
      return usage_error("%s", "unexpected option");
  }
  int serve = !strcmp(cmd, "serve"), apply = !strcmp(cmd, "apply"), drop = !strcmp(cmd, "teardown");
  if (!strcmp(cmd, "health")) return probe(path, listen, argc - optind, argv + optind);
  if (!serve && !apply && !drop) return usage_error("unknown command '%s'", cmd);
  if (serve && optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
  if (!serve && optind >= argc) return usage_error("%s: name at least one feature view", cmd);
  if (listen != NULL && !ldr_config_valid_listen(listen))
    return usage_error("--listen: expected HOST:PORT, not '%s'", listen);
  if (path == NULL) path = getenv("FEAST_FS_YAML_FILE_PATH");
  if (path == NULL || path[0] == '\0') path = "feature_store.yaml";

  struct ldr_config cfg;
  struct ldr_config_error cerr;
  if (ldr_config_load(path, ldr_backend_schemas(), &cfg, &cerr) != 0) {
    fprintf(stderr, "%s\n", cerr.msg);
    ldr_config_destroy(&cfg);
    return 2;
  }
  if (listen != NULL) {
    free(cfg.listen);
    cfg.listen = strdup(listen);
  }
  ldr_log_set_level((enum ldr_log_level)cfg.log_level);
  ldr_log_set_json(cfg.log_json);

  int status;
  if (serve) {
    /* Blocked before gRPC starts its threads, so only sigwait sees them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* Connections are descriptors, and a soft limit of 1,024 (a shell's
     * usual) would stop accepts short of http_max_connections: the process
     * takes what its hard limit allows, as systemd's services and Go's
     * runtime do. Nothing in larder uses select(). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
    status = ldr_server_run(&cfg);
  } else {
    status = admin(&cfg, apply, argv + optind, argc - optind);
  }
  ldr_config_destroy(&cfg);
  return status;
}
