/*
 * JSON in two passes over the text. The first checks everything (grammar,
 * UTF-8, escapes, depth) and counts: the nodes, the bytes of unescaped text,
 * and each array's and object's items, in the order they open. The second
 * walks the same text again and fills one allocation of exactly that size,
 * carving each container's items from it as the container opens. So a
 * document costs its nodes and its text plus 4 bytes per container, nothing
 * is grown and thrown away, a body too large for the arena's cap fails in one
 * place, and there is no recursion: nesting is a stack of frames no deeper
 * than max_depth.
 */
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(void *) != 8 || sizeof(struct ldr_json) == 24,
               "a node is three words on LP64: the memory bound of large arrays rests on it");

/* Each container's item count, as the first pass found them; chunks double
 * so a small document takes one small chunk and a large one few. */
struct count_chunk {
  struct count_chunk *next;
  size_t used, cap;
  uint32_t v[];
};

/* An open array or object. */
struct frame {
  union {
    uint32_t *count;       /* first pass: where its item count goes */
    struct ldr_json *node; /* second pass: the node being filled */
  } at;
  uint32_t i;   /* items (members) seen so far */
  uint32_t obj; /* an object: each member is a key, ':' and a value */
};

struct parser {
  const unsigned char *start, *end;
  struct ldr_arena *a;
  size_t max_depth;
  struct ldr_json_error *where;
  struct ldr_err *err;
  int build; /* 0: check and count; 1: fill the tree */
  struct frame *stack;
  size_t stack_cap;
  /* What the first pass counts. */
  size_t n_nodes, n_text;
  struct count_chunk *counts, *counts_last;
  /* What the second pass consumes. */
  struct count_chunk *rd;
  size_t rd_i;
  struct ldr_json *next_node;
  char *next_text;
};

static enum ldr_rc invalid(struct parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum ldr_rc invalid(struct parser *ps, const unsigned char *at, const char *fmt, ...) {
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  size_t off = (size_t)(at - ps->start);
  if (ps->where != NULL) ps->where->offset = off;
  return ldr_err_set(ps->err, LDR_INVALID, "body: at byte %zu: %s", off, what);
}

/* The arena's cap: where the parse stopped says nothing useful, the body's size does. */
static enum ldr_rc no_memory(struct parser *ps) {
  return ldr_err_set(ps->err, LDR_EXHAUSTED,
                     "body: %zu bytes of JSON need more memory than a request may use",
                     (size_t)(ps->end - ps->start));
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

/*
 * The length (2 to 4) of the well-formed UTF-8 sequence at p, whose first
 * byte is not ASCII, or 0. The ranges are RFC 3629's: no overlong forms, no
 * UTF-16 surrogates (ED A0..BF), nothing past U+10FFFF (F4 90.. and F5..FF).
 */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < n; k++)
    if (p[k] < 0x80 || p[k] > 0xBF) return 0;
  return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out) {
  if (end - p < 4) return -1;
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = p[k], lc = c | 0x20, d;
    if (is_digit(c))
      d = c - '0';
    else if (lc >= 'a' && lc <= 'f')
      d = lc - 'a' + 10;
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/* Writes code point `cp` as UTF-8 at o (unless o is NULL); returns its length. */
static size_t put_utf8(unsigned char *o, unsigned cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | cp >> 6);
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | cp >> 12);
    b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | cp >> 18);
    b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  if (o != NULL) memcpy(o, b, n);
  return n;
}

/* The text of a string or number, n bytes at the pool's next position:
 * counted by the first pass, terminated and handed out by the second. */
static void text_done(struct parser *ps, struct ldr_json *node, enum ldr_json_type type, size_t n) {
  if (!ps->build) {
    ps->n_text += n + 1;
    return;
  }
  ps->next_text[n] = '\0';
  node->type = type;
  node->n = 0;
  node->s = ps->next_text;
  node->len = n;
  ps->next_text += n + 1;
}

/* A backslash escape at p inside a string: its bytes go to out + *n (when
 * building) and *pp moves past it. */
