/* parity.h - what procbusd does as supervisord does: AUTO logs, its own log, event listeners,
 * fcgi sockets, [supervisord]'s start-up settings (docs/SUPERVISORD.md). */
#ifndef PROCBUSD_PARITY_H
#define PROCBUSD_PARITY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon_int.h"

/*
 * Like the rest of procbusd, everything here runs on its one thread. The daemon's parity state
 * hangs off d->par, an instance's off in->par (both allocated here, NULL until needed); the
 * calls below are the hooks the daemon's files make, each one line where it is made.
 * Files: autolog.c (AUTO log names, cleanup), mainlog.c (procbusd's own log, pidfile,
 * supervisord's start-up settings), evl.c (event listeners: events, the protocol), fcgi.c
 * (fcgi-program sockets), verbs_sv.c (supervisorctl's verbs), parity.c (the hooks' glue).
 */

struct pbd_evl_pool;  /* evl.c */
struct pbd_evl_entry; /* evl.c */
struct pbd_fcgi_sock; /* fcgi.c */

/* The daemon's parity state (d->par). */
struct pbd_par {
    struct pbd_log *mainlog; /* [supervisord] logfile, or NULL */
    char *pidfile;           /* written at start: removed at exit; or NULL */
    struct pbd_evl_pool *pools;
    size_t n_pools;
    uint64_t serial;  /* supervisord's GlobalSerial: the last event's */
    int64_t ticks[3]; /* the last TICK_5/60/3600 time slice (realtime s); 0: not yet */
    struct pbd_fcgi_sock *socks;
    size_t n_socks;
    struct pbd_config reread; /* the configuration `reread` last read (for `add`, `avail`) */
    int has_reread;
    uint64_t drain_until; /* shutting down: listeners may drain their queues until then */
};

/* Event listener protocol states (supervisord's EventListenerStates). */
enum pbd_lstate { PBD_LS_ACKNOWLEDGED = 0, PBD_LS_READY, PBD_LS_BUSY, PBD_LS_UNKNOWN };

/* supervisord's capture mode of one stream (*_capture_maxbytes): what is between its BEGIN
 * and END tokens becomes a PROCESS_COMMUNICATION event instead of log output. */
struct pbd_capture {
    int on;     /* between the tokens */
    char *pend; /* output not decided yet (it may start a token) */
    size_t pend_len;
    char *cap; /* what was captured so far (supervisord's BoundIO) */
    size_t cap_len;
};

/* An instance's parity state (in->par). */
struct pbd_par_inst {
    char *auto_path[2]; /* AUTO log files (stdout, stderr), chosen once */
    /* an event listener */
    enum pbd_lstate lstate;
    int stdin_w; /* its stdin's write end (held while it runs), -1 */
    int stdin_r; /* the read end, between before_spawn and after_spawn, -1 */
    char *pend;  /* an envelope partly written */
    size_t pend_len, pend_off;
    struct pbd_evl_entry *event; /* the event it is busy with (rebuffered if rejected) */
    char *sbuf;                  /* its stdout not yet understood */
    size_t slen, scap;
    long resultlen;                /* RESULT N: N, -1 before the RESULT line */
    int fcgi;                      /* index + 1 of its fcgi socket in d->par->socks, 0 none */
    struct pbd_capture capture[2]; /* stdout, stderr: capture mode */
    char *logbuf;                  /* capture mode: what the log gets of one read */
    size_t logbuf_len, logbuf_cap;
};

/* d->par and in->par, allocated on first use (NULL when out of memory). */
struct pbd_par *pbd_par_of(struct pbd_daemon *d);
struct pbd_par_inst *pbd_par_inst_of(struct pbd_inst *in);

/* ---- parity.c: the hooks ---- */

