/* procbus.h - header-only reader of a procbus segment: the read path is plain loads, no syscall. */
#ifndef PROCBUS_H
#define PROCBUS_H

/*
 * Include this header and read the process table a procbus publisher keeps in
 * shared memory. Nothing here allocates or takes a lock. Compiles as C99
 * (-pedantic) and C++; needs GCC or Clang (the __atomic builtins) and Linux.
 *
 * Context: a struct procbus_reader is used by one thread at a time (use one
 * per thread). Any number of readers, in any processes, may read one segment;
 * they never write to it, and the publisher never waits for them.
 *
 * System calls - the one list; each function's block repeats its own entry,
 * and docs/ABI.md ("System calls on the reader side") says the same:
 *   procbus_open      open, fstat, mmap, close (munmap when validation fails)
 *   procbus_close     munmap (only when procbus_open mapped the segment)
 *   procbus_follow    clock_gettime, stat; procbus_open's calls when the name
 *                     moved on
 *   procbus_wait      futex(FUTEX_WAIT); clock_gettime when timeout_ms > 0
 *   procbus_liveness  clock_gettime(CLOCK_MONOTONIC)
 * clock_gettime goes through the vDSO: no system call with a vDSO clocksource
 * (the TSC, the usual case), a real clock_gettime otherwise. Every other
 * function (procbus_attach, procbus_segment_path, procbus_get_pid,
 * procbus_get_name, procbus_list, procbus_generation, procbus_info,
 * procbus_seek_events, procbus_next_event, procbus_state_name,
 * procbus_state_from_name) makes none: loads from the read-only mapping, plus
 * copies into memory the caller owns.
 *
 * Consistency: a read copies from one snapshot and then re-checks that
 * snapshot's generation stamp (a seqlock; docs/ABI.md "Read (reader)", steps
 * 1-4); if the publisher rewrote the slot meanwhile the read is retried, at
 * most PROCBUS_READ_RETRIES times, after which -EAGAIN is returned.
 * Everything read from the segment is bounds-checked against the validated
 * geometry first, so a corrupt segment gives -EBADMSG, never an out-of-bounds
 * access.
 *
 * Errors are negative errno values:
 *   -ENOENT   no such record / segment / (next_event) no new event yet
 *   -EAGAIN   lapped by the publisher more than PROCBUS_READ_RETRIES times
 *   -EINPROGRESS  (open, attach) a procbus segment (right magic) whose
 *             `version` is still 0: its publisher has not finished creating
 *             it. Retry later, with a deadline (a publisher killed while
 *             creating leaves it so). Opening by name never sees it: the file
 *             gets its name only after `version` is written (ABI.md creation
 *             step 3); a temporary file opened by path or a copy can.
 *   -EPROTO   not a procbus segment (wrong magic, not a regular file, empty)
 *             or an incompatible ABI major
 *   -EBADMSG  the segment fails validation (corrupt or hostile)
 *   -ENOSPC   (list) the caller's array is too small; *count says how many
 *   -EINVAL   a bad argument (NULL pointer, unopened reader, "." or ".." as a
 *             segment name)
 *   -ENAMETOOLONG  (open) the segment name or path is too long;
 *             (get_name) the name cannot be in the table
 */

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
 * The heartbeat age past which tools call a publisher stale when they have no
 * better figure: 5 s. procbusd beats every heartbeat_ms (default 500 ms).
 */
#define PROCBUS_STALE_AFTER_NS 5000000000ull

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
 *   - any other spec: a name, meaning the file /dev/shm/NAME (where
 *     shm_open(3) puts it); NAME must not be "." or ".." and must be at most
 *     NAME_MAX (255) bytes.
 * The path is written NUL-terminated into buf[cap]; a buffer of
 * PROCBUS_PATH_MAX bytes always suffices.
 * Context: any thread. Reads the environment (not safe against a concurrent
 * setenv). No system call.
 * Returns: 0; -EINVAL (buf NULL or cap 0; NAME "." or ".."); -ENAMETOOLONG
 * (NAME longer than NAME_MAX, or a path of PROCBUS_PATH_MAX bytes or more, or
 * longer than cap - 1). On error buf holds "" (when cap > 0).
 * Ordering: none (touches no segment).
 */
