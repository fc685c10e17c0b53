/* fs/nodes.c: the node table: one node per identity (channel, thread, draft,
 * file kind), its inode number and its kind's kernel caching. */
#include "fs/fs_i.h"

/* ---- Kinds of nodes ------------------------------------------------------- */

/* Kernel caching per kind: growing files (messages) get attr_timeout 0 so
 * that every stat sees their size (tail -f), with a short entry timeout;
 * files that change rarely keep their attributes 30 s (we invalidate them
 * when we know they changed); directories 5 s. */
#define TO_DIR 5.0
#define TO_FILE 30.0
#define TO_GROWING_ENTRY 1.0

const struct kind_info kinds[N_KIND_COUNT] = {
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

const enum nkind thread_files[THREAD_FILES] = {
  N_T_MAIN, N_T_MESSAGES, N_T_MEMBERS, N_T_FOLLOWERS, N_T_NONFOLLOWERS,
  N_T_STATE, N_T_TITLE, N_T_INFO, N_T_JSONL, N_T_CTL,
};

const enum nkind meta_files[META_FILES] = { N_STATUS, N_ERRORS, N_OUTBOX,
                                             N_FAILED };
const enum nkind channel_files[CHANNEL_FILES] = { N_CH_INFO, N_CH_MESSAGES };

bool is_thread_level(enum nkind k)
{
  return k >= N_THREAD;
}

/* ---- Nodes -------------------------------------------------------------------- */

void handle_add(struct fs *fs, struct handle *h, bool is_dir)
{
  pthread_mutex_lock(&fs->lock);
  h->is_dir = is_dir;
  h->next = fs->handles.next;
  h->prev = &fs->handles;
  fs->handles.next->prev = h;
  fs->handles.next = h;
  pthread_mutex_unlock(&fs->lock);
}

void handle_del(struct fs *fs, struct handle *h)
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

struct node *find_ident_locked(struct fs *fs, const char *ident)
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

struct node *node_get(struct fs *fs, enum nkind kind, const char *ident,
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

struct node *node_by_ino(struct fs *fs, fuse_ino_t ino)
{
  if (ino == FUSE_ROOT_ID)
    return fs->root;
  pthread_mutex_lock(&fs->lock);
  struct node *n = find_ino_locked(fs, ino);
  pthread_mutex_unlock(&fs->lock);
  return n;
}

void memo_clear(struct names_memo *m)
{
  for (size_t i = 0; i < m->n; i++) {
    free(m->names[i]);
    free(m->ids[i]);
  }
  free(m->names);
  free(m->ids);
  memset(m, 0, sizeof *m);
}

void node_free(struct node *n)
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
char *node_path(struct fs *fs, struct node *n)
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

char *node_path_child(struct fs *fs, struct node *parent,
                             const char *name)
{
  char *p = node_path(fs, parent);
  char *out = NULL;
  if (p && asprintf(&out, "%s%s%s", p, strcmp(p, "/") ? "/" : "", name) < 0)
    out = NULL;
  free(p);
  return out;
}
