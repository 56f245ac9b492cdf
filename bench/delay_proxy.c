/*
 * delay-proxy: a TCP proxy that holds every chunk it forwards for a fixed
 * time in each direction, as the network to a database in another zone does,
 * and counts the round trips it sees.
 *
 *   delay-proxy --listen HOST:PORT --target HOST:PORT [--delay-ms D]
 *               [--control HOST:PORT] [--stats FILE] [--protocol pg|mysql]
 *
 * Every chunk read from one side is written to the other D ms (default 2.5;
 * 0 forwards at once) after it was read, in order; a side's end of stream is
 * passed on after the data before it. A port of 0 picks a free one: the first
 * line on standard output says which (`listening HOST:PORT control HOST:PORT`).
 *
 * Counting: a round trip is a transition, on one connection, from bytes the
 * client sent to bytes the server sent (a server's greeting before the client
 * said anything is none). Bytes and chunks are counted each way. The figures
 * of all connections together are one JSON line, given
 *   - on the control port: a line `stats` (the figures), `reset` (the figures,
 *     then zero), or `delay MS` (the delay of chunks read from now on);
 *   - on SIGUSR1, to standard error (or appended to --stats FILE);
 *   - at exit (SIGTERM, SIGINT), to standard output.
 * The connections still open are listed in `open`, each with its own counts,
 * so that a test can see what one connection did.
 *
 * With --protocol, the messages the client sends are counted by kind too
 * ("messages"): PostgreSQL's frontend messages by their type byte (P Parse,
 * B Bind, E Execute, S Sync, Q Query, ...; "startup" for the untyped ones),
 * MySQL's commands by name (COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE,
 * ...). The stream is not decrypted: TLS connections are not parsed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536
#define QUEUE_MAX (8u << 20) /* bytes held for one direction before its reader pauses */

struct chunk {
  struct chunk *next;
  uint64_t due; /* CLOCK_MONOTONIC ns */
  size_t len, off;
  int eof; /* no data: the reader saw the end of the stream */
  unsigned char data[];
};

/* One direction of a connection: from one socket to the other. */
struct dir {
  struct chunk *head, *tail;
  size_t queued;
  int read_closed;  /* EOF seen on the reading socket */
  int write_closed; /* shutdown(SHUT_WR) done on the writing socket */
  int blocked;      /* the last write would block: wait for EPOLLOUT */
  uint64_t bytes, chunks;
};

struct pair;
struct end {
  struct pair *p;
  int side; /* 0: the client socket, 1: the server socket; <0: listener, control, timer */
};

/* Where the parser of a client's stream is: in a header, or skipping a body. */
struct parser {
  int started; /* PostgreSQL: the startup message was seen, messages are typed */
  unsigned char hdr[8];
  int hlen;
  uint64_t skip;
};

struct pair {
  struct pair *next;
  struct parser parse;
  int fd[2];
  struct end ends[2];
  struct dir d[2]; /* d[0]: client to server, d[1]: server to client */
  int last;        /* the direction of the last bytes read: -1 none yet */
  uint64_t id, round_trips;
  int dead;
  uint32_t events[2]; /* what epoll watches on each socket */
};

static struct {
  uint64_t connections, round_trips, bytes[2], chunks[2], messages[257]; /* [256]: untyped */
} totals;

enum protocol { PROTO_NONE, PROTO_PG, PROTO_MYSQL };
static enum protocol protocol;

static struct pair *pairs;
static uint64_t next_id = 1, delay_ns = 2500000;
static int ep, timer_fd;
static volatile sig_atomic_t want_exit, want_stats;
static struct sockaddr_in target;
static const char *stats_file;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig) {
  if (sig == SIGUSR1)
    want_stats = 1;
  else
    want_exit = 1;
}

static int parse_addr(const char *s, struct sockaddr_in *out) {
  char host[256];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)atoi(colon + 1));
  if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
  return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static int listen_on(const char *spec, struct sockaddr_in *bound) {
  struct sockaddr_in a;
  if (parse_addr(spec, &a) != 0) {
    fprintf(stderr, "delay-proxy: not an IPv4 HOST:PORT: %s\n", spec);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 256) != 0) {
    fprintf(stderr, "delay-proxy: cannot listen on %s: %s\n", spec, strerror(errno));
    exit(1);
  }
  socklen_t len = sizeof *bound;
  getsockname(fd, (struct sockaddr *)bound, &len);
  return fd;
}

