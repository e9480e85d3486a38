/* procbusd-bench.c - procbusd benchmarks: exit-to-visible latency, RSS, status vs supervisord. */
#define _GNU_SOURCE
#include "procbus.h"
#define BENCH_NAME     "procbusd-bench"
#define BENCH_MAX_ROWS 96
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Two groups of benchmarks, selected on the command line:
 *
 *   --procbusd  needs only build/procbusd:
 *     - exit-to-visible: a program whose command is this binary in --exiter
 *       mode sleeps 20 ms, stores its CLOCK_MONOTONIC (and CLOCK_REALTIME)
 *       time into a shared file and _exit()s; procbusd restarts it
 *       (autorestart=true, startsecs=0). This process follows the event ring as
 *       a reader and, for every EXITED event of that record, reads its own
 *       clock right away: latency = seen - exit stamp. Three runs: idle machine
 *       with a blocking reader (procbus_wait), the same with one busy-loop
 *       process pinned to each CPU, and idle with a reader that spins on
 *       procbus_generation (no futex wake-up: the daemon's part alone). Then a
 *       control, idle and loaded: autorestart=false, the bench restarting the
 *       program with `procbus start` after each exit (outside the timing), so
 *       that no restart is spawned before the commit that publishes EXITED.
 *     - resident memory of procbusd with 100 and 1,000 `sleep 1000` programs.
 *   --peer      needs Debian's supervisor package too: the same 100 `sleep 1000`
 *     programs under supervisord and procbusd at once (one config file that
 *     both load); whole-process `supervisorctl status` vs `procbus status`, and
 *     one XML-RPC getProcessInfo round trip from a warm Python client
 *     (bench/xmlrpc_getinfo.py) vs procbus_get_name in this process.
 *
 * Everything lives in a private mkdtemp folder under /tmp and uniquely named
 * segments; daemons get PR_SET_PDEATHSIG, this process is a child subreaper,
 * and every process is stopped and reaped before exit, also on SIGINT/SIGTERM.
 */

#define EXITER_SLEEP (20 * 1000000L) /* ns the exiter sleeps before exiting */

/* ---- globals (the shared ones are in bench_util.h) ---- */

static int g_verbose;
static char g_self[PATH_MAX - 64]; /* this binary (the exiter's command) */
static char g_client[PATH_MAX];    /* bench/xmlrpc_getinfo.py */
static char g_python[PATH_MAX], g_supervisord[PATH_MAX], g_supervisorctl[PATH_MAX];
static volatile uint64_t g_sink;

/* ---- statistics ---- */

static double mean_of(const double *v, int n)
{
    double s = 0;
    int i;

    for (i = 0; i < n; i++)
        s += v[i];
    return n > 0 ? s / n : NAN;
}

/* ---- processes ---- */

static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long v = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = atol(line + flen + 1);
            break;
        }
    fclose(fp);
    return v;
}

/* A CPU burner pinned to `cpu`, killed if this process dies. */
static pid_t start_burner(int cpu)
{
    pid_t parent = getpid(), pid = fork();

    if (pid == 0) {
        cpu_set_t set;
        volatile unsigned long x = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        signal(SIGINT, SIG_IGN); /* the parent stops us */
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
        for (;;)
            x++;
    }
    if (pid > 0)
        track_bg(pid);
    return pid;
}

/* ---- procbusd instances ---- */

/* Start procbusd on d->conf (written by the caller, after bench_daemon_init) without its
 * tracer. */
static int daemon_start(struct bench_daemon *d)
{
    static const char *const no_trace[] = {"--trace", "off", NULL};
    return bench_daemon_start(d, no_trace);
}

/* Open the daemon's segment once it exists. */
static int open_seg(struct procbus_reader *r, const struct bench_daemon *d, int timeout_ms)
{
    uint64_t end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    int rc;

    for (;;) {
        rc = procbus_open(r, d->seg);
        if (rc == 0)
            return 0;
        if (mono() > end || g_stop || !bench_daemon_alive(d)) {
            say("cannot open segment %s: %s", d->seg, strerror(-rc));
            show_tail(d->log);
            return -1;
        }
        sleep_ms(5);
    }
}

/* Wait until `want` supervised records are RUNNING; 0 or -1. */
static int wait_running(struct procbus_reader *r, const struct bench_daemon *d, size_t want,
                        int timeout_ms)
{
    uint64_t end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    size_t cap = want + 64, n, i, running = 0;
    struct procbus_proc *list = malloc(cap * sizeof(*list));
    int rc;

    if (list == NULL)
        return -1;
    for (;;) {
        uint64_t gen = procbus_generation(r);
        rc = procbus_list(r, list, cap, &n);
        if (rc == -ENOSPC) {
            struct procbus_proc *g = realloc(list, (n + 64) * sizeof(*list));
            if (g == NULL)
                break;
            list = g;
            cap = n + 64;
            continue;
        }
        if (rc == 0) {
            running = 0;
            for (i = 0; i < n; i++)
                running += !(list[i].flags & PROCBUS_F_DESCENDANT) &&
                           list[i].state == PROCBUS_STATE_RUNNING;
            if (running >= want) {
                free(list);
                return 0;
            }
        }
        if (mono() > end || g_stop || !bench_daemon_alive(d))
            break;
        procbus_wait(r, gen, 100);
    }
    say("procbusd: only %zu of %zu programs RUNNING", running, want);
    show_tail(d->log);
    free(list);
    return -1;
}

/* ---- exit-to-visible latency ---- */

