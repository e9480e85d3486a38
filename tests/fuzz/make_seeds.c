/* make_seeds.c - writes small valid segments (made by the real publisher) as fuzzing seeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"

/*
 * Usage: make_seeds OUTDIR
 *
 * Each seed is built by the publisher library under a unique segment
 * name, copied out byte for byte, and removed. Capacities and rings are tiny
 * so that every seed is 12-16 KiB. Clock readings and pids are then replaced
 * by fixed values, so regenerating gives identical files (no churn in git).
 */

#define FIXED_PID      4242
#define FIXED_REALTIME 1700000000000000000ull
#define FIXED_MONO     1000000000ull

static char g_outdir[512];
static unsigned g_seq;

static void fill(struct procbus_proc *r, uint64_t id, int32_t pid, const char *name, uint16_t state)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->pid = pid;
    r->ppid = 1;
    r->pgid = pid;
    r->state = state;
    r->start_realtime_ns = FIXED_REALTIME + id;
    r->start_boot_ns = 1000 + id;
    r->state_since_ns = r->start_realtime_ns;
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->comm, sizeof(r->comm), "%.15s", name);
    r->cmdline_len =
        (uint32_t)snprintf(r->cmdline, sizeof(r->cmdline), "/usr/bin/%s%c--flag", name, '\0') + 1;
}

static int must(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "make_seeds: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
    return rc;
}

static struct procbus_pub *open_pub(const char *name, uint32_t cap, uint32_t slots, uint32_t ring)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;

    o.segment = name;
    o.capacity = cap;
    o.snap_slots = slots;
    o.ring_capacity = ring;
    must(procbus_pub_open(&p, &o), name);
    return p;
}

static void upsert(struct procbus_pub *p, uint64_t id, int32_t pid, const char *name,
                   uint16_t state)
{
    struct procbus_proc r;

    fill(&r, id, pid, name, state);
    must(procbus_pub_upsert(p, &r), "upsert");
}

/* Replace what depends on the clock or the process by fixed values. */
static void normalise(unsigned char *b, size_t len)
{
    struct procbus_header *h = (struct procbus_header *)(void *)b;
    struct procbus_event *ring;
    uint32_t i;

    if (len < PROCBUS_HEADER_SIZE || h->ring_off + (uint64_t)h->ring_capacity * 64 > len)
        return;
    h->publisher_pid = FIXED_PID;
    h->publisher_start_ns = FIXED_MONO / 2;
    h->created_ns = FIXED_REALTIME;
    if (h->heartbeat_ns != PROCBUS_HB_SHUTDOWN && h->heartbeat_ns != PROCBUS_HB_GONE)
        h->heartbeat_ns = FIXED_MONO;
    ring = (struct procbus_event *)(void *)(b + h->ring_off);
    for (i = 0; i < h->ring_capacity; i++) {
        if (ring[i].seq == 0 && ring[i].kind == 0)
            continue; /* never written */
        ring[i].time_ns = FIXED_REALTIME + ring[i].seq;
        if (ring[i].kind == PROCBUS_EV_EPOCH)
            ring[i].pid = FIXED_PID;
    }
}

/*
 * Re-lay a segment out as a newer minor version would: records with a bigger
 * stride (and `size`), appended fields filled in. Returns a new buffer.
 */
static unsigned char *widen_records(const unsigned char *b, size_t *len, uint32_t stride)
{
    const struct procbus_header *h = (const struct procbus_header *)(const void *)b;
    uint64_t ao = h->arena_off, ro = ao + (uint64_t)h->arena_slots * stride, i;
    size_t nlen = (size_t)((ro + (uint64_t)h->ring_capacity * 64 + 4095) & ~4095ull);
    unsigned char *n = calloc(1, nlen);
    struct procbus_header *nh = (struct procbus_header *)(void *)n;

    if (n == NULL)
        must(-ENOMEM, "calloc");
    memcpy(n, b, (size_t)ao);
    for (i = 0; i < h->arena_slots; i++) {
        unsigned char *dst = n + ao + i * stride;
        memcpy(dst, b + ao + i * h->record_size, h->record_size);
        if (((struct procbus_proc *)(void *)dst)->size != 0) {
            ((struct procbus_proc *)(void *)dst)->size = stride;
            memset(dst + h->record_size, 0x5a, stride - h->record_size);
        }
    }
    memcpy(n + ro, b + h->ring_off, (size_t)h->ring_capacity * 64);
    nh->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR, PROCBUS_ABI_MINOR + 1);
    nh->record_size = stride;
    nh->ring_off = ro;
    nh->segment_size = nlen;
    *len = nlen;
    return n;
}

