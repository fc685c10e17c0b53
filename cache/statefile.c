/* cache/statefile.c: how cliqfs persists state (statefile.h): atomic and
 * durable writes, private folders, account keys. */
#include "cache/statefile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nettle/base16.h>
#include <nettle/sha2.h>

#include "api/cliq.h"

int statefile_mkdirs(const char *path, mode_t mode)
{
  if (!path || !*path)
    return -EINVAL;
  char *copy = strdup(path);
  if (!copy)
    return -ENOMEM;
  int rc = 0;
  size_t n = strlen(copy);
  while (n > 1 && copy[n - 1] == '/')
    copy[--n] = '\0';
  /* Walk the components left to right; a component that exists must be a
   * folder. */
  for (char *p = copy + 1;; p++) {
    bool end = (*p == '\0');
    if (*p != '/' && !end)
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(copy, mode) != 0) {
      int e = errno;
      struct stat st;
      if (e != EEXIST) {
        rc = -e;
        goto out;
      }
      if (stat(copy, &st) != 0) {
        rc = -errno;
        goto out;
      }
      if (!S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
        goto out;
      }
    }
    *p = saved;
    if (end)
      break;
  }
out:
  free(copy);
  return rc;
}

static int split_dir(const char *path, char **dir_out, const char **base_out)
{
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = strdup(".");
    *base_out = path;
  } else if (slash == path) {
    dir = strdup("/");
    *base_out = slash + 1;
  } else {
    dir = strndup(path, (size_t)(slash - path));
    *base_out = slash + 1;
  }
  if (!dir)
    return -ENOMEM;
  if (!**base_out) {
    free(dir);
    return -EINVAL;
  }
  *dir_out = dir;
  return 0;
}

static int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int write_replace(const char *path, const void *data, size_t len,
                         bool durable)
{
  if (!path || (!data && len))
    return -EINVAL;
  char *dir = NULL, *tmp = NULL;
  const char *base;
  int fd = -1;
  int rc = split_dir(path, &dir, &base);
  if (rc)
    return rc;
  if (asprintf(&tmp, "%s/.%s.tmp.XXXXXX", dir, base) < 0) {
    tmp = NULL;
    rc = -ENOMEM;
    goto out;
  }
  /* mkstemp creates the file 0600 whatever the umask. */
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    free(tmp);
    tmp = NULL;
    goto out;
  }
  rc = write_all(fd, data, len);
  if (rc)
    goto out;
  if (durable && fsync(fd) != 0) {
    rc = -errno;
    goto out;
  }
  if (close(fd) != 0) {
    fd = -1;
    rc = -errno;
    goto out;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    rc = -errno;
    goto out;
  }
  free(tmp);
  tmp = NULL;
  if (durable)
    rc = fsync_dir(dir);
out:
  if (fd >= 0)
    close(fd);
  if (tmp) {
    unlink(tmp);
    free(tmp);
  }
  free(dir);
  return rc;
}

int statefile_write_atomic(const char *path, const void *data, size_t len)
{
  return write_replace(path, data, len, true);
}

int statefile_replace(const char *path, const void *data, size_t len)
{
  return write_replace(path, data, len, false);
}

int statefile_overwrite(const char *path, const void *data, size_t len)
{
  if (!path || (!data && len))
    return -EINVAL;
  char *padded = NULL;
  int rc = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -errno;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    rc = -errno;
    goto out;
  }
  size_t old = sb.st_size > 0 ? (size_t)sb.st_size : 0;
  const void *bytes = data;
  size_t n = len;
  if (old > len) {
    /* Blanks over the old tail first: a process killed before the truncate
     * leaves the new text and white space, not the old text's end. */
    padded = malloc(old);
    if (!padded) {
      rc = -ENOMEM;
      goto out;
    }
    memcpy(padded, data, len);
    memset(padded + len, ' ', old - len);
    bytes = padded;
    n = old;
  }
  rc = write_all(fd, bytes, n);
  if (rc == 0 && old > len && ftruncate(fd, (off_t)len) != 0)
    rc = -errno;
out:
  close(fd);
  free(padded);
  return rc;
}

int statefile_read(const char *path, char **buf, size_t *len)
{
  if (!path || !buf)
    return -EINVAL;
  *buf = NULL;
  if (len)
    *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = 0;
  size_t cap = 4096, used = 0;
  char *data = malloc(cap);
  if (!data) {
    rc = -ENOMEM;
    goto out;
  }
  for (;;) {
    if (cap - used < 2) {
      char *bigger = realloc(data, cap * 2);
      if (!bigger) {
        rc = -ENOMEM;
        goto out;
      }
      data = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, data + used, cap - used - 1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      goto out;
    }
    if (r == 0)
      break;
    used += (size_t)r;
  }
  data[used] = '\0';
  *buf = data;
  data = NULL;
  if (len)
    *len = used;
out:
  free(data);
  close(fd);
  return rc;
}

