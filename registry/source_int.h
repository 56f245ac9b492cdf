/* What the registry's live source shares with its loaders (a file, or SQL). */
#ifndef LDR_REGISTRY_SOURCE_INT_H
#define LDR_REGISTRY_SOURCE_INT_H

#include <stdint.h>

#include "registry/registry.h"

/*
 * A loader looks at where the registry lives and, when it changed, builds the
 * new one. check() returns 1 with *out a new registry, 0 when nothing changed,
 * -1 when the attempt failed (the loader logs once per failure streak; the
 * source keeps the registry it has), -2 when it failed as the last one did
 * and nothing was read (still failing, not counted again). *next_ms is when
 * the loader wants to be asked again at the latest (0: at the usual
 * interval).
 */
struct ldr_loader {
  int (*check)(struct ldr_loader *l, int loaded, struct ldr_registry **out, int64_t *next_ms);
  void (*free)(struct ldr_loader *l);
  const char *where; /* what log lines name: the file, or the URL without its password */
};

/* The loaders; NULL with `err` set when memory is short or the URL is unusable. */
struct ldr_loader *ldr_file_loader_new(const char *path, const char *project, struct ldr_err *err);
struct ldr_loader *ldr_sql_loader_new(const char *url, const char *dir, const char *project,
                                      struct ldr_err *err);

#endif
