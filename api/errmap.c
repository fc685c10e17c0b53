/* api/errmap.c: the one mapping from (curl result, HTTP status, Cliq code) to
 * errno, the throttle test, and the URL policy. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/cliq.h"
#include "api/internal.h"

static bool code_is(const char *code, const char *want)
{
  return code && strcmp(code, want) == 0;
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
  return cliq__fail(err, EINVAL, "URL refused: %s", why);
}

static bool host_is_loopback(const char *host, size_t len)
{
  char buf[64];
  if (len == 0 || len >= sizeof buf)
    return false;
  memcpy(buf, host, len);
  buf[len] = '\0';
  if (strcasecmp(buf, "localhost") == 0)
    return true;
  if (buf[0] == '[') {
    if (len < 3 || buf[len - 1] != ']')
      return false;
    buf[len - 1] = '\0';
    struct in6_addr a6;
    return inet_pton(AF_INET6, buf + 1, &a6) == 1 &&
           memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
  }
  struct in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) != 1)
    return false;
  return (ntohl(a4.s_addr) >> 24) == 127;
}

int cliq_url_check(const char *url, cliq_error *err)
{
  if (!url || !*url)
    return url_refuse(err, "empty");
  bool https = strncasecmp(url, "https://", 8) == 0;
  bool http = !https && strncasecmp(url, "http://", 7) == 0;
  if (!https && !http)
    return url_refuse(err, "only https:// (or http:// to loopback) is allowed");
  const char *authority = url + (https ? 8 : 7);
  size_t alen = strcspn(authority, "/?#");
  if (alen == 0)
    return url_refuse(err, "no host");
  if (memchr(authority, '@', alen))
    return url_refuse(err, "credentials in the URL are not allowed");
  if (strchr(url, ' ') || strchr(url, '\n') || strchr(url, '\r'))
    return url_refuse(err, "white space in the URL");
  if (https)
    return 0;
  /* http: only loopback.  Split "host[:port]" or "[v6][:port]". */
  size_t hlen;
  if (authority[0] == '[') {
    const char *close = memchr(authority, ']', alen);
    if (!close)
      return url_refuse(err, "bad IPv6 literal");
    hlen = (size_t)(close - authority) + 1;
  } else {
    const char *colon = memchr(authority, ':', alen);
    hlen = colon ? (size_t)(colon - authority) : alen;
  }
  if (hlen < alen) {
    if (authority[hlen] != ':' || hlen + 1 == alen)
      return url_refuse(err, "bad port");
    for (size_t i = hlen + 1; i < alen; i++)
      if (authority[i] < '0' || authority[i] > '9')
        return url_refuse(err, "bad port");
  }
  if (!host_is_loopback(authority, hlen))
    return url_refuse(err, "plain http:// is allowed only to loopback "
                           "(127.0.0.0/8, ::1, localhost); use https://");
  return 0;
}
