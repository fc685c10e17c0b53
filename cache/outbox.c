/* cache/outbox.c: the journal's memory (entries sorted by id), opening and
 * closing it, and appending to it. */
#include "cache/outbox_i.h"

static const char *const kind_names[OUTBOX_KIND_COUNT] = {
  [OUTBOX_REPLY] = "reply",
  [OUTBOX_CHANNEL_POST] = "channel_post",
  [OUTBOX_STATE] = "state",
  [OUTBOX_FOLLOWERS_ADD] = "followers_add",
  [OUTBOX_FOLLOWERS_REMOVE] = "followers_remove",
  [OUTBOX_CTL] = "ctl",
  [OUTBOX_CREATE_THREAD] = "create_thread",
};

const char *outbox_kind_name(outbox_kind kind)
{
  if ((int)kind < 0 || kind >= OUTBOX_KIND_COUNT)
    return "?";
  return kind_names[kind];
}

int outbox_kind_from_name(const char *name)
{
  if (!name)
    return -1;
  for (int i = 0; i < OUTBOX_KIND_COUNT; i++)
    if (strcmp(kind_names[i], name) == 0)
      return i;
  return -1;
}

/* ---- in-memory lists ------------------------------------------------------- */

/* Index of id in items, or -1. */
ssize_t item_index(const outbox *ob, uint64_t id)
{
  size_t lo = 0, hi = ob->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ob->items[mid]->e.id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < ob->n && ob->items[lo]->e.id == id ? (ssize_t)lo : -1;
}

struct item *durable_item(outbox *ob, uint64_t id)
{
  ssize_t i = item_index(ob, id);
  if (i < 0 || !ob->items[i]->durable)
    return NULL;
  return ob->items[i];
}

static int items_push(outbox *ob, struct item *it)
{
  if (ob->n == ob->cap) {
    size_t cap = ob->cap ? ob->cap * 2 : 32;
    struct item **p = realloc(ob->items, cap * sizeof(*p));
    if (!p)
      return -ENOMEM;
    ob->items = p;
    ob->cap = cap;
  }
  ob->items[ob->n++] = it;
  return 0;
}

void items_remove(outbox *ob, uint64_t id)
{
  ssize_t i = item_index(ob, id);
  if (i < 0)
    return;
  struct item *it = ob->items[i];
  memmove(&ob->items[i], &ob->items[i + 1],
          (ob->n - (size_t)i - 1) * sizeof(*ob->items));
  ob->n--;
  outbox_entry_clear(&it->e);
  free(it);
}

int cmp_item(const void *a, const void *b)
{
  uint64_t x = (*(struct item *const *)a)->e.id;
  uint64_t y = (*(struct item *const *)b)->e.id;
  return (x > y) - (x < y);
}

int cmp_entry(const void *a, const void *b)
{
  uint64_t x = ((const outbox_entry *)a)->id;
  uint64_t y = ((const outbox_entry *)b)->id;
  return (x > y) - (x < y);
}

ssize_t failed_index(const outbox *ob, uint64_t id)
{
  for (size_t i = 0; i < ob->nfailed; i++)
    if (ob->failed[i].id == id)
      return (ssize_t)i;
  return -1;
}

/* Takes ownership of *e's contents. */
int failed_insert(outbox *ob, outbox_entry *e)
{
  if (ob->nfailed == ob->capfailed) {
    size_t cap = ob->capfailed ? ob->capfailed * 2 : 16;
    outbox_entry *p = realloc(ob->failed, cap * sizeof(*p));
    if (!p)
      return -ENOMEM;
    ob->failed = p;
    ob->capfailed = cap;
  }
  size_t i = ob->nfailed;
  while (i > 0 && ob->failed[i - 1].id > e->id) {
    ob->failed[i] = ob->failed[i - 1];
    i--;
  }
  ob->failed[i] = *e;
  ob->nfailed++;
  memset(e, 0, sizeof(*e));
  return 0;
}

void note_failure_outcome(outbox *ob, uint64_t id, int err)
{
  ob->recent[ob->recent_next % OUTBOX_RECENT_FAILURES] =
      (struct failure_note){.id = id, .err = err ? err : EIO};
  ob->recent_next++;
}

void changed(outbox *ob)
{
  ob->gen++;
  pthread_cond_broadcast(&ob->changed);
}

