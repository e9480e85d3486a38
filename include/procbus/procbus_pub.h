/* procbus_pub.h - the publisher library: owns a segment, stages changes, commits by offset swap. */
#ifndef PROCBUS_PUB_H
#define PROCBUS_PUB_H

#include <stdint.h>
#include <sys/types.h>

#include "procbus_abi.h"

/*
 * One publisher owns one segment at a time (an exclusive flock on the file)
 * and never waits for readers.
 *
 * Context: every function here is for the publisher's owning thread - the
 * one that called procbus_pub_open, which registers it as an RCU thread for
 * the registry - unless its block says otherwise; calls on one publisher are
 * never concurrent. The registry lookups (registry.h) are for any registered
 * RCU thread.
 *
 * Ordering: procbus_pub_commit implements the commit protocol of docs/ABI.md
 * (steps 1-6); readers see a commit whole or not at all.
 *
 * Usage:
 *   rc = procbus_pub_open(&p, &opts);
 *   rec.id = procbus_pub_new_id(p); ...; rc = procbus_pub_upsert(p, &rec);
 *   rc = procbus_pub_commit(p);     // all staged changes become visible at once
 *   procbus_pub_heartbeat(p);       // from a timer, more often than readers' stale_after
 *   procbus_pub_close(p, 0);        // readers then see PROCBUS_SHUTDOWN
 *
 * Errors are negative errno values. Functions marked PROCBUS_MUST_CHECK fail
 * in ways the caller must handle (a change not staged, a commit not made).
 */

