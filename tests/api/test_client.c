/* tests/api/test_client.c: every call of api/cliq.h against the emulator
 * over real HTTP on 127.0.0.1, checking the parsed results and the effects
 * (through the emulator's state and counters), auth (static token, refresh,
 * 401 -> one refresh -> one retry, token errors with HTTP 200) and every
 * fault kind mapped to its errno.
 *
 * Each test gets its own emulator (fresh organization from ORG below), which
 * its teardown stops, so that tests do not depend on one another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cliq.h"
#include "counting_gate.h"
#include "harness.h"

#define ME "855727961"
#define SCOTT "855727962"
#define TIM "855727963"
#define GENERAL_ID "O5797000000001"
#define GENERAL_CHAT "CT_1207124526552602256_60002085329"
#define THREAD1 GENERAL_CHAT "-T-1291567019566818579"
#define THREAD2 GENERAL_CHAT "-T-2"
#define PARENT1 "1727333520582_47588994306224"
#define FILE_MSG "1727333580000_47588994306225"
#define PARENT2 "1727333640000_47588994306226"
#define NO_THREAD_MSG "1727333700000_47588994306227"

static const char ORG[] =
    "{\"me\":\"" ME "\",\"users\":["
    "{\"user_id\":\"" ME "\",\"email_id\":\"ryan.west@zylker.com\",\"name\":\"Ryan West\"},"
    "{\"user_id\":\"" SCOTT "\",\"email_id\":\"scott.fisher@zylker.com\",\"name\":\"Scott Fisher\"},"
    "{\"user_id\":\"" TIM "\",\"email_id\":\"tim.harrison@zylker.com\",\"name\":\"Tim Harrison\"}],"
    "\"channels\":[{\"channel_id\":\"" GENERAL_ID "\",\"chat_id\":\"" GENERAL_CHAT "\","
    "\"unique_name\":\"general\",\"name\":\"#General\",\"description\":\"Company-wide\","
    "\"members\":[\"" ME "\",\"" SCOTT "\",\"" TIM "\"],"
    "\"messages\":["
    "{\"id\":\"" PARENT1 "\",\"time\":1727333520582,\"sender\":\"" ME "\","
    "\"text\":\"Email campaign kickoff\"},"
    "{\"id\":\"" FILE_MSG "\",\"time\":1727333580000,\"sender\":\"" SCOTT "\","
    "\"type\":\"file\",\"file\":{\"name\":\"plan.pdf\"}},"
    "{\"id\":\"" PARENT2 "\",\"time\":1727333640000,\"sender\":\"" TIM "\","
    "\"text\":\"line one\\nline two\"},"
    "{\"id\":\"" NO_THREAD_MSG "\",\"time\":1727333700000,\"sender\":\"" SCOTT "\","
    "\"text\":\"parent for a new thread\"}],"
    "\"threads\":["
    "{\"chat_id\":\"" THREAD1 "\",\"thread_message_id\":\"" PARENT1 "\","
    "\"title\":\"Email campaign strategy discussion\",\"state\":\"open\","
    "\"followers\":[\"" ME "\",\"" SCOTT "\"],"
    "\"members\":[\"" ME "\",\"" SCOTT "\",\"" TIM "\"],"
    "\"messages\":[{\"id\":\"1727333600000_1\",\"time\":1727333600000,\"sender\":\"" SCOTT "\","
    "\"text\":\"first reply\"},{\"id\":\"1727333660000_2\",\"time\":1727333660000,"
    "\"sender\":\"" ME "\",\"text\":\"second reply\"}]},"
    "{\"chat_id\":\"" THREAD2 "\",\"thread_message_id\":\"" PARENT2 "\","
    "\"title\":\"Closed one\",\"state\":\"closed\",\"followers\":[\"" ME "\"],"
    "\"messages\":[{\"id\":\"1727333650000_3\",\"time\":1727333650000,"
    "\"sender\":\"" TIM "\",\"text\":\"done\"}]}]},"
    "{\"channel_id\":\"O5797000000002\",\"chat_id\":\"CT_2_2\",\"unique_name\":\"random\","
    "\"name\":\"#Random\",\"messages\":[{\"id\":\"1727333520000_9\",\"time\":1727333520000,"
    "\"sender\":\"" SCOTT "\",\"text\":\"hello random\"}]},"
    "{\"channel_id\":\"O5797000000003\",\"chat_id\":\"CT_3_3\",\"unique_name\":\"not-joined\","
    "\"name\":\"#NotJoined\",\"joined\":false}]}";

struct env {
  struct emu emu;
  char dir[64];
  char org_path[96];
  struct counting_gate gate;
  cliq_client *client;
};

static int start_env(void **state, const char *const *extra)
{
  struct env *e = calloc(1, sizeof *e);
  counting_gate_init(&e->gate);
  snprintf(e->dir, sizeof e->dir, "/tmp/cliq-api-test.XXXXXX");
  if (!mkdtemp(e->dir))
    return -1;
  snprintf(e->org_path, sizeof e->org_path, "%s/org.json", e->dir);
  FILE *f = fopen(e->org_path, "w");
  if (!f)
    return -1;
  fputs(ORG, f);
  fclose(f);
  const char *args[16] = {"--quiet", "--org", e->org_path};
  size_t n = 3;
  for (size_t i = 0; extra && extra[i] && n < 15; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  *state = e;
  return emu_start(&e->emu, args);
}

static int setup(void **state)
{
  return start_env(state, NULL);
}

static int teardown(void **state)
{
  struct env *e = *state;
  if (!e)
    return 0;
  cliq_client_free(e->client);
  emu_stop(&e->emu);
  unlink(e->org_path);
  rmdir(e->dir);
  counting_gate_destroy(&e->gate);
  free(e);
  return 0;
}

static cliq_client *client_with(struct env *e, const cliq_client_config *base)
{
  cliq_client_config cfg = *base;
  cfg.api_url = e->emu.url;
  cfg.accounts_url = e->emu.url;
  cliq_gate g = counting_gate_hook(&e->gate);
  cliq_error err = {0};
  cliq_client_free(e->client);
  e->client = cliq_client_new(&cfg, &g, &err);
  if (!e->client)
    fail_msg("client: %s", err.message);
  return e->client;
}

static cliq_client *static_client(struct env *e)
{
  cliq_client_config cfg = {.access_token = EMU_STATIC_TOKEN};
  return client_with(e, &cfg);
}

static cliq_client *refresh_client(struct env *e, const char *secret)
{
  cliq_client_config cfg = {.client_id = EMU_CLIENT_ID,
                            .client_secret = secret,
                            .refresh_token = EMU_REFRESH_TOKEN};
  return client_with(e, &cfg);
}

static void ctl(struct env *e, const char *method, const char *path,
                const char *body)
{
  json_t *r = emu_ctl(&e->emu, method, path, body);
  if (!r)
    fail_msg("control %s %s failed", method, path);
  json_decref(r);
}

static void fault(struct env *e, const char *api, const char *kind, int delay_ms)
{
  char body[256];
  snprintf(body, sizeof body,
           "{\"api\":\"%s\",\"kind\":\"%s\",\"count\":1,\"delay_ms\":%d}", api,
           kind, delay_ms);
  ctl(e, "POST", "/_emulator/faults", body);
}

static void assert_err(int r, const cliq_error *err, int want)
{
  if (r != -want || err->err != want)
    fail_msg("want errno %d, got r=%d err=%d (%s)", want, r, err->err,
             err->message);
  assert_true(strlen(err->message) > 0);
}

static bool has_user(const cliq_user_list *l, const char *id)
{
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->items[i].user_id, id) == 0)
      return true;
  return false;
}

/* Thread `chat_id` in the emulator's state (a new reference), or NULL. */
static json_t *state_thread(struct env *e, const char *chat_id)
{
  json_t *st = emu_ctl(&e->emu, "GET", "/_emulator/state", NULL);
  json_t *found = NULL;
  size_t i, j;
  json_t *ch, *th;
  json_array_foreach(json_object_get(st, "channels"), i, ch)
    json_array_foreach(json_object_get(ch, "threads"), j, th)
      if (strcmp(json_string_value(json_object_get(th, "chat_id")), chat_id) == 0)
        found = json_incref(th);
  json_decref(st);
  return found;
}

