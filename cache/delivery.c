/* The workers share one scheduler under d->mu: a target is held by at most one
 * worker (order per target) and an API class by at most one worker (a locked
 * API holds one worker, not all of them).  Everything that talks to Cliq or
 * to the disk runs without d->mu, except outbox_retarget(), which must not
 * race with a scan that would pick the thread's newer entries first. */
#include "cache/delivery.h"
#include "cache/verbs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/statefile.h"

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

/* ---- small helpers ----------------------------------------------------- */

static double now_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_draft(const char *target)
{
  return strncmp(target, DELIVERY_DRAFT_PREFIX,
                 strlen(DELIVERY_DRAFT_PREFIX)) == 0;
}

static bool is_post_kind(outbox_kind k)
{
  return k == OUTBOX_REPLY || k == OUTBOX_CHANNEL_POST ||
         k == OUTBOX_CREATE_THREAD;
}

static const char *payload_str(json_t *payload, const char *key)
{
  json_t *v = json_is_string(payload) ? payload : json_object_get(payload, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *field_str(json_t *payload, const char *key)
{
  json_t *v = json_object_get(payload, key);
  return json_is_string(v) && json_string_length(v) ? json_string_value(v)
                                                     : NULL;
}

/* "<ms>_<n>" -> ms; 0 when the id does not start with a time. */
static int64_t ms_of_id(const char *id)
{
  if (!id)
    return 0;
  char *end = NULL;
  long long ms = strtoll(id, &end, 10);
  return end && end != id && ms > 0 ? (int64_t)ms : 0;
}

/* Texts compare without the white space at either end (Cliq may trim). */
static bool same_text(const char *a, const char *b)
{
  if (!a || !b)
    return false;
  static const char ws[] = " \t\r\n";
  a += strspn(a, ws);
  b += strspn(b, ws);
  size_t la = strlen(a), lb = strlen(b);
  while (la && strchr(ws, a[la - 1]))
    la--;
  while (lb && strchr(ws, b[lb - 1]))
    lb--;
  return la == lb && memcmp(a, b, la) == 0;
}

/* ---- what an entry asks for ---------------------------------------------- */

#define CTL_VERB_ENUM(word, constant, api) V_##constant,
enum verb { V_NONE, CLIQ_CTL_VERBS(CTL_VERB_ENUM) };

static enum verb verb_of(const char *s)
{
  if (!s)
    return V_NONE;
#define CTL_VERB_ROW(word, constant, api) {#word, V_##constant},
  static const struct {
    const char *name;
    enum verb v;
  } table[] = {
      CLIQ_CTL_VERBS(CTL_VERB_ROW)
      /* the state file's words for the same changes */
      {"closed", V_CLOSE}, {"open", V_REOPEN},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (strcmp(table[i].name, s) == 0)
      return table[i].v;
  return V_NONE;
}

static enum verb entry_verb(const outbox_entry *e)
{
  if (e->kind == OUTBOX_STATE) {
    enum verb v = verb_of(payload_str(e->payload, "action"));
    return v == V_CLOSE || v == V_REOPEN ? v : V_NONE;
  }
  if (e->kind == OUTBOX_CTL)
    return verb_of(payload_str(e->payload, "verb"));
  return V_NONE;
}

enum cliq_api delivery_entry_api(const outbox_entry *e)
{
  switch (e->kind) {
  case OUTBOX_FOLLOWERS_ADD:
    return CLIQ_API_FOLLOWERS_ADD;
  case OUTBOX_FOLLOWERS_REMOVE:
    return CLIQ_API_FOLLOWERS_REMOVE;
  case OUTBOX_STATE:
  case OUTBOX_CTL:
    switch (entry_verb(e)) {
#define CTL_VERB_API(word, constant, api) \
    case V_##constant:                    \
      return api;
      CLIQ_CTL_VERBS(CTL_VERB_API)
    default:
      return CLIQ_API_THREADS_UPDATE;
    }
  default:
    return CLIQ_API_MESSAGES_POST;
  }
}

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

static void op_clear(struct op *op)
{
  free(op->chat_id);
  free(op->parent);
  free(op->ids);
  memset(op, 0, sizeof(*op));
}

/* ---- the delivery record --------------------------------------------------- */

static struct record *record_find_locked(delivery *d, const char *target)
{
  for (size_t i = 0; i < d->nrecs; i++)
    if (strcmp(d->recs[i].target, target) == 0)
      return &d->recs[i];
  return NULL;
}

/* The draft record behind a create_thread entry: its own target's, or,
 * once the entry was moved to the thread (a crash before it left the
 * journal), the draft whose thread that is. */
static struct record *draft_record_locked(delivery *d, const char *target)
{
  struct record *r = record_find_locked(d, target);
  if (r && (r->main || r->thread))
    return r;
  for (size_t i = 0; i < d->nrecs; i++)
    if (d->recs[i].thread && strcmp(d->recs[i].thread, target) == 0)
      return &d->recs[i];
  return r;
}

static struct record *record_get_locked(delivery *d, const char *target)
{
  struct record *r = record_find_locked(d, target);
  if (r)
    return r;
  if (d->nrecs == d->caprecs) {
    size_t cap = d->caprecs ? d->caprecs * 2 : 16;
    struct record *p = realloc(d->recs, cap * sizeof(*p));
    if (!p)
      return NULL;
    d->recs = p;
    d->caprecs = cap;
  }
  r = &d->recs[d->nrecs];
  memset(r, 0, sizeof(*r));
  r->target = strdup(target);
  if (!r->target)
    return NULL;
  r->at = statefile_now_real();
  d->nrecs++;
  return r;
}

static void record_clear(struct record *r)
{
  free(r->target);
  for (size_t i = 0; i < r->nids; i++)
    free(r->ids[i].message);
  free(r->main);
  free(r->thread);
  memset(r, 0, sizeof(*r));
}

static int record_push_id(struct record *r, uint64_t entry, const char *mid)
{
  for (size_t i = 0; i < r->nids; i++)
    if (strcmp(r->ids[i].message, mid) == 0) {
      r->ids[i].entry = entry;
      return 0;
    }
  char *copy = strdup(mid);
  if (!copy)
    return -ENOMEM;
  if (r->nids == RECORD_IDS) {
    free(r->ids[0].message);
    memmove(&r->ids[0], &r->ids[1], (RECORD_IDS - 1) * sizeof(r->ids[0]));
    r->nids--;
  }
  r->ids[r->nids++] = (struct rec_id){entry, copy};
  int64_t ms = ms_of_id(mid);
  if (ms > r->last_ms)
    r->last_ms = ms;
  r->at = statefile_now_real();
  return 0;
}

static int set_str(char **slot, const char *value)
{
  char *copy = strdup(value);
  if (!copy)
    return -ENOMEM;
  free(*slot);
  *slot = copy;
  return 0;
}

/* Drops old records and, above the cap, the least recently used, keeping
 * every record whose target still has pending entries. */
static void record_prune_locked(delivery *d)
{
  double now = statefile_now_real();
  for (;;) {
    ssize_t victim = -1;
    for (size_t i = 0; i < d->nrecs; i++) {
      outbox_entry e;
      if (outbox_peek_next(d->ob, d->recs[i].target, &e) == 0) {
        outbox_entry_clear(&e);
        continue;
      }
      if (now - d->recs[i].at > RECORD_KEEP_S) {
        victim = (ssize_t)i;
        break;
      }
      if (d->nrecs > RECORD_MAX_TARGETS &&
          (victim < 0 || d->recs[i].at < d->recs[victim].at))
        victim = (ssize_t)i;
    }
    if (victim < 0)
      return;
    record_clear(&d->recs[victim]);
    memmove(&d->recs[victim], &d->recs[victim + 1],
            (d->nrecs - (size_t)victim - 1) * sizeof(*d->recs));
    d->nrecs--;
  }
}

static json_t *record_json_locked(delivery *d)
{
  json_t *targets = json_object();
  for (size_t i = 0; targets && i < d->nrecs; i++) {
    struct record *r = &d->recs[i];
    json_t *ids = json_array();
    for (size_t k = 0; ids && k < r->nids; k++)
      json_array_append_new(ids, json_pack("[I,s]", (json_int_t)r->ids[k].entry,
                                           r->ids[k].message));
    json_t *o = json_pack("{s:o*, s:I, s:f}", "ids", ids, "last_ms",
                          (json_int_t)r->last_ms, "at", r->at);
    if (o && r->main)
      json_object_set_new(o, "main", json_string(r->main));
    if (o && r->thread)
      json_object_set_new(o, "thread", json_string(r->thread));
    if (o)
      json_object_set_new(targets, r->target, o);
  }
  json_t *root = json_pack("{s:i, s:o*}", "version", 1, "targets", targets);
  if (root && d->self_id)
    json_object_set_new(root, "self", json_string(d->self_id));
  else if (root && d->probe_chat && d->probe_msg)
    json_object_set_new(root, "probe", json_pack("[s,s]", d->probe_chat,
                                                 d->probe_msg));
  return root;
}

/* Writes the record durably; 0 or -errno. */
static int record_persist(delivery *d)
{
  pthread_mutex_lock(&d->persist_mu);
  pthread_mutex_lock(&d->mu);
  record_prune_locked(d);
  json_t *root = record_json_locked(d);
  pthread_mutex_unlock(&d->mu);
  char *text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(root);
  int rc = text ? statefile_write_atomic(d->record_path, text, strlen(text))
                : -ENOMEM;
  free(text);
  pthread_mutex_unlock(&d->persist_mu);
  return rc;
}

/* A record that cannot be read is started afresh: it only narrows checks. */
static void record_load(delivery *d)
{
  char *text = NULL;
  size_t len = 0;
  if (statefile_read(d->record_path, &text, &len) != 0)
    return;
  json_t *root = json_loadb(text, len, 0, NULL);
  free(text);
  if (!json_is_object(root)) {
    json_decref(root);
    return;
  }
  const char *self = field_str(root, "self");
  if (self)
    d->self_id = strdup(self);
  json_t *probe = json_object_get(root, "probe");
  const char *pchat = json_string_value(json_array_get(probe, 0));
  const char *pmsg = json_string_value(json_array_get(probe, 1));
  if (!self && pchat && pmsg) {
    d->probe_chat = strdup(pchat);
    d->probe_msg = strdup(pmsg);
  }
  const char *target;
  json_t *o;
  json_object_foreach(json_object_get(root, "targets"), target, o) {
    struct record *r = record_get_locked(d, target);
    if (!r)
      break;
    size_t i;
    json_t *pair;
    json_array_foreach(json_object_get(o, "ids"), i, pair) {
      json_t *mid = json_array_get(pair, 1);
      if (json_is_string(mid))
        record_push_id(r, (uint64_t)json_integer_value(json_array_get(pair, 0)),
                       json_string_value(mid));
    }
    r->last_ms = json_integer_value(json_object_get(o, "last_ms"));
    r->at = json_number_value(json_object_get(o, "at"));
    const char *v;
    if ((v = field_str(o, "main")))
      set_str(&r->main, v);
    if ((v = field_str(o, "thread")))
      set_str(&r->thread, v);
  }
  json_decref(root);
}

/* The message recorded for entry `entry` under target (caller frees), or
 * NULL. */
static char *record_message_of(delivery *d, const char *target, uint64_t entry)
{
  pthread_mutex_lock(&d->mu);
  char *mid = NULL;
  struct record *r = record_find_locked(d, target);
  for (size_t i = 0; r && i < r->nids && !mid; i++)
    if (r->ids[i].entry == entry)
      mid = strdup(r->ids[i].message);
  pthread_mutex_unlock(&d->mu);
  return mid;
}

static void learn_self(delivery *d, const char *sender)
{
  if (!sender || !*sender)
    return;
  pthread_mutex_lock(&d->mu);
  bool learnt = false;
  if (!d->self_id) {
    d->self_id = strdup(sender);
    learnt = d->self_id != NULL;
  }
  pthread_mutex_unlock(&d->mu);
  if (learnt)
    record_persist(d);
}

void delivery_learn_self(delivery *d, const char *user_id)
{
  if (d)
    learn_self(d, user_id);
}

char *delivery_self_id(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  char *s = d->self_id ? strdup(d->self_id) : NULL;
  pthread_mutex_unlock(&d->mu);
  return s;
}

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

static void foreign_clear(struct foreign *f)
{
  for (size_t i = 0; i < f->n; i++)
    free(f->ids[i]);
  free(f->ids);
  free(f->self);
  memset(f, 0, sizeof(*f));
}

static void foreign_push(struct foreign *f, const char *mid)
{
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    char **p = realloc(f->ids, cap * sizeof(*p));
    if (!p)
      return;
    f->ids = p;
    f->cap = cap;
  }
  char *copy = strdup(mid);
  if (copy)
    f->ids[f->n++] = copy;
}

static void foreign_load(delivery *d, const char *target, struct foreign *f)
{
  memset(f, 0, sizeof(*f));
  char **dirs = NULL;
  if (outbox_other_slot_dirs(d->ob, &dirs, NULL) != 0)
    return;
  for (size_t k = 0; dirs[k]; k++) {
    char *path = NULL, *text = NULL;
    size_t len = 0;
    if (asprintf(&path, "%s/%s", dirs[k], RECORD_FILE) < 0)
      path = NULL;
    int r = path ? statefile_read(path, &text, &len) : -ENOMEM;
    free(path);
    json_t *root = r == 0 ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    const char *self = field_str(root, "self");
    if (self && !f->self)
      f->self = strdup(self);
    json_t *o = json_object_get(json_object_get(root, "targets"), target);
    size_t i;
    json_t *pair;
    json_array_foreach(json_object_get(o, "ids"), i, pair) {
      json_t *mid = json_array_get(pair, 1);
      if (json_is_string(mid))
        foreign_push(f, json_string_value(mid));
    }
    json_decref(root);
    free(dirs[k]);
  }
  free(dirs);
}

static bool foreign_has(const struct foreign *f, const char *mid)
{
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->ids[i], mid) == 0)
      return true;
  return false;
}

