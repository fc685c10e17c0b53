/* Unit tests for cache/outbox, the journal of pending writes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "cache/outbox.h"
#include "cache/statefile.h"
#include "testutil.h"

static int setup_dir(void **state)
{
  return tu_setup_dir(state, "outbox");
}

static int teardown_dir(void **state)
{
  return tu_teardown_dir(state);
}

static outbox *open_ok(const char *dir)
{
  cliq_error err;
  outbox *ob = outbox_open(dir, &err);
  if (!ob)
    fail_msg("outbox_open: %s", err.message);
  assert_int_equal(err.err, 0);
  return ob;
}

static char *sub(const char *dir, const char *name)
{
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
  return p;
}

static char *entry_file(const char *dir, const char *folder, uint64_t id)
{
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s/%016" PRIu64 ".json", dir, folder, id) > 0);
  return p;
}

static bool is_entry_name(const char *name)
{
  return strlen(name) == 16 + 5 && strcmp(name + 16, ".json") == 0;
}

static bool exists(const char *path)
{
  return access(path, F_OK) == 0;
}

static void test_kind_names(void **state)
{
  (void)state;
  for (int k = 0; k < OUTBOX_KIND_COUNT; k++)
    assert_int_equal(outbox_kind_from_name(outbox_kind_name((outbox_kind)k)), k);
  assert_string_equal(outbox_kind_name(OUTBOX_REPLY), "reply");
  assert_string_equal(outbox_kind_name(OUTBOX_CREATE_THREAD), "create_thread");
  assert_string_equal(outbox_kind_name((outbox_kind)99), "?");
  assert_int_equal(outbox_kind_from_name("nonsense"), -1);
  assert_int_equal(outbox_kind_from_name(NULL), -1);
}

/* ---- append, reopen, order ----------------------------------------------- */

static const char *const targets3[] = {"CT_1-T-1", "CT_1-T-2", "P_chan"};

static void test_append_reopen_same_order(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  const int n = 30;
  uint64_t ids[30];
  for (int i = 0; i < n; i++) {
    json_t *payload = json_sprintf("message %d", i);
    outbox_kind kind = i % 5 == 4 ? OUTBOX_STATE : OUTBOX_REPLY;
    assert_int_equal(outbox_append(ob, kind, targets3[i % 3], payload, &ids[i]),
                     0);
    json_decref(payload);
    if (i > 0)
      assert_true(ids[i] > ids[i - 1]);
  }
  json_t *obj = json_pack("{s:s, s:s}", "parent", "1700000000000_1", "title",
                          "Release plan");
  uint64_t obj_id = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_CREATE_THREAD, "draft:1", obj, &obj_id), 0);
  /* The journal keeps its own copy. */
  json_object_set_new(obj, "title", json_string("changed"));
  json_decref(obj);
  assert_int_equal(outbox_depth(ob), n + 1);
  outbox_close(ob);

  ob = open_ok(s->dir);
  assert_int_equal(outbox_depth(ob), n + 1);
  outbox_entry *items = NULL;
  size_t count = 0;
  assert_int_equal(outbox_list(ob, &items, &count), 0);
  assert_int_equal(count, n + 1);
  for (int i = 0; i < n; i++) {
    assert_int_equal(items[i].id, ids[i]);
    assert_string_equal(items[i].target, targets3[i % 3]);
    assert_int_equal(items[i].kind, i % 5 == 4 ? OUTBOX_STATE : OUTBOX_REPLY);
    char want[32];
    snprintf(want, sizeof(want), "message %d", i);
    assert_string_equal(json_string_value(items[i].payload), want);
    assert_true(items[i].created > 1e9);
    assert_int_equal(items[i].attempts, 0);
    assert_false(items[i].uncertain);
    assert_null(items[i].last_error);
  }
  assert_int_equal(items[n].kind, OUTBOX_CREATE_THREAD);
  assert_string_equal(
      json_string_value(json_object_get(items[n].payload, "title")),
      "Release plan");
  outbox_entry_list_free(items, count);

  /* Per target, in order. */
  char **targets = NULL;
  size_t nt = 0;
  assert_int_equal(outbox_targets(ob, &targets, &nt), 0);
  assert_int_equal(nt, 4);
  assert_string_equal(targets[0], targets3[0]);
  assert_string_equal(targets[1], targets3[1]);
  assert_string_equal(targets[2], targets3[2]);
  assert_string_equal(targets[3], "draft:1");
  assert_null(targets[4]);
  for (size_t i = 0; i < nt; i++)
    free(targets[i]);
  free(targets);

  for (int i = 1; i < n; i += 3) {
    outbox_entry e;
    assert_int_equal(outbox_peek_next(ob, targets3[1], &e), 0);
    assert_int_equal(e.id, ids[i]);
    outbox_entry_clear(&e);
    assert_int_equal(outbox_remove(ob, ids[i]), 0);
    char *f = entry_file(s->dir, "outbox", ids[i]);
    assert_false(exists(f));
    free(f);
  }
  outbox_entry e;
  assert_int_equal(outbox_peek_next(ob, targets3[1], &e), -ENOENT);
  assert_int_equal(outbox_remove(ob, ids[1]), -ENOENT);
  assert_int_equal(outbox_get(ob, ids[0], &e), 0);
  assert_string_equal(e.target, targets3[0]);
  outbox_entry_clear(&e);
  assert_int_equal(outbox_depth(ob), n + 1 - n / 3);
  outbox_close(ob);
}

