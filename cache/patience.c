/* cache/patience: per-thread waiting policy (patience.h). */
#include "cache/patience.h"

#include <stddef.h>

static __thread enum patience cur_patience;
static __thread bool cur_refused;
static __thread bool (*cur_cancelled)(void *ctx);
static __thread void *cur_ctx;
static __thread const char *volatile *cur_report;

void patience_set(enum patience p, bool (*cancelled)(void *ctx), void *ctx)
{
  cur_patience = p;
  cur_refused = false;
  cur_cancelled = cancelled;
  cur_ctx = ctx;
  cur_report = NULL;
}

void patience_report_to(const char *volatile *slot)
{
  cur_report = slot;
}

void patience_waiting_for(const char *what)
{
  if (cur_report)
    __atomic_store_n(cur_report, what, __ATOMIC_RELEASE);
}

void patience_reset(void)
{
  patience_set(PATIENCE_WAIT, NULL, NULL);
}

enum patience patience_swap(enum patience p)
{
  enum patience old = cur_patience;
  cur_patience = p;
  return old;
}

bool patience_none(void)
{
  return cur_patience == PATIENCE_NONE;
}

void patience_note_refused(void)
{
  cur_refused = true;
}

bool patience_refused(void)
{
  return cur_refused;
}

bool patience_cancellable(void)
{
  return cur_cancelled != NULL;
}

bool patience_cancelled(void)
{
  return cur_cancelled && cur_cancelled(cur_ctx);
}
