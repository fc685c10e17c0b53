/* C harness for tests that need a Cliq emulator (tests/emulator/PROTOCOL.md).
 *
 *   struct emu e = {0};              // optionally e.exe = "/path/cliq-emulator"
 *   const char *args[] = {"--time-scale", "60", NULL};
 *   if (emu_start(&e, args) != 0) fail;
 *   ... use e.url (e.g. "http://127.0.0.1:41873") as api_url and accounts_url,
 *       token "emulator-token" (EMU_STATIC_TOKEN) ...
 *   json_t *c = emu_ctl(&e, "GET", "/_emulator/counters", NULL);
 *   long n = emu_count(&e, "chats.messages");
 *   emu_stop(&e);
 *
 * The emulator runs as a child process with its stdout read for the port;
 * its stderr is inherited (pass "--quiet" to silence its request log).
 */
#ifndef CLIQ_EMU_HARNESS_H
#define CLIQ_EMU_HARNESS_H

#include <jansson.h>
#include <sys/types.h>

#define EMU_STATIC_TOKEN "emulator-token"
#define EMU_CLIENT_ID "emulator-client"
#define EMU_CLIENT_SECRET "emulator-secret"
#define EMU_REFRESH_TOKEN "emulator-refresh"
#define EMU_AUTH_CODE "emulator-code"

struct emu {
  const char *exe;      /* in: emulator path; NULL = $CLIQ_EMULATOR */
  pid_t pid;            /* out: 0 when not running */
  int port;             /* out */
  char url[64];         /* out: "http://127.0.0.1:PORT" */
};

/* Starts the emulator with "--port 0" and extra_args (NULL-terminated, may be
 * NULL), waits up to 10 s for its port line.  Returns 0, or -errno (the child
 * is reaped on failure). */
int emu_start(struct emu *e, const char *const *extra_args);

/* SIGTERM, then waits (SIGKILL after 5 s).  Safe to call twice. */
void emu_stop(struct emu *e);

/* Sends METHOD path (under e->url, e.g. "/_emulator/faults") with an optional
 * JSON body.  Returns the parsed answer (new reference; "{}" for an empty
 * body), or NULL on a transport or parse error. */
json_t *emu_ctl(struct emu *e, const char *method, const char *path,
                const char *json_body);

/* Requests the emulator has counted for an API class ("chats.messages"),
 * 0 when none, -1 on error. */
long emu_count(struct emu *e, const char *api);

#endif
