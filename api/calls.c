/* api/calls.c: one function per endpoint of the reference
 * (tests/emulator/REFERENCE.md).  Each builds the path (segments
 * percent-encoded), goes through cliq__call() with its API class, and parses
 * the answer into the structs of api/cliq.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* A list that does not end after this many pages is a server bug. */
#define MAX_PAGES 1000

#define ERR_LOCAL(err)                                                         \
  cliq_error err##_local;                                                      \
  if (!(err))                                                                  \
    (err) = &err##_local;                                                      \
  memset((err), 0, sizeof *(err))

static bool bad_arg(const char *s)
{
  return !s || !*s;
}

/* Joins literal pieces and percent-encoded segments: pieces at even
 * positions are literal, at odd positions are segments.  NULL-terminated. */
static char *build_path(const char *first, ...)
{
  va_list ap;
  size_t cap = 256, len = 0;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  out[0] = '\0';
  va_start(ap, first);
  const char *piece = first;
  for (int i = 0; piece; i++, piece = va_arg(ap, const char *)) {
    char *esc = (i % 2) ? cliq__escape(piece) : NULL;
    if (i % 2 && !esc)
      goto fail;
    const char *add = esc ? esc : piece;
    size_t n = strlen(add);
    if (len + n + 1 > cap) {
      while (len + n + 1 > cap)
        cap *= 2;
      char *nb = realloc(out, cap);
      if (!nb) {
        free(esc);
        goto fail;
      }
      out = nb;
    }
    memcpy(out + len, add, n + 1);
    len += n;
    free(esc);
  }
  va_end(ap);
  return out;
fail:
  va_end(ap);
  free(out);
  return NULL;
}

/* ---- calls ------------------------------------------------------------- */

static int path_oom(cliq_error *err)
{
  return cliq_fail(err, ENOMEM, "out of memory");
}

/* Follows next_token until the server says there is no more. */
static int next_page_token(json_t *reply, char **next, cliq_error *err,
                           bool *more)
{
  json_t *has_more = json_object_get(reply, "has_more");
  json_t *tok = json_object_get(reply, "next_token");
  *more = false;
  if (json_is_boolean(has_more) && !json_is_true(has_more))
    return 0;
  if (!json_is_string(tok) || json_string_length(tok) == 0)
    return 0;
  if (*next && strcmp(*next, json_string_value(tok)) == 0)
    return cliq_fail(err, EIO, "unexpected reply: next_token repeats");
  free(*next);
  *next = strdup(json_string_value(tok));
  if (!*next)
    return path_oom(err);
  *more = true;
  return 0;
}

/* Fetches every page of a next_token list into the list behind *count:
 * parse_page appends one reply's items.  The caller dedupes and, on error,
 * clears the list. */
static int fetch_all_pages(cliq_client *c, enum cliq_api api,
                           enum cliq_priority prio, const char *path,
                           const char *base_query, const char *what,
                           int (*parse_page)(json_t *reply, void *list,
                                             cliq_error *err),
                           void *list, const size_t *count, cliq_error *err)
{
  char *next = NULL;
  int r = 0;
  for (int page = 0;; page++) {
    if (page >= MAX_PAGES) {
      r = cliq_fail(err, EIO, "%s list: more than %d pages", what, MAX_PAGES);
      goto out;
    }
    char *query = NULL;
    char *esc = next ? cliq__escape(next) : NULL;
    if ((next && !esc) ||
        asprintf(&query, "%s%s%s", base_query, esc ? "&next_token=" : "",
                 esc ? esc : "") < 0) {
      free(esc);
      r = path_oom(err);
      goto out;
    }
    free(esc);
    json_t *reply = NULL;
    size_t before = *count;
    r = cliq__call(c, api, prio, "GET", path, query, NULL, &reply, err);
    free(query);
    if (r == 0)
      r = parse_page(reply, list, err);
    bool more = false;
    if (r == 0)
      r = next_page_token(reply, &next, err, &more);
    json_decref(reply);
    if (r < 0)
      goto out;
    /* An empty page ends the list even if a token came with it. */
    if (!more || *count == before)
      break;
  }
out:
  free(next);
  return r;
}

static int parse_channel_page_v(json_t *reply, void *list, cliq_error *err)
{
  return cliq__parse_channel_page(reply, list, err);
}

static int parse_thread_page_v(json_t *reply, void *list, cliq_error *err)
{
  return cliq__parse_thread_page(reply, list, err);
}