#ifdef __cplusplus
extern "C" {
#endif

struct procbus_pub;
struct procbus_registry;

struct procbus_pub_opts {
    const char *segment;            /* resolved by procbus_segment_path (procbus.h): NULL or "":
                                       $PROCBUS_SEGMENT, else "procbus"; a path if it contains '/';
                                       else /dev/shm/NAME */
    uint32_t capacity;              /* max records in a snapshot; 0: PROCBUS_PUB_DEFAULT_CAPACITY */
    uint32_t reserve;               /* extra arena records for copy-on-write; 0: same as capacity */
    uint32_t snap_slots;            /* snapshot slots (a reader is lapped after this many commits
                                       during one read); 0: PROCBUS_PUB_DEFAULT_SLOTS */
    uint32_t ring_capacity;         /* events, rounded up to a power of two; 0: 4096 */
    unsigned mode;                  /* file mode: 0600, 0640 or 0644 (never writable by others, who
                                       could forge states or truncate it); 0: 0640 */
    int set_group;                  /* 1: give the file group `group` (fchown; the caller must be
                                       allowed to, e.g. root or a member); 0: the caller's group */
    uint32_t group;                 /* the gid, with set_group */
    uint64_t heartbeat_interval_ns; /* how often the caller will call procbus_pub_heartbeat,
                                       stated in the header for readers' stale threshold
                                       (procbus_stale_after_ns); 0: not stated (readers use
                                       PROCBUS_STALE_AFTER_NS); at most PROCBUS_MAX_HEARTBEAT_NS */
    unsigned flags;                 /* PROCBUS_PUB_INHERIT; 0: none */
};

/* procbus_pub_opts.flags: take over a crashed predecessor's records (procbus_pub_predecessor). */
#define PROCBUS_PUB_INHERIT 0x1u

#define PROCBUS_PUB_DEFAULT_CAPACITY 4096u
#define PROCBUS_PUB_DEFAULT_SLOTS    8u
#define PROCBUS_PUB_DEFAULT_RING     4096u

/*
 * procbus_pub_open - create the segment and take ownership of the name. The
 * segment is built under a temporary name, fully allocated (a full tmpfs
 * fails here with -ENOSPC, never with SIGBUS later), initialised, its version
 * word written last, and only then linked at the name (ABI.md creation steps
 * 1-3), so no reader ever opens a half-made segment. If a segment already has
 * the name:
 *   - its publisher still holds it (alive, or stopped but not dead): -EBUSY;
 *   - it is a procbus segment whose publisher is gone: it is marked
 *     PROCBUS_HB_GONE and atomically replaced; the new one has epoch + 1 and
 *     continues its generation and event sequence numbers;
 *   - it is not a procbus segment: -EEXIST, and it is left alone.
 * Context: the calling thread becomes the owning thread (registered as an RCU
 * thread unless it already was). System calls: the file calls of creation.
 * Returns: 0 with *out set; on error *out is untouched and nothing is left
 * behind. Errors: -EINVAL (out NULL, bad options, ring or geometry beyond the
 * ABI's limits, heartbeat_interval_ns above PROCBUS_MAX_HEARTBEAT_NS, name "."
 * or ".."), -ENAMETOOLONG (name or path too long),
 * -EBUSY, -EEXIST, -ENOMEM, -ENOSPC, -ELOOP (a symlink at the name), -EACCES,
 * or another errno of the file calls.
 */
PROCBUS_MUST_CHECK int procbus_pub_open(struct procbus_pub **out,
                                        const struct procbus_pub_opts *opts);

/* Flags for procbus_pub_close. */
#define PROCBUS_PUB_UNLINK 0x1u /* remove the name too (readers see PROCBUS_GONE) */
#define PROCBUS_PUB_ABANDON                                                              \
    0x2u /* leave the segment as a publisher that died leaves it: no shutdown mark, the  \
          * heartbeat goes stale, the lock is released; a successor inherits its records \
          * (PROCBUS_PUB_INHERIT). For a publisher that must not claim a clean shutdown  \
          * (its processes still run, unsupervised) */

/*
 * procbus_pub_close - mark the segment shut down cleanly (heartbeat
 * PROCBUS_HB_SHUTDOWN; the last snapshot stays readable) or, with
 * PROCBUS_PUB_UNLINK, GONE and unlinked (with PROCBUS_PUB_ABANDON: neither,
 * as a publisher that died would); wake waiting readers, release the
 * name and free the publisher and its registry. Staged, uncommitted changes
 * are discarded. NULL is a no-op.
 * Context: the owning thread, once no other thread uses the registry; waits
 * for an RCU grace period; unregisters the thread if procbus_pub_open
 * registered it. System calls: munmap, close, futex (and stat, unlink).
 * Cannot fail (errors of the file calls are ignored: nothing is left to undo).
 * Ordering: the heartbeat store is a release store after the last commit
 * (pb_segment_close): a reader that sees SHUTDOWN sees the last commit.
 */
void procbus_pub_close(struct procbus_pub *p, unsigned flags);

/*
 * A fresh record id: unique within this publisher's epoch, never 0.
 * Context: the owning thread. Cannot fail. Ordering: none (private counter).
 */
uint64_t procbus_pub_new_id(struct procbus_pub *p);

/*
 * procbus_pub_upsert - stage a record: insert (new id) or replace (known id)
 * it. Nothing becomes visible before procbus_pub_commit. The record is
 * copied; its `size` is set by the library and its strings are
 * NUL-terminated. A new id stages a PROCBUS_EV_ADD event, a state change a
 * PROCBUS_EV_STATE event (each upsert is compared with the previous staged or
 * committed version); an event that cannot be staged (no memory) is counted
 * in events_dropped, the record is staged all the same. When free arena
 * records run short, the ones only older snapshots still show are recycled
 * early (see procbus_pub_forced_laps), so a batch may always change up to
 * `reserve` records.
 * Context: the owning thread. No system call, never waits.
 * Returns: 0; -EINVAL (p or rec NULL, id 0, state or exit_kind out of range);
 * -ENOSPC (the table is at capacity, or this batch already changed more
 * records than the reserve holds: commit first; counted in records_dropped);
 * -ENOMEM. On error nothing was staged.
 * Ordering: none: staging writes arena records no snapshot refers to; readers
 * see them only through procbus_pub_commit.
 * Cost: O(1), independent of the table size.
 */
PROCBUS_MUST_CHECK int procbus_pub_upsert(struct procbus_pub *p, const struct procbus_proc *rec);

/*
 * procbus_pub_remove - stage the removal of record `id` (with a
 * PROCBUS_EV_REMOVE event, counted in events_dropped if it cannot be staged).
 * Context: the owning thread. No system call.
 * Returns: 0; -EINVAL (p NULL, id 0); -ENOENT (no such record staged or
 * committed); -ENOMEM. On error nothing was staged.
 * Ordering: none until procbus_pub_commit.
 */
int procbus_pub_remove(struct procbus_pub *p, uint64_t id);

/*
 * procbus_pub_event - stage an extra event about record `rec` (e.g.
 * PROCBUS_EV_EXEC) to be written with the next commit.
 * Context: the owning thread. No system call.
 * Returns: 0; -EINVAL (p or rec NULL, kind not PROCBUS_EV_ADD..EXEC);
 * -ENOMEM (the event is lost and counted in events_dropped; a relaxed add).
 * Ordering: none until procbus_pub_commit.
 */
int procbus_pub_event(struct procbus_pub *p, uint16_t kind, const struct procbus_proc *rec);

/*
 * procbus_pub_get - copy the staged (latest) version of record `id` into *out.
 * Context: the owning thread; other threads use the registry.
 * Returns: 0, or -ENOENT (*out untouched). Ordering: none (private memory).
 */
PROCBUS_MUST_CHECK int procbus_pub_get(const struct procbus_pub *p, uint64_t id,
                                       struct procbus_proc *out);

/*
 * procbus_pub_commit - make everything staged visible at once, as ABI.md
 * numbers the steps: (1) write the staged events to the ring; (2) open the
 * oldest snapshot slot (gen = 0, release fence); (3) rewrite only the entries
 * changed since that slot was last written; (4) close it (gen = g, release);
 * (5) the swap: store its offset and the new generation into `current`
 * (release), then `generation` and `ring_head`; (6) wake waiters
 * (FUTEX_WAKE). Then the registry is updated. Never waits for readers. An
 * empty commit is allowed (it still moves the generation).
 * Context: the owning thread (an RCU-registered thread). System call: futex.
 * Returns: 0, or -ENOMEM: the registry could not set aside memory for the
 * batch. That is checked before step 1, so a failed commit published nothing:
 * the segment, the registry and the staged batch are as they were, and a
 * later commit (the caller may retry, or stage more first) publishes it.
 * Cost: O(changes in the last snap_slots commits), independent of table size.
 */
PROCBUS_MUST_CHECK int procbus_pub_commit(struct procbus_pub *p);

/*
 * procbus_pub_heartbeat - store CLOCK_MONOTONIC now as the heartbeat. Call
 * from a timer, more often than readers' stale threshold.
 * Context: the owning thread, or any thread while the publisher is open (one
 * atomic store). System call: none with a vDSO clock. Cannot fail.
 * Ordering: a release store, pairing with the acquire load in
 * procbus_liveness (ABI.md "Heartbeat and liveness").
 */
void procbus_pub_heartbeat(struct procbus_pub *p);

/*
 * procbus_pub_keep_name - make sure the segment is still at its name, and put
 * it back when it is not. A segment file can be removed behind the publisher
 * (rm, a tmp cleaner, systemd-logind's RemoveIPC= removing a non-root user's
 * /dev/shm files at logout); readers would then find no segment, and a second
 * publisher could start on the name. A removed file cannot be linked again,
 * so the segment is re-created at the name as a takeover of itself: a new
 * file with the same records, snapshots and events, epoch + 1, an EPOCH event
 * after the last one; the old file is marked GONE, so readers that still map
 * it follow to the new one (procbus_follow). Call it from a timer (procbusd:
 * every heartbeat).
 * Context: the owning thread, between commits. System calls: stat, fstat;
 * when the name is gone, the file calls of creation (as procbus_pub_open).
 * Returns: 0 (the name is ours); 1 (it was re-created: compare
 * procbus_pub_epoch); -EBUSY (another live publisher has the name now: ours
 * stays readable only by path); -EEXIST/-EPERM (something else is at the
 * name, left alone); or another negative errno of creation. On error the
 * publisher carries on in its current file.
 * Ordering: the new file is complete before its name appears (creation steps
 * 1-3); the GONE store on the old one follows (release).
 */
PROCBUS_MUST_CHECK int procbus_pub_keep_name(struct procbus_pub *p);

/*
 * procbus_pub_set_heartbeat_interval - state a new heartbeat period (e.g. after
 * a reload), as procbus_pub_opts.heartbeat_interval_ns does at open; values
 * above PROCBUS_MAX_HEARTBEAT_NS are stored as that. Call it before the first
 * beat at the new period when the period grows, so no reader calls the
 * publisher stale in between.
 * Context: the owning thread. No system call. Cannot fail.
 * Ordering: a relaxed store (readers load it relaxed: it only steers their
 * verdict); no-op when the value does not change.
 */
void procbus_pub_set_heartbeat_interval(struct procbus_pub *p, uint64_t interval_ns);

/*
 * Add to the header's tracer_drops / events_dropped counters.
 * Context: any thread while the publisher is open. Cannot fail.
 * Ordering: none (relaxed atomic adds).
 */
void procbus_pub_count_drops(struct procbus_pub *p, uint64_t tracer_drops, uint64_t events_dropped);

/*
 * Add `bytes` to the header's log_bytes_lost counter (ABI 1.2): program
 * output the publisher read but could not write to a log file.
 * Context: any thread while the publisher is open. Cannot fail.
 * Ordering: none (a relaxed atomic add; readers load it relaxed).
 */
void procbus_pub_count_log_lost(struct procbus_pub *p, uint64_t bytes);

/*
 * The generation of the last commit; the number of records staged or
 * published; this segment's epoch; the path of the segment file (e.g.
 * /dev/shm/procbus, valid until procbus_pub_close).
 * Context: the owning thread. Cannot fail. Ordering: none (private state).
 */
uint64_t procbus_pub_generation(const struct procbus_pub *p);
uint32_t procbus_pub_count(const struct procbus_pub *p);
uint64_t procbus_pub_epoch(const struct procbus_pub *p);
const char *procbus_pub_path(const struct procbus_pub *p);

/*
 * How many times staging ran out of free arena records and recycled the ones
 * only older snapshot slots still showed, invalidating those slots (readers
 * inside them retry on the current snapshot). Frequent forced laps mean the
 * reserve is small for the change rate: raise procbus_pub_opts.reserve.
 * Context: the owning thread. Cannot fail. Ordering: none.
 */
uint64_t procbus_pub_forced_laps(const struct procbus_pub *p);

/*
 * The lock-free registry mirroring committed records (see registry.h).
 * Context: any thread; the pointer is valid until procbus_pub_close.
 * Cannot fail. Ordering: none (see registry.h for the lookups').
 */
struct procbus_registry *procbus_pub_registry(struct procbus_pub *p);

/*
 * Fail points for crash tests: the publisher SIGKILLs itself at that point of
 * the next commit. PROCBUS_FP_MID_SNAPSHOT: half-way through commit step 3
 * (rewriting the snapshot slot); PROCBUS_FP_BEFORE_SWAP: after step 4 (slot
 * written), before step 5 (`current` not yet stored).
 * Context: the owning thread; tests only. Cannot fail. Ordering: none.
 */
enum procbus_failpoint { PROCBUS_FP_NONE = 0, PROCBUS_FP_MID_SNAPSHOT, PROCBUS_FP_BEFORE_SWAP };
void procbus_pub_set_failpoint(struct procbus_pub *p, enum procbus_failpoint fp);

/*
 * ---- Crash-only publishers: taking over from a dead one, upgrading in place ----
 *
 * With PROCBUS_PUB_INHERIT, a procbus_pub_open that replaces a predecessor which died without
 * a clean shutdown (its heartbeat is neither PROCBUS_HB_SHUTDOWN nor PROCBUS_HB_GONE) starts
 * the new segment with that predecessor's last records, ids kept: the new segment's very first
 * snapshot (epoch + 1) shows them, so a publisher killed again at any instruction leaves them
 * to its own successor. New ids continue after the largest inherited one. The caller then
 * updates (procbus_pub_upsert) or removes them as it finds the processes they describe.
 */

/* What procbus_pub_open found at the name (procbus_pub_predecessor). */
struct procbus_pub_pred {
    int present;       /* a procbus segment was at the name and was replaced */
    int crashed;       /* ... and its publisher died without a clean shutdown */
    uint64_t epoch;    /* its epoch (0: not valid enough to continue) */
    int32_t pid;       /* its publisher's pid and start (header), as it wrote them */
    uint64_t start_ns; /* CLOCK_BOOTTIME-based, clock-tick resolution */
    size_t nrecs;      /* the records inherited (PROCBUS_PUB_INHERIT and crashed; else 0) */
    const struct procbus_proc *recs; /* their content at the takeover, until released */
};

/*
 * procbus_pub_predecessor - what procbus_pub_open replaced, into *out (zeroed when nothing was
 * at the name, or after procbus_pub_resume). out->recs stays valid until
 * procbus_pub_predecessor_release or procbus_pub_close.
 * Context: the owning thread. Cannot fail. Ordering: none (private copy).
 */
void procbus_pub_predecessor(const struct procbus_pub *p, struct procbus_pub_pred *out);

/* Free the copy of the inherited records (out->recs of procbus_pub_predecessor). */
void procbus_pub_predecessor_release(struct procbus_pub *p);

/*
 * procbus_pub_fd - the segment file's descriptor, which holds the publisher's lock. A publisher
 * that re-executes itself (an in-place upgrade) clears its close-on-exec flag, execs, and the
 * new image calls procbus_pub_resume with it: the lock is never released, so no other publisher
 * can take the name in between and readers see no shutdown.
 * Context: the owning thread. Cannot fail (-1 when closed).
 */
int procbus_pub_fd(const struct procbus_pub *p);

/*
 * procbus_pub_resume - continue publishing into the segment held by `fd` (procbus_pub_fd of the
 * image before an execve, lock held, at `path`, the resolved segment path) from its current
 * snapshot: same epoch, generations and event sequence go on, ids continue after
 * max(next_id, every id in the snapshot). Nothing staged before the exec survives (commit
 * first). Older snapshot slots are invalidated (readers in them retry on the current one).
 * opts: heartbeat_interval_ns and flags are used; geometry comes from the segment.
 * Context: the calling thread becomes the owning thread, as procbus_pub_open.
 * Returns: 0 with *out; -EBADF, -ENOLCK (fd does not hold the lock), -ESTALE (not the file at
 * `path` any more), -EPROTO (not a segment this build continues), -ENOMEM.
 */
PROCBUS_MUST_CHECK int procbus_pub_resume(struct procbus_pub **out, int fd, const char *path,
                                          uint64_t next_id, const struct procbus_pub_opts *opts);

/* The last id procbus_pub_new_id handed out (for procbus_pub_resume after an exec). */
uint64_t procbus_pub_last_id(const struct procbus_pub *p);

/*
 * procbus_pub_committed - whether what readers see now (the last committed snapshot in the
 * mapping) has record `id` with process `pid` in a state with a process (STARTING, RUNNING,
 * READY, STOPPING). For a forked child of the publisher, which shares the mapping and must
 * decide alone, after the publisher died, whether its run had been published.
 * Context: any thread or a forked child; reads the mapping as a reader does (procbus.h), no
 * lock, no system call, no allocation.
 * Returns: 1 if so; 0 if not, or if the snapshot cannot be read (a torn read retried too often).
 */
int procbus_pub_committed(const struct procbus_pub *p, uint64_t id, int32_t pid);

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_PUB_H */
