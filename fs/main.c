/* cliqfs: the command line (cliqfs(1) OPTIONS).
 *
 *   cliqfs [-o OPTION[,OPTION...]] [-f] [-d] [-s] MOUNTPOINT
 *   cliqfs --demo [-f] MOUNTPOINT
 *   cliqfs auth ...                 (fs/auth_cmd.c)
 *   cliqfs status [MOUNTPOINT...]   (fs/status_cmd.c)
 *   cliqfs --help | --version
 *
 * cliqfs's own -o keys (fs/config.h) are taken out of the arguments; the rest
 * (-f, -d, -s, allow_other, ro, ...) goes to FUSE through cliqfs_run().
 */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif

#include <dirent.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <fuse_opt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cliq.h"
#include "api/endpoints.h"
#include "fs/auth_cmd.h"
#include "fs/cliqfs.h"
#include "fs/config.h"
#include "fs/demo_mount.h"
#include "fs/status_cmd.h"

#ifndef CLIQFS_VERSION
#error "CLIQFS_VERSION must come from meson's project version"
#endif

#define PROG "cliqfs"

/* ---- Secrets out of the process title ----------------------------------- */

/* Overwrites the values of secret keys in one -o group ("a=b,c=d", commas
 * escaped with '\' as fuse_opt reads them), so that ps and
 * /proc/PID/cmdline no longer show them. */
static void scrub_option_group(char *group)
{
  char *s = group;
  while (*s) {
    char *seg = s, *eq = NULL, *p = s;
    for (; *p && *p != ','; p++) {
      if (*p == '\\' && p[1]) {
        p++;
        continue;
      }
      if (*p == '=' && !eq)
        eq = p;
    }
    if (eq) {
      char key[64];
      size_t klen = (size_t)(eq - seg);
      if (klen < sizeof key) {
        memcpy(key, seg, klen);
        key[klen] = '\0';
        if (cliqfs_config_key_is_secret(key))
          memset(eq + 1, '*', (size_t)(p - eq - 1));
      }
    }
    s = *p ? p + 1 : p;
  }
}

static void scrub_argv(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return;
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      scrub_option_group(argv[++i]);
    else if (strncmp(argv[i], "-o", 2) == 0)
      scrub_option_group(argv[i] + 2);
  }
}


/* ---- Help and version ---------------------------------------------------- */

static void print_usage(FILE *f)
{
  fprintf(f,
          "Usage:\n"
          "  " PROG " [-o OPTION[,OPTION...]] [-f] [-d] [-s] MOUNTPOINT\n"
          "  " PROG " --demo [-f] MOUNTPOINT\n"
          "  " PROG " auth --dc DC --client-id ID --client-secret SECRET "
          "--code CODE\n"
          "              [--config FILE] [--accounts-url URL] "
          "[--api-url URL]\n"
          "  " PROG " --help | --version\n");
}

