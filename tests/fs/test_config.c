/* Unit tests for fs/config: the config file, -o keys, data centres, URL
 * policy, permissions of files holding secrets, state/cache folders and the
 * config writer used by `cliqfs auth`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/statefile.h"
#include "cache/store.h"
#include "fs/config.h"

#define SECRET "1000.s3cr3t-token-value-XYZ"

struct fixture {
  char dir[PATH_MAX];
  struct cliqfs_config cfg;
  char err[512];
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int setup(void **state)
{
  struct fixture *fx = calloc(1, sizeof *fx);
  if (!fx)
    return -1;
  const char *tmp = getenv("TMPDIR");
  snprintf(fx->dir, sizeof fx->dir, "%s/cliqfs-config-test-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(fx->dir)) {
    free(fx);
    return -1;
  }
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/state", fx->dir);
  setenv("XDG_STATE_HOME", path, 1);
  snprintf(path, sizeof path, "%s/cache", fx->dir);
  setenv("XDG_CACHE_HOME", path, 1);
  snprintf(path, sizeof path, "%s/config", fx->dir);
  setenv("XDG_CONFIG_HOME", path, 1);
  cliqfs_config_init(&fx->cfg);
  *state = fx;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *fx = *state;
  cliqfs_config_clear(&fx->cfg);
  nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(fx);
  return 0;
}

/* Writes a file in the fixture's folder with the given mode; returns its
 * path (static buffer of the fixture's size). */
static const char *write_file(struct fixture *fx, const char *name,
                              mode_t mode, const char *text)
{
  static char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", fx->dir, name);
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

static int set(struct fixture *fx, const char *key, const char *value)
{
  fx->err[0] = '\0';
  return cliqfs_config_set(&fx->cfg, key, value, fx->err, sizeof fx->err);
}

static int load(struct fixture *fx, const char *path, bool must_exist)
{
  fx->err[0] = '\0';
  return cliqfs_config_load_file(&fx->cfg, path, must_exist, fx->err,
                                 sizeof fx->err);
}

static int finalize(struct fixture *fx)
{
  fx->err[0] = '\0';
  return cliqfs_config_finalize(&fx->cfg, fx->err, sizeof fx->err);
}

static void assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static void assert_not_contains(const char *haystack, const char *needle)
{
  if (strstr(haystack, needle))
    fail_msg("did not expect \"%s\" in \"%s\"", needle, haystack);
}

/* ---- Keys -------------------------------------------------------------- */

static void test_defaults(void **state)
{
  struct fixture *fx = *state;
  assert_string_equal(fx->cfg.dc, "us");
  assert_int_equal(fx->cfg.history, 100);
  assert_true(fx->cfg.max_wait_s == 60);
  assert_true(fx->cfg.time_scale == 1);
  assert_int_equal(fx->cfg.timeout_s, 30);
  assert_int_equal(fx->cfg.uid, -1);
  assert_int_equal(fx->cfg.gid, -1);
  assert_int_equal(fx->cfg.umask, -1);
  assert_null(fx->cfg.api_url);
  assert_null(fx->cfg.refresh_token);
  assert_int_equal(fx->cfg.n_limits, 0);
}

static void test_every_key(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "client_id", "1000.CLIENT"), 0);
  assert_int_equal(set(fx, "client_secret", "sec"), 0);
  assert_int_equal(set(fx, "refresh_token", "1000.refresh"), 0);
  assert_int_equal(set(fx, "access_token", "1000.access"), 0);
  assert_int_equal(set(fx, "dc", "eu"), 0);
  assert_int_equal(set(fx, "api_url", "https://cliq.example.org/base/"), 0);
  assert_int_equal(set(fx, "accounts_url", "https://accounts.example.org"),
                   0);
  assert_int_equal(set(fx, "history", "250"), 0);
  assert_int_equal(fx->cfg.sync, STORE_SYNC_ALL);   /* the default */
  assert_int_equal(set(fx, "sync", "off"), 0);
  assert_int_equal(fx->cfg.sync, STORE_SYNC_OFF);
  assert_int_equal(set(fx, "sync", "lists"), 0);
  assert_int_equal(fx->cfg.sync, STORE_SYNC_LISTS);
  assert_int_equal(fx->cfg.sync_share, 50);          /* the default */
  assert_int_equal(set(fx, "sync_share", "25"), 0);
  assert_int_equal(fx->cfg.sync_share, 25);
  assert_int_equal(set(fx, "max_wait", "2.5"), 0);
  assert_int_equal(set(fx, "time_scale", "60"), 0);
  assert_int_equal(set(fx, "timeout", "5"), 0);
  assert_int_equal(set(fx, "uid", "1000"), 0);
  assert_int_equal(set(fx, "gid", "0"), 0);
  assert_int_equal(set(fx, "umask", "027"), 0);
  assert_int_equal(set(fx, "limit.chats.messages", "10/60"), 0);

  assert_string_equal(fx->cfg.client_id, "1000.CLIENT");
  assert_string_equal(fx->cfg.client_secret, "sec");
  assert_string_equal(fx->cfg.refresh_token, "1000.refresh");
  assert_string_equal(fx->cfg.access_token, "1000.access");
  assert_string_equal(fx->cfg.dc, "eu");
  /* The trailing '/' goes so that "/api/v2/..." can be appended. */
  assert_string_equal(fx->cfg.api_url, "https://cliq.example.org/base");
  assert_string_equal(fx->cfg.accounts_url, "https://accounts.example.org");
  assert_int_equal(fx->cfg.history, 250);
  assert_true(fx->cfg.max_wait_s == 2.5);
  assert_true(fx->cfg.time_scale == 60);
  assert_int_equal(fx->cfg.timeout_s, 5);
  assert_int_equal(fx->cfg.uid, 1000);
  assert_int_equal(fx->cfg.gid, 0);
  assert_int_equal(fx->cfg.umask, 027);
  assert_int_equal(fx->cfg.n_limits, 1);
  assert_string_equal(fx->cfg.limits[0].api, "chats.messages");
  assert_string_equal(fx->cfg.limits[0].value, "10/60");

  /* A later value replaces an earlier one. */
  assert_int_equal(set(fx, "history", "5"), 0);
  assert_int_equal(fx->cfg.history, 5);
  assert_int_equal(set(fx, "limit.chats.messages", "3/30"), 0);
  assert_int_equal(fx->cfg.n_limits, 1);
  assert_string_equal(fx->cfg.limits[0].value, "3/30");
}