static enum ldr_rc escape(struct parser *ps, const unsigned char **pp, unsigned char *out,
                          size_t *n) {
  const unsigned char *p = *pp, *end = ps->end;
  if (end - p < 2) return invalid(ps, p + 1, "expected an escape after '\\'");
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = p[1] != 'u' && p[1] != '\0' ? strchr(from, p[1]) : NULL;
  if (hit != NULL) {
    if (out != NULL) out[*n] = (unsigned char)to[hit - from];
    *n += 1;
    *pp = p + 2;
    return LDR_OK;
  }
  if (p[1] != 'u') return invalid(ps, p + 1, "expected one of \"\\/bfnrtu after '\\'");
  unsigned cp, lo;
  if (hex4(p + 2, end, &cp) != 0) return invalid(ps, p + 2, "expected four hex digits after \\u");
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return invalid(ps, p, "\\u%04X is a low surrogate without a high one before it", cp);
  const unsigned char *q = p + 6;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    /* UTF-16's pair for a code point past U+FFFF: a lone half is no character. */
    if (end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, end, &lo) != 0 || lo < 0xDC00 ||
        lo > 0xDFFF)
      return invalid(ps, p, "\\u%04X is a high surrogate without a low one after it", cp);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    q += 6;
  }
  *n += put_utf8(out != NULL ? out + *n : NULL, cp);
  *pp = q;
  return LDR_OK;
}

/* A string whose opening quote is at *pp, into `node` (the second pass). */
static enum ldr_rc string(struct parser *ps, const unsigned char **pp, struct ldr_json *node) {
  const unsigned char *p = *pp + 1, *end = ps->end;
  unsigned char *out = ps->build ? (unsigned char *)ps->next_text : NULL;
  size_t n = 0;
  for (;;) {
    /* The bytes that stand for themselves go as one run. */
    const unsigned char *run = p;
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
    if (out != NULL && p > run) memcpy(out + n, run, (size_t)(p - run));
    n += (size_t)(p - run);
    if (p == end) return invalid(ps, p, "expected '\"' to end the string");
    if (*p == '"') break;
    if (*p < 0x20)
      return invalid(ps, p, "control character 0x%02X in a string (write it escaped)", *p);
    if (*p == '\\') {
      enum ldr_rc rc = escape(ps, &p, out, &n);
      if (rc != LDR_OK) return rc;
      continue;
    }
    size_t k = utf8_seq(p, end);
    if (k == 0) return invalid(ps, p, "invalid UTF-8 in a string");
    if (out != NULL) memcpy(out + n, p, k);
    n += k;
    p += k;
  }
  text_done(ps, node, LDR_JSON_STRING, n);
  *pp = p + 1;
  return LDR_OK;
}

/* A number at *pp: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, kept as written. */
static enum ldr_rc number(struct parser *ps, const unsigned char **pp, struct ldr_json *node) {
  const unsigned char *p = *pp, *end = ps->end;
  if (*p == '-') p++;
  if (p == end || !is_digit(*p)) return invalid(ps, p, "expected a digit");
  if (*p == '0') {
    p++;
    if (p < end && is_digit(*p)) return invalid(ps, p - 1, "a number does not start with 0");
  } else {
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && *p == '.') {
    p++;
    if (p == end || !is_digit(*p)) return invalid(ps, p, "expected a digit after '.'");
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p == end || !is_digit(*p)) return invalid(ps, p, "expected a digit in the exponent");
    while (p < end && is_digit(*p)) p++;
  }
  size_t n = (size_t)(p - *pp);
  if (ps->build) memcpy(ps->next_text, *pp, n);
  text_done(ps, node, LDR_JSON_NUMBER, n);
  *pp = p;
  return LDR_OK;
}

