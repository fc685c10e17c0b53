/* Unit tests for cache/governor.  Windows are compressed with time_scale;
 * every check of the budget uses the stamps the governor recorded, so that
 * the tests assert what was decided and never how fast. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "cache/governor.h"
#include "cache/governor_i.h"
#include "api/clock.h"
#include "cache/statefile.h"
#include "testutil.h"

#define API CLIQ_API_CHATS_MESSAGES

static int64_t to_us(double seconds)
{
  return (int64_t)llround(seconds * 1e6);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The sliding-window property: for every stamp t, at most `budget` stamps lie
 * in (t - window, t]. */
static void assert_window(int64_t *stamps, size_t n, int64_t window_us,
                          int budget)
{
  qsort(stamps, n, sizeof(*stamps), cmp_i64);
  for (size_t k = 0; k < n; k++) {
    int count = 0;
    for (size_t j = 0; j < n; j++)
      if (stamps[j] > stamps[k] - window_us && stamps[j] <= stamps[k])
        count++;
    if (count > budget)
      fail_msg("%d requests within one window ending at stamp %zu (budget %d)",
               count, k, budget);
  }
}

static int64_t window_of(gov *g)
{
  gov_api_status st;
  gov_status(g, API, &st);
  return to_us(st.window_s);
}

/* Polls cond() until it holds or `seconds` pass. */
static bool wait_for(bool (*cond)(void *), void *arg, double seconds)
{
  double end = tu_now_mono() + seconds;
  while (!cond(arg)) {
    if (tu_now_mono() > end)
      return false;
    tu_sleep(0.005);
  }
  return true;
}

static int setup_dir(void **state)
{
  return tu_setup_dir(state, "gov");
}

static int teardown_dir(void **state)
{
  return tu_teardown_dir(state);
}

/* ---- many threads hammering ------------------------------------------- */

struct hammer {
  gov *g;
  enum cliq_priority prio;
  int per_thread;
  pthread_mutex_t mu;
  int64_t stamps[512];
  size_t n;
  int failures;
};

static void *hammer_thread(void *arg)
{
  struct hammer *h = arg;
  for (int i = 0; i < h->per_thread; i++) {
    double stamp = 0;
    int rc = gov_acquire_stamped(h->g, API, h->prio, &stamp);
    pthread_mutex_lock(&h->mu);
    if (rc == 0 && h->n < 512)
      h->stamps[h->n++] = to_us(stamp);
    else
      h->failures++;
    pthread_mutex_unlock(&h->mu);
  }
  return NULL;
}

static void run_hammer(struct hammer *h, int threads)
{
  pthread_t tid[16];
  for (int i = 0; i < threads; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, hammer_thread, h), 0);
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
}

static void test_budget_never_exceeded(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 200, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit_str(g, "chats.messages", "10/60", NULL), 0);
  struct hammer h = {.g = g, .prio = CLIQ_PRIO_WRITE, .per_thread = 6};
  pthread_mutex_init(&h.mu, NULL);
  run_hammer(&h, 8);
  /* Writes wait as long as needed: every one got through. */
  assert_int_equal(h.failures, 0);
  assert_int_equal(h.n, 48);
  assert_window(h.stamps, h.n, window_of(g), 9);
  /* A window is full once: the first nine went at once, the tenth waited. */
  assert_true(h.stamps[9] - h.stamps[0] >= window_of(g));

  /* Reads that may wait long enough behave the same. */
  h.n = 0;
  h.prio = CLIQ_PRIO_READ;
  h.per_thread = 4;
  run_hammer(&h, 6);
  assert_int_equal(h.failures, 0);
  assert_int_equal(h.n, 24);
  assert_window(h.stamps, h.n, window_of(g), 9);
  pthread_mutex_destroy(&h.mu);
  gov_free(g);
}

/* ---- lanes ------------------------------------------------------------- */

static void test_background_keeps_a_reserve(void **state)
{
  (void)state;
  /* Real time: nothing leaves the 60 s window during the test. */
  gov_options o = {.time_scale = 1, .margin = 1, .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 12, 60), 0);
  /* Budget 11, reserve max(2, 25%) = 3: background stops at 8 used. */
  int granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_BACKGROUND) == 0)
    granted++;
  assert_int_equal(granted, 8);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_BACKGROUND), -EAGAIN);
  /* Reads and writes still find their room. */
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_WRITE), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 11);
  assert_int_equal(st.limit, 12);
  /* The budget is spent: a read that cannot wait fails, nothing is taken. */
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
  gov_status(g, API, &st);
  assert_int_equal(st.used, 11);
  assert_true(gov_pressure(g, API) >= 1.0);
  /* Other APIs have their own budgets. */
  assert_int_equal(gov_acquire(g, CLIQ_API_CHANNELS_LIST, CLIQ_PRIO_BACKGROUND), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_BACKGROUND), -EAGAIN);
  gov_free(g);
}

