/* cache/tcache_fetch.c: the TTL cache's single-flight fetch (tcache_fetch,
 * tcache_fetch_younger): one fetch per key at a time, the others wait for
 * its outcome; a stale value stands in when the fetch fails. */
#include "cache/tcache_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/clock.h"
#include "cache/patience.h"

static struct flight *flight_find(tcache *c, const char *key)
{
  for (struct flight *f = c->flights; f; f = f->next)
    if (strcmp(f->key, key) == 0)
      return f;
  return NULL;
}

static void flight_free(struct flight *f)
{
  json_decref(f->value);
  free(f->key);
  free(f);
}

static int finish(int rc, json_t *value, const cliq_error *from,
                  json_t **value_out, cliq_error *err)
{
  if (value_out)
    *value_out = json_incref(value);
  if (err) {
    if (from)
      *err = *from;
    else
      memset(err, 0, sizeof(*err));
  }
  return rc;
}

int tcache_fetch(tcache *c, const char *key, double ttl_s,
                 tcache_fetch_fn fetch, void *ctx, json_t **value_out,
                 cliq_error *err)
{
  return tcache_fetch_younger(c, key, -1, ttl_s, fetch, ctx, value_out, err);
}

int tcache_fetch_younger(tcache *c, const char *key, double max_age_s,
                         double ttl_s, tcache_fetch_fn fetch, void *ctx,
                         json_t **value_out, cliq_error *err)
{
  if (value_out)
    *value_out = NULL;
  if (!c || !key || !fetch) {
    cliq_fail(err, EINVAL, "tcache_fetch: bad arguments");
    return -EINVAL;
  }
  pthread_mutex_lock(&c->mu);
  struct entry *e = tc_find(c, key);
  double now = cliq_clock_real();
  tcache_state st = tc_state_of(c, e, now);
  /* 0 is "fetch whatever is there": also a record that another process
   * sharing the folder wrote after `now` was read (its age is negative). */
  if (st == TCACHE_FRESH && max_age_s >= 0 &&
      (max_age_s == 0 || now - e->fetched_at >= max_age_s / c->scale))
    st = TCACHE_STALE;
  if (st == TCACHE_FRESH || st == TCACHE_NEGATIVE) {
    c->hits++;
    if (!e->detached)
      tc_touch(c, e);
    int rc = 0;
    json_t *value = e->value;
    if (st == TCACHE_NEGATIVE) {
      rc = -ENOENT;
      cliq_fail(err, ENOENT, "%s: does not exist (cached)", key);
    } else {
      finish(0, value, NULL, value_out, err);
    }
    tc_release(e);
    pthread_mutex_unlock(&c->mu);
    return rc;
  }
  c->misses++;
  /* What we can serve if the fetch fails. */
  json_t *stale = st == TCACHE_STALE ? json_incref(e->value) : NULL;
  tc_release(e);

  struct flight *f = flight_find(c, key);
  if (f) {
    /* Another thread is fetching: a thread without patience does not wait
     * for it (the copy it has, or a refusal); an interrupted one stops. */
    if (patience_none() || patience_cancelled()) {
      int rc;
      if (stale) {
        rc = finish(0, stale, NULL, value_out, err);
      } else if (patience_none()) {
        patience_note_refused();
        rc = -EAGAIN;
        cliq_fail(err, EAGAIN, "%s: being fetched by another request", key);
      } else {
        rc = -EINTR;
        cliq_fail(err, EINTR, "%s: interrupted", key);
      }
      pthread_mutex_unlock(&c->mu);
      json_decref(stale);
      return rc;
    }
    f->followers++;
    while (!f->done) {
      if (!patience_cancellable()) {
        pthread_cond_wait(&c->flight_done, &c->mu);
        continue;
      }
      if (patience_cancelled())
        break;
      cliq_clock_wait_until(&c->flight_done, &c->mu,
                            cliq_clock_mono() + PATIENCE_RECHECK_US / 1e6);
    }
    if (!f->done) {
      f->followers--;
      pthread_mutex_unlock(&c->mu);
      if (stale) {
        int rc = finish(0, stale, NULL, value_out, err);
        json_decref(stale);
        return rc;
      }
      cliq_fail(err, EINTR, "%s: interrupted", key);
      return -EINTR;
    }
    /* The fetch this thread waited for was given up by its own caller (an
     * interrupted request): this one has not been, and asks itself. */
    bool again = f->rc == -EINTR && !patience_cancelled();
    int rc = again ? 0 : finish(f->rc, f->value, &f->err, value_out, err);
    if (--f->followers == 0)
      flight_free(f);
    pthread_mutex_unlock(&c->mu);
    json_decref(stale);
    if (again)
      return tcache_fetch_younger(c, key, max_age_s, ttl_s, fetch, ctx,
                                  value_out, err);
    return rc;
  }

  f = calloc(1, sizeof(*f));
  if (f)
    f->key = strdup(key);
  if (!f || !f->key) {
    free(f);
    pthread_mutex_unlock(&c->mu);
    cliq_fail(err, ENOMEM, "out of memory");
    if (stale) {
      if (value_out)
        *value_out = stale;
      else
        json_decref(stale);
      return 0;
    }
    return -ENOMEM;
  }
  f->next = c->flights;
  c->flights = f;
  pthread_mutex_unlock(&c->mu);

  json_t *fetched = NULL;
  cliq_error ferr;
  memset(&ferr, 0, sizeof(ferr));
  int rc = fetch(ctx, key, &fetched, &ferr);
  if (rc == 0 && !fetched) {
    rc = -EIO;
    cliq_fail(&ferr, EIO, "%s: fetch returned no value", key);
  }
  if (rc < 0 && ferr.err == 0)
    cliq_fail(&ferr, -rc, "%s: %s", key, strerror(-rc));
  if (rc > 0)
    rc = -rc;

  double fetched_at = cliq_clock_real();
  size_t len = 0;
  char *text = NULL;
  if (rc == 0 || rc == -ENOENT)
    text = tc_make_record(key, rc == 0 ? fetched : NULL, fetched_at, ttl_s, &len);

  pthread_mutex_lock(&c->mu);
  if (rc == 0) {
    if (text)
      tc_store_locked(c, key, fetched, fetched_at, ttl_s, text, len);
    f->rc = 0;
    f->value = fetched;
    fetched = NULL;
  } else if (rc == -ENOENT) {
    /* It is gone: a negative entry replaces any stale value. */
    if (text)
      tc_store_locked(c, key, NULL, fetched_at, ttl_s, text, len);
    else
      tc_remove_mem_key(c, key);
    f->rc = rc;
    f->err = ferr;
  } else if (stale) {
    f->rc = 0;
    f->value = json_incref(stale);
    f->err = ferr;
  } else {
    f->rc = rc;
    f->err = ferr;
  }
  f->done = true;
  struct flight **pp = &c->flights;
  while (*pp != f)
    pp = &(*pp)->next;
  *pp = f->next;
  pthread_cond_broadcast(&c->flight_done);
  rc = finish(f->rc, f->value, &f->err, value_out, err);
  if (f->followers == 0)
    flight_free(f);
  pthread_mutex_unlock(&c->mu);
  tc_disk_backpressure(c); /* text went to the writer's queue */
  json_decref(fetched);
  json_decref(stale);
  return rc;
}
