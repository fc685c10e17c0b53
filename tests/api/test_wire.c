/* tests/api/test_wire.c: the request path, seen from a tiny HTTP server on
 * 127.0.0.1 that records what the client sends: the gate around every
 * request, the Authorization header, token requests (form body, sharing,
 * refresh on 401, errors with HTTP 200), paging, bodies of writes, path
 * escaping, timeouts, oversize answers.  No token may reach an error
 * message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/cliq.h"
#include "api/log.h"
#include "counting_gate.h"
#include "wire_server.h"

#define TOKEN "wire-static-token-0001"
#define CLIENT_SECRET "wire-client-secret-0002"
#define REFRESH "wire-refresh-token-0003"

static const char THREAD_BODY[] =
    "{\"url\":\"/api/v3/threads/CT_1_2-T-3\",\"type\":\"chat_thread\","
    "\"data\":{\"chat_id\":\"CT_1_2-T-3\",\"parent_chat_id\":\"CT_1_2\","
    "\"thread_message_id\":\"100%201\",\"title\":\"T\",\"follower_count\":1,"
    "\"is_follower\":true,\"thread_state\":\"open\"}}";
static const char MESSAGES_BODY[] =
    "{\"data\":[{\"id\":\"200_2\",\"time\":200,\"content\":{\"text\":\"b\"}},"
    "{\"id\":\"100_1\",\"time\":100,\"content\":{\"text\":\"a\"}}]}";

struct fixture {
  struct wire_server *srv;
  struct wire_script script;
  struct counting_gate gate;
  cliq_client *client;
};

static struct fixture *fixture_new(void)
{
  struct fixture *f = calloc(1, sizeof *f);
  counting_gate_init(&f->gate);
  f->srv = wire_start(wire_script_handler, &f->script);
  assert_non_null(f->srv);
  return f;
}

static cliq_client *client_static(struct fixture *f, long timeout_ms,
                                  size_t max_body)
{
  cliq_client_config cfg = {.api_url = wire_url(f->srv), .access_token = TOKEN,
                            .timeout_ms = timeout_ms,
                            .max_body_bytes = max_body};
  cliq_gate g = counting_gate_hook(&f->gate);
  cliq_error err = {0};
  f->client = cliq_client_new(&cfg, &g, &err);
  if (!f->client)
    fail_msg("client: %s", err.message);
  return f->client;
}

static cliq_client *client_refresh(struct fixture *f, double time_scale)
{
  cliq_client_config cfg = {.api_url = wire_url(f->srv),
                            .accounts_url = wire_url(f->srv),
                            .client_id = "wire-client",
                            .client_secret = CLIENT_SECRET,
                            .refresh_token = REFRESH,
                            .time_scale = time_scale};
  cliq_gate g = counting_gate_hook(&f->gate);
  cliq_error err = {0};
  f->client = cliq_client_new(&cfg, &g, &err);
  if (!f->client)
    fail_msg("client: %s", err.message);
  return f->client;
}

static void fixture_free(struct fixture *f)
{
  cliq_client_free(f->client);
  wire_stop(f->srv);
  /* every acquire was matched by a record */
  assert_int_equal(counting_gate_in_flight(&f->gate), 0);
  assert_int_equal(f->gate.unmatched_records, 0);
  counting_gate_destroy(&f->gate);
  free(f);
}

static void script(struct fixture *f, int status, const char *body)
{
  f->script.replies[f->script.n++] = (struct wire_reply){.status = status, .body = body};
}

static void assert_no_secret(const cliq_error *err)
{
  const char *secrets[] = {TOKEN, CLIENT_SECRET, REFRESH, "tok-A", "tok-B",
                           "wire-issued"};
  for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
    if (strstr(err->message, secrets[i]) || strstr(err->code, secrets[i]))
      fail_msg("error message leaks a secret: %s", err->message);
}

/* ---- the gate ---------------------------------------------------------- */

/* One GET of thread CT_1_2-T-3, answered with THREAD_BODY, at read priority. */
static void get_thread_once(struct fixture *f)
{
  script(f, 200, THREAD_BODY);
  cliq_client *c = client_static(f, 0, 0);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1_2-T-3", &t, &err), 0);
  assert_string_equal(t.title, "T");
  assert_string_equal(t.thread_message_id, "100_1");
  cliq_thread_clear(&t);
}

