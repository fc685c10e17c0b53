/* Harness: a message object (cliq_parse_message, also inside {"data":{…}}
 * as the one-message and main-message answers carry it), a messages reply
 * (cliq__parse_message_list) and a post answer (cliq__posted_message_id). */
#include <errno.h>
#include <jansson.h>

#include "api/cliq.h"
#include "api/internal.h"
#include "fuzz_common.h"

/* 9999-12-31T23:59:59.999Z, the parsers' upper bound. */
#define LAST_MS INT64_C(253402300799999)

static void check_message(const cliq_message *m, json_t *json)
{
  FUZZ_CHECK(m->id && *m->id && fuzz_id_is_normal(m->id));
  FUZZ_CHECK(m->time_ms >= 0 && m->time_ms <= LAST_MS);
  FUZZ_CHECK(m->type && *m->type);
  FUZZ_CHECK(m->sender_id && m->sender_name);
  FUZZ_CHECK(m->text != NULL);
  FUZZ_CHECK(m->thread_chat_id == NULL || *m->thread_chat_id);
  FUZZ_CHECK(json == NULL || m->raw == json);
}

static void parse_one(json_t *json)
{
  cliq_message m;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = cliq_parse_message(json, &m, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);
  if (r == 0) {
    check_message(&m, json);
  } else {
    FUZZ_CHECK(r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(err.err == -r);
    FUZZ_CHECK(!m.id && !m.type && !m.sender_id && !m.sender_name && !m.text &&
               !m.thread_chat_id && !m.raw);
  }
  cliq_message_clear(&m);
}

/* The order cliq.h promises: by time, then id ("<ms>_<n>": shorter is
 * smaller), with no id twice. */
static int before(const cliq_message *a, const cliq_message *b)
{
  if (a->time_ms != b->time_ms)
    return a->time_ms < b->time_ms;
  size_t la = strlen(a->id), lb = strlen(b->id);
  if (la != lb)
    return la < lb;
  return strcmp(a->id, b->id) < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *json = json_loadb((const char *)data, size, 0, NULL);
  if (!json)
    return 0;

  parse_one(json);
  json_t *inner = json_object_get(json, "data");
  if (json_is_object(inner))
    parse_one(inner);

  cliq_message_list list;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = cliq__parse_message_list(json, &list, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);
  if (r == 0) {
    for (size_t i = 0; i < list.count; i++) {
      check_message(&list.items[i], NULL);
      if (i > 0)
        FUZZ_CHECK(before(&list.items[i - 1], &list.items[i]));
    }
  } else {
    FUZZ_CHECK(r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(list.items == NULL && list.count == 0);
  }
  cliq_message_list_clear(&list);

  char *posted = cliq__posted_message_id(json);
  FUZZ_CHECK(posted == NULL || fuzz_id_is_normal(posted));
  free(posted);

  json_decref(json);
  return 0;
}
