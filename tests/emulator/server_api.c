/* The Cliq REST API: the routes, and the handlers that answer them from
 * the organization (REFERENCE.md). */
#include "server_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- query and body helpers ---- */

/* Parses an optional integer query parameter.  Returns 0 (absent: *out =
 * dflt), 1 (present) or -1 (malformed or out of [lo, hi]). */
static int query_int(struct call *c, const char *key, long long dflt,
                     long long lo, long long hi, long long *out)
{
  const char *v = srv_query(c, key);
  *out = dflt;
  if (!v)
    return 0;
  char *end = NULL;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi)
    return -1;
  *out = x;
  return 1;
}

static bool json_body_object(struct call *c)
{
  if (!c->body || !json_is_object(c->body)) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return false;
  }
  return true;
}

/* Opaque page tokens: a letter naming the list and the offset, scrambled. */
static void page_token(char kind, size_t offset, char *out, size_t len)
{
  snprintf(out, len, "%c%08" PRIx32 "%04" PRIx32, kind,
           (uint32_t)offset ^ 0x3c9d1e5bU,
           (uint32_t)((offset * 2654435761U) & 0xffffU));
}

static int page_offset(const char *tok, char kind, size_t *offset)
{
  unsigned int a, b;
  char k;
  char rest;
  if (!tok || strlen(tok) != 13 ||
      sscanf(tok, "%c%8x%4x%c", &k, &a, &b, &rest) != 3 || k != kind)
    return -1;
  uint32_t off = a ^ 0x3c9d1e5bU;
  if (((off * 2654435761U) & 0xffffU) != b)
    return -1;
  *offset = off;
  return 0;
}

static void sync_token(char *out, size_t len)
{
  snprintf(out, len, "%" PRId64, emu_now_ms());
}

/* ---- resolving chats ---- */

static void not_found_chat(struct call *c)
{
  srv_answer_error(c, 404, "chat_not_found",
                   "The chat you are trying to access does not exist.");
}

static bool thread_id_well_formed(const char *id)
{
  const char *t = strstr(id, "-T-");
  if (!t || t == id || !t[3])
    return false;
  for (const char *p = t + 3; *p; p++)
    if (*p < '0' || *p > '9')
      return false;
  return true;
}

/* For /api/v3/threads/{id}: 400 for a malformed id, 404 for an unknown one. */
static struct emu_thread *thread_arg(struct call *c)
{
  if (!thread_id_well_formed(c->arg[0])) {
    srv_answer_error(c, 400, "thread_chatid_invalid",
                     "The thread chat ID given is not according to the format.");
    return NULL;
  }
  struct emu_thread *th = emu_find_thread(c->s->org, c->arg[0]);
  if (!th)
    not_found_chat(c);
  return th;
}

/* A chat id naming a channel or a thread. */
static bool chat_arg(struct call *c, struct emu_channel **ch,
                     struct emu_thread **th)
{
  *th = NULL;
  *ch = emu_find_channel_by_chat(c->s->org, c->arg[0]);
  if (*ch)
    return true;
  *th = emu_find_thread(c->s->org, c->arg[0]);
  if (*th) {
    *ch = (*th)->channel;
    return true;
  }
  not_found_chat(c);
  return false;
}

static json_t *users_json(struct emu_org *org, const struct emu_uset *s)
{
  json_t *a = json_array();
  for (size_t i = 0; i < s->n; i++)
    json_array_append_new(a, emu_user_json(org, s->v[i]));
  return a;
}

/* ---- handlers: channels ---- */

static void h_channels_list(struct call *c)
{
  struct emu_org *org = c->s->org;
  long long limit;
  size_t offset = 0;
  const char *joined = srv_query(c, "joined");
  if (query_int(c, "limit", 100, 1, 100, &limit) < 0 ||
      (joined && strcmp(joined, "true") != 0 && strcmp(joined, "false") != 0) ||
      (srv_query(c, "next_token") &&
       page_offset(srv_query(c, "next_token"), 'c', &offset) < 0)) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  bool only_joined = joined && strcmp(joined, "true") == 0;
  json_t *list = json_array();
  size_t seen = 0;
  bool more = false;
  for (size_t i = 0; i < org->nchannels; i++) {
    struct emu_channel *ch = org->channels[i];
    if (only_joined && !ch->joined)
      continue;
    if (seen++ < offset)
      continue;
    if ((long long)json_array_size(list) == limit) {
      more = true;
      break;
    }
    json_array_append_new(list, emu_channel_json(org, ch));
  }
  char st[32];
  sync_token(st, sizeof st);
  json_t *out = json_pack("{s:o,s:b,s:s}", "channels", list, "has_more", more,
                          "sync_token", st);
  if (more) {
    char nt[32];
    page_token('c', offset + (size_t)limit, nt, sizeof nt);
    json_object_set_new(out, "next_token", json_string(nt));
  }
  srv_answer_json(c, 200, out);
}

