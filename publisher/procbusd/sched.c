/* sched.c - procbusd's ordering: dependencies, what starts next, the shutdown order. */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <string.h>

#include "daemon_int.h"

/* `name` is the instance's program or its group. */
static int name_matches(const struct pbd_inst *in, const char *name)
{
    return strcmp(in->prog->name, name) == 0 || strcmp(in->prog->group, name) == 0;
}

static int dep_satisfied(const struct pbd_inst *dep, enum pbd_dep_cond cond)
{
    uint16_t s = dep->state;

    switch (cond) {
    case PBD_DEP_STARTED:
        return s == PROCBUS_STATE_STARTING || s == PROCBUS_STATE_RUNNING ||
               s == PROCBUS_STATE_READY;
    case PBD_DEP_RUNNING:
        return s == PROCBUS_STATE_RUNNING || s == PROCBUS_STATE_READY;
    case PBD_DEP_READY:
        return s == PROCBUS_STATE_READY;
    case PBD_DEP_COMPLETED:
        return s == PROCBUS_STATE_EXITED && pbd_inst_expected_exit(dep);
    }
    return 0;
}

int pbd_deps_ready(struct pbd_daemon *d, const struct pbd_inst *in)
{
    int k;
    size_t i;

    for (k = 0; k < in->prog->n_deps; k++)
        for (i = 0; i < d->n_inst; i++)
            if (d->inst[i] != in && name_matches(d->inst[i], in->prog->deps[k].name) &&
                !dep_satisfied(d->inst[i], in->prog->deps[k].cond))
                return 0;
    return 1;
}

/* 1 if some live instance depends on `in` (it must be stopped first). */
static int has_live_dependents(struct pbd_daemon *d, const struct pbd_inst *in)
{
    size_t i;
    int k;

    for (i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *o = d->inst[i];
        if (o == in || !pbd_inst_alive(o))
            continue;
        for (k = 0; k < o->prog->n_deps; k++)
            if (name_matches(in, o->prog->deps[k].name))
                return 1;
    }
    return 0;
}

/* Shutting down: stop the next wave (dependents first, then by priority, highest first). */
static void schedule_shutdown(struct pbd_daemon *d)
{
    int maxprio = INT_MIN, any = 0;
    size_t i;

    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (pbd_inst_alive(in) && !has_live_dependents(d, in) && in->prog->priority > maxprio)
            maxprio = in->prog->priority;
    }
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (!pbd_inst_alive(in))
            continue;
        any = 1;
        if (in->state != PROCBUS_STATE_STOPPING && !has_live_dependents(d, in) &&
            in->prog->priority == maxprio)
            pbd_inst_fire(d, in, PBD_EV_STOP);
    }
    if (!any) {
        for (i = 0; i < d->n_inst; i++) /* leftovers of programs that exited by themselves */
            pbd_trace_signal_tree(d->trace, d->inst[i]->id, SIGKILL);
        d->done = 1;
    }
}

void pbd_schedule(struct pbd_daemon *d)
{
    size_t i;

    if (d->shutting_down) {
        schedule_shutdown(d);
        return;
    }
    for (i = 0; i < d->n_inst; i++) { /* d->inst is in priority order */
        struct pbd_inst *in = d->inst[i];
        if (in->want_start && !pbd_inst_alive(in) && in->next_prog == NULL &&
            pbd_deps_ready(d, in)) {
            in->want_start = 0;
            in->failures = 0;
            pbd_inst_fire(d, in, PBD_EV_START);
        }
    }
}
