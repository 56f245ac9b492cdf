/* Protobuf wire helpers the request path uses beside protobuf-c. */
#ifndef LDR_WIRE_H
#define LDR_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* Deepest message nesting a request may have; protobuf-c itself has no limit. */
#define LDR_WIRE_MAX_DEPTH 64

/*
 * What a pass over a request's bytes found before protobuf-c is trusted with
 * it: `top_count[i]` counts occurrences of the top-level field number i (1..15),
 * so size limits can be checked before anything is decoded. When a string
 * field holds invalid UTF-8 or a NUL byte, or a known field comes with
 * another wire type than its type's, `bad_field` is set and `field_err`
 * names the first one's path ("rows[3].features[0].key: ...").
 */
struct ldr_wire_scan {
  size_t top_count[16];
  int bad_field;
  struct ldr_err field_err;
};

/*
 * Walks `p[0..n)` as a message of type `desc`. Returns LDR_OK, or LDR_INVALID
 * in `err` when the bytes are not a well-formed message of that type or nest
 * deeper than LDR_WIRE_MAX_DEPTH. Field problems do not fail the walk: they
 * are reported in `scan`, so that limit checks can come first.
 */
enum ldr_rc ldr_wire_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                          struct ldr_wire_scan *scan, struct ldr_err *err);

/* Returns nonzero when p[0..n) is valid UTF-8 without NUL bytes. */
int ldr_utf8_valid(const uint8_t *p, size_t n);

/* Bytes a varint of `v` takes. */
size_t ldr_pb_varint_size(uint64_t v);

/* Writes `v` as a varint at `p`; returns the byte after it. */
uint8_t *ldr_pb_put_varint(uint8_t *p, uint64_t v);

#endif
