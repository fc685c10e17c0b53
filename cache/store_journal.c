/* cache/store_journal.c: the outbox journal as the store uses it: entries,
 * waiting for delivery, entries as files. */
#include "cache/store_i.h"

/* ---- The journal -------------------------------------------------------------------------- */

void store_ids_clear(store_ids *ids)
{
  if (!ids)
    return;
  free(ids->v);
  memset(ids, 0, sizeof *ids);
}

int store_ids_add(store_ids *ids, uint64_t id)
{
  if (ids->n == ids->cap) {
    size_t nc = ids->cap ? ids->cap * 2 : 8;
    uint64_t *nv = realloc(ids->v, nc * sizeof *nv);
    if (!nv)
      return -ENOMEM;
    ids->v = nv;
    ids->cap = nc;
  }
  ids->v[ids->n++] = id;
  return 0;
}

/* A JSON string of s, with bytes that are not UTF-8 replaced by '?' (paths
 * hold names the kernel gave us). */
static json_t *json_string_lossy(const char *str)
{
  json_t *v = json_string(str);
  if (v)
    return v;
  char *copy = strdup(str);
  if (!copy)
    return NULL;
  for (size_t i = 0; copy[i]; i++)
    if ((unsigned char)copy[i] >= 0x80)
      copy[i] = '?';
  v = json_string(copy);
  free(copy);
  return v;
}

/* The payload fields every entry carries for the hooks. */
static json_t *payload_new(const char *channel_id, const char *path)
{
  json_t *p = json_object();
  if (!p)
    return NULL;
  if ((channel_id &&
       json_object_set_new(p, "channel_id", json_string_lossy(channel_id)) < 0) ||
      (path && json_object_set_new(p, "path", json_string_lossy(path)) < 0)) {
    json_decref(p);
    return NULL;
  }
  return p;
}

static json_t *payload_with_text(const char *channel_id, const char *path,
                                 const char *text)
{
  json_t *p = payload_new(channel_id, path);
  if (p && json_object_set_new(p, "text", json_string(text)) < 0) {
    json_decref(p);
    return NULL;
  }
  return p;
}

/* Journals one entry (payload is consumed).  Once outbox_append() returned
 * the entry will be delivered: nothing after it may fail the write. */
static int journal(store *s, outbox_kind kind, const char *target,
                   json_t *payload, store_ids *ids, cliq_error *err)
{
  if (!payload)
    return cliq_fail(err, ENOMEM, "out of memory");
  if (!s->ob) {
    json_decref(payload);
    return cliq_fail(err, EROFS, "no outbox journal: nothing can be written");
  }
  uint64_t id = 0;
  int r = outbox_append(s->ob, kind, target, payload, &id);
  json_decref(payload);
  if (r < 0)
    return cliq_fail(err, -r, "the outbox journal could not be written: %s",
                strerror(-r));
  if (ids)
    (void)store_ids_add(ids, id);   /* untracked, it is delivered all the same */
  if (s->dl)
    delivery_kick(s->dl);
  return 0;
}

int store_post_channel(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *text,
                       const char *path, store_ids *ids, cliq_error *err)
{
  json_t *p = payload_with_text(channel_id, path, text);
  if (p && channel_chat_id)
    json_object_set_new(p, "chat_id", json_string(channel_chat_id));
  return journal(s, OUTBOX_CHANNEL_POST, channel_id, p, ids, err);
}

int store_reply(store *s, const char *channel_id, const char *tid,
                const char *text, const char *path, store_ids *ids,
                cliq_error *err)
{
  return journal(s, OUTBOX_REPLY, tid, payload_with_text(channel_id, path, text),
                 ids, err);
}

int store_set_state(store *s, const char *channel_id, const char *tid,
                    bool close, const char *path, store_ids *ids,
                    cliq_error *err)
{
  json_t *p = payload_new(channel_id, path);
  if (p)
    json_object_set_new(p, "action", json_string(close ? "close" : "reopen"));
  return journal(s, OUTBOX_STATE, tid, p, ids, err);
}

