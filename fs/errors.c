/* fs/errors.c: failures of file operations, kept as .cliqfs/errors lines and
 * logged. */
#include "fs/fs_i.h"

/* ---- Errors: .cliqfs/errors, status, stderr ---------------------------------- */

#define ERRORS_MAX_BYTES (1u << 20)
#define LAST_ERRORS 10

static const char *errno_name(int e)
{
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

int fs_fail_path(struct fs *fs, const char *path, int e,
                        const cliq_error *err, const char *fmt, ...)
{
  /* A first attempt that could not wait is tried again: not a failure. */
  if (handing_on())
    return -e;
  char what[1024] = "";
  if (err && err->message[0]) {
    snprintf(what, sizeof what, "%s", err->message);
  } else if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
  } else {
    snprintf(what, sizeof what, "%s", strerror(e));
  }
  for (char *c = what; *c; c++)
    if (*c == '\n' || *c == '\t')
      *c = ' ';
  /* A name a user gave may hold anything: the line stays one line of
   * fields, and no escape sequence reaches a terminal showing it. */
  char shown[1024];
  snprintf(shown, sizeof shown, "%s", path ? path : "?");
  for (unsigned char *c = (unsigned char *)shown; *c; c++)
    if (*c < 0x20 || *c == 0x7f)
      *c = '?';
  const char *code = err && err->code[0] ? err->code : "-";
  char ts[32];
  store_format_time((int64_t)cliq_clock_real() * 1000, ts, sizeof ts);
  char *line = NULL;
  if (asprintf(&line, "%s\t%s\t%s\t%s\t%s\n", ts, shown, errno_name(e),
               code, what) < 0)
    return -e;
  cliq_log(CLIQ_LOG_NOTE, "%s", line);
  pthread_mutex_lock(&fs->lock);
  size_t l = strlen(line);
  if (fs->errors_len + l > ERRORS_MAX_BYTES) {
    /* Keep the newer half, cut at a line start. */
    size_t cut = fs->errors_len / 2;
    while (cut < fs->errors_len && fs->errors[cut - 1] != '\n')
      cut++;
    memmove(fs->errors, fs->errors + cut, fs->errors_len - cut);
    fs->errors_len -= cut;
  }
  if (fs->errors_len + l + 1 > fs->errors_cap) {
    size_t nc = fs->errors_cap ? fs->errors_cap * 2 : 4096;
    while (nc < fs->errors_len + l + 1)
      nc *= 2;
    char *nb = realloc(fs->errors, nc);
    if (nb) {
      fs->errors = nb;
      fs->errors_cap = nc;
    }
  }
  if (fs->errors_len + l + 1 <= fs->errors_cap) {
    memcpy(fs->errors + fs->errors_len, line, l + 1);
    fs->errors_len += l;
  }
  json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", ts, "path",
                            path ? path : "?", "errno", errno_name(e), "code",
                            code, "message", what);
  if (entry) {
    json_array_append_new(fs->last_errors, entry);
    while (json_array_size(fs->last_errors) > LAST_ERRORS)
      json_array_remove(fs->last_errors, 0);
  }
  pthread_mutex_unlock(&fs->lock);
  free(line);
  return -e;
}

int fs_fail(struct fs *fs, struct node *n, int e, const cliq_error *err,
                   const char *msg)
{
  char *path = node_path(fs, n);
  fs_fail_path(fs, path, e, err, "%s", msg ? msg : strerror(e));
  free(path);
  return -e;
}
