/* segment.h - create, size, lock and atomically install a segment file under its name. */
#ifndef PROCBUS_SEGMENT_H
#define PROCBUS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "procbus_abi.h"

/* The most index buckets the ABI allows (readers refuse more): 2 x PROCBUS_MAX_CAPACITY. */
#define PB_MAX_BUCKETS (2ull * PROCBUS_MAX_CAPACITY)

/* Geometry the caller asks for (buckets 0: pb_segment_layout chooses); pb_segment_layout fills in
 * the rest. */
struct pb_geometry {
    uint32_t capacity, arena_slots, snap_slots, ring_capacity, buckets, snap_slot_size;
    uint64_t snap_off, arena_off, ring_off, size;
};

/*
 * What the previous owner of the name left, when the segment replaces one.
 * `inherit` is set only when the predecessor passed the reader's validation
 * (procbus_attach) and its numbers leave room to continue (each below
 * PB_INHERIT_MAX): a crafted or corrupt predecessor is replaced as if the name
 * were fresh (epoch 1), never continued into a wrapped epoch or a sequence
 * that runs into PROCBUS_SEQ_BUSY.
 */
struct pb_predecessor {
    int present, inherit;
    uint64_t epoch, generation, ring_head;
    /* With PB_SEG_KEEP_RECORDS, for a predecessor that passed validation: whether it died
     * without a clean shutdown (its heartbeat is neither SHUTDOWN nor GONE), its publisher's pid
     * and start (header), and, when it crashed, a malloc'd copy of its last snapshot's records
     * (recs[nrecs]; the init callback may take ownership by setting recs to NULL). */
    int crashed;
    int32_t pid;
    uint64_t start_ns;
    struct procbus_proc *recs;
    size_t nrecs;
};
#define PB_INHERIT_MAX (1ULL << 62)

/* pb_segment_create flags. */
#define PB_SEG_KEEP_RECORDS 0x1u /* copy a crashed predecessor's records into pred->recs */
/*
 * The segment file of one publisher. Paths are resolved by the one
 * segment-name rule, procbus_segment_path (include/procbus/procbus.h), before
 * they reach this module. Context for everything here: the publisher's own
 * thread (nothing is locked; one struct pb_segment per publisher).
 */
struct pb_segment {
    int fd; /* holds LOCK_EX for the publisher's lifetime */
    unsigned char *base;
    size_t size;
    unsigned mode; /* file mode */
    long long gid; /* file group, -1: the creator's */
    char path[PROCBUS_PATH_MAX];
};

/*
 * Compute offsets and sizes for g->capacity records, g->arena_slots arena
 * records, g->snap_slots slots and g->ring_capacity events; fills in the rest
 * of *g. g->buckets 0: the index gets 4 x capacity buckets (rounded up to a
 * power of two) when the segment can address them, else 2 x; non-zero: that
 * count (a taken-over segment's), checked against the ABI's limits.
 * Context: any thread; pure computation.
 * Returns: 0, or -EINVAL (out of the ABI's limits; *g partly written).
 */
PROCBUS_MUST_CHECK int pb_segment_layout(struct pb_geometry *g);

