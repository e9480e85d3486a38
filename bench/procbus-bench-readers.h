/* procbus-bench-readers.h - procbus-bench's readers: one timed batch function per way of reading.
 */
#ifndef PBB_READERS_H
#define PBB_READERS_H

/*
 * Part of procbus-bench.c. Every lookup kind answers the same question, "what
 * is the state of process PID" (or of NAME), for pids in the same precomputed
 * order, and checks every answer (0 and the right record; -EAGAIN is counted,
 * anything else fails the run). The state goes into an accumulator that ends
 * in a volatile sink, so no read can be dropped.
 */

enum rkind {
    RK_FLOOR,    /* bare seqlock read of one cache line */
    RK_FLOOR_N,  /* the same, of one line among n (the one pid_of's index names) */
    RK_PROBE,    /* floor of a lookup: bare seqlock probe of the segment, no checks */
    RK_PROBE_IX, /* the same without the record: the index alone (the bucket's slot bits) */
    RK_ZC_PID,   /* section: state by pid, zero-copy */
    RK_ZC_NAME,  /* section: state by name, zero-copy */
    RK_COPY_PID, /* procbus_get_pid (copies the 384-byte record), then its state */
    RK_RWLOCK,   /* rdlock, probe, load the state, unlock */
    RK_MUTEX,    /* lock, probe, load the state, unlock */
    RK_SOCKET,   /* query over a unix socket: pid out, state back */
    RK_LIST,     /* procbus_list of the whole table, then count by state and sum RSS */
    RK_ITER,     /* section walk of the whole table: count by state, sum RSS, no copy */
    RK_ALLOC     /* allocation count over every procbus read kind */
};

struct reader_args {
    struct ctl *ctl;
    int idx, cpu;
    enum rkind kind;
    const char *seg;           /* procbus kinds */
    const struct order *ord;   /* lookups */
    uint32_t n;                /* list, walk: records expected */
    struct flat *f;            /* lock kinds */
    struct floor_line *line;   /* the floor */
    int fd;                    /* socket: this reader's end */
    unsigned ops, max_batches; /* ops per batch; batches at most */
    double budget_ns;          /* time for the measured batches (a tenth more warms up) */
};

struct rd_ctx {
    struct procbus_reader r;
    const struct order *ord;
    struct procbus_proc *buf; /* list output */
    uint32_t n;
    struct flat *f;
    struct floor_line *line;
    int fd;
    unsigned pos;
    uint64_t bad, eagain, retries; /* retries: the floor's and the lock kinds' own */
};

typedef uint64_t (*batch_fn)(struct rd_ctx *c, unsigned ops);

static uint64_t b_floor(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0;
    unsigned i;

    for (i = 0; i < ops; i++)
        acc += floor_read(c->line, &c->retries);
    return acc;
}

/* The floor over the lookups' working set: line (pid - 1000) / 7 of n, in the lookup order. */
static uint64_t b_floor_n(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        uint32_t k = (uint32_t)(c->ord->pid[pos++ & ORDER_MASK] - 1000) / 7;
        acc += floor_read(&c->line[k], &c->retries);
    }
    c->pos = pos;
    return acc;
}

/* Arena record `slot`, unchecked (the bare probe's). */
static const struct procbus_proc *rec_at(const struct procbus_reader *r, uint32_t slot)
{
    return (const struct procbus_proc *)(const void *)(r->base + r->arena_off +
                                                       (uint64_t)slot * r->record_size);
}

/*
 * The floor of a lookup in this layout: what a reader that trusts the segment
 * would do, with none of the section's checks (no bounds on `current`, the
 * arena slot or the probe count, no record pid or size check, no retry
 * bookkeeping): `current`, the slot's gen, the pid index probed from the home
 * bucket, the record's state, the gen again (ABI.md read steps 1-4 and
 * nothing else). The same segment, memory and lookup order as the section by
 * pid, so section / probe is what the checks and the API cost. Not safe on a
 * hostile segment: a floor only. A torn attempt is counted and read again.
 */
