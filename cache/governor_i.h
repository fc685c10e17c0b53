/* cache/governor_i.h: what the governor's files share (private).  The
 * governor's state, one mutex (gov.mu) over all of it, and the ledger: the
 * stamps of the requests in each API's window, in memory and in the file
 * that the processes of one account share (gov_ledger.c).  Every function
 * here is called with gov.mu held. */
#ifndef CLIQ_CACHE_GOVERNOR_I_H
#define CLIQ_CACHE_GOVERNOR_I_H

#include "cache/governor.h"
#include "api/clock.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Waiters re-read the shared ledger at least this often: another process may
 * have taken the slot they were waiting for, or locked the API. */
#define GOV_RECHECK_US 1000000LL
/* Requests of this governor sent and not answered yet, per API, kept at
 * most (a caller that acquires without ever recording would grow it). */
#define GOV_INFLIGHT_MAX 4096

struct api_state {
  int limit;
  int64_t window_us;      /* scaled */
  int64_t lock_us;        /* scaled */
  int64_t *stamps;        /* sorted ascending */
  size_t n, cap;
  int64_t locked_until;   /* epoch microseconds; 0 = not locked */
  int waiting[CLIQ_PRIO_COUNT]; /* threads of this governor waiting, per lane */
  /* Stamps of this governor's requests that have no answer yet, oldest
   * first (see gov_record). */
  int64_t *inflight;
  size_t ninflight, capinflight;
  /* When this governor's lanes above background took their slots, over the
   * last two windows, oldest first: the demand background leaves room for
   * (governor.c, background_room). */
  int64_t *user;
  size_t nuser, capuser;
};

struct gov {
  pthread_mutex_t mu;
  pthread_cond_t cond;    /* CLOCK_MONOTONIC */
  struct api_state apis[CLIQ_API_COUNT];
  double scale;
  int margin;
  double max_wait_s;
  bool keep_unanswered;
  char *ledger_path;      /* NULL: memory only */
  int lock_fd;            /* ledger.lock, -1 when memory only */
  bool save_failed;       /* the file is behind what we know */
  bool shutdown;
  int64_t loaded_us;      /* when the ledger was last read from disk */
  /* What the ledger was when memory last matched it (read or written by
   * us): ledger.lock's write count and the file's identity.  While both
   * are unchanged, memory is what the file holds and reading it again is
   * skipped. */
  bool seen;
  uint64_t seen_writes;
  uint64_t ledger_parses; /* times the file was read and parsed (tests) */
  struct ledger_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
  } seen_file;
};

/* gov_pressure() is asked on every cached read and gov_background_view()
 * before every request sync considers; they are hints, so they may use a
 * ledger up to this old instead of reading the file each time. */
#define PRESSURE_RELOAD_US 250000

static inline int64_t gov_now_real_us(void)
{
  return (int64_t)llround(cliq_clock_real() * 1e6);
}

/* ---- the window's stamps (gov_ledger.c) ---------------------------------- */

/* Room for want stamps; 0 or -ENOMEM. */
int stamps_reserve(struct api_state *s, size_t want);
/* Drops the stamps that have left the window ending at now: a stamp counts
 * while stamp > now - window. */
void stamps_prune(struct api_state *s, int64_t now);
/* Adds a stamp in order; 0 or -ENOMEM. */
int stamps_insert(struct api_state *s, int64_t stamp);
/* Removes one stamp equal to `stamp`; false when there is none. */
bool stamps_remove(struct api_state *s, int64_t stamp);
/* Notes a request of this governor sent and not answered yet. */
void inflight_push(struct api_state *s, int64_t stamp);
/* A request of ours still unanswered half a window after its stamp is
 * re-stamped now (see gov_options.keep_unanswered); true when one was. */
bool inflight_keep(struct api_state *s, int64_t now);

/* ---- the ledger file (gov_ledger.c) -------------------------------------- */

/* flock(LOCK_EX) on ledger.lock, for a read-modify-write (no-op when memory
 * only); ledger_unlock() lets go. */
void ledger_lock(gov *g);
void ledger_unlock(gov *g);
/* Replaces what the governor knows by the file's content (ledger lock held). */
void ledger_load(gov *g);
/* ledger_load() under a shared lock, for a reader that changes nothing,
 * unless the ledger was read within PRESSURE_RELOAD_US. */
void ledger_load_recent(gov *g, int64_t now);
/* ledger_load() under a shared lock, whatever its age. */
void ledger_load_shared(gov *g);
/* Writes what the governor knows (ledger lock held); durable: across a
 * crash of the machine too.  0 or -errno (memory stays the truth). */
int ledger_save(gov *g, bool durable);

#endif
