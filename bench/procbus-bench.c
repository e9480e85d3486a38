/* procbus-bench.c - procbus read and commit benchmarks against rwlock and socket baselines. */
#define _GNU_SOURCE
#include "procbus.h"
#include "procbus_pub.h"
#define BENCH_NAME     "procbus-bench"
#define BENCH_MAX_ROWS 48
#include "bench_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Every benchmark runs in forked processes: a publisher (or rwlock writer, or
 * socket server) and one or more readers, each pinned to a CPU. The parent
 * only orchestrates: it never calls the publisher library itself, so no
 * liburcu state is ever inherited across fork. Children report through an
 * anonymous MAP_SHARED control block and exit with _exit().
 *
 * Timing: batches of `ops` operations timed with CLOCK_MONOTONIC; the figure
 * is the median of the per-batch means, after warm-up batches. Every copied
 * record is passed to an empty asm statement with a memory clobber (so the
 * 384-byte copy must really happen) and folded (id ^ pid) into a volatile sink.
 */

/* ---- allocation counter: this binary interposes the allocator ---- */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *ptr);

static unsigned long alloc_calls; /* per process: children inherit a copy */

static void count_alloc(void)
{
    __atomic_fetch_add(&alloc_calls, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size)
{
    count_alloc();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    count_alloc();
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    count_alloc();
    return __libc_realloc(ptr, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    count_alloc();
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;

    count_alloc();
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *ptr)
{
    __libc_free(ptr);
}

static unsigned long allocs_now(void)
{
    return __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
}

/* ---- sizes and parameters ---- */

#define TABLE_N       1000u  /* records in the lookup table */
#define BIG_N         10000u /* records in the large table */
#define ORDER_LEN     (1u << 16)
#define ORDER_MASK    (ORDER_LEN - 1)
#define NREADERS      10
#define CHURN_CHANGES 4 /* records changed per commit by a churning publisher / writer */
#define MAX_CHILDREN  32
#define READY_TIMEOUT 60.0

struct params {
    int quick;
    unsigned warm, batches, ops;          /* lookups, rwlock */
    unsigned mwarm, mbatches, mops;       /* 10 readers */
    unsigned swarm, sbatches, sops;       /* socket */
    unsigned lwarm, lbatches, lops_small; /* list of 100 */
    unsigned bwarm, bbatches, lops_big;   /* list of 10,000 */
    unsigned cwarm, cbatches, cops;       /* commits */
    unsigned alloc_reads;
    double budget_s; /* per benchmark: measured batches stop after this (at least 5 run) */
};

static void params_init(struct params *P, int quick)
{
    memset(P, 0, sizeof(*P));
    P->quick = quick;
    if (!quick) {
        P->warm = 50, P->batches = 400, P->ops = 20000;
        P->mwarm = 40, P->mbatches = 400, P->mops = 5000;
        P->swarm = 2, P->sbatches = 40, P->sops = 2000;
        P->lwarm = 10, P->lbatches = 200, P->lops_small = 1000;
        P->bwarm = 3, P->bbatches = 60, P->lops_big = 10;
        P->cwarm = 3, P->cbatches = 100, P->cops = 1000;
        P->alloc_reads = 200000;
        P->budget_s = 8;
    } else {
        P->warm = 10, P->batches = 60, P->ops = 10000;
        P->mwarm = 10, P->mbatches = 60, P->mops = 5000;
        P->swarm = 1, P->sbatches = 10, P->sops = 1000;
        P->lwarm = 3, P->lbatches = 40, P->lops_small = 500;
        P->bwarm = 2, P->bbatches = 15, P->lops_big = 5;
        P->cwarm = 2, P->cbatches = 30, P->cops = 500;
        P->alloc_reads = 50000;
        P->budget_s = 1.5;
    }
}

/* ---- small utilities ---- */

static volatile uint64_t sink;

/* The pointed-to object must be fully written here; the compiler cannot drop the copy. */
static inline void escape(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static int cpus[64], ncpus;

static void cpus_init(void)
{
    cpu_set_t set;
    int i;

    ncpus = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (i = 0; i < CPU_SETSIZE && ncpus < 64; i++)
            if (CPU_ISSET(i, &set))
                cpus[ncpus++] = i;
    if (ncpus == 0)
        cpus[ncpus++] = 0;
}

static int cpu_a(void)
{
    return cpus[0];
}

static int cpu_b(void)
{
    return cpus[ncpus > 1 ? 1 : 0];
}

/* Pin the calling process to one CPU. */
static void pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        perror("sched_setaffinity");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- the test table ---- */

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

/* Flat table for the baselines: records + open-addressing pid index, optionally an rwlock. */
struct flat {
    pthread_rwlock_t lock;
    uint32_t n, mask;
    size_t rec_off, bkt_off, size;
};

static size_t flat_size(uint32_t n, uint32_t *buckets)
{
    uint32_t b = 2;
    while (b < 2 * n)
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

/* Build in `mem` (flat_size bytes, zeroed). shared: a PTHREAD_PROCESS_SHARED rwlock. */
static int flat_build(void *mem, uint32_t n, int shared)
{
    struct flat *f = mem;
    pthread_rwlockattr_t at;
    uint32_t buckets, i;
    uint64_t *b;

    f->size = flat_size(n, &buckets);
    f->n = n;
    f->mask = buckets - 1;
    f->rec_off = 4096;
    f->bkt_off = 4096 + (size_t)n * sizeof(struct procbus_proc);
    if (shared) {
        if (pthread_rwlockattr_init(&at) != 0 ||
            pthread_rwlockattr_setpshared(&at, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_rwlock_init(&f->lock, &at) != 0)
            return -1;
        pthread_rwlockattr_destroy(&at);
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

static inline int flat_find(struct flat *f, int32_t pid)
{
    const uint64_t *b = flat_bkts(f);
    uint32_t pos = procbus_key_home((uint32_t)pid, f->mask);

    for (;;) {
        uint64_t e = b[pos];
        if (e == 0)
            return -1;
        if (PROCBUS_BUCKET_KEY(e) == (uint32_t)pid)
            return (int)PROCBUS_BUCKET_SLOT(e);
        pos = (pos + 1) & f->mask;
    }
}

/* ---- control block shared by the parent and the children of one benchmark ---- */

struct stat_out {
    double med, min, max; /* per-batch means, ns (commit: ns per commit) */
    double mean;          /* mean over all measured operations */
    unsigned batches;     /* measured batches actually run (see the time budget) */
    double t0, t1;        /* measured phase, CLOCK_MONOTONIC ns */
    double other_rate;    /* publisher commits / writer updates per second while measuring */
    uint64_t ops, retries, eagain, allocs, reads;
    int done, err;
    char msg[200];
};

struct ctl {
    _Alignas(64) int nready;
    int go, stop;
    _Alignas(64) int pub_ready;
    int pub_err;
    uint64_t pub_forced_laps, pub_commits;
    char pub_msg[200];
    _Alignas(64) uint64_t pub_ops; /* written by the churning side on every iteration */
    _Alignas(64) struct stat_out res[NREADERS];
};

static struct ctl *ctl_new(void)
{
    void *m =
        mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return m;
}

static void ctl_free(struct ctl *c)
{
    munmap(c, sizeof(*c));
}

static int ld(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void st(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Children: announce readiness, then wait for the start signal. */
static void barrier(struct ctl *c)
{
    __atomic_add_fetch(&c->nready, 1, __ATOMIC_ACQ_REL);
    while (!ld(&c->go))
        sched_yield();
}

static void child_fail(char *msg, size_t cap, int *err, const char *what, int rc)
{
    snprintf(msg, cap, "%s: %s", what, strerror(rc < 0 ? -rc : rc));
    st(err, rc < 0 ? -rc : (rc ? rc : EIO));
    _exit(1);
}

/* ---- child process management (parent side) ---- */

static pid_t parent_pid;
static pid_t children[MAX_CHILDREN];
static int nchildren;
static char cur_seg_path[128]; /* removed if we are interrupted */

static void forget_child(pid_t pid)
{
    int i;
    for (i = 0; i < nchildren; i++)
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            return;
        }
}

static void kill_children(void)
{
    int i, stv;
    for (i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    for (i = 0; i < nchildren; i++)
        while (waitpid(children[i], &stv, 0) < 0 && errno == EINTR)
            ;
    nchildren = 0;
}

/* SIGINT, SIGTERM: kill the children, remove the current segment, exit 128 + sig. */
static void on_fatal_signal(int sig)
{
    int i, stv;
    for (i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    for (i = 0; i < nchildren; i++)
        while (waitpid(children[i], &stv, 0) < 0 && errno == EINTR)
            ;
    if (cur_seg_path[0])
        unlink(cur_seg_path);
    _exit(128 + sig);
}

static pid_t spawn(void (*fn)(void *), void *arg)
{
    pid_t pid;

    if (nchildren >= MAX_CHILDREN) {
        fprintf(stderr, "procbus-bench: too many children\n");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        kill_children();
        exit(1);
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent_pid)
            _exit(1);
        fn(arg);
        _exit(0);
    }
    children[nchildren++] = pid;
    return pid;
}

/* Wait for one child; returns its exit status, or 128 + signal. */
static int reap(pid_t pid)
{
    int stv;

    while (waitpid(pid, &stv, 0) < 0)
        if (errno != EINTR)
            return -1;
    forget_child(pid);
    return WIFEXITED(stv) ? WEXITSTATUS(stv) : 128 + WTERMSIG(stv);
}

/* Parent: wait until *flag >= want; -1 on timeout or when a child died meanwhile. */
static int wait_flag(const int *flag, int want, const int *err)
{
    double deadline = mono() + READY_TIMEOUT * 1e9;
    int i, stv;

    while (ld(flag) < want) {
        if ((err != NULL && ld(err)) || mono() > deadline)
            return -1;
        for (i = 0; i < nchildren; i++)
            if (waitpid(children[i], &stv, WNOHANG) == children[i]) {
                forget_child(children[i]);
                return -1;
            }
        sleep_us(100);
    }
    return 0;
}

static unsigned seg_counter;
static double t_start; /* for the progress lines */
static int verbose;    /* --verbose: per-run batch distributions on stderr */

static void seg_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "pbbench-%d-%u", (int)getpid(), seg_counter++);
    if (procbus_segment_path(buf, cur_seg_path, sizeof(cur_seg_path)) < 0)
        cur_seg_path[0] = '\0';
}

/* ---- publisher child ---- */

struct pub_args {
    struct ctl *ctl;
    const char *seg;
    uint32_t n;
    int churn; /* 0: idle; 1: commit CHURN_CHANGES changed records per commit at full
                  speed; 2: burn CPU without touching the segment (control run) */
    int cpu;
};

static void publisher_main(void *v)
{
    struct pub_args *a = v;
    struct ctl *c = a->ctl;
    struct procbus_pub_opts o;
    struct procbus_pub *p = NULL;
    struct procbus_proc *recs;
    uint64_t k = 0, commits = 0;
    uint32_t i;
    int rc;

    pin(a->cpu);
    memset(&o, 0, sizeof(o));
    o.segment = a->seg;
    o.capacity = a->n;
    recs = calloc(a->n, sizeof(*recs));
    if (recs == NULL)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "calloc", -ENOMEM);
    rc = procbus_pub_open(&p, &o);
    if (rc < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_open", rc);
    for (i = 0; i < a->n; i++) {
        fill_rec(&recs[i], i);
        recs[i].id = procbus_pub_new_id(p);
        rc = procbus_pub_upsert(p, &recs[i]);
        if (rc < 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_upsert", rc);
    }
    rc = procbus_pub_commit(p);
    if (rc < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_commit", rc);
    procbus_pub_heartbeat(p);
    st(&c->pub_ready, 1);

    if (a->churn == 2) {
        uint64_t x = 1;
        while (!ld(&c->go))
            sched_yield();
        while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
            int j;
            for (j = 0; j < 4096; j++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
            escape(&x);
        }
        sink ^= x;
    } else if (a->churn == 1) {
        while (!ld(&c->go))
            sched_yield();
        while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
            int j;
            for (j = 0; j < CHURN_CHANGES; j++) {
                struct procbus_proc *r = &recs[(k * 7919u) % a->n];
                churn_rec(r, k++);
                rc = procbus_pub_upsert(p, r);
                if (rc < 0)
                    child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err,
                               "procbus_pub_upsert (churn)", rc);
            }
            rc = procbus_pub_commit(p);
            if (rc < 0)
                child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err,
                           "procbus_pub_commit (churn)", rc);
            __atomic_store_n(&c->pub_ops, ++commits, __ATOMIC_RELAXED);
        }
    } else {
        while (!ld(&c->stop))
            sleep_us(1000);
    }
    c->pub_forced_laps = procbus_pub_forced_laps(p);
    c->pub_commits = commits;
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    free(recs);
}

/* ---- rwlock writer child ---- */

struct writer_args {
    struct ctl *ctl;
    struct flat *f;
    int cpu;
};

static void writer_main(void *v)
{
    struct writer_args *a = v;
    struct ctl *c = a->ctl;
    struct procbus_proc *recs = flat_recs(a->f);
    uint64_t k = 0, ops = 0;

    pin(a->cpu);
    st(&c->pub_ready, 1);
    while (!ld(&c->go))
        sched_yield();
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        int j, e;
        if ((e = pthread_rwlock_wrlock(&a->f->lock)) != 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "pthread_rwlock_wrlock", e);
        for (j = 0; j < CHURN_CHANGES; j++) {
            churn_rec(&recs[(k * 7919u) % a->f->n], k);
            k++;
        }
        if ((e = pthread_rwlock_unlock(&a->f->lock)) != 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "pthread_rwlock_unlock", e);
        __atomic_store_n(&c->pub_ops, ++ops, __ATOMIC_RELAXED);
    }
    c->pub_commits = ops;
}

/* ---- socket server child ---- */

struct server_args {
    struct ctl *ctl;
    int fd, other_fd;
    uint32_t n;
    int cpu;
};

static void server_main(void *v)
{
    struct server_args *a = v;
    struct ctl *c = a->ctl;
    uint32_t buckets;
    size_t sz = flat_size(a->n, &buckets);
    struct flat *f = calloc(1, sz);
    struct procbus_proc zero;
    int32_t pid;

    close(a->other_fd);
    pin(a->cpu);
    if (f == NULL || flat_build(f, a->n, 0) < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "server table", -ENOMEM);
    memset(&zero, 0, sizeof(zero));
    st(&c->pub_ready, 1);
    while (pb_read_all(a->fd, &pid, sizeof(pid)) == 0) {
        int k = flat_find(f, pid);
        if (pb_write_all(a->fd, k >= 0 ? &flat_recs(f)[k] : &zero, sizeof(zero)) < 0)
            break;
    }
    close(a->fd);
    free(f);
}

/* ---- reader child ---- */

enum rkind { RK_PID, RK_NAME, RK_LIST, RK_ALLOC, RK_RWLOCK, RK_SOCKET };

struct reader_args {
    struct ctl *ctl;
    int idx, cpu;
    enum rkind kind;
    const char *seg;         /* procbus kinds */
    const struct order *ord; /* lookups */
    uint32_t n;              /* list: records expected */
    struct flat *f;          /* rwlock */
    int fd, other_fd;        /* socket */
    unsigned warm, batches, ops;
    double budget_ns; /* time budget of the measured batches */
};

struct rd_ctx {
    struct procbus_reader r;
    const struct order *ord;
    struct procbus_proc *buf; /* list output */
    uint32_t n;
    struct flat *f;
    int fd;
    unsigned pos;
    uint64_t bad, eagain;
};

typedef uint64_t (*batch_fn)(struct rd_ctx *c, unsigned ops);

static uint64_t b_get_pid(struct rd_ctx *c, unsigned ops)
{
    struct procbus_proc out;
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned pos = c->pos, i;

    memset(&out, 0, sizeof(out));
    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK];
        int rc = procbus_get_pid(&c->r, pid, &out);
        escape(&out);
        acc ^= out.id ^ (uint64_t)(uint32_t)out.pid;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && out.pid != pid);
    }
    c->pos = pos;
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static uint64_t b_get_name(struct rd_ctx *c, unsigned ops)
{
    struct procbus_proc out;
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned pos = c->pos, i;

    memset(&out, 0, sizeof(out));
    for (i = 0; i < ops; i++) {
        unsigned j = pos++ & ORDER_MASK;
        int rc = procbus_get_name(&c->r, c->ord->name[j], &out);
        escape(&out);
        acc ^= out.id ^ (uint64_t)(uint32_t)out.pid;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && out.pid != c->ord->pid[j]);
    }
    c->pos = pos;
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static uint64_t b_list(struct rd_ctx *c, unsigned ops)
{
    uint64_t acc = 0, bad = 0, eagain = 0;
    unsigned i;

    for (i = 0; i < ops; i++) {
        size_t cnt = 0;
        int rc = procbus_list(&c->r, c->buf, c->n, &cnt);
        escape(c->buf);
        acc ^= c->buf[c->n - 1].id ^ cnt;
        eagain += rc == -EAGAIN;
        bad += (rc != 0 && rc != -EAGAIN) || (rc == 0 && cnt != c->n);
    }
    c->bad += bad;
    c->eagain += eagain;
    return acc;
}

static uint64_t b_rwlock(struct rd_ctx *c, unsigned ops)
{
    struct procbus_proc out;
    struct procbus_proc *recs = flat_recs(c->f);
    uint64_t acc = 0, bad = 0;
    unsigned pos = c->pos, i;

    memset(&out, 0, sizeof(out));
    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK];
        int k, e1, e2;
        e1 = pthread_rwlock_rdlock(&c->f->lock);
        k = flat_find(c->f, pid);
        if (k >= 0)
            memcpy(&out, &recs[k], sizeof(out));
        e2 = pthread_rwlock_unlock(&c->f->lock);
        escape(&out);
        acc ^= out.id ^ (uint64_t)(uint32_t)out.pid;
        bad += k < 0 || out.pid != pid || e1 != 0 || e2 != 0;
    }
    c->pos = pos;
    c->bad += bad;
    return acc;
}

static uint64_t b_socket(struct rd_ctx *c, unsigned ops)
{
    struct procbus_proc out;
    uint64_t acc = 0, bad = 0;
    unsigned pos = c->pos, i;

    memset(&out, 0, sizeof(out));
    for (i = 0; i < ops; i++) {
        int32_t pid = c->ord->pid[pos++ & ORDER_MASK];
        if (pb_write_all(c->fd, &pid, sizeof(pid)) < 0 ||
            pb_read_all(c->fd, &out, sizeof(out)) != 0) {
            c->bad += ops; /* the server is gone: fail the whole run */
            return acc;
        }
        escape(&out);
        acc ^= out.id ^ (uint64_t)(uint32_t)out.pid;
        bad += out.pid != pid;
    }
    c->pos = pos;
    c->bad += bad;
    return acc;
}

/* Minimum measured batches before the time budget may cut a run short. */
#define MIN_BATCHES 5

/*
 * Run nb batches of ops operations, storing each batch's ns/op in samples[]
 * (NULL: warm-up). Stops early, after at least MIN_BATCHES, when budget_ns is
 * spent (a baseline that stalls must not blow the run time). Returns the
 * number of batches run.
 */
static unsigned run_batches(batch_fn fn, struct rd_ctx *c, unsigned nb, unsigned ops,
                            double *samples, double budget_ns)
{
    double start = mono();
    uint64_t acc = 0;
    unsigned b;

    for (b = 0; b < nb; b++) {
        double t0 = mono(), t1;
        acc ^= fn(c, ops);
        t1 = mono();
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

/* Allocation count over reads of every kind (while the publisher churns). */
static void alloc_test(struct rd_ctx *c, const struct reader_args *a, struct stat_out *res)
{
    unsigned long a0, a1;
    void *volatile probe;
    unsigned rounds = a->ops / 1000 ? a->ops / 1000 : 1, i;

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
    /* warm-up, then count */
    b_get_pid(c, 1000);
    b_get_name(c, 1000);
    b_list(c, 10);
    a0 = allocs_now();
    for (i = 0; i < rounds; i++) {
        b_get_pid(c, 500);
        b_get_name(c, 500);
        b_list(c, 1);
    }
    a1 = allocs_now();
    res->allocs = a1 - a0;
    res->reads = (uint64_t)rounds * 1001;
    res->retries = c->r.retries;
}

static void reader_main(void *v)
{
    struct reader_args *a = v;
    struct ctl *c = a->ctl;
    struct stat_out *res = &c->res[a->idx];
    struct rd_ctx *x = calloc(1, sizeof(*x));
    double *samples = calloc(a->batches ? a->batches : 1, sizeof(double));
    uint64_t r0 = 0, g0 = 0, g1 = 0, p0 = 0, p1 = 0;
    batch_fn fn = NULL;
    int rc;

    if (a->kind == RK_SOCKET)
        close(a->other_fd);
    pin(a->cpu);
    if (x == NULL || samples == NULL)
        child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    x->ord = a->ord;
    x->n = a->n;
    x->f = a->f;
    x->fd = a->fd;
    x->pos = (unsigned)a->idx * 4099u; /* readers start at different places */
    if (a->kind != RK_RWLOCK && a->kind != RK_SOCKET) {
        rc = procbus_open(&x->r, a->seg);
        if (rc < 0)
            child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_open", rc);
    }
    if (a->kind == RK_LIST || a->kind == RK_ALLOC) {
        x->buf = calloc(a->n, sizeof(*x->buf));
        if (x->buf == NULL)
            child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    }
    switch (a->kind) {
    case RK_PID:
    case RK_ALLOC:
        fn = b_get_pid;
        break;
    case RK_NAME:
        fn = b_get_name;
        break;
    case RK_LIST:
        fn = b_list;
        break;
    case RK_RWLOCK:
        fn = b_rwlock;
        break;
    case RK_SOCKET:
        fn = b_socket;
        break;
    }
    barrier(c);

    if (a->kind == RK_ALLOC) {
        alloc_test(x, a, res);
    } else {
        unsigned nb, j;
        double sum = 0;

        run_batches(fn, x, a->warm, a->ops, NULL, a->budget_ns / 4);
        r0 = x->r.retries;
        if (x->r.base != NULL)
            g0 = procbus_generation(&x->r);
        p0 = __atomic_load_n(&c->pub_ops, __ATOMIC_RELAXED);
        res->t0 = mono();
        nb = run_batches(fn, x, a->batches, a->ops, samples, a->budget_ns);
        res->t1 = mono();
        p1 = __atomic_load_n(&c->pub_ops, __ATOMIC_RELAXED);
        if (x->r.base != NULL)
            g1 = procbus_generation(&x->r);
        res->ops = (uint64_t)nb * a->ops;
        res->batches = nb;
        res->retries = x->r.retries - r0;
        res->other_rate =
            (double)(x->r.base != NULL ? g1 - g0 : p1 - p0) / ((res->t1 - res->t0) / 1e9);
        for (j = 0; j < nb; j++)
            sum += samples[j];
        res->mean = sum / nb; /* batches are equal-sized: the mean ns/op of all reads */
        res->med = median(samples, nb);
        res->min = samples[0];
        res->max = samples[nb - 1];
        if (verbose)
            fprintf(stderr,
                    "procbus-bench:     reader %d: %u batches of %u, ns/op per batch: min %.1f "
                    "p10 %.1f p50 %.1f p90 %.1f p99 %.1f max %.1f, mean %.1f\n",
                    a->idx, nb, a->ops, samples[0], samples[nb / 10], res->med,
                    samples[nb * 9 / 10], samples[nb * 99 / 100], samples[nb - 1], res->mean);
    }
    res->eagain = x->eagain;
    if (x->bad != 0) {
        snprintf(res->msg, sizeof(res->msg),
                 "%" PRIu64 " reads failed or returned the wrong record", x->bad);
        st(&res->err, EIO);
        _exit(1);
    }
    if (x->r.base != NULL)
        procbus_close(&x->r);
    if (a->kind == RK_SOCKET)
        close(a->fd);
    free(x->buf);
    free(x);
    free(samples);
    res->done = 1;
}

/* ---- commit child ---- */

struct commit_args {
    struct ctl *ctl;
    const char *seg;
    uint32_t n;
    int cpu;
    unsigned warm, batches, ops;
};

static void commit_main(void *v)
{
    struct commit_args *a = v;
    struct ctl *c = a->ctl;
    struct stat_out *res = &c->res[0];
    struct procbus_pub_opts o;
    struct procbus_pub *p = NULL;
    struct procbus_proc *recs = calloc(a->n, sizeof(*recs));
    double *samples = calloc(a->batches, sizeof(double));
    uint64_t k = 0;
    uint32_t i;
    unsigned b, j;
    int rc;

    pin(a->cpu);
    if (recs == NULL || samples == NULL)
        child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    memset(&o, 0, sizeof(o));
    o.segment = a->seg;
    o.capacity = a->n;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0)
        child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_open", rc);
    for (i = 0; i < a->n; i++) {
        fill_rec(&recs[i], i);
        recs[i].id = procbus_pub_new_id(p);
        if ((rc = procbus_pub_upsert(p, &recs[i])) < 0)
            child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_upsert", rc);
    }
    if ((rc = procbus_pub_commit(p)) < 0)
        child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_commit", rc);

    for (b = 0; b < a->warm + a->batches; b++) {
        double t0 = mono(), t1;
        for (j = 0; j < a->ops; j++) {
            struct procbus_proc *r = &recs[(k * 7919u) % a->n];
            churn_rec(r, k++);
            rc = procbus_pub_upsert(p, r);
            if (rc == 0)
                rc = procbus_pub_commit(p);
            if (rc < 0)
                child_fail(res->msg, sizeof(res->msg), &res->err, "upsert/commit", rc);
        }
        t1 = mono();
        if (b >= a->warm)
            samples[b - a->warm] = (t1 - t0) / a->ops;
    }
    res->ops = (uint64_t)a->batches * a->ops;
    res->med = median(samples, a->batches);
    res->min = samples[0];
    res->max = samples[a->batches - 1];
    c->pub_forced_laps = procbus_pub_forced_laps(p);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    free(recs);
    free(samples);
    res->done = 1;
}

/* ---- orchestration (parent) ---- */

static int failures;

static void report_child_error(const char *bench, const char *msg)
{
    fprintf(stderr, "procbus-bench: %s: %s\n", bench, msg[0] ? msg : "child failed");
    failures++;
}

/* Remove the segment if its publisher did not (it crashed or was killed). */
static void seg_cleanup(void)
{
    if (cur_seg_path[0])
        unlink(cur_seg_path);
    cur_seg_path[0] = '\0';
}

struct bus_run {
    double med;  /* median over readers of their median ns/op */
    double mean; /* median over readers of their mean ns/op */
    double max;  /* slowest reader's median */
    double retries_per_op;
    double other_rate; /* commits/s or writer updates/s during the measurement */
    uint64_t allocs, reads, eagain, forced_laps;
    int ok;
};

enum side {
    SIDE_PUB_IDLE,  /* publisher process, idle after filling the table */
    SIDE_PUB_CHURN, /* publisher committing at full speed */
    SIDE_PUB_BUSY,  /* publisher idle, its process burning CPU (control) */
    SIDE_RW_IDLE,   /* shared rwlock table, no writer */
    SIDE_RW_WRITER, /* shared rwlock table, writer at full speed */
    SIDE_SOCKET     /* unix socket query server */
};

/*
 * Where the processes run. PL_SPLIT: the publisher/writer/server on the
 * second CPU, one reader on the first (several readers: spread over all).
 * PL_SAME: everything on the first CPU.
 */
enum placement { PL_SPLIT, PL_SAME };

static void run_bench(const char *label, enum side side, enum placement pl, enum rkind kind,
                      uint32_t n, const struct order *ord, int nreaders, unsigned warm,
                      unsigned batches, unsigned ops, double budget_ns, struct bus_run *out)
{
    const int other_cpu = pl == PL_SPLIT ? cpu_b() : cpu_a();
    struct ctl *c = ctl_new();
    char seg[64];
    struct pub_args pa;
    struct writer_args wa;
    struct server_args sa;
    struct reader_args ra[NREADERS];
    pid_t other = -1, rpid[NREADERS];
    struct flat *f = NULL;
    size_t fsz = 0;
    int sv[2] = {-1, -1}, i, bad = 0;
    double meds[NREADERS], means[NREADERS];
    uint64_t ops_total = 0, retries = 0;

    fprintf(stderr, "procbus-bench: [%6.1fs] %s\n", (mono() - t_start) / 1e9, label);
    memset(out, 0, sizeof(*out));
    out->med = NAN;
    seg[0] = '\0';
    if (side == SIDE_PUB_IDLE || side == SIDE_PUB_CHURN || side == SIDE_PUB_BUSY) {
        seg_name(seg, sizeof(seg));
        pa = (struct pub_args){c, seg, n,
                               side == SIDE_PUB_CHURN  ? 1
                               : side == SIDE_PUB_BUSY ? 2
                                                       : 0,
                               other_cpu};
        other = spawn(publisher_main, &pa);
    } else if (side == SIDE_RW_IDLE || side == SIDE_RW_WRITER) {
        uint32_t bk;
        fsz = flat_size(n, &bk);
        f = mmap(NULL, fsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (f == MAP_FAILED || flat_build(f, n, 1) < 0) {
            report_child_error(label, "cannot build the rwlock table");
            if (f != MAP_FAILED)
                munmap(f, fsz);
            ctl_free(c);
            return;
        }
        if (side == SIDE_RW_WRITER) {
            wa = (struct writer_args){c, f, other_cpu};
            other = spawn(writer_main, &wa);
        } else {
            st(&c->pub_ready, 1);
        }
    } else {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            perror("socketpair");
            failures++;
            ctl_free(c);
            return;
        }
        sa = (struct server_args){c, sv[1], sv[0], n, other_cpu};
        other = spawn(server_main, &sa);
    }
    if (wait_flag(&c->pub_ready, 1, &c->pub_err) < 0) {
        report_child_error(label, c->pub_msg[0] ? c->pub_msg : "publisher/server did not start");
        goto out;
    }
    for (i = 0; i < nreaders; i++) {
        int rcpu = nreaders == 1 || pl == PL_SAME ? cpu_a() : cpus[i % ncpus];
        ra[i] = (struct reader_args){.ctl = c,
                                     .idx = i,
                                     .cpu = rcpu,
                                     .kind = kind,
                                     .seg = seg,
                                     .ord = ord,
                                     .n = n,
                                     .f = f,
                                     .fd = sv[0],
                                     .other_fd = sv[1],
                                     .warm = warm,
                                     .batches = batches,
                                     .ops = ops,
                                     .budget_ns = budget_ns};
        rpid[i] = spawn(reader_main, &ra[i]);
    }
    if (side == SIDE_SOCKET) { /* only the children hold the socket ends now */
        close(sv[0]);
        close(sv[1]);
        sv[0] = sv[1] = -1;
    }
    if (wait_flag(&c->nready, nreaders, NULL) < 0) {
        report_child_error(label, "readers did not start");
        goto out;
    }
    st(&c->go, 1);
    for (i = 0; i < nreaders; i++) {
        int rc = reap(rpid[i]);
        struct stat_out *r = &c->res[i];
        if (rc != 0 || !r->done) {
            char m[256];
            snprintf(m, sizeof(m), "reader %d: %s (exit %d)", i, r->msg, rc);
            report_child_error(label, m);
            bad = 1;
            continue;
        }
        meds[i] = r->med;
        means[i] = r->mean;
        ops_total += r->ops;
        retries += r->retries;
        out->allocs += r->allocs;
        out->reads += r->reads;
        out->eagain += r->eagain;
        out->other_rate += r->other_rate / nreaders;
        if (r->med > out->max || i == 0)
            out->max = r->med;
    }
    st(&c->stop, 1);
    if (other > 0) {
        int rc = reap(other);
        other = -1;
        if (rc != 0 || c->pub_err) {
            report_child_error(label, c->pub_msg[0] ? c->pub_msg : "publisher/server failed");
            bad = 1;
        }
    }
    if (!bad) {
        out->med = kind == RK_ALLOC ? 0 : median(meds, (unsigned)nreaders);
        out->mean = kind == RK_ALLOC ? 0 : median(means, (unsigned)nreaders);
        out->retries_per_op = ops_total ? (double)retries / (double)ops_total : 0;
        out->forced_laps = c->pub_forced_laps;
        out->ok = 1;
    }
out:
    st(&c->stop, 1);
    st(&c->go, 1);
    for (i = 0; i < 2; i++)
        if (sv[i] >= 0)
            close(sv[i]);
    if (nchildren > 0) {
        /* something went wrong: give well-behaved children a moment, then kill */
        sleep_us(200000);
        kill_children();
    }
    seg_cleanup();
    if (f != NULL && f != MAP_FAILED) {
        pthread_rwlock_destroy(&f->lock);
        munmap(f, fsz);
    }
    ctl_free(c);
}

static void run_commit(const struct params *P, uint32_t n, struct bus_run *out)
{
    struct ctl *c = ctl_new();
    char seg[64], label[64];
    struct commit_args ca;
    pid_t pid;
    int rc;

    memset(out, 0, sizeof(*out));
    out->med = NAN;
    snprintf(label, sizeof(label), "commit, one change, %u records", n);
    fprintf(stderr, "procbus-bench: [%6.1fs] %s\n", (mono() - t_start) / 1e9, label);
    seg_name(seg, sizeof(seg));
    ca = (struct commit_args){c, seg, n, cpu_a(), P->cwarm, P->cbatches, P->cops};
    pid = spawn(commit_main, &ca);
    rc = reap(pid);
    if (rc != 0 || !c->res[0].done) {
        char m[256];
        snprintf(m, sizeof(m), "%s (exit %d)", c->res[0].msg, rc);
        report_child_error(label, m);
    } else {
        out->med = c->res[0].med / 1000.0; /* ns -> us */
        out->max = c->res[0].max / 1000.0;
        out->forced_laps = c->pub_forced_laps;
        out->ok = 1;
    }
    seg_cleanup();
    ctl_free(c);
}

/* ---- results: table and JSON (bench_util.h's, with the range over rounds) ---- */

/* bench_util.h's flat JSON plus "machine" (one line), "quick" and "rounds". */
static int write_json(const char *path, const struct machine *m, int quick, int rounds)
{
    char tmp[PATH_MAX + 16], buf[400];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, quick ? "quick" : "full");

    if (fp == NULL)
        return -1;
    snprintf(buf, sizeof(buf), "%s, %d CPUs, %s", m->cpu, m->online, m->kernel);
    fprintf(fp, ",\n  \"machine\": ");
    json_str(fp, buf);
    fprintf(fp, ",\n  \"quick\": %s,\n  \"rounds\": %d", quick ? "true" : "false", rounds);
    return json_end(fp, tmp, path);
}

/* bench_util.h's report, with how the values were taken. */
static void print_table(const struct machine *m, int quick, int rounds)
{
    char note[256];

    snprintf(note, sizeof(note),
             "value: median over %d rounds (each round: fresh processes and segments; per round "
             "the median of per-batch means); range: smallest and largest round",
             rounds);
    print_rows("procbus", quick ? "quick" : "full", m, note);
    if (ncpus < 2)
        printf("\nnote: only one CPU is usable, so the contended runs share it with the "
               "publisher/writer.\n");
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: procbus-bench [--quick] [--rounds N] [--json PATH] [--verbose] [--help]\n"
            "\n"
            "Benchmarks procbus reads (get_pid, get_name, list) and commits across processes,\n"
            "against a process-shared pthread rwlock and a unix-socket query server, and prints\n"
            "a markdown table (benchmark, value, unit, target, verdict) on stdout.\n"
            "\n"
            "  --quick      fewer batches and rounds (whole run well under a minute)\n"
            "  --rounds N   repeat the whole suite N times (1-9; default 5, --quick 3) and\n"
            "               report the median round with the range\n"
            "  --json PATH  also write the figures as flat JSON keys to PATH\n"
            "  --verbose    print each run's distribution of per-batch means on stderr\n"
            "  --help       this text\n"
            "\n"
            "Exit status: 0 when every benchmark ran (targets may still be MISSed), 1 when a\n"
            "benchmark failed to run or a read returned a wrong record, 2 on bad usage.\n");
}

