/* index.c - the publisher's private master copy of the snapshot index, with change tracking. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "procbus_abi.h"

/* Beyond this many logged entries a full copy is as cheap: stop logging. */
#define PB_DIRTY_MAX (1u << 20)

void pb_dirty_add(struct pb_dirty *d, uint32_t item)
{
    if (d == NULL || d->overflow)
        return;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 256;
        uint32_t *n;
        if (ncap > PB_DIRTY_MAX || (n = realloc(d->items, ncap * sizeof(*n))) == NULL) {
            d->overflow = 1; /* correct either way: the slot gets a full copy */
            return;
        }
        d->items = n;
        d->cap = ncap;
    }
    d->items[d->n++] = item;
}

int pb_index_init(struct pb_index *ix, uint32_t cap, uint32_t buckets)
{
    uint32_t idb = 2;

    memset(ix, 0, sizeof(*ix));
    while (idb < 2 * cap)
        idb <<= 1;
    ix->cap = cap;
    ix->buckets = buckets;
    ix->mask = buckets - 1;
    ix->id_mask = idb - 1;
    ix->dense = calloc(cap, sizeof(*ix->dense));
    ix->pos_id = calloc(cap, sizeof(*ix->pos_id));
    ix->by_pid = calloc(buckets, sizeof(*ix->by_pid));
    ix->by_name = calloc(buckets, sizeof(*ix->by_name));
    ix->id_key = calloc(idb, sizeof(*ix->id_key));
    ix->id_pos = calloc(idb, sizeof(*ix->id_pos));
    if (!ix->dense || !ix->pos_id || !ix->by_pid || !ix->by_name || !ix->id_key || !ix->id_pos) {
        pb_index_free(ix);
        return -ENOMEM;
    }
    return 0;
}

void pb_index_free(struct pb_index *ix)
{
    free(ix->dense);
    free(ix->pos_id);
    free(ix->by_pid);
    free(ix->by_name);
    free(ix->id_key);
    free(ix->id_pos);
    memset(ix, 0, sizeof(*ix));
}

/* ---- id -> position (private, linear probing, backward-shift deletion) ---- */

static uint32_t id_home(uint64_t id, uint32_t mask)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (uint32_t)id & mask;
}

int64_t pb_index_find(const struct pb_index *ix, uint64_t id)
{
    uint32_t i = id_home(id, ix->id_mask);

    while (ix->id_key[i] != 0) {
        if (ix->id_key[i] == id)
            return ix->id_pos[i];
        i = (i + 1) & ix->id_mask;
    }
    return -1;
}

static void id_set(struct pb_index *ix, uint64_t id, uint32_t pos)
{
    uint32_t i = id_home(id, ix->id_mask);

    while (ix->id_key[i] != 0 && ix->id_key[i] != id)
        i = (i + 1) & ix->id_mask;
    ix->id_key[i] = id;
    ix->id_pos[i] = pos;
}

static void id_del(struct pb_index *ix, uint64_t id)
{
    uint32_t i = id_home(id, ix->id_mask), j;

    while (ix->id_key[i] != id) {
        if (ix->id_key[i] == 0)
            return;
        i = (i + 1) & ix->id_mask;
    }
    for (j = (i + 1) & ix->id_mask; ix->id_key[j] != 0; j = (j + 1) & ix->id_mask) {
        uint32_t home = id_home(ix->id_key[j], ix->id_mask);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & ix->id_mask) >= ((j - i) & ix->id_mask)) {
            ix->id_key[i] = ix->id_key[j];
            ix->id_pos[i] = ix->id_pos[j];
            i = j;
        }
    }
    ix->id_key[i] = 0;
}

/* ---- the shared tables (same algorithm, but every write is logged) ---- */

static void tbl_insert(struct pb_index *ix, uint64_t *tbl, enum pb_region reg, uint32_t key,
                       uint32_t slot)
{
    uint32_t i = procbus_key_home(key, ix->mask);

    while (tbl[i] != 0)
        i = (i + 1) & ix->mask;
    tbl[i] = PROCBUS_BUCKET(key, slot);
    pb_dirty_add(ix->dirty, PB_DIRTY(reg, i));
}

