/* cache/verbs: the ctl verbs, in one table (cliqfs(1) WRITING, ctl): the
 * word a user writes, the enum constant the code names it by, and the Cliq
 * API its request uses.  Include it and expand CLIQ_CTL_VERBS(X) with an X
 * of three arguments: X(word, CONSTANT, api). */
#ifndef CLIQ_CACHE_VERBS_H
#define CLIQ_CACHE_VERBS_H

#include "api/endpoints.h"

#define CLIQ_CTL_VERBS(X)                                     \
  X(follow, FOLLOW, CLIQ_API_THREADS_FOLLOW)                  \
  X(unfollow, UNFOLLOW, CLIQ_API_THREADS_UNFOLLOW)            \
  X(mute, MUTE, CLIQ_API_CHATS_MUTE)                          \
  X(unmute, UNMUTE, CLIQ_API_CHATS_UNMUTE)                    \
  X(leave, LEAVE, CLIQ_API_CHATS_LEAVE)                       \
  X(close, CLOSE, CLIQ_API_THREADS_UPDATE)                    \
  X(reopen, REOPEN, CLIQ_API_THREADS_UPDATE)

/* The words, in the table's order. */
#define CLIQ_CTL_WORD(word, constant, api) #word,
#define CLIQ_CTL_VERB_WORDS { CLIQ_CTL_VERBS(CLIQ_CTL_WORD) }

#endif
