/* Baseline: a true pipe round trip: MSG bytes to a child over one pipe and back over another.
 * usage: pipe_pingpong ITERATIONS [MSG]   prints "p50_us p99_us" */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000L + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000, size = argc > 2 ? atoi(argv[2]) : 64;
    int a[2], b[2];
    char buf[65536] = {0};
    if (pipe(a) || pipe(b)) return 3;
    if (fork() == 0) {
        close(a[1]); close(b[0]);
        while (read(a[0], buf, size) == size) if (write(b[1], buf, size) != size) break;
        _exit(0);
    }
    close(a[0]); close(b[1]);
    long *t = malloc(n * sizeof(long));
    for (int i = 0; i < 100 + n; i++) {
        long t0 = now_ns();
        if (write(a[1], buf, size) != size || read(b[0], buf, size) != size) return 3;
        if (i >= 100) t[i - 100] = now_ns() - t0;
    }
    qsort(t, n, sizeof(long), cmp);
    printf("%.2f %.2f\n", t[n / 2] / 1e3, t[(long)(n * 0.99)] / 1e3);
    return 0;
}
