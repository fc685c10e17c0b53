/* cache/store_hooks.c: delivery hooks: what the cache learns from Cliq's
 * answers to our writes. */
#include "cache/store_i.h"

/* ---- Delivery hooks: the cache learns from Cliq's answers -------------------------------- */

const char *payload_text(json_t *p)
{
  json_t *v = json_is_string(p) ? p : json_object_get(p, "text");
  return json_string_value(v);
}

const char *payload_field(json_t *p, const char *k)
{
  return json_is_object(p) ? json_string_value(json_object_get(p, k)) : NULL;
}

const char *payload_verb(const outbox_entry *e)
{
  if (json_is_string(e->payload))
    return json_string_value(e->payload);
  return payload_field(e->payload,
                       e->kind == OUTBOX_STATE ? "action" : "verb");
}

static void set_thread_state(store *s, const char *channel_id, const char *tid,
                             bool closed)
{
  struct state_edit ed = { tid, closed ? "closed" : "open", -1 };
  edit_thread_info(s, &ed);
  char *ch = channel_id ? NULL : channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id ? channel_id : ch, edit_thread_in_list,
                      &ed);
  free(ch);
}

static void set_following(store *s, const char *channel_id, const char *tid,
                          bool follow)
{
  struct state_edit ed = { tid, NULL, follow };
  edit_thread_info(s, &ed);
  char *ch = channel_id ? NULL : channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id ? channel_id : ch, edit_thread_in_list,
                      &ed);
  free(ch);
  self_load(s);
  pthread_mutex_lock(&s->lock);
  char *self = s->self_id ? strdup(s->self_id) : NULL;
  pthread_mutex_unlock(&s->lock);
  if (self) {
    const char *ids[] = { self };
    move_people(s, tid, ids, 1, follow);
  } else {
    forget_people(s, tid);
  }
  free(self);
}

static void followers_moved(store *s, const outbox_entry *e, bool added)
{
  json_t *arr = json_is_array(e->payload)
                    ? e->payload
                    : json_object_get(e->payload, "user_ids");
  size_t n = json_array_size(arr);
  const char **ids = calloc(n + 1, sizeof *ids);
  if (!ids) {
    forget_people(s, e->target);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *id = json_string_value(json_array_get(arr, i));
    if (id)
      ids[k++] = id;
  }
  move_people(s, e->target, ids, k, added);
  free(ids);
}

static void add_thread_to_list(json_t *arr, void *arg)
{
  struct new_thread *nt = arg;
  const char *id = jstr(nt->thread, "chat_id");
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t)
    if (strcmp(jstr(t, "chat_id"), id) == 0)
      return;
  json_array_append(arr, nt->thread);
}

void on_thread_created(void *ctx, const outbox_entry *e,
                              const char *tid)
{
  store *s = ctx;
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *name = payload_field(e->payload, "draft");
  const char *chat = payload_field(e->payload, "chat_id");
  if (!channel_id || !name || !tid)
    return;
  json_t *tid_v = json_string(tid);
  const char *fields[] = { "thread_chat_id", "create_pending" };
  json_t *values[] = { tid_v, NULL };
  draft_update(s, channel_id, name, fields, values, 2);
  json_decref(tid_v);
  store_draft d;
  char *parent = NULL;
  if (store_draft_get(s, channel_id, name, &d) == 0) {
    parent = d.main_message_id;
    d.main_message_id = NULL;
    store_draft_clear(&d);
  }
  int64_t now_ms = (int64_t)(cliq_clock_real() * 1000);
  json_t *thread = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:{s:I}}", "chat_id", tid,
      "parent_chat_id", chat ? chat : "", "thread_message_id",
      parent ? parent : "", "title", name, "thread_state", "open",
      "follower_count", (json_int_t)1, "is_follower", 1,
      "last_message_information", "time", (json_int_t)now_ms);
  free(parent);
  if (thread) {
    struct new_thread nt = { thread };
    edit_cached_threads(s, channel_id, add_thread_to_list, &nt);
    json_decref(thread);
  }
  draft_changed(s, channel_id);
}

/* A draft's main was delivered: it shows as Cliq has it, written once. */
static void draft_main_delivered(store *s, const outbox_entry *e,
                                 const char *mid, json_t *raw)
{
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *name = payload_field(e->payload, "draft");
  if (!channel_id || !name)
    return;
  char *main_text = NULL;
  size_t main_len = 0;
  if (raw)
    render_message_json(raw, &main_text, &main_len, NULL);
  if (!main_text)
    main_text = pending_main_text(payload_text(e->payload));
  json_t *id_v = json_string(mid ? mid : "");
  json_t *text_v = main_text ? json_string(main_text) : NULL;
  const char *fields[] = { "main_message_id", "main_text", "main_pending" };
  json_t *values[] = { id_v, text_v, NULL };
  draft_update(s, channel_id, name, fields, values, text_v ? 3 : 1);
  if (!text_v) {
    const char *f[] = { "main_pending" };
    json_t *v[] = { NULL };
    draft_update(s, channel_id, name, f, v, 1);
  }
  json_decref(id_v);
  json_decref(text_v);
  free(main_text);
  draft_changed(s, channel_id);
}

