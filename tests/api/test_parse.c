/* tests/api/test_parse.c: the parsers against the documented example bodies
 * (threads-api-v3-extract.txt, cliq-api.md), each documented variant, and
 * malformed input (truncated, wrong types, missing keys, deep nesting, huge
 * numbers), which must give an error and never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cliq.h"
#include "api/internal.h"

/* ---- documented bodies, pasted from threads-api-v3-extract.txt ---------- */

static const char THREAD_DETAILS[] =
    "{\n"
    "\"url\": \"/api/v3/threads/CT_1207124526552602256_60002085329-T-1291567019566818579\",\n"
    "\"type\": \"chat_thread\",\n"
    "\"data\": {\n"
    "\"chat_id\": \"CT_1207124526552602256_60002085329-T-1291567019566818579\",\n"
    "\"parent_chat_id\": \"CT_1207124526552602256_60002085329\",\n"
    "\"thread_message_id\": \"1727333520582%2047588994306224\",\n"
    "\"title\": \"Email campaign strategy discussion\",\n"
    "\"follower_count\": 26,\n"
    "\"is_follower\": true,\n"
    "\"parent_participant\": true,\n"
    "\"thread_state\": \"open\"\n"
    "}\n"
    "}";

static const char FOLLOWERS[] =
    "{\n"
    "\"data\": [\n"
    "{\n"
    "\"user_id\": \"855727961\",\n"
    "\"email_id\": \"ryan.west@zylker.com\",\n"
    "\"name\": \"Ryan West\"\n"
    "},\n"
    "{\n"
    "\"user_id\": \"855727962\",\n"
    "\"email_id\": \"scott.fisher@zylker.com\",\n"
    "\"name\": \"Scott Fisher\"\n"
    "}\n"
    "]\n"
    "}";

static const char NONFOLLOWERS[] =
    "{\n"
    "\"data\": [\n"
    "{\n"
    "\"user_id\": \"855727963\",\n"
    "\"email_id\": \"tim.harrison@zylker.com\",\n"
    "\"name\": \"Tim Harrison\"\n"
    "}\n"
    "]\n"
    "}";

static const char MEMBERS[] =
    "{\n"
    "\"members\": [\n"
    "{\n"
    "\"user_id\": \"431930546\",\n"
    "\"email_id\": \"olivia.palmer@zylcal.com\",\n"
    "\"name\": \"Olivia - Content Writer\"\n"
    "}\n"
    "]\n"
    "}";

static const char ERR_THREAD_CHATID_INVALID[] =
    "{\n"
    "\"code\": \"thread_chatid_invalid\",\n"
    "\"message\": \"The thread chat ID given is not according to the format.\"\n"
    "}";
static const char ERR_INVALID_TOKEN[] =
    "{\n"
    "\"message\": \"Request was rejected because of invalid AuthToken.\"\n"
    "}";
static const char ERR_EXTERNAL[] =
    "{\n"
    "\"code\": \"external_communication_not_supported\",\n"
    "\"message\": \"Sorry, external communication is not supported as per the "
    "organization policy.\"\n"
    "}";
static const char ERR_TOO_MANY[] =
    "{\n"
    "\"message\": \"Too many requests within a certain time frame.\"\n"
    "}";
static const char ERR_OPERATION_FAILED[] =
    "{\n"
    "\"code\": \"operation_failed\",\n"
    "\"message\": \"Sorry, we couldn't process your request due to a technical "
    "error. Please try again later.\"\n"
    "}";

/* cliq-api.md "Errors" and "Hosts and auth" shapes. */
static const char ERR_NESTED[] =
    "{\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Too many "
    "requests\"}}";
static const char ERR_URL_THROTTLE[] =
    "{\"code\":\"request_limit_exceeded\",\"message\":\"You have exceeded the "
    "URL throttle limits.\"}";
static const char ERR_OAUTH[] = "{\"error\":\"invalid_client_secret\"}";
static const char ERR_OAUTH_THROTTLE[] =
    "{\"error\":\"Access Denied\",\"error_description\":\"You have made too "
    "many requests continuously. Please try again after some time.\","
    "\"status\":\"failure\"}";

/* A channel built from every field cliq-api.md "Shapes" lists. */
static const char CHANNEL[] =
    "{\"channel_id\":\"O5797000000001\",\"chat_id\":"
    "\"CT_1207124526552602256_60002085329\",\"unique_name\":\"zylker-support\","
    "\"name\":\"#Zylker-Support\",\"description\":\"Support desk\","
    "\"level\":\"organization\",\"joined\":true,\"participant_count\":42,"
    "\"total_message_count\":\"1234\","
    "\"creation_time\":\"2024-09-26T12:22:00+05:30\","
    "\"last_modified_time\":\"2024-09-26T12:22:00+05:30\","
    "\"last_message_info\":{\"sender_id\":\"855727961\",\"message_type\":\"text\","
    "\"time\":1727333520582,\"text\":\"hi\",\"sender_name\":\"Ryan West\"},"
    "\"some_future_field\":{\"nested\":[1,2,3]}}";

