/* What serving/convert.c and serving/convert_list.c share: the ValueType
 * numbers, the conversion's memory and error, and each file's entry points. */
#ifndef LDR_CONVERT_INT_H
#define LDR_CONVERT_INT_H

#include "serving/convert.h"

enum {
  T_INVALID = 0,
  T_BYTES = 1,
  T_STRING = 2,
  T_INT32 = 3,
  T_INT64 = 4,
  T_DOUBLE = 5,
  T_FLOAT = 6,
  T_BOOL = 7,
  T_UNIX_TIMESTAMP = 8,
  T_BYTES_LIST = 11,
  T_STRING_LIST = 12,
  T_INT32_LIST = 13,
  T_INT64_LIST = 14,
  T_DOUBLE_LIST = 15,
  T_FLOAT_LIST = 16,
  T_BOOL_LIST = 17,
  T_UNIX_TIMESTAMP_LIST = 18,
  T_NULL = 19,
  T_MAP = 20,
  T_MAP_LIST = 21,
  T_BYTES_SET = 22,
  T_STRING_SET = 23,
  T_INT32_SET = 24,
  T_INT64_SET = 25,
  T_DOUBLE_SET = 26,
  T_FLOAT_SET = 27,
  T_BOOL_SET = 28,
  T_UNIX_TIMESTAMP_SET = 29,
  T_JSON = 32,
  T_JSON_LIST = 33,
  T_STRUCT = 34,
  T_STRUCT_LIST = 35,
  T_UUID = 36,
  T_TIME_UUID = 37,
  T_UUID_LIST = 38,
  T_TIME_UUID_LIST = 39,
  T_UUID_SET = 40,
  T_TIME_UUID_SET = 41,
  T_VALUE_LIST = 42,
  T_VALUE_SET = 43,
  T_DECIMAL = 44,
  T_DECIMAL_LIST = 45,
  T_DECIMAL_SET = 46,
  T_SCALAR_MAP = 47,
  T_ZONED_TIMESTAMP = 48,
};

/* Nested JSON text inside a JSON or map feature parses no deeper than this. */
#define NESTED_DEPTH 64

/* Nested JSON text inside a JSON or map feature parses no deeper than this. */
#define LDR_CV_NESTED_DEPTH 64

struct conv {
  struct ldr_arena *a;
  struct ldr_err *err;
};

/* convert.c: scalars, json.dumps, and the dispatch by declared type. */
const char *ldr_cv_kind(const struct ldr_json *j);
enum ldr_rc ldr_cv_refuse(struct ldr_err *err, const struct ldr_json *j, int type);
enum ldr_rc ldr_cv_no_memory(struct ldr_err *err);
Feast__Types__Value *ldr_cv_new_value(struct conv *c);
enum ldr_rc ldr_cv_scalar(struct conv *c, const struct ldr_json *j, int type,
                          Feast__Types__Value *v);
char *ldr_cv_dumps(struct conv *c, const struct ldr_json *j);
enum ldr_rc ldr_cv_nested(struct conv *c, const struct ldr_json *j, int object,
                          struct ldr_json **out);
enum ldr_rc ldr_cv_typed(struct conv *c, const struct ldr_json *j, int type,
                         Feast__Types__Value *v);

/* convert_list.c: lists, sets, maps and values of no declared type. */
int ldr_cv_element_type(int type);
enum ldr_rc ldr_cv_list(struct conv *c, const struct ldr_json *j, int type, Feast__Types__Value *v);
enum ldr_rc ldr_cv_inferred(struct conv *c, const struct ldr_json *j, Feast__Types__Value *v);
enum ldr_rc ldr_cv_make_map(struct conv *c, const struct ldr_json *obj, Feast__Types__Map **out);
enum ldr_rc ldr_cv_map_of(struct conv *c, const struct ldr_json *j, int type,
                          Feast__Types__Map **out);
enum ldr_rc ldr_cv_map_list(struct conv *c, const struct ldr_json *j, int type,
                            Feast__Types__MapList **out);
enum ldr_rc ldr_cv_json_list(struct conv *c, const struct ldr_json *j, Feast__Types__Value *v);
enum ldr_rc ldr_cv_value_list(struct conv *c, const struct ldr_json *j, int type,
                              Feast__Types__Value *v);

#endif
