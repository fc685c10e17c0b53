/* cache/idset: see idset.h.  Linear probing; the load stays at most 3/4, so
 * a probe always meets an empty slot. */
#include "cache/idset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define REF_MASK ((UINT64_C(1) << IDSET_REF_BITS) - 1)
#define MAX_CAP ((size_t)1 << IDSET_HASH_BITS)

uint64_t idset_hash(const char *id)
{
  return XXH3_64bits(id, strlen(id)) & ((UINT64_C(1) << IDSET_HASH_BITS) - 1);
}

bool idset_has(const idset *set, const char *id, uint64_t hash,
               idset_match_fn match, void *ctx)
{
  if (!set->cap)
    return false;
  size_t mask = set->cap - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    uint64_t slot = set->slots[i];
    if (!slot)
      return false;
    if (slot >> IDSET_REF_BITS == hash &&
        match(ctx, (slot & REF_MASK) - 1, id))
      return true;
  }
}

static void put(uint64_t *slots, size_t cap, uint64_t slot)
{
  size_t i = (slot >> IDSET_REF_BITS) & (cap - 1);
  while (slots[i])
    i = (i + 1) & (cap - 1);
  slots[i] = slot;
}

int idset_reserve(idset *set, size_t more)
{
  if (more > MAX_CAP)
    return -ENOMEM;
  size_t need = set->count + more;
  size_t cap = set->cap ? set->cap : 16;
  while (need > cap / 4 * 3) {
    if (cap >= MAX_CAP)
      return -ENOMEM;
    cap *= 2;
  }
  if (cap == set->cap)
    return 0;
  uint64_t *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return -ENOMEM;
  for (size_t i = 0; i < set->cap; i++)
    if (set->slots[i])
      put(slots, cap, set->slots[i]);
  free(set->slots);
  set->slots = slots;
  set->cap = cap;
  return 0;
}

void idset_add(idset *set, uint64_t hash, uint64_t ref)
{
  put(set->slots, set->cap, hash << IDSET_REF_BITS | (ref + 1));
  set->count++;
}

void idset_free(idset *set)
{
  free(set->slots);
  memset(set, 0, sizeof *set);
}
