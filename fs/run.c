/* fs/run.c: building the stack, running the FUSE loop, start-up and
 * daemonizing. */
#include "fs/fs_i.h"

#include <sched.h>

static void startup_error(struct fs *fs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- Running ------------------------------------------------------------------------- */

static struct fs *fs_new(struct cliqfs_config *cfg)
{
  struct fs *fs = calloc(1, sizeof *fs);
  if (!fs)
    return NULL;
  fs->cfg = cfg;
  fs->uid = cfg->uid >= 0 ? (uid_t)cfg->uid : getuid();
  fs->gid = cfg->gid >= 0 ? (gid_t)cfg->gid : getgid();
  fs->mount_time = time(NULL);
  fs->n_buckets = 1024;
  fs->by_ino = calloc(fs->n_buckets, sizeof *fs->by_ino);
  fs->by_ident = calloc(fs->n_buckets, sizeof *fs->by_ident);
  fs->last_errors = json_array();
  fs->handles.next = fs->handles.prev = &fs->handles;
  pthread_mutex_init(&fs->lock, NULL);
  pthread_mutex_init(&fs->calls_lock, NULL);
  pthread_mutex_init(&fs->memo_lock, NULL);
  fs->memo = calloc(DOC_MEMO_SLOTS, sizeof *fs->memo);
  if (!fs->by_ino || !fs->by_ident || !fs->last_errors || !fs->memo)
    goto fail;
  fs->root = node_get(fs, N_ROOT, "/", NULL, NULL, NULL, NULL, "");
  if (!fs->root)
    goto fail;
  /* The root keeps FUSE's number. */
  pthread_mutex_lock(&fs->lock);
  struct node **slot = &fs->by_ino[fs->root->ino % fs->n_buckets];
  while (*slot != fs->root)
    slot = &(*slot)->next_ino;
  *slot = fs->root->next_ino;
  fs->root->ino = FUSE_ROOT_ID;
  fs->root->next_ino = fs->by_ino[FUSE_ROOT_ID % fs->n_buckets];
  fs->by_ino[FUSE_ROOT_ID % fs->n_buckets] = fs->root;
  pthread_mutex_unlock(&fs->lock);
  return fs;
fail:
  free(fs->by_ino);
  free(fs->by_ident);
  free(fs->memo);
  json_decref(fs->last_errors);
  pthread_mutex_destroy(&fs->memo_lock);
  pthread_mutex_destroy(&fs->lock);
  pthread_mutex_destroy(&fs->calls_lock);
  free(fs);
  return NULL;
}

static void fs_free(struct fs *fs)
{
  if (!fs)
    return;
  /* Handles the kernel never released (the store is gone: no readers to
   * close any more). */
  while (fs->handles.next != &fs->handles) {
    struct handle *h = fs->handles.next;
    handle_del(fs, h);
    if (h->is_dir)
      dirh_free((struct dirh *)h);
    else
      fh_free((struct fh *)h);
  }
  for (size_t b = 0; b < fs->n_buckets; b++) {
    struct node *n = fs->by_ino[b];
    while (n) {
      struct node *next = n->next_ino;
      node_free(n);
      n = next;
    }
  }
  free(fs->by_ino);
  free(fs->by_ident);
  for (size_t i = 0; i < DOC_MEMO_SLOTS; i++) {
    json_decref(fs->memo[i].src);
    free(fs->memo[i].text);
  }
  free(fs->memo);
  free(fs->errors);
  json_decref(fs->last_errors);
  pthread_mutex_destroy(&fs->memo_lock);
  pthread_mutex_destroy(&fs->lock);
  pthread_mutex_destroy(&fs->calls_lock);
  free(fs);
}

/* Builds client, governor, cache and store from cfg.  No network. */
static int fs_connect(struct fs *fs, char *msg, size_t msglen)
{
  struct cliqfs_config *cfg = fs->cfg;
  cliq_error err;
  memset(&err, 0, sizeof err);
  gov_options go = {
    .state_dir = cfg->state_dir,
    .time_scale = cfg->time_scale,
    .margin = -1,
    .max_wait_s = cfg->max_wait_s,
    .keep_unanswered = true,
  };
  fs->gov = gov_new(&go, &err);
  if (!fs->gov) {
    snprintf(msg, msglen, "rate governor: %s", err.message);
    return -(err.err ? err.err : EIO);
  }
  for (size_t i = 0; i < cfg->n_limits; i++) {
    if (gov_set_limit_str(fs->gov, cfg->limits[i].api, cfg->limits[i].value,
                          &err) < 0) {
      snprintf(msg, msglen, "limit.%s: %s", cfg->limits[i].api, err.message);
      return -EINVAL;
    }
  }
  cliq_gate gate = gov_gate(fs->gov);
  cliq_client_config cc = {
    .api_url = cfg->api_url,
    .accounts_url = cfg->accounts_url,
    .access_token = cfg->access_token,
    .client_id = cfg->client_id,
    .client_secret = cfg->client_secret,
    .refresh_token = cfg->refresh_token,
    .time_scale = cfg->time_scale,
    .timeout_ms = (long)cfg->timeout_s * 1000,
  };
  fs->client = cliq_client_new(&cc, &gate, &err);
  if (!fs->client) {
    snprintf(msg, msglen, "Cliq client: %s", err.message);
    return -(err.err ? err.err : EINVAL);
  }
  tcache_options to = {
    .disk_dir = cfg->cache_dir,
    .time_scale = cfg->time_scale,
  };
  fs->cache = tcache_new(&to, &err);
  if (!fs->cache) {
    snprintf(msg, msglen, "cache: %s", err.message);
    return -(err.err ? err.err : EIO);
  }
  store_options so = {
    .client = fs->client,
    .gov = fs->gov,
    .cache = fs->cache,
    .history = cfg->history,
    .sync = (enum store_sync)cfg->sync,
    .sync_share = cfg->sync_share,
    .time_scale = cfg->time_scale,
    .max_wait_s = cfg->max_wait_s,
    .request_timeout_s = cfg->timeout_s,
    .state_dir = cfg->state_dir,
    .log_grew = on_log_grew,
    .threads_changed = on_threads_changed,
    .drafts_changed = on_drafts_changed,
    .write_failed = on_write_failed,
    .entries_skipped = on_entries_skipped,
    .delivery_stalled = on_delivery_stalled,
    .cb_ctx = fs,
  };
  fs->store = store_new(&so, &err);
  if (!fs->store) {
    snprintf(msg, msglen, "outbox journal in %s: %s",
             cfg->state_dir ? cfg->state_dir : "?", err.message);
    return -(err.err ? err.err : ENOMEM);
  }
  return 0;
}

static void fs_disconnect(struct fs *fs)
{
  if (fs->gov)
    gov_shutdown(fs->gov);
  store_free(fs->store);
  fs->store = NULL;
  cliq_client_free(fs->client);
  fs->client = NULL;
  tcache_free(fs->cache);
  fs->cache = NULL;
  gov_free(fs->gov);
  fs->gov = NULL;
}

static void *watchdog_main(void *arg)
{
  struct watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stop && !fuse_session_exited(w->se)) {
    cliq_clock_wait_until(&w->cond, &w->lock, cliq_clock_mono() + 0.1);
  }
  bool exited = !w->stop;
  pthread_mutex_unlock(&w->lock);
  if (exited && w->gov)
    gov_shutdown(w->gov);
  if (exited)
    store_shutdown(w->store);   /* fsync waiters return */
  return NULL;
}

