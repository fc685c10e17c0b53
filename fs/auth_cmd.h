/* fs/auth_cmd: the `cliqfs auth` command (cliqfs(1) GETTING AN ACCOUNT
 * READY). */
#ifndef CLIQFS_AUTH_CMD_H
#define CLIQFS_AUTH_CMD_H

/* argv[0] is "auth".  Returns the exit status: 0 when the token was stored. */
int cliqfs_auth_main(int argc, char **argv);

#endif
