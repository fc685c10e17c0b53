/* cache/store: the domain model between fs/ and the API.  Channels, threads,
 * message logs, people lists, thread details and drafts, kept in the tcache
 * (memory and disk) with a TTL per kind of resource, fetched through the
 * client (whose gate is the governor), and updated from the answers of our
 * own writes instead of re-fetching.
 *
 * Reading modes (enum store_mode):
 *  STORE_FETCH   refresh when stale or missing (single flight; stale served
 *                when the API cannot be asked); what opendir/open use.
 *  STORE_PEEK    whatever is cached, however old; fetch only when nothing is
 *                cached.  What getattr and lookup of known names use.
 *  STORE_CACHED  never ask the API; -ENODATA when nothing is cached.
 *
 * Ownership: snapshots (store_channels, store_threads) are immutable and
 * reference counted: every *_get gives the caller one reference, released
 * with *_unref.  A store_log belongs to the store and lives until
 * store_free(); its content only grows, though an idle log's buffers may be
 * dropped from memory and loaded again from disk when next read.  Strings passed in are borrowed;
 * strings handed out with "caller frees" are malloc'd.
 * Thread-safe.
 */
#ifndef CLIQ_CACHE_STORE_H
#define CLIQ_CACHE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/cliq.h"
#include "cache/governor.h"
#include "cache/outbox.h"
#include "cache/tcache.h"

/* Default TTLs (unscaled seconds; the tcache divides them by time_scale).
 * docs/design.md "Cache" explains them. */
#define STORE_TTL_CHANNELS 300.0
#define STORE_TTL_THREADS 60.0
#define STORE_TTL_LOG 10.0
#define STORE_TTL_PEOPLE 60.0
#define STORE_TTL_MAIN 300.0
#define STORE_TTL_THREAD_INFO 300.0
#define STORE_TTL_NEGATIVE 60.0
/* Bytes of messages kept in memory by logs nobody uses (idle logs beyond it
 * are dropped from memory, least recently used first; their disk copies
 * stay): docs/design.md "Memory" under "Cache". */
#define STORE_LOG_MEMORY (16u << 20)
/* A log is followed by the refresher (kept fresh in the background) while a
 * messages file of it is open: `tail -f` holds it open.  A closed file is
 * brought up to date when it is opened again, so reading many files once
 * (grep -r) costs nothing afterwards. */

typedef struct store store;

/* Background sync (cliqfs(1) OPTIONS, sync): with budget no user is using,
 * the thread lists of every joined channel (lists, all) and every thread's
 * messages, the most recently active first (all). */
enum store_sync {
  STORE_SYNC_OFF = 0,
  STORE_SYNC_LISTS = 1,
  STORE_SYNC_ALL = 2,
};
/* "off", "lists", "all" (exactly): the mode, or -1. */
int store_sync_parse(const char *s);
const char *store_sync_name(enum store_sync mode);
/* Percent of each API's budget sync spends unless told otherwise. */
#define STORE_SYNC_SHARE 50

enum store_mode {
  STORE_FETCH = 0,
  STORE_PEEK = 1,
  STORE_CACHED = 2,
};

