/* api/jsonload: reading the server's JSON as a tolerant reader would.
 *
 * Two things that are legal JSON text stop jansson for the whole document:
 * a lone UTF-16 surrogate escape (\uD800 without its pair) and an integer
 * beyond 64 bits.  One such value in one entry must not hide a whole
 * listing or log, so when the first load fails the text is repaired and
 * loaded again: a lone surrogate becomes U+FFFD (as a decoder replaces it)
 * and an integer too long for 64 bits becomes a string of its digits (the
 * entry's own parser then judges it, and skips that entry).  NUL characters
 * are allowed and handled by cliq__strip_nul().
 */
#include "api/internal.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The value of 4 hex digits at p, or -1. */
static long hex4(const char *p, const char *end)
{
  if (end - p < 4)
    return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)p[i];
    int d = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* The repaired text (caller frees), *out_len its length; NULL when out of
 * memory.  Every repair keeps the text the same length or makes it longer
 * by two characters (quotes around a number). */
static char *repair(const char *in, size_t len, size_t *out_len)
{
  char *out = malloc(len * 2 + 1);
  if (!out)
    return NULL;
  const char *p = in, *end = in + len;
  size_t o = 0;
  bool in_string = false;
  while (p < end) {
    char c = *p;
    if (in_string) {
      if (c == '"') {
        in_string = false;
        out[o++] = *p++;
      } else if (c == '\\' && p + 1 < end && p[1] == 'u') {
        long u = hex4(p + 2, end);
        bool high = u >= 0xD800 && u <= 0xDBFF;
        bool low = u >= 0xDC00 && u <= 0xDFFF;
        long next = (high && end - p >= 12 && p[6] == '\\' && p[7] == 'u')
                        ? hex4(p + 8, end)
                        : -1;
        if (high && next >= 0xDC00 && next <= 0xDFFF) {
          memcpy(out + o, p, 12);           /* a proper pair */
          o += 12;
          p += 12;
        } else if (high || low) {
          memcpy(out + o, "\\uFFFD", 6);
          o += 6;
          p += 6;
        } else {
          out[o++] = *p++;
          out[o++] = *p++;
        }
      } else if (c == '\\' && p + 1 < end) {
        out[o++] = *p++;
        out[o++] = *p++;
      } else {
        out[o++] = *p++;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out[o++] = *p++;
      continue;
    }
    if (c == '-' || isdigit((unsigned char)c)) {
      const char *q = p + (c == '-');
      size_t digits = 0;
      while (q < end && isdigit((unsigned char)*q)) {
        q++;
        digits++;
      }
      bool integer = q >= end || (*q != '.' && *q != 'e' && *q != 'E');
      /* 19 digits may not fit, 20 never do: jansson then refuses. */
      if (integer && digits >= 19) {
        out[o++] = '"';
        memcpy(out + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        out[o++] = '"';
        p = q;
        continue;
      }
      memcpy(out + o, p, (size_t)(q - p));
      o += (size_t)(q - p);
      p = q;
      continue;
    }
    out[o++] = *p++;
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

json_t *cliq__json_load(const char *text, size_t len, json_error_t *jerr)
{
  json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, jerr);
  if (!v) {
    size_t fixed_len = 0;
    char *fixed = repair(text, len, &fixed_len);
    if (fixed) {
      json_error_t again;
      v = json_loadb(fixed, fixed_len, JSON_ALLOW_NUL, &again);
      free(fixed);
    }
  }
  if (v)
    cliq__strip_nul(v, NULL);
  return v;
}
