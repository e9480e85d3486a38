/* procbus-bench-proc.h - procbus-bench's processes: CPUs, the shared control block, children. */
#ifndef PBB_PROC_H
#define PBB_PROC_H

/*
 * Part of procbus-bench.c (one translation unit: bench_util.h keeps its state
 * in statics). Every benchmark runs in forked processes pinned to CPUs; they
 * report through an anonymous MAP_SHARED control block and exit with _exit().
 */

#define NREADERS      10
#define MAX_CHILDREN  32
#define MAX_BATCHES   40000 /* per reader and run: the samples kept for the median and p99 */
#define READY_TIMEOUT 60.0

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

/* The reader's CPU, and the other side's (the same one on a 1-CPU machine). */
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

/* ---- control block shared by the parent and the children of one benchmark ---- */

struct stat_out {
    unsigned batches;  /* measured batches: their ns/op are in ctl->samples[reader] */
    double t0, t1;     /* measured phase, CLOCK_MONOTONIC ns */
    double other_rate; /* publisher commits / writer updates per second while measuring */
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
    _Alignas(64) double samples[NREADERS][MAX_BATCHES]; /* ns/op of each measured batch */
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

/* The other side waits for the start signal too (so it starts with the readers). */
static void wait_go(struct ctl *c)
{
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
    double deadline = (double)mono() + READY_TIMEOUT * 1e9;
    int i, stv;

    while (ld(flag) < want) {
        if ((err != NULL && ld(err)) || (double)mono() > deadline)
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

static void seg_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "pbbench-%d-%u", (int)getpid(), seg_counter++);
    if (procbus_segment_path(buf, cur_seg_path, sizeof(cur_seg_path)) < 0)
        cur_seg_path[0] = '\0';
}

/* Remove the segment if its publisher did not (it crashed or was killed). */
static void seg_cleanup(void)
{
    if (cur_seg_path[0])
        unlink(cur_seg_path);
    cur_seg_path[0] = '\0';
}

#endif /* PBB_PROC_H */
