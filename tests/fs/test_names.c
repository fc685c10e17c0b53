/* fs/names: the naming rules of cliqfs(1) THE TREE for thread directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/names.h"

#define ID(n) "CT_1207124526552602256_60002085329-T-" n

static void check_safe(const char *title, const char *id, const char *want)
{
  char *got = names_safe_title(title, id, NAMES_MAX_BYTES);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_numeric_id(void **state)
{
  (void)state;
  assert_string_equal(names_numeric_id(ID("1291567019566818579")),
                      "1291567019566818579");
  assert_string_equal(names_numeric_id("CT_12_34"), "34");
  assert_string_equal(names_numeric_id("plain"), "plain");
  assert_string_equal(names_numeric_id(NULL), "");
}

static void test_slash_and_controls(void **state)
{
  (void)state;
  check_safe("a/b", ID("1"), "a\xe2\x88\x95" "b");
  check_safe("//", ID("1"), "\xe2\x88\x95\xe2\x88\x95");
  check_safe("tab\there\nnl\x01\x7f", ID("1"), "tabherenl");
  check_safe("c1 \xc2\x85 gone", ID("1"), "c1  gone");       /* U+0085 (NEL) */
  check_safe("caf\xc3\xa9 \xe2\x82\xac", ID("1"), "caf\xc3\xa9 \xe2\x82\xac");
  check_safe("bad \xff\xfe bytes", ID("1"), "bad  bytes");
  check_safe("over\xc0\xaflong", ID("1"), "overlong");        /* overlong '/' */
}

static void test_empty_dots(void **state)
{
  (void)state;
  check_safe("", ID("42"), "42");
  check_safe(NULL, ID("42"), "42");
  check_safe(".", ID("42"), "42");
  check_safe("..", ID("42"), "42");
  check_safe("\x01\x02", ID("42"), "42");
  check_safe("...", ID("42"), "...");
  check_safe(". ", ID("42"), ". ");
  /* Blank titles follow the blank rule, Unicode spaces included. */
  check_safe("   ", ID("42"), "42");
  check_safe(" \t \n ", ID("42"), "42");
  check_safe("\xc2\xa0\xe3\x80\x80\xe2\x80\x8b", ID("42"), "42");
  check_safe(" x ", ID("42"), " x ");
}

static void test_check_new(void **state)
{
  (void)state;
  const char *why = NULL;
  assert_int_equal(names_check_new("Plan B", &why), 0);
  assert_null(why);
  assert_int_equal(names_check_new("caf\xc3\xa9 \xe2\x88\x95 x", NULL), 0);
  static const char *const refused[] = {
    "Plan\nB",          "Plan\x1b[31mB",    "bell\x07",  "del\x7f",
    "nel\xc2\x85",       "bad\xff",          "   ",       "\xc2\xa0",
    "",                  ".",                 "..",
    ID("1291567019566818579"),               "x-T-1",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    why = NULL;
    if (names_check_new(refused[i], &why) != -EINVAL)
      fail_msg("accepted [%s]", refused[i]);
    assert_non_null(why);
  }
  assert_int_equal(names_check_new("Plan\nB", &why), -EINVAL);
  assert_non_null(strstr(why, "control"));
  assert_int_equal(names_check_new(ID("7"), &why), -EINVAL);
  assert_non_null(strstr(why, "chat id"));
}

static void test_long_cut_at_boundary(void **state)
{
  (void)state;
  char title[601];
  for (int i = 0; i < 300; i += 2) {   /* 150 x U+00E9, 300 bytes */
    title[i] = '\xc3';
    title[i + 1] = '\xa9';
  }
  title[300] = '\0';
  char *got = names_safe_title(title, ID("1"), NAMES_MAX_BYTES);
  assert_int_equal(strlen(got), 254);  /* 255 would split a character */
  assert_int_equal((unsigned char)got[253], 0xa9);
  free(got);
  memset(title, 'x', 600);
  title[600] = '\0';
  got = names_safe_title(title, ID("1"), NAMES_MAX_BYTES);
  assert_int_equal(strlen(got), 255);
  free(got);
  /* '/' grows to three bytes: the limit counts the result */
  memset(title, '/', 100);
  title[100] = '\0';
  got = names_safe_title(title, ID("1"), NAMES_MAX_BYTES);
  assert_int_equal(strlen(got), 255);
  free(got);
}

