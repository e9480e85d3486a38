/* test_hostile.c - the reader (copying and zero-copy) against corrupt and hostile segments. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

/*
 * One real segment is built by the publisher in the group setup and its bytes
 * are kept in g_img. Every test copies them into a malloc'd buffer of exactly
 * the segment's size (so ASan reports any read past the end), mutates the
 * copy and attaches the reader to it with procbus_attach (no syscalls). The
 * rule under test: errors are -EPROTO / -EBADMSG (or -EAGAIN, -ENOENT where
 * documented), data is valid-looking, and nothing crashes, hangs or overreads.
 */

#define IMG_CAP   8
#define IMG_SLOTS 4
#define IMG_RING  16
#define NLIVE     6

static unsigned char *g_img;
static size_t g_len;

/* The records the image's current snapshot holds (pid 1001 twice: newest wins). */
static const struct {
    int32_t pid;
    const char *name;
    uint64_t id;
} g_live[NLIVE] = {
    {1001, "svc-0", 1}, {1002, "svc-1", 2}, {1003, "svc-2", 3},
    {1004, "svc-3", 4}, {1001, "old-0", 7}, {1006, "a-much-longer-name-for-the-sixth-service", 6},
};

/* ---- building the image ---- */

static int upsert(struct procbus_pub *p, uint64_t id, int32_t pid, const char *name, uint16_t state,
                  uint64_t boot)
{
    struct procbus_proc rec;

    pbt_fill(&rec, id, pid, name, state);
    rec.start_boot_ns = boot;
    return procbus_pub_upsert(p, &rec);
}

/* A copy of the segment file at path (malloc'd); 0, a negative errno, or -EIO if it is empty. */
static int read_file(const char *path, unsigned char **out, size_t *len)
{
    char *buf = pbt_slurp(path, len);

    if (buf == NULL)
        return -errno;
    if (*len == 0) {
        free(buf);
        return -EIO;
    }
    *out = (unsigned char *)buf;
    return 0;
}

/* Several commits, a removal, a pid shared by two records, extra events, and
 * more events than the ring holds so that it has wrapped. */
static int build_image(void **state)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_proc rec;
    char name[64], path[128];
    int i, rc = 0;
    (void)state;

    o.segment = pbt_name(name);
    o.capacity = IMG_CAP;
    o.snap_slots = IMG_SLOTS;
    o.ring_capacity = IMG_RING;
    if (procbus_pub_open(&p, &o) < 0)
        return -1;
    for (i = 0; i < 4; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "svc-%d", i);
        rc |= upsert(p, (uint64_t)i + 1, 1001 + i, nm, PROCBUS_STATE_STARTING, 5000 + (uint64_t)i);
    }
    rc |= upsert(p, 5, 1005, "doomed", PROCBUS_STATE_RUNNING, 5005);
    rc |= procbus_pub_commit(p);
    rc |= upsert(p, 6, 1006, g_live[5].name, PROCBUS_STATE_RUNNING, 5006);
    rc |= upsert(p, 7, 1001, "old-0", PROCBUS_STATE_EXITED, 100); /* older user of pid 1001 */
    rc |= procbus_pub_commit(p);
    rc |= procbus_pub_remove(p, 5);
    rc |= procbus_pub_commit(p);
    for (i = 0; i < 6; i++) {
        rc |= upsert(p, 1, 1001, "svc-0", i % 2 ? PROCBUS_STATE_RUNNING : PROCBUS_STATE_BACKOFF,
                     5000);
        rc |=
            upsert(p, 2, 1002, "svc-1", i % 2 ? PROCBUS_STATE_READY : PROCBUS_STATE_RUNNING, 5001);
        rc |= procbus_pub_commit(p);
    }
    pbt_fill(&rec, 3, 1003, "svc-2", PROCBUS_STATE_STARTING);
    rc |= procbus_pub_event(p, PROCBUS_EV_EXEC, &rec);
    rc |= procbus_pub_commit(p);
    rc |= procbus_pub_commit(p); /* an empty commit */
    if (rc == 0)
        rc = read_file(pbt_path(name, path), &g_img, &g_len);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    pbt_unlink(name);
    return rc == 0 ? 0 : -1;
}

static int free_image(void **state)
{
    (void)state;
    free(g_img);
    g_img = NULL;
    return 0;
}

/* ---- helpers over a copy ---- */

static unsigned char *fresh(void)
{
    unsigned char *b = malloc(g_len);
    assert_non_null(b);
    memcpy(b, g_img, g_len);
    return b;
}

static struct procbus_header *H(unsigned char *b)
{
    return (struct procbus_header *)(void *)b;
}

static unsigned char *cur_snap(unsigned char *b)
{
    return b + PROCBUS_CUR_OFF(H(b)->current);
}

static uint32_t *dense_of(unsigned char *snap)
{
    return (uint32_t *)(void *)(snap + PROCBUS_SNAP_DENSE_OFF);
}

static uint64_t *pid_tbl(unsigned char *b)
{
    return (uint64_t *)(void *)(cur_snap(b) + PROCBUS_SNAP_PID_OFF(H(b)->record_capacity));
}

static uint64_t *name_tbl(unsigned char *b)
{
    return (uint64_t *)(void *)(cur_snap(b) +
                                PROCBUS_SNAP_NAME_OFF(H(b)->record_capacity, H(b)->hash_buckets));
}

static struct procbus_proc *rec_at(unsigned char *b, uint32_t slot)
{
    return (struct procbus_proc *)(void *)(b + H(b)->arena_off +
                                           (uint64_t)slot * H(b)->record_size);
}

static struct procbus_event *ring_of(unsigned char *b)
{
    return (struct procbus_event *)(void *)(b + H(b)->ring_off);
}

/* The first bucket of `tbl` on key's probe path that carries `key` (a test precondition). */
static uint64_t *find_bucket(unsigned char *b, uint64_t *tbl, uint32_t key)
{
    uint32_t bk = H(b)->hash_buckets, pos = procbus_key_home(key, bk - 1), i;

    for (i = 0; i < bk; i++, pos = (pos + 1) & (bk - 1)) {
        if (tbl[pos] == 0)
            break;
        if (PROCBUS_BUCKET_KEY(tbl[pos]) == key)
            return &tbl[pos];
    }
    fail_msg("key %u not in the image's index", key);
    return NULL;
}

/* The arena slot holding the record with id `id` in the current snapshot. */
static uint32_t slot_of_id(unsigned char *b, uint64_t id)
{
    unsigned char *snap = cur_snap(b);
    uint32_t n = ((struct procbus_snap *)(void *)snap)->count, i;

    for (i = 0; i < n; i++)
        if (rec_at(b, dense_of(snap)[i])->id == id)
            return dense_of(snap)[i];
    fail_msg("id %llu not in the image", (unsigned long long)id);
    return 0;
}

static int attach(struct procbus_reader *r, unsigned char *b)
{
    return procbus_attach(r, b, g_len);
}

/* ---- the zero-copy section (procbus_section.h) over the same images ---- */

/* A record pointer from a section: on a record boundary of the arena, inside the mapping. */
static int in_arena(const struct procbus_reader *r, const struct procbus_proc *p)
{
    const unsigned char *q = (const unsigned char *)p, *arena = r->base + r->arena_off;
    uint64_t off;

    if (q < arena)
        return 0;
    off = (uint64_t)(q - arena);
    return off % r->record_size == 0 && off / r->record_size < r->arena_slots &&
           (uint64_t)(q - r->base) + sizeof(*p) <= r->len;
}

/* Every pointer a section gives and every string accessor: in bounds, lengths clamped. */
static void check_ptr(const struct procbus_reader *r, const struct procbus_proc *p)
{
    char buf[PROCBUS_CMDLINE_LEN + 8];
    size_t n;

    if (!in_arena(r, p))
        fail_msg("a section gave a pointer outside the arena: %p", (const void *)p);
    (void)PROCBUS_FIELD(p, state);
    n = procbus_rec_name(p, buf, sizeof(buf));
    if (n >= PROCBUS_NAME_LEN || buf[n] != '\0' || strlen(buf) != n)
        fail_msg("procbus_rec_name: %zu bytes", n);
    n = procbus_rec_comm(p, buf, sizeof(buf));
    if (n >= PROCBUS_COMM_LEN || buf[n] != '\0')
        fail_msg("procbus_rec_comm: %zu bytes", n);
    n = procbus_rec_cmdline(p, buf, sizeof(buf));
    if (n > PROCBUS_CMDLINE_LEN)
        fail_msg("procbus_rec_cmdline: %zu bytes", n);
    if (procbus_rec_name(p, buf, 1) != 0 || buf[0] != '\0' || procbus_rec_cmdline(p, buf, 3) > 3)
        fail_msg("string accessors ignore the caller's room");
}

enum sec_kind { SEC_PID, SEC_NAME, SEC_WALK };

/*
 * One section over r: the record of `pid` or `name`, or a walk of the snapshot.
 * Returns what procbus_section_retry ended with, and -ENOENT for a lookup that
 * validated and found nothing: the codes the copying calls give. *walked: the
 * records a walk saw (may be NULL).
 */
