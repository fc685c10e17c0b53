/* cache/delivery_send.c: what a journal entry asks for, and sending it to
 * Cliq. */
#include "cache/delivery_i.h"

/* ---- small helpers ----------------------------------------------------- */

bool is_draft(const char *target)
{
  return strncmp(target, DELIVERY_DRAFT_PREFIX,
                 strlen(DELIVERY_DRAFT_PREFIX)) == 0;
}

bool is_post_kind(outbox_kind k)
{
  return k == OUTBOX_REPLY || k == OUTBOX_CHANNEL_POST ||
         k == OUTBOX_CREATE_THREAD;
}

static const char *payload_str(json_t *payload, const char *key)
{
  json_t *v = json_is_string(payload) ? payload : json_object_get(payload, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *field_str(json_t *payload, const char *key)
{
  json_t *v = json_object_get(payload, key);
  return json_is_string(v) && json_string_length(v) ? json_string_value(v)
                                                     : NULL;
}

/* "<ms>_<n>" -> ms; 0 when the id does not start with a time. */
int64_t ms_of_id(const char *id)
{
  if (!id)
    return 0;
  char *end = NULL;
  long long ms = strtoll(id, &end, 10);
  return end && end != id && ms > 0 ? (int64_t)ms : 0;
}

/* Texts compare without the white space at either end (Cliq may trim). */
bool same_text(const char *a, const char *b)
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

void op_clear(struct op *op)
{
  free(op->chat_id);
  free(op->parent);
  free(op->ids);
  memset(op, 0, sizeof(*op));
}

/* ---- error classes ---------------------------------------------------------- */

/* Refused for good: sending it again cannot help. */
bool is_permanent(delivery *d, const cliq_error *err)
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
int op_prepare(delivery *d, const outbox_entry *e, struct op *op,
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
      cliq_fail(err, EINVAL, "%s entry without text", outbox_kind_name(e->kind));
      return -EINVAL;
    }
    if (e->kind == OUTBOX_REPLY)
      return 0;
    op->channel_id = field_str(p, "channel_id");
    if (!op->channel_id && e->kind == OUTBOX_CHANNEL_POST &&
        !is_draft(e->target))
      op->channel_id = e->target;
    if (!op->channel_id) {
      cliq_fail(err, EINVAL, "%s entry without a channel id",
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
      cliq_fail(err, EINVAL, "create_thread entry without a title");
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
      cliq_fail(err, EDESTADDRREQ, "the thread's main message was never posted");
      return -EDESTADDRREQ;
    }
    if (!op->parent)
      goto oom;
    return 0;
  case OUTBOX_STATE:
  case OUTBOX_CTL:
    op->verb = entry_verb(e);
    if (op->verb == V_NONE) {
      cliq_fail(err, EINVAL, "%s entry with an unknown action",
              outbox_kind_name(e->kind));
      return -EINVAL;
    }
    return 0;
  case OUTBOX_FOLLOWERS_ADD:
  case OUTBOX_FOLLOWERS_REMOVE: {
    json_t *ids = json_is_array(p) ? p : json_object_get(p, "user_ids");
    size_t n = json_array_size(ids);
    if (n == 0) {
      cliq_fail(err, EINVAL, "%s entry without user ids",
              outbox_kind_name(e->kind));
      return -EINVAL;
    }
    op->ids = calloc(n, sizeof(*op->ids));
    if (!op->ids)
      goto oom;
    for (size_t i = 0; i < n; i++) {
      const char *id = json_string_value(json_array_get(ids, i));
      if (!id || !*id) {
        cliq_fail(err, EINVAL, "%s entry with a user id that is not a string",
                outbox_kind_name(e->kind));
        return -EINVAL;
      }
      op->ids[op->nids++] = id;
    }
    return 0;
  }
  default:
    cliq_fail(err, EINVAL, "entry of an unknown kind");
    return -EINVAL;
  }
oom:
  cliq_fail(err, ENOMEM, "out of memory");
  return -ENOMEM;
}

/* The channel's chat id, asked from Cliq when the payload did not carry it. */
int op_chat_id(delivery *d, struct op *op, cliq_error *err)
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
    cliq_fail(err, ENOMEM, "out of memory");
    return -ENOMEM;
  }
  return 0;
}

void sent_clear(struct sent *s)
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

int op_send(delivery *d, const outbox_entry *e, struct op *op,
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
    cliq_fail(err, EINVAL, "nothing to send");
    return -EINVAL;
  }
}
