/* fs/inval.c: the kernel cache invalidations, sent from a thread of their
 * own (see inval.h). */
#define FUSE_USE_VERSION 312
#include "fs/inval.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct inval_item {
  uint64_t ino;
  struct inval_item *next;
};

struct inval_queue {
  struct fuse_session *se;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct inval_item *head, *tail;
  bool stopping;
  bool sending;             /* the sender holds one taken off the queue */
  uint64_t sent;
};

static void send_one(inval_queue *q, struct inval_item *it)
{
  /* -ENOENT (the kernel does not know the inode) is normal: nothing cached. */
  fuse_lowlevel_notify_inval_inode(q->se, it->ino, 0, 0);
}

static void *sender_main(void *arg)
{
  inval_queue *q = arg;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (!q->head && !q->stopping)
      pthread_cond_wait(&q->cond, &q->lock);
    if (!q->head)
      break;
    struct inval_item *it = q->head;
    q->head = it->next;
    if (!q->head)
      q->tail = NULL;
    q->sending = true;
    pthread_mutex_unlock(&q->lock);
    send_one(q, it);
    free(it);
    pthread_mutex_lock(&q->lock);
    q->sending = false;
    q->sent++;
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

inval_queue *inval_start(struct fuse_session *se)
{
  inval_queue *q = calloc(1, sizeof *q);
  if (!q)
    return NULL;
  q->se = se;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->cond, NULL);
  if (pthread_create(&q->thread, NULL, sender_main, q) != 0) {
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return NULL;
  }
  return q;
}

void inval_stop(inval_queue *q)
{
  if (!q)
    return;
  pthread_mutex_lock(&q->lock);
  q->stopping = true;
  pthread_cond_signal(&q->cond);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->thread, NULL);
  pthread_cond_destroy(&q->cond);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

void inval_inode(inval_queue *q, uint64_t ino)
{
  if (!q || ino == 0)
    return;
  pthread_mutex_lock(&q->lock);
  if (q->stopping)
    goto out;
  for (struct inval_item *it = q->head; it; it = it->next) {
    if (it->ino == ino)
      goto out;                       /* already pending */
  }
  struct inval_item *it = calloc(1, sizeof *it);
  if (!it)
    goto out;
  it->ino = ino;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  pthread_cond_signal(&q->cond);
out:
  pthread_mutex_unlock(&q->lock);
}

uint64_t inval_sent(inval_queue *q)
{
  if (!q)
    return 0;
  pthread_mutex_lock(&q->lock);
  uint64_t n = q->sent;
  pthread_mutex_unlock(&q->lock);
  return n;
}

size_t inval_pending(inval_queue *q)
{
  if (!q)
    return 0;
  pthread_mutex_lock(&q->lock);
  size_t n = q->sending ? 1 : 0;
  for (struct inval_item *it = q->head; it; it = it->next)
    n++;
  pthread_mutex_unlock(&q->lock);
  return n;
}
