/* api/log: where the program's log lines go (see log.h). */
#include "api/log.h"
#include "api/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;          /* a log file, or -1 */
static bool log_stderr = true;   /* else syslog, when there is no file */
static int log_level = CLIQ_LOG_NOTE;

static const char *const level_names[] = { "error", "note", "info", "http" };

int cliq_log_open(const char *path, bool to_stderr, int level)
{
  int fd = -1;
  if (path && *path) {
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
              0600);
    if (fd < 0)
      return -errno;
  }
  pthread_mutex_lock(&log_lock);
  if (log_fd >= 0)
    close(log_fd);
  log_fd = fd;
  log_stderr = to_stderr;
  log_level = level < CLIQ_LOG_ERROR ? CLIQ_LOG_ERROR : level;
  pthread_mutex_unlock(&log_lock);
  if (fd < 0 && !to_stderr)
    openlog("cliqfs", LOG_PID, LOG_DAEMON);
  return 0;
}

void cliq_log_close(void)
{
  pthread_mutex_lock(&log_lock);
  if (log_fd >= 0)
    close(log_fd);
  log_fd = -1;
  log_stderr = true;
  log_level = CLIQ_LOG_NOTE;
  pthread_mutex_unlock(&log_lock);
}

bool cliq_log_enabled(int level)
{
  pthread_mutex_lock(&log_lock);
  bool on = level <= log_level;
  pthread_mutex_unlock(&log_lock);
  return on;
}

void cliq_log(int level, const char *fmt, ...)
{
  if (!cliq_log_enabled(level))
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  const char *name = level >= 0 && level <= CLIQ_LOG_HTTP ? level_names[level]
                                                          : "debug";
  pthread_mutex_lock(&log_lock);
  if (log_fd < 0 && !log_stderr) {
    syslog(level == CLIQ_LOG_ERROR ? LOG_ERR
           : level == CLIQ_LOG_NOTE ? LOG_WARNING
                                    : LOG_INFO,
           "%s", msg);
  } else {
    char line[1200];
    double now = cliq_clock_real();
    struct tm tm;
    char ts[32] = "";
    time_t t = (time_t)now;
    if (gmtime_r(&t, &tm))
      strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    int len = snprintf(line, sizeof line, "%s.%03ldZ cliqfs[%d] %s: %s\n", ts,
                       (long)((now - (double)t) * 1000) % 1000, (int)getpid(),
                       name, msg);
    if (len > (int)sizeof line - 1) {  /* cut: still one whole line */
      len = (int)sizeof line - 1;
      line[len - 1] = '\n';
    }
    int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
    /* One write per line: lines of threads and processes never mix. */
    if (len > 0 && write(fd, line, (size_t)len) < 0) {
      /* Nowhere to tell: the log is the place errors go. */
    }
  }
  pthread_mutex_unlock(&log_lock);
}