static void watch(int fd, struct end *e, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  if (epoll_ctl(ep, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    fprintf(stderr, "delay-proxy: epoll_ctl: %s\n", strerror(errno));
    exit(1);
  }
}

/* ---- the client's messages ------------------------------------------------------ */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Counts the messages that begin in `n` more bytes of a client's stream. */
static void parse(struct parser *ps, const unsigned char *data, size_t n) {
  while (n > 0) {
    if (ps->skip > 0) {
      size_t k = ps->skip < n ? (size_t)ps->skip : n;
      ps->skip -= k;
      data += k;
      n -= k;
      continue;
    }
    /* PostgreSQL: typed messages are a type byte and a length; the first ones
     * (SSLRequest, the startup message) a length and a code. MySQL: a packet is
     * a 3-byte length and a sequence number; a command (sequence 0) names
     * itself in its first byte. */
    int need = protocol == PROTO_PG ? (ps->started ? 5 : 8) : 4;
    if (protocol == PROTO_MYSQL && ps->hlen >= 4 && ps->hdr[3] == 0 &&
        (ps->hdr[0] | ps->hdr[1] | ps->hdr[2]))
      need = 5;
    ps->hdr[ps->hlen++] = *data++;
    n--;
    if (ps->hlen < need) continue;
    if (protocol == PROTO_MYSQL && need == 4 && ps->hdr[3] == 0 &&
        (ps->hdr[0] | ps->hdr[1] | ps->hdr[2]))
      continue; /* a command: its first byte too */
    if (protocol == PROTO_PG && ps->started) {
      totals.messages[ps->hdr[0]]++;
      ps->skip = be32(ps->hdr + 1) - 4;
    } else if (protocol == PROTO_PG) {
      totals.messages[256]++;
      ps->skip = be32(ps->hdr) - 8;
      ps->started = be32(ps->hdr + 4) == 196608; /* protocol 3.0: the startup message */
    } else {
      uint64_t len = ps->hdr[0] | (uint64_t)ps->hdr[1] << 8 | (uint64_t)ps->hdr[2] << 16;
      if (need == 5) totals.messages[ps->hdr[4]]++;
      ps->skip = len - (uint64_t)(need - 4);
    }
    ps->hlen = 0;
  }
}

static const char *message_name(int m, char *buf) {
  static const struct {
    int code;
    const char *name;
  } my[] = {{0x01, "COM_QUIT"},
            {0x02, "COM_INIT_DB"},
            {0x03, "COM_QUERY"},
            {0x0e, "COM_PING"},
            {0x11, "COM_CHANGE_USER"},
            {0x16, "COM_STMT_PREPARE"},
            {0x17, "COM_STMT_EXECUTE"},
            {0x18, "COM_STMT_SEND_LONG_DATA"},
            {0x19, "COM_STMT_CLOSE"},
            {0x1a, "COM_STMT_RESET"},
            {0x1b, "COM_SET_OPTION"},
            {0x1c, "COM_STMT_FETCH"},
            {0x1f, "COM_RESET_CONNECTION"},
            {0xfa, "COM_STMT_BULK_EXECUTE"}};
  if (m == 256) return "startup";
  if (protocol == PROTO_PG && m > 32 && m < 127) {
    buf[0] = (char)m;
    buf[1] = '\0';
    return buf;
  }
  for (size_t i = 0; protocol == PROTO_MYSQL && i < sizeof my / sizeof my[0]; i++)
    if (my[i].code == m) return my[i].name;
  snprintf(buf, 8, "0x%02x", m);
  return buf;
}

/* ---- the figures ----------------------------------------------------------- */

static void stats_json(char *buf, size_t cap) {
  size_t n = 0, active = 0;
  for (struct pair *p = pairs; p; p = p->next) active += !p->dead;
  n += (size_t)snprintf(buf + n, cap - n,
                        "{\"delay_ms\":%.3f,\"connections\":%llu,\"active\":%zu,"
                        "\"round_trips\":%llu,\"bytes_c2s\":%llu,\"bytes_s2c\":%llu,"
                        "\"chunks_c2s\":%llu,\"chunks_s2c\":%llu,\"open\":[",
                        (double)delay_ns / 1e6, (unsigned long long)totals.connections, active,
                        (unsigned long long)totals.round_trips, (unsigned long long)totals.bytes[0],
                        (unsigned long long)totals.bytes[1], (unsigned long long)totals.chunks[0],
                        (unsigned long long)totals.chunks[1]);
  int first = 1;
  for (struct pair *p = pairs; p && n < cap - 200; p = p->next) {
    if (p->dead) continue;
    n += (size_t)snprintf(buf + n, cap - n,
                          "%s{\"id\":%llu,\"round_trips\":%llu,\"bytes_c2s\":%llu,"
                          "\"bytes_s2c\":%llu}",
                          first ? "" : ",", (unsigned long long)p->id,
                          (unsigned long long)p->round_trips, (unsigned long long)p->d[0].bytes,
                          (unsigned long long)p->d[1].bytes);
    first = 0;
  }
  n += (size_t)snprintf(buf + n, cap - n, "]");
  if (protocol != PROTO_NONE) {
    n += (size_t)snprintf(buf + n, cap - n, ",\"messages\":{");
    first = 1;
    for (int m = 0; m < 257 && n < cap - 100; m++) {
      char name[8];
      if (totals.messages[m] == 0) continue;
      n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\":%llu", first ? "" : ",",
                            message_name(m, name), (unsigned long long)totals.messages[m]);
      first = 0;
    }
    n += (size_t)snprintf(buf + n, cap - n, "}");
  }
  snprintf(buf + n, cap - n, "}\n");
}

