/* spawn_child.c - a spawned program's side of the fork: what it is given, and its set-up. */
#define _GNU_SOURCE
#include "spawn_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus_pub.h"

/* ---- parent side, before fork ---- */

int pbd_child_prepare(const struct pbd_program *prog, unsigned long long nofile,
                      struct pbd_child_setup *c, char *why, size_t whylen)
{
    int rc;

    c->prog = prog;
    c->env = NULL;
    c->nofile = nofile;
    rc = pbd_creds_resolve(prog, &c->creds, why, whylen);
    if (rc < 0)
        return rc;
    c->env = pbd_env_build(prog, &c->creds);
    if (c->env == NULL) {
        pbd_creds_free(&c->creds);
        snprintf(why, whylen, "environment: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    return 0;
}

void pbd_child_release(struct pbd_child_setup *c)
{
    pbd_env_free(c->env);
    c->env = NULL;
    pbd_creds_free(&c->creds);
}

/* ---- child side ---- */

static void child_fail(int fd, const char *step, int err) __attribute__((noreturn));
static void child_fail(int fd, const char *step, int err)
{
    struct pbd_spawn_error ce;

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

void pbd_spawn_child(const struct pbd_child_setup *c)
{
    const struct pbd_program *prog = c->prog;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int devnull_err = errno; /* kept: what follows may change errno (EMFILE must show) */
    const char *step = "";
    int seg_fd = c->pub != NULL ? procbus_pub_fd(c->pub) : -1;
    struct sigaction dfl;
    sigset_t all;
    int s;

    if (c->claim_fd > 2) /* a successor of a procbusd killed while we wait must claim at once */
        close(c->claim_fd);
    if (seg_fd > 2) /* and take the segment's lock (a flock, shared with this copy) without
                     * its 100 ms of retries; the mapping stays for procbus_pub_committed */
        close(seg_fd);
    if (c->go_wr >= 0)
        close(c->go_wr); /* only procbusd holds it: its death is our end of file */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (setsid() < 0)
        child_fail(c->status_fd, "setsid", errno);
    if (devnull < 0)
        child_fail(c->status_fd, "stdin", devnull_err);
    /* only 0-2 and the readiness fd reach the program; its old RLIMIT_NOFILE */
    pbd_child_fds_and_limits(c->nofile);
    /* fds 0-2 first; the readiness fd last so it may not clobber them */
    if (move_fd(c->stdin_fd >= 0 ? c->stdin_fd : devnull, 0) < 0)
        child_fail(c->status_fd, "stdin", errno);
    if (move_fd(c->out_fd >= 0 ? c->out_fd : devnull, 1) < 0)
        child_fail(c->status_fd, "stdout", errno);
    if (move_fd(prog->redirect_stderr ? 1 : c->err_fd >= 0 ? c->err_fd : devnull, 2) < 0)
        child_fail(c->status_fd, "stderr", errno);
    if (prog->ready_fd >= 3 && c->ready_fd >= 0 && move_fd(c->ready_fd, prog->ready_fd) < 0)
        child_fail(c->status_fd, "ready_fd", errno);
    if (prog->umask != (mode_t)-1)
        umask(prog->umask);
    if (prog->directory != NULL && chdir(prog->directory) < 0)
        child_fail(c->status_fd, "chdir", errno);
    if (pbd_creds_apply(&c->creds, &step) < 0)
        child_fail(c->status_fd, step, errno);
    if (c->go_rd >= 0) { /* published first: run only once procbusd says so */
        char go;
        ssize_t n;
        while ((n = read(c->go_rd, &go, 1)) < 0 && errno == EINTR)
            ;
        /* end of file: procbusd is gone. Published (it died between the commit and the byte):
         * run, its successor adopts us; else nobody knows of us (or the run was dropped:
         * then nothing was committed since the fork) */
        if (n != 1 && !procbus_pub_committed(c->pub, c->id, (int32_t)getpid()))
            _exit(127);
    }
    execvpe(prog->argv[0], prog->argv, c->env);
    child_fail(c->status_fd, "exec", errno);
}
