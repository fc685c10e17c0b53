/* tests/cache/test_store_log.c: the store's message logs (cache/store.c)
 * against the emulator over real HTTP on 127.0.0.1: a first fetch pages back
 * `history` messages, a refresh appends only what is new (earlier bytes never
 * change, no id twice), the disk copy of the JSONL (beside the tcache's small
 * record) is the log's bytes and a new store starts warm from it, a damaged
 * copy is fetched again, and a log cached in the older "messages" form, with
 * ids written "<ms>%20<n>" or "<ms> <n>", is the same messages as the
 * server's "<ms>_<n>".  Each test gets its own emulator and folders. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/cliq.h"
#include "cache/statefile.h"
#include "cache/store.h"
#include "cache/tcache.h"
#include "harness.h"
#include "testutil.h"

#define SCALE 200.0
#define SCALE_ARG "200"
#define WAIT_S 30.0

#define ME "855727961"
#define SCOTT "855727962"
#define CHANNEL_ID "O5797000000001"
#define CHANNEL_CHAT "CT_1207124526552602256_60002085329"
#define THREAD CHANNEL_CHAT "-T-1"
#define PARENT "1727333520001_1"
#define NMSG 250
#define T0 INT64_C(1727333600000)

struct env {
  struct emu emu;
  char *dir, *cache_dir;
  cliq_client *client;
  tcache *cache;
  store *store;
};

/* Message i of the thread: its id ("<ms>_<n>") and time. */
static void msg_id(int i, char *buf, size_t len)
{
  snprintf(buf, len, "%" PRId64 "_%d", T0 + i * 1000, 1000 + i);
}

/* The same id as "<ms>%20<n>" (i % 3 == 1) or "<ms> <n>" (i % 3 == 2). */
static void msg_id_other_form(int i, char *buf, size_t len)
{
  const char *sep = i % 3 == 1 ? "%20" : i % 3 == 2 ? " " : "_";
  snprintf(buf, len, "%" PRId64 "%s%d", T0 + i * 1000, sep, 1000 + i);
}

static char *org_json(void)
{
  json_t *msgs = json_array();
  for (int i = 0; i < NMSG; i++) {
    char id[64], text[64];
    msg_id(i, id, sizeof id);
    snprintf(text, sizeof text, "reply %d", i);
    json_array_append_new(msgs, json_pack("{s:s, s:I, s:s, s:s}", "id", id,
                                          "time", (json_int_t)(T0 + i * 1000),
                                          "sender", i % 2 ? ME : SCOTT,
                                          "text", text));
  }
  json_t *org = json_pack(
      "{s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}],"
      " s:[{s:s, s:s, s:s, s:s, s:[s, s],"
      "     s:[{s:s, s:I, s:s, s:s}],"
      "     s:[{s:s, s:s, s:s, s:[s], s:[s, s], s:o}]}]}",
      "me", ME, "users", "user_id", ME, "email_id", "ryan.west@zylker.com",
      "name", "Ryan West", "user_id", SCOTT, "email_id",
      "scott.fisher@zylker.com", "name", "Scott Fisher", "channels",
      "channel_id", CHANNEL_ID, "chat_id", CHANNEL_CHAT, "unique_name",
      "general", "name", "#General", "members", ME, SCOTT, "messages", "id",
      PARENT, "time", (json_int_t)1727333520001, "sender", ME, "text",
      "parent", "threads", "chat_id", THREAD, "thread_message_id", PARENT,
      "title", "Long thread", "followers", ME, "members", ME, SCOTT,
      "messages", msgs);
  assert_non_null(org);
  char *text = json_dumps(org, JSON_COMPACT);
  json_decref(org);
  return text;
}

static void open_store(struct env *e, int history)
{
  tcache_options to = {.disk_dir = e->cache_dir, .time_scale = SCALE};
  cliq_error err;
  e->cache = tcache_new(&to, &err);
  assert_non_null(e->cache);
  store_options so = {.client = e->client, .cache = e->cache,
                      .history = history, .time_scale = SCALE};
  e->store = store_new(&so, &err);
  assert_non_null(e->store);
}

