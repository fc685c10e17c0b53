/* fs/auth_cmd: `cliqfs auth`, which exchanges a Zoho Self Client code for a
 * refresh token and stores it in the config file (cliqfs(1) GETTING AN
 * ACCOUNT READY). */
#include "fs/auth_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cliq.h"
#include "fs/config.h"

#define PROG "cliqfs"

static void print_auth_help(void)
{
  char *config = cliqfs_default_config_path();
  printf(
    "Usage: " PROG " auth --dc DC --client-id ID --client-secret SECRET "
    "--code CODE\n"
    "                   [--config FILE] [--accounts-url URL] [--api-url URL]\n"
    "\n"
    "Exchanges a Self Client code for a refresh token and writes it, with the\n"
    "client id and secret, to the config file (mode 0600).\n"
    "\n"
    "In https://api-console.zoho.com (of your data centre), add a Self "
    "Client,\n"
    "then under \"Generate Code\" enter the scopes\n"
    "  ZohoCliq.Channels.READ,ZohoCliq.Chats.READ,ZohoCliq.Chats.UPDATE,\n"
    "  ZohoCliq.Chats.DELETE,ZohoCliq.Messages.READ,ZohoCliq.Webhooks.CREATE\n"
    "and run this command within the code's lifetime.\n"
    "\n"
    "  --dc DC              data centre of your Zoho account: us eu in au jp "
    "cn ca\n"
    "                       sa uk (default: us)\n"
    "  --client-id ID       the Self Client's Client ID (required)\n"
    "  --client-secret S    the Self Client's Client Secret (required)\n"
    "  --code CODE          the generated code; it works once (required)\n"
    "  --config FILE        the config file to write (default: %s)\n"
    "  --accounts-url URL   accounts base instead of the DC's, also stored in\n"
    "                       the config (default: the DC's; for tests)\n"
    "  --api-url URL        Cliq API base to store in the config (default: "
    "none,\n"
    "                       the DC's is used)\n",
    config ? config : "~/.config/cliqfs/config");
  free(config);
}


static void auth_explain(const cliq_error *err, const char *dc,
                         const char *accounts_url)
{
  const char *code = err->code;
  if (err->err == EAGAIN) {
    fprintf(stderr,
            PROG " auth: the accounts server %s refused: too many token "
            "requests in a short time (Zoho allows about 10 per 10 minutes). "
            "Wait a few minutes, generate a new code and run this again.\n",
            accounts_url);
  } else if (err->err == EACCES && strcmp(code, "invalid_code") == 0) {
    fprintf(stderr,
            PROG " auth: the code was refused (invalid_code). A Self Client "
            "code works only once and only for the minutes chosen when it was "
            "generated, and only in its own data centre: generate a new one "
            "and check that --dc %s (%s) is where your Zoho account lives.\n",
            dc, accounts_url);
  } else if (err->err == EACCES && strncmp(code, "invalid_client", 14) == 0) {
    fprintf(stderr,
            PROG " auth: the client was refused (%s). Check --client-id and "
            "--client-secret (API console, Self Client, Client Secret tab), "
            "and that --dc %s (%s) is the data centre where the Self Client "
            "was made: Zoho answers this way for a client of another data "
            "centre.\n",
            code, dc, accounts_url);
  } else if (err->err == EACCES) {
    fprintf(stderr,
            PROG " auth: the accounts server %s refused the request (%s). "
            "Check the client id, secret and code, and that --dc %s is your "
            "account's data centre.\n",
            accounts_url, code[0] ? code : err->message, dc);
  } else {
    fprintf(stderr, PROG " auth: could not get a token from %s: %s.\n",
            accounts_url,
            err->message[0] ? err->message : strerror(err->err ? err->err
                                                                : EIO));
  }
}

/* Copies optarg and overwrites it in argv, for the secrets. */
static char *take_secret(char *arg)
{
  char *copy = strdup(arg);
  memset(arg, '*', strlen(arg));
  return copy;
}

