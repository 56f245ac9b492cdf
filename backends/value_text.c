/* The value_text column of Feast's SQLite and PostgreSQL stores: Python's str() of the value. */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"

int ldr_value_text(const Feast__Types__Value *v, char *buf, const char **text, size_t *len) {
  if (v == NULL) return 0;
  switch (v->val_case) {
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    *text = v->string_val;
    *len = strlen(v->string_val);
    return 1;
  case FEAST__TYPES__VALUE__VAL_INT32_VAL:
    *len = (size_t)sprintf(buf, "%d", (int)v->int32_val);
    break;
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
    *len = (size_t)sprintf(buf, "%lld", (long long)v->int64_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
    *len = ldr_format_double(v->double_val, buf);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
    *len = ldr_format_double((double)v->float_val, buf);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
    *len = (size_t)sprintf(buf, "%s", v->bool_val ? "True" : "False");
    break;
  default:
    return 0;
  }
  *text = buf;
  return 1;
}
