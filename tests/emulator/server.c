/* The HTTP side of cliq-emulator: routing, auth, OAuth, rate limits, faults,
 * counters and the /_emulator/ control path (PROTOCOL.md). */
#include "emulator.h"

#include "api/endpoints.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MSG_400 "The request cannot be performed. Usually because of malformed parameter or missing parameter."
#define MSG_401 "Request was rejected because of invalid AuthToken."
#define MSG_403 "The user does not have enough permission or possibly not an user of the respective organization to access the resource."
#define MSG_404 "The URL you've sent is wrong. It's possible that the resource you've requested has been moved to another URL."
#define MSG_405 "The requested resource does not support the HTTP method used. For example, requesting List of all customers API with PUT as the HTTP method."
#define MSG_429 "Too many requests within a certain time frame."
#define MSG_500 "Cliq server encountered an error which prevents it from fulfilling the request."
#define MSG_503 "Cliq is temporarily unavailable. Please try again later."
#define MSG_THROTTLE_400 "You have exceeded the URL throttle limits."
#define MSG_OAUTH_DENIED "You have made too many requests continuously. Please try again after some time."

#define MAX_BODY (1024 * 1024)
#define API_UNKNOWN CLIQ_API_COUNT   /* counters of unrouted requests */
#define NSTATUS 600

enum fault_kind {
  FAULT_500, FAULT_503, FAULT_DELAY, FAULT_DROP, FAULT_TRUNCATE,
  FAULT_INVALID_JSON, FAULT_401, FAULT_THROTTLE, FAULT_ACCEPT_DROP,
  FAULT_NONE,
};
static const char *const fault_names[] = {
  "500", "503", "delay", "drop", "truncate", "invalid_json", "401",
  "throttle", "accept_drop",
};

struct fault {
  long id;
  int api;              /* -1 = any */
  enum fault_kind kind;
  long remaining;
  long delay_ms;
};

/* Request times (monotonic ms) within the window, oldest first. */
struct ring {
  int64_t *ts;
  size_t head, n, cap;
};

/* Two windows per API: `seen` holds every request received (for
 * max_in_window), `charged` only those not refused by a lock: requests
 * refused while locked do not count against the next window. */
struct rate {
  struct ring seen, charged;
  int64_t locked_until; /* monotonic ms; 0 = not locked */
  long max_in_window;
};

struct token {
  char *value;
  int64_t expires;      /* monotonic ms */
};

struct rewrite {
  char *from, *to;      /* literal text of the JSON answer, and what replaces it */
};

struct emu_server {
  struct MHD_Daemon *daemon;
  pthread_mutex_t mu;   /* guards everything below */
  struct rewrite *rewrites;  /* applied to every Cliq answer, in order */
  size_t nrewrites;
  struct emu_org *org;
  struct emu_config cfg;
  int port;
  struct rate rates[CLIQ_API_COUNT];
  long counts[CLIQ_API_COUNT + 1][NSTATUS];
  long totals[CLIQ_API_COUNT + 1];
  long total, throttled;
  struct fault *faults;
  size_t nfaults;
  long next_fault_id;
  struct token *tokens;
  size_t ntokens;
  bool auth_code_used;
  uint64_t rng;
  /* chatter */
  pthread_t chatter;
  bool chatter_running, stopping;
  pthread_cond_t cv;
};

struct req {
  char *body;
  size_t len, cap;
  bool too_big;
};

/* One API call being answered. */
struct call {
  struct emu_server *s;
  struct MHD_Connection *conn;
  const char *method;
  const char *arg[2];
  json_t *body;         /* parsed JSON body or NULL */
  const struct req *raw;
  int status;
  json_t *out;          /* NULL with status 204 */
  bool is_control;      /* the /_emulator/ path: never rewritten */
};

