/* The emulated organization: users, channels, threads and their chats of
 * messages, ids, lookups, and the emulator's clocks.  The rest of the
 * family (the --org file, synthetic organizations, the JSON shapes) is
 * listed in org_i.h. */
#include "org_i.h"

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

char *org_xstrdup(const char *s)
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

int org_add_user(struct emu_org *org, const char *id, const char *email,
                 const char *name)
{
  org->users = xrealloc(org->users, (org->nusers + 1) * sizeof *org->users);
  org->users[org->nusers].id = org_xstrdup(id);
  org->users[org->nusers].email = org_xstrdup(email);
  org->users[org->nusers].name = org_xstrdup(name);
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

struct emu_channel *org_add_channel(struct emu_org *org)
{
  struct emu_channel *ch = xcalloc(1, sizeof *ch);
  org->channels = xrealloc(org->channels,
                           (org->nchannels + 1) * sizeof *org->channels);
  org->channels[org->nchannels++] = ch;
  ch->joined = true;
  return ch;
}

struct emu_thread *org_add_thread(struct emu_channel *ch)
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

uint64_t org_msg_suffix(struct emu_org *org)
{
  return UINT64_C(10000000000000) + emu_splitmix(&org->rng) % UINT64_C(89999999999999);
}

char *org_new_channel_chat_id(struct emu_org *org)
{
  char buf[64];
  snprintf(buf, sizeof buf, "CT_%" PRIu64 "_%" PRIu64,
           UINT64_C(1000000000000000000) + emu_splitmix(&org->rng) % UINT64_C(8999999999999999999),
           UINT64_C(10000000000) + emu_splitmix(&org->rng) % UINT64_C(89999999999));
  return org_xstrdup(buf);
}

char *org_new_thread_chat_id(struct emu_org *org, const char *parent)
{
  char buf[128];
  snprintf(buf, sizeof buf, "%s-T-%" PRIu64, parent,
           UINT64_C(1000000000000000000) + emu_splitmix(&org->rng) % UINT64_C(8999999999999999999));
  return org_xstrdup(buf);
}

/* ---- chats ---- */

size_t emu_chat_count(const struct emu_chat *chat)
{
  return chat->n_virtual + chat->n;
}

void emu_chat_get(struct emu_org *org, struct emu_chat *chat, size_t k,
                  struct emu_msg_view *v)
{
  if (k < chat->n_virtual) {
    org_virtual_message(org, chat, k, v);
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

struct emu_msg *org_chat_push(struct emu_chat *c)
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
  struct emu_msg *m = org_chat_push(chat);
  char id[64];
  snprintf(id, sizeof id, "%" PRId64 "_%" PRIu64, t, org_msg_suffix(org));
  m->id = org_xstrdup(id);
  m->time_ms = t;
  m->sender = sender;
  m->text = org_xstrdup(text);
  return m;
}

struct emu_thread *emu_thread_create(struct emu_org *org,
                                     struct emu_channel *ch, long parent,
                                     const char *title, int creator)
{
  struct emu_msg_view pv;
  emu_chat_get(org, &ch->chat, (size_t)parent, &pv);
  struct emu_thread *th = org_add_thread(ch);
  th->chat.chat_id = org_new_thread_chat_id(org, ch->chat.chat_id);
  th->thread_message_id = org_xstrdup(pv.id);
  th->title = org_xstrdup(title);
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
