/* fs/fs.c: the FUSE driver (low-level API).  Maps the tree of SPEC "The tree"
 * onto cache/store; docs/design.md tells how a read and a write travel.
 *
 * Nodes: one per identity (channel id, thread chat id or draft, file kind),
 * never freed before unmount, with an inode number derived from the identity
 * (stable across remounts).  Kernel caching is chosen per kind of file (see
 * kinds[] below).  Kernel invalidations go through fs/inval (own thread).
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "api/cliq.h"
#include "api/log.h"
#include "cache/governor.h"
#include "cache/outbox.h"
#include "cache/patience.h"
#include "cache/store.h"
#include "cache/tcache.h"
#include "fs/cliqfs.h"
#include "fs/inval.h"
#include "fs/names.h"
#include "fs/waiters.h"
#include "fs/wrules.h"

/* ---- Kinds of nodes ------------------------------------------------------- */

enum nkind {
  N_ROOT,
  N_META,
  N_STATUS,
  N_ERRORS,
  N_OUTBOX,
  N_FAILED,
  N_OB_ENTRY,        /* .cliqfs/outbox/<id>-<target> */
  N_FA_ENTRY,        /* .cliqfs/failed/<id>-<target> */
  N_CHANNEL,
  N_CH_INFO,
  N_CH_MESSAGES,
  N_THREAD,
  N_T_MAIN,
  N_T_MESSAGES,
  N_T_MEMBERS,
  N_T_FOLLOWERS,
  N_T_NONFOLLOWERS,
  N_T_STATE,
  N_T_TITLE,
  N_T_INFO,
  N_T_JSONL,
  N_T_CTL,
  N_KIND_COUNT
};

/* Kernel caching per kind: growing files (messages) get attr_timeout 0 so
 * that every stat sees their size (tail -f), with a short entry timeout;
 * files that change rarely keep their attributes 30 s (we invalidate them
 * when we know they changed); directories 5 s. */
#define TO_DIR 5.0
#define TO_FILE 30.0
#define TO_GROWING_ENTRY 1.0

static const struct kind_info {
  const char *file;     /* name inside its directory, NULL for named nodes */
  const char *label;    /* for .cliqfs/status */
  bool dir;
  mode_t mode;
  double entry_to, attr_to;
} kinds[N_KIND_COUNT] = {
  [N_ROOT] = { NULL, "root", true, 0755, TO_DIR, TO_DIR },
  [N_META] = { ".cliqfs", "meta", true, 0755, TO_DIR, TO_DIR },
  [N_STATUS] = { "status", "status", false, 0444, TO_GROWING_ENTRY, 0 },
  [N_ERRORS] = { "errors", "errors", false, 0444, TO_GROWING_ENTRY, 0 },
  [N_OUTBOX] = { "outbox", "outbox", true, 0755, TO_DIR, TO_DIR },
  [N_FAILED] = { "failed", "failed", true, 0755, TO_DIR, TO_DIR },
  /* Come and go with the journal: never cached by the kernel. */
  [N_OB_ENTRY] = { NULL, "outbox_entry", false, 0444, 0, 0 },
  [N_FA_ENTRY] = { NULL, "failed_entry", false, 0444, 0, 0 },
  [N_CHANNEL] = { NULL, "channel", true, 0755, TO_DIR, TO_DIR },
  [N_CH_INFO] = { "info", "channel_info", false, 0444, TO_FILE, TO_FILE },
  [N_CH_MESSAGES] = { "messages", "channel_messages", false, 0644,
                      TO_GROWING_ENTRY, 0 },
  [N_THREAD] = { NULL, "thread", true, 0755, TO_DIR, TO_DIR },
  [N_T_MAIN] = { "main", "main", false, 0444, TO_FILE, TO_FILE },
  [N_T_MESSAGES] = { "messages", "messages", false, 0644, TO_GROWING_ENTRY, 0 },
  [N_T_MEMBERS] = { "members", "members", false, 0444, TO_FILE, TO_FILE },
  [N_T_FOLLOWERS] = { "followers", "followers", false, 0644, TO_FILE, TO_FILE },
  [N_T_NONFOLLOWERS] = { "nonfollowers", "nonfollowers", false, 0444, TO_FILE,
                         TO_FILE },
  [N_T_STATE] = { "state", "state", false, 0644, TO_FILE, TO_FILE },
  [N_T_TITLE] = { "title", "title", false, 0444, TO_FILE, TO_FILE },
  [N_T_INFO] = { "info", "info", false, 0444, TO_FILE, TO_FILE },
  [N_T_JSONL] = { "messages.jsonl", "messages.jsonl", false, 0444,
                  TO_GROWING_ENTRY, 0 },
  /* Written to, never holds anything: reads are empty so that grep -r and
   * cp -r over a thread go through without an error. */
  [N_T_CTL] = { "ctl", "ctl", false, 0600, TO_FILE, TO_FILE },
};

static const enum nkind thread_files[] = {
  N_T_MAIN, N_T_MESSAGES, N_T_MEMBERS, N_T_FOLLOWERS, N_T_NONFOLLOWERS,
  N_T_STATE, N_T_TITLE, N_T_INFO, N_T_JSONL, N_T_CTL,
};
static const enum nkind meta_files[] = { N_STATUS, N_ERRORS, N_OUTBOX,
                                         N_FAILED };
static const enum nkind channel_files[] = { N_CH_INFO, N_CH_MESSAGES };

static bool is_thread_level(enum nkind k)
{
  return k >= N_THREAD;
}

/* Open files and directories, so that those the kernel never releases
 * (the session ended first) are freed at unmount. */
struct handle {
  struct handle *prev, *next;
  bool is_dir;
};

/* ---- Nodes -------------------------------------------------------------------- */

struct names_memo {
  const void *snap;           /* the snapshot the names were made from */
  unsigned drafts_version;
  size_t n;
  char **names;
  char **ids;                 /* channel id or thread chat id per name */
};

/* Renderings of documents (a thread's info, main and people, a channel's
 * info) kept by inode, each with the cached answer it was made from (a
 * reference, so that the pointer cannot be reused): while the store answers
 * with that same value, getattr and open reuse the text instead of rendering
 * it again on every request.  A fixed table keeps this bounded whatever is
 * read; two inodes sharing a slot only cost renderings. */
#define DOC_MEMO_SLOTS 1024
#define DOC_MEMO_MAX_TEXT 65536

struct doc_memo {
  fuse_ino_t ino;
  json_t *src;
  char *text;
  size_t len;
};

struct node {
  fuse_ino_t ino;
  enum nkind kind;
  char *ident;
  char *channel_id;           /* channel and below */
  char *thread_id;            /* thread chat id (NULL for drafts) */
  char *draft;                /* draft name, for draft-based nodes */
  struct node *parent;
  char *name;                 /* last name it was found under (fs lock) */
  int64_t reported_size;      /* last size told to the kernel; -1 none */
  struct names_memo memo;     /* directories: names of children (fs lock) */
  store_threads *memo_threads;
  store_channels *memo_channels;
  struct node *next_ino, *next_ident;
};

struct fs {
  struct cliqfs_config *cfg;
  struct fuse_session *se;
  cliq_client *client;
  gov *gov;
  tcache *cache;
  store *store;
  inval_queue *inval;
  struct waiters *waiters;    /* answers the requests that wait */
  pthread_mutex_t calls_lock;
  struct call *calls;         /* requests a waiter is running (status) */
  bool daemonized;            /* stderr is /dev/null: errors go to syslog */
  uid_t uid;
  gid_t gid;
  time_t mount_time;

  pthread_mutex_t lock;       /* nodes, memos, errors */
  struct node **by_ino;
  struct node **by_ident;
  size_t n_buckets;
  size_t n_nodes;
  struct node *root;
  unsigned drafts_version;

  struct handle handles;       /* list head (fs lock) */
  char *errors;
  size_t errors_len, errors_cap;
  json_t *last_errors;
  uint64_t getattr_count[N_KIND_COUNT];   /* atomic */
  uint64_t flush_count;                   /* atomic */

  pthread_mutex_t memo_lock;
  struct doc_memo *memo;       /* DOC_MEMO_SLOTS */
};

static void handle_add(struct fs *fs, struct handle *h, bool is_dir)
{
  pthread_mutex_lock(&fs->lock);
  h->is_dir = is_dir;
  h->next = fs->handles.next;
  h->prev = &fs->handles;
  fs->handles.next->prev = h;
  fs->handles.next = h;
  pthread_mutex_unlock(&fs->lock);
}

static void handle_del(struct fs *fs, struct handle *h)
{
  pthread_mutex_lock(&fs->lock);
  h->prev->next = h->next;
  h->next->prev = h->prev;
  h->next = h->prev = h;
  pthread_mutex_unlock(&fs->lock);
}

static uint64_t ident_hash(const char *s)
{
  return XXH3_64bits(s, strlen(s));
}

static struct node *find_ino_locked(struct fs *fs, fuse_ino_t ino)
{
  for (struct node *n = fs->by_ino[ino % fs->n_buckets]; n; n = n->next_ino)
    if (n->ino == ino)
      return n;
  return NULL;
}

static struct node *find_ident_locked(struct fs *fs, const char *ident)
{
  for (struct node *n = fs->by_ident[ident_hash(ident) % fs->n_buckets]; n;
       n = n->next_ident)
    if (strcmp(n->ident, ident) == 0)
      return n;
  return NULL;
}

static void grow_tables_locked(struct fs *fs)
{
  if (fs->n_nodes < fs->n_buckets)
    return;
  size_t nb = fs->n_buckets * 4;
  struct node **bi = calloc(nb, sizeof *bi), **bd = calloc(nb, sizeof *bd);
  if (!bi || !bd) {
    free(bi);
    free(bd);
    return;
  }
  for (size_t i = 0; i < fs->n_buckets; i++) {
    for (struct node *n = fs->by_ino[i], *next; n; n = next) {
      next = n->next_ino;
      n->next_ino = bi[n->ino % nb];
      bi[n->ino % nb] = n;
    }
    for (struct node *n = fs->by_ident[i], *next; n; n = next) {
      next = n->next_ident;
      size_t k = ident_hash(n->ident) % nb;
      n->next_ident = bd[k];
      bd[k] = n;
    }
  }
  free(fs->by_ino);
  free(fs->by_ident);
  fs->by_ino = bi;
  fs->by_ident = bd;
  fs->n_buckets = nb;
}

static struct node *node_get(struct fs *fs, enum nkind kind, const char *ident,
                             const char *channel_id, const char *thread_id,
                             const char *draft, struct node *parent,
                             const char *name)
{
  pthread_mutex_lock(&fs->lock);
  struct node *n = find_ident_locked(fs, ident);
  if (n) {
    if (name && (!n->name || strcmp(n->name, name) != 0)) {
      char *nn = strdup(name);
      if (nn) {
        free(n->name);
        n->name = nn;
      }
    }
    if (thread_id && !n->thread_id)
      n->thread_id = strdup(thread_id);
    goto out;
  }
  n = calloc(1, sizeof *n);
  if (!n)
    goto out;
  n->kind = kind;
  n->ident = strdup(ident);
  n->channel_id = channel_id ? strdup(channel_id) : NULL;
  n->thread_id = thread_id ? strdup(thread_id) : NULL;
  n->draft = draft ? strdup(draft) : NULL;
  n->name = strdup(name ? name : "");
  n->parent = parent;
  n->reported_size = -1;
  if (!n->ident || !n->name || (channel_id && !n->channel_id) ||
      (thread_id && !n->thread_id) || (draft && !n->draft)) {
    free(n->ident);
    free(n->channel_id);
    free(n->thread_id);
    free(n->draft);
    free(n->name);
    free(n);
    n = NULL;
    goto out;
  }
  /* The inode number is the identity's hash (stable across remounts); a
   * collision takes the next free number. */
  fuse_ino_t ino = ident_hash(ident) & 0x7fffffffffffffffULL;
  if (ino < 2)
    ino += 2;
  while (find_ino_locked(fs, ino))
    ino = ino + 1 < 2 ? 2 : ino + 1;
  n->ino = ino;
  grow_tables_locked(fs);
  n->next_ino = fs->by_ino[ino % fs->n_buckets];
  fs->by_ino[ino % fs->n_buckets] = n;
  size_t k = ident_hash(ident) % fs->n_buckets;
  n->next_ident = fs->by_ident[k];
  fs->by_ident[k] = n;
  fs->n_nodes++;
out:
  pthread_mutex_unlock(&fs->lock);
  return n;
}

static struct node *node_by_ino(struct fs *fs, fuse_ino_t ino)
{
  if (ino == FUSE_ROOT_ID)
    return fs->root;
  pthread_mutex_lock(&fs->lock);
  struct node *n = find_ino_locked(fs, ino);
  pthread_mutex_unlock(&fs->lock);
  return n;
}

static void memo_clear(struct names_memo *m)
{
  for (size_t i = 0; i < m->n; i++) {
    free(m->names[i]);
    free(m->ids[i]);
  }
  free(m->names);
  free(m->ids);
  memset(m, 0, sizeof *m);
}

