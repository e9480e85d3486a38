/* daemon.h - procbusd's supervisor as main.c sees it: its state, set-up, loop and tear-down. */
#ifndef PROCBUSD_DAEMON_H
#define PROCBUSD_DAEMON_H

#include <regex.h>
#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "ctl_server.h"
#include "holder.h"
#include "logfile.h"
#include "procbus_abi.h"
#include "sampler.h"
#include "spawn.h"
#include "trace.h"

struct procbus_pub;
struct pbd_inst;
struct pbd_par;      /* parity.h: the daemon's supervisord-parity state */
struct pbd_par_inst; /* parity.h: an instance's */

/* What an epoll registration points at. */
enum pbd_watch_kind {
    PBD_W_SIGNAL,
    PBD_W_TIMER,
    PBD_W_LISTEN,
    PBD_W_CONN,
    PBD_W_PIDFD,
    PBD_W_OUT,
    PBD_W_ERR,
    PBD_W_READY,
    PBD_W_EXEC, /* the exec-status pipe of a run still setting up */
    PBD_W_TRACE,
    PBD_W_URGENT, /* d->epfd_urgent, inside d->epfd: what it holds is ready */
    PBD_W_PROBE,  /* the pidfd of a re-exec's probe of the new binary (reexec.c) */
    PBD_W_HOLDER  /* the fd holder's connection: readable when the holder died */
};

struct pbd_watch {
    enum pbd_watch_kind kind;
    struct pbd_inst *inst; /* PBD_W_PIDFD .. PBD_W_EXEC */
    int slot;              /* PBD_W_CONN */
};

enum pbd_timer { PBD_T_NONE = 0, PBD_T_STARTSECS, PBD_T_RETRY, PBD_T_STOPWAIT };

/* One supervised program instance at run time. */
struct pbd_inst {
    const struct pbd_program *prog;      /* in d->cfg, or an older config while it stops */
    const struct pbd_program *next_prog; /* reload changed it: switch once stopped */
    uint64_t id;                         /* its record id */
    uint16_t state;                      /* enum procbus_state */
    struct pbd_spawned sp;               /* pid 0 / fds -1 when none */
    pid_t last_pid;                      /* the pid of the current or last run (published) */
    pid_t prev_pid;                      /* last_pid before this run's fork (a failed spawn
                                          * puts it back: the program never ran) */
    struct pbd_watch w_pid, w_out, w_err, w_ready, w_exec;
    int spawn_failed;                 /* this run's child reported a failed step (spawn_err) */
    struct pbd_spawn_error spawn_err; /* ... and which: acted on once the child is reaped */
    int queued;                       /* waits in d->spawnq for the loop's spawn phase */
    struct pbd_inst *q_prev, *q_next; /* its place in d->spawnq */
    struct pbd_log *out_log, *err_log;
    struct pbd_lines *lines; /* [0] stdout, [1] stderr: allocated only with ready_log */
    regex_t ready_re;
    int has_re;
    int failures;         /* failed starts in a row (supervisord's backoff count) */
    uint64_t limit_start; /* the start limit's window: its first start (CLOCK_MONOTONIC ns) */
    int limit_count;      /* starts in that window */
    int unpublished;      /* its record was refused (segment full): it must not run */
    uint32_t restarts;    /* spawns after the first */
    int ever_started;
    enum pbd_timer timer;
    uint64_t deadline; /* CLOCK_MONOTONIC ns */
    int want_start;    /* start once its dependencies allow */
    int removing;      /* removed by a reload: drop its record once stopped */
    uint8_t exit_kind, core;
    int32_t exit_code;
    uint64_t start_real, start_boot, since;
    uint64_t exit_real; /* the kernel's time of the main process's exit (CLOCK_REALTIME; 0:
                         * not known): the `since` of the state its exit leads to */
    uint64_t cpu_ns, rss;
    uint64_t kill_since; /* CLOCK_MONOTONIC: a stop's kill passes began (killpass.c) */
    uint8_t emptying;    /* STOPPING, main process gone, its tree not empty yet */
    uint8_t kill_warned;
    uint8_t group_gone;       /* its process group was found empty: its pgid may be reused */
    struct pbd_par_inst *par; /* AUTO log names, event listener state (parity.h); or NULL */
    /* crash-only (adopt.c): */
    uint8_t adopted;       /* its main process was started by an earlier procbusd: not our
                            * child, its exit status comes from the tracer (or is unknown) */
    uint8_t exit_unknown;  /* its last run ended and nothing saw how (PROCBUS_F_EXIT_UNKNOWN) */
    uint8_t adopt_dead;    /* adoption found its process gone: the exit is decided once the
                            * tracer's backlog is read */
    uint8_t adopt_stop;    /* adoption: removed or changed by the configuration: stop it */
    pid_t adopt_ppid;      /* an adopted process's parent (its reaper since procbusd died) */
    uint8_t adopt_exiting; /* adopted while exiting (or a zombie): its end is near */
    struct pbd_program *own_prog; /* a program the configuration no longer has, made up from
                                   * its record to stop it (freed with the instance) */
};

