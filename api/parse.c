/* api/parse.c: Cliq JSON -> typed structs.  Pure functions, no I/O.
 *
 * Tolerant of every variant the reference documents; unknown fields are
 * ignored.  Required fields that are missing or of the wrong type give -EIO
 * with a message; nothing here trusts the shape of its input.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

/* 9999-12-31T23:59:59.999Z: anything beyond is not a Cliq time. */
#define MAX_TIME_MS INT64_C(253402300799999)

/* ---- small helpers ----------------------------------------------------- */

char *cliq__json_id(json_t *v)
{
  if (json_is_string(v) && json_string_length(v) > 0)
    return strdup(json_string_value(v));
  if (json_is_integer(v)) {
    char *s = NULL;
    if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
      return NULL;
    return s;
  }
  return NULL;
}

static const char *str_of(json_t *obj, const char *key)
{
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *dup_or(const char *s, const char *dflt, bool *oom)
{
  char *d = strdup(s ? s : dflt);
  if (!d)
    *oom = true;
  return d;
}

/* Integer, real or numeric string (total_message_count is a string). */
static int64_t int_of(json_t *v, int64_t dflt)
{
  if (json_is_integer(v))
    return json_integer_value(v);
  if (json_is_real(v)) {
    double d = json_real_value(v);
    return (isfinite(d) && fabs(d) < 9e18) ? (int64_t)d : dflt;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno == 0 && end != s && *end == '\0')
      return n;
  }
  return dflt;
}

static bool bool_of(json_t *v, bool dflt)
{
  if (json_is_boolean(v))
    return json_is_true(v);
  if (json_is_string(v))
    return strcasecmp(json_string_value(v), "true") == 0;
  if (json_is_integer(v))
    return json_integer_value(v) != 0;
  return dflt;
}

/* ---- time -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char **p, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    char ch = (*p)[i];
    if (ch < '0' || ch > '9')
      return false;
    v = v * 10 + (ch - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool leap(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* YYYY-MM-DD('T'|' ')hh:mm[:ss[(.|,)fff…]][Z|±hh[:]mm|±hh]; no zone = UTC. */
static int parse_iso8601(const char *s, int64_t *ms)
{
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int year, mon, day, hh, mm, ss = 0, frac_ms = 0;
  const char *p = s;
  if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) ||
      *p++ != '-' || !digits(&p, 2, &day))
    return -EIO;
  if (*p != 'T' && *p != 't' && *p != ' ')
    return -EIO;
  p++;
  if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mm))
    return -EIO;
  if (*p == ':') {
    p++;
    if (!digits(&p, 2, &ss))
      return -EIO;
    if (*p == '.' || *p == ',') {
      p++;
      int n = 0;
      while (*p >= '0' && *p <= '9') {
        if (n < 3)
          frac_ms = frac_ms * 10 + (*p - '0');
        n++;
        p++;
      }
      if (n == 0)
        return -EIO;
      for (; n < 3; n++)
        frac_ms *= 10;
    }
  }
  int offset_min = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int oh, om = 0;
    if (!digits(&p, 2, &oh))
      return -EIO;
    if (*p == ':')
      p++;
    if (*p >= '0' && *p <= '9' && !digits(&p, 2, &om))
      return -EIO;
    if (oh > 23 || om > 59)
      return -EIO;
    offset_min = sign * (oh * 60 + om);
  }
  if (*p != '\0')
    return -EIO;
  if (mon < 1 || mon > 12 || day < 1 || hh > 23 || mm > 59 || ss > 60)
    return -EIO;
  int dim = mdays[mon - 1] + (mon == 2 && leap(year));
  if (day > dim)
    return -EIO;
  int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
  int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
  int64_t v = secs * 1000 + frac_ms;
  if (v < 0 || v > MAX_TIME_MS)
    return -EIO;
  *ms = v;
  return 0;
}

int cliq_parse_time(json_t *value, int64_t *ms)
{
  if (json_is_integer(value)) {
    json_int_t v = json_integer_value(value);
    if (v < 0 || v > MAX_TIME_MS)
      return -EIO;
    *ms = v;
    return 0;
  }
  if (json_is_real(value)) {
    double d = json_real_value(value);
    if (!isfinite(d) || d < 0 || d > (double)MAX_TIME_MS)
      return -EIO;
    *ms = (int64_t)d;
    return 0;
  }
  if (!json_is_string(value))
    return -EIO;
  const char *s = json_string_value(value);
  size_t n = strlen(s);
  if (n == 0)
    return -EIO;
  if (strspn(s, "0123456789") == n) {
    if (n > 15) /* more digits than MAX_TIME_MS has */
      return -EIO;
    int64_t v = strtoll(s, NULL, 10);
    if (v > MAX_TIME_MS)
      return -EIO;
    *ms = v;
    return 0;
  }
  return parse_iso8601(s, ms);
}

