/* index.h - the publisher's private master copy of the snapshot index, with change tracking. */
#ifndef PROCBUS_INDEX_H
#define PROCBUS_INDEX_H

#include <stddef.h>
#include <stdint.h>

/*
 * The master index mirrors what every snapshot slot holds: a dense array of
 * arena slots (one per record) and two open-addressing tables (by pid, by name
 * hash) in the bucket format of procbus_abi.h. Every entry it changes is
 * logged as a "dirty" word (region << 30 | index) so a snapshot slot can be
 * brought up to date by copying just those entries. Publisher thread only.
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

struct pb_index {
    uint32_t cap, buckets, mask, count;
    uint32_t *dense;   /* arena slot of each position */
    uint64_t *pos_id;  /* record id of each position */
    uint64_t *by_pid;  /* PROCBUS_BUCKET(pid, slot) */
    uint64_t *by_name; /* PROCBUS_BUCKET(name hash, slot) */
    uint64_t *id_key;  /* id -> position map (0 = empty) */
    uint32_t *id_pos;
    uint32_t id_mask;
    struct pb_dirty *dirty; /* where changes are logged; set by the publisher */
};

int pb_index_init(struct pb_index *ix, uint32_t cap, uint32_t buckets);
void pb_index_free(struct pb_index *ix);

/* Position of record `id`, or -1. */
int64_t pb_index_find(const struct pb_index *ix, uint64_t id);

/* Append a record (count < cap). pid 0 / empty name are not indexed. Returns its position. */
uint32_t pb_index_add(struct pb_index *ix, uint64_t id, uint32_t slot, int32_t pid,
                      uint32_t name_key, int has_name);

/* Point position `pos` at a new arena slot, re-keying its index entries. */
void pb_index_replace(struct pb_index *ix, uint32_t pos, uint32_t old_slot, int32_t old_pid,
                      uint32_t old_key, int old_has_name, uint32_t new_slot, int32_t new_pid,
                      uint32_t new_key, int new_has_name);

/* Remove the record at `pos` (swap-remove: the last record moves into pos). */
void pb_index_remove(struct pb_index *ix, uint32_t pos, uint32_t slot, int32_t pid,
                     uint32_t name_key, int has_name);

/* Log one changed entry. */
void pb_dirty_add(struct pb_dirty *d, uint32_t item);

#endif /* PROCBUS_INDEX_H */
