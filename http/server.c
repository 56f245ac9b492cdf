/*
 * The HTTP/1.1 listener: worker threads sharing one epoll set of every
 * connection, each thread with its own store connection and request arena.
 * Connections are armed one-shot: an event hands a connection to exactly one
 * thread, which reads, answers and writes, then arms it again; so a request
 * is served start to finish on one thread without a lock, and a thread held
 * up in the database holds up only the connection it serves — the others go
 * to the other threads.
 *
 * Why not libmicrohttpd, which serves /metrics: Feast's API asks for answers
 * it cannot give (408 for a body that stops arriving; a bound on the memory
 * all bodies in flight take; certificates reloaded without a restart), and a
 * strict parser refusing what two parsers could read two ways is small
 * (parse.c) and fuzzed.
 *
 * A connection reads a request head (at most LDR_HTTP_HEAD_MAX bytes), decides
 * from it what can be decided (route, token, size: routes.c), reads the body
 * (Content-Length or chunked, at most max_message_bytes, counted against a
 * budget for all connections), answers, and goes on with the next request
 * on the connection. A request must arrive whole within receive_timeout_s
 * of its first byte (408); an idle connection closes after 60 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "http/server_int.h"

static char listen_tag, wake_tag;

int ldr_http_threads(const struct ldr_config *cfg) {
  return cfg->http_listen == NULL ? 0 : ldr_config_workers(cfg);
}

/* ---- counters */

const int ldr_http_statuses[LDR_HTTP_STATUSES - 1] = {200, 400, 401, 403, 404, 405, 408, 409, 413,
                                                      422, 431, 500, 501, 503, 504, 505, 100};

static void bump(atomic_ullong *x, unsigned long long by) {
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + by,
                        memory_order_relaxed);
}

void ldr_http_count(struct worker *w, const struct ldr_http_route *route, int status, int64_t ns) {
  size_t r = route ? (size_t)(route - ldr_http_routes) : ldr_http_n_routes;
  size_t s = 0;
  while (s < LDR_HTTP_STATUSES - 1 && ldr_http_statuses[s] != status) s++;
  struct http_counts *k = &w->counts;
  bump(&k->requests[r][s], 1);
  bump(&k->latency[r][ldr_histogram_bucket(ns)], 1);
  bump(&k->latency_ns[r], (unsigned long long)(ns > 0 ? ns : 0));
}

static unsigned long long total(const struct ldr_http *h, size_t off) {
  unsigned long long n = 0;
  for (int i = 0; i < h->nworkers; i++)
    n += atomic_load_explicit((const atomic_ullong *)((const char *)&h->workers[i].counts + off),
                              memory_order_relaxed);
  return n;
}

#define AT(field) offsetof(struct http_counts, field)

void ldr_http_metrics(struct ldr_http *h, struct ldr_sb *sb) {
  if (h == NULL) return;
  ldr_sb_puts(sb, "# HELP larder_http_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE larder_http_requests_total counter\n");
  for (size_t r = 0; r <= ldr_http_n_routes; r++) {
    const char *path = r < ldr_http_n_routes ? ldr_http_routes[r].path : "unknown";
    for (size_t s = 0; s < LDR_HTTP_STATUSES; s++) {
      unsigned long long n = total(h, AT(requests[r][s]));
      if (n == 0) continue;
      if (s < LDR_HTTP_STATUSES - 1)
        ldr_sb_printf(sb, "larder_http_requests_total{path=\"%s\",code=\"%d\"} %llu\n", path,
                      ldr_http_statuses[s], n);
      else
        ldr_sb_printf(sb, "larder_http_requests_total{path=\"%s\",code=\"other\"} %llu\n", path, n);
    }
  }
  ldr_sb_puts(sb, "# HELP larder_http_handling_seconds Time from a whole request to its answer.\n"
                  "# TYPE larder_http_handling_seconds histogram\n");
  for (size_t r = 0; r < ldr_http_n_routes; r++) {
    unsigned long long cum = 0;
    const char *path = ldr_http_routes[r].path;
    for (size_t b = 0; b <= LDR_HISTOGRAM_BUCKETS; b++) {
      cum += total(h, AT(latency[r][b]));
      if (b < LDR_HISTOGRAM_BUCKETS)
        ldr_sb_printf(sb, "larder_http_handling_seconds_bucket{path=\"%s\",le=\"%g\"} %llu\n", path,
                      ldr_histogram_bounds_s[b], cum);
      else
        ldr_sb_printf(sb, "larder_http_handling_seconds_bucket{path=\"%s\",le=\"+Inf\"} %llu\n",
                      path, cum);
    }
    ldr_sb_printf(sb, "larder_http_handling_seconds_sum{path=\"%s\"} %.9f\n", path,
                  (double)total(h, AT(latency_ns[r])) / 1e9);
    ldr_sb_printf(sb, "larder_http_handling_seconds_count{path=\"%s\"} %llu\n", path, cum);
  }
  ldr_sb_printf(sb,
                "# HELP larder_http_connections Open HTTP connections.\n"
                "# TYPE larder_http_connections gauge\nlarder_http_connections %d\n",
                atomic_load(&h->nconns));
}

