/* daemon_int.h - what procbusd's daemon files share beyond daemon.h, one contract per function. */
#ifndef PROCBUSD_DAEMON_INT_H
#define PROCBUSD_DAEMON_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon.h"
#include "diag.h"
#include "fsm.h"

/*
 * Everything here runs on procbusd's one thread, inside the event loop (or
 * pbd_daemon_init / pbd_daemon_free), with `d` the daemon's only mutable
 * state. Nothing here blocks on a program, except where a comment says so.
 * A function that changes a published record stages it (pbd_inst_publish)
 * and sets d->staged; the loop commits (pbd_commit_staged) at fixed points of
 * each turn (loop.c): exits first, then the rest.
 *
 * Files: loop.c (epoll loop, dispatch, timers, heartbeat, signals, set-up and
 * tear-down), inst.c (the instance table and its records), supervise.c (the
 * state machine's actions: spawn, signals, exits), spawn.c / spawn_child.c
 * (fork without waiting; the child's setup) with spawn_setup.c (what a program
 * inherits), output.c (program output: logs, ready_log, ready_fd), sched.c
 * (dependencies, the spawn queue and its budget, start and shutdown order),
 * verbs.c (the control verbs), reload.c (SIGHUP / `procbus reload`), sample.c
 * (CPU and memory per program, a slice per turn), trace_glue.c (the trace
 * module's glue, where the tracer is pinned), segment.c (the segment's upkeep:
 * heartbeat period, keeping its name), adopt.c (taking over from a procbusd
 * that died), holder.c / hold_glue.c (the fd holder: programs' pipes outlive
 * procbusd), reexec.c (upgrading in place).
 */

/* ---- loop.c ---- */

