/* adopt.c - taking over from a procbusd that died: adopt what still runs, never start a copy. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "parity.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "pubcall.h"
#include "util.h"

/*
 * The predecessor's records are in the segment already (PROCBUS_PUB_INHERIT: its last snapshot
 * is the new epoch's first), with their ids, which the kernel's tracked set uses as tags. So a
 * program keeps its record id across procbusds, and adoption only decides, record by record,
 * what is true now. A process is the one a record names only if its pid AND its start time
 * (clock-tick resolution, /proc) match: a pid reused by another process is never adopted.
 * Since every run is published before it may exec (spawn.h, pbd_spawn_go), no program runs
 * that the records do not name, whenever the predecessor died.
 */

static uint64_t tick_ns(void)
{
    long t = sysconf(_SC_CLK_TCK);
    return PB_NS_PER_SEC / (uint64_t)(t > 0 ? t : 100);
}

/* A pidfd for `pid` if it still is the process that started at `start` (records carry the
 * kernel's start, from /proc or the tracer: equal within a clock tick); else -1. The pidfd is
 * opened first and the start checked after: it then refers to that very process. A process
 * exiting (or a zombie) counts: its pidfd becomes readable once its exit is complete, when the
 * tracer has its exit event for sure (pbd_adopted_exit); one already gone has it in the backlog
 * (pbd_adopt_finish). Deciding an exiting one's end at once could come before that event. */
static int open_same(pid_t pid, uint64_t start, pid_t *ppid, uint8_t *exiting)
{
    struct pbd_proc_stat st;
    uint64_t diff;
    int fd;

    if (pid <= 0 || start == 0)
        return -1;
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    if (pbd_proc_stat(pid, &st) < 0 || st.state == 'X') {
        close(fd);
        return -1;
    }
    diff = st.start_boot_ns > start ? st.start_boot_ns - start : start - st.start_boot_ns;
    if (diff >= tick_ns() + 1000000ull) {
        close(fd);
        return -1;
    }
    if (ppid != NULL)
        *ppid = st.ppid;
    if (exiting != NULL) /* (include/linux/sched.h's PF_EXITING) */
        *exiting = st.state == 'Z' || (st.flags & 0x4ul) != 0;
    return fd;
}

/* The record's command line is still the program's (what a successor knows of the settings
 * when the holder's digest is not there). */
static int same_cmdline(const struct procbus_proc *r, const struct pbd_program *p)
{
    char buf[PROCBUS_CMDLINE_LEN];
    size_t used = 0, n;
    int i;

    for (i = 0; p->argv != NULL && p->argv[i] != NULL && used < sizeof(buf); i++) {
        n = strlen(p->argv[i]) + 1;
        if (n > sizeof(buf) - used)
            n = sizeof(buf) - used;
        memcpy(buf + used, p->argv[i], n);
        used += n;
    }
    n = r->cmdline_len < used ? r->cmdline_len : used;
    if (r->flags & PROCBUS_F_CMDLINE_TRUNCATED) /* only a prefix was kept */
        return memcmp(buf, r->cmdline, n > 0 ? n - 1 : 0) == 0;
    return r->cmdline_len == used && memcmp(buf, r->cmdline, used) == 0;
}

/* A program the configuration no longer has, made up from its record to stop it as a reload
 * removing it would: stopsignal TERM to its group, stopwaitsecs 10, its logs if the holder
 * knew them. NULL when out of memory. */