static int sec_read(struct procbus_reader *r, enum sec_kind kind, int32_t pid, const char *name,
                    uint32_t *walked)
{
    struct procbus_section s;
    const struct procbus_proc *p = NULL;
    uint32_t n = 0, i;
    int rc;

    procbus_section_begin(r, &s);
    do {
        if (kind == SEC_WALK) {
            n = procbus_section_count(&s);
            if (n > r->capacity)
                fail_msg("section count %u over the capacity %u", n, r->capacity);
            for (i = 0; i < n && (p = procbus_section_at(&s, i)) != NULL; i++)
                check_ptr(r, p);
            if (procbus_section_at(&s, n) != NULL)
                fail_msg("procbus_section_at(count) gave a record");
            n = i;
        } else {
            p = kind == SEC_PID ? procbus_section_pid(&s, pid) : procbus_section_name(&s, name);
            if (p != NULL) {
                check_ptr(r, p);
                if (kind == SEC_PID && PROCBUS_FIELD(p, pid) != pid)
                    fail_msg("section by pid %d gave pid %d", pid, PROCBUS_FIELD(p, pid));
                if (kind == SEC_NAME && !procbus_rec_name_is(p, name))
                    fail_msg("section by name %s gave another name", name);
            }
        }
    } while ((rc = procbus_section_retry(&s)) > 0);
    if (walked != NULL)
        *walked = rc == 0 ? n : 0;
    return rc == 0 && kind != SEC_WALK && p == NULL ? -ENOENT : rc;
}

/* Every read through the index or the dense array gives `want`. */
static void expect_reads(unsigned char *b, int want)
{
    struct procbus_reader r;
    struct procbus_proc out, list[IMG_CAP];
    size_t n = 0;

    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_get_pid(&r, 1002, &out), want);
    assert_int_equal(procbus_get_name(&r, "svc-1", &out), want);
    assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), want);
    assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), want);
    assert_int_equal(sec_read(&r, SEC_NAME, 0, "svc-1", NULL), want);
    assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), want);
    procbus_close(&r);
}

/* ---- the pristine image: a baseline every mutation below departs from ---- */

static void test_pristine_image(void **state)
{
    unsigned char *b = fresh();
    struct procbus_reader r;
    struct procbus_proc out, list[IMG_CAP];
    struct procbus_event ev;
    struct procbus_info info;
    uint64_t missed = 1, head = H(b)->ring_head, seq;
    size_t n = 0;
    int i, got = 0;
    (void)state;

    assert_int_equal(H(b)->segment_size, g_len);
    assert_int_equal(H(b)->record_capacity, IMG_CAP);
    assert_int_equal(H(b)->ring_capacity, IMG_RING);
    assert_true(head - H(b)->ring_first > IMG_RING); /* the ring has wrapped */
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(r.cursor, head);
    assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), 0);
    assert_int_equal(n, NLIVE);
    for (i = 0; i < NLIVE; i++) {
        assert_int_equal(procbus_get_name(&r, g_live[i].name, &out), 0);
        assert_int_equal(out.id, g_live[i].id);
        assert_int_equal(out.pid, g_live[i].pid);
    }
    assert_int_equal(procbus_get_pid(&r, 1001, &out), 0);
    assert_int_equal(out.id, 1); /* the newer process wins */
    assert_int_equal(procbus_get_pid(&r, 1005, &out), -ENOENT);
    assert_int_equal(procbus_get_name(&r, "doomed", &out), -ENOENT);
    { /* the same through sections: every name and pid, the newest holder of 1001, a walk */
        struct procbus_section s;
        const struct procbus_proc *p[NLIVE], *p1001 = NULL;
        uint32_t walked = 0;
        int rc;
        procbus_section_begin(&r, &s);
        do {
            for (i = 0; i < NLIVE; i++)
                p[i] = procbus_section_name(&s, g_live[i].name);
            p1001 = procbus_section_pid(&s, 1001);
        } while ((rc = procbus_section_retry(&s)) > 0);
        assert_int_equal(rc, 0);
        assert_int_equal(procbus_section_generation(&s), H(b)->generation);
        assert_int_equal(procbus_read_generation(&r), H(b)->generation);
        for (i = 0; i < NLIVE; i++) {
            assert_non_null(p[i]);
            assert_int_equal(PROCBUS_FIELD(p[i], id), g_live[i].id);
            assert_int_equal(PROCBUS_FIELD(p[i], pid), g_live[i].pid);
        }
        assert_non_null(p1001);
        assert_int_equal(PROCBUS_FIELD(p1001, id), 1);
        assert_int_equal(sec_read(&r, SEC_PID, 1005, NULL, NULL), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_NAME, 0, "doomed", NULL), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_NAME, 0, "", NULL), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_PID, 0, NULL, NULL), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_PID, -1001, NULL, NULL), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, &walked), 0);
        assert_int_equal(walked, NLIVE);
        {
            char longname[PROCBUS_NAME_LEN + 1];
            memset(longname, 'x', PROCBUS_NAME_LEN);
            longname[PROCBUS_NAME_LEN] = '\0';
            assert_int_equal(sec_read(&r, SEC_NAME, 0, longname, NULL), -ENOENT);
        }
        /* a failed begin: the body still runs safely, the retry says why */
        {
            struct procbus_reader closed;
            memset(&closed, 0, sizeof(closed));
            assert_int_equal(procbus_section_begin(&closed, &s), -EINVAL);
            assert_null(procbus_section_pid(&s, 1001));
            assert_null(procbus_section_name(&s, "svc-0"));
            assert_int_equal(procbus_section_count(&s), 0);
            assert_null(procbus_section_at(&s, 0));
            assert_int_equal(procbus_section_retry(&s), -EINVAL);
            assert_int_equal(procbus_section_begin(NULL, &s), -EINVAL);
            assert_int_equal(procbus_section_retry(&s), -EINVAL);
            assert_int_equal(procbus_section_begin(&r, NULL), -EINVAL);
        }
    }
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);
    assert_int_equal(missed, 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    for (seq = head - IMG_RING; procbus_next_event(&r, &ev, &missed) == 0; seq++, got++) {
        assert_int_equal(ev.seq, seq);
        assert_int_equal(missed, 0);
    }
    assert_int_equal(got, IMG_RING);
    assert_int_equal(procbus_info(&r, &info), 0);
    assert_int_equal(info.ring_head, head);
    assert_int_equal(info.capacity, IMG_CAP);
    assert_int_equal(info.abi_minor, PROCBUS_ABI_MINOR);
    assert_int_equal(procbus_generation(&r), H(b)->generation);
    assert_int_equal(procbus_liveness(&r, UINT64_MAX), PROCBUS_ALIVE); /* copied while open */
    procbus_close(&r);
    free(b);
}

/* ---- identity: magic and version ---- */

static void test_magic_and_version(void **state)
{
    static const uint32_t bad_versions[] = {
        PROCBUS_VERSION_WORD(0, 1),
        PROCBUS_VERSION_WORD(2, 0),
        PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR + 1, PROCBUS_ABI_MINOR),
        PROCBUS_VERSION_WORD(0xffff, 0xffff),
        PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR | 0x100, 0),
    };
    unsigned char *b = fresh();
    struct procbus_reader r;
    struct procbus_info info;
    size_t i;
    (void)state;

    for (i = 0; i < 8; i++) { /* one wrong magic byte, each position */
        b[i] ^= 0x20;
        assert_int_equal(attach(&r, b), -EPROTO);
        b[i] ^= 0x20;
    }
    H(b)->magic = 0;
    assert_int_equal(attach(&r, b), -EPROTO);
    H(b)->magic = ~PROCBUS_MAGIC;
    assert_int_equal(attach(&r, b), -EPROTO);
    H(b)->magic = PROCBUS_MAGIC;
    H(b)->version = 0; /* the right magic, version not yet written: still initialising */
    assert_int_equal(attach(&r, b), -EINPROGRESS);
    for (i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        H(b)->version = bad_versions[i];
        assert_int_equal(attach(&r, b), -EPROTO);
    }
    /* a newer minor version is compatible */
    H(b)->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR, 7);
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_info(&r, &info), 0);
    assert_int_equal(info.abi_minor, 7);
    procbus_close(&r);
    free(b);
}

/* ---- lengths: short buffers (attach) and short or long files (open) ---- */

static void test_short_buffers(void **state)
{
    static const size_t lens[] = {0, 1, 7, 8, 100, 319, 320, 4095};
    struct procbus_reader r;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        unsigned char *b = malloc(lens[i] ? lens[i] : 1);
        assert_non_null(b);
        memcpy(b, g_img, lens[i]);
        assert_int_equal(procbus_attach(&r, b, lens[i]), lens[i] < 8 ? -EPROTO : -EBADMSG);
        free(b);
    }
    /* whole header, but less than segment_size */
    for (i = 4096; i < g_len; i += 4096) {
        unsigned char *b = malloc(i);
        assert_non_null(b);
        memcpy(b, g_img, i);
        assert_int_equal(procbus_attach(&r, b, i), -EBADMSG);
        free(b);
    }
    {
        unsigned char *b = malloc(g_len - 1);
        assert_non_null(b);
        memcpy(b, g_img, g_len - 1);
        assert_int_equal(procbus_attach(&r, b, g_len - 1), -EBADMSG);
        free(b);
    }
}

