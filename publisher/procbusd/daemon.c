/* daemon.c - procbusd's event loop: supervision of program instances, published as they change. */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "fsm.h"
#include "procbus_pub.h"

#define NS 1000000000ull

/* ---- small helpers ---- */

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void logmsg(const struct pbd_daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logmsg(const struct pbd_daemon *d, int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    va_list ap;

    if (level > d->log_level)
        return;
    fprintf(stderr, "procbusd: %s: ", names[level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define LOG_ERR   0
#define LOG_WARN  1
#define LOG_INFO  2
#define LOG_DEBUG 3

static int watch_add(struct pbd_daemon *d, int fd, struct pbd_watch *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void close_watched(struct pbd_daemon *d, int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

/* ---- publishing ---- */

static void fill_cmdline(struct procbus_proc *rec, char *const *argv)
{
    size_t used = 0;
    int i;

    for (i = 0; argv != NULL && argv[i] != NULL; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (used + n > PROCBUS_CMDLINE_LEN) {
            size_t room = PROCBUS_CMDLINE_LEN - used;
            if (room > 0) {
                memcpy(rec->cmdline + used, argv[i], room - 1);
                rec->cmdline[used + room - 1] = '\0';
                used += room;
            }
            rec->flags |= PROCBUS_F_CMDLINE_TRUNCATED;
            break;
        }
        memcpy(rec->cmdline + used, argv[i], n);
        used += n;
    }
    rec->cmdline_len = (uint32_t)used;
}

static void publish(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct procbus_proc rec;
    const char *base;
    int rc;

    memset(&rec, 0, sizeof(rec));
    rec.id = in->id;
    rec.pid = in->last_pid; /* after an exit: the pid it had (the state says it is gone) */
    rec.ppid = in->last_pid ? (int32_t)getpid() : 0;
    rec.pgid = in->last_pid;
    rec.state = in->state;
    rec.exit_kind = in->exit_kind;
    rec.exit_code = in->exit_code;
    rec.flags = in->core ? PROCBUS_F_CORE_DUMPED : 0;
    rec.start_realtime_ns = in->start_real;
    rec.start_boot_ns = in->start_boot;
    rec.state_since_ns = in->since;
    rec.restarts = in->restarts;
    rec.cpu_ns = in->cpu_ns;
    rec.rss_bytes = in->rss;
    snprintf(rec.name, sizeof(rec.name), "%s", in->prog->name);
    base = strrchr(in->prog->argv[0], '/');
    snprintf(rec.comm, sizeof(rec.comm), "%s", base ? base + 1 : in->prog->argv[0]);
    fill_cmdline(&rec, in->prog->argv);
    rc = procbus_pub_upsert(d->pub, &rec);
    if (rc < 0)
        logmsg(d, LOG_ERR, "%s: cannot publish: %s", in->prog->name, strerror(-rc));
    d->staged = 1;
}

static void set_state(struct pbd_daemon *d, struct pbd_inst *in, uint16_t s)
{
    if (in->state == s)
        return;
    logmsg(d, LOG_INFO, "%s: %s -> %s", in->prog->name, pbd_state_name(in->state),
           pbd_state_name(s));
    in->state = s;
    in->since = now_ns(CLOCK_REALTIME);
    publish(d, in);
}

static void arm(struct pbd_inst *in, enum pbd_timer t, uint64_t after_ns)
{
    in->timer = t;
    in->deadline = t == PBD_T_NONE ? 0 : now_ns(CLOCK_MONOTONIC) + after_ns;
}

/* ---- output, readiness ---- */

static struct pbd_lines *lines_of(struct pbd_inst *in, int i)
{
    return in->lines != NULL ? &in->lines[i] : NULL;
}

static void fire(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_event ev);

static void on_line(void *arg, const char *line, size_t len)
{
    void **pair = arg;
    struct pbd_daemon *d = pair[0];
    struct pbd_inst *in = pair[1];
    (void)len;

    if (in->has_re && regexec(&in->ready_re, line, 0, NULL, 0) == 0 &&
        (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING)) {
        logmsg(d, LOG_DEBUG, "%s: ready_log matched: %s", in->prog->name, line);
        fire(d, in, PBD_EV_READY);
    }
}

/* Drain one output pipe (bounded per call so one chatty program cannot starve the loop). */
static void drain(struct pbd_daemon *d, struct pbd_inst *in, int *fd, struct pbd_log *log,
                  struct pbd_lines *lines)
{
    static char buf[65536];
    void *pair[2] = {d, in};
    int rounds;

    for (rounds = 0; rounds < 16 && *fd >= 0; rounds++) {
        ssize_t n = read(*fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (in->has_re)
                pbd_lines_flush(lines, on_line, pair);
            close_watched(d, fd);
            return;
        }
        if (log != NULL) {
            int lost = pbd_log_write(log, buf, (size_t)n), rot = pbd_log_take_error(log);
            if (lost < 0 || rot < 0)
                logmsg(d, LOG_WARN, "%s: log %s: %s%s", in->prog->name, pbd_log_path(log),
                       lost < 0 ? "output lost: " : "rotation failed: ",
                       strerror(lost < 0 ? -lost : -rot));
        }
        if (in->has_re)
            pbd_lines_feed(lines, buf, (size_t)n, on_line, pair);
    }
}

static void on_ready_fd(struct pbd_daemon *d, struct pbd_inst *in)
{
    char buf[256];
    ssize_t n;

    while ((n = read(in->sp.ready_fd, buf, sizeof(buf))) > 0) {
        if (memchr(buf, '\n', (size_t)n) != NULL &&
            (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING))
            fire(d, in, PBD_EV_READY);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        close_watched(d, &in->sp.ready_fd);
}

/* ---- actions ---- */

static int expected_exit(const struct pbd_inst *in)
{
    int i;

    if (in->exit_kind != PROCBUS_EXIT_CODE)
        return 0;
    for (i = 0; i < in->prog->n_exitcodes; i++)
        if (in->prog->exitcodes[i] == in->exit_code)
            return 1;
    return 0;
}

static void open_logs(struct pbd_daemon *d, struct pbd_inst *in)
{
    const struct pbd_program *p = in->prog;
    int rc;

    pbd_log_close(in->out_log);
    pbd_log_close(in->err_log);
    in->out_log = in->err_log = NULL;
    if (in->has_re)
        regfree(&in->ready_re);
    in->has_re = 0;
    if (p->out.path != NULL &&
        (rc = pbd_log_open(&in->out_log, p->out.path, p->out.maxbytes, p->out.backups)) < 0)
        logmsg(d, LOG_ERR, "%s: stdout log %s: %s", p->name, p->out.path, strerror(-rc));
    if (p->err.path != NULL && !p->redirect_stderr &&
        (rc = pbd_log_open(&in->err_log, p->err.path, p->err.maxbytes, p->err.backups)) < 0)
        logmsg(d, LOG_ERR, "%s: stderr log %s: %s", p->name, p->err.path, strerror(-rc));
    if (p->ready_log != NULL) {
        if (in->lines == NULL) /* 8 KiB, only for programs that match their output */
            in->lines = calloc(2, sizeof(*in->lines));
        in->has_re = in->lines != NULL &&
                     regcomp(&in->ready_re, p->ready_log, REG_EXTENDED | REG_NOSUB) == 0;
    }
}

static void do_spawn(struct pbd_daemon *d, struct pbd_inst *in)
{
    char why[256] = "";
    int rc;

    /* fork+exec may take a while: what already happened (an EXITED before its
     * restart, say) is published first, not held back behind the new child */
    if (d->staged) {
        procbus_pub_commit(d->pub);
        d->staged = 0;
    }

    /* output of a previous run still held open by its leftovers is dropped */
    close_watched(d, &in->sp.out_fd);
    close_watched(d, &in->sp.err_fd);
    close_watched(d, &in->sp.ready_fd);
    if (in->lines != NULL) {
        pbd_lines_init(&in->lines[0]);
        pbd_lines_init(&in->lines[1]);
    }
    if (in->ever_started)
        in->restarts++;
    in->ever_started = 1;
    in->start_real = now_ns(CLOCK_REALTIME);
    in->start_boot = now_ns(CLOCK_BOOTTIME);
    in->cpu_ns = in->rss = 0;
    in->exit_kind = PROCBUS_EXIT_NONE; /* the exit fields describe this run's end */
    in->exit_code = 0;
    in->core = 0;
    rc = pbd_spawn(in->prog, &in->sp, why, sizeof(why));
    if (rc < 0) {
        in->sp.pid = 0;
        in->sp.pidfd = in->sp.out_fd = in->sp.err_fd = in->sp.ready_fd = -1;
        logmsg(d, LOG_ERR, "%s: spawn failed: %s", in->prog->name, why);
        set_state(d, in, PROCBUS_STATE_STARTING);
        fire(d, in, PBD_EV_SPAWN_FAILED);
        return;
    }
    watch_add(d, in->sp.pidfd, &in->w_pid);
    if (in->sp.out_fd >= 0)
        watch_add(d, in->sp.out_fd, &in->w_out);
    if (in->sp.err_fd >= 0)
        watch_add(d, in->sp.err_fd, &in->w_err);
    if (in->sp.ready_fd >= 0)
        watch_add(d, in->sp.ready_fd, &in->w_ready);
    in->last_pid = in->sp.pid;
    pbd_trace_root(d->trace, in->sp.pid, in->start_boot, in->id);
    logmsg(d, LOG_DEBUG, "%s: spawned pid %d", in->prog->name, (int)in->sp.pid);
    set_state(d, in, PROCBUS_STATE_STARTING);
    if (in->prog->startsecs == 0) {
        fire(d, in, PBD_EV_STARTSECS);
    } else {
        arm(in, PBD_T_STARTSECS, (uint64_t)in->prog->startsecs * NS);
    }
}

static void signal_inst(struct pbd_inst *in, int sig, int group)
{
    if (in->sp.pid > 0)
        kill(group ? -in->sp.pid : in->sp.pid, sig);
}

static void apply_next_prog(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->next_prog != NULL) {
        in->prog = in->next_prog;
        in->next_prog = NULL;
        open_logs(d, in);
        publish(d, in);
    }
}

static void fire(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_event ev)
{
    struct pbd_transition t = pbd_fsm(in->state, ev);
    const struct pbd_program *p = in->prog;

    logmsg(d, LOG_DEBUG, "%s: %s in %s", p->name, pbd_event_name(ev), pbd_state_name(in->state));
    switch ((enum pbd_action)t.action) {
    case PBD_A_IGNORE:
    case PBD_A_REFUSE:
        return;
    case PBD_A_SPAWN:
        arm(in, PBD_T_NONE, 0);
        do_spawn(d, in);
        return;
    case PBD_A_RUNNING:
    case PBD_A_READY:
        in->failures = 0;
        arm(in, PBD_T_NONE, 0);
        set_state(d, in, t.next);
        return;
    case PBD_A_START_FAILED:
        in->failures++;
        set_state(d, in, PROCBUS_STATE_BACKOFF);
        if (in->failures > p->startretries) {
            logmsg(d, LOG_WARN, "%s: gave up after %d failed starts", p->name, in->failures);
            arm(in, PBD_T_NONE, 0);
            in->want_start = 0;
            set_state(d, in, PROCBUS_STATE_FATAL);
        } else {
            arm(in, PBD_T_RETRY,
                (uint64_t)pbd_backoff_delay(p->backoff == PBD_BACKOFF_EXPONENTIAL, in->failures,
                                            p->backoff_max) *
                    NS);
        }
        return;
    case PBD_A_EXITED:
        arm(in, PBD_T_NONE, 0);
        set_state(d, in, PROCBUS_STATE_EXITED);
        if (!d->shutting_down && !in->removing &&
            (p->autorestart == PBD_RESTART_TRUE ||
             (p->autorestart == PBD_RESTART_UNEXPECTED && !expected_exit(in))))
            fire(d, in, PBD_EV_START);
        return;
    case PBD_A_SIGNAL_STOP:
        signal_inst(in, p->stopsignal, p->stopasgroup);
        if (p->stopasgroup) /* the group as the tracer saw it: setsid()'d ones too */
            pbd_trace_signal_tree(d->trace, in->id, p->stopsignal);
        arm(in, PBD_T_STOPWAIT, (uint64_t)p->stopwaitsecs * NS);
        set_state(d, in, PROCBUS_STATE_STOPPING);
        return;
    case PBD_A_KILL:
        logmsg(d, LOG_WARN, "%s: still running after stopwaitsecs=%d, sending SIGKILL", p->name,
               p->stopwaitsecs);
        signal_inst(in, SIGKILL, p->killasgroup);
        arm(in, PBD_T_NONE, 0);
        return;
    case PBD_A_STOPPED:
        arm(in, PBD_T_NONE, 0);
        set_state(d, in, PROCBUS_STATE_STOPPED);
        apply_next_prog(d, in);
        return;
    case PBD_A_CANCEL:
        arm(in, PBD_T_NONE, 0);
        set_state(d, in, PROCBUS_STATE_STOPPED);
        apply_next_prog(d, in);
        return;
    }
}

/* The main process is gone: reap it (status into the instance) and fire EXIT. */
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
    close_watched(d, &in->sp.pidfd);
    drain(d, in, &in->sp.out_fd, in->out_log, lines_of(in, 0));
    drain(d, in, &in->sp.err_fd, in->err_log, lines_of(in, 1));
    logmsg(d, LOG_DEBUG, "%s: pid %d %s %d%s", in->prog->name, (int)pid,
           in->exit_kind == PROCBUS_EXIT_CODE ? "exited with" : "killed by", in->exit_code,
           in->core ? " (core dumped)" : "");
    pbd_trace_root_gone(d->trace, pid);
    if (in->state == PROCBUS_STATE_STOPPING) {
        /* nothing it started survives a stop: its process group, and every process of its
         * tree the tracer (or /proc polling) saw, including ones that left the group */
        kill(-pid, SIGKILL);
        pbd_trace_signal_tree(d->trace, in->id, SIGKILL);
    }
    in->sp.pid = 0;
    fire(d, in, PBD_EV_EXIT);
}

static void on_pidfd(struct pbd_daemon *d, struct pbd_inst *in)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)in->sp.pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return; /* not exited yet (spurious), or reaped by the SIGCHLD path */
    on_exit_status(d, in, &si);
}

static struct pbd_inst *inst_by_pid(struct pbd_daemon *d, pid_t pid)
{
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->sp.pid == pid)
            return d->inst[i];
    return NULL;
}

/* SIGCHLD: reap orphans reparented to us (we are a child subreaper); programs go via pidfds. */
static void reap_orphans(struct pbd_daemon *d)
{
    for (;;) {
        siginfo_t si;
        struct pbd_inst *in;

        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        in = inst_by_pid(d, si.si_pid);
        if (in != NULL) {
            on_pidfd(d, in);
            if (in->sp.pid == si.si_pid) /* could not reap through the pidfd */
                return;
        } else {
            waitpid(si.si_pid, NULL, WNOHANG);
            pbd_trace_reaped(d->trace, si.si_pid, si.si_code, si.si_status);
            logmsg(d, LOG_DEBUG, "reaped orphan %d", (int)si.si_pid);
        }
    }
}

/* ---- dependencies and ordering ---- */

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
        return s == PROCBUS_STATE_EXITED && expected_exit(dep);
    }
    return 0;
}

