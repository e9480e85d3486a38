/* sampler.c - procbusd's CPU/RSS sampling of whole process trees from /proc, and per-pid stat. */
#define _GNU_SOURCE
#include "sampler.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAT_BUF       2048 /* a stat line is ~300 bytes; nothing past rss is needed */
#define DENTS_BUF      32768
#define INIT_ENTS      512
#define INIT_SIDS      16
#define ANC_UNVISITED  (-3)
#define ANC_INPROGRESS (-2)
#define ANC_NONE       (-1)

/* What a scan keeps per process. */
struct pbd_sample_ent {
    pid_t pid;
    pid_t ppid;
    pid_t sid;
    int32_t root; /* index of the root whose pid this is, or -1 */
    int32_t anc;  /* nearest root on the ppid chain, ANC_NONE, or ANC_UNVISITED/INPROGRESS */
    uint64_t cpu_ticks;
    uint64_t child_ticks;
    uint64_t rss_pages;
};

struct pbd_sample_sid {
    pid_t sid;
    int32_t root;
};

/* ---- /proc/PID/stat ---- */

struct raw_stat {
    char state;
    long long f[25]; /* f[4] .. f[24]: the numeric fields after state (1-based, man 5 proc) */
    const char *comm;
    size_t comm_len;
};

static const char *parse_ll(const char *p, const char *end, long long *v)
{
    int neg = 0;
    unsigned long long x = 0;

    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    while (p < end && *p >= '0' && *p <= '9') {
        x = x * 10 + (unsigned)(*p - '0');
        p++;
    }
    *v = neg ? -(long long)x : (long long)x;
    return p;
}

/* Parse "pid (comm) S ppid ..." up to field 24 (rss). 0 or -EIO. */
static int parse_stat(const char *buf, size_t len, struct raw_stat *rs)
{
    const char *end = buf + len;
    const char *open = memchr(buf, '(', len);
    const char *close = memrchr(buf, ')', len); /* comm may contain ')' and spaces */
    const char *p;

    if (open == NULL || close == NULL || close < open || end - close < 4 || close[1] != ' ')
        return -EIO;
    rs->comm = open + 1;
    rs->comm_len = (size_t)(close - open - 1);
    rs->state = close[2];
    p = close + 3;
    for (int i = 4; i <= 24; i++) {
        p = parse_ll(p, end, &rs->f[i]);
        if (p == NULL)
            return -EIO;
    }
    return 0;
}

