/* The emulated organization: users, channels, threads, messages; loading
 * the --org format, dumping state, synthetic organizations and the JSON
 * shapes of the reference (tests/emulator/REFERENCE.md "Shapes"). */
#include "emulator.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Offset used for ISO 8601 times, as Zoho renders them (IST). */
#define EMU_ISO_OFFSET_MIN 330

static void *xcalloc(size_t n, size_t sz)
{
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p)
    abort();
  return p;
}

static void *xrealloc(void *p, size_t sz)
{
  void *q = realloc(p, sz ? sz : 1);
  if (!q)
    abort();
  return q;
}

static char *xstrdup(const char *s)
{
  char *d = strdup(s ? s : "");
  if (!d)
    abort();
  return d;
}

uint64_t emu_splitmix(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t x)
{
  return emu_splitmix(&x);
}

/* The server's clock may be set off the machine's (a server minutes behind
 * or ahead of its clients). */
static int64_t clock_offset_ms;

void emu_set_clock_offset_ms(int64_t ms)
{
  __atomic_store_n(&clock_offset_ms, ms, __ATOMIC_RELAXED);
}

int64_t emu_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
         __atomic_load_n(&clock_offset_ms, __ATOMIC_RELAXED);
}

int64_t emu_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void emu_iso8601(int64_t ms, char *buf, size_t len)
{
  time_t t = (time_t)(ms / 1000) + EMU_ISO_OFFSET_MIN * 60;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d+%02d:%02d",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, EMU_ISO_OFFSET_MIN / 60,
           EMU_ISO_OFFSET_MIN % 60);
}

void emu_normalize_id(const char *in, char *out, size_t outlen)
{
  size_t o = 0;
  if (!outlen)
    return;
  for (size_t i = 0; in && in[i] && o + 1 < outlen; i++) {
    if (in[i] == '%' && in[i + 1] == '2' && in[i + 2] == '0') {
      out[o++] = '_';
      i += 2;
    } else if (in[i] == ' ' || in[i] == '+') {
      out[o++] = '_';
    } else {
      out[o++] = in[i];
    }
  }
  out[o] = '\0';
}

size_t emu_utf8_chars(const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

/* ---- user sets ---- */

bool emu_uset_has(const struct emu_uset *s, int u)
{
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i] == u)
      return true;
  return false;
}

void emu_uset_add(struct emu_uset *s, int u)
{
  if (u < 0 || emu_uset_has(s, u))
    return;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 8;
    s->v = xrealloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = u;
}

void emu_uset_del(struct emu_uset *s, int u)
{
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i] == u) {
      memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
      s->n--;
      return;
    }
}

/* ---- org lifetime ---- */

struct emu_org *emu_org_new(uint64_t seed)
{
  struct emu_org *org = xcalloc(1, sizeof *org);
  org->seed = seed;
  org->rng = seed ^ 0x5eed0c11c0ffeeULL;
  return org;
}

static void chat_free(struct emu_chat *c)
{
  for (size_t i = 0; i < c->n; i++) {
    free(c->msgs[i].id);
    free(c->msgs[i].text);
    json_decref(c->msgs[i].file);
  }
  free(c->msgs);
  free(c->chat_id);
}

void emu_org_free(struct emu_org *org)
{
  if (!org)
    return;
  for (size_t i = 0; i < org->nusers; i++) {
    free(org->users[i].id);
    free(org->users[i].email);
    free(org->users[i].name);
  }
  free(org->users);
  for (size_t c = 0; c < org->nchannels; c++) {
    struct emu_channel *ch = org->channels[c];
    for (size_t t = 0; t < ch->nthreads; t++) {
      struct emu_thread *th = ch->threads[t];
      chat_free(&th->chat);
      free(th->thread_message_id);
      free(th->title);
      free(th->followers.v);
      free(th->members.v);
      free(th);
    }
    free(ch->threads);
    chat_free(&ch->chat);
    free(ch->channel_id);
    free(ch->unique_name);
    free(ch->name);
    free(ch->description);
    free(ch->members.v);
    free(ch);
  }
  free(org->channels);
  free(org);
}

