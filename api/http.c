/* api/http.c: the transport (libcurl): one request out, its answer in, the
 * answer's error mapped, the server's clock learnt.
 *
 * Connections are reused through a pool of idle easy handles (each keeps its
 * own connection cache) plus a CURLSH sharing DNS and TLS sessions.  libcurl
 * advises against sharing the connection cache itself between concurrent
 * threads, hence the pool.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "api/log.h"


char *cliq__escape(const char *s)
{
  /* libcurl keeps RFC 3986's unreserved characters and encodes the rest;
   * it needs no handle.  Its buffer is curl_free()'d, ours free()'d. */
  char *esc = curl_easy_escape(NULL, s, 0);
  if (!esc)
    return NULL;
  char *out = strdup(esc);
  curl_free(esc);
  return out;
}

void cliq__strip_nul(json_t *v, const char *key)
{
  if (json_is_object(v)) {
    const char *k;
    json_t *child;
    json_object_foreach(v, k, child)
      cliq__strip_nul(child, k);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *child;
    json_array_foreach(v, i, child)
      cliq__strip_nul(child, key);
  } else if (json_is_string(v)) {
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (strlen(s) == n)
      return;
    /* Text keeps a visible mark of it, as cat -v shows NUL; names, ids and
     * the rest lose it. */
    bool text = key && (strcmp(key, "text") == 0 || strcmp(key, "comment") == 0);
    char *out = malloc(2 * n + 1);
    if (!out)
      return;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
      if (s[i] != '\0')
        out[o++] = s[i];
      else if (text) {
        out[o++] = '^';
        out[o++] = '@';
      }
    }
    json_string_setn(v, out, o);
    free(out);
  }
}

void cliq__response_clear(struct cliq__response *rs)
{
  free(rs->body);
  rs->body = NULL;
  rs->len = 0;
  rs->status = 0;
}

/* ---- client ------------------------------------------------------------ */

static CURL *pool_get(cliq_client *c)
{
  CURL *h = NULL;
  pthread_mutex_lock(&c->pool_lock);
  if (c->pool_count > 0)
    h = c->pool[--c->pool_count];
  pthread_mutex_unlock(&c->pool_lock);
  return h ? h : curl_easy_init();
}

