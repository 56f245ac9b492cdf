/*
 * Time zones (common/tz*.c): Feast's fixed offsets, Python's isoformat, POSIX
 * TZ rules, TZif files built here byte by byte, the zone folder's name checks
 * and cache, and every zone of the system's tzdata against tz_cases.json
 * (Python's zoneinfo, written by tests/data/gen_tz_cases.py).
 *
 * `test_tz tzdir` runs the $TZDIR check alone: the folder is chosen once per
 * process, so it needs a process of its own.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tz.h"
#include "common/tz_int.h"
#include "tests/support/support.h"

#define T0 1700000000 /* 2023-11-14T22:13:20Z, the instant of Feast's vectors */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- POSIX TZ rules ------------------------------------------------------ */

/* Switch instants worked out by hand and checked against glibc's TZ
 * handling (and Python's zoneinfo for the rules real zones use). */
static void tz_rules(void **state) {
  (void)state;
  static const struct {
    const char *rule;
    int64_t t;
    int32_t want;
  } cases[] = {
      /* EU 2030: last Sundays of March and October, 01:00 UTC. */
      {"CET-1CEST,M3.5.0,M10.5.0/3", 1901149199, 3600},
      {"CET-1CEST,M3.5.0,M10.5.0/3", 1901149200, 7200},
      {"CET-1CEST,M3.5.0,M10.5.0/3", 1919293199, 7200},
      {"CET-1CEST,M3.5.0,M10.5.0/3", 1919293200, 3600},
      {"<+0530>-5:30", T0, 19800},
      {"LMT-0:19:32", T0, 1172},
      {"<-0030>0:30", T0, -1800},
      /* America/Nuuk: a negative time, -1 h before the last Sunday of March. */
      {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", 1901149199, -7200},
      {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", 1901149200, -3600},
      /* Asia/Jerusalem: 26 h after the fourth Thursday of March. */
      {"IST-2IDT,M3.4.4/26,M10.5.0", 1900972799, 7200},
      {"IST-2IDT,M3.4.4/26,M10.5.0", 1900972800, 10800},
      /* Jn never counts Feb 29: J60 is March 1 and J59 Feb 28, leap year or not. */
      {"AAA3BBB,J60/0,J300/0", 1709261999, -10800},
      {"AAA3BBB,J60/0,J300/0", 1709262000, -7200},
      {"AAA3BBB,J60/0,J300/0", 1677639600, -7200},
      {"AAA3BBB,J59/0,J300/0", 1709089199, -10800},
      {"AAA3BBB,J59/0,J300/0", 1709089200, -7200},
      /* n counts from 0 and counts Feb 29: 59 is Feb 29 in 2024, March 1 in 2023. */
      {"AAA3BBB,59/0,300/0", 1709175599, -10800},
      {"AAA3BBB,59/0,300/0", 1709175600, -7200},
      {"AAA3BBB,59/0,300/0", 1677639599, -10800},
      {"AAA3BBB,59/0,300/0", 1677639600, -7200},
      /* RFC 8536's extremes: Sunday March 3 2030 + 167 h, Sunday Oct 6 2030 - 167 h. */
      {"AAA0BBB,M3.1.0/167,M10.1.0/-167", 1899327599, 0},
      {"AAA0BBB,M3.1.0/167,M10.1.0/-167", 1899327600, 3600},
      {"AAA0BBB,M3.1.0/167,M10.1.0/-167", 1916870399, 3600},
      {"AAA0BBB,M3.1.0/167,M10.1.0/-167", 1916870400, 0},
      /* Both switches of 2029 fall in 2030 (Dec 31 + 100 h and + 120 h): in
       * the first days of 2030 those of 2028 still decide. */
      {"AAA0BBB,J365/100,J365/120", 1893542400, 0},
      {"AAA0BBB,J365/100,J365/120", 1893729599, 0},
      {"AAA0BBB,J365/100,J365/120", 1893729600, 3600},
      {"AAA0BBB,J365/100,J365/120", 1893797999, 3600},
      {"AAA0BBB,J365/100,J365/120", 1893798000, 0},
      /* And the first switch of 2030 falls in 2029 (Jan 1 - 100 h). */
      {"AAA0BBB,J1/-100,J300/0", 1893095999, 0},
      {"AAA0BBB,J1/-100,J300/0", 1893096000, 3600},
      /* RFC 8536 §3.3.1: daylight time all year, New Year's night included;
       * one that ends an hour after the next starts has no switch either. */
      {"EST5EDT4,0/0,J365/25", 1704074400, -14400},
      {"EST5EDT4,0/0,J365/25", 1717200000, -14400},
      {"EST5EDT4,0/0,J365/26", 1704088800, -14400},
      /* Southern hemisphere, negative DST (Europe/Dublin), minutes (Pacific/Chatham). */
      {"NZST-12NZDT,M9.5.0,M4.1.0/3", 1906502400, 43200},
      {"NZST-12NZDT,M9.5.0,M4.1.0/3", 1922313600, 46800},
      {"IST-1GMT0,M10.5.0,M3.5.0/1", 1909094400, 3600},
      {"IST-1GMT0,M10.5.0,M3.5.0/1", 1894665600, 0},
      {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 1906502400, 45900},
      {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 1922313600, 49500},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    struct ldr_tz_rule r;
    if (ldr_tz_rule_parse(cases[i].rule, strlen(cases[i].rule), &r) != 0)
      fail_msg("%s: not parsed", cases[i].rule);
    int32_t got = ldr_tz_rule_offset(&r, cases[i].t);
    if (got != cases[i].want)
      fail_msg("%s at %lld: %d, want %d", cases[i].rule, (long long)cases[i].t, got, cases[i].want);
  }
  /* Any instant at all, far beyond the 400-year cycle the rule is folded into. */
  struct ldr_tz_rule r;
  assert_int_equal(ldr_tz_rule_parse("CET-1CEST,M3.5.0,M10.5.0/3", 26, &r), 0);
  assert_int_equal(ldr_tz_rule_offset(&r, INT64_MIN), ldr_tz_rule_offset(&r, INT64_MIN + 1));
  int32_t far = ldr_tz_rule_offset(&r, INT64_MAX);
  assert_true(far == 3600 || far == 7200);
  int64_t cycles = 146097LL * 86400 * 1000; /* 400,000 years: the same calendar */
  assert_int_equal(ldr_tz_rule_offset(&r, 1901149199 + cycles), 3600);
  assert_int_equal(ldr_tz_rule_offset(&r, 1901149200 + cycles), 7200);
  assert_int_equal(ldr_tz_rule_offset(&r, 1901149200 - cycles), 7200);
}

static void tz_rules_malformed(void **state) {
  (void)state;
  static const char *bad[] = {
      "",
      "CET",
      "-1",
      "1CET",
      "CET-1CEST",                    /* daylight time, but no switches */
      "CET-25",                       /* offsets are 0..24 hours */
      "CET-24",                       /* Python's datetime holds less than a day */
      "CET-23:30CEST,M3.5.0,M10.5.0", /* daylight time defaults to 24:30 */
      "CET-1:5",                      /* minutes take two digits */
      "CET-1:00:60",
      "CET-1CEST,M13.1.0,M10.5.0",
      "CET-1CEST,M3.6.0,M10.5.0",
      "CET-1CEST,M3.0.0,M10.5.0",
      "CET-1CEST,M3.5.7,M10.5.0",
      "CET-1CEST,J0,J365",
      "CET-1CEST,366,J1",
      "CET-1CEST,M3.5.0/168,M10.5.0",
      "CET-1CEST,M3.5.0,M10.5.0,",
      "CET-1CEST,M3.5.0",
      "CET-1CEST,M3.5.0/,M10.5.0",
      "<>0",
      "<A B>0",
      "<+05",
      "CET-1 ",
      "CET-1,M3.5.0,M10.5.0",
  };
  for (size_t i = 0; i < COUNT(bad); i++) {
    struct ldr_tz_rule r;
    if (ldr_tz_rule_parse(bad[i], strlen(bad[i]), &r) == 0) fail_msg("\"%s\" parsed", bad[i]);
  }
  /* The length is the end: a footer is not NUL-terminated. */
  struct ldr_tz_rule r;
  assert_int_equal(ldr_tz_rule_parse("CET-1CEST,M3.5.0,M10.5.0/3", 24, &r), 0);
  assert_int_equal(r.end.secs, 2 * 3600); /* the default time, the "/3" cut off */
  assert_int_equal(ldr_tz_rule_parse("CET-1CEST,M3.5.0,M10.5.0/3", 25, &r), -1);
}

/* ---- TZif files ------------------------------------------------------------ */

struct tt {
  int32_t utoff;
  uint8_t isdst;
};

/* What a built file holds; the rest is fixed: abbreviations "ABC", no
 * standard/wall or UT/local indicators unless `indicators`. */
struct spec {
  char version; /* 0 for version 1, else '2', '3', ... */
  size_t n;
  const int64_t *at;
  const uint8_t *idx;
  size_t ntypes;
  const struct tt *types;
  size_t nleaps;
  int indicators;
  const char *footer; /* version 2 on; NULL: no footer at all */
};

static uint8_t *put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
  return p + 4;
}

static uint8_t *put_header(uint8_t *p, char version, uint32_t counts[6]) {
  memcpy(p, "TZif", 4);
  p[4] = (uint8_t)version;
  memset(p + 5, 0, 15);
  p += 20;
  for (int i = 0; i < 6; i++) p = put32(p, counts[i]);
  return p;
}

static uint8_t *put_block(uint8_t *p, const struct spec *s, int time_size) {
  uint32_t ind = s->indicators ? (uint32_t)s->ntypes : 0;
  uint32_t counts[6] = {ind, ind, (uint32_t)s->nleaps, (uint32_t)s->n, (uint32_t)s->ntypes, 4};
  p = put_header(p, s->version, counts);
  for (size_t i = 0; i < s->n; i++) {
    if (time_size == 8) p = put32(p, (uint32_t)((uint64_t)s->at[i] >> 32));
    p = put32(p, (uint32_t)s->at[i]);
  }
  for (size_t i = 0; i < s->n; i++) *p++ = s->idx[i];
  for (size_t i = 0; i < s->ntypes; i++) {
    p = put32(p, (uint32_t)s->types[i].utoff);
    *p++ = s->types[i].isdst;
    *p++ = 0;
  }
  memcpy(p, "ABC", 4);
  p += 4;
  for (size_t i = 0; i < s->nleaps; i++) { /* a second more each year from 1972 */
    if (time_size == 8) p = put32(p, 0);
    p = put32(p, (uint32_t)(63072000 + 31536000 * i));
    p = put32(p, (uint32_t)(i + 1));
  }
  memset(p, 0, 2 * ind);
  return p + 2 * ind;
}

/* Writes the file into buf and returns its size. Version 2 on get a minimal
 * 32-bit block, as zic's "slim" output has. */
static size_t build(const struct spec *s, uint8_t *buf) {
  uint8_t *p = buf;
  if (s->version == 0) return (size_t)(put_block(p, s, 4) - buf);
  uint32_t slim[6] = {0, 0, 0, 0, 1, 1};
  p = put_header(p, s->version, slim);
  memset(p, 0, 7); /* one type of offset 0, and an empty abbreviation */
  p = put_block(p + 7, s, 8);
  if (s->footer != NULL) p += sprintf((char *)p, "\n%s\n", s->footer);
  return (size_t)(p - buf);
}

static struct ldr_tzif *parse_ok(const struct spec *s) {
  uint8_t buf[4096];
  struct ldr_tzif *z = NULL;
  size_t n = build(s, buf);
  if (ldr_tzif_parse(buf, n, &z) != 0) fail_msg("version %d file not parsed", s->version);
  return z;
}

static const int64_t at3[] = {-1000000000, 0, 1000000000};
static const uint8_t idx3[] = {1, 2, 1};
static const struct tt types3[] = {{-17762, 0}, {3600, 0}, {7200, 1}};

/* Before the first transition: type 0 (not the first transition's type);
 * between them: the type of the latest; after the last: the last type. */
static void tzif_version1(void **state) {
  (void)state;
  struct spec s = {0, 3, at3, idx3, 3, types3, 0, 1, NULL};
  struct ldr_tzif *z = parse_ok(&s);
  static const struct {
    int64_t t;
    int32_t want;
  } cases[] = {{INT64_MIN, -17762}, {-1000000001, -17762}, {-1000000000, 3600}, {-1, 3600},
               {0, 7200},           {999999999, 7200},     {1000000000, 3600},  {INT64_MAX, 3600}};
  for (size_t i = 0; i < COUNT(cases); i++)
    assert_int_equal(ldr_tzif_offset(z, cases[i].t), cases[i].want);
  free(z);
}

static void tzif_version2_and_later(void **state) {
  (void)state;
  /* A 64-bit instant, leap seconds and indicators to skip, and the EU rule. */
  static const int64_t at[] = {-(INT64_C(1) << 40), -1000000000, 946684800};
  static const uint8_t idx[] = {1, 2, 1};
  struct spec s = {'2', 3, at, idx, 3, types3, 27, 1, "AAA-1BBB,M3.5.0,M10.5.0/3"};
  struct ldr_tzif *z = parse_ok(&s);
  assert_int_equal(ldr_tzif_offset(z, -(INT64_C(1) << 40) - 1), -17762);
  assert_int_equal(ldr_tzif_offset(z, -(INT64_C(1) << 40)), 3600);
  assert_int_equal(ldr_tzif_offset(z, 946684799), 7200);
  assert_int_equal(ldr_tzif_offset(z, 946684800), 3600); /* January: the rule's winter */
  assert_int_equal(ldr_tzif_offset(z, 1901149199), 3600);
  assert_int_equal(ldr_tzif_offset(z, 1901149200), 7200);
  free(z);

  /* An empty footer leaves the last transition's type in force. */
  s.footer = "";
  z = parse_ok(&s);
  assert_int_equal(ldr_tzif_offset(z, 1901149200), 3600);
  free(z);

  /* Version 3's footer times, and later versions read the same way. */
  s.footer = "AAA-1BBB,M3.1.0/167,M10.1.0/-167";
  for (char v = '3'; v <= '9'; v++) {
    s.version = v;
    z = parse_ok(&s);
    assert_int_equal(ldr_tzif_offset(z, 1899327599 - 3600), 3600);
    assert_int_equal(ldr_tzif_offset(z, 1899327600 - 3600), 7200);
    free(z);
  }

  /* No transitions: the footer holds for every instant (RFC 8536 §3.2). */
  struct spec none = {'2', 0, NULL, NULL, 1, types3, 0, 0, "<+0530>-5:30"};
  z = parse_ok(&none);
  assert_int_equal(ldr_tzif_offset(z, INT64_MIN), 19800);
  assert_int_equal(ldr_tzif_offset(z, 0), 19800);
  free(z);
  none.footer = "";
  z = parse_ok(&none);
  assert_int_equal(ldr_tzif_offset(z, 0), -17762);
  free(z);
}

static void tzif_malformed(void **state) {
  (void)state;
  uint8_t buf[4096];
  struct ldr_tzif *z = NULL;
  struct spec good = {'2', 3, at3, idx3, 3, types3, 2, 1, "AAA-1BBB,M3.5.0,M10.5.0/3"};
  size_t n = build(&good, buf);
  assert_int_equal(ldr_tzif_parse(buf, n, &z), 0);
  free(z);
  /* Every shorter file, so ASan sees each read stay inside the buffer. */
  for (size_t len = 0; len < n; len++) {
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    z = NULL;
    if (ldr_tzif_parse(copy, len, &z) == 0) fail_msg("cut to %zu bytes, parsed", len);
    free(copy);
  }
  static const uint8_t idx_bad[] = {1, 3, 1};
  static const int64_t at_flat[] = {0, 0, 1};
  static const struct tt day[] = {{86400, 0}}, dst2[] = {{0, 2}}, min[] = {{INT32_MIN, 0}};
  const struct spec bad[] = {
      {'2', 3, at3, idx_bad, 3, types3, 0, 0, ""},       /* a type that is not there */
      {'2', 3, at_flat, idx3, 3, types3, 0, 0, ""},      /* transitions not ascending */
      {'2', 0, NULL, NULL, 0, types3, 0, 0, ""},         /* no type */
      {'2', 0, NULL, NULL, 1, day, 0, 0, ""},            /* a day's offset */
      {'2', 0, NULL, NULL, 1, min, 0, 0, ""},            /* -2**31 */
      {'2', 0, NULL, NULL, 1, dst2, 0, 0, ""},           /* isdst 2 */
      {'2', 3, at3, idx3, 3, types3, 0, 0, NULL},        /* no footer */
      {'2', 3, at3, idx3, 3, types3, 0, 0, "CET-1CEST"}, /* a footer that is no rule */
      {'1', 3, at3, idx3, 3, types3, 0, 0, ""},          /* RFC 8536 has no '1' */
  };
  for (size_t i = 0; i < COUNT(bad); i++) {
    n = build(&bad[i], buf);
    z = NULL;
    if (ldr_tzif_parse(buf, n, &z) == 0) fail_msg("bad file %zu parsed", i);
  }
  n = build(&good, buf);
  memcpy(buf, "TZiF", 4);
  assert_int_equal(ldr_tzif_parse(buf, n, &z), -1);
  /* A transition count whose 9 bytes each wrap 32 bits to 5: the second
   * header's timecnt, after the first header and the slim block. */
  n = build(&good, buf);
  put32(buf + 44 + 7 + 32, 477218589);
  assert_int_equal(ldr_tzif_parse(buf, n, &z), -1);
}

/* ---- a zone folder --------------------------------------------------------- */

static char folder[64], root[80];

static void write_file(const char *name, const void *p, size_t n) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", folder, name);
  for (char *slash = strchr(path + strlen(folder) + 1, '/'); slash;
       slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    mkdir(path, 0700); /* the folders on the way, some already there */
    *slash = '/';
  }
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* A zone of constant offset `hours`, written as name under `dir`. */
static void write_fixed_zone(const char *name, int hours) {
  static const struct tt utc[] = {{0, 0}};
  char footer[32];
  snprintf(footer, sizeof footer, "<X>%d", -hours);
  struct spec s = {'2', 0, NULL, NULL, 1, utc, 0, 0, footer};
  uint8_t buf[256];
  write_file(name, buf, build(&s, buf));
}

static int make_folder(void **state) {
  (void)state;
  strcpy(folder, "/tmp/ldr_tz_XXXXXX");
  if (mkdtemp(folder) == NULL) return -1;
  snprintf(root, sizeof root, "%s/root", folder);
  write_fixed_zone("root/Test/Zone", 3);
  write_fixed_zone("root/localtime", 4);
  write_fixed_zone("secret", 5); /* outside root */
  for (int i = 0; i < 6; i++) {
    char name[32];
    snprintf(name, sizeof name, "root/Z%d", i);
    write_fixed_zone(name, i + 1);
  }
  char path[256];
  snprintf(path, sizeof path, "%s/Link", root);
  if (symlink("Test/Zone", path) != 0) return -1;
  snprintf(path, sizeof path, "%s/Fifo", root);
  if (mkfifo(path, 0600) != 0) return -1;
  write_file("root/Garbage", "not a zone\n", 11);
  /* A good zone followed by padding past LDR_TZ_FILE_MAX: only the size
   * check refuses it, since trailing bytes are allowed. */
  static const struct tt utc[] = {{0, 0}};
  struct spec s = {'2', 0, NULL, NULL, 1, utc, 0, 0, "<X>-6"};
  uint8_t *big = calloc(1, LDR_TZ_FILE_MAX + 1);
  build(&s, big);
  write_file("root/Big", big, LDR_TZ_FILE_MAX + 1);
  write_file("root/Small", big, LDR_TZ_FILE_MAX);
  free(big);
  return 0;
}

static int remove_folder(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", folder);
  return system(cmd) == 0 ? 0 : -1;
}

static void zone_names(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int ok;
  } cases[] = {
      {"Europe/Berlin", 1},    {"America/Argentina/Buenos_Aires", 1},
      {"Etc/GMT+5", 1},        {"America/Port-au-Prince", 1},
      {"EST5EDT", 1},          {"", 0},
      {"/etc/passwd", 0},      {"../secret", 0},
      {"Europe/../secret", 0}, {"./Europe/Berlin", 0},
      {"Europe//Berlin", 0},   {"Europe/Berlin/", 0},
      {"Europe/Berlin ", 0},   {"Europe\\Berlin", 0},
      {"Europe/Berlin\n", 0},  {"zone.tab", 0},
      {"localtime", 0},        {"+05:30", 0},
  };
  for (size_t i = 0; i < COUNT(cases); i++)
    if (ldr_tz_name_ok(cases[i].name) != cases[i].ok) fail_msg("\"%s\"", cases[i].name);
  char longest[LDR_TZ_NAME_MAX + 2];
  memset(longest, 'a', sizeof longest);
  longest[LDR_TZ_NAME_MAX] = '\0';
  assert_true(ldr_tz_name_ok(longest));
  longest[LDR_TZ_NAME_MAX] = 'a';
  longest[LDR_TZ_NAME_MAX + 1] = '\0';
  assert_false(ldr_tz_name_ok(longest));
}