/* In the daemon's set-up, before the instances are made: procbusd's own log, the pidfile,
 * event pools made, SUPERVISOR_STATE_CHANGE_RUNNING (not when `resume`: the new image of an
 * upgrade in place, whose state pbd_par_restore then puts back). Old AUTO logs are removed
 * once the instances are made (pbd_autolog_cleanup: an adopted program's is kept). Returns 0
 * or a negative errno with a message on stderr (the pidfile or log cannot be written: with
 * `resume`, the rest is done all the same). */
int pbd_par_init(struct pbd_daemon *d, int resume);

/* At exit: pidfile removed, everything freed. Safe when pbd_par_init did not run. */
void pbd_par_free(struct pbd_daemon *d);

/* An instance is being freed: its fds and state here. */
void pbd_par_inst_free(struct pbd_daemon *d, struct pbd_inst *in);

/* Instance `in` went from state `from` to in->state (pbd_inst_set_state): the
 * PROCESS_STATE_* event and supervisord's log line. */
void pbd_par_state(struct pbd_daemon *d, struct pbd_inst *in, uint16_t from);

/* Just before a spawn: the program's stdin into opts->stdin_fd: an fcgi program's socket,
 * else a pipe whose write end procbusd holds while the program runs (supervisord's; an event
 * listener gets its events on it). Returns 0, or a negative errno with why filled (no pipe, no
 * socket: the spawn fails like a failed exec). */
int pbd_par_before_spawn(struct pbd_daemon *d, struct pbd_inst *in, struct pbd_spawn_opts *opts,
                         char *why, size_t whylen);

/* Just after a spawn attempt (rc: pbd_spawn's): the pipe's read end closed here, the write
 * end kept (event listener). */
void pbd_par_after_spawn(struct pbd_daemon *d, struct pbd_inst *in, int rc);

/* What the program wrote on stdout (which 0) or stderr (1), as read: the event listener
 * protocol, PROCESS_LOG events, capture mode. Returns what its log gets of it, *log_n bytes:
 * buf itself, or without capture mode's tokens and what is between them (then in memory of the
 * instance's, valid until the next call). */
char *pbd_par_output(struct pbd_daemon *d, struct pbd_inst *in, int which, char *buf, size_t n,
                     size_t *log_n);

/* strip_ansi: buf[n] without ANSI escape sequences, in place (supervisord's stripEscapes, per
 * chunk); the new length. Nothing without [supervisord] strip_ansi. */
size_t pbd_par_strip(const struct pbd_daemon *d, char *buf, size_t n);

/* Once per loop turn: events to ready listeners, TICK events, fcgi sockets nobody uses
 * closed. */
void pbd_par_turn(struct pbd_daemon *d);

/* The next CLOCK_MONOTONIC ns the loop must wake for (a TICK); UINT64_MAX when none. */
uint64_t pbd_par_next_deadline(const struct pbd_daemon *d);

/* Shutdown began (SIGTERM, `shutdown`, a listener's kill): SUPERVISOR_STATE_CHANGE_STOPPING. */
void pbd_par_stopping(struct pbd_daemon *d);

/* Shutting down, its turn to stop come: 1 while `in` is an event listener whose pool still
 * has events for it (queued, or being handled) and it can take them, so that it is stopped
 * once it has them (at most PBD_PAR_DRAIN_NS after the shutdown began). */
int pbd_par_hold_stop(struct pbd_daemon *d, const struct pbd_inst *in);
#define PBD_PAR_DRAIN_NS (5 * PB_NS_PER_SEC)

/* SIGUSR2 (supervisord's): reopen every log file, procbusd's own included. */
void pbd_par_reopen_logs(struct pbd_daemon *d);

/* A reload added or removed group `name`: PROCESS_GROUP_ADDED / _REMOVED. */
void pbd_par_group_event(struct pbd_daemon *d, const char *name, int added);

/* ---- autolog.c ---- */

/*
 * The file an AUTO log of `in` goes to (which 0 stdout, 1 stderr): supervisord's name,
 * CHILDLOGDIR/NAME-stdout---IDENTIFIER-XXXXXXXX.log, chosen once per instance and run of
 * procbusd. NULL when out of memory. Owned by the instance.
 */
