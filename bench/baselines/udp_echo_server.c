/* Baseline: the smallest sensible UDP echo server: one socket, a blocking recvmmsg of up to 32
 * datagrams (MSG_WAITFORONE: returns with what is there once one came), one sendmmsg back.
 * usage: udp_echo_server PORT   (prints "ready PORT" once bound on 127.0.0.1) */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
#define SLOT 65536

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int s = socket(AF_INET, SOCK_DGRAM, 0), room = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 3; }
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    printf("ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    static char data[BATCH][SLOT];
    static struct sockaddr_storage from[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr in[BATCH], out[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; ++i) {
            iov[i].iov_base = data[i];
            iov[i].iov_len = SLOT;
            memset(&in[i], 0, sizeof in[i]);
            in[i].msg_hdr.msg_name = &from[i];
            in[i].msg_hdr.msg_namelen = sizeof from[i];
            in[i].msg_hdr.msg_iov = &iov[i];
            in[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(s, in, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        for (int i = 0; i < n; ++i) {
            iov[i].iov_len = in[i].msg_len;
            memset(&out[i], 0, sizeof out[i]);
            out[i].msg_hdr = in[i].msg_hdr;
        }
        for (int sent = 0; sent < n;) {
            int k = sendmmsg(s, out + sent, n - sent, 0);
            if (k <= 0) break;
            sent += k;
        }
    }
}
