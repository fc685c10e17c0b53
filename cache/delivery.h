/* cache/delivery: the workers that empty the outbox (cliqfs(1) WRITING).
 * They take the journal's entries in order per target, send each with
 * CLIQ_PRIO_WRITE through the client (whose gate is the governor, so a locked
 * API is waited out there), retry transient failures with jittered
 * exponential backoff, move permanent refusals to failed/, and deliver every
 * message exactly once, across crashes too.  This module knows nothing of the
 * store: it reports through hooks, and the store appends entries with
 * outbox_append() and then calls delivery_kick().
 *
 * Targets and payloads (what the writer appends; payload objects may carry
 * more fields for the hooks, e.g. a channel_id, which delivery ignores):
 *   OUTBOX_REPLY          target: thread chat id.  payload: the text, as a
 *                         string or {"text": ...}.
 *   OUTBOX_CHANNEL_POST   target: channel id.  payload: {"text": ...,
 *                         "chat_id": the channel's chat id (used to check an
 *                         unknown outcome; looked up with channels.get when
 *                         absent), "channel_id": overrides the target}.  A
 *                         string payload is the text.
 *   OUTBOX_STATE          target: thread chat id.  payload: "close" or
 *                         "reopen" ("closed", "open" too), or {"action": ...}.
 *   OUTBOX_FOLLOWERS_ADD, OUTBOX_FOLLOWERS_REMOVE
 *                         target: thread chat id.  payload: an array of user
 *                         ids, or {"user_ids": [...]}.
 *   OUTBOX_CTL            target: the chat id the verb acts on.  payload: the
 *                         verb ("follow", "unfollow", "mute", "unmute",
 *                         "leave", "close", "reopen"), or {"verb": ...}.
 *   OUTBOX_CREATE_THREAD  see "Drafts".
 *
 * Drafts (mkdir "general/Release plan").  Every entry of a draft is appended
 * to one local target that begins with DELIVERY_DRAFT_PREFIX ("draft:"), for
 * example "draft:O5797000000001/Release plan", so that they stay in order:
 *   1. `main` written: OUTBOX_CHANNEL_POST to the draft target, payload
 *      {"text", "channel_id", "chat_id", "draft_main": true}.  Delivered: the
 *      message id becomes the draft's parent message (kept in the delivery
 *      record, see below) and hooks->delivered gets it.
 *   2. First append to messages: OUTBOX_CREATE_THREAD to the draft target,
 *      payload {"channel_id", "chat_id" (the channel's), "title", "text",
 *      "parent_message_id" (optional: when absent, the id from step 1)}.
 *      Delivered: the worker records the thread's chat id, then points every
 *      pending entry of the draft target at it (outbox_retarget), then calls
 *      hooks->thread_created and hooks->delivered.
 *   3. Later appends: OUTBOX_REPLY (or any thread kind) to the draft target
 *      while the store does not know the thread yet, to the thread's chat id
 *      afterwards.  Entries found on a draft target whose thread is known are
 *      retargeted before anything else is picked, so order per user is kept.
 * Nothing is ever sent to a draft target: an entry other than the two above
 * on a draft target whose thread was never created fails with EDESTADDRREQ.
 *
 * Exactly once.  Every entry is marked uncertain (fsync'd) before it is sent.
 * When the outcome is unknown (the connection failed or timed out after the
 * request may have left, or an entry is found uncertain at start-up) the
 * worker sends nothing more to that target until settle_s after that attempt
 * ended (outbox_entry.attempted), so that a request still on its way has landed,
 * then checks before sending again:
 *   reply / channel post: the chat's messages from a little before the
 *     entry's creation (chats.messages, write lane, paged) for one with the
 *     same text, from us when we know who we are, that is not a message we
 *     recorded for another entry and not older than our last recorded
 *     message of that target;
 *   create_thread: the parent message's thread_information (messages.get);
 *   state, followers, follow/unfollow: these are sent again as they are
 *     idempotent; a refusal after an uncertain attempt is checked against
 *     the thread (threads.get, followers.get) and counts as delivered when
 *     the effect is there (a refused `leave` after an uncertain one too).
 * The delivery record, outbox_dir()/.delivery.json (written atomically, before
 * an entry leaves the journal), keeps per target the last message ids we
 * delivered (with their entries), the newest of their times, a draft's parent
 * message and thread, and our own user id, learnt from the sender of a
 * message we posted (from the messages a check fetched, or one messages.get
 * on the background lane after the first post whose id came back).
 * The record belongs to the outbox slot (outbox.h "Slots"): each mount of
 * an account has its own, written by the one process that holds the slot,
 * and it goes with the slot's entries to the next holder after a crash.  A
 * check also skips the messages that the records of the other slots list
 * for that target (the other mounts' deliveries, same user), and takes our
 * user id from them while we do not know it.
 * Limits: without our user id a message with the same text from someone
 * else in that window counts as ours; a 2xx without a message id records
 * nothing to exclude; two mounts that both lose the outcome of the same
 * text to the same target at the same time may both take one message for
 * theirs.
 *
 * Parallelism: `workers` threads; each takes a target no other worker holds
 * (order per target) whose next entry's API class no other worker is using,
 * oldest first; so a locked API holds back only its own entries.
 * Transient failures (EIO, ETIMEDOUT, EAGAIN, 5xx, an expired or refused
 * token) back the target off for backoff_min_s * 2^(n-1) (capped at
 * backoff_max_s), randomized down to half, divided by time_scale; other
 * targets go on meanwhile.  Permanent refusals (EACCES other than a token
 * problem -- e.g. a closed thread --, ENOENT, EINVAL, EMSGSIZE, EILSEQ,
 * EPERM, EDESTADDRREQ) call hooks->failed and move the entry to failed/; the
 * next entry of that target goes on.
 *
 * Hooks are called from worker threads, without delivery locks held, before
 * the entry leaves the journal (so a thread in outbox_wait_target_empty()
 * sees the store's cache updated when it returns).  After a crash at the
 * wrong instant a hook may be called a second time for the same entry id.
 *
 * Shutdown order (unmount): gov_shutdown() (wakes a worker waiting in the
 * governor for a locked API: its request is not sent and the entry stays),
 * delivery_stop() (joins: at most one HTTP request per worker is finished,
 * bounded by the client's timeout), delivery_free(), then the client, the
 * governor and the outbox.  Without gov_shutdown() first, delivery_stop()
 * waits until the governor grants the waiting workers their slots.
 *
 * Ownership: ob and client are borrowed and must outlive the delivery;
 * hooks and options are copied.  Functions return 0 or -errno.  Thread-safe.
 */