/* ---- reads ------------------------------------------------------------- */

static void test_list_channels(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel_list list;
  cliq_error err;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), 0);
  assert_int_equal(list.count, 2); /* not-joined is left out */
  const cliq_channel *g = NULL, *r = NULL;
  for (size_t i = 0; i < list.count; i++) {
    if (strcmp(list.items[i].unique_name, "general") == 0)
      g = &list.items[i];
    if (strcmp(list.items[i].unique_name, "random") == 0)
      r = &list.items[i];
  }
  assert_non_null(g);
  assert_non_null(r);
  assert_string_equal(g->channel_id, GENERAL_ID);
  assert_string_equal(g->chat_id, GENERAL_CHAT);
  assert_string_equal(g->name, "#General");
  assert_string_equal(g->description, "Company-wide");
  assert_int_equal(g->participant_count, 3);
  assert_int_equal(g->last_message_ms, 1727333700000);
  assert_string_equal(json_string_value(json_object_get(g->raw, "total_message_count")),
                      "4");
  assert_string_equal(r->chat_id, "CT_2_2");
  cliq_channel_list_clear(&list);
  assert_int_equal(emu_count(&e->emu, "channels.list"), 1);
}

static void test_get_channel(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel ch;
  cliq_error err;
  assert_int_equal(cliq_get_channel(c, CLIQ_PRIO_READ, GENERAL_ID, &ch, &err), 0);
  assert_string_equal(ch.unique_name, "general");
  assert_string_equal(ch.chat_id, GENERAL_CHAT);
  assert_int_equal(ch.last_message_ms, 1727333700000);
  cliq_channel_clear(&ch);
  assert_err(cliq_get_channel(c, CLIQ_PRIO_READ, "O0000000000404", &ch, &err), &err,
             ENOENT);
  assert_int_equal(err.http_status, 404);
}