/*
 * Build a segment at a temporary name beside `path` (".procbus-tmp.PID.RANDOM"
 * in the same directory, O_EXCL: a file someone put there is skipped for
 * another random name), fully allocated, locked and zeroed, with the
 * header's geometry and identity filled in but not the version word (ABI.md
 * creation step 1). `init` is then called to write the initial snapshot; the
 * version word is stored with release order (creation step 2) and the file is
 * installed at `path` (creation step 3: link, or rename over a dead
 * predecessor, which is first marked GONE with release order and whose
 * waiters are woken after the rename).
 * The folder must be one only trusted users can change (owned by root or the
 * caller, not group/world-writable unless sticky: procbus__trusted_dir);
 * PROCBUS_RUN_DIR is created (0755, the caller's) when missing, and made
 * 0755 when it is ours with less (readers of other users must reach it).
 * A predecessor must be a regular file of the caller's own user (another
 * user's file at the name is never opened for writing nor continued); one
 * that fails validation is replaced without inheriting (struct
 * pb_predecessor).
 * The file gets `mode` and, when gid >= 0, group `gid` (fchown).
 * Context: the publisher's thread; `path` resolved by procbus_segment_path
 * and containing '/'. `init` runs before any reader can see the file.
 * Returns: 0 with *seg filled in (fd locked, base mapped); on error *seg's
 * fields are unspecified but it holds no resource (nothing mapped, no
 * descriptor) and the temporary file is gone. Errors: -EINVAL (path without
 * '/' or too long), -EBUSY (the name is held by a live publisher, or
 * installation lost eight races), -EEXIST (the name is not a procbus
 * segment), -EPERM (the name is another user's file, or the folder is not
 * safe), -ENOTDIR, -ENOSPC (the file system is full), and any errno from the
 * file calls (-EACCES, -ELOOP for a symlink at the name, ...).
 */
PROCBUS_MUST_CHECK int pb_segment_create(struct pb_segment *seg, const char *path, unsigned mode,
                                         long long gid, const struct pb_geometry *g, unsigned flags,
                                         void (*init)(struct pb_segment *seg,
                                                      struct pb_predecessor *pred, void *arg),
                                         void *arg);

/*
 * Take over a segment file this process already holds (`fd`, locked LOCK_EX, inherited across
 * an execve by a publisher upgrading itself in place: procbus_pub_resume): map it, check it is
 * still the file at `path`, fill *seg. Nothing in the file changes.
 * Returns 0, or a negative errno: -EBADF (fd not open), -ENOLCK (this process does not hold
 * its lock), -EPROTO (not a segment this build can continue), mmap's error.
 */
PROCBUS_MUST_CHECK int pb_segment_resume(struct pb_segment *seg, int fd, const char *path);

/* Unmap a resumed segment that will not be used after all, leaving its descriptor (and lock)
 * to the caller and the file as it is. */
void pb_segment_forget(struct pb_segment *seg);

/*
 * Is the file at seg->path still this segment? 1 yes, 0 no (removed, or
 * another file there), or a negative errno of stat other than ENOENT.
 * Context: the publisher's thread. System calls: stat, fstat.
 */
int pb_segment_at_name(const struct pb_segment *seg);

/*
 * Retire a segment that is no longer at its name (pb_segment_at_name said
 * 0, and a successor was installed): mark it GONE (release), wake its
 * waiters, unmap and release the lock, without touching the name.
 * Context: the publisher's thread, after its last commit into `seg`.
 * Ordering: as pb_segment_close.
 */
void pb_segment_retire(struct pb_segment *seg);

/*
 * Mark the segment shut down (heartbeat PROCBUS_HB_SHUTDOWN), or with
 * `unlink_it` GONE and unlinked (only if the name still points at this file),
 * wake every waiter, unmap and release the lock. A closed or never-created
 * segment (base NULL) is left alone.
 * Context: the publisher's thread, after its last commit.
 * Ordering: the heartbeat store is a release store after the last commit; it
 * pairs with the acquire loads of heartbeat_ns in procbus_liveness and
 * procbus_wait. Then futex += 1 (release) and FUTEX_WAKE, as pb_segment_wake.
 */
void pb_segment_close(struct pb_segment *seg, int unlink_it);

/*
 * Bump the futex word (release) and FUTEX_WAKE every waiter: ABI.md commit
 * step 6. Context: the publisher's thread. System call: futex.
 * Ordering: the increment pairs with the acquire load of `futex` in waiting
 * step 1 (procbus_wait); it follows the generation store of commit step 5.
 */
void pb_segment_wake(struct pb_segment *seg);

/* CLOCK_MONOTONIC / CLOCK_REALTIME / CLOCK_BOOTTIME now, in ns. Any thread; vDSO clock_gettime. */
uint64_t pb_now_mono(void);
uint64_t pb_now_real(void);
uint64_t pb_now_boot(void);

#endif /* PROCBUS_SEGMENT_H */