/* Write `len` bytes of `data` as the file `path` and procbus_open it; the return code. */
static int open_as_file(const char *path, const void *data, size_t len)
{
    struct procbus_reader r;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;

    if (fd < 0)
        return 1000 + errno;
    rc = write(fd, data, len) == (ssize_t)len ? 0 : 2000;
    close(fd);
    if (rc != 0)
        return rc;
    rc = procbus_open(&r, path);
    if (rc == 0) {
        if (r.len != len)
            rc = 3000;
        procbus_close(&r);
    }
    return rc;
}

static void test_truncated_files(void **state)
{
    char dir[] = "/tmp/pbt-hostile-XXXXXX", path[128], what[96] = "";
    const size_t lens[] = {0, 1, 7, 8, 100, 4095, 4096, 4097, g_len / 2, g_len - 4096, g_len - 1};
    struct procbus_header *bh;
    struct procbus_reader r;
    unsigned char *big;
    size_t i;
    int got = 0, want = 0;
    (void)state;

    big = calloc(1, g_len + 4096);
    assert_non_null(big);
    bh = (struct procbus_header *)(void *)big;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/seg", dir);

#define EXPECT_OPEN(data, len, rc_want, ...)           \
    do {                                               \
        int rc_ = open_as_file(path, (data), (len));   \
        if (rc_ != (rc_want) && what[0] == '\0') {     \
            snprintf(what, sizeof(what), __VA_ARGS__); \
            got = rc_;                                 \
            want = (rc_want);                          \
        }                                              \
    } while (0)

    EXPECT_OPEN(g_img, g_len, 0, "the untouched file");
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) /* shorter than the header, or than
                                                              segment_size */
        EXPECT_OPEN(g_img, lens[i], lens[i] == 0 ? -EPROTO : -EBADMSG, "a %zu-byte file", lens[i]);
    memcpy(big, g_img, g_len);
    EXPECT_OPEN(big, g_len + 4096, -EBADMSG, "a file longer than segment_size");
    bh->segment_size = g_len + 4096;
    EXPECT_OPEN(big, g_len, -EBADMSG, "segment_size past the end of the file");
    bh->segment_size = g_len - 4096;
    EXPECT_OPEN(big, g_len, -EBADMSG, "segment_size short of the file (ring cut off)");
    memcpy(big, g_img, g_len);
    bh->magic ^= 1;
    EXPECT_OPEN(big, g_len, -EPROTO, "wrong magic");
    memcpy(big, g_img, g_len);
    bh->version = 0;
    EXPECT_OPEN(big, g_len, -EINPROGRESS, "version 0 (not ready)");
    bh->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR + 1, 0);
    EXPECT_OPEN(big, g_len, -EPROTO, "a newer major version");
#undef EXPECT_OPEN
    unlink(path);
    if (what[0] == '\0' && procbus_open(&r, dir) != -EISDIR) /* a directory, said so */
        snprintf(what, sizeof(what), "a directory");
    rmdir(dir);
    free(big);
    if (what[0] != '\0')
        fail_msg("%s: procbus_open gave %d, expected %d", what, got, want);
}

/* ---- geometry: every field at extreme and inconsistent values ---- */

enum gfield {
    G_HEADER_SIZE,
    G_SEGMENT_SIZE,
    G_RECORD_SIZE,
    G_CAPACITY,
    G_ARENA_SLOTS,
    G_SNAP_SLOTS,
    G_SNAP_SLOT_SIZE,
    G_BUCKETS,
    G_SNAP_OFF,
    G_ARENA_OFF,
    G_RING_OFF,
    G_RING_CAP,
    G_EVENT_SIZE,
};

static void set_field(unsigned char *b, enum gfield f, uint64_t v)
{
    struct procbus_header *h = H(b);

    switch (f) {
    case G_HEADER_SIZE:
        h->header_size = (uint32_t)v;
        break;
    case G_SEGMENT_SIZE:
        h->segment_size = v;
        break;
    case G_RECORD_SIZE:
        h->record_size = (uint32_t)v;
        break;
    case G_CAPACITY:
        h->record_capacity = (uint32_t)v;
        break;
    case G_ARENA_SLOTS:
        h->arena_slots = (uint32_t)v;
        break;
    case G_SNAP_SLOTS:
        h->snap_slots = (uint32_t)v;
        break;
    case G_SNAP_SLOT_SIZE:
        h->snap_slot_size = (uint32_t)v;
        break;
    case G_BUCKETS:
        h->hash_buckets = (uint32_t)v;
        break;
    case G_SNAP_OFF:
        h->snap_off = v;
        break;
    case G_ARENA_OFF:
        h->arena_off = v;
        break;
    case G_RING_OFF:
        h->ring_off = v;
        break;
    case G_RING_CAP:
        h->ring_capacity = (uint32_t)v;
        break;
    case G_EVENT_SIZE:
        h->event_size = (uint32_t)v;
        break;
    }
}

/* The smallest power-of-two ring capacity that no longer fits between ring_off and the end. */
static uint64_t pow2_past_end(uint64_t ring_off, uint64_t len)
{
    uint64_t n = 1;
    while (ring_off + n * sizeof(struct procbus_event) <= len)
        n *= 2;
    return n;
}

