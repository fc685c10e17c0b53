/* tests/cache: small helpers shared by the cache unit tests (header only). */
#ifndef CLIQ_TESTS_CACHE_TESTUTIL_H
#define CLIQ_TESTS_CACHE_TESTUTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cmocka 1.1 has no assert_double_equal. */
#define tu_assert_near(a, b, eps)                                          \
  do {                                                                     \
    double tu_a_ = (a), tu_b_ = (b);                                       \
    if (!(tu_a_ - tu_b_ <= (eps) && tu_b_ - tu_a_ <= (eps)))               \
      fail_msg("%s = %.9g, expected %.9g", #a, tu_a_, tu_b_);              \
  } while (0)

static inline double tu_now_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void tu_sleep(double seconds)
{
  struct timespec ts = {.tv_sec = (time_t)seconds,
                        .tv_nsec = (long)((seconds - (time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* A fresh folder under $TMPDIR (or /tmp); the caller frees the string after
 * tu_rm_rf(). */
static inline char *tu_mkdtemp(const char *tag)
{
  const char *base = getenv("TMPDIR");
  char *path = NULL;
  if (asprintf(&path, "%s/cliqfs-%s-XXXXXX", base && *base ? base : "/tmp",
               tag) < 0)
    return NULL;
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

static inline int tu_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void tu_rm_rf(const char *path)
{
  if (path)
    nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Counts the entries of a folder whose names satisfy pred (NULL = all but
 * "." and ".."). */
#include <dirent.h>
#include <stdbool.h>
static inline int tu_count_files(const char *dir, bool (*pred)(const char *))
{
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (!pred || pred(de->d_name))
      n++;
  }
  closedir(d);
  return n;
}

/* cmocka fixture state: a fresh folder per test, removed afterwards. */
struct tu_dir_state {
  char *dir;
};

static inline int tu_setup_dir(void **state, const char *tag)
{
  struct tu_dir_state *s = calloc(1, sizeof(*s));
  if (!s)
    return -1;
  s->dir = tu_mkdtemp(tag);
  if (!s->dir) {
    free(s);
    return -1;
  }
  *state = s;
  return 0;
}

static inline int tu_teardown_dir(void **state)
{
  struct tu_dir_state *s = *state;
  tu_rm_rf(s->dir);
  free(s->dir);
  free(s);
  return 0;
}

#endif
