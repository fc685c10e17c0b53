/* api/answers.c: what Cliq's whole answers hold: list pages and lists
 * (a malformed entry is left out and counted, the rest kept), a single
 * object given bare or wrapped in "data", the message id of a post.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

static int grow(void **items, size_t *cap, size_t count, size_t size)
{
  if (count < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *n = realloc(*items, ncap * size);
  if (!n)
    return -ENOMEM;
  *items = n;
  *cap = ncap;
  return 0;
}

/* Removes later items whose key repeats an earlier one, keeping order.
 * O(n log n) through a sorted index. */
struct key_index {
  const char *key;
  size_t pos;
};

static int key_index_cmp(const void *a, const void *b)
{
  const struct key_index *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c)
    return c;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int dedupe(void *items, size_t *count, size_t size,
                  const char *(*key)(const void *item),
                  void (*clear)(void *item))
{
  size_t n = *count;
  if (n < 2)
    return 0;
  struct key_index *idx = malloc(n * sizeof *idx);
  bool *drop = calloc(n, sizeof *drop);
  if (!idx || !drop) {
    free(idx);
    free(drop);
    return -ENOMEM;
  }
  char *base = items;
  for (size_t i = 0; i < n; i++)
    idx[i] = (struct key_index){key(base + i * size), i};
  qsort(idx, n, sizeof *idx, key_index_cmp);
  for (size_t i = 1; i < n; i++)
    if (strcmp(idx[i].key, idx[i - 1].key) == 0)
      drop[idx[i].pos] = true;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (drop[i]) {
      clear(base + i * size);
      continue;
    }
    if (w != i)
      memcpy(base + w * size, base + i * size, size);
    w++;
  }
  *count = w;
  free(idx);
  free(drop);
  return 0;
}

/* ---- one kind of entry each ---------------------------------------------- */

struct entry_kind {
  size_t size;
  int (*parse)(json_t *json, void *out, cliq_error *err);
  const char *(*key)(const void *item);
  void (*clear)(void *item);
};

static int channel_parse(json_t *j, void *out, cliq_error *err)
{
  return cliq_parse_channel(j, out, err);
}
static const char *channel_key(const void *p)
{
  return ((const cliq_channel *)p)->channel_id;
}
static void channel_clear(void *p)
{
  cliq_channel_clear(p);
}
static const struct entry_kind channel_kind = {
  sizeof(cliq_channel), channel_parse, channel_key, channel_clear
};

static int thread_parse(json_t *j, void *out, cliq_error *err)
{
  return cliq_parse_thread(j, out, err);
}
static const char *thread_key(const void *p)
{
  return ((const cliq_thread *)p)->chat_id;
}
static void thread_clear(void *p)
{
  cliq_thread_clear(p);
}
static const struct entry_kind thread_kind = {
  sizeof(cliq_thread), thread_parse, thread_key, thread_clear
};

static int message_parse(json_t *j, void *out, cliq_error *err)
{
  return cliq_parse_message(j, out, err);
}
static const char *message_key(const void *p)
{
  return ((const cliq_message *)p)->id;
}
static void message_clear(void *p)
{
  cliq_message_clear(p);
}
static const struct entry_kind message_kind = {
  sizeof(cliq_message), message_parse, message_key, message_clear
};

static int user_parse(json_t *j, void *out, cliq_error *err)
{
  return cliq_parse_user(j, out, err);
}
static void user_clear(void *p)
{
  cliq_user_clear(p);
}
static const struct entry_kind user_kind = {
  sizeof(cliq_user), user_parse, NULL, user_clear
};