typedef struct store_options {
  cliq_client *client;   /* borrowed; outlives the store */
  gov *gov;              /* borrowed, may be NULL; used for freshness stretching
                            and to tell whether a write can go out soon */
  tcache *cache;         /* borrowed; outlives the store */
  int history;           /* messages taken at a log's first fetch (<= 0: 100) */
  enum store_sync sync;  /* store_start() starts the syncer unless OFF */
  int sync_share;        /* percent of each API's budget sync may spend
                            (cliqfs(1) OPTIONS, sync_share); outside 1..100: 50 */
  double time_scale;     /* <= 0 means 1 */
  double max_wait_s;     /* a read a user waits for retries a failed request
                            only within this (cliqfs(1) OPTIONS, max_wait); <= 0: 60 */
  /* Where the outbox journal lives (outbox_open); NULL: no journal, every
   * write fails with EROFS. */
  const char *state_dir;
  /* Delivery: the client's timeout (real seconds, <= 0: 30) bounds how long
   * a request may still be on its way after its outcome was lost. */
  double request_timeout_s;
  /* Called from the refresher thread (or a delivery worker) after a log
   * grew, without store locks held.  May be NULL. */
  void (*log_grew)(void *ctx, const char *chat_id);
  /* Called when a thread list or a thread's cached state changed (after a
   * refresh or our own write).  channel_id is the channel; may be NULL. */
  void (*threads_changed)(void *ctx, const char *channel_id);
  /* A draft of channel_id changed (main delivered, thread created, a
   * journaled step refused).  May be NULL. */
  void (*drafts_changed)(void *ctx, const char *channel_id);
  /* An entry was refused for good (from a delivery worker, before it moves
   * to failed/).  path is the file it was written to (may be NULL). */
  void (*write_failed)(void *ctx, const outbox_entry *e, const char *path,
                       const cliq_error *err);
  /* An answer had malformed entries, left out of what is shown (once per
   * what and reason, not at every refresh).  what names the listing or log
   * ("channel list", "threads of channel O1", "messages of CT_1"), why the
   * first entry's fault.  May be NULL. */
  void (*entries_skipped)(void *ctx, const char *what, size_t count,
                          const char *why);
  /* Deliveries wait because the state folder cannot be written (full,
   * read-only); told once until one goes through.  May be NULL. */
  void (*delivery_stalled)(void *ctx, const cliq_error *err);
  void *cb_ctx;
} store_options;

/* Takes a journal slot under opts->state_dir (outbox_open) and loads what it
 * holds; does not touch the network.  NULL with err filled on failure. */
store *store_new(const store_options *opts, cliq_error *err);
/* Stops the refresher and the delivery workers and frees everything.  Call
 * gov_shutdown() first (cache/delivery.h "Shutdown order"). */
void store_free(store *s);
/* Starts the background refresher thread.  0 or -errno. */
int store_start_refresher(store *s);
/* Starts the refresher and the delivery workers (which deliver what an
 * earlier process left in the journal first).  0 or -errno. */
int store_start(store *s);
/* Wakes the threads waiting in store_ids_wait() with -ECANCELED (unmount). */
void store_shutdown(store *s);

/* What background sync has done (.cliqfs/status).  Counts are of the last
 * completed look over the lists; times are epoch seconds, 0 when never. */
typedef struct store_sync_stats {
  enum store_sync mode;
  size_t channels;          /* joined channels whose thread list is known */
  size_t channels_total;    /* joined channels */
  size_t threads;           /* threads in those lists */
  size_t threads_synced;    /* of them, logs known and as new as their entry */
  size_t messages;          /* messages in the synced logs */
  uint64_t requests;        /* sent by the syncer so far */
  double last_full_pass;    /* when every known thread was last synced */
  double eta_s;             /* estimated seconds to done at the background
                               rate, 0 when done, -1 when unknown */
  int share;                /* percent of each API's budget sync may spend */
  unsigned char backoff[CLIQ_API_COUNT]; /* halvings of that share after
                                            unexpected locks, per API */
} store_sync_stats;

void store_sync_stats_get(store *s, store_sync_stats *out);

/* Message logs in memory (.cliqfs/status "memory"). */
typedef struct store_memory_stats {
  size_t logs;              /* logs known to this mount */
  size_t evicted;           /* of them, on disk only */
  size_t resident;          /* bytes of messages in memory */
  size_t budget;            /* STORE_LOG_MEMORY */
} store_memory_stats;

void store_memory_stats_get(store *s, store_memory_stats *out);

/* ---- Snapshots ---------------------------------------------------------- */

typedef struct store_channel {
  char *channel_id;
  char *chat_id;
  char *unique_name;
  char *name;
  int64_t last_ms;        /* last message time, 0 when unknown */
  json_t *raw;            /* the channel object as Cliq sent it (snapshot's) */
} store_channel;

typedef struct store_channels {
  size_t count;
  store_channel *items;
  int refs_;              /* private */
} store_channels;

typedef struct store_thread {
  char *chat_id;
  char *parent_chat_id;
  char *thread_message_id;
  char *title;
  bool closed;
  bool is_follower;
  int64_t last_ms;        /* 0 when unknown */
  json_t *raw;
} store_thread;

typedef struct store_threads {
  size_t count;
  store_thread *items;
  int refs_;
} store_threads;

