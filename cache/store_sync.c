/* cache/store_sync.c: background sync.  With budget that no user is using,
 * the syncer keeps every joined channel's thread list and every thread's
 * messages on disk, so that reading the whole tree (grep -r) costs nothing.
 *
 * One round, every tick:
 *  1. the channel list and each joined channel's thread list, when stale, in
 *     the background lane;
 *  2. a thread list fetched in this round confirms the logs it shows no newer
 *     message for: they count as fetched now, for as long as the list is
 *     fresh, with no request (a warm remount costs no message request for a
 *     thread whose entry did not move);
 *  3. (sync = all) the logs that are unknown or behind their entry, the most
 *     recently active first, then each thread's documents, each only while
 *     the governor has a background slot to spare, and one more while the
 *     refresher follows open files: followed threads keep the first claim
 *     on what background may take.
 * Sync keeps to a share of each API's budget (store_options.sync_share),
 * counted over its own requests: the account's budget may be shared with its
 * other API clients.  Each lock it did not expect (a throttle answer: some
 * other client spends the budget too) halves that share, down to an eighth;
 * every SYNC_CALM_WINDOWS windows without another lock give one halving back.
 * Reads a user waits for never wait for the syncer: it asks in the
 * background lane, which takes no slot while a read or a write waits and
 * keeps a reserve for them (docs/governor.md "Lanes"), and it sends nothing
 * while a user's fetch is under way (sync_yield). */
#include "cache/store_i.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The modes' names, by enum store_sync. */
static const char *const sync_names[] = {
  [STORE_SYNC_OFF] = "off", [STORE_SYNC_LISTS] = "lists",
  [STORE_SYNC_ALL] = "all",
};

int store_sync_parse(const char *s)
{
  for (size_t i = 0; s && i < sizeof sync_names / sizeof *sync_names; i++)
    if (strcmp(s, sync_names[i]) == 0)
      return (int)i;
  return -1;
}

const char *store_sync_name(enum store_sync mode)
{
  return (unsigned)mode < sizeof sync_names / sizeof *sync_names
             ? sync_names[mode]
             : "off";
}

void store_sync_stats_get(store *s, store_sync_stats *out)
{
  pthread_mutex_lock(&s->lock);
  *out = s->sync_stats;
  pthread_mutex_unlock(&s->lock);
}

#define SYNC_BACKOFF_MAX 3
#define SYNC_CALM_WINDOWS 10

/* Sync's own spending on one API. */
struct sync_spend {
  double *at;               /* when its requests went, ascending (real s) */
  size_t n, cap;
  uint64_t seen;            /* gov_thread_taken() when last counted */
  int backoff;              /* halvings of the share */
  double lock_seen;         /* end of the last lock noticed */
  double calm_since;        /* when backoff last changed */
  double next_at;           /* real s: sync's requests are spread over the
                               window (spend_pace) */
};

/* What the syncer last saw of a thread's documents.  A round looks at the
 * cache (a file each when not in memory) only for what it can act on: a
 * missing document when sync may fetch it, a cached one once its freshness
 * may have run out. */
struct sync_mark {
  unsigned char cached;     /* bit d: sync_docs[d] was in the cache */
  bool seen;                /* every document was looked at once */
  double recheck_at;        /* real s: look at the cached ones again */
};

/* The syncer thread's own state. */
struct syncer {
  store *s;
  double started_at;        /* real s: a list fetched before counts for
                               nothing until fetched again (a remount) */
  struct sync_spend api[CLIQ_API_COUNT];
  struct smap marks;        /* thread chat_id -> struct sync_mark */
};

/* A thread whose log the round looks at. */
struct sync_item {
  char *chat_id;
  bool is_thread;           /* a thread (has documents), or a channel's chat */
  int64_t last_ms;          /* the list entry's last message time, 0 unknown */
  bool list_fresh;          /* its list was fetched in this round */
  double list_ttl_left;     /* unscaled seconds its list stays fresh */
};

static int by_activity(const void *a, const void *b)
{
  const struct sync_item *x = a, *y = b;
  if (x->last_ms != y->last_ms)
    return x->last_ms > y->last_ms ? -1 : 1;
  return strcmp(x->chat_id, y->chat_id);
}

static bool stopping(store *s)
{
  pthread_mutex_lock(&s->lock);
  bool stop = s->stopping;
  pthread_mutex_unlock(&s->lock);
  return stop;
}

