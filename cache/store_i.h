/* cache/store_i.h: what the files of the store share (the cache/store_ files).
 * Private: nothing outside cache/ includes it; everyone else uses
 * cache/store.h, which says who owns what.  docs/design.md "Cache" tells
 * the story.
 */
#ifndef CLIQ_CACHE_STORE_I_H
#define CLIQ_CACHE_STORE_I_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cache/store.h"
#include "cache/patience.h"
#include "cache/delivery.h"
#include "cache/idset.h"
#include "cache/statefile.h"

/* ---- Vocabulary ---------------------------------------------------------- */

struct smap_entry {
  char *key;
  void *value;
  struct smap_entry *next;
};

struct smap {
  struct smap_entry **buckets;
  size_t n_buckets;
  size_t count;
};

struct threads_slot {
  json_t *src;              /* the JSON the snapshot was built from */
  store_threads *snap;
  double poll_retry_at;     /* refresher: no list poll before (after a no) */
};

/* What the refresher knows of a followed chat (refresher thread only). */
struct follow_info {
  char *channel_id;         /* a thread's channel; NULL: a channel's own chat
                             * or not known (then it is polled directly) */
  bool resolved;
  int64_t chased_ms;        /* the newest last-message time of a thread list
                             * that a fetch of this chat already answered */
  int64_t list_ms;          /* the last-message time the list showed last */
  int64_t trying_ms;        /* the value being chased, and how many fetches */
  int tries;                /* it took so far */
  /* A thread's parent message (its list entry tells it): the one-message
   * endpoint counts the thread's messages there (follow_probe). */
  char *parent_chat_id;
  char *parent_msg_id;
  bool probed;              /* probe_count and probe_log_count are known: */
  int64_t probe_count;      /* the count the last probe saw, */
  size_t probe_log_count;   /* and the log's messages then */
  double checked_at;        /* real time of the last check by a probe or a
                             * fetch of the refresher (follow_age) */
  double listed_at;         /* real time its channel's list was fetched */
  bool probe_fetched;       /* a probe fetched it since its list entry moved */
  bool fetch_due;           /* a probe saw it move; not fetched yet */
};
struct store_log {
  store *s;
  char *chat_id;
  char *key;
  pthread_mutex_t lock;
  bool known;
  bool disk_tried;
  idset ids;                /* refs: offsets of the lines in jsonl */
  char *text;
  size_t text_len, text_cap;
  char *jsonl;              /* the messages, one JSON line each, in log order:
                             * kept instead of parsed objects (~10x smaller) */
  size_t jsonl_len, jsonl_cap;
  int64_t cursor_ms;        /* newest time among messages the server sent */
  int64_t last_ms;          /* newest time of any message in the log */
  /* The disk copy of jsonl, beside the tcache's record of the log (which
   * holds only what follows, not the messages): the first disk_len bytes of
   * jsonl are in the file at disk_path (or queued for it: the cache's
   * writer appends them, so that no reader waits for the disk), their
   * CRC-32 is disk_sum (zlib's crc32, which goes on from a sum, as the copy
   * grows), and disk_cursor_ms was the cursor when they were all there.
   * disk_queued counts the appends not written yet; disk_failed tells that
   * one failed (the copy is written anew at the next persist).  Both are
   * atomics, changed by the writer without the lock. */
  char *disk_path;          /* NULL: no disk copy */
  size_t disk_len;
  uint64_t disk_sum;
  int64_t disk_cursor_ms;
  int disk_queued;
  bool disk_failed;
  double fetched_at;        /* wall time of the last fetch attempt's end */
  double next_try_at;       /* refresher: not before (after failures) */
  bool wanted;              /* served stale to a reader: refresher fetches it */
  int readers;
  /* Memory bound (cache/store_memory.c): an idle log's messages may be
   * dropped from memory while its disk copy holds them all (evicted); what
   * stat needs is kept, and any read or fetch loads the disk copy again. */
  bool evicted;
  size_t kept_text_len, kept_jsonl_len, kept_count;
  double used_at;           /* CLOCK_MONOTONIC of the last use */
  int busy;                 /* fetches under way */
};

/* Refusals remembered for store_ids_failure() (fsync after the fact). */
#define STORE_FAILURES 1024
struct store {
  cliq_client *client;
  gov *gov;
  tcache *cache;
  int history;
  double scale;
  double max_wait_s;
  void (*log_grew)(void *ctx, const char *chat_id);
  void (*threads_changed)(void *ctx, const char *channel_id);
  void (*drafts_changed)(void *ctx, const char *channel_id);
  void (*write_failed)(void *ctx, const outbox_entry *e, const char *path,
                       const cliq_error *err);
  void (*entries_skipped)(void *ctx, const char *what, size_t count,
                          const char *why);
  void (*delivery_stalled)(void *ctx, const cliq_error *err);
  void *cb_ctx;