/* ---- open / close --------------------------------------------------------- */

int join(char **out, const char *a, const char *b)
{
  if (asprintf(out, "%s/%s", a, b) < 0) {
    *out = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* Reads every entry file of dir; calls take(ob, entry) for each (which owns
 * the entry's contents afterwards) and cleans up temporary files. */
int load_dir(outbox *ob, const char *dir,
                    int (*take)(outbox *, outbox_entry *), uint64_t *max_id)
{
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (statefile_is_temp_name(de->d_name)) {
      /* A write cut short by a crash; the entry it was replacing (if any)
       * is whole under its own name. */
      unlinkat(dirfd(d), de->d_name, 0);
      continue;
    }
    uint64_t id = id_from_name(de->d_name);
    if (id == 0)
      continue;
    if (id > *max_id)
      *max_id = id;
    char *path = NULL, *text = NULL;
    size_t len = 0;
    rc = join(&path, dir, de->d_name);
    if (rc)
      break;
    outbox_entry e;
    int r = statefile_read(path, &text, &len);
    free(path);
    if (r == 0)
      r = entry_parse(text, len, id, &e);
    free(text);
    if (r == -ENOMEM) {
      rc = r;
      break;
    }
    if (r)
      continue; /* unreadable: left where it is, for a human to look at */
    rc = take(ob, &e);
    outbox_entry_clear(&e);
    if (rc)
      break;
  }
  closedir(d);
  return rc;
}

int take_failed(outbox *ob, outbox_entry *e)
{
  return failed_insert(ob, e);
}

int take_pending(outbox *ob, outbox_entry *e)
{
  if (failed_index(ob, e->id) >= 0) {
    /* A move to failed/ was cut short after the failed copy was written. */
    char *path = entry_path(ob->dir, e->id);
    if (path)
      statefile_unlink_durable(path);
    free(path);
    return 0;
  }
  struct item *it = calloc(1, sizeof(*it));
  if (!it)
    return -ENOMEM;
  it->e = *e;
  it->durable = true;
  memset(e, 0, sizeof(*e));
  int rc = items_push(ob, it);
  if (rc) {
    outbox_entry_clear(&it->e);
    free(it);
  }
  return rc;
}

/* ---- append ----------------------------------------------------------------- */

static int reserve_ids(outbox *ob)
{
  if (ob->next_id < ob->reserved_until)
    return 0;
  uint64_t until = ob->next_id + OUTBOX_ID_BLOCK;
  char text[32];
  int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", until);
  int rc = statefile_write_atomic(ob->seq_path, text, (size_t)len);
  if (rc == 0)
    ob->reserved_until = until;
  return rc;
}

int outbox_append(outbox *ob, outbox_kind kind, const char *target,
                  json_t *payload, uint64_t *id_out)
{
  if (!ob || (int)kind < 0 || kind >= OUTBOX_KIND_COUNT || !target ||
      !*target)
    return -EINVAL;
  struct item *it = calloc(1, sizeof(*it));
  if (!it)
    return -ENOMEM;
  it->e.kind = kind;
  it->e.created = cliq_clock_real();
  it->e.target = strdup(target);
  it->e.payload = payload ? json_deep_copy(payload) : json_null();
  if (!it->e.target || !it->e.payload) {
    outbox_entry_clear(&it->e);
    free(it);
    return -ENOMEM;
  }

  pthread_mutex_lock(&ob->mu);
  int rc = reserve_ids(ob);
  if (rc == 0) {
    it->e.id = ob->next_id;
    rc = items_push(ob, it);
  }
  if (rc) {
    pthread_mutex_unlock(&ob->mu);
    outbox_entry_clear(&it->e);
    free(it);
    return rc;
  }
  ob->next_id++;
  ob->appending++;
  uint64_t id = it->e.id;
  /* Nobody else touches a non-durable item: its fields can be read without
   * the lock. */
  pthread_mutex_unlock(&ob->mu);

  rc = write_entry(ob->dir, &it->e, false);

  pthread_mutex_lock(&ob->mu);
  ob->appending--;
  if (rc)
    items_remove(ob, id);
  else
    it->durable = true;
  changed(ob);
  pthread_mutex_unlock(&ob->mu);
  if (rc == 0 && id_out)
    *id_out = id;
  return rc;
}
