/* parity.c - the hooks procbusd's files call for supervisord parity (parity.h): state events and
 * supervisord's log lines, stdin for listeners and fcgi programs, output to listeners. */
#define _GNU_SOURCE
#include "parity.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procbus.h"
#include "spawn_setup.h"
#include "util.h"

struct pbd_par *pbd_par_of(struct pbd_daemon *d)
{
    if (d->par == NULL)
        d->par = calloc(1, sizeof(*d->par));
    return d->par;
}

struct pbd_par_inst *pbd_par_inst_of(struct pbd_inst *in)
{
    if (in->par == NULL) {
        in->par = calloc(1, sizeof(*in->par));
        if (in->par != NULL) {
            in->par->stdin_w = in->par->stdin_r = -1;
            in->par->resultlen = -1;
        }
    }
    return in->par;
}

int pbd_par_init(struct pbd_daemon *d, int resume)
{
    struct pbd_par *p = pbd_par_of(d);
    int rc, first = 0;

    if (p == NULL)
        return -ENOMEM;
    rc = pbd_mainlog_open(d);
    if (rc < 0 && !resume)
        return rc;
    first = rc;
    if (d->cfg.daemon.pidfile != NULL) {
        FILE *f = fopen(d->cfg.daemon.pidfile, "we");
        if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            rc = -errno;
            fprintf(stderr, "procbusd: cannot write the pidfile %s: %s\n", d->cfg.daemon.pidfile,
                    strerror(errno));
            if (!resume)
                return rc;
            first = first < 0 ? first : rc;
        }
        p->pidfile = strdup(d->cfg.daemon.pidfile);
    }
    if (pbd_evl_sync_pools(d) < 0)
        return -ENOMEM;
    if (!resume) /* (an upgrade in place: the same supervisor goes on running) */
        pbd_evl_notify(d, PBD_EVT_SUPERVISOR_STATE_CHANGE_RUNNING, "", 0);
    return first; /* (resume: what failed did not stop the rest) */
}

void pbd_par_free(struct pbd_daemon *d)
{
    struct pbd_par *p = d->par;

    if (p == NULL)
        return;
    pbd_evl_free(d);
    pbd_fcgi_free(d);
    if (p->pidfile != NULL)
        unlink(p->pidfile);
    free(p->pidfile);
    if (p->has_reread)
        pbd_config_free(&p->reread);
    pbd_mainlog_close(d);
    free(p);
    d->par = NULL;
}

void pbd_par_inst_free(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_par_inst *x = in->par;

    if (x == NULL)
        return;
    pbd_evl_inst_free(d, in);
    free(x->auto_path[0]);
    free(x->auto_path[1]);
    for (int i = 0; i < 2; i++) {
        free(x->capture[i].pend);
        free(x->capture[i].cap);
    }
    free(x->logbuf);
    free(x);
    in->par = NULL;
}

/* supervisord's words for how a run ended: "exit status 1", "terminated by SIGTERM". */
static void ended(const struct pbd_inst *in, char *buf, size_t len)
{
    if (in->exit_kind == PROCBUS_EXIT_SIGNAL)
        snprintf(buf, len, "terminated by SIG%s%s",
                 sigabbrev_np(in->exit_code) ? sigabbrev_np(in->exit_code) : "?",
                 in->core ? " (core dumped)" : "");
    else
        snprintf(buf, len, "exit status %d", in->exit_code);
}

/* The state supervisord would say: READY is RUNNING to it. */
static uint16_t sv_state(uint16_t s)
{
    return s == PROCBUS_STATE_READY ? PROCBUS_STATE_RUNNING : s;
}

