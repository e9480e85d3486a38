/* test_loop.c - procbusd's loop never blocks: mass start-ups, SIGTERM during one, spawn failures.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procbus.h"
#include "daemon_harness.h"
#include "support.h"

/*
 * No timing assertions here: each test checks an ordering (a stop finished before the
 * start-up did; an exit committed before its restart) or a fact (no warning, no process left,
 * a failure's step and errno in the log), with generous deadlines only for waiting.
 */

/* N programs for a mass start-up (fewer under sanitizers). */
static int scaled(int n)
{
    int s = (int)(n * pbt_scale());
    return s < 200 ? 200 : s;
}

/* Room for `n` programs' descriptors (procbusd inherits the limit); skips when the hard limit
 * is too low. */
static void need_fds(int n)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)(3 * n + 256)) {
        print_message("skipped: %d programs need %d descriptors, the hard limit is %llu\n", n,
                      3 * n + 256, (unsigned long long)rl.rlim_max);
        skip();
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)(3 * n + 256)) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)(3 * n + 256) : rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

/* The config of n `sleep 1000` programs p0000..., RUNNING at their exec (startsecs = 0). */
static char *sleepers(int n)
{
    char *body = malloc(512);

    assert_non_null(body);
    snprintf(body, 512,
             "[procbusd]\ncapacity = %d\n\n[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)04d\nstartsecs = 0\n",
             n + 256, n);
    return body;
}

/* What the event ring said so far about the programs' start-up (a reader following it). */
struct startup {
    struct procbus_reader r;
    int running;           /* STARTING -> RUNNING events seen */
    uint64_t last_running; /* seq of the latest of them */
    uint64_t stopped;      /* seq of p0000's -> STOPPED event, 0 if none yet */
    uint64_t p0_id;
};

static void follow(struct startup *s)
{
    struct procbus_event ev;
    uint64_t missed = 0;

    while (procbus_next_event(&s->r, &ev, &missed) == 0) {
        if (ev.kind != PROCBUS_EV_STATE)
            continue;
        if (ev.old_state == PROCBUS_STATE_STARTING && ev.new_state == PROCBUS_STATE_RUNNING) {
            s->running++;
            s->last_running = ev.seq;
        }
        if (ev.record_id == s->p0_id && ev.new_state == PROCBUS_STATE_STOPPED && s->stopped == 0)
            s->stopped = ev.seq;
    }
    assert_int_equal(missed, 0); /* the ring holds a 1,000-program start-up */
}

/* During a 1,000-program start, `procbus status` never says the daemon is stale, and a
 * `procbus stop` of the first program completes before the last program is RUNNING. */
static void test_thousand_start_stays_responsive(void **state)
{
    const int n = scaled(1000);
    char *body = sleepers(n), errpath[160], cmd[256];
    struct daemon_h h;
    struct startup s;
    struct procbus_proc p;
    long deadline;
    int polls = 0;
    (void)state;

    need_fds(n);
    memset(&s, 0, sizeof(s));
    pbt_start_daemon(&h, "/tmp/pbd-loop", body);
    free(body);
    assert_int_equal(procbus_open(&s.r, h.seg), 0);
    procbus_seek_events(&s.r, PROCBUS_SEEK_OLDEST);
    assert_int_equal(pbt_wait_state(&h, "p0000", PROCBUS_STATE_RUNNING, 60000, &p), 0);
    s.p0_id = p.id;

    /* the stop: its CLI waits until p0000 is STOPPED */
    assert_int_equal(pbt_cli(&h, "stop p0000", ">/dev/null 2>&1"), 0);
    follow(&s);
    assert_true(s.stopped != 0);

    /* status while the others keep starting: never a liveness warning */
    snprintf(errpath, sizeof(errpath), "%s/status.err", h.dir);
    snprintf(cmd, sizeof(cmd), ">/dev/null 2>%s", errpath);
    deadline = pbt_now_ms() + 300000;
    while (s.running < n && pbt_now_ms() < deadline) {
        char *err;
        pbt_cli(&h, "status", cmd);
        err = pbt_slurp(errpath, NULL);
        assert_non_null(err);
        if (strstr(err, "responding") != NULL || strstr(err, "stale") != NULL)
            fail_msg("procbus status during the start-up: %s", err);
        free(err);
        polls++;
        follow(&s);
    }
    assert_int_equal(s.running, n); /* p0000 too: it ran before its stop */
    print_message("%d programs; p0000 STOPPED at event %llu, the last RUNNING at %llu; %d "
                  "status polls\n",
                  n, (unsigned long long)s.stopped, (unsigned long long)s.last_running, polls);
    /* the order, not the time: the stop completed while programs were still starting */
    assert_true(s.stopped < s.last_running);
    procbus_close(&s.r);
    pbt_stop_daemon(&h);
}

/* ---- SIGTERM during a start-up ---- */