int cliqfs_auth_main(int argc, char **argv)
{
  enum { OPT_DC = 1, OPT_ID, OPT_SECRET, OPT_CODE, OPT_CONFIG, OPT_ACCOUNTS,
         OPT_API, OPT_HELP };
  static const struct option options[] = {
    { "dc", required_argument, NULL, OPT_DC },
    { "client-id", required_argument, NULL, OPT_ID },
    { "client-secret", required_argument, NULL, OPT_SECRET },
    { "code", required_argument, NULL, OPT_CODE },
    { "config", required_argument, NULL, OPT_CONFIG },
    { "accounts-url", required_argument, NULL, OPT_ACCOUNTS },
    { "api-url", required_argument, NULL, OPT_API },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  char *dc = NULL, *client_id = NULL, *secret = NULL, *code = NULL;
  char *config = NULL, *accounts = NULL, *api = NULL;
  char *refresh = NULL, *access = NULL;
  bool help = false, bad = false;
  int status = 1;
  char **slot;

  opterr = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
    switch (opt) {
    case OPT_DC: slot = &dc; break;
    case OPT_ID: slot = &client_id; break;
    case OPT_SECRET:
      cliqfs_free_secret(&secret);
      secret = take_secret(optarg);
      continue;
    case OPT_CODE:
      cliqfs_free_secret(&code);
      code = take_secret(optarg);
      continue;
    case OPT_CONFIG: slot = &config; break;
    case OPT_ACCOUNTS: slot = &accounts; break;
    case OPT_API: slot = &api; break;
    case OPT_HELP:
    case 'h':
      help = true;
      continue;
    case ':':
      fprintf(stderr, PROG " auth: %s needs a value\n", argv[optind - 1]);
      bad = true;
      continue;
    default:
      if (optopt > 0 && optopt < 128)
        fprintf(stderr, PROG " auth: unknown option '-%c'\n", optopt);
      else
        fprintf(stderr, PROG " auth: unknown option '%s'\n",
                argv[optind - 1]);
      bad = true;
      continue;
    }
    free(*slot);
    *slot = strdup(optarg);
  }
  if (!bad && optind < argc) {
    fprintf(stderr, PROG " auth: unexpected argument '%s'\n", argv[optind]);
    bad = true;
  }
  if (help) {
    print_auth_help();
    status = 0;
    goto out;
  }
  if (bad)
    goto usage;
  const char *missing = !client_id ? "--client-id"
                        : !secret  ? "--client-secret"
                        : !code    ? "--code"
                                   : NULL;
  if (missing) {
    fprintf(stderr, PROG " auth: %s is missing.\n", missing);
    goto usage;
  }
  if (!dc && !(dc = strdup("us")))
    goto out;
  const char *dc_api, *dc_accounts;
  if (cliqfs_dc_urls(dc, &dc_api, &dc_accounts) < 0) {
    fprintf(stderr,
            PROG " auth: --dc %s is not a Zoho data centre (expected one of "
            "us, eu, in, au, jp, cn, ca, sa, uk).\n",
            dc);
    goto out;
  }
  (void)dc_api;
  const char *accounts_url = accounts ? accounts : dc_accounts;
  const char *urls[2][2] = { { "--accounts-url", accounts },
                             { "--api-url", api } };
  for (int i = 0; i < 2; i++) {
    cliq_error uerr;
    memset(&uerr, 0, sizeof uerr);
    if (urls[i][1] && cliq_url_check(urls[i][1], &uerr) < 0) {
      fprintf(stderr, PROG " auth: %s %s: %s\n", urls[i][0], urls[i][1],
              uerr.message);
      goto out;
    }
  }
  if (!config && !(config = cliqfs_default_config_path())) {
    fprintf(stderr, PROG " auth: cannot tell where the config file goes: "
                         "set HOME or XDG_CONFIG_HOME, or use --config "
                         "FILE.\n");
    goto out;
  }

  cliq_error err;
  memset(&err, 0, sizeof err);
  if (cliq_oauth_exchange_code(accounts_url, client_id, secret, code,
                               &refresh, &access, &err) < 0) {
    auth_explain(&err, dc, accounts_url);
    goto out;
  }

  /* A static access_token would shadow the new refresh token: drop it. */
  const char *keys[] = { "dc", "client_id", "client_secret", "refresh_token",
                         "access_token", "accounts_url", "api_url" };
  const char *values[] = { dc, client_id, secret, refresh, NULL, accounts,
                           api };
  size_t n = api ? 7 : 6;
  char serr[512] = "";
  if (cliqfs_config_store(config, keys, values, n, serr, sizeof serr) < 0) {
    fprintf(stderr,
            PROG " auth: the code was exchanged, but the config could not be "
            "written: %s.  The code is used up: fix that, generate a new code "
            "and run this again.\n",
            serr);
    goto out;
  }
  char *def = cliqfs_default_config_path();
  bool is_default = def && strcmp(def, config) == 0;
  free(def);
  printf("Saved the refresh token for data centre '%s' in %s (mode 0600).\n"
         "\n"
         "Next, mount your organization:\n"
         "  mkdir -p ~/cliq\n"
         "  " PROG "%s%s ~/cliq\n"
         "  ls ~/cliq                  # your channels\n"
         "  fusermount3 -u ~/cliq      # unmount\n",
         dc, config, is_default ? "" : " -o config=",
         is_default ? "" : config);
  status = 0;
  goto out;
usage:
  fprintf(stderr,
          "Usage: " PROG " auth --dc DC --client-id ID --client-secret SECRET "
          "--code CODE [--config FILE] [--accounts-url URL]\n"
          "Try '" PROG " auth --help'.\n");
out:
  free(dc);
  free(client_id);
  cliqfs_free_secret(&secret);
  cliqfs_free_secret(&code);
  cliqfs_free_secret(&refresh);
  cliqfs_free_secret(&access);
  free(config);
  free(accounts);
  free(api);
  return status;
}
