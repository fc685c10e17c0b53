/* fs/demo_mount against the real emulator, without FUSE: cliqfs_demo_start points
 * the config at a running emulator that answers the API with the static
 * token; cliqfs_demo_stop leaves no process and no folder behind; the
 * emulator dies with its parent.  Needs $CLIQ_EMULATOR (suite 'cli'). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/cliq.h"
#include "fs/demo_mount.h"

static char tmpdir[PATH_MAX];

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

/* True when pid is gone or a zombie nobody has reaped yet. */
static bool process_gone(pid_t pid)
{
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return true;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return true;
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Reaps any orphan reparented to us (we are a subreaper) and waits until pid
 * is gone, at most timeout_s. */
static bool wait_gone(pid_t pid, double timeout_s)
{
  double deadline = now_s() + timeout_s;
  while (now_s() < deadline) {
    while (waitpid(-1, NULL, WNOHANG) > 0)
      ;
    if (process_gone(pid))
      return true;
    nap_ms(20);
  }
  return false;
}

static int group_setup(void **state)
{
  (void)state;
  if (!getenv("CLIQ_EMULATOR") || !*getenv("CLIQ_EMULATOR")) {
    fprintf(stderr, "CLIQ_EMULATOR must name the emulator binary\n");
    return -1;
  }
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/cliqfs-demo-test-XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir))
    return -1;
  /* The demo's private folder goes in here, so that the test can see it
   * appear and go. */
  setenv("TMPDIR", tmpdir, 1);
  /* Orphans of a killed parent come to us, so we can tell they are gone. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  rmdir(tmpdir);
  return 0;
}

static void test_find_emulator(void **state)
{
  (void)state;
  char err[512] = "";
  char *path = cliqfs_demo_find_emulator(err, sizeof err);
  assert_non_null(path);
  char *expect = realpath(getenv("CLIQ_EMULATOR"), NULL);
  assert_string_equal(path, expect);
  assert_true(path[0] == '/');
  free(expect);
  free(path);

  char *saved = strdup(getenv("CLIQ_EMULATOR"));
  setenv("CLIQ_EMULATOR", "/nonexistent/cliq-emulator", 1);
  path = cliqfs_demo_find_emulator(err, sizeof err);
  assert_null(path);
  assert_non_null(strstr(err, "/nonexistent/cliq-emulator"));
  setenv("CLIQ_EMULATOR", saved, 1);
  free(saved);
}

static void test_start_serves_and_stop_cleans(void **state)
{
  (void)state;
  char err[512] = "";
  char *path = cliqfs_demo_find_emulator(err, sizeof err);
  assert_non_null(path);
  struct cliqfs_demo *demo = cliqfs_demo_new(path, true);
  free(path);
  struct cliqfs_config cfg;
  cliqfs_config_init(&cfg);
  struct cliqfs_hooks hooks;
  cliqfs_demo_hooks(demo, &hooks);
  assert_int_equal(hooks.on_start(hooks.ctx, &cfg), 0);

  pid_t pid = cliqfs_demo_emulator_pid(demo);
  int port = cliqfs_demo_port(demo);
  assert_true(pid > 0);
  assert_true(port > 0);
  assert_int_equal(kill(pid, 0), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  assert_string_equal(cfg.api_url, url);
  assert_string_equal(cfg.accounts_url, url);
  /* A random token of its own, in a file only the owner can read. */
  assert_int_equal(strlen(cfg.access_token), CLIQFS_DEMO_TOKEN_LEN);
  assert_int_equal(strspn(cfg.access_token, "0123456789abcdef"),
                   CLIQFS_DEMO_TOKEN_LEN);
  assert_string_not_equal(cfg.access_token, "emulator-token");

  char *dir = strdup(cliqfs_demo_dir(demo));
  assert_true(strncmp(dir, tmpdir, strlen(tmpdir)) == 0);
  struct stat st;
  assert_int_equal(stat(cfg.state_dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(cfg.cache_dir, &st), 0);
  assert_true(strncmp(cfg.state_dir, dir, strlen(dir)) == 0);
  assert_true(strncmp(cfg.cache_dir, dir, strlen(dir)) == 0);
  char token_file[PATH_MAX + 8];
  snprintf(token_file, sizeof token_file, "%s/token", dir);
  assert_int_equal(stat(token_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* The address and token it set really reach a Cliq with channels. */
  cliq_client_config ccfg = { .api_url = cfg.api_url,
                              .accounts_url = cfg.accounts_url,
                              .access_token = cfg.access_token };
  cliq_error cerr;
  memset(&cerr, 0, sizeof cerr);
  cliq_client *client = cliq_client_new(&ccfg, NULL, &cerr);
  assert_non_null(client);
  cliq_channel_list channels = { 0 };
  assert_int_equal(cliq_list_channels(client, CLIQ_PRIO_READ, &channels,
                                      &cerr), 0);
  assert_true(channels.count >= 2);
  cliq_channel_list_clear(&channels);
  cliq_client_free(client);

  hooks.on_stop(hooks.ctx);
  assert_int_equal(cliqfs_demo_emulator_pid(demo), 0);
  /* Reaped by on_stop itself: not even a zombie is left. */
  assert_int_equal(kill(pid, 0), -1);
  assert_int_equal(errno, ESRCH);
  assert_int_equal(stat(dir, &st), -1);
  assert_null(cliqfs_demo_dir(demo));
  /* Stopping twice is harmless. */
  hooks.on_stop(hooks.ctx);

  free(dir);
  cliqfs_config_clear(&cfg);
  cliqfs_demo_free(demo);
}

static void test_time_scale_passed_on(void **state)
{
  (void)state;
  char err[512] = "";
  char *path = cliqfs_demo_find_emulator(err, sizeof err);
  struct cliqfs_demo *demo = cliqfs_demo_new(path, true);
  free(path);
  struct cliqfs_config cfg;
  cliqfs_config_init(&cfg);
  assert_int_equal(cliqfs_config_set(&cfg, "time_scale", "60", err,
                                     sizeof err), 0);
  assert_int_equal(cliqfs_demo_start(demo, &cfg, err, sizeof err), 0);
  char cmdline_path[64], cmdline[1024];
  snprintf(cmdline_path, sizeof cmdline_path, "/proc/%d/cmdline",
           (int)cliqfs_demo_emulator_pid(demo));
  int fd = open(cmdline_path, O_RDONLY);
  assert_true(fd >= 0);
  ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
  close(fd);
  assert_true(n > 0);
  for (ssize_t i = 0; i < n; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  cmdline[n] = '\0';
  assert_non_null(strstr(cmdline, "--demo"));
  assert_non_null(strstr(cmdline, "--port 0"));
  assert_non_null(strstr(cmdline, "--chatter 20"));
  assert_non_null(strstr(cmdline, "--time-scale 60"));
  cliqfs_demo_free(demo);  /* stops it */
  cliqfs_config_clear(&cfg);
}

/* A daemon killed outright (no on_stop) takes its emulator with it. */
static void test_emulator_dies_with_parent(void **state)
{
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t parent = fork();
  assert_true(parent >= 0);
  if (parent == 0) {
    close(fds[0]);
    char err[512] = "";
    char *path = cliqfs_demo_find_emulator(err, sizeof err);
    struct cliqfs_demo *demo = path ? cliqfs_demo_new(path, true) : NULL;
    struct cliqfs_config cfg;
    cliqfs_config_init(&cfg);
    pid_t pid = 0;
    if (demo && cliqfs_demo_start(demo, &cfg, err, sizeof err) == 0)
      pid = cliqfs_demo_emulator_pid(demo);
    (void)!write(fds[1], &pid, sizeof pid);
    for (;;)
      pause();  /* until SIGKILL */
  }
  close(fds[1]);
  pid_t emulator = 0;
  assert_int_equal(read(fds[0], &emulator, sizeof emulator),
                   (ssize_t)sizeof emulator);
  close(fds[0]);
  assert_true(emulator > 0);
  assert_int_equal(kill(emulator, 0), 0);

  kill(parent, SIGKILL);
  assert_int_equal(waitpid(parent, NULL, 0), parent);
  assert_true(wait_gone(emulator, 10));
  /* The killed parent could not remove its folder; the test does. */
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "rm -rf %s/cliqfs-demo-*", tmpdir);
  assert_int_equal(system(cmd), 0);
}

static void test_emulator_failing_to_start(void **state)
{
  (void)state;
  char err[512] = "";
  /* /bin/false runs, prints no port and exits 1. */
  struct cliqfs_demo *demo = cliqfs_demo_new("/bin/false", true);
  struct cliqfs_config cfg;
  cliqfs_config_init(&cfg);
  assert_int_equal(cliqfs_demo_start(demo, &cfg, err, sizeof err), -EIO);
  assert_non_null(strstr(err, "stopped before it was ready"));
  assert_int_equal(cliqfs_demo_emulator_pid(demo), 0);
  assert_null(cliqfs_demo_dir(demo));
  assert_null(cfg.api_url);
  /* Nothing left in TMPDIR. */
  assert_int_equal(rmdir(tmpdir), 0);
  assert_int_equal(mkdir(tmpdir, 0700), 0);
  cliqfs_demo_free(demo);
  cliqfs_config_clear(&cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_find_emulator),
    cmocka_unit_test(test_start_serves_and_stop_cleans),
    cmocka_unit_test(test_time_scale_passed_on),
    cmocka_unit_test(test_emulator_dies_with_parent),
    cmocka_unit_test(test_emulator_failing_to_start),
  };
  return cmocka_run_group_tests_name("fs/demo", tests, group_setup,
                                     group_teardown);
}
