/* What the files of the emulated organization share (private: org.c,
 * org_file.c and org_synthetic.c include it; the rest of the emulator uses
 * emulator.h, which says who owns what).  The family:
 *   org.c            the model: users, user sets, channels, threads, their
 *                    chats of messages, ids, lookups, and the clocks
 *   org_file.c       the --org format: loading it, dumping the state in it
 *   org_synthetic.c  synthetic organizations and their generated messages
 *   org_json.c       the JSON shapes of the reference (emulator.h only)
 *
 * The builders below add to an org, which owns what they return; strings
 * passed in are borrowed and copied.  They abort when out of memory.
 */
#ifndef CLIQ_EMULATOR_ORG_I_H
#define CLIQ_EMULATOR_ORG_I_H

#include "emulator.h"

#include <stddef.h>
#include <stdint.h>

/* ---- org.c ---- */

/* strdup of s ("" for NULL). */
char *org_xstrdup(const char *s);
/* Appends a user; returns its index. */
int org_add_user(struct emu_org *org, const char *id, const char *email,
                 const char *name);
/* Appends an empty channel (joined). */
struct emu_channel *org_add_channel(struct emu_org *org);
/* Appends an empty thread to ch (its index and channel set). */
struct emu_thread *org_add_thread(struct emu_channel *ch);
/* Appends a zeroed stored message to c (thread -1); the caller fills it. */
struct emu_msg *org_chat_push(struct emu_chat *c);
/* The <n> of a new message id "<ms>_<n>". */
uint64_t org_msg_suffix(struct emu_org *org);
/* New chat ids (new strings): a channel's, and a thread's under parent. */
char *org_new_channel_chat_id(struct emu_org *org);
char *org_new_thread_chat_id(struct emu_org *org, const char *parent);

/* ---- org_synthetic.c ---- */

/* Fills v with generated message i of c (i < c->n_virtual). */
void org_virtual_message(struct emu_org *org, struct emu_chat *c, size_t i,
                         struct emu_msg_view *v);

#endif
