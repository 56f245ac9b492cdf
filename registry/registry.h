/*
 * Feast's registry (SPEC §6, REGISTRY.md) as serving needs it: the feature
 * views of one project with their join keys, features, TTLs, versions and
 * flags, its entities, its feature services, and the push sources that feed
 * views. A registry is immutable once built; the source below replaces it as
 * a whole when the registry changes, and readers on any thread hold the one
 * they took until they release it, without a lock. Registries come from
 * Feast's file registry or from its SQL registry (source_sql.c).
 */
#ifndef LDR_REGISTRY_H
#define LDR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"
#include "feast/core/Registry.pb-c.h"

/* Feast's stand-in entity of entity-less views: the key {__dummy_id: ""}. */
#define LDR_DUMMY_ENTITY "__dummy"
#define LDR_DUMMY_JOIN_KEY "__dummy_id"

/* In the order a name is looked up (proto_registry_utils.get_any_feature_view). */
enum ldr_view_kind { LDR_VIEW_BATCH, LDR_VIEW_STREAM, LDR_VIEW_ON_DEMAND, LDR_VIEW_LABEL };

/* feast.core.FeatureViewState */
enum { LDR_STATE_UNSPECIFIED = 0, LDR_STATE_AVAILABLE_ONLINE = 4 };

struct ldr_feature {
  const char *name;
  int type; /* feast.types.ValueType.Enum */
};

/* A view's join key and the entity column of a request that carries it. */
struct ldr_join_key {
  const char *name; /* in the stored entity key */
  int type;         /* feast.types.ValueType.Enum; 0 when the registry does not say */
};

/* Where a view's rows come from, for pushes and writes (HTTP.md §6.3): its
 * batch source's columns, and the push source that feeds it. */
struct ldr_view_source {
  const char *push_source;     /* the push source feeding the view, or NULL */
  const char *timestamp_field; /* "" : event_timestamp */
  const char *created_column;  /* "" : none */
  size_t n_mapping;            /* field_mapping: source column -> feature name */
  const char *const *mapping_from;
  const char *const *mapping_to;
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
  int disabled;                             /* spec.disabled */
  int state;                                /* meta.state (FeatureViewState) */
  int version;                              /* meta.current_version_number; 0 when unset */
  const struct ldr_view_source *source;     /* NULL: no batch source (on-demand views) */
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
  int has_version_tag; /* version_tag present: read table _v<tag> */
  int version_tag;
};

struct ldr_feature_service {
  const char *name;
  size_t n_projections;
  const struct ldr_projection *projections;
};

struct ldr_entity {
  const char *name;
  const char *join_key;
  int type; /* feast.types.ValueType.Enum */
};

/* A view as one of its versions defined it (the version history). */
struct ldr_view_version {
  const char *name;
  int version;
  struct ldr_view view;
};

struct ldr_registry_mem;

struct ldr_registry {
  const char *project;
  const char *version_id; /* Feast's uuid of this registry file, "" when absent */
  size_t n_views;
  const struct ldr_view *views; /* sorted by name; of two kinds with one name, the first kind */
  size_t n_services;
  const struct ldr_feature_service *services; /* sorted by name */
  size_t n_entities;
  const struct ldr_entity *entities; /* sorted by name */
  size_t n_join_keys;
  const char *const *join_keys; /* every entity's join key, sorted */
  size_t n_versions;
  const struct ldr_view_version *versions; /* sorted by name, then version */
  struct ldr_registry_mem *mem;
};

/*
 * The objects of one project, decoded, to build a registry from. Objects
 * keep pointing into memory the builder's arena owns (`arena`). With
 * `scoped` (an SQL registry: rows were selected by project_id) spec.project
 * is not looked at; otherwise (a file registry) objects of other projects are
 * skipped.
 */
