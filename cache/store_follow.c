/* cache/store_follow.c: the background refresher that keeps followed logs
 * current. */
#include "cache/store_i.h"

/* ---- Background refresher ------------------------------------------------------------ */

/* Fetches of one announced last-message time that does not arrive. */
#define FOLLOW_CHASE_TRIES 2

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

/* Slots of the reserve that a known new message of a followed log leaves to
 * the reads of other files. */
#define FOLLOW_RESERVE_LEFT 2

/* Whether the refresher may try to fetch log at now (not waiting out a
 * failure: follow_fetch). */
static bool log_may_try(store_log *log, double now)
{
  pthread_mutex_lock(&log->lock);
  bool may = now >= log->next_try_at;
  pthread_mutex_unlock(&log->lock);
  return may;
}

/* Fetches what is new in a followed log in the background lane; after a
 * failure (or the governor's no) the log waits a quarter of its freshness,
 * never a tight loop.  A fetch of a message known to be there (its thread
 * list entry or its parent's count moved: `known`) is one somebody watching
 * the file waits for: when the background lane is spent it may take a slot
 * of the reserve as a read that does not wait, leaving the last
 * FOLLOW_RESERVE_LEFT to the reads of other files.  Returns true when the
 * fetch succeeded. */
static bool follow_fetch(store *s, store_log *log, double max_age_s,
                         double fresh_s, bool known)
{
  enum cliq_priority prio = CLIQ_PRIO_BACKGROUND;
  if (known && s->gov) {
    gov_background v;
    gov_background_view(s->gov, CLIQ_API_CHATS_MESSAGES, &v);
    if (v.spare == 0 && v.locked_until == 0 &&
        v.budget - v.used > FOLLOW_RESERVE_LEFT)
      prio = CLIQ_PRIO_READ;
  }
  cliq_error err;
  enum patience was = patience_swap(prio == CLIQ_PRIO_READ ? PATIENCE_NONE
                                                           : PATIENCE_WAIT);
  int r = log_refresh(s, log, prio, max_age_s, &err);
  patience_swap(was);
  if (r == 0 && !err.err) {
    pthread_mutex_lock(&log->lock);
    log->wanted = false;
    pthread_mutex_unlock(&log->lock);
  }
  if (r < 0 || err.err) {
    pthread_mutex_lock(&log->lock);
    log->next_try_at = cliq_clock_real() + fresh_s / 4;
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
                           double retry_at, double pace_s, double fresh_s)
{
  const char *channel_id = f[first].fi->channel_id;
  bool failed = false;
  store_threads *t = NULL;
  if (cliq_clock_real() >= retry_at) {
    t = threads_poll(s, channel_id, pace_s, CLIQ_PRIO_BACKGROUND, &failed);
    if (failed)
      threads_poll_later(s, channel_id, cliq_clock_real() + fresh_s / 4);
  }
  double listed_at = -1;
  if (t) {
    double age = threads_age(s, channel_id);
    if (age >= 0)
      listed_at = cliq_clock_real() - age;
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
    if (listed_at >= 0)
      fi->listed_at = listed_at;
    if (!fi->parent_msg_id && th->parent_chat_id && th->thread_message_id) {
      fi->parent_chat_id = strdup(th->parent_chat_id);
      fi->parent_msg_id = strdup(th->thread_message_id);
      if (!fi->parent_chat_id || !fi->parent_msg_id) {
        free(fi->parent_chat_id);
        free(fi->parent_msg_id);
        fi->parent_chat_id = fi->parent_msg_id = NULL;
      }
    }
    pthread_mutex_lock(&log->lock);
    int64_t cursor = log->cursor_ms;
    double next_try = log->next_try_at;
    pthread_mutex_unlock(&log->lock);
    /* Fetched when the entry moved since the last poll (even to a time not
     * newer than ours: the list's clock may be coarser than the messages'),
     * or when it is newer than what we have and not chased yet. */
    bool moved = fi->list_ms && th->last_ms != fi->list_ms;
    bool newer = th->last_ms > cursor && th->last_ms > fi->chased_ms;
    /* What a probe fetched moves the entry too: no second fetch for it. */
    if (moved && fi->probe_fetched && th->last_ms <= cursor)
      moved = false;
    if (th->last_ms != fi->list_ms)
      fi->probe_fetched = false;
    if (!moved && !newer) {
      fi->list_ms = th->last_ms;
      continue;
    }
    if (cliq_clock_real() < next_try || !follow_fetch(s, log, 0, fresh_s, true))
      continue;                   /* the signal stays for the next round */
    fi->fetch_due = false;
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

/* Paced polls go a little slower than the lane lets through: at exactly
 * its rate, a request stamped a hair early meets a full window, is refused,
 * and its poll slips by a retry. */
#define FOLLOW_PACE_SLACK 1.03

/* How often (unscaled seconds) each of k things watched through api is
 * asked for: every freshness window of a log, or, when k of them would not
 * fit in what the background lane lets through, as often as they do, evenly
 * spread (polls that come in bursts and are refused leave long gaps). */
static double follow_pace(store *s, enum cliq_api api, size_t k)
{
  double window_s = 0;
  int per = gov_lane_per_window(s->gov, api, CLIQ_PRIO_BACKGROUND, &window_s);
  if (!s->gov || per <= 0 || window_s <= 0)
    return STORE_TTL_LOG;
  double pace = (double)(k ? k : 1) * window_s * FOLLOW_PACE_SLACK * s->scale / per;
  return pace > STORE_TTL_LOG ? pace : STORE_TTL_LOG;
}

/* The time after `at` on a beat of `every` seconds: one beat of catching up
 * at most after a quiet time, never a tick late each time. */
static double next_beat(double at, double now, double every)
{
  double base = at > now - every ? at : now - every;
  return base + every;
}

/* How long (real seconds) a followed thread has gone without a check that
 * would have shown a new message: its channel's list fetched (by anyone:
 * list_age, real seconds, < 0 when never), its parent probed or its
 * messages fetched by the refresher. */
static double follow_age(const struct follow_info *fi, double list_age,
                         double now)
{
  double age = list_age >= 0 ? list_age : 1e12;
  if (fi->checked_at > 0 && now - fi->checked_at < age)
    age = now - fi->checked_at;
  return age;
}

/* A followed thread checked less than this long ago (a share of the log's
 * freshness, real seconds) is not checked again: with few threads followed
 * the lanes would otherwise spend their whole share on them. */
static double follow_min_age(double fresh_s)
{
  return fresh_s / 4;
}

/* Between two polls of its channel's list, a followed thread is checked
 * through its parent message: the one-message endpoint (messages.get) and
 * the thread's main message (threads.main), two budgets of their own, count
 * the thread's messages in thread_information, so one request tells whether
 * the thread moved, and only then is it fetched.
 * The count is compared with what the log gained since the last probe (a
 * fetch prompted by the list, our own posts), so that nothing is fetched
 * twice.  Probes go one at a time, each on a beat of its API's background
 * lane, to the thread that has gone longest without a check (follow_age):
 * the lists, the two probing APIs and the polls (follow_poll) are streams of
 * checks, and giving each check to the stalest thread spreads them evenly
 * over the threads, whatever the streams' rates (a post waits for the next
 * check of its thread: even gaps make the shortest waits).  Returns whether
 * it probed. */
static bool follow_probe(store *s, struct followed *f, size_t n,
                         double fresh_s)
{
  if (!s->gov)
    return false;
  /* The first of the two probing APIs whose beat has come. */
  static const enum cliq_api apis[2] = { CLIQ_API_MESSAGES_GET,
                                         CLIQ_API_THREADS_MAIN };
  double now = cliq_clock_real();
  double window_s = 0;
  int per = 0, a = 0;
  for (; a < 2; a++) {
    per = gov_lane_per_window(s->gov, apis[a], CLIQ_PRIO_BACKGROUND, &window_s);
    if (per > 0 && now >= s->probe_next_at[a])
      break;
  }
  if (a == 2)
    return false;
  double beat_s = window_s * FOLLOW_PACE_SLACK / per;
  size_t best = n;
  double best_age = follow_min_age(fresh_s);
  for (size_t i = 0; i < n; i++) {
    struct follow_info *fi = f[i].fi;
    if (!f[i].by_list || !fi || !fi->parent_msg_id || fi->listed_at <= 0)
      continue;
    double age = follow_age(fi, now - fi->listed_at, now);
    if (age >= best_age) {
      best_age = age;
      best = i;
    }
  }
  if (best == n)
    return false;
  struct follow_info *fi = f[best].fi;
  store_log *log = f[best].log;
  s->probe_next_at[a] = next_beat(s->probe_next_at[a], now, beat_s);
  pthread_mutex_lock(&log->lock);
  size_t have = log->evicted ? log->kept_count : log->ids.count;
  double next_try = log->next_try_at;
  pthread_mutex_unlock(&log->lock);
  cliq_message m;
  cliq_error err;
  int r = apis[a] == CLIQ_API_MESSAGES_GET
              ? cliq_get_message(s->client, CLIQ_PRIO_BACKGROUND,
                                 fi->parent_chat_id, fi->parent_msg_id, &m, &err)
              : cliq_get_main_message(s->client, CLIQ_PRIO_BACKGROUND,
                                      log->chat_id, &m, &err);
  if (r < 0 || m.thread_messages < 0)
    goto out;
  /* A first probe learns the thread's count.  A log that holds fewer
   * messages than a first fetch may take (history=) holds the whole thread:
   * then that count already tells whether the thread moved.  Otherwise the
   * first probe is no check. */
  bool whole = have < (size_t)s->history;
  bool moved = fi->probed ? m.thread_messages - fi->probe_count >
                                (int64_t)have - (int64_t)fi->probe_log_count
                          : whole && m.thread_messages > (int64_t)have;
  if (fi->probed || whole)
    fi->checked_at = now;
  if (moved) {
    if (now < next_try || !follow_fetch(s, log, 0, fresh_s, true)) {
      fi->fetch_due = true;       /* fetched once it may be (follow_round) */
      goto out;
    }
    fi->probe_fetched = true;
  }
  fi->probed = true;
  fi->probe_count = m.thread_messages;
  fi->probe_log_count = have;
out:
  cliq_message_clear(&m);
  return true;
}

/* Slots of the messages lane that the refresher's own checks leave to the
 * fetches that a list or a probe asks for. */
#define FOLLOW_FETCH_ROOM 2

/* A third stream of checks of the threads watched through their lists: a
 * fetch of what is new in the thread that has gone longest without a check,
 * which checks and fetches at once, on the beats of what the messages lane
 * lets through beyond FOLLOW_FETCH_ROOM, and only while that room is free.
 * Returns whether it fetched. */
static bool follow_poll(store *s, struct followed *f, size_t n, double fresh_s)
{
  if (!s->gov)
    return false;
  double now = cliq_clock_real();
  double window_s = 0;
  int per = gov_lane_per_window(s->gov, CLIQ_API_CHATS_MESSAGES,
                                CLIQ_PRIO_BACKGROUND, &window_s);
  if (per <= FOLLOW_FETCH_ROOM || now < s->poll_next_at)
    return false;
  gov_background v;
  gov_background_view(s->gov, CLIQ_API_CHATS_MESSAGES, &v);
  if (v.spare <= FOLLOW_FETCH_ROOM)
    return false;
  size_t best = n;
  double best_age = follow_min_age(fresh_s);
  for (size_t i = 0; i < n; i++) {
    struct follow_info *fi = f[i].fi;
    if (!f[i].by_list || !fi || fi->listed_at <= 0)
      continue;
    bool may = log_may_try(f[i].log, now);
    double age = follow_age(fi, now - fi->listed_at, now);
    if (may && age >= best_age) {
      best_age = age;
      best = i;
    }
  }
  if (best == n)
    return false;
  double beat_s = window_s * FOLLOW_PACE_SLACK / (per - FOLLOW_FETCH_ROOM);
  s->poll_next_at = next_beat(s->poll_next_at, now, beat_s);
  struct follow_info *fi = f[best].fi;
  if (!follow_fetch(s, f[best].log, 0, fresh_s, false))
    return false;
  fi->checked_at = now;
  fi->fetch_due = false;
  /* Its list entry moves with what this brought: no second fetch for it. */
  fi->probe_fetched = true;
  return true;
}

/* One round of the refresher over the followed chats.  A channel whose
 * followed threads outnumber its thread-list pages is watched through that
 * list; every other followed chat is fetched when it is stale.  Both are
 * paced to the background lane's share of their API's budget.  Returns the
 * real time of the next beat of a list, a probe or a poll (0: none to come),
 * so that the refresher wakes for it, not a tick late. */
static double follow_round(store *s, struct followed *f, size_t n,
                           double fresh_s)
{
  for (size_t i = 0; i < n; i++) {
    struct follow_info *fi = f[i].fi = follow_info_for(s, f[i].log->chat_id);
    if (fi && !fi->resolved) {
      fi->channel_id = channel_of_thread(s, f[i].log->chat_id);
      fi->resolved = fi->channel_id != NULL;
    }
  }
  /* Which channels are watched through their lists: those whose followed
   * threads outnumber the list's pages (retry_at: when their next poll may
   * be tried; listed[i] is set at a channel's first followed thread). */
  struct {
    bool on;
    double retry_at;
  } *listed = calloc(n ? n : 1, sizeof *listed);
  if (!listed)
    return 0;
  size_t lists = 0;
  for (size_t i = 0; i < n; i++) {
    if (!f[i].fi || !f[i].fi->channel_id)
      continue;
    bool first = true;
    for (size_t j = 0; j < i && first; j++)
      if (f[j].fi && f[j].fi->channel_id &&
          strcmp(f[j].fi->channel_id, f[i].fi->channel_id) == 0)
        first = false;
    if (!first)
      continue;
    size_t members = 0;
    for (size_t j = i; j < n; j++)
      if (f[j].fi && f[j].fi->channel_id &&
          strcmp(f[j].fi->channel_id, f[i].fi->channel_id) == 0)
        members++;
    double retry_at;
    size_t pages = threads_pages(s, f[i].fi->channel_id, &retry_at);
    if (pages > 0 && members > pages) {
      listed[i].on = true;
      listed[i].retry_at = retry_at;
      lists += pages;
    }
  }
  double list_pace = follow_pace(s, CLIQ_API_THREADS_LIST, lists);
  /* The lists are polled one at a time, on the beats of their lane (polled
   * together, every followed thread would be checked at the same moments
   * and the probes could not fill the gaps), each to the channel whose
   * followed threads have gone longest without a check (the sum of their
   * squared ages, per page: what a post waits grows with the square of a
   * gap), among the lists at least one beat (`every`) old. */
  double now = cliq_clock_real();
  double every = lists ? list_pace / (double)lists : 0;   /* unscaled */
  size_t due = n;
  double best = 0;
  for (size_t i = 0; lists && now >= s->list_next_at && i < n; i++) {
    if (!listed[i].on || now < listed[i].retry_at)
      continue;
    const char *channel_id = f[i].fi->channel_id;
    double list_age = threads_age(s, channel_id);
    if (list_age >= 0 && list_age * s->scale < every)
      continue;
    double score = 0, oldest = 0;
    for (size_t j = i; j < n; j++) {
      if (!f[j].fi || !f[j].fi->channel_id ||
          strcmp(f[j].fi->channel_id, channel_id) != 0)
        continue;
      double age = follow_age(f[j].fi, list_age, now);
      score += age * age;
      if (age > oldest)
        oldest = age;
    }
    double retry_unused;
    size_t pages = threads_pages(s, channel_id, &retry_unused);
    score /= (double)(pages ? pages : 1);
    if (oldest >= follow_min_age(fresh_s) && score > best) {
      best = score;
      due = i;
    }
  }
  if (due < n) {
    double retry_unused;
    size_t pages = threads_pages(s, f[due].fi->channel_id, &retry_unused);
    double step = every * (double)(pages ? pages : 1) / s->scale;
    s->list_next_at = next_beat(s->list_next_at, now, step);
  }
  for (size_t i = 0; i < n; i++)
    if (listed[i].on)
      follow_channel(s, f, n, i, listed[i].retry_at, i == due ? 0 : 1e12,
                     fresh_s);
  free(listed);
  /* A move that a probe saw but could not fetch then is fetched as soon as
   * the log may be, not at the thread's next probe. */
  now = cliq_clock_real();
  for (size_t i = 0; i < n; i++) {
    struct follow_info *fi = f[i].fi;
    if (!fi || !fi->fetch_due)
      continue;
    bool may = log_may_try(f[i].log, now);
    if (may && follow_fetch(s, f[i].log, 0, fresh_s, true)) {
      fi->fetch_due = false;
      fi->probe_fetched = true;
    }
  }
  for (int k = 0; k < 3 && follow_probe(s, f, n, fresh_s); k++)
    ;
  follow_poll(s, f, n, fresh_s);
  /* The beats to wake for, while some lists are watched: the lists', the
   * polls', and the probes' while a thread can be probed. */
  double next = lists ? s->list_next_at : 0;
  bool probeable = false;
  for (size_t i = 0; i < n && !probeable; i++)
    probeable = f[i].by_list && f[i].fi && f[i].fi->parent_msg_id;
  double beats[3] = { s->probe_next_at[0], s->probe_next_at[1],
                      s->poll_next_at };
  for (int a = 0; a < 3; a++)
    if ((probeable || a == 2) && lists && beats[a] > 0 &&
        (next == 0 || beats[a] < next))
      next = beats[a];
  size_t direct = 0;
  for (size_t i = 0; i < n; i++)
    direct += !f[i].by_list;
  double direct_pace = follow_pace(s, CLIQ_API_CHATS_MESSAGES, direct) / s->scale;
  now = cliq_clock_real();
  for (size_t i = 0; i < n; i++) {
    if (f[i].by_list)
      continue;
    pthread_mutex_lock(&f[i].log->lock);
    bool may = now >= f[i].log->next_try_at &&
               (f[i].log->wanted || now - f[i].log->fetched_at >= direct_pace);
    pthread_mutex_unlock(&f[i].log->lock);
    if (may)
      follow_fetch(s, f[i].log, 0, fresh_s, false);
  }
  return next;
}

/* The shortest sleep of the refresher (real seconds): a beat due in less
 * is waited for this long. */
#define FOLLOW_WAKE_MIN 0.002

static void *refresher_main(void *arg)
{
  store *s = arg;
  double tick = store_follow_tick(s);
  double wait = tick;
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    cliq_clock_wait_until(&s->wake, &s->lock, cliq_clock_mono() + wait);
    if (s->stopping)
      break;
    /* The logs (references stay valid: logs live until store_free, which
     * first stops this thread), then, without s->lock, the followed ones: a
     * log's lock may be held over a disk write. */
    size_t nall = 0;
    store_log **all = logs_all_locked(s, &nall);
    pthread_mutex_unlock(&s->lock);
    size_t n = 0;
    struct followed *due = nall ? calloc(nall, sizeof *due) : NULL;
    double fresh_s = ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES) / s->scale;
    for (size_t i = 0; due && i < nall; i++) {
      store_log *log = all[i];
      pthread_mutex_lock(&log->lock);
      bool followed = log->known && (log->readers > 0 || log->wanted);
      pthread_mutex_unlock(&log->lock);
      if (followed)
        due[n++] = (struct followed){ .log = log };
    }
    __atomic_store_n(&s->followed, n, __ATOMIC_RELAXED);
    double beat = follow_round(s, due, n, fresh_s);
    free(due);
    /* A beat that has come and found nothing to check waits for the tick. */
    wait = tick;
    double until = beat - cliq_clock_real();
    if (beat > 0 && until > 0 && until < wait)
      wait = until > FOLLOW_WAKE_MIN ? until : FOLLOW_WAKE_MIN;
    if (all)
      store_logs_trim(all, nall, STORE_LOG_MEMORY);
    free(all);
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
