/* tracer-bench.c - procbusd's eBPF tracer: event rate and loss, BPF cost, exec latency, overhead.
 */
#define _GNU_SOURCE
#include "procbus.h"
#define BENCH_NAME "tracer-bench"
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

/* ---- globals (the shared ones are in bench_util.h) ---- */

static int g_quick, g_ring_kb, g_batch_ms;
static char g_mode[64]; /* "full" or "quick", and the non-default procbusd settings */
static char g_ps[PATH_MAX];

/* ---- rate steps (figure 1), kept for the step table ---- */

struct step {
    char name[32];           /* e.g. "fork 5k/s", "exec x2 max" */
    int exec, workers, rate; /* rate: total target processes/s, 0 = unthrottled */
    int ran, drain_timeout;
    double secs, procs_per_s, events_per_s, bpf_runs_per_s, bpf_ns_per_run, pbd_cpu_pct,
        ring_events_per_s, drain_ms;
    uint64_t procs, loss, tracer_drops, events_dropped, records_dropped;
};

static struct step g_steps[MAX_STEPS];
static int g_nsteps;

/* The flat JSON of bench_util.h (mode quick or full) plus "steps": one object per step run. */
static int write_json(const char *path, const struct machine *m)
{
    char tmp[PATH_MAX + 16];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, g_mode);
    int i;

    if (fp == NULL)
        return -1;
    fprintf(fp, ",\n  \"steps\": [");
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        if (!s->ran)
            continue;
        fprintf(fp, "%s\n    {\"name\": ", i ? "," : "");
        json_str(fp, s->name);
        fprintf(fp,
                ", \"exec\": %d, \"workers\": %d, \"target_per_s\": %d, \"secs\": %.3f, "
                "\"processes\": %" PRIu64 ", \"processes_per_s\": %.1f, \"events_per_s\": %.1f, "
                "\"bpf_runs_per_s\": %.1f, \"bpf_ns_per_run\": %.1f, \"ring_events_per_s\": %.1f, "
                "\"procbusd_cpu_pct\": %.1f, \"loss\": %" PRIu64 ", \"tracer_drops\": %" PRIu64
                ", \"events_dropped\": %" PRIu64 ", \"records_dropped\": %" PRIu64
                ", \"drain_ms\": %.1f, \"drain_timeout\": %d}",
                s->exec, s->workers, s->rate, s->secs, s->procs, s->procs_per_s, s->events_per_s,
                s->bpf_runs_per_s, isfinite(s->bpf_ns_per_run) ? s->bpf_ns_per_run : -1.0,
                s->ring_events_per_s, s->pbd_cpu_pct, s->loss, s->tracer_drops, s->events_dropped,
                s->records_dropped, s->drain_ms, s->drain_timeout);
    }
    fprintf(fp, "\n  ]");
    return json_end(fp, tmp, path);
}

/* bench_util.h's report, then the table of rate steps. */
static void print_table(const struct machine *m)
{
    int i;

    print_rows("tracer", g_mode, m, NULL);
    if (g_nsteps == 0)
        return;
    printf("\n### rate steps (observe mode; loss = tracer_drops + events_dropped)\n\n");
    printf(
        "| step | workers | target/s | processes/s | tracer events/s | BPF runs/s | BPF ns/run "
        "| procbusd CPU | loss | catch-up |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        char tgt[32], ns[32];
        if (!s->ran)
            continue;
        if (s->rate > 0)
            snprintf(tgt, sizeof(tgt), "%d", s->rate);
        else
            snprintf(tgt, sizeof(tgt), "max");
        fmt_val(ns, sizeof(ns), s->bpf_ns_per_run);
        printf("| %s | %d | %s | %.0f | %.0f | %.0f | %s | %.0f%% | %" PRIu64 " | %.0f ms%s |\n",
               s->name, s->workers, tgt, s->procs_per_s, s->events_per_s, s->bpf_runs_per_s, ns,
               s->pbd_cpu_pct, s->loss, s->drain_ms, s->drain_timeout ? " (timeout)" : "");
    }
}

/* ---- BPF run-time statistics (figure 2): raw bpf(2), no libbpf ---- */

static int g_stats_fd = -1;  /* BPF_ENABLE_STATS descriptor: stats on while it is open */
static int g_stats_old = -1; /* kernel.bpf_stats_enabled before we wrote 1 (fallback path) */

struct bpfprog {
    uint32_t id;
    char name[BPF_OBJ_NAME_LEN + 1];
    uint64_t run_ns, run_cnt; /* accumulated over the rate steps */
};

static struct bpfprog g_progs[MAX_PROGS];
static int g_nprogs;
static int g_progs_by_owner; /* 1: ids found in procbusd's fds; 0: every proctrace_* program */

