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
 * Publisher thread only.
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

/* Allocate for `cap` records and `buckets` buckets per table. 0 or -ENOMEM. */
int pb_index_init(struct pb_index *ix, uint32_t cap, uint32_t buckets, const unsigned char *arena);
void pb_index_free(struct pb_index *ix);

/* Position of record `id`, or -1. */
int64_t pb_index_find(const struct pb_index *ix, uint64_t id);

/* Append the record stored at arena `slot` (count < cap). Returns its position. */
uint32_t pb_index_add(struct pb_index *ix, uint64_t id, uint32_t slot);

/*
 * Position `pos` now holds the record at arena `new_slot` (which may equal
 * old_slot when the unpublished copy was rewritten in place); `old` is a copy
 * of the previous version, for its keys.
 */
void pb_index_replace(struct pb_index *ix, uint32_t pos, uint32_t old_slot,
                      const struct procbus_proc *old, uint32_t new_slot);

/* Remove the record at `pos` (swap-remove: the last record moves into pos). */
void pb_index_remove(struct pb_index *ix, uint32_t pos);

/* Log one changed entry. */
void pb_dirty_add(struct pb_dirty *d, uint32_t item);

#endif /* PROCBUS_INDEX_H */