/* The same snapshot pointer comes back until its content changes, so callers
 * may memoize work (names) per snapshot. */
int store_channels_get(store *s, enum store_mode mode, store_channels **out,
                       cliq_error *err);
void store_channels_unref(store_channels *c);
int store_threads_get(store *s, const char *channel_id, enum store_mode mode,
                      store_threads **out, cliq_error *err);
void store_threads_unref(store_threads *t);
/* Finds a thread in a snapshot by chat id; NULL when absent. */
const store_thread *store_threads_find(const store_threads *t,
                                       const char *chat_id);

/* A thread not (yet) in its channel's list, found by chat id (GET
 * /threads/{id}).  Fills *out (caller clears with store_thread_clear).
 * -ENOENT when Cliq says there is no such thread (remembered as a negative
 * entry). */
int store_thread_lookup(store *s, const char *thread_chat_id,
                        enum store_mode mode, store_thread *out,
                        cliq_error *err);
void store_thread_clear(store_thread *t);

/* ---- Documents: thread info (GET /threads/{id} pretty-printed, with a
 * trailing newline), the main message (one rendered message), the people
 * files ("user_id TAB email_id TAB name" lines) ----------------------------- */

enum store_people {
  STORE_MEMBERS = 0,
  STORE_FOLLOWERS = 1,
  STORE_NONFOLLOWERS = 2,
};

/* In two steps, so that a caller may keep renderings: the cached answer a
 * document is rendered from (*src_out, a new reference the caller
 * json_decref()s; -ENODATA in STORE_CACHED mode when nothing is cached), and
 * its rendering (caller frees *text_out).  Cached answers are never modified
 * (tcache.h), so while the source is the same pointer (held by the caller)
 * its rendering is the same text. */
enum store_doc {
  STORE_DOC_INFO = 0,
  STORE_DOC_MAIN = 1,
  STORE_DOC_MEMBERS = 2,
  STORE_DOC_FOLLOWERS = 3,
  STORE_DOC_NONFOLLOWERS = 4,
};
int store_doc_source(store *s, const char *thread_chat_id, enum store_doc doc,
                     enum store_mode mode, json_t **src_out, cliq_error *err);
int store_doc_render(enum store_doc doc, json_t *src, char **text_out,
                     size_t *len_out, cliq_error *err);

/* ---- Message logs ------------------------------------------------------- */

typedef struct store_log store_log;

enum store_log_form {
  STORE_LOG_TEXT = 0,     /* messages */
  STORE_LOG_JSONL = 1,    /* messages.jsonl */
};

/* The log of a chat (channel chat id or thread chat id).  Always returns the
 * log object (never NULL unless out of memory) in *out; the return value says
 * whether its content is known:
 *  STORE_FETCH: fetches when stale or unknown; 0, or -errno when nothing could
 *               be fetched and nothing is known (*out still set).
 *  STORE_PEEK / STORE_CACHED: loads what the disk cache holds, never fetches;
 *               0 when content is known, -ENODATA otherwise. */
int store_log_get(store *s, const char *chat_id, enum store_mode mode,
                  store_log **out, cliq_error *err);
bool store_log_known(store_log *log);
size_t store_log_size(store_log *log, enum store_log_form form);
int64_t store_log_last_ms(store_log *log);
/* Copies up to len bytes from off; returns the number copied. */
size_t store_log_read(store_log *log, enum store_log_form form, off_t off,
                      char *buf, size_t len);
/* Readers: open/close of a messages file (followed while open > 0). */
void store_log_open_reader(store_log *log);
void store_log_close_reader(store_log *log);

/* ---- Rendering (pure; unit-tested) ---------------------------------------- */

/* Appends one message as text lines ("2026-11-25T18:54:50Z Ryan West: text",
 * continuation lines start with a TAB, UTC) to *buf (realloc'd, *len and *cap
 * updated).  0 or -ENOMEM. */
/* s as `cat -v` shows it (^[ for ESC, M-^[ for a C1 control; TAB and
 * printable text, UTF-8 included, unchanged): what files of text from Cliq
 * show.  Returns a new string (caller frees) or NULL when out of memory. */
char *store_shown_text(const char *s);

int store_render_message(const cliq_message *m, char **buf, size_t *len,
                         size_t *cap);
