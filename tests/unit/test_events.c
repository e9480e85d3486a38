/* test_events.c - the event ring: order, exact lap counts, seeking, wait/wake across processes. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

static struct procbus_pub *pub_ring(const char *name, uint32_t ring)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;

    o.segment = name;
    o.capacity = 16;
    o.ring_capacity = ring;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    return p;
}

static void expect_event(struct procbus_reader *r, uint16_t kind, uint16_t old_state,
                         uint16_t new_state, uint64_t id)
{
    struct procbus_event ev;
    uint64_t missed = 99, before = r->cursor;

    assert_int_equal(procbus_next_event(r, &ev, &missed), 0);
    assert_int_equal(missed, 0);
    assert_int_equal(ev.seq, before);
    assert_int_equal(ev.kind, kind);
    assert_int_equal(ev.old_state, old_state);
    assert_int_equal(ev.new_state, new_state);
    assert_int_equal(ev.record_id, id);
}

static void test_order_and_kinds(void **state)
{
    char name[64];
    struct procbus_pub *p = pub_ring(pbt_name(name), 64);
    struct procbus_reader r;
    struct procbus_proc rec;
    struct procbus_event ev;
    uint64_t missed, g;
    (void)state;

    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT); /* from now: nothing */
    assert_int_equal(missed, 0);

    pbt_fill(&rec, 7, 700, "svc", PROCBUS_STATE_STARTING);
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    g = procbus_pub_generation(p);
    rec.state = PROCBUS_STATE_RUNNING;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    rec.cpu_ns = 5; /* no state change: no event */
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    rec.state = PROCBUS_STATE_EXITED;
    rec.exit_kind = PROCBUS_EXIT_SIGNAL;
    rec.exit_code = SIGSEGV;
    rec.flags |= PROCBUS_F_CORE_DUMPED;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    procbus_pub_remove(p, 7);
    assert_int_equal(procbus_pub_commit(p), 0);

    expect_event(&r, PROCBUS_EV_ADD, PROCBUS_STATE_UNKNOWN, PROCBUS_STATE_STARTING, 7);
    expect_event(&r, PROCBUS_EV_STATE, PROCBUS_STATE_STARTING, PROCBUS_STATE_RUNNING, 7);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_NOW), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);

    /* seek back to the oldest: the epoch marker, then everything in order */
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
    assert_int_equal(ev.pid, getpid());
    expect_event(&r, PROCBUS_EV_ADD, PROCBUS_STATE_UNKNOWN, PROCBUS_STATE_STARTING, 7);
    expect_event(&r, PROCBUS_EV_STATE, PROCBUS_STATE_STARTING, PROCBUS_STATE_RUNNING, 7);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_STATE);
    assert_int_equal(ev.new_state, PROCBUS_STATE_EXITED);
    assert_int_equal(ev.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(ev.exit_code, SIGSEGV);
    assert_int_equal(ev.flags & PROCBUS_F_CORE_DUMPED, PROCBUS_F_CORE_DUMPED);
    assert_int_equal(ev.generation, g + 1);
    assert_int_equal(ev.pid, 700);
    assert_string_equal(ev.name, "svc");
    expect_event(&r, PROCBUS_EV_REMOVE, PROCBUS_STATE_EXITED, PROCBUS_STATE_EXITED, 7);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);

    /* explicit events */
    assert_int_equal(procbus_pub_event(p, PROCBUS_EV_EXEC, &rec), 0);
    assert_int_equal(procbus_pub_event(p, 99, &rec), -EINVAL);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_EXEC);

    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* Publish `n` state changes, one event each. */
static void churn(struct procbus_pub *p, int n, int commit_every)
{
    static uint16_t st = PROCBUS_STATE_RUNNING;
    struct procbus_proc rec;
    int i;

    for (i = 0; i < n; i++) {
        st = st == PROCBUS_STATE_RUNNING ? PROCBUS_STATE_BACKOFF : PROCBUS_STATE_RUNNING;
        pbt_fill(&rec, 1, 10, "c", st);
        assert_int_equal(procbus_pub_upsert(p, &rec), 0);
        if ((i + 1) % commit_every == 0)
            assert_int_equal(procbus_pub_commit(p), 0);
    }
    assert_int_equal(procbus_pub_commit(p), 0);
}

