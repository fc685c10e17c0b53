/* tests/api/wire_server.c: see wire_server.h. */
#include "wire_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUESTS 256

struct wire_server {
  int fd;
  int port;
  char url[64];
  pthread_t thread;
  atomic_bool stop;
  wire_handler handler;
  void *ctx;
  pthread_mutex_t lock;
  struct wire_request requests[MAX_REQUESTS];
  int count;
};

static bool wait_readable(struct wire_server *s, int fd, int ms)
{
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int step = ms < 0 || ms > 50 ? 50 : ms;
    int r = poll(&p, 1, step);
    if (r > 0)
      return true;
    if (r < 0 && errno != EINTR)
      return false;
    if (ms >= 0) {
      ms -= step;
      if (ms <= 0)
        return false;
    }
  }
  return false;
}

static void sleep_ms(struct wire_server *s, int ms)
{
  while (ms > 0 && !atomic_load(&s->stop)) {
    int step = ms > 20 ? 20 : ms;
    struct timespec ts = {0, step * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

static void serve(struct wire_server *s, int cfd)
{
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap + 1);
  char *end = NULL;
  while (!end && len < cap) {
    if (!wait_readable(s, cfd, 5000))
      goto out;
    ssize_t n = recv(cfd, buf + len, cap - len, 0);
    if (n <= 0)
      goto out;
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  if (!end)
    goto out;
  size_t head_len = (size_t)(end - buf) + 4;
  size_t body_len = 0;
  for (char *line = buf; line < end;) {
    char *eol = strstr(line, "\r\n");
    if (strncasecmp(line, "Content-Length:", 15) == 0)
      body_len = strtoul(line + 15, NULL, 10);
    line = eol + 2;
  }
  if (body_len > cap - head_len)
    goto out;
  while (len < head_len + body_len) {
    if (!wait_readable(s, cfd, 5000))
      goto out;
    ssize_t n = recv(cfd, buf + len, cap - len, 0);
    if (n <= 0)
      goto out;
    len += (size_t)n;
  }
  struct wire_request rq = {0};
  sscanf(buf, "%15s %2047s", rq.method, rq.target);
  rq.head = strndup(buf, head_len);
  rq.body = strndup(buf + head_len, body_len);

  pthread_mutex_lock(&s->lock);
  int index = s->count;
  if (s->count < MAX_REQUESTS)
    s->requests[s->count++] = rq;
  pthread_mutex_unlock(&s->lock);

  struct wire_reply reply = s->handler(&rq, index, s->ctx);
  if (index >= MAX_REQUESTS) {
    free(rq.head);
    free(rq.body);
  }
  sleep_ms(s, reply.delay_ms);
  if (reply.drop || atomic_load(&s->stop))
    goto out;
  char head[512];
  const char *body = reply.body ? reply.body : "";
  int n;
  if (reply.status == 204)
    n = snprintf(head, sizeof head, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  else
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 reply.status, strlen(body));
  send(cfd, head, (size_t)n, MSG_NOSIGNAL);
  if (reply.status != 204)
    send(cfd, body, strlen(body), MSG_NOSIGNAL);
out:
  free(buf);
  close(cfd);
}

static void *run(void *arg)
{
  struct wire_server *s = arg;
  while (!atomic_load(&s->stop)) {
    if (!wait_readable(s, s->fd, -1))
      continue;
    int cfd = accept(s->fd, NULL, NULL);
    if (cfd >= 0)
      serve(s, cfd);
  }
  return NULL;
}

struct wire_server *wire_start(wire_handler handler, void *ctx)
{
  struct wire_server *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->handler = handler;
  s->ctx = ctx;
  pthread_mutex_init(&s->lock, NULL);
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(s->fd, 64) < 0 ||
      getsockname(s->fd, (struct sockaddr *)&a, &alen) < 0) {
    if (s->fd >= 0)
      close(s->fd);
    free(s);
    return NULL;
  }
  s->port = ntohs(a.sin_port);
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
  if (pthread_create(&s->thread, NULL, run, s) != 0) {
    close(s->fd);
    free(s);
    return NULL;
  }
  return s;
}

void wire_stop(struct wire_server *s)
{
  if (!s)
    return;
  atomic_store(&s->stop, true);
  pthread_join(s->thread, NULL);
  close(s->fd);
  for (int i = 0; i < s->count; i++) {
    free(s->requests[i].head);
    free(s->requests[i].body);
  }
  pthread_mutex_destroy(&s->lock);
  free(s);
}

int wire_port(struct wire_server *s)
{
  return s->port;
}

const char *wire_url(struct wire_server *s)
{
  return s->url;
}

int wire_count(struct wire_server *s)
{
  pthread_mutex_lock(&s->lock);
  int n = s->count;
  pthread_mutex_unlock(&s->lock);
  return n;
}

const struct wire_request *wire_request(struct wire_server *s, int i)
{
  pthread_mutex_lock(&s->lock);
  const struct wire_request *r = i >= 0 && i < s->count ? &s->requests[i] : NULL;
  pthread_mutex_unlock(&s->lock);
  return r;
}

int wire_count_prefix(struct wire_server *s, const char *prefix)
{
  int n = 0;
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->count; i++)
    n += strncmp(s->requests[i].target, prefix, strlen(prefix)) == 0;
  pthread_mutex_unlock(&s->lock);
  return n;
}

struct wire_reply wire_script_handler(const struct wire_request *rq, int index,
                                      void *ctx)
{
  (void)rq;
  struct wire_script *sc = ctx;
  int i = index < sc->n ? index : sc->n - 1;
  return sc->replies[i];
}
