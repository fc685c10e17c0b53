/* cache/store: see store.h.  docs/design.md "Cache" tells the story. */
#include "cache/store.h"
#include "cache/patience.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cache/delivery.h"
#include "cache/idset.h"
#include "cache/statefile.h"

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

/* A name or an id inside a line: control characters (a TAB or a line break
 * would forge fields or lines) become spaces. */
/* U+0080..U+009F in UTF-8 (0xC2 0x80..0x9F): C1 controls, which some
 * terminals obey (U+009B is CSI). */
static bool c1_at(const unsigned char *p, size_t left)
{
  return left >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
}

static int buf_append_field(char **buf, size_t *len, size_t *cap,
                            const char *s)
{
  size_t start = *len;
  int r = buf_append_str(buf, len, cap, s);
  for (size_t i = start; r == 0 && i < *len; i++) {
    unsigned char *p = (unsigned char *)*buf + i;
    if (*p < 0x20 || *p == 0x7f) {
      *p = ' ';
    } else if (c1_at(p, *len - i)) {
      p[0] = ' ';
      p[1] = ' ';
      i++;
    }
  }
  return r;
}

/* Text as `cat -v` shows it: a control character becomes ^X (^[ for ESC,
 * ^M for CR, ^? for DEL, ^@ for NUL), a C1 control M-^X; TAB and every
 * printable character, UTF-8 included, stay.  So text from Cliq cannot
 * move a reader's cursor, set its title or write its clipboard. */
static int buf_append_shown(char **buf, size_t *len, size_t *cap,
                            const char *data, size_t n)
{
  const unsigned char *p = (const unsigned char *)data;
  int r = 0;
  size_t run = 0;  /* bytes copied as they are, waiting to go out */
  for (size_t i = 0; i < n && r == 0; i++) {
    char esc[5];
    size_t k = 0;
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) {
      esc[k++] = '^';
      esc[k++] = p[i] == 0x7f ? '?' : (char)(p[i] + 64);
    } else if (c1_at(p + i, n - i)) {
      esc[k++] = 'M';
      esc[k++] = '-';
      esc[k++] = '^';
      esc[k++] = (char)(p[i + 1] - 0x80 + 64);
    } else {
      run++;
      continue;
    }
    r |= buf_append(buf, len, cap, data + i - run, run);
    run = 0;
    r |= buf_append(buf, len, cap, esc, k);
    if (p[i] == 0xc2)
      i++;
  }
  if (r == 0)
    r |= buf_append(buf, len, cap, data + n - run, run);
  return r;
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
  double poll_retry_at;     /* refresher: no list poll before (after a no) */
};

/* What the refresher knows of a followed chat (refresher thread only). */
struct follow_info {
  char *channel_id;         /* a thread's channel; NULL: a channel's own chat
                             * or not known (then it is polled directly) */
  bool resolved;
  int64_t chased_ms;        /* the newest last-message time of a thread list
                             * that a fetch of this chat already answered */
  int64_t list_ms;          /* the last-message time the list showed last */
  int64_t trying_ms;        /* the value being chased, and how many fetches */
  int tries;                /* it took so far */
};

#define FNV_BASIS 14695981039346656037ULL   /* FNV-1a's offset basis */

struct store_log {
  store *s;
  char *chat_id;
  char *key;
  pthread_mutex_t lock;
  bool known;
  bool disk_tried;
  idset ids;                /* refs: offsets of the lines in jsonl */
  char *text;
  size_t text_len, text_cap;
  char *jsonl;              /* the messages, one JSON line each, in log order:
                             * kept instead of parsed objects (~10x smaller) */
  size_t jsonl_len, jsonl_cap;
  int64_t cursor_ms;        /* newest time among messages the server sent */
  int64_t last_ms;          /* newest time of any message in the log */
  /* The disk copy of jsonl, beside the tcache's record of the log (which
   * holds only what follows, not the messages): the first disk_len bytes of
   * jsonl are in the file at disk_path, their FNV-1a is disk_sum, and
   * disk_cursor_ms was the cursor when they were all there. */
  char *disk_path;          /* NULL: no disk copy */
  size_t disk_len;
  uint64_t disk_sum;
  int64_t disk_cursor_ms;
  double fetched_at;        /* wall time of the last fetch attempt's end */
  double next_try_at;       /* refresher: not before (after failures) */
  bool wanted;              /* served stale to a reader: refresher fetches it */
  int readers;
};

/* Refusals remembered for store_ids_failure() (fsync after the fact). */
#define STORE_FAILURES 1024

struct store {
  cliq_client *client;
  gov *gov;
  tcache *cache;
  int history;
  double scale;
  double max_wait_s;
  void (*log_grew)(void *ctx, const char *chat_id);
  void (*threads_changed)(void *ctx, const char *channel_id);
  void (*drafts_changed)(void *ctx, const char *channel_id);
  void (*write_failed)(void *ctx, const outbox_entry *e, const char *path,
                       const cliq_error *err);
  void (*entries_skipped)(void *ctx, const char *what, size_t count,
                          const char *why);
  void (*delivery_stalled)(void *ctx, const cliq_error *err);
  void *cb_ctx;

  outbox *ob;               /* NULL: no journal */
  delivery *dl;
  pthread_mutex_t fail_lock;
  struct { uint64_t id; int err; } failures[STORE_FAILURES];
  size_t failures_next;
  uint64_t refused;

  pthread_mutex_t lock;     /* guards everything below */
  json_t *channels_src;
  store_channels *channels;
  struct smap threads;      /* channel_id -> struct threads_slot */
  struct smap logs;         /* chat_id -> store_log */
  struct smap follow;       /* chat_id -> struct follow_info (refresher) */
  struct smap skips;        /* what -> reason last reported (entries_skipped) */
  json_t *drafts;           /* channel_id -> {name -> draft object} */
  char *self_id;
  char *self_name;
  bool self_loaded;
  char *probe_chat;         /* our first post while self_id is unknown: the */
  char *probe_msg;          /* next fetch of that chat tells who we are */

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

static void on_delivered(void *ctx, const outbox_entry *e,
                         const char *message_id);
static void on_thread_created(void *ctx, const outbox_entry *e,
                              const char *thread_chat_id);
static void on_failed(void *ctx, const outbox_entry *e, const cliq_error *err);
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
    fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  s->client = o->client;
  s->gov = o->gov;
  s->cache = o->cache;
  s->history = o->history > 0 ? o->history : 100;
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
    fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->fail_lock, NULL);
  pthread_cond_init(&s->wake, NULL);
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
       * still land: after the client's timeout.  time_scale compresses it
       * like every other wait (tests; the emulator answers at once). */
      double timeout = o->request_timeout_s > 0 ? o->request_timeout_s : 30.0;
      double settle = timeout / s->scale;
      if (settle < 1.0)
        settle = 1.0;
      delivery_options dopts = {
        .time_scale = s->scale,
        .settle_s = settle,
        .poll_s = 1.0,
      };
      s->dl = delivery_new(s->ob, s->client, &hooks, &dopts);
      if (!s->dl) {
        fail(err, ENOMEM, "out of memory");
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

static void log_free(void *p)
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
  if (fi)
    free(fi->channel_id);
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
  pthread_mutex_unlock(&s->lock);
  if (running)
    pthread_join(s->refresher, NULL);
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

struct fetch_ctx {
  store *s;
  const char *arg;           /* channel id, chat id, thread chat id */
  enum cliq_priority prio;
  int which;                 /* for people lists */
  store_log *log;
  bool fetched;              /* the fetch function ran */
  bool grew;                 /* a log got new messages */
  tcache_fetch_fn inner;     /* what fetch_retrying() calls */
  enum cliq_api api;         /* the API class it asks */
};

static bool api_free_now(store *s, enum cliq_api api);

/* Failures worth asking again at once: Cliq's 5xx, a connection dropped
 * before the answer.  Not 4xx (the answer would be the same), not timeouts
 * (the user already waited the client's timeout), not the governor's no. */
static bool read_retryable(const cliq_error *e)
{
  if (e->http_status >= 500 && e->http_status <= 599)
    return true;
  switch (e->curl_code) {
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return true;
  default:
    return false;
  }
}

#define READ_RETRIES 2
#define READ_RETRY_BASE_S 0.5

static double now_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double seconds)
{
  if (seconds <= 0)
    return;
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* A read a user waits for (CLIQ_PRIO_READ) is asked again up to
 * READ_RETRIES times after a 5xx or a dropped connection, after a short,
 * jittered backoff (scaled by time_scale), as long as that stays within
 * max_wait; cliqfs(1) ERRORS: Cliq 5xx after retries is then EIO. */
static int fetch_retrying(void *vctx, const char *key, json_t **out,
                          cliq_error *err)
{
  struct fetch_ctx *ctx = vctx;
  cliq_error local;
  if (!err)
    err = &local;
  double deadline = now_mono() + ctx->s->max_wait_s;
  unsigned seed = (unsigned)(uintptr_t)ctx ^ (unsigned)time(NULL);
  cliq_error first;
  memset(&first, 0, sizeof first);
  int first_r = 0;
  for (int attempt = 0;; attempt++) {
    memset(err, 0, sizeof *err);
    int r = ctx->inner(vctx, key, out, err);
    if (r < 0 && attempt > 0 && !err->http_status && !err->curl_code) {
      /* The retry was not sent (the governor said no): what the user gets
       * is what Cliq said before. */
      *err = first;
      return first_r;
    }
    if (r == 0 || ctx->prio != CLIQ_PRIO_READ || attempt >= READ_RETRIES ||
        !read_retryable(err))
      return r;
    if (attempt == 0) {
      first = *err;
      first_r = r;
    }
    double base = READ_RETRY_BASE_S * (double)(1 << attempt);
    double delay = (base / 2 + base / 2 * (double)rand_r(&seed) / RAND_MAX) /
                   ctx->s->scale;
    /* A retry must not make the user wait for a rate slot either. */
    if (now_mono() + delay > deadline || !api_free_now(ctx->s, ctx->api))
      return r;
    sleep_s(delay);
  }
}

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
    r = fail(err, EIO, "cache returned nothing for %s", key);
  if (r == 0 && err && err->err && ctx && !ctx->fetched)
    clear_err(err);
  return r;
}

