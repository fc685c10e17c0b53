/* fs/config_write.c: writing the config file for cliqfs auth, atomically and
 * with the secrets kept private. */
#include "fs/config_i.h"

/* ---- Writing the file (cliqfs auth) ------------------------------------- */

/* mkdir -p for the folders above path; the ones created get 0700. */
static int make_parents(const char *path, char *errbuf, size_t errlen)
{
  char *copy = strdup(path);
  if (!copy)
    return -ENOMEM;
  int rc = 0;
  char *slash = strrchr(copy, '/');
  if (!slash || slash == copy)
    goto out;
  *slash = '\0';
  for (char *p = copy + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        cliq_fail_text(errbuf, errlen, "cannot create the folder %s: %s", copy,
                strerror(-rc));
        goto out;
      }
      *p = saved;
      if (saved == '\0')
        break;
    }
  }
  struct stat st;
  if (stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
    rc = -ENOTDIR;
    cliq_fail_text(errbuf, errlen, "%s is not a folder", copy);
  }
out:
  free(copy);
  return rc;
}

static bool append_text(char **buf, size_t *len, size_t *cap, const char *s)
{
  size_t n = strlen(s);
  if (*len + n + 1 > *cap) {
    size_t ncap = (*cap ? *cap * 2 : 1024);
    while (ncap < *len + n + 1)
      ncap *= 2;
    char *grown = malloc(ncap);
    if (!grown)
      return false;
    if (*buf) {
      memcpy(grown, *buf, *len);
      explicit_bzero(*buf, *cap);
      free(*buf);
    }
    *buf = grown;
    *cap = ncap;
  }
  memcpy(*buf + *len, s, n + 1);
  *len += n;
  return true;
}

static bool append_setting(char **buf, size_t *len, size_t *cap,
                           const char *key, const char *value)
{
  return append_text(buf, len, cap, key) &&
         append_text(buf, len, cap, " = ") &&
         append_text(buf, len, cap, value) &&
         append_text(buf, len, cap, "\n");
}

int cliqfs_config_store(const char *path, const char *const *keys,
                        const char *const *values, size_t n, char *errbuf,
                        size_t errlen)
{
  struct line_list lines = { NULL, 0 };
  char *text = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  bool *written = calloc(n ? n : 1, sizeof *written);
  if (!written)
    return -ENOMEM;

  for (size_t i = 0; i < n; i++) {
    if (values[i] && (strchr(values[i], '\n') || strchr(values[i], '\r'))) {
      cliq_fail_text(errbuf, errlen, "the value of %s contains a line break",
              keys[i]);
      rc = -EINVAL;
      goto out;
    }
  }
  rc = make_parents(path, errbuf, errlen);
  if (rc < 0)
    goto out;

  FILE *f = fopen(path, "re");
  if (f) {
    rc = read_lines(f, &lines);
    fclose(f);
    if (rc < 0) {
      cliq_fail_text(errbuf, errlen, "cannot read the existing config %s: %s", path,
              strerror(-rc));
      goto out;
    }
  } else if (errno != ENOENT) {
    rc = -errno;
    cliq_fail_text(errbuf, errlen, "cannot read the existing config %s: %s", path,
            strerror(-rc));
    goto out;
  } else if (!append_text(&text, &len, &cap,
                          "# cliqfs configuration: see cliqfs(1).  Holds "
                          "secrets: keep it mode 0600.\n")) {
    rc = -ENOMEM;
    goto out;
  }

  for (size_t i = 0; i < lines.count; i++) {
    char *copy = strdup(lines.lines[i]);
    if (!copy) {
      rc = -ENOMEM;
      goto out;
    }
    char *key = NULL, *value = NULL;
    ssize_t match = -1;
    if (split_line(copy, &key, &value) > 0) {
      for (size_t k = 0; k < n; k++)
        if (strcmp(key, keys[k]) == 0)
          match = (ssize_t)k;
    }
    explicit_bzero(copy, strlen(copy));
    free(copy);
    bool ok = true;
    if (match < 0) {
      ok = append_text(&text, &len, &cap, lines.lines[i]) &&
           append_text(&text, &len, &cap, "\n");
    } else if (!written[match] && values[match]) {
      ok = append_setting(&text, &len, &cap, keys[match], values[match]);
      written[match] = true;
    }
    if (!ok) {
      rc = -ENOMEM;
      goto out;
    }
  }
  for (size_t k = 0; k < n; k++) {
    if (!written[k] && values[k] &&
        !append_setting(&text, &len, &cap, keys[k], values[k])) {
      rc = -ENOMEM;
      goto out;
    }
  }

  /* Written next to it and renamed over it, synced: the file is the old
   * one or the new one, even after a crash; mode 0600. */
  rc = statefile_write_atomic(path, text ? text : "", len);
  if (rc < 0) {
    cliq_fail_text(errbuf, errlen, "cannot write %s: %s", path, strerror(-rc));
    goto out;
  }
out:
  if (text) {
    explicit_bzero(text, cap);
    free(text);
  }
  line_list_clear(&lines);
  free(written);
  return rc;
}