PROCBUS_MUST_CHECK static inline int procbus_segment_path(const char *spec, char *buf, size_t cap)
{
    static const char dir[] = "/dev/shm/";
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
        if (strcmp(spec, ".") == 0 || strcmp(spec, "..") == 0)
            return -EINVAL;
        if (n > NAME_MAX)
            return -ENAMETOOLONG;
        pre = sizeof(dir) - 1;
    }
    if (pre + n >= PROCBUS_PATH_MAX || pre + n >= cap)
        return -ENAMETOOLONG;
    memcpy(buf, dir, pre);
    memcpy(buf + pre, spec, n + 1);
    return 0;
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
    uint64_t ring_head, ring_first;
    int32_t publisher_pid;
    uint32_t capacity, ring_capacity, abi_minor;
};

/* ---- internals (procbus__ prefix: not part of the API) ---- */

#define PROCBUS__LD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PROCBUS__LD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)

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
 * Validate the header of `len` bytes at `base` and cache the geometry in `r`.
 * Returns 0, -EINPROGRESS, -EPROTO or -EBADMSG.
 */
static inline int procbus__validate(struct procbus_reader *r, const void *base, size_t len)
{
    const struct procbus_header *h = (const struct procbus_header *)base;
    uint32_t version, cap, bk, slots, ssz, rsz, arena, ring_cap;
    uint64_t seg, snap_end, arena_end, ring_end;

    if (base == NULL || len < PROCBUS_HEADER_SIZE)
        return len < sizeof(uint64_t) ? -EPROTO : -EBADMSG;
    if (PROCBUS__LD(&h->magic) != PROCBUS_MAGIC)
        return -EPROTO;
    /*
     * ABI.md creation step 2, reader side: this acquire load pairs with the
     * release store of `version` in pb_segment_create (shm/segment.c). Seeing
     * it non-zero means seeing every header field, the initial snapshot and
     * the EPOCH event written before it.
     */
    version = PROCBUS__LD_ACQ(&h->version);
    if (version == 0)
        return -EINPROGRESS; /* right magic, publisher still initialising */
    if ((version >> 16) != PROCBUS_ABI_MAJOR)
        return -EPROTO;
    seg = h->segment_size;
    cap = h->record_capacity;
    bk = h->hash_buckets;
    slots = h->snap_slots;
    ssz = h->snap_slot_size;
    rsz = h->record_size;
    arena = h->arena_slots;
    ring_cap = h->ring_capacity;
    if (h->header_size != PROCBUS_HEADER_SIZE || seg > len || seg > PROCBUS_MAX_SEGMENT)
        return -EBADMSG;
    if (cap == 0 || cap > PROCBUS_MAX_CAPACITY || !procbus__pow2(bk) || bk <= cap ||
        bk > 2 * PROCBUS_MAX_CAPACITY)
        return -EBADMSG;
    if (slots < 2 || slots > PROCBUS_MAX_SNAP_SLOTS || ssz % 64 != 0 ||
        ssz < PROCBUS_SNAP_BYTES(cap, bk))
        return -EBADMSG;
    if (rsz < PROCBUS_PROC_MIN_SIZE || rsz % 64 != 0 || arena < cap || arena >= 0xffffffffu)
        return -EBADMSG;
    if (!procbus__pow2(ring_cap) || ring_cap > PROCBUS_MAX_RING ||
        h->event_size != sizeof(struct procbus_event))
        return -EBADMSG;
    if (h->snap_off % 64 || h->arena_off % 64 || h->ring_off % 64)
        return -EBADMSG;
    snap_end = (uint64_t)slots * ssz;
    arena_end = (uint64_t)arena * rsz;
    ring_end = (uint64_t)ring_cap * sizeof(struct procbus_event);
    if (!procbus__within(h->snap_off, snap_end, PROCBUS_HEADER_SIZE, seg) ||
        !procbus__within(h->arena_off, arena_end, PROCBUS_HEADER_SIZE, seg) ||
        !procbus__within(h->ring_off, ring_end, PROCBUS_HEADER_SIZE, seg))
        return -EBADMSG;
    /* regions must not overlap: snapshots < arena < ring */
    if (h->snap_off + snap_end > h->arena_off || h->arena_off + arena_end > h->ring_off)
        return -EBADMSG;
    /* the `current` encoding must be able to address every slot */
    if (h->snap_off + snap_end > (PROCBUS_CUR_OFF_MASK << 6))
        return -EBADMSG;

    r->base = (const unsigned char *)base;
    r->len = (size_t)seg;
    r->record_size = rsz;
    r->capacity = cap;
    r->arena_slots = arena;
    r->snap_slots = slots;
    r->snap_slot_size = ssz;
    r->buckets = bk;
    r->ring_cap = ring_cap;
    r->snap_off = h->snap_off;
    r->arena_off = h->arena_off;
    r->ring_off = h->ring_off;
    r->pid_off = PROCBUS_SNAP_PID_OFF(cap);
    r->name_off = PROCBUS_SNAP_NAME_OFF(cap, bk);
    r->ring_first = h->ring_first;
    r->epoch = h->epoch;
    /* ABI.md events step 1: acquire, pairs with the release store of ring_head
     * in commit step 5 (publisher.c): every event below it is complete. */
    r->cursor = PROCBUS__LD_ACQ(&h->ring_head);
    if (r->cursor < r->ring_first)
        r->cursor = r->ring_first;
    r->last_gen = 0;
    r->retries = 0;
    r->cur_off_ok = UINT64_MAX;
    return 0;
}