static void test_ids_stay_monotonic_after_draining(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t last = 0;
  for (int i = 0; i < 3; i++) {
    json_t *p = json_string("x");
    assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", p, &last), 0);
    json_decref(p);
    assert_int_equal(outbox_remove(ob, last), 0);
  }
  outbox_close(ob);
  ob = open_ok(s->dir);
  assert_int_equal(outbox_depth(ob), 0);
  uint64_t next = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", NULL, &next), 0);
  assert_true(next > last);
  outbox_entry e;
  assert_int_equal(outbox_get(ob, next, &e), 0);
  assert_true(json_is_null(e.payload));
  outbox_entry_clear(&e);
  outbox_close(ob);
}

static void test_bad_arguments(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  json_t *p = json_string("x");
  assert_int_equal(outbox_append(ob, (outbox_kind)OUTBOX_KIND_COUNT, "t", p, NULL),
                   -EINVAL);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "", p, NULL), -EINVAL);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, NULL, p, NULL), -EINVAL);
  json_decref(p);
  assert_int_equal(outbox_mark_uncertain(ob, 12345), -ENOENT);
  assert_int_equal(outbox_move_failed(ob, 12345, EACCES, "x"), -ENOENT);
  assert_int_equal(outbox_failed_remove(ob, 12345), -ENOENT);
  assert_int_equal(outbox_depth(ob), 0);
  outbox_close(ob);
}

/* ---- slots: several mounts of one account ----------------------------------- */

static uint64_t append_text(outbox *ob, const char *target, const char *text)
{
  json_t *p = json_string(text);
  uint64_t id = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, target, p, &id), 0);
  json_decref(p);
  return id;
}

/* The texts pending in ob, in id order, joined with '|'. */
static char *pending_texts(outbox *ob)
{
  outbox_entry *items = NULL;
  size_t n = 0;
  assert_int_equal(outbox_list(ob, &items, &n), 0);
  char *joined = strdup("");
  for (size_t i = 0; i < n; i++) {
    char *next = NULL;
    assert_true(asprintf(&next, "%s%s%s", joined, i ? "|" : "",
                         json_string_value(items[i].payload)) >= 0);
    free(joined);
    joined = next;
  }
  outbox_entry_list_free(items, n);
  return joined;
}

static void assert_pending(outbox *ob, const char *want)
{
  char *got = pending_texts(ob);
  if (strcmp(got, want) != 0)
    fail_msg("pending \"%s\", expected \"%s\"", got, want);
  free(got);
}

