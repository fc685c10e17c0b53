/* cache/tcache_i.h: what the files of the TTL cache share (tcache.c: the
 * table, the LRU list, the disk copy and the public get/put; tcache_fetch.c:
 * the single-flight fetch).  Private to cache/tcache*.c.  Every function here
 * is called with c->mu held unless it says otherwise. */
#ifndef CLIQFS_CACHE_TCACHE_I_H
#define CLIQFS_CACHE_TCACHE_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/tcache.h"

struct entry {
  char *key;
  uint64_t hash;
  json_t *value;          /* NULL for a negative entry */
  double fetched_at;      /* epoch seconds */
  double ttl_s;           /* unscaled */
  size_t bytes;
  bool detached;          /* too large for memory: not in the table */
  struct entry *chain;    /* hash bucket */
  struct entry *newer, *older; /* LRU list, most recently used at the head */
};

/* One fetch in progress; followers wait for its outcome. */
struct flight {
  char *key;
  struct flight *next;
  bool done;
  int followers;
  int rc;
  json_t *value;
  cliq_error err;
};

struct tcache {
  pthread_mutex_t mu;
  pthread_cond_t flight_done;
  struct entry **buckets;
  size_t nbuckets, count;
  struct entry *lru_head, *lru_tail;
  size_t bytes, max_bytes;
  size_t hits, misses;
  double scale;
  char *disk_dir;
  uint64_t disk_gen;      /* moves at every write or removal of a disk copy */
  void (*after_disk_read)(void *arg, const char *key);
  void *after_disk_read_arg;
  struct flight *flights;
};

/* The entry for key, from memory or its disk copy (kept in memory); NULL
 * when neither has it.  A detached entry must be given to tc_release(). */
struct entry *tc_find(tcache *c, const char *key);
/* Frees a detached entry (one not in the table); no-op otherwise. */
void tc_release(struct entry *e);
/* Marks e most recently used. */
void tc_touch(tcache *c, struct entry *e);
/* Drops key from memory (its disk copy stays). */
void tc_remove_mem_key(tcache *c, const char *key);
/* What e says at now: fresh, stale, negative or a miss. */
tcache_state tc_state_of(const tcache *c, const struct entry *e, double now);
/* The disk record of key (value NULL: negative); caller frees.  *len its
 * length.  Needs no lock. */
char *tc_make_record(const char *key, json_t *value, double fetched_at,
                     double ttl_s, size_t *len);
/* Stores the prepared record text (of len bytes) for key, in memory and on
 * disk (value NULL: negative). */
void tc_store_locked(tcache *c, const char *key, json_t *value,
                     double fetched_at, double ttl_s, const char *text,
                     size_t len);

#endif
