/* Unit tests for cache/tcache. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>
#include <jansson.h>

#include "cache/statefile.h"
#include "api/clock.h"
#include "cache/tcache.h"
#include "testutil.h"

static int setup_dir(void **state)
{
  return tu_setup_dir(state, "tcache");
}

static int teardown_dir(void **state)
{
  return tu_teardown_dir(state);
}

static tcache *new_cache(const char *dir, double scale, size_t max_bytes)
{
  tcache_options o = {.max_bytes = max_bytes, .disk_dir = dir,
                      .time_scale = scale};
  cliq_error err;
  tcache *c = tcache_new(&o, &err);
  assert_non_null(c);
  assert_int_equal(err.err, 0);
  return c;
}

static json_t *value_n(int n)
{
  return json_pack("{s:i, s:s}", "n", n, "pad", "some text to give it weight");
}

static int value_of(json_t *v)
{
  return (int)json_integer_value(json_object_get(v, "n"));
}

/* Polls until key is no longer in state `was` (it ages out). */
static bool wait_leaves(tcache *c, const char *key, tcache_state was,
                        double seconds)
{
  double end = tu_now_mono() + seconds;
  while (tcache_get(c, key, NULL, NULL) == was) {
    if (tu_now_mono() > end)
      return false;
    tu_sleep(0.005);
  }
  return true;
}

static bool wait_not_fresh(tcache *c, const char *key, double seconds)
{
  return wait_leaves(c, key, TCACHE_FRESH, seconds);
}

/* ---- fetch functions used below ------------------------------------------- */

struct fetch_ctl {
  pthread_mutex_t mu;
  int calls;
  int result;          /* 0 or -errno to return */
  int n;               /* value to return */
  double delay_s;
  bool hold;           /* wait in the fetch until released */
  pthread_cond_t released;
};

static int count_fetch(void *ctx, const char *key, json_t **out, cliq_error *err)
{
  (void)key;
  (void)err;
  int *calls = ctx;
  (*calls)++;
  *out = value_n(*calls);
  return 0;
}

static int ctl_fetch(void *ctx, const char *key, json_t **out, cliq_error *err)
{
  struct fetch_ctl *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->calls++;
  int result = f->result, n = f->n;
  double delay = f->delay_s;
  pthread_mutex_unlock(&f->mu);
  if (delay > 0)
    tu_sleep(delay);
  pthread_mutex_lock(&f->mu);
  while (f->hold)
    pthread_cond_wait(&f->released, &f->mu);
  pthread_mutex_unlock(&f->mu);
  if (result) {
    err->err = -result;
    snprintf(err->message, sizeof(err->message), "%s: injected", key);
    err->http_status = 503;
    return result;
  }
  *out = value_n(n);
  return 0;
}

static int ctl_calls(struct fetch_ctl *f)
{
  pthread_mutex_lock(&f->mu);
  int n = f->calls;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static void ctl_init(struct fetch_ctl *f, int n)
{
  memset(f, 0, sizeof(*f));
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->released, NULL);
  f->n = n;
}

static void ctl_destroy(struct fetch_ctl *f)
{
  pthread_cond_destroy(&f->released);
  pthread_mutex_destroy(&f->mu);
}

static void ctl_release(struct fetch_ctl *f)
{
  pthread_mutex_lock(&f->mu);
  f->hold = false;
  pthread_cond_broadcast(&f->released);
  pthread_mutex_unlock(&f->mu);
}

/* ---- basic TTL semantics ---------------------------------------------------- */

/* A clock the test moves (cliq_clock_install): freshness is decided by the
 * test, not by how fast a loaded machine (or valgrind) runs it. */
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

static void test_put_get_fresh_then_stale(void **state)
{
  (void)state;
  cliq_clock_source src = {.real = fake_real, .mono = fake_mono,
                           .sleep = fake_sleep};
  cliq_clock_install(&src);
  /* ttl 60 s at time_scale 600: fresh for 0.1 s. */
  tcache *c = new_cache(NULL, 600, 0);
  json_t *v = NULL;
  double age = -1;
  assert_int_equal(tcache_get(c, "k", &v, &age), TCACHE_MISS);
  assert_null(v);

  json_t *put = value_n(7);
  tcache_put(c, "k", put, 60);
  json_decref(put);
  assert_int_equal(tcache_get(c, "k", &v, &age), TCACHE_FRESH);
  assert_non_null(v);
  assert_int_equal(value_of(v), 7);
  assert_true(age >= 0 && age < 60);
  json_decref(v);

  fake_now += 0.05;
  assert_int_equal(tcache_get(c, "k", NULL, NULL), TCACHE_FRESH);
  fake_now += 0.06;
  assert_int_equal(tcache_get(c, "k", &v, &age), TCACHE_STALE);
  assert_non_null(v);
  assert_int_equal(value_of(v), 7);
  assert_true(age >= 0.1);
  json_decref(v);

  /* A put replaces the value and makes it fresh again. */
  put = value_n(8);
  tcache_put(c, "k", put, 60);
  json_decref(put);
  assert_int_equal(tcache_get(c, "k", &v, NULL), TCACHE_FRESH);
  assert_int_equal(value_of(v), 8);
  json_decref(v);

  tcache_invalidate(c, "k");
  assert_int_equal(tcache_get(c, "k", &v, NULL), TCACHE_MISS);
  assert_null(v);
  tcache_free(c);
  cliq_clock_install(NULL);
}

