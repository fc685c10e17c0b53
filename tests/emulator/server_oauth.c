/* Access tokens (issued, checked) and the OAuth token endpoint,
 * POST /oauth/v2/token. */
#include "server_i.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- tokens ---- */

static void random_hex(struct emu_server *s, char *out, size_t nhex)
{
  static const char hex[] = "0123456789abcdef";
  uint64_t r = 0;
  for (size_t i = 0; i < nhex; i++) {
    if (i % 16 == 0)
      r = emu_splitmix(&s->rng);
    out[i] = hex[r & 15];
    r >>= 4;
  }
  out[nhex] = '\0';
}

static char *issue_token(struct emu_server *s, int64_t now)
{
  char buf[80] = "1000.";
  random_hex(s, buf + 5, 32);
  buf[37] = '.';
  random_hex(s, buf + 38, 32);
  struct token *t = realloc(s->tokens, (s->ntokens + 1) * sizeof *t);
  if (!t)
    abort();
  s->tokens = t;
  t[s->ntokens].value = strdup(buf);
  if (!t[s->ntokens].value)
    abort();
  t[s->ntokens].expires = now + srv_scaled_ms(s, s->cfg.token_lifetime_s);
  return t[s->ntokens++].value;
}

bool srv_token_valid(struct emu_server *s, const char *header, int64_t now)
{
  if (!header)
    return false;
  const char *tok;
  if (strncasecmp(header, "Zoho-oauthtoken ", 16) == 0)
    tok = header + 16;
  else if (strncasecmp(header, "Bearer ", 7) == 0)
    tok = header + 7;
  else
    return false;
  while (*tok == ' ')
    tok++;
  if (!*tok)
    return false;
  if (s->cfg.static_token_enabled && s->cfg.static_token &&
      strcmp(tok, s->cfg.static_token) == 0)
    return true;
  for (size_t i = 0; i < s->ntokens; i++)
    if (strcmp(s->tokens[i].value, tok) == 0)
      return now < s->tokens[i].expires;
  return false;
}

/* ---- OAuth ---- */

static int hexval(int ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static void form_decode(char *s)
{
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '+')
      *o++ = ' ';
    else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
      *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
      p += 2;
    } else
      *o++ = *p;
  }
  *o = '\0';
}

/* Looks key up in the form-encoded body, then the query string.  Returns a
 * new string or NULL. */
static char *form_value(struct call *c, const char *key)
{
  if (c->raw && c->raw->body) {
    char *copy = strndup(c->raw->body, c->raw->len);
    if (!copy)
      abort();
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv;
         kv = strtok_r(NULL, "&", &save)) {
      char *eq = strchr(kv, '=');
      if (!eq)
        continue;
      *eq = '\0';
      form_decode(kv);
      if (strcmp(kv, key) == 0) {
        form_decode(eq + 1);
        char *v = strdup(eq + 1);
        free(copy);
        return v;
      }
    }
    free(copy);
  }
  const char *q = srv_query(c, key);
  return q ? strdup(q) : NULL;
}

static void oauth_error(struct call *c, const char *error)
{
  srv_answer_json(c, 200, json_pack("{s:s}", "error", error));
}

void srv_h_oauth(struct call *c, int64_t now)
{
  struct emu_server *s = c->s;
  char *grant = form_value(c, "grant_type");
  char *cid = form_value(c, "client_id");
  char *secret = form_value(c, "client_secret");
  char *refresh = form_value(c, "refresh_token");
  char *code = form_value(c, "code");
  bool is_refresh = grant && strcmp(grant, "refresh_token") == 0;
  bool is_code = grant && strcmp(grant, "authorization_code") == 0;
  const json_int_t lifetime = (json_int_t)s->cfg.token_lifetime_s;
  if (!is_refresh && !is_code)
    oauth_error(c, grant ? "unsupported_grant_type" : "invalid_request");
  else if (!cid || strcmp(cid, s->cfg.client_id) != 0)
    oauth_error(c, "invalid_client");
  else if (!secret || strcmp(secret, s->cfg.client_secret) != 0)
    oauth_error(c, "invalid_client_secret");
  else if (is_refresh && (!refresh || strcmp(refresh, s->cfg.refresh_token) != 0))
    oauth_error(c, "invalid_code");
  else if (is_code && (!code || s->auth_code_used ||
                       strcmp(code, s->cfg.auth_code) != 0))
    oauth_error(c, "invalid_code");
  else {
    const char *tok = issue_token(s, now);
    json_t *out = json_pack(
        "{s:s,s:I,s:s,s:s,s:s}", "access_token", tok, "expires_in", lifetime,
        "api_domain", "https://www.zohoapis.com", "token_type", "Bearer",
        "scope",
        "ZohoCliq.Channels.READ ZohoCliq.Chats.READ ZohoCliq.Chats.UPDATE "
        "ZohoCliq.Chats.DELETE ZohoCliq.Messages.READ ZohoCliq.Webhooks.CREATE");
    if (is_code) {
      s->auth_code_used = true;
      json_object_set_new(out, "refresh_token",
                          json_string(s->cfg.refresh_token));
    }
    srv_answer_json(c, 200, out);
  }
  free(grant);
  free(cid);
  free(secret);
  free(refresh);
  free(code);
}