/*
 * The signal that makes procbusd re-execute itself in place (`procbus reexec` without the
 * request): SIGRTMIN+1 (`kill -s RTMIN+1 PID`). Not SIGUSR2, supervisord's "reopen the logs",
 * nor SIGUSR1: liburcu's work-queue thread (the registry's hash table) leaves SIGUSR1 unblocked
 * for itself, so a SIGUSR1 sent to procbusd goes there, never to the signalfd (procbusd ignores
 * it, as supervisord does).
 */
#define PBD_SIG_REEXEC (SIGRTMIN + 1)

/*
 * The one mutable state of procbusd (no globals): main() owns it, zeroed,
 * sets the *_override fields, then calls init, run and free. The files that
 * implement it share daemon_int.h.
 */
struct pbd_daemon {
    struct pbd_config cfg;
    struct pbd_config *old_cfgs; /* replaced by reloads, kept while instances refer to them */
    size_t n_old;
    struct pbd_inst **inst; /* sorted by priority, then name */
    size_t n_inst;
    struct procbus_pub *pub;
    struct pbd_ctl ctl;
    int claim_fd;      /* the segment name's claim (claim.h), held for life */
    int ctl_path_lost; /* the control socket's path could not be listened on again */
    struct pbd_sampler sampler;
    struct pbd_tree_root *roots; /* sampling buffers, sample_cap entries */
    struct pbd_tree_usage *usage;
    size_t *root_owner; /* sampling root -> program index (descendants add roots) */
    size_t sample_cap;
    int epfd, sigfd, timerfd;
    int epfd_urgent; /* pidfds, the tracer, signals: drained and committed first each turn */
    struct pbd_watch w_sig, w_timer, w_listen, w_conn[PBD_CTL_MAX_CONN], w_trace, w_urgent;
    struct pbd_tracing *trace; /* descendants / observed processes (NULL: trace off) */
    uint64_t trace_lost_logged, trace_lost_log_at;
    uint64_t leftovers_since; /* shutdown: leftovers were killed, not all gone yet (0: none) */
    int shutting_down, done, staged, log_level;
    int clean_exit; /* the loop ended after a shutdown: programs stopped, the holder may go */
    uint64_t next_heartbeat, next_sample;
    struct pbd_inst *spawnq_head, *spawnq_tail; /* runs the state machine decided, not forked */
    int start_backlog;        /* pbd_schedule stopped at its budget: programs still want to start */
    int sampling;             /* a /proc scan is under way, a slice per loop turn (sample.c) */
    uint64_t sample_started;  /* ... since then (CLOCK_MONOTONIC) */
    unsigned sample_slices;   /* ... in this many slices so far */
    int reload_pending;       /* SIGHUP: reload once this turn's exits are published */
    int reap_pending;         /* SIGCHLD: reap orphans once this turn's exits are published */
    int go_pending;           /* runs forked but not let exec yet: their record is not committed */
    struct pbd_holder holder; /* the fd holder (holder.h): programs' pipes outlive procbusd */
    int tee_rd, tee_wr;       /* a private pipe: ready_log's copy of spliced output (output.c) */
    struct procbus_proc *seeds; /* adoption: descendants' records for the trace module */
    size_t n_seeds;
    void *taken; /* adoption: what a predecessor's holder kept, until claimed (hold_glue.c) */
    size_t n_taken;
    int adopting;      /* started on a crashed predecessor's segment (adopt.c) */
    int reexec_signal; /* PBD_SIG_REEXEC: re-execute once this turn's exits are published */
    struct {           /* an in-place upgrade under way (reexec.c) */
        pid_t probe;   /* `BINARY --check` running (0: none) */
        int probe_fd;  /* its pidfd, watched (PBD_W_PROBE) */
        int err_fd;    /* its stderr, for the reason it fails */
        int slot;      /* the control connection to answer once done (-1: none, a signal) */
        uint64_t deadline;
        char binary[4096];
    } reexec;
    struct pbd_watch w_probe, w_holder;
    char self_path[4096];     /* procbusd's own binary (PBD_SIG_REEXEC re-executes what is there) */
    char **argv;              /* main's argv: a re-exec passes it on */
    const char *auto_hint[2]; /* while adoption or an upgrade makes an instance: the AUTO files
                               * (stdout, stderr) its predecessor logged to, which it takes
                               * (pbd_autolog_path); NULL otherwise */
    int defer_logs;           /* start-up: instances open their logs after the first commit
                               * (pbd_inst_open_deferred), so that readers see them sooner */
    int trace_unread;         /* the tracer has events no wake-up announces (pbd_trace_committed) */
    int trace_paused;         /* its descriptor is out of the loop's set (pbd_trace_glue_hold) */
    int test_kill_held_end;   /* $PROCBUS_TEST_KILL_HELD_END at start (test_exit_held) */
    char pin_dir[512];        /* the tracer's bpffs folder (trace_glue.c) */
    const char *config_path;
    char *segment_override, *socket_override;
    int observe_override;             /* --observe */
    int seg_name_state;               /* the last procbus_pub_keep_name result logged (segment.c) */
    struct pbd_spawn_opts spawn_opts; /* set by main before init (the programs' fd limit) */
    struct pbd_par *par;              /* supervisord parity (parity.h); NULL before init */
    char io_buf[65536];               /* programs' output is read through it (output.c) */
};

