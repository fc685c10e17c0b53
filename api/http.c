/* api/http.c: the client object and its transport (libcurl).
 *
 * Connections are reused through a pool of idle easy handles (each keeps its
 * own connection cache) plus a CURLSH sharing DNS and TLS sessions.  libcurl
 * advises against sharing the connection cache itself between concurrent
 * threads, hence the pool.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "api/log.h"

#define POOL_CAP 16

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void curl_init_once(void)
{
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

double cliq__now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cliq__fail(cliq_error *err, int e, const char *fmt, ...)
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

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
                       void *userptr)
{
  (void)h;
  (void)access;
  cliq_client *c = userptr;
  if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
  (void)h;
  cliq_client *c = userptr;
  if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_unlock(&c->share_locks[data]);
}

static char *dup_base(const char *url)
{
  char *s = strdup(url);
  if (!s)
    return NULL;
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
  return s;
}

static char *dup_opt(const char *s, bool *oom)
{
  if (!s || !*s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = true;
  return d;
}

cliq_client *cliq_client_new(const cliq_client_config *cfg,
                             const cliq_gate *gate, cliq_error *err)
{
  cliq_error local;
  if (!err)
    err = &local;
  memset(err, 0, sizeof *err);
  if (!cfg) {
    cliq__fail(err, EINVAL, "no client configuration");
    return NULL;
  }
  if (cliq_url_check(cfg->api_url, err) < 0)
    return NULL;
  if (cfg->accounts_url && *cfg->accounts_url &&
      cliq_url_check(cfg->accounts_url, err) < 0)
    return NULL;
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK) {
    cliq__fail(err, EIO, "libcurl initialisation failed: %s",
               curl_easy_strerror(curl_init_result));
    return NULL;
  }

  cliq_client *c = calloc(1, sizeof *c);
  if (!c) {
    cliq__fail(err, ENOMEM, "out of memory");
    return NULL;
  }
  bool oom = false;
  c->api_url = dup_base(cfg->api_url);
  oom |= !c->api_url;
  if (cfg->accounts_url && *cfg->accounts_url) {
    c->accounts_url = dup_base(cfg->accounts_url);
    oom |= !c->accounts_url;
  }
  c->static_token = dup_opt(cfg->access_token, &oom);
  c->client_id = dup_opt(cfg->client_id, &oom);
  c->client_secret = dup_opt(cfg->client_secret, &oom);
  c->refresh_token = dup_opt(cfg->refresh_token, &oom);
  c->connect_timeout_ms = cfg->connect_timeout_ms > 0
                              ? cfg->connect_timeout_ms
                              : CLIQ_DEFAULT_CONNECT_TIMEOUT_MS;
  c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CLIQ_DEFAULT_TIMEOUT_MS;
  c->max_body_bytes =
      cfg->max_body_bytes > 0 ? cfg->max_body_bytes : CLIQ_DEFAULT_MAX_BODY;
  c->time_scale = (cfg->time_scale > 0 && isfinite(cfg->time_scale))
                      ? cfg->time_scale
                      : 1.0;
  if (gate) {
    c->gate = *gate;
    c->has_gate = true;
  }
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&c->share_locks[i], NULL);
  pthread_mutex_init(&c->pool_lock, NULL);
  pthread_mutex_init(&c->clock_lock, NULL);
  c->pool = calloc(POOL_CAP, sizeof *c->pool);
  c->pool_cap = POOL_CAP;
  oom |= !c->pool;
  if (oom) {
    cliq__fail(err, ENOMEM, "out of memory");
    goto fail;
  }

  c->share = curl_share_init();
  if (!c->share) {
    cliq__fail(err, ENOMEM, "curl_share_init failed");
    goto fail;
  }
  curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  if (cliq__auth_init(c, err) < 0)
    goto fail;
  return c;

fail:
  cliq_client_free(c);
  return NULL;
}

static void free_secret(char *s)
{
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

void cliq_client_free(cliq_client *c)
{
  if (!c)
    return;
  cliq__auth_destroy(c);
  for (size_t i = 0; i < c->pool_count; i++)
    curl_easy_cleanup(c->pool[i]);
  free(c->pool);
  if (c->share)
    curl_share_cleanup(c->share);
  pthread_mutex_destroy(&c->pool_lock);
  pthread_mutex_destroy(&c->clock_lock);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&c->share_locks[i]);
  free(c->api_url);
  free(c->accounts_url);
  free_secret(c->static_token);
  free(c->client_id);
  free_secret(c->client_secret);
  free_secret(c->refresh_token);
  free(c);
}

/* ---- transport --------------------------------------------------------- */

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
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  /* The header was written somewhere in the last moments, within its second. */
  double offset = ((double)server + 0.5) -
                  ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
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
      return cliq__fail(err, e, "%s %s: not sent: %s", rq->method, rq->path,
                        why);
    }
  }

  char errbuf[CURL_ERROR_SIZE] = "";
  struct sink sink = {.max = c->max_body_bytes};
  double started = cliq__now();
  CURLcode cc = transfer(c, rq, rs, &sink, errbuf);
  rs->body = sink.buf;
  rs->len = sink.len;
  /* The path only: a query may carry OAuth secrets, headers the token. */
  if (cliq_log_enabled(CLIQ_LOG_HTTP))
    cliq_log(CLIQ_LOG_HTTP, "%s %s (%s) -> %ld%s%s, %zu bytes, %.0f ms",
             rq->method, rq->path, api_name, rs->status,
             cc != CURLE_OK ? ": " : "",
             cc != CURLE_OK ? curl_easy_strerror(cc) : "", sink.len,
             (cliq__now() - started) * 1000.0);
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
    return cliq__fail(err, e, "%s %s: reply larger than %zu bytes refused",
                      rq->method, rq->path, c->max_body_bytes);
  if (cc != CURLE_OK)
    return cliq__fail(err, e, "%s %s: %s", rq->method, rq->path,
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
  return cliq__fail(err, e, "%s %s: HTTP %ld%s%s%s%s%s", rq->method, rq->path,
                    rs->status, parsed.code[0] ? " " : "", parsed.code,
                    parsed.message[0] ? ": " : "", parsed.message, why);
}

