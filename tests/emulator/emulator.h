/* cliq-emulator internals: the organization model (org.c and its family,
 * whose private header is org_i.h), the built-in organizations (demo.c,
 * synthetic in org_synthetic.c) and the HTTP server (server.c and its
 * family, whose private header is server_i.h).
 *
 * Ownership: the org owns everything reachable from it.  Functions returning
 * json_t* return a new reference (caller decrefs).  Strings passed in are
 * borrowed and copied when kept.
 *
 * Locking: the org has no lock of its own; the server holds its state mutex
 * around every call into org.c.
 */
#ifndef CLIQ_EMULATOR_H
#define CLIQ_EMULATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_TEXT_MAX_CHARS 5000

struct emu_user {
  char *id;
  char *email;
  char *name;
};

/* A set of user indices (small; kept in insertion order). */
struct emu_uset {
  int *v;
  size_t n, cap;
};

struct emu_msg {
  char *id;              /* "<ms>_<n>" */
  int64_t time_ms;
  int sender;            /* index into org->users */
  char *text;            /* NULL for a file message */
  json_t *file;          /* file object ({"name":…}) for type "file", else NULL */
  int thread;            /* channel messages: index of the thread grown from it, -1 none */
};

/* A conversation: a channel's own messages or a thread's replies.  Messages
 * are sorted by time.  Synthetic chats hold `n_virtual` generated messages
 * (older than every stored one) whose bodies are made on demand. */
struct emu_chat {
  char *chat_id;
  struct emu_msg *msgs;
  size_t n, cap;
  size_t n_virtual;
  int64_t v_base_ms, v_step_ms;
  uint64_t v_key;
};

/* One message as the renderers see it, stored or generated. */
struct emu_msg_view {
  const char *id;
  int64_t time_ms;
  int sender;
  const char *text;      /* NULL for files */
  json_t *file;          /* borrowed */
  int thread;
  char id_buf[48];
  char text_buf[512];
};

struct emu_channel;

struct emu_thread {
  struct emu_chat chat;
  struct emu_channel *channel;
  int index;                 /* in channel->threads */
  char *thread_message_id;   /* "<ms>_<n>", a message of channel->chat */
  char *title;
  bool closed, muted, left;
  struct emu_uset followers;
  struct emu_uset members;
  int64_t created_ms;
};

struct emu_channel {
  char *channel_id;
  char *unique_name;
  char *name;
  char *description;
  bool joined, muted;
  struct emu_uset members;
  struct emu_chat chat;
  struct emu_thread **threads;
  size_t nthreads, capthreads;
  int64_t created_ms;
};

struct emu_org {
  struct emu_user *users;
  size_t nusers;
  int me;
  struct emu_channel **channels;
  size_t nchannels;
  uint64_t rng;              /* ids of new messages/threads */
  uint64_t seed;
};

/* ---- org.c ---- */
struct emu_org *emu_org_new(uint64_t seed);
void emu_org_free(struct emu_org *org);
/* Loads the --org format (PROTOCOL.md; org_file.c).  Returns NULL and fills
 * errbuf. */
struct emu_org *emu_org_from_json(json_t *root, uint64_t seed, char *errbuf,
                                  size_t errlen);
/* The --org format plus muted/left per thread and message_count per chat.
 * with_messages false leaves out the messages arrays. */
json_t *emu_org_to_json(struct emu_org *org, bool with_messages);
/* Synthetic org: channels x threads x messages per thread (org_synthetic.c). */
struct emu_org *emu_org_synthetic(int channels, int threads, int messages,
                                  uint64_t seed);
/* The built-in demo organization (demo.c). */
struct emu_org *emu_org_demo(uint64_t seed);
json_t *emu_demo_json(void);

int emu_user_find(struct emu_org *org, const char *id);
size_t emu_chat_count(const struct emu_chat *chat);
/* Fills view with message k (0 = oldest) of chat. */
void emu_chat_get(struct emu_org *org, struct emu_chat *chat, size_t k,
                  struct emu_msg_view *view);