static void logf_(struct emu_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(struct emu_server *s, const char *fmt, ...)
{
  if (s->cfg.quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("cliq-emulator: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int64_t scaled_ms(const struct emu_server *s, double seconds)
{
  double scale = s->cfg.time_scale > 0 ? s->cfg.time_scale : 1;
  int64_t ms = (int64_t)(seconds * 1000.0 / scale);
  return ms < 1 ? 1 : ms;
}

/* ---- answers ---- */

static void answer_error(struct call *c, int status, const char *code,
                         const char *message)
{
  json_decref(c->out);
  c->status = status;
  c->out = code ? json_pack("{s:s,s:s}", "code", code, "message", message)
                : json_pack("{s:s}", "message", message);
}

static void answer_json(struct call *c, int status, json_t *out)
{
  json_decref(c->out);
  c->status = status;
  c->out = out;
}

static void answer_204(struct call *c)
{
  json_decref(c->out);
  c->status = 204;
  c->out = NULL;
}

static void not_found_chat(struct call *c)
{
  answer_error(c, 404, "chat_not_found",
               "The chat you are trying to access does not exist.");
}

static json_t *throttle_body(struct emu_server *s, int api, int *status)
{
  if (api == CLIQ_API_OAUTH_TOKEN) {
    *status = 400;
    return json_pack("{s:s,s:s,s:s}", "error", "Access Denied",
                     "error_description", MSG_OAUTH_DENIED, "status",
                     "failure");
  }
  if (s->cfg.throttle_style == 400) {
    *status = 400;
    return json_pack("{s:s,s:s}", "code", "request_limit_exceeded", "message",
                     MSG_THROTTLE_400);
  }
  *status = 429;
  return json_pack("{s:s}", "message", MSG_429);
}

/* ---- rate windows ---- */

static void ring_prune(struct ring *r, int64_t oldest_kept)
{
  while (r->n && r->ts[r->head] < oldest_kept) {
    r->head = (r->head + 1) % r->cap;
    r->n--;
  }
}

static void ring_push(struct ring *r, int64_t t)
{
  if (r->n == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 64;
    int64_t *nts = malloc(ncap * sizeof *nts);
    if (!nts)
      abort();
    for (size_t i = 0; i < r->n; i++)
      nts[i] = r->ts[(r->head + i) % r->cap];
    free(r->ts);
    r->ts = nts;
    r->cap = ncap;
    r->head = 0;
  }
  r->ts[(r->head + r->n) % r->cap] = t;
  r->n++;
}

static void ring_pop_newest(struct ring *r)
{
  if (r->n)
    r->n--;
}

static void rate_prune(struct emu_server *s, int api, int64_t now)
{
  struct rate *r = &s->rates[api];
  int64_t window = scaled_ms(s, cliq_api_info(api)->window_s);
  ring_prune(&r->seen, now - window + 1);
  ring_prune(&r->charged, now - window + 1);
}

/* Records a request to api; returns how many it has been charged in its
 * window, this one included. */
static size_t rate_note(struct emu_server *s, int api, int64_t now)
{
  struct rate *r = &s->rates[api];
  rate_prune(s, api, now);
  ring_push(&r->seen, now);
  ring_push(&r->charged, now);
  if ((long)r->seen.n > r->max_in_window)
    r->max_in_window = (long)r->seen.n;
  return r->charged.n;
}

static void rate_lock(struct emu_server *s, int api, int64_t now, int64_t ms)
{
  s->rates[api].locked_until = now + ms;
}

static void rate_unlock(struct emu_server *s, int api)
{
  s->rates[api].locked_until = 0;
  s->rates[api].seen.n = s->rates[api].charged.n = 0;
}

/* ---- tokens ---- */

static void random_hex(struct emu_server *s, char *out, size_t nhex)
{
  static const char hex[] = "0123456789abcdef";
  uint64_t r = 0;
  for (size_t i = 0; i < nhex; i++) {
    if (i % 16 == 0)
      r = emu_splitmix(&s->rng);
    out[i] = hex[r & 15];
    r >>= 4;
  }
  out[nhex] = '\0';
}

static char *issue_token(struct emu_server *s, int64_t now)
{
  char buf[80] = "1000.";
  random_hex(s, buf + 5, 32);
  buf[37] = '.';
  random_hex(s, buf + 38, 32);
  struct token *t = realloc(s->tokens, (s->ntokens + 1) * sizeof *t);
  if (!t)
    abort();
  s->tokens = t;
  t[s->ntokens].value = strdup(buf);
  if (!t[s->ntokens].value)
    abort();
  t[s->ntokens].expires = now + scaled_ms(s, s->cfg.token_lifetime_s);
  return t[s->ntokens++].value;
}

static bool token_valid(struct emu_server *s, const char *header, int64_t now)
{
  if (!header)
    return false;
  const char *tok;
  if (strncasecmp(header, "Zoho-oauthtoken ", 16) == 0)
    tok = header + 16;
  else if (strncasecmp(header, "Bearer ", 7) == 0)
    tok = header + 7;
  else
    return false;
  while (*tok == ' ')
    tok++;
  if (!*tok)
    return false;
  if (s->cfg.static_token_enabled && s->cfg.static_token &&
      strcmp(tok, s->cfg.static_token) == 0)
    return true;
  for (size_t i = 0; i < s->ntokens; i++)
    if (strcmp(s->tokens[i].value, tok) == 0)
      return now < s->tokens[i].expires;
  return false;
}

/* ---- query and body helpers ---- */

static const char *query(struct call *c, const char *key)
{
  return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Parses an optional integer query parameter.  Returns 0 (absent: *out =
 * dflt), 1 (present) or -1 (malformed or out of [lo, hi]). */
static int query_int(struct call *c, const char *key, long long dflt,
                     long long lo, long long hi, long long *out)
{
  const char *v = query(c, key);
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
    answer_error(c, 400, "invalid_inputs", MSG_400);
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
    answer_error(c, 400, "thread_chatid_invalid",
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
  const char *joined = query(c, "joined");
  if (query_int(c, "limit", 100, 1, 100, &limit) < 0 ||
      (joined && strcmp(joined, "true") != 0 && strcmp(joined, "false") != 0) ||
      (query(c, "next_token") &&
       page_offset(query(c, "next_token"), 'c', &offset) < 0)) {
    answer_error(c, 400, "invalid_inputs", MSG_400);
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
  answer_json(c, 200, out);
}

static void h_channels_get(struct call *c)
{
  struct emu_channel *ch = emu_find_channel_by_id(c->s->org, c->arg[0]);
  if (!ch) {
    not_found_chat(c);
    return;
  }
  answer_json(c, 200, emu_channel_json(c->s->org, ch));
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
  const char *state = query(c, "state");
  const char *type = query(c, "type");
  long long limit;
  size_t offset = 0;
  if (query_int(c, "limit", 20, 1, 100, &limit) < 0 ||
      (state && strcmp(state, "all") && strcmp(state, "followed") &&
       strcmp(state, "not_followed")) ||
      (type && strcmp(type, "open") && strcmp(type, "closed")) ||
      (query(c, "next_token") &&
       page_offset(query(c, "next_token"), 't', &offset) < 0)) {
    answer_error(c, 400, "invalid_inputs", MSG_400);
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
  answer_json(c, 200, out);
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
    answer_error(c, 400, "invalid_inputs", MSG_400);
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
  answer_json(c, 200, json_pack("{s:o}", "data", data));
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
    answer_error(c, 404, "message_not_found",
                 "The message you are trying to access does not exist.");
    return;
  }
  struct emu_msg_view v;
  emu_chat_get(org, chat, (size_t)k, &v);
  answer_json(c, 200, emu_message_json(org, ch, chat, &v, EMU_TIME_STRING));
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
    answer_json(c, 200, json_pack("{s:s}", "message_id", message_id));
  else
    answer_204(c);
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
    answer_error(c, 400, "param_missing", MSG_400);
    return;
  }
  if (!json_is_string(jtext)) {
    answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  const char *text = json_string_value(jtext);
  if (strlen(text) != json_string_length(jtext) ||
      emu_utf8_chars(text) > EMU_TEXT_MAX_CHARS) {
    answer_error(c, 400, "invalid_inputs",
                 "The message text exceeds the limit of 5000 characters.");
    return;
  }
  if (!ch->joined) {
    answer_error(c, 403, "access_denied", MSG_403);
    return;
  }
  json_t *jparent = json_object_get(c->body, "thread_message_id");
  json_t *jtitle = json_object_get(c->body, "thread_title");
  if ((jparent && !json_is_string(jparent)) ||
      (jtitle && !json_is_string(jtitle))) {
    answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  if (!th && jparent) {
    long parent = emu_chat_find(org, &ch->chat, json_string_value(jparent));
    if (parent < 0) {
      answer_error(c, 400, "invalid_inputs",
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
    answer_error(c, 400, "operation_not_allowed",
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
    answer_json(c, 200, emu_thread_details_json(c->s->org, th));
}

static void h_thread_update(struct call *c)
{
  struct emu_org *org = c->s->org;
  struct emu_thread *th = thread_arg(c);
  if (!th || !json_body_object(c))
    return;
  json_t *ja = json_object_get(c->body, "action");
  if (!ja) {
    answer_error(c, 400, "param_missing", MSG_400);
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
    answer_error(c, 400, "invalid_inputs", MSG_400);
    return;
  }
  answer_204(c);
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
    answer_error(c, 500, "operation_failed", MSG_500);
    return;
  }
  struct emu_msg_view v;
  emu_chat_get(org, &ch->chat, (size_t)k, &v);
  json_t *m = emu_message_json(org, ch, &ch->chat, &v, EMU_TIME_ISO);
  json_object_set_new(m, "thread_state_information",
                      json_pack("{s:s}", "thread_state",
                                th->closed ? "closed" : "open"));
  answer_json(c, 200, m);
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
    answer_error(c, 400, "param_missing", MSG_400);
    return -1;
  }
  if (!json_is_array(ids) || json_array_size(ids) == 0) {
    answer_error(c, 400, "invalid_inputs", MSG_400);
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
      answer_error(c, 400, "invalid_inputs",
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
    answer_json(c, 200, json_pack("{s:o}", "data",
                                  users_json(org, &th->followers)));
    return;
  }
  if (what == 'n') {
    struct emu_uset non = {0};
    for (size_t i = 0; i < th->channel->members.n; i++)
      if (!emu_uset_has(&th->followers, th->channel->members.v[i]))
        emu_uset_add(&non, th->channel->members.v[i]);
    answer_json(c, 200, json_pack("{s:o}", "data", users_json(org, &non)));
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
  answer_204(c);
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
  answer_204(c);
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
  const char *fields = query(c, "fields");
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
      answer_error(c, 400, "invalid_inputs", MSG_400);
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
  answer_json(c, 200, json_pack("{s:o}", "members", a));
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
  answer_204(c);
}

/* ---- routing ---- */

enum route_id {
  R_OAUTH, R_CHANNELS, R_CHANNEL, R_THREADS_LIST, R_MESSAGES, R_MESSAGE,
  R_POST_CHANNEL, R_POST_CHAT, R_POST_BYNAME, R_THREAD, R_THREAD_MAIN,
  R_FOLLOWERS, R_NONFOLLOWERS, R_FOLLOW, R_UNFOLLOW, R_MEMBERS, R_LEAVE,
  R_MUTE, R_UNMUTE,
};

struct route_method {
  const char *method;
  int api;
};

struct route {
  enum route_id id;
  const char *pattern;
  struct route_method methods[3];
};

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
static const struct route *match_route(const char *url, char *buf, size_t len,
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

static void dispatch(struct call *c, enum route_id id, int api)
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

/* ---- OAuth ---- */

static int hexval(int ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static void form_decode(char *s)
{
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '+')
      *o++ = ' ';
    else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
      *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
      p += 2;
    } else
      *o++ = *p;
  }
  *o = '\0';
}

/* Looks key up in the form-encoded body, then the query string.  Returns a
 * new string or NULL. */
static char *form_value(struct call *c, const char *key)
{
  if (c->raw && c->raw->body) {
    char *copy = strndup(c->raw->body, c->raw->len);
    if (!copy)
      abort();
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv;
         kv = strtok_r(NULL, "&", &save)) {
      char *eq = strchr(kv, '=');
      if (!eq)
        continue;
      *eq = '\0';
      form_decode(kv);
      if (strcmp(kv, key) == 0) {
        form_decode(eq + 1);
        char *v = strdup(eq + 1);
        free(copy);
        return v;
      }
    }
    free(copy);
  }
  const char *q = query(c, key);
  return q ? strdup(q) : NULL;
}

static void oauth_error(struct call *c, const char *error)
{
  answer_json(c, 200, json_pack("{s:s}", "error", error));
}

static void h_oauth(struct call *c, int64_t now)
{
  struct emu_server *s = c->s;
  char *grant = form_value(c, "grant_type");
  char *cid = form_value(c, "client_id");
  char *secret = form_value(c, "client_secret");
  char *refresh = form_value(c, "refresh_token");
  char *code = form_value(c, "code");
  bool is_refresh = grant && strcmp(grant, "refresh_token") == 0;
  bool is_code = grant && strcmp(grant, "authorization_code") == 0;
  const json_int_t lifetime = (json_int_t)s->cfg.token_lifetime_s;
  if (!is_refresh && !is_code)
    oauth_error(c, grant ? "unsupported_grant_type" : "invalid_request");
  else if (!cid || strcmp(cid, s->cfg.client_id) != 0)
    oauth_error(c, "invalid_client");
  else if (!secret || strcmp(secret, s->cfg.client_secret) != 0)
    oauth_error(c, "invalid_client_secret");
  else if (is_refresh && (!refresh || strcmp(refresh, s->cfg.refresh_token) != 0))
    oauth_error(c, "invalid_code");
  else if (is_code && (!code || s->auth_code_used ||
                       strcmp(code, s->cfg.auth_code) != 0))
    oauth_error(c, "invalid_code");
  else {
    const char *tok = issue_token(s, now);
    json_t *out = json_pack(
        "{s:s,s:I,s:s,s:s,s:s}", "access_token", tok, "expires_in", lifetime,
        "api_domain", "https://www.zohoapis.com", "token_type", "Bearer",
        "scope",
        "ZohoCliq.Channels.READ ZohoCliq.Chats.READ ZohoCliq.Chats.UPDATE "
        "ZohoCliq.Chats.DELETE ZohoCliq.Messages.READ ZohoCliq.Webhooks.CREATE");
    if (is_code) {
      s->auth_code_used = true;
      json_object_set_new(out, "refresh_token",
                          json_string(s->cfg.refresh_token));
    }
    answer_json(c, 200, out);
  }
  free(grant);
  free(cid);
  free(secret);
  free(refresh);
  free(code);
}

/* ---- control path ---- */

static json_t *counters_json(struct emu_server *s)
{
  json_t *apis = json_object();
  json_t *windows = json_object();
  int64_t now = emu_mono_ms();
  for (int a = 0; a <= CLIQ_API_COUNT; a++) {
    const char *name = a == API_UNKNOWN ? "unknown" : cliq_api_name(a);
    if (a < CLIQ_API_COUNT) {
      rate_prune(s, a, now);
      const struct cliq_api_info *info = cliq_api_info(a);
      json_object_set_new(
          windows, name,
          json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "max_in_window",
                    (json_int_t)s->rates[a].max_in_window, "limit",
                    (json_int_t)info->limit, "in_window",
                    (json_int_t)s->rates[a].charged.n, "window_ms",
                    (json_int_t)scaled_ms(s, info->window_s), "lock_ms",
                    (json_int_t)scaled_ms(s, info->lock_s), "locked",
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
  answer_json(c, status, json_pack("{s:s}", "error", msg));
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
    if (strcmp(kind, fault_names[i]) == 0)
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
  answer_json(c, 200, json_pack("{s:I}", "id", (json_int_t)f->id));
}

static void ctl_faults_list(struct call *c)
{
  json_t *a = json_array();
  for (size_t i = 0; i < c->s->nfaults; i++) {
    struct fault *f = &c->s->faults[i];
    json_array_append_new(
        a, json_pack("{s:I,s:s,s:s,s:I,s:I}", "id", (json_int_t)f->id, "api",
                     f->api < 0 ? "*" : cliq_api_name(f->api), "kind",
                     fault_names[f->kind], "count", (json_int_t)f->remaining,
                     "delay_ms", (json_int_t)f->delay_ms));
  }
  answer_json(c, 200, json_pack("{s:o}", "faults", a));
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
  answer_json(c, 200, emu_message_json(org, ch, chat, &v, EMU_TIME_NUMBER));
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
                     : scaled_ms(s, cliq_api_info(api)->lock_s);
    rate_lock(s, api, now, ms);
  } else {
    for (int a = 0; a < CLIQ_API_COUNT; a++)
      if (api < 0 || a == api)
        rate_unlock(s, a);
  }
  answer_json(c, 200, json_object());
}

static void chatter_reconfigure(struct emu_server *s);

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
    chatter_reconfigure(s);
  }
  answer_json(c, 200,
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
  answer_json(c, 200, json_object());
}

static void control(struct call *c, const char *url)
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
    answer_json(c, 200, counters_json(s));
  else if (strcmp(p, "/counters/reset") == 0 && post) {
    memset(s->counts, 0, sizeof s->counts);
    memset(s->totals, 0, sizeof s->totals);
    s->total = s->throttled = 0;
    for (int a = 0; a < CLIQ_API_COUNT; a++)
      s->rates[a].max_in_window = 0;
    answer_json(c, 200, json_object());
  } else if (strcmp(p, "/faults") == 0 && post)
    ctl_faults_add(c);
  else if (strcmp(p, "/faults") == 0 && get)
    ctl_faults_list(c);
  else if (strcmp(p, "/faults") == 0 && del) {
    free(s->faults);
    s->faults = NULL;
    s->nfaults = 0;
    answer_json(c, 200, json_object());
  } else if (strcmp(p, "/post") == 0 && post)
    ctl_post(c);
  else if (strcmp(p, "/rewrites") == 0 && post)
    ctl_rewrites(c);
  else if (strcmp(p, "/expire-tokens") == 0 && post) {
    for (size_t i = 0; i < s->ntokens; i++)
      s->tokens[i].expires = 0;
    answer_json(c, 200, json_object());
  } else if (strcmp(p, "/lock") == 0 && post)
    ctl_lock(c, true);
  else if (strcmp(p, "/unlock") == 0 && post)
    ctl_lock(c, false);
  else if (strcmp(p, "/state") == 0 && get) {
    const char *m = query(c, "messages");
    bool with = !m || (strcmp(m, "0") != 0 && strcmp(m, "false") != 0);
    answer_json(c, 200, emu_org_to_json(s->org, with));
  } else if (strcmp(p, "/config") == 0 && (post || get)) {
    if (get) {
      json_decref(c->body);
      c->body = json_object();
    }
    ctl_config(c);
  } else
    ctl_error(c, 404, "unknown control path or method");
}

/* ---- the request cycle ---- */

static enum MHD_Result send_answer(struct MHD_Connection *conn, int status,
                                   char *body, size_t len)
{
  struct MHD_Response *resp;
  if (body)
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  else
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  if (body)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json;charset=UTF-8");
  /* The server's own clock (clock_offset_s), as an HTTP server tells it. */
  char date[64];
  time_t now = (time_t)(emu_now_ms() / 1000);
  struct tm tm;
  if (gmtime_r(&now, &tm) &&
      strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_DATE, date);
  enum MHD_Result r = MHD_queue_response(conn, (unsigned int)status, resp);
  MHD_destroy_response(resp);
  return r;
}

/* s with every `from` replaced by `to` (a new string; s is freed). */
static char *replace_all(char *s, const char *from, const char *to)
{
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  if (fl == 0)
    return s;
  for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
    n++;
  if (n == 0)
    return s;
  char *out = malloc(strlen(s) + n * tl + 1);
  if (!out)
    return s;
  char *o = out;
  const char *p = s, *q;
  while ((q = strstr(p, from)) != NULL) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, to, tl);
    o += tl;
    p = q + fl;
  }
  strcpy(o, p);
  free(s);
  return out;
}

static enum MHD_Result send_call(struct call *c)
{
  if (!c->out)
    return send_answer(c->conn, c->status, NULL, 0);
  char *s = json_dumps(c->out, JSON_COMPACT);
  if (!s)
    return MHD_NO;
  /* Odd but legal JSON that the organization file cannot hold (a \u0000
   * inside a string, say), for the clients' tests; never on the control
   * path. */
  if (c->s->nrewrites && !c->is_control) {
    pthread_mutex_lock(&c->s->mu);
    for (size_t i = 0; i < c->s->nrewrites; i++)
      s = replace_all(s, c->s->rewrites[i].from, c->s->rewrites[i].to);
    pthread_mutex_unlock(&c->s->mu);
  }
  return send_answer(c->conn, c->status, s, strlen(s));
}


static void count(struct emu_server *s, int api, int status)
{
  if (status < 0 || status >= NSTATUS)
    status = 0;
  s->total++;
  s->totals[api]++;
  s->counts[api][status]++;
}

static struct fault take_fault(struct emu_server *s, int api)
{
  struct fault none = {.kind = FAULT_NONE};
  for (size_t i = 0; i < s->nfaults; i++) {
    struct fault *f = &s->faults[i];
    if (f->api >= 0 && f->api != api)
      continue;
    struct fault got = *f;
    if (--f->remaining <= 0) {
      memmove(f, f + 1, (s->nfaults - i - 1) * sizeof *f);
      s->nfaults--;
    }
    return got;
  }
  return none;
}

static enum MHD_Result handle(struct emu_server *s, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              struct req *r)
{
  struct call c = {.s = s, .conn = conn, .method = method, .raw = r,
                   .status = 500};
  enum MHD_Result ret;
  if (r->len) {
    json_error_t jerr;
    c.body = json_loadb(r->body, r->len, JSON_ALLOW_NUL, &jerr);
  }

  if (strncmp(url, "/_emulator/", 11) == 0) {
    c.is_control = true;
    pthread_mutex_lock(&s->mu);
    if (s->cfg.control_needs_token &&
        !token_valid(s, MHD_lookup_connection_value(
                            conn, MHD_HEADER_KIND,
                            MHD_HTTP_HEADER_AUTHORIZATION),
                     emu_mono_ms()))
      answer_error(&c, 401, NULL, MSG_401);
    else
      control(&c, url);
    pthread_mutex_unlock(&s->mu);
    ret = send_call(&c);
    goto out;
  }

  char buf[1024];
  const struct route *route = url && strlen(url) < sizeof buf
                                  ? match_route(url, buf, sizeof buf, c.arg)
                                  : NULL;
  int api = API_UNKNOWN;
  if (!route) {
    answer_error(&c, 404, NULL, MSG_404);
  } else {
    api = route->methods[0].api;
    int found = -1;
    for (int i = 0; i < 3 && route->methods[i].method; i++)
      if (strcmp(route->methods[i].method, method) == 0)
        found = i;
    if (found < 0)
      answer_error(&c, 405, NULL, MSG_405);
    else
      api = route->methods[found].api;
    if (found >= 0)
      goto routed;
  }
  pthread_mutex_lock(&s->mu);
  count(s, api, c.status);
  pthread_mutex_unlock(&s->mu);
  logf_(s, "%s %s -> %d", method, url, c.status);
  ret = send_call(&c);
  goto out;

routed:;
  /* A private demo: a caller without the token is turned away before it can
   * spend a window or set off a lock that the owner would then meet. */
  if (s->cfg.control_needs_token && api != CLIQ_API_OAUTH_TOKEN) {
    pthread_mutex_lock(&s->mu);
    bool known = token_valid(s, MHD_lookup_connection_value(
                                    conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_AUTHORIZATION),
                             emu_mono_ms());
    if (!known) {
      answer_error(&c, 401, NULL, MSG_401);
      count(s, api, c.status);
    }
    pthread_mutex_unlock(&s->mu);
    if (!known) {
      logf_(s, "%s %s -> %d", method, url, c.status);
      ret = send_call(&c);
      goto out;
    }
  }
  pthread_mutex_lock(&s->mu);
  int64_t now = emu_mono_ms();
  size_t in_window = rate_note(s, api, now);
  struct fault f = take_fault(s, api);
  pthread_mutex_unlock(&s->mu);

  if (f.kind == FAULT_DELAY && f.delay_ms > 0) {
    struct timespec ts = {f.delay_ms / 1000, (f.delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
  }

  pthread_mutex_lock(&s->mu);
  now = emu_mono_ms();
  bool throttled = false;
  switch (f.kind) {
  case FAULT_500:
    answer_error(&c, 500, NULL, MSG_500);
    break;
  case FAULT_503:
    answer_error(&c, 503, NULL, MSG_503);
    break;
  case FAULT_401:
    answer_error(&c, 401, NULL, MSG_401);
    break;
  case FAULT_INVALID_JSON:
    break;
  case FAULT_DROP:
    break;
  case FAULT_THROTTLE:
    rate_lock(s, api, now, scaled_ms(s, cliq_api_info(api)->lock_s));
    throttled = true;
    break;
  default: {
    struct rate *rt = &s->rates[api];
    const struct cliq_api_info *info = cliq_api_info(api);
    if (api != CLIQ_API_OAUTH_TOKEN &&
        !token_valid(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION),
                     now)) {
      answer_error(&c, 401, NULL, MSG_401);
    } else if (rt->locked_until > now) {
      ring_pop_newest(&rt->charged);
      throttled = true;
    } else if ((long)in_window > info->limit) {
      ring_pop_newest(&rt->charged);
      rate_lock(s, api, now, scaled_ms(s, info->lock_s));
      throttled = true;
    } else if (api == CLIQ_API_OAUTH_TOKEN) {
      h_oauth(&c, now);
    } else {
      dispatch(&c, route->id, api);
    }
  }
  }
  if (throttled) {
    int st;
    json_t *body = throttle_body(s, api, &st);
    answer_json(&c, st, body);
    s->throttled++;
  }
  int counted = c.status;
  if (f.kind == FAULT_DROP || f.kind == FAULT_ACCEPT_DROP)
    counted = 0;
  if (f.kind == FAULT_INVALID_JSON)
    counted = 200;
  count(s, api, counted);
  pthread_mutex_unlock(&s->mu);

  logf_(s, "%s %s -> %d (%s%s%s)", method, url, counted, cliq_api_name(api),
        f.kind != FAULT_NONE ? ", fault " : "",
        f.kind != FAULT_NONE ? fault_names[f.kind] : "");
  if (f.kind == FAULT_DROP || f.kind == FAULT_ACCEPT_DROP) {
    ret = MHD_NO;   /* MHD closes the connection without an answer */
  } else if (f.kind == FAULT_INVALID_JSON) {
    static const char bad[] = "{\"data\": [{\"id\": \"1\", \"text\": <html>Service busy</html>";
    char *b = strdup(bad);
    ret = b ? send_answer(conn, 200, b, strlen(b)) : MHD_NO;
  } else if (f.kind == FAULT_TRUNCATE) {
    char *b = c.out ? json_dumps(c.out, JSON_COMPACT) : strdup("{\"message_id\":\"");
    if (!b) {
      ret = MHD_NO;
    } else {
      size_t len = strlen(b) / 2;
      if (!len)
        len = 1;
      ret = send_answer(conn, c.status == 204 ? 200 : c.status, b, len);
    }
  } else {
    ret = send_call(&c);
  }
out:
  json_decref(c.body);
  json_decref(c.out);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  (void)version;
  struct emu_server *s = cls;
  struct req *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size) {
    if (r->len + *upload_size > MAX_BODY) {
      r->too_big = true;
    } else {
      if (r->len + *upload_size + 1 > r->cap) {
        size_t ncap = (r->len + *upload_size + 1) * 2;
        char *nb = realloc(r->body, ncap);
        if (!nb)
          return MHD_NO;
        r->body = nb;
        r->cap = ncap;
      }
      memcpy(r->body + r->len, upload, *upload_size);
      r->len += *upload_size;
      r->body[r->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->too_big) {
    char *b = strdup("{\"message\":\"" MSG_400 "\"}");
    return b ? send_answer(conn, 400, b, strlen(b)) : MHD_NO;
  }
  return handle(s, conn, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)conn;
  (void)toe;
  struct req *r = *con_cls;
  if (r) {
    free(r->body);
    free(r);
    *con_cls = NULL;
  }
}

/* ---- chatter ---- */

static const char *const chatter_lines[] = {
  "Quick update: I pushed the changes, please take a look when you can.",
  "Thanks, that works for me.",
  "Can we sync on this tomorrow morning?",
  "I'll follow up with the customer and report back.",
  "Looks good to me 👍",
  "Small correction: the numbers in the last report were from staging.",
  "Heads-up: the build on main is red again, looking into it.",
  "Agreed. Let's keep the scope small for this sprint.",
  "I added notes to the doc, mostly about the rollout order.",
  "Does anyone know who owns the billing alerts now?",
  "Done ✅\nClosing my part of this; ping me if anything else comes up.",
  "On it.",
  "FYI the vendor moved the call to Thursday 3pm.",
  "I can take this one if nobody else has started.",
  "Posting the summary here so it doesn't get lost:\n- scope agreed\n- dates TBD\n- owner: me",
};

static double chatter_delay_s(struct emu_server *s)
{
  double mean = s->cfg.chatter_s / (s->cfg.time_scale > 0 ? s->cfg.time_scale : 1);
  double u = (double)(emu_splitmix(&s->rng) % 1000000 + 1) / 1000001.0;
  double d = -log(u) * mean;
  if (d < mean * 0.1)
    d = mean * 0.1;
  if (d > mean * 3)
    d = mean * 3;
  return d;
}

static void chatter_post(struct emu_server *s)
{
  struct emu_org *org = s->org;
  if (!org->nchannels)
    return;
  struct emu_channel *ch = org->channels[emu_splitmix(&s->rng) % org->nchannels];
  if (!ch->joined)
    return;
  struct emu_thread *th = NULL;
  if (ch->nthreads && emu_splitmix(&s->rng) % 10 < 7) {
    th = ch->threads[emu_splitmix(&s->rng) % ch->nthreads];
    if (th->closed)
      th = NULL;
  }
  int sender = -1;
  for (int tries = 0; tries < 8 && ch->members.n; tries++) {
    int u = ch->members.v[emu_splitmix(&s->rng) % ch->members.n];
    if (u != org->me) {
      sender = u;
      break;
    }
  }
  if (sender < 0)
    return;
  const char *line = chatter_lines[emu_splitmix(&s->rng) %
                                   (sizeof chatter_lines / sizeof chatter_lines[0])];
  struct emu_chat *chat = th ? &th->chat : &ch->chat;
  emu_chat_append(org, chat, sender, line);
  if (th)
    emu_uset_add(&th->members, sender);
  logf_(s, "chatter: %s posted in %s", org->users[sender].name, chat->chat_id);
}

static void *chatter_main(void *arg)
{
  struct emu_server *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    if (s->cfg.chatter_s <= 0) {
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    double d = chatter_delay_s(s);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)(d * 1e9) + ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    int rc = 0;
    while (!s->stopping && rc != ETIMEDOUT)
      rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    if (!s->stopping && s->cfg.chatter_s > 0)
      chatter_post(s);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Called with s->mu held. */
static void chatter_reconfigure(struct emu_server *s)
{
  pthread_cond_broadcast(&s->cv);
}

/* ---- lifetime ---- */

struct emu_server *emu_server_start(struct emu_org *org,
                                    const struct emu_config *cfg, int port,
                                    char *err, size_t errlen)
{
  struct emu_server *s = calloc(1, sizeof *s);
  if (!s)
    abort();
  s->org = org;
  s->cfg = *cfg;
  s->rng = org->seed * 0x9E3779B97F4A7C15ULL + 7;
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->daemon = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_POLL | (cfg->quiet ? 0 : MHD_USE_ERROR_LOG),
      (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
  if (!s->daemon) {
    snprintf(err, errlen, "cannot listen on 127.0.0.1:%d", port);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    s->org = NULL;
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : port;
  if (pthread_create(&s->chatter, NULL, chatter_main, s) == 0)
    s->chatter_running = true;
  return s;
}

int emu_server_port(const struct emu_server *s)
{
  return s->port;
}

void emu_server_stop(struct emu_server *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->chatter_running)
    pthread_join(s->chatter, NULL);
  MHD_stop_daemon(s->daemon);
  for (int a = 0; a < CLIQ_API_COUNT; a++)
  {
    free(s->rates[a].seen.ts);
    free(s->rates[a].charged.ts);
  }
  for (size_t i = 0; i < s->ntokens; i++)
    free(s->tokens[i].value);
  free(s->tokens);
  for (size_t i = 0; i < s->nrewrites; i++) {
    free(s->rewrites[i].from);
    free(s->rewrites[i].to);
  }
  free(s->rewrites);
  free(s->faults);
  emu_org_free(s->org);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
