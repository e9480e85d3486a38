/* index.h - the publisher's private master copy of the snapshot index, with change tracking. */
#ifndef PROCBUS_INDEX_H
#define PROCBUS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "procbus_abi.h"

/*
 * The master index mirrors what every snapshot slot holds: a dense array of
 * arena slots (one per record) and two open-addressing tables (by pid, by name
 * hash) in the bucket format of procbus_abi.h. Each table holds ONE entry per
 * distinct key (pid, or exact name): the newest holder (largest start_boot_ns,
 * then largest id), so a reader can stop at the first match. Every entry it
 * changes is logged as a "dirty" word (region << 30 | index) so a snapshot
 * slot can be brought up to date by copying just those entries.
 *
 * Context for every function here: the publisher's thread only (no locks).
 * The index is private memory: nothing here touches the segment or needs a
 * barrier; procbus_pub_commit copies the logged entries into a snapshot slot
 * (ABI.md commit step 3) between the barriers of steps 2 and 4.
 */

enum pb_region { PB_DENSE = 0, PB_BY_PID = 1, PB_BY_NAME = 2 };
#define PB_DIRTY(region, idx) (((uint32_t)(region) << 30) | (uint32_t)(idx))
#define PB_DIRTY_REGION(d)    ((d) >> 30)
#define PB_DIRTY_INDEX(d)     ((d)&0x3fffffffu)

struct pb_dirty {
    uint32_t *items;
    size_t n, cap;
    int overflow; /* too many to be worth tracking: copy everything */
};

/* A private open-addressing map from a non-zero u64 key to a u32. */
struct pb_map {
    uint64_t *key; /* 0 = empty */
    uint32_t *val;
    uint32_t mask;
};

struct pb_index {
    uint32_t cap, buckets, mask, count;
    uint32_t *dense;            /* arena slot of each position */
    uint64_t *pos_id;           /* record id of each position */
    uint64_t *by_pid;           /* PROCBUS_BUCKET(pid, slot) */
    uint64_t *by_name;          /* PROCBUS_BUCKET(name hash, slot) */
    struct pb_map ids;          /* id -> position */
    struct pb_map pid_holders;  /* pid -> records carrying it */
    struct pb_map name_holders; /* name hash + 1 -> records carrying a name with that hash */
    const unsigned char *arena; /* the records the slots refer to */
    struct pb_dirty *dirty;     /* where changes are logged; set by the publisher */
};

/*
 * Allocate an empty index for `cap` records and `buckets` buckets per table
 * (a power of two, > cap) over the records at `arena` (may be set later, as
 * ix->arena, before the first add). ix->dirty starts NULL (nothing logged).
 * Returns: 0, or -ENOMEM (*ix then holds nothing to free).
 */
PROCBUS_MUST_CHECK int pb_index_init(struct pb_index *ix, uint32_t cap, uint32_t buckets,
                                     const unsigned char *arena);

/* Free everything pb_index_init allocated and zero *ix. Safe on a zeroed index. */
void pb_index_free(struct pb_index *ix);

/* Returns the position (0 .. count-1) of record `id`, or -1 when it is not indexed. */
int64_t pb_index_find(const struct pb_index *ix, uint64_t id);

/*
 * Append record `id`, whose content is already stored at arena `slot`, and
 * index its pid and name (unless a newer holder of the key is indexed).
 * Requires count < cap and `id` not indexed. Logs every entry it changes in
 * ix->dirty. Returns its position. Cannot fail.
 */
uint32_t pb_index_add(struct pb_index *ix, uint64_t id, uint32_t slot);

/*
 * Position `pos` now holds the record at arena `new_slot` (which may equal
 * old_slot when the unpublished copy was rewritten in place); `old` is a copy
 * of the previous version, for its keys. The new content must already be at
 * new_slot. Logs every entry it changes. Cannot fail.
 */
void pb_index_replace(struct pb_index *ix, uint32_t pos, uint32_t old_slot,
                      const struct procbus_proc *old, uint32_t new_slot);

/*
 * Remove the record at `pos` (< count; swap-remove: the last record moves
 * into pos, so positions change). The record's arena slot must still hold its
 * content (its keys are read). Logs every entry it changes. Cannot fail.
 */
void pb_index_remove(struct pb_index *ix, uint32_t pos);

/*
 * Log one changed entry in `d` (NULL: not logging). When the log cannot grow
 * (allocation failure, or more than a full copy is worth) it is marked
 * `overflow` instead, which makes the next rewrite of the slot a full copy:
 * correct either way, so it cannot fail.
 */
void pb_dirty_add(struct pb_dirty *d, uint32_t item);

#endif /* PROCBUS_INDEX_H */
