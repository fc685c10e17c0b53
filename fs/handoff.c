/* fs/handoff.c: requests that may wait: tried on a FUSE worker without
 * patience, handed to a waiter thread when they would wait; the operations
 * table. */
#include "fs/fs_i.h"

/* ---- Requests that wait ------------------------------------------------------
 * A request is first tried on the FUSE worker with no patience: whatever
 * would wait (a rate budget, a lock, another request's fetch) refuses at once
 * instead.  Such an attempt ends in an error reply, which reply_err() keeps
 * back: the request is handed to a waiter thread and run again there, where
 * it may wait and an interrupt ends the wait (EINTR). */

static __thread bool t_handed_on;

/* Whether this attempt is to be run again by a waiter. */
bool handing_on(void)
{
  return patience_none() && patience_refused();
}

int reply_err(fuse_req_t req, int e)
{
  if (e != 0 && handing_on()) {
    t_handed_on = true;
    return 0;
  }
  return fuse_reply_err(req, e);
}

/* ---- Handing requests on ------------------------------------------------------ */

static void call_dispatch(struct call *c)
{
  struct fuse_file_info *fi = c->has_fi ? &c->fi : NULL;
  switch (c->kind) {
  case CALL_LOOKUP: run_lookup(c->req, c->ino, c->name); break;
  case CALL_GETATTR: run_getattr(c->req, c->ino, fi); break;
  case CALL_SETATTR: run_setattr(c->req, c->ino, &c->attr, c->num, fi); break;
  case CALL_ACCESS: run_access(c->req, c->ino, c->num); break;
  case CALL_OPEN: run_open(c->req, c->ino, fi); break;
  case CALL_CREATE: run_create(c->req, c->ino, c->name, c->mode, fi); break;
  case CALL_OPENDIR: run_opendir(c->req, c->ino, fi); break;
  case CALL_MKDIR: run_mkdir(c->req, c->ino, c->name, c->mode); break;
  case CALL_FLUSH: run_flush(c->req, c->ino, fi); break;
  case CALL_FSYNC: run_fsync(c->req, c->ino, c->num, fi); break;
  case CALL_FSYNCDIR: run_fsyncdir(c->req, c->ino, c->num, fi); break;
  }
}

static bool req_cancelled(void *req)
{
  return fuse_req_interrupted(req) != 0;
}

static void call_free(struct call *c)
{
  free(c->name);
  free(c);
}

/* A waiter runs the request, with patience; its interrupt ends the wait.
 * While it runs it is listed in .cliqfs/status ("waiting"). */
static void call_run(void *arg)
{
  struct call *c = arg;
  struct fs *fs = fuse_req_userdata(c->req);
  pthread_mutex_lock(&fs->calls_lock);
  c->prev = NULL;
  c->next = fs->calls;
  if (fs->calls)
    fs->calls->prev = c;
  fs->calls = c;
  pthread_mutex_unlock(&fs->calls_lock);
  patience_set(PATIENCE_WAIT, req_cancelled, c->req);
  patience_report_to(&c->api);
  call_dispatch(c);
  patience_reset();
  pthread_mutex_lock(&fs->calls_lock);
  if (c->prev)
    c->prev->next = c->next;
  else
    fs->calls = c->next;
  if (c->next)
    c->next->prev = c->prev;
  pthread_mutex_unlock(&fs->calls_lock);
  call_free(c);
}

static const char *const call_names[] = {
  [CALL_LOOKUP] = "lookup", [CALL_GETATTR] = "stat", [CALL_SETATTR] = "setattr",
  [CALL_ACCESS] = "access", [CALL_OPEN] = "open", [CALL_CREATE] = "create",
  [CALL_OPENDIR] = "opendir", [CALL_MKDIR] = "mkdir", [CALL_FLUSH] = "close",
  [CALL_FSYNC] = "fsync", [CALL_FSYNCDIR] = "fsync",
};

/* The requests waiters run now, for .cliqfs/status: path, operation, the
 * API whose slot it waits for (when it does), since when. */
