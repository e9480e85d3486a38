/* liveprobe.c - is a segment's publisher alive? At once, for tools that may make a system call. */
#define _GNU_SOURCE
#include "liveprobe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int pb_publisher_check(const struct procbus_reader *r)
{
    struct stat st;
    int l, fd, verdict;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    l = procbus_liveness(r, procbus_stale_after_ns(r));
    if (l < 0 || l == PROCBUS_SHUTDOWN || l == PROCBUS_GONE || !r->mapped)
        return l;
    fd = open(r->spec, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? PROCBUS_GONE : l; /* (unreadable now: the heartbeat says) */
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != r->dev || (uint64_t)st.st_ino != r->ino) {
        close(fd);
        return PROCBUS_GONE;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        verdict = PB_PUBLISHER_DEAD;
    } else {
        verdict = l; /* held (EWOULDBLOCK): alive, or stuck as the heartbeat says */
    }
    close(fd);
    return verdict;
}
