/* fs/config: settings from the config file, -o options and the command line.
 * (cliqfs(1) OPTIONS).  Everything here is plain C with no FUSE types so that
 * the unit tests can cover it.
 *
 * Ownership: every char * in struct cliqfs_config is owned by the struct and
 * released by cliqfs_config_clear().  Functions taking const char * borrow.
 * Error messages name the file and line; they never contain a secret value.
 */
#ifndef CLIQFS_FS_CONFIG_H
#define CLIQFS_FS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct cliqfs_limit_override {
  char *api;      /* API class name, e.g. "chats.messages" */
  char *value;    /* "N/SECONDS" */
};

struct cliqfs_config {
  char *config_path;     /* file read (or NULL when none existed) */
  char *client_id;
  char *client_secret;
  char *refresh_token;
  char *access_token;    /* static token, testing */
  char *dc;              /* us, eu, in, au, jp, cn, ca, sa, uk (default us) */
  char *api_url;         /* resolved: override or the DC's Cliq base */
  char *accounts_url;    /* resolved: override or the DC's accounts base */
  int history;           /* messages shown at first read (default 100) */
  int sync;              /* enum store_sync (cache/store.h); default all */
  int sync_share;        /* percent of each API's budget sync spends; default 50 */
  double max_wait_s;     /* default 60 */
  double time_scale;     /* default 1 */
  int timeout_s;         /* one request's limit, real seconds (default 30) */
  long uid, gid;         /* owner shown for every file; -1: the mounter's */
  char *log_path;        /* -o log=FILE (absolute), NULL: stderr or syslog */
  int verbose;           /* enum cliq_log_level, default 1 */
  int umask;             /* permission bits taken away; -1: none (022-like
                            modes of the tree as documented) */
  char *state_dir;       /* resolved: $XDG_STATE_HOME/cliqfs/<account-key>/ */
  char *cache_dir;       /* resolved: $XDG_CACHE_HOME/cliqfs/<account-key>/ */
  struct cliqfs_limit_override *limits;
  size_t n_limits;
};

/* Wipes a secret before its memory goes back to the allocator, frees it and
 * sets *s to NULL.  NULL *s is fine. */
void cliqfs_free_secret(char **s);

/* Defaults: dc "us", history 100, sync all, sync_share 50, max_wait 60, time_scale 1, timeout 30. */
void cliqfs_config_init(struct cliqfs_config *cfg);
void cliqfs_config_clear(struct cliqfs_config *cfg);

/* Reads `key = value` lines.  A missing file is not an error when
 * must_exist is false.  A file holding a secret (client_secret,
 * refresh_token, access_token) that group or others can read is refused.
 * Returns 0 or -errno with a sentence in errbuf ("FILE:LINE: ..."). */
int cliqfs_config_load_file(struct cliqfs_config *cfg, const char *path,
                            bool must_exist, char *errbuf, size_t errlen);
/* One key = value (from the file or -o key=value).  Unknown keys and bad
 * values give -EINVAL with a sentence in errbuf. */
int cliqfs_config_set(struct cliqfs_config *cfg, const char *key,
                      const char *value, char *errbuf, size_t errlen);
/* After all sources: resolves URLs from dc, checks them (https, or http to
 * loopback), checks that some credential is present, computes state_dir and
 * cache_dir.  0 or -errno with a sentence. */
int cliqfs_config_finalize(struct cliqfs_config *cfg, char *errbuf,
                           size_t errlen);

/* The default config path: $XDG_CONFIG_HOME/cliqfs/config or
 * ~/.config/cliqfs/config.  Caller frees. */
char *cliqfs_default_config_path(void);
/* $XDG_STATE_HOME/cliqfs (or ~/.local/state/cliqfs): one folder per account
 * below it.  Caller frees; NULL when no home is known. */
char *cliqfs_state_base(void);

/* ---- Additions for main.c and `cliqfs auth` ---------------------------- */

/* True when key is one cliqfs understands (the keys above and limit.<api>
 * for any name; the name is checked by cliqfs_config_set). */
bool cliqfs_config_is_key(const char *key);
/* True for keys whose values are secrets (client_secret, refresh_token,
 * access_token): never echoed, scrubbed from argv, file must be 0600. */
bool cliqfs_config_key_is_secret(const char *key);

/* The Cliq API base and accounts base of a data centre (static strings).
 * 0, or -EINVAL when dc is not one of the nine. */
int cliqfs_dc_urls(const char *dc, const char **api_url,
                   const char **accounts_url);

/* Writes keys[i] = values[i] into the config file at path: lines already
 * setting one of these keys are replaced (in place), other lines (comments,
 * other keys) are kept, missing keys are appended.  Missing parent folders are
 * created 0700; the file is written 0600 atomically (temp file, fsync,
 * rename, fsync of the folder).  values[i] == NULL removes that key.
 * 0 or -errno with a sentence in errbuf (never a value). */
int cliqfs_config_store(const char *path, const char *const *keys,
                        const char *const *values, size_t n, char *errbuf,
                        size_t errlen);

#endif
