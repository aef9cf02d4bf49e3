/* Baseline: a minimal connect loop. SLOTS non-blocking connects at a time through one epoll; each
 * connection is closed as soon as it is established and the slot connects again, for SECONDS;
 * prints "connects_per_s p50_us p99_us".
 * usage: connect_loop PORT SLOTS SECONDS */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000L + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }

static struct sockaddr_in addr;
static int ep;
static long *started, *samples, nsamples, cap = 1 << 24, failures;

static void start(int slot) {
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) { perror("socket"); exit(3); }
        started[slot] = now_ns();
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 || errno == EINPROGRESS) {
            struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = ((unsigned long)slot << 32) | (unsigned)fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            return;
        }
        failures++;
        close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s PORT SLOTS SECONDS\n", argv[0]); return 2; }
    int port = atoi(argv[1]), slots = atoi(argv[2]);
    double seconds = atof(argv[3]);
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ep = epoll_create1(EPOLL_CLOEXEC);
    started = calloc(slots, sizeof *started);
    samples = malloc(cap * sizeof *samples);
    long begin = now_ns(), end = begin + (long)(seconds * 1e9), done = 0;
    for (int i = 0; i < slots; i++) start(i);
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            int slot = (int)(evs[k].data.u64 >> 32), fd = (int)(evs[k].data.u64 & 0xffffffffu), err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) failures++;
            else {
                done++;
                if (nsamples < cap) samples[nsamples++] = now_ns() - started[slot];
            }
            close(fd);
            start(slot);
        }
    }
    double secs = (now_ns() - begin) / 1e9;
    qsort(samples, nsamples, sizeof(long), cmp);
    long p50 = nsamples ? samples[nsamples / 2] : 0, p99 = nsamples ? samples[nsamples * 99 / 100] : 0;
    printf("%.0f %.1f %.1f\n", done / secs, p50 / 1000.0, p99 / 1000.0);
    if (failures) fprintf(stderr, "connect_loop: %ld failed connects\n", failures);
    return 0;
}
