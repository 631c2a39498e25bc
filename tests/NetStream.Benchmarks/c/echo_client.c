/*
 * Echo load client: N connections ping-pong one message of S bytes each, for D seconds, on one epoll
 * thread. Every byte echoed is checked against what was sent (each message carries the connection and
 * sequence number, so stale, lost or reordered bytes are caught). Prints
 *     messages=<n> seconds=<s> rate=<messages/s>
 * and exits 1 with a FAIL line on any mismatch, early close or socket error.
 *
 * usage: echo_client TARGET CONNECTIONS SIZE SECONDS     (TARGET: tcp:[HOST:]PORT or unix:PATH)
 */
#include "common.h"
#include <fcntl.h>
#include <sys/epoll.h>

struct conn {
    int fd;
    unsigned id;
    unsigned long long seq;    /* messages completed */
    size_t sent, received;     /* progress within the current message */
    unsigned char *out, *in;
};

static size_t msg_size;

/* The message: a per-connection pseudo-random body, stamped with the connection id and sequence number. */
static void fill_body(struct conn *c)
{
    unsigned x = 2463534242u ^ (c->id * 2654435761u);
    for (size_t i = 0; i < msg_size; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        c->out[i] = (unsigned char)x;
    }
}

static void stamp(struct conn *c)
{
    unsigned char tag[12];
    memcpy(tag, &c->id, 4);
    memcpy(tag + 4, &c->seq, 8);
    memcpy(c->out, tag, msg_size < sizeof tag ? msg_size : sizeof tag);
}

static void set_events(int ep, struct conn *c, unsigned events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Writes what is left of the message; returns 1 when it is all out. */
static int pump_out(struct conn *c)
{
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, c->out + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            die("connection %u: send: %s", c->id, strerror(errno));
        }
        c->sent += (size_t)n;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        die("usage: %s TARGET CONNECTIONS SIZE SECONDS", argv[0]);
    struct target t;
    parse_target(argv[1], &t);
    int nconn = atoi(argv[2]);
    msg_size = (size_t)atol(argv[3]);
    double seconds = atof(argv[4]);
    if (nconn <= 0 || msg_size == 0 || seconds <= 0)
        die("connections, size and seconds must be positive");

    int ep = epoll_create1(0);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (ep < 0 || !conns)
        die("setup: %s", strerror(errno));

    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->id = (unsigned)i;
        c->out = malloc(msg_size);
        c->in = malloc(msg_size);
        if (!c->out || !c->in)
            die("out of memory");
        fill_body(c);
        c->fd = socket(t.family, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&t.addr, t.len) < 0)
            die("connection %d: connect to %s: %s", i, argv[1], strerror(errno));
        if (t.family == AF_INET) {
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }

    double start = now_sec(), end = start + seconds;
    for (int i = 0; i < nconn; i++) {
        stamp(&conns[i]);
        if (!pump_out(&conns[i]))
            set_events(ep, &conns[i], EPOLLIN | EPOLLOUT);
    }

    unsigned long long total = 0;
    struct epoll_event events[256];
    int running = 1;
    while (running) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        double now = now_sec();
        if (now >= end)
            break;
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            if ((events[e].events & EPOLLOUT) && pump_out(c))
                set_events(ep, c, EPOLLIN);
            if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            for (;;) {
                ssize_t r = recv(c->fd, c->in + c->received, msg_size - c->received, 0);
                if (r == 0)
                    die("connection %u: closed by the server after %llu messages", c->id, c->seq);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        break;
                    die("connection %u: recv: %s", c->id, strerror(errno));
                }
                size_t from = c->received;
                c->received += (size_t)r;
                if (c->received > c->sent || memcmp(c->in + from, c->out + from, (size_t)r) != 0)
                    die("connection %u: message %llu: echoed bytes differ from those sent (bytes %zu..%zu)",
                        c->id, c->seq, from, c->received);
                if (c->received < msg_size)
                    continue;
                /* One full message echoed: count it and send the next. */
                c->seq++;
                total++;
                c->sent = c->received = 0;
                stamp(c);
                if (!pump_out(c)) {
                    set_events(ep, c, EPOLLIN | EPOLLOUT);
                    break;
                }
            }
        }
    }
    double elapsed = now_sec() - start;
    for (int i = 0; i < nconn; i++)
        close(conns[i].fd);
    if (total == 0)
        die("no message was echoed");
    printf("messages=%llu seconds=%.3f rate=%.1f\n", total, elapsed, (double)total / elapsed);
    return 0;
}
