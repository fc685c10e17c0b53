/* cache/store_lists.c: the channel list and the channels' thread lists, as
 * immutable snapshots. */
#include "cache/store_i.h"

/* ---- Channels ------------------------------------------------------------------ */

/* Tells the fs of entries left out of an answer, once per what and reason. */
void report_skipped(store *s, const char *what, size_t count,
                           const char *why)
{
  if (count == 0 || !s->entries_skipped)
    return;
  pthread_mutex_lock(&s->lock);
  char *before = smap_get(&s->skips, what);
  bool fresh = !before || strcmp(before, why) != 0;
  if (fresh) {
    char *copy = strdup(why);
    if (before) {
      for (size_t b = 0; b < s->skips.n_buckets; b++)
        for (struct smap_entry *e = s->skips.buckets[b]; e; e = e->next)
          if (e->value == before) {
            e->value = copy;
            free(before);
          }
    } else if (copy && smap_put(&s->skips, what, copy) < 0) {
      free(copy);
    }
  }
  pthread_mutex_unlock(&s->lock);
  if (fresh)
    s->entries_skipped(s->cb_ctx, what, count, why);
}

static int fetch_channels(void *vctx, const char *key, json_t **out,
                          cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_channel_list list = { 0 };
  int r = cliq_list_channels(ctx->s->client, ctx->prio, &list, err);
  if (r < 0)
    return r;
  report_skipped(ctx->s, "channel list", list.skipped, list.skipped_why);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list.count; i++)
    json_array_append(arr, list.items[i].raw);
  cliq_channel_list_clear(&list);
  if (!arr)
    return cliq_fail(err, ENOMEM, "out of memory");
  *out = arr;
  return 0;
}

static store_channels *build_channels(json_t *arr)
{
  store_channels *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->refs_ = 1;
  size_t n = json_array_size(arr);
  c->items = calloc(n ? n : 1, sizeof *c->items);
  if (!c->items) {
    free(c);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    cliq_channel ch;
    if (cliq_parse_channel(json_array_get(arr, i), &ch, NULL) < 0)
      continue;
    store_channel *d = &c->items[c->count++];
    d->channel_id = ch.channel_id;
    d->chat_id = ch.chat_id;
    d->unique_name = ch.unique_name;
    d->name = ch.name;
    d->last_ms = ch.last_message_ms;
    d->raw = ch.raw;
    free(ch.description);
  }
  return c;
}

int store_channels_get(store *s, enum store_mode mode, store_channels **out,
                       cliq_error *err)
{
  return channels_get(s, mode, CLIQ_PRIO_READ, out, err);
}

int channels_get(store *s, enum store_mode mode, enum cliq_priority prio,
                 store_channels **out, cliq_error *err)
{
  *out = NULL;
  struct fetch_ctx ctx = { .s = s, .prio = prio };
  json_t *v = NULL;
  int r = cached_fetch(s, "channels", STORE_TTL_CHANNELS,
                       CLIQ_API_CHANNELS_LIST, mode, fetch_channels, &ctx, &v,
                       err);
  if (r < 0)
    return r;
  pthread_mutex_lock(&s->lock);
  if (!s->channels || (s->channels_src != v && !json_equal(s->channels_src, v))) {
    store_channels *c = build_channels(v);
    if (!c) {
      pthread_mutex_unlock(&s->lock);
      json_decref(v);
      return cliq_fail(err, ENOMEM, "out of memory");
    }
    store_channels_unref(s->channels);
    s->channels = c;
  }
  json_decref(s->channels_src);
  s->channels_src = v;
  __atomic_add_fetch(&s->channels->refs_, 1, __ATOMIC_ACQ_REL);
  *out = s->channels;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

/* ---- Threads --------------------------------------------------------------------- */

static int fetch_threads(void *vctx, const char *key, json_t **out,
                         cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_thread_list list = { 0 };
  int r = cliq_list_threads(ctx->s->client, ctx->prio, ctx->arg, &list, err);
  if (r < 0)
    return r;
  if (list.skipped) {
    char what[160];
    snprintf(what, sizeof what, "threads of channel %s", ctx->arg);
    report_skipped(ctx->s, what, list.skipped, list.skipped_why);
  }
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list.count; i++)
    json_array_append(arr, list.items[i].raw);
  cliq_thread_list_clear(&list);
  if (!arr)
    return cliq_fail(err, ENOMEM, "out of memory");
  *out = arr;
  return 0;
}

int thread_from_cliq(cliq_thread *t, store_thread *d)
{
  d->chat_id = t->chat_id;
  d->parent_chat_id = t->parent_chat_id;
  d->thread_message_id = t->thread_message_id;
  d->title = t->title;
  d->closed = t->state == CLIQ_THREAD_CLOSED;
  d->is_follower = t->is_follower;
  d->last_ms = t->last_message_ms;
  d->raw = t->raw;
  memset(t, 0, sizeof *t);
  return 0;
}

static store_threads *build_threads(json_t *arr)
{
  store_threads *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->refs_ = 1;
  size_t n = json_array_size(arr);
  t->items = calloc(n ? n : 1, sizeof *t->items);
  if (!t->items) {
    free(t);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    cliq_thread th;
    if (cliq_parse_thread(json_array_get(arr, i), &th, NULL) < 0)
      continue;
    thread_from_cliq(&th, &t->items[t->count++]);
  }
  return t;
}