/* ---- error classes ---------------------------------------------------------- */

/* Refused for good: sending it again cannot help. */
static bool is_permanent(delivery *d, const cliq_error *err)
{
  switch (err->err) {
  case EACCES:
    /* A token that expired or was refused is ours to fix, not a refusal of
     * this entry: it waits in the journal. */
    if (err->http_status == 401 || err->http_status == 0)
      return false;
    return strcmp(cliq_client_auth_state(d->client), "failed") != 0;
  case ENOENT:
  case EINVAL:
  case EMSGSIZE:
  case EILSEQ:
  case EPERM:
  case EDESTADDRREQ:
  case E2BIG:
    return true;
  default:
    return false;
  }
}

/* ---- preparing and sending -------------------------------------------------- */

/* Reads what the entry asks for; -EINVAL (permanent) when the payload does
 * not say it. */
static int op_prepare(delivery *d, const outbox_entry *e, struct op *op,
                      cliq_error *err)
{
  memset(op, 0, sizeof(*op));
  json_t *p = e->payload;
  switch (e->kind) {
  case OUTBOX_REPLY:
  case OUTBOX_CHANNEL_POST:
  case OUTBOX_CREATE_THREAD:
    op->text = payload_str(p, "text");
    if (!op->text || !*op->text) {
      statefile_fail(err, EINVAL, "%s entry without text", outbox_kind_name(e->kind));
      return -EINVAL;
    }
    if (e->kind == OUTBOX_REPLY)
      return 0;
    op->channel_id = field_str(p, "channel_id");
    if (!op->channel_id && e->kind == OUTBOX_CHANNEL_POST &&
        !is_draft(e->target))
      op->channel_id = e->target;
    if (!op->channel_id) {
      statefile_fail(err, EINVAL, "%s entry without a channel id",
              outbox_kind_name(e->kind));
      return -EINVAL;
    }
    const char *chat = field_str(p, "chat_id");
    if (chat && !(op->chat_id = strdup(chat)))
      goto oom;
    op->draft_main = json_is_true(json_object_get(p, "draft_main"));
    if (e->kind == OUTBOX_CHANNEL_POST)
      return 0;
    op->title = field_str(p, "title");
    if (!op->title) {
      statefile_fail(err, EINVAL, "create_thread entry without a title");
      return -EINVAL;
    }
    const char *parent = field_str(p, "parent_message_id");
    bool known = parent != NULL;
    if (parent) {
      op->parent = strdup(parent);
    } else {
      pthread_mutex_lock(&d->mu);
      struct record *r = draft_record_locked(d, e->target);
      known = r && r->main;
      if (known)
        op->parent = strdup(r->main);
      pthread_mutex_unlock(&d->mu);
    }
    if (!known) {
      statefile_fail(err, EDESTADDRREQ, "the thread's main message was never posted");
      return -EDESTADDRREQ;
    }
    if (!op->parent)
      goto oom;
    return 0;
  case OUTBOX_STATE:
  case OUTBOX_CTL:
    op->verb = entry_verb(e);
    if (op->verb == V_NONE) {
      statefile_fail(err, EINVAL, "%s entry with an unknown action",
              outbox_kind_name(e->kind));
      return -EINVAL;
    }
    return 0;
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE: {
    json_t *ids = json_is_array(p) ? p : json_object_get(p, "user_ids");
    size_t n = json_array_size(ids);
    if (n == 0) {
      statefile_fail(err, EINVAL, "%s entry without user ids",
              outbox_kind_name(e->kind));
      return -EINVAL;
    }
    op->ids = calloc(n, sizeof(*op->ids));
    if (!op->ids)
      goto oom;
    for (size_t i = 0; i < n; i++) {
      const char *id = json_string_value(json_array_get(ids, i));
      if (!id || !*id) {
        statefile_fail(err, EINVAL, "%s entry with a user id that is not a string",
                outbox_kind_name(e->kind));
        return -EINVAL;
      }
      op->ids[op->nids++] = id;
    }
    return 0;
  }
  default:
    statefile_fail(err, EINVAL, "entry of an unknown kind");
    return -EINVAL;
  }
oom:
  statefile_fail(err, ENOMEM, "out of memory");
  return -ENOMEM;
}