/* Whether the log holds its entry's newest message (a log of a thread whose
 * entry shows no time is current once known). */
static bool log_current(store_log *log, int64_t last_ms, size_t *messages)
{
  pthread_mutex_lock(&log->lock);
  bool current = log_has_content_locked(log) &&
                 (last_ms <= 0 || log->cursor_ms >= last_ms);
  if (messages)
    *messages = log->evicted ? log->kept_count : log->ids.count;
  pthread_mutex_unlock(&log->lock);
  return current;
}

/* Appends a chat to the round's list; false when out of memory. */
static bool items_add(struct sync_item **items, size_t *n, size_t *cap,
                     const char *chat_id, bool is_thread, int64_t last_ms,
                     bool list_fresh, double list_ttl_left)
{
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 256;
    struct sync_item *ni = realloc(*items, nc * sizeof *ni);
    if (!ni)
      return false;
    *items = ni;
    *cap = nc;
  }
  char *id = strdup(chat_id);
  if (!id)
    return false;
  (*items)[(*n)++] = (struct sync_item){
    .chat_id = id, .is_thread = is_thread, .last_ms = last_ms,
    .list_fresh = list_fresh, .list_ttl_left = list_ttl_left,
  };
  return true;
}

/* Slots sync leaves to the refresher: one while it follows open files
 * (they come first). */
static int refresher_claim(store *s)
{
  return __atomic_load_n(&s->followed, __ATOMIC_RELAXED) > 0 ? 1 : 0;
}

/* Requests per window sync may send on an API of this budget. */
static int sync_allowed(const store *s, const struct sync_spend *sp, int budget)
{
  int n = budget * s->sync_share / 100;
  n >>= sp->backoff;
  return n > 0 ? n : 1;
}

/* Counts the requests the syncer's calls sent since it last looked (this
 * thread asks for nothing else) and forgets those out of the window.  Each
 * moves the pace on by window ÷ allowed: sync's share is spread over the
 * window rather than spent at its start, where a user who starts to read
 * (at a mount, after a pause) would find it spent.  A pace that fell behind
 * (sync was busy with other APIs, or could not ask) keeps at most a quarter
 * of a window of credit. */
static void spend_count(struct sync_spend *sp, enum cliq_api api, double now,
                        double window_s, int allowed)
{
  double every = allowed > 0 ? window_s / allowed : window_s;
  uint64_t taken = gov_thread_taken(api);
  for (; sp->seen < taken; sp->seen++) {
    if (sp->n == sp->cap) {
      size_t nc = sp->cap ? sp->cap * 2 : 32;
      double *na = realloc(sp->at, nc * sizeof *na);
      if (!na)
        break;              /* counted late, never lost: seen stays behind */
      sp->at = na;
      sp->cap = nc;
    }
    sp->at[sp->n++] = now;
    if (sp->next_at < now - window_s / 4)
      sp->next_at = now - window_s / 4;
    sp->next_at += every;
  }
  size_t k = 0;
  while (k < sp->n && sp->at[k] <= now - window_s)
    k++;
  if (k) {
    memmove(sp->at, sp->at + k, (sp->n - k) * sizeof *sp->at);
    sp->n -= k;
  }
}

/* Halves the share at a lock not seen before; gives one halving back after
 * SYNC_CALM_WINDOWS calm windows. */
static void spend_backoff(struct sync_spend *sp, const gov_background *v,
                          double now)
{
  if (v->locked_until > 0 && v->locked_until != sp->lock_seen) {
    sp->lock_seen = v->locked_until;
    if (sp->backoff < SYNC_BACKOFF_MAX)
      sp->backoff++;
    sp->calm_since = v->locked_until;
  } else if (sp->backoff > 0 && v->locked_until == 0 &&
             now - sp->calm_since >= SYNC_CALM_WINDOWS * v->window_s) {
    sp->backoff--;
    sp->calm_since = now;
  }
}

/* A user's fetches go first: sync sends nothing while one is under way, nor
 * within SYNC_YIELD_GAP_S of the last one's end (a command's next file is
 * opened within it), so that its requests, its parsing and its writes take
 * no CPU, no connection and no ledger turn from a user who waits.  Waits;
 * false when the store stops. */