static void test_list_threads(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_thread_list list;
  cliq_error err;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, GENERAL_ID, &list, &err), 0);
  assert_int_equal(list.count, 2);
  const cliq_thread *t1 = NULL, *t2 = NULL;
  for (size_t i = 0; i < list.count; i++) {
    if (strcmp(list.items[i].chat_id, THREAD1) == 0)
      t1 = &list.items[i];
    if (strcmp(list.items[i].chat_id, THREAD2) == 0)
      t2 = &list.items[i];
  }
  assert_non_null(t1);
  assert_non_null(t2);
  assert_string_equal(t1->title, "Email campaign strategy discussion");
  assert_string_equal(t1->parent_chat_id, GENERAL_CHAT);
  assert_string_equal(t1->thread_message_id, PARENT1);
  assert_int_equal(t1->state, CLIQ_THREAD_OPEN);
  assert_int_equal(t1->follower_count, 2);
  assert_true(t1->is_follower);
  assert_int_equal(t1->last_message_ms, 1727333660000);
  assert_int_equal(t1->message_count, 2);
  assert_string_equal(t2->title, "Closed one");
  assert_int_equal(t2->state, CLIQ_THREAD_CLOSED);
  cliq_thread_list_clear(&list);
  assert_err(cliq_list_threads(c, CLIQ_PRIO_READ, "O0000000000404", &list, &err),
             &err, ENOENT);
}

static void test_get_messages(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_message_list list;
  cliq_error err;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, GENERAL_CHAT, 0, 0, 0,
                                     &list, &err), 0);
  assert_int_equal(list.count, 4);
  assert_string_equal(list.items[0].id, PARENT1);
  assert_string_equal(list.items[0].text, "Email campaign kickoff");
  assert_string_equal(list.items[0].sender_id, ME);
  assert_string_equal(list.items[0].sender_name, "Ryan West");
  assert_string_equal(list.items[0].thread_chat_id, THREAD1);
  assert_int_equal(list.items[0].time_ms, 1727333520582);
  assert_string_equal(list.items[1].type, "file");
  assert_string_equal(list.items[1].text, "[file: plan.pdf]");
  assert_string_equal(list.items[2].text, "line one\nline two");
  assert_string_equal(list.items[2].thread_chat_id, THREAD2);
  assert_null(list.items[3].thread_chat_id);
  for (size_t i = 1; i < list.count; i++)
    assert_true(list.items[i - 1].time_ms <= list.items[i].time_ms);
  cliq_message_list_clear(&list);

  /* a range, both ends inclusive */
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, GENERAL_CHAT, 1727333580000,
                                     1727333640000, 0, &list, &err), 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].id, FILE_MSG);
  assert_string_equal(list.items[1].id, PARENT2);
  cliq_message_list_clear(&list);

  /* a thread's replies, limited to the newest one */
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 1, &list, &err), 0);
  assert_int_equal(list.count, 1);
  assert_string_equal(list.items[0].text, "second reply");
  cliq_message_list_clear(&list);

  assert_err(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_404_404", 0, 0, 0, &list, &err),
             &err, ENOENT);
  assert_int_equal(emu_count(&e->emu, "chats.messages"), 4);
}

static void test_get_message(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_message m;
  cliq_error err;
  /* the three spellings of one id */
  const char *ids[] = {PARENT1, "1727333520582%2047588994306224",
                       "1727333520582 47588994306224"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, GENERAL_CHAT, ids[i], &m, &err), 0);
    assert_string_equal(m.id, PARENT1);
    assert_int_equal(m.time_ms, 1727333520582); /* sent as a string here */
    assert_string_equal(m.text, "Email campaign kickoff");
    assert_string_equal(m.thread_chat_id, THREAD1);
    /* A thread's parent counts the thread's messages (the refresher
     * watches followed threads with it). */
    assert_int_equal(m.thread_messages, 2);
    cliq_message_clear(&m);
  }
  assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, GENERAL_CHAT, FILE_MSG, &m, &err), 0);
  assert_string_equal(m.text, "[file: plan.pdf]");
  assert_int_equal(m.thread_messages, -1);
  cliq_message_clear(&m);
  assert_err(cliq_get_message(c, CLIQ_PRIO_READ, GENERAL_CHAT, "1_404", &m, &err), &err,
             ENOENT);
  assert_string_equal(err.code, "message_not_found");
  assert_int_equal(emu_count(&e->emu, "messages.get"), 5);
}

static void test_get_thread(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_string_equal(t.chat_id, THREAD1);
  assert_string_equal(t.parent_chat_id, GENERAL_CHAT);
  assert_string_equal(t.thread_message_id, PARENT1);
  assert_string_equal(t.title, "Email campaign strategy discussion");
  assert_int_equal(t.follower_count, 2);
  assert_true(t.is_follower);
  assert_int_equal(t.state, CLIQ_THREAD_OPEN);
  assert_non_null(json_object_get(t.raw, "parent_participant"));
  cliq_thread_clear(&t);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD2, &t, &err), 0);
  assert_int_equal(t.state, CLIQ_THREAD_CLOSED);
  cliq_thread_clear(&t);
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, GENERAL_CHAT "-T-404", &t, &err), &err,
             ENOENT);
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, "not a thread id", &t, &err), &err,
             EINVAL);
  assert_string_equal(err.code, "thread_chatid_invalid");
}

