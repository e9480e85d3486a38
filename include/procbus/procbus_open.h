/* procbus_open.h - mapping a segment by name, liveness of its publisher, following a takeover. */
#ifndef PROCBUS_OPEN_H
#define PROCBUS_OPEN_H

#include "procbus_snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Check the folder `path` is in (procbus__trusted_dir). 0, -EPERM, or the
 * errno of stat. The path is not modified; `buf` holds a copy of its folder.
 */
static inline int procbus__check_folder(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);
    struct stat st;

    if (slash == NULL)
        memcpy(buf, ".", 2);
    else if (n == 0)
        memcpy(buf, "/", 2);
    else if (n < cap) {
        memcpy(buf, path, n);
        buf[n] = '\0';
    } else
        return -ENAMETOOLONG;
    if (stat(buf, &st) < 0)
        return -errno;
    return procbus__trusted_dir(&st) ? 0 : -EPERM;
}

/*
 * procbus_open - map a segment read-only and validate it. name_or_path is
 * resolved by procbus_segment_path (NULL or "": $PROCBUS_SEGMENT, else
 * "procbus"; a spec with '/' is a path; else /run/procbus/NAME or
 * /dev/shm/NAME). Before trusting a byte of it:
 *   - the file is opened with O_NOFOLLOW (a symlink: -ELOOP) and O_NONBLOCK
 *     (a FIFO someone put at the name cannot block the open);
 *   - it must be a regular file (a directory: -EISDIR; a FIFO, socket or
 *     device: -EPROTO);
 *   - its owner must be trusted: root, the caller's effective uid, or the
 *     uid in $PROCBUS_SEGMENT_OWNER (else -EPERM: another local user could
 *     otherwise publish fake states under the name);
 *   - its folder must be owned by a trusted uid and, if group- or
 *     world-writable, sticky (else -EPERM).
 * The descriptor is closed before returning; reads never make a system
 * call. The event cursor starts at the newest event.
 * Context: `r` is overwritten (an open reader must be closed first, or its
 * mapping leaks). System calls: those of procbus_segment_path, open, fstat,
 * geteuid, stat (the folder), mmap, close (and munmap when validation fails).
 * Returns: 0; -EINVAL (r NULL, name "." or ".."); -ENAMETOOLONG; -ENOENT (no
 * such segment); -ELOOP (a symlink); -EACCES; -EISDIR; -EPERM (untrusted
 * owner or folder); -EINPROGRESS (publisher still initialising); -EPROTO
 * (not a procbus segment: not a regular file, wrong magic, empty; or
 * another ABI major); -EBADMSG (fails validation, or the file size differs
 * from segment_size); another errno from open or mmap. procbus_strerror says
 * each in words.
 * Ordering: as procbus_attach.
 */
