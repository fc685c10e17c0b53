/* Harness: an error body as any server (or anything pretending to be one)
 * may send it, raw bytes (cliq_parse_error_body), and what the errno map and
 * the throttle test make of the code it yields under each status. */
#include <curl/curl.h>
#include <errno.h>

#include "api/cliq.h"
#include "fuzz_common.h"

static int errno_allowed(int e)
{
  /* cliqfs(1) ERRORS (EACCES, EAGAIN, ETIMEDOUT, EIO,
   * ENOENT) plus EINVAL for a 400 that is not a throttle. */
  return e == 0 || e == EACCES || e == EAGAIN || e == ETIMEDOUT || e == EIO ||
         e == ENOENT || e == EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cliq_error err;
  memset(&err, 0x7f, sizeof err);   /* the parser must not rely on a clean struct */
  cliq_parse_error_body((const char *)data, size, &err);
  FUZZ_CHECK_ERROR_STRINGS(&err);

  static const long statuses[] = { 0, 200, 204, 400, 401, 403, 404, 405,
                                   406, 429, 500, 503, 599, 302 };
  static const int curl_codes[] = { CURLE_OK, CURLE_COULDNT_CONNECT,
                                    CURLE_OPERATION_TIMEDOUT, CURLE_WRITE_ERROR,
                                    CURLE_RECV_ERROR };
  for (size_t s = 0; s < sizeof statuses / sizeof *statuses; s++) {
    for (size_t c = 0; c < sizeof curl_codes / sizeof *curl_codes; c++) {
      int e = cliq_errno_map(curl_codes[c], statuses[s], err.code);
      FUZZ_CHECK(errno_allowed(e));
      if (curl_codes[c] != CURLE_OK)
        FUZZ_CHECK(e != 0);
      else if (statuses[s] >= 200 && statuses[s] < 300)
        FUZZ_CHECK(e == 0);
      else if (cliq_is_throttle(statuses[s], err.code))
        FUZZ_CHECK(e == EAGAIN);
    }
  }
  FUZZ_CHECK(cliq_is_throttle(429, err.code));

  /* NULL and empty bodies leave empty strings. */
  cliq_parse_error_body(NULL, size, &err);
  FUZZ_CHECK(err.code[0] == '\0' && err.message[0] == '\0');
  cliq_parse_error_body((const char *)data, size, NULL);
  return 0;
}
