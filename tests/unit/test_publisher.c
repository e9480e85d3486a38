/* test_publisher.c - publisher/reader round trips, staging, indexes, capacity, takeover. */
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
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "registry.h"
#include "support.h"

/* Sanitizer runtimes do not survive an address-space limit: the ENOMEM test skips there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PBT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PBT_SANITIZED 1
#endif
#endif
#ifndef PBT_SANITIZED
#define PBT_SANITIZED 0
#endif

static void test_round_trip(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 16, 0);
    struct procbus_reader r;
    struct procbus_proc rec, out, list[16];
    size_t n = 0;
    uint64_t g0;
    (void)state;

    assert_non_null(p);
    assert_int_equal(procbus_open(&r, name), 0);
    g0 = procbus_generation(&r);
    assert_int_equal(g0, procbus_pub_generation(p));
    assert_int_equal(procbus_list(&r, list, 16, &n), 0);
    assert_int_equal(n, 0);

    pbt_fill(&rec, procbus_pub_new_id(p), 4242, "web", PROCBUS_STATE_RUNNING);
    rec.restarts = 3;
    rec.exit_kind = PROCBUS_EXIT_SIGNAL;
    rec.exit_code = 9;
    rec.flags = PROCBUS_F_CORE_DUMPED | PROCBUS_F_CMDLINE_TRUNCATED;
    rec.cpu_ns = 123456789;
    rec.rss_bytes = 1 << 20;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    /* staged, not visible */
    assert_int_equal(procbus_get_pid(&r, 4242, &out), -ENOENT);
    assert_int_equal(procbus_generation(&r), g0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_generation(&r), g0 + 1);

    assert_int_equal(procbus_get_pid(&r, 4242, &out), 0);
    assert_int_equal(r.last_gen, g0 + 1);
    assert_int_equal(out.size, sizeof(struct procbus_proc));
    rec.size = out.size;
    assert_memory_equal(&out, &rec, sizeof(rec));
    memset(&out, 0, sizeof(out));
    assert_int_equal(procbus_get_name(&r, "web", &out), 0);
    assert_memory_equal(&out, &rec, sizeof(rec));
    assert_int_equal(procbus_list(&r, list, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(&list[0], &rec, sizeof(rec));

    /* update in place: new pid, new name; old keys disappear */
    rec.pid = 5000;
    snprintf(rec.name, sizeof(rec.name), "web2");
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_get_pid(&r, 4242, &out), -ENOENT);
    assert_int_equal(procbus_get_name(&r, "web", &out), -ENOENT);
    assert_int_equal(procbus_get_pid(&r, 5000, &out), 0);
    assert_string_equal(out.name, "web2");

    /* remove */
    assert_int_equal(procbus_pub_remove(p, rec.id), 0);
    assert_int_equal(procbus_pub_remove(p, rec.id), -ENOENT);
    assert_int_equal(procbus_get_pid(&r, 5000, &out), 0); /* still committed */
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_get_pid(&r, 5000, &out), -ENOENT);
    assert_int_equal(procbus_list(&r, list, 16, &n), 0);
    assert_int_equal(n, 0);

    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_strings_are_terminated(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 4, 0);
    struct procbus_reader r;
    struct procbus_proc rec, out;
    (void)state;

    pbt_fill(&rec, 1, 77, "x", PROCBUS_STATE_RUNNING);
    memset(rec.name, 'a', sizeof(rec.name));
    memset(rec.comm, 'c', sizeof(rec.comm));
    rec.cmdline_len = 100000;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_get_pid(&r, 77, &out), 0);
    assert_int_equal(strlen(out.name), PROCBUS_NAME_LEN - 1);
    assert_int_equal(strlen(out.comm), PROCBUS_COMM_LEN - 1);
    assert_int_equal(out.cmdline_len, PROCBUS_CMDLINE_LEN);
    assert_int_equal(procbus_get_name(&r, out.name, &out), 0);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_duplicate_keys_newest_wins(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 8, 0);
    struct procbus_reader r;
    struct procbus_proc a, b, out;
    (void)state;

    pbt_fill(&a, 1, 300, "dup", PROCBUS_STATE_EXITED);
    pbt_fill(&b, 2, 300, "dup", PROCBUS_STATE_RUNNING);
    a.start_boot_ns = 5000;
    b.start_boot_ns = 9000; /* b reused a's pid later */
    assert_int_equal(procbus_pub_upsert(p, &b), 0);
    assert_int_equal(procbus_pub_upsert(p, &a), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_get_pid(&r, 300, &out), 0);
    assert_int_equal(out.id, 2);
    assert_int_equal(procbus_get_name(&r, "dup", &out), 0);
    assert_int_equal(out.id, 2);
    assert_int_equal(procbus_pub_remove(p, 2), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_get_pid(&r, 300, &out), 0);
    assert_int_equal(out.id, 1);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_capacity_and_drops(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 4, 0);
    struct procbus_reader r;
    struct procbus_info info;
    struct procbus_proc rec, out[4];
    size_t n = 0;
    int i;
    (void)state;

    for (i = 1; i <= 4; i++) {
        pbt_fill(&rec, (uint64_t)i, 100 + i, "p", PROCBUS_STATE_RUNNING);
        assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    }
    pbt_fill(&rec, 5, 105, "p", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(p, &rec), -ENOSPC);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_info(&r, &info), 0);
    assert_int_equal(info.records_dropped, 1);
    assert_int_equal(procbus_list(&r, out, 3, &n), -ENOSPC);
    assert_int_equal(n, 4);
    assert_int_equal(procbus_list(&r, NULL, 0, &n), -ENOSPC);
    assert_int_equal(n, 4);
    assert_int_equal(procbus_list(&r, out, 4, &n), 0);
    /* bad arguments */
    pbt_fill(&rec, 0, 1, "zero", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(p, &rec), -EINVAL);
    pbt_fill(&rec, 1, 1, "bad", PROCBUS_STATE_COUNT_);
    assert_int_equal(procbus_pub_upsert(p, &rec), -EINVAL);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* Changing every record on every commit exhausts the copy-on-write reserve only
 * if the old versions are never recycled: run many rounds to prove they are. */
