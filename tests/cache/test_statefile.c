/* Unit tests for cache/statefile. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/statefile.h"
#include "testutil.h"

static int setup_dir(void **state)
{
  char *dir = tu_mkdtemp("statefile");
  if (!dir)
    return -1;
  *state = dir;
  return 0;
}

static int teardown_dir(void **state)
{
  tu_rm_rf(*state);
  free(*state);
  return 0;
}

static char *path_in(const char *dir, const char *name)
{
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
  return p;
}

/* The file holds exactly want_len bytes of want. */
static void assert_content(const char *file, const char *want, size_t want_len)
{
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(statefile_read(file, &buf, &len), 0);
  assert_int_equal(len, want_len);
  assert_memory_equal(buf, want, want_len);
  assert_int_equal(buf[len], '\0');
  free(buf);
}

static void test_mkdirs(void **state)
{
  const char *dir = *state;
  char *deep = path_in(dir, "a/b/c/");
  assert_int_equal(statefile_mkdirs(deep, 0700), 0);
  struct stat st;
  assert_int_equal(stat(deep, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  /* Existing folders are fine. */
  assert_int_equal(statefile_mkdirs(deep, 0700), 0);
  assert_int_equal(statefile_mkdirs(dir, 0700), 0);

  char *file = path_in(dir, "a/plain");
  assert_int_equal(statefile_write_atomic(file, "x", 1), 0);
  char *under_file = path_in(dir, "a/plain/sub");
  assert_int_equal(statefile_mkdirs(under_file, 0700), -ENOTDIR);
  assert_int_equal(statefile_mkdirs("", 0700), -EINVAL);
  free(deep);
  free(file);
  free(under_file);
}

static void test_write_read_roundtrip(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "ledger");
  char *buf = NULL;
  size_t len = 99;
  assert_int_equal(statefile_read(file, &buf, &len), -ENOENT);
  assert_null(buf);

  assert_int_equal(statefile_write_atomic(file, "hello", 5), 0);
  assert_int_equal(statefile_read(file, &buf, &len), 0);
  assert_int_equal(len, 5);
  assert_string_equal(buf, "hello");
  free(buf);

  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* Replacing with something shorter leaves nothing of the old content. */
  assert_int_equal(statefile_write_atomic(file, "hi", 2), 0);
  assert_content(file, "hi", 2);

  /* Empty content and binary content. */
  assert_int_equal(statefile_replace(file, "", 0), 0);
  assert_int_equal(statefile_read(file, &buf, &len), 0);
  assert_int_equal(len, 0);
  assert_string_equal(buf, "");
  free(buf);
  size_t big_len = 3 * 4096 + 17;
  char *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++)
    big[i] = (char)(i * 7);
  assert_int_equal(statefile_replace(file, big, big_len), 0);
  assert_int_equal(statefile_read(file, &buf, &len), 0);
  assert_int_equal(len, big_len);
  assert_memory_equal(buf, big, big_len);
  free(buf);
  free(big);

  /* No temporary file is left behind by successful writes. */
  assert_int_equal(tu_count_files(dir, statefile_is_temp_name), 0);
  assert_int_equal(tu_count_files(dir, NULL), 1);
  free(file);
}

static void test_write_into_missing_folder(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "missing/ledger");
  assert_int_equal(statefile_write_atomic(file, "x", 1), -ENOENT);
  assert_int_equal(statefile_write_atomic(dir, "x", 1), -EISDIR);
  assert_int_equal(tu_count_files(dir, NULL), 0);
  free(file);
}

static void test_unlink_durable(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "entry");
  assert_int_equal(statefile_write_atomic(file, "x", 1), 0);
  assert_int_equal(statefile_unlink_durable(file), 0);
  assert_int_equal(access(file, F_OK), -1);
  assert_int_equal(statefile_unlink_durable(file), -ENOENT);
  free(file);
}

static void test_temp_names(void **state)
{
  (void)state;
  assert_true(statefile_is_temp_name(".ledger.tmp.Ab12Cd"));
  assert_true(statefile_is_temp_name(".0000000000000001.json.tmp.zzzzzz"));
  assert_false(statefile_is_temp_name("ledger"));
  assert_false(statefile_is_temp_name(".lock"));
  assert_false(statefile_is_temp_name("ledger.tmp.Ab12Cd"));
  assert_false(statefile_is_temp_name(".ledger.tmp.Ab1"));
  assert_false(statefile_is_temp_name(".ledger.tmp.Ab1/2C"));
  assert_false(statefile_is_temp_name(".tmp.abcdef"));
  assert_false(statefile_is_temp_name(NULL));
}

/* A child rewrites one file in a loop with two contents of different
 * lengths; we kill it with SIGKILL at arbitrary moments.  The file must
 * always be exactly one of the two, and whatever temporary file the kill
 * left behind is recognisable as such. */
static void test_crash_leaves_old_or_new(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "journal");
  size_t len_a = 200000, len_b = 150001;
  char *a = malloc(len_a), *b = malloc(len_b);
  memset(a, 'a', len_a);
  memset(b, 'b', len_b);
  assert_int_equal(statefile_write_atomic(file, a, len_a), 0);

  for (int round = 0; round < 12; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      for (unsigned i = 0;; i++) {
        bool use_a = (i % 2) != 0;
        int rc = use_a ? statefile_write_atomic(file, a, len_a)
                       : statefile_replace(file, b, len_b);
        if (rc)
          _exit(3);
      }
    }
    /* Vary the moment of the kill across rounds. */
    tu_sleep(0.002 + 0.003 * round);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(statefile_read(file, &buf, &len), 0);
    if (len == len_a)
      assert_memory_equal(buf, a, len_a);
    else if (len == len_b)
      assert_memory_equal(buf, b, len_b);
    else
      fail_msg("torn file: %zu bytes", len);
    free(buf);
    /* Besides the file, at most one temporary file per kill so far. */
    int temps = tu_count_files(dir, statefile_is_temp_name);
    assert_true(temps >= 0 && temps <= round + 1);
    assert_int_equal(tu_count_files(dir, NULL), 1 + temps);
  }
  free(a);
  free(b);
  free(file);
}

