/* cache/outbox_slots.c: journal slots: one folder per process of an account,
 * locked while in use, taken over when its process is gone. */
#include "cache/outbox_i.h"

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
      cliq_fail(err, ENOMEM, "out of memory");
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
      cliq_fail(err, -rc, "%s: %s", dir, strerror(-rc));
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
  cliq_fail(err, EBUSY,
          "%s: all %d outbox slots are in use by other cliqfs processes",
          state_dir, OUTBOX_MAX_SLOTS);
  return -EBUSY;
}

outbox *outbox_open(const char *state_dir, cliq_error *err)
{
  if (!state_dir) {
    cliq_fail(err, EINVAL, "outbox: no state folder");
    return NULL;
  }
  outbox *ob = calloc(1, sizeof(*ob));
  if (!ob) {
    cliq_fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  ob->lock_fd = -1;
  pthread_mutex_init(&ob->mu, NULL);
  cliq_clock_cond_init(&ob->changed);

  int rc;
  if (!(ob->state_dir = strdup(state_dir))) {
    cliq_fail(err, ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = take_slot(ob, state_dir, err)))
    goto fail;
  if ((rc = join(&ob->seq_path, ob->dir, ".seq"))) {
    cliq_fail(err, ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = statefile_mkdirs(ob->failed_dir, 0700))) {
    cliq_fail(err, -rc, "%s: %s", ob->failed_dir, strerror(-rc));
    goto fail;
  }

  uint64_t max_id = 0;
  if ((rc = load_dir(ob, ob->failed_dir, take_failed, &max_id)) ||
      (rc = load_dir(ob, ob->dir, take_pending, &max_id))) {
    cliq_fail(err, -rc, "loading the outbox %s: %s", ob->dir, strerror(-rc));
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