/* A clock the test moves (cliq_clock_install). */
static double fake_now = 1.7e9;
static double fake_real(void *ctx)
{
  (void)ctx;
  return fake_now;
}
static double fake_mono(void *ctx)
{
  (void)ctx;
  return fake_now - 1.7e9;
}
static void fake_sleep(void *ctx, double seconds)
{
  (void)ctx;
  if (seconds > 0)
    fake_now += seconds;
}

/* Background leaves room for what a reader took in either of the last two
 * windows: once the reader's requests have left the window, background
 * does not fill the window up to its static reserve, or the reader's next
 * burst would meet a full one and wait. */
static void test_background_leaves_room_for_the_reader(void **state)
{
  (void)state;
  cliq_clock_source src = {.real = fake_real, .mono = fake_mono,
                           .sleep = fake_sleep};
  cliq_clock_install(&src);
  gov_options o = {.time_scale = 1, .margin = -1, .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 15, 60), 0);
  for (int i = 0; i < 6; i++)
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  /* The reader's 6 are in the window: the static reserve (4) binds first. */
  int granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_BACKGROUND) == 0)
    granted++;
  assert_int_equal(granted, 15 - 6 - 4);
  /* A window later the window is empty, but the reader took 6 in the last
   * one: background keeps 6 + a burst of 2 free (7 of 15, not 11). */
  fake_now += 61;
  gov_background v;
  gov_background_view(g, API, &v);
  assert_int_equal(v.used, 0);
  assert_int_equal(v.spare, 7);
  granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_BACKGROUND) == 0)
    granted++;
  assert_int_equal(granted, 7);
  /* The reader comes back for 6 and finds them, with the burst to spare. */
  for (int i = 0; i < 6; i++)
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 13);
  /* Two quiet windows later the reader's demand is forgotten. */
  fake_now += 121;
  granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_BACKGROUND) == 0)
    granted++;
  assert_int_equal(granted, 11);
  gov_free(g);
  cliq_clock_install(NULL);
}

/* What each lane lets through in a window: reads and writes the budget,
 * background the budget less its reserve (the refresher paces its polls
 * with it). */
static void test_lane_per_window(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 2, .margin = -1, .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 12, 60), 0);
  double window_s = 0;
  assert_int_equal(gov_lane_per_window(g, API, CLIQ_PRIO_BACKGROUND, &window_s), 9);
  assert_true(window_s == 30);
  assert_int_equal(gov_lane_per_window(g, API, CLIQ_PRIO_READ, &window_s), 12);
  gov_background view;
  gov_background_view(g, API, &view);
  assert_int_equal(view.spare, 9);
  assert_int_equal(view.budget, 12);
  assert_true(view.window_s == 30);
  assert_true(view.locked_until == 0);
  uint64_t taken0 = gov_thread_taken(API);
  int granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_BACKGROUND) == 0)
    granted++;
  assert_int_equal(granted, 9);
  /* What this thread took is counted (sync keeps to its share with it). */
  assert_int_equal(gov_thread_taken(API) - taken0, 9);
  gov_background_view(g, API, &view);
  assert_int_equal(view.spare, 0);
  /* A throttle answer locks: no spare, the lock's end told. */
  gov_record(g, API, 429, NULL);
  gov_background_view(g, API, &view);
  assert_int_equal(view.spare, 0);
  assert_true(view.locked_until > 0);
  gov_free(g);
}

static void test_read_times_out_when_no_slot_in_time(void **state)
{
  (void)state;
  /* Window 2 s, max_wait 0.2 s: the next slot comes too late. */
  gov_options o = {.time_scale = 30, .margin = 1, .max_wait_s = 0.2};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 3, 60), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 2);
  assert_int_equal(st.waiting, 0);
  gov_free(g);
}