static void test_key_classes(void **state)
{
  (void)state;
  assert_true(cliqfs_config_is_key("client_id"));
  assert_true(cliqfs_config_is_key("max_wait"));
  assert_true(cliqfs_config_is_key("timeout"));
  assert_true(cliqfs_config_is_key("limit.threads.list"));
  assert_false(cliqfs_config_is_key("allow_other"));
  assert_false(cliqfs_config_is_key("config"));
  assert_false(cliqfs_config_is_key("ro"));
  assert_true(cliqfs_config_key_is_secret("client_secret"));
  assert_true(cliqfs_config_key_is_secret("refresh_token"));
  assert_true(cliqfs_config_key_is_secret("access_token"));
  assert_false(cliqfs_config_key_is_secret("client_id"));
  assert_false(cliqfs_config_key_is_secret("dc"));
}

static void test_every_dc(void **state)
{
  struct fixture *fx = *state;
  static const char *const rows[][3] = {
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
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    struct cliqfs_config cfg;
    cliqfs_config_init(&cfg);
    assert_int_equal(cliqfs_config_set(&cfg, "dc", rows[i][0], fx->err,
                                       sizeof fx->err), 0);
    assert_int_equal(cliqfs_config_set(&cfg, "access_token", "t", fx->err,
                                       sizeof fx->err), 0);
    assert_int_equal(cliqfs_config_finalize(&cfg, fx->err, sizeof fx->err),
                     0);
    assert_string_equal(cfg.api_url, rows[i][1]);
    assert_string_equal(cfg.accounts_url, rows[i][2]);
    const char *api, *accounts;
    assert_int_equal(cliqfs_dc_urls(rows[i][0], &api, &accounts), 0);
    assert_string_equal(api, rows[i][1]);
    assert_string_equal(accounts, rows[i][2]);
    cliqfs_config_clear(&cfg);
  }
  assert_int_equal(cliqfs_dc_urls("xx", NULL, NULL), -EINVAL);
}

