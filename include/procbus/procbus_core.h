/* procbus_core.h - the reader's types, the segment-name rule, state names: included by procbus.h.
 */
#ifndef PROCBUS_CORE_H
#define PROCBUS_CORE_H

/* POSIX and syscall(2) declarations: include this header first, or build with
 * -D_DEFAULT_SOURCE (or _GNU_SOURCE) when compiling as strict ISO C. */
#if !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1
#endif

#include "procbus_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/futex.h>

#ifndef PROCBUS_READ_RETRIES
#define PROCBUS_READ_RETRIES 64
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Liveness verdicts (procbus_liveness). */
enum procbus_liveness {
    PROCBUS_ALIVE = 1,    /* heartbeat younger than stale_after_ns */
    PROCBUS_STALE = 2,    /* heartbeat too old: publisher stalled or killed */
    PROCBUS_SHUTDOWN = 3, /* publisher closed cleanly; the last snapshot stays readable */
    PROCBUS_GONE = 4      /* segment superseded by a new publisher or removed: reopen */
};

/*
 * The stale threshold: the one rule is procbus_stale_after_ns (procbus_open.h).
 * A publisher that states its heartbeat period (heartbeat_interval_ns, ABI 1.1)
 * is stale after PROCBUS_STALE_BEATS periods without a beat, and never sooner
 * than PROCBUS_STALE_MIN_NS; one that does not (a 1.0 publisher, or a library
 * user that left it 0) after PROCBUS_STALE_AFTER_NS. procbusd states
 * heartbeat_ms (default 500 ms: 5 s, as before).
 */
#define PROCBUS_STALE_AFTER_NS 5000000000ull
#define PROCBUS_STALE_BEATS    10u
#define PROCBUS_STALE_MIN_NS   1000000000ull

/*
 * The name of a state (enum procbus_state): "STOPPED", "RUNNING", ...; "UNKNOWN"
 * for a value outside the enum. The one table every tool prints from.
 * Context: any thread; no system call. Returns a static string, never NULL.
 * Ordering: none.
 */
static inline const char *procbus_state_name(unsigned state)
{
    static const char *const names[PROCBUS_STATE_COUNT_] = {"UNKNOWN", "STOPPED", "STARTING",
                                                            "RUNNING", "BACKOFF", "STOPPING",
                                                            "EXITED",  "FATAL",   "READY"};
    return state < PROCBUS_STATE_COUNT_ ? names[state] : "UNKNOWN";
}

/*
 * The state called `name` (as procbus_state_name spells it, any case).
 * Context: any thread; no system call. Returns the state, or -1 (unknown name
 * or NULL). Ordering: none.
 */
static inline int procbus_state_from_name(const char *name)
{
    unsigned s;
    for (s = 0; name != NULL && s < PROCBUS_STATE_COUNT_; s++)
        if (strcasecmp(name, procbus_state_name(s)) == 0)
            return (int)s;
    return -1;
}

/*
 * procbus_segment_path - the segment-name rule: the one definition, used by
 * the reader (procbus_open) and the publisher (procbus_pub_open) alike.
 *   - spec NULL or "": the value of $PROCBUS_SEGMENT if it is set and not
 *     empty, else "procbus" (PROCBUS_DEFAULT_SEGMENT); that value then goes
 *     through the two rules below;
 *   - a spec containing '/': a path, used as it is (relative to the current
 *     directory unless it starts with '/');
 *   - any other spec: a name. NAME must not be "." or ".." and must be at
 *     most NAME_MAX (255) bytes. It means /run/procbus/NAME (PROCBUS_RUN_DIR)
 *     for root (euid 0), and for anyone else when that file exists (a root
 *     publisher's segment: only root creates names there, so nobody can
 *     squat them); otherwise /dev/shm/NAME (PROCBUS_SHM_DIR, where
 *     shm_open(3) puts it). Root never resolves a name into the
 *     world-writable /dev/shm.
 * The path is written NUL-terminated into buf[cap]; a buffer of
 * PROCBUS_PATH_MAX bytes always suffices.
 * Context: any thread. Reads the environment (not safe against a concurrent
 * setenv). System calls, for a name only: geteuid, and when not root one
 * lstat of /run/procbus/NAME.
 * Returns: 0; -EINVAL (buf NULL or cap 0; NAME "." or ".."); -ENAMETOOLONG
 * (NAME longer than NAME_MAX, or a path of PROCBUS_PATH_MAX bytes or more, or
 * longer than cap - 1). On error buf holds "" (when cap > 0).
 * Ordering: none (touches no segment).
 */
PROCBUS_MUST_CHECK static inline int procbus_segment_path(const char *spec, char *buf, size_t cap)
{
    static const char run[] = PROCBUS_RUN_DIR "/", shm[] = PROCBUS_SHM_DIR "/";
    const char *dir = "";
    size_t n, pre = 0;

    if (buf == NULL || cap == 0)
        return -EINVAL;
    buf[0] = '\0';
    if (spec == NULL || spec[0] == '\0')
        spec = getenv(PROCBUS_SEGMENT_ENV);
    if (spec == NULL || spec[0] == '\0')
        spec = PROCBUS_DEFAULT_SEGMENT;
    n = strlen(spec);
    if (strchr(spec, '/') == NULL) {
        char probe[sizeof(run) + NAME_MAX];
        struct stat st;

        if (strcmp(spec, ".") == 0 || strcmp(spec, "..") == 0)
            return -EINVAL;
        if (n > NAME_MAX)
            return -ENAMETOOLONG;
        memcpy(probe, run, sizeof(run) - 1);
        memcpy(probe + sizeof(run) - 1, spec, n + 1);
        dir = geteuid() == 0 || lstat(probe, &st) == 0 ? run : shm;
        pre = strlen(dir);
    }
    if (pre + n >= PROCBUS_PATH_MAX || pre + n >= cap)
        return -ENAMETOOLONG;
    memcpy(buf, dir, pre);
    memcpy(buf + pre, spec, n + 1);
    return 0;
}