/*
 * Begin a seqlock read (ABI.md read steps 1-2): find the current snapshot
 * slot. On success *snap points at it and *gen is its full generation; returns
 * 0. Returns 1 when the publisher is mid-swap (retry) and -EBADMSG for an
 * impossible `current`.
 */
static inline int procbus__begin(struct procbus_reader *r, const unsigned char **snap,
                                 uint64_t *gen)
{
    /* Read step 1: acquire, pairs with the release store of `current` in
     * commit step 5 (procbus_pub_commit): the slot it names is complete. */
    uint64_t cur = PROCBUS__LD_ACQ(&procbus__hdr(r)->current);
    uint64_t off = PROCBUS_CUR_OFF(cur), g;
    const struct procbus_snap *s;

    if (off != r->cur_off_ok) { /* validate once per distinct offset: avoids a division */
        uint64_t rel;
        if (off < r->snap_off)
            return -EBADMSG;
        rel = off - r->snap_off;
        if (rel >= (uint64_t)r->snap_slots * r->snap_slot_size ||
            (uint32_t)rel % r->snap_slot_size != 0)
            return -EBADMSG;
        r->cur_off_ok = off;
    }
    s = (const struct procbus_snap *)(const void *)(r->base + off);
    /* Read step 2: acquire, pairs with the release store of the slot's gen in
     * commit step 4: the entries and count written in step 3 are visible. */
    g = PROCBUS__LD_ACQ(&s->gen);
    if (g == 0 || (g & PROCBUS_CUR_GEN_MASK) != PROCBUS_CUR_GEN(cur))
        return 1;
    *snap = r->base + off;
    *gen = g;
    return 0;
}

/* End a seqlock read (ABI.md read step 4): 1 if the slot still holds generation `gen`. */
static inline int procbus__still(const unsigned char *snap, uint64_t gen)
{
    /*
     * Read step 4: this acquire fence pairs with the release fence after the
     * `gen = 0` store of commit step 2 (and with the one in a forced lap,
     * reclaim_early in publisher.c). If step 3's plain loads saw any byte
     * written after that fence, the load below sees 0 or a newer gen.
     */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return PROCBUS__LD(&((const struct procbus_snap *)(const void *)snap)->gen) == gen;
}