static int add_user(struct emu_org *org, const char *id, const char *email,
                    const char *name)
{
  org->users = xrealloc(org->users, (org->nusers + 1) * sizeof *org->users);
  org->users[org->nusers].id = xstrdup(id);
  org->users[org->nusers].email = xstrdup(email);
  org->users[org->nusers].name = xstrdup(name);
  return (int)org->nusers++;
}

int emu_user_find(struct emu_org *org, const char *id)
{
  if (!id)
    return -1;
  for (size_t i = 0; i < org->nusers; i++)
    if (strcmp(org->users[i].id, id) == 0)
      return (int)i;
  return -1;
}

static struct emu_channel *add_channel(struct emu_org *org)
{
  struct emu_channel *ch = xcalloc(1, sizeof *ch);
  org->channels = xrealloc(org->channels,
                           (org->nchannels + 1) * sizeof *org->channels);
  org->channels[org->nchannels++] = ch;
  ch->joined = true;
  return ch;
}

static struct emu_thread *add_thread(struct emu_channel *ch)
{
  struct emu_thread *th = xcalloc(1, sizeof *th);
  if (ch->nthreads == ch->capthreads) {
    ch->capthreads = ch->capthreads ? ch->capthreads * 2 : 8;
    ch->threads = xrealloc(ch->threads, ch->capthreads * sizeof *ch->threads);
  }
  th->index = (int)ch->nthreads;
  th->channel = ch;
  ch->threads[ch->nthreads++] = th;
  return th;
}

/* ---- ids ---- */

static uint64_t msg_suffix(struct emu_org *org)
{
  return UINT64_C(10000000000000) + emu_splitmix(&org->rng) % UINT64_C(89999999999999);
}

static char *new_channel_chat_id(struct emu_org *org)
{
  char buf[64];
  snprintf(buf, sizeof buf, "CT_%" PRIu64 "_%" PRIu64,
           UINT64_C(1000000000000000000) + emu_splitmix(&org->rng) % UINT64_C(8999999999999999999),
           UINT64_C(10000000000) + emu_splitmix(&org->rng) % UINT64_C(89999999999));
  return xstrdup(buf);
}

static char *new_thread_chat_id(struct emu_org *org, const char *parent)
{
  char buf[128];
  snprintf(buf, sizeof buf, "%s-T-%" PRIu64, parent,
           UINT64_C(1000000000000000000) + emu_splitmix(&org->rng) % UINT64_C(8999999999999999999));
  return xstrdup(buf);
}

/* ---- chats ---- */

size_t emu_chat_count(const struct emu_chat *chat)
{
  return chat->n_virtual + chat->n;
}

static const char *const synth_words[] = {
  "build", "release", "review", "deploy", "customer", "ticket", "latency",
  "dashboard", "migration", "schema", "invoice", "sprint", "backlog",
  "rollout", "metrics", "alert", "on-call", "design", "draft", "budget",
  "roadmap", "feedback", "test", "staging", "cache", "index", "query",
  "report", "contract", "vendor", "onboarding", "checklist", "timeline",
  "estimate", "bug", "patch", "config", "audit", "quota", "capacity",
};

static void virtual_message(struct emu_org *org, struct emu_chat *c,
                            size_t i, struct emu_msg_view *v)
{
  uint64_t h = mix64(c->v_key ^ (0x1000003ULL * (i + 1)));
  v->time_ms = c->v_base_ms + (int64_t)i * c->v_step_ms;
  snprintf(v->id_buf, sizeof v->id_buf, "%" PRId64 "_%" PRIu64, v->time_ms,
           UINT64_C(10000000000000) + h % UINT64_C(89999999999999));
  v->id = v->id_buf;
  v->sender = org->nusers ? (int)((h >> 17) % org->nusers) : 0;
  size_t nw = sizeof synth_words / sizeof synth_words[0];
  int words = 6 + (int)((h >> 7) % 14);
  size_t o = (size_t)snprintf(v->text_buf, sizeof v->text_buf,
                              "Message %zu:", i + 1);
  uint64_t s = h;
  for (int w = 0; w < words && o + 20 < sizeof v->text_buf; w++)
    o += (size_t)snprintf(v->text_buf + o, sizeof v->text_buf - o, " %s",
                          synth_words[emu_splitmix(&s) % nw]);
  v->text = v->text_buf;
  v->file = NULL;
  v->thread = -1;
}