static void print_help(void)
{
  char *config = cliqfs_default_config_path();
  print_usage(stdout);
  printf(
    "\n"
    "Mounts a Zoho Cliq organization at MOUNTPOINT: channels are folders,\n"
    "threads are folders inside them.  `fusermount3 -u MOUNTPOINT` unmounts.\n"
    "\n"
    "cliqfs options (-o KEY=VALUE; each KEY also works as a `KEY = VALUE`\n"
    "line of the config file, and -o wins over the file):\n"
    "  -o config=FILE          the config file to read; it must exist\n"
    "                          (default: $XDG_CONFIG_HOME/cliqfs/config, here\n"
    "                          %s, which may be absent)\n"
    "  -o dc=DC                Zoho data centre: us eu in au jp cn ca sa uk\n"
    "                          (default: us)\n"
    "  -o client_id=ID         Self Client id (default: none)\n"
    "  -o client_secret=SECRET Self Client secret (default: none)\n"
    "  -o refresh_token=TOKEN  refresh token, as `cliqfs auth` stores it\n"
    "                          (default: none)\n"
    "  -o access_token=TOKEN   a static access token, for testing; no refresh\n"
    "                          (default: none)\n"
    "  -o api_url=URL          Cliq API base instead of the data centre's\n"
    "                          (default: the DC's, https://cliq.zoho.com for us)\n"
    "  -o accounts_url=URL     accounts base instead of the data centre's\n"
    "                          (default: the DC's, https://accounts.zoho.com for "
    "us)\n"
    "                          URLs are https, or http to 127.0.0.1/::1/localhost "
    "only\n"
    "  -o history=N            messages a `messages` file starts with\n"
    "                          (default: 100)\n"
    "  -o sync=all|lists|off   background sync of the whole organization on\n"
    "                          spare budget (default: all)\n"
    "  -o sync_share=PERCENT   the share of each API's budget sync may spend\n"
    "                          (1 to 100, default: 50)\n"
    "  -o max_wait=SECONDS     how long a read with nothing cached may wait for a\n"
    "                          request slot before EAGAIN (default: 60)\n"
    "  -o timeout=SECONDS      how long one request to Cliq may take before it\n"
    "                          counts as failed (1 to 600, default: 30)\n"
    "  -o time_scale=N         testing: divides every rate window, lock period\n"
    "                          and cache lifetime by N (default: 1)\n"
    "  -o limit.API=N/SECONDS  overrides one API's rate budget (default: Cliq's):\n",
    config ? config : "~/.config/cliqfs/config");
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    const struct cliq_api_info *info = cliq_api_info((enum cliq_api)i);
    printf("                            limit.%-25s = %d/%d\n", info->name,
           info->limit, info->window_s);
  }
  printf(
    "  Secrets given with -o are wiped from the process title once read, but\n"
    "  the config file (mode 0600) is the place for them.\n"
    "\n"
    "FUSE options:\n"
    "  -f                      stay in the foreground (default: run as a "
    "daemon)\n"
    "  -d                      print every FUSE request; implies -f "
    "(default: off)\n"
    "  -s                      single-threaded (default: multi-threaded)\n"
    "  -o max_threads=N        at most N threads answer the kernel (default:\n"
    "                          one per CPU and one more, made odd, at most 15)\n"
    "  -o allow_other          others may use the mount; needs user_allow_other\n"
    "                          in /etc/fuse.conf (default: only you)\n"
    "  -o default_permissions  the kernel checks file modes (default: off)\n"
    "  -o ro                   read-only mount (default: read-write)\n"
    "  -o log=FILE             append the log to FILE (default: stderr with -f,\n"
    "                          else syslog)\n"
    "  -o verbose=N            0 errors, 1 failures (default), 2 each request\n"
    "                          to Cliq, 3 each request with path and timing\n"
    "  -o uid=N,gid=N          owner shown for every file (default: yours)\n"
    "  -o umask=MODE           octal bits taken away from every file's mode\n"
    "                          (default: none)\n"
    "  -o nonempty             mount over a folder that has files in it\n"
    "                          (default: refused)\n"
    "  Other -o options of mount.fuse3(8) are passed to FUSE as they are.\n"
    "\n"
    "Other commands:\n"
    "  --demo                  mount a demo organization served by the bundled\n"
    "                          Cliq emulator on a loopback port; no account "
    "needed.\n"
    "                          The emulator stops when the mount is unmounted.\n"
    "  auth                    exchange a Self Client code for a refresh token\n"
    "                          and store it; `" PROG " auth --help` for more\n"
    "  status [--json] [MOUNTPOINT]\n"
    "                          what a mount is doing: budgets, locks, waiting\n"
    "                          reads, outbox, last errors (all mounts without\n"
    "                          MOUNTPOINT)\n"
    "  -h, --help              this help\n"
    "  -V, --version           versions of cliqfs and libfuse\n"
    "\n"
    "Files:\n"
    "  $XDG_CONFIG_HOME/cliqfs/config   settings and credentials\n"
    "                                   (default ~/.config/cliqfs/config)\n"
    "  $XDG_STATE_HOME/cliqfs/ACCOUNT/  outbox journal, rate ledger, locks\n"
    "                                   (default ~/.local/state/cliqfs/)\n"
    "  $XDG_CACHE_HOME/cliqfs/ACCOUNT/  cache (default ~/.cache/cliqfs/)\n"
    "\n"
    "See cliqfs(1) for the tree, the writing rules, errors and rate limits.\n");
  free(config);
}

