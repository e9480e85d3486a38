/* test_upkeep.c - the segment's upkeep: a removed segment is put back at its name (issue 10 item
 * 12), and the stated heartbeat period sets readers' stale threshold (item 13). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

#define SEC 1000000000ull

/* The first event a reader placed at the oldest event sees: the segment's EPOCH event. */
static void expect_epoch_event(struct procbus_reader *r, uint64_t epoch)
{
    struct procbus_event ev;
    uint64_t missed;

    assert_int_equal(procbus_seek_events(r, PROCBUS_SEEK_OLDEST), 0);
    assert_int_equal(procbus_next_event(r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
    assert_int_equal(ev.record_id, epoch); /* ABI 1.1: the epoch that began */
    assert_int_equal(ev.pid, getpid());
}

/*
 * The library: procbus_pub_keep_name finds the name gone (rm, a tmp cleaner,
 * RemoveIPC) and re-creates it as a takeover of itself: epoch + 1, the same
 * records and generation, events going on after an EPOCH event; readers of
 * the old file see GONE and follow. A second publisher then finds the name
 * busy, as it should (before the fix it started on the empty name and ran
 * everything twice).
 */
static void test_removed_segment_is_put_back(void **state)
{
    char name[64], path[128];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 8, 0), *q = NULL;
    struct procbus_pub_opts o = {0};
    struct procbus_reader r, fresh;
    struct procbus_proc rec, out;
    struct procbus_event ev;
    uint64_t gen, missed;
    (void)state;

    pbt_fill(&rec, 1, 4242, "web", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    gen = procbus_pub_generation(p);
    assert_int_equal(procbus_open(&r, name), 0);
    expect_epoch_event(&r, 1);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_NOW), 0);
    assert_int_equal(procbus_pub_keep_name(p), 0); /* still there: nothing to do */

    assert_int_equal(unlink(pbt_path(name, path)), 0);
    assert_int_equal(procbus_open(&fresh, name), -ENOENT);
    assert_int_equal(procbus_pub_keep_name(p), 1);
    assert_int_equal(procbus_pub_epoch(p), 2);
    assert_int_equal(procbus_pub_keep_name(p), 0);

    /* a new reader: the same snapshot, epoch 2, its EPOCH event first */
    assert_int_equal(procbus_open(&fresh, name), 0);
    assert_int_equal(fresh.epoch, 2);
    assert_int_equal(procbus_generation(&fresh), gen);
    assert_int_equal(procbus_get_name(&fresh, "web", &out), 0);
    assert_int_equal(out.pid, 4242);
    expect_epoch_event(&fresh, 2);
    procbus_close(&fresh);

    /* the old reader: GONE, follows, and sees the events go on */
    assert_int_equal(procbus_liveness(&r, UINT64_MAX), PROCBUS_GONE);
    assert_int_equal(procbus_follow(&r), 1);
    assert_int_equal(r.epoch, 2);
    rec.state = PROCBUS_STATE_STOPPED;
    assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_STATE);
    assert_int_equal(ev.new_state, PROCBUS_STATE_STOPPED);
    assert_int_equal(missed, 0);
    assert_int_equal(procbus_get_pid(&r, 4242, &out), 0);
    assert_int_equal(out.state, PROCBUS_STATE_STOPPED);
    procbus_close(&r);

    /* a second publisher on the name: busy, not a duplicate */
    o.segment = name;
    assert_int_equal(procbus_pub_open(&q, &o), -EBUSY);

    /* removed, and a second publisher got there first: keep_name says so, and goes on */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(procbus_pub_open(&q, &o), 0);
    assert_int_equal(procbus_pub_keep_name(p), -EBUSY);
    assert_int_equal(procbus_pub_commit(p), 0);
    procbus_pub_close(q, PROCBUS_PUB_UNLINK);
    assert_int_equal(procbus_pub_keep_name(p), 1); /* the name is free again: back */
    assert_int_equal(procbus_open(&fresh, name), 0);
    assert_int_equal(procbus_get_name(&fresh, "web", &out), 0);
    procbus_close(&fresh);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

/* A copy of a segment whose heartbeat is `age_ns` old and whose stated period is `iv_ns`. */
static int verdict_at(const unsigned char *img, size_t len, uint64_t iv_ns, uint64_t age_ns,
                      uint64_t *stale_after)
{
    unsigned char *copy = malloc(len);
    struct procbus_header *h = (struct procbus_header *)(void *)copy;
    struct procbus_reader r;
    int l;

    assert_non_null(copy);
    memcpy(copy, img, len);
    h->heartbeat_ns = pb_now_ns(CLOCK_MONOTONIC) - age_ns;
    h->heartbeat_interval_ns = iv_ns;
    assert_int_equal(procbus_attach(&r, copy, len), 0);
    *stale_after = procbus_stale_after_ns(&r);
    l = procbus_liveness(&r, *stale_after);
    free(copy);
    return l;
}

