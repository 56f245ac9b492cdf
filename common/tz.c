/*
 * A ZonedTimestamp's zone, resolved the way Feast resolves it, and its
 * instant written the way Python's datetime.isoformat() writes it.
 */
#include "common/tz.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/tz_int.h"

#define DAY_SECS 86400
/* 0001-01-01T00:00:00 and 9999-12-31T23:59:59, Python's datetime range. */
#define MIN_SECS (-62135596800LL)
#define MAX_SECS 253402300799LL

#define DEFAULT_DIR "/usr/share/zoneinfo"

/* ---- the process's zone folder ------------------------------------------ */

/* The one piece of global state: the cache, made on first use. $TZDIR is
 * read then and only then, so that a later setenv() cannot race a reader. */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static struct ldr_tz_db *default_db;

static void default_init(void) {
  const char *dir = getenv("TZDIR");
  default_db = ldr_tz_db_new(dir != NULL && dir[0] != '\0' ? dir : DEFAULT_DIR, LDR_TZ_CACHE_ZONES,
                             LDR_TZ_CACHE_BYTES);
}

static struct ldr_tz_db *db(void) {
  pthread_once(&default_once, default_init);
  return default_db;
}

const char *ldr_tz_dir(void) { return db() != NULL ? ldr_tz_db_dir(db()) : DEFAULT_DIR; }

/* ---- Feast's fixed offsets ---------------------------------------------- */

/* Python matches Feast's pattern against str, where \d is any Unicode
 * decimal digit (category Nd, Unicode 14.0 in Python 3.11) and int() reads
 * them all; each run of ten starts at one of these zeros. */
static const uint32_t unicode_zeros[] = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,
    0xc66,   0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,
    0x1810,  0x1946,  0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,
    0xa8d0,  0xa900,  0xa9d0,  0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066,
    0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0,
    0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2,
    0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

/* What str.strip() strips: str.isspace(). */
static const uint32_t unicode_spaces[] = {
    0x9,    0xa,    0xb,    0xc,    0xd,    0x1c,   0x1d,   0x1e,   0x1f,   0x20,
    0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
    0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xc0) return 0; /* a continuation byte */
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  return lead < 0xf8 ? 4 : 0;
}

/* Decodes the UTF-8 character at p into *cp and returns its length; 0 at the
 * NUL or on a malformed or overlong sequence. Protobuf's Python runtime
 * refuses strings that are not UTF-8, so Feast never sees those; here they
 * match nothing. */
static int utf8(const unsigned char *p, uint32_t *cp) {
  static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  int len = utf8_len(p[0]);
  if (len == 0 || p[0] == 0) return 0;
  uint32_t v = len == 1 ? p[0] : p[0] & (0x7fu >> len);
  for (int i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (p[i] & 0x3f);
  }
  if (v < least[len] || v > 0x10ffff) return 0;
  *cp = v;
  return len;
}

static int is_space(uint32_t cp) {
  for (size_t i = 0; i < COUNT(unicode_spaces); i++)
    if (unicode_spaces[i] == cp) return 1;
  return 0;
}

/* Reads one Unicode decimal digit at *p; -1 when there is none. */
static int digit(const unsigned char **p, const unsigned char *end) {
  uint32_t cp = 0;
  int len = *p < end ? utf8(*p, &cp) : 0;
  for (size_t i = 0; len > 0 && i < COUNT(unicode_zeros); i++) {
    if (cp >= unicode_zeros[i] && cp - unicode_zeros[i] <= 9) {
      *p += len;
      return (int)(cp - unicode_zeros[i]);
    }
  }
  return -1;
}

/* Two digits, as a number. */
static int two_digits(const unsigned char **p, const unsigned char *end) {
  int hi = digit(p, end), lo = hi < 0 ? -1 : digit(p, end);
  return lo < 0 ? -1 : hi * 10 + lo;
}

static int is_text(const unsigned char *p, const unsigned char *end, const char *s) {
  return (size_t)(end - p) == strlen(s) && memcmp(p, s, strlen(s)) == 0;
}

/* Feast's _fixed_offset_from_name on text already stripped: "UTC", "GMT",
 * or re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})"), and Python's
 * timezone() refusing ±24 hours or more. */
