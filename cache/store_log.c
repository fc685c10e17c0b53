/* cache/store_log.c: message logs: fetched in pages, kept in memory and on
 * disk, read at any offset. */
#include "cache/store_i.h"
#include <zlib.h>

/* ---- Message logs ---------------------------------------------------------------------- */

store_log *log_for(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  if (!log) {
    log = calloc(1, sizeof *log);
    if (log) {
      log->s = s;
      log->chat_id = strdup(chat_id);
      log->key = make_key("log", chat_id);
      log->disk_path = log->key ? tcache_disk_path(s->cache, log->key, "jsonl")
                                : NULL;
      log->disk_sum = crc32_z(0, Z_NULL, 0);
      pthread_mutex_init(&log->lock, NULL);
      if (!log->chat_id || !log->key ||
          smap_put(&s->logs, chat_id, log) < 0) {
        log_free(log);
        log = NULL;
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  return log;
}

store_log **logs_all_locked(store *s, size_t *n)
{
  store_log **all = malloc((s->logs.count ? s->logs.count : 1) * sizeof *all);
  *n = 0;
  for (size_t b = 0; all && b < s->logs.n_buckets; b++)
    for (struct smap_entry *e = s->logs.buckets[b]; e; e = e->next)
      all[(*n)++] = e->value;
  return all;
}

static bool batch_has_id(void *ctx, uint64_t ref, const char *id)
{
  struct log_batch *b = ctx;
  return strcmp(b->ids + b->items[ref].id_off, id) == 0;
}

static int dump_to_batch(const char *data, size_t n, void *ctx)
{
  struct log_batch *b = ctx;
  return buf_append(&b->jsonl, &b->jsonl_len, &b->jsonl_cap, data, n) < 0 ? -1
                                                                          : 0;
}

/* Adds a message unless its id is in the batch already.  Returns 1 when
 * added, 0 for a repeated id, -ENOMEM. */
static int log_batch_add(struct log_batch *b, const cliq_message *m)
{
  uint64_t h = idset_hash(m->id);
  if (idset_has(&b->seen, m->id, h, batch_has_id, b))
    return 0;
  if (idset_reserve(&b->seen, 1) < 0)
    return -ENOMEM;
  if (b->count == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 64;
    struct log_batch_item *ni = realloc(b->items, nc * sizeof *ni);
    if (!ni)
      return -ENOMEM;
    b->items = ni;
    b->cap = nc;
  }
  struct log_batch_item it = {
    .time_ms = m->time_ms, .hash = h, .id_off = b->ids_len,
    .jsonl_off = b->jsonl_len, .text_off = b->text_len,
  };
  int r = buf_append(&b->ids, &b->ids_len, &b->ids_cap, m->id,
                     strlen(m->id) + 1);
  /* messages.jsonl gives every time the same way, whatever Cliq sent (a
   * number, a numeric string, ISO 8601): "time" in epoch milliseconds and
   * "time_iso" in UTC.  The rest is Cliq's object as it came. */
  json_t *line = json_is_object(m->raw) ? json_copy(m->raw) : json_object();
  char iso[48];
  store_format_time(m->time_ms - m->time_ms % 1000, iso, sizeof iso);
  size_t il = strlen(iso);
  if (il > 0 && iso[il - 1] == 'Z')
    snprintf(iso + il - 1, sizeof iso - il + 1, ".%03dZ",
             (int)(m->time_ms % 1000));
  if (!line || json_object_set_new(line, "time", json_integer(m->time_ms)) < 0 ||
      json_object_set_new(line, "time_iso", json_string(iso)) < 0)
    r = -ENOMEM;
  if (r == 0 && json_dump_callback(line, dump_to_batch, b, JSON_COMPACT) < 0)
    r = -ENOMEM;
  json_decref(line);
  if (r == 0)
    r = buf_append_str(&b->jsonl, &b->jsonl_len, &b->jsonl_cap, "\n");
  if (r == 0)
    r = store_render_message(m, &b->text, &b->text_len, &b->text_cap);
  if (r < 0) {
    b->ids_len = it.id_off;       /* nothing half-added */
    b->jsonl_len = it.jsonl_off;
    b->text_len = it.text_off;
    return -ENOMEM;
  }
  it.jsonl_len = b->jsonl_len - it.jsonl_off;
  it.text_len = b->text_len - it.text_off;
  idset_add(&b->seen, h, b->count);
  b->items[b->count++] = it;
  return 1;
}

static int cmp_items(const void *a, const void *b, void *ids)
{
  const struct log_batch_item *x = a, *y = b;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  return strcmp((const char *)ids + x->id_off, (const char *)ids + y->id_off);
}

/* Log order: by time, then id. */
static void log_batch_sort(struct log_batch *b)
{
  if (b->count > 1)
    qsort_r(b->items, b->count, sizeof *b->items, cmp_items, b->ids);
}

/* Keeps the newest `keep` messages of a sorted batch. */
static void log_batch_keep_newest(struct log_batch *b, size_t keep)
{
  if (b->count <= keep)
    return;
  size_t drop = b->count - keep;
  memmove(b->items, b->items + drop, keep * sizeof *b->items);
  b->count = keep;
  /* seen still holds the dropped ones: the batch takes nothing more. */
}

static void log_batch_clear(struct log_batch *b)
{
  free(b->items);
  free(b->ids);
  free(b->jsonl);
  free(b->text);
  idset_free(&b->seen);
  memset(b, 0, sizeof *b);
}

/* Whether the JSONL line at offset off of the log is message id's (lock
 * held).  Runs only when the hashes match: parsing one line is cheap. */
/* Parses the log's JSONL line at off (lock held): 0 with *m filled (the
 * caller clears it), or -1. */
int log_line_message(const store_log *log, uint64_t off, cliq_message *m)
{
  const char *line = log->jsonl + off;
  size_t rest = log->jsonl_len - (size_t)off;
  const char *nl = memchr(line, '\n', rest);
  json_t *raw = json_loadb(line, nl ? (size_t)(nl - line) : rest, 0, NULL);
  int r = raw ? cliq_parse_message(raw, m, NULL) : -1;
  json_decref(raw);
  return r < 0 ? -1 : 0;
}

static bool log_line_has_id(void *ctx, uint64_t off, const char *id)
{
  cliq_message m;
  if (log_line_message(ctx, off, &m) < 0)
    return false;
  bool same = strcmp(m.id, id) == 0;
  cliq_message_clear(&m);
  return same;
}

/* Grows a log's buffer to `need` bytes: exactly the first time (a first
 * fetch or a load knows its size), then by at least a sixteenth (a log
 * following a thread grows a few messages at a time). */
static int log_buf_reserve(char **buf, size_t *cap, size_t need)
{
  if (need <= *cap)
    return 0;
  size_t want = need;
  if (*cap) {
    size_t step = *cap / 16 > 256 ? *cap / 16 : 256;
    if (want < *cap + step)
      want = *cap + step;
  }
  char *nb = realloc(*buf, want);
  if (!nb)
    return -ENOMEM;
  *buf = nb;
  *cap = want;
  return 0;
}

/* Appends a batch's messages whose ids the log has not got, in the batch's
 * order (lock held): all of them, or none and -ENOMEM.  Returns how many. */
static int log_append_batch_locked(store_log *log, struct log_batch *b,
                                   bool from_server)
{
  size_t added = 0, jsonl_more = 0, text_more = 0;
  for (size_t i = 0; i < b->count; i++) {
    struct log_batch_item *it = &b->items[i];
    it->dup = idset_has(&log->ids, b->ids + it->id_off, it->hash,
                         log_line_has_id, log);
    if (!it->dup) {
      added++;
      jsonl_more += it->jsonl_len;
      text_more += it->text_len;
    }
  }
  if (added == 0)
    return 0;
  if (log->jsonl_len + jsonl_more > IDSET_REF_MAX || added > INT_MAX ||
      idset_reserve(&log->ids, added) < 0 ||
      log_buf_reserve(&log->jsonl, &log->jsonl_cap,
                      log->jsonl_len + jsonl_more + 1) < 0 ||
      log_buf_reserve(&log->text, &log->text_cap,
                      log->text_len + text_more + 1) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < b->count; i++) {
    const struct log_batch_item *it = &b->items[i];
    if (it->dup)
      continue;
    idset_add(&log->ids, it->hash, log->jsonl_len);
    memcpy(log->jsonl + log->jsonl_len, b->jsonl + it->jsonl_off, it->jsonl_len);
    log->jsonl_len += it->jsonl_len;
    memcpy(log->text + log->text_len, b->text + it->text_off, it->text_len);
    log->text_len += it->text_len;
    if (it->time_ms > log->last_ms)
      log->last_ms = it->time_ms;
    if (from_server && it->time_ms > log->cursor_ms)
      log->cursor_ms = it->time_ms;
  }
  log->jsonl[log->jsonl_len] = '\0';
  log->text[log->text_len] = '\0';
  return (int)added;
}

/* Appends one parsed message to the log (lock held).  Returns 1 when added,
 * 0 when its id was already there, -ENOMEM. */
int log_append_locked(store_log *log, const cliq_message *m,
                             bool from_server)
{
  struct log_batch b = { 0 };
  int r = log_batch_add(&b, m);
  if (r > 0)
    r = log_append_batch_locked(log, &b, from_server);
  log_batch_clear(&b);
  return r < 0 ? -ENOMEM : r > 0 ? 1 : 0;
}

static uint64_t sum_more(uint64_t sum, const char *p, size_t n)
{
  return crc32_z((uLong)sum, (const Bytef *)p, n);
}

/* The cache's writer wrote (or failed to write) an append of log's copy. */
static void log_append_landed(void *arg, int rc)
{
  store_log *log = arg;
  if (rc < 0)
    __atomic_store_n(&log->disk_failed, true, __ATOMIC_SEQ_CST);
  __atomic_sub_fetch(&log->disk_queued, 1, __ATOMIC_SEQ_CST);
}

/* Queues what the disk copy lacks for the cache's writer and returns the
 * record telling of it (see store_i.h).  Out of memory the bytes are
 * written here (tcache_disk_append); if that fails, the record tells the
 * older copy, with the cursor of its time. */
json_t *log_persistent_locked(store_log *log)
{
  if (__atomic_exchange_n(&log->disk_failed, false, __ATOMIC_SEQ_CST)) {
    log->disk_len = 0;
    log->disk_sum = crc32_z(0, Z_NULL, 0);
  }
  if (log->disk_path && log->disk_len < log->jsonl_len) {
    size_t n = log->jsonl_len - log->disk_len;
    __atomic_add_fetch(&log->disk_queued, 1, __ATOMIC_SEQ_CST);
    int r = tcache_disk_append(log->s->cache, log->disk_path,
                               log->jsonl + log->disk_len, n, log->disk_len,
                               log_append_landed, log);
    if (r != 0)
      __atomic_sub_fetch(&log->disk_queued, 1, __ATOMIC_SEQ_CST);
    if (r >= 0) {
      log->disk_sum = sum_more(log->disk_sum, log->jsonl + log->disk_len, n);
      log->disk_len = log->jsonl_len;
    }
  }
  /* The cursor moves only with messages appended: all on disk, it is current. */
  if (log->disk_len == log->jsonl_len)
    log->disk_cursor_ms = log->cursor_ms;
  char sum[17];
  snprintf(sum, sizeof sum, "%016" PRIx64, log->disk_sum);
  json_t *rec = json_pack("{s:I, s:I, s:s}", "cursor_ms",
                          (json_int_t)log->disk_cursor_ms, "jsonl_bytes",
                          (json_int_t)log->disk_len, "jsonl_crc32", sum);
  /* The whole log on disk: what a look needs without loading it (log_peek). */
  if (rec && log->disk_len == log->jsonl_len) {
    json_object_set_new(rec, "text_bytes", json_integer((json_int_t)log->text_len));
    json_object_set_new(rec, "count", json_integer((json_int_t)log->ids.count));
    json_object_set_new(rec, "last_ms", json_integer((json_int_t)log->last_ms));
  }
  return rec;
}


static void batch_add_raw(struct log_batch *b, json_t *raw)
{
  cliq_message m;
  if (cliq_parse_message(raw, &m, NULL) < 0)
    return;
  (void)log_batch_add(b, &m);   /* out of memory: a shorter log, fetched again */
  cliq_message_clear(&m);
}

static void batch_add_jsonl(struct log_batch *b, const char *p, size_t len)
{
  const char *end = p + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    json_t *raw = n ? json_loadb(p, n, 0, NULL) : NULL;
    if (raw)
      batch_add_raw(b, raw);
    json_decref(raw);
    p += n + 1;
  }
}

/* The disk copy a record tells of, checked against its length and checksum:
 * 0, or -ENOENT (missing, shorter, another content: a torn write, another
 * process on the folder). */
static int disk_copy_read(const store_log *log, json_t *v, struct disk_copy *dc)
{
  json_int_t len = json_integer_value(json_object_get(v, "jsonl_bytes"));
  const char *hex = json_string_value(json_object_get(v, "jsonl_crc32"));
  char *end = NULL;
  uint64_t sum = hex ? strtoull(hex, &end, 16) : 0;
  /* 0 bytes: nothing could be written (or nothing was there): fetch again
   * rather than serve a known, empty log. */
  if (len <= 0 || (uint64_t)len >= SIZE_MAX || !hex || !*hex || *end)
    return -ENOENT;
  size_t n = (size_t)len;
  char *buf = NULL;
  size_t got = 0;
  if (!log->disk_path)
    return -ENOENT;
  /* What this process appended may still be on its way to the file. */
  tcache_disk_settle(log->s->cache, log->disk_path);
  if (statefile_read(log->disk_path, &buf, &got) < 0)
    return -ENOENT;
  if (got < n || sum_more(crc32_z(0, Z_NULL, 0), buf, n) != sum) {
    free(buf);
    return -ENOENT;
  }
  dc->buf = buf;
  dc->len = n;
  dc->sum = sum;
  dc->present = true;
  return 0;
}

/* The messages of a log's record, in log order: in the disk copy it tells
 * of; caches written before the disk copies hold them inline, as "jsonl" or
 * (before the JSONL form) as a "messages" array.  0 or -ENOENT. */
static int log_batch_of_persisted(const store_log *log, struct log_batch *b,
                                  json_t *v, struct disk_copy *dc)
{
  if (json_object_get(v, "jsonl_bytes")) {
    int r = disk_copy_read(log, v, dc);
    if (r == 0)
      batch_add_jsonl(b, dc->buf, dc->len);
    return r;
  }
  json_t *jsonl = json_object_get(v, "jsonl");
  if (json_is_string(jsonl))
    batch_add_jsonl(b, json_string_value(jsonl), json_string_length(jsonl));
  size_t i;
  json_t *raw;
  json_array_foreach(json_object_get(v, "messages"), i, raw)
    batch_add_raw(b, raw);
  return 0;
}

/* Loads a persisted log into an empty in-memory log (lock held). */
static void log_load_locked(store_log *log, struct log_batch *b, json_t *v,
                            const struct disk_copy *dc)
{
  (void)log_append_batch_locked(log, b, false);
  json_int_t cursor = json_integer_value(json_object_get(v, "cursor_ms"));
  log->cursor_ms = cursor > 0 ? cursor : log->last_ms;
  log->known = true;
  /* The disk copy goes on being appended to if the log is its bytes exactly
   * (else the next write starts it anew). */
  if (dc->present && log->jsonl_len == dc->len &&
      (dc->len == 0 || memcmp(log->jsonl, dc->buf, dc->len) == 0)) {
    log->disk_len = dc->len;
    log->disk_sum = dc->sum;
    log->disk_cursor_ms = log->cursor_ms;
  }
}

/* Takes a page into the batch; *added: how many were new to it. */
static int batch_take(struct log_batch *b, cliq_message_list *page,
                      size_t *added)
{
  *added = 0;
  for (size_t i = 0; i < page->count; i++) {
    int r = log_batch_add(b, &page->items[i]);
    if (r < 0)
      return r;
    *added += (size_t)r;
  }
  return 0;
}

static void log_report_skipped(store *s, store_log *log,
                               const cliq_message_list *page)
{
  if (!page->skipped)
    return;
  char what[160];
  snprintf(what, sizeof what, "messages of %s", log->chat_id);
  report_skipped(s, what, page->skipped, page->skipped_why);
}

static int fetch_log(void *vctx, const char *key, json_t **out,
                     cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  store_log *log = ctx->log;
  store *s = ctx->s;
  ctx->fetched = true;

  pthread_mutex_lock(&log->lock);
  bool known = log->known;
  int64_t cursor = log->cursor_ms;
  pthread_mutex_unlock(&log->lock);

  struct log_batch batch = { 0 };
  int r = 0;
  if (!known) {
    /* First fetch: the most recent `history` messages, going back in pages.
     * totime is inclusive, so the next page ends just before the oldest one
     * seen (ids are de-duplicated all the same). */
    int64_t totime = 0;
    int max_pages = s->history / 100 + 2;
    for (int page_no = 0; (int)batch.count < s->history && page_no < max_pages;
         page_no++) {
      int want = s->history - (int)batch.count;
      int limit = want > 100 ? 100 : want;
      cliq_message_list page = { 0 };
      r = cliq_get_messages(s->client, ctx->prio, log->chat_id, 0, totime,
                            limit, &page, err);
      if (r < 0)
        goto out;
      log_report_skipped(s, log, &page);
      /* Entries left out still count for where the pages end. */
      size_t got = page.count + page.skipped, added = 0;
      int64_t oldest = page.count ? page.items[0].time_ms : 0;
      for (size_t i = 0; i < page.count; i++)
        if (page.items[i].time_ms < oldest)
          oldest = page.items[i].time_ms;
      self_spot(s, log->chat_id, page.items, page.count);
      r = batch_take(&batch, &page, &added);
      cliq_message_list_clear(&page);
      if (r < 0) {
        cliq_fail(err, ENOMEM, "out of memory");
        goto out;
      }
      if ((int)got < limit || added == 0 || oldest <= 1)
        break;
      totime = oldest - 1;
    }
    log_batch_sort(&batch);
    log_batch_keep_newest(&batch, (size_t)s->history);
  } else {
    /* Later: what came since the newest time the server showed us. */
    int64_t from = cursor;
    for (int page_no = 0; page_no < 20; page_no++) {
      cliq_message_list page = { 0 };
      r = cliq_get_messages(s->client, ctx->prio, log->chat_id, from, 0, 100,
                            &page, err);
      if (r < 0)
        goto out;
      log_report_skipped(s, log, &page);
      size_t got = page.count + page.skipped, added = 0;
      int64_t newest = from;
      for (size_t i = 0; i < page.count; i++)
        if (page.items[i].time_ms > newest)
          newest = page.items[i].time_ms;
      self_spot(s, log->chat_id, page.items, page.count);
      r = batch_take(&batch, &page, &added);
      cliq_message_list_clear(&page);
      if (r < 0) {
        cliq_fail(err, ENOMEM, "out of memory");
        goto out;
      }
      if (got < 100 || added == 0 || newest <= from)
        break;
      from = newest;
    }
    log_batch_sort(&batch);
  }

  pthread_mutex_lock(&log->lock);
  size_t before = log->text_len;
  if (log_append_batch_locked(log, &batch, true) < 0)
    r = cliq_fail(err, ENOMEM, "out of memory");
  log->known = true;
  if (log->text_len != before)
    ctx->grew = true;
  *out = log_persistent_locked(log);
  log->fetched_at = cliq_clock_real();
  pthread_mutex_unlock(&log->lock);
  if (r == 0 && !*out)
    r = cliq_fail(err, ENOMEM, "out of memory");
out:
  log_batch_clear(&batch);
  if (r < 0) {
    pthread_mutex_lock(&log->lock);
    log->fetched_at = cliq_clock_real();
    pthread_mutex_unlock(&log->lock);
  }
  return r;
}

/* Loads the disk copy once.  It happens under the log's lock, so that a
 * second opener waits for it instead of finding the log neither loaded nor
 * fetched (tcache_fetch would see the fresh record and fetch nothing). */
void log_try_disk(store *s, store_log *log, bool again)
{
  pthread_mutex_lock(&log->lock);
  bool need = !log->known && (again || !log->disk_tried);
  log->disk_tried = true;
  if (!need) {
    pthread_mutex_unlock(&log->lock);
    return;
  }
  json_t *v = NULL;
  double age = 0;
  tcache_state st = tcache_get(s->cache, log->key, &v, &age);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    struct log_batch batch = { 0 };
    struct disk_copy dc = { 0 };
    if (log_batch_of_persisted(log, &batch, v, &dc) == 0) {
      log_load_locked(log, &batch, v, &dc);
      log->fetched_at = cliq_clock_real() - age;
    } else {
      /* A record without its messages: however fresh, the log is fetched. */
      tcache_invalidate(s->cache, log->key);
    }
    free(dc.buf);
    log_batch_clear(&batch);
  }
  /* An evicted log whose copy is gone is fetched anew, like a new one. */
  log->evicted = false;
  log->used_at = cliq_clock_mono();
  pthread_mutex_unlock(&log->lock);
  json_decref(v);
}


void log_load_evicted(store *s, store_log *log)
{
  pthread_mutex_lock(&log->lock);
  bool evicted = log->evicted;
  log->used_at = cliq_clock_mono();
  pthread_mutex_unlock(&log->lock);
  if (evicted)
    log_try_disk(s, log, false);
}

int log_refresh(store *s, store_log *log, enum cliq_priority prio,
                       double max_age_s, cliq_error *err)
{
  struct fetch_ctx ctx = { .s = s, .arg = log->chat_id, .prio = prio,
                           .log = log, .inner = fetch_log,
                           .api = CLIQ_API_CHATS_MESSAGES };
  pthread_mutex_lock(&log->lock);
  log->busy++;
  pthread_mutex_unlock(&log->lock);
  /* New messages go after the ones on disk, never into an empty log. */
  log_load_evicted(s, log);
  json_t *v = NULL;
  int r = tcache_fetch_younger(s->cache, log->key, max_age_s,
                               ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES),
                               fetch_retrying, &ctx, &v, err);
  json_decref(v);
  pthread_mutex_lock(&log->lock);
  log->busy--;
  log->used_at = cliq_clock_mono();
  pthread_mutex_unlock(&log->lock);
  if (r == 0 && !ctx.fetched)
    clear_err(err);
  if (ctx.grew && s->log_grew)
    s->log_grew(s->cb_ctx, log->chat_id);
  return r;
}