static long sys_bpf(int cmd, union bpf_attr *a)
{
    return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int bpf_prog_info_of(uint32_t id, struct bpf_prog_info *info)
{
    union bpf_attr a;
    int fd, rc;

    memset(&a, 0, sizeof(a));
    a.prog_id = id;
    fd = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
    if (fd < 0)
        return -errno;
    memset(info, 0, sizeof(*info));
    memset(&a, 0, sizeof(a));
    a.info.bpf_fd = (uint32_t)fd;
    a.info.info_len = sizeof(*info);
    a.info.info = (uint64_t)(uintptr_t)info;
    rc = (int)sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
    if (rc < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static void stats_on(void)
{
    union bpf_attr a;
    FILE *fp;

    memset(&a, 0, sizeof(a));
    a.enable_stats.type = BPF_STATS_RUN_TIME;
    g_stats_fd = (int)sys_bpf(BPF_ENABLE_STATS, &a);
    if (g_stats_fd >= 0)
        return;
    fp = fopen("/proc/sys/kernel/bpf_stats_enabled", "r"); /* kernels before 5.8 */
    if (fp != NULL) {
        if (fscanf(fp, "%d", &g_stats_old) != 1)
            g_stats_old = -1;
        fclose(fp);
    }
    if (g_stats_old >= 0 && write_file("/proc/sys/kernel/bpf_stats_enabled", "1\n") < 0)
        g_stats_old = -1;
}

static void stats_off(void)
{
    char v[16];

    if (g_stats_fd >= 0) {
        close(g_stats_fd);
        g_stats_fd = -1;
    }
    if (g_stats_old >= 0) {
        snprintf(v, sizeof(v), "%d\n", g_stats_old);
        write_file("/proc/sys/kernel/bpf_stats_enabled", v);
        g_stats_old = -1;
    }
}

static int prog_known(uint32_t id)
{
    int i;

    for (i = 0; i < g_nprogs; i++)
        if (g_progs[i].id == id)
            return 1;
    return 0;
}

static void prog_add(uint32_t id)
{
    struct bpf_prog_info info;

    if (g_nprogs >= MAX_PROGS || prog_known(id) || bpf_prog_info_of(id, &info) < 0)
        return;
    if (strncmp(info.name, "proctrace_", 10) != 0)
        return;
    g_progs[g_nprogs].id = id;
    memcpy(g_progs[g_nprogs].name, info.name, BPF_OBJ_NAME_LEN);
    g_progs[g_nprogs].name[BPF_OBJ_NAME_LEN] = '\0';
    g_progs[g_nprogs].run_ns = g_progs[g_nprogs].run_cnt = 0;
    g_nprogs++;
}

/* procbusd's proctrace_* programs: the prog_id lines of its descriptors' fdinfo (prog and link
 * fds); if there are none, every loaded proctrace_* program. */
static int find_progs(pid_t owner)
{
    char path[96], line[128];
    DIR *d;
    struct dirent *e;
    union bpf_attr a;

    g_nprogs = 0;
    snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)owner);
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p2[400];
        FILE *fp;
        unsigned id;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof(p2), "%s/%s", path, e->d_name);
        fp = fopen(p2, "r");
        if (fp == NULL)
            continue;
        while (fgets(line, sizeof(line), fp) != NULL)
            if (sscanf(line, "prog_id: %u", &id) == 1)
                prog_add(id);
        fclose(fp);
    }
    if (d != NULL)
        closedir(d);
    g_progs_by_owner = g_nprogs > 0;
    if (g_nprogs > 0)
        return 0;
    memset(&a, 0, sizeof(a));
    while (sys_bpf(BPF_PROG_GET_NEXT_ID, &a) == 0) {
        prog_add(a.next_id);
        a.start_id = a.next_id;
    }
    return g_nprogs > 0 ? 0 : -1;
}

/* Current run_time_ns and run_cnt of each program in g_progs. */
static void progs_read(uint64_t *ns, uint64_t *cnt)
{
    struct bpf_prog_info info;
    int i;

    for (i = 0; i < g_nprogs; i++) {
        ns[i] = cnt[i] = 0;
        if (bpf_prog_info_of(g_progs[i].id, &info) == 0) {
            ns[i] = info.run_time_ns;
            cnt[i] = info.run_cnt;
        }
    }
}

/* ---- procbusd ---- */

/*
 * Start procbusd in observe mode (trace = on, keep_exited_secs = 0) with a fresh segment, and
 * open it in *r; returns once this process has a record (the startup /proc walk is done).
 */
static int observer_start(struct bench_daemon *d, struct procbus_reader *r, const char *tag)
{
    char body[1024], ring[96] = "";
    uint64_t end;
    int rc = -1, opened = 0;

    bench_daemon_init(d, tag);
    if (g_ring_kb > 0)
        snprintf(ring, sizeof(ring), "trace_ring_kb = %d\n", g_ring_kb);
    if (g_batch_ms > 0)
        snprintf(ring + strlen(ring), sizeof(ring) - strlen(ring), "trace_batch_ms = %d\n",
                 g_batch_ms);
    snprintf(body, sizeof(body),
             "[procbusd]\nsegment = %s\nsocket = %s\nobserve = true\ntrace = on\n"
             "keep_exited_secs = 0\ncapacity = 16384\nlog_level = warn\n%s",
             d->seg, d->sock, ring);
    if (write_file(d->conf, body) < 0 || bench_daemon_start(d, NULL) < 0) {
        bench_daemon_stop(d, 30000);
        return -1;
    }
    end = mono() + 20000 * NS_PER_MS;
    while (!g_stop) {
        if (!opened && procbus_open(r, d->seg) == 0)
            opened = 1;
        if (opened) {
            struct procbus_proc me;
            if (procbus_get_pid(r, getpid(), &me) == 0) {
                rc = 0;
                break;
            }
        }
        if (!bench_daemon_alive(d)) {
            say("procbusd exited at startup (observe = true, trace = on)");
            show_tail(d->log);
            break;
        }
        if (mono() > end) {
            say("procbusd: %s within 20 s (is its observe mode built in?)",
                opened ? "this process never got a record" : "no segment");
            show_tail(d->log);
            break;
        }
        sleep_ms(5);
    }
    if (rc < 0) {
        if (opened)
            procbus_close(r);
        bench_daemon_stop(d, 30000);
    }
    return rc;
}

/*
 * Wait until procbusd has published everything the kernel queued before now: fork a marker
 * child that exits at once and follow the ring until its EXITED (or REMOVE) event shows up.
 * The BPF ring is in reservation order, so everything before the marker's exit is done too.
 */
static int observer_catch_up(struct procbus_reader *r, int timeout_ms)
{
    struct procbus_event ev;
    uint64_t missed, end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    pid_t m;
    int rc;

    procbus_seek_events(r, PROCBUS_SEEK_NOW);
    m = fork();
    if (m < 0)
        return -1;
    if (m == 0)
        _exit(0);
    waitpid(m, NULL, 0);
    while (!g_stop && mono() < end) {
        uint64_t gen = procbus_generation(r);
        rc = procbus_next_event(r, &ev, &missed);
        if (rc == -ENOENT) {
            procbus_wait(r, gen, 50);
            continue;
        }
        if (rc == 0 && ev.pid == m &&
            ((ev.kind == PROCBUS_EV_STATE && ev.new_state == PROCBUS_STATE_EXITED) ||
             ev.kind == PROCBUS_EV_REMOVE))
            return 0;
    }
    return -1;
}