/* ---- Start-up and daemonizing ---------------------------------------------------------
 *
 * Without -f the process the user started forks first, and everything that
 * can fail (mounting, on_start, the journal, the governor's and the cache's
 * folders, threads) happens in the daemon, which will serve the mount.  The
 * first process waits until the daemon says how start-up went (one byte on
 * a pipe; nothing when it died) and exits with that, after copying to its
 * own stderr what the daemon printed meanwhile (the daemon's stderr is a
 * memory file until then; /dev/null and syslog after).  So `cliqfs
 * MOUNTPOINT` exits 0 once the mount serves, and non-zero with the reason
 * when it cannot. */

static void startup_report(struct startup *st, bool ok)
{
  if (st->report_fd < 0)
    return;
  char byte = ok ? 0 : 1;
  while (write(st->report_fd, &byte, 1) < 0 && errno == EINTR)
    ;
  close(st->report_fd);
  st->report_fd = -1;
  /* From now on the daemon's output goes nowhere; its log goes to syslog
   * unless it has a file. */
  if (ok && !st->log_to_file)
    (void)cliq_log_open(NULL, false, st->log_level);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
  }
  if (st->log_fd >= 0) {
    close(st->log_fd);
    st->log_fd = -1;
  }
}

static void refused_note(const char *mountpoint)
{
  fprintf(stderr, "cliqfs: the kernel did not take the mount of %s (FUSE "
                  "refused its options: see the line above)\n", mountpoint);
}