int cliq_list_channels(cliq_client *c, enum cliq_priority prio,
                       cliq_channel_list *out, cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  int r = fetch_all_pages(c, CLIQ_API_CHANNELS_LIST, prio, "/api/v2/channels",
                          "joined=true&limit=100", "channel",
                          parse_channel_page_v, out, &out->count, err);
  if (r == 0 && cliq__dedupe_channels(out) < 0)
    r = path_oom(err);
  if (r < 0)
    cliq_channel_list_clear(out);
  return r;
}

int cliq_get_channel(cliq_client *c, enum cliq_priority prio,
                     const char *channel_id, cliq_channel *out,
                     cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(channel_id))
    return cliq_fail(err, EINVAL, "no channel id");
  char *path = build_path("/api/v2/channels/", channel_id, NULL);
  if (!path)
    return path_oom(err);
  json_t *reply = NULL;
  int r = cliq__call(c, CLIQ_API_CHANNELS_GET, prio, "GET", path, NULL, NULL,
                     &reply, err);
  if (r == 0)
    r = cliq_parse_channel(cliq__unwrap(reply, "channel_id"), out, err);
  json_decref(reply);
  free(path);
  return r;
}

int cliq_list_threads(cliq_client *c, enum cliq_priority prio,
                      const char *channel_id, cliq_thread_list *out,
                      cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(channel_id))
    return cliq_fail(err, EINVAL, "no channel id");
  char *path = build_path("/api/v2/channels/", channel_id, "/threads", NULL);
  if (!path)
    return path_oom(err);
  int r = fetch_all_pages(c, CLIQ_API_THREADS_LIST, prio, path,
                          "state=all&limit=100", "thread", parse_thread_page_v,
                          out, &out->count, err);
  if (r == 0 && cliq__dedupe_threads(out) < 0)
    r = path_oom(err);
  free(path);
  if (r < 0)
    cliq_thread_list_clear(out);
  return r;
}

int cliq_get_messages(cliq_client *c, enum cliq_priority prio,
                      const char *chat_id, int64_t fromtime_ms,
                      int64_t totime_ms, int limit, cliq_message_list *out,
                      cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(chat_id))
    return cliq_fail(err, EINVAL, "no chat id");
  if (limit < 0 || limit > 100 || fromtime_ms < 0 || totime_ms < 0)
    return cliq_fail(err, EINVAL, "bad message range or limit");
  if (limit == 0)
    limit = 100;
  char *path = build_path("/api/v2/chats/", chat_id, "/messages", NULL);
  if (!path)
    return path_oom(err);
  char query[128];
  int n = snprintf(query, sizeof query, "limit=%d", limit);
  if (fromtime_ms > 0)
    n += snprintf(query + n, sizeof query - (size_t)n, "&fromtime=%lld",
                  (long long)fromtime_ms);
  if (totime_ms > 0)
    snprintf(query + n, sizeof query - (size_t)n, "&totime=%lld",
             (long long)totime_ms);
  json_t *reply = NULL;
  int r = cliq__call(c, CLIQ_API_CHATS_MESSAGES, prio, "GET", path, query,
                     NULL, &reply, err);
  if (r == 0)
    r = cliq__parse_message_list(reply, out, err);
  json_decref(reply);
  free(path);
  return r;
}

static int get_one_message(cliq_client *c, enum cliq_api api,
                           enum cliq_priority prio, const char *path,
                           cliq_message *out, cliq_error *err)
{
  json_t *reply = NULL;
  int r = cliq__call(c, api, prio, "GET", path, NULL, NULL, &reply, err);
  if (r == 0)
    r = cliq_parse_message(cliq__unwrap(reply, "id"), out, err);
  json_decref(reply);
  return r;
}

int cliq_get_message(cliq_client *c, enum cliq_priority prio,
                     const char *chat_id, const char *message_id,
                     cliq_message *out, cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(chat_id) || bad_arg(message_id))
    return cliq_fail(err, EINVAL, "no chat id or message id");
  char *id = cliq_normalize_message_id(message_id);
  char *path = id ? build_path("/api/v2/chats/", chat_id, "/messages/", id, NULL)
                  : NULL;
  free(id);
  if (!path)
    return path_oom(err);
  int r = get_one_message(c, CLIQ_API_MESSAGES_GET, prio, path, out, err);
  free(path);
  return r;
}

