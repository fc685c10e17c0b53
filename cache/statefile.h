/* cache/statefile: small helpers for everything cliqfs persists (the rate
 * ledger, the outbox journal, the on-disk cache).  cliqfs(1) OPTIONS: what
 * must survive a restart is written so that a crash at any instant leaves it
 * readable -- write a temporary file in the same folder, fsync, rename.
 *
 * Ownership: `const char *` parameters are borrowed; returned buffers and
 * strings are malloc'd and freed by the caller with free().
 * Every function returns 0 or -errno unless said otherwise.  Thread-safe (no
 * shared state).
 */
#ifndef CLIQ_CACHE_STATEFILE_H
#define CLIQ_CACHE_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "api/clock.h"

struct cliq_error;

/* mkdir -p: creates every missing folder of path with `mode` (folders that
 * exist already are left as they are).  -ENOTDIR when a component is a file. */
int statefile_mkdirs(const char *path, mode_t mode);

/* Replaces path with data, durably: a temporary file in the same folder
 * (mode 0600, named as statefile_is_temp_name() recognises), fsync, rename
 * over path, fsync of the folder.  A crash at any instant leaves the old
 * content or the new one, never a mix; on failure the old file is intact and
 * the temporary file is gone. */
int statefile_write_atomic(const char *path, const void *data, size_t len);

/* The same without the two fsyncs: atomic for readers and across a crash of
 * the process, but not durable across a crash of the machine (the old or an
 * empty/absent file may come back).  For caches that can be re-fetched. */
int statefile_replace(const char *path, const void *data, size_t len);

/* Rewrites path in place (0600 when created): no new file, so it costs
 * none of the file system's work of creating and renaming one.  A reader
 * can see a mix of old and new content: for files whose every reader and
 * writer holds a lock (flock) around them.  A writer killed midway leaves
 * the new content followed by blanks.  No fsync.  0 or -errno. */
int statefile_overwrite(const char *path, const void *data, size_t len);

/* Reads the whole file.  *buf (caller frees) is NUL-terminated for
 * convenience; *len excludes that NUL.  -ENOENT when missing. */
int statefile_read(const char *path, char **buf, size_t *len);

/* The file's JSON: a new reference (caller decrefs), or NULL when the file
 * is missing, unreadable or not JSON (a state file that cannot be read is
 * treated as absent by every caller). */
json_t *statefile_read_json(const char *path);

/* unlink(path) followed by an fsync of its folder, so that a delivered
 * journal entry does not come back after a power loss.  -ENOENT when missing. */
int statefile_unlink_durable(const char *path);

/* True for the names of the temporary files the writers above create
 * (".<name>.tmp.XXXXXX"); what a crash leaves behind and loaders skip. */
bool statefile_is_temp_name(const char *name);

/* The folder name for one account and API base under
 * $XDG_STATE_HOME/cliqfs/ and $XDG_CACHE_HOME/cliqfs/: the API host (and port)
 * made safe for a file name, a dash, and 12 hex digits of SHA-256 over the
 * normalised URL and identity.  Stable across runs; identity (e.g. client id
 * or a token) may be a secret: only the truncated digest appears.
 * e.g. "cliq.zoho.com-3f9a0c1d2b4e".  NULL on allocation failure; api_url and
 * identity may be NULL (treated as ""). */
char *statefile_account_key(const char *api_url, const char *identity);

/* SHA-256 of data as 64 lowercase hex digits and a NUL. */
void statefile_digest(const void *data, size_t len, char out[65]);

#endif