static void test_url_override_replaces_only_its_base(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "dc", "jp"), 0);
  assert_int_equal(set(fx, "api_url", "http://127.0.0.1:8080"), 0);
  assert_int_equal(set(fx, "access_token", "t"), 0);
  assert_int_equal(finalize(fx), 0);
  assert_string_equal(fx->cfg.api_url, "http://127.0.0.1:8080");
  assert_string_equal(fx->cfg.accounts_url, "https://accounts.zoho.jp");
}

static void test_bad_values(void **state)
{
  struct fixture *fx = *state;
  static const char *const bad[][2] = {
    { "dc", "xx" },          { "dc", "US " },        { "dc", "" },
    { "history", "abc" },    { "history", "0" },     { "history", "-5" },
    { "history", "12x" },    { "history", "1e3" },   { "max_wait", "-1" },
    { "max_wait", "soon" },  { "max_wait", "inf" },  { "time_scale", "0" },
    { "time_scale", "0.5" }, { "time_scale", "x" },  { "time_scale", "nan" },
    { "timeout", "0" },      { "timeout", "601" },   { "timeout", "2.5" },
    { "uid", "-1" },         { "uid", "root" },      { "gid", "1x" },
    { "umask", "8" },        { "umask", "1000" },    { "umask", "-1" },
    { "api_url", "ftp://cliq.zoho.com" },             { "api_url", "cliq.zoho.com" },
    { "accounts_url", "https://" },                   { "client_id", "" },
    { "sync", "on" },        { "sync", "ALL" },      { "sync", "all " },
    { "sync_share", "0" },   { "sync_share", "101" }, { "sync_share", "50%" },
    { "sync_share", "12.5" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (set(fx, bad[i][0], bad[i][1]) != -EINVAL)
      fail_msg("%s = '%s' was accepted", bad[i][0], bad[i][1]);
    /* The sentence names the key. */
    assert_contains(fx->err, bad[i][0]);
  }
  assert_string_equal(fx->cfg.dc, "us");
  assert_int_equal(fx->cfg.history, 100);
}

static void test_unknown_key(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "colour", "blue"), -EINVAL);
  assert_contains(fx->err, "unknown key 'colour'");
  assert_int_equal(set(fx, "config", "/x"), -EINVAL);
  assert_int_equal(set(fx, "", "x"), -EINVAL);
}

static void test_secret_never_echoed(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "refresh_token", SECRET "\x01"), -EINVAL);
  assert_contains(fx->err, "refresh_token");
  assert_not_contains(fx->err, SECRET);
  assert_int_equal(set(fx, "client_secret", ""), -EINVAL);
  assert_contains(fx->err, "client_secret");
}

static void test_loopback_http_allowed(void **state)
{
  struct fixture *fx = *state;
  static const char *const ok[] = {
    "http://127.0.0.1:41873", "http://127.0.0.1", "http://localhost:8080",
    "http://[::1]:9000",      "http://127.1.2.3:1", "https://cliq.zoho.eu",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    if (set(fx, "api_url", ok[i]) != 0)
      fail_msg("api_url %s refused: %s", ok[i], fx->err);
    if (set(fx, "accounts_url", ok[i]) != 0)
      fail_msg("accounts_url %s refused: %s", ok[i], fx->err);
  }
}

static void test_non_loopback_http_refused(void **state)
{
  struct fixture *fx = *state;
  static const char *const refused[] = {
    "http://cliq.zoho.com", "http://10.0.0.1:80", "http://192.168.1.2",
    "http://example.com:8080", "http://128.0.0.1", "http://user@127.0.0.1",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    if (set(fx, "api_url", refused[i]) != -EINVAL)
      fail_msg("api_url %s accepted", refused[i]);
    assert_contains(fx->err, "api_url");
    assert_contains(fx->err, "refused");
    if (set(fx, "accounts_url", refused[i]) != -EINVAL)
      fail_msg("accounts_url %s accepted", refused[i]);
  }
  assert_null(fx->cfg.api_url);
  assert_null(fx->cfg.accounts_url);
}

