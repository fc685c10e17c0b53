/* Harness: one thread title from the server made a directory name
 * (names_safe_title).  Input: byte 0 = max_bytes, then "CHAT_ID\x1fTITLE"
 * (no \x1f: the whole rest is the title of chat id "CT_1_2-T-3").  Titles
 * and ids are the server's: both may hold anything a JSON string can. */
#include "fs/names.h"
#include "fuzz_names_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  size_t max_bytes = data[0];
  char *rest = fuzz_cstr(data + 1, size - 1);
  const char *chat_id = "CT_1_2-T-3";
  char *title = rest;
  char *sep = strchr(rest, '\x1f');
  if (sep) {
    *sep = '\0';
    chat_id = rest;
    title = sep + 1;
  }

  char *name = names_safe_title(title, chat_id, max_bytes);
  FUZZ_CHECK(name != NULL);
  /* max_bytes 0 still gets a name (the numeric id, cut to one byte). */
  fuzz_check_dir_name(name, max_bytes ? max_bytes : 1);
  free(name);

  name = names_safe_title(title, chat_id, NAMES_MAX_BYTES);
  FUZZ_CHECK(name != NULL);
  fuzz_check_dir_name(name, NAMES_MAX_BYTES);
  /* A title that is already a good name is kept as it is. */
  size_t tlen = strlen(title);
  bool plain = tlen > 0 && tlen <= NAMES_MAX_BYTES &&
               strcmp(title, ".") != 0 && strcmp(title, "..") != 0 &&
               !strchr(title, '/');
  for (size_t i = 0; plain && i < tlen;) {
    const unsigned char *s = (const unsigned char *)title + i;
    size_t n = fuzz_utf8_len(s);
    plain = n > 0 && !(n == 1 && (s[0] < 0x20 || s[0] == 0x7f)) &&
            !(n == 2 && s[0] == 0xc2 && s[1] <= 0x9f);
    i += n;
  }
  if (plain)
    FUZZ_CHECK(strcmp(name, title) == 0);
  free(name);

  FUZZ_CHECK(names_numeric_id(NULL) != NULL);
  const char *num = names_numeric_id(chat_id);
  FUZZ_CHECK(num >= chat_id && num <= chat_id + strlen(chat_id));
  free(rest);
  return 0;
}
