/* cache/outbox: the journal of writes accepted but not yet delivered
 * (cliqfs(1) WRITING).  A durable FIFO per account: `close` on a
 * written file returns once outbox_append() has returned, and a delivery
 * worker (not here: this module never calls api/) takes entries in order per
 * target, marks them uncertain before sending, and removes them when
 * delivered or moves them to failed/ when Cliq refuses them for good.
 *
 * On disk, under state_dir, one journal per slot (see "Slots"):
 *   outbox/<id, 16 digits>.json   one pending entry, written atomically and
 *                                 fsync'd (statefile_write_atomic)
 *   outbox/.seq                   highest id reserved so far (ids stay
 *                                 monotonic across restarts)
 *   outbox/.lock                  flock()ed by the process that has the slot
 *   outbox/.delivery.json         the delivery worker's record (delivery.h)
 *   failed/<id, 16 digits>.json   entries refused for good, with the reason
 * A crash at any instant leaves every entry whole (temporary files are
 * ignored and cleaned up at open); an entry whose move to failed/ was cut
 * short is found in both folders and counts as failed.
 *
 * Slots (several mounts of one account).  Slot 0 is outbox/ + failed/ (the
 * layout of a single mount); slot n >= 1 is outbox.<n>/ + failed.<n>/.  Each
 * outbox_open() takes one slot and holds it, with flock() on its .lock, until
 * outbox_close() or the end of the process (a forked child shares the lock
 * until it closes its copy): the first free slot that a previous holder left
 * with pending entries, else the first free slot (created as needed).  So a
 * second mount (or a second open in the same process: the lock belongs to
 * the open file, not the process) gets its own journal, and the entries of a
 * process that died are delivered by the next outbox_open() that finds its
 * slot free.  Limit: each open holds one slot; if slots 0 and 1 both
 * have entries and only one mount runs afterwards, slot 1's wait for the
 * next time two mounts run together.  Ids are per slot;
 * everything of a slot (ids, order per target, failed/, the delivery record)
 * belongs to its holder alone.  Entries of one target written through two
 * mounts are ordered per mount, not between them.  At most OUTBOX_MAX_SLOTS
 * slots are held at once.
 *
 * Ownership: strings and payloads passed in are borrowed (the journal keeps
 * copies); entries handed out are copies owned by the caller, released with
 * outbox_entry_clear() / outbox_entry_list_free().  Thread-safe.
 * Functions return 0 or -errno unless said otherwise.
 */
#ifndef CLIQ_CACHE_OUTBOX_H
#define CLIQ_CACHE_OUTBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/cliq.h"

/* Journal slots one state folder can have held at the same time. */
#define OUTBOX_MAX_SLOTS 64

/* What an entry asks for.  The payload's shape is the writer's and the
 * delivery worker's business; the journal stores it verbatim.  Suggested:
 *   REPLY, CHANNEL_POST   string: the message text
 *   STATE                 string: "close" or "reopen"
 *   FOLLOWERS_ADD/REMOVE  array of user id strings
 *   CTL                   string: the verb
 *   CREATE_THREAD         object: what the worker needs (parent message,
 *                         title, text, ...) */
typedef enum outbox_kind {
  OUTBOX_REPLY = 0,
  OUTBOX_CHANNEL_POST,
  OUTBOX_STATE,
  OUTBOX_FOLLOWERS_ADD,
  OUTBOX_FOLLOWERS_REMOVE,
  OUTBOX_CTL,
  OUTBOX_CREATE_THREAD,
  OUTBOX_KIND_COUNT
} outbox_kind;

/* "reply", "channel_post", "state", "followers_add", "followers_remove",
 * "ctl", "create_thread"; "?" for an invalid kind.  Static storage. */
const char *outbox_kind_name(outbox_kind kind);
/* -1 for an unknown name. */
int outbox_kind_from_name(const char *name);

typedef struct outbox_entry {
  uint64_t id;            /* > 0, increasing in the order of outbox_append() */
  outbox_kind kind;
  char *target;           /* thread chat id, channel chat id or channel id,
                             or a local name for a draft (outbox_retarget) */
  json_t *payload;        /* a reference owned by the entry */
  double created;         /* epoch seconds */
  int attempts;           /* times outbox_mark_uncertain() was called */
  double attempted;       /* epoch seconds of the last outbox_mark_uncertain(),
                             or of the end of that attempt once it ended
                             uncertain (outbox_note_failure); 0 when never:
                             a request sent then may still be on its way */
  bool uncertain;         /* a send may have reached Cliq */
  char *last_error;       /* last transient failure, NULL when none */
  /* failed/ entries only (0 / NULL otherwise): */
  int failed_errno;       /* positive errno of the refusal */
  char *reason;           /* why, one line */
  double failed_at;       /* epoch seconds */
} outbox_entry;