static void close_store(struct env *e)
{
  store_free(e->store);
  e->store = NULL;
  tcache_free(e->cache);
  e->cache = NULL;
}

static int setup(void **state)
{
  struct env *e = calloc(1, sizeof *e);
  *state = e;
  e->dir = tu_mkdtemp("storelog");
  char *org_path = NULL;
  if (!e->dir || asprintf(&org_path, "%s/org.json", e->dir) < 0 ||
      asprintf(&e->cache_dir, "%s/cache", e->dir) < 0)
    return -1;
  char *org = org_json();
  FILE *f = fopen(org_path, "w");
  if (!f)
    return -1;
  fputs(org, f);
  fclose(f);
  free(org);
  const char *args[] = {"--quiet", "--org", org_path, "--time-scale",
                        SCALE_ARG, NULL};
  int r = emu_start(&e->emu, args);
  free(org_path);
  if (r != 0)
    return -1;
  cliq_client_config cfg = {.api_url = e->emu.url, .accounts_url = e->emu.url,
                            .access_token = EMU_STATIC_TOKEN,
                            .timeout_ms = 5000};
  cliq_error err;
  e->client = cliq_client_new(&cfg, NULL, &err);
  return e->client ? 0 : -1;
}

static int teardown(void **state)
{
  struct env *e = *state;
  if (!e)
    return 0;
  if (e->store)
    close_store(e);
  cliq_client_free(e->client);
  emu_stop(&e->emu);
  tu_rm_rf(e->dir);
  free(e->dir);
  free(e->cache_dir);
  free(e);
  return 0;
}

/* ---- reading a log ------------------------------------------------------------ */

static char *read_all(store_log *log, enum store_log_form form, size_t *len)
{
  size_t n = store_log_size(log, form);
  char *buf = malloc(n + 1);
  assert_non_null(buf);
  size_t got = 0;
  /* In odd pieces, as a reader would. */
  while (got < n) {
    size_t r = store_log_read(log, form, (off_t)got, buf + got,
                              n - got < 777 ? n - got : 777);
    assert_true(r > 0);
    got += r;
  }
  assert_int_equal(store_log_read(log, form, (off_t)n, buf, 1), 0);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* The JSONL form's messages: each line a message object, times in order, no
 * id twice.  Returns how many; ids[k] gets the k-th normalised id (ids may be
 * NULL; the caller frees them). */
static size_t check_jsonl(const char *jsonl, char **ids, size_t max)
{
  size_t n = 0;
  int64_t last = 0;
  json_t *seen = json_object();
  const char *p = jsonl;
  while (*p) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    json_error_t jerr;
    json_t *raw = json_loadb(p, (size_t)(nl - p), 0, &jerr);
    assert_non_null(raw);
    /* Compact, as the API sends it. */
    char *again = json_dumps(raw, JSON_COMPACT);
    assert_int_equal(strlen(again), (size_t)(nl - p));
    assert_memory_equal(again, p, (size_t)(nl - p));
    free(again);
    cliq_message m;
    assert_int_equal(cliq_parse_message(raw, &m, NULL), 0);
    assert_true(m.time_ms >= last);
    last = m.time_ms;
    if (json_object_get(seen, m.id))
      fail_msg("id %s twice in the log", m.id);
    json_object_set_new(seen, m.id, json_true());
    if (ids && n < max)
      ids[n] = strdup(m.id);
    n++;
    cliq_message_clear(&m);
    json_decref(raw);
    p = nl + 1;
  }
  json_decref(seen);
  return n;
}

/* Lines of the text form that start a message (continuations start with a TAB). */
static size_t text_messages(const char *text)
{
  size_t n = 0;
  for (const char *p = text; *p;) {
    if (*p != '\t')
      n++;
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    p = nl + 1;
  }
  return n;
}