int cliq_get_thread(cliq_client *c, enum cliq_priority prio,
                    const char *thread_chat_id, cliq_thread *out,
                    cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(thread_chat_id))
    return cliq_fail(err, EINVAL, "no thread chat id");
  char *path = build_path("/api/v3/threads/", thread_chat_id, NULL);
  if (!path)
    return path_oom(err);
  json_t *reply = NULL;
  int r = cliq__call(c, CLIQ_API_THREADS_GET, prio, "GET", path, NULL, NULL,
                     &reply, err);
  if (r == 0)
    r = cliq_parse_thread(cliq__unwrap(reply, "chat_id"), out, err);
  json_decref(reply);
  free(path);
  return r;
}

int cliq_get_main_message(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, cliq_message *out,
                          cliq_error *err)
{
  ERR_LOCAL(err);
  memset(out, 0, sizeof *out);
  if (bad_arg(thread_chat_id))
    return cliq_fail(err, EINVAL, "no thread chat id");
  char *path = build_path("/api/v3/threads/", thread_chat_id, "/messages/main",
                          NULL);
  if (!path)
    return path_oom(err);
  int r = get_one_message(c, CLIQ_API_THREADS_MAIN, prio, path, out, err);
  free(path);
  return r;
}

static int get_users(cliq_client *c, enum cliq_api api, enum cliq_priority prio,
                     const char *pre, const char *id, const char *post,
                     const char *query, const char *key, cliq_user_list *out,
                     cliq_error *err)
{
  memset(out, 0, sizeof *out);
  if (bad_arg(id))
    return cliq_fail(err, EINVAL, "no chat id");
  char *path = build_path(pre, id, post, NULL);
  if (!path)
    return path_oom(err);
  json_t *reply = NULL;
  int r = cliq__call(c, api, prio, "GET", path, query, NULL, &reply, err);
  if (r == 0)
    r = cliq__parse_user_list(reply, key, out, err);
  json_decref(reply);
  free(path);
  return r;
}

int cliq_get_followers(cliq_client *c, enum cliq_priority prio,
                       const char *thread_chat_id, cliq_user_list *out,
                       cliq_error *err)
{
  ERR_LOCAL(err);
  return get_users(c, CLIQ_API_FOLLOWERS_GET, prio, "/api/v3/threads/",
                   thread_chat_id, "/followers", NULL, "data", out, err);
}

int cliq_get_nonfollowers(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, cliq_user_list *out,
                          cliq_error *err)
{
  ERR_LOCAL(err);
  return get_users(c, CLIQ_API_NONFOLLOWERS, prio, "/api/v3/threads/",
                   thread_chat_id, "/nonfollowers", NULL, "data", out, err);
}

int cliq_get_members(cliq_client *c, enum cliq_priority prio,
                     const char *chat_id, cliq_user_list *out, cliq_error *err)
{
  ERR_LOCAL(err);
  return get_users(c, CLIQ_API_CHATS_MEMBERS, prio, "/api/v3/chats/", chat_id,
                   "/members", "fields=user_id%2Cemail_id%2Cname", "members",
                   out, err);
}

/* A request whose success is 204 (or any 2xx); body may be NULL. */
static int simple_call(cliq_client *c, enum cliq_api api,
                       enum cliq_priority prio, const char *method,
                       const char *pre, const char *id, const char *post,
                       json_t *body, cliq_error *err)
{
  if (bad_arg(id))
    return cliq_fail(err, EINVAL, "no chat id");
  char *path = build_path(pre, id, post, NULL);
  if (!path)
    return path_oom(err);
  int r = cliq__call(c, api, prio, method, path, NULL, body, NULL, err);
  free(path);
  return r;
}

static int followers_change(cliq_client *c, enum cliq_api api,
                            enum cliq_priority prio, const char *method,
                            const char *thread_chat_id,
                            const char *const *user_ids, size_t n,
                            cliq_error *err)
{
  if (n == 0)
    return 0;
  if (!user_ids)
    return cliq_fail(err, EINVAL, "no user ids");
  json_t *ids = json_array();
  for (size_t i = 0; ids && i < n; i++) {
    if (bad_arg(user_ids[i])) {
      json_decref(ids);
      return cliq_fail(err, EINVAL, "empty user id");
    }
    if (json_array_append_new(ids, json_string(user_ids[i])) < 0) {
      json_decref(ids);
      ids = NULL;
    }
  }
  json_t *body = ids ? json_pack("{s:o}", "user_ids", ids) : NULL;
  if (!body)
    return path_oom(err);
  int r = simple_call(c, api, prio, method, "/api/v3/threads/", thread_chat_id,
                      "/followers", body, err);
  json_decref(body);
  return r;
}

int cliq_add_followers(cliq_client *c, enum cliq_priority prio,
                       const char *thread_chat_id, const char *const *user_ids,
                       size_t n, cliq_error *err)
{
  ERR_LOCAL(err);
  return followers_change(c, CLIQ_API_FOLLOWERS_ADD, prio, "POST",
                          thread_chat_id, user_ids, n, err);
}

