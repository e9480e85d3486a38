/* exit.c - procbusd-bench: exit -> EXITED visible to a reader, procbusd beside its floor. */
#include "pbdb.h"

#define EXITER_SLEEP (20 * 1000000L) /* ns the exiter sleeps before exiting */
#define LAT_BLOCKS   10              /* procbusd and its floor take turns, this many each */

/* ---- the program both run ---- */

struct stamp {
    uint64_t seq;     /* incremented by each exiter run */
    uint64_t mono_ns; /* CLOCK_MONOTONIC just before _exit */
    uint64_t real_ns; /* CLOCK_REALTIME, for the breakdown against event times */
    int32_t pid;
};

/* --exiter FILE: what procbusd (or exit-floor) runs. Sleep, stamp, exit. */
int exiter_main(const char *path)
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

/* ---- the daemons that run it: procbusd, or exit-floor ---- */

struct exiter_daemon {
    struct bench_daemon d;
    struct procbus_reader r;
    int opened, floor;
    uint64_t id;
    struct stamp *st;
    char stamp[128];
};

/* Start procbusd (extra: more config text, or NULL) or, with `floor`, exit-floor, running
 * the exiter with its own stamp file; wait for its record. 0 or -1 (said). */
static int exiter_up(struct exiter_daemon *e, int floor, const char *extra, const char *tag)
{
    char text[PATH_MAX + 512], flr[PATH_MAX];
    struct procbus_proc p;
    uint64_t end;
    int fd;

    memset(e, 0, sizeof(*e));
    e->floor = floor;
    e->st = MAP_FAILED;
    bench_daemon_init(&e->d, tag);
    snprintf(e->stamp, sizeof(e->stamp), "%s/stamp-%s", g_tmp, tag);
    fd = open(e->stamp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) < 0 ||
        (e->st = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        say("%s: %s", e->stamp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (floor) {
        char *argv[] = {flr, e->d.seg, "exiter", g_self, "--exiter", e->stamp, NULL};
        snprintf(flr, sizeof(flr), "%s/bench/exit-floor", g_bindir);
        e->d.t_start = mono();
        e->d.pid = start_bg(argv, e->d.log, SIGTERM);
        if (e->d.pid <= 0) {
            e->d.pid = 0;
            return -1;
        }
    } else {
        snprintf(text, sizeof(text),
                 "; procbusd-bench: one program that exits 20 ms after each start\n"
                 "%s\n[program:exiter]\ncommand = '%s' --exiter '%s'\nautorestart = true\n"
                 "startsecs = 0\nstartlimit_interval_secs = 0\n",
                 extra != NULL ? extra : "", g_self, e->stamp);
        if (write_file(e->d.conf, text) < 0 || daemon_start(&e->d) < 0)
            return -1;
    }
    if (open_seg(&e->r, &e->d, 10000) < 0)
        return -1;
    e->opened = 1;
    end = mono() + 10000 * NS_PER_MS;
    while (procbus_get_name(&e->r, "exiter", &p) != 0) {
        if (mono() > end || g_stop) {
            say("%s publishes no record named exiter", floor ? "exit-floor" : "procbusd");
            show_tail(e->d.log);
            return -1;
        }
        sleep_ms(5);
    }
    e->id = p.id;
    return 0;
}

static void exiter_down(struct exiter_daemon *e)
{
    if (e->d.pid > 0)
        kill(e->d.pid, SIGCONT);
    if (e->opened)
        procbus_close(&e->r);
    e->opened = 0;
    bench_daemon_stop(&e->d, 60000);
    if (e->st != MAP_FAILED)
        munmap(e->st, 4096);
    e->st = MAP_FAILED;
    if (e->stamp[0] != '\0')
        unlink(e->stamp);
}

/* ---- measuring ---- */

/* One side's samples (us), accumulated over its blocks, and sanity counters. */
struct lat_acc {
    double *lat, *det, *wk; /* exit -> seen; exit -> EXITED staged; last staging -> seen */
    int n, cap;
    unsigned long stale, skipped, missed, n_split;
};

static int acc_init(struct lat_acc *a, int cap)
{
    memset(a, 0, sizeof(*a));
    a->cap = cap;
    a->lat = calloc((size_t)cap, sizeof(double));
    a->det = calloc((size_t)cap, sizeof(double));
    a->wk = calloc((size_t)cap, sizeof(double));
    return a->lat && a->det && a->wk ? 0 : -1;
}

static void acc_free(struct lat_acc *a)
{
    free(a->lat);
    free(a->det);
    free(a->wk);
    memset(a, 0, sizeof(*a));
}

/*
 * Follow the ring and time `want` more EXITED events of the record (the first 3 of the block
 * are not timed: a daemon just resumed may publish an exit that happened while it was
 * stopped). For each: exit -> seen (CLOCK_MONOTONIC), and in CLOCK_REALTIME against the
 * events' staging times: exit -> EXITED staged, and the last staging of its commit -> seen.
 * A STARTING of the same commit counts in n_split (a restart forked before the commit
 * published the exit: procbusd no longer does that). 0, or -1 (said).
 */
static int measure_block(struct exiter_daemon *e, int spin, int want, struct lat_acc *a)
{
    struct procbus_reader *r = &e->r;
    uint64_t end = mono() + (uint64_t)want * 80 * NS_PER_MS + 20000 * NS_PER_MS;
    uint64_t last_seq = __atomic_load_n(&e->st->seq, __ATOMIC_ACQUIRE), ex_gen = 0;
    uint64_t seen_real = 0;
    int warm = 3, pending = 0, got = 0;

    procbus_seek_events(r, PROCBUS_SEEK_NOW);
    while (got < want && a->n < a->cap && !g_stop) {
        uint64_t gen = procbus_generation(r), missed = 0;
        struct procbus_event ev;
        int w;

        while ((w = procbus_next_event(r, &ev, &missed)) == 0 || missed > 0) {
            a->missed += missed;
            if (w != 0)
                break;
            if (ev.record_id != e->id || ev.kind != PROCBUS_EV_STATE)
                continue;
            if (ev.new_state == PROCBUS_STATE_EXITED) {
                uint64_t seen = mono(), seq;
                seen_real = pb_now_ns(CLOCK_REALTIME);
                seq = __atomic_load_n(&e->st->seq, __ATOMIC_ACQUIRE);
                pending = 0;
                if (seq == last_seq) { /* no fresh stamp: cannot attribute this exit */
                    a->stale++;
                    continue;
                }
                if (warm == 0)
                    a->skipped += seq - last_seq - 1;
                last_seq = seq;
                if (warm > 0) {
                    warm--;
                    continue;
                }
                if (got >= want || a->n >= a->cap)
                    break;
                a->lat[a->n] = (double)(int64_t)(seen - e->st->mono_ns) / 1e3;
                a->det[a->n] = (double)((int64_t)ev.time_ns - (int64_t)e->st->real_ns) / 1e3;
                a->wk[a->n] = (double)((int64_t)seen_real - (int64_t)ev.time_ns) / 1e3;
                ex_gen = ev.generation;
                pending = 1;
                a->n++;
                got++;
            } else if (ev.new_state == PROCBUS_STATE_STARTING && pending &&
                       ev.generation == ex_gen) {
                a->wk[a->n - 1] = (double)((int64_t)seen_real - (int64_t)ev.time_ns) / 1e3;
                a->n_split++;
                pending = 0;
            }
        }
        if (got >= want)
            break;
        if (mono() > end || !bench_daemon_alive(&e->d)) {
            say("exit latency: only %d of %d samples (%s %s)", got, want,
                e->floor ? "exit-floor" : "procbusd", bench_daemon_alive(&e->d) ? "alive" : "gone");
            show_tail(e->d.log);
            return -1;
        }
        if (spin) {
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
    return got >= want ? 0 : -1;
}

/* Rows of one side: p50, p99, p99.9, max (table), the rest in the JSON. `side` is "visible"
 * (procbusd) or "floor". p99 and p99.9 sort the arrays; the values are returned. */
static void add_side(const char *tag, const char *side, const char *what, struct lat_acc *a, int ok,
                     double q[3])
{
    static const struct {
        const char *name, *label;
        int pm, table;
    } qs[] = {{"p50", "p50", 500, 1},
              {"p99", "p99", 990, 1},
              {"p999", "p99.9", 999, 1},
              {"max", "max", 1000, 0}};
    char key[80], label[200];
    size_t i;

    for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double v = ok ? pct_pm(a->lat, a->n, qs[i].pm) : NAN;
        snprintf(key, sizeof(key), "exit_%s_%s_%s_us", side, tag, qs[i].name);
        snprintf(label, sizeof(label), "%s, %s: %s", what, tag, qs[i].label);
        add(key, label, v, "us", T_NONE, 0, qs[i].table);
        if (i < 3)
            q[i] = v;
    }
    snprintf(key, sizeof(key), "exit_%s_%s_mean_us", side, tag);
    add(key, key, ok ? mean_of(a->lat, a->n) : NAN, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_samples", side, tag);
    add(key, key, a->n, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_stale_events", side, tag);
    add(key, key, (double)a->stale, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_skipped_exits", side, tag);
    add(key, key, (double)a->skipped, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_ring_missed", side, tag);
    add(key, key, (double)a->missed, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_restart_in_commit", side, tag);
    add(key, key, (double)a->n_split, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_detect_p50_us", side, tag);
    add(key, key, ok ? pct(a->det, a->n, 50) : NAN, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_detect_p99_us", side, tag);
    add(key, key, ok ? pct(a->det, a->n, 99) : NAN, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_wake_p50_us", side, tag);
    add(key, key, ok ? pct(a->wk, a->n, 50) : NAN, "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exit_%s_%s_wake_p99_us", side, tag);
    add(key, key, ok ? pct(a->wk, a->n, 99) : NAN, "us", T_NONE, 0, 0);
}

/*
 * One scenario: procbusd and its floor take turns (LAT_BLOCKS blocks each, the other one
 * SIGSTOPped meanwhile), on the same machine state; `samples` exits each. Rows: both sides'
 * percentiles and the ratios procbusd / floor (p99 target <= 2; idle p99 also < 1 ms).
 */
static int pair_run(struct exiter_daemon *pbd, struct exiter_daemon *flr, const char *tag,
                    const char *what, int samples, int loaded, int spin)
{
    struct lat_acc a, b;
    pid_t burn[2] = {0, 0};
    double qa[3], qb[3];
    char key[80], label[200];
    int ok = 1, blk, ncpu = 0, per = (samples + LAT_BLOCKS - 1) / LAT_BLOCKS;

    if (g_stop)
        return -1;
    if (acc_init(&a, per * LAT_BLOCKS) < 0 || acc_init(&b, per * LAT_BLOCKS) < 0) {
        acc_free(&a);
        acc_free(&b);
        return -1;
    }
    if (loaded)
        ncpu = start_burners(burn);
    say("exit-to-visible: %s (%d samples each, procbusd and exit-floor in turns%s)", what,
        per * LAT_BLOCKS,
        loaded ? (ncpu == 2 ? ", a busy loop pinned to each CPU" : ", a busy loop") : "");
    kill(pbd->d.pid, SIGSTOP);
    kill(flr->d.pid, SIGSTOP);
    for (blk = 0; blk < LAT_BLOCKS && ok && !g_stop; blk++) {
        kill(pbd->d.pid, SIGCONT);
        ok = measure_block(pbd, spin, per, &a) == 0;
        kill(pbd->d.pid, SIGSTOP);
        if (!ok)
            break;
        kill(flr->d.pid, SIGCONT);
        ok = measure_block(flr, spin, per, &b) == 0;
        kill(flr->d.pid, SIGSTOP);
    }
    kill(pbd->d.pid, SIGCONT);
    kill(flr->d.pid, SIGCONT);
    stop_burners(burn);
    ok = ok && !g_stop;
    add_side(tag, "visible", "exit -> EXITED seen by a reader, procbusd", &a, ok, qa);
    add_side(tag, "floor", "  floor: exit-floor (pidfd + epoll + one record)", &b, ok, qb);
    snprintf(key, sizeof(key), "exit_visible_%s_p99_ratio", tag);
    snprintf(label, sizeof(label), "  ratio procbusd / floor, %s: p99", tag);
    add(key, label, ok ? qa[1] / qb[1] : NAN, "x", T_LE, 2, 1);
    snprintf(key, sizeof(key), "exit_visible_%s_p50_ratio", tag);
    snprintf(label, sizeof(label), "  ratio procbusd / floor, %s: p50", tag);
    add(key, label, ok ? qa[0] / qb[0] : NAN, "x", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exit_visible_%s_p999_ratio", tag);
    snprintf(label, sizeof(label), "  ratio procbusd / floor, %s: p99.9", tag);
    add(key, label, ok ? qa[2] / qb[2] : NAN, "x", T_NONE, 0, 1);
    if (strcmp(tag, "idle") == 0) {
        snprintf(label, sizeof(label), "exit -> EXITED seen, procbusd, idle: p99 (target)");
        add("exit_visible_idle_p99_target_us", label, ok ? qa[1] : NAN, "us", T_LT, 1000, 1);
    }
    acc_free(&a);
    acc_free(&b);
    return ok ? 0 : -1;
}

/* One /proc pass as the sampler makes it (every /proc/PID/stat read once): how long it
 * takes with what runs now (procbusd reads it in slices across loop turns). ms, or NAN. */
static double proc_pass_ms(int *nprocs)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    char path[300], buf[1024];
    uint64_t t0 = mono();

    *nprocs = 0;
    if (dir == NULL)
        return NAN;
    while ((de = readdir(dir)) != NULL) {
        int fd;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (read(fd, buf, sizeof(buf)) > 0)
            (*nprocs)++;
        close(fd);
    }
    closedir(dir);
    return (double)(mono() - t0) / 1e6;
}

int bench_exit_latency(int samples)
{
    struct exiter_daemon pbd, flr;
    int failed = 0, i, k, nprocs = 0;
    double pass[5];

    /* idle, loaded, spinning reader: procbusd with the exiter alone */
    if (exiter_up(&pbd, 0, NULL, "exit") < 0 || exiter_up(&flr, 1, NULL, "floor") < 0) {
        failed = 1;
    } else {
        failed |= pair_run(&pbd, &flr, "idle", "idle, blocking reader", samples, 0, 0) < 0;
        failed |= pair_run(&pbd, &flr, "loaded", "loaded, blocking reader", samples, 1, 0) < 0;
        failed |= pair_run(&pbd, &flr, "spin", "idle, spinning reader", samples, 0, 1) < 0;
    }
    exiter_down(&pbd);
    exiter_down(&flr);
    if (g_stop)
        return -1;
    /* with 1,000 more programs whose trees procbusd samples every 100 ms (the floor, measured
     * while procbusd is stopped, has the same 1,000 processes on the machine); and the same
     * with sampling every 60 s (not during the run): what the 1,000 programs cost alone */
    for (i = 0; i < 2 && !failed && !g_stop; i++) {
        char extra[512];
        snprintf(extra, sizeof(extra),
                 "[procbusd]\ncapacity = 1100\nsample_ms = %d\n"
                 "[program:s]\ncommand = sleep 1000\nnumprocs = 1000\n"
                 "process_name = s%%(process_num)04d\nstartsecs = 0\n",
                 i == 0 ? 100 : 60000);
        if (exiter_up(&pbd, 0, extra, i == 0 ? "exits" : "exitn") < 0 ||
            wait_running(&pbd.r, &pbd.d, 1000, 120000) < 0 ||
            exiter_up(&flr, 1, NULL, i == 0 ? "floors" : "floorn") < 0) {
            failed = 1;
        } else if (i == 0) {
            for (k = 0; k < 5; k++)
                pass[k] = proc_pass_ms(&nprocs);
            add("proc_pass_ms", "  one /proc pass (each /proc/PID/stat read), median of 5",
                median(pass, 5), "ms", T_NONE, 0, 1);
            add("proc_pass_processes", "  processes in that pass", nprocs, "", T_NONE, 0, 1);
            failed |= pair_run(&pbd, &flr, "sampled", "1,000 more programs sampled every 100 ms",
                               samples, 0, 0) < 0;
        } else {
            failed |=
                pair_run(&pbd, &flr, "unsampled", "1,000 more programs, not sampled during the run",
                         samples, 0, 0) < 0;
        }
        exiter_down(&pbd);
        exiter_down(&flr);
    }
    return failed || g_stop ? -1 : 0;
}
