/* bench_util.h - helpers procbusd-bench.c and tracer-bench.c share (header-only, libc only).
 *
 * Define BENCH_NAME (the program's name: say()'s prefix and the temp folder's) before including,
 * and BENCH_MAX_ROWS (result rows kept; default 256) if it wants another size. The state below is
 * static, so each program has its own:
 *   g_stop    set by SIGINT, SIGTERM, SIGHUP (bench_setup); long loops and sleep_ms end early
 *   g_tmp     private temp folder /tmp/BENCH_NAME-XXXXXX (bench_setup), removed by bench_cleanup
 *   g_errlog  g_tmp/runs.err: stderr of every run_timed child
 *   g_bg      background processes (start_bg, track_bg) that bench_cleanup stops
 *   g_segs    segment names (track_seg) that bench_cleanup unlinks
 *   rows      the results (add), printed by print_rows and written by json_begin
 */
#ifndef PROCBUS_BENCH_UTIL_H
#define PROCBUS_BENCH_UTIL_H

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif
#ifndef BENCH_MAX_ROWS
#define BENCH_MAX_ROWS 256
#endif

#include "bench_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull
#define MAX_BG    16 /* background processes and segments tracked at once */

extern char **environ;

static volatile sig_atomic_t g_stop;
static char g_tmp[64];
static char g_errlog[128];
static pid_t g_bg[MAX_BG];
static char g_segs[MAX_BG][96];

/* ---- time, messages, files ---- */

/* Clock c now, in ns. */
static inline uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC now, in ns. */
static inline uint64_t mono(void)
{
    return now_ns(CLOCK_MONOTONIC);
}

/* Sleep ms milliseconds; a signal ends it early only once g_stop is set. */
static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_stop)
        ;
}

/* One line on stderr, "BENCH_NAME: " first. */
static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void say(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, BENCH_NAME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Replace path's contents with text; 0, or -1 (said). */
static inline int write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    fputs(text, fp);
    if (fclose(fp) != 0) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Print the last 4 KiB of a log file to stderr (for failures); nothing if it cannot be read. */
static inline void show_tail(const char *path)
{
    char buf[4096];
    FILE *fp = fopen(path, "r");
    long size;
    size_t n;

    if (fp == NULL)
        return;
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    fprintf(stderr, "---- %s (end) ----\n%s---- end of %s ----\n", path, buf, path);
}

/* An executable on PATH (or a path with a '/' that exists) into out; 0 if found, else -1. */
static inline int find_exe(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX];

    if (strchr(name, '/') != NULL) {
        snprintf(out, len, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
        if (snprintf(out, len, "%s/%s", dir[0] ? dir : ".", name) < (int)len &&
            access(out, X_OK) == 0)
            return 0;
        path += n + (path[n] == ':');
    }
    return -1;
}

/* ---- results ---- */

enum tgt { T_NONE, T_GE, T_LT };

struct row {
    char key[80], label[200];
    double value;
    const char *unit;
    enum tgt tgt;
    double target;
    int table; /* 0: JSON only */
};

static struct row rows[BENCH_MAX_ROWS];
static int nrows;

/* Append a result row (dropped once BENCH_MAX_ROWS are kept); table 0: JSON only. */
static inline void add(const char *key, const char *label, double v, const char *unit, enum tgt t,
                       double target, int table)
{
    struct row *r;

    if (nrows >= (int)(sizeof(rows) / sizeof(rows[0])))
        return;
    r = &rows[nrows++];
    snprintf(r->key, sizeof(r->key), "%s", key);
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->value = v;
    r->unit = unit;
    r->tgt = t;
    r->target = target;
    r->table = table;
}

/* "PASS", "MISS", "n/a" (no value) or "" (no target) for a row. */
static inline const char *verdict(const struct row *r)
{
    if (r->tgt == T_NONE)
        return "";
    if (!isfinite(r->value))
        return "n/a";
    if (r->tgt == T_GE)
        return r->value >= r->target ? "PASS" : "MISS";
    return r->value < r->target ? "PASS" : "MISS";
}

/* How many rows (table and JSON-only) have a target; *met gets how many of them pass. */
static inline int targets_count(int *met)
{
    int i, total = 0;

    *met = 0;
    for (i = 0; i < nrows; i++)
        if (rows[i].tgt != T_NONE) {
            total++;
            *met += strcmp(verdict(&rows[i]), "PASS") == 0;
        }
    return total;
}

/* A figure for the table: "-" if not finite, else 3 or so significant digits. */
static inline void fmt_val(char *buf, size_t len, double v)
{
    double a = v < 0 ? -v : v;

    if (!isfinite(v))
        snprintf(buf, len, "-");
    else if (a >= 1000 || (a < 1e15 && (double)(long long)a == a))
        snprintf(buf, len, "%.0f", v);
    else if (a >= 100)
        snprintf(buf, len, "%.1f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.3g", v);
}

/* ---- the machine ---- */

struct machine {
    char cpu[160], kernel[200];
    int online;
    double load_start, load_end, steal_pct;
    unsigned long long tot0, steal0;
};

/* The 1-minute load average, or NAN. */
static inline double loadavg1(void)
{
    FILE *fp = fopen("/proc/loadavg", "r");
    double l = NAN;

    if (fp != NULL) {
        if (fscanf(fp, "%lf", &l) != 1)
            l = NAN;
        fclose(fp);
    }
    return l;
}

/* Fill m (CPU model, kernel, CPUs online) and take the start readings (load, steal). */
static inline void machine_start(struct machine *m)
{
    FILE *fp = fopen("/proc/cpuinfo", "r");
    struct utsname u;
    char line[512];

    snprintf(m->cpu, sizeof(m->cpu), "unknown");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            char *s = colon + 1;
            while (*s == ' ' || *s == '\t')
                s++;
            snprintf(m->cpu, sizeof(m->cpu), "%.*s", (int)strcspn(s, "\n"), s);
            break;
        }
    }
    if (fp != NULL)
        fclose(fp);
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname, u.release, u.machine);
    else
        snprintf(m->kernel, sizeof(m->kernel), "unknown");
    m->online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->load_start = loadavg1();
    m->load_end = m->steal_pct = NAN;
    if (!bench_cpu_jiffies(&m->tot0, &m->steal0))
        m->tot0 = 0;
}

