/* cli_follow.h - following procbusd's event ring (watch, wait, start/stop/restart), and the stop
 * signals that end a follow (also logs -f). */
#ifndef PROCBUS_CLI_FOLLOW_H
#define PROCBUS_CLI_FOLLOW_H

#include <signal.h>
#include <stdint.h>

#include "procbus.h"

/* Set by the handler cli_catch_stop_signal installs; never cleared. */
extern volatile sig_atomic_t cli_stop_requested;

/* From now on, `sig` sets cli_stop_requested instead of ending the process. No SA_RESTART: a
 * procbus_wait or sleep it interrupts returns early (EINTR), so the loop sees the flag soon. */
void cli_catch_stop_signal(int sig);

/* What a follower's callback tells cli_follow. */
enum cli_follow_step {
    CLI_FOLLOW_MORE,  /* go on following */
    CLI_FOLLOW_DONE,  /* stop: the caller has what it waited for (its ctx says what) */
    CLI_FOLLOW_AGAIN, /* on_idle, on_ended only: read the ring again now, without waiting */
};

/* How cli_follow ended. */
enum cli_follow_end {
    CLI_FOLLOW_ENDED,   /* a callback returned CLI_FOLLOW_DONE */
    CLI_FOLLOW_TIMEOUT, /* the deadline passed */
    CLI_FOLLOW_STOPPED, /* `stoppable` and cli_stop_requested */
};

/*
 * One follow of the event ring. Callbacks get `ctx`; each returns an enum cli_follow_step.
 * Only on_event is required.
 */
struct cli_follower {
    struct procbus_reader *r; /* open, its cursor placed (procbus_seek_events) by the caller */
    void *ctx;
    /* Each event after the cursor, in order. */
    int (*on_event)(void *ctx, const struct procbus_event *ev);
    /* `missed` (> 0) events were overwritten before they were read (the ring was lapped):
     * called before the next event; judge from a snapshot instead. NULL: ignored. */
    int (*on_missed)(void *ctx, uint64_t missed);
    /* The ring is drained and the follow is about to wait. NULL: wait. */
    int (*on_idle)(void *ctx);
    /* procbus_wait said the publisher will not move any more (shut down, or the segment is
     * gone). NULL: wait again (on_idle may then look at the liveness). */
    int (*on_ended)(void *ctx);
    uint64_t deadline_ns; /* CLOCK_MONOTONIC (pb_now_ns); 0: none */
    int slice_ms;         /* the longest single procbus_wait (> 0) */
    int stoppable;        /* 1: end once cli_stop_requested is set */
};

/*
 * Follow f->r's event ring: read every event after the cursor (on_missed, on_event), then
 * on_idle, then wait (procbus_wait, at most slice_ms and never past the deadline) for the
 * generation to move (on_ended when it never will), and again, until a callback says DONE, the
 * deadline passes (checked after on_idle; a deadline already past still reads the ring once) or,
 * `stoppable`, a stop signal arrived (checked before each round and after each drain).
 * Returns an enum cli_follow_end. Makes system calls only through procbus_wait and the
 * callbacks.
 */
int cli_follow(const struct cli_follower *f);

#endif /* PROCBUS_CLI_FOLLOW_H */
