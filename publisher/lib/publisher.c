/* publisher.c - stage record changes and commit them with one atomic offset swap. */
#define _GNU_SOURCE
#include "procbus_pub.h"

#include "procbus.h" /* procbus_segment_path: the one segment-name rule */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pub_int.h"
#include "registry.h"

/* ---- small helpers ---- */

struct procbus_proc *pb_pub_arena_rec(struct procbus_pub *p, uint32_t slot)
{
    return (struct procbus_proc *)(p->arena + (uint64_t)slot * sizeof(struct procbus_proc));
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *n;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    n = realloc(*arr, ncap * elem);
    if (n == NULL)
        return -ENOMEM;
    *arr = n;
    *cap = ncap;
    return 0;
}

static void begin_staging(struct procbus_pub *p)
{
    struct pb_dirty *d = &p->logs[(p->gen + 1) % p->geo.snap_slots];

    d->n = 0;
    d->overflow = 0;
    p->ix.dirty = d;
    p->nev = 0;
    p->nchanged = 0;
}

/* ABI.md commit step 1 for one event: seq = BUSY, release fence, fields, release store of seq. */
static void write_event(struct procbus_pub *p, struct procbus_event *ev, uint64_t gen)
{
    struct procbus_event *e = &p->ring[ev->seq & (p->geo.ring_capacity - 1)];
    uint64_t seq = ev->seq;

    __atomic_store_n(&e->seq, PROCBUS_SEQ_BUSY, __ATOMIC_RELAXED);
    /* Commit step 1: pairs with the acquire fence of events step 3 in
     * procbus_next_event: a reader whose copy saw any byte written below sees
     * seq != n when it re-checks. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    ev->generation = gen;
    memcpy((char *)e + sizeof(e->seq), (char *)ev + sizeof(ev->seq), sizeof(*e) - sizeof(e->seq));
    /* Commit step 1: pairs with the acquire load of seq in events step 2: a
     * reader that sees n sees the fields above. */
    __atomic_store_n(&e->seq, seq, __ATOMIC_RELEASE);
}

static void init_snapshot(struct pb_segment *seg, struct pb_predecessor *pred, void *arg)
{
    struct procbus_pub *p = arg;
    struct procbus_header *h = (struct procbus_header *)seg->base;
    uint64_t g0 = pred->inherit ? pred->generation + 1 : 1;
    uint32_t t = (uint32_t)(g0 % p->geo.snap_slots);
    uint64_t off = p->geo.snap_off + (uint64_t)t * p->geo.snap_slot_size;
    struct procbus_snap *s = (struct procbus_snap *)(seg->base + off);
    struct procbus_event ev;

    p->ring = (struct procbus_event *)(seg->base + p->geo.ring_off);
    p->snaps = seg->base + p->geo.snap_off;
    p->arena = seg->base + p->geo.arena_off;
    p->ix.arena = p->arena;
    s->count = 0;
    p->pred.present = pred->present;
    p->pred.crashed = pred->crashed;
    p->pred.epoch = pred->epoch;
    p->pred.pid = pred->pid;
    p->pred.start_ns = pred->start_ns;
    if ((p->flags & PROCBUS_PUB_INHERIT) && pred->crashed)
        pb_pub_inherit(p, pred, t, g0); /* the initial snapshot shows the dead one's records */
    /* ABI.md creation step 1 (the initial snapshot). What publishes it is the
     * release store of `version` in creation step 2, which pairs with the
     * reader's acquire load in procbus__validate; the stores here need no
     * order of their own (no reader can see the file yet). Release kept so
     * the slot's gen is written as every commit step 4 writes it. */
    __atomic_store_n(&s->gen, g0, __ATOMIC_RELEASE);
    h->current = PROCBUS_CUR_PACK(g0, off);
    h->generation = g0;
    h->heartbeat_interval_ns = p->hb_interval;
    p->gen = g0;
    p->written[t] = g0;

    memset(&ev, 0, sizeof(ev));
    ev.seq = h->ring_first;
    ev.kind = PROCBUS_EV_EPOCH;
    ev.record_id = h->epoch; /* ABI 1.1: which segment began */
    ev.pid = (int32_t)getpid();
    ev.time_ns = pb_now_real();
    write_event(p, &ev, g0);
    p->ring_head = ev.seq + 1;
    h->ring_head = p->ring_head;
}