const char *pbd_autolog_path(struct pbd_daemon *d, struct pbd_inst *in, int which);

/* childlogdir as configured, else $TMPDIR, else /tmp (Python's tempfile.gettempdir). */
const char *pbd_autolog_dir(const struct pbd_daemon *d);

/* At start, unless nocleanup: remove the AUTO logs an earlier run left in childlogdir (files
 * of procbusd's user whose names match supervisord's pattern for this identifier), but those
 * an instance logs to (adopted from a procbusd that died: pbd_autolog_reuse). */
void pbd_autolog_cleanup(struct pbd_daemon *d);

/* A predecessor's AUTO file `path` for `in` (which 0 stdout, 1 stderr; from the fd holder or
 * an upgrade's state): if it is a name pbd_autolog_path could choose for `in` now, it becomes
 * the instance's (the empty file of a name chosen meanwhile is removed); the caller then opens
 * the logs again (pbd_inst_open_logs). 1 if taken, 0 if not (another folder or name, no
 * memory). */
int pbd_autolog_reuse(struct pbd_daemon *d, struct pbd_inst *in, int which, const char *path);

/* ---- mainlog.c ---- */

/* Open [supervisord] logfile (rotated by logfile_maxbytes/backups). 0 or a negative errno. */
int pbd_mainlog_open(struct pbd_daemon *d);
void pbd_mainlog_close(struct pbd_daemon *d);

/* One line "YYYY-MM-DD HH:MM:SS,mmm LEVL message" into procbusd's log file (if any), at
 * enum pbd_level `level` (the caller filtered by log_level). */