static void folder_lookups(void **state) {
  (void)state;
  struct ldr_tz_db *db = ldr_tz_db_new(root, 64, 1 << 20);
  assert_non_null(db);
  assert_string_equal(ldr_tz_db_dir(db), root);
  static const struct {
    const char *name;
    int32_t want; /* -1: not found */
  } cases[] = {
      {"Test/Zone", 10800}, {"Link", 10800},   {"Small", 21600}, {"Z0", 3600},
      {"../secret", -1},    {"localtime", -1}, {"Fifo", -1},     {"Garbage", -1},
      {"Big", -1},          {"Test", -1},      {"Missing", -1},  {"Test//Zone", -1},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    int32_t off = -1;
    int rc = ldr_tz_db_offset(db, cases[i].name, T0, &off);
    if (cases[i].want == -1 ? rc != -1 : rc != 0 || off != cases[i].want)
      fail_msg("%s: rc %d offset %d", cases[i].name, rc, off);
  }
  ldr_tz_db_free(db);
  ldr_tz_db_free(NULL);
}

/* Least recently used out; a name with no zone is remembered too; the
 * byte budget holds; a zone bigger than the budget is answered uncached. */
static void folder_cache(void **state) {
  (void)state;
  struct ldr_tz_db *db = ldr_tz_db_new(root, 3, 1 << 20);
  struct ldr_tz_stats st;
  int32_t off = 0;
  const char *order[] = {"Z0", "Z1", "Z2", "Z0", "Z3"}; /* Z3 pushes Z1 out */
  for (size_t i = 0; i < COUNT(order); i++)
    assert_int_equal(ldr_tz_db_offset(db, order[i], 0, &off), 0);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.zones, 3);
  assert_int_equal(st.loads, 4);
  assert_int_equal(ldr_tz_db_offset(db, "Z0", 0, &off), 0);
  assert_int_equal(off, 3600);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.loads, 4); /* Z0 stayed */
  assert_int_equal(ldr_tz_db_offset(db, "Z1", 0, &off), 0);
  assert_int_equal(off, 7200);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.loads, 5); /* Z1 had gone */
  assert_int_equal(ldr_tz_db_offset(db, "Missing", 0, &off), -1);
  assert_int_equal(ldr_tz_db_offset(db, "Missing", 0, &off), -1);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.loads, 6);
  assert_int_equal(st.zones, 3);
  ldr_tz_db_free(db);

  /* A budget that holds two zones of this size and not three. */
  db = ldr_tz_db_new(root, 64, 1 << 20);
  assert_int_equal(ldr_tz_db_offset(db, "Z0", 0, &off), 0);
  ldr_tz_db_stats(db, &st);
  size_t one = st.bytes;
  ldr_tz_db_free(db);
  db = ldr_tz_db_new(root, 64, 2 * one + one / 2);
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 6; i++) {
      char name[8];
      snprintf(name, sizeof name, "Z%d", i);
      assert_int_equal(ldr_tz_db_offset(db, name, 0, &off), 0);
      assert_int_equal(off, (i + 1) * 3600);
      ldr_tz_db_stats(db, &st);
      assert_true(st.bytes <= 2 * one + one / 2);
      assert_int_equal(st.zones, i == 0 && round == 0 ? 1 : 2);
    }
  ldr_tz_db_free(db);

  /* A file that cannot be opened now (no descriptor left) is asked for
   * again, not remembered as no zone. */
  db = ldr_tz_db_new(root, 64, 1 << 20);
  struct rlimit saved, none;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int lowest = dup(0); /* the next descriptor open() would hand out */
  close(lowest);
  none = saved;
  none.rlim_cur = (rlim_t)lowest;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
  int rc1 = ldr_tz_db_offset(db, "Z5", 0, &off), rc2 = ldr_tz_db_offset(db, "Z5", 0, &off);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  assert_int_equal(rc1, -1);
  assert_int_equal(rc2, -1);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.zones, 0);
  assert_int_equal(st.loads, 2);
  assert_int_equal(ldr_tz_db_offset(db, "Z5", 0, &off), 0);
  assert_int_equal(off, 6 * 3600);
  ldr_tz_db_free(db);

  db = ldr_tz_db_new(root, 64, 16);
  for (int i = 0; i < 3; i++) assert_int_equal(ldr_tz_db_offset(db, "Z2", 0, &off), 0);
  assert_int_equal(off, 3 * 3600);
  ldr_tz_db_stats(db, &st);
  assert_int_equal(st.zones, 0);
  assert_int_equal(st.loads, 3);
  ldr_tz_db_free(db);
}

