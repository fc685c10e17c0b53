/* tests/bench/readlat.c: latency of cached reads of small files.
 *
 *   readlat [-n ITERATIONS] [-b BLOCK] LISTFILE...
 *
 * Each LISTFILE names one file per line.  One pass over every list warms the
 * caches (not measured); then ITERATIONS (default 10000) operations per list,
 * each `stat` + `open` + `read` to EOF + `close`, are timed one by one
 * (CLOCK_MONOTONIC), going round each list.  With several lists the
 * operations alternate between them in blocks of BLOCK (default 50): BLOCK
 * on the first list, BLOCK on the second, and so on, so that every list is
 * measured under the same state of the machine (a shared machine's speed
 * drifts by tens of per cent over seconds).  Prints one JSON object per
 * list, in the order given, on stdout:
 *
 *   {"list":"…","iterations":N,"files":K,"bytes":B,"digest":"…",
 *    "size_mismatches":M,"p50_us":…,"p90_us":…,"p99_us":…,"mean_us":…,
 *    "max_us":…,"stat_p50_us":…,"stat_p99_us":…}
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

/* One list and what its timed operations measured. */
struct lat_list {
  const char *name;
  char **paths;
  size_t n_paths;
  uint64_t *total, *stat_t; /* per operation, ns */
  long done;
  long mismatches;
  double sum_us;
  uint64_t digest;
  size_t pass_bytes;
};

static void lat_list_free(struct lat_list *l)
{
  for (size_t i = 0; i < l->n_paths; i++)
    free(l->paths[i]);
  free(l->paths);
  free(l->total);
  free(l->stat_t);
}

/* Warm-up pass: fills the caches, sums the bytes and the digest. */
static int lat_warm(struct lat_list *l, char *buf)
{
  l->digest = crc32_z(0, Z_NULL, 0);
  for (size_t i = 0; i < l->n_paths; i++) {
    struct op_result res;
    int r = one_op(l->paths[i], buf, &res, &l->digest);
    if (r < 0) {
      fprintf(stderr, "readlat: %s: %s\n", l->paths[i], strerror(-r));
      return r;
    }
    l->pass_bytes += res.bytes;
  }
  return 0;
}

/* Up to count more timed operations on l. */
static int lat_run(struct lat_list *l, char *buf, long count, long iterations)
{
  for (long k = 0; k < count && l->done < iterations; k++) {
    const char *p = l->paths[(size_t)l->done % l->n_paths];
    struct op_result res;
    int r = one_op(p, buf, &res, NULL);
    if (r < 0) {
      fprintf(stderr, "readlat: %s: %s\n", p, strerror(-r));
      return r;
    }
    if ((off_t)res.bytes != res.st_size)
      l->mismatches++;
    l->total[l->done] = res.total_ns;
    l->stat_t[l->done] = res.stat_ns;
    l->sum_us += (double)res.total_ns / 1000.0;
    l->done++;
  }
  return 0;
}

static void lat_print(struct lat_list *l)
{
  size_t n = (size_t)l->done;
  qsort(l->total, n, sizeof *l->total, cmp_u64);
  qsort(l->stat_t, n, sizeof *l->stat_t, cmp_u64);
  printf("{\"list\":\"");
  for (const unsigned char *c = (const unsigned char *)l->name; *c; c++) {
    if (*c == '"' || *c == '\\')
      printf("\\%c", *c);
    else if (*c < 0x20)
      printf("\\u%04x", *c);
    else
      putchar(*c);
  }
  printf("\",\"iterations\":%ld,\"files\":%zu,\"bytes\":%zu,"
         "\"digest\":\"%016" PRIx64 "\",\"size_mismatches\":%ld,"
         "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,"
         "\"max_us\":%.2f,\"stat_p50_us\":%.2f,\"stat_p99_us\":%.2f}\n",
         l->done, l->n_paths, l->pass_bytes, l->digest, l->mismatches,
         pct_us(l->total, n, 50), pct_us(l->total, n, 90),
         pct_us(l->total, n, 99), l->sum_us / (double)n,
         (double)l->total[n - 1] / 1000.0, pct_us(l->stat_t, n, 50),
         pct_us(l->stat_t, n, 99));
}

static int parse_count(const char *arg, long *out)
{
  char *end;
  long v = strtol(arg, &end, 10);
  if (*end || v < 1)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv)
{
  long iterations = 10000, block = 50;
  int opt;
  while ((opt = getopt(argc, argv, "n:b:")) != -1) {
    if ((opt == 'n' && parse_count(optarg, &iterations) == 0) ||
        (opt == 'b' && parse_count(optarg, &block) == 0))
      continue;
    if (opt == 'n' || opt == 'b')
      fprintf(stderr, "readlat: bad -%c %s\n", opt, optarg);
    fprintf(stderr, "usage: readlat [-n ITERATIONS] [-b BLOCK] LISTFILE...\n");
    return 2;
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: readlat [-n ITERATIONS] [-b BLOCK] LISTFILE...\n");
    return 2;
  }
  int ret = 1;
  size_t n_lists = (size_t)(argc - optind);
  struct lat_list *lists = calloc(n_lists, sizeof *lists);
  char *buf = malloc(READ_CHUNK);
  if (!lists || !buf) {
    fprintf(stderr, "readlat: out of memory\n");
    goto out;
  }
  for (size_t li = 0; li < n_lists; li++) {
    struct lat_list *l = &lists[li];
    l->name = argv[optind + (int)li];
    int r = read_list(l->name, &l->paths, &l->n_paths);
    if (r < 0) {
      fprintf(stderr, "readlat: %s: %s\n", l->name, strerror(-r));
      goto out;
    }
    l->total = calloc((size_t)iterations, sizeof *l->total);
    l->stat_t = calloc((size_t)iterations, sizeof *l->stat_t);
    if (!l->total || !l->stat_t) {
      fprintf(stderr, "readlat: out of memory\n");
      goto out;
    }
  }
  for (size_t li = 0; li < n_lists; li++)
    if (lat_warm(&lists[li], buf) < 0)
      goto out;
  for (long done = 0; done < iterations; done += block)
    for (size_t li = 0; li < n_lists; li++)
      if (lat_run(&lists[li], buf, block, iterations) < 0)
        goto out;
  for (size_t li = 0; li < n_lists; li++)
    lat_print(&lists[li]);
  ret = 0;
out:
  for (size_t li = 0; lists && li < n_lists; li++)
    lat_list_free(&lists[li]);
  free(lists);
  free(buf);
  return ret;
}
