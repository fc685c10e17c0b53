/* fs/fs_i.h: what the files of the FUSE driver share (the fs/ files).  Private:
 * nothing outside fs/ includes it.  The driver maps the tree of cliqfs(1)
 * THE TREE onto cache/store; docs/design.md tells how a read and a write
 * travel through it.
 *
 * Nodes: one per identity (channel id, thread chat id or draft, file kind),
 * never freed before unmount, with an inode number derived from the
 * identity (stable across remounts).  Kernel caching is chosen per kind of
 * file (kinds[]).  Kernel invalidations go through fs/inval (own thread).
 * Handlers reply exactly once, with reply_err() for errors.
 */
#ifndef CLIQFS_FS_I_H
#define CLIQFS_FS_I_H

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
#include "api/clock.h"
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

/* ---- Vocabulary ---------------------------------------------------------- */

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

struct kind_info {
  const char *file;     /* name inside its directory, NULL for named nodes */
  const char *label;    /* for .cliqfs/status */
  bool dir;
  mode_t mode;
  double entry_to, attr_to;
};

/* Open files and directories, so that those the kernel never releases
 * (the session ended first) are freed at unmount. */
struct handle {
  struct handle *prev, *next;
  bool is_dir;
};

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
  /* What the kernel's page cache of a stable file holds: the XXH3 of the
   * content the last open served (0: unknown, so the next open drops the
   * pages).  Atomic. */
  uint64_t page_tag;
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
  unsigned fuse_workers;      /* the FUSE loop's most workers */
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
  uint64_t read_count[N_KIND_COUNT];      /* atomic: READ requests per kind */

  pthread_mutex_t memo_lock;
  struct doc_memo *memo;       /* DOC_MEMO_SLOTS */
};

struct chview {
  char *channel_id;
  char *chat_id;
  int64_t last_ms;
  json_t *raw;
};

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

struct draft_names {
  char **names;
  size_t n;
  char **tids;                 /* thread opened from the draft, or NULL */
};

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
  uint64_t content_tag;       /* page_tag of content (stable files) */
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

struct startup {
  int report_fd;      /* daemon: the pipe's write end; -1 when none */
  int log_fd;         /* what the daemon's stderr was during start-up */
  int log_level;      /* for the log's move to syslog once started */
  bool log_to_file;   /* -o log=FILE: the log stays there */
};

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

/* ---- Tables --------------------------------------------------------------- */

extern const struct kind_info kinds[N_KIND_COUNT];
/* The fixed files of a thread, of .cliqfs/ and of a channel. */
#define THREAD_FILES 10
#define META_FILES 4
#define CHANNEL_FILES 2
extern const enum nkind thread_files[THREAD_FILES];
extern const enum nkind meta_files[META_FILES];
extern const enum nkind channel_files[CHANNEL_FILES];
extern const struct fuse_lowlevel_ops ops;

/* ---- Functions shared by the files of the driver --------------------------- */

bool is_thread_level(enum nkind k);

void handle_add(struct fs *fs, struct handle *h, bool is_dir);

void handle_del(struct fs *fs, struct handle *h);

struct node *find_ident_locked(struct fs *fs, const char *ident);

struct node *node_get(struct fs *fs, enum nkind kind, const char *ident,
                             const char *channel_id, const char *thread_id,
                             const char *draft, struct node *parent,
                             const char *name);

struct node *node_by_ino(struct fs *fs, fuse_ino_t ino);

void memo_clear(struct names_memo *m);

void node_free(struct node *n);

/* "/general/Release plan/messages" for the errors log. */
char *node_path(struct fs *fs, struct node *n);

char *node_path_child(struct fs *fs, struct node *parent,
                             const char *name);

/* Whether this attempt is to be run again by a waiter. */
bool handing_on(void);

int reply_err(fuse_req_t req, int e);

