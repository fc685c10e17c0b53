/* tests/api/test_errmap.c: the errno table (cliqfs(1) ERRORS
 * them"), the throttle test, the URL policy and path escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/cliq.h"
#include "api/internal.h"

struct row {
  int curl_code;
  long status;
  const char *code;
  int want;
};

static void test_errno_table(void **state)
{
  (void)state;
  static const struct row rows[] = {
      {CURLE_OK, 200, NULL, 0},
      {CURLE_OK, 204, NULL, 0},
      {CURLE_OK, 404, "chat_not_found", ENOENT},
      {CURLE_OK, 404, "message_not_found", ENOENT},
      {CURLE_OK, 404, NULL, ENOENT},
      {CURLE_OK, 401, NULL, EACCES},
      {CURLE_OK, 403, "access_denied", EACCES},
      {CURLE_OK, 403, "external_communication_not_supported", EACCES},
      {CURLE_OK, 429, NULL, EAGAIN},
      {CURLE_OK, 400, "request_limit_exceeded", EAGAIN},
      {CURLE_OK, 400, "rate_limit_exceeded", EAGAIN},
      {CURLE_OK, 429, "rate_limit_exceeded", EAGAIN},
      {CURLE_OK, 400, "operation_not_allowed", EACCES},
      {CURLE_OK, 400, "invalid_inputs", EINVAL},
      {CURLE_OK, 400, "thread_chatid_invalid", EINVAL},
      {CURLE_OK, 400, "param_missing", EINVAL},
      {CURLE_OK, 400, NULL, EINVAL},
      {CURLE_OK, 405, NULL, EIO},
      {CURLE_OK, 406, NULL, EIO},
      {CURLE_OK, 500, "operation_failed", EIO},
      {CURLE_OK, 503, NULL, EIO},
      {CURLE_OK, 0, NULL, EIO},
      {CURLE_OK, 302, NULL, EIO},
      {CURLE_OPERATION_TIMEDOUT, 0, NULL, ETIMEDOUT},
      {CURLE_COULDNT_CONNECT, 0, NULL, EIO},
      {CURLE_COULDNT_RESOLVE_HOST, 0, NULL, EIO},
      {CURLE_SSL_CONNECT_ERROR, 0, NULL, EIO},
      {CURLE_PEER_FAILED_VERIFICATION, 0, NULL, EIO},
      {CURLE_GOT_NOTHING, 0, NULL, EIO},
      {CURLE_RECV_ERROR, 0, NULL, EIO},
      {CURLE_PARTIAL_FILE, 200, NULL, EIO},
      {CURLE_WRITE_ERROR, 200, NULL, EIO},
      {CURLE_FILESIZE_EXCEEDED, 200, NULL, EIO},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    int got = cliq_errno_map(rows[i].curl_code, rows[i].status, rows[i].code);
    if (got != rows[i].want)
      fail_msg("row %zu (curl %d, HTTP %ld, %s): got %d, want %d", i,
               rows[i].curl_code, rows[i].status,
               rows[i].code ? rows[i].code : "-", got, rows[i].want);
  }
}

static void test_is_throttle(void **state)
{
  (void)state;
  assert_true(cliq_is_throttle(429, NULL));
  assert_true(cliq_is_throttle(400, "request_limit_exceeded"));
  assert_true(cliq_is_throttle(400, "rate_limit_exceeded"));
  assert_false(cliq_is_throttle(400, "invalid_inputs"));
  assert_false(cliq_is_throttle(400, NULL));
  assert_false(cliq_is_throttle(200, NULL));
  assert_false(cliq_is_throttle(503, "operation_failed"));
}

static cliq_error failure(int curl_code, long status)
{
  cliq_error e;
  memset(&e, 0, sizeof e);
  e.curl_code = curl_code;
  e.http_status = status;
  return e;
}

/* The transport judgements callers use instead of curl codes. */
static void test_judgements(void **state)
{
  (void)state;
  cliq_error e = failure(CURLE_OK, 503);
  assert_true(cliq_error_read_retryable(&e));
  e = failure(CURLE_RECV_ERROR, 0);
  assert_true(cliq_error_read_retryable(&e));
  assert_true(cliq_error_may_have_reached(&e));
  e = failure(CURLE_OPERATION_TIMEDOUT, 0);
  assert_false(cliq_error_read_retryable(&e));
  assert_true(cliq_error_may_have_reached(&e));
  e = failure(CURLE_OK, 404);
  assert_false(cliq_error_read_retryable(&e));
  assert_false(cliq_error_may_have_reached(&e));
  e = failure(CURLE_COULDNT_CONNECT, 0);
  assert_false(cliq_error_may_have_reached(&e));
  e = failure(CURLE_OK, 0);   /* refused before sending */
  assert_false(cliq_error_may_have_reached(&e));
  e = failure(CURLE_OK, 504);
  assert_true(cliq_error_may_have_reached(&e));
  e = failure(CURLE_OK, 200);  /* a success whose answer was garbled */
  assert_true(cliq_error_may_have_reached(&e));
}

