/* fs/wrules: the write rules checked without Cliq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/wrules.h"

static void test_utf8(void **state)
{
  (void)state;
  assert_int_equal(wr_utf8_check("plain", 5, true), 0);
  assert_int_equal(wr_utf8_check("\xc3\xa9t\xc3\xa9", 5, true), 0);
  assert_int_equal(wr_utf8_check("\xf0\x9f\x98\x80", 4, true), 0);
  assert_int_equal(wr_utf8_check("\xff", 1, false), -EILSEQ);
  assert_int_equal(wr_utf8_check("a\x80", 2, false), -EILSEQ);
  assert_int_equal(wr_utf8_check("\xc0\xaf", 2, false), -EILSEQ);      /* overlong */
  assert_int_equal(wr_utf8_check("\xed\xa0\x80", 3, false), -EILSEQ);  /* surrogate */
  assert_int_equal(wr_utf8_check("\xf4\x90\x80\x80", 4, false), -EILSEQ);
  /* a sequence cut at the end: fine until the last write */
  assert_int_equal(wr_utf8_check("ab\xc3", 3, false), 0);
  assert_int_equal(wr_utf8_check("ab\xe2\x82", 4, false), 0);
  assert_int_equal(wr_utf8_check("ab\xc3", 3, true), -EILSEQ);
  assert_int_equal(wr_utf8_check("ab\xc3x", 4, false), -EILSEQ);
  assert_int_equal(wr_utf8_chars("\xc3\xa9t\xc3\xa9", 5), 3);
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
  size_t ul = strlen(unit), tl = strlen(tail);
  char *s = malloc(ul * times + tl + 1);
  for (size_t i = 0; i < times; i++)
    memcpy(s + i * ul, unit, ul);
  memcpy(s + ul * times, tail, tl + 1);
  return s;
}

static void test_message_size(void **state)
{
  (void)state;
  char *s = repeat("a", 5000, "");
  assert_int_equal(wr_message_check(s, strlen(s), true), 0);
  free(s);
  s = repeat("a", 5000, "\n");        /* the trailing newline is not sent */
  assert_int_equal(wr_message_check(s, strlen(s), true), 0);
  assert_int_equal(wr_message_len(s, strlen(s)), 5000);
  free(s);
  s = repeat("a", 5000, "\n\n");      /* only one newline is removed */
  assert_int_equal(wr_message_check(s, strlen(s), true), -EMSGSIZE);
  free(s);
  s = repeat("a", 5001, "");
  assert_int_equal(wr_message_check(s, strlen(s), false), -EMSGSIZE);
  free(s);
  s = repeat("\xc3\xa9", 5000, "");   /* characters, not bytes */
  assert_int_equal(wr_message_check(s, strlen(s), true), 0);
  free(s);
  s = repeat("\xc3\xa9", 5001, "");
  assert_int_equal(wr_message_check(s, strlen(s), true), -EMSGSIZE);
  free(s);
  assert_int_equal(wr_message_check("x\xff", 2, false), -EILSEQ);
  assert_int_equal(wr_message_len("", 0), 0);
  assert_int_equal(wr_message_len("\n", 1), 0);
  assert_int_equal(wr_message_len("a\n\n", 3), 2);
}

static void test_state(void **state)
{
  (void)state;
  bool close = false;
  assert_int_equal(wr_state_parse("close\n", 6, true, &close), 0);
  assert_true(close);
  assert_int_equal(wr_state_parse("  closed  ", 10, true, &close), 0);
  assert_true(close);
  assert_int_equal(wr_state_parse("reopen", 6, true, &close), 0);
  assert_false(close);
  assert_int_equal(wr_state_parse("\topen\r\n", 7, true, &close), 0);
  assert_false(close);
  assert_int_equal(wr_state_parse("", 0, true, &close), 1);
  assert_int_equal(wr_state_parse(" \n", 2, true, &close), 1);
  assert_int_equal(wr_state_parse("clo", 3, false, &close), 1);   /* more may come */
  assert_int_equal(wr_state_parse("clo", 3, true, &close), -EINVAL);
  assert_int_equal(wr_state_parse("clo ", 4, false, &close), -EINVAL);
  assert_int_equal(wr_state_parse("shut", 4, false, &close), -EINVAL);
  assert_int_equal(wr_state_parse("close now", 9, false, &close), -EINVAL);
  assert_int_equal(wr_state_parse("CLOSE", 5, true, &close), -EINVAL);
}

static void test_follower_lines(void **state)
{
  (void)state;
  char *id = NULL;
  bool remove = false;
  const char *line = "855727961\tryan.west@zylker.com\tRyan West";
  assert_int_equal(wr_follower_line(line, strlen(line), &id, &remove), 0);
  assert_string_equal(id, "855727961");
  assert_false(remove);
  free(id);
  assert_int_equal(wr_follower_line(" -855727961 ", 12, &id, &remove), 0);
  assert_string_equal(id, "855727961");
  assert_true(remove);
  free(id);
  assert_int_equal(wr_follower_line("lucy@z.com", 10, &id, &remove), 0);
  assert_string_equal(id, "lucy@z.com");
  free(id);
  assert_int_equal(wr_follower_line("   ", 3, &id, &remove), 1);
  assert_null(id);
  assert_int_equal(wr_follower_line("-", 1, &id, &remove), -EINVAL);
}

static void test_ctl_lines(void **state)
{
  (void)state;
  const char *verbs[] = { "follow", "unfollow", "mute", "unmute", "leave",
                          "close", "reopen" };
  for (size_t i = 0; i < 7; i++) {
    char *v = NULL;
    assert_int_equal(wr_ctl_line(verbs[i], strlen(verbs[i]), false, &v), 0);
    assert_string_equal(v, verbs[i]);
    free(v);
  }
  char *v = NULL;
  assert_int_equal(wr_ctl_line(" mute \r", 7, false, &v), 0);
  assert_string_equal(v, "mute");
  free(v);
  assert_int_equal(wr_ctl_line("", 0, false, &v), 1);
  assert_int_equal(wr_ctl_line("dance", 5, false, &v), -EINVAL);
  assert_int_equal(wr_ctl_line("unfo", 4, true, &v), 1);
  assert_int_equal(wr_ctl_line("unfo", 4, false, &v), -EINVAL);
  assert_int_equal(wr_ctl_line("unfo ", 5, true, &v), -EINVAL);
  assert_int_equal(wr_ctl_line("open", 4, false, &v), -EINVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_message_size),
    cmocka_unit_test(test_state),
    cmocka_unit_test(test_follower_lines),
    cmocka_unit_test(test_ctl_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