/* supervisord's log line for a transition (mainlog.c's file only: stderr has procbusd's). */
static void log_transition(struct pbd_daemon *d, const struct pbd_inst *in, uint16_t from,
                           uint16_t to)
{
    const char *nm = in->prog->name;
    char how[64];

    ended(in, how, sizeof(how));
    switch (to) {
    case PROCBUS_STATE_STARTING:
        if (in->sp.pid > 0)
            pbd_mainlog_write(d, PBD_L_INFO, "spawned: '%s' with pid %d", nm, (int)in->sp.pid);
        break;
    case PROCBUS_STATE_RUNNING:
        if (from == PROCBUS_STATE_STARTING)
            pbd_mainlog_write(d, PBD_L_INFO,
                              "success: %s entered RUNNING state, process has stayed up for > "
                              "than %d seconds (startsecs)",
                              nm, in->prog->startsecs);
        break;
    case PROCBUS_STATE_BACKOFF:
        if (from == PROCBUS_STATE_STARTING && in->exit_kind != PROCBUS_EXIT_NONE)
            pbd_mainlog_write(d, PBD_L_WARN, "exited: %s (%s; not expected)", nm, how);
        break;
    case PROCBUS_STATE_EXITED: {
        int expected = pbd_inst_expected_exit(in);
        pbd_mainlog_write(d, expected ? PBD_L_INFO : PBD_L_WARN, "exited: %s (%s; %s)", nm, how,
                          expected ? "expected" : "not expected");
        break;
    }
    case PROCBUS_STATE_FATAL:
        pbd_mainlog_write(d, PBD_L_INFO,
                          "gave up: %s entered FATAL state, too many start retries too quickly",
                          nm);
        break;
    case PROCBUS_STATE_STOPPING:
        pbd_mainlog_write(d, PBD_L_INFO, "waiting for %s to stop", nm);
        break;
    case PROCBUS_STATE_STOPPED:
        if (from == PROCBUS_STATE_STOPPING)
            pbd_mainlog_write(d, pbd_inst_expected_exit(in) ? PBD_L_INFO : PBD_L_WARN,
                              "stopped: %s (%s)", nm, how);
        break;
    }
}

void pbd_par_state(struct pbd_daemon *d, struct pbd_inst *in, uint16_t from)
{
    static const enum pbd_evtype by_state[PROCBUS_STATE_COUNT_] = {
        [PROCBUS_STATE_STOPPED] = PBD_EVT_PROCESS_STATE_STOPPED,
        [PROCBUS_STATE_STARTING] = PBD_EVT_PROCESS_STATE_STARTING,
        [PROCBUS_STATE_RUNNING] = PBD_EVT_PROCESS_STATE_RUNNING,
        [PROCBUS_STATE_BACKOFF] = PBD_EVT_PROCESS_STATE_BACKOFF,
        [PROCBUS_STATE_STOPPING] = PBD_EVT_PROCESS_STATE_STOPPING,
        [PROCBUS_STATE_EXITED] = PBD_EVT_PROCESS_STATE_EXITED,
        [PROCBUS_STATE_FATAL] = PBD_EVT_PROCESS_STATE_FATAL,
        [PROCBUS_STATE_UNKNOWN] = PBD_EVT_PROCESS_STATE_UNKNOWN,
    };
    uint16_t to = sv_state(in->state), was = sv_state(from);
    pid_t pid = pbd_state_has_process(from) || pbd_state_has_process(in->state) ? in->last_pid : 0;
    char payload[512];
    int n;

    if (to == was || to >= PROCBUS_STATE_COUNT_)
        return; /* RUNNING -> READY: nothing for supervisord's listeners */
    if (d->par != NULL && d->par->mainlog != NULL)
        log_transition(d, in, from, in->state);
    if (!pbd_state_has_process(in->state) && in->par != NULL) {
        if (in->prog->kind == PBD_KIND_EVENTLISTENER) {
            pbd_evl_listener_gone(d, in);
        } else if (in->par->stdin_w >= 0) { /* its stdin pipe ends with its run */
            close(in->par->stdin_w);
            in->par->stdin_w = -1;
        }
    }
    n = snprintf(payload, sizeof(payload), "processname:%s groupname:%s from_state:%s",
                 in->prog->name, in->prog->group, procbus_state_name(was));
    switch (to) {
    case PROCBUS_STATE_STARTING:
    case PROCBUS_STATE_BACKOFF:
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, " tries:%d", in->failures);
        break;
    case PROCBUS_STATE_EXITED:
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, " expected:%d pid:%d",
                      pbd_inst_expected_exit(in), (int)pid);
        break;
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_STOPPING:
    case PROCBUS_STATE_STOPPED:
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, " pid:%d", (int)pid);
        break;
    }
    pbd_evl_notify(d, by_state[to], payload, (size_t)n);
}