/* Copy /dev/shm/<name> to OUTDIR/<out>, normalised (and widened: stride > 0). */
static void save_as(const char *name, const char *out, uint32_t stride)
{
    char src[256], dst[1024];
    unsigned char *b;
    struct stat st;
    size_t got = 0;
    int fd;

    if (procbus_segment_path(name, src, sizeof(src)) < 0)
        must(-EINVAL, name);
    snprintf(dst, sizeof(dst), "%s/%s", g_outdir, out);
    fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        must(-errno, src);
    b = malloc((size_t)st.st_size);
    if (b == NULL)
        must(-ENOMEM, "malloc");
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n <= 0)
            must(n < 0 ? -errno : -EIO, src);
        got += (size_t)n;
    }
    close(fd);
    normalise(b, got);
    if (stride != 0) {
        unsigned char *w = widen_records(b, &got, stride);
        free(b);
        b = w;
    }
    fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, b, got) != (ssize_t)got)
        must(-errno, dst);
    close(fd);
    free(b);
    printf("%s: %zu bytes\n", dst, got);
}

static void save(const char *name, const char *out)
{
    save_as(name, out, 0);
}

static const char *seg_name(char buf[64])
{
    snprintf(buf, 64, "procbus-seed-%d-%u", (int)getpid(), g_seq++);
    return buf;
}