/* ---- TLS */

static SSL_CTX *tls_context(const struct ldr_config *cfg, struct ldr_err *err) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    ldr_err_set(err, LDR_NOMEM, "larder.tls: cannot create a TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* A client that closes without close_notify has still sent its request:
   * its end is the end of its bytes, as over plain TCP (bodies are framed by
   * Content-Length or chunks, so nothing cut short passes for whole). */
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    SSL_CTX_free(ctx);
    ldr_err_set(err, LDR_INVALID,
                "larder.tls: the certificate or key cannot be used for HTTPS (or do not match)");
    return NULL;
  }
  if (cfg->tls_client_ca != NULL) {
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
      ERR_clear_error();
      SSL_CTX_free(ctx);
      ldr_err_set(err, LDR_INVALID, "larder.tls.client_ca: cannot be read as PEM certificates");
      return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  return ctx;
}

enum ldr_rc ldr_http_reload_tls(struct ldr_http *h, struct ldr_err *err) {
  if (h == NULL || h->ctx == NULL) return LDR_OK;
  SSL_CTX *ctx = tls_context(h->env->cfg, err);
  if (ctx == NULL) return err->rc;
  pthread_mutex_lock(&h->tls_lock);
  SSL_CTX *old = h->ctx;
  h->ctx = ctx;
  pthread_mutex_unlock(&h->tls_lock);
  SSL_CTX_free(old); /* connections made with it hold their own reference */
  return LDR_OK;
}

/* Frees the closed connections no thread can still hold (under h->lock). */
static void bury(struct ldr_http *h, int all) {
  unsigned long long oldest = ULLONG_MAX;
  for (int i = 0; i < h->nworkers; i++)
    if (h->workers[i].started) {
      unsigned long long seen = atomic_load(&h->workers[i].seen);
      if (seen < oldest) oldest = seen;
    }
  for (struct conn **g = &h->graves; *g != NULL;) {
    struct conn *c = *g;
    if (all || c->dead_at < oldest) {
      *g = c->next;
      free(c);
    } else {
      g = &c->next;
    }
  }
}

/* Takes the listener out of epoll until the ticker puts it back (TICK_MS). */
static void rest_listener(struct ldr_http *h) {
  struct epoll_event ev = {.events = 0, .data.ptr = &listen_tag};
  atomic_store(&h->rest_until_ns, ldr_now_ns() + TICK_MS * 1000000LL);
  epoll_ctl(h->ep, EPOLL_CTL_MOD, h->lfd, &ev);
}

/* accept() found no descriptor left (EMFILE, ENFILE), under accept_lock. The
 * listener stays readable while connections wait, so every thread would wake
 * for it again and again: the spare descriptor makes room to take one and
 * close it (the client may try another replica). Without a spare (something
 * else took the room), the listener rests a tick. */
