/* fsm.c - the program state machine of procbusd as a table: (state, event) -> (action, next). */
#include "fsm.h"

#define T(a, n)                      \
    {                                \
        PBD_A_##a, PROCBUS_STATE_##n \
    }

/*
 * Read a row as: in this state, on each event, do this and (usually) go there.
 * Columns: START, STOP, SPAWN_FAILED, EXIT, STARTSECS, RETRY, STOP_TIMEOUT, READY.
 */
static const struct pbd_transition table[PROCBUS_STATE_COUNT_][PBD_EV_COUNT_] = {
    [PROCBUS_STATE_STOPPED] = {T(SPAWN, STARTING), T(REFUSE, STOPPED), T(IGNORE, STOPPED),
                               T(IGNORE, STOPPED), T(IGNORE, STOPPED), T(IGNORE, STOPPED),
                               T(IGNORE, STOPPED), T(IGNORE, STOPPED)},
    [PROCBUS_STATE_STARTING] = {T(REFUSE, STARTING), T(SIGNAL_STOP, STOPPING),
                                T(START_FAILED, BACKOFF), T(START_FAILED, BACKOFF),
                                T(RUNNING, RUNNING), T(IGNORE, STARTING), T(IGNORE, STARTING),
                                T(READY, READY)},
    [PROCBUS_STATE_RUNNING] = {T(REFUSE, RUNNING), T(SIGNAL_STOP, STOPPING), T(IGNORE, RUNNING),
                               T(EXITED, EXITED), T(IGNORE, RUNNING), T(IGNORE, RUNNING),
                               T(IGNORE, RUNNING), T(READY, READY)},
    [PROCBUS_STATE_READY] = {T(REFUSE, READY), T(SIGNAL_STOP, STOPPING), T(IGNORE, READY),
                             T(EXITED, EXITED), T(IGNORE, READY), T(IGNORE, READY),
                             T(IGNORE, READY), T(IGNORE, READY)},
    [PROCBUS_STATE_BACKOFF] = {T(SPAWN, STARTING), T(CANCEL, STOPPED), T(IGNORE, BACKOFF),
                               T(IGNORE, BACKOFF), T(IGNORE, BACKOFF), T(SPAWN, STARTING),
                               T(IGNORE, BACKOFF), T(IGNORE, BACKOFF)},
    [PROCBUS_STATE_STOPPING] = {T(REFUSE, STOPPING), T(IGNORE, STOPPING), T(IGNORE, STOPPING),
                                T(STOPPED, STOPPED), T(IGNORE, STOPPING), T(IGNORE, STOPPING),
                                T(KILL, STOPPING), T(IGNORE, STOPPING)},
    [PROCBUS_STATE_EXITED] = {T(SPAWN, STARTING), T(REFUSE, EXITED), T(IGNORE, EXITED),
                              T(IGNORE, EXITED), T(IGNORE, EXITED), T(IGNORE, EXITED),
                              T(IGNORE, EXITED), T(IGNORE, EXITED)},
    [PROCBUS_STATE_FATAL] = {T(SPAWN, STARTING), T(REFUSE, FATAL), T(IGNORE, FATAL),
                             T(IGNORE, FATAL), T(IGNORE, FATAL), T(IGNORE, FATAL), T(IGNORE, FATAL),
                             T(IGNORE, FATAL)},
};

struct pbd_transition pbd_fsm(uint16_t state, enum pbd_event ev)
{
    struct pbd_transition none = {PBD_A_IGNORE, 0};

    if (state >= PROCBUS_STATE_COUNT_ || state == PROCBUS_STATE_UNKNOWN || ev >= PBD_EV_COUNT_) {
        none.next = (uint8_t)state;
        return none;
    }
    return table[state][ev];
}

const char *pbd_event_name(enum pbd_event ev)
{
    static const char *names[] = {"start",     "stop",  "spawn-failed", "exit",
                                  "startsecs", "retry", "stop-timeout", "ready"};
    return ev < PBD_EV_COUNT_ ? names[ev] : "?";
}

int pbd_state_has_process(uint16_t state)
{
    return state == PROCBUS_STATE_STARTING || state == PROCBUS_STATE_RUNNING ||
           state == PROCBUS_STATE_READY || state == PROCBUS_STATE_STOPPING;
}

int pbd_backoff_delay(int exponential, int attempt, int max)
{
    long d = 1;

    if (attempt < 1)
        attempt = 1;
    if (exponential) {
        while (--attempt > 0 && d < max)
            d *= 2;
    } else {
        d = attempt;
    }
    if (max > 0 && d > max)
        d = max;
    return (int)d;
}