static int deps_ready(struct pbd_daemon *d, const struct pbd_inst *in)
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

static int is_alive(const struct pbd_inst *in)
{
    return pbd_state_has_process(in->state) || in->state == PROCBUS_STATE_BACKOFF;
}

/* 1 if some live instance depends on `in` (it must be stopped first). */
static int has_live_dependents(struct pbd_daemon *d, const struct pbd_inst *in)
{
    size_t i;
    int k;

    for (i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *o = d->inst[i];
        if (o == in || !is_alive(o))
            continue;
        for (k = 0; k < o->prog->n_deps; k++)
            if (name_matches(in, o->prog->deps[k].name))
                return 1;
    }
    return 0;
}

static void schedule(struct pbd_daemon *d)
{
    size_t i;

    if (d->shutting_down) {
        int maxprio = INT_MIN, any = 0;
        for (i = 0; i < d->n_inst; i++) {
            struct pbd_inst *in = d->inst[i];
            if (is_alive(in) && !has_live_dependents(d, in) && in->prog->priority > maxprio)
                maxprio = in->prog->priority;
        }
        for (i = 0; i < d->n_inst; i++) {
            struct pbd_inst *in = d->inst[i];
            if (!is_alive(in))
                continue;
            any = 1;
            if (in->state != PROCBUS_STATE_STOPPING && !has_live_dependents(d, in) &&
                in->prog->priority == maxprio)
                fire(d, in, PBD_EV_STOP);
        }
        if (!any) {
            for (i = 0; i < d->n_inst; i++) /* leftovers of programs that exited by themselves */
                pbd_trace_signal_tree(d->trace, d->inst[i]->id, SIGKILL);
            d->done = 1;
        }
        return;
    }
    for (i = 0; i < d->n_inst; i++) { /* d->inst is in priority order */
        struct pbd_inst *in = d->inst[i];
        if (in->want_start && !is_alive(in) && in->next_prog == NULL && deps_ready(d, in)) {
            in->want_start = 0;
            in->failures = 0;
            fire(d, in, PBD_EV_START);
        }
    }
}