struct pbd_program *pbd_adopt_made_up(const struct procbus_proc *r, const char *out_path,
                                      const char *err_path)
{
    struct pbd_program *p = calloc(1, sizeof(*p));
    size_t off = 0, n = 0, k = 0;

    if (p == NULL)
        return NULL;
    snprintf(p->name, sizeof(p->name), "%.*s", (int)sizeof(r->name) - 1, r->name);
    snprintf(p->group, sizeof(p->group), "%s", p->name);
    for (off = 0; off < r->cmdline_len; off += strnlen(r->cmdline + off, r->cmdline_len - off) + 1)
        n++;
    p->argv = calloc(n + 2, sizeof(*p->argv));
    if (p->argv == NULL)
        goto fail;
    for (off = 0; off < r->cmdline_len && k < n;
         off += strnlen(r->cmdline + off, r->cmdline_len - off) + 1)
        if ((p->argv[k++] = strndup(r->cmdline + off, r->cmdline_len - off)) == NULL)
            goto fail;
    if (k == 0 && (p->argv[k++] = strdup(r->comm[0] ? r->comm : p->name)) == NULL)
        goto fail;
    p->umask = (mode_t)-1;
    p->autorestart = PBD_RESTART_FALSE;
    p->exitcodes[0] = 0;
    p->n_exitcodes = 1;
    p->startsecs = 1;
    p->startretries = 3;
    p->stopsignal = SIGTERM;
    p->stopwaitsecs = 10;
    p->stopasgroup = p->killasgroup = 1;
    p->priority = 999;
    p->ready_fd = -1;
    p->out.maxbytes = p->err.maxbytes = 50ull << 20;
    p->out.backups = p->err.backups = 10;
    if (out_path != NULL && out_path[0] != '\0' && (p->out.path = strdup(out_path)) == NULL)
        goto fail;
    if (err_path != NULL && err_path[0] != '\0' && (p->err.path = strdup(err_path)) == NULL)
        goto fail;
    return p;
fail:
    pbd_program_clear(p);
    free(p);
    return NULL;
}

/* The pipes the holder kept for this name: watched as the instance's (a run's, or an earlier
 * run's that its leftovers still hold: drained until their end); its stdin's write end held
 * again while it runs (parity.h), a listener's to send it events. */
static void attach_pipes(struct pbd_daemon *d, struct pbd_inst *in, const int fds[PBD_HOLD_NFDS])
{
    in->sp.out_fd = fds[0];
    in->sp.err_fd = fds[1];
    in->sp.ready_fd = fds[2];
    if (fds[3] >= 0) {
        struct pbd_par_inst *x = pbd_state_has_process(in->state) ? pbd_par_inst_of(in) : NULL;
        if (x == NULL) {
            close(fds[3]);
        } else if (in->prog->kind == PBD_KIND_EVENTLISTENER) {
            pbd_evl_listener_started(d, in, fds[3]);
        } else {
            if (x->stdin_w >= 0)
                close(x->stdin_w);
            x->stdin_w = fds[3];
        }
    }
    if (in->sp.out_fd >= 0)
        pbd_watch_add(d, in->sp.out_fd, &in->w_out);
    if (in->sp.err_fd >= 0)
        pbd_watch_add(d, in->sp.err_fd, &in->w_err);
    if (in->sp.ready_fd >= 0)
        pbd_watch_add(d, in->sp.ready_fd, &in->w_ready);
}

/* Arm the instance's timer to fire at `deadline` (CLOCK_MONOTONIC), from a CLOCK_REALTIME
 * instant `since_real` + `after_ns` (at once if that has passed). */
static void arm_from(struct pbd_inst *in, enum pbd_timer t, uint64_t since_real, uint64_t after_ns)
{
    uint64_t now_real = pb_now_ns(CLOCK_REALTIME), now = pb_now_ns(CLOCK_MONOTONIC);
    uint64_t end = since_real + after_ns;

    in->timer = t;
    in->deadline = end > now_real ? now + (end - now_real) : now;
}

/* The record's process is alive (adopted) or gone (exit decided by pbd_adopt_finish). */
static void adopt_run(struct pbd_daemon *d, struct pbd_inst *in, const struct procbus_proc *r)
{
    int fd = open_same(r->pid, r->start_boot_ns, &in->adopt_ppid, &in->adopt_exiting);

    if (fd < 0) {
        in->adopt_dead = 1; /* (its state stays as recorded until then) */
        return;
    }
    in->sp.pid = r->pid;
    in->sp.pidfd = fd;
    in->adopted = 1;
    pbd_watch_add(d, fd, &in->w_pid);
    switch (in->state) {
    case PROCBUS_STATE_STARTING: /* startsecs count from its start */
        arm_from(in, PBD_T_STARTSECS, r->start_realtime_ns,
                 (uint64_t)in->prog->startsecs * PB_NS_PER_SEC);
        break;
    case PROCBUS_STATE_STOPPING: /* its stop goes on: SIGKILL after stopwaitsecs from now */
        arm_from(in, PBD_T_STOPWAIT, pb_now_ns(CLOCK_REALTIME),
                 (uint64_t)in->prog->stopwaitsecs * PB_NS_PER_SEC);
        break;
    default:
        break;
    }
}