void emu_chat_get(struct emu_org *org, struct emu_chat *chat, size_t k,
                  struct emu_msg_view *v)
{
  if (k < chat->n_virtual) {
    virtual_message(org, chat, k, v);
    return;
  }
  struct emu_msg *m = &chat->msgs[k - chat->n_virtual];
  v->id = m->id;
  v->time_ms = m->time_ms;
  v->sender = m->sender;
  v->text = m->text;
  v->file = m->file;
  v->thread = m->thread;
}

size_t emu_chat_lower_bound(struct emu_org *org, struct emu_chat *chat,
                            int64_t t)
{
  (void)org;
  if (chat->n_virtual) {
    if (t <= chat->v_base_ms)
      return 0;
    int64_t idx = (t - chat->v_base_ms + chat->v_step_ms - 1) / chat->v_step_ms;
    if ((uint64_t)idx < chat->n_virtual)
      return (size_t)idx;
  }
  size_t lo = 0, hi = chat->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (chat->msgs[mid].time_ms < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return chat->n_virtual + lo;
}

long emu_chat_find(struct emu_org *org, struct emu_chat *chat, const char *id)
{
  char norm[96];
  emu_normalize_id(id, norm, sizeof norm);
  char *end = NULL;
  long long ms = strtoll(norm, &end, 10);
  if (!end || *end != '_')
    return -1;
  size_t k = emu_chat_lower_bound(org, chat, ms);
  for (; k < emu_chat_count(chat); k++) {
    struct emu_msg_view v;
    emu_chat_get(org, chat, k, &v);
    if (v.time_ms != ms)
      break;
    if (strcmp(v.id, norm) == 0)
      return (long)k;
  }
  return -1;
}

int64_t emu_chat_last_time(struct emu_org *org, struct emu_chat *chat)
{
  size_t n = emu_chat_count(chat);
  if (!n)
    return 0;
  struct emu_msg_view v;
  emu_chat_get(org, chat, n - 1, &v);
  return v.time_ms;
}

static struct emu_msg *chat_push(struct emu_chat *c)
{
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->msgs = xrealloc(c->msgs, c->cap * sizeof *c->msgs);
  }
  struct emu_msg *m = &c->msgs[c->n++];
  memset(m, 0, sizeof *m);
  m->thread = -1;
  return m;
}

struct emu_msg *emu_chat_append(struct emu_org *org, struct emu_chat *chat,
                                int sender, const char *text)
{
  int64_t t = emu_now_ms();
  int64_t last = emu_chat_last_time(org, chat);
  if (t <= last)
    t = last + 1;
  struct emu_msg *m = chat_push(chat);
  char id[64];
  snprintf(id, sizeof id, "%" PRId64 "_%" PRIu64, t, msg_suffix(org));
  m->id = xstrdup(id);
  m->time_ms = t;
  m->sender = sender;
  m->text = xstrdup(text);
  return m;
}

struct emu_thread *emu_thread_create(struct emu_org *org,
                                     struct emu_channel *ch, long parent,
                                     const char *title, int creator)
{
  struct emu_msg_view pv;
  emu_chat_get(org, &ch->chat, (size_t)parent, &pv);
  struct emu_thread *th = add_thread(ch);
  th->chat.chat_id = new_thread_chat_id(org, ch->chat.chat_id);
  th->thread_message_id = xstrdup(pv.id);
  th->title = xstrdup(title);
  th->created_ms = emu_now_ms();
  emu_uset_add(&th->members, pv.sender);
  emu_uset_add(&th->members, creator);
  emu_uset_add(&th->followers, pv.sender);
  emu_uset_add(&th->followers, creator);
  if ((size_t)parent >= ch->chat.n_virtual)
    ch->chat.msgs[(size_t)parent - ch->chat.n_virtual].thread = th->index;
  return th;
}

