/* fs/demo_mount: `cliqfs --demo`: the bundled Cliq emulator with its demo
 * organization, living exactly as long as the mount (cliqfs(1) OPTIONS).
 *
 * The emulator is started from the hooks of cliqfs_run() (fs/cliqfs.h), that
 * is in the daemon after it has daemonized, so that it is the daemon's child:
 * on_stop stops it by PID and waits for it, and PR_SET_PDEATHSIG stops it if
 * the daemon dies without running on_stop.  Its state and cache folders are
 * in a private temporary folder removed at stop.
 *
 * Ownership: a cliqfs_demo owns its emulator path, temporary folder and the
 * emulator process; cliqfs_demo_free() stops and removes whatever is left.
 * No FUSE types, so that the tests can drive it without mounting.
 */
#ifndef CLIQFS_FS_DEMO_MOUNT_H
#define CLIQFS_FS_DEMO_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fs/cliqfs.h"
#include "fs/config.h"

/* Each demo has a random token of CLIQFS_DEMO_TOKEN_LEN hex digits, in a
 * file readable by its owner only (FOLDER/token): the emulator asks for it on
 * the API and on its control path, so other local users can neither read
 * the demo through its port nor steer it. */
#define CLIQFS_DEMO_TOKEN_LEN 64

struct cliqfs_demo;

/* Finds the emulator binary: $CLIQ_EMULATOR when set, else the one of the
 * build tree when this cliqfs runs from that build tree, else the installed
 * one (libexecdir/cliqfs/cliq-emulator, also looked for relative to this
 * executable).  Returns an absolute path (caller frees), or NULL with a
 * sentence in errbuf. */
char *cliqfs_demo_find_emulator(char *errbuf, size_t errlen);

/* emulator_path is copied and must be absolute (the daemon runs in "/").
 * quiet passes --quiet to the emulator. */
struct cliqfs_demo *cliqfs_demo_new(const char *emulator_path, bool quiet);
/* Stops the emulator if still running and removes the temporary folder. */
void cliqfs_demo_free(struct cliqfs_demo *demo);

/* Fills hooks with on_start/on_stop bound to demo. */
void cliqfs_demo_hooks(struct cliqfs_demo *demo, struct cliqfs_hooks *hooks);

/* What on_start does: makes the temporary folder, starts the emulator
 * (`--demo --port 0 --chatter 20`, and --time-scale when cfg has one), reads
 * its port within a deadline, points cfg at it (api_url, accounts_url,
 * access_token, state_dir, cache_dir) and finalizes cfg.  On failure nothing
 * is left running.  0 or -errno with a sentence in errbuf. */
int cliqfs_demo_start(struct cliqfs_demo *demo, struct cliqfs_config *cfg,
                      char *errbuf, size_t errlen);
/* What on_stop does: SIGTERM to the emulator, waits for it (SIGKILL after a
 * deadline), removes the temporary folder.  Safe to call twice. */
void cliqfs_demo_stop(struct cliqfs_demo *demo);

/* For tests and logs: the emulator's PID (0 when not running), its port,
 * the temporary folder (NULL before start / after stop). */
pid_t cliqfs_demo_emulator_pid(const struct cliqfs_demo *demo);
int cliqfs_demo_port(const struct cliqfs_demo *demo);
const char *cliqfs_demo_dir(const struct cliqfs_demo *demo);

#endif
