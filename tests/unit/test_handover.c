/* test_handover.c - the publisher library's crash-only handovers: inheriting a crashed
 * predecessor's records (PROCBUS_PUB_INHERIT) and resuming a segment after an execve. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

/* The exec'd image of publish_in_child (a fresh process: liburcu's threads do not survive a
 * fork of a process that used them). */
static int publish_main(const char *name, int n, int crash)
{
    struct procbus_pub_opts o = {.segment = name, .capacity = 64};
    struct procbus_pub *p;
    struct procbus_proc rec;
    char nm[16];
    int i;

    if (procbus_pub_open(&p, &o) != 0)
        return 2;
    for (i = 0; i < n; i++) {
        snprintf(nm, sizeof(nm), "rec%d", i);
        pbt_fill(&rec, procbus_pub_new_id(p), 1000 + i, nm, PROCBUS_STATE_RUNNING);
        if (procbus_pub_upsert(p, &rec) != 0)
            return 3;
    }
    if (procbus_pub_commit(p) != 0)
        return 4;
    if (crash) /* dies as a crash would: nothing freed, no exit handler (LeakSanitizer's) */
        _exit(0);
    procbus_pub_close(p, 0);
    return 0;
}

/* A child publishes `n` records named rec0.. (ids 1..n), then dies without closing (`crash`)
 * or closes cleanly. */
static void publish_in_child(const char *name, int n, int crash)
{
    char nb[16], cb[4];
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        snprintf(nb, sizeof(nb), "%d", n);
        snprintf(cb, sizeof(cb), "%d", crash);
        execl("/proc/self/exe", "test_handover", "--publish", name, nb, cb, (char *)NULL);
        _exit(5);
    }
    assert_int_equal(pbt_wait_child(pid), 0);
}

static void test_inherit_from_crashed(void **state)
{
    struct procbus_pub_opts o = {.capacity = 64, .flags = PROCBUS_PUB_INHERIT};
    struct procbus_pub_pred pred;
    struct procbus_pub *p;
    struct procbus_reader r;
    struct procbus_proc list[64], got;
    char name[64];
    size_t n = 0;
    (void)state;

    pbt_name(name);
    publish_in_child(name, 5, 1);
    o.segment = name;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    procbus_pub_predecessor(p, &pred);
    assert_true(pred.present);
    assert_true(pred.crashed);
    assert_int_equal(pred.epoch, 1);
    assert_int_equal(pred.nrecs, 5);
    assert_int_equal(procbus_pub_count(p), 5);
    /* the initial snapshot of epoch 2 shows them, ids kept, before any commit */
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(r.epoch, 2);
    assert_int_equal(procbus_list(&r, list, 64, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(procbus_get_name(&r, "rec3", &got), 0);
    assert_int_equal(got.id, 4);
    assert_int_equal(got.pid, 1003);
    assert_int_equal(got.state, PROCBUS_STATE_RUNNING);
    /* new ids come after the inherited ones; they can be updated and removed */
    assert_true(procbus_pub_new_id(p) > 5);
    assert_int_equal(procbus_pub_get(p, 2, &got), 0);
    got.state = PROCBUS_STATE_EXITED;
    assert_int_equal(procbus_pub_upsert(p, &got), 0);
    assert_int_equal(procbus_pub_remove(p, 1), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_list(&r, list, 64, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(procbus_get_name(&r, "rec1", &got), 0);
    assert_int_equal(got.state, PROCBUS_STATE_EXITED);
    procbus_pub_predecessor_release(p);
    procbus_pub_predecessor(p, &pred);
    assert_null(pred.recs);
    procbus_close(&r);

    /* killed before its first commit: its successor inherits the same records again */
    procbus_pub_close(p, 0);
    pbt_unlink(name);
}

static void test_no_inherit_after_clean_shutdown(void **state)
{
    struct procbus_pub_opts o = {.capacity = 64, .flags = PROCBUS_PUB_INHERIT};
    struct procbus_pub_pred pred;
    struct procbus_pub *p;
    char name[64];
    (void)state;

    pbt_name(name);
    publish_in_child(name, 3, 0);
    o.segment = name;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    procbus_pub_predecessor(p, &pred);
    assert_true(pred.present);
    assert_false(pred.crashed);
    assert_int_equal(pred.nrecs, 0);
    assert_int_equal(procbus_pub_count(p), 0);
    procbus_pub_close(p, 0);
    pbt_unlink(name);
}

/* Killed twice in a row before committing anything: the records pass from the first dead
 * publisher through the second to the third. */
static void test_inherit_twice(void **state)
{
    struct procbus_pub_opts o = {.capacity = 64, .flags = PROCBUS_PUB_INHERIT};
    struct procbus_pub *p;
    struct procbus_proc got;
    char name[64];
    pid_t pid;
    (void)state;

    pbt_name(name);
    publish_in_child(name, 4, 1);
    o.segment = name;
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_handover", "--inherit-and-die", name, (char *)NULL);
        _exit(5);
    }
    assert_int_equal(pbt_wait_child(pid), 0);
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    assert_int_equal(procbus_pub_count(p), 4);
    assert_int_equal(procbus_pub_get(p, 4, &got), 0);
    assert_string_equal(got.name, "rec3");
    procbus_pub_close(p, 0);
    pbt_unlink(name);
}

/* ---- resume after execve ---- */

/* The image before the exec: publish three records, burn an id, exec --resume with the
 * segment's descriptor (close-on-exec cleared) and the last id handed out. */
static int prepare_resume_main(const char *name, const char *path)
{
    struct procbus_pub_opts o = {.segment = name, .capacity = 8};
    struct procbus_pub *p;
    struct procbus_proc rec;
    char fdbuf[16], idbuf[32];
    int i;

    if (procbus_pub_open(&p, &o) != 0)
        return 2;
    for (i = 0; i < 3; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "rec%d", i);
        pbt_fill(&rec, procbus_pub_new_id(p), 1000 + i, nm, PROCBUS_STATE_RUNNING);
        if (procbus_pub_upsert(p, &rec) != 0 || procbus_pub_commit(p) != 0)
            return 3;
    }
    procbus_pub_new_id(p); /* id 4 was handed out (a removed record's, say) */
    fcntl(procbus_pub_fd(p), F_SETFD, 0);
    snprintf(fdbuf, sizeof(fdbuf), "%d", procbus_pub_fd(p));
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)procbus_pub_last_id(p));
    execl("/proc/self/exe", "test_handover", "--resume", fdbuf, path, idbuf, (char *)NULL);
    return 5;
}