/* ---- figure 1 + 2: offered rate, loss, BPF cost ---- */

struct genctl {
    volatile int go, stop;
    uint64_t count[MAX_WORKER]; /* processes created and reaped, per worker */
    int errors;
};

static char *const g_true_argv[] = {"true", NULL};
static char *const g_empty_env[] = {NULL};

static void worker_main(struct genctl *c, int idx, int exec, double per_s)
{
    uint64_t period = per_s > 0 ? (uint64_t)(1e9 / per_s) : 0, base, k = 0, n = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_TIMERSLACK, 1UL);
    while (!c->go && !c->stop)
        usleep(200);
    base = mono();
    while (!c->stop) {
        pid_t p;
        if (period) {
            uint64_t due = base + k * period, now = mono();
            if (due > now) {
                struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            } else if (now - due > 50 * NS_PER_MS) { /* far behind: no burst to catch up */
                base = now;
                k = 0;
            }
            k++;
        }
        p = fork();
        if (p == 0) {
            if (exec)
                execve("/bin/true", g_true_argv, g_empty_env);
            _exit(0);
        }
        if (p < 0) {
            __atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
            usleep(1000);
            continue;
        }
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        __atomic_store_n(&c->count[idx], ++n, __ATOMIC_RELAXED);
    }
    _exit(0);
}

static int run_step(struct step *s, struct genctl *c, const struct bench_daemon *d,
                    struct procbus_reader *r, int step_ms)
{
    uint64_t ns0[MAX_PROGS], cnt0[MAX_PROGS], ns1[MAX_PROGS], cnt1[MAX_PROGS];
    uint64_t t0, t1, procs = 0, dns = 0, dcnt = 0;
    struct procbus_info i0, i1, im;
    pid_t w[MAX_WORKER];
    long tk0, tk1;
    int k, j;

    memset(c, 0, sizeof(*c));
    memset(&i0, 0, sizeof(i0));
    memset(&i1, 0, sizeof(i1));
    memset(&im, 0, sizeof(im));
    for (k = 0; k < s->workers; k++) {
        w[k] = fork();
        if (w[k] == 0)
            worker_main(c, k, s->exec, s->rate > 0 ? (double)s->rate / s->workers : 0);
        if (w[k] < 0) {
            say("fork: %s", strerror(errno));
            c->stop = 1;
            for (j = 0; j < k; j++)
                waitpid(w[j], NULL, 0);
            return -1;
        }
    }
    sleep_ms(50);
    if (observer_catch_up(r, 5000) < 0)
        say("%s: procbusd did not catch up before the step", s->name);
    procbus_info(r, &i0);
    progs_read(ns0, cnt0);
    tk0 = proc_cpu_ticks(d->pid);
    t0 = mono();
    c->go = 1;
    sleep_ms(step_ms);
    for (k = 0; k < s->workers; k++)
        procs += __atomic_load_n(&c->count[k], __ATOMIC_RELAXED);
    t1 = mono();
    progs_read(ns1, cnt1);
    tk1 = proc_cpu_ticks(d->pid);
    procbus_info(r, &im);
    c->stop = 1;
    for (k = 0; k < s->workers; k++)
        while (waitpid(w[k], NULL, 0) < 0 && errno == EINTR)
            ;
    {
        uint64_t a = mono();
        s->drain_timeout = observer_catch_up(r, 20000) < 0;
        sleep_ms(100); /* the drop counters are copied on procbusd's loop turn */
        s->drain_ms = (double)(mono() - a) / 1e6 - 100;
    }
    procbus_info(r, &i1);
    for (k = 0; k < g_nprogs; k++) {
        g_progs[k].run_ns += ns1[k] - ns0[k];
        g_progs[k].run_cnt += cnt1[k] - cnt0[k];
        dns += ns1[k] - ns0[k];
        dcnt += cnt1[k] - cnt0[k];
    }
    s->secs = (double)(t1 - t0) / 1e9;
    s->procs = procs;
    s->procs_per_s = (double)procs / s->secs;
    s->events_per_s = s->procs_per_s * (s->exec ? 3 : 2);
    s->bpf_runs_per_s = (double)dcnt / s->secs;
    s->bpf_ns_per_run = dcnt ? (double)dns / (double)dcnt : NAN;
    s->ring_events_per_s = (double)(im.ring_head - i0.ring_head) / s->secs;
    s->pbd_cpu_pct = tk0 >= 0 && tk1 >= 0
                         ? 100.0 * (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK) / s->secs
                         : NAN;
    s->tracer_drops = i1.tracer_drops - i0.tracer_drops;
    s->events_dropped = i1.events_dropped - i0.events_dropped;
    s->records_dropped = i1.records_dropped - i0.records_dropped;
    s->loss = s->tracer_drops + s->events_dropped;
    s->ran = 1;
    say("  %-14s %7.0f proc/s %8.0f ev/s  bpf %6.0f ns/run  procbusd %3.0f%% CPU  loss %" PRIu64
        " (tracer %" PRIu64 ", publisher %" PRIu64 ")%s",
        s->name, s->procs_per_s, s->events_per_s, s->bpf_ns_per_run, s->pbd_cpu_pct, s->loss,
        s->tracer_drops, s->events_dropped, s->drain_timeout ? "  [catch-up timed out]" : "");
    if (c->errors)
        say("  %s: %d fork failures", s->name, c->errors);
    return 0;
}

