/* cache/store_docs.c: thread documents (details, main message, members and
 * followers) and their rendering. */
#include "cache/store_i.h"

/* ---- Thread details, main message, people ------------------------------------------ */

static int fetch_thread_info(void *vctx, const char *key, json_t **out,
                             cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_thread t;
  int r = cliq_get_thread(ctx->s->client, ctx->prio, ctx->arg, &t, err);
  if (r < 0)
    return r;
  *out = json_incref(t.raw);
  cliq_thread_clear(&t);
  return *out ? 0 : cliq_fail(err, EIO, "thread %s: empty answer", ctx->arg);
}

static int doc_json(store *s, const char *tid, enum store_doc doc,
                    enum store_mode mode, enum cliq_priority prio,
                    json_t **out, cliq_error *err);

int store_thread_lookup(store *s, const char *tid, enum store_mode mode,
                        store_thread *out, cliq_error *err)
{
  memset(out, 0, sizeof *out);
  json_t *v = NULL;
  int r = doc_json(s, tid, STORE_DOC_INFO, mode, CLIQ_PRIO_READ, &v, err);
  if (r < 0)
    return r;
  cliq_thread t;
  r = cliq_parse_thread(v, &t, err);
  json_decref(v);
  if (r < 0)
    return r;
  return thread_from_cliq(&t, out);
}

static int render_info(json_t *v, char **text_out, size_t *len_out,
                       cliq_error *err)
{
  char *txt = json_dumps(v, JSON_INDENT(2));
  if (!txt)
    return cliq_fail(err, ENOMEM, "out of memory");
  size_t len = strlen(txt);
  char *withnl = realloc(txt, len + 2);
  if (!withnl) {
    free(txt);
    return cliq_fail(err, ENOMEM, "out of memory");
  }
  withnl[len] = '\n';
  withnl[len + 1] = '\0';
  *text_out = withnl;
  *len_out = len + 1;
  return 0;
}

static int fetch_main(void *vctx, const char *key, json_t **out,
                      cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_message m;
  int r = cliq_get_main_message(ctx->s->client, ctx->prio, ctx->arg, &m, err);
  if (r < 0)
    return r;
  *out = json_incref(m.raw);
  cliq_message_clear(&m);
  return 0;
}

int render_message_json(json_t *raw, char **text_out, size_t *len_out,
                               cliq_error *err)
{
  cliq_message m;
  int r = cliq_parse_message(raw, &m, err);
  if (r < 0)
    return r;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  r = store_render_message(&m, &buf, &len, &cap);
  cliq_message_clear(&m);
  if (r < 0) {
    free(buf);
    return cliq_fail(err, ENOMEM, "out of memory");
  }
  *text_out = buf;
  *len_out = len;
  return 0;
}

static json_t *users_to_json(const cliq_user_list *list)
{
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < list->count; i++) {
    const cliq_user *u = &list->items[i];
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "user_id",
                                         u->user_id ? u->user_id : "",
                                         "email_id",
                                         u->email_id ? u->email_id : "",
                                         "name", u->name ? u->name : ""));
  }
  return arr;
}

