/* cache/governor.c: the rate governor (governor.h): budgets, lanes and
 * locks, over the ledger they share (gov_ledger.c). */
#include "cache/governor_i.h"
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
#include <time.h>
#include <unistd.h>

#include "cache/statefile.h"

/* Slots the calling thread has taken, per API (gov_thread_taken). */
static __thread uint64_t thread_taken[CLIQ_API_COUNT];

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

/* Slots one request of a user may need at once (a log's pages), beyond what
 * the user took in a recent window. */
#define USER_BURST 2

/* Notes a slot taken by a lane above background (mutex held). */
static void user_note(struct api_state *s, int64_t now)
{
  size_t k = 0;
  while (k < s->nuser && s->user[k] <= now - 2 * s->window_us)
    k++;
  if (k) {
    memmove(s->user, s->user + k, (s->nuser - k) * sizeof *s->user);
    s->nuser -= k;
  }
  if (s->nuser == s->capuser) {
    size_t cap = s->capuser ? s->capuser * 2 : 16;
    int64_t *p = realloc(s->user, cap * sizeof *p);
    if (!p)
      return; /* background then sees less demand: the static reserve holds */
    s->user = p;
    s->capuser = cap;
  }
  s->user[s->nuser++] = now;
}

/* Slots a BACKGROUND acquire may take now (0 or less: none).  Two bounds:
 *  - the static reserve: more than reserve_of(budget) slots stay free;
 *  - the user's demand: what background and others hold, plus the most this
 *    governor's lanes above took in either of the last two windows, plus a
 *    burst, fits the budget.  A reader whose requests just left the window
 *    is expected back: without this, background fills the gap, and the
 *    reader's next burst meets a full window and waits.
 * (mutex held, stamps pruned) */
static int background_room(const gov *g, const struct api_state *s,
                           int64_t now)
{
  int budget = budget_of(g, s);
  int used = (int)s->n;
  int room = budget - used - reserve_of(budget);
  int recent = 0, before = 0;
  for (size_t i = 0; i < s->nuser; i++) {
    if (s->user[i] > now - s->window_us)
      recent++;
    else if (s->user[i] > now - 2 * s->window_us)
      before++;
  }
  int peak = recent > before ? recent : before;
  int others = used - recent;
  int for_user = budget - others - peak - USER_BURST;
  return for_user < room ? for_user : room;
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
    free(g->apis[i].user);
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
    int64_t now = gov_now_real_us();
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
      if (ahead > 0 || background_room(g, s, now) < 1)
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
        if (prio != CLIQ_PRIO_BACKGROUND)
          user_note(s, now);
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
  int64_t now = gov_now_real_us();
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
  ledger_load_shared(g);
  struct api_state *s = &g->apis[api];
  int64_t now = gov_now_real_us();
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
  double now = (double)gov_now_real_us() / 1e6;
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
  int64_t now = gov_now_real_us();
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
  int64_t now = gov_now_real_us();
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
    int spare = background_room(g, s, now);
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