int pbd_par_before_spawn(struct pbd_daemon *d, struct pbd_inst *in, struct pbd_spawn_opts *opts,
                         char *why, size_t whylen)
{
    struct pbd_par_inst *x;
    int p[2];

    opts->has_stdin = 0;
    opts->stdin_fd = -1;
    if (in->prog->kind == PBD_KIND_FCGI) {
        int fd = pbd_fcgi_socket(d, in, why, whylen);
        if (fd < 0)
            return fd;
        opts->has_stdin = 1;
        opts->stdin_fd = fd;
    } else {
        /* supervisord's: a pipe whose write end the daemon holds. An event listener gets its
         * events on it; a program that reads its stdin waits, as under supervisord (it does
         * not see end of file, which /dev/null would give it) */
        x = pbd_par_inst_of(in);
        if (x == NULL) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
            int e = errno;
            snprintf(why, whylen, "pipe: %s", strerror(e));
            pbd_spawn_hint(why, whylen, e);
            return -e;
        }
        x->stdin_r = p[0];
        if (x->stdin_w >= 0)
            close(x->stdin_w);
        x->stdin_w = -1;
        opts->has_stdin = 1;
        opts->stdin_fd = p[0];
        if (in->prog->kind == PBD_KIND_EVENTLISTENER) {
            pbd_evl_listener_started(d, in, p[1]);
        } else {
            x->stdin_w = p[1];
        }
    }
    return 0;
}

void pbd_par_after_spawn(struct pbd_daemon *d, struct pbd_inst *in, int rc)
{
    struct pbd_par_inst *x = in->par;

    (void)d;
    if (x != NULL && x->stdin_r >= 0) {
        close(x->stdin_r);
        x->stdin_r = -1;
    }
    if (rc < 0 && in->prog->kind == PBD_KIND_EVENTLISTENER) {
        pbd_evl_listener_gone(d, in);
    } else if (rc < 0 && x != NULL && x->stdin_w >= 0) {
        close(x->stdin_w);
        x->stdin_w = -1;
    }
}

/* PROCESS_LOG_STDOUT/STDERR for a piece of output, with *_events_enabled. */
static void log_event(struct pbd_daemon *d, struct pbd_inst *in, int which, const char *buf,
                      size_t n)
{
    char head[256], *payload;
    int h;

    if (!(which ? in->prog->err.events : in->prog->out.events) || n == 0)
        return;
    h = snprintf(head, sizeof(head), "processname:%s groupname:%s pid:%d channel:%s\n",
                 in->prog->name, in->prog->group, (int)in->last_pid, which ? "stderr" : "stdout");
    payload = malloc((size_t)h + n);
    if (payload == NULL)
        return;
    memcpy(payload, head, (size_t)h);
    memcpy(payload + h, buf, n);
    pbd_evl_notify(d, which ? PBD_EVT_PROCESS_LOG_STDERR : PBD_EVT_PROCESS_LOG_STDOUT, payload,
                   (size_t)h + n);
    free(payload);
}

/* Append to a growing buffer; 0 or -ENOMEM. */
static int append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 256;
        char *nb;
        while (nc < *len + n)
            nc *= 2;
        nb = realloc(*buf, nc);
        if (nb == NULL)
            return -ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

#define CAPTURE_BEGIN "<!--XSUPERVISOR:BEGIN-->"
#define CAPTURE_END   "<!--XSUPERVISOR:END-->"

/* supervisord's find_prefix_at_end: the longest proper prefix of token data ends with. */
static size_t prefix_at_end(const char *data, size_t n, const char *token)
{
    size_t l = strlen(token) - 1;
    while (l > 0 && (l > n || memcmp(data + n - l, token, l) != 0))
        l--;
    return l;
}