static void test_lap_counts_exact(void **state)
{
    char name[64];
    struct procbus_pub *p = pub_ring(pbt_name(name), 16);
    struct procbus_reader r;
    struct procbus_event ev;
    uint64_t missed, total_missed = 0, got = 0, last = 0, head;
    struct procbus_info info = {0};
    int rc;
    (void)state;

    assert_int_equal(procbus_open(&r, name), 0);
    churn(p, 1, 1); /* ADD */
    churn(p, 49, 7);
    procbus_info(&r, &info);
    head = info.ring_head;
    /* 50 events since the cursor, 16 kept: the first read reports exactly 34 missed */
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(missed, 34);
    assert_int_equal(ev.seq, head - 16);
    got = 1;
    last = ev.seq;
    while ((rc = procbus_next_event(&r, &ev, &missed)) == 0) {
        assert_int_equal(missed, 0);
        assert_int_equal(ev.seq, last + 1);
        last = ev.seq;
        got++;
    }
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(got, 16);

    /* interleaved: read some, get lapped again, the gap is always exact */
    for (int round = 0; round < 20; round++) {
        churn(p, 5 + round * 3, 3);
        while ((rc = procbus_next_event(&r, &ev, &missed)) == 0) {
            assert_int_equal(ev.seq, last + 1 + missed);
            total_missed += missed;
            last = ev.seq;
            got++;
        }
        assert_int_equal(rc, -ENOENT);
    }
    procbus_info(&r, &info);
    assert_int_equal(last, info.ring_head - 1);
    assert_int_equal(got + total_missed + 34, info.ring_head - head + 50);
    assert_true(total_missed > 0);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A child blocks in procbus_wait; the parent commits; the child must wake with 0. */
static void test_wait_wakes_across_processes(void **state)
{
    char name[64];
    struct procbus_pub *p = pub_ring(pbt_name(name), 64);
    int ready[2], result[2];
    pid_t pid;
    char c;
    int rc = -1;
    (void)state;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(result), 0);
    pid = fork();
    if (pid == 0) {
        struct procbus_reader r;
        uint64_t g;
        int w;
        alarm(60);
        if (procbus_open(&r, name) < 0)
            _exit(2);
        g = procbus_generation(&r);
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        w = procbus_wait(&r, g, 30000);
        if (w == 0 && procbus_generation(&r) == g)
            w = -1000; /* woke without a change */
        if (write(result[1], &w, sizeof(w)) != sizeof(w))
            _exit(4);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    usleep(100 * 1000); /* let it block; correctness does not depend on it */
    churn(p, 1, 1);
    assert_int_equal(read(result[0], &rc, sizeof(rc)), sizeof(rc));
    assert_int_equal(rc, 0);
    assert_int_equal(pbt_wait_child(pid), 0);
    close(ready[0]);
    close(ready[1]);
    close(result[0]);
    close(result[1]);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_wait_timeout_and_shutdown(void **state)
{
    char name[64];
    struct procbus_pub *p = pub_ring(pbt_name(name), 64);
    struct procbus_reader r;
    uint64_t g, t0;
    int ready[2];
    pid_t pid;
    char c;
    (void)state;

    assert_int_equal(procbus_open(&r, name), 0);
    g = procbus_generation(&r);
    assert_int_equal(procbus_wait(&r, g, 0), -ETIMEDOUT);
    assert_int_equal(procbus_wait(&r, g - 1, 0), 0);
    assert_int_equal(procbus_wait(&r, g - 1, -1), 0);
    t0 = pb_now_ns(CLOCK_MONOTONIC);
    assert_int_equal(procbus_wait(&r, g, 50), -ETIMEDOUT);
    /* it really waited (a lower bound only: never an upper bound in tests) */
    assert_true(pb_now_ns(CLOCK_MONOTONIC) - t0 >= 45000000u);

    /* a waiter with no timeout is released by a clean shutdown with -EPIPE */
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    if (pid == 0) {
        alarm(60);
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        _exit(procbus_wait(&r, g, -1) == -EPIPE ? 0 : 1);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    usleep(50 * 1000);
    procbus_pub_close(p, 0);
    assert_int_equal(pbt_wait_child(pid), 0);
    assert_int_equal(procbus_wait(&r, g, 1000), -EPIPE);
    assert_int_equal(procbus_liveness(&r, 1), PROCBUS_SHUTDOWN);
    procbus_close(&r);
    pbt_unlink(name);
    close(ready[0]);
    close(ready[1]);
}

static void test_argument_errors(void **state)
{
    struct procbus_reader r;
    struct procbus_event ev;
    uint64_t missed;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(procbus_next_event(NULL, &ev, &missed), -EINVAL);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -EINVAL);
    assert_int_equal(procbus_wait(&r, 0, 0), -EINVAL);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_NOW), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_kinds),
        cmocka_unit_test(test_lap_counts_exact),
        cmocka_unit_test(test_wait_wakes_across_processes),
        cmocka_unit_test(test_wait_timeout_and_shutdown),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