/* Take the end readings: load average, and the hypervisor steal % since machine_start. */
static inline void machine_end(struct machine *m)
{
    unsigned long long tot, steal;

    m->load_end = loadavg1();
    if (m->tot0 != 0 && bench_cpu_jiffies(&tot, &steal) && tot > m->tot0)
        m->steal_pct = 100.0 * (double)(steal - m->steal0) / (double)(tot - m->tot0);
}

/* ---- output ---- */

/* The markdown report: "## <what> benchmarks (<mode>)", the machine, the table rows and how many
 * of their targets are met. */
static inline void print_rows(const char *what, const char *mode, const struct machine *m)
{
    int i, met = 0, total = 0;

    printf("## %s benchmarks (%s)\n\n", what, mode);
    printf("machine: %s, %d CPUs, %s\n", m->cpu, m->online, m->kernel);
    printf("load average (1 min) at start %.2f, at end %.2f", m->load_start, m->load_end);
    if (isfinite(m->steal_pct))
        printf("; hypervisor steal during the run %.2f%%", m->steal_pct);
    printf("\n\n| benchmark | value | unit | target | verdict |\n|---|---:|---|---|---|\n");
    for (i = 0; i < nrows; i++) {
        char v[48], t[48] = "-";
        if (!rows[i].table)
            continue;
        fmt_val(v, sizeof(v), rows[i].value);
        if (rows[i].tgt != T_NONE) {
            char tv[32];
            fmt_val(tv, sizeof(tv), rows[i].target);
            snprintf(t, sizeof(t), "%s %s", rows[i].tgt == T_GE ? ">=" : "<", tv);
            total++;
            met += strcmp(verdict(&rows[i]), "PASS") == 0;
        }
        printf("| %s (`%s`) | %s | %s | %s | %s |\n", rows[i].label, rows[i].key, v, rows[i].unit,
               t, verdict(&rows[i]));
    }
    printf("\ntargets met: %d of %d\n", met, total);
}