  outbox *ob;               /* NULL: no journal */
  delivery *dl;
  pthread_mutex_t fail_lock;
  struct { uint64_t id; int err; } failures[STORE_FAILURES];
  size_t failures_next;
  uint64_t refused;

  pthread_mutex_t lock;     /* guards everything below */
  json_t *channels_src;
  store_channels *channels;
  struct smap threads;      /* channel_id -> struct threads_slot */
  struct smap logs;         /* chat_id -> store_log */
  struct smap follow;       /* chat_id -> struct follow_info (refresher) */
  struct smap skips;        /* what -> reason last reported (entries_skipped) */
  json_t *drafts;           /* channel_id -> {name -> draft object} */
  char *self_id;
  char *self_name;
  bool self_loaded;
  char *probe_chat;         /* our first post while self_id is unknown: the */
  char *probe_msg;          /* next fetch of that chat tells who we are */

  pthread_t refresher;
  bool refresher_running;
  enum store_sync sync;
  int sync_share;             /* percent, 1..100 */
  double probe_next_at[2];  /* refresher: when the next probe may go (per
                             * probing API, follow_probe), */
  double list_next_at;      /* the next poll of a followed list, */
  double poll_next_at;      /* and the next fetch of a listed one (follow_poll) */
  size_t followed;          /* logs the refresher followed in its last round
                             * (atomic): sync leaves them a slot */
  /* Fetches a user waits for (any lane but background) under way, and when
   * the last one ended (CLOCK_MONOTONIC s); atomics: sync steps aside. */
  int user_fetches;
  double user_fetch_end;
  pthread_t syncer;
  bool syncer_running;
  store_sync_stats sync_stats;
  bool stopping;
  pthread_cond_t wake;
};

struct fetch_ctx {
  store *s;
  const char *arg;           /* channel id, chat id, thread chat id */
  enum cliq_priority prio;
  int which;                 /* for people lists */
  store_log *log;
  bool fetched;              /* the fetch function ran */
  bool grew;                 /* a log got new messages */
  tcache_fetch_fn inner;     /* what fetch_retrying() calls */
  enum cliq_api api;         /* the API class it asks */
};

/* Messages on their way into a log: both lines rendered into the batch's
 * buffers as they come (the parsed messages are dropped page by page),
 * de-duplicated by id, then sorted or kept in the given order. */
struct log_batch_item {
  int64_t time_ms;
  uint64_t hash;            /* idset_hash() of the id */
  size_t id_off;            /* in ids, NUL-terminated */
  size_t jsonl_off, jsonl_len;
  size_t text_off, text_len;
  bool dup;                 /* in the log already */
};

struct log_batch {
  struct log_batch_item *items;
  size_t count, cap;
  char *ids, *jsonl, *text;
  size_t ids_len, ids_cap, jsonl_len, jsonl_cap, text_len, text_cap;
  idset seen;               /* refs: indexes into items */
};

/* A log's disk copy as loaded: the file's first len bytes. */
struct disk_copy {
  char *buf;
  size_t len;
  uint64_t sum;
  bool present;
};

/* A followed chat in one round of the refresher. */
struct followed {
  store_log *log;
  struct follow_info *fi;
  bool by_list;               /* watched through its channel's thread list */
};

struct sender_of {
  store_log *log;
  char *id, *name;
};

struct state_edit {
  const char *tid;
  const char *state;     /* "open"/"closed" or NULL */
  int follower;          /* -1 unchanged, 0/1 */
};

struct new_thread {
  json_t *thread;
};

struct targets_arg {
  const char *const *targets;
  size_t n;
};

struct channel_arg {
  const char *channel_id;
  const char *chat_id;
};

/* ---- Functions shared by the files of the store ---------------------------- */


void clear_err(cliq_error *err);

char *xstrdup(const char *s);

int buf_append(char **buf, size_t *len, size_t *cap, const char *data,
                      size_t n);

int buf_append_str(char **buf, size_t *len, size_t *cap, const char *s);

int buf_append_field(char **buf, size_t *len, size_t *cap,
                            const char *s);

/* Text as `cat -v` shows it: a control character becomes ^X (^[ for ESC,
 * ^M for CR, ^? for DEL, ^@ for NUL), a C1 control M-^X; TAB and every
 * printable character, UTF-8 included, stay.  So text from Cliq cannot
 * move a reader's cursor, set its title or write its clipboard. */
int buf_append_shown(char **buf, size_t *len, size_t *cap,
                            const char *data, size_t n);

