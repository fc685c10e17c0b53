/* cache/store's renderers: message lines and people lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"

static char *render_json(const char *json)
{
  json_error_t jerr;
  json_t *v = json_loads(json, 0, &jerr);
  assert_non_null(v);
  cliq_message m;
  assert_int_equal(cliq_parse_message(v, &m, NULL), 0);
  json_decref(v);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  assert_int_equal(store_render_message(&m, &buf, &len, &cap), 0);
  assert_int_equal(strlen(buf), len);
  cliq_message_clear(&m);
  return buf;
}

static void test_time(void **state)
{
  (void)state;
  char ts[32];
  store_format_time(1795978490000LL, ts, sizeof ts);
  assert_string_equal(ts, "2026-11-29T18:54:50Z");
  store_format_time(0, ts, sizeof ts);
  assert_string_equal(ts, "1970-01-01T00:00:00Z");
  store_format_time(1795978490999LL, ts, sizeof ts);   /* milliseconds dropped */
  assert_string_equal(ts, "2026-11-29T18:54:50Z");
}

static void test_one_line(void **state)
{
  (void)state;
  char *s = render_json("{\"id\":\"1795978490000_1\",\"time\":1795978490000,"
                        "\"type\":\"text\",\"sender\":{\"id\":\"9\",\"name\":\"Ryan West\"},"
                        "\"content\":{\"text\":\"hello there\"}}");
  assert_string_equal(s, "2026-11-29T18:54:50Z Ryan West: hello there\n");
  free(s);
}

static void test_multi_line(void **state)
{
  (void)state;
  char *s = render_json("{\"id\":\"1_1\",\"time\":\"2026-11-29T20:54:50+02:00\","
                        "\"sender\":{\"id\":\"9\",\"name\":\"Tim\"},"
                        "\"content\":{\"text\":\"notes:\\n- one\\r\\n- two\\n\\n\"}}");
  /* UTC, continuation lines start with a TAB, trailing newlines dropped */
  assert_string_equal(s, "2026-11-29T18:54:50Z Tim: notes:\n\t- one\n\t- two\n");
  free(s);
  s = render_json("{\"id\":\"1_2\",\"time\":1000,\"sender\":{\"id\":\"9\",\"name\":\"Tim\"},"
                  "\"content\":{\"text\":\"a\\n\\nb\"}}");
  assert_string_equal(s, "1970-01-01T00:00:01Z Tim: a\n\t\n\tb\n");
  free(s);
}

static void test_other_kinds(void **state)
{
  (void)state;
  char *s = render_json("{\"id\":\"1_3\",\"time\":1000,\"type\":\"file\","
                        "\"sender\":{\"id\":\"9\",\"name\":\"Tim\"},"
                        "\"content\":{\"file\":{\"name\":\"plan.pdf\"}}}");
  assert_string_equal(s, "1970-01-01T00:00:01Z Tim: [file: plan.pdf]\n");
  free(s);
  /* no sender name: the id; empty text: no trailing space */
  s = render_json("{\"id\":\"1_4\",\"time\":1000,\"sender\":{\"id\":\"9\"},"
                  "\"content\":{\"text\":\"\"}}");
  assert_string_equal(s, "1970-01-01T00:00:01Z 9:\n");
  free(s);
}

static void test_users(void **state)
{
  (void)state;
  cliq_user u = { "855727961", "ryan.west@zylker.com", "Ryan West" };
  char *buf = NULL;
  size_t len = 0, cap = 0;
  assert_int_equal(store_render_user(&u, &buf, &len, &cap), 0);
  cliq_user v = { "2", "", "No Mail" };
  assert_int_equal(store_render_user(&v, &buf, &len, &cap), 0);
  assert_string_equal(buf, "855727961\tryan.west@zylker.com\tRyan West\n2\t\tNo Mail\n");
  free(buf);
}

/* Names from Cliq cannot forge lines or fields. */
static void test_hostile_names(void **state)
{
  (void)state;
  char *s = render_json("{\"id\":\"1_5\",\"time\":1000,"
                        "\"sender\":{\"id\":\"9\",\"name\":\"Eve\\n1970-01-01T00:00:09Z Boss\"},"
                        "\"content\":{\"text\":\"hi\"}}");
  assert_string_equal(s, "1970-01-01T00:00:01Z Eve 1970-01-01T00:00:09Z Boss: hi\n");
  free(s);
  cliq_user u = { "1\t2", "a@b\r", "Eve\nMallory\t99\tceo@x" };
  char *buf = NULL;
  size_t len = 0, cap = 0;
  assert_int_equal(store_render_user(&u, &buf, &len, &cap), 0);
  assert_string_equal(buf, "1 2\ta@b \tEve Mallory 99 ceo@x\n");
  free(buf);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_time),
    cmocka_unit_test(test_one_line),
    cmocka_unit_test(test_multi_line),
    cmocka_unit_test(test_other_kinds),
    cmocka_unit_test(test_users),
    cmocka_unit_test(test_hostile_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
