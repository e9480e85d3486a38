/* spawn.c - start one program instance: fork, new session, fds, credentials, exec. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn_setup.h"

/* What the child reports through the status pipe when setup or exec fails. */
struct child_error {
    int err;
    char step[48];
};

static void child_fail(int fd, const char *step, int err)
{
    struct child_error ce;

    memset(&ce, 0, sizeof(ce));
    ce.err = err;
    snprintf(ce.step, sizeof(ce.step), "%s", step);
    if (write(fd, &ce, sizeof(ce)) < 0) {
        /* nothing more to do */
    }
    _exit(127);
}

static int move_fd(int from, int to)
{
    if (from == to)
        return fcntl(to, F_SETFD, 0); /* keep it across exec */
    return dup2(from, to) < 0 ? -1 : 0;
}

int pbd_spawn(const struct pbd_program *prog, const struct pbd_spawn_opts *opts,
              struct pbd_spawned *out, char *why, size_t whylen)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, readyp[2] = {-1, -1}, st[2] = {-1, -1};
    int capture_out = prog->out.path != NULL || prog->ready_log != NULL;
    int capture_err = !prog->redirect_stderr && (prog->err.path != NULL || prog->ready_log);
    char **env;
    struct child_error ce;
    struct pbd_creds creds;
    sigset_t all;
    ssize_t n;
    pid_t pid;
    int rc;

    rc = pbd_creds_resolve(prog, &creds, why, whylen);
    if (rc < 0)
        return rc;
    env = pbd_env_build(prog, &creds);
    if (env == NULL) {
        pbd_creds_free(&creds);
        return -ENOMEM;
    }
    if (pipe2(st, O_CLOEXEC) < 0 || (capture_out && pipe2(outp, O_CLOEXEC) < 0) ||
        (capture_err && pipe2(errp, O_CLOEXEC) < 0) ||
        (prog->ready_fd >= 3 && pipe2(readyp, O_CLOEXEC) < 0)) {
        rc = -errno;
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        pbd_spawn_hint(why, whylen, -rc);
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(why, whylen, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        int devnull_err = errno; /* kept: what follows may change errno (EMFILE must show) */
        const char *step = "";
        struct sigaction dfl;
        int s;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                sigaction(s, &dfl, NULL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (setsid() < 0)
            child_fail(st[1], "setsid", errno);
        if (devnull < 0)
            child_fail(st[1], "stdin", devnull_err);
        /* only 0-2 and the readiness fd reach the program; its old RLIMIT_NOFILE */
        pbd_child_fds_and_limits(opts->nofile);
        /* fds 0-2 first; the readiness fd last so it may not clobber them */
        if (move_fd(devnull, 0) < 0)
            child_fail(st[1], "stdin", errno);
        if (move_fd(capture_out ? outp[1] : devnull, 1) < 0)
            child_fail(st[1], "stdout", errno);
        if (move_fd(prog->redirect_stderr ? 1 : capture_err ? errp[1] : devnull, 2) < 0)
            child_fail(st[1], "stderr", errno);
        if (prog->ready_fd >= 3 && move_fd(readyp[1], prog->ready_fd) < 0)
            child_fail(st[1], "ready_fd", errno);
        if (prog->umask != (mode_t)-1)
            umask(prog->umask);
        if (prog->directory != NULL && chdir(prog->directory) < 0)
            child_fail(st[1], "chdir", errno);
        if (pbd_creds_apply(&creds, &step) < 0)
            child_fail(st[1], step, errno);
        execvpe(prog->argv[0], prog->argv, env);
        child_fail(st[1], "exec", errno);
    }
    pbd_env_free(env);
    env = NULL;
    pbd_creds_free(&creds);
    close(st[1]);
    st[1] = -1;
    /* EOF: exec succeeded (the pipe was close-on-exec); data: it failed */
    do
        n = read(st[0], &ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    close(st[0]);
    st[0] = -1;
    if (n == (ssize_t)sizeof(ce)) {
        waitpid(pid, NULL, 0);
        rc = -ce.err;
        if (strcmp(ce.step, "exec") == 0)
            snprintf(why, whylen, "exec %s: %s", prog->argv[0], strerror(ce.err));
        else
            snprintf(why, whylen, "%s: %s", ce.step, strerror(ce.err));
        pbd_spawn_hint(why, whylen, ce.err);
        goto fail;
    }
    out->pid = pid;
    out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    out->ready_fd = readyp[0];
    if (outp[1] >= 0)
        close(outp[1]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (readyp[1] >= 0)
        close(readyp[1]);
    if (out->out_fd >= 0)
        fcntl(out->out_fd, F_SETFL, O_NONBLOCK);
    if (out->err_fd >= 0)
        fcntl(out->err_fd, F_SETFL, O_NONBLOCK);
    if (out->ready_fd >= 0)
        fcntl(out->ready_fd, F_SETFL, O_NONBLOCK);
    if (out->pidfd < 0) {
        rc = -errno;
        snprintf(why, whylen, "pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        out->pid = 0;
        goto fail;
    }
    return 0;
fail:
    pbd_env_free(env);
    pbd_creds_free(&creds);
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (readyp[i] >= 0)
            close(readyp[i]);
        if (st[i] >= 0)
            close(st[i]);
    }
    return rc;
}
