/*
 * The misbehaving peers of the fault suite (run.sh). Every mode is bounded in count and time, and prints one line of
 * figures (key=value) on stdout.
 *
 *   faultclient churn TARGET N                connect and close N times, sequentially        -> done= errors=
 *   faultclient resets TARGET N               N times: connect, send half an HTTP request, reset (SO_LINGER {1,0})
 *   faultclient hold TARGET N SECONDS KIND    N connections behaving as KIND for at most SECONDS; counts those the
 *                                             server closed and when:                       -> closed= last_close_s=
 *        KIND: silent (send nothing), stall (one byte, then nothing), slow:K (a byte every K seconds),
 *              neverread (write until the window is full, never read)
 *   faultclient request TARGET N WAIT         open N connections, hold them WAIT seconds idle, then one HTTP/1.1
 *                                             request on each                                -> served= failed=
 *   faultclient halfclose TARGET N BYTES      N clients, 50 at a time: send BYTES random bytes, shutdown(SHUT_WR),
 *                                             read to the end, compare                       -> exact= mismatched=
 *   faultclient pingpong TARGET N SIZE SECS   N clients echo SIZE-byte rounds until the server ends them or SECS pass;
 *                                             every byte that comes back must be what was sent -> rounds= mismatched= fin= reset=
 */
#include "../../NetStream.Benchmarks/c/common.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

static int open_conn(const struct target *t)
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

static void reset_close(int fd)
{
    struct linger l = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int churn(const struct target *t, int n, int reset)
{
    static const char half[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    int errors = 0;
    for (int i = 0; i < n; i++) {
        int fd = open_conn(t);
        if (fd < 0) {
            errors++;
            continue;
        }
        if (reset) {
            if (send(fd, half, sizeof half - 1, MSG_NOSIGNAL) < 0)
                errors++;
            reset_close(fd);
        } else {
            close(fd);
        }
    }
    printf("done=%d errors=%d\n", n - errors, errors);
    return 0;
}

/* Whether the server ended the connection: EOF, a reset, or an error. Reads and drops what it sent (echoes). */
static int ended(int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0)
            return 1;
        if (r < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

static int hold(const struct target *t, int n, double seconds, const char *kind)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    double *closed_at = calloc((size_t)n, sizeof *closed_at);
    double interval = strncmp(kind, "slow:", 5) == 0 ? atof(kind + 5) : 0;
    int neverread = strcmp(kind, "neverread") == 0;
    double start = now_sec();
    for (int i = 0; i < n; i++) {
        fds[i] = open_conn(t);
        if (fds[i] < 0)
            die("hold: connect %d of %d: %s", i + 1, n, strerror(errno));
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        if (strcmp(kind, "stall") == 0 || interval > 0)
            send(fds[i], "x", 1, MSG_NOSIGNAL);
    }
    printf("connected=%d connect_s=%.3f\n", n, now_sec() - start);
    fflush(stdout);
    static char junk[65536];
    double next_byte = now_sec() + interval, end = start + seconds;
    int closed = 0;
    while (now_sec() < end && closed < n) {
        int send_now = interval > 0 && now_sec() >= next_byte;
        if (send_now)
            next_byte += interval;
        for (int i = 0; i < n; i++) {
            if (closed_at[i] > 0)
                continue;
            if (neverread)
                while (send(fds[i], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
                }
            else if (send_now)
                send(fds[i], "x", 1, MSG_NOSIGNAL);
            struct pollfd p = { .fd = fds[i], .events = neverread ? 0 : POLLIN };
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR) || (!neverread && ended(fds[i])))) {
                closed_at[i] = now_sec() - start;
                closed++;
            }
        }
        usleep(10 * 1000);
    }
    double last = 0;
    for (int i = 0; i < n; i++) {
        if (closed_at[i] > last)
            last = closed_at[i];
        close(fds[i]);
    }
    printf("closed=%d of=%d last_close_s=%.3f\n", closed, n, last);
    return 0;
}

static int request(const struct target *t, int n, double wait)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++)
        if ((fds[i] = open_conn(t)) < 0)
            die("request: connect %d of %d: %s", i + 1, n, strerror(errno));
    printf("connected=%d\n", n);
    fflush(stdout);
    usleep((useconds_t)(wait * 1e6));
    int served = 0;
    for (int i = 0; i < n; i++) {
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[512];
        if (send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL) > 0) {
            ssize_t r = recv(fds[i], buf, sizeof buf - 1, 0);
            if (r > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
                served++;
        }
        close(fds[i]);
    }
    printf("served=%d failed=%d\n", served, n - served);
    return 0;
}

