/* api/auth.c: access tokens.  A static token, or the refresh-token grant
 * against accounts_url + /oauth/v2/token.
 *
 * The token endpoint allows 10 requests per 10 minutes, so: the token is
 * cached and refreshed shortly before it expires; a 401 invalidates only the
 * token that was refused (its generation), so concurrent 401s cause one
 * refresh; callers that need a token while a refresh is running wait for it
 * and share its result; credentials the endpoint refused are not offered
 * again for a while.  Every token request goes through cliq__send() as
 * CLIQ_API_OAUTH_TOKEN, so the governor counts it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* Wait before offering refused credentials again (unscaled seconds). */
#define REFUSED_BACKOFF_S 60.0
/* Refresh this long before expiry at most (unscaled seconds). */
#define REFRESH_MARGIN_S 60.0
#define DEFAULT_LIFETIME_S 3600.0

/* What a person does about a refused credential, after the reason. */
static void append_fix(cliq_error *err, const char *fix)
{
  size_t n = strlen(err->message);
  if (strstr(err->message, fix))
    return;
  snprintf(err->message + n, sizeof err->message - n, "%s%s",
           n ? ": " : "", fix);
}

static void set_state(cliq_client *c, enum cliq_auth_state s)
{
  atomic_store(&c->auth.state, (int)s);
}

int cliq__auth_init(cliq_client *c, cliq_error *err)
{
  struct cliq_auth *a = &c->auth;
  pthread_mutex_init(&a->state_lock, NULL);
  pthread_mutex_init(&a->refresh_lock, NULL);
  if (c->static_token) {
    set_state(c, CLIQ_AUTH_STATIC);
    return 0;
  }
  set_state(c, CLIQ_AUTH_NONE);
  if (c->refresh_token && !c->accounts_url)
    return cliq_fail(err, EINVAL,
                      "accounts_url is needed for the refresh-token grant");
  return 0;
}

void cliq__auth_destroy(cliq_client *c)
{
  struct cliq_auth *a = &c->auth;
  if (a->token) {
    explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    a->token = NULL;
  }
  pthread_mutex_destroy(&a->state_lock);
  pthread_mutex_destroy(&a->refresh_lock);
}

const char *cliq_client_auth_state(cliq_client *c)
{
  if (!c)
    return "none";
  switch ((enum cliq_auth_state)atomic_load(&c->auth.state)) {
  case CLIQ_AUTH_STATIC:
    return "static";
  case CLIQ_AUTH_VALID:
    return "valid";
  case CLIQ_AUTH_REFRESHING:
    return "refreshing";
  case CLIQ_AUTH_FAILED:
    return "failed";
  case CLIQ_AUTH_REJECTED:
    return "rejected";
  case CLIQ_AUTH_NONE:
  default:
    return "none";
  }
}

static int append_param(char **buf, const char *name, const char *value)
{
  char *esc = cliq__escape(value ? value : "");
  if (!esc)
    return -ENOMEM;
  char *next = NULL;
  int n = asprintf(&next, "%s%s%s=%s", *buf ? *buf : "", *buf ? "&" : "",
                   name, esc);
  explicit_bzero(esc, strlen(esc));
  free(esc);
  if (n < 0)
    return -ENOMEM;
  if (*buf) {
    explicit_bzero(*buf, strlen(*buf));
    free(*buf);
  }
  *buf = next;
  return 0;
}

static double lifetime_of(json_t *reply)
{
  json_t *v = json_object_get(reply, "expires_in");
  if (!v)
    v = json_object_get(reply, "expires_in_sec");
  double s = 0;
  if (json_is_number(v))
    s = json_number_value(v);
  else if (json_is_string(v))
    s = strtod(json_string_value(v), NULL);
  if (!isfinite(s) || s <= 0)
    s = DEFAULT_LIFETIME_S;
  /* A nonsense lifetime would keep a dead token around for ever. */
  if (s > 86400.0 * 365)
    s = DEFAULT_LIFETIME_S;
  return s;
}

