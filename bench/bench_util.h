/* bench_util.h - helpers the benchmark programs share (header-only; libc and common/util.h).
 *
 * Define BENCH_NAME (the program's name: say()'s prefix, the temp folder's and the segments')
 * before including, and BENCH_MAX_ROWS (result rows kept; default 256) if it wants another size.
 * The state below is static, so each program has its own:
 *   g_stop    set by SIGINT, SIGTERM, SIGHUP (bench_setup); long loops and sleeps end early
 *   g_tmp     private temp folder /tmp/BENCH_NAME-XXXXXX (bench_setup), removed by bench_cleanup
 *   g_errlog  g_tmp/runs.err: stderr of every run_timed child
 *   g_bg      background processes (start_bg, track_bg) that bench_cleanup stops
 *   g_segs    segment names (track_seg) that bench_cleanup unlinks
 *   rows      the results (add, add_row), printed by print_rows and written by json_begin
 *   g_bindir, g_procbusd, g_procbus   the programs a procbusd benchmark runs (bench_find_programs)
 */
#ifndef PROCBUS_BENCH_UTIL_H
#define PROCBUS_BENCH_UTIL_H

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif
#ifndef BENCH_MAX_ROWS
#define BENCH_MAX_ROWS 256
#endif

#include "procbus.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
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
static char g_bindir[PATH_MAX - 64]; /* where procbusd and procbus are */
static char g_procbusd[PATH_MAX], g_procbus[PATH_MAX];

/* ---- time, messages, files ---- */

/* CLOCK_MONOTONIC now, in ns (pb_now_ns; other clocks: pb_now_ns(clock)). */
static inline uint64_t mono(void)
{
    return pb_now_ns(CLOCK_MONOTONIC);
}

/* Sleep us microseconds; a signal ends it early only once g_stop is set. */
static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_stop)
        ;
}

/* Sleep ms milliseconds (sleep_us). */
static inline void sleep_ms(long ms)
{
    sleep_us(ms * 1000);
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

/* ---- the machine ---- */

struct machine {
    char cpu[160], kernel[200];
    int online, allowed; /* CPUs online; CPUs this process may run on (0: unknown) */
    double load_start, load_end, steal_pct;
    unsigned long long tot0, steal0;
};

/* Total and steal jiffies of all CPUs from /proc/stat; 1 on success, 0 if unreadable. */
static inline int bench_cpu_jiffies(unsigned long long *total, unsigned long long *steal)
{
    unsigned long long v[8] = {0};
    FILE *fp = fopen("/proc/stat", "r");
    int n, i;

    if (fp == NULL)
        return 0;
    n = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]);
    fclose(fp);
    if (n < 8)
        return 0;
    *total = 0;
    for (i = 0; i < 8; i++)
        *total += v[i];
    *steal = v[7];
    return 1;
}

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

/* Fill m (CPU model, kernel, CPUs online and usable) and take the start readings (load, steal). */
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
    m->allowed = 0;
#ifdef CPU_COUNT /* _GNU_SOURCE */
    {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0)
            m->allowed = CPU_COUNT(&set);
    }
#endif
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

/* ---- results ---- */

enum tgt { T_NONE, T_GE, T_LT, T_LE, T_EQ };

struct row {
    char key[80], label[200];
    double value;
    double lo, hi; /* the smallest and largest of repeated rounds (NAN: not repeated) */
    const char *unit;
    enum tgt tgt;
    double target;
    int table; /* 0: JSON only */
};

static struct row rows[BENCH_MAX_ROWS];
static int nrows;

/* Append a result row with the range of its rounds (lo, hi; NAN: none); dropped once
 * BENCH_MAX_ROWS are kept. table 0: JSON only. */
static inline void add_row(const char *key, const char *label, double v, double lo, double hi,
                           const char *unit, enum tgt t, double target, int table)
{
    struct row *r;

    if (nrows >= (int)(sizeof(rows) / sizeof(rows[0])))
        return;
    r = &rows[nrows++];
    snprintf(r->key, sizeof(r->key), "%s", key);
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->value = v;
    r->lo = lo;
    r->hi = hi;
    r->unit = unit;
    r->tgt = t;
    r->target = target;
    r->table = table;
}

/* Append a result row measured once (add_row without a range). */
static inline void add(const char *key, const char *label, double v, const char *unit, enum tgt t,
                       double target, int table)
{
    add_row(key, label, v, NAN, NAN, unit, t, target, table);
}