static void stats_reset(void) {
  memset(&totals, 0, sizeof totals);
  for (struct pair *p = pairs; p; p = p->next) {
    p->round_trips = 0;
    for (int i = 0; i < 2; i++) p->d[i].bytes = p->d[i].chunks = 0;
  }
}

static void write_all(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0 && errno != EINTR) return;
    if (w > 0) {
      s += w;
      n -= (size_t)w;
    }
  }
}

static void print_stats(int fd) {
  static char buf[1 << 16];
  stats_json(buf, sizeof buf);
  write_all(fd, buf);
}

/* A control connection: one command line, one answer line. The client is a
 * local script that sends its line at once, so this may block briefly. */
static void control(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char cmd[128];
  size_t n = 0;
  while (n < sizeof cmd - 1) {
    ssize_t r = read(fd, cmd + n, sizeof cmd - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (memchr(cmd, '\n', n)) break;
  }
  cmd[n] = '\0';
  cmd[strcspn(cmd, "\r\n")] = '\0';
  if (!strcmp(cmd, "stats")) {
    print_stats(fd);
  } else if (!strcmp(cmd, "reset")) {
    print_stats(fd);
    stats_reset();
  } else if (!strncmp(cmd, "delay ", 6) && atof(cmd + 6) >= 0) {
    delay_ns = (uint64_t)(atof(cmd + 6) * 1e6);
    print_stats(fd);
  } else {
    write_all(fd, "{\"error\":\"commands: stats, reset, delay MS\"}\n");
  }
  close(fd);
}

/* ---- connections ----------------------------------------------------------- */

static void kill_pair(struct pair *p) {
  if (p->dead) return;
  p->dead = 1;
  for (int i = 0; i < 2; i++) {
    close(p->fd[i]); /* also leaves the epoll set */
    for (struct chunk *c = p->d[i].head, *nx; c; c = nx) {
      nx = c->next;
      free(c);
    }
    p->d[i].head = p->d[i].tail = NULL;
  }
}

/* What epoll should watch on each socket: readable while its direction has
 * room, writable while the direction into it waits for room. */
static void update_interest(struct pair *p) {
  for (int side = 0; side < 2; side++) {
    const struct dir *in = &p->d[side], *out = &p->d[1 - side];
    uint32_t ev = 0;
    if (!in->read_closed && in->queued < QUEUE_MAX) ev |= EPOLLIN;
    if (out->blocked) ev |= EPOLLOUT;
    if (ev != p->events[side]) {
      watch(p->fd[side], &p->ends[side], ev, EPOLL_CTL_MOD);
      p->events[side] = ev;
    }
  }
}

static void accept_one(int lfd) {
  int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) return;
  /* The target is on this machine (or near): a blocking connect is short. */
  int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
  if (sfd < 0 || connect(sfd, (struct sockaddr *)&target, sizeof target) != 0) {
    fprintf(stderr, "delay-proxy: cannot connect to the target: %s\n", strerror(errno));
    if (sfd >= 0) close(sfd);
    close(cfd);
    return;
  }
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
  struct pair *p = calloc(1, sizeof *p);
  p->fd[0] = cfd;
  p->fd[1] = sfd;
  p->last = -1;
  p->id = next_id++;
  for (int i = 0; i < 2; i++) {
    p->ends[i] = (struct end){p, i};
    p->events[i] = EPOLLIN;
    watch(p->fd[i], &p->ends[i], EPOLLIN, EPOLL_CTL_ADD);
  }
  p->next = pairs;
  pairs = p;
  totals.connections++;
}

