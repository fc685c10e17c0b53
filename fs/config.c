/* fs/config: see config.h.  Plain C, no FUSE. */
#include "fs/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cliq.h"
#include "api/endpoints.h"
#include "cache/statefile.h"

#define CONFIG_MAX_BYTES (1 << 20)

/* The hosts table of reference/cliq-api.md. */
static const struct dc_row {
  const char *dc;
  const char *api_url;
  const char *accounts_url;
} dc_table[] = {
  { "us", "https://cliq.zoho.com", "https://accounts.zoho.com" },
  { "eu", "https://cliq.zoho.eu", "https://accounts.zoho.eu" },
  { "in", "https://cliq.zoho.in", "https://accounts.zoho.in" },
  { "au", "https://cliq.zoho.com.au", "https://accounts.zoho.com.au" },
  { "jp", "https://cliq.zoho.jp", "https://accounts.zoho.jp" },
  { "cn", "https://cliq.zoho.com.cn", "https://accounts.zoho.com.cn" },
  { "ca", "https://cliq.zohocloud.ca", "https://accounts.zohocloud.ca" },
  { "sa", "https://cliq.zoho.sa", "https://accounts.zoho.sa" },
  { "uk", "https://cliq.zoho.uk", "https://accounts.zoho.uk" },
};
#define DC_COUNT (sizeof dc_table / sizeof dc_table[0])
#define DC_LIST "us, eu, in, au, jp, cn, ca, sa, uk"

static const char *const plain_keys[] = {
  "client_id", "dc", "api_url", "accounts_url", "history", "max_wait",
  "time_scale", "timeout", "uid", "gid", "umask", "log", "verbose",
};
static const char *const secret_keys[] = {
  "client_secret", "refresh_token", "access_token",
};
#define LIMIT_PREFIX "limit."

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
  if (!errbuf || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

void cliqfs_config_init(struct cliqfs_config *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->dc = strdup("us");
  cfg->history = 100;
  cfg->max_wait_s = 60;
  cfg->time_scale = 1;
  cfg->timeout_s = 30;
  cfg->uid = -1;
  cfg->gid = -1;
  cfg->umask = -1;
  cfg->verbose = 1;
}

static void limits_clear(struct cliqfs_config *cfg)
{
  for (size_t i = 0; i < cfg->n_limits; i++) {
    free(cfg->limits[i].api);
    free(cfg->limits[i].value);
  }
  free(cfg->limits);
  cfg->limits = NULL;
  cfg->n_limits = 0;
}

void cliqfs_free_secret(char **s)
{
  if (*s) {
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

void cliqfs_config_clear(struct cliqfs_config *cfg)
{
  free(cfg->config_path);
  free(cfg->log_path);
  free(cfg->client_id);
  cliqfs_free_secret(&cfg->client_secret);
  cliqfs_free_secret(&cfg->refresh_token);
  cliqfs_free_secret(&cfg->access_token);
  free(cfg->dc);
  free(cfg->api_url);
  free(cfg->accounts_url);
  free(cfg->state_dir);
  free(cfg->cache_dir);
  limits_clear(cfg);
  memset(cfg, 0, sizeof *cfg);
}

bool cliqfs_config_key_is_secret(const char *key)
{
  if (!key)
    return false;
  for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++)
    if (strcmp(key, secret_keys[i]) == 0)
      return true;
  return false;
}

bool cliqfs_config_is_key(const char *key)
{
  if (!key)
    return false;
  if (cliqfs_config_key_is_secret(key))
    return true;
  for (size_t i = 0; i < sizeof plain_keys / sizeof plain_keys[0]; i++)
    if (strcmp(key, plain_keys[i]) == 0)
      return true;
  return strncmp(key, LIMIT_PREFIX, strlen(LIMIT_PREFIX)) == 0;
}

int cliqfs_dc_urls(const char *dc, const char **api_url,
                   const char **accounts_url)
{
  for (size_t i = 0; dc && i < DC_COUNT; i++) {
    if (strcmp(dc, dc_table[i].dc) == 0) {
      if (api_url)
        *api_url = dc_table[i].api_url;
      if (accounts_url)
        *accounts_url = dc_table[i].accounts_url;
      return 0;
    }
  }
  return -EINVAL;
}

/* ---- Values ------------------------------------------------------------ */

static bool has_control_chars(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static int replace_string(char **slot, const char *value, bool secret)
{
  char *copy = strdup(value);
  if (!copy)
    return -ENOMEM;
  if (secret)
    cliqfs_free_secret(slot);
  else
    free(*slot);
  *slot = copy;
  return 0;
}

static int parse_double(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !isfinite(v) ||
      isspace((unsigned char)*s))
    return -EINVAL;
  *out = v;
  return 0;
}

static int parse_long(const char *s, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || isspace((unsigned char)*s))
    return -EINVAL;
  *out = v;
  return 0;
}

/* "N/SECONDS": N requests (1..100000) per SECONDS (> 0, at most a day). */
static bool limit_value_ok(const char *value)
{
  const char *slash = strchr(value, '/');
  if (!slash || slash == value || slash[1] == '\0')
    return false;
  char count[32];
  size_t n = (size_t)(slash - value);
  if (n >= sizeof count)
    return false;
  memcpy(count, value, n);
  count[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)count[i]))
      return false;
  long requests;
  double seconds;
  if (parse_long(count, &requests) < 0 || requests < 1 || requests > 100000)
    return false;
  if (parse_double(slash + 1, &seconds) < 0 || seconds <= 0 ||
      seconds > 86400)
    return false;
  return true;
}