static void refuse_one(struct ldr_http *h) {
  static atomic_llong logged_ns;
  if (h->spare < 0) h->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (h->spare >= 0) {
    close(h->spare);
    int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    h->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  if (h->spare < 0) rest_listener(h);
  long long now = ldr_now_ns(), last = atomic_load(&logged_ns);
  if (now - last > 10000000000LL && atomic_compare_exchange_strong(&logged_ns, &last, now))
    ldr_log(LDR_LOG_WARN, "http: no file descriptor left for a new connection (the process's "
                          "limit, ulimit -n): it was closed");
}

static void accept_connections(struct worker *w) {
  struct ldr_http *h = w->h;
  const struct ldr_config *cfg = h->env->cfg;
  for (int k = 0; k < 16; k++) {
    int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) refuse_one(h);
      return;
    }
    if (atomic_fetch_add(&h->nconns, 1) >= cfg->http_max_connections || atomic_load(&h->draining)) {
      atomic_fetch_sub(&h->nconns, 1);
      close(fd); /* at the limit: the client may try another replica */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
      atomic_fetch_sub(&h->nconns, 1);
      close(fd);
      continue;
    }
    c->fd = fd;
    c->h = h;
    int64_t now = ldr_now_ns();
    atomic_init(&c->last_ns, now);
    atomic_init(&c->started_ns, 0);
    atomic_init(&c->state, PARKING); /* PARKED once armed: the ticker leaves it until then */
    atomic_init(&c->pending, 0);
    c->cert_scopes = cfg->tls_client_ca ? cfg->tls_client_scopes
                                        : LDR_SCOPE_READ | LDR_SCOPE_WRITE | LDR_SCOPE_ADMIN;
    if (h->ctx != NULL) {
      pthread_mutex_lock(&h->tls_lock);
      c->ssl = SSL_new(h->ctx);
      pthread_mutex_unlock(&h->tls_lock);
      if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        if (c->ssl) SSL_free(c->ssl);
        atomic_fetch_sub(&h->nconns, 1);
        close(fd);
        free(c);
        continue;
      }
      SSL_set_accept_state(c->ssl);
      c->handshake = 1;
      atomic_init(&c->started_ns, now); /* the handshake counts as the first request's time */
    }
    pthread_mutex_lock(&h->lock);
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    pthread_mutex_unlock(&h->lock);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = c};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      atomic_store(&c->state, OWNED);
      ldr_conn_close(c);
    } else {
      atomic_store_explicit(&c->state, PARKED, memory_order_release);
    }
  }
}

static void accept_some(struct worker *w) {
  struct ldr_http *h = w->h;
  /* One thread at a time: the room a spare descriptor leaves is for the
   * refusal, not for another thread's accept (refuse_one). */
  if (pthread_mutex_trylock(&h->accept_lock) != 0) return;
  accept_connections(w);
  pthread_mutex_unlock(&h->accept_lock);
}

/*
 * Timeouts, by whichever thread comes by after TICK_MS: a request not in
 * within receive_timeout_s gets 408, a reply the client does not take or an
 * idle connection is closed (at once while draining), and a lingering one
 * after receive_timeout_s (a second while draining). A parked connection
 * that is due is claimed (PARKED -> EXPIRED) and armed for writing, which
 * wakes a thread at once to deal with it; one that a thread serves is left
 * alone. Only parked connections' fields are read here, and only atomics.
 */
