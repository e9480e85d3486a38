/* supervise.c - procbusd's state-machine actions: spawn, stop signals, timers, exits, reaping. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon_int.h"
#include "parity.h"
#include "procbus.h"
#include "util.h"

/* Arm (or with PBD_T_NONE cancel) the instance's one timer, `after_ns` from now. */
static void arm(struct pbd_inst *in, enum pbd_timer t, uint64_t after_ns)
{
    in->timer = t;
    in->deadline = t == PBD_T_NONE ? 0 : pb_now_ns(CLOCK_MONOTONIC) + after_ns;
}

/* Count a start in the start limit's window (startlimit_burst within startlimit_interval_secs),
 * opening a new window when the last one has passed. */
static void start_limit_count(struct pbd_inst *in)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    uint64_t win = (uint64_t)in->prog->startlimit_interval * PB_NS_PER_SEC;

    if (in->limit_count == 0 || now - in->limit_start >= win) {
        in->limit_start = now;
        in->limit_count = 0;
    }
    in->limit_count++;
}

/*
 * An automatic restart now would be one start too many for the window: wait in
 * BACKOFF until the window has passed (PBD_EV_RETRY then starts it, as after a
 * failed start; a stop cancels it). Returns 1 if so, 0 when it may start now.
 */
static int start_limit_hold(struct pbd_daemon *d, struct pbd_inst *in)
{
    const struct pbd_program *p = in->prog;
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC), end;

    if (p->startlimit_interval <= 0 || in->limit_count < p->startlimit_burst)
        return 0;
    end = in->limit_start + (uint64_t)p->startlimit_interval * PB_NS_PER_SEC;
    if (now >= end)
        return 0;
    pbd_say(d, PBD_L_WARN,
            "%s: started %d times within %d s (startlimit_burst, startlimit_interval_secs): "
            "next start in %.1f s",
            p->name, in->limit_count, p->startlimit_interval, (double)(end - now) / 1e9);
    pbd_inst_set_state(d, in, PROCBUS_STATE_BACKOFF);
    arm(in, PBD_T_RETRY, end - now);
    return 1;
}

/* A program whose record the segment refused (full) is not started: nobody could see it. 1 if
 * so (logged once per attempt). */
static int refuse_unpublished(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (!in->unpublished)
        return 0;
    pbd_inst_publish(d, in); /* room may have been made meanwhile */
    if (!in->unpublished)
        return 0;
    pbd_say(d, PBD_L_ERR,
            "%s: not started: the segment has no room for its record (raise [procbusd] "
            "capacity and restart procbusd)",
            in->prog->name);
    in->want_start = 0;
    return 1;
}

/* The program is running (its exec succeeded) while STARTING: RUNNING at once with
 * startsecs = 0, else once startsecs have passed. */
static void on_exec_done(struct pbd_daemon *d, struct pbd_inst *in)
{
    pbd_say(d, PBD_L_DEBUG, "%s: pid %d exec'd", in->prog->name, (int)in->sp.pid);
    if (in->state != PROCBUS_STATE_STARTING)
        return; /* a stop came first: its exit decides */
    if (in->prog->startsecs == 0)
        pbd_inst_fire(d, in, PBD_EV_STARTSECS);
    else
        arm(in, PBD_T_STARTSECS, (uint64_t)in->prog->startsecs * PB_NS_PER_SEC);
}

/* The run ended before it was let exec (a failed setup, a stop at once): its go pipe goes. */
static void drop_go(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->sp.go_fd >= 0) {
        close(in->sp.go_fd);
        in->sp.go_fd = -1;
        d->go_pending--;
    }
}

/* Output of a previous run still held open by its leftovers: what it wrote before this new
 * run is read (bounded, as any drain), then its pipes are dropped. */
static void drop_old_output(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->sp.out_fd >= 0)
        pbd_inst_drain(d, in, PBD_STDOUT);
    if (in->sp.err_fd >= 0)
        pbd_inst_drain(d, in, PBD_STDERR);
    pbd_watch_close(d, &in->sp.out_fd);
    pbd_watch_close(d, &in->sp.err_fd);
    pbd_watch_close(d, &in->sp.ready_fd);
    if (in->lines != NULL) {
        pbd_lines_init(&in->lines[0]);
        pbd_lines_init(&in->lines[1]);
    }
}

