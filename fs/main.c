/* cliqfs: the command line (cliqfs(1) OPTIONS).
 *
 *   cliqfs [-o OPTION[,OPTION...]] [-f] [-d] [-s] MOUNTPOINT
 *   cliqfs --demo [-f] MOUNTPOINT
 *   cliqfs auth --dc DC --client-id ID --client-secret S --code CODE
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
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cliq.h"
#include "api/endpoints.h"
#include "fs/cliqfs.h"
#include "fs/config.h"
#include "fs/demo.h"
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

static void wipe(char **s)
{
  if (*s) {
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
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
    "  -o allow_other          others may use the mount; needs user_allow_other\n"
    "                          in /etc/fuse.conf (default: only you)\n"
    "  -o default_permissions  the kernel checks file modes (default: off)\n"
    "  -o ro                   read-only mount (default: read-write)\n"
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

static void print_auth_help(void)
{
  char *config = cliqfs_default_config_path();
  printf(
    "Usage: " PROG " auth --dc DC --client-id ID --client-secret SECRET "
    "--code CODE\n"
    "                   [--config FILE] [--accounts-url URL] [--api-url URL]\n"
    "\n"
    "Exchanges a Self Client code for a refresh token and writes it, with the\n"
    "client id and secret, to the config file (mode 0600).\n"
    "\n"
    "In https://api-console.zoho.com (of your data centre), add a Self "
    "Client,\n"
    "then under \"Generate Code\" enter the scopes\n"
    "  ZohoCliq.Channels.READ,ZohoCliq.Chats.READ,ZohoCliq.Chats.UPDATE,\n"
    "  ZohoCliq.Chats.DELETE,ZohoCliq.Messages.READ,ZohoCliq.Webhooks.CREATE\n"
    "and run this command within the code's lifetime.\n"
    "\n"
    "  --dc DC              data centre of your Zoho account: us eu in au jp "
    "cn ca\n"
    "                       sa uk (default: us)\n"
    "  --client-id ID       the Self Client's Client ID (required)\n"
    "  --client-secret S    the Self Client's Client Secret (required)\n"
    "  --code CODE          the generated code; it works once (required)\n"
    "  --config FILE        the config file to write (default: %s)\n"
    "  --accounts-url URL   accounts base instead of the DC's, also stored in\n"
    "                       the config (default: the DC's; for tests)\n"
    "  --api-url URL        Cliq API base to store in the config (default: "
    "none,\n"
    "                       the DC's is used)\n",
    config ? config : "~/.config/cliqfs/config");
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
    wipe(&cl->settings[i].value);
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
  if (strcmp(name, "debug") == 0) {
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

/* ---- cliqfs auth -------------------------------------------------------- */

static void auth_explain(const cliq_error *err, const char *dc,
                         const char *accounts_url)
{
  const char *code = err->code;
  if (err->err == EAGAIN) {
    fprintf(stderr,
            PROG " auth: the accounts server %s refused: too many token "
            "requests in a short time (Zoho allows about 10 per 10 minutes). "
            "Wait a few minutes, generate a new code and run this again.\n",
            accounts_url);
  } else if (err->err == EACCES && strcmp(code, "invalid_code") == 0) {
    fprintf(stderr,
            PROG " auth: the code was refused (invalid_code). A Self Client "
            "code works only once and only for the minutes chosen when it was "
            "generated, and only in its own data centre: generate a new one "
            "and check that --dc %s (%s) is where your Zoho account lives.\n",
            dc, accounts_url);
  } else if (err->err == EACCES && strncmp(code, "invalid_client", 14) == 0) {
    fprintf(stderr,
            PROG " auth: the client was refused (%s). Check --client-id and "
            "--client-secret (API console, Self Client, Client Secret tab), "
            "and that --dc %s (%s) is the data centre where the Self Client "
            "was made: Zoho answers this way for a client of another data "
            "centre.\n",
            code, dc, accounts_url);
  } else if (err->err == EACCES) {
    fprintf(stderr,
            PROG " auth: the accounts server %s refused the request (%s). "
            "Check the client id, secret and code, and that --dc %s is your "
            "account's data centre.\n",
            accounts_url, code[0] ? code : err->message, dc);
  } else {
    fprintf(stderr, PROG " auth: could not get a token from %s: %s.\n",
            accounts_url,
            err->message[0] ? err->message : strerror(err->err ? err->err
                                                                : EIO));
  }
}

/* Copies optarg and overwrites it in argv, for the secrets. */
static char *take_secret(char *arg)
{
  char *copy = strdup(arg);
  memset(arg, '*', strlen(arg));
  return copy;
}