static void test_get_main_message(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_message m;
  cliq_error err;
  assert_int_equal(cliq_get_main_message(c, CLIQ_PRIO_READ, THREAD1, &m, &err), 0);
  assert_string_equal(m.id, PARENT1);
  /* ISO 8601 here (the emulator sends whole seconds) */
  assert_int_equal(m.time_ms / 1000, 1727333520);
  assert_string_equal(m.text, "Email campaign kickoff");
  assert_string_equal(m.thread_chat_id, THREAD1);
  assert_true(json_is_string(json_object_get(m.raw, "time")));
  cliq_message_clear(&m);
  assert_int_equal(emu_count(&e->emu, "threads.main"), 1);
}

static void test_members(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_user_list users;
  cliq_error err;
  assert_int_equal(cliq_get_members(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 3);
  assert_true(has_user(&users, ME) && has_user(&users, SCOTT) && has_user(&users, TIM));
  for (size_t i = 0; i < users.count; i++)
    if (strcmp(users.items[i].user_id, TIM) == 0) {
      assert_string_equal(users.items[i].email_id, "tim.harrison@zylker.com");
      assert_string_equal(users.items[i].name, "Tim Harrison");
    }
  cliq_user_list_clear(&users);
  assert_int_equal(emu_count(&e->emu, "chats.members"), 1);
}

/* ---- followers ---------------------------------------------------------- */

static void test_followers(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_user_list users;
  cliq_error err;
  assert_int_equal(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 2);
  assert_true(has_user(&users, ME) && has_user(&users, SCOTT));
  cliq_user_list_clear(&users);
  assert_int_equal(cliq_get_nonfollowers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 1);
  assert_string_equal(users.items[0].user_id, TIM);
  assert_string_equal(users.items[0].name, "Tim Harrison");
  cliq_user_list_clear(&users);

  const char *tim[] = {TIM};
  assert_int_equal(cliq_add_followers(c, CLIQ_PRIO_WRITE, THREAD1, tim, 1, &err), 0);
  assert_int_equal(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 3);
  assert_true(has_user(&users, TIM));
  cliq_user_list_clear(&users);
  assert_int_equal(cliq_get_nonfollowers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 0);
  cliq_user_list_clear(&users);

  const char *two[] = {TIM, SCOTT};
  assert_int_equal(cliq_remove_followers(c, CLIQ_PRIO_WRITE, THREAD1, two, 2, &err), 0);
  assert_int_equal(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 1);
  assert_string_equal(users.items[0].user_id, ME);
  cliq_user_list_clear(&users);
  assert_int_equal(cliq_get_nonfollowers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_int_equal(users.count, 2);
  assert_true(has_user(&users, TIM) && has_user(&users, SCOTT));
  cliq_user_list_clear(&users);

  assert_int_equal(emu_count(&e->emu, "threads.followers.add"), 1);
  assert_int_equal(emu_count(&e->emu, "threads.followers.remove"), 1);
  assert_int_equal(emu_count(&e->emu, "threads.followers.get"), 3);
  assert_int_equal(emu_count(&e->emu, "threads.nonfollowers"), 3);
}

static void test_follow_unfollow(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_unfollow(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_false(t.is_follower);
  assert_int_equal(t.follower_count, 1);
  cliq_thread_clear(&t);
  assert_int_equal(cliq_follow(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_true(t.is_follower);
  cliq_thread_clear(&t);
  /* the same through the state endpoint */
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "unfollow", &err), 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_false(t.is_follower);
  cliq_thread_clear(&t);
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "follow", &err), 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_true(t.is_follower);
  cliq_thread_clear(&t);
  assert_int_equal(emu_count(&e->emu, "threads.follow"), 1);
  assert_int_equal(emu_count(&e->emu, "threads.unfollow"), 1);
  assert_int_equal(emu_count(&e->emu, "threads.update"), 2);
}

static void test_mute_unmute_leave(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  assert_int_equal(cliq_mute(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  json_t *th = state_thread(e, THREAD1);
  assert_true(json_is_true(json_object_get(th, "muted")));
  json_decref(th);
  assert_int_equal(cliq_unmute(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  th = state_thread(e, THREAD1);
  assert_true(json_is_false(json_object_get(th, "muted")));
  json_decref(th);
  assert_int_equal(cliq_leave(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  th = state_thread(e, THREAD1);
  assert_true(json_is_true(json_object_get(th, "left")));
  json_decref(th);
  cliq_user_list users;
  assert_int_equal(cliq_get_members(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  assert_false(has_user(&users, ME));
  cliq_user_list_clear(&users);
  assert_err(cliq_mute(c, CLIQ_PRIO_WRITE, GENERAL_CHAT "-T-404", &err), &err, ENOENT);
}

/* ---- writes -------------------------------------------------------------- */

static void test_reply_then_get_messages(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  char *id = NULL;
  const char *text = "hello from the api test\n\tsecond line \"quoted\" \xc3\xa9";
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, text, &id, &err), 0);
  assert_non_null(id);
  assert_non_null(strchr(id, '_'));
  cliq_message_list list;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), 0);
  assert_int_equal(list.count, 3);
  const cliq_message *last = &list.items[list.count - 1];
  assert_string_equal(last->id, id);
  assert_string_equal(last->text, text);
  assert_string_equal(last->sender_id, ME);
  cliq_message_list_clear(&list);
  free(id);
  /* too long for Cliq */
  char *big = malloc(5002);
  memset(big, 'x', 5001);
  big[5001] = '\0';
  assert_err(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, big, &id, &err), &err, EINVAL);
  free(big);
}

static void test_post_channel_message(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  char *id = NULL;
  assert_int_equal(cliq_post_channel_message(c, CLIQ_PRIO_WRITE, GENERAL_ID,
                                             "to the whole channel", &id, &err), 0);
  assert_non_null(id);
  cliq_message m;
  assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, GENERAL_CHAT, id, &m, &err), 0);
  assert_string_equal(m.text, "to the whole channel");
  assert_null(m.thread_chat_id);
  cliq_message_clear(&m);
  cliq_message_list list;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, GENERAL_CHAT, 0, 0, 0, &list, &err), 0);
  assert_int_equal(list.count, 5);
  assert_string_equal(list.items[4].id, id);
  cliq_message_list_clear(&list);
  free(id);
  assert_err(cliq_post_channel_message(c, CLIQ_PRIO_WRITE, "O5797000000003", "x",
                                       NULL, &err), &err, EACCES); /* not joined */
  assert_err(cliq_post_channel_message(c, CLIQ_PRIO_WRITE, "O0000000000404", "x",
                                       NULL, &err), &err, ENOENT);
}

static void test_close_then_reply(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  cliq_thread t;
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "close", &err), 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_int_equal(t.state, CLIQ_THREAD_CLOSED);
  cliq_thread_clear(&t);
  assert_err(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, "too late", NULL, &err), &err, EACCES);
  assert_string_equal(err.code, "operation_not_allowed");
  assert_int_equal(err.http_status, 400);
  cliq_message_list list;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), 0);
  assert_int_equal(list.count, 2); /* nothing was added */
  cliq_message_list_clear(&list);

  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "reopen", &err), 0);
  cliq_thread_list threads;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, GENERAL_ID, &threads, &err), 0);
  for (size_t i = 0; i < threads.count; i++)
    if (strcmp(threads.items[i].chat_id, THREAD1) == 0)
      assert_int_equal(threads.items[i].state, CLIQ_THREAD_OPEN);
  cliq_thread_list_clear(&threads);
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, "back again", NULL, &err), 0);
  /* the already closed thread of the org */
  assert_err(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD2, "no", NULL, &err), &err, EACCES);
}

