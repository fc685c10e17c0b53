/* cache/store_write.c: writes a user makes: thread state, follow, followers,
 * ctl verbs and drafts. */
#include "cache/store_i.h"
#include "cache/verbs.h"

/* ---- Thread state, follow --------------------------------------------------------- */

static void set_state_fields(json_t *obj, const struct state_edit *e)
{
  if (e->state) {
    json_object_set_new(obj, "thread_state", json_string(e->state));
    json_t *info = json_object_get(obj, "thread_state_info");
    if (json_is_object(info))
      json_object_set_new(info, "thread_state", json_string(e->state));
  }
  if (e->follower >= 0)
    json_object_set_new(obj, "is_follower", json_boolean(e->follower));
}

void edit_thread_in_list(json_t *arr, void *arg)
{
  const struct state_edit *e = arg;
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t) {
    const char *id = json_string_value(json_object_get(t, "chat_id"));
    if (id && strcmp(id, e->tid) == 0)
      set_state_fields(t, e);
  }
}

void edit_thread_info(store *s, const struct state_edit *e)
{
  char *key = make_key("tinfo", e->tid);
  if (!key)
    return;
  json_t *v = NULL;
  tcache_state st = tcache_get(s->cache, key, &v, NULL);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && v) {
    json_t *copy = json_deep_copy(v);
    if (copy) {
      set_state_fields(copy, e);
      tcache_put(s->cache, key, copy, STORE_TTL_THREAD_INFO);
      json_decref(copy);
    }
  }
  json_decref(v);
  free(key);
}

/* The channel whose chat holds a thread, from the cached channel list. */
char *channel_of_thread(store *s, const char *tid)
{
  const char *t = strstr(tid, "-T-");
  if (!t)
    return NULL;
  store_channels *cs = NULL;
  if (store_channels_get(s, STORE_CACHED, &cs, NULL) < 0)
    return NULL;
  char *id = NULL;
  for (size_t i = 0; i < cs->count && !id; i++)
    if (strlen(cs->items[i].chat_id) == (size_t)(t - tid) &&
        strncmp(cs->items[i].chat_id, tid, (size_t)(t - tid)) == 0)
      id = strdup(cs->items[i].channel_id);
  store_channels_unref(cs);
  return id;
}

void mark_closed(store *s, const char *tid)
{
  struct state_edit e = { tid, "closed", -1 };
  edit_thread_info(s, &e);
  char *channel_id = channel_of_thread(s, tid);
  edit_cached_threads(s, channel_id, edit_thread_in_list, &e);
  free(channel_id);
}

/* ---- Followers ------------------------------------------------------------------------- */

json_t *find_user(json_t *arr, const char *id_or_email)
{
  size_t i;
  json_t *u;
  json_array_foreach(arr, i, u) {
    if (strcmp(jstr(u, "user_id"), id_or_email) == 0)
      return u;
  }
  json_array_foreach(arr, i, u) {
    const char *email = jstr(u, "email_id");
    if (*email && strcasecmp(email, id_or_email) == 0)
      return u;
  }
  return NULL;
}

int store_resolve_member(store *s, const char *tid, const char *id_or_email,
                         char **user_id_out, cliq_error *err)
{
  *user_id_out = NULL;
  json_t *fol = NULL, *non = NULL;
  int r = people_json(s, tid, STORE_FOLLOWERS, STORE_PEEK, &fol, err);
  if (r == 0)
    r = people_json(s, tid, STORE_NONFOLLOWERS, STORE_PEEK, &non, err);
  if (r == 0) {
    json_t *u = find_user(fol, id_or_email);
    if (!u)
      u = find_user(non, id_or_email);
    /* Not among what we have cached: the lists may be old, ask once more. */
    if (!u) {
      json_decref(fol);
      json_decref(non);
      fol = non = NULL;
      r = people_json(s, tid, STORE_FOLLOWERS, STORE_FETCH, &fol, err);
      if (r == 0)
        r = people_json(s, tid, STORE_NONFOLLOWERS, STORE_FETCH, &non, err);
      if (r == 0) {
        u = find_user(fol, id_or_email);
        if (!u)
          u = find_user(non, id_or_email);
      }
    }
    if (r == 0) {
      if (u) {
        *user_id_out = xstrdup(jstr(u, "user_id"));
        if (!*user_id_out)
          r = cliq_fail(err, ENOMEM, "out of memory");
      } else {
        r = cliq_fail(err, EINVAL, "%s is not a member of this channel",
                 id_or_email);
      }
    }
  }
  json_decref(fol);
  json_decref(non);
  return r;
}

