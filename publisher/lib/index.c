/* index.c - the publisher's private master copy of the snapshot index, with change tracking. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- private u64 -> u32 maps (linear probing, backward-shift deletion) ---- */

static uint32_t mix_home(uint64_t k, uint32_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k & mask;
}

static int map_init(struct pb_map *m, uint32_t min_entries)
{
    uint32_t n = 2;

    while (n < 2 * min_entries)
        n <<= 1;
    m->mask = n - 1;
    m->key = calloc(n, sizeof(*m->key));
    m->val = calloc(n, sizeof(*m->val));
    return m->key && m->val ? 0 : -ENOMEM;
}

static void map_free(struct pb_map *m)
{
    free(m->key);
    free(m->val);
}

/* Index of `key`, or of the empty bucket where it would go. */
static uint32_t map_slot(const struct pb_map *m, uint64_t key)
{
    uint32_t i = mix_home(key, m->mask);

    while (m->key[i] != 0 && m->key[i] != key)
        i = (i + 1) & m->mask;
    return i;
}

static void map_del_at(struct pb_map *m, uint32_t i)
{
    uint32_t j;

    for (j = (i + 1) & m->mask; m->key[j] != 0; j = (j + 1) & m->mask) {
        uint32_t home = mix_home(m->key[j], m->mask);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->key[i] = m->key[j];
            m->val[i] = m->val[j];
            i = j;
        }
    }
    m->key[i] = 0;
}

static void map_set(struct pb_map *m, uint64_t key, uint32_t val)
{
    uint32_t i = map_slot(m, key);
    m->key[i] = key;
    m->val[i] = val;
}

static void map_del(struct pb_map *m, uint64_t key)
{
    uint32_t i = map_slot(m, key);
    if (m->key[i] == key)
        map_del_at(m, i);
}

/* Add `delta` (+1/-1) to the count of `key`; returns the new count. */
static uint32_t map_count(struct pb_map *m, uint64_t key, int delta)
{
    uint32_t i = map_slot(m, key), v;

    if (m->key[i] == 0) {
        if (delta < 0)
            return 0;
        m->key[i] = key;
        m->val[i] = 0;
    }
    v = m->val[i] + (uint32_t)delta;
    if (v == 0)
        map_del_at(m, i);
    else
        m->val[i] = v;
    return v;
}

