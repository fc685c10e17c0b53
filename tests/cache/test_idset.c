/* Unit tests for cache/idset: membership through the owner's match function,
 * ids whose hashes collide, growth, references at the limit. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/idset.h"

/* The owner: ids in an array, a set reference is an index into it. */
struct owner {
  char **ids;
  size_t n, cap;
  int matches;              /* calls of the match function */
};

static bool owner_match(void *ctx, uint64_t ref, const char *id)
{
  struct owner *o = ctx;
  o->matches++;
  assert_true(ref < o->n);
  return strcmp(o->ids[ref], id) == 0;
}

static bool has(idset *set, struct owner *o, const char *id)
{
  return idset_has(set, id, idset_hash(id), owner_match, o);
}

/* Adds id unless present: 1 added, 0 present. */
static int add(idset *set, struct owner *o, const char *id)
{
  if (has(set, o, id))
    return 0;
  assert_int_equal(idset_reserve(set, 1), 0);
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 64;
    o->ids = realloc(o->ids, o->cap * sizeof *o->ids);
    assert_non_null(o->ids);
  }
  o->ids[o->n] = strdup(id);
  assert_non_null(o->ids[o->n]);
  idset_add(set, idset_hash(id), o->n);
  o->n++;
  return 1;
}

static void owner_free(struct owner *o)
{
  for (size_t i = 0; i < o->n; i++)
    free(o->ids[i]);
  free(o->ids);
}

static void test_empty_set_has_nothing(void **state)
{
  (void)state;
  idset set = { 0 };
  struct owner o = { 0 };
  assert_false(has(&set, &o, "1700000000000_1"));
  assert_int_equal(o.matches, 0);
  idset_free(&set);
}

static void test_add_and_find(void **state)
{
  (void)state;
  idset set = { 0 };
  struct owner o = { 0 };
  char id[64];
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "%" PRId64 "_%d", INT64_C(1700000000000) + i, i * 7);
    assert_int_equal(add(&set, &o, id), 1);
  }
  assert_int_equal(set.count, 5000);
  /* Every id is found, again adding it adds nothing. */
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "%" PRId64 "_%d", INT64_C(1700000000000) + i, i * 7);
    assert_true(has(&set, &o, id));
    assert_int_equal(add(&set, &o, id), 0);
  }
  /* Ids never added are not found. */
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "%" PRId64 "_%d", INT64_C(1700000000000) + i, i * 7 + 1);
    assert_false(has(&set, &o, id));
  }
  /* At most 3/4 full, a power of two: 5000 ids take 8192 slots. */
  assert_true(set.count <= set.cap / 4 * 3);
  assert_int_equal(set.cap & (set.cap - 1), 0);
  assert_int_equal(set.cap, 8192);
  owner_free(&o);
  idset_free(&set);
  assert_null(set.slots);
  assert_int_equal(set.cap, 0);
}

/* Two different ids with the same hash (found by trying): the second is not
 * taken for the first, both can be in the set and each is found. */
static void test_colliding_hashes_are_told_apart(void **state)
{
  (void)state;
  enum { TRIES = 1 << 20 };
  uint64_t *seen_hash = calloc((size_t)1 << 20, sizeof *seen_hash);
  uint32_t *seen_n = calloc((size_t)1 << 20, sizeof *seen_n);
  assert_non_null(seen_hash);
  assert_non_null(seen_n);
  char a[64] = "", b[64] = "";
  bool found = false;
  /* A table keyed by the low 20 bits finds pairs equal on all 28. */
  for (uint32_t n = 1; n < TRIES && !found; n++) {
    char id[64];
    snprintf(id, sizeof id, "1700000000000_%u", n);
    uint64_t h = idset_hash(id);
    size_t k = h & ((1u << 20) - 1);
    if (seen_n[k] && seen_hash[k] == h) {
      snprintf(a, sizeof a, "1700000000000_%u", seen_n[k]);
      snprintf(b, sizeof b, "%s", id);
      found = true;
    } else if (!seen_n[k]) {
      seen_n[k] = n;
      seen_hash[k] = h;
    }
  }
  free(seen_hash);
  free(seen_n);
  assert_true(found);
  assert_int_equal(idset_hash(a), idset_hash(b));
  assert_string_not_equal(a, b);

  idset set = { 0 };
  struct owner o = { 0 };
  assert_int_equal(add(&set, &o, a), 1);
  o.matches = 0;
  assert_false(has(&set, &o, b));
  assert_int_equal(o.matches, 1);       /* the hash matched: the owner said no */
  assert_int_equal(add(&set, &o, b), 1);
  assert_true(has(&set, &o, a));
  assert_true(has(&set, &o, b));
  assert_int_equal(set.count, 2);
  /* Growing keeps them apart (the slots move, the hashes stay). */
  char id[64];
  for (int i = 0; i < 100; i++) {
    snprintf(id, sizeof id, "1800000000000_%d", i);
    add(&set, &o, id);
  }
  assert_true(has(&set, &o, a));
  assert_true(has(&set, &o, b));
  owner_free(&o);
  idset_free(&set);
}

static bool ref_is(void *ctx, uint64_t ref, const char *id)
{
  (void)id;
  return ref == *(uint64_t *)ctx;
}

static void test_references_up_to_the_limit(void **state)
{
  (void)state;
  idset set = { 0 };
  uint64_t refs[] = { 0, 1, IDSET_REF_MAX - 1, IDSET_REF_MAX };
  assert_int_equal(idset_reserve(&set, 4), 0);
  for (size_t i = 0; i < 4; i++) {
    char id[32];
    snprintf(id, sizeof id, "id-%zu", i);
    idset_add(&set, idset_hash(id), refs[i]);
  }
  for (size_t i = 0; i < 4; i++) {
    char id[32];
    snprintf(id, sizeof id, "id-%zu", i);
    assert_true(idset_has(&set, id, idset_hash(id), ref_is, &refs[i]));
    uint64_t other = refs[(i + 1) % 4];
    assert_false(idset_has(&set, id, idset_hash(id), ref_is, &other));
  }
  idset_free(&set);
}

static void test_reserve_refuses_the_impossible(void **state)
{
  (void)state;
  idset set = { 0 };
  assert_int_equal(idset_reserve(&set, SIZE_MAX / 2), -ENOMEM);
  assert_int_equal(idset_reserve(&set, (size_t)1 << 28), -ENOMEM);
  assert_null(set.slots);
  /* Reserving ahead sizes the table once. */
  assert_int_equal(idset_reserve(&set, 10000), 0);
  assert_int_equal(set.cap, 16384);
  uint64_t *slots = set.slots;
  assert_int_equal(idset_reserve(&set, 12288), 0);
  assert_ptr_equal(set.slots, slots);
  idset_free(&set);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_empty_set_has_nothing),
    cmocka_unit_test(test_add_and_find),
    cmocka_unit_test(test_colliding_hashes_are_told_apart),
    cmocka_unit_test(test_references_up_to_the_limit),
    cmocka_unit_test(test_reserve_refuses_the_impossible),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
