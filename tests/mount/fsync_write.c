/* tests/mount/fsync_write.c: fsync through the mount for t_outbox*.sh (the
 * shell has no fsync, and CI has no python3).
 *
 *   fsync-write FILE TEXT   open O_WRONLY|O_APPEND, write TEXT, fsync, fsync
 *                           again, close
 *   fsync-write -c FILE TEXT  the same without fsync: what close returns
 *   fsync-write -r FILE     open O_RDONLY, fsync, close
 *   fsync-write -d DIR      open the folder, fsync it (FUSE fsyncdir), close
 *
 * Prints one line per step: "write=OK", "fsync=OK" or "fsync=EACCES",
 * "fsync2=...", "close=...", and "fsync_s=SECONDS" (how long the first fsync
 * took).  Exit status 0 when every step ran, whatever it returned; 2 on bad
 * usage or when the open fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *step, int rc)
{
  const char *name = rc == 0 ? "OK" : strerrorname_np(errno);
  printf("%s=%s\n", step, name ? name : "E?");
  fflush(stdout);
}

int main(int argc, char **argv)
{
  int flags;
  const char *path;
  const char *text = NULL;
  int do_fsync = 1;
  if (argc == 4 && strcmp(argv[1], "-c") == 0) {
    flags = O_WRONLY | O_APPEND;
    path = argv[2];
    text = argv[3];
    do_fsync = 0;
  } else if (argc == 3 && strcmp(argv[1], "-r") == 0) {
    flags = O_RDONLY;
    path = argv[2];
  } else if (argc == 3 && strcmp(argv[1], "-d") == 0) {
    flags = O_RDONLY | O_DIRECTORY;
    path = argv[2];
  } else if (argc == 3) {
    flags = O_WRONLY | O_APPEND;
    path = argv[1];
    text = argv[2];
  } else {
    fprintf(stderr,
            "usage: fsync-write FILE TEXT | -c FILE TEXT | -r FILE | -d DIR\n");
    return 2;
  }
  int fd = open(path, flags);
  if (fd < 0) {
    fprintf(stderr, "fsync-write: %s: %s\n", path, strerror(errno));
    return 2;
  }
  if (text) {
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    report("write", n == (ssize_t)len ? 0 : -1);
  }
  if (do_fsync) {
    double t0 = now_s();
    report("fsync", fsync(fd));
    printf("fsync_s=%.3f\n", now_s() - t0);
    if (text)
      report("fsync2", fsync(fd));
  }
  report("close", close(fd));
  return 0;
}