/* Random lookups against a model of a least-recently-used cache: which
 * lookups read a file, and how many names stay. */
static void folder_cache_model(void **state) {
  (void)state;
  enum { CAP = 4, NAMES = 9 };
  struct ldr_tz_db *db = ldr_tz_db_new(root, CAP, 1 << 20);
  int model[CAP], n = 0; /* name numbers, the most recently used first */
  uint64_t loads = 0;
  unsigned seed = 7;
  for (int step = 0; step < 5000; step++) {
    int k = (int)(rand_r(&seed) % NAMES); /* Z0..Z5, then names with no zone */
    char name[16];
    snprintf(name, sizeof name, k < 6 ? "Z%d" : "None%d", k);
    int at = 0;
    while (at < n && model[at] != k) at++;
    if (at == n) {
      loads++;
      if (n < CAP) n++;
      at = n - 1;
    }
    memmove(&model[1], &model[0], (size_t)at * sizeof model[0]);
    model[0] = k;
    int32_t off = 0;
    int rc = ldr_tz_db_offset(db, name, T0, &off);
    if (k < 6 ? rc != 0 || off != (k + 1) * 3600 : rc != -1)
      fail_msg("step %d, %s: rc %d offset %d", step, name, rc, off);
    struct ldr_tz_stats st;
    ldr_tz_db_stats(db, &st);
    if (st.loads != loads || st.zones != (size_t)n)
      fail_msg("step %d, %s: %llu loads, %zu zones; want %llu, %d", step, name,
               (unsigned long long)st.loads, st.zones, (unsigned long long)loads, n);
  }
  ldr_tz_db_free(db);
}

