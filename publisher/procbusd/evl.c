/* evl.c - event listeners, supervisord's protocol: events queued per pool, sent to a READY
 * listener's stdin with their header, RESULT read back from its stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"
#include "rxbuf.h"
#include "util.h"

/* One event waiting in a pool (or sent to a listener and not yet acknowledged). */
struct pbd_evl_entry {
    uint64_t serial;      /* supervisord's GlobalSerial */
    uint64_t pool_serial; /* the pool's own serial */
    enum pbd_evtype type;
    char *payload;
    size_t plen;
};

/* An [eventlistener:NAME] pool: its listeners are the instances whose group is NAME. */
struct pbd_evl_pool {
    char name[64];
    uint64_t mask;
    int buffer_size;
    uint64_t serial;          /* the last pool serial given */
    struct pbd_evl_entry **q; /* FIFO of buffer_size entries at most */
    size_t n;
    int live; /* still in the configuration */
};

static void entry_free(struct pbd_evl_entry *e)
{
    if (e != NULL) {
        free(e->payload);
        free(e);
    }
}

static struct pbd_evl_pool *pool_named(const struct pbd_par *p, const char *name)
{
    for (size_t i = 0; i < p->n_pools; i++)
        if (!strcmp(p->pools[i].name, name))
            return &p->pools[i];
    return NULL;
}

int pbd_evl_sync_pools(struct pbd_daemon *d)
{
    struct pbd_par *p = pbd_par_of(d);

    if (p == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_pools; i++)
        p->pools[i].live = 0;
    for (size_t i = 0; i < d->cfg.n_progs; i++) {
        const struct pbd_program *pr = &d->cfg.progs[i];
        struct pbd_evl_pool *pool;
        if (pr->kind != PBD_KIND_EVENTLISTENER)
            continue;
        pool = pool_named(p, pr->group);
        if (pool == NULL) {
            struct pbd_evl_pool *grown = realloc(p->pools, (p->n_pools + 1) * sizeof(*p->pools));
            if (grown == NULL)
                return -ENOMEM;
            p->pools = grown;
            pool = &p->pools[p->n_pools++];
            memset(pool, 0, sizeof(*pool));
            snprintf(pool->name, sizeof(pool->name), "%s", pr->group);
        }
        pool->mask = pr->evl_events;
        if (pool->buffer_size != pr->evl_buffer_size) {
            /* keep the newest events if the buffer shrank */
            while ((int)pool->n > pr->evl_buffer_size) {
                entry_free(pool->q[0]);
                memmove(pool->q, pool->q + 1, (pool->n - 1) * sizeof(*pool->q));
                pool->n--;
            }
            struct pbd_evl_entry **q =
                realloc(pool->q, (size_t)pr->evl_buffer_size * sizeof(*pool->q));
            if (q == NULL)
                return -ENOMEM;
            pool->q = q;
            pool->buffer_size = pr->evl_buffer_size;
        }
        pool->live = 1;
    }
    /* pools no longer configured stop receiving events (their queue is dropped) */
    for (size_t i = 0; i < p->n_pools;) {
        if (!p->pools[i].live) {
            for (size_t k = 0; k < p->pools[i].n; k++)
                entry_free(p->pools[i].q[k]);
            free(p->pools[i].q);
            p->pools[i] = p->pools[--p->n_pools];
        } else {
            i++;
        }
    }
    return 0;
}

/* supervisord's _acceptEvent: at the tail (or the head for a rejected one), the oldest dropped
 * when the buffer is full. */
static void pool_accept(struct pbd_daemon *d, struct pbd_evl_pool *pool, struct pbd_evl_entry *e,
                        int head)
{
    if ((int)pool->n >= pool->buffer_size && pool->n > 0) {
        pbd_say(d, PBD_L_ERR, "pool %s event buffer overflowed, discarding event %llu", pool->name,
                (unsigned long long)pool->q[0]->serial);
        entry_free(pool->q[0]);
        memmove(pool->q, pool->q + 1, (pool->n - 1) * sizeof(*pool->q));
        pool->n--;
    }
    if (head) {
        memmove(pool->q + 1, pool->q, pool->n * sizeof(*pool->q));
        pool->q[0] = e;
    } else {
        pool->q[pool->n] = e;
    }
    pool->n++;
}