#ifndef CLIQ_CACHE_DELIVERY_H
#define CLIQ_CACHE_DELIVERY_H

#include <stdint.h>

#include "api/cliq.h"
#include "cache/outbox.h"

#define DELIVERY_DRAFT_PREFIX "draft:"

typedef struct delivery_hooks {
  /* Delivered.  message_id: the new message (normalised "<ms>_<n>") for
   * reply, channel post and create_thread (the thread's first reply), NULL
   * when Cliq did not say or for the other kinds.  May be NULL. */
  void (*delivered)(void *ctx, const outbox_entry *e, const char *message_id);
  /* create_thread only, before delivered: the new thread's chat id.  Pending
   * entries of the draft target already point at it.  May be NULL. */
  void (*thread_created)(void *ctx, const outbox_entry *e,
                         const char *thread_chat_id);
  /* Refused for good (err->err is the errno, err->message the reason); the
   * entry moves to failed/ right after.  May be NULL. */
  void (*failed)(void *ctx, const outbox_entry *e, const cliq_error *err);
  /* The state folder cannot be written (full, read-only): e waits in the
   * journal and is tried again; nothing is lost or sent twice.  Called once
   * when deliveries start waiting for that reason, again only after one
   * went through.  May be NULL. */
  void (*stalled)(void *ctx, const outbox_entry *e, const cliq_error *err);
  void *ctx;
} delivery_hooks;

typedef struct delivery_options {
  double time_scale;     /* divides the backoff; <= 0 means 1 */
  double backoff_min_s;  /* first retry after at most this (unscaled); <= 0: 2 */
  double backoff_max_s;  /* backoff cap (unscaled); <= 0: 300 */
  int workers;           /* threads; <= 0: 4 */
  double poll_s;         /* idle workers look at the journal this often even
                            without delivery_kick() (real seconds); <= 0: 1 */
  double settle_s;       /* an unknown outcome is checked no sooner than this
                            after its attempt (real seconds, not scaled), so
                            that a request still on its way (a crash while
                            it was in flight) has landed; about the client's
                            timeout; <= 0: 30 */
} delivery_options;

typedef struct delivery delivery;

/* Loads the delivery record from the outbox folder.  NULL on allocation
 * failure.  hooks and opts may be NULL. */
delivery *delivery_new(outbox *ob, cliq_client *client,
                       const delivery_hooks *hooks,
                       const delivery_options *opts);
/* Stops (see delivery_stop) and frees. */
void delivery_free(delivery *d);

/* Starts the workers (once).  0, -EALREADY, or the error of pthread_create. */
int delivery_start(delivery *d);
/* Stops the workers and joins them; entries not delivered stay in the
 * journal.  See "Shutdown order" above.  Safe to call twice. */
void delivery_stop(delivery *d);
/* An entry was appended: wakes an idle worker now rather than at the next
 * poll. */
void delivery_kick(delivery *d);

typedef struct delivery_stats {
  uint64_t delivered;     /* entries that left the journal delivered */
  uint64_t failed;        /* entries moved to failed/ */
  uint64_t retries;       /* transient failures */
  uint64_t checks;        /* unknown outcomes checked before sending again */
  uint64_t found;         /* ... of which found delivered */
  uint64_t sends;         /* requests started for entries */
} delivery_stats;

void delivery_get_stats(delivery *d, delivery_stats *out);

/* Our user id as learnt (caller frees), NULL while unknown. */
char *delivery_self_id(delivery *d);

/* Tells the worker our user id when someone else learnt it (the store does,
 * from the first message it posts), so that it does not ask Cliq again.
 * Persisted with the record; a no-op once known. */
void delivery_learn_self(delivery *d, const char *user_id);

/* The API class a journal entry's request uses (its rate budget). */
enum cliq_api delivery_entry_api(const outbox_entry *e);

#endif
