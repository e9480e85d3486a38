/* verbs.c - procbusd's control verbs (start, stop, restart, signal, reload, shutdown, and
 * supervisorctl's: update, reread, add, remove, avail, clear ...): a table. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "daemon_int.h"
#include "parity.h"
#include "util.h"
#include "verbs.h"

/*
 * A control verb. A per-target verb's arguments are its fixed words (min_args
 * - 1 of them: signal's SIGNAL), then one or more targets (NAME, GROUP:*,
 * GROUP: or all); its `each` handler runs for every instance they select, and
 * the final line is "OK" or "ERR N error(s)". A whole-daemon verb's `run`
 * handler writes the final line itself. Checks, in this order: unknown verb,
 * argument count (usage), shutting down (when refused then).
 */
struct verb {
    const char *name;
    int min_args, max_args;    /* words after the verb; max -1: no limit */
    int refused_when_stopping; /* "ERR shutting down" once a shutdown began */
    const char *usage;         /* the words after the verb, for "ERR usage: VERB USAGE" */
    const char *help;          /* what it does, one line (for a `help` verb or the docs) */
    void (*run)(struct pbd_daemon *d, struct req *rq);
    enum target_rc (*each)(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in);
};

/* ---- per-target handlers ---- */

/*
 * As supervisorctl: a program already started (or stopped) is not an error. Named, it says so
 * ("NAME: ERROR (already started)", exit 0); through GROUP:* or all, it is skipped silently
 * (supervisord's startAllProcesses and stopAllProcesses only look at the others).
 */
static enum target_rc start_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in)
{
    char nm[160];

    pbd_namespec(in->prog, nm, sizeof(nm));
    if (pbd_inst_alive(in) && in->state != PROCBUS_STATE_BACKOFF) {
        if (rq->named)
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: ERROR (already started)\n", nm);
        return TARGET_OK;
    }
    in->want_start = 1;
    if (in->state == PROCBUS_STATE_BACKOFF || pbd_deps_ready(d, in)) {
        in->want_start = 0;
        in->failures = 0;
        pbd_inst_fire(d, in, PBD_EV_START);
    }
    pbd_ctl_reply(&d->ctl, rq->slot, "%s: start queued%s\n", nm,
                  pbd_deps_ready(d, in) ? "" : " (waiting for dependencies)");
    return TARGET_OK;
}

static enum target_rc stop_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in)
{
    char nm[160];

    pbd_namespec(in->prog, nm, sizeof(nm));
    in->want_start = 0;
    pbd_spawnq_remove(d, in); /* a start decided but not forked yet is dropped */
    if (!pbd_inst_alive(in)) {
        /* a daemon it double-forked, still attributed to it: stop that */
        int left = pbd_stop_leftovers(d, in);
        if (left > 0) {
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: killing %d leftover process(es)\n", nm, left);
            return TARGET_OK;
        }
        if (rq->named)
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: ERROR (not running)\n", nm);
        return TARGET_OK;
    }
    pbd_inst_fire(d, in, PBD_EV_STOP);
    pbd_ctl_reply(&d->ctl, rq->slot, "%s: stopping\n", nm);
    return TARGET_OK;
}

static enum target_rc restart_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in)
{
    char nm[160];

    in->want_start = 1;
    if (pbd_inst_alive(in)) {
        pbd_inst_fire(d, in, PBD_EV_STOP);
    } else if (pbd_deps_ready(d, in)) {
        in->want_start = 0;
        in->failures = 0;
        pbd_inst_fire(d, in, PBD_EV_START);
    }
    pbd_ctl_reply(&d->ctl, rq->slot, "%s: restart queued\n",
                  pbd_namespec(in->prog, nm, sizeof(nm)));
    return TARGET_OK;
}

/* argv[1] is the signal; it is judged at the first target (no target: no verdict). */
static enum target_rc signal_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in)
{
    int sig = pbd_signal_number(rq->argv[1]);
    char nm[160];

    if (sig <= 0) {
        snprintf(rq->final, rq->flen, "ERR unknown signal '%s'\n", rq->argv[1]);
        return TARGET_ABORT;
    }
    pbd_namespec(in->prog, nm, sizeof(nm));
    if (!pbd_state_has_process(in->state)) {
        pbd_ctl_reply(&d->ctl, rq->slot, "%s: ERROR (not running)\n", nm);
        return TARGET_ERROR;
    }
    pbd_inst_signal(in, sig, 0);
    pbd_ctl_reply(&d->ctl, rq->slot, "%s: signalled\n", nm);
    return TARGET_OK;
}

/* ---- whole-daemon handlers ---- */