static inline const struct procbus_proc *procbus__rec(const struct procbus_reader *r, uint32_t slot)
{
    return (const struct procbus_proc *)(const void *)(r->base + r->arena_off +
                                                       (uint64_t)slot * r->record_size);
}

/* Copy one record out; 0, or -EBADMSG when its size field is impossible. */
static inline int procbus__copy(const struct procbus_reader *r, const struct procbus_proc *src,
                                struct procbus_proc *out)
{
    uint32_t sz = PROCBUS__LD(&src->size);
    size_t n;

    if (sz < PROCBUS_PROC_MIN_SIZE || sz > r->record_size)
        return -EBADMSG;
    n = sz < sizeof(*out) ? sz : sizeof(*out);
    /* Keep n opaque: with a known size GCC inlines `rep movsq`, whose start-up
     * cost dominates a 384-byte copy; libc's memcpy uses vector moves. */
    __asm__("" : "+r"(n));
    memcpy(out, src, n);
    if (n < sizeof(*out))
        memset((char *)out + n, 0, sizeof(*out) - n);
    out->name[PROCBUS_NAME_LEN - 1] = '\0';
    out->comm[PROCBUS_COMM_LEN - 1] = '\0';
    if (out->cmdline_len > PROCBUS_CMDLINE_LEN)
        out->cmdline_len = PROCBUS_CMDLINE_LEN;
    return 0;
}

/*
 * Look a key up in one index of the current snapshot. pid_key: match on pid,
 * else on name. Returns 0 (copied), -ENOENT, -EAGAIN or -EBADMSG.
 */
static inline int procbus__lookup(struct procbus_reader *r, int by_pid, uint32_t key,
                                  const char *name, struct procbus_proc *out)
{
    int attempt;

    if (r == NULL || r->base == NULL || out == NULL)
        return -EINVAL;
    for (attempt = 0; attempt < PROCBUS_READ_RETRIES; attempt++) {
        const unsigned char *snap;
        const uint64_t *tbl;
        const struct procbus_proc *best = NULL;
        uint64_t gen;
        uint32_t mask = r->buckets - 1, i, pos;
        int rc = procbus__begin(r, &snap, &gen), bad = 0;

        if (rc < 0)
            return rc;
        if (rc > 0) {
            r->retries++;
            continue;
        }
        tbl = (const uint64_t *)(const void *)(snap + (by_pid ? r->pid_off : r->name_off));
        pos = (uint32_t)procbus_key_home(key, mask);
        for (i = 0; i < r->buckets; i++, pos = (pos + 1) & mask) {
            uint64_t b = PROCBUS__LD(&tbl[pos]);
            uint32_t slot;
            const struct procbus_proc *p;

            if (b == 0)
                break;
            if (PROCBUS_BUCKET_KEY(b) != key)
                continue;
            slot = PROCBUS_BUCKET_SLOT(b);
            if (slot >= r->arena_slots) {
                bad = 1;
                break;
            }
            p = procbus__rec(r, slot);
            if (by_pid ? PROCBUS__LD(&p->pid) != (int32_t)key
                       : strncmp(p->name, name, PROCBUS_NAME_LEN) != 0)
                continue;
            best = p; /* one entry per key: the publisher indexes the newest holder */
            break;
        }
        if (!bad && best != NULL && procbus__copy(r, best, out) < 0)
            bad = 1;
        if (!procbus__still(snap, gen)) {
            r->retries++;
            continue;
        }
        if (bad)
            return -EBADMSG;
        if (best == NULL)
            return -ENOENT;
        r->last_gen = gen;
        return 0;
    }
    return -EAGAIN;
}

/* ---- the API ---- */