static void test_two_opens_get_different_slots(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *a = open_ok(s->dir);
  outbox *b = open_ok(s->dir);
  outbox *c = open_ok(s->dir);
  assert_int_equal(outbox_slot(a), 0);
  assert_int_equal(outbox_slot(b), 1);
  assert_int_equal(outbox_slot(c), 2);
  char *dir_a = sub(s->dir, "outbox");
  char *dir_b = sub(s->dir, "outbox.1");
  assert_string_equal(outbox_dir(a), dir_a);
  assert_string_equal(outbox_dir(b), dir_b);

  /* Each journal is its own: ids, entries, failures. */
  uint64_t ida = append_text(a, "T", "from a");
  uint64_t idb = append_text(b, "T", "from b");
  assert_int_equal(ida, idb); /* ids are per slot */
  assert_pending(a, "from a");
  assert_pending(b, "from b");
  assert_pending(c, "");
  assert_int_equal(outbox_move_failed(b, idb, EACCES, "closed"), 0);
  assert_int_equal(outbox_failed_count(b), 1);
  assert_int_equal(outbox_failed_count(a), 0);
  char *failed_b = entry_file(s->dir, "failed.1", idb);
  assert_true(exists(failed_b));
  free(failed_b);

  /* The other slots, as the delivery worker sees them. */
  char **dirs = NULL;
  size_t n = 0;
  assert_int_equal(outbox_other_slot_dirs(b, &dirs, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(dirs[0], dir_a);
  assert_non_null(strstr(dirs[1], "/outbox.2"));
  assert_null(dirs[2]);
  for (size_t i = 0; i < n; i++)
    free(dirs[i]);
  free(dirs);

  /* A freed slot is taken again: the first free one. */
  outbox_close(a);
  outbox *d = open_ok(s->dir);
  assert_int_equal(outbox_slot(d), 0);
  assert_pending(d, "from a");
  outbox_close(d);
  outbox_close(b);
  outbox_close(c);

  /* A slot left with entries is preferred to an empty one before it. */
  outbox *e = open_ok(s->dir);
  outbox *f = open_ok(s->dir);
  assert_int_equal(outbox_slot(e), 0);
  assert_int_equal(outbox_slot(f), 1);
  outbox_entry first;
  assert_int_equal(outbox_peek_next(e, "T", &first), 0);
  assert_int_equal(outbox_remove(e, first.id), 0);
  outbox_entry_clear(&first);
  append_text(f, "U", "left in slot 1");
  outbox_close(e);
  outbox_close(f);
  outbox *g = open_ok(s->dir);
  assert_int_equal(outbox_slot(g), 1);
  assert_pending(g, "left in slot 1");
  outbox *h = open_ok(s->dir);
  assert_int_equal(outbox_slot(h), 0);
  outbox_close(g);
  outbox_close(h);
  free(dir_a);
  free(dir_b);

  /* A state folder that cannot be a folder. */
  cliq_error err;
  char *file = sub(s->dir, "plain");
  assert_int_equal(statefile_write_atomic(file, "x", 1), 0);
  assert_null(outbox_open(file, &err));
  assert_int_equal(err.err, ENOTDIR);
  assert_true(strlen(err.message) > 0);
  free(file);
}

/* Names that look like slots but are not are left alone. */
static void test_slot_names(void **state)
{
  struct tu_dir_state *s = *state;
  const char *const strays[] = {"outbox.0", "outbox.01", "outbox.x",
                                "outbox.64", "outboxes"};
  for (size_t i = 0; i < sizeof(strays) / sizeof(*strays); i++) {
    char *dir = sub(s->dir, strays[i]);
    assert_int_equal(statefile_mkdirs(dir, 0700), 0);
    char *entry = NULL;
    assert_true(asprintf(&entry, "%s/%016d.json", dir, 1) > 0);
    assert_int_equal(statefile_write_atomic(entry, "{}", 2), 0);
    free(entry);
    free(dir);
  }
  outbox *ob = open_ok(s->dir);
  assert_int_equal(outbox_slot(ob), 0);
  char **dirs = NULL;
  size_t n = 7;
  assert_int_equal(outbox_other_slot_dirs(ob, &dirs, &n), 0);
  assert_int_equal(n, 0);
  assert_null(dirs[0]);
  free(dirs);
  outbox_close(ob);
}

/* Another process: it gets its own slot while we hold ours, both append at
 * the same time without mixing, and what it leaves behind when it dies is
 * found by the next process that takes its slot. */
static void test_two_processes(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *mine = open_ok(s->dir);
  assert_int_equal(outbox_slot(mine), 0);
  enum { N = 40 };
  int go[2], ready[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(go[1]);
    close(ready[0]);
    /* Frees the child's copy of our journal (valgrind checks the child's
     * leaks too); the parent's descriptor keeps slot 0 locked. */
    outbox_close(mine);
    cliq_error err;
    outbox *other = outbox_open(s->dir, &err);
    char slot = other ? (char)('0' + outbox_slot(other)) : 'x';
    if (write(ready[1], &slot, 1) != 1 || !other)
      _exit(2);
    char c;
    if (read(go[0], &c, 1) != 1)
      _exit(3);
    for (int i = 0; i < N; i++) {
      json_t *p = json_sprintf("child %02d", i);
      int rc = outbox_append(other, OUTBOX_REPLY, "T", p, NULL);
      json_decref(p);
      if (rc)
        _exit(4);
    }
    /* Says so, then waits to crash (SIGKILL from the parent): the entries
     * stay in its slot, the lock goes with it. */
    if (write(ready[1], "d", 1) != 1)
      _exit(5);
    for (;;)
      pause();
  }
  close(go[0]);
  close(ready[1]);
  char slot = 0;
  assert_int_equal(read(ready[0], &slot, 1), 1);
  assert_int_equal(slot, '1');
  /* While the child holds slot 1, a third journal gets slot 2. */
  outbox *third = open_ok(s->dir);
  assert_int_equal(outbox_slot(third), 2);
  outbox_close(third);

  assert_int_equal(write(go[1], "g", 1), 1);
  for (int i = 0; i < N; i++) {
    char text[32];
    snprintf(text, sizeof text, "parent %02d", i);
    append_text(mine, "T", text);
  }
  char done = 0;
  assert_int_equal(read(ready[0], &done, 1), 1);
  assert_int_equal(done, 'd');
  kill(pid, SIGKILL);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fail_msg("the child exited with %d before its crash",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  close(go[1]);
  close(ready[0]);

  /* Ours holds only our entries, in order. */
  outbox_entry *items = NULL;
  size_t n = 0;
  assert_int_equal(outbox_list(mine, &items, &n), 0);
  assert_int_equal(n, N);
  for (size_t i = 0; i < n; i++) {
    char text[32];
    snprintf(text, sizeof text, "parent %02zu", i);
    assert_string_equal(json_string_value(items[i].payload), text);
  }
  outbox_entry_list_free(items, n);

  /* The next process to open takes the dead child's slot and its entries. */
  outbox *heir = open_ok(s->dir);
  assert_int_equal(outbox_slot(heir), 1);
  assert_int_equal(outbox_list(heir, &items, &n), 0);
  assert_int_equal(n, N);
  for (size_t i = 0; i < n; i++) {
    char text[32];
    snprintf(text, sizeof text, "child %02zu", i);
    assert_string_equal(json_string_value(items[i].payload), text);
  }
  outbox_entry_list_free(items, n);
  /* New ids there go on after the child's. */
  uint64_t next = append_text(heir, "T", "heir");
  assert_true(next > N);
  outbox_close(heir);
  outbox_close(mine);
}

/* ---- crash safety --------------------------------------------------------- */

static void test_leftovers_of_a_crash(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t id = 0;
  json_t *p = json_string("kept");
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", p, &id), 0);
  json_decref(p);
  outbox_close(ob);

  /* A temporary file cut short, a damaged entry, a foreign file. */
  char *tmp = sub(s->dir, "outbox/.0000000000000777.json.tmp.AbC123");
  char *bad = entry_file(s->dir, "outbox", 900);
  char *foreign = sub(s->dir, "outbox/README");
  assert_int_equal(statefile_write_atomic(tmp, "{\"id\":7", 7), 0);
  assert_int_equal(statefile_write_atomic(bad, "{\"id\":900,", 10), 0);
  assert_int_equal(statefile_write_atomic(foreign, "hello", 5), 0);

  ob = open_ok(s->dir);
  assert_int_equal(outbox_depth(ob), 1);
  outbox_entry e;
  assert_int_equal(outbox_peek_next(ob, "t", &e), 0);
  assert_int_equal(e.id, id);
  assert_string_equal(json_string_value(e.payload), "kept");
  outbox_entry_clear(&e);
  /* The temporary file is cleaned up; the damaged entry is left for a human;
   * new ids do not collide with it. */
  assert_false(exists(tmp));
  assert_true(exists(bad));
  uint64_t next = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", NULL, &next), 0);
  assert_true(next > 900);
  outbox_close(ob);
  free(tmp);
  free(bad);
  free(foreign);
}

/* A child appends as fast as it can and reports each id once append has
 * returned; we kill it at arbitrary moments.  Every reported entry must be
 * in the journal, whole, and at most the one append in flight may be there
 * unreported. */
static void test_kill_during_appends(void **state)
{
  struct tu_dir_state *s = *state;
  size_t total_reported = 0;
  for (int round = 0; round < 6; round++) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      outbox *child = outbox_open(s->dir, NULL);
      if (!child)
        _exit(2);
      /* Tell the parent we own the journal before the clock starts. */
      uint64_t zero = 0;
      if (write(fds[1], &zero, sizeof(zero)) != sizeof(zero))
        _exit(3);
      for (int i = 0;; i++) {
        json_t *p = json_sprintf("round %d message %d", round, i);
        uint64_t id = 0;
        if (outbox_append(child, OUTBOX_REPLY, "CT_9-T-9", p, &id) != 0)
          _exit(4);
        json_decref(p);
        if (write(fds[1], &id, sizeof(id)) != sizeof(id))
          _exit(5);
      }
    }
    close(fds[1]);
    uint64_t id = 1;
    assert_int_equal(read(fds[0], &id, sizeof(id)), sizeof(id));
    assert_int_equal(id, 0);
    tu_sleep(0.01 + 0.01 * round);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    uint64_t reported[4096];
    size_t nrep = 0;
    while (nrep < 4096 && read(fds[0], &id, sizeof(id)) == sizeof(id))
      reported[nrep++] = id;
    close(fds[0]);
    total_reported += nrep;

    outbox *ob = open_ok(s->dir);
    outbox_entry *items = NULL;
    size_t n = 0;
    assert_int_equal(outbox_list(ob, &items, &n), 0);
    assert_true(n >= total_reported);
    assert_true(n <= total_reported + 1); /* the append in flight */
    for (size_t i = 1; i < n; i++)
      assert_true(items[i].id > items[i - 1].id);
    /* Every reported id is present. */
    size_t k = 0;
    for (size_t r = 0; r < nrep; r++) {
      while (k < n && items[k].id < reported[r])
        k++;
      assert_true(k < n);
      assert_int_equal(items[k].id, reported[r]);
      assert_non_null(strstr(json_string_value(items[k].payload), "message"));
    }
    total_reported = n; /* what is journaled now counts as known */
    outbox_entry_list_free(items, n);
    outbox_close(ob);
  }
  char *dir = sub(s->dir, "outbox");
  assert_int_equal(tu_count_files(dir, statefile_is_temp_name), 0);
  free(dir);
}

/* ---- uncertain, failures ---------------------------------------------------- */

static void test_uncertain_survives_reopen(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t a = 0, b = 0;
  json_t *p = json_string("hello");
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", p, &a), 0);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", p, &b), 0);
  json_decref(p);
  uint64_t gen = outbox_generation(ob);
  struct timespec before;
  clock_gettime(CLOCK_REALTIME, &before);
  assert_int_equal(outbox_mark_uncertain(ob, a), 0);
  assert_true(outbox_generation(ob) != gen);
  assert_int_equal(outbox_mark_uncertain(ob, b), 0);
  assert_int_equal(outbox_note_failure(ob, b, false, "connection refused"), 0);
  assert_int_equal(outbox_mark_uncertain(ob, b), 0);
  assert_int_equal(outbox_note_failure(ob, b, true, "timed out"), 0);
  outbox_close(ob);

  ob = open_ok(s->dir);
  outbox_entry e;
  assert_int_equal(outbox_get(ob, a, &e), 0);
  assert_true(e.uncertain);
  assert_int_equal(e.attempts, 1);
  assert_null(e.last_error);
  /* When it was marked survives the restart (to the microsecond or so). */
  assert_true(e.attempted >= before.tv_sec + before.tv_nsec / 1e9 - 1e-3);
  assert_true(e.attempted <= (double)time(NULL) + 1);
  outbox_entry_clear(&e);
  assert_int_equal(outbox_get(ob, b, &e), 0);
  assert_true(e.uncertain);
  assert_int_equal(e.attempts, 2);
  assert_string_equal(e.last_error, "timed out");
  outbox_entry_clear(&e);
  assert_int_equal(outbox_note_failure(ob, b, false, NULL), 0);
  assert_int_equal(outbox_get(ob, b, &e), 0);
  assert_false(e.uncertain);
  assert_null(e.last_error);
  outbox_entry_clear(&e);
  outbox_close(ob);
}

