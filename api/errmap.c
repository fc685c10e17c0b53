/* api/errmap.c: errors: the one error setter, the one mapping from (curl
 * result, HTTP status, Cliq code) to errno, the throttle test, the transport
 * judgements, and the URL policy. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/cliq.h"
#include "api/internal.h"

int cliq_fail(cliq_error *err, int e, const char *fmt, ...)
{
  if (err) {
    err->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return -e;
}

void cliq_fail_text(char *buf, size_t len, const char *fmt, ...)
{
  if (!buf || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

static bool code_is(const char *code, const char *want)
{
  return code && strcmp(code, want) == 0;
}

bool cliq_error_read_retryable(const cliq_error *e)
{
  if (e->http_status >= 500 && e->http_status <= 599)
    return true;
  switch (e->curl_code) {
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return true;
  default:
    return false;
  }
}

bool cliq_error_may_have_reached(const cliq_error *err)
{
  if (err->http_status >= 100)
    return err->http_status == 502 || err->http_status == 504 ||
           (err->http_status >= 200 && err->http_status < 300);
  switch (err->curl_code) {
  case CURLE_OK:                    /* refused before sending (gate, auth) */
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
    return false;
  default:
    return true;
  }
}

bool cliq_is_throttle(long http_status, const char *cliq_code)
{
  if (http_status == 429)
    return true;
  /* Users report 400 + request_limit_exceeded; the documented JSON error
   * style says rate_limit_exceeded.  Either code means the same thing
   * whatever the status that carried it. */
  return code_is(cliq_code, "request_limit_exceeded") ||
         code_is(cliq_code, "rate_limit_exceeded");
}

/* cliqfs(1) ERRORS is the contract; one row per case. */
int cliq_errno_map(int curl_code, long http_status, const char *cliq_code)
{
  if (curl_code != CURLE_OK) {
    switch (curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
      /* Cliq timeout (connect or total timeout elapsed). */
      return ETIMEDOUT;
    case CURLE_WRITE_ERROR:
      /* The write callback refused the body: larger than max_body_bytes. */
      return EIO;
    default:
      /* Network unreachable, refused connection, TLS failure, dropped
       * connection, truncated transfer: the network failed us. */
      return EIO;
    }
  }
  if (http_status >= 200 && http_status < 300)
    return 0;                               /* success */
  if (cliq_is_throttle(http_status, cliq_code))
    return EAGAIN;                          /* 429, or 400 with a limit code */
  switch (http_status) {
  case 0:
    return EIO;                             /* no answer at all */
  case 401:
    return EACCES;                          /* invalid token (after the refresh) */
  case 403:
    return EACCES;                          /* access_denied, invalid_access, ... */
  case 404:
    return ENOENT;                          /* chat_not_found, message_not_found */
  case 400:
    if (code_is(cliq_code, "operation_not_allowed"))
      return EACCES;                        /* e.g. a reply to a closed thread */
    return EINVAL;                          /* malformed or missing parameter */
  case 405:
  case 406:
    return EIO;                             /* we sent what Cliq cannot serve: a bug */
  default:
    break;
  }
  if (http_status >= 500)
    return EIO;                             /* 5xx: operation_failed and friends */
  return EIO;                               /* anything else is unexpected */
}

static int url_refuse(cliq_error *err, const char *why)
{
  return cliq_fail(err, EINVAL, "URL refused: %s", why);
}

/* host as libcurl's URL parser gives it: a name, an IPv4 address or an IPv6
 * address without brackets. */
static bool host_is_loopback(const char *host)
{
  if (strcasecmp(host, "localhost") == 0)
    return true;
  struct in6_addr a6;
  if (inet_pton(AF_INET6, host, &a6) == 1)
    return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) != 1)
    return false;
  return (ntohl(a4.s_addr) >> 24) == 127;
}

int cliq_url_check(const char *url, cliq_error *err)
{
  if (!url || !*url)
    return url_refuse(err, "empty");
  if (strpbrk(url, " \t\r\n"))
    return url_refuse(err, "white space in the URL");
  int rc = 0;
  char *scheme = NULL, *user = NULL, *host = NULL;
  CURLU *u = curl_url();
  if (!u)
    return cliq_fail(err, ENOMEM, "out of memory");
  /* No guessing of a scheme: "cliq.zoho.com" is not a URL here. */
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_BAD_SCHEME || uc == CURLUE_UNSUPPORTED_SCHEME ||
      uc == CURLUE_NO_SCHEME) {
    rc = url_refuse(err, "only https:// (or http:// to loopback) is allowed");
    goto out;
  }
  if (uc == CURLUE_NO_HOST || uc == CURLUE_MALFORMED_INPUT) {
    rc = url_refuse(err, "no host");
    goto out;
  }
  if (uc == CURLUE_BAD_PORT_NUMBER) {
    rc = url_refuse(err, "bad port");
    goto out;
  }
  if (uc == CURLUE_BAD_IPV6) {
    rc = url_refuse(err, "bad IPv6 literal");
    goto out;
  }
  if (uc != CURLUE_OK) {
    rc = url_refuse(err, curl_url_strerror(uc));
    goto out;
  }
  bool https = false;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (!(https = strcasecmp(scheme, "https") == 0) &&
       strcasecmp(scheme, "http") != 0)) {
    rc = url_refuse(err, "only https:// (or http:// to loopback) is allowed");
    goto out;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    rc = url_refuse(err, "no host");
    goto out;
  }
  if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
    rc = url_refuse(err, "credentials in the URL are not allowed");
    goto out;
  }
  if (https)
    goto out;
  /* libcurl keeps the brackets of an IPv6 literal. */
  size_t hlen = strlen(host);
  if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
    memmove(host, host + 1, hlen - 2);
    host[hlen - 2] = '\0';
  }
  if (!host_is_loopback(host))
    rc = url_refuse(err, "plain http:// is allowed only to loopback "
                         "(127.0.0.0/8, ::1, localhost); use https://");
out:
  curl_free(scheme);
  curl_free(user);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}
