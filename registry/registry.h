/*
 * Feast's file registry (SPEC §6), as ServingService needs it: the feature
 * views of one project with their join keys, features and TTLs, and its
 * feature services. A registry is immutable once parsed; the source below
 * replaces it as a whole when the file changes, and readers on any thread hold
 * the one they took until they release it, without a lock.
 */
#ifndef LDR_REGISTRY_H
#define LDR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* Feast's stand-in entity of entity-less views: the key {__dummy_id: ""}. */
#define LDR_DUMMY_ENTITY "__dummy"
#define LDR_DUMMY_JOIN_KEY "__dummy_id"

enum ldr_view_kind { LDR_VIEW_BATCH, LDR_VIEW_STREAM, LDR_VIEW_ON_DEMAND };

struct ldr_feature {
  const char *name;
  int type; /* feast.types.ValueType.Enum */
};

/* A view's join key and the entity column of a request that carries it. */
struct ldr_join_key {
  const char *name; /* in the stored entity key */
  int type;         /* feast.types.ValueType.Enum; 0 when the registry does not say */
};

struct ldr_view {
  const char *name;
  enum ldr_view_kind kind;
  /* Why the view cannot be served (an on-demand view computed at request
   * time, an entity missing from the registry), or NULL. */
  const char *unservable;
  int unservable_computed; /* unservable because it is computed, not stored */
  int entityless;          /* keyed by the dummy entity */
  size_t n_join_keys;
  const struct ldr_join_key *join_keys; /* in the order of the view's entities */
  size_t n_features;
  const struct ldr_feature *features;       /* as declared */
  const struct ldr_feature *const *by_name; /* the same, sorted by name */
  int64_t ttl_ns;                           /* 0: values never expire */
};

/* One view of a feature service, with the service's choice of features. */
struct ldr_projection {
  const struct ldr_view *view; /* NULL when the service names a view that is not there */
  const char *view_name;       /* the view the service names */
  const char *name;            /* the alias, else the view's name: what columns show */
  size_t n_features;
  const char *const *features;
  size_t n_key_map; /* join_key_map: key_from[i] of the view comes from column key_to[i] */
  const char *const *key_from;
  const char *const *key_to;
};

struct ldr_feature_service {
  const char *name;
  size_t n_projections;
  const struct ldr_projection *projections;
};

struct ldr_registry_mem;

struct ldr_registry {
  const char *project;
  const char *version_id; /* Feast's uuid of this registry file, "" when absent */
  size_t n_views;
  const struct ldr_view *views; /* sorted by name */
  size_t n_services;
  const struct ldr_feature_service *services; /* sorted by name */
  struct ldr_registry_mem *mem;
};

/*
 * Parses the bytes of a registry file (a serialized feast.core.Registry) and
 * keeps what belongs to `project`. On success *out is a registry the caller
 * frees with ldr_registry_free; it does not point into `bytes`. Returns
 * LDR_INVALID when the bytes are not a registry, LDR_NOMEM when memory is short.
 */
enum ldr_rc ldr_registry_parse(const uint8_t *bytes, size_t len, const char *project,
                               struct ldr_registry **out, struct ldr_err *err);

/* Frees `r` and everything it points to; NULL is harmless. */
void ldr_registry_free(struct ldr_registry *r);

/* Returns the view named name[0..len), or NULL. */
const struct ldr_view *ldr_registry_view(const struct ldr_registry *r, const char *name,
                                         size_t len);

/* Returns the feature service named `name`, or NULL. */
const struct ldr_feature_service *ldr_registry_service(const struct ldr_registry *r,
                                                       const char *name);

/* Returns the feature of `v` named `name`, or NULL. */
const struct ldr_feature *ldr_view_feature(const struct ldr_view *v, const char *name);

/*
 * The live registry of a file: loaded when created, then checked every
 * `check_s` seconds by a thread of its own and replaced when the file's size,
 * modification time or inode changed and the new bytes parse. A file that
 * fails to load leaves the previous registry in place; the reason is logged
 * once per version of the file.
 *
 * Readers: each thread that reads has its own slot number below `n_readers`.
 * ldr_registry_acquire returns the current registry and holds it until
 * ldr_registry_release on the same slot; the reloader frees a replaced
 * registry only when no slot holds it. Neither call blocks.
 */
struct ldr_registry_source;

/*
 * Creates the source of `path` for `project` and loads the file once. A file
 * that cannot be loaded yet is not an error here: acquire reports it. Returns
 * LDR_OK, or LDR_NOMEM. `check_s` 0 means the file is read only once.
 */
enum ldr_rc ldr_registry_source_new(const char *path, int check_s, const char *project,
                                    size_t n_readers, struct ldr_registry_source **out,
                                    struct ldr_err *err);

/* Starts the thread that reloads the file; 0, or -1 when it cannot start. */
int ldr_registry_source_start(struct ldr_registry_source *s);

/* Checks the file now and loads it when it changed; returns 1 when a new
 * registry replaced the old one, 0 otherwise. The reload thread calls this. */
int ldr_registry_source_check(struct ldr_registry_source *s);

/* Stops the thread, then frees the source and its registry; NULL is harmless.
 * No reader may hold a registry. */
void ldr_registry_source_free(struct ldr_registry_source *s);

/*
 * Returns the current registry, held by slot `reader` until released, or NULL
 * with LDR_FAILED_PRECONDITION in `err` when no registry has loaded yet.
 */
const struct ldr_registry *ldr_registry_acquire(struct ldr_registry_source *s, size_t reader,
                                                struct ldr_err *err);

/* Lets go of what slot `reader` holds. */
void ldr_registry_release(struct ldr_registry_source *s, size_t reader);

/* How many registries have been loaded so far (1 after a good first load). */
unsigned long ldr_registry_source_loads(struct ldr_registry_source *s);

#endif