static void plan_steps(void)
{
    static const int fork_full[] = {2000, 5000, 10000, 20000};
    static const int exec_full[] = {1000, 2000, 5000, 10000};
    static const int fork_quick[] = {5000, 20000};
    static const int exec_quick[] = {2000};
    static const int workers_full[] = {1, 2, 4};
    static const int workers_quick[] = {2};
    int e, i;

    g_nsteps = 0;
    for (e = 0; e < 2; e++) {
        const int *rates =
            e ? (g_quick ? exec_quick : exec_full) : (g_quick ? fork_quick : fork_full);
        int nr = e ? (g_quick ? 1 : 4) : (g_quick ? 2 : 4);
        const int *ws = g_quick ? workers_quick : workers_full;
        int nw = g_quick ? 1 : 3;
        for (i = 0; i < nr; i++) {
            struct step *s = &g_steps[g_nsteps++];
            memset(s, 0, sizeof(*s));
            s->exec = e;
            s->workers = 2;
            s->rate = rates[i];
            snprintf(s->name, sizeof(s->name), "%s %dk/s", e ? "exec" : "fork", rates[i] / 1000);
        }
        for (i = 0; i < nw; i++) {
            struct step *s = &g_steps[g_nsteps++];
            memset(s, 0, sizeof(*s));
            s->exec = e;
            s->workers = ws[i];
            s->rate = 0;
            snprintf(s->name, sizeof(s->name), "%s max x%d", e ? "exec" : "fork", ws[i]);
        }
    }
}

static int bench_rate(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    struct genctl *c;
    int step_ms = g_quick ? 1500 : 3000, i, rc = -1;
    double best = NAN, first_loss = NAN;
    const struct step *sb = NULL, *sl = NULL;
    uint64_t tot_ns = 0, tot_cnt = 0;
    char text[200];

    c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return -1;
    plan_steps();
    say("rate: %d steps of %.1f s, procbusd --observe, BPF run-time statistics on", g_nsteps,
        step_ms / 1000.0);
    if (observer_start(&d, &r, "rate") < 0) {
        munmap(c, sizeof(*c));
        return -1;
    }
    for (i = 0; i < 100 && find_progs(d.pid) < 0; i++) /* the programs may attach after the walk */
        sleep_ms(20);
    if (g_nprogs == 0)
        say("no proctrace_* BPF program found: no BPF cost figures");
    for (i = 0; i < g_nprogs; i++)
        say("BPF program %u %s%s", g_progs[i].id, g_progs[i].name,
            g_progs_by_owner ? " (procbusd's)" : " (any owner)");
    stats_on();
    if (g_stats_fd < 0 && g_stats_old < 0)
        say("cannot enable BPF run-time statistics: no BPF cost figures");
    for (i = 0; i < g_nsteps && !g_stop; i++) {
        if (!bench_daemon_alive(&d)) {
            say("procbusd died during the rate steps");
            show_tail(d.log);
            goto out;
        }
        if (run_step(&g_steps[i], c, &d, &r, step_ms) < 0)
            goto out;
    }
    if (g_stop)
        goto out;
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        if (!s->ran)
            continue;
        if (s->loss == 0 && (!isfinite(best) || s->events_per_s > best)) {
            best = s->events_per_s;
            sb = s;
        }
        if (s->loss > 0 && (!isfinite(first_loss) || s->events_per_s < first_loss)) {
            first_loss = s->events_per_s;
            sl = s;
        }
    }
    snprintf(text, sizeof(text), "highest tracer event rate with zero loss (step \"%s\")",
             sb ? sb->name : "none");
    add("zero_loss_events_per_s", text, best, "events/s", T_NONE, 0, 1);
    add("zero_loss_processes_per_s", "  same, processes/s", sb ? sb->procs_per_s : NAN, "procs/s",
        T_NONE, 0, 1);
    snprintf(text, sizeof(text), "lowest tracer event rate with loss (%s%s%s)",
             sl ? "step \"" : "not reached in any step", sl ? sl->name : "", sl ? "\"" : "");
    add("loss_begins_events_per_s", text, first_loss, "events/s", T_NONE, 0, 1);
    add("loss_begins_loss", "  events lost in that step", sl ? (double)sl->loss : NAN, "events",
        T_NONE, 0, 1);
    {
        double maxp = 0;
        for (i = 0; i < g_nsteps; i++)
            if (g_steps[i].ran && g_steps[i].events_per_s > maxp)
                maxp = g_steps[i].events_per_s;
        add("max_offered_events_per_s", "highest tracer event rate offered in any step", maxp,
            "events/s", T_NONE, 0, 1);
    }
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        char key[80], base[48];
        int j, o = 0;
        if (!s->ran)
            continue;
        for (j = 0; s->name[j] && o < (int)sizeof(base) - 1; j++)
            base[o++] = s->name[j] == ' ' || s->name[j] == '/' ? '_' : s->name[j];
        base[o] = '\0';
        snprintf(key, sizeof(key), "step_%s_events_per_s", base);
        add(key, key, s->events_per_s, "events/s", T_NONE, 0, 0);
        snprintf(key, sizeof(key), "step_%s_loss", base);
        add(key, key, (double)s->loss, "events", T_NONE, 0, 0);
    }
    if (g_stats_fd >= 0 || g_stats_old >= 0) {
        for (i = 0; i < g_nprogs; i++) {
            char key[80], label[160], shortname[BPF_OBJ_NAME_LEN + 1];
            size_t l;
            snprintf(shortname, sizeof(shortname), "%s", g_progs[i].name + 10);
            l = strlen(shortname);
            while (l > 0 && shortname[l - 1] == '_')
                shortname[--l] = '\0';
            snprintf(key, sizeof(key), "bpf_%s_ns_per_run", shortname);
            snprintf(label, sizeof(label), "BPF %s: run time per run, %.3g runs", g_progs[i].name,
                     (double)g_progs[i].run_cnt);
            add(key, label,
                g_progs[i].run_cnt ? (double)g_progs[i].run_ns / (double)g_progs[i].run_cnt : NAN,
                "ns", T_NONE, 0, 1);
            tot_ns += g_progs[i].run_ns;
            tot_cnt += g_progs[i].run_cnt;
        }
        add("bpf_ns_per_event", "BPF run time per program run, all proctrace_* programs",
            tot_cnt ? (double)tot_ns / (double)tot_cnt : NAN, "ns", T_LT, 1000, 1);
        add("bpf_runs", "bpf_runs", (double)tot_cnt, "", T_NONE, 0, 0);
    }
    rc = 0;
