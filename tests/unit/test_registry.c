/* test_registry.c - the liburcu cds_lfht registry: lookups by id/pid/name, concurrent readers. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "procbus_pub.h"
#include "registry.h"
#include "support.h"

static void test_put_get_del(void **state)
{
    struct procbus_registry *reg;
    struct procbus_proc a, b, out;
    (void)state;

    assert_int_equal(procbus_registry_new(&reg), 0);
    procbus_registry_thread_online();
    pbt_fill(&a, 1, 100, "alpha", PROCBUS_STATE_RUNNING);
    pbt_fill(&b, 2, 200, "beta", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_registry_put(reg, &a), 0);
    assert_int_equal(procbus_registry_put(reg, &b), 0);
    assert_int_equal(procbus_registry_count(reg), 2);
    assert_int_equal(procbus_registry_get_id(reg, 1, &out), 0);
    assert_string_equal(out.name, "alpha");
    assert_int_equal(procbus_registry_get_pid(reg, 200, &out), 0);
    assert_int_equal(out.id, 2);
    assert_int_equal(procbus_registry_get_name(reg, "beta", &out), 0);
    assert_int_equal(out.pid, 200);

    /* replace: pid and name move */
    a.pid = 101;
    snprintf(a.name, sizeof(a.name), "alpha2");
    assert_int_equal(procbus_registry_put(reg, &a), 0);
    assert_int_equal(procbus_registry_count(reg), 2);
    assert_int_equal(procbus_registry_get_pid(reg, 100, &out), -ENOENT);
    assert_int_equal(procbus_registry_get_name(reg, "alpha", &out), -ENOENT);
    assert_int_equal(procbus_registry_get_pid(reg, 101, &out), 0);
    assert_string_equal(out.name, "alpha2");

    /* duplicate pid: newest process wins, as in the reader */
    b.pid = 101;
    b.start_boot_ns = a.start_boot_ns + 1;
    assert_int_equal(procbus_registry_put(reg, &b), 0);
    assert_int_equal(procbus_registry_get_pid(reg, 101, &out), 0);
    assert_int_equal(out.id, 2);

    assert_int_equal(procbus_registry_del(reg, 2), 0);
    assert_int_equal(procbus_registry_del(reg, 2), -ENOENT);
    assert_int_equal(procbus_registry_get_pid(reg, 101, &out), 0);
    assert_int_equal(out.id, 1);
    assert_int_equal(procbus_registry_count(reg), 1);
    procbus_registry_free(reg);
    procbus_registry_thread_offline();
}

/* Lookups from other threads, without a lock, while the publisher commits. */
struct reader_arg {
    struct procbus_registry *reg;
    volatile int *stop;
    long reads, bad;
};

static void *reader_thread(void *p)
{
    struct reader_arg *a = p;
    struct procbus_proc out;

    procbus_registry_thread_online();
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        for (int k = 1; k <= 32; k++) {
            char nm[16];
            snprintf(nm, sizeof(nm), "n%d", k);
            if (procbus_registry_get_name(a->reg, nm, &out) == 0) {
                /* every field of one version derives from one counter */
                if (out.id != (uint64_t)k || out.cpu_ns != out.restarts * 3ull ||
                    out.pid != (int32_t)(k * 1000 + out.restarts % 1000))
                    a->bad++;
                a->reads++;
            }
        }
    }
    procbus_registry_thread_offline();
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 64, 0);
    struct procbus_registry *reg = procbus_pub_registry(p);
    struct reader_arg args[2];
    pthread_t th[2];
    volatile int stop = 0;
    int i, round;
    (void)state;

    for (i = 0; i < 2; i++) {
        args[i] = (struct reader_arg){.reg = reg, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    for (round = 0; round < (int)(3000 * pbt_scale()); round++) {
        for (int k = 1; k <= 32; k++) {
            struct procbus_proc rec;
            char nm[16];
            snprintf(nm, sizeof(nm), "n%d", k);
            pbt_fill(&rec, (uint64_t)k, k * 1000 + round % 1000, nm, PROCBUS_STATE_RUNNING);
            rec.restarts = (uint32_t)round;
            rec.cpu_ns = (uint64_t)round * 3;
            assert_int_equal(procbus_pub_upsert(p, &rec), 0);
        }
        assert_int_equal(procbus_pub_commit(p), 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
        assert_true(args[i].reads > 0);
    }
    {
        struct procbus_proc out;
        assert_int_equal(procbus_registry_get_id(reg, 32, &out), 0);
        assert_int_equal(out.restarts, round - 1);
    }
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_concurrent_lookups),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
