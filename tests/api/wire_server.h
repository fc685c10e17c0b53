/* tests/api/wire_server.h: a tiny HTTP/1.1 server on 127.0.0.1 for the
 * client's unit tests.  One thread, one request per connection
 * (Connection: close); records every request; answers through a handler.
 *
 * Ownership: the server owns the recorded requests; wire_request() returns a
 * borrowed pointer valid until wire_stop().
 */
#ifndef CLIQ_TESTS_WIRE_SERVER_H
#define CLIQ_TESTS_WIRE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct wire_request {
  char method[16];
  char target[2048];   /* path and query as sent */
  char *head;          /* whole request head, NUL-terminated */
  char *body;          /* NUL-terminated, "" when none */
};

struct wire_reply {
  int status;
  const char *body;    /* NULL = empty */
  int delay_ms;        /* wait before answering */
  bool drop;           /* close without answering */
};

typedef struct wire_reply (*wire_handler)(const struct wire_request *rq,
                                          int index, void *ctx);

struct wire_server;

/* Starts listening on 127.0.0.1 (free port).  NULL on failure. */
struct wire_server *wire_start(wire_handler handler, void *ctx);
void wire_stop(struct wire_server *s);
int wire_port(struct wire_server *s);
/* "http://127.0.0.1:<port>" (static storage per server). */
const char *wire_url(struct wire_server *s);
int wire_count(struct wire_server *s);
/* Copy of request i (borrowed pointers inside stay valid until wire_stop). */
const struct wire_request *wire_request(struct wire_server *s, int i);
/* How many recorded requests have a target starting with prefix. */
int wire_count_prefix(struct wire_server *s, const char *prefix);

/* A handler answering from a list of replies in order; the last repeats. */
struct wire_script {
  struct wire_reply replies[16];
  int n;
};
struct wire_reply wire_script_handler(const struct wire_request *rq, int index,
                                      void *ctx);

#endif
