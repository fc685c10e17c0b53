/* api/log: the one log of the program.  Every layer writes lines here; the
 * command line decides where they go (a file, stderr, syslog) and how much
 * is written.  A line never contains a token: callers log paths, API names,
 * statuses and counts, never headers, queries or bodies.
 *
 * Levels: what a user of `-o verbose=N` asks for.  The default is
 * CLIQ_LOG_NOTE: errors, warnings and notes (a read waiting for budget,
 * writes left queued at unmount). */
#ifndef CLIQ_API_LOG_H
#define CLIQ_API_LOG_H

#include <stdbool.h>

enum cliq_log_level {
  CLIQ_LOG_ERROR = 0,  /* the mount cannot do what it must */
  CLIQ_LOG_NOTE = 1,   /* an operation failed or waits; the user should know */
  CLIQ_LOG_INFO = 2,   /* each request to Cliq: API and outcome */
  CLIQ_LOG_HTTP = 3,   /* every HTTP request: method, path, status, time */
};

/* Where lines go.  path: append to that file (created 0600), else stderr
 * when to_stderr, else syslog (ident "cliqfs").  level: lines above it are
 * dropped.  Returns 0 or -errno (the file could not be opened); then the
 * previous destination stays.  Not thread-safe with itself: called at
 * start-up, before threads that log. */
int cliq_log_open(const char *path, bool to_stderr, int level);

/* Back to the default (stderr, CLIQ_LOG_NOTE); closes a log file. */
void cliq_log_close(void);

/* Whether a line of that level would be written (to skip building it). */
bool cliq_log_enabled(int level);

/* One line (no trailing newline needed); a time stamp and the level are
 * added.  Thread-safe; a line is written whole. */
void cliq_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