static void test_read_waits_when_slot_comes_in_time(void **state)
{
  (void)state;
  /* Window 0.3 s, max_wait 30 s. */
  gov_options o = {.time_scale = 200, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 2, 60), 0);
  double first = 0, second = 0;
  assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_READ, &first), 0);
  assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_READ, &second), 0);
  assert_true(to_us(second) - to_us(first) >= window_of(g));
  gov_free(g);
}

struct waiter {
  gov *g;
  enum cliq_priority prio;
  int rc;
  double stamp;
  bool done;
  pthread_mutex_t mu;
};

static void *waiter_thread(void *arg)
{
  struct waiter *w = arg;
  double stamp = 0;
  int rc = gov_acquire_stamped(w->g, API, w->prio, &stamp);
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->stamp = stamp;
  w->done = true;
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static bool waiter_done(void *arg)
{
  struct waiter *w = arg;
  pthread_mutex_lock(&w->mu);
  bool done = w->done;
  pthread_mutex_unlock(&w->mu);
  return done;
}

static bool one_waiting(void *arg)
{
  gov_api_status st;
  gov_status(arg, API, &st);
  return st.waiting == 1;
}

/* A write waiting for a slot goes before a read that waits too; the read,
 * whose patience ends before the slot after that, then fails. */
static void test_write_goes_before_waiting_read(void **state)
{
  (void)state;
  /* Window 2 s; the read may wait 1.5 windows. */
  gov_options o = {.time_scale = 30, .margin = 1, .max_wait_s = 3};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 2, 60), 0); /* budget 1 */
  double first = 0;
  assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_WRITE, &first), 0);

  struct waiter w = {.g = g, .prio = CLIQ_PRIO_WRITE};
  pthread_mutex_init(&w.mu, NULL);
  pthread_t wt;
  assert_int_equal(pthread_create(&wt, NULL, waiter_thread, &w), 0);
  assert_true(wait_for(one_waiting, g, 30));

  int read_rc = gov_acquire(g, API, CLIQ_PRIO_READ);
  pthread_join(wt, NULL);
  assert_int_equal(w.rc, 0);
  assert_true(to_us(w.stamp) - to_us(first) >= window_of(g));
  if (read_rc == 0)
    fail_msg("the read took a slot although a write was waiting");
  assert_int_equal(read_rc, -EAGAIN);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 1);
  pthread_mutex_destroy(&w.mu);
  gov_free(g);
}

static void test_background_yields_to_waiters(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 60, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 2, 60), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_WRITE), 0);
  struct waiter w = {.g = g, .prio = CLIQ_PRIO_READ};
  pthread_mutex_init(&w.mu, NULL);
  pthread_t wt;
  assert_int_equal(pthread_create(&wt, NULL, waiter_thread, &w), 0);
  assert_true(wait_for(one_waiting, g, 30));
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_BACKGROUND), -EAGAIN);
  pthread_join(wt, NULL);
  assert_int_equal(w.rc, 0);
  pthread_mutex_destroy(&w.mu);
  gov_free(g);
}

static void test_shutdown_wakes_writers(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 1, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 2, 3600), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_WRITE), 0);
  struct waiter w = {.g = g, .prio = CLIQ_PRIO_WRITE};
  pthread_mutex_init(&w.mu, NULL);
  pthread_t wt;
  assert_int_equal(pthread_create(&wt, NULL, waiter_thread, &w), 0);
  assert_true(wait_for(one_waiting, g, 30));
  assert_false(waiter_done(&w));
  gov_shutdown(g);
  pthread_join(wt, NULL);
  assert_int_equal(w.rc, -EAGAIN);
  assert_int_equal(gov_acquire(g, CLIQ_API_CHANNELS_LIST, CLIQ_PRIO_WRITE),
                   -EAGAIN);
  pthread_mutex_destroy(&w.mu);
  gov_free(g);
}

/* ---- locks ------------------------------------------------------------- */

static bool unlocked(void *arg)
{
  gov_api_status st;
  gov_status(arg, API, &st);
  return st.locked_until == 0;
}

