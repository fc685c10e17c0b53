/* fs/config.c: the settings: their defaults, the keys and the check of each
 * value. */
#include "fs/config_i.h"

/* The hosts of each data centre (tests/emulator/REFERENCE.md). */
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

static const char *const plain_keys[] = {
  "client_id", "dc", "api_url", "accounts_url", "history", "sync", "sync_share",
  "max_wait",
  "time_scale", "timeout", "uid", "gid", "umask", "log", "verbose",
};

const char *const secret_keys[SECRET_KEYS] = {
  "client_secret", "refresh_token", "access_token",
};

void cliqfs_config_init(struct cliqfs_config *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->dc = strdup("us");
  cfg->history = 100;
  cfg->sync = STORE_SYNC_ALL;
  cfg->sync_share = STORE_SYNC_SHARE;
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

int replace_string(char **slot, const char *value, bool secret)
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

/* key = a whole number from lo to hi into *out, or -EINVAL with "KEY = 'V'
 * must be WHAT from LO to HI". */
static int set_whole(const char *key, const char *value, long lo, long hi,
                     const char *what, int *out, char *errbuf, size_t errlen)
{
  long n;
  if (parse_long(value, &n) < 0 || n < lo || n > hi) {
    cliq_fail_text(errbuf, errlen, "%s = '%s' must be %s from %ld to %ld", key,
                   value, what, lo, hi);
    return -EINVAL;
  }
  *out = (int)n;
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
    cliq_fail_text(errbuf, errlen,
            "unknown API '%s' in limit.%s (API names are those of "
            "`.cliqfs/status`, e.g. limit.chats.messages = 15/60)",
            api, api);
    return -EINVAL;
  }
  if (!limit_value_ok(value)) {
    cliq_fail_text(errbuf, errlen,
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
const char *url_refusal(const cliq_error *err)
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
    cliq_fail_text(errbuf, errlen,
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
    cliq_fail_text(errbuf, errlen, "%s = '%s' is refused: %s", key, value,
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
    cliq_fail_text(errbuf, errlen, "a setting has no key (expected key = value)");
    return -EINVAL;
  }
  if (!cliqfs_config_is_key(key)) {
    cliq_fail_text(errbuf, errlen,
            "unknown key '%s' (known keys: client_id, client_secret, "
            "refresh_token, access_token, dc, api_url, accounts_url, history, "
            "sync, sync_share, max_wait, time_scale, timeout, uid, gid, umask, log, verbose, "
            "limit.<api>)",
            key);
    return -EINVAL;
  }
  bool secret = cliqfs_config_key_is_secret(key);
  if (!value || !*value) {
    cliq_fail_text(errbuf, errlen, "%s has no value", key);
    return -EINVAL;
  }
  if (has_control_chars(value)) {
    cliq_fail_text(errbuf, errlen, "the value of %s contains control characters",
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
      cliq_fail_text(errbuf, errlen,
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
  if (strcmp(key, "history") == 0)
    return set_whole(key, value, 1, 100000, "a whole number of messages",
                     &cfg->history, errbuf, errlen);
  if (strcmp(key, "sync") == 0) {
    int mode = store_sync_parse(value);
    if (mode < 0) {
      cliq_fail_text(errbuf, errlen,
                     "sync = '%s' must be all, lists or off", value);
      return -EINVAL;
    }
    cfg->sync = mode;
    return 0;
  }
  if (strcmp(key, "sync_share") == 0)
    return set_whole(key, value, 1, 100, "a whole percent", &cfg->sync_share,
                     errbuf, errlen);
  if (strcmp(key, "max_wait") == 0) {
    double s;
    if (parse_double(value, &s) < 0 || s < 0 || s > 86400) {
      cliq_fail_text(errbuf, errlen,
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
      cliq_fail_text(errbuf, errlen,
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
      cliq_fail_text(errbuf, errlen,
              "log = '%s' must be an absolute path (the daemon runs in /)",
              value);
      return -EINVAL;
    }
    return replace_string(&cfg->log_path, value, false);
  }
  if (strcmp(key, "verbose") == 0) {
    long n;
    if (parse_long(value, &n) < 0 || n < 0 || n > 3) {
      cliq_fail_text(errbuf, errlen,
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
      cliq_fail_text(errbuf, errlen,
              "umask = '%s' must be octal permission bits from 000 to 777 "
              "(e.g. 027)",
              value);
      return -EINVAL;
    }
    cfg->umask = (int)m;
    return 0;
  }
  if (strcmp(key, "timeout") == 0)
    return set_whole(key, value, 1, 600, "a whole number of seconds",
                     &cfg->timeout_s, errbuf, errlen);
  if (strcmp(key, "time_scale") == 0) {
    double f;
    if (parse_double(value, &f) < 0 || f < 1 || f > 1000000) {
      cliq_fail_text(errbuf, errlen,
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