static int set_limit(struct cliqfs_config *cfg, const char *api,
                     const char *value, char *errbuf, size_t errlen)
{
  if (cliq_api_from_name(api) < 0) {
    set_err(errbuf, errlen,
            "unknown API '%s' in limit.%s (API names are those of "
            "`.cliqfs/status`, e.g. limit.chats.messages = 15/60)",
            api, api);
    return -EINVAL;
  }
  if (!limit_value_ok(value)) {
    set_err(errbuf, errlen,
            "limit.%s = '%s' is not of the form N/SECONDS (e.g. 15/60: 15 "
            "requests per 60 seconds)",
            api, value);
    return -EINVAL;
  }
  for (size_t i = 0; i < cfg->n_limits; i++) {
    if (strcmp(cfg->limits[i].api, api) == 0)
      return replace_string(&cfg->limits[i].value, value, false);
  }
  struct cliqfs_limit_override *grown =
    realloc(cfg->limits, (cfg->n_limits + 1) * sizeof *grown);
  if (!grown)
    return -ENOMEM;
  cfg->limits = grown;
  struct cliqfs_limit_override *slot = &cfg->limits[cfg->n_limits];
  slot->api = strdup(api);
  slot->value = strdup(value);
  if (!slot->api || !slot->value) {
    free(slot->api);
    free(slot->value);
    return -ENOMEM;
  }
  cfg->n_limits++;
  return 0;
}

/* Why cliq_url_check refused a URL, without its "URL refused: " lead. */
static const char *url_refusal(const cliq_error *err)
{
  static const char lead[] = "URL refused: ";
  if (strncmp(err->message, lead, sizeof lead - 1) == 0)
    return err->message + sizeof lead - 1;
  return err->message[0] ? err->message
                         : "cliqfs speaks https, and plain http only to a "
                           "loopback address (127.0.0.1, ::1, localhost)";
}

/* A URL override: no trailing '/', https or loopback http. */
static int set_url(char **slot, const char *key, const char *value,
                   char *errbuf, size_t errlen)
{
  if (strpbrk(value, " \t?#")) {
    set_err(errbuf, errlen,
            "%s = '%s' must be a plain base URL such as https://host or "
            "http://127.0.0.1:PORT (no spaces, query or fragment)",
            key, value);
    return -EINVAL;
  }
  char *url = strdup(value);
  if (!url)
    return -ENOMEM;
  size_t len = strlen(url);
  while (len > 0 && url[len - 1] == '/')
    url[--len] = '\0';
  cliq_error err;
  memset(&err, 0, sizeof err);
  if (cliq_url_check(url, &err) < 0) {
    set_err(errbuf, errlen, "%s = '%s' is refused: %s", key, value,
            url_refusal(&err));
    free(url);
    return -EINVAL;
  }
  free(*slot);
  *slot = url;
  return 0;
}

