/* tests/cache/test_delivery.c: the delivery worker (cache/delivery) against
 * the emulator over real HTTP on 127.0.0.1.  Every test checks the effect at
 * the emulator (its /_emulator/state): what arrived, how often, in which
 * order.  Each test gets its own emulator and its own state folder.
 *
 * Run as `test_delivery --child STATE_DIR URL` the binary is a delivery
 * daemon that runs until it is killed (the kill -9 test). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "cache/delivery.h"
#include "cache/governor.h"
#include "cache/outbox.h"
#include "cache/statefile.h"
#include "harness.h"
#include "testutil.h"

extern char **environ;

/* This binary, for the child daemon of the kill -9 test. */
static char *self_exe;

#define SCALE 200.0
#define SCALE_ARG "200"
#define WAIT_S 60.0

#define ME "855727961"
#define SCOTT "855727962"
#define TIM "855727963"
#define GENERAL_ID "O5797000000001"
#define GENERAL_CHAT "CT_1207124526552602256_60002085329"
#define THREAD1 GENERAL_CHAT "-T-1"
#define THREAD2 GENERAL_CHAT "-T-2"
#define THREAD3 GENERAL_CHAT "-T-3"
#define THREAD4 GENERAL_CHAT "-T-4"

#define MSG(id, t, who, text)                                                  \
  "{\"id\":\"" id "\",\"time\":" t ",\"sender\":\"" who "\",\"text\":\"" text "\"}"
#define THREAD(chat, parent, title, followers, msgs)                           \
  "{\"chat_id\":\"" chat "\",\"thread_message_id\":\"" parent "\","           \
  "\"title\":\"" title "\",\"followers\":[" followers "],"                    \
  "\"members\":[\"" ME "\",\"" SCOTT "\",\"" TIM "\"],\"messages\":[" msgs "]}"

static const char ORG[] =
    "{\"me\":\"" ME "\",\"users\":["
    "{\"user_id\":\"" ME "\",\"email_id\":\"ryan.west@zylker.com\",\"name\":\"Ryan West\"},"
    "{\"user_id\":\"" SCOTT "\",\"email_id\":\"scott.fisher@zylker.com\",\"name\":\"Scott Fisher\"},"
    "{\"user_id\":\"" TIM "\",\"email_id\":\"tim.harrison@zylker.com\",\"name\":\"Tim Harrison\"}],"
    "\"channels\":[{\"channel_id\":\"" GENERAL_ID "\",\"chat_id\":\"" GENERAL_CHAT "\","
    "\"unique_name\":\"general\",\"name\":\"#General\","
    "\"members\":[\"" ME "\",\"" SCOTT "\",\"" TIM "\"],"
    "\"messages\":["
    MSG("1727333520001_1", "1727333520001", ME, "parent one") ","
    MSG("1727333520002_2", "1727333520002", SCOTT, "parent two") ","
    MSG("1727333520003_3", "1727333520003", TIM, "parent three") ","
    MSG("1727333520004_4", "1727333520004", SCOTT, "parent four") "],"
    "\"threads\":["
    THREAD(THREAD1, "1727333520001_1", "One", "\"" ME "\",\"" SCOTT "\"",
           MSG("1727333600000_11", "1727333600000", SCOTT, "first reply")) ","
    THREAD(THREAD2, "1727333520002_2", "Two", "\"" ME "\"", "") ","
    THREAD(THREAD3, "1727333520003_3", "Three", "\"" SCOTT "\"", "") ","
    THREAD(THREAD4, "1727333520004_4", "Four", "\"" ME "\"", "")
    "]}]}";

/* ---- what the hooks saw ----------------------------------------------------- */

#define LOG_MAX 512

struct hook_log {
  pthread_mutex_t mu;
  size_t ndelivered, nfailed, ncreated;
  uint64_t delivered[LOG_MAX];
  char *delivered_mid[LOG_MAX];
  uint64_t failed[LOG_MAX];
  int failed_errno[LOG_MAX];
  char *created[LOG_MAX];
};

static void on_delivered(void *ctx, const outbox_entry *e, const char *mid)
{
  struct hook_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->ndelivered < LOG_MAX) {
    l->delivered[l->ndelivered] = e->id;
    l->delivered_mid[l->ndelivered] = mid ? strdup(mid) : NULL;
    l->ndelivered++;
  }
  pthread_mutex_unlock(&l->mu);
}

static void on_failed(void *ctx, const outbox_entry *e, const cliq_error *err)
{
  struct hook_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->nfailed < LOG_MAX) {
    l->failed[l->nfailed] = e->id;
    l->failed_errno[l->nfailed] = err->err;
    l->nfailed++;
  }
  pthread_mutex_unlock(&l->mu);
}

static void on_created(void *ctx, const outbox_entry *e, const char *tid)
{
  (void)e;
  struct hook_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->ncreated < LOG_MAX)
    l->created[l->ncreated++] = strdup(tid);
  pthread_mutex_unlock(&l->mu);
}

