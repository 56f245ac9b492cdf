/*
 * TZif files (RFC 8536), the compiled form of the IANA time-zone database
 * under /usr/share/zoneinfo. Only what an offset needs is kept: transition
 * instants, the offset after each, time type 0 for instants before the first
 * and the footer's rule for those after the last.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tz_int.h"

#define HEADER_SIZE 44

struct header {
  int version; /* 1, or 2 and later (whose data is 64-bit) */
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* A cursor that never reads past the end of the file. */
struct in {
  const uint8_t *p, *end;
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static int read_header(struct in *in, struct header *h) {
  if (in->end - in->p < HEADER_SIZE || memcmp(in->p, "TZif", 4) != 0) return -1;
  uint8_t v = in->p[4];
  /* Versions 3 and 4 (RFC 9636) extended the footer and leap seconds, which
   * are skipped; later ones are read as those are, as Python's zoneinfo
   * reads them. */
  if (v != 0 && (v < '2' || v > '9')) return -1;
  h->version = v == 0 ? 1 : v - '0';
  uint32_t *counts[] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                        &h->timecnt, &h->typecnt,  &h->charcnt};
  for (int i = 0; i < 6; i++) *counts[i] = be32(in->p + 20 + 4 * i);
  in->p += HEADER_SIZE;
  return 0;
}

/* The bytes of the data block after the header: RFC 8536 §3.2, summed in 64
 * bits so that no count can wrap it around. */
static uint64_t data_size(const struct header *h, unsigned time_size) {
  return (uint64_t)h->timecnt * (time_size + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
         (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

static int fits(const struct header *h, unsigned time_size, const struct in *in) {
  return data_size(h, time_size) <= (uint64_t)(in->end - in->p) ? 0 : -1;
}

/* The counts RFC 8536 §3.1 requires, and a block that fits in the file. */
static int check_counts(const struct header *h, unsigned time_size, const struct in *in) {
  if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0) return -1;
  if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
      (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
    return -1;
  return fits(h, time_size, in);
}

/* An offset larger than a day is one Python's datetime cannot hold, and
 * -2**31 is one RFC 8536 forbids. */
static int read_types(const uint8_t *p, uint32_t n, int32_t *utoff) {
  for (uint32_t i = 0; i < n; i++, p += 6) {
    int32_t off = (int32_t)be32(p);
    if (off <= -86400 || off >= 86400 || p[4] > 1) return -1;
    utoff[i] = off;
  }
  return 0;
}

static struct ldr_tzif *zone_new(size_t n) {
  size_t bytes = sizeof(struct ldr_tzif) + n * (sizeof(int64_t) + sizeof(int32_t));
  struct ldr_tzif *z = calloc(1, bytes);
  if (z == NULL) return NULL;
  z->bytes = bytes;
  z->n = n;
  z->off = (const int32_t *)(z->at + n);
  return z;
}

/* Reads the data block at p into a new zone; transitions must ascend.
 * Returns what ldr_tzif_parse returns. */
static int read_data(const struct header *h, unsigned time_size, const uint8_t *p,
                     struct ldr_tzif **out) {
  int32_t utoff[256];
  const uint8_t *idx = p + (size_t)h->timecnt * time_size;
  if (read_types(idx + h->timecnt, h->typecnt, utoff)) return -1;
  struct ldr_tzif *z = zone_new(h->timecnt);
  if (z == NULL) return -2;
  int32_t *off = (int32_t *)z->off;
  for (uint32_t i = 0; i < h->timecnt; i++) {
    const uint8_t *t = p + (size_t)i * time_size;
    z->at[i] = time_size == 8 ? be64(t) : (int32_t)be32(t);
    if (idx[i] >= h->typecnt || (i > 0 && z->at[i] <= z->at[i - 1])) {
      free(z);
      return -1;
    }
    off[i] = utoff[idx[i]];
  }
  z->first_off = utoff[0];
  *out = z;
  return 0;
}

/* The footer of version 2 on: "\n" TZ-string "\n" (RFC 8536 §3.3). An empty
 * TZ string leaves the last transition's offset in force, as in Python. */
static int read_footer(struct in *in, struct ldr_tzif *z) {
  if (in->p >= in->end || *in->p++ != '\n') return -1;
  const uint8_t *nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
  if (nl == NULL) return -1;
  size_t len = (size_t)(nl - in->p);
  if (len == 0) return 0;
  if (ldr_tz_rule_parse((const char *)in->p, len, &z->rule)) return -1;
  z->has_rule = 1;
  return 0;
}

int ldr_tzif_parse(const uint8_t *p, size_t n, struct ldr_tzif **out) {
  struct in in = {p, p + n};
  struct header h;
  if (read_header(&in, &h)) return -1;
  unsigned time_size = 4;
  if (h.version == 1 && check_counts(&h, 4, &in)) return -1;
  if (h.version >= 2) {
    /* The 32-bit block is there for old readers, and zic's "slim" output
     * leaves it nearly empty: it is skipped unread. */
    if (fits(&h, 4, &in)) return -1;
    in.p += data_size(&h, 4);
    if (read_header(&in, &h) || h.version < 2 || check_counts(&h, 8, &in)) return -1;
    time_size = 8;
  }
  struct ldr_tzif *z = NULL;
  int rc = read_data(&h, time_size, in.p, &z);
  if (rc != 0) return rc;
  in.p += data_size(&h, time_size);
  if (h.version >= 2 && read_footer(&in, z)) {
    free(z);
    return -1;
  }
  *out = z;
  return 0;
}

/*
 * RFC 8536 §3.2: time type 0 before the first transition, the footer's rule
 * on and after the last (for all instants when there is no transition), else
 * the type of the latest transition at or before t.
 */
int32_t ldr_tzif_offset(const struct ldr_tzif *z, int64_t t) {
  if (z->has_rule && (z->n == 0 || t >= z->at[z->n - 1])) return ldr_tz_rule_offset(&z->rule, t);
  if (z->n == 0 || t < z->at[0]) return z->first_off;
  size_t lo = 0, hi = z->n; /* at[lo] <= t < at[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (z->at[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return z->off[lo];
}
