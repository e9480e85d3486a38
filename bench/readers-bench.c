/* readers-bench.c - the tools' read paths: `procbus status` per run and `procbus top`'s CPU. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "util.h"

/*
 * readers-bench [--quick] BIN_DIR [BASELINE_BIN_DIR]
 *
 * Two segments, each kept by a publisher child: "100 programs" and "100
 * programs + 10,000 traced processes" (descendant records, as procbusd's
 * tracer publishes them). Then, for BIN_DIR/procbus and, when given,
 * BASELINE_BIN_DIR/procbus (another build, e.g. of an older commit), in
 * alternating rounds:
 *   - status: the whole `procbus -s SEG status` process, spawn to exit, stdout
 *     to /dev/null; beside it its floor, /bin/true spawned the same way;
 *   - top: `procbus -s SEG top` on a pseudo-terminal (80x50) for a few seconds
 *     on the large segment while its publisher commits 200 times a second (10
 *     changed records each); the figure is top's CPU time (utime + stime) per
 *     second, and per commit it redrew for.
 * Medians and p99 (status), medians of the runs (top), and the load average.
 */

extern char **environ;

#define PROGRAMS 100
#define TRACED   10000

static double now_ms(void)
{
    return (double)pb_now_ns(CLOCK_MONOTONIC) / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
    int k;

    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    k = (p * n + 99) / 100 - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---- the publishers (children: the parent never touches the publisher library) ---- */

/* Publish `traced` descendant records beside PROGRAMS programs, then idle (or commit `rate`
 * times a second, 10 changed records each) until SIGTERM. Says "ready" on `fd`. */
static void publisher(const char *seg, int traced, int rate, int fd)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_proc rec, *progs = calloc(PROGRAMS, sizeof(*progs));
    uint64_t k = 0;
    int i;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    o.segment = seg;
    o.capacity = (uint32_t)(PROGRAMS + traced + 16);
    if (progs == NULL || procbus_pub_open(&p, &o) < 0)
        _exit(1);
    for (i = 0; i < PROGRAMS; i++) {
        struct procbus_proc *r = &progs[i];
        r->id = procbus_pub_new_id(p);
        r->pid = 10000 + i;
        r->state = PROCBUS_STATE_RUNNING;
        r->start_realtime_ns = (uint64_t)time(NULL) * 1000000000ull;
        r->state_since_ns = r->start_realtime_ns;
        r->rss_bytes = (uint64_t)(i + 1) << 20;
        snprintf(r->name, sizeof(r->name), "prog-%03d", i);
        snprintf(r->comm, sizeof(r->comm), "prog-%03d", i);
        r->cmdline_len = (uint32_t)snprintf(r->cmdline, sizeof(r->cmdline), "/usr/bin/prog %d", i);
        if (procbus_pub_upsert(p, r) < 0)
            _exit(1);
    }
    for (i = 0; i < traced; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.id = procbus_pub_new_id(p);
        rec.pid = 100000 + i;
        rec.state = PROCBUS_STATE_RUNNING;
        rec.flags = PROCBUS_F_DESCENDANT;
        rec.program_id = progs[i % PROGRAMS].id;
        snprintf(rec.comm, sizeof(rec.comm), "worker%d", i % 100000);
        if (procbus_pub_upsert(p, &rec) < 0)
            _exit(1);
    }
    if (procbus_pub_commit(p) < 0)
        _exit(1);
    procbus_pub_heartbeat(p);
    if (write(fd, "r", 1) != 1)
        _exit(1);
    close(fd);
    for (;;) {
        if (rate > 0) {
            for (i = 0; i < 10; i++, k++) {
                struct procbus_proc *r = &progs[(k * 7) % PROGRAMS];
                r->cpu_ns += 10000000;
                if (procbus_pub_upsert(p, r) < 0)
                    _exit(1);
            }
            if (procbus_pub_commit(p) < 0)
                _exit(1);
            usleep(1000000 / (unsigned)rate);
        } else {
            usleep(100000);
        }
        procbus_pub_heartbeat(p);
    }
}

static pid_t start_publisher(const char *seg, int traced, int rate)
{
    int pfd[2];
    char c;
    pid_t pid;

    if (pipe(pfd) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        publisher(seg, traced, rate, pfd[1]);
    }
    close(pfd[1]);
    if (pid < 0 || read(pfd[0], &c, 1) != 1) {
        close(pfd[0]);
        return -1;
    }
    close(pfd[0]);
    return pid;
}

static void stop_publisher(pid_t pid, const char *seg)
{
    char path[PROCBUS_PATH_MAX];

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (procbus_segment_path(seg, path, sizeof(path)) == 0)
        unlink(path);
}

/* ---- status ---- */

/* One run of argv, stdout and stderr to /dev/null: its wall time in ms, or -1. */
static double run_ms(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    double t0 = now_ms();
    pid_t pid;
    int st;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? now_ms() - t0 : -1;
}