/* ---- lookups ---- */

struct emu_channel *emu_find_channel_by_id(struct emu_org *org, const char *id)
{
  for (size_t i = 0; i < org->nchannels; i++)
    if (org->channels[i]->channel_id &&
        strcmp(org->channels[i]->channel_id, id) == 0)
      return org->channels[i];
  return NULL;
}

struct emu_channel *emu_find_channel_by_chat(struct emu_org *org,
                                             const char *chat_id)
{
  for (size_t i = 0; i < org->nchannels; i++)
    if (org->channels[i]->chat.chat_id &&
        strcmp(org->channels[i]->chat.chat_id, chat_id) == 0)
      return org->channels[i];
  return NULL;
}

struct emu_channel *emu_find_channel_by_name(struct emu_org *org,
                                             const char *unique_name)
{
  for (size_t i = 0; i < org->nchannels; i++)
    if (org->channels[i]->unique_name &&
        strcmp(org->channels[i]->unique_name, unique_name) == 0)
      return org->channels[i];
  return NULL;
}

struct emu_thread *emu_find_thread(struct emu_org *org, const char *chat_id)
{
  const char *t = strstr(chat_id, "-T-");
  if (!t)
    return NULL;
  size_t plen = (size_t)(t - chat_id);
  for (size_t i = 0; i < org->nchannels; i++) {
    struct emu_channel *ch = org->channels[i];
    if (!ch->chat.chat_id || strlen(ch->chat.chat_id) != plen ||
        strncmp(ch->chat.chat_id, chat_id, plen) != 0)
      continue;
    for (size_t k = 0; k < ch->nthreads; k++)
      if (strcmp(ch->threads[k]->chat.chat_id, chat_id) == 0)
        return ch->threads[k];
  }
  return NULL;
}

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
    struct emu_msg *e = chat_push(c);
    const char *id = json_string_value(json_object_get(m, "id"));
    char buf[96];
    if (id)
      emu_normalize_id(id, buf, sizeof buf);
    else
      snprintf(buf, sizeof buf, "%" PRId64 "_%" PRIu64, t, msg_suffix(org));
    e->id = xstrdup(buf);
    e->time_ms = t;
    e->sender = sender;
    if (is_file) {
      e->file = json_deep_copy(file);
      e->text = NULL;
    } else {
      e->text = xstrdup(text);
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
  struct emu_thread *th = add_thread(ch);
  pm->thread = th->index;
  const char *cid = jstr(jt, "chat_id", NULL);
  if (cid && strncmp(cid, ch->chat.chat_id, strlen(ch->chat.chat_id)) == 0 &&
      strncmp(cid + strlen(ch->chat.chat_id), "-T-", 3) == 0)
    th->chat.chat_id = xstrdup(cid);
  else if (cid) {
    snprintf(err, errlen, "thread chat id %s is not <channel chat id>-T-<n>", cid);
    return -1;
  } else
    th->chat.chat_id = new_thread_chat_id(org, ch->chat.chat_id);
  if (emu_find_thread(org, th->chat.chat_id) != th) {
    snprintf(err, errlen, "duplicate thread chat id %s", th->chat.chat_id);
    return -1;
  }
  th->thread_message_id = xstrdup(pm->id);
  th->title = xstrdup(jstr(jt, "title", "Thread"));
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
    add_user(org, id, jstr(v, "email_id", ""), jstr(v, "name", id));
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
    struct emu_channel *ch = add_channel(org);
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
    ch->unique_name = xstrdup(uname);
    if (name)
      ch->name = xstrdup(name);
    else {
      char hashed[300];
      snprintf(hashed, sizeof hashed, "#%s", uname);
      ch->name = xstrdup(hashed);
    }
    ch->description = xstrdup(jstr(v, "description", ""));
    const char *cid = jstr(v, "channel_id", NULL);
    if (cid)
      ch->channel_id = xstrdup(cid);
    else {
      snprintf(buf, sizeof buf, "O%013" PRIu64, UINT64_C(5797000000000) + i + 1);
      ch->channel_id = xstrdup(buf);
    }
    const char *chat = jstr(v, "chat_id", NULL);
    ch->chat.chat_id = chat ? xstrdup(chat) : new_channel_chat_id(org);
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

/* ---- synthetic organizations ---- */

static const char *const synth_first[] = {
  "Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro",
  "Isla", "Jonas", "Kavya", "Liam",
};
static const char *const synth_last[] = {
  "Patel", "Nguyen", "Schmidt", "Okafor", "Rossi", "Kim", "Larsen",
  "Moreau", "Silva", "Tanaka", "Cohen", "Walsh",
};

struct emu_org *emu_org_synthetic(int nch, int nth, int nmsg, uint64_t seed)
{
  struct emu_org *org = emu_org_new(seed);
  size_t nu = sizeof synth_first / sizeof synth_first[0];
  for (size_t u = 0; u < nu; u++) {
    char id[32], email[96], name[64];
    snprintf(id, sizeof id, "%" PRIu64, UINT64_C(855700000) + u * 7919 + 13);
    snprintf(name, sizeof name, "%s %s", synth_first[u], synth_last[u]);
    snprintf(email, sizeof email, "%c%c.%s@example.com",
             tolower((unsigned char)synth_first[u][0]),
             tolower((unsigned char)synth_first[u][1]), synth_last[u]);
    for (char *p = email; *p; p++)
      *p = (char)tolower((unsigned char)*p);
    add_user(org, id, email, name);
  }
  org->me = 0;
  const int64_t anchor = 1735689600000LL; /* 2025-01-01T00:00Z */
  const int64_t step = 60000;             /* one message a minute */
  for (int c = 0; c < nch; c++) {
    struct emu_channel *ch = add_channel(org);
    char buf[128];
    snprintf(buf, sizeof buf, "synthetic-%03d", c + 1);
    ch->unique_name = xstrdup(buf);
    snprintf(buf, sizeof buf, "#Synthetic-%03d", c + 1);
    ch->name = xstrdup(buf);
    snprintf(buf, sizeof buf, "Synthetic channel %d of %d", c + 1, nch);
    ch->description = xstrdup(buf);
    snprintf(buf, sizeof buf, "O%013" PRIu64, UINT64_C(5797000000000) + (uint64_t)c + 1);
    ch->channel_id = xstrdup(buf);
    ch->chat.chat_id = new_channel_chat_id(org);
    for (size_t u = 0; u < nu; u++)
      emu_uset_add(&ch->members, (int)u);
    ch->created_ms = anchor - 86400000LL;
    /* The channel's own conversation is the threads' parent messages. */
    for (int t = 0; t < nth; t++) {
      struct emu_msg *m = chat_push(&ch->chat);
      int64_t tm = anchor + (int64_t)t * 3600000LL + c;
      char id[64];
      snprintf(id, sizeof id, "%" PRId64 "_%" PRIu64, tm, msg_suffix(org));
      m->id = xstrdup(id);
      m->time_ms = tm;
      m->sender = (int)((uint64_t)(c * 31 + t) % nu);
      snprintf(buf, sizeof buf, "Kicking off topic %d of channel %d: %s %s",
               t + 1, c + 1, synth_words[(size_t)(c + t) % 40],
               synth_words[(size_t)(c * 7 + t * 3) % 40]);
      m->text = xstrdup(buf);
    }
    for (int t = 0; t < nth; t++) {
      struct emu_thread *th = add_thread(ch);
      struct emu_msg *pm = &ch->chat.msgs[t];
      pm->thread = th->index;
      th->chat.chat_id = new_thread_chat_id(org, ch->chat.chat_id);
      th->thread_message_id = xstrdup(pm->id);
      snprintf(buf, sizeof buf, "Topic %03d-%04d %s %s", c + 1, t + 1,
               synth_words[(size_t)(c + t) % 40],
               synth_words[(size_t)(c * 7 + t * 3) % 40]);
      th->title = xstrdup(buf);
      th->closed = (t % 10) == 9;
      th->created_ms = pm->time_ms;
      th->chat.n_virtual = (size_t)nmsg;
      th->chat.v_base_ms = pm->time_ms + 1000;
      /* Keep every thread's messages before "now" and before the next
       * parent, whatever the size. */
      th->chat.v_step_ms = nmsg > 0 ? (3600000LL - 2000) / nmsg : step;
      if (th->chat.v_step_ms < 1)
        th->chat.v_step_ms = 1;
      th->chat.v_key = mix64(seed ^ ((uint64_t)c << 32) ^ (uint64_t)t);
      emu_uset_add(&th->members, pm->sender);
      emu_uset_add(&th->members, org->me);
      emu_uset_add(&th->members, (int)((uint64_t)(t + 3) % nu));
      emu_uset_add(&th->followers, pm->sender);
      if (t % 2 == 0)
        emu_uset_add(&th->followers, org->me);
    }
  }
  return org;
}

/* ---- JSON shapes ---- */

json_t *emu_user_json(struct emu_org *org, int u)
{
  return json_pack("{s:s,s:s,s:s}", "user_id", org->users[u].id, "email_id",
                   org->users[u].email, "name", org->users[u].name);
}

static void id_with_space(const char *id, char *out, size_t len)
{
  /* The threads page renders message ids with a URL-encoded space. */
  const char *us = strchr(id, '_');
  if (!us)
    snprintf(out, len, "%s", id);
  else
    snprintf(out, len, "%.*s%%20%s", (int)(us - id), id, us + 1);
}

static json_t *thread_information(struct emu_org *org, struct emu_thread *th)
{
  return json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "chat_id", th->chat.chat_id,
                   "thread_message_id", th->thread_message_id, "title",
                   th->title, "message_count",
                   (json_int_t)emu_chat_count(&th->chat), "follower_count",
                   (json_int_t)th->followers.n, "is_follower",
                   emu_uset_has(&th->followers, org->me));
}

