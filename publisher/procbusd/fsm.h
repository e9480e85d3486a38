/* fsm.h - the program state machine of procbusd as a table: (state, event) -> (action, next). */
#ifndef PROCBUSD_FSM_H
#define PROCBUSD_FSM_H

#include <stdint.h>

#include "procbus_abi.h"

/* Events a program instance receives. */
enum pbd_event {
    PBD_EV_START = 0,    /* start requested (autostart, `procbus start`, restart) */
    PBD_EV_STOP,         /* stop requested */
    PBD_EV_SPAWN_FAILED, /* fork/exec failed (a failed start, as supervisord's spawnerr) */
    PBD_EV_EXIT,         /* the main process exited */
    PBD_EV_STARTSECS,    /* startsecs elapsed in STARTING */
    PBD_EV_RETRY,        /* the backoff delay elapsed */
    PBD_EV_STOP_TIMEOUT, /* stopwaitsecs elapsed in STOPPING */
    PBD_EV_READY,        /* readiness notification (ready_fd / ready_log) */
    PBD_EV_COUNT_
};

/*
 * What the daemon does on a transition: pbd_inst_fire (supervise.c) carries
 * each one out, and the comment of each says all it does. Some actions choose
 * between two outcomes themselves, which the table notes as "next" alternatives:
 *   PBD_A_START_FAILED: BACKOFF (retry later) or FATAL (startretries exhausted)
 *   PBD_A_EXITED: EXITED, then a new start when autorestart says so (or BACKOFF until
 *                 the start limit's window has passed, then a start by PBD_EV_RETRY)
 */
enum pbd_action {
    PBD_A_IGNORE = 0,   /* nothing to do (the event is stale or irrelevant) */
    PBD_A_REFUSE,       /* a request that makes no sense in this state: report an error */
    PBD_A_SPAWN,        /* fork/exec; next = STARTING (RUNNING at once when startsecs = 0) */
    PBD_A_RUNNING,      /* startsecs passed: reset the retry count */
    PBD_A_READY,        /* readiness reported (counts as a successful start in STARTING) */
    PBD_A_START_FAILED, /* exited or failed to spawn before startsecs */
    PBD_A_EXITED,       /* exited after a successful start */
    PBD_A_SIGNAL_STOP,  /* send stopsignal (with stopasgroup: to its group and to its tree as
                         * the tracer saw it), arm stopwaitsecs */
    PBD_A_KILL,         /* stopwaitsecs passed: SIGKILL (with killasgroup: to its group) */
    PBD_A_STOPPED,      /* it exited after a stop: SIGKILL what is left of its process group
                         * and of its tree (the tracer's view), then apply a reload's new
                         * settings */
    PBD_A_CANCEL,       /* stop while waiting to retry: cancel the timer, apply a reload's
                         * new settings */
};

struct pbd_transition {
    uint8_t action; /* enum pbd_action */
    uint8_t next;   /* enum procbus_state (the usual outcome) */
};

/* The table lookup; states outside the table yield {PBD_A_IGNORE, state}. */
struct pbd_transition pbd_fsm(uint16_t state, enum pbd_event ev);

/* The event's name for logs ("start", "stop", ...); "?" outside the enum. (State names:
 * procbus_state_name in procbus.h.) */
const char *pbd_event_name(enum pbd_event ev);

/* 1 for the states in which the program has a live main process. */
int pbd_state_has_process(uint16_t state);

/*
 * Seconds to wait before retry number `attempt` (1-based) in BACKOFF:
 * linear (supervisord): attempt; exponential: 2^(attempt-1); both capped at max.
 */
int pbd_backoff_delay(int exponential, int attempt, int max);

#endif /* PROCBUSD_FSM_H */
