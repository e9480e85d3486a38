/* daemon_harness.h - start a real procbusd for a test, and clean up whatever a failed test left. */
#ifndef PROCBUS_DAEMON_HARNESS_H
#define PROCBUS_DAEMON_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procbus.h"

struct daemon_h {
    pid_t pid;
    char seg[64], sock[160], dir[64], conf[128];
    struct procbus_reader r;
};

/* Path of a binary of this build: $PROCBUS_BUILD_DIR/NAME, else PROCBUS_BUILD_DIR/NAME. */
const char *pbt_bin(const char *name, char *buf, size_t len);

/* (Re)write h->conf: a [procbusd] section for h's segment and socket, then `body`. */
void pbt_write_conf(struct daemon_h *h, const char *body);

/*
 * Make a temp dir (prefix like "/tmp/pbd-test"), write the config, start procbusd on it
 * (PR_SET_PDEATHSIG: it never outlives the test) and open a reader on its segment.
 * Asserts (cmocka) on failure.
 */
void pbt_start_daemon(struct daemon_h *h, const char *prefix, const char *body);

/*
 * Start procbusd again on h's configuration (the previous one was killed, or stopped): h->pid is
 * the new one. With `wait_ready`, returns once it answers on its control socket (its start-up,
 * adoption included, is over: pbt_ctl_ping) and h->r maps its segment (procbus_follow); without,
 * at once after the fork. Asserts (cmocka) on failure.
 */
void pbt_restart_daemon(struct daemon_h *h, int wait_ready);

/* 0 once a procbusd answers a request on h's control socket (any answer), -ETIMEDOUT after
 * timeout_ms. The request is an unknown verb: nothing changes. */
int pbt_ctl_ping(const struct daemon_h *h, int timeout_ms);

/* SIGTERM; returns procbusd's exit status. The reader stays open; nothing is removed. */
int pbt_term_daemon(struct daemon_h *h);

/* Remove what pbt_start_daemon made (segment, temp dir) and close the reader. */
void pbt_remove_daemon(struct daemon_h *h);

/* SIGTERM; asserts (cmocka) a clean exit 0 and a segment marked SHUTDOWN, then removes
 * everything (pbt_remove_daemon). */
void pbt_stop_daemon(struct daemon_h *h);

/* Remember a background helper process for pbt_teardown (0: forget `pid`). */
void pbt_track_bg(pid_t pid, int track);

/* A cmocka teardown: kills a daemon and helpers a failed test left running, removes files. */
int pbt_teardown(void **state);

/* Run `procbus -s SEG -S SOCK ARGS REDIRECTS` through the shell; its exit code (128: signal). */
int pbt_cli(const struct daemon_h *h, const char *args, const char *redirects);

/* Wait until program `name` is in `state`; 0, or -ETIMEDOUT after timeout_ms. */
int pbt_wait_state(struct daemon_h *h, const char *name, uint16_t state, int timeout_ms,
                   struct procbus_proc *out);

#endif
