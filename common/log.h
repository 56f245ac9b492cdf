/* One line per event on stderr, with a UTC time stamp and a level, as text or JSON. */
#ifndef LDR_LOG_H
#define LDR_LOG_H

enum ldr_log_level { LDR_LOG_DEBUG, LDR_LOG_INFO, LDR_LOG_WARN, LDR_LOG_ERROR };

/* Sets the lowest level that is written; call before threads start. */
void ldr_log_set_level(enum ldr_log_level level);

/* Writes each line as a JSON object {"time", "level", "msg"} instead of text;
 * call before threads start. */
void ldr_log_set_json(int on);

/* Returns nonzero when a message at `level` would be written. */
int ldr_log_enabled(enum ldr_log_level level);

/* Writes one line with a single write(2), so lines from threads never interleave. */
void ldr_log(enum ldr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line at most once a second from one source that clients can trigger at
 * will (calls ended to make room, the metrics listener's complaints), so that
 * a client cannot fill the log. Zeroed to start; one thread's. */
struct ldr_log_limit {
  long long last_ns;       /* when the last line was let through; 0: never */
  unsigned long long held; /* lines held back since */
};

/* Returns 1 when a line may be written at `now_ns` (CLOCK_MONOTONIC), with
 * *held_back set to how many were held back since the last one; else 0, and
 * the line is counted. */
int ldr_log_allow(struct ldr_log_limit *l, long long now_ns, unsigned long long *held_back);

#endif