static void pool_put(cliq_client *c, CURL *h)
{
  /* curl_easy_reset keeps live connections, DNS and TLS session caches. */
  curl_easy_reset(h);
  pthread_mutex_lock(&c->pool_lock);
  if (c->pool_count < c->pool_cap) {
    c->pool[c->pool_count++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&c->pool_lock);
  if (h)
    curl_easy_cleanup(h);
}

struct sink {
  char *buf;
  size_t len, cap, max;
  bool oversize;
  bool oom;
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *userp)
{
  struct sink *s = userp;
  size_t n = size * nmemb;
  if (n > s->max || s->len > s->max - n) {
    s->oversize = true;
    return 0; /* makes curl abort with CURLE_WRITE_ERROR */
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1)
      cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb) {
      s->oom = true;
      return 0;
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

/* Performs one HTTP exchange.  Returns the CURLcode; fills rs. */
/* The server's clock against ours, from an answer's Date header (whole
 * seconds): checks for a message whose outcome was lost look for it at the
 * server's time of sending, whatever our clock says. */
static void learn_server_clock(cliq_client *c, CURL *h)
{
  struct curl_header *date = NULL;
  if (curl_easy_header(h, "Date", 0, CURLH_HEADER, -1, &date) != CURLHE_OK ||
      !date || !date->value)
    return;
  time_t server = curl_getdate(date->value, NULL);
  if (server <= 0)
    return;
  /* The header was written somewhere in the last moments, within its second. */
  double offset = ((double)server + 0.5) - cliq_clock_real();
  pthread_mutex_lock(&c->clock_lock);
  c->clock_offset_s = offset;
  c->clock_known = true;
  pthread_mutex_unlock(&c->clock_lock);
}

bool cliq_client_clock_offset(cliq_client *c, double *offset_s)
{
  pthread_mutex_lock(&c->clock_lock);
  bool known = c->clock_known;
  if (known && offset_s)
    *offset_s = c->clock_offset_s;
  pthread_mutex_unlock(&c->clock_lock);
  return known;
}

static CURLcode transfer(cliq_client *c, const struct cliq__request *rq,
                         struct cliq__response *rs, struct sink *sink,
                         char *errbuf)
{
  CURLcode cc = CURLE_OUT_OF_MEMORY;
  struct curl_slist *headers = NULL;
  char *url = NULL;
  char *auth = NULL;
  CURL *h = pool_get(c);
  if (!h)
    return CURLE_FAILED_INIT;

  if (asprintf(&url, "%s%s%s%s", rq->base, rq->path, rq->query ? "?" : "",
               rq->query ? rq->query : "") < 0) {
    url = NULL;
    goto out;
  }
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  if (rq->body) {
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s",
             rq->content_type ? rq->content_type : "application/json");
    headers = curl_slist_append(headers, ct);
  }
  if (rq->token) {
    if (asprintf(&auth, "Authorization: Zoho-oauthtoken %s", rq->token) < 0) {
      auth = NULL;
      goto out;
    }
    headers = curl_slist_append(headers, auth);
  }
  if (!headers)
    goto out;

  curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(h, CURLOPT_SHARE, c->share);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  /* libcurl silently re-sends a request whose reused connection died before
   * any answer; for a POST that Cliq had already stored this doubles the
   * message.  Writes get a connection of their own (at most 20 a minute), so
   * an unanswered write surfaces as an error the outbox can check. */
  curl_easy_setopt(h, CURLOPT_FRESH_CONNECT,
                   strcmp(rq->method, "GET") != 0 ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "cliqfs/0.1");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (c->max_body_bytes <= (size_t)INT64_MAX)
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body_bytes);

  if (strcmp(rq->method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    const char *body = rq->body ? rq->body : "";
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (strcmp(rq->method, "POST") != 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
  }

  cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  rs->status = status;
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &rs->connects);
  if (status > 0)
    learn_server_clock(c, h);
  if (cc == CURLE_FILESIZE_EXCEEDED)
    sink->oversize = true;

out:
  curl_slist_free_all(headers);
  if (auth) {
    explicit_bzero(auth, strlen(auth));
    free(auth);
  }
  free(url);
  pool_put(c, h);
  return cc;
}

int cliq__send(cliq_client *c, const struct cliq__request *rq,
               struct cliq__response *rs, cliq_error *err)
{
  const char *api_name = cliq_api_name(rq->api);
  memset(rs, 0, sizeof *rs);
  if (err)
    memset(err, 0, sizeof *err);

  if (c->has_gate && c->gate.acquire) {
    int r = c->gate.acquire(c->gate.ctx, rq->api, rq->prio);
    if (r != 0) {
      int e = r < 0 ? -r : r;
      char why[200];
      snprintf(why, sizeof why, "%s rate budget spent or API locked",
               api_name);
      if (c->gate.explain)
        c->gate.explain(c->gate.ctx, rq->api, why, sizeof why);
      return cliq_fail(err, e, "%s %s: not sent: %s", rq->method, rq->path,
                        why);
    }
  }

  char errbuf[CURL_ERROR_SIZE] = "";
  struct sink sink = {.max = c->max_body_bytes};
  double started = cliq_clock_mono();
  CURLcode cc = transfer(c, rq, rs, &sink, errbuf);
  rs->body = sink.buf;
  rs->len = sink.len;
  /* The path only: a query may carry OAuth secrets, headers the token. */
  if (cliq_log_enabled(CLIQ_LOG_HTTP))
    cliq_log(CLIQ_LOG_HTTP, "%s %s (%s) -> %ld%s%s, %zu bytes, %.0f ms%s",
             rq->method, rq->path, api_name, rs->status,
             cc != CURLE_OK ? ": " : "",
             cc != CURLE_OK ? curl_easy_strerror(cc) : "", sink.len,
             (cliq_clock_mono() - started) * 1000.0,
             rs->connects > 0 ? ", new connection" : "");
  else
    cliq_log(CLIQ_LOG_INFO, "%s request -> %ld%s%s", api_name, rs->status,
             cc != CURLE_OK ? ": " : "",
             cc != CURLE_OK ? curl_easy_strerror(cc) : "");

  cliq_error parsed = {0};
  bool ok_status = rs->status >= 200 && rs->status < 300;
  if (!ok_status && rs->body)
    cliq_parse_error_body(rs->body, rs->len, &parsed);

  if (c->has_gate && c->gate.record)
    c->gate.record(c->gate.ctx, rq->api, rs->status,
                   parsed.code[0] ? parsed.code : NULL);

  int e = cliq_errno_map(cc, rs->status, parsed.code);
  if (e == 0 && sink.oom)
    e = ENOMEM;
  if (e == 0)
    return 0;

  if (err) {
    err->http_status = rs->status;
    err->curl_code = (int)cc;
    memcpy(err->code, parsed.code, sizeof err->code);
  }
  if (sink.oversize)
    return cliq_fail(err, e, "%s %s: reply larger than %zu bytes refused",
                      rq->method, rq->path, c->max_body_bytes);
  if (cc != CURLE_OK)
    return cliq_fail(err, e, "%s %s: %s", rq->method, rq->path,
                      errbuf[0] ? errbuf : curl_easy_strerror(cc));
  /* A throttle answer locked the API: say until when. */
  char why[200] = "";
  if (cliq_is_throttle(rs->status, parsed.code) && c->has_gate &&
      c->gate.explain) {
    why[0] = ' ';
    why[1] = '(';
    c->gate.explain(c->gate.ctx, rq->api, why + 2, sizeof why - 3);
    strcat(why, ")");
  }
  return cliq_fail(err, e, "%s %s: HTTP %ld%s%s%s%s%s", rq->method, rq->path,
                    rs->status, parsed.code[0] ? " " : "", parsed.code,
                    parsed.message[0] ? ": " : "", parsed.message, why);
}
