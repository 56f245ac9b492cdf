/*
 * A file registry's loader: the file is read again when its size,
 * modification time or inode changed, and only when it did not change while
 * it was read (a file still being written is tried again a second later).
 * A file that cannot be read, or is the one last refused, keeps the source
 * failing (larder_registry_up 0) until a good one loads; the same failure
 * seen again at later checks is not counted again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/file.h"
#include "common/log.h"
#include "registry/source_int.h"

#define RETRY_MS 1000 /* after a file changed while it was read */

/* What identifies one version of the file. */
struct file_id {
  dev_t dev;
  ino_t ino;
  off_t size;
  int64_t mtime_ns;
};

struct file_loader {
  struct ldr_loader base;
  char *path;
  char *project;
  struct file_id seen; /* the version last loaded or last refused */
  int seen_valid;
  int seen_refused; /* and it was refused */
  int last_errno;   /* the stat error last logged, so it is logged once */
};

static int same_id(const struct file_id *a, const struct file_id *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static int stat_id(const char *path, struct file_id *id) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->size = st.st_size;
  id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  return 0;
}

static const char *fallback(int loaded) {
  return loaded ? "serving the registry loaded before"
                : "ServingService answers FAILED_PRECONDITION until it loads";
}

static int check(struct ldr_loader *base, int loaded, struct ldr_registry **out, int64_t *next_ms) {
  struct file_loader *l = (struct file_loader *)base;
  struct file_id before, after;
  if (stat_id(l->path, &before) != 0) {
    /* A registry that `feast apply` has not written yet is normal for a
     * store that only serves the OnlineStore service: not a warning. */
    if (errno == l->last_errno) return -2;
    ldr_log(errno == ENOENT && !loaded ? LDR_LOG_INFO : LDR_LOG_WARN, "registry %s: %s; %s",
            l->path, strerror(errno), fallback(loaded));
    l->last_errno = errno;
    return -1; /* failing until the file is there */
  }
  if (l->seen_valid && same_id(&before, &l->seen)) {
    l->last_errno = 0;
    return l->seen_refused ? -2 : 0;
  }
  uint8_t *bytes = NULL;
  size_t len = 0;
  if (ldr_read_file(l->path, &bytes, &len) != 0) {
    /* Said once, not at every retry (a registry read once is retried every second). */
    int again = errno == l->last_errno;
    if (!again) ldr_log(LDR_LOG_WARN, "registry %s: %s", l->path, strerror(errno));
    l->last_errno = errno;
    return again ? -2 : -1;
  }
  l->last_errno = 0;
  if (stat_id(l->path, &after) != 0 || !same_id(&before, &after)) {
    free(bytes);
    *next_ms = RETRY_MS;
    return 0;
  }
  l->seen = before;
  l->seen_valid = 1;
  struct ldr_err err;
  ldr_err_clear(&err);
  enum ldr_rc rc = ldr_registry_parse(bytes, len, l->project, out, &err);
  free(bytes);
  l->seen_refused = rc != LDR_OK;
  if (rc != LDR_OK) {
    ldr_log(LDR_LOG_WARN, "registry %s: %s; %s", l->path, err.msg, fallback(loaded));
    return -1;
  }
  return 1;
}

static void loader_free(struct ldr_loader *base) {
  struct file_loader *l = (struct file_loader *)base;
  free(l->path);
  free(l->project);
  free(l);
}

struct ldr_loader *ldr_file_loader_new(const char *path, const char *project, struct ldr_err *err) {
  struct file_loader *l = calloc(1, sizeof *l);
  if (l != NULL) {
    l->path = strdup(path);
    l->project = strdup(project);
  }
  if (l == NULL || l->path == NULL || l->project == NULL) {
    if (l != NULL) loader_free(&l->base);
    ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    return NULL;
  }
  l->base.check = check;
  l->base.free = loader_free;
  l->base.where = l->path;
  return &l->base;
}