static void node_free(struct node *n)
{
  free(n->ident);
  free(n->channel_id);
  free(n->thread_id);
  free(n->draft);
  free(n->name);
  memo_clear(&n->memo);
  store_threads_unref(n->memo_threads);
  store_channels_unref(n->memo_channels);
  free(n);
}

/* "/general/Release plan/messages" for the errors log. */
static char *node_path(struct fs *fs, struct node *n)
{
  char *path = NULL;
  pthread_mutex_lock(&fs->lock);
  size_t len = 0;
  for (struct node *p = n; p && p != fs->root; p = p->parent)
    len += strlen(p->name) + 1;
  path = malloc(len + 2);
  if (path) {
    size_t pos = len;
    path[len] = '\0';
    for (struct node *p = n; p && p != fs->root; p = p->parent) {
      size_t l = strlen(p->name);
      pos -= l;
      memcpy(path + pos, p->name, l);
      path[--pos] = '/';
    }
    if (len == 0)
      strcpy(path, "/");
  }
  pthread_mutex_unlock(&fs->lock);
  return path;
}

static char *node_path_child(struct fs *fs, struct node *parent,
                             const char *name)
{
  char *p = node_path(fs, parent);
  char *out = NULL;
  if (p && asprintf(&out, "%s%s%s", p, strcmp(p, "/") ? "/" : "", name) < 0)
    out = NULL;
  free(p);
  return out;
}

/* ---- Errors: .cliqfs/errors, status, stderr ---------------------------------- */

#define ERRORS_MAX_BYTES (1u << 20)
#define LAST_ERRORS 10

static const char *errno_name(int e)
{
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

/* ---- Requests that wait ------------------------------------------------------
 * A request is first tried on the FUSE worker with no patience: whatever
 * would wait (a rate budget, a lock, another request's fetch) refuses at once
 * instead.  Such an attempt ends in an error reply, which reply_err() keeps
 * back: the request is handed to a waiter thread and run again there, where
 * it may wait and an interrupt ends the wait (EINTR). */

static __thread bool t_handed_on;

/* Whether this attempt is to be run again by a waiter. */
static bool handing_on(void)
{
  return patience_none() && patience_refused();
}

static int reply_err(fuse_req_t req, int e)
{
  if (e != 0 && handing_on()) {
    t_handed_on = true;
    return 0;
  }
  return fuse_reply_err(req, e);
}

/* Records a failure and returns -e. */
static int fs_fail_path(struct fs *fs, const char *path, int e,
                        const cliq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fs_fail_path(struct fs *fs, const char *path, int e,
                        const cliq_error *err, const char *fmt, ...)
{
  /* A first attempt that could not wait is tried again: not a failure. */
  if (handing_on())
    return -e;
  char what[1024] = "";
  if (err && err->message[0]) {
    snprintf(what, sizeof what, "%s", err->message);
  } else if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
  } else {
    snprintf(what, sizeof what, "%s", strerror(e));
  }
  for (char *c = what; *c; c++)
    if (*c == '\n' || *c == '\t')
      *c = ' ';
  /* A name a user gave may hold anything: the line stays one line of
   * fields, and no escape sequence reaches a terminal showing it. */
  char shown[1024];
  snprintf(shown, sizeof shown, "%s", path ? path : "?");
  for (unsigned char *c = (unsigned char *)shown; *c; c++)
    if (*c < 0x20 || *c == 0x7f)
      *c = '?';
  const char *code = err && err->code[0] ? err->code : "-";
  char ts[32];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  store_format_time((int64_t)now.tv_sec * 1000, ts, sizeof ts);
  char *line = NULL;
  if (asprintf(&line, "%s\t%s\t%s\t%s\t%s\n", ts, shown, errno_name(e),
               code, what) < 0)
    return -e;
  cliq_log(CLIQ_LOG_NOTE, "%s", line);
  pthread_mutex_lock(&fs->lock);
  size_t l = strlen(line);
  if (fs->errors_len + l > ERRORS_MAX_BYTES) {
    /* Keep the newer half, cut at a line start. */
    size_t cut = fs->errors_len / 2;
    while (cut < fs->errors_len && fs->errors[cut - 1] != '\n')
      cut++;
    memmove(fs->errors, fs->errors + cut, fs->errors_len - cut);
    fs->errors_len -= cut;
  }
  if (fs->errors_len + l + 1 > fs->errors_cap) {
    size_t nc = fs->errors_cap ? fs->errors_cap * 2 : 4096;
    while (nc < fs->errors_len + l + 1)
      nc *= 2;
    char *nb = realloc(fs->errors, nc);
    if (nb) {
      fs->errors = nb;
      fs->errors_cap = nc;
    }
  }
  if (fs->errors_len + l + 1 <= fs->errors_cap) {
    memcpy(fs->errors + fs->errors_len, line, l + 1);
    fs->errors_len += l;
  }
  json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", ts, "path",
                            path ? path : "?", "errno", errno_name(e), "code",
                            code, "message", what);
  if (entry) {
    json_array_append_new(fs->last_errors, entry);
    while (json_array_size(fs->last_errors) > LAST_ERRORS)
      json_array_remove(fs->last_errors, 0);
  }
  pthread_mutex_unlock(&fs->lock);
  free(line);
  return -e;
}

static int fs_fail(struct fs *fs, struct node *n, int e, const cliq_error *err,
                   const char *msg)
{
  char *path = node_path(fs, n);
  fs_fail_path(fs, path, e, err, "%s", msg ? msg : strerror(e));
  free(path);
  return -e;
}

/* ---- Views of channels and threads ----------------------------------------------- */

struct chview {
  char *channel_id;
  char *chat_id;
  int64_t last_ms;
  json_t *raw;
};

static void chview_clear(struct chview *c)
{
  free(c->channel_id);
  free(c->chat_id);
  json_decref(c->raw);
  memset(c, 0, sizeof *c);
}

static int chview_get(struct fs *fs, const char *channel_id,
                      enum store_mode mode, struct chview *out,
                      cliq_error *err)
{
  memset(out, 0, sizeof *out);
  store_channels *cs = NULL;
  int r = store_channels_get(fs->store, mode, &cs, err);
  if (r < 0)
    return r;
  r = -ENOENT;
  for (size_t i = 0; i < cs->count; i++) {
    store_channel *c = &cs->items[i];
    if (strcmp(c->channel_id, channel_id) == 0) {
      out->channel_id = strdup(c->channel_id);
      out->chat_id = strdup(c->chat_id);
      out->last_ms = c->last_ms;
      out->raw = json_incref(c->raw);
      r = out->channel_id && out->chat_id ? 0 : -ENOMEM;
      break;
    }
  }
  store_channels_unref(cs);
  if (r < 0)
    chview_clear(out);
  return r;
}

struct tview {
  char *tid;                 /* thread chat id; NULL for a draft not yet opened */
  bool is_draft;
  store_draft draft;
  bool have_thread;
  bool listed;               /* found in its channel's thread list */
  const store_thread *thread; /* in list (referenced) or in looked_up */
  store_threads *list;
  store_thread looked_up;    /* owned: a thread not in its channel's list */
};

static void tview_clear(struct tview *v)
{
  free(v->tid);
  store_draft_clear(&v->draft);
  store_threads_unref(v->list);
  store_thread_clear(&v->looked_up);
  memset(v, 0, sizeof *v);
}

/* The thread a thread-level node belongs to. */
static int tview_get(struct fs *fs, struct node *n, enum store_mode mode,
                     struct tview *v, cliq_error *err)
{
  memset(v, 0, sizeof *v);
  int r;
  if (n->draft) {
    r = store_draft_get(fs->store, n->channel_id, n->draft, &v->draft);
    if (r < 0)
      return r;
    v->is_draft = true;
    if (!v->draft.thread_chat_id)
      return 0;
    v->tid = strdup(v->draft.thread_chat_id);
  } else {
    v->tid = strdup(n->thread_id ? n->thread_id : "");
  }
  if (!v->tid)
    return -ENOMEM;
  /* The snapshot is kept (referenced) rather than the thread copied: this
   * runs on every getattr and open below a thread. */
  store_threads *ts = NULL;
  r = store_threads_get(fs->store, n->channel_id, mode, &ts, err);
  if (r == 0) {
    v->thread = store_threads_find(ts, v->tid);
    if (v->thread) {
      v->list = ts;
      v->have_thread = v->listed = true;
    } else {
      store_threads_unref(ts);
    }
  }
  if (!v->have_thread) {
    r = store_thread_lookup(fs->store, v->tid, mode, &v->looked_up, err);
    if (r == 0) {
      v->thread = &v->looked_up;
      v->have_thread = true;
    } else if (!v->is_draft) {
      return r;
    }
  }
  return 0;
}

static bool tview_closed(const struct tview *v)
{
  return v->have_thread && v->thread->closed;
}

/* ---- Names of children ------------------------------------------------------------- */

static const char *const channel_reserved[] = { "info", "messages" };
static const char *const root_reserved[] = { ".cliqfs" };

/* Fills the node's memo from a channels snapshot (fs lock held). */
static int memo_channels_locked(struct node *root, store_channels *cs)
{
  if (root->memo_channels == cs && root->memo.names)
    return 0;
  size_t n = cs->count;
  const char **titles = calloc(n + 1, sizeof *titles);
  const char **ids = calloc(n + 1, sizeof *ids);
  char **names = calloc(n + 1, sizeof *names);
  char **idcopy = calloc(n + 1, sizeof *idcopy);
  int r = -ENOMEM;
  if (!titles || !ids || !names || !idcopy)
    goto out;
  for (size_t i = 0; i < n; i++) {
    titles[i] = cs->items[i].unique_name;
    ids[i] = cs->items[i].channel_id;
  }
  r = names_assign(titles, ids, n, root_reserved, 1, names);
  if (r < 0)
    goto out;
  for (size_t i = 0; i < n; i++)
    if (!(idcopy[i] = strdup(ids[i])))
      r = -ENOMEM;
  if (r < 0) {
    for (size_t i = 0; i < n; i++) {
      free(names[i]);
      free(idcopy[i]);
    }
    goto out;
  }
  memo_clear(&root->memo);
  root->memo.n = n;
  root->memo.names = names;
  root->memo.ids = idcopy;
  names = idcopy = NULL;
  __atomic_add_fetch(&cs->refs_, 1, __ATOMIC_ACQ_REL);
  store_channels_unref(root->memo_channels);
  root->memo_channels = cs;
out:
  free(titles);
  free(ids);
  free(names);
  free(idcopy);
  return r;
}

struct draft_names {
  char **names;
  size_t n;
  char **tids;                 /* thread opened from the draft, or NULL */
};

static void draft_names_clear(struct draft_names *d)
{
  for (size_t i = 0; i < d->n; i++) {
    free(d->names[i]);
    free(d->tids ? d->tids[i] : NULL);
  }
  free(d->names);
  free(d->tids);
  memset(d, 0, sizeof *d);
}

static int draft_names_get(struct fs *fs, const char *channel_id,
                           struct draft_names *d)
{
  memset(d, 0, sizeof *d);
  int r = store_draft_list(fs->store, channel_id, &d->names, &d->n);
  if (r < 0)
    return r;
  d->tids = calloc(d->n + 1, sizeof *d->tids);
  if (!d->tids) {
    draft_names_clear(d);
    return -ENOMEM;
  }
  for (size_t i = 0; i < d->n; i++) {
    store_draft sd;
    if (store_draft_get(fs->store, channel_id, d->names[i], &sd) == 0) {
      d->tids[i] = sd.thread_chat_id;
      sd.thread_chat_id = NULL;
      store_draft_clear(&sd);
    }
  }
  return 0;
}

static bool draft_hides(const struct draft_names *d, const char *tid)
{
  for (size_t i = 0; i < d->n; i++)
    if (d->tids[i] && strcmp(d->tids[i], tid) == 0)
      return true;
  return false;
}

/* Fills a channel node's memo: thread names (drafts' names reserved, threads
 * opened from a draft listed under the draft's name). fs lock held. */
static int memo_threads_locked(struct fs *fs, struct node *ch,
                               store_threads *ts, const struct draft_names *d)
{
  if (ch->memo_threads == ts && ch->memo.names &&
      ch->memo.drafts_version == fs->drafts_version)
    return 0;
  size_t n = ts->count;
  const char **titles = calloc(n + 1, sizeof *titles);
  const char **ids = calloc(n + 1, sizeof *ids);
  const char **reserved = calloc(d->n + 3, sizeof *reserved);
  char **names = calloc(n + 1, sizeof *names);
  char **idcopy = calloc(n + 1, sizeof *idcopy);
  int r = -ENOMEM;
  size_t m = 0, n_res = 0;
  if (!titles || !ids || !reserved || !names || !idcopy)
    goto out;
  reserved[n_res++] = channel_reserved[0];
  reserved[n_res++] = channel_reserved[1];
  for (size_t i = 0; i < d->n; i++)
    reserved[n_res++] = d->names[i];
  for (size_t i = 0; i < n; i++) {
    if (draft_hides(d, ts->items[i].chat_id))
      continue;
    titles[m] = ts->items[i].title;
    ids[m] = ts->items[i].chat_id;
    m++;
  }
  r = names_assign(titles, ids, m, reserved, n_res, names);
  if (r < 0)
    goto out;
  for (size_t i = 0; i < m; i++)
    if (!(idcopy[i] = strdup(ids[i])))
      r = -ENOMEM;
  if (r < 0) {
    for (size_t i = 0; i < m; i++) {
      free(names[i]);
      free(idcopy[i]);
    }
    goto out;
  }
  memo_clear(&ch->memo);
  ch->memo.n = m;
  ch->memo.names = names;
  ch->memo.ids = idcopy;
  ch->memo.drafts_version = fs->drafts_version;
  names = idcopy = NULL;
  __atomic_add_fetch(&ts->refs_, 1, __ATOMIC_ACQ_REL);
  store_threads_unref(ch->memo_threads);
  ch->memo_threads = ts;
out:
  free(titles);
  free(ids);
  free(reserved);
  free(names);
  free(idcopy);
  return r;
}

