/* Shared helpers of the fault suite's C clients: non-blocking connects, signals, descriptors, a tiny HTTP reader. */
#ifndef NSF_FAULTS_H
#define NSF_FAULTS_H

#include "../../NetStream.Benchmarks/c/common.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

static volatile sig_atomic_t got_term, got_usr1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
}

/* Every client: SIGPIPE ignored, SIGTERM/SIGINT/SIGUSR1 set flags, RLIMIT_NOFILE raised to the hard limit. */
static inline void client_setup(void)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
}

/* Starts a non-blocking connect: returns the descriptor (connected or in progress, *done says which) or -1. */
static inline int start_connect(const struct target *t, int *done)
{
    int fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (t->family == AF_INET) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, t->len) == 0) {
        *done = 1;
        return fd;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
        *done = 0;
        return fd;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* The outcome of a connect in progress once writable: 0 or the errno. */
static inline int connect_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* Closes with SO_LINGER {1, 0}: the kernel sends RST instead of FIN. */
static inline void reset_close(int fd)
{
    struct linger l = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static inline void ep_add(int ep, int fd, unsigned events, void *ptr)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl add: %s", strerror(errno));
}

static inline void ep_mod(int ep, int fd, unsigned events, void *ptr)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
        die("epoll_ctl mod: %s", strerror(errno));
}

/* A byte of connection ID's stream at offset OFF: every sent byte can be checked without keeping it. */
static inline unsigned char pattern_byte(unsigned id, unsigned long long off)
{
    unsigned long long x = (off >> 3) * 0x9E3779B97F4A7C15ull ^ ((unsigned long long)id * 0xC2B2AE3D27D4EB4Full + 0x165667B19E3779F9ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (unsigned char)(x >> ((off & 7) * 8));
}

static inline void fill_pattern(unsigned id, unsigned long long off, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(id, off + i);
}

static const char http_request[] = "GET / HTTP/1.1\r\nHost: faults\r\n\r\n";

/* Length of a complete HTTP/1.1 response at the start of BUF (headers + Content-Length body), 0 if incomplete,
 * -1 if it is not a 2xx response. */
static inline long http_response_len(const char *buf, size_t len)
{
    if (len >= 12 && (memcmp(buf, "HTTP/1.1 2", 10) != 0))
        return -1;
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    long head = (long)(end - buf) + 4, body = 0;
    const char *cl = memmem(buf, (size_t)head, "Content-Length:", 15);
    if (!cl)
        cl = memmem(buf, (size_t)head, "content-length:", 15);
    if (cl)
        body = atol(cl + 15);
    return (long)len >= head + body ? head + body : 0;
}

#endif