void pbd_evl_notify(struct pbd_daemon *d, enum pbd_evtype type, const char *payload, size_t plen)
{
    struct pbd_par *p = d->par;
    uint64_t serial = 0;
    int numbered = 0;

    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_pools; i++) {
        struct pbd_evl_pool *pool = &p->pools[i];
        struct pbd_evl_entry *e;
        if (!(pool->mask & (1ull << type)))
            continue;
        if (!numbered) { /* one serial per event, whichever pools take it */
            serial = ++p->serial - 1;
            numbered = 1;
        }
        e = calloc(1, sizeof(*e));
        if (e == NULL || (e->payload = malloc(plen + 1)) == NULL) {
            free(e);
            pbd_say(d, PBD_L_ERR, "pool %s: out of memory, event dropped", pool->name);
            continue;
        }
        memcpy(e->payload, payload, plen);
        e->payload[plen] = '\0';
        e->plen = plen;
        e->type = type;
        e->serial = serial;
        e->pool_serial = pool->serial++;
        pool_accept(d, pool, e, 0);
    }
}

/* A listener that can take an event now: RUNNING (READY counts), READY for events, nothing
 * left to write. */
static int can_take(const struct pbd_inst *in)
{
    return (in->state == PROCBUS_STATE_RUNNING || in->state == PROCBUS_STATE_READY) &&
           in->par != NULL && in->par->lstate == PBD_LS_READY && in->par->stdin_w >= 0 &&
           in->par->pend == NULL;
}

/* Write what is pending to the listener's stdin without blocking; 0 done or waiting, -1 the
 * pipe is broken (the listener went away: its exit handles the event). */