json_t *emu_message_json(struct emu_org *org, struct emu_channel *ch,
                         struct emu_chat *chat, const struct emu_msg_view *v,
                         enum emu_time_style style)
{
  json_t *time;
  char buf[64];
  switch (style) {
  case EMU_TIME_STRING:
    snprintf(buf, sizeof buf, "%" PRId64, v->time_ms);
    time = json_string(buf);
    break;
  case EMU_TIME_ISO:
    emu_iso8601(v->time_ms, buf, sizeof buf);
    time = json_string(buf);
    break;
  default:
    time = json_integer(v->time_ms);
  }
  const struct emu_user *u = &org->users[v->sender];
  json_t *content;
  if (v->file) {
    content = json_pack("{s:O,s:s}", "file", v->file, "comment", "");
  } else {
    content = json_pack("{s:s}", "text", v->text);
  }
  json_t *m = json_pack("{s:s,s:o,s:s,s:{s:s,s:s},s:o,s:b}", "id", v->id,
                        "time", time, "type", v->file ? "file" : "text",
                        "sender", "id", u->id, "name", u->name, "content",
                        content, "is_pinned", false);
  if (ch && chat == &ch->chat && v->thread >= 0)
    json_object_set_new(m, "thread_information",
                        thread_information(org, ch->threads[v->thread]));
  return m;
}