static void test_geometry_extremes(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint64_t len = g_len, U32 = UINT32_MAX, U64 = UINT64_MAX;
    const uint64_t cap = h0->record_capacity, bk = h0->hash_buckets, ssz = h0->snap_slot_size;
    const uint64_t so = h0->snap_off, ao = h0->arena_off, ro = h0->ring_off;
    const uint64_t ring_past_end = pow2_past_end(ro, len);
    const struct {
        enum gfield f;
        uint64_t v;
        const char *what;
    } cases[] = {
        {G_HEADER_SIZE, 0, "header_size 0"},
        {G_HEADER_SIZE, 1, "header_size 1"},
        {G_HEADER_SIZE, 320, "header_size = struct size"},
        {G_HEADER_SIZE, 8192, "header_size 8192"},
        {G_HEADER_SIZE, U32, "header_size max"},
        {G_SEGMENT_SIZE, 0, "segment_size 0"},
        {G_SEGMENT_SIZE, 1, "segment_size 1"},
        {G_SEGMENT_SIZE, 4096, "segment_size = header"},
        {G_SEGMENT_SIZE, ro + 64, "segment_size inside the ring"},
        {G_SEGMENT_SIZE, len + 1, "segment_size past the buffer"},
        {G_SEGMENT_SIZE, len * 2, "segment_size twice the buffer"},
        {G_SEGMENT_SIZE, PROCBUS_MAX_SEGMENT + 4096, "segment_size over the ABI limit"},
        {G_SEGMENT_SIZE, U64, "segment_size max"},
        {G_RECORD_SIZE, 0, "record_size 0"},
        {G_RECORD_SIZE, 1, "record_size 1"},
        {G_RECORD_SIZE, 64, "record_size 64"},
        {G_RECORD_SIZE, 320, "record_size below the v1 minimum"},
        {G_RECORD_SIZE, 385, "record_size not a multiple of 64"},
        {G_RECORD_SIZE, 448, "record_size: arena runs into the ring"},
        {G_RECORD_SIZE, 0xffffffc0u, "record_size huge"},
        {G_RECORD_SIZE, U32, "record_size max"},
        {G_CAPACITY, 0, "capacity 0"},
        {G_CAPACITY, bk, "capacity = buckets"},
        {G_CAPACITY, bk + 1, "capacity > buckets"},
        {G_CAPACITY, PROCBUS_MAX_CAPACITY + 1, "capacity over the ABI limit"},
        {G_CAPACITY, U32, "capacity max"},
        {G_ARENA_SLOTS, 0, "arena_slots 0"},
        {G_ARENA_SLOTS, 1, "arena_slots 1"},
        {G_ARENA_SLOTS, cap - 1, "arena_slots < capacity"},
        {G_ARENA_SLOTS, (ro - ao) / 384 + 1, "arena overlaps the ring"},
        {G_ARENA_SLOTS, 0xfffffffeu, "arena_slots huge"},
        {G_ARENA_SLOTS, U32, "arena_slots max"},
        {G_SNAP_SLOTS, 0, "snap_slots 0"},
        {G_SNAP_SLOTS, 1, "snap_slots 1"},
        {G_SNAP_SLOTS, (ao - so) / ssz + 1, "snapshots overlap the arena"},
        {G_SNAP_SLOTS, PROCBUS_MAX_SNAP_SLOTS + 1, "snap_slots over the ABI limit"},
        {G_SNAP_SLOTS, U32, "snap_slots max"},
        {G_SNAP_SLOT_SIZE, 0, "snap_slot_size 0"},
        {G_SNAP_SLOT_SIZE, 1, "snap_slot_size 1"},
        {G_SNAP_SLOT_SIZE, 64, "snap_slot_size: header only"},
        {G_SNAP_SLOT_SIZE, ssz - 64, "snap_slot_size too small for the indexes"},
        {G_SNAP_SLOT_SIZE, ssz + 1, "snap_slot_size not a multiple of 64"},
        {G_SNAP_SLOT_SIZE, ssz + 64, "snapshot slots overlap the arena"},
        {G_SNAP_SLOT_SIZE, 0xffffffc0u, "snap_slot_size huge"},
        {G_SNAP_SLOT_SIZE, U32, "snap_slot_size max"},
        {G_BUCKETS, 0, "buckets 0"},
        {G_BUCKETS, 1, "buckets 1"},
        {G_BUCKETS, 3, "buckets 3"},
        {G_BUCKETS, bk - 1, "buckets not a power of two"},
        {G_BUCKETS, bk + bk / 2, "buckets not a power of two (above)"},
        {G_BUCKETS, cap, "buckets = capacity"},
        {G_BUCKETS, cap / 2, "buckets < capacity"},
        {G_BUCKETS, bk * 2, "buckets: indexes outgrow the slot"},
        {G_BUCKETS, 1u << 24, "buckets over the ABI limit"},
        {G_BUCKETS, 1u << 31, "buckets 2^31"},
        {G_BUCKETS, U32, "buckets max"},
        {G_SNAP_OFF, 0, "snap_off 0 (the header)"},
        {G_SNAP_OFF, 1, "snap_off misaligned"},
        {G_SNAP_OFF, so + 8, "snap_off misaligned by 8"},
        {G_SNAP_OFF, 4032, "snap_off inside the header"},
        {G_SNAP_OFF, so + 64, "snapshots overlap the arena (shifted)"},
        {G_SNAP_OFF, ao, "snap_off = arena_off"},
        {G_SNAP_OFF, ro, "snap_off = ring_off"},
        {G_SNAP_OFF, len, "snap_off at the end"},
        {G_SNAP_OFF, len + 64, "snap_off past the end"},
        {G_SNAP_OFF, U64 - 63, "snap_off max (aligned)"},
        {G_SNAP_OFF, U64, "snap_off max"},
        {G_ARENA_OFF, 0, "arena_off 0"},
        {G_ARENA_OFF, 4096, "arena_off over the snapshots"},
        {G_ARENA_OFF, ao - 64, "arena overlaps the last snapshot slot"},
        {G_ARENA_OFF, ao + 8, "arena_off misaligned"},
        {G_ARENA_OFF, ao + 64, "arena overlaps the ring (shifted)"},
        {G_ARENA_OFF, ro, "arena_off = ring_off"},
        {G_ARENA_OFF, len, "arena_off at the end"},
        {G_ARENA_OFF, U64 - 63, "arena_off max (aligned)"},
        {G_ARENA_OFF, U64, "arena_off max"},
        {G_RING_OFF, 0, "ring_off 0"},
        {G_RING_OFF, 4096, "ring over the snapshots"},
        {G_RING_OFF, ao, "ring_off = arena_off"},
        {G_RING_OFF, ro - 64, "ring overlaps the arena"},
        {G_RING_OFF, ro + 4, "ring_off misaligned"},
        {G_RING_OFF, len - (uint64_t)IMG_RING * 64 + 64, "ring runs past the end"},
        {G_RING_OFF, len, "ring_off at the end"},
        {G_RING_OFF, len + 64, "ring_off past the end"},
        {G_RING_OFF, U64 - 63, "ring_off max (aligned)"},
        {G_RING_OFF, U64, "ring_off max"},
        {G_RING_CAP, 0, "ring_capacity 0"},
        {G_RING_CAP, 3, "ring_capacity 3"},
        {G_RING_CAP, IMG_RING + 1, "ring_capacity not a power of two"},
        {G_RING_CAP, ring_past_end, "ring runs past the end (capacity)"},
        {G_RING_CAP, PROCBUS_MAX_RING * 2, "ring_capacity over the ABI limit"},
        {G_RING_CAP, 1u << 31, "ring_capacity 2^31"},
        {G_RING_CAP, U32, "ring_capacity max"},
        {G_EVENT_SIZE, 0, "event_size 0"},
        {G_EVENT_SIZE, 1, "event_size 1"},
        {G_EVENT_SIZE, 32, "event_size 32"},
        {G_EVENT_SIZE, 128, "event_size 128"},
        {G_EVENT_SIZE, U32, "event_size max"},
    };
    struct procbus_reader r;
    size_t i;
    (void)state;

    /* preconditions of the cases above: the publisher's tight layout */
    assert_int_equal(h0->record_size, sizeof(struct procbus_proc));
    assert_int_equal(ao, so + (uint64_t)h0->snap_slots * ssz);
    assert_int_equal(ro, ao + (uint64_t)h0->arena_slots * h0->record_size);
    assert_true(ro + (uint64_t)IMG_RING * 64 <= len);
    assert_true(ssz - 64 < PROCBUS_SNAP_BYTES(cap, bk));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *b = fresh();
        int rc;
        set_field(b, cases[i].f, cases[i].v);
        rc = attach(&r, b);
        free(b);
        if (rc != -EBADMSG)
            fail_msg("%s (%llu): attach gave %d, not -EBADMSG", cases[i].what,
                     (unsigned long long)cases[i].v, rc);
    }

    /*
     * One rule broken at a time: the second field makes room, so that no other
     * check (overlap, end of segment) would refuse the header anyway.
     */
    {
        const struct {
            enum gfield f1;
            uint64_t v1;
            enum gfield f2;
            uint64_t v2;
            const char *what;
        } isolated[] = {
            {G_RECORD_SIZE, 385, G_ARENA_SLOTS, cap, "record_size not a multiple of 64"},
            {G_RECORD_SIZE, 392, G_ARENA_SLOTS, cap, "record_size a multiple of 8 only"},
            {G_SNAP_SLOT_SIZE, ssz + 8, G_SNAP_SLOTS, 2, "snap_slot_size not a multiple of 64"},
            {G_SNAP_OFF, so + 8, G_SNAP_SLOTS, 2, "snap_off misaligned"},
            {G_ARENA_OFF, ao + 8, G_ARENA_SLOTS, cap, "arena_off misaligned"},
            {G_RING_OFF, ro + 8, G_RING_CAP, 1, "ring_off misaligned"},
            {G_RING_CAP, IMG_RING - 1, G_RING_CAP, IMG_RING - 1, "ring_capacity 15 (fits)"},
            {G_BUCKETS, bk - 2, G_BUCKETS, bk - 2, "buckets 14 (fits)"},
            {G_CAPACITY, cap * 2, G_BUCKETS, cap * 2, "capacity = buckets (arena and slot fit)"},
            {G_SNAP_SLOTS, 1, G_SNAP_SLOTS, 1, "one snapshot slot"},
            {G_ARENA_SLOTS, cap - 1, G_ARENA_SLOTS, cap - 1, "arena smaller than capacity"},
        };
        for (i = 0; i < sizeof(isolated) / sizeof(isolated[0]); i++) {
            unsigned char *b = fresh();
            int rc;
            set_field(b, isolated[i].f2, isolated[i].v2);
            set_field(b, isolated[i].f1, isolated[i].v1);
            rc = attach(&r, b);
            free(b);
            if (rc != -EBADMSG)
                fail_msg("%s: attach gave %d, not -EBADMSG", isolated[i].what, rc);
        }
        /* ...and the same room made with every rule kept is accepted */
        for (i = 0; i < 3; i++) {
            unsigned char *b = fresh();
            set_field(b,
                      i == 0   ? G_ARENA_SLOTS
                      : i == 1 ? G_SNAP_SLOTS
                               : G_RING_CAP,
                      i == 0   ? cap
                      : i == 1 ? 2
                               : 1);
            assert_int_equal(attach(&r, b), 0);
            free(b);
        }
    }

    /* a whole geometry block of zeros, of 0xff, and of one byte repeated */
    for (i = 0; i < 3; i++) {
        static const int fill[] = {0x00, 0xff, 0x40};
        unsigned char *b = fresh();
        memset(b + 12, fill[i], 128 - 12); /* everything after magic and version */
        assert_int_equal(attach(&r, b), -EBADMSG);
        free(b);
    }

    /* the boundaries that must still be accepted */
    {
        unsigned char *b = fresh();
        H(b)->segment_size = ro + (uint64_t)IMG_RING * 64; /* the ring ends the segment */
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(r.len, H(b)->segment_size);
        free(b);
        b = fresh();
        H(b)->ring_off = len - (uint64_t)IMG_RING * 64; /* the ring moved to the very end */
        assert_int_equal(attach(&r, b), 0);
        free(b);
    }
}

/*
 * Snapshot slots reaching past what the 24-bit offset in `current` can address
 * (1 GiB): refused. Needs a buffer that large; only its header is written.
 */
