/* exit-floor.c - the floor of exit-to-visible: a minimal pidfd + epoll loop publishing one record.
 */
#define _GNU_SOURCE
#include "procbus_pub.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: exit-floor SEGMENT NAME COMMAND [ARG...]
 *
 * What procbusd does for one program with autorestart = true and startsecs = 0, and nothing
 * else: run COMMAND (posix_spawn), watch its pidfd in epoll, and when it exits publish its
 * record (named NAME) as EXITED with libprocbus-pub in one commit, then run it again and
 * publish it RUNNING. A heartbeat every 500 ms; SIGTERM or SIGINT: kill the program, close
 * the segment cleanly (readers see a shutdown) and exit 0. procbusd-bench measures it with
 * the same reader as procbusd, in the same run: the floor procbusd's figures stand beside.
 */

extern char **environ;

struct floor {
    struct procbus_pub *pub;
    struct procbus_proc rec;
    char **argv;
    pid_t pid;
    int pidfd, epfd;
};

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int publish(struct floor *f, uint16_t state)
{
    int rc;

    f->rec.state = state;
    f->rec.state_since_ns = now_ns(CLOCK_REALTIME);
    rc = procbus_pub_upsert(f->pub, &f->rec);
    if (rc == 0)
        rc = procbus_pub_commit(f->pub);
    if (rc < 0)
        fprintf(stderr, "exit-floor: publish: %s\n", strerror(-rc));
    return rc;
}

/* Run the program and watch it; 0 or -1. */
static int run(struct floor *f)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int rc = posix_spawnp(&f->pid, f->argv[0], NULL, NULL, f->argv, environ);

    if (rc != 0) {
        fprintf(stderr, "exit-floor: %s: %s\n", f->argv[0], strerror(rc));
        return -1;
    }
    f->pidfd = (int)syscall(SYS_pidfd_open, f->pid, 0);
    ev.data.fd = f->pidfd;
    if (f->pidfd < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->pidfd, &ev) < 0) {
        fprintf(stderr, "exit-floor: pidfd: %s\n", strerror(errno));
        return -1;
    }
    f->rec.pid = f->pid;
    f->rec.start_realtime_ns = now_ns(CLOCK_REALTIME);
    f->rec.start_boot_ns = now_ns(CLOCK_BOOTTIME);
    f->rec.exit_kind = PROCBUS_EXIT_NONE;
    f->rec.exit_code = 0;
    return publish(f, PROCBUS_STATE_RUNNING) < 0 ? -1 : 0;
}

/* The pidfd is readable: reap, publish EXITED (the figure being measured), run it again. */
static int on_exit_event(struct floor *f)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)f->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return 0;
    f->rec.exit_kind = si.si_code == CLD_EXITED ? PROCBUS_EXIT_CODE : PROCBUS_EXIT_SIGNAL;
    f->rec.exit_code = si.si_status;
    if (publish(f, PROCBUS_STATE_EXITED) < 0)
        return -1;
    epoll_ctl(f->epfd, EPOLL_CTL_DEL, f->pidfd, NULL);
    close(f->pidfd);
    f->pidfd = -1;
    f->pid = 0;
    f->rec.restarts++;
    return run(f);
}

int main(int argc, char **argv)
{
    struct procbus_pub_opts o = {0};
    struct epoll_event ev = {.events = EPOLLIN};
    struct floor f;
    sigset_t mask;
    uint64_t next_hb = 0;
    int sigfd, rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: exit-floor SEGMENT NAME COMMAND [ARG...]\n");
        return 2;
    }
    memset(&f, 0, sizeof(f));
    f.argv = argv + 3;
    f.pidfd = -1;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    f.epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.data.fd = sigfd;
    if (sigfd < 0 || f.epfd < 0 || epoll_ctl(f.epfd, EPOLL_CTL_ADD, sigfd, &ev) < 0) {
        perror("exit-floor");
        return 1;
    }
    o.segment = argv[1];
    o.capacity = 16;
    if ((rc = procbus_pub_open(&f.pub, &o)) < 0) {
        fprintf(stderr, "exit-floor: %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    f.rec.id = procbus_pub_new_id(f.pub);
    snprintf(f.rec.name, sizeof(f.rec.name), "%s", argv[2]);
    snprintf(f.rec.comm, sizeof(f.rec.comm), "%.15s", argv[3]);
    rc = 1;
    if (run(&f) < 0)
        goto out;
    for (;;) {
        struct epoll_event got[4];
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        int n, i;

        if (now >= next_hb) {
            procbus_pub_heartbeat(f.pub);
            next_hb = now + 500000000ull;
        }
        n = epoll_wait(f.epfd, got, 4, (int)((next_hb - now) / 1000000ull) + 1);
        if (n < 0 && errno != EINTR)
            goto out;
        for (i = 0; i < n; i++) {
            if (got[i].data.fd == sigfd) {
                rc = 0;
                goto out;
            }
            if (on_exit_event(&f) < 0)
                goto out;
        }
    }
out:
    if (f.pid > 0) {
        kill(f.pid, SIGKILL);
        waitpid(f.pid, NULL, 0);
    }
    procbus_pub_close(f.pub, 0);
    return rc;
}