static json_t *last_message_info(struct emu_org *org, struct emu_chat *c,
                                 const char *type_key)
{
  size_t n = emu_chat_count(c);
  if (!n)
    return json_object();
  struct emu_msg_view v;
  emu_chat_get(org, c, n - 1, &v);
  const struct emu_user *u = &org->users[v.sender];
  char text[200];
  if (v.file)
    snprintf(text, sizeof text, "%s",
             json_string_value(json_object_get(v.file, "name"))
                 ? json_string_value(json_object_get(v.file, "name"))
                 : "file");
  else
    snprintf(text, sizeof text, "%.*s", 150, v.text);
  /* keep the cut at a UTF-8 boundary */
  size_t len = strlen(text);
  while (len && ((unsigned char)text[len - 1] & 0x80)) {
    size_t start = len - 1;
    while (start && ((unsigned char)text[start] & 0xC0) == 0x80)
      start--;
    unsigned char lead = (unsigned char)text[start];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - start >= need)
      break;
    text[start] = '\0';
    len = start;
  }
  return json_pack("{s:s,s:s,s:s,s:I,s:s}", "sender_id", u->id, "sender_name",
                   u->name, type_key, v.file ? "file" : "text", "time",
                   (json_int_t)v.time_ms, "text", text);
}

json_t *emu_channel_json(struct emu_org *org, struct emu_channel *ch)
{
  char created[64], modified[64], total[32];
  emu_iso8601(ch->created_ms, created, sizeof created);
  int64_t last = emu_chat_last_time(org, &ch->chat);
  emu_iso8601(last ? last : ch->created_ms, modified, sizeof modified);
  snprintf(total, sizeof total, "%zu", emu_chat_count(&ch->chat));
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:s,s:s,s:s,s:o}", "channel_id",
      ch->channel_id, "chat_id", ch->chat.chat_id, "unique_name",
      ch->unique_name, "name", ch->name, "description", ch->description,
      "level", "organization", "joined", ch->joined, "participant_count",
      (json_int_t)ch->members.n, "total_message_count", total,
      "creation_time", created, "last_modified_time", modified,
      "last_message_info", last_message_info(org, &ch->chat, "message_type"));
}