/* A value that is not an array or object: string, number, true, false, null. */
static enum ldr_rc scalar(struct parser *ps, const unsigned char **pp, struct ldr_json *node) {
  static const struct {
    const char *word;
    size_t len;
    enum ldr_json_type type;
  } words[] = {
      {"true", 4, LDR_JSON_TRUE}, {"false", 5, LDR_JSON_FALSE}, {"null", 4, LDR_JSON_NULL}};
  const unsigned char *p = *pp;
  if (p == ps->end) return invalid(ps, p, "expected a value");
  if (*p == '"') return string(ps, pp, node);
  if (*p == '-' || is_digit(*p)) return number(ps, pp, node);
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (*p != (unsigned char)words[i].word[0]) continue;
    if ((size_t)(ps->end - p) < words[i].len || memcmp(p, words[i].word, words[i].len) != 0)
      return invalid(ps, p, "expected '%s'", words[i].word);
    if (ps->build) {
      node->type = words[i].type;
      node->n = 0;
      node->s = NULL;
      node->len = 0;
    }
    *pp = p + words[i].len;
    return LDR_OK;
  }
  return invalid(ps, p, "expected a value");
}

/* A slot for the item count of the container opening now (first pass). */
static uint32_t *new_count(struct parser *ps) {
  struct count_chunk *c = ps->counts_last;
  if (c == NULL || c->used == c->cap) {
    size_t cap = c == NULL ? 16 : c->cap < 65536 ? c->cap * 2 : c->cap;
    struct count_chunk *nc = ldr_arena_alloc(ps->a, sizeof *nc + cap * sizeof nc->v[0]);
    if (nc == NULL) return NULL;
    nc->next = NULL;
    nc->used = 0;
    nc->cap = cap;
    if (c == NULL)
      ps->counts = nc;
    else
      c->next = nc;
    ps->counts_last = c = nc;
  }
  return &c->v[c->used++];
}

/* The item count of the container opening now (second pass), in the same order. */
static uint32_t next_count(struct parser *ps) {
  while (ps->rd_i == ps->rd->used) {
    ps->rd = ps->rd->next;
    ps->rd_i = 0;
  }
  return ps->rd->v[ps->rd_i++];
}

/* The '[' or '{' at p opens a container at `depth` (0 for the document itself). */
static enum ldr_rc open_container(struct parser *ps, const unsigned char *p, size_t depth,
                                  struct ldr_json *node) {
  if (depth >= ps->max_depth) {
    if (ps->where != NULL) ps->where->too_deep = 1;
    return invalid(ps, p, "nested deeper than %zu arrays and objects", ps->max_depth);
  }
  if (depth == ps->stack_cap) {
    /* Only the first pass grows the stack: the second goes no deeper. */
    size_t cap = ps->stack_cap == 0 ? 8 : ps->stack_cap * 2;
    if (cap > ps->max_depth) cap = ps->max_depth;
    struct frame *stack = ldr_arena_calloc(ps->a, cap, sizeof *stack);
    if (stack == NULL) return no_memory(ps);
    if (depth > 0) memcpy(stack, ps->stack, depth * sizeof *stack);
    ps->stack = stack;
    ps->stack_cap = cap;
  }
  struct frame *f = &ps->stack[depth];
  f->i = 0;
  f->obj = *p == '{';
  if (!ps->build) {
    f->at.count = new_count(ps);
    if (f->at.count == NULL) return no_memory(ps);
    return LDR_OK;
  }
  uint32_t n = next_count(ps);
  node->type = f->obj ? LDR_JSON_OBJECT : LDR_JSON_ARRAY;
  node->n = n;
  node->items = n > 0 ? ps->next_node : NULL;
  ps->next_node += n;
  node->keys = n > 0 && f->obj ? ps->next_node : NULL;
  if (f->obj) ps->next_node += n;
  f->at.node = node;
  return LDR_OK;
}

static void close_container(struct parser *ps, const struct frame *f) {
  if (ps->build) return;
  *f->at.count = f->i;
  ps->n_nodes += (size_t)f->i * (f->obj ? 2 : 1);
}

