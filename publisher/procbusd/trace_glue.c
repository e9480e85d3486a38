/* trace_glue.c - procbusd's use of the trace module: options, program attribution, losses. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon_int.h"
#include "util.h"

/* pbd_trace_opts.program_by_name: the record id of the program called `name`, or 0. */
static uint64_t program_by_name(void *arg, const char *name)
{
    struct pbd_daemon *d = arg;
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (strcmp(d->inst[i]->prog->name, name) == 0)
            return d->inst[i]->id;
    return 0;
}

void pbd_trace_glue_staged(struct pbd_daemon *d, int n)
{
    uint64_t lost = pbd_trace_lost(d->trace), now;

    if (n > 0)
        d->staged = 1;
    if (lost == d->trace_lost_logged)
        return;
    now = pb_now_ns(CLOCK_MONOTONIC);
    if (now < d->trace_lost_log_at)
        return; /* at most one line a second during a storm */
    pbd_say(d, PBD_L_WARN,
            "tracer: %llu event(s) lost in the kernel (ring buffer full, %llu in all); "
            "reconciling from /proc",
            (unsigned long long)(lost - d->trace_lost_logged), (unsigned long long)lost);
    d->trace_lost_logged = lost;
    d->trace_lost_log_at = now + PB_NS_PER_SEC;
}

int pbd_trace_glue_start(struct pbd_daemon *d)
{
    static const char *const modes[] = {"auto", "on", "off", "proc"};
    struct pbd_trace_opts o = {0};
    char why[256] = "";
    int rc;

    o.mode = d->cfg.daemon.trace;
    o.observe = d->cfg.daemon.observe || d->observe_override;
    o.keep_exited_secs = d->cfg.daemon.keep_exited_secs;
    o.ring_kb = d->cfg.daemon.trace_ring_kb;
    o.capacity = d->cfg.daemon.capacity;
    o.batch_ms = d->cfg.daemon.trace_batch_ms;
    o.program_by_name = program_by_name;
    o.arg = d;
    o.seeds = d->seeds; /* a predecessor's descendants (adopt.c) */
    o.n_seeds = d->n_seeds;
    if (o.mode == PBD_TRACE_OFF && o.observe) {
        fprintf(stderr, "procbusd: observe needs tracing: trace=off contradicts it\n");
        return -EINVAL;
    }
    rc = pbd_trace_open(&d->trace, d->pub, &o, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "procbusd: --trace=%s: %s: %s\n", modes[o.mode],
                o.mode == PBD_TRACE_ON ? "the eBPF tracer cannot run" : "cannot follow processes",
                why[0] ? why : strerror(-rc));
        return rc;
    }
    if (o.mode == PBD_TRACE_AUTO && pbd_trace_mode(d->trace) == PBD_TRACE_PROC)
        fprintf(stderr,
                "procbusd: trace: eBPF unavailable (%s); following descendants by polling "
                "/proc every %d ms\n",
                why, d->cfg.daemon.sample_ms);
    if (o.mode == PBD_TRACE_AUTO && pbd_trace_mode(d->trace) == PBD_TRACE_OFF)
        fprintf(stderr, "procbusd: trace: cannot follow descendants (%s); direct children only\n",
                why);
    if (pbd_trace_fd(d->trace) >= 0) {
        d->w_trace.kind = PBD_W_TRACE;
        pbd_watch_add(d, pbd_trace_fd(d->trace), &d->w_trace);
    }
    pbd_say(d, PBD_L_INFO, "trace: %s (configured %s)%s",
            pbd_trace_mode(d->trace) == PBD_TRACE_ON     ? "eBPF"
            : pbd_trace_mode(d->trace) == PBD_TRACE_PROC ? "/proc polling"
                                                         : "off, direct children only",
            modes[o.mode], o.observe ? "; observing every process on the host" : "");
    return 0;
}

void pbd_trace_glue_sync(struct pbd_daemon *d, int walk)
{
    if (d->trace != NULL)
        pbd_trace_glue_staged(d, pbd_trace_sync(d->trace, walk));
}

void pbd_trace_glue_tick(struct pbd_daemon *d)
{
    if (d->trace != NULL)
        pbd_trace_glue_staged(d, pbd_trace_tick(d->trace, pb_now_ns(CLOCK_MONOTONIC),
                                                (uint64_t)d->cfg.daemon.sample_ms * 1000000ull));
    pbd_stop_tree_poll(d);
}

void pbd_trace_glue_close(struct pbd_daemon *d)
{
    struct pbd_trace_stats s = pbd_trace_stats(d->trace);

    if (d->trace != NULL && pbd_trace_mode(d->trace) != PBD_TRACE_OFF)
        pbd_say(d, PBD_L_INFO,
                "trace: read %llu fork, %llu exec, %llu exit, %llu rename event(s); %llu lost in "
                "the kernel; %llu walk(s); %llu exit(s) merged into records a walk had ended; "
                "%llu record(s) ended with status unknown; %llu attributed by kernel tag",
                (unsigned long long)s.forks, (unsigned long long)s.execs,
                (unsigned long long)s.exits, (unsigned long long)s.renames,
                (unsigned long long)pbd_trace_lost(d->trace), (unsigned long long)s.walks,
                (unsigned long long)s.merged, (unsigned long long)s.vanished,
                (unsigned long long)s.tagged);
    pbd_trace_close(d->trace);
    d->trace = NULL;
}
