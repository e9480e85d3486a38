/* tb.h - what tracer-bench's files share: its options, the rate steps, and the parts main runs. */
#ifndef PROCBUS_TB_H
#define PROCBUS_TB_H

#define _GNU_SOURCE
#include "procbus.h"
#define BENCH_NAME        "tracer-bench"
#define BENCH_UTIL_SHARED /* main.c holds bench_util.h's state */
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/bpf.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Benchmarks of procbusd with its eBPF tracer in observe mode (every process
 * on the host is published), against the real build/procbusd and build/procbus:
 *
 *   1. rate: forked workers doing fork()+_exit(0), or fork()+execve(/bin/true),
 *      each child waited for, at increasing offered rates (throttled, then
 *      unthrottled with 1, 2 and 4 workers). Per step: processes/s, tracer
 *      events/s (2 per process: fork and exit; 3 with exec), BPF program runs/s,
 *      procbusd's CPU, and the loss: the header's tracer_drops + events_dropped
 *      deltas once procbusd has caught up.
 *   2. BPF cost: run_time_ns / run_cnt of procbusd's proctrace_* programs over
 *      the rate steps, with BPF run-time statistics enabled for that part only
 *      (BPF_ENABLE_STATS: the kernel turns them off again when this process
 *      exits, whatever happens; else kernel.bpf_stats_enabled, restored at exit).
 *   3. exec -> visible: children exec /bin/sleep 0.05, spaced 1.5 ms apart; a
 *      reader thread follows the event ring and, on the EXEC event of one of
 *      them, reads its record: latency = CLOCK_REALTIME now - state_since_ns
 *      (the kernel's time of the exec). Once with a spinning reader, once with
 *      a reader blocked in procbus_wait (futex wake-up). Beside it the floor:
 *      tracer-floor, the same BPF program (observe, the same ring and batching)
 *      with a consumer that only timestamps each exec event, under the same
 *      workload: p50/p99/p99.9 of both and procbusd's ratio to it.
 *   4. overhead: the same sequential fork+execve(/bin/true)+waitpid workload
 *      timed with no procbusd (tracing really off) and with procbusd --observe
 *      running, in interleaved rounds off, on, off, on ...
 *   5. `procbus ps --all` (every process on the host) against `ps -e`, whole
 *      process each, interleaved.
 *
 * Needs root and kernel BTF; without them it prints one "skipped" line and
 * exits 0. Everything lives in a private mkdtemp folder and a unique segment;
 * procbusd is stopped with SIGTERM and its segment unlinked, also on
 * SIGINT/SIGTERM. Times are reported, never asserted.
 */

#define MAX_STEPS  20
#define MAX_PROGS  16
#define MAX_WORKER 8

/* ---- options and results (main.c) ---- */

extern int g_quick, g_ring_kb, g_batch_ms; /* --quick, --ring-kb, --batch-ms */
extern char g_mode[64];                    /* "full" or "quick", and the non-default settings */
extern char g_ps[PATH_MAX];                /* ps(1) */

/* Rate steps (figure 1), kept for the step table. */
struct step {
    char name[32];           /* e.g. "fork 5k/s", "exec x2 max" */
    int exec, workers, rate; /* rate: total target processes/s, 0 = unthrottled */
    int ran, drain_timeout;
    double secs, procs_per_s, events_per_s, bpf_runs_per_s, bpf_ns_per_run, pbd_cpu_pct,
        ring_events_per_s, drain_ms;
    uint64_t procs, loss, tracer_drops, events_dropped, records_dropped;
};
extern struct step g_steps[MAX_STEPS];
extern int g_nsteps;

/* ---- bpfstats.c: BPF run-time statistics of procbusd's programs, and its procbusd ---- */

/* BPF run-time statistics on (BPF_ENABLE_STATS, else kernel.bpf_stats_enabled): 0, or -1
 * when neither works / back as they were. */
int stats_on(void);
void stats_off(void);

/* procbusd's proctrace_* programs into the program table (by its descriptors' fdinfo, else
 * every proctrace_* program); how many. */
int find_progs(pid_t owner);

/* Current run_time_ns and run_cnt of each program found, into ns[] and cnt[]. */
void progs_read(uint64_t *ns, uint64_t *cnt);

/* The programs found (find_progs), with the run time the rate steps add up. */
struct bpfprog {
    uint32_t id;
    char name[BPF_OBJ_NAME_LEN + 1];
    uint64_t run_ns, run_cnt; /* accumulated over the rate steps */
};
extern struct bpfprog g_progs[MAX_PROGS];
extern int g_nprogs;
extern int g_progs_by_owner; /* 1: ids found in procbusd's fds; 0: every proctrace_* program */

/* Start procbusd in observe mode (trace = on, keep_exited_secs = 0) with a fresh segment and
 * open it in *r; returns once this process has a record. 0 or -1 (said). */
int observer_start(struct bench_daemon *d, struct procbus_reader *r, const char *tag);

/* Wait until procbusd has published everything the kernel queued before now. 0 or -1. */
int observer_catch_up(struct procbus_reader *r, int timeout_ms);

/* ---- the figures: rate.c (1, 2), latency.c (3), usage.c (4, 5); 0, or -1 (said) ---- */

int bench_rate(void);
int bench_latency(void);
int bench_overhead(void);
int bench_ps(void);

#endif
