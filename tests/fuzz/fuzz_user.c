/* Harness: a user object (cliq_parse_user) and the user-list replies
 * (cliq__parse_user_list) under the keys the calls use: "data" (followers,
 * non-followers) and "members". */
#include <errno.h>
#include <jansson.h>

#include "api/cliq.h"
#include "api/internal.h"
#include "fuzz_common.h"

static void check_user(const cliq_user *u)
{
  FUZZ_CHECK(u->user_id && *u->user_id);
  FUZZ_CHECK(u->email_id && u->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *json = json_loadb((const char *)data, size, 0, NULL);
  if (!json)
    return 0;

  cliq_user u;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = cliq_parse_user(json, &u, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);
  if (r == 0) {
    check_user(&u);
  } else {
    FUZZ_CHECK(r == -EIO || r == -ENOMEM);
    FUZZ_CHECK(err.err == -r);
    FUZZ_CHECK(!u.user_id && !u.email_id && !u.name);
  }
  /* cliq.h has no clear for a lone user: its strings are the caller's. */
  free(u.user_id);
  free(u.email_id);
  free(u.name);

  static const char *const keys[] = { "data", "members", "users" };
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    cliq_user_list list;
    memset(&err, 0, sizeof err);
    r = cliq__parse_user_list(json, keys[k], &list, &err);
    FUZZ_CHECK_ERROR_STRINGS(&err);
    if (r == 0) {
      for (size_t i = 0; i < list.count; i++)
        check_user(&list.items[i]);
    } else {
      FUZZ_CHECK(r == -EIO || r == -ENOMEM);
      FUZZ_CHECK(list.items == NULL && list.count == 0);
    }
    cliq_user_list_clear(&list);
  }

  json_decref(json);
  return 0;
}