void outbox_entry_clear(outbox_entry *entry);
void outbox_entry_list_free(outbox_entry *items, size_t n);

typedef struct outbox outbox;

/* Takes a journal slot under state_dir (see "Slots"; creating 0700 folders
 * as needed) and loads whatever a previous holder left.  NULL with err
 * filled on failure (err->err EBUSY when all OUTBOX_MAX_SLOTS are held). */
outbox *outbox_open(const char *state_dir, cliq_error *err);
/* Frees everything; the files stay.  No thread may be inside a call. */
void outbox_close(outbox *ob);
/* The slot's journal folder (state_dir/outbox or state_dir/outbox.<n>),
 * where the delivery worker keeps its record (names that are not entry names
 * are ignored by the journal).  Valid while ob lives. */
const char *outbox_dir(outbox *ob);
/* The slot held: 0 for outbox/, n for outbox.<n>/. */
unsigned outbox_slot(outbox *ob);
/* The journal folders of the other slots that exist under state_dir (held by
 * other mounts or not), in slot order: *dirs is a NULL-terminated array
 * (caller frees each string and the array); *n (may be NULL) gets the count.
 * The delivery worker reads their records to tell the other mounts' messages
 * from its own. */
int outbox_other_slot_dirs(outbox *ob, char ***dirs, size_t *n);
/* Wakes every waiter with -ECANCELED; later waits fail at once. */
void outbox_shutdown(outbox *ob);

/* Journals one operation; returns only after it is on disk (fsync'd).
 * *id_out (may be NULL) gets its id.  -EINVAL for a bad kind or an empty
 * target; the error of the file system otherwise. */
int outbox_append(outbox *ob, outbox_kind kind, const char *target,
                  json_t *payload, uint64_t *id_out);

/* The oldest pending entry of target, copied into *out; -ENOENT when there is
 * none, or when the oldest is still being written by outbox_append() (the
 * generation changes when it is done). */
int outbox_peek_next(outbox *ob, const char *target, outbox_entry *out);
/* The targets that have pending entries, ordered by their oldest entry's id.
 * *targets is a NULL-terminated array (caller frees each string and the
 * array); *n (may be NULL) gets the count. */
int outbox_targets(outbox *ob, char ***targets, size_t *n);
/* A copy of pending entry id; -ENOENT when it is not pending. */
int outbox_get(outbox *ob, uint64_t id, outbox_entry *out);

/* Before each send: uncertain = true, attempts + 1, attempted = now, on disk
 * before return,
 * so that after a crash the worker knows to check before sending again. */
int outbox_mark_uncertain(outbox *ob, uint64_t id);
/* After a transient failure: records the error and whether the request may
 * have reached Cliq (false when it certainly did not, e.g. nothing was sent).
 * Uncertain: attempted becomes now, since a request the client gave up on
 * (a timeout) may still land after the client stopped waiting. */
int outbox_note_failure(outbox *ob, uint64_t id, bool uncertain,
                        const char *error);
/* Delivered: the entry is gone (durably). */
int outbox_remove(outbox *ob, uint64_t id);
/* Refused for good: moves the entry to failed/ with the errno (positive) and
 * a one-line reason. */
int outbox_move_failed(outbox *ob, uint64_t id, int err, const char *reason);
/* Points every pending entry of `from` at `to` (a draft thread got its real
 * chat id).  Order is kept: ids do not change. */
int outbox_retarget(outbox *ob, const char *from, const char *to);

/* Copies for .cliqfs/outbox/ and .cliqfs/failed/, ordered by id.
 * Release with outbox_entry_list_free(*items, *n). */
int outbox_list(outbox *ob, outbox_entry **items, size_t *n);
int outbox_list_failed(outbox *ob, outbox_entry **items, size_t *n);
/* `rm` in .cliqfs/failed/: discards failed entry id. */
int outbox_failed_remove(outbox *ob, uint64_t id);

/* Pending entries (as listed by outbox_list). */
size_t outbox_depth(outbox *ob);
size_t outbox_failed_count(outbox *ob);

/* A counter bumped by every change (append done, remove, failure, ...): the
 * worker sleeps with outbox_wait_change() instead of polling. */
uint64_t outbox_generation(outbox *ob);
/* Waits until the generation differs from `seen`: 0, -ETIMEDOUT, or
 * -ECANCELED after outbox_shutdown().  timeout_s < 0 waits without limit. */
int outbox_wait_change(outbox *ob, uint64_t seen, double timeout_s);
/* fsync: waits until every entry of target pending at the time of the call
 * has left the journal.  0 when all were delivered; the errno of the first
 * that failed (negated) when some moved to failed/; -ETIMEDOUT; -ECANCELED. */
int outbox_wait_target_empty(outbox *ob, const char *target, double timeout_s);
/* Threads inside outbox_wait_target_empty() right now (status, tests). */
size_t outbox_fsync_waiters(outbox *ob);

#endif
