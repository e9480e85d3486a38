/* segment.c - create, size, lock and atomically install a segment file under its name. */
#define _GNU_SOURCE
#include "segment.h"

#include "procbus.h" /* procbus_attach (validating a predecessor), the trust rules */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pb_now_mono(void)
{
    return now_ns(CLOCK_MONOTONIC);
}

uint64_t pb_now_real(void)
{
    return now_ns(CLOCK_REALTIME);
}

uint64_t pb_now_boot(void)
{
    return now_ns(CLOCK_BOOTTIME);
}

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~63ULL;
}

/* The offsets and size for g->buckets; 0, or -EINVAL when the segment cannot be addressed. */
static int layout_with(struct pb_geometry *g)
{
    g->snap_slot_size = (uint32_t)align64(PROCBUS_SNAP_BYTES(g->capacity, g->buckets));
    g->snap_off = PROCBUS_HEADER_SIZE;
    g->arena_off = align64(g->snap_off + (uint64_t)g->snap_slots * g->snap_slot_size);
    g->ring_off = align64(g->arena_off + (uint64_t)g->arena_slots * sizeof(struct procbus_proc));
    g->size = g->ring_off + (uint64_t)g->ring_capacity * sizeof(struct procbus_event);
    g->size = (g->size + 4095) & ~4095ULL;
    if (g->size > PROCBUS_MAX_SEGMENT ||
        g->snap_off + (uint64_t)g->snap_slots * g->snap_slot_size > (PROCBUS_CUR_OFF_MASK << 6))
        return -EINVAL;
    return 0;
}

int pb_segment_layout(struct pb_geometry *g)
{
    uint64_t bk = 2;

    if (g->capacity == 0 || g->capacity > PROCBUS_MAX_CAPACITY || g->arena_slots < g->capacity ||
        g->arena_slots >= 0xffffffffu || g->snap_slots < 2 ||
        g->snap_slots > PROCBUS_MAX_SNAP_SLOTS || g->ring_capacity == 0 ||
        g->ring_capacity > PROCBUS_MAX_RING || (g->ring_capacity & (g->ring_capacity - 1)))
        return -EINVAL;
    if (g->buckets != 0) { /* a segment's own (a takeover): any count the ABI allows */
        if ((g->buckets & (g->buckets - 1)) != 0 || g->buckets < 2ull * g->capacity ||
            g->buckets > PB_MAX_BUCKETS)
            return -EINVAL;
        return layout_with(g);
    }
    /*
     * Load factor <= 1/4 where the segment can hold it, else <= 1/2 (ABI.md
     * `hash_buckets`). At 1/2, linear probing leaves about a quarter of the
     * keys off their home bucket and a lookup pays for the mispredicted
     * probe; at 1/4 a lookup by pid costs about 30% less (BENCHMARKS.md), for
     * 32 more index bytes per record of capacity (two indexes) in each snapshot slot.
     */
    while (bk < 4ull * g->capacity && bk < PB_MAX_BUCKETS)
        bk <<= 1;
    g->buckets = (uint32_t)bk;
    if (layout_with(g) == 0)
        return 0;
    g->buckets = (uint32_t)(bk / 2);
    if (g->buckets >= 2ull * g->capacity && layout_with(g) == 0)
        return 0;
    g->buckets = 0;
    return -EINVAL;
}