static void print_version(void)
{
  printf(PROG " " CLIQFS_VERSION "\n");
  printf("libfuse %s (FUSE API %d)\n", fuse_pkgversion(), FUSE_USE_VERSION);
}

/* ---- Mount command line ------------------------------------------------- */

struct setting {
  char *key;
  char *value;
};

struct cmdline {
  bool help, version, demo, debug;
  bool nonempty;             /* -o nonempty: may cover a folder's files */
  bool allow_other, default_permissions;  /* seen among FUSE's -o */
  char *config_file;
  struct setting *settings;  /* -o KEY=VALUE of cliqfs, in order */
  size_t n_settings;
  const char *nonopts[2];    /* [SOURCE] MOUNTPOINT, borrowed from argv */
  int n_nonopts;
  const char *mountpoint;
  char err[512];
};

static void cmdline_clear(struct cmdline *cl)
{
  free(cl->config_file);
  for (size_t i = 0; i < cl->n_settings; i++) {
    free(cl->settings[i].key);
    cliqfs_free_secret(&cl->settings[i].value);
  }
  free(cl->settings);
}

static int fail_parse(struct cmdline *cl, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static int fail_parse(struct cmdline *cl, const char *fmt, ...)
{
  if (!cl->err[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cl->err, sizeof cl->err, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* fuse_opt_parse callback: 0 drops arg (it is cliqfs's), 1 keeps it for
 * FUSE, -1 stops with an error. */
static int opt_proc(void *data, const char *arg, int key,
                    struct fuse_args *outargs)
{
  (void)outargs;
  struct cmdline *cl = data;
  if (key == FUSE_OPT_KEY_NONOPT) {
    /* mount.fuse3 (an /etc/fstab line of type fuse.cliqfs) runs
     * `cliqfs SOURCE MOUNTPOINT -o ...`: SOURCE names nothing for cliqfs.
     * The mountpoint is handed to FUSE once the parse is over. */
    if (cl->n_nonopts >= 2)
      return fail_parse(cl, "too many arguments: '%s', '%s' and '%s' "
                        "(expected one MOUNTPOINT)", cl->nonopts[0],
                        cl->nonopts[1], arg);
    cl->nonopts[cl->n_nonopts++] = arg;
    return 0;
  }
  if (arg[0] == '-') {
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
      cl->help = true;
    else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0)
      cl->version = true;
    else if (strcmp(arg, "--demo") == 0)
      cl->demo = true;
    else if (strcmp(arg, "-d") == 0) {
      cl->debug = true;
      return 1;
    } else if (strcmp(arg, "-f") == 0 || strcmp(arg, "-s") == 0)
      return 1;
    else
      return fail_parse(cl, "unknown option '%s'", arg);
    return 0;
  }

  /* One -o option. */
  const char *eq = strchr(arg, '=');
  size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
  char *name = strndup(arg, klen);
  if (!name)
    return fail_parse(cl, "out of memory");
  int rc = 1;
  if (strcmp(name, "allow_other") == 0) {
    cl->allow_other = true;
  } else if (strcmp(name, "default_permissions") == 0) {
    cl->default_permissions = true;
  } else if (strcmp(name, "debug") == 0) {
    cl->debug = true;
  } else if (strcmp(name, "nonempty") == 0 && !eq) {
    /* libfuse 3 mounts over anything; the check is ours. */
    cl->nonempty = true;
    rc = 0;
  } else if (strcmp(name, "config") == 0) {
    if (!eq || !eq[1]) {
      rc = fail_parse(cl, "-o config needs a file name (-o config=FILE)");
    } else {
      free(cl->config_file);
      cl->config_file = strdup(eq + 1);
      rc = cl->config_file ? 0 : fail_parse(cl, "out of memory");
    }
  } else if (cliqfs_config_is_key(name)) {
    if (!eq) {
      rc = fail_parse(cl, "-o %s needs a value (-o %s=VALUE)", name, name);
    } else {
      struct setting *grown =
        realloc(cl->settings, (cl->n_settings + 1) * sizeof *grown);
      char *value = strdup(eq + 1);
      if (!grown || !value) {
        free(value);
        if (grown)
          cl->settings = grown;
        rc = fail_parse(cl, "out of memory");
      } else {
        cl->settings = grown;
        cl->settings[cl->n_settings].key = name;
        cl->settings[cl->n_settings].value = value;
        cl->n_settings++;
        name = NULL;
        rc = 0;
      }
    }
  }
  free(name);
  return rc;
}

/* Whether path (resolved) is the mount point of a cliqfs mount now. */
static bool is_cliqfs_mount(const char *path)
{
  char *real = realpath(path, NULL);
  if (!real)
    return false;
  bool found = false;
  char *mounts[CLIQFS_MAX_MOUNTS];
  size_t n = cliqfs_mounts(mounts, CLIQFS_MAX_MOUNTS);
  for (size_t i = 0; i < n; i++) {
    found = found || strcmp(mounts[i], real) == 0;
    free(mounts[i]);
  }
  free(real);
  return found;
}

static bool folder_is_empty(const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    return true;  /* unreadable: FUSE's own mount says what is wrong */
  bool empty = true;
  struct dirent *e;
  while (empty && (e = readdir(d)) != NULL)
    empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
  closedir(d);
  return empty;
}

/* 0 when the folder can be listed, else the errno of the attempt. */
static int opendir_errno(const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    return errno;
  errno = 0;
  int e = readdir(d) ? 0 : errno;
  closedir(d);
  return e;
}

static int check_mountpoint(const char *mountpoint, bool nonempty)
{
  struct stat st;
  if (stat(mountpoint, &st) < 0) {
    int e = errno;
    if (e == ENOTCONN) {
      fprintf(stderr,
              PROG ": %s is a mount whose daemon is gone. Unmount it first: "
              "fusermount3 -u %s\n",
              mountpoint, mountpoint);
      return -1;
    }
    fprintf(stderr, PROG ": cannot use %s as the mount point: %s\n",
            mountpoint, strerror(e));
    if (e == ENOENT)
      fprintf(stderr, "Create it first: mkdir -p %s\n", mountpoint);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, PROG ": the mount point %s is not a folder\n",
            mountpoint);
    return -1;
  }
  if (is_cliqfs_mount(mountpoint)) {
    /* The kernel may still answer stat of the root from its cache; a
     * request that reaches the daemon tells whether one is there. */
    if (opendir_errno(mountpoint) == ENOTCONN) {
      fprintf(stderr,
              PROG ": %s is a mount whose daemon is gone. Unmount it first: "
              "fusermount3 -u %s\n",
              mountpoint, mountpoint);
      return -1;
    }
    fprintf(stderr,
            PROG ": %s is already a cliqfs mount; `" PROG " status %s` "
            "tells what it is doing, `fusermount3 -u %s` unmounts it\n",
            mountpoint, mountpoint, mountpoint);
    return -1;
  }
  if (!nonempty && !folder_is_empty(mountpoint)) {
    fprintf(stderr,
            PROG ": the mount point %s is not empty: its files would be "
            "hidden while the mount lasts. Use an empty folder, or add "
            "-o nonempty to cover them.\n",
            mountpoint);
    return -1;
  }
  return 0;
}

/* Config file, then -o settings in order, then finalize (not for --demo,
 * whose on_start finalizes once the emulator's address is known). */
static int build_config(struct cmdline *cl, struct cliqfs_config *cfg)
{
  char err[768] = "";
  int rc = 0;
  if (!cl->demo) {
    char *path = cl->config_file ? strdup(cl->config_file)
                                 : cliqfs_default_config_path();
    if (!path) {
      fprintf(stderr, PROG ": cannot tell where the config file is: set "
                      "HOME or XDG_CONFIG_HOME, or use -o config=FILE\n");
      return -EINVAL;
    }
    rc = cliqfs_config_load_file(cfg, path, cl->config_file != NULL, err,
                                 sizeof err);
    free(path);
    if (rc < 0) {
      fprintf(stderr, PROG ": %s\n", err);
      return rc;
    }
  }
  for (size_t i = 0; i < cl->n_settings; i++) {
    err[0] = '\0';
    rc = cliqfs_config_set(cfg, cl->settings[i].key, cl->settings[i].value,
                           err, sizeof err);
    if (rc < 0) {
      fprintf(stderr, PROG ": option -o: %s\n", err);
      return rc;
    }
  }
  if (cl->demo)
    return 0;
  rc = cliqfs_config_finalize(cfg, err, sizeof err);
  if (rc < 0)
    fprintf(stderr, PROG ": %s\n", err);
  return rc;
}

static int mount_main(int argc, char **argv)
{
  struct cmdline cl;
  memset(&cl, 0, sizeof cl);
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct cliqfs_config cfg;
  cliqfs_config_init(&cfg);
  struct cliqfs_demo *demo = NULL;
  int status = 1;

  int parsed = fuse_opt_parse(&args, &cl, NULL, opt_proc);
  /* Whatever happens next, the secrets leave the process title now. */
  scrub_argv(argc, argv);
  if (parsed < 0) {
    if (cl.err[0])
      fprintf(stderr, PROG ": %s\n", cl.err);
    fprintf(stderr, "Try '" PROG " --help'.\n");
    goto out;
  }
  if (cl.help) {
    print_help();
    status = 0;
    goto out;
  }
  if (cl.version) {
    print_version();
    status = 0;
    goto out;
  }
  if (cl.n_nonopts > 0)
    cl.mountpoint = cl.nonopts[cl.n_nonopts - 1];
  if (!cl.mountpoint) {
    fprintf(stderr, PROG ": no MOUNTPOINT given\n");
    print_usage(stderr);
    goto out;
  }
  if (check_mountpoint(cl.mountpoint, cl.nonempty) < 0)
    goto out;
  /* Other users of the mount must not act as its owner: the kernel checks
   * every access against the owner and modes cliqfs shows. */
  if (cl.allow_other && !cl.default_permissions &&
      fuse_opt_add_arg(&args, "-odefault_permissions") < 0) {
    fprintf(stderr, PROG ": out of memory\n");
    goto out;
  }
  if (fuse_opt_add_arg(&args, cl.mountpoint) < 0) {
    fprintf(stderr, PROG ": out of memory\n");
    goto out;
  }
  if (build_config(&cl, &cfg) < 0)
    goto out;

  struct cliqfs_hooks hooks = { NULL, NULL, NULL };
  if (cl.demo) {
    char err[512] = "";
    char *emulator = cliqfs_demo_find_emulator(err, sizeof err);
    if (!emulator) {
      fprintf(stderr, PROG ": %s\n", err);
      goto out;
    }
    demo = cliqfs_demo_new(emulator, !cl.debug);
    free(emulator);
    if (!demo) {
      fprintf(stderr, PROG ": out of memory\n");
      goto out;
    }
    cliqfs_demo_hooks(demo, &hooks);
  }
  status = cliqfs_run(&cfg, &args, demo ? &hooks : NULL);
out:
  cliqfs_demo_free(demo);
  cliqfs_config_clear(&cfg);
  cmdline_clear(&cl);
  fuse_opt_free_args(&args);
  return status;
}

int main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "auth") == 0)
    return cliqfs_auth_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "status") == 0)
    return cliqfs_status_main(argc - 1, argv + 1);
  return mount_main(argc, argv);
}