struct stamp {
    uint64_t seq;     /* incremented by each exiter run */
    uint64_t mono_ns; /* CLOCK_MONOTONIC just before _exit */
    uint64_t real_ns; /* CLOCK_REALTIME, for the breakdown against event times */
    int32_t pid;
};

/* --exiter FILE: what procbusd runs. Sleep, stamp, exit. */
static int exiter_main(const char *path)
{
    struct timespec d = {0, EXITER_SLEEP};
    struct stamp *s;
    int fd = open(path, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        _exit(2);
    s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED)
        _exit(2);
    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
    s->pid = (int32_t)getpid();
    s->real_ns = pb_now_ns(CLOCK_REALTIME);
    __atomic_store_n(&s->mono_ns, pb_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
    _exit(0);
}

struct lat {
    int n, n_split;
    double p50, p99, max, mean;      /* us, exit -> seen */
    double det50, det99, sp50, sp99; /* us: exit -> EXITED staged; restart spawn in the commit */
    double wake50, wake99;           /* us: last staging of the commit -> seen */
    unsigned long stale, skipped, missed; /* sanity counters */
};

/* What a latency run needs: the daemon, the record, the stamp, how to restart. */
struct exit_run {
    struct procbus_reader *r;
    const struct bench_daemon *d;
    uint64_t id;
    struct stamp *st;
    int spin;                  /* poll procbus_generation instead of blocking in procbus_wait */
    char *const *restart_argv; /* NULL: procbusd restarts it (autorestart=true) */
};

/* `procbus start` for the autorestart=false runs (outside the timed interval). */
static int restart_exiter(const struct exit_run *x)
{
    int st = 0;

    if (run_timed(x->restart_argv, NULL, &st) < 0 || st != 0) {
        say("procbus start exiter failed (wait status 0x%x)", st);
        show_tail(g_errlog);
        return -1;
    }
    return 0;
}

/*
 * Follow the ring and time `want` EXITED events of the record. For each one:
 * exit -> seen (CLOCK_MONOTONIC), and a breakdown in CLOCK_REALTIME against
 * the events' staging times: exit -> EXITED staged; EXITED staged -> STARTING
 * staged when procbusd spawned the restart before committing; the last of
 * those -> seen (commit, futex wake-up, reader).
 */
static int measure_exits(const struct exit_run *x, int want, struct lat *out)
{
    struct procbus_reader *r = x->r;
    double *lat = calloc((size_t)want, sizeof(double)), *det = calloc((size_t)want, sizeof(double));
    double *sp = calloc((size_t)want, sizeof(double)), *wk = calloc((size_t)want, sizeof(double));
    uint64_t end = mono() + (uint64_t)want * 80 * NS_PER_MS + 20000 * NS_PER_MS;
    uint64_t last_seq = __atomic_load_n(&x->st->seq, __ATOMIC_ACQUIRE), ex_time = 0, ex_gen = 0;
    uint64_t seen_real = 0, progress = mono();
    int warm = 3, pending = 0, rc = -1, need_restart = 0;

    memset(out, 0, sizeof(*out));
    if (lat == NULL || det == NULL || sp == NULL || wk == NULL)
        goto done;
    procbus_seek_events(r, PROCBUS_SEEK_NOW);
    while (out->n < want && !g_stop) {
        uint64_t gen = procbus_generation(r), missed = 0;
        struct procbus_event ev;
        int w;

        while ((w = procbus_next_event(r, &ev, &missed)) == 0 || missed > 0) {
            out->missed += missed;
            if (w != 0)
                break;
            if (ev.record_id != x->id || ev.kind != PROCBUS_EV_STATE)
                continue;
            if (ev.new_state == PROCBUS_STATE_EXITED) {
                uint64_t seen = mono(), seq;
                seen_real = pb_now_ns(CLOCK_REALTIME);
                seq = __atomic_load_n(&x->st->seq, __ATOMIC_ACQUIRE);
                pending = 0;
                need_restart = 1;
                progress = seen;
                if (seq == last_seq) { /* no fresh stamp: cannot attribute this exit */
                    out->stale++;
                    continue;
                }
                out->skipped += seq - last_seq - 1;
                last_seq = seq;
                if (warm > 0) {
                    warm--;
                    continue;
                }
                lat[out->n] = (double)(int64_t)(seen - x->st->mono_ns) / 1e3;
                det[out->n] = (double)((int64_t)ev.time_ns - (int64_t)x->st->real_ns) / 1e3;
                sp[out->n] = 0;
                wk[out->n] = (double)((int64_t)seen_real - (int64_t)ev.time_ns) / 1e3;
                ex_time = ev.time_ns;
                ex_gen = ev.generation;
                pending = 1;
                out->n++;
            } else if (ev.new_state == PROCBUS_STATE_STARTING && pending &&
                       ev.generation == ex_gen) {
                /* the restart was spawned before the commit that published EXITED */
                sp[out->n - 1] = (double)((int64_t)ev.time_ns - (int64_t)ex_time) / 1e3;
                wk[out->n - 1] = (double)((int64_t)seen_real - (int64_t)ev.time_ns) / 1e3;
                out->n_split++;
                pending = 0;
            }
        }
        if (out->n >= want)
            break;
        if (x->restart_argv != NULL) {
            struct procbus_proc p;
            /* also when the reader came in after an exit */
            if (!need_restart && mono() - progress > 1000 * NS_PER_MS &&
                procbus_get_name(r, "exiter", &p) == 0 && p.state == PROCBUS_STATE_EXITED)
                need_restart = 1;
            if (need_restart) {
                need_restart = 0;
                progress = mono();
                if (restart_exiter(x) < 0)
                    goto done;
                continue;
            }
        }
        if (mono() > end || !bench_daemon_alive(x->d)) {
            say("exit latency: only %d of %d samples (daemon %s)", out->n, want,
                bench_daemon_alive(x->d) ? "alive" : "gone");
            show_tail(x->d->log);
            goto done;
        }
        if (x->spin) {
            unsigned long spins = 0;
            while (procbus_generation(r) == gen) {
#if defined(__x86_64__) || defined(__i386__)
                __asm__ __volatile__("pause");
#endif
                if ((++spins & 0xfffff) == 0 && (g_stop || mono() > end))
                    break;
            }
        } else {
            procbus_wait(r, gen, 200);
        }
    }
    if (out->n < want)
        goto done;
    out->mean = mean_of(lat, out->n);
    out->p50 = pct(lat, out->n, 50);
    out->p99 = pct(lat, out->n, 99);
    out->max = pct(lat, out->n, 100);
    out->det50 = pct(det, out->n, 50);
    out->det99 = pct(det, out->n, 99);
    out->sp50 = pct(sp, out->n, 50);
    out->sp99 = pct(sp, out->n, 99);
    out->wake50 = pct(wk, out->n, 50);
    out->wake99 = pct(wk, out->n, 99);
    rc = 0;
done:
    free(lat);
    free(det);
    free(sp);
    free(wk);
    return rc;
}

static void add_lat(const char *tag, const char *what, const struct lat *l, int ok, int with_target,
                    int breakdown)
{
    char key[64], label[200];
    double nan = NAN;

    snprintf(key, sizeof(key), "exit_visible_%s_p50_us", tag);
    snprintf(label, sizeof(label), "exit -> EXITED seen by a reader, %s: p50", what);
    add(key, label, ok ? l->p50 : nan, "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exit_visible_%s_p99_us", tag);
    snprintf(label, sizeof(label), "exit -> EXITED seen by a reader, %s: p99", what);
    add(key, label, ok ? l->p99 : nan, "us", with_target ? T_LT : T_NONE, 1000, 1);
    snprintf(key, sizeof(key), "exit_visible_%s_max_us", tag);
    snprintf(label, sizeof(label), "exit -> EXITED seen by a reader, %s: max", what);
    add(key, label, ok ? l->max : nan, "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exit_visible_%s_mean_us", tag);
    add(key, key, ok ? l->mean : nan, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_samples", tag);
    add(key, key, l->n, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_stale_events", tag);
    add(key, key, (double)l->stale, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_skipped_exits", tag);
    add(key, key, (double)l->skipped, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_ring_missed", tag);
    add(key, key, (double)l->missed, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_restart_in_commit", tag);
    add(key, key, l->n_split, "", T_NONE, 0, 0);
    /* where the time goes (CLOCK_REALTIME: exiter, event staging times, reader) */
    snprintf(key, sizeof(key), "exit_visible_%s_detect_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: exit -> EXITED staged (p50)", what);
    add(key, label, ok ? l->det50 : nan, "us", T_NONE, 0, breakdown);
    snprintf(key, sizeof(key), "exit_visible_%s_detect_p99_us", tag);
    add(key, key, ok ? l->det99 : nan, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_respawn_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: restart fork+exec before the commit (p50)",
             what);
    add(key, label, ok ? l->sp50 : nan, "us", T_NONE, 0, breakdown && l->n_split > 0);
    snprintf(key, sizeof(key), "exit_visible_%s_respawn_p99_us", tag);
    add(key, key, ok ? l->sp99 : nan, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_visible_%s_wake_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: last staging -> seen (commit, wake-up) (p50)",
             what);
    add(key, label, ok ? l->wake50 : nan, "us", T_NONE, 0, breakdown);
    snprintf(key, sizeof(key), "exit_visible_%s_wake_p99_us", tag);
    add(key, key, ok ? l->wake99 : nan, "us", T_NONE, 0, 0);
}

/* A procbusd running the exiter; autorestart: procbusd restarts it, else `procbus start`. */
struct exiter_daemon {
    struct bench_daemon d;
    struct procbus_reader r;
    int opened;
    uint64_t id;
    char *argv[10]; /* procbus -s SEG -S SOCK -t 0 start exiter */
};

static int exiter_up(struct exiter_daemon *e, const char *stamp, int autorestart, const char *tag)
{
    char text[PATH_MAX + 512];
    struct procbus_proc p;
    uint64_t end;

    memset(e, 0, sizeof(*e));
    bench_daemon_init(&e->d, tag);
    snprintf(text, sizeof(text),
             "; procbusd-bench: one program that exits 20 ms after each start\n"
             "[program:exiter]\n"
             "command = '%s' --exiter '%s'\n"
             "autorestart = %s\n"
             "startsecs = 0\n",
             g_self, stamp, autorestart ? "true" : "false");
    if (write_file(e->d.conf, text) < 0 || daemon_start(&e->d) < 0)
        return -1;
    if (open_seg(&e->r, &e->d, 10000) < 0)
        return -1;
    e->opened = 1;
    end = mono() + 10000 * NS_PER_MS;
    while (procbus_get_name(&e->r, "exiter", &p) != 0) {
        if (mono() > end || g_stop) {
            say("procbusd publishes no record named exiter");
            show_tail(e->d.log);
            return -1;
        }
        sleep_ms(5);
    }
    e->id = p.id;
    e->argv[0] = g_procbus;
    e->argv[1] = "-s";
    e->argv[2] = e->d.seg;
    e->argv[3] = "-S";
    e->argv[4] = e->d.sock;
    e->argv[5] = "-t";
    e->argv[6] = "0";
    e->argv[7] = "start";
    e->argv[8] = "exiter";
    e->argv[9] = NULL;
    return 0;
}

static void exiter_down(struct exiter_daemon *e)
{
    if (e->opened)
        procbus_close(&e->r);
    e->opened = 0;
    bench_daemon_stop(&e->d, 60000);
}

static int start_burners(pid_t burn[2])
{
    int cpus[2] = {0, 1}, ncpu = 0, i;
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
            if (CPU_ISSET(i, &set))
                cpus[ncpu++] = i;
    } else {
        ncpu = 2;
    }
    for (i = 0; i < ncpu; i++)
        burn[i] = start_burner(cpus[i]);
    sleep_ms(200);
    return ncpu;
}

static void stop_burners(pid_t burn[2])
{
    int i;

    for (i = 0; i < 2; i++)
        if (burn[i] > 0) {
            kill(burn[i], SIGKILL);
            wait_exit(burn[i], 5000, NULL);
            burn[i] = 0;
        }
}

/* One latency run: prints progress, adds the rows. */
static int lat_run(struct exiter_daemon *e, struct stamp *st, int spin, int loaded, int samples,
                   const char *tag, const char *what, int with_target)
{
    struct exit_run x = {&e->r, &e->d, e->id, st, spin, NULL};
    pid_t burn[2] = {0, 0};
    struct lat l;
    int ok, ncpu = 0;

    if (g_stop)
        return -1;
    if (e->argv[0] != NULL) /* autorestart=false: restart it with `procbus start` */
        x.restart_argv = e->argv;
    if (loaded)
        ncpu = start_burners(burn);
    say("exit-to-visible: %s (%d samples%s)", what, samples,
        loaded ? (ncpu == 2 ? ", a busy loop pinned to each CPU" : ", a busy loop") : "");
    ok = measure_exits(&x, samples, &l) == 0;
    stop_burners(burn);
    add_lat(tag, what, &l, ok, with_target, 1);
    return ok ? 0 : -1;
}

static int bench_exit_latency(int samples)
{
    char stamp[128];
    struct stamp *st = MAP_FAILED;
    struct exiter_daemon e;
    int fd, failed = 0;

    snprintf(stamp, sizeof(stamp), "%s/exit-stamp", g_tmp);
    fd = open(stamp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) < 0) {
        say("%s: %s", stamp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    st = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (st == MAP_FAILED)
        return -1;

    /* as the issue describes it: autorestart=true, startsecs=0 */
    if (exiter_up(&e, stamp, 1, "exit") < 0) {
        failed = 1;
    } else {
        e.argv[0] = NULL; /* procbusd restarts it */
        failed |= lat_run(&e, st, 0, 0, samples, "idle", "idle, blocking reader", 0) < 0;
        failed |= lat_run(&e, st, 0, 1, samples, "loaded", "loaded, blocking reader", 1) < 0;
        failed |= lat_run(&e, st, 1, 0, samples, "spin", "idle, spinning reader", 0) < 0;
    }
    exiter_down(&e);
    /* control: autorestart=false, restarted with `procbus start` after each exit */
    if (!g_stop && exiter_up(&e, stamp, 0, "exitnr") == 0) {
        failed |= lat_run(&e, st, 0, 0, samples, "norestart_idle",
                          "autorestart=false, idle, blocking reader", 0) < 0;
        failed |= lat_run(&e, st, 0, 1, samples, "norestart_loaded",
                          "autorestart=false, loaded, blocking reader", 0) < 0;
    } else {
        failed = 1;
    }
    exiter_down(&e);
    munmap(st, 4096);
    unlink(stamp);
    return failed || g_stop ? -1 : 0;
}

/* ---- resident memory ---- */

static int bench_rss(int n)
{
    char text[1024], key[64], label[160], tag[16], seg[160];
    struct procbus_reader r;
    struct bench_daemon d;
    struct stat sb;
    double t_run_ms, t_stop_ms, idle_cpu;
    long rss, hwm, anon, file, shm, cpu0, cpu1;
    uint64_t t0;
    int rc = -1, st;

    snprintf(tag, sizeof(tag), "rss%d", n);
    bench_daemon_init(&d, tag);
    snprintf(text, sizeof(text),
             "; procbusd-bench: %d sleeping programs\n"
             "[procbusd]\ncapacity = %d\n"
             "[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)0%dd\nstartsecs = 0\n",
             n, n, n, n > 1000 ? 5 : 3);
    if (write_file(d.conf, text) < 0 || daemon_start(&d) < 0)
        goto out;
    say("resident memory with %d programs", n);
    if (open_seg(&r, &d, 10000) < 0)
        goto out;
    if (wait_running(&r, &d, (size_t)n, 120000) < 0) {
        procbus_close(&r);
        goto out;
    }
    t_run_ms = (double)(mono() - d.t_start) / 1e6;
    procbus_close(&r);
    sleep_ms(1200); /* a pass of the 1 s CPU/RSS sampler, then measure over 3 more s */
    cpu0 = proc_cpu_ticks(d.pid);
    t0 = mono();
    sleep_ms(3000);
    cpu1 = proc_cpu_ticks(d.pid);
    idle_cpu = cpu0 < 0 || cpu1 < cpu0
                   ? NAN
                   : 100.0 * (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) /
                         ((double)(mono() - t0) / 1e9);
    rss = proc_status_kb(d.pid, "VmRSS");
    hwm = proc_status_kb(d.pid, "VmHWM");
    anon = proc_status_kb(d.pid, "RssAnon");
    file = proc_status_kb(d.pid, "RssFile");
    shm = proc_status_kb(d.pid, "RssShmem");
    if (rss < 0 || procbus_segment_path(d.seg, seg, sizeof(seg)) < 0 || stat(seg, &sb) < 0) {
        say("cannot read procbusd's memory or segment");
        goto out;
    }
    snprintf(key, sizeof(key), "procbusd_rss_%d_kib", n);
    snprintf(label, sizeof(label), "procbusd VmRSS, %d programs RUNNING", n);
    add(key, label, (double)rss, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_rss_anon_%d_kib", n);
    snprintf(label, sizeof(label), "  of which RssAnon (private heap, stacks), %d programs", n);
    add(key, label, (double)anon, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_rss_file_%d_kib", n);
    add(key, key, (double)file, "KiB", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "procbusd_rss_shmem_%d_kib", n);
    snprintf(label, sizeof(label), "  of which RssShmem (segment pages it touched), %d programs",
             n);
    add(key, label, (double)shm, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_hwm_%d_kib", n);
    add(key, key, (double)hwm, "KiB", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "segment_size_%d_kib", n);
    snprintf(label, sizeof(label), "segment file size, capacity %d (shared, tmpfs)", n);
    add(key, label, (double)sb.st_size / 1024.0, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "segment_resident_%d_kib", n);
    snprintf(label, sizeof(label), "segment pages allocated, capacity %d", n);
    add(key, label, (double)sb.st_blocks * 512.0 / 1024.0, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_idle_cpu_%d_pct", n);
    snprintf(label, sizeof(label), "procbusd CPU use, %d programs, nothing happening (3 s)", n);
    add(key, label, idle_cpu, "% of a CPU", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_all_running_%d_ms", n);
    snprintf(label, sizeof(label), "procbusd start to %d programs RUNNING", n);
    add(key, label, t_run_ms, "ms", T_NONE, 0, 1);
    t0 = mono();
    kill(d.pid, SIGTERM);
    if (wait_exit(d.pid, 60000, &st) == 0) {
        t_stop_ms = (double)(mono() - t0) / 1e6;
        snprintf(key, sizeof(key), "procbusd_stop_%d_ms", n);
        snprintf(label, sizeof(label), "procbusd SIGTERM to exit, %d programs", n);
        add(key, label, t_stop_ms, "ms", T_NONE, 0, 1);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            say("procbusd exited with status 0x%x", st);
        unlink_seg(d.seg, d.pid);
        unlink(d.sock);
        d.pid = 0;
    }
    rc = 0;
out:
    bench_daemon_stop(&d, 60000);
    return rc;
}

/* ---- against supervisord ---- */

static int count_running(const char *path)
{
    char line[512];
    FILE *fp = fopen(path, "r");
    int n = 0;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, " RUNNING ") != NULL;
    fclose(fp);
    return n;
}

static double json_num(const char *text, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static int read_small(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
        return -1;
    n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return 0;
}

struct series {
    double *v;
    int n;
};

static int bench_peer(int nprog, int ctl_runs, int pb_runs, int xml_calls, long get_calls)
{
    char text[2048], sock[128], slog[128], out[128], jout[128], jbuf[2048];
    char arg_n[16], arg_w[16], arg_c[16];
    struct procbus_reader r;
    struct bench_daemon d;
    struct series ctl = {0}, pb = {0}, tru = {0};
    pid_t sup = 0;
    int rc = -1, st = 0, i, k, rounds = 10, opened = 0, ok;
    double mean_ctl, mean_pb, xml_ns, get_ns, nan = NAN;
    char *sup_argv[5], *ctl_argv[5], *pb_argv[6], *py_argv[8], *true_argv[2];

    snprintf(sock, sizeof(sock), "%s/supervisor.sock", g_tmp);
    snprintf(slog, sizeof(slog), "%s/supervisord.out", g_tmp);
    bench_daemon_init(&d, "peer"); /* supervisord reads d.conf too */
    snprintf(out, sizeof(out), "%s/status.out", g_tmp);
    snprintf(jout, sizeof(jout), "%s/client.json", g_tmp);
    snprintf(text, sizeof(text),
             "; procbusd-bench: %d programs; supervisord and procbusd both load this file\n"
             "[unix_http_server]\nfile = %s\nchmod = 0700\n\n"
             "[supervisord]\nnodaemon = true\nlogfile = %s/supervisord.log\n"
             "pidfile = %s/supervisord.pid\nchildlogdir = %s\n\n"
             "[rpcinterface:supervisor]\n"
             "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
             "[supervisorctl]\nserverurl = unix://%s\n\n"
             "[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)03d\nstartsecs = 0\n"
             "stdout_logfile = NONE\nstderr_logfile = NONE\n",
             nprog, sock, g_tmp, g_tmp, g_tmp, sock, nprog);
    if (write_file(d.conf, text) < 0) {
        bench_daemon_stop(&d, 60000);
        return -1;
    }
    ctl.v = calloc((size_t)ctl_runs, sizeof(double));
    pb.v = calloc((size_t)pb_runs, sizeof(double));
    tru.v = calloc((size_t)pb_runs, sizeof(double));
    if (ctl.v == NULL || pb.v == NULL || tru.v == NULL)
        goto out;

    say("peer: starting supervisord and procbusd with the same %d programs", nprog);
    sup_argv[0] = g_supervisord;
    sup_argv[1] = "-n";
    sup_argv[2] = "-c";
    sup_argv[3] = d.conf;
    sup_argv[4] = NULL;
    sup = start_bg(sup_argv, slog, SIGTERM);
    if (sup < 0 || daemon_start(&d) < 0)
        goto out;
    if (open_seg(&r, &d, 10000) < 0)
        goto out;
    opened = 1;
    if (wait_running(&r, &d, (size_t)nprog, 60000) < 0)
        goto out;
    snprintf(arg_n, sizeof(arg_n), "%d", nprog);
    py_argv[0] = g_python;
    py_argv[1] = g_client;
    py_argv[2] = "wait";
    py_argv[3] = sock;
    py_argv[4] = arg_n;
    py_argv[5] = "60";
    py_argv[6] = NULL;
    if (run_timed(py_argv, jout, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("supervisord did not get %d programs RUNNING", nprog);
        show_tail(g_errlog);
        show_tail(slog);
        goto out;
    }

    /* both tools must print the same 100 RUNNING lines */
    ctl_argv[0] = g_supervisorctl;
    ctl_argv[1] = "-c";
    ctl_argv[2] = d.conf;
    ctl_argv[3] = "status";
    ctl_argv[4] = NULL;
    pb_argv[0] = g_procbus;
    pb_argv[1] = "-s";
    pb_argv[2] = d.seg;
    pb_argv[3] = "status";
    pb_argv[4] = NULL;
    true_argv[0] = "/bin/true";
    true_argv[1] = NULL;
    if (run_timed(ctl_argv, out, &st) < 0 || st != 0 || count_running(out) != nprog) {
        say("supervisorctl status: wait status 0x%x, %d RUNNING lines", st, count_running(out));
        show_tail(out);
        show_tail(g_errlog);
        goto out;
    }
    if (run_timed(pb_argv, out, &st) < 0 || st != 0 || count_running(out) != nprog) {
        say("procbus status: wait status 0x%x, %d RUNNING lines", st, count_running(out));
        show_tail(out);
        show_tail(g_errlog);
        goto out;
    }
    unlink(out);
    for (i = 0; i < 2; i++) { /* warm the page cache */
        run_timed(ctl_argv, NULL, &st);
        run_timed(pb_argv, NULL, &st);
    }
    say("peer: %d x supervisorctl status, %d x procbus status, interleaved in %d rounds", ctl_runs,
        pb_runs, rounds);
    for (k = 0; k < rounds && !g_stop; k++) {
        for (i = k * ctl_runs / rounds; i < (k + 1) * ctl_runs / rounds && !g_stop; i++) {
            int64_t t = run_timed(ctl_argv, NULL, &st);
            if (t < 0 || st != 0) {
                say("supervisorctl status failed (wait status 0x%x)", st);
                show_tail(g_errlog);
                goto out;
            }
            ctl.v[ctl.n++] = (double)t / 1e6;
        }
        for (i = k * pb_runs / rounds; i < (k + 1) * pb_runs / rounds && !g_stop; i++) {
            int64_t t = run_timed(pb_argv, NULL, &st);
            if (t < 0 || st != 0) {
                say("procbus status failed (wait status 0x%x)", st);
                show_tail(g_errlog);
                goto out;
            }
            pb.v[pb.n++] = (double)t / 1e6;
            t = run_timed(true_argv, NULL, &st); /* the floor: any process at all */
            if (t >= 0 && st == 0)
                tru.v[tru.n++] = (double)t / 1e6;
        }
    }
    if (g_stop)
        goto out;
    mean_ctl = mean_of(ctl.v, ctl.n);
    mean_pb = mean_of(pb.v, pb.n);
    snprintf(text, sizeof(text), "`procbus status`, whole process, %d programs: mean of %d runs",
             nprog, pb.n);
    add("status_procbus_mean_ms", text, mean_pb, "ms", T_NONE, 0, 1);
    add("status_procbus_p50_ms", "  same, median", pct(pb.v, pb.n, 50), "ms", T_NONE, 0, 1);
    add("status_procbus_min_ms", "status_procbus_min_ms", pct(pb.v, pb.n, 0), "ms", T_NONE, 0, 0);
    add("status_procbus_max_ms", "status_procbus_max_ms", pct(pb.v, pb.n, 100), "ms", T_NONE, 0, 0);
    add("status_procbus_runs", "status_procbus_runs", pb.n, "", T_NONE, 0, 0);
    add("spawn_true_mean_ms", "  control: the same spawn/exec/wait of /bin/true: mean",
        mean_of(tru.v, tru.n), "ms", T_NONE, 0, 1);
    snprintf(text, sizeof(text),
             "`supervisorctl status`, whole process, %d programs: mean of %d runs", nprog, ctl.n);
    add("status_supervisorctl_mean_ms", text, mean_ctl, "ms", T_NONE, 0, 1);
    add("status_supervisorctl_p50_ms", "  same, median", pct(ctl.v, ctl.n, 50), "ms", T_NONE, 0, 1);
    add("status_supervisorctl_min_ms", "status_supervisorctl_min_ms", pct(ctl.v, ctl.n, 0), "ms",
        T_NONE, 0, 0);
    add("status_supervisorctl_max_ms", "status_supervisorctl_max_ms", pct(ctl.v, ctl.n, 100), "ms",
        T_NONE, 0, 0);
    add("status_supervisorctl_runs", "status_supervisorctl_runs", ctl.n, "", T_NONE, 0, 0);
    add("status_speedup", "status speedup (supervisorctl mean / procbus mean)", mean_ctl / mean_pb,
        "x", T_GE, 50, 1);

    /* one query: procbus_get_name in this process, mean over get_calls */
    say("peer: %ld x procbus_get_name(\"p000\") in-process", get_calls);
    {
        struct procbus_proc p;
        uint64_t acc = 0, t0, t1;
        long c;
        int32_t pid0;

        if (procbus_get_name(&r, "p000", &p) != 0 || p.pid <= 0) {
            say("procbus_get_name(p000) failed");
            goto out;
        }
        pid0 = p.pid;
        for (c = 0; c < 100000; c++) { /* warm-up */
            if (procbus_get_name(&r, "p000", &p) < 0)
                break;
            __asm__ __volatile__("" : : "r"(&p) : "memory");
        }
        t0 = mono();
        for (c = 0; c < get_calls; c++) {
            int g = procbus_get_name(&r, "p000", &p);
            __asm__ __volatile__("" : : "r"(&p) : "memory"); /* the 384-byte copy must happen */
            if (g != 0 || p.pid != pid0) {
                say("procbus_get_name(p000): rc %d pid %d (expected %d)", g, p.pid, pid0);
                goto out;
            }
            acc += p.id ^ (uint64_t)p.pid;
        }
        t1 = mono();
        g_sink = acc;
        get_ns = (double)(t1 - t0) / (double)get_calls;
    }
    add("get_name_ns", "procbus_get_name(\"p000\") via procbus.h, in-process: mean", get_ns, "ns",
        T_NONE, 0, 1);
    add("get_name_calls", "get_name_calls", (double)get_calls, "", T_NONE, 0, 0);
    /* control: all 100 names in a shuffled order (the same record every time is the best case) */
    {
        enum { ORDER = 4096 };
        static char names[100][8];
        static const char *order[ORDER];
        static int32_t want[ORDER];
        int32_t pids[100];
        struct procbus_proc p;
        uint64_t acc = 0, t0, t1, x = 88172645463325252ull;
        long c;
        int j;

        for (j = 0; j < 100 && j < nprog; j++) {
            snprintf(names[j], sizeof(names[j]), "p%03d", j);
            if (procbus_get_name(&r, names[j], &p) != 0 || p.pid <= 0) {
                say("procbus_get_name(%s) failed", names[j]);
                goto out;
            }
            pids[j] = p.pid;
        }
        for (c = 0; c < ORDER; c++) { /* xorshift64: a fixed pseudo-random order */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order[c] = names[x % (uint64_t)j];
            want[c] = pids[x % (uint64_t)j];
        }
        t0 = mono();
        for (c = 0; c < get_calls; c++) {
            int g = procbus_get_name(&r, order[c & (ORDER - 1)], &p);
            __asm__ __volatile__("" : : "r"(&p) : "memory");
            if (g != 0 || p.pid != want[c & (ORDER - 1)]) {
                say("procbus_get_name(%s): rc %d pid %d", order[c & (ORDER - 1)], g, p.pid);
                goto out;
            }
            acc += p.id ^ (uint64_t)p.pid;
        }
        t1 = mono();
        g_sink += acc;
        add("get_name_shuffled_ns",
            "  control: procbus_get_name over all 100 names, shuffled order: mean",
            (double)(t1 - t0) / (double)get_calls, "ns", T_NONE, 0, 1);
    }

    say("peer: %d x XML-RPC getProcessInfo(\"p:p000\") from a warm Python client", xml_calls);
    snprintf(arg_w, sizeof(arg_w), "%d", xml_calls / 10);
    snprintf(arg_c, sizeof(arg_c), "%d", xml_calls);
    py_argv[2] = "bench";
    py_argv[3] = sock;
    py_argv[4] = "p:p000";
    py_argv[5] = arg_w;
    py_argv[6] = arg_c;
    py_argv[7] = NULL;
    ok = run_timed(py_argv, jout, &st) >= 0 && st == 0 && read_small(jout, jbuf, sizeof(jbuf)) == 0;
    xml_ns = ok ? json_num(jbuf, "mean_ns") : nan;
    if (!isfinite(xml_ns)) {
        say("the XML-RPC client failed");
        show_tail(g_errlog);
        goto out;
    }
    if (g_verbose)
        say("client: %s", jbuf);
    add("xmlrpc_getprocessinfo_us", "supervisord XML-RPC getProcessInfo, warm client: mean",
        xml_ns / 1e3, "us", T_NONE, 0, 1);
    add("xmlrpc_getprocessinfo_p50_us", "  same, median", json_num(jbuf, "p50_ns") / 1e3, "us",
        T_NONE, 0, 1);
    add("xmlrpc_getprocessinfo_p99_us", "xmlrpc_getprocessinfo_p99_us",
        json_num(jbuf, "p99_ns") / 1e3, "us", T_NONE, 0, 0);
    add("xmlrpc_calls", "xmlrpc_calls", json_num(jbuf, "n"), "", T_NONE, 0, 0);
    add("query_speedup", "single query speedup (XML-RPC mean / get_name mean)", xml_ns / get_ns,
        "x", T_GE, 10000, 1);

    snprintf(text, sizeof(text), "supervisord VmRSS, %d programs RUNNING (same run)", nprog);
    add("supervisord_rss_kib", text, (double)proc_status_kb(sup, "VmRSS"), "KiB", T_NONE, 0, 1);
    snprintf(text, sizeof(text),
             "procbusd VmRSS, %d programs RUNNING (same run, default capacity 4096)", nprog);
    add("procbusd_rss_peer_kib", text, (double)proc_status_kb(d.pid, "VmRSS"), "KiB", T_NONE, 0, 1);
    rc = 0;
out:
    if (opened)
        procbus_close(&r);
    if (sup > 0) {
        int s = stop_bg(sup, 30000, "supervisord");
        if (s != 0) {
            say("supervisord exited with status %d", s);
            show_tail(slog);
        }
    }
    bench_daemon_stop(&d, 60000);
    free(ctl.v);
    free(pb.v);
    free(tru.v);
    return rc;
}

/* ---- main ---- */

/* bench_util.h's flat JSON, nothing more. */
static int write_json(const char *path, const struct machine *m, const char *mode)
{
    char tmp[PATH_MAX + 16];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, mode);

    return fp != NULL ? json_end(fp, tmp, path) : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: procbusd-bench [--procbusd | --peer | --all] [--json PATH] [--bin-dir DIR]\n"
               "                      [--client PATH] [--samples N] [--verbose] [--help]\n"
               "\n"
               "  --procbusd     exit-to-visible latency (idle, loaded, spinning reader; and\n"
               "                 autorestart=false as a control) and procbusd's resident\n"
               "                 memory with 100 and 1,000 programs\n"
               "  --peer         100 programs under supervisord and procbusd at once:\n"
               "                 `supervisorctl status` vs `procbus status`, XML-RPC\n"
               "                 getProcessInfo vs procbus_get_name (needs Debian's supervisor)\n"
               "  --all          both (the default)\n"
               "  --json PATH    also write the figures as flat JSON keys to PATH\n"
               "  --bin-dir DIR  where procbusd and procbus are (default: this binary's ../)\n"
               "  --client PATH  bench/xmlrpc_getinfo.py (default: found next to the tree)\n"
               "  --samples N    exit events timed per latency run (default 400, at least 300)\n"
               "  --verbose      also print the XML-RPC client's raw figures\n"
               "\n"
               "Prints a markdown table on stdout, progress on stderr. Exit status 0 when\n"
               "every benchmark ran (targets missed or not), 1 when one could not run, 2 on\n"
               "bad usage.\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *mode = "all";
    int do_pbd = 1, do_peer = 1, samples = 400, failed = 0, i;
    struct machine m;
    ssize_t n;

    if (argc == 3 && strcmp(argv[1], "--exiter") == 0)
        return exiter_main(argv[2]);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--procbusd") == 0) {
            do_pbd = 1;
            do_peer = 0;
            mode = "procbusd";
        } else if (strcmp(argv[i], "--peer") == 0) {
            do_pbd = 0;
            do_peer = 1;
            mode = "peer";
        } else if (strcmp(argv[i], "--all") == 0) {
            do_pbd = do_peer = 1;
            mode = "all";
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            snprintf(g_bindir, sizeof(g_bindir), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
            snprintf(g_client, sizeof(g_client), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            samples = atoi(argv[++i]);
            if (samples < 300 || samples > 100000) {
                fprintf(stderr, "procbusd-bench: --samples: 300 to 100000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--verbose") == 0) {
            g_verbose = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0) {
        say("cannot resolve /proc/self/exe");
        return 1;
    }
    g_self[n] = '\0';
    if (g_bindir[0] == '\0') { /* .../build/bench/procbusd-bench -> .../build */
        char *s;
        snprintf(g_bindir, sizeof(g_bindir), "%s", g_self);
        for (i = 0; i < 2 && (s = strrchr(g_bindir, '/')) != NULL; i++)
            *s = '\0';
    }
    if (bench_find_programs("--bin-dir") < 0)
        return 1;
    if (do_peer) {
        if (g_client[0] == '\0') {
            char root[PATH_MAX], *s;
            snprintf(root, sizeof(root), "%s", g_bindir); /* the tree: bin-dir's parent */
            s = strrchr(root, '/');
            if (s != NULL)
                *s = '\0';
            if (access("bench/xmlrpc_getinfo.py", R_OK) == 0)
                snprintf(g_client, sizeof(g_client), "bench/xmlrpc_getinfo.py");
            else
                snprintf(g_client, sizeof(g_client), "%.*s/bench/xmlrpc_getinfo.py",
                         (int)(sizeof(g_client) - 32), root);
        }
        /* Debian's python3 is the one with the supervisor module */
        if (find_exe("/usr/bin/python3", g_python, sizeof(g_python)) < 0 &&
            find_exe("python3", g_python, sizeof(g_python)) < 0) {
            say("python3 not found");
            return 1;
        }
        if (access(g_client, R_OK) < 0 ||
            find_exe("supervisord", g_supervisord, sizeof(g_supervisord)) < 0 ||
            find_exe("supervisorctl", g_supervisorctl, sizeof(g_supervisorctl)) < 0) {
            say("--peer needs %s and supervisord/supervisorctl (Debian: apt-get install "
                "supervisor, or scripts/deps.sh peer)",
                g_client);
            return 1;
        }
    }

    if (bench_setup() < 0)
        return 1;

    machine_start(&m);
    if (do_pbd && !g_stop) {
        failed |= bench_exit_latency(samples) < 0;
        failed |= !g_stop && bench_rss(100) < 0;
        failed |= !g_stop && bench_rss(1000) < 0;
    }
    if (do_peer && !g_stop)
        failed |= bench_peer(100, 30, 300, 2000, 5000000) < 0;
    machine_end(&m);
    bench_cleanup();
    if (g_stop) {
        say("interrupted");
        return 1;
    }
    print_rows("procbusd", mode, &m, NULL);
    if (json != NULL && write_json(json, &m, mode) < 0)
        failed = 1;
    if (failed)
        say("some benchmarks could not run (see above)");
    return failed ? 1 : 0;
}
