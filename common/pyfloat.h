/* Python's repr() of a float, which both the value_text column and JSON replies write. */
#ifndef LDR_PYFLOAT_H
#define LDR_PYFLOAT_H

#include <stddef.h>

/*
 * Writes repr(d) as CPython does: the shortest digits that read back as the
 * same double, fixed notation for decimal exponents in [-4, 16) with at least
 * one fractional digit ("1.0", "0.0001"), d.ddde+XX otherwise ("1e+16",
 * "1e-05"), and "nan", "inf", "-inf". `buf` is the caller's, at least 32
 * bytes; it gets a NUL-terminated string whose length is returned.
 */
size_t ldr_format_double(double d, char *buf);

#endif
