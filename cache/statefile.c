#include "cache/statefile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------ */

struct sha256 {
  uint32_t h[8];
  uint64_t total;
  unsigned char block[64];
  size_t fill;
};

static const uint32_t sha256_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
  0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, unsigned n)
{
  return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *s, const unsigned char *p)
{
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
  uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
                  ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
    uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
                  ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  s->h[5] += f;
  s->h[6] += g;
  s->h[7] += h;
}

static void sha256_init(struct sha256 *s)
{
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                 0xa54ff53a, 0x510e527f, 0x9b05688c,
                                 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof(iv));
  s->total = 0;
  s->fill = 0;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
  const unsigned char *p = data;
  s->total += len;
  while (len > 0) {
    size_t take = 64 - s->fill;
    if (take > len)
      take = len;
    memcpy(s->block + s->fill, p, take);
    s->fill += take;
    p += take;
    len -= take;
    if (s->fill == 64) {
      sha256_block(s, s->block);
      s->fill = 0;
    }
  }
}

static void sha256_final(struct sha256 *s, unsigned char out[32])
{
  uint64_t bits = s->total * 8;
  unsigned char pad = 0x80;
  sha256_update(s, &pad, 1);
  pad = 0;
  while (s->fill != 56)
    sha256_update(s, &pad, 1);
  unsigned char len_be[8];
  for (int i = 0; i < 8; i++)
    len_be[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(s, len_be, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(s->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)s->h[i];
  }
}

static void to_hex(const unsigned char *bytes, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}

void statefile_digest(const void *data, size_t len, char out[65])
{
  struct sha256 s;
  unsigned char sum[32];
  sha256_init(&s);
  sha256_update(&s, data, len);
  sha256_final(&s, sum);
  to_hex(sum, sizeof(sum), out);
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
  struct sha256 s;
  unsigned char sum[32];
  char hex[65];
  sha256_init(&s);
  sha256_update(&s, norm, strlen(norm));
  sha256_update(&s, "", 1); /* separator that cannot occur in either part */
  sha256_update(&s, id, strlen(id));
  sha256_final(&s, sum);
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

int statefile_fail(cliq_error *err, int e, const char *fmt, ...)
{
  if (err) {
    memset(err, 0, sizeof(*err));
    err->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
  }
  return -e;
}

double statefile_now_real(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
