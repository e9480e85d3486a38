/* output.c - procbusd's reading of programs' output: log files, ready_log lines, ready_fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_int.h"
#include "parity.h"
#include "procbus_pub.h"
#include "userdb.h"
#include "util.h"

/* Why a log was refused, for the errors pbd_log_open_as adds to open(2)'s. */
static const char *refusal_hint(int rc)
{
    if (rc == -ELOOP)
        return " (a symbolic link: procbusd does not follow links to log files)";
    if (rc == -EPERM)
        return " (refused: a folder on the way or the file belongs to, or can be changed by, "
               "a user other than root, procbusd's or the program's; or the file is a hard "
               "link: see procbusd(8), SECURITY)";
    return "";
}

/* Open one log of `in` as its program's user says (logfile.h); a failure is logged. */
static void open_log(struct pbd_daemon *d, struct pbd_inst *in, const struct pbd_logconf *lc,
                     const char *which, struct pbd_log **out)
{
    const struct pbd_program *p = in->prog;
    const char *path = lc->path;
    struct pbd_log_as as, *asp = NULL;
    struct pbd_user u;
    int rc;

    if (pbd_log_is_auto(path)) { /* supervisord's AUTO: a file of its own in childlogdir */
        path = pbd_autolog_path(d, in, lc == &p->err);
        if (path == NULL) {
            pbd_say(d, PBD_L_ERR, "%s: %s log AUTO: out of memory", p->name, which);
            return;
        }
    }
    if (p->user != NULL && geteuid() == 0) {
        rc = pbd_user_lookup(p->user, &u);
        if (rc < 0) {
            pbd_say(d, PBD_L_ERR, "%s: %s log %s: user %s: %s", p->name, which, path, p->user,
                    strerror(-rc));
            return;
        }
        as = (struct pbd_log_as){u.uid, u.gid};
        asp = &as;
    }
    rc = pbd_log_open_as(out, path, lc->maxbytes, lc->backups, asp);
    if (rc < 0)
        pbd_say(d, PBD_L_ERR, "%s: %s log %s: %s%s", p->name, which, path, strerror(-rc),
                refusal_hint(rc));
}

void pbd_inst_open_logs(struct pbd_daemon *d, struct pbd_inst *in)
{
    const struct pbd_program *p = in->prog;

    pbd_log_close(in->out_log);
    pbd_log_close(in->err_log);
    in->out_log = in->err_log = NULL;
    if (in->has_re)
        regfree(&in->ready_re);
    in->has_re = 0;
    if (p->out.path != NULL)
        open_log(d, in, &p->out, "stdout", &in->out_log);
    if (p->err.path != NULL && !p->redirect_stderr)
        open_log(d, in, &p->err, "stderr", &in->err_log);
    if (p->ready_log != NULL) {
        if (in->lines == NULL) /* 8 KiB, only for programs that match their output */
            in->lines = calloc(2, sizeof(*in->lines));
        in->has_re = in->lines != NULL &&
                     regcomp(&in->ready_re, p->ready_log, REG_EXTENDED | REG_NOSUB) == 0;
    }
}

/* One whole output line (pbd_lines_feed's callback; arg is {d, in}): does it say ready? */
static void on_line(void *arg, const char *line, size_t len)
{
    void **pair = arg;
    struct pbd_daemon *d = pair[0];
    struct pbd_inst *in = pair[1];
    (void)len;

    if (in->has_re && regexec(&in->ready_re, line, 0, NULL, 0) == 0 &&
        (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING)) {
        pbd_say(d, PBD_L_DEBUG, "%s: ready_log matched: %s", in->prog->name, line);
        pbd_inst_fire(d, in, PBD_EV_READY);
    }
}

/* How often a log that keeps losing output says so again. */
#define LOSS_NEWS_EVERY_NS (60 * PB_NS_PER_SEC)

/* A log's lost output, rate-limited (logfile.h, pbd_log_news): when losses start, once a
 * minute while they go on, and when writing works again, each time with the bytes lost. */
static void say_losses(struct pbd_daemon *d, struct pbd_inst *in, struct pbd_log *log, int rc)
{
    uint64_t run;
    int err;

    switch (pbd_log_news(log, rc, pb_now_ns(CLOCK_MONOTONIC), LOSS_NEWS_EVERY_NS, &run, &err)) {
    case PBD_LOG_NEWS_NONE:
        break;
    case PBD_LOG_NEWS_LOSING:
        pbd_say(d, PBD_L_WARN,
                "%s: log %s: output lost: %s (%llu bytes; further losses are counted and "
                "reported once a minute)",
                in->prog->name, pbd_log_path(log), strerror(err), (unsigned long long)run);
        break;
    case PBD_LOG_NEWS_STILL:
        pbd_say(d, PBD_L_WARN, "%s: log %s: still losing output: %s (%llu bytes lost so far)",
                in->prog->name, pbd_log_path(log), strerror(err), (unsigned long long)run);
        break;
    case PBD_LOG_NEWS_RECOVERED:
        pbd_say(d, PBD_L_WARN, "%s: log %s: writing again; %llu bytes were lost (%llu in all)",
                in->prog->name, pbd_log_path(log), (unsigned long long)run,
                (unsigned long long)pbd_log_lost(log));
        break;
    }
}

/* The pipe `*fd` reached its end: the last partial line goes to ready_log matching, the pipe is
 * closed, and once the run has no pipe left the fd holder lets go of its copies. */
static void pipe_ended(struct pbd_daemon *d, struct pbd_inst *in, int *fd, struct pbd_lines *lines,
                       void *pair)
{
    if (in->has_re)
        pbd_lines_flush(lines, on_line, pair);
    pbd_watch_close(d, fd);
    pbd_inst_hold_release(d, in);
}

