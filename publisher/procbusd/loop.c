/* loop.c - procbusd's event loop: epoll dispatch, timers, heartbeat, signals, set-up, tear-down. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "procbus_pub.h"
#include "pubcall.h"
#include "util.h"

/* ---- helpers the other files share ---- */

void pbd_say(const struct pbd_daemon *d, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > d->log_level)
        return;
    va_start(ap, fmt);
    pbd_vdiag(level, fmt, ap);
    va_end(ap);
}

int pbd_watch_add(struct pbd_daemon *d, int fd, struct pbd_watch *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void pbd_watch_close(struct pbd_daemon *d, int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

void pbd_commit_staged(struct pbd_daemon *d)
{
    if (d->staged && pbd_pub_commit(d->pub) == 0)
        d->staged = 0;
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
    if (now >= d->next_sample) { /* (with no program too: the deadline must move on) */
        pbd_sample_programs(d);
        d->next_sample = now + (uint64_t)d->cfg.daemon.sample_ms * 1000000ull;
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
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!d->shutting_down)
                pbd_say(d, PBD_L_INFO, "%s: stopping everything", strsignal((int)si.ssi_signo));
            d->shutting_down = 1;
            break;
        case SIGHUP: {
            char err[512];
            pbd_say(d, PBD_L_INFO, "SIGHUP: reloading %s", d->config_path);
            pbd_reload(d, err, sizeof(err));
            break;
        }
        case SIGCHLD:
            pbd_reap_orphans(d);
            break;
        }
    }
}

/* ---- lifecycle ---- */

int pbd_daemon_init(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path)
{
    struct procbus_pub_opts o = {0};
    sigset_t mask;
    size_t i;
    int rc;

    d->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    d->config_path = config_path;
    d->log_level = d->cfg.daemon.log_level;
    d->epfd = d->sigfd = d->timerfd = -1;
    d->ctl.listen_fd = -1;
    for (i = 0; i < PBD_CTL_MAX_CONN; i++)
        d->ctl.conns[i].fd = -1;
    if (d->cfg.daemon.heartbeat_ms <= 0)
        d->cfg.daemon.heartbeat_ms = 500;
    if (d->cfg.daemon.sample_ms <= 0)
        d->cfg.daemon.sample_ms = 1000;

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    o.segment = d->segment_override ? d->segment_override : d->cfg.daemon.segment;
    o.capacity = d->cfg.daemon.capacity;
    o.heartbeat_interval_ns = (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull;
    o.mode = d->cfg.daemon.segment_mode;
    o.set_group = d->cfg.daemon.segment_gid >= 0;
    o.group = o.set_group ? (uint32_t)d->cfg.daemon.segment_gid : 0;
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
    rc = pbd_sampler_init(&d->sampler);
    if (rc < 0)
        return rc;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->epfd < 0 || d->sigfd < 0 || d->timerfd < 0)
        return -errno;
    d->w_sig.kind = PBD_W_SIGNAL;
    d->w_timer.kind = PBD_W_TIMER;
    d->w_listen.kind = PBD_W_LISTEN;
    pbd_watch_add(d, d->sigfd, &d->w_sig);
    pbd_watch_add(d, d->timerfd, &d->w_timer);
    pbd_watch_add(d, d->ctl.listen_fd, &d->w_listen);

    for (i = 0; i < d->cfg.n_progs; i++)
        if (pbd_inst_new(d, &d->cfg.progs[i]) == NULL)
            return -ENOMEM;
    pbd_inst_sort(d);
    /* every program, STOPPED (d->staged stays set: the commit below publishes again) */
    pbd_pub_commit(d->pub);
    /* loading the tracer takes a while: the programs are published (STOPPED) first, and
     * nothing is spawned before it is in place */
    rc = pbd_trace_glue_start(d);
    if (rc < 0)
        return rc;
    pbd_commit_staged(d);
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
    case PBD_W_TRACE:
        pbd_trace_glue_staged(d, pbd_trace_consume(d->trace));
        break;
    }
}

int pbd_daemon_run(struct pbd_daemon *d)
{
    struct epoll_event evs[64];

    while (!d->done) {
        int n, i;

        pbd_schedule(d);
        pbd_inst_drop_removed(d);
        pbd_commit_staged(d);
        if (d->done)
            break;
        arm_timerfd(d);
        n = epoll_wait(d->epfd, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            pbd_say(d, PBD_L_ERR, "epoll_wait: %s", strerror(errno));
            return 1;
        }
        for (i = 0; i < n; i++)
            dispatch(d, evs[i].data.ptr);
        run_timers(d);
        pbd_control_expire(d);
        if (d->trace != NULL)
            pbd_trace_glue_staged(d,
                                  pbd_trace_tick(d->trace, pb_now_ns(CLOCK_MONOTONIC),
                                                 (uint64_t)d->cfg.daemon.sample_ms * 1000000ull));
    }
    pbd_say(d, PBD_L_INFO, "all programs stopped; exiting");
    return 0;
}

void pbd_daemon_free(struct pbd_daemon *d)
{
    size_t i;

    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        pbd_trace_signal_tree(d->trace, in->id, SIGKILL);
        if (in->sp.pid > 0) {
            kill(-in->sp.pid, SIGKILL);
            kill(in->sp.pid, SIGKILL);
            waitpid(in->sp.pid, NULL, 0);
        }
        pbd_inst_free(d, in);
    }
    pbd_trace_close(d->trace);
    free(d->inst);
    free(d->roots);
    free(d->usage);
    free(d->root_owner);
    if (d->pub != NULL)
        procbus_pub_close(d->pub, 0); /* readers see a clean shutdown */
    pbd_ctl_close(&d->ctl);
    pbd_sampler_free(&d->sampler);
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->sigfd >= 0)
        close(d->sigfd);
    if (d->timerfd >= 0)
        close(d->timerfd);
    pbd_config_free(&d->cfg);
    for (i = 0; i < d->n_old; i++)
        pbd_config_free(&d->old_cfgs[i]);
    free(d->old_cfgs);
}
