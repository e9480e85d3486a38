/* procbus-bench-table.h - procbus-bench's data: the records, lookup orders, the baselines' tables.
 */
#ifndef PBB_TABLE_H
#define PBB_TABLE_H

/*
 * Part of procbus-bench.c. Every design serves the same records: TABLE_N
 * (or BIG_N) struct procbus_proc with pids pid_of(i) and names "svc-NNNNN",
 * looked up in the same pseudo-random order, precomputed before any timing.
 * The lock baselines keep them in a flat table with the same index shape and
 * hash as the segment's; the floor is one cache line under a bare seqlock.
 */

#define TABLE_N       1000u  /* records in the lookup table */
#define BIG_N         10000u /* records in the large table */
#define ORDER_LEN     (1u << 16)
#define ORDER_MASK    (ORDER_LEN - 1)
#define CHURN_CHANGES 4 /* records changed per commit by a churning publisher / writer */

static int32_t pid_of(uint32_t i)
{
    return (int32_t)(1000 + 7 * i);
}

static void fill_rec(struct procbus_proc *r, uint32_t i)
{
    memset(r, 0, sizeof(*r));
    r->id = (uint64_t)i + 1;
    r->pid = pid_of(i);
    r->ppid = 1;
    r->pgid = r->pid;
    r->state = PROCBUS_STATE_RUNNING;
    r->start_realtime_ns = 1700000000000000000ull + (uint64_t)i * 1000;
    r->start_boot_ns = 5000000000ull + (uint64_t)i * 1000;
    r->state_since_ns = r->start_realtime_ns;
    r->restarts = i % 3;
    r->cpu_ns = (uint64_t)i * 1000003;
    r->rss_bytes = (uint64_t)(i % 64 + 1) << 20;
    snprintf(r->name, sizeof(r->name), "svc-%05u", i);
    snprintf(r->comm, sizeof(r->comm), "svc-%05u", i);
    r->cmdline_len = (uint32_t)snprintf(r->cmdline, sizeof(r->cmdline),
                                        "/usr/bin/svc-%05u --port=%u", i, 8000 + i) +
                     1;
}

/* What a churning publisher / writer does to a record: a state transition plus metrics. */
static void churn_rec(struct procbus_proc *r, uint64_t k)
{
    r->state = r->state == PROCBUS_STATE_RUNNING ? PROCBUS_STATE_READY : PROCBUS_STATE_RUNNING;
    r->state_since_ns = r->start_realtime_ns + k;
    r->cpu_ns += 1000003;
    r->rss_bytes += 4096;
}

/* Lookup orders: pseudo-random record indices, precomputed before any timing. */
struct order {
    uint32_t n;
    int32_t *pid;      /* ORDER_LEN pids */
    const char **name; /* ORDER_LEN names, same index sequence as pid */
    char (*names)[16]; /* n names */
};