out:
    stats_off();
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
    munmap(c, sizeof(*c));
    return rc;
}

/* ---- figure 3: exec -> visible ---- */

struct latctx {
    char seg[96];
    int block, want;
    pid_t parent;
    volatile int done, ready;
    int n, stale, getfail, err;
    uint64_t missed;
    double *lat, *detect, *wake; /* µs */
};

static void *lat_reader(void *arg)
{
    struct latctx *x = arg;
    struct procbus_reader r;
    struct procbus_event ev;
    struct procbus_proc rec;
    uint64_t missed;

    if (procbus_open(&r, x->seg) != 0) {
        x->err = 1;
        x->ready = 1;
        return NULL;
    }
    procbus_seek_events(&r, PROCBUS_SEEK_NOW);
    x->ready = 1;
    while (!x->done && x->n < x->want) {
        uint64_t gen = procbus_generation(&r), now;
        int rc = procbus_next_event(&r, &ev, &missed);
        if (rc == -ENOENT) {
            x->missed += missed;
            if (x->block)
                procbus_wait(&r, gen, 100);
            continue;
        }
        if (rc != 0)
            continue;
        x->missed += missed;
        if (ev.kind != PROCBUS_EV_EXEC || strcmp(ev.name, "sleep") != 0)
            continue;
        rc = procbus_get_pid(&r, ev.pid, &rec);
        now = pb_now_ns(CLOCK_REALTIME);
        if (rc != 0) {
            x->getfail++;
            continue;
        }
        if (rec.ppid != x->parent)
            continue; /* someone else's sleep */
        if (strncmp(rec.comm, "sleep", PROCBUS_COMM_LEN) != 0) {
            x->stale++;
            continue;
        }
        x->lat[x->n] = ((double)now - (double)rec.state_since_ns) / 1e3;
        x->detect[x->n] = ((double)ev.time_ns - (double)rec.state_since_ns) / 1e3;
        x->wake[x->n] = ((double)now - (double)ev.time_ns) / 1e3;
        x->n++;
    }
    procbus_close(&r);
    return NULL;
}

/* Reap the children in kids[] that have exited (all of them if `all`), never anyone else's:
 * procbusd is our child too. */
static void reap_kids(pid_t *kids, int *n, int all)
{
    int i = 0;

    while (i < *n) {
        pid_t r = waitpid(kids[i], NULL, all ? 0 : WNOHANG);
        if (r == kids[i] || (r < 0 && errno != EINTR))
            kids[i] = kids[--*n];
        else if (r == 0 || !all)
            i++;
    }
}

/* Percentiles 50, 99, 99.9 of v[0..n) into p[3]. */
static void pcts(double *v, int n, double p[3])
{
    int k;

    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    p[0] = pct(v, n, 50);
    p[1] = pct(v, n, 99);
    k = (int)(((long)n * 999 + 999) / 1000) - 1; /* pct()'s rank rule; it takes whole percents */
    p[2] = n > 0 ? v[k < 0 ? 0 : k < n ? k : n - 1] : NAN;
}

/* Fork children that exec /bin/sleep 0.05, 1.5 ms apart, until done() says so (or `n` of them
 * when done is NULL, or the deadline passes); reap them all. How many were forked. */
static int exec_workload(int n, int (*done)(void *), void *arg, uint64_t end)
{
    static char *const sleep_argv[] = {"sleep", "0.05", NULL};
    pid_t kids[1024];
    int nkids = 0, forked = 0;

    while (!g_stop && mono() < end && (done != NULL ? !done(arg) : forked < n)) {
        pid_t p = fork();
        struct timespec gap = {0, 1500000};
        if (p == 0) {
            execv("/bin/sleep", sleep_argv);
            _exit(127);
        }
        if (p > 0) {
            forked++;
            if (nkids < 1024)
                kids[nkids++] = p;
        }
        nanosleep(&gap, NULL);
        reap_kids(kids, &nkids, 0);
    }
    reap_kids(kids, &nkids, 1);
    return forked;
}

static int lat_done(void *arg)
{
    struct latctx *x = arg;

    return x->err || x->n >= x->want;
}