static void run_reexec(struct pbd_daemon *d, struct req *rq)
{
    if (rq->argc > 1 && rq->argv[1][0] != '/') {
        snprintf(rq->final, rq->flen, "ERR reexec: the binary must be an absolute path\n");
        return;
    }
    pbd_reexec_request(d, rq->argc > 1 ? rq->argv[1] : NULL, rq->slot);
    rq->final[0] = '\0'; /* answered by the upgrade itself (reexec.c), not here */
}

static void run_shutdown(struct pbd_daemon *d, struct req *rq)
{
    pbd_say(d, PBD_L_INFO, "shutdown requested over the control socket");
    if (!d->shutting_down)
        pbd_par_stopping(d);
    d->shutting_down = 1;
    snprintf(rq->final, rq->flen, "OK\n");
}

/* ---- the table: adding a verb is one row and one handler ---- */

#define TARGETS "NAME|GROUP:*|all ..."

/* clang-format off */
static const struct verb verbs[] = {
  /* name       min max refused usage              help
   *            run, each */
    {"start",    1, -1, 1,      TARGETS,           "start programs (once their dependencies allow)",
                 NULL, start_one},
    {"stop",     1, -1, 1,      TARGETS,           "stop programs and kill their leftovers",
                 NULL, stop_one},
    {"restart",  1, -1, 1,      TARGETS,           "stop programs, then start them again",
                 NULL, restart_one},
    {"signal",   2, -1, 1,      "SIGNAL " TARGETS, "send a signal to programs' main processes",
                 NULL, signal_one},
    {"reload",   0, -1, 0,      "[allow-empty] [GROUP...]",
                                                   "re-read the configuration, apply changes "
                                                       "(allow-empty: even one with no program)",
                 pbd_verb_update, NULL},
    {"update",   0, -1, 1,      "[allow-empty] [GROUP...|all]",
                                                   "supervisorctl's update: as reload, said per group",
                 pbd_verb_update, NULL},
    {"reread",   0,  0, 1,      "",                "read the configuration, say what changed, apply "
                                                       "nothing",
                 pbd_verb_reread, NULL},
    {"add",      1, -1, 1,      "GROUP...",        "read the configuration, add groups it has that "
                                                       "do not run",
                 pbd_verb_add, NULL},
    {"remove",   1, -1, 1,      "GROUP...",        "remove stopped groups (until an update)",
                 pbd_verb_remove, NULL},
    {"avail",    0,  0, 0,      "",                "the configuration's processes: in use or not",
                 pbd_verb_avail, NULL},
    {"clear",    1, -1, 1,      TARGETS,           "empty programs' log files",
                 NULL, pbd_verb_clear_one},
    {"logfile",  1,  1, 0,      "NAME",            "the paths of a program's log files",
                 pbd_verb_logfile, NULL},
    {"mainlog",  0,  0, 0,      "",                "the path of procbusd's own log file",
                 pbd_verb_mainlog, NULL},
    {"names",    0,  0, 0,      "",                "every program's group and name",
                 pbd_verb_names, NULL},
    {"shutdown", 0,  0, 0,      "",                "stop every program (dependents first), exit",
                 run_shutdown, NULL},
    {"reexec",   0,  1, 1,      "[BINARY]",        "re-execute procbusd (BINARY, else its own path)"
                                                       " keeping programs, pipes, tracer, segment",
                 run_reexec, NULL},
};
/* clang-format on */
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

/* ---- dispatch ---- */

/* 1 if the instance's group (or its [program:x] name) is sel[0 .. glen). */
static int in_group(const struct pbd_inst *in, const char *sel, size_t glen)
{
    return (glen == strlen(in->prog->group) && strncmp(in->prog->group, sel, glen) == 0) ||
           (glen == strlen(in->prog->program) && strncmp(in->prog->program, sel, glen) == 0);
}

int pbd_verb_select(struct pbd_daemon *d, const char *sel, struct pbd_inst **out, size_t max,
                    int *named)
{
    size_t i, n = 0;
    const char *colon = strchr(sel, ':');
    int whole = colon != NULL && (colon[1] == '*' || colon[1] == '\0');

    *named = strcmp(sel, "all") != 0 && !whole;
    for (i = 0; i < d->n_inst && n < max; i++) {
        struct pbd_inst *in = d->inst[i];
        if (in->removing)
            continue;
        if (strcmp(sel, "all") == 0 || strcmp(in->prog->name, sel) == 0)
            out[n++] = in;
        else if (colon != NULL && in_group(in, sel, (size_t)(colon - sel)) &&
                 (whole || strcmp(colon + 1, in->prog->name) == 0))
            out[n++] = in; /* GROUP:* or GROUP: (the group), GROUP:NAME (supervisord's name) */
    }
    return (int)n;
}