/* Made on every cached read: no printf. */
static char *make_key(const char *kind, const char *id)
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

/* ---- Channels ------------------------------------------------------------------ */

/* Tells the fs of entries left out of an answer, once per what and reason. */
static void report_skipped(store *s, const char *what, size_t count,
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

/* The refresher's poll of a channel's thread list, in the background lane:
 * Cliq is asked only when the list is older than max_age_s (unscaled).
 * Returns the (referenced) snapshot, or NULL when nothing is known; *failed
 * says the poll was refused or failed (a stale snapshot may still come). */
static store_threads *threads_poll(store *s, const char *channel_id,
                                   double max_age_s, bool *failed)
{
  *failed = false;
  char *key = make_key("threads", channel_id);
  if (!key)
    return NULL;
  struct fetch_ctx ctx = { .s = s, .arg = channel_id,
                           .prio = CLIQ_PRIO_BACKGROUND, .inner = fetch_threads,
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

static int render_info(json_t *v, char **text_out, size_t *len_out,
                       cliq_error *err)
{
  char *txt = json_dumps(v, JSON_INDENT(2));
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

static int main_json(store *s, const char *tid, enum store_mode mode,
                     json_t **out, cliq_error *err)
{
  char *key = make_key("main", tid);
  if (!key)
    return fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = tid, .prio = CLIQ_PRIO_READ };
  int r = cached_fetch(s, key, STORE_TTL_MAIN, CLIQ_API_THREADS_MAIN, mode,
                       fetch_main, &ctx, out, err);
  free(key);
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
  if (list.skipped) {
    static const char *const kind[] = { "members", "followers", "non-followers" };
    char what[160];
    snprintf(what, sizeof what, "%s of thread %s",
             kind[ctx->which >= 0 && ctx->which <= 2 ? ctx->which : 0], ctx->arg);
    report_skipped(ctx->s, what, list.skipped, list.skipped_why);
  }
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

static int render_people(json_t *v, char **text_out, size_t *len_out,
                         cliq_error *err)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int r = buf_append(&buf, &len, &cap, "", 0);
  size_t i;
  json_t *u;
  json_array_foreach(v, i, u) {
    cliq_user cu = { (char *)jstr(u, "user_id"), (char *)jstr(u, "email_id"),
                     (char *)jstr(u, "name") };
    if (r == 0)
      r = store_render_user(&cu, &buf, &len, &cap);
  }
  if (r < 0) {
    free(buf);
    return fail(err, ENOMEM, "out of memory");
  }
  *text_out = buf;
  *len_out = len;
  return 0;
}

int store_doc_source(store *s, const char *tid, enum store_doc doc,
                     enum store_mode mode, json_t **src_out, cliq_error *err)
{
  *src_out = NULL;
  switch (doc) {
  case STORE_DOC_INFO:
    return thread_info_json(s, tid, mode, src_out, err);
  case STORE_DOC_MAIN:
    return main_json(s, tid, mode, src_out, err);
  case STORE_DOC_MEMBERS:
    return people_json(s, tid, STORE_MEMBERS, mode, src_out, err);
  case STORE_DOC_FOLLOWERS:
    return people_json(s, tid, STORE_FOLLOWERS, mode, src_out, err);
  case STORE_DOC_NONFOLLOWERS:
    return people_json(s, tid, STORE_NONFOLLOWERS, mode, src_out, err);
  }
  return fail(err, EINVAL, "no such document");
}

int store_doc_render(enum store_doc doc, json_t *src, char **text_out,
                     size_t *len_out, cliq_error *err)
{
  *text_out = NULL;
  *len_out = 0;
  switch (doc) {
  case STORE_DOC_INFO:
    return render_info(src, text_out, len_out, err);
  case STORE_DOC_MAIN:
    return render_message_json(src, text_out, len_out, err);
  case STORE_DOC_MEMBERS:
  case STORE_DOC_FOLLOWERS:
  case STORE_DOC_NONFOLLOWERS:
    return render_people(src, text_out, len_out, err);
  }
  return fail(err, EINVAL, "no such document");
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

char *store_shown_text(const char *s)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (buf_append_str(&buf, &len, &cap, "") < 0 ||
      buf_append_shown(&buf, &len, &cap, s ? s : "", s ? strlen(s) : 0) < 0) {
    free(buf);
    return NULL;
  }
  return buf;
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
  r |= buf_append_field(buf, len, cap, who);
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
    r |= buf_append_shown(buf, len, cap, text + start, end - start);
    r |= buf_append_str(buf, len, cap, "\n");
    start = i + 1;
  }
  return r ? -ENOMEM : 0;
}

int store_render_user(const cliq_user *u, char **buf, size_t *len, size_t *cap)
{
  int r = 0;
  r |= buf_append_field(buf, len, cap, u->user_id ? u->user_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_field(buf, len, cap, u->email_id ? u->email_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_field(buf, len, cap, u->name ? u->name : "");
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
      log->disk_path = log->key ? tcache_disk_path(s->cache, log->key, "jsonl")
                                : NULL;
      log->disk_sum = FNV_BASIS;
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

/* Messages on their way into a log: both lines rendered into the batch's
 * buffers as they come (the parsed messages are dropped page by page),
 * de-duplicated by id, then sorted or kept in the given order. */
struct log_batch_item {
  int64_t time_ms;
  uint64_t hash;            /* idset_hash() of the id */
  size_t id_off;            /* in ids, NUL-terminated */
  size_t jsonl_off, jsonl_len;
  size_t text_off, text_len;
  bool dup;                 /* in the log already */
};

struct log_batch {
  struct log_batch_item *items;
  size_t count, cap;
  char *ids, *jsonl, *text;
  size_t ids_len, ids_cap, jsonl_len, jsonl_cap, text_len, text_cap;
  idset seen;               /* refs: indexes into items */
};

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
static int log_line_message(const store_log *log, uint64_t off, cliq_message *m)
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
static int log_append_locked(store_log *log, const cliq_message *m,
                             bool from_server)
{
  struct log_batch b = { 0 };
  int r = log_batch_add(&b, m);
  if (r > 0)
    r = log_append_batch_locked(log, &b, from_server);
  log_batch_clear(&b);
  return r < 0 ? -ENOMEM : r > 0 ? 1 : 0;
}

static uint64_t fnv_more(uint64_t h, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* Writes n bytes at offset off of path (created 0600; cut to nothing first
 * when off is 0).  Not fsync'd: a cache can be fetched again, and the
 * checksum in the record tells a torn copy. */
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

/* Brings the disk copy of the JSONL up to date, writing only what it lacks
 * (the log is append-only), and returns the log's record for the tcache:
 * the cursor and the length and checksum of the disk copy, not the messages
 * (lock held).  When the write fails the record tells the older copy, with
 * the cursor of its time (the messages after it are fetched again). */
static json_t *log_persistent_locked(store_log *log)
{
  if (log->disk_path && log->disk_len < log->jsonl_len) {
    size_t n = log->jsonl_len - log->disk_len;
    if (write_at(log->disk_path, log->jsonl + log->disk_len, n,
                 log->disk_len) == 0) {
      log->disk_sum = fnv_more(log->disk_sum, log->jsonl + log->disk_len, n);
      log->disk_len = log->jsonl_len;
    }
  }
  /* The cursor moves only with messages appended: all on disk, it is current. */
  if (log->disk_len == log->jsonl_len)
    log->disk_cursor_ms = log->cursor_ms;
  char sum[17];
  snprintf(sum, sizeof sum, "%016" PRIx64, log->disk_sum);
  return json_pack("{s:I, s:I, s:s}", "cursor_ms",
                   (json_int_t)log->disk_cursor_ms, "jsonl_bytes",
                   (json_int_t)log->disk_len, "jsonl_fnv", sum);
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

/* A log's disk copy as loaded: the file's first len bytes. */
struct disk_copy {
  char *buf;
  size_t len;
  uint64_t sum;
  bool present;
};

/* The disk copy a record tells of, checked against its length and checksum:
 * 0, or -ENOENT (missing, shorter, another content: a torn write, another
 * process on the folder). */
static int disk_copy_read(const store_log *log, json_t *v, struct disk_copy *dc)
{
  json_int_t len = json_integer_value(json_object_get(v, "jsonl_bytes"));
  const char *hex = json_string_value(json_object_get(v, "jsonl_fnv"));
  char *end = NULL;
  uint64_t sum = hex ? strtoull(hex, &end, 16) : 0;
  /* 0 bytes: nothing could be written (or nothing was there): fetch again
   * rather than serve a known, empty log. */
  if (len <= 0 || (uint64_t)len >= SIZE_MAX || !hex || !*hex || *end)
    return -ENOENT;
  size_t n = (size_t)len;
  char *buf = NULL;
  size_t got = 0;
  if (n > 0 && (!log->disk_path || statefile_read(log->disk_path, &buf, &got) < 0))
    return -ENOENT;
  if (got < n || fnv_more(FNV_BASIS, buf, n) != sum) {
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

static bool self_probe_pending(store *s, const char *chat_id);
static void self_probe_drop(store *s, const char *chat_id);
static void self_spot(store *s, const char *chat_id, const cliq_message *msgs,
                      size_t n);

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
        fail(err, ENOMEM, "out of memory");
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
        fail(err, ENOMEM, "out of memory");
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
  log_batch_clear(&batch);
  if (r < 0) {
    pthread_mutex_lock(&log->lock);
    log->fetched_at = now_wall();
    pthread_mutex_unlock(&log->lock);
  }
  return r;
}

/* Loads the disk copy once.  It happens under the log's lock, so that a
 * second opener waits for it instead of finding the log neither loaded nor
 * fetched (tcache_fetch would see the fresh record and fetch nothing). */
static void log_try_disk(store *s, store_log *log)
{
  pthread_mutex_lock(&log->lock);
  bool need = !log->known && !log->disk_tried;
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
      log->fetched_at = now_wall() - age;
    } else {
      /* A record without its messages: however fresh, the log is fetched. */
      tcache_invalidate(s->cache, log->key);
    }
    free(dc.buf);
    log_batch_clear(&batch);
  }
  pthread_mutex_unlock(&log->lock);
  json_decref(v);
}

static int log_refresh(store *s, store_log *log, enum cliq_priority prio,
                       double max_age_s, cliq_error *err)
{
  struct fetch_ctx ctx = { .s = s, .arg = log->chat_id, .prio = prio,
                           .log = log, .inner = fetch_log,
                           .api = CLIQ_API_CHATS_MESSAGES };
  json_t *v = NULL;
  int r = tcache_fetch_younger(s->cache, log->key, max_age_s,
                               ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES),
                               fetch_retrying, &ctx, &v, err);
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
  pthread_mutex_unlock(&log->lock);
}

/* ---- Background refresher ------------------------------------------------------------ */

static char *channel_of_thread(store *s, const char *tid);

/* Fetches of one announced last-message time that does not arrive. */
#define FOLLOW_CHASE_TRIES 2

/* A followed chat in one round of the refresher. */
struct followed {
  store_log *log;
  bool stale;                 /* older than its own freshness */
  struct follow_info *fi;
  bool by_list;               /* watched through its channel's thread list */
};

static struct follow_info *follow_info_for(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  struct follow_info *fi = smap_get(&s->follow, chat_id);
  if (!fi) {
    fi = calloc(1, sizeof *fi);
    if (fi && smap_put(&s->follow, chat_id, fi) < 0) {
      free(fi);
      fi = NULL;
    }
  }
  pthread_mutex_unlock(&s->lock);
  return fi;
}

/* Pages of a channel's thread list as last seen (0: never listed), and when
 * its next poll may be tried. */
static size_t threads_pages(store *s, const char *channel_id, double *retry_at)
{
  pthread_mutex_lock(&s->lock);
  struct threads_slot *slot = smap_get(&s->threads, channel_id);
  size_t pages = 0;
  if (slot && slot->snap)
    pages = slot->snap->count ? (slot->snap->count + 99) / 100 : 1;
  *retry_at = slot ? slot->poll_retry_at : 0;
  pthread_mutex_unlock(&s->lock);
  return pages;
}

static void threads_poll_later(store *s, const char *channel_id, double at)
{
  pthread_mutex_lock(&s->lock);
  struct threads_slot *slot = smap_get(&s->threads, channel_id);
  if (slot)
    slot->poll_retry_at = at;
  pthread_mutex_unlock(&s->lock);
}

/* Fetches what is new in a followed log in the background lane; after a
 * failure (or the governor's no) the log waits a quarter of its freshness,
 * never a tight loop.  Returns true when the fetch succeeded. */
static bool follow_fetch(store *s, store_log *log, double max_age_s,
                         double fresh_s)
{
  cliq_error err;
  int r = log_refresh(s, log, CLIQ_PRIO_BACKGROUND, max_age_s, &err);
  if (r == 0 && !err.err) {
    pthread_mutex_lock(&log->lock);
    log->wanted = false;
    pthread_mutex_unlock(&log->lock);
  }
  if (r < 0 || err.err) {
    pthread_mutex_lock(&log->lock);
    log->next_try_at = now_wall() + fresh_s / 4;
    pthread_mutex_unlock(&log->lock);
    return false;
  }
  return true;
}

/* Watches the followed threads of one channel through its thread list, which
 * carries each thread's last message time: one request tells which of them
 * changed, and only those are fetched.  f[first] and the later entries of
 * the same channel are marked by_list. */
static void follow_channel(store *s, struct followed *f, size_t n, size_t first,
                           double retry_at, double fresh_s)
{
  const char *channel_id = f[first].fi->channel_id;
  bool failed = false;
  store_threads *t = NULL;
  if (now_wall() >= retry_at) {
    t = threads_poll(s, channel_id,
                     ttl_for(s, STORE_TTL_LOG, CLIQ_API_THREADS_LIST), &failed);
    if (failed)
      threads_poll_later(s, channel_id, now_wall() + fresh_s / 4);
  }
  for (size_t j = first; j < n; j++) {
    if (!f[j].fi || !f[j].fi->channel_id || f[j].by_list ||
        strcmp(f[j].fi->channel_id, channel_id) != 0)
      continue;
    f[j].by_list = true;
    if (!t)
      continue;                   /* not asked this round */
    store_log *log = f[j].log;
    const store_thread *th = store_threads_find(t, log->chat_id);
    if (!th || th->last_ms <= 0) {
      f[j].by_list = false;       /* the list cannot tell: poll it directly */
      continue;
    }
    struct follow_info *fi = f[j].fi;
    pthread_mutex_lock(&log->lock);
    int64_t cursor = log->cursor_ms;
    double next_try = log->next_try_at;
    pthread_mutex_unlock(&log->lock);
    /* Fetched when the entry moved since the last poll (even to a time not
     * newer than ours: the list's clock may be coarser than the messages'),
     * or when it is newer than what we have and not chased yet. */
    bool moved = fi->list_ms && th->last_ms != fi->list_ms;
    bool newer = th->last_ms > cursor && th->last_ms > fi->chased_ms;
    if (!moved && !newer) {
      fi->list_ms = th->last_ms;
      continue;
    }
    if (now_wall() < next_try || !follow_fetch(s, log, 0, fresh_s))
      continue;                   /* the signal stays for the next round */
    fi->list_ms = th->last_ms;
    if (fi->trying_ms != th->last_ms) {
      fi->trying_ms = th->last_ms;
      fi->tries = 0;
    }
    pthread_mutex_lock(&log->lock);
    int64_t got = log->cursor_ms;
    pthread_mutex_unlock(&log->lock);
    /* A fetch already on its way when the message came (joined by single
     * flight) does not bring it: asked again.  A message the list announces
     * but the messages endpoint does not return (deleted) is asked for
     * FOLLOW_CHASE_TRIES times, not on every poll. */
    if (got >= th->last_ms || ++fi->tries >= FOLLOW_CHASE_TRIES)
      fi->chased_ms = th->last_ms;
  }
  store_threads_unref(t);
}

/* One round of the refresher over the followed chats.  A channel whose
 * followed threads outnumber its thread-list pages is watched through that
 * list; every other followed chat is fetched when it is stale. */
static void follow_round(store *s, struct followed *f, size_t n, double fresh_s)
{
  for (size_t i = 0; i < n; i++) {
    struct follow_info *fi = f[i].fi = follow_info_for(s, f[i].log->chat_id);
    if (fi && !fi->resolved) {
      fi->channel_id = channel_of_thread(s, f[i].log->chat_id);
      fi->resolved = fi->channel_id != NULL;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (f[i].by_list || !f[i].fi || !f[i].fi->channel_id)
      continue;
    size_t members = 0;
    for (size_t j = i; j < n; j++)
      if (f[j].fi && f[j].fi->channel_id && !f[j].by_list &&
          strcmp(f[j].fi->channel_id, f[i].fi->channel_id) == 0)
        members++;
    double retry_at;
    size_t pages = threads_pages(s, f[i].fi->channel_id, &retry_at);
    if (pages > 0 && members > pages)
      follow_channel(s, f, n, i, retry_at, fresh_s);
  }
  for (size_t i = 0; i < n; i++) {
    if (f[i].by_list || !f[i].stale)
      continue;
    pthread_mutex_lock(&f[i].log->lock);
    bool may = now_wall() >= f[i].log->next_try_at;
    pthread_mutex_unlock(&f[i].log->lock);
    if (may)
      follow_fetch(s, f[i].log, -1, fresh_s);
  }
}

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
    /* The logs (references stay valid: logs live until store_free, which
     * first stops this thread), then, without s->lock, the followed ones: a
     * log's lock may be held over a disk write. */
    size_t nall = 0;
    store_log **all = malloc((s->logs.count ? s->logs.count : 1) * sizeof *all);
    for (size_t b = 0; all && b < s->logs.n_buckets; b++)
      for (struct smap_entry *e = s->logs.buckets[b]; e; e = e->next)
        all[nall++] = e->value;
    pthread_mutex_unlock(&s->lock);
    size_t n = 0;
    struct followed *due = nall ? calloc(nall, sizeof *due) : NULL;
    double now = now_wall();
    double fresh_s = ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES) / s->scale;
    for (size_t i = 0; due && i < nall; i++) {
      store_log *log = all[i];
      pthread_mutex_lock(&log->lock);
      bool followed = log->known && (log->readers > 0 || log->wanted);
      bool stale = now - log->fetched_at >= fresh_s;
      pthread_mutex_unlock(&log->lock);
      if (followed)
        due[n++] = (struct followed){ .log = log, .stale = stale };
    }
    free(all);
    follow_round(s, due, n, fresh_s);
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

static void self_load(store *s);

void store_self_get(store *s, char **id_out, char **name_out)
{
  self_load(s);
  pthread_mutex_lock(&s->lock);
  *id_out = s->self_id ? strdup(s->self_id) : NULL;
  *name_out = s->self_name ? strdup(s->self_name) : NULL;
  pthread_mutex_unlock(&s->lock);
}

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

struct sender_of {
  store_log *log;
  char *id, *name;
};

static bool line_sender_if_id(void *ctx, uint64_t off, const char *id)
{
  struct sender_of *so = ctx;
  cliq_message m;
  if (log_line_message(so->log, off, &m) < 0)
    return false;
  bool same = strcmp(m.id, id) == 0;
  if (same && m.sender_id && *m.sender_id && !so->id) {
    so->id = strdup(m.sender_id);
    so->name = strdup(m.sender_name ? m.sender_name : "");
  }
  cliq_message_clear(&m);
  return same;
}

/* Who sent message msg_id (normalized) of a known log, if it is there. */
static bool log_sender_of(store *s, const char *chat_id, const char *msg_id,
                          char **sender_id, char **sender_name)
{
  *sender_id = *sender_name = NULL;
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  pthread_mutex_unlock(&s->lock);
  if (!log)
    return false;
  struct sender_of so = { .log = log };
  pthread_mutex_lock(&log->lock);
  if (log->known)
    idset_has(&log->ids, msg_id, idset_hash(msg_id), line_sender_if_id, &so);
  pthread_mutex_unlock(&log->lock);
  if (!so.id || !so.name) {
    free(so.id);
    free(so.name);
    return false;
  }
  *sender_id = so.id;
  *sender_name = so.name;
  return true;
}

static void self_probe_drop(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  if (s->probe_chat && (!chat_id || strcmp(s->probe_chat, chat_id) == 0)) {
    free(s->probe_chat);
    free(s->probe_msg);
    s->probe_chat = s->probe_msg = NULL;
  }
  pthread_mutex_unlock(&s->lock);
}

/* Whether the next fetch of chat_id should go to Cliq at once: it holds the
 * post we learn our own user from. */
static bool self_probe_pending(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  bool p = s->probe_chat && strcmp(s->probe_chat, chat_id) == 0;
  pthread_mutex_unlock(&s->lock);
  return p;
}

/* Looks for the probe post among fetched messages of chat_id: its sender is
 * us. */
static void self_spot(store *s, const char *chat_id, const cliq_message *msgs,
                      size_t n)
{
  if (!self_probe_pending(s, chat_id))
    return;
  pthread_mutex_lock(&s->lock);
  char *want = s->probe_msg ? strdup(s->probe_msg) : NULL;
  pthread_mutex_unlock(&s->lock);
  for (size_t i = 0; want && i < n; i++) {
    if (strcmp(msgs[i].id, want) != 0 || !msgs[i].sender_id)
      continue;
    self_learn(s, msgs[i].sender_id, msgs[i].sender_name);
    self_probe_drop(s, chat_id);
    if (s->dl)
      delivery_learn_self(s->dl, msgs[i].sender_id);
    break;
  }
  free(want);
}

/* The message we just posted, as Cliq would list it, built locally once we
 * know who we are.  Until then (a fresh account) NULL, with no request: the
 * post becomes the probe, the next fetch of its chat (at once, see
 * self_probe_pending) brings it and tells who we are (self_spot). */
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
  if (!self_id && log_sender_of(s, chat_id, id, &self_id, &self_name)) {
    /* A refresh brought the post before this hook ran. */
    self_learn(s, self_id, self_name);
    self_probe_drop(s, NULL);
  } else if (!self_id) {
    pthread_mutex_lock(&s->lock);
    if (!s->probe_msg) {
      s->probe_chat = strdup(chat_id);
      s->probe_msg = strdup(id);
      if (!s->probe_chat || !s->probe_msg) {
        free(s->probe_chat);
        free(s->probe_msg);
        s->probe_chat = s->probe_msg = NULL;
      }
    }
    pthread_mutex_unlock(&s->lock);
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
  /* The delivery worker needs our id too (checking lost outcomes). */
  pthread_mutex_lock(&s->lock);
  char *known_id = s->self_id ? strdup(s->self_id) : NULL;
  pthread_mutex_unlock(&s->lock);
  if (known_id && s->dl)
    delivery_learn_self(s->dl, known_id);
  free(known_id);
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
    /* Keeps the entry's freshness (stretched as a fetch's is, or under
     * pressure our own post would make the log stale at once): the other
     * people's messages still come with the next refresh. */
    double age = 0;
    json_t *old = NULL;
    tcache_state st = tcache_get(s->cache, log->key, &old, &age);
    json_decref(old);
    double left = ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES) -
                  age * s->scale;
    if (st != TCACHE_FRESH || left < 0)
      left = 0;
    tcache_put(s->cache, log->key, persist, left);
    json_decref(persist);
  }
  if (grew && s->log_grew)
    s->log_grew(s->cb_ctx, chat_id);
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

/* The draft object (borrowed, lock held), NULL when absent. */
static json_t *draft_obj_locked(store *s, const char *channel_id,
                                const char *name)
{
  json_t *d = channel_id && name ? drafts_of_locked(s, channel_id) : NULL;
  return d ? json_object_get(d, name) : NULL;
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

char *store_draft_target(const char *channel_id, const char *name)
{
  char *t = NULL;
  if (asprintf(&t, "%s%s/%s", DELIVERY_DRAFT_PREFIX, channel_id, name) < 0)
    return NULL;
  return t;
}

/* A draft's main as the file shows it before Cliq has it. */
static char *pending_main_text(const char *text)
{
  char ts[32], *out = NULL;
  store_format_time((int64_t)(now_wall() * 1000), ts, sizeof ts);
  if (asprintf(&out, "%s me: %s\n", ts, text ? text : "") < 0)
    return NULL;
  return out;
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
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = -ENOENT;
  if (o) {
    out->name = strdup(name);
    out->main_message_id = opt_str(o, "main_message_id");
    out->main_text = opt_str(o, "main_text");
    out->thread_chat_id = opt_str(o, "thread_chat_id");
    out->main_pending = json_is_true(json_object_get(o, "main_pending"));
    out->create_pending = json_is_true(json_object_get(o, "create_pending"));
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
  else if (json_is_true(json_object_get(o, "main_pending")) ||
           json_is_true(json_object_get(o, "create_pending")))
    r = -EBUSY;
  else {
    json_object_del(d, name);
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

/* Sets (value != NULL) or removes fields of a draft and persists it. */
static int draft_update(store *s, const char *channel_id, const char *name,
                        const char *const *fields, json_t *const *values,
                        size_t n)
{
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = o ? 0 : -ENOENT;
  for (size_t i = 0; o && i < n; i++) {
    if (values[i])
      r |= json_object_set(o, fields[i], values[i]) < 0 ? -ENOMEM : 0;
    else
      json_object_del(o, fields[i]);
  }
  if (o)
    drafts_persist_locked(s, channel_id);
  pthread_mutex_unlock(&s->lock);
  return r < 0 ? -ENOMEM : r;
}

static void draft_changed(store *s, const char *channel_id)
{
  if (s->drafts_changed && channel_id)
    s->drafts_changed(s->cb_ctx, channel_id);
}

/* ---- The journal -------------------------------------------------------------------------- */

void store_ids_clear(store_ids *ids)
{
  if (!ids)
    return;
  free(ids->v);
  memset(ids, 0, sizeof *ids);
}

int store_ids_add(store_ids *ids, uint64_t id)
{
  if (ids->n == ids->cap) {
    size_t nc = ids->cap ? ids->cap * 2 : 8;
    uint64_t *nv = realloc(ids->v, nc * sizeof *nv);
    if (!nv)
      return -ENOMEM;
    ids->v = nv;
    ids->cap = nc;
  }
  ids->v[ids->n++] = id;
  return 0;
}

/* A JSON string of s, with bytes that are not UTF-8 replaced by '?' (paths
 * hold names the kernel gave us). */
static json_t *json_string_lossy(const char *str)
{
  json_t *v = json_string(str);
  if (v)
    return v;
  char *copy = strdup(str);
  if (!copy)
    return NULL;
  for (size_t i = 0; copy[i]; i++)
    if ((unsigned char)copy[i] >= 0x80)
      copy[i] = '?';
  v = json_string(copy);
  free(copy);
  return v;
}

/* The payload fields every entry carries for the hooks. */
static json_t *payload_new(const char *channel_id, const char *path)
{
  json_t *p = json_object();
  if (!p)
    return NULL;
  if ((channel_id &&
       json_object_set_new(p, "channel_id", json_string_lossy(channel_id)) < 0) ||
      (path && json_object_set_new(p, "path", json_string_lossy(path)) < 0)) {
    json_decref(p);
    return NULL;
  }
  return p;
}

static json_t *payload_with_text(const char *channel_id, const char *path,
                                 const char *text)
{
  json_t *p = payload_new(channel_id, path);
  if (p && json_object_set_new(p, "text", json_string(text)) < 0) {
    json_decref(p);
    return NULL;
  }
  return p;
}

/* Journals one entry (payload is consumed).  Once outbox_append() returned
 * the entry will be delivered: nothing after it may fail the write. */
static int journal(store *s, outbox_kind kind, const char *target,
                   json_t *payload, store_ids *ids, cliq_error *err)
{
  if (!payload)
    return fail(err, ENOMEM, "out of memory");
  if (!s->ob) {
    json_decref(payload);
    return fail(err, EROFS, "no outbox journal: nothing can be written");
  }
  uint64_t id = 0;
  int r = outbox_append(s->ob, kind, target, payload, &id);
  json_decref(payload);
  if (r < 0)
    return fail(err, -r, "the outbox journal could not be written: %s",
                strerror(-r));
  if (ids)
    (void)store_ids_add(ids, id);   /* untracked, it is delivered all the same */
  if (s->dl)
    delivery_kick(s->dl);
  return 0;
}

int store_post_channel(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *text,
                       const char *path, store_ids *ids, cliq_error *err)
{
  json_t *p = payload_with_text(channel_id, path, text);
  if (p && channel_chat_id)
    json_object_set_new(p, "chat_id", json_string(channel_chat_id));
  return journal(s, OUTBOX_CHANNEL_POST, channel_id, p, ids, err);
}

int store_reply(store *s, const char *channel_id, const char *tid,
                const char *text, const char *path, store_ids *ids,
                cliq_error *err)
{
  return journal(s, OUTBOX_REPLY, tid, payload_with_text(channel_id, path, text),
                 ids, err);
}

int store_set_state(store *s, const char *channel_id, const char *tid,
                    bool close, const char *path, store_ids *ids,
                    cliq_error *err)
{
  json_t *p = payload_new(channel_id, path);
  if (p)
    json_object_set_new(p, "action", json_string(close ? "close" : "reopen"));
  return journal(s, OUTBOX_STATE, tid, p, ids, err);
}

static int journal_followers(store *s, outbox_kind kind, const char *channel_id,
                             const char *tid, const char *const *user_ids,
                             size_t n, const char *path, store_ids *ids,
                             cliq_error *err)
{
  if (n == 0)
    return 0;
  json_t *p = payload_new(channel_id, path);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, json_string_lossy(user_ids[i])) < 0) {
      json_decref(arr);
      arr = NULL;
    }
  if (p && (!arr || json_object_set_new(p, "user_ids", arr) < 0)) {
    json_decref(p);
    p = NULL;
  } else if (!p) {
    json_decref(arr);
  }
  return journal(s, kind, tid, p, ids, err);
}

int store_followers_add(store *s, const char *channel_id, const char *tid,
                        const char *const *user_ids, size_t n,
                        const char *path, store_ids *ids, cliq_error *err)
{
  return journal_followers(s, OUTBOX_FOLLOWERS_ADD, channel_id, tid, user_ids,
                           n, path, ids, err);
}

int store_followers_remove(store *s, const char *channel_id, const char *tid,
                           const char *const *user_ids, size_t n,
                           const char *path, store_ids *ids, cliq_error *err)
{
  return journal_followers(s, OUTBOX_FOLLOWERS_REMOVE, channel_id, tid,
                           user_ids, n, path, ids, err);
}

int store_followers_replace(store *s, const char *channel_id, const char *tid,
                            const char *const *user_ids, size_t n,
                            const char *path, store_ids *ids, cliq_error *err)
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
    if (!find_user(fol, user_ids[i]) && !id_in(user_ids[i], add, n_add))
      add[n_add++] = user_ids[i];
  for (size_t i = 0; i < nf; i++) {
    const char *id = jstr(json_array_get(fol, i), "user_id");
    if (!id_in(id, user_ids, n))
      del[n_del++] = id;
  }
  r = store_followers_add(s, channel_id, tid, add, n_add, path, ids, err);
  if (r == 0)
    r = store_followers_remove(s, channel_id, tid, del, n_del, path, ids, err);
out:
  free(add);
  free(del);
  json_decref(fol);
  return r;
}

int store_ctl(store *s, const char *channel_id, const char *tid,
              const char *verb, const char *path, store_ids *ids,
              cliq_error *err)
{
  if (!store_ctl_verb_valid(verb))
    return fail(err, EINVAL, "unknown verb \"%s\"", verb);
  json_t *p = payload_new(channel_id, path);
  if (p)
    json_object_set_new(p, "verb", json_string(verb));
  return journal(s, OUTBOX_CTL, tid, p, ids, err);
}

/* Drafts: a draft's entries are journaled on its target in the order the
 * user wrote them; s->lock guards the flags that say what is journaled, and
 * draft writes are serialized so that a first append's create_thread is
 * journaled before any later append's reply. */
static pthread_mutex_t draft_write_lock = PTHREAD_MUTEX_INITIALIZER;

int store_draft_post_main(store *s, const char *channel_id,
                          const char *channel_chat_id, const char *name,
                          const char *text, const char *path, store_ids *ids,
                          cliq_error *err)
{
  char *target = store_draft_target(channel_id, name);
  char *shown = pending_main_text(text);
  if (!target || !shown) {
    free(target);
    free(shown);
    return fail(err, ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&draft_write_lock);
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = 0;
  if (!o)
    r = fail(err, ENOENT, "no draft %s", name);
  else if (json_object_get(o, "main_message_id") ||
           json_is_true(json_object_get(o, "main_pending")))
    r = fail(err, EACCES, "the thread's main message was already written");
  else {
    json_object_set_new(o, "main_pending", json_true());
    json_object_set_new(o, "main_text", json_string(shown));
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  if (r == 0) {
    json_t *p = payload_with_text(channel_id, path, text);
    if (p) {
      json_object_set_new(p, "chat_id", json_string(channel_chat_id));
      json_object_set_new(p, "draft_main", json_true());
      json_object_set_new(p, "draft", json_string(name));
    }
    r = journal(s, OUTBOX_CHANNEL_POST, target, p, ids, err);
    if (r < 0) {
      const char *fields[] = { "main_pending", "main_text" };
      json_t *values[] = { NULL, NULL };
      draft_update(s, channel_id, name, fields, values, 2);
    }
  }
  pthread_mutex_unlock(&draft_write_lock);
  free(target);
  free(shown);
  draft_changed(s, channel_id);
  return r;
}

int store_draft_append(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *name,
                       const char *text, const char *path, store_ids *ids,
                       cliq_error *err)
{
  char *target = store_draft_target(channel_id, name);
  if (!target)
    return fail(err, ENOMEM, "out of memory");
  pthread_mutex_lock(&draft_write_lock);
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  char *tid = o ? opt_str(o, "thread_chat_id") : NULL;
  bool main = o && (json_object_get(o, "main_message_id") ||
                    json_is_true(json_object_get(o, "main_pending")));
  bool creating = o && json_is_true(json_object_get(o, "create_pending"));
  bool create = o && !tid && main && !creating;
  if (create) {
    json_object_set_new(o, "create_pending", json_true());
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  int r;
  if (!o) {
    r = fail(err, ENOENT, "no draft %s", name);
  } else if (tid) {
    r = store_reply(s, channel_id, tid, text, path, ids, err);
  } else if (!main) {
    r = fail(err, EDESTADDRREQ,
             "write the thread's main message (main) before its messages");
  } else if (!create) {
    /* The thread is being created: the worker moves this to it. */
    json_t *p = payload_with_text(channel_id, path, text);
    if (p)
      json_object_set_new(p, "draft", json_string(name));
    r = journal(s, OUTBOX_REPLY, target, p, ids, err);
  } else {
    json_t *p = payload_with_text(channel_id, path, text);
    if (p) {
      json_object_set_new(p, "chat_id", json_string(channel_chat_id));
      json_object_set_new(p, "title", json_string(name));
      json_object_set_new(p, "draft", json_string(name));
    }
    r = journal(s, OUTBOX_CREATE_THREAD, target, p, ids, err);
    if (r < 0) {
      const char *fields[] = { "create_pending" };
      json_t *values[] = { NULL };
      draft_update(s, channel_id, name, fields, values, 1);
    }
  }
  pthread_mutex_unlock(&draft_write_lock);
  free(tid);
  free(target);
  if (create)
    draft_changed(s, channel_id);
  return r;
}

/* ---- Delivery hooks: the cache learns from Cliq's answers -------------------------------- */

static const char *payload_text(json_t *p)
{
  json_t *v = json_is_string(p) ? p : json_object_get(p, "text");
  return json_string_value(v);
}

static const char *payload_field(json_t *p, const char *k)
{
  return json_is_object(p) ? json_string_value(json_object_get(p, k)) : NULL;
}

static const char *payload_verb(const outbox_entry *e)
{
  if (json_is_string(e->payload))
    return json_string_value(e->payload);
  return payload_field(e->payload,
                       e->kind == OUTBOX_STATE ? "action" : "verb");
}

static void set_thread_state(store *s, const char *channel_id, const char *tid,
                             bool closed)
{
  struct state_edit ed = { tid, closed ? "closed" : "open", -1 };
  edit_thread_info(s, &ed);
  char *ch = channel_id ? NULL : channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id ? channel_id : ch, edit_thread_in_list,
                      &ed);
  free(ch);
}

static void set_following(store *s, const char *channel_id, const char *tid,
                          bool follow)
{
  struct state_edit ed = { tid, NULL, follow };
  edit_thread_info(s, &ed);
  char *ch = channel_id ? NULL : channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id ? channel_id : ch, edit_thread_in_list,
                      &ed);
  free(ch);
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
}

static void followers_moved(store *s, const outbox_entry *e, bool added)
{
  json_t *arr = json_is_array(e->payload)
                    ? e->payload
                    : json_object_get(e->payload, "user_ids");
  size_t n = json_array_size(arr);
  const char **ids = calloc(n + 1, sizeof *ids);
  if (!ids) {
    forget_people(s, e->target);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *id = json_string_value(json_array_get(arr, i));
    if (id)
      ids[k++] = id;
  }
  move_people(s, e->target, ids, k, added);
  free(ids);
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

static void on_thread_created(void *ctx, const outbox_entry *e,
                              const char *tid)
{
  store *s = ctx;
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *name = payload_field(e->payload, "draft");
  const char *chat = payload_field(e->payload, "chat_id");
  if (!channel_id || !name || !tid)
    return;
  json_t *tid_v = json_string(tid);
  const char *fields[] = { "thread_chat_id", "create_pending" };
  json_t *values[] = { tid_v, NULL };
  draft_update(s, channel_id, name, fields, values, 2);
  json_decref(tid_v);
  store_draft d;
  char *parent = NULL;
  if (store_draft_get(s, channel_id, name, &d) == 0) {
    parent = d.main_message_id;
    d.main_message_id = NULL;
    store_draft_clear(&d);
  }
  int64_t now_ms = (int64_t)(now_wall() * 1000);
  json_t *thread = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:{s:I}}", "chat_id", tid,
      "parent_chat_id", chat ? chat : "", "thread_message_id",
      parent ? parent : "", "title", name, "thread_state", "open",
      "follower_count", (json_int_t)1, "is_follower", 1,
      "last_message_information", "time", (json_int_t)now_ms);
  free(parent);
  if (thread) {
    struct new_thread nt = { thread };
    edit_cached_threads(s, channel_id, add_thread_to_list, &nt);
    json_decref(thread);
  }
  draft_changed(s, channel_id);
}

/* A draft's main was delivered: it shows as Cliq has it, written once. */
static void draft_main_delivered(store *s, const outbox_entry *e,
                                 const char *mid, json_t *raw)
{
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *name = payload_field(e->payload, "draft");
  if (!channel_id || !name)
    return;
  char *main_text = NULL;
  size_t main_len = 0;
  if (raw)
    render_message_json(raw, &main_text, &main_len, NULL);
  if (!main_text)
    main_text = pending_main_text(payload_text(e->payload));
  json_t *id_v = json_string(mid ? mid : "");
  json_t *text_v = main_text ? json_string(main_text) : NULL;
  const char *fields[] = { "main_message_id", "main_text", "main_pending" };
  json_t *values[] = { id_v, text_v, NULL };
  draft_update(s, channel_id, name, fields, values, text_v ? 3 : 1);
  if (!text_v) {
    const char *f[] = { "main_pending" };
    json_t *v[] = { NULL };
    draft_update(s, channel_id, name, f, v, 1);
  }
  json_decref(id_v);
  json_decref(text_v);
  free(main_text);
  draft_changed(s, channel_id);
}

static void on_delivered(void *ctx, const outbox_entry *e,
                         const char *message_id)
{
  store *s = ctx;
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *text = payload_text(e->payload);
  switch (e->kind) {
  case OUTBOX_REPLY: {
    json_t *raw = own_message(s, e->target, message_id, text ? text : "");
    log_append_own(s, e->target, raw);
    json_decref(raw);
    break;
  }
  case OUTBOX_CHANNEL_POST: {
    const char *chat = payload_field(e->payload, "chat_id");
    json_t *raw = chat ? own_message(s, chat, message_id, text ? text : "")
                       : NULL;
    if (chat)
      log_append_own(s, chat, raw);
    if (json_is_true(json_object_get(e->payload, "draft_main")))
      draft_main_delivered(s, e, message_id, raw);
    json_decref(raw);
    break;
  }
  case OUTBOX_CREATE_THREAD: {
    store_draft d;
    const char *name = payload_field(e->payload, "draft");
    if (channel_id && name && store_draft_get(s, channel_id, name, &d) == 0) {
      if (d.thread_chat_id) {
        json_t *raw = own_message(s, d.thread_chat_id, message_id,
                                  text ? text : "");
        log_append_own(s, d.thread_chat_id, raw);
        json_decref(raw);
      }
      store_draft_clear(&d);
    }
    break;
  }
  case OUTBOX_STATE:
  case OUTBOX_CTL: {
    const char *verb = payload_verb(e);
    if (!verb)
      break;
    if (!strcmp(verb, "close") || !strcmp(verb, "closed"))
      set_thread_state(s, channel_id, e->target, true);
    else if (!strcmp(verb, "reopen") || !strcmp(verb, "open"))
      set_thread_state(s, channel_id, e->target, false);
    else if (!strcmp(verb, "follow") || !strcmp(verb, "unfollow"))
      set_following(s, channel_id, e->target, !strcmp(verb, "follow"));
    else if (!strcmp(verb, "leave"))
      forget_people(s, e->target);
    break;
  }
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE:
    followers_moved(s, e, e->kind == OUTBOX_FOLLOWERS_ADD);
    if (s->threads_changed && channel_id)
      s->threads_changed(s->cb_ctx, channel_id);
    break;
  default:
    break;
  }
}

static void on_failed(void *ctx, const outbox_entry *e, const cliq_error *err)
{
  store *s = ctx;
  int en = err && err->err ? err->err : EIO;
  pthread_mutex_lock(&s->fail_lock);
  s->failures[s->failures_next % STORE_FAILURES].id = e->id;
  s->failures[s->failures_next % STORE_FAILURES].err = en;
  s->failures_next++;
  s->refused++;
  pthread_mutex_unlock(&s->fail_lock);
  const char *channel_id = payload_field(e->payload, "channel_id");
  if (e->kind == OUTBOX_REPLY && en == EACCES && err &&
      strcmp(err->code, "operation_not_allowed") == 0)
    mark_closed(s, e->target);    /* closed by someone else meanwhile */
  const char *name = payload_field(e->payload, "draft");
  if (channel_id && name) {
    /* The step can be written again. */
    if (e->kind == OUTBOX_CHANNEL_POST &&
        json_is_true(json_object_get(e->payload, "draft_main"))) {
      const char *fields[] = { "main_pending", "main_text" };
      json_t *values[] = { NULL, NULL };
      draft_update(s, channel_id, name, fields, values, 2);
      draft_changed(s, channel_id);
    } else if (e->kind == OUTBOX_CREATE_THREAD) {
      const char *fields[] = { "create_pending" };
      json_t *values[] = { NULL };
      draft_update(s, channel_id, name, fields, values, 1);
      draft_changed(s, channel_id);
    }
  }
  if (s->write_failed)
    s->write_failed(s->cb_ctx, e, payload_field(e->payload, "path"), err);
}

int store_start(store *s)
{
  int r = store_start_refresher(s);
  if (r == 0 && s->dl) {
    r = delivery_start(s->dl);
    if (r == -EALREADY)
      r = 0;
  }
  return r;
}

/* ---- Waiting for delivery ------------------------------------------------------------------ */

static enum cliq_api entry_api(const outbox_entry *e)
{
  switch (e->kind) {
  case OUTBOX_FOLLOWERS_ADD:
    return CLIQ_API_FOLLOWERS_ADD;
  case OUTBOX_FOLLOWERS_REMOVE:
    return CLIQ_API_FOLLOWERS_REMOVE;
  case OUTBOX_STATE:
  case OUTBOX_CTL: {
    const char *v = payload_verb(e);
    if (!v)
      return CLIQ_API_THREADS_UPDATE;
    if (!strcmp(v, "follow"))
      return CLIQ_API_THREADS_FOLLOW;
    if (!strcmp(v, "unfollow"))
      return CLIQ_API_THREADS_UNFOLLOW;
    if (!strcmp(v, "mute"))
      return CLIQ_API_CHATS_MUTE;
    if (!strcmp(v, "unmute"))
      return CLIQ_API_CHATS_UNMUTE;
    if (!strcmp(v, "leave"))
      return CLIQ_API_CHATS_LEAVE;
    return CLIQ_API_THREADS_UPDATE;
  }
  default:
    return CLIQ_API_MESSAGES_POST;
  }
}

/* Whether a request of api could be sent now: not locked, nobody waiting
 * for a slot, budget left (the governor keeps one back). */
static bool api_free_now(store *s, enum cliq_api api)
{
  if (!s->gov)
    return true;
  gov_api_status st;
  memset(&st, 0, sizeof st);
  gov_status(s->gov, api, &st);
  if (st.locked_until > now_wall() || st.waiting > 0)
    return false;
  return st.limit <= 0 || st.used < st.limit - 1;
}

int store_ids_failure(store *s, const store_ids *ids)
{
  if (!ids || ids->n == 0)
    return 0;
  int r = 0;
  pthread_mutex_lock(&s->fail_lock);
  size_t kept = s->failures_next < STORE_FAILURES ? s->failures_next
                                                  : STORE_FAILURES;
  for (size_t i = 0; i < ids->n && !r; i++)
    for (size_t k = 0; k < kept && !r; k++)
      if (s->failures[k].id == ids->v[i])
        r = -s->failures[k].err;
  pthread_mutex_unlock(&s->fail_lock);
  return r;
}

/* The first of ids still pending (copied into *e), or false. */
static bool first_pending(store *s, const store_ids *ids, size_t *from,
                          outbox_entry *e)
{
  for (; *from < ids->n; (*from)++)
    if (outbox_get(s->ob, ids->v[*from], e) == 0)
      return true;
  return false;
}

int store_write_settle(store *s, const store_ids *ids, double max_s)
{
  if (!s->ob || !ids || ids->n == 0)
    return 0;
  double deadline = now_mono() + max_s;
  size_t from = 0;
  for (;;) {
    uint64_t gen = outbox_generation(s->ob);
    outbox_entry e;
    if (!first_pending(s, ids, &from, &e))
      return store_ids_failure(s, ids);
    bool soon = !e.last_error && api_free_now(s, entry_api(&e));
    outbox_entry_clear(&e);
    double left = deadline - now_mono();
    if (!soon || left <= 0)
      return store_ids_failure(s, ids);
    /* Short slices: the governor's state is looked at again. */
    if (outbox_wait_change(s->ob, gen, left < 0.1 ? left : 0.1) == -ECANCELED)
      return store_ids_failure(s, ids);
  }
}

int store_ids_wait(store *s, const store_ids *ids, double timeout_s)
{
  if (!s->ob || !ids || ids->n == 0)
    return 0;
  double deadline = now_mono() + timeout_s;
  size_t from = 0;
  for (;;) {
    uint64_t gen = outbox_generation(s->ob);
    outbox_entry e;
    if (!first_pending(s, ids, &from, &e))
      return 0;
    outbox_entry_clear(&e);
    double left = timeout_s < 0 ? -1 : deadline - now_mono();
    if (timeout_s >= 0 && left <= 0)
      return -ETIMEDOUT;
    int r = outbox_wait_change(s->ob, gen, left);
    if (r == -ECANCELED)
      return r;
  }
}

static int pending_where(store *s, bool (*match)(const outbox_entry *, void *),
                         void *arg, store_ids *out)
{
  if (!s->ob)
    return 0;
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = outbox_list(s->ob, &items, &n);
  if (r < 0)
    return r;
  for (size_t i = 0; i < n && r == 0; i++)
    if (match(&items[i], arg))
      r = store_ids_add(out, items[i].id);
  outbox_entry_list_free(items, n);
  return r;
}

struct targets_arg {
  const char *const *targets;
  size_t n;
};

static bool match_targets(const outbox_entry *e, void *arg)
{
  struct targets_arg *t = arg;
  for (size_t i = 0; i < t->n; i++)
    if (t->targets[i] && strcmp(e->target, t->targets[i]) == 0)
      return true;
  return false;
}

int store_pending_ids(store *s, const char *const *targets, size_t n,
                      store_ids *out)
{
  struct targets_arg t = { targets, n };
  return pending_where(s, match_targets, &t, out);
}

struct channel_arg {
  const char *channel_id;
  const char *chat_id;
};

static bool match_channel(const outbox_entry *e, void *arg)
{
  struct channel_arg *c = arg;
  if (!c->channel_id)
    return true;
  const char *ch = payload_field(e->payload, "channel_id");
  if ((ch && strcmp(ch, c->channel_id) == 0) ||
      strcmp(e->target, c->channel_id) == 0)
    return true;
  size_t dl = strlen(DELIVERY_DRAFT_PREFIX), cl = strlen(c->channel_id);
  if (strncmp(e->target, DELIVERY_DRAFT_PREFIX, dl) == 0 &&
      strncmp(e->target + dl, c->channel_id, cl) == 0 &&
      e->target[dl + cl] == '/')
    return true;
  if (c->chat_id) {
    size_t l = strlen(c->chat_id);
    if (strncmp(e->target, c->chat_id, l) == 0 &&
        strncmp(e->target + l, "-T-", 3) == 0)
      return true;
  }
  return false;
}

int store_pending_ids_of_channel(store *s, const char *channel_id,
                                 const char *channel_chat_id, store_ids *out)
{
  struct channel_arg c = { channel_id, channel_chat_id };
  return pending_where(s, match_channel, &c, out);
}

/* ---- The journal as files -------------------------------------------------------------------- */

int store_outbox_list(store *s, bool failed, outbox_entry **items, size_t *n)
{
  *items = NULL;
  *n = 0;
  if (!s->ob)
    return 0;
  return failed ? outbox_list_failed(s->ob, items, n)
                : outbox_list(s->ob, items, n);
}

int store_outbox_get(store *s, bool failed, uint64_t id, outbox_entry *out)
{
  memset(out, 0, sizeof *out);
  if (!s->ob)
    return -ENOENT;
  if (!failed)
    return outbox_get(s->ob, id, out);
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = outbox_list_failed(s->ob, &items, &n);
  if (r < 0)
    return r;
  r = -ENOENT;
  for (size_t i = 0; i < n; i++)
    if (items[i].id == id) {
      *out = items[i];
      memset(&items[i], 0, sizeof items[i]);
      r = 0;
      break;
    }
  outbox_entry_list_free(items, n);
  return r;
}

int store_failed_discard(store *s, uint64_t id)
{
  if (!s->ob)
    return -ENOENT;
  return outbox_failed_remove(s->ob, id);
}

char *store_outbox_entry_text(const outbox_entry *e, size_t *len_out)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int r = buf_append(&buf, &len, &cap, "", 0);
  switch (e->kind) {
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE: {
    json_t *arr = json_is_array(e->payload)
                      ? e->payload
                      : json_object_get(e->payload, "user_ids");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
      const char *id = json_string_value(v);
      if (!id)
        continue;
      r |= buf_append_str(&buf, &len, &cap,
                          e->kind == OUTBOX_FOLLOWERS_ADD ? "+" : "-");
      r |= buf_append_str(&buf, &len, &cap, id);
      r |= buf_append_str(&buf, &len, &cap, "\n");
    }
    break;
  }
  case OUTBOX_STATE:
  case OUTBOX_CTL: {
    const char *v = payload_verb(e);
    r |= buf_append_str(&buf, &len, &cap, v ? v : "?");
    r |= buf_append_str(&buf, &len, &cap, "\n");
    break;
  }
  default: {
    const char *t = payload_text(e->payload);
    r |= buf_append_str(&buf, &len, &cap, t ? t : "");
    r |= buf_append_str(&buf, &len, &cap, "\n");
    break;
  }
  }
  if (r) {
    free(buf);
    return NULL;
  }
  if (len_out)
    *len_out = len;
  return buf;
}

void store_outbox_stats_get(store *s, store_outbox_stats *out)
{
  memset(out, 0, sizeof *out);
  if (s->ob) {
    out->depth = outbox_depth(s->ob);
    out->failed = outbox_failed_count(s->ob);
  }
  if (s->dl) {
    delivery_stats ds;
    delivery_get_stats(s->dl, &ds);
    out->delivered = ds.delivered;
    out->retries = ds.retries;
    out->sends = ds.sends;
    out->checks = ds.checks;
    out->found = ds.found;
  }
  pthread_mutex_lock(&s->fail_lock);
  out->refused = s->refused;
  pthread_mutex_unlock(&s->fail_lock);
}
