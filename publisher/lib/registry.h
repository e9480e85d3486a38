/* registry.h - the supervisor's in-process registry: liburcu cds_lfht lookups by id, pid, name. */
#ifndef PROCBUS_REGISTRY_H
#define PROCBUS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "procbus_abi.h"

/*
 * Three RCU lock-free hash tables (urcu-memb flavour) over immutable copies of
 * the committed records. The publisher's thread updates it on every commit;
 * any thread may look records up without a lock, after registering itself
 * with procbus_registry_thread_online (and calling _offline before it exits).
 * Duplicated pids or names resolve as in the reader: newest process wins.
 */
struct procbus_registry;

/* Allocate an empty registry. Returns 0 or -ENOMEM. */
int procbus_registry_new(struct procbus_registry **out);

/* Free it and every record (waits for a grace period). No thread may still use it. */
void procbus_registry_free(struct procbus_registry *reg);

/*
 * Insert or replace record rec->id (writer: the publisher's thread only, which
 * must be online). The old copy is freed after a grace period.
 * Returns 0 or -ENOMEM.
 */
int procbus_registry_put(struct procbus_registry *reg, const struct procbus_proc *rec);

/* Remove record `id` (writer only). Returns 0 or -ENOENT. */
int procbus_registry_del(struct procbus_registry *reg, uint64_t id);

/*
 * Copy a record out by id, pid or name. Any online thread; takes the RCU read
 * lock itself, never blocks, never allocates. Returns 0 or -ENOENT.
 */
int procbus_registry_get_id(struct procbus_registry *reg, uint64_t id, struct procbus_proc *out);
int procbus_registry_get_pid(struct procbus_registry *reg, int32_t pid, struct procbus_proc *out);
int procbus_registry_get_name(struct procbus_registry *reg, const char *name,
                              struct procbus_proc *out);

/* Number of records (approximate while a writer runs). */
size_t procbus_registry_count(struct procbus_registry *reg);

/*
 * Register / unregister the calling thread as an RCU reader. Idempotent per
 * thread. Returns 1 if this call registered it, 0 if it already was.
 */
int procbus_registry_thread_online(void);
void procbus_registry_thread_offline(void);

#endif /* PROCBUS_REGISTRY_H */
