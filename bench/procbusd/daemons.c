/* daemons.c - procbusd-bench's helpers: daemons it runs, readers on them, CPU burners, stats. */
#include "pbdb.h"

/* ---- statistics ---- */

double mean_of(const double *v, int n)
{
    double s = 0;
    int i;

    for (i = 0; i < n; i++)
        s += v[i];
    return n > 0 ? s / n : NAN;
}

/* ---- processes ---- */

long proc_status_kb(pid_t pid, const char *field)
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
pid_t start_burner(int cpu)
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
int daemon_start(struct bench_daemon *d)
{
    static const char *const no_trace[] = {"--trace", "off", NULL};
    return bench_daemon_start(d, no_trace);
}

/* Open the daemon's segment once it exists. */
int open_seg(struct procbus_reader *r, const struct bench_daemon *d, int timeout_ms)
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
int wait_running(struct procbus_reader *r, const struct bench_daemon *d, size_t want,
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

int start_burners(pid_t burn[2])
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

void stop_burners(pid_t burn[2])
{
    int i;

    for (i = 0; i < 2; i++)
        if (burn[i] > 0) {
            kill(burn[i], SIGKILL);
            wait_exit(burn[i], 5000, NULL);
            burn[i] = 0;
        }
}
