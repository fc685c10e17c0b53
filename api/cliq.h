/* api/: the Cliq REST client.  The only part of cliqfs that speaks HTTP.
 *
 * Ownership (jansson's convention):
 *  - Every struct filled by a cliq_* call is owned by the caller and released
 *    with its *_clear() or *_free() function; strings inside are heap copies.
 *  - `raw` members hold a new reference to the JSON object the server sent for
 *    that item (the caller's reference; *_clear() drops it).
 *  - `const char *` parameters are borrowed for the duration of the call.
 *
 * Errors: every call returns 0 or -errno and, when `err` is not NULL, fills it
 * (err->err is the positive errno, 0 on success).  The errno comes from the one
 * mapping cliq_errno_map() (cliqfs(1) ERRORS).  Messages never
 * contain a token.
 *
 * Threads: a cliq_client may be used from several threads at once.
 */
#ifndef CLIQ_API_CLIQ_H
#define CLIQ_API_CLIQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/endpoints.h"

/* Who is waiting for a request: the governor spends its budget in this order
 * and drops CLIQ_PRIO_BACKGROUND first. */
enum cliq_priority {
  CLIQ_PRIO_WRITE = 0,      /* the user's writes (outbox delivery) */
  CLIQ_PRIO_READ = 1,       /* a read a user is waiting on */
  CLIQ_PRIO_BACKGROUND = 2, /* keeping open files fresh, then sync */
};
#define CLIQ_PRIO_COUNT 3

typedef struct cliq_error {
  int err;              /* positive errno; 0 = success */
  long http_status;     /* 0 when no HTTP answer was received */
  int curl_code;        /* CURLcode of the transfer, 0 = CURLE_OK */
  char code[64];        /* Cliq `code` (or OAuth `error`), "" when none */
  char message[256];    /* human-readable; never contains a token */
} cliq_error;

/* The one error setter of the program: err (when not NULL) gets errno e and
 * the formatted message; what the transport said (http_status, curl_code,
 * code) stays as the caller set it.  Returns -e:
 * `return cliq_fail(err, EIO, "...")`. */
