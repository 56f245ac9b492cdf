/*
 * Time zones for Feast's ZonedTimestamp values: the UTC offset of a stored
 * zone at an instant, and the instant rendered as Python's
 * datetime.fromtimestamp(t, tz).isoformat() renders it, which is what Feast's
 * feature server writes (HTTP.md §4.4).
 *
 * Nothing here reads or changes the process's TZ environment or uses the
 * local time zone: the server is multi-threaded, and tzset() and setenv()
 * are not thread-safe.
 */
#ifndef LDR_TZ_H
#define LDR_TZ_H

#include <stddef.h>
#include <stdint.h>

/* The longest text ldr_tz_format writes, with its NUL:
 * "YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM:SS". */
#define LDR_TZ_ISO_MAX 36

/*
 * The offset from UTC, in seconds east, of time zone `zone` at `t` (seconds
 * since the epoch, UTC). `zone` is resolved as Feast resolves it
 * (feast/type_map.py, _zone_from_name):
 *  - NULL or "" is UTC;
 *  - else an IANA name ("Europe/Berlin", "UTC", "Etc/GMT+5") read from the
 *    time-zone database: the folder named by $TZDIR when it is set and not
 *    empty the first time any function here is called, else
 *    /usr/share/zoneinfo. Names are checked before any file is opened:
 *    [A-Za-z0-9/_+-] only, no empty component, at most 128 bytes, and not
 *    "localtime" (the host's zone). A parsed zone is cached (4,096 names,
 *    4 MiB at most, least recently used first out: room for all of
 *    tzdata), so the file is read once;
 *  - else a fixed offset, after stripping white space: "UTC" or "GMT" (0), or
 *    an optional "UTC"/"GMT" prefix, a sign, two digits of hours, an
 *    optional ':' and two digits of minutes ("+05:30", "-0800",
 *    "UTC-07:00", "GMT+0100"). As in Python, the digits may be any Unicode
 *    decimal digits and minutes over 59 carry into hours ("+05:99" is
 *    +06:39). "+05", "UTC-8", "GMT+1" and "Z" are not offsets to Feast.
 * Returns 0 and sets *offset_s (always within ±86399); -1 when the zone is
 * none of these, or its offset is 24 hours or more (Feast fails the request
 * there): the caller then uses UTC, as Feast does. Thread-safe.
 */
int ldr_tz_offset(const char *zone, int64_t t, int32_t *offset_s);

/*
 * Writes t (seconds since the epoch, UTC) plus `nanos` at `offset_s` seconds
 * east of UTC into out[0..cap) as "YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM[:SS]",
 * Python's isoformat: microseconds (nanos truncated, as pandas truncates
 * them into a datetime) only when not zero, seconds of the offset only when
 * not zero. Returns the length written (without the NUL), or -1 when nanos
 * is outside 0..999999999, the offset outside ±86399, either the UTC or the
 * local time falls outside years 1..9999 (Python raises there; Feast's
 * INT64_MIN "no timestamp" is one such instant, which the caller renders as
 * null before asking), or cap is too small (LDR_TZ_ISO_MAX is enough).
 */
int ldr_tz_format_offset(int64_t t, int32_t nanos, int32_t offset_s, char *out, size_t cap);

/*
 * ldr_tz_format_offset at the offset of `zone` at `t` (ldr_tz_offset), or
 * of UTC when the zone is unknown, as Feast reads it. Returns what
 * ldr_tz_format_offset returns. Callers that log unknown zones call
 * ldr_tz_offset and ldr_tz_format_offset themselves.
 */
int ldr_tz_format(const char *zone, int64_t t, int32_t nanos, char *out, size_t cap);

/* The time-zone database folder in use (see ldr_tz_offset), for logs. The
 * string is static. */
const char *ldr_tz_dir(void);

/* Seconds since the epoch of a UTC date and time (proleptic Gregorian): what
 * timegm() computes, without glibc's time-zone machinery and its lock. */
int64_t ldr_utc_from_civil(int64_t year, int month, int day, int hour, int minute, int second);

#endif
