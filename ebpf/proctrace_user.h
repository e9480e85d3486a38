/* proctrace_user.h - loader library of the eBPF exec/exit/fork tracer (libbpf, skeleton). */
#ifndef PROCTRACE_USER_H
#define PROCTRACE_USER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proctrace.h"

struct proctrace;

/* Exit detection (proctrace_opts.exit_mode). */
enum proctrace_exit_mode {
    PROCTRACE_EXIT_AUTO = 0,       /* group_dead if the kernel's tracepoint has it, else live */
    PROCTRACE_EXIT_GROUP_DEAD = 1, /* sched_process_exit's group_dead argument (6.16+) */
    PROCTRACE_EXIT_LIVE = 2,       /* signal->live == 0 (any kernel; tests force it) */
};

struct proctrace_opts {
    int observe_all;   /* nonzero: every process on the host, no tracked set */
    size_t ring_bytes; /* ring buffer size: a power of two >= page size; 0 = 256 KiB */
    int exit_mode;     /* enum proctrace_exit_mode; 0 = auto */
    /* 0: the consumer's fd turns readable for every event. N > 0: at most one wake-up per N
     * ns (the first event after a quiet spell still wakes at once; a quarter-full ring always
     * does), so a storm costs the kernel few wake-ups (each is an inter-processor interrupt).
     * The consumer must then call proctrace_consume again N ns after every call that
     * delivered events, until such a scheduled call delivers none (a call in between that
     * delivers none does not end it): events wait at most about N ns. */
    uint64_t wake_gap_ns;
    /* Test-only: also load a program the verifier must refuse (so is the environment variable
     * PROCTRACE_TEST_INVALID_PROG=1), to prove a rejection is reported as one. */
    int test_invalid;
    /* A folder on a BPF file system (e.g. /sys/fs/bpf/procbus/NAME) where the tracer is pinned:
     * its links (so it stays attached), its tracked map, ring buffer, counters and data, so that
     * it keeps tracking and recording while no process has it open, and a later loader takes it
     * over (pin_reuse) with what it recorded meanwhile. NULL: not pinned (it detaches when the
     * last descriptor closes). */
    const char *pin_dir;
    /* With pin_dir: 1 takes over a pinned tracer found there if it matches these options (the
     * same observe_all, ring size, wake gap, pid namespace, exit mode and layout: else it is
     * removed and a new one loaded and pinned); 0 removes whatever is there first. */
    int pin_reuse;
    /* 0: each event's room in the ring is handed back once the callback returned (as libbpf's
     * consumer does). 1: only at proctrace_release, which the caller calls once what it made of
     * the events is safe (committed): a caller killed in between leaves them to the next reader
     * of a pinned ring, which reads them again; nothing read is lost, nothing committed is read
     * twice. The ring holds what was read and not released: release often. */
    int defer_release;
};

/*
 * Open, load and attach the tracer. `o` may be NULL (defaults). On success
 * returns 0 and *out; on failure a negative errno, *out NULL and, if `why`,
 * a one-line reason ("no kernel BTF at /sys/kernel/btf/vmlinux",
 * "BPF load refused (EPERM): need root or CAP_BPF+CAP_PERFMON", ...).
 * -EINVAL: bad options; -ENOTSUP: the kernel's BTF lacks the mode asked for;
 * -EPERM: not privileged; -ENOEXEC: the kernel's verifier rejected a program
 * (`why` says which and the verifier's reason: not a permission problem).
 *
 * Pids in events and in the tracked set are numbers in the caller's own pid
 * namespace (read from /proc/self/ns/pid at open): inside a container the
 * tracer reports the container's processes with the container's pids and
 * ignores every process outside it. The caller's own process is the "self"
 * of proctrace_set_spawn_tag.
 */
int proctrace_open(struct proctrace **out, const struct proctrace_opts *o, char *why,
                   size_t whylen);

/*
 * Whether the tracer can run here, without loading it for long: checks the
 * kernel BTF, then loads and drops the program. 0 = yes; else a negative
 * errno and the reason in `why`. For procbusd's --trace=auto.
 */
int proctrace_available(char *why, size_t whylen);

/* Track process `tgid` (and, from now on, every process it forks) with tag 0. 0 or -errno. */
int proctrace_track(struct proctrace *t, pid_t tgid);

/*
 * Track process `tgid` with `tag`: every process it forks from now on is tracked with the
 * same tag, and every event of those processes carries it (proctrace_event.tag), so a
 * consumer attributes a process by its tag even when its parent's events were lost. A
 * fork of the caller's own process (when tracked) takes the spawn tag instead. 0 or -errno.
 */