static void test_gate_wraps_request(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  get_thread_once(f);
  assert_int_equal(f->gate.acquired[CLIQ_API_THREADS_GET], 1);
  assert_int_equal(f->gate.recorded[CLIQ_API_THREADS_GET], 1);
  assert_int_equal(f->gate.last_status[CLIQ_API_THREADS_GET], 200);
  assert_int_equal(f->gate.last_prio[CLIQ_API_THREADS_GET], CLIQ_PRIO_READ);
  assert_int_equal(counting_gate_total(&f->gate), 1);
  const struct wire_request *rq = wire_request(f->srv, 0);
  assert_string_equal(rq->method, "GET");
  assert_string_equal(rq->target, "/api/v3/threads/CT_1_2-T-3");
  assert_non_null(strstr(rq->head, "Authorization: Zoho-oauthtoken " TOKEN "\r\n"));
  fixture_free(f);
}

/* At verbose 3 a request's line says when it opened a connection (the wire
 * server closes each one, so every request opens its own), and never shows
 * the token. */
static void test_http_log_tells_new_connection(void **state)
{
  (void)state;
  char path[] = "/tmp/cliqfs-wire-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(cliq_log_open(path, false, CLIQ_LOG_HTTP), 0);
  struct fixture *f = fixture_new();
  get_thread_once(f);
  fixture_free(f);
  cliq_log_close();
  FILE *in = fopen(path, "r");
  assert_non_null(in);
  char line[1024];
  int lines = 0;
  while (fgets(line, sizeof line, in)) {
    if (!strstr(line, "GET /api/v3/threads/CT_1_2-T-3 (threads.get) -> 200"))
      continue;
    lines++;
    assert_non_null(strstr(line, " ms, new connection"));
    assert_null(strstr(line, TOKEN));
  }
  fclose(in);
  unlink(path);
  assert_int_equal(lines, 1);
}

static void test_gate_refusal_sends_nothing(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, THREAD_BODY);
  f->gate.refuse = -EAGAIN;
  cliq_client *c = client_static(f, 0, 0);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_BACKGROUND, "CT_1_2-T-3", &t, &err),
                   -EAGAIN);
  assert_int_equal(err.err, EAGAIN);
  assert_non_null(strstr(err.message, "threads.get"));
  assert_int_equal(wire_count(f->srv), 0);
  assert_int_equal(f->gate.recorded[CLIQ_API_THREADS_GET], 0);
  fixture_free(f);
}

static void test_gate_records_no_answer(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{}");
  /* a port that was just free: connection refused */
  struct wire_server *gone = wire_start(wire_script_handler, &f->script);
  char url[64];
  snprintf(url, sizeof url, "%s", wire_url(gone));
  wire_stop(gone);
  cliq_client_config cfg = {.api_url = url, .access_token = TOKEN};
  cliq_gate g = counting_gate_hook(&f->gate);
  cliq_error err;
  f->client = cliq_client_new(&cfg, &g, &err);
  assert_non_null(f->client);
  cliq_user_list users;
  assert_int_equal(cliq_get_members(f->client, CLIQ_PRIO_READ, "CT_1", &users, &err),
                   -EIO);
  assert_int_equal(err.err, EIO);
  assert_int_equal(err.http_status, 0);
  assert_int_equal(f->gate.acquired[CLIQ_API_CHATS_MEMBERS], 1);
  assert_int_equal(f->gate.recorded[CLIQ_API_CHATS_MEMBERS], 1);
  assert_int_equal(f->gate.last_status[CLIQ_API_CHATS_MEMBERS], 0);
  fixture_free(f);
}

static void test_gate_sees_throttle_code(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 400, "{\"code\":\"request_limit_exceeded\",\"message\":\"You have "
                 "exceeded the URL throttle limits.\"}");
  cliq_client *c = client_static(f, 0, 0);
  cliq_error err;
  assert_int_equal(cliq_follow(c, CLIQ_PRIO_WRITE, "CT_1-T-1", &err), -EAGAIN);
  assert_int_equal(err.http_status, 400);
  assert_string_equal(err.code, "request_limit_exceeded");
  assert_string_equal(f->gate.last_code[CLIQ_API_THREADS_FOLLOW],
                      "request_limit_exceeded");
  assert_int_equal(f->gate.last_status[CLIQ_API_THREADS_FOLLOW], 400);
  fixture_free(f);
}

/* ---- errors ------------------------------------------------------------ */

static void test_timeout(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  f->script.replies[f->script.n++] =
      (struct wire_reply){.status = 200, .body = MESSAGES_BODY, .delay_ms = 3000};
  cliq_client *c = client_static(f, 300, 0);
  cliq_message_list list;
  cliq_error err;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 0, 0, 0, &list, &err),
                   -ETIMEDOUT);
  assert_int_equal(err.err, ETIMEDOUT);
  fixture_free(f);
}

