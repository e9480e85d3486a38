/* cli_follow.c - following procbusd's event ring (watch, wait, start/stop/restart), and the stop
 * signals that end a follow (also logs -f). */
#define _GNU_SOURCE
#include "cli_follow.h"

#include <errno.h>
#include <string.h>

#include "util.h"

volatile sig_atomic_t cli_stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_catch_stop_signal(int sig)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

int cli_follow(const struct cli_follower *f)
{
    for (;;) {
        struct procbus_event ev;
        uint64_t missed = 0, gen;
        int w, step, wait_ms = f->slice_ms;

        if (f->stoppable && cli_stop_requested)
            return CLI_FOLLOW_STOPPED;
        gen = procbus_generation(f->r); /* before draining: a commit after it wakes the wait */
        while ((w = procbus_next_event(f->r, &ev, &missed)) == 0 || missed > 0) {
            if (missed > 0 && f->on_missed != NULL &&
                f->on_missed(f->ctx, missed) == CLI_FOLLOW_DONE)
                return CLI_FOLLOW_ENDED;
            if (w != 0)
                break;
            if (f->on_event(f->ctx, &ev) == CLI_FOLLOW_DONE)
                return CLI_FOLLOW_ENDED;
        }
        if (f->stoppable && cli_stop_requested)
            return CLI_FOLLOW_STOPPED;
        step = f->on_idle != NULL ? f->on_idle(f->ctx) : CLI_FOLLOW_MORE;
        if (step == CLI_FOLLOW_DONE)
            return CLI_FOLLOW_ENDED;
        if (step == CLI_FOLLOW_AGAIN)
            continue;
        if (f->deadline_ns != 0) {
            uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
            uint64_t left_ms = now < f->deadline_ns ? (f->deadline_ns - now) / 1000000u : 0;
            if (left_ms == 0)
                return CLI_FOLLOW_TIMEOUT;
            if (left_ms < (uint64_t)wait_ms)
                wait_ms = (int)left_ms;
        }
        w = procbus_wait(f->r, gen, wait_ms);
        if (w == -EPIPE && f->on_ended != NULL && f->on_ended(f->ctx) == CLI_FOLLOW_DONE)
            return CLI_FOLLOW_ENDED;
    }
}