static void test_negative_entries(void **state)
{
  (void)state;
  tcache *c = new_cache(NULL, 600, 0);
  tcache_put_negative(c, "gone", 60);
  json_t *v = (json_t *)1;
  assert_int_equal(tcache_get(c, "gone", &v, NULL), TCACHE_NEGATIVE);
  assert_null(v);
  /* A fresh negative entry answers without a fetch. */
  int calls = 0;
  cliq_error err;
  assert_int_equal(tcache_fetch(c, "gone", 60, count_fetch, &calls, &v, &err),
                   -ENOENT);
  assert_int_equal(calls, 0);
  assert_int_equal(err.err, ENOENT);
  assert_null(v);
  assert_int_equal(tcache_fetch(c, "gone", 60, NULL, NULL, &v, &err), -EINVAL);
  /* Once it expires it is simply unknown. */
  tcache_put_negative(c, "brief", 60);
  assert_true(wait_leaves(c, "brief", TCACHE_NEGATIVE, 60));
  assert_int_equal(tcache_get(c, "brief", &v, NULL), TCACHE_MISS);
  tcache_free(c);
}

/* ---- fetch ------------------------------------------------------------------ */

static void test_fetch_miss_then_hit(void **state)
{
  (void)state;
  tcache *c = new_cache(NULL, 1, 0);
  struct fetch_ctl f;
  ctl_init(&f, 5);
  json_t *v = NULL;
  cliq_error err;
  assert_int_equal(tcache_fetch(c, "a", 60, ctl_fetch, &f, &v, &err), 0);
  assert_int_equal(err.err, 0);
  assert_int_equal(value_of(v), 5);
  json_decref(v);
  assert_int_equal(tcache_fetch(c, "a", 60, ctl_fetch, &f, &v, &err), 0);
  assert_int_equal(value_of(v), 5);
  json_decref(v);
  assert_int_equal(ctl_calls(&f), 1);

  tcache_stats st;
  tcache_stats_get(c, &st);
  assert_int_equal(st.entries, 1);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  assert_true(st.bytes > 0);
  ctl_destroy(&f);
  tcache_free(c);
}

static void test_stale_served_when_fetch_fails(void **state)
{
  (void)state;
  tcache *c = new_cache(NULL, 600, 0);
  struct fetch_ctl f;
  ctl_init(&f, 1);
  json_t *v = NULL;
  cliq_error err;
  assert_int_equal(tcache_fetch(c, "k", 60, ctl_fetch, &f, &v, &err), 0);
  json_decref(v);
  assert_true(wait_not_fresh(c, "k", 60));

  /* Stale and the fetch fails: the stale value, with the error reported. */
  f.result = -EAGAIN;
  assert_int_equal(tcache_fetch(c, "k", 60, ctl_fetch, &f, &v, &err), 0);
  assert_non_null(v);
  assert_int_equal(value_of(v), 1);
  assert_int_equal(err.err, EAGAIN);
  assert_int_equal(err.http_status, 503);
  json_decref(v);
  assert_int_equal(ctl_calls(&f), 2);
  assert_int_equal(tcache_get(c, "k", NULL, NULL), TCACHE_STALE);

  /* Nothing cached and the fetch fails: the error. */
  v = (json_t *)1;
  assert_int_equal(tcache_fetch(c, "other", 60, ctl_fetch, &f, &v, &err),
                   -EAGAIN);
  assert_null(v);
  assert_int_equal(err.err, EAGAIN);
  assert_int_equal(tcache_get(c, "other", NULL, NULL), TCACHE_MISS);

  /* Stale and the fetch succeeds: the new value. */
  f.result = 0;
  f.n = 2;
  assert_int_equal(tcache_fetch(c, "k", 60, ctl_fetch, &f, &v, &err), 0);
  assert_int_equal(value_of(v), 2);
  assert_int_equal(err.err, 0);
  json_decref(v);

  /* The thing is gone: ENOENT replaces the stale value by a negative entry. */
  assert_true(wait_not_fresh(c, "k", 60));
  f.result = -ENOENT;
  assert_int_equal(tcache_fetch(c, "k", 6000, ctl_fetch, &f, &v, &err), -ENOENT);
  assert_null(v);
  assert_int_equal(tcache_get(c, "k", &v, NULL), TCACHE_NEGATIVE);
  int calls = ctl_calls(&f);
  assert_int_equal(tcache_fetch(c, "k", 6000, ctl_fetch, &f, &v, &err), -ENOENT);
  assert_int_equal(ctl_calls(&f), calls);
  ctl_destroy(&f);
  tcache_free(c);
}

struct fetcher {
  tcache *c;
  struct fetch_ctl *f;
  const char *key;
  int rc;
  int n;
  int err;
};

static void *fetch_thread(void *arg)
{
  struct fetcher *t = arg;
  json_t *v = NULL;
  cliq_error err;
  t->rc = tcache_fetch(t->c, t->key, 600, ctl_fetch, t->f, &v, &err);
  t->n = v ? value_of(v) : -1;
  t->err = err.err;
  json_decref(v);
  return NULL;
}