/* Reads what socket `side` has into its direction's queue, due `delay_ns` from now. */
static void read_side(struct pair *p, int side, uint64_t now) {
  struct dir *d = &p->d[side];
  while (!d->read_closed && d->queued < QUEUE_MAX) {
    struct chunk *c = malloc(sizeof *c + CHUNK_MAX);
    if (c == NULL) {
      kill_pair(p);
      return;
    }
    ssize_t n = read(p->fd[side], c->data, CHUNK_MAX);
    if (n < 0 && errno == EINTR) {
      free(c);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      free(c);
      return;
    }
    if (n < 0) { /* reset: the other side is told by closing it too */
      free(c);
      kill_pair(p);
      return;
    }
    if (n < CHUNK_MAX) { /* give back what the chunk does not use */
      struct chunk *s = realloc(c, sizeof *c + (size_t)n);
      if (s != NULL) c = s;
    }
    c->next = NULL;
    c->due = now + delay_ns;
    c->len = (size_t)n;
    c->off = 0;
    c->eof = n == 0;
    if (n == 0) {
      d->read_closed = 1;
    } else {
      if (side == 0 && protocol != PROTO_NONE) parse(&p->parse, c->data, (size_t)n);
      d->bytes += (uint64_t)n;
      d->chunks++;
      totals.bytes[side] += (uint64_t)n;
      totals.chunks[side]++;
      if (side == 1 && p->last == 0) {
        p->round_trips++;
        totals.round_trips++;
      }
      p->last = side;
    }
    if (d->tail)
      d->tail->next = c;
    else
      d->head = c;
    d->tail = c;
    d->queued += (size_t)n;
  }
}

/* Writes the chunks of direction `side` that are due; returns their next due time or 0. */
static uint64_t flush_side(struct pair *p, int side, uint64_t now) {
  struct dir *d = &p->d[side];
  int to = p->fd[1 - side];
  while (d->head != NULL && !p->dead) {
    struct chunk *c = d->head;
    if (c->due > now) return c->due;
    if (d->blocked) return 0;
    if (c->eof) {
      shutdown(to, SHUT_WR);
      d->write_closed = 1;
    } else {
      while (c->off < c->len) {
        ssize_t w = send(to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          d->blocked = 1;
          return 0;
        }
        if (w < 0) {
          kill_pair(p);
          return 0;
        }
        c->off += (size_t)w;
        d->queued -= (size_t)w;
      }
    }
    d->head = c->next;
    if (d->head == NULL) d->tail = NULL;
    free(c);
  }
  return 0;
}