/* ---- instances ---- */

static int cmp_inst(const void *a, const void *b)
{
    const struct pbd_inst *x = *(struct pbd_inst *const *)a, *y = *(struct pbd_inst *const *)b;
    if (x->prog->priority != y->prog->priority)
        return x->prog->priority < y->prog->priority ? -1 : 1;
    return strcmp(x->prog->name, y->prog->name);
}

static struct pbd_inst *inst_new(struct pbd_daemon *d, const struct pbd_program *p)
{
    struct pbd_inst *in = calloc(1, sizeof(*in)), **grown;

    if (in == NULL)
        return NULL;
    grown = realloc(d->inst, (d->n_inst + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(in);
        return NULL;
    }
    d->inst = grown;
    in->prog = p;
    in->id = procbus_pub_new_id(d->pub);
    in->state = PROCBUS_STATE_STOPPED;
    in->since = now_ns(CLOCK_REALTIME);
    in->sp.pidfd = in->sp.out_fd = in->sp.err_fd = in->sp.ready_fd = -1;
    in->w_pid = (struct pbd_watch){.kind = PBD_W_PIDFD, .inst = in};
    in->w_out = (struct pbd_watch){.kind = PBD_W_OUT, .inst = in};
    in->w_err = (struct pbd_watch){.kind = PBD_W_ERR, .inst = in};
    in->w_ready = (struct pbd_watch){.kind = PBD_W_READY, .inst = in};
    in->want_start = p->autostart;
    open_logs(d, in);
    d->inst[d->n_inst++] = in;
    publish(d, in);
    return in;
}

static void inst_free(struct pbd_daemon *d, struct pbd_inst *in)
{
    close_watched(d, &in->sp.pidfd);
    close_watched(d, &in->sp.out_fd);
    close_watched(d, &in->sp.err_fd);
    close_watched(d, &in->sp.ready_fd);
    pbd_log_close(in->out_log);
    pbd_log_close(in->err_log);
    if (in->has_re)
        regfree(&in->ready_re);
    free(in->lines);
    free(in);
}

/* Drop instances a reload removed, once they are stopped. */
static void drop_removed(struct pbd_daemon *d)
{
    size_t i = 0;

    while (i < d->n_inst) {
        struct pbd_inst *in = d->inst[i];
        if (in->removing && !is_alive(in)) {
            logmsg(d, LOG_INFO, "%s: removed", in->prog->name);
            procbus_pub_remove(d->pub, in->id);
            d->staged = 1;
            inst_free(d, in);
            memmove(&d->inst[i], &d->inst[i + 1], (d->n_inst - i - 1) * sizeof(*d->inst));
            d->n_inst--;
        } else {
            i++;
        }
    }
}

/* ---- control commands ---- */

/* Apply `fn` to every instance NAME selects (a program, a group "g:*" or "g:", or "all"). */
static int select_targets(struct pbd_daemon *d, const char *sel, struct pbd_inst **out, size_t max)
{
    size_t i, n = 0, glen;
    const char *colon = strchr(sel, ':');

    for (i = 0; i < d->n_inst && n < max; i++) {
        struct pbd_inst *in = d->inst[i];
        if (in->removing)
            continue;
        if (strcmp(sel, "all") == 0 || strcmp(in->prog->name, sel) == 0)
            out[n++] = in;
        else if (colon != NULL && (colon[1] == '*' || colon[1] == '\0') &&
                 (glen = (size_t)(colon - sel)) == strlen(in->prog->group) &&
                 strncmp(in->prog->group, sel, glen) == 0)
            out[n++] = in;
    }
    return (int)n;
}

static int reload_config(struct pbd_daemon *d, char *err, size_t errlen);

/* Run one request; detail lines go out at once, the final OK/ERR line into final[]. */
static void command(struct pbd_daemon *d, int slot, int argc, char **argv, char *final, size_t flen)
{
    struct pbd_inst **targets;
    int n, i, a, errors = 0;
    const char *cmd = argc > 0 ? argv[0] : "";

    if (strcmp(cmd, "shutdown") == 0) {
        logmsg(d, LOG_INFO, "shutdown requested over the control socket");
        d->shutting_down = 1;
        snprintf(final, flen, "OK\n");
        return;
    }
    if (strcmp(cmd, "reload") == 0) {
        char err[512];
        if (reload_config(d, err, sizeof(err)) < 0)
            snprintf(final, flen, "ERR %s\n", err);
        else
            snprintf(final, flen, "OK\n");
        return;
    }
    if (strcmp(cmd, "start") != 0 && strcmp(cmd, "stop") != 0 && strcmp(cmd, "restart") != 0 &&
        strcmp(cmd, "signal") != 0) {
        snprintf(final, flen,
                 "ERR unknown command '%s' (start, stop, restart, signal, reload, shutdown)\n",
                 cmd);
        return;
    }
    a = strcmp(cmd, "signal") == 0 ? 2 : 1;
    if (argc <= a) {
        snprintf(final, flen, "ERR usage: %s %sNAME|GROUP:*|all ...\n", cmd,
                 a == 2 ? "SIGNAL " : "");
        return;
    }
    if (d->shutting_down) {
        snprintf(final, flen, "ERR shutting down\n");
        return;
    }
    targets = calloc(d->n_inst + 1, sizeof(*targets));
    if (targets == NULL) {
        snprintf(final, flen, "ERR out of memory\n");
        return;
    }
    for (; a < argc; a++) {
        n = select_targets(d, argv[a], targets, d->n_inst);
        if (n == 0) {
            pbd_ctl_reply(&d->ctl, slot, "%s: ERROR (no such process)\n", argv[a]);
            errors++;
        }
        for (i = 0; i < n; i++) {
            struct pbd_inst *in = targets[i];
            const char *nm = in->prog->name;
            if (strcmp(cmd, "start") == 0) {
                if (is_alive(in) && in->state != PROCBUS_STATE_BACKOFF) {
                    pbd_ctl_reply(&d->ctl, slot, "%s: ERROR (already started)\n", nm);
                    errors++;
                    continue;
                }
                in->want_start = 1;
                if (in->state == PROCBUS_STATE_BACKOFF || deps_ready(d, in)) {
                    in->want_start = 0;
                    in->failures = 0;
                    fire(d, in, PBD_EV_START);
                }
                pbd_ctl_reply(&d->ctl, slot, "%s: start queued%s\n", nm,
                              deps_ready(d, in) ? "" : " (waiting for dependencies)");
            } else if (strcmp(cmd, "stop") == 0) {
                in->want_start = 0;
                if (!is_alive(in)) {
                    /* a daemon it double-forked, still attributed to it: stop that */
                    int left = pbd_trace_signal_tree(d->trace, in->id, SIGKILL);
                    if (left > 0) {
                        pbd_ctl_reply(&d->ctl, slot, "%s: killing %d leftover process(es)\n", nm,
                                      left);
                        continue;
                    }
                    pbd_ctl_reply(&d->ctl, slot, "%s: ERROR (not running)\n", nm);
                    errors++;
                    continue;
                }
                fire(d, in, PBD_EV_STOP);
                pbd_ctl_reply(&d->ctl, slot, "%s: stopping\n", nm);
            } else if (strcmp(cmd, "restart") == 0) {
                in->want_start = 1;
                if (is_alive(in)) {
                    fire(d, in, PBD_EV_STOP);
                } else if (deps_ready(d, in)) {
                    in->want_start = 0;
                    in->failures = 0;
                    fire(d, in, PBD_EV_START);
                }
                pbd_ctl_reply(&d->ctl, slot, "%s: restart queued\n", nm);
            } else {
                int sig = pbd_signal_number(argv[1]);
                if (sig <= 0) {
                    snprintf(final, flen, "ERR unknown signal '%s'\n", argv[1]);
                    free(targets);
                    return;
                }
                if (!pbd_state_has_process(in->state)) {
                    pbd_ctl_reply(&d->ctl, slot, "%s: ERROR (not running)\n", nm);
                    errors++;
                    continue;
                }
                signal_inst(in, sig, 0);
                pbd_ctl_reply(&d->ctl, slot, "%s: signalled\n", nm);
            }
        }
    }
    free(targets);
    if (errors)
        snprintf(final, flen, "ERR %d error(s)\n", errors);
    else
        snprintf(final, flen, "OK\n");
}

static void on_conn(struct pbd_daemon *d, int slot)
{
    char *argv[64];
    int argc = 0, rc = pbd_ctl_read(&d->ctl, slot, argv, 64, &argc);

    if (rc == 0)
        return;
    if (rc > 0) {
        char final[600] = "ERR internal error\n";
        command(d, slot, argc, argv, final, sizeof(final));
        if (d->staged) { /* what the reply promises is visible before the client hears it */
            procbus_pub_commit(d->pub);
            d->staged = 0;
        }
        pbd_ctl_reply(&d->ctl, slot, "%s", final);
    } else if (rc == -EMSGSIZE) {
        pbd_ctl_reply(&d->ctl, slot, "ERR request too long\n");
    }
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->ctl.conns[slot].fd, NULL);
    pbd_ctl_finish(&d->ctl, slot);
}

