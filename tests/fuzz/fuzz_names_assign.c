/* Harness: the names of all threads of one channel (names_assign).
 * Input: records separated by NUL; a record "CHAT_ID\x1fTITLE" is a thread,
 * "\x1eNAME" a reserved name (the channel's own files, draft directories).
 * Chat ids are unique in a channel: repeated ones are skipped.
 * Checks: every name is a valid directory name, no two threads share a name,
 * no thread takes a reserved name, and the names depend only on the set of
 * threads, not on their order. */
#include "fs/names.h"
#include "fuzz_names_common.h"

#define MAX_THREADS 64
#define MAX_RESERVED 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *buf = malloc(size + 1);
  FUZZ_CHECK(buf != NULL);
  memcpy(buf, data, size);
  buf[size] = '\0';

  const char *titles[MAX_THREADS] = {0}, *ids[MAX_THREADS] = {0};
  const char *reserved[MAX_RESERVED] = {0};
  size_t n = 0, n_res = 0;
  for (size_t pos = 0; pos < size;) {
    char *rec = buf + pos;
    size_t len = strlen(rec);
    pos += len + 1;
    if (rec[0] == '\x1e') {
      if (n_res < MAX_RESERVED && rec[1])
        reserved[n_res++] = rec + 1;
      continue;
    }
    char *sep = strchr(rec, '\x1f');
    if (!sep || sep == rec || n == MAX_THREADS)
      continue;
    *sep = '\0';
    bool dup = false;
    for (size_t i = 0; i < n; i++)
      dup |= strcmp(ids[i], rec) == 0;
    if (dup)
      continue;
    ids[n] = rec;
    titles[n] = sep + 1;
    n++;
  }

  char *names[MAX_THREADS];
  FUZZ_CHECK(names_assign(titles, ids, n, reserved, n_res, names) == 0);
  for (size_t i = 0; i < n; i++) {
    fuzz_check_dir_name(names[i], NAMES_MAX_BYTES);
    for (size_t r = 0; r < n_res; r++) {
      if (strcmp(names[i], reserved[r]) == 0)
        fprintf(stderr, "thread %s takes reserved name \"%s\"\n", ids[i],
                reserved[r]);
      FUZZ_CHECK(strcmp(names[i], reserved[r]) != 0);
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(names[i], names[j]) == 0)
        fprintf(stderr, "threads %s and %s share \"%s\"\n", ids[j], ids[i],
                names[i]);
      FUZZ_CHECK(strcmp(names[i], names[j]) != 0);
    }
  }

  /* The same threads in reverse order get the same names. */
  const char *rtitles[MAX_THREADS] = {0}, *rids[MAX_THREADS] = {0};
  char *rnames[MAX_THREADS];
  for (size_t i = 0; i < n; i++) {
    rtitles[i] = titles[n - 1 - i];
    rids[i] = ids[n - 1 - i];
  }
  FUZZ_CHECK(names_assign(rtitles, rids, n, reserved, n_res, rnames) == 0);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], rnames[n - 1 - i]) != 0)
      fprintf(stderr, "thread %s: \"%s\" in one order, \"%s\" in the other\n",
              ids[i], names[i], rnames[n - 1 - i]);
    FUZZ_CHECK(strcmp(names[i], rnames[n - 1 - i]) == 0);
  }
  for (size_t i = 0; i < n; i++) {
    free(names[i]);
    free(rnames[i]);
  }
  free(buf);
  return 0;
}
