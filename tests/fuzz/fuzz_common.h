/* tests/fuzz/fuzz_common.h: what every harness shares.
 *
 * A harness is one LLVMFuzzerTestOneInput().  With clang and -Dfuzz=true it
 * is linked with libFuzzer; otherwise with replay_main.c, which feeds it the
 * files of its corpus (suite 'unit').  A harness checks the contract of the
 * parser it drives and abort()s when it is broken, so that both libFuzzer and
 * the replay test report it; crashes and sanitizer reports come for free.
 */
#ifndef CLIQFS_TESTS_FUZZ_COMMON_H
#define CLIQFS_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__,      \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A NUL-terminated copy of the input (a C string stops at the first NUL, as
 * it would for the caller of the function under test). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* The bounded strings of a cliq_error are always terminated. */
#define FUZZ_CHECK_ERROR_STRINGS(e)                                            \
  do {                                                                         \
    FUZZ_CHECK(memchr((e)->code, '\0', sizeof (e)->code) != NULL);             \
    FUZZ_CHECK(memchr((e)->message, '\0', sizeof (e)->message) != NULL);       \
  } while (0)

/* A message id as the parsers hand it out: normalised, i.e. no separator
 * spelling other than '_' is left ("%20", ' ', '+'). */
static inline int fuzz_id_is_normal(const char *id)
{
  return id && !strchr(id, ' ') && !strchr(id, '+') && !strstr(id, "%20");
}

#endif
