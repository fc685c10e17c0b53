/* Harness: a thread object (cliq_parse_thread), a thread-details answer
 * ({"data":{…}}) and a list-threads reply (cliq__parse_thread_page). */
#include <errno.h>
#include <jansson.h>

#include "api/cliq.h"
#include "api/internal.h"
#include "fuzz_common.h"

static void check_thread(const cliq_thread *t, json_t *json)
{
  FUZZ_CHECK(t->chat_id && *t->chat_id);
  FUZZ_CHECK(t->parent_chat_id);
  FUZZ_CHECK(t->thread_message_id && fuzz_id_is_normal(t->thread_message_id));
  FUZZ_CHECK(t->title);
  FUZZ_CHECK(t->state == CLIQ_THREAD_OPEN || t->state == CLIQ_THREAD_CLOSED);
  FUZZ_CHECK(t->last_message_ms >= 0);
  FUZZ_CHECK(json == NULL || t->raw == json);
  /* "<parent>-T-<n>" without parent_chat_id: the parent is the prefix. */
  const char *mark = strstr(t->chat_id, "-T-");
  if (*t->parent_chat_id == '\0')
    FUZZ_CHECK(mark == NULL || mark == t->chat_id);
}

static void parse_one(json_t *json)
{
  cliq_thread t;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = cliq_parse_thread(json, &t, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);
  if (r == 0) {
    check_thread(&t, json);
  } else {
    FUZZ_CHECK(r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(err.err == -r);
    FUZZ_CHECK(!t.chat_id && !t.parent_chat_id && !t.thread_message_id &&
               !t.title && !t.raw);
  }
  cliq_thread_clear(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *json = json_loadb((const char *)data, size, 0, NULL);
  if (!json)
    return 0;

  parse_one(json);
  /* GET /threads/{id} wraps the thread in "data". */
  json_t *inner = json_object_get(json, "data");
  if (inner)
    parse_one(inner);

  cliq_thread_list list = {0};
  cliq_error err;
  for (int page = 0; page < 2; page++) {
    size_t before = list.count;
    memset(&err, 0, sizeof err);
    int r = cliq__parse_thread_page(json, &list, &err);
    FUZZ_CHECK_ERROR_STRINGS(&err);
    FUZZ_CHECK(r == 0 || r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(list.count >= before);
    for (size_t i = 0; i < list.count; i++)
      check_thread(&list.items[i], NULL);
    if (r < 0)
      break;
  }
  cliq_thread_list_clear(&list);
  FUZZ_CHECK(list.items == NULL && list.count == 0);

  json_decref(json);
  return 0;
}
