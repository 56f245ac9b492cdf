/*
 * IANA zones read from a zone folder, with a cache so that a request does
 * not read a file. One mutex guards the cache: the work done under it is a
 * binary search by name, a few links moved and a binary search in the zone,
 * shorter than any scheme that would let readers run without it; files are
 * read outside it. A sorted array, not a hash table: names come from stored
 * values, which a writer chooses, and no choice of names makes finding a
 * cached one take more than 13 compares (a new one: a few such searches).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tz_int.h"

/* A cached name: its zone, and its place in the list of names from the
 * most to the least recently used, whose links are indexes into
 * db->entries (NONE ends the list). */
struct entry {
  char *name;
  struct ldr_tzif *zone; /* NULL: no readable zone has this name */
  size_t bytes;          /* what the entry holds, as counted against max_bytes */
  uint32_t newer, older;
};

#define NONE UINT32_MAX

struct ldr_tz_db {
  pthread_mutex_t mu;
  char *dir;
  size_t max_zones, max_bytes;
  size_t n, bytes;
  uint64_t loads;
  struct entry *entries;   /* max_zones of them; the first n in use */
  uint32_t *sorted;        /* the n in use, by name: a lookup is a binary search */
  uint32_t newest, oldest; /* the ends of the list by use */
};

static int name_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
         c == '_' || c == '+' || c == '-';
}

/* With no '.' there is no "." or ".." component, so with no leading '/' the
 * path stays under the folder; "//" and a trailing '/' are refused because
 * Python's zoneinfo refuses names that are not normalized. "localtime" is
 * Debian's link to the host's zone, which larder does not use. */
int ldr_tz_name_ok(const char *zone) {
  size_t n = strlen(zone);
  if (n == 0 || n > LDR_TZ_NAME_MAX || zone[0] == '/' || zone[n - 1] == '/') return 0;
  for (size_t i = 0; i < n; i++)
    if (!name_char_ok(zone[i]) || (zone[i] == '/' && zone[i + 1] == '/')) return 0;
  return strcmp(zone, "localtime") != 0;
}

struct ldr_tz_db *ldr_tz_db_new(const char *dir, size_t max_zones, size_t max_bytes) {
  struct ldr_tz_db *db = calloc(1, sizeof *db);
  if (db == NULL) return NULL;
  if (max_zones > LDR_TZ_CACHE_ZONES_MAX) max_zones = LDR_TZ_CACHE_ZONES_MAX;
  db->dir = strdup(dir);
  db->entries = calloc(max_zones ? max_zones : 1, sizeof *db->entries);
  db->sorted = calloc(max_zones ? max_zones : 1, sizeof *db->sorted);
  if (db->dir == NULL || db->entries == NULL || db->sorted == NULL ||
      pthread_mutex_init(&db->mu, NULL) != 0) {
    free(db->dir);
    free(db->entries);
    free(db->sorted);
    free(db);
    return NULL;
  }
  db->max_zones = max_zones;
  db->max_bytes = max_bytes;
  db->newest = db->oldest = NONE;
  return db;
}

static void entry_clear(struct entry *e) {
  free(e->name);
  free(e->zone);
}

void ldr_tz_db_free(struct ldr_tz_db *db) {
  if (db == NULL) return;
  for (size_t i = 0; i < db->n; i++) entry_clear(&db->entries[i]);
  pthread_mutex_destroy(&db->mu);
  free(db->entries);
  free(db->sorted);
  free(db->dir);
  free(db);
}

const char *ldr_tz_db_dir(const struct ldr_tz_db *db) { return db->dir; }

/* What looking for a zone file found. Only a definite answer is cached: a
 * shortage of memory or file descriptors must not make a zone unknown until
 * the next restart. */
enum found { FOUND, NO_ZONE, NOT_NOW };

/* open() errors that say no zone file has the name. */
static int no_such_file(int err) {
  return err == ENOENT || err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG || err == EISDIR;
}

/* Reads all of fd, which fstat() says has `size` bytes, into a malloc'd
 * buffer. One byte more is asked for, to see a file that grew meanwhile. */