static void ready_report(struct ready_probe *p, bool ok)
{
  pthread_mutex_lock(&p->lock);
  if (!p->reported) {
    p->reported = true;
    p->ok = ok;
    startup_report(p->st, ok);
  }
  pthread_mutex_unlock(&p->lock);
}

static void *ready_probe_main(void *arg)
{
  struct ready_probe *p = arg;
  struct statvfs sv;
  int r = statvfs(p->mountpoint, &sv);
  bool ok = r == 0 && sv.f_namemax == NAMES_MAX_BYTES;
  pthread_mutex_lock(&p->lock);
  if (!ok && !p->reported)
    refused_note(p->mountpoint);
  pthread_mutex_unlock(&p->lock);
  ready_report(p, ok);
  return NULL;
}

/* Copies the daemon's start-up output to our stderr. */
static void startup_relay(int log_fd)
{
  char buf[4096];
  off_t off = 0;
  ssize_t got;
  while ((got = pread(log_fd, buf, sizeof buf, off)) > 0) {
    if (fwrite(buf, 1, (size_t)got, stderr) != (size_t)got)
      break;
    off += got;
  }
  fflush(stderr);
}

/* Forks.  Returns 0 in the daemon (st set up), 1 in the process the user
 * started once the daemon reported (*status: its exit status), -1 when it
 * could not fork. */
static int daemonize(struct startup *st, int *status)
{
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) {
    fprintf(stderr, "cliqfs: cannot daemonize: pipe: %s\n", strerror(errno));
    return -1;
  }
  int log_fd = memfd_create("cliqfs-startup", MFD_CLOEXEC);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "cliqfs: cannot daemonize: fork: %s\n", strerror(errno));
    close(pfd[0]);
    close(pfd[1]);
    if (log_fd >= 0)
      close(log_fd);
    return -1;
  }
  if (pid > 0) {
    close(pfd[1]);
    char byte = 1;
    ssize_t got;
    while ((got = read(pfd[0], &byte, 1)) < 0 && errno == EINTR)
      ;
    close(pfd[0]);
    if (log_fd >= 0) {
      startup_relay(log_fd);
      close(log_fd);
    }
    if (got != 1)
      fprintf(stderr, "cliqfs: the daemon ended during start-up\n");
    *status = got == 1 && byte == 0 ? 0 : 1;
    return 1;
  }
  close(pfd[0]);
  st->report_fd = pfd[1];
  st->log_fd = log_fd;
  if (setsid() < 0) {
    /* Only fails for a process group leader, which a fresh child is not. */
  }
  if (chdir("/") < 0) {
    /* "/" always exists; nothing depends on the folder. */
  }
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    close(null_fd);
  }
  if (log_fd >= 0)
    dup2(log_fd, STDERR_FILENO);
  openlog("cliqfs", LOG_PID, LOG_DAEMON);
  return 0;
}

static void startup_error(struct fs *fs, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cliqfs: %s\n", msg);
  if (fs && fs->daemonized)
    syslog(LOG_ERR, "%s", msg);
}

/* The most threads that wait at once (more requests queue for them). */
#define WAITER_THREADS 256

/* FUSE workers when -o max_threads is not given.  A worker only answers what
 * can be answered now (what waits is a waiter's), so one per CPU keeps every
 * CPU busy and one more covers a worker stalled in a page fault; more would
 * only idle.  The kernel hands each request to the reader of /dev/fuse that
 * has waited longest, so requests cycle through every idle worker, and a
 * cached read (OPEN, then RELEASE sent at close) cost 1.3-1.9 times as much
 * with an even number of workers as with an odd one (docs/benchmarks.md,
 * the workers table): the count is made odd. */