void pbd_inst_spawn_now(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_spawn_opts opts = d->spawn_opts;
    char why[256] = "";
    int rc;

    opts.claim_fd = d->claim_fd;
    if (pbd_state_has_process(in->state))
        return; /* (defensive: a run is under way) */
    if (refuse_unpublished(d, in))
        return;
    start_limit_count(in);
    drop_old_output(d, in);
    if (in->ever_started)
        in->restarts++;
    in->ever_started = 1;
    in->start_real = pb_now_ns(CLOCK_REALTIME);
    in->start_boot = pb_now_ns(CLOCK_BOOTTIME);
    in->cpu_ns = in->rss = 0;
    in->exit_kind = PROCBUS_EXIT_NONE; /* the exit fields describe this run's end */
    in->exit_unknown = 0;
    in->exit_code = 0;
    in->core = 0;
    in->spawn_failed = 0;
    pbd_trace_spawning(d->trace, in->id); /* the tracer tags its tree with the program */
    opts.pub = d->pub; /* the child's check if procbusd dies before letting it exec */
    opts.id = in->id;
    rc = pbd_par_before_spawn(d, in, &opts, why, sizeof(why)); /* stdin: a pipe, fcgi's socket */
    if (rc == 0)
        rc = pbd_spawn_start(in->prog, &opts, &in->sp, why, sizeof(why));
    pbd_par_after_spawn(d, in, rc);
    pbd_trace_spawning(d->trace, 0);
    if (rc < 0) {
        const char *ename = strerrorname_np(-rc);
        in->sp.pid = 0;
        in->sp.pidfd = in->sp.status_fd = in->sp.out_fd = in->sp.err_fd = in->sp.ready_fd = -1;
        in->sp.go_fd = -1;
        pbd_say(d, PBD_L_ERR, "%s: spawn failed at %s (errno %d%s%s)", in->prog->name, why, -rc,
                ename ? ", " : "", ename ? ename : "");
        pbd_inst_set_state(d, in, PROCBUS_STATE_STARTING);
        pbd_inst_fire(d, in, PBD_EV_SPAWN_FAILED);
        return;
    }
    pbd_watch_add(d, in->sp.pidfd, &in->w_pid);
    pbd_watch_add(d, in->sp.status_fd, &in->w_exec);
    if (in->sp.out_fd >= 0)
        pbd_watch_add(d, in->sp.out_fd, &in->w_out);
    if (in->sp.err_fd >= 0)
        pbd_watch_add(d, in->sp.err_fd, &in->w_err);
    if (in->sp.ready_fd >= 0)
        pbd_watch_add(d, in->sp.ready_fd, &in->w_ready);
    in->prev_pid = in->last_pid;
    in->last_pid = in->sp.pid;
    {
        /* the kernel's start time (clock ticks), as a successor procbusd will compare it with
         * /proc to adopt this process: never a reused pid (adopt.c) */
        struct pbd_proc_stat st;
        if (pbd_proc_stat(in->sp.pid, &st) == 0)
            in->start_boot = st.start_boot_ns;
    }
    d->go_pending++;          /* it execs once this run is published (pbd_commit_staged) */
    pbd_inst_hold_put(d, in); /* its pipes outlive procbusd (holder.h) */
    pbd_trace_root(d->trace, in->sp.pid, in->start_boot, in->id);
    pbd_say(d, PBD_L_DEBUG, "%s: forked pid %d", in->prog->name, (int)in->sp.pid);
    pbd_inst_set_state(d, in, PROCBUS_STATE_STARTING); /* STARTING from the fork */
}

void pbd_inst_on_exec_status(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_spawn_error e;

    if (in->sp.status_fd < 0)
        return; /* settled earlier in this turn (its exit read it) */
    switch (pbd_spawn_exec_status(&in->sp, &e)) {
    case PBD_EXEC_PENDING:
        return;
    case PBD_EXEC_FAILED: /* acted on when the child (exiting now) is reaped: on_pidfd */
        pbd_watch_close(d, &in->sp.status_fd);
        in->spawn_failed = 1;
        in->spawn_err = e;
        return;
    case PBD_EXEC_DONE:
        pbd_watch_close(d, &in->sp.status_fd);
        on_exec_done(d, in);
        return;
    }
}

/* The child of a run that never exec'd is reaped: say at which step and why it failed, and
 * fire SPAWN_FAILED (STARTING -> BACKOFF or FATAL), or EXIT when a stop came first. */