static char *ident_of(const char *prefix, const char *a, const char *b)
{
  char *s = NULL;
  if (asprintf(&s, "%s/%s%s%s", prefix, a, b ? "/" : "", b ? b : "") < 0)
    return NULL;
  return s;
}

static struct node *channel_node(struct fs *fs, const char *channel_id,
                                 const char *name)
{
  char *ident = ident_of("c", channel_id, NULL);
  struct node *n = ident ? node_get(fs, N_CHANNEL, ident, channel_id, NULL,
                                    NULL, fs->root, name)
                         : NULL;
  free(ident);
  return n;
}

static struct node *thread_node(struct fs *fs, struct node *ch,
                                const char *tid, const char *name)
{
  char *ident = ident_of("t", tid, NULL);
  struct node *n = ident ? node_get(fs, N_THREAD, ident, ch->channel_id, tid,
                                    NULL, ch, name)
                         : NULL;
  free(ident);
  return n;
}

static struct node *draft_node(struct fs *fs, struct node *ch,
                               const char *name)
{
  char *ident = NULL;
  if (asprintf(&ident, "d/%s/%s", ch->channel_id, name) < 0)
    return NULL;
  struct node *n = node_get(fs, N_THREAD, ident, ch->channel_id, NULL, name,
                            ch, name);
  free(ident);
  return n;
}

/* A fixed file (or meta dir) under a directory node. */
static struct node *child_node(struct fs *fs, struct node *dir,
                               enum nkind kind)
{
  char *ident = NULL;
  if (asprintf(&ident, "%s/%s", dir->ident, kinds[kind].file) < 0)
    return NULL;
  struct node *n = node_get(fs, kind, ident, dir->channel_id, dir->thread_id,
                            dir->draft, dir, kinds[kind].file);
  free(ident);
  return n;
}

/* ---- Journal entries (.cliqfs/outbox/, .cliqfs/failed/) -------------------------------- */

#define ENTRY_ID_DIGITS 16

/* "<id, 16 digits>-<target made safe>": ids sort as names do. */
static char *entry_name(const outbox_entry *e)
{
  char idbuf[32];
  snprintf(idbuf, sizeof idbuf, "%016" PRIu64, e->id);
  char *safe = names_safe_title(e->target, idbuf,
                                NAMES_MAX_BYTES - ENTRY_ID_DIGITS - 1);
  char *name = NULL;
  if (safe && asprintf(&name, "%s-%s", idbuf, safe) < 0)
    name = NULL;
  free(safe);
  return name;
}

static int entry_id_of_name(const char *name, uint64_t *id)
{
  for (int i = 0; i < ENTRY_ID_DIGITS; i++)
    if (name[i] < '0' || name[i] > '9')
      return -ENOENT;
  if (name[ENTRY_ID_DIGITS] != '-')
    return -ENOENT;
  *id = strtoull(name, NULL, 10);
  return *id ? 0 : -ENOENT;
}

static struct node *entry_node(struct fs *fs, struct node *dir,
                               const outbox_entry *e, const char *name)
{
  enum nkind kind = dir->kind == N_FAILED ? N_FA_ENTRY : N_OB_ENTRY;
  char ident[64];
  snprintf(ident, sizeof ident, "%s/%" PRIu64,
           kind == N_FA_ENTRY ? "fa" : "ob", e->id);
  return node_get(fs, kind, ident, NULL, NULL, NULL, dir, name);
}

/* The journal entry a node shows; -ENOENT once it left. */
static int entry_of_node(struct fs *fs, struct node *n, outbox_entry *out)
{
  uint64_t id = strtoull(n->ident + 3, NULL, 10);
  return store_outbox_get(fs->store, n->kind == N_FA_ENTRY, id, out);
}

/* ---- Contents ------------------------------------------------------------------------ */

static int dup_text(const char *s, char **out, size_t *len)
{
  *out = strdup(s ? s : "");
  *len = *out ? strlen(*out) : 0;
  return *out ? 0 : -ENOMEM;
}

static int json_text(json_t *v, char **out, size_t *len)
{
  char *t = v ? json_dumps(v, JSON_INDENT(2)) : strdup("{}");
  if (!t)
    return -ENOMEM;
  size_t l = strlen(t);
  char *nt = realloc(t, l + 2);
  if (!nt) {
    free(t);
    return -ENOMEM;
  }
  nt[l] = '\n';
  nt[l + 1] = '\0';
  *out = nt;
  *len = l + 1;
  return 0;
}

static char *status_text(struct fs *fs);

/* The kept rendering of src for ino: true with its length in *len and, when
 * out is not NULL, a copy in *out (*r gets -ENOMEM when that fails). */
static bool memo_find(struct fs *fs, fuse_ino_t ino, json_t *src, char **out,
                      size_t *len, int *r)
{
  struct doc_memo *m = &fs->memo[ino % DOC_MEMO_SLOTS];
  bool hit = false;
  pthread_mutex_lock(&fs->memo_lock);
  if (m->src == src && m->ino == ino) {
    hit = true;
    *len = m->len;
    if (out) {
      *out = malloc(m->len + 1);
      if (*out)
        memcpy(*out, m->text, m->len + 1);
      else
        *r = -ENOMEM;
    }
  }
  pthread_mutex_unlock(&fs->memo_lock);
  return hit;
}

/* Keeps text (taken, NUL-terminated) as the rendering of src for ino. */
static void memo_keep(struct fs *fs, fuse_ino_t ino, json_t *src, char *text,
                      size_t len)
{
  struct doc_memo *m = &fs->memo[ino % DOC_MEMO_SLOTS];
  pthread_mutex_lock(&fs->memo_lock);
  json_t *old_src = m->src;
  char *old_text = m->text;
  m->ino = ino;
  m->src = json_incref(src);
  m->text = text;
  m->len = len;
  pthread_mutex_unlock(&fs->memo_lock);
  json_decref(old_src);
  free(old_text);
}

/* store_doc_render's documents, and a channel's info (its raw object). */
#define DOC_CHANNEL_INFO (-1)

/* The rendering of document doc from its cached answer src, kept for the
 * next request on n.  out may be NULL when only the length is wanted. */
static int memo_render(struct fs *fs, struct node *n, int doc, json_t *src,
                       char **out, size_t *len, cliq_error *err)
{
  int r = 0;
  if (out)
    *out = NULL;
  *len = 0;
  /* json_null() is one shared value: its pointer tells nothing. */
  bool keepable = src && !json_is_null(src);
  if (keepable && memo_find(fs, n->ino, src, out, len, &r))
    return r;
  char *t = NULL;
  size_t l = 0;
  r = doc == DOC_CHANNEL_INFO
          ? json_text(src, &t, &l)
          : store_doc_render((enum store_doc)doc, src, &t, &l, err);
  if (r < 0)
    return r;
  *len = l;
  if (keepable && l <= DOC_MEMO_MAX_TEXT) {
    char *kept = t;
    if (out) {
      kept = malloc(l + 1);
      if (kept) {
        memcpy(kept, t, l);
        kept[l] = '\0';
      }
    }
    if (kept)
      memo_keep(fs, n->ino, src, kept, l);
    if (!out)
      return 0;
  }
  if (out)
    *out = t;
  else
    free(t);
  return 0;
}

static int thread_doc(struct fs *fs, struct node *n, const char *tid,
                      enum store_doc doc, enum store_mode mode, char **out,
                      size_t *len, cliq_error *err)
{
  json_t *src = NULL;
  int r = store_doc_source(fs->store, tid, doc, mode, &src, err);
  if (r < 0)
    return r;
  r = memo_render(fs, n, (int)doc, src, out, len, err);
  json_decref(src);
  return r;
}

/* The content of a thread-level file that is not a message log, of the
 * thread in v.  out may be NULL when only the length is wanted.  In
 * STORE_CACHED mode -ENODATA means "never fetched". */
static int thread_content(struct fs *fs, struct node *n, const struct tview *v,
                          enum store_mode mode, char **out, size_t *len,
                          cliq_error *err)
{
  if (out)
    *out = NULL;
  *len = 0;
  bool unopened = v->is_draft && !v->tid;
  char *t = NULL;
  int r;
  switch (n->kind) {
  case N_T_STATE:
    r = dup_text(unopened ? "draft\n" : tview_closed(v) ? "closed\n" : "open\n",
                 &t, len);
    break;
  case N_T_TITLE: {
    const char *title = v->is_draft ? v->draft.name
                        : v->have_thread && v->thread->title ? v->thread->title
                                                               : "";
    char *shown = store_shown_text(title);
    r = shown && asprintf(&t, "%s\n", shown) >= 0 ? 0 : -ENOMEM;
    free(shown);
    if (r == 0)
      *len = strlen(t);
    else
      t = NULL;
    break;
  }
  case N_T_MAIN:
    if (!v->is_draft)
      return thread_doc(fs, n, v->tid, STORE_DOC_MAIN, mode, out, len, err);
    r = dup_text(v->draft.main_text, &t, len);
    break;
  case N_T_MEMBERS:
  case N_T_FOLLOWERS:
  case N_T_NONFOLLOWERS:
    if (!unopened)
      return thread_doc(fs, n, v->tid,
                        n->kind == N_T_MEMBERS     ? STORE_DOC_MEMBERS
                        : n->kind == N_T_FOLLOWERS ? STORE_DOC_FOLLOWERS
                                                   : STORE_DOC_NONFOLLOWERS,
                        mode, out, len, err);
    r = dup_text("", &t, len);
    break;
  case N_T_INFO: {
    if (!unopened)
      return thread_doc(fs, n, v->tid, STORE_DOC_INFO, mode, out, len, err);
    json_t *o = json_pack("{s:s, s:s, s:s?}", "state", "draft", "title",
                          v->draft.name, "main_message_id",
                          v->draft.main_message_id);
    r = json_text(o, &t, len);
    json_decref(o);
    break;
  }
  default:
    r = -EINVAL;
    break;
  }
  if (r == 0 && out)
    *out = t;
  else
    free(t);
  return r;
}

/* The content of a file that is not a message log.  In STORE_CACHED mode
 * -ENODATA means "never fetched". */
static int node_content(struct fs *fs, struct node *n, enum store_mode mode,
                        char **out, size_t *len, cliq_error *err)
{
  *out = NULL;
  *len = 0;
  int r = 0;
  switch (n->kind) {
  case N_STATUS: {
    char *t = status_text(fs);
    if (!t)
      return -ENOMEM;
    *out = t;
    *len = strlen(t);
    return 0;
  }
  case N_ERRORS:
    pthread_mutex_lock(&fs->lock);
    *out = malloc(fs->errors_len + 1);
    if (*out) {
      if (fs->errors_len)
        memcpy(*out, fs->errors, fs->errors_len);
      (*out)[fs->errors_len] = '\0';
      *len = fs->errors_len;
    }
    pthread_mutex_unlock(&fs->lock);
    return *out ? 0 : -ENOMEM;
  case N_CH_INFO: {
    struct chview c;
    r = chview_get(fs, n->channel_id, mode == STORE_FETCH ? STORE_PEEK : mode,
                   &c, err);
    if (r < 0)
      return r;
    r = memo_render(fs, n, DOC_CHANNEL_INFO, c.raw, out, len, err);
    chview_clear(&c);
    return r;
  }
  case N_T_CTL:
    return dup_text("", out, len);
  case N_OB_ENTRY:
  case N_FA_ENTRY: {
    outbox_entry e;
    r = entry_of_node(fs, n, &e);
    if (r < 0)
      return r;
    *out = store_outbox_entry_text(&e, len);
    outbox_entry_clear(&e);
    return *out ? 0 : -ENOMEM;
  }
  default:
    break;
  }
  if (!is_thread_level(n->kind))
    return -EISDIR;
  struct tview v;
  enum store_mode tmode = mode == STORE_FETCH ? STORE_PEEK : mode;
  r = tview_get(fs, n, tmode, &v, err);
  if (r < 0)
    return r;
  r = thread_content(fs, n, &v, mode, out, len, err);
  tview_clear(&v);
  return r;
}

/* The chat whose log a messages file shows; NULL with 0 for a draft that has
 * no thread yet. */