static int halfclose(const struct target *t, int n, int bytes)
{
    int exact = 0, mismatched = 0;
    unsigned char *out = malloc((size_t)bytes), *in = malloc((size_t)bytes + 1);
    for (int base = 0; base < n; base += 50) {
        int batch = n - base < 50 ? n - base : 50, fds[50];
        for (int i = 0; i < batch; i++) {
            if ((fds[i] = open_conn(t)) < 0)
                die("halfclose: connect: %s", strerror(errno));
        }
        for (int i = 0; i < batch; i++) {
            for (int k = 0; k < bytes; k++)
                out[k] = (unsigned char)((base + i) * 31 + k * 7);
            /* Writing all before reading needs the server to echo as it reads: a reader thread is not needed as long
               as BYTES fits the two sides' buffers and pipes (256 KiB does). */
            int sent = 0;
            while (sent < bytes) {
                ssize_t w = send(fds[i], out + sent, (size_t)(bytes - sent), MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                sent += (int)w;
            }
            shutdown(fds[i], SHUT_WR);
            int got = 0;
            for (;;) {
                ssize_t r = recv(fds[i], in + got, (size_t)(bytes + 1 - got), 0);
                if (r <= 0)
                    break;
                got += (int)r;
                if (got > bytes)
                    break;
            }
            if (sent == bytes && got == bytes && memcmp(in, out, (size_t)bytes) == 0)
                exact++;
            else
                mismatched++;
            close(fds[i]);
        }
    }
    printf("exact=%d mismatched=%d\n", exact, mismatched);
    return 0;
}

static int pingpong(const struct target *t, int n, int size, double seconds)
{
    int *fds = calloc((size_t)n, sizeof *fds), *done = calloc((size_t)n, sizeof *done);
    unsigned char *out = malloc((size_t)size), *in = malloc((size_t)size);
    long rounds = 0, mismatched = 0;
    int fin = 0, reset = 0;
    for (int i = 0; i < n; i++)
        if ((fds[i] = open_conn(t)) < 0)
            die("pingpong: connect: %s", strerror(errno));
    printf("connected=%d\n", n);
    fflush(stdout);
    double end = now_sec() + seconds;
    int left = n;
    while (left > 0 && now_sec() < end) {
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            for (int k = 0; k < size; k++)
                out[k] = (unsigned char)(rounds * 13 + k + i);
            if (send(fds[i], out, (size_t)size, MSG_NOSIGNAL) != size) {
                done[i] = 1, left--, reset++;
                continue;
            }
            int got = 0;
            while (got < size) {
                ssize_t r = recv(fds[i], in + got, (size_t)(size - got), 0);
                if (r <= 0) {
                    if (r == 0)
                        fin++;
                    else
                        reset++;
                    done[i] = 1, left--;
                    break;
                }
                got += (int)r;
            }
            /* What came back must be what was sent, however little of it. */
            if (memcmp(in, out, (size_t)got) != 0)
                mismatched++;
            if (!done[i])
                rounds++;
        }
    }
    printf("rounds=%ld mismatched=%ld fin=%d reset=%d open=%d\n", rounds, mismatched, fin, reset, left);
    return 0;
}

int main(int argc, char **argv)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    signal(SIGPIPE, SIG_IGN);
    struct target t;
    if (argc >= 4)
        parse_target(argv[2], &t);
    if (argc == 4 && strcmp(argv[1], "churn") == 0)
        return churn(&t, atoi(argv[3]), 0);
    if (argc == 4 && strcmp(argv[1], "resets") == 0)
        return churn(&t, atoi(argv[3]), 1);
    if (argc == 6 && strcmp(argv[1], "hold") == 0)
        return hold(&t, atoi(argv[3]), atof(argv[4]), argv[5]);
    if (argc == 5 && strcmp(argv[1], "request") == 0)
        return request(&t, atoi(argv[3]), atof(argv[4]));
    if (argc == 5 && strcmp(argv[1], "halfclose") == 0)
        return halfclose(&t, atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && strcmp(argv[1], "pingpong") == 0)
        return pingpong(&t, atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: see the comment at the top of faultclient.c\n");
    return 2;
}
