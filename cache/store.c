/* cache/store.c: the store itself (creation, start, shutdown) and the
 * plumbing every cached fetch goes through. */
#include "cache/store_i.h"


/* ---- The store -------------------------------------------------------------- */

double ttl_for(store *s, double ttl, enum cliq_api api)
{
  /* Freshness stretches when the budget is contended: up to 4x at full use. */
  if (s->gov) {
    double p = gov_pressure(s->gov, api);
    if (p > 0.5)
      ttl *= 1.0 + 6.0 * (p - 0.5);
  }
  return ttl;
}

double store_follow_tick(store *s)
{
  double tick = 1.0 / s->scale;
  if (tick > 1.0)
    tick = 1.0;
  return tick < 0.05 ? 0.05 : tick;
}

double store_tick(store *s)
{
  double tick = STORE_TTL_LOG / s->scale / 4;
  if (tick > 1.0)
    tick = 1.0;
  return tick < 0.05 ? 0.05 : tick;
}

static void on_stalled(void *ctx, const outbox_entry *e, const cliq_error *err)
{
  (void)e;
  store *s = ctx;
  if (s->delivery_stalled)
    s->delivery_stalled(s->cb_ctx, err);
}

store *store_new(const store_options *o, cliq_error *err)
{
  clear_err(err);
  store *s = calloc(1, sizeof *s);
  if (!s) {
    cliq_fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  s->client = o->client;
  s->gov = o->gov;
  s->cache = o->cache;
  s->history = o->history > 0 ? o->history : 100;
  s->sync = o->sync;
  s->sync_share = o->sync_share >= 1 && o->sync_share <= 100 ? o->sync_share
                                                             : STORE_SYNC_SHARE;
  s->sync_stats.mode = o->sync;
  s->sync_stats.eta_s = -1;
  s->sync_stats.share = s->sync_share;
  s->scale = o->time_scale > 0 ? o->time_scale : 1.0;
  s->max_wait_s = o->max_wait_s > 0 ? o->max_wait_s : 60.0;
  s->log_grew = o->log_grew;
  s->threads_changed = o->threads_changed;
  s->drafts_changed = o->drafts_changed;
  s->write_failed = o->write_failed;
  s->entries_skipped = o->entries_skipped;
  s->delivery_stalled = o->delivery_stalled;
  s->cb_ctx = o->cb_ctx;
  s->drafts = json_object();
  if (!s->drafts) {
    free(s);
    cliq_fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->fail_lock, NULL);
  cliq_clock_cond_init(&s->wake);
  if (o->state_dir) {
    s->ob = outbox_open(o->state_dir, err);
    if (!s->ob)
      goto fail;
    if (s->client) {
      delivery_hooks hooks = {
        .delivered = on_delivered,
        .thread_created = on_thread_created,
        .failed = on_failed,
        .stalled = on_stalled,
        .ctx = s,
      };
      /* An outcome lost with a request is checked once that request cannot
       * still land: the client's timeout after the attempt ended.
       * time_scale compresses it like every other wait, to no less than 2 s
       * (a server a little slow to land what the client gave up on). */
      double timeout = o->request_timeout_s > 0 ? o->request_timeout_s : 30.0;
      double settle = timeout / s->scale;
      if (settle < 2.0)
        settle = 2.0;
      delivery_options dopts = {
        .time_scale = s->scale,
        .settle_s = settle,
        .poll_s = 1.0,
      };
      s->dl = delivery_new(s->ob, s->client, &hooks, &dopts);
      if (!s->dl) {
        cliq_fail(err, ENOMEM, "out of memory");
        goto fail;
      }
    }
  }
  return s;
fail:
  outbox_close(s->ob);
  json_decref(s->drafts);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->fail_lock);
  pthread_mutex_destroy(&s->lock);
  free(s);
  return NULL;
}

static void channels_free(store_channels *c)
{
  for (size_t i = 0; i < c->count; i++) {
    store_channel *ch = &c->items[i];
    free(ch->channel_id);
    free(ch->chat_id);
    free(ch->unique_name);
    free(ch->name);
    json_decref(ch->raw);
  }
  free(c->items);
  free(c);
}