static uint64_t probe(struct rd_ctx *c, unsigned ops, int record)
{
    const struct procbus_reader *r = &c->r;
    const struct procbus_header *h = (const struct procbus_header *)(const void *)r->base;
    uint64_t acc = 0, bad = 0, retries = 0;
    uint32_t mask = r->buckets - 1;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        uint32_t key = (uint32_t)c->ord->pid[pos++ & ORDER_MASK], state;
        for (;;) {
            uint64_t cur = __atomic_load_n(&h->current, __ATOMIC_ACQUIRE), gen, b;
            const unsigned char *snap = r->base + PROCBUS_CUR_OFF(cur);
            const uint64_t *tbl = (const uint64_t *)(const void *)(snap + r->pid_off);

            gen = __atomic_load_n((const uint64_t *)(const void *)snap, __ATOMIC_ACQUIRE);
            b = bucket_of(tbl, mask, key);
            if (b == 0)
                state = 0;
            else if (!record)
                state = (uint32_t)b & 7u; /* something of the bucket's, to keep the load */
            else
                state =
                    __atomic_load_n(&rec_at(r, PROCBUS_BUCKET_SLOT(b))->state, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (gen != 0 && (gen & PROCBUS_CUR_GEN_MASK) == PROCBUS_CUR_GEN(cur) &&
                __atomic_load_n((const uint64_t *)(const void *)snap, __ATOMIC_RELAXED) == gen) {
                bad += b == 0;
                break;
            }
            retries++;
        }
        acc += state;
    }
    c->pos = pos;
    c->bad += bad;
    c->retries += retries;
    return acc;
}

static uint64_t b_probe(struct rd_ctx *c, unsigned ops)
{
    return probe(c, ops, 1);
}

/* The index alone, no record line: a bound on any reader that probes a pid index. */
static uint64_t b_probe_ix(struct rd_ctx *c, unsigned ops)
{
    return probe(c, ops, 0);
}

/* The zero-copy lookups: begin, find, load one field, validate (procbus_section.h). */
static uint64_t b_zc_pid(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK];
        const struct procbus_proc *p;
        struct procbus_section s;
        unsigned state;
        int rc;

        procbus_section_begin(&c->r, &s);
        do {
            p = procbus_section_pid(&s, pid);
            state = p != NULL ? PROCBUS_FIELD(p, state) : 0;
        } while ((rc = procbus_section_retry(&s)) > 0);
        acc += state;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && p == NULL);
    }
    c->pos = pos;
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static uint64_t b_zc_name(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        const char *name = c->ord->name[pos++ & ORDER_MASK];
        const struct procbus_proc *p;
        struct procbus_section s;
        unsigned state;
        int rc;

        procbus_section_begin(&c->r, &s);
        do {
            p = procbus_section_name(&s, name);
            state = p != NULL ? PROCBUS_FIELD(p, state) : 0;
        } while ((rc = procbus_section_retry(&s)) > 0);
        acc += state;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && p == NULL);
    }
    c->pos = pos;
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static uint64_t b_copy_pid(struct rd_ctx *c, unsigned ops)
{
    struct procbus_proc out;
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned pos = c->pos, i;

    memset(&out, 0, sizeof(out));
    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK];
        int rc = procbus_get_pid(&c->r, pid, &out);
        escape(&out); /* all 384 bytes must really be written */
        acc += out.state;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && out.pid != pid);
    }
    c->pos = pos;
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

/* The lock baselines: the same question under the lock, reading the one field. */
static uint64_t b_lock(struct rd_ctx *c, unsigned ops, int mutex)
{
    struct procbus_proc *recs = flat_recs(c->f);
    uint64_t acc = 0, bad = 0;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK], got = 0;
        int k, e1, e2;
        e1 = mutex ? pthread_mutex_lock(&c->f->mu) : pthread_rwlock_rdlock(&c->f->rw);
        k = flat_find(c->f, pid);
        if (k >= 0) {
            acc += recs[k].state;
            got = recs[k].pid;
        }
        e2 = mutex ? pthread_mutex_unlock(&c->f->mu) : pthread_rwlock_unlock(&c->f->rw);
        bad += k < 0 || got != pid || e1 != 0 || e2 != 0;
    }
    c->pos = pos;
    c->bad += bad;
    return acc;
}

static uint64_t b_rwlock(struct rd_ctx *c, unsigned ops)
{
    return b_lock(c, ops, 0);
}

static uint64_t b_mutex(struct rd_ctx *c, unsigned ops)
{
    return b_lock(c, ops, 1);
}

