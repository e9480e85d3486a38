/* segguard.c - surviving a segment shrunk under a reader: SIGBUS in a guarded range jumps back. */
#define _GNU_SOURCE
#include "segguard.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

/* The innermost armed guard of each thread. */
static _Thread_local struct pb_guard *tl_guard;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    struct pb_guard *g = tl_guard;
    (void)ctx;

    if (g != NULL && si != NULL && si->si_code > 0 &&
        (g->len == 0 || (uintptr_t)si->si_addr - (uintptr_t)g->base < g->len)) {
        tl_guard = g->prev;
        siglongjmp(g->env, 1);
    }
    /* not a fault in a guarded segment: the default action (the fault repeats on return) */
    signal(sig, SIG_DFL);
    if (si == NULL || si->si_code <= 0)
        raise(sig);
}

int pb_guard_install(void)
{
    static int done;
    struct sigaction sa;

    if (__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

void pb_guard_arm(struct pb_guard *g, const void *base, size_t len)
{
    g->base = base;
    g->len = len;
    g->prev = tl_guard;
    tl_guard = g;
}

void pb_guard_disarm(struct pb_guard *g)
{
    if (tl_guard == g)
        tl_guard = g->prev;
}