static int flush_pending(struct pbd_par_inst *x)
{
    while (x->pend != NULL && x->pend_off < x->pend_len) {
        ssize_t w = write(x->stdin_w, x->pend + x->pend_off, x->pend_len - x->pend_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        if (w <= 0)
            return -1;
        x->pend_off += (size_t)w;
    }
    free(x->pend);
    x->pend = NULL;
    return 0;
}

/* Send pool's oldest event to a listener that can take it; 1 if sent. */
static int send_one(struct pbd_daemon *d, struct pbd_evl_pool *pool)
{
    const char *ident = d->cfg.daemon.identifier ? d->cfg.daemon.identifier : "supervisor";
    struct pbd_evl_entry *e = pool->q[0];

    for (size_t i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        struct pbd_par_inst *x = in->par;
        char head[512];
        int h;
        if (in->prog->kind != PBD_KIND_EVENTLISTENER || strcmp(in->prog->group, pool->name) ||
            in->removing || !can_take(in))
            continue;
        h = snprintf(head, sizeof(head),
                     "ver:3.0 server:%s serial:%llu pool:%s poolserial:%llu eventname:%s "
                     "len:%zu\n",
                     ident, (unsigned long long)e->serial, pool->name,
                     (unsigned long long)e->pool_serial, pbd_evtype_name(e->type), e->plen);
        x->pend = malloc((size_t)h + e->plen);
        if (x->pend == NULL)
            return 0;
        memcpy(x->pend, head, (size_t)h);
        memcpy(x->pend + h, e->payload, e->plen);
        x->pend_len = (size_t)h + e->plen;
        x->pend_off = 0;
        if (flush_pending(x) < 0) { /* EPIPE: supervisord leaves the listener as it is */
            free(x->pend);
            x->pend = NULL;
            pbd_say(d, PBD_L_DEBUG, "epipe occurred while sending event %llu to listener %s",
                    (unsigned long long)e->serial, in->prog->name);
            continue;
        }
        x->lstate = PBD_LS_BUSY;
        x->event = e;
        memmove(pool->q, pool->q + 1, (pool->n - 1) * sizeof(*pool->q));
        pool->n--;
        pbd_say(d, PBD_L_DEBUG, "event %llu sent to listener %s", (unsigned long long)e->serial,
                in->prog->name);
        return 1;
    }
    return 0;
}

void pbd_evl_dispatch(struct pbd_daemon *d)
{
    struct pbd_par *p = d->par;

    if (p == NULL)
        return;
    for (size_t i = 0; i < d->n_inst; i++) /* envelopes a full pipe held back */
        if (d->inst[i]->par != NULL && d->inst[i]->par->pend != NULL)
            flush_pending(d->inst[i]->par);
    for (size_t i = 0; i < p->n_pools; i++)
        while (p->pools[i].n > 0 && send_one(d, &p->pools[i]))
            ;
}

/* The listener's event goes back to the head of its pool (supervisord's handle_rejected). */
static void rebuffer(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_par_inst *x = in->par;
    struct pbd_evl_pool *pool;

    if (x == NULL || x->event == NULL)
        return;
    pool = d->par != NULL ? pool_named(d->par, in->prog->group) : NULL;
    if (pool != NULL) {
        pbd_say(d, PBD_L_DEBUG, "rebuffering event %llu for pool %s",
                (unsigned long long)x->event->serial, pool->name);
        pool_accept(d, pool, x->event, 1);
    } else {
        entry_free(x->event);
    }
    x->event = NULL;
}

static void set_lstate(struct pbd_daemon *d, struct pbd_inst *in, enum pbd_lstate s)
{
    static const char *const names[] = {"ACKNOWLEDGED", "READY", "BUSY", "UNKNOWN"};

    pbd_say(d, PBD_L_DEBUG, "%s: %s -> %s", in->prog->name, names[in->par->lstate], names[s]);
    in->par->lstate = s;
    if (s == PBD_LS_UNKNOWN)
        pbd_say(d, PBD_L_WARN,
                "%s: has entered the UNKNOWN state and will no longer receive events, this "
                "usually indicates the process violated the eventlistener protocol",
                in->prog->name);
}

/* Drop the first n bytes of the listener's state buffer. */
static void consume(struct pbd_par_inst *x, size_t n)
{
    memmove(x->sbuf, x->sbuf + n, x->slen - n);
    x->slen -= n;
}

/* supervisord's handle_listener_state_change, over the buffered stdout. */
static void listener_states(struct pbd_daemon *d, struct pbd_inst *in)
{
    static const char ready[] = "READY\n";
    struct pbd_par_inst *x = in->par;

    while (x->slen > 0) {
        switch (x->lstate) {
        case PBD_LS_UNKNOWN:
            x->slen = 0;
            return;
        case PBD_LS_ACKNOWLEDGED:
            if (x->slen < sizeof(ready) - 1)
                return;
            if (memcmp(x->sbuf, ready, sizeof(ready) - 1) == 0) {
                set_lstate(d, in, PBD_LS_READY);
                consume(x, sizeof(ready) - 1);
            } else {
                set_lstate(d, in, PBD_LS_UNKNOWN);
                x->slen = 0;
            }
            break;
        case PBD_LS_READY: /* spurious output: be strict about it, as supervisord */
            set_lstate(d, in, PBD_LS_UNKNOWN);
            x->slen = 0;
            return;
        case PBD_LS_BUSY:
            if (x->resultlen < 0) {
                char *nl = memchr(x->sbuf, '\n', x->slen), *end;
                long len;
                if (nl == NULL)
                    return;
                *nl = '\0';
                len = strncmp(x->sbuf, "RESULT ", 7) == 0 ? strtol(x->sbuf + 7, &end, 10) : -1;
                if (len < 0 || end == x->sbuf + 7 || *end != '\0') {
                    pbd_say(d, PBD_L_WARN, "%s: bad result line: '%.80s'", in->prog->name, x->sbuf);
                    set_lstate(d, in, PBD_LS_UNKNOWN);
                    x->slen = 0;
                    rebuffer(d, in);
                    return;
                }
                consume(x, (size_t)(nl - x->sbuf) + 1);
                x->resultlen = len;
            } else {
                int ok;
                if (x->slen < (size_t)x->resultlen)
                    return;
                ok = x->resultlen == 2 && memcmp(x->sbuf, "OK", 2) == 0;
                consume(x, (size_t)x->resultlen);
                x->resultlen = -1;
                if (ok) {
                    pbd_say(d, PBD_L_DEBUG, "%s: event was processed", in->prog->name);
                    entry_free(x->event);
                    x->event = NULL;
                } else {
                    pbd_say(d, PBD_L_WARN, "%s: event was rejected", in->prog->name);
                    rebuffer(d, in);
                }
                set_lstate(d, in, PBD_LS_ACKNOWLEDGED);
            }
            break;
        }
    }
}

void pbd_evl_listener_output(struct pbd_daemon *d, struct pbd_inst *in, const char *buf, size_t n)
{
    struct pbd_par_inst *x = pbd_par_inst_of(in);

    if (x == NULL || n == 0)
        return;
    if (x->slen + n > x->scap) {
        size_t cap = x->scap ? x->scap : 256;
        char *nb;
        while (cap < x->slen + n)
            cap *= 2;
        nb = realloc(x->sbuf, cap);
        if (nb == NULL)
            return;
        x->sbuf = nb;
        x->scap = cap;
    }
    memcpy(x->sbuf + x->slen, buf, n);
    x->slen += n;
    listener_states(d, in);
    pbd_evl_dispatch(d);
}

void pbd_evl_listener_started(struct pbd_daemon *d, struct pbd_inst *in, int stdin_w)
{
    struct pbd_par_inst *x = pbd_par_inst_of(in);

    (void)d;
    if (x == NULL) {
        close(stdin_w);
        return;
    }
    if (x->stdin_w >= 0)
        close(x->stdin_w);
    fcntl(stdin_w, F_SETFL, O_NONBLOCK);
    x->stdin_w = stdin_w;
    x->lstate = PBD_LS_ACKNOWLEDGED; /* busy until it says READY */
    x->slen = 0;
    x->resultlen = -1;
    free(x->pend);
    x->pend = NULL;
}

void pbd_evl_listener_gone(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_par_inst *x = in->par;

    if (x == NULL)
        return;
    rebuffer(d, in); /* supervisord: an event it died with is rejected, so sent again */
    if (x->stdin_w >= 0)
        close(x->stdin_w);
    x->stdin_w = -1;
    free(x->pend);
    x->pend = NULL;
    x->slen = 0;
    x->resultlen = -1;
}

/* supervisord's timeslice(period, when). */
static int64_t timeslice(int64_t period, int64_t when)
{
    return when - when % period;
}

void pbd_evl_tick(struct pbd_daemon *d)
{
    static const int64_t periods[3] = {5, 60, 3600};
    static const enum pbd_evtype types[3] = {PBD_EVT_TICK_5, PBD_EVT_TICK_60, PBD_EVT_TICK_3600};
    struct pbd_par *p = d->par;
    int64_t now = (int64_t)(pb_now_ns(CLOCK_REALTIME) / PB_NS_PER_SEC);

    if (p == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        int64_t slice = timeslice(periods[i], now);
        if (p->ticks[i] == 0) {
            p->ticks[i] = slice; /* we just started up */
        } else if (slice != p->ticks[i]) {
            char payload[32];
            int n = snprintf(payload, sizeof(payload), "when:%lld", (long long)slice);
            p->ticks[i] = slice;
            pbd_evl_notify(d, types[i], payload, (size_t)n);
        }
    }
}

uint64_t pbd_evl_next_tick(const struct pbd_daemon *d)
{
    uint64_t rt = pb_now_ns(CLOCK_REALTIME), mono = pb_now_ns(CLOCK_MONOTONIC), next;
    int wanted = 0;

    /* only when a pool wants ticks: the next 5 s boundary (every period is a multiple of 5) */
    for (size_t i = 0; d->par != NULL && i < d->par->n_pools; i++)
        wanted |= (d->par->pools[i].mask & ((1ull << PBD_EVT_TICK_5) | (1ull << PBD_EVT_TICK_60) |
                                            (1ull << PBD_EVT_TICK_3600))) != 0;
    if (!wanted)
        return UINT64_MAX;
    next = (rt / (5 * PB_NS_PER_SEC) + 1) * 5 * PB_NS_PER_SEC;
    return mono + (next - rt) + 1000000; /* just past the boundary */
}

int pbd_evl_pending(const struct pbd_daemon *d, const char *name)
{
    const struct pbd_evl_pool *pool = d->par != NULL ? pool_named(d->par, name) : NULL;

    if (pool == NULL)
        return 0;
    if (pool->n > 0)
        return 1;
    for (size_t i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *in = d->inst[i];
        if (in->prog->kind == PBD_KIND_EVENTLISTENER && !strcmp(in->prog->group, name) &&
            in->par != NULL && in->par->event != NULL)
            return 1;
    }
    return 0;
}

void pbd_evl_inst_free(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_par_inst *x = in->par;

    if (x == NULL)
        return;
    (void)d;
    entry_free(x->event);
    x->event = NULL;
    if (x->stdin_w >= 0)
        close(x->stdin_w);
    if (x->stdin_r >= 0)
        close(x->stdin_r);
    x->stdin_w = x->stdin_r = -1;
    free(x->pend);
    free(x->sbuf);
    x->pend = x->sbuf = NULL;
}

void pbd_evl_free(struct pbd_daemon *d)
{
    struct pbd_par *p = d->par;

    for (size_t i = 0; p != NULL && i < p->n_pools; i++) {
        for (size_t k = 0; k < p->pools[i].n; k++)
            entry_free(p->pools[i].q[k]);
        free(p->pools[i].q);
    }
    if (p != NULL) {
        free(p->pools);
        p->pools = NULL;
        p->n_pools = 0;
    }
}

/* ---- an upgrade in place (reexec_par.c): pools and listeners carried over ---- */

static void entry_save(struct pbd_rxbuf *b, const struct pbd_evl_entry *e)
{
    pbd_rx_u64(b, e->serial);
    pbd_rx_u64(b, e->pool_serial);
    pbd_rx_u64(b, (uint64_t)e->type);
    pbd_rx_bytes(b, e->payload, e->plen);
}

/* An entry entry_save wrote; NULL (r->err set) when it cannot be read. */
static struct pbd_evl_entry *entry_restore(struct pbd_rxrd *r)
{
    struct pbd_evl_entry *e = calloc(1, sizeof(*e));
    uint64_t serial = pbd_rx_get_u64(r), pool_serial = pbd_rx_get_u64(r);
    uint64_t type = pbd_rx_get_u64(r);
    size_t n;
    char *payload = pbd_rx_get_bytes(r, &n);

    if (payload == NULL && r->err == 0)
        payload = calloc(1, 1); /* (an empty payload: never a NULL one) */
    if (e == NULL || payload == NULL || r->err != 0 || type >= PBD_EVT__COUNT) {
        free(e);
        free(payload);
        if (r->err == 0)
            r->err = -EPROTO;
        return NULL;
    }
    e->serial = serial;
    e->pool_serial = pool_serial;
    e->type = (enum pbd_evtype)type;
    e->payload = payload;
    e->plen = n;
    return e;
}

void pbd_evl_save(const struct pbd_daemon *d, struct pbd_rxbuf *b)
{
    const struct pbd_par *p = d->par;
    size_t n = p != NULL ? p->n_pools : 0;

    pbd_rx_u64(b, p != NULL ? p->serial : 0);
    for (int i = 0; i < 3; i++)
        pbd_rx_u64(b, p != NULL ? (uint64_t)p->ticks[i] : 0);
    pbd_rx_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        const struct pbd_evl_pool *pool = &p->pools[i];
        pbd_rx_str(b, pool->name);
        pbd_rx_u64(b, pool->serial);
        pbd_rx_u64(b, pool->n);
        for (size_t k = 0; k < pool->n; k++)
            entry_save(b, pool->q[k]);
    }
}

