/* Baseline: a minimal epoll echo client. CONNS connections, each keeping PIPELINE messages of SIZE
 * bytes in flight, for SECONDS; prints "round_trips_per_s p50_us p99_us".
 * usage: epoll_echo_client PORT CONNS SIZE PIPELINE SECONDS */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000L + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }

struct conn { int fd; long got; long sent_msgs; long recv_msgs; long *times; };

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: %s PORT CONNS SIZE PIPELINE SECONDS\n", argv[0]); return 2; }
    int port = atoi(argv[1]), nconn = atoi(argv[2]), size = atoi(argv[3]), pipeline = atoi(argv[4]);
    double seconds = atof(argv[5]);
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ep = epoll_create1(0), one = 1;
    struct conn *cs = calloc(nconn, sizeof *cs);
    char *msg = calloc(1, size * pipeline), *buf = malloc(1 << 16);
    long cap = 1 << 24, nsamples = 0, *samples = malloc(cap * sizeof(long));
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 3; }
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].times = calloc(pipeline, sizeof(long));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    long start = now_ns(), end = start + (long)(seconds * 1e9), done = 0;
    for (int i = 0; i < nconn; i++) {
        for (int k = 0; k < pipeline; k++) cs[i].times[k] = start;
        if (write(cs[i].fd, msg, (size_t)size * pipeline) < 0) return 3;
        cs[i].sent_msgs = pipeline;
    }
    struct epoll_event evs[1024];
    long stop = 0;
    while (!stop) {
        int n = epoll_wait(ep, evs, 1024, 100);
        long t = now_ns();
        if (t >= end) stop = t;
        for (int e = 0; e < n && !stop; e++) {
            struct conn *c = &cs[evs[e].data.u32];
            ssize_t r = read(c->fd, buf, 1 << 16);
            if (r <= 0) { fprintf(stderr, "server closed\n"); return 3; }
            c->got += r;
            int complete = 0;
            while (c->got >= size) {
                c->got -= size;
                long rtt = t - c->times[c->recv_msgs % pipeline];
                if (nsamples < cap) samples[nsamples++] = rtt;
                c->recv_msgs++;
                complete++;
            }
            for (int k = 0; k < complete; k++) c->times[(c->sent_msgs + k) % pipeline] = t;
            if (complete && write(c->fd, msg, (size_t)size * complete) < 0) return 3;
            c->sent_msgs += complete;
            done += complete;
        }
    }
    double elapsed = (stop - start) / 1e9;
    qsort(samples, nsamples, sizeof(long), cmp);
    printf("%.0f %.1f %.1f\n", done / elapsed, nsamples ? samples[nsamples / 2] / 1e3 : 0.0,
           nsamples ? samples[(long)(nsamples * 0.99)] / 1e3 : 0.0);
    return 0;
}