static void test_oversize(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  static char big[8192];
  memset(big, ' ', sizeof big - 3);
  big[0] = '{';
  big[sizeof big - 3] = '}';
  big[sizeof big - 2] = '\0';
  script(f, 200, big);
  cliq_client *c = client_static(f, 0, 1024);
  cliq_channel_list list;
  cliq_error err;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), -EIO);
  assert_non_null(strstr(err.message, "larger than 1024"));
  fixture_free(f);
}

static void test_http_errors(void **state)
{
  (void)state;
  struct {
    int status;
    const char *body;
    int want;
    const char *code;
  } cases[] = {
      {404, "{\"code\":\"chat_not_found\",\"message\":\"No chat\"}", ENOENT,
       "chat_not_found"},
      {403, "{\"code\":\"access_denied\",\"message\":\"no\"}", EACCES, "access_denied"},
      {500, "{\"code\":\"operation_failed\",\"message\":\"Sorry\"}", EIO,
       "operation_failed"},
      {503, "<html>down</html>", EIO, ""},
      {429, "{\"message\":\"Too many requests within a certain time frame.\"}",
       EAGAIN, ""},
      {400, "{\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"x\"}}",
       EAGAIN, "rate_limit_exceeded"},
      {400, "{\"code\":\"operation_not_allowed\",\"message\":\"closed\"}", EACCES,
       "operation_not_allowed"},
      {400, "{\"code\":\"invalid_inputs\",\"message\":\"bad\"}", EINVAL,
       "invalid_inputs"},
      {405, "{\"message\":\"method\"}", EIO, ""},
      {200, "{\"data\":[", EIO, ""},          /* truncated */
      {200, "not json at all", EIO, ""},
      {200, "{\"data\":{\"id\":1}}", EIO, ""}, /* wrong shape */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct fixture *f = fixture_new();
    script(f, cases[i].status, cases[i].body);
    cliq_client *c = client_static(f, 0, 0);
    cliq_message_list list;
    cliq_error err;
    int r = cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 0, 0, 10, &list, &err);
    if (r != -cases[i].want || err.err != cases[i].want)
      fail_msg("case %zu (HTTP %d): r=%d err=%d (%s)", i, cases[i].status, r,
               err.err, err.message);
    assert_string_equal(err.code, cases[i].code);
    assert_true(strlen(err.message) > 0);
    assert_no_secret(&err);
    fixture_free(f);
  }
}

/* ---- paging ------------------------------------------------------------ */

static void test_channel_paging(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"channels\":[{\"channel_id\":\"O1\",\"chat_id\":\"CT_1\","
                 "\"unique_name\":\"one\"}],\"has_more\":true,\"next_token\":\"tok/1 x\"}");
  script(f, 200, "{\"channels\":[{\"channel_id\":\"O2\",\"chat_id\":\"CT_2\","
                 "\"unique_name\":\"two\"},{\"channel_id\":\"O1\",\"chat_id\":\"CT_1\","
                 "\"unique_name\":\"one\"}],\"has_more\":false,\"next_token\":\"tok2\"}");
  cliq_client *c = client_static(f, 0, 0);
  cliq_channel_list list;
  cliq_error err;
  assert_int_equal(cliq_list_channels(c, CLIQ_PRIO_READ, &list, &err), 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].unique_name, "one");
  assert_string_equal(list.items[1].unique_name, "two");
  cliq_channel_list_clear(&list);
  assert_int_equal(wire_count(f->srv), 2);
  assert_string_equal(wire_request(f->srv, 0)->target,
                      "/api/v2/channels?joined=true&limit=100");
  assert_string_equal(wire_request(f->srv, 1)->target,
                      "/api/v2/channels?joined=true&limit=100&next_token=tok%2F1%20x");
  assert_int_equal(f->gate.acquired[CLIQ_API_CHANNELS_LIST], 2);
  fixture_free(f);
}

static void test_thread_paging(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"url\":\"/api/v2/threads\",\"type\":\"chat_thread\","
                 "\"next_token\":\"n2\",\"data\":[{\"chat_id\":\"CT_1-T-1\","
                 "\"title\":\"a\",\"thread_state\":\"closed\"}]}");
  script(f, 200, "{\"next_token\":\"n3\",\"data\":[{\"chat_id\":\"CT_1-T-2\","
                 "\"title\":\"b\",\"thread_state_info\":{\"thread_state\":\"open\"}},"
                 "{\"chat_id\":\"CT_1-T-1\",\"title\":\"a\"}]}");
  script(f, 200, "{\"next_token\":\"n4\",\"data\":[]}");
  cliq_client *c = client_static(f, 0, 0);
  cliq_thread_list list;
  cliq_error err;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, "O1", &list, &err), 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].title, "a");
  assert_int_equal(list.items[0].state, CLIQ_THREAD_CLOSED);
  assert_string_equal(list.items[1].title, "b");
  cliq_thread_list_clear(&list);
  assert_int_equal(wire_count(f->srv), 3);
  assert_string_equal(wire_request(f->srv, 0)->target,
                      "/api/v2/channels/O1/threads?state=all&limit=100");
  assert_string_equal(wire_request(f->srv, 2)->target,
                      "/api/v2/channels/O1/threads?state=all&limit=100&next_token=n3");
  fixture_free(f);
}