int cliqfs_config_set(struct cliqfs_config *cfg, const char *key,
                      const char *value, char *errbuf, size_t errlen)
{
  if (!key || !*key) {
    set_err(errbuf, errlen, "a setting has no key (expected key = value)");
    return -EINVAL;
  }
  if (!cliqfs_config_is_key(key)) {
    set_err(errbuf, errlen,
            "unknown key '%s' (known keys: client_id, client_secret, "
            "refresh_token, access_token, dc, api_url, accounts_url, history, "
            "max_wait, time_scale, timeout, uid, gid, umask, log, verbose, "
            "limit.<api>)",
            key);
    return -EINVAL;
  }
  bool secret = cliqfs_config_key_is_secret(key);
  if (!value || !*value) {
    set_err(errbuf, errlen, "%s has no value", key);
    return -EINVAL;
  }
  if (has_control_chars(value)) {
    set_err(errbuf, errlen, "the value of %s contains control characters",
            key);
    return -EINVAL;
  }

  if (strcmp(key, "client_id") == 0)
    return replace_string(&cfg->client_id, value, false);
  if (strcmp(key, "client_secret") == 0)
    return replace_string(&cfg->client_secret, value, secret);
  if (strcmp(key, "refresh_token") == 0)
    return replace_string(&cfg->refresh_token, value, secret);
  if (strcmp(key, "access_token") == 0)
    return replace_string(&cfg->access_token, value, secret);
  if (strcmp(key, "dc") == 0) {
    if (cliqfs_dc_urls(value, NULL, NULL) < 0) {
      set_err(errbuf, errlen,
              "dc = '%s' is not a Zoho data centre (expected one of " DC_LIST
              ")",
              value);
      return -EINVAL;
    }
    return replace_string(&cfg->dc, value, false);
  }
  if (strcmp(key, "api_url") == 0)
    return set_url(&cfg->api_url, key, value, errbuf, errlen);
  if (strcmp(key, "accounts_url") == 0)
    return set_url(&cfg->accounts_url, key, value, errbuf, errlen);
  if (strcmp(key, "history") == 0) {
    long n;
    if (parse_long(value, &n) < 0 || n < 1 || n > 100000) {
      set_err(errbuf, errlen,
              "history = '%s' must be a whole number of messages from 1 to "
              "100000",
              value);
      return -EINVAL;
    }
    cfg->history = (int)n;
    return 0;
  }
  if (strcmp(key, "max_wait") == 0) {
    double s;
    if (parse_double(value, &s) < 0 || s < 0 || s > 86400) {
      set_err(errbuf, errlen,
              "max_wait = '%s' must be a number of seconds from 0 to 86400",
              value);
      return -EINVAL;
    }
    cfg->max_wait_s = s;
    return 0;
  }
  if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
    long n;
    if (parse_long(value, &n) < 0 || n < 0 || n > 0x7ffffffe) {
      set_err(errbuf, errlen,
              "%s = '%s' must be a numeric %s id (see `id -%c`)", key, value,
              key[0] == 'u' ? "user" : "group", key[0] == 'u' ? 'u' : 'g');
      return -EINVAL;
    }
    if (key[0] == 'u')
      cfg->uid = n;
    else
      cfg->gid = n;
    return 0;
  }
  if (strcmp(key, "log") == 0) {
    if (value[0] != '/') {
      set_err(errbuf, errlen,
              "log = '%s' must be an absolute path (the daemon runs in /)",
              value);
      return -EINVAL;
    }
    return replace_string(&cfg->log_path, value, false);
  }
  if (strcmp(key, "verbose") == 0) {
    long n;
    if (parse_long(value, &n) < 0 || n < 0 || n > 3) {
      set_err(errbuf, errlen,
              "verbose = '%s' must be 0 (errors), 1 (and what failed), 2 "
              "(and each request to Cliq) or 3 (with paths and timing)",
              value);
      return -EINVAL;
    }
    cfg->verbose = (int)n;
    return 0;
  }
  if (strcmp(key, "umask") == 0) {
    char *end;
    errno = 0;
    long m = strtol(value, &end, 8);
    if (end == value || *end != '\0' || errno != 0 || m < 0 || m > 0777) {
      set_err(errbuf, errlen,
              "umask = '%s' must be octal permission bits from 000 to 777 "
              "(e.g. 027)",
              value);
      return -EINVAL;
    }
    cfg->umask = (int)m;
    return 0;
  }
  if (strcmp(key, "timeout") == 0) {
    long n;
    if (parse_long(value, &n) < 0 || n < 1 || n > 600) {
      set_err(errbuf, errlen,
              "timeout = '%s' must be a whole number of seconds from 1 to 600",
              value);
      return -EINVAL;
    }
    cfg->timeout_s = (int)n;
    return 0;
  }
  if (strcmp(key, "time_scale") == 0) {
    double f;
    if (parse_double(value, &f) < 0 || f < 1 || f > 1000000) {
      set_err(errbuf, errlen,
              "time_scale = '%s' must be a number from 1 to 1000000 (it "
              "divides every window, lock period and cache lifetime)",
              value);
      return -EINVAL;
    }
    cfg->time_scale = f;
    return 0;
  }
  /* limit.<api> (cliqfs_config_is_key admitted nothing else). */
  const char *api = key + strlen(LIMIT_PREFIX);
  return set_limit(cfg, api, value, errbuf, errlen);
}

