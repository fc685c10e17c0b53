/* api/clock.h: the program's one clock: wall and monotonic time, sleeping,
 * and timed waits on condition variables, all from one source that a test
 * may replace with a fake one. */
#ifndef CLIQ_CLOCK_H
#define CLIQ_CLOCK_H

#include <pthread.h>

typedef struct cliq_clock_source {
  double (*real)(void *ctx);              /* epoch seconds */
  double (*mono)(void *ctx);              /* seconds from a fixed point */
  void (*sleep)(void *ctx, double seconds);
  void *ctx;                              /* borrowed, passed back */
} cliq_clock_source;

/* Installs src (copied; NULL: the system's clocks again).  Tests only, and
 * before any thread reads the clock. */
void cliq_clock_install(const cliq_clock_source *src);

double cliq_clock_real(void);
double cliq_clock_mono(void);
/* Sleeps that long (a signal does not cut it short); <= 0: returns. */
void cliq_clock_sleep(double seconds);

/* Initialises a condition variable for cliq_clock_wait_until: 0 or an
 * errno. */
int cliq_clock_cond_init(pthread_cond_t *cond);
/* Waits on cond (mu held) until signalled or the monotonic time passes
 * mono_deadline: 0 or ETIMEDOUT (spurious wake-ups happen: callers loop).
 * Under a fake source it waits at most 10 ms of real time per call, so that
 * a loop re-checks the fake time. */
int cliq_clock_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                          double mono_deadline);

#endif
