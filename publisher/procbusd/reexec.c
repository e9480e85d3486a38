/* reexec.c - upgrading procbusd in place: execve a (newer) binary, keeping everything it holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "daemon_int.h"
#include "parity.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "pubcall.h"
#include "rxbuf.h"
#include "util.h"

/*
 * An upgrade is an execve of the same process: its pid, its children (the programs stay its
 * children: their exits are still reaped), and every descriptor whose close-on-exec flag is
 * cleared go on. What the old image knew beyond the segment goes in a memfd (the state below),
 * named by PROCBUS_REEXEC=FD in the new image's environment; PROCBUS_REEXEC_OLD=FD is the old
 * binary (opened before the exec: it may have been replaced on disk since), which a new image
 * that cannot resume executes again. The segment's descriptor keeps its lock across the exec:
 * readers see no shutdown and no new epoch, only a short gap between two commits.
 */

#define REEXEC_MAGIC   0x5845524250424450ull /* "PBDPREX" */
#define REEXEC_VERSION 2 /* 2: the parity state after the instances (reexec_par.c) */
#define PROBE_NS       (10ull * PB_NS_PER_SEC)

/* One instance as the old image leaves it (the rest is in its record). */
struct rx_inst {
    char name[64];
    uint64_t id, digest;
    int32_t pid, last_pid, prev_pid, adopt_ppid;
    int32_t pidfd, status_fd, out_fd, err_fd, ready_fd;
    uint16_t state;
    uint8_t adopted, exit_unknown, exit_kind, core, spawn_failed, emptying, kill_warned, group_gone,
        removing, want_start, queued, ever_started, timer, has_next, unpublished;
    int32_t exit_code, failures, limit_count;
    uint32_t restarts;
    uint64_t limit_start, deadline, kill_since, start_real, start_boot, since, cpu_ns, rss;
    struct pbd_spawn_error spawn_err;
    char out_path[1024], err_path[1024]; /* its logs (a program the new config lacks) */
};

struct rx_state {
    uint64_t magic;
    uint32_t version, n_inst;
    uint64_t next_id, leftovers_since, trace_lost_logged;
    uint64_t nofile; /* the programs' RLIMIT_NOFILE (the new image's own start found it raised) */
    int32_t seg_fd, listen_fd, conn_fd;
    char seg_path[PROCBUS_PATH_MAX];
    char ctl_path[108];
    char old_binary[4096];
    uint64_t par_len;
    /* then n_inst struct rx_inst, then par_len bytes of parity state (pbd_par_save) */
};

/* ---- the old image ---- */

