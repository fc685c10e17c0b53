/* cache/tcache_disk.c: the TTL cache's disk copy (tcache.c reads it back):
 * where a key's files are, the record written for it, and the writer.
 *
 * A store queues its record and returns: the cache's writer thread writes
 * it, so that no reader waits for a file to be written, neither under the
 * cache's lock nor in its own request (a disk copy only matters after a
 * restart).  The writer takes the jobs in the order they were queued; a
 * record queued for a key replaces the key's queued one (unless that one is
 * being written), so the disk ends up with the newest and the queue holds
 * each key at most twice.  Until a job has landed, a reader that needs the key's
 * disk copy takes the value from the newest queued job instead
 * (tc_disk_job_for).  The queue is bounded (TC_DISK_QUEUE_MAX bytes): past
 * it, a storer waits for the writer (tc_disk_backpressure) rather than let
 * memory grow with a slow disk.  tcache_free() lets the writer finish
 * what is queued.
 *
 * The same writer appends to a caller's own files beside the records (a
 * message log's JSONL: tcache_disk_append), in the same order, so that a
 * record queued after an append tells of bytes that have landed. */
#include "cache/tcache_i.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/statefile.h"

#define TC_DISK_QUEUE_MAX ((size_t)8 << 20)

char *tc_disk_path(const tcache *c, const char *key, const char *ext)
{
  if (!c->disk_dir)
    return NULL;
  char hex[65];
  statefile_digest(key, strlen(key), hex);
  hex[32] = '\0';
  char *path = NULL;
  if (asprintf(&path, "%s/%s.%s", c->disk_dir, hex, ext) < 0)
    return NULL;
  return path;
}

/* The serialized record; its length is also the entry's size estimate. */
char *tc_make_record(const char *key, json_t *value, double fetched_at,
                     double ttl_s, size_t *len)
{
  json_t *rec = json_object();
  if (!rec)
    return NULL;
  json_object_set_new(rec, "key", json_string(key));
  json_object_set_new(rec, "fetched_at", json_real(fetched_at));
  json_object_set_new(rec, "ttl", json_real(ttl_s));
  if (value)
    json_object_set(rec, "value", value);
  else
    json_object_set_new(rec, "negative", json_true());
  char *text = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(rec);
  if (text)
    *len = strlen(text);
  return text;
}

/* Writes key's disk copy (text NULL: removes it).  No lock needed: the
 * path depends on the key alone.  A failed write only costs a fetch after
 * the next restart. */
static void disk_put(const tcache *c, const char *key, const char *text,
                     size_t len)
{
  char *path = tc_disk_path(c, key, "json");
  if (!path)
    return;
  if (text)
    (void)statefile_replace(path, text, len);
  else
    unlink(path);
  free(path);
}

/* Writes n bytes at offset off of path (created 0600; cut to nothing first
 * when off is 0): 0 or -errno.  Not fsync'd: a cache can be fetched again,
 * and the caller's checksum tells a torn copy. */
static int write_at(const char *path, const char *data, size_t n, size_t off)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (off ? 0 : O_TRUNC),
                0600);
  if (fd < 0)
    return -errno;
  int r = 0;
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      r = w < 0 ? -errno : -EIO;
      break;
    }
    data += w;
    n -= (size_t)w;
    off += (size_t)w;
  }
  if (close(fd) < 0 && r == 0)
    r = -errno;
  return r;
}

static void job_free(struct disk_job *j)
{
  if (!j)
    return;
  free(j->key);
  free(j->text);
  free(j->path);
  json_decref(j->value);
  free(j);
}

const struct disk_job *tc_disk_job_for(const tcache *c, const char *key)
{
  const struct disk_job *last = NULL;
  for (const struct disk_job *j = c->jobs; j; j = j->next)
    if (j->key && strcmp(j->key, key) == 0)
      last = j;
  return last;
}

/* Puts j at the end of the queue and wakes the writer. */
static void job_enqueue_locked(tcache *c, struct disk_job *j)
{
  if (c->jobs_tail)
    c->jobs_tail->next = j;
  else
    c->jobs = j;
  c->jobs_tail = j;
  c->queued_bytes += j->len;
  pthread_cond_signal(&c->writer_wake);
}

/* Whether an append to path (NULL: any job) is queued or being written. */
static bool path_queued_locked(const tcache *c, const char *path)
{
  for (const struct disk_job *j = c->jobs; j; j = j->next)
    if (!path || (j->path && strcmp(j->path, path) == 0))
      return true;
  return false;
}

/* Waits while path_queued_locked(c, path) and the writer runs (c->mu
 * held). */
static void wait_written_locked(tcache *c, const char *path)
{
  while (path_queued_locked(c, path) && c->writer_running)
    pthread_cond_wait(&c->job_done, &c->mu);
}

static void wait_written(tcache *c, const char *path)
{
  pthread_mutex_lock(&c->mu);
  wait_written_locked(c, path);
  pthread_mutex_unlock(&c->mu);
}