/* A thread list entry with every field cliq-api.md lists. */
static const char THREAD_ENTRY[] =
    "{\"chat_id\":\"CT_1207124526552602256_60002085329-T-1291567019566818579\","
    "\"parent_chat_id\":\"CT_1207124526552602256_60002085329\","
    "\"thread_message_id\":\"1727333520582 47588994306224\","
    "\"title\":\"Email campaign strategy discussion\","
    "\"thread_state_info\":{\"thread_state\":\"closed\"},"
    "\"follower_count\":\"3\",\"is_follower\":false,"
    "\"parent_message_sender\":{\"id\":\"855727961\",\"name\":\"Ryan West\"},"
    "\"last_message_information\":{\"time\":\"1727333599000\"},"
    "\"message_count\":7}";

/* A message as the messages endpoint sends it. */
static const char MESSAGE[] =
    "{\"id\":\"1629426730589_40288830613\",\"time\":1629426730589,"
    "\"type\":\"text\",\"sender\":{\"id\":\"855727961\",\"name\":\"Ryan West\"},"
    "\"content\":{\"text\":\"first line\\nsecond line\"},"
    "\"thread_information\":{\"chat_id\":"
    "\"CT_1207124526552602256_60002085329-T-1291567019566818579\","
    "\"thread_message_id\":\"1629426730589_40288830613\",\"title\":\"T\","
    "\"message_count\":3,\"follower_count\":2,\"is_follower\":true},"
    "\"mentions\":[],\"is_pinned\":false}";

/* The main-message endpoint: ISO time, thread_state_information. */
static const char MAIN_MESSAGE[] =
    "{\"id\":\"1727333520582%2047588994306224\","
    "\"time\":\"2024-09-26T12:22:00.582+05:30\",\"type\":\"text\","
    "\"sender\":{\"id\":\"855727961\",\"name\":\"Ryan West\"},"
    "\"content\":{\"text\":\"Let's plan the email campaign\"},"
    "\"thread_information\":{\"chat_id\":\"CT_1_2-T-3\",\"title\":\"x\"},"
    "\"thread_state_information\":{\"thread_state\":\"closed\"}}";

static json_t *load(const char *s)
{
  json_error_t jerr;
  json_t *j = json_loads(s, 0, &jerr);
  if (!j)
    fail_msg("test body does not parse: %s", jerr.text);
  return j;
}

/* ---- time -------------------------------------------------------------- */

static int parse_time_str(const char *json, int64_t *ms)
{
  json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
  if (!j)
    return -1000; /* not even JSON */
  int r = cliq_parse_time(j, ms);
  json_decref(j);
  return r;
}

static void test_time_variants(void **state)
{
  (void)state;
  struct {
    const char *json;
    int64_t want;
  } ok[] = {
      {"1727333520582", 1727333520582},
      {"\"1727333520582\"", 1727333520582},
      {"1727333520582.0", 1727333520582},
      {"\"2024-09-26T06:52:00.582Z\"", 1727333520582},
      {"\"2024-09-26T12:22:00.582+05:30\"", 1727333520582},
      {"\"2024-09-26T12:22:00.582+0530\"", 1727333520582},
      {"\"2024-09-26T06:52:00.582123456Z\"", 1727333520582},
      {"\"2024-09-26T06:52:00,582Z\"", 1727333520582},
      {"\"2026-11-25T18:54:50Z\"", 1795632890000},
      {"\"2026-11-25T18:54:50\"", 1795632890000},
      {"\"2026-11-25 18:54:50z\"", 1795632890000},
      {"\"2026-11-25T18:54Z\"", 1795632840000},
      {"\"2000-02-29T00:00:00-03:00\"", 951793200000},
      {"\"2000-02-29T00:00:00.5-03\"", 951793200500},
      {"0", 0},
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    int64_t ms = -1;
    int r = parse_time_str(ok[i].json, &ms);
    if (r != 0 || ms != ok[i].want)
      fail_msg("%s: r=%d ms=%lld want %lld", ok[i].json, r, (long long)ms,
               (long long)ok[i].want);
  }
  static const char *const bad[] = {
      "\"\"", "\"abc\"", "\"2024-13-01T00:00:00Z\"", "\"2023-02-29T00:00:00Z\"",
      "\"2024-01-01T24:00:00Z\"", "\"2024-01-01T00:00:00Zjunk\"",
      "\"2024-01-01T00:00:00+25:00\"", "\"2024-01-01\"", "\"2024-01-01T00:00:00.Z\"",
      "\"-1727333520582\"", "\"1727333520582x\"", "\"99999999999999999999\"",
      "-1", "1e300", "9.2e18", "253402300800000", "true", "null", "{}", "[]",
      "\"2024-1-01T00:00:00Z\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int64_t ms = 0;
    int r = parse_time_str(bad[i], &ms);
    if (r != -EIO)
      fail_msg("%s accepted (r=%d ms=%lld)", bad[i], r, (long long)ms);
  }
  int64_t ms;
  assert_int_equal(cliq_parse_time(NULL, &ms), -EIO);
}

