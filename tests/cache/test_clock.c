/* Unit tests of the one clock (api/clock.c) and of the modules that read it:
 * with a fake source installed, a tcache record ages and a rate window
 * passes in fake seconds, with no real waiting. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/clock.h"
#include "cache/governor.h"
#include "cache/tcache.h"

/* ---- a fake clock: time moves only when told ------------------------------ */

struct fake_time {
  pthread_mutex_t mu;
  double real, mono;
  double slept;          /* total fake seconds asked of sleep */
};

static struct fake_time ft = { .mu = PTHREAD_MUTEX_INITIALIZER };

static double fake_real(void *ctx)
{
  struct fake_time *f = ctx;
  pthread_mutex_lock(&f->mu);
  double t = f->real;
  pthread_mutex_unlock(&f->mu);
  return t;
}

static double fake_mono(void *ctx)
{
  struct fake_time *f = ctx;
  pthread_mutex_lock(&f->mu);
  double t = f->mono;
  pthread_mutex_unlock(&f->mu);
  return t;
}

static void fake_advance(struct fake_time *f, double s)
{
  pthread_mutex_lock(&f->mu);
  f->real += s;
  f->mono += s;
  pthread_mutex_unlock(&f->mu);
}

/* A fake sleep passes the fake time at once. */
static void fake_sleep(void *ctx, double s)
{
  struct fake_time *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->slept += s;
  pthread_mutex_unlock(&f->mu);
  fake_advance(f, s);
}

static int install_fake(void **state)
{
  (void)state;
  ft.real = 2000000000.0;     /* 2033-05-18 */
  ft.mono = 100.0;
  ft.slept = 0;
  cliq_clock_source src = { fake_real, fake_mono, fake_sleep, &ft };
  cliq_clock_install(&src);
  return 0;
}

static int remove_fake(void **state)
{
  (void)state;
  cliq_clock_install(NULL);
  return 0;
}

static double real_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the clock itself ------------------------------------------------------ */

static void test_fake_source_is_read(void **state)
{
  (void)state;
  assert_true(cliq_clock_real() == 2000000000.0);
  assert_true(cliq_clock_mono() == 100.0);
  double t0 = real_mono();
  cliq_clock_sleep(3600);
  assert_true(real_mono() - t0 < 1.0);          /* no real hour went by */
  assert_true(cliq_clock_mono() == 3700.0);
  assert_true(ft.slept == 3600.0);
}

static void test_system_source_after_removal(void **state)
{
  (void)state;
  cliq_clock_install(NULL);
  double now = (double)time(NULL);
  assert_true(cliq_clock_real() >= now - 1 && cliq_clock_real() <= now + 2);
  double m0 = cliq_clock_mono();
  cliq_clock_sleep(0.02);
  assert_true(cliq_clock_mono() - m0 >= 0.019);
}

static void test_wait_until_ends_at_the_fake_deadline(void **state)
{
  (void)state;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond;
  assert_int_equal(cliq_clock_cond_init(&cond), 0);
  pthread_mutex_lock(&mu);
  /* Not yet: a slice of real time passes, not the fake deadline. */
  double deadline = cliq_clock_mono() + 5;
  assert_int_equal(cliq_clock_wait_until(&cond, &mu, deadline), 0);
  fake_advance(&ft, 5);
  assert_int_equal(cliq_clock_wait_until(&cond, &mu, deadline), ETIMEDOUT);
  pthread_mutex_unlock(&mu);
  pthread_cond_destroy(&cond);
}

/* ---- the tcache ages in fake time ----------------------------------------------- */

/* A memory-only cache (no time_scale) holding "k" for 60 s. */
static tcache *cache_holding_k(void)
{
  tcache_options o = { .time_scale = 1 };
  cliq_error err;
  tcache *c = tcache_new(&o, &err);
  assert_non_null(c);
  json_t *v = json_pack("{s:i}", "n", 1);
  tcache_put(c, "k", v, 60);
  json_decref(v);
  return c;
}

static void test_tcache_record_ages_in_fake_time(void **state)
{
  (void)state;
  tcache *c = cache_holding_k();
  double age = -1;
  assert_int_equal(tcache_get(c, "k", NULL, &age), TCACHE_FRESH);
  fake_advance(&ft, 59);
  assert_int_equal(tcache_get(c, "k", NULL, &age), TCACHE_FRESH);
  assert_true(age >= 58.9 && age <= 59.1);
  fake_advance(&ft, 2);
  assert_int_equal(tcache_get(c, "k", NULL, &age), TCACHE_STALE);
  assert_true(age >= 60.9 && age <= 61.1);
  tcache_free(c);
}