static void on_spawn_failed(struct pbd_daemon *d, struct pbd_inst *in)
{
    const struct pbd_spawn_error *e = &in->spawn_err;
    const char *name = strerrorname_np(e->err);
    char why[256];

    snprintf(why, sizeof(why), "%s%s%s: %s", e->step, strcmp(e->step, "exec") == 0 ? " " : "",
             strcmp(e->step, "exec") == 0 ? in->prog->argv[0] : "", strerror(e->err));
    pbd_spawn_hint(why, sizeof(why), e->err); /* EMFILE, ENFILE: which limit to raise */
    pbd_say(d, PBD_L_ERR, "%s: spawn failed at %s (errno %d%s%s)", in->prog->name, why, e->err,
            name ? ", " : "", name ? name : "");
    drop_go(d, in);
    pbd_watch_close(d, &in->sp.pidfd);
    pbd_watch_close(d, &in->sp.out_fd);
    pbd_watch_close(d, &in->sp.err_fd);
    pbd_watch_close(d, &in->sp.ready_fd);
    pbd_trace_root_gone(d->trace, in->sp.pid);
    in->sp.pid = 0;
    in->last_pid = in->prev_pid; /* the record keeps the last run that did run */
    in->spawn_failed = 0;
    pbd_inst_fire(d, in, in->state == PROCBUS_STATE_STARTING ? PBD_EV_SPAWN_FAILED : PBD_EV_EXIT);
}

void pbd_inst_signal(struct pbd_inst *in, int sig, int group)
{
    if (in->sp.pid <= 0)
        return;
    if (in->adopted && in->sp.pidfd >= 0) { /* not our child: its pid could be reused */
        syscall(SYS_pidfd_send_signal, in->sp.pidfd, sig, NULL, 0);
        if (!group)
            return;
    }
    kill(group ? -in->sp.pid : in->sp.pid, sig);
    /* a child still setting up may not have its own group yet (setsid): reach it by pid
     * (its signals stay blocked until its dispositions are back to the defaults) */
    if (group && in->sp.status_fd >= 0)
        kill(in->sp.pid, sig);
}

/* Stopped: a reload that changed the program takes effect now. */
static void apply_next_prog(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->next_prog != NULL) {
        in->prog = in->next_prog;
        in->next_prog = NULL;
        pbd_inst_open_logs(d, in);
        pbd_inst_publish(d, in);
    }
}

void pbd_inst_stopped(struct pbd_daemon *d, struct pbd_inst *in)
{
    arm(in, PBD_T_NONE, 0);
    pbd_inst_set_state(d, in, PROCBUS_STATE_STOPPED);
    apply_next_prog(d, in);
}

void pbd_inst_fire(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_event ev)
{
    struct pbd_transition t = pbd_fsm(in->state, ev);
    const struct pbd_program *p = in->prog;

    pbd_say(d, PBD_L_DEBUG, "%s: %s in %s", p->name, pbd_event_name(ev),
            procbus_state_name(in->state));
    if (ev == PBD_EV_STOP)
        pbd_spawnq_remove(d, in); /* a run decided but not forked yet: not any more */
    switch ((enum pbd_action)t.action) {
    case PBD_A_IGNORE:
    case PBD_A_REFUSE:
        return;
    case PBD_A_SPAWN: /* forked by the loop's spawn phase (bounded per turn), after this
                       * turn's exits are published */
        arm(in, PBD_T_NONE, 0);
        pbd_spawnq_add(d, in);
        return;
    case PBD_A_RUNNING:
    case PBD_A_READY:
        in->failures = 0;
        arm(in, PBD_T_NONE, 0);
        pbd_inst_set_state(d, in, t.next);
        return;
    case PBD_A_START_FAILED:
        in->failures++;
        pbd_inst_set_state(d, in, PROCBUS_STATE_BACKOFF);
        if (in->failures > p->startretries) {
            pbd_say(d, PBD_L_WARN, "%s: gave up after %d failed starts", p->name, in->failures);
            arm(in, PBD_T_NONE, 0);
            in->want_start = 0;
            pbd_inst_set_state(d, in, PROCBUS_STATE_FATAL);
        } else {
            arm(in, PBD_T_RETRY,
                (uint64_t)pbd_backoff_delay(p->backoff == PBD_BACKOFF_EXPONENTIAL, in->failures,
                                            p->backoff_max) *
                    PB_NS_PER_SEC);
        }
        return;
    case PBD_A_EXITED:
        arm(in, PBD_T_NONE, 0);
        pbd_inst_set_state(d, in, PROCBUS_STATE_EXITED);
        if (!d->shutting_down && !in->removing &&
            (p->autorestart == PBD_RESTART_TRUE ||
             (p->autorestart == PBD_RESTART_UNEXPECTED && !pbd_inst_expected_exit(in))) &&
            !start_limit_hold(d, in))
            pbd_inst_fire(d, in, PBD_EV_START);
        return;
    case PBD_A_SIGNAL_STOP:
        pbd_inst_signal(in, p->stopsignal, p->stopasgroup);
        if (p->stopasgroup) /* the group as the tracer saw it: setsid()'d ones too */
            pbd_stop_tree_signal(d, in, p->stopsignal);
        arm(in, PBD_T_STOPWAIT, (uint64_t)p->stopwaitsecs * PB_NS_PER_SEC);
        pbd_inst_set_state(d, in, PROCBUS_STATE_STOPPING);
        return;
    case PBD_A_KILL:
        pbd_say(d, PBD_L_WARN, "%s: still running after stopwaitsecs=%d, sending SIGKILL", p->name,
                p->stopwaitsecs);
        pbd_inst_signal(in, SIGKILL, p->killasgroup);
        arm(in, PBD_T_NONE, 0);
        return;
    case PBD_A_STOPPED:
        /* nothing it started survives a stop: STOPPED only once its tree is empty */
        arm(in, PBD_T_NONE, 0);
        if (pbd_stop_tree_begin(d, in))
            pbd_inst_stopped(d, in);
        return;
    case PBD_A_CANCEL:
        arm(in, PBD_T_NONE, 0);
        pbd_inst_set_state(d, in, PROCBUS_STATE_STOPPED);
        apply_next_prog(d, in);
        return;
    }
}

