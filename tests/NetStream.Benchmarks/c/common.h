/* Shared helpers of the NetStream benchmark's C programs: addresses, time, errors. */
#ifndef NSB_COMMON_H
#define NSB_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static inline void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static inline double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A target is "tcp:PORT" (127.0.0.1), "tcp:HOST:PORT" or "unix:PATH". */
struct target {
    struct sockaddr_storage addr;
    socklen_t len;
    int family;
};

static inline void parse_target(const char *spec, struct target *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        if (strlen(spec + 5) >= sizeof un->sun_path)
            die("unix socket path too long: %s", spec + 5);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, spec + 5);
        t->len = sizeof *un;
        t->family = AF_UNIX;
        return;
    }
    if (strncmp(spec, "tcp:", 4) != 0)
        die("target must be tcp:[HOST:]PORT or unix:PATH, not '%s'", spec);
    const char *rest = spec + 4, *colon = strrchr(rest, ':');
    char host[64] = "127.0.0.1";
    if (colon) {
        size_t n = (size_t)(colon - rest);
        if (n >= sizeof host)
            die("host too long: %s", spec);
        memcpy(host, rest, n);
        host[n] = 0;
        rest = colon + 1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)&t->addr;
    in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)atoi(rest));
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
        die("bad IPv4 address: %s", host);
    t->len = sizeof *in;
    t->family = AF_INET;
}

#endif