/* Whether procbusd must see a stream's bytes (ready_log matching, the event listener protocol,
 * PROCESS_LOG events) while they go to the log unchanged: splice(2) with a tee(2) copy. */
static int observed(const struct pbd_inst *in, enum pbd_stream which)
{
    const struct pbd_logconf *lc = which == PBD_STDOUT ? &in->prog->out : &in->prog->err;

    return in->has_re || lc->events ||
           (which == PBD_STDOUT && in->prog->kind == PBD_KIND_EVENTLISTENER);
}

/* Whether the log gets other bytes than the program wrote (capture mode takes what is between
 * its tokens out, strip_ansi the escape sequences): then output is read and written, never
 * spliced (bytes read when procbusd is killed are lost: procbusd(8), RESTARTS AND UPGRADES). */
static int transformed(const struct pbd_daemon *d, const struct pbd_inst *in, enum pbd_stream which)
{
    const struct pbd_logconf *lc = which == PBD_STDOUT ? &in->prog->out : &in->prog->err;

    return lc->capture_maxbytes > 0 || d->cfg.daemon.strip_ansi;
}

/* What the last splice tee'd into d's private pipe (n bytes), to ready_log matching and the
 * parity hooks (the listener protocol, PROCESS_LOG events; the log has the bytes already). */
static void observe_teed(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_stream which,
                         struct pbd_lines *lines, size_t n, void *pair)
{
    while (n > 0) {
        ssize_t r = read(d->tee_rd, d->io_buf, n < sizeof(d->io_buf) ? n : sizeof(d->io_buf));
        size_t log_n;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        if (in->has_re)
            pbd_lines_feed(lines, d->io_buf, (size_t)r, on_line, pair);
        pbd_par_output(d, in, which, d->io_buf, (size_t)r, &log_n);
        n -= (size_t)r;
    }
}

/* Empty d's private tee pipe: a copy of bytes a splice then did not move (a short or failed
 * splice leaves them in the program's pipe, to be seen again when they are moved or read). */
static void tee_discard(struct pbd_daemon *d)
{
    while (read(d->tee_rd, d->io_buf, sizeof(d->io_buf)) > 0)
        ;
}

void pbd_inst_drain(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_stream which)
{
    int *fd = which == PBD_STDOUT ? &in->sp.out_fd : &in->sp.err_fd;
    struct pbd_log *log = which == PBD_STDOUT ? in->out_log : in->err_log;
    struct pbd_lines *lines = in->lines != NULL ? &in->lines[which] : NULL;
    char *buf = d->io_buf;
    void *pair[2] = {d, in};
    int rounds, spliced = log != NULL && !transformed(d, in, which), obs = observed(in, which);

    for (rounds = 0; rounds < 16 && *fd >= 0; rounds++) {
        ssize_t n;
        if (spliced) {
            /* straight from the pipe into the file: a byte is logged once, or still in the pipe
             * for the next procbusd (holder.h), whenever this one dies */
            n = pbd_log_splice(log, *fd, sizeof(d->io_buf), obs ? d->tee_wr : -1);
            if (obs && n <= 0)
                tee_discard(d);
            if (n == -EAGAIN)
                return;
            if (n == 0) {
                pipe_ended(d, in, fd, lines, pair);
                return;
            }
            if (n > 0) {
                int rot = pbd_log_take_error(log);
                say_losses(d, in, log, 0);
                if (rot < 0)
                    pbd_say(d, PBD_L_WARN, "%s: log %s: rotation failed: %s", in->prog->name,
                            pbd_log_path(log), strerror(-rot));
                if (obs) {
                    observe_teed(d, in, which, lines, (size_t)n, pair);
                    tee_discard(d);
                }
                continue;
            }
            /* not a file splice can write to, or its write failed: read, write, count losses */
        }
        n = read(*fd, buf, sizeof(d->io_buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            pipe_ended(d, in, fd, lines, pair);
            return;
        }
        size_t log_n;
        /* the listener protocol, PROCESS_LOG events, capture mode: what the log gets */
        char *logged = pbd_par_output(d, in, which, buf, (size_t)n, &log_n);
        if (in->has_re)
            pbd_lines_feed(lines, buf, (size_t)n, on_line, pair);
        if (log != NULL) {
            size_t kept = pbd_par_strip(d, logged, log_n); /* [supervisord] strip_ansi */
            uint64_t lost_before = pbd_log_lost(log);
            int lost = pbd_log_write(log, logged, kept), rot = pbd_log_take_error(log);
            if (pbd_log_lost(log) > lost_before) /* published: the header's log_bytes_lost */
                procbus_pub_count_log_lost(d->pub, pbd_log_lost(log) - lost_before);
            say_losses(d, in, log, lost);
            if (rot < 0)
                pbd_say(d, PBD_L_WARN, "%s: log %s: rotation failed: %s", in->prog->name,
                        pbd_log_path(log), strerror(-rot));
        }
    }
}

void pbd_inst_on_ready_fd(struct pbd_daemon *d, struct pbd_inst *in)
{
    char buf[256];
    ssize_t n;

    while ((n = read(in->sp.ready_fd, buf, sizeof(buf))) > 0) {
        if (memchr(buf, '\n', (size_t)n) != NULL &&
            (in->state == PROCBUS_STATE_STARTING || in->state == PROCBUS_STATE_RUNNING))
            pbd_inst_fire(d, in, PBD_EV_READY);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pbd_watch_close(d, &in->sp.ready_fd);
        pbd_inst_hold_release(d, in);
    }
}
