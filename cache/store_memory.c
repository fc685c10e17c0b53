/* cache/store_memory.c: the memory bound on message logs.  Logs are kept in
 * memory while in use; an idle one whose disk copy holds every message is
 * evicted, least recently used first, once the resident messages pass the
 * budget, so that syncing or reading an organization of any size takes
 * bounded memory.  An evicted log keeps what stat and sync need (sizes,
 * newest times, the message count); opening it, reading it or fetching into
 * it loads the disk copy again (cache/store_log.c log_load_evicted). */
#include "cache/store_i.h"

#include <malloc.h>
#include <sys/stat.h>
#include <zlib.h>

/* Resident bytes of a log's messages (lock held). */
static size_t log_resident_bytes_locked(const store_log *log)
{
  return log->text_cap + log->jsonl_cap + log->ids.cap * sizeof *log->ids.slots;
}

/* Drops an idle log's messages from memory when its disk copy holds them
 * all, written (lock held): the bytes freed, 0 when it may not. */
static size_t log_unload_locked(store_log *log, double now_mono, double idle_s)
{
  if (!log->known || log->evicted || log->readers > 0 || log->busy > 0 ||
      log->wanted || !log->disk_path || log->disk_len != log->jsonl_len ||
      __atomic_load_n(&log->disk_queued, __ATOMIC_SEQ_CST) > 0 ||
      __atomic_load_n(&log->disk_failed, __ATOMIC_SEQ_CST) ||
      now_mono - log->used_at < idle_s)
    return 0;
  size_t freed = log_resident_bytes_locked(log);
  log->kept_text_len = log->text_len;
  log->kept_jsonl_len = log->jsonl_len;
  log->kept_count = log->ids.count;
  idset_free(&log->ids);
  memset(&log->ids, 0, sizeof log->ids);
  free(log->text);
  free(log->jsonl);
  log->text = log->jsonl = NULL;
  log->text_len = log->text_cap = 0;
  log->jsonl_len = log->jsonl_cap = 0;
  /* As a log that was never loaded: the disk copy is read again, and the
   * copy's bookkeeping starts from it. */
  log->known = false;
  log->disk_tried = false;
  log->disk_len = 0;
  log->disk_sum = crc32_z(0, Z_NULL, 0);
  log->disk_cursor_ms = 0;
  log->evicted = true;
  return freed;
}

struct trim_candidate {
  store_log *log;
  double used_at;
};

static int by_use(const void *a, const void *b)
{
  const struct trim_candidate *x = a, *y = b;
  return x->used_at < y->used_at ? -1 : x->used_at > y->used_at;
}

/* A log must have been idle this long (seconds) to be evicted: a caller
 * between store_log_get() and its use of the log is never that slow. */
#define LOG_IDLE_S 2.0

void store_logs_trim(store_log *const *all, size_t k, size_t budget)
{
  struct trim_candidate *c = malloc((k ? k : 1) * sizeof *c);
  if (!c)
    return;
  size_t total = 0;
  for (size_t i = 0; i < k; i++) {
    c[i].log = all[i];
    pthread_mutex_lock(&c[i].log->lock);
    total += log_resident_bytes_locked(c[i].log);
    c[i].used_at = c[i].log->used_at;
    pthread_mutex_unlock(&c[i].log->lock);
  }
  if (total <= budget) {
    free(c);
    return;
  }
  qsort(c, k, sizeof *c, by_use);
  double now = cliq_clock_mono();
  size_t freed = 0;
  for (size_t i = 0; i < k && total > budget; i++) {
    pthread_mutex_lock(&c[i].log->lock);
    size_t f = log_unload_locked(c[i].log, now, LOG_IDLE_S);
    pthread_mutex_unlock(&c[i].log->lock);
    total -= f < total ? f : total;
    freed += f;
  }
  free(c);
  /* Many small buffers return to the system only when asked. */
  if (freed > (1u << 20))
    malloc_trim(0);
}

void store_memory_stats_get(store *s, store_memory_stats *out)
{
  memset(out, 0, sizeof *out);
  out->budget = STORE_LOG_MEMORY;
  pthread_mutex_lock(&s->lock);
  size_t k = 0;
  store_log **all = logs_all_locked(s, &k);
  pthread_mutex_unlock(&s->lock);
  if (!all)
    return;
  out->logs = k;
  for (size_t i = 0; i < k; i++) {
    pthread_mutex_lock(&all[i]->lock);
    out->resident += log_resident_bytes_locked(all[i]);
    out->evicted += all[i]->evicted;
    pthread_mutex_unlock(&all[i]->lock);
  }
  free(all);
}

/* A never loaded log whose record tells all a look needs (sizes, count,
 * times) becomes an evicted log at once, its disk copy read only when it is
 * opened: a warm remount's sync looks at every log without loading them all
 * (lock not held).  false when the record cannot tell. */
static bool log_from_record(store *s, store_log *log)
{
  json_t *v = NULL;
  double age = 0;
  tcache_state st = tcache_get(s->cache, log->key, &v, &age);
  bool done = false;
  json_t *tb = json_object_get(v, "text_bytes");
  json_t *jb = json_object_get(v, "jsonl_bytes");
  json_t *cnt = json_object_get(v, "count");
  json_t *cur = json_object_get(v, "cursor_ms");
  json_t *last = json_object_get(v, "last_ms");
  struct stat sb;
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && json_is_integer(tb) &&
      json_is_integer(jb) && json_is_integer(cnt) && json_is_integer(cur) &&
      json_is_integer(last) && json_integer_value(jb) > 0 && log->disk_path &&
      stat(log->disk_path, &sb) == 0 && sb.st_size >= json_integer_value(jb)) {
    pthread_mutex_lock(&log->lock);
    if (!log->known && !log->evicted && !log->disk_tried) {
      log->evicted = true;
      log->kept_text_len = (size_t)json_integer_value(tb);
      log->kept_jsonl_len = (size_t)json_integer_value(jb);
      log->kept_count = (size_t)json_integer_value(cnt);
      log->cursor_ms = json_integer_value(cur);
      log->last_ms = json_integer_value(last);
      log->fetched_at = cliq_clock_real() - age;
    }
    done = log_has_content_locked(log);
    pthread_mutex_unlock(&log->lock);
  }
  json_decref(v);
  return done;
}

store_log *log_peek(store *s, const char *chat_id)
{
  store_log *log = log_for(s, chat_id);
  if (!log)
    return NULL;
  pthread_mutex_lock(&log->lock);
  bool first = !log->known && !log->evicted && !log->disk_tried;
  pthread_mutex_unlock(&log->lock);
  if (first && !log_from_record(s, log))
    log_try_disk(s, log, false);
  return log;
}