void store_channels_unref(store_channels *c)
{
  if (c && __atomic_sub_fetch(&c->refs_, 1, __ATOMIC_ACQ_REL) == 0)
    channels_free(c);
}

void store_thread_clear(store_thread *t)
{
  if (!t)
    return;
  free(t->chat_id);
  free(t->parent_chat_id);
  free(t->thread_message_id);
  free(t->title);
  json_decref(t->raw);
  memset(t, 0, sizeof *t);
}

static void threads_free(store_threads *t)
{
  for (size_t i = 0; i < t->count; i++)
    store_thread_clear(&t->items[i]);
  free(t->items);
  free(t);
}

void store_threads_unref(store_threads *t)
{
  if (t && __atomic_sub_fetch(&t->refs_, 1, __ATOMIC_ACQ_REL) == 0)
    threads_free(t);
}

static void slot_free(void *p)
{
  struct threads_slot *slot = p;
  json_decref(slot->src);
  store_threads_unref(slot->snap);
  free(slot);
}

void log_free(void *p)
{
  store_log *log = p;
  free(log->chat_id);
  free(log->key);
  free(log->disk_path);
  idset_free(&log->ids);
  free(log->text);
  free(log->jsonl);
  pthread_mutex_destroy(&log->lock);
  free(log);
}

static void follow_info_free(void *p)
{
  struct follow_info *fi = p;
  if (fi) {
    free(fi->channel_id);
    free(fi->parent_chat_id);
    free(fi->parent_msg_id);
  }
  free(fi);
}

void store_free(store *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->lock);
  s->stopping = true;
  pthread_cond_broadcast(&s->wake);
  bool running = s->refresher_running;
  bool syncing = s->syncer_running;
  pthread_mutex_unlock(&s->lock);
  if (running)
    pthread_join(s->refresher, NULL);
  if (syncing)
    pthread_join(s->syncer, NULL);
  /* The workers' hooks use everything below: they stop first. */
  if (s->ob)
    outbox_shutdown(s->ob);
  delivery_free(s->dl);
  s->dl = NULL;
  outbox_close(s->ob);
  s->ob = NULL;
  json_decref(s->channels_src);
  store_channels_unref(s->channels);
  smap_free(&s->threads, slot_free);
  /* The cache's writer tells the logs when their appends land. */
  if (s->cache)
    tcache_disk_flush(s->cache);
  smap_free(&s->logs, log_free);
  smap_free(&s->follow, follow_info_free);
  smap_free(&s->skips, free);
  json_decref(s->drafts);
  free(s->self_id);
  free(s->self_name);
  free(s->probe_chat);
  free(s->probe_msg);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->fail_lock);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

void store_shutdown(store *s)
{
  if (s && s->ob)
    outbox_shutdown(s->ob);
}

/* ---- Fetch plumbing ---------------------------------------------------------- */

#define READ_RETRIES 2
#define READ_RETRY_BASE_S 0.5

/* A read a user waits for (CLIQ_PRIO_READ) is asked again up to
 * READ_RETRIES times after a 5xx or a dropped connection, after a short,
 * jittered backoff (scaled by time_scale), as long as that stays within
 * max_wait; cliqfs(1) ERRORS: Cliq 5xx after retries is then EIO. */
static int fetch_retrying_inner(struct fetch_ctx *ctx, const char *key,
                                json_t **out, cliq_error *err);

/* Every fetch; one a user waits for is counted while under way, so that
 * sync sends nothing meanwhile (store_sync.c, sync_yield). */
int fetch_retrying(void *vctx, const char *key, json_t **out,
                          cliq_error *err)
{
  struct fetch_ctx *ctx = vctx;
  store *s = ctx->s;
  bool user = ctx->prio != CLIQ_PRIO_BACKGROUND;
  if (user)
    __atomic_add_fetch(&s->user_fetches, 1, __ATOMIC_SEQ_CST);
  int r = fetch_retrying_inner(ctx, key, out, err);
  if (user) {
    double end = cliq_clock_mono();
    __atomic_store(&s->user_fetch_end, &end, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&s->user_fetches, 1, __ATOMIC_SEQ_CST);
  }
  return r;
}