static void h_channels_get(struct call *c)
{
  struct emu_channel *ch = emu_find_channel_by_id(c->s->org, c->arg[0]);
  if (!ch) {
    not_found_chat(c);
    return;
  }
  srv_answer_json(c, 200, emu_channel_json(c->s->org, ch));
}

static int cmp_thread_newest(const void *a, const void *b)
{
  const struct emu_thread *x = *(struct emu_thread *const *)a;
  const struct emu_thread *y = *(struct emu_thread *const *)b;
  if (x->created_ms != y->created_ms)
    return x->created_ms > y->created_ms ? -1 : 1;
  return x->index > y->index ? -1 : x->index < y->index;
}

static void h_threads_list(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch = emu_find_channel_by_id(org, c->arg[0]);
  if (!ch) {
    not_found_chat(c);
    return;
  }
  const char *state = srv_query(c, "state");
  const char *type = srv_query(c, "type");
  long long limit;
  size_t offset = 0;
  if (query_int(c, "limit", 20, 1, 100, &limit) < 0 ||
      (state && strcmp(state, "all") && strcmp(state, "followed") &&
       strcmp(state, "not_followed")) ||
      (type && strcmp(type, "open") && strcmp(type, "closed")) ||
      (srv_query(c, "next_token") &&
       page_offset(srv_query(c, "next_token"), 't', &offset) < 0)) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  struct emu_thread **sorted = malloc((ch->nthreads + 1) * sizeof *sorted);
  if (!sorted)
    abort();
  if (ch->nthreads) {
    memcpy(sorted, ch->threads, ch->nthreads * sizeof *sorted);
    qsort(sorted, ch->nthreads, sizeof *sorted, cmp_thread_newest);
  }
  json_t *data = json_array();
  size_t seen = 0;
  bool more = false;
  for (size_t i = 0; i < ch->nthreads; i++) {
    struct emu_thread *th = sorted[i];
    bool follower = emu_uset_has(&th->followers, org->me);
    if (state && strcmp(state, "followed") == 0 && !follower)
      continue;
    if (state && strcmp(state, "not_followed") == 0 && follower)
      continue;
    if (type && (strcmp(type, "closed") == 0) != th->closed)
      continue;
    if (seen++ < offset)
      continue;
    if ((long long)json_array_size(data) == limit) {
      more = true;
      break;
    }
    json_array_append_new(data, emu_thread_entry_json(org, th));
  }
  free(sorted);
  char st[32];
  sync_token(st, sizeof st);
  json_t *out = json_pack("{s:s,s:s,s:s,s:o}", "url", "/api/v2/threads",
                          "type", "chat_thread", "sync_token", st, "data",
                          data);
  if (more) {
    char nt[32];
    page_token('t', offset + (size_t)limit, nt, sizeof nt);
    json_object_set_new(out, "next_token", json_string(nt));
  }
  srv_answer_json(c, 200, out);
}

/* ---- handlers: messages ---- */