static uint64_t b_socket(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0;
    unsigned pos = c->pos, i;

    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK], state = -1;
        if (pb_write_all(c->fd, &pid, sizeof(pid)) < 0 ||
            pb_read_all(c->fd, &state, sizeof(state)) != 0) {
            c->bad += ops; /* the server is gone: fail the whole run */
            return acc;
        }
        acc += (uint64_t)state;
        bad += state < 0;
    }
    c->pos = pos;
    c->bad += bad;
    return acc;
}

/* What an aggregating tool wants from the whole table: processes by state, total RSS. */
struct agg {
    uint32_t by_state[PROCBUS_STATE_COUNT_];
    uint64_t rss;
};

static uint64_t b_list(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned i;

    for (i = 0; i < ops; i++) {
        struct agg a;
        size_t cnt = 0, j;
        int rc = procbus_list(&c->r, c->buf, c->n, &cnt);
        memset(&a, 0, sizeof(a));
        for (j = 0; rc == 0 && j < cnt; j++) {
            a.by_state[c->buf[j].state < PROCBUS_STATE_COUNT_ ? c->buf[j].state : 0]++;
            a.rss += c->buf[j].rss_bytes;
        }
        acc ^= a.rss + a.by_state[PROCBUS_STATE_RUNNING];
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && cnt != c->n);
    }
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

/* The same aggregate over a section walk: no record is copied. */
static uint64_t b_iter(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned i;

    for (i = 0; i < ops; i++) {
        struct procbus_section s;
        struct agg a;
        uint32_t n = 0, j;
        int rc;

        procbus_section_begin(&c->r, &s);
        do {
            memset(&a, 0, sizeof(a));
            n = procbus_section_count(&s);
            for (j = 0; j < n; j++) {
                const struct procbus_proc *p = procbus_section_at(&s, j);
                unsigned st;
                if (p == NULL)
                    break;
                st = PROCBUS_FIELD(p, state); /* untrusted until the retry: clamp to use it */
                a.by_state[st < PROCBUS_STATE_COUNT_ ? st : 0]++;
                a.rss += PROCBUS_FIELD(p, rss_bytes);
            }
        } while ((rc = procbus_section_retry(&s)) > 0);
        acc ^= a.rss + a.by_state[PROCBUS_STATE_RUNNING];
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && n != c->n);
    }
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static batch_fn kind_fn(enum rkind k)
{
    switch (k) {
    case RK_FLOOR:
        return b_floor;
    case RK_FLOOR_N:
        return b_floor_n;
    case RK_PROBE:
        return b_probe;
    case RK_PROBE_IX:
        return b_probe_ix;
    case RK_ZC_PID:
    case RK_ALLOC:
        return b_zc_pid;
    case RK_ZC_NAME:
        return b_zc_name;
    case RK_COPY_PID:
        return b_copy_pid;
    case RK_RWLOCK:
        return b_rwlock;
    case RK_MUTEX:
        return b_mutex;
    case RK_SOCKET:
        return b_socket;
    case RK_LIST:
        return b_list;
    case RK_ITER:
        return b_iter;
    }
    return NULL;
}

/* Minimum measured batches before the time budget may end a run. */
#define MIN_BATCHES 5

/*
 * Run batches of `ops` operations until budget_ns is spent (at least
 * MIN_BATCHES) or max_nb ran, storing each batch's ns/op in samples[] (NULL:
 * warm-up). Returns the number of batches run.
 */
static unsigned run_batches(batch_fn fn, struct rd_ctx *c, unsigned max_nb, unsigned ops,
                            double *samples, double budget_ns)
{
    double start = (double)mono();
    uint64_t acc = 0;
    unsigned b;

    for (b = 0; b < max_nb; b++) {
        double t0 = (double)mono(), t1;
        acc ^= fn(c, ops);
        t1 = (double)mono();
        if (samples != NULL)
            samples[b] = (t1 - t0) / ops;
        if ((samples == NULL || b + 1 >= MIN_BATCHES) && t1 - start > budget_ns) {
            b++;
            break;
        }
    }
    sink ^= acc;
    return b;
}