static bool misses_reach(tcache *c, size_t n, double seconds)
{
  double end = tu_now_mono() + seconds;
  for (;;) {
    tcache_stats st;
    tcache_stats_get(c, &st);
    if (st.misses >= n)
      return true;
    if (tu_now_mono() > end)
      return false;
    tu_sleep(0.005);
  }
}

/* Starts n fetchers while the fetch is held, lets it go once all of them are
 * inside tcache_fetch (each has counted its miss), and joins them. */
static void run_fetchers(tcache *c, struct fetch_ctl *f, struct fetcher *t,
                         int n)
{
  tcache_stats st;
  tcache_stats_get(c, &st);
  size_t misses = st.misses;
  pthread_mutex_lock(&f->mu);
  f->hold = true;
  pthread_mutex_unlock(&f->mu);
  pthread_t tid[16];
  for (int i = 0; i < n; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, fetch_thread, &t[i]), 0);
  bool all_in = misses_reach(c, misses + (size_t)n, 60);
  ctl_release(f);
  for (int i = 0; i < n; i++)
    pthread_join(tid[i], NULL);
  assert_true(all_in);
}

static void test_single_flight(void **state)
{
  (void)state;
  tcache *c = new_cache(NULL, 1, 0);
  struct fetch_ctl f;
  ctl_init(&f, 42);
  f.delay_s = 0.05;
  struct fetcher t[12];
  for (int i = 0; i < 12; i++)
    t[i] = (struct fetcher){.c = c, .f = &f, .key = i < 10 ? "same" : "else"};
  run_fetchers(c, &f, t, 12);
  /* One fetch per key, whatever the number of callers. */
  assert_int_equal(ctl_calls(&f), 2);
  for (int i = 0; i < 12; i++) {
    assert_int_equal(t[i].rc, 0);
    assert_int_equal(t[i].n, 42);
  }
  /* Later callers are served from the cache. */
  for (int i = 0; i < 4; i++)
    t[i] = (struct fetcher){.c = c, .f = &f, .key = "same"};
  for (int i = 0; i < 4; i++)
    fetch_thread(&t[i]);
  assert_int_equal(ctl_calls(&f), 2);

  /* A failing fetch is shared too: every caller gets its error. */
  f.result = -EIO;
  for (int i = 0; i < 8; i++)
    t[i] = (struct fetcher){.c = c, .f = &f, .key = "failing"};
  run_fetchers(c, &f, t, 8);
  assert_int_equal(ctl_calls(&f), 3);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(t[i].rc, -EIO);
    assert_int_equal(t[i].err, EIO);
  }
  ctl_destroy(&f);
  tcache_free(c);
}

/* ---- LRU ------------------------------------------------------------------ */

static void test_lru_eviction_by_bytes(void **state)
{
  (void)state;
  size_t max = 4096;
  tcache *c = new_cache(NULL, 1, max);
  char key[32];
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof(key), "key-%d", i);
    json_t *v = value_n(i);
    tcache_put(c, key, v, 600);
    json_decref(v);
    /* Keep key-0 in use: it must survive while others are evicted. */
    assert_int_equal(tcache_get(c, "key-0", NULL, NULL), TCACHE_FRESH);
    tcache_stats st;
    tcache_stats_get(c, &st);
    assert_true(st.bytes <= max);
  }
  tcache_stats st;
  tcache_stats_get(c, &st);
  assert_true(st.entries > 2);
  assert_true(st.entries < 40);
  assert_int_equal(tcache_get(c, "key-39", NULL, NULL), TCACHE_FRESH);
  assert_int_equal(tcache_get(c, "key-0", NULL, NULL), TCACHE_FRESH);
  assert_int_equal(tcache_get(c, "key-1", NULL, NULL), TCACHE_MISS);

  /* A value larger than the whole budget is served but not kept. */
  json_t *big = json_array();
  for (int i = 0; i < 1000; i++)
    json_array_append_new(big, json_string("0123456789"));
  tcache_put(c, "big", big, 600);
  json_decref(big);
  tcache_stats_get(c, &st);
  assert_true(st.bytes <= max);
  assert_int_equal(tcache_get(c, "big", NULL, NULL), TCACHE_MISS);
  assert_int_equal(tcache_get(c, "key-39", NULL, NULL), TCACHE_FRESH);
  tcache_free(c);
}

static void test_stats_oldest_age(void **state)
{
  (void)state;
  tcache *c = new_cache(NULL, 1, 0);
  json_t *v = value_n(1);
  tcache_put(c, "old", v, 600);
  tu_sleep(0.05);
  tcache_put(c, "new", v, 600);
  tcache_put_negative(c, "neg", 600);
  json_decref(v);
  tcache_stats st;
  tcache_stats_get(c, &st);
  assert_int_equal(st.entries, 3);
  assert_true(st.oldest_age_s >= 0.05);
  double age_old = 0;
  assert_int_equal(tcache_get(c, "old", NULL, &age_old), TCACHE_FRESH);
  assert_true(age_old >= st.oldest_age_s);
  assert_int_equal(tcache_get(c, "nothing", NULL, NULL), TCACHE_MISS);
  tcache_stats_get(c, &st);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  tcache_free(c);
}