static void test_lock_on_throttle(void **state)
{
  (void)state;
  /* chats.messages locks for 600 s; scaled 1000 -> 0.6 s. */
  gov_options o = {.time_scale = 1000, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);

  /* Answers that are not throttles lock nothing. */
  gov_record(g, API, 200, NULL);
  gov_record(g, API, 400, "invalid_param");
  gov_record(g, API, 500, "operation_failed");
  gov_record(g, API, 0, NULL);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_true(st.locked_until == 0);
  assert_true(gov_pressure(g, API) < 1.0);

  const struct {
    long status;
    const char *code;
  } throttles[] = {{429, NULL}, {400, "request_limit_exceeded"},
                   {400, "rate_limit_exceeded"}};
  for (size_t i = 0; i < 3; i++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double before = ts.tv_sec + ts.tv_nsec / 1e9;
    gov_record(g, API, throttles[i].status, throttles[i].code);
    gov_status(g, API, &st);
    assert_true(st.locked_until >= before + 0.6 - 0.01);
    tu_assert_near(gov_pressure(g, API), 1.0, 1e-9);
    /* Nothing but a write goes to a locked API, and reads fail at once. */
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_BACKGROUND), -EAGAIN);
    /* Other APIs are not locked. */
    assert_int_equal(gov_acquire(g, CLIQ_API_THREADS_LIST, CLIQ_PRIO_READ), 0);
    /* A write waits out the lock and then goes. */
    double locked_until = st.locked_until;
    double stamp = 0;
    assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_WRITE, &stamp), 0);
    assert_true(stamp >= locked_until - 1e-6);
    gov_status(g, API, &st);
    assert_true(st.locked_until == 0);
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  }

  /* Reads released by the end of a lock, observed by polling status. */
  gov_record(g, API, 429, NULL);
  assert_true(wait_for(unlocked, g, 60));
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  gov_free(g);
}

/* A request stays in the window until one window after its answer: the
 * server may have seen it as late as that. */
static void test_answer_moves_the_stamp(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 60, .margin = 1, .max_wait_s = 30};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit_str(g, "chats.messages", "4/60", NULL), 0);
  double sent[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_READ, &sent[i]), 0);
  tu_sleep(0.3);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double answered = ts.tv_sec + ts.tv_nsec / 1e9;
  /* Two answers and a request that got none (status 0): all three moved. */
  gov_record(g, API, 200, NULL);
  gov_record(g, API, 404, "chat_not_found");
  gov_record(g, API, 0, NULL);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 3);
  assert_true(st.locked_until == 0);
  double next = 0;
  assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_READ, &next), 0);
  double window = (double)window_of(g) / 1e6;
  if (next < answered + window - 1e-6)
    fail_msg("the slot came back %.3f s after the first send, before one window "
             "(%.3f s) after the answers (%.3f s after it)",
             next - sent[0], window, answered - sent[0]);
  /* An answer with nothing in flight changes nothing. */
  gov_record(g, API, 200, NULL);
  gov_record(g, API, 200, NULL);
  gov_status(g, API, &st);
  assert_true(st.used <= 4);
  gov_free(g);
}

/* With keep_unanswered, a request that has no answer yet keeps its slot
 * however long it takes (the server may still receive it); its answer frees
 * the slot one window later.  Without it, the slot frees one window after
 * the stamp. */
static void test_unanswered_keeps_counting(void **state)
{
  (void)state;
  for (int keep = 0; keep <= 1; keep++) {
    gov_options o = {.time_scale = 200, .margin = -1, .max_wait_s = 0,
                     .keep_unanswered = keep};
    gov *g = gov_new(&o, NULL);
    assert_non_null(g);
    assert_int_equal(gov_set_limit_str(g, "chats.messages", "1/60", NULL), 0);
    double window = (double)window_of(g) / 1e6;     /* 0.3 s */
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
    tu_sleep(window * 1.7);
    int later = gov_acquire(g, API, CLIQ_PRIO_READ);
    if (!keep) {
      assert_int_equal(later, 0);
      gov_free(g);
      continue;
    }
    assert_int_equal(later, -EAGAIN);
    tu_sleep(window * 1.7);
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
    gov_record(g, API, 200, NULL);
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
    tu_sleep(window * 1.2);
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
    gov_free(g);
  }
}

static void test_gate_routes_to_governor(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 1, .margin = 1, .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  cliq_gate gate = gov_gate(g);
  assert_ptr_equal(gate.ctx, g);
  assert_int_equal(gate.acquire(gate.ctx, API, CLIQ_PRIO_READ), 0);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 1);
  gate.record(gate.ctx, API, 429, NULL);
  assert_int_equal(gate.acquire(gate.ctx, API, CLIQ_PRIO_READ), -EAGAIN);
  gov_free(g);
}

/* ---- persistence and sharing -------------------------------------------- */

