/* tracer-floor.c - the floor under procbusd's exec -> visible: the same BPF program, a consumer
 * that only timestamps. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "proctrace_user.h"

/*
 * `tracer-floor OUT PARENT [RING_KB [BATCH_MS]]`: load the tracer as procbusd --observe does
 * (every process, the same ring size and wake-up batching), and for every EXEC of a process
 * named "sleep" whose parent is PARENT note how long after the exec (the kernel's timestamp,
 * CLOCK_BOOTTIME) its event reached this consumer. Nothing else is done with an event: no
 * table, no segment, no commit. Writes OUT.ready once attached; on SIGTERM writes one
 * latency per line (µs) to OUT and exits 0. tracer-bench runs it beside procbusd's figure.
 */

#define MAX_SAMPLES 100000

static volatile sig_atomic_t g_term;
static double g_lat[MAX_SAMPLES];
static int g_n;
static pid_t g_parent;
static int64_t g_boot_to_real;

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static int on_event(void *arg, const struct proctrace_event *ev)
{
    uint64_t now;
    (void)arg;

    if (ev->kind != PROCTRACE_EXEC || ev->ppid != g_parent || strcmp(ev->comm, "sleep") != 0)
        return 0;
    now = now_ns(CLOCK_REALTIME);
    if (g_n < MAX_SAMPLES)
        g_lat[g_n++] = ((double)now - (double)(ev->ts_ns + (uint64_t)g_boot_to_real)) / 1e3;
    return 0;
}

int main(int argc, char **argv)
{
    struct proctrace_opts o = {.observe_all = 1};
    struct proctrace *t = NULL;
    struct sigaction sa;
    char why[512], path[4096];
    FILE *f;
    int i, ep, rc;

    if (argc < 3) {
        fprintf(stderr, "usage: tracer-floor OUT PARENT [RING_KB [BATCH_MS]]\n");
        return 2;
    }
    g_parent = (pid_t)atoi(argv[2]);
    if (argc > 3 && atoi(argv[3]) > 0)
        o.ring_bytes = (size_t)atoi(argv[3]) * 1024;
    if (argc > 4)
        o.wake_gap_ns = (uint64_t)atoi(argv[4]) * 1000000ull;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc = proctrace_open(&t, &o, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "tracer-floor: %s\n", why);
        return 1;
    }
    g_boot_to_real = (int64_t)(now_ns(CLOCK_REALTIME) - now_ns(CLOCK_BOOTTIME));
    snprintf(path, sizeof(path), "%s.ready", argv[1]);
    f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
    ep = proctrace_fd(t);
    while (!g_term) {
        struct epoll_event ee;
        /* batched: events may come without a wake-up, so read at least every gap */
        int ms = o.wake_gap_ns ? (int)(o.wake_gap_ns / 1000000ull) : 100;
        if (epoll_wait(ep, &ee, 1, ms) < 0 && errno != EINTR)
            break;
        if (proctrace_consume(t, on_event, NULL) < 0)
            break;
    }
    proctrace_close(t);
    f = fopen(argv[1], "w");
    if (f == NULL)
        return 1;
    for (i = 0; i < g_n; i++)
        fprintf(f, "%.3f\n", g_lat[i]);
    return fclose(f) == 0 ? 0 : 1;
}
