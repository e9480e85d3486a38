/* The claim of a segment name that outlives its file: an abstract unix socket (claim.h). */
#define _GNU_SOURCE
#include "claim.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "procbus.h"

#define CLAIM_PREFIX "procbusd:"

/* `path` made absolute with its folder's real path (the file itself may not exist yet, and is
 * not followed: procbus_pub_open refuses symlinks); the path as it is when that fails. */
static void full_path(const char *path, char *out, size_t cap)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;
    size_t dn = slash != NULL ? (size_t)(slash - path) : 0;

    if (slash == path) {
        snprintf(out, cap, "%s", path);
        return;
    }
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (dn < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)dn, path);
    else
        dir[0] = '\0';
    if (dir[0] == '\0' || realpath(dir, real) == NULL ||
        (size_t)snprintf(out, cap, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base) >= cap)
        snprintf(out, cap, "%s", path);
}

/* FNV-1a, 64 bits: the name of a path too long for sun_path. */
static uint64_t fnv64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Is the claim at `sa` held by a procbusd of ours (root's, or our user's)? Abstract names have
 * no permissions: any user can bind one, so a name held by another user is a squatter. */
static int holder_is_ours(const struct sockaddr_un *sa, socklen_t len)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ours = 0;

    if (fd < 0)
        return 1; /* cannot tell: the safe answer is "busy" */
    /* a procbusd listens on its claim: a name bound by anything else refuses the connection */
    if (connect(fd, (const struct sockaddr *)sa, len) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
        ours = cred.uid == 0 || cred.uid == geteuid();
    close(fd);
    return ours;
}

int pbd_claim_segment(const char *spec, char *what, size_t cap)
{
    char path[PROCBUS_PATH_MAX], full[PATH_MAX + NAME_MAX + 2];
    struct sockaddr_un sa;
    size_t room = sizeof(sa.sun_path) - 1, n;
    socklen_t len;
    int rc, fd;

    if (what != NULL && cap > 0)
        what[0] = '\0';
    rc = procbus_segment_path(spec, path, sizeof(path));
    if (rc < 0)
        return rc;
    full_path(path, full, sizeof(full));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    /* sun_path[0] = '\0': the abstract namespace; the name is the bytes after it (no NUL) */
    if (strlen(CLAIM_PREFIX) + strlen(full) <= room)
        n = (size_t)snprintf(sa.sun_path + 1, room + 1, CLAIM_PREFIX "%s", full);
    else
        n = (size_t)snprintf(sa.sun_path + 1, room + 1, CLAIM_PREFIX "#%016llx",
                             (unsigned long long)fnv64(full));
    if (what != NULL && cap > 0)
        snprintf(what, cap, "@%s", sa.sun_path + 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, len) == 0 && listen(fd, 1) == 0)
        return fd; /* listening: a later procbusd learns who holds the claim by connecting */
    rc = -errno;
    close(fd);
    if (rc != -EADDRINUSE)
        return rc;
    return holder_is_ours(&sa, len) ? -EBUSY : -EPERM;
}
