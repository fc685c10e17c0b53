/* cliq-emulator: command line (PROTOCOL.md "Command line"). */
#include "emulator.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
  fputs(
      "usage: cliq-emulator [--port N] [--time-scale N] [--demo | --org FILE | --synthetic CxTxM]\n"
      "                     [--seed N] [--chatter SECONDS] [--throttle-style 429|400]\n"
      "                     [--access-token TOKEN | --no-static-token]\n"
      "                     [--client-id ID] [--client-secret S] [--refresh-token R] [--auth-code CODE]\n"
      "                     [--token-lifetime SECONDS] [--quiet]\n"
      "Plays Zoho Cliq on 127.0.0.1; prints the port on a line of its own. See PROTOCOL.md.\n",
      f);
}

static int parse_double(const char *s, double lo, double *out)
{
  char *end = NULL;
  errno = 0;
  double d = strtod(s, &end);
  if (errno || end == s || *end || d < lo)
    return -1;
  *out = d;
  return 0;
}

static struct emu_org *load_org_file(const char *path, uint64_t seed)
{
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
  if (!root) {
    fprintf(stderr, "cliq-emulator: %s:%d: %s\n", path, jerr.line, jerr.text);
    return NULL;
  }
  char err[512];
  struct emu_org *org = emu_org_from_json(root, seed, err, sizeof err);
  json_decref(root);
  if (!org)
    fprintf(stderr, "cliq-emulator: %s: %s\n", path, err);
  return org;
}

int main(int argc, char **argv)
{
  struct emu_config cfg = {
      .time_scale = 1,
      .throttle_style = 429,
      .static_token_enabled = true,
      .static_token = "emulator-token",
      .client_id = "emulator-client",
      .client_secret = "emulator-secret",
      .refresh_token = "emulator-refresh",
      .auth_code = "emulator-code",
      .token_lifetime_s = 3600,
  };
  long port = 0;
  unsigned long long seed = 1;
  const char *org_file = NULL;
  int syn_c = -1, syn_t = 0, syn_m = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                     \
  do {                                                                   \
    if (!v) {                                                            \
      fprintf(stderr, "cliq-emulator: %s needs a value\n", a);           \
      return 2;                                                          \
    }                                                                    \
    i++;                                                                 \
  } while (0)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--port") == 0) {
      NEED_VALUE();
      char *end;
      port = strtol(v, &end, 10);
      if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "cliq-emulator: bad port %s\n", v);
        return 2;
      }
    } else if (strcmp(a, "--time-scale") == 0) {
      NEED_VALUE();
      if (parse_double(v, 1e-9, &cfg.time_scale) < 0) {
        fprintf(stderr, "cliq-emulator: bad time scale %s\n", v);
        return 2;
      }
    } else if (strcmp(a, "--demo") == 0) {
      org_file = NULL;
      syn_c = -1;
    } else if (strcmp(a, "--org") == 0) {
      NEED_VALUE();
      org_file = v;
      syn_c = -1;
    } else if (strcmp(a, "--synthetic") == 0) {
      NEED_VALUE();
      char extra;
      if (sscanf(v, "%dx%dx%d%c", &syn_c, &syn_t, &syn_m, &extra) != 3 ||
          syn_c < 0 || syn_t < 0 || syn_m < 0 || syn_c > 100000 ||
          syn_t > 1000000 || syn_m > 100000000) {
        fprintf(stderr, "cliq-emulator: --synthetic wants CxTxM, e.g. 3x10x50\n");
        return 2;
      }
      org_file = NULL;
    } else if (strcmp(a, "--seed") == 0) {
      NEED_VALUE();
      seed = strtoull(v, NULL, 10);
    } else if (strcmp(a, "--chatter") == 0) {
      NEED_VALUE();
      if (parse_double(v, 0, &cfg.chatter_s) < 0) {
        fprintf(stderr, "cliq-emulator: bad chatter interval %s\n", v);
        return 2;
      }
    } else if (strcmp(a, "--throttle-style") == 0) {
      NEED_VALUE();
      if (strcmp(v, "429") == 0)
        cfg.throttle_style = 429;
      else if (strcmp(v, "400") == 0)
        cfg.throttle_style = 400;
      else {
        fprintf(stderr, "cliq-emulator: --throttle-style is 429 or 400\n");
        return 2;
      }
    } else if (strcmp(a, "--access-token") == 0) {
      NEED_VALUE();
      cfg.static_token = v;
      cfg.static_token_enabled = true;
    } else if (strcmp(a, "--token-file") == 0) {
      NEED_VALUE();
      /* The token from a file (0600) instead of the command line, which
       * every local user can read; then it guards the control path too. */
      static char token[256];
      FILE *tf = fopen(v, "re");
      if (!tf || !fgets(token, sizeof token, tf)) {
        fprintf(stderr, "cliq-emulator: cannot read the token file %s\n", v);
        if (tf)
          fclose(tf);
        return 2;
      }
      fclose(tf);
      token[strcspn(token, "\r\n")] = '\0';
      if (!token[0]) {
        fprintf(stderr, "cliq-emulator: the token file %s is empty\n", v);
        return 2;
      }
      cfg.static_token = token;
      cfg.static_token_enabled = true;
      cfg.control_needs_token = true;
    } else if (strcmp(a, "--no-static-token") == 0) {
      cfg.static_token_enabled = false;
    } else if (strcmp(a, "--client-id") == 0) {
      NEED_VALUE();
      cfg.client_id = v;
    } else if (strcmp(a, "--client-secret") == 0) {
      NEED_VALUE();
      cfg.client_secret = v;
    } else if (strcmp(a, "--refresh-token") == 0) {
      NEED_VALUE();
      cfg.refresh_token = v;
    } else if (strcmp(a, "--auth-code") == 0) {
      NEED_VALUE();
      cfg.auth_code = v;
    } else if (strcmp(a, "--token-lifetime") == 0) {
      NEED_VALUE();
      if (parse_double(v, 1e-3, &cfg.token_lifetime_s) < 0) {
        fprintf(stderr, "cliq-emulator: bad token lifetime %s\n", v);
        return 2;
      }
    } else if (strcmp(a, "--quiet") == 0) {
      cfg.quiet = true;
    } else {
      fprintf(stderr, "cliq-emulator: unknown argument %s\n", a);
      usage(stderr);
      return 2;
    }
#undef NEED_VALUE
  }

  struct emu_org *org;
  if (org_file)
    org = load_org_file(org_file, seed);
  else if (syn_c >= 0)
    org = emu_org_synthetic(syn_c, syn_t, syn_m, seed);
  else
    org = emu_org_demo(seed);
  if (!org)
    return 1;

  /* Block the signals before any thread exists so that only sigwait sees
   * them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  char err[256];
  struct emu_server *srv = emu_server_start(org, &cfg, (int)port, err, sizeof err);
  if (!srv) {
    fprintf(stderr, "cliq-emulator: %s\n", err);
    emu_org_free(org);
    return 1;
  }
  printf("%d\n", emu_server_port(srv));
  fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  emu_server_stop(srv);
  return 0;
}