static int message_cmp(const void *a, const void *b)
{
  const cliq_message *x = a, *y = b;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  /* "<ms>_<n>": a shorter id is a smaller number. */
  size_t lx = strlen(x->id), ly = strlen(y->id);
  if (lx != ly)
    return lx < ly ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* ---- the one loop over a list's entries ---------------------------------- */

/* The array of reply under the first of names that holds one. */
static json_t *array_of(json_t *reply, const char *first, const char *second)
{
  json_t *arr = json_object_get(reply, first);
  if (!arr && second)
    arr = json_object_get(reply, second);
  return arr;
}

/* Appends arr's entries to *items (count, cap as given): one malformed
 * entry (-EIO from its parser) is left out, counted in *skipped with the
 * first reason kept in why, not the whole list: the rest is still worth
 * showing.  Another error stops it (what was appended stays). */
static int parse_entries(json_t *arr, const struct entry_kind *kind,
                         void **items, size_t *count, size_t *skipped,
                         char *why, size_t why_len, cliq_error *err)
{
  size_t cap = *count, i;
  json_t *item;
  json_array_foreach(arr, i, item) {
    if (grow(items, &cap, *count, kind->size) < 0)
      return cliq_fail(err, ENOMEM, "out of memory");
    cliq_error one = {0};
    int r = kind->parse(item, (char *)*items + *count * kind->size, &one);
    if (r == -EIO) {
      if ((*skipped)++ == 0)
        snprintf(why, why_len, "%s", one.message[0] ? one.message
                                                    : "malformed entry");
      continue;
    }
    if (r < 0) {
      if (err)
        *err = one;
      return r;
    }
    (*count)++;
  }
  return 0;
}

#define PARSE_ENTRIES(arr, kind, list, err)                                    \
  parse_entries((arr), (kind), (void **)&(list)->items, &(list)->count,       \
                &(list)->skipped, (list)->skipped_why,                         \
                sizeof (list)->skipped_why, (err))

/* ---- whole answers --------------------------------------------------------- */

int cliq__parse_channel_page(json_t *reply, cliq_channel_list *out,
                             cliq_error *err)
{
  json_t *arr = array_of(reply, "channels", "data");
  if (!json_is_array(arr))
    return cliq_fail(err, EIO, "unexpected reply: no channels array");
  return PARSE_ENTRIES(arr, &channel_kind, out, err);
}

int cliq__parse_thread_page(json_t *reply, cliq_thread_list *out,
                            cliq_error *err)
{
  json_t *arr = array_of(reply, "data", "threads");
  if (!json_is_array(arr))
    return cliq_fail(err, EIO, "unexpected reply: no thread data array");
  return PARSE_ENTRIES(arr, &thread_kind, out, err);
}

int cliq__parse_message_list(json_t *reply, cliq_message_list *out,
                             cliq_error *err)
{
  memset(out, 0, sizeof *out);
  json_t *arr = json_is_array(reply) ? reply : json_object_get(reply, "data");
  if (!json_is_array(arr))
    return cliq_fail(err, EIO, "unexpected reply: no message data array");
  int r = PARSE_ENTRIES(arr, &message_kind, out, err);
  if (r == 0 && dedupe(out->items, &out->count, sizeof *out->items,
                       message_key, message_clear) < 0)
    r = cliq_fail(err, ENOMEM, "out of memory");
  if (r == 0 && out->count > 1)
    qsort(out->items, out->count, sizeof *out->items, message_cmp);
  if (r < 0)
    cliq_message_list_clear(out);
  return r;
}

int cliq__parse_user_list(json_t *reply, const char *key, cliq_user_list *out,
                          cliq_error *err)
{
  memset(out, 0, sizeof *out);
  json_t *arr = array_of(reply, key, "data");
  if (!json_is_array(arr))
    return cliq_fail(err, EIO, "unexpected reply: no %s array", key);
  int r = PARSE_ENTRIES(arr, &user_kind, out, err);
  if (r < 0)
    cliq_user_list_clear(out);
  return r;
}

int cliq__dedupe_channels(cliq_channel_list *list)
{
  return dedupe(list->items, &list->count, sizeof *list->items, channel_key,
                channel_clear);
}

int cliq__dedupe_threads(cliq_thread_list *list)
{
  return dedupe(list->items, &list->count, sizeof *list->items, thread_key,
                thread_clear);
}

json_t *cliq__unwrap(json_t *reply, const char *must_have)
{
  json_t *data = json_object_get(reply, "data");
  if (json_is_object(data) && !json_object_get(reply, must_have))
    return data;
  return reply;
}

char *cliq__posted_message_id(json_t *reply)
{
  json_t *v = json_object_get(reply, "message_id");
  if (!v)
    v = json_object_get(json_object_get(reply, "data"), "message_id");
  if (!v)
    v = json_object_get(reply, "id");
  if (json_is_string(v) && json_string_length(v) > 0)
    return cliq_normalize_message_id(json_string_value(v));
  return cliq__json_id(v);
}