void pbd_mainlog_vwrite(const struct pbd_daemon *d, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void pbd_mainlog_write(const struct pbd_daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The path of procbusd's log file, or NULL. */
const char *pbd_mainlog_path(const struct pbd_daemon *d);

/*
 * [supervisord]'s start-up settings, from main before the daemon starts, when the file has a
 * [supervisord] section (whose defaults then apply): minfds (the programs' open-file limit too)
 * and minprocs raised, umask and directory (as supervisord applies them,
 * i.e. when nodaemon is false), user (procbusd must run as it: when root, it switches to it, as
 * supervisord does; otherwise another user is refused). 0, or a negative errno with the reason
 * in err.
 */
int pbd_svd_startup(struct pbd_daemon *d, const struct pbd_config *cfg, char *err, size_t errlen);

/* ---- evl.c ---- */

/* Make a pool per [eventlistener:x] of d->cfg (a reload: pools added and removed). 0 or
 * -ENOMEM. */
int pbd_evl_sync_pools(struct pbd_daemon *d);

/* Queue event `type` with `payload` (plen bytes) to every pool that wants it. */
void pbd_evl_notify(struct pbd_daemon *d, enum pbd_evtype type, const char *payload, size_t plen);

/* Send queued events to ready listeners; retry pending writes. */
void pbd_evl_dispatch(struct pbd_daemon *d);

/* A listener's stdout (the protocol): READY, RESULT N\nBODY. */
void pbd_evl_listener_output(struct pbd_daemon *d, struct pbd_inst *in, const char *buf, size_t n);

/* A listener stopped being able to take events (exited): its event back to the pool. */
void pbd_evl_listener_gone(struct pbd_daemon *d, struct pbd_inst *in);

/* A listener was spawned: its stdin pipe's write end (owned from now on). */
void pbd_evl_listener_started(struct pbd_daemon *d, struct pbd_inst *in, int stdin_w);

/* TICK_5/60/3600 when their time slice rolls over; the next deadline (realtime-driven). */
void pbd_evl_tick(struct pbd_daemon *d);
uint64_t pbd_evl_next_tick(const struct pbd_daemon *d);

/* 1 if pool `name` has queued events, or one of its listeners is busy with one. */
int pbd_evl_pending(const struct pbd_daemon *d, const char *name);

void pbd_evl_free(struct pbd_daemon *d);
void pbd_evl_inst_free(struct pbd_daemon *d, struct pbd_inst *in);

/* An upgrade in place (reexec_par.c): the global serial, the TICK slices and every pool's
 * queue written for the new image, which puts them back into the pools its configuration has
 * (pbd_evl_sync_pools first; a pool it lacks drops its events). Restore returns 0, or the
 * reader's error (-EPROTO, -ENOMEM). */
struct pbd_rxbuf;
struct pbd_rxrd;
void pbd_evl_save(const struct pbd_daemon *d, struct pbd_rxbuf *b);
int pbd_evl_restore(struct pbd_daemon *d, struct pbd_rxrd *r);
/* A listener's protocol state (READY/BUSY..., the envelope's unwritten rest, its unread
 * output, the event it is busy with); `in` NULL on restore: read and dropped. */
void pbd_evl_inst_save(const struct pbd_inst *in, struct pbd_rxbuf *b);
void pbd_evl_inst_restore(struct pbd_inst *in, struct pbd_rxrd *r);

/* ---- fcgi.c ---- */

/* The listening socket of in's [fcgi-program:x] (made at the first spawn of any of its
 * instances, as supervisord does), for its stdin. fd >= 0, or a negative errno with why. */
int pbd_fcgi_socket(struct pbd_daemon *d, struct pbd_inst *in, char *why, size_t whylen);

/* Close the sockets no live instance uses any more (supervisord closes a group's socket when
 * its last process stops). */
void pbd_fcgi_gc(struct pbd_daemon *d);
void pbd_fcgi_free(struct pbd_daemon *d);

/* An adopted instance of an [fcgi-program:x] whose socket this procbusd does not have (its
 * predecessor died): the socket taken back from the instance's own fd 0 (pidfd_getfd), so that
 * instances started next share it; if that fails (no ptrace rights, fd 0 replaced), a warning,
 * and the next start makes a new socket. */
void pbd_fcgi_adopt(struct pbd_daemon *d, struct pbd_inst *in, int pidfd);

/* An upgrade in place: the open sockets kept across the execve (close-on-exec cleared, or set
 * again when `keep` is 0), written for the new image and put back there. Restore returns 0 or
 * the reader's error. */
void pbd_fcgi_keep(const struct pbd_daemon *d, int keep);
void pbd_fcgi_save(const struct pbd_daemon *d, struct pbd_rxbuf *b);
int pbd_fcgi_restore(struct pbd_daemon *d, struct pbd_rxrd *r);

/* ---- reexec_par.c: the parity state across an upgrade in place ---- */

/*
 * What the old image knows beyond its instances' fields (reexec.c): the event pools, the fcgi
 * sockets, the groups removed with `remove` (they stay removed), and per instance its stdin
 * pipe's write end (kept across the execve), its AUTO log names, capture mode's buffers and a
 * listener's protocol state. pbd_par_save appends them to b, instances in d->inst's order;
 * pbd_par_keep clears (keep 1) or sets again (0, the execve failed) close-on-exec on the
 * descriptors it names. The new image reads them back in the same order:
 * pbd_par_restore_daemon after pbd_par_init(d, 1) (the removed programs' names into
 * *removed, malloc'd, n_removed of them), then pbd_par_restore_inst once per old instance
 * (`in` the new instance, or NULL: its state read and dropped, its descriptors closed).
 * Restores return 0 or the reader's error (-EPROTO, -ENOMEM).
 */
void pbd_par_save(const struct pbd_daemon *d, struct pbd_rxbuf *b);
void pbd_par_keep(const struct pbd_daemon *d, int keep);
int pbd_par_restore_daemon(struct pbd_daemon *d, struct pbd_rxrd *r, char ***removed,
                           size_t *n_removed);
int pbd_par_restore_inst(struct pbd_daemon *d, struct pbd_rxrd *r, struct pbd_inst *in);

#endif /* PROCBUSD_PARITY_H */