static void order_init(struct order *o, uint32_t n)
{
    uint32_t i;

    o->n = n;
    o->pid = malloc(ORDER_LEN * sizeof(*o->pid));
    o->name = malloc(ORDER_LEN * sizeof(*o->name));
    o->names = malloc(n * sizeof(*o->names));
    if (!o->pid || !o->name || !o->names) {
        fprintf(stderr, "procbus-bench: out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; i++)
        snprintf(o->names[i], sizeof(o->names[i]), "svc-%05u", i);
    for (i = 0; i < ORDER_LEN; i++) {
        uint32_t k = (uint32_t)(rng_next() % n);
        o->pid[i] = pid_of(k);
        o->name[i] = o->names[k];
    }
}

/*
 * Flat table for the lock baselines (and the socket server's private copy):
 * records + an open-addressing pid index (procbus's hash, procbus's bucket
 * count - 4 x the records, rounded up to a power of two, as pb_segment_layout
 * lays out - and bucket encoding), a process-shared rwlock and a
 * process-shared mutex.
 */
struct flat {
    pthread_rwlock_t rw;
    pthread_mutex_t mu;
    uint32_t n, mask;
    size_t rec_off, bkt_off, size;
};

static size_t flat_size(uint32_t n, uint32_t *buckets)
{
    uint32_t b = 2;
    while (b < 4 * n)
        b <<= 1;
    *buckets = b;
    return 4096 + (size_t)n * sizeof(struct procbus_proc) + (size_t)b * 8;
}

static struct procbus_proc *flat_recs(struct flat *f)
{
    return (struct procbus_proc *)(void *)((char *)f + f->rec_off);
}

static uint64_t *flat_bkts(struct flat *f)
{
    return (uint64_t *)(void *)((char *)f + f->bkt_off);
}

/* Build in `mem` (flat_size bytes, zeroed). shared: PTHREAD_PROCESS_SHARED locks. 0 or -1. */
static int flat_build(void *mem, uint32_t n, int shared)
{
    struct flat *f = mem;
    pthread_rwlockattr_t rwa;
    pthread_mutexattr_t mua;
    uint32_t buckets, i;
    uint64_t *b;

    f->size = flat_size(n, &buckets);
    f->n = n;
    f->mask = buckets - 1;
    f->rec_off = 4096;
    f->bkt_off = 4096 + (size_t)n * sizeof(struct procbus_proc);
    if (shared) {
        if (pthread_rwlockattr_init(&rwa) != 0 ||
            pthread_rwlockattr_setpshared(&rwa, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_rwlock_init(&f->rw, &rwa) != 0)
            return -1;
        pthread_rwlockattr_destroy(&rwa);
        if (pthread_mutexattr_init(&mua) != 0 ||
            pthread_mutexattr_setpshared(&mua, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_mutex_init(&f->mu, &mua) != 0)
            return -1;
        pthread_mutexattr_destroy(&mua);
    }
    b = flat_bkts(f);
    for (i = 0; i < n; i++) {
        uint32_t pos;
        fill_rec(&flat_recs(f)[i], i);
        pos = procbus_key_home((uint32_t)pid_of(i), f->mask);
        while (b[pos] != 0)
            pos = (pos + 1) & f->mask;
        b[pos] = PROCBUS_BUCKET((uint32_t)pid_of(i), i);
    }
    return 0;
}

static void flat_destroy(struct flat *f)
{
    pthread_rwlock_destroy(&f->rw);
    pthread_mutex_destroy(&f->mu);
}

/* The bucket holding `key` in an index of mask + 1 buckets, or 0: the probe procbus__find makes
 * (procbus_section.h), linear from the home bucket to the first empty one, without its checks.
 * The lock baselines and the bare probe share it, so every lookup probes the same way. */
static inline uint64_t bucket_of(const uint64_t *tbl, uint32_t mask, uint32_t key)
{
    uint32_t pos = procbus_key_home(key, mask);
    uint64_t b;

    while ((b = __atomic_load_n(&tbl[pos], __ATOMIC_RELAXED)) != 0 && PROCBUS_BUCKET_KEY(b) != key)
        pos = (pos + 1) & mask;
    return b;
}

/* The record index of pid, or -1 (bucket_of on the lock table's index; so the baselines'
 * lookups cost what procbus's do, and the comparison is of the synchronisation alone). */
static inline int flat_find(struct flat *f, int32_t pid)
{
    uint64_t b = bucket_of(flat_bkts(f), f->mask, (uint32_t)pid);

    return b == 0 ? -1 : (int)PROCBUS_BUCKET_SLOT(b);
}

/*
 * The floor: one cache line under a bare seqlock, the least any cross-process
 * read of shared state can cost. The writer makes seq odd, writes v[], makes
 * it even again; a reader loads seq (acquire), one word, fences, re-loads seq.
 */
struct floor_line {
    _Alignas(64) uint64_t seq;
    uint64_t v[7];
};

/* One bare seqlock read of v[0]; counts its retries. */
static inline uint64_t floor_read(const struct floor_line *l, uint64_t *retries)
{
    for (;;) {
        uint64_t s1 = __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE), v;
        if (s1 & 1) {
            (*retries)++;
            continue;
        }
        v = __atomic_load_n(&l->v[0], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* pairs with the writer's release fence */
        if (__atomic_load_n(&l->seq, __ATOMIC_RELAXED) == s1)
            return v;
        (*retries)++;
    }
}

/* One write of the floor line (the writer side). */
static inline void floor_write(struct floor_line *l, uint64_t k)
{
    uint64_t s = __atomic_load_n(&l->seq, __ATOMIC_RELAXED);
    int j;

    __atomic_store_n(&l->seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* pairs with the reader's acquire fence */
    for (j = 0; j < 7; j++)
        __atomic_store_n(&l->v[j], k, __ATOMIC_RELAXED);
    __atomic_store_n(&l->seq, s + 2, __ATOMIC_RELEASE); /* pairs with the reader's first load */
}

#endif /* PBB_TABLE_H */
