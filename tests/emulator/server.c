/* The HTTP side of cliq-emulator: the request cycle (routing, auth, rate
 * limits and faults applied in turn), answers, counters, and starting and
 * stopping the server.  The rest of the family is listed in server_i.h. */
#include "server_i.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (1024 * 1024)

void srv_logf(struct emu_server *s, const char *fmt, ...)
{
  if (s->cfg.quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("cliq-emulator: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int64_t srv_scaled_ms(const struct emu_server *s, double seconds)
{
  double scale = s->cfg.time_scale > 0 ? s->cfg.time_scale : 1;
  int64_t ms = (int64_t)(seconds * 1000.0 / scale);
  return ms < 1 ? 1 : ms;
}

/* ---- answers ---- */

void srv_answer_error(struct call *c, int status, const char *code,
                      const char *message)
{
  json_decref(c->out);
  c->status = status;
  c->out = code ? json_pack("{s:s,s:s}", "code", code, "message", message)
                : json_pack("{s:s}", "message", message);
}

void srv_answer_json(struct call *c, int status, json_t *out)
{
  json_decref(c->out);
  c->status = status;
  c->out = out;
}

void srv_answer_204(struct call *c)
{
  json_decref(c->out);
  c->status = 204;
  c->out = NULL;
}

/* ---- query strings ---- */

const char *srv_query(struct call *c, const char *key)
{
  return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- faults ---- */

const char *const srv_fault_names[] = {
  "500", "503", "delay", "drop", "truncate", "invalid_json", "401",
  "throttle", "accept_drop",
};

/* ---- the request cycle ---- */

static enum MHD_Result send_answer(struct MHD_Connection *conn, int status,
                                   char *body, size_t len)
{
  struct MHD_Response *resp;
  if (body)
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  else
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  if (body)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json;charset=UTF-8");
  /* The server's own clock (clock_offset_s), as an HTTP server tells it. */
  char date[64];
  time_t now = (time_t)(emu_now_ms() / 1000);
  struct tm tm;
  if (gmtime_r(&now, &tm) &&
      strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_DATE, date);
  enum MHD_Result r = MHD_queue_response(conn, (unsigned int)status, resp);
  MHD_destroy_response(resp);
  return r;
}

/* s with every `from` replaced by `to` (a new string; s is freed). */
static char *replace_all(char *s, const char *from, const char *to)
{
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  if (fl == 0)
    return s;
  for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
    n++;
  if (n == 0)
    return s;
  char *out = malloc(strlen(s) + n * tl + 1);
  if (!out)
    return s;
  char *o = out;
  const char *p = s, *q;
  while ((q = strstr(p, from)) != NULL) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, to, tl);
    o += tl;
    p = q + fl;
  }
  strcpy(o, p);
  free(s);
  return out;
}

static enum MHD_Result send_call(struct call *c)
{
  if (!c->out)
    return send_answer(c->conn, c->status, NULL, 0);
  char *s = json_dumps(c->out, JSON_COMPACT);
  if (!s)
    return MHD_NO;
  /* Odd but legal JSON that the organization file cannot hold (a \u0000
   * inside a string, say), for the clients' tests; never on the control
   * path. */
  if (c->s->nrewrites && !c->is_control) {
    pthread_mutex_lock(&c->s->mu);
    for (size_t i = 0; i < c->s->nrewrites; i++)
      s = replace_all(s, c->s->rewrites[i].from, c->s->rewrites[i].to);
    pthread_mutex_unlock(&c->s->mu);
  }
  return send_answer(c->conn, c->status, s, strlen(s));
}


static void count(struct emu_server *s, int api, int status)
{
  if (status < 0 || status >= NSTATUS)
    status = 0;
  s->total++;
  s->totals[api]++;
  s->counts[api][status]++;
}

static struct fault take_fault(struct emu_server *s, int api)
{
  struct fault none = {.kind = FAULT_NONE};
  for (size_t i = 0; i < s->nfaults; i++) {
    struct fault *f = &s->faults[i];
    if (f->api >= 0 && f->api != api)
      continue;
    struct fault got = *f;
    if (--f->remaining <= 0) {
      memmove(f, f + 1, (s->nfaults - i - 1) * sizeof *f);
      s->nfaults--;
    }
    return got;
  }
  return none;
}

static enum MHD_Result handle(struct emu_server *s, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              struct req *r)
{
  struct call c = {.s = s, .conn = conn, .method = method, .raw = r,
                   .status = 500};
  enum MHD_Result ret;
  if (r->len) {
    json_error_t jerr;
    c.body = json_loadb(r->body, r->len, JSON_ALLOW_NUL, &jerr);
  }

  if (strncmp(url, "/_emulator/", 11) == 0) {
    c.is_control = true;
    pthread_mutex_lock(&s->mu);
    if (s->cfg.control_needs_token &&
        !srv_token_valid(s, MHD_lookup_connection_value(
                                conn, MHD_HEADER_KIND,
                                MHD_HTTP_HEADER_AUTHORIZATION),
                         emu_mono_ms()))
      srv_answer_error(&c, 401, NULL, MSG_401);
    else
      srv_control(&c, url);
    pthread_mutex_unlock(&s->mu);
    ret = send_call(&c);
    goto out;
  }

  char buf[1024];
  const struct route *route = url && strlen(url) < sizeof buf
                                  ? srv_match_route(url, buf, sizeof buf, c.arg)
                                  : NULL;
  int api = API_UNKNOWN;
  if (!route) {
    srv_answer_error(&c, 404, NULL, MSG_404);
  } else {
    api = route->methods[0].api;
    int found = -1;
    for (int i = 0; i < 3 && route->methods[i].method; i++)
      if (strcmp(route->methods[i].method, method) == 0)
        found = i;
    if (found < 0)
      srv_answer_error(&c, 405, NULL, MSG_405);
    else
      api = route->methods[found].api;
    if (found >= 0)
      goto routed;
  }
  pthread_mutex_lock(&s->mu);
  count(s, api, c.status);
  pthread_mutex_unlock(&s->mu);
  srv_logf(s, "%s %s -> %d", method, url, c.status);
  ret = send_call(&c);
  goto out;

routed:;
  /* A private demo: a caller without the token is turned away before it can
   * spend a window or set off a lock that the owner would then meet. */
  if (s->cfg.control_needs_token && api != CLIQ_API_OAUTH_TOKEN) {
    pthread_mutex_lock(&s->mu);
    bool known = srv_token_valid(s, MHD_lookup_connection_value(
                                        conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_AUTHORIZATION),
                                 emu_mono_ms());
    if (!known) {
      srv_answer_error(&c, 401, NULL, MSG_401);
      count(s, api, c.status);
    }
    pthread_mutex_unlock(&s->mu);
    if (!known) {
      srv_logf(s, "%s %s -> %d", method, url, c.status);
      ret = send_call(&c);
      goto out;
    }
  }
  pthread_mutex_lock(&s->mu);
  int64_t now = emu_mono_ms();
  size_t in_window = srv_rate_note(s, api, now);
  struct fault f = take_fault(s, api);
  pthread_mutex_unlock(&s->mu);

  if (f.kind == FAULT_DELAY && f.delay_ms > 0) {
    struct timespec ts = {f.delay_ms / 1000, (f.delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
  }

  pthread_mutex_lock(&s->mu);
  now = emu_mono_ms();
  bool throttled = false;
  switch (f.kind) {
  case FAULT_500:
    srv_answer_error(&c, 500, NULL, MSG_500);
    break;
  case FAULT_503:
    srv_answer_error(&c, 503, NULL, MSG_503);
    break;
  case FAULT_401:
    srv_answer_error(&c, 401, NULL, MSG_401);
    break;
  case FAULT_INVALID_JSON:
    break;
  case FAULT_DROP:
    break;
  case FAULT_THROTTLE:
    srv_rate_lock(s, api, now, srv_scaled_ms(s, cliq_api_info(api)->lock_s));
    throttled = true;
    break;
  default: {
    struct rate *rt = &s->rates[api];
    const struct cliq_api_info *info = cliq_api_info(api);
    if (api != CLIQ_API_OAUTH_TOKEN &&
        !srv_token_valid(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION),
                         now)) {
      srv_answer_error(&c, 401, NULL, MSG_401);
    } else if (rt->locked_until > now) {
      srv_ring_pop_newest(&rt->charged);
      throttled = true;
    } else if ((long)in_window > info->limit) {
      srv_ring_pop_newest(&rt->charged);
      srv_rate_lock(s, api, now, srv_scaled_ms(s, info->lock_s));
      throttled = true;
    } else if (api == CLIQ_API_OAUTH_TOKEN) {
      srv_h_oauth(&c, now);
    } else {
      srv_dispatch(&c, route->id, api);
    }
  }
  }
  if (throttled) {
    int st;
    json_t *body = srv_throttle_body(s, api, &st);
    srv_answer_json(&c, st, body);
    s->throttled++;
  }
  int counted = c.status;
  if (f.kind == FAULT_DROP || f.kind == FAULT_ACCEPT_DROP)
    counted = 0;
  if (f.kind == FAULT_INVALID_JSON)
    counted = 200;
  count(s, api, counted);
  pthread_mutex_unlock(&s->mu);

  srv_logf(s, "%s %s -> %d (%s%s%s)", method, url, counted, cliq_api_name(api),
           f.kind != FAULT_NONE ? ", fault " : "",
           f.kind != FAULT_NONE ? srv_fault_names[f.kind] : "");
  if (f.kind == FAULT_DROP || f.kind == FAULT_ACCEPT_DROP) {
    ret = MHD_NO;   /* MHD closes the connection without an answer */
  } else if (f.kind == FAULT_INVALID_JSON) {
    static const char bad[] = "{\"data\": [{\"id\": \"1\", \"text\": <html>Service busy</html>";
    char *b = strdup(bad);
    ret = b ? send_answer(conn, 200, b, strlen(b)) : MHD_NO;
  } else if (f.kind == FAULT_TRUNCATE) {
    char *b = c.out ? json_dumps(c.out, JSON_COMPACT) : strdup("{\"message_id\":\"");
    if (!b) {
      ret = MHD_NO;
    } else {
      size_t len = strlen(b) / 2;
      if (!len)
        len = 1;
      ret = send_answer(conn, c.status == 204 ? 200 : c.status, b, len);
    }
  } else {
    ret = send_call(&c);
  }
out:
  json_decref(c.body);
  json_decref(c.out);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  (void)version;
  struct emu_server *s = cls;
  struct req *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size) {
    if (r->len + *upload_size > MAX_BODY) {
      r->too_big = true;
    } else {
      if (r->len + *upload_size + 1 > r->cap) {
        size_t ncap = (r->len + *upload_size + 1) * 2;
        char *nb = realloc(r->body, ncap);
        if (!nb)
          return MHD_NO;
        r->body = nb;
        r->cap = ncap;
      }
      memcpy(r->body + r->len, upload, *upload_size);
      r->len += *upload_size;
      r->body[r->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->too_big) {
    char *b = strdup("{\"message\":\"" MSG_400 "\"}");
    return b ? send_answer(conn, 400, b, strlen(b)) : MHD_NO;
  }
  return handle(s, conn, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)conn;
  (void)toe;
  struct req *r = *con_cls;
  if (r) {
    free(r->body);
    free(r);
    *con_cls = NULL;
  }
}

/* ---- lifetime ---- */

struct emu_server *emu_server_start(struct emu_org *org,
                                    const struct emu_config *cfg, int port,
                                    char *err, size_t errlen)
{
  struct emu_server *s = calloc(1, sizeof *s);
  if (!s)
    abort();
  s->org = org;
  s->cfg = *cfg;
  s->rng = org->seed * 0x9E3779B97F4A7C15ULL + 7;
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->daemon = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_POLL | (cfg->quiet ? 0 : MHD_USE_ERROR_LOG),
      (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
  if (!s->daemon) {
    snprintf(err, errlen, "cannot listen on 127.0.0.1:%d", port);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    s->org = NULL;
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : port;
  if (pthread_create(&s->chatter, NULL, srv_chatter_main, s) == 0)
    s->chatter_running = true;
  return s;
}

int emu_server_port(const struct emu_server *s)
{
  return s->port;
}

void emu_server_stop(struct emu_server *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->chatter_running)
    pthread_join(s->chatter, NULL);
  MHD_stop_daemon(s->daemon);
  for (int a = 0; a < CLIQ_API_COUNT; a++)
  {
    free(s->rates[a].seen.ts);
    free(s->rates[a].charged.ts);
  }
  for (size_t i = 0; i < s->ntokens; i++)
    free(s->tokens[i].value);
  free(s->tokens);
  for (size_t i = 0; i < s->nrewrites; i++) {
    free(s->rewrites[i].from);
    free(s->rewrites[i].to);
  }
  free(s->rewrites);
  free(s->faults);
  emu_org_free(s->org);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