/* Log one line at `level` (enum pbd_level) when d->log_level lets it through. */
void pbd_say(const struct pbd_daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Watch `fd` for input (EPOLLIN) with `w` as the event's cookie: in d->epfd_urgent for the
 * kinds handled first each turn (PBD_W_PIDFD, PBD_W_TRACE, PBD_W_SIGNAL), else in d->epfd.
 * 0 or -1 (errno set). */
int pbd_watch_add(struct pbd_daemon *d, int fd, struct pbd_watch *w);

/* Stop watching *fd (in whichever set), close it and set it to -1; nothing when *fd is
 * already -1. */
void pbd_watch_close(struct pbd_daemon *d, int *fd);

/*
 * 1 when an urgent event (an exit, a tracer event, a signal) is waiting: a peek (poll(2) on
 * d->epfd_urgent, nothing is consumed). Work done in slices (spawning, sampling) ends its
 * slice early then, so that the event is handled and committed in the next turn.
 */
int pbd_urgent_pending(const struct pbd_daemon *d);

/*
 * Commit what is staged (d->staged), through pbd_pub_commit. Clears d->staged
 * on success; on failure (logged) it stays set, so the next loop turn tries
 * again. Callers use it where readers must see a change before something
 * else happens (a spawn, a control reply). Once nothing is left staged, the
 * runs forked since the last commit are let exec (pbd_spawn_go): no program
 * runs before its pid is in the segment.
 */
void pbd_commit_staged(struct pbd_daemon *d);

/*
 * The part of start-up a fresh start and a re-exec share: take over *cfg, signals (blocked,
 * read through a signalfd), the epoll sets, the timer, the sampler, ready_log's tee pipe.
 * Returns 0 or a negative errno.
 */
int pbd_loop_setup(struct pbd_daemon *d, struct pbd_config *cfg, const char *config_path);

/* ---- reexec.c: upgrading procbusd in place ---- */

/*
 * Re-execute procbusd as `binary` (NULL: d->self_path, what is at procbusd's own path now),
 * keeping everything: the segment (its descriptor and lock: same epoch, no shutdown seen),
 * the control socket, the programs (still its children), their pipes and pidfds, the tracer
 * (pinned). First `binary --check -c CONFIG` runs (in the background, watched): only if it
 * succeeds is the state written to a memfd and the binary exec'd; if the probe or the exec
 * fails, this procbusd carries on and says why (to `slot`, a control connection, else the
 * log). Never stops a program. Refused while shutting down or while another upgrade runs.
 */
void pbd_reexec_request(struct pbd_daemon *d, const char *binary, int slot);

/* The probe exited (its pidfd is readable): exec, or say why not. */
void pbd_reexec_probe_done(struct pbd_daemon *d);

/* Each turn: a probe past its deadline (10 s) is killed and the upgrade abandoned. */
void pbd_reexec_tick(struct pbd_daemon *d);

/* ---- segment.c ---- */

/*
 * The segment's upkeep, at every heartbeat (before the beat): state the
 * current heartbeat_ms in the header (a reload may change it) and keep the
 * segment at its name (procbus_pub_keep_name): a removed file is re-created
 * at once and said in a warning naming the likely remover (rm, a tmp cleaner,
 * logind's RemoveIPC=); a name taken by another publisher is said once as an
 * error. Makes system calls (stat; file calls when re-creating).
 */
void pbd_segment_tick(struct pbd_daemon *d);

/* ---- inst.c ---- */

/*
 * A new instance of program `p` (in d->cfg or a config being loaded): STOPPED,
 * a fresh record id, logs open (at start-up, d->defer_logs: once the first commit is made,
 * pbd_inst_open_deferred), want_start = autostart, appended to d->inst
 * (unsorted: call pbd_inst_sort after adding) and published. NULL when out of
 * memory (nothing changed).
 */
struct pbd_inst *pbd_inst_new(struct pbd_daemon *d, const struct pbd_program *p);

/* pbd_inst_new without publishing, with record id `id` (0: a fresh one): adoption (adopt.c)
 * sets its state from the record it takes over first. NULL when out of memory. */
struct pbd_inst *pbd_inst_create(struct pbd_daemon *d, const struct pbd_program *p, uint64_t id);

/* Start-up's first commit is made: the instances open their logs (nothing read from a program
 * went anywhere before: the loop has not run). Nothing unless d->defer_logs. */
void pbd_inst_open_deferred(struct pbd_daemon *d);

/* Take it off the spawn queue, close its fds (unwatching them), logs and regex, and free it.
 * Does not touch d->inst, its record or its processes. */
void pbd_inst_free(struct pbd_daemon *d, struct pbd_inst *in);

/* Sort d->inst by group priority, priority, then name (the start order; shutdown goes the
 * other way). */
void pbd_inst_sort(struct pbd_daemon *d);

/* Drop the instances a reload removed once they are no longer alive: their records are
 * removed (staged), the instances freed. */
void pbd_inst_drop_removed(struct pbd_daemon *d);

/* The instance whose main process is `pid` now; NULL if none. */
struct pbd_inst *pbd_inst_by_pid(struct pbd_daemon *d, pid_t pid);

/* Stage the instance's record as it is now (state, pid, exit, usage, name, cmdline). */
void pbd_inst_publish(struct pbd_daemon *d, struct pbd_inst *in);

/* Move to state `s` (enum procbus_state): log it, stamp `since`, publish. Nothing if the
 * state is already `s`. */
void pbd_inst_set_state(struct pbd_daemon *d, struct pbd_inst *in, uint16_t s);

/* 1 while it has a live main process or waits to retry (BACKOFF): what a stop must end. */
int pbd_inst_alive(const struct pbd_inst *in);

/* 1 if its last run ended with one of the program's exitcodes (the "expected" exits). */
int pbd_inst_expected_exit(const struct pbd_inst *in);

/* ---- supervise.c ---- */

/*
 * Feed event `ev` to the instance's state machine (fsm.h) and carry out the
 * action the table gives: signal, arm or cancel its timer, change and publish
 * its state. May recurse once (an exit fires a restart). PBD_A_SPAWN does not
 * fork here: it puts the instance on the spawn queue (state unchanged), which
 * the loop's spawn phase (pbd_schedule) forks within its budget, after the
 * turn's exits are committed. A STOP takes the instance off that queue.
 */
void pbd_inst_fire(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_event ev);

/*
 * Fork a run of the instance now (pbd_spawn_start: never waits for the exec):
 * drain and drop a previous run's pipes, reset the run's fields, watch the new
 * fds and go STARTING (from the fork). A parent-side failure (no such user,
 * pipe, fork) fires SPAWN_FAILED at once; the child's failures arrive on the
 * exec-status pipe (pbd_inst_on_exec_status). Nothing when it has a process.
 * Called by the spawn phase only.
 */
void pbd_inst_spawn_now(struct pbd_daemon *d, struct pbd_inst *in);

/*
 * The exec-status pipe is readable: end of file without a report means the
 * program exec'd (STARTING -> RUNNING at once with startsecs = 0, else the
 * startsecs timer starts now); a report (step, errno) is kept until the child,
 * which exits at once, is reaped: then the failure is logged with its step and
 * errno and SPAWN_FAILED fires (pbd_inst_on_pidfd).
 */
void pbd_inst_on_exec_status(struct pbd_daemon *d, struct pbd_inst *in);

/* Its stop is over (its tree is empty): STOPPED, its timer cancelled, a reload's new
 * settings taken in. */
void pbd_inst_stopped(struct pbd_daemon *d, struct pbd_inst *in);

/* Send `sig` to the main process, or to its process group when `group`; nothing without a
 * main process. */
void pbd_inst_signal(struct pbd_inst *in, int sig, int group);

/* The main process's pidfd is readable: reap it (waitid on the pidfd, never blocking) and,
 * if it exited: a run that never exec'd fires SPAWN_FAILED (its step and errno logged);
 * else its status is recorded and PBD_EV_EXIT fires (its output is read by the pipes' own
 * events, except a ready_log's last lines, which are read first). */
void pbd_inst_on_pidfd(struct pbd_daemon *d, struct pbd_inst *in);

/* SIGCHLD: reap every exited child without blocking. Programs' main processes go through
 * their pidfd path; orphans (procbusd is a child subreaper) are reported to the trace module. */
void pbd_reap_orphans(struct pbd_daemon *d);

/* ---- output.c ---- */

/* (Re)open the program's stdout/stderr logs and compile its ready_log regex, as its current
 * settings (in->prog) say. Failures are logged; the program then runs without that log. */
void pbd_inst_open_logs(struct pbd_daemon *d, struct pbd_inst *in);

/* Pipe `which` of an instance. */
enum pbd_stream { PBD_STDOUT = 0, PBD_STDERR = 1 };

/*
 * Read what the program wrote on `which` (bounded: at most 16 reads of 64 KiB
 * per call, so a chatty program cannot starve the loop), append it to its log
 * and match ready_log lines (which may fire PBD_EV_READY). At end of file the
 * pipe is closed and unwatched.
 */
void pbd_inst_drain(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_stream which);

/* The readiness pipe is readable: a newline while STARTING or RUNNING fires PBD_EV_READY;
 * end of file (or an error) closes it. */
void pbd_inst_on_ready_fd(struct pbd_daemon *d, struct pbd_inst *in);

/* ---- sched.c ---- */

/* 1 if every dependency of `in` (a program or group name, with its condition) holds now. */
int pbd_deps_ready(struct pbd_daemon *d, const struct pbd_inst *in);

/*
 * The spawn phase, once per loop turn, after the turn's exits are committed.
 * Normally: fork the queued runs (oldest first), then start the instances that
 * want to start and whose dependencies hold, in priority order, within one
 * turn's spawn budget (a count and a time, sched.c); what is left waits for
 * the next turn (d->start_backlog, d->spawnq_head: the loop does not sleep
 * then). Shutting down: the queue is emptied (nothing more starts); stop the
 * alive instances nobody alive depends on, highest priority first; when none
 * is alive, kill what the tracer still attributes to programs and set d->done.
 */
void pbd_schedule(struct pbd_daemon *d);

/* Queue the instance for the spawn phase (nothing if it is queued already). */
void pbd_spawnq_add(struct pbd_daemon *d, struct pbd_inst *in);

/* Take the instance off the spawn queue (nothing if it is not on it). */
void pbd_spawnq_remove(struct pbd_daemon *d, struct pbd_inst *in);

/* ---- verbs.c ---- */

/* The control socket is readable: accept every pending connection, watch it, and serve
 * its request at once when the whole line is already there. */
void pbd_control_accept(struct pbd_daemon *d);

/*
 * Connection `slot` is readable: when its request line is complete, run the
 * verb (verbs.c's table), commit what it staged, send the reply, then close
 * the connection. A partial line waits for more input.
 */
void pbd_control_serve(struct pbd_daemon *d, int slot);

/* Answer "ERR timeout" to and close every connection past its request deadline (ctl_server.h);
 * the loop calls it every turn and wakes for pbd_ctl_next_deadline. */
void pbd_control_expire(struct pbd_daemon *d);

/* ---- reload.c ---- */

/*
 * Load d->config_path again and apply it: removed programs stop and are
 * dropped, changed ones restart with their new settings once stopped,
 * unchanged ones are left alone, added ones are created (and start if
 * autostart). The old configuration is kept while instances refer to it.
 * Returns 0, or a negative errno with the reason in err (nothing changed).
 */
int pbd_reload(struct pbd_daemon *d, char *err, size_t errlen);

/* pbd_reload_flags: a reload to a configuration without any program, which stops and removes
 * every program, is refused (-ENOENT) unless this flag is given. */
#define PBD_RELOAD_ALLOW_EMPTY 0x1u

/*
 * pbd_reload with flags (PBD_RELOAD_ALLOW_EMPTY). Also refused, nothing changed:
 * a `user` procbusd cannot run as (-EPERM, pbd_config_check_runner), more
 * instances than the segment's capacity (-ENOSPC). Configurations replaced by
 * earlier reloads are freed once no instance refers to them.
 */
int pbd_reload_flags(struct pbd_daemon *d, unsigned flags, char *err, size_t errlen);

/* What a reload does to a group (supervisord's diff_to_active). */
enum pbd_group_change { PBD_GROUP_SAME = 0, PBD_GROUP_ADDED, PBD_GROUP_CHANGED, PBD_GROUP_REMOVED };

/* Where a reload says what it did: line(arg, "web: added process group"), one call per line. */
struct pbd_reload_report {
    void (*line)(void *arg, const char *text);
    void *arg;
};

/*
 * pbd_reload_flags for the groups named (groups NULL: all), saying per group what it does in
 * supervisorctl update's words through rep (NULL: nothing said): "G: stopped" and "G: removed
 * process group", "G: [stopped and] updated process group" (stopped: an instance restarts),
 * "G: added process group". Groups not named keep their settings. Same returns.
 */
int pbd_reload_groups(struct pbd_daemon *d, unsigned flags, char *const *groups, size_t n_groups,
                      const struct pbd_reload_report *rep, char *err, size_t errlen);

/*
 * How `next` differs from what runs, per group, as supervisord's reread sees it (a group is
 * changed when any key of any of its processes differs, or its processes do): cb once per
 * group that is not the same, the configuration's groups first, in its order. Returns how
 * many. Changes nothing.
 */
int pbd_reload_diff(const struct pbd_daemon *d, const struct pbd_config *next,
                    void (*cb)(void *arg, const char *group, enum pbd_group_change what),
                    void *arg);
/* ---- sample.c ---- */

/*
 * CPU and memory of every program's whole tree (its session plus what the
 * tracer attributes to it), from one pass over /proc done in slices: once per
 * loop turn, after the turn's exits are committed, it starts a pass when one
 * is due (every sample_ms) and reads a bounded slice of processes (sample.c);
 * the pass's last slice attributes and publishes the changed values. Sets
 * d->sampling while a pass is under way (the loop then sleeps 1 ms at most between
 * slices).
 * Out of memory or a /proc error: this round is skipped.
 */
void pbd_sample_slice(struct pbd_daemon *d, uint64_t now_mono);

/* ---- killpass.c: what a stop kills, and when it is over ---- */

/*
 * PBD_A_STOPPED: the main process of a stopping program is gone. Reads the tracer up to
 * now (pbd_trace_sync), then kills its process group and every live process of its tree.
 * Returns 1 when the tree is already empty (the caller publishes STOPPED), 0 when processes
 * are left: the instance stays STOPPING (in->emptying) and pbd_stop_tree_poll kills again
 * until none is left, and only then calls pbd_inst_stopped.
 */
int pbd_stop_tree_begin(struct pbd_daemon *d, struct pbd_inst *in);

/* Each loop turn: another kill pass for every instance still emptying; those found empty
 * become STOPPED. After 30 s of survivors (a process stuck in the kernel) it gives up with
 * a warning naming how many. */
void pbd_stop_tree_poll(struct pbd_daemon *d);

/* CLOCK_MONOTONIC ns of the next kill pass due (instances emptying, shutdown leftovers);
 * UINT64_MAX if none. */
uint64_t pbd_stop_tree_deadline(const struct pbd_daemon *d);

/* Send `sig` to every live process of the program's tree (not its main process), after
 * reading the tracer up to now. Returns how many were signalled. */
int pbd_stop_tree_signal(struct pbd_daemon *d, struct pbd_inst *in, int sig);

/* `procbus stop` of a program that is not running: kill its leftovers (daemons it left),
 * after reading the tracer up to now (and walking /proc when polling). Returns how many. */
int pbd_stop_leftovers(struct pbd_daemon *d, struct pbd_inst *in);

/* Shutting down, every program stopped: kill what the tracer still attributes to programs.
 * Returns 1 while some of it is still alive (call again next turn), 0 once none is (or
 * after 30 s, with a warning). */
int pbd_shutdown_leftovers(struct pbd_daemon *d);

/* ---- trace_glue.c ---- */

/*
 * Start the trace module (trace.h) as the configuration (and --observe) say,
 * and watch its fd. Says on stderr when AUTO falls back to /proc polling, and
 * why. Returns 0, or a negative errno with a message on stderr (trace=on and
 * no eBPF; observe with trace=off).
 */
int pbd_trace_glue_start(struct pbd_daemon *d);

/* The trace module staged `n` changes (negative: an error, nothing staged): mark them for
 * the loop's commit, and log tracer losses (at most one line a second). */
void pbd_trace_glue_staged(struct pbd_daemon *d, int n);

/* pbd_trace_sync (one ordered stream: the tracer read up to now) with its changes marked for
 * the loop's commit. */
void pbd_trace_glue_sync(struct pbd_daemon *d, int walk);

/* After a commit: while the tracer's ring keeps the exit event of a main process not yet
 * reaped (pbd_trace_ends_held), its descriptor stays readable (the kernel counts what is kept
 * as unread), so it leaves the loop's set until the last such end is taken, and the ring is
 * read then (d->trace_unread); syncs before decisions read it meanwhile. */
void pbd_trace_glue_hold(struct pbd_daemon *d);

/* Once per loop turn: the trace module's periodic work (pbd_trace_tick), then the kill
 * passes due (pbd_stop_tree_poll). */
void pbd_trace_glue_tick(struct pbd_daemon *d);

/* Shutting down: log what the tracer read (events by kind, losses), then close it. */
void pbd_trace_glue_close(struct pbd_daemon *d);

/* ---- hold_glue.c: the fd holder (holder.h) ---- */

/* Connect to the segment's fd holder, starting one if none answers; from a predecessor's, with
 * `take`, take back what it keeps (pbd_holder_claim hands it out; a re-exec keeps its own
 * descriptors and takes nothing). Failures are logged: programs then run without their output
 * surviving procbusd. */
void pbd_holder_start(struct pbd_daemon *d, int take);

/* What the predecessor's holder kept for program instance `name`: 1 with *e and
 * fds[PBD_HOLD_NFDS] (holder.h's order; the caller owns them), 0 if nothing (fds all -1). Each
 * entry is handed out once. */
int pbd_holder_claim(struct pbd_daemon *d, const char *name, struct pbd_hold_entry *e,
                     int fds[PBD_HOLD_NFDS]);

/* After adoption: entries nobody claimed (programs gone from the configuration and dead) are
 * closed and dropped from the holder, with a warning each. */
void pbd_holder_unclaimed(struct pbd_daemon *d);

/* The holder's connection closed (it died while procbusd runs): start another and hand it the
 * pipes of every run, so that output survives procbusd's own death again. */
void pbd_holder_lost(struct pbd_daemon *d);

/* A run was forked: hand the holder duplicates of its pipe ends (failures logged). */
void pbd_inst_hold_put(struct pbd_daemon *d, struct pbd_inst *in);

/* A pipe of the run ended: once none is left, the holder lets go of its copies. */
void pbd_inst_hold_release(struct pbd_daemon *d, struct pbd_inst *in);

/* A digest of the settings pbd_program_same compares (command, environment, user, logs ...):
 * a program whose digest changed between two procbusds is restarted like a reload changes it. */
uint64_t pbd_program_digest(const struct pbd_program *p);

/* ---- adopt.c: taking over from a procbusd that died ---- */

/*
 * Set up the instances of d->cfg from a crashed predecessor's records (the segment inherited
 * them, procbus_pub_predecessor) and the pipes its holder kept: each program whose record shows
 * a live process is adopted after checking its pid AND start time (never a reused pid), with a
 * pidfd; one whose process is gone is marked to have its exit decided after the tracer's
 * backlog (pbd_adopt_finish); programs no longer configured are stopped like a reload removes
 * them, changed ones restarted like a reload changes them. Records of descendants go to
 * d->seeds for the trace module. Stages every record. Returns 0 or -ENOMEM.
 */
int pbd_adopt(struct pbd_daemon *d);

/* After the trace module is up (seeded): read its backlog and /proc, then give every program
 * adoption found dead its exit (the tracer's real status, else PROCBUS_F_EXIT_UNKNOWN), and
 * stop the removed and changed ones. */
void pbd_adopt_finish(struct pbd_daemon *d);

/* A program the configuration no longer has, made up from its record `r` to stop it as a
 * reload removing it would (stopsignal TERM to its group, stopwaitsecs 10; its logs if known).
 * Free with pbd_program_clear and free. NULL when out of memory. */
struct pbd_program *pbd_adopt_made_up(const struct procbus_proc *r, const char *out_path,
                                      const char *err_path);

/* An adopted main process (not our child) ended: its exit from the tracer, else unknown. */
void pbd_adopted_exit(struct pbd_daemon *d, struct pbd_inst *in);

/* Before each commit: adopted runs whose exit event the tracer read are ended now
 * (pbd_adopted_exit), so that the commit that hands the event's ring space back publishes their
 * end; else a procbusd killed after that commit takes the status with it. Nothing when no main
 * process's exit event was read since the last call. */
void pbd_adopted_ended(struct pbd_daemon *d);

#endif /* PROCBUSD_DAEMON_INT_H */
