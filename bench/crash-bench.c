/* crash-bench.c - crash-only procbusd: adoption of 1,000 programs, kill-to-adopted, the reexec gap.
 */
#define _GNU_SOURCE
#define BENCH_NAME "crash-bench"
#include "bench_util.h"

#include <sys/syscall.h>

/*
 * usage: crash-bench [--quick] [--json FILE] [BINDIR]
 *
 * Three figures, each beside its floor measured in the same run (BENCHMARKS.md, "Crash-only"):
 *   adoption of 1,000 running programs: from the new segment's creation (its header's
 *     created_ns: the takeover copies the dead one's records in) to the commit where all 1,000
 *     records are ADOPTED, seen by a reader (target < 100 ms); floor: the system
 *     calls any adoption makes, pidfd_open + /proc/PID/stat for the same 1,000 pids, timed here;
 *   kill-to-adopted, 100 programs: from kill -9 of procbusd (and starting the next at once) to
 *     all 100 ADOPTED; floor: a procbusd started on a configuration without programs, from its
 *     exec to its segment visible;
 *   the reexec gap, 100 programs: procbus reexec, the time between the old image's last commit
 *     (just before its execve) and the new image's first (target < 50 ms); floor: the new
 *     binary's own start, `procbusd --check -c CONFIG` run to its exit.
 * Readers poll the segment (every 50 us) as any reader would. trace = off, so that the tracer's
 * loading (its own benchmark) stays out of the figures.
 */

static void write_conf(const struct bench_daemon *d, int n)
{
    char text[512];

    snprintf(text, sizeof(text),
             "[procbusd]\ntrace = off\ncapacity = 4096\nheartbeat_ms = 100\nsample_ms = 3600000\n"
             "\n[program:s]\ncommand = sleep 3600\nprocess_name = s%%(process_num)d\n"
             "numprocs = %d\nstartsecs = 0\n",
             n);
    write_file(d->conf, text);
}

/* How many of the n program records are RUNNING (and, with `adopted`, flagged ADOPTED). */
static int count(struct procbus_reader *r, struct procbus_proc *buf, int n, int adopted)
{
    size_t got = 0, i;
    int k = 0;

    if (procbus_list(r, buf, (size_t)n + 64, &got) < 0)
        return -1;
    for (i = 0; i < got; i++)
        k += buf[i].name[0] == 's' && buf[i].state == PROCBUS_STATE_RUNNING &&
             (!adopted || (buf[i].flags & PROCBUS_F_ADOPTED));
    return k;
}

/* Start d with n programs and wait until all run; 0 or -1. */
static int start_all(struct bench_daemon *d, int n, struct procbus_proc *buf)
{
    struct procbus_reader r;
    uint64_t end = mono() + 180 * PB_NS_PER_SEC;
    int rc = -1;

    write_conf(d, n);
    if (bench_daemon_start(d, NULL) < 0)
        return -1;
    while (mono() < end && !g_stop && procbus_open(&r, d->seg) != 0)
        sleep_ms(10);
    while (mono() < end && !g_stop) {
        if (count(&r, buf, n, 0) == n) {
            rc = 0;
            break;
        }
        sleep_ms(20);
    }
    procbus_close(&r);
    if (rc < 0)
        say("procbusd did not start %d programs", n);
    return rc;
}

/*
 * SIGKILL d, start it again at once; *kill_ns: kill -> all adopted (CLOCK_MONOTONIC here);
 * *adopt_ns: the new segment's creation (its header's created_ns: the takeover begins, the
 * dead one's records are copied in) -> all adopted seen (CLOCK_REALTIME both). 0 or -1.
 */
static int crash_round(struct bench_daemon *d, int n, struct procbus_proc *buf, double *kill_ns,
                       double *adopt_ns)
{
    struct procbus_reader r;
    uint64_t t_kill, t_seen = 0, end, epoch0, g0 = 0;
    int st;

    if (procbus_open(&r, d->seg) != 0)
        return -1;
    epoch0 = r.epoch;
    procbus_close(&r);
    t_kill = mono();
    kill(d->pid, SIGKILL);
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
        ;
    untrack_bg(d->pid);
    d->pid = 0;
    if (bench_daemon_start(d, NULL) < 0)
        return -1;
    for (end = mono() + 60 * PB_NS_PER_SEC; mono() < end && !g_stop; sleep_us(50)) {
        if (t_seen == 0) {
            if (procbus_open(&r, d->seg) != 0)
                continue;
            if (r.epoch <= epoch0) {
                procbus_close(&r);
                continue;
            }
            t_seen = mono();
            {
                /* the new segment's first generation (its EPOCH event's): the records it
                 * inherited (ADOPTED from an earlier round too) count only once the new
                 * procbusd committed after it */
                struct procbus_event ev;
                uint64_t missed = 0;
                procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
                if (procbus_next_event(&r, &ev, &missed) == 0 && ev.kind == PROCBUS_EV_EPOCH)
                    g0 = ev.generation;
            }
        }
        if (g0 != 0 && procbus_generation(&r) > g0 && count(&r, buf, n, 1) == n) {
            uint64_t t = mono(), real = pb_now_ns(CLOCK_REALTIME);
            struct procbus_info info;
            int ok = procbus_info(&r, &info) == 0;
            procbus_close(&r);
            *kill_ns = (double)(t - t_kill);
            *adopt_ns = ok && real > info.created_ns ? (double)(real - info.created_ns) : NAN;
            return 0;
        }
    }
    if (t_seen != 0)
        procbus_close(&r);
    say("the programs were not adopted in time");
    return -1;
}