/* ---- the disk copy ------------------------------------------------------- */

static bool is_json_name(const char *name)
{
  size_t n = strlen(name);
  return n == 32 + 5 && strcmp(name + 32, ".json") == 0;
}

static void test_disk_copy_starts_warm(void **state)
{
  struct tu_dir_state *s = *state;
  /* time_scale 600: ttl 60 -> 0.1 s, ttl 60000 -> 100 s. */
  tcache *c = new_cache(s->dir, 600, 0);
  json_t *v = value_n(1);
  tcache_put(c, "short", v, 60);
  tcache_put(c, "long", v, 60000);
  tcache_put(c, "/weird/../key\nwith spaces", v, 60000);
  tcache_put(c, "dropped", v, 60000);
  json_decref(v);
  tcache_put_negative(c, "nobody", 60000);
  tcache_invalidate(c, "dropped");
  assert_true(wait_not_fresh(c, "short", 60));
  double age_before = 0;
  assert_int_equal(tcache_get(c, "short", NULL, &age_before), TCACHE_STALE);
  tcache_free(c);

  assert_int_equal(tu_count_files(s->dir, is_json_name), 4);
  assert_int_equal(tu_count_files(s->dir, statefile_is_temp_name), 0);

  c = new_cache(s->dir, 600, 0);
  json_t *got = NULL;
  double age = 0;
  assert_int_equal(tcache_get(c, "long", &got, &age), TCACHE_FRESH);
  assert_int_equal(value_of(got), 1);
  json_decref(got);
  /* Entries keep their original age: "short" is still stale. */
  assert_int_equal(tcache_get(c, "short", &got, &age), TCACHE_STALE);
  assert_int_equal(value_of(got), 1);
  assert_true(age >= age_before);
  json_decref(got);
  assert_int_equal(tcache_get(c, "/weird/../key\nwith spaces", NULL, NULL),
                   TCACHE_FRESH);
  assert_int_equal(tcache_get(c, "nobody", NULL, NULL), TCACHE_NEGATIVE);
  assert_int_equal(tcache_get(c, "dropped", NULL, NULL), TCACHE_MISS);

  /* Warm means no fetch within freshness. */
  struct fetch_ctl f;
  ctl_init(&f, 9);
  cliq_error err;
  assert_int_equal(tcache_fetch(c, "long", 60000, ctl_fetch, &f, &got, &err), 0);
  assert_int_equal(value_of(got), 1);
  json_decref(got);
  assert_int_equal(ctl_calls(&f), 0);
  /* And a stale disk entry is still served when the network is down. */
  f.result = -EIO;
  assert_int_equal(tcache_fetch(c, "short", 60, ctl_fetch, &f, &got, &err), 0);
  assert_int_equal(value_of(got), 1);
  assert_int_equal(err.err, EIO);
  json_decref(got);
  ctl_destroy(&f);
  tcache_free(c);
}

static void test_evicted_entries_come_back_from_disk(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 2048);
  char key[32];
  for (int i = 0; i < 30; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    json_t *v = value_n(i);
    tcache_put(c, key, v, 600);
    json_decref(v);
  }
  tcache_stats st;
  tcache_stats_get(c, &st);
  assert_true(st.entries < 30);
  json_t *got = NULL;
  assert_int_equal(tcache_get(c, "k0", &got, NULL), TCACHE_FRESH);
  assert_int_equal(value_of(got), 0);
  json_decref(got);
  tcache_stats_get(c, &st);
  assert_true(st.bytes <= 2048);
  tcache_free(c);
}

static void test_damaged_disk_files_are_misses(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  json_t *v = value_n(3);
  tcache_put(c, "a", v, 600);
  tcache_put(c, "b", v, 600);
  json_decref(v);
  tcache_free(c);

  /* Overwrite both files: one with garbage, one with another key's record. */
  char hex[65], *path = NULL;
  statefile_digest("a", 1, hex);
  hex[32] = '\0';
  assert_true(asprintf(&path, "%s/%s.json", s->dir, hex) > 0);
  assert_int_equal(statefile_write_atomic(path, "{garbage", 8), 0);
  free(path);
  statefile_digest("b", 1, hex);
  hex[32] = '\0';
  assert_true(asprintf(&path, "%s/%s.json", s->dir, hex) > 0);
  const char *other =
      "{\"key\":\"not-b\",\"fetched_at\":1,\"ttl\":1e9,\"value\":{\"n\":1}}";
  assert_int_equal(statefile_write_atomic(path, other, strlen(other)), 0);
  free(path);

  c = new_cache(s->dir, 1, 0);
  assert_int_equal(tcache_get(c, "a", NULL, NULL), TCACHE_MISS);
  assert_int_equal(tcache_get(c, "b", NULL, NULL), TCACHE_MISS);
  tcache_free(c);
}