int pb_index_init(struct pb_index *ix, uint32_t cap, uint32_t buckets, const unsigned char *arena)
{
    memset(ix, 0, sizeof(*ix));
    ix->cap = cap;
    ix->buckets = buckets;
    ix->mask = buckets - 1;
    ix->arena = arena;
    ix->dense = calloc(cap, sizeof(*ix->dense));
    ix->pos_id = calloc(cap, sizeof(*ix->pos_id));
    ix->by_pid = calloc(buckets, sizeof(*ix->by_pid));
    ix->by_name = calloc(buckets, sizeof(*ix->by_name));
    if (!ix->dense || !ix->pos_id || !ix->by_pid || !ix->by_name || map_init(&ix->ids, cap) ||
        map_init(&ix->pid_holders, cap) || map_init(&ix->name_holders, cap)) {
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
    map_free(&ix->ids);
    map_free(&ix->pid_holders);
    map_free(&ix->name_holders);
    memset(ix, 0, sizeof(*ix));
}

int64_t pb_index_find(const struct pb_index *ix, uint64_t id)
{
    uint32_t i = map_slot(&ix->ids, id);
    return ix->ids.key[i] == id ? (int64_t)ix->ids.val[i] : -1;
}

/* ---- the shared tables ---- */

static const struct procbus_proc *rec_at(const struct pb_index *ix, uint32_t slot)
{
    return (const struct procbus_proc *)(ix->arena + (uint64_t)slot * sizeof(struct procbus_proc));
}

/* The newest process wins a key: larger boot-time start, then larger id. */
static int better(const struct procbus_proc *a, const struct procbus_proc *b)
{
    if (a->start_boot_ns != b->start_boot_ns)
        return a->start_boot_ns > b->start_boot_ns;
    return a->id > b->id;
}

/* One table's view of a record: its key, and whether another record has the same key. */
struct keyview {
    enum pb_region reg;
    uint64_t *tbl;
    struct pb_map *holders;
};

static int has_key(enum pb_region reg, const struct procbus_proc *r)
{
    return reg == PB_BY_PID ? r->pid > 0 : r->name[0] != '\0';
}

static uint32_t key_of(enum pb_region reg, const struct procbus_proc *r)
{
    return reg == PB_BY_PID ? (uint32_t)r->pid : procbus_name_hash(r->name, PROCBUS_NAME_LEN);
}

static int same_key(enum pb_region reg, const struct procbus_proc *a, const struct procbus_proc *b)
{
    return reg == PB_BY_PID ? a->pid == b->pid : strncmp(a->name, b->name, PROCBUS_NAME_LEN) == 0;
}

static uint64_t holder_key(enum pb_region reg, uint32_t key)
{
    return reg == PB_BY_PID ? key : (uint64_t)key + 1;
}

static void tbl_set(struct pb_index *ix, const struct keyview *kv, uint32_t i, uint64_t v)
{
    kv->tbl[i] = v;
    pb_dirty_add(ix->dirty, PB_DIRTY(kv->reg, i));
}

/* Bucket of the entry for exactly `r`'s key (compared on the records), or -1. */
static int64_t tbl_find_key(const struct pb_index *ix, const struct keyview *kv,
                            const struct procbus_proc *r, uint32_t key)
{
    uint32_t i = procbus_key_home(key, ix->mask);

    for (; kv->tbl[i] != 0; i = (i + 1) & ix->mask)
        if (PROCBUS_BUCKET_KEY(kv->tbl[i]) == key &&
            same_key(kv->reg, rec_at(ix, PROCBUS_BUCKET_SLOT(kv->tbl[i])), r))
            return i;
    return -1;
}

/* Bucket holding exactly (key, slot), or -1. */
static int64_t tbl_find_exact(const struct pb_index *ix, const struct keyview *kv, uint32_t key,
                              uint32_t slot)
{
    uint64_t want = PROCBUS_BUCKET(key, slot);
    uint32_t i = procbus_key_home(key, ix->mask);

    for (; kv->tbl[i] != 0; i = (i + 1) & ix->mask)
        if (kv->tbl[i] == want)
            return i;
    return -1;
}

static void tbl_delete_at(struct pb_index *ix, const struct keyview *kv, uint32_t i)
{
    uint32_t j;

    for (j = (i + 1) & ix->mask; kv->tbl[j] != 0; j = (j + 1) & ix->mask) {
        uint32_t home = procbus_key_home(PROCBUS_BUCKET_KEY(kv->tbl[j]), ix->mask);
        if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
            tbl_set(ix, kv, i, kv->tbl[j]);
            i = j;
        }
    }
    tbl_set(ix, kv, i, 0);
}

/* Record at arena `slot` (content r) now carries its key: index it unless a newer holder is. */
static void key_add(struct pb_index *ix, const struct keyview *kv, const struct procbus_proc *r,
                    uint32_t slot)
{
    uint32_t key, i;
    int64_t at;

    if (!has_key(kv->reg, r))
        return;
    key = key_of(kv->reg, r);
    map_count(kv->holders, holder_key(kv->reg, key), +1);
    at = tbl_find_key(ix, kv, r, key);
    if (at >= 0) {
        if (PROCBUS_BUCKET_SLOT(kv->tbl[at]) != slot &&
            better(r, rec_at(ix, PROCBUS_BUCKET_SLOT(kv->tbl[at]))))
            tbl_set(ix, kv, (uint32_t)at, PROCBUS_BUCKET(key, slot));
        return;
    }
    for (i = procbus_key_home(key, ix->mask); kv->tbl[i] != 0; i = (i + 1) & ix->mask)
        ;
    tbl_set(ix, kv, i, PROCBUS_BUCKET(key, slot));
}