/* In place: the same file (inode) each time, the exact new content whether
 * it is shorter or longer, created 0600; a symbolic link is not followed. */
static void test_overwrite_in_place(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "ledger");
  struct stat a, b;
  assert_int_equal(statefile_overwrite(file, "{\"long\":[1,2,3]}", 17), 0);
  assert_int_equal(stat(file, &a), 0);
  assert_int_equal(a.st_mode & 0777, 0600);
  assert_int_equal(statefile_overwrite(file, "{}", 2), 0);
  assert_int_equal(stat(file, &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  assert_content(file, "{}", 2);
  assert_int_equal(statefile_overwrite(file, "[1,2,3,4,5]", 11), 0);
  assert_content(file, "[1,2,3,4,5]", 11);
  char *link = path_in(dir, "link");
  assert_int_equal(symlink(file, link), 0);
  assert_int_equal(statefile_overwrite(link, "x", 1), -ELOOP);
  assert_int_equal(statefile_overwrite(NULL, "x", 1), -EINVAL);
  free(link);
  free(file);
}

static void test_read_json(void **state)
{
  const char *dir = *state;
  char *file = path_in(dir, "record");
  assert_null(statefile_read_json(file));
  const char *cut = "{\"self\": \"u1\"", *whole = "{\"self\": \"u1\"}";
  assert_int_equal(statefile_write_atomic(file, cut, strlen(cut)), 0);
  assert_null(statefile_read_json(file));
  assert_int_equal(statefile_write_atomic(file, whole, strlen(whole)), 0);
  json_t *root = statefile_read_json(file);
  assert_non_null(root);
  assert_string_equal(json_string_value(json_object_get(root, "self")), "u1");
  json_decref(root);
  free(file);
}

static void test_digest_vectors(void **state)
{
  (void)state;
  char hex[65];
  statefile_digest("", 0, hex);
  assert_string_equal(
      hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  statefile_digest("abc", 3, hex);
  assert_string_equal(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *two_blocks =
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  statefile_digest(two_blocks, strlen(two_blocks), hex);
  assert_string_equal(
      hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* One million 'a' (FIPS 180-2 test vector), fed in one piece. */
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  statefile_digest(million, 1000000, hex);
  assert_string_equal(
      hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(million);
}

static bool name_is_safe(const char *name)
{
  if (!*name || name[0] == '.')
    return false;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_'))
      return false;
  }
  return true;
}

static void test_account_key(void **state)
{
  (void)state;
  char *k1 = statefile_account_key("https://cliq.zoho.com", "1000.CLIENT");
  char *k2 = statefile_account_key("HTTPS://Cliq.Zoho.COM/", "1000.CLIENT");
  char *k3 = statefile_account_key("https://cliq.zoho.com", "1000.OTHER");
  char *k4 = statefile_account_key("https://cliq.zoho.eu", "1000.CLIENT");
  char *k5 = statefile_account_key("http://127.0.0.1:8080/", "secret-token");
  char *k6 = statefile_account_key("http://[::1]:9/", NULL);
  char *k7 = statefile_account_key(NULL, NULL);
  char *k8 = statefile_account_key("https://cliq.zoho.com/company/42", "1000.CLIENT");
  assert_non_null(k1);
  assert_non_null(k7);
  /* Stable and insensitive to cosmetic differences in the URL. */
  char *again = statefile_account_key("https://cliq.zoho.com", "1000.CLIENT");
  assert_string_equal(k1, again);
  assert_string_equal(k1, k2);
  /* One folder per account and per API base. */
  assert_string_not_equal(k1, k3);
  assert_string_not_equal(k1, k4);
  assert_string_not_equal(k1, k8);
  assert_int_equal(strncmp(k1, "cliq.zoho.com-", 14), 0);
  assert_int_equal(strlen(k1), 14 + 12);
  assert_int_equal(strncmp(k4, "cliq.zoho.eu-", 13), 0);
  assert_int_equal(strncmp(k5, "127.0.0.1_8080-", 15), 0);
  /* Secrets never appear in the name. */
  assert_null(strstr(k5, "secret"));
  const char *all[] = {k1, k3, k4, k5, k6, k7, k8};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    assert_true(name_is_safe(all[i]));
  free(k1);
  free(k2);
  free(k3);
  free(k4);
  free(k5);
  free(k6);
  free(k7);
  free(k8);
  free(again);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_mkdirs, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(test_write_read_roundtrip, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_write_into_missing_folder, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_unlink_durable, setup_dir,
                                    teardown_dir),
    cmocka_unit_test(test_temp_names),
    cmocka_unit_test_setup_teardown(test_crash_leaves_old_or_new, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_overwrite_in_place, setup_dir,
                                    teardown_dir),
    cmocka_unit_test_setup_teardown(test_read_json, setup_dir, teardown_dir),
    cmocka_unit_test(test_digest_vectors),
    cmocka_unit_test(test_account_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