static int live_child_of(pid_t pid, void *arg)
{
    pid_t ppid = 0;
    char st = pbt_proc_stat(pid, &ppid, NULL);
    return st != 0 && st != 'Z' && ppid == *(pid_t *)arg;
}

/* This process's children that are alive: as a child subreaper, it inherits whatever
 * procbusd left when it exited. SIGKILLs and reaps them; how many there were. */
static int leftovers(void)
{
    pid_t me = getpid(), pids[256];
    int n = pbt_scan_pids(live_child_of, &me, pids, 256), i;

    for (i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return n;
}

/* SIGTERM while 2,000 programs start (some RUNNING, some forked, most not yet): procbusd
 * exits 0 and no process it started is left, forked-but-not-exec'd ones included. */
static void test_sigterm_during_start_leaves_nothing(void **state)
{
    const int n = scaled(2000);
    char *body = sleepers(n);
    struct procbus_proc *list = calloc((size_t)n + 64, sizeof(*list));
    struct daemon_h h;
    struct startup s;
    size_t got = 0, i;
    long deadline;
    int never_ran = 0, left, st;
    (void)state;

    assert_non_null(list);
    need_fds(n);
    memset(&s, 0, sizeof(s));
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    assert_int_equal(leftovers(), 0); /* nothing of an earlier test */
    pbt_start_daemon(&h, "/tmp/pbd-loop", body);
    free(body);
    assert_int_equal(procbus_open(&s.r, h.seg), 0);
    procbus_seek_events(&s.r, PROCBUS_SEEK_OLDEST);
    deadline = pbt_now_ms() + 120000;
    while (s.running < n / 20 && pbt_now_ms() < deadline) {
        uint64_t g = procbus_generation(&s.r);
        follow(&s);
        if (s.running < n / 20)
            procbus_wait(&s.r, g, 100);
    }
    assert_true(s.running >= n / 20);
    st = pbt_term_daemon(&h);
    assert_int_equal(st, 0);
    left = leftovers();
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
    /* it was during the start-up: some programs never ran */
    assert_int_equal(procbus_list(&h.r, list, (size_t)n + 64, &got), 0);
    for (i = 0; i < got; i++) {
        assert_int_not_equal(list[i].state, PROCBUS_STATE_RUNNING);
        assert_int_not_equal(list[i].state, PROCBUS_STATE_STARTING);
        never_ran += list[i].pid == 0;
    }
    print_message("SIGTERM at %d of %d RUNNING: %d never started, %d process(es) left\n", s.running,
                  n, never_ran, left);
    assert_int_equal(left, 0);
    assert_true(never_ran > 0);
    free(list);
    procbus_close(&s.r);
    pbt_remove_daemon(&h);
}

/* ---- spawn failures ---- */

/* The daemon's log (its stderr), NUL-terminated; caller frees. */
static char *daemon_log(const struct daemon_h *h)
{
    char path[160];
    char *text;

    snprintf(path, sizeof(path), "%s/procbusd.log", h->dir);
    text = pbt_slurp(path, NULL);
    assert_non_null(text);
    return text;
}

/* Wait until the log holds `what`; fails with the log after 60 s. */
static void wait_log(const struct daemon_h *h, const char *what)
{
    long deadline = pbt_now_ms() + 60000;

    for (;;) {
        char *log = daemon_log(h);
        int found = strstr(log, what) != NULL;
        if (found || pbt_now_ms() > deadline) {
            if (!found)
                fail_msg("not in procbusd's log: \"%s\"; the log:\n%s", what, log);
            free(log);
            return;
        }
        free(log);
        usleep(20000);
    }
}

/* 1 if procbusd accepts a program with an unknown user at load (then its spawn reports it);
 * 0 if the load refuses it, naming the user (the report comes earlier, which is fine). */
static int unknown_user_loads(const char *user)
{
    char dir[64] = "/tmp/pbd-loop-check-XXXXXX", conf[128], out[128], exe[256], cmd[700];
    char *text;
    FILE *f;
    int rc;

    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/procbus.conf", dir);
    snprintf(out, sizeof(out), "%s/check.out", dir);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[program:nouser]\ncommand = sleep 1000\nuser = %s\n", user);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s --check -c %s >%s 2>&1", pbt_bin("procbusd", exe, sizeof(exe)),
             conf, out);
    rc = system(cmd);
    text = pbt_slurp(out, NULL);
    assert_non_null(text);
    if (rc != 0) {
        print_message("an unknown user is refused at load: %s", text);
        assert_non_null(strstr(text, user));
    }
    free(text);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return rc == 0;
}

/* A missing binary, a bad directory (and an unknown user, where the configuration lets it
 * through to the spawn): each reported with its step and errno, FATAL (startretries = 0)
 * with no exit recorded, while 200 other programs start. */