int cliq_fail(cliq_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a caller's text buffer (buf may be NULL or len 0: nothing). */
void cliq_fail_text(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one mapping from (curl result, HTTP status, Cliq code) to errno.
 * curl_code is a CURLcode; http_status 0 when there was no answer.
 * Returns a positive errno, 0 for success. */
int cliq_errno_map(int curl_code, long http_status, const char *cliq_code);

/* True when `code` (Cliq `code` or error.code) or status means "throttled":
 * 429, or 400 with request_limit_exceeded / rate_limit_exceeded. */
bool cliq_is_throttle(long http_status, const char *cliq_code);

/* Transport judgements, so that no caller reads curl codes.
 * A read worth asking again at once: Cliq's 5xx, a connection dropped
 * before the answer (not a 4xx, a timeout, or the governor's no). */
bool cliq_error_read_retryable(const cliq_error *err);
/* Whether a failed write may have reached Cliq and taken effect: a garbled
 * success, a gateway that gave up waiting (502, 504), or a failure after
 * the request was on its way; not an answer that said no, nor a request
 * never sent (refused before sending, no connection, TLS refused). */
bool cliq_error_may_have_reached(const cliq_error *err);

/* URL policy: https always; http only to loopback (127.0.0.0/8, ::1,
 * localhost).  Returns 0 or -EINVAL (with a message in err). */
int cliq_url_check(const char *url, cliq_error *err);

/* The governor's hook: every request passes through here, named by its API
 * class.  acquire() blocks until the request may go and returns 0, or returns
 * -EAGAIN (no budget within the caller's patience, or the API is locked).
 * record() is told what the server answered (http_status 0 = no answer). */
typedef struct cliq_gate {
  int (*acquire)(void *ctx, enum cliq_api api, enum cliq_priority prio);
  void (*record)(void *ctx, enum cliq_api api, long http_status,
                 const char *cliq_code);
  /* Why acquire() refused, for the error a user reads: whose limit (ours or
   * Cliq's lock) and until when.  May be NULL. */
  void (*explain)(void *ctx, enum cliq_api api, char *buf, size_t len);
  void *ctx;
} cliq_gate;

typedef struct cliq_client_config {
  const char *api_url;       /* Cliq base, e.g. "https://cliq.zoho.com" */
  const char *accounts_url;  /* accounts base, e.g. "https://accounts.zoho.com" */
  const char *access_token;  /* static token: no refresh when set */
  const char *client_id;     /* refresh-token grant, used when no static token */
  const char *client_secret;
  const char *refresh_token;
  long connect_timeout_ms;   /* 0 = default (10000) */
  long timeout_ms;           /* 0 = default (30000) */
  size_t max_body_bytes;     /* 0 = default (16 MiB) */
  double time_scale;         /* 0 or 1 = real time; divides token lifetimes */
} cliq_client_config;

typedef struct cliq_client cliq_client;

/* Copies everything it needs from cfg; gate may be NULL (no governor) and is
 * copied by value.  Returns NULL with err filled on a bad config (e.g. a URL
 * refused by cliq_url_check). */
cliq_client *cliq_client_new(const cliq_client_config *cfg,
                             const cliq_gate *gate, cliq_error *err);
void cliq_client_free(cliq_client *client);

/* Auth state for .cliqfs/status: "static", "valid", "refreshing", "failed",
 * "none" (no token fetched yet, or no credentials).  Static storage. */
const char *cliq_client_auth_state(cliq_client *client);
/* The server's clock minus ours in seconds (±1 s), from the Date header of
 * the latest answer; false while no answer had one. */
bool cliq_client_clock_offset(cliq_client *client, double *offset_s);

/* ---- Results ---------------------------------------------------------- */

typedef struct cliq_user {
  char *user_id;
  char *email_id;   /* may be "" when the server omits it */
  char *name;
} cliq_user;

typedef struct cliq_user_list {
  cliq_user *items;
  size_t count;
  size_t skipped;           /* malformed entries left out */
  char skipped_why[256];    /* why the first of them was */
} cliq_user_list;

typedef struct cliq_channel {
  char *channel_id;
  char *chat_id;
  char *unique_name;
  char *name;
  char *description;        /* "" when absent */
  int64_t participant_count;
  int64_t last_message_ms;  /* last_message_info.time, 0 when unknown */
  json_t *raw;
} cliq_channel;

typedef struct cliq_channel_list {
  cliq_channel *items;
  size_t count;
  size_t skipped;           /* malformed entries left out */
  char skipped_why[256];    /* why the first of them was */
} cliq_channel_list;

typedef enum cliq_thread_state {
  CLIQ_THREAD_OPEN = 0,
  CLIQ_THREAD_CLOSED = 1,
} cliq_thread_state;

typedef struct cliq_thread {
  char *chat_id;            /* "<parent chat id>-T-<n>" */
  char *parent_chat_id;
  char *thread_message_id;  /* normalised to "<ms>_<n>" */
  char *title;
  cliq_thread_state state;  /* top level or under thread_state_info */
  int64_t follower_count;
  bool is_follower;
  int64_t last_message_ms;  /* 0 when unknown */
  int64_t message_count;    /* -1 when unknown */
  json_t *raw;
} cliq_thread;

typedef struct cliq_thread_list {
  cliq_thread *items;
  size_t count;
  size_t skipped;           /* malformed entries left out */
  char skipped_why[256];    /* why the first of them was */
} cliq_thread_list;

typedef struct cliq_message {
  char *id;                 /* normalised to "<ms>_<n>" */
  int64_t time_ms;          /* number, numeric string or ISO 8601 accepted */
  char *type;               /* "text", "file", ... */
  char *sender_id;
  char *sender_name;
  /* The text as a line renderer needs it: content.text for text messages,
   * "[file: name]" and the like for others.  Never NULL. */
  char *text;
  char *thread_chat_id;     /* thread_information.chat_id, NULL when absent */
  int64_t thread_messages;  /* thread_information.message_count (a thread's
                               parent, from the one-message endpoint); -1
                               when absent */
  json_t *raw;
} cliq_message;

typedef struct cliq_message_list {
  cliq_message *items;      /* sorted by time, then id; no duplicate ids */
  size_t count;
  size_t skipped;           /* malformed entries left out */
  char skipped_why[256];    /* why the first of them was */
} cliq_message_list;

void cliq_user_clear(cliq_user *user);
void cliq_user_list_clear(cliq_user_list *list);
void cliq_channel_clear(cliq_channel *channel);
void cliq_channel_list_clear(cliq_channel_list *list);
void cliq_thread_clear(cliq_thread *thread);
void cliq_thread_list_clear(cliq_thread_list *list);
void cliq_message_clear(cliq_message *message);
void cliq_message_list_clear(cliq_message_list *list);

/* ---- Parsers (pure, unit-tested; used by the calls below and by cache/) ---
 * `json` is borrowed; on success `out` is filled and owned by the caller.
 * Missing required fields or wrong types give -EIO, never a crash. */
int cliq_parse_channel(json_t *json, cliq_channel *out, cliq_error *err);
int cliq_parse_thread(json_t *json, cliq_thread *out, cliq_error *err);
int cliq_parse_message(json_t *json, cliq_message *out, cliq_error *err);
int cliq_parse_user(json_t *json, cliq_user *out, cliq_error *err);
/* Error bodies in the reference's order: {"code","message"},
 * {"error":{"code","message"}}, {"message"}, {"error":"..."}.  Fills code and
 * message of err (may leave them empty); body may be NULL/garbage. */
void cliq_parse_error_body(const char *body, size_t len, cliq_error *err);
/* Accepts epoch-ms number, epoch-ms string, ISO 8601 (with offset or Z).
 * Returns 0 and sets *ms, or -EIO. */
int cliq_parse_time(json_t *value, int64_t *ms);
/* "<ms>%20<n>", "<ms> <n>", "<ms>_<n>" -> "<ms>_<n>" (new string, caller
 * frees); NULL on allocation failure. */
char *cliq_normalize_message_id(const char *id);

/* ---- Calls: one per endpoint of the reference --------------------------- */

int cliq_list_channels(cliq_client *c, enum cliq_priority prio,
                       cliq_channel_list *out, cliq_error *err);
int cliq_get_channel(cliq_client *c, enum cliq_priority prio,
                     const char *channel_id, cliq_channel *out,
                     cliq_error *err);
/* All pages, state=all. */
int cliq_list_threads(cliq_client *c, enum cliq_priority prio,
                      const char *channel_id, cliq_thread_list *out,
                      cliq_error *err);
/* fromtime_ms / totime_ms 0 = not sent; limit 1..100 (0 = 100). */
int cliq_get_messages(cliq_client *c, enum cliq_priority prio,
                      const char *chat_id, int64_t fromtime_ms,
                      int64_t totime_ms, int limit, cliq_message_list *out,
                      cliq_error *err);
int cliq_get_message(cliq_client *c, enum cliq_priority prio,
                     const char *chat_id, const char *message_id,
                     cliq_message *out, cliq_error *err);
/* GET /api/v3/threads/{id}; out->raw is the whole answer's `data`. */
int cliq_get_thread(cliq_client *c, enum cliq_priority prio,
                    const char *thread_chat_id, cliq_thread *out,
                    cliq_error *err);
int cliq_get_main_message(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, cliq_message *out,
                          cliq_error *err);
int cliq_get_followers(cliq_client *c, enum cliq_priority prio,
                       const char *thread_chat_id, cliq_user_list *out,
                       cliq_error *err);
int cliq_add_followers(cliq_client *c, enum cliq_priority prio,
                       const char *thread_chat_id,
                       const char *const *user_ids, size_t n,
                       cliq_error *err);
int cliq_remove_followers(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id,
                          const char *const *user_ids, size_t n,
                          cliq_error *err);
int cliq_get_nonfollowers(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, cliq_user_list *out,
                          cliq_error *err);
int cliq_follow(cliq_client *c, enum cliq_priority prio,
                const char *thread_chat_id, cliq_error *err);
int cliq_unfollow(cliq_client *c, enum cliq_priority prio,
                  const char *thread_chat_id, cliq_error *err);
/* action: "close", "reopen", "follow", "unfollow" (PUT /api/v3/threads/{id}) */
int cliq_set_thread_state(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, const char *action,
                          cliq_error *err);
int cliq_get_members(cliq_client *c, enum cliq_priority prio,
                     const char *chat_id, cliq_user_list *out,
                     cliq_error *err);
int cliq_leave(cliq_client *c, enum cliq_priority prio, const char *chat_id,
               cliq_error *err);
int cliq_mute(cliq_client *c, enum cliq_priority prio, const char *chat_id,
              cliq_error *err);
int cliq_unmute(cliq_client *c, enum cliq_priority prio, const char *chat_id,
                cliq_error *err);
/* Posts to a channel (no thread).  *message_id_out (caller frees) is the new
 * message's id, or NULL when the server answered 204.  message_id_out may be
 * NULL.  A 2xx answer whose body is not JSON is -EIO (outcome unknown).
 * -EIO after the request was sent (garbled answer, dropped connection;
 * timeout -> -ETIMEDOUT) does not prove the message was not stored. */
int cliq_post_channel_message(cliq_client *c, enum cliq_priority prio,
                              const char *channel_id, const char *text,
                              char **message_id_out, cliq_error *err);
/* Replies in a thread (POST /api/v3/chats/{thread chat id}/messages). */
int cliq_reply(cliq_client *c, enum cliq_priority prio,
               const char *thread_chat_id, const char *text,
               char **message_id_out, cliq_error *err);
/* Creates a thread from parent_message_id (a message of channel_id's chat)
 * with `text` as its first reply, then finds the thread's chat id from the
 * parent message's thread_information (one extra messages.get request;
 * falling back to the channel's thread list).
 * channel_chat_id is the channel's chat id (needed for that lookup).
 * Both out strings are caller-freed; either out pointer may be NULL.
 * When the thread was created but its chat id could not be found, returns
 * that lookup's -errno with *message_id_out filled and *thread_chat_id_out
 * NULL: the thread exists, do not create it again. */
int cliq_create_thread(cliq_client *c, enum cliq_priority prio,
                       const char *channel_id, const char *channel_chat_id,
                       const char *parent_message_id, const char *title,
                       const char *text, char **thread_chat_id_out,
                       char **message_id_out, cliq_error *err);

/* OAuth: exchange a self-client code (authorization_code grant).  Both out
 * strings are caller-freed.  Used by `cliqfs auth`. */
int cliq_oauth_exchange_code(const char *accounts_url, const char *client_id,
                             const char *client_secret, const char *code,
                             char **refresh_token_out,
                             char **access_token_out, cliq_error *err);

#endif
