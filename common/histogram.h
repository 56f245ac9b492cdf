/* The latency buckets of every histogram larder exposes (Prometheus `le`
 * bounds, in seconds; +Inf is the bucket past the last). */
#ifndef LDR_HISTOGRAM_H
#define LDR_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define LDR_HISTOGRAM_BUCKETS 16

static const double ldr_histogram_bounds_s[LDR_HISTOGRAM_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

/* The bucket of a duration of `ns` nanoseconds: the first bound it does not
 * pass (a bound is inclusive), LDR_HISTOGRAM_BUCKETS past the last. */
static inline size_t ldr_histogram_bucket(int64_t ns) {
  size_t b = 0;
  while (b < LDR_HISTOGRAM_BUCKETS && (double)ns > ldr_histogram_bounds_s[b] * 1e9) b++;
  return b;
}

#endif