static void test_paging_loop_refused(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"next_token\":\"same\",\"data\":[{\"chat_id\":\"CT_1-T-1\"}]}");
  cliq_client *c = client_static(f, 0, 0);
  cliq_thread_list list;
  cliq_error err;
  assert_int_equal(cliq_list_threads(c, CLIQ_PRIO_READ, "O1", &list, &err), -EIO);
  assert_int_equal(wire_count(f->srv), 2);
  assert_null(list.items);
  fixture_free(f);
}

/* ---- writes ------------------------------------------------------------ */

static void test_post_bodies(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"message_id\":\"1727333520582%2047588994306224\"}");
  script(f, 204, NULL);
  script(f, 200, "");
  cliq_client *c = client_static(f, 0, 0);
  char *id = NULL;
  cliq_error err;
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "hello\n\"world\"",
                              &id, &err), 0);
  assert_string_equal(id, "1727333520582_47588994306224");
  free(id);
  assert_int_equal(cliq_post_channel_message(c, CLIQ_PRIO_WRITE, "O 1/x", "hi",
                                             &id, &err), 0);
  assert_null(id);
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "x", &id, &err), 0);
  assert_null(id);

  const struct wire_request *rq = wire_request(f->srv, 0);
  assert_string_equal(rq->method, "POST");
  assert_string_equal(rq->target, "/api/v3/chats/CT_1-T-2/messages");
  assert_non_null(strstr(rq->head, "Content-Type: application/json"));
  json_t *body = json_loads(rq->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(body, "text")),
                      "hello\n\"world\"");
  assert_true(json_is_true(json_object_get(body, "sync_message")));
  json_decref(body);
  rq = wire_request(f->srv, 1);
  assert_string_equal(rq->target, "/api/v3/channels/O%201%2Fx/messages");
  assert_int_equal(f->gate.acquired[CLIQ_API_MESSAGES_POST], 3);

  /* invalid arguments are refused before anything is sent */
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "", &id, &err), -EINVAL);
  assert_int_equal(cliq_reply(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "\xff\xfe", &id, &err),
                   -EINVAL);
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "delete",
                                         &err), -EINVAL);
  assert_int_equal(wire_count(f->srv), 3);
  fixture_free(f);
}

static void test_thread_updates(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 204, NULL);
  cliq_client *c = client_static(f, 0, 0);
  cliq_error err;
  const char *ids[] = {"15067889", "35068981"};
  assert_int_equal(cliq_remove_followers(c, CLIQ_PRIO_WRITE, "CT_1-T-2", ids, 2, &err), 0);
  assert_int_equal(cliq_add_followers(c, CLIQ_PRIO_WRITE, "CT_1-T-2", ids, 1, &err), 0);
  assert_int_equal(cliq_set_thread_state(c, CLIQ_PRIO_WRITE, "CT_1-T-2", "close", &err), 0);
  assert_int_equal(cliq_unfollow(c, CLIQ_PRIO_WRITE, "CT_1-T-2", &err), 0);
  assert_int_equal(cliq_mute(c, CLIQ_PRIO_WRITE, "CT_1-T-2", &err), 0);
  assert_int_equal(cliq_unmute(c, CLIQ_PRIO_WRITE, "CT_1-T-2", &err), 0);
  assert_int_equal(cliq_leave(c, CLIQ_PRIO_WRITE, "CT_1-T-2", &err), 0);
  struct {
    const char *method, *target, *body;
    enum cliq_api api;
  } want[] = {
      {"DELETE", "/api/v3/threads/CT_1-T-2/followers",
       "{\"user_ids\":[\"15067889\",\"35068981\"]}", CLIQ_API_FOLLOWERS_REMOVE},
      {"POST", "/api/v3/threads/CT_1-T-2/followers", "{\"user_ids\":[\"15067889\"]}",
       CLIQ_API_FOLLOWERS_ADD},
      {"PUT", "/api/v3/threads/CT_1-T-2", "{\"action\":\"close\"}", CLIQ_API_THREADS_UPDATE},
      {"POST", "/api/v3/threads/CT_1-T-2/unfollow", "", CLIQ_API_THREADS_UNFOLLOW},
      {"POST", "/api/v3/chats/CT_1-T-2/mute", "", CLIQ_API_CHATS_MUTE},
      {"POST", "/api/v3/chats/CT_1-T-2/unmute", "", CLIQ_API_CHATS_UNMUTE},
      {"POST", "/api/v3/chats/CT_1-T-2/leave", "", CLIQ_API_CHATS_LEAVE},
  };
  assert_int_equal(wire_count(f->srv), 7);
  for (int i = 0; i < 7; i++) {
    const struct wire_request *rq = wire_request(f->srv, i);
    assert_string_equal(rq->method, want[i].method);
    assert_string_equal(rq->target, want[i].target);
    assert_string_equal(rq->body, want[i].body);
    assert_int_equal(f->gate.acquired[want[i].api], 1);
  }
  fixture_free(f);
}