json_t *emu_thread_entry_json(struct emu_org *org, struct emu_thread *th)
{
  struct emu_channel *ch = th->channel;
  long p = emu_chat_find(org, &ch->chat, th->thread_message_id);
  struct emu_msg_view pv;
  emu_chat_get(org, &ch->chat, (size_t)(p < 0 ? 0 : p), &pv);
  const struct emu_user *ps = &org->users[pv.sender];
  char created[64];
  emu_iso8601(th->created_ms, created, sizeof created);
  const char *state = th->closed ? "closed" : "open";
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:I,s:b,s:{s:s,s:s},s:o,s:I,s:s}",
      "chat_id", th->chat.chat_id, "parent_chat_id", ch->chat.chat_id,
      "thread_message_id", th->thread_message_id, "title", th->title,
      "thread_state", state, "thread_state_info", "thread_state", state,
      "follower_count", (json_int_t)th->followers.n, "is_follower",
      emu_uset_has(&th->followers, org->me), "parent_message_sender", "id",
      ps->id, "name", ps->name, "last_message_information",
      last_message_info(org, &th->chat, "message_type"), "message_count",
      (json_int_t)emu_chat_count(&th->chat), "creation_time", created);
}

json_t *emu_thread_details_json(struct emu_org *org, struct emu_thread *th)
{
  char url[256], tmid[96];
  snprintf(url, sizeof url, "/api/v3/threads/%s", th->chat.chat_id);
  id_with_space(th->thread_message_id, tmid, sizeof tmid);
  return json_pack(
      "{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:I,s:b,s:b,s:s}}", "url", url, "type",
      "chat_thread", "data", "chat_id", th->chat.chat_id, "parent_chat_id",
      th->channel->chat.chat_id, "thread_message_id", tmid, "title", th->title,
      "follower_count", (json_int_t)th->followers.n, "is_follower",
      emu_uset_has(&th->followers, org->me), "parent_participant",
      emu_uset_has(&th->channel->members, org->me), "thread_state",
      th->closed ? "closed" : "open");
}
