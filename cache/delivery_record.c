/* cache/delivery_record.c: the delivery record: which message each delivered
 * entry became, kept on disk so that a check after a crash knows our own
 * messages. */
#include "cache/delivery_i.h"

/* ---- the delivery record --------------------------------------------------- */

struct record *record_find_locked(delivery *d, const char *target)
{
  for (size_t i = 0; i < d->nrecs; i++)
    if (strcmp(d->recs[i].target, target) == 0)
      return &d->recs[i];
  return NULL;
}

/* The draft record behind a create_thread entry: its own target's, or,
 * once the entry was moved to the thread (a crash before it left the
 * journal), the draft whose thread that is. */
struct record *draft_record_locked(delivery *d, const char *target)
{
  struct record *r = record_find_locked(d, target);
  if (r && (r->main || r->thread))
    return r;
  for (size_t i = 0; i < d->nrecs; i++)
    if (d->recs[i].thread && strcmp(d->recs[i].thread, target) == 0)
      return &d->recs[i];
  return r;
}

struct record *record_get_locked(delivery *d, const char *target)
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
  r->at = cliq_clock_real();
  d->nrecs++;
  return r;
}

void record_clear(struct record *r)
{
  free(r->target);
  for (size_t i = 0; i < r->nids; i++)
    free(r->ids[i].message);
  free(r->main);
  free(r->thread);
  memset(r, 0, sizeof(*r));
}

int record_push_id(struct record *r, uint64_t entry, const char *mid)
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
  r->at = cliq_clock_real();
  return 0;
}

int set_str(char **slot, const char *value)
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
  double now = cliq_clock_real();
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
int record_persist(delivery *d)
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
void record_load(delivery *d)
{
  json_t *root = statefile_read_json(d->record_path);
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
char *record_message_of(delivery *d, const char *target, uint64_t entry)
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

void learn_self(delivery *d, const char *sender)
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

void foreign_clear(struct foreign *f)
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

void foreign_load(delivery *d, const char *target, struct foreign *f)
{
  memset(f, 0, sizeof(*f));
  char **dirs = NULL;
  if (outbox_other_slot_dirs(d->ob, &dirs, NULL) != 0)
    return;
  for (size_t k = 0; dirs[k]; k++) {
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dirs[k], RECORD_FILE) < 0)
      path = NULL;
    json_t *root = path ? statefile_read_json(path) : NULL;
    free(path);
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

bool foreign_has(const struct foreign *f, const char *mid)
{
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->ids[i], mid) == 0)
      return true;
  return false;
}
