/* Whole files into memory. */
#ifndef LDR_FILE_H
#define LDR_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the file at `path` into a malloc'd buffer of *len bytes, followed by
 * a NUL that *len does not count (so text can be used as a string). Returns
 * 0, or -1 with errno set (ENOMEM when memory is short).
 */
int ldr_read_file(const char *path, uint8_t **out, size_t *len);

#endif