static void test_create_thread(void **state)
{
  (void)state;
  /* via the parent's thread_information */
  struct fixture *f = fixture_new();
  script(f, 200, "{\"message_id\":\"300_3\"}");
  script(f, 200, "{\"id\":\"100_1\",\"time\":100,\"content\":{\"text\":\"p\"},"
                 "\"thread_information\":{\"chat_id\":\"CT_X-T-9\"}}");
  cliq_client *c = client_static(f, 0, 0);
  char *thread = NULL, *msg = NULL;
  cliq_error err;
  assert_int_equal(cliq_create_thread(c, CLIQ_PRIO_WRITE, "O1", "CT_X", "100%201",
                                      "Release plan", "first", &thread, &msg, &err), 0);
  assert_string_equal(thread, "CT_X-T-9");
  assert_string_equal(msg, "300_3");
  free(thread);
  free(msg);
  const struct wire_request *rq = wire_request(f->srv, 0);
  assert_string_equal(rq->target, "/api/v3/channels/O1/messages");
  json_t *body = json_loads(rq->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(body, "text")), "first");
  assert_string_equal(json_string_value(json_object_get(body, "thread_message_id")),
                      "100_1");
  assert_string_equal(json_string_value(json_object_get(body, "thread_title")),
                      "Release plan");
  assert_true(json_is_false(json_object_get(body, "post_in_parent")));
  assert_true(json_is_true(json_object_get(body, "sync_message")));
  json_decref(body);
  assert_string_equal(wire_request(f->srv, 1)->target, "/api/v2/chats/CT_X/messages/100_1");
  assert_int_equal(f->gate.acquired[CLIQ_API_MESSAGES_GET], 1);
  fixture_free(f);

  /* fallback: the parent has no thread_information; the list has it */
  f = fixture_new();
  script(f, 204, NULL);
  script(f, 200, "{\"id\":\"100_1\",\"time\":100,\"content\":{\"text\":\"p\"}}");
  script(f, 200, "{\"data\":[{\"chat_id\":\"CT_X-T-8\",\"thread_message_id\":\"99_9\"},"
                 "{\"chat_id\":\"CT_X-T-9\",\"thread_message_id\":\"100 1\"}]}");
  c = client_static(f, 0, 0);
  assert_int_equal(cliq_create_thread(c, CLIQ_PRIO_WRITE, "O1", "CT_X", "100_1",
                                      "Release plan", "first", &thread, &msg, &err), 0);
  assert_string_equal(thread, "CT_X-T-9");
  assert_null(msg);
  free(thread);
  assert_int_equal(f->gate.acquired[CLIQ_API_THREADS_LIST], 1);
  fixture_free(f);

  /* not found anywhere: an error that says the thread was created */
  f = fixture_new();
  script(f, 200, "{\"message_id\":\"300_3\"}");
  script(f, 200, "{\"id\":\"100_1\",\"time\":100}");
  script(f, 200, "{\"data\":[]}");
  c = client_static(f, 0, 0);
  assert_int_equal(cliq_create_thread(c, CLIQ_PRIO_WRITE, "O1", "CT_X", "100_1",
                                      "Release plan", "first", &thread, &msg, &err),
                   -EIO);
  assert_null(thread);
  assert_string_equal(msg, "300_3");
  assert_non_null(strstr(err.message, "thread created"));
  free(msg);
  fixture_free(f);
}

