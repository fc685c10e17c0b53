/* Harness: what a user writes to `state` (wr_state_parse), against cliqfs(1)
 * "Writing": one word of close, reopen, closed, open, surrounding white
 * space ignored, anything else EINVAL.  The file is written in pieces (the
 * shell truncates first; `printf c; printf lose` is legal): every prefix of
 * an accepted write must be accepted while the file is still open. */
#include <errno.h>
#include <stdbool.h>

#include "fs/wrules.h"
#include "fuzz_common.h"

static bool space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* The documented rule written out plainly, for a complete write. */
static int reference(const char *buf, size_t len, bool *close)
{
  size_t a = 0, b = len;
  while (a < b && space(buf[a]))
    a++;
  while (b > a && space(buf[b - 1]))
    b--;
  if (a == b)
    return 1;
  static const struct { const char *word; bool close; } verbs[] = {
    { "close", true }, { "closed", true }, { "reopen", false }, { "open", false },
  };
  for (size_t k = 0; k < sizeof verbs / sizeof *verbs; k++) {
    if (strlen(verbs[k].word) == b - a && memcmp(buf + a, verbs[k].word, b - a) == 0) {
      *close = verbs[k].close;
      return 0;
    }
  }
  return -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *buf = (const char *)data;
  bool want_close = false, got_close = false;
  int want = reference(buf, size, &want_close);
  int got = wr_state_parse(buf, size, true, &got_close);
  if (got != want)
    fprintf(stderr, "final: got %d, want %d\n", got, want);
  FUZZ_CHECK(got == want);
  if (got == 0)
    FUZZ_CHECK(got_close == want_close);

  bool open_close = false;
  int open = wr_state_parse(buf, size, false, &open_close);
  FUZZ_CHECK(open == 0 || open == 1 || open == -EINVAL);
  if (want == 0)
    FUZZ_CHECK(open == 0 && open_close == want_close);
  if (open == -EINVAL)
    FUZZ_CHECK(want == -EINVAL);   /* refused early means refused for good */

  if (want == 0) {
    for (size_t cut = 0; cut < size; cut++) {
      if (cut > 64 && size - cut > 16)
        continue;   /* the middle of a long run of blanks adds nothing */
      bool c;
      int r = wr_state_parse(buf, cut, false, &c);
      if (r < 0)
        fprintf(stderr, "prefix of %zu bytes refused: %d\n", cut, r);
      FUZZ_CHECK(r >= 0);
    }
  }
  return 0;
}
