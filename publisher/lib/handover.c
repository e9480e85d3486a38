/* handover.c - a publisher that takes over a crashed one's records, or resumes after an exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "procbus.h" /* procbus_attach's checks, the ABI's packing macros */
#include "pub_int.h"
#include "registry.h"

/* A record from a segment another process wrote, made fit to stage (as procbus_pub_upsert's
 * sanitizing, and values the library refuses turned into "unknown"). */
static void tidy(struct procbus_proc *r)
{
    r->size = sizeof(*r);
    r->name[PROCBUS_NAME_LEN - 1] = '\0';
    r->comm[PROCBUS_COMM_LEN - 1] = '\0';
    if (r->cmdline_len > PROCBUS_CMDLINE_LEN)
        r->cmdline_len = PROCBUS_CMDLINE_LEN;
    if (r->state >= PROCBUS_STATE_COUNT_)
        r->state = PROCBUS_STATE_UNKNOWN;
    if (r->exit_kind > PROCBUS_EXIT_SIGNAL)
        r->exit_kind = PROCBUS_EXIT_NONE;
}

/* Put record *r, already tidy, into a free arena slot and the master index, as committed by
 * generation `gen`. 0, or -ENOSPC (full), -EEXIST (id 0 or already there: skipped). */
static int place(struct procbus_pub *p, const struct procbus_proc *r, uint64_t gen)
{
    uint32_t slot;

    if (r->id == 0 || pb_index_find(&p->ix, r->id) >= 0)
        return -EEXIST;
    if (p->ix.count >= p->ix.cap || p->nfree == 0)
        return -ENOSPC;
    slot = p->free_stack[--p->nfree];
    p->slot_gen[slot] = gen;
    *pb_pub_arena_rec(p, slot) = *r;
    pb_index_add(&p->ix, r->id, slot);
    if (r->id > p->next_id)
        p->next_id = r->id;
    return 0;
}

void pb_pub_inherit(struct procbus_pub *p, struct pb_predecessor *pred, uint32_t t, uint64_t g0)
{
    size_t i;

    for (i = 0; i < pred->nrecs; i++) {
        struct procbus_proc r = pred->recs[i];
        tidy(&r);
        if (place(p, &r, g0) == -ENOSPC)
            break; /* a predecessor with a larger capacity: the rest is not inherited */
    }
    /* creation step 1: the initial snapshot is the master index, copied whole (the slot's
     * previous content is unknown: written[t] is 0) */
    pb_pub_rewrite_slot(p, t, g0);
    p->pred_recs = pred->recs; /* taken over: pb_segment_create frees NULL */
    p->pred.recs = pred->recs;
    p->pred.nrecs = pred->nrecs;
    pred->recs = NULL;
}

int pb_pub_inherit_registry(struct procbus_pub *p)
{
    uint32_t i;
    int rc;

    if (p->ix.count == 0)
        return 0;
    rc = procbus_registry_reserve(p->reg, p->ix.count);
    if (rc < 0)
        return rc;
    for (i = 0; i < p->ix.count; i++)
        if (procbus_registry_put(p->reg, pb_pub_arena_rec(p, p->ix.dense[i])) < 0)
            return -ENOMEM; /* (the reserve covers every put) */
    return 0;
}

void procbus_pub_predecessor(const struct procbus_pub *p, struct procbus_pub_pred *out)
{
    *out = p->pred;
}

void procbus_pub_predecessor_release(struct procbus_pub *p)
{
    free(p->pred_recs);
    p->pred_recs = NULL;
    p->pred.recs = NULL;
    p->pred.nrecs = 0;
}

int procbus_pub_fd(const struct procbus_pub *p)
{
    return p != NULL && p->seg.base != NULL ? p->seg.fd : -1;
}

uint64_t procbus_pub_last_id(const struct procbus_pub *p)
{
    return p->next_id;
}

int procbus_pub_committed(const struct procbus_pub *p, uint64_t id, int32_t pid)
{
    struct procbus_reader r;
    struct procbus_proc rec;
    int ok;

    if (p == NULL || procbus_attach(&r, p->seg.base, p->seg.size) != 0)
        return 0;
    ok = procbus_get_pid(&r, pid, &rec) == 0 && rec.id == id &&
         (rec.state == PROCBUS_STATE_STARTING || rec.state == PROCBUS_STATE_RUNNING ||
          rec.state == PROCBUS_STATE_READY || rec.state == PROCBUS_STATE_STOPPING);
    procbus_close(&r);
    return ok;
}