int pb_pub_alloc(struct procbus_pub *p)
{
    uint32_t i;
    int rc = pb_index_init(&p->ix, p->geo.capacity, p->geo.buckets, NULL);

    if (rc < 0)
        return rc;
    p->slot_gen = calloc(p->geo.arena_slots, sizeof(*p->slot_gen));
    p->free_stack = malloc(p->geo.arena_slots * sizeof(*p->free_stack));
    p->pend = malloc(p->geo.arena_slots * sizeof(*p->pend));
    p->logs = calloc(p->geo.snap_slots, sizeof(*p->logs));
    p->written = calloc(p->geo.snap_slots, sizeof(*p->written));
    if (!p->slot_gen || !p->free_stack || !p->pend || !p->logs || !p->written)
        return -ENOMEM;
    for (i = 0; i < p->geo.arena_slots; i++) /* pop order 0, 1, 2, ... */
        p->free_stack[i] = p->geo.arena_slots - 1 - i;
    p->nfree = p->geo.arena_slots;
    rc = procbus_registry_new(&p->reg);
    if (rc < 0)
        return rc;
    p->thread_registered = procbus_registry_thread_online();
    return 0;
}

void pb_pub_attach_regions(struct procbus_pub *p)
{
    p->hdr = (struct procbus_header *)p->seg.base;
    p->snaps = p->seg.base + p->geo.snap_off;
    p->arena = p->seg.base + p->geo.arena_off;
    p->ix.arena = p->arena;
    p->ring = (struct procbus_event *)(p->seg.base + p->geo.ring_off);
    begin_staging(p);
}

/* ---- lifecycle ---- */

int procbus_pub_open(struct procbus_pub **out, const struct procbus_pub_opts *opts)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p;
    char path[PROCBUS_PATH_MAX];
    uint32_t ring = 1;
    int rc;

    if (out == NULL)
        return -EINVAL;
    if (opts != NULL)
        o = *opts;
    if (o.capacity == 0)
        o.capacity = PROCBUS_PUB_DEFAULT_CAPACITY;
    if (o.reserve == 0)
        o.reserve = o.capacity;
    if (o.snap_slots == 0)
        o.snap_slots = PROCBUS_PUB_DEFAULT_SLOTS;
    if (o.ring_capacity == 0)
        o.ring_capacity = PROCBUS_PUB_DEFAULT_RING;
    if (o.mode == 0)
        o.mode = 0640;
    if (o.ring_capacity > PROCBUS_MAX_RING || o.reserve > 0xfffffff0u - o.capacity ||
        (o.mode & ~0644u) || (o.mode & 0600u) != 0600u ||
        o.heartbeat_interval_ns > PROCBUS_MAX_HEARTBEAT_NS)
        return -EINVAL;
    while (ring < o.ring_capacity)
        ring <<= 1;
    rc = procbus_segment_path(o.segment, path, sizeof(path));
    if (rc < 0)
        return rc;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->seg.fd = -1;
    p->hb_interval = o.heartbeat_interval_ns;
    p->geo.capacity = o.capacity;
    p->geo.arena_slots = o.capacity + o.reserve;
    p->geo.snap_slots = o.snap_slots;
    p->geo.ring_capacity = ring;
    p->flags = o.flags;
    rc = pb_segment_layout(&p->geo);
    if (rc < 0)
        goto fail;
    rc = pb_pub_alloc(p);
    if (rc < 0)
        goto fail;
    rc = pb_segment_create(&p->seg, path, o.mode, o.set_group ? (long long)o.group : -1, &p->geo,
                           (o.flags & PROCBUS_PUB_INHERIT) ? PB_SEG_KEEP_RECORDS : 0, init_snapshot,
                           p);
    if (rc < 0)
        goto fail;
    pb_pub_attach_regions(p);
    rc = pb_pub_inherit_registry(p);
    if (rc < 0) {
        procbus_pub_close(p, 0);
        return rc;
    }
    *out = p;
    return 0;