/* ---- ids --------------------------------------------------------------- */

char *cliq_normalize_message_id(const char *id)
{
  if (!id)
    return NULL;
  char *out = malloc(strlen(id) + 1);
  if (!out)
    return NULL;
  char *o = out;
  for (const char *p = id; *p;) {
    if (*p == ' ' || *p == '+') {
      *o++ = '_';
      p++;
    } else if (p[0] == '%' && p[1] == '2' && p[2] == '0') {
      *o++ = '_';
      p += 3;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return out;
}

/* ---- error bodies ------------------------------------------------------ */

static void copy_field(char *dst, size_t cap, json_t *v)
{
  if (json_is_string(v))
    snprintf(dst, cap, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(dst, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
}

void cliq_parse_error_body(const char *body, size_t len, cliq_error *err)
{
  if (!err)
    return;
  err->code[0] = '\0';
  err->message[0] = '\0';
  if (!body || len == 0)
    return;
  json_t *j = cliq__json_load(body, len, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return;
  }
  json_t *code = json_object_get(j, "code");
  json_t *message = json_object_get(j, "message");
  json_t *error = json_object_get(j, "error");
  if (json_is_string(code) || json_is_integer(code)) {
    /* {"code":"…","message":"…"} */
    copy_field(err->code, sizeof err->code, code);
    copy_field(err->message, sizeof err->message, message);
  } else if (json_is_object(error)) {
    /* {"error":{"code":"…","message":"…"}} */
    copy_field(err->code, sizeof err->code, json_object_get(error, "code"));
    json_t *m = json_object_get(error, "message");
    copy_field(err->message, sizeof err->message, m ? m : message);
  } else if (json_is_string(message)) {
    /* {"message":"…"} */
    copy_field(err->message, sizeof err->message, message);
  } else if (json_is_string(error)) {
    /* OAuth: {"error":"invalid_client_secret"}, or its throttle answer
     * {"error":"Access Denied","error_description":"You have made too many
     * requests continuously. …"}, which we name as the throttle it is so
     * that cliq_is_throttle() and the governor see it. */
    json_t *desc = json_object_get(j, "error_description");
    copy_field(err->code, sizeof err->code, error);
    copy_field(err->message, sizeof err->message, desc);
    if (json_is_string(desc) &&
        strcasestr(json_string_value(desc), "too many requests"))
      snprintf(err->code, sizeof err->code, "rate_limit_exceeded");
  }
  json_decref(j);
}

/* ---- results ----------------------------------------------------------- */

static int parse_fail(cliq_error *err, const char *what, const char *why)
{
  return cliq_fail(err, EIO, "unexpected reply: %s %s", what, why);
}

int cliq_parse_user(json_t *json, cliq_user *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  if (!json_is_object(json))
    return parse_fail(err, "user", "is not an object");
  json_t *id = json_object_get(json, "user_id");
  if (!id)
    id = json_object_get(json, "id");
  out->user_id = cliq__json_id(id);
  if (!out->user_id)
    return parse_fail(err, "user", "has no user_id");
  bool oom = false;
  const char *email = str_of(json, "email_id");
  out->email_id = dup_or(email ? email : str_of(json, "email"), "", &oom);
  out->name = dup_or(str_of(json, "name"), "", &oom);
  if (oom) {
    free(out->user_id);
    free(out->email_id);
    free(out->name);
    memset(out, 0, sizeof *out);
    return cliq_fail(err, ENOMEM, "out of memory");
  }
  return 0;
}

void cliq_user_clear(cliq_user *user)
{
  if (!user)
    return;
  free(user->user_id);
  free(user->email_id);
  free(user->name);
  memset(user, 0, sizeof *user);
}

void cliq_user_list_clear(cliq_user_list *list)
{
  if (!list)
    return;
  for (size_t i = 0; i < list->count; i++)
    cliq_user_clear(&list->items[i]);
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

static int64_t time_of(json_t *v)
{
  int64_t ms = 0;
  return cliq_parse_time(v, &ms) == 0 ? ms : 0;
}

int cliq_parse_channel(json_t *json, cliq_channel *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  if (!json_is_object(json))
    return parse_fail(err, "channel", "is not an object");
  bool oom = false;
  out->channel_id = cliq__json_id(json_object_get(json, "channel_id"));
  out->chat_id = cliq__json_id(json_object_get(json, "chat_id"));
  const char *unique = str_of(json, "unique_name");
  const char *name = str_of(json, "name");
  int r = 0;
  if (!out->channel_id) {
    r = parse_fail(err, "channel", "has no channel_id");
    goto out;
  }
  if (!out->chat_id) {
    r = parse_fail(err, "channel", "has no chat_id");
    goto out;
  }
  if ((!unique || !*unique) && (!name || !*name)) {
    r = parse_fail(err, "channel", "has neither unique_name nor name");
    goto out;
  }
  out->unique_name = dup_or(unique && *unique ? unique : name, "", &oom);
  out->name = dup_or(name && *name ? name : unique, "", &oom);
  out->description = dup_or(str_of(json, "description"), "", &oom);
  out->participant_count = int_of(json_object_get(json, "participant_count"), 0);
  json_t *last = json_object_get(json, "last_message_info");
  out->last_message_ms = time_of(json_object_get(last, "time"));
  if (oom)
    r = cliq_fail(err, ENOMEM, "out of memory");
  else
    out->raw = json_incref(json);
out:
  if (r < 0)
    cliq_channel_clear(out);
  return r;
}

void cliq_channel_clear(cliq_channel *ch)
{
  if (!ch)
    return;
  free(ch->channel_id);
  free(ch->chat_id);
  free(ch->unique_name);
  free(ch->name);
  free(ch->description);
  json_decref(ch->raw);
  memset(ch, 0, sizeof *ch);
}

void cliq_channel_list_clear(cliq_channel_list *list)
{
  if (!list)
    return;
  for (size_t i = 0; i < list->count; i++)
    cliq_channel_clear(&list->items[i]);
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

/* thread_state at top level, or under thread_state_info /
 * thread_state_information (main-message endpoint). */
static cliq_thread_state state_of(json_t *json)
{
  json_t *v = json_object_get(json, "thread_state");
  if (!json_is_string(v))
    v = json_object_get(json_object_get(json, "thread_state_info"), "thread_state");
  if (!json_is_string(v))
    v = json_object_get(json_object_get(json, "thread_state_information"),
                        "thread_state");
  if (!json_is_string(v))
    v = json_object_get(json_object_get(json, "thread_state_info"), "state");
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (strcasecmp(s, "closed") == 0 || strcasecmp(s, "close") == 0)
      return CLIQ_THREAD_CLOSED;
  }
  return CLIQ_THREAD_OPEN;
}

int cliq_parse_thread(json_t *json, cliq_thread *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  if (!json_is_object(json))
    return parse_fail(err, "thread", "is not an object");
  bool oom = false;
  int r = 0;
  out->chat_id = cliq__json_id(json_object_get(json, "chat_id"));
  if (!out->chat_id) {
    r = parse_fail(err, "thread", "has no chat_id");
    goto out;
  }
  const char *parent = str_of(json, "parent_chat_id");
  if (parent && *parent) {
    out->parent_chat_id = dup_or(parent, "", &oom);
  } else {
    /* "<parent chat id>-T-<n>" carries the parent. */
    const char *t = strstr(out->chat_id, "-T-");
    out->parent_chat_id = t ? strndup(out->chat_id, (size_t)(t - out->chat_id))
                            : strdup("");
    oom |= !out->parent_chat_id;
  }
  char *tmid = cliq__json_id(json_object_get(json, "thread_message_id"));
  out->thread_message_id = tmid ? cliq_normalize_message_id(tmid) : strdup("");
  oom |= !out->thread_message_id;
  free(tmid);
  out->title = dup_or(str_of(json, "title"), "", &oom);
  out->state = state_of(json);
  out->follower_count = int_of(json_object_get(json, "follower_count"), 0);
  out->is_follower = bool_of(json_object_get(json, "is_follower"), false);
  json_t *last = json_object_get(json, "last_message_information");
  if (!last)
    last = json_object_get(json, "last_message_info");
  out->last_message_ms = time_of(json_object_get(last, "time"));
  out->message_count = int_of(json_object_get(json, "message_count"), -1);
  if (oom)
    r = cliq_fail(err, ENOMEM, "out of memory");
  else
    out->raw = json_incref(json);
out:
  if (r < 0)
    cliq_thread_clear(out);
  return r;
}

void cliq_thread_clear(cliq_thread *t)
{
  if (!t)
    return;
  free(t->chat_id);
  free(t->parent_chat_id);
  free(t->thread_message_id);
  free(t->title);
  json_decref(t->raw);
  memset(t, 0, sizeof *t);
}

void cliq_thread_list_clear(cliq_thread_list *list)
{
  if (!list)
    return;
  for (size_t i = 0; i < list->count; i++)
    cliq_thread_clear(&list->items[i]);
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

/* What a line renderer shows: the text of a text message; "[file: name]",
 * "[image: name]" (plus a comment, if any) for attachments; "[<type>]" or
 * "[<type>] text" for the rest. */
static char *render_text(const char *type, json_t *json)
{
  json_t *content = json_object_get(json, "content");
  const char *text = str_of(content, "text");
  if (!text && json_is_string(content))
    text = json_string_value(content);
  if (!text)
    text = str_of(json, "text");
  if (strcmp(type, "text") == 0)
    return strdup(text ? text : "");

  json_t *file = json_object_get(content, "file");
  if (!file)
    file = json_object_get(json, "file");
  const char *name = str_of(file, "name");
  if (!name)
    name = str_of(content, "name");
  if (!name)
    name = str_of(content, "file_name");
  const char *comment = str_of(content, "comment");
  if (!comment)
    comment = text;
  char *out = NULL;
  int n = asprintf(&out, "[%s%s%s]%s%s", type, name ? ": " : "", name ? name : "",
                   comment && *comment ? " " : "", comment ? comment : "");
  return n < 0 ? NULL : out;
}

int cliq_parse_message(json_t *json, cliq_message *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  if (!json_is_object(json))
    return parse_fail(err, "message", "is not an object");
  bool oom = false;
  int r = 0;
  char *raw_id = cliq__json_id(json_object_get(json, "id"));
  if (!raw_id) {
    r = parse_fail(err, "message", "has no id");
    goto out;
  }
  out->id = cliq_normalize_message_id(raw_id);
  free(raw_id);
  if (!out->id) {
    r = cliq_fail(err, ENOMEM, "out of memory");
    goto out;
  }
  if (cliq_parse_time(json_object_get(json, "time"), &out->time_ms) < 0) {
    r = cliq_fail(err, EIO, "unexpected reply: message %s has no valid time",
                   out->id);
    goto out;
  }
  const char *type = str_of(json, "type");
  out->type = dup_or(type && *type ? type : NULL, "text", &oom);
  json_t *sender = json_object_get(json, "sender");
  char *sender_id = cliq__json_id(json_object_get(sender, "id"));
  if (!sender_id)
    sender_id = cliq__json_id(json_object_get(json, "sender_id"));
  out->sender_id = sender_id ? sender_id : dup_or(NULL, "", &oom);
  const char *sender_name = str_of(sender, "name");
  out->sender_name = dup_or(sender_name ? sender_name : str_of(json, "sender_name"),
                            "", &oom);
  if (out->type) {
    out->text = render_text(out->type, json);
    oom |= !out->text;
  }
  json_t *thread_info = json_object_get(json, "thread_information");
  out->thread_messages = int_of(json_object_get(thread_info, "message_count"), -1);
  if (out->thread_messages < 0)
    out->thread_messages = -1;
  const char *thread_chat = str_of(thread_info, "chat_id");
  if (thread_chat && *thread_chat) {
    out->thread_chat_id = strdup(thread_chat);
    oom |= !out->thread_chat_id;
  }
  if (oom)
    r = cliq_fail(err, ENOMEM, "out of memory");
  else
    out->raw = json_incref(json);
out:
  if (r < 0)
    cliq_message_clear(out);
  return r;
}

void cliq_message_clear(cliq_message *m)
{
  if (!m)
    return;
  free(m->id);
  free(m->type);
  free(m->sender_id);
  free(m->sender_name);
  free(m->text);
  free(m->thread_chat_id);
  json_decref(m->raw);
  memset(m, 0, sizeof *m);
}

void cliq_message_list_clear(cliq_message_list *list)
{
  if (!list)
    return;
  for (size_t i = 0; i < list->count; i++)
    cliq_message_clear(&list->items[i]);
  free(list->items);
  list->items = NULL;
  list->count = 0;
}
