/* cache/outbox_worker.c: the delivery side of the journal: taking entries,
 * marking them, removing or moving them to failed/, listings and waiting for
 * changes. */
#include "cache/outbox_i.h"

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
  e->attempted = cliq_clock_real();
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
  if (f->uncertain)
    e->attempted = cliq_clock_real();
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
  f.failed_at = cliq_clock_real();
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

/* One wait on the condition; -ETIMEDOUT once the deadline (monotonic
 * seconds) has passed. */
static int wait_once(outbox *ob, bool forever, double deadline)
{
  if (forever) {
    pthread_cond_wait(&ob->changed, &ob->mu);
    return 0;
  }
  return cliq_clock_wait_until(&ob->changed, &ob->mu, deadline) == ETIMEDOUT
             ? -ETIMEDOUT
             : 0;
}

int outbox_wait_change(outbox *ob, uint64_t seen, double timeout_s)
{
  bool forever = timeout_s < 0;
  double deadline = forever ? 0 : cliq_clock_mono() + timeout_s;
  pthread_mutex_lock(&ob->mu);
  int rc = 0;
  while (ob->gen == seen) {
    if (ob->shutdown) {
      rc = -ECANCELED;
      break;
    }
    if (wait_once(ob, forever, deadline) == -ETIMEDOUT && ob->gen == seen) {
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
  double deadline = forever ? 0 : cliq_clock_mono() + timeout_s;
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
    else if (wait_once(ob, forever, deadline) == -ETIMEDOUT &&
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