/* A record with no process running: what the configuration wants next. */
static void adopt_idle(struct pbd_daemon *d, struct pbd_inst *in, const struct procbus_proc *r)
{
    (void)d;
    switch (in->state) {
    case PROCBUS_STATE_STOPPED: /* never ran: autostart; stopped by someone: stays stopped */
        in->want_start = r->pid == 0 && r->start_realtime_ns == 0 ? in->prog->autostart : 0;
        break;
    case PROCBUS_STATE_BACKOFF: /* retried a second after it went BACKOFF */
        in->failures = 1;
        arm_from(in, PBD_T_RETRY, r->state_since_ns, PB_NS_PER_SEC);
        break;
    case PROCBUS_STATE_EXITED: /* its restart may not have happened yet: the config says */
        if (in->prog->autorestart == PBD_RESTART_TRUE ||
            (in->prog->autorestart == PBD_RESTART_UNEXPECTED && !pbd_inst_expected_exit(in)))
            pbd_spawnq_add(d, in);
        break;
    case PROCBUS_STATE_FATAL:
        break;
    default: /* a state this build does not know: as if stopped */
        in->state = PROCBUS_STATE_STOPPED;
        break;
    }
}

/* Program instance `in`, configured or made up, takes over record `r`. */
static void take_over(struct pbd_daemon *d, struct pbd_inst *in, const struct procbus_proc *r,
                      const struct pbd_hold_entry *he, const int fds[PBD_HOLD_NFDS])
{
    in->state = r->state;
    in->since = r->state_since_ns;
    in->restarts = r->restarts;
    in->ever_started = r->pid != 0 || r->start_realtime_ns != 0;
    in->last_pid = r->pid;
    in->start_real = r->start_realtime_ns;
    in->start_boot = r->start_boot_ns;
    in->exit_kind = r->exit_kind;
    in->exit_code = r->exit_code;
    in->core = (r->flags & PROCBUS_F_CORE_DUMPED) != 0;
    in->exit_unknown = (r->flags & PROCBUS_F_EXIT_UNKNOWN) != 0;
    in->cpu_ns = r->cpu_ns;
    in->rss = r->rss_bytes;
    in->want_start = 0;
    if (pbd_state_has_process(in->state))
        adopt_run(d, in, r);
    else
        adopt_idle(d, in, r);
    attach_pipes(d, in, fds);
    (void)he; /* (its AUTO files were taken as the instance was made: pbd_daemon.auto_hint) */
    if (in->adopted && in->prog->kind == PBD_KIND_FCGI)
        pbd_fcgi_adopt(d, in, in->sp.pidfd); /* its socket, from its own fd 0 */
}

/* Records are claimed once each: the ones left are removed from the segment, or seed the
 * trace module (descendants, observed processes). */
static const struct procbus_proc *program_record(const struct procbus_pub_pred *pred,
                                                 const char *name, unsigned char *claimed)
{
    for (size_t i = 0; i < pred->nrecs; i++) {
        const struct procbus_proc *r = &pred->recs[i];
        if (!claimed[i] && !(r->flags & PROCBUS_F_DESCENDANT) && r->name[0] != '\0' &&
            strncmp(r->name, name, sizeof(r->name)) == 0) {
            claimed[i] = 1;
            return r;
        }
    }
    return NULL;
}