static void test_bad_disk_dir(void **state)
{
  struct tu_dir_state *s = *state;
  char *file = NULL;
  assert_true(asprintf(&file, "%s/file", s->dir) > 0);
  assert_int_equal(statefile_write_atomic(file, "x", 1), 0);
  tcache_options o = {.disk_dir = file};
  cliq_error err;
  assert_null(tcache_new(&o, &err));
  assert_int_equal(err.err, ENOTDIR);
  free(file);
}

static void *hammer_thread(void *arg)
{
  tcache *c = arg;
  char key[16];
  for (int i = 0; i < 400; i++) {
    snprintf(key, sizeof(key), "h%d", i % 37);
    json_t *v = NULL;
    if (i % 3 == 0) {
      json_t *put = value_n(i);
      tcache_put(c, key, put, 600);
      json_decref(put);
    } else if (i % 11 == 0) {
      tcache_invalidate(c, key);
    } else if (tcache_get(c, key, &v, NULL) == TCACHE_FRESH) {
      assert_int_equal(value_of(v) % 3, 0);
    }
    json_decref(v);
  }
  return NULL;
}

static void test_concurrent_use(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 3000);
  pthread_t tid[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, hammer_thread, c), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(tid[i], NULL);
  tcache_stats st;
  tcache_stats_get(c, &st);
  assert_true(st.bytes <= 3000);
  tcache_free(c);
}

/* A key's disk copy read while another thread writes a newer value never
 * comes back in place of the newer one: its file is read without the lock. */
struct newer_ctl {
  tcache *c;
  int last;                 /* the value the writer put last */
  pthread_mutex_t mu;
};

static void *newer_writer(void *arg)
{
  struct newer_ctl *w = arg;
  for (int n = 1; n <= 1500; n++) {
    json_t *v = value_n(n);
    tcache_put(w->c, "k", v, 600);
    json_decref(v);
    v = value_n(-n);
    tcache_put(w->c, "filler", v, 600); /* pushes "k" out of memory */
    json_decref(v);
    pthread_mutex_lock(&w->mu);
    w->last = n;
    pthread_mutex_unlock(&w->mu);
    usleep(100); /* readers' turn: an older copy would stay in sight */
  }
  return NULL;
}

static void *newer_reader(void *arg)
{
  struct newer_ctl *w = arg;
  int bad = 0;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    int last = w->last;
    pthread_mutex_unlock(&w->mu);
    json_t *v = NULL;
    /* What was put before the get began, or newer. */
    if (tcache_get(w->c, "k", &v, NULL) == TCACHE_FRESH &&
        value_of(v) < last)
      bad++;
    json_decref(v);
    if (last == 1500)
      break;
    /* A copy still queued is served under the lock: without a pause the
     * readers would hold it from the writer under valgrind's scheduler. */
    usleep(20);
  }
  return (void *)(intptr_t)bad;
}

static void test_disk_read_never_brings_back_older(void **state)
{
  struct tu_dir_state *s = *state;
  /* Room for about one entry: every put evicts the other key. */
  struct newer_ctl w = { .c = new_cache(s->dir, 1, 200), .last = 0 };
  pthread_mutex_init(&w.mu, NULL);
  pthread_t writer, readers[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&readers[i], NULL, newer_reader, &w), 0);
  assert_int_equal(pthread_create(&writer, NULL, newer_writer, &w), 0);
  pthread_join(writer, NULL);
  int bad = 0;
  for (int i = 0; i < 3; i++) {
    void *r = NULL;
    pthread_join(readers[i], &r);
    bad += (int)(intptr_t)r;
  }
  assert_int_equal(bad, 0);
  json_t *got = NULL;
  assert_int_equal(tcache_get(w.c, "k", &got, NULL), TCACHE_FRESH);
  assert_int_equal(value_of(got), 1500);
  json_decref(got);
  pthread_mutex_destroy(&w.mu);
  tcache_free(w.c);
}

/* A write or a removal that lands while a reader reads the disk copy
 * without the lock (after_disk_read runs in that window) wins: the reader
 * reads again and never returns, nor keeps, what was replaced. */
enum overtaking {
  OVERTAKE_BY_WRITE,        /* write 2, then push "k" out of memory */
  OVERTAKE_BY_REMOVAL,
};

struct overtake {
  tcache *c;
  enum overtaking by;
  int calls;
};

static void overtake_read(void *arg, const char *key)
{
  struct overtake *o = arg;
  if (strcmp(key, "k") != 0 || o->calls++ > 0)
    return;
  if (o->by == OVERTAKE_BY_WRITE) {
    json_t *v = value_n(2);
    tcache_put(o->c, "k", v, 600);
    json_decref(v);
    v = value_n(99);
    tcache_put(o->c, "other", v, 600);   /* room for one: "k" leaves memory */
    json_decref(v);
  } else {
    tcache_invalidate(o->c, "k");
  }
}

static tcache *overtaken_cache(const char *dir, struct overtake *o)
{
  /* "k" = 1 on disk only. */
  tcache *c = new_cache(dir, 1, 0);
  json_t *v = value_n(1);
  tcache_put(c, "k", v, 600);
  json_decref(v);
  tcache_free(c);
  tcache_options opts = {.max_bytes = 200, .disk_dir = dir, .time_scale = 1,
                         .after_disk_read = overtake_read,
                         .after_disk_read_arg = o};
  cliq_error err;
  c = tcache_new(&opts, &err);
  assert_non_null(c);
  o->c = c;
  return c;
}

