/* Internals of the time-zone module (common/tz*.c), shared with its tests. */
#ifndef LDR_TZ_INT_H
#define LDR_TZ_INT_H

#include <stddef.h>
#include <stdint.h>

/* ---- the calendar (common/tz_rule.c) ------------------------------------ */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, and
 * back; negative years too, far beyond the years 1..9999 used here. */
int64_t ldr_tz_days_from_civil(int64_t y, int m, int d);
void ldr_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* ---- POSIX TZ strings, a TZif file's footer (common/tz_rule.c) ----------- */

/* When a rule switches (RFC 8536 §3.3.1): a day of the year, and a time of
 * that day in the local time in force before the switch. */
struct ldr_tz_when {
  char kind;     /* 'J': Jn, n 1..365 not counting Feb 29; 'D': n, 0..365 counting it; 'M' */
  uint8_t month; /* 'M': 1..12 */
  uint8_t week;  /* 'M': 1..5, 5 being the last such weekday of the month */
  uint8_t wday;  /* 'M': 0 (Sunday)..6 */
  int16_t day;   /* 'J' and 'D' */
  int32_t secs;  /* after local midnight, -167 h..167 h (RFC 8536 §3.3.1) */
};

/* Standard time, and daylight time from `start` to `end` when has_dst. */
struct ldr_tz_rule {
  int32_t std_off, dst_off; /* seconds east of UTC, within ±86399 */
  int has_dst;
  struct ldr_tz_when start, end;
};

/* Parses s[0..n) ("CET-1CEST,M3.5.0,M10.5.0/3", "<+0530>-5:30"). Returns 0,
 * or -1 when it is not a TZ string RFC 8536 allows. */
int ldr_tz_rule_parse(const char *s, size_t n, struct ldr_tz_rule *out);

/* The offset, in seconds east of UTC, the rule gives at t. */
int32_t ldr_tz_rule_offset(const struct ldr_tz_rule *r, int64_t t);

/* ---- TZif files, RFC 8536 (common/tzif.c) -------------------------------- */

/* A parsed zone: its transitions, what comes before them and after. One
 * malloc'd block of `bytes` bytes; free() frees it. */
struct ldr_tzif {
  size_t bytes;
  size_t n;          /* transitions */
  int32_t first_off; /* before the first transition: time type 0 */
  int has_rule;      /* the footer's rule applies from the last transition on */
  struct ldr_tz_rule rule;
  const int32_t *off; /* off[i]: the offset from at[i] on */
  int64_t at[];       /* transition instants, UTC seconds, ascending */
};

/* Parses a TZif file of version 1, or 2 and later (their 64-bit data);
 * leap-second records are skipped, as Python's zoneinfo skips them. Returns
 * 0 and a zone for the caller to free(), -1 when the bytes are not a
 * well-formed TZif file, -2 when memory is short. */
int ldr_tzif_parse(const uint8_t *p, size_t n, struct ldr_tzif **out);

/* The offset, in seconds east of UTC, the zone gives at t. */
int32_t ldr_tzif_offset(const struct ldr_tzif *z, int64_t t);

/* ---- a zone folder and its cache (common/tz_db.c) ------------------------ */

/* The largest TZif file read; the largest in tzdata is under 4 KiB. */
#define LDR_TZ_FILE_MAX (256 * 1024)
/* The longest zone name looked up; the longest in tzdata has 32 bytes. */
#define LDR_TZ_NAME_MAX 128
/* The process's cache: room for every name of Debian's tzdata, posix/ and
 * right/ included (1,795 zones, 1.6 MiB parsed), so that a store whose
 * values name many zones reads each file once. */
#define LDR_TZ_CACHE_ZONES 4096
#define LDR_TZ_CACHE_BYTES (4 * 1024 * 1024)
/* Entries are indexed with 32 bits. */
#define LDR_TZ_CACHE_ZONES_MAX (1u << 24)

struct ldr_tz_db;

struct ldr_tz_stats {
  size_t zones;   /* names cached, unreadable ones included */
  size_t bytes;   /* their memory */
  uint64_t loads; /* files looked for since the start */
};

/* 1 when `zone` may name a file under the zone folder: see ldr_tz_offset. */
int ldr_tz_name_ok(const char *zone);

/* A zone folder (copied) whose parsed zones are cached, at most max_zones of
 * them (and at most LDR_TZ_CACHE_ZONES_MAX) in at most max_bytes, the least
 * recently used out first. NULL when memory is short. */
struct ldr_tz_db *ldr_tz_db_new(const char *dir, size_t max_zones, size_t max_bytes);
/* Frees the cache; NULL is harmless. No call on it may be under way. */
void ldr_tz_db_free(struct ldr_tz_db *db);
/* The folder, owned by the db. */
const char *ldr_tz_db_dir(const struct ldr_tz_db *db);
/* Returns 0 and the offset of the IANA zone `zone` at t, or -1 when the name
 * is not allowed or no well-formed TZif file has it. Thread-safe. */
int ldr_tz_db_offset(struct ldr_tz_db *db, const char *zone, int64_t t, int32_t *offset_s);
void ldr_tz_db_stats(struct ldr_tz_db *db, struct ldr_tz_stats *out);

/* ---- Feast's fixed offsets (common/tz.c) --------------------------------- */

/* Returns 0 and the offset when `zone` is one of Feast's fixed-offset forms
 * (see ldr_tz_offset), else -1. */
int ldr_tz_fixed_offset(const char *zone, int32_t *offset_s);

#endif