static store_log *get_log(struct env *e, enum store_mode mode)
{
  store_log *log = NULL;
  cliq_error err;
  int r = store_log_get(e->store, THREAD, mode, &log, &err);
  if (r != 0)
    fail_msg("store_log_get: %d %s", r, err.message);
  assert_non_null(log);
  return log;
}

/* Fetches until the log has `want` messages or the deadline passes. */
static size_t fetch_until(struct env *e, size_t want)
{
  double end = tu_now_mono() + WAIT_S;
  for (;;) {
    store_log *log = get_log(e, STORE_FETCH);
    size_t len;
    char *jsonl = read_all(log, STORE_LOG_JSONL, &len);
    size_t n = check_jsonl(jsonl, NULL, 0);
    free(jsonl);
    if (n >= want || tu_now_mono() > end)
      return n;
    tu_sleep(0.02);
  }
}

/* Refreshes until Cliq is asked for the log again (more than `asked`
 * messages requests); the answer adds nothing: the log keeps its sizes. */
static void refresh_adds_nothing(struct env *e, store_log *log, long asked,
                                 size_t jsonl_len, size_t text_len)
{
  double end = tu_now_mono() + WAIT_S;
  while (emu_count(&e->emu, "chats.messages") == asked && tu_now_mono() < end) {
    get_log(e, STORE_FETCH);
    tu_sleep(0.02);
  }
  assert_true(emu_count(&e->emu, "chats.messages") > asked);
  assert_int_equal(store_log_size(log, STORE_LOG_JSONL), jsonl_len);
  assert_int_equal(store_log_size(log, STORE_LOG_TEXT), text_len);
}

/* The log's disk copy (NULL when there is none), once the cache's writer
 * has written what was appended to it. */
static char *disk_copy(struct env *e, size_t *len)
{
  char *path = tcache_disk_path(e->cache, "log/" THREAD, "jsonl");
  assert_non_null(path);
  tcache_disk_settle(e->cache, path);
  char *buf = NULL;
  *len = 0;
  int r = statefile_read(path, &buf, len);
  free(path);
  return r == 0 ? buf : NULL;
}

static void assert_disk_copy_is(struct env *e, const char *jsonl, size_t len)
{
  size_t dlen;
  char *copy = disk_copy(e, &dlen);
  assert_non_null(copy);
  assert_int_equal(dlen, len);
  assert_memory_equal(copy, jsonl, len);
  free(copy);
}