bool id_in(const char *id, const char *const *ids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(id, ids[i]) == 0)
      return true;
  return false;
}

/* Moves users between the cached followers and non-followers lists. */
void move_people(store *s, const char *tid, const char *const *ids,
                        size_t n, bool to_followers)
{
  char *kf = make_key("followers", tid), *kn = make_key("nonfollowers", tid);
  json_t *fol = NULL, *non = NULL;
  tcache_state sf = kf ? tcache_get(s->cache, kf, &fol, NULL) : TCACHE_MISS;
  tcache_state sn = kn ? tcache_get(s->cache, kn, &non, NULL) : TCACHE_MISS;
  bool have_f = (sf == TCACHE_FRESH || sf == TCACHE_STALE) && fol;
  bool have_n = (sn == TCACHE_FRESH || sn == TCACHE_STALE) && non;
  json_t *nf = have_f ? json_deep_copy(fol) : NULL;
  json_t *nn = have_n ? json_deep_copy(non) : NULL;
  json_t *from = to_followers ? nn : nf, *to = to_followers ? nf : nn;
  bool complete = true;
  for (size_t i = 0; i < n; i++) {
    json_t *u = NULL;
    if (from) {
      size_t k;
      json_t *x;
      json_array_foreach(from, k, x) {
        if (strcmp(jstr(x, "user_id"), ids[i]) == 0) {
          u = json_incref(x);
          json_array_remove(from, k);
          break;
        }
      }
    }
    if (to && !find_user(to, ids[i])) {
      if (u)
        json_array_append(to, u);
      else
        complete = false;   /* we do not know this person's email and name */
    }
    json_decref(u);
  }
  if (nf && (complete || !to_followers))
    tcache_put(s->cache, kf, nf, STORE_TTL_PEOPLE);
  else if (kf)
    tcache_invalidate(s->cache, kf);
  if (nn && (complete || to_followers))
    tcache_put(s->cache, kn, nn, STORE_TTL_PEOPLE);
  else if (kn)
    tcache_invalidate(s->cache, kn);
  json_decref(nf);
  json_decref(nn);
  json_decref(fol);
  json_decref(non);
  free(kf);
  free(kn);
}

/* ---- ctl ------------------------------------------------------------------------------ */

static const char *const ctl_verbs[] = CLIQ_CTL_VERB_WORDS;

bool store_ctl_verb_valid(const char *verb)
{
  for (size_t i = 0; i < sizeof ctl_verbs / sizeof *ctl_verbs; i++)
    if (strcmp(verb, ctl_verbs[i]) == 0)
      return true;
  return false;
}

void forget_people(store *s, const char *tid)
{
  for (int w = STORE_MEMBERS; w <= STORE_NONFOLLOWERS; w++) {
    char *k = make_key(doc_key_kind(people_doc((enum store_people)w)), tid);
    if (k)
      tcache_invalidate(s->cache, k);
    free(k);
  }
}

/* ---- Drafts ------------------------------------------------------------------------------ */

#define DRAFT_TTL (10.0 * 365 * 86400)

/* The channel's drafts object (borrowed, lock held), loading it from the
 * cache the first time. */
static json_t *drafts_of_locked(store *s, const char *channel_id)
{
  json_t *d = json_object_get(s->drafts, channel_id);
  if (d)
    return d;
  char *key = make_key("drafts", channel_id);
  json_t *v = NULL;
  tcache_state st = key ? tcache_get(s->cache, key, &v, NULL) : TCACHE_MISS;
  free(key);
  if ((st == TCACHE_FRESH || st == TCACHE_STALE) && json_is_object(v))
    d = json_deep_copy(v);
  else
    d = json_object();
  json_decref(v);
  if (!d)
    return NULL;
  json_object_set_new(s->drafts, channel_id, d);
  return d;
}

void drafts_persist_locked(store *s, const char *channel_id)
{
  json_t *d = json_object_get(s->drafts, channel_id);
  char *key = make_key("drafts", channel_id);
  if (d && key) {
    json_t *copy = json_deep_copy(d);
    if (copy)
      tcache_put(s->cache, key, copy, DRAFT_TTL);
    json_decref(copy);
  }
  free(key);
}

/* The draft object (borrowed, lock held), NULL when absent. */
json_t *draft_obj_locked(store *s, const char *channel_id,
                                const char *name)
{
  json_t *d = channel_id && name ? drafts_of_locked(s, channel_id) : NULL;
  return d ? json_object_get(d, name) : NULL;
}