/* An object member's key and its ':', from *pp; the key goes to keys[f->i]. */
static enum ldr_rc member_key(struct parser *ps, const unsigned char **pp, const struct frame *f,
                              const char *expected) {
  const unsigned char *p = skip_ws(*pp, ps->end);
  if (p == ps->end || *p != '"') return invalid(ps, p, "%s", expected);
  enum ldr_rc rc = string(ps, &p, ps->build ? &f->at.node->keys[f->i] : NULL);
  if (rc != LDR_OK) return rc;
  p = skip_ws(p, ps->end);
  if (p == ps->end || *p != ':') return invalid(ps, p, "expected ':'");
  *pp = p + 1;
  return LDR_OK;
}

/* One pass over the whole text: values, and between them what ends or continues a container. */
static enum ldr_rc walk(struct parser *ps) {
  const unsigned char *p = ps->start, *end = ps->end;
  size_t depth = 0;
  struct ldr_json *slot = ps->build ? ps->next_node++ : NULL; /* where the next value goes */
  enum ldr_rc rc;
  for (;;) {
    p = skip_ws(p, end);
    if (p < end && (*p == '[' || *p == '{')) {
      rc = open_container(ps, p, depth, slot);
      if (rc != LDR_OK) return rc;
      struct frame *f = &ps->stack[depth++];
      p = skip_ws(p + 1, end);
      if (p < end && *p == (f->obj ? '}' : ']')) {
        p++;
        close_container(ps, f);
        depth--;
      } else {
        if (f->obj) {
          rc = member_key(ps, &p, f, "expected a string or '}'");
          if (rc != LDR_OK) return rc;
        }
        slot = ps->build ? &f->at.node->items[0] : NULL;
        continue;
      }
    } else {
      rc = scalar(ps, &p, slot);
      if (rc != LDR_OK) return rc;
    }
    /* A value ended: close the containers it ends, up to one that goes on. */
    for (;;) {
      p = skip_ws(p, end);
      if (depth == 0) {
        if (p != end) return invalid(ps, p, "expected the end of the text");
        return LDR_OK;
      }
      struct frame *f = &ps->stack[depth - 1];
      if (f->i == UINT32_MAX) /* a node's n is 32 bits */
        return ldr_err_set(ps->err, LDR_EXHAUSTED,
                           "body: at byte %zu: more than 4294967295 items in an array or object",
                           (size_t)(p - ps->start));
      f->i++;
      if (p < end && *p == ',') {
        p++;
        if (f->obj) {
          rc = member_key(ps, &p, f, "expected a string");
          if (rc != LDR_OK) return rc;
        }
        slot = ps->build ? &f->at.node->items[f->i] : NULL;
        break;
      }
      if (p == end || *p != (f->obj ? '}' : ']'))
        return invalid(ps, p, f->obj ? "expected ',' or '}'" : "expected ',' or ']'");
      p++;
      close_container(ps, f);
      depth--;
    }
  }
}

enum ldr_rc ldr_json_parse(const char *text, size_t len, struct ldr_arena *a, int max_depth,
                           struct ldr_json **out, struct ldr_json_error *where,
                           struct ldr_err *err) {
  *out = NULL;
  if (where != NULL) {
    where->offset = 0;
    where->too_deep = 0;
  }
  if (text == NULL) {
    text = "";
    len = 0;
  }
  struct parser ps = {
      .start = (const unsigned char *)text,
      .end = (const unsigned char *)text + len,
      .a = a,
      .max_depth = max_depth > 0 ? (size_t)max_depth : 0,
      .where = where,
      .err = err,
      .n_nodes = 1,
  };
  enum ldr_rc rc = walk(&ps);
  if (rc != LDR_OK) return rc;
  /* Every node and every byte of text in one allocation; n_nodes and n_text
   * are at most about len each, so the sum cannot wrap on a real body. */
  if (ps.n_nodes > (SIZE_MAX - ps.n_text) / sizeof(struct ldr_json)) return no_memory(&ps);
  struct ldr_json *nodes = ldr_arena_alloc(a, ps.n_nodes * sizeof *nodes + ps.n_text);
  if (nodes == NULL) return no_memory(&ps);
  ps.build = 1;
  ps.next_node = nodes;
  ps.next_text = (char *)(nodes + ps.n_nodes);
  ps.rd = ps.counts;
  ps.rd_i = 0;
  /* The text passed the first walk, so the second only fills. */
  rc = walk(&ps);
  if (rc != LDR_OK) return rc;
  *out = nodes;
  return LDR_OK;
}

