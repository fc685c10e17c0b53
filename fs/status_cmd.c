/* fs/status_cmd: the `cliqfs status` command (see status_cmd.h). */
#include "fs/status_cmd.h"
#include "fs/config.h"
#include "api/clock.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "cliqfs"

static void print_help(void)
{
  printf("Usage: " PROG " status [--json] [MOUNTPOINT...]\n"
         "Shows what each cliqfs mount is doing: who it is signed in as, the\n"
         "rate budget of each API that was used or is locked (and until when),\n"
         "reads waiting for budget, messages waiting in the outbox or refused,\n"
         "the cache and the last errors.  Without MOUNTPOINT, every cliqfs\n"
         "mount of this user is shown.\n"
         "  --json   print MOUNTPOINT/.cliqfs/status as it is\n");
}

/* "2026-12-04T01:30:00Z" of an epoch time. */
static void iso_time(double epoch, char *buf, size_t len)
{
  time_t t = (time_t)epoch;
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, len, "%.0f", epoch);
}

static double num(json_t *obj, const char *key)
{
  return json_number_value(json_object_get(obj, key));
}

static void human_bytes(double n, char *buf, size_t len)
{
  if (n < 1024)
    snprintf(buf, len, "%.0f B", n);
  else if (n < 1024 * 1024)
    snprintf(buf, len, "%.1f KiB", n / 1024);
  else
    snprintf(buf, len, "%.1f MiB", n / (1024 * 1024));
}

static void print_apis(FILE *out, json_t *apis, double now)
{
  const char *name;
  json_t *api;
  int idle = 0;
  fprintf(out, "  rate budgets:\n");
  json_object_foreach(apis, name, api) {
    double used = num(api, "used");
    double limit = num(api, "limit");
    double window = num(api, "window_s");
    double locked = num(api, "locked_until");
    if (locked > now) {
      char when[40];
      iso_time(locked, when, sizeof when);
      fprintf(out, "    %-26s LOCKED by Cliq until %s (%.0f s left)\n", name,
              when, locked - now);
    } else if (used > 0) {
      fprintf(out, "    %-26s %.0f of %.0f used in this %.0f s window\n",
              name, used, limit, window);
    } else {
      idle++;
    }
  }
  if (idle > 0)
    fprintf(out, "    (%d other APIs unused in their window)\n", idle);
}

static void print_waiting(FILE *out, json_t *waiting, double now)
{
  if (!json_is_array(waiting) || json_array_size(waiting) == 0)
    return;
  fprintf(out, "  waiting for Cliq: %zu\n", json_array_size(waiting));
  size_t i;
  json_t *w;
  json_array_foreach(waiting, i, w) {
    const char *what = json_string_value(json_object_get(w, "path"));
    const char *op = json_string_value(json_object_get(w, "op"));
    const char *api = json_string_value(json_object_get(w, "api"));
    double since = num(w, "since");
    fprintf(out, "    %s%s%s%s%s", op ? op : "", op ? " " : "",
            what ? what : "?", api ? ": waiting for a slot of " : "",
            api ? api : "");
    if (since > 0)
      fprintf(out, " for %.0f s", now > since ? now - since : 0.0);
    fputc('\n', out);
  }
}

/* The accounts of the mounts shown: their queues are in their status. */
static char *shown_dirs[CLIQFS_MAX_MOUNTS];
static size_t n_shown_dirs;

/* Background sync: how far, and when it will be done. */
static void print_sync(FILE *out, json_t *sync)
{
  const char *mode = json_string_value(json_object_get(sync, "mode"));
  if (!mode)
    return;
  if (strcmp(mode, "off") == 0) {
    fprintf(out, "  sync: off\n");
    return;
  }
  fprintf(out, "  sync (%s): %.0f of %.0f threads, %.0f messages, %.0f requests",
          mode, num(sync, "threads_synced"), num(sync, "threads"),
          num(sync, "messages"), num(sync, "requests"));
  json_t *eta = json_object_get(sync, "eta_s");
  const char *last = json_string_value(json_object_get(sync, "last_full_pass_iso"));
  if (json_is_number(eta) && json_number_value(eta) == 0)
    fprintf(out, "; in sync (grep -r costs nothing)");
  else if (json_is_number(eta))
    fprintf(out, "; about %.0f s to go", json_number_value(eta));
  if (last)
    fprintf(out, "; last full pass %s", last);
  fputc('\n', out);
}

