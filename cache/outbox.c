/* The journal keeps every pending entry in memory (an array sorted by id) and
 * one file per entry on disk.  outbox_append() reserves the id and the place
 * in memory under the lock, writes and fsyncs the file without it (appends
 * from several threads overlap their fsyncs), and then marks the entry
 * durable.  An entry that is not durable yet is invisible to the worker and
 * blocks the entries after it for the same target, so order per target is
 * the order of the ids. */
#include "cache/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cache/statefile.h"

/* Ids are reserved on disk in blocks so that an append costs one fsync'd
 * file, not two. */
#define OUTBOX_ID_BLOCK 1024
/* Outcomes of failed entries kept for outbox_wait_target_empty(), even after
 * the user deleted them from failed/. */
#define OUTBOX_RECENT_FAILURES 256

struct item {
  outbox_entry e;
  bool durable;
};

struct failure_note {
  uint64_t id;
  int err;
};

struct outbox {
  pthread_mutex_t mu;
  pthread_cond_t changed;        /* CLOCK_MONOTONIC */
  char *state_dir;
  unsigned slot;
  char *dir;                     /* state_dir/outbox or outbox.<slot> */
  char *failed_dir;              /* state_dir/failed or failed.<slot> */
  char *seq_path;
  int lock_fd;
  uint64_t next_id;
  uint64_t reserved_until;       /* ids below this are covered by .seq */
  struct item **items;           /* pending, sorted by id */
  size_t n, cap;
  outbox_entry *failed;          /* sorted by id */
  size_t nfailed, capfailed;
  struct failure_note recent[OUTBOX_RECENT_FAILURES];
  size_t recent_next;
  int appending;                 /* appends writing their file right now */
  size_t fsync_waiters;
  uint64_t gen;
  bool shutdown;
};

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

/* ---- entries ---------------------------------------------------------------- */

void outbox_entry_clear(outbox_entry *entry)
{
  if (!entry)
    return;
  free(entry->target);
  json_decref(entry->payload);
  free(entry->last_error);
  free(entry->reason);
  memset(entry, 0, sizeof(*entry));
}

void outbox_entry_list_free(outbox_entry *items, size_t n)
{
  if (!items)
    return;
  for (size_t i = 0; i < n; i++)
    outbox_entry_clear(&items[i]);
  free(items);
}

static int dup_or_null(const char *s, char **out)
{
  *out = NULL;
  if (!s)
    return 0;
  *out = strdup(s);
  return *out ? 0 : -ENOMEM;
}

/* Payloads are deep-copied in and out: callers may do what they like with
 * theirs, and no reference is shared between threads. */
static int entry_copy(const outbox_entry *src, outbox_entry *dst)
{
  memset(dst, 0, sizeof(*dst));
  dst->id = src->id;
  dst->kind = src->kind;
  dst->created = src->created;
  dst->attempts = src->attempts;
  dst->attempted = src->attempted;
  dst->uncertain = src->uncertain;
  dst->failed_errno = src->failed_errno;
  dst->failed_at = src->failed_at;
  dst->payload = json_deep_copy(src->payload);
  if (!dst->payload || dup_or_null(src->target, &dst->target) ||
      dup_or_null(src->last_error, &dst->last_error) ||
      dup_or_null(src->reason, &dst->reason)) {
    outbox_entry_clear(dst);
    return -ENOMEM;
  }
  return 0;
}

