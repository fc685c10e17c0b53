/* tests/api/counting_gate.h: a cliq_gate that counts what passes through it
 * and checks that every record() follows an acquire() of the same API.
 * Thread-safe.  The struct is owned by the test (static or stack). */
#ifndef CLIQ_TESTS_COUNTING_GATE_H
#define CLIQ_TESTS_COUNTING_GATE_H

#include <pthread.h>

#include "api/cliq.h"

struct counting_gate {
  pthread_mutex_t lock;
  int refuse;                       /* acquire() returns this when != 0 */
  int acquired[CLIQ_API_COUNT];
  int recorded[CLIQ_API_COUNT];
  int in_flight[CLIQ_API_COUNT];    /* acquired, not yet recorded */
  int unmatched_records;            /* record() without an acquire() */
  long last_status[CLIQ_API_COUNT];
  char last_code[CLIQ_API_COUNT][64];
  enum cliq_priority last_prio[CLIQ_API_COUNT];
};

void counting_gate_init(struct counting_gate *g);
void counting_gate_destroy(struct counting_gate *g);
cliq_gate counting_gate_hook(struct counting_gate *g);
/* Sum of acquired[] / in_flight[] over all APIs. */
int counting_gate_total(struct counting_gate *g);
int counting_gate_in_flight(struct counting_gate *g);

#endif