static void hook_log_clear(struct hook_log *l)
{
  for (size_t i = 0; i < l->ndelivered; i++)
    free(l->delivered_mid[i]);
  for (size_t i = 0; i < l->ncreated; i++)
    free(l->created[i]);
  pthread_mutex_destroy(&l->mu);
}

/* ---- environment -------------------------------------------------------------- */

struct env {
  struct emu emu;
  char *dir;
  char *org_path;
  char *state;      /* the outbox's state folder */
  char *ledger;     /* the governor's */
  gov *gov;
  cliq_client *client;
  outbox *ob;
  delivery *dl;
  struct hook_log log;
};

static gov *make_gov(const char *ledger)
{
  gov_options go = {.state_dir = ledger, .time_scale = SCALE, .margin = 1,
                    .max_wait_s = 30};
  cliq_error err;
  gov *g = gov_new(&go, &err);
  if (!g)
    fprintf(stderr, "gov_new: %s\n", err.message);
  return g;
}

static cliq_client *make_client(const char *url, gov *g)
{
  cliq_client_config cfg = {.api_url = url, .accounts_url = url,
                            .access_token = EMU_STATIC_TOKEN,
                            .timeout_ms = 5000};
  cliq_gate gate = gov_gate(g);
  cliq_error err;
  cliq_client *c = cliq_client_new(&cfg, &gate, &err);
  if (!c)
    fprintf(stderr, "client: %s\n", err.message);
  return c;
}

static const delivery_options OPTS = {.time_scale = SCALE, .workers = 4,
                                      .poll_s = 0.2, .settle_s = 1.0};

static int setup(void **state)
{
  struct env *e = calloc(1, sizeof(*e));
  *state = e;
  pthread_mutex_init(&e->log.mu, NULL);
  e->dir = tu_mkdtemp("delivery");
  if (!e->dir || asprintf(&e->org_path, "%s/org.json", e->dir) < 0 ||
      asprintf(&e->state, "%s/state", e->dir) < 0 ||
      asprintf(&e->ledger, "%s/state/gov", e->dir) < 0)
    return -1;
  FILE *f = fopen(e->org_path, "w");
  if (!f)
    return -1;
  fputs(ORG, f);
  fclose(f);
  const char *args[] = {"--quiet", "--org", e->org_path, "--time-scale",
                        SCALE_ARG, NULL};
  if (emu_start(&e->emu, args) != 0)
    return -1;
  e->gov = make_gov(e->ledger);
  if (!e->gov)
    return -1;
  e->client = make_client(e->emu.url, e->gov);
  if (!e->client)
    return -1;
  cliq_error err;
  e->ob = outbox_open(e->state, &err);
  return e->ob ? 0 : -1;
}

static int teardown(void **state)
{
  struct env *e = *state;
  if (!e)
    return 0;
  if (e->gov)
    gov_shutdown(e->gov);
  delivery_free(e->dl);
  outbox_close(e->ob);
  cliq_client_free(e->client);
  gov_free(e->gov);
  emu_stop(&e->emu);
  tu_rm_rf(e->dir);
  free(e->dir);
  free(e->org_path);
  free(e->state);
  free(e->ledger);
  hook_log_clear(&e->log);
  free(e);
  return 0;
}

static void start_delivery(struct env *e)
{
  delivery_hooks hooks = {.delivered = on_delivered, .failed = on_failed,
                          .thread_created = on_created, .ctx = &e->log};
  e->dl = delivery_new(e->ob, e->client, &hooks, &OPTS);
  assert_non_null(e->dl);
  assert_int_equal(delivery_start(e->dl), 0);
}

static uint64_t append(struct env *e, outbox_kind kind, const char *target,
                       json_t *payload)
{
  uint64_t id = 0;
  assert_int_equal(outbox_append(e->ob, kind, target, payload, &id), 0);
  json_decref(payload);
  if (e->dl)
    delivery_kick(e->dl);
  return id;
}

static uint64_t reply(struct env *e, const char *thread, const char *text)
{
  return append(e, OUTBOX_REPLY, thread, json_string(text));
}

static void ctl(struct env *e, const char *method, const char *path,
                const char *body)
{
  json_t *r = emu_ctl(&e->emu, method, path, body);
  if (!r)
    fail_msg("control %s %s failed", method, path);
  json_decref(r);
}

static void fault(struct env *e, const char *kind, int count, int delay_ms)
{
  char body[200];
  snprintf(body, sizeof body,
           "{\"api\":\"messages.post\",\"kind\":\"%s\",\"count\":%d,"
           "\"delay_ms\":%d}", kind, count, delay_ms);
  ctl(e, "POST", "/_emulator/faults", body);
}

/* The chat (channel or thread) `chat_id` in the emulator's state: a new
 * reference, NULL when absent. */