/* The exec'd image: resume, check what it finds, add one record, commit, close cleanly. */
static int resume_main(int fd, const char *path, uint64_t next_id)
{
    struct procbus_pub_opts o = {.heartbeat_interval_ns = 100000000ull};
    struct procbus_pub *p;
    struct procbus_proc rec;
    int rc = procbus_pub_resume(&p, fd, path, next_id, &o);

    if (rc != 0) {
        fprintf(stderr, "resume: %s\n", strerror(-rc));
        return 10;
    }
    if (procbus_pub_count(p) != 3 || procbus_pub_get(p, 2, &rec) != 0 ||
        strcmp(rec.name, "rec1") != 0)
        return 11;
    pbt_fill(&rec, procbus_pub_new_id(p), 2000, "after", PROCBUS_STATE_RUNNING);
    if (rec.id <= next_id)
        return 12;
    rec.state = PROCBUS_STATE_READY;
    if (procbus_pub_upsert(p, &rec) != 0 || procbus_pub_commit(p) != 0)
        return 13;
    /* many more commits: every arena slot gets recycled through the rebuilt free list */
    for (int i = 0; i < 200; i++) {
        rec.restarts = (uint32_t)i;
        if (procbus_pub_upsert(p, &rec) != 0 || procbus_pub_commit(p) != 0)
            return 14;
    }
    procbus_pub_close(p, 0);
    return 0;
}

