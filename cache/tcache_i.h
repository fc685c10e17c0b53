/* cache/tcache_i.h: what the files of the TTL cache share (tcache.c: the
 * table, the LRU list, reading the disk copy back and the public get/put;
 * tcache_disk.c: the disk copy's files and their writer; tcache_fetch.c: the
 * single-flight fetch).  Private to cache/tcache*.c.  Every function here
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

/* A disk copy queued for the writer (tcache_disk.c): the record of key
 * (text) or, text NULL, the copy's removal; or, path set (key NULL), len
 * bytes of text for a caller's own file at offset off (tcache_disk_append). */
struct disk_job {
  char *key;              /* owned; NULL for an append */
  char *text;             /* owned; NULL: remove the copy */
  size_t len;
  json_t *value;          /* a reference; NULL: negative (or a removal) */
  double fetched_at, ttl_s;
  char *path;             /* owned; an append's file */
  size_t off;
  void (*landed)(void *arg, int rc); /* an append's, after its write */
  void *landed_arg;
  struct disk_job *next;  /* c->jobs, oldest first */
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
  uint64_t disk_gen;      /* moves when a disk copy's write or removal is
                             queued and again when it lands */
  struct disk_job *jobs, *jobs_tail; /* queued for the writer */
  struct disk_job *writing; /* the head of jobs while the writer writes it */
  size_t queued_bytes;
  pthread_t writer;
  bool writer_running, writer_stop;
  pthread_cond_t writer_wake; /* a job was queued, or stop */
  pthread_cond_t job_done;    /* a job landed */
  void (*after_disk_read)(void *arg, const char *key);
  void *after_disk_read_arg;
  void (*before_disk_write)(void *arg, const char *key);
  void *before_disk_write_arg;
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
/* Stores key's record in memory (value NULL: negative) and queues its disk
 * copy, text (len bytes), which it takes (frees). */
void tc_store_locked(tcache *c, const char *key, json_t *value,
                     double fetched_at, double ttl_s, char *text, size_t len);

/* ---- the disk copy (tcache_disk.c) ---- */
/* The path of key's file with extension ext in disk_dir; NULL without a
 * disk_dir.  Caller frees.  Needs no lock (disk_dir never changes). */
char *tc_disk_path(const tcache *c, const char *key, const char *ext);
/* Queues the write of key's record text (taken; NULL: the copy's removal)
 * for the writer; value (a reference is taken), fetched_at and ttl_s let a
 * reader use the record before it lands.  Out of memory it writes at
 * once. */
void tc_disk_queue_locked(tcache *c, const char *key, char *text, size_t len,
                          json_t *value, double fetched_at, double ttl_s);
/* The newest job queued for key, or NULL; borrowed while c->mu is held. */
const struct disk_job *tc_disk_job_for(const tcache *c, const char *key);
/* Called without c->mu after a store: waits while the queue is over its
 * bound. */
void tc_disk_backpressure(tcache *c);
/* Starts the writer (with a disk_dir); -errno.  Before any store. */
int tc_disk_start(tcache *c);
/* Lets the writer write what is queued, then stops it.  Without c->mu. */
void tc_disk_stop(tcache *c);

#endif