int store_log_get(store *s, const char *chat_id, enum store_mode mode,
                  store_log **out, cliq_error *err)
{
  clear_err(err);
  store_log *log = log_for(s, chat_id);
  *out = log;
  if (!log)
    return cliq_fail(err, ENOMEM, "out of memory");
  pthread_mutex_lock(&log->lock);
  log->used_at = cliq_clock_mono();
  bool evicted = log->evicted;
  pthread_mutex_unlock(&log->lock);
  /* A look (stat) at an evicted log needs only what it kept; an open loads
   * its messages. */
  if (mode == STORE_FETCH || !evicted)
    log_try_disk(s, log, false);
  if (mode != STORE_FETCH)
    return store_log_known(log) ? 0 : -ENODATA;
  /* Our first post is not in the log until Cliq shows it (and who we are):
   * asked at once, once (if this fetch does not show it, e.g. a refresh took
   * it in before the probe was set, the next post tries again). */
  bool probe = self_probe_pending(s, chat_id);
  /* A log with content is served at once: when its API cannot be asked now,
   * the copy we have, and the refresher fetches it once it can.  Only a read
   * with nothing to show waits. */
  bool known = store_log_known(log);
  enum patience was = patience_swap(known ? PATIENCE_NONE : patience_none()
                                                ? PATIENCE_NONE
                                                : PATIENCE_WAIT);
  /* Nothing known after the disk copy was tried: the log is fetched even if
   * a record has appeared meanwhile (another mount sharing the cache wrote
   * it after we looked; taken as fresh, it would leave this log empty). */
  int r = log_refresh(s, log, CLIQ_PRIO_READ, probe || !known ? 0 : -1, err);
  patience_swap(was);
  /* Still nothing after a refresh that succeeded: what came back was a
   * record another mount sharing the cache stored meanwhile, not a fetch of
   * ours; its disk copy has the messages. */
  if (r == 0 && !store_log_known(log))
    log_try_disk(s, log, true);
  if (probe && r == 0 && !(err && err->err))
    self_probe_drop(s, chat_id);
  if (known && (r < 0 || (err && err->err))) {
    pthread_mutex_lock(&log->lock);
    log->wanted = true;
    pthread_mutex_unlock(&log->lock);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    clear_err(err);
    r = 0;                        /* served from what we have, however old */
  } else if (r < 0 && store_log_known(log)) {
    r = 0;
  }
  return r;
}