/* One decided piece of output: captured (between the tokens) or for the log; either way a
 * PROCESS_LOG event (supervisord's _log). */
static void route(struct pbd_daemon *d, struct pbd_inst *in, int which, const char *data, size_t n)
{
    struct pbd_par_inst *x = in->par;
    struct pbd_capture *c = &x->capture[which];
    uint64_t max = which ? in->prog->err.capture_maxbytes : in->prog->out.capture_maxbytes;

    if (n == 0)
        return;
    if (c->on) { /* supervisord's BoundIO: full, it drops as many bytes from its start */
        char *nb;
        if (c->cap_len + n > max && c->cap_len > 0) {
            size_t drop = n < c->cap_len ? n : c->cap_len;
            memmove(c->cap, c->cap + drop, c->cap_len - drop);
            c->cap_len -= drop;
        }
        nb = realloc(c->cap, c->cap_len + n); /* (sized to what it holds) */
        if (nb != NULL) {
            memcpy(nb + c->cap_len, data, n);
            c->cap = nb;
            c->cap_len += n;
        }
    } else {
        append(&x->logbuf, &x->logbuf_len, &x->logbuf_cap, data, n);
    }
    log_event(d, in, which, data, n);
}

/* The END token: what was captured becomes PROCESS_COMMUNICATION_STDOUT/STDERR. */
static void capture_done(struct pbd_daemon *d, struct pbd_inst *in, int which)
{
    struct pbd_capture *c = &in->par->capture[which];
    char head[256], *payload;
    int h = snprintf(head, sizeof(head), "processname:%s groupname:%s pid:%d\n", in->prog->name,
                     in->prog->group, (int)in->last_pid);

    payload = malloc((size_t)h + c->cap_len + 1);
    if (payload != NULL) {
        memcpy(payload, head, (size_t)h);
        if (c->cap_len > 0)
            memcpy(payload + h, c->cap, c->cap_len);
        pbd_evl_notify(
            d, which ? PBD_EVT_PROCESS_COMMUNICATION_STDERR : PBD_EVT_PROCESS_COMMUNICATION_STDOUT,
            payload, (size_t)h + c->cap_len);
        free(payload);
    }
    c->cap_len = 0;
}

/* supervisord's record_output with a capture log: split the output at the tokens. */
static char *capture(struct pbd_daemon *d, struct pbd_inst *in, int which, char *buf, size_t n,
                     size_t *log_n)
{
    struct pbd_par_inst *x = pbd_par_inst_of(in);
    struct pbd_capture *c;
    char *data = NULL, *p;
    size_t len = 0, cap = 0;

    *log_n = 0;
    if (x == NULL)
        return buf;
    c = &x->capture[which];
    x->logbuf_len = 0;
    if (append(&data, &len, &cap, c->pend, c->pend_len) < 0 ||
        append(&data, &len, &cap, buf, n) < 0) {
        free(data);
        *log_n = n; /* out of memory: logged as it is */
        return buf;
    }
    c->pend_len = 0;
    p = data;
    for (;;) {
        const char *token = c->on ? CAPTURE_END : CAPTURE_BEGIN;
        size_t tlen = strlen(token), keep;
        char *at;
        if (len <= tlen) { /* "not enough data": it waits for more */
            keep = len;
        } else if ((at = memmem(p, len, token, tlen)) == NULL) {
            keep = prefix_at_end(p, len, token);
            route(d, in, which, p, len - keep);
        } else {
            route(d, in, which, p, (size_t)(at - p));
            c->on = !c->on;
            if (!c->on)
                capture_done(d, in, which);
            len -= (size_t)(at - p) + tlen;
            p = at + tlen;
            if (len > 0)
                continue;
            keep = 0;
        }
        free(c->pend);
        c->pend = keep > 0 ? malloc(keep) : NULL;
        if (c->pend != NULL)
            memcpy(c->pend, p + len - keep, keep);
        c->pend_len = c->pend != NULL ? keep : 0;
        break;
    }
    free(data);
    *log_n = x->logbuf_len;
    return x->logbuf != NULL ? x->logbuf : buf;
}

