/*
 * Minimal epoll echo server, the reference for the raw-echo scenario: one thread, level-triggered epoll,
 * accept4 until EAGAIN, read then write back; what the socket will not take yet is kept and the
 * connection stops reading until it is flushed (back-pressure). It shows how fast the echo client can go
 * and how much room the .NET servers leave.
 *
 * usage: echo_server TARGET        (TARGET: tcp:[HOST:]PORT or unix:PATH)
 */
#include "common.h"
#include <signal.h>
#include <sys/epoll.h>

#define BUF_SIZE 65536

struct conn {
    int fd;
    size_t off, len;           /* bytes of buf still to write back */
    unsigned char buf[BUF_SIZE];
};

static int listen_fd;

static void watch(int ep, int op, struct conn *c, unsigned events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, op, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Writes the pending bytes; returns 1 when none are left, 0 when the socket is full, -1 on error. */
static int flush_out(struct conn *c)
{
    while (c->len > 0) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->off += (size_t)n;
        c->len -= (size_t)n;
    }
    c->off = 0;
    return 1;
}

static void on_readable(int ep, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(ep, c);
            return;
        }
        if (n < 0)
            return;
        c->len = (size_t)n;
        int r = flush_out(c);
        if (r < 0) {
            drop(ep, c);
            return;
        }
        if (r == 0) {
            watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT);
            return;
        }
        if (n < BUF_SIZE)
            return;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: %s TARGET", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    struct target t;
    parse_target(argv[1], &t);
    if (t.family == AF_UNIX)
        unlink(((struct sockaddr_un *)&t.addr)->sun_path);
    listen_fd = socket(t.family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&t.addr, t.len) < 0 || listen(listen_fd, 4096) < 0)
        die("listen on %s: %s", argv[1], strerror(errno));

    int ep = epoll_create1(0);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) < 0)
        die("epoll: %s", strerror(errno));

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    nc->off = nc->len = 0;
                    if (t.family == AF_INET)
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    watch(ep, EPOLL_CTL_ADD, nc, EPOLLIN);
                }
                continue;
            }
            if (c->len > 0) {   /* waiting to write back: read nothing more until done */
                int r = flush_out(c);
                if (r < 0) {
                    drop(ep, c);
                    continue;
                }
                if (r == 1)
                    watch(ep, EPOLL_CTL_MOD, c, EPOLLIN);
                continue;
            }
            on_readable(ep, c);
        }
    }
}
