/* cache/governor.c: the rate governor (governor.h): budgets, lanes, locks
 * and the ledger they share. */
/* The ledger: one JSON file, state_dir/ledger, holding per API the stamps
 * (epoch microseconds) of the requests sent within its window and the time
 * its lock ends:
 *   {"version":1,"apis":{"chats.messages":{"stamps":[...],"locked_until":N}}}
 * It is replaced atomically (statefile_replace; durably, with
 * statefile_write_atomic, when it records a lock), and every
 * read-modify-write happens under flock() on state_dir/ledger.lock, a file
 * that is never replaced.  flock() locks belong to an open file description,
 * so two governors in one process exclude each other exactly as two processes
 * do.  Reads that modify nothing (status) need no lock: rename makes every
 * version of the file whole. */
#include "cache/governor.h"
#include "cache/patience.h"
#include "api/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cache/statefile.h"

/* Waiters re-read the shared ledger at least this often: another process may
 * have taken the slot they were waiting for, or locked the API. */
#define GOV_RECHECK_US 1000000LL
/* Requests of this governor sent and not answered yet, per API, kept at
 * most (a caller that acquires without ever recording would grow it). */
#define GOV_INFLIGHT_MAX 4096

struct api_state {
  int limit;
  int64_t window_us;      /* scaled */
  int64_t lock_us;        /* scaled */
  int64_t *stamps;        /* sorted ascending */
  size_t n, cap;
  int64_t locked_until;   /* epoch microseconds; 0 = not locked */
  int waiting[CLIQ_PRIO_COUNT]; /* threads of this governor waiting, per lane */
  /* Stamps of this governor's requests that have no answer yet, oldest
   * first (see gov_record). */
  int64_t *inflight;
  size_t ninflight, capinflight;
};

struct gov {
  pthread_mutex_t mu;
  pthread_cond_t cond;    /* CLOCK_MONOTONIC */
  struct api_state apis[CLIQ_API_COUNT];
  double scale;
  int margin;
  double max_wait_s;
  bool keep_unanswered;
  char *ledger_path;      /* NULL: memory only */
  int lock_fd;            /* ledger.lock, -1 when memory only */
  bool save_failed;       /* the file is behind what we know */
  bool shutdown;
  int64_t loaded_us;      /* when the ledger was last read from disk */
};

/* gov_pressure() is asked on every cached read and gov_background_view()
 * before every request sync considers; they are hints, so they may use a
 * ledger up to this old instead of reading the file each time. */
#define PRESSURE_RELOAD_US 250000

/* Slots the calling thread has taken, per API (gov_thread_taken). */
static __thread uint64_t thread_taken[CLIQ_API_COUNT];

static int64_t now_real_us(void)
{
  return (int64_t)llround(cliq_clock_real() * 1e6);
}

static int64_t now_mono_us(void)
{
  return (int64_t)llround(cliq_clock_mono() * 1e6);
}

static int64_t scaled_us(double seconds, double scale)
{
  int64_t us = (int64_t)llround(seconds * 1e6 / scale);
  return us > 0 ? us : 1;
}

static int budget_of(const gov *g, const struct api_state *s)
{
  int budget = s->limit - g->margin;
  return budget >= 1 ? budget : 1;
}

/* Background work takes a slot only while more than this many would remain,
 * so that the lanes above always find room. */
static int reserve_of(int budget)
{
  int quarter = (budget + 3) / 4;
  return quarter > 2 ? quarter : 2;
}

/* ---- stamps --------------------------------------------------------------- */

static int stamps_reserve(struct api_state *s, size_t want)
{
  if (want <= s->cap)
    return 0;
  size_t cap = s->cap ? s->cap : 16;
  while (cap < want)
    cap *= 2;
  int64_t *p = realloc(s->stamps, cap * sizeof(*p));
  if (!p)
    return -ENOMEM;
  s->stamps = p;
  s->cap = cap;
  return 0;
}

/* Drops the stamps that have left the window ending at now: a stamp counts
 * while stamp > now - window. */
static void stamps_prune(struct api_state *s, int64_t now)
{
  size_t k = 0;
  while (k < s->n && s->stamps[k] <= now - s->window_us)
    k++;
  if (k) {
    memmove(s->stamps, s->stamps + k, (s->n - k) * sizeof(*s->stamps));
    s->n -= k;
  }
}