static void test_path_escaping(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"id\":\"1_2\",\"time\":5,\"content\":{\"text\":\"x\"}}");
  cliq_client *c = client_static(f, 0, 0);
  cliq_message m;
  cliq_error err;
  assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, "a b/c?d", "1%202", &m, &err), 0);
  cliq_message_clear(&m);
  assert_int_equal(cliq_get_message(c, CLIQ_PRIO_READ, "CT_1", "1 2", &m, &err), 0);
  cliq_message_clear(&m);
  assert_string_equal(wire_request(f->srv, 0)->target,
                      "/api/v2/chats/a%20b%2Fc%3Fd/messages/1_2");
  assert_string_equal(wire_request(f->srv, 1)->target, "/api/v2/chats/CT_1/messages/1_2");
  cliq_message_list list;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 1000, 2000, 50,
                                     &list, &err), -EIO); /* not a list answer */
  assert_string_equal(wire_request(f->srv, 2)->target,
                      "/api/v2/chats/CT_1/messages?limit=50&fromtime=1000&totime=2000");
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 0, 0, 101, &list, &err),
                   -EINVAL);
  cliq_user_list users;
  script(f, 200, "{\"members\":[]}"); /* answers request 3 on */
  assert_int_equal(cliq_get_members(c, CLIQ_PRIO_READ, "CT_1-T-1", &users, &err), 0);
  assert_string_equal(wire_request(f->srv, 3)->target,
                      "/api/v3/chats/CT_1-T-1/members?fields=user_id%2Cemail_id%2Cname");
  cliq_user_list_clear(&users);
  fixture_free(f);
}

/* ---- tokens ------------------------------------------------------------ */

static void test_refresh_on_401(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"access_token\":\"tok-A\",\"expires_in\":3600,"
                 "\"api_domain\":\"https://www.zohoapis.com\",\"token_type\":\"Bearer\"}");
  script(f, 401, "{\"message\":\"Request was rejected because of invalid AuthToken.\"}");
  script(f, 200, "{\"access_token\":\"tok-B\",\"expires_in\":\"3600\"}");
  script(f, 200, MESSAGES_BODY);
  cliq_client *c = client_refresh(f, 1);
  assert_string_equal(cliq_client_auth_state(c), "none");
  cliq_message_list list;
  cliq_error err;
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 0, 0, 0, &list, &err), 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].id, "100_1");
  cliq_message_list_clear(&list);
  assert_string_equal(cliq_client_auth_state(c), "valid");

  assert_int_equal(wire_count(f->srv), 4);
  const struct wire_request *rq = wire_request(f->srv, 0);
  assert_string_equal(rq->method, "POST");
  assert_string_equal(rq->target, "/oauth/v2/token");
  assert_non_null(strstr(rq->head, "Content-Type: application/x-www-form-urlencoded"));
  assert_null(strstr(rq->head, "Authorization:"));
  assert_string_equal(rq->body, "grant_type=refresh_token&client_id=wire-client"
                                "&client_secret=" CLIENT_SECRET
                                "&refresh_token=" REFRESH);
  assert_non_null(strstr(wire_request(f->srv, 1)->head, "Zoho-oauthtoken tok-A\r\n"));
  assert_non_null(strstr(wire_request(f->srv, 3)->head, "Zoho-oauthtoken tok-B\r\n"));
  assert_int_equal(f->gate.acquired[CLIQ_API_OAUTH_TOKEN], 2);
  assert_int_equal(f->gate.acquired[CLIQ_API_CHATS_MESSAGES], 2);

  /* the new token is cached: the next call costs one request */
  assert_int_equal(cliq_get_messages(c, CLIQ_PRIO_READ, "CT_1", 0, 0, 0, &list, &err), 0);
  cliq_message_list_clear(&list);
  assert_int_equal(wire_count(f->srv), 5);
  fixture_free(f);
}

static void test_second_401_is_eacces(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"access_token\":\"tok-A\",\"expires_in\":3600}");
  script(f, 401, "{\"message\":\"Request was rejected because of invalid AuthToken.\"}");
  script(f, 200, "{\"access_token\":\"tok-B\",\"expires_in\":3600}");
  script(f, 401, "{\"message\":\"Request was rejected because of invalid AuthToken.\"}");
  cliq_client *c = client_refresh(f, 1);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EACCES);
  assert_int_equal(err.http_status, 401);
  assert_non_null(strstr(err.message, "after a token refresh"));
  assert_no_secret(&err);
  assert_int_equal(wire_count(f->srv), 4); /* no third token request */
  assert_int_equal(wire_count_prefix(f->srv, "/oauth/v2/token"), 2);
  fixture_free(f);

  /* a static token cannot be refreshed: one 401 is EACCES at once */
  f = fixture_new();
  script(f, 401, "{\"message\":\"Request was rejected because of invalid AuthToken.\"}");
  c = client_static(f, 0, 0);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EACCES);
  assert_no_secret(&err);
  assert_int_equal(wire_count(f->srv), 1);
  fixture_free(f);
}