fail:
    p->seg.base = NULL;
    procbus_pub_close(p, 0);
    return rc;
}

void procbus_pub_close(struct procbus_pub *p, unsigned flags)
{
    size_t i;

    if (p == NULL)
        return;
    if (p->seg.base != NULL && (flags & PROCBUS_PUB_ABANDON)) {
        int fd = p->seg.fd;
        pb_segment_forget(&p->seg); /* heartbeat untouched: it goes stale */
        close(fd);                  /* the lock goes with it */
    } else if (p->seg.base != NULL)
        pb_segment_close(&p->seg, (flags & PROCBUS_PUB_UNLINK) != 0);
    procbus_registry_free(p->reg);
    if (p->thread_registered)
        procbus_registry_thread_offline();
    pb_index_free(&p->ix);
    if (p->logs != NULL)
        for (i = 0; i < p->geo.snap_slots; i++)
            free(p->logs[i].items);
    free(p->logs);
    free(p->written);
    free(p->slot_gen);
    free(p->free_stack);
    free(p->pend);
    free(p->events);
    free(p->changed);
    free(p->pred_recs);
    free(p);
}

/* ---- staging ---- */

uint64_t procbus_pub_new_id(struct procbus_pub *p)
{
    return ++p->next_id;
}

/*
 * Out of free records: the ones waiting out the snap_slots generations are
 * referenced only by snapshot slots older than `current`. Invalidate those
 * slots (a reader still inside one fails validation and retries on the
 * current snapshot) and recycle everything no longer in `current`.
 */