static void test_failed_moves(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    json_t *p = json_sprintf("reply %d", i);
    assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "CT_1-T-1", p, &ids[i]), 0);
    json_decref(p);
  }
  assert_int_equal(outbox_move_failed(ob, ids[0], EACCES,
                                      "operation_not_allowed: thread closed"),
                   0);
  assert_int_equal(outbox_depth(ob), 2);
  assert_int_equal(outbox_failed_count(ob), 1);
  char *pending = entry_file(s->dir, "outbox", ids[0]);
  char *failed = entry_file(s->dir, "failed", ids[0]);
  assert_false(exists(pending));
  assert_true(exists(failed));
  /* Nothing else is blocked: the next entry of the target is up. */
  outbox_entry e;
  assert_int_equal(outbox_peek_next(ob, "CT_1-T-1", &e), 0);
  assert_int_equal(e.id, ids[1]);
  outbox_entry_clear(&e);
  outbox_close(ob);

  ob = open_ok(s->dir);
  outbox_entry *items = NULL;
  size_t n = 0;
  assert_int_equal(outbox_list_failed(ob, &items, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(items[0].id, ids[0]);
  assert_int_equal(items[0].failed_errno, EACCES);
  assert_string_equal(items[0].reason, "operation_not_allowed: thread closed");
  assert_string_equal(json_string_value(items[0].payload), "reply 0");
  assert_true(items[0].failed_at >= items[0].created);
  outbox_entry_list_free(items, n);
  assert_int_equal(outbox_depth(ob), 2);

  /* rm in failed/. */
  assert_int_equal(outbox_failed_remove(ob, ids[0]), 0);
  assert_false(exists(failed));
  assert_int_equal(outbox_failed_count(ob), 0);

  /* A move cut short by a crash: the failed copy exists and so does the
   * pending entry.  It counts as failed, and is not delivered again. */
  assert_int_equal(outbox_get(ob, ids[1], &e), 0);
  e.failed_errno = EACCES;
  e.reason = strdup("refused");
  e.failed_at = e.created + 1;
  json_t *o = json_pack("{s:i, s:I, s:s, s:s, s:O, s:f, s:i, s:b, s:i, s:s, s:f}",
                        "version", 1, "id", (json_int_t)e.id, "kind", "reply",
                        "target", e.target, "payload", e.payload, "created",
                        e.created, "attempts", 1, "uncertain", 1,
                        "failed_errno", EACCES, "reason", "refused",
                        "failed_at", e.failed_at);
  char *text = json_dumps(o, 0);
  char *half = entry_file(s->dir, "failed", ids[1]);
  assert_int_equal(statefile_write_atomic(half, text, strlen(text)), 0);
  free(text);
  json_decref(o);
  outbox_entry_clear(&e);
  outbox_close(ob);

  ob = open_ok(s->dir);
  assert_int_equal(outbox_depth(ob), 1);
  assert_int_equal(outbox_failed_count(ob), 1);
  char *half_pending = entry_file(s->dir, "outbox", ids[1]);
  assert_false(exists(half_pending));
  assert_int_equal(outbox_peek_next(ob, "CT_1-T-1", &e), 0);
  assert_int_equal(e.id, ids[2]);
  outbox_entry_clear(&e);
  outbox_close(ob);
  free(half);
  free(half_pending);
  free(pending);
  free(failed);
}

static void test_retarget(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t ids[4];
  const char *targets[] = {"draft:7", "other", "draft:7", "draft:7"};
  for (int i = 0; i < 4; i++) {
    json_t *p = json_sprintf("%d", i);
    assert_int_equal(outbox_append(ob, OUTBOX_REPLY, targets[i], p, &ids[i]), 0);
    json_decref(p);
  }
  assert_int_equal(outbox_retarget(ob, "draft:7", "CT_5-T-6"), 0);
  outbox_entry e;
  assert_int_equal(outbox_peek_next(ob, "draft:7", &e), -ENOENT);
  outbox_close(ob);
  ob = open_ok(s->dir);
  int expect[] = {0, 2, 3};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(outbox_peek_next(ob, "CT_5-T-6", &e), 0);
    assert_int_equal(e.id, ids[expect[i]]);
    outbox_entry_clear(&e);
    assert_int_equal(outbox_remove(ob, ids[expect[i]]), 0);
  }
  assert_int_equal(outbox_peek_next(ob, "other", &e), 0);
  assert_int_equal(e.id, ids[1]);
  outbox_entry_clear(&e);
  outbox_close(ob);
}