/* Journal entries (NNNN.json) in one outbox folder. */
static size_t count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
      n++;
  }
  closedir(d);
  return n;
}

/* With nothing mounted: messages written earlier and still queued in an
 * account's journal, which its next mount delivers. */
static void print_queued_offline(FILE *out)
{
  char *base = cliqfs_state_base();
  DIR *accounts = base ? opendir(base) : NULL;
  struct dirent *acc;
  while (accounts && (acc = readdir(accounts))) {
    if (acc->d_name[0] == '.')
      continue;
    char *dir = NULL;
    if (asprintf(&dir, "%s/%s", base, acc->d_name) < 0)
      continue;
    DIR *slots = opendir(dir);
    size_t queued = 0;
    struct dirent *sl;
    while (slots && (sl = readdir(slots))) {
      if (strncmp(sl->d_name, "outbox", 6) != 0)
        continue;
      char *sub = NULL;
      if (asprintf(&sub, "%s/%s", dir, sl->d_name) >= 0) {
        queued += count_entries(sub);
        free(sub);
      }
    }
    if (slots)
      closedir(slots);
    bool mounted = false;
    for (size_t i = 0; i < n_shown_dirs; i++)
      mounted |= shown_dirs[i] && strcmp(shown_dirs[i], dir) == 0;
    if (queued && !mounted)
      fprintf(out, "%zu message%s queued for the account of %s: delivered "
                   "at its next mount\n", queued, queued == 1 ? "" : "s", dir);
    free(dir);
  }
  if (accounts)
    closedir(accounts);
  free(base);
}

void cliqfs_status_print(FILE *out, const char *mountpoint, json_t *status,
                         double now)
{
  fprintf(out, "cliqfs at %s\n", mountpoint);
  const char *auth = json_string_value(json_object_get(status, "auth"));
  if (auth)
    fprintf(out, "  sign-in: %s\n", auth);
  const char *me = json_string_value(json_object_get(status, "me"));
  if (me)
    fprintf(out, "  me: %s\n", me);
  json_t *apis = json_object_get(status, "apis");
  if (json_is_object(apis))
    print_apis(out, apis, now);
  print_waiting(out, json_object_get(status, "waiting"), now);

  json_t *ob = json_object_get(status, "outbox");
  if (json_is_object(ob)) {
    double depth = num(ob, "depth");
    double failed = num(ob, "failed");
    fprintf(out, "  outbox: %.0f waiting to be delivered, %.0f delivered",
            depth, num(ob, "delivered"));
    if (failed > 0)
      fprintf(out, ", %.0f refused for good (see .cliqfs/failed/)", failed);
    const char *oldest = json_string_value(json_object_get(ob, "oldest_iso"));
    if (depth > 0 && oldest)
      fprintf(out, "; the oldest waits since %s (%.0f s)", oldest,
              now > num(ob, "oldest") ? now - num(ob, "oldest") : 0.0);
    fputc('\n', out);
  }
  print_sync(out, json_object_get(status, "sync"));
  json_t *cache = json_object_get(status, "cache");
  if (json_is_object(cache)) {
    char size[32];
    human_bytes(num(cache, "bytes"), size, sizeof size);
    fprintf(out, "  cache: %.0f files, %s, %.0f hits, %.0f misses\n",
            num(cache, "entries"), size, num(cache, "hits"),
            num(cache, "misses"));
  }
  json_t *errors = json_object_get(status, "last_errors");
  if (json_is_array(errors) && json_array_size(errors) > 0) {
    fprintf(out, "  last errors (all in .cliqfs/errors):\n");
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
      const char *msg = json_string_value(json_object_get(e, "message"));
      if (json_is_string(e))
        fprintf(out, "    %s\n", json_string_value(e));
      else if (msg) {
        const char *t = json_string_value(json_object_get(e, "time"));
        const char *p = json_string_value(json_object_get(e, "path"));
        const char *en = json_string_value(json_object_get(e, "errno"));
        fprintf(out, "    %s %s %s: %s\n", t ? t : "", p ? p : "",
                en ? en : "", msg);
      } else if (json_is_object(e)) {
        char *line = json_dumps(e, JSON_COMPACT);
        fprintf(out, "    %s\n", line ? line : "?");
        free(line);
      }
    }
  }
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' &&
        r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

