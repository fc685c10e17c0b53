/* tests/fuzz/fuzz_names_common.h: the rules a directory name must follow,
 * shared by the two names harnesses (cliqfs(1) THE TREE, names). */
#ifndef CLIQFS_TESTS_FUZZ_NAMES_COMMON_H
#define CLIQFS_TESTS_FUZZ_NAMES_COMMON_H

#include <stdbool.h>

#include "fuzz_common.h"

/* Length of the well-formed UTF-8 sequence at s, 0 when there is none. */
static inline size_t fuzz_utf8_len(const unsigned char *s)
{
  uint32_t cp;
  size_t n;
  if (s[0] < 0x80)
    return 1;
  if ((s[0] & 0xe0) == 0xc0) { n = 2; cp = s[0] & 0x1f; }
  else if ((s[0] & 0xf0) == 0xe0) { n = 3; cp = s[0] & 0x0f; }
  else if ((s[0] & 0xf8) == 0xf0) { n = 4; cp = s[0] & 0x07; }
  else return 0;
  for (size_t k = 1; k < n; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
  if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* One directory entry name: not empty, not "." or "..", no '/', no control
 * character (C0, DEL, C1), UTF-8, at most max_bytes. */
static inline void fuzz_check_dir_name(const char *name, size_t max_bytes)
{
  FUZZ_CHECK(name != NULL);
  size_t len = strlen(name);
  if (len == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
      strchr(name, '/') || len > max_bytes)
    fprintf(stderr, "bad directory name (%zu bytes): \"%s\"\n", len, name);
  FUZZ_CHECK(len > 0);
  FUZZ_CHECK(len <= max_bytes);
  FUZZ_CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
  FUZZ_CHECK(strchr(name, '/') == NULL);
  const unsigned char *s = (const unsigned char *)name;
  for (size_t i = 0; i < len;) {
    size_t n = fuzz_utf8_len(s + i);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(!(n == 1 && (s[i] < 0x20 || s[i] == 0x7f)));
    FUZZ_CHECK(!(n == 2 && s[i] == 0xc2 && s[i + 1] <= 0x9f));
    i += n;
  }
}

#endif