static void test_arena_recycling(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 64, 4);
    struct procbus_reader r;
    struct procbus_proc rec, out;
    int round, i;
    (void)state;

    assert_int_equal(procbus_open(&r, name), 0);
    for (round = 0; round < 200; round++) {
        for (i = 1; i <= 64; i++) {
            pbt_fill(&rec, (uint64_t)i, 1000 + i, "w", PROCBUS_STATE_RUNNING);
            rec.restarts = (uint32_t)round;
            assert_int_equal(procbus_pub_upsert(p, &rec), 0);
            /* a second update in the same batch rewrites the unpublished copy */
            rec.cpu_ns = (uint64_t)round;
            assert_int_equal(procbus_pub_upsert(p, &rec), 0);
        }
        assert_int_equal(procbus_pub_commit(p), 0);
        assert_int_equal(procbus_get_pid(&r, 1000 + 1 + round % 64, &out), 0);
        assert_int_equal(out.restarts, round);
        assert_int_equal(out.cpu_ns, round);
    }
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A model check: random upserts/removes/commits against a plain array, with the
 * reader compared to the model after every commit, for several slot counts.
 * Pids and names come from small pools, so many records share a key and the
 * index must always point at the newest holder (start_boot_ns, then id). */
enum { NKEYS = 200, POOL = 60 };
struct model {
    int present;
    int32_t pid;
    int name;
    uint64_t boot;
    uint32_t tag;
};

/* Expected id for a pid (by_pid) or a name index (!by_pid); 0 = absent. */
static uint64_t model_best(const struct model *m, int by_pid, int32_t key)
{
    uint64_t best = 0, best_boot = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (!m[k].present || (by_pid ? m[k].pid != key : m[k].name != key))
            continue;
        if (best == 0 || m[k].boot > best_boot ||
            (m[k].boot == best_boot && (uint64_t)k + 1 > best)) {
            best = (uint64_t)k + 1;
            best_boot = m[k].boot;
        }
    }
    return best;
}

