/*
 * POSIX TZ strings as TZif footers carry them (RFC 8536 §3.3): the rule a
 * zone follows after its last transition, and the calendar arithmetic it
 * needs.
 */
#include <stdint.h>

#include "common/tz.h"
#include "common/tz_int.h"

#define DAY_SECS 86400
/* 400 Gregorian years repeat the calendar, weekdays included. */
#define CYCLE_DAYS 146097
#define CYCLE_SECS ((int64_t)CYCLE_DAYS * DAY_SECS)

/* The days arithmetic is Howard Hinnant's (chrono-Compatible Low-Level Date
 * Algorithms): exact for negative years too, with no table and no loop. */
int64_t ldr_tz_days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * CYCLE_DAYS + doe - 719468;
}

int64_t ldr_utc_from_civil(int64_t year, int month, int day, int hour, int minute, int second) {
  return ldr_tz_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

void ldr_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - (CYCLE_DAYS - 1)) / CYCLE_DAYS;
  int64_t doe = days - era * CYCLE_DAYS;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

/* ---- parsing ------------------------------------------------------------- */

/* A cursor over the string; every reader checks the end, since a footer is
 * not NUL-terminated. */
struct cur {
  const char *p, *end;
};

static int peek(const struct cur *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int is_alpha(int ch) { return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'; }

static int eat(struct cur *c, int ch) {
  if (peek(c) != ch) return 0;
  c->p++;
  return 1;
}

/* Reads 1..max_digits digits into *v; -1 when there are none. */
static int number(struct cur *c, int max_digits, int32_t *v) {
  int n = 0;
  *v = 0;
  while (n < max_digits && is_digit(peek(c))) {
    *v = *v * 10 + (*c->p++ - '0');
    n++;
  }
  return n > 0 ? 0 : -1;
}

/* A zone abbreviation, which nothing here uses: "<" [A-Za-z0-9+-]+ ">" or
 * letters. POSIX wants three at least; like Python's zoneinfo, one will do. */
static int abbr(struct cur *c) {
  const char *start = c->p;
  if (eat(c, '<')) {
    start = c->p;
    while (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-') c->p++;
    return c->p > start && eat(c, '>') ? 0 : -1;
  }
  while (is_alpha(peek(c))) c->p++;
  return c->p > start ? 0 : -1;
}

/* Exactly two digits, 00..59: minutes or seconds. */
static int sexagesimal(struct cur *c, int32_t *v) {
  const char *start = c->p;
  return number(c, 2, v) || c->p - start != 2 || *v > 59 ? -1 : 0;
}

/* [+-]h[h][:mm[:ss]], hours of up to hour_digits digits and at most
 * max_hours, into signed seconds. */
static int hms(struct cur *c, int hour_digits, int32_t max_hours, int32_t *secs) {
  int neg = eat(c, '-');
  if (!neg) eat(c, '+');
  int32_t h = 0, m = 0, s = 0;
  if (number(c, hour_digits, &h) || h > max_hours) return -1;
  if (eat(c, ':') && (sexagesimal(c, &m) || (eat(c, ':') && sexagesimal(c, &s)))) return -1;
  *secs = (h * 3600 + m * 60 + s) * (neg ? -1 : 1);
  return 0;
}

/* A TZ offset is hours west, which POSIX allows up to 24; less than a day,
 * all Python's datetime holds, is kept, as seconds east. */
static int offset(struct cur *c, int32_t *east) {
  int32_t west;
  if (hms(c, 2, 24, &west) || west <= -DAY_SECS || west >= DAY_SECS) return -1;
  *east = -west;
  return 0;
}

static int when_date(struct cur *c, struct ldr_tz_when *w) {
  int32_t a, b, d;
  if (eat(c, 'M')) {
    w->kind = 'M';
    if (number(c, 2, &a) || !eat(c, '.') || number(c, 1, &b) || !eat(c, '.') || number(c, 1, &d))
      return -1;
    if (a < 1 || a > 12 || b < 1 || b > 5 || d > 6) return -1;
    w->month = (uint8_t)a, w->week = (uint8_t)b, w->wday = (uint8_t)d;
    return 0;
  }
  w->kind = eat(c, 'J') ? 'J' : 'D';
  if (number(c, 3, &a) || a > 365 || (w->kind == 'J' && a < 1)) return -1;
  w->day = (int16_t)a;
  return 0;
}

/* ",date[/time]"; the time is 02:00 when left out. */
static int when(struct cur *c, struct ldr_tz_when *w) {
  if (!eat(c, ',') || when_date(c, w)) return -1;
  w->secs = 2 * 3600;
  return eat(c, '/') ? hms(c, 3, 167, &w->secs) : 0;
}

int ldr_tz_rule_parse(const char *s, size_t n, struct ldr_tz_rule *out) {
  struct cur c = {s, s + n};
  struct ldr_tz_rule r = {0};
  if (abbr(&c) || offset(&c, &r.std_off)) return -1;
  if (c.p < c.end) {
    r.has_dst = 1;
    if (abbr(&c)) return -1;
    r.dst_off = r.std_off + 3600; /* POSIX: one hour ahead when left out */
    if (peek(&c) != ',' && offset(&c, &r.dst_off)) return -1;
    /* A footer must say when daylight time starts and ends (RFC 8536 §3.3);
     * the dst_off check catches a default pushed past 24 hours. */
    if (when(&c, &r.start) || when(&c, &r.end) || r.dst_off >= DAY_SECS) return -1;
  }
  if (c.p != c.end) return -1;
  *out = r;
  return 0;
}

/* ---- evaluating ---------------------------------------------------------- */

/* Days from 1970-01-01 to the switch's day in year y. */
static int64_t switch_day(const struct ldr_tz_when *w, int64_t y) {
  int64_t jan1 = ldr_tz_days_from_civil(y, 1, 1);
  if (w->kind == 'J') return jan1 + w->day - 1 + (is_leap(y) && w->day >= 60);
  if (w->kind == 'D') return jan1 + w->day;
  int64_t first = ldr_tz_days_from_civil(y, w->month, 1);
  int first_wday = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
  int mday = 1 + (w->wday - first_wday + 7) % 7 + (w->week - 1) * 7;
  int64_t next = w->month == 12 ? ldr_tz_days_from_civil(y + 1, 1, 1)
                                : ldr_tz_days_from_civil(y, w->month + 1, 1);
  if (first + mday - 1 >= next) mday -= 7; /* week 5: the last one */
  return first + mday - 1;
}

/* The UTC instant of a switch in year y, from the local time in force before it. */
static int64_t switch_at(const struct ldr_tz_when *w, int64_t y, int32_t off_before) {
  return switch_day(w, y) * DAY_SECS + w->secs - off_before;
}

/*
 * The rule repeats every 400 years, so t is first brought into 1970..2369,
 * where nothing overflows whatever t was. Then the latest switch at or
 * before it decides, among those of the year before last to the next: a
 * switch may stray up to a week into a neighbouring year (times of up to
 * ±167 hours), and the year before last covers the case where both switches
 * of last year strayed past t. A year whose daylight time lasts all of it
 * has no switch, as in tzcode ("EST5EDT4,0/0,J365/25" is daylight time all
 * year, RFC 8536 §3.3.1); with no switch at all, daylight time holds.
 */
int32_t ldr_tz_rule_offset(const struct ldr_tz_rule *r, int64_t t) {
  if (!r->has_dst) return r->std_off;
  int64_t u = t % CYCLE_SECS;
  if (u < 0) u += CYCLE_SECS;
  int64_t y;
  int m, d;
  ldr_tz_civil_from_days(u / DAY_SECS, &y, &m, &d);
  int64_t best = INT64_MIN;
  int dst = 1;
  for (int64_t yy = y - 2; yy <= y + 1; yy++) {
    int64_t start = switch_at(&r->start, yy, r->std_off);
    int64_t end = switch_at(&r->end, yy, r->dst_off);
    int64_t year_secs = (is_leap(yy) ? 366 : 365) * (int64_t)DAY_SECS;
    if (end >= start && (end == start || end - start >= year_secs)) continue;
    if (start <= u && start >= best) best = start, dst = 1;
    if (end <= u && end >= best) best = end, dst = 0;
  }
  return dst ? r->dst_off : r->std_off;
}