static void post(struct env *e, const char *text)
{
  char body[256];
  snprintf(body, sizeof body,
           "{\"chat_id\":\"%s\",\"sender_id\":\"%s\",\"text\":\"%s\"}", THREAD,
           SCOTT, text);
  json_t *r = emu_ctl(&e->emu, "POST", "/_emulator/post", body);
  assert_non_null(r);
  json_decref(r);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_first_fetch_pages_back_history(void **state)
{
  struct env *e = *state;
  open_store(e, 120);
  store_log *log = get_log(e, STORE_FETCH);
  assert_true(store_log_known(log));
  /* 100 and then 20 older ones. */
  assert_int_equal(emu_count(&e->emu, "chats.messages"), 2);
  size_t jlen, tlen;
  char *jsonl = read_all(log, STORE_LOG_JSONL, &jlen);
  char *text = read_all(log, STORE_LOG_TEXT, &tlen);
  char *ids[120] = { 0 };
  assert_int_equal(check_jsonl(jsonl, ids, 120), 120);
  for (int k = 0; k < 120; k++) {
    char want[64];
    msg_id(NMSG - 120 + k, want, sizeof want);
    assert_string_equal(ids[k], want);
    free(ids[k]);
  }
  assert_int_equal(text_messages(text), 120);
  assert_non_null(strstr(text, ": reply 249\n"));
  assert_null(strstr(text, ": reply 129\n"));
  assert_int_equal(store_log_last_ms(log), T0 + (NMSG - 1) * 1000);
  /* The cache holds the log on disk only: memory counts a few bookkeeping
   * bytes for it, not its JSONL. */
  tcache_stats st;
  tcache_stats_get(e->cache, &st);
  assert_true(st.bytes < 1024);
  assert_true(jlen > 10 * st.bytes);
  assert_disk_copy_is(e, jsonl, jlen);
  free(jsonl);
  free(text);
}

static void test_refresh_appends_only_what_is_new(void **state)
{
  struct env *e = *state;
  open_store(e, 1000);
  store_log *log = get_log(e, STORE_FETCH);
  size_t jlen0, tlen0;
  char *jsonl0 = read_all(log, STORE_LOG_JSONL, &jlen0);
  char *text0 = read_all(log, STORE_LOG_TEXT, &tlen0);
  assert_int_equal(check_jsonl(jsonl0, NULL, 0), NMSG);

  post(e, "news one");
  post(e, "news two");
  post(e, "news three");
  assert_int_equal(fetch_until(e, NMSG + 3), NMSG + 3);
  size_t jlen1, tlen1;
  char *jsonl1 = read_all(log, STORE_LOG_JSONL, &jlen1);
  char *text1 = read_all(log, STORE_LOG_TEXT, &tlen1);
  /* Append-only: what was there is there, byte for byte. */
  assert_true(jlen1 > jlen0);
  assert_true(tlen1 > tlen0);
  assert_memory_equal(jsonl1, jsonl0, jlen0);
  assert_memory_equal(text1, text0, tlen0);
  assert_int_equal(text_messages(text1), NMSG + 3);
  assert_non_null(strstr(text1 + tlen0, ": news one\n"));
  assert_non_null(strstr(text1 + tlen0, ": news three\n"));
  assert_disk_copy_is(e, jsonl1, jlen1);

  /* Later refreshes see the newest message again (fromtime is inclusive):
   * nothing is added twice. */
  long before = emu_count(&e->emu, "chats.messages");
  double end = tu_now_mono() + WAIT_S;
  while (emu_count(&e->emu, "chats.messages") < before + 3 &&
         tu_now_mono() < end) {
    get_log(e, STORE_FETCH);
    tu_sleep(0.02);
  }
  assert_true(emu_count(&e->emu, "chats.messages") >= before + 3);
  assert_int_equal(store_log_size(log, STORE_LOG_JSONL), jlen1);
  assert_int_equal(store_log_size(log, STORE_LOG_TEXT), tlen1);
  free(jsonl0);
  free(text0);
  free(jsonl1);
  free(text1);
}

static void test_new_store_starts_warm_from_disk(void **state)
{
  struct env *e = *state;
  open_store(e, 1000);
  store_log *log = get_log(e, STORE_FETCH);
  size_t jlen0, tlen0;
  char *jsonl0 = read_all(log, STORE_LOG_JSONL, &jlen0);
  char *text0 = read_all(log, STORE_LOG_TEXT, &tlen0);
  close_store(e);
  long asked = emu_count(&e->emu, "chats.messages");

  open_store(e, 1000);
  log = get_log(e, STORE_CACHED);
  assert_true(store_log_known(log));
  assert_int_equal(emu_count(&e->emu, "chats.messages"), asked);
  size_t jlen1, tlen1;
  char *jsonl1 = read_all(log, STORE_LOG_JSONL, &jlen1);
  char *text1 = read_all(log, STORE_LOG_TEXT, &tlen1);
  assert_int_equal(jlen1, jlen0);
  assert_int_equal(tlen1, tlen0);
  assert_memory_equal(jsonl1, jsonl0, jlen0);
  assert_memory_equal(text1, text0, tlen0);
  assert_int_equal(store_log_last_ms(log), T0 + (NMSG - 1) * 1000);
  tcache_stats st;
  tcache_stats_get(e->cache, &st);
  assert_true(st.bytes < 1024);

  /* Stale by now: a refresh asks from the cursor and adds nothing. */
  refresh_adds_nothing(e, log, asked, jlen0, tlen0);
  /* The loaded copy goes on growing in place. */
  post(e, "after the restart");
  assert_int_equal(fetch_until(e, NMSG + 1), NMSG + 1);
  size_t jlen2;
  char *jsonl2 = read_all(log, STORE_LOG_JSONL, &jlen2);
  assert_memory_equal(jsonl2, jsonl0, jlen0);
  assert_disk_copy_is(e, jsonl2, jlen2);
  free(jsonl2);
  free(jsonl0);
  free(text0);
  free(jsonl1);
  free(text1);
}

/* A copy longer than the record says (a write the record never told of) is
 * read up to its length; one whose bytes differ (torn, or written by another
 * process on the folder) is no copy: the log is fetched again, and written
 * anew. */
static void test_disk_copy_checked(void **state)
{
  struct env *e = *state;
  open_store(e, 1000);
  store_log *log = get_log(e, STORE_FETCH);
  size_t jlen0;
  char *jsonl0 = read_all(log, STORE_LOG_JSONL, &jlen0);
  char *path = tcache_disk_path(e->cache, "log/" THREAD, "jsonl");
  assert_non_null(path);
  close_store(e);

  /* Longer. */
  char *longer = malloc(jlen0 + 16);
  assert_non_null(longer);
  memcpy(longer, jsonl0, jlen0);
  memcpy(longer + jlen0, "{\"half a line", 13);
  assert_int_equal(statefile_write_atomic(path, longer, jlen0 + 13), 0);
  free(longer);
  open_store(e, 1000);
  log = get_log(e, STORE_CACHED);
  assert_int_equal(store_log_size(log, STORE_LOG_JSONL), jlen0);
  close_store(e);

  /* One byte changed: not known without a fetch; fetched, written anew. */
  char *changed = strdup(jsonl0);
  assert_non_null(changed);
  char *digit = strstr(changed, "reply 7");
  assert_non_null(digit);
  digit[6] = '8';
  assert_int_equal(statefile_write_atomic(path, changed, jlen0), 0);
  free(changed);
  open_store(e, 1000);
  store_log *cached = NULL;
  cliq_error err;
  assert_int_equal(store_log_get(e->store, THREAD, STORE_CACHED, &cached, &err),
                   -ENODATA);
  long asked = emu_count(&e->emu, "chats.messages");
  log = get_log(e, STORE_FETCH);
  assert_true(emu_count(&e->emu, "chats.messages") > asked);
  size_t jlen1;
  char *jsonl1 = read_all(log, STORE_LOG_JSONL, &jlen1);
  assert_int_equal(jlen1, jlen0);
  assert_memory_equal(jsonl1, jsonl0, jlen0);
  assert_disk_copy_is(e, jsonl1, jlen1);
  close_store(e);

  /* Gone: the same. */
  assert_int_equal(unlink(path), 0);
  open_store(e, 1000);
  assert_int_equal(store_log_get(e->store, THREAD, STORE_CACHED, &cached, &err),
                   -ENODATA);
  close_store(e);

  /* A fresh record of 0 bytes (the copy could not be written at all): no
   * copy either, rather than a known, empty log. */
  open_store(e, 1000);
  json_t *rec = json_pack("{s:I, s:I, s:s}", "cursor_ms", (json_int_t)0,
                          "jsonl_bytes", (json_int_t)0, "jsonl_crc32",
                          "cbf29ce484222325");
  assert_non_null(rec);
  tcache_put(e->cache, "log/" THREAD, rec, 3600);
  json_decref(rec);
  close_store(e);
  open_store(e, 1000);
  assert_int_equal(store_log_get(e->store, THREAD, STORE_CACHED, &cached, &err),
                   -ENODATA);
  free(path);
  free(jsonl0);
  free(jsonl1);
}

static void test_old_form_and_other_id_forms(void **state)
{
  struct env *e = *state;
  /* A log as an older version cached it: a "messages" array, the ids in
   * the other forms, the cursor at message 200. */
  json_t *msgs = json_array();
  for (int i = 0; i < NMSG; i++) {
    char id[64], text[64];
    msg_id_other_form(i, id, sizeof id);
    snprintf(text, sizeof text, "reply %d", i);
    json_array_append_new(
        msgs, json_pack("{s:s, s:I, s:{s:s, s:s}, s:s, s:{s:s}}", "id", id,
                        "time", (json_int_t)(T0 + i * 1000), "sender", "id",
                        SCOTT, "name", "Scott Fisher", "type", "text",
                        "content", "text", text));
  }
  json_t *old = json_pack("{s:I, s:o}", "cursor_ms",
                          (json_int_t)(T0 + 200 * 1000), "messages", msgs);
  tcache_options to = {.disk_dir = e->cache_dir, .time_scale = SCALE};
  cliq_error err;
  tcache *c = tcache_new(&to, &err);
  assert_non_null(c);
  tcache_put(c, "log/" THREAD, old, STORE_TTL_LOG);
  tcache_free(c);
  json_decref(old);

  open_store(e, 1000);
  store_log *log = get_log(e, STORE_CACHED);
  size_t jlen0, tlen0;
  char *jsonl0 = read_all(log, STORE_LOG_JSONL, &jlen0);
  char *text0 = read_all(log, STORE_LOG_TEXT, &tlen0);
  char *ids[NMSG] = { 0 };
  assert_int_equal(check_jsonl(jsonl0, ids, NMSG), NMSG);
  for (int k = 0; k < NMSG; k++) {
    char want[64];
    msg_id(k, want, sizeof want);
    assert_string_equal(ids[k], want);
    free(ids[k]);
  }
  assert_int_equal(text_messages(text0), NMSG);

  /* The server sends messages 200..249 again, ids as "<ms>_<n>": the same
   * messages, nothing added. */
  long asked = emu_count(&e->emu, "chats.messages");
  refresh_adds_nothing(e, log, asked, jlen0, tlen0);
  /* And a new one still comes; the copy on disk is the log's bytes. */
  post(e, "after the old cache");
  assert_int_equal(fetch_until(e, NMSG + 1), NMSG + 1);
  size_t jlen1;
  char *jsonl1 = read_all(log, STORE_LOG_JSONL, &jlen1);
  assert_disk_copy_is(e, jsonl1, jlen1);
  free(jsonl1);
  free(jsonl0);
  free(text0);
}

/* An append of the disk copy that fails (here the copy's path is a folder)
 * loses nothing: the log keeps its messages, and the next change writes the
 * whole copy anew once it can. */
static void test_failed_disk_append_written_anew(void **state)
{
  struct env *e = *state;
  open_store(e, 1000);
  char *path = tcache_disk_path(e->cache, "log/" THREAD, "jsonl");
  assert_non_null(path);
  assert_int_equal(mkdir(path, 0700), 0);
  store_log *log = get_log(e, STORE_FETCH);
  size_t jlen0;
  char *jsonl0 = read_all(log, STORE_LOG_JSONL, &jlen0);
  assert_true(jlen0 > 0);
  tcache_disk_settle(e->cache, path);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));

  assert_int_equal(rmdir(path), 0);
  post(e, "after the failed write");
  assert_int_equal(fetch_until(e, NMSG + 1), NMSG + 1);
  size_t jlen1;
  char *jsonl1 = read_all(log, STORE_LOG_JSONL, &jlen1);
  assert_true(jlen1 > jlen0);
  assert_memory_equal(jsonl1, jsonl0, jlen0);
  assert_disk_copy_is(e, jsonl1, jlen1);
  close_store(e);

  /* And a new store starts from it without asking. */
  long asked = emu_count(&e->emu, "chats.messages");
  open_store(e, 1000);
  log = get_log(e, STORE_CACHED);
  assert_int_equal(store_log_size(log, STORE_LOG_JSONL), jlen1);
  assert_int_equal(emu_count(&e->emu, "chats.messages"), asked);
  free(jsonl0);
  free(jsonl1);
  free(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_first_fetch_pages_back_history, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_refresh_appends_only_what_is_new,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_new_store_starts_warm_from_disk, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_disk_copy_checked, setup, teardown),
    cmocka_unit_test_setup_teardown(test_old_form_and_other_id_forms, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_failed_disk_append_written_anew, setup,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