static char *entry_text(const outbox_entry *e, bool failed)
{
  json_t *o = json_object();
  if (!o)
    return NULL;
  json_object_set_new(o, "version", json_integer(1));
  json_object_set_new(o, "id", json_integer((json_int_t)e->id));
  json_object_set_new(o, "kind", json_string(outbox_kind_name(e->kind)));
  json_object_set_new(o, "target", json_string(e->target));
  json_object_set(o, "payload", e->payload);
  json_object_set_new(o, "created", json_real(e->created));
  json_object_set_new(o, "attempts", json_integer(e->attempts));
  json_object_set_new(o, "attempted", json_real(e->attempted));
  json_object_set_new(o, "uncertain", json_boolean(e->uncertain));
  json_object_set_new(o, "last_error",
                      e->last_error ? json_string(e->last_error) : json_null());
  if (failed) {
    json_object_set_new(o, "failed_errno", json_integer(e->failed_errno));
    json_object_set_new(o, "reason", json_string(e->reason ? e->reason : ""));
    json_object_set_new(o, "failed_at", json_real(e->failed_at));
  }
  char *text = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
  json_decref(o);
  return text;
}

static const char *string_or_null(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Parses one entry file.  -EIO for anything that is not an entry of a kind
 * we know (such files are left alone). */
static int entry_parse(const char *text, size_t len, uint64_t id,
                       outbox_entry *out)
{
  memset(out, 0, sizeof(*out));
  json_t *o = json_loadb(text, len, 0, NULL);
  int rc = -EIO;
  if (!json_is_object(o))
    goto out;
  json_t *jid = json_object_get(o, "id");
  int kind = outbox_kind_from_name(string_or_null(o, "kind"));
  const char *target = string_or_null(o, "target");
  json_t *payload = json_object_get(o, "payload");
  if (!json_is_integer(jid) || (uint64_t)json_integer_value(jid) != id ||
      kind < 0 || !target || !*target || !payload)
    goto out;
  out->id = id;
  out->kind = (outbox_kind)kind;
  out->created = json_number_value(json_object_get(o, "created"));
  out->attempts = (int)json_integer_value(json_object_get(o, "attempts"));
  out->attempted = json_number_value(json_object_get(o, "attempted"));
  out->uncertain = json_is_true(json_object_get(o, "uncertain"));
  out->failed_errno = (int)json_integer_value(json_object_get(o, "failed_errno"));
  out->failed_at = json_number_value(json_object_get(o, "failed_at"));
  out->payload = json_incref(payload);
  rc = -ENOMEM;
  if (dup_or_null(target, &out->target) ||
      dup_or_null(string_or_null(o, "last_error"), &out->last_error) ||
      dup_or_null(string_or_null(o, "reason"), &out->reason)) {
    outbox_entry_clear(out);
    goto out;
  }
  rc = 0;
out:
  json_decref(o);
  return rc;
}

static char *entry_path(const char *dir, uint64_t id)
{
  char *p = NULL;
  if (asprintf(&p, "%s/%016" PRIu64 ".json", dir, id) < 0)
    return NULL;
  return p;
}

/* "0000000000000042.json" -> 42; 0 for any other name. */
static uint64_t id_from_name(const char *name)
{
  size_t n = strlen(name);
  if (n != 16 + 5 || strcmp(name + 16, ".json") != 0)
    return 0;
  uint64_t id = 0;
  for (int i = 0; i < 16; i++) {
    if (name[i] < '0' || name[i] > '9')
      return 0;
    id = id * 10 + (uint64_t)(name[i] - '0');
  }
  return id;
}

static int write_entry(const char *dir, const outbox_entry *e, bool failed)
{
  char *path = entry_path(dir, e->id);
  char *text = entry_text(e, failed);
  int rc = -ENOMEM;
  if (path && text)
    rc = statefile_write_atomic(path, text, strlen(text));
  free(path);
  free(text);
  return rc;
}

/* ---- in-memory lists ------------------------------------------------------- */

/* Index of id in items, or -1. */
static ssize_t item_index(const outbox *ob, uint64_t id)
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

static struct item *durable_item(outbox *ob, uint64_t id)
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

static void items_remove(outbox *ob, uint64_t id)
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

static int cmp_item(const void *a, const void *b)
{
  uint64_t x = (*(struct item *const *)a)->e.id;
  uint64_t y = (*(struct item *const *)b)->e.id;
  return (x > y) - (x < y);
}

static int cmp_entry(const void *a, const void *b)
{
  uint64_t x = ((const outbox_entry *)a)->id;
  uint64_t y = ((const outbox_entry *)b)->id;
  return (x > y) - (x < y);
}

static ssize_t failed_index(const outbox *ob, uint64_t id)
{
  for (size_t i = 0; i < ob->nfailed; i++)
    if (ob->failed[i].id == id)
      return (ssize_t)i;
  return -1;
}

/* Takes ownership of *e's contents. */
static int failed_insert(outbox *ob, outbox_entry *e)
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

static void note_failure_outcome(outbox *ob, uint64_t id, int err)
{
  ob->recent[ob->recent_next % OUTBOX_RECENT_FAILURES] =
      (struct failure_note){.id = id, .err = err ? err : EIO};
  ob->recent_next++;
}

static void changed(outbox *ob)
{
  ob->gen++;
  pthread_cond_broadcast(&ob->changed);
}

/* ---- open / close --------------------------------------------------------- */

static int join(char **out, const char *a, const char *b)
{
  if (asprintf(out, "%s/%s", a, b) < 0) {
    *out = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* Reads every entry file of dir; calls take(ob, entry) for each (which owns
 * the entry's contents afterwards) and cleans up temporary files. */
static int load_dir(outbox *ob, const char *dir,
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

static int take_failed(outbox *ob, outbox_entry *e)
{
  return failed_insert(ob, e);
}

static int take_pending(outbox *ob, outbox_entry *e)
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

/* ---- slots ---------------------------------------------------------------- */

/* The folders of journal slot `slot`: outbox/ and failed/ for slot 0 (the
 * layout of a single mount), outbox.<n>/ and failed.<n>/ after it. */
static int slot_dirs(const char *state_dir, unsigned slot, char **dir,
                     char **failed_dir)
{
  int a, b;
  if (slot == 0) {
    a = asprintf(dir, "%s/outbox", state_dir);
    b = asprintf(failed_dir, "%s/failed", state_dir);
  } else {
    a = asprintf(dir, "%s/outbox.%u", state_dir, slot);
    b = asprintf(failed_dir, "%s/failed.%u", state_dir, slot);
  }
  if (a < 0)
    *dir = NULL;
  if (b < 0)
    *failed_dir = NULL;
  if (a < 0 || b < 0) {
    free(*dir);
    free(*failed_dir);
    *dir = *failed_dir = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* "outbox" -> 0, "outbox.<n>" -> n (1 <= n < OUTBOX_MAX_SLOTS, no leading
 * zero); -1 for any other name. */
static int slot_of_name(const char *name)
{
  if (strncmp(name, "outbox", 6) != 0)
    return -1;
  if (name[6] == '\0')
    return 0;
  if (name[6] != '.' || name[7] < '1' || name[7] > '9')
    return -1;
  int n = 0;
  for (const char *c = name + 7; *c; c++) {
    if (*c < '0' || *c > '9')
      return -1;
    n = n * 10 + (*c - '0');
    if (n >= OUTBOX_MAX_SLOTS)
      return -1;
  }
  return n;
}

/* The slots that have a folder under state_dir, as a bit set. */
static uint64_t existing_slots(const char *state_dir)
{
  _Static_assert(OUTBOX_MAX_SLOTS <= 64, "slot set is one word");
  uint64_t set = 0;
  DIR *d = opendir(state_dir);
  if (!d)
    return 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int slot = slot_of_name(de->d_name);
    if (slot >= 0)
      set |= UINT64_C(1) << slot;
  }
  closedir(d);
  return set;
}

/* Locks the slot whose journal folder is dir (created when `create`): 0 with
 * *fd_out holding the flock, -EBUSY when another open journal holds it. */
static int slot_lock(const char *dir, bool create, int *fd_out)
{
  *fd_out = -1;
  if (create) {
    int rc = statefile_mkdirs(dir, 0700);
    if (rc)
      return rc;
  }
  char *lock_path = NULL;
  int rc = join(&lock_path, dir, ".lock");
  if (rc)
    return rc;
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  free(lock_path);
  if (fd < 0)
    return -errno;
  /* flock() locks belong to the open file description: a second open in
   * this process conflicts with the first just as another process does. */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

static bool has_entries(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return false;
  bool found = false;
  struct dirent *de;
  while (!found && (de = readdir(d)) != NULL)
    found = id_from_name(de->d_name) != 0;
  closedir(d);
  return found;
}

/* Takes a slot for ob: the first free one that a previous owner left with
 * pending entries (so that they are delivered as soon as possible), else the
 * first free one, creating its folders. */
static int take_slot(outbox *ob, const char *state_dir, cliq_error *err)
{
  uint64_t existing = existing_slots(state_dir);
  for (unsigned slot = 0; slot < OUTBOX_MAX_SLOTS; slot++) {
    if (!(existing & (UINT64_C(1) << slot)))
      continue;
    char *dir = NULL, *failed = NULL;
    if (slot_dirs(state_dir, slot, &dir, &failed))
      break; /* out of memory: the second pass reports it */
    int fd = -1;
    if (slot_lock(dir, false, &fd) == 0 && has_entries(dir)) {
      ob->slot = slot;
      ob->dir = dir;
      ob->failed_dir = failed;
      ob->lock_fd = fd;
      return 0;
    }
    if (fd >= 0)
      close(fd);
    free(dir);
    free(failed);
  }
  for (unsigned slot = 0; slot < OUTBOX_MAX_SLOTS; slot++) {
    char *dir = NULL, *failed = NULL;
    int rc = slot_dirs(state_dir, slot, &dir, &failed);
    if (rc) {
      statefile_fail(err, ENOMEM, "out of memory");
      return rc;
    }
    int fd = -1;
    rc = slot_lock(dir, true, &fd);
    if (rc == -EBUSY) {
      free(dir);
      free(failed);
      continue;
    }
    if (rc) {
      statefile_fail(err, -rc, "%s: %s", dir, strerror(-rc));
      free(dir);
      free(failed);
      return rc;
    }
    ob->slot = slot;
    ob->dir = dir;
    ob->failed_dir = failed;
    ob->lock_fd = fd;
    return 0;
  }
  statefile_fail(err, EBUSY,
          "%s: all %d outbox slots are in use by other cliqfs processes",
          state_dir, OUTBOX_MAX_SLOTS);
  return -EBUSY;
}

outbox *outbox_open(const char *state_dir, cliq_error *err)
{
  if (!state_dir) {
    statefile_fail(err, EINVAL, "outbox: no state folder");
    return NULL;
  }
  outbox *ob = calloc(1, sizeof(*ob));
  if (!ob) {
    statefile_fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  ob->lock_fd = -1;
  pthread_mutex_init(&ob->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ob->changed, &ca);
  pthread_condattr_destroy(&ca);

  int rc;
  if (!(ob->state_dir = strdup(state_dir))) {
    statefile_fail(err, ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = take_slot(ob, state_dir, err)))
    goto fail;
  if ((rc = join(&ob->seq_path, ob->dir, ".seq"))) {
    statefile_fail(err, ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = statefile_mkdirs(ob->failed_dir, 0700))) {
    statefile_fail(err, -rc, "%s: %s", ob->failed_dir, strerror(-rc));
    goto fail;
  }

  uint64_t max_id = 0;
  if ((rc = load_dir(ob, ob->failed_dir, take_failed, &max_id)) ||
      (rc = load_dir(ob, ob->dir, take_pending, &max_id))) {
    statefile_fail(err, -rc, "loading the outbox %s: %s", ob->dir, strerror(-rc));
    goto fail;
  }
  if (ob->n)
    qsort(ob->items, ob->n, sizeof(*ob->items), cmp_item);
  if (ob->nfailed)
    qsort(ob->failed, ob->nfailed, sizeof(*ob->failed), cmp_entry);

  uint64_t reserved = 0;
  char *text = NULL;
  if (statefile_read(ob->seq_path, &text, NULL) == 0)
    reserved = strtoull(text, NULL, 10);
  free(text);
  ob->next_id = max_id + 1;
  if (reserved > ob->next_id)
    ob->next_id = reserved;
  ob->reserved_until = ob->next_id; /* the first append reserves a block */
  if (err)
    memset(err, 0, sizeof(*err));
  return ob;
fail:
  outbox_close(ob);
  return NULL;
}

void outbox_close(outbox *ob)
{
  if (!ob)
    return;
  for (size_t i = 0; i < ob->n; i++) {
    outbox_entry_clear(&ob->items[i]->e);
    free(ob->items[i]);
  }
  free(ob->items);
  outbox_entry_list_free(ob->failed, ob->nfailed);
  if (ob->lock_fd >= 0)
    close(ob->lock_fd); /* releases the flock */
  free(ob->state_dir);
  free(ob->dir);
  free(ob->failed_dir);
  free(ob->seq_path);
  pthread_cond_destroy(&ob->changed);
  pthread_mutex_destroy(&ob->mu);
  free(ob);
}

const char *outbox_dir(outbox *ob)
{
  return ob->dir;
}

unsigned outbox_slot(outbox *ob)
{
  return ob->slot;
}

int outbox_other_slot_dirs(outbox *ob, char ***dirs, size_t *n_out)
{
  *dirs = NULL;
  if (n_out)
    *n_out = 0;
  uint64_t existing = existing_slots(ob->state_dir);
  char **list = calloc(OUTBOX_MAX_SLOTS + 1, sizeof(*list));
  if (!list)
    return -ENOMEM;
  size_t n = 0;
  for (unsigned slot = 0; slot < OUTBOX_MAX_SLOTS; slot++) {
    if (slot == ob->slot || !(existing & (UINT64_C(1) << slot)))
      continue;
    char *failed = NULL;
    if (slot_dirs(ob->state_dir, slot, &list[n], &failed)) {
      for (size_t k = 0; k < n; k++)
        free(list[k]);
      free(list);
      return -ENOMEM;
    }
    free(failed);
    n++;
  }
  *dirs = list;
  if (n_out)
    *n_out = n;
  return 0;
}

void outbox_shutdown(outbox *ob)
{
  pthread_mutex_lock(&ob->mu);
  ob->shutdown = true;
  pthread_cond_broadcast(&ob->changed);
  pthread_mutex_unlock(&ob->mu);
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
  it->e.created = statefile_now_real();
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

/* ---- the worker's side ---------------------------------------------------- */

int outbox_peek_next(outbox *ob, const char *target, outbox_entry *out)
{
  memset(out, 0, sizeof(*out));
  if (!ob || !target)
    return -EINVAL;
  int rc = -ENOENT;
  pthread_mutex_lock(&ob->mu);
  for (size_t i = 0; i < ob->n; i++) {
    struct item *it = ob->items[i];
    if (strcmp(it->e.target, target) != 0)
      continue;
    if (it->durable)
      rc = entry_copy(&it->e, out);
    break;
  }
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

int outbox_targets(outbox *ob, char ***targets, size_t *n_out)
{
  *targets = NULL;
  if (n_out)
    *n_out = 0;
  pthread_mutex_lock(&ob->mu);
  char **list = calloc(ob->n + 1, sizeof(*list));
  size_t n = 0;
  int rc = list ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < ob->n; i++) {
    struct item *it = ob->items[i];
    if (!it->durable)
      continue;
    bool seen = false;
    for (size_t k = 0; k < n && !seen; k++)
      seen = strcmp(list[k], it->e.target) == 0;
    if (seen)
      continue;
    list[n] = strdup(it->e.target);
    if (!list[n])
      rc = -ENOMEM;
    else
      n++;
  }
  pthread_mutex_unlock(&ob->mu);
  if (rc) {
    for (size_t k = 0; list && k < n; k++)
      free(list[k]);
    free(list);
    return rc;
  }
  *targets = list;
  if (n_out)
    *n_out = n;
  return 0;
}

int outbox_get(outbox *ob, uint64_t id, outbox_entry *out)
{
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&ob->mu);
  struct item *it = durable_item(ob, id);
  int rc = it ? entry_copy(&it->e, out) : -ENOENT;
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

/* Rewrites entry id with a change applied by edit(); memory follows the file
 * only once the file is on disk. */
static int update_entry(outbox *ob, uint64_t id,
                        int (*edit)(outbox_entry *, const void *),
                        const void *arg)
{
  pthread_mutex_lock(&ob->mu);
  struct item *it = durable_item(ob, id);
  int rc = -ENOENT;
  if (!it)
    goto out;
  outbox_entry next;
  rc = entry_copy(&it->e, &next);
  if (rc)
    goto out;
  rc = edit(&next, arg);
  if (rc == 0)
    rc = write_entry(ob->dir, &next, false);
  if (rc == 0) {
    outbox_entry_clear(&it->e);
    it->e = next;
    changed(ob);
  } else {
    outbox_entry_clear(&next);
  }
out:
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

static int edit_uncertain(outbox_entry *e, const void *arg)
{
  (void)arg;
  e->uncertain = true;
  e->attempts++;
  e->attempted = statefile_now_real();
  return 0;
}

int outbox_mark_uncertain(outbox *ob, uint64_t id)
{
  return update_entry(ob, id, edit_uncertain, NULL);
}

struct failure_arg {
  bool uncertain;
  const char *error;
};

static int edit_failure(outbox_entry *e, const void *arg)
{
  const struct failure_arg *f = arg;
  e->uncertain = f->uncertain;
  free(e->last_error);
  e->last_error = NULL;
  return dup_or_null(f->error, &e->last_error);
}

int outbox_note_failure(outbox *ob, uint64_t id, bool uncertain,
                        const char *error)
{
  struct failure_arg f = {uncertain, error};
  return update_entry(ob, id, edit_failure, &f);
}

int outbox_remove(outbox *ob, uint64_t id)
{
  pthread_mutex_lock(&ob->mu);
  int rc = -ENOENT;
  if (!durable_item(ob, id))
    goto out;
  char *path = entry_path(ob->dir, id);
  rc = path ? statefile_unlink_durable(path) : -ENOMEM;
  free(path);
  if (rc == -ENOENT)
    rc = 0; /* someone removed the file by hand: gone is gone */
  if (rc == 0) {
    items_remove(ob, id);
    changed(ob);
  }
out:
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

int outbox_move_failed(outbox *ob, uint64_t id, int err, const char *reason)
{
  pthread_mutex_lock(&ob->mu);
  struct item *it = durable_item(ob, id);
  int rc = -ENOENT;
  if (!it)
    goto out;
  outbox_entry f;
  rc = entry_copy(&it->e, &f);
  if (rc)
    goto out;
  f.failed_errno = err > 0 ? err : EIO;
  f.failed_at = statefile_now_real();
  free(f.reason);
  f.reason = strdup(reason ? reason : "");
  rc = f.reason ? 0 : -ENOMEM;
  /* The failed copy first: a crash between the two steps leaves the entry
   * in both folders, which open() reads as failed. */
  if (rc == 0)
    rc = write_entry(ob->failed_dir, &f, true);
  if (rc == 0) {
    char *path = entry_path(ob->dir, id);
    rc = path ? statefile_unlink_durable(path) : -ENOMEM;
    free(path);
    if (rc == -ENOENT)
      rc = 0;
  }
  if (rc == 0)
    rc = failed_insert(ob, &f);
  outbox_entry_clear(&f);
  if (rc == 0) {
    note_failure_outcome(ob, id, err > 0 ? err : EIO);
    items_remove(ob, id);
    changed(ob);
  }
out:
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

static int edit_target(outbox_entry *e, const void *arg)
{
  char *t = strdup(arg);
  if (!t)
    return -ENOMEM;
  free(e->target);
  e->target = t;
  return 0;
}

int outbox_retarget(outbox *ob, const char *from, const char *to)
{
  if (!ob || !from || !to || !*to)
    return -EINVAL;
  pthread_mutex_lock(&ob->mu);
  /* An append in flight may be for `from`; let it land first. */
  while (ob->appending > 0)
    pthread_cond_wait(&ob->changed, &ob->mu);
  size_t count = 0;
  uint64_t *ids = malloc((ob->n + 1) * sizeof(*ids));
  if (!ids) {
    pthread_mutex_unlock(&ob->mu);
    return -ENOMEM;
  }
  for (size_t i = 0; i < ob->n; i++)
    if (strcmp(ob->items[i]->e.target, from) == 0)
      ids[count++] = ob->items[i]->e.id;
  pthread_mutex_unlock(&ob->mu);
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; i++) {
    rc = update_entry(ob, ids[i], edit_target, to);
    if (rc == -ENOENT)
      rc = 0; /* delivered meanwhile */
  }
  free(ids);
  return rc;
}

/* ---- listings ------------------------------------------------------------- */

/* Copies the durable queue (failed = false) or the failed list under the
 * lock; the caller frees the copy with outbox_entry_list_free(). */
static int copy_listing(outbox *ob, bool failed, outbox_entry **items,
                        size_t *n_out)
{
  *items = NULL;
  *n_out = 0;
  pthread_mutex_lock(&ob->mu);
  size_t total = failed ? ob->nfailed : ob->n;
  outbox_entry *list = calloc(total + 1, sizeof(*list));
  size_t n = 0;
  int rc = list ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < total; i++) {
    if (!failed && !ob->items[i]->durable)
      continue;
    rc = entry_copy(failed ? &ob->failed[i] : &ob->items[i]->e, &list[n]);
    if (rc == 0)
      n++;
  }
  pthread_mutex_unlock(&ob->mu);
  if (rc) {
    outbox_entry_list_free(list, n);
    return rc;
  }
  *items = list;
  *n_out = n;
  return 0;
}

int outbox_list(outbox *ob, outbox_entry **items, size_t *n_out)
{
  return copy_listing(ob, false, items, n_out);
}

int outbox_list_failed(outbox *ob, outbox_entry **items, size_t *n_out)
{
  return copy_listing(ob, true, items, n_out);
}

int outbox_failed_remove(outbox *ob, uint64_t id)
{
  pthread_mutex_lock(&ob->mu);
  ssize_t i = failed_index(ob, id);
  int rc = -ENOENT;
  if (i >= 0) {
    char *path = entry_path(ob->failed_dir, id);
    rc = path ? statefile_unlink_durable(path) : -ENOMEM;
    free(path);
    if (rc == -ENOENT)
      rc = 0;
    if (rc == 0) {
      outbox_entry_clear(&ob->failed[i]);
      memmove(&ob->failed[i], &ob->failed[i + 1],
              (ob->nfailed - (size_t)i - 1) * sizeof(*ob->failed));
      ob->nfailed--;
      changed(ob);
    }
  }
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

size_t outbox_depth(outbox *ob)
{
  pthread_mutex_lock(&ob->mu);
  size_t n = 0;
  for (size_t i = 0; i < ob->n; i++)
    n += ob->items[i]->durable;
  pthread_mutex_unlock(&ob->mu);
  return n;
}

size_t outbox_failed_count(outbox *ob)
{
  pthread_mutex_lock(&ob->mu);
  size_t n = ob->nfailed;
  pthread_mutex_unlock(&ob->mu);
  return n;
}

/* ---- waiting ------------------------------------------------------------------ */

uint64_t outbox_generation(outbox *ob)
{
  pthread_mutex_lock(&ob->mu);
  uint64_t g = ob->gen;
  pthread_mutex_unlock(&ob->mu);
  return g;
}

static void deadline_of(double timeout_s, struct timespec *ts)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  double whole = floor(timeout_s);
  ts->tv_sec += (time_t)whole;
  ts->tv_nsec += (long)((timeout_s - whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* One wait on the condition; -ETIMEDOUT once the deadline has passed. */
static int wait_once(outbox *ob, bool forever, const struct timespec *deadline)
{
  if (forever) {
    pthread_cond_wait(&ob->changed, &ob->mu);
    return 0;
  }
  return pthread_cond_timedwait(&ob->changed, &ob->mu, deadline) == ETIMEDOUT
             ? -ETIMEDOUT
             : 0;
}

int outbox_wait_change(outbox *ob, uint64_t seen, double timeout_s)
{
  bool forever = timeout_s < 0;
  struct timespec deadline;
  if (!forever)
    deadline_of(timeout_s, &deadline);
  pthread_mutex_lock(&ob->mu);
  int rc = 0;
  while (ob->gen == seen) {
    if (ob->shutdown) {
      rc = -ECANCELED;
      break;
    }
    if (wait_once(ob, forever, &deadline) == -ETIMEDOUT && ob->gen == seen) {
      rc = ob->shutdown ? -ECANCELED : -ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&ob->mu);
  return rc;
}

static int failure_of(const outbox *ob, uint64_t id)
{
  size_t kept = ob->recent_next < OUTBOX_RECENT_FAILURES
                    ? ob->recent_next
                    : OUTBOX_RECENT_FAILURES;
  for (size_t i = 0; i < kept; i++)
    if (ob->recent[i].id == id)
      return ob->recent[i].err;
  ssize_t k = failed_index(ob, id);
  return k >= 0 ? ob->failed[k].failed_errno : 0;
}

int outbox_wait_target_empty(outbox *ob, const char *target, double timeout_s)
{
  if (!ob || !target)
    return -EINVAL;
  bool forever = timeout_s < 0;
  struct timespec deadline;
  if (!forever)
    deadline_of(timeout_s, &deadline);
  pthread_mutex_lock(&ob->mu);
  size_t count = 0;
  uint64_t *ids = malloc((ob->n + 1) * sizeof(*ids));
  int rc = ids ? 0 : -ENOMEM;
  for (size_t i = 0; ids && i < ob->n; i++)
    if (strcmp(ob->items[i]->e.target, target) == 0)
      ids[count++] = ob->items[i]->e.id;
  ob->fsync_waiters++;
  for (size_t next = 0; rc == 0 && next < count;) {
    if (item_index(ob, ids[next]) < 0) {
      next++;
      continue;
    }
    if (ob->shutdown)
      rc = -ECANCELED;
    else if (wait_once(ob, forever, &deadline) == -ETIMEDOUT &&
             item_index(ob, ids[next]) >= 0)
      rc = -ETIMEDOUT;
  }
  ob->fsync_waiters--;
  for (size_t i = 0; rc == 0 && i < count; i++) {
    int e = failure_of(ob, ids[i]);
    if (e)
      rc = -e;
  }
  pthread_mutex_unlock(&ob->mu);
  free(ids);
  return rc;
}

size_t outbox_fsync_waiters(outbox *ob)
{
  pthread_mutex_lock(&ob->mu);
  size_t n = ob->fsync_waiters;
  pthread_mutex_unlock(&ob->mu);
  return n;
}