/* Sends one token-endpoint request (form body, borrowed) and reads the
 * answer.  An `error` key is an error whatever the HTTP status.  Fills the
 * out strings (caller frees) that are not NULL; `need_refresh` requires a
 * refresh_token in the answer. */
static int token_request(cliq_client *c, enum cliq_priority prio,
                         const char *form, char **access_out,
                         char **refresh_out, double *lifetime_s,
                         cliq_error *err)
{
  struct cliq__response rs = {0};
  json_t *reply = NULL;
  struct cliq__request rq = {
      .api = CLIQ_API_OAUTH_TOKEN, .prio = prio, .method = "POST",
      .base = c->accounts_url, .path = "/oauth/v2/token", .body = form,
      .content_type = "application/x-www-form-urlencoded",
  };
  int r = cliq__send(c, &rq, &rs, err);
  if (r < 0) {
    /* A 4xx from the token endpoint (other than its throttle answer) means
     * the credentials were refused.  Transport failures and 5xx keep the
     * errno of the one mapping. */
    if (r != -EAGAIN && rs.status >= 400 && rs.status < 500) {
      char code[64];
      snprintf(code, sizeof code, "%s", err ? err->code : "");
      r = cliq_fail(err, EACCES,
                     "token endpoint refused the credentials: HTTP %ld %s",
                     rs.status, code[0] ? code : "(no error code)");
    }
    goto out;
  }
  json_error_t jerr;
  reply = rs.len ? cliq__json_load(rs.body, rs.len, &jerr) : NULL;
  if (!json_is_object(reply)) {
    r = cliq_fail(err, EIO, "token endpoint: unparsable reply (HTTP %ld)",
                   rs.status);
    goto out;
  }
  if (json_object_get(reply, "error")) {
    cliq_error parsed = {0};
    cliq_parse_error_body(rs.body, rs.len, &parsed);
    if (err) {
      err->http_status = rs.status;
      memcpy(err->code, parsed.code, sizeof err->code);
    }
    if (cliq_is_throttle(rs.status, parsed.code))
      r = cliq_fail(err, EAGAIN, "token endpoint: too many requests");
    else
      r = cliq_fail(err, EACCES,
                     "token endpoint refused the credentials: %s (HTTP %ld)",
                     parsed.code[0] ? parsed.code : "error", rs.status);
    goto out;
  }
  json_t *access = json_object_get(reply, "access_token");
  if (!json_is_string(access) || json_string_length(access) == 0) {
    r = cliq_fail(err, EIO, "token endpoint: no access_token in the reply");
    goto out;
  }
  json_t *refresh = json_object_get(reply, "refresh_token");
  if (refresh_out) {
    if (!json_is_string(refresh) || json_string_length(refresh) == 0) {
      r = cliq_fail(err, EIO,
                     "token endpoint: no refresh_token in the reply "
                     "(a self-client code can be used only once)");
      goto out;
    }
    *refresh_out = strdup(json_string_value(refresh));
  }
  if (access_out)
    *access_out = strdup(json_string_value(access));
  if ((access_out && !*access_out) || (refresh_out && !*refresh_out)) {
    r = cliq_fail(err, ENOMEM, "out of memory");
    goto out;
  }
  if (lifetime_s)
    *lifetime_s = lifetime_of(reply);
  r = 0;
out:
  json_decref(reply);
  if (rs.body)
    explicit_bzero(rs.body, rs.len);
  cliq__response_clear(&rs);
  return r;
}

static int refresh_now(cliq_client *c, enum cliq_priority prio, char **token,
                       double *lifetime_s, cliq_error *err)
{
  char *form = NULL;
  int r;
  if ((r = append_param(&form, "grant_type", "refresh_token")) < 0 ||
      (r = append_param(&form, "client_id", c->client_id)) < 0 ||
      (r = append_param(&form, "client_secret", c->client_secret)) < 0 ||
      (r = append_param(&form, "refresh_token", c->refresh_token)) < 0) {
    r = cliq_fail(err, ENOMEM, "out of memory");
    goto out;
  }
  r = token_request(c, prio, form, token, NULL, lifetime_s, err);
out:
  if (form) {
    explicit_bzero(form, strlen(form));
    free(form);
  }
  return r;
}