static json_t *chat_of(struct emu *emu, const char *chat_id)
{
  json_t *st = emu_ctl(emu, "GET", "/_emulator/state", NULL);
  json_t *found = NULL;
  size_t i, j;
  json_t *ch, *th;
  json_array_foreach(json_object_get(st, "channels"), i, ch) {
    if (strcmp(json_string_value(json_object_get(ch, "chat_id")), chat_id) == 0)
      found = json_incref(ch);
    json_array_foreach(json_object_get(ch, "threads"), j, th)
      if (strcmp(json_string_value(json_object_get(th, "chat_id")), chat_id) == 0)
        found = json_incref(th);
  }
  json_decref(st);
  return found;
}

static int count_text(struct emu *emu, const char *chat_id, const char *text)
{
  json_t *chat = chat_of(emu, chat_id);
  int n = 0;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(chat, "messages"), i, m) {
    const char *t = json_string_value(json_object_get(m, "text"));
    if (t && strcmp(t, text) == 0)
      n++;
  }
  json_decref(chat);
  return n;
}

/* Asserts that texts[0..n) each appear exactly once in the chat, in order. */
static void assert_once_in_order(struct emu *emu, const char *chat_id,
                                 char **texts, size_t n)
{
  json_t *chat = chat_of(emu, chat_id);
  assert_non_null(chat);
  json_t *msgs = json_object_get(chat, "messages");
  int *seen = calloc(n, sizeof(*seen));
  size_t next = 0;
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *t = json_string_value(json_object_get(m, "text"));
    for (size_t k = 0; t && k < n; k++) {
      if (strcmp(t, texts[k]) != 0)
        continue;
      seen[k]++;
      if (k != next)
        fail_msg("\"%s\" arrived at position %zu of ours, expected \"%s\"", t,
                 next, next < n ? texts[next] : "(none)");
      next++;
    }
  }
  for (size_t k = 0; k < n; k++)
    if (seen[k] != 1)
      fail_msg("\"%s\" arrived %d times", texts[k], seen[k]);
  free(seen);
  json_decref(chat);
}

static json_t *thread_state(struct env *e, const char *chat_id)
{
  json_t *t = chat_of(&e->emu, chat_id);
  assert_non_null(t);
  return t;
}

static bool in_set(json_t *arr, const char *id)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
    if (strcmp(json_string_value(v), id) == 0)
      return true;
  return false;
}

static void wait_empty(struct env *e, const char *target, int want)
{
  int r = outbox_wait_target_empty(e->ob, target, WAIT_S);
  if (r != want)
    fail_msg("outbox_wait_target_empty(%s) = %d, expected %d", target, r, want);
}

/* An fsync that starts before the delivery does, so that it covers entries
 * that could fail before a later call would see them. */
struct waiter {
  outbox *ob;
  const char *target;
  int rc;
  pthread_t thread;
};

static void *waiter_main(void *arg)
{
  struct waiter *w = arg;
  w->rc = outbox_wait_target_empty(w->ob, w->target, WAIT_S);
  return NULL;
}

static void waiter_start(struct env *e, struct waiter *w, const char *target)
{
  size_t before = outbox_fsync_waiters(e->ob);
  *w = (struct waiter){.ob = e->ob, .target = target};
  assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
  double deadline = tu_now_mono() + WAIT_S;
  while (outbox_fsync_waiters(e->ob) <= before && tu_now_mono() < deadline)
    tu_sleep(0.01);
  assert_true(outbox_fsync_waiters(e->ob) > before);
}

static void waiter_join(struct waiter *w, int want)
{
  pthread_join(w->thread, NULL);
  if (w->rc != want)
    fail_msg("fsync of %s = %d, expected %d", w->target, w->rc, want);
}

static char **texts_make(const char *fmt, size_t n)
{
  char **t = calloc(n, sizeof(*t));
  for (size_t i = 0; i < n; i++)
    assert_true(asprintf(&t[i], fmt, (int)i) > 0);
  return t;
}

static void texts_free(char **t, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(t[i]);
  free(t);
}

static long status_count(struct env *e, const char *api, const char *status)
{
  json_t *c = emu_ctl(&e->emu, "GET", "/_emulator/counters", NULL);
  json_t *row = json_object_get(json_object_get(c, "apis"), api);
  long n = (long)json_integer_value(
      json_object_get(json_object_get(row, "status"), status));
  json_decref(c);
  return n;
}

/* ---- tests ------------------------------------------------------------------ */

/* 100 replies while messages.post is locked: each append returns while the
 * lock holds (nothing can be delivered), and after it all 100 arrive once,
 * in order. */