static int auth_main(int argc, char **argv)
{
  enum { OPT_DC = 1, OPT_ID, OPT_SECRET, OPT_CODE, OPT_CONFIG, OPT_ACCOUNTS,
         OPT_API, OPT_HELP };
  static const struct option options[] = {
    { "dc", required_argument, NULL, OPT_DC },
    { "client-id", required_argument, NULL, OPT_ID },
    { "client-secret", required_argument, NULL, OPT_SECRET },
    { "code", required_argument, NULL, OPT_CODE },
    { "config", required_argument, NULL, OPT_CONFIG },
    { "accounts-url", required_argument, NULL, OPT_ACCOUNTS },
    { "api-url", required_argument, NULL, OPT_API },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  char *dc = NULL, *client_id = NULL, *secret = NULL, *code = NULL;
  char *config = NULL, *accounts = NULL, *api = NULL;
  char *refresh = NULL, *access = NULL;
  bool help = false, bad = false;
  int status = 1;
  char **slot;

  opterr = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
    switch (opt) {
    case OPT_DC: slot = &dc; break;
    case OPT_ID: slot = &client_id; break;
    case OPT_SECRET:
      wipe(&secret);
      secret = take_secret(optarg);
      continue;
    case OPT_CODE:
      wipe(&code);
      code = take_secret(optarg);
      continue;
    case OPT_CONFIG: slot = &config; break;
    case OPT_ACCOUNTS: slot = &accounts; break;
    case OPT_API: slot = &api; break;
    case OPT_HELP:
    case 'h':
      help = true;
      continue;
    case ':':
      fprintf(stderr, PROG " auth: %s needs a value\n", argv[optind - 1]);
      bad = true;
      continue;
    default:
      if (optopt > 0 && optopt < 128)
        fprintf(stderr, PROG " auth: unknown option '-%c'\n", optopt);
      else
        fprintf(stderr, PROG " auth: unknown option '%s'\n",
                argv[optind - 1]);
      bad = true;
      continue;
    }
    free(*slot);
    *slot = strdup(optarg);
  }
  if (!bad && optind < argc) {
    fprintf(stderr, PROG " auth: unexpected argument '%s'\n", argv[optind]);
    bad = true;
  }
  if (help) {
    print_auth_help();
    status = 0;
    goto out;
  }
  if (bad)
    goto usage;
  const char *missing = !client_id ? "--client-id"
                        : !secret  ? "--client-secret"
                        : !code    ? "--code"
                                   : NULL;
  if (missing) {
    fprintf(stderr, PROG " auth: %s is missing.\n", missing);
    goto usage;
  }
  if (!dc && !(dc = strdup("us")))
    goto out;
  const char *dc_api, *dc_accounts;
  if (cliqfs_dc_urls(dc, &dc_api, &dc_accounts) < 0) {
    fprintf(stderr,
            PROG " auth: --dc %s is not a Zoho data centre (expected one of "
            "us, eu, in, au, jp, cn, ca, sa, uk).\n",
            dc);
    goto out;
  }
  (void)dc_api;
  const char *accounts_url = accounts ? accounts : dc_accounts;
  const char *urls[2][2] = { { "--accounts-url", accounts },
                             { "--api-url", api } };
  for (int i = 0; i < 2; i++) {
    cliq_error uerr;
    memset(&uerr, 0, sizeof uerr);
    if (urls[i][1] && cliq_url_check(urls[i][1], &uerr) < 0) {
      fprintf(stderr, PROG " auth: %s %s: %s\n", urls[i][0], urls[i][1],
              uerr.message);
      goto out;
    }
  }
  if (!config && !(config = cliqfs_default_config_path())) {
    fprintf(stderr, PROG " auth: cannot tell where the config file goes: "
                         "set HOME or XDG_CONFIG_HOME, or use --config "
                         "FILE.\n");
    goto out;
  }

  cliq_error err;
  memset(&err, 0, sizeof err);
  if (cliq_oauth_exchange_code(accounts_url, client_id, secret, code,
                               &refresh, &access, &err) < 0) {
    auth_explain(&err, dc, accounts_url);
    goto out;
  }

  /* A static access_token would shadow the new refresh token: drop it. */
  const char *keys[] = { "dc", "client_id", "client_secret", "refresh_token",
                         "access_token", "accounts_url", "api_url" };
  const char *values[] = { dc, client_id, secret, refresh, NULL, accounts,
                           api };
  size_t n = api ? 7 : 6;
  char serr[512] = "";
  if (cliqfs_config_store(config, keys, values, n, serr, sizeof serr) < 0) {
    fprintf(stderr,
            PROG " auth: the code was exchanged, but the config could not be "
            "written: %s.  The code is used up: fix that, generate a new code "
            "and run this again.\n",
            serr);
    goto out;
  }
  char *def = cliqfs_default_config_path();
  bool is_default = def && strcmp(def, config) == 0;
  free(def);
  printf("Saved the refresh token for data centre '%s' in %s (mode 0600).\n"
         "\n"
         "Next, mount your organization:\n"
         "  mkdir -p ~/cliq\n"
         "  " PROG "%s%s ~/cliq\n"
         "  ls ~/cliq                  # your channels\n"
         "  fusermount3 -u ~/cliq      # unmount\n",
         dc, config, is_default ? "" : " -o config=",
         is_default ? "" : config);
  status = 0;
  goto out;
usage:
  fprintf(stderr,
          "Usage: " PROG " auth --dc DC --client-id ID --client-secret SECRET "
          "--code CODE [--config FILE] [--accounts-url URL]\n"
          "Try '" PROG " auth --help'.\n");
out:
  free(dc);
  free(client_id);
  wipe(&secret);
  wipe(&code);
  wipe(&refresh);
  wipe(&access);
  free(config);
  free(accounts);
  free(api);
  return status;
}

int main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "auth") == 0)
    return auth_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "status") == 0)
    return cliqfs_status_main(argc - 1, argv + 1);
  return mount_main(argc, argv);
}