#define SYNC_YIELD_GAP_S 0.02
#define SYNC_YIELD_NAP_S 0.002
static bool sync_yield(store *s)
{
  for (;;) {
    if (stopping(s))
      return false;
    int busy = __atomic_load_n(&s->user_fetches, __ATOMIC_SEQ_CST);
    double end;
    __atomic_load(&s->user_fetch_end, &end, __ATOMIC_SEQ_CST);
    double left = end + SYNC_YIELD_GAP_S - cliq_clock_mono();
    if (busy == 0 && left <= 0)
      return true;
    cliq_clock_sleep(busy || left > SYNC_YIELD_NAP_S ? SYNC_YIELD_NAP_S : left);
  }
}

/* Whether sync may ask now: it is within its share of the API's budget, and
 * the background lane has a slot to spare beyond the refresher's claim (then
 * after any fetch a user waits for). */
static bool sync_may(struct syncer *sy, enum cliq_api api)
{
  store *s = sy->s;
  if (!s->gov)
    return false;
  gov_background v;
  gov_background_view(s->gov, api, &v);
  struct sync_spend *sp = &sy->api[api];
  double now = cliq_clock_real();
  spend_backoff(sp, &v, now);
  int allowed = sync_allowed(s, sp, v.budget);
  spend_count(sp, api, now, v.window_s, allowed);
  return v.spare >= 1 + refresher_claim(s) && (int)sp->n < allowed &&
         now >= sp->next_at && sync_yield(s);
}

/* Polls the joined channels' thread lists (when stale) and gathers their
 * threads into *items.  Returns false when the round should stop (nothing
 * known yet, or stopping). */
static bool sync_lists(struct syncer *sy, double round_start,
                       struct sync_item **items, size_t *n, size_t *cap,
                       size_t *channels_known, size_t *channels_total)
{
  store *s = sy->s;
  store_channels *cs = NULL;
  cliq_error err;
  memset(&err, 0, sizeof err);
  enum patience was = patience_swap(PATIENCE_NONE);
  /* Out of its share, sync goes on with what is cached. */
  enum store_mode mode = sync_may(sy, CLIQ_API_CHANNELS_LIST) ? STORE_FETCH
                                                               : STORE_CACHED;
  int r = channels_get(s, mode, CLIQ_PRIO_BACKGROUND, &cs, &err);
  patience_swap(was);
  if (r < 0 || !cs)
    return false;
  *channels_total = cs->count;
  double list_ttl = ttl_for(s, STORE_TTL_THREADS, CLIQ_API_THREADS_LIST);
  double ch_age = tcache_age_of(s->cache, "channels");
  if (ch_age < 0)
    ch_age = 1e9;
  double ch_ttl = ttl_for(s, STORE_TTL_CHANNELS, CLIQ_API_CHANNELS_LIST);
  bool ch_fresh = cliq_clock_real() - ch_age >= round_start;
  for (size_t i = 0; i < cs->count; i++)
    if (!items_add(items, n, cap, cs->items[i].chat_id, false,
                   cs->items[i].last_ms, ch_fresh, ch_ttl - ch_age * s->scale))
      break;
  for (size_t i = 0; i < cs->count && !stopping(s); i++) {
    const char *channel_id = cs->items[i].channel_id;
    store_threads *t = NULL;
    if (sync_may(sy, CLIQ_API_THREADS_LIST)) {
      bool failed = false;
      t = threads_poll(s, channel_id, -1, CLIQ_PRIO_BACKGROUND, &failed);
    } else {
      memset(&err, 0, sizeof err);
      store_threads_get(s, channel_id, STORE_CACHED, &t, &err);
    }
    if (!t)
      continue;
    double age = threads_age(s, channel_id);
    if (age < 0)
      age = 1e9;
    double fetched_at = cliq_clock_real() - age;
    /* A full pass checks every log against a list of this mount's. */
    if (fetched_at >= sy->started_at)
      (*channels_known)++;
    bool fresh = fetched_at >= round_start;
    for (size_t j = 0; j < t->count; j++)
      if (!items_add(items, n, cap, t->items[j].chat_id, true,
                     t->items[j].last_ms, fresh, list_ttl - age * s->scale))
        break;
    store_threads_unref(t);
  }
  store_channels_unref(cs);
  return true;
}

#define SYNC_DOCS 5
static const enum store_doc sync_docs[SYNC_DOCS] = {
  STORE_DOC_INFO, STORE_DOC_MAIN, STORE_DOC_MEMBERS, STORE_DOC_FOLLOWERS,
  STORE_DOC_NONFOLLOWERS,
};

