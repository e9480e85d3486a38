/* sample.c - procbusd's CPU and memory per program: a /proc pass in slices, published usage out. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "daemon_int.h"
#include "util.h"

/*
 * One turn's slice of a /proc pass: processes are read in chunks of PBD_SAMPLE_CHUNK until
 * PBD_SAMPLE_SLICE_NS have gone by or an urgent event (an exit, a signal, a tracer event)
 * waits. Reading one /proc/PID/stat costs about 5 to 15 us here, so an exit waits for at
 * most one chunk (tens of us); a pass over 1,000 programs' processes is spread over a few
 * dozen turns (BENCHMARKS.md, procbusd). Why slices and not a thread: procbusd stays one
 * thread (its fork()s copy no other thread's locks, its instance table needs none), and
 * the measured cost of a slice is what an exit may wait, no more.
 */
#define PBD_SAMPLE_CHUNK    4
#define PBD_SAMPLE_SLICE_NS (250 * 1000ull)

/* Room for `n` sampling roots. 0, or -ENOMEM (the old buffers stay). */
static int sample_room(struct pbd_daemon *d, size_t n)
{
    struct pbd_tree_root *r;
    struct pbd_tree_usage *u;
    size_t *o;

    if (n <= d->sample_cap)
        return 0;
    n = n < 2 * d->sample_cap ? 2 * d->sample_cap : n;
    if ((r = realloc(d->roots, n * sizeof(*r))) != NULL)
        d->roots = r;
    if ((u = realloc(d->usage, n * sizeof(*u))) != NULL)
        d->usage = u;
    if ((o = realloc(d->root_owner, n * sizeof(*o))) != NULL)
        d->root_owner = o;
    if (r == NULL || u == NULL || o == NULL)
        return -ENOMEM;
    d->sample_cap = n;
    return 0;
}

/*
 * CPU and memory of each program's whole tree, from a complete pass over /proc:
 * what its main process's ancestry and session hold, plus every live process the
 * tracer attributes to it (a daemon that left the session is one of them).
 * Each process is counted once: for the nearest root on its ppid chain.
 */
static void attribute_and_publish(struct pbd_daemon *d)
{
    size_t n = d->n_inst, extra = pbd_trace_descendants(d->trace, NULL, NULL, 0), k, i;
    pid_t *pids = NULL;
    uint64_t *progs = NULL;

    if (n == 0 || sample_room(d, n + extra) < 0)
        return;
    for (k = 0; k < n; k++) {
        d->roots[k].pid = d->inst[k]->sp.pid;
        d->roots[k].sid = d->inst[k]->sp.pid;
        d->root_owner[k] = k;
    }
    if (extra > 0 && (pids = malloc(extra * sizeof(*pids))) != NULL &&
        (progs = malloc(extra * sizeof(*progs))) != NULL) {
        extra = pbd_trace_descendants(d->trace, pids, progs, extra);
        for (i = 0; i < extra; i++)
            for (k = 0; k < d->n_inst; k++)
                if (d->inst[k]->id == progs[i]) {
                    d->roots[n].pid = pids[i];
                    d->roots[n].sid = 0; /* itself and what it forks */
                    d->root_owner[n++] = k;
                    break;
                }
    }
    free(pids);
    free(progs);
    if (pbd_sampler_attribute(d->roots, n, d->usage, &d->sampler) < 0)
        return;
    for (i = d->n_inst; i < n; i++) { /* a descendant's share goes to its program */
        d->usage[d->root_owner[i]].cpu_ns += d->usage[i].cpu_ns;
        d->usage[d->root_owner[i]].rss_bytes += d->usage[i].rss_bytes;
    }
    for (k = 0; k < d->n_inst; k++) {
        struct pbd_inst *in = d->inst[k];
        if (in->sp.pid <= 0 ||
            (in->cpu_ns == d->usage[k].cpu_ns && in->rss == d->usage[k].rss_bytes))
            continue;
        in->cpu_ns = d->usage[k].cpu_ns;
        in->rss = d->usage[k].rss_bytes;
        pbd_inst_publish(d, in);
    }
}

void pbd_sample_slice(struct pbd_daemon *d, uint64_t now_mono)
{
    uint64_t t0;
    int rc = 0;

    if (!d->sampling) {
        if (now_mono < d->next_sample)
            return;
        /* (with no program too: the deadline must move on) */
        d->next_sample = now_mono + (uint64_t)d->cfg.daemon.sample_ms * 1000000ull;
        if (d->n_inst == 0 || pbd_sampler_scan_begin(&d->sampler) < 0)
            return;
        d->sampling = 1;
        d->sample_started = now_mono;
        d->sample_slices = 0;
    }
    d->sample_slices++;
    t0 = pb_now_ns(CLOCK_MONOTONIC);
    do
        rc = pbd_sampler_scan_step(&d->sampler, PBD_SAMPLE_CHUNK);
    while (rc == 0 && pb_now_ns(CLOCK_MONOTONIC) - t0 < PBD_SAMPLE_SLICE_NS &&
           !pbd_urgent_pending(d));
    if (rc == 0)
        return; /* more next turn */
    d->sampling = 0;
    if (rc > 0)
        attribute_and_publish(d);
    pbd_say(d, PBD_L_DEBUG, "sampled %zu processes in %u slices over %.1f ms%s", d->sampler.n_ents,
            d->sample_slices, (double)(pb_now_ns(CLOCK_MONOTONIC) - d->sample_started) / 1e6,
            rc < 0 ? " (failed)" : "");
}