int cliq__call(cliq_client *c, enum cliq_api api, enum cliq_priority prio,
               const char *method, const char *path, const char *query,
               json_t *body, json_t **out, cliq_error *err)
{
  int r = 0;
  char *body_text = NULL;
  struct cliq__response rs = {0};
  if (out)
    *out = NULL;
  if (body) {
    body_text = json_dumps(body, JSON_COMPACT);
    if (!body_text)
      return cliq__fail(err, ENOMEM, "out of memory");
  }

  for (int attempt = 0;; attempt++) {
    char *token = NULL;
    unsigned generation = 0;
    r = cliq__auth_token(c, prio, &token, &generation, err);
    if (r < 0)
      goto out;
    struct cliq__request rq = {
        .api = api, .prio = prio, .method = method, .base = c->api_url,
        .path = path, .query = query, .body = body_text, .token = token,
    };
    cliq__response_clear(&rs);
    r = cliq__send(c, &rq, &rs, err);
    free_secret(token);
    if (r < 0 && rs.status == 401) {
      /* One refresh and one retry; a second 401 is EACCES. */
      if (attempt == 0 && cliq__auth_rejected(c, generation))
        continue;
      if (err)
        strncat(err->message, attempt ? " (after a token refresh)" : "",
                sizeof err->message - strlen(err->message) - 1);
      cliq__auth_refused(c, err);
    } else if (rs.status > 0) {
      cliq__auth_accepted(c);
    }
    break;
  }
  if (r < 0)
    goto out;
  if (rs.status == 204 || rs.len == 0)
    goto out;
  /* A body that is not JSON is checked even when the caller wants none: a
   * garbled answer does not prove that a write took effect (cliqfs(1) ERRORS: unparsable
   * reply -> EIO), and the outbox then verifies before it sends again. */
  json_error_t jerr;
  json_t *parsed = cliq__json_load(rs.body, rs.len, &jerr);
  if (out)
    *out = parsed;
  else
    json_decref(parsed);
  if (!parsed) {
    r = cliq__fail(err, EIO, "%s %s: unparsable reply (HTTP %ld): %s", method,
                   path, rs.status, jerr.text);
    if (err)
      err->http_status = rs.status;
  }
out:
  cliq__response_clear(&rs);
  free(body_text);
  return r;
}