int proctrace_track_tag(struct proctrace *t, pid_t tgid, uint64_t tag);

/* The tag the kernel keeps for tracked process `tgid` into *tag: 0, -ENOENT (not tracked),
 * -errno. For a /proc walk that finds a process it has no event of. */
int proctrace_tag(const struct proctrace *t, pid_t tgid, uint64_t *tag);

/*
 * The tag the next process the caller forks gets (when the caller tracks itself): set it
 * just before fork()/clone() and set 0 after, on the thread that forks. A plain store into
 * the program's memory-mapped data: no syscall. NULL `t` is fine.
 */
void proctrace_set_spawn_tag(struct proctrace *t, uint64_t tag);

/* Stop tracking `tgid` (its later children are not tracked). 0, -ENOENT or -errno. */
int proctrace_untrack(struct proctrace *t, pid_t tgid);

/* The ring buffer's epoll descriptor: readable when events are pending. Owned by `t`. */
int proctrace_fd(const struct proctrace *t);

/* Called once per event; `ev` is a full, zero-padded record valid for the call only.
 * A nonzero return stops proctrace_consume, which returns it. */
typedef int (*proctrace_cb)(void *arg, const struct proctrace_event *ev);

/*
 * Deliver every pending event, in ring order, reading the memory-mapped ring
 * (no syscall per event). Returns the number of events delivered, the
 * callback's nonzero return (negative), or a negative errno.
 */
int proctrace_consume(struct proctrace *t, proctrace_cb cb, void *arg);

/*
 * defer_release: hand the ring back up to what was read. Returns 1 if events came meanwhile
 * that read nothing woke the caller for (the kernel wakes a consumer only when it had caught
 * up): call proctrace_consume again. Ordering: a release store of the consumer position
 * (pairs with the kernel's acquire load when it reserves), a full fence, an acquire load of the
 * producer position.
 */
int proctrace_release(struct proctrace *t);

/*
 * defer_release: as proctrace_release, but the ring keeps every event from position
 * `keep_from` on (proctrace_event_pos of the oldest event whose outcome the caller could not
 * publish yet; UINT64_MAX: none). Everything read is marked as acted on, in the tracer's global
 * data: a later loader taking the pinned tracer over reads the kept events again, flagged by
 * proctrace_event_replayed. Returns as proctrace_release. Ordering: the mark is stored before
 * the consumer position (a release store), so a loader killed in between leaves a replay,
 * never an event applied twice.
 */
int proctrace_release_keep(struct proctrace *t, uint64_t keep_from);

/* During a proctrace_consume callback: the ring position of the event delivered (for
 * proctrace_release_keep). */
uint64_t proctrace_event_pos(const struct proctrace *t);

/* During a proctrace_consume callback: 1 if the event was read, and what it made published, by
 * an earlier loader of this pinned tracer, which kept it in the ring for a reason of its own
 * (proctrace_release_keep): most events are then to be skipped. */
int proctrace_event_replayed(const struct proctrace *t);

/* 1 if the ring has events not read yet (no syscall). */
int proctrace_unread(const struct proctrace *t);

/* 1 if this tracer was taken over from a pinned set (it recorded while nobody had it open); 1
 * from proctrace_pinned if it is pinned (pin_dir given and pinning worked). */
int proctrace_reused(const struct proctrace *t);
int proctrace_pinned(const struct proctrace *t);

/* Remove the pins (a clean shutdown): the tracer detaches once closed. Nothing when not pinned. */
void proctrace_unpin(struct proctrace *t);

/* Remove a pinned set at `dir` without taking it (a stale one: its owner is gone for good).
 * 0 or -errno of rmdir. */
int proctrace_pin_remove(const char *dir);

/* 0 if `dir` (or its nearest existing parent) is on a BPF file system; else -ENOTSUP with the
 * reason in why. */
int proctrace_pin_check_fs(const char *dir, char *why, size_t whylen);

/* Events dropped because the ring buffer was full (sum over CPUs); never reset. */
uint64_t proctrace_lost(const struct proctrace *t);

/* Forked children left untracked because the tracked map was full (sum over CPUs). */
uint64_t proctrace_track_failed(const struct proctrace *t);

/* The exit detection in use (PROCTRACE_EXIT_GROUP_DEAD or PROCTRACE_EXIT_LIVE). */
int proctrace_exit_mode(const struct proctrace *t);

/* Close this process's hold on the tracer and free. Not pinned: it detaches and unloads. Pinned:
 * it stays attached and keeps recording into its ring (proctrace_unpin first to end it). NULL is
 * fine. */
void proctrace_close(struct proctrace *t);

#endif
