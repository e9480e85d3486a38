/* test_abi.c - the segment layout: geometry, header contents after creation, encodings. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "segment.h"
#include "support.h"

static void test_geometry(void **state)
{
    static const uint32_t caps[] = {1, 2, 7, 100, 4096, 10000, 100000};
    (void)state;

    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        struct pb_geometry g = {0};
        g.capacity = caps[i];
        g.arena_slots = caps[i] * 2;
        g.snap_slots = 8;
        g.ring_capacity = 1024;
        assert_int_equal(pb_segment_layout(&g), 0);
        /* buckets: a power of two, load factor at most 1/4 (these all fit), not over 1/8 */
        assert_true(g.buckets >= 4 * g.capacity && g.buckets < 8 * g.capacity &&
                    (g.buckets & (g.buckets - 1)) == 0);
        assert_int_equal(g.snap_off % 64, 0);
        assert_int_equal(g.arena_off % 64, 0);
        assert_int_equal(g.ring_off % 64, 0);
        assert_int_equal(g.snap_slot_size % 64, 0);
        assert_true(g.snap_slot_size >= PROCBUS_SNAP_BYTES(g.capacity, g.buckets));
        assert_true(g.snap_off >= PROCBUS_HEADER_SIZE);
        assert_true(g.snap_off + (uint64_t)g.snap_slots * g.snap_slot_size <= g.arena_off);
        assert_true(g.arena_off + (uint64_t)g.arena_slots * sizeof(struct procbus_proc) <=
                    g.ring_off);
        assert_true(g.ring_off + (uint64_t)g.ring_capacity * sizeof(struct procbus_event) <=
                    g.size);
        assert_int_equal(g.size % 4096, 0);
    }
    {
        /* 2^21 records: 4 x (2^23 buckets) in 8 slots passes the 1 GiB `current` can address,
         * so the index falls back to 2 x; in 2 slots 4 x fits */
        struct pb_geometry g = {
            .capacity = 1u << 21, .arena_slots = 1u << 22, .snap_slots = 8, .ring_capacity = 16};
        assert_int_equal(pb_segment_layout(&g), 0);
        assert_int_equal(g.buckets, 1u << 22);
        g.buckets = 0;
        g.snap_slots = 2;
        assert_int_equal(pb_segment_layout(&g), 0);
        assert_int_equal(g.buckets, 1u << 23);
        /* the ABI's most records: 2 x is also the ABI's most buckets */
        g.capacity = PROCBUS_MAX_CAPACITY;
        g.arena_slots = PROCBUS_MAX_CAPACITY;
        g.buckets = 0;
        assert_int_equal(pb_segment_layout(&g), 0);
        assert_int_equal(g.buckets, 2 * PROCBUS_MAX_CAPACITY);
        g.snap_slots = 8; /* neither fits */
        g.buckets = 0;
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
    }
    {
        /* a taken-over segment's own count is kept (an older build laid out 2 x), if legal */
        struct pb_geometry g = {
            .capacity = 1000, .arena_slots = 2000, .snap_slots = 8, .ring_capacity = 16};
        g.buckets = 2048;
        assert_int_equal(pb_segment_layout(&g), 0);
        assert_int_equal(g.buckets, 2048);
        assert_true(g.snap_slot_size >= PROCBUS_SNAP_BYTES(1000, 2048));
        g.buckets = 1024; /* load factor over 1/2 */
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
        g.buckets = 3000; /* not a power of two */
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
        g.buckets = 1u << 24; /* over the ABI's limit */
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
    }
    {
        struct pb_geometry g = {
            .capacity = 0, .arena_slots = 1, .snap_slots = 8, .ring_capacity = 16};
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
        g.capacity = 4;
        g.snap_slots = 1;
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
        g.snap_slots = 2;
        g.ring_capacity = 100; /* not a power of two */
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
        g.ring_capacity = 128;
        g.arena_slots = 3; /* fewer than capacity */
        assert_int_equal(pb_segment_layout(&g), -EINVAL);
    }
}

