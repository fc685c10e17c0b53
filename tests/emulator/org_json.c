/* The JSON shapes of the reference (tests/emulator/REFERENCE.md "Shapes"):
 * users, messages, channels and threads as the API answers them. */
#include "emulator.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- JSON shapes ---- */

json_t *emu_user_json(struct emu_org *org, int u)
{
  return json_pack("{s:s,s:s,s:s}", "user_id", org->users[u].id, "email_id",
                   org->users[u].email, "name", org->users[u].name);
}

static void id_with_space(const char *id, char *out, size_t len)
{
  /* The threads page renders message ids with a URL-encoded space. */
  const char *us = strchr(id, '_');
  if (!us)
    snprintf(out, len, "%s", id);
  else
    snprintf(out, len, "%.*s%%20%s", (int)(us - id), id, us + 1);
}

static json_t *thread_information(struct emu_org *org, struct emu_thread *th)
{
  return json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "chat_id", th->chat.chat_id,
                   "thread_message_id", th->thread_message_id, "title",
                   th->title, "message_count",
                   (json_int_t)emu_chat_count(&th->chat), "follower_count",
                   (json_int_t)th->followers.n, "is_follower",
                   emu_uset_has(&th->followers, org->me));
}

json_t *emu_message_json(struct emu_org *org, struct emu_channel *ch,
                         struct emu_chat *chat, const struct emu_msg_view *v,
                         enum emu_time_style style)
{
  json_t *time;
  char buf[64];
  switch (style) {
  case EMU_TIME_STRING:
    snprintf(buf, sizeof buf, "%" PRId64, v->time_ms);
    time = json_string(buf);
    break;
  case EMU_TIME_ISO:
    emu_iso8601(v->time_ms, buf, sizeof buf);
    time = json_string(buf);
    break;
  default:
    time = json_integer(v->time_ms);
  }
  const struct emu_user *u = &org->users[v->sender];
  json_t *content;
  if (v->file) {
    content = json_pack("{s:O,s:s}", "file", v->file, "comment", "");
  } else {
    content = json_pack("{s:s}", "text", v->text);
  }
  json_t *m = json_pack("{s:s,s:o,s:s,s:{s:s,s:s},s:o,s:b}", "id", v->id,
                        "time", time, "type", v->file ? "file" : "text",
                        "sender", "id", u->id, "name", u->name, "content",
                        content, "is_pinned", false);
  if (ch && chat == &ch->chat && v->thread >= 0)
    json_object_set_new(m, "thread_information",
                        thread_information(org, ch->threads[v->thread]));
  return m;
}

static json_t *last_message_info(struct emu_org *org, struct emu_chat *c,
                                 const char *type_key)
{
  size_t n = emu_chat_count(c);
  if (!n)
    return json_object();
  struct emu_msg_view v;
  emu_chat_get(org, c, n - 1, &v);
  const struct emu_user *u = &org->users[v.sender];
  char text[200];
  if (v.file)
    snprintf(text, sizeof text, "%s",
             json_string_value(json_object_get(v.file, "name"))
                 ? json_string_value(json_object_get(v.file, "name"))
                 : "file");
  else
    snprintf(text, sizeof text, "%.*s", 150, v.text);
  /* keep the cut at a UTF-8 boundary */
  size_t len = strlen(text);
  while (len && ((unsigned char)text[len - 1] & 0x80)) {
    size_t start = len - 1;
    while (start && ((unsigned char)text[start] & 0xC0) == 0x80)
      start--;
    unsigned char lead = (unsigned char)text[start];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - start >= need)
      break;
    text[start] = '\0';
    len = start;
  }
  return json_pack("{s:s,s:s,s:s,s:I,s:s}", "sender_id", u->id, "sender_name",
                   u->name, type_key, v.file ? "file" : "text", "time",
                   (json_int_t)v.time_ms, "text", text);
}

json_t *emu_channel_json(struct emu_org *org, struct emu_channel *ch)
{
  char created[64], modified[64], total[32];
  emu_iso8601(ch->created_ms, created, sizeof created);
  int64_t last = emu_chat_last_time(org, &ch->chat);
  emu_iso8601(last ? last : ch->created_ms, modified, sizeof modified);
  snprintf(total, sizeof total, "%zu", emu_chat_count(&ch->chat));
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:s,s:s,s:s,s:o}", "channel_id",
      ch->channel_id, "chat_id", ch->chat.chat_id, "unique_name",
      ch->unique_name, "name", ch->name, "description", ch->description,
      "level", "organization", "joined", ch->joined, "participant_count",
      (json_int_t)ch->members.n, "total_message_count", total,
      "creation_time", created, "last_modified_time", modified,
      "last_message_info", last_message_info(org, &ch->chat, "message_type"));
}

json_t *emu_thread_entry_json(struct emu_org *org, struct emu_thread *th)
{
  struct emu_channel *ch = th->channel;
  long p = emu_chat_find(org, &ch->chat, th->thread_message_id);
  struct emu_msg_view pv;
  emu_chat_get(org, &ch->chat, (size_t)(p < 0 ? 0 : p), &pv);
  const struct emu_user *ps = &org->users[pv.sender];
  char created[64];
  emu_iso8601(th->created_ms, created, sizeof created);
  const char *state = th->closed ? "closed" : "open";
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:I,s:b,s:{s:s,s:s},s:o,s:I,s:s}",
      "chat_id", th->chat.chat_id, "parent_chat_id", ch->chat.chat_id,
      "thread_message_id", th->thread_message_id, "title", th->title,
      "thread_state", state, "thread_state_info", "thread_state", state,
      "follower_count", (json_int_t)th->followers.n, "is_follower",
      emu_uset_has(&th->followers, org->me), "parent_message_sender", "id",
      ps->id, "name", ps->name, "last_message_information",
      last_message_info(org, &th->chat, "message_type"), "message_count",
      (json_int_t)emu_chat_count(&th->chat), "creation_time", created);
}

json_t *emu_thread_details_json(struct emu_org *org, struct emu_thread *th)
{
  char url[256], tmid[96];
  snprintf(url, sizeof url, "/api/v3/threads/%s", th->chat.chat_id);
  id_with_space(th->thread_message_id, tmid, sizeof tmid);
  return json_pack(
      "{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:I,s:b,s:b,s:s}}", "url", url, "type",
      "chat_thread", "data", "chat_id", th->chat.chat_id, "parent_chat_id",
      th->channel->chat.chat_id, "thread_message_id", tmid, "title", th->title,
      "follower_count", (json_int_t)th->followers.n, "is_follower",
      emu_uset_has(&th->followers, org->me), "parent_participant",
      emu_uset_has(&th->channel->members, org->me), "thread_state",
      th->closed ? "closed" : "open");
}