static int fetch_people(void *vctx, const char *key, json_t **out,
                        cliq_error *err)
{
  (void)key;
  struct fetch_ctx *ctx = vctx;
  ctx->fetched = true;
  cliq_user_list list = { 0 };
  int r;
  switch (ctx->which) {
  case STORE_MEMBERS:
    r = cliq_get_members(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  case STORE_FOLLOWERS:
    r = cliq_get_followers(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  default:
    r = cliq_get_nonfollowers(ctx->s->client, ctx->prio, ctx->arg, &list, err);
    break;
  }
  if (r < 0)
    return r;
  if (list.skipped) {
    static const char *const kind[] = { "members", "followers", "non-followers" };
    char what[160];
    snprintf(what, sizeof what, "%s of thread %s",
             kind[ctx->which >= 0 && ctx->which <= 2 ? ctx->which : 0], ctx->arg);
    report_skipped(ctx->s, what, list.skipped, list.skipped_why);
  }
  *out = users_to_json(&list);
  cliq_user_list_clear(&list);
  return *out ? 0 : cliq_fail(err, ENOMEM, "out of memory");
}

/* Each document: its cache key kind, freshness, API and fetch.  The people
 * documents follow info and main in enum store_people order. */
struct doc_kind {
  const char *kind;
  double ttl;
  enum cliq_api api;
  tcache_fetch_fn fetch;
};

static const struct doc_kind doc_kinds[] = {
  [STORE_DOC_INFO] = { "tinfo", STORE_TTL_THREAD_INFO, CLIQ_API_THREADS_GET,
                       fetch_thread_info },
  [STORE_DOC_MAIN] = { "main", STORE_TTL_MAIN, CLIQ_API_THREADS_MAIN,
                       fetch_main },
  [STORE_DOC_MEMBERS] = { "members", STORE_TTL_PEOPLE, CLIQ_API_CHATS_MEMBERS,
                          fetch_people },
  [STORE_DOC_FOLLOWERS] = { "followers", STORE_TTL_PEOPLE,
                            CLIQ_API_FOLLOWERS_GET, fetch_people },
  [STORE_DOC_NONFOLLOWERS] = { "nonfollowers", STORE_TTL_PEOPLE,
                               CLIQ_API_NONFOLLOWERS, fetch_people },
};
_Static_assert(STORE_DOC_MEMBERS + STORE_FOLLOWERS == STORE_DOC_FOLLOWERS &&
                   STORE_DOC_MEMBERS + STORE_NONFOLLOWERS ==
                       STORE_DOC_NONFOLLOWERS,
               "people documents in enum store_people order");

enum store_doc people_doc(enum store_people which)
{
  return (enum store_doc)(STORE_DOC_MEMBERS + which);
}

/* A document's cached answer in the given mode and lane; *out gets a new
 * reference. */
static int doc_json(store *s, const char *tid, enum store_doc doc,
                    enum store_mode mode, enum cliq_priority prio,
                    json_t **out, cliq_error *err)
{
  *out = NULL;
  if ((unsigned)doc >= sizeof doc_kinds / sizeof *doc_kinds)
    return cliq_fail(err, EINVAL, "no such document");
  const struct doc_kind *k = &doc_kinds[doc];
  char *key = make_key(k->kind, tid);
  if (!key)
    return cliq_fail(err, ENOMEM, "out of memory");
  struct fetch_ctx ctx = { .s = s, .arg = tid, .prio = prio,
                           .which = (int)doc - STORE_DOC_MEMBERS };
  int r = cached_fetch(s, key, k->ttl, k->api, mode, k->fetch, &ctx, out, err);
  free(key);
  return r;
}

int people_json(store *s, const char *tid, enum store_people which,
                       enum store_mode mode, json_t **out, cliq_error *err)
{
  return doc_json(s, tid, people_doc(which), mode, CLIQ_PRIO_READ, out, err);
}

const char *jstr(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static int render_people(json_t *v, char **text_out, size_t *len_out,
                         cliq_error *err)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int r = buf_append(&buf, &len, &cap, "", 0);
  size_t i;
  json_t *u;
  json_array_foreach(v, i, u) {
    cliq_user cu = { (char *)jstr(u, "user_id"), (char *)jstr(u, "email_id"),
                     (char *)jstr(u, "name") };
    if (r == 0)
      r = store_render_user(&cu, &buf, &len, &cap);
  }
  if (r < 0) {
    free(buf);
    return cliq_fail(err, ENOMEM, "out of memory");
  }
  *text_out = buf;
  *len_out = len;
  return 0;
}

/* With sync = all a document synced once is served from that copy, however
 * old, and the syncer brings it up to date in the background: reading the
 * whole tree costs nothing.  Only a document never fetched is asked for. */
int store_doc_source(store *s, const char *tid, enum store_doc doc,
                     enum store_mode mode, json_t **src_out, cliq_error *err)
{
  if (mode == STORE_FETCH && s->sync == STORE_SYNC_ALL)
    mode = STORE_PEEK;
  return doc_json(s, tid, doc, mode, CLIQ_PRIO_READ, src_out, err);
}

const char *doc_key_kind(enum store_doc doc)
{
  return doc_kinds[doc].kind;
}

enum cliq_api doc_api(enum store_doc doc)
{
  return doc_kinds[doc].api;
}

int doc_fetch_background(store *s, const char *tid, enum store_doc doc,
                         cliq_error *err)
{
  json_t *v = NULL;
  int r = doc_json(s, tid, doc, STORE_FETCH, CLIQ_PRIO_BACKGROUND, &v, err);
  json_decref(v);
  return r;
}

int store_doc_render(enum store_doc doc, json_t *src, char **text_out,
                     size_t *len_out, cliq_error *err)
{
  *text_out = NULL;
  *len_out = 0;
  switch (doc) {
  case STORE_DOC_INFO:
    return render_info(src, text_out, len_out, err);
  case STORE_DOC_MAIN:
    return render_message_json(src, text_out, len_out, err);
  case STORE_DOC_MEMBERS:
  case STORE_DOC_FOLLOWERS:
  case STORE_DOC_NONFOLLOWERS:
    return render_people(src, text_out, len_out, err);
  }
  return cliq_fail(err, EINVAL, "no such document");
}

/* ---- Rendering ---------------------------------------------------------------------- */

void store_format_time(int64_t ms, char *out, size_t outlen)
{
  time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) ||
      strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, outlen, "1970-01-01T00:00:00Z");
}