/* Open path.tmp (its name into tmp) and write "{", mode, the machine and every row as flat keys;
 * the stream, or NULL (said). Finish with json_end. */
static inline FILE *json_begin(const char *path, char *tmp, size_t len, const struct machine *m,
                               const char *mode)
{
    FILE *fp;
    int i;

    snprintf(tmp, len, "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        say("%s: %s", tmp, strerror(errno));
        return NULL;
    }
    fprintf(fp, "{\n  \"mode\": ");
    json_str(fp, mode);
    fprintf(fp, ",\n  \"machine_cpu_model\": ");
    json_str(fp, m->cpu);
    fprintf(fp, ",\n  \"machine_cpus_online\": %d,\n  \"machine_kernel\": ", m->online);
    json_str(fp, m->kernel);
    fprintf(fp, ",\n  \"loadavg_start\": %.2f,\n  \"loadavg_end\": %.2f", m->load_start,
            m->load_end);
    if (isfinite(m->steal_pct))
        fprintf(fp, ",\n  \"steal_pct\": %.2f", m->steal_pct);
    for (i = 0; i < nrows; i++) {
        fprintf(fp, ",\n  ");
        json_str(fp, rows[i].key);
        if (isfinite(rows[i].value))
            fprintf(fp, ": %.6g", rows[i].value);
        else
            fprintf(fp, ": null");
    }
    return fp;
}

/* Write targets_met, targets_total and "}", close fp and rename tmp onto path; 0, or -1 (said). */
static inline int json_end(FILE *fp, const char *tmp, const char *path)
{
    int met, total = targets_count(&met);

    fprintf(fp, ",\n  \"targets_met\": %d,\n  \"targets_total\": %d\n}\n", met, total);
    if (fclose(fp) != 0 || rename(tmp, path) < 0) {
        say("%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- statistics ---- */

/* qsort comparison of two doubles, ascending. */
static inline int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..100) of v[0..n) (sorts v); NAN if n <= 0. */
static inline double pct(double *v, int n, int p)
{
    long k;

    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    k = ((long)p * n + 99) / 100 - 1; /* rank ceil(p/100 * n), 0-based */
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* ---- processes ---- */

/* Remember pid in g_bg (bench_cleanup stops it); ignored when g_bg is full. */
static inline void track_bg(pid_t pid)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] == 0) {
            g_bg[i] = pid;
            return;
        }
}

/* Forget pid in g_bg (it has been reaped). */
static inline void untrack_bg(pid_t pid)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] == pid)
            g_bg[i] = 0;
}

/* Start argv in its own process group (stdin /dev/null, stdout+stderr to log, deathsig if we
 * die), tracked in g_bg; its pid, or -1 (said). */
static inline pid_t start_bg(char *const argv[], const char *log, int deathsig)
{
    pid_t parent = getpid(), pid = fork();

    if (pid < 0) {
        say("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, deathsig);
        if (getppid() != parent)
            _exit(127);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track_bg(pid);
    return pid;
}

/* Wait up to timeout_ms for pid to exit; 0 and *status when it did (untracked), -1 if running. */
static inline int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    uint64_t end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (status != NULL)
                *status = st;
            untrack_bg(pid);
            return 0;
        }
        if (mono() > end)
            return -1;
        sleep_ms(5);
    }
}

/* SIGTERM, wait up to timeout_ms, then SIGKILL (it and its group); exit code, 128+sig or -1. */
static inline int stop_bg(pid_t pid, int timeout_ms, const char *what)
{
    int st = 0;

    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    if (wait_exit(pid, timeout_ms, &st) == 0)
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    say("%s (pid %d) still running %d ms after SIGTERM: SIGKILL", what, (int)pid, timeout_ms);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    wait_exit(pid, 5000, &st);
    return -1;
}

/* Is child pid still running? Does not reap it (WNOWAIT), so its pid cannot be reused. */
static inline int bg_alive(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return pid > 0 && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == 0;
}

