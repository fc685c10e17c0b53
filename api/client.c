/* api/client.c: the client object (its creation, its end) and the
 * authenticated call: every API request gets a token from auth.c, goes out
 * through http.c's transport, and after a 401 is retried once with a new
 * token.  http.c knows nothing of tokens; auth.c uses http.c for the token
 * endpoint: no loop between them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

#define POOL_CAP 16

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void curl_init_once(void)
{
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

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
    cliq_fail(err, EINVAL, "no client configuration");
    return NULL;
  }
  if (cliq_url_check(cfg->api_url, err) < 0)
    return NULL;
  if (cfg->accounts_url && *cfg->accounts_url &&
      cliq_url_check(cfg->accounts_url, err) < 0)
    return NULL;
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK) {
    cliq_fail(err, EIO, "libcurl initialisation failed: %s",
               curl_easy_strerror(curl_init_result));
    return NULL;
  }

  cliq_client *c = calloc(1, sizeof *c);
  if (!c) {
    cliq_fail(err, ENOMEM, "out of memory");
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
    cliq_fail(err, ENOMEM, "out of memory");
    goto fail;
  }

  c->share = curl_share_init();
  if (!c->share) {
    cliq_fail(err, ENOMEM, "curl_share_init failed");
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
      return cliq_fail(err, ENOMEM, "out of memory");
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
    r = cliq_fail(err, EIO, "%s %s: unparsable reply (HTTP %ld): %s", method,
                   path, rs.status, jerr.text);
    if (err)
      err->http_status = rs.status;
  }
out:
  cliq__response_clear(&rs);
  free(body_text);
  return r;
}