static void check_model(struct procbus_reader *r, const struct model *m)
{
    static struct procbus_proc list[NKEYS];
    size_t n = 0, want = 0;
    int k;

    assert_int_equal(procbus_list(r, list, NKEYS, &n), 0);
    for (k = 0; k < NKEYS; k++)
        want += m[k].present != 0;
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++) {
        int k2 = (int)list[i].id - 1;
        assert_true(k2 >= 0 && k2 < NKEYS && m[k2].present);
        assert_int_equal(list[i].restarts, m[k2].tag);
    }
    for (k = 1; k <= POOL; k++) {
        struct procbus_proc out;
        char nm[32];
        uint64_t want_pid = model_best(m, 1, k * 64), want_name = model_best(m, 0, k);
        int rc = procbus_get_pid(r, k * 64, &out);
        if (want_pid == 0) {
            assert_int_equal(rc, -ENOENT);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(out.id, want_pid);
            assert_int_equal(out.restarts, m[want_pid - 1].tag);
        }
        snprintf(nm, sizeof(nm), "n%d", k);
        rc = procbus_get_name(r, nm, &out);
        if (want_name == 0) {
            assert_int_equal(rc, -ENOENT);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(out.id, want_name);
        }
    }
}

static void test_model_random(void **state)
{
    static const uint32_t slot_counts[] = {2, 3, 8};
    (void)state;

    for (size_t sc = 0; sc < sizeof(slot_counts) / sizeof(slot_counts[0]); sc++) {
        struct model m[NKEYS] = {{0}};
        char name[64];
        struct procbus_pub *p = pbt_pub(pbt_name(name), NKEYS, slot_counts[sc]);
        struct procbus_reader r;
        unsigned seed = 12345 + (unsigned)sc;
        int step;

        assert_non_null(p);
        assert_int_equal(procbus_open(&r, name), 0);
        for (step = 0; step < 8000; step++) {
            int k = rand_r(&seed) % NKEYS, op = rand_r(&seed) % 10;
            struct procbus_proc rec;
            char nm[32];
            if (op < 6) {
                /* pids are multiples of 64: few distinct hash homes, long probe runs */
                m[k].pid = op == 0 ? 0 : (1 + rand_r(&seed) % POOL) * 64;
                m[k].name = op == 1 ? 0 : 1 + rand_r(&seed) % POOL;
                if (rand_r(&seed) % 2 || !m[k].present)
                    m[k].boot = (uint64_t)(rand_r(&seed) % 8); /* ties happen */
                m[k].tag = (uint32_t)rand_r(&seed);
                m[k].present = 1;
                if (m[k].name)
                    snprintf(nm, sizeof(nm), "n%d", m[k].name);
                else
                    nm[0] = '\0';
                pbt_fill(&rec, (uint64_t)k + 1, m[k].pid, nm, PROCBUS_STATE_RUNNING);
                rec.start_boot_ns = m[k].boot;
                rec.restarts = m[k].tag;
                assert_int_equal(procbus_pub_upsert(p, &rec), 0);
            } else if (op < 9) {
                int rc = procbus_pub_remove(p, (uint64_t)k + 1);
                assert_int_equal(rc, m[k].present ? 0 : -ENOENT);
                m[k].present = 0;
            }
            if (op == 9 || rand_r(&seed) % 4 == 0) {
                assert_int_equal(procbus_pub_commit(p), 0);
                check_model(&r, m);
            }
        }
        procbus_close(&r);
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    }
}

