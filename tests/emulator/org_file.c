/* The --org format (PROTOCOL.md): loading an organization from it, and
 * dumping a running one's state in it. */
#include "org_i.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading the --org format ---- */

static int load_uset(struct emu_org *org, json_t *arr, struct emu_uset *s,
                     const char *what, char *err, size_t errlen)
{
  size_t i;
  json_t *v;
  if (!arr)
    return 0;
  if (!json_is_array(arr)) {
    snprintf(err, errlen, "%s: not an array", what);
    return -1;
  }
  json_array_foreach(arr, i, v) {
    int u = emu_user_find(org, json_string_value(v));
    if (u < 0) {
      snprintf(err, errlen, "%s: unknown user %s", what,
               json_string_value(v) ? json_string_value(v) : "(not a string)");
      return -1;
    }
    emu_uset_add(s, u);
  }
  return 0;
}

static int cmp_msg_time(const void *a, const void *b)
{
  const struct emu_msg *x = a, *y = b;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  return strcmp(x->id, y->id);
}

static int load_messages(struct emu_org *org, json_t *arr, struct emu_chat *c,
                         int64_t *clock_ms, char *err, size_t errlen)
{
  size_t i;
  json_t *m;
  if (!arr)
    return 0;
  if (!json_is_array(arr)) {
    snprintf(err, errlen, "%s: messages is not an array", c->chat_id);
    return -1;
  }
  json_array_foreach(arr, i, m) {
    if (!json_is_object(m)) {
      snprintf(err, errlen, "%s: message %zu is not an object", c->chat_id, i);
      return -1;
    }
    int sender = emu_user_find(org, json_string_value(json_object_get(m, "sender")));
    if (sender < 0) {
      snprintf(err, errlen, "%s: message %zu: unknown sender", c->chat_id, i);
      return -1;
    }
    json_t *tv = json_object_get(m, "time");
    int64_t t;
    if (json_is_integer(tv))
      t = json_integer_value(tv);
    else if (json_is_string(tv))
      t = strtoll(json_string_value(tv), NULL, 10);
    else
      t = *clock_ms + 60000;
    *clock_ms = t;
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *file = json_object_get(m, "file");
    const char *text = json_string_value(json_object_get(m, "text"));
    bool is_file = (type && strcmp(type, "file") == 0) || (!text && file);
    if (is_file && !json_is_object(file)) {
      snprintf(err, errlen, "%s: message %zu: file message without file",
               c->chat_id, i);
      return -1;
    }
    if (!is_file && !text) {
      snprintf(err, errlen, "%s: message %zu: no text", c->chat_id, i);
      return -1;
    }
    struct emu_msg *e = org_chat_push(c);
    const char *id = json_string_value(json_object_get(m, "id"));
    char buf[96];
    if (id)
      emu_normalize_id(id, buf, sizeof buf);
    else
      snprintf(buf, sizeof buf, "%" PRId64 "_%" PRIu64, t, org_msg_suffix(org));
    e->id = org_xstrdup(buf);
    e->time_ms = t;
    e->sender = sender;
    if (is_file) {
      e->file = json_deep_copy(file);
      e->text = NULL;
    } else {
      e->text = org_xstrdup(text);
    }
  }
  if (c->n > 1)
    qsort(c->msgs, c->n, sizeof *c->msgs, cmp_msg_time);
  return 0;
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

static bool jbool(json_t *o, const char *key, bool dflt)
{
  json_t *v = json_object_get(o, key);
  return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int load_thread(struct emu_org *org, struct emu_channel *ch, json_t *jt,
                       char *err, size_t errlen)
{
  if (!json_is_object(jt)) {
    snprintf(err, errlen, "%s: thread is not an object", ch->unique_name);
    return -1;
  }
  const char *tmid = jstr(jt, "thread_message_id", NULL);
  long parent = tmid ? emu_chat_find(org, &ch->chat, tmid) : -1;
  if (parent < 0) {
    snprintf(err, errlen, "%s: thread %s: thread_message_id %s names no message of the channel",
             ch->unique_name, jstr(jt, "title", "?"), tmid ? tmid : "(missing)");
    return -1;
  }
  struct emu_msg *pm = &ch->chat.msgs[parent];
  if (pm->thread >= 0) {
    snprintf(err, errlen, "%s: two threads grow from message %s",
             ch->unique_name, pm->id);
    return -1;
  }
  struct emu_thread *th = org_add_thread(ch);
  pm->thread = th->index;
  const char *cid = jstr(jt, "chat_id", NULL);
  if (cid && strncmp(cid, ch->chat.chat_id, strlen(ch->chat.chat_id)) == 0 &&
      strncmp(cid + strlen(ch->chat.chat_id), "-T-", 3) == 0)
    th->chat.chat_id = org_xstrdup(cid);
  else if (cid) {
    snprintf(err, errlen, "thread chat id %s is not <channel chat id>-T-<n>", cid);
    return -1;
  } else
    th->chat.chat_id = org_new_thread_chat_id(org, ch->chat.chat_id);
  if (emu_find_thread(org, th->chat.chat_id) != th) {
    snprintf(err, errlen, "duplicate thread chat id %s", th->chat.chat_id);
    return -1;
  }
  th->thread_message_id = org_xstrdup(pm->id);
  th->title = org_xstrdup(jstr(jt, "title", "Thread"));
  const char *state = jstr(jt, "state", "open");
  if (strcmp(state, "open") != 0 && strcmp(state, "closed") != 0) {
    snprintf(err, errlen, "thread %s: state must be open or closed", th->title);
    return -1;
  }
  th->closed = strcmp(state, "closed") == 0;
  th->muted = jbool(jt, "muted", false);
  th->left = jbool(jt, "left", false);
  th->created_ms = pm->time_ms;
  int64_t clock_ms = pm->time_ms;
  if (load_messages(org, json_object_get(jt, "messages"), &th->chat, &clock_ms,
                    err, errlen) < 0)
    return -1;
  if (json_object_get(jt, "members")) {
    if (load_uset(org, json_object_get(jt, "members"), &th->members,
                  "thread members", err, errlen) < 0)
      return -1;
  } else {
    emu_uset_add(&th->members, pm->sender);
    for (size_t i = 0; i < th->chat.n; i++)
      emu_uset_add(&th->members, th->chat.msgs[i].sender);
  }
  if (json_object_get(jt, "followers")) {
    if (load_uset(org, json_object_get(jt, "followers"), &th->followers,
                  "thread followers", err, errlen) < 0)
      return -1;
  } else {
    for (size_t i = 0; i < th->members.n; i++)
      emu_uset_add(&th->followers, th->members.v[i]);
  }
  return 0;
}

static void make_unique_name(const char *name, char *out, size_t len)
{
  size_t o = 0;
  for (const char *p = name; *p && o + 1 < len; p++) {
    unsigned char c = (unsigned char)*p;
    if (isalnum(c))
      out[o++] = (char)tolower(c);
    else if ((c == ' ' || c == '-' || c == '_') && o && out[o - 1] != '-')
      out[o++] = '-';
  }
  out[o] = '\0';
}

struct emu_org *emu_org_from_json(json_t *root, uint64_t seed, char *err,
                                  size_t errlen)
{
  struct emu_org *org = emu_org_new(seed);
  size_t i;
  json_t *v;
  if (!json_is_object(root)) {
    snprintf(err, errlen, "organization is not a JSON object");
    goto fail;
  }
  json_t *users = json_object_get(root, "users");
  if (!json_is_array(users) || json_array_size(users) == 0) {
    snprintf(err, errlen, "users: need a non-empty array");
    goto fail;
  }
  json_array_foreach(users, i, v) {
    const char *id = jstr(v, "user_id", NULL);
    if (!id || emu_user_find(org, id) >= 0) {
      snprintf(err, errlen, "users[%zu]: missing or duplicate user_id", i);
      goto fail;
    }
    org_add_user(org, id, jstr(v, "email_id", ""), jstr(v, "name", id));
  }
  const char *me = jstr(root, "me", org->users[0].id);
  org->me = emu_user_find(org, me);
  if (org->me < 0) {
    snprintf(err, errlen, "me: %s is not a user", me);
    goto fail;
  }
  json_t *channels = json_object_get(root, "channels");
  if (channels && !json_is_array(channels)) {
    snprintf(err, errlen, "channels: not an array");
    goto fail;
  }
  json_array_foreach(channels, i, v) {
    if (!json_is_object(v)) {
      snprintf(err, errlen, "channels[%zu]: not an object", i);
      goto fail;
    }
    struct emu_channel *ch = org_add_channel(org);
    char buf[256];
    const char *name = jstr(v, "name", NULL);
    const char *uname = jstr(v, "unique_name", NULL);
    if (!uname && !name) {
      snprintf(err, errlen, "channels[%zu]: needs unique_name or name", i);
      goto fail;
    }
    if (!uname) {
      make_unique_name(name, buf, sizeof buf);
      uname = buf;
    }
    if (emu_find_channel_by_name(org, uname)) {
      snprintf(err, errlen, "channels[%zu]: duplicate unique_name %s", i, uname);
      goto fail;
    }
    ch->unique_name = org_xstrdup(uname);
    if (name)
      ch->name = org_xstrdup(name);
    else {
      char hashed[300];
      snprintf(hashed, sizeof hashed, "#%s", uname);
      ch->name = org_xstrdup(hashed);
    }
    ch->description = org_xstrdup(jstr(v, "description", ""));
    const char *cid = jstr(v, "channel_id", NULL);
    if (cid)
      ch->channel_id = org_xstrdup(cid);
    else {
      snprintf(buf, sizeof buf, "O%013" PRIu64, UINT64_C(5797000000000) + i + 1);
      ch->channel_id = org_xstrdup(buf);
    }
    const char *chat = jstr(v, "chat_id", NULL);
    ch->chat.chat_id = chat ? org_xstrdup(chat) : org_new_channel_chat_id(org);
    if (strstr(ch->chat.chat_id, "-T-")) {
      snprintf(err, errlen, "channel chat id %s must not contain -T-", ch->chat.chat_id);
      goto fail;
    }
    for (size_t k = 0; k + 1 < org->nchannels; k++)
      if (strcmp(org->channels[k]->channel_id, ch->channel_id) == 0 ||
          strcmp(org->channels[k]->chat.chat_id, ch->chat.chat_id) == 0) {
        snprintf(err, errlen, "channels[%zu]: duplicate channel_id or chat_id", i);
        goto fail;
      }
    ch->joined = jbool(v, "joined", true);
    ch->muted = jbool(v, "muted", false);
    if (json_object_get(v, "members")) {
      if (load_uset(org, json_object_get(v, "members"), &ch->members,
                    "channel members", err, errlen) < 0)
        goto fail;
    } else {
      for (size_t u = 0; u < org->nusers; u++)
        emu_uset_add(&ch->members, (int)u);
    }
    int64_t clock_ms = 1763366400000LL; /* 2025-11-17T08:00Z */
    if (load_messages(org, json_object_get(v, "messages"), &ch->chat,
                      &clock_ms, err, errlen) < 0)
      goto fail;
    ch->created_ms = ch->chat.n ? ch->chat.msgs[0].time_ms - 86400000LL
                                : 1763366400000LL;
    json_t *threads = json_object_get(v, "threads");
    size_t k;
    json_t *jt;
    if (threads && !json_is_array(threads)) {
      snprintf(err, errlen, "%s: threads is not an array", ch->unique_name);
      goto fail;
    }
    json_array_foreach(threads, k, jt)
      if (load_thread(org, ch, jt, err, errlen) < 0)
        goto fail;
  }
  return org;
fail:
  emu_org_free(org);
  return NULL;
}

/* ---- dumping the state ---- */

static json_t *uset_json(struct emu_org *org, const struct emu_uset *s)
{
  json_t *a = json_array();
  for (size_t i = 0; i < s->n; i++)
    json_array_append_new(a, json_string(org->users[s->v[i]].id));
  return a;
}

static json_t *chat_messages_json(struct emu_org *org, struct emu_chat *c)
{
  json_t *a = json_array();
  for (size_t k = 0; k < emu_chat_count(c); k++) {
    struct emu_msg_view v;
    emu_chat_get(org, c, k, &v);
    json_t *m = json_pack("{s:s,s:I,s:s,s:s}", "id", v.id, "time",
                          (json_int_t)v.time_ms, "sender",
                          org->users[v.sender].id, "type",
                          v.file ? "file" : "text");
    if (v.file)
      json_object_set(m, "file", v.file);
    else
      json_object_set_new(m, "text", json_string(v.text));
    json_array_append_new(a, m);
  }
  return a;
}

json_t *emu_org_to_json(struct emu_org *org, bool with_messages)
{
  json_t *users = json_array();
  for (size_t i = 0; i < org->nusers; i++)
    json_array_append_new(users, emu_user_json(org, (int)i));
  json_t *channels = json_array();
  for (size_t c = 0; c < org->nchannels; c++) {
    struct emu_channel *ch = org->channels[c];
    json_t *threads = json_array();
    for (size_t t = 0; t < ch->nthreads; t++) {
      struct emu_thread *th = ch->threads[t];
      json_t *jt = json_pack(
          "{s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:b,s:I}", "chat_id", th->chat.chat_id,
          "thread_message_id", th->thread_message_id, "title", th->title,
          "state", th->closed ? "closed" : "open", "followers",
          uset_json(org, &th->followers), "members",
          uset_json(org, &th->members), "muted", th->muted, "left", th->left,
          "message_count", (json_int_t)emu_chat_count(&th->chat));
      if (with_messages)
        json_object_set_new(jt, "messages", chat_messages_json(org, &th->chat));
      json_array_append_new(threads, jt);
    }
    json_t *jc = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:o,s:I,s:o}", "channel_id",
        ch->channel_id, "chat_id", ch->chat.chat_id, "unique_name",
        ch->unique_name, "name", ch->name, "description", ch->description,
        "joined", ch->joined, "muted", ch->muted, "members",
        uset_json(org, &ch->members), "message_count",
        (json_int_t)emu_chat_count(&ch->chat), "threads", threads);
    if (with_messages)
      json_object_set_new(jc, "messages", chat_messages_json(org, &ch->chat));
    json_array_append_new(channels, jc);
  }
  return json_pack("{s:s,s:o,s:o}", "me", org->users[org->me].id, "users",
                   users, "channels", channels);
}