/* "PASS", "MISS", "n/a" (no value) or "" (no target) for a row. */
static inline const char *verdict(const struct row *r)
{
    int pass;

    if (r->tgt == T_NONE)
        return "";
    if (!isfinite(r->value))
        return "n/a";
    switch (r->tgt) {
    case T_GE:
        pass = r->value >= r->target;
        break;
    case T_LT:
        pass = r->value < r->target;
        break;
    case T_LE:
        pass = r->value <= r->target;
        break;
    default:
        pass = r->value == r->target;
        break;
    }
    return pass ? "PASS" : "MISS";
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

/* A row's target for the table: ">= 5", "< 10", "<= 20", "== 0", or "-". */
static inline void fmt_target(char *buf, size_t len, const struct row *r)
{
    static const char *const op[] = {"", ">=", "<", "<=", "=="};
    char v[32];

    if (r->tgt == T_NONE) {
        snprintf(buf, len, "-");
        return;
    }
    fmt_val(v, sizeof(v), r->target);
    snprintf(buf, len, "%s %s", op[r->tgt], v);
}

/* ---- output ---- */

/* s as a JSON string literal. */
static inline void json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(fp, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(fp, "\\u%04x", ch);
        else
            fputc(ch, fp);
    }
    fputc('"', fp);
}

/*
 * The markdown report: "## <what> benchmarks (<mode>)", the machine, `note` (NULL: none), the
 * table rows (with a range column when some row has one) and how many of their targets are met.
 */
static inline void print_rows(const char *what, const char *mode, const struct machine *m,
                              const char *note)
{
    int i, met = 0, total = 0, ranges = 0;

    for (i = 0; i < nrows; i++)
        ranges |= rows[i].table && isfinite(rows[i].lo) && isfinite(rows[i].hi);
    printf("## %s benchmarks (%s)\n\n", what, mode);
    printf("machine: %s, %d CPUs", m->cpu, m->online);
    if (m->allowed > 0 && m->allowed != m->online)
        printf(" (%d usable)", m->allowed);
    printf(", %s\n", m->kernel);
    printf("load average (1 min) at start %.2f, at end %.2f", m->load_start, m->load_end);
    if (isfinite(m->steal_pct))
        printf("; hypervisor steal during the run %.2f%%", m->steal_pct);
    printf("\n");
    if (note != NULL)
        printf("%s\n", note);
    printf("\n| benchmark | value | unit | target | verdict |%s\n|---|---:|---|---|---|%s\n",
           ranges ? " range over rounds |" : "", ranges ? "---|" : "");
    for (i = 0; i < nrows; i++) {
        char v[48], t[48], range[80] = "-";
        if (!rows[i].table)
            continue;
        fmt_val(v, sizeof(v), rows[i].value);
        fmt_target(t, sizeof(t), &rows[i]);
        if (rows[i].tgt != T_NONE) {
            total++;
            met += strcmp(verdict(&rows[i]), "PASS") == 0;
        }
        if (isfinite(rows[i].lo) && isfinite(rows[i].hi) && rows[i].lo != rows[i].hi) {
            char lo[32], hi[32];
            fmt_val(lo, sizeof(lo), rows[i].lo);
            fmt_val(hi, sizeof(hi), rows[i].hi);
            snprintf(range, sizeof(range), "%s - %s", lo, hi);
        }
        printf("| %s (`%s`) | %s | %s | %s | %s |", rows[i].label, rows[i].key, v, rows[i].unit, t,
               verdict(&rows[i]));
        printf(ranges ? " %s |\n" : "\n", range);
    }
    printf("\ntargets met: %d of %d\n", met, total);
}

/*
 * Open path.tmp (its name into tmp) and write "{", mode, the machine and every row as flat keys
 * (a row with a range also KEY_round_min and KEY_round_max); the stream, or NULL (said). Add keys
 * of your own (",\n  ..."), then finish with json_end.
 */
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
    fprintf(fp, ",\n  \"machine_cpus_online\": %d", m->online);
    if (m->allowed > 0)
        fprintf(fp, ",\n  \"machine_cpus_allowed\": %d", m->allowed);
    fprintf(fp, ",\n  \"machine_kernel\": ");
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
        if (isfinite(rows[i].lo) && isfinite(rows[i].hi))
            fprintf(fp, ",\n  \"%s_round_min\": %.6g,\n  \"%s_round_max\": %.6g", rows[i].key,
                    rows[i].lo, rows[i].key, rows[i].hi);
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