static void test_disk_read_overtaken_by_a_write(void **state)
{
  struct tu_dir_state *s = *state;
  struct overtake o = {.by = OVERTAKE_BY_WRITE};
  tcache *c = overtaken_cache(s->dir, &o);
  json_t *got = NULL;
  assert_int_equal(tcache_get(c, "k", &got, NULL), TCACHE_FRESH);
  /* Read, overtaken, then the newer copy from the writer's queue or, once
   * written, from the disk. */
  assert_in_range(o.calls, 1, 2);
  assert_int_equal(value_of(got), 2);
  json_decref(got);
  got = NULL;
  assert_int_equal(tcache_get(c, "k", &got, NULL), TCACHE_FRESH);
  assert_int_equal(value_of(got), 2);
  json_decref(got);
  tcache_free(c);
}

static void test_disk_read_overtaken_by_a_removal(void **state)
{
  struct tu_dir_state *s = *state;
  struct overtake o = {.by = OVERTAKE_BY_REMOVAL};
  tcache *c = overtaken_cache(s->dir, &o);
  json_t *got = NULL;
  assert_int_equal(tcache_get(c, "k", &got, NULL), TCACHE_MISS);
  assert_null(got);
  assert_int_equal(tcache_state_of(c, "k"), TCACHE_MISS);
  tcache_free(c);
}

/* Disk copies are written by the cache's writer thread.  A stall (the
 * before_disk_write hook) holds the first write of one key until the test
 * lets it go or max_s pass, and counts the writes of another. */
struct stall {
  pthread_mutex_t mu;
  const char *key, *count_key;
  double max_s;
  int calls;                /* writes of key begun */
  int counted;              /* writes of count_key begun */
  bool entered, release, timed_out;
};

static void stall_init(struct stall *st, const char *key, double max_s)
{
  memset(st, 0, sizeof(*st));
  pthread_mutex_init(&st->mu, NULL);
  st->key = key;
  st->count_key = key;
  st->max_s = max_s;
}

static void stall_write(void *arg, const char *key)
{
  struct stall *st = arg;
  pthread_mutex_lock(&st->mu);
  if (strcmp(key, st->count_key) == 0)
    st->counted++;
  if (strcmp(key, st->key) == 0 && ++st->calls == 1) {
    st->entered = true;
    double end = tu_now_mono() + st->max_s;
    while (!st->release && tu_now_mono() < end) {
      pthread_mutex_unlock(&st->mu);
      tu_sleep(0.002);
      pthread_mutex_lock(&st->mu);
    }
    st->timed_out = !st->release;
  }
  pthread_mutex_unlock(&st->mu);
}

static bool stall_wait_entered(struct stall *st, double seconds)
{
  double end = tu_now_mono() + seconds;
  pthread_mutex_lock(&st->mu);
  while (!st->entered && tu_now_mono() < end) {
    pthread_mutex_unlock(&st->mu);
    tu_sleep(0.002);
    pthread_mutex_lock(&st->mu);
  }
  bool in = st->entered;
  pthread_mutex_unlock(&st->mu);
  return in;
}

static void stall_release(struct stall *st)
{
  pthread_mutex_lock(&st->mu);
  st->release = true;
  pthread_mutex_unlock(&st->mu);
}

static tcache *stalled_cache(const char *dir, size_t max_bytes, struct stall *st)
{
  tcache_options o = {.max_bytes = max_bytes, .disk_dir = dir, .time_scale = 1,
                      .before_disk_write = stall_write,
                      .before_disk_write_arg = st};
  cliq_error err;
  tcache *c = tcache_new(&o, &err);
  assert_non_null(c);
  return c;
}

static void put_n(tcache *c, const char *key, int n)
{
  json_t *v = value_n(n);
  tcache_put(c, key, v, 600);
  json_decref(v);
}

static int get_n(tcache *c, const char *key)
{
  json_t *got = NULL;
  int n = tcache_get(c, key, &got, NULL) == TCACHE_FRESH ? value_of(got) : -1;
  json_decref(got);
  return n;
}

/* A store returns before its disk copy is written, and while it is being
 * written every key is read as usual. */
static void test_stores_do_not_wait_for_the_disk(void **state)
{
  struct tu_dir_state *s = *state;
  struct stall st;
  stall_init(&st, "k", 10);
  tcache *c = stalled_cache(s->dir, 0, &st);
  put_n(c, "other", 5);
  put_n(c, "k", 1);
  assert_true(stall_wait_entered(&st, 10));
  put_n(c, "k2", 3);
  assert_int_equal(get_n(c, "other"), 5);
  assert_int_equal(get_n(c, "k"), 1);
  assert_int_equal(get_n(c, "k2"), 3);
  assert_int_equal(tcache_state_of(c, "k"), TCACHE_FRESH);
  stall_release(&st);
  tcache_free(c);                          /* writes what is queued */
  assert_false(st.timed_out);
  c = new_cache(s->dir, 1, 0);
  assert_int_equal(get_n(c, "other"), 5);
  assert_int_equal(get_n(c, "k"), 1);
  assert_int_equal(get_n(c, "k2"), 3);
  tcache_free(c);
  pthread_mutex_destroy(&st.mu);
}