/* Index of the message with this id (any separator), or -1. */
long emu_chat_find(struct emu_org *org, struct emu_chat *chat, const char *id);
/* First index with time >= t (count when none). */
size_t emu_chat_lower_bound(struct emu_org *org, struct emu_chat *chat,
                            int64_t t);
int64_t emu_chat_last_time(struct emu_org *org, struct emu_chat *chat);

/* Lookups; chat ids are exact. */
struct emu_channel *emu_find_channel_by_id(struct emu_org *org, const char *id);
struct emu_channel *emu_find_channel_by_chat(struct emu_org *org,
                                             const char *chat_id);
struct emu_channel *emu_find_channel_by_name(struct emu_org *org,
                                             const char *unique_name);
struct emu_thread *emu_find_thread(struct emu_org *org, const char *chat_id);

/* Appends a message now (time strictly after the chat's last one).  Returns
 * the stored message (valid until the chat changes). */
struct emu_msg *emu_chat_append(struct emu_org *org, struct emu_chat *chat,
                                int sender, const char *text);
/* Creates a thread from the channel message at index parent (which has none
 * yet).  Returns it. */
struct emu_thread *emu_thread_create(struct emu_org *org,
                                     struct emu_channel *ch, long parent,
                                     const char *title, int creator);

bool emu_uset_has(const struct emu_uset *s, int u);
void emu_uset_add(struct emu_uset *s, int u);
void emu_uset_del(struct emu_uset *s, int u);

/* "<ms>%20<n>", "<ms> <n>", "<ms>_<n>" -> "<ms>_<n>" into out. */
void emu_normalize_id(const char *in, char *out, size_t outlen);
/* Unicode code points in a valid UTF-8 string. */
size_t emu_utf8_chars(const char *s);
int64_t emu_now_ms(void);      /* the server's wall clock, epoch ms */
void emu_set_clock_offset_ms(int64_t ms);  /* server clock = machine's + ms */
int64_t emu_mono_ms(void);     /* monotonic */
uint64_t emu_splitmix(uint64_t *state);
void emu_iso8601(int64_t ms, char *buf, size_t len);

/* ---- JSON renderers (org_json.c) ---- */
enum emu_time_style { EMU_TIME_NUMBER, EMU_TIME_STRING, EMU_TIME_ISO };
json_t *emu_message_json(struct emu_org *org, struct emu_channel *ch,
                         struct emu_chat *chat, const struct emu_msg_view *v,
                         enum emu_time_style style);
json_t *emu_channel_json(struct emu_org *org, struct emu_channel *ch);
json_t *emu_thread_entry_json(struct emu_org *org, struct emu_thread *t);
json_t *emu_thread_details_json(struct emu_org *org, struct emu_thread *t);
json_t *emu_user_json(struct emu_org *org, int u);

/* ---- server.c ---- */
struct emu_config {
  double time_scale;          /* divides windows, locks, token lifetimes, chatter */
  int throttle_style;         /* 429 or 400 */
  bool static_token_enabled;
  const char *static_token;
  /* The control path (/_emulator/) asks for the static token too (set by
   * --token-file: a demo that other local users must not steer). */
  bool control_needs_token;
  const char *client_id, *client_secret, *refresh_token, *auth_code;
  double token_lifetime_s;    /* unscaled */
  double chatter_s;           /* unscaled mean interval; 0 = off */
  bool quiet;
};

struct emu_server;
/* Takes ownership of org.  cfg strings must outlive the server.  port 0 picks
 * a free one.  Returns NULL with errbuf filled. */
struct emu_server *emu_server_start(struct emu_org *org,
                                    const struct emu_config *cfg, int port,
                                    char *errbuf, size_t errlen);
int emu_server_port(const struct emu_server *s);
void emu_server_stop(struct emu_server *s);

#endif
