/* procbus_snapshot.h - validating a segment and reading consistent snapshots (no system call). */
#ifndef PROCBUS_SNAPSHOT_H
#define PROCBUS_SNAPSHOT_H

#include "procbus_core.h"
#include "procbus_section.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * Look a key up in one index of the current snapshot and copy the record out:
 * a section (procbus_section.h) around one lookup and one copy. by_pid: match
 * on pid, else on name. Returns 0 (copied), -ENOENT, -EAGAIN, -EBADMSG or
 * -EINVAL; r->last_gen moves only on 0.
 */
static inline int procbus__lookup(struct procbus_reader *r, int by_pid, uint32_t key,
                                  const char *name, struct procbus_proc *out)
{
    struct procbus_section s;
    const struct procbus_proc *p;
    uint64_t last = r == NULL ? 0 : r->last_gen;
    int rc;

    if (r == NULL || r->base == NULL || out == NULL)
        return -EINVAL;
    procbus_section_begin(r, &s);
    do {
        p = s.look == NULL ? NULL
            : by_pid       ? procbus__find(&s, r->pid_off, 1, key, NULL)
                           : procbus__find(&s, r->name_off, 0, key, name);
        if (p != NULL)
            procbus_section_copy(&s, p, out);
    } while ((rc = procbus_section_retry(&s)) > 0);
    if (rc == 0 && p == NULL) {
        r->last_gen = last; /* -ENOENT is not a read of a record */
        rc = -ENOENT;
    }
    return rc;
}

/* ---- the API: snapshots ---- */

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
 * with *count set to the number needed (out may be NULL with cap 0 to ask);
 * on any other error *count is 0 (when count is not NULL).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOSPC; -EAGAIN; -EBADMSG; -EINVAL (r or count NULL, out NULL
 * with cap > 0, not open). out[] is unspecified unless 0 is returned.
 * Ordering: read steps 1-4: every record copied comes from the same snapshot.
 */
PROCBUS_MUST_CHECK static inline int
procbus_list(struct procbus_reader *r, struct procbus_proc *out, size_t cap, size_t *count)
{
    struct procbus_section s;
    uint64_t last;
    uint32_t n, i;
    int rc;

    if (count != NULL)
        *count = 0; /* (also tells compilers that every return leaves it set) */
    if (r == NULL || r->base == NULL || count == NULL || (out == NULL && cap != 0))
        return -EINVAL;
    last = r->last_gen;
    procbus_section_begin(r, &s);
    do {
        n = procbus_section_count(&s);
        for (i = 0; n <= cap && i < n; i++) {
            const struct procbus_proc *p = procbus_section_at(&s, i);
            if (p == NULL || procbus_section_copy(&s, p, &out[i]) < 0)
                break; /* a bounds failure: -EBADMSG unless the attempt was torn */
        }
    } while ((rc = procbus_section_retry(&s)) > 0);
    if (rc < 0)
        return rc;
    *count = n;
    if (n > cap) {
        r->last_gen = last; /* nothing was read */
        return -ENOSPC;
    }
    return 0;
}

/*
 * procbus_read_generation - the generation of the snapshot the last
 * successful procbus_get_pid, procbus_get_name or procbus_list of `r` read:
 * what to label that data with (procbus_generation, read afterwards, may
 * already be newer). 0 before any successful read.
 * Context: an open reader (0 for NULL). No system call. Ordering: none (the
 * reader's own memory).
 */
static inline uint64_t procbus_read_generation(const struct procbus_reader *r)
{
    return r == NULL ? 0 : r->last_gen;
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
    out->log_bytes_lost = PROCBUS__LD(&h->log_bytes_lost);
    out->ring_head = PROCBUS__LD_ACQ(&h->ring_head); /* pairs with commit step 5 */
    out->ring_first = r->ring_first;
    out->publisher_pid = h->publisher_pid;
    out->capacity = r->capacity;
    out->ring_capacity = r->ring_cap;
    out->abi_minor = PROCBUS__LD(&h->version) & 0xffffu;
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_SNAPSHOT_H */
