/* cache/store_self.c: who "me" is (learnt from the sender of our own first
 * post, kept in the cache) and our own messages, built locally and appended
 * to their logs. */
#include "cache/store_i.h"

void store_self_get(store *s, char **id_out, char **name_out)
{
  self_load(s);
  pthread_mutex_lock(&s->lock);
  *id_out = s->self_id ? strdup(s->self_id) : NULL;
  *name_out = s->self_name ? strdup(s->self_name) : NULL;
  pthread_mutex_unlock(&s->lock);
}

void self_load(store *s)
{
  pthread_mutex_lock(&s->lock);
  bool need = !s->self_loaded;
  s->self_loaded = true;
  pthread_mutex_unlock(&s->lock);
  if (!need)
    return;
  json_t *v = NULL;
  tcache_state st = tcache_get(s->cache, "self", &v, NULL);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    pthread_mutex_lock(&s->lock);
    if (!s->self_id) {
      s->self_id = strdup(jstr(v, "id"));
      s->self_name = strdup(jstr(v, "name"));
    }
    pthread_mutex_unlock(&s->lock);
  }
  json_decref(v);
}

static void self_learn(store *s, const char *id, const char *name)
{
  if (!id || !*id)
    return;
  pthread_mutex_lock(&s->lock);
  bool changed = !s->self_id || strcmp(s->self_id, id) != 0 ||
                 strcmp(s->self_name ? s->self_name : "", name ? name : "") != 0;
  if (changed) {
    free(s->self_id);
    free(s->self_name);
    s->self_id = strdup(id);
    s->self_name = strdup(name ? name : "");
  }
  pthread_mutex_unlock(&s->lock);
  if (changed) {
    json_t *v = json_pack("{s:s, s:s}", "id", id, "name", name ? name : "");
    if (v)
      tcache_put(s->cache, "self", v, 365.0 * 86400.0);
    json_decref(v);
  }
}

static bool line_sender_if_id(void *ctx, uint64_t off, const char *id)
{
  struct sender_of *so = ctx;
  cliq_message m;
  if (log_line_message(so->log, off, &m) < 0)
    return false;
  bool same = strcmp(m.id, id) == 0;
  if (same && m.sender_id && *m.sender_id && !so->id) {
    so->id = strdup(m.sender_id);
    so->name = strdup(m.sender_name ? m.sender_name : "");
  }
  cliq_message_clear(&m);
  return same;
}

/* Who sent message msg_id (normalized) of a known log, if it is there. */
static bool log_sender_of(store *s, const char *chat_id, const char *msg_id,
                          char **sender_id, char **sender_name)
{
  *sender_id = *sender_name = NULL;
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  pthread_mutex_unlock(&s->lock);
  if (!log)
    return false;
  struct sender_of so = { .log = log };
  pthread_mutex_lock(&log->lock);
  if (log->known)
    idset_has(&log->ids, msg_id, idset_hash(msg_id), line_sender_if_id, &so);
  pthread_mutex_unlock(&log->lock);
  if (!so.id || !so.name) {
    free(so.id);
    free(so.name);
    return false;
  }
  *sender_id = so.id;
  *sender_name = so.name;
  return true;
}

void self_probe_drop(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  if (s->probe_chat && (!chat_id || strcmp(s->probe_chat, chat_id) == 0)) {
    free(s->probe_chat);
    free(s->probe_msg);
    s->probe_chat = s->probe_msg = NULL;
  }
  pthread_mutex_unlock(&s->lock);
}

/* Whether the next fetch of chat_id should go to Cliq at once: it holds the
 * post we learn our own user from. */
bool self_probe_pending(store *s, const char *chat_id)
{
  pthread_mutex_lock(&s->lock);
  bool p = s->probe_chat && strcmp(s->probe_chat, chat_id) == 0;
  pthread_mutex_unlock(&s->lock);
  return p;
}

/* Looks for the probe post among fetched messages of chat_id: its sender is
 * us. */
void self_spot(store *s, const char *chat_id, const cliq_message *msgs,
                      size_t n)
{
  if (!self_probe_pending(s, chat_id))
    return;
  pthread_mutex_lock(&s->lock);
  char *want = s->probe_msg ? strdup(s->probe_msg) : NULL;
  pthread_mutex_unlock(&s->lock);
  for (size_t i = 0; want && i < n; i++) {
    if (strcmp(msgs[i].id, want) != 0 || !msgs[i].sender_id)
      continue;
    self_learn(s, msgs[i].sender_id, msgs[i].sender_name);
    self_probe_drop(s, chat_id);
    if (s->dl)
      delivery_learn_self(s->dl, msgs[i].sender_id);
    break;
  }
  free(want);
}

