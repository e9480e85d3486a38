/* registry.h - the supervisor's in-process registry: liburcu cds_lfht lookups by id, pid, name. */
#ifndef PROCBUS_REGISTRY_H
#define PROCBUS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "procbus_abi.h"

/*
 * Three RCU lock-free hash tables (urcu-memb flavour) over immutable copies of
 * the committed records. The publisher's thread updates it on every commit,
 * after the commit's segment steps (so a lookup may briefly return the version
 * before the commit readers of the segment already see); any thread may look
 * records up without a lock, after registering itself with
 * procbus_registry_thread_online (and calling _offline before it exits).
 * Duplicated pids or names resolve as in the reader: newest process wins.
 *
 * Context words used below: "writer" is the one thread that owns the
 * publisher (procbus_pub_open registers it); "online" means the calling thread
 * is registered with procbus_registry_thread_online and not offline again.
 * The functions take the RCU read lock themselves where they need it; a
 * caller may already hold it (it nests).
 */
struct procbus_registry;

/*
 * Allocate an empty registry into *out (untouched on error).
 * Context: any thread. Returns: 0 or -ENOMEM.
 */
PROCBUS_MUST_CHECK int procbus_registry_new(struct procbus_registry **out);

/*
 * Free the registry, every record and every reserved node. NULL is a no-op.
 * Context: the writer, once no other thread can still use the registry. The
 * calling thread is registered for the call if it is not online. Waits for a
 * grace period (urcu_memb_barrier: every deferred free has run): do not call
 * inside an RCU read-side critical section.
 */
void procbus_registry_free(struct procbus_registry *reg);

/*
 * Set aside nodes so that the next `n` procbus_registry_put calls need no
 * allocation and cannot fail. Nodes already set aside count; the ones a put
 * does not use stay for later.
 * Context: the writer. Returns: 0, or -ENOMEM (the nodes allocated so far stay
 * set aside; nothing else changed).
 */
PROCBUS_MUST_CHECK int procbus_registry_reserve(struct procbus_registry *reg, size_t n);

/*
 * Insert or replace record rec->id with a copy of *rec. The new copy is added
 * to all three tables before the old one is removed, so a concurrent lookup by
 * id finds the old or the new version, never neither; the old copy is freed
 * after a grace period.
 * Context: the writer, online. Returns: 0, or -ENOMEM (only when no reserved
 * node is left; nothing changed).
 * Ordering: cds_lfht_add issues full memory barriers: a thread that finds the
 * new node sees the whole copy.
 */
PROCBUS_MUST_CHECK int procbus_registry_put(struct procbus_registry *reg,
                                            const struct procbus_proc *rec);

/*
 * Remove record `id`; its copy is freed after a grace period.
 * Context: the writer, online. Returns: 0, or -ENOENT (not in the registry).
 * Ordering: cds_lfht_del issues full memory barriers.
 */
int procbus_registry_del(struct procbus_registry *reg, uint64_t id);

/*
 * Copy a record out by id, pid or name (newest holder of a pid or name wins).
 * Context: any online thread; takes the RCU read lock itself, never blocks,
 * never allocates. Returns: 0, or -ENOENT (*out untouched).
 * Ordering: sees each record as of some put that completed (RCU lookup).
 */
PROCBUS_MUST_CHECK int procbus_registry_get_id(struct procbus_registry *reg, uint64_t id,
                                               struct procbus_proc *out);
PROCBUS_MUST_CHECK int procbus_registry_get_pid(struct procbus_registry *reg, int32_t pid,
                                                struct procbus_proc *out);
PROCBUS_MUST_CHECK int procbus_registry_get_name(struct procbus_registry *reg, const char *name,
                                                 struct procbus_proc *out);

/*
 * Number of records. Context: any thread (a relaxed load; approximate while the
 * writer runs). Returns the count.
 */
size_t procbus_registry_count(struct procbus_registry *reg);

/*
 * Register / unregister the calling thread as an RCU reader
 * (urcu_memb_register_thread). Idempotent per thread.
 * Context: the calling thread, for itself; _offline before the thread exits
 * and outside any read-side critical section. _online returns 1 if this call
 * registered the thread, 0 if it already was.
 */
int procbus_registry_thread_online(void);
void procbus_registry_thread_offline(void);

#endif /* PROCBUS_REGISTRY_H */