static int status_part(char *const bins[], int nbins, int rounds, int per_round)
{
    static const char *const segs[2] = {"readers-bench-100", "readers-bench-10100"};
    static const int traced[2] = {0, TRACED};
    int s, b, k, i, n = rounds * per_round, bad = 0;
    double *t[3];

    for (i = 0; i < 3; i++)
        if ((t[i] = calloc((size_t)n, sizeof(double))) == NULL)
            return -1;
    for (s = 0; s < 2; s++) {
        pid_t pub = start_publisher(segs[s], traced[s], 0);
        char *targv[] = {"/bin/true", NULL};
        if (pub < 0) {
            fprintf(stderr, "readers-bench: cannot publish %s\n", segs[s]);
            return -1;
        }
        for (k = 0; k < rounds; k++)
            for (b = 0; b <= nbins; b++)
                for (i = 0; i < per_round; i++) {
                    char *argv[] = {bins[b < nbins ? b : 0], "-s", (char *)segs[s], "status", NULL};
                    double ms = run_ms(b < nbins ? argv : targv);
                    bad += ms < 0;
                    t[b][k * per_round + i] = ms;
                }
        stop_publisher(pub, segs[s]);
        printf("status, %d programs + %d traced records, %d runs each (ms, p50 / p99):\n", PROGRAMS,
               traced[s], n);
        for (b = 0; b <= nbins; b++) {
            double p50 = pct(t[b], n, 50), p99 = pct(t[b], n, 99);
            printf("  %-40s %.3f / %.3f\n", b < nbins ? bins[b] : "floor: /bin/true", p50, p99);
        }
    }
    for (i = 0; i < 3; i++)
        free(t[i]);
    return bad ? -1 : 0;
}

/* ---- top ---- */

/* utime + stime of pid, in clock ticks; -1 if unreadable */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, stt;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    return (long)(ut + stt);
}

/* top on a pty for `secs`: its CPU ms per second of wall time; *gens: commits meanwhile. */
static double top_run(const char *bin, const char *seg, double secs, double *gens)
{
    struct winsize ws = {.ws_row = 50, .ws_col = 80};
    struct procbus_reader r;
    uint64_t g0, g1;
    double t0, ms;
    long c0, c1;
    int master;
    pid_t pid;
    char buf[65536];

    if (procbus_open(&r, seg) < 0)
        return -1;
    pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        setenv("TERM", "xterm", 1);
        execl(bin, bin, "-s", seg, "top", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    fcntl(master, F_SETFL, O_NONBLOCK);
    t0 = now_ms();
    while (now_ms() - t0 < 500) /* its start-up and first screen are not counted */
        if (read(master, buf, sizeof(buf)) <= 0)
            usleep(2000);
    c0 = cpu_ticks(pid);
    g0 = procbus_generation(&r);
    t0 = now_ms();
    while (now_ms() - t0 < secs * 1000) /* drain the screen updates, as a terminal would */
        if (read(master, buf, sizeof(buf)) <= 0)
            usleep(2000);
    c1 = cpu_ticks(pid);
    g1 = procbus_generation(&r);
    ms = now_ms() - t0;
    if (write(master, "q", 1) != 1)
        kill(pid, SIGTERM);
    for (t0 = now_ms(); waitpid(pid, NULL, WNOHANG) == 0; usleep(10000))
        if (now_ms() - t0 > 5000)
            kill(pid, SIGKILL);
    close(master);
    procbus_close(&r);
    *gens = (double)(g1 - g0);
    if (c0 < 0 || c1 < 0)
        return -1;
    return (double)(c1 - c0) * 1000.0 / (double)sysconf(_SC_CLK_TCK) / (ms / 1000.0);
}

static int top_part(char *const bins[], int nbins, int runs, double secs)
{
    static const char seg[] = "readers-bench-top";
    double cpu[2][16], per[2][16];
    pid_t pub = start_publisher(seg, TRACED, 200);
    int b, k;

    if (pub < 0) {
        fprintf(stderr, "readers-bench: cannot publish %s\n", seg);
        return -1;
    }
    for (k = 0; k < runs; k++)
        for (b = 0; b < nbins; b++) {
            double gens = 0;
            cpu[b][k] = top_run(bins[b], seg, secs, &gens);
            per[b][k] = gens > 0 ? cpu[b][k] * secs / gens * 1000.0 : -1; /* us per commit */
            if (cpu[b][k] < 0) {
                stop_publisher(pub, seg);
                return -1;
            }
        }
    stop_publisher(pub, seg);
    printf("top, %d programs + %d traced records, publisher committing 200/s, %d runs of %.0f s "
           "(median):\n",
           PROGRAMS, TRACED, runs, secs);
    for (b = 0; b < nbins; b++)
        printf("  %-40s %.1f ms CPU per s, %.0f us per commit redrawn\n", bins[b],
               pct(cpu[b], runs, 50), pct(per[b], runs, 50));
    return 0;
}

int main(int argc, char **argv)
{
    char bin[2][PROCBUS_PATH_MAX];
    char *bins[2];
    int quick = 0, a = 1, nbins = 0, rc = 0;
    double l0 = loadavg();

    if (a < argc && strcmp(argv[a], "--quick") == 0)
        quick = 1, a++;
    if (a >= argc || argc - a > 2) {
        fprintf(stderr, "usage: readers-bench [--quick] BIN_DIR [BASELINE_BIN_DIR]\n");
        return 2;
    }
    for (; a < argc; a++, nbins++) {
        snprintf(bin[nbins], sizeof(bin[nbins]), "%s/procbus", argv[a]);
        bins[nbins] = bin[nbins];
        if (access(bin[nbins], X_OK) != 0) {
            fprintf(stderr, "readers-bench: no %s\n", bin[nbins]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (status_part(bins, nbins, quick ? 3 : 10, quick ? 10 : 30) < 0)
        rc = 1;
    if (top_part(bins, nbins, quick ? 1 : 3, quick ? 2 : 5) < 0)
        rc = 1;
    printf("load average (1 min) at start %.2f, at end %.2f\n", l0, loadavg());
    return rc;
}