/* Read the process start time (boot-relative ns) from /proc/self/stat; 0 if unknown. */
static uint64_t self_start_ns(void)
{
    char buf[1024], *p;
    unsigned long long ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field;

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0 || hz <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* comm may contain spaces */
    if (p == NULL)
        return 0;
    /* after ") " comes field 3 (state); starttime is field 22 */
    for (field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%llu", &ticks) != 1)
        return 0;
    return (uint64_t)ticks * (1000000000ull / (uint64_t)hz);
}

void pb_segment_wake(struct pb_segment *seg)
{
    struct procbus_header *h = (struct procbus_header *)seg->base;

    /* ABI.md commit step 6: pairs with the acquire load of `futex` in waiting
     * step 1 (procbus_wait); a waiter that sees the new value sees the
     * generation stored in commit step 5. */
    __atomic_fetch_add(&h->futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &h->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Open and lock the current owner of `path`. Returns 1 with *fd_out locked and
 * *pred filled in (a procbus segment of ours whose publisher is gone), 0 if
 * nothing is at `path`, or a negative errno (-EBUSY: live publisher; -EEXIST:
 * not a procbus segment; -EPERM: another user's file).
 */
/* flock(LOCK_EX | LOCK_NB), retried for a while: a reader's liveness probe (a LOCK_SH | LOCK_NB
 * held for a few microseconds, common/liveprobe.h) must not make a takeover fail. A live
 * publisher keeps its lock: -EBUSY after about 100 ms. */
static int lock_nb_retry(int fd)
{
    int i;

    for (i = 0; i < 50; i++) {
        struct timespec two_ms = {0, 2000000};
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK)
            return -errno;
        nanosleep(&two_ms, NULL);
    }
    return -EBUSY;
}

/* A crashed predecessor's records (flags PB_SEG_KEEP_RECORDS): its last snapshot, copied. */
static void keep_records(struct procbus_reader *r, struct pb_predecessor *pred)
{
    size_t cap = r->capacity, n = 0;
    struct procbus_proc *recs = calloc(cap ? cap : 1, sizeof(*recs));

    if (recs == NULL)
        return;
    if (procbus_list(r, recs, cap, &n) < 0) {
        free(recs);
        return;
    }
    pred->recs = recs;
    pred->nrecs = n;
}

static int lock_predecessor(const char *path, unsigned flags, int *fd_out,
                            struct pb_predecessor *pred, unsigned char **map_out, size_t *len_out)
{
    struct procbus_reader r;
    struct procbus_header *h;
    struct stat st;
    void *m;
    int rc, fd;

    /* O_NONBLOCK: a FIFO at the name must not block us. Before opening for writing, make sure
     * the file is ours: lstat first (O_NOFOLLOW still guards the open), fstat after. */
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISLNK(st.st_mode))
        return -ELOOP;
    if (!S_ISREG(st.st_mode))
        return -EEXIST; /* a FIFO, folder, device: never ours, never opened */
    if (st.st_uid != geteuid())
        return -EPERM;
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 0 : errno == ENXIO ? -EEXIST : -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EEXIST;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return -EPERM;
    }
    rc = lock_nb_retry(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if ((size_t)st.st_size < PROCBUS_HEADER_SIZE) {
        close(fd);
        return -EEXIST;
    }
    m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = -errno;
        close(fd);
        return rc;
    }
    h = m;
    if (h->magic != PROCBUS_MAGIC) {
        munmap(m, (size_t)st.st_size);
        close(fd);
        return -EEXIST;
    }
    memset(pred, 0, sizeof(*pred));
    pred->present = 1;
    /* Validate what is inherited: the reader's whole validation, the size the header claims,
     * and room to continue each number (an epoch of 2^64-1 would wrap to 0, a ring_head near
     * PROCBUS_SEQ_BUSY would run into the busy marker). The acquire loads inside
     * procbus_attach pair with the dead publisher's release stores (creation step 2, commit
     * step 5); the flock we hold already orders us after its owner's exit. */
    if (procbus_attach(&r, m, (size_t)st.st_size) == 0 && r.len == (size_t)st.st_size) {
        pred->epoch = h->epoch;
        pred->generation = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
        pred->ring_head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
        pred->inherit = pred->epoch >= 1 && pred->epoch < PB_INHERIT_MAX && pred->generation >= 1 &&
                        pred->generation < PB_INHERIT_MAX && pred->ring_head >= r.ring_first &&
                        pred->ring_head < PB_INHERIT_MAX;
        if (flags & PB_SEG_KEEP_RECORDS) {
            uint64_t hb = __atomic_load_n(&h->heartbeat_ns, __ATOMIC_ACQUIRE);
            pred->pid = h->publisher_pid;
            pred->start_ns = h->publisher_start_ns;
            pred->crashed = hb != PROCBUS_HB_SHUTDOWN && hb != PROCBUS_HB_GONE;
            if (pred->crashed)
                keep_records(&r, pred);
        }
    }
    if (!pred->inherit)
        pred->epoch = pred->generation = pred->ring_head = 0;
    *fd_out = fd;
    *map_out = m;
    *len_out = (size_t)st.st_size;
    return 1;
}

/*
 * The folder `path` is in must be one only trusted users can change (procbus__trusted_dir:
 * owned by root or us; group/world-writable only when sticky). PROCBUS_RUN_DIR, the home of a
 * root publisher's names, is created 0755 when missing and opened up to 0755 when it is ours
 * (other users' readers must reach their segments; each file's mode says who may read it).
 */
static int check_folder(const char *path)
{
    char dir[PROCBUS_PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path);
    struct stat st;

    if (n == 0)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
    if (strcmp(dir, PROCBUS_RUN_DIR) == 0) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -errno;
        if (lstat(dir, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0755 && !(st.st_mode & 022) &&
            chmod(dir, 0755) < 0)
            return -errno;
    } else if (stat(dir, &st) < 0) {
        return -errno;
    }
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    return procbus__trusted_dir(&st) ? 0 : -EPERM;
}

/* A temporary name beside `path`: ".procbus-tmp.PID.RANDOM" (64 random bits). */
static void tmp_name(char *buf, size_t cap, const char *path, const char *slash)
{
    static unsigned counter;
    uint64_t rnd = 0;

    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = pb_now_mono() ^ ((uint64_t)__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) << 40);
    snprintf(buf, cap, "%.*s/.procbus-tmp.%d.%016llx", (int)(slash - path), path, (int)getpid(),
             (unsigned long long)rnd);
}

