/* segment.h - create, size, lock and atomically install a segment file under its name. */
#ifndef PROCBUS_SEGMENT_H
#define PROCBUS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "procbus_abi.h"

/* Geometry the caller asks for; pb_segment_layout fills in the rest. */
struct pb_geometry {
    uint32_t capacity, arena_slots, snap_slots, ring_capacity, buckets, snap_slot_size;
    uint64_t snap_off, arena_off, ring_off, size;
};

/* What the previous owner of the name left, when the segment replaces one. */
struct pb_predecessor {
    int present;
    uint64_t epoch, generation, ring_head;
};

struct pb_segment {
    int fd; /* holds LOCK_EX for the publisher's lifetime */
    unsigned char *base;
    size_t size;
    char path[4096];
};

/*
 * Compute offsets and sizes for `capacity` records, `arena_slots` arena
 * records, `snap_slots` slots and `ring_capacity` events. -EINVAL if out of
 * the ABI's limits.
 */
int pb_segment_layout(struct pb_geometry *g);

/*
 * Resolve a segment spec (NULL: $PROCBUS_SEGMENT or "procbus"; a path if it
 * contains '/', else /dev/shm/NAME) into path[cap]. 0 or -EINVAL/-ENAMETOOLONG.
 */
int pb_segment_resolve(const char *spec, char *path, size_t cap);

/*
 * Build a segment at a temporary name beside `path`, fully allocated, locked
 * and zeroed, with the header's geometry and identity filled in but not the
 * version word. `init` is then called to write the initial snapshot, the
 * version word is stored (release), and the file is installed at `path`
 * (link, or rename over a dead predecessor, which is first marked GONE).
 * Errors: -EBUSY (the name is held by a live publisher), -EEXIST (the name is
 * not a procbus segment), -ENOSPC, and any errno from the file calls.
 */
int pb_segment_create(
    struct pb_segment *seg, const char *path, unsigned mode, const struct pb_geometry *g,
    void (*init)(struct pb_segment *seg, const struct pb_predecessor *pred, void *arg), void *arg);

/* Mark the segment shut down (or GONE and unlinked with `unlink_it`), wake readers, unmap. */
void pb_segment_close(struct pb_segment *seg, int unlink_it);

/* Bump the futex word and FUTEX_WAKE every waiter. */
void pb_segment_wake(struct pb_segment *seg);

/* CLOCK_MONOTONIC / CLOCK_REALTIME / CLOCK_BOOTTIME now, in ns. */
uint64_t pb_now_mono(void);
uint64_t pb_now_real(void);
uint64_t pb_now_boot(void);

#endif /* PROCBUS_SEGMENT_H */
