/*
 * A periodic prober: every INTERVAL seconds, a new connection and one request (an HTTP/1.1 GET, or 64 echo bytes
 * that must come back), each given TIMEOUT seconds; runs until SIGTERM or SECONDS.
 *
 *   prober TARGET http|echo INTERVAL TIMEOUT SECONDS
 *
 * SIGUSR1 marks a moment (e.g. the release of a fault): results are counted before and after it, by the time each
 * request ended. Prints, at the end:
 *     served_before=A failed_before=B served_after=C failed_after=D pending=P first_after_ms=T max_ms=M
 * first_after_ms: from the mark to the first request served after it (-1: none, or no mark); max_ms: the slowest
 * request served. Requests still running at the end count as pending.
 */
#include "faults.h"

struct probe {
    int fd, connecting;
    double t0;
    char in[1024];
    size_t in_len;
};

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage: %s TARGET http|echo INTERVAL TIMEOUT SECONDS", argv[0]);
    client_setup();
    struct target t;
    parse_target(argv[1], &t);
    int http = strcmp(argv[2], "http") == 0;
    double interval = atof(argv[3]), timeout = atof(argv[4]), seconds = atof(argv[5]);
    if (!http && strcmp(argv[2], "echo") != 0)
        die("mode must be http or echo");
    unsigned char echo[64];
    fill_pattern(3, 0, echo, sizeof echo);
    const void *req = http ? (const void *)http_request : (const void *)echo;
    size_t req_len = http ? sizeof http_request - 1 : sizeof echo;

    enum { MAXP = 256 };
    struct probe probes[MAXP];
    for (int i = 0; i < MAXP; i++)
        probes[i].fd = -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    long served[2] = { 0, 0 }, failed[2] = { 0, 0 };
    double start = now_sec(), end = start + seconds, next = start, mark = 0, first_after = -1, max_ms = 0;
    struct epoll_event events[MAXP];

#define ENDED(p, ok)                                                    \
    do {                                                                \
        double t_end = now_sec();                                       \
        int after = mark > 0 && t_end >= mark;                          \
        if (ok) {                                                       \
            served[after]++;                                            \
            if (after && first_after < 0)                               \
                first_after = (t_end - mark) * 1000;                    \
            if ((t_end - (p)->t0) * 1000 > max_ms)                      \
                max_ms = (t_end - (p)->t0) * 1000;                      \
        } else {                                                        \
            failed[after]++;                                            \
        }                                                               \
        epoll_ctl(ep, EPOLL_CTL_DEL, (p)->fd, NULL);                    \
        close((p)->fd);                                                 \
        (p)->fd = -1;                                                   \
    } while (0)

    while (!got_term && now_sec() < end) {
        double now = now_sec();
        if (got_usr1 && mark == 0)
            mark = now;
        if (now >= next) {
            next += interval;
            struct probe *p = NULL;
            for (int i = 0; i < MAXP && !p; i++)
                if (probes[i].fd < 0)
                    p = &probes[i];
            if (p) {
                int done = 0;
                p->t0 = now;
                p->in_len = 0;
                p->fd = start_connect(&t, &done);
                if (p->fd < 0) {
                    failed[mark > 0]++;
                } else {
                    p->connecting = !done;
                    if (done && send(p->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
                        ep_add(ep, p->fd, EPOLLIN, p);
                        ENDED(p, 0);
                    } else {
                        ep_add(ep, p->fd, done ? EPOLLIN : EPOLLOUT, p);
                    }
                }
            }
        }
        int k = epoll_wait(ep, events, MAXP, 20);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            struct probe *p = events[e].data.ptr;
            if (p->fd < 0)
                continue;
            if (p->connecting) {
                p->connecting = 0;
                if (connect_error(p->fd) || send(p->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
                    ENDED(p, 0);
                    continue;
                }
                ep_mod(ep, p->fd, EPOLLIN, p);
                continue;
            }
            ssize_t r = recv(p->fd, p->in + p->in_len, sizeof p->in - 1 - p->in_len, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                ENDED(p, 0);
                continue;
            }
            p->in_len += (size_t)r;
            if (http) {
                long len = http_response_len(p->in, p->in_len);
                if (len > 0)
                    ENDED(p, 1);
                else if (len < 0 || p->in_len >= sizeof p->in - 1)
                    ENDED(p, 0);
            } else if (p->in_len >= req_len) {
                ENDED(p, p->in_len == req_len && memcmp(p->in, echo, req_len) == 0);
            } else if (memcmp(p->in, echo, p->in_len) != 0) {
                ENDED(p, 0);
            }
        }
        now = now_sec();
        for (int i = 0; i < MAXP; i++)
            if (probes[i].fd >= 0 && now - probes[i].t0 > timeout)
                ENDED(&probes[i], 0);
    }
    int pending = 0;
    for (int i = 0; i < MAXP; i++)
        if (probes[i].fd >= 0) {
            pending++;
            close(probes[i].fd);
        }
    printf("served_before=%ld failed_before=%ld served_after=%ld failed_after=%ld pending=%d first_after_ms=%.0f max_ms=%.0f\n",
           served[0], failed[0], served[1], failed[1], pending, mark > 0 ? first_after : -1.0, max_ms);
    return 0;
}
