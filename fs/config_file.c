/* fs/config_file.c: reading the config file (safe to read: ours, not writable
 * by others) and finishing the settings (data centre URLs, account folders). */
#include "fs/config_i.h"

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
int split_line(char *line, char **key, char **value)
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

void line_list_clear(struct line_list *l)
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
int read_lines(FILE *f, struct line_list *out)
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
    cliq_fail_text(errbuf, errlen,
            "%s belongs to user id %u, not to you: another user could change "
            "where your credentials are sent; copy it to a file of your own",
            path, (unsigned)st->st_uid);
    return -EPERM;
  }
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    cliq_fail_text(errbuf, errlen,
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
    cliq_fail_text(errbuf, errlen,
            "%s is in the folder %s, which %s can write (mode %04o): another "
            "user could replace it; run chmod go-w %s",
            path, dir, (dst.st_mode & S_IWOTH) ? "others" : "its group",
            (unsigned)(dst.st_mode & 07777), dir);
    rc = -EPERM;
  } else if (stat(dir, &dst) == 0 && dst.st_uid != getuid() &&
             dst.st_uid != 0 && !(dst.st_mode & S_ISVTX)) {
    cliq_fail_text(errbuf, errlen,
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
      cliq_fail_text(errbuf, errlen, "%s: the config file does not exist", path);
    else
      cliq_fail_text(errbuf, errlen, "%s: cannot open the config file: %s", path,
              strerror(-rc));
    return rc;
  }
  struct stat st;
  if (fstat(fileno(f), &st) < 0) {
    rc = -errno;
    cliq_fail_text(errbuf, errlen, "%s: cannot stat the config file: %s", path,
            strerror(-rc));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    cliq_fail_text(errbuf, errlen, "%s: the config file is not a regular file",
            path);
    goto out;
  }
  rc = config_file_trusted(path, &st, errbuf, errlen);
  if (rc < 0)
    goto out;
  rc = read_lines(f, &lines);
  if (rc == -EFBIG) {
    cliq_fail_text(errbuf, errlen, "%s: the config file is larger than %d bytes",
            path, CONFIG_MAX_BYTES);
    goto out;
  }
  if (rc == -EILSEQ) {
    cliq_fail_text(errbuf, errlen, "%s: the config file contains NUL bytes", path);
    goto out;
  }
  if (rc < 0) {
    cliq_fail_text(errbuf, errlen, "%s: cannot read the config file: %s", path,
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
      cliq_fail_text(errbuf, errlen,
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
    cliq_fail_text(errbuf, errlen,
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
      cliq_fail_text(errbuf, errlen, "%s:%zu: %s", path, i + 1,
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
    cliq_fail_text(errbuf, errlen,
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
  cliq_fail_text(errbuf, errlen,
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
    cliq_fail_text(errbuf, errlen, "dc = '%s' is not a Zoho data centre", cfg->dc);
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
      cliq_fail_text(errbuf, errlen, "%s = '%s' is refused: %s", urls[i][0],
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
      cliq_fail_text(errbuf, errlen,
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