/* ---- The file ---------------------------------------------------------- */

static char *trim(char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    s[--len] = '\0';
  return s;
}

/* One line split in place.  Returns 1 for a setting, 0 for a blank or
 * comment line, -EINVAL when there is no '='. */
static int split_line(char *line, char **key, char **value)
{
  char *s = trim(line);
  if (*s == '\0' || *s == '#')
    return 0;
  char *eq = strchr(s, '=');
  if (!eq)
    return -EINVAL;
  *eq = '\0';
  *key = trim(s);
  char *v = trim(eq + 1);
  size_t len = strlen(v);
  /* Matching quotes around a value are dropped, as shells write them. */
  if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
    v[len - 1] = '\0';
    v++;
  }
  *value = v;
  return 1;
}

struct line_list {
  char **lines;
  size_t count;
};

static void line_list_clear(struct line_list *l)
{
  for (size_t i = 0; i < l->count; i++) {
    explicit_bzero(l->lines[i], strlen(l->lines[i]));
    free(l->lines[i]);
  }
  free(l->lines);
  l->lines = NULL;
  l->count = 0;
}

/* Reads every line of an open file (newlines stripped). */
static int read_lines(FILE *f, struct line_list *out)
{
  char *buf = NULL;
  size_t cap = 0;
  ssize_t n;
  size_t total = 0;
  int rc = 0;
  while ((n = getline(&buf, &cap, f)) >= 0) {
    total += (size_t)n;
    if (total > CONFIG_MAX_BYTES) {
      rc = -EFBIG;
      goto out;
    }
    if (n > 0 && buf[n - 1] == '\n')
      buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
      buf[--n] = '\0';
    if (memchr(buf, '\0', (size_t)n)) {
      rc = -EILSEQ;
      goto out;
    }
    char **grown = realloc(out->lines, (out->count + 1) * sizeof *grown);
    if (!grown) {
      rc = -ENOMEM;
      goto out;
    }
    out->lines = grown;
    out->lines[out->count] = strdup(buf);
    if (!out->lines[out->count]) {
      rc = -ENOMEM;
      goto out;
    }
    out->count++;
  }
  if (ferror(f))
    rc = -EIO;
out:
  if (buf) {
    explicit_bzero(buf, cap);
    free(buf);
  }
  return rc;
}

/* The config names the servers that get our secrets: whoever can change it
 * can have them sent elsewhere.  Like ssh, it is trusted only when nobody
 * but its owner (the user or root) can write it or replace it in its folder
 * (a sticky folder such as /tmp protects files from being replaced). */