static void test_hundred_while_locked(void **state)
{
  struct env *e = *state;
  ctl(e, "POST", "/_emulator/lock",
      "{\"api\":\"messages.post\",\"seconds\":100000}");
  start_delivery(e);
  enum { N = 100 };
  char **texts = texts_make("locked message %03d", N);
  for (size_t i = 0; i < N; i++)
    reply(e, THREAD1, texts[i]);
  /* Every append returned, and none of them could have been delivered. */
  assert_int_equal(count_text(&e->emu, THREAD1, texts[0]), 0);
  assert_int_equal(outbox_depth(e->ob), N);
  /* The worker met the lock (and the governor waits it out). */
  double deadline = tu_now_mono() + WAIT_S;
  while (status_count(e, "messages.post", "429") < 1 && tu_now_mono() < deadline)
    tu_sleep(0.05);
  assert_true(status_count(e, "messages.post", "429") >= 1);
  assert_int_equal(outbox_depth(e->ob), N);
  ctl(e, "POST", "/_emulator/unlock", "{\"api\":\"*\"}");

  wait_empty(e, THREAD1, 0);
  assert_once_in_order(&e->emu, THREAD1, texts, N);
  assert_int_equal(outbox_depth(e->ob), 0);
  assert_int_equal(e->log.ndelivered, N);
  for (size_t i = 0; i < N; i++)
    assert_non_null(e->log.delivered_mid[i]);
  assert_int_equal(e->log.nfailed, 0);
  texts_free(texts, N);
}

/* The emulator stores the POST and drops the connection: the worker checks
 * before sending again, and the message is there once. */
static void test_accept_drop(void **state)
{
  struct env *e = *state;
  start_delivery(e);
  fault(e, "accept_drop", 1, 0);
  reply(e, THREAD1, "stored, answer lost");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "stored, answer lost"), 1);
  delivery_stats st;
  delivery_get_stats(e->dl, &st);
  assert_true(st.checks >= 1);
  assert_true(st.found >= 1);
  assert_int_equal(e->log.ndelivered, 1);
  assert_non_null(e->log.delivered_mid[0]);
  /* The hook got the id of the message Cliq stored. */
  json_t *t = thread_state(e, THREAD1);
  json_t *msgs = json_object_get(t, "messages");
  json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
  assert_string_equal(json_string_value(json_object_get(last, "id")),
                      e->log.delivered_mid[0]);
  json_decref(t);
}

/* 500s and dropped connections (nothing stored) are retried; each message
 * arrives once, in order. */
static void test_500_and_drop_retried(void **state)
{
  struct env *e = *state;
  fault(e, "500", 2, 0);
  fault(e, "drop", 1, 0);
  fault(e, "503", 1, 0);
  fault(e, "truncate", 1, 0);
  start_delivery(e);
  enum { N = 4 };
  char **texts = texts_make("retried %d", N);
  for (size_t i = 0; i < N; i++)
    reply(e, THREAD2, texts[i]);
  wait_empty(e, THREAD2, 0);
  assert_once_in_order(&e->emu, THREAD2, texts, N);
  delivery_stats st;
  delivery_get_stats(e->dl, &st);
  assert_true(st.retries >= 4);
  assert_int_equal(e->log.nfailed, 0);
  texts_free(texts, N);
}

/* A reply to a thread closed meanwhile lands in failed/ (hook called, fsync
 * reports it) and the entries after it are delivered. */
