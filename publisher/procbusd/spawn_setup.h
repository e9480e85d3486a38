/* spawn_setup.h - what a program inherits: its environment, credentials, descriptors, limits. */
#ifndef PROCBUSD_SPAWN_SETUP_H
#define PROCBUSD_SPAWN_SETUP_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "userdb.h"

/* PATH of a clean environment (clean_environment = true): systemd's default. */
#define PBD_CLEAN_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * The credentials a program instance runs with, resolved in procbusd before
 * fork (the passwd and group databases are not async-signal-safe).
 */
struct pbd_creds {
    int change;           /* 1: switch to uid/gid/groups in the child (procbusd is root) */
    struct pbd_user user; /* valid when the program has user= */
    int has_user;
    gid_t *groups; /* supplementary groups (getgrouplist), malloc'd */
    int n_groups;
};

/*
 * Resolve prog->user (a name or a uid) when procbusd is root. Returns 0 with
 * *c filled (c->change 0 without user= or when procbusd is not root: the
 * configuration check refused user= of another account then), or a negative
 * errno with a reason in why: -ENOENT (no such user), -ENOMEM. Free with
 * pbd_creds_free.
 */
int pbd_creds_resolve(const struct pbd_program *prog, struct pbd_creds *c, char *why,
                      size_t whylen);

void pbd_creds_free(struct pbd_creds *c);

/*
 * Child side, after fork: setgroups, setgid, setuid as c says. Returns 0, or
 * -1 with errno set and *step naming the call that failed. Async-signal-safe.
 */
int pbd_creds_apply(const struct pbd_creds *c, const char **step);

/*
 * The environment of a program instance, built before fork:
 *   procbusd's own environment, or only PBD_CLEAN_PATH with clean_environment;
 *   for a program of another user: HOME, USER, LOGNAME, SHELL of that user;
 *   supervisord's SUPERVISOR_ENABLED=1, SUPERVISOR_SERVER_URL (when prog->serverurl),
 *   SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME;
 *   the program's environment= (after [supervisord]'s), which wins;
 *   PROCBUS_PROCESS_NAME and PROCBUS_GROUP_NAME.
 * A later entry of the same KEY replaces an earlier one in place.
 * Returns a NULL-terminated vector, or NULL when out of memory; free with
 * pbd_env_free.
 */
char **pbd_env_build(const struct pbd_program *prog, const struct pbd_creds *c);

void pbd_env_free(char **env);

/* pbd_child_fds_and_limits' nofile: leave RLIMIT_NOFILE as procbusd has it. */
#define PBD_NOFILE_KEEP (~0ULL)

/*
 * Child side, before exec: mark every descriptor >= 3 close-on-exec
 * (close_range(CLOSE_RANGE_CLOEXEC), else one fcntl each up to the fd limit),
 * so the program gets only 0-2 and what is moved into place afterwards (its
 * ready_fd), while the exec-status pipe still works. Then lower the soft
 * RLIMIT_NOFILE to `nofile`, the one procbusd was started with before raising
 * its own (pbd_nofile_raise; PBD_NOFILE_KEEP: leave it). Async-signal-safe;
 * errors are ignored (best effort before exec).
 */
void pbd_child_fds_and_limits(unsigned long long nofile);

/*
 * procbusd's start-up (main, once, before any spawn): raise the soft
 * RLIMIT_NOFILE to the hard limit. *programs gets the old soft limit, which
 * programs should get back (pbd_child_fds_and_limits: programs that use
 * select() keep FD_SETSIZE's limit), or PBD_NOFILE_KEEP when nothing was
 * raised. Returns 0, or a negative errno (the limit then stays as it was).
 */
int pbd_nofile_raise(unsigned long long *programs);

/* The soft RLIMIT_NOFILE procbusd runs with now (for messages), or -1. */
long long pbd_nofile_current(void);

/* Append to a spawn failure's reason in why[whylen] what to do about errno `err` (EMFILE,
 * ENFILE: the descriptor limit and the key that raises it); nothing for other errors. */
void pbd_spawn_hint(char *why, size_t whylen, int err);

#endif /* PROCBUSD_SPAWN_SETUP_H */
