/* tests/api/counting_gate.c: see counting_gate.h. */
#include "counting_gate.h"

#include <stdio.h>
#include <string.h>

static int gate_acquire(void *ctx, enum cliq_api api, enum cliq_priority prio)
{
  struct counting_gate *g = ctx;
  pthread_mutex_lock(&g->lock);
  int r = g->refuse;
  if (r == 0) {
    g->acquired[api]++;
    g->in_flight[api]++;
    g->last_prio[api] = prio;
  }
  pthread_mutex_unlock(&g->lock);
  return r;
}

static void gate_record(void *ctx, enum cliq_api api, long http_status,
                        const char *cliq_code)
{
  struct counting_gate *g = ctx;
  pthread_mutex_lock(&g->lock);
  if (g->in_flight[api] > 0)
    g->in_flight[api]--;
  else
    g->unmatched_records++;
  g->recorded[api]++;
  g->last_status[api] = http_status;
  snprintf(g->last_code[api], sizeof g->last_code[api], "%s",
           cliq_code ? cliq_code : "");
  pthread_mutex_unlock(&g->lock);
}

void counting_gate_init(struct counting_gate *g)
{
  memset(g, 0, sizeof *g);
  pthread_mutex_init(&g->lock, NULL);
}

void counting_gate_destroy(struct counting_gate *g)
{
  pthread_mutex_destroy(&g->lock);
}

cliq_gate counting_gate_hook(struct counting_gate *g)
{
  return (cliq_gate){.acquire = gate_acquire, .record = gate_record, .ctx = g};
}

int counting_gate_total(struct counting_gate *g)
{
  int n = 0;
  pthread_mutex_lock(&g->lock);
  for (int i = 0; i < CLIQ_API_COUNT; i++)
    n += g->acquired[i];
  pthread_mutex_unlock(&g->lock);
  return n;
}

int counting_gate_in_flight(struct counting_gate *g)
{
  int n = 0;
  pthread_mutex_lock(&g->lock);
  for (int i = 0; i < CLIQ_API_COUNT; i++)
    n += g->in_flight[i];
  pthread_mutex_unlock(&g->lock);
  return n;
}