static void test_exclusive_and_takeover(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 8, 0), *q = NULL;
    struct procbus_pub_opts o = {0};
    struct procbus_reader r;
    struct procbus_proc rec, out;
    uint64_t gen1;
    (void)state;

    o.segment = name;
    assert_int_equal(procbus_pub_open(&q, &o), -EBUSY);
    pbt_fill(&rec, 1, 11, "one", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    gen1 = procbus_pub_generation(p);
    assert_int_equal(procbus_pub_epoch(p), 1);
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_liveness(&r, 10ull * 1000000000), PROCBUS_ALIVE);
    assert_int_equal(procbus_follow(&r), 0);
    procbus_pub_close(p, 0);
    assert_int_equal(procbus_liveness(&r, 10ull * 1000000000), PROCBUS_SHUTDOWN);
    assert_int_equal(procbus_get_pid(&r, 11, &out), 0); /* last snapshot stays readable */

    o.capacity = 32; /* a different geometry is fine: it is a new file */
    assert_int_equal(procbus_pub_open(&q, &o), 0);
    assert_int_equal(procbus_pub_epoch(q), 2);
    assert_true(procbus_pub_generation(q) > gen1);
    assert_int_equal(procbus_liveness(&r, 10ull * 1000000000), PROCBUS_GONE);
    pbt_fill(&rec, 1, 22, "two", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(q, &rec), 0);
    assert_int_equal(procbus_pub_commit(q), 0);
    assert_int_equal(procbus_follow(&r), 1);
    assert_int_equal(r.epoch, 2);
    assert_int_equal(procbus_follow(&r), 0);
    assert_int_equal(procbus_get_pid(&r, 22, &out), 0);
    assert_int_equal(procbus_get_pid(&r, 11, &out), -ENOENT);
    procbus_close(&r);
    procbus_pub_close(q, PROCBUS_PUB_UNLINK);
    assert_int_equal(procbus_open(&r, name), -ENOENT);
}