static void tick(struct ldr_http *h, int64_t now) {
  long long last = atomic_load(&h->last_tick_ns);
  int draining = atomic_load(&h->draining);
  if (!draining && now - last < TICK_MS * 1000000LL) return;
  if (!atomic_compare_exchange_strong(&h->last_tick_ns, &last, now)) return;
  long long rest = atomic_load(&h->rest_until_ns);
  if (rest != 0 && now >= rest && atomic_compare_exchange_strong(&h->rest_until_ns, &rest, 0)) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(h->ep, EPOLL_CTL_MOD, h->lfd, &ev);
  }
  if (pthread_mutex_trylock(&h->lock) != 0) return;
  atomic_fetch_add(&h->epoch, 1);
  bury(h, 0);
  int64_t limit = (int64_t)h->env->cfg->receive_timeout_s * 1000000000;
  for (struct conn *c = h->conns; c != NULL; c = c->next) {
    if (atomic_load_explicit(&c->state, memory_order_acquire) != PARKED) continue;
    int64_t started = atomic_load_explicit(&c->started_ns, memory_order_relaxed);
    int64_t last_io = atomic_load_explicit(&c->last_ns, memory_order_relaxed);
    /* A lingering connection (conn.c, conn_linger) has a second while the
     * server drains: the stop does not wait receive_timeout_s for it. */
    int due = c->lingering               ? now - started > (draining ? 1000000000 : limit)
              : atomic_load(&c->pending) ? now - last_io > limit
              : started                  ? now - started > limit
                                         : draining || now - last_io > IDLE_NS;
    int expect = PARKED;
    if (!due || !atomic_compare_exchange_strong(&c->state, &expect, EXPIRED)) continue;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = c};
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  pthread_mutex_unlock(&h->lock);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct ldr_http *h = w->h;
  /* One event at a time: a thread held up in the database must not sit on
   * other connections' events meanwhile. */
  struct epoll_event evs[1];
  while (!atomic_load(&h->stop)) {
    atomic_store(&w->seen, atomic_load(&h->epoch));
    int n = epoll_wait(h->ep, evs, 1, TICK_MS);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &listen_tag) {
        if (!atomic_load(&h->draining)) accept_some(w);
        continue;
      }
      if (p == &wake_tag) continue;
      struct conn *c = p;
      /* The event is ours only if the connection is: one that another
       * thread serves (the ticker's wake-up racing a real event) is left to
       * it, and it arms the connection again when done. */
      int expect = PARKED, expired = 0;
      while (!atomic_compare_exchange_strong(&c->state, &expect, OWNED) && expect == PARKING) {
        sched_yield(); /* armed a moment ago by a thread about to mark it PARKED */
        expect = PARKED;
      }
      if (expect != PARKED) {
        if (expect != EXPIRED || !atomic_compare_exchange_strong(&c->state, &expect, OWNED))
          continue;
        expired = 1;
      }
      ldr_conn_event(w, c, evs[i].events, expired);
    }
    tick(h, ldr_now_ns());
    if (n == 0 && w->trim) {
      w->trim = 0;
      malloc_trim(0);
    }
  }
  return NULL;
}

/* ---- lifecycle */

