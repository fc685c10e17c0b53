/* tests/fuzz/replay_main.c: runs a harness over saved inputs without
 * libFuzzer (gcc builds, valgrind, the sanitizer build).
 *
 *   replay_<harness> PATH...
 *
 * A PATH that is a directory contributes every regular file in it (sorted by
 * name, so runs are reproducible); a file is replayed as is.  Each input is
 * run once.  Exits 0 when every input ran and at least one did (an empty
 * corpus means the test is not testing anything), 1 otherwise; a broken
 * contract or a sanitizer report aborts on the input named just before.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

/* Largest input replayed; libFuzzer's default -max_len is far below. */
#define REPLAY_MAX_BYTES ((size_t)16 << 20)

static int read_file(const char *path, uint8_t **data, size_t *size)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return -errno;
  int r = 0;
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    r = -ENOMEM;
    goto out;
  }
  for (;;) {
    if (len == cap) {
      if (cap >= REPLAY_MAX_BYTES) {
        r = -EFBIG;
        goto out;
      }
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        r = -ENOMEM;
        goto out;
      }
      buf = nb;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f))
        r = -EIO;
      break;
    }
  }
out:
  fclose(f);
  if (r < 0) {
    free(buf);
    return r;
  }
  /* Exactly `len` bytes, so that ASan sees a read past the input. */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return -ENOMEM;
  }
  memcpy(exact, buf, len);
  free(buf);
  *data = exact;
  *size = len;
  return 0;
}

static int replay_file(const char *path)
{
  uint8_t *data = NULL;
  size_t size = 0;
  int r = read_file(path, &data, &size);
  if (r < 0) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
    return r;
  }
  /* Named before it runs: if it crashes, this is the last line printed. */
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

static int only_files(const struct dirent *d)
{
  return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
  size_t ran = 0;
  int failed = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  for (int a = 1; a < argc; a++) {
    struct stat st;
    if (stat(argv[a], &st) < 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[a], strerror(errno));
      failed = 1;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (replay_file(argv[a]) < 0)
        failed = 1;
      else
        ran++;
      continue;
    }
    struct dirent **list = NULL;
    int n = scandir(argv[a], &list, only_files, alphasort);
    if (n < 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[a], strerror(errno));
      failed = 1;
      continue;
    }
    for (int i = 0; i < n; i++) {
      char *path = NULL;
      struct stat fst;
      if (asprintf(&path, "%s/%s", argv[a], list[i]->d_name) < 0) {
        failed = 1;
      } else if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
        if (replay_file(path) < 0)
          failed = 1;
        else
          ran++;
      }
      free(path);
      free(list[i]);
    }
    free(list);
  }
  printf("replayed %zu input(s)\n", ran);
  if (ran == 0) {
    fprintf(stderr, "replay: no input found: the corpus is missing\n");
    return 1;
  }
  return failed;
}
