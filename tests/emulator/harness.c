#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for pid up to ms; returns true once reaped. */
static int reap_within(pid_t pid, long long ms)
{
  long long deadline = mono_ms() + ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD))
      return 1;
    if (mono_ms() >= deadline)
      return 0;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

int emu_start(struct emu *e, const char *const *extra_args)
{
  const char *exe = e->exe ? e->exe : getenv("CLIQ_EMULATOR");
  int ret = 0;
  int fds[2] = {-1, -1};
  const char **argv = NULL;
  e->pid = 0;
  e->port = 0;
  e->url[0] = '\0';
  if (!exe || !*exe)
    return -ENOENT;
  size_t n = 0;
  while (extra_args && extra_args[n])
    n++;
  argv = calloc(n + 4, sizeof *argv);
  if (!argv)
    return -ENOMEM;
  argv[0] = exe;
  argv[1] = "--port";
  argv[2] = "0";
  for (size_t i = 0; i < n; i++)
    argv[3 + i] = extra_args[i];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    ret = -errno;
    goto out;
  }
  pid_t pid = fork();
  if (pid < 0) {
    ret = -errno;
    goto out;
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  fds[1] = -1;
  e->pid = pid;

  char line[32];
  size_t len = 0;
  long long deadline = mono_ms() + 10000;
  while (len < sizeof line - 1) {
    long long left = deadline - mono_ms();
    if (left <= 0) {
      ret = -ETIMEDOUT;
      break;
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0) {
      ret = pr < 0 ? -errno : -ETIMEDOUT;
      break;
    }
    ssize_t r = read(fds[0], line + len, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      ret = -EPIPE;   /* the emulator exited before listening */
      break;
    }
    if (line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  if (!ret) {
    char *end;
    long port = strtol(line, &end, 10);
    if (end == line || *end || port <= 0 || port > 65535)
      ret = -EPROTO;
    else {
      e->port = (int)port;
      snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", e->port);
    }
  }
  if (ret)
    emu_stop(e);
out:
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  free(argv);
  return ret;
}

void emu_stop(struct emu *e)
{
  if (e->pid <= 0)
    return;
  kill(e->pid, SIGTERM);
  if (!reap_within(e->pid, 5000)) {
    kill(e->pid, SIGKILL);
    reap_within(e->pid, 5000);
  }
  e->pid = 0;
}

struct buf {
  char *p;
  size_t n;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
  struct buf *b = ud;
  size_t add = size * nmemb;
  char *np = realloc(b->p, b->n + add + 1);
  if (!np)
    return 0;
  b->p = np;
  memcpy(b->p + b->n, data, add);
  b->n += add;
  b->p[b->n] = '\0';
  return add;
}

json_t *emu_ctl(struct emu *e, const char *method, const char *path,
                const char *json_body)
{
  char url[1024];
  struct buf b = {0};
  json_t *out = NULL;
  struct curl_slist *hdrs = NULL;
  CURL *curl = curl_easy_init();
  if (!curl)
    return NULL;
  snprintf(url, sizeof url, "%s%s", e->url, path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (json_body) {
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    if (!b.n)
      out = json_object();
    else
      out = json_loadb(b.p, b.n, 0, NULL);
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  free(b.p);
  return out;
}

long emu_count(struct emu *e, const char *api)
{
  json_t *c = emu_ctl(e, "GET", "/_emulator/counters", NULL);
  if (!c)
    return -1;
  json_t *t = json_object_get(json_object_get(json_object_get(c, "apis"), api),
                              "total");
  long n = t ? (long)json_integer_value(t) : 0;
  json_decref(c);
  return n;
}