static int stamps_insert(struct api_state *s, int64_t stamp)
{
  int rc = stamps_reserve(s, s->n + 1);
  if (rc)
    return rc;
  size_t i = s->n;
  while (i > 0 && s->stamps[i - 1] > stamp) {
    s->stamps[i] = s->stamps[i - 1];
    i--;
  }
  s->stamps[i] = stamp;
  s->n++;
  return 0;
}

/* Removes one stamp equal to `stamp`; false when there is none. */
static bool stamps_remove(struct api_state *s, int64_t stamp)
{
  for (size_t i = 0; i < s->n; i++) {
    if (s->stamps[i] != stamp)
      continue;
    memmove(s->stamps + i, s->stamps + i + 1,
            (s->n - i - 1) * sizeof(*s->stamps));
    s->n--;
    return true;
  }
  return false;
}

static void inflight_push(struct api_state *s, int64_t stamp)
{
  if (s->ninflight == GOV_INFLIGHT_MAX) {
    memmove(s->inflight, s->inflight + 1,
            (s->ninflight - 1) * sizeof(*s->inflight));
    s->ninflight--;
  }
  if (s->ninflight == s->capinflight) {
    size_t cap = s->capinflight ? s->capinflight * 2 : 16;
    int64_t *p = realloc(s->inflight, cap * sizeof(*p));
    if (!p)
      return; /* the request then keeps its send time: a weaker bound only */
    s->inflight = p;
    s->capinflight = cap;
  }
  s->inflight[s->ninflight++] = stamp;
}

/* A request of ours still unanswered half a window after its stamp is
 * re-stamped now: it may reach the server any time until its answer, so it
 * keeps counting (also for other processes reading the ledger) instead of
 * leaving the window while it is still on its way. */
static bool inflight_keep(struct api_state *s, int64_t now)
{
  size_t k = 0;
  while (k < s->ninflight && s->inflight[k] <= now - s->window_us / 2)
    k++;
  if (k == 0)
    return false;
  for (size_t i = 0; i < k; i++) {
    stamps_remove(s, s->inflight[i]);
    (void)stamps_insert(s, now);
  }
  memmove(s->inflight, s->inflight + k,
          (s->ninflight - k) * sizeof(*s->inflight));
  for (size_t i = s->ninflight - k; i < s->ninflight; i++)
    s->inflight[i] = now;
  return true;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* ---- the ledger file ------------------------------------------------------ */

static void ledger_lock(gov *g)
{
  if (g->lock_fd < 0)
    return;
  while (flock(g->lock_fd, LOCK_EX) != 0 && errno == EINTR)
    ;
}

static void ledger_unlock(gov *g)
{
  if (g->lock_fd >= 0)
    flock(g->lock_fd, LOCK_UN);
}

/* Replaces what we know by the file's content, the one truth shared by every
 * process of the account.  When the file is missing or unreadable we keep
 * what we have (it is the best we know).  Times in the future (the clock went
 * back) are pulled in so that they cannot block an API for longer than one
 * window or one lock period. */
static void ledger_load(gov *g)
{
  /* After a failed write the file lacks our own latest stamps: trust memory
   * until a write succeeds again. */
  if (!g->ledger_path || g->save_failed)
    return;
  char *buf = NULL;
  size_t len = 0;
  if (statefile_read(g->ledger_path, &buf, &len) != 0)
    return;
  json_t *root = json_loadb(buf, len, 0, NULL);
  free(buf);
  json_t *apis = json_object_get(root, "apis");
  if (!json_is_object(apis)) {
    json_decref(root);
    return;
  }
  int64_t now = now_real_us();
  g->loaded_us = now;
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    struct api_state *s = &g->apis[i];
    json_t *entry = json_object_get(apis, cliq_api_name((enum cliq_api)i));
    json_t *stamps = json_object_get(entry, "stamps");
    s->n = 0;
    s->locked_until = 0;
    if (!json_is_object(entry))
      continue;
    size_t idx;
    json_t *v;
    if (json_is_array(stamps) &&
        stamps_reserve(s, json_array_size(stamps)) == 0) {
      json_array_foreach(stamps, idx, v) {
        if (!json_is_integer(v))
          continue;
        int64_t t = (int64_t)json_integer_value(v);
        s->stamps[s->n++] = t > now ? now : t;
      }
      if (s->n)
        qsort(s->stamps, s->n, sizeof(*s->stamps), cmp_i64);
    }
    json_t *locked = json_object_get(entry, "locked_until");
    if (json_is_integer(locked)) {
      int64_t until = (int64_t)json_integer_value(locked);
      if (until > now + s->lock_us)
        until = now + s->lock_us;
      s->locked_until = until > now ? until : 0;
    }
    stamps_prune(s, now);
  }
  json_decref(root);
}