/* ---- ids --------------------------------------------------------------- */

static void test_normalize_message_id(void **state)
{
  (void)state;
  const char *in[] = {"1727333520582%2047588994306224",
                      "1727333520582 47588994306224",
                      "1727333520582_47588994306224"};
  for (size_t i = 0; i < 3; i++) {
    char *n = cliq_normalize_message_id(in[i]);
    assert_string_equal(n, "1727333520582_47588994306224");
    free(n);
  }
  assert_null(cliq_normalize_message_id(NULL));
}

/* ---- error bodies ------------------------------------------------------ */

static void check_error_body(const char *body, const char *code,
                             const char *message_prefix)
{
  cliq_error err;
  memset(&err, 'x', sizeof err); /* must be overwritten */
  cliq_parse_error_body(body, body ? strlen(body) : 0, &err);
  assert_string_equal(err.code, code);
  if (strncmp(err.message, message_prefix, strlen(message_prefix)) != 0)
    fail_msg("message \"%s\" does not start with \"%s\"", err.message,
             message_prefix);
  if (!*message_prefix)
    assert_string_equal(err.message, "");
}

static void test_error_bodies(void **state)
{
  (void)state;
  check_error_body(ERR_THREAD_CHATID_INVALID, "thread_chatid_invalid",
                   "The thread chat ID given");
  check_error_body(ERR_INVALID_TOKEN, "", "Request was rejected");
  check_error_body(ERR_EXTERNAL, "external_communication_not_supported",
                   "Sorry, external");
  check_error_body(ERR_TOO_MANY, "", "Too many requests");
  check_error_body(ERR_OPERATION_FAILED, "operation_failed", "Sorry, we");
  check_error_body(ERR_NESTED, "rate_limit_exceeded", "Too many requests");
  check_error_body(ERR_URL_THROTTLE, "request_limit_exceeded", "You have exceeded");
  check_error_body(ERR_OAUTH, "invalid_client_secret", "");
  check_error_body(ERR_OAUTH_THROTTLE, "rate_limit_exceeded", "You have made too many");
  /* garbage of every kind leaves both empty */
  check_error_body(NULL, "", "");
  check_error_body("", "", "");
  check_error_body("<html>502 Bad Gateway</html>", "", "");
  check_error_body("[1,2,3]", "", "");
  check_error_body("{\"code\":", "", "");
  check_error_body("{\"code\":[1],\"message\":{}}", "", "");
  check_error_body("{\"error\":42}", "", "");
  check_error_body("{\"code\":1001,\"message\":\"numeric\"}", "1001", "numeric");
  /* overlong fields are cut, not overflowed */
  char big[2048];
  snprintf(big, sizeof big, "{\"code\":\"%0300d\",\"message\":\"%01000d\"}", 1, 2);
  cliq_error err = {0};
  cliq_parse_error_body(big, strlen(big), &err);
  assert_int_equal(strlen(err.code), sizeof err.code - 1);
  assert_int_equal(strlen(err.message), sizeof err.message - 1);
  cliq_parse_error_body(ERR_OAUTH, strlen(ERR_OAUTH), NULL); /* no crash */
}

/* ---- threads ----------------------------------------------------------- */

static void test_thread_details_example(void **state)
{
  (void)state;
  json_t *j = load(THREAD_DETAILS);
  cliq_thread t;
  cliq_error err = {0};
  assert_int_equal(cliq_parse_thread(json_object_get(j, "data"), &t, &err), 0);
  assert_string_equal(t.chat_id, "CT_1207124526552602256_60002085329-T-1291567019566818579");
  assert_string_equal(t.parent_chat_id, "CT_1207124526552602256_60002085329");
  assert_string_equal(t.thread_message_id, "1727333520582_47588994306224");
  assert_string_equal(t.title, "Email campaign strategy discussion");
  assert_int_equal(t.follower_count, 26);
  assert_true(t.is_follower);
  assert_int_equal(t.state, CLIQ_THREAD_OPEN);
  assert_int_equal(t.message_count, -1);
  assert_int_equal(t.last_message_ms, 0);
  assert_ptr_equal(t.raw, json_object_get(j, "data"));
  cliq_thread_clear(&t);
  assert_null(t.chat_id);
  json_decref(j);
}

