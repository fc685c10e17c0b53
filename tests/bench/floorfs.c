/* tests/bench/floorfs.c: the FUSE floor for the cached-read benchmark.
 *
 * A minimal read-only FUSE filesystem (low-level API, like cliqfs) that copies
 * a directory tree into memory at start-up and serves it.  It answers every
 * request from memory without locks or allocation on the read path, keeps the
 * kernel's page cache between opens (keep_cache: the best a FUSE filesystem
 * that must see every open can do) and uses cliqfs's timeouts per kind of
 * file (fs/nodes.c kinds[]: 30 s for stable files, 5 s for directories, and
 * for growing files (`messages`, `messages.jsonl`) attributes never cached
 * and names for 1 s), with the multi-threaded loop (at most -o max_threads
 * workers, libfuse's 10 if not given).  The difference between
 * the two is what cliqfs does above the bare FUSE round trips.
 *
 *   floorfs [-o file_timeout=S,dir_timeout=S,flush] SOURCE_DIR MOUNTPOINT
 *           [-f] [-s] [FUSE options]
 *
 * `flush` also answers FLUSH requests (a no-op) instead of ENOSYS, which
 * makes the kernel send one more request per close: what cliqfs would cost
 * if it did not open read-only files with noflush (it needs FLUSH only where
 * a close posts a message).
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fnode {
  char *name;
  bool is_dir;
  fuse_ino_t ino;
  fuse_ino_t parent;
  char *data;               /* file content */
  size_t size;
  struct fnode **children;  /* directories */
  size_t n_children;
  char *dirbuf;             /* readdir answer, built once */
  size_t dirbuf_len;
};

struct floorfs {
  struct fnode **by_ino;    /* index = inode number; [0] unused */
  size_t n_nodes, cap_nodes;
  double file_timeout, dir_timeout;
  int with_flush;
  char *source;
  struct timespec mount_time;
};

static struct floorfs g_fs = { .file_timeout = 30.0, .dir_timeout = 5.0 };

static int add_node(struct floorfs *fs, struct fnode *n)
{
  if (fs->n_nodes + 1 >= fs->cap_nodes) {
    size_t nc = fs->cap_nodes ? fs->cap_nodes * 2 : 64;
    struct fnode **nb = realloc(fs->by_ino, nc * sizeof *nb);
    if (!nb)
      return -ENOMEM;
    fs->by_ino = nb;
    fs->cap_nodes = nc;
  }
  n->ino = (fuse_ino_t)++fs->n_nodes;
  fs->by_ino[n->ino] = n;
  return 0;
}

static int read_whole(const char *path, char **data, size_t *size)
{
  int r = 0;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  for (;;) {
    if (len == cap) {
      size_t nc = cap ? cap * 2 : 4096;
      char *nb = realloc(buf, nc);
      if (!nb) {
        r = -ENOMEM;
        goto out;
      }
      buf = nb;
      cap = nc;
    }
    ssize_t got = read(fd, buf + len, cap - len);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      goto out;
    }
    if (got == 0)
      break;
    len += (size_t)got;
  }
  *data = buf;
  *size = len;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return r;
}

static int load_tree(struct floorfs *fs, struct fnode *dir, const char *path);

static int load_child(struct floorfs *fs, struct fnode *dir, const char *path,
                      const char *name)
{
  int r = 0;
  char *child_path = NULL;
  struct stat st;
  if (asprintf(&child_path, "%s/%s", path, name) < 0)
    return -ENOMEM;
  if (lstat(child_path, &st) < 0) {
    r = -errno;
    goto out;
  }
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
    goto out;   /* only files and folders are copied */
  struct fnode *n = calloc(1, sizeof *n);
  if (!n) {
    r = -ENOMEM;
    goto out;
  }
  n->name = strdup(name);
  n->is_dir = S_ISDIR(st.st_mode);
  n->parent = dir->ino;
  struct fnode **nc = realloc(dir->children,
                              (dir->n_children + 1) * sizeof *nc);
  if (!n->name || !nc || add_node(fs, n) < 0) {
    if (nc)
      dir->children = nc;
    free(n->name);
    free(n);
    r = -ENOMEM;
    goto out;
  }
  dir->children = nc;
  dir->children[dir->n_children++] = n;
  r = n->is_dir ? load_tree(fs, n, child_path)
                : read_whole(child_path, &n->data, &n->size);
out:
  free(child_path);
  return r;
}

static int load_tree(struct floorfs *fs, struct fnode *dir, const char *path)
{
  int r = 0;
  DIR *d = opendir(path);
  if (!d)
    return -errno;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    r = load_child(fs, dir, path, de->d_name);
    if (r < 0)
      break;
  }
  closedir(d);
  return r;
}

