/* cache/tcache.c: the TTL cache of JSON values (tcache.h), in memory and on
 * disk (its single-flight fetch: tcache_fetch.c). */
/* The on-disk copy: one file per key in disk_dir, named by the first 32 hex
 * digits of SHA-256(key) plus ".json", holding
 *   {"key":K,"fetched_at":EPOCH_S,"ttl":S,"value":V}   or   ..."negative":true
 * It is written with statefile_replace() (atomic, not fsync'd: a cache can be
 * fetched again) by the cache's writer thread (tcache_disk.c), and read back
 * lazily on a miss in memory, so that a new
 * tcache on the same folder starts warm and entries keep their original age.
 * Entries evicted from memory stay on disk.  Beside it a caller may keep
 * files of its own with the same name and another extension
 * (tcache_disk_path). */
#include "cache/tcache_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/statefile.h"

#define TCACHE_DEFAULT_MAX_BYTES ((size_t)64 << 20)
/* Bookkeeping per entry on top of its serialized size. */
#define TCACHE_ENTRY_OVERHEAD 128


static uint64_t hash_key(const char *key)
{
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h;
}

static bool is_fresh(const tcache *c, const struct entry *e, double now)
{
  return now - e->fetched_at < e->ttl_s / c->scale;
}

/* ---- the table and the LRU list ------------------------------------------- */

