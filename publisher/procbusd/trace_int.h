/* trace_int.h - what the trace module's files share: its process table and its two feeds. */
#ifndef PROCBUSD_TRACE_INT_H
#define PROCBUSD_TRACE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procbus_abi.h"
#include "trace.h"

/*
 * Files: trace.c (the table, the records, attribution, the trace.h
 * interface), trace_proc.c (the /proc feed: walks), trace_bpf.c (the eBPF
 * feed, built only with the tracer) or trace_nobpf.c (its stand-in, built only
 * without it). All of it runs on procbusd's loop thread; nothing blocks.
 * Record changes are staged (pbd_tp_stage counts them in t->staged); the
 * daemon commits what the interface hands it.
 */

struct proctrace;

/*
 * One process. Roots (programs' main processes) are kept to attribute their children and
 * for their exit time; a dead root stays (unpublished) until keep_exited_secs pass, for /proc
 * polling's attribution of orphans (trace_proc.c).
 */
struct pbd_tp {
    struct procbus_proc rec; /* as published (rec.id); a root: pid and program_id only */
    struct pbd_tp *hnext;    /* hash chain, by pid */
    struct pbd_tp *qnext, *qprev;
    uint64_t exit_mono; /* CLOCK_MONOTONIC of the exit (exited queue order) */
    uint64_t exit_boot; /* a root: the kernel's exit time (CLOCK_BOOTTIME), 0 if not seen */
    int32_t sid;        /* its session (/proc walks), 0 if not known */
    uint8_t alive, root, seen;
    uint8_t exact;       /* start_boot_ns is the kernel's (tracer), not /proc's clock-tick value */
    uint8_t provisional; /* EXITED without its exit event (a walk, a pid reuse): a later exit
                          * event for the same (pid, start) fills in the real status */
    uint8_t forked;      /* processes were recorded with it as their parent (reparent them at
                          * its exit) */
    uint8_t end_held;    /* a root whose exit event was read and whose end procbusd has not
                          * taken yet (pbd_trace_root_gone): the status lives only in this
                          * process, so the ring keeps the event (pbd_trace_committed) */
    uint64_t held_pos;   /* end_held: the ring position of its exit event */
    struct pbd_tp *held_next; /* end_held: the next such root, in ring order */
};

struct pbd_tracing {
    struct procbus_pub *pub;
    struct pbd_trace_opts o;
    enum pbd_trace mode;
    struct proctrace *pt; /* the eBPF tracer; NULL when not running (always, without it) */
    struct pbd_tp **tbl;
    size_t mask, count;
    struct pbd_tp *qhead, *qtail; /* exited records, oldest first */
    uint32_t staged, commit_every, capacity;
    uint64_t lost_seen, trackfail_seen;
    struct pbd_trace_stats stats;
    uint32_t root_exits; /* exit events of main processes read since pbd_trace_take_root_exits */
    uint32_t ends_held;  /* roots with end_held set: the ring keeps their exit events */
    struct pbd_tp *held; /* those roots, oldest event first */
    int reconcile_pending;
    uint64_t next_poll, last_walk, next_batch;
    uint64_t tick_ns;     /* /proc start-time resolution */
    int64_t boot_to_real; /* CLOCK_REALTIME - CLOCK_BOOTTIME, refreshed per batch */
    pid_t self;
};

/* Two start times (boot ns) of one process: equal within /proc's clock tick and a ms (a /proc
 * reading and the kernel's exact one differ by up to that). */
static inline int pbd_tp_same_start(const struct pbd_tracing *t, uint64_t a, uint64_t b)
{
    return (a > b ? a - b : b - a) < t->tick_ns + 1000000ull;
}

/* ---- trace.c: clocks ---- */

/* Measure CLOCK_REALTIME - CLOCK_BOOTTIME again (once per batch of events or walk). */
void pbd_trace_clock_sync(struct pbd_tracing *t);

/* A CLOCK_BOOTTIME ns value as CLOCK_REALTIME ns (the last pbd_trace_clock_sync's offset). */
uint64_t pbd_trace_to_real(const struct pbd_tracing *t, uint64_t boot_ns);

/* ---- trace.c: the table ---- */

/* The live process (or root) with this pid; NULL if none. */
struct pbd_tp *pbd_tp_find_live(const struct pbd_tracing *t, int32_t pid);

/*
 * The process (live first, else exited; never a root) that is (pid, start).
 * Two kernel start times must be equal; a start read from /proc has clock-tick
 * resolution, so it matches within a tick. `exact`: `start` is the kernel's.
 * NULL if none.
 */
struct pbd_tp *pbd_tp_find_exact(const struct pbd_tracing *t, int32_t pid, uint64_t start,
                                 int exact);

/*
 * A new live process record in the table (not staged yet): RUNNING, a
 * descendant of `program_id` (0: none, only kept with observe). NULL if it is
 * none of ours (program 0 without observe) or out of memory.
 */
struct pbd_tp *pbd_tp_track_new(struct pbd_tracing *t, int32_t pid, int32_t ppid,
                                uint64_t start_boot, uint64_t program_id, const char *comm);

/* The program a new process with parent `ppid` belongs to (0: none known); the live parent
 * into *par when par is not NULL (it is then marked `forked`). */