size_t cliqfs_mounts(char **mounts, size_t max)
{
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f)
    return 0;
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;
  while (n < max && getline(&line, &cap, f) > 0) {
    /* id parent major:minor root MOUNTPOINT options... - TYPE SOURCE ... */
    char *sep = strstr(line, " - ");
    if (!sep)
      continue;
    char type[64];
    if (sscanf(sep + 3, "%63s", type) != 1 || strcmp(type, "fuse.cliqfs") != 0)
      continue;
    char *save = NULL;
    char *field = strtok_r(line, " ", &save);
    for (int i = 0; field && i < 4; i++)
      field = strtok_r(NULL, " ", &save);
    if (!field)
      continue;
    unescape_mountinfo(field);
    mounts[n] = strdup(field);
    if (mounts[n])
      n++;
  }
  free(line);
  fclose(f);
  return n;
}

/* Whether mountpoint is still among the cliqfs mounts. */
static bool still_mounted(const char *mountpoint)
{
  char *mounts[CLIQFS_MAX_MOUNTS];
  size_t n = cliqfs_mounts(mounts, CLIQFS_MAX_MOUNTS);
  bool found = false;
  for (size_t i = 0; i < n; i++) {
    found = found || strcmp(mounts[i], mountpoint) == 0;
    free(mounts[i]);
  }
  return found;
}

/* How long a mount's daemon has to answer: one that is stopped (Ctrl-Z on
 * `cliqfs -f`) or stuck would otherwise hold the command forever, as a hung
 * mount holds df. */
#define STATUS_ANSWER_SECONDS 5.0

/* The child's answer when the open or the first read fails: '-' and the
 * errno. */
static void status_read_failed(int fd, int e)
{
  char msg[1 + sizeof e];
  msg[0] = '-';
  memcpy(msg + 1, &e, sizeof e);
  _exit(write(fd, msg, sizeof msg) == (ssize_t)sizeof msg ? 0 : 1);
}

/* The child's side of status_load: reads path and writes to fd '+' and the
 * content (or status_read_failed's answer), then ends with _exit, running
 * none of the parent's exit handlers or stdio flushes. */
static void status_read_child(const char *path, int fd)
{
  int in = open(path, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    status_read_failed(fd, errno);
  char buf[65536];
  buf[0] = '+';
  size_t have = 1;
  bool sent = false;
  for (;;) {
    ssize_t n = read(in, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && !sent)
      status_read_failed(fd, errno);
    if (n > 0)
      have += (size_t)n;
    if (n <= 0 || have == sizeof buf) {
      for (size_t off = 0; off < have;) {
        ssize_t w = write(fd, buf + off, have - off);
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0)
          _exit(1);
        off += (size_t)w;
      }
      have = 0;
      sent = true;
    }
    if (n <= 0)
      _exit(n == 0 ? 0 : 1);
  }
}

/* Loads path within STATUS_ANSWER_SECONDS.  The read happens in a child
 * process: a read the daemon never answers blocks its caller in the kernel,
 * where only SIGKILL ends it (a thread left there would also hold this
 * process's exit).  Returns the document (the caller owns it), or NULL with
 * *err: an errno of the open or read, ETIMEDOUT when the daemon did not
 * answer in time, or 0 with jerr saying why it is not JSON. */