struct worker {
  struct ldr_tz_db *db;
  unsigned seed;
  int bad;
};

static void *work(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < 3000; i++) {
    int k = (int)(rand_r(&w->seed) % 7);
    char name[8];
    snprintf(name, sizeof name, k == 6 ? "None%d" : "Z%d", k);
    int32_t off = 0;
    int rc = ldr_tz_db_offset(w->db, name, T0, &off);
    if (k == 6 ? rc != -1 : rc != 0 || off != (k + 1) * 3600) w->bad++;
  }
  return NULL;
}

/* Threads sharing a cache too small for their zones, so that loads,
 * evictions and hits interleave (and ThreadSanitizer sees them). */
static void folder_threads(void **state) {
  (void)state;
  struct ldr_tz_db *db = ldr_tz_db_new(root, 3, 1 << 20);
  pthread_t th[4];
  struct worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){db, (unsigned)i + 1, 0};
    assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].bad, 0);
  }
  struct ldr_tz_stats st;
  ldr_tz_db_stats(db, &st);
  assert_true(st.zones <= 3);
  ldr_tz_db_free(db);
}

/* ---- Feast's zones and Python's isoformat ------------------------------ */

/* The text for zone at t, or "unknown" when ldr_tz_offset does not know the
 * zone (ldr_tz_format then writes UTC, which is checked too). */