/* What one round still lacks per API, for the estimate. */
struct sync_backlog {
  size_t per_api[CLIQ_API_COUNT];
};

/* The syncer's mark for a thread (created unseen); NULL when out of memory. */
static struct sync_mark *mark_of(struct syncer *sy, const char *tid)
{
  struct sync_mark *m = smap_get(&sy->marks, tid);
  if (m)
    return m;
  m = calloc(1, sizeof *m);
  if (m && smap_put(&sy->marks, tid, m) < 0) {
    free(m);
    m = NULL;
  }
  return m;
}

/* A thread's documents: fetched when never fetched; refreshed when stale
 * only while their API is nearly idle (a quarter of its budget used), so
 * that keeping copies current never crowds the lanes a user waits in.
 * Returns true when every document is cached. */
static bool sync_docs_of(struct syncer *sy, const char *tid, bool may_fetch,
                         struct sync_backlog *bl, uint64_t *sent)
{
  store *s = sy->s;
  struct sync_mark none = { 0 };
  struct sync_mark *m = mark_of(sy, tid);
  if (!m)
    m = &none;
  double now = cliq_clock_real();
  bool recheck = !m->seen || now >= m->recheck_at;
  bool all = true;
  for (size_t d = 0; d < SYNC_DOCS; d++) {
    unsigned char bit = (unsigned char)(1u << d);
    enum cliq_api api = doc_api(sync_docs[d]);
    if ((m->cached & bit) && !recheck)
      continue;
    if (!(m->cached & bit) && m->seen && !(may_fetch && sync_may(sy, api))) {
      bl->per_api[api]++;
      all = false;
      continue;
    }
    char *key = make_key(doc_key_kind(sync_docs[d]), tid);
    if (!key)
      return false;
    tcache_state st = tcache_state_of(s->cache, key);
    free(key);
    bool missing = st == TCACHE_MISS;
    bool stale = st == TCACHE_STALE;
    if (missing)
      m->cached &= (unsigned char)~bit;
    else
      m->cached |= bit;
    if (!missing && !stale)
      continue;
    if (missing)
      bl->per_api[api]++;
    bool go = may_fetch && (missing || gov_pressure(s->gov, api) < 0.25) &&
              sync_may(sy, api);
    if (go) {
      cliq_error err;
      memset(&err, 0, sizeof err);
      enum patience was = patience_swap(PATIENCE_NONE);
      int r = doc_fetch_background(s, tid, sync_docs[d], &err);
      patience_swap(was);
      if (r == 0 && !err.err) {
        (*sent)++;
        m->cached |= bit;
        if (missing)
          bl->per_api[api]--;
        continue;
      }
    }
    if (missing)
      all = false;
  }
  if (recheck) {
    m->seen = true;
    /* The documents' shortest freshness that matters: a stale one is
     * refreshed only while its API is nearly idle anyway. */
    m->recheck_at = now + STORE_TTL_MAIN / s->scale;
  }
  return all;
}