static void test_limits(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "limit.chats.messages", "15/60"), 0);
  assert_int_equal(set(fx, "limit.threads.followers.remove", "1/0.5"), 0);
  assert_int_equal(set(fx, "limit.oauth.token", "10/600"), 0);
  assert_int_equal(fx->cfg.n_limits, 3);
  assert_string_equal(fx->cfg.limits[1].api, "threads.followers.remove");
  assert_string_equal(fx->cfg.limits[1].value, "1/0.5");

  assert_int_equal(set(fx, "limit.chats.nope", "1/60"), -EINVAL);
  assert_contains(fx->err, "chats.nope");
  assert_int_equal(set(fx, "limit.", "1/60"), -EINVAL);
  static const char *const bad[] = { "15", "15/", "/60", "0/60", "a/60",
                                     "15/-1", "15/0", "15/60x", "-3/60",
                                     "15/60/2", "1.5/60" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (set(fx, "limit.threads.list", bad[i]) != -EINVAL)
      fail_msg("limit.threads.list = %s accepted", bad[i]);
    assert_contains(fx->err, "N/SECONDS");
  }
  assert_int_equal(fx->cfg.n_limits, 3);
}

/* ---- The file ---------------------------------------------------------- */

static void test_file_syntax(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "good", 0600,
                                "# a comment\n"
                                "\n"
                                "   # indented comment\n"
                                "client_id = 1000.ABC\n"
                                "client_secret=\"quoted secret\"\r\n"
                                "  refresh_token   =   1000.r  \n"
                                "dc = in\n"
                                "history = 20\n"
                                "max_wait = 0\n"
                                "time_scale = 30\n"
                                "limit.threads.list = 5/60\n"
                                "api_url = 'http://127.0.0.1:9'\n"
                                "accounts_url = http://localhost:9/\n");
  assert_int_equal(load(fx, path, true), 0);
  assert_string_equal(fx->cfg.config_path, path);
  assert_string_equal(fx->cfg.client_id, "1000.ABC");
  assert_string_equal(fx->cfg.client_secret, "quoted secret");
  assert_string_equal(fx->cfg.refresh_token, "1000.r");
  assert_string_equal(fx->cfg.dc, "in");
  assert_int_equal(fx->cfg.history, 20);
  assert_true(fx->cfg.max_wait_s == 0);
  assert_true(fx->cfg.time_scale == 30);
  assert_int_equal(fx->cfg.n_limits, 1);
  assert_string_equal(fx->cfg.api_url, "http://127.0.0.1:9");
  assert_string_equal(fx->cfg.accounts_url, "http://localhost:9");
  assert_int_equal(finalize(fx), 0);
}

static void test_file_line_in_messages(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "unknown", 0600,
                                "# comment\n"
                                "dc = eu\n"
                                "\n"
                                "colour = blue\n");
  char expect[PATH_MAX + 80];
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:4: unknown key 'colour'", path);
  assert_contains(fx->err, expect);

  path = write_file(fx, "noeq", 0600, "dc = eu\nhistory 20\n");
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:2: expected 'key = value'", path);
  assert_contains(fx->err, expect);

  path = write_file(fx, "baddc", 0600, "\n\ndc = mars\n");
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:3: dc = 'mars'", path);
  assert_contains(fx->err, expect);

  path = write_file(fx, "badurl", 0600, "api_url = http://example.com\n");
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:1: api_url", path);
  assert_contains(fx->err, expect);

  path = write_file(fx, "badlimit", 0600,
                    "# limits\nlimit.threads.list = 20/60\n"
                    "limit.threads.list = twenty\n");
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:3: limit.threads.list", path);
  assert_contains(fx->err, expect);

  path = write_file(fx, "badsecret", 0600,
                    "client_id = x\nclient_secret = \n");
  assert_int_equal(load(fx, path, true), -EINVAL);
  snprintf(expect, sizeof expect, "%s:2: client_secret has no value", path);
  assert_contains(fx->err, expect);
}

static void test_missing_file(void **state)
{
  struct fixture *fx = *state;
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/does-not-exist", fx->dir);
  assert_int_equal(load(fx, path, false), 0);
  assert_null(fx->cfg.config_path);
  assert_int_equal(load(fx, path, true), -ENOENT);
  assert_contains(fx->err, path);
  assert_contains(fx->err, "does not exist");
  /* A folder is not a config file. */
  assert_int_equal(load(fx, fx->dir, true), -EINVAL);
  assert_contains(fx->err, "not a regular file");
}