/* ---- threads ---------------------------------------------------------------- */

#define APPENDERS 6
#define PER_APPENDER 25

struct appender {
  outbox *ob;
  int no;
  int base;          /* first seq number */
  const char *pad;   /* makes the file writes slow (NULL = none) */
  const char *target;
  int failures;
};

static void *append_thread(void *arg)
{
  struct appender *a = arg;
  for (int i = 0; i < PER_APPENDER; i++) {
    json_t *p = json_pack("{s:i, s:i}", "thread", a->no, "seq", a->base + i);
    if (a->pad)
      json_object_set_new(p, "pad", json_string(a->pad));
    if (outbox_append(a->ob, OUTBOX_REPLY, a->target, p, NULL) != 0)
      a->failures++;
    json_decref(p);
  }
  return NULL;
}

struct deliverer {
  outbox *ob;
  const char *dir;
  int not_on_disk;
  int expected[APPENDERS];
  int delivered;
  int total;
  int disorder;
};

static int payload_int(json_t *p, const char *key)
{
  return (int)json_integer_value(json_object_get(p, key));
}

/* A delivery worker: takes the oldest entry of each target and checks that
 * each appender's entries come in the order that appender wrote them. */
static void *deliver_thread(void *arg)
{
  struct deliverer *d = arg;
  while (d->delivered < d->total) {
    uint64_t gen = outbox_generation(d->ob);
    char **targets = NULL;
    size_t nt = 0;
    if (outbox_targets(d->ob, &targets, &nt) != 0)
      break;
    for (size_t t = 0; t < nt; t++) {
      outbox_entry e;
      while (outbox_peek_next(d->ob, targets[t], &e) == 0) {
        /* What the worker sees is on disk already. */
        char *file = entry_file(d->dir, "outbox", e.id);
        if (!exists(file))
          d->not_on_disk++;
        free(file);
        int no = payload_int(e.payload, "thread");
        int seq = payload_int(e.payload, "seq");
        if (no < 0 || no >= APPENDERS || seq != d->expected[no])
          d->disorder++;
        else
          d->expected[no]++;
        if (outbox_remove(d->ob, e.id) == 0)
          d->delivered++;
        outbox_entry_clear(&e);
      }
      free(targets[t]);
    }
    free(targets);
    if (d->delivered < d->total)
      outbox_wait_change(d->ob, gen, 5);
  }
  return NULL;
}

