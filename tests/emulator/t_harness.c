/* The C harness: start, count, steer and stop an emulator. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                      \
      failures++;                                                          \
    }                                                                      \
  } while (0)

static size_t sink(char *d, size_t s, size_t n, void *u)
{
  (void)d;
  (void)u;
  return s * n;
}

static long get_status(struct emu *e, const char *path, const char *token)
{
  char url[256], auth[128];
  long code = 0;
  struct curl_slist *h = NULL;
  CURL *c = curl_easy_init();
  snprintf(url, sizeof url, "%s%s", e->url, path);
  snprintf(auth, sizeof auth, "Authorization: Zoho-oauthtoken %s", token);
  h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return code;
}

int main(void)
{
  int failures = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);

  struct emu bad = {.exe = "/nonexistent/cliq-emulator"};
  CHECK(emu_start(&bad, NULL) < 0);
  CHECK(bad.pid == 0);

  struct emu e = {0};
  const char *args[] = {"--quiet", "--synthetic", "2x3x4", NULL};
  int rc = emu_start(&e, args);
  CHECK(rc == 0);
  if (rc != 0)
    return 1;
  CHECK(e.port > 0 && e.pid > 0);
  CHECK(strncmp(e.url, "http://127.0.0.1:", 17) == 0);

  CHECK(emu_count(&e, "channels.list") == 0);
  CHECK(get_status(&e, "/api/v2/channels", EMU_STATIC_TOKEN) == 200);
  CHECK(get_status(&e, "/api/v2/channels", "wrong") == 401);
  CHECK(emu_count(&e, "channels.list") == 2);

  json_t *f = emu_ctl(&e, "POST", "/_emulator/faults",
                      "{\"api\":\"channels.list\",\"kind\":\"503\",\"count\":1}");
  CHECK(f && json_integer_value(json_object_get(f, "id")) > 0);
  json_decref(f);
  CHECK(get_status(&e, "/api/v2/channels", EMU_STATIC_TOKEN) == 503);
  CHECK(get_status(&e, "/api/v2/channels", EMU_STATIC_TOKEN) == 200);

  json_t *st = emu_ctl(&e, "GET", "/_emulator/state?messages=0", NULL);
  CHECK(st && json_array_size(json_object_get(st, "channels")) == 2);
  json_decref(st);

  pid_t pid = e.pid;
  emu_stop(&e);
  CHECK(e.pid == 0);
  CHECK(kill(pid, 0) < 0 && errno == ESRCH);
  emu_stop(&e);   /* twice is harmless */

  curl_global_cleanup();
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