static void fill_stat(const struct floorfs *fs, const struct fnode *n,
                      struct stat *st)
{
  memset(st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_mode = n->is_dir ? (S_IFDIR | 0755) : (S_IFREG | 0444);
  st->st_nlink = n->is_dir ? 2 : 1;
  st->st_size = n->is_dir ? 0 : (off_t)n->size;
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_mtim = fs->mount_time;
  st->st_ctim = fs->mount_time;
  st->st_atim = fs->mount_time;
}

static struct fnode *node_of(struct floorfs *fs, fuse_ino_t ino)
{
  return ino >= 1 && ino <= fs->n_nodes ? fs->by_ino[ino] : NULL;
}

static bool is_growing(const struct fnode *n)
{
  return !n->is_dir && (strcmp(n->name, "messages") == 0 ||
                        strcmp(n->name, "messages.jsonl") == 0);
}

static double attr_timeout_of(const struct floorfs *fs, const struct fnode *n)
{
  if (is_growing(n))
    return 0;
  return n->is_dir ? fs->dir_timeout : fs->file_timeout;
}

static double entry_timeout_of(const struct floorfs *fs, const struct fnode *n)
{
  if (is_growing(n))
    return 1.0;
  return attr_timeout_of(fs, n);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
  (void)userdata;
  /* The same capabilities cliqfs asks for. */
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct floorfs *fs = fuse_req_userdata(req);
  struct fnode *dir = node_of(fs, parent);
  if (!dir || !dir->is_dir) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  for (size_t i = 0; i < dir->n_children; i++) {
    struct fnode *c = dir->children[i];
    if (strcmp(c->name, name) == 0) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof e);
      e.ino = c->ino;
      e.attr_timeout = attr_timeout_of(fs, c);
      e.entry_timeout = entry_timeout_of(fs, c);
      fill_stat(fs, c, &e.attr);
      fuse_reply_entry(req, &e);
      return;
    }
  }
  fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
  (void)fi;
  struct floorfs *fs = fuse_req_userdata(req);
  struct fnode *n = node_of(fs, ino);
  if (!n) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  fill_stat(fs, n, &st);
  fuse_reply_attr(req, &st, attr_timeout_of(fs, n));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct floorfs *fs = fuse_req_userdata(req);
  struct fnode *n = node_of(fs, ino);
  if (!n || n->is_dir) {
    fuse_reply_err(req, n ? EISDIR : ENOENT);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EACCES);
    return;
  }
  /* The content never changes: the pages the kernel holds stay valid. */
  fi->keep_cache = 1;
  fi->direct_io = 0;
  fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
  (void)fi;
  struct floorfs *fs = fuse_req_userdata(req);
  struct fnode *n = node_of(fs, ino);
  if (!n || n->is_dir) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (off < 0 || (size_t)off >= n->size) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t left = n->size - (size_t)off;
  fuse_reply_buf(req, n->data + off, size < left ? size : left);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);
}

static int build_dirbuf(fuse_req_t req, struct floorfs *fs, struct fnode *dir)
{
  size_t len = 0, cap = 0;
  char *buf = NULL;
  struct fnode *parent = node_of(fs, dir->parent ? dir->parent : dir->ino);
  for (size_t i = 0; i < dir->n_children + 2; i++) {
    const char *name;
    struct fnode *c;
    if (i == 0) {
      name = ".";
      c = dir;
    } else if (i == 1) {
      name = "..";
      c = parent ? parent : dir;
    } else {
      c = dir->children[i - 2];
      name = c->name;
    }
    struct stat st;
    fill_stat(fs, c, &st);
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (len + need > cap) {
      size_t nc = cap ? cap * 2 : 4096;
      while (nc < len + need)
        nc *= 2;
      char *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        return -ENOMEM;
      }
      buf = nb;
      cap = nc;
    }
    fuse_add_direntry(req, buf + len, cap - len, name, &st,
                      (off_t)(len + need));
    len += need;
  }
  dir->dirbuf = buf;
  dir->dirbuf_len = len;
  return 0;
}

static pthread_mutex_t dirbuf_lock = PTHREAD_MUTEX_INITIALIZER;

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
  (void)fi;
  struct floorfs *fs = fuse_req_userdata(req);
  struct fnode *dir = node_of(fs, ino);
  if (!dir || !dir->is_dir) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  pthread_mutex_lock(&dirbuf_lock);
  int r = dir->dirbuf ? 0 : build_dirbuf(req, fs, dir);
  pthread_mutex_unlock(&dirbuf_lock);
  if (r < 0) {
    fuse_reply_err(req, -r);
    return;
  }
  if (off < 0 || (size_t)off >= dir->dirbuf_len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  /* The kernel uses the whole entries of a slice and asks again from the
   * offset of the first one it did not get. */
  size_t left = dir->dirbuf_len - (size_t)off;
  fuse_reply_buf(req, dir->dirbuf + off, size < left ? size : left);
}