int pbd_evl_restore(struct pbd_daemon *d, struct pbd_rxrd *r)
{
    struct pbd_par *p = pbd_par_of(d);
    uint64_t serial = pbd_rx_get_u64(r), n;
    int64_t ticks[3];

    for (int i = 0; i < 3; i++)
        ticks[i] = (int64_t)pbd_rx_get_u64(r);
    n = pbd_rx_get_u64(r);
    if (p == NULL)
        return -ENOMEM;
    p->serial = serial;
    memcpy(p->ticks, ticks, sizeof(ticks));
    for (uint64_t i = 0; i < n && r->err == 0; i++) {
        char *name = pbd_rx_get_str(r);
        struct pbd_evl_pool *pool = name != NULL ? pool_named(p, name) : NULL;
        uint64_t pserial = pbd_rx_get_u64(r), cnt = pbd_rx_get_u64(r);
        free(name);
        if (pool != NULL)
            pool->serial = pserial;
        for (uint64_t k = 0; k < cnt && r->err == 0; k++) {
            struct pbd_evl_entry *e = entry_restore(r);
            if (e != NULL && pool != NULL) /* (a pool gone from the configuration: dropped) */
                pool_accept(d, pool, e, 0);
            else
                entry_free(e);
        }
    }
    return r->err;
}