static void test_token_error_with_200(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"error\":\"invalid_client_secret\"}");
  cliq_client *c = client_refresh(f, 1);
  cliq_thread t;
  cliq_error err;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EACCES);
  assert_string_equal(err.code, "invalid_client_secret");
  assert_non_null(strstr(err.message, "invalid_client_secret"));
  assert_no_secret(&err);
  assert_string_equal(cliq_client_auth_state(c), "rejected");
  assert_non_null(strstr(err.message, "run cliqfs auth again"));
  /* refused credentials are not offered again at once */
  memset(&err, 0, sizeof err);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EACCES);
  assert_string_equal(err.code, "invalid_client_secret");
  assert_int_equal(wire_count(f->srv), 1);
  assert_int_equal(f->gate.acquired[CLIQ_API_THREADS_GET], 0);
  fixture_free(f);

  /* the endpoint's throttle answer is EAGAIN and the governor hears it */
  f = fixture_new();
  script(f, 400, "{\"error\":\"Access Denied\",\"error_description\":\"You have "
                 "made too many requests continuously. Please try again after "
                 "some time.\",\"status\":\"failure\"}");
  c = client_refresh(f, 1);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EAGAIN);
  assert_string_equal(f->gate.last_code[CLIQ_API_OAUTH_TOKEN], "rate_limit_exceeded");
  fixture_free(f);

  /* a reply without access_token */
  f = fixture_new();
  script(f, 200, "{\"token_type\":\"Bearer\"}");
  c = client_refresh(f, 1);
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1-T-1", &t, &err), -EIO);
  fixture_free(f);
}

static void test_token_no_slot_not_cached(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"access_token\":\"tok-A\",\"expires_in\":3600}");
  script(f, 200, THREAD_BODY);
  cliq_client *c = client_refresh(f, 1);
  cliq_thread t;
  cliq_error err;
  /* the governor has no token slot now: EAGAIN, nothing sent */
  f->gate.refuse = -EAGAIN;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_BACKGROUND, "CT_1_2-T-3", &t, &err),
                   -EAGAIN);
  assert_non_null(strstr(err.message, "oauth.token"));
  assert_int_equal(wire_count(f->srv), 0);
  /* a slot later: the refresh happens (the EAGAIN was not remembered) */
  f->gate.refuse = 0;
  assert_int_equal(cliq_get_thread(c, CLIQ_PRIO_READ, "CT_1_2-T-3", &t, &err), 0);
  cliq_thread_clear(&t);
  assert_int_equal(wire_count_prefix(f->srv, "/oauth/v2/token"), 1);
  assert_int_equal(f->gate.last_prio[CLIQ_API_OAUTH_TOKEN], CLIQ_PRIO_READ);
  fixture_free(f);
}

struct concurrent {
  cliq_client *c;
  int result;
};

static void *concurrent_call(void *arg)
{
  struct concurrent *k = arg;
  cliq_message_list list;
  cliq_error err;
  k->result = cliq_get_messages(k->c, CLIQ_PRIO_READ, "CT_1", 0, 0, 0, &list, &err);
  if (k->result == 0)
    cliq_message_list_clear(&list);
  return NULL;
}

static struct wire_reply token_or_messages(const struct wire_request *rq, int index,
                                           void *ctx)
{
  (void)index;
  (void)ctx;
  if (strcmp(rq->target, "/oauth/v2/token") == 0)
    return (struct wire_reply){.status = 200, .delay_ms = 200,
                               .body = "{\"access_token\":\"wire-issued\","
                                       "\"expires_in\":3600}"};
  if (!strstr(rq->head, "Zoho-oauthtoken wire-issued\r\n"))
    return (struct wire_reply){.status = 401, .body = "{\"message\":\"bad\"}"};
  return (struct wire_reply){.status = 200, .body = MESSAGES_BODY};
}

static void test_concurrent_callers_share_refresh(void **state)
{
  (void)state;
  struct counting_gate gate;
  counting_gate_init(&gate);
  struct wire_server *srv = wire_start(token_or_messages, NULL);
  cliq_client_config cfg = {.api_url = wire_url(srv), .accounts_url = wire_url(srv),
                            .client_id = "wire-client", .client_secret = CLIENT_SECRET,
                            .refresh_token = REFRESH};
  cliq_gate g = counting_gate_hook(&gate);
  cliq_client *c = cliq_client_new(&cfg, &g, NULL);
  assert_non_null(c);
  enum { N = 8 };
  pthread_t th[N];
  struct concurrent k[N];
  for (int i = 0; i < N; i++) {
    k[i] = (struct concurrent){.c = c};
    pthread_create(&th[i], NULL, concurrent_call, &k[i]);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(k[i].result, 0);
  }
  assert_int_equal(wire_count_prefix(srv, "/oauth/v2/token"), 1);
  assert_int_equal(wire_count_prefix(srv, "/api/v2/chats/CT_1/messages"), N);
  assert_int_equal(gate.acquired[CLIQ_API_OAUTH_TOKEN], 1);
  cliq_client_free(c);
  wire_stop(srv);
  counting_gate_destroy(&gate);
}