static void test_concurrent_appends_keep_order(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  struct appender a[APPENDERS];
  pthread_t tid[APPENDERS];
  /* Threads 0-3 share one target, 4 and 5 have their own. */
  const char *targets[APPENDERS] = {"shared", "shared", "shared", "shared",
                                    "own-4", "own-5"};
  for (int i = 0; i < APPENDERS; i++) {
    a[i] = (struct appender){.ob = ob, .no = i, .target = targets[i]};
    assert_int_equal(pthread_create(&tid[i], NULL, append_thread, &a[i]), 0);
  }
  for (int i = 0; i < APPENDERS; i++)
    pthread_join(tid[i], NULL);
  for (int i = 0; i < APPENDERS; i++)
    assert_int_equal(a[i].failures, 0);
  assert_int_equal(outbox_depth(ob), APPENDERS * PER_APPENDER);
  outbox_close(ob);

  /* After a reopen, each writer's entries are in its order. */
  ob = open_ok(s->dir);
  outbox_entry *items = NULL;
  size_t n = 0;
  assert_int_equal(outbox_list(ob, &items, &n), 0);
  assert_int_equal(n, APPENDERS * PER_APPENDER);
  int next[APPENDERS] = {0};
  for (size_t i = 0; i < n; i++) {
    int no = payload_int(items[i].payload, "thread");
    assert_int_equal(payload_int(items[i].payload, "seq"), next[no]);
    assert_string_equal(items[i].target, targets[no]);
    next[no]++;
  }
  outbox_entry_list_free(items, n);

  /* Drain it while more is appended: the worker never sees an entry before
   * an earlier one of the same writer. */
  struct deliverer d = {.ob = ob, .dir = s->dir,
                       .total = 2 * APPENDERS * PER_APPENDER};
  pthread_t worker;
  assert_int_equal(pthread_create(&worker, NULL, deliver_thread, &d), 0);
  /* Large entries make appends slower than deliveries, so that the worker
   * keeps up and meets entries that are still being written. */
  size_t pad_len = 256 * 1024;
  char *pad = malloc(pad_len + 1);
  memset(pad, 'p', pad_len);
  pad[pad_len] = '\0';
  for (int i = 0; i < APPENDERS; i++) {
    a[i].ob = ob;
    a[i].base = PER_APPENDER;
    a[i].pad = pad;
  }
  for (int i = 0; i < APPENDERS; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, append_thread, &a[i]), 0);
  for (int i = 0; i < APPENDERS; i++)
    pthread_join(tid[i], NULL);
  pthread_join(worker, NULL);
  free(pad);
  assert_int_equal(d.disorder, 0);
  assert_int_equal(d.not_on_disk, 0);
  assert_int_equal(d.delivered, d.total);
  for (int i = 0; i < APPENDERS; i++)
    assert_int_equal(d.expected[i], 2 * PER_APPENDER);
  assert_int_equal(outbox_depth(ob), 0);
  outbox_close(ob);

  /* Nothing delivered comes back: the worker only ever saw entries whose
   * files were complete, so no file landed after its removal. */
  ob = open_ok(s->dir);
  assert_int_equal(outbox_depth(ob), 0);
  outbox_close(ob);
  char *dir = sub(s->dir, "outbox");
  assert_int_equal(tu_count_files(dir, is_entry_name), 0);
  free(dir);
}

