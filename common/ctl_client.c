/* ctl_client.c - the control socket's client side and the rules both sides share. */
#define _GNU_SOURCE
#include "ctl.h"

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
    struct sockaddr_un sa;
    char def[108], buf[8192], line[PBD_CTL_LINE_MAX];
    size_t used = 0, len = 0;
    int fd, rc, i;
    ssize_t n;

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
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, line, len) != (ssize_t)len) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = -EPROTO;
    for (;;) {
        char *nl;
        n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            if (strcmp(buf, "OK") == 0) {
                rc = 0;
            } else if (strncmp(buf, "ERR", 3) == 0) {
                fprintf((FILE *)err, "%s\n", buf[3] == ' ' ? buf + 4 : buf + 3);
                rc = 1;
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
    return rc;
}