static void test_resume_after_exec(void **state)
{
    struct procbus_proc rec, list[16];
    struct procbus_reader r;
    char name[64], path[128];
    uint64_t gen, head;
    size_t n = 0;
    pid_t pid;
    int ev_added = 0;
    (void)state;

    pbt_name(name);
    pbt_path(name, path);
    assert_int_equal(procbus_open(&r, name), -ENOENT);
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_handover", "--prepare-resume", name, path, (char *)NULL);
        _exit(5);
    }
    assert_int_equal(pbt_wait_child(pid), 0);
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(r.epoch, 1); /* the same segment: no takeover */
    assert_int_equal(procbus_liveness(&r, UINT64_MAX), PROCBUS_SHUTDOWN);
    assert_int_equal(procbus_list(&r, list, 16, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(procbus_get_name(&r, "after", &rec), 0);
    assert_int_equal(rec.id, 5); /* after next_id 4, not after the largest id shown (3) */
    assert_int_equal(rec.restarts, 199);
    gen = procbus_generation(&r);
    assert_int_equal(gen, 1 + 3 + 1 + 200);
    /* the event ring went on without a gap: 3 ADDs, then the ADD of "after" */
    head = __atomic_load_n(&((const struct procbus_header *)r.base)->ring_head, __ATOMIC_ACQUIRE);
    procbus_seek_events(&r, 0);
    for (;;) {
        struct procbus_event ev;
        uint64_t missed = 0;
        if (procbus_next_event(&r, &ev, &missed) != 0)
            break;
        assert_int_equal(missed, 0);
        ev_added += ev.kind == PROCBUS_EV_ADD;
    }
    assert_int_equal(ev_added, 4);
    assert_true(head >= 5);
    procbus_close(&r);
    pbt_unlink(name);
}

static void test_resume_refuses(void **state)
{
    struct procbus_pub *p, *q;
    struct procbus_pub_opts o = {.capacity = 8};
    char name[64], path[128];
    int fd;
    (void)state;

    pbt_name(name);
    pbt_path(name, path);
    o.segment = name;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    /* another descriptor of the same file does not hold the lock */
    fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(procbus_pub_resume(&q, fd, path, 0, NULL), -ENOLCK);
    close(fd);
    assert_int_equal(procbus_pub_resume(&q, -1, path, 0, NULL), -EINVAL);
    procbus_pub_close(p, 0);
    pbt_unlink(name);
}

/* procbus_pub_committed: what readers see (not what is staged), from the publisher and from a
 * child forked before the commit (procbusd's spawned child deciding alone: spawn_child.h). */
static void test_committed(void **state)
{
    struct procbus_pub *p;
    struct procbus_pub_opts o = {.capacity = 8};
    struct procbus_proc rec;
    char name[64], go;
    int pfd[2];
    uint64_t id;
    pid_t pid;
    (void)state;

    pbt_name(name);
    o.segment = name;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    id = procbus_pub_new_id(p);
    pbt_fill(&rec, id, 4242, "run", PROCBUS_STATE_STARTING);
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_committed(p, id, 4242), 0); /* staged only */
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    if (pid == 0) { /* the mapping is shared: it sees the parent's commit after the fork */
        close(pfd[1]);
        _exit(read(pfd[0], &go, 1) == 1 && procbus_pub_committed(p, id, 4242) == 1 &&
                      procbus_pub_committed(p, id + 1, 4242) == 0 &&
                      procbus_pub_committed(p, id, 4243) == 0
                  ? 0
                  : 1);
    }
    close(pfd[0]);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_pub_committed(p, id, 4242), 1);
    assert_int_equal(write(pfd[1], "g", 1), 1);
    close(pfd[1]);
    assert_int_equal(pbt_wait_child(pid), 0);
    rec.state = PROCBUS_STATE_EXITED; /* the run ended: no process any more */
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_committed(p, id, 4242), 1); /* not committed yet */
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_pub_committed(p, id, 4242), 0);
    assert_int_equal(procbus_pub_committed(NULL, id, 4242), 0);
    procbus_pub_close(p, 0);
    pbt_unlink(name);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inherit_from_crashed),
        cmocka_unit_test(test_no_inherit_after_clean_shutdown),
        cmocka_unit_test(test_inherit_twice),
        cmocka_unit_test(test_resume_after_exec),
        cmocka_unit_test(test_resume_refuses),
        cmocka_unit_test(test_committed),
    };
    if (argc == 5 && strcmp(argv[1], "--publish") == 0)
        return publish_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "--inherit-and-die") == 0) {
        struct procbus_pub_opts o = {
            .segment = argv[2], .capacity = 64, .flags = PROCBUS_PUB_INHERIT};
        struct procbus_pub *p;
        _exit(procbus_pub_open(&p, &o) == 0 && procbus_pub_count(p) == 4 ? 0 : 1); /* dies */
    }
    if (argc == 4 && strcmp(argv[1], "--prepare-resume") == 0)
        return prepare_resume_main(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "--resume") == 0)
        return resume_main(atoi(argv[2]), argv[3], strtoull(argv[4], NULL, 10));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
