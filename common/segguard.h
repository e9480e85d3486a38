/* segguard.h - surviving a segment shrunk under a reader: a SIGBUS in a guarded range becomes a
 * jump back to the guard (long-running tools reopen; one-shot tools report). */
#ifndef PROCBUS_SEGGUARD_H
#define PROCBUS_SEGGUARD_H

#include <setjmp.h>
#include <stddef.h>

/*
 * Whoever can write a segment file (its publisher's user) can ftruncate it
 * while readers have it mapped; their next load from the lost pages faults
 * with SIGBUS. procbus.h cannot prevent that (docs/ABI.md, "Limits"): a tool
 * that must survive it guards its segment reads, as long-lived mmap readers
 * do:
 *
 *     struct pb_guard g;
 *     pb_guard_arm(&g, r.base, r.len);
 *     if (sigsetjmp(g.env, 1) != 0) {
 *         // the segment shrank: g is disarmed; close r (munmap) and reopen
 *     } else {
 *         ... procbus_list(&r, ...), procbus_next_event(&r, ...) ...
 *         pb_guard_disarm(&g);
 *     }
 *
 * Only a fault SIGBUS (not one sent with kill) on a thread with an armed
 * guard jumps, to its innermost guard, and only when the fault address lies
 * in [base, base + len) of that guard (len 0: anywhere - a SIGBUS from a
 * load is a read past the end of a file mapping, and the guarded code reads
 * no file mapping but segments; the procbus command arms one such guard
 * around every command). Any other SIGBUS takes the default action, as
 * without the handler.
 * The guarded code must not hold a lock or leave half-updated state that
 * outlives the jump (procbus.h's reads only copy into caller memory, which
 * is then to be discarded). Guards nest per thread; a guard must be disarmed
 * (or have fired) before its frame returns.
 */
struct pb_guard {
    sigjmp_buf env;
    const void *base;
    size_t len;
    struct pb_guard *prev;
};

/* Install the process's SIGBUS handler (once; later calls do nothing). 0 or -errno. */
int pb_guard_install(void);

/* Arm g for [base, base + len) (len 0: any address) on the calling thread; then call
 * sigsetjmp(g->env, 1). */
void pb_guard_arm(struct pb_guard *g, const void *base, size_t len);

/* Disarm g (the innermost guard of this thread) after the guarded code ran without a fault. */
void pb_guard_disarm(struct pb_guard *g);

#endif /* PROCBUS_SEGGUARD_H */