static void h_chats_messages(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch;
  struct emu_thread *th;
  if (!chat_arg(c, &ch, &th))
    return;
  struct emu_chat *chat = th ? &th->chat : &ch->chat;
  long long from, to, limit;
  int has_from = query_int(c, "fromtime", 0, 0, INT64_MAX, &from);
  int has_to = query_int(c, "totime", 0, 0, INT64_MAX, &to);
  if (has_from < 0 || has_to < 0 ||
      query_int(c, "limit", 50, 1, 100, &limit) < 0 ||
      (has_from > 0 && has_to > 0 && from > to)) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  size_t n = emu_chat_count(chat);
  /* Both bounds inclusive.  With fromtime: the oldest `limit` from there on;
   * otherwise the newest `limit` up to totime (or now).  Always ascending. */
  size_t lo = has_from > 0 ? emu_chat_lower_bound(org, chat, from) : 0;
  size_t hi = has_to > 0 ? emu_chat_lower_bound(org, chat, to + 1) : n;
  if (hi < lo)
    hi = lo;
  if (hi - lo > (size_t)limit) {
    if (has_from > 0)
      hi = lo + (size_t)limit;
    else
      lo = hi - (size_t)limit;
  }
  json_t *data = json_array();
  for (size_t k = lo; k < hi; k++) {
    struct emu_msg_view v;
    emu_chat_get(org, chat, k, &v);
    json_array_append_new(
        data, emu_message_json(org, ch, chat, &v, EMU_TIME_NUMBER));
  }
  srv_answer_json(c, 200, json_pack("{s:o}", "data", data));
}

static void h_message_get(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch;
  struct emu_thread *th;
  if (!chat_arg(c, &ch, &th))
    return;
  struct emu_chat *chat = th ? &th->chat : &ch->chat;
  long k = emu_chat_find(org, chat, c->arg[1]);
  if (k < 0) {
    srv_answer_error(c, 404, "message_not_found",
                     "The message you are trying to access does not exist.");
    return;
  }
  struct emu_msg_view v;
  emu_chat_get(org, chat, (size_t)k, &v);
  srv_answer_json(c, 200, emu_message_json(org, ch, chat, &v, EMU_TIME_STRING));
}

static void reply_as_me(struct emu_org *org, struct emu_thread *th)
{
  emu_uset_add(&th->members, org->me);
  emu_uset_add(&th->followers, org->me);
  th->left = false;
}

static void post_answer(struct call *c, const char *message_id)
{
  if (json_is_true(json_object_get(c->body, "sync_message")))
    srv_answer_json(c, 200, json_pack("{s:s}", "message_id", message_id));
  else
    srv_answer_204(c);
}

static void h_messages_post(struct call *c, int by)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch = NULL;
  struct emu_thread *th = NULL;
  if (by == 'i')
    ch = emu_find_channel_by_id(org, c->arg[0]);
  else if (by == 'n')
    ch = emu_find_channel_by_name(org, c->arg[0]);
  else if (!chat_arg(c, &ch, &th))
    return;
  if (!ch) {
    not_found_chat(c);
    return;
  }
  if (!json_body_object(c))
    return;
  json_t *jtext = json_object_get(c->body, "text");
  if (!jtext || (json_is_string(jtext) && json_string_length(jtext) == 0)) {
    srv_answer_error(c, 400, "param_missing", MSG_400);
    return;
  }
  if (!json_is_string(jtext)) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  const char *text = json_string_value(jtext);
  if (strlen(text) != json_string_length(jtext) ||
      emu_utf8_chars(text) > EMU_TEXT_MAX_CHARS) {
    srv_answer_error(c, 400, "invalid_inputs",
                     "The message text exceeds the limit of 5000 characters.");
    return;
  }
  if (!ch->joined) {
    srv_answer_error(c, 403, "access_denied", MSG_403);
    return;
  }
  json_t *jparent = json_object_get(c->body, "thread_message_id");
  json_t *jtitle = json_object_get(c->body, "thread_title");
  if ((jparent && !json_is_string(jparent)) ||
      (jtitle && !json_is_string(jtitle))) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  if (!th && jparent) {
    long parent = emu_chat_find(org, &ch->chat, json_string_value(jparent));
    if (parent < 0) {
      srv_answer_error(c, 400, "invalid_inputs",
                       "thread_message_id does not name a message of this channel.");
      return;
    }
    struct emu_msg_view pv;
    emu_chat_get(org, &ch->chat, (size_t)parent, &pv);
    if (pv.thread >= 0) {
      th = ch->threads[pv.thread];
    } else {
      char title[256];
      const char *t = jtitle ? json_string_value(jtitle) : NULL;
      if (!t || !*t) {
        snprintf(title, sizeof title, "%.60s",
                 pv.text ? pv.text : "File discussion");
        /* keep the cut at a UTF-8 boundary */
        size_t len = strlen(title);
        while (len && ((unsigned char)title[len - 1] & 0x80)) {
          size_t st = len - 1;
          while (st && ((unsigned char)title[st] & 0xC0) == 0x80)
            st--;
          unsigned char lead = (unsigned char)title[st];
          size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
          if (len - st >= need)
            break;
          title[st] = '\0';
          len = st;
        }
        t = title;
      }
      th = emu_thread_create(org, ch, parent, t, org->me);
    }
  }
  if (th && th->closed) {
    srv_answer_error(c, 400, "operation_not_allowed",
                     "This thread is closed. Replies are not allowed.");
    return;
  }
  struct emu_msg *m;
  if (th) {
    m = emu_chat_append(org, &th->chat, org->me, text);
    reply_as_me(org, th);
    if (json_is_true(json_object_get(c->body, "post_in_parent")))
      emu_chat_append(org, &ch->chat, org->me, text);
  } else {
    m = emu_chat_append(org, &ch->chat, org->me, text);
  }
  post_answer(c, m->id);
}

