/* fs/demo_mount: see demo_mount.h. */
#include "fs/demo_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/cliq.h"
#include "api/clock.h"

#define EMULATOR_NAME "cliq-emulator"
/* The emulator builds its organization before it listens; sanitizer and
 * valgrind builds are slow, so be patient, but not forever. */
#define PORT_DEADLINE_MS 20000
#define STOP_DEADLINE_MS 5000

struct cliqfs_demo {
  char *emulator_path;
  bool quiet;
  char *dir;          /* private temporary folder, NULL when none */
  char *token_file;   /* dir/token (0600), NULL when none */
  char token[CLIQFS_DEMO_TOKEN_LEN + 1];
  pid_t pid;          /* emulator, 0 when not running */
  int port;
  int stdout_fd;      /* read end of the emulator's stdout, -1 when none */
};


static double now_ms(void)
{
  return cliq_clock_mono() * 1e3;
}

/* ---- Finding the emulator ---------------------------------------------- */

static bool is_executable_file(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
         access(path, X_OK) == 0;
}

static char *self_dir(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return NULL;
  *slash = '\0';
  return strdup(exe);
}

char *cliqfs_demo_find_emulator(char *errbuf, size_t errlen)
{
  const char *env = getenv("CLIQ_EMULATOR");
  if (env && *env) {
    char *path = realpath(env, NULL);
    if (!path || !is_executable_file(path)) {
      cliq_fail_text(errbuf, errlen,
              "CLIQ_EMULATOR=%s does not name an executable file", env);
      free(path);
      return NULL;
    }
    return path;
  }

  char *dir = self_dir();
  char *found = NULL;
#if defined(CLIQFS_BUILD_ROOT) && defined(CLIQFS_EMULATOR_BUILD_PATH)
  /* Run from the build tree: use the emulator built with it. */
  {
    size_t len = strlen(CLIQFS_BUILD_ROOT);
    if (dir && strncmp(dir, CLIQFS_BUILD_ROOT, len) == 0 &&
        (dir[len] == '/' || dir[len] == '\0') &&
        is_executable_file(CLIQFS_EMULATOR_BUILD_PATH)) {
      found = strdup(CLIQFS_EMULATOR_BUILD_PATH);
      goto out;
    }
  }
#endif
  /* Installed: bindir/../libexec/cliqfs (also after a DESTDIR move), then
   * the configured libexecdir. */
  if (dir) {
    char *candidate = NULL;
    if (asprintf(&candidate, "%s/../libexec/cliqfs/" EMULATOR_NAME, dir) >= 0) {
      char *real = realpath(candidate, NULL);
      free(candidate);
      if (real && is_executable_file(real)) {
        found = real;
        goto out;
      }
      free(real);
    }
  }
#ifdef CLIQFS_EMULATOR_INSTALL_PATH
  if (is_executable_file(CLIQFS_EMULATOR_INSTALL_PATH)) {
    found = strdup(CLIQFS_EMULATOR_INSTALL_PATH);
    goto out;
  }
#endif
  cliq_fail_text(errbuf, errlen,
          "cannot find the Cliq emulator (" EMULATOR_NAME ") that --demo "
          "needs: it is installed with cliqfs under libexecdir/cliqfs/; set "
          "CLIQ_EMULATOR=/path/to/" EMULATOR_NAME " to use another one");
out:
  free(dir);
  return found;
}

/* ---- Lifecycle ---------------------------------------------------------- */

struct cliqfs_demo *cliqfs_demo_new(const char *emulator_path, bool quiet)
{
  struct cliqfs_demo *demo = calloc(1, sizeof *demo);
  if (!demo)
    return NULL;
  demo->emulator_path = strdup(emulator_path);
  if (!demo->emulator_path) {
    free(demo);
    return NULL;
  }
  demo->quiet = quiet;
  demo->stdout_fd = -1;
  return demo;
}

void cliqfs_demo_free(struct cliqfs_demo *demo)
{
  if (!demo)
    return;
  cliqfs_demo_stop(demo);
  free(demo->emulator_path);
  free(demo);
}

pid_t cliqfs_demo_emulator_pid(const struct cliqfs_demo *demo)
{
  return demo->pid;
}

int cliqfs_demo_port(const struct cliqfs_demo *demo)
{
  return demo->port;
}

const char *cliqfs_demo_dir(const struct cliqfs_demo *demo)
{
  return demo->dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  (void)remove(path);
  return 0;
}

