/* pubcall.h - procbusd's fallible calls into the publisher library, each failure logged once. */
#ifndef PROCBUSD_PUBCALL_H
#define PROCBUSD_PUBCALL_H

#include <stdint.h>

#include "procbus_abi.h"

struct procbus_pub;

/*
 * Every procbus_pub_commit, procbus_pub_upsert, procbus_pub_remove and
 * procbus_pub_event procbusd makes goes through these, so that no failure is
 * dropped silently: each checks the library's return value and logs a failure
 * as one error line (pbd_diag), naming the record (its name, else its pid).
 * They return what the library returned; the caller decides what to do next.
 * Publisher thread only (procbusd's loop), like the library calls themselves.
 */

/*
 * procbus_pub_commit: make everything staged visible. Returns 0 or a negative
 * errno (-ENOMEM: nothing was published; the changes stay staged, a later
 * commit publishes them).
 */
int pbd_pub_commit(struct procbus_pub *pub);

/* pbd_pub_upsert flags. */
#define PBD_PUB_QUIET_FULL                                             \
    0x1u /* do not log -ENOSPC: the library counts it in the header's  \
          * records_dropped, which `procbus top` and the exporter show \
          * (for the tracer's records, which a busy host may refuse by \
          * the thousand) */

/* procbus_pub_upsert: stage *rec. Returns 0 or its negative errno (-ENOSPC, -EINVAL). */
int pbd_pub_upsert(struct procbus_pub *pub, const struct procbus_proc *rec, unsigned flags);

/* procbus_pub_remove: stage the removal of record `id`. Returns 0 or -ENOENT. */
int pbd_pub_remove(struct procbus_pub *pub, uint64_t id);

/* procbus_pub_event: stage event `kind` about *rec. Returns 0, -EINVAL or -ENOMEM. */
int pbd_pub_event(struct procbus_pub *pub, uint16_t kind, const struct procbus_proc *rec);

#endif /* PROCBUSD_PUBCALL_H */