void tc_disk_queue_locked(tcache *c, const char *key, char *text, size_t len,
                          json_t *value, double fetched_at, double ttl_s)
{
  if (!c->disk_dir) {
    free(text);
    return;
  }
  c->disk_gen++;
  struct disk_job *j = calloc(1, sizeof(*j));
  if (j)
    j->key = strdup(key);
  /* With a disk_dir the writer runs from tcache_new to tcache_free. */
  if (!j || !j->key) {
    /* Out of memory: the storer writes, under the lock, after what is
     * queued for the key. */
    free(j ? j->key : NULL);
    free(j);
    while (tc_disk_job_for(c, key))
      pthread_cond_wait(&c->job_done, &c->mu);
    disk_put(c, key, text, len);
    free(text);
    c->disk_gen++;
    return;
  }
  j->text = text;
  j->len = len;
  j->value = json_incref(value);
  j->fetched_at = fetched_at;
  j->ttl_s = ttl_s;
  /* The new record replaces the key's queued one, unless that one is
   * being written already: the queue holds a key at most twice. */
  struct disk_job *prev = NULL;
  for (struct disk_job *k = c->jobs; k; prev = k, k = k->next) {
    if (k == c->writing || !k->key || strcmp(k->key, key) != 0)
      continue;
    if (prev)
      prev->next = k->next;
    else
      c->jobs = k->next;
    if (c->jobs_tail == k)
      c->jobs_tail = prev;
    c->queued_bytes -= k->len;
    job_free(k);
    break;
  }
  job_enqueue_locked(c, j);
}

int tcache_disk_append(tcache *c, const char *path, const char *data,
                       size_t len, size_t off,
                       void (*landed)(void *arg, int rc), void *arg)
{
  struct disk_job *j = calloc(1, sizeof(*j));
  if (j) {
    j->path = strdup(path);
    j->text = malloc(len ? len : 1);
  }
  pthread_mutex_lock(&c->mu);
  if (!j || !j->path || !j->text || !c->writer_running) {
    /* Out of memory (or no writer): written here, after what is queued for
     * the file, as the writer would have. */
    job_free(j);
    wait_written_locked(c, path);
    int r = write_at(path, data, len, off);
    pthread_mutex_unlock(&c->mu);
    return r < 0 ? r : 1;
  }
  memcpy(j->text, data, len);
  j->len = len;
  j->off = off;
  j->landed = landed;
  j->landed_arg = arg;
  job_enqueue_locked(c, j);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void tcache_disk_settle(tcache *c, const char *path)
{
  if (path)
    wait_written(c, path);
}

void tcache_disk_flush(tcache *c)
{
  wait_written(c, NULL);
}

void tc_disk_backpressure(tcache *c)
{
  pthread_mutex_lock(&c->mu);
  while (c->queued_bytes > TC_DISK_QUEUE_MAX && c->writer_running)
    pthread_cond_wait(&c->job_done, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

static void *writer_main(void *arg)
{
  tcache *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->jobs && !c->writer_stop)
      pthread_cond_wait(&c->writer_wake, &c->mu);
    struct disk_job *j = c->jobs;
    if (!j)
      break;                  /* stopping, and all is written */
    /* j stays queued while it is written: readers take its value. */
    c->writing = j;
    pthread_mutex_unlock(&c->mu);
    if (c->before_disk_write)
      c->before_disk_write(c->before_disk_write_arg, j->key ? j->key : j->path);
    if (j->path) {
      int rc = write_at(j->path, j->text, j->len, j->off);
      /* Before the job leaves the queue: whoever settles or flushes finds
       * it told. */
      if (j->landed)
        j->landed(j->landed_arg, rc);
    } else {
      disk_put(c, j->key, j->text, j->len);
    }
    pthread_mutex_lock(&c->mu);
    c->writing = NULL;
    c->jobs = j->next;
    if (!c->jobs)
      c->jobs_tail = NULL;
    c->queued_bytes -= j->len;
    c->disk_gen++;
    pthread_cond_broadcast(&c->job_done);
    pthread_mutex_unlock(&c->mu);
    job_free(j);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int tc_disk_start(tcache *c)
{
  pthread_cond_init(&c->writer_wake, NULL);
  pthread_cond_init(&c->job_done, NULL);
  if (!c->disk_dir)
    return 0;
  int rc = pthread_create(&c->writer, NULL, writer_main, c);
  if (rc)
    return -rc;
  c->writer_running = true;
  return 0;
}

void tc_disk_stop(tcache *c)
{
  if (c->writer_running) {
    pthread_mutex_lock(&c->mu);
    c->writer_stop = true;
    pthread_cond_signal(&c->writer_wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->writer, NULL);
    c->writer_running = false;
  }
  pthread_cond_destroy(&c->job_done);
  pthread_cond_destroy(&c->writer_wake);
}