static void remove_dir(struct cliqfs_demo *demo)
{
  if (!demo->dir)
    return;
  nftw(demo->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(demo->dir);
  demo->dir = NULL;
  free(demo->token_file);
  demo->token_file = NULL;
  explicit_bzero(demo->token, sizeof demo->token);
}

static int make_dir(struct cliqfs_demo *demo, char *errbuf, size_t errlen)
{
  const char *tmp = getenv("TMPDIR");
  if (!tmp || tmp[0] != '/')
    tmp = "/tmp";
  if (asprintf(&demo->dir, "%s/cliqfs-demo-XXXXXX", tmp) < 0) {
    demo->dir = NULL;
    return -ENOMEM;
  }
  if (!mkdtemp(demo->dir)) {
    int rc = -errno;
    cliq_fail_text(errbuf, errlen, "cannot create a temporary folder in %s: %s",
            tmp, strerror(errno));
    free(demo->dir);
    demo->dir = NULL;
    return rc;
  }
  /* The token: random, in a file only we can read (mkdtemp made the folder
   * 0700), so that it never shows in the emulator's command line. */
  unsigned char raw[CLIQFS_DEMO_TOKEN_LEN / 2];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
    int rc = -errno;
    cliq_fail_text(errbuf, errlen, "no random bytes for the demo's token: %s",
            strerror(errno));
    return rc;
  }
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(demo->token + 2 * i, 3, "%02x", raw[i]);
  explicit_bzero(raw, sizeof raw);
  if (asprintf(&demo->token_file, "%s/token", demo->dir) < 0) {
    demo->token_file = NULL;
    return -ENOMEM;
  }
  int tfd = open(demo->token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                 0600);
  if (tfd < 0 || write(tfd, demo->token, strlen(demo->token)) !=
                     (ssize_t)strlen(demo->token)) {
    int rc = -errno;
    cliq_fail_text(errbuf, errlen, "cannot write %s: %s", demo->token_file,
            strerror(errno));
    if (tfd >= 0)
      close(tfd);
    return rc ? rc : -EIO;
  }
  close(tfd);
  static const char *const subdirs[] = { "state", "cache" };
  for (size_t i = 0; i < 2; i++) {
    char *path = NULL;
    if (asprintf(&path, "%s/%s", demo->dir, subdirs[i]) < 0)
      return -ENOMEM;
    int rc = mkdir(path, 0700) < 0 ? -errno : 0;
    if (rc < 0)
      cliq_fail_text(errbuf, errlen, "cannot create %s: %s", path, strerror(-rc));
    free(path);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void exec_emulator(const char *path, char *const argv[], int out_fd,
                          pid_t parent)
{
  /* If the daemon dies without stopping us (crash, SIGKILL), so do we.  The
   * signal follows the thread that forked: on_start runs in the daemon's main
   * thread, which lives until the process ends. */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
    _exit(127);
  /* Out of the terminal's process group: a Ctrl-C in `cliqfs --demo -f`
   * goes to the daemon, whose on_stop then stops us in order. */
  (void)setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0 && null_fd != STDIN_FILENO) {
    dup2(null_fd, STDIN_FILENO);
    close(null_fd);
  }
  if (out_fd != STDOUT_FILENO) {
    if (dup2(out_fd, STDOUT_FILENO) < 0)
      _exit(127);
  }
  /* Nothing of the daemon's (the /dev/fuse channel above all) may stay open
   * in the emulator. */
  close_range(3, ~0U, 0);
  execv(path, argv);
  static const char msg[] = "cliqfs: cannot run the emulator\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  _exit(127);
}

static void describe_exit(int status, char *buf, size_t len)
{
  if (WIFEXITED(status))
    snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "signal %d", WTERMSIG(status));
  else
    snprintf(buf, len, "status %d", status);
}

