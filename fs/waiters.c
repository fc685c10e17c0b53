/* fs/waiters: a pool of threads for requests that wait (waiters.h). */
#include "fs/waiters.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "api/clock.h"

/* A thread with nothing to do for this long ends. */
#define WAITERS_IDLE_S 30

struct job {
  void (*fn)(void *arg);
  void *arg;
  struct job *next;
};

struct waiters {
  pthread_mutex_t lock;
  pthread_cond_t work;        /* a job was queued, or stopping */
  pthread_cond_t gone;        /* a thread ended */
  struct job *head, *tail;
  size_t queued;
  size_t threads, idle, running;
  size_t max_threads;
  bool stopping;
};

static void *waiter_main(void *arg)
{
  struct waiters *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->head && !w->stopping) {
      w->idle++;
      int r = cliq_clock_wait_until(&w->work, &w->lock,
                                    cliq_clock_mono() + WAITERS_IDLE_S);
      w->idle--;
      if (r == ETIMEDOUT && !w->head)
        goto out;
    }
    if (!w->head)
      break;                    /* stopping, nothing left */
    struct job *j = w->head;
    w->head = j->next;
    if (!w->head)
      w->tail = NULL;
    w->queued--;
    w->running++;
    pthread_mutex_unlock(&w->lock);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&w->lock);
    w->running--;
  }
out:
  w->threads--;
  pthread_cond_broadcast(&w->gone);
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

struct waiters *waiters_new(size_t max_threads)
{
  struct waiters *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  pthread_mutex_init(&w->lock, NULL);
  cliq_clock_cond_init(&w->work);
  pthread_cond_init(&w->gone, NULL);
  w->max_threads = max_threads ? max_threads : 1;
  return w;
}

int waiters_submit(struct waiters *w, void (*fn)(void *arg), void *arg)
{
  struct job *j = malloc(sizeof *j);
  if (!j)
    return -ENOMEM;
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  int r = 0;
  pthread_mutex_lock(&w->lock);
  if (w->stopping) {
    r = -ESHUTDOWN;
    goto out;
  }
  /* Every queued job has an idle thread, or one is started for it. */
  if (w->idle <= w->queued && w->threads < w->max_threads) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int cr = pthread_create(&t, &attr, waiter_main, w);
    pthread_attr_destroy(&attr);
    if (cr == 0)
      w->threads++;
    else if (w->threads == 0)
      r = -cr;                  /* nobody would ever run it */
  }
  if (r == 0) {
    if (w->tail)
      w->tail->next = j;
    else
      w->head = j;
    w->tail = j;
    w->queued++;
    pthread_cond_signal(&w->work);
  }
out:
  pthread_mutex_unlock(&w->lock);
  if (r < 0)
    free(j);
  return r;
}

size_t waiters_busy(struct waiters *w)
{
  if (!w)
    return 0;
  pthread_mutex_lock(&w->lock);
  size_t n = w->queued + w->running;
  pthread_mutex_unlock(&w->lock);
  return n;
}

void waiters_free(struct waiters *w)
{
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  w->stopping = true;
  pthread_cond_broadcast(&w->work);
  while (w->threads > 0)
    pthread_cond_wait(&w->gone, &w->lock);
  /* Jobs no thread could be started for run here. */
  while (w->head) {
    struct job *j = w->head;
    w->head = j->next;
    pthread_mutex_unlock(&w->lock);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&w->lock);
  }
  pthread_mutex_unlock(&w->lock);
  pthread_cond_destroy(&w->work);
  pthread_cond_destroy(&w->gone);
  pthread_mutex_destroy(&w->lock);
  free(w);
}