/* Create the temporary file (O_EXCL), trying other random names when one is taken. */
static int create_tmp(char *tmp, size_t cap, const char *path, const char *slash)
{
    int i, fd = -1;

    for (i = 0; i < 16; i++) {
        tmp_name(tmp, cap, path, slash);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    return fd >= 0 ? fd : -errno;
}

int pb_segment_create(struct pb_segment *seg, const char *path, unsigned mode, long long gid,
                      const struct pb_geometry *g, unsigned flags,
                      void (*init)(struct pb_segment *seg, struct pb_predecessor *pred, void *arg),
                      void *arg)
{
    char tmp[sizeof(seg->path) + 64];
    const char *slash = strrchr(path, '/');
    struct procbus_header *h;
    int attempt, rc;

    if (slash == NULL || strlen(path) >= sizeof(seg->path))
        return -EINVAL;
    rc = check_folder(path);
    if (rc < 0)
        return rc;
    for (attempt = 0; attempt < 8; attempt++) {
        struct pb_predecessor pred = {0};
        unsigned char *old_map = NULL;
        size_t old_len = 0;
        int old_fd = -1, fd;

        rc = lock_predecessor(path, flags, &old_fd, &pred, &old_map, &old_len);
        if (rc < 0)
            return rc;
        fd = create_tmp(tmp, sizeof(tmp), path, slash);
        if (fd < 0) {
            rc = fd;
            goto fail_old;
        }
        if ((gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) < 0) || fchmod(fd, mode) < 0 ||
            flock(fd, LOCK_EX | LOCK_NB) < 0 || ftruncate(fd, (off_t)g->size) < 0) {
            rc = -errno;
            goto fail_tmp;
        }
        rc = -posix_fallocate(fd, 0, (off_t)g->size); /* full tmpfs: ENOSPC now, not SIGBUS */
        if (rc < 0)
            goto fail_tmp;
        seg->base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (seg->base == MAP_FAILED) {
            rc = -errno;
            goto fail_tmp;
        }
        seg->fd = fd;
        seg->size = g->size;
        seg->mode = mode;
        seg->gid = gid;
        snprintf(seg->path, sizeof(seg->path), "%s", path);

        h = (struct procbus_header *)seg->base;
        h->magic = PROCBUS_MAGIC;
        h->header_size = PROCBUS_HEADER_SIZE;
        h->segment_size = g->size;
        h->publisher_pid = (int32_t)getpid();
        h->publisher_start_ns = self_start_ns();
        h->epoch = pred.inherit ? pred.epoch + 1 : 1;
        h->created_ns = pb_now_real();
        h->ring_first = pred.inherit ? pred.ring_head : 0;
        h->record_size = sizeof(struct procbus_proc);
        h->record_capacity = g->capacity;
        h->arena_slots = g->arena_slots;
        h->snap_slots = g->snap_slots;
        h->snap_slot_size = g->snap_slot_size;
        h->hash_buckets = g->buckets;
        h->snap_off = g->snap_off;
        h->arena_off = g->arena_off;
        h->ring_off = g->ring_off;
        h->ring_capacity = g->ring_capacity;
        h->event_size = sizeof(struct procbus_event);
        h->ring_head = h->ring_first;
        h->heartbeat_ns = pb_now_mono();
        init(seg, &pred, arg); /* creation step 1 ends: initial snapshot, EPOCH event */
        free(pred.recs);       /* (NULL when init took them) */
        pred.recs = NULL;
        /* ABI.md creation step 2: pairs with the acquire load of `version` in
         * procbus__validate (procbus.h): a reader that sees it non-zero sees
         * everything stored above. */
        __atomic_store_n(&h->version, PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR, PROCBUS_ABI_MINOR),
                         __ATOMIC_RELEASE);

        /* Creation step 3: install the file at its name. */
        if (pred.present) {
            struct procbus_header *oh = (struct procbus_header *)old_map;
            /* We hold the old file's lock: nobody else can be replacing it.
             * Pairs with the acquire loads of heartbeat_ns in procbus_liveness
             * and procbus_wait: readers of the old file learn it is GONE. */
            __atomic_store_n(&oh->heartbeat_ns, PROCBUS_HB_GONE, __ATOMIC_RELEASE);
            if (rename(tmp, path) < 0) {
                rc = -errno;
                /* the same pairing: the old file is not gone after all */
                __atomic_store_n(&oh->heartbeat_ns, PROCBUS_HB_SHUTDOWN, __ATOMIC_RELEASE);
                goto fail_map;
            }
            /* Woken after the rename, so a woken procbus_follow finds the new
             * file at the name. Pairs with waiting step 1 (procbus_wait), as
             * commit step 6 does. */
            __atomic_fetch_add(&oh->futex, 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, &oh->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
            munmap(old_map, old_len);
            close(old_fd);
            return 0;
        }
        if (link(tmp, path) == 0) {
            unlink(tmp);
            return 0;
        }
        rc = -errno;
        munmap(seg->base, seg->size);
        unlink(tmp);
        close(fd);
        if (rc != -EEXIST)
            return rc;
        continue; /* someone installed a segment meanwhile: look at it again */
    fail_map:
        munmap(seg->base, seg->size);
    fail_tmp:
        unlink(tmp);
        close(fd);
    fail_old:
        free(pred.recs);
        if (old_map != NULL)
            munmap(old_map, old_len);
        if (old_fd >= 0)
            close(old_fd);
        return rc;
    }
    return -EBUSY;
}