static int config_file_trusted(const char *path, const struct stat *st,
                               char *errbuf, size_t errlen)
{
  if (st->st_uid != getuid() && st->st_uid != 0) {
    set_err(errbuf, errlen,
            "%s belongs to user id %u, not to you: another user could change "
            "where your credentials are sent; copy it to a file of your own",
            path, (unsigned)st->st_uid);
    return -EPERM;
  }
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    set_err(errbuf, errlen,
            "%s is writable by %s (mode %04o): another user could change "
            "where your credentials are sent; run chmod go-w %s",
            path, (st->st_mode & S_IWOTH) ? "others" : "its group",
            (unsigned)(st->st_mode & 07777), path);
    return -EPERM;
  }
  char *copy = strdup(path);
  if (!copy)
    return -ENOMEM;
  const char *dir = dirname(copy);
  struct stat dst;
  int rc = 0;
  if (stat(dir, &dst) == 0 && (dst.st_mode & (S_IWGRP | S_IWOTH)) &&
      !(dst.st_mode & S_ISVTX)) {
    set_err(errbuf, errlen,
            "%s is in the folder %s, which %s can write (mode %04o): another "
            "user could replace it; run chmod go-w %s",
            path, dir, (dst.st_mode & S_IWOTH) ? "others" : "its group",
            (unsigned)(dst.st_mode & 07777), dir);
    rc = -EPERM;
  } else if (stat(dir, &dst) == 0 && dst.st_uid != getuid() &&
             dst.st_uid != 0 && !(dst.st_mode & S_ISVTX)) {
    set_err(errbuf, errlen,
            "%s is in the folder %s, which belongs to user id %u: that user "
            "could replace it; keep the config in a folder of your own",
            path, dir, (unsigned)dst.st_uid);
    rc = -EPERM;
  }
  free(copy);
  return rc;
}

int cliqfs_config_load_file(struct cliqfs_config *cfg, const char *path,
                            bool must_exist, char *errbuf, size_t errlen)
{
  struct line_list lines = { NULL, 0 };
  int rc = 0;
  FILE *f = fopen(path, "re");
  if (!f) {
    rc = -errno;
    if (rc == -ENOENT && !must_exist)
      return 0;
    if (rc == -ENOENT)
      set_err(errbuf, errlen, "%s: the config file does not exist", path);
    else
      set_err(errbuf, errlen, "%s: cannot open the config file: %s", path,
              strerror(-rc));
    return rc;
  }
  struct stat st;
  if (fstat(fileno(f), &st) < 0) {
    rc = -errno;
    set_err(errbuf, errlen, "%s: cannot stat the config file: %s", path,
            strerror(-rc));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    set_err(errbuf, errlen, "%s: the config file is not a regular file",
            path);
    goto out;
  }
  rc = config_file_trusted(path, &st, errbuf, errlen);
  if (rc < 0)
    goto out;
  rc = read_lines(f, &lines);
  if (rc == -EFBIG) {
    set_err(errbuf, errlen, "%s: the config file is larger than %d bytes",
            path, CONFIG_MAX_BYTES);
    goto out;
  }
  if (rc == -EILSEQ) {
    set_err(errbuf, errlen, "%s: the config file contains NUL bytes", path);
    goto out;
  }
  if (rc < 0) {
    set_err(errbuf, errlen, "%s: cannot read the config file: %s", path,
            strerror(-rc));
    goto out;
  }

  /* First pass: syntax, and whether a secret is there at all, so that a file
   * others can read is refused before anything from it is used. */
  const char *secret_key = NULL;
  size_t secret_line = 0;
  for (size_t i = 0; i < lines.count; i++) {
    char *copy = strdup(lines.lines[i]);
    if (!copy) {
      rc = -ENOMEM;
      goto out;
    }
    char *key = NULL, *value = NULL;
    int kind = split_line(copy, &key, &value);
    if (kind < 0) {
      set_err(errbuf, errlen,
              "%s:%zu: expected 'key = value' (or a # comment)", path, i + 1);
      explicit_bzero(copy, strlen(copy));
      free(copy);
      rc = -EINVAL;
      goto out;
    }
    if (kind > 0 && !secret_key && cliqfs_config_key_is_secret(key)) {
      for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++)
        if (strcmp(key, secret_keys[k]) == 0)
          secret_key = secret_keys[k];
      secret_line = i + 1;
    }
    explicit_bzero(copy, strlen(copy));
    free(copy);
  }
  if (secret_key && (st.st_mode & (S_IRGRP | S_IROTH))) {
    set_err(errbuf, errlen,
            "%s holds a secret (%s, line %zu) but is readable by %s "
            "(mode %04o); run chmod 600 %s",
            path, secret_key, secret_line,
            (st.st_mode & S_IROTH) ? "others" : "its group",
            (unsigned)(st.st_mode & 07777), path);
    rc = -EACCES;
    goto out;
  }

  for (size_t i = 0; i < lines.count; i++) {
    char *key = NULL, *value = NULL;
    if (split_line(lines.lines[i], &key, &value) <= 0)
      continue;
    char msg[512];
    msg[0] = '\0';
    rc = cliqfs_config_set(cfg, key, value, msg, sizeof msg);
    if (rc < 0) {
      set_err(errbuf, errlen, "%s:%zu: %s", path, i + 1,
              msg[0] ? msg : strerror(-rc));
      goto out;
    }
  }
  rc = replace_string(&cfg->config_path, path, false);