/* Stores of one key queued behind a slow write: the disk ends with the
 * newest, written once. */
static void test_disk_keeps_the_newest_of_a_key(void **state)
{
  struct tu_dir_state *s = *state;
  struct stall st;
  stall_init(&st, "a", 10);
  st.count_key = "k";
  tcache *c = stalled_cache(s->dir, 0, &st);
  put_n(c, "a", 0);
  assert_true(stall_wait_entered(&st, 10));
  for (int n = 1; n <= 3; n++)
    put_n(c, "k", n);
  tcache_invalidate(c, "gone");
  put_n(c, "gone", 7);
  tcache_invalidate(c, "gone");
  assert_int_equal(get_n(c, "k"), 3);
  stall_release(&st);
  tcache_free(c);
  assert_int_equal(st.counted, 1);
  c = new_cache(s->dir, 1, 0);
  assert_int_equal(get_n(c, "k"), 3);
  assert_int_equal(tcache_state_of(c, "gone"), TCACHE_MISS);
  tcache_free(c);
  pthread_mutex_destroy(&st.mu);
}

/* A key out of memory whose copy is still queued is read from the queue,
 * never from the older copy on disk, and without waiting for the write. */
static void test_disk_read_takes_the_queued_copy(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  put_n(c, "k", 1);
  tcache_free(c);
  struct stall st;
  stall_init(&st, "k", 10);
  c = stalled_cache(s->dir, 200, &st);     /* room for one entry */
  put_n(c, "k", 2);
  assert_true(stall_wait_entered(&st, 10));
  put_n(c, "other", 99);                   /* "k" leaves memory */
  assert_int_equal(get_n(c, "k"), 2);
  put_n(c, "other", 98);
  tcache_invalidate(c, "k");               /* queued behind the write */
  put_n(c, "other", 97);
  assert_int_equal(tcache_get(c, "k", NULL, NULL), TCACHE_MISS);
  stall_release(&st);
  tcache_free(c);
  assert_false(st.timed_out);
  c = new_cache(s->dir, 1, 0);
  assert_int_equal(tcache_get(c, "k", NULL, NULL), TCACHE_MISS);
  assert_int_equal(get_n(c, "other"), 97);
  tcache_free(c);
  pthread_mutex_destroy(&st.mu);
}

/* Asking a key's state or age reads its disk copy without keeping it in
 * memory: the syncer asks about every thread's documents, and readers keep
 * what they use. */
static void test_state_of_keeps_memory_for_readers(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  json_t *v = value_n(7);
  tcache_put(c, "doc", v, 600);
  json_decref(v);
  tcache_free(c);

  c = new_cache(s->dir, 1, 0);
  tcache_stats st;
  assert_int_equal(tcache_state_of(c, "doc"), TCACHE_FRESH);
  assert_true(tcache_age_of(c, "doc") >= 0);
  assert_int_equal(tcache_state_of(c, "none"), TCACHE_MISS);
  tcache_stats_get(c, &st);
  assert_int_equal(st.entries, 0);
  json_t *got = NULL;
  assert_int_equal(tcache_get(c, "doc", &got, NULL), TCACHE_FRESH);
  assert_int_equal(value_of(got), 7);
  json_decref(got);
  tcache_stats_get(c, &st);
  assert_int_equal(st.entries, 1);
  tcache_free(c);
}

/* ---- files of the caller's beside the disk copy ----------------------------- */

static void test_disk_path_beside_the_record(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  char hex[65];
  statefile_digest("log/x", 5, hex);
  hex[32] = '\0';
  char *want = NULL;
  assert_true(asprintf(&want, "%s/%s.jsonl", s->dir, hex) > 0);
  char *path = tcache_disk_path(c, "log/x", "jsonl");
  assert_non_null(path);
  assert_string_equal(path, want);
  /* The cache's own file is not handed out. */
  assert_null(tcache_disk_path(c, "log/x", "json"));
  assert_null(tcache_disk_path(NULL, "log/x", "jsonl"));

  /* The cache leaves the caller's file alone: a put, an invalidation and a
   * new cache on the folder neither change nor remove it. */
  assert_int_equal(statefile_write_atomic(path, "mine\n", 5), 0);
  json_t *v = value_n(1);
  tcache_put(c, "log/x", v, 600);
  json_decref(v);
  /* The writer writes the record soon after. */
  double end = tu_now_mono() + 10;
  while (tu_count_files(s->dir, is_json_name) != 1 && tu_now_mono() < end)
    tu_sleep(0.005);
  assert_int_equal(tu_count_files(s->dir, is_json_name), 1);
  tcache_invalidate(c, "log/x");
  tcache_free(c);
  c = new_cache(s->dir, 1, 0);
  assert_int_equal(tcache_get(c, "log/x", NULL, NULL), TCACHE_MISS);
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(statefile_read(path, &buf, &len), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "mine\n", 5);
  free(buf);
  tcache_free(c);
  free(path);
  free(want);

  /* Without a folder there is no such file. */
  c = new_cache(NULL, 1, 0);
  assert_null(tcache_disk_path(c, "log/x", "jsonl"));
  tcache_free(c);
}