/* ---- handlers: threads ---- */

static void h_thread_get(struct call *c)
{
  struct emu_thread *th = thread_arg(c);
  if (th)
    srv_answer_json(c, 200, emu_thread_details_json(c->s->org, th));
}

static void h_thread_update(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_thread *th = thread_arg(c);
  if (!th || !json_body_object(c))
    return;
  json_t *ja = json_object_get(c->body, "action");
  if (!ja) {
    srv_answer_error(c, 400, "param_missing", MSG_400);
    return;
  }
  const char *a = json_string_value(ja);
  if (a && strcmp(a, "close") == 0)
    th->closed = true;
  else if (a && strcmp(a, "reopen") == 0)
    th->closed = false;
  else if (a && strcmp(a, "follow") == 0)
    emu_uset_add(&th->followers, org->me);
  else if (a && strcmp(a, "unfollow") == 0)
    emu_uset_del(&th->followers, org->me);
  else {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  srv_answer_204(c);
}

static void h_thread_main(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_thread *th = thread_arg(c);
  if (!th)
    return;
  struct emu_channel *ch = th->channel;
  long k = emu_chat_find(org, &ch->chat, th->thread_message_id);
  if (k < 0) {
    srv_answer_error(c, 500, "operation_failed", MSG_500);
    return;
  }
  struct emu_msg_view v;
  emu_chat_get(org, &ch->chat, (size_t)k, &v);
  json_t *m = emu_message_json(org, ch, &ch->chat, &v, EMU_TIME_ISO);
  json_object_set_new(m, "thread_state_information",
                      json_pack("{s:s}", "thread_state",
                                th->closed ? "closed" : "open"));
  srv_answer_json(c, 200, m);
}

/* Reads {"user_ids":[…]}: every id must be a member of the channel.  Fills
 * the indices into *out (caller frees).  Returns the count or -1. */
static long user_ids_arg(struct call *c, struct emu_channel *ch, int **out)
{
  struct emu_org *org = c->s->org;
  *out = NULL;
  if (!json_body_object(c))
    return -1;
  json_t *ids = json_object_get(c->body, "user_ids");
  if (!ids) {
    srv_answer_error(c, 400, "param_missing", MSG_400);
    return -1;
  }
  if (!json_is_array(ids) || json_array_size(ids) == 0) {
    srv_answer_error(c, 400, "invalid_inputs", MSG_400);
    return -1;
  }
  int *v = calloc(json_array_size(ids), sizeof *v);
  if (!v)
    abort();
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id) {
    int u = emu_user_find(org, json_string_value(id));
    if (u < 0 || !emu_uset_has(&ch->members, u)) {
      free(v);
      srv_answer_error(c, 400, "invalid_inputs",
                       "One or more user_ids are not members of this channel.");
      return -1;
    }
    v[i] = u;
  }
  *out = v;
  return (long)json_array_size(ids);
}