static void test_world_readable_secret_refused(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "open", 0644,
                                "client_id = 1000.ID\n"
                                "refresh_token = " SECRET "\n");
  assert_int_equal(load(fx, path, true), -EACCES);
  assert_contains(fx->err, path);
  assert_contains(fx->err, "readable by others");
  assert_contains(fx->err, "chmod 600");
  assert_not_contains(fx->err, SECRET);
  /* Nothing of a refused file is used. */
  assert_null(fx->cfg.client_id);
  assert_null(fx->cfg.refresh_token);
}

static void test_group_readable_secret_refused(void **state)
{
  struct fixture *fx = *state;
  static const char *const secrets[] = { "client_secret", "refresh_token",
                                         "access_token" };
  for (size_t i = 0; i < 3; i++) {
    char text[128];
    snprintf(text, sizeof text, "dc = eu\n%s = %s\n", secrets[i], SECRET);
    const char *path = write_file(fx, "group", 0640, text);
    assert_int_equal(load(fx, path, true), -EACCES);
    assert_contains(fx->err, "readable by its group");
    assert_contains(fx->err, secrets[i]);
    assert_contains(fx->err, "chmod 600");
    assert_not_contains(fx->err, SECRET);
  }
  assert_string_equal(fx->cfg.dc, "us");
}

/* Whoever can change the config can send the credentials elsewhere. */
static void test_writable_by_others_refused(void **state)
{
  struct fixture *fx = *state;
  static const mode_t modes[] = { 0620, 0602, 0660, 0666 };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    const char *path = write_file(fx, "writable", modes[i],
                                  "accounts_url = http://127.0.0.1:9\n");
    assert_int_equal(load(fx, path, true), -EPERM);
    assert_contains(fx->err, "chmod go-w");
    assert_contains(fx->err, path);
    assert_null(fx->cfg.accounts_url);
  }
  /* A folder others can write (not sticky): the file could be replaced. */
  char sub[PATH_MAX + 16];
  snprintf(sub, sizeof sub, "%s/shared", fx->dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(chmod(sub, 0777), 0);
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/config", sub);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "dc = eu\n", 8), 8);
  close(fd);
  assert_int_equal(load(fx, path, true), -EPERM);
  assert_contains(fx->err, "which others can write");
  assert_contains(fx->err, "chmod go-w");
  /* Sticky, as /tmp: files cannot be replaced by others. */
  assert_int_equal(chmod(sub, 01777), 0);
  assert_int_equal(load(fx, path, true), 0);
  assert_string_equal(fx->cfg.dc, "eu");
  unlink(path);
  rmdir(sub);
}

static void test_private_secret_accepted(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "private", 0600,
                                "client_id = 1000.ID\n"
                                "client_secret = s\n"
                                "refresh_token = " SECRET "\n");
  assert_int_equal(load(fx, path, true), 0);
  assert_string_equal(fx->cfg.refresh_token, SECRET);
  path = write_file(fx, "readonly", 0400, "access_token = " SECRET "\n");
  assert_int_equal(load(fx, path, true), 0);
}

static void test_public_file_without_secret_accepted(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "public", 0644,
                                "# no secrets here\n"
                                "client_id = 1000.ID\n"
                                "dc = uk\n"
                                "history = 7\n");
  assert_int_equal(load(fx, path, true), 0);
  assert_string_equal(fx->cfg.dc, "uk");
  assert_int_equal(fx->cfg.history, 7);
}

static void test_option_overrides_file(void **state)
{
  struct fixture *fx = *state;
  /* main() loads the file first, then applies every -o key=value. */
  const char *path = write_file(fx, "base", 0600,
                                "dc = eu\nhistory = 20\n"
                                "access_token = from-file\n");
  assert_int_equal(load(fx, path, true), 0);
  assert_int_equal(set(fx, "dc", "au"), 0);
  assert_int_equal(set(fx, "access_token", "from-option"), 0);
  assert_int_equal(finalize(fx), 0);
  assert_string_equal(fx->cfg.dc, "au");
  assert_string_equal(fx->cfg.access_token, "from-option");
  assert_int_equal(fx->cfg.history, 20);
  assert_string_equal(fx->cfg.api_url, "https://cliq.zoho.com.au");
}

static void test_named_config_file(void **state)
{
  struct fixture *fx = *state;
  /* -o config=FILE: another file, which must exist. */
  const char *path = write_file(fx, "other.conf", 0600,
                                "access_token = t\napi_url = "
                                "http://127.0.0.1:5555\n");
  assert_int_equal(load(fx, path, true), 0);
  assert_int_equal(finalize(fx), 0);
  assert_string_equal(fx->cfg.config_path, path);
  assert_string_equal(fx->cfg.api_url, "http://127.0.0.1:5555");
}