static void on_listen(struct pbd_daemon *d)
{
    int slot;

    while ((slot = pbd_ctl_accept(&d->ctl)) != -EAGAIN) {
        if (slot < 0)
            continue;
        d->w_conn[slot] = (struct pbd_watch){.kind = PBD_W_CONN, .slot = slot};
        watch_add(d, d->ctl.conns[slot].fd, &d->w_conn[slot]);
    }
}

/* ---- reload ---- */

static void print_warning(void *arg, const char *msg)
{
    const struct pbd_daemon *d = arg;
    logmsg(d, LOG_WARN, "%s", msg);
}

static int reload_config(struct pbd_daemon *d, char *err, size_t errlen)
{
    struct pbd_config next, *olds;
    size_t i, j;
    int rc;

    memset(&next, 0, sizeof(next));
    rc = pbd_config_load(&next, d->config_path, NULL, err, errlen, print_warning, d);
    if (rc < 0) {
        logmsg(d, LOG_ERR, "reload refused, nothing changed: %s", err);
        return rc;
    }
    olds = realloc(d->old_cfgs, (d->n_old + 1) * sizeof(*olds));
    if (olds == NULL) {
        pbd_config_free(&next);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->old_cfgs = olds;
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        const struct pbd_program *np = in->removing ? NULL : pbd_config_find(&next, in->prog->name);
        if (np == NULL) {
            if (!in->removing)
                logmsg(d, LOG_INFO, "%s: removed from the configuration", in->prog->name);
            in->removing = 1;
            in->want_start = 0;
            if (is_alive(in))
                fire(d, in, PBD_EV_STOP);
        } else if (pbd_program_same(in->prog, np)) {
            in->prog = np; /* unchanged: leave it alone */
            in->next_prog = NULL;
        } else {
            logmsg(d, LOG_INFO, "%s: changed, restarting with the new settings", in->prog->name);
            if (is_alive(in)) {
                in->next_prog = np;
                in->want_start = np->autostart || pbd_state_has_process(in->state);
                fire(d, in, PBD_EV_STOP);
            } else {
                in->prog = np;
                open_logs(d, in);
                in->want_start = np->autostart;
                publish(d, in);
            }
        }
    }
    for (j = 0; j < next.n_progs; j++) {
        int found = 0;
        for (i = 0; i < d->n_inst && !found; i++)
            found = !d->inst[i]->removing &&
                    (d->inst[i]->prog == &next.progs[j] || d->inst[i]->next_prog == &next.progs[j]);
        if (!found) {
            logmsg(d, LOG_INFO, "%s: added", next.progs[j].name);
            inst_new(d, &next.progs[j]);
        }
    }
    d->old_cfgs[d->n_old++] = d->cfg; /* stopping instances may still point into it */
    d->cfg = next;
    if (d->n_inst > 1) /* none: an observe-only daemon (qsort of NULL is undefined) */
        qsort(d->inst, d->n_inst, sizeof(*d->inst), cmp_inst);
    return 0;
}