static unsigned fuse_workers_default(void)
{
  /* The CPUs this process may run on (as nproc(1) counts them). */
  cpu_set_t set;
  long cpus = sched_getaffinity(0, sizeof set, &set) == 0
                  ? CPU_COUNT(&set)
                  : sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1)
    cpus = 1;
  unsigned workers = cpus + 1 > 15 ? 15 : (unsigned)cpus + 1;
  return workers % 2 ? workers : workers + 1;
}

int cliqfs_run(struct cliqfs_config *cfg, struct fuse_args *args,
               const struct cliqfs_hooks *hooks)
{
  struct fuse_cmdline_opts opts;
  memset(&opts, 0, sizeof opts);
  int ret = 1;
  struct fs *fs = NULL;
  struct fuse_session *se = NULL;
  bool mounted = false, handlers = false, started = false;

  struct fuse_loop_config *loop_cfg = NULL;
  struct startup st = { -1, -1, cfg->verbose, cfg->log_path != NULL };
  struct ready_probe ready = { .st = &st };
  pthread_mutex_init(&ready.lock, NULL);
  pthread_t ready_thread;
  bool ready_running = false;

  /* libfuse fills in its own default (10) when -o max_threads is not given:
   * whether the user chose one is seen in the arguments. */
  bool threads_given = false;
  for (int i = 1; i < args->argc; i++)
    if (strstr(args->argv[i], "max_threads="))
      threads_given = true;
  if (fuse_parse_cmdline(args, &opts) != 0)
    return 1;
  if (opts.show_help) {
    printf("usage: cliqfs [options] MOUNTPOINT\n\n");
    fuse_cmdline_help();
    fuse_lowlevel_help();
    ret = 0;
    goto out;
  }
  if (opts.show_version) {
    printf("cliqfs, FUSE library %s\n", fuse_pkgversion());
    ret = 0;
    goto out;
  }
  if (!opts.mountpoint) {
    fprintf(stderr, "cliqfs: no mount point given (cliqfs --help)\n");
    goto out;
  }
  fs = fs_new(cfg);
  if (!fs) {
    fprintf(stderr, "cliqfs: out of memory\n");
    goto out;
  }
  /* The log: its file, else stderr (with -f, the journal under systemd),
   * else syslog once the daemon has started. */
  int lr = cliq_log_open(cfg->log_path, true, cfg->verbose);
  if (lr < 0) {
    fprintf(stderr, "cliqfs: cannot open the log file %s: %s\n",
            cfg->log_path, strerror(-lr));
    goto out;
  }
  if (!opts.foreground) {
    /* The daemon mounts: the process the user started only waits for its
     * word (the mount point is already an absolute path). */
    int status = 1;
    int d = daemonize(&st, &status);
    if (d < 0)
      goto out;
    if (d == 1) {
      fs_free(fs);
      free(opts.mountpoint);
      return status;
    }
    fs->daemonized = true;
  }
  se = fuse_session_new(args, &ops, sizeof ops, fs);
  if (!se)
    goto out;
  fs->se = se;
  if (fuse_set_signal_handlers(se) != 0)
    goto out;
  handlers = true;
  if (fuse_session_mount(se, opts.mountpoint) != 0)
    goto out;
  mounted = true;
  if (opts.foreground && fuse_daemonize(1) != 0)
    goto out;
  /* Mounted: everything from here on happens in the daemon. */
  if (hooks && hooks->on_start) {
    if (hooks->on_start(hooks->ctx, cfg) != 0) {
      startup_error(fs, "start-up failed");
      goto out;
    }
    started = true;
  }
  char msg[512] = "";
  if (fs_connect(fs, msg, sizeof msg) < 0) {
    startup_error(fs, "%s", msg);
    goto out;
  }
  fs->waiters = waiters_new(WAITER_THREADS);
  if (opts.singlethread)
    fs->fuse_workers = 1;
  else if (threads_given && opts.max_threads > 0 && opts.max_threads < 100000)
    fs->fuse_workers = opts.max_threads;
  else
    fs->fuse_workers = fuse_workers_default();
  fs->inval = inval_start(se);
  if (!fs->waiters || !fs->inval) {
    startup_error(fs, "cannot start threads");
    goto out;
  }
  int sr = store_start(fs->store);
  if (sr < 0) {
    startup_error(fs, "cannot start threads: %s", strerror(-sr));
    goto out;
  }
  struct watchdog wd = { .se = se, .gov = fs->gov, .store = fs->store };
  pthread_mutex_init(&wd.lock, NULL);
  cliq_clock_cond_init(&wd.cond);
  pthread_t wd_thread;
  bool wd_running = pthread_create(&wd_thread, NULL, watchdog_main, &wd) == 0;

  ready.mountpoint = opts.mountpoint;
  ready_running = pthread_create(&ready_thread, NULL, ready_probe_main, &ready) == 0;
  if (!ready_running)
    startup_report(&st, true);
  int loop_rc;
  if (opts.singlethread) {
    loop_rc = fuse_session_loop(se);
  } else {
    loop_cfg = fuse_loop_cfg_create();
    if (!loop_cfg) {
      loop_rc = -ENOMEM;
    } else {
      fuse_loop_cfg_set_clone_fd(loop_cfg, (unsigned)opts.clone_fd);
      if (opts.max_idle_threads < 100000)
        fuse_loop_cfg_set_idle_threads(loop_cfg, opts.max_idle_threads);
      fuse_loop_cfg_set_max_threads(loop_cfg, fs->fuse_workers);
      loop_rc = fuse_session_loop_mt(se, loop_cfg);
    }
  }
  /* Ended before the kernel took the mount: a failed start. */
  bool took_mount = true;
  if (ready_running) {
    pthread_mutex_lock(&ready.lock);
    took_mount = ready.reported && ready.ok;
    bool told = ready.reported;
    pthread_mutex_unlock(&ready.lock);
    if (!told)
      refused_note(opts.mountpoint);
    ready_report(&ready, false);
  }
  if (wd_running) {
    pthread_mutex_lock(&wd.lock);
    wd.stop = true;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd_thread, NULL);
  }
  pthread_cond_destroy(&wd.cond);
  pthread_mutex_destroy(&wd.lock);
  /* A signal ends the loop with its number; an unmount with 0. */
  ret = took_mount && (loop_rc == 0 || loop_rc == SIGTERM ||
                       loop_rc == SIGINT || loop_rc == SIGHUP)
            ? 0
            : 1;
