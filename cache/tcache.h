/* cache/tcache: a TTL cache of JSON values keyed by strings, with LRU bounds,
 * stale-while-revalidate, negative entries, single-flight fetches and a copy on
 * disk so that a remount starts warm and an offline mount can be browsed.
 *
 * Ownership: values passed in are borrowed (the cache takes its own
 * reference); values returned are new references the caller must
 * json_decref().  Keys are copied.  Thread-safe.
 * Values are shared, not copied: neither the caller nor the fetch function
 * may modify a value after handing it to the cache or getting it from it
 * (json_deep_copy() first when a changed version is needed).
 * Hits count FRESH and NEGATIVE answers; STALE and MISS count as misses.
 * The disk copy (disk_dir/<32 hex of SHA-256(key)>.json, value, fetched_at and
 * ttl) is written on every put and read lazily on a miss in memory; entries
 * evicted from memory stay on disk.
 * Ages and TTLs are in (unscaled) seconds of wall-clock time; the cache
 * divides TTLs by time_scale.
 */
#ifndef CLIQ_CACHE_TCACHE_H
#define CLIQ_CACHE_TCACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/cliq.h"

typedef struct tcache tcache;

typedef struct tcache_options {
  size_t max_bytes;        /* LRU bound on the in-memory size (0 = 64 MiB) */
  const char *disk_dir;    /* folder for the on-disk copy; NULL = memory only */
  double time_scale;       /* <= 0 means 1 */
  /* Called (with arg and the key, borrowed) right after a disk copy was
   * read and before the cache's lock is taken again; NULL: none.  The
   * window in which a write or removal may overtake the read: tests put
   * one there. */
  void (*after_disk_read)(void *arg, const char *key);
  void *after_disk_read_arg;
  /* Called (with arg and the key, borrowed) without the cache's lock right
   * before a disk copy is written or removed; NULL: none.  Tests stall a
   * write there. */
  void (*before_disk_write)(void *arg, const char *key);
  void *before_disk_write_arg;
} tcache_options;

tcache *tcache_new(const tcache_options *opts, cliq_error *err);
/* Writes nothing more; frees everything. */
void tcache_free(tcache *c);

typedef enum tcache_state {
  TCACHE_MISS = 0,     /* nothing known */
  TCACHE_FRESH,        /* within its TTL */
  TCACHE_STALE,        /* known but older than its TTL */
  TCACHE_NEGATIVE,     /* known not to exist (fresh negative entry) */
} tcache_state;

/* Looks a key up.  *value_out (may be NULL) gets a new reference for FRESH and
 * STALE; *age_s (may be NULL) the entry's age. */
tcache_state tcache_get(tcache *c, const char *key, json_t **value_out,
                        double *age_s);
/* The state of a key only (no statistics, no LRU move; a disk copy is read,
 * not kept in memory). */
tcache_state tcache_state_of(tcache *c, const char *key);
/* Seconds since a key's value was fetched (no statistics, no LRU move, a
 * disk copy not kept in memory), -1 when nothing is known. */
double tcache_age_of(tcache *c, const char *key);
/* The value of key, known to be still current, counts as fetched now, for
 * ttl_s (unscaled) more.  In memory: the disk copy keeps its own time (an
 * entry that leaves memory, or a restart, goes back to it), unless the entry
 * is too large for memory, when it is written through.  false when nothing
 * (or a negative entry) is known. */
bool tcache_renew(tcache *c, const char *key, double ttl_s);
/* Stores value with a TTL (seconds, unscaled) and writes it through to disk;
 * a value equal to the one held in memory only renews that (as
 * tcache_renew), and so does a fetch that brings back an equal value. */
void tcache_put(tcache *c, const char *key, json_t *value, double ttl_s);
void tcache_put_negative(tcache *c, const char *key, double ttl_s);
void tcache_invalidate(tcache *c, const char *key);

/* Single flight: returns the value for key, fetching it with fetch() when it
 * is missing or stale.  Concurrent callers for one key share one fetch.  When
 * fetch fails and a stale value exists, the stale value is returned (0) and
 * the error is still reported in err.  *value_out gets a new reference.
 * fetch() returns 0 and a new reference in *out, or -errno.
 * A fresh negative entry answers -ENOENT without a fetch; a fetch answering
 * -ENOENT stores a negative entry (same ttl_s) in place of any stale value. */
typedef int (*tcache_fetch_fn)(void *ctx, const char *key, json_t **out,
                               cliq_error *err);
int tcache_fetch(tcache *c, const char *key, double ttl_s,
                 tcache_fetch_fn fetch, void *ctx, json_t **value_out,
                 cliq_error *err);

/* tcache_fetch(), but a value older than max_age_s (unscaled; < 0: no such
 * limit) counts as stale even within its own TTL: for a poll that wants
 * fresher data than ordinary readers.  0 always fetches (single flight still
 * shares it).  The stored value gets ttl_s as usual. */
int tcache_fetch_younger(tcache *c, const char *key, double max_age_s,
                         double ttl_s, tcache_fetch_fn fetch, void *ctx,
                         json_t **value_out, cliq_error *err);

/* A file of the caller's own beside key's disk copy: disk_dir/<32 hex of
 * SHA-256(key)>.<ext> (a new string the caller frees), or NULL without
 * disk_dir (or memory, or for ext "json", the cache's own).  The cache never
 * writes, reads or removes it: for a value the caller keeps up to date on
 * disk itself (a message log appends to its JSONL) while the cache keeps a
 * small record of it with the freshness. */
char *tcache_disk_path(tcache *c, const char *key, const char *ext);

/* Queues len bytes of data (copied) to be written at offset off of path, a
 * file of the caller's own (tcache_disk_path; created 0600, cut to nothing
 * first when off is 0), by the cache's writer, in order with the records
 * queued before and after it: a record put after the append tells of bytes
 * that are on disk when it is.  The caller does not wait for the disk.
 * landed (may be NULL) runs on the writer thread once the bytes are written
 * (rc 0) or not (-errno), before tcache_disk_settle or tcache_disk_flush
 * return for them, holding no lock of the cache; it must not wait for
 * anything their callers may hold (a log's lock).  Returns 0 when queued
 * (landed will run); else, out of memory, the bytes are written at once
 * (after what is queued for path) and it returns 1 or -errno, landed not
 * run.  Needs a disk_dir. */
int tcache_disk_append(tcache *c, const char *path, const char *data,
                       size_t len, size_t off,
                       void (*landed)(void *arg, int rc), void *arg);

/* Waits until no append to path is queued or being written: the file holds
 * every byte appended to it so far. */
void tcache_disk_settle(tcache *c, const char *path);

/* Waits until every record and append queued so far has been written. */
void tcache_disk_flush(tcache *c);

typedef struct tcache_stats {
  size_t entries;
  size_t hits;
  size_t misses;
  size_t bytes;
  double oldest_age_s;
} tcache_stats;

void tcache_stats_get(tcache *c, tcache_stats *out);

#endif