/* Writes what we know; only the stamps within the window are kept, so the
 * file stays small.  Failing to write is not fatal: this process still
 * counts correctly, and the file keeps the previous truth.  durable: also
 * across a crash of the machine.  Stamps need not be (a reboot outlasts
 * most windows, and two fsyncs per request would sit in every fetch's
 * path); a lock must, since it lasts minutes and a request in it is
 * refused and may extend it. */
/* ledger_load() for the hints, unless the ledger was read within
 * PRESSURE_RELOAD_US (mutex held). */
static void ledger_load_recent(gov *g, int64_t now)
{
  if (now - g->loaded_us > PRESSURE_RELOAD_US)
    ledger_load(g);
}

static int ledger_save(gov *g, bool durable)
{
  if (!g->ledger_path)
    return 0;
  int rc = -ENOMEM;
  int64_t now = now_real_us();
  json_t *root = json_object();
  json_t *apis = json_object();
  if (!root || !apis || json_object_set_new(root, "version", json_integer(1)) ||
      json_object_set(root, "apis", apis))
    goto out;
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    struct api_state *s = &g->apis[i];
    stamps_prune(s, now);
    if (s->locked_until <= now)
      s->locked_until = 0;
    if (s->n == 0 && s->locked_until == 0)
      continue;
    json_t *entry = json_object();
    json_t *stamps = json_array();
    if (!entry || !stamps) {
      json_decref(entry);
      json_decref(stamps);
      goto out;
    }
    for (size_t k = 0; k < s->n; k++)
      json_array_append_new(stamps, json_integer(s->stamps[k]));
    json_object_set_new(entry, "stamps", stamps);
    json_object_set_new(entry, "locked_until", json_integer(s->locked_until));
    json_object_set_new(apis, cliq_api_name((enum cliq_api)i), entry);
  }
  char *text = json_dumps(root, JSON_COMPACT);
  if (!text)
    goto out;
  rc = durable ? statefile_write_atomic(g->ledger_path, text, strlen(text))
               : statefile_replace(g->ledger_path, text, strlen(text));
  free(text);
out:
  g->save_failed = rc != 0;
  json_decref(apis);
  json_decref(root);
  return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void reset_limits(gov *g)
{
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    const struct cliq_api_info *info = cliq_api_info((enum cliq_api)i);
    struct api_state *s = &g->apis[i];
    s->limit = info->limit;
    s->window_us = scaled_us(info->window_s, g->scale);
    s->lock_us = scaled_us(info->lock_s, g->scale);
  }
}

