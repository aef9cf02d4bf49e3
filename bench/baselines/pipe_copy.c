/* Baseline: pipe bandwidth the plain way: a child writes TOTAL bytes in BLOCK-sized writes from a
 * page-aligned buffer, the parent reads them. usage: pipe_copy BLOCK TOTAL   prints "bytes_per_s" */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000L + t.tv_nsec; }

int main(int argc, char **argv) {
    long block = argc > 1 ? atol(argv[1]) : 65536, total = argc > 2 ? atol(argv[2]) : 1L << 28;
    int p[2];
    char *buf;
    if (pipe(p) || posix_memalign((void **)&buf, 4096, block)) return 3;
    memset(buf, 'x', block);
    long start = now_ns();
    if (fork() == 0) {
        close(p[0]);
        for (long sent = 0; sent < total;) {
            ssize_t w = write(p[1], buf, total - sent < block ? total - sent : block);
            if (w <= 0) _exit(1);
            sent += w;
        }
        _exit(0);
    }
    close(p[1]);
    long got = 0;
    ssize_t r;
    while ((r = read(p[0], buf, block)) > 0) got += r;
    printf("%.0f\n", got / ((now_ns() - start) / 1e9));
    return got == total ? 0 : 1;
}
