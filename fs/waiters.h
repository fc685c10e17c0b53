/* fs/waiters: the threads that answer requests which wait.
 *
 * A FUSE worker must stay free for the requests that can be answered now
 * (ls, stat, a cached cat, .cliqfs/status): a request that has to wait for a
 * rate budget, a lock, another thread's fetch or a delivery is handed here
 * and answered from one of these threads.  Threads are started as jobs come
 * (up to max_threads, then jobs queue) and end after a while idle.
 *
 * Ownership: waiters_submit() takes arg; the job's function owns it from
 * then on (it runs exactly once, also when waiters_stop() is waiting).
 * Thread-safe.
 */
#ifndef CLIQFS_WAITERS_H
#define CLIQFS_WAITERS_H

#include <stddef.h>

struct waiters;

/* NULL when out of memory. */
struct waiters *waiters_new(size_t max_threads);
/* 0, or -errno when the job could not be queued (the caller runs it). */
int waiters_submit(struct waiters *w, void (*fn)(void *arg), void *arg);
/* Jobs running or queued. */
size_t waiters_busy(struct waiters *w);
/* Runs what is queued, waits for every thread to end, frees w. */
void waiters_free(struct waiters *w);

#endif