/* "2026-11-25T18:54:50Z" for epoch milliseconds; out has at least 21 bytes. */
void store_format_time(int64_t ms, char *out, size_t outlen);
/* Appends "user_id\temail_id\tname\n"; control characters inside the
 * fields (a TAB, a line break) become spaces, so a line is one person. */
int store_render_user(const cliq_user *u, char **buf, size_t *len,
                      size_t *cap);

/* ---- Writes: through the outbox journal (cliqfs(1) WRITING) ----------
 *
 * Every write is journaled first: each function below checks what it can,
 * appends one or more entries to the outbox (cache/outbox.h; on disk and
 * fsync'd before it returns) and wakes the delivery workers
 * (cache/delivery.h), which send them with CLIQ_PRIO_WRITE, in order per
 * target, exactly once, across crashes too.  When an entry is delivered the
 * store updates its cache from Cliq's answer (a reply is appended to the log
 * with its id, a state flips, followers move, a draft becomes a thread) and
 * calls back (log_grew, threads_changed, drafts_changed); when Cliq refuses
 * one for good it moves to failed/ and write_failed is called.
 *
 * Targets (outbox_entry.target): a thread's chat id for replies, state,
 * followers and ctl; the channel id for posts to a channel; the draft's target
 * (store_draft_target) for a draft's main and first messages.
 *
 * path (may be NULL) is the file written, kept in the entry for the errors
 * line of a refusal.  ids (may be NULL) gets the ids of the entries journaled
 * (appended to what it holds).  0, or -errno with err filled: -EROFS without
 * a journal, the file system's error when the journal could not be written,
 * and the errors named per function (nothing journaled then). */

typedef struct store_ids {
  uint64_t *v;
  size_t n, cap;
} store_ids;

void store_ids_clear(store_ids *ids);
int store_ids_add(store_ids *ids, uint64_t id);

/* Posts to a channel (no thread). */
int store_post_channel(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *text,
                       const char *path, store_ids *ids, cliq_error *err);
/* Replies in a thread.  channel_id may be NULL. */
int store_reply(store *s, const char *channel_id, const char *thread_chat_id,
                const char *text, const char *path, store_ids *ids,
                cliq_error *err);
/* close = true closes, false reopens.  channel_id (may be NULL) names the
 * list whose cached copy flips when delivered. */
int store_set_state(store *s, const char *channel_id,
                    const char *thread_chat_id, bool close, const char *path,
                    store_ids *ids, cliq_error *err);

/* A channel member as a follower line names it: user id or email.  Looks in
 * the thread's followers and non-followers (together: the channel's members).
 * 0 with *user_id_out (caller frees), -EINVAL when nobody matches, -errno when
 * the lists cannot be had. */
int store_resolve_member(store *s, const char *thread_chat_id,
                         const char *id_or_email, char **user_id_out,
                         cliq_error *err);
/* user_ids are user ids (resolved).  n == 0 journals nothing. */
int store_followers_add(store *s, const char *channel_id,
                        const char *thread_chat_id,
                        const char *const *user_ids, size_t n,
                        const char *path, store_ids *ids, cliq_error *err);
int store_followers_remove(store *s, const char *channel_id,
                           const char *thread_chat_id,
                           const char *const *user_ids, size_t n,
                           const char *path, store_ids *ids, cliq_error *err);
/* Makes the followers exactly user_ids: reads the current followers (now,
 * STORE_FETCH) and journals the difference (adds, then removes). */
int store_followers_replace(store *s, const char *channel_id,
                            const char *thread_chat_id,
                            const char *const *user_ids, size_t n,
                            const char *path, store_ids *ids,
                            cliq_error *err);

/* ctl verbs: follow, unfollow, mute, unmute, leave, close, reopen.  -EINVAL
 * for anything else (checked before anything is journaled). */
bool store_ctl_verb_valid(const char *verb);
int store_ctl(store *s, const char *channel_id, const char *thread_chat_id,
              const char *verb, const char *path, store_ids *ids,
              cliq_error *err);

/* ---- Waiting for delivery ---------------------------------------------------- */

/* After a close: waits at most max_s (real seconds) for the entries to be
 * delivered, and gives up at once when they cannot be soon (their API is
 * locked or out of budget, an attempt failed and backs off).  0 when
 * delivered or still queued; -errno when one was refused for good meanwhile
 * (it is in failed/ then). */