static void check_zone(const char *zone, int64_t t, const char *want) {
  char out[LDR_TZ_ISO_MAX];
  int32_t off = 12345;
  int known = ldr_tz_offset(zone, t, &off) == 0;
  int n = ldr_tz_format(zone, t, 0, out, sizeof out);
  if (strcmp(want, "unknown") == 0) {
    char utc[LDR_TZ_ISO_MAX];
    ldr_tz_format_offset(t, 0, 0, utc, sizeof utc);
    if (known || strcmp(out, utc) != 0) fail_msg("zone \"%s\": %s, known %d", zone, out, known);
    return;
  }
  if (!known || n != (int)strlen(want) || strcmp(out, want) != 0)
    fail_msg("zone \"%s\" at %lld: \"%s\" (known %d), want \"%s\"", zone, (long long)t, out, known,
             want);
}

static int have_zoneinfo(void) {
  struct stat st;
  return stat(ldr_tz_dir(), &st) == 0 && S_ISDIR(st.st_mode);
}

static struct ldr_tz_db *walk_db;
static size_t walk_dir_len, walk_zones;

static int look_up_file(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int32_t off;
  const char *name = path + walk_dir_len + 1;
  if (type != FTW_F) return 0;
  if (ldr_tz_db_offset(walk_db, name, T0, &off) == 0) walk_zones++;
  /* nftw walks a folder once: posix/'s links to the zones' folders are not
   * walked again. */
  char posix[LDR_TZ_NAME_MAX + 1];
  if (strncmp(name, "right/", 6) != 0 &&
      snprintf(posix, sizeof posix, "posix/%s", name) < (int)sizeof posix &&
      ldr_tz_db_offset(walk_db, posix, T0, &off) == 0)
    walk_zones++;
  return 0;
}