void pbd_evl_inst_save(const struct pbd_inst *in, struct pbd_rxbuf *b)
{
    const struct pbd_par_inst *x = in->par;

    pbd_rx_u64(b, x != NULL);
    if (x == NULL)
        return;
    pbd_rx_u64(b, (uint64_t)x->lstate);
    pbd_rx_u64(b, (uint64_t)(int64_t)x->resultlen);
    if (x->pend != NULL) /* an envelope partly written: the rest is the new image's to write */
        pbd_rx_bytes(b, x->pend + x->pend_off, x->pend_len - x->pend_off);
    else
        pbd_rx_bytes(b, NULL, 0);
    pbd_rx_bytes(b, x->sbuf, x->slen);
    pbd_rx_u64(b, x->event != NULL);
    if (x->event != NULL)
        entry_save(b, x->event);
}

void pbd_evl_inst_restore(struct pbd_inst *in, struct pbd_rxrd *r)
{
    struct pbd_par_inst *x;
    uint64_t lstate, resultlen, has_event;
    size_t pend_len = 0, slen = 0;
    char *pend, *sbuf;
    struct pbd_evl_entry *event = NULL;

    if (pbd_rx_get_u64(r) == 0)
        return;
    lstate = pbd_rx_get_u64(r);
    resultlen = pbd_rx_get_u64(r);
    pend = pbd_rx_get_bytes(r, &pend_len);
    sbuf = pbd_rx_get_bytes(r, &slen);
    has_event = pbd_rx_get_u64(r);
    if (has_event)
        event = entry_restore(r);
    x = in != NULL ? pbd_par_inst_of(in) : NULL;
    if (x == NULL || r->err != 0 || lstate > PBD_LS_UNKNOWN) {
        free(pend);
        free(sbuf);
        entry_free(event);
        if (r->err == 0 && lstate > PBD_LS_UNKNOWN)
            r->err = -EPROTO;
        return;
    }
    x->lstate = (enum pbd_lstate)lstate;
    x->resultlen = (long)(int64_t)resultlen;
    free(x->pend);
    x->pend = pend;
    x->pend_len = pend_len;
    x->pend_off = 0;
    free(x->sbuf);
    x->sbuf = sbuf;
    x->slen = x->scap = slen;
    entry_free(x->event);
    x->event = event;
}
