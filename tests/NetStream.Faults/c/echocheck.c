/*
 * Echo clients that check every byte (a per-connection pseudo-random stream), on one epoll thread.
 *
 *   echocheck TARGET halfclose N BYTES SECONDS
 *       N clients at once send BYTES each, shutdown(SHUT_WR), and read until the server's FIN: a client is exact
 *       when it got back every byte, in order, then FIN. Prints
 *       clients=N exact=E mismatched=M short=S reset=R unfinished=U seconds=T
 *   echocheck TARGET stream N WINDOW SECONDS
 *       N clients stream without end (at most WINDOW bytes unechoed each), checking what comes back is a prefix of
 *       what they sent. SIGUSR1 (sent with the server's SIGTERM): the even-numbered clients finish (stop sending,
 *       shutdown(SHUT_WR), read to the end: they must get everything back, then FIN); the others keep streaming until
 *       the server ends them. Ends when every connection has ended, on SIGTERM or after SECONDS. Prints
 *       clients=N mismatched=M finishing=F finished_exact=X finishing_lost=L streaming_fin=A streaming_rst=B
 *       open=O last_end_ms=T bytes_echoed=E       (last_end_ms counts from SIGUSR1)
 */
#include "faults.h"

enum { CONNECTING, RUNNING, ENDED };

struct conn {
    int fd, state, wr_closed, finishing, end_rst, mismatch;
    unsigned id;
    unsigned long long sent, recvd, limit;
    double t_end;
};

static int ep, half;

static void update_events(struct conn *c)
{
    unsigned ev = EPOLLIN | EPOLLRDHUP;
    /* halfclose: `limit` bytes in all; stream: at most `limit` bytes sent and not yet echoed. */
    if (!c->wr_closed && (half ? c->sent < c->limit : c->sent - c->recvd < c->limit))
        ev |= EPOLLOUT;
    ep_mod(ep, c->fd, ev, c);
}

static void end_conn(struct conn *c, int rst)
{
    c->state = ENDED;
    c->end_rst = rst;
    c->t_end = now_sec();
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage: %s TARGET halfclose N BYTES SECONDS | TARGET stream N WINDOW SECONDS", argv[0]);
    client_setup();
    struct target t;
    parse_target(argv[1], &t);
    half = strcmp(argv[2], "halfclose") == 0;
    if (!half && strcmp(argv[2], "stream") != 0)
        die("mode must be halfclose or stream");
    int n = atoi(argv[3]);
    unsigned long long size = (unsigned long long)atoll(argv[4]);
    double seconds = atof(argv[5]);
    if (n <= 0 || size == 0 || seconds <= 0)
        die("N, BYTES/WINDOW and SECONDS must be positive");

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)n, sizeof *conns);
    int live = 0;
    for (int i = 0; i < n; i++) {
        struct conn *c = &conns[i];
        int done = 0;
        c->id = (unsigned)i + 1000;
        c->limit = size;
        c->fd = start_connect(&t, &done);
        if (c->fd < 0) {
            c->state = ENDED;
            c->end_rst = 1;
            c->t_end = now_sec();
            continue;
        }
        c->state = done ? RUNNING : CONNECTING;
        ep_add(ep, c->fd, done ? EPOLLIN | EPOLLOUT | EPOLLRDHUP : EPOLLOUT, c);
        live++;
    }

    double start = now_sec(), end = start + seconds, mark = 0;
    unsigned long long echoed = 0;
    struct epoll_event events[512];
    unsigned char buf[65536];
    while (live > 0 && !got_term && now_sec() < end) {
        if (!half && got_usr1 && mark == 0) {
            mark = now_sec();
            for (int i = 0; i < n; i += 2) {
                struct conn *c = &conns[i];
                c->finishing = 1;
                if (c->state == RUNNING && !c->wr_closed) {
                    c->wr_closed = 1;
                    shutdown(c->fd, SHUT_WR);
                    update_events(c);
                }
            }
        }
        int k = epoll_wait(ep, events, 512, 20);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            struct conn *c = events[e].data.ptr;
            unsigned ev = events[e].events;
            if (c->state == ENDED)
                continue;
            if (c->state == CONNECTING) {
                if (connect_error(c->fd)) {
                    end_conn(c, 1);
                    live--;
                    continue;
                }
                c->state = RUNNING;
                update_events(c);
                continue;
            }
            if ((ev & EPOLLOUT) && !c->wr_closed) {
                /* Send the next bytes of the stream, keeping at most `limit` unechoed (stream) or `limit` in all. */
                for (;;) {
                    unsigned long long room = half ? c->limit - c->sent : c->recvd + c->limit - c->sent;
                    if (room == 0)
                        break;
                    size_t chunk = room < sizeof buf ? (size_t)room : sizeof buf;
                    fill_pattern(c->id, c->sent, buf, chunk);
                    ssize_t w = send(c->fd, buf, chunk, MSG_NOSIGNAL);
                    if (w <= 0)
                        break;
                    c->sent += (unsigned long long)w;
                }
                if (half && c->sent == c->limit) {
                    c->wr_closed = 1;
                    shutdown(c->fd, SHUT_WR);
                }
            }
            int ended = 0;
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                    if (r < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                    if (r <= 0) {
                        end_conn(c, r < 0);
                        live--;
                        ended = 1;
                        break;
                    }
                    for (ssize_t j = 0; j < r; j++)
                        if (c->recvd + (unsigned long long)j >= c->sent || buf[j] != pattern_byte(c->id, c->recvd + (unsigned long long)j)) {
                            c->mismatch = 1;
                            break;
                        }
                    c->recvd += (unsigned long long)r;
                    echoed += (unsigned long long)r;
                }
            }
            if (!ended)
                update_events(c);
        }
    }
    double elapsed = now_sec() - start;
    int mismatched = 0, open = 0;
    for (int i = 0; i < n; i++) {
        mismatched += conns[i].mismatch;
        if (conns[i].state != ENDED) {
            open++;
            close(conns[i].fd);
        }
    }
    if (half) {
        int exact = 0, shortn = 0, reset = 0;
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[i];
            if (c->state != ENDED || c->mismatch)
                continue;
            if (c->end_rst)
                reset++;
            else if (c->recvd == c->limit && c->sent == c->limit)
                exact++;
            else
                shortn++;
        }
        printf("clients=%d exact=%d mismatched=%d short=%d reset=%d unfinished=%d seconds=%.3f\n", n, exact, mismatched,
               shortn, reset, open, elapsed);
        return 0;
    }
    int finishing = 0, exact = 0, lost = 0, s_fin = 0, s_rst = 0;
    double last = 0;
    for (int i = 0; i < n; i++) {
        struct conn *c = &conns[i];
        if (c->state == ENDED && mark > 0 && c->t_end - mark > last)
            last = c->t_end - mark;
        if (c->finishing) {
            finishing++;
            if (c->state == ENDED && !c->end_rst && !c->mismatch && c->recvd == c->sent)
                exact++;
            else
                lost++;
        } else if (c->state == ENDED) {
            if (c->end_rst)
                s_rst++;
            else
                s_fin++;
        }
    }
    printf("clients=%d mismatched=%d finishing=%d finished_exact=%d finishing_lost=%d streaming_fin=%d streaming_rst=%d "
           "open=%d last_end_ms=%.0f bytes_echoed=%llu\n",
           n, mismatched, finishing, exact, lost, s_fin, s_rst, open, last * 1000, echoed);
    return 0;
}