json_t *statefile_read_json(const char *path)
{
  char *buf = NULL;
  size_t len = 0;
  if (statefile_read(path, &buf, &len) != 0)
    return NULL;
  json_t *root = json_loadb(buf, len, 0, NULL);
  free(buf);
  return root;
}

int statefile_unlink_durable(const char *path)
{
  char *dir = NULL;
  const char *base;
  int rc = split_dir(path, &dir, &base);
  if (rc)
    return rc;
  if (unlink(path) != 0)
    rc = -errno;
  else
    rc = fsync_dir(dir);
  free(dir);
  return rc;
}

bool statefile_is_temp_name(const char *name)
{
  if (!name || name[0] != '.')
    return false;
  size_t n = strlen(name);
  static const char marker[] = ".tmp.";
  size_t m = sizeof(marker) - 1;
  /* ".<base>.tmp.XXXXXX": at least one character of base. */
  if (n < 1 + 1 + m + 6)
    return false;
  if (memcmp(name + n - 6 - m, marker, m) != 0)
    return false;
  for (size_t i = n - 6; i < n; i++)
    if (!isalnum((unsigned char)name[i]))
      return false;
  return true;
}

/* Lower-case hex of n bytes into out (2n + 1 chars). */
static void to_hex(const uint8_t *bytes, size_t n, char *out)
{
  base16_encode_update(out, n, bytes);
  out[BASE16_ENCODE_LENGTH(n)] = '\0';
}

void statefile_digest(const void *data, size_t len, char out[65])
{
  struct sha256_ctx s;
  uint8_t sum[SHA256_DIGEST_SIZE];
  sha256_init(&s);
  sha256_update(&s, len, data);
  sha256_digest(&s, sizeof sum, sum);
  to_hex(sum, sizeof sum, out);
}

/* ---- Account folder names ------------------------------------------------ */

/* "HTTPS://Cliq.Zoho.com:443/" -> scheme "https", host "cliq.zoho.com",
 * port "443", rest "" (trailing slashes dropped); the normalised form is what
 * gets hashed, so cosmetic differences in the config map to one folder. */
static char *normalise_url(const char *url, char **host_out)
{
  *host_out = NULL;
  const char *sep = strstr(url, "://");
  const char *auth = sep ? sep + 3 : url;
  size_t auth_len = strcspn(auth, "/?#");
  const char *rest = auth + auth_len;
  size_t rest_len = strlen(rest);
  while (rest_len > 0 && rest[rest_len - 1] == '/')
    rest_len--;
  /* Credentials in the URL (user@host) are not part of the host. */
  const char *at = memchr(auth, '@', auth_len);
  if (at) {
    auth_len -= (size_t)(at + 1 - auth);
    auth = at + 1;
  }
  char *host = strndup(auth, auth_len);
  if (!host)
    return NULL;
  for (char *p = host; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  char *norm = NULL;
  size_t scheme_len = sep ? (size_t)(sep - url) : 0;
  char *scheme = strndup(url, scheme_len);
  if (!scheme) {
    free(host);
    return NULL;
  }
  for (char *p = scheme; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (asprintf(&norm, "%s://%s%.*s", scheme, host, (int)rest_len, rest) < 0)
    norm = NULL;
  free(scheme);
  if (!norm) {
    free(host);
    return NULL;
  }
  *host_out = host;
  return norm;
}

char *statefile_account_key(const char *api_url, const char *identity)
{
  char *host = NULL;
  char *norm = normalise_url(api_url ? api_url : "", &host);
  if (!norm)
    return NULL;
  const char *id = identity ? identity : "";
  struct sha256_ctx s;
  uint8_t sum[SHA256_DIGEST_SIZE];
  char hex[65];
  sha256_init(&s);
  sha256_update(&s, strlen(norm), (const uint8_t *)norm);
  /* separator that cannot occur in either part */
  sha256_update(&s, 1, (const uint8_t *)"");
  sha256_update(&s, strlen(id), (const uint8_t *)id);
  sha256_digest(&s, sizeof sum, sum);
  to_hex(sum, 6, hex);

  /* Host characters outside [a-z0-9.-] (the port colon, IPv6 brackets)
   * become '_'; the name never starts with '.'. */
  char safe[80];
  size_t n = 0;
  for (const char *p = host; *p && n < sizeof(safe) - 1; p++) {
    char ch = *p;
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-';
    if (n == 0 && ch == '.')
      ok = false;
    safe[n++] = ok ? ch : '_';
  }
  safe[n] = '\0';
  char *key = NULL;
  if (asprintf(&key, "%s-%s", n ? safe : "api", hex) < 0)
    key = NULL;
  free(host);
  free(norm);
  return key;
}