static void test_create_thread(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  char *thread = NULL, *msg = NULL;
  assert_int_equal(cliq_create_thread(c, CLIQ_PRIO_WRITE, GENERAL_ID, GENERAL_CHAT,
                                      "1727333700000%2047588994306227", "Release plan",
                                      "first reply of the new thread", &thread, &msg,
                                      &err), 0);
  assert_non_null(thread);
  assert_non_null(msg);
  assert_int_equal(strncmp(thread, GENERAL_CHAT "-T-", strlen(GENERAL_CHAT "-T-")), 0);

  cliq_thread_list list;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, GENERAL_ID, &list, &err), 0);
  assert_int_equal(list.count, 3);
  bool found = false;
  for (size_t i = 0; i < list.count; i++)
    if (strcmp(list.items[i].chat_id, thread) == 0) {
      found = true;
      assert_string_equal(list.items[i].title, "Release plan");
      assert_string_equal(list.items[i].thread_message_id, NO_THREAD_MSG);
      assert_int_equal(list.items[i].state, CLIQ_THREAD_OPEN);
    }
  assert_true(found);
  cliq_thread_list_clear(&list);

  cliq_thread t;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, thread, &t, &err), 0);
  assert_string_equal(t.title, "Release plan");
  assert_true(t.is_follower);
  cliq_thread_clear(&t);
  cliq_message_list msgs;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, thread, 0, 0, 0, &msgs, &err), 0);
  assert_int_equal(msgs.count, 1);
  assert_string_equal(msgs.items[0].id, msg);
  assert_string_equal(msgs.items[0].text, "first reply of the new thread");
  cliq_message_list_clear(&msgs);
  cliq_message main;
  assert_int_equal(cliq_get_main_message(c, CLIQ_PRIO_READ, thread, &main, &err), 0);
  assert_string_equal(main.id, NO_THREAD_MSG);
  cliq_message_clear(&main);
  free(thread);
  free(msg);
  /* the chat id came from the parent message (one messages.get) */
  assert_int_equal(emu_count(&e->emu, "messages.get"), 1);

  assert_err(cliq_create_thread(c, CLIQ_PRIO_WRITE, GENERAL_ID, GENERAL_CHAT, "1_404",
                                "x", "y", &thread, &msg, &err), &err, EINVAL);
  assert_null(thread);
}

/* ---- paging ------------------------------------------------------------ */

