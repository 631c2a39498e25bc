/*
 * Many misbehaving peers on one epoll thread (non-blocking sockets, at most 256 connects in flight).
 *
 *   peers TARGET N SECONDS MODE [request]
 *
 * MODE   idle       connect and never send (an idle client, a silent peer)
 *        stall      send one byte once connected, then nothing
 *        slow:K     send one byte every K seconds (slowloris); what the server sends back is read and dropped
 *        flood:http write pipelined "GET /" requests as fast as the server takes them, never read
 *        flood:echo write pattern bytes as fast as the server takes them, never read
 *
 * Once every connect has succeeded or failed (10 s at most each) it prints
 *     connected=C connect_failed=F connect_s=S
 * then holds the peers until SIGTERM or SECONDS, and prints
 *     open=O closed_fin=A closed_rst=B max_close_s=X min_close_s=Y bytes_sent=Z
 * where a close is the server's (FIN or RST) and its time counts from the peer's last byte sent (or its connect);
 * flood modes add never_full=K (peers the server never stopped taking bytes from) and max_close_after_full_s=T
 * (from the first time a peer's socket was full to the server's close).
 * With "request", SIGUSR1 sends one HTTP/1.1 GET on every open connection; when all are answered (or after 15 s)
 * the final line also has served=S failed=F request_s=T and the program ends.
 */
#include "faults.h"

enum { CONNECTING, OPEN, CLOSED, FAILED };

struct peer {
    int fd, state, awaiting;
    double t_start, t_last, t_close, t_full;
    unsigned long long sent;
    char *in;
    size_t in_len;
};

enum { IDLE, STALL, SLOW, FLOOD_HTTP, FLOOD_ECHO };

static int mode;
static double slow_every;
static unsigned long long total_sent;
static int ep;

static void peer_closed(struct peer *p, int rst, int *fin_n, int *rst_n)
{
    p->state = CLOSED;
    p->t_close = now_sec();
    if (rst)
        (*rst_n)++;
    else
        (*fin_n)++;
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
}

static void send_byte(struct peer *p)
{
    unsigned char b = 'x';
    if (send(p->fd, &b, 1, MSG_NOSIGNAL) == 1) {
        p->sent++;
        total_sent++;
        p->t_last = now_sec();
    }
}