static void test_snapshots_beyond_current_reach(void **state)
{
    const uint64_t ssz = 1ull << 24, slots = 64;
    const uint64_t ao = 4096 + slots * ssz, ro = ao + IMG_CAP * 2 * 384ull;
    const size_t len = (size_t)(ro + IMG_RING * 64);
    struct procbus_reader r;
    unsigned char *b;
    (void)state;

    assert_true(4096 + slots * ssz > (PROCBUS_CUR_OFF_MASK << 6));
    b = malloc(len);
    if (b == NULL)
        skip();
    memcpy(b, g_img, 4096);
    H(b)->segment_size = len;
    H(b)->snap_slots = (uint32_t)slots;
    H(b)->snap_slot_size = (uint32_t)ssz;
    H(b)->arena_off = ao;
    H(b)->arena_slots = IMG_CAP * 2;
    H(b)->ring_off = ro;
    assert_int_equal(procbus_attach(&r, b, len), -EBADMSG);
    H(b)->snap_slots = (uint32_t)((PROCBUS_CUR_OFF_MASK << 6) - 4096) / (uint32_t)ssz; /* fits */
    assert_int_equal(procbus_attach(&r, b, len), 0);
    free(b);
}

/* ---- the `current` word ---- */

static void test_current_outside(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint64_t gen = PROCBUS_CUR_GEN(h0->current);
    const uint64_t so = h0->snap_off, ssz = h0->snap_slot_size, nslots = h0->snap_slots;
    const uint64_t bad_offs[] = {
        0,                         /* the header */
        64,                        /* inside the header */
        so - 64,                   /* just before the first slot */
        so + 64,                   /* misaligned: inside slot 0 */
        so + ssz - 64,             /* last line of slot 0 */
        so + ssz + 128,            /* inside slot 1 */
        so + nslots * ssz,         /* one past the last slot: the arena */
        h0->ring_off,              /* the ring */
        (g_len + 63) & ~63ull,     /* the end of the segment */
        PROCBUS_CUR_OFF_MASK << 6, /* the farthest `current` can say */
    };
    struct procbus_reader r;
    struct procbus_proc out, list[IMG_CAP];
    size_t i, n;
    (void)state;

    for (i = 0; i < sizeof(bad_offs) / sizeof(bad_offs[0]); i++) {
        unsigned char *b = fresh();
        assert_int_equal(attach(&r, b), 0); /* `current` is read per call, not at attach */
        H(b)->current = PROCBUS_CUR_PACK(gen, bad_offs[i]);
        if (procbus_get_pid(&r, 1002, &out) != -EBADMSG ||
            procbus_get_name(&r, "svc-1", &out) != -EBADMSG ||
            procbus_list(&r, list, IMG_CAP, &n) != -EBADMSG ||
            sec_read(&r, SEC_PID, 1002, NULL, NULL) != -EBADMSG ||
            sec_read(&r, SEC_NAME, 0, "svc-1", NULL) != -EBADMSG ||
            sec_read(&r, SEC_WALK, 0, NULL, NULL) != -EBADMSG)
            fail_msg("current -> offset %llu: not -EBADMSG", (unsigned long long)bad_offs[i]);
        assert_int_equal(procbus_get_pid(&r, 1002, &out), -EBADMSG);
        free(b);
    }
    {
        unsigned char *b = fresh();
        H(b)->current = UINT64_MAX;
        expect_reads(b, -EBADMSG);
        free(b);
    }
}

/* A well-placed `current` whose generation the slot does not hold: the reader
 * takes it for a publisher mid-swap, retries a bounded number of times and
 * gives up with -EAGAIN (no hang). */
static void test_current_generation_mismatch(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    unsigned char *b = fresh();
    struct procbus_reader r;
    struct procbus_proc out;
    uint64_t cur = H(b)->current, gen = PROCBUS_CUR_GEN(cur), off = PROCBUS_CUR_OFF(cur);
    uint32_t t, older = UINT32_MAX;
    (void)state;

    H(b)->current = PROCBUS_CUR_PACK(gen + 1, off);
    expect_reads(b, -EAGAIN);
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_get_pid(&r, 1002, &out), -EAGAIN);
    assert_true(r.retries >= PROCBUS_READ_RETRIES);
    r.retries = 0;
    assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), -EAGAIN);
    assert_true(r.retries >= PROCBUS_READ_RETRIES);
    H(b)->current = cur;
    ((struct procbus_snap *)(void *)(b + off))->gen = 0; /* slot "being rewritten" forever */
    expect_reads(b, -EAGAIN);
    free(b);

    /* pointing at an older slot that does hold the stated generation: old, valid data */
    for (t = 0; t < h0->snap_slots; t++) {
        uint64_t o = h0->snap_off + (uint64_t)t * h0->snap_slot_size;
        uint64_t g = ((const struct procbus_snap *)(const void *)(g_img + o))->gen;
        if (o != off && g != 0 && g < gen)
            older = t;
    }
    assert_true(older != UINT32_MAX);
    b = fresh();
    {
        uint64_t o = h0->snap_off + (uint64_t)older * h0->snap_slot_size;
        uint64_t g = ((struct procbus_snap *)(void *)(b + o))->gen;
        H(b)->current = PROCBUS_CUR_PACK(g, o);
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_get_pid(&r, 1002, &out), 0);
        assert_int_equal(r.last_gen, g);
    }
    free(b);
}

/* ---- snapshot contents ---- */

static void test_snapshot_count(void **state)
{
    static const uint32_t bad[] = {IMG_CAP + 1, IMG_CAP * 2, 0x80000000u, UINT32_MAX};
    struct procbus_reader r;
    struct procbus_proc list[IMG_CAP];
    size_t i, n;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *b = fresh();
        ((struct procbus_snap *)(void *)cur_snap(b))->count = bad[i];
        assert_int_equal(attach(&r, b), 0);
        n = 12345;
        assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), -EBADMSG);
        assert_int_equal(procbus_list(&r, NULL, 0, &n), -EBADMSG); /* even when only asking */
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), -EBADMSG);
        free(b);
    }
    /* count = capacity exactly: the stale tail of `dense` is read, inside the slot */
    {
        unsigned char *b = fresh();
        int rc;
        ((struct procbus_snap *)(void *)cur_snap(b))->count = IMG_CAP;
        assert_int_equal(attach(&r, b), 0);
        rc = procbus_list(&r, list, IMG_CAP, &n);
        assert_true(rc == 0 || rc == -EBADMSG);
        if (rc == 0)
            assert_int_equal(n, IMG_CAP);
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), rc);
        free(b);
    }
}

static void test_dense_slots_out_of_range(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint32_t bad[] = {h0->arena_slots, h0->arena_slots + 1, 0x7fffffffu, UINT32_MAX};
    struct procbus_reader r;
    struct procbus_proc list[IMG_CAP];
    size_t i, n;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *b = fresh();
        dense_of(cur_snap(b))[NLIVE - 1] = bad[i]; /* the last one: after good copies */
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), -EBADMSG);
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), -EBADMSG);
        free(b);
    }
    /* the last arena record: in bounds; a never-written one has size 0 */
    {
        unsigned char *b = fresh();
        int rc;
        dense_of(cur_snap(b))[0] = h0->arena_slots - 1;
        assert_int_equal(attach(&r, b), 0);
        rc = procbus_list(&r, list, IMG_CAP, &n);
        assert_int_equal(rc, rec_at(b, h0->arena_slots - 1)->size == 0 ? -EBADMSG : 0);
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), rc);
        free(b);
    }
}

static void test_bucket_slots_out_of_range(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint64_t slots[] = {h0->arena_slots, h0->arena_slots + 1, 0xfffffffeull,
                              UINT32_MAX /* low word 0: slot -1 */};
    const uint32_t nkey = procbus_name_hash("svc-1", PROCBUS_NAME_LEN);
    struct procbus_reader r;
    struct procbus_proc out;
    size_t i;
    int rc;
    (void)state;

    for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        unsigned char *b = fresh();
        uint64_t *pb = find_bucket(b, pid_tbl(b), 1002), *nb = find_bucket(b, name_tbl(b), nkey);
        *pb = ((uint64_t)1002 << 32) | ((slots[i] + 1) & 0xffffffffu);
        *nb = ((uint64_t)nkey << 32) | ((slots[i] + 1) & 0xffffffffu);
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_get_pid(&r, 1002, &out), -EBADMSG);
        assert_int_equal(procbus_get_name(&r, "svc-1", &out), -EBADMSG);
        assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), -EBADMSG);
        assert_int_equal(sec_read(&r, SEC_NAME, 0, "svc-1", NULL), -EBADMSG);
        /* other keys: found, or refused if their probe passes the bad bucket */
        rc = procbus_get_name(&r, "svc-3", &out);
        assert_true(rc == 0 || rc == -EBADMSG);
        assert_int_equal(sec_read(&r, SEC_NAME, 0, "svc-3", NULL), rc);
        free(b);
    }
    /* a bucket that names a valid slot holding another process: not a match */
    {
        unsigned char *b = fresh();
        uint64_t *pb = find_bucket(b, pid_tbl(b), 1002);
        *pb = PROCBUS_BUCKET(1002, slot_of_id(b, 4));
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_get_pid(&r, 1002, &out), -ENOENT);
        assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), -ENOENT);
        free(b);
    }
}

