/* tests/bench/stallprobe.c: tells when a CPU was taken from every process
 * that runs on it: by the host, or by the kernel (whose work on behalf of
 * the processes under test, such as their interrupts, counts too).
 *
 *   stallprobe [--keep-awake] OUT [THRESHOLD_US]
 *
 * One thread per online CPU, pinned to it, at SCHED_FIFO priority 99: every
 * millisecond it sleeps until the next tick and looks how late it woke.  No
 * ordinary process (the daemon, its syncer, the emulator, a shell) can delay
 * it, whatever its nice value, so a late wake-up is the CPU not running this
 * guest (the host ran something else) or the kernel not letting anything
 * run (interrupts, a long section with preemption off).  Each wake-up
 * later than THRESHOLD_US (default 2000) is one line of OUT, written when the
 * probe is stopped (SIGTERM or SIGINT):
 *
 *   CPU  START  END
 *
 * START and END in seconds of the real clock (CLOCK_REALTIME, as the shell's
 * $EPOCHREALTIME): from the tick it should have woken at to when it woke.
 * The benchmark marks a user's read that overlaps such a stall (sec_sync.sh).
 *
 * --keep-awake adds one thread per CPU, pinned to it, at SCHED_IDLE: it
 * spins, so that the CPU never halts, and runs only when nothing else
 * wants the CPU (any other thread preempts it at once).  On a virtual
 * machine a halted CPU is woken by the host, which may take milliseconds;
 * a run whose CPUs idle between short operations pays that at random,
 * and a run that keeps them busier (sync) pays it more often.  With the
 * CPUs kept awake such stalls all but vanish (sec_sync.sh: what was measured).
 * Needs CAP_SYS_NICE (root); exits 2 when it cannot take the priority. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 1000000L
#define MAX_STALLS 100000

struct stall {
  int cpu;
  double start, end;
};

static struct stall stalls[MAX_STALLS];
static size_t nstalls;
static pthread_mutex_t stalls_mu = PTHREAD_MUTEX_INITIALIZER;
static int stop;             /* read by the probes at every tick */
static long threshold_ns = 2000000L;

static int64_t ns_of(const struct timespec *t)
{
  return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

struct probe {
  int cpu;
  pthread_t thread;
};

static void *probe_main(void *arg)
{
  struct probe *p = arg;
  struct timespec next, now, real;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
    next.tv_nsec += TICK_NS;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
      ;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t late = ns_of(&now) - ns_of(&next);
    if (late > threshold_ns) {
      clock_gettime(CLOCK_REALTIME, &real);
      double end = (double)ns_of(&real) / 1e9;
      pthread_mutex_lock(&stalls_mu);
      if (nstalls < MAX_STALLS)
        stalls[nstalls++] = (struct stall){ p->cpu, end - (double)late / 1e9, end };
      pthread_mutex_unlock(&stalls_mu);
    }
    /* A long stall is one line, not one per tick missed. */
    if (late > TICK_NS)
      next = now;
  }
  return NULL;
}

/* Keeps its CPU from halting, at the lowest priority there is (taken by
 * the thread itself: pthread attributes know no SCHED_IDLE); *failed when
 * it could not take it. */
static void *awake_main(void *arg)
{
  int *failed = arg;
  struct sched_param sp = { .sched_priority = 0 };
  if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) {
    fprintf(stderr, "stallprobe: SCHED_IDLE: %s\n", strerror(errno));
    __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
    kill(getpid(), SIGTERM);  /* main stops the probe: the caller sees it gone */
    return NULL;
  }
  while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
    ;
  return NULL;
}

/* One thread pinned to cpu at policy (priority prio); 0 or an errno. */
static int start_pinned(pthread_t *t, int cpu, int policy, int prio,
                        void *(*fn)(void *), void *arg)
{
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  struct sched_param sp = { .sched_priority = prio };
  pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&attr, policy);
  pthread_attr_setschedparam(&attr, &sp);
  int e = pthread_create(t, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  return e;
}

int main(int argc, char **argv)
{
  bool keep_awake = argc > 1 && strcmp(argv[1], "--keep-awake") == 0;
  if (keep_awake) {
    argc--;
    argv++;
  }
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: stallprobe [--keep-awake] OUT [THRESHOLD_US]\n");
    return 2;
  }
  if (argc == 3)
    threshold_ns = strtol(argv[2], NULL, 10) * 1000L;
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    fprintf(stderr, "stallprobe: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  /* The probes never see the signal: main waits for it. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1)
    ncpu = 1;
  struct probe *probes = calloc((size_t)ncpu, sizeof *probes);
  pthread_t *awake = calloc((size_t)ncpu, sizeof *awake);
  if (!probes || !awake)
    return 2;
  int rc = 0;
  long started = 0, awake_started = 0;
  int awake_failed = 0;
  for (long i = 0; i < ncpu; i++) {
    probes[i].cpu = (int)i;
    int e = start_pinned(&probes[i].thread, (int)i, SCHED_FIFO, 99, probe_main,
                         &probes[i]);
    if (e) {
      fprintf(stderr, "stallprobe: a SCHED_FIFO thread on CPU %ld: %s\n", i, strerror(e));
      __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
      rc = 2;
      break;
    }
    started++;
  }
  for (long i = 0; keep_awake && rc == 0 && i < ncpu; i++) {
    int e = start_pinned(&awake[i], (int)i, SCHED_OTHER, 0, awake_main, &awake_failed);
    if (e) {
      fprintf(stderr, "stallprobe: a SCHED_IDLE thread on CPU %ld: %s\n", i, strerror(e));
      __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
      rc = 2;
      break;
    }
    awake_started++;
  }
  int sig;
  if (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
    sigwait(&sigs, &sig);
  if (__atomic_load_n(&awake_failed, __ATOMIC_RELAXED))
    rc = 2;
  __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
  for (long i = 0; i < started; i++)
    pthread_join(probes[i].thread, NULL);
  for (long i = 0; i < awake_started; i++)
    pthread_join(awake[i], NULL);
  for (size_t i = 0; i < nstalls; i++)
    fprintf(out, "%d %.6f %.6f\n", stalls[i].cpu, stalls[i].start, stalls[i].end);
  if (fclose(out) != 0)
    rc = 2;
  free(probes);
  free(awake);
  return rc;
}
