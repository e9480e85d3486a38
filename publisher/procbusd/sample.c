/* sample.c - procbusd's CPU and memory per program: sampling roots in, published usage out. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "daemon_int.h"

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
 * CPU and memory of each program's whole tree, in one pass over /proc: what
 * its main process's ancestry and session hold, plus every live process the
 * tracer attributes to it (a daemon that left the session is one of them).
 * Each process is counted once: for the nearest root on its ppid chain.
 */
void pbd_sample_programs(struct pbd_daemon *d)
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
            for (k = 0; k < n; k++)
                if (d->inst[k]->id == progs[i]) {
                    d->roots[n].pid = pids[i];
                    d->roots[n].sid = 0; /* itself and what it forks */
                    d->root_owner[n++] = k;
                    break;
                }
    }
    free(pids);
    free(progs);
    if (pbd_sample_trees(d->roots, n, d->usage, &d->sampler) < 0)
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