static void test_closed_thread(void **state)
{
  struct env *e = *state;
  cliq_error err;
  assert_int_equal(cliq_set_thread_state(e->client, CLIQ_PRIO_WRITE, THREAD2,
                                         "close", &err), 0);
  uint64_t refused = reply(e, THREAD2, "too late");
  append(e, OUTBOX_STATE, THREAD2, json_string("reopen"));
  reply(e, THREAD2, "after reopen");
  reply(e, THREAD1, "elsewhere");
  struct waiter w;
  waiter_start(e, &w, THREAD2);
  start_delivery(e);
  waiter_join(&w, -EACCES);
  wait_empty(e, THREAD1, 0);

  assert_int_equal(count_text(&e->emu, THREAD2, "too late"), 0);
  assert_int_equal(count_text(&e->emu, THREAD2, "after reopen"), 1);
  assert_int_equal(count_text(&e->emu, THREAD1, "elsewhere"), 1);
  json_t *t = thread_state(e, THREAD2);
  assert_string_equal(json_string_value(json_object_get(t, "state")), "open");
  json_decref(t);

  assert_int_equal(e->log.nfailed, 1);
  assert_int_equal(e->log.failed[0], refused);
  assert_int_equal(e->log.failed_errno[0], EACCES);
  assert_int_equal(e->log.ndelivered, 3);
  outbox_entry *failed;
  size_t n;
  assert_int_equal(outbox_list_failed(e->ob, &failed, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(failed[0].id, refused);
  assert_int_equal(failed[0].failed_errno, EACCES);
  assert_string_equal(json_string_value(failed[0].payload), "too late");
  outbox_entry_list_free(failed, n);
  char *path = NULL;
  assert_true(asprintf(&path, "%s/failed/%016" PRIu64 ".json", e->state,
                       refused) > 0);
  assert_int_equal(access(path, F_OK), 0);
  free(path);
}

/* A lock on messages.post holds back only the entries that need it; stopping
 * (governor first) leaves the held entry in the journal. */
static void test_other_apis_go_on(void **state)
{
  struct env *e = *state;
  ctl(e, "POST", "/_emulator/lock",
      "{\"api\":\"messages.post\",\"seconds\":100000}");
  start_delivery(e);
  for (int i = 0; i < 6; i++) {
    char text[32];
    snprintf(text, sizeof text, "held %d", i);
    reply(e, i % 2 ? THREAD1 : THREAD2, text);
  }
  append(e, OUTBOX_STATE, THREAD3, json_string("close"));
  append(e, OUTBOX_FOLLOWERS_ADD, THREAD4, json_pack("[s]", TIM));
  wait_empty(e, THREAD3, 0);
  wait_empty(e, THREAD4, 0);
  json_t *t3 = thread_state(e, THREAD3);
  assert_string_equal(json_string_value(json_object_get(t3, "state")), "closed");
  json_decref(t3);
  json_t *t4 = thread_state(e, THREAD4);
  assert_true(in_set(json_object_get(t4, "followers"), TIM));
  json_decref(t4);
  assert_int_equal(count_text(&e->emu, THREAD1, "held 1"), 0);
  assert_int_equal(outbox_depth(e->ob), 6);

  /* A worker is waiting in the governor for messages.post: the owner shuts
   * the governor down, then stops the delivery. */
  gov_shutdown(e->gov);
  delivery_stop(e->dl);
  assert_int_equal(outbox_depth(e->ob), 6);
}

/* Every kind of entry, with its effect at the emulator. */
static void test_every_kind(void **state)
{
  struct env *e = *state;
  append(e, OUTBOX_CHANNEL_POST, GENERAL_ID,
         json_pack("{s:s, s:s}", "text", "to the channel", "chat_id",
                   GENERAL_CHAT));
  append(e, OUTBOX_FOLLOWERS_ADD, THREAD1, json_pack("[s]", TIM));
  append(e, OUTBOX_FOLLOWERS_REMOVE, THREAD1,
         json_pack("{s:[s]}", "user_ids", SCOTT));
  append(e, OUTBOX_CTL, THREAD1, json_string("mute"));
  append(e, OUTBOX_CTL, THREAD2, json_string("unfollow"));
  append(e, OUTBOX_CTL, THREAD3, json_string("follow"));
  append(e, OUTBOX_CTL, THREAD3, json_string("mute"));
  append(e, OUTBOX_CTL, THREAD3, json_string("unmute"));
  append(e, OUTBOX_CTL, THREAD3, json_string("close"));
  append(e, OUTBOX_STATE, THREAD2, json_pack("{s:s}", "action", "closed"));
  append(e, OUTBOX_STATE, THREAD2, json_string("open"));
  append(e, OUTBOX_CTL, THREAD4, json_string("leave"));
  /* An entry the worker cannot understand is refused, not retried. */
  uint64_t bad = append(e, OUTBOX_CTL, THREAD4, json_string("dance"));
  struct waiter w;
  waiter_start(e, &w, THREAD4);
  start_delivery(e);
  wait_empty(e, GENERAL_ID, 0);
  wait_empty(e, THREAD1, 0);
  wait_empty(e, THREAD2, 0);
  wait_empty(e, THREAD3, 0);
  waiter_join(&w, -EINVAL);

  assert_int_equal(count_text(&e->emu, GENERAL_CHAT, "to the channel"), 1);
  json_t *t1 = thread_state(e, THREAD1);
  assert_true(in_set(json_object_get(t1, "followers"), TIM));
  assert_false(in_set(json_object_get(t1, "followers"), SCOTT));
  assert_true(json_is_true(json_object_get(t1, "muted")));
  json_t *t2 = thread_state(e, THREAD2);
  assert_false(in_set(json_object_get(t2, "followers"), ME));
  assert_string_equal(json_string_value(json_object_get(t2, "state")), "open");
  json_t *t3 = thread_state(e, THREAD3);
  assert_true(in_set(json_object_get(t3, "followers"), ME));
  assert_false(json_is_true(json_object_get(t3, "muted")));
  assert_string_equal(json_string_value(json_object_get(t3, "state")), "closed");
  json_t *t4 = thread_state(e, THREAD4);
  assert_true(json_is_true(json_object_get(t4, "left")));
  json_decref(t1);
  json_decref(t2);
  json_decref(t3);
  json_decref(t4);
  assert_int_equal(e->log.nfailed, 1);
  assert_int_equal(e->log.failed[0], bad);
  assert_int_equal(e->log.failed_errno[0], EINVAL);
  assert_int_equal(e->log.ndelivered, 12);
}

/* The new thread of a draft with that title and parent; its chat id. */
static char *find_new_thread(struct env *e, const char *title,
                             const char *parent_text, int *count)
{
  json_t *general = chat_of(&e->emu, GENERAL_CHAT);
  char *parent_id = NULL, *tid = NULL;
  *count = 0;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(general, "messages"), i, v)
    if (strcmp(json_string_value(json_object_get(v, "text")), parent_text) == 0) {
      free(parent_id);
      parent_id = strdup(json_string_value(json_object_get(v, "id")));
    }
  json_array_foreach(json_object_get(general, "threads"), i, v)
    if (strcmp(json_string_value(json_object_get(v, "title")), title) == 0) {
      (*count)++;
      if (parent_id && strcmp(json_string_value(json_object_get(
                                  v, "thread_message_id")), parent_id) == 0) {
        free(tid);
        tid = strdup(json_string_value(json_object_get(v, "chat_id")));
      }
    }
  free(parent_id);
  json_decref(general);
  return tid;
}

#define DRAFT "draft:" GENERAL_ID "/Release plan"

static json_t *draft_main(const char *text)
{
  return json_pack("{s:s, s:s, s:s, s:b}", "text", text, "channel_id",
                   GENERAL_ID, "chat_id", GENERAL_CHAT, "draft_main", 1);
}

static json_t *draft_create(const char *text)
{
  return json_pack("{s:s, s:s, s:s, s:s}", "channel_id", GENERAL_ID, "chat_id",
                   GENERAL_CHAT, "title", "Release plan", "text", text);
}

/* A draft: main posted to the channel, then the thread opened with the
 * title, then replies that were queued for the draft land in the thread. */
static void test_draft_thread(void **state)
{
  struct env *e = *state;
  uint64_t main_id = append(e, OUTBOX_CHANNEL_POST, DRAFT,
                            draft_main("Release plan main"));
  append(e, OUTBOX_CREATE_THREAD, DRAFT, draft_create("first reply"));
  append(e, OUTBOX_REPLY, DRAFT, json_string("second reply"));
  start_delivery(e);
  wait_empty(e, DRAFT, 0);

  int n;
  char *tid = find_new_thread(e, "Release plan", "Release plan main", &n);
  assert_int_equal(n, 1);
  assert_non_null(tid);
  assert_int_equal(count_text(&e->emu, GENERAL_CHAT, "Release plan main"), 1);
  char *want[] = {"first reply", "second reply"};
  assert_once_in_order(&e->emu, tid, want, 2);
  assert_int_equal(e->log.ncreated, 1);
  assert_string_equal(e->log.created[0], tid);
  /* The main's hook had the parent message's id. */
  assert_int_equal(e->log.delivered[0], main_id);
  json_t *t = thread_state(e, tid);
  assert_string_equal(json_string_value(json_object_get(t, "thread_message_id")),
                      e->log.delivered_mid[0]);
  json_decref(t);

  /* A writer that had not heard of the thread yet still reaches it. */
  append(e, OUTBOX_REPLY, DRAFT, json_string("third reply"));
  wait_empty(e, DRAFT, 0);
  wait_empty(e, tid, 0);
  char *want3[] = {"first reply", "second reply", "third reply"};
  assert_once_in_order(&e->emu, tid, want3, 3);
  free(tid);
}

/* create_thread whose answer is lost: the thread exists once, its first
 * reply too. */
static void test_draft_thread_accept_drop(void **state)
{
  struct env *e = *state;
  start_delivery(e);
  append(e, OUTBOX_CHANNEL_POST, DRAFT, draft_main("lost answer main"));
  wait_empty(e, DRAFT, 0);
  fault(e, "accept_drop", 1, 0);
  append(e, OUTBOX_CREATE_THREAD, DRAFT, draft_create("only once"));
  append(e, OUTBOX_REPLY, DRAFT, json_string("after it"));
  wait_empty(e, DRAFT, 0);
  int n;
  char *tid = find_new_thread(e, "Release plan", "lost answer main", &n);
  assert_int_equal(n, 1);
  assert_non_null(tid);
  char *want[] = {"only once", "after it"};
  assert_once_in_order(&e->emu, tid, want, 2);
  assert_int_equal(e->log.ncreated, 1);
  assert_string_equal(e->log.created[0], tid);
  free(tid);
}

/* A draft entry after a main that Cliq refused: EDESTADDRREQ, and nothing is
 * sent to a draft target. */
static void test_draft_without_main(void **state)
{
  struct env *e = *state;
  append(e, OUTBOX_CREATE_THREAD, DRAFT, draft_create("no parent"));
  append(e, OUTBOX_REPLY, DRAFT, json_string("no thread"));
  struct waiter w;
  waiter_start(e, &w, DRAFT);
  start_delivery(e);
  waiter_join(&w, -EDESTADDRREQ);
  assert_int_equal(e->log.nfailed, 2);
  assert_int_equal(e->log.failed_errno[0], EDESTADDRREQ);
  assert_int_equal(e->log.failed_errno[1], EDESTADDRREQ);
  assert_int_equal(emu_count(&e->emu, "messages.post"), 0);
}

/* The same text twice; the second attempt of the second is dropped before
 * Cliq stores it.  The check must not take the first for the second, also
 * after a restart of the delivery (the record is on disk). */
static void test_same_text_twice(void **state)
{
  struct env *e = *state;
  start_delivery(e);
  reply(e, THREAD1, "ok");
  wait_empty(e, THREAD1, 0);
  delivery_free(e->dl);
  e->dl = NULL;
  start_delivery(e);
  fault(e, "drop", 1, 0);
  reply(e, THREAD1, "ok");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "ok"), 2);
  delivery_stats st;
  delivery_get_stats(e->dl, &st);
  assert_true(st.checks >= 1);
  assert_int_equal(st.found, 0);
}

