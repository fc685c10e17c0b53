/* tests/bench/readlat.c: latency of cached reads of small files.
 *
 *   readlat [-n ITERATIONS] LISTFILE
 *
 * LISTFILE names one file per line.  One pass over all of them warms the
 * caches (not measured); then ITERATIONS (default 10000) operations, going
 * round the list, each `stat` + `open` + `read` to EOF + `close`, are timed one
 * by one (CLOCK_MONOTONIC).  Prints one JSON object on stdout:
 *
 *   {"iterations":N,"files":K,"bytes":B,"digest":"…","size_mismatches":M,
 *    "p50_us":…,"p90_us":…,"p99_us":…,"mean_us":…,"max_us":…,
 *    "stat_p50_us":…,"stat_p99_us":…}
 *
 * bytes and digest cover one pass over the list (so runs over copies of the
 * same files can be checked to have read the same bytes); size_mismatches
 * counts operations whose bytes read differed from st_size.  Any failing call
 * stops the program with exit status 1.
 */
#include <zlib.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct_us(const uint64_t *sorted, size_t n, double p)
{
  size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return (double)sorted[rank - 1] / 1000.0;
}

static int read_list(const char *path, char ***out, size_t *n_out)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  char **paths = NULL;
  size_t n = 0, cap = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t len;
  int r = 0;
  while ((len = getline(&line, &line_cap, f)) >= 0) {
    if (len > 0 && line[len - 1] == '\n')
      line[--len] = '\0';
    if (len == 0)
      continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 256;
      char **np = realloc(paths, nc * sizeof *np);
      if (!np) {
        r = -ENOMEM;
        break;
      }
      paths = np;
      cap = nc;
    }
    if (!(paths[n] = strdup(line))) {
      r = -ENOMEM;
      break;
    }
    n++;
  }
  free(line);
  fclose(f);
  if (r < 0 || n == 0) {
    for (size_t i = 0; i < n; i++)
      free(paths[i]);
    free(paths);
    return r < 0 ? r : -ENOENT;
  }
  *out = paths;
  *n_out = n;
  return 0;
}

struct op_result {
  uint64_t stat_ns, total_ns;
  size_t bytes;
  off_t st_size;
};

/* stat + open + read to EOF + close of one file; digest (may be NULL) is
 * updated with the bytes read (zlib's CRC-32). */
static int one_op(const char *path, char *buf, struct op_result *res,
                  uint64_t *digest)
{
  struct stat st;
  uint64_t t0 = now_ns();
  if (stat(path, &st) < 0)
    return -errno;
  uint64_t t1 = now_ns();
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -errno;
  size_t total = 0;
  for (;;) {
    ssize_t got = read(fd, buf, READ_CHUNK);
    if (got < 0) {
      int e = errno;
      if (e == EINTR)
        continue;
      close(fd);
      return -e;
    }
    if (got == 0)
      break;
    if (digest)
      *digest = crc32_z((uLong)*digest, (const Bytef *)buf, (size_t)got);
    total += (size_t)got;
  }
  if (close(fd) < 0)
    return -errno;
  uint64_t t2 = now_ns();
  res->stat_ns = t1 - t0;
  res->total_ns = t2 - t0;
  res->bytes = total;
  res->st_size = st.st_size;
  return 0;
}

int main(int argc, char **argv)
{
  long iterations = 10000;
  int opt;
  while ((opt = getopt(argc, argv, "n:")) != -1) {
    if (opt == 'n') {
      char *end;
      iterations = strtol(optarg, &end, 10);
      if (*end || iterations < 1) {
        fprintf(stderr, "readlat: bad -n %s\n", optarg);
        return 2;
      }
    } else {
      fprintf(stderr, "usage: readlat [-n ITERATIONS] LISTFILE\n");
      return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "usage: readlat [-n ITERATIONS] LISTFILE\n");
    return 2;
  }
  int ret = 1;
  char **paths = NULL;
  size_t n_paths = 0;
  uint64_t *total = NULL, *stat_t = NULL;
  char *buf = malloc(READ_CHUNK);
  int r = read_list(argv[optind], &paths, &n_paths);
  if (r < 0) {
    fprintf(stderr, "readlat: %s: %s\n", argv[optind], strerror(-r));
    goto out;
  }
  total = calloc((size_t)iterations, sizeof *total);
  stat_t = calloc((size_t)iterations, sizeof *stat_t);
  if (!buf || !total || !stat_t) {
    fprintf(stderr, "readlat: out of memory\n");
    goto out;
  }

  /* Warm-up pass: fills the caches, sums the bytes and the digest. */
  uint64_t digest = crc32_z(0, Z_NULL, 0);
  size_t pass_bytes = 0;
  for (size_t i = 0; i < n_paths; i++) {
    struct op_result res;
    r = one_op(paths[i], buf, &res, &digest);
    if (r < 0) {
      fprintf(stderr, "readlat: %s: %s\n", paths[i], strerror(-r));
      goto out;
    }
    pass_bytes += res.bytes;
  }

  long mismatches = 0;
  double sum_us = 0;
  for (long i = 0; i < iterations; i++) {
    const char *p = paths[(size_t)i % n_paths];
    struct op_result res;
    r = one_op(p, buf, &res, NULL);
    if (r < 0) {
      fprintf(stderr, "readlat: %s: %s\n", p, strerror(-r));
      goto out;
    }
    if ((off_t)res.bytes != res.st_size)
      mismatches++;
    total[i] = res.total_ns;
    stat_t[i] = res.stat_ns;
    sum_us += (double)res.total_ns / 1000.0;
  }
  size_t n = (size_t)iterations;
  qsort(total, n, sizeof *total, cmp_u64);
  qsort(stat_t, n, sizeof *stat_t, cmp_u64);
  printf("{\"iterations\":%ld,\"files\":%zu,\"bytes\":%zu,"
         "\"digest\":\"%016" PRIx64 "\",\"size_mismatches\":%ld,"
         "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,"
         "\"max_us\":%.2f,\"stat_p50_us\":%.2f,\"stat_p99_us\":%.2f}\n",
         iterations, n_paths, pass_bytes, digest, mismatches,
         pct_us(total, n, 50), pct_us(total, n, 90), pct_us(total, n, 99),
         sum_us / (double)n, (double)total[n - 1] / 1000.0,
         pct_us(stat_t, n, 50), pct_us(stat_t, n, 99));
  ret = 0;
out:
  for (size_t i = 0; i < n_paths; i++)
    free(paths[i]);
  free(paths);
  free(total);
  free(stat_t);
  free(buf);
  return ret;
}
