/* What the files of cliq-emulator's HTTP server share (private: only the
 * server_*.c files and server.c include it; main.c and the org use
 * emulator.h).  The family:
 *   server.c          the request cycle (handle), answers, counters, faults
 *                     taken, start and stop
 *   server_api.c      the Cliq API: routes and their handlers
 *   server_oauth.c    access tokens and the OAuth token endpoint
 *   server_rate.c     rate windows, locks and the throttled answer
 *   server_control.c  the /_emulator/ control path (PROTOCOL.md)
 *   server_chatter.c  the thread that posts as other people
 *
 * Locking: one mutex, emu_server.mu, over the server's state and the org.
 * What reads or writes them (the handlers, the control path, tokens, rate
 * windows, srv_scaled_ms) is called with it held.  srv_answer_*, srv_query
 * and srv_match_route touch only the call and need no lock, nor does
 * srv_logf; srv_chatter_main takes it itself.
 *
 * Ownership (jansson): a json_t * returned is a new reference; one passed
 * in is borrowed, except where a comment says stolen.  A call owns its
 * body and its answer (struct call); handle (server.c) drops both.
 */
#ifndef CLIQ_EMULATOR_SERVER_I_H
#define CLIQ_EMULATOR_SERVER_I_H

#include "emulator.h"

#include "api/endpoints.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Cliq's error texts ---- */

#define MSG_400 "The request cannot be performed. Usually because of malformed parameter or missing parameter."
#define MSG_401 "Request was rejected because of invalid AuthToken."
#define MSG_403 "The user does not have enough permission or possibly not an user of the respective organization to access the resource."
#define MSG_404 "The URL you've sent is wrong. It's possible that the resource you've requested has been moved to another URL."
#define MSG_405 "The requested resource does not support the HTTP method used. For example, requesting List of all customers API with PUT as the HTTP method."
#define MSG_429 "Too many requests within a certain time frame."
#define MSG_500 "Cliq server encountered an error which prevents it from fulfilling the request."
#define MSG_503 "Cliq is temporarily unavailable. Please try again later."
#define MSG_THROTTLE_400 "You have exceeded the URL throttle limits."
#define MSG_OAUTH_DENIED "You have made too many requests continuously. Please try again after some time."

/* ---- counters ---- */

#define API_UNKNOWN CLIQ_API_COUNT   /* counters of unrouted requests */
#define NSTATUS 600

/* ---- faults: armed on the control path, taken by handle (server.c) ---- */

enum fault_kind {
  FAULT_500, FAULT_503, FAULT_DELAY, FAULT_DROP, FAULT_TRUNCATE,
  FAULT_INVALID_JSON, FAULT_401, FAULT_THROTTLE, FAULT_ACCEPT_DROP,
  FAULT_NONE,
};
/* The kinds' names on the control path, by enum fault_kind (server.c). */
extern const char *const srv_fault_names[];

struct fault {
  long id;
  int api;              /* -1 = any */
  enum fault_kind kind;
  long remaining;
  long delay_ms;
};

/* ---- the server's state ---- */

/* Request times (monotonic ms) within the window, oldest first. */
struct ring {
  int64_t *ts;
  size_t head, n, cap;
};

/* Two windows per API: `seen` holds every request received (for
 * max_in_window), `charged` only those not refused by a lock: requests
 * refused while locked do not count against the next window. */
struct rate {
  struct ring seen, charged;
  int64_t locked_until; /* monotonic ms; 0 = not locked */
  long max_in_window;
};

struct token {
  char *value;
  int64_t expires;      /* monotonic ms */
};

struct rewrite {
  char *from, *to;      /* literal text of the JSON answer, and what replaces it */
};

/* Made by emu_server_start and freed, with all it owns, by emu_server_stop
 * (server.c).  It owns the org, the rewrites' and tokens' strings, the
 * faults and the rate rings; cfg is a copy whose strings are the caller's.
 * Who writes what:
 *   rewrites      added by the control path, applied by send_call (server.c)
 *   cfg           changed by the control path (/config)
 *   rates         server_rate.c; the control path reads, locks and resets them
 *   counts..throttled  counted by handle (server.c), read and reset by the
 *                 control path
 *   faults        armed and cleared by the control path, taken by handle
 *   tokens, auth_code_used  server_oauth.c; the control path expires tokens
 *   rng           the tokens' random part and the chatter
 *   chatter..cv   server_chatter.c, started and stopped by server.c */