/* Appends to a caller's file: what tcache_disk_append's landed saw. */
struct landings {
  pthread_mutex_t mu;
  int n, failed, last_rc;
};

static void count_landing(void *arg, int rc)
{
  struct landings *l = arg;
  pthread_mutex_lock(&l->mu);
  l->n++;
  if (rc < 0)
    l->failed++;
  l->last_rc = rc;
  pthread_mutex_unlock(&l->mu);
}

static int landed_n(struct landings *l)
{
  pthread_mutex_lock(&l->mu);
  int n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

static char *file_text(const char *path)
{
  char *buf = NULL;
  size_t len = 0;
  if (statefile_read(path, &buf, &len) < 0)
    return NULL;
  char *t = realloc(buf, len + 1);
  assert_non_null(t);
  t[len] = '\0';
  return t;
}

/* The writer appends in order, an offset of 0 starts the file anew, and a
 * record put after an append lands after it; settle waits for the file. */
static void test_appends_land_in_order(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  struct landings l = {.mu = PTHREAD_MUTEX_INITIALIZER};
  char *path = tcache_disk_path(c, "log/x", "jsonl");
  assert_non_null(path);
  assert_int_equal(tcache_disk_append(c, path, "abc", 3, 0, count_landing, &l), 0);
  assert_int_equal(tcache_disk_append(c, path, "defXX", 3, 3, count_landing, &l), 0);
  tcache_disk_settle(c, path);
  assert_int_equal(landed_n(&l), 2);
  char *t = file_text(path);
  assert_string_equal(t, "abcdef");
  free(t);
  assert_int_equal(tcache_disk_append(c, path, "x", 1, 0, count_landing, &l), 0);
  json_t *v = value_n(7);
  tcache_put(c, "log/x", v, 600);
  json_decref(v);
  tcache_disk_flush(c);
  assert_int_equal(landed_n(&l), 3);
  assert_int_equal(l.failed, 0);
  t = file_text(path);
  assert_string_equal(t, "x");
  free(t);
  assert_int_equal(tu_count_files(s->dir, is_json_name), 1);
  free(path);
  tcache_free(c);
}

/* An append returns before its bytes are written; settle waits for them. */
static void test_appends_do_not_wait_for_the_disk(void **state)
{
  struct tu_dir_state *s = *state;
  struct stall st;
  char *path = NULL;
  assert_true(asprintf(&path, "%s/mine.jsonl", s->dir) > 0);
  stall_init(&st, path, 10);
  tcache *c = stalled_cache(s->dir, 0, &st);
  struct landings l = {.mu = PTHREAD_MUTEX_INITIALIZER};
  assert_int_equal(tcache_disk_append(c, path, "one\n", 4, 0, count_landing, &l), 0);
  assert_true(stall_wait_entered(&st, 10));
  /* The writer is held inside the first write: the second is queued. */
  assert_int_equal(tcache_disk_append(c, path, "two\n", 4, 4, count_landing, &l), 0);
  assert_int_equal(landed_n(&l), 0);
  stall_release(&st);
  tcache_disk_settle(c, path);
  assert_false(st.timed_out);
  assert_int_equal(landed_n(&l), 2);
  char *t = file_text(path);
  assert_string_equal(t, "one\ntwo\n");
  free(t);
  free(path);
  tcache_free(c);
}

/* A write that fails is told to landed, with its errno. */
static void test_append_failure_landed(void **state)
{
  struct tu_dir_state *s = *state;
  tcache *c = new_cache(s->dir, 1, 0);
  struct landings l = {.mu = PTHREAD_MUTEX_INITIALIZER};
  char *path = NULL;
  assert_true(asprintf(&path, "%s/no-such-folder/x.jsonl", s->dir) > 0);
  assert_int_equal(tcache_disk_append(c, path, "abc", 3, 0, count_landing, &l), 0);
  tcache_disk_flush(c);
  assert_int_equal(landed_n(&l), 1);
  assert_int_equal(l.failed, 1);
  assert_int_equal(l.last_rc, -ENOENT);
  free(path);
  tcache_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_put_get_fresh_then_stale),
    cmocka_unit_test(test_negative_entries),
    cmocka_unit_test(test_fetch_miss_then_hit),
    cmocka_unit_test(test_stale_served_when_fetch_fails),
    cmocka_unit_test(test_single_flight),
    cmocka_unit_test(test_lru_eviction_by_bytes),
    cmocka_unit_test(test_stats_oldest_age),
    cmocka_unit_test_setup_teardown(test_disk_copy_starts_warm, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_evicted_entries_come_back_from_disk,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_damaged_disk_files_are_misses,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_bad_disk_dir, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_concurrent_use, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_read_never_brings_back_older,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_read_overtaken_by_a_write,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_read_overtaken_by_a_removal,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_stores_do_not_wait_for_the_disk,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_keeps_the_newest_of_a_key,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_read_takes_the_queued_copy,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_state_of_keeps_memory_for_readers,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_disk_path_beside_the_record,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_appends_land_in_order, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_appends_do_not_wait_for_the_disk,
                                    setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_append_failure_landed, setup_dir,
                                    teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