/* Who we are is learnt from our own message and kept on disk. */
/* Who we are costs no request while deliveries go well: a delivered post is
 * only kept (in the delivery record, across a restart) as the way to learn
 * it.  A lost outcome (the answer to a later post dropped) asks for that post
 * once before checking, and the id is kept in the record for the next start. */
static void test_self_learnt(void **state)
{
  struct env *e = *state;
  start_delivery(e);
  reply(e, THREAD1, "who am I");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(emu_count(&e->emu, "messages.get"), 0);
  char *self = delivery_self_id(e->dl);
  assert_null(self);
  /* The post kept to learn it from survives a restart (a crash). */
  delivery_free(e->dl);
  start_delivery(e);

  fault(e, "accept_drop", 1, 0);
  reply(e, THREAD1, "answer lost, then checked");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "answer lost, then checked"), 1);
  assert_int_equal(emu_count(&e->emu, "messages.get"), 1);
  self = delivery_self_id(e->dl);
  assert_non_null(self);
  assert_string_equal(self, ME);
  free(self);

  delivery_free(e->dl);
  e->dl = delivery_new(e->ob, e->client, NULL, &OPTS);
  self = delivery_self_id(e->dl);
  assert_non_null(self);
  assert_string_equal(self, ME);
  free(self);
}