static json_t *status_load(const char *path, int *err, json_error_t *jerr)
{
  json_t *doc = NULL;
  char *text = NULL;
  size_t len = 0, cap = 0;
  int fds[2];
  *err = 0;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *err = errno;
    return NULL;
  }
  pid_t pid = fork();
  if (pid < 0) {
    *err = errno;
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  if (pid == 0) {
    close(fds[0]);
    status_read_child(path, fds[1]);
  }
  close(fds[1]);
  double deadline = cliq_clock_mono() + STATUS_ANSWER_SECONDS;
  bool eof = false;
  while (!eof) {
    double left = deadline - cliq_clock_mono();
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int r = left > 0 ? poll(&pfd, 1, (int)(left * 1000) + 1) : 0;
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      *err = r == 0 ? ETIMEDOUT : errno;
      break;
    }
    if (cap - len < 65536) {
      char *bigger = realloc(text, cap + 65536 + 1);
      if (!bigger) {
        *err = ENOMEM;
        break;
      }
      text = bigger;
      cap += 65536;
    }
    ssize_t n = read(fds[0], text + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      *err = errno;
      break;
    }
    len += (size_t)n;
    eof = n == 0;
  }
  close(fds[0]);
  if (!eof)
    kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (!eof)
    goto out;
  if (len >= 1 + sizeof(int) && text[0] == '-') {
    memcpy(err, text + 1, sizeof(int));
  } else if (len >= 1 && text[0] == '+') {
    doc = json_loadb(text + 1, len - 1, 0, jerr);
  } else {
    *err = EIO;
  }
out:
  free(text);
  return doc;
}

/* 0, or 1 with a line on stderr that says what to do.  found: the mount
 * point came from the mount table, not from the user: one unmounted since
 * (gone between the table and the read) is left out without a word. */
static int show_one(const char *mountpoint, bool raw, double now, bool found)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/.cliqfs/status", mountpoint) >=
      (int)sizeof path) {
    fprintf(stderr, PROG " status: %s: path too long\n", mountpoint);
    return 1;
  }
  json_error_t jerr;
  int e;
  json_t *status = status_load(path, &e, &jerr);
  if (!status) {
    if (found && e == ENOENT && !still_mounted(mountpoint))
      return 0;
    if (e == ETIMEDOUT)
      fprintf(stderr,
              PROG " status: %s: the mount's daemon did not answer within "
              "%.0f s (stopped, or stuck); if it was stopped, continue it "
              "(fg, or kill -CONT), else see its log\n",
              mountpoint, STATUS_ANSWER_SECONDS);
    else if (e == ENOTCONN)
      fprintf(stderr,
              PROG " status: %s: the mount's daemon is gone (%s); unmount it "
              "with: fusermount3 -u %s\n",
              mountpoint, strerror(e), mountpoint);
    else if (e == ENOENT)
      fprintf(stderr,
              PROG " status: %s is not a cliqfs mount (no .cliqfs/status)\n",
              mountpoint);
    else
      fprintf(stderr, PROG " status: %s: cannot read .cliqfs/status: %s\n",
              mountpoint, e ? strerror(e) : jerr.text);
    return 1;
  }
  const char *sd = json_string_value(json_object_get(status, "state_dir"));
  if (sd && n_shown_dirs < CLIQFS_MAX_MOUNTS)
    shown_dirs[n_shown_dirs++] = strdup(sd);
  if (raw) {
    json_dumpf(status, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else {
    cliqfs_status_print(stdout, mountpoint, status, now);
  }
  json_decref(status);
  return 0;
}

int cliqfs_status_main(int argc, char **argv)
{
  bool raw = false;
  int first = argc;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      raw = true;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      print_help();
      return 0;
    } else if (strcmp(argv[i], "--") == 0) {
      first = i + 1;
      break;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, PROG " status: unknown option '%s'\nTry '" PROG
                      " status --help'.\n", argv[i]);
      return 2;
    } else {
      first = i;
      break;
    }
  }
  double now = (double)time(NULL);
  int rc = 0;
  if (first < argc) {
    for (int i = first; i < argc; i++)
      rc |= show_one(argv[i], raw, now, false);
    return rc;
  }
  char *mounts[CLIQFS_MAX_MOUNTS];
  size_t n = cliqfs_mounts(mounts, CLIQFS_MAX_MOUNTS);
  if (n == 0) {
    fprintf(stderr, PROG " status: no cliqfs mount found; name one: " PROG
                    " status MOUNTPOINT\n");
    print_queued_offline(stdout);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && !raw)
      fputc('\n', stdout);
    rc |= show_one(mounts[i], raw, now, true);
    free(mounts[i]);
  }
  if (!raw) {
    /* Accounts not mounted now whose messages wait for their next mount. */
    print_queued_offline(stdout);
  }
  for (size_t i = 0; i < n_shown_dirs; i++)
    free(shown_dirs[i]);
  n_shown_dirs = 0;
  return rc;
}