static int log_chat_of(struct fs *fs, struct node *n, char **chat_out,
                       bool *closed, cliq_error *err)
{
  *chat_out = NULL;
  if (closed)
    *closed = false;
  if (n->kind == N_CH_MESSAGES) {
    struct chview c;
    int r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r < 0)
      return r;
    *chat_out = c.chat_id;
    c.chat_id = NULL;
    chview_clear(&c);
    return 0;
  }
  struct tview v;
  int r = tview_get(fs, n, STORE_PEEK, &v, err);
  if (r < 0)
    return r;
  if (closed)
    *closed = tview_closed(&v);
  *chat_out = v.tid;
  v.tid = NULL;
  tview_clear(&v);
  return 0;
}

static bool is_log_kind(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES || k == N_T_JSONL;
}

/* ---- Attributes --------------------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b)
{
  return a > b ? a : b;
}

/* Newest time below a channel from what is cached (never fetches threads). */
static int64_t channel_newest(struct fs *fs, const char *channel_id,
                              int64_t channel_last)
{
  int64_t t = channel_last;
  store_threads *ts = NULL;
  cliq_error err;
  if (store_threads_get(fs->store, channel_id, STORE_CACHED, &ts, &err) == 0) {
    for (size_t i = 0; i < ts->count; i++)
      t = max64(t, ts->items[i].last_ms);
    store_threads_unref(ts);
  }
  return t;
}

/* *attr_to (may be NULL) gets how long the kernel may keep these
 * attributes: the kind's timeout, but 0 while the content was never fetched
 * (its size is about to change) and for what our own writes change
 * (followers, drafts), so that a stat after a write or a first read is exact.
 * The state of a thread in its channel's list keeps the kind's timeout: it
 * changes only with that list, and every change of the list (a refresh that
 * differs, our own close or reopen delivered) invalidates the thread's nodes
 * (on_threads_changed); writing the file itself makes the kernel forget its
 * attributes.  A stat and every read() then cost no request. */
static int node_attr(struct fs *fs, struct node *n, struct stat *st,
                     double *attr_to, cliq_error *err)
{
  memset(st, 0, sizeof *st);
  bool unknown = false;
  const struct kind_info *ki = &kinds[n->kind];
  st->st_ino = n->ino;
  st->st_uid = fs->uid;
  st->st_gid = fs->gid;
  st->st_blksize = 4096;
  mode_t mode = ki->mode;
  int64_t mtime_ms = 0;
  off_t size = 0;
  int r = 0;
  bool state_listed = false;

  switch (n->kind) {
  case N_ROOT: {
    store_channels *cs = NULL;
    if (store_channels_get(fs->store, STORE_CACHED, &cs, err) == 0) {
      for (size_t i = 0; i < cs->count; i++)
        mtime_ms = max64(mtime_ms, cs->items[i].last_ms);
      store_channels_unref(cs);
    }
    break;
  }
  case N_META:
  case N_OUTBOX:
  case N_FAILED:
    break;
  case N_OB_ENTRY:
  case N_FA_ENTRY: {
    outbox_entry e;
    r = entry_of_node(fs, n, &e);
    if (r < 0)
      return r;
    size_t len = 0;
    free(store_outbox_entry_text(&e, &len));
    size = (off_t)len;
    double t = n->kind == N_FA_ENTRY && e.failed_at > 0 ? e.failed_at
                                                          : e.created;
    mtime_ms = (int64_t)(t * 1000);
    outbox_entry_clear(&e);
    break;
  }
  case N_STATUS:
  case N_ERRORS: {
    char *c = NULL;
    size_t len = 0;
    if (node_content(fs, n, STORE_CACHED, &c, &len, err) == 0)
      size = (off_t)len;
    free(c);
    mtime_ms = (int64_t)time(NULL) * 1000;
    break;
  }
  case N_CHANNEL:
  case N_CH_INFO:
  case N_CH_MESSAGES: {
    struct chview c;
    r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r < 0)
      return r;
    mtime_ms = n->kind == N_CHANNEL ? channel_newest(fs, n->channel_id, c.last_ms)
                                    : c.last_ms;
    if (n->kind == N_CH_INFO) {
      size_t len = 0;
      if (memo_render(fs, n, DOC_CHANNEL_INFO, c.raw, NULL, &len, NULL) == 0)
        size = (off_t)len;
    } else if (n->kind == N_CH_MESSAGES) {
      store_log *log = NULL;
      if (store_log_get(fs->store, c.chat_id, STORE_CACHED, &log, NULL) == 0) {
        size = (off_t)store_log_size(log, STORE_LOG_TEXT);
        mtime_ms = max64(mtime_ms, store_log_last_ms(log));
      } else {
        unknown = true;
      }
    }
    chview_clear(&c);
    break;
  }
  default: {
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r < 0)
      return r;
    if (v.have_thread)
      mtime_ms = v.thread->last_ms;
    store_log *log = NULL;
    bool log_known = v.tid && store_log_get(fs->store, v.tid, STORE_CACHED,
                                            &log, NULL) == 0;
    if (log_known)
      mtime_ms = max64(mtime_ms, store_log_last_ms(log));
    if (n->kind == N_T_MESSAGES || n->kind == N_T_JSONL) {
      if (log_known)
        size = (off_t)store_log_size(log, n->kind == N_T_JSONL ? STORE_LOG_JSONL
                                                               : STORE_LOG_TEXT);
      else
        unknown = v.tid != NULL;
      if (n->kind == N_T_MESSAGES && tview_closed(&v))
        mode = 0444;
    } else if (n->kind != N_THREAD) {
      if (n->kind == N_T_MAIN && v.is_draft && !v.draft.main_message_id &&
          !v.draft.main_pending)
        mode = 0644;
      size_t len = 0;
      if (thread_content(fs, n, &v, STORE_CACHED, NULL, &len, NULL) == 0)
        size = (off_t)len;
      else
        unknown = true;
      state_listed = v.listed;
    }
    tview_clear(&v);
    break;
  }
  }

  if (attr_to) {
    *attr_to = ki->attr_to;
    if (unknown || n->draft || (n->kind == N_T_STATE && !state_listed) ||
        n->kind == N_T_FOLLOWERS)
      *attr_to = 0;
  }
  if (mtime_ms <= 0)
    mtime_ms = (int64_t)fs->mount_time * 1000;
  st->st_mtim.tv_sec = (time_t)(mtime_ms / 1000);
  st->st_mtim.tv_nsec = (long)(mtime_ms % 1000) * 1000000L;
  st->st_ctim = st->st_mtim;
  st->st_atim = st->st_mtim;
  if (fs->cfg->umask >= 0)
    mode &= ~(mode_t)fs->cfg->umask;
  if (ki->dir) {
    st->st_mode = S_IFDIR | mode;
    st->st_nlink = 2;
    st->st_size = 0;
  } else {
    st->st_mode = S_IFREG | mode;
    st->st_nlink = 1;
    st->st_size = size;
    st->st_blocks = (size + 511) / 512;
  }
  return 0;
}

static void note_reported(struct node *n, const struct stat *st)
{
  if (!S_ISDIR(st->st_mode))
    __atomic_store_n(&n->reported_size, (int64_t)st->st_size, __ATOMIC_RELEASE);
}

/* ---- Callbacks from the store (any thread) -------------------------------------------- */

static void inval_node_if(struct fs *fs, const char *ident)
{
  pthread_mutex_lock(&fs->lock);
  struct node *n = find_ident_locked(fs, ident);
  fuse_ino_t ino = n ? n->ino : 0;
  pthread_mutex_unlock(&fs->lock);
  if (ino)
    inval_inode(fs->inval, ino);
}

static void inval_thread_nodes(struct fs *fs, const char *tid)
{
  char *ident = ident_of("t", tid, NULL);
  if (!ident)
    return;
  inval_node_if(fs, ident);
  for (size_t i = 0; i < sizeof thread_files / sizeof *thread_files; i++) {
    char *fi = ident_of("t", tid, kinds[thread_files[i]].file);
    if (fi)
      inval_node_if(fs, fi);
    free(fi);
  }
  free(ident);
}

/* Every node whose look depends on a thread list or a log of this chat. */
static void inval_matching(struct fs *fs, const char *channel_id,
                           const char *chat_id)
{
  size_t cap = 64, k = 0;
  fuse_ino_t *inos = malloc(cap * sizeof *inos);
  if (!inos)
    return;
  pthread_mutex_lock(&fs->lock);
  for (size_t b = 0; b < fs->n_buckets; b++) {
    for (struct node *n = fs->by_ino[b]; n; n = n->next_ino) {
      bool hit = false;
      if (channel_id && n->channel_id && strcmp(n->channel_id, channel_id) == 0 &&
          (n->kind == N_CHANNEL || is_thread_level(n->kind)))
        hit = true;
      if (chat_id && n->thread_id && strcmp(n->thread_id, chat_id) == 0 &&
          is_thread_level(n->kind))
        hit = true;
      if (!hit)
        continue;
      if (k == cap) {
        fuse_ino_t *ni = realloc(inos, cap * 2 * sizeof *ni);
        if (!ni)
          break;
        inos = ni;
        cap *= 2;
      }
      inos[k++] = n->ino;
    }
  }
  pthread_mutex_unlock(&fs->lock);
  for (size_t i = 0; i < k; i++)
    inval_inode(fs->inval, inos[i]);
  free(inos);
}

static void on_log_grew(void *ctx, const char *chat_id)
{
  struct fs *fs = ctx;
  if (strstr(chat_id, "-T-")) {
    inval_thread_nodes(fs, chat_id);
    inval_matching(fs, NULL, chat_id);   /* drafts opened as this thread */
    return;
  }
  /* A channel's own conversation: find which channel from the cached list. */
  store_channels *cs = NULL;
  if (store_channels_get(fs->store, STORE_CACHED, &cs, NULL) < 0)
    return;
  for (size_t i = 0; i < cs->count; i++) {
    if (strcmp(cs->items[i].chat_id, chat_id) != 0)
      continue;
    char *a = ident_of("c", cs->items[i].channel_id, "messages");
    char *b = ident_of("c", cs->items[i].channel_id, NULL);
    if (a)
      inval_node_if(fs, a);
    if (b)
      inval_node_if(fs, b);
    free(a);
    free(b);
  }
  store_channels_unref(cs);
  inval_inode(fs->inval, FUSE_ROOT_ID);
}

static void on_threads_changed(void *ctx, const char *channel_id)
{
  struct fs *fs = ctx;
  if (channel_id)
    inval_matching(fs, channel_id, NULL);
}

static void on_drafts_changed(void *ctx, const char *channel_id)
{
  struct fs *fs = ctx;
  pthread_mutex_lock(&fs->lock);
  fs->drafts_version++;
  pthread_mutex_unlock(&fs->lock);
  on_threads_changed(ctx, channel_id);
}

/* An answer had malformed entries: the rest is shown, and one errors line
 * says what was left out (also from an attempt that is handed on: the
 * store reports each reason once). */
static void on_entries_skipped(void *ctx, const char *what, size_t count,
                               const char *why)
{
  struct fs *fs = ctx;
  enum patience was = patience_swap(PATIENCE_WAIT);
  fs_fail_path(fs, what, EIO, NULL, "%zu malformed %s left out: %s", count,
               count == 1 ? "entry" : "entries", why);
  patience_swap(was);
}

/* Deliveries wait for the state folder (full, read-only): one errors line
 * until one goes through again. */
static void on_delivery_stalled(void *ctx, const cliq_error *err)
{
  struct fs *fs = ctx;
  enum patience was = patience_swap(PATIENCE_WAIT);
  fs_fail_path(fs, ".cliqfs/outbox", err && err->err ? err->err : EIO, NULL,
               "deliveries wait: the state folder %s cannot be written (%s); "
               "nothing is lost, they go out once there is room",
               fs->cfg->state_dir ? fs->cfg->state_dir : "?",
               err && err->message[0] ? err->message : "?");
  patience_swap(was);
}

/* Cliq refused a journaled write for good: one errors line, saying where
 * the entry is kept. */
static void on_write_failed(void *ctx, const outbox_entry *e, const char *path,
                            const cliq_error *err)
{
  struct fs *fs = ctx;
  cliq_error line;
  memset(&line, 0, sizeof line);
  if (err)
    line = *err;
  if (!line.err)
    line.err = EIO;
  char *name = entry_name(e);
  char what[sizeof line.message];
  memcpy(what, line.message, sizeof what);
  line.message[0] = '\0';      /* the line's message is the one below */
  fs_fail_path(fs, path, line.err, &line,
               "%s (not delivered, kept as .cliqfs/failed/%s)",
               what[0] ? what : strerror(line.err), name ? name : "?");
  free(name);
}

/* ---- Status ------------------------------------------------------------------------ */

static json_t *calls_json(struct fs *fs);

/* Epoch seconds as ISO 8601 UTC (status shows both). */
static json_t *iso_of(double epoch_s)
{
  char iso[40];
  store_format_time((int64_t)(epoch_s * 1000), iso, sizeof iso);
  return json_string(iso);
}