static void test_segment_file_rules(void **state)
{
    char name[64], path[128], link_path[160], dir[] = "/tmp/pbt-XXXXXX";
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct stat st;
    int fd;
    (void)state;

    /* default mode 0640, fully allocated */
    p = pbt_pub(pbt_name(name), 8, 0);
    assert_int_equal(stat(pbt_path(name, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_true((uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);

    /* a file that is not a procbus segment is never replaced */
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/seg", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    o.segment = path;
    assert_int_equal(procbus_pub_open(&p, &o), -EEXIST);
    unlink(path);

    /* a symlink at the name is refused (O_NOFOLLOW) by both sides */
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    assert_int_equal(symlink("/etc/passwd", link_path), 0);
    o.segment = link_path;
    assert_int_equal(procbus_pub_open(&p, &o), -ELOOP);
    {
        struct procbus_reader r;
        assert_int_equal(procbus_open(&r, link_path), -ELOOP);
    }
    unlink(link_path);

    /* a path segment works like a name; explicit mode */
    o.segment = path;
    o.mode = 0600;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    rmdir(dir);

    /* bad names */
    o.segment = "..";
    o.mode = 0;
    assert_int_equal(procbus_pub_open(&p, &o), -EINVAL);
}

/* A full tmpfs must fail at creation with -ENOSPC, not SIGBUS later. */
static void test_full_tmpfs(void **state)
{
    char dir[] = "/tmp/pbt-mnt-XXXXXX", path[128];
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    (void)state;

    assert_non_null(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
        rmdir(dir);
        skip(); /* needs root (CAP_SYS_ADMIN) */
    }
    snprintf(path, sizeof(path), "%s/seg", dir);
    o.segment = path;
    o.capacity = 100000; /* ~80 MB */
    assert_int_equal(procbus_pub_open(&p, &o), -ENOSPC);
    o.capacity = 64;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    umount(dir);
    rmdir(dir);
}

static void test_env_default_name(void **state)
{
    char name[64];
    struct procbus_pub *p;
    struct procbus_reader r;
    (void)state;

    setenv("PROCBUS_SEGMENT", pbt_name(name), 1);
    p = pbt_pub(NULL, 4, 0);
    assert_non_null(p);
    assert_int_equal(procbus_open(&r, NULL), 0);
    {
        char path[128];
        assert_string_equal(r.spec, pbt_path(name, path)); /* the name rule, root or not */
    }
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    unsetenv("PROCBUS_SEGMENT");
}

/* Bytes of address space this process has mapped now (/proc/self/statm, first field). */
static uint64_t mapped_bytes(void)
{
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &pages), 1);
    fclose(f);
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * procbus_pub_commit's -ENOMEM (the registry cannot set memory aside for the
 * batch) publishes nothing - not the segment, not the registry - and keeps the
 * batch staged, so the next commit publishes all of it. Memory runs out for
 * real: RLIMIT_AS just above what the process maps, and the free heap taken
 * by a balloon of small blocks for the length of the commit.
 */
static void test_commit_enomem_publishes_nothing(void **state)
{
    enum { N = 2000 };
    void **balloon, **b;
    char name[64], nm[32];
    struct procbus_pub *p;
    struct procbus_reader r;
    struct procbus_proc rec, out;
    struct procbus_info before = {0}, after = {0};
    struct rlimit old, lim;
    uint64_t gen;
    size_t n = 0;
    int rc, i;
    (void)state;

    if (PBT_SANITIZED)
        skip();
    p = pbt_pub(pbt_name(name), N, 0);
    assert_non_null(p);
    assert_int_equal(procbus_open(&r, name), 0);
    /* a record committed, then replaced: liburcu's call_rcu thread exists before the limit */
    pbt_fill(&rec, 1, 1, "first", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    rec.restarts = 1;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    gen = procbus_generation(&r);
    assert_int_equal(procbus_info(&r, &before), 0);
    for (i = 2; i <= N; i++) {
        snprintf(nm, sizeof(nm), "r%d", i);
        pbt_fill(&rec, (uint64_t)i, 100 + i, nm, PROCBUS_STATE_RUNNING);
        assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    }

    assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = mapped_bytes() + (1u << 20);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur)
        lim.rlim_cur = old.rlim_cur;
    assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
    balloon = NULL; /* take every free heap chunk, so the next malloc must grow the heap */
    while ((b = malloc(64)) != NULL) {
        *b = balloon;
        balloon = b;
    }
    rc = procbus_pub_commit(p);
    while (balloon != NULL) {
        b = *balloon;
        free(balloon);
        balloon = b;
    }
    assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
    assert_int_equal(rc, -ENOMEM);

    /* nothing published: generation, snapshot, ring, registry as they were */
    assert_int_equal(procbus_generation(&r), gen);
    assert_int_equal(procbus_pub_generation(p), gen);
    assert_int_equal(procbus_info(&r, &after), 0);
    assert_int_equal(after.ring_head, before.ring_head);
    assert_int_equal(after.publishes, before.publishes);
    assert_int_equal(procbus_get_pid(&r, 102, &out), -ENOENT);
    assert_int_equal(procbus_list(&r, NULL, 0, &n), -ENOSPC);
    assert_int_equal(n, 1);
    assert_int_equal(procbus_registry_get_id(procbus_pub_registry(p), 2, &out), -ENOENT);
    assert_int_equal(procbus_registry_get_id(procbus_pub_registry(p), 1, &out), 0);
    assert_int_equal(out.restarts, 1);

    /* still staged: the next commit publishes the whole batch */
    assert_int_equal(procbus_pub_count(p), N);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_generation(&r), gen + 1);
    assert_int_equal(procbus_list(&r, NULL, 0, &n), -ENOSPC);
    assert_int_equal(n, N);
    assert_int_equal(procbus_get_pid(&r, 100 + N, &out), 0);
    assert_int_equal(procbus_info(&r, &after), 0);
    assert_int_equal(after.ring_head, before.ring_head + (N - 1)); /* one ADD per new record */
    assert_int_equal(procbus_registry_count(procbus_pub_registry(p)), N);
    assert_int_equal(procbus_registry_get_pid(procbus_pub_registry(p), 100 + N, &out), 0);
    assert_int_equal(out.id, N);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strings_are_terminated),
        cmocka_unit_test(test_duplicate_keys_newest_wins),
        cmocka_unit_test(test_capacity_and_drops),
        cmocka_unit_test(test_arena_recycling),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_exclusive_and_takeover),
        cmocka_unit_test(test_segment_file_rules),
        cmocka_unit_test(test_full_tmpfs),
        cmocka_unit_test(test_env_default_name),
        cmocka_unit_test(test_commit_enomem_publishes_nothing),
    };
    return cmocka_run_group_tests_name("publisher", tests, NULL, NULL);
}
