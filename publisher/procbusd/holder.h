/* holder.h - the fd holder: a small process that keeps programs' pipes open across procbusd's
 * death. */
#ifndef PROCBUSD_HOLDER_H
#define PROCBUSD_HOLDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A program's output pipes must outlive procbusd: when procbusd is killed, a program that
 * writes to a pipe nobody holds the read end of dies of SIGPIPE, and what it wrote meanwhile
 * is lost. So procbusd starts a holder (procbusd itself, exec'd as `procbusd --fd-holder FD
 * SEGMENT`, in a session of its own) and hands it a duplicate of each run's pipe read ends
 * (stdout, stderr, readiness) and of its stdin pipe's write end over a unix socket
 * (SCM_RIGHTS). The holder never reads or writes them: the bytes stay in the pipe until a
 * procbusd reads them, and a program reading its stdin goes on waiting (as under supervisord)
 * instead of seeing its end. The next procbusd on the same segment connects to the same
 * holder, takes the descriptors back (TAKE) and logs what was written meanwhile, in order.
 *
 * The socket is `.NAME.fdhold` beside the segment file (its folder is one only trusted users
 * can change, shm/segment.c); both sides check the other's uid (SO_PEERCRED): root or the same
 * user. The holder exits on QUIT (procbusd's clean shutdown), or, with no procbusd connected,
 * once the segment file is gone or says it was shut down cleanly, or once every pipe it holds
 * has no writer left and nothing in it (checked every second).
 *
 * What this covers: procbusd killed (any signal, any instruction), the holder alive. Not
 * covered: the holder killed too (every procbusd process at once: the pipes close, programs
 * get SIGPIPE on their next write; what was in the pipes is lost), or a program writing more
 * than the pipe holds while no procbusd runs (it blocks until the next procbusd reads).
 */

/* One run's pipes as the holder keeps them (the descriptors travel beside the message). */
struct pbd_hold_entry {
    char name[64];       /* the program instance (process_name) */
    int32_t pid;         /* the run's main process */
    uint64_t start_boot; /* its start (CLOCK_BOOTTIME ns, clock-tick resolution) */
    uint64_t digest;     /* the program's settings when it was started (adopt.c) */
    uint32_t fds;        /* PBD_HOLD_OUT | PBD_HOLD_ERR | PBD_HOLD_READY | PBD_HOLD_IN */
    uint32_t reserved;
    char out_path[1024]; /* its log files as opened ("" if none or too long; an AUTO log's */
    char err_path[1024]; /* own name): a successor logs on there (autolog.c, adopt.c) */
};
/* The descriptors of an entry, in this order (fds[i] goes with bit 1 << i). */
#define PBD_HOLD_OUT   0x1u /* stdout's read end */
#define PBD_HOLD_ERR   0x2u /* stderr's read end */
#define PBD_HOLD_READY 0x4u /* the readiness pipe's read end (ready_fd) */
#define PBD_HOLD_IN    0x8u /* stdin's write end (parity.h: supervisord gives every program one) */
#define PBD_HOLD_NFDS  4

/* procbusd's connection to its holder. */
struct pbd_holder {
    int fd;    /* -1: none (the output of programs does not survive procbusd then) */
    pid_t pid; /* the holder process (forked here, or its peer credentials: it listens again
                * as it starts), 0 if not known; never attributed to a program */
    char path[108];
};

/* The holder process: serve the listening socket `listen_fd` for the segment at `seg_path`.
 * Returns the process exit code. */
int pbd_holder_main(int listen_fd, const char *seg_path);

/*
 * Connect to the holder of the segment at `seg_path`, starting one (exec of /proc/self/exe) when
 * none answers. Returns 1 (connected to a holder that was already there: a predecessor's),
 * 0 (a new one), or a negative errno with the reason in why (h->fd stays -1): the socket path
 * is too long, another user's holder is at the name (-EPERM), fork/exec failed.
 */
int pbd_holder_connect(struct pbd_holder *h, const char *seg_path, char *why, size_t whylen);

/*
 * Take back every entry the holder keeps: cb(arg, entry, fds) for each, fds[0..3] the stdout,
 * stderr and readiness read ends and the stdin write end (-1 where e->fds says none; the callee
 * owns them, close-on-exec set). The holder keeps its own copies until DROP or a new PUT for the
 * same name. Waits up to about a second for the holder's answer. Returns the number of entries, or
 * a negative errno.
 */
int pbd_holder_take(struct pbd_holder *h,
                    void (*cb)(void *arg, const struct pbd_hold_entry *e, int fds[PBD_HOLD_NFDS]),
                    void *arg);

/* Hand the holder a run's pipe ends (fds[i] -1: none), replacing what it kept under e->name.
 * Never blocks. 0 or a negative errno. */
int pbd_holder_put(struct pbd_holder *h, const struct pbd_hold_entry *e,
                   const int fds[PBD_HOLD_NFDS]);

/* The holder closes what it keeps under `name` (the pipes were read to their end, or the
 * program was removed). Never blocks. */
void pbd_holder_drop(struct pbd_holder *h, const char *name);

/* Clean shutdown: the holder exits (after closing everything it keeps); the connection closes. */
void pbd_holder_quit(struct pbd_holder *h);

/* Close the connection only (the holder waits for the next procbusd). */
void pbd_holder_close(struct pbd_holder *h);

#endif /* PROCBUSD_HOLDER_H */