static void answer(struct pbd_daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void answer(struct pbd_daemon *d, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int slot = d->reexec.slot;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pbd_say(d, msg[0] == 'O' ? PBD_L_INFO : PBD_L_ERR, "reexec: %s", msg);
    if (slot >= 0) {
        pbd_ctl_reply(&d->ctl, slot, "%s\n", msg);
        pbd_ctl_finish(&d->ctl, slot);
    }
    d->reexec.slot = -1;
}

void pbd_reexec_request(struct pbd_daemon *d, const char *binary, int slot)
{
    int err[2] = {-1, -1};
    pid_t pid;
    int pfd;

    if (d->reexec.probe > 0) {
        if (slot >= 0) {
            pbd_ctl_reply(&d->ctl, slot, "ERR an upgrade is under way already\n");
            pbd_ctl_finish(&d->ctl, slot);
        }
        return;
    }
    d->reexec.slot = slot;
    if (d->shutting_down) {
        answer(d, "ERR shutting down");
        return;
    }
    snprintf(d->reexec.binary, sizeof(d->reexec.binary), "%s", binary ? binary : d->self_path);
    if (access(d->reexec.binary, X_OK) < 0) {
        answer(d, "ERR %s: %s; still running the old one", d->reexec.binary, strerror(errno));
        return;
    }
    if (pipe2(err, O_CLOEXEC | O_NONBLOCK) < 0) {
        answer(d, "ERR pipe: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid == 0) { /* the probe: the new binary checks the configuration it will run */
        int null = open("/dev/null", O_RDWR);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(null, 0);
        dup2(null, 1);
        dup2(err[1], 2);
        execl(d->reexec.binary, d->reexec.binary, "--check", "-c", d->config_path, (char *)NULL);
        _exit(127);
    }
    close(err[1]);
    pfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pfd < 0) {
        close(err[0]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        answer(d, "ERR cannot run %s: %s", d->reexec.binary, strerror(errno));
        return;
    }
    d->reexec.probe = pid;
    d->reexec.probe_fd = pfd;
    d->reexec.err_fd = err[0];
    d->reexec.deadline = pb_now_ns(CLOCK_MONOTONIC) + PROBE_NS;
    d->w_probe = (struct pbd_watch){.kind = PBD_W_PROBE};
    pbd_watch_add(d, pfd, &d->w_probe);
    if (slot >= 0) {
        /* answered once done: by the new image, or by this one when it cannot go */
        d->ctl.conns[slot].deadline = UINT64_MAX;
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->ctl.conns[slot].fd, NULL);
        pbd_ctl_reply(&d->ctl, slot, "checking %s\n", d->reexec.binary);
    }
}

static void probe_gone(struct pbd_daemon *d)
{
    pbd_watch_close(d, &d->reexec.probe_fd);
    if (d->reexec.err_fd >= 0)
        close(d->reexec.err_fd);
    d->reexec.err_fd = -1;
    d->reexec.probe = 0;
}

/* Every fd the new image takes over: close-on-exec cleared (`keep`) or set again. */
static void keep_fds(struct pbd_daemon *d, int keep, int extra1, int extra2)
{
    int fds[6], i;
    size_t k;

    fcntl(procbus_pub_fd(d->pub), F_SETFD, keep ? 0 : FD_CLOEXEC);
    fcntl(d->ctl.listen_fd, F_SETFD, keep ? 0 : FD_CLOEXEC);
    if (extra1 >= 0)
        fcntl(extra1, F_SETFD, keep ? 0 : FD_CLOEXEC);
    if (extra2 >= 0)
        fcntl(extra2, F_SETFD, keep ? 0 : FD_CLOEXEC);
    pbd_par_keep(d, keep); /* stdin pipes, fcgi sockets */
    for (k = 0; k < d->n_inst; k++) {
        struct pbd_inst *in = d->inst[k];
        fds[0] = in->sp.pidfd;
        fds[1] = in->sp.status_fd;
        fds[2] = in->sp.out_fd;
        fds[3] = in->sp.err_fd;
        fds[4] = in->sp.ready_fd;
        for (i = 0; i < 5; i++)
            if (fds[i] >= 0)
                fcntl(fds[i], F_SETFD, keep ? 0 : FD_CLOEXEC);
    }
}

/* The file a log goes to as opened (an AUTO log's own name), else as configured. */
static const char *log_file(const struct pbd_log *log, const char *configured)
{
    const char *path = log != NULL ? pbd_log_path(log) : NULL;

    return path != NULL ? path : configured;
}

/* The state for the new image in a memfd (close-on-exec cleared); -errno. */
static int write_state(struct pbd_daemon *d, int conn_fd)
{
    size_t len = sizeof(struct rx_state) + d->n_inst * sizeof(struct rx_inst), k;
    struct pbd_rxbuf par = {0};
    struct rx_state *st;
    struct rx_inst *v;
    int fd, rc = 0;

    pbd_par_save(d, &par);
    if (par.err != 0) {
        free(par.p);
        return par.err;
    }
    fd = memfd_create("procbusd-reexec", 0);
    if (fd < 0) {
        free(par.p);
        return -errno;
    }
    st = calloc(1, len);
    if (st == NULL) {
        free(par.p);
        close(fd);
        return -ENOMEM;
    }
    st->par_len = par.len;
    st->magic = REEXEC_MAGIC;
    st->version = REEXEC_VERSION;
    st->n_inst = (uint32_t)d->n_inst;
    st->next_id = procbus_pub_last_id(d->pub);
    st->leftovers_since = d->leftovers_since;
    st->nofile = d->spawn_opts.nofile;
    st->trace_lost_logged = d->trace_lost_logged;
    st->seg_fd = procbus_pub_fd(d->pub);
    st->listen_fd = d->ctl.listen_fd;
    st->conn_fd = conn_fd;
    snprintf(st->seg_path, sizeof(st->seg_path), "%s", procbus_pub_path(d->pub));
    snprintf(st->ctl_path, sizeof(st->ctl_path), "%s", d->ctl.path);
    v = (struct rx_inst *)(st + 1);
    for (k = 0; k < d->n_inst; k++) {
        const struct pbd_inst *in = d->inst[k];
        struct rx_inst *x = &v[k];
        snprintf(x->name, sizeof(x->name), "%s", in->prog->name);
        x->id = in->id;
        x->digest = pbd_program_digest(in->prog);
        x->pid = in->sp.pid;
        x->last_pid = in->last_pid;
        x->prev_pid = in->prev_pid;
        x->adopt_ppid = in->adopt_ppid;
        x->pidfd = in->sp.pidfd;
        x->status_fd = in->sp.status_fd;
        x->out_fd = in->sp.out_fd;
        x->err_fd = in->sp.err_fd;
        x->ready_fd = in->sp.ready_fd;
        x->state = in->state;
        x->adopted = in->adopted;
        x->exit_unknown = in->exit_unknown;
        x->exit_kind = in->exit_kind;
        x->core = in->core;
        x->spawn_failed = (uint8_t)in->spawn_failed;
        x->emptying = in->emptying;
        x->kill_warned = in->kill_warned;
        x->group_gone = in->group_gone;
        x->removing = (uint8_t)in->removing;
        x->want_start = (uint8_t)in->want_start;
        x->queued = (uint8_t)in->queued;
        x->ever_started = (uint8_t)in->ever_started;
        x->timer = (uint8_t)in->timer;
        x->has_next = in->next_prog != NULL;
        x->unpublished = (uint8_t)in->unpublished;
        x->exit_code = in->exit_code;
        x->failures = in->failures;
        x->limit_count = in->limit_count;
        x->restarts = in->restarts;
        x->limit_start = in->limit_start;
        x->deadline = in->deadline;
        x->kill_since = in->kill_since;
        x->start_real = in->start_real;
        x->start_boot = in->start_boot;
        x->since = in->since;
        x->cpu_ns = in->cpu_ns;
        x->rss = in->rss;
        x->spawn_err = in->spawn_err;
        {
            const char *out = log_file(in->out_log, in->prog->out.path);
            const char *err = log_file(in->err_log, in->prog->err.path);
            if (out != NULL && strlen(out) < sizeof(x->out_path))
                snprintf(x->out_path, sizeof(x->out_path), "%s", out);
            if (err != NULL && strlen(err) < sizeof(x->err_path))
                snprintf(x->err_path, sizeof(x->err_path), "%s", err);
        }
    }
    rc = pb_write_all(fd, st, len);
    if (rc == 0 && par.len > 0)
        rc = pb_write_all(fd, par.p, par.len);
    free(st);
    free(par.p);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* The probe passed: exec the new binary with everything kept; on failure, carry on. */
static void go(struct pbd_daemon *d)
{
    int conn = d->reexec.slot >= 0 ? d->ctl.conns[d->reexec.slot].fd : -1;
    int old = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), fd, e;
    char buf[32], obuf[32];

    pbd_commit_staged(d); /* readers see everything first; the runs forked are let exec */
    if (d->staged || d->go_pending > 0) {
        if (old >= 0)
            close(old);
        answer(d, "ERR cannot publish before the exec (a commit failed); still running");
        return;
    }
    fd = write_state(d, conn);
    if (fd < 0) {
        if (old >= 0)
            close(old);
        answer(d, "ERR cannot write the state for the new image: %s", strerror(-fd));
        return;
    }
    keep_fds(d, 1, conn, old);
    fcntl(fd, F_SETFD, 0);
    snprintf(buf, sizeof(buf), "%d", fd);
    snprintf(obuf, sizeof(obuf), "%d", old);
    setenv("PROCBUS_REEXEC", buf, 1);
    if (old >= 0)
        setenv("PROCBUS_REEXEC_OLD", obuf, 1);
    pbd_say(d, PBD_L_INFO, "reexec: executing %s (pid %d stays)", d->reexec.binary, (int)getpid());
    pbd_holder_close(&d->holder); /* the new image connects again */
    /* an empty commit: readers can tell the gap an upgrade makes (crash-bench measures it
     * from here to the new image's first commit) */
    pbd_pub_commit(d->pub);
    d->argv[0] = d->reexec.binary;
    execv(d->reexec.binary, d->argv);
    /* still here: the old image carries on with everything as it was */
    e = errno;
    unsetenv("PROCBUS_REEXEC");
    unsetenv("PROCBUS_REEXEC_OLD");
    keep_fds(d, 0, conn, old);
    close(fd);
    if (old >= 0)
        close(old);
    pbd_holder_start(d, 0);
    answer(d, "ERR execve %s: %s; still running the old one", d->reexec.binary, strerror(e));
}

void pbd_reexec_probe_done(struct pbd_daemon *d)
{
    siginfo_t si;
    char why[256] = "";
    ssize_t n;

    memset(&si, 0, sizeof(si));
    if (d->reexec.probe <= 0 ||
        waitid((idtype_t)P_PIDFD, (id_t)d->reexec.probe_fd, &si, WEXITED | WNOHANG) < 0 ||
        si.si_pid == 0)
        return;
    n = read(d->reexec.err_fd, why, sizeof(why) - 1);
    why[n > 0 ? n : 0] = '\0';
    why[strcspn(why, "\n")] = '\0';
    probe_gone(d);
    if (si.si_code != CLD_EXITED || si.si_status != 0) {
        answer(d, "ERR %s --check failed (%s %d%s%s); still running the old one", d->reexec.binary,
               si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status,
               why[0] ? ": " : "", why);
        return;
    }
    go(d);
}

void pbd_reexec_tick(struct pbd_daemon *d)
{
    if (d->reexec.probe <= 0 || pb_now_ns(CLOCK_MONOTONIC) < d->reexec.deadline)
        return;
    kill(d->reexec.probe, SIGKILL);
    waitpid(d->reexec.probe, NULL, 0);
    probe_gone(d);
    answer(d, "ERR %s --check did not finish in %llu s; still running the old one",
           d->reexec.binary, (unsigned long long)(PROBE_NS / PB_NS_PER_SEC));
}

/* ---- the new image ---- */

/* Back to the old binary (the new one cannot go on), with the same arguments; the state it
 * left is in the memfd named by PROCBUS_REEXEC_STATE_AGAIN (set by the caller). */
static void fall_back(struct pbd_daemon *d, const char *why)
{
    const char *old = getenv("PROCBUS_REEXEC_OLD");

    fprintf(stderr, "procbusd: reexec: %s\n", why);
    if (old == NULL)
        return; /* nothing to go back to: exit; the programs go on (a restart adopts them) */
    unsetenv("PROCBUS_REEXEC_OLD");             /* (the old binary does not try it again) */
    setenv("PROCBUS_REEXEC_FELL_BACK", why, 1); /* its answer to the requester says so */
    fprintf(stderr, "procbusd: reexec: going back to the old binary\n");
    syscall(SYS_execveat, atoi(old), "", d->argv, environ, AT_EMPTY_PATH);
}

void pbd_reexec_refuse(struct pbd_daemon *d, const char *why)
{
    fall_back(d, why);
}

/* Read the state memfd: malloc'd, validated; NULL with why. */
static struct rx_state *read_state(int fd, char *why, size_t whylen)
{
    struct rx_state head, *st;
    size_t len;

    if (pread(fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head) || head.magic != REEXEC_MAGIC ||
        head.version != REEXEC_VERSION || head.n_inst > (1u << 22) || head.par_len > (1ull << 32)) {
        snprintf(why, whylen, "the state the old image left is not one this build reads");
        return NULL;
    }
    len = sizeof(head) + head.n_inst * sizeof(struct rx_inst) + (size_t)head.par_len;
    st = malloc(len);
    if (st == NULL || pread(fd, st, len, 0) != (ssize_t)len) {
        free(st);
        snprintf(why, whylen, "the state the old image left is short");
        return NULL;
    }
    st->seg_path[sizeof(st->seg_path) - 1] = '\0';
    st->ctl_path[sizeof(st->ctl_path) - 1] = '\0';
    return st;
}

/* Instance `x` of the old image, under program `p` (the configuration now, or made up). */
static struct pbd_inst *restore(struct pbd_daemon *d, const struct rx_inst *x,
                                const struct pbd_program *p)
{
    struct pbd_inst *in;

    d->auto_hint[0] = x->out_path; /* its AUTO files, if any (pbd_autolog_path) */
    d->auto_hint[1] = x->err_path;
    in = pbd_inst_create(d, p, x->id);
    d->auto_hint[0] = d->auto_hint[1] = NULL;

    if (in == NULL)
        return NULL;
    in->sp.pid = x->pid;
    in->last_pid = x->last_pid;
    in->prev_pid = x->prev_pid;
    in->adopt_ppid = x->adopt_ppid;
    in->sp.pidfd = x->pidfd;
    in->sp.status_fd = x->status_fd;
    in->sp.out_fd = x->out_fd;
    in->sp.err_fd = x->err_fd;
    in->sp.ready_fd = x->ready_fd;
    in->state = x->state;
    in->adopted = x->adopted;
    in->exit_unknown = x->exit_unknown;
    in->exit_kind = x->exit_kind;
    in->core = x->core;
    in->spawn_failed = x->spawn_failed;
    in->spawn_err = x->spawn_err;
    in->emptying = x->emptying;
    in->kill_warned = x->kill_warned;
    in->group_gone = x->group_gone;
    in->removing = x->removing;
    in->want_start = x->want_start;
    in->ever_started = x->ever_started;
    in->timer = (enum pbd_timer)x->timer;
    in->unpublished = x->unpublished;
    in->exit_code = x->exit_code;
    in->failures = x->failures;
    in->limit_count = x->limit_count;
    in->restarts = x->restarts;
    in->limit_start = x->limit_start;
    in->deadline = x->deadline; /* CLOCK_MONOTONIC: the same across the exec */
    in->kill_since = x->kill_since;
    in->start_real = x->start_real;
    in->start_boot = x->start_boot;
    in->since = x->since;
    in->cpu_ns = x->cpu_ns;
    in->rss = x->rss;
    {
        int *fds[] = {&in->sp.pidfd, &in->sp.status_fd, &in->sp.out_fd, &in->sp.err_fd,
                      &in->sp.ready_fd};
        struct pbd_watch *w[] = {&in->w_pid, &in->w_exec, &in->w_out, &in->w_err, &in->w_ready};
        for (int i = 0; i < 5; i++)
            if (*fds[i] >= 0) {
                fcntl(*fds[i], F_SETFD, FD_CLOEXEC);
                pbd_watch_add(d, *fds[i], w[i]);
            }
    }
    if (x->queued)
        pbd_spawnq_add(d, in);
    return in;
}

/* `name` is one of the `n` names of programs whose group was removed (`remove`). */
static int was_removed(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] != NULL && strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* The program of each old instance now: the configuration's (changed ones stop and restart
 * with the new settings, as a reload does), a made-up one for those it no longer has; with
 * the parity state of each (reexec_par.c). A group removed with `remove` stays removed. */
