/* The /_emulator/ control path (PROTOCOL.md): counters, faults, posts as
 * other people, rewrites, token expiry, locks, state and config. */
#include "server_i.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *counters_json(struct emu_server *s)
{
  json_t *apis = json_object();
  json_t *windows = json_object();
  int64_t now = emu_mono_ms();
  for (int a = 0; a <= CLIQ_API_COUNT; a++) {
    const char *name = a == API_UNKNOWN ? "unknown" : cliq_api_name(a);
    if (a < CLIQ_API_COUNT) {
      srv_rate_prune(s, a, now);
      const struct cliq_api_info *info = cliq_api_info(a);
      json_object_set_new(
          windows, name,
          json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "max_in_window",
                    (json_int_t)s->rates[a].max_in_window, "limit",
                    (json_int_t)info->limit, "in_window",
                    (json_int_t)s->rates[a].charged.n, "window_ms",
                    (json_int_t)srv_scaled_ms(s, info->window_s), "lock_ms",
                    (json_int_t)srv_scaled_ms(s, info->lock_s), "locked",
                    s->rates[a].locked_until > now));
    }
    if (!s->totals[a])
      continue;
    json_t *st = json_object();
    for (int k = 0; k < NSTATUS; k++)
      if (s->counts[a][k]) {
        char key[8];
        snprintf(key, sizeof key, "%d", k);
        json_object_set_new(st, key, json_integer(s->counts[a][k]));
      }
    json_object_set_new(apis, name,
                        json_pack("{s:I,s:o}", "total",
                                  (json_int_t)s->totals[a], "status", st));
  }
  return json_pack("{s:I,s:I,s:o,s:o}", "total", (json_int_t)s->total,
                   "throttled", (json_int_t)s->throttled, "apis", apis,
                   "windows", windows);
}

static void ctl_error(struct call *c, int status, const char *msg)
{
  srv_answer_json(c, status, json_pack("{s:s}", "error", msg));
}

/* The api field of a control body: a class name, or "*" when allowed. */
static int ctl_api(struct call *c, bool star_ok, int *api)
{
  const char *name = json_string_value(json_object_get(c->body, "api"));
  if (!name) {
    ctl_error(c, 400, "api missing");
    return -1;
  }
  if (star_ok && strcmp(name, "*") == 0) {
    *api = -1;
    return 0;
  }
  *api = cliq_api_from_name(name);
  if (*api < 0) {
    ctl_error(c, 400, "unknown api");
    return -1;
  }
  return 0;
}

static void ctl_faults_add(struct call *c)
{
  struct emu_server *s = c->s;
  int api;
  if (!c->body || ctl_api(c, true, &api) < 0)
    return;
  const char *kind = json_string_value(json_object_get(c->body, "kind"));
  enum fault_kind k = FAULT_NONE;
  for (int i = 0; kind && i < FAULT_NONE; i++)
    if (strcmp(kind, srv_fault_names[i]) == 0)
      k = (enum fault_kind)i;
  json_t *jc = json_object_get(c->body, "count");
  json_t *jd = json_object_get(c->body, "delay_ms");
  if (k == FAULT_NONE || (jc && !json_is_integer(jc)) ||
      (jd && !json_is_integer(jd))) {
    ctl_error(c, 400, "bad kind, count or delay_ms");
    return;
  }
  struct fault *f = realloc(s->faults, (s->nfaults + 1) * sizeof *f);
  if (!f)
    abort();
  s->faults = f;
  f = &s->faults[s->nfaults++];
  f->id = ++s->next_fault_id;
  f->api = api;
  f->kind = k;
  f->remaining = jc ? (long)json_integer_value(jc) : 1;
  f->delay_ms = jd ? (long)json_integer_value(jd) : 0;
  if (f->remaining < 1)
    f->remaining = 1;
  srv_answer_json(c, 200, json_pack("{s:I}", "id", (json_int_t)f->id));
}

