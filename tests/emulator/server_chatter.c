/* Chatter: a thread that posts as other people now and then (--chatter,
 * scaled by the time scale). */
#include "server_i.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

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
  srv_logf(s, "chatter: %s posted in %s", org->users[sender].name, chat->chat_id);
}

void *srv_chatter_main(void *arg)
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
void srv_chatter_reconfigure(struct emu_server *s)
{
  pthread_cond_broadcast(&s->cv);
}