static struct entry *lookup_mem(tcache *c, const char *key, uint64_t h)
{
  for (struct entry *e = c->buckets[h % c->nbuckets]; e; e = e->chain)
    if (e->hash == h && strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

static void lru_unlink(tcache *c, struct entry *e)
{
  if (e->newer)
    e->newer->older = e->older;
  else
    c->lru_head = e->older;
  if (e->older)
    e->older->newer = e->newer;
  else
    c->lru_tail = e->newer;
  e->newer = e->older = NULL;
}

static void lru_push_head(tcache *c, struct entry *e)
{
  e->newer = NULL;
  e->older = c->lru_head;
  if (c->lru_head)
    c->lru_head->newer = e;
  c->lru_head = e;
  if (!c->lru_tail)
    c->lru_tail = e;
}

void tc_touch(tcache *c, struct entry *e)
{
  if (c->lru_head == e)
    return;
  lru_unlink(c, e);
  lru_push_head(c, e);
}

static void entry_free(struct entry *e)
{
  if (!e)
    return;
  json_decref(e->value);
  free(e->key);
  free(e);
}

/* Takes e out of memory (the disk copy stays). */
static void remove_mem(tcache *c, struct entry *e)
{
  struct entry **pp = &c->buckets[e->hash % c->nbuckets];
  while (*pp != e)
    pp = &(*pp)->chain;
  *pp = e->chain;
  lru_unlink(c, e);
  c->count--;
  c->bytes -= e->bytes;
  entry_free(e);
}

static void grow(tcache *c)
{
  size_t n = c->nbuckets * 2;
  struct entry **b = calloc(n, sizeof(*b));
  if (!b)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < c->nbuckets; i++) {
    struct entry *e = c->buckets[i];
    while (e) {
      struct entry *next = e->chain;
      e->chain = b[e->hash % n];
      b[e->hash % n] = e;
      e = next;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = n;
}

void tc_remove_mem_key(tcache *c, const char *key)
{
  struct entry *e = lookup_mem(c, key, hash_key(key));
  if (e)
    remove_mem(c, e);
}

/* Inserts e (replacing an entry of the same key) and evicts the least
 * recently used entries beyond max_bytes.  An entry larger than the whole
 * budget is not kept in memory: it comes back detached (caller's to free). */
static void insert_mem(tcache *c, struct entry *e)
{
  struct entry *old = lookup_mem(c, e->key, e->hash);
  if (old)
    remove_mem(c, old);
  if (e->bytes > c->max_bytes) {
    e->detached = true;
    return;
  }
  if (c->count + 1 > c->nbuckets * 3 / 4)
    grow(c);
  size_t b = e->hash % c->nbuckets;
  e->chain = c->buckets[b];
  c->buckets[b] = e;
  lru_push_head(c, e);
  c->count++;
  c->bytes += e->bytes;
  while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
    remove_mem(c, c->lru_tail);
}

static struct entry *entry_new(const char *key, uint64_t h, json_t *value,
                               double fetched_at, double ttl_s, size_t size)
{
  struct entry *e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  e->key = strdup(key);
  if (!e->key) {
    free(e);
    return NULL;
  }
  e->hash = h;
  e->value = json_incref(value);
  e->fetched_at = fetched_at;
  e->ttl_s = ttl_s;
  e->bytes = size + strlen(key) + TCACHE_ENTRY_OVERHEAD;
  return e;
}

/* ---- the disk copy ---------------------------------------------------------- */

/* The entry for key from the disk copy, or NULL. */
static struct entry *disk_load(tcache *c, const char *key, uint64_t h)
{
  char *path = tc_disk_path(c, key, "json");
  if (!path)
    return NULL;
  char *buf = NULL;
  size_t len = 0;
  struct entry *e = NULL;
  int rc = statefile_read(path, &buf, &len);
  free(path);
  if (rc)
    return NULL;
  json_t *rec = json_loadb(buf, len, 0, NULL);
  free(buf);
  json_t *jkey = json_object_get(rec, "key");
  json_t *value = json_object_get(rec, "value");
  bool negative = json_is_true(json_object_get(rec, "negative"));
  json_t *fetched = json_object_get(rec, "fetched_at");
  json_t *ttl = json_object_get(rec, "ttl");
  /* Another key with the same digest prefix, or a damaged file: a miss. */
  if (!json_is_string(jkey) || strcmp(json_string_value(jkey), key) != 0 ||
      !json_is_number(fetched) || !json_is_number(ttl) ||
      (!value && !negative))
    goto out;
  e = entry_new(key, h, negative ? NULL : value, json_number_value(fetched),
                json_number_value(ttl), len);
out:
  json_decref(rec);
  return e;
}

/* The entry for key from the newest job queued for its disk copy: found
 * (*e set, NULL for a removal) or not. */
static bool from_queue(tcache *c, const char *key, uint64_t h,
                       struct entry **e)
{
  const struct disk_job *j = tc_disk_job_for(c, key);
  if (!j)
    return false;
  *e = j->text ? entry_new(key, h, j->value, j->fetched_at, j->ttl_s, j->len)
               : NULL;
  return true;
}

/* The entry for key, from memory or else from its disk copy, which is kept
 * in memory when keep is set (a lookup that only asks an entry's state does
 * not push what readers use out of memory).  Called with c->mu held, which
 * it drops while it reads the file: no thread waits behind another's disk
 * read, least of all behind the syncer's, which runs at nice 10.  A copy
 * still queued for the writer is taken from the queue; one queued or
 * landed while the file was read makes it look again (the copy read may be
 * outdated); after a few such turns it reads under the lock.  A detached
 * entry must be given to tc_release(). */
static struct entry *find_ex(tcache *c, const char *key, bool keep)
{
  uint64_t h = hash_key(key);
  struct entry *e = lookup_mem(c, key, h);
  if (e || !c->disk_dir)
    return e;
  for (int turn = 0; turn < 3; turn++) {
    if (from_queue(c, key, h, &e))
      goto out;
    uint64_t gen = c->disk_gen;
    pthread_mutex_unlock(&c->mu);
    struct entry *d = disk_load(c, key, h);
    if (c->after_disk_read)
      c->after_disk_read(c->after_disk_read_arg, key);
    pthread_mutex_lock(&c->mu);
    e = lookup_mem(c, key, h);
    if (e) {
      entry_free(d);
      return e;
    }
    if (c->disk_gen == gen) {
      e = d;
      goto out;
    }
    entry_free(d);
  }
  if (!from_queue(c, key, h, &e))
    e = disk_load(c, key, h);
out:
  if (e && keep)
    insert_mem(c, e);
  else if (e)
    e->detached = true;
  return e;
}

struct entry *tc_find(tcache *c, const char *key)
{
  return find_ex(c, key, true);
}

void tc_release(struct entry *e)
{
  if (e && e->detached)
    entry_free(e);
}

/* Stores a prepared record for key in memory and queues its disk copy.  A
 * value equal to the one in memory only renews it there, as tcache_renew
 * does: most polls of a list find it unchanged, and a file written per poll
 * cost more than the poll. */
void tc_store_locked(tcache *c, const char *key, json_t *value,
                     double fetched_at, double ttl_s, char *text, size_t len)
{
  uint64_t h = hash_key(key);
  struct entry *old = lookup_mem(c, key, h);
  if (old && old->value && value && json_equal(old->value, value)) {
    old->fetched_at = fetched_at;
    old->ttl_s = ttl_s;
    tc_touch(c, old);
    free(text);
    return;
  }
  struct entry *e = entry_new(key, h, value, fetched_at, ttl_s, len);
  if (e) {
    insert_mem(c, e);
    tc_release(e);
  } else {
    tc_remove_mem_key(c, key); /* never serve what we know is outdated */
  }
  tc_disk_queue_locked(c, key, text, len, value, fetched_at, ttl_s);
}

/* ---- public --------------------------------------------------------------- */

tcache *tcache_new(const tcache_options *opts, cliq_error *err)
{
  tcache_options defaults = {0};
  if (!opts)
    opts = &defaults;
  tcache *c = calloc(1, sizeof(*c));
  if (!c)
    goto nomem;
  c->max_bytes = opts->max_bytes ? opts->max_bytes : TCACHE_DEFAULT_MAX_BYTES;
  c->scale = opts->time_scale > 0 ? opts->time_scale : 1;
  c->after_disk_read = opts->after_disk_read;
  c->after_disk_read_arg = opts->after_disk_read_arg;
  c->before_disk_write = opts->before_disk_write;
  c->before_disk_write_arg = opts->before_disk_write_arg;
  c->nbuckets = 64;
  c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
  if (!c->buckets)
    goto nomem;
  if (opts->disk_dir) {
    int rc = statefile_mkdirs(opts->disk_dir, 0700);
    if (rc) {
      cliq_fail(err, -rc, "cache folder %s: %s", opts->disk_dir, strerror(-rc));
      free(c->buckets);
      free(c);
      return NULL;
    }
    c->disk_dir = strdup(opts->disk_dir);
    if (!c->disk_dir)
      goto nomem;
  }
  pthread_mutex_init(&c->mu, NULL);
  cliq_clock_cond_init(&c->flight_done);
  int rc = tc_disk_start(c);
  if (rc) {
    cliq_fail(err, -rc, "cache writer: %s", strerror(-rc));
    tcache_free(c);
    return NULL;
  }
  if (err)
    memset(err, 0, sizeof(*err));
  return c;
nomem:
  if (c) {
    free(c->buckets);
    free(c);
  }
  cliq_fail(err, ENOMEM, "out of memory");
  return NULL;
}

void tcache_free(tcache *c)
{
  if (!c)
    return;
  tc_disk_stop(c);
  while (c->lru_head)
    remove_mem(c, c->lru_head);
  free(c->buckets);
  free(c->disk_dir);
  pthread_cond_destroy(&c->flight_done);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* Classifies e (may be NULL) at time now. */
tcache_state tc_state_of(const tcache *c, const struct entry *e, double now)
{
  if (!e)
    return TCACHE_MISS;
  bool fresh = is_fresh(c, e, now);
  if (!e->value)
    return fresh ? TCACHE_NEGATIVE : TCACHE_MISS;
  return fresh ? TCACHE_FRESH : TCACHE_STALE;
}

tcache_state tcache_state_of(tcache *c, const char *key)
{
  if (!c || !key)
    return TCACHE_MISS;
  pthread_mutex_lock(&c->mu);
  struct entry *e = find_ex(c, key, false);
  tcache_state st = tc_state_of(c, e, cliq_clock_real());
  tc_release(e);
  pthread_mutex_unlock(&c->mu);
  return st;
}

double tcache_age_of(tcache *c, const char *key)
{
  if (!c || !key)
    return -1;
  pthread_mutex_lock(&c->mu);
  struct entry *e = find_ex(c, key, false);
  double age = -1;
  if (e && tc_state_of(c, e, cliq_clock_real()) != TCACHE_MISS)
    age = cliq_clock_real() - e->fetched_at;
  tc_release(e);
  pthread_mutex_unlock(&c->mu);
  return age;
}

bool tcache_renew(tcache *c, const char *key, double ttl_s)
{
  if (!c || !key)
    return false;
  pthread_mutex_lock(&c->mu);
  struct entry *e = tc_find(c, key);
  double now = cliq_clock_real();
  json_t *v = NULL;
  bool renewed = false;
  if (e && e->value && tc_state_of(c, e, now) != TCACHE_MISS) {
    if (!e->detached) {
      /* In memory only: a file write per renewal would cost more than the
       * request it saves when a whole channel's logs are renewed at once. */
      e->fetched_at = now;
      e->ttl_s = ttl_s;
      renewed = true;
    } else {
      v = json_incref(e->value);
    }
  }
  tc_release(e);
  pthread_mutex_unlock(&c->mu);
  if (v) {
    tcache_put(c, key, v, ttl_s);
    renewed = true;
  }
  json_decref(v);
  return renewed;
}

tcache_state tcache_get(tcache *c, const char *key, json_t **value_out,
                        double *age_s)
{
  if (value_out)
    *value_out = NULL;
  if (age_s)
    *age_s = 0;
  if (!c || !key)
    return TCACHE_MISS;
  pthread_mutex_lock(&c->mu);
  struct entry *e = tc_find(c, key);
  double now = cliq_clock_real();
  tcache_state st = tc_state_of(c, e, now);
  if (st == TCACHE_FRESH || st == TCACHE_NEGATIVE)
    c->hits++;
  else
    c->misses++;
  if (e && st != TCACHE_MISS) {
    if (!e->detached)
      tc_touch(c, e);
    if (age_s)
      *age_s = now - e->fetched_at;
    if (value_out && e->value)
      *value_out = json_incref(e->value);
  }
  tc_release(e);
  pthread_mutex_unlock(&c->mu);
  return st;
}

char *tcache_disk_path(tcache *c, const char *key, const char *ext)
{
  if (!c || !key || !ext || strcmp(ext, "json") == 0)
    return NULL;
  return tc_disk_path(c, key, ext);
}

static void put_common(tcache *c, const char *key, json_t *value, double ttl_s)
{
  if (!c || !key)
    return;
  double now = cliq_clock_real();
  size_t len = 0;
  /* Serialize before taking the lock: it is the costly part (the writer
   * writes the file). */
  char *text = tc_make_record(key, value, now, ttl_s, &len);
  pthread_mutex_lock(&c->mu);
  if (text)
    tc_store_locked(c, key, value, now, ttl_s, text, len);
  else
    tc_remove_mem_key(c, key);
  pthread_mutex_unlock(&c->mu);
  tc_disk_backpressure(c);
}

void tcache_put(tcache *c, const char *key, json_t *value, double ttl_s)
{
  if (!value)
    return;
  put_common(c, key, value, ttl_s);
}

void tcache_put_negative(tcache *c, const char *key, double ttl_s)
{
  put_common(c, key, NULL, ttl_s);
}

void tcache_invalidate(tcache *c, const char *key)
{
  if (!c || !key)
    return;
  pthread_mutex_lock(&c->mu);
  tc_remove_mem_key(c, key);
  tc_disk_queue_locked(c, key, NULL, 0, NULL, 0, 0);
  pthread_mutex_unlock(&c->mu);
  tc_disk_backpressure(c);
}

void tcache_stats_get(tcache *c, tcache_stats *out)
{
  memset(out, 0, sizeof(*out));
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  double now = cliq_clock_real();
  out->entries = c->count;
  out->hits = c->hits;
  out->misses = c->misses;
  out->bytes = c->bytes;
  for (struct entry *e = c->lru_head; e; e = e->older)
    if (now - e->fetched_at > out->oldest_age_s)
      out->oldest_age_s = now - e->fetched_at;
  pthread_mutex_unlock(&c->mu);
}