/* Installs v as the threads JSON of channel_id; returns the (referenced)
 * snapshot, sets *changed when an earlier, different snapshot was replaced.
 * The comparison and the parse run outside the store's lock: the syncer,
 * which polls every list at the lowest priority, must not hold up a reader. */
static store_threads *install_threads(store *s, const char *channel_id,
                                      json_t *v, bool *changed)
{
  *changed = false;
  pthread_mutex_lock(&s->lock);
  struct threads_slot *slot = smap_get(&s->threads, channel_id);
  json_t *was = slot && slot->snap ? json_incref(slot->src) : NULL;
  pthread_mutex_unlock(&s->lock);
  store_threads *built = NULL;
  if (!was || (was != v && !json_equal(was, v))) {
    built = build_threads(v);
    if (!built) {
      json_decref(was);
      return NULL;
    }
  }
  pthread_mutex_lock(&s->lock);
  slot = smap_get(&s->threads, channel_id);
  if (!slot) {
    slot = calloc(1, sizeof *slot);
    if (!slot || smap_put(&s->threads, channel_id, slot) < 0) {
      free(slot);
      pthread_mutex_unlock(&s->lock);
      store_threads_unref(built);
      json_decref(was);
      return NULL;
    }
  }
  /* Another poll installed a list meanwhile: it is compared again. */
  if (!built && (!slot->snap || slot->src != was)) {
    pthread_mutex_unlock(&s->lock);
    json_decref(was);
    return install_threads(s, channel_id, v, changed);
  }
  if (built) {
    *changed = true;   /* new content (or first): directory times change */
    store_threads_unref(slot->snap);
    slot->snap = built;
  }
  json_incref(v);
  json_decref(slot->src);
  slot->src = v;
  store_threads *t = slot->snap;
  __atomic_add_fetch(&t->refs_, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&s->lock);
  json_decref(was);
  return t;
}

int store_threads_get(store *s, const char *channel_id, enum store_mode mode,
                      store_threads **out, cliq_error *err)
{
  *out = NULL;
  char *key = make_key("threads", channel_id);
  if (!key)
    return cliq_fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = channel_id, .prio = CLIQ_PRIO_READ };
  json_t *v = NULL;
  int r = cached_fetch(s, key, STORE_TTL_THREADS, CLIQ_API_THREADS_LIST, mode,
                       fetch_threads, &ctx, &v, err);
  free(key);
  if (r < 0)
    return r;
  bool changed;
  store_threads *t = install_threads(s, channel_id, v, &changed);
  json_decref(v);
  if (!t)
    return cliq_fail(err, ENOMEM, "out of memory");
  if (changed && s->threads_changed)
    s->threads_changed(s->cb_ctx, channel_id);
  *out = t;
  return 0;
}

double threads_age(store *s, const char *channel_id)
{
  char *key = make_key("threads", channel_id);
  double age = key ? tcache_age_of(s->cache, key) : -1;
  free(key);
  return age;
}

/* A poll of a channel's thread list in the background lane (the refresher,
 * the syncer):
 * Cliq is asked only when the list is older than max_age_s (unscaled).
 * Returns the (referenced) snapshot, or NULL when nothing is known; *failed
 * says the poll was refused or failed (a stale snapshot may still come). */
store_threads *threads_poll(store *s, const char *channel_id,
                            double max_age_s, enum cliq_priority prio,
                            bool *failed)
{
  *failed = false;
  char *key = make_key("threads", channel_id);
  if (!key)
    return NULL;
  struct fetch_ctx ctx = { .s = s, .arg = channel_id,
                           .prio = prio, .inner = fetch_threads,
                           .api = CLIQ_API_THREADS_LIST };
  cliq_error err;
  memset(&err, 0, sizeof err);
  json_t *v = NULL;
  int r = tcache_fetch_younger(s->cache, key, max_age_s,
                               ttl_for(s, STORE_TTL_THREADS, CLIQ_API_THREADS_LIST),
                               fetch_retrying, &ctx, &v, &err);
  free(key);
  *failed = r < 0 || err.err != 0;
  if (r < 0 || !v) {
    json_decref(v);
    return NULL;
  }
  bool changed;
  store_threads *t = install_threads(s, channel_id, v, &changed);
  json_decref(v);
  if (t && changed && s->threads_changed)
    s->threads_changed(s->cb_ctx, channel_id);
  return t;
}

const store_thread *store_threads_find(const store_threads *t,
                                       const char *chat_id)
{
  if (!t || !chat_id)
    return NULL;
  for (size_t i = 0; i < t->count; i++)
    if (strcmp(t->items[i].chat_id, chat_id) == 0)
      return &t->items[i];
  return NULL;
}

/* Applies edit() to a copy of the cached thread list of channel_id and puts
 * it back (keeping what the server said otherwise). */
void edit_cached_threads(store *s, const char *channel_id,
                                void (*edit)(json_t *arr, void *arg), void *arg)
{
  if (!channel_id)
    return;
  char *key = make_key("threads", channel_id);
  if (!key)
    return;
  json_t *v = NULL;
  double age = 0;
  tcache_state st = tcache_get(s->cache, key, &v, &age);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    json_t *copy = json_deep_copy(v);
    if (copy) {
      edit(copy, arg);
      tcache_put(s->cache, key, copy, STORE_TTL_THREADS);
      bool changed;
      store_threads *t = install_threads(s, channel_id, copy, &changed);
      store_threads_unref(t);
      json_decref(copy);
    }
  }
  json_decref(v);
  free(key);
  if (s->threads_changed)
    s->threads_changed(s->cb_ctx, channel_id);
}