static void test_window_and_lock_survive_restart(void **state)
{
  struct tu_dir_state *s = *state;
  gov_options o = {.state_dir = s->dir, .time_scale = 1, .margin = 1,
                   .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  for (int i = 0; i < 14; i++)
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
  gov_record(g, CLIQ_API_THREADS_GET, 429, NULL);
  gov_free(g);

  g = gov_new(&o, NULL);
  assert_non_null(g);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 14);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_BACKGROUND), -EAGAIN);
  gov_status(g, CLIQ_API_THREADS_GET, &st);
  assert_true(st.locked_until > 0);
  assert_int_equal(gov_acquire(g, CLIQ_API_THREADS_GET, CLIQ_PRIO_READ), -EAGAIN);
  gov_free(g);

  char *ledger = NULL;
  assert_true(asprintf(&ledger, "%s/ledger", s->dir) > 0);
  struct stat sb;
  assert_int_equal(stat(ledger, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_int_equal(tu_count_files(s->dir, statefile_is_temp_name), 0);
  free(ledger);
}

static bool nothing_used(void *arg)
{
  gov_api_status st;
  gov_status(arg, API, &st);
  return st.used == 0;
}

static void test_ledger_keeps_only_the_window(void **state)
{
  struct tu_dir_state *s = *state;
  /* Window 0.2 s. */
  gov_options o = {.state_dir = s->dir, .time_scale = 300, .margin = 1,
                   .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  for (int i = 0; i < 10; i++)
    assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_WRITE), 0);
  assert_true(wait_for(nothing_used, g, 60));
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_WRITE), 0);

  char *ledger = NULL, *buf = NULL;
  size_t len = 0;
  assert_true(asprintf(&ledger, "%s/ledger", s->dir) > 0);
  assert_int_equal(statefile_read(ledger, &buf, &len), 0);
  json_t *root = json_loads(buf, 0, NULL);
  assert_non_null(root);
  json_t *stamps = json_object_get(
      json_object_get(json_object_get(root, "apis"), "chats.messages"),
      "stamps");
  assert_true(json_is_array(stamps));
  assert_int_equal(json_array_size(stamps), 1);
  json_decref(root);
  free(buf);
  free(ledger);
  gov_free(g);
}

struct shared_run {
  struct hammer *h;
  gov *g;
};

static void *hammer_on(void *arg)
{
  struct shared_run *r = arg;
  for (int i = 0; i < r->h->per_thread; i++) {
    double stamp = 0;
    int rc = gov_acquire_stamped(r->g, API, CLIQ_PRIO_WRITE, &stamp);
    pthread_mutex_lock(&r->h->mu);
    if (rc == 0 && r->h->n < 512)
      r->h->stamps[r->h->n++] = to_us(stamp);
    else
      r->h->failures++;
    pthread_mutex_unlock(&r->h->mu);
  }
  return NULL;
}

/* Two governors on one state dir stand for two mounts of one account. */
static void test_two_governors_share_the_budget(void **state)
{
  struct tu_dir_state *s = *state;
  gov_options o = {.state_dir = s->dir, .time_scale = 150, .margin = 1,
                   .max_wait_s = 30};
  gov *a = gov_new(&o, NULL), *b = gov_new(&o, NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(gov_set_limit(a, API, 6, 60), 0);
  assert_int_equal(gov_set_limit(b, API, 6, 60), 0);
  struct hammer h = {.per_thread = 5};
  pthread_mutex_init(&h.mu, NULL);
  struct shared_run runs[2] = {{&h, a}, {&h, b}};
  pthread_t tid[6];
  for (int i = 0; i < 6; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, hammer_on, &runs[i % 2]), 0);
  for (int i = 0; i < 6; i++)
    pthread_join(tid[i], NULL);
  assert_int_equal(h.failures, 0);
  assert_int_equal(h.n, 30);
  assert_window(h.stamps, h.n, window_of(a), 5);
  pthread_mutex_destroy(&h.mu);
  gov_free(a);
  gov_free(b);
}

/* A governor reads the ledger file again only when another one wrote it
 * since: status reads and requests in between cost no parse. */