/* ---- waiting ------------------------------------------------------------------ */

struct fsync_waiter {
  outbox *ob;
  const char *target;
  double timeout;
  int rc;
  bool done;
  pthread_mutex_t mu;
};

static void *fsync_thread(void *arg)
{
  struct fsync_waiter *w = arg;
  int rc = outbox_wait_target_empty(w->ob, w->target, w->timeout);
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->done = true;
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static bool fsync_done(struct fsync_waiter *w)
{
  pthread_mutex_lock(&w->mu);
  bool done = w->done;
  pthread_mutex_unlock(&w->mu);
  return done;
}

/* Starts a thread in outbox_wait_target_empty() and returns once it is
 * waiting (it has taken its snapshot of the target's entries). */
static void start_waiter(struct fsync_waiter *w, pthread_t *tid, outbox *ob,
                         const char *target, double timeout)
{
  size_t before = outbox_fsync_waiters(ob);
  *w = (struct fsync_waiter){.ob = ob, .target = target, .timeout = timeout};
  pthread_mutex_init(&w->mu, NULL);
  assert_int_equal(pthread_create(tid, NULL, fsync_thread, w), 0);
  double end = tu_now_mono() + 60;
  while (outbox_fsync_waiters(ob) == before && !fsync_done(w) &&
         tu_now_mono() < end)
    tu_sleep(0.002);
}

static void test_wait_target_empty(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  /* Nothing queued: returns at once. */
  assert_int_equal(outbox_wait_target_empty(ob, "t", 0), 0);

  uint64_t a = 0, b = 0, other = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", NULL, &a), 0);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", NULL, &b), 0);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "u", NULL, &other), 0);
  assert_int_equal(outbox_wait_target_empty(ob, "t", 0.05), -ETIMEDOUT);

  struct fsync_waiter w;
  pthread_t tid;
  start_waiter(&w, &tid, ob, "t", -1);
  assert_int_equal(outbox_remove(ob, a), 0);
  tu_sleep(0.02);
  assert_false(fsync_done(&w)); /* b is still queued */
  /* Entries of other targets, or appended later, do not matter. */
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "t", NULL, NULL), 0);
  assert_int_equal(outbox_remove(ob, b), 0);
  pthread_join(tid, NULL);
  assert_int_equal(w.rc, 0);
  pthread_mutex_destroy(&w.mu);

  /* A failure is reported to fsync with its errno. */
  uint64_t c = 0, d = 0;
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "v", NULL, &c), 0);
  assert_int_equal(outbox_append(ob, OUTBOX_REPLY, "v", NULL, &d), 0);
  start_waiter(&w, &tid, ob, "v", -1);
  assert_int_equal(outbox_move_failed(ob, c, EACCES, "thread closed"), 0);
  /* Even once the user has discarded it from failed/. */
  assert_int_equal(outbox_failed_remove(ob, c), 0);
  assert_int_equal(outbox_remove(ob, d), 0);
  pthread_join(tid, NULL);
  assert_int_equal(w.rc, -EACCES);
  pthread_mutex_destroy(&w.mu);

  /* Shutdown wakes waiters. */
  start_waiter(&w, &tid, ob, "u", -1);
  uint64_t gen = outbox_generation(ob);
  outbox_shutdown(ob);
  pthread_join(tid, NULL);
  assert_int_equal(w.rc, -ECANCELED);
  pthread_mutex_destroy(&w.mu);
  assert_int_equal(outbox_wait_change(ob, gen, -1), -ECANCELED);
  outbox_close(ob);
}