/* The floor of adoption: pidfd_open and /proc/PID/stat for each of the n pids. */
static double adoption_floor(const struct procbus_proc *buf, size_t got)
{
    uint64_t t0 = mono();
    char path[64], line[512];
    size_t i;

    for (i = 0; i < got; i++) {
        int pfd, fd;
        if (buf[i].name[0] != 's')
            continue;
        pfd = (int)syscall(SYS_pidfd_open, buf[i].pid, 0);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)buf[i].pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (read(fd, line, sizeof(line)) < 0)
                line[0] = '\0';
            close(fd);
        }
        if (pfd >= 0)
            close(pfd);
    }
    return (double)(mono() - t0);
}

/* The reexec gap: run `procbus reexec` and watch the generation; the interval between the
 * commit the old image makes just before its execve and the next one. */
static int reexec_gap(const struct bench_daemon *d, double *gap_ns)
{
    char *argv[] = {g_procbus, "-s", (char *)d->seg, "-S", (char *)d->sock, "reexec", NULL};
    struct procbus_reader r;
    uint64_t times[64], g, end;
    int n = 0, st = 0;
    pid_t cli, pub;

    if (procbus_open(&r, d->seg) != 0)
        return -1;
    pub = ((const struct procbus_header *)r.base)->publisher_pid;
    g = procbus_generation(&r);
    cli = start_bg(argv, g_errlog, SIGTERM);
    for (end = mono() + 30 * PB_NS_PER_SEC; mono() < end && bg_alive(cli); sleep_us(50)) {
        uint64_t now = procbus_generation(&r);
        if (now != g && n < 64) {
            times[n++] = mono();
            g = now;
        }
    }
    wait_exit(cli, 10000, &st);
    untrack_bg(cli);
    if (procbus_liveness(&r, UINT64_MAX) != PROCBUS_ALIVE ||
        ((const struct procbus_header *)r.base)->publisher_pid != pub || st != 0 || n < 2) {
        say("reexec: status %d, %d commits seen, liveness %d", st, n,
            procbus_liveness(&r, UINT64_MAX));
        procbus_close(&r);
        return -1;
    }
    procbus_close(&r);
    /* the first change is the old image's last commit, the second the new image's first */
    *gap_ns = (double)(times[1] - times[0]);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_daemon big, small, empty;
    struct machine m;
    struct procbus_proc *buf;
    double kill1000[8], adopt1000[8], kill100[16], adopt100[16], gap[16], floor_gap[16];
    double floor_start[16], floor_adopt = NAN;
    const char *json = NULL, *bindir = "build";
    int quick = 0, i, rounds_big, rounds_small, st, nb = 0, ns = 0, ng = 0, nf = 0;
    int big_n = 1000, small_n = 100;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else
            bindir = argv[i];
    }
    rounds_big = quick ? 2 : 5;
    rounds_small = quick ? 3 : 10;
    snprintf(g_bindir, sizeof(g_bindir), "%s", bindir);
    if (bench_setup() < 0 || bench_find_programs("give the build folder as the argument") < 0)
        return 1;
    buf = calloc((size_t)big_n + 64, sizeof(*buf));
    if (buf == NULL)
        return 1;
    machine_start(&m);

    /* adoption of 1,000 running programs */
    bench_daemon_init(&big, "adopt1000");
    if (start_all(&big, big_n, buf) == 0) {
        struct procbus_reader r;
        size_t got = 0;
        if (procbus_open(&r, big.seg) == 0) {
            if (procbus_list(&r, buf, (size_t)big_n + 64, &got) == 0)
                floor_adopt = adoption_floor(buf, got);
            procbus_close(&r);
        }
        for (i = 0; i < rounds_big && !g_stop; i++)
            if (crash_round(&big, big_n, buf, &kill1000[nb], &adopt1000[nb]) == 0)
                nb++;
    }
    bench_daemon_stop(&big, 120000);

    /* kill-to-adopted and the reexec gap, 100 programs */
    bench_daemon_init(&small, "adopt100");
    if (start_all(&small, small_n, buf) == 0) {
        for (i = 0; i < rounds_small && !g_stop; i++)
            if (crash_round(&small, small_n, buf, &kill100[ns], &adopt100[ns]) == 0)
                ns++;
        for (i = 0; i < rounds_small && !g_stop; i++) {
            char *chk[] = {g_procbusd, "--check", "-c", small.conf, NULL};
            int64_t t = run_timed(chk, NULL, &st);
            if (t > 0 && st == 0)
                floor_gap[nf++] = (double)t;
            sleep_ms(200);
            if (reexec_gap(&small, &gap[ng]) == 0)
                ng++;
        }
    }
    bench_daemon_stop(&small, 60000);

    /* the floor of kill-to-adopted: a procbusd with nothing to adopt, exec to segment */
    for (i = 0; i < rounds_small && !g_stop; i++) {
        struct procbus_reader r;
        uint64_t t0, end;
        bench_daemon_init(&empty, "empty");
        write_file(empty.conf, "[procbusd]\ntrace = off\ncapacity = 4096\n");
        t0 = mono();
        if (bench_daemon_start(&empty, NULL) < 0)
            break;
        for (end = t0 + 10 * PB_NS_PER_SEC; mono() < end; sleep_us(50))
            if (procbus_open(&r, empty.seg) == 0) {
                floor_start[i] = (double)(mono() - t0);
                procbus_close(&r);
                break;
            }
        bench_daemon_stop(&empty, 10000);
    }
    machine_end(&m);