/* Records a failure and returns -e. */
int fs_fail_path(struct fs *fs, const char *path, int e,
                        const cliq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

int fs_fail(struct fs *fs, struct node *n, int e, const cliq_error *err,
                   const char *msg);

void chview_clear(struct chview *c);

int chview_get(struct fs *fs, const char *channel_id,
                      enum store_mode mode, struct chview *out,
                      cliq_error *err);

void tview_clear(struct tview *v);

/* The thread a thread-level node belongs to. */
int tview_get(struct fs *fs, struct node *n, enum store_mode mode,
                     struct tview *v, cliq_error *err);

bool tview_closed(const struct tview *v);

/* Fills the node's memo from a channels snapshot (fs lock held). */
int memo_channels_locked(struct node *root, store_channels *cs);

void draft_names_clear(struct draft_names *d);

int draft_names_get(struct fs *fs, const char *channel_id,
                           struct draft_names *d);

/* Fills a channel node's memo: thread names (drafts' names reserved, threads
 * opened from a draft listed under the draft's name). fs lock held. */
int memo_threads_locked(struct fs *fs, struct node *ch,
                               store_threads *ts, const struct draft_names *d);

char *ident_of(const char *prefix, const char *a, const char *b);

struct node *channel_node(struct fs *fs, const char *channel_id,
                                 const char *name);

struct node *thread_node(struct fs *fs, struct node *ch,
                                const char *tid, const char *name);

struct node *draft_node(struct fs *fs, struct node *ch,
                               const char *name);

/* A fixed file (or meta dir) under a directory node. */
struct node *child_node(struct fs *fs, struct node *dir,
                               enum nkind kind);

/* "<id, 16 digits>-<target made safe>": ids sort as names do. */
char *entry_name(const outbox_entry *e);

int entry_id_of_name(const char *name, uint64_t *id);

struct node *entry_node(struct fs *fs, struct node *dir,
                               const outbox_entry *e, const char *name);

/* The journal entry a node shows; -ENOENT once it left. */
int entry_of_node(struct fs *fs, struct node *n, outbox_entry *out);

int json_text(json_t *v, char **out, size_t *len);

char *status_text(struct fs *fs);

/* The content of a file that is not a message log.  In STORE_CACHED mode
 * -ENODATA means "never fetched". */
int node_content(struct fs *fs, struct node *n, enum store_mode mode,
                        char **out, size_t *len, cliq_error *err);

/* The chat whose log a messages file shows; NULL with 0 for a draft that has
 * no thread yet. */
int log_chat_of(struct fs *fs, struct node *n, char **chat_out,
                       bool *closed, cliq_error *err);

bool is_log_kind(enum nkind k);

/* *attr_to (may be NULL) gets how long the kernel may keep these
 * attributes: the kind's timeout, but 0 while the content was never fetched
 * (its size is about to change) and for what our own writes change
 * (followers, drafts), so that a stat after a write or a first read is exact.
 * The state of a thread in its channel's list keeps the kind's timeout: it
 * changes only with that list, and every change of the list (a refresh that
 * differs, our own close or reopen delivered) invalidates the thread's nodes
 * (on_threads_changed); writing the file itself makes the kernel forget its
 * attributes.  A stat and every read() then cost no request. */
int node_attr(struct fs *fs, struct node *n, struct stat *st,
                     double *attr_to, cliq_error *err);

void note_reported(struct node *n, const struct stat *st);

/* Every node whose look depends on a thread list or a log of this chat. */
void inval_matching(struct fs *fs, const char *channel_id,
                           const char *chat_id);

void on_log_grew(void *ctx, const char *chat_id);

void on_threads_changed(void *ctx, const char *channel_id);

void on_drafts_changed(void *ctx, const char *channel_id);

/* An answer had malformed entries: the rest is shown, and one errors line
 * says what was left out (also from an attempt that is handed on: the
 * store reports each reason once). */
void on_entries_skipped(void *ctx, const char *what, size_t count,
                               const char *why);

/* Deliveries wait for the state folder (full, read-only): one errors line
 * until one goes through again. */
void on_delivery_stalled(void *ctx, const cliq_error *err);

/* Cliq refused a journaled write for good: one errors line, saying where
 * the entry is kept. */
void on_write_failed(void *ctx, const outbox_entry *e, const char *path,
                            const cliq_error *err);

json_t *calls_json(struct fs *fs);

void reply_entry_for(fuse_req_t req, struct fs *fs, struct node *n);

int lookup_child(struct fs *fs, struct node *p, const char *name,
                        struct node **out, cliq_error *err);

void run_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);

void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets);

void run_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

void run_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi);

void run_access(fuse_req_t req, fuse_ino_t ino, int mask);

void dirh_free(struct dirh *d);

void run_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);

void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi);

void run_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode);

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);

/* The one removal allowed: `rm` in .cliqfs/failed/ discards a refused
 * entry. */
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags);

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname);

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name);

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev);

void run_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi);

/* Whether a close by task ends what h's open wrote.  One open is one message
 * (or one set of changes) however many processes share the descriptor:
 * children that inherited it (date, tail in `{ ...; } >> messages`) close
 * their copies first; the opener's close, or the first close after the
 * opener is gone, is the one that commits. */
bool closes_the_open(struct fh *h, pid_t task);

void fh_reset_write(struct fh *h);

void fh_free(struct fh *h);

/* Checks that a write may start on n: closed threads refuse replies, a draft's
 * main is written once, thread operations need a thread. */
int write_allowed(struct fs *fs, struct node *n, cliq_error *err,
                         const char **why);

void run_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi);

/* Journals what h holds (h->lock held) and forgets it, so that a second
 * flush or an fsync then close sends nothing twice.  *now gets the entries. */
int commit_pending(struct fs *fs, struct fh *h, store_ids *now);

void run_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi);

/* fsync: what this open wrote and not yet closed is journaled now; then
 * waits until everything its file's target has queued (and everything this
 * open journaled) is delivered.  A refusal is the fsync's error, now and at
 * every later fsync of this open. */
void run_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi);

/* fsync of a directory: everything queued below it is delivered. */
void run_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi);

void op_statfs(fuse_req_t req, fuse_ino_t ino);

void op_init(void *userdata, struct fuse_conn_info *conn);

#endif