/* The main process is gone: its status into the instance, EXIT fired. Its output is left to
 * the pipes' own events (after this turn's commit), except where a ready_log line still in
 * the pipe may change the outcome (READY before EXITED rather than a failed start). */
static void on_exit_status(struct pbd_daemon *d, struct pbd_inst *in, const siginfo_t *si)
{
    pid_t pid = in->sp.pid;

    if (si->si_code == CLD_EXITED) {
        in->exit_kind = PROCBUS_EXIT_CODE;
        in->exit_code = si->si_status;
        in->core = 0;
    } else {
        in->exit_kind = PROCBUS_EXIT_SIGNAL;
        in->exit_code = si->si_status;
        in->core = si->si_code == CLD_DUMPED;
    }
    drop_go(d, in);
    pbd_watch_close(d, &in->sp.pidfd);
    if (in->has_re && (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING)) {
        pbd_inst_drain(d, in, PBD_STDOUT);
        pbd_inst_drain(d, in, PBD_STDERR);
    }
    pbd_say(d, PBD_L_DEBUG, "%s: pid %d %s %d%s", in->prog->name, (int)pid,
            in->exit_kind == PROCBUS_EXIT_CODE ? "exited with" : "killed by", in->exit_code,
            in->core ? " (core dumped)" : "");
    /* one ordered stream: its children's forks and its own exit are read before it is gone */
    pbd_trace_glue_sync(d, 0);
    in->exit_real = pbd_trace_root_exit(d->trace, pid);
    pbd_trace_root_gone(d->trace, pid);
    in->sp.pid = 0;
    pbd_inst_fire(d, in, PBD_EV_EXIT); /* in STOPPING: PBD_A_STOPPED kills what is left */
    in->exit_real = 0;                 /* (consumed by the state it led to, if any) */
}

void pbd_inst_on_pidfd(struct pbd_daemon *d, struct pbd_inst *in)
{
    siginfo_t si;

    if (in->adopted) { /* not our child: nothing to reap; the tracer tells how it ended */
        pbd_adopted_exit(d, in);
        return;
    }
    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)in->sp.pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;                /* not exited yet (spurious), or reaped by the SIGCHLD path */
    if (in->sp.status_fd >= 0) /* dead: the pipe says at once whether it exec'd */
        pbd_inst_on_exec_status(d, in);
    pbd_watch_close(d, &in->sp.status_fd); /* (it always has by now) */
    if (in->spawn_failed)
        on_spawn_failed(d, in);
    else
        on_exit_status(d, in, &si);
}

void pbd_reap_orphans(struct pbd_daemon *d)
{
    for (;;) {
        siginfo_t si;
        struct pbd_inst *in;

        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        if (d->reexec.probe > 0 && si.si_pid == d->reexec.probe) {
            pbd_reexec_probe_done(d); /* reaped there (it may exec: nothing after it here) */
            if (d->reexec.probe > 0)
                return; /* (could not reap it: not exited after all) */
            continue;
        }
        in = pbd_inst_by_pid(d, si.si_pid);
        if (in != NULL) {
            pbd_inst_on_pidfd(d, in);
            if (in->sp.pid == si.si_pid) /* could not reap through the pidfd */
                return;
        } else {
            waitpid(si.si_pid, NULL, WNOHANG);
            pbd_trace_glue_sync(d, 0); /* its exit event, with the real status, first */
            pbd_trace_reaped(d->trace, si.si_pid, si.si_code, si.si_status);
            pbd_say(d, PBD_L_DEBUG, "reaped orphan %d", (int)si.si_pid);
        }
    }
}