static int copy_token(struct cliq_auth *a, char **token, unsigned *generation,
                      cliq_error *err)
{
  *token = strdup(a->token);
  *generation = a->generation;
  return *token ? 0 : cliq_fail(err, ENOMEM, "out of memory");
}

static int copy_failure(struct cliq_auth *a, cliq_error *err)
{
  if (err) {
    memset(err, 0, sizeof *err);
    memcpy(err->code, a->failed_code, sizeof err->code);
  }
  return cliq_fail(err, a->failed_err, "%s", a->failed_message);
}

int cliq__auth_token(cliq_client *c, enum cliq_priority prio, char **token,
                     unsigned *generation, cliq_error *err)
{
  struct cliq_auth *a = &c->auth;
  *token = NULL;
  *generation = 0;
  if (c->static_token) {
    *token = strdup(c->static_token);
    return *token ? 0 : cliq_fail(err, ENOMEM, "out of memory");
  }
  if (!c->refresh_token || !c->client_id || !c->client_secret)
    return cliq_fail(err, EACCES,
                      "no credentials: set access_token, or client_id, "
                      "client_secret and refresh_token");

  pthread_mutex_lock(&a->state_lock);
  double now = cliq_clock_mono();
  /* A token past its refresh point stays usable while someone refreshes. */
  if (a->token && now < a->expires_at && (now < a->refresh_at || a->refreshing)) {
    int r = copy_token(a, token, generation, err);
    pthread_mutex_unlock(&a->state_lock);
    return r;
  }
  if (now < a->failed_until) {
    int r = copy_failure(a, err);
    pthread_mutex_unlock(&a->state_lock);
    return r;
  }
  unsigned seen_generation = a->generation;
  unsigned seen_attempts = a->attempts;
  pthread_mutex_unlock(&a->state_lock);

  pthread_mutex_lock(&a->refresh_lock);
  pthread_mutex_lock(&a->state_lock);
  if (a->attempts != seen_attempts || a->generation != seen_generation) {
    /* Someone refreshed while we waited: share their result, unless it was
     * "no slot" (EAGAIN), which a caller of higher priority may still get. */
    bool usable = a->token && cliq_clock_mono() < a->expires_at;
    if (usable || a->failed_err != EAGAIN) {
      int r = usable ? copy_token(a, token, generation, err)
                     : copy_failure(a, err);
      pthread_mutex_unlock(&a->state_lock);
      pthread_mutex_unlock(&a->refresh_lock);
      return r;
    }
  }
  a->refreshing = true;
  set_state(c, CLIQ_AUTH_REFRESHING);
  pthread_mutex_unlock(&a->state_lock);

  char *fresh = NULL;
  double lifetime = 0;
  cliq_error local = {0};
  int r = refresh_now(c, prio, &fresh, &lifetime, &local);

  pthread_mutex_lock(&a->state_lock);
  a->refreshing = false;
  a->attempts++;
  now = cliq_clock_mono();
  if (r == 0) {
    if (a->token) {
      explicit_bzero(a->token, strlen(a->token));
      free(a->token);
    }
    a->token = fresh;
    a->generation++;
    double life = lifetime / c->time_scale;
    double margin = fmin(REFRESH_MARGIN_S / c->time_scale, life / 10.0);
    a->expires_at = now + life;
    a->refresh_at = a->expires_at - margin;
    a->failed_until = 0;
    set_state(c, CLIQ_AUTH_VALID);
    r = copy_token(a, token, generation, err);
  } else {
    a->failed_err = local.err ? local.err : EIO;
    /* The fix goes into the failure kept for the callers that share it
     * (another thread asking meanwhile gets the same advice). */
    if (a->failed_err == EACCES)
      append_fix(&local, "run cliqfs auth again for a new refresh token, or "
                         "check client_id and client_secret in the config");
    memcpy(a->failed_code, local.code, sizeof a->failed_code);
    memcpy(a->failed_message, local.message, sizeof a->failed_message);
    if (a->failed_err == EACCES)
      a->failed_until = now + REFUSED_BACKOFF_S / c->time_scale;
    bool usable = a->token && now < a->expires_at;
    if (usable) /* try again half-way to expiry, not on every call */
      a->refresh_at = now + (a->expires_at - now) / 2;
    set_state(c, usable ? CLIQ_AUTH_VALID
                 : a->failed_err == EACCES ? CLIQ_AUTH_REJECTED
                                           : CLIQ_AUTH_FAILED);
    if (usable) {
      r = copy_token(a, token, generation, err);
    } else if (err) {
      *err = local;
    }
  }
  pthread_mutex_unlock(&a->state_lock);
  pthread_mutex_unlock(&a->refresh_lock);
  return r;
}

