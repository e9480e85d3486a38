/* test_races.c - a reader thread on the publisher's own mapping, for ThreadSanitizer (make tsan):
 * the only data race is the seqlock's by-design record copy (issue 9's TSAN experiment). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

/*
 * Readers normally map the file themselves: ThreadSanitizer, which sees one process and one
 * address per byte, cannot relate their loads to the publisher's stores. Here the reader is a
 * thread attached to the publisher's own mapping, so every load of an index word, a count, a
 * generation or a record meets the store that wrote it. The publisher stores index words and the
 * snapshot count with relaxed atomic stores (they were plain stores: three races TSAN reported,
 * copy_entry twice and rewrite_slot's count); the one race left is the record copy, by design,
 * suppressed by name in tests/support/tsan.supp. Without TSAN the test still checks the reader's
 * results are consistent.
 */

struct reader_arg {
    struct procbus_reader r;
    int stop;
    unsigned long lists, lookups;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    static struct procbus_proc out[32];
    size_t n;

    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        struct procbus_proc rec;
        if (procbus_list(&a->r, out, 32, &n) == 0) {
            a->lists++;
            for (size_t i = 0; i < n; i++)
                if (out[i].id == 0 || out[i].pid != 1000 + (int32_t)out[i].id)
                    abort(); /* a torn record got through */
        }
        if (procbus_get_pid(&a->r, 1003, &rec) == 0 && rec.id == 3)
            a->lookups++;
        if (procbus_get_name(&a->r, "svc-5", &rec) == 0 && rec.id == 5)
            a->lookups++;
        (void)procbus_generation(&a->r);
    }
    return NULL;
}

/* The publisher's mapping of its segment: found in /proc/self/maps by its folder. */
static void *own_mapping(const char *dir, size_t *len)
{
    char line[512], path[256];
    void *base = NULL;
    FILE *f = fopen("/proc/self/maps", "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        char perm[8];
        path[0] = '\0';
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &a, &b, perm, path) >= 3 &&
            perm[1] == 'w' && strncmp(path, dir, strlen(dir)) == 0) {
            base = (void *)a;
            *len = b - a;
        }
    }
    fclose(f);
    return base;
}

static void test_reader_thread_on_the_publishers_mapping(void **state)
{
    char dir[] = "/tmp/pbt-races-XXXXXX", path[64];
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct reader_arg *a = calloc(1, sizeof(*a));
    pthread_t t;
    size_t len = 0;
    void *base;
    int rounds = (int)(3000 * pbt_scale()) + 200;
    (void)state;

    assert_non_null(a);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/seg", dir);
    o.segment = path;
    o.capacity = 32;
    o.snap_slots = 2; /* laps and forced laps: records recycled under the reader */
    o.reserve = 8;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    base = own_mapping(dir, &len);
    assert_non_null(base);
    assert_int_equal(procbus_attach(&a->r, base, len), 0);
    assert_int_equal(pthread_create(&t, NULL, reader_main, a), 0);
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 3; k++) {
            struct procbus_proc rec;
            uint64_t id = (uint64_t)((round * 3 + k) % 20) + 1;
            char nm[16];
            snprintf(nm, sizeof(nm), "svc-%llu", (unsigned long long)id);
            pbt_fill(&rec, id, 1000 + (int32_t)id, nm, (uint16_t)(1 + (round + k) % 8));
            assert_int_equal(procbus_pub_upsert(p, &rec), 0);
        }
        assert_int_equal(procbus_pub_commit(p), 0);
    }
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(t, NULL), 0);
    print_message("  %d commits; the reader thread made %lu lists and %lu lookups\n", rounds,
                  a->lists, a->lookups);
    assert_true(a->lists > 0);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    rmdir(dir);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_thread_on_the_publishers_mapping),
    };
    return cmocka_run_group_tests_name("races", tests, NULL, NULL);
}
