/* Harness: a write to `followers`, cut into lines as fs/writes.c does
 * (wr_follower_line per '\n'-terminated line, the last one at close).  cliqfs(1)
 * WRITING: "-ID" removes, otherwise the line's first field (up to a TAB or
 * space) is a user id or an email; blank lines are nothing. */
#include <errno.h>
#include <stdbool.h>

#include "fs/wrules.h"
#include "fuzz_common.h"

static bool space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static void check_line(const char *line, size_t len)
{
  char *id = (char *)"unset";
  bool remove = true;
  int r = wr_follower_line(line, len, &id, &remove);
  FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL || r == -ENOMEM);

  size_t a = 0, b = len;
  while (a < b && space(line[a]))
    a++;
  while (b > a && space(line[b - 1]))
    b--;
  if (a == b) {
    FUZZ_CHECK(r == 1 && id == NULL);
    return;
  }
  bool want_remove = line[a] == '-';
  if (want_remove) {
    a++;
    while (a < b && space(line[a]))
      a++;
    if (a == b) {
      FUZZ_CHECK(r == -EINVAL && id == NULL);
      return;
    }
  }
  size_t f = a;
  while (f < b && !space(line[f]))
    f++;
  if (r == -ENOMEM)
    return;
  if (memchr(line + a, '\0', f - a)) {
    /* No user id or email holds a NUL: the line is not one (cliqfs(1) WRITING: unknown
     * people fail with EINVAL), and must not be cut to what precedes it. */
    if (r == 0)
      fprintf(stderr, "field with a NUL byte accepted as \"%s\"\n", id);
    FUZZ_CHECK(r == -EINVAL);
    return;
  }
  FUZZ_CHECK(r == 0 && id != NULL);
  FUZZ_CHECK(remove == want_remove);
  for (const char *p = id; *p; p++)
    FUZZ_CHECK(!space(*p));
  /* The id is the first field as written, whole: a field cut short (at a
   * NUL byte, say) would name someone the user did not write. */
  if (strlen(id) != f - a || memcmp(id, line + a, f - a) != 0)
    fprintf(stderr, "field of %zu bytes gave an id of %zu bytes\n", f - a,
            strlen(id));
  FUZZ_CHECK(strlen(id) == f - a);
  FUZZ_CHECK(memcmp(id, line + a, f - a) == 0);
  free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* Exactly the bytes written, so that a read past the line is an ASan
   * report rather than a read of the next line. */
  const char *buf = (const char *)data;
  size_t start = 0;
  while (start < size) {
    const char *nl = memchr(buf + start, '\n', size - start);
    size_t len = nl ? (size_t)(nl - (buf + start)) : size - start;
    char *line = malloc(len ? len : 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, buf + start, len);
    check_line(line, len);
    free(line);
    start += len + 1;
  }
  return 0;
}