static void assign(const char *const *titles, const char *const *ids, size_t n,
                   const char *const *reserved, size_t n_res, char **out)
{
  assert_int_equal(names_assign(titles, ids, n, reserved, n_res, out), 0);
}

static void free_names(char **names, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(names[i]);
}

static void test_duplicates(void **state)
{
  (void)state;
  const char *titles[] = { "Weekly sync", "Plan", "Weekly sync", "weekly sync" };
  const char *ids[] = { ID("1291567019566800006"), ID("7"),
                        ID("1291567019566800007"), ID("8") };
  char *names[4];
  assign(titles, ids, 4, NULL, 0, names);
  assert_string_equal(names[0], "Weekly sync (800006)");
  assert_string_equal(names[1], "Plan");
  assert_string_equal(names[2], "Weekly sync (800007)");
  assert_string_equal(names[3], "weekly sync");   /* names are case-sensitive */
  free_names(names, 4);

  /* the order of the list does not change the names */
  const char *titles2[] = { "Weekly sync", "Weekly sync" };
  const char *ids2[] = { ID("1291567019566800007"), ID("1291567019566800006") };
  assign(titles2, ids2, 2, NULL, 0, names);
  assert_string_equal(names[0], "Weekly sync (800007)");
  assert_string_equal(names[1], "Weekly sync (800006)");
  free_names(names, 2);

  /* a thread leaving does not rename the others that still clash */
  const char *titles3[] = { "X", "X", "X" };
  const char *ids3[] = { ID("100001"), ID("100002"), ID("100003") };
  assign(titles3, ids3, 3, NULL, 0, names);
  assert_string_equal(names[1], "X (100002)");
  free_names(names, 3);
  assign(titles3 + 1, ids3 + 1, 2, NULL, 0, names);
  assert_string_equal(names[0], "X (100002)");
  free_names(names, 2);
}

static void test_reserved_and_collisions(void **state)
{
  (void)state;
  const char *reserved[] = { "info", "messages" };
  const char *titles[] = { "info", "Plan" };
  const char *ids[] = { ID("5000009"), ID("5000010") };
  char *names[3];
  assign(titles, ids, 2, reserved, 2, names);
  assert_string_equal(names[0], "info (000009)");
  assert_string_equal(names[1], "Plan");
  free_names(names, 2);

  /* same last 6 digits: the full id decides */
  const char *t2[] = { "Dup", "Dup" };
  const char *i2[] = { ID("1000123456"), ID("2000123456") };
  assign(t2, i2, 2, NULL, 0, names);
  assert_string_not_equal(names[0], names[1]);
  assert_string_equal(names[0], "Dup (123456)");
  assert_string_equal(names[1], "Dup (2000123456)");
  free_names(names, 2);

  /* a title that looks like another's suffixed name */
  const char *t3[] = { "A", "A", "A (000001)" };
  const char *i3[] = { ID("000001"), ID("000002"), ID("9") };
  assign(t3, i3, 3, NULL, 0, names);
  assert_string_not_equal(names[0], names[2]);
  assert_string_not_equal(names[1], names[2]);
  assert_string_not_equal(names[0], names[1]);
  free_names(names, 3);
}

static void test_long_duplicates_fit(void **state)
{
  (void)state;
  char title[400];
  memset(title, 'y', 399);
  title[399] = '\0';
  const char *titles[] = { title, title };
  const char *ids[] = { ID("111111"), ID("222222") };
  char *names[2];
  assign(titles, ids, 2, NULL, 0, names);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(strlen(names[i]), 255);
  }
  assert_string_equal(names[0] + 255 - 9, " (111111)");
  free_names(names, 2);
  assert_int_equal(names_assign(NULL, NULL, 0, NULL, 0, names), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_numeric_id),
    cmocka_unit_test(test_slash_and_controls),
    cmocka_unit_test(test_empty_dots),
    cmocka_unit_test(test_check_new),
    cmocka_unit_test(test_long_cut_at_boundary),
    cmocka_unit_test(test_duplicates),
    cmocka_unit_test(test_reserved_and_collisions),
    cmocka_unit_test(test_long_duplicates_fit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
