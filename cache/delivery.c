/* cache/delivery.c: the delivery workers: which entry each takes next (order
 * per target, one worker per API class), their life cycle and statistics. */
#include "cache/delivery_i.h"

/* ---- scheduling ------------------------------------------------------------- */

struct tstate *tstate_get_locked(delivery *d, const char *target)
{
  for (size_t i = 0; i < d->nts; i++)
    if (strcmp(d->ts[i]->target, target) == 0)
      return d->ts[i];
  if (d->nts == d->capts) {
    size_t cap = d->capts ? d->capts * 2 : 16;
    struct tstate **p = realloc(d->ts, cap * sizeof(*p));
    if (!p)
      return NULL;
    d->ts = p;
    d->capts = cap;
  }
  struct tstate *t = calloc(1, sizeof(*t));
  if (!t || !(t->target = strdup(target))) {
    free(t);
    return NULL;
  }
  d->ts[d->nts++] = t;
  return t;
}

/* Forgets targets that are idle and gone from the journal. */
static void tstate_prune_locked(delivery *d, char **targets)
{
  for (size_t i = 0; i < d->nts;) {
    struct tstate *t = d->ts[i];
    bool listed = false;
    for (size_t k = 0; targets[k] && !listed; k++)
      listed = strcmp(targets[k], t->target) == 0;
    if (t->busy || listed) {
      i++;
      continue;
    }
    free(t->target);
    free(t);
    d->ts[i] = d->ts[--d->nts];
  }
}

static void free_targets(char **targets)
{
  for (size_t i = 0; targets && targets[i]; i++)
    free(targets[i]);
  free(targets);
}

/* Moves the entries of drafts whose thread exists to the thread; true when
 * something moved (the caller scans again). */
static bool retarget_drafts_locked(delivery *d, char **targets)
{
  bool moved = false;
  for (size_t i = 0; targets[i]; i++) {
    if (!is_draft(targets[i]))
      continue;
    struct record *r = record_find_locked(d, targets[i]);
    struct tstate *t = tstate_get_locked(d, targets[i]);
    if (!r || !r->thread || !t || t->busy)
      continue;
    if (outbox_retarget(d->ob, targets[i], r->thread) == 0)
      moved = true;
  }
  return moved;
}

/* Picks the next job: 1 with *job filled, 0 with *wait_s set. */
static int pick_locked(delivery *d, struct job *job, double *wait_s)
{
  *wait_s = d->poll;
  for (int round = 0; round < 3; round++) {
    char **targets = NULL;
    if (outbox_targets(d->ob, &targets, NULL) < 0)
      return 0;
    if (retarget_drafts_locked(d, targets)) {
      free_targets(targets);
      continue;
    }
    tstate_prune_locked(d, targets);
    double now = cliq_clock_mono();
    int got = 0;
    for (size_t i = 0; targets[i] && !got; i++) {
      struct tstate *t = tstate_get_locked(d, targets[i]);
      if (!t || t->busy)
        continue;
      if (t->not_before > now) {
        if (t->not_before - now < *wait_s)
          *wait_s = t->not_before - now;
        continue;
      }
      outbox_entry e;
      if (outbox_peek_next(d->ob, targets[i], &e) < 0)
        continue;
      enum cliq_api api = delivery_entry_api(&e);
      if (d->api_busy[api]) {
        outbox_entry_clear(&e);
        continue;
      }
      char *name = strdup(targets[i]);
      if (!name) {
        outbox_entry_clear(&e);
        continue;
      }
      t->busy = true;
      d->api_busy[api] = true;
      job->e = e;
      job->target = name;
      job->api = api;
      got = 1;
    }
    free_targets(targets);
    return got;
  }
  return 0;
}

static double backoff_s(delivery *d, int failures)
{
  double base = d->backoff_min * pow(2.0, failures > 30 ? 30 : failures - 1);
  if (base > d->backoff_max)
    base = d->backoff_max;
  /* Half fixed, half random: workers and processes that failed together do
   * not come back together. */
  double r = (double)rand_r(&d->rng) / RAND_MAX;
  return (base / 2.0 + r * base / 2.0) / d->scale;
}

static void release_locked(delivery *d, struct job *job, enum outcome o)
{
  struct tstate *t = tstate_get_locked(d, job->target);
  d->api_busy[job->api] = false;
  if (t) {
    t->busy = false;
    if (o == O_RETRY) {
      t->failures++;
      t->not_before = cliq_clock_mono() + backoff_s(d, t->failures);
    } else if (o == O_LATER) {
      t->not_before = cliq_clock_mono() + job->later_s;
    } else {
      t->failures = 0;
      t->not_before = 0;
    }
  }
  outbox_entry_clear(&job->e);
  free(job->target);
  job->target = NULL;
}