static void test_record_size_field(void **state)
{
    const uint32_t bad[] = {0,
                            1,
                            64,
                            PROCBUS_PROC_MIN_SIZE - 1,
                            PROCBUS_PROC_MIN_SIZE + 1,
                            PROCBUS_PROC_MIN_SIZE + 64,
                            0x80000000u,
                            UINT32_MAX};
    struct procbus_reader r;
    struct procbus_proc out, list[IMG_CAP];
    size_t i, n;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *b = fresh();
        rec_at(b, slot_of_id(b, 2))->size = bad[i]; /* svc-1, pid 1002 */
        expect_reads(b, -EBADMSG);
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_get_pid(&r, 1003, &out), 0); /* a neighbour still reads */
        assert_int_equal(sec_read(&r, SEC_PID, 1003, NULL, NULL), 0);
        free(b);
    }
    /* a record of another pid with a bad size is not read by a lookup of 1002 */
    {
        unsigned char *b = fresh();
        rec_at(b, slot_of_id(b, 3))->size = 0;
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_get_pid(&r, 1002, &out), 0);
        assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), -EBADMSG);
        assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), 0);
        assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), -EBADMSG);
        free(b);
    }
}

/*
 * A newer minor version with bigger records (stride 448, size 448): the reader
 * copies the v1 prefix and skips the rest; a size over the stride is refused.
 * The image is re-laid out by hand: same snapshots, arena with the new stride.
 */
static void test_larger_records_newer_minor(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint32_t stride = 448;
    uint64_t ao = h0->arena_off, ro = ao + (uint64_t)h0->arena_slots * stride;
    size_t len = ro + (size_t)h0->ring_capacity * 64, i;
    unsigned char *b = calloc(1, len);
    struct procbus_reader r;
    struct procbus_proc out, want;
    (void)state;

    assert_non_null(b);
    memcpy(b, g_img, ao);
    for (i = 0; i < h0->arena_slots; i++) {
        unsigned char *dst = b + ao + i * stride;
        memcpy(dst, g_img + ao + i * h0->record_size, sizeof(struct procbus_proc));
        memset(dst + sizeof(struct procbus_proc), 0xab, stride - sizeof(struct procbus_proc));
        if (((struct procbus_proc *)(void *)dst)->size != 0)
            ((struct procbus_proc *)(void *)dst)->size = stride;
    }
    memcpy(b + ro, g_img + h0->ring_off, (size_t)h0->ring_capacity * 64);
    H(b)->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR, PROCBUS_ABI_MINOR + 1);
    H(b)->record_size = stride;
    H(b)->ring_off = ro;
    H(b)->segment_size = len;

    assert_int_equal(procbus_attach(&r, b, len), 0);
    assert_int_equal(procbus_get_name(&r, "svc-2", &out), 0);
    assert_int_equal(out.size, stride);
    assert_int_equal(out.pid, 1003);
    memcpy(&want, g_img + ao + (uint64_t)slot_of_id(b, 3) * h0->record_size, sizeof(want));
    want.size = stride;
    assert_memory_equal(&out, &want, sizeof(out));

    ((struct procbus_proc *)(void *)(b + ao + (uint64_t)slot_of_id(b, 3) * stride))->size =
        stride - 32; /* between the v1 size and the stride: fine */
    assert_int_equal(procbus_get_pid(&r, 1003, &out), 0);
    ((struct procbus_proc *)(void *)(b + ao + (uint64_t)slot_of_id(b, 3) * stride))->size =
        stride + 64;
    assert_int_equal(procbus_get_pid(&r, 1003, &out), -EBADMSG);
    free(b);
}

/* ---- hash tables with no empty bucket: lookups must still terminate ---- */

static void test_full_hash_tables(void **state)
{
    const struct procbus_header *h0 = (const struct procbus_header *)(const void *)g_img;
    const uint32_t bk = h0->hash_buckets, nkey = procbus_name_hash("svc-1", PROCBUS_NAME_LEN);
    struct procbus_reader r;
    struct procbus_proc out;
    uint32_t i, s2;
    unsigned char *b = fresh();
    uint64_t *pt = pid_tbl(b), *nt = name_tbl(b);
    (void)state;

    /* every bucket taken by keys nobody asks for */
    for (i = 0; i < bk; i++) {
        pt[i] = PROCBUS_BUCKET(0x7ffffff0u + (i & 7), 0);
        nt[i] = PROCBUS_BUCKET(nkey ^ 0x5a5a5a5au ^ i, 0);
    }
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_get_pid(&r, 1002, &out), -ENOENT);
    assert_int_equal(procbus_get_pid(&r, 1, &out), -ENOENT);
    assert_int_equal(procbus_get_pid(&r, INT32_MAX, &out), -ENOENT);
    assert_int_equal(procbus_get_name(&r, "svc-1", &out), -ENOENT);
    assert_int_equal(procbus_get_name(&r, "nobody", &out), -ENOENT);
    assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), -ENOENT);
    assert_int_equal(sec_read(&r, SEC_PID, INT32_MAX, NULL, NULL), -ENOENT);
    assert_int_equal(sec_read(&r, SEC_NAME, 0, "svc-1", NULL), -ENOENT);

    /* every bucket carries the asked key, pointing at records of other pids/names */
    s2 = slot_of_id(b, 4);
    for (i = 0; i < bk; i++) {
        pt[i] = PROCBUS_BUCKET(1002, s2);
        nt[i] = PROCBUS_BUCKET(nkey, s2);
    }
    assert_int_equal(procbus_get_pid(&r, 1002, &out), -ENOENT);
    assert_int_equal(procbus_get_name(&r, "svc-1", &out), -ENOENT);
    assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), -ENOENT);
    assert_int_equal(sec_read(&r, SEC_NAME, 0, "svc-1", NULL), -ENOENT);

    /* full, with the right entry in the bucket just before home (the last probed) */
    memcpy(b, g_img, g_len);
    pt = pid_tbl(b);
    s2 = slot_of_id(b, 2);
    for (i = 0; i < bk; i++)
        pt[i] = PROCBUS_BUCKET(0x7ffffff0u, 0);
    pt[(procbus_key_home(1002, bk - 1) + bk - 1) & (bk - 1)] = PROCBUS_BUCKET(1002, s2);
    assert_int_equal(procbus_get_pid(&r, 1002, &out), 0);
    assert_int_equal(out.id, 2);
    assert_int_equal(sec_read(&r, SEC_PID, 1002, NULL, NULL), 0);
    free(b);
}

/* ---- the event ring ---- */

/* Pull events until one call does not return 0; fail if more than `limit` came. */
static int drain(struct procbus_reader *r, unsigned limit, unsigned *got, uint64_t *missed)
{
    struct procbus_event ev;
    int rc;

    *got = 0;
    while ((rc = procbus_next_event(r, &ev, missed)) == 0) {
        assert_int_equal(ev.seq + 1, r->cursor);
        assert_true(strnlen(ev.name, sizeof(ev.name)) < sizeof(ev.name));
        if (++*got > limit)
            fail_msg("more than %u events from a %u-entry ring", limit, r->ring_cap);
    }
    return rc;
}

static void test_ring_wrong_seqs(void **state)
{
    unsigned char *b;
    struct procbus_reader r;
    struct procbus_event *ring;
    uint64_t missed, head = ((const struct procbus_header *)(const void *)g_img)->ring_head;
    unsigned got, i;
    (void)state;

    /* every entry busy: all skipped, counted missed, then "no new event" */
    b = fresh();
    ring = ring_of(b);
    for (i = 0; i < IMG_RING; i++)
        ring[i].seq = PROCBUS_SEQ_BUSY;
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -ENOENT);
    assert_int_equal(got, 0);
    assert_int_equal(missed, IMG_RING);
    assert_int_equal(r.cursor, head);
    free(b);

    /* every entry from a later lap than the head admits: skipped the same way */
    b = fresh();
    ring = ring_of(b);
    for (i = 0; i < IMG_RING; i++)
        ring[i].seq += IMG_RING;
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -ENOENT);
    assert_int_equal(got, 0);
    assert_int_equal(missed, IMG_RING);
    free(b);

    /* one entry older than the head passed: an error, and no event invented */
    b = fresh();
    ring = ring_of(b);
    ring[(head - 3) & (IMG_RING - 1)].seq -= IMG_RING;
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -EBADMSG);
    assert_int_equal(got, IMG_RING - 3);
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -EBADMSG); /* stays put */
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_NOW), 0); /* the way out */
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -ENOENT);
    free(b);

    /* event names without a terminator are copied out terminated */
    b = fresh();
    ring = ring_of(b);
    for (i = 0; i < IMG_RING; i++)
        memset(ring[i].name, 'E', sizeof(ring[i].name));
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    {
        struct procbus_event ev;
        assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
        assert_int_equal(strlen(ev.name), PROCBUS_COMM_LEN - 1);
    }
    free(b);
}