/* Allocation count over reads of every procbus kind (while the publisher churns). */
static void alloc_test(struct rd_ctx *c, const struct reader_args *a, struct stat_out *res)
{
    static const batch_fn fns[] = {b_zc_pid, b_zc_name, b_copy_pid, b_iter, b_list};
    static const unsigned per_round[] = {200, 200, 200, 1, 1};
    unsigned long a0, a1;
    void *volatile probe;
    unsigned rounds = a->ops / 1000 ? a->ops / 1000 : 1, i, k;

    /* self-test: the interposed counter must see a known allocation */
    a0 = allocs_now();
    probe = malloc(64);
    free(probe);
    a1 = allocs_now();
    if (a1 - a0 != 1) {
        snprintf(res->msg, sizeof(res->msg), "allocation counter self-test saw %lu calls, not 1",
                 a1 - a0);
        st(&res->err, EIO);
        _exit(1);
    }
    for (k = 0; k < 5; k++) /* warm-up */
        fns[k](c, per_round[k]);
    a0 = allocs_now();
    res->reads = 0;
    for (i = 0; i < rounds; i++)
        for (k = 0; k < 5; k++) {
            fns[k](c, per_round[k]);
            res->reads += per_round[k];
        }
    a1 = allocs_now();
    res->allocs = a1 - a0;
    res->retries = c->r.retries;
}

static void reader_main(void *v)
{
    struct reader_args *a = v;
    struct ctl *c = a->ctl;
    struct stat_out *res = &c->res[a->idx];
    struct rd_ctx *x = calloc(1, sizeof(*x));
    batch_fn fn = kind_fn(a->kind);
    uint64_t r0 = 0, g0 = 0, g1 = 0, p0 = 0, p1 = 0;
    int rc, procbus = a->kind == RK_PROBE || a->kind == RK_PROBE_IX || a->kind == RK_ZC_PID ||
                      a->kind == RK_ZC_NAME || a->kind == RK_COPY_PID || a->kind == RK_LIST ||
                      a->kind == RK_ITER || a->kind == RK_ALLOC;

    if (a->kind == RK_SOCKET)
        close_ends_but(&a->fd, 1);
    pin(a->cpu);
    if (x == NULL || a->max_batches > MAX_BATCHES)
        child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    x->ord = a->ord;
    x->n = a->n;
    x->f = a->f;
    x->line = a->line;
    x->fd = a->fd;
    x->pos = (unsigned)a->idx * 4099u; /* readers start at different places */
    if (procbus) {
        uint32_t flat_buckets;
        rc = procbus_open(&x->r, a->seg);
        if (rc < 0)
            child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_open", rc);
        /* the baselines probe an index of procbus's shape: the same bucket count */
        (void)flat_size(a->n, &flat_buckets);
        if (procbus__hdr(&x->r)->hash_buckets != flat_buckets)
            child_fail(res->msg, sizeof(res->msg), &res->err,
                       "the segment's hash_buckets differ from the baselines'", -EPROTO);
    }
    if (a->kind == RK_LIST || a->kind == RK_ALLOC) {
        x->buf = calloc(a->n, sizeof(*x->buf));
        if (x->buf == NULL)
            child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    }
    barrier(c);

    if (a->kind == RK_ALLOC) {
        alloc_test(x, a, res);
    } else {
        unsigned nb;

        run_batches(fn, x, a->max_batches, a->ops, NULL, a->budget_ns / 10);
        r0 = x->r.retries + x->retries;
        if (procbus)
            g0 = procbus_generation(&x->r);
        p0 = __atomic_load_n(&c->pub_ops, __ATOMIC_RELAXED);
        res->t0 = (double)mono();
        nb = run_batches(fn, x, a->max_batches, a->ops, c->samples[a->idx], a->budget_ns);
        res->t1 = (double)mono();
        p1 = __atomic_load_n(&c->pub_ops, __ATOMIC_RELAXED);
        if (procbus)
            g1 = procbus_generation(&x->r);
        res->ops = (uint64_t)nb * a->ops;
        res->batches = nb;
        res->retries = x->r.retries + x->retries - r0;
        res->other_rate = (double)(procbus ? g1 - g0 : p1 - p0) / ((res->t1 - res->t0) / 1e9);
    }
    res->eagain = x->eagain;
    if (x->bad != 0) {
        snprintf(res->msg, sizeof(res->msg),
                 "%" PRIu64 " reads failed or returned the wrong record", x->bad);
        st(&res->err, EIO);
        _exit(1);
    }
    if (procbus)
        procbus_close(&x->r);
    if (a->kind == RK_SOCKET)
        close(a->fd);
    free(x->buf);
    free(x);
    res->done = 1;
}

#endif /* PBB_READERS_H */
