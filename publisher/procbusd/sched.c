/* sched.c - procbusd's ordering: dependencies, what starts next (bounded per turn), shutdown. */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_int.h"
#include "parity.h"
#include "util.h"

/*
 * The spawn budget of one loop turn: at most this many forks, and no new fork once this
 * much time has gone into spawning, or once an urgent event waits (an exit, a signal, a
 * tracer event: pbd_urgent_pending). A fork here costs about 0.1 to 0.3 ms (the child's
 * setup and exec run on their own), so a turn's spawning stays within a few milliseconds:
 * exits, signals, control requests, heartbeats and tracer events are served between
 * batches, however many programs start (BENCHMARKS.md, procbusd start-up).
 */
#define PBD_SPAWNS_PER_TURN 16
#define PBD_SPAWN_SLICE_NS  (2 * 1000000ull)

/* ---- the spawn queue: runs the state machine decided, forked by the spawn phase ---- */

void pbd_spawnq_add(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->queued)
        return;
    in->queued = 1;
    in->q_next = NULL;
    in->q_prev = d->spawnq_tail;
    if (d->spawnq_tail != NULL)
        d->spawnq_tail->q_next = in;
    else
        d->spawnq_head = in;
    d->spawnq_tail = in;
}

void pbd_spawnq_remove(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (!in->queued)
        return;
    if (in->q_prev != NULL)
        in->q_prev->q_next = in->q_next;
    else
        d->spawnq_head = in->q_next;
    if (in->q_next != NULL)
        in->q_next->q_prev = in->q_prev;
    else
        d->spawnq_tail = in->q_prev;
    in->q_prev = in->q_next = NULL;
    in->queued = 0;
}

/* `name` is the instance's name, its [program:x] or its group. */
static int name_matches(const struct pbd_inst *in, const char *name)
{
    return strcmp(in->prog->name, name) == 0 || strcmp(in->prog->group, name) == 0 ||
           strcmp(in->prog->program, name) == 0;
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

/*
 * mark[i] = 1 if some live instance depends on d->inst[i] (it must be stopped first).
 * O(instances x dependencies), once per turn: a shutdown of thousands of programs without
 * dependencies costs one pass.
 */
static void mark_live_dependencies(struct pbd_daemon *d, unsigned char *mark)
{
    size_t i, j;
    int k;

    memset(mark, 0, d->n_inst);
    for (i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *o = d->inst[i];
        if (o->prog->n_deps == 0 || !pbd_inst_alive(o))
            continue;
        for (k = 0; k < o->prog->n_deps; k++)
            for (j = 0; j < d->n_inst; j++)
                if (j != i && name_matches(d->inst[j], o->prog->deps[k].name))
                    mark[j] = 1;
    }
}

/* Shutting down: stop the next wave (dependents first, then by group priority and priority,
 * highest first: supervisord's order, event listener pools last). */
static void schedule_shutdown(struct pbd_daemon *d)
{
    int maxg = INT_MIN, maxprio = INT_MIN, any = 0;
    unsigned char *mark = calloc(d->n_inst ? d->n_inst : 1, 1);
    size_t i;

    while (d->spawnq_head != NULL) /* nothing more starts */
        pbd_spawnq_remove(d, d->spawnq_head);
    if (mark == NULL)
        return; /* out of memory: the next turn tries again */
    mark_live_dependencies(d, mark);
    for (i = 0; i < d->n_inst; i++) {
        const struct pbd_program *p = d->inst[i]->prog;
        if (!pbd_inst_alive(d->inst[i]) || mark[i])
            continue;
        if (p->group_priority > maxg || (p->group_priority == maxg && p->priority > maxprio)) {
            maxg = p->group_priority;
            maxprio = p->priority;
        }
    }
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (!pbd_inst_alive(in))
            continue;
        any = 1;
        if (in->state != PROCBUS_STATE_STOPPING && !mark[i] && in->prog->group_priority == maxg &&
            in->prog->priority == maxprio &&
            !pbd_par_hold_stop(d, in)) /* an event listener with events still for it */
            pbd_inst_fire(d, in, PBD_EV_STOP);
    }
    free(mark);
    if (!any && !pbd_shutdown_leftovers(d)) /* leftovers of programs that exited by
                                             * themselves: gone, or done when they are */
        d->done = 1;
}

/* 1 while this turn's spawn budget allows another fork: the first always; then until the
 * count or the time is spent, or an exit (or a signal, a tracer event) is waiting. */
static int budget_left(const struct pbd_daemon *d, int spawned, uint64_t t0)
{
    return spawned == 0 ||
           (spawned < PBD_SPAWNS_PER_TURN && pb_now_ns(CLOCK_MONOTONIC) - t0 < PBD_SPAWN_SLICE_NS &&
            !pbd_urgent_pending(d));
}

void pbd_schedule(struct pbd_daemon *d)
{
    uint64_t t0 = pb_now_ns(CLOCK_MONOTONIC);
    int spawned = 0;
    size_t i;

    d->start_backlog = 0;
    if (d->shutting_down) {
        schedule_shutdown(d);
        return;
    }
    /* runs already decided (restarts, retries, start requests) first, in their order */
    while (d->spawnq_head != NULL && budget_left(d, spawned, t0)) {
        struct pbd_inst *in = d->spawnq_head;
        pbd_spawnq_remove(d, in);
        if (in->removing || in->next_prog != NULL || pbd_state_has_process(in->state))
            continue; /* removed, about to change, or running meanwhile */
        pbd_inst_spawn_now(d, in);
        spawned++;
    }
    for (i = 0; i < d->n_inst; i++) { /* d->inst is in priority order */
        struct pbd_inst *in = d->inst[i];
        if (in->want_start && !pbd_inst_alive(in) && in->next_prog == NULL &&
            pbd_deps_ready(d, in)) {
            if (!budget_left(d, spawned, t0)) {
                d->start_backlog = 1; /* the next turn goes on from here */
                break;
            }
            in->want_start = 0;
            in->failures = 0;
            pbd_inst_fire(d, in, PBD_EV_START); /* queues it ... */
            if (in->queued) {                   /* ... and it is forked now */
                pbd_spawnq_remove(d, in);
                pbd_inst_spawn_now(d, in);
                spawned++;
            }
        }
    }
}