static void test_url_check(void **state)
{
  (void)state;
  static const char *const ok[] = {
      "https://cliq.zoho.com",       "https://accounts.zoho.eu/",
      "http://127.0.0.1:8080",       "http://127.5.6.7",
      "http://localhost:1/api",      "http://LOCALHOST",
      "http://[::1]:80/x",           "http://127.0.0.1",
      "HTTPS://cliq.zoho.com.au",
      /* An empty port is the default one (RFC 3986 3.2.3). */
      "http://localhost:",
  };
  static const char *const refused[] = {
      "",
      "http://example.com",
      "http://10.0.0.1:80",
      "http://128.0.0.1",
      "http://127.0.0.1.evil.com",
      "http://127.0.0.1@evil.com",
      "http://evil.com@127.0.0.1",
      "http://localhost.evil.com",
      "http://[::2]:80",
      "http://[::1",
      "http://localhost:abc",
      "ftp://127.0.0.1",
      "file:///etc/passwd",
      "https://",
      "http://",
      "cliq.zoho.com",
      "https://cliq.zoho.com/ x",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    cliq_error err = {0};
    if (cliq_url_check(ok[i], &err) != 0)
      fail_msg("refused %s: %s", ok[i], err.message);
  }
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    cliq_error err = {0};
    if (cliq_url_check(refused[i], &err) != -EINVAL)
      fail_msg("accepted %s", refused[i]);
    assert_int_equal(err.err, EINVAL);
    assert_true(strlen(err.message) > 0);
  }
  assert_int_equal(cliq_url_check(NULL, NULL), -EINVAL);
}

static void test_client_refuses_plain_http(void **state)
{
  (void)state;
  cliq_error err = {0};
  cliq_client_config cfg = {.api_url = "http://cliq.example.com",
                            .access_token = "secret-token-1"};
  assert_null(cliq_client_new(&cfg, NULL, &err));
  assert_int_equal(err.err, EINVAL);
  assert_non_null(strstr(err.message, "loopback"));

  cliq_client_config cfg2 = {.api_url = "https://cliq.zoho.com",
                             .accounts_url = "http://accounts.example.com",
                             .refresh_token = "r", .client_id = "i",
                             .client_secret = "s"};
  memset(&err, 0, sizeof err);
  assert_null(cliq_client_new(&cfg2, NULL, &err));
  assert_int_equal(err.err, EINVAL);

  /* A refresh token without an accounts URL cannot work. */
  cliq_client_config cfg3 = {.api_url = "https://cliq.zoho.com",
                             .refresh_token = "r", .client_id = "i",
                             .client_secret = "s"};
  memset(&err, 0, sizeof err);
  assert_null(cliq_client_new(&cfg3, NULL, &err));
  assert_int_equal(err.err, EINVAL);

  cliq_client_config good = {.api_url = "https://cliq.zoho.com/",
                             .access_token = "t"};
  cliq_client *c = cliq_client_new(&good, NULL, &err);
  assert_non_null(c);
  assert_string_equal(cliq_client_auth_state(c), "static");
  cliq_client_free(c);
}

static void test_escape(void **state)
{
  (void)state;
  struct {
    const char *in, *out;
  } cases[] = {
      {"CT_1207124526552602256_60002085329-T-1291567019566818579",
       "CT_1207124526552602256_60002085329-T-1291567019566818579"},
      {"1727333520582 47588994306224", "1727333520582%2047588994306224"},
      {"a/b?c#d%e", "a%2Fb%3Fc%23d%25e"},
      {"~.-_", "~.-_"},
      {"\xc3\xa9", "%C3%A9"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *e = cliq__escape(cases[i].in);
    assert_non_null(e);
    assert_string_equal(e, cases[i].out);
    free(e);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errno_table),
      cmocka_unit_test(test_is_throttle),
      cmocka_unit_test(test_judgements),
      cmocka_unit_test(test_url_check),
      cmocka_unit_test(test_client_refuses_plain_http),
      cmocka_unit_test(test_escape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