struct change_waiter {
  outbox *ob;
  uint64_t seen;
  int rc;
};

static void *change_thread(void *arg)
{
  struct change_waiter *c = arg;
  c->rc = outbox_wait_change(c->ob, c->seen, 60);
  return NULL;
}

static void test_wait_change(void **state)
{
  struct tu_dir_state *s = *state;
  outbox *ob = open_ok(s->dir);
  uint64_t gen = outbox_generation(ob);
  assert_int_equal(outbox_wait_change(ob, gen, 0.02), -ETIMEDOUT);
  assert_int_equal(outbox_wait_change(ob, gen + 1, 0), 0);
  struct change_waiter c = {.ob = ob, .seen = gen};
  pthread_t tid;
  assert_int_equal(pthread_create(&tid, NULL, change_thread, &c), 0);
  assert_int_equal(outbox_append(ob, OUTBOX_CTL, "t", NULL, NULL), 0);
  pthread_join(tid, NULL);
  assert_int_equal(c.rc, 0);
  assert_true(outbox_generation(ob) != gen);
  outbox_close(ob);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kind_names),
    T(test_append_reopen_same_order),
    T(test_ids_stay_monotonic_after_draining),
    T(test_bad_arguments),
    T(test_two_opens_get_different_slots),
    T(test_slot_names),
    T(test_two_processes),
    T(test_leftovers_of_a_crash),
    T(test_kill_during_appends),
    T(test_uncertain_survives_reopen),
    T(test_failed_moves),
    T(test_retarget),
    T(test_concurrent_appends_keep_order),
    T(test_wait_target_empty),
    T(test_wait_change),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