static int lat_run(const struct bench_daemon *d, int block, int want, const char *tag,
                   double p_out[3])
{
    struct latctx x;
    pthread_t th;
    uint64_t end;
    int forked = 0, rc = -1;
    char key[80], label[200];
    double p[3];
    const char *what = block ? "blocking reader (procbus_wait)" : "spinning reader";

    memset(&x, 0, sizeof(x));
    snprintf(x.seg, sizeof(x.seg), "%s", d->seg);
    x.block = block;
    x.want = want;
    x.parent = getpid();
    x.lat = calloc((size_t)want, sizeof(double));
    x.detect = calloc((size_t)want, sizeof(double));
    x.wake = calloc((size_t)want, sizeof(double));
    if (x.lat == NULL || x.detect == NULL || x.wake == NULL)
        goto out;
    if (pthread_create(&th, NULL, lat_reader, &x) != 0)
        goto out;
    while (!x.ready)
        usleep(100);
    end = mono() + (uint64_t)(want * 20 + 10000) * NS_PER_MS;
    forked = exec_workload(want, lat_done, &x, end);
    x.done = 1;
    pthread_join(th, NULL);
    if (x.err || x.n < want / 2) {
        say("exec latency (%s): only %d of %d samples from %d children", what, x.n, want, forked);
        goto out;
    }
    snprintf(key, sizeof(key), "exec_visible_%s_p50_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p50", what);
    add(key, label, pct(x.lat, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_p99_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p99", what);
    add(key, label, pct(x.lat, x.n, 99), "us", block ? T_NONE : T_LT, 200, 1);
    pcts(x.lat, x.n, p);
    if (p_out != NULL)
        memcpy(p_out, p, sizeof(p));
    snprintf(key, sizeof(key), "exec_visible_%s_p999_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p99.9", what);
    add(key, label, p[2], "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_max_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: max", what);
    add(key, label, pct(x.lat, x.n, 100), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_min_us", tag);
    add(key, key, pct(x.lat, x.n, 0), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_detect_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: exec -> event staged by procbusd (p50)", what);
    add(key, label, pct(x.detect, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_detect_p99_us", tag);
    add(key, key, pct(x.detect, x.n, 99), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_wake_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: staged -> seen (commit, wake-up) (p50)", what);
    add(key, label, pct(x.wake, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_wake_p99_us", tag);
    add(key, key, pct(x.wake, x.n, 99), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_samples", tag);
    add(key, key, x.n, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_stale", tag);
    add(key, key, x.stale, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_get_failed", tag);
    add(key, key, x.getfail, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_ring_missed", tag);
    add(key, key, (double)x.missed, "", T_NONE, 0, 0);
    say("  %s: %d samples, %d stale records, %d lookups failed, %" PRIu64 " ring events missed",
        what, x.n, x.stale, x.getfail, x.missed);
    rc = 0;
out:
    free(x.lat);
    free(x.detect);
    free(x.wake);
    return rc;
}

/*
 * The floor: tracer-floor (beside this binary) consumes the same BPF program's events with
 * nothing to do but timestamp them, under the same exec workload. Its p50/p99/p99.9 into
 * p[3]; 0, or -1 (said).
 */
static int floor_run(int want, double p[3])
{
    char exe[PATH_MAX], out[PATH_MAX], ready[PATH_MAX + 8], log[PATH_MAX], ring[16], batch[16],
        parent[16];
    char *argv[] = {exe, out, parent, ring, batch, NULL};
    double *lat = NULL;
    ssize_t k;
    uint64_t end;
    pid_t pid;
    FILE *f;
    int n = 0;

    k = readlink("/proc/self/exe", exe, sizeof(exe) - 16);
    if (k <= 0)
        return -1;
    exe[k] = '\0';
    snprintf(strrchr(exe, '/') != NULL ? strrchr(exe, '/') + 1 : exe, 16, "tracer-floor");
    if (access(exe, X_OK) != 0) {
        say("no %s: the floor is not measured", exe);
        return -1;
    }
    snprintf(out, sizeof(out), "%s/floor.txt", g_tmp);
    snprintf(ready, sizeof(ready), "%s.ready", out);
    snprintf(log, sizeof(log), "%s/floor.log", g_tmp);
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    snprintf(ring, sizeof(ring), "%d", g_ring_kb);
    snprintf(batch, sizeof(batch), "%d", g_batch_ms);
    pid = start_bg(argv, log, SIGKILL);
    if (pid < 0)
        return -1;
    end = mono() + 20000 * NS_PER_MS;
    while (access(ready, F_OK) != 0 && bg_alive(pid) && mono() < end)
        sleep_ms(5);
    if (access(ready, F_OK) != 0) {
        say("tracer-floor did not start");
        show_tail(log);
        stop_bg(pid, 5000, "tracer-floor");
        return -1;
    }
    exec_workload(want, NULL, NULL, mono() + (uint64_t)(want * 20 + 10000) * NS_PER_MS);
    sleep_ms(200 + g_batch_ms);
    if (stop_bg(pid, 10000, "tracer-floor") != 0 || (f = fopen(out, "r")) == NULL) {
        show_tail(log);
        return -1;
    }
    lat = calloc((size_t)want + 1, sizeof(*lat));
    while (lat != NULL && n <= want && fscanf(f, "%lf", &lat[n]) == 1)
        n++;
    fclose(f);
    if (lat == NULL || n < want / 2) {
        say("tracer-floor: only %d of %d samples", n, want);
        free(lat);
        return -1;
    }
    pcts(lat, n, p);
    add("exec_floor_p50_us", "floor (same BPF program, a consumer that only timestamps): p50", p[0],
        "us", T_NONE, 0, 1);
    add("exec_floor_p99_us", "floor: p99", p[1], "us", T_NONE, 0, 1);
    add("exec_floor_p999_us", "floor: p99.9", p[2], "us", T_NONE, 0, 1);
    add("exec_floor_samples", "exec_floor_samples", n, "", T_NONE, 0, 0);
    say("  floor: %d samples", n);
    free(lat);
    return 0;
}

static int bench_latency(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    int want = g_quick ? 500 : 2000, rc = -1;
    double spin[3], flo[3];
    static const char *const pname[3] = {"p50", "p99", "p999"};

    say("exec latency: %d execs of /bin/sleep 0.05, 1.5 ms apart, spinning then blocking reader, "
        "then the floor",
        want);
    if (observer_start(&d, &r, "lat") < 0)
        return -1;
    if (lat_run(&d, 0, want, "spin", spin) == 0 && !g_stop &&
        lat_run(&d, 1, want, "block", NULL) == 0)
        rc = 0;
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
    if (rc == 0 && !g_stop && floor_run(want, flo) == 0) {
        for (int i = 0; i < 3; i++) {
            char key[64], label[128];
            snprintf(key, sizeof(key), "exec_visible_ratio_to_floor_%s", pname[i]);
            snprintf(label, sizeof(label), "procbusd (spinning reader) / floor, %s",
                     i == 2 ? "p99.9" : pname[i]);
            add(key, label, flo[i] > 0 ? spin[i] / flo[i] : NAN, "x", T_NONE, 0, 1);
        }
    }
    return rc;
}

/* ---- figure 4: overhead on a fork/exec workload ---- */

static int64_t fork_exec_workload(int n)
{
    uint64_t t0 = mono();
    int i;

    for (i = 0; i < n && !g_stop; i++) {
        pid_t p = fork();
        if (p == 0) {
            execve("/bin/true", g_true_argv, g_empty_env);
            _exit(127);
        }
        if (p < 0)
            return -1;
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    return (int64_t)(mono() - t0);
}

static int bench_overhead(void)
{
    int n = g_quick ? 500 : 2000, pairs = g_quick ? 3 : 5, k, no = 0, nn = 0;
    double off[16], on[16], moff, mon;
    uint64_t drops = 0;
    char label[200];

    say("overhead: %d rounds of %d x fork+execve(/bin/true)+waitpid, off/on interleaved", 2 * pairs,
        n);
    fork_exec_workload(n / 4); /* warm-up */
    for (k = 0; k < pairs && !g_stop; k++) {
        struct procbus_reader r;
        struct procbus_info i0, i1;
        struct bench_daemon d;
        int64_t t = fork_exec_workload(n);
        if (t < 0)
            return -1;
        off[no++] = (double)t / 1e6;
        memset(&i0, 0, sizeof(i0));
        memset(&i1, 0, sizeof(i1));
        if (observer_start(&d, &r, "ovh") < 0)
            return -1;
        sleep_ms(100);
        procbus_info(&r, &i0);
        t = fork_exec_workload(n);
        observer_catch_up(&r, 10000);
        sleep_ms(100);
        procbus_info(&r, &i1);
        drops += i1.tracer_drops - i0.tracer_drops + i1.events_dropped - i0.events_dropped;
        procbus_close(&r);
        bench_daemon_stop(&d, 30000);
        if (t < 0)
            return -1;
        on[nn++] = (double)t / 1e6;
        say("  round %d: off %.1f ms, on %.1f ms", k + 1, off[no - 1], on[nn - 1]);
    }
    if (g_stop)
        return -1;
    moff = pct(off, no, 50);
    mon = pct(on, nn, 50);
    snprintf(label, sizeof(label), "%d x fork+exec+wait, tracing off (no procbusd): median of %d",
             n, no);
    add("overhead_off_ms", label, moff, "ms", T_NONE, 0, 1);
    snprintf(label, sizeof(label), "%d x fork+exec+wait, procbusd --observe: median of %d", n, nn);
    add("overhead_on_ms", label, mon, "ms", T_NONE, 0, 1);
    add("overhead_off_us_per_proc", "  same, per process, tracing off", moff * 1e3 / n, "us",
        T_NONE, 0, 1);
    add("overhead_on_us_per_proc", "  same, per process, tracing on", mon * 1e3 / n, "us", T_NONE,
        0, 1);
    add("overhead_ratio", "overhead: on / off (medians, same run)", mon / moff, "x", T_NONE, 0, 1);
    add("overhead_off_min_ms", "overhead_off_min_ms", pct(off, no, 0), "ms", T_NONE, 0, 0);
    add("overhead_off_max_ms", "overhead_off_max_ms", pct(off, no, 100), "ms", T_NONE, 0, 0);
    add("overhead_on_min_ms", "overhead_on_min_ms", pct(on, nn, 0), "ms", T_NONE, 0, 0);
    add("overhead_on_max_ms", "overhead_on_max_ms", pct(on, nn, 100), "ms", T_NONE, 0, 0);
    add("overhead_on_loss", "overhead_on_loss", (double)drops, "events", T_NONE, 0, 0);
    return 0;
}

/* ---- figure 5: procbus ps --all vs ps -e ---- */

static long count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    long n = 0;
    int ch;

    if (fp == NULL)
        return -1;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

static int bench_ps(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    int runs = g_quick ? 10 : 30, i, st, rc = -1, nb = 0, np = 0;
    double *pb = calloc((size_t)runs, sizeof(double)), *pe = calloc((size_t)runs, sizeof(double));
    char out1[160], out2[160], label[200];
    char *pb_argv[6], *ps_argv[3];
    long lines_pb, lines_ps;
    size_t nrec = 0;
    struct procbus_proc *list = NULL;

    if (pb == NULL || pe == NULL)
        goto done;
    say("ps: %d x `procbus ps --all` and %d x `ps -e`, interleaved", runs, runs);
    if (observer_start(&d, &r, "ps") < 0)
        goto done;
    pb_argv[0] = g_procbus;
    pb_argv[1] = "-s";
    pb_argv[2] = d.seg;
    pb_argv[3] = "ps";
    pb_argv[4] = "--all";
    pb_argv[5] = NULL;
    ps_argv[0] = g_ps;
    ps_argv[1] = "-e";
    ps_argv[2] = NULL;
    snprintf(out1, sizeof(out1), "%s/procbus-ps.out", g_tmp);
    snprintf(out2, sizeof(out2), "%s/ps-e.out", g_tmp);
    if (run_timed(pb_argv, out1, &st) < 0 || st != 0) {
        say("`procbus ps --all` failed (wait status 0x%x)", st);
        show_tail(g_errlog);
        goto out;
    }
    if (run_timed(ps_argv, out2, &st) < 0 || st != 0) {
        say("`ps -e` failed (wait status 0x%x)", st);
        goto out;
    }
    lines_pb = count_lines(out1) - 1; /* minus the header line */
    lines_ps = count_lines(out2) - 1;
    {
        size_t cap = 65536;
        list = malloc(cap * sizeof(*list));
        if (list == NULL || procbus_list(&r, list, cap, &nrec) != 0)
            nrec = 0;
    }
    for (i = 0; i < 2; i++) { /* warm the page cache */
        run_timed(pb_argv, NULL, &st);
        run_timed(ps_argv, NULL, &st);
    }
    for (i = 0; i < runs && !g_stop; i++) {
        int64_t t = run_timed(pb_argv, NULL, &st);
        if (t >= 0 && st == 0)
            pb[nb++] = (double)t / 1e6;
        t = run_timed(ps_argv, NULL, &st);
        if (t >= 0 && st == 0)
            pe[np++] = (double)t / 1e6;
    }
    if (g_stop || nb == 0 || np == 0)
        goto out;
    snprintf(label, sizeof(label), "`procbus ps --all`, whole process: median of %d", nb);
    add("ps_procbus_ms", label, pct(pb, nb, 50), "ms", T_NONE, 0, 1);
    add("ps_procbus_max_ms", "ps_procbus_max_ms", pct(pb, nb, 100), "ms", T_NONE, 0, 0);
    snprintf(label, sizeof(label), "`ps -e`, whole process: median of %d", np);
    add("ps_e_ms", label, pct(pe, np, 50), "ms", T_NONE, 0, 1);
    add("ps_e_max_ms", "ps_e_max_ms", pct(pe, np, 100), "ms", T_NONE, 0, 0);
    add("ps_speedup", "ps -e median / procbus ps --all median", pct(pe, np, 50) / pct(pb, nb, 50),
        "x", T_NONE, 0, 1);
    add("ps_procbus_lines", "  lines printed by `procbus ps --all` (less the header)",
        (double)lines_pb, "lines", T_NONE, 0, 1);
    add("ps_e_lines", "  lines printed by `ps -e` (less the header)", (double)lines_ps, "lines",
        T_NONE, 0, 1);
    add("ps_segment_records", "  records in the segment at that moment", (double)nrec, "records",
        T_NONE, 0, 1);
    rc = 0;
out:
    free(list);
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
done:
    free(pb);
    free(pe);
    return rc;
}

/* ---- main ---- */

/* BPF statistics back as they were, then bench_util.h's cleanup (processes, segments, g_tmp). */
static void cleanup(void)
{
    stats_off();
    bench_cleanup();
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tracer-bench [--quick] [--json FILE] [--ring-kb N] [--batch-ms N] [BUILD_DIR]\n"
            "\n"
            "Benchmarks procbusd's eBPF tracer in observe mode with the binaries of BUILD_DIR\n"
            "(default: $PROCBUS_BUILD_DIR, else build): event rate and where loss begins, BPF\n"
            "run time per event, exec -> visible latency, overhead on a fork/exec workload,\n"
            "and `procbus ps --all` against `ps -e`.\n"
            "\n"
            "  --quick        shorter steps and fewer samples (about 30 s)\n"
            "  --json FILE    also write the figures as flat JSON keys to FILE\n"
            "  --ring-kb N    procbusd's trace_ring_kb (BPF ring size; default: its own)\n"
            "  --batch-ms N   procbusd's trace_batch_ms (rate-limited wake-ups; default 0)\n"
            "  --bin-dir DIR  same as BUILD_DIR\n"
            "\n"
            "Needs root and kernel BTF (else prints \"tracer-bench: skipped: ...\" and exits 0).\n"
            "Prints a markdown table on stdout, progress on stderr. Exit status 0 when every\n"
            "benchmark ran (targets missed or not), 1 when one could not run, 2 on bad usage.\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *dir = NULL;
    struct machine m;
    int failed = 0, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            g_quick = 1;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--ring-kb") == 0 && i + 1 < argc) {
            g_ring_kb = atoi(argv[++i]);
            if (g_ring_kb < 4 || (g_ring_kb & (g_ring_kb - 1)) != 0) {
                fprintf(stderr, "tracer-bench: --ring-kb: a power of two >= 4\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--batch-ms") == 0 && i + 1 < argc) {
            g_batch_ms = atoi(argv[++i]);
            if (g_batch_ms < 0 || g_batch_ms > 1000) {
                fprintf(stderr, "tracer-bench: --batch-ms: 0 .. 1000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && dir == NULL) {
            dir = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    snprintf(g_mode, sizeof(g_mode), "%s%s", g_quick ? "quick" : "full",
             g_batch_ms > 0 || g_ring_kb > 0 ? "," : "");
    if (g_batch_ms > 0)
        snprintf(g_mode + strlen(g_mode), sizeof(g_mode) - strlen(g_mode), " trace_batch_ms=%d",
                 g_batch_ms);
    if (g_ring_kb > 0)
        snprintf(g_mode + strlen(g_mode), sizeof(g_mode) - strlen(g_mode), " trace_ring_kb=%d",
                 g_ring_kb);
    if (dir == NULL)
        dir = getenv("PROCBUS_BUILD_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "build";
    snprintf(g_bindir, sizeof(g_bindir), "%s", dir);

    if (geteuid() != 0) {
        printf("tracer-bench: skipped: not root (the eBPF tracer needs root)\n");
        return 0;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        printf("tracer-bench: skipped: no kernel BTF at /sys/kernel/btf/vmlinux\n");
        return 0;
    }
    if (bench_find_programs("pass BUILD_DIR") < 0)
        return 1;
    if (find_exe("ps", g_ps, sizeof(g_ps)) < 0 && find_exe("/bin/ps", g_ps, sizeof(g_ps)) < 0) {
        say("ps not found (Debian: apt-get install procps)");
        return 1;
    }
    if (access("/bin/true", X_OK) < 0 || access("/bin/sleep", X_OK) < 0) {
        say("/bin/true or /bin/sleep missing");
        return 1;
    }

    if (bench_setup() < 0)
        return 1;
    atexit(cleanup);

    machine_start(&m);
    failed |= bench_rate() < 0;
    if (!g_stop)
        failed |= bench_latency() < 0;
    if (!g_stop)
        failed |= bench_overhead() < 0;
    if (!g_stop)
        failed |= bench_ps() < 0;
    machine_end(&m);
    cleanup();
    if (g_stop) {
        say("interrupted");
        return 1;
    }
    print_table(&m);
    if (json != NULL && write_json(json, &m) < 0)
        failed = 1;
    if (failed)
        say("some benchmarks could not run (see above)");
    return failed ? 1 : 0;
}