static char *status_text(struct fs *fs)
{
  json_t *root = json_object();
  json_t *apis = json_object();
  for (int a = 0; a < CLIQ_API_COUNT; a++) {
    gov_api_status gs = { 0 };
    const struct cliq_api_info *info = cliq_api_info((enum cliq_api)a);
    if (fs->gov) {
      gov_status(fs->gov, (enum cliq_api)a, &gs);
    } else {
      gs.limit = info->limit;
      gs.window_s = info->window_s;
    }
    json_t *o = json_pack("{s:i, s:f, s:i, s:f, s:i}", "limit", gs.limit,
                          "window_s", gs.window_s, "used", gs.used,
                          "locked_until", gs.locked_until, "waiting",
                          gs.waiting);
    if (o && gs.locked_until > 0)
      json_object_set_new(o, "locked_until_iso", iso_of(gs.locked_until));
    json_object_set_new(apis, cliq_api_name((enum cliq_api)a), o);
  }
  json_object_set_new(root, "apis", apis);
  tcache_stats ts = { 0 };
  if (fs->cache)
    tcache_stats_get(fs->cache, &ts);
  json_object_set_new(root, "cache",
                      json_pack("{s:I, s:I, s:I, s:I, s:f}", "entries",
                                (json_int_t)ts.entries, "hits",
                                (json_int_t)ts.hits, "misses",
                                (json_int_t)ts.misses, "bytes",
                                (json_int_t)ts.bytes, "oldest_age_s",
                                ts.oldest_age_s));
  store_outbox_stats os;
  if (fs->store)
    store_outbox_stats_get(fs->store, &os);
  else
    memset(&os, 0, sizeof os);
  json_object_set_new(
      root, "outbox",
      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "depth",
                (json_int_t)os.depth, "failed", (json_int_t)os.failed,
                "delivered", (json_int_t)os.delivered, "refused",
                (json_int_t)os.refused, "retries", (json_int_t)os.retries,
                "sends", (json_int_t)os.sends, "checks", (json_int_t)os.checks,
                "found", (json_int_t)os.found));
  if (fs->store && os.depth > 0) {
    /* The oldest message still waiting, and since when. */
    outbox_entry *items = NULL;
    size_t n = 0;
    if (store_outbox_list(fs->store, false, &items, &n) == 0 && n > 0) {
      double oldest = items[0].created;
      for (size_t i = 1; i < n; i++)
        if (items[i].created < oldest)
          oldest = items[i].created;
      json_t *ob = json_object_get(root, "outbox");
      json_object_set_new(ob, "oldest", json_real(oldest));
      json_object_set_new(ob, "oldest_iso", iso_of(oldest));
    }
    outbox_entry_list_free(items, n);
  }
  json_object_set_new(root, "auth",
                      json_string(fs->client ? cliq_client_auth_state(fs->client)
                                             : "none"));
  if (fs->store) {
    char *me_id = NULL, *me_name = NULL;
    store_self_get(fs->store, &me_id, &me_name);
    if (me_id) {
      char *me = NULL;
      if (asprintf(&me, "%s (%s)", me_name ? me_name : "?", me_id) >= 0) {
        json_object_set_new(root, "me", json_string(me));
        free(me);
      }
    }
    free(me_id);
    free(me_name);
  }
  json_object_set_new(root, "waiting", calls_json(fs));
  if (fs->cfg->state_dir)
    json_object_set_new(root, "state_dir", json_string(fs->cfg->state_dir));
  json_t *fuse = json_object();
  json_t *getattr = json_object();
  pthread_mutex_lock(&fs->lock);
  json_object_set_new(root, "last_errors", json_deep_copy(fs->last_errors));
  for (int k = 0; k < N_KIND_COUNT; k++)
    json_object_set_new(getattr, kinds[k].label,
                        json_integer((json_int_t)__atomic_load_n(
                            &fs->getattr_count[k], __ATOMIC_RELAXED)));
  json_object_set_new(fuse, "nodes", json_integer((json_int_t)fs->n_nodes));
  pthread_mutex_unlock(&fs->lock);
  json_object_set_new(fuse, "getattr", getattr);
  json_object_set_new(fuse, "flush",
                      json_integer((json_int_t)__atomic_load_n(
                          &fs->flush_count, __ATOMIC_RELAXED)));
  json_object_set_new(fuse, "waiting",
                      json_integer((json_int_t)waiters_busy(fs->waiters)));
  json_object_set_new(fuse, "invalidations_sent",
                      json_integer((json_int_t)inval_sent(fs->inval)));
  json_object_set_new(root, "fuse", fuse);
  json_object_set_new(root, "time_scale", json_real(fs->cfg->time_scale > 0
                                                        ? fs->cfg->time_scale
                                                        : 1.0));
  char *t = NULL;
  size_t len = 0;
  json_text(root, &t, &len);
  json_decref(root);
  return t;
}

/* ---- Lookup ---------------------------------------------------------------------------- */

static void reply_entry_for(fuse_req_t req, struct fs *fs, struct node *n)
{
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &e.attr, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  e.ino = n->ino;
  e.generation = 1;
  e.attr_timeout = attr_to;
  e.entry_timeout = kinds[n->kind].entry_to;
  note_reported(n, &e.attr);
  fuse_reply_entry(req, &e);
}

/* Finds a channel by its directory name or chat/channel id. */
static int find_channel(struct fs *fs, const char *name, enum store_mode mode,
                        struct node **out, cliq_error *err)
{
  *out = NULL;
  store_channels *cs = NULL;
  int r = store_channels_get(fs->store, mode, &cs, err);
  if (r < 0)
    return r;
  char *chan_id = NULL, *dir_name = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_channels_locked(fs->root, cs);
  if (r == 0) {
    for (size_t i = 0; i < fs->root->memo.n; i++) {
      if (strcmp(fs->root->memo.names[i], name) == 0) {
        chan_id = strdup(fs->root->memo.ids[i]);
        dir_name = strdup(name);
        break;
      }
    }
  }
  pthread_mutex_unlock(&fs->lock);
  if (r == 0 && !chan_id) {
    for (size_t i = 0; i < cs->count; i++) {
      if (strcmp(cs->items[i].chat_id, name) == 0 ||
          strcmp(cs->items[i].channel_id, name) == 0) {
        chan_id = strdup(cs->items[i].channel_id);
        dir_name = strdup(name);
        break;
      }
    }
  }
  store_channels_unref(cs);
  if (r < 0)
    return r;
  if (!chan_id)
    return -ENOENT;
  *out = channel_node(fs, chan_id, dir_name);
  free(chan_id);
  free(dir_name);
  return *out ? 0 : -ENOMEM;
}

static int find_thread(struct fs *fs, struct node *ch, const char *name,
                       enum store_mode mode, struct node **out,
                       cliq_error *err)
{
  *out = NULL;
  store_threads *ts = NULL;
  int r = store_threads_get(fs->store, ch->channel_id, mode, &ts, err);
  if (r < 0)
    return r;
  struct draft_names d;
  r = draft_names_get(fs, ch->channel_id, &d);
  if (r < 0) {
    store_threads_unref(ts);
    return r;
  }
  char *tid = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_threads_locked(fs, ch, ts, &d);
  if (r == 0) {
    for (size_t i = 0; i < ch->memo.n; i++) {
      if (strcmp(ch->memo.names[i], name) == 0) {
        tid = strdup(ch->memo.ids[i]);
        break;
      }
    }
  }
  pthread_mutex_unlock(&fs->lock);
  if (r == 0 && !tid && store_threads_find(ts, name))
    tid = strdup(name);       /* reached by chat id */
  store_threads_unref(ts);
  draft_names_clear(&d);
  if (r < 0)
    return r;
  if (!tid)
    return -ENOENT;
  *out = thread_node(fs, ch, tid, name);
  free(tid);
  return *out ? 0 : -ENOMEM;
}

/* A thread not in the channel's list, reached by its chat id. */
static int find_thread_by_id(struct fs *fs, struct node *ch, const char *name,
                             struct node **out, cliq_error *err)
{
  *out = NULL;
  if (!strstr(name, "-T-"))
    return -ENOENT;
  struct chview c;
  int r = chview_get(fs, ch->channel_id, STORE_PEEK, &c, err);
  if (r < 0)
    return r;
  store_thread t;
  r = store_thread_lookup(fs->store, name, STORE_FETCH, &t, err);
  if (r == -EINVAL)
    r = -ENOENT;     /* not the shape of a chat id: no such name */
  if (r == 0) {
    if (strcmp(t.parent_chat_id, c.chat_id) != 0)
      r = -ENOENT;
    store_thread_clear(&t);
  }
  chview_clear(&c);
  if (r < 0)
    return r;
  *out = thread_node(fs, ch, name, name);
  return *out ? 0 : -ENOMEM;
}

static int lookup_child(struct fs *fs, struct node *p, const char *name,
                        struct node **out, cliq_error *err)
{
  *out = NULL;
  switch (p->kind) {
  case N_ROOT: {
    if (strcmp(name, ".cliqfs") == 0) {
      char ident[] = ".cliqfs";
      *out = node_get(fs, N_META, ident, NULL, NULL, NULL, fs->root, name);
      return *out ? 0 : -ENOMEM;
    }
    int r = find_channel(fs, name, STORE_PEEK, out, err);
    if (r == -ENOENT)
      r = find_channel(fs, name, STORE_FETCH, out, err);
    return r;
  }
  case N_META:
    for (size_t i = 0; i < sizeof meta_files / sizeof *meta_files; i++)
      if (strcmp(name, kinds[meta_files[i]].file) == 0) {
        *out = child_node(fs, p, meta_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    return -ENOENT;
  case N_CHANNEL: {
    for (size_t i = 0; i < sizeof channel_files / sizeof *channel_files; i++)
      if (strcmp(name, kinds[channel_files[i]].file) == 0) {
        *out = child_node(fs, p, channel_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    store_draft d;
    if (store_draft_get(fs->store, p->channel_id, name, &d) == 0) {
      store_draft_clear(&d);
      *out = draft_node(fs, p, name);
      return *out ? 0 : -ENOMEM;
    }
    int r = find_thread(fs, p, name, STORE_PEEK, out, err);
    if (r == -ENOENT)
      r = find_thread(fs, p, name, STORE_FETCH, out, err);
    if (r == -ENOENT)
      r = find_thread_by_id(fs, p, name, out, err);
    return r;
  }
  case N_THREAD:
    for (size_t i = 0; i < sizeof thread_files / sizeof *thread_files; i++)
      if (strcmp(name, kinds[thread_files[i]].file) == 0) {
        *out = child_node(fs, p, thread_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    return -ENOENT;
  case N_OUTBOX:
  case N_FAILED: {
    uint64_t id;
    int r = entry_id_of_name(name, &id);
    if (r < 0)
      return r;
    outbox_entry e;
    r = store_outbox_get(fs->store, p->kind == N_FAILED, id, &e);
    if (r < 0)
      return r;
    char *want = entry_name(&e);
    if (!want)
      r = -ENOMEM;
    else if (strcmp(want, name) != 0)
      r = -ENOENT;
    else
      *out = entry_node(fs, p, &e, name);
    if (r == 0 && !*out)
      r = -ENOMEM;
    free(want);
    outbox_entry_clear(&e);
    return r;
  }
  default:
    return -ENOTDIR;
  }
}

static void run_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  struct node *n = NULL;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = lookup_child(fs, p, name, &n, &err);
  if (r < 0) {
    /* A name that is not there is no failure worth a log line; Cliq failing
     * to tell us is. */
    if (r != -ENOENT || err.http_status || err.curl_code) {
      char *path = node_path_child(fs, p, name);
      fs_fail_path(fs, path, -r, &err, NULL);
      free(path);
    }
    reply_err(req, -r);
    return;
  }
  reply_entry_for(req, fs, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  (void)ino;
  (void)nlookup;
  fuse_reply_none(req);   /* nodes live until unmount */
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
  (void)count;
  (void)forgets;
  fuse_reply_none(req);
}

static void run_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  __atomic_add_fetch(&fs->getattr_count[n->kind], 1, __ATOMIC_RELAXED);
  struct stat st;
  cliq_error err;
  memset(&err, 0, sizeof err);
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    if (r != -ENOENT)
      fs_fail(fs, n, -r, &err, NULL);
    reply_err(req, -r);
    return;
  }
  note_reported(n, &st);
  fuse_reply_attr(req, &st, attr_to);
}

static bool writable_kind(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES || k == N_T_FOLLOWERS ||
         k == N_T_STATE || k == N_T_CTL || k == N_T_MAIN;
}

static bool is_message_log(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES;
}

static void run_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  /* The shell's ">" arrives as an open with O_TRUNC (atomic_o_trunc), so
   * a truncate is a user's own.  On a writable file other than a message
   * log, to 0, it changes nothing and is accepted; a message log cannot lose
   * what Cliq holds, so it refuses every size; nothing else can change. */
  bool only_size = (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME |
                               FUSE_SET_ATTR_KILL_SUID)) == 0;
  if ((to_set & FUSE_SET_ATTR_SIZE) && is_message_log(n->kind)) {
    fs_fail(fs, n, EPERM, NULL,
            "messages only grow: truncating would not remove anything from "
            "Cliq (append with >>)");
    reply_err(req, EPERM);
    return;
  }
  if (!(to_set & FUSE_SET_ATTR_SIZE) || !only_size || attr->st_size != 0 ||
      !writable_kind(n->kind)) {
    fs_fail(fs, n, EPERM, NULL, "attributes cannot be changed");
    reply_err(req, EPERM);
    return;
  }
  struct stat st;
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  note_reported(n, &st);
  fuse_reply_attr(req, &st, attr_to);
}

static void run_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  /* The bits of the caller's class, as the kernel's own check would pick
   * them (uid=, gid= and umask= make the classes differ). */
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  mode_t m = st.st_mode;
  unsigned bits = (m >> 6) & 7;
  if (ctx && ctx->uid == 0)
    bits = 6 | (((m >> 6) | (m >> 3) | m) & 1);  /* root: r, w; x if any */
  else if (ctx && ctx->uid != st.st_uid)
    bits = ctx->gid == st.st_gid ? (m >> 3) & 7 : m & 7;
  if (((mask & R_OK) && !(bits & 4)) || ((mask & W_OK) && !(bits & 2)) ||
      ((mask & X_OK) && !(bits & 1)))
    reply_err(req, EACCES);
  else
    reply_err(req, 0);
}

/* ---- Directories ------------------------------------------------------------------- */

struct dirent_s {
  char *name;
  fuse_ino_t ino;
  mode_t type;
};

struct dirh {
  struct handle h;            /* first member */
  size_t n, cap;
  struct dirent_s *e;
};

static int dir_add(struct dirh *d, const char *name, fuse_ino_t ino, bool dir)
{
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 32;
    struct dirent_s *ne = realloc(d->e, nc * sizeof *ne);
    if (!ne)
      return -ENOMEM;
    d->e = ne;
    d->cap = nc;
  }
  d->e[d->n].name = strdup(name);
  if (!d->e[d->n].name)
    return -ENOMEM;
  d->e[d->n].ino = ino;
  d->e[d->n].type = dir ? S_IFDIR : S_IFREG;
  d->n++;
  return 0;
}