/* Read an open stat file into buf (NUL-terminated); returns the length or a negative errno. */
static ssize_t read_stat_fd(int fd, char *buf, size_t cap)
{
    ssize_t r;

    do {
        r = read(fd, buf, cap - 1);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ESRCH; /* exited between open and read */
    buf[r] = '\0';
    return r;
}

static uint64_t ticks_to_ns(uint64_t ticks, long hz)
{
    uint64_t h = hz > 0 ? (uint64_t)hz : 100;
    return ticks / h * 1000000000ull + ticks % h * 1000000000ull / h;
}

static uint64_t nonneg(long long v)
{
    return v > 0 ? (uint64_t)v : 0;
}

int pbd_proc_stat(pid_t pid, struct pbd_proc_stat *st)
{
    char path[32], buf[STAT_BUF];
    struct raw_stat rs;
    ssize_t len;
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    size_t cl;
    int fd, rc;

    if (pid <= 0 || st == NULL)
        return -EINVAL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    len = read_stat_fd(fd, buf, sizeof(buf));
    close(fd);
    if (len < 0)
        return (int)len;
    rc = parse_stat(buf, (size_t)len, &rs);
    if (rc < 0)
        return rc;
    memset(st, 0, sizeof(*st));
    st->pid = pid;
    st->state = rs.state;
    cl = rs.comm_len < sizeof(st->comm) - 1 ? rs.comm_len : sizeof(st->comm) - 1;
    memcpy(st->comm, rs.comm, cl);
    st->comm[cl] = '\0';
    st->ppid = (pid_t)rs.f[4];
    st->pgid = (pid_t)rs.f[5];
    st->sid = (pid_t)rs.f[6];
    st->cpu_ns = ticks_to_ns(nonneg(rs.f[14]) + nonneg(rs.f[15]), hz);
    st->child_cpu_ns = ticks_to_ns(nonneg(rs.f[16]) + nonneg(rs.f[17]), hz);
    st->num_threads = (int)rs.f[20];
    st->flags = (unsigned long)rs.f[9];
    st->start_boot_ns = ticks_to_ns(nonneg(rs.f[22]), hz);
    st->rss_bytes = nonneg(rs.f[24]) * (uint64_t)(page > 0 ? page : 4096);
    return 0;
}

/* ---- sampler state ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem, uint64_t *allocs)
{
    size_t ncap = *cap ? *cap : 16;
    void *np;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    np = realloc(*p, ncap * elem);
    if (np == NULL)
        return -ENOMEM;
    *p = np;
    *cap = ncap;
    (*allocs)++;
    return 0;
}

int pbd_sampler_init(struct pbd_sampler *s)
{
    if (s == NULL)
        return -EINVAL;
    memset(s, 0, sizeof(*s));
    s->proc_fd = -1;
    s->clk_tck = sysconf(_SC_CLK_TCK);
    if (s->clk_tck <= 0)
        s->clk_tck = 100;
    s->page_size = sysconf(_SC_PAGESIZE);
    if (s->page_size <= 0)
        s->page_size = 4096;
    if (grow((void **)&s->dents, &s->dents_cap, DENTS_BUF, 1, &s->allocs) < 0 ||
        grow((void **)&s->ents, &s->ents_cap, INIT_ENTS, sizeof(*s->ents), &s->allocs) < 0 ||
        grow((void **)&s->stack, &s->stack_cap, INIT_ENTS, sizeof(*s->stack), &s->allocs) < 0 ||
        grow((void **)&s->sids, &s->sids_cap, INIT_SIDS, sizeof(*s->sids), &s->allocs) < 0) {
        pbd_sampler_free(s);
        return -ENOMEM;
    }
    s->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->proc_fd < 0) {
        int rc = -errno;
        pbd_sampler_free(s);
        return rc;
    }
    s->ready = 1;
    return 0;
}

void pbd_sampler_free(struct pbd_sampler *s)
{
    if (s == NULL)
        return;
    /* A zeroed struct has proc_fd 0, which is not ours: close only what init opened. */
    if (s->ready && s->proc_fd >= 0)
        close(s->proc_fd);
    free(s->dents);
    free(s->ents);
    free(s->sids);
    free(s->stack);
    memset(s, 0, sizeof(*s));
}

/* ---- in-place sorting (qsort may allocate) ---- */

static int ent_less(const void *a, const void *b)
{
    return ((const struct pbd_sample_ent *)a)->pid < ((const struct pbd_sample_ent *)b)->pid;
}

static int sid_less(const void *a, const void *b)
{
    const struct pbd_sample_sid *x = a, *y = b;
    return x->sid < y->sid || (x->sid == y->sid && x->root < y->root);
}