static int setup_many_channels(void **state)
{
  const char *args[] = {"--synthetic", "130x1x1", NULL};
  struct env *e = calloc(1, sizeof *e);
  counting_gate_init(&e->gate);
  *state = e;
  const char *all[] = {"--quiet", args[0], args[1], NULL};
  return emu_start(&e->emu, all);
}

static int setup_many_threads(void **state)
{
  struct env *e = calloc(1, sizeof *e);
  counting_gate_init(&e->gate);
  *state = e;
  const char *all[] = {"--quiet", "--synthetic", "1x230x1", NULL};
  return emu_start(&e->emu, all);
}

static void test_channel_pages(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel_list list;
  cliq_error err;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), 0);
  assert_int_equal(list.count, 130);
  for (size_t i = 1; i < list.count; i++)
    assert_string_not_equal(list.items[i - 1].channel_id, list.items[i].channel_id);
  cliq_channel_list_clear(&list);
  assert_int_equal(emu_count(&e->emu, "channels.list"), 2);
  assert_int_equal(e->gate.acquired[CLIQ_API_CHANNELS_LIST], 2);
}

static void test_thread_pages(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel_list channels;
  cliq_error err;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_READ, &channels, &err), 0);
  assert_int_equal(channels.count, 1);
  cliq_thread_list list;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, channels.items[0].channel_id,
                                     &list, &err), 0);
  assert_int_equal(list.count, 230);
  for (size_t i = 0; i < list.count; i++)
    assert_string_equal(list.items[i].parent_chat_id, channels.items[0].chat_id);
  cliq_thread_list_clear(&list);
  cliq_channel_list_clear(&channels);
  assert_int_equal(emu_count(&e->emu, "threads.list"), 3);
}

/* ---- auth ---------------------------------------------------------------- */

static void test_refresh_after_expiry(void **state)
{
  struct env *e = *state;
  cliq_client *c = refresh_client(e, EMU_CLIENT_SECRET);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  cliq_thread_clear(&t);
  assert_int_equal(emu_count(&e->emu, "oauth.token"), 1);
  assert_string_equal(cliq_client_auth_state(c), "valid");

  ctl(e, "POST", "/_emulator/expire-tokens", NULL);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  assert_string_equal(t.title, "Email campaign strategy discussion");
  cliq_thread_clear(&t);
  assert_int_equal(emu_count(&e->emu, "oauth.token"), 2); /* hit once */
  assert_int_equal(emu_count(&e->emu, "threads.get"), 3); /* 200, 401, 200 */
  assert_int_equal(e->gate.acquired[CLIQ_API_OAUTH_TOKEN], 2);
  assert_int_equal(e->gate.acquired[CLIQ_API_THREADS_GET], 3);

  /* a 401 fault on a valid token: one refresh, one retry */
  fault(e, "threads.get", "401", 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  cliq_thread_clear(&t);
  assert_int_equal(emu_count(&e->emu, "oauth.token"), 3);

  /* two 401s in a row: EACCES, no third refresh, no token in the message */
  fault(e, "threads.get", "401", 0);
  fault(e, "threads.get", "401", 0);
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), &err, EACCES);
  assert_int_equal(emu_count(&e->emu, "oauth.token"), 4);
  assert_null(strstr(err.message, EMU_REFRESH_TOKEN));
  assert_null(strstr(err.message, EMU_CLIENT_SECRET));
  assert_null(strstr(err.message, "Zoho-oauthtoken"));
}

static void test_wrong_client_secret(void **state)
{
  struct env *e = *state;
  cliq_client *c = refresh_client(e, "not-the-emulator-secret");
  cliq_thread t;
  cliq_error err;
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), &err, EACCES);
  assert_string_equal(err.code, "invalid_client_secret");
  assert_non_null(strstr(err.message, "invalid_client_secret"));
  assert_null(strstr(err.message, "not-the-emulator-secret"));
  assert_null(strstr(err.message, EMU_REFRESH_TOKEN));
  /* a person must act: the state says so, the message says what to do */
  assert_string_equal(cliq_client_auth_state(c), "rejected");
  assert_non_null(strstr(err.message, "cliqfs auth"));
  assert_int_equal(emu_count(&e->emu, "oauth.token"), 1);
  assert_int_equal(emu_count(&e->emu, "threads.get"), 0);
}

static int setup_no_static(void **state)
{
  const char *extra[] = {"--no-static-token", NULL};
  return start_env(state, extra);
}

static void test_static_token_refused(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel_list list;
  cliq_error err;
  assert_err(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), &err, EACCES);
  assert_int_equal(err.http_status, 401);
  assert_null(strstr(err.message, EMU_STATIC_TOKEN));
  assert_null(strstr(err.code, EMU_STATIC_TOKEN));
  assert_int_equal(emu_count(&e->emu, "channels.list"), 1); /* no retry */
  assert_string_equal(cliq_client_auth_state(c), "rejected");
  assert_non_null(strstr(err.message, "put a new one in the config"));
}

