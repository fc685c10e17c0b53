/* cache/idset: a compact set of ids that lives beside the data holding the
 * ids themselves (a message log's JSONL): 8 bytes a slot, at most 3/4 full.
 *
 * Each slot holds the low IDSET_HASH_BITS bits of the id's hash (they also
 * choose the slot, so growing needs no id) and a reference the owner resolves
 * to the id (a log: the offset of the message's JSONL line).  Where the hashes
 * match, the owner's idset_match_fn says whether it is the same id: the ids
 * are not kept a second time.  Not thread-safe: the owner locks.
 */
#ifndef CLIQ_CACHE_IDSET_H
#define CLIQ_CACHE_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDSET_HASH_BITS 28
#define IDSET_REF_BITS (64 - IDSET_HASH_BITS)
/* The largest reference a slot holds (offsets up to 64 GiB). */
#define IDSET_REF_MAX ((UINT64_C(1) << IDSET_REF_BITS) - 2)

typedef struct idset {
  uint64_t *slots;          /* 0: empty; else hash << IDSET_REF_BITS | ref + 1 */
  size_t cap;               /* 0 or a power of two */
  size_t count;
} idset;                    /* zero-initialised: empty */

/* Whether the id the owner knows by ref is id. */
typedef bool (*idset_match_fn)(void *ctx, uint64_t ref, const char *id);

/* The hash idset_has() and idset_add() take (< 2^IDSET_HASH_BITS). */
uint64_t idset_hash(const char *id);
bool idset_has(const idset *set, const char *id, uint64_t hash,
               idset_match_fn match, void *ctx);
/* Makes room for `more` ids besides those in the set: 0 or -ENOMEM. */
int idset_reserve(idset *set, size_t more);
/* Adds an id that is not in the set, after idset_reserve() made room;
 * ref <= IDSET_REF_MAX. */
void idset_add(idset *set, uint64_t hash, uint64_t ref);
void idset_free(idset *set);

#endif
