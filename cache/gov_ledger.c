/* cache/gov_ledger.c: the governor's ledger (governor_i.h).  In memory, per
 * API, the stamps (epoch microseconds) of the requests within its window;
 * on disk, one JSON file, state_dir/ledger, holding the same and the time
 * each lock ends:
 *   {"version":1,"apis":{"chats.messages":{"stamps":[...],"locked_until":N}}}
 * Every access holds flock() on state_dir/ledger.lock, a file that is never
 * replaced: exclusive for a read-modify-write, shared for a read.  flock()
 * locks belong to an open file description, so two governors in one
 * process exclude each other exactly as two processes do.  Stamps are
 * written in place (no file is created per request); a record that holds
 * a lock is replaced atomically instead (durably when it records a new
 * lock), so that a crash of the machine never tears the one thing that
 * must outlast it.
 *
 * The first 8 bytes of ledger.lock count the ledger's writes (host order;
 * bumped by every writer under the exclusive lock).  A governor whose
 * memory matched the ledger at a count and a file identity (device, inode,
 * size, times) that are both unchanged skips reading and parsing the file:
 * every request and every status read would otherwise parse the whole
 * ledger, which grows with the requests of the window (sync fills it). */
#include "cache/governor_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/statefile.h"

/* ---- stamps --------------------------------------------------------------- */

int stamps_reserve(struct api_state *s, size_t want)
{
  if (want <= s->cap)
    return 0;
  size_t cap = s->cap ? s->cap : 16;
  while (cap < want)
    cap *= 2;
  int64_t *p = realloc(s->stamps, cap * sizeof(*p));
  if (!p)
    return -ENOMEM;
  s->stamps = p;
  s->cap = cap;
  return 0;
}

/* Drops the stamps that have left the window ending at now: a stamp counts
 * while stamp > now - window. */
void stamps_prune(struct api_state *s, int64_t now)
{
  size_t k = 0;
  while (k < s->n && s->stamps[k] <= now - s->window_us)
    k++;
  if (k) {
    memmove(s->stamps, s->stamps + k, (s->n - k) * sizeof(*s->stamps));
    s->n -= k;
  }
}

int stamps_insert(struct api_state *s, int64_t stamp)
{
  int rc = stamps_reserve(s, s->n + 1);
  if (rc)
    return rc;
  size_t i = s->n;
  while (i > 0 && s->stamps[i - 1] > stamp) {
    s->stamps[i] = s->stamps[i - 1];
    i--;
  }
  s->stamps[i] = stamp;
  s->n++;
  return 0;
}

/* Removes one stamp equal to `stamp`; false when there is none. */
bool stamps_remove(struct api_state *s, int64_t stamp)
{
  for (size_t i = 0; i < s->n; i++) {
    if (s->stamps[i] != stamp)
      continue;
    memmove(s->stamps + i, s->stamps + i + 1,
            (s->n - i - 1) * sizeof(*s->stamps));
    s->n--;
    return true;
  }
  return false;
}

void inflight_push(struct api_state *s, int64_t stamp)
{
  if (s->ninflight == GOV_INFLIGHT_MAX) {
    memmove(s->inflight, s->inflight + 1,
            (s->ninflight - 1) * sizeof(*s->inflight));
    s->ninflight--;
  }
  if (s->ninflight == s->capinflight) {
    size_t cap = s->capinflight ? s->capinflight * 2 : 16;
    int64_t *p = realloc(s->inflight, cap * sizeof(*p));
    if (!p)
      return; /* the request then keeps its send time: a weaker bound only */
    s->inflight = p;
    s->capinflight = cap;
  }
  s->inflight[s->ninflight++] = stamp;
}

/* A request of ours still unanswered half a window after its stamp is
 * re-stamped now: it may reach the server any time until its answer, so it
 * keeps counting (also for other processes reading the ledger) instead of
 * leaving the window while it is still on its way. */