static int restore_all(struct pbd_daemon *d, const struct rx_state *st)
{
    const struct rx_inst *v = (const struct rx_inst *)(st + 1);
    unsigned char *done = calloc(d->cfg.n_progs + 1, 1);
    struct pbd_rxrd rd = {(const unsigned char *)(v + st->n_inst), (size_t)st->par_len, 0, 0};
    char **gone = NULL;
    size_t k, j, n_gone = 0;
    int rc;

    if (done == NULL)
        return -ENOMEM;
    rc = pbd_par_restore_daemon(d, &rd, &gone, &n_gone);
    if (rc < 0) {
        pbd_say(d, PBD_L_ERR,
                "reexec: the parity state cannot be read (%s): event queues, "
                "listeners' protocol state and stdin pipes are lost",
                strerror(-rc));
    }
    for (k = 0; k < st->n_inst; k++) {
        const struct rx_inst *x = &v[k];
        const struct pbd_program *p = pbd_config_find(&d->cfg, x->name);
        struct pbd_program *own = NULL;
        struct pbd_inst *in;
        if (p != NULL && !x->removing) {
            done[p - d->cfg.progs] = 1;
        } else {
            struct procbus_proc r;
            if (procbus_pub_get(d->pub, x->id, &r) != 0) {
                memset(&r, 0, sizeof(r));
                snprintf(r.name, sizeof(r.name), "%s", x->name);
            }
            own = pbd_adopt_made_up(&r, x->out_path, x->err_path);
            if (own == NULL)
                break;
            p = own;
        }
        in = restore(d, x, p);
        if (in == NULL) {
            if (own != NULL) {
                pbd_program_clear(own);
                free(own);
            }
            break;
        }
        in->own_prog = own;
        if (rd.err == 0)
            pbd_par_restore_inst(d, &rd, in);
        if (own != NULL) {
            in->removing = 1;
            in->want_start = 0;
            in->adopt_stop = pbd_inst_alive(in) && !x->removing;
        } else if (x->has_next || x->digest != pbd_program_digest(p)) {
            in->next_prog = p; /* its new settings once stopped */
            if (!x->has_next && pbd_inst_alive(in)) {
                in->want_start = 1;
                in->adopt_stop = 1;
            }
        }
        pbd_inst_publish(d, in);
    }
    for (j = 0; j < d->cfg.n_progs && k == st->n_inst; j++)
        if (!done[j] && !was_removed(gone, n_gone, d->cfg.progs[j].name) &&
            pbd_inst_new(d, &d->cfg.progs[j]) == NULL)
            k = 0; /* (out of memory) */
    for (j = 0; j < n_gone; j++)
        free(gone[j]);
    free(gone);
    free(done);
    return k == st->n_inst ? 0 : -ENOMEM;
}