/* Two mounts of one account: each has its own journal slot and its own
 * delivery record; a check of an unknown outcome in one does not take the
 * message the other mount delivered with the same text for its own. */
static void test_two_slots_same_text(void **state)
{
  struct env *e = *state;
  start_delivery(e);
  reply(e, THREAD1, "same words");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "same words"), 1);

  cliq_error err;
  outbox *second = outbox_open(e->state, &err);
  assert_non_null(second);
  assert_int_equal(outbox_slot(second), 1);
  uint64_t id = 0;
  json_t *p = json_string("same words");
  assert_int_equal(outbox_append(second, OUTBOX_REPLY, THREAD1, p, &id), 0);
  json_decref(p);
  /* Its daemon died after marking it, before the request left. */
  assert_int_equal(outbox_mark_uncertain(second, id), 0);
  delivery *d2 = delivery_new(second, e->client, NULL, &OPTS);
  assert_non_null(d2);
  assert_int_equal(delivery_start(d2), 0);
  assert_int_equal(outbox_wait_target_empty(second, THREAD1, WAIT_S), 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "same words"), 2);
  delivery_stats st;
  delivery_get_stats(d2, &st);
  assert_true(st.checks >= 1);
  assert_int_equal(st.found, 0);
  delivery_free(d2);

  /* The second mount's record is its slot's. */
  char *record = NULL, *text = NULL;
  assert_true(asprintf(&record, "%s/outbox.1/.delivery.json", e->state) > 0);
  assert_int_equal(statefile_read(record, &text, NULL), 0);
  assert_non_null(strstr(text, THREAD1));
  free(text);
  free(record);
  outbox_close(second);
}

/* A crash left entries behind: one sent for real but still in the journal
 * (uncertain), one marked uncertain whose request never left, and others.  A
 * new delivery on the same folder delivers each exactly once. */
static void test_crash_leftovers(void **state)
{
  struct env *e = *state;
  enum { N = 20 };
  char **texts = texts_make("left over %02d", N);
  uint64_t ids[N];
  for (size_t i = 0; i < N; i++)
    ids[i] = reply(e, THREAD1, texts[i]);
  uint64_t post = append(e, OUTBOX_CHANNEL_POST, GENERAL_ID,
                         json_pack("{s:s}", "text", "channel left over"));
  /* The daemon sent the first reply and the channel post, then died before
   * removing them. */
  cliq_error err;
  assert_int_equal(outbox_mark_uncertain(e->ob, ids[0]), 0);
  assert_int_equal(cliq_reply(e->client, CLIQ_PRIO_WRITE, THREAD1, texts[0],
                              NULL, &err), 0);
  assert_int_equal(outbox_mark_uncertain(e->ob, post), 0);
  assert_int_equal(cliq_post_channel_message(e->client, CLIQ_PRIO_WRITE,
                                             GENERAL_ID, "channel left over",
                                             NULL, &err), 0);
  /* ... and a second one was marked but never reached Cliq. */
  assert_int_equal(outbox_mark_uncertain(e->ob, ids[1]), 0);
  outbox_close(e->ob);

  e->ob = outbox_open(e->state, &err);
  assert_non_null(e->ob);
  assert_int_equal(outbox_depth(e->ob), N + 1);
  start_delivery(e);
  wait_empty(e, THREAD1, 0);
  wait_empty(e, GENERAL_ID, 0);
  assert_once_in_order(&e->emu, THREAD1, texts, N);
  assert_int_equal(count_text(&e->emu, GENERAL_CHAT, "channel left over"), 1);
  delivery_stats st;
  delivery_get_stats(e->dl, &st);
  assert_true(st.checks >= 3);
  assert_int_equal(st.found, 2);
  texts_free(texts, N);
}