static void test_thread_variants(void **state)
{
  (void)state;
  json_t *j = load(THREAD_ENTRY);
  cliq_thread t;
  assert_int_equal(cliq_parse_thread(j, &t, NULL), 0);
  assert_int_equal(t.state, CLIQ_THREAD_CLOSED); /* under thread_state_info */
  assert_string_equal(t.thread_message_id, "1727333520582_47588994306224");
  assert_int_equal(t.follower_count, 3);       /* numeric string */
  assert_false(t.is_follower);
  assert_int_equal(t.last_message_ms, 1727333599000);
  assert_int_equal(t.message_count, 7);
  cliq_thread_clear(&t);
  json_decref(j);

  /* thread_state_information, no parent_chat_id (derived from chat_id) */
  j = load("{\"chat_id\":\"CT_9_8-T-7\",\"thread_state_information\":"
           "{\"thread_state\":\"closed\"},\"title\":\"x\"}");
  assert_int_equal(cliq_parse_thread(j, &t, NULL), 0);
  assert_int_equal(t.state, CLIQ_THREAD_CLOSED);
  assert_string_equal(t.parent_chat_id, "CT_9_8");
  assert_string_equal(t.thread_message_id, "");
  cliq_thread_clear(&t);
  json_decref(j);

  /* top-level "closed"; unknown fields ignored */
  j = load("{\"chat_id\":\"CT_9_8-T-7\",\"thread_state\":\"closed\","
           "\"whatever\":[{\"deep\":{\"er\":1}}]}");
  assert_int_equal(cliq_parse_thread(j, &t, NULL), 0);
  assert_int_equal(t.state, CLIQ_THREAD_CLOSED);
  assert_string_equal(t.title, "");
  cliq_thread_clear(&t);
  json_decref(j);
}

/* ---- channels ---------------------------------------------------------- */

static void test_channel(void **state)
{
  (void)state;
  json_t *j = load(CHANNEL);
  cliq_channel ch;
  assert_int_equal(cliq_parse_channel(j, &ch, NULL), 0);
  assert_string_equal(ch.channel_id, "O5797000000001");
  assert_string_equal(ch.chat_id, "CT_1207124526552602256_60002085329");
  assert_string_equal(ch.unique_name, "zylker-support");
  assert_string_equal(ch.name, "#Zylker-Support");
  assert_string_equal(ch.description, "Support desk");
  assert_int_equal(ch.participant_count, 42);
  assert_int_equal(ch.last_message_ms, 1727333520582);
  cliq_channel_clear(&ch);
  json_decref(j);

  /* a page of two, plus the same channel again (later page) */
  j = load("{\"channels\":[{\"channel_id\":\"T4000000040005\",\"chat_id\":\"CT_1\","
           "\"name\":\"#General\"},{\"channel_id\":\"T2\",\"chat_id\":\"CT_2\","
           "\"unique_name\":\"two\"}],\"has_more\":false}");
  cliq_channel_list list = {0};
  assert_int_equal(cliq__parse_channel_page(j, &list, NULL), 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].unique_name, "#General"); /* falls back to name */
  assert_string_equal(list.items[0].description, "");
  assert_string_equal(list.items[1].name, "two");
  cliq_channel_list_clear(&list);
  json_decref(j);
}

/* ---- messages ---------------------------------------------------------- */

static void test_message_text(void **state)
{
  (void)state;
  json_t *j = load(MESSAGE);
  cliq_message m;
  assert_int_equal(cliq_parse_message(j, &m, NULL), 0);
  assert_string_equal(m.id, "1629426730589_40288830613");
  assert_int_equal(m.time_ms, 1629426730589);
  assert_string_equal(m.type, "text");
  assert_string_equal(m.sender_id, "855727961");
  assert_string_equal(m.sender_name, "Ryan West");
  assert_string_equal(m.text, "first line\nsecond line"); /* multi-line kept */
  assert_string_equal(m.thread_chat_id,
                      "CT_1207124526552602256_60002085329-T-1291567019566818579");
  cliq_message_clear(&m);
  json_decref(j);

  j = load(MAIN_MESSAGE);
  assert_int_equal(cliq_parse_message(j, &m, NULL), 0);
  assert_string_equal(m.id, "1727333520582_47588994306224");
  assert_int_equal(m.time_ms, 1727333520582);
  assert_string_equal(m.text, "Let's plan the email campaign");
  assert_string_equal(m.thread_chat_id, "CT_1_2-T-3");
  cliq_message_clear(&m);
  json_decref(j);

  /* time as a string, id with a space, no sender, no type */
  j = load("{\"id\":\"5 6\",\"time\":\"1629426730589\",\"content\":{\"text\":\"x\"}}");
  assert_int_equal(cliq_parse_message(j, &m, NULL), 0);
  assert_string_equal(m.id, "5_6");
  assert_int_equal(m.time_ms, 1629426730589);
  assert_string_equal(m.type, "text");
  assert_string_equal(m.sender_id, "");
  assert_string_equal(m.sender_name, "");
  assert_null(m.thread_chat_id);
  cliq_message_clear(&m);
  json_decref(j);
}

static void check_rendered(const char *json, const char *want)
{
  json_t *j = load(json);
  cliq_message m;
  assert_int_equal(cliq_parse_message(j, &m, NULL), 0);
  assert_string_equal(m.text, want);
  cliq_message_clear(&m);
  json_decref(j);
}