/* The channel's chat id, asked from Cliq when the payload did not carry it. */
static int op_chat_id(delivery *d, struct op *op, cliq_error *err)
{
  if (op->chat_id)
    return 0;
  cliq_channel ch;
  int r = cliq_get_channel(d->client, CLIQ_PRIO_WRITE, op->channel_id, &ch, err);
  if (r < 0)
    return r;
  op->chat_id = strdup(ch.chat_id);
  cliq_channel_clear(&ch);
  if (!op->chat_id) {
    statefile_fail(err, ENOMEM, "out of memory");
    return -ENOMEM;
  }
  return 0;
}

struct sent {
  char *message_id;      /* normalised, owned; NULL when unknown */
  char *thread_chat_id;  /* create_thread */
  int64_t time_ms;       /* 0 = from the id */
};

static void sent_clear(struct sent *s)
{
  free(s->message_id);
  free(s->thread_chat_id);
  memset(s, 0, sizeof(*s));
}

static void normalise_into(char **slot, char *raw)
{
  *slot = raw ? cliq_normalize_message_id(raw) : NULL;
  free(raw);
}

static int op_send(delivery *d, const outbox_entry *e, struct op *op,
                   struct sent *out, cliq_error *err)
{
  cliq_client *c = d->client;
  const char *t = e->target;
  const enum cliq_priority W = CLIQ_PRIO_WRITE;
  char *raw = NULL;
  int r;
  switch (e->kind) {
  case OUTBOX_REPLY:
    r = cliq_reply(c, W, t, op->text, &raw, err);
    normalise_into(&out->message_id, raw);
    return r;
  case OUTBOX_CHANNEL_POST:
    r = cliq_post_channel_message(c, W, op->channel_id, op->text, &raw, err);
    normalise_into(&out->message_id, raw);
    return r;
  case OUTBOX_CREATE_THREAD:
    if ((r = op_chat_id(d, op, err)) < 0)
      return r;
    r = cliq_create_thread(c, W, op->channel_id, op->chat_id, op->parent,
                           op->title, op->text, &out->thread_chat_id, &raw,
                           err);
    normalise_into(&out->message_id, raw);
    return r;
  case OUTBOX_FOLLOWERS_ADD:
    return cliq_add_followers(c, W, t, op->ids, op->nids, err);
  case OUTBOX_FOLLOWERS_REMOVE:
    return cliq_remove_followers(c, W, t, op->ids, op->nids, err);
  default:
    break;
  }
  switch (op->verb) {
  case V_CLOSE:
    return cliq_set_thread_state(c, W, t, "close", err);
  case V_REOPEN:
    return cliq_set_thread_state(c, W, t, "reopen", err);
  case V_FOLLOW:
    return cliq_follow(c, W, t, err);
  case V_UNFOLLOW:
    return cliq_unfollow(c, W, t, err);
  case V_MUTE:
    return cliq_mute(c, W, t, err);
  case V_UNMUTE:
    return cliq_unmute(c, W, t, err);
  case V_LEAVE:
    return cliq_leave(c, W, t, err);
  default:
    statefile_fail(err, EINVAL, "nothing to send");
    return -EINVAL;
  }
}