out:
  line_list_clear(&lines);
  fclose(f);
  return rc;
}

/* ---- Finalize ---------------------------------------------------------- */

static char *join_path(const char *a, const char *b, const char *c)
{
  char *out = NULL;
  if (asprintf(&out, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "") < 0)
    return NULL;
  return out;
}

static const char *home_dir(void)
{
  const char *home = getenv("HOME");
  if (home && home[0] == '/')
    return home;
  struct passwd *pw = getpwuid(getuid());
  return (pw && pw->pw_dir && pw->pw_dir[0] == '/') ? pw->pw_dir : NULL;
}

/* $VAR when it is an absolute path (the XDG rule), else ~/fallback. */
static char *xdg_dir(const char *var, const char *fallback)
{
  const char *v = getenv(var);
  if (v && v[0] == '/')
    return strdup(v);
  const char *home = home_dir();
  if (!home)
    return NULL;
  return join_path(home, fallback, NULL);
}

char *cliqfs_state_base(void)
{
  char *base = xdg_dir("XDG_STATE_HOME", ".local/state");
  if (!base)
    return NULL;
  char *path = join_path(base, "cliqfs", NULL);
  free(base);
  return path;
}

char *cliqfs_default_config_path(void)
{
  char *base = xdg_dir("XDG_CONFIG_HOME", ".config");
  if (!base)
    return NULL;
  char *path = join_path(base, "cliqfs", "config");
  free(base);
  return path;
}

/* The folder name under $XDG_STATE_HOME/cliqfs/ and $XDG_CACHE_HOME/cliqfs/
 * (statefile_account_key: the API host, a dash, 12 hex digits of SHA-256):
 * the folder holds the rate ledger, so it must name who Cliq counts.  The
 * client id names the account for a self client and survives a new
 * `cliqfs auth`, which keeps the ledger; a static token stands for itself.
 * The prefixes keep a client id and a token of the same text apart.  Only the
 * truncated digest leaves this function; the copy holding the token is wiped. */
static char *account_key(const struct cliqfs_config *cfg)
{
  char *identity = NULL;
  int n = cfg->access_token
              ? asprintf(&identity, "static:%s", cfg->access_token)
              : asprintf(&identity, "client:%s",
                         cfg->client_id ? cfg->client_id : "");
  if (n < 0)
    return NULL;
  char *key = statefile_account_key(cfg->api_url, identity);
  explicit_bzero(identity, (size_t)n);
  free(identity);
  return key;
}