static void h_followers(struct call *c, int what)
{
  struct emu_org *org = c->s->org;
  struct emu_thread *th = thread_arg(c);
  if (!th)
    return;
  if (what == 'g') {
    srv_answer_json(c, 200, json_pack("{s:o}", "data",
                                      users_json(org, &th->followers)));
    return;
  }
  if (what == 'n') {
    struct emu_uset non = {0};
    for (size_t i = 0; i < th->channel->members.n; i++)
      if (!emu_uset_has(&th->followers, th->channel->members.v[i]))
        emu_uset_add(&non, th->channel->members.v[i]);
    srv_answer_json(c, 200, json_pack("{s:o}", "data", users_json(org, &non)));
    free(non.v);
    return;
  }
  int *ids;
  long n = user_ids_arg(c, th->channel, &ids);
  if (n < 0)
    return;
  for (long i = 0; i < n; i++) {
    if (what == 'a') {
      emu_uset_add(&th->followers, ids[i]);
      emu_uset_add(&th->members, ids[i]);
    } else {
      emu_uset_del(&th->followers, ids[i]);
    }
  }
  free(ids);
  srv_answer_204(c);
}

static void h_follow(struct call *c, bool follow)
{
  struct emu_org *org = c->s->org;
  struct emu_thread *th = thread_arg(c);
  if (!th)
    return;
  if (follow)
    emu_uset_add(&th->followers, org->me);
  else
    emu_uset_del(&th->followers, org->me);
  srv_answer_204(c);
}

static void h_members(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch;
  struct emu_thread *th;
  if (!chat_arg(c, &ch, &th))
    return;
  bool want[3] = {true, true, true};
  static const char *const names[3] = {"user_id", "email_id", "name"};
  const char *fields = srv_query(c, "fields");
  if (fields) {
    want[0] = want[1] = want[2] = false;
    char *copy = strdup(fields), *save = NULL;
    if (!copy)
      abort();
    bool bad = false;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
      int k = -1;
      for (int i = 0; i < 3; i++)
        if (strcmp(f, names[i]) == 0)
          k = i;
      if (k < 0)
        bad = true;
      else
        want[k] = true;
    }
    free(copy);
    if (bad || !(want[0] || want[1] || want[2])) {
      srv_answer_error(c, 400, "invalid_inputs", MSG_400);
      return;
    }
  }
  const struct emu_uset *set = th ? &th->members : &ch->members;
  json_t *a = json_array();
  for (size_t i = 0; i < set->n; i++) {
    json_t *u = emu_user_json(org, set->v[i]);
    for (int k = 0; k < 3; k++)
      if (!want[k])
        json_object_del(u, names[k]);
    json_array_append_new(a, u);
  }
  srv_answer_json(c, 200, json_pack("{s:o}", "members", a));
}

static void h_chat_action(struct call *c, int what)
{
  struct emu_org *org = c->s->org;
  struct emu_channel *ch;
  struct emu_thread *th;
  if (!chat_arg(c, &ch, &th))
    return;
  switch (what) {
  case 'l':
    if (th) {
      th->left = true;
      emu_uset_del(&th->members, org->me);
      emu_uset_del(&th->followers, org->me);
    } else {
      ch->joined = false;
      emu_uset_del(&ch->members, org->me);
    }
    break;
  case 'm':
    if (th)
      th->muted = true;
    else
      ch->muted = true;
    break;
  default:
    if (th)
      th->muted = false;
    else
      ch->muted = false;
  }
  srv_answer_204(c);
}

/* ---- routing ---- */