static const struct fuse_lowlevel_ops floor_ops = {
  .init = op_init,
  .lookup = op_lookup,
  .getattr = op_getattr,
  .open = op_open,
  .read = op_read,
  .release = op_release,
  .readdir = op_readdir,
};

struct floor_opts {
  double file_timeout;
  double dir_timeout;
  int with_flush;
};

#define FLOOR_OPT(t, p) { t, offsetof(struct floor_opts, p), 1 }
static const struct fuse_opt floor_opt_spec[] = {
  { "file_timeout=%lf", offsetof(struct floor_opts, file_timeout), 0 },
  { "dir_timeout=%lf", offsetof(struct floor_opts, dir_timeout), 0 },
  FLOOR_OPT("flush", with_flush),
  FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key,
                    struct fuse_args *outargs)
{
  (void)outargs;
  struct floorfs *fs = data;
  if (key == FUSE_OPT_KEY_NONOPT && !fs->source) {
    fs->source = strdup(arg);
    return fs->source ? 0 : -1;
  }
  return 1;
}

int main(int argc, char *argv[])
{
  int ret = 1;
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_session *se = NULL;
  struct fuse_cmdline_opts opts;
  struct fuse_loop_config *loop_cfg = NULL;
  struct floor_opts fo = { .file_timeout = 30.0, .dir_timeout = 5.0 };
  struct floorfs *fs = &g_fs;
  bool mounted = false, handlers = false;

  memset(&opts, 0, sizeof opts);
  if (fuse_opt_parse(&args, fs, NULL, opt_proc) < 0 ||
      fuse_opt_parse(&args, &fo, floor_opt_spec, NULL) < 0)
    goto out;
  fs->file_timeout = fo.file_timeout;
  fs->dir_timeout = fo.dir_timeout;
  fs->with_flush = fo.with_flush;
  if (fuse_parse_cmdline(&args, &opts) != 0)
    goto out;
  if (opts.show_help || !fs->source || !opts.mountpoint) {
    fprintf(stderr, "usage: %s [-o file_timeout=S,dir_timeout=S,flush] "
                    "SOURCE_DIR MOUNTPOINT [-f] [-s]\n", argv[0]);
    ret = opts.show_help ? 0 : 1;
    goto out;
  }
  clock_gettime(CLOCK_REALTIME, &fs->mount_time);
  struct fnode *root = calloc(1, sizeof *root);
  if (!root || !(root->name = strdup("/")) || add_node(fs, root) < 0) {
    fprintf(stderr, "floorfs: out of memory\n");
    goto out;
  }
  root->is_dir = true;
  int r = load_tree(fs, root, fs->source);
  if (r < 0) {
    fprintf(stderr, "floorfs: cannot load %s: %s\n", fs->source, strerror(-r));
    goto out;
  }

  struct fuse_lowlevel_ops ops = floor_ops;
  if (fs->with_flush)
    ops.flush = op_flush;
  se = fuse_session_new(&args, &ops, sizeof ops, fs);
  if (!se)
    goto out;
  if (fuse_set_signal_handlers(se) != 0)
    goto out;
  handlers = true;
  if (fuse_session_mount(se, opts.mountpoint) != 0)
    goto out;
  mounted = true;
  if (fuse_daemonize(opts.foreground) != 0)
    goto out;
  int loop_rc;
  if (opts.singlethread) {
    loop_rc = fuse_session_loop(se);
  } else {
    /* cliqfs's loop settings. */
    loop_cfg = fuse_loop_cfg_create();
    if (!loop_cfg)
      goto out;
    fuse_loop_cfg_set_clone_fd(loop_cfg, (unsigned)opts.clone_fd);
    /* The benchmark passes cliqfs's worker count (-o max_threads), so that
     * the kernel cycles through as many idle workers here as there. */
    fuse_loop_cfg_set_max_threads(loop_cfg, opts.max_threads);
    loop_rc = fuse_session_loop_mt(se, loop_cfg);
  }
  ret = loop_rc == 0 || loop_rc == SIGTERM || loop_rc == SIGINT ? 0 : 1;
out:
  if (loop_cfg)
    fuse_loop_cfg_destroy(loop_cfg);
  if (se) {
    if (mounted)
      fuse_session_unmount(se);
    if (handlers)
      fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
  }
  for (size_t i = 1; i <= fs->n_nodes; i++) {
    struct fnode *n = fs->by_ino[i];
    free(n->name);
    free(n->data);
    free(n->children);
    free(n->dirbuf);
    free(n);
  }
  free(fs->by_ino);
  free(fs->source);
  free(opts.mountpoint);
  fuse_opt_free_args(&args);
  return ret;
}