static int check_credentials(const struct cliqfs_config *cfg, char *errbuf,
                             size_t errlen)
{
  if (cfg->access_token)
    return 0;
  const char *where = cfg->config_path ? cfg->config_path : "the config file";
  if (!cfg->client_id && !cfg->client_secret && !cfg->refresh_token) {
    char *def = cfg->config_path ? NULL : cliqfs_default_config_path();
    char where_text[PATH_MAX + 64];
    if (cfg->config_path)
      snprintf(where_text, sizeof where_text, "%s sets no refresh_token",
               cfg->config_path);
    else
      snprintf(where_text, sizeof where_text, "there is no config file %s",
               def ? def : "");
    free(def);
    set_err(errbuf, errlen,
            "no Cliq credentials: %s. Run `cliqfs auth --dc DC --client-id "
            "ID --client-secret SECRET --code CODE` once to store them (see "
            "cliqfs(1)), or try `cliqfs --demo MOUNTPOINT`",
            where_text);
    return -EINVAL;
  }
  char missing[64] = "";
  size_t n = 0;
  const char *names[3] = { "client_id", "client_secret", "refresh_token" };
  const bool present[3] = { cfg->client_id != NULL,
                            cfg->client_secret != NULL,
                            cfg->refresh_token != NULL };
  for (int i = 0; i < 3; i++) {
    if (present[i])
      continue;
    if (n > 0)
      strcat(missing, " and ");
    strcat(missing, names[i]);
    n++;
  }
  if (n == 0)
    return 0;
  set_err(errbuf, errlen,
          "incomplete Cliq credentials: %s %s missing (in %s and the -o "
          "options); a mount needs client_id, client_secret and "
          "refresh_token, or access_token",
          missing, n > 1 ? "are" : "is", where);
  return -EINVAL;
}

int cliqfs_config_finalize(struct cliqfs_config *cfg, char *errbuf,
                           size_t errlen)
{
  const char *dc_api, *dc_accounts;
  if (cliqfs_dc_urls(cfg->dc ? cfg->dc : "us", &dc_api, &dc_accounts) < 0) {
    set_err(errbuf, errlen, "dc = '%s' is not a Zoho data centre", cfg->dc);
    return -EINVAL;
  }
  if (!cfg->api_url && !(cfg->api_url = strdup(dc_api)))
    return -ENOMEM;
  if (!cfg->accounts_url && !(cfg->accounts_url = strdup(dc_accounts)))
    return -ENOMEM;
  const char *urls[2][2] = { { "api_url", cfg->api_url },
                             { "accounts_url", cfg->accounts_url } };
  for (int i = 0; i < 2; i++) {
    cliq_error err;
    memset(&err, 0, sizeof err);
    if (cliq_url_check(urls[i][1], &err) < 0) {
      set_err(errbuf, errlen, "%s = '%s' is refused: %s", urls[i][0],
              urls[i][1], url_refusal(&err));
      return -EINVAL;
    }
  }
  int rc = check_credentials(cfg, errbuf, errlen);
  if (rc < 0)
    return rc;

  if (cfg->state_dir && cfg->cache_dir)
    return 0;
  char *key = account_key(cfg);
  if (!key)
    return -ENOMEM;
  rc = 0;
  const char *dirs[2][3] = { { "XDG_STATE_HOME", ".local/state", "state" },
                             { "XDG_CACHE_HOME", ".cache", "cache" } };
  char **slots[2] = { &cfg->state_dir, &cfg->cache_dir };
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (*slots[i])
      continue;
    char *base = xdg_dir(dirs[i][0], dirs[i][1]);
    if (!base) {
      set_err(errbuf, errlen,
              "cannot place the %s folder: neither $%s nor $HOME is set to "
              "an absolute path",
              dirs[i][2], dirs[i][0]);
      rc = -EINVAL;
      break;
    }
    *slots[i] = join_path(base, "cliqfs", key);
    free(base);
    if (!*slots[i])
      rc = -ENOMEM;
  }
  free(key);
  return rc;
}

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
        set_err(errbuf, errlen, "cannot create the folder %s: %s", copy,
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
    set_err(errbuf, errlen, "%s is not a folder", copy);
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
      set_err(errbuf, errlen, "the value of %s contains a line break",
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
      set_err(errbuf, errlen, "cannot read the existing config %s: %s", path,
              strerror(-rc));
      goto out;
    }
  } else if (errno != ENOENT) {
    rc = -errno;
    set_err(errbuf, errlen, "cannot read the existing config %s: %s", path,
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
    set_err(errbuf, errlen, "cannot write %s: %s", path, strerror(-rc));
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