/* The process's cache holds every name of the system's tzdata, posix/ and
 * right/ included: a store whose values name many zones reads each file
 * once, not once per value. */
static void system_tzdata_fits(void **state) {
  (void)state;
  if (!have_zoneinfo()) {
    print_message("no %s: not checked\n", ldr_tz_dir());
    skip();
  }
  walk_db = ldr_tz_db_new(ldr_tz_dir(), LDR_TZ_CACHE_ZONES, LDR_TZ_CACHE_BYTES);
  walk_dir_len = strlen(ldr_tz_dir());
  struct ldr_tz_stats first, second;
  for (int pass = 0; pass < 2; pass++) {
    walk_zones = 0;
    assert_int_equal(nftw(ldr_tz_dir(), look_up_file, 16, 0), 0);
    ldr_tz_db_stats(walk_db, pass == 0 ? &first : &second);
  }
  print_message("%zu zones in %zu bytes\n", walk_zones, first.bytes);
  assert_true(walk_zones > 300);
  assert_int_equal(second.loads, first.loads); /* nothing read again */
  assert_true(first.bytes <= LDR_TZ_CACHE_BYTES);
  ldr_tz_db_free(walk_db);
}

/* Each checked against feast/type_map.py's _zone_from_name and Python's
 * isoformat at Feast f0bc0700. */
static void feast_fixed_offsets(void **state) {
  (void)state;
  static const struct {
    const char *zone, *want;
  } cases[] = {
      {"", "2023-11-14T22:13:20+00:00"},
      {"UTC", "2023-11-14T22:13:20+00:00"},
      {"GMT", "2023-11-14T22:13:20+00:00"},
      {" UTC ", "2023-11-14T22:13:20+00:00"},
      {"+05:30", "2023-11-15T03:43:20+05:30"},
      {"-0800", "2023-11-14T14:13:20-08:00"},
      {"UTC+05:30", "2023-11-15T03:43:20+05:30"},
      {"UTC-07:00", "2023-11-14T15:13:20-07:00"},
      {"GMT+0100", "2023-11-14T23:13:20+01:00"},
      {"-00:00", "2023-11-14T22:13:20+00:00"},
      {"-23:59", "2023-11-13T22:14:20-23:59"},
      {"+05:99", "2023-11-15T04:52:20+06:39"}, /* timedelta(hours=5, minutes=99) */
      {" +05:30 ", "2023-11-15T03:43:20+05:30"},
      {"\t-07:00\n", "2023-11-14T15:13:20-07:00"},
      {"\u3000+05:30", "2023-11-15T03:43:20+05:30"},               /* ideographic space */
      {"\u00a0GMT-0330\u2029", "2023-11-14T18:43:20-03:30"},       /* no-break, paragraph */
      {"+\uff10\uff15:\uff13\uff10", "2023-11-15T03:43:20+05:30"}, /* fullwidth digits */
      {"+\u0660\u0665\u0663\u0660", "2023-11-15T03:43:20+05:30"},  /* Arabic-Indic */
      {"+\U0001D7CE\U0001D7D3:00", "2023-11-15T03:13:20+05:00"},   /* mathematical bold */
      /* Not offsets to Feast: it logs a warning and reads them as UTC. */
      {"Z", "unknown"},
      {"+05", "unknown"},
      {"UTC-8", "unknown"},
      {"GMT+1", "unknown"},
      {"utc", "unknown"},
      {"UTC+5:30", "unknown"},
      {"UTC+05:3", "unknown"},
      {"+05::30", "unknown"},
      {"UTCGMT+05:00", "unknown"},
      {"UTC +05:30", "unknown"},
      {"+05:30x", "unknown"},
      {"Not/AZone", "unknown"},
      {"+\xe2\x80", "unknown"},            /* a cut UTF-8 sequence */
      {"+\xc0\xb0\xc0\xb5:30", "unknown"}, /* overlong "05" */
      /* Python's timezone() refuses these, and Feast answers 500; larder reads UTC. */
      {"+24:00", "unknown"},
      {"+23:60", "unknown"},
      {"-99:99", "unknown"},
  };
  for (size_t i = 0; i < COUNT(cases); i++) check_zone(cases[i].zone, T0, cases[i].want);
  int32_t off = 1;
  assert_int_equal(ldr_tz_offset(NULL, T0, &off), 0);
  assert_int_equal(off, 0);
}

/* Python's isoformat(): microseconds when not zero, offset seconds when not
 * zero, years 1..9999 in UTC and locally, else nothing. */
