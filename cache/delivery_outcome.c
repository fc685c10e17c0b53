/* cache/delivery_outcome.c: outcomes: checks of a send whose answer was lost,
 * delivered, retried later or refused for good. */
#include "cache/delivery_i.h"

static void learn_self_now(delivery *d);

/* ---- checks of unknown outcomes ------------------------------------------- */

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
    cliq_fail(err, ENOMEM, "out of memory");
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
    cliq_fail(err, ENOMEM, "out of memory");
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
      cliq_fail(&err, -r, "delivered, but the delivery record could not be "
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
      cliq_fail(&err, -r, "thread created, but its entries could not be moved "
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
    cliq_fail(&err, -r, "delivered, but the journal entry could not be "
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

enum outcome process(delivery *d, const outbox_entry *e,
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
    cliq_fail(&err, EDESTADDRREQ, "the draft's thread was never created");
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
    double now = cliq_clock_real();
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
    cliq_fail(&err, -r, "the journal could not be written: %s", strerror(-r));
    o = retry_later(d, e, unsure, &err);
    goto out;
  }
  count(d, &d->stats.sends);
  r = op_send(d, e, &op, &s, &err);
  if (r == 0 && e->kind == OUTBOX_CREATE_THREAD && !s.thread_chat_id) {
    cliq_fail(&err, EIO, "thread created, but Cliq did not say which");
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