static double ratio(double a, double b)
{
    return isfinite(a) && isfinite(b) && b > 0 ? a / b : NAN;
}

#define MAX_ROUNDS 9

/* One benchmark of the suite, with its result in every round. */
struct spec {
    const char *label;
    int commit; /* 1: run_commit (n = table size); else run_bench */
    enum side side;
    enum placement pl;
    enum rkind kind;
    uint32_t n;
    const struct order *ord;
    int nreaders;
    unsigned warm, batches, ops;
    struct bus_run r[MAX_ROUNDS];
};

static void spec(struct spec *sp, const char *label, enum side side, enum placement pl,
                 enum rkind kind, uint32_t n, const struct order *ord, int nreaders, unsigned warm,
                 unsigned batches, unsigned ops)
{
    memset(sp, 0, sizeof(*sp));
    sp->label = label;
    sp->side = side;
    sp->pl = pl;
    sp->kind = kind;
    sp->n = n;
    sp->ord = ord;
    sp->nreaders = nreaders;
    sp->warm = warm;
    sp->batches = batches;
    sp->ops = ops;
}

/* A figure of one benchmark (picked by `get`) across the rounds: median, min and max. */
static void across(const struct spec *sp, int rounds, double (*get)(const struct bus_run *),
                   double scale, double *med, double *lo, double *hi)
{
    double v[MAX_ROUNDS];
    unsigned n = 0;
    int i;

    for (i = 0; i < rounds; i++) {
        if (!sp->r[i].ok) { /* a failed round voids the figure */
            *med = *lo = *hi = NAN;
            return;
        }
        v[n++] = get(&sp->r[i]) * scale;
    }
    *med = median(v, n);
    *lo = v[0];
    *hi = v[n - 1];
}

