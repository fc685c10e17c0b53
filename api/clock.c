/* api/clock.c: the one clock (see clock.h): the system's CLOCK_REALTIME and
 * CLOCK_MONOTONIC unless a test installed a fake source. */
#include "api/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

static cliq_clock_source fake;
static bool faked;

void cliq_clock_install(const cliq_clock_source *src)
{
  if (src)
    fake = *src;
  faked = src != NULL;
}

static double seconds_of(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec timespec_of(double s)
{
  if (s < 0)
    s = 0;
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

double cliq_clock_real(void)
{
  return faked ? fake.real(fake.ctx) : seconds_of(CLOCK_REALTIME);
}

double cliq_clock_mono(void)
{
  return faked ? fake.mono(fake.ctx) : seconds_of(CLOCK_MONOTONIC);
}

void cliq_clock_sleep(double seconds)
{
  if (seconds <= 0)
    return;
  if (faked) {
    fake.sleep(fake.ctx, seconds);
    return;
  }
  struct timespec ts = timespec_of(seconds);
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

int cliq_clock_cond_init(pthread_cond_t *cond)
{
  pthread_condattr_t ca;
  int r = pthread_condattr_init(&ca);
  if (r)
    return r;
  r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (r == 0)
    r = pthread_cond_init(cond, &ca);
  pthread_condattr_destroy(&ca);
  return r;
}

int cliq_clock_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                          double mono_deadline)
{
  double left = mono_deadline - cliq_clock_mono();
  if (left <= 0)
    return ETIMEDOUT;
  if (faked && left > 0.01)
    left = 0.01;
  struct timespec ts = timespec_of(seconds_of(CLOCK_MONOTONIC) + left);
  int r = pthread_cond_timedwait(cond, mu, &ts);
  if (r == ETIMEDOUT && faked && cliq_clock_mono() < mono_deadline)
    return 0;        /* the real slice passed, not the fake deadline */
  return r == ETIMEDOUT ? ETIMEDOUT : 0;
}