bool inflight_keep(struct api_state *s, int64_t now)
{
  size_t k = 0;
  while (k < s->ninflight && s->inflight[k] <= now - s->window_us / 2)
    k++;
  if (k == 0)
    return false;
  for (size_t i = 0; i < k; i++) {
    stamps_remove(s, s->inflight[i]);
    (void)stamps_insert(s, now);
  }
  memmove(s->inflight, s->inflight + k,
          (s->ninflight - k) * sizeof(*s->inflight));
  for (size_t i = s->ninflight - k; i < s->ninflight; i++)
    s->inflight[i] = now;
  return true;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* ---- the ledger file ------------------------------------------------------ */

static void ledger_flock(gov *g, int how)
{
  if (g->lock_fd < 0)
    return;
  while (flock(g->lock_fd, how) != 0 && errno == EINTR)
    ;
}

void ledger_lock(gov *g)
{
  ledger_flock(g, LOCK_EX);
}

void ledger_unlock(gov *g)
{
  if (g->lock_fd >= 0)
    flock(g->lock_fd, LOCK_UN);
}

/* ---- whether the ledger changed since we last matched it ------------------ */

static int ledger_writes(gov *g, uint64_t *out)
{
  uint64_t n = 0;
  ssize_t got = pread(g->lock_fd, &n, sizeof n, 0);
  if (got < 0)
    return -errno;
  /* A new lock file (0 bytes) has seen no write that counts. */
  *out = got == (ssize_t)sizeof n ? n : 0;
  return 0;
}

static int ledger_identity(gov *g, struct ledger_id *out)
{
  struct stat st;
  memset(out, 0, sizeof *out);
  if (stat(g->ledger_path, &st) != 0)
    return errno == ENOENT ? 0 : -errno;   /* none yet: all zero */
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  out->size = st.st_size;
  out->mtime = st.st_mtim;
  out->ctime = st.st_ctim;
  return 0;
}

static bool identity_equal(const struct ledger_id *a, const struct ledger_id *b)
{
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec &&
         a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec &&
         a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Bumps the write count after a write (exclusive lock held) and notes that
 * memory matches the ledger as written. */
static void ledger_count_write(gov *g)
{
  uint64_t n;
  g->seen = false;
  if (g->lock_fd < 0 || ledger_writes(g, &n) != 0)
    return;
  n++;
  if (pwrite(g->lock_fd, &n, sizeof n, 0) != (ssize_t)sizeof n)
    return;
  g->seen = ledger_identity(g, &g->seen_file) == 0;
  g->seen_writes = n;
}

/* Replaces what we know by the file's content, the one truth shared by every
 * process of the account.  When the file is missing or unreadable we keep
 * what we have (it is the best we know).  Times in the future (the clock went
 * back) are pulled in so that they cannot block an API for longer than one
 * window or one lock period. */
void ledger_load(gov *g)
{
  /* After a failed write the file lacks our own latest stamps: trust memory
   * until a write succeeds again. */
  if (!g->ledger_path || g->save_failed)
    return;
  uint64_t writes = 0;
  struct ledger_id id;
  bool known = g->lock_fd >= 0 && ledger_writes(g, &writes) == 0 &&
               ledger_identity(g, &id) == 0;
  int64_t now = gov_now_real_us();
  if (known && g->seen && writes == g->seen_writes &&
      identity_equal(&id, &g->seen_file)) {
    g->loaded_us = now;
    for (int i = 0; i < CLIQ_API_COUNT; i++) {
      struct api_state *s = &g->apis[i];
      stamps_prune(s, now);
      if (s->locked_until <= now)
        s->locked_until = 0;
    }
    return;
  }
  g->seen = false;
  g->ledger_parses++;
  json_t *root = statefile_read_json(g->ledger_path);
  json_t *apis = json_object_get(root, "apis");
  if (!json_is_object(apis)) {
    json_decref(root);
    return;
  }
  g->loaded_us = now;
  bool pulled_in = false;
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    struct api_state *s = &g->apis[i];
    json_t *entry = json_object_get(apis, cliq_api_name((enum cliq_api)i));
    json_t *stamps = json_object_get(entry, "stamps");
    s->n = 0;
    s->locked_until = 0;
    if (!json_is_object(entry))
      continue;
    size_t idx;
    json_t *v;
    if (json_is_array(stamps) &&
        stamps_reserve(s, json_array_size(stamps)) == 0) {
      json_array_foreach(stamps, idx, v) {
        if (!json_is_integer(v))
          continue;
        int64_t t = (int64_t)json_integer_value(v);
        pulled_in = pulled_in || t > now;
        s->stamps[s->n++] = t > now ? now : t;
      }
      if (s->n)
        qsort(s->stamps, s->n, sizeof(*s->stamps), cmp_i64);
    }
    json_t *locked = json_object_get(entry, "locked_until");
    if (json_is_integer(locked)) {
      int64_t until = (int64_t)json_integer_value(locked);
      if (until > now + s->lock_us) {
        until = now + s->lock_us;
        pulled_in = true;
      }
      s->locked_until = until > now ? until : 0;
    }
    stamps_prune(s, now);
  }
  json_decref(root);
  /* Times pulled in are no longer what the file holds: read it again. */
  if (known && !pulled_in) {
    g->seen = true;
    g->seen_writes = writes;
    g->seen_file = id;
  }
}

void ledger_load_shared(gov *g)
{
  ledger_flock(g, LOCK_SH);
  ledger_load(g);
  ledger_unlock(g);
}

void ledger_load_recent(gov *g, int64_t now)
{
  if (now - g->loaded_us > PRESSURE_RELOAD_US)
    ledger_load_shared(g);
}

/* Writes what we know; only the stamps within the window are kept, so the
 * file stays small.  Failing to write is not fatal: this process still
 * counts correctly, and the file keeps the previous truth.  durable: also
 * across a crash of the machine.  Stamps need not be (a reboot outlasts
 * most windows, and two fsyncs per request would sit in every fetch's
 * path); a lock must, since it lasts minutes and a request in it is
 * refused and may extend it.  While any lock runs the file is replaced
 * whole (rename), so that a crash of the machine leaves the lock whole. */
int ledger_save(gov *g, bool durable)
{
  if (!g->ledger_path)
    return 0;
  int rc = -ENOMEM;
  bool locked = false;
  int64_t now = gov_now_real_us();
  json_t *root = json_object();
  json_t *apis = json_object();
  if (!root || !apis || json_object_set_new(root, "version", json_integer(1)) ||
      json_object_set(root, "apis", apis))
    goto out;
  for (int i = 0; i < CLIQ_API_COUNT; i++) {
    struct api_state *s = &g->apis[i];
    stamps_prune(s, now);
    if (s->locked_until <= now)
      s->locked_until = 0;
    if (s->n == 0 && s->locked_until == 0)
      continue;
    locked = locked || s->locked_until != 0;
    json_t *entry = json_object();
    json_t *stamps = json_array();
    if (!entry || !stamps) {
      json_decref(entry);
      json_decref(stamps);
      goto out;
    }
    for (size_t k = 0; k < s->n; k++)
      json_array_append_new(stamps, json_integer(s->stamps[k]));
    json_object_set_new(entry, "stamps", stamps);
    json_object_set_new(entry, "locked_until", json_integer(s->locked_until));
    json_object_set_new(apis, cliq_api_name((enum cliq_api)i), entry);
  }
  char *text = json_dumps(root, JSON_COMPACT);
  if (!text)
    goto out;
  size_t len = strlen(text);
  if (durable)
    rc = statefile_write_atomic(g->ledger_path, text, len);
  else if (locked)
    rc = statefile_replace(g->ledger_path, text, len);
  else
    rc = statefile_overwrite(g->ledger_path, text, len);
  free(text);
  if (rc == 0)
    ledger_count_write(g);
out:
  g->save_failed = rc != 0;
  json_decref(apis);
  json_decref(root);
  return rc;
}

