/*
 * Connection churn on one epoll thread: N cycles, CONCURRENCY at a time, for at most SECONDS.
 *
 *   churn TARGET N CONCURRENCY SECONDS MODE
 *
 * MODE   close        connect, then close at once (FIN)
 *        reset:http   connect, send half an HTTP request, then reset (SO_LINGER {1,0} + close)
 *        reset:echo   connect, send 100 bytes, then reset
 *
 * Prints  done=D errors=E seconds=S rate=R   (errors: connects refused, timed out, or no local port free).
 */
#include "faults.h"

struct slot {
    int fd;
    double t;
};

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage: %s TARGET N CONCURRENCY SECONDS close|reset:http|reset:echo", argv[0]);
    client_setup();
    struct target t;
    parse_target(argv[1], &t);
    long n = atol(argv[2]);
    int conc = atoi(argv[3]);
    double seconds = atof(argv[4]);
    const char *mode = argv[5];
    static const char partial_http[] = "GET / HTTP/1.1\r\nHost: faults\r\nX-Partial: abcdefgh";
    unsigned char echo_bytes[100];
    fill_pattern(1, 0, echo_bytes, sizeof echo_bytes);
    const void *payload = NULL;
    size_t payload_len = 0;
    if (strcmp(mode, "reset:http") == 0)
        payload = partial_http, payload_len = sizeof partial_http - 1;
    else if (strcmp(mode, "reset:echo") == 0)
        payload = echo_bytes, payload_len = sizeof echo_bytes;
    else if (strcmp(mode, "close") != 0)
        die("unknown mode %s", mode);
    if (n <= 0 || conc <= 0 || seconds <= 0)
        die("N, CONCURRENCY and SECONDS must be positive");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct slot *slots = calloc((size_t)conc, sizeof *slots);
    for (int i = 0; i < conc; i++)
        slots[i].fd = -1;
    long started = 0, done = 0, errors = 0;
    int inflight = 0;
    double start = now_sec(), end = start + seconds;
    struct epoll_event events[256];

    /* finish: the cycle's end once connected. */
#define FINISH(fd)                                                                        \
    do {                                                                                  \
        if (payload) {                                                                    \
            if (send((fd), payload, payload_len, MSG_NOSIGNAL) != (ssize_t)payload_len)  \
                errors++;                                                                 \
            else                                                                          \
                done++;                                                                   \
            reset_close(fd);                                                              \
        } else {                                                                          \
            close(fd);                                                                    \
            done++;                                                                       \
        }                                                                                 \
    } while (0)

    while ((started < n || inflight > 0) && now_sec() < end && !got_term) {
        for (int i = 0; i < conc && started < n; i++) {
            if (slots[i].fd >= 0)
                continue;
            int ok = 0;
            int fd = start_connect(&t, &ok);
            started++;
            if (fd < 0) {
                errors++;
                if (errno == EADDRNOTAVAIL || errno == EAGAIN)
                    usleep(1000); /* out of local ports for a moment (TIME_WAIT) */
                continue;
            }
            if (ok) {
                FINISH(fd);
                continue;
            }
            slots[i].fd = fd;
            slots[i].t = now_sec();
            inflight++;
            ep_add(ep, fd, EPOLLOUT, &slots[i]);
        }
        int k = epoll_wait(ep, events, 256, 20);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            struct slot *s = events[e].data.ptr;
            if (s->fd < 0)
                continue;
            epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            inflight--;
            if (connect_error(s->fd)) {
                errors++;
                close(s->fd);
            } else {
                FINISH(s->fd);
            }
            s->fd = -1;
        }
        double now = now_sec();
        for (int i = 0; i < conc; i++)
            if (slots[i].fd >= 0 && now - slots[i].t > 5) {
                epoll_ctl(ep, EPOLL_CTL_DEL, slots[i].fd, NULL);
                close(slots[i].fd);
                slots[i].fd = -1;
                inflight--;
                errors++;
            }
    }
    for (int i = 0; i < conc; i++)
        if (slots[i].fd >= 0)
            close(slots[i].fd);
    double elapsed = now_sec() - start;
    printf("done=%ld errors=%ld not_started=%ld seconds=%.3f rate=%.0f\n", done, errors, n - started, elapsed,
           (double)done / (elapsed > 0 ? elapsed : 1));
    return 0;
}
