#include "common/pyfloat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Python's repr(float) prints the shortest digit string that reads back as
 * the same double. printf's %.*e is correctly rounded, so the first precision
 * that round-trips gives those digits. Python then writes fixed notation when
 * the decimal exponent is in [-4, 16) and d.ddde+XX otherwise, always with at
 * least one fractional digit in fixed notation.
 */
size_t ldr_format_double(double d, char *buf) {
  if (isnan(d)) return (size_t)sprintf(buf, "nan");
  if (isinf(d)) return (size_t)sprintf(buf, d < 0 ? "-inf" : "inf");
  char sci[40];
  for (int prec = 0; prec < 17; prec++) {
    snprintf(sci, sizeof sci, "%.*e", prec, d);
    if (strtod(sci, NULL) == d) break;
  }
  /* sci is [-]d[.ddd]e[+-]XX: collect the digits and the exponent. */
  char digits[24];
  size_t nd = 0;
  const char *p = sci;
  int neg = *p == '-';
  if (neg) p++;
  for (; *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  int exp10 = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  if (digits[0] == '0') exp10 = 0; /* zero: "0.0" */

  char *o = buf;
  if (neg) *o++ = '-';
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > exp10; i--) *o++ = '0';
      memcpy(o, digits, nd);
      o += nd;
    } else {
      size_t int_digits = (size_t)exp10 + 1;
      for (size_t i = 0; i < int_digits; i++) *o++ = i < nd ? digits[i] : '0';
      *o++ = '.';
      if (nd > int_digits) {
        memcpy(o, digits + int_digits, nd - int_digits);
        o += nd - int_digits;
      } else {
        *o++ = '0';
      }
    }
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, nd - 1);
      o += nd - 1;
    }
    o += sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
  }
  *o = '\0';
  return (size_t)(o - buf);
}