/* A configured program: adopt its record if it has one, else a fresh instance. */
static int adopt_configured(struct pbd_daemon *d, const struct pbd_program *p,
                            const struct procbus_pub_pred *pred, unsigned char *claimed)
{
    const struct procbus_proc *r = program_record(pred, p->name, claimed);
    struct pbd_hold_entry he;
    int fds[PBD_HOLD_NFDS], have = pbd_holder_claim(d, p->name, &he, fds);
    struct pbd_inst *in;

    d->auto_hint[0] = have && r != NULL ? he.out_path : NULL; /* its AUTO files, if any */
    d->auto_hint[1] = have && r != NULL ? he.err_path : NULL;
    in = pbd_inst_create(d, p, r != NULL ? r->id : 0);
    d->auto_hint[0] = d->auto_hint[1] = NULL;

    if (in == NULL) {
        for (int k = 0; k < PBD_HOLD_NFDS; k++)
            if (fds[k] >= 0)
                close(fds[k]);
        return -ENOMEM;
    }
    if (r == NULL) {
        attach_pipes(d, in, fds); /* (none: a program the predecessor did not have) */
        pbd_inst_publish(d, in);
        return 0;
    }
    take_over(d, in, r, have ? &he : NULL, fds);
    if (have ? he.digest != pbd_program_digest(p) : !same_cmdline(r, p)) {
        /* changed while no procbusd ran: restarted like a reload changing it */
        pbd_say(d, PBD_L_INFO, "%s: changed, restarting with the new settings", p->name);
        in->adopt_stop = pbd_inst_alive(in) || in->adopt_dead;
        in->want_start = p->autostart || pbd_state_has_process(in->state);
    } else if (in->adopted && p->kind == PBD_KIND_EVENTLISTENER) {
        /* where it was in supervisord's protocol (READY, an event half sent, a RESULT half
         * read) died with the predecessor, and with it the events queued for the pool: a
         * listener is started again to begin the protocol afresh */
        pbd_say(d, PBD_L_INFO,
                "%s: event listener: its protocol state died with procbusd; restarting it",
                p->name);
        in->adopt_stop = 1;
        in->want_start = 1;
    }
    pbd_inst_publish(d, in);
    if (in->adopted)
        pbd_say(d, PBD_L_INFO, "%s: adopted pid %d (%s)", p->name, (int)in->sp.pid,
                procbus_state_name(in->state));
    return 0;
}

/* A program record the configuration no longer has: stopped like a reload removing it when
 * its process still runs, else its record goes. */
static int adopt_removed(struct pbd_daemon *d, const struct procbus_proc *r)
{
    struct pbd_hold_entry he;
    int fds[PBD_HOLD_NFDS], have, pfd = open_same(r->pid, r->start_boot_ns, NULL, NULL);
    struct pbd_program *p;
    struct pbd_inst *in;

    have = pbd_holder_claim(d, r->name, &he, fds);
    if (pfd < 0 || !pbd_state_has_process(r->state)) {
        if (pfd >= 0)
            close(pfd);
        for (int k = 0; k < PBD_HOLD_NFDS; k++)
            if (fds[k] >= 0)
                close(fds[k]);
        if (have)
            pbd_holder_drop(&d->holder, r->name);
        pbd_pub_remove(d->pub, r->id);
        d->staged = 1;
        return 0;
    }
    close(pfd); /* adopt_run opens it again, checked */
    p = pbd_adopt_made_up(r, have ? he.out_path : NULL, have ? he.err_path : NULL);
    in = p != NULL ? pbd_inst_create(d, p, r->id) : NULL;
    if (in == NULL) {
        if (p != NULL) {
            pbd_program_clear(p);
            free(p);
        }
        for (int k = 0; k < PBD_HOLD_NFDS; k++)
            if (fds[k] >= 0)
                close(fds[k]);
        return -ENOMEM;
    }
    in->own_prog = p;
    take_over(d, in, r, have ? &he : NULL, fds);
    pbd_say(d, PBD_L_INFO, "%s: removed from the configuration while procbusd was down: stopping",
            p->name);
    in->removing = 1;
    in->adopt_stop = 1;
    pbd_inst_publish(d, in);
    return 0;
}

int pbd_adopt(struct pbd_daemon *d)
{
    struct procbus_pub_pred pred;
    unsigned char *claimed;
    size_t i;
    int rc = 0;

    procbus_pub_predecessor(d->pub, &pred);
    claimed = calloc(pred.nrecs + 1, 1);
    d->seeds = calloc(pred.nrecs + 1, sizeof(*d->seeds));
    if (claimed == NULL || d->seeds == NULL) {
        free(claimed);
        return -ENOMEM;
    }
    pbd_say(d, PBD_L_INFO,
            "taking over from procbusd pid %d, which died (epoch %llu): %zu record(s) to check",
            (int)pred.pid, (unsigned long long)pred.epoch, pred.nrecs);
    for (i = 0; i < d->cfg.n_progs && rc == 0; i++)
        rc = adopt_configured(d, &d->cfg.progs[i], &pred, claimed);
    for (i = 0; i < pred.nrecs && rc == 0; i++) {
        const struct procbus_proc *r = &pred.recs[i];
        if (claimed[i])
            continue;
        if (!(r->flags & PROCBUS_F_DESCENDANT) && r->name[0] != '\0')
            rc = adopt_removed(d, r);
        else
            d->seeds[d->n_seeds++] = *r; /* the trace module's (pbd_trace_opts.seeds) */
    }
    free(claimed);
    pbd_holder_unclaimed(d);
    procbus_pub_predecessor_release(d->pub);
    d->staged = 1;
    return rc;
}