/* ---- reading */

const struct ldr_json *ldr_json_get(const struct ldr_json *obj, const char *key) {
  if (obj == NULL || obj->type != LDR_JSON_OBJECT) return NULL;
  size_t klen = strlen(key);
  /* From the end: the last of repeated keys is the one that counts. */
  for (size_t i = obj->n; i > 0; i--) {
    const struct ldr_json *k = &obj->keys[i - 1];
    if (k->len == klen && memcmp(k->s, key, klen) == 0) return &obj->items[i - 1];
  }
  return NULL;
}

/* A member's key and place, for finding repeated keys in n log n. */
struct member {
  const char *s;
  size_t len, idx;
};

static int by_key(const void *x, const void *y) {
  const struct member *a = x, *b = y;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->s, b->s, n) : 0;
  if (c == 0) c = (a->len > b->len) - (a->len < b->len);
  return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

size_t *ldr_json_members(const struct ldr_json *obj, struct ldr_arena *a) {
  size_t n = obj->n;
  size_t *out = a ? ldr_arena_alloc(a, (n + 1) * sizeof *out) : malloc((n + 1) * sizeof *out);
  struct member *m = a ? ldr_arena_alloc(a, (n + 1) * sizeof *m) : malloc((n + 1) * sizeof *m);
  if (out == NULL || m == NULL) {
    if (a == NULL) {
      free(out);
      free(m);
    }
    return NULL;
  }
  for (size_t i = 0; i < n; i++) m[i] = (struct member){obj->keys[i].s, obj->keys[i].len, i};
  qsort(m, n, sizeof *m, by_key);
  for (size_t i = 0; i < n;) {
    size_t e = i + 1;
    while (e < n && m[e].len == m[i].len && !memcmp(m[e].s, m[i].s, m[i].len)) e++;
    out[m[i].idx] = m[e - 1].idx; /* the first place takes the last value */
    for (size_t k = i + 1; k < e; k++) out[m[k].idx] = SIZE_MAX;
    i = e;
  }
  if (a == NULL) free(m);
  return out;
}

const struct ldr_json *ldr_json_unique(const struct ldr_json *obj, struct ldr_arena *a) {
  if (obj == NULL || obj->type != LDR_JSON_OBJECT || obj->n < 2) return obj;
  size_t *from = ldr_json_members(obj, a);
  if (from == NULL) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < obj->n; i++) n += from[i] != SIZE_MAX;
  if (n == obj->n) return obj;
  struct ldr_json *u = ldr_arena_alloc(a, sizeof *u);
  struct ldr_json *keys = ldr_arena_alloc(a, n * sizeof *keys);
  struct ldr_json *items = ldr_arena_alloc(a, n * sizeof *items);
  if (u == NULL || keys == NULL || items == NULL) return NULL;
  for (size_t i = 0, k = 0; i < obj->n; i++) {
    if (from[i] == SIZE_MAX) continue;
    keys[k] = obj->keys[i];
    items[k++] = obj->items[from[i]];
  }
  *u = (struct ldr_json){.type = LDR_JSON_OBJECT, .n = (uint32_t)n, .items = items, .keys = keys};
  return u;
}

/* The parts of a NUMBER's text. */
struct decimal {
  int neg;
  const char *digits; /* integer digits, then (after '.') fraction digits */
  size_t n_int, n_frac;
  long long exp; /* saturated at ±LDR_EXP_MAX */
};

/* Past any body's digit count, so a saturated exponent decides as the exact one would. */
#define LDR_EXP_MAX 1000000000000000LL

