/* fs/names: directory names for threads (cliqfs(1) THE TREE, names).  Pure: no
 * FUSE, no I/O, unit-tested in tests/fs/test_names.c.
 *
 * Ownership: returned strings are malloc'd and owned by the caller.
 */
#ifndef CLIQFS_FS_NAMES_H
#define CLIQFS_FS_NAMES_H

#include <stddef.h>

#define NAMES_MAX_BYTES 255

/* The numeric part of a thread chat id ("CT_1_2-T-1291567019566818579" ->
 * "1291567019566818579"); for ids without "-T-", the digits after the last
 * '_' or '-', else the whole id.  Returns a pointer into chat_id. */
const char *names_numeric_id(const char *chat_id);

/* A title made safe as one directory name: '/' becomes U+2215, control
 * characters (C0, DEL, C1) and NUL are dropped, bytes that are not UTF-8 are
 * dropped, more than max_bytes is cut at a UTF-8 boundary.  A result that
 * would be blank (white space only, Unicode spaces included), "." or ".."
 * becomes the numeric id.  NULL title = "".
 * Returns NULL only when out of memory. */
char *names_safe_title(const char *title, const char *chat_id,
                       size_t max_bytes);

/* Whether `name`, given to mkdir, can become a new thread's title: UTF-8
 * without control characters, not blank, "." or "..", and not the shape of
 * a chat id (which reaches an existing thread).  Returns 0, or -EINVAL with
 * *why (may be NULL) set to a static sentence a user can read. */
int names_check_new(const char *name, const char **why);

/* Names for all threads of one channel: names_out[i] for (titles[i],
 * chat_ids[i]).  Where two threads (or a thread and one of `reserved`, the
 * channel's own files) would share a name, each thread of the group gets
 * " (<last 6 digits of its numeric id>)" appended, the title being cut so the
 * whole stays within NAMES_MAX_BYTES; names still equal after that fall back to
 * the full numeric id, then a counter.  The result depends only on the set of
 * threads, not on their order.  names_out has n slots; on success each holds a
 * new string.  Returns 0 or -ENOMEM (then names_out holds nothing). */
int names_assign(const char *const *titles, const char *const *chat_ids,
                 size_t n, const char *const *reserved, size_t n_reserved,
                 char **names_out);

#endif