static void test_ring_head_extremes(void **state)
{
    const uint64_t head = ((const struct procbus_header *)(const void *)g_img)->ring_head;
    const uint64_t first = ((const struct procbus_header *)(const void *)g_img)->ring_first;
    const uint64_t heads[] = {0,
                              1,
                              first,
                              head - 1,
                              head + 1,
                              head + IMG_RING,
                              head + 1000000,
                              UINT64_MAX / 2,
                              UINT64_MAX - 1,
                              UINT64_MAX};
    struct procbus_reader r;
    uint64_t missed;
    unsigned got;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        unsigned char *b;
        int rc;

        /* corrupt before attach: the cursor starts there */
        b = fresh();
        H(b)->ring_head = heads[i];
        assert_int_equal(attach(&r, b), 0);
        rc = drain(&r, IMG_RING, &got, &missed);
        assert_true(rc == -ENOENT || rc == -EBADMSG || rc == -EAGAIN);
        assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
        rc = drain(&r, IMG_RING, &got, &missed);
        assert_true(rc == -ENOENT || rc == -EBADMSG || rc == -EAGAIN);
        free(b);

        /* corrupt after attach: a head that jumps or goes backwards under the reader */
        b = fresh();
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
        H(b)->ring_head = heads[i];
        rc = drain(&r, IMG_RING, &got, &missed);
        assert_true(rc == -ENOENT || rc == -EBADMSG || rc == -EAGAIN);
        if (heads[i] <= head && heads[i] >= head - IMG_RING) {
            /* a head moved back inside the held window: the events before it, then none */
            assert_int_equal(rc, -ENOENT);
            assert_int_equal(r.cursor, heads[i]);
        }
        if (heads[i] > head + IMG_RING)
            assert_int_equal(rc, -EBADMSG); /* entries older than the head implies */
        free(b);
    }
    /* ring_first beyond the head */
    {
        unsigned char *b = fresh();
        int rc;
        H(b)->ring_first = head + 100;
        assert_int_equal(attach(&r, b), 0);
        assert_int_equal(drain(&r, IMG_RING, &got, &missed), -ENOENT);
        assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
        rc = drain(&r, IMG_RING, &got, &missed);
        assert_true(rc == -ENOENT || rc == -EBADMSG || rc == -EAGAIN);
        free(b);
    }
}

/*
 * A reader lapped many times over by a (consistent) publisher: the head moved
 * by 100 rings and every entry holds its newest sequence. The next event is
 * the oldest still held, and `missed` says exactly how many were lost.
 */
static void test_ring_lapped_far(void **state)
{
    unsigned char *b = fresh();
    struct procbus_reader r;
    struct procbus_event ev, *ring = ring_of(b);
    uint64_t missed = 0, start, head;
    unsigned i, got;
    (void)state;

    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    start = r.cursor;
    head = H(b)->ring_head + 100 * IMG_RING + 5;
    for (i = 0; i < IMG_RING; i++) {
        uint64_t seq = head - IMG_RING + i;
        ring[seq & (IMG_RING - 1)].seq = seq;
    }
    H(b)->ring_head = head;
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.seq, head - IMG_RING);
    assert_int_equal(missed, head - IMG_RING - start);
    assert_int_equal(drain(&r, IMG_RING, &got, &missed), -ENOENT);
    assert_int_equal(got, IMG_RING - 1);
    assert_int_equal(r.cursor, head);
    free(b);
}

/*
 * A ring bigger than the retry budget, every entry busy: one call gives up
 * with -EAGAIN after PROCBUS_READ_RETRIES skips (bounded work per call), and
 * the next calls continue from there (no reader stuck forever).
 */
static void test_ring_all_busy_large(void **state)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_reader r;
    struct procbus_proc rec;
    struct procbus_event ev, *ring;
    unsigned char *b = NULL;
    size_t len = 0;
    uint64_t missed;
    char name[64], path[128];
    int i, rc, calls;
    (void)state;

    o.segment = pbt_name(name);
    o.capacity = 4;
    o.snap_slots = 2;
    o.ring_capacity = 256;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    pbt_fill(&rec, 1, 42, "busy", PROCBUS_STATE_RUNNING);
    rc = procbus_pub_upsert(p, &rec);
    for (i = 0; i < 300; i++)
        rc |= procbus_pub_event(p, PROCBUS_EV_EXEC, &rec);
    rc |= procbus_pub_commit(p);
    if (rc == 0)
        rc = read_file(pbt_path(name, path), &b, &len);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    assert_int_equal(rc, 0);
    assert_true(H(b)->ring_head - H(b)->ring_first > 256);

    ring = (struct procbus_event *)(void *)(b + H(b)->ring_off);
    for (i = 0; i < 256; i++)
        ring[i].seq = PROCBUS_SEQ_BUSY;
    assert_int_equal(procbus_attach(&r, b, len), 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    /* each call gives up after PROCBUS_READ_RETRIES skips but keeps its progress, so
     * repeated calls get through, and every skipped entry is reported exactly once */
    for (calls = 0; calls < 8; calls++) {
        rc = procbus_next_event(&r, &ev, &missed);
        assert_true(rc == -EAGAIN || rc == -ENOENT);
        if (rc == -ENOENT)
            break;
    }
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(missed, 256);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);
    assert_int_equal(missed, 0);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_NOW), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);
    free(b);
}

/* ---- strings ---- */

static void test_unterminated_strings(void **state)
{
    unsigned char *b = fresh();
    struct procbus_reader r;
    struct procbus_proc out, list[IMG_CAP];
    struct procbus_proc *src = NULL;
    size_t n, i;
    (void)state;

    for (i = 0; i < NLIVE; i++) {
        src = rec_at(b, dense_of(cur_snap(b))[i]);
        memset(src->name, 'N', sizeof(src->name));
        memset(src->comm, 'C', sizeof(src->comm));
        memset(src->cmdline, 'A', sizeof(src->cmdline));
        src->cmdline_len = i % 2 ? UINT32_MAX : PROCBUS_CMDLINE_LEN + 1;
    }
    assert_int_equal(attach(&r, b), 0);
    assert_int_equal(procbus_get_pid(&r, 1002, &out), 0);
    assert_int_equal(strlen(out.name), PROCBUS_NAME_LEN - 1);
    assert_int_equal(strlen(out.comm), PROCBUS_COMM_LEN - 1);
    assert_int_equal(out.cmdline_len, PROCBUS_CMDLINE_LEN);
    assert_int_equal(sec_read(&r, SEC_WALK, 0, NULL, NULL), 0); /* check_ptr: clamped */
    {
        struct procbus_section s;
        const struct procbus_proc *p;
        char nm[PROCBUS_NAME_LEN + 8], cmd[PROCBUS_CMDLINE_LEN + 8];
        size_t ln = 0, lc = 0;
        int rc;
        procbus_section_begin(&r, &s);
        do {
            p = procbus_section_pid(&s, 1002);
            if (p != NULL) {
                ln = procbus_rec_name(p, nm, sizeof(nm));
                lc = procbus_rec_cmdline(p, cmd, sizeof(cmd));
            }
        } while ((rc = procbus_section_retry(&s)) > 0);
        assert_int_equal(rc, 0);
        assert_int_equal(ln, PROCBUS_NAME_LEN - 1);
        assert_int_equal(strlen(nm), PROCBUS_NAME_LEN - 1);
        assert_int_equal(lc, PROCBUS_CMDLINE_LEN);
    }
    assert_int_equal(procbus_list(&r, list, IMG_CAP, &n), 0);
    assert_int_equal(n, NLIVE);
    for (i = 0; i < n; i++) {
        assert_int_equal(strlen(list[i].name), PROCBUS_NAME_LEN - 1);
        assert_int_equal(strlen(list[i].comm), PROCBUS_COMM_LEN - 1);
        assert_true(list[i].cmdline_len <= PROCBUS_CMDLINE_LEN);
    }
    /* the by-name index still points at them; a 63-char probe must not overread */
    memset(out.name, 'N', PROCBUS_NAME_LEN - 1);
    out.name[PROCBUS_NAME_LEN - 1] = '\0';
    {
        char probe[PROCBUS_NAME_LEN];
        int rc;
        memcpy(probe, out.name, sizeof(probe));
        rc = procbus_get_name(&r, probe, &out);
        assert_true(rc == 0 || rc == -ENOENT);
    }
    free(b);
}

/* ---- random byte flips ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#define CHECK(seed, cond)                                               \
    do {                                                                \
        if (!(cond))                                                    \
            fail_msg("seed %u: %s (line %d)", (seed), #cond, __LINE__); \
    } while (0)

static void check_rec(unsigned seed, const struct procbus_reader *r, const struct procbus_proc *p)
{
    CHECK(seed, strnlen(p->name, PROCBUS_NAME_LEN) < PROCBUS_NAME_LEN);
    CHECK(seed, strnlen(p->comm, PROCBUS_COMM_LEN) < PROCBUS_COMM_LEN);
    CHECK(seed, p->cmdline_len <= PROCBUS_CMDLINE_LEN);
    CHECK(seed, p->size >= PROCBUS_PROC_MIN_SIZE && p->size <= r->record_size);
}

/* What the random runs saw, so that a run that never reaches the readers fails. */
static struct {
    unsigned attached, attach_err, ok, enoent, ebadmsg, eagain, events;
} g_seen;

static void count_rc(int rc)
{
    if (rc == 0)
        g_seen.ok++;
    else if (rc == -ENOENT)
        g_seen.enoent++;
    else if (rc == -EBADMSG)
        g_seen.ebadmsg++;
    else if (rc == -EAGAIN)
        g_seen.eagain++;
}

static int lookup_rc_ok(int rc)
{
    return rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EBADMSG;
}

