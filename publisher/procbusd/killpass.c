/* killpass.c - what a stop kills and when it is over: a program's whole tree, until it is empty. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "daemon_int.h"
#include "util.h"

/*
 * A stop is over when nothing of the program is left: not its main process
 * (procbusd reaped it), not a process of its group, not a process the tracer
 * (or /proc polling) attributes to it, setsid()'d daemons included. Each pass
 * first reads the tracer up to now (a child forked just before its parent was
 * killed is known before the pass decides), then SIGKILLs what is alive; the
 * exits it causes wake the loop (ring events, SIGCHLD), and a pass also runs
 * every KILL_RETRY_NS, so a tree that keeps forking while it dies is chased
 * until a pass finds it empty. Only then is STOPPED published.
 */

#define KILL_RETRY_NS  (10ull * 1000000ull)    /* a pass at least this often */
#define KILL_WARN_NS   (5ull * PB_NS_PER_SEC)  /* then a warning: what survives SIGKILL */
#define KILL_GIVEUP_NS (30ull * PB_NS_PER_SEC) /* then STOPPED anyway, said in the log */

/* Processes of the program's group left (zombies count until procbusd reaps them). Once
 * the group is empty its id is free for the kernel to reuse: never looked at (or signalled)
 * again in this stop. */
static int group_alive(struct pbd_inst *in)
{
    if (in->group_gone || in->last_pid <= 0)
        return 0;
    if (kill(-in->last_pid, 0) == 0 || errno == EPERM)
        return 1;
    in->group_gone = 1;
    return 0;
}

/* Read the tracer up to now; SIGKILL the group and the tree. How many are left alive. */
static size_t kill_pass(struct pbd_daemon *d, struct pbd_inst *in)
{
    size_t left;
    int group;

    pbd_trace_glue_sync(d, 1);
    left = pbd_trace_tree_live(d->trace, in->id);
    group = group_alive(in);
    if (left == 0 && !group)
        return 0;
    if (group)
        kill(-in->last_pid, SIGKILL);
    pbd_trace_signal_tree(d->trace, in->id, SIGKILL);
    return left + (size_t)group;
}

int pbd_stop_tree_begin(struct pbd_daemon *d, struct pbd_inst *in)
{
    in->kill_since = pb_now_ns(CLOCK_MONOTONIC);
    in->kill_warned = 0;
    in->group_gone = 0;
    in->emptying = kill_pass(d, in) != 0;
    return !in->emptying;
}

void pbd_stop_tree_poll(struct pbd_daemon *d)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    size_t i, left;

    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (!in->emptying)
            continue;
        left = kill_pass(d, in);
        if (left != 0 && now - in->kill_since >= KILL_WARN_NS && !in->kill_warned) {
            pbd_say(d, PBD_L_WARN, "%s: %zu process(es) of its tree still alive after SIGKILL",
                    in->prog->name, left);
            in->kill_warned = 1;
        }
        if (left != 0 && now - in->kill_since < KILL_GIVEUP_NS)
            continue;
        if (left != 0)
            pbd_say(d, PBD_L_ERR, "%s: %zu process(es) of its tree survive SIGKILL; stopped anyway",
                    in->prog->name, left);
        in->emptying = 0;
        pbd_inst_stopped(d, in);
    }
}

uint64_t pbd_stop_tree_deadline(const struct pbd_daemon *d)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    size_t i;

    if (d->leftovers_since != 0)
        return now + KILL_RETRY_NS;
    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->emptying)
            return now + KILL_RETRY_NS;
    return UINT64_MAX;
}

int pbd_stop_tree_signal(struct pbd_daemon *d, struct pbd_inst *in, int sig)
{
    pbd_trace_glue_sync(d, 1);
    return pbd_trace_signal_tree(d->trace, in->id, sig);
}

int pbd_stop_leftovers(struct pbd_daemon *d, struct pbd_inst *in)
{
    return pbd_stop_tree_signal(d, in, SIGKILL);
}

int pbd_shutdown_leftovers(struct pbd_daemon *d)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    size_t i, left = 0;

    pbd_trace_glue_sync(d, 1);
    for (i = 0; i < d->n_inst; i++) {
        left += pbd_trace_tree_live(d->trace, d->inst[i]->id);
        pbd_trace_signal_tree(d->trace, d->inst[i]->id, SIGKILL);
    }
    if (left == 0) {
        d->leftovers_since = 0;
        return 0;
    }
    if (d->leftovers_since == 0)
        d->leftovers_since = now;
    if (now - d->leftovers_since < KILL_GIVEUP_NS)
        return 1;
    pbd_say(d, PBD_L_ERR, "%zu leftover process(es) survive SIGKILL; exiting anyway", left);
    d->leftovers_since = 0;
    return 0;
}