json_t *calls_json(struct fs *fs)
{
  json_t *arr = json_array();
  struct { fuse_ino_t ino; char *name; enum call_kind kind; double since;
           const char *api; } seen[64];
  size_t n = 0;
  pthread_mutex_lock(&fs->calls_lock);
  for (struct call *c = fs->calls; c && n < 64; c = c->next) {
    seen[n].ino = c->ino;
    seen[n].name = c->name ? strdup(c->name) : NULL;
    seen[n].kind = c->kind;
    seen[n].since = c->since;
    seen[n].api = __atomic_load_n(&c->api, __ATOMIC_ACQUIRE);
    n++;
  }
  pthread_mutex_unlock(&fs->calls_lock);
  for (size_t i = 0; i < n; i++) {
    struct node *node = node_by_ino(fs, seen[i].ino);
    char *path = !node ? NULL
                 : seen[i].name ? node_path_child(fs, node, seen[i].name)
                                : node_path(fs, node);
    char iso[40];
    store_format_time((int64_t)(seen[i].since * 1000), iso, sizeof iso);
    json_t *o = json_pack("{s:s, s:s, s:f, s:s}", "path", path ? path : "?",
                          "op", call_names[seen[i].kind], "since",
                          seen[i].since, "since_iso", iso);
    if (o && seen[i].api)
      json_object_set_new(o, "api", json_string(seen[i].api));
    if (o)
      json_array_append_new(arr, o);
    free(path);
    free(seen[i].name);
  }
  return arr;
}

static void hand_on(struct call *tmpl)
{
  struct fs *fs = fuse_req_userdata(tmpl->req);
  struct call *c = malloc(sizeof *c);
  if (c) {
    *c = *tmpl;
    c->since = cliq_clock_real();
    c->api = NULL;
    c->name = tmpl->name ? strdup(tmpl->name) : NULL;
    if (tmpl->name && !c->name) {
      free(c);
      c = NULL;
    }
  }
  if (!c) {
    fuse_reply_err(tmpl->req, ENOMEM);
    return;
  }
  if (!fs->waiters || waiters_submit(fs->waiters, call_run, c) < 0)
    call_run(c);                /* no waiter to be had: this worker waits */
}

/* Tries the request now, without waiting; hands it on if it would wait. */
static void try_now(struct call *c)
{
  patience_set(PATIENCE_NONE, NULL, NULL);
  t_handed_on = false;
  call_dispatch(c);
  patience_reset();
  if (t_handed_on) {
    t_handed_on = false;
    hand_on(c);
  }
}

static void with_fi(struct call *c, struct fuse_file_info *fi)
{
  if (fi) {
    c->fi = *fi;
    c->has_fi = true;
  }
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct call c = { .kind = CALL_LOOKUP, .req = req, .ino = parent,
                    .name = (char *)name };
  try_now(&c);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_GETATTR, .req = req, .ino = ino };
  with_fi(&c, fi);
  try_now(&c);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_SETATTR, .req = req, .ino = ino,
                    .attr = *attr, .num = to_set };
  with_fi(&c, fi);
  try_now(&c);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
  struct call c = { .kind = CALL_ACCESS, .req = req, .ino = ino, .num = mask };
  try_now(&c);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_OPEN, .req = req, .ino = ino };
  with_fi(&c, fi);
  try_now(&c);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_CREATE, .req = req, .ino = parent,
                    .name = (char *)name, .mode = mode };
  with_fi(&c, fi);
  try_now(&c);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_OPENDIR, .req = req, .ino = ino };
  with_fi(&c, fi);
  try_now(&c);
}

/* These wait for Cliq or for a delivery by nature: always a waiter's. */
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
  struct call c = { .kind = CALL_MKDIR, .req = req, .ino = parent,
                    .name = (char *)name, .mode = mode };
  hand_on(&c);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_FLUSH, .req = req, .ino = ino };
  with_fi(&c, fi);
  hand_on(&c);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_FSYNC, .req = req, .ino = ino,
                    .num = datasync };
  with_fi(&c, fi);
  hand_on(&c);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
  struct call c = { .kind = CALL_FSYNCDIR, .req = req, .ino = ino,
                    .num = datasync };
  with_fi(&c, fi);
  hand_on(&c);
}

const struct fuse_lowlevel_ops ops = {
  .init = op_init,
  .lookup = op_lookup,
  .forget = op_forget,
  .forget_multi = op_forget_multi,
  .getattr = op_getattr,
  .setattr = op_setattr,
  .access = op_access,
  .mkdir = op_mkdir,
  .rmdir = op_rmdir,
  .unlink = op_unlink,
  .rename = op_rename,
  .link = op_link,
  .symlink = op_symlink,
  .mknod = op_mknod,
  .create = op_create,
  .open = op_open,
  .read = op_read,
  .write = op_write,
  .flush = op_flush,
  .release = op_release,
  .fsync = op_fsync,
  .fsyncdir = op_fsyncdir,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .releasedir = op_releasedir,
  .statfs = op_statfs,
};