/*
 * The record that was at arena `slot` with content `old` no longer carries its
 * key. If the index pointed at it, point at the next newest holder, found by a
 * scan of the table (only when the holder count says another exists).
 */
static void key_del(struct pb_index *ix, const struct keyview *kv, const struct procbus_proc *old,
                    uint32_t slot)
{
    const struct procbus_proc *best = NULL;
    uint32_t key, left, p, best_slot = 0;
    int64_t at;

    if (!has_key(kv->reg, old))
        return;
    key = key_of(kv->reg, old);
    left = map_count(kv->holders, holder_key(kv->reg, key), -1);
    at = tbl_find_exact(ix, kv, key, slot);
    if (at < 0)
        return; /* a newer holder had the entry */
    for (p = 0; left > 0 && p < ix->count; p++) {
        const struct procbus_proc *c;
        if (ix->dense[p] == slot)
            continue;
        c = rec_at(ix, ix->dense[p]);
        if (has_key(kv->reg, c) && same_key(kv->reg, c, old) && (!best || better(c, best))) {
            best = c;
            best_slot = ix->dense[p];
        }
    }
    if (best != NULL)
        tbl_set(ix, kv, (uint32_t)at, PROCBUS_BUCKET(key, best_slot));
    else
        tbl_delete_at(ix, kv, (uint32_t)at);
}

static void views(struct pb_index *ix, struct keyview kv[2])
{
    kv[0] = (struct keyview){PB_BY_PID, ix->by_pid, &ix->pid_holders};
    kv[1] = (struct keyview){PB_BY_NAME, ix->by_name, &ix->name_holders};
}

uint32_t pb_index_add(struct pb_index *ix, uint64_t id, uint32_t slot)
{
    const struct procbus_proc *r = rec_at(ix, slot);
    struct keyview kv[2];
    uint32_t pos = ix->count++;

    ix->dense[pos] = slot;
    ix->pos_id[pos] = id;
    pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    map_set(&ix->ids, id, pos);
    views(ix, kv);
    key_add(ix, &kv[0], r, slot);
    key_add(ix, &kv[1], r, slot);
    return pos;
}

void pb_index_replace(struct pb_index *ix, uint32_t pos, uint32_t old_slot,
                      const struct procbus_proc *old, uint32_t new_slot)
{
    const struct procbus_proc *r = rec_at(ix, new_slot);
    struct keyview kv[2];
    int t;

    if (old_slot != new_slot) {
        ix->dense[pos] = new_slot;
        pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    }
    views(ix, kv);
    for (t = 0; t < 2; t++) {
        int had = has_key(kv[t].reg, old), has = has_key(kv[t].reg, r);
        int64_t at;
        if (had && has && same_key(kv[t].reg, old, r) && old->start_boot_ns == r->start_boot_ns) {
            /* same key, same rank (the common update): just follow the record */
            at = tbl_find_exact(ix, &kv[t], key_of(kv[t].reg, old), old_slot);
            if (at >= 0 && old_slot != new_slot)
                tbl_set(ix, &kv[t], (uint32_t)at, PROCBUS_BUCKET(key_of(kv[t].reg, r), new_slot));
            continue;
        }
        key_del(ix, &kv[t], old, old_slot);
        key_add(ix, &kv[t], r, new_slot);
    }
}

void pb_index_remove(struct pb_index *ix, uint32_t pos)
{
    uint32_t last = ix->count - 1, slot = ix->dense[pos];
    const struct procbus_proc *r = rec_at(ix, slot);
    struct keyview kv[2];

    views(ix, kv);
    /* take it out of the dense array first, so the holder scan cannot pick it */
    map_del(&ix->ids, ix->pos_id[pos]);
    if (pos != last) {
        ix->dense[pos] = ix->dense[last];
        ix->pos_id[pos] = ix->pos_id[last];
        map_set(&ix->ids, ix->pos_id[pos], pos);
        pb_dirty_add(ix->dirty, PB_DIRTY(PB_DENSE, pos));
    }
    ix->count--;
    key_del(ix, &kv[0], r, slot);
    key_del(ix, &kv[1], r, slot);
}