/* ---- checks of unknown outcomes ------------------------------------------- */

static void learn_self_now(delivery *d);

/* 1 found (out filled), 0 not there, -errno when Cliq could not be asked. */
static int check_message(delivery *d, const outbox_entry *e, struct op *op,
                         struct sent *out, cliq_error *err)
{
  const char *chat = e->target;
  if (e->kind == OUTBOX_CHANNEL_POST) {
    int r = op_chat_id(d, op, err);
    if (r < 0)
      return r;
    chat = op->chat_id;
  }
  learn_self_now(d);
  /* What we know of our own messages there, taken once: the record changes
   * only when this target's entries are delivered, and we hold the target. */
  pthread_mutex_lock(&d->mu);
  char *self = d->self_id ? strdup(d->self_id) : NULL;
  struct record *rec = record_find_locked(d, e->target);
  size_t nown = rec ? rec->nids : 0;
  char *own[RECORD_IDS];
  for (size_t i = 0; i < nown; i++)
    own[i] = strdup(rec->ids[i].message);
  int64_t last_ms = rec ? rec->last_ms : 0;
  pthread_mutex_unlock(&d->mu);
  struct foreign others;
  foreign_load(d, e->target, &others);
  if (!self && others.self)
    self = strdup(others.self); /* same account, same user */

  /* Where to look, on the server's clock: it stamped the message, and it may
   * be minutes off ours.  Its offset comes with every answer; a process that
   * has had none yet (just restarted) asks for one first. */
  double offset = 0;
  if (!cliq_client_clock_offset(d->client, &offset)) {
    cliq_message_list probe;
    if (cliq_get_messages(d->client, CLIQ_PRIO_WRITE, chat, 0, 0, 1, &probe,
                          err) == 0)
      cliq_message_list_clear(&probe);
    (void)cliq_client_clock_offset(d->client, &offset);
  }
  int64_t from = (int64_t)((e->created + offset) * 1000.0) - CHECK_SLACK_MS;
  if (last_ms > from)
    from = last_ms;
  if (from < 1)
    from = 1;
  int found = 0, r = 0;
  for (int page = 0; page < CHECK_MAX_PAGES && !found; page++) {
    cliq_message_list list;
    r = cliq_get_messages(d->client, CLIQ_PRIO_WRITE, chat, from, 0, CHECK_PAGE,
                          &list, err);
    if (r < 0)
      break;
    for (size_t i = 0; i < list.count && !found; i++) {
      cliq_message *m = &list.items[i];
      bool ours = false;
      for (size_t k = 0; k < nown && !ours; k++)
        ours = own[k] && strcmp(own[k], m->id) == 0;
      if (ours) {
        if (!self && m->sender_id && *m->sender_id) {
          self = strdup(m->sender_id);
          learn_self(d, m->sender_id);
        }
        continue; /* an earlier entry's message */
      }
      if (m->time_ms < last_ms || foreign_has(&others, m->id))
        continue;
      if (self && m->sender_id && strcmp(self, m->sender_id) != 0)
        continue;
      if (same_text(m->text, op->text)) {
        found = 1;
        out->message_id = strdup(m->id);
        out->time_ms = m->time_ms;
      }
    }
    bool more = list.count >= CHECK_PAGE;
    int64_t next = list.count ? list.items[list.count - 1].time_ms : from;
    cliq_message_list_clear(&list);
    if (!more)
      break;
    from = next > from ? next : from + 1;
  }
  for (size_t i = 0; i < nown; i++)
    free(own[i]);
  free(self);
  foreign_clear(&others);
  if (found && !out->message_id) {
    statefile_fail(err, ENOMEM, "out of memory");
    return -ENOMEM;
  }
  return r < 0 ? r : found;
}