static void test_default_config_path(void **state)
{
  struct fixture *fx = *state;
  char expect[PATH_MAX + 64];
  char *path = cliqfs_default_config_path();
  snprintf(expect, sizeof expect, "%s/config/cliqfs/config", fx->dir);
  assert_string_equal(path, expect);
  free(path);

  unsetenv("XDG_CONFIG_HOME");
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("HOME", "/home/someone", 1);
  path = cliqfs_default_config_path();
  assert_string_equal(path, "/home/someone/.config/cliqfs/config");
  free(path);
  /* A relative XDG path is ignored, as the XDG spec says. */
  setenv("XDG_CONFIG_HOME", "relative/dir", 1);
  path = cliqfs_default_config_path();
  assert_string_equal(path, "/home/someone/.config/cliqfs/config");
  free(path);
  if (home) {
    setenv("HOME", home, 1);
    free(home);
  } else {
    unsetenv("HOME");
  }
}

/* ---- Finalize ---------------------------------------------------------- */

static void test_no_credentials(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(finalize(fx), -EINVAL);
  assert_contains(fx->err, "cliqfs auth");
}

static void test_incomplete_credentials(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "refresh_token", SECRET), 0);
  assert_int_equal(finalize(fx), -EINVAL);
  assert_contains(fx->err, "client_id and client_secret are missing");
  assert_not_contains(fx->err, SECRET);
  assert_int_equal(set(fx, "client_id", "id"), 0);
  assert_int_equal(finalize(fx), -EINVAL);
  assert_contains(fx->err, "client_secret is missing");
  assert_int_equal(set(fx, "client_secret", "s"), 0);
  assert_int_equal(finalize(fx), 0);
}

/* The account folder name a config gets: finalizes a fresh config with the
 * given api_url and either a client id (with a secret and a refresh token) or
 * a static token.  Caller frees. */
static char *folder_of(const char *api_url, const char *client_id,
                       const char *refresh_token, const char *access_token)
{
  struct cliqfs_config c;
  char err[512];
  cliqfs_config_init(&c);
  if (api_url)
    assert_int_equal(cliqfs_config_set(&c, "api_url", api_url, err,
                                       sizeof err), 0);
  if (access_token) {
    assert_int_equal(cliqfs_config_set(&c, "access_token", access_token, err,
                                       sizeof err), 0);
  } else {
    assert_int_equal(cliqfs_config_set(&c, "client_id", client_id, err,
                                       sizeof err), 0);
    assert_int_equal(cliqfs_config_set(&c, "client_secret", "s2", err,
                                       sizeof err), 0);
    assert_int_equal(cliqfs_config_set(&c, "refresh_token", refresh_token,
                                       err, sizeof err), 0);
  }
  assert_int_equal(cliqfs_config_finalize(&c, err, sizeof err), 0);
  char *key = strdup(strrchr(c.state_dir, '/') + 1);
  assert_non_null(key);
  assert_string_equal(key, strrchr(c.cache_dir, '/') + 1);
  cliqfs_config_clear(&c);
  return key;
}

