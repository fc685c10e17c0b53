/* cache/patience: how long the calling thread may wait for Cliq.
 *
 * A thread that answers a file system request must not hold its worker while
 * a rate budget, a lock or another thread's fetch keeps it waiting: it first
 * runs with no patience (PATIENCE_NONE).  Whatever would wait then fails at
 * once with -EAGAIN and leaves a mark (patience_refused()), and the caller
 * hands the request to a thread that may wait.  That thread runs with
 * PATIENCE_WAIT and a cancel test (the FUSE request was interrupted): waits
 * re-check it at least every PATIENCE_RECHECK_US and end with -EINTR.
 *
 * The state is per thread; a thread that never sets it may wait (the default,
 * as for delivery and the refresher).
 */
#ifndef CLIQ_CACHE_PATIENCE_H
#define CLIQ_CACHE_PATIENCE_H

#include <stdbool.h>

enum patience {
  PATIENCE_WAIT = 0,      /* may wait as its priority allows */
  PATIENCE_NONE = 1,      /* never waits: -EAGAIN and a mark instead */
};

/* How often a wait looks at its cancel test. */
#define PATIENCE_RECHECK_US 100000LL

/* Sets the calling thread's patience and clears its mark.  cancelled (may be
 * NULL) is called with ctx, borrowed until the next patience_set(). */
void patience_set(enum patience p, bool (*cancelled)(void *ctx), void *ctx);
/* Back to the default (PATIENCE_WAIT, no cancel test). */
void patience_reset(void);
/* Where the thread's waits say what they wait for (NULL: nowhere): a wait
 * for a rate slot stores its API's name there (a static string) while it
 * waits, NULL when it ends.  Kept until patience_set()/patience_reset(). */
void patience_report_to(const char *volatile *slot);
/* Called by a wait: what it waits for now (NULL: nothing). */
void patience_waiting_for(const char *what);

/* Changes only the level (the mark and the cancel test stay); returns the
 * level before, for the caller to put back. */
enum patience patience_swap(enum patience p);
bool patience_none(void);
/* Records that a wait was refused for want of patience. */
void patience_note_refused(void);
/* Whether a wait was refused since patience_set(). */
bool patience_refused(void);
/* Whether the thread has a cancel test (its waits then re-check it). */
bool patience_cancellable(void);
/* Whether the current wait should end with -EINTR. */
bool patience_cancelled(void);

#endif
