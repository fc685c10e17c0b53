/* fs/status_cmd: `cliqfs status [--json] [MOUNTPOINT...]`, a person's
 * summary of a mount's .cliqfs/status.  It reads the file through the mount
 * like any other program, so it shows what the running daemon knows. */
#ifndef CLIQFS_STATUS_CMD_H
#define CLIQFS_STATUS_CMD_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* The command; argv[0] is "status".  Returns the exit status: 0 when every
 * mount named (or found) answered, 1 when one did not, 2 on a usage error. */
int cliqfs_status_main(int argc, char **argv);

/* The mount points of the cliqfs mounts this process can see (file system
 * type "fuse.cliqfs"), at most max.  Returns how many were stored; each is
 * malloc'd and the caller frees it. */
#define CLIQFS_MAX_MOUNTS 64
size_t cliqfs_mounts(char **mounts, size_t max);

/* Writes the summary of one status document (borrowed) to out.  now is the
 * wall clock in seconds, for "time left" of locks. */
void cliqfs_status_print(FILE *out, const char *mountpoint, json_t *status,
                         double now);

#endif
