/* cache/outbox_codec.c: one journal entry as a file: its JSON form, written
 * and fsync'd, read back. */
#include "cache/outbox_i.h"

/* ---- entries ---------------------------------------------------------------- */

void outbox_entry_clear(outbox_entry *entry)
{
  if (!entry)
    return;
  free(entry->target);
  json_decref(entry->payload);
  free(entry->last_error);
  free(entry->reason);
  memset(entry, 0, sizeof(*entry));
}

void outbox_entry_list_free(outbox_entry *items, size_t n)
{
  if (!items)
    return;
  for (size_t i = 0; i < n; i++)
    outbox_entry_clear(&items[i]);
  free(items);
}

int dup_or_null(const char *s, char **out)
{
  *out = NULL;
  if (!s)
    return 0;
  *out = strdup(s);
  return *out ? 0 : -ENOMEM;
}

/* Payloads are deep-copied in and out: callers may do what they like with
 * theirs, and no reference is shared between threads. */
int entry_copy(const outbox_entry *src, outbox_entry *dst)
{
  memset(dst, 0, sizeof(*dst));
  dst->id = src->id;
  dst->kind = src->kind;
  dst->created = src->created;
  dst->attempts = src->attempts;
  dst->attempted = src->attempted;
  dst->uncertain = src->uncertain;
  dst->failed_errno = src->failed_errno;
  dst->failed_at = src->failed_at;
  dst->payload = json_deep_copy(src->payload);
  if (!dst->payload || dup_or_null(src->target, &dst->target) ||
      dup_or_null(src->last_error, &dst->last_error) ||
      dup_or_null(src->reason, &dst->reason)) {
    outbox_entry_clear(dst);
    return -ENOMEM;
  }
  return 0;
}

static char *entry_text(const outbox_entry *e, bool failed)
{
  json_t *o = json_object();
  if (!o)
    return NULL;
  json_object_set_new(o, "version", json_integer(1));
  json_object_set_new(o, "id", json_integer((json_int_t)e->id));
  json_object_set_new(o, "kind", json_string(outbox_kind_name(e->kind)));
  json_object_set_new(o, "target", json_string(e->target));
  json_object_set(o, "payload", e->payload);
  json_object_set_new(o, "created", json_real(e->created));
  json_object_set_new(o, "attempts", json_integer(e->attempts));
  json_object_set_new(o, "attempted", json_real(e->attempted));
  json_object_set_new(o, "uncertain", json_boolean(e->uncertain));
  json_object_set_new(o, "last_error",
                      e->last_error ? json_string(e->last_error) : json_null());
  if (failed) {
    json_object_set_new(o, "failed_errno", json_integer(e->failed_errno));
    json_object_set_new(o, "reason", json_string(e->reason ? e->reason : ""));
    json_object_set_new(o, "failed_at", json_real(e->failed_at));
  }
  char *text = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
  json_decref(o);
  return text;
}

static const char *string_or_null(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Parses one entry file.  -EIO for anything that is not an entry of a kind
 * we know (such files are left alone). */
int entry_parse(const char *text, size_t len, uint64_t id,
                       outbox_entry *out)
{
  memset(out, 0, sizeof(*out));
  json_t *o = json_loadb(text, len, 0, NULL);
  int rc = -EIO;
  if (!json_is_object(o))
    goto out;
  json_t *jid = json_object_get(o, "id");
  int kind = outbox_kind_from_name(string_or_null(o, "kind"));
  const char *target = string_or_null(o, "target");
  json_t *payload = json_object_get(o, "payload");
  if (!json_is_integer(jid) || (uint64_t)json_integer_value(jid) != id ||
      kind < 0 || !target || !*target || !payload)
    goto out;
  out->id = id;
  out->kind = (outbox_kind)kind;
  out->created = json_number_value(json_object_get(o, "created"));
  out->attempts = (int)json_integer_value(json_object_get(o, "attempts"));
  out->attempted = json_number_value(json_object_get(o, "attempted"));
  out->uncertain = json_is_true(json_object_get(o, "uncertain"));
  out->failed_errno = (int)json_integer_value(json_object_get(o, "failed_errno"));
  out->failed_at = json_number_value(json_object_get(o, "failed_at"));
  out->payload = json_incref(payload);
  rc = -ENOMEM;
  if (dup_or_null(target, &out->target) ||
      dup_or_null(string_or_null(o, "last_error"), &out->last_error) ||
      dup_or_null(string_or_null(o, "reason"), &out->reason)) {
    outbox_entry_clear(out);
    goto out;
  }
  rc = 0;
out:
  json_decref(o);
  return rc;
}

char *entry_path(const char *dir, uint64_t id)
{
  char *p = NULL;
  if (asprintf(&p, "%s/%016" PRIu64 ".json", dir, id) < 0)
    return NULL;
  return p;
}

/* "0000000000000042.json" -> 42; 0 for any other name. */
uint64_t id_from_name(const char *name)
{
  size_t n = strlen(name);
  if (n != 16 + 5 || strcmp(name + 16, ".json") != 0)
    return 0;
  uint64_t id = 0;
  for (int i = 0; i < 16; i++) {
    if (name[i] < '0' || name[i] > '9')
      return 0;
    id = id * 10 + (uint64_t)(name[i] - '0');
  }
  return id;
}

int write_entry(const char *dir, const outbox_entry *e, bool failed)
{
  char *path = entry_path(dir, e->id);
  char *text = entry_text(e, failed);
  int rc = -ENOMEM;
  if (path && text)
    rc = statefile_write_atomic(path, text, strlen(text));
  free(path);
  free(text);
  return rc;
}