void store_draft_clear(store_draft *d)
{
  if (!d)
    return;
  free(d->name);
  free(d->main_message_id);
  free(d->main_text);
  free(d->thread_chat_id);
  memset(d, 0, sizeof *d);
}

char *opt_str(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? strdup(v) : NULL;
}

char *store_draft_target(const char *channel_id, const char *name)
{
  char *t = NULL;
  if (asprintf(&t, "%s%s/%s", DELIVERY_DRAFT_PREFIX, channel_id, name) < 0)
    return NULL;
  return t;
}

/* A draft's main as the file shows it before Cliq has it. */
char *pending_main_text(const char *text)
{
  char ts[32], *out = NULL;
  store_format_time((int64_t)(cliq_clock_real() * 1000), ts, sizeof ts);
  if (asprintf(&out, "%s me: %s\n", ts, text ? text : "") < 0)
    return NULL;
  return out;
}

int store_draft_create(store *s, const char *channel_id, const char *name)
{
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  int r = 0;
  if (!d)
    r = -ENOMEM;
  else if (json_object_get(d, name))
    r = -EEXIST;
  else if (json_object_set_new(d, name, json_object()) < 0)
    r = -ENOMEM;
  else
    drafts_persist_locked(s, channel_id);
  pthread_mutex_unlock(&s->lock);
  return r;
}

int store_draft_get(store *s, const char *channel_id, const char *name,
                    store_draft *out)
{
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = -ENOENT;
  if (o) {
    out->name = strdup(name);
    out->main_message_id = opt_str(o, "main_message_id");
    out->main_text = opt_str(o, "main_text");
    out->thread_chat_id = opt_str(o, "thread_chat_id");
    out->main_pending = json_is_true(json_object_get(o, "main_pending"));
    out->create_pending = json_is_true(json_object_get(o, "create_pending"));
    r = out->name ? 0 : -ENOMEM;
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

int store_draft_list(store *s, const char *channel_id, char ***names_out,
                     size_t *n_out)
{
  *names_out = NULL;
  *n_out = 0;
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  size_t n = d ? json_object_size(d) : 0;
  char **names = calloc(n + 1, sizeof *names);
  int r = names ? 0 : -ENOMEM;
  size_t k = 0;
  const char *name;
  json_t *o;
  if (names && d) {
    json_object_foreach(d, name, o) {
      names[k] = strdup(name);
      if (!names[k]) {
        r = -ENOMEM;
        break;
      }
      k++;
    }
  }
  pthread_mutex_unlock(&s->lock);
  if (r < 0) {
    for (size_t i = 0; i < k; i++)
      free(names[i]);
    free(names);
    return r;
  }
  *names_out = names;
  *n_out = k;
  return 0;
}

int store_draft_discard(store *s, const char *channel_id, const char *name)
{
  pthread_mutex_lock(&s->lock);
  json_t *d = drafts_of_locked(s, channel_id);
  json_t *o = d ? json_object_get(d, name) : NULL;
  int r = 0;
  if (!o)
    r = -ENOENT;
  else if (json_object_get(o, "thread_chat_id"))
    r = -EPERM;
  else if (json_is_true(json_object_get(o, "main_pending")) ||
           json_is_true(json_object_get(o, "create_pending")))
    r = -EBUSY;
  else {
    json_object_del(d, name);
    drafts_persist_locked(s, channel_id);
  }
  pthread_mutex_unlock(&s->lock);
  return r;
}

/* Sets (value != NULL) or removes fields of a draft and persists it. */
int draft_update(store *s, const char *channel_id, const char *name,
                        const char *const *fields, json_t *const *values,
                        size_t n)
{
  pthread_mutex_lock(&s->lock);
  json_t *o = draft_obj_locked(s, channel_id, name);
  int r = o ? 0 : -ENOENT;
  for (size_t i = 0; o && i < n; i++) {
    if (values[i])
      r |= json_object_set(o, fields[i], values[i]) < 0 ? -ENOMEM : 0;
    else
      json_object_del(o, fields[i]);
  }
  if (o)
    drafts_persist_locked(s, channel_id);
  pthread_mutex_unlock(&s->lock);
  return r < 0 ? -ENOMEM : r;
}

void draft_changed(store *s, const char *channel_id)
{
  if (s->drafts_changed && channel_id)
    s->drafts_changed(s->cb_ctx, channel_id);
}
