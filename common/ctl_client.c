/* ctl_client.c - the control socket's client side and the rules both sides share. */
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

void pbd_ctl_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, len, "%s/procbus.sock", xdg);
    else
        snprintf(buf, len, "/run/procbus/procbus.sock");
}

int pbd_ctl_fill_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int pbd_ctl_request(const char *path, int argc, char **argv, void *out, void *err)
{
    return pbd_ctl_request_timeout(path, argc, argv, out, err, -1);
}

/* Milliseconds left until `deadline` (CLOCK_MONOTONIC ns; 0: none, then -1 for poll). */
static int left_ms(uint64_t deadline)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);

    if (deadline == 0)
        return -1;
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Wait for `events` on fd until the deadline: 1 ready, 0 timed out, or a negative errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int ms = left_ms(deadline), n;
        if (ms == 0)
            return 0;
        n = poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n > 0;
    }
}

/* connect(2) on the non-blocking fd: a full backlog (EAGAIN) is retried until the deadline. */
static int connect_until(int fd, const struct sockaddr_un *sa, uint64_t deadline)
{
    for (;;) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            int rc = wait_fd(fd, POLLOUT, deadline), soerr = 0;
            socklen_t len = sizeof(soerr);
            if (rc <= 0)
                return rc == 0 ? -ETIMEDOUT : rc;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            return -soerr;
        }
        if (errno != EAGAIN)
            return -errno;
        if (left_ms(deadline) == 0)
            return -ETIMEDOUT;
        usleep(10000); /* the daemon's listen backlog is full: it is busy or stopped */
    }
}

/* Send the request; 0, or a negative errno (-EPIPE when the daemon closed first: its reason
 * may still be waiting to be read). Never raises SIGPIPE (MSG_NOSIGNAL). */
static int send_until(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc <= 0)
                return rc == 0 ? -ETIMEDOUT : rc;
            continue;
        }
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int pbd_ctl_request_timeout(const char *path, int argc, char **argv, void *out, void *err,
                            int timeout_ms)
{
    struct sockaddr_un sa;
    char def[108], buf[8192], line[PBD_CTL_LINE_MAX];
    size_t used = 0, len = 0;
    uint64_t deadline = 0;
    int fd, rc, i, sent, got_final = 0;
    ssize_t n;

    if (timeout_ms >= 0)
        deadline = pb_now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
    if (path == NULL) {
        pbd_ctl_default_path(def, sizeof(def));
        path = def;
    }
    rc = pbd_ctl_fill_addr(&sa, path);
    if (rc < 0)
        return rc;
    for (i = 0; i < argc; i++) {
        int w = snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", argv[i]);
        if (w < 0 || (size_t)w >= sizeof(line) - len - 1)
            return -EMSGSIZE;
        len += (size_t)w;
    }
    line[len++] = '\n';
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    rc = connect_until(fd, &sa, deadline);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    sent = send_until(fd, line, len, deadline);
    if (sent == -ETIMEDOUT) {
        close(fd);
        return sent;
    }
    /* even when sending failed (the daemon refused and closed), its reason may be there */
    rc = -EPROTO;
    for (;;) {
        char *nl;
        n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int w = wait_fd(fd, POLLIN, deadline);
            if (w < 0 || w == 0) {
                if (!got_final)
                    rc = w == 0 ? -ETIMEDOUT : w;
                break;
            }
            continue;
        }
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            if (strcmp(buf, "OK") == 0) {
                rc = 0;
                got_final = 1;
            } else if (strcmp(buf, "ERR") == 0 || strncmp(buf, "ERR ", 4) == 0) {
                /* (a detail line may start with "ERROR: ", as supervisorctl's do) */
                fprintf((FILE *)err, "%s\n", buf[3] == ' ' ? buf + 4 : buf + 3);
                rc = 1;
                got_final = 1;
            } else {
                fprintf((FILE *)out, "%s\n", buf);
            }
            used -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used + 1);
        }
        if (used == sizeof(buf) - 1)
            used = 0; /* an absurdly long line: drop it */
    }
    close(fd);
    if (!got_final && sent < 0)
        return sent; /* no answer at all: why the request could not be sent */
    return rc;
}
