/* fs/names.c: directory names for threads (names.h). */
#include "fs/names.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

const char *names_numeric_id(const char *chat_id)
{
  if (!chat_id)
    return "";
  const char *t = strstr(chat_id, "-T-");
  if (t && t[3])
    return t + 3;
  const char *cut = NULL;
  for (const char *p = chat_id; *p; p++)
    if ((*p == '_' || *p == '-') && p[1])
      cut = p + 1;
  return cut ? cut : chat_id;
}

/* Length of the UTF-8 sequence starting at s (at most `avail` bytes), or 0
 * when it is not a well-formed sequence. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
  unsigned char c = s[0];
  size_t len;
  uint32_t min, cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2; min = 0x80; cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3; min = 0x800; cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4; min = 0x10000; cp = c & 0x07;
  } else {
    return 0;
  }
  if (avail < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static bool is_c1_control(const unsigned char *s, size_t len)
{
  return len == 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f;
}

/* The title filter: drops what may not be in a name, maps '/', cuts at a
 * character boundary within max_bytes. */
static char *filter_name(const char *title, size_t max_bytes)
{
  static const char division_slash[] = "\xe2\x88\x95"; /* U+2215 */
  const unsigned char *in = (const unsigned char *)(title ? title : "");
  size_t in_len = strlen((const char *)in);
  char *out = malloc(in_len * 3 + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < in_len;) {
    size_t len = utf8_seq_len(in + i, in_len - i);
    if (len == 0) {           /* not UTF-8: drop the byte */
      i++;
      continue;
    }
    const unsigned char *seq = in + i;
    i += len;
    if (len == 1 && (seq[0] < 0x20 || seq[0] == 0x7f))
      continue;
    if (is_c1_control(seq, len))
      continue;
    const char *piece = (const char *)seq;
    size_t piece_len = len;
    if (len == 1 && seq[0] == '/') {
      piece = division_slash;
      piece_len = sizeof division_slash - 1;
    }
    if (o + piece_len > max_bytes)
      break;                  /* cut at a character boundary */
    memcpy(out + o, piece, piece_len);
    o += piece_len;
  }
  out[o] = '\0';
  return out;
}

/* Length of the white-space character at s (ASCII space, or a Unicode
 * space or invisible separator), 0 when s starts with anything else. */
static size_t space_len(const unsigned char *s)
{
  static const char *const spaces[] = {
    " ",            "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80",
    "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
    "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88",
    "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\x8b", "\xe2\x80\xa8",
    "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
    "\xef\xbb\xbf",
  };
  for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++) {
    size_t n = strlen(spaces[i]);
    if (strncmp((const char *)s, spaces[i], n) == 0)
      return n;
  }
  return 0;
}

/* Nothing but white space (or nothing): the blank rule's case. */
static bool blank(const char *name)
{
  const unsigned char *p = (const unsigned char *)name;
  size_t n;
  while ((n = space_len(p)) > 0)
    p += n;
  return *p == '\0';
}

