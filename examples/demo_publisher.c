/* demo_publisher.c - a toy publisher: a few simulated programs changing state, for `make demo`. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procbus_pub.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static const char *names[] = {"web", "worker", "cron", "flaky"};
    enum { N = 4 };
    struct procbus_pub_opts o = {0};
    struct procbus_proc rec[N];
    struct procbus_pub *p = NULL;
    double seconds = argc > 2 ? atof(argv[2]) : 10.0;
    int tick, i, rc;

    o.segment = argc > 1 ? argv[1] : NULL;
    o.capacity = 64;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0) {
        fprintf(stderr, "demo_publisher: cannot create segment %s: %s\n",
                o.segment ? o.segment : "(default)", strerror(-rc));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (i = 0; i < N; i++) {
        memset(&rec[i], 0, sizeof(rec[i]));
        rec[i].id = procbus_pub_new_id(p);
        rec[i].pid = 20000 + i;
        rec[i].ppid = getpid();
        rec[i].pgid = rec[i].pid;
        rec[i].state = PROCBUS_STATE_STARTING;
        rec[i].start_realtime_ns = rec[i].state_since_ns = now_real();
        snprintf(rec[i].name, sizeof(rec[i].name), "%s", names[i]);
        snprintf(rec[i].comm, sizeof(rec[i].comm), "%s", names[i]);
        rec[i].cmdline_len =
            (uint32_t)snprintf(rec[i].cmdline, sizeof(rec[i].cmdline), "/usr/bin/%s", names[i]) + 1;
        rc = procbus_pub_upsert(p, &rec[i]);
        if (rc < 0)
            goto fail;
    }
    rc = procbus_pub_commit(p);
    if (rc < 0)
        goto fail;
    printf("demo_publisher: publishing %d programs on %s (pid %d)\n", N, procbus_pub_path(p),
           (int)getpid());
    fflush(stdout);

    for (tick = 0; !stop && tick < (int)(seconds * 4); tick++) {
        usleep(250 * 1000);
        for (i = 0; i < N; i++) {
            struct procbus_proc *r = &rec[i];
            uint16_t want = r->state;
            if (tick == 1 + i)
                want = PROCBUS_STATE_RUNNING;
            if (i == 3 && tick > 4 && tick % 6 == 0) /* "flaky" crashes and comes back */
                want = PROCBUS_STATE_BACKOFF;
            if (i == 3 && r->state == PROCBUS_STATE_BACKOFF && tick % 6 == 2) {
                want = PROCBUS_STATE_RUNNING;
                r->restarts++;
                r->pid += 100;
            }
            if (want != r->state) {
                if (want == PROCBUS_STATE_BACKOFF) {
                    r->exit_kind = PROCBUS_EXIT_SIGNAL;
                    r->exit_code = SIGSEGV;
                }
                r->state = want;
                r->state_since_ns = now_real();
            }
            r->cpu_ns += (uint64_t)(i + 1) * 2500000;
            r->rss_bytes = (uint64_t)(i + 1) * 10 * 1024 * 1024 + (uint64_t)tick * 4096;
            rc = procbus_pub_upsert(p, r);
            if (rc < 0)
                goto fail;
        }
        rc = procbus_pub_commit(p); /* -ENOMEM: nothing published, the batch stays staged */
        if (rc < 0)
            goto fail;
        procbus_pub_heartbeat(p);
    }
    procbus_pub_close(p, 0);
    printf("demo_publisher: shut down cleanly\n");
    return 0;
fail:
    fprintf(stderr, "demo_publisher: cannot publish on %s: %s\n", procbus_pub_path(p),
            strerror(-rc));
    procbus_pub_close(p, 0);
    return 1;
}
