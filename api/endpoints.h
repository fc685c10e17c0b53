/* The Cliq API classes: one row per rate-limited API of the reference
 * (tests/emulator/REFERENCE.md).  Shared by the client (api/), the rate
 * governor (cache/) and the emulator (tests/emulator/) so that all three count
 * the same thing under the same name.
 *
 * X(ID, "name", limit, window_seconds, lock_seconds)
 * Limits are per user and per API; the window is a sliding window. */
#ifndef CLIQ_ENDPOINTS_H
#define CLIQ_ENDPOINTS_H

#define CLIQ_API_CLASSES(X)                                            \
  X(CHANNELS_LIST,      "channels.list",           30,  60, 300)      \
  X(CHANNELS_GET,       "channels.get",            30,  60, 300)      \
  X(THREADS_LIST,       "threads.list",            20,  60, 600)      \
  X(CHATS_MESSAGES,     "chats.messages",          15,  60, 600)      \
  X(MESSAGES_GET,       "messages.get",            30,  60, 300)      \
  X(MESSAGES_POST,      "messages.post",           20,  60, 600)      \
  X(THREADS_GET,        "threads.get",             20,  60, 300)      \
  X(THREADS_UPDATE,     "threads.update",          20,  60, 600)      \
  X(THREADS_MAIN,       "threads.main",            20,  60, 600)      \
  X(FOLLOWERS_GET,      "threads.followers.get",   20,  60, 600)      \
  X(FOLLOWERS_ADD,      "threads.followers.add",   20,  60, 600)      \
  X(FOLLOWERS_REMOVE,   "threads.followers.remove",20,  60, 600)      \
  X(NONFOLLOWERS,       "threads.nonfollowers",    20,  60, 600)      \
  X(THREADS_FOLLOW,     "threads.follow",          20,  60, 600)      \
  X(THREADS_UNFOLLOW,   "threads.unfollow",        20,  60, 600)      \
  X(CHATS_MEMBERS,      "chats.members",           20,  60, 600)      \
  X(CHATS_LEAVE,        "chats.leave",             20,  60, 600)      \
  X(CHATS_MUTE,         "chats.mute",              20,  60, 600)      \
  X(CHATS_UNMUTE,       "chats.unmute",            20,  60, 600)      \
  X(OAUTH_TOKEN,        "oauth.token",             10, 600, 600)

#define CLIQ_API_ENUM_(id, name, limit, window, lock) CLIQ_API_##id,
enum cliq_api { CLIQ_API_CLASSES(CLIQ_API_ENUM_) CLIQ_API_COUNT };
#undef CLIQ_API_ENUM_

struct cliq_api_info {
  const char *name;     /* e.g. "chats.messages" */
  int limit;            /* requests allowed per window */
  int window_s;         /* sliding window length, seconds (unscaled) */
  int lock_s;           /* lock period once exceeded, seconds (unscaled) */
};

/* Static table; never NULL for a valid id, NULL otherwise. */
const struct cliq_api_info *cliq_api_info(enum cliq_api api);
/* Returns the name of an API class ("?" for an invalid id).  Static storage. */
const char *cliq_api_name(enum cliq_api api);
/* Returns the id for a name, or -1 when the name is unknown. */
int cliq_api_from_name(const char *name);

#endif