void cliq__auth_refused(cliq_client *c, cliq_error *err)
{
  set_state(c, CLIQ_AUTH_REJECTED);
  if (err)
    append_fix(err, c->static_token
                        ? "Cliq rejected access_token: put a new one in the "
                          "config, or run cliqfs auth for a refresh token"
                        : "run cliqfs auth again for a new refresh token");
}

void cliq__auth_accepted(cliq_client *c)
{
  int expected = CLIQ_AUTH_REJECTED;
  if (c->static_token)
    atomic_compare_exchange_strong(&c->auth.state, &expected,
                                   (int)CLIQ_AUTH_STATIC);
}

bool cliq__auth_rejected(cliq_client *c, unsigned generation)
{
  struct cliq_auth *a = &c->auth;
  if (c->static_token || !c->refresh_token)
    return false;
  pthread_mutex_lock(&a->state_lock);
  if (a->generation == generation && a->token) {
    a->expires_at = 0;
    a->refresh_at = 0;
  }
  pthread_mutex_unlock(&a->state_lock);
  return true;
}

int cliq_oauth_exchange_code(const char *accounts_url, const char *client_id,
                             const char *client_secret, const char *code,
                             char **refresh_token_out,
                             char **access_token_out, cliq_error *err)
{
  cliq_error local;
  if (!err)
    err = &local;
  memset(err, 0, sizeof *err);
  if (refresh_token_out)
    *refresh_token_out = NULL;
  if (access_token_out)
    *access_token_out = NULL;
  if (!client_id || !*client_id || !client_secret || !*client_secret ||
      !code || !*code)
    return cliq_fail(err, EINVAL, "client id, client secret and code are needed");

  cliq_client_config cfg = {.api_url = accounts_url, .accounts_url = accounts_url};
  cliq_client *c = cliq_client_new(&cfg, NULL, err);
  if (!c)
    return -(err->err ? err->err : EINVAL);
  char *form = NULL;
  char *refresh = NULL, *access = NULL;
  int r;
  if ((r = append_param(&form, "grant_type", "authorization_code")) < 0 ||
      (r = append_param(&form, "client_id", client_id)) < 0 ||
      (r = append_param(&form, "client_secret", client_secret)) < 0 ||
      (r = append_param(&form, "code", code)) < 0) {
    r = cliq_fail(err, ENOMEM, "out of memory");
    goto out;
  }
  r = token_request(c, CLIQ_PRIO_WRITE, form, &access, &refresh, NULL, err);
  if (r == 0) {
    if (refresh_token_out) {
      *refresh_token_out = refresh;
      refresh = NULL;
    }
    if (access_token_out) {
      *access_token_out = access;
      access = NULL;
    }
  }
out:
  if (form) {
    explicit_bzero(form, strlen(form));
    free(form);
  }
  if (refresh) {
    explicit_bzero(refresh, strlen(refresh));
    free(refresh);
  }
  if (access) {
    explicit_bzero(access, strlen(access));
    free(access);
  }
  cliq_client_free(c);
  return r;
}