bool store_log_known(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  bool k = log_has_content_locked(log);
  pthread_mutex_unlock(&log->lock);
  return k;
}

size_t store_log_size(store_log *log, enum store_log_form form)
{
  pthread_mutex_lock(&log->lock);
  size_t n;
  if (log->evicted)
    n = form == STORE_LOG_JSONL ? log->kept_jsonl_len : log->kept_text_len;
  else
    n = form == STORE_LOG_JSONL ? log->jsonl_len : log->text_len;
  pthread_mutex_unlock(&log->lock);
  return n;
}

int64_t store_log_last_ms(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  int64_t t = log->last_ms;
  pthread_mutex_unlock(&log->lock);
  return t;
}

size_t store_log_read(store_log *log, enum store_log_form form, off_t off,
                      char *buf, size_t len)
{
  log_load_evicted(log->s, log);
  pthread_mutex_lock(&log->lock);
  const char *src = form == STORE_LOG_JSONL ? log->jsonl : log->text;
  size_t size = form == STORE_LOG_JSONL ? log->jsonl_len : log->text_len;
  size_t n = 0;
  if (off >= 0 && (size_t)off < size) {
    n = size - (size_t)off;
    if (n > len)
      n = len;
    memcpy(buf, src + off, n);
  }
  pthread_mutex_unlock(&log->lock);
  return n;
}

/* The refresher is not woken: the open has just made the log as fresh as
 * its lifetime asks (store_log_get), so nothing of it is due before the
 * refresher's next tick, which takes the new reader in.  A wake per open
 * cost every `cat` of a messages file a round of the refresher and of the
 * syncer (they wait on the same condition) beside it. */
void store_log_open_reader(store_log *log)
{
  log_load_evicted(log->s, log);
  pthread_mutex_lock(&log->lock);
  log->readers++;
  pthread_mutex_unlock(&log->lock);
}

void store_log_close_reader(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  if (log->readers > 0)
    log->readers--;
  pthread_mutex_unlock(&log->lock);
}

void log_confirm(store *s, store_log *log, double ttl_s)
{
  if (ttl_s <= 0 || !tcache_renew(s->cache, log->key, ttl_s))
    return;
  pthread_mutex_lock(&log->lock);
  log->fetched_at = cliq_clock_real();
  pthread_mutex_unlock(&log->lock);
}
