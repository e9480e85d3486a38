/* bench_util.h - helpers the benchmark programs share (header-only; libc and common/util.h).
 *
 * Define BENCH_NAME (the program's name: say()'s prefix, the temp folder's and the segments')
 * before including, and BENCH_MAX_ROWS (result rows kept; default 256) if it wants another size.
 * A program of one file needs nothing more: the state below is static, its own. A program of
 * several files defines BENCH_UTIL_SHARED (and the same BENCH_NAME and BENCH_MAX_ROWS) in
 * each, and BENCH_UTIL_MAIN in exactly one: that file holds the state, the others refer to it.
 * Processes, segments, procbusd instances, set-up and clean-up are in bench_proc.h (included
 * at the end). The state:
 *   g_stop    set by SIGINT, SIGTERM, SIGHUP (bench_setup); long loops and sleeps end early
 *   g_tmp     private temp folder /tmp/BENCH_NAME-XXXXXX (bench_setup), removed by bench_cleanup
 *   g_errlog  g_tmp/runs.err: stderr of every run_timed child
 *   g_bg      background processes (start_bg, track_bg) that bench_cleanup stops
 *   g_segs    segment names (track_seg) that bench_cleanup unlinks
 *   rows      the results (add, add_row), printed by print_rows and written by json_begin
 *   g_bindir, g_procbusd, g_procbus   the programs a procbusd benchmark runs (bench_find_programs)
 *   g_daemon_seq  the counter that makes bench_daemon_init's names unique
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

#if !defined(BENCH_UTIL_SHARED)
#define BENCH_VAR static /* one file: its own state */
#elif defined(BENCH_UTIL_MAIN)
#define BENCH_VAR /* several files: defined here */
#else
#define BENCH_VAR extern /* several files: defined in the BENCH_UTIL_MAIN one */
#endif

BENCH_VAR volatile sig_atomic_t g_stop;
BENCH_VAR char g_tmp[64];
BENCH_VAR char g_errlog[128];
BENCH_VAR pid_t g_bg[MAX_BG];
BENCH_VAR char g_segs[MAX_BG][96];
BENCH_VAR char g_bindir[PATH_MAX - 64]; /* where procbusd and procbus are */
BENCH_VAR char g_procbusd[PATH_MAX], g_procbus[PATH_MAX];
BENCH_VAR int g_daemon_seq;

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

BENCH_VAR struct row rows[BENCH_MAX_ROWS];
BENCH_VAR int nrows;

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

/* Nearest-rank quantile of v[0..n) in per mille (999: p99.9; sorts v); NAN if n <= 0. */
static inline double pct_pm(double *v, int n, int permille)
{
    long k;

    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    k = ((long)permille * n + 999) / 1000 - 1; /* rank ceil(pm/1000 * n), 0-based */
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

#include "bench_proc.h"

#endif
