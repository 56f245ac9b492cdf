#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum ldr_log_level min_level = LDR_LOG_INFO;
static int json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ldr_log_set_level(enum ldr_log_level level) { min_level = level; }

void ldr_log_set_json(int on) { json = on; }

int ldr_log_enabled(enum ldr_log_level level) { return level >= min_level; }

/* Copies `msg` into out as the body of a JSON string; returns the bytes written. */
static size_t json_escape(char *out, size_t cap, const char *msg) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p && n + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
    } else {
      out[n++] = (char)*p;
    }
  }
  return n;
}

int ldr_log_allow(struct ldr_log_limit *l, long long now_ns, unsigned long long *held_back) {
  if (l->last_ns != 0 && now_ns - l->last_ns < 1000000000) {
    l->held++;
    return 0;
  }
  *held_back = l->held;
  l->last_ns = now_ns;
  l->held = 0;
  return 1;
}

void ldr_log(enum ldr_log_level level, const char *fmt, ...) {
  if (level < min_level) return;
  char msg[1024], line[2048], when[64];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           ts.tv_nsec / 1000000 % 1000);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len;
  if (json) {
    len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", when,
                           level_names[level]);
    len += json_escape(line + len, sizeof line - len - 4, msg);
    line[len++] = '"';
    line[len++] = '}';
  } else {
    len = (size_t)snprintf(line, sizeof line, "%s %s %s", when, level_names[level], msg);
    if (len > sizeof line - 2) len = sizeof line - 2;
    /* A message never spans lines: a newline inside it would split one event. */
    for (size_t i = 0; i < len; i++)
      if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  }
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