static void isoformat_rules(void **state) {
  (void)state;
  static const struct {
    int64_t t;
    int32_t nanos, off;
    const char *want; /* NULL: -1 */
  } cases[] = {
      {T0, 0, 0, "2023-11-14T22:13:20+00:00"},
      {T0, 123456789, 0, "2023-11-14T22:13:20.123456+00:00"}, /* truncated, not rounded */
      {T0, 999, 0, "2023-11-14T22:13:20+00:00"},              /* under a microsecond */
      {T0, 1000, 3600, "2023-11-14T23:13:20.000001+01:00"},
      {T0, 0, 19800, "2023-11-15T03:43:20+05:30"},
      {T0, 0, 1172, "2023-11-14T22:32:52+00:19:32"},
      {T0, 0, -968, "2023-11-14T21:57:12-00:16:08"},
      {T0, 500000000, -86399, "2023-11-13T22:13:21.500000-23:59:59"},
      {0, 0, 0, "1970-01-01T00:00:00+00:00"},
      {-1, 0, 0, "1969-12-31T23:59:59+00:00"},
      {951782400, 0, 0, "2000-02-29T00:00:00+00:00"},
      {-62135596800, 0, 33539, "0001-01-01T09:18:59+09:18:59"},
      {-62135596800, 0, -1, NULL},   /* local year 0 */
      {-62135596801, 0, 3600, NULL}, /* UTC year 0, local year 1 */
      {253402300799, 0, -18000, "9999-12-31T18:59:59-05:00"},
      {253402300799, 0, 1, NULL},      /* local year 10000 */
      {253402300800, 0, -18000, NULL}, /* UTC year 10000 */
      {INT64_MIN, 0, 0, NULL},         /* Feast's "no timestamp" */
      {INT64_MAX, 0, -86399, NULL},
      {T0, -1, 0, NULL},
      {T0, 1000000000, 0, NULL},
      {T0, 0, 86400, NULL},
      {T0, 0, -86400, NULL},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    char out[LDR_TZ_ISO_MAX];
    int n = ldr_tz_format_offset(cases[i].t, cases[i].nanos, cases[i].off, out, sizeof out);
    if (cases[i].want == NULL) {
      if (n != -1) fail_msg("case %zu: \"%s\", want -1", i, out);
    } else if (n != (int)strlen(cases[i].want) || strcmp(out, cases[i].want) != 0) {
      fail_msg("case %zu: \"%s\" (%d), want \"%s\"", i, n < 0 ? "" : out, n, cases[i].want);
    }
  }
  /* The longest text fits LDR_TZ_ISO_MAX exactly, and one byte less is refused. */
  char out[LDR_TZ_ISO_MAX];
  assert_int_equal(ldr_tz_format_offset(T0, 1000, -86399, out, sizeof out), LDR_TZ_ISO_MAX - 1);
  assert_int_equal(ldr_tz_format_offset(T0, 1000, -86399, out, sizeof out - 1), -1);
}

/* Feast's own vectors (http_vectors.json, gof_all_value_kinds): the stored
 * Value bytes of f_zoned*, and what Feast's feature server answers. */
static void feast_http_vectors(void **state) {
  (void)state;
  static const struct {
    const char *feature, *hex, *want; /* want NULL: the JSON null */
    int iana;
  } cases[] = {
      {"f_zoned", "8203060880e2cfaa06", "2023-11-14T22:13:20+00:00", 0},
      {"f_zoned_offset", "82030e0880e2cfaa0612062b30353a3330", "2023-11-15T03:43:20+05:30", 0},
      {"f_zoned_iana", "8203140880e2cfaa06120c4575726f70652f5061726973",
       "2023-11-14T23:13:20+01:00", 1},
      {"f_zoned_null", "82031008808080808080808080011203555443", NULL, 0},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    if (cases[i].iana && !have_zoneinfo()) continue; /* feast_iana_zones says it skipped */
    struct ldr_arena a;
    ldr_arena_init(&a, 256, 0);
    size_t len = 0;
    uint8_t *bytes = ldr_test_unhex(&a, cases[i].hex, &len);
    Feast__Types__Value *v = feast__types__value__unpack(NULL, len, bytes);
    assert_non_null(v);
    assert_int_equal(v->val_case, FEAST__TYPES__VALUE__VAL_ZONED_TIMESTAMP_VAL);
    const Feast__Types__ZonedTimestamp *z = v->zoned_timestamp_val;
    char out[LDR_TZ_ISO_MAX];
    int n = ldr_tz_format(z->zone, z->unix_timestamp, 0, out, sizeof out);
    if (cases[i].want == NULL) {
      /* The caller writes null for INT64_MIN; the formatter refuses it too. */
      assert_true(z->unix_timestamp == INT64_MIN);
      assert_int_equal(n, -1);
    } else if (n < 0 || strcmp(out, cases[i].want) != 0) {
      fail_msg("%s: \"%s\", want \"%s\"", cases[i].feature, n < 0 ? "" : out, cases[i].want);
    }
    feast__types__value__free_unpacked(v, NULL);
    ldr_arena_destroy(&a);
  }
}

/* Long-settled history, and names the folder holds that are not zones. */
static void feast_iana_zones(void **state) {
  (void)state;
  if (!have_zoneinfo()) {
    print_message("no %s: IANA zones not checked\n", ldr_tz_dir());
    skip();
  }
  check_zone("Europe/Paris", T0, "2023-11-14T23:13:20+01:00");
  check_zone("Europe/Berlin", 962409600, "2000-07-01T02:00:00+02:00");
  check_zone("America/New_York", 962409600, "2000-06-30T20:00:00-04:00");
  check_zone("posixrules", 962409600, "2000-06-30T20:00:00-04:00");
  check_zone("Etc/GMT+1", T0, "2023-11-14T21:13:20-01:00"); /* POSIX signs: west */
  check_zone("UTC", T0, "2023-11-14T22:13:20+00:00");
  check_zone("Europe/Amsterdam", -2000000000, "1906-08-16T20:46:12+00:19:32");
  check_zone("Asia/Kolkata", T0, "2023-11-15T03:43:20+05:30");
  check_zone("Europe//Paris", T0, "unknown"); /* Python: not a normalized key */
  check_zone("localtime", T0, "unknown");
  check_zone("Europe", T0, "unknown");
  check_zone("leapseconds", T0, "unknown");
  check_zone("zone.tab", T0, "unknown");
  check_zone("../zoneinfo/UTC", T0, "unknown");
}

