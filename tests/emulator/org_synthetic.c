/* Synthetic organizations (--synthetic CxTxM): channels, threads and
 * people made from the seed, and the generated messages of their chats,
 * whose bodies are made on demand. */
#include "org_i.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
  return emu_splitmix(&x);
}

/* ---- generated messages ---- */

static const char *const synth_words[] = {
  "build", "release", "review", "deploy", "customer", "ticket", "latency",
  "dashboard", "migration", "schema", "invoice", "sprint", "backlog",
  "rollout", "metrics", "alert", "on-call", "design", "draft", "budget",
  "roadmap", "feedback", "test", "staging", "cache", "index", "query",
  "report", "contract", "vendor", "onboarding", "checklist", "timeline",
  "estimate", "bug", "patch", "config", "audit", "quota", "capacity",
};

void org_virtual_message(struct emu_org *org, struct emu_chat *c,
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
    org_add_user(org, id, email, name);
  }
  org->me = 0;
  const int64_t anchor = 1735689600000LL; /* 2025-01-01T00:00Z */
  const int64_t step = 60000;             /* one message a minute */
  for (int c = 0; c < nch; c++) {
    struct emu_channel *ch = org_add_channel(org);
    char buf[128];
    snprintf(buf, sizeof buf, "synthetic-%03d", c + 1);
    ch->unique_name = org_xstrdup(buf);
    snprintf(buf, sizeof buf, "#Synthetic-%03d", c + 1);
    ch->name = org_xstrdup(buf);
    snprintf(buf, sizeof buf, "Synthetic channel %d of %d", c + 1, nch);
    ch->description = org_xstrdup(buf);
    snprintf(buf, sizeof buf, "O%013" PRIu64, UINT64_C(5797000000000) + (uint64_t)c + 1);
    ch->channel_id = org_xstrdup(buf);
    ch->chat.chat_id = org_new_channel_chat_id(org);
    for (size_t u = 0; u < nu; u++)
      emu_uset_add(&ch->members, (int)u);
    ch->created_ms = anchor - 86400000LL;
    /* The channel's own conversation is the threads' parent messages. */
    for (int t = 0; t < nth; t++) {
      struct emu_msg *m = org_chat_push(&ch->chat);
      int64_t tm = anchor + (int64_t)t * 3600000LL + c;
      char id[64];
      snprintf(id, sizeof id, "%" PRId64 "_%" PRIu64, tm, org_msg_suffix(org));
      m->id = org_xstrdup(id);
      m->time_ms = tm;
      m->sender = (int)((uint64_t)(c * 31 + t) % nu);
      snprintf(buf, sizeof buf, "Kicking off topic %d of channel %d: %s %s",
               t + 1, c + 1, synth_words[(size_t)(c + t) % 40],
               synth_words[(size_t)(c * 7 + t * 3) % 40]);
      m->text = org_xstrdup(buf);
    }
    for (int t = 0; t < nth; t++) {
      struct emu_thread *th = org_add_thread(ch);
      struct emu_msg *pm = &ch->chat.msgs[t];
      pm->thread = th->index;
      th->chat.chat_id = org_new_thread_chat_id(org, ch->chat.chat_id);
      th->thread_message_id = org_xstrdup(pm->id);
      snprintf(buf, sizeof buf, "Topic %03d-%04d %s %s", c + 1, t + 1,
               synth_words[(size_t)(c + t) % 40],
               synth_words[(size_t)(c * 7 + t * 3) % 40]);
      th->title = org_xstrdup(buf);
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
