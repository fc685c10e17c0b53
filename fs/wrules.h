/* fs/wrules: the write rules of cliqfs(1) WRITING that can be checked without
 * Cliq: message size and UTF-8, one trailing newline, state verbs, follower
 * and ctl lines.  Pure; unit-tested in tests/fs/test_wrules.c.
 *
 * Ownership: *_out strings are malloc'd, caller frees.
 */
#ifndef CLIQFS_FS_WRULES_H
#define CLIQFS_FS_WRULES_H

#include <stdbool.h>
#include <stddef.h>

#define WR_MAX_CHARS 5000

/* 0 when buf is UTF-8; a sequence cut at the very end is accepted unless
 * final (it may be completed by the next write).  -EILSEQ otherwise. */
int wr_utf8_check(const char *buf, size_t len, bool final);
/* Characters (code points) in UTF-8 text; a cut sequence counts as one. */
size_t wr_utf8_chars(const char *buf, size_t len);
/* The message rules on everything written so far: -EILSEQ, -EMSGSIZE (more
 * than WR_MAX_CHARS characters, one trailing newline not counted), or 0. */
int wr_message_check(const char *buf, size_t len, bool final);
/* Bytes of the message to post: len less one trailing newline. */
size_t wr_message_len(const char *buf, size_t len);

/* The state file: surrounding white space ignored, one word of close, reopen,
 * closed, open.  Returns 0 with *close set for a complete verb; 1 when
 * nothing (or, unless final, the beginning of a verb) was written; -EINVAL. */
int wr_state_parse(const char *buf, size_t len, bool final, bool *close);

/* One line of `followers`: "-ID" removes, otherwise the first field (up to a
 * TAB or space) is a user id or email.  Returns 0 with *id_out and *remove,
 * 1 for a blank line, -EINVAL for a line with nothing after '-'. */
int wr_follower_line(const char *line, size_t len, char **id_out, bool *remove);

/* One line of `ctl`: 0 with *verb_out for a known verb, 1 for a blank line,
 * -EINVAL otherwise.  When partial (the line may still grow), a prefix of a
 * verb also gives 1. */
int wr_ctl_line(const char *line, size_t len, bool partial, char **verb_out);

#endif