static void test_message_non_text(void **state)
{
  (void)state;
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"file\",\"content\":"
                 "{\"file\":{\"name\":\"plan.pdf\",\"type\":\"application/pdf\"}}}",
                 "[file: plan.pdf]");
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"file\",\"content\":"
                 "{\"file\":{\"name\":\"plan.pdf\"},\"comment\":\"see p. 3\"}}",
                 "[file: plan.pdf] see p. 3");
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"image\",\"content\":"
                 "{\"file\":{\"name\":\"shot.png\"}}}",
                 "[image: shot.png]");
  /* the emulator's own shape: file at top level */
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"file\","
                 "\"file\":{\"name\":\"a.txt\"}}",
                 "[file: a.txt]");
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"poll\"}", "[poll]");
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"file\",\"content\":5}",
                 "[file]");
  check_rendered("{\"id\":\"1_1\",\"time\":1,\"type\":\"text\",\"content\":{}}", "");
}

static void test_message_list_sorted_deduped(void **state)
{
  (void)state;
  json_t *j = load(
      "{\"data\":["
      "{\"id\":\"30_1\",\"time\":30,\"content\":{\"text\":\"c\"}},"
      "{\"id\":\"10_2\",\"time\":\"10\",\"content\":{\"text\":\"a2\"}},"
      "{\"id\":\"10%201\",\"time\":10,\"content\":{\"text\":\"a1\"}},"
      "{\"id\":\"20_1\",\"time\":\"1970-01-01T00:00:00.020Z\",\"content\":{\"text\":\"b\"}},"
      "{\"id\":\"10 1\",\"time\":10,\"content\":{\"text\":\"a1\"}},"
      "{\"id\":\"30_1\",\"time\":30,\"content\":{\"text\":\"c\"}},"
      "{\"id\":\"10_10\",\"time\":10,\"content\":{\"text\":\"a10\"}}"
      "]}");
  cliq_message_list list;
  assert_int_equal(cliq__parse_message_list(j, &list, NULL), 0);
  const char *want[] = {"10_1", "10_2", "10_10", "20_1", "30_1"};
  assert_int_equal(list.count, 5);
  for (size_t i = 0; i < 5; i++)
    assert_string_equal(list.items[i].id, want[i]);
  cliq_message_list_clear(&list);
  assert_null(list.items);
  json_decref(j);

  j = load("{\"data\":[]}");
  assert_int_equal(cliq__parse_message_list(j, &list, NULL), 0);
  assert_int_equal(list.count, 0);
  cliq_message_list_clear(&list);
  json_decref(j);

  /* one bad message is left out, counted, with its reason; the rest stays */
  j = load("{\"data\":[{\"id\":\"1_1\",\"time\":1},{\"id\":\"2_2\"},"
           "{\"id\":\"3_3\",\"time\":\"9223372036854775808\"},"
           "{\"id\":\"4_4\",\"time\":4}]}");
  cliq_error err = {0};
  assert_int_equal(cliq__parse_message_list(j, &list, &err), 0);
  assert_int_equal(err.err, 0);
  assert_int_equal(list.count, 2);
  assert_string_equal(list.items[0].id, "1_1");
  assert_string_equal(list.items[1].id, "4_4");
  assert_int_equal(list.skipped, 2);
  assert_non_null(strstr(list.skipped_why, "2_2"));
  cliq_message_list_clear(&list);
  json_decref(j);
}

/* ---- users ------------------------------------------------------------- */

static void check_users(const char *body, const char *key, size_t n,
                        const char *const *ids, const char *const *emails,
                        const char *const *names)
{
  json_t *j = load(body);
  cliq_user_list list;
  assert_int_equal(cliq__parse_user_list(j, key, &list, NULL), 0);
  assert_int_equal(list.count, n);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(list.items[i].user_id, ids[i]);
    assert_string_equal(list.items[i].email_id, emails[i]);
    assert_string_equal(list.items[i].name, names[i]);
  }
  cliq_user_list_clear(&list);
  json_decref(j);
}

static void test_user_lists(void **state)
{
  (void)state;
  check_users(FOLLOWERS, "data", 2, (const char *[]){"855727961", "855727962"},
              (const char *[]){"ryan.west@zylker.com", "scott.fisher@zylker.com"},
              (const char *[]){"Ryan West", "Scott Fisher"});
  check_users(NONFOLLOWERS, "data", 1, (const char *[]){"855727963"},
              (const char *[]){"tim.harrison@zylker.com"},
              (const char *[]){"Tim Harrison"});
  check_users(MEMBERS, "members", 1, (const char *[]){"431930546"},
              (const char *[]){"olivia.palmer@zylcal.com"},
              (const char *[]){"Olivia - Content Writer"});
  /* numeric user id, no email */
  check_users("{\"members\":[{\"user_id\":855727961,\"name\":\"R\"}]}", "members",
              1, (const char *[]){"855727961"}, (const char *[]){""},
              (const char *[]){"R"});
  json_t *j = load("{\"data\":[{\"email_id\":\"a@b\"},{\"user_id\":\"7\"}]}");
  cliq_user_list list;
  assert_int_equal(cliq__parse_user_list(j, "data", &list, NULL), 0);
  assert_int_equal(list.count, 1);
  assert_string_equal(list.items[0].user_id, "7");
  assert_int_equal(list.skipped, 1);
  cliq_user_list_clear(&list);
  json_decref(j);
  j = load("{\"data\":{\"user_id\":\"1\"}}");
  assert_int_equal(cliq__parse_user_list(j, "data", &list, NULL), -EIO);
  json_decref(j);
}