static void dirh_free(struct dirh *d)
{
  for (size_t i = 0; i < d->n; i++)
    free(d->e[i].name);
  free(d->e);
  free(d);
}

static int add_fixed(struct fs *fs, struct dirh *d, struct node *dir,
                     const enum nkind *list, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct node *c = child_node(fs, dir, list[i]);
    if (!c)
      return -ENOMEM;
    int r = dir_add(d, kinds[list[i]].file, c->ino, kinds[list[i]].dir);
    if (r < 0)
      return r;
  }
  return 0;
}

static int list_root(struct fs *fs, struct dirh *d, cliq_error *err)
{
  store_channels *cs = NULL;
  int r = store_channels_get(fs->store, STORE_FETCH, &cs, err);
  if (r < 0)
    return r;
  size_t n = 0;
  char **names = NULL, **ids = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_channels_locked(fs->root, cs);
  if (r == 0) {
    n = fs->root->memo.n;
    names = calloc(n + 1, sizeof *names);
    ids = calloc(n + 1, sizeof *ids);
    if (!names || !ids)
      r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
      names[i] = strdup(fs->root->memo.names[i]);
      ids[i] = strdup(fs->root->memo.ids[i]);
    }
  }
  pthread_mutex_unlock(&fs->lock);
  store_channels_unref(cs);
  char meta[] = ".cliqfs";
  struct node *m = node_get(fs, N_META, meta, NULL, NULL, NULL, fs->root, meta);
  if (r == 0)
    r = m ? dir_add(d, meta, m->ino, true) : -ENOMEM;
  for (size_t i = 0; r == 0 && i < n; i++) {
    if (!names[i] || !ids[i]) {
      r = -ENOMEM;
      break;
    }
    struct node *c = channel_node(fs, ids[i], names[i]);
    r = c ? dir_add(d, names[i], c->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; names && ids && i < n; i++) {
    free(names[i]);
    free(ids[i]);
  }
  free(names);
  free(ids);
  return r;
}

static int list_channel(struct fs *fs, struct node *ch, struct dirh *d,
                        cliq_error *err)
{
  int r = add_fixed(fs, d, ch, channel_files,
                    sizeof channel_files / sizeof *channel_files);
  if (r < 0)
    return r;
  store_threads *ts = NULL;
  r = store_threads_get(fs->store, ch->channel_id, STORE_FETCH, &ts, err);
  if (r < 0)
    return r;
  struct draft_names dn;
  r = draft_names_get(fs, ch->channel_id, &dn);
  if (r < 0) {
    store_threads_unref(ts);
    return r;
  }
  size_t n = 0;
  char **names = NULL, **ids = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_threads_locked(fs, ch, ts, &dn);
  if (r == 0) {
    n = ch->memo.n;
    names = calloc(n + 1, sizeof *names);
    ids = calloc(n + 1, sizeof *ids);
    if (!names || !ids)
      r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
      names[i] = strdup(ch->memo.names[i]);
      ids[i] = strdup(ch->memo.ids[i]);
    }
  }
  pthread_mutex_unlock(&fs->lock);
  store_threads_unref(ts);
  for (size_t i = 0; r == 0 && i < dn.n; i++) {
    struct node *t = draft_node(fs, ch, dn.names[i]);
    r = t ? dir_add(d, dn.names[i], t->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; r == 0 && i < n; i++) {
    if (!names[i] || !ids[i]) {
      r = -ENOMEM;
      break;
    }
    struct node *t = thread_node(fs, ch, ids[i], names[i]);
    r = t ? dir_add(d, names[i], t->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; names && ids && i < n; i++) {
    free(names[i]);
    free(ids[i]);
  }
  free(names);
  free(ids);
  draft_names_clear(&dn);
  return r;
}

static int list_entries(struct fs *fs, struct node *dir, struct dirh *d)
{
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = store_outbox_list(fs->store, dir->kind == N_FAILED, &items, &n);
  for (size_t i = 0; r == 0 && i < n; i++) {
    char *name = entry_name(&items[i]);
    struct node *c = name ? entry_node(fs, dir, &items[i], name) : NULL;
    r = c ? dir_add(d, name, c->ino, false) : -ENOMEM;
    free(name);
  }
  outbox_entry_list_free(items, n);
  return r;
}

static void run_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  if (!kinds[n->kind].dir) {
    reply_err(req, ENOTDIR);
    return;
  }
  struct dirh *d = calloc(1, sizeof *d);
  if (!d) {
    reply_err(req, ENOMEM);
    return;
  }
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = dir_add(d, ".", n->ino, true);
  if (r == 0)
    r = dir_add(d, "..", n->parent ? n->parent->ino : n->ino, true);
  if (r == 0) {
    switch (n->kind) {
    case N_ROOT:
      r = list_root(fs, d, &err);
      break;
    case N_META:
      r = add_fixed(fs, d, n, meta_files, sizeof meta_files / sizeof *meta_files);
      break;
    case N_CHANNEL:
      r = list_channel(fs, n, d, &err);
      break;
    case N_THREAD: {
      /* The draft or thread must still exist. */
      struct tview v;
      r = tview_get(fs, n, STORE_PEEK, &v, &err);
      tview_clear(&v);
      if (r == 0)
        r = add_fixed(fs, d, n, thread_files,
                      sizeof thread_files / sizeof *thread_files);
      break;
    }
    case N_OUTBOX:
    case N_FAILED:
      r = list_entries(fs, n, d);
      break;
    default:
      break;
    }
  }
  if (r < 0) {
    fs_fail(fs, n, -r, &err, NULL);
    dirh_free(d);
    reply_err(req, -r);
    return;
  }
  handle_add(fs, &d->h, true);
  fi->fh = (uint64_t)(uintptr_t)d;
  fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
  (void)ino;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  if (!buf) {
    reply_err(req, ENOMEM);
    return;
  }
  size_t pos = 0;
  for (size_t i = (size_t)off; i < d->n; i++) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = d->e[i].ino;
    st.st_mode = d->e[i].type;
    size_t need = fuse_add_direntry(req, buf + pos, size - pos, d->e[i].name,
                                    &st, (off_t)(i + 1));
    if (need > size - pos)
      break;
    pos += need;
  }
  fuse_reply_buf(req, buf, pos);
  free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  handle_del(fs, &d->h);
  dirh_free(d);
  reply_err(req, 0);
}

/* ---- mkdir, rmdir, and everything that is not allowed ------------------------------- */

static void run_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
  (void)mode;
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  char *path = node_path_child(fs, p, name);
  int r = 0;
  cliq_error err;
  memset(&err, 0, sizeof err);
  if (p->kind != N_CHANNEL) {
    r = fs_fail_path(fs, path, EPERM, NULL, "only a channel can hold new threads");
    goto out;
  }
  if (strlen(name) > NAMES_MAX_BYTES) {
    r = fs_fail_path(fs, path, ENAMETOOLONG, NULL,
                     "a name holds at most 255 bytes");
    goto out;
  }
  const char *why = NULL;
  if (names_check_new(name, &why) < 0) {
    r = fs_fail_path(fs, path, EINVAL, NULL, "%s", why);
    goto out;
  }
  struct node *existing = NULL;
  r = lookup_child(fs, p, name, &existing, &err);
  if (r == 0) {
    r = -EEXIST;
    goto out;
  }
  if (r != -ENOENT) {
    fs_fail_path(fs, path, -r, &err, NULL);
    goto out;
  }
  r = store_draft_create(fs->store, p->channel_id, name);
  if (r < 0) {
    fs_fail_path(fs, path, -r, NULL, NULL);
    goto out;
  }
  pthread_mutex_lock(&fs->lock);
  fs->drafts_version++;
  pthread_mutex_unlock(&fs->lock);
  struct node *n = draft_node(fs, p, name);
  free(path);
  if (!n) {
    reply_err(req, ENOMEM);
    return;
  }
  inval_inode(fs->inval, p->ino);
  reply_entry_for(req, fs, n);
  return;
out:
  free(path);
  reply_err(req, -r);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  char *path = node_path_child(fs, p, name);
  int r = -EPERM;
  if (p->kind == N_CHANNEL) {
    r = store_draft_discard(fs->store, p->channel_id, name);
    if (r == 0) {
      pthread_mutex_lock(&fs->lock);
      fs->drafts_version++;
      pthread_mutex_unlock(&fs->lock);
      inval_inode(fs->inval, p->ino);
    } else if (r == -ENOENT) {
      struct node *n = NULL;
      cliq_error err;
      r = lookup_child(fs, p, name, &n, &err) == 0 ? -EPERM : -ENOENT;
    }
  }
  if (r == -EPERM)
    fs_fail_path(fs, path, EPERM, NULL, "threads cannot be removed");
  else if (r == -EBUSY)
    fs_fail_path(fs, path, EBUSY, NULL,
                 "the draft's main or its thread is waiting in the outbox");
  free(path);
  reply_err(req, -r);
}

static void deny(fuse_req_t req, fuse_ino_t parent, const char *name,
                 const char *what)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  char *path = p ? node_path_child(fs, p, name) : NULL;
  fs_fail_path(fs, path, EPERM, NULL, "%s is not supported", what);
  free(path);
  reply_err(req, EPERM);
}

/* The one removal allowed: `rm` in .cliqfs/failed/ discards a refused
 * entry. */
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p || p->kind != N_FAILED) {
    deny(req, parent, name, "removing files");
    return;
  }
  struct node *n = NULL;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = lookup_child(fs, p, name, &n, &err);
  if (r == 0)
    r = store_failed_discard(fs->store, strtoull(n->ident + 3, NULL, 10));
  if (r == 0) {
    inval_inode(fs->inval, n->ino);
    inval_inode(fs->inval, p->ino);
  } else if (r != -ENOENT) {
    char *path = node_path_child(fs, p, name);
    fs_fail_path(fs, path, -r, NULL, "the refused entry could not be discarded");
    free(path);
  }
  reply_err(req, -r);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
  (void)newparent;
  (void)newname;
  (void)flags;
  deny(req, parent, name, "renaming");
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
  (void)ino;
  deny(req, newparent, newname, "linking");
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
  (void)link;
  deny(req, parent, name, "symbolic links");
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
  (void)mode;
  (void)rdev;
  deny(req, parent, name, "creating files");
}

static void run_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
  (void)mode;
  (void)fi;
  deny(req, parent, name, "creating files");
}

/* ---- Files ------------------------------------------------------------------------------ */

enum wkind { W_NONE, W_MESSAGE, W_MAIN, W_STATE, W_FOLLOWERS, W_CTL };

struct fop {
  char *id;
  bool remove;
};

struct fh {
  struct handle h;            /* first member */
  struct node *node;
  pthread_mutex_t lock;
  bool can_read;
  /* reading */
  store_log *log;
  enum store_log_form form;
  bool reader;
  char *content;
  size_t content_len;
  /* writing */
  enum wkind wk;
  bool append;
  char *w;
  size_t wlen, wcap;
  size_t lines_done;
  int poisoned;
  struct fop *ops;
  size_t n_ops, cap_ops;
  pid_t opener;               /* the process that opened it to write */
  /* journaled */
  store_ids ids;              /* every entry this open journaled */
  int failed;                 /* a refusal seen at close or fsync: sticky */
};

/* The process (thread group) a task belongs to: FUSE names the calling
 * thread.  0 when it is gone or a zombie (its files are closed). */