static void test_header_after_create(void **state)
{
    char name[64], path[128];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 100, 4);
    struct procbus_header h;
    struct stat st;
    int fd;
    (void)state;

    fd = open(pbt_path(name, path), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, &h, sizeof(h)), sizeof(h));
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    assert_memory_equal(&h.magic, "PROCBUS", 8);
    assert_int_equal(h.version >> 16, PROCBUS_ABI_MAJOR);
    assert_int_equal(h.version & 0xffff, PROCBUS_ABI_MINOR);
    assert_int_equal(h.header_size, PROCBUS_HEADER_SIZE);
    assert_int_equal(h.segment_size, (uint64_t)st.st_size);
    assert_int_equal(h.publisher_pid, getpid());
    assert_true(h.publisher_start_ns > 0);
    assert_int_equal(h.epoch, 1);
    assert_int_equal(h.record_size, sizeof(struct procbus_proc));
    assert_int_equal(h.record_capacity, 100);
    assert_int_equal(h.arena_slots, 200);
    assert_int_equal(h.snap_slots, 4);
    assert_int_equal(h.event_size, sizeof(struct procbus_event));
    assert_int_equal(h.ring_first, 0);
    assert_int_equal(h.ring_head, 1); /* the epoch event */
    assert_int_equal(PROCBUS_CUR_GEN(h.current), h.generation & PROCBUS_CUR_GEN_MASK);
    assert_true(PROCBUS_CUR_OFF(h.current) >= h.snap_off);
    assert_true(h.heartbeat_ns > 0 && h.heartbeat_ns < PROCBUS_HB_GONE);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_current_word(void **state)
{
    uint64_t gens[] = {1, 2, 0xffffffffffULL, 0x10000000001ULL};
    uint64_t offs[] = {4096, 64 * 1000, (PROCBUS_CUR_OFF_MASK) << 6};
    (void)state;

    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++) {
            uint64_t c = PROCBUS_CUR_PACK(gens[i], offs[j]);
            assert_int_equal(PROCBUS_CUR_OFF(c), offs[j]);
            assert_int_equal(PROCBUS_CUR_GEN(c), gens[i] & PROCBUS_CUR_GEN_MASK);
        }
    assert_int_equal(PROCBUS_BUCKET_SLOT(PROCBUS_BUCKET(77, 0)), 0);
    assert_int_equal(PROCBUS_BUCKET_KEY(PROCBUS_BUCKET(0xdeadbeef, 5)), 0xdeadbeef);
    assert_true(PROCBUS_BUCKET(0, 0) != 0); /* slot 0 with key 0 is not "empty" */
    assert_int_equal(procbus_name_hash("abc", 2), procbus_name_hash("ab", 64));
}

/* A later minor version appends fields: a v1.0 reader copies its part and ignores the rest. */
static void test_larger_record_accepted(void **state)
{
    struct procbus_reader r;
    unsigned char src[448];
    struct procbus_proc out;
    (void)state;

    memset(&r, 0, sizeof(r));
    r.record_size = 448;
    memset(src, 0x41, sizeof(src));
    ((struct procbus_proc *)(void *)src)->size = 448;
    assert_int_equal(procbus__copy(&r, (const struct procbus_proc *)(const void *)src, &out), 0);
    assert_int_equal(out.size, 448);
    assert_int_equal(out.name[PROCBUS_NAME_LEN - 1], 0);
    ((struct procbus_proc *)(void *)src)->size = 449; /* larger than the stride */
    assert_int_equal(procbus__copy(&r, (const struct procbus_proc *)(const void *)src, &out),
                     -EBADMSG);
    ((struct procbus_proc *)(void *)src)->size = 100; /* smaller than v1.0 */
    assert_int_equal(procbus__copy(&r, (const struct procbus_proc *)(const void *)src, &out),
                     -EBADMSG);
}