static void test_state_and_cache_dirs(void **state)
{
  struct fixture *fx = *state;
  assert_int_equal(set(fx, "client_id", "1000.ID"), 0);
  assert_int_equal(set(fx, "client_secret", "s"), 0);
  assert_int_equal(set(fx, "refresh_token", SECRET), 0);
  assert_int_equal(finalize(fx), 0);
  char prefix[PATH_MAX + 64];
  snprintf(prefix, sizeof prefix, "%s/state/cliqfs/cliq.zoho.com-", fx->dir);
  assert_true(strncmp(fx->cfg.state_dir, prefix, strlen(prefix)) == 0);
  snprintf(prefix, sizeof prefix, "%s/cache/cliqfs/cliq.zoho.com-", fx->dir);
  assert_true(strncmp(fx->cfg.cache_dir, prefix, strlen(prefix)) == 0);
  assert_not_contains(fx->cfg.state_dir, SECRET);
  assert_not_contains(fx->cfg.state_dir, "1000.ID");
  const char *key = strrchr(fx->cfg.state_dir, '/') + 1;
  assert_string_equal(key, strrchr(fx->cfg.cache_dir, '/') + 1);

  /* One implementation of the name: cache/statefile's, over the data
   * centre's API base and the client id (never the refresh token). */
  char *expected = statefile_account_key("https://cliq.zoho.com",
                                         "client:1000.ID");
  assert_non_null(expected);
  assert_string_equal(key, expected);
  free(expected);

  /* The same account with a new refresh token, or its API base written
   * differently, keeps its folder (and thus its rate ledger); another API
   * base or client gets another one. */
  const struct {
    const char *api_url, *client_id, *access_token;
    bool same;
  } variants[] = {
    { "https://cliq.zoho.com", "1000.ID", NULL, true },
    { "HTTPS://Cliq.Zoho.COM/", "1000.ID", NULL, true },
    { "http://127.0.0.1:4444", "1000.ID", NULL, false },
    { "https://cliq.zoho.eu", "1000.ID", NULL, false },
    { "https://cliq.zoho.com", "1000.OTHER", NULL, false },
    /* A static token equal to the client id is another identity. */
    { "https://cliq.zoho.com", NULL, "1000.ID", false },
  };
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    char *k = folder_of(variants[i].api_url, variants[i].client_id, "another",
                        variants[i].access_token);
    if (variants[i].same)
      assert_string_equal(k, key);
    else
      assert_string_not_equal(k, key);
    free(k);
  }
  char *loopback = folder_of("http://127.0.0.1:4444", "1000.ID", "another",
                             NULL);
  assert_true(strncmp(loopback, "127.0.0.1_4444-", 15) == 0);
  assert_int_equal(strlen(loopback), 15 + 12);
  free(loopback);
}

/* A static token names its own folder, stably, and never appears in it. */
static void test_static_token_dirs(void **state)
{
  (void)state;
  char *a = folder_of(NULL, NULL, NULL, SECRET);
  char *again = folder_of(NULL, NULL, NULL, SECRET);
  char *b = folder_of(NULL, NULL, NULL, SECRET "2");
  assert_string_equal(a, again);
  assert_string_not_equal(a, b);
  assert_not_contains(a, SECRET);
  assert_not_contains(a, "s3cr3t");
  char *expected = statefile_account_key("https://cliq.zoho.com",
                                         "static:" SECRET);
  assert_string_equal(a, expected);
  free(expected);
  free(a);
  free(again);
  free(b);
}

static void test_dirs_default_to_home(void **state)
{
  struct fixture *fx = *state;
  unsetenv("XDG_STATE_HOME");
  unsetenv("XDG_CACHE_HOME");
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("HOME", "/home/someone", 1);
  assert_int_equal(set(fx, "access_token", SECRET), 0);
  assert_int_equal(finalize(fx), 0);
  assert_true(strncmp(fx->cfg.state_dir,
                      "/home/someone/.local/state/cliqfs/cliq.zoho.com-",
                      48) == 0);
  assert_true(strncmp(fx->cfg.cache_dir,
                      "/home/someone/.cache/cliqfs/cliq.zoho.com-", 42) == 0);
  assert_not_contains(fx->cfg.state_dir, SECRET);
  if (home) {
    setenv("HOME", home, 1);
    free(home);
  } else {
    unsetenv("HOME");
  }
}

static void test_preset_dirs_kept(void **state)
{
  struct fixture *fx = *state;
  /* --demo places both folders itself before finalizing. */
  fx->cfg.state_dir = strdup("/tmp/demo/state");
  fx->cfg.cache_dir = strdup("/tmp/demo/cache");
  assert_int_equal(set(fx, "access_token", "t"), 0);
  assert_int_equal(finalize(fx), 0);
  assert_string_equal(fx->cfg.state_dir, "/tmp/demo/state");
  assert_string_equal(fx->cfg.cache_dir, "/tmp/demo/cache");
}

/* ---- cliqfs_config_store ------------------------------------------------ */