out:
  if (fs) {
    /* Delivery order (cache/delivery.h): the governor lets its waiters go,
     * then the store stops its workers and closes the journal. */
    if (fs->gov)
      gov_shutdown(fs->gov);
    /* Requests still waiting get their answer (the waits end), then the
     * waiters are gone before what they use. */
    if (fs->store) {
      store_outbox_stats os;
      store_outbox_stats_get(fs->store, &os);
      if (os.depth > 0)
        cliq_log(CLIQ_LOG_NOTE,
                 "unmounted with %zu message%s queued: kept in %s, they go out "
                 "at the next mount of this account (cliqfs status lists them)",
                 (size_t)os.depth, os.depth == 1 ? "" : "s",
                 fs->cfg->state_dir ? fs->cfg->state_dir : "the state folder");
      store_shutdown(fs->store);
    }
    waiters_free(fs->waiters);
    fs->waiters = NULL;
    if (fs->store)
      store_free(fs->store);
    fs->store = NULL;
    inval_stop(fs->inval);
    fs->inval = NULL;
  }
  if (mounted)
    fuse_session_unmount(se);
  if (handlers)
    fuse_remove_signal_handlers(se);
  if (se)
    fuse_session_destroy(se);
  if (fs) {
    fs_disconnect(fs);
    fs_free(fs);
  }
  if (started && hooks->on_stop)
    hooks->on_stop(hooks->ctx);
  if (ready_running)
    pthread_join(ready_thread, NULL);
  pthread_mutex_destroy(&ready.lock);
  if (loop_cfg)
    fuse_loop_cfg_destroy(loop_cfg);
  free(opts.mountpoint);
  /* A daemon that failed to start says so only now, once unmounted. */
  startup_report(&st, false);
  return ret;
}