static int journal_followers(store *s, outbox_kind kind, const char *channel_id,
                             const char *tid, const char *const *user_ids,
                             size_t n, const char *path, store_ids *ids,
                             cliq_error *err)
{
  if (n == 0)
    return 0;
  json_t *p = payload_new(channel_id, path);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, json_string_lossy(user_ids[i])) < 0) {
      json_decref(arr);
      arr = NULL;
    }
  if (p && (!arr || json_object_set_new(p, "user_ids", arr) < 0)) {
    json_decref(p);
    p = NULL;
  } else if (!p) {
    json_decref(arr);
  }
  return journal(s, kind, tid, p, ids, err);
}

int store_followers_add(store *s, const char *channel_id, const char *tid,
                        const char *const *user_ids, size_t n,
                        const char *path, store_ids *ids, cliq_error *err)
{
  return journal_followers(s, OUTBOX_FOLLOWERS_ADD, channel_id, tid, user_ids,
                           n, path, ids, err);
}

int store_followers_remove(store *s, const char *channel_id, const char *tid,
                           const char *const *user_ids, size_t n,
                           const char *path, store_ids *ids, cliq_error *err)
{
  return journal_followers(s, OUTBOX_FOLLOWERS_REMOVE, channel_id, tid,
                           user_ids, n, path, ids, err);
}