void *smap_get(struct smap *m, const char *key);

int smap_put(struct smap *m, const char *key, void *value);

void smap_free(struct smap *m, void (*free_value)(void *));

double ttl_for(store *s, double ttl, enum cliq_api api);

/* How often the syncer wakes: a quarter of a log's freshness window, from
 * 50 ms to 1 s (real seconds). */
double store_tick(store *s);
/* How often the refresher wakes: every (scaled) second, so
 * that the delay a followed file adds to a new message is the same second
 * whatever the time scale (50 ms at least). */
double store_follow_tick(store *s);

void on_delivered(void *ctx, const outbox_entry *e,
                         const char *message_id);

void on_thread_created(void *ctx, const outbox_entry *e,
                              const char *thread_chat_id);

void on_failed(void *ctx, const outbox_entry *e, const cliq_error *err);

void store_channels_unref(store_channels *c);

void store_threads_unref(store_threads *t);

void log_free(void *p);

bool api_free_now(store *s, enum cliq_api api);


/* A read a user waits for (CLIQ_PRIO_READ) is asked again up to
 * READ_RETRIES times after a 5xx or a dropped connection, after a short,
 * jittered backoff (scaled by time_scale), as long as that stays within
 * max_wait; cliqfs(1) ERRORS: Cliq 5xx after retries is then EIO. */
int fetch_retrying(void *vctx, const char *key, json_t **out,
                          cliq_error *err);

/* Reads a key in the given mode.  *out gets a new reference. */
int cached_fetch(store *s, const char *key, double ttl,
                        enum cliq_api api, enum store_mode mode,
                        tcache_fetch_fn fn, struct fetch_ctx *ctx, json_t **out,
                        cliq_error *err);

/* Made on every cached read: no printf. */
char *make_key(const char *kind, const char *id);

/* Tells the fs of entries left out of an answer, once per what and reason. */
void report_skipped(store *s, const char *what, size_t count,
                           const char *why);

int store_channels_get(store *s, enum store_mode mode, store_channels **out,
                       cliq_error *err);
/* The same in a given lane (the syncer asks in CLIQ_PRIO_BACKGROUND). */
int channels_get(store *s, enum store_mode mode, enum cliq_priority prio,
                 store_channels **out, cliq_error *err);

int thread_from_cliq(cliq_thread *t, store_thread *d);

/* A poll of a channel's thread list in a lane that never waits (the
 * refresher and the syncer ask in CLIQ_PRIO_BACKGROUND): Cliq is asked only
 * when the list is older than max_age_s (unscaled; < 0: its TTL).  Returns the (referenced) snapshot, or NULL when nothing is known;
 * *failed says the poll was refused or failed (a stale snapshot may still
 * come). */
/* Real seconds since a channel's thread list was fetched; -1 when nothing
 * is cached. */
double threads_age(store *s, const char *channel_id);
store_threads *threads_poll(store *s, const char *channel_id,
                            double max_age_s, enum cliq_priority prio,
                            bool *failed);

const store_thread *store_threads_find(const store_threads *t,
                                       const char *chat_id);

/* Applies edit() to a copy of the cached thread list of channel_id and puts
 * it back (keeping what the server said otherwise). */
void edit_cached_threads(store *s, const char *channel_id,
                                void (*edit)(json_t *arr, void *arg), void *arg);

int render_message_json(json_t *raw, char **text_out, size_t *len_out,
                               cliq_error *err);

int people_json(store *s, const char *tid, enum store_people which,
                       enum store_mode mode, json_t **out, cliq_error *err);

const char *jstr(json_t *o, const char *k);

void store_format_time(int64_t ms, char *out, size_t outlen);

int store_render_message(const cliq_message *m, char **buf, size_t *len,
                         size_t *cap);

/* Whether the JSONL line at offset off of the log is message id's (lock
 * held).  Runs only when the hashes match: parsing one line is cheap. */
/* Parses the log's JSONL line at off (lock held): 0 with *m filled (the
 * caller clears it), or -1. */
int log_line_message(const store_log *log, uint64_t off, cliq_message *m);

/* Appends one parsed message to the log (lock held).  Returns 1 when added,
 * 0 when its id was already there, -ENOMEM. */
int log_append_locked(store_log *log, const cliq_message *m,
                             bool from_server);

/* Brings the disk copy of the JSONL up to date, queuing for the cache's
 * writer only what it lacks (the log is append-only), and returns the log's
 * record for the tcache: the cursor and the length and checksum of the disk
 * copy, not the messages (lock held).  The record is put after the append,
 * so it lands after the bytes it tells of.  When an append fails, the next
 * call writes the copy anew; until then, and should the daemon stop first,
 * the record's checksum tells the torn copy, which is fetched again. */