static bool usable(const char *name)
{
  return !blank(name) && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int names_check_new(const char *name, const char **why)
{
  const char *reason = NULL;
  const unsigned char *s = (const unsigned char *)name;
  size_t len = strlen(name);
  for (size_t i = 0; i < len && !reason;) {
    size_t n = utf8_seq_len(s + i, len - i);
    if (n == 0)
      reason = "a thread title is UTF-8 text";
    else if ((n == 1 && (s[i] < 0x20 || s[i] == 0x7f)) ||
             is_c1_control(s + i, n))
      reason = "a thread title holds no control characters";
    i += n ? n : 1;
  }
  if (!reason && !usable(name))
    reason = "a thread title needs a visible character";
  /* Such a name reaches an existing thread by its chat id. */
  if (!reason && strstr(name, "-T-"))
    reason = "a name with \"-T-\" is the shape of a thread's chat id";
  if (why)
    *why = reason;
  return reason ? -EINVAL : 0;
}

/* The thread's id as a name: its numeric part (normally digits), filtered;
 * ids that give nothing usable fall back to a hash of the whole id. */
static char *id_label(const char *chat_id, size_t max_bytes)
{
  char *label = filter_name(names_numeric_id(chat_id), max_bytes);
  if (label && usable(label))
    return label;
  free(label);
  const char *id = chat_id ? chat_id : "";
  uint64_t h = XXH3_64bits(id, strlen(id));
  char buf[32];
  snprintf(buf, sizeof buf, "thread-%016llx", (unsigned long long)h);
  return strndup(buf, max_bytes ? max_bytes : 1);
}

char *names_safe_title(const char *title, const char *chat_id,
                       size_t max_bytes)
{
  char *out = filter_name(title, max_bytes);
  if (out && !usable(out)) {
    free(out);
    out = id_label(chat_id, max_bytes);
  }
  return out;
}

static char *with_suffix(const char *title, const char *chat_id,
                         const char *suffix_digits)
{
  char suffix[NAMES_MAX_BYTES + 1];
  int n = snprintf(suffix, sizeof suffix, " (%s)", suffix_digits);
  if (n < 0 || (size_t)n >= NAMES_MAX_BYTES)
    return strndup(suffix_digits, NAMES_MAX_BYTES);
  char *base = names_safe_title(title, chat_id, NAMES_MAX_BYTES - (size_t)n);
  if (!base)
    return NULL;
  char *out = NULL;
  if (asprintf(&out, "%s%s", base, suffix) < 0)
    out = NULL;
  free(base);
  return out;
}

/* The last k characters of a label (never inside a character). */
static const char *last_chars(const char *label, size_t k)
{
  const char *p = label + strlen(label);
  while (p > label && k > 0) {
    p--;
    if (((unsigned char)*p & 0xc0) != 0x80)
      k--;
  }
  return p;
}

struct sort_ctx {
  char **names;
  const char *const *ids;
};

static int by_name_then_id(const void *a, const void *b, void *arg)
{
  const struct sort_ctx *ctx = arg;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  int c = strcmp(ctx->names[i], ctx->names[j]);
  if (c)
    return c;
  return strcmp(ctx->ids[i] ? ctx->ids[i] : "", ctx->ids[j] ? ctx->ids[j] : "");
}

static bool is_reserved(const char *name, const char *const *reserved,
                        size_t n_reserved)
{
  for (size_t r = 0; r < n_reserved; r++)
    if (strcmp(name, reserved[r]) == 0)
      return true;
  return false;
}

/* Marks in `clash` every index whose name equals another's or a reserved
 * name.  order is filled with indexes sorted by (name, id).  Returns whether
 * any clash was found. */
static bool find_clashes(char **names, const char *const *ids, size_t n,
                         const char *const *reserved, size_t n_reserved,
                         size_t *order, bool *clash, bool first_keeps)
{
  struct sort_ctx ctx = { names, ids };
  for (size_t i = 0; i < n; i++) {
    order[i] = i;
    clash[i] = false;
  }
  qsort_r(order, n, sizeof *order, by_name_then_id, &ctx);
  bool any = false;
  for (size_t k = 0; k < n;) {
    size_t end = k + 1;
    while (end < n && strcmp(names[order[end]], names[order[k]]) == 0)
      end++;
    bool reserved_hit = is_reserved(names[order[k]], reserved, n_reserved);
    if (end - k > 1 || reserved_hit) {
      for (size_t m = k; m < end; m++)
        if (!(first_keeps && m == k && !reserved_hit)) {
          clash[order[m]] = true;
          any = true;
        }
    }
    k = end;
  }
  return any;
}

int names_assign(const char *const *titles, const char *const *chat_ids,
                 size_t n, const char *const *reserved, size_t n_reserved,
                 char **names_out)
{
  size_t *order = NULL;
  bool *clash = NULL;
  int rc = -ENOMEM;
  for (size_t i = 0; i < n; i++)
    names_out[i] = NULL;
  if (n == 0)
    return 0;
  order = calloc(n, sizeof *order);
  clash = calloc(n, sizeof *clash);
  if (!order || !clash)
    goto out;
  for (size_t i = 0; i < n; i++) {
    names_out[i] = names_safe_title(titles[i], chat_ids[i], NAMES_MAX_BYTES);
    if (!names_out[i])
      goto out;
  }
  /* Pass 1: every member of a group of equal names gets the short suffix. */
  if (find_clashes(names_out, chat_ids, n, reserved, n_reserved, order, clash,
                   false)) {
    for (size_t i = 0; i < n; i++) {
      if (!clash[i])
        continue;
      char *label = id_label(chat_ids[i], 64);
      char *s = label ? with_suffix(titles[i], chat_ids[i], last_chars(label, 6))
                      : NULL;
      free(label);
      if (!s)
        goto out;
      free(names_out[i]);
      names_out[i] = s;
    }
  }
  /* Pass 2 (rare): names still equal keep the first (by name, then id) and
   * give the others the whole id, then the id and a counter. */
  for (int round = 0; round < 100; round++) {
    if (!find_clashes(names_out, chat_ids, n, reserved, n_reserved, order,
                      clash, true))
      break;
    for (size_t k = 0; k < n; k++) {
      size_t i = order[k];
      if (!clash[i])
        continue;
      char *label = id_label(chat_ids[i], 64);
      if (!label)
        goto out;
      char digits[256];
      if (round == 0)
        snprintf(digits, sizeof digits, "%s", label);
      else
        snprintf(digits, sizeof digits, "%s-%d.%zu", last_chars(label, 20),
                 round, k);
      free(label);
      char *s = with_suffix(titles[i], chat_ids[i], digits);
      if (!s)
        goto out;
      free(names_out[i]);
      names_out[i] = s;
    }
  }
  rc = 0;
out:
  if (rc) {
    for (size_t i = 0; i < n; i++) {
      free(names_out[i]);
      names_out[i] = NULL;
    }
  }
  free(order);
  free(clash);
  return rc;
}
