/* demo_reader.c - follows a procbus segment: prints the table on every change and each event. */
#define _GNU_SOURCE
#include "procbus.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_proc procs[64];
    struct procbus_event ev;
    uint64_t gen = 0, missed;
    size_t n, i;
    int rc, tries;

    signal(SIGINT, on_signal);
    /* the publisher may still be starting: no file yet (-ENOENT), or, for a path
     * opened while it is being created, not initialised yet (-EINPROGRESS) */
    for (tries = 0; tries < 50; tries++) {
        rc = procbus_open(&r, argc > 1 ? argv[1] : NULL);
        if (rc != -ENOENT && rc != -EINPROGRESS)
            break;
        usleep(100 * 1000);
    }
    if (rc < 0) {
        fprintf(stderr, "demo_reader: cannot open segment: %s\n", strerror(-rc));
        return 1;
    }
    procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
    while (!stop) {
        rc = procbus_wait(&r, gen, 1000);
        if (rc == -EPIPE) {
            printf("publisher shut down cleanly; last snapshot stays readable\n");
            break;
        }
        while (procbus_next_event(&r, &ev, &missed) == 0) {
            if (missed)
                printf("  (missed %llu events)\n", (unsigned long long)missed);
            printf("  event #%llu %-8s %s -> %s\n", (unsigned long long)ev.seq, ev.name,
                   procbus_state_name(ev.old_state), procbus_state_name(ev.new_state));
        }
        if (procbus_list(&r, procs, 64, &n) != 0)
            continue;
        gen = procbus_read_generation(&r); /* the snapshot the list came from */
        rc = procbus_liveness(&r, procbus_stale_after_ns(&r));
        printf("generation %llu, publisher %s\n", (unsigned long long)gen,
               rc == PROCBUS_ALIVE      ? "alive"
               : rc == PROCBUS_STALE    ? "STALE"
               : rc == PROCBUS_SHUTDOWN ? "shut down"
                                        : "gone");
        printf("  %-8s %7s %-9s %8s %9s %8s\n", "NAME", "PID", "STATE", "RESTARTS", "CPU(ms)",
               "RSS(MB)");
        for (i = 0; i < n; i++)
            printf("  %-8s %7d %-9s %8u %9llu %8.1f\n", procs[i].name, procs[i].pid,
                   procbus_state_name(procs[i].state), procs[i].restarts,
                   (unsigned long long)(procs[i].cpu_ns / 1000000),
                   (double)procs[i].rss_bytes / (1024.0 * 1024.0));
        fflush(stdout);
    }
    procbus_close(&r);
    return 0;
}
