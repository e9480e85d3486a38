/* sampler.h - procbusd's CPU/RSS sampling of whole process trees from /proc, and per-pid stat. */
#ifndef PROCBUSD_SAMPLER_H
#define PROCBUSD_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- one process ---- */

struct pbd_proc_stat {
    pid_t pid;
    pid_t ppid;
    pid_t pgid;
    pid_t sid;
    char state;             /* 'R', 'S', 'D', 'Z', 'T', ... */
    char comm[64];          /* NUL-terminated, truncated if longer (kernel threads) */
    uint64_t start_boot_ns; /* start time, CLOCK_BOOTTIME ns (clock-tick resolution) */
    uint64_t cpu_ns;        /* utime + stime of all its threads */
    uint64_t child_cpu_ns;  /* cutime + cstime: children it has waited for */
    uint64_t rss_bytes;     /* resident set (field 24) * page size */
    int num_threads;
    unsigned long flags; /* the kernel's PF_* (field 9): 0x4 PF_EXITING, 0x200000 PF_KTHREAD */
};

/*
 * Read /proc/PID/stat once. Returns 0 and fills *st, or a negative errno:
 * -EINVAL (pid <= 0, st NULL), -ENOENT / -ESRCH (no such process, or it exited
 * while being read), -EACCES, -EIO (a line that does not parse).
 * Does not allocate (stack buffer); three syscalls.
 */
int pbd_proc_stat(pid_t pid, struct pbd_proc_stat *st);

/* ---- whole process trees ---- */

/*
 * A supervised program. A process belongs to the tree of root R if
 *   1. walking its ppid chain (itself included) reaches R.pid, or else
 *   2. R.sid > 0 and its session id equals R.sid.
 * Rule 2 catches grandchildren that were orphaned and reparented to the
 * (subreaper) daemon, which lose their ancestry link. Ancestry wins: a process
 * is counted for the nearest root on its ppid chain, and only when none
 * is found for the first root (in array order) whose sid matches; so no
 * process is counted twice. A descendant that called setsid() is still counted
 * through ancestry while its parents live, but is lost once orphaned.
 * pid <= 0: rule 1 off (a sid-only root); sid <= 0: rule 2 off; both: all-zero
 * output. Duplicate pids: the first root gets the processes.
 */
struct pbd_tree_root {
    pid_t pid;
    pid_t sid;
};

struct pbd_tree_usage {
    uint64_t cpu_ns;        /* utime+stime of every live process of the tree,
                             * plus reaped_cpu_ns */
    uint64_t reaped_cpu_ns; /* the root's cutime+cstime: its descendants that
                             * exited and were waited for, along their chain */
    uint64_t rss_bytes;     /* sum of the processes' RSS (shared pages count
                             * once per process, like ps/top sums) */
    uint32_t nprocs;        /* processes counted (zombies included, RSS 0) */
    int root_alive;         /* root.pid is in /proc (an unreaped zombie counts) */
};

/*
 * Reusable state of pbd_sample_trees: a /proc directory descriptor and buffers
 * that grow (realloc) only when the process count exceeds what they hold, so
 * steady-state calls do not allocate. Fields are private; `allocs` counts the
 * (re)allocations so far (tests use it to check the steady state).
 */
struct pbd_sampler {
    int ready; /* set by a successful pbd_sampler_init */
    int proc_fd;
    long clk_tck;
    long page_size;
    char *dents; /* getdents64 buffer */
    size_t dents_cap;
    struct pbd_sample_ent *ents;
    size_t ents_cap;
    size_t n_ents;
    struct pbd_sample_sid *sids;
    size_t sids_cap;
    int32_t *stack;
    size_t stack_cap;
    size_t dents_off, dents_len; /* the getdents64 chunk being walked (incremental scans) */
    int scanning;                /* a scan is under way (pbd_sampler_scan_begin) */
    int scanned;                 /* the last scan is complete: pbd_sampler_attribute may run */
    uint64_t allocs;
};

/*
 * Allocate the initial buffers and open /proc. Returns 0 or a negative errno
 * (-EINVAL for s NULL, -ENOMEM, open(2)'s error). On failure *s is left zeroed
 * (nothing to free; pbd_sampler_free is still safe). Whatever *s held is ignored.
 */
int pbd_sampler_init(struct pbd_sampler *s);

/* Release everything; *s becomes a zeroed (re-initialisable) struct. Safe twice. */
void pbd_sampler_free(struct pbd_sampler *s);

/*
 * One pass over /proc (each /proc/PID/stat read once) attributing every
 * process to at most one of roots[0..n) (rules above); out[i] receives root i's
 * totals (out must hold n entries; it is zeroed first).
 * Returns 0, or a negative errno: -EINVAL (NULL pointers with n > 0, sampler
 * not initialised), -ENOMEM (growing a buffer failed; out stays zeroed),
 * getdents64(2)'s error. Processes that vanish or cannot be read mid-scan are
 * skipped silently.
 *
 * Limitations:
 *  - CPU time of processes that exited is lost unless they were waited for by
 *    a live process of the tree: reaped_cpu_ns covers the root's reaped
 *    descendants, but an orphan reaped by the daemon (subreaper) takes its CPU
 *    with it, and so does a process that exits between two samples after being
 *    reparented. cpu_ns can therefore go DOWN between samples; consumers
 *    computing rates must clamp negative deltas.
 *  - The scan is not atomic: a process reaped by its parent during the scan
 *    may be missed or, rarely, counted twice (alive and in the parent's cutime).
 *  - RSS double-counts pages shared between processes (libraries, fork COW).
 *  - Per-process totals have clock-tick resolution (usually 10 ms).
 *  - Only processes visible in this /proc (pid namespace, hidepid) count.
 * Cost: O(processes on the host) syscalls (open/read/close per process) and
 * O(processes * log) work, once per call whatever n is. It is
 * pbd_sampler_scan_begin + pbd_sampler_scan_step(SIZE_MAX) + pbd_sampler_attribute.
 */
int pbd_sample_trees(const struct pbd_tree_root *roots, size_t n, struct pbd_tree_usage *out,
                     struct pbd_sampler *s);

/*
 * The same pass in slices, for a caller that must not stop for a whole /proc walk
 * (procbusd's loop reads a few processes per turn): begin, then step until it returns 1,
 * then attribute. The scan is spread over time, so it is even less atomic than one pass:
 * a process that starts after its pid's slot was passed is missed until the next scan, one
 * that exits after being read is still counted once.
 *
 * pbd_sampler_scan_begin: start a new scan (a scan under way is dropped). 0, -EINVAL (not
 * initialised) or lseek(2)'s error.
 * pbd_sampler_scan_step: read up to max_procs more processes' stat files. Returns 0 when
 * there is more to read, 1 when the scan is complete, or a negative errno (-EINVAL: no scan
 * under way; -ENOMEM; getdents64(2)'s error), which ends the scan.
 * pbd_sampler_attribute: pbd_sample_trees' attribution over the last complete scan (may be
 * called again with other roots). Same returns; -EINVAL also when no scan is complete.
 * Steady state: no allocation, like pbd_sample_trees.
 */
int pbd_sampler_scan_begin(struct pbd_sampler *s);
int pbd_sampler_scan_step(struct pbd_sampler *s, size_t max_procs);
int pbd_sampler_attribute(const struct pbd_tree_root *roots, size_t n, struct pbd_tree_usage *out,
                          struct pbd_sampler *s);

#endif /* PROCBUSD_SAMPLER_H */
