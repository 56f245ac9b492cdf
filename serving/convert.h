/*
 * JSON values as Feast Values (HTTP.md §4.2 for join keys, §5 for features):
 * each JSON kind converted to the Value of a declared feast.types.ValueType,
 * or refused with a message that names both types. Used by HTTP's entities
 * and frames and by GrpcFeatureServer's text and typed features.
 */
#ifndef LDR_CONVERT_H
#define LDR_CONVERT_H

#include "common/arena.h"
#include "common/json.h"
#include "common/rc.h"
#include "feast/types/Value.pb-c.h"

/* feast.types.ValueType numbers beyond Value.proto's enum that Feast also
 * declares: bytes with a meaning, stored as bytes_val. */
enum { LDR_TYPE_PDF_BYTES = 30, LDR_TYPE_IMAGE_BYTES = 31 };

/*
 * Converts `j` to a Value of `type` (0: inferred from the JSON kind) in `a`.
 * A join key (`key` nonzero) takes only the key kinds, and no null. On a value
 * that does not convert: LDR_INVALID with a message without a field name (the
 * caller prefixes it); LDR_EXHAUSTED when `a` is full.
 */
enum ldr_rc ldr_json_to_value(const struct ldr_json *j, int type, int key, struct ldr_arena *a,
                              Feast__Types__Value **out, struct ldr_err *err);

/* The type's name as Feast writes it ("INT64", "STRING_LIST"), for messages. */
const char *ldr_value_type_name(int type);

/* Appends `j` as Python's json.dumps writes it (", " and ": " separators,
 * non-ASCII escaped, floats as repr): what Feast stores for a JSON feature. */
void ldr_json_dumps(struct ldr_sb *sb, const struct ldr_json *j);

#endif
