/* fs/config_i.h: what the files of the configuration share (config.c,
 * config_file.c, config_write.c). Private: the interface is fs/config.h. */
#ifndef CLIQFS_CONFIG_I_H
#define CLIQFS_CONFIG_I_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/config.h"
#include "api/cliq.h"
#include "api/endpoints.h"
#include "cache/statefile.h"
#include "cache/store.h"

/* fs/config: see config.h.  Plain C, no FUSE. */

/* ---- Vocabulary ---------------------------------------------------------- */

#define CONFIG_MAX_BYTES (1 << 20)
#define DC_COUNT (sizeof dc_table / sizeof dc_table[0])
#define DC_LIST "us, eu, in, au, jp, cn, ca, sa, uk"
#define LIMIT_PREFIX "limit."

struct line_list {
  char **lines;
  size_t count;
};

/* ---- Tables --------------------------------------------------------------- */

/* The keys whose values are secrets (never logged, file kept private). */
#define SECRET_KEYS 3
extern const char *const secret_keys[SECRET_KEYS];

/* ---- Shared by the files of this module -------------------------------------- */

bool cliqfs_config_key_is_secret(const char *key);

int cliqfs_dc_urls(const char *dc, const char **api_url,
                   const char **accounts_url);

int replace_string(char **slot, const char *value, bool secret);

/* Why cliq_url_check refused a URL, without its "URL refused: " lead. */
const char *url_refusal(const cliq_error *err);

int cliqfs_config_set(struct cliqfs_config *cfg, const char *key,
                      const char *value, char *errbuf, size_t errlen);

/* One line split in place.  Returns 1 for a setting, 0 for a blank or
 * comment line, -EINVAL when there is no '='. */
int split_line(char *line, char **key, char **value);

void line_list_clear(struct line_list *l);

/* Reads every line of an open file (newlines stripped). */
int read_lines(FILE *f, struct line_list *out);

#endif