static void test_token_refreshed_before_expiry(void **state)
{
  (void)state;
  struct wire_server *srv = wire_start(token_or_messages, NULL);
  cliq_client_config cfg = {.api_url = wire_url(srv), .accounts_url = wire_url(srv),
                            .client_id = "wire-client", .client_secret = CLIENT_SECRET,
                            .refresh_token = REFRESH, .time_scale = 360};
  /* 3600 s / 360: a 10 s token; two calls in a row share it */
  cliq_client *c = cliq_client_new(&cfg, NULL, NULL);
  struct concurrent k = {.c = c};
  concurrent_call(&k);
  assert_int_equal(k.result, 0);
  concurrent_call(&k);
  assert_int_equal(k.result, 0);
  assert_int_equal(wire_count_prefix(srv, "/oauth/v2/token"), 1);
  cliq_client_free(c);

  /* 3600 s / 36000: a 0.1 s token is renewed by a later call, before any
   * 401 (the server would answer one to an old token). */
  cfg.time_scale = 36000;
  c = cliq_client_new(&cfg, NULL, NULL);
  k.c = c;
  int base = wire_count_prefix(srv, "/oauth/v2/token");
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    concurrent_call(&k);
    assert_int_equal(k.result, 0);
    clock_gettime(CLOCK_MONOTONIC, &now);
    usleep(20000);
  } while (wire_count_prefix(srv, "/oauth/v2/token") < base + 2 &&
           now.tv_sec - start.tv_sec < 20);
  assert_true(wire_count_prefix(srv, "/oauth/v2/token") >= base + 2);
  cliq_client_free(c);
  wire_stop(srv);
}

static void test_oauth_exchange_code(void **state)
{
  (void)state;
  struct fixture *f = fixture_new();
  script(f, 200, "{\"access_token\":\"tok-A\",\"refresh_token\":\"wire-issued-r\","
                 "\"expires_in\":3600}");
  script(f, 200, "{\"error\":\"invalid_code\"}");
  char *refresh = NULL, *access = NULL;
  cliq_error err;
  assert_int_equal(cliq_oauth_exchange_code(wire_url(f->srv), "cid", CLIENT_SECRET,
                                            "1000.code", &refresh, &access, &err), 0);
  assert_string_equal(refresh, "wire-issued-r");
  assert_string_equal(access, "tok-A");
  free(refresh);
  free(access);
  assert_string_equal(wire_request(f->srv, 0)->body,
                      "grant_type=authorization_code&client_id=cid&client_secret="
                      CLIENT_SECRET "&code=1000.code");
  assert_int_equal(cliq_oauth_exchange_code(wire_url(f->srv), "cid", CLIENT_SECRET,
                                            "1000.code", &refresh, &access, &err),
                   -EACCES);
  assert_string_equal(err.code, "invalid_code");
  assert_null(refresh);
  assert_no_secret(&err);
  assert_int_equal(cliq_oauth_exchange_code("http://example.com", "cid", "s", "c",
                                            &refresh, &access, &err), -EINVAL);
  fixture_free(f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gate_wraps_request),
      cmocka_unit_test(test_http_log_tells_new_connection),
      cmocka_unit_test(test_gate_refusal_sends_nothing),
      cmocka_unit_test(test_gate_records_no_answer),
      cmocka_unit_test(test_gate_sees_throttle_code),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_http_errors),
      cmocka_unit_test(test_channel_paging),
      cmocka_unit_test(test_thread_paging),
      cmocka_unit_test(test_paging_loop_refused),
      cmocka_unit_test(test_post_bodies),
      cmocka_unit_test(test_thread_updates),
      cmocka_unit_test(test_create_thread),
      cmocka_unit_test(test_path_escaping),
      cmocka_unit_test(test_refresh_on_401),
      cmocka_unit_test(test_second_401_is_eacces),
      cmocka_unit_test(test_token_error_with_200),
      cmocka_unit_test(test_token_no_slot_not_cached),
      cmocka_unit_test(test_concurrent_callers_share_refresh),
      cmocka_unit_test(test_token_refreshed_before_expiry),
      cmocka_unit_test(test_oauth_exchange_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
