/* loop.c - procbusd's event loop: epoll dispatch, timers, heartbeat, signals, set-up, tear-down. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "daemon_int.h"
#include "parity.h"
#include "procbus_pub.h"
#include "pubcall.h"
#include "util.h"

#define PBD_EVENTS_PER_TURN 64

/* ---- helpers the other files share ---- */

void pbd_say(const struct pbd_daemon *d, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > d->log_level)
        return;
    va_start(ap, fmt);
    pbd_mainlog_vwrite(d, level, fmt, ap); /* [supervisord] logfile, when set */
    va_end(ap);
    va_start(ap, fmt);
    pbd_vdiag(level, fmt, ap);
    va_end(ap);
}

/* The kinds whose events are handled first each turn, and committed before anything else. */
static int is_urgent(const struct pbd_watch *w)
{
    return w->kind == PBD_W_PIDFD || w->kind == PBD_W_TRACE || w->kind == PBD_W_SIGNAL;
}

int pbd_watch_add(struct pbd_daemon *d, int fd, struct pbd_watch *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    return epoll_ctl(is_urgent(w) ? d->epfd_urgent : d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void pbd_watch_close(struct pbd_daemon *d, int *fd)
{
    if (*fd >= 0) {
        if (epoll_ctl(d->epfd, EPOLL_CTL_DEL, *fd, NULL) < 0 && d->epfd_urgent >= 0)
            epoll_ctl(d->epfd_urgent, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

int pbd_urgent_pending(const struct pbd_daemon *d)
{
    struct pollfd p = {.fd = d->epfd_urgent, .events = POLLIN};
    return d->epfd_urgent >= 0 && poll(&p, 1, 0) > 0;
}

/* Runs forked and now published: let them exec (spawn.h, pbd_spawn_go). */
static void release_spawned(struct pbd_daemon *d)
{
    size_t i;

    for (i = 0; i < d->n_inst && d->go_pending > 0; i++)
        if (d->inst[i]->sp.go_fd >= 0) {
            pbd_spawn_go(&d->inst[i]->sp);
            d->go_pending--;
        }
}

void pbd_commit_staged(struct pbd_daemon *d)
{
    uint32_t held;

    /* an adopted run's exit the tracer read: published in this commit, which hands its event's
     * ring space back (only this process knows it: a successor would find it gone unseen) */
    pbd_adopted_ended(d);
    if (d->staged && pbd_pub_commit(d->pub) == 0)
        d->staged = 0;
    if (d->staged)
        return;
    if (d->go_pending > 0)
        release_spawned(d);
    /* what the tracer's events made is published: its ring may take them back (a procbusd
     * killed before this point leaves them to the next one: one ordered stream, none lost),
     * except the exit events of main processes not yet reaped (read before the kernel lets
     * them be: their status is in this process only) */
    held = pbd_trace_ends_held(d->trace);
    if (pbd_trace_committed(d->trace))
        d->trace_unread = 1;
    pbd_trace_glue_hold(d);
    if (held > 0 && d->test_kill_held_end)
        raise(SIGKILL); /* test_exit_held: killed just where such a status could be lost */
}

/* ---- timers, signals ---- */

static void run_timers(struct pbd_daemon *d)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
    size_t i;

    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        enum pbd_timer t = in->timer;
        if (t == PBD_T_NONE || in->deadline > now)
            continue;
        in->timer = PBD_T_NONE;
        pbd_inst_fire(d, in,
                      t == PBD_T_STARTSECS ? PBD_EV_STARTSECS
                      : t == PBD_T_RETRY   ? PBD_EV_RETRY
                                           : PBD_EV_STOP_TIMEOUT);
    }
    if (now >= d->next_heartbeat) {
        pbd_segment_tick(d);
        procbus_pub_heartbeat(d->pub);
        d->next_heartbeat = now + (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull;
    }
}

static void arm_timerfd(struct pbd_daemon *d)
{
    uint64_t next = d->next_heartbeat < d->next_sample ? d->next_heartbeat : d->next_sample;
    uint64_t trace_next;
    struct itimerspec its;
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->timer != PBD_T_NONE && d->inst[i]->deadline < next)
            next = d->inst[i]->deadline;
    trace_next = pbd_trace_next_deadline(d->trace);
    if (trace_next < next)
        next = trace_next;
    if (pbd_ctl_next_deadline(&d->ctl) < next) /* control requests' deadlines */
        next = pbd_ctl_next_deadline(&d->ctl);
    trace_next = pbd_stop_tree_deadline(d);
    if (trace_next < next)
        next = trace_next;
    if (pbd_par_next_deadline(d) < next) /* TICK events */
        next = pbd_par_next_deadline(d);
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(next / PB_NS_PER_SEC);
    its.it_value.tv_nsec = (long)(next % PB_NS_PER_SEC);
    if (next == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_signal(struct pbd_daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if ((int)si.ssi_signo == PBD_SIG_REEXEC) { /* re-execute (the binary at procbusd's
                                                    * own path): reexec.c */
            d->reexec_signal = 1;
            continue;
        }
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
        case SIGQUIT: /* supervisord's too */
            if (!d->shutting_down) {
                pbd_say(d, PBD_L_INFO, "%s: stopping everything", strsignal((int)si.ssi_signo));
                pbd_par_stopping(d);
            }
            d->shutting_down = 1;
            break;
        case SIGUSR2:
            pbd_par_reopen_logs(d);
            break;
        case SIGHUP: /* after this turn's exits are published (pbd_daemon_run) */
            d->reload_pending = 1;
            break;
        case SIGCHLD: /* after this turn's exits are published: each waitid(P_ALL) walks
                       * all of procbusd's children (programs' main processes are reaped
                       * through their pidfds, without it) */
            d->reap_pending = 1;
            break;
        }
    }
}

/* ---- lifecycle ---- */

int pbd_loop_setup(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path)
{
    sigset_t mask;
    size_t i;
    int rc, tp[2];

    d->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    d->config_path = config_path;
    d->log_level = d->cfg.daemon.log_level;
    d->epfd = d->epfd_urgent = d->sigfd = d->timerfd = -1;
    d->holder.fd = d->tee_rd = d->tee_wr = -1;
    d->ctl.listen_fd = -1;
    d->claim_fd = -1;
    d->test_kill_held_end = getenv("PROCBUS_TEST_KILL_HELD_END") != NULL; /* read once */
    for (i = 0; i < PBD_CTL_MAX_CONN; i++)
        d->ctl.conns[i].fd = -1;
    d->reexec.slot = -1;
    if (d->cfg.daemon.heartbeat_ms <= 0)
        d->cfg.daemon.heartbeat_ms = 500;
    if (d->cfg.daemon.sample_ms <= 0)
        d->cfg.daemon.sample_ms = 1000;

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    /* supervisord's SIGUSR1 means nothing; here it must be ignored, not blocked: liburcu's
     * work-queue thread leaves it unblocked, and its default action would kill procbusd */
    signal(SIGUSR1, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGUSR2);        /* reopen the logs (supervisord's) */
    sigaddset(&mask, PBD_SIG_REEXEC); /* re-execute (reexec.c) */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    rc = pbd_sampler_init(&d->sampler);
    if (rc < 0)
        return rc;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->epfd_urgent = epoll_create1(EPOLL_CLOEXEC);
    d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->epfd < 0 || d->epfd_urgent < 0 || d->sigfd < 0 || d->timerfd < 0)
        return -errno;
    d->w_sig.kind = PBD_W_SIGNAL;
    d->w_timer.kind = PBD_W_TIMER;
    d->w_listen.kind = PBD_W_LISTEN;
    d->w_urgent.kind = PBD_W_URGENT;
    {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->w_urgent};
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->epfd_urgent, &ev) < 0)
            return -errno;
    }
    pbd_watch_add(d, d->sigfd, &d->w_sig);
    pbd_watch_add(d, d->timerfd, &d->w_timer);
    if (pipe2(tp, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    d->tee_rd = tp[0];
    d->tee_wr = tp[1];
    return 0;
}

int pbd_daemon_init(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub_pred pred;
    char claim[128];
    size_t i;
    int rc = pbd_loop_setup(d, cfg, config_path);

    if (rc < 0)
        return rc;
    o.segment = d->segment_override ? d->segment_override : d->cfg.daemon.segment;
    o.capacity = d->cfg.daemon.capacity;
    o.heartbeat_interval_ns = (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull;
    o.mode = d->cfg.daemon.segment_mode;
    o.set_group = d->cfg.daemon.segment_gid >= 0;
    o.group = o.set_group ? (uint32_t)d->cfg.daemon.segment_gid : 0;
    o.flags = PROCBUS_PUB_INHERIT; /* a crashed predecessor's records: adopt.c */
    /* claimed first: a second procbusd is refused before it touches the name, even while our
     * segment file is gone (removed behind us) and not yet put back (segment.c) */
    rc = pbd_claim_segment(o.segment, claim, sizeof(claim));
    if (rc == -EPERM) { /* squatted by another user: the lock alone must do */
        fprintf(stderr,
                "procbusd: warning: the claim %s of segment %s is held by another user (not a "
                "procbusd of root or of this user): going on without it\n",
                claim, o.segment ? o.segment : "(default)");
        rc = -1;
    } else if (rc < 0) {
        fprintf(stderr, "procbusd: cannot claim the segment %s (%s): %s%s\n",
                o.segment ? o.segment : "(default)", claim, strerror(-rc),
                rc == -EBUSY ? " (another procbusd owns it, even if its file is gone: that "
                               "procbusd puts it back at its next heartbeat)"
                             : "");
        return rc;
    }
    d->claim_fd = rc;
    rc = procbus_pub_open(&d->pub, &o);
    if (rc < 0) {
        fprintf(stderr, "procbusd: cannot create the segment %s: %s%s\n",
                o.segment ? o.segment : "(default)", strerror(-rc),
                rc == -EBUSY    ? " (another procbusd owns it)"
                : rc == -EEXIST ? " (something that is not a procbus segment is at the name: "
                                  "left alone)"
                : rc == -EPERM  ? " (another user's file is at the name, or its folder can be "
                                  "changed by other users: not used)"
                                : "");
        return rc;
    }
    rc = pbd_ctl_listen(&d->ctl, d->socket_override ? d->socket_override : d->cfg.daemon.socket);
    if (rc < 0) {
        fprintf(stderr, "procbusd: cannot listen on the control socket %s: %s\n", d->ctl.path,
                strerror(-rc));
        return rc;
    }
    pbd_watch_add(d, d->ctl.listen_fd, &d->w_listen);

    rc = pbd_par_init(d, 0); /* procbusd's log, pidfile, event pools: before the instances */
    if (rc < 0)
        return rc;
    procbus_pub_predecessor(d->pub, &pred);
    d->defer_logs = 1;      /* the programs are published first, their logs opened after */
    pbd_holder_start(d, 1); /* a predecessor's holder gives back the pipes it kept */
    d->adopting = pred.crashed && pred.nrecs > 0;
    if (d->adopting) { /* crash-only: adopt what still runs (adopt.c) */
        rc = pbd_adopt(d);
        if (rc < 0)
            return rc;
    } else {
        procbus_pub_predecessor_release(d->pub);
        pbd_holder_unclaimed(d);
        for (i = 0; i < d->cfg.n_progs; i++)
            if (pbd_inst_new(d, &d->cfg.progs[i]) == NULL)
                return -ENOMEM;
    }
    pbd_inst_sort(d);
    /* every program, STOPPED or as adopted (d->staged stays set: the commit below publishes
     * again) */
    pbd_pub_commit(d->pub);
    pbd_inst_open_deferred(d);
    /* loading the tracer takes a while: the programs are published (STOPPED) first, and
     * nothing is spawned before it is in place */
    rc = pbd_trace_glue_start(d);
    if (rc < 0)
        return rc;
    if (d->adopting)
        pbd_adopt_finish(d); /* exits while no procbusd ran, from the tracer's backlog */
    pbd_commit_staged(d);
    if (!d->cfg.daemon.nocleanup) /* AUTO logs of earlier runs, but those logged on into */
        pbd_autolog_cleanup(d);
    d->start_backlog = 1; /* the first turn runs the spawn phase without waiting */
    pbd_say(d, PBD_L_INFO, "supervising %zu program(s); segment %s; control socket %s", d->n_inst,
            procbus_pub_path(d->pub), d->ctl.path);
    return 0;
}

/* One ready descriptor: hand it to the part that owns it. */
static void dispatch(struct pbd_daemon *d, struct pbd_watch *w)
{
    switch (w->kind) {
    case PBD_W_SIGNAL:
        on_signal(d);
        break;
    case PBD_W_TIMER: {
        uint64_t ticks;
        if (read(d->timerfd, &ticks, sizeof(ticks)) < 0) {
            /* EAGAIN: re-armed meanwhile */
        }
        break;
    }
    case PBD_W_LISTEN:
        pbd_control_accept(d);
        break;
    case PBD_W_CONN:
        pbd_control_serve(d, w->slot);
        break;
    case PBD_W_PIDFD:
        pbd_inst_on_pidfd(d, w->inst);
        break;
    case PBD_W_OUT:
        pbd_inst_drain(d, w->inst, PBD_STDOUT);
        break;
    case PBD_W_ERR:
        pbd_inst_drain(d, w->inst, PBD_STDERR);
        break;
    case PBD_W_READY:
        pbd_inst_on_ready_fd(d, w->inst);
        break;
    case PBD_W_EXEC:
        pbd_inst_on_exec_status(d, w->inst);
        break;
    case PBD_W_TRACE:
        pbd_trace_glue_staged(d, pbd_trace_consume(d->trace));
        break;
    case PBD_W_URGENT: /* drained at the start of each turn (drain_urgent) */
        break;
    case PBD_W_PROBE:
        pbd_reexec_probe_done(d);
        break;
    case PBD_W_HOLDER:
        pbd_holder_lost(d);
        break;
    }
}

/* Handle every urgent event waiting (a bounded number of rounds: a storm of exits still
 * leaves room for the rest of the turn). */
static void drain_urgent(struct pbd_daemon *d)
{
    struct epoll_event evs[PBD_EVENTS_PER_TURN];
    int round, n, i;

    for (round = 0; round < 4; round++) {
        n = epoll_wait(d->epfd_urgent, evs, PBD_EVENTS_PER_TURN, 0);
        for (i = 0; i < n; i++)
            dispatch(d, evs[i].data.ptr);
        if (n < PBD_EVENTS_PER_TURN)
            return;
    }
}

/*
 * How long epoll_wait may sleep (ms; -1: until an event or the timer). Spawning goes on at
 * once (0). A sampling pass sleeps 1 ms between its slices: a process that sleeps keeps the
 * scheduler's favour on a busy machine (it is woken ahead of busy loops), which one that
 * never sleeps loses; so an exit during a pass is not held back by the CPU's other users.
 */
static int wait_ms(const struct pbd_daemon *d)
{
    if (d->spawnq_head != NULL || d->start_backlog || d->trace_unread)
        return 0;
    return d->sampling ? 1 : -1;
}

/*
 * One turn, in the order "publish first" (DESIGN.md: an exit is published before anything
 * that can wait):
 *   1. wait for events (not at all while spawning is under way, 1 ms between the slices
 *      of a sampling pass: wait_ms);
 *   2. every exit (pidfds), tracer event and signal waiting (they have an epoll set of their
 *      own, d->epfd_urgent, so none waits behind a batch of other events), then a commit:
 *      readers see them now;
 *   3. the rest of the batch (control requests, output, readiness, exec status, the timer),
 *      what the signals asked for (SIGCHLD: reaping orphans; SIGHUP: a reload) and the
 *      timers (state timeouts, heartbeat, the tracer's periodic work), a commit;
 *   4. work in bounded slices: the spawn phase (pbd_schedule: a few forks at most), a slice
 *      of the /proc sampling pass, dropping removed programs; a commit. A slice ends early
 *      when an urgent event is waiting (pbd_urgent_pending).
 * So a 5,000-program start is a few hundred short turns, between which everything else is
 * served, and an exit waits for at most one slice of step 4 (BENCHMARKS.md: procbusd).
 */
int pbd_daemon_run(struct pbd_daemon *d)
{
    struct epoll_event evs[PBD_EVENTS_PER_TURN];

    while (!d->done) {
        uint64_t now;
        int n, i;

        arm_timerfd(d);
        n = epoll_wait(d->epfd, evs, PBD_EVENTS_PER_TURN, wait_ms(d));
        if (n < 0 && errno != EINTR) {
            pbd_say(d, PBD_L_ERR, "epoll_wait: %s", strerror(errno));
            return 1;
        }
        if (d->trace_unread) { /* events that came while the last ones were committed */
            d->trace_unread = 0;
            pbd_trace_glue_staged(d, pbd_trace_consume(d->trace));
        }
        drain_urgent(d);
        pbd_commit_staged(d);
        for (i = 0; i < n; i++)
            dispatch(d, evs[i].data.ptr);
        if (d->reap_pending) {
            d->reap_pending = 0;
            pbd_reap_orphans(d);
        }
        if (d->reexec_signal) {
            d->reexec_signal = 0;
            pbd_say(d, PBD_L_INFO, "SIGRTMIN+1: re-executing %s", d->self_path);
            pbd_reexec_request(d, NULL, -1);
        }
        if (d->reload_pending) {
            char err[512];
            d->reload_pending = 0;
            pbd_say(d, PBD_L_INFO, "SIGHUP: reloading %s", d->config_path);
            pbd_reload(d, err, sizeof(err));
        }
        run_timers(d);
        pbd_control_expire(d);
        pbd_reexec_tick(d);
        now = pb_now_ns(CLOCK_MONOTONIC);
        pbd_trace_glue_tick(d);
        pbd_commit_staged(d);
        pbd_par_turn(d); /* event listeners: events sent, TICK events; fcgi sockets closed */
        pbd_schedule(d);
        pbd_sample_slice(d, now);
        pbd_inst_drop_removed(d);
        pbd_commit_staged(d);
    }
    pbd_say(d, PBD_L_INFO, "all programs stopped; exiting");
    d->clean_exit = 1;
    return 0;
}

/* Some program may still run (or wait to): a procbusd leaving without its shutdown then leaves
 * the segment as a crash would, for its successor to adopt them. */
static int programs_left(const struct pbd_daemon *d)
{
    size_t i;

    if (d->adopting)
        return 1;
    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->last_pid != 0 || pbd_inst_alive(d->inst[i]))
            return 1;
    return 0;
}

void pbd_daemon_free(struct pbd_daemon *d)
{
    int abandon = !d->clean_exit && programs_left(d);
    size_t i;

    pbd_trace_sync(d->trace, 1);
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        /* only after a shutdown (which stopped them all: a safety net); a procbusd that fails
         * leaves its programs to the next one, as a killed one does */
        if (d->clean_exit)
            pbd_trace_signal_tree(d->trace, in->id, SIGKILL);
        if (d->clean_exit && in->sp.pid > 0) {
            kill(-in->sp.pid, SIGKILL);
            kill(in->sp.pid, SIGKILL);
            waitpid(in->sp.pid, NULL, 0);
        }
        pbd_inst_free(d, in);
    }
    if (d->clean_exit)
        pbd_holder_quit(&d->holder); /* nothing is left to keep */
    else
        pbd_holder_close(&d->holder);
    pbd_holder_unclaimed(d);
    free(d->seeds);
    if (d->tee_rd >= 0)
        close(d->tee_rd);
    if (d->tee_wr >= 0)
        close(d->tee_wr);
    pbd_trace_glue_close(d);
    free(d->inst);
    free(d->roots);
    free(d->usage);
    free(d->root_owner);
    if (d->pub != NULL) /* readers see a clean shutdown; unless programs go on without us:
                         * then as a crash, for the next procbusd to adopt them */
        procbus_pub_close(d->pub, abandon ? PROCBUS_PUB_ABANDON : 0);
    pbd_ctl_close(&d->ctl);
    pbd_sampler_free(&d->sampler);
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->epfd_urgent >= 0)
        close(d->epfd_urgent);
    if (d->sigfd >= 0)
        close(d->sigfd);
    if (d->timerfd >= 0)
        close(d->timerfd);
    pbd_par_free(d);
    pbd_config_free(&d->cfg);
    for (i = 0; i < d->n_old; i++)
        pbd_config_free(&d->old_cfgs[i]);
    free(d->old_cfgs);
}