json_t *log_persistent_locked(store_log *log);

bool self_probe_pending(store *s, const char *chat_id);

void self_probe_drop(store *s, const char *chat_id);

void self_spot(store *s, const char *chat_id, const cliq_message *msgs,
                      size_t n);

int log_refresh(store *s, store_log *log, enum cliq_priority prio,
                       double max_age_s, cliq_error *err);

char *channel_of_thread(store *s, const char *tid);

int store_start_refresher(store *s);

/* A document's cache key kind ("tinfo", "main", "members", ...) and API;
 * the document of a people list. */
const char *doc_key_kind(enum store_doc doc);
enum cliq_api doc_api(enum store_doc doc);
enum store_doc people_doc(enum store_people which);
/* Fetches a document in the background lane (the syncer). */
int doc_fetch_background(store *s, const char *tid, enum store_doc doc,
                         cliq_error *err);

/* The thread list shows no message newer than the log has: the log counts
 * as fetched now, for ttl_s (unscaled) more, without a request. */
void log_confirm(store *s, store_log *log, double ttl_s);

/* The log object of a chat, made when missing (nothing loaded); NULL when
 * out of memory. */
store_log *log_for(store *s, const char *chat_id);
/* Every log object of the store (s->lock held); caller frees the array, NULL
 * when out of memory.  The pointers stay valid without the lock: logs live
 * until store_free, which stops the background threads first. */
store_log **logs_all_locked(store *s, size_t *n);
/* Loads the log's disk copy when nothing is known of it yet (once, unless
 * again). */
void log_try_disk(store *s, store_log *log, bool again);

/* The log of a chat for a background look (the syncer): its disk copy is
 * loaded the first time only, and the look does not count as a use, so an
 * idle log stays idle (may be evicted).  NULL when out of memory. */
store_log *log_peek(store *s, const char *chat_id);
/* Whether a log's content is known: in memory, or evicted to its disk copy
 * (lock held). */
static inline bool log_has_content_locked(const store_log *log)
{
  return log->known || log->evicted;
}
/* Loads an evicted log's messages from its disk copy (a no-op otherwise). */
void log_load_evicted(store *s, store_log *log);
/* Evicts the least recently used idle logs among all[0..n) (every log, from
 * logs_all_locked) until their resident messages take at most budget bytes
 * (the refresher calls it every round). */
void store_logs_trim(store_log *const *all, size_t n, size_t budget);

/* Starts the syncer thread (cache/store_sync.c); the caller stops it by
 * setting stopping and joining syncer. */
int store_start_syncer(store *s);

/* ---- who "me" is, our own messages (cache/store_self.c) ---- */
void self_load(store *s);

/* The message we just posted, as Cliq would list it, built locally once we
 * know who we are.  Until then (a fresh account) NULL, with no request: the
 * post becomes the probe, the next fetch of its chat (at once, see
 * self_probe_pending) brings it and tells who we are (self_spot). */
json_t *own_message(store *s, const char *chat_id, const char *msg_id,
                           const char *text);

/* Appends our own message to a known log and persists it. */
void log_append_own(store *s, const char *chat_id, json_t *raw);

void edit_thread_in_list(json_t *arr, void *arg);

void edit_thread_info(store *s, const struct state_edit *e);

void mark_closed(store *s, const char *tid);

json_t *find_user(json_t *arr, const char *id_or_email);

bool id_in(const char *id, const char *const *ids, size_t n);

/* Moves users between the cached followers and non-followers lists. */
void move_people(store *s, const char *tid, const char *const *ids,
                        size_t n, bool to_followers);

bool store_ctl_verb_valid(const char *verb);

void forget_people(store *s, const char *tid);

void drafts_persist_locked(store *s, const char *channel_id);

/* The draft object (borrowed, lock held), NULL when absent. */
json_t *draft_obj_locked(store *s, const char *channel_id,
                                const char *name);

void store_draft_clear(store_draft *d);

char *opt_str(json_t *o, const char *k);

char *store_draft_target(const char *channel_id, const char *name);

/* A draft's main as the file shows it before Cliq has it. */
char *pending_main_text(const char *text);

int store_draft_get(store *s, const char *channel_id, const char *name,
                    store_draft *out);

/* Sets (value != NULL) or removes fields of a draft and persists it. */
int draft_update(store *s, const char *channel_id, const char *name,
                        const char *const *fields, json_t *const *values,
                        size_t n);

void draft_changed(store *s, const char *channel_id);

const char *payload_text(json_t *p);

const char *payload_field(json_t *p, const char *k);

const char *payload_verb(const outbox_entry *e);

#endif