static void test_oauth_exchange_code(void **state)
{
  struct env *e = *state;
  char *refresh = NULL, *access = NULL;
  cliq_error err;
  assert_int_equal(cliq_oauth_exchange_code(e->emu.url, EMU_CLIENT_ID, EMU_CLIENT_SECRET,
                                            EMU_AUTH_CODE, &refresh, &access, &err), 0);
  assert_non_null(refresh);
  assert_non_null(access);
  /* the new refresh token works */
  cliq_client_config cfg = {.client_id = EMU_CLIENT_ID, .client_secret = EMU_CLIENT_SECRET,
                            .refresh_token = refresh};
  cliq_client *c = client_with(e, &cfg);
  cliq_thread t;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  cliq_thread_clear(&t);
  free(refresh);
  free(access);
  /* single use */
  assert_err(cliq_oauth_exchange_code(e->emu.url, EMU_CLIENT_ID, EMU_CLIENT_SECRET,
                                      EMU_AUTH_CODE, &refresh, &access, &err), &err, EACCES);
  assert_string_equal(err.code, "invalid_code");
  assert_null(refresh);
}

/* ---- faults -------------------------------------------------------------- */

static void test_fault_timeout(void **state)
{
  struct env *e = *state;
  cliq_client_config cfg = {.access_token = EMU_STATIC_TOKEN, .timeout_ms = 300};
  cliq_client *c = client_with(e, &cfg);
  fault(e, "chats.messages", "delay", 1500);
  cliq_message_list list;
  cliq_error err;
  assert_err(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), &err,
             ETIMEDOUT);
  assert_int_equal(e->gate.last_status[CLIQ_API_CHATS_MESSAGES], 0);
  /* the next request (no fault) works on the same client */
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), 0);
  cliq_message_list_clear(&list);
}

static void test_fault_drop(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  fault(e, "threads.get", "drop", 0);
  cliq_thread t;
  cliq_error err;
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), &err, EIO);
  assert_int_equal(err.http_status, 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  cliq_thread_clear(&t);
}

static void test_fault_accept_drop(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  fault(e, "messages.post", "accept_drop", 0);
  cliq_error err;
  assert_err(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, "maybe delivered", NULL, &err),
             &err, EIO);
  /* EIO does not mean "not delivered": the emulator stored it */
  cliq_message_list list;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), 0);
  assert_string_equal(list.items[list.count - 1].text, "maybe delivered");
  cliq_message_list_clear(&list);
}

static void test_fault_5xx(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_channel_list list;
  cliq_error err;
  fault(e, "channels.list", "500", 0);
  assert_err(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), &err, EIO);
  assert_int_equal(err.http_status, 500);
  fault(e, "channels.list", "503", 0);
  assert_err(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), &err, EIO);
  assert_int_equal(err.http_status, 503);
  assert_int_equal(e->gate.last_status[CLIQ_API_CHANNELS_LIST], 503);
}

static void test_fault_bad_bodies(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  cliq_message_list list;
  fault(e, "chats.messages", "invalid_json", 0);
  assert_err(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), &err,
             EIO);
  assert_non_null(strstr(err.message, "unparsable"));
  fault(e, "chats.messages", "truncate", 0);
  assert_err(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err), &err,
             EIO);
  cliq_thread t;
  fault(e, "threads.get", "truncate", 0);
  assert_err(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), &err, EIO);
  /* A garbled 2xx answer to a write proves nothing: EIO, never success. */
  fault(e, "messages.post", "invalid_json", 0);
  char *id = NULL;
  assert_err(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, "garbled answer", &id, &err),
             &err, EIO);
  assert_null(id);
  fault(e, "threads.update", "invalid_json", 0);
  assert_err(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "close", &err),
             &err, EIO);
}

static void test_oversize_body(void **state)
{
  struct env *e = *state;
  cliq_client_config cfg = {.access_token = EMU_STATIC_TOKEN, .max_body_bytes = 256};
  cliq_client *c = client_with(e, &cfg);
  cliq_message_list list;
  cliq_error err;
  assert_err(cliq_get_messages(c, CLIQ_PRIO_READ, GENERAL_CHAT, 0, 0, 0, &list, &err),
             &err, EIO);
  assert_non_null(strstr(err.message, "larger than 256"));
}

static void test_throttle(void **state)
{
  struct env *e = *state;
  cliq_client *c = static_client(e);
  cliq_error err;
  cliq_user_list users;
  fault(e, "threads.followers.get", "throttle", 0);
  assert_err(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), &err, EAGAIN);
  assert_int_equal(err.http_status, 429);
  /* locked: the next request is refused too, other APIs are not */
  assert_err(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), &err, EAGAIN);
  assert_int_equal(cliq_get_nonfollowers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  cliq_user_list_clear(&users);

  ctl(e, "POST", "/_emulator/config", "{\"throttle_style\":\"400\"}");
  fault(e, "chats.members", "throttle", 0);
  assert_err(cliq_get_members(c, CLIQ_PRIO_READ, THREAD1, &users, &err), &err, EAGAIN);
  assert_int_equal(err.http_status, 400);
  assert_string_equal(err.code, "request_limit_exceeded");
  assert_string_equal(e->gate.last_code[CLIQ_API_CHATS_MEMBERS], "request_limit_exceeded");

  /* a real budget overrun: chats.messages allows 15 a minute */
  ctl(e, "POST", "/_emulator/unlock", "{\"api\":\"*\"}");
  int r = 0, i;
  cliq_message_list list;
  for (i = 0; i < 30 && r == 0; i++) {
    r = cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &list, &err);
    if (r == 0)
      cliq_message_list_clear(&list);
  }
  assert_err(r, &err, EAGAIN);
  assert_int_equal(i, 16);
}