struct emu_server {
  struct MHD_Daemon *daemon;
  pthread_mutex_t mu;   /* guards everything below */
  struct rewrite *rewrites;  /* applied to every Cliq answer, in order */
  size_t nrewrites;
  struct emu_org *org;
  struct emu_config cfg;
  int port;
  struct rate rates[CLIQ_API_COUNT];
  long counts[CLIQ_API_COUNT + 1][NSTATUS];
  long totals[CLIQ_API_COUNT + 1];
  long total, throttled;
  struct fault *faults;
  size_t nfaults;
  long next_fault_id;
  struct token *tokens;
  size_t ntokens;
  bool auth_code_used;
  uint64_t rng;
  /* chatter */
  pthread_t chatter;
  bool chatter_running, stopping;
  pthread_cond_t cv;
};

/* ---- one request ---- */

/* The body received on one connection (server.c, on_request). */
struct req {
  char *body;
  size_t len, cap;
  bool too_big;
};

/* One API call being answered.  arg[] point into handle's copy of the URL
 * and raw into the connection's request: both borrowed for the call.  body
 * and out are the call's own references; change out only through the
 * srv_answer_* functions, which drop the answer they replace. */
struct call {
  struct emu_server *s;
  struct MHD_Connection *conn;
  const char *method;
  const char *arg[2];
  json_t *body;         /* parsed JSON body or NULL */
  const struct req *raw;
  int status;
  json_t *out;          /* NULL with status 204 */
  bool is_control;      /* the /_emulator/ path: never rewritten */
};

/* ---- routes (server_api.c) ---- */

enum route_id {
  R_OAUTH, R_CHANNELS, R_CHANNEL, R_THREADS_LIST, R_MESSAGES, R_MESSAGE,
  R_POST_CHANNEL, R_POST_CHAT, R_POST_BYNAME, R_THREAD, R_THREAD_MAIN,
  R_FOLLOWERS, R_NONFOLLOWERS, R_FOLLOW, R_UNFOLLOW, R_MEMBERS, R_LEAVE,
  R_MUTE, R_UNMUTE,
};

struct route_method {
  const char *method;
  int api;
};

struct route {
  enum route_id id;
  const char *pattern;
  struct route_method methods[3];
};

/* ---- server.c ---- */

/* To stderr, unless cfg.quiet.  Needs no lock. */
void srv_logf(struct emu_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* seconds of the emulated clock as real milliseconds (time_scale), >= 1. */
int64_t srv_scaled_ms(const struct emu_server *s, double seconds);
/* The call's answer.  code may be NULL (no "code" field).  answer_json
 * steals out. */
void srv_answer_error(struct call *c, int status, const char *code,
                      const char *message);
void srv_answer_json(struct call *c, int status, json_t *out);
void srv_answer_204(struct call *c);
/* A query string parameter, or NULL; the string is the connection's
 * (borrowed for the call). */
const char *srv_query(struct call *c, const char *key);

/* ---- server_api.c ---- */

/* Finds the route of url.  Fills args (pointers into buf).  Returns NULL
 * when no pattern matches. */
const struct route *srv_match_route(const char *url, char *buf, size_t len,
                                    const char **args);
/* Answers c with the handler of route id for api (not R_OAUTH). */
void srv_dispatch(struct call *c, enum route_id id, int api);

/* ---- server_oauth.c ---- */

/* header: the Authorization header or NULL (borrowed). */
bool srv_token_valid(struct emu_server *s, const char *header, int64_t now);
/* POST /oauth/v2/token. */
void srv_h_oauth(struct call *c, int64_t now);

/* ---- server_rate.c ---- */

/* The answer to a throttled request (a new reference) and its status. */
json_t *srv_throttle_body(struct emu_server *s, int api, int *status);
void srv_ring_pop_newest(struct ring *r);
void srv_rate_prune(struct emu_server *s, int api, int64_t now);
/* Records a request to api; returns how many it has been charged in its
 * window, this one included. */
size_t srv_rate_note(struct emu_server *s, int api, int64_t now);
void srv_rate_lock(struct emu_server *s, int api, int64_t now, int64_t ms);
void srv_rate_unlock(struct emu_server *s, int api);

/* ---- server_control.c ---- */

/* A request to /_emulator/...; url is the whole path. */
void srv_control(struct call *c, const char *url);

/* ---- server_chatter.c ---- */

/* The chatter thread (arg: the server).  Takes mu itself. */
void *srv_chatter_main(void *arg);
/* Wakes the chatter thread after cfg.chatter_s changed. */
void srv_chatter_reconfigure(struct emu_server *s);

#endif
