/* cache/store: see store.h.  docs/design.md "Cache" tells the story. */
#include "cache/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- Small helpers ------------------------------------------------------- */

static double now_wall(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(cliq_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(cliq_error *err, int e, const char *fmt, ...)
{
  if (err) {
    memset(err, 0, sizeof *err);
    err->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return -e;
}

static void clear_err(cliq_error *err)
{
  if (err)
    memset(err, 0, sizeof *err);
}

static char *xstrdup(const char *s)
{
  return strdup(s ? s : "");
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *data,
                      size_t n)
{
  if (*len + n + 1 > *cap) {
    size_t want = *cap ? *cap : 256;
    while (want < *len + n + 1)
      want *= 2;
    char *nb = realloc(*buf, want);
    if (!nb)
      return -ENOMEM;
    *buf = nb;
    *cap = want;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

static int buf_append_str(char **buf, size_t *len, size_t *cap, const char *s)
{
  return buf_append(buf, len, cap, s, strlen(s));
}

/* ---- A string-keyed hash map of pointers ---------------------------------- */

struct smap_entry {
  char *key;
  void *value;
  struct smap_entry *next;
};

struct smap {
  struct smap_entry **buckets;
  size_t n_buckets;
  size_t count;
};

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static void *smap_get(struct smap *m, const char *key)
{
  if (!m->n_buckets)
    return NULL;
  for (struct smap_entry *e = m->buckets[hash_str(key) % m->n_buckets]; e;
       e = e->next)
    if (strcmp(e->key, key) == 0)
      return e->value;
  return NULL;
}

static int smap_put(struct smap *m, const char *key, void *value)
{
  if (m->count + 1 > m->n_buckets * 2) {
    size_t nb = m->n_buckets ? m->n_buckets * 4 : 64;
    struct smap_entry **b = calloc(nb, sizeof *b);
    if (!b)
      return -ENOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
      struct smap_entry *e = m->buckets[i];
      while (e) {
        struct smap_entry *next = e->next;
        size_t k = hash_str(e->key) % nb;
        e->next = b[k];
        b[k] = e;
        e = next;
      }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
  }
  struct smap_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->key = strdup(key))) {
    free(e);
    return -ENOMEM;
  }
  e->value = value;
  size_t k = hash_str(key) % m->n_buckets;
  e->next = m->buckets[k];
  m->buckets[k] = e;
  m->count++;
  return 0;
}

static void smap_free(struct smap *m, void (*free_value)(void *))
{
  for (size_t i = 0; i < m->n_buckets; i++) {
    struct smap_entry *e = m->buckets[i];
    while (e) {
      struct smap_entry *next = e->next;
      if (free_value)
        free_value(e->value);
      free(e->key);
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  memset(m, 0, sizeof *m);
}

/* ---- The store -------------------------------------------------------------- */

struct threads_slot {
  json_t *src;              /* the JSON the snapshot was built from */
  store_threads *snap;
};

struct store_log {
  store *s;
  char *chat_id;
  char *key;
  pthread_mutex_t lock;
  bool known;
  bool disk_tried;
  json_t *messages;         /* raw message objects in log order */
  json_t *ids;              /* set of message ids (object id -> true) */
  char *text;
  size_t text_len, text_cap;
  char *jsonl;
  size_t jsonl_len, jsonl_cap;
  int64_t cursor_ms;        /* newest time among messages the server sent */
  int64_t last_ms;          /* newest time of any message in the log */
  double fetched_at;        /* wall time of the last fetch attempt's end */
  double next_try_at;       /* refresher: not before (after failures) */
  int readers;
  double last_read;
};

struct store {
  cliq_client *client;
  gov *gov;
  tcache *cache;
  int history;
  double scale;
  void (*log_grew)(void *ctx, const char *chat_id);
  void (*threads_changed)(void *ctx, const char *channel_id);
  void *cb_ctx;

  pthread_mutex_t lock;     /* guards everything below */
  json_t *channels_src;
  store_channels *channels;
  struct smap threads;      /* channel_id -> struct threads_slot */
  struct smap logs;         /* chat_id -> store_log */
  json_t *drafts;           /* channel_id -> {name -> draft object} */
  char *self_id;
  char *self_name;
  bool self_loaded;

  pthread_t refresher;
  bool refresher_running;
  bool stopping;
  pthread_cond_t wake;
};

static double ttl_for(store *s, double ttl, enum cliq_api api)
{
  /* Freshness stretches when the budget is contended: up to 4x at full use. */
  if (s->gov) {
    double p = gov_pressure(s->gov, api);
    if (p > 0.5)
      ttl *= 1.0 + 6.0 * (p - 0.5);
  }
  return ttl;
}

store *store_new(const store_options *o)
{
  store *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->client = o->client;
  s->gov = o->gov;
  s->cache = o->cache;
  s->history = o->history > 0 ? o->history : 100;
  s->scale = o->time_scale > 0 ? o->time_scale : 1.0;
  s->log_grew = o->log_grew;
  s->threads_changed = o->threads_changed;
  s->cb_ctx = o->cb_ctx;
  s->drafts = json_object();
  if (!s->drafts) {
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->wake, NULL);
  return s;
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

static void log_free(void *p)
{
  store_log *log = p;
  free(log->chat_id);
  free(log->key);
  json_decref(log->messages);
  json_decref(log->ids);
  free(log->text);
  free(log->jsonl);
  pthread_mutex_destroy(&log->lock);
  free(log);
}

void store_free(store *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->lock);
  s->stopping = true;
  pthread_cond_broadcast(&s->wake);
  bool running = s->refresher_running;
  pthread_mutex_unlock(&s->lock);
  if (running)
    pthread_join(s->refresher, NULL);
  json_decref(s->channels_src);
  store_channels_unref(s->channels);
  smap_free(&s->threads, slot_free);
  smap_free(&s->logs, log_free);
  json_decref(s->drafts);
  free(s->self_id);
  free(s->self_name);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* ---- Fetch plumbing ---------------------------------------------------------- */

struct fetch_ctx {
  store *s;
  const char *arg;           /* channel id, chat id, thread chat id */
  enum cliq_priority prio;
  int which;                 /* for people lists */
  store_log *log;
  bool fetched;              /* the fetch function ran */
  bool grew;                 /* a log got new messages */
};

/* Reads a key in the given mode.  *out gets a new reference. */
static int cached_fetch(store *s, const char *key, double ttl,
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
      return fail(err, ENOENT, "not found");
    if (mode == STORE_CACHED)
      return -ENODATA;
  }
  int r = tcache_fetch(s->cache, key, ttl_for(s, ttl, api), fn, ctx, out, err);
  if (r == -ENOENT)
    tcache_put_negative(s->cache, key, STORE_TTL_NEGATIVE);
  if (r == 0 && !*out)
    r = fail(err, EIO, "cache returned nothing for %s", key);
  if (r == 0 && err && err->err && ctx && !ctx->fetched)
    clear_err(err);
  return r;
}

static char *make_key(const char *kind, const char *id)
{
  char *k = NULL;
  if (asprintf(&k, "%s/%s", kind, id ? id : "") < 0)
    return NULL;
  return k;
}

/* ---- Channels ------------------------------------------------------------------ */

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
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list.count; i++)
    json_array_append(arr, list.items[i].raw);
  cliq_channel_list_clear(&list);
  if (!arr)
    return fail(err, ENOMEM, "out of memory");
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
  *out = NULL;
  struct fetch_ctx ctx = { .s = s, .prio = CLIQ_PRIO_READ };
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
      return fail(err, ENOMEM, "out of memory");
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
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list.count; i++)
    json_array_append(arr, list.items[i].raw);
  cliq_thread_list_clear(&list);
  if (!arr)
    return fail(err, ENOMEM, "out of memory");
  *out = arr;
  return 0;
}

static int thread_from_cliq(cliq_thread *t, store_thread *d)
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
 * snapshot, sets *changed when an earlier, different snapshot was replaced. */
static store_threads *install_threads(store *s, const char *channel_id,
                                      json_t *v, bool *changed)
{
  *changed = false;
  pthread_mutex_lock(&s->lock);
  struct threads_slot *slot = smap_get(&s->threads, channel_id);
  if (!slot) {
    slot = calloc(1, sizeof *slot);
    if (!slot || smap_put(&s->threads, channel_id, slot) < 0) {
      free(slot);
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
  }
  if (!slot->snap || (slot->src != v && !json_equal(slot->src, v))) {
    store_threads *t = build_threads(v);
    if (!t) {
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
    *changed = true;   /* new content (or first): directory times change */
    store_threads_unref(slot->snap);
    slot->snap = t;
  }
  json_incref(v);
  json_decref(slot->src);
  slot->src = v;
  store_threads *t = slot->snap;
  __atomic_add_fetch(&t->refs_, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&s->lock);
  return t;
}

int store_threads_get(store *s, const char *channel_id, enum store_mode mode,
                      store_threads **out, cliq_error *err)
{
  *out = NULL;
  char *key = make_key("threads", channel_id);
  if (!key)
    return fail(err, ENOMEM, "out of memory");
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
    return fail(err, ENOMEM, "out of memory");
  if (changed && s->threads_changed)
    s->threads_changed(s->cb_ctx, channel_id);
  *out = t;
  return 0;
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
static void edit_cached_threads(store *s, const char *channel_id,
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

/* ---- Thread details, main message, people ------------------------------------------ */

static int fetch_thread_info(void *vctx, const char *key, json_t **out,
                             cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_thread t;
  int r = cliq_get_thread(ctx->s->client, ctx->prio, ctx->arg, &t, err);
  if (r < 0)
    return r;
  *out = json_incref(t.raw);
  cliq_thread_clear(&t);
  return *out ? 0 : fail(err, EIO, "thread %s: empty answer", ctx->arg);
}

static int thread_info_json(store *s, const char *tid, enum store_mode mode,
                            json_t **out, cliq_error *err)
{
  char *key = make_key("tinfo", tid);
  if (!key)
    return fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = tid, .prio = CLIQ_PRIO_READ };
  int r = cached_fetch(s, key, STORE_TTL_THREAD_INFO, CLIQ_API_THREADS_GET,
                       mode, fetch_thread_info, &ctx, out, err);
  free(key);
  return r;
}

int store_thread_lookup(store *s, const char *tid, enum store_mode mode,
                        store_thread *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  json_t *v = NULL;
  int r = thread_info_json(s, tid, mode, &v, err);
  if (r < 0)
    return r;
  cliq_thread t;
  r = cliq_parse_thread(v, &t, err);
  json_decref(v);
  if (r < 0)
    return r;
  return thread_from_cliq(&t, out);
}

int store_thread_info_text(store *s, const char *tid, enum store_mode mode,
                           char **text_out, size_t *len_out, cliq_error *err)
{
  *text_out = NULL;
  *len_out = 0;
  json_t *v = NULL;
  int r = thread_info_json(s, tid, mode, &v, err);
  if (r < 0)
    return r;
  char *txt = json_dumps(v, JSON_INDENT(2));
  json_decref(v);
  if (!txt)
    return fail(err, ENOMEM, "out of memory");
  size_t len = strlen(txt);
  char *withnl = realloc(txt, len + 2);
  if (!withnl) {
    free(txt);
    return fail(err, ENOMEM, "out of memory");
  }
  withnl[len] = '\n';
  withnl[len + 1] = '\0';
  *text_out = withnl;
  *len_out = len + 1;
  return 0;
}

static int fetch_main(void *vctx, const char *key, json_t **out,
                      cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_message m;
  int r = cliq_get_main_message(ctx->s->client, ctx->prio, ctx->arg, &m, err);
  if (r < 0)
    return r;
  *out = json_incref(m.raw);
  cliq_message_clear(&m);
  return 0;
}

static int render_message_json(json_t *raw, char **text_out, size_t *len_out,
                               cliq_error *err)
{
  cliq_message m;
  int r = cliq_parse_message(raw, &m, err);
  if (r < 0)
    return r;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  r = store_render_message(&m, &buf, &len, &cap);
  cliq_message_clear(&m);
  if (r < 0) {
    free(buf);
    return fail(err, ENOMEM, "out of memory");
  }
  *text_out = buf;
  *len_out = len;
  return 0;
}

int store_main_text(store *s, const char *tid, enum store_mode mode,
                    char **text_out, size_t *len_out, cliq_error *err)
{
  *text_out = NULL;
  *len_out = 0;
  char *key = make_key("main", tid);
  if (!key)
    return fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = tid, .prio = CLIQ_PRIO_READ };
  json_t *v = NULL;
  int r = cached_fetch(s, key, STORE_TTL_MAIN, CLIQ_API_THREADS_MAIN, mode,
                       fetch_main, &ctx, &v, err);
  free(key);
  if (r < 0)
    return r;
  r = render_message_json(v, text_out, len_out, err);
  json_decref(v);
  return r;
}

static const char *people_kind[] = { "members", "followers", "nonfollowers" };
static const enum cliq_api people_api[] = {
  CLIQ_API_CHATS_MEMBERS, CLIQ_API_FOLLOWERS_GET, CLIQ_API_NONFOLLOWERS,
};

static json_t *users_to_json(const cliq_user_list *list)
{
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list->count; i++) {
    const cliq_user *u = &list->items[i];
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "user_id",
                                         u->user_id ? u->user_id : "",
                                         "email_id",
                                         u->email_id ? u->email_id : "",
                                         "name", u->name ? u->name : ""));
  }
  return arr;
}

static int fetch_people(void *vctx, const char *key, json_t **out,
                        cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_user_list list = { 0 };
  int r;
  switch (ctx->which) {
  case STORE_MEMBERS:
    r = cliq_get_members(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  case STORE_FOLLOWERS:
    r = cliq_get_followers(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  default:
    r = cliq_get_nonfollowers(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  }
  if (r < 0)
    return r;
  *out = users_to_json(&list);
  cliq_user_list_clear(&list);
  return *out ? 0 : fail(err, ENOMEM, "out of memory");
}

static int people_json(store *s, const char *tid, enum store_people which,
                       enum store_mode mode, json_t **out, cliq_error *err)
{
  char *key = make_key(people_kind[which], tid);
  if (!key)
    return fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = tid, .prio = CLIQ_PRIO_READ,
                           .which = (int)which };
  int r = cached_fetch(s, key, STORE_TTL_PEOPLE, people_api[which], mode,
                       fetch_people, &ctx, out, err);
  free(key);
  return r;
}

static const char *jstr(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

int store_people_text(store *s, const char *tid, enum store_people which,
                      enum store_mode mode, char **text_out, size_t *len_out,
                      cliq_error *err)
{
  *text_out = NULL;
  *len_out = 0;
  json_t *v = NULL;
  int r = people_json(s, tid, which, mode, &v, err);
  if (r < 0)
    return r;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  r = buf_append(&buf, &len, &cap, "", 0);
  size_t i;
  json_t *u;
  json_array_foreach(v, i, u) {
    cliq_user cu = { (char *)jstr(u, "user_id"), (char *)jstr(u, "email_id"),
                     (char *)jstr(u, "name") };
    if (r == 0)
      r = store_render_user(&cu, &buf, &len, &cap);
  }
  json_decref(v);
  if (r < 0) {
    free(buf);
    return fail(err, ENOMEM, "out of memory");
  }
  *text_out = buf;
  *len_out = len;
  return 0;
}

/* ---- Rendering ---------------------------------------------------------------------- */

void store_format_time(int64_t ms, char *out, size_t outlen)
{
  time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) ||
      strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, outlen, "1970-01-01T00:00:00Z");
}

int store_render_message(const cliq_message *m, char **buf, size_t *len,
                         size_t *cap)
{
  char ts[32];
  store_format_time(m->time_ms, ts, sizeof ts);
  const char *who = m->sender_name && *m->sender_name ? m->sender_name
                    : m->sender_id && *m->sender_id   ? m->sender_id
                                                      : "?";
  int r = 0;
  r |= buf_append_str(buf, len, cap, ts);
  r |= buf_append_str(buf, len, cap, " ");
  r |= buf_append_str(buf, len, cap, who);
  r |= buf_append_str(buf, len, cap, ":");
  const char *text = m->text ? m->text : "";
  /* Trailing line breaks carry nothing and would make empty lines. */
  size_t tlen = strlen(text);
  while (tlen > 0 && (text[tlen - 1] == '\n' || text[tlen - 1] == '\r'))
    tlen--;
  if (tlen > 0)
    r |= buf_append_str(buf, len, cap, " ");
  size_t start = 0;
  for (size_t i = 0; i <= tlen; i++) {
    if (i < tlen && text[i] != '\n')
      continue;
    size_t end = i;
    if (end > start && text[end - 1] == '\r')
      end--;
    if (start > 0)
      r |= buf_append_str(buf, len, cap, "\t");
    r |= buf_append(buf, len, cap, text + start, end - start);
    r |= buf_append_str(buf, len, cap, "\n");
    start = i + 1;
  }
  return r ? -ENOMEM : 0;
}

int store_render_user(const cliq_user *u, char **buf, size_t *len, size_t *cap)
{
  int r = 0;
  r |= buf_append_str(buf, len, cap, u->user_id ? u->user_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_str(buf, len, cap, u->email_id ? u->email_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_str(buf, len, cap, u->name ? u->name : "");
  r |= buf_append_str(buf, len, cap, "\n");
  return r ? -ENOMEM : 0;
}

/* ---- Message logs ---------------------------------------------------------------------- */

static store_log *log_for(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  if (!log) {
    log = calloc(1, sizeof *log);
    if (log) {
      log->s = s;
      log->chat_id = strdup(chat_id);
      log->key = make_key("log", chat_id);
      log->messages = json_array();
      log->ids = json_object();
      pthread_mutex_init(&log->lock, NULL);
      if (!log->chat_id || !log->key || !log->messages || !log->ids ||
          smap_put(&s->logs, chat_id, log) < 0) {
        log_free(log);
        log = NULL;
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  return log;
}

/* Appends one parsed message to the log (lock held).  Returns 1 when added,
 * 0 when its id was already there, -ENOMEM. */
static int log_append_locked(store_log *log, const cliq_message *m,
                             bool from_server)
{
  if (json_object_get(log->ids, m->id))
    return 0;
  char *line = json_dumps(m->raw, JSON_COMPACT);
  if (!line)
    return -ENOMEM;
  size_t tl = log->text_len, jl = log->jsonl_len;
  int r = store_render_message(m, &log->text, &log->text_len, &log->text_cap);
  if (r == 0)
    r = buf_append_str(&log->jsonl, &log->jsonl_len, &log->jsonl_cap, line);
  if (r == 0)
    r = buf_append_str(&log->jsonl, &log->jsonl_len, &log->jsonl_cap, "\n");
  free(line);
  if (r < 0) {
    log->text_len = tl;     /* nothing half-appended */
    log->jsonl_len = jl;
    if (log->text)
      log->text[tl] = '\0';
    if (log->jsonl)
      log->jsonl[jl] = '\0';
    return -ENOMEM;
  }
  json_object_set_new(log->ids, m->id, json_true());
  json_array_append(log->messages, m->raw);
  if (m->time_ms > log->last_ms)
    log->last_ms = m->time_ms;
  if (from_server && m->time_ms > log->cursor_ms)
    log->cursor_ms = m->time_ms;
  return 1;
}

/* The form kept in the tcache and on disk (lock held). */
static json_t *log_persistent_locked(store_log *log)
{
  json_t *msgs = json_copy(log->messages);   /* shallow: messages are immutable */
  if (!msgs)
    return NULL;
  return json_pack("{s:I, s:o}", "cursor_ms", (json_int_t)log->cursor_ms,
                   "messages", msgs);
}

/* Loads a persisted log into an empty in-memory log (lock held). */
static void log_load_locked(store_log *log, json_t *v)
{
  json_t *msgs = json_object_get(v, "messages");
  size_t i;
  json_t *raw;
  json_array_foreach(msgs, i, raw) {
    cliq_message m;
    if (cliq_parse_message(raw, &m, NULL) < 0)
      continue;
    log_append_locked(log, &m, false);
    cliq_message_clear(&m);
  }
  json_int_t cursor = json_integer_value(json_object_get(v, "cursor_ms"));
  log->cursor_ms = cursor > 0 ? cursor : log->last_ms;
  log->known = true;
}

static int cmp_messages(const void *a, const void *b)
{
  const cliq_message *x = a, *y = b;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* Gathers messages into a growable array, skipping ids seen already. */
struct msg_vec {
  cliq_message *items;
  size_t count, cap;
  json_t *seen;
};

static int vec_take(struct msg_vec *v, cliq_message_list *page, size_t *added)
{
  *added = 0;
  for (size_t i = 0; i < page->count; i++) {
    cliq_message *m = &page->items[i];
    if (json_object_get(v->seen, m->id))
      continue;
    if (v->count == v->cap) {
      size_t nc = v->cap ? v->cap * 2 : 128;
      cliq_message *ni = realloc(v->items, nc * sizeof *ni);
      if (!ni)
        return -ENOMEM;
      v->items = ni;
      v->cap = nc;
    }
    json_object_set_new(v->seen, m->id, json_true());
    v->items[v->count++] = *m;
    memset(m, 0, sizeof *m);
    (*added)++;
  }
  return 0;
}

static void vec_clear(struct msg_vec *v)
{
  for (size_t i = 0; i < v->count; i++)
    cliq_message_clear(&v->items[i]);
  free(v->items);
  json_decref(v->seen);
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

  struct msg_vec vec = { .seen = json_object() };
  int r = 0;
  if (!vec.seen) {
    r = fail(err, ENOMEM, "out of memory");
    goto out;
  }
  if (!known) {
    /* First fetch: the most recent `history` messages, going back in pages. */
    int64_t totime = 0;
    int repeats = 0;          /* messages at `totime` we have (inclusive bound) */
    for (int page_no = 0; (int)vec.count < s->history && page_no < 50;
         page_no++) {
      int want = s->history - (int)vec.count + repeats;
      if (repeats >= 100) {   /* pathological: step past that millisecond */
        totime--;
        want -= repeats;
      }
      int limit = want > 100 ? 100 : want;
      cliq_message_list page = { 0 };
      r = cliq_get_messages(s->client, ctx->prio, log->chat_id, 0, totime,
                            limit, &page, err);
      if (r < 0)
        goto out;
      size_t got = page.count, added = 0;
      int64_t oldest = got ? page.items[0].time_ms : 0;
      for (size_t i = 0; i < got; i++)
        if (page.items[i].time_ms < oldest)
          oldest = page.items[i].time_ms;
      r = vec_take(&vec, &page, &added);
      cliq_message_list_clear(&page);
      if (r < 0) {
        fail(err, ENOMEM, "out of memory");
        goto out;
      }
      if ((int)got < limit || added == 0 || oldest <= 0)
        break;
      totime = oldest;
      repeats = 0;
      for (size_t i = 0; i < vec.count; i++)
        if (vec.items[i].time_ms == oldest)
          repeats++;
    }
    qsort(vec.items, vec.count, sizeof *vec.items, cmp_messages);
    if ((int)vec.count > s->history) {
      size_t drop = vec.count - (size_t)s->history;
      for (size_t i = 0; i < drop; i++)
        cliq_message_clear(&vec.items[i]);
      memmove(vec.items, vec.items + drop, (vec.count - drop) * sizeof *vec.items);
      vec.count -= drop;
    }
  } else {
    /* Later: what came since the newest time the server showed us. */
    int64_t from = cursor;
    for (int page_no = 0; page_no < 20; page_no++) {
      cliq_message_list page = { 0 };
      r = cliq_get_messages(s->client, ctx->prio, log->chat_id, from, 0, 100,
                            &page, err);
      if (r < 0)
        goto out;
      size_t got = page.count, added = 0;
      int64_t newest = from;
      for (size_t i = 0; i < got; i++)
        if (page.items[i].time_ms > newest)
          newest = page.items[i].time_ms;
      r = vec_take(&vec, &page, &added);
      cliq_message_list_clear(&page);
      if (r < 0) {
        fail(err, ENOMEM, "out of memory");
        goto out;
      }
      if (got < 100 || added == 0 || newest <= from)
        break;
      from = newest;
    }
    qsort(vec.items, vec.count, sizeof *vec.items, cmp_messages);
  }

  pthread_mutex_lock(&log->lock);
  size_t before = log->text_len;
  for (size_t i = 0; i < vec.count && r == 0; i++)
    if (log_append_locked(log, &vec.items[i], true) < 0)
      r = fail(err, ENOMEM, "out of memory");
  log->known = true;
  if (log->text_len != before)
    ctx->grew = true;
  *out = log_persistent_locked(log);
  log->fetched_at = now_wall();
  pthread_mutex_unlock(&log->lock);
  if (r == 0 && !*out)
    r = fail(err, ENOMEM, "out of memory");
out:
  vec_clear(&vec);
  if (r < 0) {
    pthread_mutex_lock(&log->lock);
    log->fetched_at = now_wall();
    pthread_mutex_unlock(&log->lock);
  }
  return r;
}

static void log_try_disk(store *s, store_log *log)
{
  pthread_mutex_lock(&log->lock);
  bool need = !log->known && !log->disk_tried;
  log->disk_tried = true;
  pthread_mutex_unlock(&log->lock);
  if (!need)
    return;
  json_t *v = NULL;
  double age = 0;
  tcache_state st = tcache_get(s->cache, log->key, &v, &age);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    pthread_mutex_lock(&log->lock);
    if (!log->known) {
      log_load_locked(log, v);
      log->fetched_at = now_wall() - age;
    }
    pthread_mutex_unlock(&log->lock);
  }
  json_decref(v);
}

static int log_refresh(store *s, store_log *log, enum cliq_priority prio,
                       cliq_error *err)
{
  struct fetch_ctx ctx = { .s = s, .arg = log->chat_id, .prio = prio,
                           .log = log };
  json_t *v = NULL;
  int r = tcache_fetch(s->cache, log->key,
                       ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES),
                       fetch_log, &ctx, &v, err);
  json_decref(v);
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
    return fail(err, ENOMEM, "out of memory");
  log_try_disk(s, log);
  if (mode != STORE_FETCH)
    return store_log_known(log) ? 0 : -ENODATA;
  int r = log_refresh(s, log, CLIQ_PRIO_READ, err);
  if (r < 0 && store_log_known(log))
    r = 0;                        /* served from what we have, however old */
  return r;
}

bool store_log_known(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  bool k = log->known;
  pthread_mutex_unlock(&log->lock);
  return k;
}

size_t store_log_size(store_log *log, enum store_log_form form)
{
  pthread_mutex_lock(&log->lock);
  size_t n = form == STORE_LOG_JSONL ? log->jsonl_len : log->text_len;
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

void store_log_open_reader(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  log->readers++;
  log->last_read = now_wall();
  pthread_mutex_unlock(&log->lock);
  pthread_mutex_lock(&log->s->lock);
  pthread_cond_broadcast(&log->s->wake);
  pthread_mutex_unlock(&log->s->lock);
}

void store_log_close_reader(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  if (log->readers > 0)
    log->readers--;
  log->last_read = now_wall();
  pthread_mutex_unlock(&log->lock);
}

void store_log_note_read(store_log *log)
{
  pthread_mutex_lock(&log->lock);
  log->last_read = now_wall();
  pthread_mutex_unlock(&log->lock);
}

/* ---- Background refresher ------------------------------------------------------------ */

static void *refresher_main(void *arg)
{
  store *s = arg;
  double ttl_s = STORE_TTL_LOG / s->scale;
  double tick = ttl_s / 4;
  if (tick > 1.0)
    tick = 1.0;
  if (tick < 0.05)
    tick = 0.05;
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + tick;
    until.tv_sec = (time_t)t;
    until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
    pthread_cond_timedwait(&s->wake, &s->lock, &until);
    if (s->stopping)
      break;
    /* Collect the followed, stale logs (references stay valid: logs live
     * until store_free, which first stops this thread). */
    size_t n = 0, cap = 0;
    store_log **due = NULL;
    double now = now_wall();
    double follow_s = STORE_FOLLOW_SECONDS / s->scale;
    double fresh_s = ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES) / s->scale;
    for (size_t b = 0; b < s->logs.n_buckets; b++) {
      for (struct smap_entry *e = s->logs.buckets[b]; e; e = e->next) {
        store_log *log = e->value;
        pthread_mutex_lock(&log->lock);
        bool followed = log->known &&
                        (log->readers > 0 || now - log->last_read < follow_s);
        bool stale = now - log->fetched_at >= fresh_s && now >= log->next_try_at;
        pthread_mutex_unlock(&log->lock);
        if (!followed || !stale)
          continue;
        if (n == cap) {
          size_t nc = cap ? cap * 2 : 16;
          store_log **nd = realloc(due, nc * sizeof *nd);
          if (!nd)
            break;
          due = nd;
          cap = nc;
        }
        due[n++] = log;
      }
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
      cliq_error err;
      int r = log_refresh(s, due[i], CLIQ_PRIO_BACKGROUND, &err);
      if (r < 0 || err.err) {
        pthread_mutex_lock(&due[i]->lock);
        /* The governor said no (or the request failed): try again a little
         * later, never in a tight loop. */
        due[i]->next_try_at = now_wall() + fresh_s / 4;
        pthread_mutex_unlock(&due[i]->lock);
      }
    }
    free(due);
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

int store_start_refresher(store *s)
{
  pthread_mutex_lock(&s->lock);
  int r = 0;
  if (!s->refresher_running) {
    r = -pthread_create(&s->refresher, NULL, refresher_main, s);
    s->refresher_running = r == 0;
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

/* ---- Own messages --------------------------------------------------------------------- */

static void self_load(store *s)
{
  pthread_mutex_lock(&s->lock);
  bool need = !s->self_loaded;
  s->self_loaded = true;
  pthread_mutex_unlock(&s->lock);
  if (!need)
    return;
  json_t *v = NULL;
  tcache_state st = tcache_get(s->cache, "self", &v, NULL);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    pthread_mutex_lock(&s->lock);
    if (!s->self_id) {
      s->self_id = strdup(jstr(v, "id"));
      s->self_name = strdup(jstr(v, "name"));
    }
    pthread_mutex_unlock(&s->lock);
  }
  json_decref(v);
}

static void self_learn(store *s, const char *id, const char *name)
{
  if (!id || !*id)
    return;
  pthread_mutex_lock(&s->lock);
  bool changed = !s->self_id || strcmp(s->self_id, id) != 0 ||
                 strcmp(s->self_name ? s->self_name : "", name ? name : "") != 0;
  if (changed) {
    free(s->self_id);
    free(s->self_name);
    s->self_id = strdup(id);
    s->self_name = strdup(name ? name : "");
  }
  pthread_mutex_unlock(&s->lock);
  if (changed) {
    json_t *v = json_pack("{s:s, s:s}", "id", id, "name", name ? name : "");
    if (v)
      tcache_put(s->cache, "self", v, 365.0 * 86400.0);
    json_decref(v);
  }
}

/* The message we just posted, as Cliq would list it.  Learns who we are from
 * Cliq once (one messages.get, background lane), then builds it locally.
 * Returns a new reference or NULL (then the next refresh brings it). */
static json_t *own_message(store *s, const char *chat_id, const char *msg_id,
                           const char *text)
{
  if (!msg_id || !*msg_id)
    return NULL;
  char *id = cliq_normalize_message_id(msg_id);
  if (!id)
    return NULL;
  self_load(s);
  pthread_mutex_lock(&s->lock);
  char *self_id = s->self_id ? strdup(s->self_id) : NULL;
  char *self_name = s->self_name ? strdup(s->self_name) : NULL;
  pthread_mutex_unlock(&s->lock);
  json_t *msg = NULL;
  if (!self_id) {
    cliq_message m;
    cliq_error e;
    if (cliq_get_message(s->client, CLIQ_PRIO_BACKGROUND, chat_id, id, &m,
                         &e) == 0) {
      self_learn(s, m.sender_id, m.sender_name);
      msg = json_incref(m.raw);
      cliq_message_clear(&m);
    }
  } else {
    /* Message ids are "<epoch ms>_<n>": the time is the id's first part. */
    char *end = NULL;
    long long ms = strtoll(id, &end, 10);
    if (!end || *end != '_' || ms <= 0)
      ms = (long long)(now_wall() * 1000);
    msg = json_pack("{s:s, s:I, s:s, s:{s:s, s:s}, s:{s:s}}", "id", id, "time",
                    (json_int_t)ms, "type", "text", "sender", "id", self_id,
                    "name", self_name ? self_name : "", "content", "text",
                    text);
  }
  free(self_id);
  free(self_name);
  free(id);
  return msg;
}

/* Appends our own message to a known log and persists it. */
static void log_append_own(store *s, const char *chat_id, json_t *raw)
{
  if (!raw)
    return;
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  pthread_mutex_unlock(&s->lock);
  if (!log)
    return;
  cliq_message m;
  if (cliq_parse_message(raw, &m, NULL) < 0)
    return;
  pthread_mutex_lock(&log->lock);
  bool grew = false;
  json_t *persist = NULL;
  if (log->known) {
    grew = log_append_locked(log, &m, false) > 0;
    if (grew)
      persist = log_persistent_locked(log);
  }
  pthread_mutex_unlock(&log->lock);
  cliq_message_clear(&m);
  if (persist) {
    /* Keeps the entry's freshness: the other people's messages still come
     * with the next refresh. */
    double age = 0;
    json_t *old = NULL;
    tcache_state st = tcache_get(s->cache, log->key, &old, &age);
    json_decref(old);
    double left = STORE_TTL_LOG - age * s->scale;
    if (st != TCACHE_FRESH || left < 0)
      left = 0;
    tcache_put(s->cache, log->key, persist, left);
    json_decref(persist);
  }
  if (grew && s->log_grew)
    s->log_grew(s->cb_ctx, chat_id);
}

int store_post_channel(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *text,
                       cliq_error *err)
{
  char *id = NULL;
  int r = cliq_post_channel_message(s->client, CLIQ_PRIO_WRITE, channel_id,
                                    text, &id, err);
  if (r < 0)
    return r;
  if (channel_chat_id) {
    json_t *raw = own_message(s, channel_chat_id, id, text);
    log_append_own(s, channel_chat_id, raw);
    json_decref(raw);
  }
  free(id);
  return 0;
}

static void mark_closed(store *s, const char *tid);

int store_reply(store *s, const char *tid, const char *text, cliq_error *err)
{
  char *id = NULL;
  int r = cliq_reply(s->client, CLIQ_PRIO_WRITE, tid, text, &id, err);
  if (r == -EACCES && err && strcmp(err->code, "operation_not_allowed") == 0)
    mark_closed(s, tid);     /* closed by someone else since we last looked */
  if (r < 0)
    return r;
  json_t *raw = own_message(s, tid, id, text);
  log_append_own(s, tid, raw);
  json_decref(raw);
  free(id);
  return 0;
}

/* ---- Thread state, follow --------------------------------------------------------- */

struct state_edit {
  const char *tid;
  const char *state;     /* "open"/"closed" or NULL */
  int follower;          /* -1 unchanged, 0/1 */
};

static void set_state_fields(json_t *obj, const struct state_edit *e)
{
  if (e->state) {
    json_object_set_new(obj, "thread_state", json_string(e->state));
    json_t *info = json_object_get(obj, "thread_state_info");
    if (json_is_object(info))
      json_object_set_new(info, "thread_state", json_string(e->state));
  }
  if (e->follower >= 0)
    json_object_set_new(obj, "is_follower", json_boolean(e->follower));
}

static void edit_thread_in_list(json_t *arr, void *arg)
{
  const struct state_edit *e = arg;
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t) {
    const char *id = json_string_value(json_object_get(t, "chat_id"));
    if (id && strcmp(id, e->tid) == 0)
      set_state_fields(t, e);
  }
}

static void edit_thread_info(store *s, const struct state_edit *e)
{
  char *key = make_key("tinfo", e->tid);
  if (!key)
    return;
  json_t *v = NULL;
  tcache_state st = tcache_get(s->cache, key, &v, NULL);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    json_t *copy = json_deep_copy(v);
    if (copy) {
      set_state_fields(copy, e);
      tcache_put(s->cache, key, copy, STORE_TTL_THREAD_INFO);
      json_decref(copy);
    }
  }
  json_decref(v);
  free(key);
}

/* The channel whose chat holds a thread, from the cached channel list. */
static char *channel_of_thread(store *s, const char *tid)
{
  const char *t = strstr(tid, "-T-");
  if (!t)
    return NULL;
  store_channels *cs = NULL;
  if (store_channels_get(s, STORE_CACHED, &cs, NULL) < 0)
    return NULL;
  char *id = NULL;
  for (size_t i = 0; i < cs->count && !id; i++)
    if (strlen(cs->items[i].chat_id) == (size_t)(t - tid) &&
        strncmp(cs->items[i].chat_id, tid, (size_t)(t - tid)) == 0)
      id = strdup(cs->items[i].channel_id);
  store_channels_unref(cs);
  return id;
}

static void mark_closed(store *s, const char *tid)
{
  struct state_edit e = { tid, "closed", -1 };
  edit_thread_info(s, &e);
  char *channel_id = channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id, edit_thread_in_list, &e);
  free(channel_id);
}

int store_set_state(store *s, const char *channel_id, const char *tid,
                    bool close, cliq_error *err)
{
  int r = cliq_set_thread_state(s->client, CLIQ_PRIO_WRITE, tid,
                                close ? "close" : "reopen", err);
  if (r < 0)
    return r;
  struct state_edit e = { tid, close ? "closed" : "open", -1 };
  edit_thread_info(s, &e);
  edit_cached_threads(s, channel_id, edit_thread_in_list, &e);
  return 0;
}

/* ---- Followers ------------------------------------------------------------------------- */

static json_t *find_user(json_t *arr, const char *id_or_email)
{
  size_t i;
  json_t *u;
  json_array_foreach(arr, i, u) {
    if (strcmp(jstr(u, "user_id"), id_or_email) == 0)
      return u;
  }
  json_array_foreach(arr, i, u) {
    const char *email = jstr(u, "email_id");
    if (*email && strcasecmp(email, id_or_email) == 0)
      return u;
  }
  return NULL;
}

int store_resolve_member(store *s, const char *tid, const char *id_or_email,
                         char **user_id_out, cliq_error *err)
{
  *user_id_out = NULL;
  json_t *fol = NULL, *non = NULL;
  int r = people_json(s, tid, STORE_FOLLOWERS, STORE_PEEK, &fol, err);
  if (r == 0)
    r = people_json(s, tid, STORE_NONFOLLOWERS, STORE_PEEK, &non, err);
  if (r == 0) {
    json_t *u = find_user(fol, id_or_email);
    if (!u)
      u = find_user(non, id_or_email);
    /* Not among what we have cached: the lists may be old, ask once more. */
    if (!u) {
      json_decref(fol);
      json_decref(non);
      fol = non = NULL;
      r = people_json(s, tid, STORE_FOLLOWERS, STORE_FETCH, &fol, err);
      if (r == 0)
        r = people_json(s, tid, STORE_NONFOLLOWERS, STORE_FETCH, &non, err);
      if (r == 0) {
        u = find_user(fol, id_or_email);
        if (!u)
          u = find_user(non, id_or_email);
      }
    }
    if (r == 0) {
      if (u) {
        *user_id_out = xstrdup(jstr(u, "user_id"));
        if (!*user_id_out)
          r = fail(err, ENOMEM, "out of memory");
      } else {
        r = fail(err, EINVAL, "%s is not a member of this channel",
                 id_or_email);
      }
    }
  }
  json_decref(fol);
  json_decref(non);
  return r;
}

static bool id_in(const char *id, const char *const *ids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(id, ids[i]) == 0)
      return true;
  return false;
}

/* Moves users between the cached followers and non-followers lists. */
static void move_people(store *s, const char *tid, const char *const *ids,
                        size_t n, bool to_followers)
{
  char *kf = make_key("followers", tid), *kn = make_key("nonfollowers", tid);
  json_t *fol = NULL, *non = NULL;
  tcache_state sf = kf ? tcache_get(s->cache, kf, &fol, NULL) : TCACHE_MISS;
  tcache_state sn = kn ? tcache_get(s->cache, kn, &non, NULL) : TCACHE_MISS;
  bool have_f = (sf == TCACHE_FRESH || sf == TCACHE_STALE) && fol;
  bool have_n = (sn == TCACHE_FRESH || sn == TCACHE_STALE) && non;
  json_t *nf = have_f ? json_deep_copy(fol) : NULL;
  json_t *nn = have_n ? json_deep_copy(non) : NULL;
  json_t *from = to_followers ? nn : nf, *to = to_followers ? nf : nn;
  bool complete = true;
  for (size_t i = 0; i < n; i++) {
    json_t *u = NULL;
    if (from) {
      size_t k;
      json_t *x;
      json_array_foreach(from, k, x) {
        if (strcmp(jstr(x, "user_id"), ids[i]) == 0) {
          u = json_incref(x);
          json_array_remove(from, k);
          break;
        }
      }
    }
    if (to && !find_user(to, ids[i])) {
      if (u)
        json_array_append(to, u);
      else
        complete = false;   /* we do not know this person's email and name */
    }
    json_decref(u);
  }
  if (nf && (complete || !to_followers))
    tcache_put(s->cache, kf, nf, STORE_TTL_PEOPLE);
  else if (kf)
    tcache_invalidate(s->cache, kf);
  if (nn && (complete || to_followers))
    tcache_put(s->cache, kn, nn, STORE_TTL_PEOPLE);
  else if (kn)
    tcache_invalidate(s->cache, kn);
  json_decref(nf);
  json_decref(nn);
  json_decref(fol);
  json_decref(non);
  free(kf);
  free(kn);
}

int store_followers_add(store *s, const char *tid, const char *const *ids,
                        size_t n, cliq_error *err)
{
  if (n == 0)
    return 0;
  int r = cliq_add_followers(s->client, CLIQ_PRIO_WRITE, tid, ids, n, err);
  if (r < 0)
    return r;
  move_people(s, tid, ids, n, true);
  return 0;
}

int store_followers_remove(store *s, const char *tid, const char *const *ids,
                           size_t n, cliq_error *err)
{
  if (n == 0)
    return 0;
  int r = cliq_remove_followers(s->client, CLIQ_PRIO_WRITE, tid, ids, n, err);
  if (r < 0)
    return r;
  move_people(s, tid, ids, n, false);
  return 0;
}

int store_followers_replace(store *s, const char *tid, const char *const *ids,
                            size_t n, cliq_error *err)
{
  json_t *fol = NULL;
  int r = people_json(s, tid, STORE_FOLLOWERS, STORE_FETCH, &fol, err);
  if (r < 0)
    return r;
  size_t nf = json_array_size(fol);
  const char **add = calloc(n + 1, sizeof *add);
  const char **del = calloc(nf + 1, sizeof *del);
  size_t n_add = 0, n_del = 0;
  if (!add || !del) {
    r = fail(err, ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (!find_user(fol, ids[i]) && !id_in(ids[i], add, n_add))
      add[n_add++] = ids[i];
  for (size_t i = 0; i < nf; i++) {
    const char *id = jstr(json_array_get(fol, i), "user_id");
    if (!id_in(id, ids, n))
      del[n_del++] = id;
  }
  r = store_followers_add(s, tid, add, n_add, err);
  if (r == 0)
    r = store_followers_remove(s, tid, del, n_del, err);
out:
  free(add);
  free(del);
  json_decref(fol);
  return r;
}

/* ---- ctl ------------------------------------------------------------------------------ */

static const char *const ctl_verbs[] = {
  "follow", "unfollow", "mute", "unmute", "leave", "close", "reopen",
};

bool store_ctl_verb_valid(const char *verb)
{
  for (size_t i = 0; i < sizeof ctl_verbs / sizeof *ctl_verbs; i++)
    if (strcmp(verb, ctl_verbs[i]) == 0)
      return true;
  return false;
}

static void forget_people(store *s, const char *tid)
{
  for (int w = 0; w < 3; w++) {
    char *k = make_key(people_kind[w], tid);
    if (k)
      tcache_invalidate(s->cache, k);
    free(k);
  }
}

int store_ctl(store *s, const char *channel_id, const char *tid,
              const char *verb, cliq_error *err)
{
  if (!store_ctl_verb_valid(verb))
    return fail(err, EINVAL, "unknown verb \"%s\"", verb);
  if (strcmp(verb, "close") == 0 || strcmp(verb, "reopen") == 0)
    return store_set_state(s, channel_id, tid, strcmp(verb, "close") == 0, err);
  int r;
  if (strcmp(verb, "follow") == 0 || strcmp(verb, "unfollow") == 0) {
    bool follow = strcmp(verb, "follow") == 0;
    r = follow ? cliq_follow(s->client, CLIQ_PRIO_WRITE, tid, err)
               : cliq_unfollow(s->client, CLIQ_PRIO_WRITE, tid, err);
    if (r < 0)
      return r;
    struct state_edit e = { tid, NULL, follow };
    edit_thread_info(s, &e);
    edit_cached_threads(s, channel_id, edit_thread_in_list, &e);
    self_load(s);
    pthread_mutex_lock(&s->lock);
    char *self = s->self_id ? strdup(s->self_id) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (self) {
      const char *ids[] = { self };
      move_people(s, tid, ids, 1, follow);
    } else {
      forget_people(s, tid);
    }
    free(self);
    return 0;
  }
  if (strcmp(verb, "mute") == 0)
    return cliq_mute(s->client, CLIQ_PRIO_WRITE, tid, err);
  if (strcmp(verb, "unmute") == 0)
    return cliq_unmute(s->client, CLIQ_PRIO_WRITE, tid, err);
  /* leave */
  r = cliq_leave(s->client, CLIQ_PRIO_WRITE, tid, err);
  if (r == 0)
    forget_people(s, tid);
  return r;
}

/* ---- Drafts ------------------------------------------------------------------------------ */

#define DRAFT_TTL (10.0 * 365 * 86400)

/* The channel's drafts object (borrowed, lock held), loading it from the
 * cache the first time. */
static json_t *drafts_of_locked(store *s, const char *channel_id)
{
  json_t *d = json_object_get(s->drafts, channel_id);
  if (d)
    return d;
  char *key = make_key("drafts", channel_id);
  json_t *v = NULL;
  tcache_state st = key ? tcache_get(s->cache, key, &v, NULL) : TCACHE_MISS;
  free(key);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && json_is_object(v))
    d = json_deep_copy(v);
  else
    d = json_object();
  json_decref(v);
  if (!d)
    return NULL;
  json_object_set_new(s->drafts, channel_id, d);
  return d;
}

static void drafts_persist_locked(store *s, const char *channel_id)
{
  json_t *d = json_object_get(s->drafts, channel_id);
  char *key = make_key("drafts", channel_id);
  if (d && key) {
    json_t *copy = json_deep_copy(d);
    if (copy)
      tcache_put(s->cache, key, copy, DRAFT_TTL);
    json_decref(copy);
  }
  free(key);
}

void store_draft_clear(store_draft *d)
{
  if (!d)
    return;
  free(d->name);
  free(d->main_message_id);
  free(d->main_text);
  free(d->thread_chat_id);
  memset(d, 0, sizeof *d);
}

static char *opt_str(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? strdup(v) : NULL;
}

int store_draft_create(store *s, const char *channel_id, const char *name)
{
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  int r = 0;
  if (!d)
    r = -ENOMEM;
  else if (json_object_get(d, name))
    r = -EEXIST;
  else if (json_object_set_new(d, name, json_object()) < 0)
    r = -ENOMEM;
  else
    drafts_persist_locked(s, channel_id);
  pthread_mutex_unlock(&s->lock);
  return r;
}

int store_draft_get(store *s, const char *channel_id, const char *name,
                    store_draft *out)
{
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  json_t *o = d ? json_object_get(d, name) : NULL;
  int r = -ENOENT;
  if (o) {
    out->name = strdup(name);
    out->main_message_id = opt_str(o, "main_message_id");
    out->main_text = opt_str(o, "main_text");
    out->thread_chat_id = opt_str(o, "thread_chat_id");
    r = out->name ? 0 : -ENOMEM;
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

int store_draft_list(store *s, const char *channel_id, char ***names_out,
                     size_t *n_out)
{
  *names_out = NULL;
  *n_out = 0;
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  size_t n = d ? json_object_size(d) : 0;
  char **names = calloc(n + 1, sizeof *names);
  int r = names ? 0 : -ENOMEM;
  size_t k = 0;
  const char *name;
  json_t *o;
  if (names && d) {
    json_object_foreach(d, name, o) {
      names[k] = strdup(name);
      if (!names[k]) {
        r = -ENOMEM;
        break;
      }
      k++;
    }
  }
  pthread_mutex_unlock(&s->lock);
  if (r < 0) {
    for (size_t i = 0; i < k; i++)
      free(names[i]);
    free(names);
    return r;
  }
  *names_out = names;
  *n_out = k;
  return 0;
}

int store_draft_discard(store *s, const char *channel_id, const char *name)
{
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  json_t *o = d ? json_object_get(d, name) : NULL;
  int r = 0;
  if (!o)
    r = -ENOENT;
  else if (json_object_get(o, "thread_chat_id"))
    r = -EPERM;
  else {
    json_object_del(d, name);
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

static int draft_set(store *s, const char *channel_id, const char *name,
                     const char *field, const char *value)
{
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  json_t *o = d ? json_object_get(d, name) : NULL;
  int r = -ENOENT;
  if (o) {
    r = json_object_set_new(o, field, json_string(value)) < 0 ? -ENOMEM : 0;
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

int store_draft_post_main(store *s, const char *channel_id,
                          const char *channel_chat_id, const char *name,
                          const char *text, cliq_error *err)
{
  store_draft d;
  int r = store_draft_get(s, channel_id, name, &d);
  if (r < 0)
    return fail(err, -r, "no draft %s", name);
  bool posted = d.main_message_id != NULL;
  store_draft_clear(&d);
  if (posted)
    return fail(err, EACCES, "the thread's main message was already posted");
  char *id = NULL;
  r = cliq_post_channel_message(s->client, CLIQ_PRIO_WRITE, channel_id, text,
                                &id, err);
  if (r < 0)
    return r;
  if (!id)
    return fail(err, EIO, "Cliq did not say which message it created");
  char *norm = cliq_normalize_message_id(id);
  free(id);
  if (!norm)
    return fail(err, ENOMEM, "out of memory");
  json_t *raw = own_message(s, channel_chat_id, norm, text);
  char *main_text = NULL;
  size_t main_len = 0;
  if (raw)
    render_message_json(raw, &main_text, &main_len, NULL);
  if (!main_text) {
    /* Who we are is not known yet: show the text with the time. */
    char ts[32];
    store_format_time((int64_t)strtoll(norm, NULL, 10), ts, sizeof ts);
    if (asprintf(&main_text, "%s me: %s\n", ts, text) < 0)
      main_text = NULL;
  }
  log_append_own(s, channel_chat_id, raw);
  json_decref(raw);
  r = draft_set(s, channel_id, name, "main_message_id", norm);
  if (r == 0 && main_text)
    r = draft_set(s, channel_id, name, "main_text", main_text);
  free(norm);
  free(main_text);
  return r < 0 ? fail(err, -r, "draft %s vanished", name) : 0;
}

struct new_thread {
  json_t *thread;
};

static void add_thread_to_list(json_t *arr, void *arg)
{
  struct new_thread *nt = arg;
  const char *id = jstr(nt->thread, "chat_id");
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t)
    if (strcmp(jstr(t, "chat_id"), id) == 0)
      return;
  json_array_append(arr, nt->thread);
}

int store_draft_append(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *name,
                       const char *text, cliq_error *err)
{
  store_draft d;
  int r = store_draft_get(s, channel_id, name, &d);
  if (r < 0)
    return fail(err, -r, "no draft %s", name);
  if (d.thread_chat_id) {
    r = store_reply(s, d.thread_chat_id, text, err);
    store_draft_clear(&d);
    return r;
  }
  if (!d.main_message_id) {
    store_draft_clear(&d);
    return fail(err, EDESTADDRREQ,
                "write the thread's main message (main) before its messages");
  }
  char *tid = NULL, *mid = NULL;
  r = cliq_create_thread(s->client, CLIQ_PRIO_WRITE, channel_id,
                         channel_chat_id, d.main_message_id, name, text, &tid,
                         &mid, err);
  if (r == 0 && !tid)
    r = fail(err, EIO, "Cliq did not say which thread it created");
  if (r == 0) {
    draft_set(s, channel_id, name, "thread_chat_id", tid);
    int64_t now_ms = (int64_t)(now_wall() * 1000);
    json_t *thread = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:{s:I}}", "chat_id", tid,
        "parent_chat_id", channel_chat_id ? channel_chat_id : "",
        "thread_message_id", d.main_message_id, "title", name, "thread_state",
        "open", "follower_count", (json_int_t)1, "is_follower", 1,
        "last_message_information", "time", (json_int_t)now_ms);
    if (thread) {
      struct new_thread nt = { thread };
      edit_cached_threads(s, channel_id, add_thread_to_list, &nt);
      json_decref(thread);
    }
  }
  free(tid);
  free(mid);
  store_draft_clear(&d);
  return r;
}