/*
 * procbus_strerror - what an error of procbus_open, procbus_attach or
 * procbus_follow means, in words a person can act on ("a directory, not a
 * segment", "not trusted: owned by ..."); strerror's text for the others
 * (ENOENT: "No such file or directory").
 * `err` may be negative or positive. Context: any thread (strerror for the
 * others). No system call. Returns a static string, never NULL.
 */
static inline const char *procbus_strerror(int err)
{
    switch (err < 0 ? -err : err) {
    case ELOOP:
        return "a symbolic link (segments are opened without following links)";
    case EISDIR:
        return "a directory, not a segment";
    case EPROTO:
        return "not a procbus segment (not a regular file, wrong magic, or another ABI major "
               "version)";
    case EINPROGRESS:
        return "its publisher has not finished creating it (version 0)";
    case EBADMSG:
        return "a corrupt segment (fails validation)";
    case EPERM:
        return "not trusted: owned by a user other than root, you or $" PROCBUS_OWNER_ENV
               ", or in a folder such a user can change";
    case EACCES:
        return "Permission denied (segment_mode and segment_group decide who may read it)";
    case ENAMETOOLONG:
        return "segment name or path too long";
    case EINVAL:
        return "invalid argument (a segment name may not be \".\" or \"..\")";
    default:
        return strerror(err < 0 ? -err : err);
    }
}

/* Caller-owned reader state. Treat the fields as private. */
struct procbus_reader {
    const unsigned char *base; /* read-only mapping */
    size_t len;
    int mapped; /* 1: procbus_open mapped it and procbus_close unmaps */
    uint32_t record_size, capacity, arena_slots, snap_slots, snap_slot_size, buckets, ring_cap;
    uint64_t snap_off, arena_off, ring_off, pid_off, name_off, ring_first;
    uint64_t epoch;
    uint64_t cursor;             /* next event sequence this reader wants */
    uint64_t skipped;            /* events skipped by a next_event that gave up (-EAGAIN), not yet
                                    reported in *missed */
    uint64_t last_gen;           /* generation the last successful get/list read */
    uint64_t retries;            /* seqlock retries so far (statistics) */
    uint64_t dev, ino;           /* the file procbus_open mapped */
    uint64_t cur_off_ok;         /* the last snapshot offset found valid (UINT64_MAX: none) */
    char spec[PROCBUS_PATH_MAX]; /* procbus_segment_path's result, for procbus_follow */
};

/* Publisher facts from the header block (procbus_info). */
struct procbus_info {
    uint64_t epoch, generation, heartbeat_ns, publisher_start_ns, created_ns;
    uint64_t publishes, records_dropped, events_dropped, tracer_drops;
    uint64_t log_bytes_lost; /* 0 from a publisher older than ABI 1.2 */
    uint64_t ring_head, ring_first;
    int32_t publisher_pid;
    uint32_t capacity, ring_capacity, abi_minor;
};

/* ---- internals (procbus__ prefix: not part of the API) ---- */

#define PROCBUS__LD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PROCBUS__LD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)

/*
 * The read path's hot steps are forced inline (GCC at -O2 otherwise keeps the
 * index probe out of line: a call, the section spilled to the stack, and the
 * pid/name choice made at run time) and its rare steps (a retry, a long probe)
 * kept out of line, so a lookup compiles to one straight run of loads.
 */
#if defined(__GNUC__) || defined(__clang__)
#define PROCBUS__HOT  __attribute__((always_inline)) inline
#define PROCBUS__COLD __attribute__((noinline, cold))
#else
#define PROCBUS__HOT inline
#define PROCBUS__COLD
#endif

static inline const struct procbus_header *procbus__hdr(const struct procbus_reader *r)
{
    return (const struct procbus_header *)(const void *)r->base;
}

static inline int procbus__pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* [off, off+size) lies inside [lo, hi) */
static inline int procbus__within(uint64_t off, uint64_t size, uint64_t lo, uint64_t hi)
{
    return off >= lo && off <= hi && size <= hi - off;
}

/*
 * The owners a reader trusts: root, the caller's effective uid, and the
 * decimal uid in $PROCBUS_SEGMENT_OWNER (to read another user's publisher).
 */
static inline int procbus__trusted_uid(uint64_t uid)
{
    const char *e;
    uint64_t v = 0;

    if (uid == 0 || uid == (uint64_t)geteuid())
        return 1;
    e = getenv(PROCBUS_OWNER_ENV);
    if (e == NULL || *e == '\0')
        return 0;
    for (; *e >= '0' && *e <= '9' && v < (1ull << 40); e++)
        v = v * 10 + (uint64_t)(*e - '0');
    return *e == '\0' && v == uid;
}

/*
 * A folder whose entries only trusted users can replace: owned by a trusted
 * uid, and writable by group or others only with the sticky bit (as /dev/shm
 * and /tmp: there a file can be renamed or removed only by its owner).
 */
static inline int procbus__trusted_dir(const struct stat *st)
{
    return S_ISDIR(st->st_mode) && procbus__trusted_uid((uint64_t)st->st_uid) &&
           (!(st->st_mode & (S_IWGRP | S_IWOTH)) || (st->st_mode & S_ISVTX));
}

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_CORE_H */
