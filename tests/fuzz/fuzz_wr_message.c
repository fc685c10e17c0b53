/* Harness: the bytes a user writes to `messages` (wr_utf8_check,
 * wr_utf8_chars, wr_message_len, wr_message_check), against an independent
 * decoder: UTF-8 as RFC 3629 defines it (no overlongs, no surrogates, nothing
 * above U+10FFFF).  While the file is open a sequence cut at the end must be
 * accepted when some continuation would make it valid (writes may split a
 * character), and every prefix of an accepted message must be accepted. */
#include <errno.h>
#include <stdbool.h>

#include "fs/wrules.h"
#include "fuzz_common.h"

/* Whether the sequence starting at s[0] (n of its `need` bytes present,
 * n < need means cut) is, or can still become, a valid code point. */
static bool seq_ok(const unsigned char *s, size_t n, size_t need)
{
  static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
  uint32_t lo, hi;
  uint32_t lead_bits = need == 2 ? 0x1f : need == 3 ? 0x0f : 0x07;
  lo = hi = s[0] & lead_bits;
  for (size_t k = 1; k < need; k++) {
    if (k < n) {
      if ((s[k] & 0xc0) != 0x80)
        return false;
      lo = (lo << 6) | (s[k] & 0x3f);
      hi = (hi << 6) | (s[k] & 0x3f);
    } else {
      lo = lo << 6;
      hi = (hi << 6) | 0x3f;
    }
  }
  /* Some code point in [lo, hi] must be a scalar value of this length. */
  if (hi < min_cp[need] || lo > 0x10ffff)
    return false;
  if (lo < min_cp[need])
    lo = min_cp[need];
  if (hi > 0x10ffff)
    hi = 0x10ffff;
  if (lo >= 0xd800 && hi <= 0xdfff)
    return false;
  return lo <= hi;
}

/* 0 and the number of code points, or -EILSEQ. */
static int reference(const unsigned char *s, size_t len, bool final,
                     size_t *chars)
{
  *chars = 0;
  for (size_t i = 0; i < len;) {
    size_t need = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2
                : (s[i] & 0xf0) == 0xe0 ? 3 : (s[i] & 0xf8) == 0xf0 ? 4 : 0;
    if (need == 0)
      return -EILSEQ;
    size_t have = len - i < need ? len - i : need;
    if (need > 1 && !seq_ok(s + i, have, need))
      return -EILSEQ;
    if (have < need && final)
      return -EILSEQ;
    (*chars)++;
    i += have;
  }
  return 0;
}

static void check(const char *buf, size_t len, bool final)
{
  size_t want_chars;
  int want = reference((const unsigned char *)buf, len, final, &want_chars);
  int got = wr_utf8_check(buf, len, final);
  if (got != want)
    fprintf(stderr, "utf8 (final=%d, %zu bytes): got %d, want %d\n", final,
            len, got, want);
  FUZZ_CHECK(got == want);
  if (want == 0)
    FUZZ_CHECK(wr_utf8_chars(buf, len) == want_chars);

  size_t mlen = wr_message_len(buf, len);
  FUZZ_CHECK(mlen == len || (mlen == len - 1 && buf[len - 1] == '\n'));
  int m = wr_message_check(buf, len, final);
  if (want < 0) {
    FUZZ_CHECK(m == want);
  } else {
    size_t mchars;
    FUZZ_CHECK(reference((const unsigned char *)buf, mlen, false, &mchars) == 0);
    FUZZ_CHECK(m == (mchars > WR_MAX_CHARS ? -EMSGSIZE : 0));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *buf = (const char *)data;
  check(buf, size, true);
  check(buf, size, false);

  /* A long message is a short one repeated: reach the 5000-character limit
   * without making libFuzzer's inputs huge. */
  if (size > 0 && size <= 64 && wr_utf8_check(buf, size, true) == 0) {
    size_t reps = WR_MAX_CHARS / size + 2;
    char *big = malloc(reps * size + 1);
    FUZZ_CHECK(big != NULL);
    for (size_t r = 0; r < reps; r++)
      memcpy(big + r * size, buf, size);
    big[reps * size] = '\n';
    check(big, reps * size + 1, true);
    check(big, reps * size, false);
    free(big);
  }

  if (wr_message_check(buf, size, true) == 0) {
    /* Written in two pieces cut anywhere: the first must pass at write. */
    for (size_t cut = 0; cut < size; cut++) {
      if (cut > 32 && size - cut > 8)
        continue;
      FUZZ_CHECK(wr_message_check(buf, cut, false) == 0);
    }
  }
  return 0;
}