static int fetch_retrying_inner(struct fetch_ctx *ctx, const char *key,
                                json_t **out, cliq_error *err)
{
  cliq_error local;
  if (!err)
    err = &local;
  double deadline = cliq_clock_mono() + ctx->s->max_wait_s;
  unsigned seed = (unsigned)(uintptr_t)ctx ^ (unsigned)time(NULL);
  cliq_error first;
  memset(&first, 0, sizeof first);
  int first_r = 0;
  for (int attempt = 0;; attempt++) {
    memset(err, 0, sizeof *err);
    int r = ctx->inner(ctx, key, out, err);
    if (r < 0 && attempt > 0 && !err->http_status && !err->curl_code) {
      /* The retry was not sent (the governor said no): what the user gets
       * is what Cliq said before. */
      *err = first;
      return first_r;
    }
    if (r == 0 || ctx->prio != CLIQ_PRIO_READ || attempt >= READ_RETRIES ||
        !cliq_error_read_retryable(err))
      return r;
    if (attempt == 0) {
      first = *err;
      first_r = r;
    }
    double base = READ_RETRY_BASE_S * (double)(1 << attempt);
    double delay = (base / 2 + base / 2 * (double)rand_r(&seed) / RAND_MAX) /
                   ctx->s->scale;
    /* A retry must not make the user wait for a rate slot either. */
    if (cliq_clock_mono() + delay > deadline || !api_free_now(ctx->s, ctx->api))
      return r;
    cliq_clock_sleep(delay);
  }
}

/* Reads a key in the given mode.  *out gets a new reference. */
int cached_fetch(store *s, const char *key, double ttl,
                        enum cliq_api api, enum store_mode mode,
                        tcache_fetch_fn fn, struct fetch_ctx *ctx, json_t **out,
                        cliq_error *err)
{
  *out = NULL;
  clear_err(err);
  if (mode != STORE_FETCH) {
    json_t *v = NULL;
    tcache_state st = tcache_get(s->cache, key, &v, NULL);
    if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
      *out = v;
      return 0;
    }
    json_decref(v);
    if (st == TCACHE_NEGATIVE)
      return cliq_fail(err, ENOENT, "not found");
    if (mode == STORE_CACHED)
      return -ENODATA;
  }
  ctx->inner = fn;
  ctx->api = api;
  /* A stale copy is served at once when the API cannot be asked now (the
   * next read after the budget frees refreshes it). */
  enum patience was = patience_none() ? PATIENCE_NONE : PATIENCE_WAIT;
  if (ctx->prio == CLIQ_PRIO_READ && was == PATIENCE_WAIT &&
      tcache_state_of(s->cache, key) == TCACHE_STALE)
    was = patience_swap(PATIENCE_NONE);
  else
    was = patience_swap(was);
  int r = tcache_fetch(s->cache, key, ttl_for(s, ttl, api), fetch_retrying,
                       ctx, out, err);
  patience_swap(was);
  if (r == -ENOENT)
    tcache_put_negative(s->cache, key, STORE_TTL_NEGATIVE);
  if (r == 0 && !*out)
    r = cliq_fail(err, EIO, "cache returned nothing for %s", key);
  if (r == 0 && err && err->err && ctx && !ctx->fetched)
    clear_err(err);
  return r;
}

/* Made on every cached read: no printf. */
char *make_key(const char *kind, const char *id)
{
  if (!id)
    id = "";
  size_t lk = strlen(kind), li = strlen(id);
  char *k = malloc(lk + li + 2);
  if (!k)
    return NULL;
  memcpy(k, kind, lk);
  k[lk] = '/';
  memcpy(k + lk + 1, id, li + 1);
  return k;
}
