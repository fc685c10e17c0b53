/* fs/wrules.c: the write rules checked without Cliq (wrules.h). */
#include "fs/wrules.h"
#include "cache/verbs.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the sequence a lead byte announces, 0 for a byte that cannot
 * start one. */
static size_t lead_len(unsigned char c)
{
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return 2;
  if (c >= 0xe0 && c <= 0xef)
    return 3;
  if (c >= 0xf0 && c <= 0xf4)
    return 4;
  return 0;
}

/* Whether the second byte is allowed after this lead (overlongs,
 * surrogates, > U+10FFFF excluded). */
static bool second_ok(unsigned char lead, unsigned char b)
{
  if ((b & 0xc0) != 0x80)
    return false;
  switch (lead) {
  case 0xe0: return b >= 0xa0;
  case 0xed: return b <= 0x9f;
  case 0xf0: return b >= 0x90;
  case 0xf4: return b <= 0x8f;
  default: return true;
  }
}

int wr_utf8_check(const char *buf, size_t len, bool final)
{
  const unsigned char *s = (const unsigned char *)buf;
  for (size_t i = 0; i < len;) {
    size_t n = lead_len(s[i]);
    if (n == 0)
      return -EILSEQ;
    for (size_t k = 1; k < n; k++) {
      if (i + k >= len)
        return final ? -EILSEQ : 0;   /* cut: the next write may finish it */
      bool ok = k == 1 ? second_ok(s[i], s[i + 1]) : (s[i + k] & 0xc0) == 0x80;
      if (!ok)
        return -EILSEQ;
    }
    i += n;
  }
  return 0;
}

size_t wr_utf8_chars(const char *buf, size_t len)
{
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)buf[i] & 0xc0) != 0x80)
      n++;
  return n;
}

size_t wr_message_len(const char *buf, size_t len)
{
  return len > 0 && buf[len - 1] == '\n' ? len - 1 : len;
}

int wr_message_check(const char *buf, size_t len, bool final)
{
  int r = wr_utf8_check(buf, len, final);
  if (r < 0)
    return r;
  if (wr_utf8_chars(buf, wr_message_len(buf, len)) > WR_MAX_CHARS)
    return -EMSGSIZE;
  return 0;
}

static bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static const char *const state_verbs[] = { "close", "closed", "reopen", "open" };

int wr_state_parse(const char *buf, size_t len, bool final, bool *close)
{
  size_t i = 0;
  while (i < len && is_space(buf[i]))
    i++;
  size_t start = i;
  while (i < len && !is_space(buf[i]))
    i++;
  size_t wlen = i - start;
  bool ended = i < len;            /* white space after the word */
  while (i < len && is_space(buf[i]))
    i++;
  if (i < len)
    return -EINVAL;                /* a second word */
  if (wlen == 0)
    return 1;
  const char *w = buf + start;
  for (size_t k = 0; k < sizeof state_verbs / sizeof *state_verbs; k++) {
    if (strlen(state_verbs[k]) == wlen && memcmp(w, state_verbs[k], wlen) == 0) {
      *close = k < 2;
      return 0;
    }
  }
  if (!final && !ended) {
    for (size_t k = 0; k < sizeof state_verbs / sizeof *state_verbs; k++)
      if (strlen(state_verbs[k]) > wlen && memcmp(w, state_verbs[k], wlen) == 0)
        return 1;
  }
  return -EINVAL;
}

/* Trims white space on both sides of [*s, *s + *len). */
static void trim(const char **s, size_t *len)
{
  while (*len > 0 && is_space(**s)) {
    (*s)++;
    (*len)--;
  }
  while (*len > 0 && is_space((*s)[*len - 1]))
    (*len)--;
}

int wr_follower_line(const char *line, size_t len, char **id_out, bool *remove)
{
  *id_out = NULL;
  *remove = false;
  trim(&line, &len);
  if (len == 0)
    return 1;
  if (line[0] == '-') {
    *remove = true;
    line++;
    len--;
    trim(&line, &len);
    if (len == 0)
      return -EINVAL;
  }
  size_t f = 0;
  while (f < len && !is_space(line[f]))
    f++;
  /* No user id or email holds a NUL: cutting there would name someone the
   * user did not write. */
  if (memchr(line, '\0', f))
    return -EINVAL;
  *id_out = strndup(line, f);
  return *id_out ? 0 : -ENOMEM;
}

static const char *const ctl_verbs[] = CLIQ_CTL_VERB_WORDS;

int wr_ctl_line(const char *line, size_t len, bool partial, char **verb_out)
{
  *verb_out = NULL;
  size_t raw_len = len;
  const char *raw = line;
  trim(&line, &len);
  if (len == 0)
    return 1;
  for (size_t k = 0; k < sizeof ctl_verbs / sizeof *ctl_verbs; k++) {
    if (strlen(ctl_verbs[k]) == len && memcmp(line, ctl_verbs[k], len) == 0) {
      *verb_out = strndup(line, len);
      return *verb_out ? 0 : -ENOMEM;
    }
  }
  /* Still being written: "unfo" may become "unfollow" (but not once white
   * space followed the word). */
  bool ended = raw_len > 0 && is_space(raw[raw_len - 1]);
  if (partial && !ended) {
    for (size_t k = 0; k < sizeof ctl_verbs / sizeof *ctl_verbs; k++)
      if (strlen(ctl_verbs[k]) > len && memcmp(line, ctl_verbs[k], len) == 0)
        return 1;
  }
  return -EINVAL;
}