static void reclaim_early(struct procbus_pub *p)
{
    const uint32_t K = p->geo.snap_slots, cur = (uint32_t)(p->gen % K);
    uint32_t t;

    if (p->pend_len == 0 || p->pend[p->pend_head].gen > p->gen)
        return;
    for (t = 0; t < K; t++) {
        struct procbus_snap *s =
            (struct procbus_snap *)(p->snaps + (uint64_t)t * p->geo.snap_slot_size);
        if (t == cur)
            continue;
        __atomic_store_n(&s->gen, 0, __ATOMIC_RELAXED);
        p->written[t] = 0; /* its content is unknown now: full copy next time */
    }
    /* ABI.md "Arena recycling" (a forced lap), like commit step 2 for every
     * older slot at once: pairs with the acquire fence of read step 4
     * (procbus__still). A reader in an old slot that reads a recycled
     * record's new bytes then sees gen 0 and retries. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    while (p->pend_len > 0 && p->pend[p->pend_head].gen <= p->gen) {
        p->free_stack[p->nfree++] = p->pend[p->pend_head].slot;
        p->pend_head = (p->pend_head + 1) % p->geo.arena_slots;
        p->pend_len--;
    }
    p->forced_laps++;
}

static int alloc_slot(struct procbus_pub *p, uint32_t *slot)
{
    if (p->nfree == 0)
        reclaim_early(p);
    if (p->nfree == 0)
        return -ENOSPC;
    *slot = p->free_stack[--p->nfree];
    p->slot_gen[*slot] = p->gen + 1;
    return 0;
}

/* The slot stops being referenced by commit gen+1; reusable once no snapshot slot can show it. */
static void release_slot(struct procbus_pub *p, uint32_t slot)
{
    if (p->slot_gen[slot] == p->gen + 1) { /* never published */
        p->free_stack[p->nfree++] = slot;
        return;
    }
    p->pend[(p->pend_head + p->pend_len) % p->geo.arena_slots] =
        (struct pending_free){.slot = slot, .gen = p->gen + 1};
    p->pend_len++;
}

static int note_changed(struct procbus_pub *p, uint64_t id)
{
    if (grow((void **)&p->changed, &p->chcap, p->nchanged + 1, sizeof(*p->changed)) < 0)
        return -ENOMEM;
    p->changed[p->nchanged++] = id;
    return 0;
}

static int stage_event(struct procbus_pub *p, uint16_t kind, uint16_t old_state,
                       const struct procbus_proc *rec)
{
    struct procbus_event *ev;
    const char *label = rec->name[0] ? rec->name : rec->comm;

    if (grow((void **)&p->events, &p->evcap, p->nev + 1, sizeof(*p->events)) < 0) {
        __atomic_fetch_add(&p->hdr->events_dropped, 1, __ATOMIC_RELAXED);
        return -ENOMEM;
    }
    ev = &p->events[p->nev++];
    memset(ev, 0, sizeof(*ev));
    ev->record_id = rec->id;
    ev->time_ns = pb_now_real();
    ev->pid = rec->pid;
    ev->exit_code = rec->exit_code;
    ev->kind = kind;
    ev->old_state = old_state;
    ev->new_state = rec->state;
    ev->exit_kind = rec->exit_kind;
    ev->flags = (uint8_t)(rec->flags & (PROCBUS_F_CORE_DUMPED | PROCBUS_F_EXIT_UNKNOWN));
    memcpy(ev->name, label, strnlen(label, sizeof(ev->name) - 1));
    return 0;
}

static void sanitize(struct procbus_proc *dst, const struct procbus_proc *src)
{
    *dst = *src;
    dst->size = sizeof(*dst);
    dst->name[PROCBUS_NAME_LEN - 1] = '\0';
    dst->comm[PROCBUS_COMM_LEN - 1] = '\0';
    if (dst->cmdline_len > PROCBUS_CMDLINE_LEN)
        dst->cmdline_len = PROCBUS_CMDLINE_LEN;
}

/*
 * Write a record into arena slot `slot` (staging: no snapshot refers to it yet). A reader still
 * in an older snapshot slot may be reading these bytes if the slot was recycled (a seqlock race,
 * by design: read step 4 discards what it read; tests/support/tsan.supp names this function).
 */
static void stage_record(struct procbus_pub *p, uint32_t slot, const struct procbus_proc *rec)
{
    *pb_pub_arena_rec(p, slot) = *rec;
}

static int dropped(struct procbus_pub *p)
{
    __atomic_fetch_add(&p->hdr->records_dropped, 1, __ATOMIC_RELAXED);
    return -ENOSPC;
}

int procbus_pub_upsert(struct procbus_pub *p, const struct procbus_proc *rec)
{
    struct procbus_proc tmp;
    uint32_t slot;
    int64_t pos;
    int noted;

    if (p == NULL || rec == NULL || rec->id == 0 || rec->state >= PROCBUS_STATE_COUNT_ ||
        rec->exit_kind > PROCBUS_EXIT_SIGNAL)
        return -EINVAL;
    sanitize(&tmp, rec);
    pos = pb_index_find(&p->ix, tmp.id);
    /* an earlier upsert of this batch (its copy is unpublished) noted the id already: note
     * each id once, so the commit reserves one registry node per record, not per upsert */
    noted = pos >= 0 && p->slot_gen[p->ix.dense[pos]] == p->gen + 1;
    if (!noted && note_changed(p, tmp.id) < 0)
        return -ENOMEM;
    if (pos < 0) {
        if (p->ix.count >= p->ix.cap || alloc_slot(p, &slot) < 0) {
            p->nchanged--;
            return dropped(p);
        }
        stage_record(p, slot, &tmp);
        pb_index_add(&p->ix, tmp.id, slot);
        stage_event(p, PROCBUS_EV_ADD, PROCBUS_STATE_UNKNOWN, &tmp);
    } else {
        uint32_t old_slot = p->ix.dense[pos];
        struct procbus_proc old = *pb_pub_arena_rec(p, old_slot);

        if (noted) {
            slot = old_slot; /* staged in this batch, unpublished: rewrite in place */
        } else {
            if (alloc_slot(p, &slot) < 0) {
                p->nchanged--;
                return dropped(p);
            }
            release_slot(p, old_slot);
        }
        stage_record(p, slot, &tmp);
        pb_index_replace(&p->ix, (uint32_t)pos, old_slot, &old, slot);
        if (old.state != tmp.state)
            stage_event(p, PROCBUS_EV_STATE, old.state, &tmp);
    }
    return 0;
}

int procbus_pub_remove(struct procbus_pub *p, uint64_t id)
{
    uint32_t slot;
    int64_t pos;

    if (p == NULL || id == 0)
        return -EINVAL;
    pos = pb_index_find(&p->ix, id);
    if (pos < 0)
        return -ENOENT;
    if (note_changed(p, id) < 0)
        return -ENOMEM;
    slot = p->ix.dense[pos];
    stage_event(p, PROCBUS_EV_REMOVE, pb_pub_arena_rec(p, slot)->state, pb_pub_arena_rec(p, slot));
    pb_index_remove(&p->ix, (uint32_t)pos);
    release_slot(p, slot);
    return 0;
}

int procbus_pub_event(struct procbus_pub *p, uint16_t kind, const struct procbus_proc *rec)
{
    if (p == NULL || rec == NULL || kind < PROCBUS_EV_ADD || kind > PROCBUS_EV_EXEC)
        return -EINVAL;
    return stage_event(p, kind, rec->state, rec);
}

int procbus_pub_get(const struct procbus_pub *p, uint64_t id, struct procbus_proc *out)
{
    int64_t pos = pb_index_find(&p->ix, id);

    if (pos < 0)
        return -ENOENT;
    *out = *pb_pub_arena_rec((struct procbus_pub *)p, p->ix.dense[pos]);
    return 0;
}

/* ---- commit ---- */

/*
 * Index words and the snapshot count are stored with relaxed atomic stores: readers load them
 * with __atomic loads (PROCBUS__LD in procbus_snapshot.h) while a slot may be rewritten under
 * them, and a C11 data race would be undefined behaviour even though the seqlock (commit steps
 * 2 and 4, read steps 2 and 4) discards every such read. Relaxed stores compile to plain moves.
 */
static void store_u32(uint32_t *dst, uint32_t v)
{
    __atomic_store_n(dst, v, __ATOMIC_RELAXED);
}

static void store_u64(uint64_t *dst, uint64_t v)
{
    __atomic_store_n(dst, v, __ATOMIC_RELAXED);
}

static void copy_u32s(uint32_t *dst, const uint32_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        store_u32(&dst[i], src[i]);
}

static void copy_u64s(uint64_t *dst, const uint64_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        store_u64(&dst[i], src[i]);
}

static void copy_entry(struct procbus_pub *p, unsigned char *snap, uint32_t item)
{
    uint32_t i = PB_DIRTY_INDEX(item);

    switch (PB_DIRTY_REGION(item)) {
    case PB_DENSE:
        store_u32(&((uint32_t *)(snap + PROCBUS_SNAP_DENSE_OFF))[i], p->ix.dense[i]);
        break;
    case PB_BY_PID:
        store_u64(&((uint64_t *)(snap + PROCBUS_SNAP_PID_OFF(p->geo.capacity)))[i],
                  p->ix.by_pid[i]);
        break;
    default:
        store_u64(&((uint64_t *)(snap + PROCBUS_SNAP_NAME_OFF(p->geo.capacity, p->geo.buckets)))[i],
                  p->ix.by_name[i]);
        break;
    }
}

static void failpoint(struct procbus_pub *p, enum procbus_failpoint here)
{
    if (p->fp == here)
        kill(getpid(), SIGKILL);
}

/* Bring snapshot slot t (being rewritten for generation g) up to the master index. */
void pb_pub_rewrite_slot(struct procbus_pub *p, uint32_t t, uint64_t g)
{
    const uint32_t K = p->geo.snap_slots;
    unsigned char *snap = p->snaps + (uint64_t)t * p->geo.snap_slot_size;
    int full = p->written[t] == 0 || p->written[t] + K != g;
    uint64_t c;
    size_t i, total = 0;

    for (c = g - K + 1; !full && c <= g; c++) {
        full = p->logs[c % K].overflow;
        total += p->logs[c % K].n;
    }
    if (!full && total > p->ix.count + 2ull * p->geo.buckets)
        full = 1; /* a plain copy is cheaper */
    if (full) {
        size_t half = p->ix.count / 2;
        uint32_t *dense = (uint32_t *)(snap + PROCBUS_SNAP_DENSE_OFF);
        copy_u32s(dense, p->ix.dense, half);
        if (p->fp == PROCBUS_FP_MID_SNAPSHOT)
            failpoint(p, PROCBUS_FP_MID_SNAPSHOT);
        copy_u32s(dense + half, p->ix.dense + half, p->ix.count - half);
        copy_u64s((uint64_t *)(snap + PROCBUS_SNAP_PID_OFF(p->geo.capacity)), p->ix.by_pid,
                  p->geo.buckets);
        copy_u64s((uint64_t *)(snap + PROCBUS_SNAP_NAME_OFF(p->geo.capacity, p->geo.buckets)),
                  p->ix.by_name, p->geo.buckets);
    } else {
        size_t done = 0;
        for (c = g - K + 1; c <= g; c++) {
            const struct pb_dirty *d = &p->logs[c % K];
            for (i = 0; i < d->n; i++) {
                copy_entry(p, snap, d->items[i]);
                if (++done == total / 2 + 1)
                    failpoint(p, PROCBUS_FP_MID_SNAPSHOT);
            }
        }
    }
    store_u32(&((struct procbus_snap *)snap)->count, p->ix.count);
    p->written[t] = g;
}

/*
 * Mirror the batch into the registry. Cannot fail: procbus_pub_commit reserved
 * a node for every changed id first, so a put never allocates here.
 */
static void sync_registry(struct procbus_pub *p)
{
    size_t i;

    for (i = 0; i < p->nchanged; i++) {
        int64_t pos = pb_index_find(&p->ix, p->changed[i]);
        if (pos < 0)
            (void)procbus_registry_del(p->reg, p->changed[i]); /* -ENOENT: never committed */
        else if (procbus_registry_put(p->reg, pb_pub_arena_rec(p, p->ix.dense[pos])) < 0)
            abort(); /* broken invariant: the reserve covers every put of the batch */
    }
}

int procbus_pub_commit(struct procbus_pub *p)
{
    const uint32_t K = p->geo.snap_slots;
    uint64_t g = p->gen + 1, off;
    uint32_t t = (uint32_t)(g % K);
    struct procbus_snap *s;
    size_t i;
    int rc;

    /* The only step that can fail comes before anything readers can see:
     * -ENOMEM here leaves the segment, the registry and the staging as they
     * were, and a later commit publishes the same batch. */
    rc = procbus_registry_reserve(p->reg, p->nchanged);
    if (rc < 0)
        return rc;
    off = p->geo.snap_off + (uint64_t)t * p->geo.snap_slot_size;
    s = (struct procbus_snap *)(p->seg.base + off);

    /* Steps 1-6 as docs/ABI.md numbers them. Step 1: events into the ring
     * (write_event has the barriers); readers do not look at them before
     * ring_head moves in step 5. */
    for (i = 0; i < p->nev; i++) {
        p->events[i].seq = p->ring_head++;
        write_event(p, &p->events[i], g);
    }
    /* Step 2: seqlock-open the oldest slot. The release fence pairs with the
     * acquire fence of read step 4 (procbus__still): a reader still in this
     * slot that sees any byte stored after it (step 3, or a record recycled
     * later) sees gen 0 or a newer gen when it re-checks, and retries.
     * By design a reader's memcpy of an arena record may overlap the staging
     * of a recycled record here (plain stores against plain loads: a data race
     * in C11 terms, as in every seqlock); the copy is then discarded by read
     * step 4. The index words and count are relaxed atomics (copy_entry). */
    __atomic_store_n(&s->gen, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* Step 3: the changed index entries and count, plain stores. */
    pb_pub_rewrite_slot(p, t, g);
    /* Step 4: pairs with the acquire load of the slot's gen in read step 2
     * (procbus__begin): a reader that sees g sees step 3's stores. */
    __atomic_store_n(&s->gen, g, __ATOMIC_RELEASE);
    failpoint(p, PROCBUS_FP_BEFORE_SWAP);
    /* Step 5: the swap. Pairs with the acquire load of `current` in read step
     * 1 (procbus__begin): one release store makes the whole snapshot visible. */
    __atomic_store_n(&p->hdr->current, PROCBUS_CUR_PACK(g, off), __ATOMIC_RELEASE);
    /* Step 5: pairs with the acquire loads of `generation` in procbus_generation,
     * procbus_info and waiting step 2 (procbus_wait); it follows `current`. */
    __atomic_store_n(&p->hdr->generation, g, __ATOMIC_RELEASE);
    /* Step 5: pairs with the acquire load of ring_head in events step 1
     * (procbus_next_event, procbus_seek_events): step 1's events are complete. */
    __atomic_store_n(&p->hdr->ring_head, p->ring_head, __ATOMIC_RELEASE);
    /* a statistics counter: relaxed, orders nothing */
    __atomic_store_n(&p->hdr->publishes, p->hdr->publishes + 1, __ATOMIC_RELAXED);
    /* Step 6: futex += 1 (release) and FUTEX_WAKE, in pb_segment_wake. */
    pb_segment_wake(&p->seg);

    /* After the steps: the in-process registry (not part of the segment ABI). */
    sync_registry(p);
    p->gen = g;
    /* records dropped by commit g - K + 1 or earlier are unreachable from every slot now */
    while (p->pend_len > 0 && p->pend[p->pend_head].gen + K <= g + 1) {
        p->free_stack[p->nfree++] = p->pend[p->pend_head].slot;
        p->pend_head = (p->pend_head + 1) % p->geo.arena_slots;
        p->pend_len--;
    }
    begin_staging(p);
    return 0;
}

/* ---- keeping the name ---- */

/*
 * The init of a re-created segment (procbus_pub_keep_name): the same geometry,
 * so every region is copied as it stands after the last commit (snapshot
 * slots with their generations, arena, ring); then this file's own identity:
 * epoch + 1 (past the predecessor's too, if one was at the name), the
 * counters, and an EPOCH event after the last event, where ring_first starts.
 */
static void relink_init(struct pb_segment *seg, struct pb_predecessor *pred, void *arg)
{
    struct procbus_pub *p = arg;
    struct procbus_header *h = (struct procbus_header *)seg->base;
    const struct procbus_header *old = p->hdr;
    uint64_t epoch = old->epoch;
    struct procbus_event ev;

    if (pred->inherit && pred->epoch > epoch)
        epoch = pred->epoch;
    memcpy(seg->base + PROCBUS_HEADER_SIZE, (const unsigned char *)old + PROCBUS_HEADER_SIZE,
           p->geo.size - PROCBUS_HEADER_SIZE);
    h->epoch = epoch + 1;
    h->current = old->current;
    h->generation = old->generation;
    h->heartbeat_interval_ns = p->hb_interval;
    h->publishes = old->publishes;
    h->records_dropped = old->records_dropped;
    h->events_dropped = old->events_dropped;
    h->tracer_drops = old->tracer_drops;
    h->log_bytes_lost = old->log_bytes_lost;
    p->ring = (struct procbus_event *)(seg->base + p->geo.ring_off);
    memset(&ev, 0, sizeof(ev));
    ev.seq = p->ring_head;
    ev.kind = PROCBUS_EV_EPOCH;
    ev.record_id = h->epoch;
    ev.pid = (int32_t)getpid();
    ev.time_ns = pb_now_real();
    write_event(p, &ev, p->gen);
    h->ring_first = ev.seq;
    h->ring_head = ev.seq + 1;
}

int procbus_pub_keep_name(struct procbus_pub *p)
{
    struct pb_segment next;
    int rc = pb_segment_at_name(&p->seg);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    memset(&next, 0, sizeof(next));
    next.fd = -1;
    rc = pb_segment_create(&next, p->seg.path, p->seg.mode, p->seg.gid, &p->geo, 0, relink_init, p);
    if (rc < 0) {
        p->ring = (struct procbus_event *)(p->seg.base + p->geo.ring_off);
        return rc;
    }
    p->ring_head++; /* the EPOCH event */
    pb_segment_retire(&p->seg);
    p->seg = next;
    p->hdr = (struct procbus_header *)p->seg.base;
    p->snaps = p->seg.base + p->geo.snap_off;
    p->arena = p->seg.base + p->geo.arena_off;
    p->ix.arena = p->arena;
    p->ring = (struct procbus_event *)(p->seg.base + p->geo.ring_off);
    return 1;
}

/* ---- the rest ---- */

void procbus_pub_heartbeat(struct procbus_pub *p)
{
    /* ABI.md "Heartbeat and liveness": pairs with the acquire load of
     * heartbeat_ns in procbus_liveness (and procbus_wait); orders the commits
     * made before this beat before it. */
    __atomic_store_n(&p->hdr->heartbeat_ns, pb_now_mono(), __ATOMIC_RELEASE);
}

void procbus_pub_set_heartbeat_interval(struct procbus_pub *p, uint64_t interval_ns)
{
    if (interval_ns > PROCBUS_MAX_HEARTBEAT_NS)
        interval_ns = PROCBUS_MAX_HEARTBEAT_NS;
    if (p->hb_interval == interval_ns)
        return;
    p->hb_interval = interval_ns;
    /* steers readers' stale threshold only (procbus_stale_after_ns): relaxed */
    __atomic_store_n(&p->hdr->heartbeat_interval_ns, interval_ns, __ATOMIC_RELAXED);
}

void procbus_pub_count_drops(struct procbus_pub *p, uint64_t tracer_drops, uint64_t events_dropped)
{
    __atomic_fetch_add(&p->hdr->tracer_drops, tracer_drops, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->hdr->events_dropped, events_dropped, __ATOMIC_RELAXED);
}

void procbus_pub_count_log_lost(struct procbus_pub *p, uint64_t bytes)
{
    __atomic_fetch_add(&p->hdr->log_bytes_lost, bytes, __ATOMIC_RELAXED);
}

uint64_t procbus_pub_generation(const struct procbus_pub *p)
{
    return p->gen;
}

uint32_t procbus_pub_count(const struct procbus_pub *p)
{
    return p->ix.count;
}

uint64_t procbus_pub_epoch(const struct procbus_pub *p)
{
    return p->hdr->epoch;
}

const char *procbus_pub_path(const struct procbus_pub *p)
{
    return p->seg.path;
}

struct procbus_registry *procbus_pub_registry(struct procbus_pub *p)
{
    return p->reg;
}

uint64_t procbus_pub_forced_laps(const struct procbus_pub *p)
{
    return p->forced_laps;
}

void procbus_pub_set_failpoint(struct procbus_pub *p, enum procbus_failpoint fp)
{
    p->fp = fp;
}
