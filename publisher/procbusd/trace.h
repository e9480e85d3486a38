/* trace.h - procbusd's view of its programs' process trees (or the host's), from eBPF or /proc. */
#ifndef PROCBUSD_TRACE_H
#define PROCBUSD_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct procbus_pub;
struct pbd_tracing;

/*
 * What a program's main process is called here: a "root". procbusd spawns it
 * and publishes its record itself; the trace module publishes everything the
 * root starts (children, grandchildren, daemons that left its session) as
 * records with PROCBUS_F_DESCENDANT and program_id = the program's record id,
 * and, with observe, every other process on the host (program_id 0).
 *
 * Sources, by the mode in use (pbd_trace_mode):
 *   PBD_TRACE_ON   the eBPF tracer (ebpf/): fork, exec, rename and exit as they
 *                  happen, with exit status; the kernel's tracked set decides who
 *                  belongs to which program (a tag per program); /proc is walked
 *                  at start and after a loss;
 *   PBD_TRACE_PROC /proc is walked every poll (the daemon's sample period);
 *                  exits seen by a walk have no status (exit_kind NONE), except
 *                  orphans procbusd reaps itself (it is a child subreaper);
 *   PBD_TRACE_OFF  nothing: no records besides the programs'.
 * A process is (pid, start time): pid reuse always gives a new record.
 * Records of exited processes leave the snapshot keep_exited_secs after the
 * exit; when the segment is full, the oldest exited ones leave first.
 */
struct pbd_trace_opts {
    enum pbd_trace mode;       /* as configured: AUTO, ON, PROC or OFF */
    int observe;               /* every process on the host */
    uint32_t keep_exited_secs; /* exited records stay this long */
    uint32_t ring_kb;          /* BPF ring buffer size, KiB (power of two >= 4); 0: 256 */
    uint32_t capacity;         /* the segment's record capacity; 0: the publisher's default */
    uint32_t batch_ms; /* 0: the tracer wakes procbusd for each event; N: at most once per N ms
                        * (an event after a quiet spell still wakes it at once), and procbusd
                        * reads again N ms after each read that found events: in a storm,
                        * events wait up to N ms and the kernel is spared most wake-ups */
    /* The record id of the program whose processes carry PROCBUS_PROCESS_NAME=`name`
     * in their environment (procbusd sets it); 0 if none. Used to attribute
     * orphans that /proc polling finds reparented to procbusd. May be NULL. */
    uint64_t (*program_by_name)(void *arg, const char *name);
    void *arg;
    /* 1 if `pid` is one of procbusd's own helpers (its fd holder, an upgrade's probe): never
     * attributed to a program by /proc polling. May be NULL. */
    int (*is_own)(void *arg, pid_t pid);
    /* Taking over from a procbusd that died: its descendant (and, with observe, observed)
     * records, in the segment already (ids kept). Each becomes a table entry: alive if its pid
     * AND start time match a live process (then tracked by the tracer with its program as tag),
     * else EXITED with status unknown, provisionally (an exit event in a pinned tracer's backlog
     * fills it in). Observed records without observe, and every seed with trace off, are
     * removed. Read during pbd_trace_open only. */
    const struct procbus_proc *seeds;
    size_t n_seeds;
    /* The eBPF tracer pinned in this bpffs folder (NULL: not pinned), so that it keeps
     * recording while no procbusd runs; pin_reuse: take over the tracer pinned there (a
     * procbusd that died left it, with what it recorded since), else start a new one. */
    const char *pin_dir;
    int pin_reuse;
};

/*
 * Set up tracing (starting the eBPF tracer for AUTO/ON) and, with observe,
 * publish every process /proc shows now (PROCBUS_F_PREEXISTING); the caller
 * commits. Returns 0 and *out, or a negative errno with a one-line reason in
 * why (ON: eBPF unusable; ON or PROC: -EXDEV, the /proc mounted here is another
 * pid namespace's; or -ENOMEM). For AUTO without eBPF it returns 0 in PROC mode
 * and puts the reason in why (why[0] != 0); with a foreign /proc, in OFF mode.
 */