static void test_ledger_read_only_when_it_changed(void **state)
{
  struct tu_dir_state *s = *state;
  gov_options o = {.state_dir = s->dir, .time_scale = 1, .max_wait_s = 5};
  gov *a = gov_new(&o, NULL), *b = gov_new(&o, NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(gov_set_limit(a, API, 10, 600), 0);
  assert_int_equal(gov_set_limit(b, API, 10, 600), 0);
  assert_int_equal(gov_acquire(a, API, CLIQ_PRIO_READ), 0);
  uint64_t parses = a->ledger_parses;
  gov_api_status st;
  for (int i = 0; i < 10; i++) {
    gov_status(a, API, &st);
    assert_int_equal(st.used, 1);
  }
  assert_int_equal(gov_acquire(a, API, CLIQ_PRIO_READ), 0);
  assert_int_equal(a->ledger_parses, parses);     /* all its own writes */
  assert_int_equal(gov_acquire(b, API, CLIQ_PRIO_READ), 0);
  gov_status(a, API, &st);
  assert_int_equal(st.used, 3);                   /* b's request is seen */
  assert_int_equal(a->ledger_parses, parses + 1);
  gov_status(a, API, &st);
  assert_int_equal(a->ledger_parses, parses + 1);
  gov_free(a);
  gov_free(b);
}

/* A ledger written by a program that does not count its writes (an older
 * cliqfs) is still read: the file is not what it was. */
static void test_ledger_written_without_the_count_is_read(void **state)
{
  struct tu_dir_state *s = *state;
  gov_options o = {.state_dir = s->dir, .time_scale = 1, .max_wait_s = 5};
  gov *a = gov_new(&o, NULL);
  assert_non_null(a);
  assert_int_equal(gov_set_limit(a, API, 10, 600), 0);
  assert_int_equal(gov_acquire(a, API, CLIQ_PRIO_READ), 0);
  gov_api_status st;
  gov_status(a, API, &st);
  assert_int_equal(st.used, 1);
  char *ledger = NULL, *text = NULL;
  long long now = (long long)llround(cliq_clock_real() * 1e6);
  assert_true(asprintf(&ledger, "%s/ledger", s->dir) > 0);
  assert_true(asprintf(&text,
                       "{\"version\":1,\"apis\":{\"%s\":{\"stamps\":[%lld,%lld,%lld],"
                       "\"locked_until\":0}}}",
                       cliq_api_name(API), now - 2000, now - 1000, now) > 0);
  assert_int_equal(statefile_write_atomic(ledger, text, strlen(text)), 0);
  gov_status(a, API, &st);
  assert_int_equal(st.used, 3);
  free(text);
  free(ledger);
  gov_free(a);
}

/* The same with a real second process. */
static void test_forked_process_shares_the_budget(void **state)
{
  struct tu_dir_state *s = *state;
  gov_options o = {.state_dir = s->dir, .time_scale = 150, .margin = 1,
                   .max_wait_s = 30};
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  const int per_process = 12;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    gov *g = gov_new(&o, NULL);
    if (!g || gov_set_limit(g, API, 6, 60) != 0)
      _exit(2);
    for (int i = 0; i < per_process; i++) {
      double stamp = 0;
      if (gov_acquire_stamped(g, API, CLIQ_PRIO_WRITE, &stamp) != 0)
        _exit(3);
      int64_t us = to_us(stamp);
      if (write(fds[1], &us, sizeof(us)) != sizeof(us))
        _exit(4);
    }
    gov_free(g);
    _exit(0);
  }
  close(fds[1]);
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit(g, API, 6, 60), 0);
  int64_t stamps[64];
  size_t n = 0;
  for (int i = 0; i < per_process; i++) {
    double stamp = 0;
    assert_int_equal(gov_acquire_stamped(g, API, CLIQ_PRIO_WRITE, &stamp), 0);
    stamps[n++] = to_us(stamp);
  }
  int64_t us;
  while (read(fds[0], &us, sizeof(us)) == sizeof(us) && n < 64)
    stamps[n++] = us;
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(n, 2 * per_process);
  assert_window(stamps, n, window_of(g), 5);
  gov_free(g);
}

/* ---- configuration -------------------------------------------------------- */

