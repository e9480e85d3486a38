/* holder.c - the fd holder: a small process that keeps programs' pipes open across procbusd's
 * death. */
#define _GNU_SOURCE
#include "holder.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "procbus_abi.h"

#define HOLD_MAGIC     0x48464250u /* "PBFH" */
#define HOLD_MAX_CONNS 8
#define HOLD_TICK_MS   1000

enum hold_kind { HOLD_PUT = 1, HOLD_DROP, HOLD_TAKE, HOLD_ENTRY, HOLD_END, HOLD_QUIT };

struct hold_msg {
    uint32_t magic;
    uint16_t kind;
    uint16_t reserved;
    struct pbd_hold_entry e;
};

/* ---- messages with descriptors ---- */

static int send_msg(int fd, uint16_t kind, const struct pbd_hold_entry *e,
                    const int fds[PBD_HOLD_NFDS], int flags)
{
    struct hold_msg m;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    union {
        char buf[CMSG_SPACE(PBD_HOLD_NFDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int n = 0, i, list[PBD_HOLD_NFDS];

    memset(&m, 0, sizeof(m));
    m.magic = HOLD_MAGIC;
    m.kind = kind;
    if (e != NULL)
        m.e = *e;
    m.e.fds = 0;
    for (i = 0; fds != NULL && i < PBD_HOLD_NFDS; i++)
        if (fds[i] >= 0) {
            m.e.fds |= 1u << i;
            list[n++] = fds[i];
        }
    if (n > 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
        memcpy(CMSG_DATA(c), list, (size_t)n * sizeof(int));
    }
    for (;;) {
        ssize_t w = sendmsg(fd, &mh, flags | MSG_NOSIGNAL);
        if (w == (ssize_t)sizeof(m))
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return w < 0 ? -errno : -EIO;
    }
}

/* One message; its descriptors into fds[0..PBD_HOLD_NFDS-1] by e.fds (the others -1). 1, 0 (end of
 * file) or a negative errno. Descriptors of a malformed message are closed. */
static int recv_msg(int fd, struct hold_msg *m, int fds[PBD_HOLD_NFDS])
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(PBD_HOLD_NFDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c;
    int got[PBD_HOLD_NFDS], ngot = 0, i, k = 0;
    ssize_t n;

    for (i = 0; i < PBD_HOLD_NFDS; i++)
        fds[i] = -1;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -errno;
    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t j = 0; j < cnt; j++) {
                int x;
                memcpy(&x, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                if (ngot < PBD_HOLD_NFDS)
                    got[ngot++] = x;
                else
                    close(x);
            }
        }
    if (n != (ssize_t)sizeof(*m) || m->magic != HOLD_MAGIC || (mh.msg_flags & MSG_CTRUNC)) {
        for (i = 0; i < ngot; i++)
            close(got[i]);
        return -EPROTO;
    }
    m->e.name[sizeof(m->e.name) - 1] = '\0';
    m->e.out_path[sizeof(m->e.out_path) - 1] = '\0';
    m->e.err_path[sizeof(m->e.err_path) - 1] = '\0';
    for (i = 0; i < PBD_HOLD_NFDS; i++)
        if ((m->e.fds & (1u << i)) && k < ngot)
            fds[i] = got[k++];
    for (; k < ngot; k++)
        close(got[k]);
    return 1;
}

/* The peer on `fd` runs as root or as we do. */
static int peer_trusted(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return 0;
    return cr.uid == geteuid() || cr.uid == 0;
}

static pid_t peer_pid(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? cr.pid : 0;
}

/* ---- the holder process ---- */

struct held {
    struct pbd_hold_entry e;
    int fds[PBD_HOLD_NFDS];
};

struct holder_state {
    struct held *v;
    size_t n, cap;
    const char *seg_path;
    char sock_path[108]; /* its own socket's name: removed when it exits */
};

/* The holder leaves: its socket's name goes (nobody else binds it while the holder answers). */
static void leave(struct holder_state *s, int code) __attribute__((noreturn));
static void leave(struct holder_state *s, int code)
{
    if (s->sock_path[0] != '\0')
        unlink(s->sock_path);
    exit(code);
}

static void close_all(int fds[PBD_HOLD_NFDS])
{
    for (int i = 0; i < PBD_HOLD_NFDS; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

static struct held *find(struct holder_state *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].e.name, name) == 0)
            return &s->v[i];
    return NULL;
}

static void put(struct holder_state *s, const struct pbd_hold_entry *e, int fds[PBD_HOLD_NFDS])
{
    struct held *h = find(s, e->name);

    if (h == NULL) {
        if (s->n == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 64;
            struct held *nv = realloc(s->v, ncap * sizeof(*nv));
            if (nv == NULL) {
                close_all(fds);
                return;
            }
            s->v = nv;
            s->cap = ncap;
        }
        h = &s->v[s->n++];
    } else {
        close_all(h->fds);
    }
    h->e = *e;
    memcpy(h->fds, fds, sizeof(h->fds));
}

static void drop(struct holder_state *s, const char *name)
{
    struct held *h = find(s, name);

    if (h == NULL)
        return;
    close_all(h->fds);
    *h = s->v[--s->n];
}

/* Worth staying for, with no procbusd connected: the segment is still there and not shut down
 * cleanly, and some pipe has a writer or unread bytes. */
static int worth_staying(const struct holder_state *s)
{
    uint64_t hb = 0;
    size_t i;
    int fd = open(s->seg_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), live = 0;

    if (fd < 0)
        return errno != ENOENT;
    if (pread(fd, &hb, sizeof(hb), offsetof(struct procbus_header, heartbeat_ns)) ==
            (ssize_t)sizeof(hb) &&
        hb == PROCBUS_HB_SHUTDOWN) {
        close(fd);
        return 0;
    }
    close(fd);
    for (i = 0; i < s->n && !live; i++)
        for (int k = 0; k < 3 && !live; k++) { /* the output pipes (a stdin says nothing) */
            struct pollfd p = {.fd = s->v[i].fds[k], .events = POLLIN};
            int avail = 0;
            if (p.fd < 0)
                continue;
            live = poll(&p, 1, 0) == 0 || !(p.revents & POLLHUP) ||
                   (ioctl(p.fd, FIONREAD, &avail) == 0 && avail > 0);
        }
    return live;
}

static int serve(struct holder_state *s, int fd)
{
    struct hold_msg m;
    int fds[PBD_HOLD_NFDS], rc = recv_msg(fd, &m, fds);
    size_t i;

    if (rc <= 0)
        return rc == -EPROTO ? 0 : -1; /* a malformed message is dropped; end of file closes */
    switch (m.kind) {
    case HOLD_PUT:
        put(s, &m.e, fds);
        return 0;
    case HOLD_DROP:
        close_all(fds);
        drop(s, m.e.name);
        return 0;
    case HOLD_TAKE:
        close_all(fds);
        for (i = 0; i < s->n; i++)
            if (send_msg(fd, HOLD_ENTRY, &s->v[i].e, s->v[i].fds, 0) < 0)
                return -1;
        return send_msg(fd, HOLD_END, NULL, NULL, 0) < 0 ? -1 : 0;
    case HOLD_QUIT:
        close_all(fds);
        for (i = 0; i < s->n; i++)
            close_all(s->v[i].fds);
        leave(s, 0);
    default:
        close_all(fds);
        return 0;
    }
}

int pbd_holder_main(int listen_fd, const char *seg_path)
{
    struct holder_state s = {.seg_path = seg_path};
    struct pollfd p[1 + HOLD_MAX_CONNS];
    int conns[HOLD_MAX_CONNS], nconn = 0, i;
    struct timespec last, now;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    prctl(PR_SET_NAME, "procbusd-holder");
    fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
    /* listen again: a connection's SO_PEERCRED names whoever called listen(2) last, which was
     * the procbusd that made the socket; from now on it is this process (procbusd keeps the
     * holder's pid out of /proc polling's attribution) */
    listen(listen_fd, HOLD_MAX_CONNS);
    {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        if (getsockname(listen_fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_path[0] == '/')
            memcpy(s.sock_path, sa.sun_path, sizeof(s.sock_path) - 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &last);
    for (;;) {
        int n;
        p[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        for (i = 0; i < nconn; i++)
            p[1 + i] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        n = poll(p, (nfds_t)(1 + nconn), HOLD_TICK_MS);
        if (n < 0 && errno != EINTR)
            leave(&s, 1);
        for (i = nconn - 1; n > 0 && i >= 0; i--)
            if (p[1 + i].revents != 0 && serve(&s, conns[i]) < 0) {
                close(conns[i]);
                conns[i] = conns[--nconn];
            }
        if (n > 0 && (p[0].revents & POLLIN)) {
            int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0 && (nconn == HOLD_MAX_CONNS || !peer_trusted(c)))
                close(c);
            else if (c >= 0)
                conns[nconn++] = c;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - last.tv_sec >= 1) {
            last = now;
            if (nconn == 0 && !worth_staying(&s))
                leave(&s, 0);
        }
    }
}

/* ---- procbusd's side ---- */

/* ".NAME.fdhold" beside the segment file. */
static int holder_path(const char *seg_path, char *out, size_t len)
{
    const char *slash = strrchr(seg_path, '/');
    int n;

    if (slash == NULL)
        return -EINVAL;
    n = snprintf(out, len, "%.*s/.%s.fdhold", (int)(slash - seg_path), seg_path, slash + 1);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Bind a fresh listening socket at `path` and exec a holder on it (its pid into *pid); 0 or a
 * negative errno. */
static int spawn_holder(const char *path, const char *seg_path, pid_t *out, char *why,
                        size_t whylen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    pid_t pid;
    int lfd;

    if (lstat(path, &st) == 0) { /* a holder that died: its socket file is ours to remove */
        if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
            snprintf(why, whylen, "%s is not a socket of this user: left alone", path);
            return -EPERM;
        }
        unlink(path);
    }
    lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -errno;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
        listen(lfd, HOLD_MAX_CONNS) < 0) {
        int rc = -errno;
        snprintf(why, whylen, "%s: %s", path, strerror(-rc));
        close(lfd);
        return rc;
    }
    pid = fork();
    if (pid < 0) {
        int rc = -errno;
        snprintf(why, whylen, "fork: %s", strerror(-rc));
        close(lfd);
        return rc;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        sigset_t none;
        setsid(); /* not in procbusd's group: a Ctrl-C or a group signal spares it */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (lfd != 3)
            dup2(lfd, 3);
        fcntl(3, F_SETFD, 0);
        execl("/proc/self/exe", "procbusd", "--fd-holder", "3", seg_path, (char *)NULL);
        _exit(127);
    }
    close(lfd); /* connections queue in its backlog until the holder accepts them */
    *out = pid;
    return 0;
}

int pbd_holder_connect(struct pbd_holder *h, const char *seg_path, char *why, size_t whylen)
{
    int rc, existing = 1;
    pid_t spawned = 0;

    h->fd = -1;
    h->pid = 0;
    rc = holder_path(seg_path, h->path, sizeof(h->path));
    if (rc < 0) {
        snprintf(why, whylen, "the holder's socket path beside %s is too long", seg_path);
        return rc;
    }
    rc = connect_to(h->path);
    if (rc == -ECONNREFUSED || rc == -ENOENT) {
        existing = 0;
        rc = spawn_holder(h->path, seg_path, &spawned, why, whylen);
        if (rc == 0)
            rc = connect_to(h->path);
    }
    if (rc < 0) {
        if (why[0] == '\0')
            snprintf(why, whylen, "%s: %s", h->path, strerror(-rc));
        return rc;
    }
    if (!peer_trusted(rc)) {
        close(rc);
        snprintf(why, whylen, "%s answers as another user: not used", h->path);
        return -EPERM;
    }
    h->fd = rc;
    /* (the one we forked; else the peer: a holder listens again as it starts) */
    h->pid = spawned > 0 ? spawned : peer_pid(rc);
    return existing;
}

int pbd_holder_take(struct pbd_holder *h,
                    void (*cb)(void *arg, const struct pbd_hold_entry *e, int fds[PBD_HOLD_NFDS]),
                    void *arg)
{
    int n = 0, rc;

    if (h->fd < 0)
        return -ENOTCONN;
    rc = send_msg(h->fd, HOLD_TAKE, NULL, NULL, 0);
    if (rc < 0)
        return rc;
    for (;;) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        struct hold_msg m;
        int fds[PBD_HOLD_NFDS];
        if (poll(&p, 1, 1000) <= 0)
            return -ETIMEDOUT;
        rc = recv_msg(h->fd, &m, fds);
        if (rc <= 0)
            return rc == 0 ? -ECONNRESET : rc;
        if (m.kind == HOLD_END)
            return n;
        if (m.kind != HOLD_ENTRY) {
            close_all(fds);
            continue;
        }
        cb(arg, &m.e, fds);
        n++;
    }
}

int pbd_holder_put(struct pbd_holder *h, const struct pbd_hold_entry *e,
                   const int fds[PBD_HOLD_NFDS])
{
    if (h->fd < 0)
        return -ENOTCONN;
    return send_msg(h->fd, HOLD_PUT, e, fds, MSG_DONTWAIT);
}

void pbd_holder_drop(struct pbd_holder *h, const char *name)
{
    struct pbd_hold_entry e;

    if (h->fd < 0)
        return;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "%s", name);
    send_msg(h->fd, HOLD_DROP, &e, NULL, MSG_DONTWAIT);
}

void pbd_holder_quit(struct pbd_holder *h)
{
    if (h->fd >= 0)
        send_msg(h->fd, HOLD_QUIT, NULL, NULL, 0);
    pbd_holder_close(h);
}

void pbd_holder_close(struct pbd_holder *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}
