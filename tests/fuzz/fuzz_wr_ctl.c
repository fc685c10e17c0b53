/* Harness: a write to `ctl`, cut into lines as fs/writes.c does: complete lines
 * with partial=false, the unfinished last one with partial=true (it is
 * checked at every write so that a bad verb fails at write, as cliqfs(1) WRITING wants).
 * A verb written in pieces must never be refused before it is complete. */
#include <errno.h>
#include <stdbool.h>

#include "fs/wrules.h"
#include "fuzz_common.h"

static const char *const verbs[] = {
  "follow", "unfollow", "mute", "unmute", "leave", "close", "reopen",
};

static bool space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* cliqfs(1) WRITING: one verb per line, white space around it ignored. */
static int reference(const char *line, size_t len, const char **verb)
{
  size_t a = 0, b = len;
  while (a < b && space(line[a]))
    a++;
  while (b > a && space(line[b - 1]))
    b--;
  *verb = NULL;
  if (a == b)
    return 1;
  for (size_t k = 0; k < sizeof verbs / sizeof *verbs; k++)
    if (strlen(verbs[k]) == b - a && memcmp(line + a, verbs[k], b - a) == 0) {
      *verb = verbs[k];
      return 0;
    }
  return -EINVAL;
}

static int run(const char *line, size_t len, bool partial, char **verb)
{
  char *copy = malloc(len ? len : 1);   /* exact size: ASan sees overreads */
  FUZZ_CHECK(copy != NULL);
  memcpy(copy, line, len);
  *verb = (char *)"unset";
  int r = wr_ctl_line(copy, len, partial, verb);
  free(copy);
  FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL || r == -ENOMEM);
  FUZZ_CHECK((r == 0) == (*verb != NULL));
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *buf = (const char *)data;
  size_t start = 0;
  while (start < size) {
    const char *nl = memchr(buf + start, '\n', size - start);
    size_t len = nl ? (size_t)(nl - (buf + start)) : size - start;
    const char *line = buf + start;
    const char *want_verb;
    int want = reference(line, len, &want_verb);
    char *verb;
    int r = run(line, len, false, &verb);
    if (r != -ENOMEM) {
      if (r != want)
        fprintf(stderr, "line of %zu bytes: got %d, want %d\n", len, r, want);
      FUZZ_CHECK(r == want);
      if (r == 0)
        FUZZ_CHECK(strcmp(verb, want_verb) == 0);
    }
    if (r == 0)
      free(verb);
    /* Still being written: never refuse what may yet become a verb. */
    if (want == 0) {
      for (size_t cut = 0; cut <= len; cut++) {
        if (cut > 64 && len - cut > 16)
          continue;   /* the middle of a long run of blanks adds nothing */
        r = run(line, cut, true, &verb);
        FUZZ_CHECK(r >= 0 || r == -ENOMEM);
        if (r == 0)
          free(verb);
      }
    }
    if (!nl) {
      r = run(line, len, true, &verb);
      if (want == -EINVAL && r == 1) {
        /* Only a proper prefix of a verb may wait for more. */
        size_t a = 0;
        while (a < len && space(line[a]))
          a++;
        bool prefix = false;
        for (size_t k = 0; k < sizeof verbs / sizeof *verbs; k++)
          prefix |= strlen(verbs[k]) > len - a &&
                    memcmp(line + a, verbs[k], len - a) == 0;
        FUZZ_CHECK(prefix);
      }
      if (r == 0)
        free(verb);
    }
    start += len + 1;
  }
  return 0;
}