/* ---- timers, signals ---- */

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
static void sample_programs(struct pbd_daemon *d)
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
        publish(d, in);
    }
}

static void run_timers(struct pbd_daemon *d)
{
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    size_t i;

    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        enum pbd_timer t = in->timer;
        if (t == PBD_T_NONE || in->deadline > now)
            continue;
        in->timer = PBD_T_NONE;
        fire(d, in,
             t == PBD_T_STARTSECS ? PBD_EV_STARTSECS
             : t == PBD_T_RETRY   ? PBD_EV_RETRY
                                  : PBD_EV_STOP_TIMEOUT);
    }
    if (now >= d->next_heartbeat) {
        procbus_pub_heartbeat(d->pub);
        d->next_heartbeat = now + (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull;
    }
    if (now >= d->next_sample) { /* (with no program too: the deadline must move on) */
        sample_programs(d);
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
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(next / NS);
    its.it_value.tv_nsec = (long)(next % NS);
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
                logmsg(d, LOG_INFO, "%s: stopping everything", strsignal((int)si.ssi_signo));
            d->shutting_down = 1;
            break;
        case SIGHUP: {
            char err[512];
            logmsg(d, LOG_INFO, "SIGHUP: reloading %s", d->config_path);
            reload_config(d, err, sizeof(err));
            break;
        }
        case SIGCHLD:
            reap_orphans(d);
            break;
        }
    }
}