static const struct route routes[] = {
  {R_OAUTH, "oauth/v2/token", {{"POST", CLIQ_API_OAUTH_TOKEN}}},
  {R_CHANNELS, "api/v2/channels", {{"GET", CLIQ_API_CHANNELS_LIST}}},
  {R_CHANNEL, "api/v2/channels/*", {{"GET", CLIQ_API_CHANNELS_GET}}},
  {R_THREADS_LIST, "api/v2/channels/*/threads", {{"GET", CLIQ_API_THREADS_LIST}}},
  {R_MESSAGES, "api/v2/chats/*/messages", {{"GET", CLIQ_API_CHATS_MESSAGES}}},
  {R_MESSAGE, "api/v2/chats/*/messages/*", {{"GET", CLIQ_API_MESSAGES_GET}}},
  {R_POST_CHANNEL, "api/v3/channels/*/messages", {{"POST", CLIQ_API_MESSAGES_POST}}},
  {R_POST_CHAT, "api/v3/chats/*/messages", {{"POST", CLIQ_API_MESSAGES_POST}}},
  {R_POST_BYNAME, "api/v3/channelsbyname/*/messages", {{"POST", CLIQ_API_MESSAGES_POST}}},
  {R_THREAD, "api/v3/threads/*",
   {{"GET", CLIQ_API_THREADS_GET}, {"PUT", CLIQ_API_THREADS_UPDATE}}},
  {R_THREAD_MAIN, "api/v3/threads/*/messages/main", {{"GET", CLIQ_API_THREADS_MAIN}}},
  {R_FOLLOWERS, "api/v3/threads/*/followers",
   {{"GET", CLIQ_API_FOLLOWERS_GET}, {"POST", CLIQ_API_FOLLOWERS_ADD},
    {"DELETE", CLIQ_API_FOLLOWERS_REMOVE}}},
  {R_NONFOLLOWERS, "api/v3/threads/*/nonfollowers", {{"GET", CLIQ_API_NONFOLLOWERS}}},
  {R_FOLLOW, "api/v3/threads/*/follow", {{"POST", CLIQ_API_THREADS_FOLLOW}}},
  {R_UNFOLLOW, "api/v3/threads/*/unfollow", {{"POST", CLIQ_API_THREADS_UNFOLLOW}}},
  {R_MEMBERS, "api/v3/chats/*/members", {{"GET", CLIQ_API_CHATS_MEMBERS}}},
  {R_LEAVE, "api/v3/chats/*/leave", {{"POST", CLIQ_API_CHATS_LEAVE}}},
  {R_MUTE, "api/v3/chats/*/mute", {{"POST", CLIQ_API_CHATS_MUTE}}},
  {R_UNMUTE, "api/v3/chats/*/unmute", {{"POST", CLIQ_API_CHATS_UNMUTE}}},
};

#define MAX_SEGS 10

static size_t split_path(char *path, char **segs)
{
  size_t n = 0;
  char *save = NULL;
  for (char *p = strtok_r(path, "/", &save); p && n < MAX_SEGS;
       p = strtok_r(NULL, "/", &save))
    segs[n++] = p;
  if (strtok_r(NULL, "/", &save))
    return MAX_SEGS + 1;
  return n;
}

/* Finds the route of url.  Fills args (pointers into buf).  Returns NULL
 * when no pattern matches. */
const struct route *srv_match_route(const char *url, char *buf, size_t len,
                                    const char **args)
{
  char *segs[MAX_SEGS];
  snprintf(buf, len, "%s", url);
  size_t n = split_path(buf, segs);
  for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
    char pat[128];
    char *psegs[MAX_SEGS];
    snprintf(pat, sizeof pat, "%s", routes[r].pattern);
    size_t pn = split_path(pat, psegs);
    if (pn != n)
      continue;
    size_t na = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
      if (strcmp(psegs[i], "*") == 0)
        args[na++] = segs[i];
      else
        ok = strcmp(psegs[i], segs[i]) == 0;
    }
    if (ok)
      return &routes[r];
  }
  return NULL;
}

void srv_dispatch(struct call *c, enum route_id id, int api)
{
  switch (id) {
  case R_CHANNELS: h_channels_list(c); break;
  case R_CHANNEL: h_channels_get(c); break;
  case R_THREADS_LIST: h_threads_list(c); break;
  case R_MESSAGES: h_chats_messages(c); break;
  case R_MESSAGE: h_message_get(c); break;
  case R_POST_CHANNEL: h_messages_post(c, 'i'); break;
  case R_POST_CHAT: h_messages_post(c, 'c'); break;
  case R_POST_BYNAME: h_messages_post(c, 'n'); break;
  case R_THREAD:
    if (api == CLIQ_API_THREADS_GET)
      h_thread_get(c);
    else
      h_thread_update(c);
    break;
  case R_THREAD_MAIN: h_thread_main(c); break;
  case R_FOLLOWERS:
    h_followers(c, api == CLIQ_API_FOLLOWERS_GET ? 'g'
                   : api == CLIQ_API_FOLLOWERS_ADD ? 'a' : 'r');
    break;
  case R_NONFOLLOWERS: h_followers(c, 'n'); break;
  case R_FOLLOW: h_follow(c, true); break;
  case R_UNFOLLOW: h_follow(c, false); break;
  case R_MEMBERS: h_members(c); break;
  case R_LEAVE: h_chat_action(c, 'l'); break;
  case R_MUTE: h_chat_action(c, 'm'); break;
  case R_UNMUTE: h_chat_action(c, 'u'); break;
  case R_OAUTH: break;
  }
}