/*
 * Item 13: the period a publisher states (heartbeat_interval_ns) sets the
 * threshold: 10 periods, at least 1 s, clamped for absurd values; 5 s when
 * none is stated (an ABI 1.0 publisher). A healthy publisher beating every
 * 8 s is no longer called stale 6 s after a beat.
 */
static void test_stale_threshold_follows_the_period(void **state)
{
    char name[64], path[128];
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    unsigned char *img;
    size_t len;
    uint64_t t;
    (void)state;

    o.segment = pbt_name(name);
    o.capacity = 4;
    o.heartbeat_interval_ns = 8 * SEC;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    img = (unsigned char *)pbt_slurp(pbt_path(name, path), &len);
    assert_non_null(img);
    assert_int_equal(((struct procbus_header *)(void *)img)->heartbeat_interval_ns, 8 * SEC);
    assert_int_equal(verdict_at(img, len, 8 * SEC, 6 * SEC, &t), PROCBUS_ALIVE);
    assert_int_equal(t, 80 * SEC);
    assert_int_equal(verdict_at(img, len, 8 * SEC, 81 * SEC, &t), PROCBUS_STALE);
    assert_int_equal(verdict_at(img, len, 500000000ull, 6 * SEC, &t), PROCBUS_STALE);
    assert_int_equal(t, 5 * SEC);
    assert_int_equal(verdict_at(img, len, 0, 6 * SEC, &t), PROCBUS_STALE); /* not stated */
    assert_int_equal(t, PROCBUS_STALE_AFTER_NS);
    assert_int_equal(verdict_at(img, len, 0, 4 * SEC, &t), PROCBUS_ALIVE);
    assert_int_equal(verdict_at(img, len, 1000000ull, 0, &t), PROCBUS_ALIVE);
    assert_int_equal(t, PROCBUS_STALE_MIN_NS); /* 1 ms beats: still at least 1 s */
    assert_int_equal(verdict_at(img, len, UINT64_MAX, 0, &t), PROCBUS_ALIVE);
    assert_int_equal(t, PROCBUS_MAX_HEARTBEAT_NS * PROCBUS_STALE_BEATS); /* no overflow */
    free(img);

    /* a new period is stated at once (procbusd: after a reload) */
    procbus_pub_set_heartbeat_interval(p, 2 * SEC);
    img = (unsigned char *)pbt_slurp(path, &len);
    assert_non_null(img);
    assert_int_equal(((struct procbus_header *)(void *)img)->heartbeat_interval_ns, 2 * SEC);
    free(img);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);

    o.heartbeat_interval_ns = PROCBUS_MAX_HEARTBEAT_NS + 1;
    assert_int_equal(procbus_pub_open(&p, &o), -EINVAL);
}

/*
 * procbusd: heartbeat_ms is stated in the segment (8000 ms: readers wait
 * 80 s, and `procbus status` says nothing about a stale daemon), and a
 * segment removed behind it is back at its name at the next heartbeat, with
 * its programs, and a warning in the log naming the likely cause.
 */
static void test_procbusd_upkeep(void **state)
{
    struct daemon_h h;
    struct procbus_reader r;
    struct procbus_proc p;
    char path[128], log[4096], cmd[512];
    long t0;
    int rc = -1;
    (void)state;

    pbt_start_daemon(&h, "/tmp/pbd-upkeep",
                     "[procbusd]\nheartbeat_ms = 8000\n"
                     "[program:web]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "web", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    assert_int_equal(procbus_stale_after_ns(&h.r), 80 * SEC);
    assert_int_equal(pbt_cli(&h, "status", ">/dev/null 2>&1"), 0);
    pbt_write_conf(&h, "[procbusd]\nheartbeat_ms = 300\n"
                       "[program:web]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(pbt_cli(&h, "reload", ">/dev/null 2>&1"), 0);
    /* the 8 s tick that was armed must pass first; then every 300 ms */
    for (t0 = pbt_now_ms(); procbus_stale_after_ns(&h.r) != 3 * SEC; usleep(50000))
        assert_true(pbt_now_ms() - t0 < 30000);

    assert_int_equal(unlink(pbt_path(h.seg, path)), 0);
    for (t0 = pbt_now_ms(); (rc = procbus_open(&r, h.seg)) != 0; usleep(20000))
        assert_true(pbt_now_ms() - t0 < 30000);
    assert_int_equal(r.epoch, 2);
    assert_int_equal(procbus_get_name(&r, "web", &p), 0);
    assert_int_equal(p.state, PROCBUS_STATE_RUNNING);
    procbus_close(&r);
    assert_int_equal(procbus_liveness(&h.r, UINT64_MAX), PROCBUS_GONE);
    assert_int_equal(procbus_follow(&h.r), 1);
    /* the warning may follow the re-link by a moment: poll the whole log for it */
    snprintf(cmd, sizeof(cmd), "%s/procbusd.log", h.dir);
    for (t0 = pbt_now_ms();; usleep(50000)) {
        char *text = pbt_slurp(cmd, NULL);
        int found = text != NULL && strstr(text, "was removed behind procbusd") != NULL &&
                    strstr(text, "RemoveIPC") != NULL;
        if (!found && pbt_now_ms() - t0 >= 30000 && text != NULL)
            snprintf(log, sizeof(log), "%s", text);
        free(text);
        if (found)
            break;
        if (pbt_now_ms() - t0 >= 30000)
            fail_msg("no 'was removed behind procbusd ... RemoveIPC' line in the log:\n%s", log);
    }
    pbt_stop_daemon(&h);
}

/* Processes whose command line has the argument `arg`. */
static int count_with_arg(const char *arg)
{
    DIR *dir = opendir("/proc");
    struct dirent *e;
    int n = 0;

    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL) {
        char path[300], buf[512];
        size_t len = 0;
        FILE *f;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        if ((f = fopen(path, "re")) == NULL)
            continue;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
            buf[len] = '\0';
            if (strcmp(buf + i, arg) == 0) {
                n++;
                break;
            }
        }
    }
    closedir(dir);
    return n;
}