int store_followers_replace(store *s, const char *channel_id, const char *tid,
                            const char *const *user_ids, size_t n,
                            const char *path, store_ids *ids, cliq_error *err)
{
  json_t *fol = NULL;
  int r = people_json(s, tid, STORE_FOLLOWERS, STORE_FETCH, &fol, err);
  if (r < 0)
    return r;
  size_t nf = json_array_size(fol);
  const char **add = calloc(n + 1, sizeof *add);
  const char **del = calloc(nf + 1, sizeof *del);
  size_t n_add = 0, n_del = 0;
  if (!add || !del) {
    r = cliq_fail(err, ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (!find_user(fol, user_ids[i]) && !id_in(user_ids[i], add, n_add))
      add[n_add++] = user_ids[i];
  for (size_t i = 0; i < nf; i++) {
    const char *id = jstr(json_array_get(fol, i), "user_id");
    if (!id_in(id, user_ids, n))
      del[n_del++] = id;
  }
  r = store_followers_add(s, channel_id, tid, add, n_add, path, ids, err);
  if (r == 0)
    r = store_followers_remove(s, channel_id, tid, del, n_del, path, ids, err);
out:
  free(add);
  free(del);
  json_decref(fol);
  return r;
}

int store_ctl(store *s, const char *channel_id, const char *tid,
              const char *verb, const char *path, store_ids *ids,
              cliq_error *err)
{
  if (!store_ctl_verb_valid(verb))
    return cliq_fail(err, EINVAL, "unknown verb \"%s\"", verb);
  json_t *p = payload_new(channel_id, path);
  if (p)
    json_object_set_new(p, "verb", json_string(verb));
  return journal(s, OUTBOX_CTL, tid, p, ids, err);
}

/* Drafts: a draft's entries are journaled on its target in the order the
 * user wrote them; s->lock guards the flags that say what is journaled, and
 * draft writes are serialized so that a first append's create_thread is
 * journaled before any later append's reply. */
static pthread_mutex_t draft_write_lock = PTHREAD_MUTEX_INITIALIZER;

int store_draft_post_main(store *s, const char *channel_id,
                          const char *channel_chat_id, const char *name,
                          const char *text, const char *path, store_ids *ids,
                          cliq_error *err)
{
  char *target = store_draft_target(channel_id, name);
  char *shown = pending_main_text(text);
  if (!target || !shown) {
    free(target);
    free(shown);
    return cliq_fail(err, ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&draft_write_lock);
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = 0;
  if (!o)
    r = cliq_fail(err, ENOENT, "no draft %s", name);
  else if (json_object_get(o, "main_message_id") ||
           json_is_true(json_object_get(o, "main_pending")))
    r = cliq_fail(err, EACCES, "the thread's main message was already written");
  else {
    json_object_set_new(o, "main_pending", json_true());
    json_object_set_new(o, "main_text", json_string(shown));
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  if (r == 0) {
    json_t *p = payload_with_text(channel_id, path, text);
    if (p) {
      json_object_set_new(p, "chat_id", json_string(channel_chat_id));
      json_object_set_new(p, "draft_main", json_true());
      json_object_set_new(p, "draft", json_string(name));
    }
    r = journal(s, OUTBOX_CHANNEL_POST, target, p, ids, err);
    if (r < 0) {
      const char *fields[] = { "main_pending", "main_text" };
      json_t *values[] = { NULL, NULL };
      draft_update(s, channel_id, name, fields, values, 2);
    }
  }
  pthread_mutex_unlock(&draft_write_lock);
  free(target);
  free(shown);
  draft_changed(s, channel_id);
  return r;
}

int store_draft_append(store *s, const char *channel_id,
                       const char *channel_chat_id, const char *name,
                       const char *text, const char *path, store_ids *ids,
                       cliq_error *err)
{
  char *target = store_draft_target(channel_id, name);
  if (!target)
    return cliq_fail(err, ENOMEM, "out of memory");
  pthread_mutex_lock(&draft_write_lock);
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  char *tid = o ? opt_str(o, "thread_chat_id") : NULL;
  bool main = o && (json_object_get(o, "main_message_id") ||
                    json_is_true(json_object_get(o, "main_pending")));
  bool creating = o && json_is_true(json_object_get(o, "create_pending"));
  bool create = o && !tid && main && !creating;
  if (create) {
    json_object_set_new(o, "create_pending", json_true());
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  int r;
  if (!o) {
    r = cliq_fail(err, ENOENT, "no draft %s", name);
  } else if (tid) {
    r = store_reply(s, channel_id, tid, text, path, ids, err);
  } else if (!main) {
    r = cliq_fail(err, EDESTADDRREQ,
             "write the thread's main message (main) before its messages");
  } else if (!create) {
    /* The thread is being created: the worker moves this to it. */
    json_t *p = payload_with_text(channel_id, path, text);
    if (p)
      json_object_set_new(p, "draft", json_string(name));
    r = journal(s, OUTBOX_REPLY, target, p, ids, err);
  } else {
    json_t *p = payload_with_text(channel_id, path, text);
    if (p) {
      json_object_set_new(p, "chat_id", json_string(channel_chat_id));
      json_object_set_new(p, "title", json_string(name));
      json_object_set_new(p, "draft", json_string(name));
    }
    r = journal(s, OUTBOX_CREATE_THREAD, target, p, ids, err);
    if (r < 0) {
      const char *fields[] = { "create_pending" };
      json_t *values[] = { NULL };
      draft_update(s, channel_id, name, fields, values, 1);
    }
  }
  pthread_mutex_unlock(&draft_write_lock);
  free(tid);
  free(target);
  if (create)
    draft_changed(s, channel_id);
  return r;
}

/* ---- Waiting for delivery ------------------------------------------------------------------ */

/* Whether a request of api could be sent now: not locked, nobody waiting
 * for a slot, budget left (the governor keeps one back). */
bool api_free_now(store *s, enum cliq_api api)
{
  if (!s->gov)
    return true;
  gov_api_status st;
  memset(&st, 0, sizeof st);
  gov_status(s->gov, api, &st);
  if (st.locked_until > cliq_clock_real() || st.waiting > 0)
    return false;
  return st.limit <= 0 || st.used < st.limit - 1;
}

int store_ids_failure(store *s, const store_ids *ids)
{
  if (!ids || ids->n == 0)
    return 0;
  int r = 0;
  pthread_mutex_lock(&s->fail_lock);
  size_t kept = s->failures_next < STORE_FAILURES ? s->failures_next
                                                  : STORE_FAILURES;
  for (size_t i = 0; i < ids->n && !r; i++)
    for (size_t k = 0; k < kept && !r; k++)
      if (s->failures[k].id == ids->v[i])
        r = -s->failures[k].err;
  pthread_mutex_unlock(&s->fail_lock);
  return r;
}

/* The first of ids still pending (copied into *e), or false. */
static bool first_pending(store *s, const store_ids *ids, size_t *from,
                          outbox_entry *e)
{
  for (; *from < ids->n; (*from)++)
    if (outbox_get(s->ob, ids->v[*from], e) == 0)
      return true;
  return false;
}

int store_write_settle(store *s, const store_ids *ids, double max_s)
{
  if (!s->ob || !ids || ids->n == 0)
    return 0;
  double deadline = cliq_clock_mono() + max_s;
  size_t from = 0;
  for (;;) {
    uint64_t gen = outbox_generation(s->ob);
    outbox_entry e;
    if (!first_pending(s, ids, &from, &e))
      return store_ids_failure(s, ids);
    bool soon = !e.last_error && api_free_now(s, delivery_entry_api(&e));
    outbox_entry_clear(&e);
    double left = deadline - cliq_clock_mono();
    if (!soon || left <= 0)
      return store_ids_failure(s, ids);
    /* Short slices: the governor's state is looked at again. */
    if (outbox_wait_change(s->ob, gen, left < 0.1 ? left : 0.1) == -ECANCELED)
      return store_ids_failure(s, ids);
  }
}

int store_ids_wait(store *s, const store_ids *ids, double timeout_s)
{
  if (!s->ob || !ids || ids->n == 0)
    return 0;
  double deadline = cliq_clock_mono() + timeout_s;
  size_t from = 0;
  for (;;) {
    uint64_t gen = outbox_generation(s->ob);
    outbox_entry e;
    if (!first_pending(s, ids, &from, &e))
      return 0;
    outbox_entry_clear(&e);
    double left = timeout_s < 0 ? -1 : deadline - cliq_clock_mono();
    if (timeout_s >= 0 && left <= 0)
      return -ETIMEDOUT;
    int r = outbox_wait_change(s->ob, gen, left);
    if (r == -ECANCELED)
      return r;
  }
}

static int pending_where(store *s, bool (*match)(const outbox_entry *, void *),
                         void *arg, store_ids *out)
{
  if (!s->ob)
    return 0;
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = outbox_list(s->ob, &items, &n);
  if (r < 0)
    return r;
  for (size_t i = 0; i < n && r == 0; i++)
    if (match(&items[i], arg))
      r = store_ids_add(out, items[i].id);
  outbox_entry_list_free(items, n);
  return r;
}

static bool match_targets(const outbox_entry *e, void *arg)
{
  struct targets_arg *t = arg;
  for (size_t i = 0; i < t->n; i++)
    if (t->targets[i] && strcmp(e->target, t->targets[i]) == 0)
      return true;
  return false;
}

int store_pending_ids(store *s, const char *const *targets, size_t n,
                      store_ids *out)
{
  struct targets_arg t = { targets, n };
  return pending_where(s, match_targets, &t, out);
}

static bool match_channel(const outbox_entry *e, void *arg)
{
  struct channel_arg *c = arg;
  if (!c->channel_id)
    return true;
  const char *ch = payload_field(e->payload, "channel_id");
  if ((ch && strcmp(ch, c->channel_id) == 0) ||
      strcmp(e->target, c->channel_id) == 0)
    return true;
  size_t dl = strlen(DELIVERY_DRAFT_PREFIX), cl = strlen(c->channel_id);
  if (strncmp(e->target, DELIVERY_DRAFT_PREFIX, dl) == 0 &&
      strncmp(e->target + dl, c->channel_id, cl) == 0 &&
      e->target[dl + cl] == '/')
    return true;
  if (c->chat_id) {
    size_t l = strlen(c->chat_id);
    if (strncmp(e->target, c->chat_id, l) == 0 &&
        strncmp(e->target + l, "-T-", 3) == 0)
      return true;
  }
  return false;
}

int store_pending_ids_of_channel(store *s, const char *channel_id,
                                 const char *channel_chat_id, store_ids *out)
{
  struct channel_arg c = { channel_id, channel_chat_id };
  return pending_where(s, match_channel, &c, out);
}

/* ---- The journal as files -------------------------------------------------------------------- */

int store_outbox_list(store *s, bool failed, outbox_entry **items, size_t *n)
{
  *items = NULL;
  *n = 0;
  if (!s->ob)
    return 0;
  return failed ? outbox_list_failed(s->ob, items, n)
                : outbox_list(s->ob, items, n);
}

int store_outbox_get(store *s, bool failed, uint64_t id, outbox_entry *out)
{
  memset(out, 0, sizeof *out);
  if (!s->ob)
    return -ENOENT;
  if (!failed)
    return outbox_get(s->ob, id, out);
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = outbox_list_failed(s->ob, &items, &n);
  if (r < 0)
    return r;
  r = -ENOENT;
  for (size_t i = 0; i < n; i++)
    if (items[i].id == id) {
      *out = items[i];
      memset(&items[i], 0, sizeof items[i]);
      r = 0;
      break;
    }
  outbox_entry_list_free(items, n);
  return r;
}

int store_failed_discard(store *s, uint64_t id)
{
  if (!s->ob)
    return -ENOENT;
  return outbox_failed_remove(s->ob, id);
}

char *store_outbox_entry_text(const outbox_entry *e, size_t *len_out)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int r = buf_append(&buf, &len, &cap, "", 0);
  switch (e->kind) {
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE: {
    json_t *arr = json_is_array(e->payload)
                      ? e->payload
                      : json_object_get(e->payload, "user_ids");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
      const char *id = json_string_value(v);
      if (!id)
        continue;
      r |= buf_append_str(&buf, &len, &cap,
                          e->kind == OUTBOX_FOLLOWERS_ADD ? "+" : "-");
      r |= buf_append_str(&buf, &len, &cap, id);
      r |= buf_append_str(&buf, &len, &cap, "\n");
    }
    break;
  }
  case OUTBOX_STATE:
  case OUTBOX_CTL: {
    const char *v = payload_verb(e);
    r |= buf_append_str(&buf, &len, &cap, v ? v : "?");
    r |= buf_append_str(&buf, &len, &cap, "\n");
    break;
  }
  default: {
    const char *t = payload_text(e->payload);
    r |= buf_append_str(&buf, &len, &cap, t ? t : "");
    r |= buf_append_str(&buf, &len, &cap, "\n");
    break;
  }
  }
  if (r) {
    free(buf);
    return NULL;
  }
  if (len_out)
    *len_out = len;
  return buf;
}

void store_outbox_stats_get(store *s, store_outbox_stats *out)
{
  memset(out, 0, sizeof *out);
  if (s->ob) {
    out->depth = outbox_depth(s->ob);
    out->failed = outbox_failed_count(s->ob);
  }
  if (s->dl) {
    delivery_stats ds;
    delivery_get_stats(s->dl, &ds);
    out->delivered = ds.delivered;
    out->retries = ds.retries;
    out->sends = ds.sends;
    out->checks = ds.checks;
    out->found = ds.found;
  }
  pthread_mutex_lock(&s->fail_lock);
  out->refused = s->refused;
  pthread_mutex_unlock(&s->fail_lock);
}
