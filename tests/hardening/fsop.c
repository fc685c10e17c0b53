/* tests/hardening/fsop: one file-system call (or an open-write-close
 * sequence) with the outcome printed as the errno's name and the step that
 * failed, so that the hostile-input table can say "EMSGSIZE@write" instead
 * of matching a tool's wording.  Shell tools say which call failed only in
 * prose, and a shell ignores what close returns.
 *
 *   fsop write PATH [-a] [-t] [-b CHUNK] [-s]   data from stdin; -a O_APPEND,
 *                                               -t O_TRUNC, -b write() size,
 *                                               -s fsync before close
 *   fsop read PATH                              prints "OK <bytes>"
 *   fsop open PATH r|w|rw|a                     open, then close
 *   fsop unlink|rmdir|mkdir|mknod|create|utime PATH
 *   fsop rename|link|symlink FROM TO
 *   fsop chmod PATH OCTAL | chown PATH UID GID | truncate PATH SIZE
 *   fsop setxattr PATH
 *   fsop strerror ENAME                         the C library's text for ENAME
 *
 * Prints "OK" (exit 0) or "ENAME@step" (exit 1); usage errors exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define E(x) { x, #x }
static const struct {
  int e;
  const char *name;
} names[] = {
  E(EPERM), E(ENOENT), E(EIO), E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES),
  E(EEXIST), E(EXDEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(EFBIG),
  E(ENOSPC), E(EROFS), E(EMLINK), E(ENAMETOOLONG), E(ENOSYS), E(ENOTEMPTY),
  E(ENODATA), E(EILSEQ), E(EMSGSIZE), E(EDESTADDRREQ), E(EOPNOTSUPP),
  E(ETIMEDOUT), E(ECONNREFUSED), E(ENOTCONN), E(ECANCELED), E(EBUSY),
  E(ERANGE), E(E2BIG), E(EFAULT), E(ENXIO), E(ETXTBSY), E(ESTALE),
};

static const char *errno_name(int e)
{
  static char buf[32];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].e == e)
      return names[i].name;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

static int report(int rc, const char *step)
{
  if (rc == 0) {
    printf("OK\n");
    return 0;
  }
  printf("%s@%s\n", errno_name(errno), step);
  return 1;
}

static int usage(void)
{
  fprintf(stderr, "usage: fsop OP PATH [ARGS] (see tests/hardening/fsop.c)\n");
  return 2;
}

/* Reads all of stdin; *len gets its size.  NULL when out of memory. */
static char *slurp(size_t *len)
{
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    ssize_t got = read(0, buf + n, cap - n);
    if (got <= 0)
      break;
    n += (size_t)got;
    if (n == cap) {
      char *grown = realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        return NULL;
      }
      buf = grown;
      cap *= 2;
    }
  }
  *len = n;
  return buf;
}

static int do_write(int argc, char **argv)
{
  const char *path = argv[2];
  int flags = O_WRONLY;
  size_t chunk = 0;
  int do_sync = 0;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "-a") == 0)
      flags |= O_APPEND;
    else if (strcmp(argv[i], "-t") == 0)
      flags |= O_TRUNC;
    else if (strcmp(argv[i], "-s") == 0)
      do_sync = 1;
    else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
      chunk = strtoul(argv[++i], NULL, 10);
    else
      return usage();
  }
  size_t len = 0;
  char *data = slurp(&len);
  if (!data) {
    fprintf(stderr, "fsop: out of memory\n");
    return 2;
  }
  int rc = 1;
  int fd = open(path, flags);
  if (fd < 0) {
    rc = report(-1, "open");
    goto out;
  }
  if (chunk == 0)
    chunk = len ? len : 1;
  for (size_t off = 0; off < len;) {
    size_t n = len - off < chunk ? len - off : chunk;
    ssize_t w = write(fd, data + off, n);
    if (w < 0) {
      int saved = errno;
      rc = report(-1, "write");
      close(fd);    /* what close says after a failed write is not asked */
      errno = saved;
      goto out;
    }
    off += (size_t)w;
  }
  if (do_sync && fsync(fd) < 0) {
    rc = report(-1, "fsync");
    close(fd);
    goto out;
  }
  rc = report(close(fd), "close");
out:
  free(data);
  return rc;
}

static int do_read(const char *path)
{
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return report(-1, "open");
  char buf[65536];
  long long total = 0;
  for (;;) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0) {
      int saved = errno;
      close(fd);
      errno = saved;
      return report(-1, "read");
    }
    if (got == 0)
      break;
    total += got;
  }
  if (close(fd) < 0)
    return report(-1, "close");
  printf("OK %lld\n", total);
  return 0;
}

static int do_open(const char *path, const char *how)
{
  int flags;
  if (strcmp(how, "r") == 0)
    flags = O_RDONLY;
  else if (strcmp(how, "w") == 0)
    flags = O_WRONLY;
  else if (strcmp(how, "rw") == 0)
    flags = O_RDWR;
  else if (strcmp(how, "a") == 0)
    flags = O_WRONLY | O_APPEND;
  else
    return usage();
  int fd = open(path, flags);
  if (fd < 0)
    return report(-1, "open");
  return report(close(fd), "close");
}

int main(int argc, char **argv)
{
  if (argc < 3)
    return usage();
  const char *op = argv[1], *p = argv[2];
  if (strcmp(op, "strerror") == 0) {
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
      if (strcmp(names[i].name, p) == 0) {
        printf("%s\n", strerror(names[i].e));
        return 0;
      }
    return 2;
  }
  if (strcmp(op, "write") == 0)
    return do_write(argc, argv);
  if (strcmp(op, "read") == 0)
    return do_read(p);
  if (strcmp(op, "open") == 0 && argc == 4)
    return do_open(p, argv[3]);
  if (strcmp(op, "unlink") == 0)
    return report(unlink(p), op);
  if (strcmp(op, "rmdir") == 0)
    return report(rmdir(p), op);
  if (strcmp(op, "mkdir") == 0)
    return report(mkdir(p, 0755), op);
  if (strcmp(op, "mknod") == 0)
    return report(mknod(p, S_IFIFO | 0644, 0), op);
  if (strcmp(op, "utime") == 0)
    return report(utimensat(AT_FDCWD, p, NULL, 0), op);
  if (strcmp(op, "create") == 0) {
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
      return report(-1, op);
    return report(close(fd), "close");
  }
  if (strcmp(op, "setxattr") == 0)
    return report(setxattr(p, "user.cliqfs.test", "1", 1, 0), op);
  if (argc < 4)
    return usage();
  const char *a = argv[3];
  if (strcmp(op, "rename") == 0)
    return report(rename(p, a), op);
  if (strcmp(op, "link") == 0)
    return report(link(p, a), op);
  if (strcmp(op, "symlink") == 0)
    return report(symlink(p, a), op);
  if (strcmp(op, "chmod") == 0)
    return report(chmod(p, (mode_t)strtoul(a, NULL, 8)), op);
  if (strcmp(op, "truncate") == 0)
    return report(truncate(p, strtoll(a, NULL, 10)), op);
  if (strcmp(op, "chown") == 0 && argc == 5)
    return report(chown(p, (uid_t)strtoul(a, NULL, 10),
                        (gid_t)strtoul(argv[4], NULL, 10)), op);
  return usage();
}