int pb_segment_resume(struct pb_segment *seg, int fd, const char *path)
{
    struct procbus_reader r;
    struct stat a, b;
    void *m;

    if (fstat(fd, &b) < 0)
        return -errno;
    if (!S_ISREG(b.st_mode) || (size_t)b.st_size < PROCBUS_HEADER_SIZE ||
        strlen(path) >= sizeof(seg->path))
        return -EPROTO;
    /* the lock is this open file's: taking it again on the same description succeeds only if
     * nobody else holds it (we do, across the exec) */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -ENOLCK : -errno;
    if (stat(path, &a) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return -ESTALE; /* no longer the file at its name */
    m = mmap(NULL, (size_t)b.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    if (procbus_attach(&r, m, (size_t)b.st_size) < 0 || r.len != (size_t)b.st_size) {
        munmap(m, (size_t)b.st_size);
        return -EPROTO;
    }
    seg->fd = fd;
    seg->base = m;
    seg->size = (size_t)b.st_size;
    seg->mode = b.st_mode & 07777;
    seg->gid = b.st_gid;
    snprintf(seg->path, sizeof(seg->path), "%s", path);
    return 0;
}

void pb_segment_forget(struct pb_segment *seg)
{
    if (seg->base != NULL)
        munmap(seg->base, seg->size);
    seg->base = NULL;
    seg->fd = -1;
}

void pb_segment_close(struct pb_segment *seg, int unlink_it)
{
    struct procbus_header *h = (struct procbus_header *)seg->base;
    struct stat a, b;

    if (seg->base == NULL)
        return;
    /* ABI.md "Heartbeat and liveness": these release stores come after the
     * last commit and pair with the acquire loads of heartbeat_ns in
     * procbus_liveness and procbus_wait: a reader that sees SHUTDOWN or GONE
     * sees the final generation and snapshot. */
    if (unlink_it && stat(seg->path, &a) == 0 && fstat(seg->fd, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev) {
        __atomic_store_n(&h->heartbeat_ns, PROCBUS_HB_GONE, __ATOMIC_RELEASE);
        unlink(seg->path);
    } else {
        __atomic_store_n(&h->heartbeat_ns, PROCBUS_HB_SHUTDOWN, __ATOMIC_RELEASE);
    }
    pb_segment_wake(seg); /* commit step 6's wake-up, for waiters of the last commit */
    munmap(seg->base, seg->size);
    close(seg->fd);
    seg->base = NULL;
    seg->fd = -1;
}

int pb_segment_at_name(const struct pb_segment *seg)
{
    struct stat a, b;

    if (stat(seg->path, &a) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(seg->fd, &b) < 0)
        return -errno;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void pb_segment_retire(struct pb_segment *seg)
{
    struct procbus_header *h = (struct procbus_header *)seg->base;

    if (seg->base == NULL)
        return;
    /* As pb_segment_close: pairs with the acquire loads of heartbeat_ns in procbus_liveness
     * and procbus_wait; a reader that sees GONE sees the last commit made into this file, and
     * procbus_follow then maps the successor at the name. */
    __atomic_store_n(&h->heartbeat_ns, PROCBUS_HB_GONE, __ATOMIC_RELEASE);
    pb_segment_wake(seg);
    munmap(seg->base, seg->size);
    close(seg->fd);
    seg->base = NULL;
    seg->fd = -1;
}