static void timed_wait_locked(delivery *d, double seconds)
{
  if (seconds < 0.001)
    seconds = 0.001;
  cliq_clock_wait_until(&d->cond, &d->mu, cliq_clock_mono() + seconds);
}

static void *worker_main(void *arg)
{
  delivery *d = arg;
  pthread_mutex_lock(&d->mu);
  while (!d->stopping) {
    struct job job = {0};
    double wait_s;
    if (!pick_locked(d, &job, &wait_s)) {
      timed_wait_locked(d, wait_s);
      continue;
    }
    pthread_mutex_unlock(&d->mu);
    enum outcome o = process(d, &job.e, &job.later_s);
    pthread_mutex_lock(&d->mu);
    release_locked(d, &job, o);
    /* A target or an API class came free. */
    pthread_cond_broadcast(&d->cond);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

/* ---- life cycle --------------------------------------------------------------- */

delivery *delivery_new(outbox *ob, cliq_client *client,
                       const delivery_hooks *hooks,
                       const delivery_options *opts)
{
  if (!ob || !client)
    return NULL;
  delivery *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  d->ob = ob;
  d->client = client;
  if (hooks)
    d->hooks = *hooks;
  delivery_options o = {0};
  if (opts)
    o = *opts;
  d->scale = o.time_scale > 0 ? o.time_scale : 1.0;
  d->backoff_min = o.backoff_min_s > 0 ? o.backoff_min_s : 2.0;
  d->backoff_max = o.backoff_max_s > 0 ? o.backoff_max_s : 300.0;
  if (d->backoff_max < d->backoff_min)
    d->backoff_max = d->backoff_min;
  d->nworkers = o.workers > 0 ? o.workers : 4;
  d->poll = o.poll_s > 0 ? o.poll_s : 1.0;
  d->settle = o.settle_s > 0 ? o.settle_s : 30.0;
  d->rng = (unsigned)time(NULL) ^ (unsigned)getpid() ^
           (unsigned)(uintptr_t)d;
  pthread_mutex_init(&d->mu, NULL);
  pthread_mutex_init(&d->persist_mu, NULL);
  cliq_clock_cond_init(&d->cond);
  if (asprintf(&d->record_path, "%s/%s", outbox_dir(ob), RECORD_FILE) < 0) {
    d->record_path = NULL;
    delivery_free(d);
    return NULL;
  }
  record_load(d);
  return d;
}

int delivery_start(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  if (d->started) {
    pthread_mutex_unlock(&d->mu);
    return -EALREADY;
  }
  d->started = true;
  d->stopping = false;
  pthread_mutex_unlock(&d->mu);
  d->threads = calloc((size_t)d->nworkers, sizeof(*d->threads));
  if (!d->threads)
    return -ENOMEM;
  for (int i = 0; i < d->nworkers; i++) {
    int r = pthread_create(&d->threads[i], NULL, worker_main, d);
    if (r != 0) {
      if (d->nthreads > 0)
        return 0; /* fewer workers still deliver everything */
      return -r;
    }
    d->nthreads++;
  }
  return 0;
}

void delivery_stop(delivery *d)
{
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->stopping = true;
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->mu);
  for (int i = 0; i < d->nthreads; i++)
    pthread_join(d->threads[i], NULL);
  d->nthreads = 0;
  free(d->threads);
  d->threads = NULL;
}

void delivery_kick(delivery *d)
{
  pthread_mutex_lock(&d->mu);
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->mu);
}

void delivery_free(delivery *d)
{
  if (!d)
    return;
  delivery_stop(d);
  for (size_t i = 0; i < d->nts; i++) {
    free(d->ts[i]->target);
    free(d->ts[i]);
  }
  free(d->ts);
  for (size_t i = 0; i < d->nrecs; i++)
    record_clear(&d->recs[i]);
  free(d->recs);
  free(d->self_id);
  free(d->probe_chat);
  free(d->probe_msg);
  free(d->record_path);
  pthread_cond_destroy(&d->cond);
  pthread_mutex_destroy(&d->persist_mu);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

void delivery_get_stats(delivery *d, delivery_stats *out)
{
  pthread_mutex_lock(&d->mu);
  *out = d->stats;
  pthread_mutex_unlock(&d->mu);
}