gov *gov_new(const gov_options *opts, cliq_error *err)
{
  gov_options defaults = {.state_dir = NULL, .time_scale = 1, .margin = -1,
                          .max_wait_s = 60};
  if (!opts)
    opts = &defaults;
  gov *g = calloc(1, sizeof(*g));
  if (!g) {
    cliq_fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  g->lock_fd = -1;
  g->scale = opts->time_scale > 0 ? opts->time_scale : 1;
  g->margin = opts->margin < 0 ? 0 : opts->margin;
  g->keep_unanswered = opts->keep_unanswered;
  g->max_wait_s = opts->max_wait_s > 0 ? opts->max_wait_s : 0;
  reset_limits(g);

  cliq_clock_cond_init(&g->cond);
  pthread_mutex_init(&g->mu, NULL);

  if (opts->state_dir) {
    char *lock_path = NULL;
    int rc = statefile_mkdirs(opts->state_dir, 0700);
    if (rc) {
      cliq_fail(err, -rc, "rate ledger folder %s: %s", opts->state_dir,
              strerror(-rc));
      goto fail;
    }
    if (asprintf(&g->ledger_path, "%s/ledger", opts->state_dir) < 0 ||
        asprintf(&lock_path, "%s/ledger.lock", opts->state_dir) < 0) {
      g->ledger_path = NULL;
      cliq_fail(err, ENOMEM, "out of memory");
      goto fail;
    }
    g->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int e = errno;
    free(lock_path);
    if (g->lock_fd < 0) {
      cliq_fail(err, e, "rate ledger lock in %s: %s", opts->state_dir,
              strerror(e));
      goto fail;
    }
    /* A restarted daemon starts from the window and locks left behind. */
    ledger_lock(g);
    ledger_load(g);
    ledger_unlock(g);
  }
  if (err)
    memset(err, 0, sizeof(*err));
  return g;
fail:
  gov_free(g);
  return NULL;
}

void gov_free(gov *g)
{
  if (!g)
    return;
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    free(g->apis[i].stamps);
    free(g->apis[i].inflight);
  }
  if (g->lock_fd >= 0)
    close(g->lock_fd);
  free(g->ledger_path);
  pthread_cond_destroy(&g->cond);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

void gov_shutdown(gov *g)
{
  pthread_mutex_lock(&g->mu);
  g->shutdown = true;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
}

/* ---- limits ------------------------------------------------------------ */

int gov_set_limit(gov *g, enum cliq_api api, int limit, double window_s)
{
  if (!g || !cliq_api_info(api) || limit < 1 || !isfinite(window_s) ||
      window_s <= 0)
    return -EINVAL;
  pthread_mutex_lock(&g->mu);
  g->apis[api].limit = limit;
  g->apis[api].window_us = scaled_us(window_s, g->scale);
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

int gov_set_limit_str(gov *g, const char *api_name, const char *value,
                      cliq_error *err)
{
  int api = cliq_api_from_name(api_name);
  if (api < 0)
    return cliq_fail(err, EINVAL, "limit.%s: unknown API",
                   api_name ? api_name : "(null)");
  if (!value)
    return cliq_fail(err, EINVAL, "limit.%s: missing value", api_name);
  const char *p = value;
  while (*p == ' ' || *p == '\t')
    p++;
  char *end;
  errno = 0;
  long n = strtol(p, &end, 10);
  bool ok = end != p && errno == 0 && n >= 1 && n <= 1000000;
  double seconds = 0;
  if (ok) {
    p = end;
    while (*p == ' ' || *p == '\t')
      p++;
    ok = *p == '/';
  }
  if (ok) {
    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    /* strtod would also take "inf", "nan" and hex; only plain decimals make
     * sense here. */
    ok = (*p >= '0' && *p <= '9') || *p == '.';
  }
  if (ok) {
    errno = 0;
    seconds = strtod(p, &end);
    ok = end != p && errno == 0 && isfinite(seconds) && seconds > 0;
    p = end;
    while (*p == ' ' || *p == '\t' || *p == '\n')
      p++;
    ok = ok && *p == '\0';
  }
  if (!ok)
    return cliq_fail(err, EINVAL,
                   "limit.%s = %s: expected N/SECONDS (e.g. 20/60), N >= 1, "
                   "SECONDS > 0",
                   api_name, value);
  int rc = gov_set_limit(g, (enum cliq_api)api, (int)n, seconds);
  if (rc)
    return cliq_fail(err, -rc, "limit.%s: %s", api_name, strerror(-rc));
  if (err)
    memset(err, 0, sizeof(*err));
  return 0;
}

/* ---- acquire -------------------------------------------------------------- */

static int wait_until_mono(gov *g, int64_t mono_us)
{
  return cliq_clock_wait_until(&g->cond, &g->mu, (double)mono_us / 1e6);
}

int gov_acquire_stamped(gov *g, enum cliq_api api, enum cliq_priority prio,
                        double *stamp_out)
{
  if (!g || !cliq_api_info(api) || prio < CLIQ_PRIO_WRITE ||
      prio > CLIQ_PRIO_BACKGROUND)
    return -EINVAL;
  int rc;
  pthread_mutex_lock(&g->mu);
  struct api_state *s = &g->apis[api];
  int64_t deadline = now_mono_us() + (int64_t)llround(g->max_wait_s * 1e6);
  bool told = false;
  s->waiting[prio]++;
  for (;;) {
    if (g->shutdown) {
      rc = -EAGAIN;
      break;
    }
    ledger_lock(g);
    ledger_load(g);
    int64_t now = now_real_us();
    bool kept = g->keep_unanswered && inflight_keep(s, now);
    stamps_prune(s, now);
    int budget = budget_of(g, s);
    int used = (int)s->n;
    int ahead = 0; /* waiters of this governor in the lanes above */
    for (int p = CLIQ_PRIO_WRITE; p < (int)prio; p++)
      ahead += s->waiting[p];
    /* 0 = wake on a broadcast or the periodic re-check only. */
    int64_t free_at = 0;
    bool take = false;
    rc = 1;
    if (s->locked_until > now) {
      if (prio != CLIQ_PRIO_WRITE)
        rc = -EAGAIN;
      else
        free_at = s->locked_until;
    } else if (prio == CLIQ_PRIO_BACKGROUND) {
      if (ahead > 0 || budget - used <= reserve_of(budget))
        rc = -EAGAIN;
      else
        take = true;
    } else if (used < budget) {
      take = ahead == 0;
    } else {
      /* The slot frees when the (used-budget)-th oldest stamp leaves. */
      free_at = s->stamps[used - budget] + s->window_us;
    }
    if (take) {
      rc = stamps_insert(s, now);
      if (rc == 0) {
        thread_taken[api]++;
        inflight_push(s, now);
        ledger_save(g, false);
        if (stamp_out)
          *stamp_out = (double)now / 1e6;
      }
    } else if (kept) {
      ledger_save(g, false);
    }
    ledger_unlock(g);
    if (rc <= 0)
      break;

    int64_t mono = now_mono_us();
    int64_t wake = mono + GOV_RECHECK_US;
    if (free_at > 0 && mono + (free_at - now) < wake)
      wake = mono + (free_at - now);
    if (prio == CLIQ_PRIO_READ) {
      /* A read fails as soon as it is clear that no slot comes in time. */
      if (mono >= deadline || (free_at > 0 && ahead == 0 &&
                               mono + (free_at - now) > deadline)) {
        rc = -EAGAIN;
        break;
      }
      if (wake > deadline)
        wake = deadline;
    }
    /* A thread that may not wait hands its request on instead; one whose
     * request was interrupted stops waiting. */
    if (patience_none()) {
      patience_note_refused();
      rc = -EAGAIN;
      break;
    }
    if (patience_cancelled()) {
      rc = -EINTR;
      break;
    }
    if (patience_cancellable() && wake > mono + PATIENCE_RECHECK_US)
      wake = mono + PATIENCE_RECHECK_US;
    if (!told) {
      /* Once per request that waits: the log (and .cliqfs/status through
       * the thread's report slot) says what for and how long. */
      told = true;
      patience_waiting_for(cliq_api_name(api));
      if (s->locked_until > now)
        cliq_log(prio == CLIQ_PRIO_READ ? CLIQ_LOG_NOTE : CLIQ_LOG_INFO,
                 "waiting for %s: locked by Cliq for %.0f s more",
                 cliq_api_name(api), (double)(s->locked_until - now) / 1e6);
      else if (free_at > 0)
        cliq_log(prio == CLIQ_PRIO_READ ? CLIQ_LOG_NOTE : CLIQ_LOG_INFO,
                 "waiting for %s: next request slot in %.0f s",
                 cliq_api_name(api), ceil((double)(free_at - now) / 1e6));
      else
        cliq_log(CLIQ_LOG_INFO, "waiting for %s behind other requests",
                 cliq_api_name(api));
    }
    wait_until_mono(g, wake);
  }
  s->waiting[prio]--;
  if (told)
    patience_waiting_for(NULL);
  /* Lanes below may have been waiting for this one to go. */
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
  return rc;
}

int gov_acquire(gov *g, enum cliq_api api, enum cliq_priority prio)
{
  return gov_acquire_stamped(g, api, prio, NULL);
}

void gov_record(gov *g, enum cliq_api api, long http_status,
                const char *cliq_code)
{
  if (!g || !cliq_api_info(api))
    return;
  bool throttle = cliq_is_throttle(http_status, cliq_code);
  pthread_mutex_lock(&g->mu);
  struct api_state *s = &g->apis[api];
  if (s->ninflight == 0 && !throttle) {
    pthread_mutex_unlock(&g->mu);
    return;
  }
  ledger_lock(g);
  ledger_load(g);
  int64_t now = now_real_us();
  if (s->ninflight > 0) {
    /* The request reached the server at some instant before its answer, not
     * at its stamp: it stays in the window until now + window, so that the
     * request a freed slot lets go can never land in the same server window
     * as this one, however long this one took on its way.  The oldest
     * request in flight takes the move when answers come out of order; the
     * set of stamps ends up the same. */
    int64_t sent = s->inflight[0];
    memmove(s->inflight, s->inflight + 1,
            (s->ninflight - 1) * sizeof(*s->inflight));
    s->ninflight--;
    stamps_remove(s, sent);
    stamps_insert(s, now > sent ? now : sent);
  }
  if (throttle) {
    int64_t until = now + s->lock_us;
    if (until > s->locked_until)
      s->locked_until = until;
  }
  ledger_save(g, throttle);
  ledger_unlock(g);
  /* Waiting reads must give up now (a lock), waiting writes wait longer. */
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
}

/* ---- the gate ------------------------------------------------------------- */

static int gate_acquire(void *ctx, enum cliq_api api, enum cliq_priority prio)
{
  return gov_acquire(ctx, api, prio);
}

static void gate_record(void *ctx, enum cliq_api api, long http_status,
                        const char *cliq_code)
{
  gov_record(ctx, api, http_status, cliq_code);
}

static void gate_explain(void *ctx, enum cliq_api api, char *buf, size_t len)
{
  gov_explain(ctx, api, buf, len);
}

cliq_gate gov_gate(gov *g)
{
  cliq_gate gate = {.acquire = gate_acquire,
                    .record = gate_record,
                    .explain = gate_explain,
                    .ctx = g};
  return gate;
}

/* ---- status --------------------------------------------------------------- */

void gov_status(gov *g, enum cliq_api api, gov_api_status *out)
{
  memset(out, 0, sizeof(*out));
  if (!g || !cliq_api_info(api))
    return;
  pthread_mutex_lock(&g->mu);
  ledger_load(g);
  struct api_state *s = &g->apis[api];
  int64_t now = now_real_us();
  stamps_prune(s, now);
  out->limit = s->limit;
  out->window_s = (double)s->window_us / 1e6;
  out->used = (int)s->n;
  out->locked_until = s->locked_until > now ? (double)s->locked_until / 1e6 : 0;
  out->waiting = 0;
  for (int p = 0; p < CLIQ_PRIO_COUNT; p++)
    out->waiting += s->waiting[p];
  pthread_mutex_unlock(&g->mu);
}

void gov_explain(gov *g, enum cliq_api api, char *buf, size_t len)
{
  gov_api_status st;
  gov_status(g, api, &st);
  const char *name = cliq_api_name(api);
  double now = (double)now_real_us() / 1e6;
  if (st.locked_until > now) {
    time_t t = (time_t)st.locked_until;
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&t, &tm))
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(buf, len, "Cliq locked %s until %s (%.0f s left)", name, when,
             st.locked_until - now);
  } else {
    snprintf(buf, len,
             "our rate budget for %s is spent (%d of %d requests in %.0f s)",
             name, st.used, st.limit, st.window_s);
  }
}