static int decimal_of(const struct ldr_json *j, struct decimal *d) {
  if (j == NULL || j->type != LDR_JSON_NUMBER || j->s == NULL) return -1;
  const char *p = j->s, *end = j->s + j->len;
  memset(d, 0, sizeof *d);
  d->neg = p < end && *p == '-';
  if (d->neg) p++;
  d->digits = p;
  while (p < end && is_digit((unsigned char)*p)) p++;
  d->n_int = (size_t)(p - d->digits);
  if (d->n_int == 0) return -1;
  if (p < end && *p == '.') {
    p++;
    while (p < end && is_digit((unsigned char)*p)) p++, d->n_frac++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    int eneg = p < end && *p == '-';
    if (p < end && (*p == '+' || *p == '-')) p++;
    for (; p < end && is_digit((unsigned char)*p); p++)
      if (d->exp < LDR_EXP_MAX) d->exp = d->exp * 10 + (*p - '0');
    if (eneg) d->exp = -d->exp;
  }
  return 0;
}

/* Digit k of the significand (integer then fraction digits, skipping the '.'). */
static unsigned digit_at(const struct decimal *d, size_t k) {
  return (unsigned)(d->digits[k < d->n_int ? k : k + 1] - '0');
}

/* d as an int64 when it is a whole number in range: 1, -1 out of range, 0 fractional. */
static int decimal_int64(const struct decimal *d, int64_t *out) {
  size_t n = d->n_int + d->n_frac, first = 0, last = n;
  while (first < n && digit_at(d, first) == 0) first++;
  if (first == n) { /* zero, whatever the sign and exponent */
    *out = 0;
    return 1;
  }
  while (digit_at(d, last - 1) == 0) last--;
  /* value = digits[first..last) * 10^shift, the digits ending in a nonzero one */
  long long shift = d->exp - (long long)d->n_frac + (long long)(n - last);
  if (shift < 0) return 0;
  if ((long long)(last - first) + shift > 19) return -1;
  const uint64_t limit = (uint64_t)INT64_MAX + (d->neg ? 1 : 0);
  uint64_t v = 0;
  for (size_t k = first; k < last; k++) v = v * 10 + digit_at(d, k); /* at most 19 digits */
  for (long long k = 0; k < shift; k++) {
    if (v > limit / 10) return -1;
    v *= 10;
  }
  if (v > limit) return -1;
  *out = d->neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
  return 1;
}

int ldr_json_int64(const struct ldr_json *j, int64_t *out) {
  struct decimal d;
  if (decimal_of(j, &d) != 0 || ldr_json_has_fraction(j)) return 0;
  int64_t v;
  int r = decimal_int64(&d, &v);
  if (r == 1) *out = v;
  return r;
}

int ldr_json_integral(const struct ldr_json *j, int64_t *out) {
  struct decimal d;
  int64_t v;
  if (decimal_of(j, &d) != 0 || decimal_int64(&d, &v) != 1) return 0;
  *out = v;
  return 1;
}

double ldr_json_double(const struct ldr_json *j) {
  if (j == NULL || j->type != LDR_JSON_NUMBER || j->s == NULL) return 0;
  return strtod(j->s, NULL);
}

int ldr_json_has_fraction(const struct ldr_json *j) {
  if (j == NULL || j->type != LDR_JSON_NUMBER) return 0;
  /* 'N': the NaN a typed list element stands for (service/push.c), a float. */
  for (size_t i = 0; i < j->len; i++)
    if (j->s[i] == '.' || j->s[i] == 'e' || j->s[i] == 'E' || j->s[i] == 'N') return 1;
  return 0;
}

const char *ldr_json_type_name(enum ldr_json_type t) {
  switch (t) {
  case LDR_JSON_NULL:
    return "null";
  case LDR_JSON_FALSE:
  case LDR_JSON_TRUE:
    return "boolean";
  case LDR_JSON_NUMBER:
    return "number";
  case LDR_JSON_STRING:
    return "string";
  case LDR_JSON_ARRAY:
    return "array";
  case LDR_JSON_OBJECT:
    return "object";
  }
  return "unknown";
}