static int fetch_count(void *ctx, const char *key, json_t **out,
                       cliq_error *err)
{
  (void)key;
  (void)err;
  int *n = ctx;
  (*n)++;
  *out = json_pack("{s:i}", "n", 100 + *n);
  return 0;
}

/* Another process sharing the folder may store a record just after this one
 * read the clock: its age is then negative.  max_age 0 fetches all the
 * same (it would otherwise be taken as fresh and nothing fetched). */
static void test_tcache_max_age_zero_fetches_a_record_from_the_future(void **state)
{
  (void)state;
  tcache *c = cache_holding_k();
  pthread_mutex_lock(&ft.mu);
  ft.real -= 1;                        /* the record is a second ahead */
  pthread_mutex_unlock(&ft.mu);
  int fetches = 0;
  json_t *got = NULL;
  cliq_error err;
  assert_int_equal(tcache_fetch_younger(c, "k", 0, 60, fetch_count, &fetches,
                                        &got, &err), 0);
  assert_int_equal(fetches, 1);
  assert_int_equal(json_integer_value(json_object_get(got, "n")), 101);
  json_decref(got);
  /* A positive max_age takes it as young. */
  assert_int_equal(tcache_fetch_younger(c, "k", 5, 60, fetch_count, &fetches,
                                        &got, &err), 0);
  assert_int_equal(fetches, 1);
  json_decref(got);
  tcache_free(c);
}

/* ---- the governor's window passes in fake time ---------------------------------- */

struct acquirer {
  gov *g;
  int rc;
  double stamp;
};

static void *acquire_main(void *arg)
{
  struct acquirer *a = arg;
  a->rc = gov_acquire_stamped(a->g, CLIQ_API_CHATS_MESSAGES, CLIQ_PRIO_WRITE,
                              &a->stamp);
  return NULL;
}

static void test_governor_window_passes_in_fake_time(void **state)
{
  (void)state;
  gov_options o = { .time_scale = 1, .margin = 0, .max_wait_s = 600 };
  gov *g = gov_new(&o, NULL);
  assert_non_null(g);
  assert_int_equal(gov_set_limit_str(g, "chats.messages", "2/60", NULL), 0);
  double t0 = cliq_clock_real();
  double s1 = 0, s2 = 0;
  assert_int_equal(gov_acquire_stamped(g, CLIQ_API_CHATS_MESSAGES,
                                       CLIQ_PRIO_WRITE, &s1), 0);
  assert_int_equal(gov_acquire_stamped(g, CLIQ_API_CHATS_MESSAGES,
                                       CLIQ_PRIO_WRITE, &s2), 0);
  assert_true(s1 - t0 < 0.001 && s2 - t0 < 0.001);

  /* The third waits for the window: it goes when the fake minute is over,
   * however little real time passed. */
  struct acquirer a = { .g = g, .rc = 1 };
  pthread_t tid;
  double r0 = real_mono();
  assert_int_equal(pthread_create(&tid, NULL, acquire_main, &a), 0);
  for (int i = 0; i < 6; i++) {
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    fake_advance(&ft, 10);              /* 60 fake seconds in all */
  }
  fake_advance(&ft, 1);
  pthread_join(tid, NULL);
  assert_int_equal(a.rc, 0);
  assert_true(a.stamp - t0 >= 60.0);
  assert_true(real_mono() - r0 < 30.0);
  gov_free(g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_fake_source_is_read, install_fake,
                                    remove_fake),
    cmocka_unit_test_setup_teardown(test_system_source_after_removal,
                                    install_fake, remove_fake),
    cmocka_unit_test_setup_teardown(test_wait_until_ends_at_the_fake_deadline,
                                    install_fake, remove_fake),
    cmocka_unit_test_setup_teardown(test_tcache_record_ages_in_fake_time,
                                    install_fake, remove_fake),
    cmocka_unit_test_setup_teardown(
        test_tcache_max_age_zero_fetches_a_record_from_the_future,
        install_fake, remove_fake),
    cmocka_unit_test_setup_teardown(test_governor_window_passes_in_fake_time,
                                    install_fake, remove_fake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
