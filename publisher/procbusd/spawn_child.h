/* spawn_child.h - a spawned program's side of the fork: what it is given, and its set-up. */
#ifndef PROCBUSD_SPAWN_CHILD_H
#define PROCBUSD_SPAWN_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "spawn_setup.h"

struct procbus_pub;

/* What the child writes to the exec-status pipe when a setup step or exec fails (then it
 * exits with 127); nothing at all when exec succeeds (the pipe is close-on-exec). */
struct pbd_spawn_error {
    int err;       /* errno of the step */
    char step[48]; /* "setsid", "stdin", "stdout", "stderr", "ready_fd", "chdir", "setgroups",
                    * "setgid", "setuid", "exec" */
};

/*
 * Everything the child side needs, prepared by the parent before fork (so that the child
 * only makes system calls): the program, its credentials and environment (spawn_setup.h),
 * the programs' descriptor limit, and the child's ends of the pipes.
 */
struct pbd_child_setup {
    const struct pbd_program *prog;
    struct pbd_creds creds;        /* pbd_creds_resolve */
    char **env;                    /* pbd_env_build */
    unsigned long long nofile;     /* the programs' soft RLIMIT_NOFILE (struct pbd_spawn_opts) */
    int status_fd;                 /* write end of the exec-status pipe (close-on-exec) */
    int stdin_fd;                  /* the program's fd 0 (a pipe procbusd holds, an fcgi
                                      socket), or -1: /dev/null */
    int out_fd, err_fd, ready_fd;  /* write ends of the output / readiness pipes, or -1 */
    int go_rd, go_wr;              /* the go pipe (spawn.h: pbd_spawn_go): the child closes
                                    * go_wr and waits for a byte on go_rd before its exec */
    const struct procbus_pub *pub; /* procbusd's segment (the mapping the child shares) and */
    uint64_t id;                   /* the run's record: published? (end of file on go_rd) */
    int claim_fd;                  /* closed first (struct pbd_spawn_opts); <= 2: none; the
                                    * segment's fd (procbus_pub_fd of pub) next */
};

/*
 * Parent side, before fork: resolve the program's credentials and build its environment
 * into *c (the fds are the caller's to set). Returns 0, or a negative errno with "STEP:
 * reason" in why: -ENOENT "user NAME: no such user", -ENOMEM. Free with pbd_child_release
 * (after fork, in the parent).
 */
int pbd_child_prepare(const struct pbd_program *prog, unsigned long long nofile,
                      struct pbd_child_setup *c, char *why, size_t whylen);

/* Free what pbd_child_prepare allocated. Safe on a zeroed or already released setup. */
void pbd_child_release(struct pbd_child_setup *c);

/*
 * Child side, right after fork; never returns. Default signal dispositions and an empty
 * mask, a new session (setsid), stdin on c->stdin_fd (else /dev/null), only fds 0-2 (and the
 * readiness fd) reaching the program with its own RLIMIT_NOFILE (pbd_child_fds_and_limits),
 * stdout/stderr on the pipes (else /dev/null), the readiness pipe on fd prog->ready_fd,
 * umask, directory, credentials, then a byte from c->go_rd, then exec with c->env. End of
 * file on c->go_rd means procbusd is gone (died, or closed it to drop the run): the child
 * execs only if the segment's committed snapshot has this run (record c->id with its pid,
 * procbus_pub_committed: procbusd died after the commit and before the byte; its successor
 * adopts the run), else exits 127 quietly (nobody knows of it). A failed
 * step writes a struct
 * pbd_spawn_error (its errno kept from the call that failed) to c->status_fd and exits 127.
 */
void pbd_spawn_child(const struct pbd_child_setup *c) __attribute__((noreturn));

#endif /* PROCBUSD_SPAWN_CHILD_H */