/* Reads "PORT\n" from the emulator's stdout within the deadline. */
static int read_port(struct cliqfs_demo *demo, char *errbuf, size_t errlen)
{
  char line[32];
  size_t len = 0;
  double deadline = now_ms() + PORT_DEADLINE_MS;
  for (;;) {
    double left = deadline - now_ms();
    if (left <= 0) {
      cliq_fail_text(errbuf, errlen,
              "the emulator %s did not print its port within %d seconds",
              demo->emulator_path, PORT_DEADLINE_MS / 1000);
      return -ETIMEDOUT;
    }
    struct pollfd pfd = { .fd = demo->stdout_fd, .events = POLLIN };
    int n = poll(&pfd, 1, (int)left + 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      continue;
    ssize_t got = read(demo->stdout_fd, line + len, sizeof line - 1 - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      int status = 0;
      char how[64] = "closed its output";
      double wait_until = now_ms() + 2000;
      do {
        if (waitpid(demo->pid, &status, WNOHANG) == demo->pid) {
          demo->pid = 0;
          describe_exit(status, how, sizeof how);
          break;
        }
        cliq_clock_sleep(0.01);
      } while (now_ms() < wait_until);
      cliq_fail_text(errbuf, errlen, "the emulator %s stopped before it was ready "
              "(%s)", demo->emulator_path, how);
      return -EIO;
    }
    len += (size_t)got;
    line[len] = '\0';
    char *nl = strchr(line, '\n');
    if (nl) {
      *nl = '\0';
      char *end;
      long port = strtol(line, &end, 10);
      if (end == line || *end != '\0' || port < 1 || port > 65535) {
        cliq_fail_text(errbuf, errlen,
                "the emulator printed '%s' where its port was expected", line);
        return -EIO;
      }
      demo->port = (int)port;
      return 0;
    }
    if (len >= sizeof line - 1) {
      cliq_fail_text(errbuf, errlen, "the emulator printed no port line");
      return -EIO;
    }
  }
}

static int spawn(struct cliqfs_demo *demo, double time_scale, char *errbuf,
                 size_t errlen)
{
  char scale[32];
  snprintf(scale, sizeof scale, "%g", time_scale);
  char *argv[14];
  int argc = 0;
  argv[argc++] = demo->emulator_path;
  argv[argc++] = (char *)"--demo";
  argv[argc++] = (char *)"--token-file";
  argv[argc++] = demo->token_file;
  argv[argc++] = (char *)"--port";
  argv[argc++] = (char *)"0";
  argv[argc++] = (char *)"--chatter";
  argv[argc++] = (char *)"20";
  if (time_scale != 1) {
    argv[argc++] = (char *)"--time-scale";
    argv[argc++] = scale;
  }
  if (demo->quiet)
    argv[argc++] = (char *)"--quiet";
  argv[argc] = NULL;

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    int rc = -errno;
    cliq_fail_text(errbuf, errlen, "cannot start the emulator: %s", strerror(-rc));
    return rc;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int rc = -errno;
    close(fds[0]);
    close(fds[1]);
    cliq_fail_text(errbuf, errlen, "cannot start the emulator: %s", strerror(-rc));
    return rc;
  }
  if (pid == 0)
    exec_emulator(demo->emulator_path, argv, fds[1], parent);
  close(fds[1]);
  demo->pid = pid;
  demo->stdout_fd = fds[0];
  return 0;
}

int cliqfs_demo_start(struct cliqfs_demo *demo, struct cliqfs_config *cfg,
                      char *errbuf, size_t errlen)
{
  int rc;
  char url[64];
  if (demo->pid || demo->dir) {
    cliq_fail_text(errbuf, errlen, "the demo is already running");
    return -EBUSY;
  }
  if ((rc = make_dir(demo, errbuf, errlen)) < 0)
    goto fail;
  if ((rc = spawn(demo, cfg->time_scale, errbuf, errlen)) < 0)
    goto fail;
  if ((rc = read_port(demo, errbuf, errlen)) < 0)
    goto fail;

  snprintf(url, sizeof url, "http://127.0.0.1:%d", demo->port);
  char *state = NULL, *cache = NULL;
  if (asprintf(&state, "%s/state", demo->dir) < 0)
    state = NULL;
  if (asprintf(&cache, "%s/cache", demo->dir) < 0)
    cache = NULL;
  if (!state || !cache) {
    free(state);
    free(cache);
    rc = -ENOMEM;
    goto fail;
  }
  free(cfg->state_dir);
  free(cfg->cache_dir);
  cfg->state_dir = state;
  cfg->cache_dir = cache;
  if ((rc = cliqfs_config_set(cfg, "api_url", url, errbuf, errlen)) < 0 ||
      (rc = cliqfs_config_set(cfg, "accounts_url", url, errbuf, errlen)) <
        0 ||
      (rc = cliqfs_config_set(cfg, "access_token", demo->token, errbuf,
                              errlen)) < 0 ||
      (rc = cliqfs_config_finalize(cfg, errbuf, errlen)) < 0)
    goto fail;
  return 0;
fail:
  cliqfs_demo_stop(demo);
  return rc;
}

void cliqfs_demo_stop(struct cliqfs_demo *demo)
{
  if (demo->pid > 0) {
    pid_t pid = demo->pid;
    int status;
    kill(pid, SIGTERM);
    double deadline = now_ms() + STOP_DEADLINE_MS;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 &&
           now_ms() < deadline) {
      cliq_clock_sleep(0.02);
    }
    if (got == 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    }
    demo->pid = 0;
  }
  if (demo->stdout_fd >= 0) {
    close(demo->stdout_fd);
    demo->stdout_fd = -1;
  }
  remove_dir(demo);
  demo->port = 0;
}

/* ---- Hooks -------------------------------------------------------------- */

static int hook_start(void *ctx, struct cliqfs_config *cfg)
{
  char err[512] = "";
  int rc = cliqfs_demo_start(ctx, cfg, err, sizeof err);
  if (rc < 0)
    fprintf(stderr, "cliqfs: --demo: %s\n", err[0] ? err : strerror(-rc));
  return rc;
}

static void hook_stop(void *ctx)
{
  cliqfs_demo_stop(ctx);
}

void cliqfs_demo_hooks(struct cliqfs_demo *demo, struct cliqfs_hooks *hooks)
{
  hooks->on_start = hook_start;
  hooks->on_stop = hook_stop;
  hooks->ctx = demo;
}
