/* spawn.c - start one program instance without waiting for it: fork now, learn "exec'd" later. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn_setup.h"

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

int pbd_spawn_start(const struct pbd_program *prog, const struct pbd_spawn_opts *opts,
                    struct pbd_spawned *out, char *why, size_t whylen)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, readyp[2] = {-1, -1}, st[2] = {-1, -1};
    int gop[2] = {-1, -1};
    int capture_out = prog->out.path != NULL || prog->ready_log != NULL || prog->out.events ||
                      prog->out.capture_maxbytes || prog->kind == PBD_KIND_EVENTLISTENER;
    int capture_err = !prog->redirect_stderr && (prog->err.path != NULL || prog->ready_log ||
                                                 prog->err.events || prog->err.capture_maxbytes);
    struct pbd_child_setup c;
    pid_t pid;
    int rc, pidfd;

    memset(&c, 0, sizeof(c));
    rc = pbd_child_prepare(prog, opts->nofile, &c, why, whylen);
    if (rc < 0)
        return rc;
    if (pipe2(st, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0 ||
        (capture_out && pipe2(outp, O_CLOEXEC) < 0) ||
        (capture_err && pipe2(errp, O_CLOEXEC) < 0) ||
        (prog->ready_fd >= 3 && pipe2(readyp, O_CLOEXEC) < 0)) {
        rc = -errno;
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        pbd_spawn_hint(why, whylen, -rc);
        goto fail;
    }
    c.status_fd = st[1];
    c.stdin_fd = opts->has_stdin ? opts->stdin_fd : -1;
    c.out_fd = outp[1];
    c.err_fd = errp[1];
    c.ready_fd = readyp[1];
    c.go_rd = gop[0];
    c.go_wr = gop[1];
    c.pub = opts->pub;
    c.claim_fd = opts->claim_fd;
    c.id = opts->id;
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(why, whylen, "fork: %s", strerror(errno));
        pbd_spawn_hint(why, whylen, -rc);
        goto fail;
    }
    if (pid == 0)
        pbd_spawn_child(&c);
    pbd_child_release(&c);
    /* the child's ends: closed here before anything else is forked, so only the child holds
     * the status pipe's write end (its end of file is the child's exec or exit) */
    close(st[1]);
    st[1] = -1;
    close(gop[0]);
    gop[0] = -1;
    if (outp[1] >= 0) {
        close(outp[1]);
        outp[1] = -1;
    }
    if (errp[1] >= 0) {
        close(errp[1]);
        errp[1] = -1;
    }
    if (readyp[1] >= 0) {
        close(readyp[1]);
        readyp[1] = -1;
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        rc = -errno;
        snprintf(why, whylen, "pidfd_open: %s", strerror(errno));
        pbd_spawn_hint(why, whylen, -rc);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0); /* SIGKILLed: returns at once */
        goto fail;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    out->status_fd = st[0];
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    out->ready_fd = readyp[0];
    out->go_fd = gop[1];
    fcntl(out->status_fd, F_SETFL, O_NONBLOCK);
    if (out->out_fd >= 0)
        fcntl(out->out_fd, F_SETFL, O_NONBLOCK);
    if (out->err_fd >= 0)
        fcntl(out->err_fd, F_SETFL, O_NONBLOCK);
    if (out->ready_fd >= 0)
        fcntl(out->ready_fd, F_SETFL, O_NONBLOCK);
    return 0;
fail:
    pbd_child_release(&c);
    close_pair(outp);
    close_pair(errp);
    close_pair(readyp);
    close_pair(st);
    close_pair(gop);
    return rc;
}

void pbd_spawn_go(struct pbd_spawned *sp)
{
    if (sp->go_fd < 0)
        return;
    /* a pipe with room for a byte (a fresh one): never blocks; EPIPE (SIGPIPE is ignored) when
     * the child died meanwhile */
    if (write(sp->go_fd, "g", 1) < 0) {
        /* the child is gone: its exit says the rest */
    }
    close(sp->go_fd);
    sp->go_fd = -1;
}

enum pbd_exec_status pbd_spawn_exec_status(struct pbd_spawned *sp, struct pbd_spawn_error *e)
{
    struct pbd_spawn_error got;
    size_t have = 0;

    if (sp->status_fd < 0)
        return PBD_EXEC_DONE;
    /* the child writes its report in one write (smaller than PIPE_BUF: atomic), then exits */
    for (;;) {
        ssize_t n = read(sp->status_fd, (char *)&got + have, sizeof(got) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && have == 0)
            return PBD_EXEC_PENDING;
        if (n > 0) {
            have += (size_t)n;
            if (have < sizeof(got))
                continue;
            *e = got;
            e->step[sizeof(e->step) - 1] = '\0';
            return PBD_EXEC_FAILED;
        }
        if (n == 0 && have == 0)
            return PBD_EXEC_DONE; /* end of file without a report: it exec'd */
        /* a read error, or a truncated report: say so rather than guess */
        memset(e, 0, sizeof(*e));
        e->err = n < 0 ? errno : EPROTO;
        snprintf(e->step, sizeof(e->step), "exec-status pipe");
        return PBD_EXEC_FAILED;
    }
}