static pid_t process_of(pid_t task)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)task);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  char line[256];
  pid_t tgid = 0;
  bool gone = false;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "State:", 6) == 0) {
      const char *c = line + 6;
      while (*c == ' ' || *c == '\t')
        c++;
      gone = *c == 'Z' || *c == 'X';
    } else if (strncmp(line, "Tgid:", 5) == 0) {
      tgid = (pid_t)strtol(line + 5, NULL, 10);
      break;
    }
  }
  fclose(f);
  return gone ? 0 : tgid;
}

/* Whether a close by task ends what h's open wrote.  One open is one message
 * (or one set of changes) however many processes share the descriptor:
 * children that inherited it (date, tail in `{ ...; } >> messages`) close
 * their copies first; the opener's close, or the first close after the
 * opener is gone, is the one that commits. */
static bool closes_the_open(struct fh *h, pid_t task)
{
  if (h->opener <= 0)
    return true;
  pid_t closer = process_of(task);
  return closer == 0 || closer == h->opener || process_of(h->opener) == 0;
}

static void fh_reset_write(struct fh *h)
{
  h->wlen = 0;
  h->lines_done = 0;
  if (h->w)
    h->w[0] = '\0';
  for (size_t i = 0; i < h->n_ops; i++)
    free(h->ops[i].id);
  h->n_ops = 0;
}

static void fh_free(struct fh *h)
{
  fh_reset_write(h);
  store_ids_clear(&h->ids);
  free(h->ops);
  free(h->w);
  free(h->content);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

static enum wkind write_kind(enum nkind k)
{
  switch (k) {
  case N_CH_MESSAGES:
  case N_T_MESSAGES:
    return W_MESSAGE;
  case N_T_MAIN:
    return W_MAIN;
  case N_T_STATE:
    return W_STATE;
  case N_T_FOLLOWERS:
    return W_FOLLOWERS;
  case N_T_CTL:
    return W_CTL;
  default:
    return W_NONE;
  }
}

/* Checks that a write may start on n: closed threads refuse replies, a draft's
 * main is written once, thread operations need a thread. */
static int write_allowed(struct fs *fs, struct node *n, cliq_error *err,
                         const char **why)
{
  *why = NULL;
  if (n->kind == N_CH_MESSAGES)
    return 0;
  struct tview v;
  int r = tview_get(fs, n, STORE_PEEK, &v, err);
  if (r < 0)
    return r;
  bool unopened = v.is_draft && !v.tid;
  switch (n->kind) {
  case N_T_MESSAGES:
    if (tview_closed(&v)) {
      r = -EACCES;
      *why = "the thread is closed";
    }
    break;
  case N_T_MAIN:
    if (!v.is_draft || v.draft.main_message_id || v.draft.main_pending) {
      r = -EACCES;
      *why = "main is written once, for a new thread";
    }
    break;
  case N_T_STATE:
  case N_T_FOLLOWERS:
  case N_T_CTL:
    if (unopened) {
      r = -EDESTADDRREQ;
      *why = "the thread does not exist yet: write main, then messages";
    }
    break;
  default:
    break;
  }
  tview_clear(&v);
  return r;
}

static void run_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  if (kinds[n->kind].dir) {
    reply_err(req, EISDIR);
    return;
  }
  int acc = fi->flags & O_ACCMODE;
  bool want_write = acc == O_WRONLY || acc == O_RDWR;
  bool want_read = acc == O_RDONLY || acc == O_RDWR;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = 0;
  const char *why = NULL;
  struct fh *h = calloc(1, sizeof *h);
  if (!h) {
    reply_err(req, ENOMEM);
    return;
  }
  pthread_mutex_init(&h->lock, NULL);
  h->node = n;
  if (want_write) {
    h->wk = write_kind(n->kind);
    if (h->wk == W_NONE) {
      r = -EACCES;
      why = "this file is read-only";
      goto fail;
    }
    r = write_allowed(fs, n, &err, &why);
    if (r < 0)
      goto fail;
    h->append = (fi->flags & O_APPEND) != 0;
    h->opener = process_of(fuse_req_ctx(req)->pid);
  }
  h->can_read = want_read;
  int64_t size_now = -1;
  if (want_read && is_log_kind(n->kind)) {
    char *chat = NULL;
    r = log_chat_of(fs, n, &chat, NULL, &err);
    if (r < 0)
      goto fail;
    if (chat) {
      r = store_log_get(fs->store, chat, STORE_FETCH, &h->log, &err);
      free(chat);
      if (r < 0 && !h->log)
        goto fail;
      if (r < 0) {
        /* Nothing known and Cliq could not be asked. */
        goto fail;
      }
      h->form = n->kind == N_T_JSONL ? STORE_LOG_JSONL : STORE_LOG_TEXT;
      store_log_open_reader(h->log);
      h->reader = true;
      size_now = (int64_t)store_log_size(h->log, h->form);
    } else {
      size_now = 0;     /* a draft's messages: empty until the thread exists */
    }
  } else if (want_read) {
    r = node_content(fs, n, STORE_FETCH, &h->content, &h->content_len, &err);
    if (r < 0)
      goto fail;
    size_now = (int64_t)h->content_len;
  }
  /* The kernel may hold another size (never fetched: 0, or an older one):
   * then read this open directly, and tell the kernel to forget its
   * attributes. */
  int64_t told = __atomic_load_n(&n->reported_size, __ATOMIC_ACQUIRE);
  bool dynamic = n->kind == N_STATUS || n->kind == N_ERRORS;
  if (want_write || dynamic || (want_read && size_now != told)) {
    fi->direct_io = 1;
    if (want_read && !dynamic && size_now != told)
      inval_inode(fs->inval, n->ino);
  } else {
    fi->keep_cache = 0;
  }
  /* Only an open that can write has anything to do at close (op_flush
   * journals and posts there); the kernel skips FLUSH for the others,
   * a request less per read-only open. */
  fi->noflush = !want_write;
  handle_add(fs, &h->h, false);
  fi->fh = (uint64_t)(uintptr_t)h;
  fuse_reply_open(req, fi);
  return;
fail:
  fs_fail(fs, n, -r, &err, why);
  if (h->reader)
    store_log_close_reader(h->log);
  fh_free(h);
  reply_err(req, -r);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
  (void)ino;
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  if (!h->can_read) {
    reply_err(req, EBADF);
    return;
  }
  if (h->log) {
    char *buf = malloc(size ? size : 1);
    if (!buf) {
      reply_err(req, ENOMEM);
      return;
    }
    size_t n = store_log_read(h->log, h->form, off, buf, size);
    fuse_reply_buf(req, buf, n);
    free(buf);
    return;
  }
  if (off < 0 || (size_t)off >= h->content_len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t n = h->content_len - (size_t)off;
  if (n > size)
    n = size;
  /* A copy: the kernel may finish with the file (release frees content)
   * while this reply is still being written. */
  char *copy = malloc(n ? n : 1);
  if (!copy) {
    reply_err(req, ENOMEM);
    return;
  }
  memcpy(copy, h->content + off, n);
  fuse_reply_buf(req, copy, n);
  free(copy);
}

static int fh_push_op(struct fh *h, char *id, bool remove)
{
  if (h->n_ops == h->cap_ops) {
    size_t nc = h->cap_ops ? h->cap_ops * 2 : 8;
    struct fop *no = realloc(h->ops, nc * sizeof *no);
    if (!no)
      return -ENOMEM;
    h->ops = no;
    h->cap_ops = nc;
  }
  h->ops[h->n_ops].id = id;
  h->ops[h->n_ops].remove = remove;
  h->n_ops++;
  return 0;
}

/* Processes the complete lines of a followers or ctl buffer (and, when
 * final, the last partial one).  Returns 0 or -errno (nothing is sent). */
static int process_lines(struct fs *fs, struct fh *h, bool final,
                         cliq_error *err, const char **why)
{
  struct node *n = h->node;
  while (h->lines_done < h->wlen) {
    char *start = h->w + h->lines_done;
    char *nl = memchr(start, '\n', h->wlen - h->lines_done);
    size_t len = nl ? (size_t)(nl - start) : h->wlen - h->lines_done;
    if (!nl && !final) {
      if (h->wk == W_CTL) {
        char *verb = NULL;
        int r = wr_ctl_line(start, len, true, &verb);
        free(verb);
        if (r < 0) {
          *why = "ctl takes follow, unfollow, mute, unmute, leave, close, reopen";
          return r;
        }
      }
      return 0;
    }
    if (h->wk == W_CTL) {
      char *verb = NULL;
      int r = wr_ctl_line(start, len, false, &verb);
      if (r < 0) {
        *why = "ctl takes follow, unfollow, mute, unmute, leave, close, reopen";
        return r;
      }
      if (r == 0 && fh_push_op(h, verb, false) < 0) {
        free(verb);
        return -ENOMEM;
      }
    } else {
      char *id = NULL;
      bool remove = false;
      int r = wr_follower_line(start, len, &id, &remove);
      if (r < 0) {
        *why = "a followers line is a user id or email, or -ID to remove";
        return r;
      }
      if (r == 0) {
        if (remove && !h->append) {
          free(id);
          *why = "-ID lines remove followers when appending (>>), not in a whole-file write";
          return -EINVAL;
        }
        char *uid = NULL;
        struct tview v;
        r = tview_get(fs, n, STORE_PEEK, &v, err);
        if (r == 0)
          r = v.tid ? store_resolve_member(fs->store, v.tid, id, &uid, err)
                    : -EDESTADDRREQ;
        tview_clear(&v);
        free(id);
        if (r < 0) {
          if (r == -EINVAL)
            *why = "not a member of this channel";
          return r;
        }
        if (fh_push_op(h, uid, remove) < 0) {
          free(uid);
          return -ENOMEM;
        }
      }
    }
    h->lines_done += len + (nl ? 1 : 0);
  }
  return 0;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)ino;
  (void)off;    /* one message per close: the bytes in the order written */
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  struct node *n = h->node;
  cliq_error err;
  memset(&err, 0, sizeof err);
  const char *why = NULL;
  int r = 0;
  pthread_mutex_lock(&h->lock);
  if (h->wk == W_NONE) {
    r = -EBADF;
    goto out;
  }
  if (h->poisoned) {
    r = -h->poisoned;
    goto out_quiet;
  }
  if ((h->wk == W_MESSAGE || h->wk == W_MAIN) && memchr(buf, '\0', size)) {
    /* A NUL would end the text early: nothing is cut silently. */
    r = -EILSEQ;
    why = "a message cannot hold a NUL byte";
    h->poisoned = EILSEQ;
    goto out;
  }
  if (h->wk == W_MESSAGE || h->wk == W_MAIN) {
    r = write_allowed(fs, n, &err, &why);
    if (r == 0 && h->wk == W_MESSAGE && n->draft) {
      struct tview v;
      if (tview_get(fs, n, STORE_PEEK, &v, &err) == 0 &&
          !v.draft.main_message_id && !v.draft.main_pending) {
        r = -EDESTADDRREQ;
        why = "write the new thread's main before its messages";
      }
      tview_clear(&v);
    }
    if (r < 0)
      goto out;
  }
  size_t old = h->wlen;
  if (h->wlen + size + 1 > h->wcap) {
    size_t nc = h->wcap ? h->wcap : 1024;
    while (nc < h->wlen + size + 1)
      nc *= 2;
    char *nb = realloc(h->w, nc);
    if (!nb) {
      r = -ENOMEM;
      goto out;
    }
    h->w = nb;
    h->wcap = nc;
  }
  memcpy(h->w + h->wlen, buf, size);
  h->wlen += size;
  h->w[h->wlen] = '\0';
  switch (h->wk) {
  case W_MESSAGE:
  case W_MAIN:
    r = wr_message_check(h->w, h->wlen, false);
    if (r == -EMSGSIZE)
      why = "a message holds at most 5000 characters";
    else if (r == -EILSEQ)
      why = "a message must be UTF-8 text";
    break;
  case W_STATE: {
    bool close;
    r = wr_state_parse(h->w, h->wlen, false, &close);
    if (r > 0)
      r = 0;
    if (r < 0)
      why = "state takes close or reopen";
    break;
  }
  default:
    r = process_lines(fs, h, false, &err, &why);
    break;
  }
  if (r < 0) {
    /* Nothing of this open will be sent: no silent truncation. */
    h->wlen = old;
    h->w[old] = '\0';
    h->poisoned = -r;
    goto out;
  }
  pthread_mutex_unlock(&h->lock);
  fuse_reply_write(req, size);
  return;
out:
  fs_fail(fs, n, -r, &err, why);
out_quiet:
  pthread_mutex_unlock(&h->lock);
  reply_err(req, -r);
}

/* Journals what this open wrote (store_* append to the outbox, fsync'd);
 * *ids gets the entries.  Called at close (flush) and fsync. */