/* The geometry the header states, checked against what this build would lay out for it. */
static int geometry_of(struct procbus_pub *p)
{
    const struct procbus_header *h = (const struct procbus_header *)p->seg.base;

    if (h->record_size != sizeof(struct procbus_proc))
        return -EPROTO;
    p->geo.capacity = h->record_capacity;
    p->geo.arena_slots = h->arena_slots;
    p->geo.snap_slots = h->snap_slots;
    p->geo.ring_capacity = h->ring_capacity;
    p->geo.buckets = h->hash_buckets; /* its own: an older build laid out 2 x capacity */
    if (pb_segment_layout(&p->geo) < 0 || p->geo.buckets != h->hash_buckets ||
        p->geo.snap_slot_size != h->snap_slot_size || p->geo.snap_off != h->snap_off ||
        p->geo.arena_off != h->arena_off || p->geo.ring_off != h->ring_off ||
        p->geo.size != p->seg.size)
        return -EPROTO;
    return 0;
}

/* Rebuild the master index, the free list and the counters from the current snapshot. */
static int rebuild(struct procbus_pub *p, uint64_t next_id)
{
    const struct procbus_header *h = (const struct procbus_header *)p->seg.base;
    const uint32_t K = p->geo.snap_slots;
    uint64_t cur = __atomic_load_n(&h->current, __ATOMIC_ACQUIRE);
    uint64_t off = PROCBUS_CUR_OFF(cur), g = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    unsigned char *used;
    const uint32_t *dense;
    struct procbus_snap *s;
    uint32_t i, t, count;

    if (off < p->geo.snap_off || (off - p->geo.snap_off) % p->geo.snap_slot_size != 0 ||
        (t = (uint32_t)((off - p->geo.snap_off) / p->geo.snap_slot_size)) >= K || g == 0)
        return -EPROTO;
    s = (struct procbus_snap *)(p->seg.base + off);
    count = s->count;
    if (s->gen != g || count > p->geo.capacity)
        return -EPROTO;
    used = calloc(p->geo.arena_slots, 1);
    if (used == NULL)
        return -ENOMEM;
    dense = (const uint32_t *)((const unsigned char *)s + PROCBUS_SNAP_DENSE_OFF);
    p->ix.arena = p->arena;
    p->nfree = 0;
    for (i = 0; i < count; i++) {
        uint32_t slot = dense[i];
        const struct procbus_proc *r;
        if (slot >= p->geo.arena_slots || used[slot])
            goto bad;
        r = pb_pub_arena_rec(p, slot);
        if (r->id == 0 || pb_index_find(&p->ix, r->id) >= 0)
            goto bad;
        used[slot] = 1;
        p->slot_gen[slot] = g;
        pb_index_add(&p->ix, r->id, slot);
        if (r->id > next_id)
            next_id = r->id;
    }
    for (i = p->geo.arena_slots; i-- > 0;) /* the free ones, popped in ascending order */
        if (!used[i])
            p->free_stack[p->nfree++] = i;
    free(used);
    /* Everything not in the current snapshot is free now, but older slots may still show it:
     * a forced lap (ABI.md "Arena recycling"), as reclaim_early does. Pairs with the acquire
     * fence of read step 4 (procbus__still): a reader in an old slot that reads a recycled
     * record's new bytes sees gen 0 and retries on the current snapshot. */
    for (i = 0; i < K; i++) {
        if (i != t)
            __atomic_store_n(
                &((struct procbus_snap *)(p->snaps + (uint64_t)i * p->geo.snap_slot_size))->gen, 0,
                __ATOMIC_RELAXED);
        p->written[i] = 0; /* full copies until each slot was written once */
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    p->gen = g;
    p->next_id = next_id;
    p->ring_head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
    return 0;
bad:
    free(used);
    return -EPROTO;
}

int procbus_pub_resume(struct procbus_pub **out, int fd, const char *path, uint64_t next_id,
                       const struct procbus_pub_opts *opts)
{
    struct procbus_pub *p;
    int rc;

    if (out == NULL || fd < 0 || path == NULL)
        return -EINVAL;
    if (opts != NULL && opts->heartbeat_interval_ns > PROCBUS_MAX_HEARTBEAT_NS)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->seg.fd = -1;
    rc = pb_segment_resume(&p->seg, fd, path);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->flags = opts != NULL ? opts->flags : 0;
    rc = geometry_of(p);
    if (rc == 0)
        rc = pb_pub_alloc(p);
    if (rc == 0) {
        p->hdr = (struct procbus_header *)p->seg.base;
        p->snaps = p->seg.base + p->geo.snap_off;
        p->arena = p->seg.base + p->geo.arena_off;
        rc = rebuild(p, next_id);
    }
    if (rc == 0)
        rc = pb_pub_inherit_registry(p);
    if (rc < 0) {
        pb_segment_forget(&p->seg); /* unmapped; the caller keeps the descriptor and its lock */
        procbus_pub_close(p, 0);
        return rc;
    }
    pb_pub_attach_regions(p);
    p->hb_interval = opts != NULL ? opts->heartbeat_interval_ns : 0;
    /* steers readers' stale threshold only: relaxed, as procbus_pub_set_heartbeat_interval */
    __atomic_store_n(&p->hdr->heartbeat_interval_ns, p->hb_interval, __ATOMIC_RELAXED);
    *out = p;
    return 0;
}