static int check_thread(delivery *d, const outbox_entry *e, struct op *op,
                        struct sent *out, cliq_error *err)
{
  pthread_mutex_lock(&d->mu);
  struct record *rec = draft_record_locked(d, e->target);
  char *thread = rec && rec->thread ? strdup(rec->thread) : NULL;
  pthread_mutex_unlock(&d->mu);
  if (thread) {
    out->thread_chat_id = thread;
    out->message_id = record_message_of(d, thread, e->id);
    return 1;
  }
  int r = op_chat_id(d, op, err);
  if (r < 0)
    return r;
  cliq_message m;
  r = cliq_get_message(d->client, CLIQ_PRIO_WRITE, op->chat_id, op->parent, &m,
                       err);
  if (r < 0)
    return r;
  int found = 0;
  if (m.thread_chat_id && *m.thread_chat_id) {
    out->thread_chat_id = strdup(m.thread_chat_id);
    found = out->thread_chat_id ? 1 : -ENOMEM;
  }
  cliq_message_clear(&m);
  if (found < 0)
    statefile_fail(err, ENOMEM, "out of memory");
  return found;
}

/* Whether the thread shows what an idempotent entry asked for: 1 yes, 0 no
 * or unknown. */
static int effect_present(delivery *d, const outbox_entry *e, struct op *op)
{
  cliq_error err;
  cliq_client *c = d->client;
  if (e->kind == OUTBOX_FOLLOWERS_ADD || e->kind == OUTBOX_FOLLOWERS_REMOVE) {
    cliq_user_list l;
    if (cliq_get_followers(c, CLIQ_PRIO_WRITE, e->target, &l, &err) < 0)
      return 0;
    bool want = e->kind == OUTBOX_FOLLOWERS_ADD, all = true;
    for (size_t i = 0; i < op->nids && all; i++) {
      bool has = false;
      for (size_t k = 0; k < l.count && !has; k++)
        has = strcmp(l.items[k].user_id, op->ids[i]) == 0;
      all = has == want;
    }
    cliq_user_list_clear(&l);
    return all;
  }
  switch (op->verb) {
  case V_LEAVE:
    return 1; /* refused after a leave that may have landed: we are out */
  case V_CLOSE:
  case V_REOPEN:
  case V_FOLLOW:
  case V_UNFOLLOW: {
    cliq_thread t;
    if (cliq_get_thread(c, CLIQ_PRIO_WRITE, e->target, &t, &err) < 0)
      return 0;
    int yes = op->verb == V_CLOSE    ? t.state == CLIQ_THREAD_CLOSED
              : op->verb == V_REOPEN ? t.state == CLIQ_THREAD_OPEN
              : op->verb == V_FOLLOW ? t.is_follower
                                     : !t.is_follower;
    cliq_thread_clear(&t);
    return yes;
  }
  default:
    return 0;
  }
}

static struct tstate *tstate_get_locked(delivery *d, const char *target);

/* ---- outcomes ------------------------------------------------------------------- */

static void count(delivery *d, uint64_t *field)
{
  pthread_mutex_lock(&d->mu);
  (*field)++;
  pthread_mutex_unlock(&d->mu);
}

/* Errors of our own disk, not of Cliq. */
static bool is_local_storage_error(const cliq_error *err)
{
  return !err->http_status && !err->curl_code &&
         (err->err == ENOSPC || err->err == EDQUOT || err->err == EROFS);
}

static enum outcome retry_later(delivery *d, const outbox_entry *e,
                                bool uncertain, const cliq_error *err)
{
  outbox_note_failure(d->ob, e->id, uncertain, err->message);
  count(d, &d->stats.retries);
  if (is_local_storage_error(err)) {
    pthread_mutex_lock(&d->mu);
    bool tell = !d->stall_told;
    d->stall_told = true;
    pthread_mutex_unlock(&d->mu);
    if (tell && d->hooks.stalled)
      d->hooks.stalled(d->hooks.ctx, e, err);
  }
  return O_RETRY;
}