static void test_limit_override_parsing(void **state)
{
  (void)state;
  gov_options o = {.time_scale = 2, .margin = -1, .max_wait_s = 0};
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.limit, 15); /* default from api/endpoints.h */
  tu_assert_near(st.window_s, 30.0, 1e-9); /* 60 s / time_scale 2 */

  cliq_error err;
  assert_int_equal(gov_set_limit_str(g, "chats.messages", "10/60", &err), 0);
  assert_int_equal(err.err, 0);
  gov_status(g, API, &st);
  assert_int_equal(st.limit, 10);
  tu_assert_near(st.window_s, 30.0, 1e-9);
  assert_int_equal(gov_set_limit_str(g, "chats.messages", " 7 / 250.5 ", &err), 0);
  gov_status(g, API, &st);
  assert_int_equal(st.limit, 7);
  tu_assert_near(st.window_s, 125.25, 1e-9);

  const char *bad[] = {"", "10", "/60", "0/60", "-1/60", "10/0", "10/-5",
                       "10/abc", "10/60x", "abc/60", "10/inf", "10/nan",
                       "10//60", "1.5/60", "10/60/5", "99999999999999/60"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&err, 0, sizeof(err));
    if (gov_set_limit_str(g, "chats.messages", bad[i], &err) != -EINVAL)
      fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(err.err, EINVAL);
    assert_true(strlen(err.message) > 0);
  }
  assert_int_equal(gov_set_limit_str(g, "chats.nosuch", "10/60", &err), -EINVAL);
  assert_non_null(strstr(err.message, "chats.nosuch"));
  assert_int_equal(gov_set_limit_str(g, "chats.messages", NULL, &err), -EINVAL);
  /* Bad values changed nothing. */
  gov_status(g, API, &st);
  assert_int_equal(st.limit, 7);
  tu_assert_near(st.window_s, 125.25, 1e-9);

  assert_int_equal(gov_set_limit(g, API, 0, 60), -EINVAL);
  assert_int_equal(gov_set_limit(g, API, 5, 0), -EINVAL);
  assert_int_equal(gov_set_limit(g, (enum cliq_api)CLIQ_API_COUNT, 5, 60), -EINVAL);

  /* margin < 0 means none: a limit of 7 allows 7. */
  int granted = 0;
  while (gov_acquire(g, API, CLIQ_PRIO_WRITE) == 0 && granted < 100) {
    granted++;
    if (granted == 7)
      break;
  }
  assert_int_equal(granted, 7);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), -EAGAIN);
  gov_free(g);
}

static void test_bad_state_dir(void **state)
{
  struct tu_dir_state *s = *state;
  char *file = NULL;
  assert_true(asprintf(&file, "%s/plain", s->dir) > 0);
  assert_int_equal(statefile_write_atomic(file, "x", 1), 0);
  gov_options o = {.state_dir = file, .time_scale = 1, .margin = 1};
  cliq_error err;
  gov *g = gov_new(&o, &err);
  assert_null(g);
  assert_int_not_equal(err.err, 0);
  assert_true(strlen(err.message) > 0);
  free(file);

  /* A corrupt ledger is ignored rather than fatal. */
  char *ledger = NULL;
  assert_true(asprintf(&ledger, "%s/ledger", s->dir) > 0);
  assert_int_equal(statefile_write_atomic(ledger, "{not json", 9), 0);
  o.state_dir = s->dir;
  g = gov_new(&o, &err);
  assert_non_null(g);
  assert_int_equal(gov_acquire(g, API, CLIQ_PRIO_READ), 0);
  gov_api_status st;
  gov_status(g, API, &st);
  assert_int_equal(st.used, 1);
  gov_free(g);
  free(ledger);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_budget_never_exceeded),
    cmocka_unit_test(test_background_keeps_a_reserve),
    cmocka_unit_test(test_background_leaves_room_for_the_reader),
    cmocka_unit_test(test_lane_per_window),
    cmocka_unit_test(test_read_times_out_when_no_slot_in_time),
    cmocka_unit_test(test_read_waits_when_slot_comes_in_time),
    cmocka_unit_test(test_write_goes_before_waiting_read),
    cmocka_unit_test(test_background_yields_to_waiters),
    cmocka_unit_test(test_shutdown_wakes_writers),
    cmocka_unit_test(test_lock_on_throttle),
    cmocka_unit_test(test_answer_moves_the_stamp),
    cmocka_unit_test(test_unanswered_keeps_counting),
    cmocka_unit_test(test_gate_routes_to_governor),
    cmocka_unit_test_setup_teardown(test_window_and_lock_survive_restart,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_ledger_read_only_when_it_changed,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_ledger_written_without_the_count_is_read,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_ledger_keeps_only_the_window,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_two_governors_share_the_budget,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_forked_process_shares_the_budget,
                                    setup_dir, teardown_dir),
    cmocka_unit_test(test_limit_override_parsing),
    cmocka_unit_test_setup_teardown(test_bad_state_dir, setup_dir,
                                    teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