void on_delivered(void *ctx, const outbox_entry *e,
                         const char *message_id)
{
  store *s = ctx;
  const char *channel_id = payload_field(e->payload, "channel_id");
  const char *text = payload_text(e->payload);
  switch (e->kind) {
  case OUTBOX_REPLY: {
    json_t *raw = own_message(s, e->target, message_id, text ? text : "");
    log_append_own(s, e->target, raw);
    json_decref(raw);
    break;
  }
  case OUTBOX_CHANNEL_POST: {
    const char *chat = payload_field(e->payload, "chat_id");
    json_t *raw = chat ? own_message(s, chat, message_id, text ? text : "")
                       : NULL;
    if (chat)
      log_append_own(s, chat, raw);
    if (json_is_true(json_object_get(e->payload, "draft_main")))
      draft_main_delivered(s, e, message_id, raw);
    json_decref(raw);
    break;
  }
  case OUTBOX_CREATE_THREAD: {
    store_draft d;
    const char *name = payload_field(e->payload, "draft");
    if (channel_id && name && store_draft_get(s, channel_id, name, &d) == 0) {
      if (d.thread_chat_id) {
        json_t *raw = own_message(s, d.thread_chat_id, message_id,
                                  text ? text : "");
        log_append_own(s, d.thread_chat_id, raw);
        json_decref(raw);
      }
      store_draft_clear(&d);
    }
    break;
  }
  case OUTBOX_STATE:
  case OUTBOX_CTL: {
    const char *verb = payload_verb(e);
    if (!verb)
      break;
    if (!strcmp(verb, "close") || !strcmp(verb, "closed"))
      set_thread_state(s, channel_id, e->target, true);
    else if (!strcmp(verb, "reopen") || !strcmp(verb, "open"))
      set_thread_state(s, channel_id, e->target, false);
    else if (!strcmp(verb, "follow") || !strcmp(verb, "unfollow"))
      set_following(s, channel_id, e->target, !strcmp(verb, "follow"));
    else if (!strcmp(verb, "leave"))
      forget_people(s, e->target);
    break;
  }
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE:
    followers_moved(s, e, e->kind == OUTBOX_FOLLOWERS_ADD);
    if (s->threads_changed && channel_id)
      s->threads_changed(s->cb_ctx, channel_id);
    break;
  default:
    break;
  }
}

void on_failed(void *ctx, const outbox_entry *e, const cliq_error *err)
{
  store *s = ctx;
  int en = err && err->err ? err->err : EIO;
  pthread_mutex_lock(&s->fail_lock);
  s->failures[s->failures_next % STORE_FAILURES].id = e->id;
  s->failures[s->failures_next % STORE_FAILURES].err = en;
  s->failures_next++;
  s->refused++;
  pthread_mutex_unlock(&s->fail_lock);
  const char *channel_id = payload_field(e->payload, "channel_id");
  if (e->kind == OUTBOX_REPLY && en == EACCES && err &&
      strcmp(err->code, "operation_not_allowed") == 0)
    mark_closed(s, e->target);    /* closed by someone else meanwhile */
  const char *name = payload_field(e->payload, "draft");
  if (channel_id && name) {
    /* The step can be written again. */
    if (e->kind == OUTBOX_CHANNEL_POST &&
        json_is_true(json_object_get(e->payload, "draft_main"))) {
      const char *fields[] = { "main_pending", "main_text" };
      json_t *values[] = { NULL, NULL };
      draft_update(s, channel_id, name, fields, values, 2);
      draft_changed(s, channel_id);
    } else if (e->kind == OUTBOX_CREATE_THREAD) {
      const char *fields[] = { "create_pending" };
      json_t *values[] = { NULL };
      draft_update(s, channel_id, name, fields, values, 1);
      draft_changed(s, channel_id);
    }
  }
  if (s->write_failed)
    s->write_failed(s->cb_ctx, e, payload_field(e->payload, "path"), err);
}

int store_start(store *s)
{
  int r = store_start_refresher(s);
  if (r == 0 && s->sync != STORE_SYNC_OFF)
    r = store_start_syncer(s);
  if (r == 0 && s->dl) {
    r = delivery_start(s->dl);
    if (r == -EALREADY)
      r = 0;
  }
  return r;
}