int cliq_remove_followers(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id,
                          const char *const *user_ids, size_t n,
                          cliq_error *err)
{
  ERR_LOCAL(err);
  /* A DELETE with a body, as the reference documents. */
  return followers_change(c, CLIQ_API_FOLLOWERS_REMOVE, prio, "DELETE",
                          thread_chat_id, user_ids, n, err);
}

int cliq_follow(cliq_client *c, enum cliq_priority prio,
                const char *thread_chat_id, cliq_error *err)
{
  ERR_LOCAL(err);
  return simple_call(c, CLIQ_API_THREADS_FOLLOW, prio, "POST",
                     "/api/v3/threads/", thread_chat_id, "/follow", NULL, err);
}

int cliq_unfollow(cliq_client *c, enum cliq_priority prio,
                  const char *thread_chat_id, cliq_error *err)
{
  ERR_LOCAL(err);
  return simple_call(c, CLIQ_API_THREADS_UNFOLLOW, prio, "POST",
                     "/api/v3/threads/", thread_chat_id, "/unfollow", NULL, err);
}

int cliq_set_thread_state(cliq_client *c, enum cliq_priority prio,
                          const char *thread_chat_id, const char *action,
                          cliq_error *err)
{
  ERR_LOCAL(err);
  static const char *const actions[] = {"close", "reopen", "follow", "unfollow"};
  bool known = false;
  for (size_t i = 0; action && i < sizeof actions / sizeof *actions; i++)
    known |= strcmp(action, actions[i]) == 0;
  if (!known)
    return cliq_fail(err, EINVAL, "unknown thread action \"%s\"",
                      action ? action : "");
  json_t *body = json_pack("{s:s}", "action", action);
  if (!body)
    return path_oom(err);
  int r = simple_call(c, CLIQ_API_THREADS_UPDATE, prio, "PUT",
                      "/api/v3/threads/", thread_chat_id, "", body, err);
  json_decref(body);
  return r;
}

int cliq_leave(cliq_client *c, enum cliq_priority prio, const char *chat_id,
               cliq_error *err)
{
  ERR_LOCAL(err);
  return simple_call(c, CLIQ_API_CHATS_LEAVE, prio, "POST", "/api/v3/chats/",
                     chat_id, "/leave", NULL, err);
}

int cliq_mute(cliq_client *c, enum cliq_priority prio, const char *chat_id,
              cliq_error *err)
{
  ERR_LOCAL(err);
  return simple_call(c, CLIQ_API_CHATS_MUTE, prio, "POST", "/api/v3/chats/",
                     chat_id, "/mute", NULL, err);
}

int cliq_unmute(cliq_client *c, enum cliq_priority prio, const char *chat_id,
                cliq_error *err)
{
  ERR_LOCAL(err);
  return simple_call(c, CLIQ_API_CHATS_UNMUTE, prio, "POST", "/api/v3/chats/",
                     chat_id, "/unmute", NULL, err);
}

/* POSTs a message body: success with the id when the server gave one (204
 * has none).  A 2xx with a garbled body is EIO: the outcome is unknown. */
static int post_message(cliq_client *c, enum cliq_priority prio,
                        const char *pre, const char *id, json_t *body,
                        char **message_id_out, cliq_error *err)
{
  if (message_id_out)
    *message_id_out = NULL;
  char *path = build_path(pre, id, "/messages", NULL);
  if (!path)
    return path_oom(err);
  json_t *reply = NULL;
  int r = cliq__call(c, CLIQ_API_MESSAGES_POST, prio, "POST", path, NULL, body,
                     &reply, err);
  if (r == 0 && message_id_out)
    *message_id_out = cliq__posted_message_id(reply);
  json_decref(reply);
  free(path);
  return r;
}

static int check_text(const char *text, cliq_error *err)
{
  if (bad_arg(text))
    return cliq_fail(err, EINVAL, "empty message text");
  return 0;
}

int cliq_post_channel_message(cliq_client *c, enum cliq_priority prio,
                              const char *channel_id, const char *text,
                              char **message_id_out, cliq_error *err)
{
  ERR_LOCAL(err);
  if (message_id_out)
    *message_id_out = NULL;
  if (bad_arg(channel_id))
    return cliq_fail(err, EINVAL, "no channel id");
  int r = check_text(text, err);
  if (r < 0)
    return r;
  json_t *body = json_pack("{s:s,s:b}", "text", text, "sync_message", 1);
  if (!body)
    return cliq_fail(err, EINVAL, "message text is not valid UTF-8");
  r = post_message(c, prio, "/api/v3/channels/", channel_id, body,
                   message_id_out, err);
  json_decref(body);
  return r;
}

