/* cache/store_util.c: small helpers of the store (errors, clocks, buffers)
 * and its string-keyed hash map. */
#include "cache/store_i.h"

/* ---- Small helpers ------------------------------------------------------- */

void clear_err(cliq_error *err)
{
  if (err)
    memset(err, 0, sizeof *err);
}

char *xstrdup(const char *s)
{
  return strdup(s ? s : "");
}

int buf_append(char **buf, size_t *len, size_t *cap, const char *data,
                      size_t n)
{
  if (*len + n + 1 > *cap) {
    size_t want = *cap ? *cap : 256;
    while (want < *len + n + 1)
      want *= 2;
    char *nb = realloc(*buf, want);
    if (!nb)
      return -ENOMEM;
    *buf = nb;
    *cap = want;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

int buf_append_str(char **buf, size_t *len, size_t *cap, const char *s)
{
  return buf_append(buf, len, cap, s, strlen(s));
}

/* A name or an id inside a line: control characters (a TAB or a line break
 * would forge fields or lines) become spaces. */
/* U+0080..U+009F in UTF-8 (0xC2 0x80..0x9F): C1 controls, which some
 * terminals obey (U+009B is CSI). */
static bool c1_at(const unsigned char *p, size_t left)
{
  return left >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
}

int buf_append_field(char **buf, size_t *len, size_t *cap,
                            const char *s)
{
  size_t start = *len;
  int r = buf_append_str(buf, len, cap, s);
  for (size_t i = start; r == 0 && i < *len; i++) {
    unsigned char *p = (unsigned char *)*buf + i;
    if (*p < 0x20 || *p == 0x7f) {
      *p = ' ';
    } else if (c1_at(p, *len - i)) {
      p[0] = ' ';
      p[1] = ' ';
      i++;
    }
  }
  return r;
}

/* Text as `cat -v` shows it: a control character becomes ^X (^[ for ESC,
 * ^M for CR, ^? for DEL, ^@ for NUL), a C1 control M-^X; TAB and every
 * printable character, UTF-8 included, stay.  So text from Cliq cannot
 * move a reader's cursor, set its title or write its clipboard. */
int buf_append_shown(char **buf, size_t *len, size_t *cap,
                            const char *data, size_t n)
{
  const unsigned char *p = (const unsigned char *)data;
  int r = 0;
  size_t run = 0;  /* bytes copied as they are, waiting to go out */
  for (size_t i = 0; i < n && r == 0; i++) {
    char esc[5];
    size_t k = 0;
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) {
      esc[k++] = '^';
      esc[k++] = p[i] == 0x7f ? '?' : (char)(p[i] + 64);
    } else if (c1_at(p + i, n - i)) {
      esc[k++] = 'M';
      esc[k++] = '-';
      esc[k++] = '^';
      esc[k++] = (char)(p[i + 1] - 0x80 + 64);
    } else {
      run++;
      continue;
    }
    r |= buf_append(buf, len, cap, data + i - run, run);
    run = 0;
    r |= buf_append(buf, len, cap, esc, k);
    if (p[i] == 0xc2)
      i++;
  }
  if (r == 0)
    r |= buf_append(buf, len, cap, data + n - run, run);
  return r;
}

/* ---- A string-keyed hash map of pointers ---------------------------------- */

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

void *smap_get(struct smap *m, const char *key)
{
  if (!m->n_buckets)
    return NULL;
  for (struct smap_entry *e = m->buckets[hash_str(key) % m->n_buckets]; e;
       e = e->next)
    if (strcmp(e->key, key) == 0)
      return e->value;
  return NULL;
}

int smap_put(struct smap *m, const char *key, void *value)
{
  if (m->count + 1 > m->n_buckets * 2) {
    size_t nb = m->n_buckets ? m->n_buckets * 4 : 64;
    struct smap_entry **b = calloc(nb, sizeof *b);
    if (!b)
      return -ENOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
      struct smap_entry *e = m->buckets[i];
      while (e) {
        struct smap_entry *next = e->next;
        size_t k = hash_str(e->key) % nb;
        e->next = b[k];
        b[k] = e;
        e = next;
      }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
  }
  struct smap_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->key = strdup(key))) {
    free(e);
    return -ENOMEM;
  }
  e->value = value;
  size_t k = hash_str(key) % m->n_buckets;
  e->next = m->buckets[k];
  m->buckets[k] = e;
  m->count++;
  return 0;
}

void smap_free(struct smap *m, void (*free_value)(void *))
{
  for (size_t i = 0; i < m->n_buckets; i++) {
    struct smap_entry *e = m->buckets[i];
    while (e) {
      struct smap_entry *next = e->next;
      if (free_value)
        free_value(e->value);
      free(e->key);
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  memset(m, 0, sizeof *m);
}