/*
 * Set up from a loaded configuration (ownership of *cfg moves to d): create
 * the segment, the control socket, the signalfd/timerfd, publish every
 * program as STOPPED and queue the autostart ones. Returns 0 or a negative
 * errno with a message printed to stderr.
 */
int pbd_daemon_init(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path);

/*
 * The new image of a re-exec (PROCBUS_REEXEC in the environment, reexec.c): take over the state
 * the old image left (the segment, control socket, programs, pipes) and the configuration
 * *cfg. Returns 0, or a negative errno with a message (it then tries the old binary again when
 * it can; else the caller exits and the programs go on, for the next procbusd to adopt).
 */
int pbd_daemon_resume(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path);

/* The new image of a re-exec cannot start (`why`: [supervisord]'s start-up settings failed):
 * the old binary is executed again with the state (d->argv set). Returns only when it cannot
 * be (the caller then exits; the programs go on, for the next procbusd to adopt). */
void pbd_reexec_refuse(struct pbd_daemon *d, const char *why);

/* Run the event loop until shutdown completes. Returns the process exit code. */
int pbd_daemon_run(struct pbd_daemon *d);

/* Stop everything still running (SIGKILL), close the segment cleanly, free all. */
void pbd_daemon_free(struct pbd_daemon *d);

#endif /* PROCBUSD_DAEMON_H */
