/* cache/governor: the rate governor.  Per-API sliding-window budgets (limits
 * from api/endpoints.h, overridable), priority lanes, locks after throttling,
 * persisted under the state dir and shared between processes of one account
 * through file locks.  Times are wall-clock (CLOCK_REALTIME) so that they mean
 * the same thing after a restart and in another process.
 *
 * Ownership: gov_new() copies the strings it is given; gov_free() frees all.
 * Thread-safe.
 */
#ifndef CLIQ_CACHE_GOVERNOR_H
#define CLIQ_CACHE_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

#include "api/cliq.h"

typedef struct gov gov;

typedef struct gov_options {
  const char *state_dir;   /* folder for the ledger (created 0700); NULL = memory only */
  double time_scale;       /* divides windows and lock periods; <= 0 means 1 */
  int margin;              /* requests kept back from each budget (none when < 0) */
  double max_wait_s;       /* how long a CLIQ_PRIO_READ may wait for a slot (cliqfs(1) OPTIONS, max_wait) */
  /* A request not answered yet keeps counting however long it takes (its
   * stamp moves to the present at the next acquire once it is half a
   * window old), because the server may still receive it.  For callers
   * that gov_record() every request (the client does); without it an
   * unanswered request counts one window from its stamp. */
  bool keep_unanswered;
} gov_options;

gov *gov_new(const gov_options *opts, cliq_error *err);
void gov_free(gov *g);

/* Overrides an API's budget (config `limit.<api> = N/SECONDS`). 0 or -EINVAL. */
int gov_set_limit(gov *g, enum cliq_api api, int limit, double window_s);
/* Parses "N/SECONDS" for `limit.<name>`; 0 or -EINVAL with a message. */
int gov_set_limit_str(gov *g, const char *api_name, const char *value,
                      cliq_error *err);

/* Takes a slot for one request, waiting as the priority allows:
 *  WRITE: waits for the next slot however long (until gov_shutdown()),
 *  READ: waits at most max_wait_s, then -EAGAIN; -EAGAIN at once when locked,
 *  BACKGROUND: never waits; -EAGAIN when the budget is low (keeps a reserve
 *  for the lanes above) or the API is locked.
 * Returns 0 when the slot is taken (and recorded in the shared ledger).
 * Details: the budget is limit - margin (never below 1) requests in any
 * sliding window.  A request counts from its stamp (when its slot was taken)
 * until one window after its answer (gov_record() moves the stamp), since the
 * server saw it somewhere in between: network delays then cannot put two
 * requests that we spaced one window apart into one window at the server
 * (with keep_unanswered, not even then).  Within one governor a lane never
 * overtakes a waiting thread of a lane above it.  A READ fails as soon as
 * the next slot is known to come after max_wait_s.  BACKGROUND takes a slot
 * only while more than
 * max(2, budget/4 rounded up) slots would remain.  The ledger
 * (state_dir/ledger, JSON, only stamps within the window) is read and
 * rewritten under flock(state_dir/ledger.lock) on every acquire; waiters
 * re-read it at least once a second.  Processes sharing a state_dir should
 * use the same limits: each keeps only the stamps within its own window. */
int gov_acquire(gov *g, enum cliq_api api, enum cliq_priority prio);
/* The same; on success *stamp_out (may be NULL) gets the time recorded in the
 * ledger for this request (epoch seconds, a whole number of microseconds)
 * until gov_record() moves it, so that logs and tests can check the sliding
 * window exactly. */
int gov_acquire_stamped(gov *g, enum cliq_api api, enum cliq_priority prio,
                        double *stamp_out);
/* What the server said, once per request sent after gov_acquire() (whatever
 * the outcome, status 0 when there was no answer): the request's stamp moves
 * to now, and a throttle answer (cliq_is_throttle) locks the API for its lock
 * period (scaled). */
void gov_record(gov *g, enum cliq_api api, long http_status,
                const char *cliq_code);
/* Wakes every waiter with -EAGAIN; later acquires fail at once. */
void gov_shutdown(gov *g);

/* A cliq_gate that calls gov_acquire/gov_record; valid while g lives. */
cliq_gate gov_gate(gov *g);

typedef struct gov_api_status {
  int limit;
  double window_s;          /* scaled */
  int used;                 /* requests in the current window (all processes) */
  double locked_until;      /* epoch seconds; 0 when not locked */
  int waiting;              /* threads of this governor waiting for a slot */
} gov_api_status;

void gov_status(gov *g, enum cliq_api api, gov_api_status *out);
/* Why a request of api cannot go now, for a person: Cliq's lock and its end
 * (ISO time, seconds left), or our own budget and its use.  Into buf. */
void gov_explain(gov *g, enum cliq_api api, char *buf, size_t len);
/* 0..1: how much of the budget is used; the cache stretches freshness with it. */
double gov_pressure(gov *g, enum cliq_api api);

/* What a background task needs to pace itself on api, from a ledger at
 * most a quarter of a second old. */
typedef struct gov_background {
  int spare;                /* slots a BACKGROUND acquire could take now (0
                               when locked or a thread of this governor
                               waits in a lane above) */
  int budget;               /* requests allowed per window */
  int used;                 /* requests in the current window (all processes) */
  double window_s;          /* scaled */
  double locked_until;      /* epoch seconds; 0 when not locked */
} gov_background;
void gov_background_view(gov *g, enum cliq_api api, gov_background *out);
/* How many requests of a lane api lets through in one window (the budget
 * less what the lane leaves to those above it), and the window (scaled
 * seconds) in *window_s: for pacing and estimates. */
int gov_lane_per_window(gov *g, enum cliq_api api, enum cliq_priority prio,
                        double *window_s);
/* Slots of api the calling thread has taken so far (any governor): a task
 * that must keep to a share of a budget (sync) counts what its calls sent,
 * however many requests (pages, retries) one call made. */
uint64_t gov_thread_taken(enum cliq_api api);

#endif
