/* fs/views.c: what the driver knows of a channel or a thread, and the names
 * of a directory's children. */
#include "fs/fs_i.h"

/* ---- Views of channels and threads ----------------------------------------------- */

void chview_clear(struct chview *c)
{
  free(c->channel_id);
  free(c->chat_id);
  json_decref(c->raw);
  memset(c, 0, sizeof *c);
}

int chview_get(struct fs *fs, const char *channel_id,
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

void tview_clear(struct tview *v)
{
  free(v->tid);
  store_draft_clear(&v->draft);
  store_threads_unref(v->list);
  store_thread_clear(&v->looked_up);
  memset(v, 0, sizeof *v);
}

/* The thread a thread-level node belongs to. */
int tview_get(struct fs *fs, struct node *n, enum store_mode mode,
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

bool tview_closed(const struct tview *v)
{
  return v->have_thread && v->thread->closed;
}

/* ---- Names of children ------------------------------------------------------------- */

static const char *const channel_reserved[] = { "info", "messages" };
static const char *const root_reserved[] = { ".cliqfs" };

/* Fills the node's memo from a channels snapshot (fs lock held). */
int memo_channels_locked(struct node *root, store_channels *cs)
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

void draft_names_clear(struct draft_names *d)
{
  for (size_t i = 0; i < d->n; i++) {
    free(d->names[i]);
    free(d->tids ? d->tids[i] : NULL);
  }
  free(d->names);
  free(d->tids);
  memset(d, 0, sizeof *d);
}

int draft_names_get(struct fs *fs, const char *channel_id,
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
int memo_threads_locked(struct fs *fs, struct node *ch,
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

char *ident_of(const char *prefix, const char *a, const char *b)
{
  char *s = NULL;
  if (asprintf(&s, "%s/%s%s%s", prefix, a, b ? "/" : "", b ? b : "") < 0)
    return NULL;
  return s;
}

struct node *channel_node(struct fs *fs, const char *channel_id,
                                 const char *name)
{
  char *ident = ident_of("c", channel_id, NULL);
  struct node *n = ident ? node_get(fs, N_CHANNEL, ident, channel_id, NULL,
                                    NULL, fs->root, name)
                         : NULL;
  free(ident);
  return n;
}

struct node *thread_node(struct fs *fs, struct node *ch,
                                const char *tid, const char *name)
{
  char *ident = ident_of("t", tid, NULL);
  struct node *n = ident ? node_get(fs, N_THREAD, ident, ch->channel_id, tid,
                                    NULL, ch, name)
                         : NULL;
  free(ident);
  return n;
}

struct node *draft_node(struct fs *fs, struct node *ch,
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
struct node *child_node(struct fs *fs, struct node *dir,
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
char *entry_name(const outbox_entry *e)
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

int entry_id_of_name(const char *name, uint64_t *id)
{
  for (int i = 0; i < ENTRY_ID_DIGITS; i++)
    if (name[i] < '0' || name[i] > '9')
      return -ENOENT;
  if (name[ENTRY_ID_DIGITS] != '-')
    return -ENOENT;
  *id = strtoull(name, NULL, 10);
  return *id ? 0 : -ENOENT;
}

struct node *entry_node(struct fs *fs, struct node *dir,
                               const outbox_entry *e, const char *name)
{
  enum nkind kind = dir->kind == N_FAILED ? N_FA_ENTRY : N_OB_ENTRY;
  char ident[64];
  snprintf(ident, sizeof ident, "%s/%" PRIu64,
           kind == N_FA_ENTRY ? "fa" : "ob", e->id);
  return node_get(fs, kind, ident, NULL, NULL, NULL, dir, name);
}

/* The journal entry a node shows; -ENOENT once it left. */
int entry_of_node(struct fs *fs, struct node *n, outbox_entry *out)
{
  uint64_t id = strtoull(n->ident + 3, NULL, 10);
  return store_outbox_get(fs->store, n->kind == N_FA_ENTRY, id, out);
}
