/* api/internal.h: private to the .c files of api/.  Not installed, not used outside api/.
 *
 * Ownership: the client owns every string and handle below; request structs
 * only borrow; a cliq__response's body is owned by whoever received it and is
 * released with cliq__response_clear().
 */
#ifndef CLIQ_API_INTERNAL_H
#define CLIQ_API_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/cliq.h"
#include "api/clock.h"

#define CLIQ_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define CLIQ_DEFAULT_TIMEOUT_MS 30000L
#define CLIQ_DEFAULT_MAX_BODY ((size_t)16 << 20)

enum cliq_auth_state {
  CLIQ_AUTH_NONE = 0,
  CLIQ_AUTH_STATIC,
  CLIQ_AUTH_VALID,
  CLIQ_AUTH_REFRESHING,
  CLIQ_AUTH_FAILED,      /* the token endpoint could not be reached */
  CLIQ_AUTH_REJECTED,    /* Cliq refused the credentials: a person must act */
};

struct cliq_auth {
  pthread_mutex_t state_lock;   /* guards the fields below; never held across I/O */
  pthread_mutex_t refresh_lock; /* held by the one thread talking to the token endpoint */
  char *token;                  /* current access token, NULL when none */
  double refresh_at;            /* monotonic s: refresh from here on */
  double expires_at;            /* monotonic s: unusable from here on */
  unsigned generation;          /* bumped on every new token */
  unsigned attempts;            /* bumped on every finished refresh attempt */
  bool refreshing;
  double failed_until;          /* after the endpoint refused us: don't ask again before */
  int failed_err;
  char failed_code[64];
  char failed_message[256];
  atomic_int state;             /* enum cliq_auth_state, read without locks */
};

struct cliq_client {
  char *api_url;       /* no trailing '/' */
  char *accounts_url;  /* no trailing '/', NULL when unset */
  char *static_token;
  char *client_id;
  char *client_secret;
  char *refresh_token;
  long connect_timeout_ms;
  long timeout_ms;
  size_t max_body_bytes;
  double time_scale;   /* >= 1e-9; 1 = real time */
  cliq_gate gate;
  bool has_gate;

  CURLSH *share;       /* DNS and TLS sessions, shared by all handles */
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  pthread_mutex_t pool_lock;  /* idle easy handles: each keeps its connections */
  CURL **pool;
  size_t pool_count, pool_cap;

  struct cliq_auth auth;

  pthread_mutex_t clock_lock;
  bool clock_known;           /* an answer had a Date header */
  double clock_offset_s;      /* the server's clock minus ours */
};

struct cliq__request {
  enum cliq_api api;
  enum cliq_priority prio;
  const char *method;        /* "GET", "POST", "PUT", "DELETE" */
  const char *base;          /* api_url or accounts_url */
  const char *path;          /* already percent-encoded, starts with '/' */
  const char *query;         /* without '?', NULL for none */
  const char *body;          /* NULL = no body */
  const char *content_type;  /* for body; NULL = application/json */
  const char *token;         /* NULL = no Authorization header */
};

struct cliq__response {
  long status;
  char *body;     /* NUL-terminated, may be NULL when empty */
  size_t len;
  long connects;  /* connections the transfer opened (0: it reused one) */
};

void cliq__response_clear(struct cliq__response *rs);


/* The one place every request goes through: gate->acquire() before,
 * gate->record() after, then cliq_errno_map().  Returns 0 for a 2xx answer
 * (rs filled), or -errno with err filled (rs filled as far as known).  */
int cliq__send(cliq_client *c, const struct cliq__request *rq,
               struct cliq__response *rs, cliq_error *err);

/* An API call with auth: token, send, one refresh + retry on a 401.
 * body may be NULL.  When out is not NULL it receives the parsed JSON of a
 * non-empty 2xx answer (new reference) or NULL for 204/empty; a 2xx answer
 * that is not JSON gives -EIO. */
int cliq__call(cliq_client *c, enum cliq_api api, enum cliq_priority prio,
               const char *method, const char *path, const char *query,
               json_t *body, json_t **out, cliq_error *err);

/* auth.c */
int cliq__auth_init(cliq_client *c, cliq_error *err);
void cliq__auth_destroy(cliq_client *c);
/* A copy of a usable token (caller frees) and its generation. */
int cliq__auth_token(cliq_client *c, enum cliq_priority prio, char **token,
                     unsigned *generation, cliq_error *err);
/* The server refused the token of `generation` with a 401.  Returns true
 * when a retry with a new token makes sense (not a static token). */
bool cliq__auth_rejected(cliq_client *c, unsigned generation);
/* A 401 that a refresh cannot (or did not) cure: the state becomes
 * "rejected" and err's message gets what to do about it. */
void cliq__auth_refused(cliq_client *c, cliq_error *err);
/* An answer that is not a 401: a static token works (again). */
void cliq__auth_accepted(cliq_client *c);

/* answers.c: whole-answer parsers (unit-tested).  Page parsers append to out
 * (on error out keeps what it had, the caller clears); the list parsers fill
 * out (cleared on error).  A malformed entry is left out, counted in the
 * list's skipped (first reason in skipped_why).  Messages come out sorted by
 * time then id, without duplicate ids. */
int cliq__parse_channel_page(json_t *reply, cliq_channel_list *out,
                             cliq_error *err);
int cliq__parse_thread_page(json_t *reply, cliq_thread_list *out,
                            cliq_error *err);
int cliq__parse_message_list(json_t *reply, cliq_message_list *out,
                             cliq_error *err);
/* Users under `key` (or "data"). */
int cliq__parse_user_list(json_t *reply, const char *key, cliq_user_list *out,
                          cliq_error *err);
/* An id given as a string or (some answers) as a number, as a new string
 * (caller frees); NULL when absent, empty or out of memory. */
char *cliq__json_id(json_t *v);
/* message_id of a post answer, normalised (caller frees); NULL if absent. */
char *cliq__posted_message_id(json_t *reply);
/* Drops later entries whose id repeats an earlier one, keeping order: 0 or
 * -ENOMEM. */
int cliq__dedupe_channels(cliq_channel_list *list);
int cliq__dedupe_threads(cliq_thread_list *list);
/* A single object, bare or wrapped as {"data":{…}} (when reply itself lacks
 * must_have): borrowed from reply. */
json_t *cliq__unwrap(json_t *reply, const char *must_have);

/* A NUL inside a string of an answer (JSON_ALLOW_NUL) would cut it short
 * wherever it is used as a C string: in "text" and "comment" it becomes the
 * two characters ^@ (as cat -v shows NUL), elsewhere it is dropped.  Changes
 * v in place; key is the member name v is held under (NULL at the top). */
void cliq__strip_nul(json_t *v, const char *key);

/* Loads an answer's JSON: NUL allowed (and stripped, cliq__strip_nul), a
 * lone surrogate escape read as U+FFFD, an integer beyond 64 bits as a
 * string of its digits.  A new reference, or NULL with *jerr (may be NULL)
 * telling why the text is not JSON. */
json_t *cliq__json_load(const char *text, size_t len, json_error_t *jerr);

/* Percent-encodes one path segment or query value (RFC 3986 unreserved
 * characters stay).  Returns a new string or NULL on allocation failure. */
char *cliq__escape(const char *s);

#endif