int cliq_reply(cliq_client *c, enum cliq_priority prio,
               const char *thread_chat_id, const char *text,
               char **message_id_out, cliq_error *err)
{
  ERR_LOCAL(err);
  if (message_id_out)
    *message_id_out = NULL;
  if (bad_arg(thread_chat_id))
    return cliq_fail(err, EINVAL, "no thread chat id");
  int r = check_text(text, err);
  if (r < 0)
    return r;
  json_t *body = json_pack("{s:s,s:b}", "text", text, "sync_message", 1);
  if (!body)
    return cliq_fail(err, EINVAL, "message text is not valid UTF-8");
  r = post_message(c, prio, "/api/v3/chats/", thread_chat_id, body,
                   message_id_out, err);
  json_decref(body);
  return r;
}

/* The thread grown from parent_id: its chat id from the parent message's
 * thread_information, else from the channel's thread list. */
static int find_thread_chat_id(cliq_client *c, enum cliq_priority prio,
                               const char *channel_id,
                               const char *channel_chat_id,
                               const char *parent_id, char **out,
                               cliq_error *err)
{
  cliq_message parent;
  int r = cliq_get_message(c, prio, channel_chat_id, parent_id, &parent, err);
  if (r == 0 && parent.thread_chat_id) {
    *out = strdup(parent.thread_chat_id);
    cliq_message_clear(&parent);
    return *out ? 0 : path_oom(err);
  }
  if (r == 0)
    cliq_message_clear(&parent);
  if (r == -EAGAIN)
    return r;

  cliq_thread_list threads;
  r = cliq_list_threads(c, prio, channel_id, &threads, err);
  if (r < 0)
    return r;
  r = cliq_fail(err, EIO, "thread of message %s not found after creating it",
                 parent_id);
  for (size_t i = 0; i < threads.count; i++) {
    if (strcmp(threads.items[i].thread_message_id, parent_id) == 0) {
      *out = strdup(threads.items[i].chat_id);
      memset(err, 0, sizeof *err);
      r = *out ? 0 : path_oom(err);
      break;
    }
  }
  cliq_thread_list_clear(&threads);
  return r;
}

int cliq_create_thread(cliq_client *c, enum cliq_priority prio,
                       const char *channel_id, const char *channel_chat_id,
                       const char *parent_message_id, const char *title,
                       const char *text, char **thread_chat_id_out,
                       char **message_id_out, cliq_error *err)
{
  ERR_LOCAL(err);
  if (thread_chat_id_out)
    *thread_chat_id_out = NULL;
  if (message_id_out)
    *message_id_out = NULL;
  if (bad_arg(channel_id) || bad_arg(channel_chat_id) ||
      bad_arg(parent_message_id) || bad_arg(title))
    return cliq_fail(err, EINVAL,
                      "channel id, channel chat id, parent message id and "
                      "title are needed");
  int r = check_text(text, err);
  if (r < 0)
    return r;
  char *parent = cliq_normalize_message_id(parent_message_id);
  if (!parent)
    return path_oom(err);
  char *message_id = NULL, *thread_chat_id = NULL;
  json_t *body = json_pack("{s:s,s:s,s:s,s:b,s:b}", "text", text,
                           "thread_message_id", parent, "thread_title", title,
                           "post_in_parent", 0, "sync_message", 1);
  if (!body) {
    r = cliq_fail(err, EINVAL, "title or text is not valid UTF-8");
    goto out;
  }
  r = post_message(c, prio, "/api/v3/channels/", channel_id, body, &message_id,
                   err);
  if (r < 0)
    goto out;
  r = find_thread_chat_id(c, prio, channel_id, channel_chat_id, parent,
                          &thread_chat_id, err);
  if (r < 0) {
    char why[sizeof err->message];
    memcpy(why, err->message, sizeof why);
    snprintf(err->message, sizeof err->message,
             "thread created, but its chat id was not found: %.200s", why);
  }
  if (thread_chat_id_out) {
    *thread_chat_id_out = thread_chat_id;
    thread_chat_id = NULL;
  }
  /* Filled even when the lookup failed: the message was posted. */
  if (message_id_out) {
    *message_id_out = message_id;
    message_id = NULL;
  }
out:
  json_decref(body);
  free(parent);
  free(message_id);
  free(thread_chat_id);
  return r;
}