static enum outcome fail_entry(delivery *d, const outbox_entry *e,
                               cliq_error *err)
{
  for (char *p = err->message; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  if (d->hooks.failed)
    d->hooks.failed(d->hooks.ctx, e, err);
  if (outbox_move_failed(d->ob, e->id, err->err, err->message) < 0)
    return O_RETRY; /* sent again later, refused again */
  count(d, &d->stats.failed);
  return O_FAILED;
}

/* Keeps a message we just posted as the way to learn who we are, without
 * asking now: our user id matters only when an outcome was lost
 * (check_message), and the store usually learns it for free from the next
 * fetch of that chat (delivery_learn_self). */
static void learn_self_from_post(delivery *d, const char *chat,
                                 const char *message_id)
{
  if (!chat || !message_id)
    return;
  pthread_mutex_lock(&d->mu);
  bool kept = false;
  if (!d->self_id && !d->probe_msg) {
    d->probe_chat = strdup(chat);
    d->probe_msg = strdup(message_id);
    kept = d->probe_chat && d->probe_msg;
    if (!kept) {
      free(d->probe_chat);
      free(d->probe_msg);
      d->probe_chat = d->probe_msg = NULL;
    }
  }
  pthread_mutex_unlock(&d->mu);
  if (kept)
    record_persist(d);   /* a crash before a lost outcome must not lose it */
}

/* A lost outcome is about to be checked without our user id: ask Cliq who
 * posted the message kept by learn_self_from_post (write lane: a write
 * waits on it). */
static void learn_self_now(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  char *chat = !d->self_id && d->probe_chat ? strdup(d->probe_chat) : NULL;
  char *mid = chat && d->probe_msg ? strdup(d->probe_msg) : NULL;
  pthread_mutex_unlock(&d->mu);
  cliq_message m;
  cliq_error err;
  int r = chat && mid ? cliq_get_message(d->client, CLIQ_PRIO_WRITE, chat, mid,
                                         &m, &err)
                      : -ENODATA;
  if (r == 0) {
    learn_self(d, m.sender_id);
    cliq_message_clear(&m);
  } else if (r == -ENOENT || r == -EACCES || r == -EINVAL) {
    /* The post is gone (deleted, or the chat): asked once, not per check;
     * the next delivered post becomes the probe. */
    pthread_mutex_lock(&d->mu);
    if (d->probe_msg && mid && strcmp(d->probe_msg, mid) == 0) {
      free(d->probe_chat);
      free(d->probe_msg);
      d->probe_chat = d->probe_msg = NULL;
    }
    pthread_mutex_unlock(&d->mu);
  }
  free(chat);
  free(mid);
}

/* Records what was delivered, tells the hooks, and takes the entry out of
 * the journal, in that order (see the header). */
static enum outcome finish(delivery *d, const outbox_entry *e, struct op *op,
                           struct sent *s)
{
  cliq_error err;
  if (op->draft_main && !s->message_id) {
    /* Cliq answered without the id, which the thread needs: find it. */
    int r = check_message(d, e, op, s, &err);
    if (r < 0)
      return retry_later(d, e, true, &err);
  }
  const char *mid = s->message_id;
  const char *tid = s->thread_chat_id;
  bool note = (mid && is_post_kind(e->kind)) || tid;
  if (note) {
    int r = 0;
    pthread_mutex_lock(&d->mu);
    struct record *rec = record_get_locked(d, e->target);
    if (!rec)
      r = -ENOMEM;
    if (r == 0 && mid && e->kind != OUTBOX_CREATE_THREAD)
      r = record_push_id(rec, e->id, mid);
    if (r == 0 && s->time_ms > rec->last_ms)
      rec->last_ms = s->time_ms;
    if (r == 0 && mid && op->draft_main)
      r = set_str(&rec->main, mid);
    if (r == 0 && tid && is_draft(e->target))
      r = set_str(&rec->thread, tid);
    if (r == 0 && tid) {
      struct record *trec = r == 0 && mid ? record_get_locked(d, tid) : NULL;
      if (r == 0 && mid)
        r = trec ? record_push_id(trec, e->id, mid) : -ENOMEM;
    }
    pthread_mutex_unlock(&d->mu);
    if (r == 0)
      r = record_persist(d);
    /* A post's record only spares a check after a crash: once its journal
     * entry is gone (removing a file needs no space) it cannot be sent
     * twice, so a full state folder does not hold it.  A draft's step must
     * be recorded: its thread is known from there. */
    if (r < 0 && r != -ENOMEM && !op->draft_main && !tid)
      r = 0;
    if (r < 0) {
      statefile_fail(&err, -r, "delivered, but the delivery record could not be "
                        "written: %s", strerror(-r));
      return retry_later(d, e, true, &err);
    }
  }

  struct tstate *held = NULL;
  if (tid) {
    /* The thread's entries must not be picked by another worker while this
     * entry (retargeted with them) is still in the journal.  A busy tstate
     * is never pruned, so `held` stays valid after the lock is dropped. */
    pthread_mutex_lock(&d->mu);
    held = tstate_get_locked(d, tid);
    if (held && held->busy)
      held = NULL; /* cannot happen: nobody knew the thread before us */
    if (held)
      held->busy = true;
    int r = outbox_retarget(d->ob, e->target, tid);
    pthread_mutex_unlock(&d->mu);
    if (r < 0) {
      if (held) {
        pthread_mutex_lock(&d->mu);
        held->busy = false;
        pthread_mutex_unlock(&d->mu);
      }
      statefile_fail(&err, -r, "thread created, but its entries could not be moved "
                        "to it: %s", strerror(-r));
      return retry_later(d, e, true, &err);
    }
    if (d->hooks.thread_created)
      d->hooks.thread_created(d->hooks.ctx, e, tid);
  }
  if (d->hooks.delivered)
    d->hooks.delivered(d->hooks.ctx, e, mid);
  int r = outbox_remove(d->ob, e->id);
  if (held) {
    pthread_mutex_lock(&d->mu);
    held->busy = false;
    pthread_mutex_unlock(&d->mu);
  }
  if (r < 0 && r != -ENOENT) {
    statefile_fail(&err, -r, "delivered, but the journal entry could not be "
                      "removed: %s", strerror(-r));
    return retry_later(d, e, true, &err);
  }
  count(d, &d->stats.delivered);
  pthread_mutex_lock(&d->mu);
  d->stall_told = false;
  pthread_mutex_unlock(&d->mu);
  if (mid && is_post_kind(e->kind))
    learn_self_from_post(d,
                         e->kind == OUTBOX_REPLY          ? e->target
                         : e->kind == OUTBOX_CREATE_THREAD ? tid
                                                           : op->chat_id,
                         mid);
  return O_DELIVERED;
}

static bool created_but_lost(const struct sent *s, const cliq_error *err)
{
  return s->message_id ||
         strncmp(err->message, "thread created", strlen("thread created")) == 0;
}

static enum outcome process(delivery *d, const outbox_entry *e,
                            double *later_s)
{
  cliq_error err = {0};
  struct op op;
  struct sent s = {0};
  enum outcome o;
  if (is_draft(e->target) && e->kind != OUTBOX_CHANNEL_POST &&
      e->kind != OUTBOX_CREATE_THREAD) {
    pthread_mutex_lock(&d->mu);
    struct record *rec = record_find_locked(d, e->target);
    bool has_thread = rec && rec->thread;
    pthread_mutex_unlock(&d->mu);
    if (has_thread) {
      *later_s = 0; /* the next scan moves it to the thread */
      return O_LATER;
    }
    statefile_fail(&err, EDESTADDRREQ, "the draft's thread was never created");
    return fail_entry(d, e, &err);
  }
  int r = op_prepare(d, e, &op, &err);
  if (r < 0) {
    o = r == -ENOMEM ? retry_later(d, e, e->uncertain, &err)
                     : fail_entry(d, e, &err);
    goto out;
  }
  bool unsure = e->uncertain;
  if (unsure) {
    /* A request of the last attempt may still be on its way: sending
     * anything more to this target before it lands could reorder them. */
    double now = statefile_now_real();
    if (e->attempted + d->settle > now) {
      *later_s = e->attempted + d->settle - now;
      o = O_LATER;
      goto out;
    }
  }
  if (unsure && is_post_kind(e->kind)) {
    count(d, &d->stats.checks);
    char *mid = record_message_of(d, e->target, e->id);
    if (mid && e->kind != OUTBOX_CREATE_THREAD) {
      s.message_id = mid;
      r = 1;
    } else {
      free(mid);
      r = e->kind == OUTBOX_CREATE_THREAD ? check_thread(d, e, &op, &s, &err)
                                          : check_message(d, e, &op, &s, &err);
    }
    if (r == 1) {
      count(d, &d->stats.found);
      o = finish(d, e, &op, &s);
      goto out;
    }
    if (r < 0) {
      o = is_permanent(d, &err) ? fail_entry(d, e, &err)
                                : retry_later(d, e, true, &err);
      goto out;
    }
    unsure = false; /* not there: the earlier attempts did not land */
  }

  r = outbox_mark_uncertain(d->ob, e->id);
  if (r < 0) {
    statefile_fail(&err, -r, "the journal could not be written: %s", strerror(-r));
    o = retry_later(d, e, unsure, &err);
    goto out;
  }
  count(d, &d->stats.sends);
  r = op_send(d, e, &op, &s, &err);
  if (r == 0 && e->kind == OUTBOX_CREATE_THREAD && !s.thread_chat_id) {
    statefile_fail(&err, EIO, "thread created, but Cliq did not say which");
    r = -EIO;
  }
  if (r == 0) {
    o = finish(d, e, &op, &s);
    goto out;
  }
  if (e->kind == OUTBOX_CREATE_THREAD && created_but_lost(&s, &err)) {
    /* The thread exists; the next attempt finds it through its parent. */
    o = retry_later(d, e, true, &err);
    goto out;
  }
  if (is_permanent(d, &err)) {
    if (unsure && !is_post_kind(e->kind) && effect_present(d, e, &op)) {
      o = finish(d, e, &op, &s);
      goto out;
    }
    o = fail_entry(d, e, &err);
    goto out;
  }
  o = retry_later(d, e, unsure || cliq_error_may_have_reached(&err), &err);
out:
  sent_clear(&s);
  op_clear(&op);
  return o;
}

/* ---- scheduling ------------------------------------------------------------- */

static struct tstate *tstate_get_locked(delivery *d, const char *target)
{
  for (size_t i = 0; i < d->nts; i++)
    if (strcmp(d->ts[i]->target, target) == 0)
      return d->ts[i];
  if (d->nts == d->capts) {
    size_t cap = d->capts ? d->capts * 2 : 16;
    struct tstate **p = realloc(d->ts, cap * sizeof(*p));
    if (!p)
      return NULL;
    d->ts = p;
    d->capts = cap;
  }
  struct tstate *t = calloc(1, sizeof(*t));
  if (!t || !(t->target = strdup(target))) {
    free(t);
    return NULL;
  }
  d->ts[d->nts++] = t;
  return t;
}

/* Forgets targets that are idle and gone from the journal. */
static void tstate_prune_locked(delivery *d, char **targets)
{
  for (size_t i = 0; i < d->nts;) {
    struct tstate *t = d->ts[i];
    bool listed = false;
    for (size_t k = 0; targets[k] && !listed; k++)
      listed = strcmp(targets[k], t->target) == 0;
    if (t->busy || listed) {
      i++;
      continue;
    }
    free(t->target);
    free(t);
    d->ts[i] = d->ts[--d->nts];
  }
}

static void free_targets(char **targets)
{
  for (size_t i = 0; targets && targets[i]; i++)
    free(targets[i]);
  free(targets);
}

/* Moves the entries of drafts whose thread exists to the thread; true when
 * something moved (the caller scans again). */
static bool retarget_drafts_locked(delivery *d, char **targets)
{
  bool moved = false;
  for (size_t i = 0; targets[i]; i++) {
    if (!is_draft(targets[i]))
      continue;
    struct record *r = record_find_locked(d, targets[i]);
    struct tstate *t = tstate_get_locked(d, targets[i]);
    if (!r || !r->thread || !t || t->busy)
      continue;
    if (outbox_retarget(d->ob, targets[i], r->thread) == 0)
      moved = true;
  }
  return moved;
}

/* Picks the next job: 1 with *job filled, 0 with *wait_s set. */
static int pick_locked(delivery *d, struct job *job, double *wait_s)
{
  *wait_s = d->poll;
  for (int round = 0; round < 3; round++) {
    char **targets = NULL;
    if (outbox_targets(d->ob, &targets, NULL) < 0)
      return 0;
    if (retarget_drafts_locked(d, targets)) {
      free_targets(targets);
      continue;
    }
    tstate_prune_locked(d, targets);
    double now = now_mono();
    int got = 0;
    for (size_t i = 0; targets[i] && !got; i++) {
      struct tstate *t = tstate_get_locked(d, targets[i]);
      if (!t || t->busy)
        continue;
      if (t->not_before > now) {
        if (t->not_before - now < *wait_s)
          *wait_s = t->not_before - now;
        continue;
      }
      outbox_entry e;
      if (outbox_peek_next(d->ob, targets[i], &e) < 0)
        continue;
      enum cliq_api api = delivery_entry_api(&e);
      if (d->api_busy[api]) {
        outbox_entry_clear(&e);
        continue;
      }
      char *name = strdup(targets[i]);
      if (!name) {
        outbox_entry_clear(&e);
        continue;
      }
      t->busy = true;
      d->api_busy[api] = true;
      job->e = e;
      job->target = name;
      job->api = api;
      got = 1;
    }
    free_targets(targets);
    return got;
  }
  return 0;
}

static double backoff_s(delivery *d, int failures)
{
  double base = d->backoff_min * pow(2.0, failures > 30 ? 30 : failures - 1);
  if (base > d->backoff_max)
    base = d->backoff_max;
  /* Half fixed, half random: workers and processes that failed together do
   * not come back together. */
  double r = (double)rand_r(&d->rng) / RAND_MAX;
  return (base / 2.0 + r * base / 2.0) / d->scale;
}

static void release_locked(delivery *d, struct job *job, enum outcome o)
{
  struct tstate *t = tstate_get_locked(d, job->target);
  d->api_busy[job->api] = false;
  if (t) {
    t->busy = false;
    if (o == O_RETRY) {
      t->failures++;
      t->not_before = now_mono() + backoff_s(d, t->failures);
    } else if (o == O_LATER) {
      t->not_before = now_mono() + job->later_s;
    } else {
      t->failures = 0;
      t->not_before = 0;
    }
  }
  outbox_entry_clear(&job->e);
  free(job->target);
  job->target = NULL;
}

static void timed_wait_locked(delivery *d, double seconds)
{
  if (seconds < 0.001)
    seconds = 0.001;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double whole = floor(seconds);
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((seconds - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&d->cond, &d->mu, &ts);
}

static void *worker_main(void *arg)
{
  delivery *d = arg;
  pthread_mutex_lock(&d->mu);
  while (!d->stopping) {
    struct job job = {0};
    double wait_s;
    if (!pick_locked(d, &job, &wait_s)) {
      timed_wait_locked(d, wait_s);
      continue;
    }
    pthread_mutex_unlock(&d->mu);
    enum outcome o = process(d, &job.e, &job.later_s);
    pthread_mutex_lock(&d->mu);
    release_locked(d, &job, o);
    /* A target or an API class came free. */
    pthread_cond_broadcast(&d->cond);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

/* ---- life cycle --------------------------------------------------------------- */

delivery *delivery_new(outbox *ob, cliq_client *client,
                       const delivery_hooks *hooks,
                       const delivery_options *opts)
{
  if (!ob || !client)
    return NULL;
  delivery *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  d->ob = ob;
  d->client = client;
  if (hooks)
    d->hooks = *hooks;
  delivery_options o = {0};
  if (opts)
    o = *opts;
  d->scale = o.time_scale > 0 ? o.time_scale : 1.0;
  d->backoff_min = o.backoff_min_s > 0 ? o.backoff_min_s : 2.0;
  d->backoff_max = o.backoff_max_s > 0 ? o.backoff_max_s : 300.0;
  if (d->backoff_max < d->backoff_min)
    d->backoff_max = d->backoff_min;
  d->nworkers = o.workers > 0 ? o.workers : 4;
  d->poll = o.poll_s > 0 ? o.poll_s : 1.0;
  d->settle = o.settle_s > 0 ? o.settle_s : 30.0;
  d->rng = (unsigned)time(NULL) ^ (unsigned)getpid() ^
           (unsigned)(uintptr_t)d;
  pthread_mutex_init(&d->mu, NULL);
  pthread_mutex_init(&d->persist_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&d->cond, &ca);
  pthread_condattr_destroy(&ca);
  if (asprintf(&d->record_path, "%s/%s", outbox_dir(ob), RECORD_FILE) < 0) {
    d->record_path = NULL;
    delivery_free(d);
    return NULL;
  }
  record_load(d);
  return d;
}

int delivery_start(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  if (d->started) {
    pthread_mutex_unlock(&d->mu);
    return -EALREADY;
  }
  d->started = true;
  d->stopping = false;
  pthread_mutex_unlock(&d->mu);
  d->threads = calloc((size_t)d->nworkers, sizeof(*d->threads));
  if (!d->threads)
    return -ENOMEM;
  for (int i = 0; i < d->nworkers; i++) {
    int r = pthread_create(&d->threads[i], NULL, worker_main, d);
    if (r != 0) {
      if (d->nthreads > 0)
        return 0; /* fewer workers still deliver everything */
      return -r;
    }
    d->nthreads++;
  }
  return 0;
}

void delivery_stop(delivery *d)
{
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->stopping = true;
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->mu);
  for (int i = 0; i < d->nthreads; i++)
    pthread_join(d->threads[i], NULL);
  d->nthreads = 0;
  free(d->threads);
  d->threads = NULL;
}

void delivery_kick(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->mu);
}

void delivery_free(delivery *d)
{
  if (!d)
    return;
  delivery_stop(d);
  for (size_t i = 0; i < d->nts; i++) {
    free(d->ts[i]->target);
    free(d->ts[i]);
  }
  free(d->ts);
  for (size_t i = 0; i < d->nrecs; i++)
    record_clear(&d->recs[i]);
  free(d->recs);
  free(d->self_id);
  free(d->probe_chat);
  free(d->probe_msg);
  free(d->record_path);
  pthread_cond_destroy(&d->cond);
  pthread_mutex_destroy(&d->persist_mu);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

void delivery_get_stats(delivery *d, delivery_stats *out)
{
  pthread_mutex_lock(&d->mu);
  *out = d->stats;
  pthread_mutex_unlock(&d->mu);
}
