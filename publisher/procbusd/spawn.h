/* spawn.h - start one program instance: fork, new session, fds, credentials, exec. */
#ifndef PROCBUSD_SPAWN_H
#define PROCBUSD_SPAWN_H

#include <sys/types.h>

#include "config.h"

struct pbd_spawned {
    pid_t pid;
    int pidfd;    /* pidfd_open(pid): readable when it exits */
    int out_fd;   /* read end of its stdout pipe, non-blocking; -1 when not captured */
    int err_fd;   /* read end of its stderr pipe; -1 when redirected to stdout or not captured */
    int ready_fd; /* read end of the readiness pipe; -1 without ready_fd */
};

/* What every spawn of this procbusd shares (set once at start-up, in struct pbd_daemon). */
struct pbd_spawn_opts {
    unsigned long long nofile; /* the programs' soft RLIMIT_NOFILE (PBD_NOFILE_KEEP: procbusd's) */
};

/*
 * Fork and exec `prog`. The child runs in a new session and process group
 * (setsid), with stdin on /dev/null, stdout/stderr on pipes when a log or a
 * ready_log wants them (else /dev/null), the readiness pipe on fd
 * prog->ready_fd, the configured directory, umask, user (when root),
 * environment additions plus PROCBUS_PROCESS_NAME / PROCBUS_GROUP_NAME, an
 * empty signal mask and default dispositions, only the descriptors above and
 * opts->nofile as its soft RLIMIT_NOFILE (spawn_setup.h). Returns 0 with *out filled, or
 * a negative errno: from fork/pipe, or the child's exec/setup error (the child
 * reports it through a close-on-exec pipe before it exits with 127), with a
 * reason in why[whylen] such as "exec /bin/nope: No such file or directory".
 */
int pbd_spawn(const struct pbd_program *prog, const struct pbd_spawn_opts *opts,
              struct pbd_spawned *out, char *why, size_t whylen);

#endif /* PROCBUSD_SPAWN_H */