/* Flushes every connection; closes those whose both directions ended; arms the timer. */
static void flush_all(void) {
  uint64_t now = now_ns(), next = 0;
  for (struct pair **pp = &pairs; *pp;) {
    struct pair *p = *pp;
    for (int side = 0; side < 2 && !p->dead; side++) {
      uint64_t due = flush_side(p, side, now);
      if (due && (next == 0 || due < next)) next = due;
    }
    if (!p->dead && p->d[0].write_closed && p->d[1].write_closed) kill_pair(p);
    if (p->dead) {
      *pp = p->next;
      free(p);
      continue;
    }
    update_interest(p);
    pp = &p->next;
  }
  struct itimerspec its = {0};
  if (next) {
    its.it_value.tv_sec = (time_t)(next / 1000000000u);
    its.it_value.tv_nsec = (long)(next % 1000000000u);
  }
  timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void usage(void) {
  fprintf(stderr,
          "usage: delay-proxy --listen HOST:PORT --target HOST:PORT [--delay-ms D]\n"
          "                   [--control HOST:PORT] [--stats FILE] [--protocol pg|mysql]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *listen_spec = NULL, *target_spec = NULL, *control_spec = NULL;
  static const struct option lopts[] = {{"listen", 1, 0, 'l'},
                                        {"target", 1, 0, 't'},
                                        {"delay-ms", 1, 0, 'd'},
                                        {"control", 1, 0, 'c'},
                                        {"stats", 1, 0, 's'},
                                        {"protocol", 1, 0, 'p'},
                                        {0, 0, 0, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "", lopts, NULL);
    if (c == -1) break;
    switch (c) {
    case 'l':
      listen_spec = optarg;
      break;
    case 't':
      target_spec = optarg;
      break;
    case 'd':
      if (atof(optarg) < 0) usage();
      delay_ns = (uint64_t)(atof(optarg) * 1e6);
      break;
    case 'c':
      control_spec = optarg;
      break;
    case 's':
      stats_file = optarg;
      break;
    case 'p':
      if (!strcmp(optarg, "pg") || !strcmp(optarg, "postgres"))
        protocol = PROTO_PG;
      else if (!strcmp(optarg, "mysql") || !strcmp(optarg, "mariadb"))
        protocol = PROTO_MYSQL;
      else
        usage();
      break;
    default:
      usage();
    }
  }
  if (listen_spec == NULL || target_spec == NULL || parse_addr(target_spec, &target) != 0) usage();

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  ep = epoll_create1(EPOLL_CLOEXEC);
  timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct sockaddr_in la, ca;
  int lfd = listen_on(listen_spec, &la), cfd = -1;
  static struct end listener = {NULL, -1}, ctl = {NULL, -2}, timer = {NULL, -3};
  watch(lfd, &listener, EPOLLIN, EPOLL_CTL_ADD);
  watch(timer_fd, &timer, EPOLLIN, EPOLL_CTL_ADD);
  char addr[64], caddr[64] = "-";
  inet_ntop(AF_INET, &la.sin_addr, addr, sizeof addr);
  if (control_spec != NULL) {
    cfd = listen_on(control_spec, &ca);
    watch(cfd, &ctl, EPOLLIN, EPOLL_CTL_ADD);
    char h[32];
    inet_ntop(AF_INET, &ca.sin_addr, h, sizeof h);
    snprintf(caddr, sizeof caddr, "%s:%d", h, ntohs(ca.sin_port));
  }
  printf("listening %s:%d control %s\n", addr, ntohs(la.sin_port), caddr);
  fflush(stdout);

  struct epoll_event evs[64];
  while (!want_exit) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (want_stats) {
      want_stats = 0;
      FILE *f = stats_file ? fopen(stats_file, "a") : NULL;
      print_stats(f ? fileno(f) : 2);
      if (f) fclose(f);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "delay-proxy: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    uint64_t now = now_ns();
    for (int i = 0; i < n; i++) {
      struct end *e = evs[i].data.ptr;
      if (e->side == -1) {
        accept_one(lfd);
      } else if (e->side == -2) {
        control(cfd);
      } else if (e->side == -3) {
        uint64_t expirations;
        if (read(timer_fd, &expirations, sizeof expirations) < 0) { /* spurious: nothing to do */
        }
      } else if (!e->p->dead) {
        uint32_t ev = evs[i].events;
        if (ev & EPOLLERR) { /* a reset: the other side is closed too */
          kill_pair(e->p);
          continue;
        }
        if (ev & EPOLLOUT) e->p->d[1 - e->side].blocked = 0;
        if (!e->p->d[e->side].read_closed && (ev & (EPOLLIN | EPOLLHUP)))
          read_side(e->p, e->side, now);
        else if (ev & EPOLLHUP) /* closed both ways, and its end already read */
          kill_pair(e->p);
      }
    }
    flush_all();
  }
  print_stats(1);
  while (pairs != NULL) {
    struct pair *p = pairs;
    pairs = p->next;
    kill_pair(p);
    free(p);
  }
  close(lfd);
  if (cfd >= 0) close(cfd);
  close(timer_fd);
  close(ep);
  return 0;
}