/* ---- process-tree tracing (trace.h) ---- */

static uint64_t program_by_name(void *arg, const char *name)
{
    struct pbd_daemon *d = arg;
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (strcmp(d->inst[i]->prog->name, name) == 0)
            return d->inst[i]->id;
    return 0;
}

static void trace_staged(struct pbd_daemon *d, int n)
{
    uint64_t lost = pbd_trace_lost(d->trace), now;

    if (n > 0)
        d->staged = 1;
    if (lost == d->trace_lost_logged)
        return;
    now = now_ns(CLOCK_MONOTONIC);
    if (now < d->trace_lost_log_at)
        return; /* at most one line a second during a storm */
    logmsg(d, LOG_WARN,
           "tracer: %llu event(s) lost in the kernel (ring buffer full, %llu in all); "
           "reconciling from /proc",
           (unsigned long long)(lost - d->trace_lost_logged), (unsigned long long)lost);
    d->trace_lost_logged = lost;
    d->trace_lost_log_at = now + NS;
}

static int trace_init(struct pbd_daemon *d)
{
    static const char *modes[] = {"auto", "on", "off", "proc"};
    struct pbd_trace_opts o = {0};
    char why[256] = "";
    int rc;

    o.mode = d->cfg.daemon.trace;
    o.observe = d->cfg.daemon.observe || d->observe_override;
    o.keep_exited_secs = d->cfg.daemon.keep_exited_secs;
    o.ring_kb = d->cfg.daemon.trace_ring_kb;
    o.capacity = d->cfg.daemon.capacity;
    o.batch_ms = d->cfg.daemon.trace_batch_ms;
    o.program_by_name = program_by_name;
    o.arg = d;
    if (o.mode == PBD_TRACE_OFF && o.observe) {
        fprintf(stderr, "procbusd: observe needs tracing: trace=off contradicts it\n");
        return -EINVAL;
    }
    rc = pbd_trace_open(&d->trace, d->pub, &o, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "procbusd: --trace=on: the eBPF tracer cannot run: %s\n",
                why[0] ? why : strerror(-rc));
        return rc;
    }
    if (o.mode == PBD_TRACE_AUTO && pbd_trace_mode(d->trace) == PBD_TRACE_PROC)
        fprintf(stderr,
                "procbusd: trace: eBPF unavailable (%s); following descendants by polling "
                "/proc every %d ms\n",
                why, d->cfg.daemon.sample_ms);
    if (pbd_trace_fd(d->trace) >= 0) {
        d->w_trace.kind = PBD_W_TRACE;
        watch_add(d, pbd_trace_fd(d->trace), &d->w_trace);
    }
    logmsg(d, LOG_INFO, "trace: %s (configured %s)%s",
           pbd_trace_mode(d->trace) == PBD_TRACE_ON     ? "eBPF"
           : pbd_trace_mode(d->trace) == PBD_TRACE_PROC ? "/proc polling"
                                                        : "off, direct children only",
           modes[o.mode], o.observe ? "; observing every process on the host" : "");
    return 0;
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
    rc = procbus_pub_open(&d->pub, &o);
    if (rc < 0) {
        fprintf(stderr, "procbusd: cannot create the segment %s: %s%s\n",
                o.segment ? o.segment : "(default)", strerror(-rc),
                rc == -EBUSY ? " (another procbusd owns it)" : "");
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
    watch_add(d, d->sigfd, &d->w_sig);
    watch_add(d, d->timerfd, &d->w_timer);
    watch_add(d, d->ctl.listen_fd, &d->w_listen);

    for (i = 0; i < d->cfg.n_progs; i++)
        if (inst_new(d, &d->cfg.progs[i]) == NULL)
            return -ENOMEM;
    if (d->n_inst > 1) /* none: an observe-only daemon (qsort of NULL is undefined) */
        qsort(d->inst, d->n_inst, sizeof(*d->inst), cmp_inst);
    procbus_pub_commit(d->pub);
    /* loading the tracer takes a while: the programs are published (STOPPED) first, and
     * nothing is spawned before it is in place */
    rc = trace_init(d);
    if (rc < 0)
        return rc;
    if (d->staged) {
        procbus_pub_commit(d->pub);
        d->staged = 0;
    }
    logmsg(d, LOG_INFO, "supervising %zu program(s); segment %s; control socket %s", d->n_inst,
           procbus_pub_path(d->pub), d->ctl.path);
    return 0;
}