static enum found read_all(int fd, size_t size, uint8_t **out, size_t *len) {
  size_t n = 0, cap = size + 1;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return NOT_NOW;
  while (n < cap) {
    ssize_t got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      free(buf);
      return NOT_NOW;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  if (n == cap) { /* it is being rewritten: a tzdata upgrade */
    free(buf);
    return NOT_NOW;
  }
  *out = buf;
  *len = n;
  return FOUND;
}

/* Reads a regular file of at most LDR_TZ_FILE_MAX bytes; O_NONBLOCK keeps a
 * FIFO planted in the folder from hanging the caller. */
static enum found read_small_file(const char *path, uint8_t **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return no_such_file(errno) ? NO_ZONE : NOT_NOW;
  struct stat st;
  enum found found = NO_ZONE;
  if (fstat(fd, &st) != 0)
    found = NOT_NOW;
  else if (S_ISREG(st.st_mode) && st.st_size <= LDR_TZ_FILE_MAX)
    found = read_all(fd, (size_t)st.st_size, out, len);
  close(fd);
  return found;
}

/* Reads and parses the zone `name` under the folder into *out. */
static enum found load(const struct ldr_tz_db *db, const char *name, struct ldr_tzif **out) {
  char path[4096];
  int len = snprintf(path, sizeof path, "%s/%s", db->dir, name);
  if (len < 0 || (size_t)len >= sizeof path) return NO_ZONE;
  uint8_t *bytes = NULL;
  size_t n = 0;
  enum found found = read_small_file(path, &bytes, &n);
  if (found == FOUND) {
    int rc = ldr_tzif_parse(bytes, n, out);
    found = rc == 0 ? FOUND : rc == -1 ? NO_ZONE : NOT_NOW;
  }
  free(bytes);
  return found;
}

/* Where `name` is in db->sorted, or where it would go: *found says which. */
static size_t position(const struct ldr_tz_db *db, const char *name, int *found) {
  size_t lo = 0, hi = db->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(db->entries[db->sorted[mid]].name, name);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static void unlink_entry(struct ldr_tz_db *db, uint32_t i) {
  struct entry *e = &db->entries[i];
  if (e->newer != NONE)
    db->entries[e->newer].older = e->older;
  else
    db->newest = e->older;
  if (e->older != NONE)
    db->entries[e->older].newer = e->newer;
  else
    db->oldest = e->newer;
}

static void link_newest(struct ldr_tz_db *db, uint32_t i) {
  struct entry *e = &db->entries[i];
  e->newer = NONE;
  e->older = db->newest;
  if (db->newest != NONE) db->entries[db->newest].newer = i;
  db->newest = i;
  if (db->oldest == NONE) db->oldest = i;
}

static struct entry *find(struct ldr_tz_db *db, const char *name) {
  int found;
  size_t at = position(db, name, &found);
  if (!found) return NULL;
  uint32_t i = db->sorted[at];
  unlink_entry(db, i);
  link_newest(db, i);
  return &db->entries[i];
}

/* Drops the least recently used name. The last entry moves into its slot,
 * so that the first n stay the ones in use. */
static void evict_oldest(struct ldr_tz_db *db) {
  uint32_t old = db->oldest, last = (uint32_t)db->n - 1;
  int found;
  size_t at = position(db, db->entries[old].name, &found);
  assert(found);
  memmove(&db->sorted[at], &db->sorted[at + 1], (db->n - at - 1) * sizeof *db->sorted);
  unlink_entry(db, old);
  db->bytes -= db->entries[old].bytes;
  entry_clear(&db->entries[old]);
  db->n--;
  if (old == last) return;
  at = position(db, db->entries[last].name, &found);
  db->sorted[at] = old;
  db->entries[old] = db->entries[last];
  struct entry *e = &db->entries[old];
  if (e->newer != NONE)
    db->entries[e->newer].older = old;
  else
    db->newest = old;
  if (e->older != NONE)
    db->entries[e->older].newer = old;
  else
    db->oldest = old;
}

/* Caches `zone` (NULL too: a name with no zone is not looked for again)
 * under `name`, making room first. Returns 1 when the cache owns the zone
 * from then on, 0 when it cannot be kept (the caller still owns it). */
static int keep(struct ldr_tz_db *db, const char *name, struct ldr_tzif *zone) {
  size_t bytes =
      sizeof(struct entry) + sizeof(uint32_t) + strlen(name) + 1 + (zone ? zone->bytes : 0);
  if (db->max_zones == 0 || bytes > db->max_bytes) return 0;
  char *copy = strdup(name);
  if (copy == NULL) return 0;
  while (db->n > 0 && (db->n == db->max_zones || db->bytes + bytes > db->max_bytes))
    evict_oldest(db);
  int found;
  size_t at = position(db, name, &found);
  uint32_t i = (uint32_t)db->n++;
  memmove(&db->sorted[at + 1], &db->sorted[at], (db->n - 1 - at) * sizeof *db->sorted);
  db->sorted[at] = i;
  db->entries[i] = (struct entry){copy, zone, bytes, NONE, NONE};
  link_newest(db, i);
  db->bytes += bytes;
  return 1;
}

/* Under the lock: answers from the cache. Returns 1 with *rc set on a hit. */
static int cached(struct ldr_tz_db *db, const char *zone, int64_t t, int32_t *offset_s, int *rc) {
  struct entry *e = find(db, zone);
  if (e == NULL) return 0;
  *rc = e->zone ? 0 : -1;
  if (e->zone) *offset_s = ldr_tzif_offset(e->zone, t);
  return 1;
}

int ldr_tz_db_offset(struct ldr_tz_db *db, const char *zone, int64_t t, int32_t *offset_s) {
  if (!ldr_tz_name_ok(zone)) return -1;
  int rc = -1;
  pthread_mutex_lock(&db->mu);
  int hit = cached(db, zone, t, offset_s, &rc);
  pthread_mutex_unlock(&db->mu);
  if (hit) return rc;
  struct ldr_tzif *z = NULL;
  enum found found = load(db, zone, &z);
  pthread_mutex_lock(&db->mu);
  db->loads++;
  /* Another thread may have cached the zone while this one read it. */
  if (!cached(db, zone, t, offset_s, &rc)) {
    rc = found == FOUND ? 0 : -1;
    if (found == FOUND) *offset_s = ldr_tzif_offset(z, t);
    if (found != NOT_NOW && keep(db, zone, z)) z = NULL;
  }
  pthread_mutex_unlock(&db->mu);
  free(z);
  return rc;
}

void ldr_tz_db_stats(struct ldr_tz_db *db, struct ldr_tz_stats *out) {
  pthread_mutex_lock(&db->mu);
  *out = (struct ldr_tz_stats){db->n, db->bytes, db->loads};
  pthread_mutex_unlock(&db->mu);
}