char *pbd_par_output(struct pbd_daemon *d, struct pbd_inst *in, int which, char *buf, size_t n,
                     size_t *log_n)
{
    const struct pbd_logconf *lc = which ? &in->prog->err : &in->prog->out;

    *log_n = n;
    if (which == 0 && in->prog->kind == PBD_KIND_EVENTLISTENER) {
        pbd_evl_listener_output(d, in, buf, n); /* the protocol (and its log) */
        return buf;
    }
    if (lc->capture_maxbytes > 0)
        return capture(d, in, which, buf, n, log_n);
    log_event(d, in, which, buf, n);
    return buf;
}

size_t pbd_par_strip(const struct pbd_daemon *d, char *buf, size_t n)
{
    static const char terminators[] = "HfABCDRsuJKhlpm";
    size_t i = 0, o = 0;
    int show = 1;

    if (!d->cfg.daemon.strip_ansi)
        return n;
    /* supervisord's stripEscapes: from ESC '[' up to one of its terminators, per chunk */
    while (i < n) {
        if (!show && memchr(terminators, buf[i], sizeof(terminators) - 1) != NULL) {
            show = 1;
        } else if (show) {
            if (buf[i] == '\x1b' && i + 1 < n && buf[i + 1] == '[') {
                show = 0;
            } else {
                buf[o++] = buf[i];
            }
        }
        i++;
    }
    return o;
}

void pbd_par_turn(struct pbd_daemon *d)
{
    if (d->par == NULL)
        return;
    pbd_evl_tick(d);
    pbd_evl_dispatch(d);
    pbd_fcgi_gc(d);
}

uint64_t pbd_par_next_deadline(const struct pbd_daemon *d)
{
    uint64_t next;

    if (d->par == NULL)
        return UINT64_MAX;
    next = pbd_evl_next_tick(d);
    if (d->shutting_down && d->par->drain_until > pb_now_ns(CLOCK_MONOTONIC) &&
        d->par->drain_until < next)
        next = d->par->drain_until; /* a listener held back: stopped then at the latest */
    return next;
}

void pbd_par_stopping(struct pbd_daemon *d)
{
    if (d->par != NULL)
        d->par->drain_until = pb_now_ns(CLOCK_MONOTONIC) + PBD_PAR_DRAIN_NS;
    pbd_evl_notify(d, PBD_EVT_SUPERVISOR_STATE_CHANGE_STOPPING, "", 0);
}

int pbd_par_hold_stop(struct pbd_daemon *d, const struct pbd_inst *in)
{
    const struct pbd_par_inst *x = in->par;

    if (in->prog->kind != PBD_KIND_EVENTLISTENER || d->par == NULL || x == NULL ||
        pb_now_ns(CLOCK_MONOTONIC) >= d->par->drain_until || x->stdin_w < 0 ||
        x->lstate == PBD_LS_UNKNOWN ||
        !(in->state == PROCBUS_STATE_RUNNING || in->state == PROCBUS_STATE_READY))
        return 0;
    return pbd_evl_pending(d, in->prog->group);
}

void pbd_par_group_event(struct pbd_daemon *d, const char *name, int added)
{
    char payload[128];
    int n = snprintf(payload, sizeof(payload), "groupname:%s\n", name);

    pbd_evl_notify(d, added ? PBD_EVT_PROCESS_GROUP_ADDED : PBD_EVT_PROCESS_GROUP_REMOVED, payload,
                   (size_t)n);
}

void pbd_par_reopen_logs(struct pbd_daemon *d)
{
    if (d->par != NULL && d->par->mainlog != NULL)
        pbd_log_reopen(d->par->mainlog);
    for (size_t i = 0; i < d->n_inst; i++) {
        if (d->inst[i]->out_log != NULL)
            pbd_log_reopen(d->inst[i]->out_log);
        if (d->inst[i]->err_log != NULL)
            pbd_log_reopen(d->inst[i]->err_log);
    }
    pbd_say(d, PBD_L_INFO, "SIGUSR2: log files reopened");
}
