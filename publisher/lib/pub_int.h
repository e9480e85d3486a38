/* pub_int.h - the publisher library's private state, shared by publisher.c and handover.c. */
#ifndef PROCBUS_PUB_INT_H
#define PROCBUS_PUB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "procbus_pub.h"
#include "segment.h"

struct pending_free {
    uint32_t slot;
    uint64_t gen; /* the first commit that no longer refers to the slot */
};

struct procbus_pub {
    struct pb_segment seg;
    struct pb_geometry geo;
    struct procbus_header *hdr;
    unsigned char *arena, *snaps;
    struct procbus_event *ring;
    struct pb_index ix;
    uint64_t gen;       /* last committed generation */
    uint64_t next_id;   /* last id handed out */
    uint64_t ring_head; /* next event sequence */
    uint64_t *slot_gen; /* per arena record: the commit whose staging wrote it */
    uint32_t *free_stack, nfree;
    struct pending_free *pend; /* FIFO ring, arena_slots entries */
    size_t pend_head, pend_len;
    struct pb_dirty *logs;        /* logs[g % snap_slots]: entries changed by commit g */
    uint64_t *written;            /* per snapshot slot: the generation it holds; 0 = unknown */
    struct procbus_event *events; /* staged */
    size_t nev, evcap;
    uint64_t *changed; /* ids to sync into the registry at commit */
    size_t nchanged, chcap;
    struct procbus_registry *reg;
    uint64_t hb_interval; /* heartbeat_interval_ns stated at open */
    int thread_registered;
    enum procbus_failpoint fp;
    uint64_t forced_laps; /* times reclaim_early invalidated the older snapshot slots */
    unsigned flags;       /* procbus_pub_opts.flags */
    /* a crashed predecessor's records and facts (PROCBUS_PUB_INHERIT), until released */
    struct procbus_pub_pred pred;
    struct procbus_proc *pred_recs;
};

/*
 * Shared helpers (publisher.c). Context: the publisher's thread, as everything in the library.
 */

/* The arena record in `slot`. */
struct procbus_proc *pb_pub_arena_rec(struct procbus_pub *p, uint32_t slot);

/* Allocate p's private arrays for p->geo (index, arena bookkeeping, logs) and its registry;
 * every arena slot free. 0 or -ENOMEM (the caller frees with procbus_pub_close). */
int pb_pub_alloc(struct procbus_pub *p);

/* Point p's region pointers into p->seg's mapping and start staging the next batch. */
void pb_pub_attach_regions(struct procbus_pub *p);

/* Bring snapshot slot t (being rewritten for generation g) up to the master index (commit step
 * 3; the caller does the barriers of steps 2 and 4). */
void pb_pub_rewrite_slot(struct procbus_pub *p, uint32_t t, uint64_t g);

/* ---- handover.c ---- */

/*
 * Creation step 1 of a takeover with PROCBUS_PUB_INHERIT (init_snapshot calls it before the
 * initial snapshot is written): the crashed predecessor's records go into the arena and the
 * master index, keeping their ids (the next new id comes after the largest), as many as the
 * capacity holds; pred->recs is taken over (kept for procbus_pub_predecessor; init_snapshot
 * records the predecessor's facts). The initial
 * snapshot (slot t, generation g0) then shows them.
 */
void pb_pub_inherit(struct procbus_pub *p, struct pb_predecessor *pred, uint32_t t, uint64_t g0);

/* After creation: the inherited records into the registry (they are committed). 0 or -ENOMEM. */
int pb_pub_inherit_registry(struct procbus_pub *p);

#endif /* PROCBUS_PUB_INT_H */
