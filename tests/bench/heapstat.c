/* tests/bench/heapstat.c: an LD_PRELOAD library that lets the benchmark ask
 * a running daemon how much heap it holds (glibc mallinfo2: bytes in use in
 * every arena plus mmapped chunks), to tell the memory a cache really holds
 * from what the process's RSS keeps (freed memory the allocator has not
 * returned, thread stacks, FUSE buffers).
 *
 *   HEAPSTAT_FILE=/tmp/x LD_PRELOAD=.../libheapstat.so daemon ...
 *
 * A thread polls every 5 ms for the file $HEAPSTAT_FILE.req; when it appears
 * it writes "in_use_bytes mmapped_bytes arena_bytes\n" to $HEAPSTAT_FILE.out
 * (written to a temporary name, then renamed) and removes the request.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char req_path[4096], out_path[4096], tmp_path[4096];

static void *heapstat_main(void *arg)
{
  (void)arg;
  const struct timespec tick = { 0, 5 * 1000 * 1000 };
  for (;;) {
    nanosleep(&tick, NULL);
    if (access(req_path, F_OK) != 0)
      continue;
    struct mallinfo2 mi = mallinfo2();
    FILE *f = fopen(tmp_path, "w");
    if (!f)
      continue;
    fprintf(f, "%zu %zu %zu\n", mi.uordblks + mi.hblkhd, mi.hblkhd, mi.arena);
    if (fclose(f) == 0 && rename(tmp_path, out_path) == 0)
      unlink(req_path);
  }
  return NULL;
}

__attribute__((constructor)) static void heapstat_start(void)
{
  const char *base = getenv("HEAPSTAT_FILE");
  if (!base || !*base || strlen(base) > sizeof req_path - 8)
    return;
  snprintf(req_path, sizeof req_path, "%s.req", base);
  snprintf(out_path, sizeof out_path, "%s.out", base);
  snprintf(tmp_path, sizeof tmp_path, "%s.tmp", base);
  pthread_t t;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, heapstat_main, NULL);
  pthread_attr_destroy(&attr);
}