/* No records: the initial snapshot and the EPOCH event only. */
static void seed_empty(void)
{
    char name[64];
    struct procbus_pub *p = open_pub(seg_name(name), 4, 2, 8);

    save(name, "empty");
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A few records, a few commits, a removal. */
static void seed_small(void)
{
    char name[64];
    struct procbus_pub *p = open_pub(seg_name(name), 4, 2, 16);

    upsert(p, 1, 101, "web", PROCBUS_STATE_STARTING);
    upsert(p, 2, 102, "db", PROCBUS_STATE_STARTING);
    upsert(p, 3, 103, "cron", PROCBUS_STATE_RUNNING);
    must(procbus_pub_commit(p), "commit");
    upsert(p, 1, 101, "web", PROCBUS_STATE_READY);
    upsert(p, 2, 102, "db", PROCBUS_STATE_RUNNING);
    must(procbus_pub_commit(p), "commit");
    must(procbus_pub_remove(p, 3), "remove");
    must(procbus_pub_commit(p), "commit");
    save(name, "small");
    save_as(name, "small-minor1-stride448",
            448); /* records as a newer minor (stride 448) writes them */
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A full table (8 of 8), a pid shared by an exited and a running record,
 * long names, exec events, and a ring that has wrapped several times. */
static void seed_full_wrapped(void)
{
    char name[64], nm[64];
    struct procbus_pub *p = open_pub(seg_name(name), 8, 3, 32);
    struct procbus_proc r;
    int i, round;

    for (i = 0; i < 7; i++) {
        int len = snprintf(nm, sizeof(nm), "worker-%d", i);
        if (i == 6) { /* a name of the longest length: 63 bytes and the NUL */
            memset(nm + len, 'x', PROCBUS_NAME_LEN - 1 - (size_t)len);
            nm[PROCBUS_NAME_LEN - 1] = '\0';
        }
        upsert(p, (uint64_t)i + 1, 200 + i, nm, PROCBUS_STATE_STARTING);
    }
    upsert(p, 8, 200, "worker-0-old", PROCBUS_STATE_EXITED); /* pid 200 again, older */
    must(procbus_pub_commit(p), "commit");
    for (round = 0; round < 12; round++) {
        for (i = 0; i < 3; i++) {
            snprintf(nm, sizeof(nm), "worker-%d", i);
            fill(&r, (uint64_t)i + 1, 200 + i, nm,
                 round % 2 ? PROCBUS_STATE_RUNNING : PROCBUS_STATE_BACKOFF);
            r.restarts = (uint32_t)round;
            r.exit_kind = round % 2 ? PROCBUS_EXIT_NONE : PROCBUS_EXIT_SIGNAL;
            r.exit_code = round % 2 ? 0 : 9;
            r.start_boot_ns = 5000 + (uint64_t)round;
            must(procbus_pub_upsert(p, &r), "upsert");
        }
        if (round % 4 == 0)
            must(procbus_pub_event(p, PROCBUS_EV_EXEC, &r), "event");
        must(procbus_pub_commit(p), "commit");
    }
    save(name, "full-wrapped");
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A ring bigger than the reader's retry budget (64), wrapped: long skips are reachable. */
static void seed_ring128(void)
{
    char name[64];
    struct procbus_pub *p = open_pub(seg_name(name), 4, 2, 128);
    struct procbus_proc r;
    int i;

    upsert(p, 1, 501, "chatty", PROCBUS_STATE_RUNNING);
    must(procbus_pub_commit(p), "commit");
    fill(&r, 1, 501, "chatty", PROCBUS_STATE_RUNNING);
    for (i = 0; i < 200; i++) {
        must(procbus_pub_event(p, PROCBUS_EV_EXEC, &r), "event");
        if (i % 50 == 49)
            must(procbus_pub_commit(p), "commit");
    }
    save(name, "ring128-wrapped");
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* Closed cleanly: heartbeat PROCBUS_HB_SHUTDOWN, last snapshot readable. */
static void seed_shutdown(void)
{
    char name[64], path[128];
    struct procbus_pub *p = open_pub(seg_name(name), 4, 2, 16);

    upsert(p, 1, 301, "batch", PROCBUS_STATE_RUNNING);
    must(procbus_pub_commit(p), "commit");
    upsert(p, 1, 301, "batch", PROCBUS_STATE_EXITED);
    must(procbus_pub_commit(p), "commit");
    procbus_pub_close(p, 0);
    save(name, "shutdown");
    if (procbus_segment_path(name, path, sizeof(path)) == 0)
        unlink(path);
}

/* A second publisher took the name over: epoch 2, ring_first > 0, generation continued. */
static void seed_takeover(void)
{
    char name[64], path[128];
    struct procbus_pub *p = open_pub(seg_name(name), 4, 2, 16);
    int i;

    for (i = 0; i < 5; i++) {
        upsert(p, 1, 401, "svc", i % 2 ? PROCBUS_STATE_RUNNING : PROCBUS_STATE_STARTING);
        must(procbus_pub_commit(p), "commit");
    }
    procbus_pub_close(p, 0);
    p = open_pub(name, 4, 2, 16);
    upsert(p, 1, 402, "svc", PROCBUS_STATE_RUNNING);
    upsert(p, 2, 403, "helper", PROCBUS_STATE_RUNNING);
    must(procbus_pub_commit(p), "commit");
    save(name, "takeover");
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    if (procbus_segment_path(name, path, sizeof(path)) == 0)
        unlink(path);
}

int main(int argc, char **argv)
{
    struct stat st;

    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUTDIR\n");
        return 2;
    }
    snprintf(g_outdir, sizeof(g_outdir), "%s", argv[1]);
    if (mkdir(g_outdir, 0755) < 0 && (stat(g_outdir, &st) < 0 || !S_ISDIR(st.st_mode)))
        must(-errno, g_outdir);
    seed_empty();
    seed_small();
    seed_full_wrapped();
    seed_ring128();
    seed_shutdown();
    seed_takeover();
    return 0;
}