static void swap_bytes(char *a, char *b, size_t sz)
{
    while (sz--) {
        char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(char *base, size_t root, size_t n, size_t sz,
                      int (*less)(const void *, const void *))
{
    for (;;) {
        size_t child = 2 * root + 1, big = root;
        if (child < n && less(base + big * sz, base + child * sz))
            big = child;
        if (child + 1 < n && less(base + big * sz, base + (child + 1) * sz))
            big = child + 1;
        if (big == root)
            return;
        swap_bytes(base + root * sz, base + big * sz, sz);
        root = big;
    }
}

static void heap_sort(void *v, size_t n, size_t sz, int (*less)(const void *, const void *))
{
    char *base = v;

    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(base, i, n, sz, less);
    for (size_t end = n - 1; end > 0; end--) {
        swap_bytes(base, base + end * sz, sz);
        sift_down(base, 0, end, sz, less);
    }
}

static long find_ent(const struct pbd_sampler *s, pid_t pid)
{
    size_t lo = 0, hi = s->n_ents;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ents[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_ents && s->ents[lo].pid == pid ? (long)lo : -1;
}

static int32_t find_sid(const struct pbd_sample_sid *sids, size_t n, pid_t sid)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sids[mid].sid < sid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sids[lo].sid == sid ? sids[lo].root : -1;
}

/* ---- the scan ---- */

/* Read one process into the next entry; 1 if stored, 0 if skipped, negative errno. */
static int scan_one(struct pbd_sampler *s, const char *name)
{
    char path[64], buf[STAT_BUF];
    struct raw_stat rs;
    struct pbd_sample_ent *e;
    size_t nl = strlen(name);
    ssize_t len;
    int fd;

    if (nl + sizeof("/stat") > sizeof(path))
        return 0;
    memcpy(path, name, nl);
    memcpy(path + nl, "/stat", sizeof("/stat"));
    fd = openat(s->proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* vanished, or not ours to read */
    len = read_stat_fd(fd, buf, sizeof(buf));
    close(fd);
    if (len < 0 || parse_stat(buf, (size_t)len, &rs) < 0)
        return 0;
    if (s->n_ents == s->ents_cap &&
        grow((void **)&s->ents, &s->ents_cap, s->n_ents + 1, sizeof(*s->ents), &s->allocs) < 0)
        return -ENOMEM;
    e = &s->ents[s->n_ents++];
    e->pid = (pid_t)atoi(name);
    e->ppid = (pid_t)rs.f[4];
    e->sid = (pid_t)rs.f[6];
    e->root = -1;
    e->anc = ANC_UNVISITED;
    e->cpu_ticks = nonneg(rs.f[14]) + nonneg(rs.f[15]);
    e->child_ticks = nonneg(rs.f[16]) + nonneg(rs.f[17]);
    e->rss_pages = nonneg(rs.f[24]);
    return 1;
}

static int is_pid_name(const char *n)
{
    if (*n == '\0')
        return 0;
    for (; *n; n++)
        if (*n < '0' || *n > '9')
            return 0;
    return 1;
}

int pbd_sampler_scan_begin(struct pbd_sampler *s)
{
    if (s == NULL || !s->ready)
        return -EINVAL;
    s->n_ents = 0;
    s->dents_off = s->dents_len = 0;
    s->scanned = 0;
    s->scanning = 0;
    if (lseek(s->proc_fd, 0, SEEK_SET) < 0)
        return -errno;
    s->scanning = 1;
    return 0;
}

int pbd_sampler_scan_step(struct pbd_sampler *s, size_t max_procs)
{
    size_t done = 0;

    if (s == NULL || !s->ready || !s->scanning)
        return -EINVAL;
    while (done < max_procs) {
        const struct dirent64 *d;
        int rc;

        if (s->dents_off >= s->dents_len) {
            ssize_t got = getdents64(s->proc_fd, s->dents, s->dents_cap);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                s->scanning = 0;
                if (got < 0)
                    return -errno;
                s->scanned = 1;
                return 1;
            }
            s->dents_off = 0;
            s->dents_len = (size_t)got;
        }
        d = (const struct dirent64 *)(s->dents + s->dents_off);
        s->dents_off += d->d_reclen;
        if (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)
            continue;
        if (!is_pid_name(d->d_name))
            continue;
        done++;
        rc = scan_one(s, d->d_name);
        if (rc < 0) {
            s->scanning = 0;
            return rc;
        }
    }
    return 0;
}

/* Nearest root on i's ppid chain (memoised with path compression), or ANC_NONE. */
static int32_t ancestry(struct pbd_sampler *s, long i)
{
    size_t depth = 0;
    int32_t res;
    long cur = i;

    for (;;) {
        struct pbd_sample_ent *e = &s->ents[cur];
        long p;

        if (e->anc != ANC_UNVISITED) {
            res = e->anc == ANC_INPROGRESS ? ANC_NONE : e->anc; /* a stale-snapshot cycle */
            break;
        }
        if (e->root >= 0) {
            res = e->root;
            break;
        }
        e->anc = ANC_INPROGRESS;
        s->stack[depth++] = (int32_t)cur;
        p = e->ppid > 0 && e->ppid != e->pid ? find_ent(s, e->ppid) : -1;
        if (p < 0) {
            res = ANC_NONE;
            break;
        }
        cur = p;
    }
    while (depth > 0)
        s->ents[s->stack[--depth]].anc = res;
    if (s->ents[cur].root >= 0)
        s->ents[cur].anc = res;
    return res;
}

int pbd_sample_trees(const struct pbd_tree_root *roots, size_t n, struct pbd_tree_usage *out,
                     struct pbd_sampler *s)
{
    int rc;

    if (s == NULL || !s->ready || (n > 0 && (roots == NULL || out == NULL)))
        return -EINVAL;
    if (n > 0)
        memset(out, 0, n * sizeof(*out));
    if (n == 0)
        return 0;
    rc = pbd_sampler_scan_begin(s);
    if (rc == 0)
        rc = pbd_sampler_scan_step(s, SIZE_MAX);
    if (rc < 0)
        return rc;
    return pbd_sampler_attribute(roots, n, out, s);
}

int pbd_sampler_attribute(const struct pbd_tree_root *roots, size_t n, struct pbd_tree_usage *out,
                          struct pbd_sampler *s)
{
    size_t nsids = 0, i;
    int sorted = 1;

    if (s == NULL || !s->ready || (n > 0 && (roots == NULL || out == NULL)))
        return -EINVAL;
    if (n > 0)
        memset(out, 0, n * sizeof(*out));
    if (n == 0)
        return 0;
    if (!s->scanned)
        return -EINVAL;
    for (i = 0; i < s->n_ents; i++) { /* a previous attribution's marks */
        s->ents[i].root = -1;
        s->ents[i].anc = ANC_UNVISITED;
    }
    if (grow((void **)&s->stack, &s->stack_cap, s->n_ents, sizeof(*s->stack), &s->allocs) < 0 ||
        grow((void **)&s->sids, &s->sids_cap, n, sizeof(*s->sids), &s->allocs) < 0)
        return -ENOMEM;

    /* /proc lists pids in ascending order; sort only if that ever changes. */
    for (i = 1; i < s->n_ents && sorted; i++)
        sorted = s->ents[i - 1].pid < s->ents[i].pid;
    if (!sorted)
        heap_sort(s->ents, s->n_ents, sizeof(*s->ents), ent_less);

    for (i = 0; i < n; i++) {
        long idx;

        idx = roots[i].pid > 0 ? find_ent(s, roots[i].pid) : -1;
        if (idx >= 0) {
            out[i].root_alive = 1;
            if (s->ents[idx].root < 0) {
                s->ents[idx].root = (int32_t)i;
                out[i].reaped_cpu_ns = ticks_to_ns(s->ents[idx].child_ticks, s->clk_tck);
            }
        }
        if (roots[i].sid > 0) {
            s->sids[nsids].sid = roots[i].sid;
            s->sids[nsids].root = (int32_t)i;
            nsids++;
        }
    }
    heap_sort(s->sids, nsids, sizeof(*s->sids), sid_less);

    /* Sum ticks and pages per root in out (converted at the end). */
    for (i = 0; i < s->n_ents; i++) {
        const struct pbd_sample_ent *e;
        int32_t r = ancestry(s, (long)i);

        e = &s->ents[i];
        if (r < 0 && nsids > 0 && e->sid > 0)
            r = find_sid(s->sids, nsids, e->sid);
        if (r < 0)
            continue;
        out[r].cpu_ns += e->cpu_ticks;
        out[r].rss_bytes += e->rss_pages;
        out[r].nprocs++;
    }
    for (i = 0; i < n; i++) {
        out[i].cpu_ns = ticks_to_ns(out[i].cpu_ns, s->clk_tck) + out[i].reaped_cpu_ns;
        out[i].rss_bytes *= (uint64_t)s->page_size;
    }
    return 0;
}
