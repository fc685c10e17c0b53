/* Rate limits: each API's sliding windows and lock, and the answer to a
 * throttled request (REFERENCE.md, PROTOCOL.md). */
#include "server_i.h"

#include <stdlib.h>

/* ---- the throttled answer ---- */

json_t *srv_throttle_body(struct emu_server *s, int api, int *status)
{
  if (api == CLIQ_API_OAUTH_TOKEN) {
    *status = 400;
    return json_pack("{s:s,s:s,s:s}", "error", "Access Denied",
                     "error_description", MSG_OAUTH_DENIED, "status",
                     "failure");
  }
  if (s->cfg.throttle_style == 400) {
    *status = 400;
    return json_pack("{s:s,s:s}", "code", "request_limit_exceeded", "message",
                     MSG_THROTTLE_400);
  }
  *status = 429;
  return json_pack("{s:s}", "message", MSG_429);
}

/* ---- rate windows ---- */

static void ring_prune(struct ring *r, int64_t oldest_kept)
{
  while (r->n && r->ts[r->head] < oldest_kept) {
    r->head = (r->head + 1) % r->cap;
    r->n--;
  }
}

static void ring_push(struct ring *r, int64_t t)
{
  if (r->n == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 64;
    int64_t *nts = malloc(ncap * sizeof *nts);
    if (!nts)
      abort();
    for (size_t i = 0; i < r->n; i++)
      nts[i] = r->ts[(r->head + i) % r->cap];
    free(r->ts);
    r->ts = nts;
    r->cap = ncap;
    r->head = 0;
  }
  r->ts[(r->head + r->n) % r->cap] = t;
  r->n++;
}

void srv_ring_pop_newest(struct ring *r)
{
  if (r->n)
    r->n--;
}

void srv_rate_prune(struct emu_server *s, int api, int64_t now)
{
  struct rate *r = &s->rates[api];
  int64_t window = srv_scaled_ms(s, cliq_api_info(api)->window_s);
  ring_prune(&r->seen, now - window + 1);
  ring_prune(&r->charged, now - window + 1);
}

/* Records a request to api; returns how many it has been charged in its
 * window, this one included. */
size_t srv_rate_note(struct emu_server *s, int api, int64_t now)
{
  struct rate *r = &s->rates[api];
  srv_rate_prune(s, api, now);
  ring_push(&r->seen, now);
  ring_push(&r->charged, now);
  if ((long)r->seen.n > r->max_in_window)
    r->max_in_window = (long)r->seen.n;
  return r->charged.n;
}

void srv_rate_lock(struct emu_server *s, int api, int64_t now, int64_t ms)
{
  s->rates[api].locked_until = now + ms;
}

void srv_rate_unlock(struct emu_server *s, int api)
{
  s->rates[api].locked_until = 0;
  s->rates[api].seen.n = s->rates[api].charged.n = 0;
}