static void sync_round(struct syncer *sy)
{
  store *s = sy->s;
  double round_start = cliq_clock_real();
  struct sync_item *items = NULL;
  size_t n = 0, cap = 0, channels_known = 0, channels_total = 0;
  struct sync_backlog bl;
  memset(&bl, 0, sizeof bl);
  if (!sync_lists(sy, round_start, &items, &n, &cap, &channels_known,
                  &channels_total))
    goto out;
  qsort(items, n, sizeof *items, by_activity);
  size_t threads = 0, synced = 0, messages = 0;
  uint64_t sent = 0;
  bool all = s->sync == STORE_SYNC_ALL;
  for (size_t i = 0; i < n && !stopping(s); i++) {
    struct sync_item *it = &items[i];
    threads += it->is_thread;
    store_log *log = log_peek(s, it->chat_id);
    if (!log)
      continue;
    size_t count = 0;
    bool current = log_current(log, it->last_ms, &count);
    if (!current && all && sync_may(sy, CLIQ_API_CHATS_MESSAGES)) {
      cliq_error err;
      memset(&err, 0, sizeof err);
      enum patience was = patience_swap(PATIENCE_NONE);
      int r = log_refresh(s, log, CLIQ_PRIO_BACKGROUND, 0, &err);
      patience_swap(was);
      if (r == 0 && !err.err) {
        sent++;
        current = log_current(log, it->last_ms, &count);
      }
    }
    if (current && it->list_fresh && it->list_ttl_left > 0)
      log_confirm(s, log, it->list_ttl_left);
    if (!current)
      bl.per_api[CLIQ_API_CHATS_MESSAGES]++;
    bool docs = !it->is_thread || sync_docs_of(sy, it->chat_id, all, &bl, &sent);
    if (current)
      messages += count;
    if (it->is_thread && current && (docs || !all))
      synced++;
  }
  /* The estimate: the API with most left, at the pace the syncer may take
   * (its share, within what background may less the slot left to the
   * refresher). */
  int keep = refresher_claim(s);
  double eta = 0;
  for (int a = 0; a < CLIQ_API_COUNT; a++) {
    if (!bl.per_api[a])
      continue;
    double window_s = 0;
    int per = gov_lane_per_window(s->gov, (enum cliq_api)a,
                                  CLIQ_PRIO_BACKGROUND, &window_s) - keep;
    gov_background v;
    gov_background_view(s->gov, (enum cliq_api)a, &v);
    int share = sync_allowed(s, &sy->api[a], v.budget);
    if (share < per)
      per = share;
    double t = per > 0 ? (double)bl.per_api[a] / per * window_s : -1;
    if (t < 0 || eta < 0) {
      eta = -1;
      continue;
    }
    if (t > eta)
      eta = t;
  }
  pthread_mutex_lock(&s->lock);
  store_sync_stats *st = &s->sync_stats;
  st->channels = channels_known;
  st->channels_total = channels_total;
  st->threads = threads;
  st->threads_synced = synced;
  st->messages = messages;
  st->requests += sent;
  bool done = channels_known == channels_total && synced == threads;
  if (done)
    st->last_full_pass = cliq_clock_real();
  st->eta_s = done ? 0 : all ? eta : -1;
  for (int a = 0; a < CLIQ_API_COUNT; a++)
    st->backoff[a] = (unsigned char)sy->api[a].backoff;
  pthread_mutex_unlock(&s->lock);
out:
  for (size_t i = 0; i < n; i++)
    free(items[i].chat_id);
  free(items);
}

static void *syncer_main(void *arg)
{
  struct syncer sy = { .s = arg, .started_at = cliq_clock_real() };
  store *s = sy.s;
  /* Parsing and writing a whole organization must not slow the threads
   * that answer a user, nor hold them up: this thread runs at nice 10
   * (Linux keeps a nice value per thread).  Not lower: it still takes short
   * locks that readers need (the tcache's, a log's, the invalidation
   * queue's), and a thread preempted inside one holds them up until its
   * next turn.  At nice 19 behind two busy loops on this 2-CPU machine it
   * was off its CPU for 32 ms inside the tcache's lock, FUSE workers waited
   * up to 86 ms for such locks, and the demo's reads with sync had 67 ms
   * outliers; at nice 10 (about seven times the CPU share of nice 19,
   * a tenth of a user's) none.  Not nice 0 or SCHED_BATCH: where sync is
   * CPU-bound (a large organization at a compressed time scale) an equal
   * share slowed the user's reads' tail.  Not SCHED_IDLE: it waits for an
   * idle CPU before it lets a lock go.  Best effort. */
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  /* The pace starts at the mount with no credit: there is no past to
   * fall behind in, and a user who starts to read at a mount (a tail -f of
   * several threads, an ls -R) would otherwise find part of the window spent
   * by sync's first moments. */
  for (int a = 0; a < CLIQ_API_COUNT; a++) {
    sy.api[a].seen = gov_thread_taken((enum cliq_api)a);
    sy.api[a].next_at = sy.started_at;
  }
  double tick = store_tick(s);
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    pthread_mutex_unlock(&s->lock);
    sync_round(&sy);
    pthread_mutex_lock(&s->lock);
    if (s->stopping)
      break;
    cliq_clock_wait_until(&s->wake, &s->lock, cliq_clock_mono() + tick);
  }
  pthread_mutex_unlock(&s->lock);
  for (int a = 0; a < CLIQ_API_COUNT; a++)
    free(sy.api[a].at);
  smap_free(&sy.marks, free);
  return NULL;
}

int store_start_syncer(store *s)
{
  pthread_mutex_lock(&s->lock);
  int r = 0;
  if (!s->syncer_running && s->sync != STORE_SYNC_OFF) {
    r = -pthread_create(&s->syncer, NULL, syncer_main, s);
    s->syncer_running = r == 0;
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}