/*
 * procbus_attach - validate a segment already in memory (a mapping or a copy
 * of one), `len` bytes at `base`, and set `r` up to read it. Used by tests and
 * tools that inspect a copy. The event cursor starts at the newest event.
 * Context: the memory must stay valid and mapped until procbus_close; `r` is
 * overwritten (any previous state is forgotten, not closed). No system call.
 * Returns: 0; -EINVAL (r NULL); -EINPROGRESS (right magic, `version` still
 * 0); -EPROTO (wrong magic, fewer than 8 bytes, another ABI major);
 * -EBADMSG (inconsistent geometry, or `len` shorter than the header or than
 * segment_size).
 * Ordering: acquire load of `version` (pairs with ABI.md creation step 2)
 * and of `ring_head` (pairs with commit step 5).
 */
PROCBUS_MUST_CHECK static inline int procbus_attach(struct procbus_reader *r, const void *base,
                                                    size_t len)
{
    if (r == NULL)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    return procbus__validate(r, base, len);
}

/*
 * procbus_open - map a segment read-only and validate it. name_or_path is
 * resolved by procbus_segment_path (NULL or "": $PROCBUS_SEGMENT, else
 * "procbus"; a spec with '/' is a path; else /dev/shm/NAME). The file is
 * opened with O_NOFOLLOW and must be a regular file; the descriptor is closed
 * before returning. The event cursor starts at the newest event.
 * Context: `r` is overwritten (an open reader must be closed first, or its
 * mapping leaks). System calls: open, fstat, mmap, close (and munmap when
 * validation fails).
 * Returns: 0; -EINVAL (r NULL, name "." or ".."); -ENAMETOOLONG; -ENOENT (no
 * such segment); -ELOOP (a symlink); -EACCES; -EINPROGRESS (publisher still
 * initialising); -EPROTO (not a procbus segment: wrong magic, not a regular
 * file, empty; or another ABI major); -EBADMSG (fails validation, or the
 * file size differs from segment_size); another errno from open or mmap.
 * Ordering: as procbus_attach.
 */