/* The median of v[0..n) (sorts v; an even n: the mean of the middle two); NAN if n == 0. */
static inline double median(double *v, unsigned n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

/* Unlink segment seg's file (procbus_segment_path: /run/procbus/seg as root, else /dev/shm/seg)
 * and, if owner > 0, the temp files a publisher killed while creating its segment leaves beside
 * it; then forget seg. */
static inline void unlink_seg(const char *seg, pid_t owner)
{
    char path[PROCBUS_PATH_MAX + 64], *slash;
    glob_t g;
    size_t i;

    if (procbus_segment_path(seg, path, PROCBUS_PATH_MAX) < 0)
        return;
    unlink(path);
    slash = strrchr(path, '/');
    if (owner > 0 && slash != NULL) {
        snprintf(slash, sizeof(path) - (size_t)(slash - path), "/.procbus-tmp.%d.*", (int)owner);
        if (glob(path, 0, NULL, &g) == 0) {
            for (i = 0; i < g.gl_pathc; i++)
                unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    forget_seg(seg);
}

/* ---- procbusd instances ---- */

/* g_procbusd and g_procbus: g_bindir/procbusd and g_bindir/procbus. 0, or -1 (said, with `hint`:
 * how to name another folder) if either is not executable. */
static inline int bench_find_programs(const char *hint)
{
    snprintf(g_procbusd, sizeof(g_procbusd), "%s/procbusd", g_bindir);
    snprintf(g_procbus, sizeof(g_procbus), "%s/procbus", g_bindir);
    if (access(g_procbusd, X_OK) == 0 && access(g_procbus, X_OK) == 0)
        return 0;
    say("%s or %s missing: make %s/procbusd %s/procbus (or %s)", g_procbusd, g_procbus, g_bindir,
        g_bindir, hint);
    return -1;
}

/* A procbusd this program runs: its segment, control socket, log and config file. */
struct bench_daemon {
    pid_t pid; /* 0: not running */
    char seg[96], sock[128], log[128], conf[128];
    uint64_t t_start; /* mono() when it was started */
};

/* Name d's files after `tag` (and a counter: unique per call): segment BENCH_NAME-PID-TAG-N
 * (tracked for bench_cleanup), g_tmp/TAG-N.sock, g_tmp/procbusd-TAG-N.log and .conf. */
static inline void bench_daemon_init(struct bench_daemon *d, const char *tag)
{
    static int n;

    memset(d, 0, sizeof(*d));
    snprintf(d->seg, sizeof(d->seg), BENCH_NAME "-%d-%s-%d", (int)getpid(), tag, n);
    snprintf(d->sock, sizeof(d->sock), "%s/%s-%d.sock", g_tmp, tag, n);
    snprintf(d->log, sizeof(d->log), "%s/procbusd-%s-%d.log", g_tmp, tag, n);
    snprintf(d->conf, sizeof(d->conf), "%s/procbusd-%s-%d.conf", g_tmp, tag, n);
    n++;
    track_seg(d->seg);
}

/* Start `g_procbusd -c CONF -s SEG --socket SOCK extra...` (extra: NULL-terminated, at most 8;
 * write d->conf first) with PR_SET_PDEATHSIG and its output in d->log; 0, or -1 (said). */
static inline int bench_daemon_start(struct bench_daemon *d, const char *const extra[])
{
    char *argv[16] = {g_procbusd, "-c", d->conf, "-s", d->seg, "--socket", d->sock};
    int i;

    for (i = 0; extra != NULL && extra[i] != NULL && i < 8; i++)
        argv[7 + i] = (char *)extra[i];
    d->t_start = mono();
    d->pid = start_bg(argv, d->log, SIGTERM);
    if (d->pid < 0)
        d->pid = 0;
    return d->pid > 0 ? 0 : -1;
}

/* Still running? Does not reap it (WNOWAIT): bench_daemon_stop does, so its pid is not reused. */
static inline int bench_daemon_alive(const struct bench_daemon *d)
{
    return bg_alive(d->pid);
}

/*
 * Stop d if it runs (SIGTERM, SIGKILL after timeout_ms; its log's tail unless it exited 0) and
 * remove its segment (with the temp files of a publisher killed while creating it), socket and
 * config file. Safe on a bench_daemon that never started (zeroed or only named).
 */
static inline void bench_daemon_stop(struct bench_daemon *d, int timeout_ms)
{
    if (d->pid > 0) {
        int rc = stop_bg(d->pid, timeout_ms, "procbusd");
        if (rc != 0) {
            say("procbusd exited with status %d", rc);
            show_tail(d->log);
        }
        unlink_seg(d->seg, d->pid);
        unlink(d->sock);
        d->pid = 0;
    } else if (d->seg[0] != '\0') {
        unlink_seg(d->seg, 0);
    }
    if (d->conf[0] != '\0')
        unlink(d->conf);
}

/* ---- setup and cleanup ---- */

/* Signal handler: set g_stop. */
static inline void bench_on_signal(int sig)
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
    sa.sa_handler = bench_on_signal;
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