static int bind_listen(const char *addr, int *port, struct ldr_err *err) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  size_t hlen = (size_t)(colon - addr);
  if (hlen >= sizeof host) hlen = sizeof host - 1;
  memcpy(host, addr, hlen);
  host[hlen] = '\0';
  char *h = host;
  if (h[0] == '[') {
    h++;
    h[strlen(h) - 1] = '\0';
  }
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &ai) != 0 || ai == NULL) {
    ldr_err_set(err, LDR_INVALID, "larder.http_listen: cannot resolve %s", addr);
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    ldr_err_set(err, LDR_UNAVAILABLE,
                "larder.http_listen: cannot listen on %s: the address is in use or not valid",
                addr);
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static void free_http(struct ldr_http *h) {
  for (int i = 0; h->workers != NULL && i < h->nworkers; i++) {
    struct worker *w = &h->workers[i];
    if (w->t.backend != NULL) ldr_backend_free(w->t.backend);
    ldr_arena_destroy(&w->t.arena);
  }
  while (h->conns != NULL) ldr_conn_close(h->conns);
  bury(h, 1);
  free(h->workers);
  if (h->ep >= 0) close(h->ep);
  if (h->wake >= 0) close(h->wake);
  if (h->lfd >= 0) close(h->lfd);
  if (h->spare >= 0) close(h->spare);
  pthread_mutex_destroy(&h->accept_lock);
  if (h->ctx != NULL) SSL_CTX_free(h->ctx);
  pthread_mutex_destroy(&h->tls_lock);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

static int worker_init(struct ldr_http *h, int i, struct ldr_err *err) {
  const struct ldr_config *cfg = h->env->cfg;
  struct worker *w = &h->workers[i];
  w->h = h;
  w->idx = i;
  w->t.env = h->env;
  w->t.reader = h->env->first_reader + (size_t)i;
  size_t cap = ldr_config_call_bytes(cfg);
  ldr_arena_init(&w->t.arena, 16384, cap < (64u << 20) ? 64u << 20 : cap);
  if (ldr_backend_new(&cfg->store, &w->t.backend, err) != LDR_OK) return -1;
  return 0;
}

enum ldr_rc ldr_http_start(const struct ldr_http_env *env, struct ldr_http **out, int *port,
                           struct ldr_err *err) {
  const struct ldr_config *cfg = env->cfg;
  *out = NULL;
  struct ldr_http *h = calloc(1, sizeof *h);
  if (h == NULL) return ldr_err_set(err, LDR_NOMEM, "http: out of memory");
  h->env = env;
  h->lfd = h->ep = h->wake = -1;
  h->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  atomic_init(&h->rest_until_ns, 0);
  pthread_mutex_init(&h->accept_lock, NULL);
  pthread_mutex_init(&h->tls_lock, NULL);
  pthread_mutex_init(&h->lock, NULL);
  size_t budget = ldr_config_call_bytes(cfg);
  h->body_budget = budget < (256u << 20) ? 256u << 20 : budget;
  if (cfg->tls_cert != NULL && (h->ctx = tls_context(cfg, err)) == NULL) {
    free_http(h);
    return err->rc;
  }
  h->lfd = bind_listen(cfg->http_listen, port, err);
  if (h->lfd < 0) {
    free_http(h);
    return err->rc;
  }
  h->ep = epoll_create1(EPOLL_CLOEXEC);
  h->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_tag};
  struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake_tag};
  if (h->ep < 0 || h->wake < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &lev) != 0 ||
      epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake, &wev) != 0) {
    ldr_err_set(err, LDR_INTERNAL, "http: cannot create an epoll set");
    free_http(h);
    return err->rc;
  }
  h->nworkers = ldr_http_threads(cfg);
  h->workers = calloc((size_t)h->nworkers, sizeof *h->workers);
  if (h->workers == NULL) {
    ldr_err_set(err, LDR_NOMEM, "http: out of memory");
    free_http(h);
    return err->rc;
  }
  for (int i = 0; i < h->nworkers; i++)
    if (worker_init(h, i, err) != 0) {
      free_http(h);
      return err->rc;
    }
  for (int i = 0; i < h->nworkers; i++) {
    struct worker *w = &h->workers[i];
    w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
    if (!w->started) {
      ldr_err_set(err, LDR_INTERNAL, "http: cannot start a thread");
      ldr_http_stop(h, 0);
      return err->rc;
    }
  }
  *out = h;
  return LDR_OK;
}

/* Wakes every thread now: the eventfd stays readable (never read). */
static void wake_all(struct ldr_http *h) {
  uint64_t one = 1;
  if (h->wake >= 0 && write(h->wake, &one, sizeof one) < 0) { /* already awake */
  }
}

void ldr_http_drain(struct ldr_http *h) {
  if (h == NULL || atomic_exchange(&h->draining, 1)) return;
  /* New connections are refused from now on (one the kernel took in but no
   * thread accepted is reset), not left waiting in the backlog. */
  epoll_ctl(h->ep, EPOLL_CTL_DEL, h->lfd, NULL);
  shutdown(h->lfd, SHUT_RDWR);
  atomic_store(&h->last_tick_ns, 0); /* idle connections close at the next tick */
}

int ldr_http_open_connections(struct ldr_http *h) {
  return h == NULL ? 0 : atomic_load(&h->nconns);
}

void ldr_http_stop(struct ldr_http *h, int grace_s) {
  if (h == NULL) return;
  ldr_http_drain(h);
  int64_t end = ldr_now_ns() + (int64_t)grace_s * 1000000000;
  while (atomic_load(&h->nconns) > 0 && ldr_now_ns() < end) {
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL);
  }
  atomic_store(&h->stop, 1);
  wake_all(h);
  for (int i = 0; i < h->nworkers; i++)
    if (h->workers[i].started) pthread_join(h->workers[i].thread, NULL);
  free_http(h);
}