int pbd_trace_open(struct pbd_tracing **out, struct procbus_pub *pub,
                   const struct pbd_trace_opts *o, char *why, size_t whylen);

/* What the trace module has read and done, for the log and the tests (pbd_trace_stats). */
struct pbd_trace_stats {
    uint64_t forks, execs, exits, renames; /* tracer events read, by kind */
    uint64_t merged;   /* exit events that filled in a provisional (walk-vanished) record */
    uint64_t vanished; /* records ended with status unknown (walks, pid reuse) */
    uint64_t walks;    /* /proc walks */
    uint64_t tagged;   /* processes attributed by their kernel tag, their parent unknown */
};

/* The mode in effect: PBD_TRACE_ON (eBPF), PBD_TRACE_PROC or PBD_TRACE_OFF. */
enum pbd_trace pbd_trace_mode(const struct pbd_tracing *t);

/* The fd to watch for tracer events (EPOLLIN), or -1 without eBPF. */
int pbd_trace_fd(const struct pbd_tracing *t);

/*
 * Read every pending tracer event and stage the record changes. Commits by
 * itself every few hundred changes (a storm never outgrows the publisher's
 * copy-on-write reserve). Returns the number of changes staged and not yet
 * committed (the caller commits when > 0), or a negative errno.
 */
int pbd_trace_consume(struct pbd_tracing *t);

/*
 * One ordered stream: bring the table up to now before a decision that depends on it (a
 * kill pass, handling a reaped child, a walk, an expiry). Reads every event the tracer has
 * (whatever batch_ms says) and, after a kernel loss, walks /proc (read, walk, read): at
 * once with `walk`, else at most every 200 ms. With `walk` and /proc polling, walks /proc
 * now. Returns the number of changes staged (the
 * caller commits). NULL is fine (0).
 */
int pbd_trace_sync(struct pbd_tracing *t, int walk);

/* procbusd is about to fork program `program_id`'s main process (0: it has forked): the
 * tracer tags the child, and so everything it starts, with it. NULL is fine. */
void pbd_trace_spawning(struct pbd_tracing *t, uint64_t program_id);

/* A program's main process started (pid, CLOCK_BOOTTIME start ns) / is gone (procbusd
 * reaped it; call pbd_trace_sync first, so that its children's events are in). */
void pbd_trace_root(struct pbd_tracing *t, pid_t pid, uint64_t start_boot_ns, uint64_t program_id);
void pbd_trace_root_gone(struct pbd_tracing *t, pid_t pid);

/*
 * An adopted main process (started by a procbusd that died): a root as pbd_trace_root, and,
 * with `alive`, followed by the tracer from now on (its forks take its program as tag). Not
 * alive: a root only until pbd_trace_root_gone, so that an exit event of it in the backlog is
 * recognised (pbd_trace_root_status).
 */
void pbd_trace_adopt_root(struct pbd_tracing *t, pid_t pid, uint64_t start_boot_ns,
                          uint64_t program_id, int alive);

/* How many main processes' exit events were read since the last call (0 without a tracer). */
uint32_t pbd_trace_take_root_exits(struct pbd_tracing *t);

/*
 * How main process `pid` (a live root) ended, if the tracer read its exit event:
 * PROCBUS_EXIT_CODE or PROCBUS_EXIT_SIGNAL with *code, *core and *when_real (CLOCK_REALTIME of
 * the exit); PROCBUS_EXIT_NONE if no event said (no tracer, a loss, or it ended while no
 * tracer ran). Call after pbd_trace_sync, before pbd_trace_root_gone. NULL t: NONE.
 */
int pbd_trace_root_status(const struct pbd_tracing *t, pid_t pid, int *code, int *core,
                          uint64_t *when_real);

/*
 * Everything the trace module staged so far is committed: the tracer's ring may take back what
 * was read (events read but not committed when procbusd dies are read again by the next one,
 * from a pinned ring). Not while a main process's exit event was read and its end not yet
 * taken (pbd_trace_ends_held): then nothing is handed back, and a procbusd killed before it
 * publishes that end leaves the event to its successor. Returns 1 when events are waiting that
 * no wake-up will announce: call pbd_trace_consume. NULL is fine (0).
 */