PROCBUS_MUST_CHECK static inline int procbus_open(struct procbus_reader *r,
                                                  const char *name_or_path)
{
    char folder[PROCBUS_PATH_MAX];
    struct stat st;
    void *base;
    int fd, rc;

    if (r == NULL)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    rc = procbus_segment_path(name_or_path, r->spec, sizeof(r->spec));
    if (rc < 0)
        return rc;
    fd = open(r->spec, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = S_ISDIR(st.st_mode)                          ? -EISDIR
         : !S_ISREG(st.st_mode)                       ? -EPROTO
         : !procbus__trusted_uid((uint64_t)st.st_uid) ? -EPERM
                                                      : 0;
    if (rc == 0)
        rc = procbus__check_folder(r->spec, folder, sizeof(folder));
    if (rc == 0 && (uint64_t)st.st_size < PROCBUS_HEADER_SIZE)
        rc = st.st_size == 0 ? -EPROTO : -EBADMSG;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    rc = -errno;
    close(fd);
    if (base == MAP_FAILED)
        return rc;
    rc = procbus__validate(r, base, (size_t)st.st_size);
    if (rc == 0 && r->len != (size_t)st.st_size)
        rc = -EBADMSG; /* header says another size than the file has */
    if (rc < 0) {
        munmap(base, (size_t)st.st_size);
        r->base = NULL;
        return rc;
    }
    r->mapped = 1;
    r->dev = (uint64_t)st.st_dev;
    r->ino = (uint64_t)st.st_ino;
    return 0;
}

/*
 * procbus_close - unmap (when procbus_open mapped) and forget the segment.
 * Context: the thread using `r`; NULL, an attached reader, or one already
 * closed are fine (safe to call twice). System call: munmap, only for a
 * reader procbus_open mapped. Cannot fail. Ordering: none.
 */
static inline void procbus_close(struct procbus_reader *r)
{
    if (r == NULL)
        return;
    if (r->mapped && r->base != NULL)
        munmap((void *)(uintptr_t)r->base, r->len);
    r->base = NULL;
    r->mapped = 0;
}

/*
 * procbus_stale_after_ns - the heartbeat age past which this segment's
 * publisher counts as stale: the one definition every tool uses. With a
 * stated period (heartbeat_interval_ns, ABI 1.1; clamped to
 * PROCBUS_MAX_HEARTBEAT_NS), PROCBUS_STALE_BEATS periods, at least
 * PROCBUS_STALE_MIN_NS; without one, PROCBUS_STALE_AFTER_NS.
 * Context: an open reader (NULL or not open: PROCBUS_STALE_AFTER_NS). No
 * system call. Cannot fail. Ordering: relaxed load (the period only steers
 * the verdict; procbus_liveness orders the heartbeat itself).
 */
static inline uint64_t procbus_stale_after_ns(const struct procbus_reader *r)
{
    uint64_t iv;

    if (r == NULL || r->base == NULL)
        return PROCBUS_STALE_AFTER_NS;
    iv = PROCBUS__LD(&procbus__hdr(r)->heartbeat_interval_ns);
    if (iv == 0)
        return PROCBUS_STALE_AFTER_NS;
    if (iv > PROCBUS_MAX_HEARTBEAT_NS)
        iv = PROCBUS_MAX_HEARTBEAT_NS;
    iv *= PROCBUS_STALE_BEATS;
    return iv < PROCBUS_STALE_MIN_NS ? PROCBUS_STALE_MIN_NS : iv;
}

/*
 * procbus_liveness - publisher liveness from the heartbeat: PROCBUS_ALIVE when
 * it is younger than stale_after_ns (procbus_stale_after_ns(r) is the usual
 * figure), else PROCBUS_STALE; PROCBUS_SHUTDOWN after a clean close;
 * PROCBUS_GONE when the segment was superseded or removed (see procbus_follow).
 * Context: an open reader. System call: clock_gettime(CLOCK_MONOTONIC),
 * through the vDSO (none with a vDSO clocksource; it faults under
 * SECCOMP_MODE_STRICT, which disables the TSC - see docs/ABI.md).
 * Returns: a PROCBUS_ALIVE..PROCBUS_GONE verdict, or -EINVAL (not open).
 * Ordering: acquire load of heartbeat_ns, pairing with the release stores in
 * procbus_pub_heartbeat and pb_segment_close/_create (ABI.md "Heartbeat and
 * liveness"): after SHUTDOWN or GONE, reads see the publisher's last commit.
 */
static inline int procbus_liveness(const struct procbus_reader *r, uint64_t stale_after_ns)
{
    struct timespec ts;
    uint64_t hb, now;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    /* pairs with the heartbeat's release stores (publisher.c, segment.c) */
    hb = PROCBUS__LD_ACQ(&procbus__hdr(r)->heartbeat_ns);
    if (hb == PROCBUS_HB_GONE)
        return PROCBUS_GONE;
    if (hb == PROCBUS_HB_SHUTDOWN)
        return PROCBUS_SHUTDOWN;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return now > hb && now - hb > stale_after_ns ? PROCBUS_STALE : PROCBUS_ALIVE;
}

/*
 * procbus_follow - if the segment was superseded (a new publisher took over
 * the name) or removed, map the segment now at the same path and keep the
 * event cursor. Call it when procbus_liveness says PROCBUS_GONE, or whenever
 * convenient. Events the reader had not consumed from the old segment are
 * counted in the next procbus_next_event's *missed.
 * Context: a reader procbus_open set up. System calls: clock_gettime (vDSO)
 * and stat; when the name moved on, procbus_open's calls (and munmap of the
 * old mapping).
 * Returns: 1 when it switched to a new segment (compare r->epoch); 0 when the
 * current one is still the live one; -EINVAL for a reader set up by
 * procbus_attach (or not open); or a negative errno from procbus_open, the
 * old mapping then being kept.
 * Ordering: as procbus_liveness, then as procbus_open for the new segment.
 */
static inline int procbus_follow(struct procbus_reader *r)
{
    struct procbus_reader next;
    struct stat a;
    uint64_t cursor;
    int rc;

    if (r == NULL || r->base == NULL || !r->mapped)
        return -EINVAL; /* procbus_attach'ed memory has no name to follow */
    /* still ours unless it was superseded or the name now points at another file */
    if (procbus_liveness(r, UINT64_MAX) != PROCBUS_GONE && stat(r->spec, &a) == 0 &&
        (uint64_t)a.st_dev == r->dev && (uint64_t)a.st_ino == r->ino)
        return 0;
    rc = procbus_open(&next, r->spec);
    if (rc < 0)
        return rc;
    if (next.dev == r->dev && next.ino == r->ino) {
        procbus_close(&next);
        return 0;
    }
    cursor = r->cursor;
    procbus_close(r);
    *r = next;
    r->cursor = cursor; /* next_event counts what the old segment still held as missed */
    return 1;
}

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_OPEN_H */