/* Legal JSON jansson alone refuses: a lone surrogate escape, an integer
 * beyond 64 bits.  Loaded anyway; escaped backslashes are left alone. */
static void test_json_load_tolerant(void **state)
{
  (void)state;
  const char *t = "{\"a\":\"x\\ud800y\",\"b\":\"\\udc00\",\"c\":\"\\ud83d\\ude00\","
                  "\"d\":\"\\\\ud800\",\"n\":9223372036854775808,\"m\":-123456789012345678901,"
                  "\"f\":1.5e300,\"i\":42}";
  json_t *j = json_loads(t, 0, NULL);
  assert_null(j);   /* jansson alone refuses it */
  json_error_t jerr;
  j = cliq__json_load(t, strlen(t), &jerr);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "a")), "x\xef\xbf\xbdy");
  assert_string_equal(json_string_value(json_object_get(j, "b")), "\xef\xbf\xbd");
  assert_string_equal(json_string_value(json_object_get(j, "c")), "\xf0\x9f\x98\x80");
  assert_string_equal(json_string_value(json_object_get(j, "d")), "\\ud800");
  assert_string_equal(json_string_value(json_object_get(j, "n")), "9223372036854775808");
  assert_string_equal(json_string_value(json_object_get(j, "m")), "-123456789012345678901");
  assert_true(json_is_real(json_object_get(j, "f")));
  assert_int_equal(json_integer_value(json_object_get(j, "i")), 42);
  json_decref(j);
  /* Not JSON stays not JSON. */
  assert_null(cliq__json_load("{\"a\":", 5, &jerr));
  assert_null(cliq__json_load("[1,]", 4, NULL));
}

static void test_posted_message_id(void **state)
{
  (void)state;
  json_t *j = load("{\"message_id\":\"1727333520582%2047588994306224\"}");
  char *id = cliq__posted_message_id(j);
  assert_string_equal(id, "1727333520582_47588994306224");
  free(id);
  json_decref(j);
  j = load("{\"message_id\":\"1727333520582 47588994306224\"}");
  id = cliq__posted_message_id(j);
  assert_string_equal(id, "1727333520582_47588994306224");
  free(id);
  json_decref(j);
  j = load("{\"other\":1}");
  assert_null(cliq__posted_message_id(j));
  json_decref(j);
  assert_null(cliq__posted_message_id(NULL)); /* 204: no body */
}

/* ---- malformed input --------------------------------------------------- */

static void test_missing_required(void **state)
{
  (void)state;
  cliq_error err;
  cliq_message m;
  cliq_thread t;
  cliq_channel ch;
  cliq_user u;
  static const char *const bad_messages[] = {
      "{\"time\":1}", "{\"id\":\"1_1\"}", "{\"id\":{},\"time\":1}",
      "{\"id\":\"\",\"time\":1}", "{\"id\":\"1_1\",\"time\":\"yesterday\"}",
      "{\"id\":[\"1_1\"],\"time\":1}", "[]", "\"msg\"", "42", "null",
  };
  for (size_t i = 0; i < sizeof bad_messages / sizeof *bad_messages; i++) {
    json_t *j = json_loads(bad_messages[i], JSON_DECODE_ANY, NULL);
    memset(&err, 0, sizeof err);
    assert_int_equal(cliq_parse_message(j, &m, &err), -EIO);
    assert_int_equal(err.err, EIO);
    assert_true(strlen(err.message) > 0);
    assert_null(m.id);
    assert_null(m.raw);
    json_decref(j);
  }
  static const char *const bad_threads[] = {
      "{\"title\":\"x\"}", "{\"chat_id\":true}", "{\"chat_id\":\"\"}", "[]",
  };
  for (size_t i = 0; i < sizeof bad_threads / sizeof *bad_threads; i++) {
    json_t *j = json_loads(bad_threads[i], JSON_DECODE_ANY, NULL);
    assert_int_equal(cliq_parse_thread(j, &t, &err), -EIO);
    assert_null(t.chat_id);
    json_decref(j);
  }
  static const char *const bad_channels[] = {
      "{\"chat_id\":\"CT_1\",\"name\":\"x\"}",
      "{\"channel_id\":\"O1\",\"name\":\"x\"}",
      "{\"channel_id\":\"O1\",\"chat_id\":\"CT_1\"}",
      "{\"channel_id\":1.5,\"chat_id\":\"CT_1\",\"name\":\"x\"}",
  };
  for (size_t i = 0; i < sizeof bad_channels / sizeof *bad_channels; i++) {
    json_t *j = json_loads(bad_channels[i], JSON_DECODE_ANY, NULL);
    assert_int_equal(cliq_parse_channel(j, &ch, &err), -EIO);
    assert_null(ch.channel_id);
    json_decref(j);
  }
  assert_int_equal(cliq_parse_user(NULL, &u, &err), -EIO);
  assert_int_equal(cliq_parse_message(NULL, &m, NULL), -EIO);
  assert_int_equal(cliq_parse_thread(NULL, &t, NULL), -EIO);
  assert_int_equal(cliq_parse_channel(NULL, &ch, NULL), -EIO);

  /* pages of the wrong shape */
  cliq_thread_list tl = {0};
  cliq_channel_list cl = {0};
  json_t *j = load("{\"data\":\"not a list\",\"channels\":{}}");
  assert_int_equal(cliq__parse_thread_page(j, &tl, &err), -EIO);
  assert_int_equal(cliq__parse_channel_page(j, &cl, &err), -EIO);
  cliq_thread_list_clear(&tl);
  cliq_channel_list_clear(&cl);
  json_decref(j);
  j = load("{\"data\":[{\"chat_id\":\"CT_1-T-1\"},{\"title\":\"no id\"}]}");
  assert_int_equal(cliq__parse_thread_page(j, &tl, &err), 0);
  assert_int_equal(tl.count, 1);
  assert_int_equal(tl.skipped, 1);
  cliq_thread_list_clear(&tl);
  json_decref(j);
  j = load("{\"channels\":[{\"channel_id\":\"O1\",\"name\":\"no chat id\"},"
           "{\"channel_id\":\"O2\",\"chat_id\":\"CT_2\",\"name\":\"ok\"}]}");
  assert_int_equal(cliq__parse_channel_page(j, &cl, &err), 0);
  assert_int_equal(cl.count, 1);
  assert_string_equal(cl.items[0].channel_id, "O2");
  assert_int_equal(cl.skipped, 1);
  cliq_channel_list_clear(&cl);
  json_decref(j);
}

