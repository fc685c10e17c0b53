/* fs/: the FUSE filesystem (low-level API, FUSE_USE_VERSION 312).
 * main() parses the command line and the config, then calls cliqfs_run().
 */
#ifndef CLIQFS_FS_CLIQFS_H
#define CLIQFS_FS_CLIQFS_H

#include "fs/config.h"

struct fuse_args;

/* Hooks run in the daemon process after it has daemonized and before the
 * session loop starts (on_start) and after the loop ends (on_stop): --demo
 * starts and stops its emulator there so that the emulator lives exactly as
 * long as the mount. */
struct cliqfs_hooks {
  int (*on_start)(void *ctx, struct cliqfs_config *cfg);
  void (*on_stop)(void *ctx);
  void *ctx;
};

/* Mounts at the mountpoint named in args (fuse_parse_cmdline syntax:
 * -f, -d, -s, -o opts) and serves until unmounted.  cfg is borrowed and may be
 * modified by hooks->on_start before any request is served.  Returns the
 * process exit status (0 on a clean unmount). */
int cliqfs_run(struct cliqfs_config *cfg, struct fuse_args *args,
               const struct cliqfs_hooks *hooks);

#endif
