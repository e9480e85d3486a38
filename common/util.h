/* util.h - small helpers every internal part shares (header-only): clocks, whole reads/writes. */
#ifndef PROCBUS_UTIL_H
#define PROCBUS_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define PB_NS_PER_SEC 1000000000ull

/* `clk` (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, ...) now, in ns. Through the vDSO. */
static inline uint64_t pb_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * PB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Write all `len` bytes of buf to fd, retrying on EINTR and short writes.
 * Returns 0, or a negative errno (the bytes before the error may have been written).
 */
static inline int pb_write_all(int fd, const void *buf, size_t len)
{
    const char *p = (const char *)buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Read exactly `len` bytes from fd into buf, retrying on EINTR and short reads.
 * Returns 0, -EPIPE at end of file before `len` bytes, or a negative errno.
 */
static inline int pb_read_all(int fd, void *buf, size_t len)
{
    char *p = (char *)buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

#endif /* PROCBUS_UTIL_H */
