/* cache/delivery_i.h: what the files of delivery share (delivery.c,
 * delivery_send.c, delivery_record.c, delivery_outcome.c). Private: nothing
 * outside cache/ includes it; the interface is cache/delivery.h. */
#ifndef CLIQ_CACHE_DELIVERY_I_H
#define CLIQ_CACHE_DELIVERY_I_H

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/delivery.h"
#include "cache/verbs.h"
#include "cache/statefile.h"

/* The workers share one scheduler under d->mu: a target is held by at most one
 * worker (order per target) and an API class by at most one worker (a locked
 * API holds one worker, not all of them).  Everything that talks to Cliq or
 * to the disk runs without d->mu, except outbox_retarget(), which must not
 * race with a scan that would pick the thread's newer entries first. */

/* ---- Vocabulary ---------------------------------------------------------- */

#define RECORD_FILE ".delivery.json"
/* Message ids kept per target to tell our earlier messages from the one a
 * check looks for. */
#define RECORD_IDS 8
/* Targets kept in the record (least recently used go first, never one with
 * pending entries). */
#define RECORD_MAX_TARGETS 256
#define RECORD_KEEP_S (7.0 * 86400.0)
/* A check looks this far before the entry's creation: the clocks of this
 * machine and of Cliq may differ by that much (real time, not scaled). */
#define CHECK_SLACK_MS 120000
#define CHECK_PAGE 100
#define CHECK_MAX_PAGES 10

enum outcome {
  O_DELIVERED,
  O_FAILED,
  O_RETRY,   /* transient failure: back off */
  O_LATER,   /* not yet (job.later_s): no failure */
};

struct rec_id {
  uint64_t entry;
  char *message;
};

struct record {
  char *target;
  struct rec_id ids[RECORD_IDS];  /* oldest first */
  size_t nids;
  int64_t last_ms;     /* newest time of a message we delivered here */
  char *main;          /* draft: the parent message posted from `main` */
  char *thread;        /* draft: the thread created from it */
  double at;           /* last change, epoch seconds */
};

struct tstate {
  char *target;
  bool busy;
  int failures;        /* transient failures in a row */
  double not_before;   /* monotonic seconds */
};

struct job {
  outbox_entry e;
  char *target;        /* the tstate it holds */
  enum cliq_api api;
  double later_s;      /* O_LATER: come back after this */
};

struct delivery {
  outbox *ob;
  cliq_client *client;
  delivery_hooks hooks;
  double scale, backoff_min, backoff_max, poll, settle;
  int nworkers;

  pthread_mutex_t mu;
  pthread_cond_t cond;          /* CLOCK_MONOTONIC */
  bool stopping, started;
  pthread_t *threads;
  int nthreads;
  struct tstate **ts;
  size_t nts, capts;
  bool api_busy[CLIQ_API_COUNT];
  delivery_stats stats;
  unsigned rng;
  bool stall_told;              /* hooks.stalled called since the last delivery */

  /* The delivery record (under mu; written under persist_mu). */
  struct record *recs;
  size_t nrecs, caprecs;
  char *self_id;
  char *probe_chat;     /* a message we posted, to learn self_id from when */
  char *probe_msg;      /* a lost outcome needs it (see learn_self_from_post) */
  char *record_path;
  pthread_mutex_t persist_mu;
};

#define CTL_VERB_ENUM(word, constant, api) V_##constant,
enum verb { V_NONE, CLIQ_CTL_VERBS(CTL_VERB_ENUM) };

struct op {
  const char *text;
  const char *channel_id;
  char *chat_id;          /* the channel's chat id (owned), NULL until known */
  const char *title;
  char *parent;           /* create_thread's parent message (owned) */
  bool draft_main;
  enum verb verb;
  const char **ids;       /* followers (strings borrowed from the payload) */
  size_t nids;
};

/* What the other mounts of this account (the other outbox slots) recorded:
 * the messages they delivered to `target`, and our user id when we do not
 * know it yet.  Read from their records at the time of a check (checks are
 * rare), so that a message another mount sent with the same text is not
 * taken for ours.  Best effort: an unreadable record is skipped. */
struct foreign {
  char **ids;
  size_t n, cap;
  char *self;
};

struct sent {
  char *message_id;      /* normalised, owned; NULL when unknown */
  char *thread_chat_id;  /* create_thread */
  int64_t time_ms;       /* 0 = from the id */
};

/* ---- Shared by the files of this module -------------------------------------- */


bool is_draft(const char *target);

bool is_post_kind(outbox_kind k);

const char *field_str(json_t *payload, const char *key);

/* "<ms>_<n>" -> ms; 0 when the id does not start with a time. */
int64_t ms_of_id(const char *id);

/* Texts compare without the white space at either end (Cliq may trim). */
bool same_text(const char *a, const char *b);

enum cliq_api delivery_entry_api(const outbox_entry *e);

void op_clear(struct op *op);

struct record *record_find_locked(delivery *d, const char *target);

/* The draft record behind a create_thread entry: its own target's, or,
 * once the entry was moved to the thread (a crash before it left the
 * journal), the draft whose thread that is. */
struct record *draft_record_locked(delivery *d, const char *target);

struct record *record_get_locked(delivery *d, const char *target);

void record_clear(struct record *r);

int record_push_id(struct record *r, uint64_t entry, const char *mid);

int set_str(char **slot, const char *value);

/* Writes the record durably; 0 or -errno. */
int record_persist(delivery *d);

/* A record that cannot be read is started afresh: it only narrows checks. */
void record_load(delivery *d);

/* The message recorded for entry `entry` under target (caller frees), or
 * NULL. */
char *record_message_of(delivery *d, const char *target, uint64_t entry);

void learn_self(delivery *d, const char *sender);

void foreign_clear(struct foreign *f);

void foreign_load(delivery *d, const char *target, struct foreign *f);

bool foreign_has(const struct foreign *f, const char *mid);

/* Refused for good: sending it again cannot help. */
bool is_permanent(delivery *d, const cliq_error *err);

/* Reads what the entry asks for; -EINVAL (permanent) when the payload does
 * not say it. */
int op_prepare(delivery *d, const outbox_entry *e, struct op *op,
                      cliq_error *err);

/* The channel's chat id, asked from Cliq when the payload did not carry it. */
int op_chat_id(delivery *d, struct op *op, cliq_error *err);

void sent_clear(struct sent *s);

int op_send(delivery *d, const outbox_entry *e, struct op *op,
                   struct sent *out, cliq_error *err);

struct tstate *tstate_get_locked(delivery *d, const char *target);

enum outcome process(delivery *d, const outbox_entry *e,
                            double *later_s);

#endif
