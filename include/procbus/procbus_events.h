/* procbus_events.h - the event ring (seek, next event) and waiting for a commit. */
#ifndef PROCBUS_EVENTS_H
#define PROCBUS_EVENTS_H

#include "procbus_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where procbus_next_event starts: the oldest event still held, or from now. */
enum procbus_seek { PROCBUS_SEEK_OLDEST = 0, PROCBUS_SEEK_NOW = 1 };

/*
 * procbus_seek_events - move the event cursor to the oldest event the ring
 * still holds (PROCBUS_SEEK_OLDEST) or past the newest (PROCBUS_SEEK_NOW,
 * any other value too). Events skipped by an earlier -EAGAIN are forgotten.
 * Context: an open reader. No system call.
 * Returns: 0, or -EINVAL (not open).
 * Ordering: acquire load of ring_head (ABI.md events step 1).
 */
static inline int procbus_seek_events(struct procbus_reader *r, int whence)
{
    uint64_t head;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    /* events step 1: pairs with the release store of ring_head in commit step 5 */
    head = PROCBUS__LD_ACQ(&procbus__hdr(r)->ring_head);
    r->skipped = 0; /* a seek is a deliberate jump: nothing pending is reported */
    if (whence == PROCBUS_SEEK_NOW)
        r->cursor = head;
    else
        r->cursor = head - r->ring_first > r->ring_cap ? head - r->ring_cap : r->ring_first;
    return 0;
}

/*
 * procbus_next_event - copy the next event after this reader's cursor into
 * *ev and advance. *missed is set to the exact number of events between the
 * cursor and this one that were overwritten before the reader got to them (0
 * normally).
 * Context: an open reader. No system call, no lock, no allocation.
 * Returns: 0; -ENOENT when there is no new event (*missed then counts events
 * skipped on the way, usually 0); -EAGAIN (lapped PROCBUS_READ_RETRIES times
 * in a row; the skipped events are reported by the next call's *missed);
 * -EBADMSG; -EINVAL (an argument NULL, not open). *ev is unspecified unless 0
 * is returned.
 * Ordering: ABI.md events steps 1-3: acquire load of ring_head, acquire load
 * of the entry's seq, copy, acquire fence, re-check of seq; they pair with
 * commit step 1 (seq release stores and fence) and step 5 (ring_head).
 */
PROCBUS_MUST_CHECK static inline int procbus_next_event(struct procbus_reader *r,
                                                        struct procbus_event *ev, uint64_t *missed)
{
    const struct procbus_header *h;
    const struct procbus_event *ring;
    uint64_t c, head;
    int attempt;

    if (r == NULL || r->base == NULL || ev == NULL || missed == NULL)
        return -EINVAL;
    h = procbus__hdr(r);
    ring = (const struct procbus_event *)(const void *)(r->base + r->ring_off);
    c = r->cursor;
    if (c < r->ring_first)
        c = r->ring_first;
    for (attempt = 0; attempt < PROCBUS_READ_RETRIES; attempt++) {
        const struct procbus_event *e;
        uint64_t s;

        /* events step 1: pairs with the release store of ring_head in commit step 5 */
        head = PROCBUS__LD_ACQ(&h->ring_head);
        if (c > head) /* cursor from another segment or a corrupt head */
            c = head;
        if (head - c > r->ring_cap)
            c = head - r->ring_cap;
        if (c == head) {
            *missed = (c > r->cursor ? c - r->cursor : 0) + r->skipped;
            r->skipped = 0;
            r->cursor = c;
            return -ENOENT;
        }
        e = &ring[c & (r->ring_cap - 1)];
        /* events step 2: pairs with the release store of seq = n in commit step 1 */
        s = PROCBUS__LD_ACQ(&e->seq);
        if (s != c) {
            if (s != PROCBUS_SEQ_BUSY && s < c)
                return -EBADMSG; /* entry older than a sequence the head passed */
            c++;                 /* overwritten: count it missed and move on */
            r->retries++;
            continue;
        }
        memcpy(ev, e, sizeof(*ev));
        /* events step 3: pairs with the release fence after seq = BUSY in commit
         * step 1: a copy that saw a rewrite's byte sees seq changed below */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (PROCBUS__LD(&e->seq) != c) {
            c++;
            r->retries++;
            continue;
        }
        ev->name[PROCBUS_COMM_LEN - 1] = '\0';
        *missed = (c > r->cursor ? c - r->cursor : 0) + r->skipped;
        r->skipped = 0;
        r->cursor = c + 1;
        return 0;
    }
    /* keep the progress: the next call goes on from here and reports these as missed */
    if (c > r->cursor) {
        r->skipped += c - r->cursor;
        r->cursor = c;
    }
    return -EAGAIN;
}

/*
 * procbus_wait - block until the generation differs from since_generation,
 * for at most timeout_ms milliseconds (negative: no limit, 0: just check).
 * The one reader call that blocks.
 * Context: an open reader. System calls: futex(FUTEX_WAIT) on the header's
 * futex word; clock_gettime(CLOCK_MONOTONIC) (vDSO) when timeout_ms > 0.
 * Returns: 0 (generation moved); -ETIMEDOUT; -EINTR (a signal arrived);
 * -EPIPE (the publisher shut down or the segment is gone, and the generation
 * has not moved: it will not); -EINVAL (not open); or another negative errno
 * from FUTEX_WAIT.
 * Ordering: ABI.md waiting steps 1-3: acquire load of `futex` (pairs with
 * the release increment of commit step 6), then of `generation` (commit step
 * 5); no wake-up is lost.
 */
static inline int procbus_wait(struct procbus_reader *r, uint64_t since_generation, int timeout_ms)
{
    const struct procbus_header *h;
    struct timespec deadline, now, rel;

    if (r == NULL || r->base == NULL)
        return -EINVAL;
    h = procbus__hdr(r);
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        /* waiting step 1: pairs with the release increment of commit step 6
         * (pb_segment_wake), which follows the generation store of step 5 */
        uint32_t word = PROCBUS__LD_ACQ(&h->futex);
        uint64_t hb;
        long rc;

        /* waiting step 2: pairs with the release store of generation, commit step 5 */
        if (PROCBUS__LD_ACQ(&h->generation) != since_generation)
            return 0;
        /* pairs with the release store of SHUTDOWN/GONE in pb_segment_close/_create,
         * which follows the last commit: re-load generation after seeing it */
        hb = PROCBUS__LD_ACQ(&h->heartbeat_ns);
        if (hb == PROCBUS_HB_SHUTDOWN || hb == PROCBUS_HB_GONE)
            return PROCBUS__LD_ACQ(&h->generation) != since_generation ? 0 : -EPIPE;
        if (timeout_ms == 0)
            return -ETIMEDOUT;
        if (timeout_ms > 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            rel.tv_sec = deadline.tv_sec - now.tv_sec;
            rel.tv_nsec = deadline.tv_nsec - now.tv_nsec;
            if (rel.tv_nsec < 0) {
                rel.tv_sec--;
                rel.tv_nsec += 1000000000L;
            }
            if (rel.tv_sec < 0)
                return -ETIMEDOUT;
        }
        /* waiting step 3: FUTEX_WAIT (shared: the word lives in a file mapping);
         * the kernel re-checks the word, so a commit since step 1 gives EAGAIN */
        rc = syscall(SYS_futex, &h->futex, FUTEX_WAIT, word, timeout_ms > 0 ? &rel : NULL, NULL, 0);
        if (rc < 0 && errno != EAGAIN && errno != ETIMEDOUT)
            return -errno; /* EINTR: a signal; anything else: cannot wait here */
    }
}

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_EVENTS_H */