int pbd_daemon_run(struct pbd_daemon *d)
{
    struct epoll_event evs[64];

    while (!d->done) {
        int n, i;

        schedule(d);
        drop_removed(d);
        if (d->staged) {
            procbus_pub_commit(d->pub);
            d->staged = 0;
        }
        if (d->done)
            break;
        arm_timerfd(d);
        n = epoll_wait(d->epfd, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            logmsg(d, LOG_ERR, "epoll_wait: %s", strerror(errno));
            return 1;
        }
        for (i = 0; i < n; i++) {
            struct pbd_watch *w = evs[i].data.ptr;
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
                on_listen(d);
                break;
            case PBD_W_CONN:
                on_conn(d, w->slot);
                break;
            case PBD_W_PIDFD:
                on_pidfd(d, w->inst);
                break;
            case PBD_W_OUT:
                drain(d, w->inst, &w->inst->sp.out_fd, w->inst->out_log, lines_of(w->inst, 0));
                break;
            case PBD_W_ERR:
                drain(d, w->inst, &w->inst->sp.err_fd, w->inst->err_log, lines_of(w->inst, 1));
                break;
            case PBD_W_READY:
                on_ready_fd(d, w->inst);
                break;
            case PBD_W_TRACE:
                trace_staged(d, pbd_trace_consume(d->trace));
                break;
            }
        }
        run_timers(d);
        if (d->trace != NULL)
            trace_staged(d, pbd_trace_tick(d->trace, now_ns(CLOCK_MONOTONIC),
                                           (uint64_t)d->cfg.daemon.sample_ms * 1000000ull));
    }
    logmsg(d, LOG_INFO, "all programs stopped; exiting");
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
        inst_free(d, in);
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