/* Runs every parser on a value; the result must be 0 or -EIO, and a failed
 * parse leaves nothing behind (valgrind checks the leaks). */
static void parse_everything(json_t *j)
{
  cliq_error err;
  cliq_message m;
  cliq_thread t;
  cliq_channel ch;
  cliq_user u;
  int r;
  r = cliq_parse_message(j, &m, &err);
  assert_true(r == 0 || r == -EIO);
  if (r == 0)
    cliq_message_clear(&m);
  r = cliq_parse_thread(j, &t, &err);
  assert_true(r == 0 || r == -EIO);
  if (r == 0)
    cliq_thread_clear(&t);
  r = cliq_parse_channel(j, &ch, &err);
  assert_true(r == 0 || r == -EIO);
  if (r == 0)
    cliq_channel_clear(&ch);
  r = cliq_parse_user(j, &u, &err);
  assert_true(r == 0 || r == -EIO);
  if (r == 0) {
    free(u.user_id);
    free(u.email_id);
    free(u.name);
  }
  cliq_message_list ml;
  r = cliq__parse_message_list(j, &ml, &err);
  assert_true(r == 0 || r == -EIO);
  cliq_message_list_clear(&ml);
  cliq_user_list ul;
  r = cliq__parse_user_list(j, "members", &ul, &err);
  assert_true(r == 0 || r == -EIO);
  cliq_user_list_clear(&ul);
  cliq_thread_list tl = {0};
  r = cliq__parse_thread_page(j, &tl, &err);
  assert_true(r == 0 || r == -EIO);
  cliq_thread_list_clear(&tl);
  cliq_channel_list cl = {0};
  r = cliq__parse_channel_page(j, &cl, &err);
  assert_true(r == 0 || r == -EIO);
  cliq_channel_list_clear(&cl);
  free(cliq__posted_message_id(j));
}

static const char *const ALL_BODIES[] = {
    THREAD_DETAILS, FOLLOWERS, NONFOLLOWERS, MEMBERS, CHANNEL, THREAD_ENTRY,
    MESSAGE, MAIN_MESSAGE, ERR_THREAD_CHATID_INVALID, ERR_NESTED,
    ERR_OAUTH_THROTTLE,
};

/* Every prefix of every documented body: not JSON (no crash, error body
 * empty) or, if jansson accepts it, parsed without a crash. */
static void test_truncated_bodies(void **state)
{
  (void)state;
  for (size_t b = 0; b < sizeof ALL_BODIES / sizeof *ALL_BODIES; b++) {
    const char *body = ALL_BODIES[b];
    size_t n = strlen(body);
    for (size_t cut = 0; cut < n; cut++) {
      cliq_error err = {0};
      cliq_parse_error_body(body, cut, &err);
      json_t *j = json_loadb(body, cut, 0, NULL);
      if (j) {
        parse_everything(j);
        json_decref(j);
      }
    }
  }
}

/* Replaces each member (recursively) by each wrong type in turn, then
 * removes it. */