/* The exit of a run procbusd did not reap (adopted, or gone before adoption): the tracer's
 * status when it read the exit event, else unknown. */
static void decide_exit(struct pbd_daemon *d, struct pbd_inst *in, pid_t pid)
{
    uint64_t when = 0;
    int code = 0, core = 0, kind = pbd_trace_root_status(d->trace, pid, &code, &core, &when);

    in->exit_kind = (uint8_t)kind;
    in->exit_code = kind != PROCBUS_EXIT_NONE ? code : 0;
    in->core = kind != PROCBUS_EXIT_NONE && core;
    in->exit_unknown = kind == PROCBUS_EXIT_NONE;
    in->exit_real = when;
    pbd_say(d, PBD_L_INFO, "%s: pid %d ended while %s: %s %d%s", in->prog->name, (int)pid,
            in->adopted ? "adopted" : "no procbusd ran",
            kind == PROCBUS_EXIT_CODE     ? "exit status"
            : kind == PROCBUS_EXIT_SIGNAL ? "signal"
                                          : "status unknown",
            in->exit_code, in->core ? " (core dumped)" : "");
}

void pbd_adopted_exit(struct pbd_daemon *d, struct pbd_inst *in)
{
    pid_t pid = in->sp.pid;

    pbd_watch_close(d, &in->sp.pidfd);
    if (in->has_re && (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING)) {
        pbd_inst_drain(d, in, PBD_STDOUT);
        pbd_inst_drain(d, in, PBD_STDERR);
    }
    pbd_trace_glue_sync(d, 0); /* its exit event (and its children's forks) first */
    decide_exit(d, in, pid);
    pbd_trace_root_gone(d->trace, pid);
    in->sp.pid = 0;
    in->adopted = 0;
    pbd_inst_fire(d, in, PBD_EV_EXIT);
    in->exit_real = 0;
}

void pbd_adopted_ended(struct pbd_daemon *d)
{
    /* (again while ending one read more exit events: each is published by the coming commit) */
    while (pbd_trace_take_root_exits(d->trace) > 0)
        for (size_t i = 0; i < d->n_inst; i++) {
            struct pbd_inst *in = d->inst[i];
            int code, core;
            uint64_t when;
            if (in->adopted && in->sp.pid > 0 &&
                pbd_trace_root_status(d->trace, in->sp.pid, &code, &core, &when) !=
                    PROCBUS_EXIT_NONE)
                pbd_adopted_exit(d, in); /* (its pidfd may not say so yet: a zombie's parent) */
        }
}

void pbd_adopt_finish(struct pbd_daemon *d)
{
    size_t i;

    for (i = 0; i < d->n_inst; i++) { /* main processes, alive or not, before any event */
        struct pbd_inst *in = d->inst[i];
        if (in->adopted) /* (an exiting one is not tracked again: its exit was reported) */
            pbd_trace_adopt_root(d->trace, in->sp.pid, in->start_boot, in->id, !in->adopt_exiting);
        else if (in->adopt_dead)
            pbd_trace_adopt_root(d->trace, in->last_pid, in->start_boot, in->id, 0);
    }
    /* the backlog (a pinned tracer's) and /proc: exits and forks while no procbusd ran */
    pbd_trace_adopting(d->trace);
    pbd_trace_glue_sync(d, 1);
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (!in->adopt_dead)
            continue;
        in->adopt_dead = 0;
        decide_exit(d, in, in->last_pid);
        pbd_trace_root_gone(d->trace, in->last_pid);
        pbd_inst_fire(d, in, PBD_EV_EXIT);
        in->exit_real = 0;
    }
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (!in->adopt_stop)
            continue;
        in->adopt_stop = 0;
        if (!in->removing)
            in->next_prog = in->prog; /* taken in (logs reopened) once stopped */
        if (pbd_inst_alive(in))
            pbd_inst_fire(d, in, PBD_EV_STOP);
    }
    free(d->seeds);
    d->seeds = NULL;
    d->n_seeds = 0;
}