/*
 * Item 12, the moment in between: the segment file removed behind procbusd
 * (and, as a tmp cleaner would, its control socket too), and a second
 * procbusd with the same configuration started before the first puts the file
 * back (heartbeat_ms = 8000: the whole gap). The second is refused before it
 * touches the name (the claim, claim.h) and runs nothing; the first puts its
 * segment and its socket back and keeps them: one copy of the program, ever.
 */
static void second_daemon_in_the_gap(int remove_socket)
{
    struct daemon_h h;
    struct procbus_reader r;
    struct procbus_proc p;
    char path[128], errpath[160], arg[32], exe[256], *err;
    long t0;
    pid_t second;
    int st = 0, rc;

    snprintf(arg, sizeof(arg), "1000.%d%d", (int)getpid() % 1000, remove_socket);
    {
        char body[256];
        snprintf(body, sizeof(body),
                 "[procbusd]\nheartbeat_ms = 8000\n"
                 "[program:web]\ncommand = sleep %s\nstartsecs = 0\n",
                 arg);
        pbt_start_daemon(&h, "/tmp/pbd-gap", body);
    }
    assert_int_equal(pbt_wait_state(&h, "web", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    assert_int_equal(count_with_arg(arg), 1);
    assert_int_equal(unlink(pbt_path(h.seg, path)), 0);
    if (remove_socket)
        assert_int_equal(unlink(h.sock), 0);

    snprintf(errpath, sizeof(errpath), "%s/second.err", h.dir);
    pbt_bin("procbusd", exe, sizeof(exe));
    second = fork();
    assert_true(second >= 0);
    if (second == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        execl(exe, exe, "-c", h.conf, (char *)NULL);
        _exit(127);
    }
    for (t0 = pbt_now_ms(); (rc = (int)waitpid(second, &st, WNOHANG)) == 0; usleep(20000))
        if (pbt_now_ms() - t0 > 30000) {
            kill(second, SIGTERM);
            waitpid(second, &st, 0);
            fail_msg("the second procbusd is still running after 30 s (%d copies of web)",
                     count_with_arg(arg));
        }
    err = pbt_slurp(errpath, NULL);
    print_message("second procbusd: status 0x%x: %s", st, err ? err : "(no stderr)\n");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_non_null(err);
    assert_non_null(strstr(err, "another procbusd owns it"));
    free(err);
    assert_int_equal(count_with_arg(arg), 1);

    /* the first puts its segment back (epoch 2) and its socket, and still runs web once */
    for (t0 = pbt_now_ms(); procbus_open(&r, h.seg) != 0; usleep(20000))
        assert_true(pbt_now_ms() - t0 < 30000);
    assert_int_equal(r.epoch, 2);
    {
        struct procbus_info inf;
        assert_int_equal(procbus_info(&r, &inf), 0);
        assert_int_equal(inf.publisher_pid, h.pid);
    }
    procbus_close(&r);
    if (remove_socket)
        for (t0 = pbt_now_ms(); access(h.sock, F_OK) != 0; usleep(20000))
            assert_true(pbt_now_ms() - t0 < 30000);
    assert_int_equal(pbt_cli(&h, "status web", ">/dev/null 2>&1"), 0);
    assert_int_equal(count_with_arg(arg), 1);
    assert_int_equal(procbus_follow(&h.r), 1); /* the harness's reader: to the new file */
    pbt_stop_daemon(&h);
}

static void test_second_daemon_segment_removed(void **state)
{
    (void)state;
    second_daemon_in_the_gap(0);
}

static void test_second_daemon_segment_and_socket_removed(void **state)
{
    (void)state;
    second_daemon_in_the_gap(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_removed_segment_is_put_back),
        cmocka_unit_test(test_stale_threshold_follows_the_period),
        cmocka_unit_test_teardown(test_procbusd_upkeep, pbt_teardown),
        cmocka_unit_test_teardown(test_second_daemon_segment_removed, pbt_teardown),
        cmocka_unit_test_teardown(test_second_daemon_segment_and_socket_removed, pbt_teardown),
    };
    return cmocka_run_group_tests_name("upkeep", tests, NULL, NULL);
}
