/*
 * CPU time of a process and everything it started, from /proc: for the
 * benchmark's figures of server CPU per call (larder, PostgreSQL's postmaster
 * and its backends, mariadbd). Header-only: larder-bench and db-ceiling
 * include it.
 */
#ifndef LDR_BENCH_PROC_CPU_H
#define LDR_BENCH_PROC_CPU_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime + stime of `pid` and of its live descendants (every thread of each
 * process included), plus the children `pid` has reaped (cutime + cstime):
 * a PostgreSQL backend that ended meanwhile is still counted. Seconds; a
 * negative value when `pid` is gone. */
static double proc_tree_cpu_s(int pid) {
  enum { MAXP = 65536 };
  static int ppid[MAXP];
  static unsigned long long ticks[MAXP];
  static unsigned char present[MAXP];
  memset(present, 0, sizeof present);
  unsigned long long root_children = 0;
  DIR *d = opendir("/proc");
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int p = atoi(e->d_name);
    if (p <= 0 || p >= MAXP) continue;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", p);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rest = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
    if (rest == NULL) continue;
    char state;
    int pp;
    unsigned long long ut, st, cut, cst;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
     * cstime */
    if (sscanf(rest + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &state,
               &pp, &ut, &st, &cut, &cst) != 6)
      continue;
    ppid[p] = pp;
    ticks[p] = ut + st;
    present[p] = 1;
    if (p == pid) root_children = cut + cst;
  }
  closedir(d);
  if (pid <= 0 || pid >= MAXP || !present[pid]) return -1;
  unsigned long long total = root_children;
  /* Descendants: a process belongs when its chain of parents reaches `pid`. */
  for (int p = 1; p < MAXP; p++) {
    if (!present[p]) continue;
    int q = p, depth = 0;
    while (q != pid && q > 1 && q < MAXP && present[q] && depth++ < 64) q = ppid[q];
    if (q == pid) total += ticks[p];
  }
  return (double)total / (double)sysconf(_SC_CLK_TCK);
}

#endif