static void ctl_faults_list(struct call *c)
{
  json_t *a = json_array();
  for (size_t i = 0; i < c->s->nfaults; i++) {
    struct fault *f = &c->s->faults[i];
    json_array_append_new(
        a, json_pack("{s:I,s:s,s:s,s:I,s:I}", "id", (json_int_t)f->id, "api",
                     f->api < 0 ? "*" : cliq_api_name(f->api), "kind",
                     srv_fault_names[f->kind], "count", (json_int_t)f->remaining,
                     "delay_ms", (json_int_t)f->delay_ms));
  }
  srv_answer_json(c, 200, json_pack("{s:o}", "faults", a));
}

static void ctl_post(struct call *c)
{
  struct emu_server *s = c->s;
  struct emu_org *org = s->org;
  const char *chat_id = json_string_value(json_object_get(c->body, "chat_id"));
  const char *text = json_string_value(json_object_get(c->body, "text"));
  const char *sender_id = json_string_value(json_object_get(c->body, "sender_id"));
  if (!chat_id || !text || !*text) {
    ctl_error(c, 400, "chat_id and text are required");
    return;
  }
  struct emu_channel *ch = emu_find_channel_by_chat(org, chat_id);
  struct emu_thread *th = ch ? NULL : emu_find_thread(org, chat_id);
  if (th)
    ch = th->channel;
  if (!ch) {
    ctl_error(c, 404, "no such chat");
    return;
  }
  int sender = -1;
  if (sender_id) {
    sender = emu_user_find(org, sender_id);
    if (sender < 0) {
      ctl_error(c, 400, "no such sender");
      return;
    }
  } else {
    for (size_t i = 0; i < ch->members.n && sender < 0; i++)
      if (ch->members.v[i] != org->me)
        sender = ch->members.v[i];
    if (sender < 0)
      sender = org->me;
  }
  if (th && th->closed) {
    ctl_error(c, 400, "thread is closed");
    return;
  }
  struct emu_chat *chat = th ? &th->chat : &ch->chat;
  emu_chat_append(org, chat, sender, text);
  if (th)
    emu_uset_add(&th->members, sender);
  struct emu_msg_view v;
  emu_chat_get(org, chat, emu_chat_count(chat) - 1, &v);
  srv_answer_json(c, 200, emu_message_json(org, ch, chat, &v, EMU_TIME_NUMBER));
}

static void ctl_lock(struct call *c, bool lock)
{
  struct emu_server *s = c->s;
  int api;
  if (!c->body || ctl_api(c, !lock, &api) < 0)
    return;
  int64_t now = emu_mono_ms();
  if (lock) {
    json_t *js = json_object_get(c->body, "seconds");
    int64_t ms = json_is_number(js)
                     ? (int64_t)(json_number_value(js) * 1000)
                     : srv_scaled_ms(s, cliq_api_info(api)->lock_s);
    srv_rate_lock(s, api, now, ms);
  } else {
    for (int a = 0; a < CLIQ_API_COUNT; a++)
      if (api < 0 || a == api)
        srv_rate_unlock(s, a);
  }
  srv_answer_json(c, 200, json_object());
}

static void ctl_config(struct call *c)
{
  struct emu_server *s = c->s;
  json_t *v;
  if (!c->body || !json_is_object(c->body)) {
    ctl_error(c, 400, "body must be an object");
    return;
  }
  if ((v = json_object_get(c->body, "throttle_style"))) {
    const char *st = json_string_value(v);
    long n = st ? strtol(st, NULL, 10)
                : json_is_integer(v) ? (long)json_integer_value(v) : 0;
    if (n != 400 && n != 429) {
      ctl_error(c, 400, "throttle_style must be 429 or 400");
      return;
    }
    s->cfg.throttle_style = (int)n;
  }
  if ((v = json_object_get(c->body, "time_scale"))) {
    if (!json_is_number(v) || json_number_value(v) <= 0) {
      ctl_error(c, 400, "time_scale must be > 0");
      return;
    }
    s->cfg.time_scale = json_number_value(v);
  }
  if ((v = json_object_get(c->body, "token_lifetime"))) {
    if (!json_is_number(v) || json_number_value(v) <= 0) {
      ctl_error(c, 400, "token_lifetime must be > 0");
      return;
    }
    s->cfg.token_lifetime_s = json_number_value(v);
  }
  if ((v = json_object_get(c->body, "clock_offset_s"))) {
    if (!json_is_number(v) || fabs(json_number_value(v)) > 86400 * 365) {
      ctl_error(c, 400, "clock_offset_s must be a number of seconds");
      return;
    }
    emu_set_clock_offset_ms((int64_t)llround(json_number_value(v) * 1000));
  }
  if ((v = json_object_get(c->body, "chatter"))) {
    if (!json_is_number(v) || json_number_value(v) < 0) {
      ctl_error(c, 400, "chatter must be >= 0");
      return;
    }
    s->cfg.chatter_s = json_number_value(v);
    srv_chatter_reconfigure(s);
  }
  srv_answer_json(c, 200,
                  json_pack("{s:s,s:f,s:f,s:f}", "throttle_style",
                            s->cfg.throttle_style == 400 ? "400" : "429",
                            "time_scale", s->cfg.time_scale, "token_lifetime",
                            s->cfg.token_lifetime_s, "chatter", s->cfg.chatter_s));
}

