/* Harness: a channel object (cliq_parse_channel) and a list-channels reply
 * (cliq__parse_channel_page), both fed the same JSON document. */
#include <errno.h>
#include <jansson.h>

#include "api/cliq.h"
#include "api/internal.h"
#include "fuzz_common.h"

static void check_channel(const cliq_channel *c, json_t *json)
{
  FUZZ_CHECK(c->channel_id && *c->channel_id);
  FUZZ_CHECK(c->chat_id && *c->chat_id);
  FUZZ_CHECK(c->unique_name && *c->unique_name);
  FUZZ_CHECK(c->name && *c->name);
  FUZZ_CHECK(c->description);
  FUZZ_CHECK(c->last_message_ms >= 0);
  FUZZ_CHECK(json == NULL || c->raw == json);
}

static void check_failed(const cliq_channel *c, const cliq_error *err, int r)
{
  FUZZ_CHECK(r == -EIO || r == -ENOMEM);
  FUZZ_CHECK(err->err == -r);
  FUZZ_CHECK(!c->channel_id && !c->chat_id && !c->unique_name && !c->name &&
             !c->description && !c->raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *json = json_loadb((const char *)data, size, 0, NULL);
  if (!json)
    return 0;

  cliq_channel ch;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = cliq_parse_channel(json, &ch, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);
  if (r == 0)
    check_channel(&ch, json);
  else
    check_failed(&ch, &err, r);
  cliq_channel_clear(&ch);

  /* A page appends to what the list holds; run it twice to cover that. */
  cliq_channel_list list = {0};
  for (int page = 0; page < 2; page++) {
    size_t before = list.count;
    memset(&err, 0, sizeof err);
    r = cliq__parse_channel_page(json, &list, &err);
    FUZZ_CHECK_ERROR_STRINGS(&err);
    FUZZ_CHECK(r == 0 || r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(list.count >= before);
    for (size_t i = 0; i < list.count; i++)
      check_channel(&list.items[i], NULL);
    if (r < 0)
      break;
  }
  cliq_channel_list_clear(&list);
  FUZZ_CHECK(list.items == NULL && list.count == 0);

  json_decref(json);
  return 0;
}