struct ldr_registry_input {
  int scoped;
  Feast__Core__Entity **entities;
  size_t n_entities;
  Feast__Core__FeatureView **feature_views;
  size_t n_feature_views;
  Feast__Core__StreamFeatureView **stream_views;
  size_t n_stream_views;
  Feast__Core__OnDemandFeatureView **on_demand_views;
  size_t n_on_demand_views;
  Feast__Core__LabelView **label_views;
  size_t n_label_views;
  Feast__Core__FeatureService **services;
  size_t n_services;
  Feast__Core__FeatureViewVersionRecord **versions;
  size_t n_versions;
  const char *version_id;
};

/*
 * Builds the registry of `project` from `in`; `mem` (from
 * ldr_registry_mem_new) is the memory `in` was decoded into, and becomes the
 * registry's. On success *out is a registry the caller frees with
 * ldr_registry_free; on failure `mem` is freed too.
 */
struct ldr_registry_mem *ldr_registry_mem_new(void);
struct ldr_arena *ldr_registry_mem_arena(struct ldr_registry_mem *mem);
void ldr_registry_mem_free(struct ldr_registry_mem *mem); /* NULL is harmless */
enum ldr_rc ldr_registry_build(const struct ldr_registry_input *in, const char *project,
                               struct ldr_registry_mem *mem, struct ldr_registry **out,
                               struct ldr_err *err);

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

/* Returns version `version` of the view named `name` from the history, or NULL. */
const struct ldr_view *ldr_registry_view_version(const struct ldr_registry *r, const char *name,
                                                 int version);

/* Returns the feature service named `name`, or NULL. */
const struct ldr_feature_service *ldr_registry_service(const struct ldr_registry *r,
                                                       const char *name);

/* Returns the entity named `name`, or NULL. */
const struct ldr_entity *ldr_registry_entity(const struct ldr_registry *r, const char *name);

/* Nonzero when `name` is the join key of an entity of the project. */
int ldr_registry_is_join_key(const struct ldr_registry *r, const char *name);

/* Returns the feature of `v` named `name`, or NULL. */
const struct ldr_feature *ldr_view_feature(const struct ldr_view *v, const char *name);

/* The name of a FeatureViewState ("MATERIALIZING"). */
const char *ldr_view_state_name(int state);

/*
 * The live registry: loaded when created, then checked every `check_s`
 * seconds by a thread of its own and replaced when it changed and the new one
 * builds. A registry that fails to load leaves the previous one in place; the
 * reason is logged once per failure streak.
 *
 * Readers: each thread that reads has its own slot number below `n_readers`.
 * ldr_registry_acquire returns the current registry and holds it until
 * ldr_registry_release on the same slot; the reloader frees a replaced
 * registry only when no slot holds it. Neither call blocks.
 */
struct ldr_registry_source;

/* What a source reads: a registry file, or an SQL registry (a database URL). */
struct ldr_registry_location {
  const char *path; /* the file, or the URL */
  int sql;
  const char *dir; /* the yaml file's folder: a relative SQLite registry's base */
};

/*
 * Creates the source of `loc` for `project` and loads it once. A registry
 * that cannot be loaded yet is not an error here: acquire reports it. Returns
 * LDR_OK, or LDR_NOMEM. `check_s` 0 means the registry is read only once
 * (an SQL registry is retried until it loads once).
 */
enum ldr_rc ldr_registry_source_new(const struct ldr_registry_location *loc, int check_s,
                                    const char *project, size_t n_readers,
                                    struct ldr_registry_source **out, struct ldr_err *err);

/* Starts the thread that reloads the registry; 0, or -1 when it cannot start. */
int ldr_registry_source_start(struct ldr_registry_source *s);

/* Checks the registry now and loads it when it changed; returns 1 when a new
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

/* Loads so far (1 after a good first load), failed loads, and the
 * CLOCK_REALTIME second of the last good load (0: none), for metrics. */
struct ldr_registry_stats {
  unsigned long loads, failures;
  int64_t last_load_s;
  int failing; /* the last attempt failed */
};
void ldr_registry_source_stats(struct ldr_registry_source *s, struct ldr_registry_stats *out);
unsigned long ldr_registry_source_loads(struct ldr_registry_source *s);

#endif