/* Every read the API offers, against whatever `b` holds; only documented outcomes. */
static void exercise(unsigned seed, const unsigned char *b, size_t len, uint64_t *rs)
{
    static struct procbus_proc list[IMG_CAP * 4];
    struct procbus_reader r;
    struct procbus_proc out;
    struct procbus_event ev;
    struct procbus_info info = {0};
    uint64_t missed;
    size_t n, i;
    int rc, pass, calls;
    char nm[PROCBUS_NAME_LEN];

    rc = procbus_attach(&r, b, len);
    CHECK(seed, rc == 0 || rc == -EPROTO || rc == -EBADMSG || rc == -EINPROGRESS);
    if (rc != 0) {
        g_seen.attach_err++;
        return;
    }
    g_seen.attached++;
    CHECK(seed, r.len <= len && r.capacity > 0);
    for (i = 0; i < NLIVE; i++) {
        rc = procbus_get_pid(&r, g_live[i].pid, &out);
        count_rc(rc);
        CHECK(seed, lookup_rc_ok(rc));
        if (rc == 0) {
            check_rec(seed, &r, &out);
            CHECK(seed, out.pid == g_live[i].pid);
        }
        rc = procbus_get_name(&r, g_live[i].name, &out);
        count_rc(rc);
        CHECK(seed, lookup_rc_ok(rc));
        if (rc == 0) {
            check_rec(seed, &r, &out);
            CHECK(seed, strcmp(out.name, g_live[i].name) == 0);
        }
    }
    /* the zero-copy section: the codes the copying calls gave, pointers in the arena */
    for (i = 0; i < NLIVE; i++) {
        rc = sec_read(&r, SEC_PID, g_live[i].pid, NULL, NULL);
        count_rc(rc);
        CHECK(seed, lookup_rc_ok(rc));
        CHECK(seed, rc == procbus_get_pid(&r, g_live[i].pid, &out));
        rc = sec_read(&r, SEC_NAME, 0, g_live[i].name, NULL);
        count_rc(rc);
        CHECK(seed, lookup_rc_ok(rc));
        CHECK(seed, rc == procbus_get_name(&r, g_live[i].name, &out));
    }
    {
        uint32_t walked = 0;
        rc = sec_read(&r, SEC_WALK, 0, NULL, &walked);
        count_rc(rc);
        CHECK(seed, rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
        if (rc == 0)
            CHECK(seed, walked <= r.capacity);
        if (rc == 0 && walked <= sizeof(list) / sizeof(list[0]))
            CHECK(seed,
                  procbus_list(&r, list, sizeof(list) / sizeof(list[0]), &n) == 0 && n == walked);
    }
    rc = procbus_get_pid(&r, (int32_t)(rng_next(rs) & 0x7fffffff) + 1, &out);
    CHECK(seed, lookup_rc_ok(rc));
    snprintf(nm, sizeof(nm), "r%llx", (unsigned long long)rng_next(rs));
    CHECK(seed, lookup_rc_ok(procbus_get_name(&r, nm, &out)));

    rc = procbus_list(&r, list, sizeof(list) / sizeof(list[0]), &n);
    count_rc(rc);
    CHECK(seed, lookup_rc_ok(rc) || rc == -ENOSPC);
    CHECK(seed, rc != -ENOENT);
    if (rc == 0 || rc == -ENOSPC)
        CHECK(seed, n <= r.capacity);
    if (rc == -ENOSPC)
        CHECK(seed, n > sizeof(list) / sizeof(list[0]));
    if (rc == 0)
        for (i = 0; i < n; i++)
            check_rec(seed, &r, &list[i]);
    rc = procbus_list(&r, NULL, 0, &n);
    CHECK(seed, rc == -ENOSPC || rc == 0 || rc == -EAGAIN || rc == -EBADMSG);

    for (pass = 0; pass < 3; pass++) {
        if (pass == 1)
            CHECK(seed, procbus_seek_events(&r, PROCBUS_SEEK_OLDEST) == 0);
        if (pass == 2) /* a cursor carried over from another segment (procbus_follow) */
            r.cursor = rng_next(rs) % 4 == 0 ? rng_next(rs) : r.cursor - rng_next(rs) % 100;
        for (calls = 0; calls <= (int)r.ring_cap + 1; calls++) {
            uint64_t before = r.cursor;
            rc = procbus_next_event(&r, &ev, &missed);
            CHECK(seed, rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EBADMSG);
            if (rc != 0)
                break;
            g_seen.events++;
            CHECK(seed, ev.seq + 1 == r.cursor);
            CHECK(seed, strnlen(ev.name, sizeof(ev.name)) < sizeof(ev.name));
            CHECK(seed, ev.seq >= before ? missed == ev.seq - before : missed == 0);
        }
        CHECK(seed, calls <= (int)r.ring_cap); /* a ring yields at most ring_cap in a row */
    }
    CHECK(seed, procbus_info(&r, &info) == 0);
    CHECK(seed, info.capacity == r.capacity && info.ring_capacity == r.ring_cap);
    (void)procbus_generation(&r);
    rc = procbus_liveness(&r, 1000000000ull);
    CHECK(seed, rc >= PROCBUS_ALIVE && rc <= PROCBUS_GONE);
    procbus_close(&r);
}

/* Where a flip lands: biased towards the header's geometry and hot words, the
 * current snapshot slot and the records it points at. */
static size_t flip_pos(uint64_t *rs, const unsigned char *img, size_t len)
{
    const struct procbus_header *h = (const struct procbus_header *)(const void *)img;
    uint64_t cur_off = PROCBUS_CUR_OFF(h->current), x = rng_next(rs) % 100, v = rng_next(rs);

    if (x < 20)
        return (size_t)(v % 128); /* identity and geometry */
    if (x < 40)
        return (size_t)(128 + v % 32); /* current, generation, ring_head, futex */
    if (x < 60)
        return (size_t)(cur_off + v % h->snap_slot_size);
    if (x < 75)
        return (size_t)(h->arena_off + v % ((uint64_t)h->arena_slots * h->record_size));
    if (x < 85)
        return (size_t)(h->ring_off + v % ((uint64_t)h->ring_capacity * 64));
    return (size_t)(v % len);
}

static void test_random_flips(void **state)
{
    const unsigned seeds = (unsigned)(3000 * pbt_scale());
    unsigned seed;
    (void)state;

    for (seed = 1; seed <= seeds; seed++) {
        uint64_t rs = 0x9E3779B97F4A7C15ull * seed, m = rng_next(&rs) % 100;
        size_t len = g_len, nflips = 1 + rng_next(&rs) % 16, i;
        unsigned char *b;

        if (m < 8) /* sometimes a short buffer as well */
            len = (size_t)(rng_next(&rs) % g_len);
        b = malloc(len ? len : 1);
        assert_non_null(b);
        memcpy(b, g_img, len);
        for (i = 0; i < nflips; i++) {
            size_t pos = flip_pos(&rs, g_img, g_len);
            if (pos >= len)
                continue;
            if (rng_next(&rs) % 8 == 0 && (pos & ~(size_t)3) + 4 <= len) {
                /* a whole aligned word at an extreme value */
                static const uint32_t extremes[] = {0, 1, 0x7fffffffu, 0x80000000u, UINT32_MAX};
                uint32_t v = extremes[rng_next(&rs) % 5];
                memcpy(b + (pos & ~(size_t)3), &v, sizeof(v));
            } else {
                b[pos] ^= (unsigned char)(1 + rng_next(&rs) % 255);
            }
        }
        exercise(seed, b, len, &rs);
        free(b);
    }
    printf("random flips: %u seeds, %u attached (%u refused); reads: %u ok, %u ENOENT, "
           "%u EBADMSG, %u EAGAIN; %u events\n",
           seeds, g_seen.attached, g_seen.attach_err, g_seen.ok, g_seen.enoent, g_seen.ebadmsg,
           g_seen.eagain, g_seen.events);
    /* the mutations must reach the read paths, not only the header check */
    assert_true(g_seen.attached >= seeds / 4);
    assert_true(g_seen.ok > 0 && g_seen.ebadmsg > 0 && g_seen.events > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pristine_image),
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_short_buffers),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_geometry_extremes),
        cmocka_unit_test(test_snapshots_beyond_current_reach),
        cmocka_unit_test(test_current_outside),
        cmocka_unit_test(test_current_generation_mismatch),
        cmocka_unit_test(test_snapshot_count),
        cmocka_unit_test(test_dense_slots_out_of_range),
        cmocka_unit_test(test_bucket_slots_out_of_range),
        cmocka_unit_test(test_record_size_field),
        cmocka_unit_test(test_larger_records_newer_minor),
        cmocka_unit_test(test_full_hash_tables),
        cmocka_unit_test(test_ring_wrong_seqs),
        cmocka_unit_test(test_ring_head_extremes),
        cmocka_unit_test(test_ring_lapped_far),
        cmocka_unit_test(test_ring_all_busy_large),
        cmocka_unit_test(test_unterminated_strings),
        cmocka_unit_test(test_random_flips),
    };
    /* hang guard: every loop in the reader is bounded, so this never fires unless
     * one is not (the run then dies with SIGALRM and counts as failed) */
    alarm(600);
    return cmocka_run_group_tests_name("hostile", tests, build_image, free_image);
}