/* kill -9 of a daemon in the middle of delivering 20 replies, then a new
 * delivery on its journal: each arrives exactly once, in order. */
static void test_kill9(void **state)
{
  struct env *e = *state;
  enum { N = 20 };
  char **texts = texts_make("kill nine %02d", N);
  for (size_t i = 0; i < N; i++)
    reply(e, THREAD2, texts[i]);
  outbox_close(e->ob);
  e->ob = NULL;
  /* Slow answers, so that the kill lands while requests are in flight. */
  fault(e, "delay", N, 150);

  char *argv[] = {self_exe, "--child", e->state, e->emu.url, NULL};
  pid_t child;
  assert_int_equal(posix_spawn(&child, self_exe, NULL, NULL, argv, environ), 0);
  double deadline = tu_now_mono() + WAIT_S;
  int arrived = 0;
  while (tu_now_mono() < deadline) {
    arrived = 0;
    for (size_t i = 0; i < N; i++)
      arrived += count_text(&e->emu, THREAD2, texts[i]);
    if (arrived >= 5)
      break;
    tu_sleep(0.05);
  }
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  assert_true(arrived >= 5);
  ctl(e, "DELETE", "/_emulator/faults", NULL);

  cliq_error err;
  e->ob = outbox_open(e->state, &err);
  assert_non_null(e->ob);
  start_delivery(e);
  wait_empty(e, THREAD2, 0);
  assert_once_in_order(&e->emu, THREAD2, texts, N);
  texts_free(texts, N);
}

/* fsync on a target returns once it is delivered (0) and reports a refusal
 * of any entry it waited for. */
static void test_wait_target_empty(void **state)
{
  struct env *e = *state;
  ctl(e, "POST", "/_emulator/lock",
      "{\"api\":\"messages.post\",\"seconds\":100000}");
  reply(e, THREAD1, "waited for");
  append(e, OUTBOX_FOLLOWERS_ADD, THREAD1, json_pack("[s]", "nobody"));
  reply(e, THREAD1, "after the refusal");
  struct waiter w;
  waiter_start(e, &w, THREAD1);
  start_delivery(e);
  assert_int_equal(outbox_wait_target_empty(e->ob, THREAD1, 0.3), -ETIMEDOUT);
  assert_int_equal(count_text(&e->emu, THREAD1, "waited for"), 0);
  ctl(e, "POST", "/_emulator/unlock", "{\"api\":\"*\"}");
  waiter_join(&w, -EINVAL);
  assert_int_equal(count_text(&e->emu, THREAD1, "waited for"), 1);
  assert_int_equal(count_text(&e->emu, THREAD1, "after the refusal"), 1);
  reply(e, THREAD1, "then fine");
  wait_empty(e, THREAD1, 0);
  assert_int_equal(count_text(&e->emu, THREAD1, "then fine"), 1);
}

/* ---- child mode ---------------------------------------------------------------- */

static int child_main(const char *state_dir, const char *url)
{
  char *ledger = NULL;
  if (asprintf(&ledger, "%s/gov", state_dir) < 0)
    return 2;
  gov *g = make_gov(ledger);
  cliq_client *c = g ? make_client(url, g) : NULL;
  cliq_error err;
  outbox *ob = c ? outbox_open(state_dir, &err) : NULL;
  delivery *d = ob ? delivery_new(ob, c, NULL, &OPTS) : NULL;
  if (!d || delivery_start(d) != 0)
    return 2;
  for (;;)
    pause(); /* until SIGKILL */
}

int main(int argc, char **argv)
{
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return child_main(argv[2], argv[3]);
  self_exe = realpath(argv[0], NULL);
  if (!self_exe)
    return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hundred_while_locked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_accept_drop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_500_and_drop_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_closed_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_apis_go_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_every_kind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_draft_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_draft_thread_accept_drop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_draft_without_main, setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_text_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_self_learnt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_slots_same_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_leftovers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait_target_empty, setup, teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  free(self_exe);
  return failed;
}
