/* Harness: message ids in any spelling (cliq_normalize_message_id).  The
 * result must be normal, no longer than the input and a fixed point, so that
 * the same message is never known under two ids. */
#include "api/cliq.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *in = fuzz_cstr(data, size);
  char *once = cliq_normalize_message_id(in);
  FUZZ_CHECK(once != NULL);
  FUZZ_CHECK(strlen(once) <= strlen(in));
  FUZZ_CHECK(fuzz_id_is_normal(once));
  char *twice = cliq_normalize_message_id(once);
  FUZZ_CHECK(twice != NULL && strcmp(once, twice) == 0);
  /* Separators map one to one: each spelling of one separator is one '_'. */
  size_t seps = 0;
  for (const char *p = in; *p;) {
    if (*p == ' ' || *p == '+' || *p == '_') {
      seps++;
      p++;
    } else if (strncmp(p, "%20", 3) == 0) {
      seps++;
      p += 3;
    } else {
      p++;
    }
  }
  size_t out_seps = 0;
  for (const char *p = once; *p; p++)
    out_seps += *p == '_';
  FUZZ_CHECK(seps == out_seps);
  FUZZ_CHECK(cliq_normalize_message_id(NULL) == NULL);
  free(twice);
  free(once);
  free(in);
  return 0;
}