/* flood: write until the kernel takes no more. */
static void flood(struct peer *p)
{
    static unsigned char buf[65536];
    static size_t http_len;
    if (mode == FLOOD_HTTP && http_len == 0) {
        size_t one = sizeof http_request - 1;
        for (http_len = 0; http_len + one <= sizeof buf; http_len += one)
            memcpy(buf + http_len, http_request, one);
    } else if (mode == FLOOD_ECHO && http_len == 0) {
        fill_pattern(7, 0, buf, sizeof buf);
        http_len = sizeof buf;
    }
    for (int i = 0; i < 64; i++) {
        size_t off = mode == FLOOD_HTTP ? 0 : (size_t)(p->sent % 4096);
        ssize_t w = send(p->fd, buf + off, http_len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && p->t_full == 0)
                p->t_full = now_sec(); /* the first time the server took no more */
            return;
        }
        p->sent += (unsigned long long)w;
        total_sent += (unsigned long long)w;
        p->t_last = now_sec();
    }
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6)
        die("usage: %s TARGET N SECONDS idle|stall|slow:K|flood:http|flood:echo [request]", argv[0]);
    client_setup();
    struct target t;
    parse_target(argv[1], &t);
    int n = atoi(argv[2]);
    double seconds = atof(argv[3]);
    const char *m = argv[4];
    int request = argc == 6 && strcmp(argv[5], "request") == 0;
    if (strcmp(m, "idle") == 0)
        mode = IDLE;
    else if (strcmp(m, "stall") == 0)
        mode = STALL;
    else if (strncmp(m, "slow:", 5) == 0 && (slow_every = atof(m + 5)) > 0)
        mode = SLOW;
    else if (strcmp(m, "flood:http") == 0)
        mode = FLOOD_HTTP;
    else if (strcmp(m, "flood:echo") == 0)
        mode = FLOOD_ECHO;
    else
        die("unknown mode %s", m);
    if (n <= 0 || seconds <= 0)
        die("N and SECONDS must be positive");

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct peer *peers = calloc((size_t)n, sizeof *peers);
    if (ep < 0 || !peers)
        die("setup: %s", strerror(errno));
    double start = now_sec(), end = start + seconds;
    int next = 0, inflight = 0, connected = 0, failed = 0, fin_n = 0, rst_n = 0, announced = 0;
    int served = 0, req_failed = 0, req_left = 0, requesting = 0;
    double req_start = 0, next_slow = 0;
    unsigned open_events = mode >= FLOOD_HTTP ? EPOLLOUT | EPOLLRDHUP : EPOLLIN | EPOLLRDHUP;
    struct epoll_event events[512];

    while (!got_term && now_sec() < end) {
        double now = now_sec();
        /* Start connects, at most 256 in flight. */
        while (next < n && inflight < 256) {
            struct peer *p = &peers[next++];
            int done = 0;
            p->t_start = p->t_last = now;
            p->fd = start_connect(&t, &done);
            if (p->fd < 0) {
                p->state = FAILED;
                failed++;
                continue;
            }
            if (done) {
                p->state = OPEN;
                connected++;
                ep_add(ep, p->fd, open_events, p);
                if (mode == STALL || mode == SLOW)
                    send_byte(p);
            } else {
                p->state = CONNECTING;
                inflight++;
                ep_add(ep, p->fd, EPOLLOUT, p);
            }
        }
        /* Connects that take more than 10 s fail. */
        if (inflight > 0)
            for (int i = 0; i < next; i++)
                if (peers[i].state == CONNECTING && now - peers[i].t_start > 10) {
                    peers[i].state = FAILED;
                    failed++;
                    inflight--;
                    close(peers[i].fd);
                }
        if (!announced && next == n && inflight == 0) {
            announced = 1;
            printf("connected=%d connect_failed=%d connect_s=%.3f\n", connected, failed, now - start);
            fflush(stdout);
            next_slow = now + slow_every;
        }
        if (mode == SLOW && announced && now >= next_slow) {
            next_slow += slow_every;
            for (int i = 0; i < n; i++)
                if (peers[i].state == OPEN)
                    send_byte(&peers[i]);
        }
        if (request && got_usr1 && !requesting && announced) {
            requesting = 1;
            req_start = now;
            for (int i = 0; i < n; i++) {
                struct peer *p = &peers[i];
                if (p->state != OPEN) {
                    req_failed++;
                    continue;
                }
                p->in = malloc(1024);
                p->in_len = 0;
                if (send(p->fd, http_request, sizeof http_request - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof http_request - 1)) {
                    req_failed++;
                    continue;
                }
                p->awaiting = 1;
                req_left++;
            }
        }
        if (requesting && (req_left == 0 || now - req_start > 15))
            break;
        /* Every peer closed by the server: nothing left to hold. */
        if (announced && !requesting && connected > 0 && connected - fin_n - rst_n == 0)
            break;

        int k = epoll_wait(ep, events, 512, 50);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            struct peer *p = events[e].data.ptr;
            unsigned ev = events[e].events;
            if (p->state == CONNECTING) {
                inflight--;
                int err = connect_error(p->fd);
                if (err) {
                    p->state = FAILED;
                    failed++;
                    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
                    close(p->fd);
                    continue;
                }
                p->state = OPEN;
                p->t_last = now_sec();
                connected++;
                ep_mod(ep, p->fd, open_events, p);
                if (mode == STALL || mode == SLOW)
                    send_byte(p);
                continue;
            }
            if (p->state != OPEN)
                continue;
            if (mode >= FLOOD_HTTP) {
                if (ev & (EPOLLERR | EPOLLHUP)) {
                    peer_closed(p, 1, &fin_n, &rst_n);
                } else if (ev & EPOLLRDHUP) {
                    peer_closed(p, 0, &fin_n, &rst_n);
                } else if (ev & EPOLLOUT) {
                    flood(p);
                }
                continue;
            }
            /* Read and drop (or collect the response we asked for); the end of the stream is the server's close. */
            for (;;) {
                char buf[16384];
                ssize_t r = recv(p->fd, buf, sizeof buf, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    if (p->awaiting) {
                        p->awaiting = 0;
                        req_left--;
                        req_failed++;
                    }
                    peer_closed(p, r < 0, &fin_n, &rst_n);
                    break;
                }
                if (r < 0)
                    break;
                if (p->awaiting) {
                    size_t take = (size_t)r < 1023 - p->in_len ? (size_t)r : 1023 - p->in_len;
                    memcpy(p->in + p->in_len, buf, take);
                    p->in_len += take;
                    long len = http_response_len(p->in, p->in_len);
                    if (len != 0 || p->in_len >= 1023) {
                        p->awaiting = 0;
                        req_left--;
                        if (len > 0)
                            served++;
                        else
                            req_failed++;
                    }
                }
            }
        }
    }
    if (!announced) {
        printf("connected=%d connect_failed=%d connect_s=%.3f\n", connected, failed + (n - next) + inflight, now_sec() - start);
        fflush(stdout);
    }
    int open = 0;
    double max_close = 0, min_close = 0, max_full = 0;
    int never_full = 0;
    for (int i = 0; i < n; i++) {
        struct peer *p = &peers[i];
        if (mode >= FLOOD_HTTP && (p->state == OPEN || p->state == CLOSED)) {
            if (p->t_full == 0)
                never_full++;
            else if (p->state == CLOSED && p->t_close - p->t_full > max_full)
                max_full = p->t_close - p->t_full;
        }
        if (p->state == CLOSED) {
            double d = p->t_close - p->t_last;
            if (d > max_close)
                max_close = d;
            if (min_close == 0 || d < min_close)
                min_close = d;
        } else if (p->state == OPEN) {
            open++;
        }
        if (p->awaiting)
            req_failed++;
    }
    printf("open=%d closed_fin=%d closed_rst=%d max_close_s=%.3f min_close_s=%.3f bytes_sent=%llu",
           open, fin_n, rst_n, max_close, min_close, total_sent);
    if (mode >= FLOOD_HTTP)
        printf(" never_full=%d max_close_after_full_s=%.3f", never_full, max_full);
    if (request)
        printf(" served=%d failed=%d request_s=%.3f", served, req_failed, requesting ? now_sec() - req_start : 0.0);
    printf("\n");
    fflush(stdout);
    for (int i = 0; i < n; i++)
        if (peers[i].state == OPEN || peers[i].state == CONNECTING)
            close(peers[i].fd);
    return 0;
}