/* Find the bucket holding exactly (key, slot). */
static int64_t tbl_find(const struct pb_index *ix, const uint64_t *tbl, uint32_t key, uint32_t slot)
{
    uint64_t want = PROCBUS_BUCKET(key, slot);
    uint32_t i = procbus_key_home(key, ix->mask);

    while (tbl[i] != 0) {
        if (tbl[i] == want)
            return i;
        i = (i + 1) & ix->mask;
    }
    return -1;
}

static void tbl_delete(struct pb_index *ix, uint64_t *tbl, enum pb_region reg, uint32_t key,
                       uint32_t slot)
{
    int64_t at = tbl_find(ix, tbl, key, slot);
    uint32_t i, j;

    if (at < 0)
        return;
    i = (uint32_t)at;
    for (j = (i + 1) & ix->mask; tbl[j] != 0; j = (j + 1) & ix->mask) {
        uint32_t home = procbus_key_home(PROCBUS_BUCKET_KEY(tbl[j]), ix->mask);
        if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
            tbl[i] = tbl[j];
            pb_dirty_add(ix->dirty, PB_DIRTY(reg, i));
            i = j;
        }
    }
    tbl[i] = 0;
    pb_dirty_add(ix->dirty, PB_DIRTY(reg, i));
}

/* Repoint (key, old_slot) at new_slot in place. */
static void tbl_repoint(struct pb_index *ix, uint64_t *tbl, enum pb_region reg, uint32_t key,
                        uint32_t old_slot, uint32_t new_slot)
{
    int64_t at = tbl_find(ix, tbl, key, old_slot);

    if (at < 0) {
        tbl_insert(ix, tbl, reg, key, new_slot);
        return;
    }
    tbl[at] = PROCBUS_BUCKET(key, new_slot);
    pb_dirty_add(ix->dirty, PB_DIRTY(reg, (uint32_t)at));
}

uint32_t pb_index_add(struct pb_index *ix, uint64_t id, uint32_t slot, int32_t pid,
                      uint32_t name_key, int has_name)
{
    uint32_t pos = ix->count++;

    ix->dense[pos] = slot;
    ix->pos_id[pos] = id;
    pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    id_set(ix, id, pos);
    if (pid > 0)
        tbl_insert(ix, ix->by_pid, PB_BY_PID, (uint32_t)pid, slot);
    if (has_name)
        tbl_insert(ix, ix->by_name, PB_BY_NAME, name_key, slot);
    return pos;
}

static void rekey(struct pb_index *ix, uint64_t *tbl, enum pb_region reg, int old_in,
                  uint32_t old_key, uint32_t old_slot, int new_in, uint32_t new_key,
                  uint32_t new_slot)
{
    if (old_in && new_in && old_key == new_key) {
        if (old_slot != new_slot)
            tbl_repoint(ix, tbl, reg, new_key, old_slot, new_slot);
        return;
    }
    if (old_in)
        tbl_delete(ix, tbl, reg, old_key, old_slot);
    if (new_in)
        tbl_insert(ix, tbl, reg, new_key, new_slot);
}

void pb_index_replace(struct pb_index *ix, uint32_t pos, uint32_t old_slot, int32_t old_pid,
                      uint32_t old_key, int old_has_name, uint32_t new_slot, int32_t new_pid,
                      uint32_t new_key, int new_has_name)
{
    if (old_slot != new_slot) {
        ix->dense[pos] = new_slot;
        pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    }
    rekey(ix, ix->by_pid, PB_BY_PID, old_pid > 0, (uint32_t)old_pid, old_slot, new_pid > 0,
          (uint32_t)new_pid, new_slot);
    rekey(ix, ix->by_name, PB_BY_NAME, old_has_name, old_key, old_slot, new_has_name, new_key,
          new_slot);
}

void pb_index_remove(struct pb_index *ix, uint32_t pos, uint32_t slot, int32_t pid,
                     uint32_t name_key, int has_name)
{
    uint32_t last = ix->count - 1;

    if (pid > 0)
        tbl_delete(ix, ix->by_pid, PB_BY_PID, (uint32_t)pid, slot);
    if (has_name)
        tbl_delete(ix, ix->by_name, PB_BY_NAME, name_key, slot);
    id_del(ix, ix->pos_id[pos]);
    if (pos != last) {
        ix->dense[pos] = ix->dense[last];
        ix->pos_id[pos] = ix->pos_id[last];
        id_set(ix, ix->pos_id[pos], pos);
        pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    }
    ix->count--;
}
