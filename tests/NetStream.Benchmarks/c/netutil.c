/*
 * Small network helpers for run.sh.
 *
 *   netutil freeport K               print K distinct free TCP ports on 127.0.0.1 (bound at once, port 0)
 *   netutil wait TARGET SECONDS      wait until TARGET accepts a connection; exit 1 on timeout
 *   netutil idle TARGET N SECONDS    open N connections, print "connected=N seconds=S", hold them idle
 *                                    until SIGTERM (or SECONDS at most), then check none was closed
 *
 * TARGET: tcp:[HOST:]PORT or unix:PATH.
 */
#include "common.h"
#include <poll.h>
#include <signal.h>

static volatile sig_atomic_t stop_holding;

static void on_term(int sig)
{
    (void)sig;
    stop_holding = 1;
}

static int connect_once(const struct target *t)
{
    int fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)&t->addr, t->len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int freeport(int k)
{
    int *fds = calloc((size_t)k, sizeof *fds);
    for (int i = 0; i < k; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, len) < 0 || getsockname(fds[i], (struct sockaddr *)&a, &len) < 0)
            die("freeport: %s", strerror(errno));
        printf("%u\n", ntohs(a.sin_port));
    }
    for (int i = 0; i < k; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

static int wait_for(const struct target *t, double seconds)
{
    double end = now_sec() + seconds;
    for (;;) {
        int fd = connect_once(t);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (now_sec() > end) {
            fprintf(stderr, "FAIL: nothing accepts connections after %.0f s (%s)\n", seconds, strerror(errno));
            return 1;
        }
        usleep(50 * 1000);
    }
}

static int idle(const struct target *t, int n, double hold)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    double start = now_sec();
    for (int i = 0; i < n; i++) {
        fds[i] = connect_once(t);
        if (fds[i] < 0)
            die("idle connection %d of %d: connect: %s", i + 1, n, strerror(errno));
    }
    printf("connected=%d seconds=%.3f\n", n, now_sec() - start);
    fflush(stdout);

    /* Hold until told to stop, then check no connection was closed by the server while idle. */
    double end = now_sec() + hold;
    while (!stop_holding && now_sec() < end)
        usleep(20 * 1000);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    int ready = poll(p, (nfds_t)n, 0);
    if (ready > 0)
        die("%d of %d idle connections were closed or got data while held", ready, n);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

int main(int argc, char **argv)
{
    struct target t;
    if (argc == 3 && strcmp(argv[1], "freeport") == 0)
        return freeport(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "wait") == 0) {
        parse_target(argv[2], &t);
        return wait_for(&t, atof(argv[3]));
    }
    if (argc == 5 && strcmp(argv[1], "idle") == 0) {
        struct sigaction sa = { .sa_handler = on_term };
        sigaction(SIGTERM, &sa, NULL);
        parse_target(argv[2], &t);
        return idle(&t, atoi(argv[3]), atof(argv[4]));
    }
    fprintf(stderr, "usage: %s freeport K | wait TARGET SECONDS | idle TARGET N SECONDS\n", argv[0]);
    return 2;
}