/* ---- the gate and the server agree ---------------------------------------- */

static void test_gate_matches_server_counts(void **state)
{
  struct env *e = *state;
  cliq_client *c = refresh_client(e, EMU_CLIENT_SECRET);
  cliq_error err;
  cliq_channel_list channels;
  cliq_thread_list threads;
  cliq_message_list msgs;
  cliq_user_list users;
  cliq_message m;
  cliq_thread t;
  cliq_channel ch;
  char *thread = NULL;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_BACKGROUND, &channels, &err), 0);
  cliq_channel_list_clear(&channels);
  assert_int_equal(cliq_get_channel(c, CLIQ_PRIO_READ, GENERAL_ID, &ch, &err), 0);
  cliq_channel_clear(&ch);
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, GENERAL_ID, &threads, &err), 0);
  cliq_thread_list_clear(&threads);
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, THREAD1, 0, 0, 0, &msgs, &err), 0);
  cliq_message_list_clear(&msgs);
  assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, GENERAL_CHAT, PARENT1, &m, &err), 0);
  cliq_message_clear(&m);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, THREAD1, &t, &err), 0);
  cliq_thread_clear(&t);
  assert_int_equal(cliq_get_main_message(c, CLIQ_PRIO_READ, THREAD1, &m, &err), 0);
  cliq_message_clear(&m);
  assert_int_equal(cliq_get_followers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  cliq_user_list_clear(&users);
  assert_int_equal(cliq_get_nonfollowers(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  cliq_user_list_clear(&users);
  assert_int_equal(cliq_get_members(c, CLIQ_PRIO_READ, THREAD1, &users, &err), 0);
  cliq_user_list_clear(&users);
  const char *tim[] = {TIM};
  assert_int_equal(cliq_add_followers(c, CLIQ_PRIO_WRITE, THREAD1, tim, 1, &err), 0);
  assert_int_equal(cliq_remove_followers(c, CLIQ_PRIO_WRITE, THREAD1, tim, 1, &err), 0);
  assert_int_equal(cliq_unfollow(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_follow(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "close", &err), 0);
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, THREAD1, "reopen", &err), 0);
  assert_int_equal(cliq_mute(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_unmute(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, THREAD1, "r", NULL, &err), 0);
  assert_int_equal(cliq_post_channel_message(c, CLIQ_PRIO_WRITE, GENERAL_ID, "p", NULL,
                                             &err), 0);
  assert_int_equal(cliq_create_thread(c, CLIQ_PRIO_WRITE, GENERAL_ID, GENERAL_CHAT,
                                      NO_THREAD_MSG, "New", "n", &thread, NULL, &err), 0);
  free(thread);
  assert_int_equal(cliq_leave(c, CLIQ_PRIO_WRITE, THREAD1, &err), 0);

  json_t *counters = emu_ctl(&e->emu, "GET", "/_emulator/counters", NULL);
  assert_non_null(counters);
  int total = 0;
  for (int api = 0; api < CLIQ_API_COUNT; api++) {
    json_t *row = json_object_get(json_object_get(counters, "apis"), cliq_api_name(api));
    long served = row ? (long)json_integer_value(json_object_get(row, "total")) : 0;
    if (served != e->gate.acquired[api] || e->gate.acquired[api] == 0)
      fail_msg("%s: server saw %ld, gate let %d through", cliq_api_name(api), served,
               e->gate.acquired[api]);
    assert_int_equal(e->gate.recorded[api], e->gate.acquired[api]);
    total += e->gate.acquired[api];
  }
  assert_int_equal(json_integer_value(json_object_get(counters, "total")), total);
  json_decref(counters);
  assert_int_equal(counting_gate_in_flight(&e->gate), 0);
  assert_int_equal(e->gate.unmatched_records, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_list_channels),
      T(test_get_channel),
      T(test_list_threads),
      T(test_get_messages),
      T(test_get_message),
      T(test_get_thread),
      T(test_get_main_message),
      T(test_members),
      T(test_followers),
      T(test_follow_unfollow),
      T(test_mute_unmute_leave),
      T(test_reply_then_get_messages),
      T(test_post_channel_message),
      T(test_close_then_reply),
      T(test_create_thread),
      cmocka_unit_test_setup_teardown(test_channel_pages, setup_many_channels, teardown),
      cmocka_unit_test_setup_teardown(test_thread_pages, setup_many_threads, teardown),
      T(test_refresh_after_expiry),
      T(test_wrong_client_secret),
      cmocka_unit_test_setup_teardown(test_static_token_refused, setup_no_static,
                                      teardown),
      T(test_oauth_exchange_code),
      T(test_fault_timeout),
      T(test_fault_drop),
      T(test_fault_accept_drop),
      T(test_fault_5xx),
      T(test_fault_bad_bodies),
      T(test_oversize_body),
      T(test_throttle),
      T(test_gate_matches_server_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