static double g_med(const struct bus_run *r)
{
    return r->med;
}

static double g_eagain(const struct bus_run *r)
{
    return (double)r->eagain;
}

static double g_mean(const struct bus_run *r)
{
    return r->mean;
}

static double g_max(const struct bus_run *r)
{
    return r->max;
}

static double g_retries(const struct bus_run *r)
{
    return r->retries_per_op;
}

static double g_rate(const struct bus_run *r)
{
    return r->other_rate;
}

static double g_allocs(const struct bus_run *r)
{
    return r->reads ? (double)r->allocs / (double)r->reads : NAN;
}

/* Add a row for figure `get` of benchmark `sp`; returns the median. */
static double add_fig(const char *key, const char *label, const struct spec *sp, int rounds,
                      double (*get)(const struct bus_run *), double scale, const char *unit,
                      enum tgt t, double target)
{
    double med, lo, hi;

    across(sp, rounds, get, scale, &med, &lo, &hi);
    add_row(key, label, med, lo, hi, unit, t, target, 1);
    return med;
}

int main(int argc, char **argv)
{
    struct params P;
    struct machine m;
    struct order ord1k, ord10k;
    const char *json = NULL;
    int quick = 0, rounds = 0, i, k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strncmp(argv[i], "--json=", 7) == 0) {
            json = argv[i] + 7;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "procbus-bench: --rounds takes 1 to %d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "procbus-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (rounds == 0)
        rounds = quick ? 3 : 5;
    parent_pid = getpid();
    t_start = mono();
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);
    cpus_init();
    machine_start(&m);
    params_init(&P, quick);
    order_init(&ord1k, TABLE_N);
    order_init(&ord10k, BIG_N);

    /* the suite; every round runs all of it, in this order */
    enum {
        B_PID,
        B_NAME,
        B_PID10K,
        B_MULTI,
        B_CONT,
        B_BUSY,
        B_ALLOC,
        B_RW,
        B_RW10,
        B_RWC,
        B_SOCK,
        B_SOCKX,
        B_L100,
        B_L10K,
        B_C100,
        B_C1K,
        B_C10K,
        B_COUNT
    };
    static struct spec S[B_COUNT];
    /* label, side, placement, kind, records, order, readers, warm-up, batches, ops/batch */
    spec(&S[B_PID], "get_pid, 1 reader, publisher idle", SIDE_PUB_IDLE, PL_SPLIT, RK_PID, TABLE_N,
         &ord1k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_NAME], "get_name, 1 reader, publisher idle", SIDE_PUB_IDLE, PL_SPLIT, RK_NAME,
         TABLE_N, &ord1k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_PID10K], "get_pid, 1 reader, 10,000 records", SIDE_PUB_IDLE, PL_SPLIT, RK_PID, BIG_N,
         &ord10k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_MULTI], "get_pid, 10 readers, publisher idle", SIDE_PUB_IDLE, PL_SPLIT, RK_PID,
         TABLE_N, &ord1k, NREADERS, P.mwarm, P.mbatches, P.mops);
    spec(&S[B_CONT], "get_pid, 1 reader, publisher committing", SIDE_PUB_CHURN, PL_SPLIT, RK_PID,
         TABLE_N, &ord1k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_BUSY], "get_pid, 1 reader, other CPU busy (control)", SIDE_PUB_BUSY, PL_SPLIT, RK_PID,
         TABLE_N, &ord1k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_ALLOC], "allocations per read", SIDE_PUB_CHURN, PL_SPLIT, RK_ALLOC, TABLE_N, &ord1k,
         1, 0, 0, P.alloc_reads);
    spec(&S[B_RW], "rwlock baseline, 1 reader", SIDE_RW_IDLE, PL_SPLIT, RK_RWLOCK, TABLE_N, &ord1k,
         1, P.warm, P.batches, P.ops);
    spec(&S[B_RW10], "rwlock baseline, 10 readers", SIDE_RW_IDLE, PL_SPLIT, RK_RWLOCK, TABLE_N,
         &ord1k, NREADERS, P.mwarm, P.mbatches, P.mops);
    spec(&S[B_RWC], "rwlock baseline, writer running", SIDE_RW_WRITER, PL_SPLIT, RK_RWLOCK, TABLE_N,
         &ord1k, 1, P.warm, P.batches, P.ops);
    spec(&S[B_SOCK], "unix socket query, client and server on one CPU", SIDE_SOCKET, PL_SAME,
         RK_SOCKET, TABLE_N, &ord1k, 1, P.swarm, P.sbatches, P.sops);
    spec(&S[B_SOCKX], "unix socket query, server on the other CPU", SIDE_SOCKET, PL_SPLIT,
         RK_SOCKET, TABLE_N, &ord1k, 1, P.swarm, P.sbatches, P.sops);
    spec(&S[B_L100], "list of 100 records", SIDE_PUB_IDLE, PL_SPLIT, RK_LIST, 100, &ord1k, 1,
         P.lwarm, P.lbatches, P.lops_small);
    spec(&S[B_L10K], "list of 10,000 records", SIDE_PUB_IDLE, PL_SPLIT, RK_LIST, BIG_N, &ord10k, 1,
         P.bwarm, P.bbatches, P.lops_big);
    S[B_C100].commit = 1, S[B_C100].n = 100;
    S[B_C1K].commit = 1, S[B_C1K].n = 1000;
    S[B_C10K].commit = 1, S[B_C10K].n = 10000;

    for (k = 0; k < rounds; k++) {
        fprintf(stderr, "procbus-bench: round %d of %d\n", k + 1, rounds);
        for (i = 0; i < B_COUNT; i++) {
            struct spec *sp = &S[i];
            if (sp->commit)
                run_commit(&P, sp->n, &sp->r[k]);
            else
                run_bench(sp->label, sp->side, sp->pl, sp->kind, sp->n, sp->ord, sp->nreaders,
                          sp->warm, sp->batches, sp->ops, P.budget_s * 1e9, &sp->r[k]);
        }
    }

    machine_end(&m);

    double pid, rw, rw10, multi, cont, rwc, sock;
    pid = add_fig("lookup_uncontended_ns", "get_pid, 1 reader, publisher idle", &S[B_PID], rounds,
                  g_med, 1, "ns/op", T_LE, 10);
    add_fig("lookup_name_uncontended_ns", "get_name, 1 reader, publisher idle", &S[B_NAME], rounds,
            g_med, 1, "ns/op", T_NONE, 0);
    add_fig("lookup_uncontended_10000rec_ns", "get_pid, 1 reader, 10,000-record table",
            &S[B_PID10K], rounds, g_med, 1, "ns/op", T_NONE, 0);
    multi = add_fig("lookup_10readers_ns", "get_pid, 10 reader processes (median reader)",
                    &S[B_MULTI], rounds, g_med, 1, "ns/op", T_NONE, 0);
    add_fig("lookup_10readers_slowest_ns", "get_pid, 10 reader processes (slowest reader)",
            &S[B_MULTI], rounds, g_max, 1, "ns/op", T_NONE, 0);
    cont = add_fig("lookup_contended_ns", "get_pid, publisher committing on the other CPU",
                   &S[B_CONT], rounds, g_med, 1, "ns/op", T_NONE, 0);
    add_fig("lookup_contended_mean_ns", "same, mean over all reads (not median batch)", &S[B_CONT],
            rounds, g_mean, 1, "ns/op", T_NONE, 0);
    add_fig("lookup_contended_eagain", "get_pid calls that gave up (-EAGAIN), contended",
            &S[B_CONT], rounds, g_eagain, 1, "reads", T_NONE, 0);
    add_fig("lookup_contended_retries_per_op", "seqlock retries per get_pid, contended", &S[B_CONT],
            rounds, g_retries, 1, "retries/op", T_NONE, 0);
    add_fig("contended_commits_per_s", "publisher commit rate during that run", &S[B_CONT], rounds,
            g_rate, 1, "commits/s", T_NONE, 0);
    add_fig("lookup_busy_neighbour_ns", "control: get_pid, other CPU busy, publisher idle",
            &S[B_BUSY], rounds, g_med, 1, "ns/op", T_NONE, 0);
    add_fig("allocs_per_read", "allocations per read (get_pid, get_name, list)", &S[B_ALLOC],
            rounds, g_allocs, 1, "allocs/op", T_EQ, 0);
    rw = add_fig("rwlock_uncontended_ns", "rwlock baseline, 1 reader, no writer", &S[B_RW], rounds,
                 g_med, 1, "ns/op", T_NONE, 0);
    rw10 = add_fig("rwlock_10readers_ns", "rwlock baseline, 10 reader processes (median reader)",
                   &S[B_RW10], rounds, g_med, 1, "ns/op", T_NONE, 0);
    rwc = add_fig("rwlock_contended_ns", "rwlock baseline, writer on the other CPU", &S[B_RWC],
                  rounds, g_med, 1, "ns/op", T_NONE, 0);
    add_fig("rwlock_contended_mean_ns", "same, mean over all reads (not median batch)", &S[B_RWC],
            rounds, g_mean, 1, "ns/op", T_NONE, 0);
    add_fig("rwlock_writer_updates_per_s", "rwlock writer update rate during that run", &S[B_RWC],
            rounds, g_rate, 1, "updates/s", T_NONE, 0);
    sock = add_fig("socket_query_ns", "unix socket query round trip, one CPU", &S[B_SOCK], rounds,
                   g_med, 1, "ns/op", T_NONE, 0);
    add_fig("socket_query_crosscpu_ns", "unix socket query, server on the other CPU", &S[B_SOCKX],
            rounds, g_med, 1, "ns/op", T_NONE, 0);
    add("speedup_vs_rwlock_uncontended", "speedup vs rwlock, uncontended", ratio(rw, pid), "x",
        T_GE, 5, 1);
    add("speedup_vs_rwlock_10readers", "speedup vs rwlock, 10 readers", ratio(rw10, multi), "x",
        T_NONE, 0, 1);
    add("speedup_vs_rwlock_contended", "speedup vs rwlock, contended", ratio(rwc, cont), "x", T_GE,
        10, 1);
    add("speedup_vs_socket", "speedup vs socket query", ratio(sock, pid), "x", T_GE, 1000, 1);
    add_fig("list_100_us", "list, snapshot of 100 records", &S[B_L100], rounds, g_med, 1e-3,
            "us/op", T_NONE, 0);
    add_fig("list_10000_us", "list, snapshot of 10,000 records", &S[B_L10K], rounds, g_med, 1e-3,
            "us/op", T_NONE, 0);
    add_fig("commit_1change_100_us", "commit, 1 changed record, 100-record table", &S[B_C100],
            rounds, g_med, 1, "us/commit", T_NONE, 0);
    add_fig("commit_1change_1000_us", "commit, 1 changed record, 1,000-record table", &S[B_C1K],
            rounds, g_med, 1, "us/commit", T_NONE, 0);
    add_fig("commit_1change_10000_us", "commit, 1 changed record, 10,000-record table", &S[B_C10K],
            rounds, g_med, 1, "us/commit", T_LE, 20);

    print_table(&m, quick, rounds);
    if (json != NULL && write_json(json, &m, quick, rounds) < 0)
        failures++;
    return failures ? 1 : 0;
}
