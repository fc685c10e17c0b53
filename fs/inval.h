/* fs/inval: kernel cache invalidations, sent only from a thread of their own
 * (a notification sent from inside a request handler can deadlock with the
 * kernel waiting on that very request).  Anyone may queue; repeated requests
 * for one inode that are still pending are merged.  There are no entry
 * invalidations: a name Cliq changed (a thread's new title) lives on in the
 * kernel's dentry cache at most its entry timeout (5 s for a directory), as
 * any name does; the listing shows the new name once it is invalidated.
 *
 * Thread-safe.
 */
#ifndef CLIQFS_FS_INVAL_H
#define CLIQFS_FS_INVAL_H

#include <stddef.h>
#include <stdint.h>

struct fuse_session;
typedef struct inval_queue inval_queue;

/* Starts the sender thread for se.  NULL on failure. */
inval_queue *inval_start(struct fuse_session *se);
/* Sends what is queued, then stops the thread and frees the queue. */
void inval_stop(inval_queue *q);

/* Attributes and cached data of an inode. */
void inval_inode(inval_queue *q, uint64_t ino);

/* Notifications sent so far (for .cliqfs/status and tests). */
uint64_t inval_sent(inval_queue *q);
/* Notifications queued and not sent yet (for .cliqfs/status and tests: a
 * test waits for none before it counts what reaches cliqfs). */
size_t inval_pending(inval_queue *q);

#endif