static void mutate_and_parse(json_t *root, json_t *obj, int depth)
{
  if (depth > 4 || !json_is_object(obj))
    return;
  json_t *wrong[] = {
      json_null(), json_true(), json_integer(-1), json_real(1e300),
      json_string(""), json_array(), json_object(),
      json_integer(INT64_MAX), json_string("\xef\xbf\xbd garbage"),
  };
  size_t nkeys = json_object_size(obj), k = 0;
  char **keys = calloc(nkeys, sizeof *keys);
  const char *key;
  json_t *value;
  json_object_foreach(obj, key, value) keys[k++] = strdup(key);
  for (k = 0; k < nkeys; k++) {
    json_t *saved = json_incref(json_object_get(obj, keys[k]));
    for (size_t w = 0; w < sizeof wrong / sizeof *wrong; w++) {
      json_object_set(obj, keys[k], wrong[w]);
      parse_everything(root);
      json_t *inner = json_object_get(root, "data");
      if (inner)
        parse_everything(inner);
    }
    json_object_del(obj, keys[k]);
    parse_everything(root);
    json_object_set(obj, keys[k], saved);
    mutate_and_parse(root, saved, depth + 1);
    if (json_is_array(saved)) {
      size_t i;
      json_t *item;
      json_array_foreach(saved, i, item) mutate_and_parse(root, item, depth + 1);
    }
    json_decref(saved);
    free(keys[k]);
  }
  free(keys);
  for (size_t w = 0; w < sizeof wrong / sizeof *wrong; w++)
    json_decref(wrong[w]);
}

static void test_wrong_types(void **state)
{
  (void)state;
  for (size_t b = 0; b < sizeof ALL_BODIES / sizeof *ALL_BODIES; b++) {
    json_t *j = load(ALL_BODIES[b]);
    mutate_and_parse(j, j, 0);
    json_decref(j);
  }
}

static void test_deep_and_huge(void **state)
{
  (void)state;
  /* deeply nested: jansson refuses it; our error-body reader must cope */
  size_t depth = 100000;
  char *deep = malloc(depth * 2 + 16);
  size_t n = 0;
  for (size_t i = 0; i < depth; i++)
    deep[n++] = '[';
  for (size_t i = 0; i < depth; i++)
    deep[n++] = ']';
  deep[n] = '\0';
  cliq_error err = {0};
  cliq_parse_error_body(deep, n, &err);
  assert_string_equal(err.code, "");
  assert_null(json_loads(deep, 0, NULL));
  free(deep);

  /* nested objects within jansson's limit: unknown fields, ignored */
  char *nested = NULL;
  size_t levels = 1000;
  size_t cap = levels * 8 + 128;
  nested = malloc(cap);
  n = (size_t)snprintf(nested, cap, "{\"id\":\"1_1\",\"time\":1,\"x\":");
  for (size_t i = 0; i < levels; i++)
    n += (size_t)snprintf(nested + n, cap - n, "{\"a\":");
  n += (size_t)snprintf(nested + n, cap - n, "1");
  for (size_t i = 0; i < levels; i++)
    nested[n++] = '}';
  nested[n++] = '}';
  nested[n] = '\0';
  json_t *j = load(nested);
  cliq_message m;
  assert_int_equal(cliq_parse_message(j, &m, NULL), 0);
  cliq_message_clear(&m);
  json_decref(j);
  free(nested);

  /* huge numbers */
  static const char *const huge[] = {
      "{\"id\":\"1_1\",\"time\":1e308}",
      "{\"id\":\"1_1\",\"time\":-1e308}",
      "{\"id\":\"1_1\",\"time\":9223372036854775807}",
      "{\"id\":\"1_1\",\"time\":\"9223372036854775807\"}",
      "{\"id\":\"1_1\",\"time\":\"99999999999999999999999999\"}",
  };
  for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
    j = load(huge[i]);
    assert_int_equal(cliq_parse_message(j, &m, NULL), -EIO);
    json_decref(j);
  }
  /* beyond int64 jansson itself refuses */
  assert_null(json_loads("{\"id\":\"1_1\",\"time\":99999999999999999999}", 0, NULL));
  j = load("{\"chat_id\":\"CT_1-T-1\",\"follower_count\":1e300,"
           "\"message_count\":\"99999999999999999999999\"}");
  cliq_thread t;
  assert_int_equal(cliq_parse_thread(j, &t, NULL), 0);
  assert_int_equal(t.follower_count, 0);
  assert_int_equal(t.message_count, -1);
  cliq_thread_clear(&t);
  json_decref(j);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_time_variants),
      cmocka_unit_test(test_normalize_message_id),
      cmocka_unit_test(test_error_bodies),
      cmocka_unit_test(test_thread_details_example),
      cmocka_unit_test(test_thread_variants),
      cmocka_unit_test(test_channel),
      cmocka_unit_test(test_message_text),
      cmocka_unit_test(test_message_non_text),
      cmocka_unit_test(test_message_list_sorted_deduped),
      cmocka_unit_test(test_user_lists),
      cmocka_unit_test(test_posted_message_id),
      cmocka_unit_test(test_json_load_tolerant),
      cmocka_unit_test(test_missing_required),
      cmocka_unit_test(test_truncated_bodies),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_deep_and_huge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