uint64_t pbd_tp_program_of_parent(struct pbd_tracing *t, int32_t ppid, const struct pbd_tp **par);

/* Live processes whose parent was `pid` now have `reaper` as parent (its exit reparented
 * them); staged. Nothing for reaper 0 (unknown). */
void pbd_tp_reparent(struct pbd_tracing *t, int32_t pid, int32_t reaper);

/* ---- trace.c: records ---- */

/*
 * Stage e's record (a new one gets an id, after the oldest exited records
 * left to make room). Commits by itself every t->commit_every changes (a
 * storm never outgrows the publisher's reserve). A refusal is logged, except
 * a full table (counted by the library in records_dropped).
 */
void pbd_tp_stage(struct pbd_tracing *t, struct pbd_tp *e);

/* Stage a PROCBUS_EV_EXEC event about `rec` (a failure is logged). */
void pbd_tp_exec_event(struct pbd_tracing *t, const struct procbus_proc *rec);

/* Mark e EXITED at `when_real` (CLOCK_REALTIME ns), queued to expire; the caller stages it. */
void pbd_tp_set_exited(struct pbd_tracing *t, struct pbd_tp *e, uint64_t when_real);

/* A process found gone without its exit being seen: EXITED, status unknown, staged, and
 * provisional (a later exit event of the same process fills the status in). */
void pbd_tp_vanished(struct pbd_tracing *t, struct pbd_tp *e);

/* Copy a NUL-separated argv of `len` bytes into r->cmdline, truncated to fit (the
 * PROCBUS_F_CMDLINE_TRUNCATED flag says so, as does `truncated` from the source). Empty
 * trailing arguments (the NUL padding of a rewritten argv) are dropped. */
void pbd_tp_set_cmdline(struct procbus_proc *r, const char *args, size_t len, int truncated);

/* ---- trace_proc.c: the /proc feed ---- */

/*
 * Walk /proc once: processes not in the table that belong (by their kernel tag
 * with the tracer, by their parent, or, for orphans procbusd adopted, by the
 * rules of trace_proc.c) get records (PROCBUS_F_PREEXISTING when `startup`);
 * known ones take in a rename, a new parent, and (polling only) an exec; table
 * entries /proc no longer shows become EXITED, status unknown, provisional.
 * With the tracer, the ring is read before and after the scan, so that only a
 * process whose exit event was lost can be found gone. Kernel threads are never
 * recorded. Clears t->reconcile_pending. Returns 0, or -ENOMEM / opendir's
 * negative errno (nothing changed).
 */
int pbd_trace_walk(struct pbd_tracing *t, int startup);

/* ---- trace_bpf.c (with the tracer) or trace_nobpf.c (without): the eBPF feed ---- */

/*
 * Start the eBPF tracer into t->pt (t->o: observe, ring_kb, batch_ms) and
 * follow procbusd's own forks (every program, from its start). Returns 0, or
 * a negative errno with a one-line reason in why (t->pt stays NULL); without
 * the tracer built in, -ENOTSUP ("this build has no eBPF tracer ...").
 */
int pbd_ebpf_open(struct pbd_tracing *t, char *why, size_t whylen);

/* The tracer's ring buffer fd to watch (EPOLLIN), or -1 when it is not running. */
int pbd_ebpf_fd(const struct pbd_tracing *t);

/*
 * Read every pending tracer event into the table (staged), note kernel losses
 * (counted in the segment's tracer_drops; t->reconcile_pending set so that
 * pbd_trace_tick walks /proc) and, with batch_ms, when to read again. Returns
 * the number of events read (0 when not running) or a negative errno.
 */
int pbd_ebpf_consume(struct pbd_tracing *t);

/* Follow `pid`'s forks from now on (a walk found it), with program `program_id` as its tag;
 * nothing when not running, or for an observed process of no program. */
void pbd_ebpf_track(struct pbd_tracing *t, pid_t pid, uint64_t program_id);

/* The program the kernel's tracked set gives `pid` (its tag), 0 if none or not running. */
uint64_t pbd_ebpf_tag(const struct pbd_tracing *t, pid_t pid);

/* The tag of the next process procbusd forks (0 after the fork); nothing when not running. */
void pbd_ebpf_spawn_tag(struct pbd_tracing *t, uint64_t program_id);

/* Hand the tracer's ring back up to what was read (proctrace_release), keeping the exit events
 * of roots whose end is held (t->held); 1 if events are waiting unannounced. 0 when not
 * running. */
int pbd_ebpf_release(struct pbd_tracing *t);

/* Hold root e's end: its exit event (the one being read) stays in the ring until
 * pbd_trace_root_gone. */
void pbd_tp_hold_end(struct pbd_tracing *t, struct pbd_tp *e, uint64_t ring_pos);

/* Whether the tracer was taken over from a pinned set / is pinned; unpin it. */
int pbd_ebpf_reused(const struct pbd_tracing *t);
int pbd_ebpf_pinned(const struct pbd_tracing *t);
void pbd_ebpf_unpin(struct pbd_tracing *t);

/* Stop the tracer (t->pt); nothing when not running. */
void pbd_ebpf_close(struct pbd_tracing *t);

#endif /* PROCBUSD_TRACE_INT_H */