#define MS(v) ((v) / 1e6)
    if (nb > 0) {
        add_row("adopt_1000_ms",
                "adoption of 1,000 running programs (takeover begins -> all adopted)",
                MS(median(adopt1000, (unsigned)nb)), MS(pct(adopt1000, nb, 0)),
                MS(pct(adopt1000, nb, 100)), "ms", T_LT, 100, 1);
        add("adopt_1000_floor_ms", "floor: pidfd_open + /proc/PID/stat of the same 1,000 pids",
            MS(floor_adopt), "ms", T_NONE, 0, 1);
        add_row("kill_to_adopted_1000_ms", "kill -9 -> 1,000 programs adopted",
                MS(median(kill1000, (unsigned)nb)), MS(pct(kill1000, nb, 0)),
                MS(pct(kill1000, nb, 100)), "ms", T_NONE, 0, 1);
    }
    if (ns > 0) {
        add_row("kill_to_adopted_100_ms", "kill -9 -> 100 programs adopted",
                MS(median(kill100, (unsigned)ns)), MS(pct(kill100, ns, 0)),
                MS(pct(kill100, ns, 100)), "ms", T_NONE, 0, 1);
        add_row(
            "kill_to_adopted_floor_ms", "floor: procbusd with no program, exec -> segment visible",
            MS(median(floor_start, (unsigned)rounds_small)), MS(pct(floor_start, rounds_small, 0)),
            MS(pct(floor_start, rounds_small, 100)), "ms", T_NONE, 0, 1);
        add_row("adopt_100_ms", "adoption of 100 programs (takeover begins -> all adopted)",
                MS(median(adopt100, (unsigned)ns)), MS(pct(adopt100, ns, 0)),
                MS(pct(adopt100, ns, 100)), "ms", T_NONE, 0, 1);
    }
    if (ng > 0) {
        add_row("reexec_gap_ms",
                "reexec, 100 programs: no commit between the old image's last "
                "and the new one's first",
                MS(median(gap, (unsigned)ng)), MS(pct(gap, ng, 0)), MS(pct(gap, ng, 100)), "ms",
                T_LT, 50, 1);
        add_row("reexec_gap_floor_ms", "floor: procbusd --check -c CONFIG, exec to exit",
                MS(median(floor_gap, (unsigned)nf)), MS(pct(floor_gap, nf, 0)),
                MS(pct(floor_gap, nf, 100)), "ms", T_NONE, 0, 1);
    }
    print_rows("Crash-only procbusd", quick ? "quick" : "full", &m,
               "readers poll every 50 us; trace = off; medians over the rounds");
    if (json != NULL) {
        char tmp[PATH_MAX];
        FILE *fp = json_begin(json, tmp, sizeof(tmp), &m, quick ? "quick" : "full");
        if (fp != NULL)
            json_end(fp, tmp, json);
    }
    free(buf);
    bench_cleanup();
    return 0;
}
