/* procbus_pub.h - the publisher library: owns a segment, stages changes, commits by offset swap. */
#ifndef PROCBUS_PUB_H
#define PROCBUS_PUB_H

#include <stdint.h>
#include <sys/types.h>

#include "procbus_abi.h"

/*
 * One publisher owns one segment at a time (an exclusive flock on the file).
 * All functions here are for the one thread that owns the publisher, except
 * the registry lookups (see registry.h), which any registered RCU thread may
 * call. Nothing here ever waits for readers.
 *
 * Usage:
 *   procbus_pub_open(&p, &opts);
 *   rec.id = procbus_pub_new_id(p); ...; procbus_pub_upsert(p, &rec);
 *   procbus_pub_commit(p);          // all staged changes become visible at once
 *   procbus_pub_heartbeat(p);       // from a timer, more often than readers' stale_after
 *   procbus_pub_close(p, 0);        // readers then see PROCBUS_SHUTDOWN
 *
 * Errors are negative errno values.
 */

struct procbus_pub;
struct procbus_registry;

struct procbus_pub_opts {
    const char *segment;    /* name (/dev/shm/NAME) or path with '/'; NULL: $PROCBUS_SEGMENT
                               or "procbus" */
    uint32_t capacity;      /* max records in a snapshot; 0: PROCBUS_PUB_DEFAULT_CAPACITY */
    uint32_t reserve;       /* extra arena records for copy-on-write; 0: same as capacity */
    uint32_t snap_slots;    /* snapshot slots (a reader is lapped after this many commits
                               during one read); 0: PROCBUS_PUB_DEFAULT_SLOTS */
    uint32_t ring_capacity; /* events, rounded up to a power of two; 0: 4096 */
    unsigned mode;          /* file mode; 0: 0640 */
};

#define PROCBUS_PUB_DEFAULT_CAPACITY 4096u
#define PROCBUS_PUB_DEFAULT_SLOTS    8u
#define PROCBUS_PUB_DEFAULT_RING     4096u

/*
 * Create the segment and take ownership of the name. The segment is built
 * under a temporary name, fully allocated (a full tmpfs fails here with
 * -ENOSPC, never with SIGBUS later), initialised, its version word written
 * last, and only then linked at the name, so no reader ever opens a half-made
 * segment. If a segment already has the name:
 *   - its publisher still holds it (alive, or stopped but not dead): -EBUSY;
 *   - it is a procbus segment whose publisher is gone: it is marked
 *     PROCBUS_HB_GONE and atomically replaced; the new one has epoch + 1 and
 *     continues its generation and event sequence numbers;
 *   - it is not a procbus segment: -EEXIST, and it is left alone.
 * On success *out is set and 0 returned; on error *out is untouched.
 * Other errors: -EINVAL (bad options or name), -ENOMEM, -ENOSPC, -EACCES, ...
 */
int procbus_pub_open(struct procbus_pub **out, const struct procbus_pub_opts *opts);

/* Flags for procbus_pub_close. */
#define PROCBUS_PUB_UNLINK 0x1u /* remove the name too (readers see PROCBUS_GONE) */

/*
 * Mark the segment shut down cleanly (heartbeat PROCBUS_HB_SHUTDOWN; the last
 * snapshot stays readable), wake waiting readers, release the name and free
 * the publisher. Staged, uncommitted changes are discarded. NULL is a no-op.
 */
void procbus_pub_close(struct procbus_pub *p, unsigned flags);

/* A fresh record id: unique within this publisher's epoch, never 0. */
uint64_t procbus_pub_new_id(struct procbus_pub *p);

/*
 * Stage a record: insert (new id) or replace (known id) it. Nothing becomes
 * visible before procbus_pub_commit. The record is copied; its `size` is set
 * by the library and its strings are NUL-terminated. A new id stages a
 * PROCBUS_EV_ADD event, a state change a PROCBUS_EV_STATE event (each upsert
 * is compared with the previous staged or committed version).
 * Returns 0, -EINVAL (id 0, state out of range), -ENOSPC (the table is at
 * capacity, or this batch already changed more records than the reserve
 * holds: commit first; counted in records_dropped). When free arena records
 * run short, the ones only older snapshots still show are recycled early
 * (see procbus_pub_forced_laps), so a batch may always change up to
 * `reserve` records.
 * Cost: O(1), independent of the table size.
 */
int procbus_pub_upsert(struct procbus_pub *p, const struct procbus_proc *rec);

/* Stage the removal of record `id` (a PROCBUS_EV_REMOVE event). 0 or -ENOENT. */
int procbus_pub_remove(struct procbus_pub *p, uint64_t id);

/*
 * Stage an extra event about record `rec` (e.g. PROCBUS_EV_EXEC) to be written
 * with the next commit. Returns 0, -EINVAL (kind unknown) or -ENOMEM.
 */
int procbus_pub_event(struct procbus_pub *p, uint16_t kind, const struct procbus_proc *rec);

/*
 * Copy the staged (latest) version of record `id` into *out. 0 or -ENOENT.
 * Publisher thread only; other threads use the registry.
 */
int procbus_pub_get(const struct procbus_pub *p, uint64_t id, struct procbus_proc *out);

/*
 * Make everything staged visible at once: write the staged events to the ring,
 * rewrite the oldest snapshot slot (only the entries changed since that slot
 * was last written), store its offset and the new generation into `current`
 * with release order, advance the ring head, wake waiters (FUTEX_WAKE), update
 * the registry. Never waits for readers. An empty commit is allowed (it still
 * moves the generation). Returns 0 or -ENOMEM (nothing was published).
 * Cost: O(changes in the last snap_slots commits), independent of table size.
 */
int procbus_pub_commit(struct procbus_pub *p);

/* Store CLOCK_MONOTONIC now as the heartbeat. Call from a timer. */
void procbus_pub_heartbeat(struct procbus_pub *p);

/* Add to the header's tracer_drops / events_dropped counters. */
void procbus_pub_count_drops(struct procbus_pub *p, uint64_t tracer_drops, uint64_t events_dropped);

/* Generation of the last commit; records currently staged or published. */
uint64_t procbus_pub_generation(const struct procbus_pub *p);
uint32_t procbus_pub_count(const struct procbus_pub *p);
uint64_t procbus_pub_epoch(const struct procbus_pub *p);
/* The path of the segment file (e.g. /dev/shm/procbus). */
const char *procbus_pub_path(const struct procbus_pub *p);

/*
 * How many times staging ran out of free arena records and recycled the ones
 * only older snapshot slots still showed, invalidating those slots (readers
 * inside them retry on the current snapshot). Frequent forced laps mean the
 * reserve is small for the change rate: raise procbus_pub_opts.reserve.
 */
uint64_t procbus_pub_forced_laps(const struct procbus_pub *p);

/* The lock-free registry mirroring committed records (see registry.h). */
struct procbus_registry *procbus_pub_registry(struct procbus_pub *p);

/*
 * Fail points for crash tests: the publisher SIGKILLs itself at that point of
 * the next commit. PROCBUS_FP_MID_SNAPSHOT: half-way through rewriting the
 * snapshot slot; PROCBUS_FP_BEFORE_SWAP: slot written, `current` not yet stored.
 */
enum procbus_failpoint { PROCBUS_FP_NONE = 0, PROCBUS_FP_MID_SNAPSHOT, PROCBUS_FP_BEFORE_SWAP };
void procbus_pub_set_failpoint(struct procbus_pub *p, enum procbus_failpoint fp);

#endif /* PROCBUS_PUB_H */