PROCBUS_MUST_CHECK static inline int procbus_open(struct procbus_reader *r,
                                                  const char *name_or_path)
{
    struct stat st;
    void *base;
    int fd, rc;

    if (r == NULL)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    rc = procbus_segment_path(name_or_path, r->spec, sizeof(r->spec));
    if (rc < 0)
        return rc;
    fd = open(r->spec, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EPROTO;
    }
    if ((uint64_t)st.st_size < PROCBUS_HEADER_SIZE) {
        close(fd);
        return st.st_size == 0 ? -EPROTO : -EBADMSG;
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
 * procbus_get_pid - copy the record of process `pid` out of the current
 * snapshot into *out. When several records carry the pid (an exited process
 * and the one that reused its pid), the newest process wins. O(1).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOENT (no such pid, or pid <= 0); -EAGAIN (lapped
 * PROCBUS_READ_RETRIES times); -EBADMSG; -EINVAL (r, out NULL or not open).
 * *out is unspecified unless 0 is returned.
 * Ordering: ABI.md read steps 1-4 (acquire loads of `current` and the slot's
 * gen, acquire fence before the re-check); on success r->last_gen is the
 * generation read.
 */
PROCBUS_MUST_CHECK static inline int procbus_get_pid(struct procbus_reader *r, int32_t pid,
                                                     struct procbus_proc *out)
{
    if (pid <= 0)
        return r == NULL || out == NULL ? -EINVAL : -ENOENT;
    return procbus__lookup(r, 1, (uint32_t)pid, NULL, out);
}

/*
 * procbus_get_name - copy the record named `name` out of the current snapshot
 * into *out (newest wins among duplicates, as for pids). O(1).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOENT (no such name, or ""); -ENAMETOOLONG (longer than
 * PROCBUS_NAME_LEN - 1: cannot be in the table); -EAGAIN; -EBADMSG; -EINVAL.
 * *out is unspecified unless 0 is returned.
 * Ordering: as procbus_get_pid (read steps 1-4).
 */
PROCBUS_MUST_CHECK static inline int procbus_get_name(struct procbus_reader *r, const char *name,
                                                      struct procbus_proc *out)
{
    size_t n;

    if (name == NULL)
        return -EINVAL;
    n = strlen(name);
    if (n == 0)
        return r == NULL || out == NULL ? -EINVAL : -ENOENT;
    if (n >= PROCBUS_NAME_LEN)
        return -ENAMETOOLONG;
    return procbus__lookup(r, 0, procbus_name_hash(name, PROCBUS_NAME_LEN), name, out);
}

/*
 * procbus_list - copy every record of one snapshot into out[0..cap). On
 * success *count is the number copied. If cap is too small, returns -ENOSPC
 * with *count set to the number needed (out may be NULL with cap 0 to ask).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOSPC; -EAGAIN; -EBADMSG; -EINVAL (r or count NULL, out NULL
 * with cap > 0, not open). out[] is unspecified unless 0 is returned.
 * Ordering: read steps 1-4: every record copied comes from the same snapshot.
 */
PROCBUS_MUST_CHECK static inline int
procbus_list(struct procbus_reader *r, struct procbus_proc *out, size_t cap, size_t *count)
{
    int attempt;

    if (r == NULL || r->base == NULL || count == NULL || (out == NULL && cap != 0))
        return -EINVAL;
    for (attempt = 0; attempt < PROCBUS_READ_RETRIES; attempt++) {
        const unsigned char *snap;
        const uint32_t *dense;
        uint64_t gen;
        uint32_t n, i;
        int rc = procbus__begin(r, &snap, &gen), bad = 0;

        if (rc < 0)
            return rc;
        if (rc > 0) {
            r->retries++;
            continue;
        }
        n = PROCBUS__LD(&((const struct procbus_snap *)(const void *)snap)->count);
        dense = (const uint32_t *)(const void *)(snap + PROCBUS_SNAP_DENSE_OFF);
        if (n > r->capacity) {
            bad = 1;
        } else if (n <= cap) {
            for (i = 0; i < n; i++) {
                uint32_t slot = PROCBUS__LD(&dense[i]);
                if (slot >= r->arena_slots || procbus__copy(r, procbus__rec(r, slot), &out[i])) {
                    bad = 1;
                    break;
                }
            }
        }
        if (!procbus__still(snap, gen)) {
            r->retries++;
            continue;
        }
        if (bad)
            return -EBADMSG;
        *count = n;
        if (n > cap)
            return -ENOSPC;
        r->last_gen = gen;
        return 0;
    }
    return -EAGAIN;
}

/*
 * procbus_generation - the generation of the current snapshot: it changes on
 * every commit. One load.
 * Context: an open reader (returns 0 for NULL or not open). No system call.
 * Ordering: acquire load, pairing with the release store of `generation` in
 * ABI.md commit step 5, which follows the store of `current`: a read started
 * after seeing generation g reads snapshot g or a newer one.
 */
static inline uint64_t procbus_generation(const struct procbus_reader *r)
{
    if (r == NULL || r->base == NULL)
        return 0;
    return PROCBUS__LD_ACQ(&procbus__hdr(r)->generation); /* pairs with commit step 5 */
}

/*
 * procbus_liveness - publisher liveness from the heartbeat: PROCBUS_ALIVE when
 * it is younger than stale_after_ns (PROCBUS_STALE_AFTER_NS is the usual
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
 * procbus_info - header facts for status displays, copied into *out.
 * Context: an open reader. No system call. The fields are loaded one by one:
 * they are not one consistent snapshot (the counters are relaxed).
 * Returns: 0, or -EINVAL (r or out NULL, not open).
 * Ordering: acquire loads of generation and ring_head (pair with ABI.md
 * commit step 5).
 */
static inline int procbus_info(const struct procbus_reader *r, struct procbus_info *out)
{
    const struct procbus_header *h;

    if (r == NULL || r->base == NULL || out == NULL)
        return -EINVAL;
    h = procbus__hdr(r);
    out->epoch = h->epoch;
    out->generation = PROCBUS__LD_ACQ(&h->generation); /* pairs with commit step 5 */
    out->heartbeat_ns = PROCBUS__LD(&h->heartbeat_ns);
    out->publisher_start_ns = h->publisher_start_ns;
    out->created_ns = h->created_ns;
    out->publishes = PROCBUS__LD(&h->publishes);
    out->records_dropped = PROCBUS__LD(&h->records_dropped);
    out->events_dropped = PROCBUS__LD(&h->events_dropped);
    out->tracer_drops = PROCBUS__LD(&h->tracer_drops);
    out->ring_head = PROCBUS__LD_ACQ(&h->ring_head); /* pairs with commit step 5 */
    out->ring_first = r->ring_first;
    out->publisher_pid = h->publisher_pid;
    out->capacity = r->capacity;
    out->ring_capacity = r->ring_cap;
    out->abi_minor = PROCBUS__LD(&h->version) & 0xffffu;
    return 0;
}

/* Where procbus_next_event starts: the oldest event still held, or from now. */
enum procbus_seek { PROCBUS_SEEK_OLDEST = 0, PROCBUS_SEEK_NOW = 1 };

/*
 * procbus_seek_events - move the event cursor to the oldest event the ring
 * still holds (PROCBUS_SEEK_OLDEST) or past the newest (PROCBUS_SEEK_NOW,
 * any other value too). Events skipped by an earlier -EAGAIN are forgotten.
 * Context: an open reader. No system call.
 * Returns: 0, or -EINVAL (not open).
 * Ordering: acquire load of ring_head (ABI.md events step 1).
 */
static inline int procbus_seek_events(struct procbus_reader *r, int whence)
{
    uint64_t head;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    /* events step 1: pairs with the release store of ring_head in commit step 5 */
    head = PROCBUS__LD_ACQ(&procbus__hdr(r)->ring_head);
    r->skipped = 0; /* a seek is a deliberate jump: nothing pending is reported */
    if (whence == PROCBUS_SEEK_NOW)
        r->cursor = head;
    else
        r->cursor = head - r->ring_first > r->ring_cap ? head - r->ring_cap : r->ring_first;
    return 0;
}

/*
 * procbus_next_event - copy the next event after this reader's cursor into
 * *ev and advance. *missed is set to the exact number of events between the
 * cursor and this one that were overwritten before the reader got to them (0
 * normally).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOENT when there is no new event (*missed then counts events
 * skipped on the way, usually 0); -EAGAIN (lapped PROCBUS_READ_RETRIES times
 * in a row; the skipped events are reported by the next call's *missed);
 * -EBADMSG; -EINVAL (an argument NULL, not open). *ev is unspecified unless 0
 * is returned.
 * Ordering: ABI.md events steps 1-3: acquire load of ring_head, acquire load
 * of the entry's seq, copy, acquire fence, re-check of seq; they pair with
 * commit step 1 (seq release stores and fence) and step 5 (ring_head).
 */
PROCBUS_MUST_CHECK static inline int procbus_next_event(struct procbus_reader *r,
                                                        struct procbus_event *ev, uint64_t *missed)
{
    const struct procbus_header *h;
    const struct procbus_event *ring;
    uint64_t c, head;
    int attempt;

    if (r == NULL || r->base == NULL || ev == NULL || missed == NULL)
        return -EINVAL;
    h = procbus__hdr(r);
    ring = (const struct procbus_event *)(const void *)(r->base + r->ring_off);
    c = r->cursor;
    if (c < r->ring_first)
        c = r->ring_first;
    for (attempt = 0; attempt < PROCBUS_READ_RETRIES; attempt++) {
        const struct procbus_event *e;
        uint64_t s;

        /* events step 1: pairs with the release store of ring_head in commit step 5 */
        head = PROCBUS__LD_ACQ(&h->ring_head);
        if (c > head) /* cursor from another segment or a corrupt head */
            c = head;
        if (head - c > r->ring_cap)
            c = head - r->ring_cap;
        if (c == head) {
            *missed = (c > r->cursor ? c - r->cursor : 0) + r->skipped;
            r->skipped = 0;
            r->cursor = c;
            return -ENOENT;
        }
        e = &ring[c & (r->ring_cap - 1)];
        /* events step 2: pairs with the release store of seq = n in commit step 1 */
        s = PROCBUS__LD_ACQ(&e->seq);
        if (s != c) {
            if (s != PROCBUS_SEQ_BUSY && s < c)
                return -EBADMSG; /* entry older than a sequence the head passed */
            c++;                 /* overwritten: count it missed and move on */
            r->retries++;
            continue;
        }
        memcpy(ev, e, sizeof(*ev));
        /* events step 3: pairs with the release fence after seq = BUSY in commit
         * step 1: a copy that saw a rewrite's byte sees seq changed below */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (PROCBUS__LD(&e->seq) != c) {
            c++;
            r->retries++;
            continue;
        }
        ev->name[PROCBUS_COMM_LEN - 1] = '\0';
        *missed = (c > r->cursor ? c - r->cursor : 0) + r->skipped;
        r->skipped = 0;
        r->cursor = c + 1;
        return 0;
    }
    /* keep the progress: the next call goes on from here and reports these as missed */
    if (c > r->cursor) {
        r->skipped += c - r->cursor;
        r->cursor = c;
    }
    return -EAGAIN;
}

/*
 * procbus_wait - block until the generation differs from since_generation,
 * for at most timeout_ms milliseconds (negative: no limit, 0: just check).
 * The one reader call that blocks.
 * Context: an open reader. System calls: futex(FUTEX_WAIT) on the header's
 * futex word; clock_gettime(CLOCK_MONOTONIC) (vDSO) when timeout_ms > 0.
 * Returns: 0 (generation moved); -ETIMEDOUT; -EINTR (a signal arrived);
 * -EPIPE (the publisher shut down or the segment is gone, and the generation
 * has not moved: it will not); -EINVAL (not open); or another negative errno
 * from FUTEX_WAIT.
 * Ordering: ABI.md waiting steps 1-3: acquire load of `futex` (pairs with
 * the release increment of commit step 6), then of `generation` (commit step
 * 5); no wake-up is lost.
 */
static inline int procbus_wait(struct procbus_reader *r, uint64_t since_generation, int timeout_ms)
{
    const struct procbus_header *h;
    struct timespec deadline, now, rel;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    h = procbus__hdr(r);
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        /* waiting step 1: pairs with the release increment of commit step 6
         * (pb_segment_wake), which follows the generation store of step 5 */
        uint32_t word = PROCBUS__LD_ACQ(&h->futex);
        uint64_t hb;
        long rc;

        /* waiting step 2: pairs with the release store of generation, commit step 5 */
        if (PROCBUS__LD_ACQ(&h->generation) != since_generation)
            return 0;
        /* pairs with the release store of SHUTDOWN/GONE in pb_segment_close/_create,
         * which follows the last commit: re-load generation after seeing it */
        hb = PROCBUS__LD_ACQ(&h->heartbeat_ns);
        if (hb == PROCBUS_HB_SHUTDOWN || hb == PROCBUS_HB_GONE)
            return PROCBUS__LD_ACQ(&h->generation) != since_generation ? 0 : -EPIPE;
        if (timeout_ms == 0)
            return -ETIMEDOUT;
        if (timeout_ms > 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            rel.tv_sec = deadline.tv_sec - now.tv_sec;
            rel.tv_nsec = deadline.tv_nsec - now.tv_nsec;
            if (rel.tv_nsec < 0) {
                rel.tv_sec--;
                rel.tv_nsec += 1000000000L;
            }
            if (rel.tv_sec < 0)
                return -ETIMEDOUT;
        }
        /* waiting step 3: FUTEX_WAIT (shared: the word lives in a file mapping);
         * the kernel re-checks the word, so a commit since step 1 gives EAGAIN */
        rc = syscall(SYS_futex, &h->futex, FUTEX_WAIT, word, timeout_ms > 0 ? &rel : NULL, NULL, 0);
        if (rc < 0 && errno != EAGAIN && errno != ETIMEDOUT)
            return -errno; /* EINTR: a signal; anything else: cannot wait here */
    }
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

#endif /* PROCBUS_H */