/* ---- $TZDIR, in a process of its own --------------------------------------- */

static void tzdir_chosen_once(void **state) {
  (void)state;
  setenv("TZDIR", root, 1);
  check_zone("Test/Zone", T0, "2023-11-15T01:13:20+03:00");
  assert_string_equal(ldr_tz_dir(), root);
  check_zone("Europe/Paris", T0, "unknown"); /* not in this folder */
  check_zone("+05:30", T0, "2023-11-15T03:43:20+05:30");
  setenv("TZDIR", "/nonexistent", 1); /* too late: read once */
  check_zone("Test/Zone", T0, "2023-11-15T01:13:20+03:00");
  assert_string_equal(ldr_tz_dir(), root);
}

/* ---- Python's zoneinfo -------------------------------------------------- */

static const char *tzdata_version(char *buf, size_t cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/tzdata.zi", ldr_tz_dir());
  FILE *f = fopen(path, "r");
  char line[128] = "";
  if (f != NULL) {
    if (fgets(line, sizeof line, f) == NULL) line[0] = '\0';
    fclose(f);
  }
  if (sscanf(line, "# version %31s", buf) != 1 || cap < 32) return NULL;
  return buf;
}

/* Every zone and link of tzdata against Python's zoneinfo: tz_cases.json,
 * or the file named by $LDR_TZ_CASES (gen_tz_cases.py --full). The table
 * is only good for the tzdata release it was written from. */
static void python_zoneinfo_table(void **state) {
  (void)state;
  const char *file = getenv("LDR_TZ_CASES");
  json_object *doc = ldr_test_json_file(file ? file : ldr_test_data("tz_cases.json"));
  const char *want_version = json_object_get_string(ldr_test_get(doc, "tzdata"));
  char version[32];
  if (!have_zoneinfo() || tzdata_version(version, sizeof version) == NULL ||
      strcmp(version, want_version) != 0) {
    print_message("tzdata here is not %s, the table's: regenerate it with gen_tz_cases.py\n",
                  want_version);
    json_object_put(doc);
    skip();
  }
  size_t checked = 0;
  json_object_object_foreach(ldr_test_get(doc, "zones"), zone, cases) {
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
      json_object *c = json_object_array_get_idx(cases, i);
      int64_t t = json_object_get_int64(json_object_array_get_idx(c, 0));
      const char *want = json_object_get_string(json_object_array_get_idx(c, 1));
      char out[LDR_TZ_ISO_MAX];
      int32_t off = 0;
      if (ldr_tz_offset(zone, t, &off) != 0) fail_msg("%s: unknown", zone);
      int n = ldr_tz_format_offset(t, 0, off, out, sizeof out);
      if (want == NULL ? n != -1 : n < 0 || strcmp(out, want) != 0)
        fail_msg("%s at %lld: \"%s\", want \"%s\"", zone, (long long)t, n < 0 ? "-1" : out,
                 want ? want : "null");
      checked++;
    }
  }
  print_message("%zu instants in %d zones agree with Python %s\n", checked,
                json_object_object_length(ldr_test_get(doc, "zones")),
                json_object_get_string(ldr_test_get(doc, "python")));
  assert_true(checked > 0);
  json_object_put(doc);
}

/* ldr_utc_from_civil agrees with glibc's timegm over Feast's years 1..9999:
 * every day boundary of leap and century years, and a walk of odd steps. */
static void utc_from_civil(void **state) {
  (void)state;
  size_t checked = 0;
  for (int64_t t = -62135596800LL; t <= 253402300799LL; t += 86399LL * 37 + 13) {
    struct tm tm;
    time_t tt = (time_t)t;
    assert_non_null(gmtime_r(&tt, &tm));
    int64_t got = ldr_utc_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (got != t)
      fail_msg("%04d-%02d-%02d: %lld, want %lld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
               (long long)got, (long long)t);
    checked++;
  }
  assert_int_equal(ldr_utc_from_civil(2000, 2, 29, 23, 59, 59), 951868799);
  assert_int_equal(ldr_utc_from_civil(1900, 3, 1, 0, 0, 0), -2203891200LL);
  assert_int_equal(ldr_utc_from_civil(1970, 1, 1, 0, 0, 0), 0);
  assert_true(checked > 70000);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "tzdir") == 0) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(tzdir_chosen_once)};
    return cmocka_run_group_tests(tests, make_folder, remove_folder);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tz_rules),           cmocka_unit_test(tz_rules_malformed),
      cmocka_unit_test(tzif_version1),      cmocka_unit_test(tzif_version2_and_later),
      cmocka_unit_test(tzif_malformed),     cmocka_unit_test(zone_names),
      cmocka_unit_test(folder_lookups),     cmocka_unit_test(folder_cache),
      cmocka_unit_test(folder_cache_model), cmocka_unit_test(folder_threads),
      cmocka_unit_test(system_tzdata_fits), cmocka_unit_test(feast_fixed_offsets),
      cmocka_unit_test(isoformat_rules),    cmocka_unit_test(feast_http_vectors),
      cmocka_unit_test(feast_iana_zones),   cmocka_unit_test(python_zoneinfo_table),
      cmocka_unit_test(utc_from_civil),
  };
  return cmocka_run_group_tests(tests, make_folder, remove_folder);
}