int pbd_trace_committed(struct pbd_tracing *t);

/* How many main processes' exit events were read whose end procbusd has not taken yet
 * (pbd_trace_root_gone): the kernel reports a child's exit before its pidfd says so, and the
 * status is then only in this process. 0 for NULL. */
uint32_t pbd_trace_ends_held(const struct pbd_tracing *t);

/* 1 when the pinned tracer was taken over (it recorded while no procbusd ran); 1 from
 * pbd_trace_pinned when the tracer is pinned at all. */
int pbd_trace_reused(const struct pbd_tracing *t);
int pbd_trace_pinned(const struct pbd_tracing *t);

/* 0 if a tracer can be pinned at `dir` (a BPF file system); else -ENOTSUP and why (always,
 * without the eBPF tracer built in). */
int pbd_trace_pin_fs(const char *dir, char *why, size_t whylen);

/* Remove a pinned tracer at `dir` (a stale one). 0 or a negative errno. */
int pbd_trace_pin_remove(const char *dir);

/* Clean shutdown: unpin the tracer (it detaches at pbd_trace_close). */
void pbd_trace_unpin(struct pbd_tracing *t);

/* Adoption: the next pbd_trace_sync walks /proc (processes forked while no procbusd ran). */
void pbd_trace_adopting(struct pbd_tracing *t);

/* When the live main process `pid` exited, as the kernel's exit event said, in
 * CLOCK_REALTIME ns; 0 if no such event was read (no tracer, or a loss). Call after
 * pbd_trace_sync and before pbd_trace_root_gone. */
uint64_t pbd_trace_root_exit(const struct pbd_tracing *t, pid_t pid);

/* How many processes of program `program_id`'s tree (not its main process) are alive as far
 * as the table knows (call pbd_trace_sync first). */
size_t pbd_trace_tree_live(const struct pbd_tracing *t, uint64_t program_id);

/*
 * Periodic work, called every loop turn with CLOCK_MONOTONIC now: expire
 * exited records, read the tracer when a batch is due (batch_ms), walk /proc
 * when due (PROC mode every poll_ns; after a tracer loss). Returns the number
 * of changes staged (the caller commits).
 */
int pbd_trace_tick(struct pbd_tracing *t, uint64_t now_mono, uint64_t poll_ns);

/* CLOCK_MONOTONIC ns of the next thing pbd_trace_tick has to do; UINT64_MAX if none. */
uint64_t pbd_trace_next_deadline(const struct pbd_tracing *t);

/* procbusd reaped orphan `pid` itself (siginfo si_code `how`, si_status `status`). */
void pbd_trace_reaped(struct pbd_tracing *t, pid_t pid, int how, int status);

/*
 * Send `sig` to every live process of program `program_id`'s tree (not the
 * main process), each through a pidfd checked against its start time, so a
 * reused pid is never signalled. Returns how many were signalled.
 */
int pbd_trace_signal_tree(struct pbd_tracing *t, uint64_t program_id, int sig);

/*
 * The live processes of programs' trees (not their main processes): up to
 * `max` pids and their programs' record ids into pids[] and program_ids[].
 * Returns how many were written; with max 0, how many there are (to size the
 * arrays).
 */
size_t pbd_trace_descendants(const struct pbd_tracing *t, pid_t *pids, uint64_t *program_ids,
                             size_t max);

/* Counters for logs: tracer events lost in the kernel, records currently kept. */
uint64_t pbd_trace_lost(const struct pbd_tracing *t);
size_t pbd_trace_count(const struct pbd_tracing *t);

/* What was read and done so far (zeros for NULL). */
struct pbd_trace_stats pbd_trace_stats(const struct pbd_tracing *t);

/* Stop the tracer and free everything (records stay in the segment). NULL is fine. */
void pbd_trace_close(struct pbd_tracing *t);

#endif /* PROCBUSD_TRACE_H */
