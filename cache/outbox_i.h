/* cache/outbox_i.h: what the files of the outbox journal share (outbox.c,
 * outbox_codec.c, outbox_slots.c, outbox_worker.c). Private: nothing outside
 * cache/ includes it; the interface is cache/outbox.h. */
#ifndef CLIQ_CACHE_OUTBOX_I_H
#define CLIQ_CACHE_OUTBOX_I_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cache/outbox.h"
#include "cache/statefile.h"

/* The journal keeps every pending entry in memory (an array sorted by id) and
 * one file per entry on disk.  outbox_append() reserves the id and the place
 * in memory under the lock, writes and fsyncs the file without it (appends
 * from several threads overlap their fsyncs), and then marks the entry
 * durable.  An entry that is not durable yet is invisible to the worker and
 * blocks the entries after it for the same target, so order per target is
 * the order of the ids. */

/* ---- Vocabulary ---------------------------------------------------------- */

/* Ids are reserved on disk in blocks so that an append costs one fsync'd
 * file, not two. */
#define OUTBOX_ID_BLOCK 1024
/* Outcomes of failed entries kept for outbox_wait_target_empty(), even after
 * the user deleted them from failed/. */
#define OUTBOX_RECENT_FAILURES 256

struct item {
  outbox_entry e;
  bool durable;
};

struct failure_note {
  uint64_t id;
  int err;
};

struct outbox {
  pthread_mutex_t mu;
  pthread_cond_t changed;        /* CLOCK_MONOTONIC */
  char *state_dir;
  unsigned slot;
  char *dir;                     /* state_dir/outbox or outbox.<slot> */
  char *failed_dir;              /* state_dir/failed or failed.<slot> */
  char *seq_path;
  int lock_fd;
  uint64_t next_id;
  uint64_t reserved_until;       /* ids below this are covered by .seq */
  struct item **items;           /* pending, sorted by id */
  size_t n, cap;
  outbox_entry *failed;          /* sorted by id */
  size_t nfailed, capfailed;
  struct failure_note recent[OUTBOX_RECENT_FAILURES];
  size_t recent_next;
  int appending;                 /* appends writing their file right now */
  size_t fsync_waiters;
  uint64_t gen;
  bool shutdown;
};

/* ---- Shared by the files of this module -------------------------------------- */

const char *outbox_kind_name(outbox_kind kind);

int outbox_kind_from_name(const char *name);

void outbox_entry_clear(outbox_entry *entry);

void outbox_entry_list_free(outbox_entry *items, size_t n);

int dup_or_null(const char *s, char **out);

/* Payloads are deep-copied in and out: callers may do what they like with
 * theirs, and no reference is shared between threads. */
int entry_copy(const outbox_entry *src, outbox_entry *dst);

/* Parses one entry file.  -EIO for anything that is not an entry of a kind
 * we know (such files are left alone). */
int entry_parse(const char *text, size_t len, uint64_t id,
                       outbox_entry *out);

char *entry_path(const char *dir, uint64_t id);

/* "0000000000000042.json" -> 42; 0 for any other name. */
uint64_t id_from_name(const char *name);

int write_entry(const char *dir, const outbox_entry *e, bool failed);

/* Index of id in items, or -1. */
ssize_t item_index(const outbox *ob, uint64_t id);

struct item *durable_item(outbox *ob, uint64_t id);

void items_remove(outbox *ob, uint64_t id);

int cmp_item(const void *a, const void *b);

int cmp_entry(const void *a, const void *b);

ssize_t failed_index(const outbox *ob, uint64_t id);

/* Takes ownership of *e's contents. */
int failed_insert(outbox *ob, outbox_entry *e);

void note_failure_outcome(outbox *ob, uint64_t id, int err);

void changed(outbox *ob);

int join(char **out, const char *a, const char *b);

/* Reads every entry file of dir; calls take(ob, entry) for each (which owns
 * the entry's contents afterwards) and cleans up temporary files. */
int load_dir(outbox *ob, const char *dir,
                    int (*take)(outbox *, outbox_entry *), uint64_t *max_id);

int take_failed(outbox *ob, outbox_entry *e);

int take_pending(outbox *ob, outbox_entry *e);

#endif