static int commit(struct fs *fs, struct fh *h, store_ids *ids, cliq_error *err,
                  const char **why)
{
  struct node *n = h->node;
  char *path = node_path(fs, n);
  int r = 0;
  switch (h->wk) {
  case W_MESSAGE:
  case W_MAIN: {
    r = wr_message_check(h->w, h->wlen, true);
    if (r < 0) {
      *why = r == -EILSEQ ? "a message must be UTF-8 text" : NULL;
      break;
    }
    size_t len = wr_message_len(h->w, h->wlen);
    if (len == 0)
      break;
    char *text = strndup(h->w, len);
    if (!text) {
      r = -ENOMEM;
      break;
    }
    struct chview c;
    r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r == 0) {
      if (h->wk == W_MAIN) {
        r = store_draft_post_main(fs->store, n->channel_id, c.chat_id, n->draft,
                                  text, path, ids, err);
        inval_matching(fs, n->channel_id, NULL);
      } else if (n->kind == N_CH_MESSAGES) {
        r = store_post_channel(fs->store, n->channel_id, c.chat_id, text, path,
                               ids, err);
      } else if (n->draft) {
        r = store_draft_append(fs->store, n->channel_id, c.chat_id, n->draft,
                               text, path, ids, err);
        if (r == 0) {
          pthread_mutex_lock(&fs->lock);
          fs->drafts_version++;
          pthread_mutex_unlock(&fs->lock);
          inval_matching(fs, n->channel_id, NULL);
        }
      } else {
        r = store_reply(fs->store, n->channel_id, n->thread_id, text, path, ids,
                        err);
      }
      chview_clear(&c);
    }
    free(text);
    break;
  }
  case W_STATE: {
    bool close = false;
    r = wr_state_parse(h->w, h->wlen, true, &close);
    if (r < 0) {
      *why = "state takes close or reopen";
      break;
    }
    if (r == 1) {
      r = 0;
      break;
    }
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r == 0 && !v.tid)
      r = -EDESTADDRREQ;
    if (r == 0)
      r = store_set_state(fs->store, n->channel_id, v.tid, close, path, ids,
                          err);
    tview_clear(&v);
    break;
  }
  case W_FOLLOWERS:
  case W_CTL: {
    r = process_lines(fs, h, true, err, why);
    if (r < 0 || h->n_ops == 0)
      break;
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r == 0 && !v.tid)
      r = -EDESTADDRREQ;
    if (r == 0 && h->wk == W_CTL) {
      for (size_t i = 0; i < h->n_ops && r == 0; i++)
        r = store_ctl(fs->store, n->channel_id, v.tid, h->ops[i].id, path, ids,
                      err);
    } else if (r == 0) {
      const char **uids = calloc(h->n_ops + 1, sizeof *uids);
      size_t k = 0;
      if (!uids)
        r = -ENOMEM;
      if (r == 0 && h->append) {
        /* In order, grouping runs of adds and of removes. */
        for (size_t i = 0; i < h->n_ops && r == 0;) {
          bool rm = h->ops[i].remove;
          k = 0;
          while (i < h->n_ops && h->ops[i].remove == rm)
            uids[k++] = h->ops[i++].id;
          r = rm ? store_followers_remove(fs->store, n->channel_id, v.tid, uids,
                                          k, path, ids, err)
                 : store_followers_add(fs->store, n->channel_id, v.tid, uids, k,
                                       path, ids, err);
        }
      } else if (r == 0) {
        for (size_t i = 0; i < h->n_ops; i++)
          uids[k++] = h->ops[i].id;
        r = store_followers_replace(fs->store, n->channel_id, v.tid, uids, k,
                                    path, ids, err);
      }
      free(uids);
    }
    tview_clear(&v);
    break;
  }
  default:
    break;
  }
  free(path);
  return r;
}

/* Journals what h holds (h->lock held) and forgets it, so that a second
 * flush or an fsync then close sends nothing twice.  *now gets the entries. */
static int commit_pending(struct fs *fs, struct fh *h, store_ids *now)
{
  int r = 0;
  if (h->poisoned) {
    /* The error was reported at write; nothing is sent. */
    r = -h->poisoned;
  } else if (h->wlen > 0) {
    cliq_error err;
    memset(&err, 0, sizeof err);
    const char *why = NULL;
    r = commit(fs, h, now, &err, &why);
    if (r < 0)
      fs_fail(fs, h->node, -r, &err, why);
  }
  for (size_t i = 0; i < now->n; i++)
    (void)store_ids_add(&h->ids, now->v[i]);
  fh_reset_write(h);
  return r;
}

/* How long a close waits for its write to be delivered when it can be at
 * once (store_write_settle): enough for Cliq to answer, so that what a user
 * reads next shows it; not a minute of a slow network. */
#define WRITE_SETTLE_S 5.0

static double settle_s(struct fs *fs)
{
  double max_wait = fs->cfg->max_wait_s > 0 ? fs->cfg->max_wait_s : 60;
  return max_wait < WRITE_SETTLE_S ? max_wait : WRITE_SETTLE_S;
}

static void run_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  __atomic_add_fetch(&fs->flush_count, 1, __ATOMIC_RELAXED);
  store_ids now = { 0 };
  pthread_mutex_lock(&h->lock);
  int r = 0;
  if (h->wk != W_NONE && closes_the_open(h, fuse_req_ctx(req)->pid))
    r = commit_pending(fs, h, &now);
  else if (h->poisoned)
    r = -h->poisoned;           /* a child's close: nothing sent yet */
  pthread_mutex_unlock(&h->lock);
  if (r == 0 && now.n > 0) {
    /* Journaled: close may return.  It waits a moment for the delivery
     * when that can come at once; a refusal meanwhile (a thread closed
     * behind our back) is the close's error, and is in failed/. */
    r = store_write_settle(fs->store, &now, settle_s(fs));
    if (r < 0) {
      pthread_mutex_lock(&h->lock);
      h->failed = -r;
      pthread_mutex_unlock(&h->lock);
    }
  }
  store_ids_clear(&now);
  reply_err(req, -r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  handle_del(fs, &h->h);
  if (h->reader)
    store_log_close_reader(h->log);
  /* Written after the opener's close, by a process that held on to the
   * descriptor: journaled now (a failure is in .cliqfs/errors). */
  if (h->wk != W_NONE && !h->poisoned && h->wlen > 0) {
    store_ids now = { 0 };
    pthread_mutex_lock(&h->lock);
    (void)commit_pending(fs, h, &now);
    pthread_mutex_unlock(&h->lock);
    store_ids_clear(&now);
  }
  fh_free(h);
  reply_err(req, 0);
}

/* The journal targets whose queue an fsync of n waits for (0, 1 or 2:
 * a draft's own target and its thread's).  Caller frees. */
static size_t sync_targets(struct fs *fs, struct node *n, char *out[2])
{
  out[0] = out[1] = NULL;
  if (n->kind == N_CH_MESSAGES) {
    out[0] = strdup(n->channel_id);
    return out[0] ? 1 : 0;
  }
  if (!is_thread_level(n->kind))
    return 0;
  size_t k = 0;
  if (n->draft) {
    out[k] = store_draft_target(n->channel_id, n->draft);
    if (out[k])
      k++;
    store_draft d;
    if (store_draft_get(fs->store, n->channel_id, n->draft, &d) == 0) {
      if (d.thread_chat_id) {
        out[k++] = d.thread_chat_id;
        d.thread_chat_id = NULL;
      }
      store_draft_clear(&d);
    }
  } else if (n->thread_id) {
    out[k] = strdup(n->thread_id);
    if (out[k])
      k++;
  }
  return k;
}

/* Waits for ids, a slice at a time so that an interrupted fsync (Ctrl-C)
 * returns; then the first refusal among them. */
static int wait_delivered(struct fs *fs, fuse_req_t req, const store_ids *ids)
{
  int r;
  while ((r = store_ids_wait(fs->store, ids, 0.5)) == -ETIMEDOUT) {
    if (fuse_req_interrupted(req))
      return -EINTR;
  }
  if (r < 0)
    return r;
  return store_ids_failure(fs->store, ids);
}

/* fsync: what this open wrote and not yet closed is journaled now; then
 * waits until everything its file's target has queued (and everything this
 * open journaled) is delivered.  A refusal is the fsync's error, now and at
 * every later fsync of this open. */
static void run_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
  (void)ino;
  (void)datasync;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  store_ids now = { 0 }, wait = { 0 };
  pthread_mutex_lock(&h->lock);
  int r = h->wk == W_NONE ? 0 : commit_pending(fs, h, &now);
  for (size_t i = 0; r == 0 && i < h->ids.n; i++)
    r = store_ids_add(&wait, h->ids.v[i]);
  pthread_mutex_unlock(&h->lock);
  char *targets[2];
  size_t nt = sync_targets(fs, h->node, targets);
  if (r == 0)
    r = store_pending_ids(fs->store, (const char *const *)targets, nt, &wait);
  if (r == 0)
    r = wait_delivered(fs, req, &wait);
  for (size_t i = 0; i < nt; i++)
    free(targets[i]);
  pthread_mutex_lock(&h->lock);
  if (r < 0 && r != -EINTR && r != -ECANCELED && r != -ENOMEM)
    h->failed = -r;
  if (r == 0 && h->failed)
    r = -h->failed;
  pthread_mutex_unlock(&h->lock);
  store_ids_clear(&now);
  store_ids_clear(&wait);
  reply_err(req, -r);
}

/* fsync of a directory: everything queued below it is delivered. */
static void run_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
  (void)datasync;
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  store_ids wait = { 0 };
  int r = 0;
  switch (n->kind) {
  case N_ROOT:
  case N_META:
  case N_OUTBOX:
    r = store_pending_ids_of_channel(fs->store, NULL, NULL, &wait);
    break;
  case N_CHANNEL: {
    struct chview c;
    cliq_error err;
    if (chview_get(fs, n->channel_id, STORE_CACHED, &c, &err) < 0)
      memset(&c, 0, sizeof c);
    r = store_pending_ids_of_channel(fs->store, n->channel_id, c.chat_id,
                                     &wait);
    chview_clear(&c);
    break;
  }
  case N_THREAD: {
    char *targets[2];
    size_t nt = sync_targets(fs, n, targets);
    r = store_pending_ids(fs->store, (const char *const *)targets, nt, &wait);
    for (size_t i = 0; i < nt; i++)
      free(targets[i]);
    break;
  }
  default:
    break;
  }
  if (r == 0)
    r = wait_delivered(fs, req, &wait);
  store_ids_clear(&wait);
  reply_err(req, -r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
  (void)ino;
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = NAMES_MAX_BYTES;
  fuse_reply_statfs(req, &st);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
  (void)userdata;
  /* The shell's ">" then arrives as an open with O_TRUNC, not a separate
   * truncate. */
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  /* Size or mtime changes drop cached pages of growing files. */
  if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
    conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}


/* ---- Handing requests on ------------------------------------------------------ */

enum call_kind {
  CALL_LOOKUP, CALL_GETATTR, CALL_SETATTR, CALL_ACCESS, CALL_OPEN,
  CALL_CREATE, CALL_OPENDIR, CALL_MKDIR, CALL_FLUSH, CALL_FSYNC,
  CALL_FSYNCDIR,
};

/* A request's arguments, kept while a waiter runs it (name owned). */
struct call {
  struct call *next, *prev;    /* fs->calls while a waiter runs it */
  double since;                /* wall time it was handed on */
  const char *volatile api;    /* the API it waits for a slot of, if any */
  enum call_kind kind;
  fuse_req_t req;
  fuse_ino_t ino;
  char *name;
  mode_t mode;
  int num;                     /* access mask, setattr's to_set, datasync */
  struct stat attr;
  struct fuse_file_info fi;
  bool has_fi;
};

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
static json_t *calls_json(struct fs *fs)
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
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c->since = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
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

static const struct fuse_lowlevel_ops ops = {
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

/* Once the session ends (unmount, signal), requests still waiting for a rate
 * slot must give up, or the loop could not join its workers. */
struct watchdog {
  struct fuse_session *se;
  gov *gov;
  store *store;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop;
};

static void *watchdog_main(void *arg)
{
  struct watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stop && !fuse_session_exited(w->se)) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cond, &w->lock, &until);
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
struct startup {
  int report_fd;      /* daemon: the pipe's write end; -1 when none */
  int log_fd;         /* what the daemon's stderr was during start-up */
  int log_level;      /* for the log's move to syslog once started */
  bool log_to_file;   /* -o log=FILE: the log stays there */
};

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

/* The daemon says it started once the kernel has accepted the mount (its
 * INIT answered: an option libfuse accepts on the command line may still be
 * refused there, e.g. max_read), not before: a statvfs of the mount point,
 * answered by op_statfs, proves it.  The loop's end reports a failure if
 * that did not come first. */
struct ready_probe {
  pthread_mutex_t lock;
  struct startup *st;
  const char *mountpoint;
  bool reported;
  bool ok;                    /* what was reported */
};

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
    __attribute__((format(printf, 2, 3)));
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

/* FUSE workers when -o max_threads is not given, and the most threads that
 * wait at once (more requests queue for them). */
#define FUSE_WORKERS 16
#define WAITER_THREADS 256

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
  pthread_cond_init(&wd.cond, NULL);
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
      /* The workers only answer what can be answered now (what waits is
       * a waiter's), so a few are enough. */
      fuse_loop_cfg_set_max_threads(loop_cfg, threads_given &&
                                                      opts.max_threads > 0 &&
                                                      opts.max_threads < 100000
                                                  ? opts.max_threads
                                                  : FUSE_WORKERS);
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