/* A per-target verb: its handler for each instance its targets select, then the verdict. */
static void run_on_targets(struct pbd_daemon *d, struct req *rq, const struct verb *v)
{
    struct pbd_inst **targets = calloc(d->n_inst + 1, sizeof(*targets));
    int a, i, n, errors = 0;

    if (targets == NULL) {
        snprintf(rq->final, rq->flen, "ERR out of memory\n");
        return;
    }
    for (a = v->min_args; a < rq->argc; a++) {
        n = pbd_verb_select(d, rq->argv[a], targets, d->n_inst, &rq->named);
        if (n == 0) {
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: ERROR (no such %s)\n", rq->argv[a],
                          rq->named ? "process" : "group");
            errors++;
        }
        for (i = 0; i < n; i++) {
            enum target_rc rc = v->each(d, rq, targets[i]);
            if (rc == TARGET_ABORT) {
                free(targets);
                return;
            }
            errors += rc == TARGET_ERROR;
        }
    }
    free(targets);
    if (errors)
        snprintf(rq->final, rq->flen, "ERR %d error(s)\n", errors);
    else
        snprintf(rq->final, rq->flen, "OK\n");
}

/* "ERR unknown command 'X' (start, stop, ...)": the verbs of the table, in its order. */
static void unknown_verb(struct req *rq, const char *cmd)
{
    char list[512] = "";
    size_t i, used = 0;

    for (i = 0; i < N_VERBS && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 verbs[i].name);
    snprintf(rq->final, rq->flen, "ERR unknown command '%s' (%s)\n", cmd, list);
}

static void command(struct pbd_daemon *d, struct req *rq)
{
    const char *cmd = rq->argc > 0 ? rq->argv[0] : "";
    const struct verb *v = NULL;
    int nargs = rq->argc > 0 ? rq->argc - 1 : 0;
    size_t i;

    for (i = 0; i < N_VERBS && v == NULL; i++)
        if (strcmp(cmd, verbs[i].name) == 0)
            v = &verbs[i];
    if (v == NULL) {
        unknown_verb(rq, cmd);
        return;
    }
    if (nargs < v->min_args || (v->max_args >= 0 && nargs > v->max_args)) {
        snprintf(rq->final, rq->flen, "ERR usage: %s%s%s\n", v->name, v->usage[0] ? " " : "",
                 v->usage);
        return;
    }
    if (v->refused_when_stopping && d->shutting_down) {
        snprintf(rq->final, rq->flen, "ERR shutting down\n");
        return;
    }
    if (v->run != NULL)
        v->run(d, rq);
    else
        run_on_targets(d, rq, v);
}

/* ---- connections ---- */

void pbd_control_serve(struct pbd_daemon *d, int slot)
{
    char *argv[64];
    int argc = 0, rc = pbd_ctl_read(&d->ctl, slot, argv, 64, &argc);

    if (rc == 0)
        return;
    if (rc > 0) {
        char final[1200] = "ERR internal error\n";
        struct req rq = {
            .slot = slot, .argc = argc, .argv = argv, .final = final, .flen = sizeof(final)};
        command(d, &rq);
        /* what the reply promises is visible before the client hears it */
        pbd_commit_staged(d);
        if (final[0] == '\0')
            return; /* the connection is the verb's now (reexec) */
        pbd_ctl_reply(&d->ctl, slot, "%s", final);
    } else if (rc == -EMSGSIZE) {
        pbd_ctl_reply(&d->ctl, slot, "ERR request too long\n");
    }
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->ctl.conns[slot].fd, NULL);
    pbd_ctl_finish(&d->ctl, slot);
}

void pbd_control_accept(struct pbd_daemon *d)
{
    int slot;

    while ((slot = pbd_ctl_accept(&d->ctl)) != -EAGAIN) {
        if (slot < 0)
            continue;
        d->w_conn[slot] = (struct pbd_watch){.kind = PBD_W_CONN, .slot = slot};
        pbd_watch_add(d, d->ctl.conns[slot].fd, &d->w_conn[slot]);
        /* a client writes its request as soon as it is connected: when it is here already,
         * it is served in this turn rather than the next (a turn can be a few ms while
         * thousands of programs start) */
        pbd_control_serve(d, slot);
    }
}

void pbd_control_expire(struct pbd_daemon *d)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    int slot = 0;

    while ((slot = pbd_ctl_expired(&d->ctl, slot, now)) >= 0) {
        pbd_ctl_reply(&d->ctl, slot, "ERR timeout: no whole request line within %d ms\n",
                      PBD_CTL_REQUEST_MS);
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->ctl.conns[slot].fd, NULL);
        pbd_ctl_finish(&d->ctl, slot);
        slot++;
    }
}