double gov_pressure(gov *g, enum cliq_api api)
{
  if (!g || !cliq_api_info(api))
    return 0;
  pthread_mutex_lock(&g->mu);
  int64_t now = now_real_us();
  ledger_load_recent(g, now);
  struct api_state *s = &g->apis[api];
  stamps_prune(s, now);
  double pressure = 1;
  if (s->locked_until <= now) {
    pressure = (double)s->n / budget_of(g, s);
    if (pressure > 1)
      pressure = 1;
  }
  pthread_mutex_unlock(&g->mu);
  return pressure;
}

void gov_background_view(gov *g, enum cliq_api api, gov_background *out)
{
  memset(out, 0, sizeof *out);
  if (!g || !cliq_api_info(api))
    return;
  pthread_mutex_lock(&g->mu);
  int64_t now = now_real_us();
  ledger_load_recent(g, now);
  struct api_state *s = &g->apis[api];
  stamps_prune(s, now);
  int budget = budget_of(g, s);
  out->budget = budget;
  out->used = (int)s->n;
  out->window_s = (double)s->window_us / 1e6;
  if (s->locked_until > now)
    out->locked_until = (double)s->locked_until / 1e6;
  else if (s->waiting[CLIQ_PRIO_WRITE] == 0 && s->waiting[CLIQ_PRIO_READ] == 0) {
    int spare = budget - (int)s->n - reserve_of(budget);
    out->spare = spare > 0 ? spare : 0;
  }
  pthread_mutex_unlock(&g->mu);
}

uint64_t gov_thread_taken(enum cliq_api api)
{
  return (unsigned)api < CLIQ_API_COUNT ? thread_taken[api] : 0;
}

int gov_lane_per_window(gov *g, enum cliq_api api, enum cliq_priority prio,
                        double *window_s)
{
  if (!g || !cliq_api_info(api)) {
    *window_s = 0;
    return 0;
  }
  pthread_mutex_lock(&g->mu);
  struct api_state *s = &g->apis[api];
  int budget = budget_of(g, s);
  *window_s = (double)s->window_us / 1e6;
  pthread_mutex_unlock(&g->mu);
  int n = budget;
  if (prio == CLIQ_PRIO_BACKGROUND)
    n = budget - reserve_of(budget);
  return n > 0 ? n : 0;
}