char *store_shown_text(const char *s)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (buf_append_str(&buf, &len, &cap, "") < 0 ||
      buf_append_shown(&buf, &len, &cap, s ? s : "", s ? strlen(s) : 0) < 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

int store_render_message(const cliq_message *m, char **buf, size_t *len,
                         size_t *cap)
{
  char ts[32];
  store_format_time(m->time_ms, ts, sizeof ts);
  const char *who = m->sender_name && *m->sender_name ? m->sender_name
                    : m->sender_id && *m->sender_id   ? m->sender_id
                                                      : "?";
  int r = 0;
  r |= buf_append_str(buf, len, cap, ts);
  r |= buf_append_str(buf, len, cap, " ");
  r |= buf_append_field(buf, len, cap, who);
  r |= buf_append_str(buf, len, cap, ":");
  const char *text = m->text ? m->text : "";
  /* Trailing line breaks carry nothing and would make empty lines. */
  size_t tlen = strlen(text);
  while (tlen > 0 && (text[tlen - 1] == '\n' || text[tlen - 1] == '\r'))
    tlen--;
  if (tlen > 0)
    r |= buf_append_str(buf, len, cap, " ");
  size_t start = 0;
  for (size_t i = 0; i <= tlen; i++) {
    if (i < tlen && text[i] != '\n')
      continue;
    size_t end = i;
    if (end > start && text[end - 1] == '\r')
      end--;
    if (start > 0)
      r |= buf_append_str(buf, len, cap, "\t");
    r |= buf_append_shown(buf, len, cap, text + start, end - start);
    r |= buf_append_str(buf, len, cap, "\n");
    start = i + 1;
  }
  return r ? -ENOMEM : 0;
}

int store_render_user(const cliq_user *u, char **buf, size_t *len, size_t *cap)
{
  int r = 0;
  r |= buf_append_field(buf, len, cap, u->user_id ? u->user_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_field(buf, len, cap, u->email_id ? u->email_id : "");
  r |= buf_append_str(buf, len, cap, "\t");
  r |= buf_append_field(buf, len, cap, u->name ? u->name : "");
  r |= buf_append_str(buf, len, cap, "\n");
  return r ? -ENOMEM : 0;
}