static int parse_fixed(const unsigned char *p, const unsigned char *end, int32_t *offset_s) {
  if (is_text(p, end, "UTC") || is_text(p, end, "GMT")) {
    *offset_s = 0;
    return 0;
  }
  if (end - p >= 3 && (memcmp(p, "UTC", 3) == 0 || memcmp(p, "GMT", 3) == 0)) p += 3;
  if (p >= end || (*p != '+' && *p != '-')) return -1;
  int sign = *p++ == '-' ? -1 : 1;
  int hours = two_digits(&p, end);
  if (p < end && *p == ':') p++;
  int minutes = hours < 0 ? -1 : two_digits(&p, end);
  if (minutes < 0 || p != end) return -1;
  int32_t secs = (hours * 60 + minutes) * 60;
  if (secs >= DAY_SECS) return -1;
  *offset_s = sign * secs;
  return 0;
}

int ldr_tz_fixed_offset(const char *zone, int32_t *offset_s) {
  const unsigned char *p = (const unsigned char *)zone, *end = p + strlen(zone);
  const unsigned char *first = NULL, *last = p; /* the stripped text */
  uint32_t cp = 0;
  for (const unsigned char *q = p; q < end;) {
    const unsigned char *at = q;
    int len = utf8(q, &cp);
    q += len > 0 ? len : 1;
    if (len > 0 && is_space(cp)) continue;
    if (first == NULL) first = at;
    last = q;
  }
  return first == NULL ? -1 : parse_fixed(first, last, offset_s);
}

/* ---- resolving a zone --------------------------------------------------- */

/* In Feast's order: empty is UTC; ZoneInfo(zone) is tried first; the fixed
 * forms only when no zone file has the name. */
int ldr_tz_offset(const char *zone, int64_t t, int32_t *offset_s) {
  if (zone == NULL || zone[0] == '\0') {
    *offset_s = 0;
    return 0;
  }
  if (db() != NULL && ldr_tz_db_offset(db(), zone, t, offset_s) == 0) return 0;
  return ldr_tz_fixed_offset(zone, offset_s);
}

/* ---- writing ------------------------------------------------------------ */

static int in_range(int64_t secs) { return secs >= MIN_SECS && secs <= MAX_SECS; }

/* Writes v as `width` digits, zero-padded; snprintf() would take most of
 * the time of a call here. */
static char *digits(char *p, int64_t v, int width) {
  for (int i = width - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
  return p + width;
}

static char *two(char *p, char sep, int64_t v) {
  *p++ = sep;
  return digits(p, v, 2);
}

/* "+HH:MM", or "+HH:MM:SS" when there are seconds, as Python writes it. */
static char *utc_offset(char *p, int32_t off) {
  int32_t a = off < 0 ? -off : off;
  p = two(p, off < 0 ? '-' : '+', a / 3600);
  p = two(p, ':', a / 60 % 60);
  return a % 60 != 0 ? two(p, ':', a % 60) : p;
}

int ldr_tz_format_offset(int64_t t, int32_t nanos, int32_t offset_s, char *out, size_t cap) {
  if (nanos < 0 || nanos > 999999999 || offset_s <= -DAY_SECS || offset_s >= DAY_SECS) return -1;
  /* Python builds the UTC datetime first, then adds the offset: both must
   * be within years 1..9999. Checking t first keeps t + offset_s from
   * overflowing. */
  if (!in_range(t) || !in_range(t + offset_s)) return -1;
  int64_t local = t + offset_s, days = local / DAY_SECS, secs = local % DAY_SECS, y;
  if (secs < 0) days--, secs += DAY_SECS;
  int m, d;
  ldr_tz_civil_from_days(days, &y, &m, &d);
  char text[LDR_TZ_ISO_MAX], *p = digits(text, y, 4);
  p = two(two(p, '-', m), '-', d);
  p = two(two(two(p, 'T', secs / 3600), ':', secs / 60 % 60), ':', secs % 60);
  if (nanos >= 1000) { /* isoformat() writes microseconds when there are any */
    *p++ = '.';
    p = digits(p, nanos / 1000, 6);
  }
  p = utc_offset(p, offset_s);
  size_t n = (size_t)(p - text);
  if (n >= cap) return -1;
  memcpy(out, text, n);
  out[n] = '\0';
  return (int)n;
}

int ldr_tz_format(const char *zone, int64_t t, int32_t nanos, char *out, size_t cap) {
  int32_t off = 0;
  if (ldr_tz_offset(zone, t, &off) != 0) off = 0;
  return ldr_tz_format_offset(t, nanos, off, out, cap);
}