static void test_reader_argument_errors(void **state)
{
    char name[64], longname[400];
    struct procbus_reader r;
    struct procbus_proc out;
    size_t n;
    int fd;
    (void)state;

    assert_int_equal(procbus_open(NULL, "x"), -EINVAL);
    assert_int_equal(procbus_open(&r, pbt_name(name)), -ENOENT);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(procbus_open(&r, longname), -ENAMETOOLONG);
    assert_int_equal(procbus_open(&r, "/"), -EISDIR); /* a directory: said so (issue 11) */
    {
        struct procbus_pub *p = pbt_pub(pbt_name(name), 4, 0); /* makes the names' folder */
        char path[128];
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
        fd = open(pbt_path("pbt-empty-file", path), O_CREAT | O_WRONLY | O_TRUNC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(procbus_open(&r, "pbt-empty-file"), -EPROTO);
        unlink(path);
    }

    memset(&r, 0, sizeof(r));
    assert_int_equal(procbus_get_pid(&r, 1, &out), -EINVAL);
    assert_int_equal(procbus_get_pid(NULL, 1, &out), -EINVAL);
    assert_int_equal(procbus_get_name(&r, "a", &out), -EINVAL);
    assert_int_equal(procbus_get_name(&r, NULL, &out), -EINVAL);
    assert_int_equal(procbus_list(&r, &out, 1, &n), -EINVAL);
    assert_int_equal(procbus_liveness(&r, 1), -EINVAL);
    assert_int_equal(procbus_info(&r, NULL), -EINVAL);
    assert_int_equal(procbus_follow(&r), -EINVAL);
    assert_int_equal(procbus_generation(&r), 0);
    procbus_close(&r);
    procbus_close(&r);
    procbus_close(NULL);
    assert_int_equal(procbus_attach(&r, NULL, 0), -EPROTO);

    {
        struct procbus_pub *p = pbt_pub(pbt_name(name), 4, 0);
        assert_int_equal(procbus_open(&r, name), 0);
        assert_int_equal(procbus_get_pid(&r, 0, &out), -ENOENT);
        assert_int_equal(procbus_get_pid(&r, -5, &out), -ENOENT);
        assert_int_equal(procbus_get_pid(&r, 1, NULL), -EINVAL);
        assert_int_equal(procbus_get_name(&r, "", &out), -ENOENT);
        assert_int_equal(procbus_get_name(&r, longname + 400 - 65, &out), -ENAMETOOLONG);
        assert_int_equal(procbus_list(&r, NULL, 1, &n), -EINVAL);
        assert_int_equal(procbus_list(&r, &out, 1, NULL), -EINVAL);
        procbus_close(&r);
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    }
}

/*
 * A procbus segment whose version word is still 0 (its publisher has not
 * finished creating it: ABI.md creation step 2 not done) gives -EINPROGRESS,
 * distinct from a foreign file (-EPROTO), through procbus_attach and through
 * procbus_open by path; the same bytes with the version written attach.
 */
static void test_initialising_segment(void **state)
{
    char name[64], path[128], copy[] = "/tmp/pbt-init-XXXXXX";
    struct procbus_pub *p = pbt_pub(pbt_name(name), 8, 0);
    struct procbus_reader r;
    struct procbus_header *h;
    unsigned char *img;
    struct stat st;
    int fd;
    (void)state;

    fd = open(pbt_path(name, path), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    img = aligned_alloc(64, (size_t)st.st_size);
    assert_non_null(img);
    assert_int_equal(read(fd, img, (size_t)st.st_size), st.st_size);
    close(fd);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    h = (struct procbus_header *)(void *)img;

    assert_int_equal(procbus_attach(&r, img, (size_t)st.st_size), 0);
    procbus_close(&r);
    h->version = 0; /* as between creation steps 1 and 2 */
    assert_int_equal(procbus_attach(&r, img, (size_t)st.st_size), -EINPROGRESS);
    h->magic ^= 1; /* a foreign file stays foreign, whatever its version word */
    assert_int_equal(procbus_attach(&r, img, (size_t)st.st_size), -EPROTO);
    h->magic ^= 1;
    h->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR + 1, 0);
    assert_int_equal(procbus_attach(&r, img, (size_t)st.st_size), -EPROTO);

    /* the same through procbus_open, on a file as a publisher leaves it mid-creation */
    h->version = 0;
    fd = mkstemp(copy);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, (size_t)st.st_size), st.st_size);
    close(fd);
    assert_int_equal(procbus_open(&r, copy), -EINPROGRESS);
    h->version = PROCBUS_VERSION_WORD(PROCBUS_ABI_MAJOR, PROCBUS_ABI_MINOR);
    fd = open(copy, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(
        pwrite(fd, &h->version, sizeof(h->version), offsetof(struct procbus_header, version)),
        sizeof(h->version));
    close(fd);
    assert_int_equal(procbus_open(&r, copy), 0);
    procbus_close(&r);
    unlink(copy);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_header_after_create),
        cmocka_unit_test(test_current_word),
        cmocka_unit_test(test_larger_record_accepted),
        cmocka_unit_test(test_reader_argument_errors),
        cmocka_unit_test(test_initialising_segment),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
