/*
 * JSON (RFC 8259) for the HTTP API: a parser into a tree that lives in an
 * arena (so a request's JSON costs what its arena cap allows, no more), and
 * the writing pieces a reply needs. Strict: one value, UTF-8, no comments,
 * no trailing commas, no NaN/Infinity; numbers are kept as their text so
 * that conversions are exact.
 */
#ifndef LDR_JSON_H
#define LDR_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/rc.h"
#include "common/strbuf.h"

enum ldr_json_type {
  LDR_JSON_NULL,
  LDR_JSON_FALSE,
  LDR_JSON_TRUE,
  LDR_JSON_NUMBER,
  LDR_JSON_STRING,
  LDR_JSON_ARRAY,
  LDR_JSON_OBJECT,
};

/*
 * One value of a parsed document. A node is 24 bytes on LP64 (type and n in
 * the first word, then two words that mean what `type` says), so a large
 * array costs little more than its items' text: "[0,0,...]" about 26 bytes
 * per item. Read s and len only for NUMBER and STRING, items and keys only
 * for ARRAY and OBJECT: each pair shares its storage with the other. n is 0
 * for everything but ARRAY and OBJECT. Every pointer points into the arena
 * the document was parsed into.
 */
struct ldr_json {
  enum ldr_json_type type;
  /* ARRAY: n items. OBJECT: n members, keys[i] (STRING nodes) naming
   * items[i], in the order written, repeated keys kept. A container holds at
   * most UINT32_MAX items; a longer one fails the parse with LDR_EXHAUSTED. */
  uint32_t n;
  union {
    struct {
      /* NUMBER: the text as written ("-1.5e3"), NUL-terminated. STRING: the
       * unescaped UTF-8 bytes, NUL-terminated (a "\u0000" inside makes len
       * the measure). NULL for null, true and false. */
      const char *s;
      size_t len;
    };
    struct {
      /* ARRAY and OBJECT: NULL when n is 0; keys is NULL for an ARRAY. */
      struct ldr_json *items;
      struct ldr_json *keys;
    };
  };
};

/* How a parse failed, beyond LDR_INVALID: where, and whether it was only
 * nesting deeper than allowed (HTTP answers that one differently). Both are 0
 * after any other outcome. */
struct ldr_json_error {
  size_t offset; /* bytes into the text, as in the message */
  int too_deep;
};

/*
 * Parses text[0..len) into *out, all of it allocated in `a` (nothing else is
 * allocated, and `text` may be freed afterwards). Returns LDR_OK; LDR_INVALID
 * with a message such as "body: at byte 17: expected ',' or '}'" when the
 * text is not one JSON value, is not UTF-8, or nests deeper than `max_depth`
 * arrays and objects (0 or less: only a scalar parses); LDR_EXHAUSTED with a
 * message when `a` reaches its cap. *out is NULL on failure, and `a` keeps
 * what the failed parse took until it is reset. `where` may be NULL. Time is
 * linear in len; memory is 24 bytes per value (LP64), the unescaped text with
 * a NUL after each string and number, and 4 bytes per array or object.
 */
enum ldr_rc ldr_json_parse(const char *text, size_t len, struct ldr_arena *a, int max_depth,
                           struct ldr_json **out, struct ldr_json_error *where,
                           struct ldr_err *err);

/* The member `key` of an object (the last one when repeated), or NULL; NULL
 * when `obj` is NULL or not an object. */
const struct ldr_json *ldr_json_get(const struct ldr_json *obj, const char *key);

/* For each member i of an object: the member whose value counts for i's key
 * (the last one of that key), or SIZE_MAX when an earlier member has the key
 * (Python's dict keeps the first place and the last value). n log n in the
 * members. In `a`, or malloc'd when `a` is NULL (the caller frees it); NULL
 * when memory is short. */
size_t *ldr_json_members(const struct ldr_json *obj, struct ldr_arena *a);

/* The object as Python's json.loads makes it: each key once, in the place
 * it first had, with the value it had last. `obj` itself when no key
 * repeats (or it is not an object); else a new node in `a`, sharing the
 * members' nodes; NULL when memory is short. */
const struct ldr_json *ldr_json_unique(const struct ldr_json *obj, struct ldr_arena *a);

/* A NUMBER written without fraction or exponent: 1 with *out set when it fits
 * int64 ("-0" is 0), -1 when it does not fit, 0 when it is not such a number
 * (or `j` is NULL). *out is left alone unless 1 is returned. */
int ldr_json_int64(const struct ldr_json *j, int64_t *out);

/* A NUMBER whose value is a whole number within int64 ("7", "7.0", "1e3",
 * "-2.5e1", "-0.0"; not "1.9", "1e19" or "1e-400"): 1 with *out set; 0
 * otherwise. Decided on the decimal text, exactly, never through a double. */
int ldr_json_integral(const struct ldr_json *j, int64_t *out);

/* A NUMBER as the nearest double (strtod, C locale); ±HUGE_VAL beyond range;
 * 0 for anything that is not a NUMBER. */
double ldr_json_double(const struct ldr_json *j);

/* Nonzero for a NUMBER written with a fraction or an exponent. */
int ldr_json_has_fraction(const struct ldr_json *j);

/* The JSON type's name for messages: "null", "boolean" (true and false),
 * "number", "string", "array", "object". Static. */
const char *ldr_json_type_name(enum ldr_json_type t);

/* ---- writing */

/* Appends s[0..n) as a JSON string: quotes, and escapes for '"', '\\' and
 * control characters only (\n \t \r \b \f, else \u00xx); every other byte,
 * UTF-8 and U+2028 included, passes through as it is. Failures are the
 * strbuf's: sb->failed. */
void ldr_json_put_string(struct ldr_sb *sb, const char *s, size_t n);

/* Appends a double as Python's repr writes a float (shortest round trip,
 * ".0" on integral values, "1e+16", "1e-05"), or `null` when not finite. */
void ldr_json_put_double(struct ldr_sb *sb, double d);

/* Appends s[0..n) as standard base64 with padding, in quotes. */
void ldr_json_put_base64(struct ldr_sb *sb, const uint8_t *s, size_t n);

/* Decodes standard base64 (RFC 4648 §4) with padding into `a`: 0 with *out
 * (NUL-terminated, in `a`) and *out_len set; -1 when `s` is not such base64
 * (then nothing is allocated) or when `a` is full. Only the canonical
 * encoding is accepted: length a multiple of 4, no whitespace, '=' only at
 * the end, and the bits past the last byte zero ("Zg==", not "Zh=="). */
int ldr_base64_decode(const char *s, size_t n, struct ldr_arena *a, uint8_t **out, size_t *out_len);

#endif