static void ctl_rewrites(struct call *c)
{
  struct emu_server *s = c->s;
  const char *from = json_string_value(json_object_get(c->body, "from"));
  const char *to = json_string_value(json_object_get(c->body, "to"));
  if (!from || !*from || !to) {
    ctl_error(c, 400, "rewrites need {\"from\":TEXT,\"to\":TEXT}");
    return;
  }
  struct rewrite *grown =
    realloc(s->rewrites, (s->nrewrites + 1) * sizeof *grown);
  if (!grown) {
    ctl_error(c, 500, "out of memory");
    return;
  }
  s->rewrites = grown;
  char *f = strdup(from), *t = strdup(to);
  if (!f || !t) {
    free(f);
    free(t);
    ctl_error(c, 500, "out of memory");
    return;
  }
  s->rewrites[s->nrewrites].from = f;
  s->rewrites[s->nrewrites].to = t;
  s->nrewrites++;
  srv_answer_json(c, 200, json_object());
}

void srv_control(struct call *c, const char *url)
{
  struct emu_server *s = c->s;
  const char *p = url + strlen("/_emulator");
  bool get = strcmp(c->method, "GET") == 0;
  bool post = strcmp(c->method, "POST") == 0;
  bool del = strcmp(c->method, "DELETE") == 0;
  if (c->raw->len && !c->body) {
    ctl_error(c, 400, "body is not JSON");
    return;
  }
  if (strcmp(p, "/counters") == 0 && get)
    srv_answer_json(c, 200, counters_json(s));
  else if (strcmp(p, "/counters/reset") == 0 && post) {
    memset(s->counts, 0, sizeof s->counts);
    memset(s->totals, 0, sizeof s->totals);
    s->total = s->throttled = 0;
    for (int a = 0; a < CLIQ_API_COUNT; a++)
      s->rates[a].max_in_window = 0;
    srv_answer_json(c, 200, json_object());
  } else if (strcmp(p, "/faults") == 0 && post)
    ctl_faults_add(c);
  else if (strcmp(p, "/faults") == 0 && get)
    ctl_faults_list(c);
  else if (strcmp(p, "/faults") == 0 && del) {
    free(s->faults);
    s->faults = NULL;
    s->nfaults = 0;
    srv_answer_json(c, 200, json_object());
  } else if (strcmp(p, "/post") == 0 && post)
    ctl_post(c);
  else if (strcmp(p, "/rewrites") == 0 && post)
    ctl_rewrites(c);
  else if (strcmp(p, "/expire-tokens") == 0 && post) {
    for (size_t i = 0; i < s->ntokens; i++)
      s->tokens[i].expires = 0;
    srv_answer_json(c, 200, json_object());
  } else if (strcmp(p, "/lock") == 0 && post)
    ctl_lock(c, true);
  else if (strcmp(p, "/unlock") == 0 && post)
    ctl_lock(c, false);
  else if (strcmp(p, "/state") == 0 && get) {
    const char *m = srv_query(c, "messages");
    bool with = !m || (strcmp(m, "0") != 0 && strcmp(m, "false") != 0);
    srv_answer_json(c, 200, emu_org_to_json(s->org, with));
  } else if (strcmp(p, "/config") == 0 && (post || get)) {
    if (get) {
      json_decref(c->body);
      c->body = json_object();
    }
    ctl_config(c);
  } else
    ctl_error(c, 404, "unknown control path or method");
}
