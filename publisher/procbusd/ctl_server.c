/* ctl_server.c - procbusd's end of the control socket: listen, accept (peer check), read, reply. */
#define _GNU_SOURCE
#include "ctl_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int pbd_ctl_listen(struct pbd_ctl *c, const char *path)
{
    struct sockaddr_un sa;
    char dir[108], *slash;
    int fd, rc, i;

    memset(c, 0, sizeof(*c));
    c->listen_fd = -1;
    for (i = 0; i < PBD_CTL_MAX_CONN; i++)
        c->conns[i].fd = -1;
    if (path == NULL)
        pbd_ctl_default_path(c->path, sizeof(c->path));
    else if (snprintf(c->path, sizeof(c->path), "%s", path) >= (int)sizeof(c->path))
        return -ENAMETOOLONG;
    rc = pbd_ctl_fill_addr(&sa, c->path);
    if (rc < 0)
        return rc;
    snprintf(dir, sizeof(dir), "%s", c->path);
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int probe, live;
        if (errno != EADDRINUSE)
            goto fail;
        /* a stale socket file, or a live daemon? */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            close(fd);
            return -EADDRINUSE;
        }
        unlink(c->path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            goto fail;
    }
    if (chmod(c->path, 0600) < 0 || listen(fd, 16) < 0)
        goto fail;
    c->listen_fd = fd;
    return 0;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

int pbd_ctl_adopt(struct pbd_ctl *c, int listen_fd, const char *path)
{
    int i;

    memset(c, 0, sizeof(*c));
    c->listen_fd = -1;
    for (i = 0; i < PBD_CTL_MAX_CONN; i++)
        c->conns[i].fd = -1;
    if (snprintf(c->path, sizeof(c->path), "%s", path) >= (int)sizeof(c->path))
        return -ENAMETOOLONG;
    fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    c->listen_fd = listen_fd;
    return 0;
}

int pbd_ctl_keep_path(struct pbd_ctl *c)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    if (c->listen_fd < 0 || lstat(c->path, &st) == 0 || errno != ENOENT)
        return 0;
    rc = pbd_ctl_fill_addr(&sa, c->path);
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(c->path, 0600) < 0 ||
        listen(fd, 16) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

void pbd_ctl_close(struct pbd_ctl *c)
{
    int i;

    for (i = 0; i < PBD_CTL_MAX_CONN; i++)
        if (c->conns[i].fd >= 0)
            pbd_ctl_finish(c, i);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        unlink(c->path);
        c->listen_fd = -1;
    }
}

static void say(int fd, const char *msg)
{
    if (write(fd, msg, strlen(msg)) < 0) {
        /* the peer left: nothing to do */
    }
}

int pbd_ctl_accept(struct pbd_ctl *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i;

    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        say(fd, "ERR permission denied: only root and the daemon's user may control it\n");
        close(fd);
        return -EPERM;
    }
    /* replies are small; a peer that does not read cannot stall us for long */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* the last slot only for root */
    for (i = 0; i < PBD_CTL_MAX_CONN - (cred.uid != 0); i++) {
        if (c->conns[i].fd < 0) {
            c->conns[i].fd = fd;
            c->conns[i].len = 0;
            c->conns[i].deadline =
                pb_now_ns(CLOCK_MONOTONIC) + (uint64_t)PBD_CTL_REQUEST_MS * 1000000u;
            return i;
        }
    }
    say(fd, "ERR busy: too many control connections\n");
    close(fd);
    return -EBUSY;
}

int pbd_ctl_read(struct pbd_ctl *c, int slot, char **argv, int maxargs, int *argc)
{
    struct pbd_ctl_conn *cc = &c->conns[slot];
    char *nl, *save = NULL, *w;
    ssize_t n;

    for (;;) {
        if (cc->len >= sizeof(cc->buf) - 1)
            return -EMSGSIZE;
        n = read(cc->fd, cc->buf + cc->len, sizeof(cc->buf) - 1 - cc->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return n == 0 ? -ECONNRESET : -errno;
        cc->len += (size_t)n;
    }
    cc->buf[cc->len] = '\0';
    nl = strchr(cc->buf, '\n');
    if (nl == NULL)
        return 0;
    *nl = '\0';
    *argc = 0;
    for (w = strtok_r(cc->buf, " \t\r", &save); w != NULL && *argc < maxargs - 1;
         w = strtok_r(NULL, " \t\r", &save))
        argv[(*argc)++] = w;
    argv[*argc] = NULL;
    return 1;
}

void pbd_ctl_reply(struct pbd_ctl *c, int slot, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (c->conns[slot].fd >= 0)
        say(c->conns[slot].fd, buf);
}

void pbd_ctl_finish(struct pbd_ctl *c, int slot)
{
    if (c->conns[slot].fd >= 0)
        close(c->conns[slot].fd);
    c->conns[slot].fd = -1;
    c->conns[slot].len = 0;
}

uint64_t pbd_ctl_next_deadline(const struct pbd_ctl *c)
{
    uint64_t next = UINT64_MAX;

    for (int i = 0; i < PBD_CTL_MAX_CONN; i++)
        if (c->conns[i].fd >= 0 && c->conns[i].deadline < next)
            next = c->conns[i].deadline;
    return next;
}

int pbd_ctl_expired(const struct pbd_ctl *c, int slot, uint64_t now)
{
    for (int i = slot < 0 ? 0 : slot; i < PBD_CTL_MAX_CONN; i++)
        if (c->conns[i].fd >= 0 && c->conns[i].deadline <= now)
            return i;
    return -1;
}
