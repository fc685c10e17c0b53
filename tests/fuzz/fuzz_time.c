/* Harness: times as the server sends them (cliq_parse_time): a JSON value
 * (number or string), and the raw input as a string.  An accepted time must
 * be in range and must survive a round trip through its ISO 8601 spelling,
 * which checks the calendar arithmetic against gmtime(). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <time.h>

#include "api/cliq.h"
#include "fuzz_common.h"

#define LAST_MS INT64_C(253402300799999)

static void check_value(json_t *value)
{
  int64_t ms = -12345;
  int r = cliq_parse_time(value, &ms);
  FUZZ_CHECK(r == 0 || r == -EIO);
  if (r < 0) {
    FUZZ_CHECK(ms == -12345);     /* untouched on failure */
    return;
  }
  FUZZ_CHECK(ms >= 0 && ms <= LAST_MS);

  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  FUZZ_CHECK(gmtime_r(&secs, &tm) != NULL);
  char iso[64];
  snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  json_t *again = json_string(iso);
  FUZZ_CHECK(again != NULL);
  int64_t ms2 = -1;
  FUZZ_CHECK(cliq_parse_time(again, &ms2) == 0);
  if (ms2 != ms)
    fprintf(stderr, "round trip: %" PRId64 " -> %s -> %" PRId64 "\n", ms, iso,
            ms2);
  FUZZ_CHECK(ms2 == ms);
  json_decref(again);

  char digits[32];
  snprintf(digits, sizeof digits, "%" PRId64, ms);
  again = json_string(digits);
  FUZZ_CHECK(again != NULL);
  ms2 = -1;
  FUZZ_CHECK(cliq_parse_time(again, &ms2) == 0 && ms2 == ms);
  json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *value = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (value) {
    check_value(value);
    json_decref(value);
  }
  /* The same bytes as a JSON string (jansson refuses what is not UTF-8). */
  value = json_stringn((const char *)data, size);
  if (value) {
    check_value(value);
    json_decref(value);
  }
  check_value(NULL);
  return 0;
}