int store_write_settle(store *s, const store_ids *ids, double max_s);
/* The entries pending now whose target is one of targets (n of them);
 * appended to *out. */
int store_pending_ids(store *s, const char *const *targets, size_t n,
                      store_ids *out);
/* The entries pending now that belong to a channel (its own posts, its
 * threads, its drafts), or every pending entry when channel_id is NULL. */
int store_pending_ids_of_channel(store *s, const char *channel_id,
                                 const char *channel_chat_id, store_ids *out);
/* Waits until none of ids is pending: 0, -ETIMEDOUT after timeout_s (< 0:
 * no limit), -ECANCELED after store_shutdown(). */
int store_ids_wait(store *s, const store_ids *ids, double timeout_s);
/* -errno of the first of ids that was refused for good (as far as this
 * process saw it), 0 when none was. */
int store_ids_failure(store *s, const store_ids *ids);

/* ---- The journal as files (.cliqfs/outbox/, .cliqfs/failed/) ------------------ */

/* Copies of the pending (failed = false) or refused entries, by id; release
 * with outbox_entry_list_free(*items, *n).  Empty without a journal. */
int store_outbox_list(store *s, bool failed, outbox_entry **items, size_t *n);
/* One entry by id; -ENOENT when it is not (or no longer) there. */
int store_outbox_get(store *s, bool failed, uint64_t id, outbox_entry *out);
/* `rm` in failed/. */
int store_failed_discard(store *s, uint64_t id);
/* What an entry's file holds (caller frees): the text of a message, the verb
 * or action, "+ID"/"-ID" lines for followers; one trailing newline. */
char *store_outbox_entry_text(const outbox_entry *e, size_t *len_out);

typedef struct store_outbox_stats {
  size_t depth;           /* pending entries */
  size_t failed;          /* entries in failed/ */
  uint64_t delivered, refused, retries, sends, checks, found;
} store_outbox_stats;

void store_outbox_stats_get(store *s, store_outbox_stats *out);
/* Who "me" is, once learnt (from the cache or a fetch that showed one of
 * our messages): *id_out and *name_out (caller frees; NULL when unknown). */
void store_self_get(store *s, char **id_out, char **name_out);

/* ---- Drafts (mkdir in a channel; kept locally, also on disk) -------------- */

typedef struct store_draft {
  char *name;               /* directory name = title */
  char *main_message_id;    /* NULL until main was delivered */
  char *main_text;          /* rendered main message, NULL until written */
  char *thread_chat_id;     /* NULL until the thread was created */
  bool main_pending;        /* main journaled, not delivered yet */
  bool create_pending;      /* the thread's creation journaled, not done yet */
} store_draft;

void store_draft_clear(store_draft *d);
/* The journal target of a draft's entries before its thread exists
 * (DELIVERY_DRAFT_PREFIX "<channel id>/<name>"); caller frees. */
char *store_draft_target(const char *channel_id, const char *name);
/* -EEXIST when a draft of that name exists. */
int store_draft_create(store *s, const char *channel_id, const char *name);
/* Fills *out (caller clears); -ENOENT when absent. */
int store_draft_get(store *s, const char *channel_id, const char *name,
                    store_draft *out);
/* Names of the channel's drafts: *names_out is a NULL-terminated array
 * (caller frees each and the array). */
int store_draft_list(store *s, const char *channel_id, char ***names_out,
                     size_t *n_out);
/* -ENOENT absent, -EPERM when the thread was already opened, -EBUSY while
 * its main or its creation waits in the journal. */
int store_draft_discard(store *s, const char *channel_id, const char *name);
/* Journals text as the thread's parent message (a post to the channel).
 * -EACCES when main was already written. */
int store_draft_post_main(store *s, const char *channel_id,
                          const char *channel_chat_id, const char *name,
                          const char *text, const char *path, store_ids *ids,
                          cliq_error *err);
/* First append: journals the thread's creation with the draft's name as
 * title and text as its first reply; later appends reply (to the draft's
 * target until the thread exists).  -EDESTADDRREQ before main. */
int store_draft_append(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *name,
                       const char *text, const char *path, store_ids *ids,
                       cliq_error *err);

#endif