/* Descendant (and observed) records of the segment: the trace module's seeds. */
static void seeds_from_segment(struct pbd_daemon *d)
{
    struct procbus_reader r;
    size_t n = 0, i;

    if (procbus_open(&r, procbus_pub_path(d->pub)) < 0)
        return;
    d->seeds = calloc(r.capacity ? r.capacity : 1, sizeof(*d->seeds));
    if (d->seeds != NULL && procbus_list(&r, d->seeds, r.capacity, &n) == 0) {
        for (i = 0; i < n; i++)
            if ((d->seeds[i].flags & PROCBUS_F_DESCENDANT) || d->seeds[i].name[0] == '\0')
                d->seeds[d->n_seeds++] = d->seeds[i];
    }
    procbus_close(&r);
}

int pbd_daemon_resume(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path)
{
    struct procbus_pub_opts o = {0};
    const char *var = getenv("PROCBUS_REEXEC");
    int fd = var != NULL ? atoi(var) : -1, rc;
    char env[16];
    struct rx_state *st;
    char why[PROCBUS_PATH_MAX + 128];
    size_t i;

    snprintf(env, sizeof(env), "%d", fd);
    unsetenv("PROCBUS_REEXEC"); /* (programs must not inherit it) */
    {
        /* test-only: this binary refuses to resume (the fall-back path is tested with it) */
        const char *refuse = getenv("PROCBUS_TEST_REEXEC_REFUSE");
        if (refuse != NULL && strcmp(refuse, d->self_path) == 0 && fd >= 0) {
            setenv("PROCBUS_REEXEC", env, 1);
            fall_back(d, "this binary refuses to resume (PROCBUS_TEST_REEXEC_REFUSE)");
            return -EPROTO;
        }
    }
    st = fd >= 0 ? read_state(fd, why, sizeof(why)) : NULL;
    if (st == NULL) {
        if (fd >= 0) /* the old binary reads it again */
            setenv("PROCBUS_REEXEC", env, 1);
        fall_back(d, why);
        return -EPROTO;
    }
    rc = pbd_loop_setup(d, cfg, config_path);
    if (rc == 0) {
        o.heartbeat_interval_ns = (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull;
        o.flags = PROCBUS_PUB_INHERIT;
        rc = procbus_pub_resume(&d->pub, st->seg_fd, st->seg_path, st->next_id, &o);
        if (rc < 0)
            snprintf(why, sizeof(why), "cannot take the segment %s over: %s", st->seg_path,
                     strerror(-rc));
    }
    if (rc < 0) {
        setenv("PROCBUS_REEXEC", env, 1); /* the old binary reads the state again */
        fall_back(d, rc == -EPROTO || rc == -ENOLCK ? why : strerror(-rc));
        unsetenv("PROCBUS_REEXEC");
        close(fd);
        free(st);
        return rc;
    }
    close(fd);
    {
        const char *old = getenv("PROCBUS_REEXEC_OLD");
        if (old != NULL) {
            close(atoi(old));
            unsetenv("PROCBUS_REEXEC_OLD");
        }
    }
    fcntl(st->seg_fd, F_SETFD, FD_CLOEXEC);
    pbd_ctl_adopt(&d->ctl, st->listen_fd, st->ctl_path);
    pbd_watch_add(d, d->ctl.listen_fd, &d->w_listen);
    /* the segment's claim (claim.h) closed at the execve: claim it again. A procbusd starting
     * meanwhile holds it only until the segment's lock (kept across the execve) refuses it */
    for (int tries = 0; tries < 200; tries++) {
        rc = pbd_claim_segment(st->seg_path, NULL, 0);
        if (rc != -EBUSY)
            break;
        usleep(10000);
    }
    if (rc >= 0)
        d->claim_fd = rc;
    else
        pbd_say(d, PBD_L_WARN,
                "reexec: cannot claim the segment %s again: %s (a second procbusd is refused by "
                "the segment's lock alone)",
                st->seg_path, strerror(-rc));
    rc = pbd_par_init(d, 1); /* procbusd's log, pidfile, pools (filled by restore_all) */
    if (rc < 0)
        pbd_say(d, PBD_L_WARN, "reexec: %s: going on without it", strerror(-rc));
    d->leftovers_since = st->leftovers_since;
    d->spawn_opts.nofile = st->nofile; /* (not the limit the old image raised for itself) */
    d->trace_lost_logged = st->trace_lost_logged;
    pbd_holder_start(d, 0);
    d->defer_logs = 1; /* the first commit first (the gap readers see), the logs after */
    rc = restore_all(d, st);
    if (rc < 0) {
        free(st);
        return rc;
    }
    pbd_inst_sort(d);
    pbd_pub_commit(d->pub); /* the first commit of the new image */
    pbd_inst_open_deferred(d);
    seeds_from_segment(d);
    d->adopting = 1; /* the pinned tracer is taken over, with what it read meanwhile */
    rc = pbd_trace_glue_start(d);
    if (rc < 0) {
        free(st);
        return rc;
    }
    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->sp.pid > 0)
            pbd_trace_adopt_root(d->trace, d->inst[i]->sp.pid, d->inst[i]->start_boot,
                                 d->inst[i]->id, 1);
    if (!pbd_trace_reused(d->trace))
        pbd_trace_adopting(d->trace); /* events were lost across the exec: walk /proc */
    pbd_trace_glue_sync(d, 1);
    free(d->seeds);
    d->seeds = NULL;
    d->n_seeds = 0;
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        if (in->adopt_stop) {
            in->adopt_stop = 0;
            pbd_inst_fire(d, in, PBD_EV_STOP);
        }
    }
    pbd_commit_staged(d);
    d->start_backlog = 1;
    d->reap_pending = 1; /* children that exited during the exec: their SIGCHLD may be gone */
    pbd_say(d, PBD_L_INFO,
            "re-executed in place: supervising %zu program(s); segment %s (epoch "
            "%llu, unchanged)",
            d->n_inst, procbus_pub_path(d->pub), (unsigned long long)procbus_pub_epoch(d->pub));
    if (getenv("PROCBUS_REEXEC_FELL_BACK") != NULL)
        pbd_say(d, PBD_L_WARN,
                "reexec: the new binary could not resume (%s): running this one "
                "again",
                getenv("PROCBUS_REEXEC_FELL_BACK"));
    if (st->conn_fd >= 0) {
        const char *fell = getenv("PROCBUS_REEXEC_FELL_BACK");
        char msg[1024];
        int n = fell != NULL ? snprintf(msg, sizeof(msg),
                                        "ERR the new binary could not resume (%s); procbusd pid "
                                        "%d runs %s again\n",
                                        fell, (int)getpid(), d->self_path)
                             : snprintf(msg, sizeof(msg), "procbusd pid %d now runs %s\nOK\n",
                                        (int)getpid(), d->self_path);
        if (write(st->conn_fd, msg, (size_t)n) < 0) {
            /* the client left: nothing to do */
        }
        close(st->conn_fd);
    }
    free(st);
    unsetenv("PROCBUS_REEXEC_FELL_BACK");
    return 0;
}