/* The message we just posted, as Cliq would list it, built locally once we
 * know who we are.  Until then (a fresh account) NULL, with no request: the
 * post becomes the probe, the next fetch of its chat (at once, see
 * self_probe_pending) brings it and tells who we are (self_spot). */
json_t *own_message(store *s, const char *chat_id, const char *msg_id,
                           const char *text)
{
  if (!msg_id || !*msg_id)
    return NULL;
  char *id = cliq_normalize_message_id(msg_id);
  if (!id)
    return NULL;
  self_load(s);
  pthread_mutex_lock(&s->lock);
  char *self_id = s->self_id ? strdup(s->self_id) : NULL;
  char *self_name = s->self_name ? strdup(s->self_name) : NULL;
  pthread_mutex_unlock(&s->lock);
  json_t *msg = NULL;
  if (!self_id && log_sender_of(s, chat_id, id, &self_id, &self_name)) {
    /* A refresh brought the post before this hook ran. */
    self_learn(s, self_id, self_name);
    self_probe_drop(s, NULL);
  } else if (!self_id) {
    pthread_mutex_lock(&s->lock);
    if (!s->probe_msg) {
      s->probe_chat = strdup(chat_id);
      s->probe_msg = strdup(id);
      if (!s->probe_chat || !s->probe_msg) {
        free(s->probe_chat);
        free(s->probe_msg);
        s->probe_chat = s->probe_msg = NULL;
      }
    }
    pthread_mutex_unlock(&s->lock);
  } else {
    /* Message ids are "<epoch ms>_<n>": the time is the id's first part. */
    char *end = NULL;
    long long ms = strtoll(id, &end, 10);
    if (!end || *end != '_' || ms <= 0)
      ms = (long long)(cliq_clock_real() * 1000);
    msg = json_pack("{s:s, s:I, s:s, s:{s:s, s:s}, s:{s:s}}", "id", id, "time",
                    (json_int_t)ms, "type", "text", "sender", "id", self_id,
                    "name", self_name ? self_name : "", "content", "text",
                    text);
  }
  /* The delivery worker needs our id too (checking lost outcomes). */
  pthread_mutex_lock(&s->lock);
  char *known_id = s->self_id ? strdup(s->self_id) : NULL;
  pthread_mutex_unlock(&s->lock);
  if (known_id && s->dl)
    delivery_learn_self(s->dl, known_id);
  free(known_id);
  free(self_id);
  free(self_name);
  free(id);
  return msg;
}

/* Appends our own message to a known log and persists it. */
void log_append_own(store *s, const char *chat_id, json_t *raw)
{
  if (!raw)
    return;
  pthread_mutex_lock(&s->lock);
  store_log *log = smap_get(&s->logs, chat_id);
  pthread_mutex_unlock(&s->lock);
  if (!log)
    return;
  cliq_message m;
  if (cliq_parse_message(raw, &m, NULL) < 0)
    return;
  log_load_evicted(s, log);
  pthread_mutex_lock(&log->lock);
  bool grew = false;
  json_t *persist = NULL;
  if (log->known) {
    grew = log_append_locked(log, &m, false) > 0;
    if (grew)
      persist = log_persistent_locked(log);
  }
  pthread_mutex_unlock(&log->lock);
  cliq_message_clear(&m);
  if (persist) {
    /* Keeps the entry's freshness (stretched as a fetch's is, or under
     * pressure our own post would make the log stale at once): the other
     * people's messages still come with the next refresh. */
    double age = 0;
    json_t *old = NULL;
    tcache_state st = tcache_get(s->cache, log->key, &old, &age);
    json_decref(old);
    double left = ttl_for(s, STORE_TTL_LOG, CLIQ_API_CHATS_MESSAGES) -
                  age * s->scale;
    if (st != TCACHE_FRESH || left < 0)
      left = 0;
    tcache_put(s->cache, log->key, persist, left);
    json_decref(persist);
  }
  if (grew && s->log_grew)
    s->log_grew(s->cb_ctx, chat_id);
}