static void test_store_new_file(void **state)
{
  struct fixture *fx = *state;
  char path[PATH_MAX + 128], dir[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/new/cliqfs", fx->dir);
  snprintf(path, sizeof path, "%s/config", dir);
  const char *keys[] = { "dc", "client_id", "client_secret",
                         "refresh_token" };
  const char *values[] = { "eu", "1000.ID", "sec", SECRET };
  assert_int_equal(cliqfs_config_store(path, keys, values, 4, fx->err,
                                       sizeof fx->err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);
  /* Nothing but the config is left in its folder (no temporary file). */
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int entries = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      assert_string_equal(e->d_name, "config");
      entries++;
    }
  closedir(d);
  assert_int_equal(entries, 1);
  assert_int_equal(load(fx, path, true), 0);
  assert_int_equal(finalize(fx), 0);
  assert_string_equal(fx->cfg.dc, "eu");
  assert_string_equal(fx->cfg.refresh_token, SECRET);
  assert_string_equal(fx->cfg.api_url, "https://cliq.zoho.eu");
}

static void test_store_keeps_other_lines(void **state)
{
  struct fixture *fx = *state;
  const char *path = write_file(fx, "existing", 0644,
                                "# my settings\n"
                                "history = 42\n"
                                "refresh_token = old\n"
                                "dc = us\n"
                                "refresh_token = older\n"
                                "access_token = stale\n");
  char copy[PATH_MAX + 64];
  snprintf(copy, sizeof copy, "%s", path);
  const char *keys[] = { "refresh_token", "dc", "access_token",
                         "client_id" };
  const char *values[] = { "new", "ca", NULL, "1000.ID" };
  assert_int_equal(cliqfs_config_store(copy, keys, values, 4, fx->err,
                                       sizeof fx->err), 0);
  FILE *f = fopen(copy, "r");
  assert_non_null(f);
  char text[1024];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  assert_string_equal(text, "# my settings\n"
                            "history = 42\n"
                            "refresh_token = new\n"
                            "dc = ca\n"
                            "client_id = 1000.ID\n");
  struct stat st;
  assert_int_equal(stat(copy, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_store_refuses_line_breaks(void **state)
{
  struct fixture *fx = *state;
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/nl", fx->dir);
  const char *keys[] = { "refresh_token" };
  const char *values[] = { SECRET "\ndc = eu" };
  assert_int_equal(cliqfs_config_store(path, keys, values, 1, fx->err,
                                       sizeof fx->err), -EINVAL);
  assert_not_contains(fx->err, SECRET);
  assert_int_equal(access(path, F_OK), -1);
}

/* docs/config.example, installed for users to copy, reads cleanly. */
static void test_example_config(void **state)
{
  struct fixture *fx = *state;
  const char *path = getenv("CLIQFS_EXAMPLE_CONFIG");
  if (!path)
    fail_msg("CLIQFS_EXAMPLE_CONFIG must name docs/config.example");
  assert_int_equal(load(fx, path, true), 0);
  assert_string_equal(fx->cfg.dc, "us");
  assert_int_equal(fx->cfg.history, 100);
  assert_true(fx->cfg.max_wait_s == 60);
  /* It holds no secret, so its installed mode (0644) is fine, and a mount
   * with it alone asks for credentials. */
  assert_null(fx->cfg.refresh_token);
  assert_int_equal(finalize(fx), -EINVAL);
  assert_contains(fx->err, "cliqfs auth");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    T(test_defaults),
    T(test_every_key),
    T(test_key_classes),
    T(test_every_dc),
    T(test_url_override_replaces_only_its_base),
    T(test_bad_values),
    T(test_unknown_key),
    T(test_secret_never_echoed),
    T(test_loopback_http_allowed),
    T(test_non_loopback_http_refused),
    T(test_limits),
    T(test_file_syntax),
    T(test_file_line_in_messages),
    T(test_missing_file),
    T(test_world_readable_secret_refused),
    T(test_group_readable_secret_refused),
    T(test_writable_by_others_refused),
    T(test_private_secret_accepted),
    T(test_public_file_without_secret_accepted),
    T(test_option_overrides_file),
    T(test_named_config_file),
    T(test_default_config_path),
    T(test_no_credentials),
    T(test_incomplete_credentials),
    T(test_state_and_cache_dirs),
    T(test_static_token_dirs),
    T(test_dirs_default_to_home),
    T(test_preset_dirs_kept),
    T(test_store_new_file),
    T(test_store_keeps_other_lines),
    T(test_store_refuses_line_breaks),
    T(test_example_config),
#undef T
  };
  return cmocka_run_group_tests_name("fs/config", tests, NULL, NULL);
}