/* Kill and reap every remaining child (a subreaper: orphans land here too). */
static inline void reap_strays(void)
{
    pid_t me = getpid();
    int round;

    for (round = 0; round < 3; round++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;

        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[300], buf[512], *p;
            int fd;
            ssize_t n;
            long ppid;

            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = '\0';
            p = strrchr(buf, ')');
            if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1 || ppid != (long)me)
                continue;
            found = 1;
            kill((pid_t)atol(e->d_name), SIGKILL);
        }
        if (d != NULL)
            closedir(d);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (!found)
            break;
        sleep_ms(20);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}

/* Run argv to completion (stdin /dev/null, stdout to out or /dev/null, stderr appended to
 * g_errlog); wall ns from spawn to reaped and *status, or -1 (said). */
static inline int64_t run_timed(char *const argv[], const char *out, int *status)
{
    posix_spawn_file_actions_t fa;
    uint64_t t0, t1;
    pid_t pid;
    int rc, st = 0;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&fa, 2, g_errlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
    t0 = mono();
    rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    if (rc == 0) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    t1 = mono();
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        say("spawn %s: %s", argv[0], strerror(rc));
        return -1;
    }
    *status = st;
    return (int64_t)(t1 - t0);
}

/* utime + stime of pid in clock ticks, or -1. */
static inline long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* ---- segments ---- */

/* Remember segment seg in g_segs (bench_cleanup unlinks it); ignored when g_segs is full. */
static inline void track_seg(const char *seg)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_segs[i][0] == '\0') {
            snprintf(g_segs[i], sizeof(g_segs[i]), "%s", seg);
            return;
        }
}

/* Forget segment seg in g_segs. */
static inline void forget_seg(const char *seg)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (strcmp(g_segs[i], seg) == 0)
            g_segs[i][0] = '\0';
}

/* Unlink /dev/shm/seg and, if owner > 0, the temp files a publisher killed while creating its
 * segment leaves; then forget seg. */
static inline void unlink_seg(const char *seg, pid_t owner)
{
    char path[160];
    glob_t g;
    size_t i;

    snprintf(path, sizeof(path), "/dev/shm/%.100s", seg);
    unlink(path);
    if (owner > 0) {
        snprintf(path, sizeof(path), "/dev/shm/.procbus-tmp.%d.*", (int)owner);
        if (glob(path, 0, NULL, &g) == 0) {
            for (i = 0; i < g.gl_pathc; i++)
                unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    forget_seg(seg);
}

/* Stop a procbusd that start_bg started (SIGTERM, SIGKILL after timeout_ms; its log's tail unless
 * it exited 0), then unlink its segment (and stray temp files) and its socket. */
static inline void stop_procbusd(pid_t pid, int timeout_ms, const char *log, const char *seg,
                                 const char *sock)
{
    int rc = stop_bg(pid, timeout_ms, "procbusd");

    if (rc != 0) {
        say("procbusd exited with status %d", rc);
        show_tail(log);
    }
    unlink_seg(seg, pid);
    unlink(sock);
}

/* ---- setup and cleanup ---- */

/* Signal handler: set g_stop. */
static inline void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* nftw callback: remove path (files, then folders with FTW_DEPTH). */
static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Make g_tmp and g_errlog, become a child subreaper, set g_stop on SIGINT/SIGTERM/SIGHUP and
 * ignore SIGPIPE; 0, or -1 (said) if the folder cannot be made. */
static inline int bench_setup(void)
{
    struct sigaction sa;

    snprintf(g_tmp, sizeof(g_tmp), "/tmp/" BENCH_NAME "-XXXXXX");
    if (mkdtemp(g_tmp) == NULL) {
        say("mkdtemp: %s", strerror(errno));
        g_tmp[0] = '\0';
        return -1;
    }
    snprintf(g_errlog, sizeof(g_errlog), "%s/runs.err", g_tmp);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Stop the processes in g_bg, reap every other child, unlink the segments in g_segs and remove
 * g_tmp; safe to call again. */
static inline void bench_cleanup(void)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] > 0)
            stop_bg(g_bg[i], 10000, "background process");
    reap_strays();
    for (i = 0; i < MAX_BG; i++)
        if (g_segs[i][0] != '\0')
            unlink_seg(g_segs[i], 0);
    if (g_tmp[0] != '\0')
        nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_tmp[0] = '\0';
}

#endif