static void test_spawn_failures_reported(void **state)
{
    const int good = 200;
    const char *nouser = "pbd-no-such-user";
    int with_user = geteuid() == 0 && getpwnam(nouser) == NULL && unknown_user_loads(nouser);
    char body[1024], user_section[160] = "";
    struct daemon_h h;
    struct procbus_proc p;
    struct procbus_proc *list = calloc(good + 64, sizeof(*list));
    size_t got = 0, i;
    int running = 0;
    long deadline;
    (void)state;

    assert_non_null(list);
    if (with_user)
        snprintf(user_section, sizeof(user_section),
                 "[program:nouser]\ncommand = sleep 1000\nuser = %s\nstartretries = 0\n"
                 "priority = 1\n",
                 nouser);
    snprintf(body, sizeof(body),
             "[program:nobin]\ncommand = /nonexistent/pbd-test-prog\nstartretries = 0\n"
             "priority = 1\n"
             "[program:nodir]\ncommand = sleep 1000\ndirectory = /nonexistent-pbd-dir\n"
             "startretries = 0\npriority = 1\n"
             "%s"
             "[program:good]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = good%%(process_num)03d\nstartsecs = 0\npriority = 2\n",
             user_section, good);
    pbt_start_daemon(&h, "/tmp/pbd-loop", body);
    assert_int_equal(pbt_wait_state(&h, "nobin", PROCBUS_STATE_FATAL, 60000, &p), 0);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_NONE); /* it never ran: no exit to report */
    assert_int_equal(p.pid, 0);                       /* ... and no pid */
    assert_int_equal(pbt_wait_state(&h, "nodir", PROCBUS_STATE_FATAL, 60000, &p), 0);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_NONE);
    wait_log(&h, "nobin: spawn failed at exec /nonexistent/pbd-test-prog: "
                 "No such file or directory (errno 2, ENOENT)");
    wait_log(&h, "nodir: spawn failed at chdir: No such file or directory (errno 2, ENOENT)");
    if (with_user) {
        assert_int_equal(pbt_wait_state(&h, "nouser", PROCBUS_STATE_FATAL, 60000, &p), 0);
        wait_log(&h, "nouser: spawn failed at user pbd-no-such-user: no such user (errno 2, "
                     "ENOENT)");
    }
    /* and the others started all the same */
    deadline = pbt_now_ms() + 120000;
    while (running < good && pbt_now_ms() < deadline) {
        uint64_t g = procbus_generation(&h.r);
        running = 0;
        assert_int_equal(procbus_list(&h.r, list, good + 64, &got), 0);
        for (i = 0; i < got; i++)
            running +=
                strncmp(list[i].name, "good", 4) == 0 && list[i].state == PROCBUS_STATE_RUNNING;
        if (running < good)
            procbus_wait(&h.r, g, 200);
    }
    assert_int_equal(running, good);
    free(list);
    pbt_stop_daemon(&h);
}

/* ---- publish first ---- */

/* An exit is committed before its restart is even forked: with autorestart, each EXITED
 * event belongs to an earlier commit (generation) than the STARTING of the next run. */
static void test_exit_committed_before_restart(void **state)
{
    struct daemon_h h;
    struct procbus_reader r;
    struct procbus_event ev;
    struct procbus_proc p;
    uint64_t exited_gen = 0, missed;
    int pairs = 0;
    long deadline;
    (void)state;

    pbt_start_daemon(&h, "/tmp/pbd-loop",
                     "[program:again]\ncommand = sleep 0.2\nautorestart = true\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "again", PROCBUS_STATE_RUNNING, 60000, &p), 0);
    assert_int_equal(procbus_open(&r, h.seg), 0);
    procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
    deadline = pbt_now_ms() + 60000;
    while (pairs < 3 && pbt_now_ms() < deadline) {
        uint64_t g = procbus_generation(&r);
        while (procbus_next_event(&r, &ev, &missed) == 0) {
            if (ev.record_id != p.id || ev.kind != PROCBUS_EV_STATE)
                continue;
            if (ev.new_state == PROCBUS_STATE_EXITED) {
                exited_gen = ev.generation;
            } else if (ev.new_state == PROCBUS_STATE_STARTING && exited_gen != 0) {
                assert_true(exited_gen < ev.generation);
                exited_gen = 0;
                pairs++;
            }
        }
        procbus_wait(&r, g, 200);
    }
    assert_int_equal(pairs, 3);
    procbus_close(&r);
    pbt_stop_daemon(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exit_committed_before_restart, pbt_teardown),
        cmocka_unit_test_teardown(test_spawn_failures_reported, pbt_teardown),
        cmocka_unit_test_teardown(test_thousand_start_stays_responsive, pbt_teardown),
        cmocka_unit_test_teardown(test_sigterm_during_start_leaves_nothing, pbt_teardown),
    };
    if (argc >= 2) /* a test name or a glob: run only those */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
