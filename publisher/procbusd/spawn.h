/* spawn.h - start one program instance without waiting for it: fork now, learn "exec'd" later. */
#ifndef PROCBUSD_SPAWN_H
#define PROCBUSD_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "spawn_child.h"

struct pbd_spawned {
    pid_t pid;
    int pidfd;     /* pidfd_open(pid): readable when it exits */
    int status_fd; /* read end of the exec-status pipe, non-blocking, until the exec's outcome
                    * is known (pbd_spawn_exec_status); -1 after */
    int out_fd;    /* read end of its stdout pipe, non-blocking; -1 when not captured */
    int err_fd;    /* read end of its stderr pipe; -1 when redirected to stdout or not captured */
    int ready_fd;  /* read end of the readiness pipe; -1 without ready_fd */
    int go_fd;     /* write end of the go pipe: the child execs only once a byte is written
                    * (pbd_spawn_go), and never if procbusd dies first; -1 after */
};

/* What every spawn of this procbusd shares (set once at start-up, in struct pbd_daemon). */
struct pbd_spawn_opts {
    unsigned long long nofile; /* the programs' soft RLIMIT_NOFILE (PBD_NOFILE_KEEP: procbusd's) */
    int has_stdin;             /* this spawn: stdin_fd is the program's fd 0 (not /dev/null) */
    int stdin_fd;              /* an event listener's pipe, an fcgi-program's socket */
    const struct procbus_pub *pub; /* this spawn: the segment and the run's record id, for */
    uint64_t id;                   /* the child's check at end of file on the go pipe */
    int claim_fd; /* this spawn: procbusd's segment claim (claim.h), closed by the child at once
                   * (it would hold the claim while it waits to exec, past procbusd's death);
                   * <= 2: none */
};

/*
 * Fork a child that sets itself up as pbd_spawn_child (spawn_child.h) says (its stdin:
 * opts->stdin_fd with opts->has_stdin) and execs `prog`, and return at once: the exec's outcome
 * arrives later on out->status_fd (watch it for input, then call pbd_spawn_exec_status). Returns 0
 * with *out filled, or a negative errno from the parent's side with "STEP: reason" in why[whylen]
 * ("user x: no such user", "pipe: ...", "fork: ...", "pidfd_open: ...", with pbd_spawn_hint's
 * advice for EMFILE and ENFILE); then nothing is left open or running. The work done here is
 * bounded: a few pipes, one fork, one pidfd_open; the child's setup and exec run on their own.
 */
int pbd_spawn_start(const struct pbd_program *prog, const struct pbd_spawn_opts *opts,
                    struct pbd_spawned *out, char *why, size_t whylen);

/*
 * Let the child exec: one byte on sp->go_fd, which is closed (-1). The child of
 * pbd_spawn_start waits for it before its exec, so that procbusd can publish the run (its pid)
 * before the program runs: a procbusd killed between the fork and this call leaves no program
 * running that its successor does not know of (the child finds the pipe at end of file and
 * exits 127 without exec'ing, unless the run was committed: spawn_child.h). Nothing when
 * go_fd is -1. Never blocks.
 */
void pbd_spawn_go(struct pbd_spawned *sp);

/* What the exec-status pipe said so far. */
enum pbd_exec_status {
    PBD_EXEC_PENDING = 0, /* nothing decisive yet: the child is still setting up */
    PBD_EXEC_DONE,        /* end of file without a report: the program exec'd */
    PBD_EXEC_FAILED,      /* the child reported a failed step (*e filled); it exits 127 */
};

/*
 * Read the exec-status pipe without blocking. After DONE or FAILED the pipe has nothing more
 * to say: the caller unwatches and closes sp->status_fd (other children forked meanwhile may
 * hold its read end until they exec, so a plain close would not end an epoll registration).
 * Once the child has exited, the answer is DONE or FAILED. With status_fd -1: DONE.
 */
enum pbd_exec_status pbd_spawn_exec_status(struct pbd_spawned *sp, struct pbd_spawn_error *e);

#endif /* PROCBUSD_SPAWN_H */
