/* test_procbusd.c - procbusd with real processes, every transition checked through the reader. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus.h"
#include "daemon_harness.h"
#include "support.h"

/* Start procbusd on `body` (program sections) and open a reader on its segment. */
static void start_daemon(struct daemon_h *h, const char *body)
{
    pbt_start_daemon(h, "/tmp/pbd-test", body);
}

static int state_of(struct daemon_h *h, const char *name)
{
    struct procbus_proc p;
    return procbus_get_name(&h->r, name, &p) == 0 ? p.state : -1;
}

/* Run the procbus CLI against this daemon; returns its exit code. */
static int cli(struct daemon_h *h, const char *args)
{
    return pbt_cli(h, args, ">/dev/null 2>&1");
}

/* Collect the STATE events of record `id` from the ring (oldest first) into states[]. */
static int history(struct daemon_h *h, const char *name, uint16_t *states, uint64_t *times, int max)
{
    struct procbus_reader r2;
    struct procbus_event ev;
    struct procbus_proc p;
    uint64_t missed;
    int n = 0;

    assert_int_equal(procbus_get_name(&h->r, name, &p), 0);
    assert_int_equal(procbus_open(&r2, h->seg), 0);
    procbus_seek_events(&r2, PROCBUS_SEEK_OLDEST);
    while (procbus_next_event(&r2, &ev, &missed) == 0 && n < max) {
        if (ev.record_id != p.id || ev.kind != PROCBUS_EV_STATE)
            continue;
        if (times)
            times[n] = ev.time_ns;
        states[n++] = ev.new_state;
    }
    procbus_close(&r2);
    return n;
}

static int count_state(const uint16_t *s, int n, uint16_t want)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += s[i] == want;
    return c;
}

/* ---- tests ---- */

static void test_start_and_exit_status(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    (void)state;

    start_daemon(&h, "[program:ok]\ncommand = sh -c 'exit 0'\nstartsecs = 0\nautorestart = false\n"
                     "[program:code3]\ncommand = sh -c 'exit 3'\nstartsecs = 0\n"
                     "autorestart = false\n"
                     "[program:segv]\ncommand = sh -c 'kill -SEGV $$'\nstartsecs = 0\n"
                     "autorestart = false\n"
                     "[program:runner]\ncommand = sleep 1000\nstartsecs = 1\n"
                     "[program:manual]\ncommand = sleep 1000\nautostart = false\n");
    assert_int_equal(pbt_wait_state(&h, "ok", PROCBUS_STATE_EXITED, 10000, &p), 0);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(p.exit_code, 0);
    assert_int_equal(pbt_wait_state(&h, "code3", PROCBUS_STATE_EXITED, 10000, &p), 0);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(p.exit_code, 3);
    assert_int_equal(pbt_wait_state(&h, "segv", PROCBUS_STATE_EXITED, 10000, &p), 0);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(p.exit_code, SIGSEGV);
    assert_int_equal(pbt_wait_state(&h, "runner", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    assert_true(p.pid > 0);
    assert_int_equal(kill(p.pid, 0), 0);
    assert_int_equal(p.pgid, p.pid); /* its own process group (and session) */
    assert_int_equal(getsid(p.pid), p.pid);
    assert_string_equal(p.comm, "sleep");
    assert_string_equal(p.cmdline, "sleep");
    assert_string_equal(p.cmdline + 6, "1000");
    assert_int_equal(state_of(&h, "manual"), PROCBUS_STATE_STOPPED);

    /* the CLI: status codes, start/stop through the socket */
    /* supervisorctl's exit codes: 3 when a program shown is STOPPED/EXITED/FATAL, 4 for an
     * unknown name; "already started" and "not running" are said, not failures */
    assert_int_equal(cli(&h, "status runner"), 0);
    assert_int_equal(cli(&h, "status manual"), 3);
    assert_int_equal(cli(&h, "status nosuch"), 4);
    assert_int_equal(cli(&h, "status"), 3); /* manual is STOPPED, code0 ... EXITED */
    assert_int_equal(cli(&h, "start manual"), 0);
    assert_int_equal(state_of(&h, "manual"), PROCBUS_STATE_RUNNING);
    assert_int_equal(cli(&h, "start manual"), 0); /* already started */
    assert_int_equal(cli(&h, "stop manual"), 0);
    assert_int_equal(state_of(&h, "manual"), PROCBUS_STATE_STOPPED);
    assert_int_equal(cli(&h, "stop manual"), 0); /* not running */
    assert_int_equal(cli(&h, "start nosuch"), 1);
    assert_int_equal(cli(&h, "frobnicate"), 2);
    assert_int_equal(cli(&h, "signal BOGUS runner"), 1);
    assert_int_equal(cli(&h, "signal USR1 manual"), 1);
    pbt_stop_daemon(&h);
}

static void test_startretries_reach_fatal(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    uint16_t s[64];
    int n;
    (void)state;

    start_daemon(&h, "[program:bad]\ncommand = sh -c 'exit 1'\nstartsecs = 1\nstartretries = 2\n"
                     "[program:missing]\ncommand = /nonexistent/prog\nstartretries = 1\n");
    assert_int_equal(pbt_wait_state(&h, "bad", PROCBUS_STATE_FATAL, 30000, &p), 0);
    assert_int_equal(p.exit_code, 1);
    n = history(&h, "bad", s, NULL, 64);
    /* first start + 2 retries, each STARTING -> BACKOFF, then FATAL */
    assert_int_equal(count_state(s, n, PROCBUS_STATE_STARTING), 3);
    assert_int_equal(count_state(s, n, PROCBUS_STATE_BACKOFF), 3);
    assert_int_equal(count_state(s, n, PROCBUS_STATE_RUNNING), 0);
    assert_int_equal(s[n - 1], PROCBUS_STATE_FATAL);
    assert_int_equal(pbt_wait_state(&h, "missing", PROCBUS_STATE_FATAL, 30000, &p), 0);
    assert_int_equal(cli(&h, "status bad"), 3);
    /* start after FATAL tries again */
    assert_int_equal(cli(&h, "-t 30 start bad"), 1);
    pbt_stop_daemon(&h);
}

static void test_autorestart_variants(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    uint16_t s[256];
    int n;
    (void)state;

    start_daemon(&h, "[program:always]\ncommand = sh -c 'sleep 0.2; exit 0'\nstartsecs = 0\n"
                     "autorestart = true\n"
                     "[program:expected]\ncommand = sh -c 'sleep 0.2; exit 2'\nstartsecs = 0\n"
                     "autorestart = unexpected\nexitcodes = 0,2\n"
                     "[program:unexpected]\ncommand = sh -c 'sleep 0.2; exit 5'\nstartsecs = 0\n"
                     "autorestart = unexpected\nexitcodes = 0,2\n"
                     "[program:never]\ncommand = sh -c 'sleep 0.2; exit 5'\nstartsecs = 0\n"
                     "autorestart = false\n");
    assert_int_equal(pbt_wait_state(&h, "expected", PROCBUS_STATE_EXITED, 10000, &p), 0);
    assert_int_equal(pbt_wait_state(&h, "never", PROCBUS_STATE_EXITED, 10000, &p), 0);
    /* wait until the restarting ones have restarted a few times */
    for (int i = 0; i < 100; i++) {
        struct procbus_proc a, u;
        if (procbus_get_name(&h.r, "always", &a) == 0 &&
            procbus_get_name(&h.r, "unexpected", &u) == 0 && a.restarts >= 3 && u.restarts >= 3)
            break;
        usleep(100000);
    }
    assert_int_equal(procbus_get_name(&h.r, "always", &p), 0);
    assert_true(p.restarts >= 3);
    assert_int_equal(procbus_get_name(&h.r, "unexpected", &p), 0);
    assert_true(p.restarts >= 3);
    assert_int_equal(procbus_get_name(&h.r, "expected", &p), 0);
    assert_int_equal(p.restarts, 0);
    assert_int_equal(p.state, PROCBUS_STATE_EXITED);
    assert_int_equal(procbus_get_name(&h.r, "never", &p), 0);
    assert_int_equal(p.restarts, 0);
    n = history(&h, "always", s, NULL, 256);
    assert_true(count_state(s, n, PROCBUS_STATE_EXITED) >= 3);
    pbt_stop_daemon(&h);
}

static void test_exponential_backoff(void **state)
{
    struct daemon_h h;
    uint16_t s[64];
    uint64_t t[64], prev_backoff = 0;
    double gaps[8];
    int n, ng = 0;
    (void)state;

    start_daemon(&h, "[program:expo]\ncommand = sh -c 'exit 1'\nstartsecs = 1\nstartretries = 3\n"
                     "backoff = exponential\nbackoff_max = 60\n");
    assert_int_equal(pbt_wait_state(&h, "expo", PROCBUS_STATE_FATAL, 60000, NULL), 0);
    n = history(&h, "expo", s, t, 64);
    for (int i = 0; i < n; i++) {
        if (s[i] == PROCBUS_STATE_BACKOFF)
            prev_backoff = t[i];
        else if (s[i] == PROCBUS_STATE_STARTING && prev_backoff != 0 && ng < 8)
            gaps[ng++] = (double)(t[i] - prev_backoff) / 1e9;
    }
    assert_int_equal(ng, 3);
    /* 1 s, 2 s, 4 s: never early; late only by scheduling (a loose bound) */
    for (int i = 0; i < 3; i++) {
        double want = (double)(1 << i);
        print_message("backoff %d: %.3f s (want %.0f s)\n", i + 1, gaps[i], want);
        assert_true(gaps[i] >= want - 0.02);
        assert_true(gaps[i] < want * 2 + 2.0);
    }
    pbt_stop_daemon(&h);
}

static int in_session(pid_t pid, void *sid)
{
    return getsid(pid) == *(pid_t *)sid;
}

static int pids_in_session(pid_t sid, pid_t *out, int max)
{
    return pbt_scan_pids(in_session, &sid, out, max);
}

static int alive_not_zombie(pid_t pid)
{
    char st = pbt_proc_stat(pid, NULL, NULL);
    return st != 0 && st != 'Z' && st != 'X';
}

static void test_stop_escalates_and_kills_group(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    pid_t members[64];
    int n, survivors;
    (void)state;

    /* ignores SIGTERM, as do its two grandchildren; only the group SIGKILL ends them */
    start_daemon(&h, "[program:stubborn]\n"
                     "command = sh -c 'trap \"\" TERM; (trap \"\" TERM; sleep 1000) & "
                     "(trap \"\" TERM; sleep 1000) & while :; do sleep 0.1; done'\n"
                     "startsecs = 0\nstopwaitsecs = 1\n"
                     "[program:grouped]\n"
                     "command = sh -c 'trap \"\" TERM; sleep 1000 & sleep 1000 & wait'\n"
                     "startsecs = 0\nstopwaitsecs = 1\nstopasgroup = true\nkillasgroup = true\n");
    assert_int_equal(pbt_wait_state(&h, "stubborn", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    for (int i = 0; i < 100 && pids_in_session(p.pid, members, 64) < 3; i++)
        usleep(50000);
    n = pids_in_session(p.pid, members, 64);
    assert_true(n >= 3);
    assert_int_equal(cli(&h, "stop stubborn"), 0);
    assert_int_equal(procbus_get_name(&h.r, "stubborn", &p), 0);
    assert_int_equal(p.state, PROCBUS_STATE_STOPPED);
    assert_int_equal(p.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(p.exit_code, SIGKILL); /* it ignored SIGTERM: escalated */
    for (int i = 0; i < 100; i++) {
        survivors = 0;
        for (int k = 0; k < n; k++)
            survivors += alive_not_zombie(members[k]);
        if (survivors == 0)
            break;
        usleep(50000);
    }
    assert_int_equal(survivors, 0);

    assert_int_equal(pbt_wait_state(&h, "grouped", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    for (int i = 0; i < 100 && pids_in_session(p.pid, members, 64) < 3; i++)
        usleep(50000);
    n = pids_in_session(p.pid, members, 64);
    assert_true(n >= 3);
    assert_int_equal(cli(&h, "stop grouped"), 0);
    for (int i = 0; i < 100; i++) {
        survivors = 0;
        for (int k = 0; k < n; k++)
            survivors += alive_not_zombie(members[k]);
        if (survivors == 0)
            break;
        usleep(50000);
    }
    assert_int_equal(survivors, 0);
    pbt_stop_daemon(&h);
}

/* Event sequence number of the first STATE event of `name` entering `st`; 0 if none. */
static uint64_t seq_of(struct daemon_h *h, const char *name, uint16_t st)
{
    struct procbus_reader r2;
    struct procbus_event ev;
    struct procbus_proc p;
    uint64_t missed, seq = 0;

    assert_int_equal(procbus_get_name(&h->r, name, &p), 0);
    assert_int_equal(procbus_open(&r2, h->seg), 0);
    procbus_seek_events(&r2, PROCBUS_SEEK_OLDEST);
    while (procbus_next_event(&r2, &ev, &missed) == 0)
        if (ev.record_id == p.id && ev.kind == PROCBUS_EV_STATE && ev.new_state == st) {
            seq = ev.seq;
            break;
        }
    procbus_close(&r2);
    return seq;
}

static void test_dependencies_and_readiness(void **state)
{
    struct daemon_h h;
    (void)state;

    start_daemon(&h, "[program:db]\ncommand = sh -c 'sleep 0.5; echo >&3; exec sleep 1000'\n"
                     "ready_fd = 3\nstartsecs = 0\n"
                     "[program:api]\ncommand = sleep 1000\ndepends_on = db:ready\nstartsecs = 0\n"
                     "[program:web]\ncommand = sleep 1000\ndepends_on = api:running\n"
                     "startsecs = 0\n"
                     "[program:logger]\n"
                     "command = sh -c 'sleep 0.3; echo \"listening on 8080\"; exec sleep 1000'\n"
                     "ready_log = listening on [0-9]+\nstartsecs = 0\n"
                     "[program:client]\ncommand = sleep 1000\ndepends_on = logger:ready\n"
                     "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "web", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "client", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    assert_int_equal(state_of(&h, "db"), PROCBUS_STATE_READY);
    assert_int_equal(state_of(&h, "logger"), PROCBUS_STATE_READY);
    assert_true(seq_of(&h, "db", PROCBUS_STATE_READY) < seq_of(&h, "api", PROCBUS_STATE_STARTING));
    assert_true(seq_of(&h, "api", PROCBUS_STATE_RUNNING) <
                seq_of(&h, "web", PROCBUS_STATE_STARTING));
    assert_true(seq_of(&h, "logger", PROCBUS_STATE_READY) <
                seq_of(&h, "client", PROCBUS_STATE_STARTING));
    assert_int_equal(cli(&h, "status db"), 0); /* READY counts as running */

    /* shutdown stops dependents before what they depend on */
    assert_int_equal(pbt_term_daemon(&h), 0);
    assert_true(seq_of(&h, "web", PROCBUS_STATE_STOPPED) <
                seq_of(&h, "api", PROCBUS_STATE_STOPPING));
    assert_true(seq_of(&h, "api", PROCBUS_STATE_STOPPED) <
                seq_of(&h, "db", PROCBUS_STATE_STOPPING));
    assert_int_equal(state_of(&h, "db"), PROCBUS_STATE_STOPPED);
    pbt_remove_daemon(&h);
}

static void test_reload(void **state)
{
    struct daemon_h h;
    struct procbus_proc a0, c0, p;
    (void)state;

    start_daemon(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
                     "[program:b]\ncommand = sleep 1000\nstartsecs = 0\n"
                     "[program:c]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "a", PROCBUS_STATE_RUNNING, 10000, &a0), 0);
    assert_int_equal(pbt_wait_state(&h, "b", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "c", PROCBUS_STATE_RUNNING, 10000, &c0), 0);
    pbt_write_conf(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
                       "[program:c]\ncommand = sleep 999\nstartsecs = 0\n"
                       "[program:d]\ncommand = sleep 1000\nstartsecs = 0\n"
                       "[program:bad]\ncommand = sleep 1000\nstartsecs = notanumber\n");
    assert_int_equal(cli(&h, "reload"), 1); /* a bad config changes nothing */
    assert_int_equal(procbus_get_name(&h.r, "d", &p), -ENOENT);
    pbt_write_conf(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
                       "[program:c]\ncommand = sleep 999\nstartsecs = 0\n"
                       "[program:d]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(cli(&h, "reload"), 0);
    assert_int_equal(pbt_wait_state(&h, "d", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    for (int i = 0; i < 200 && procbus_get_name(&h.r, "b", &p) == 0; i++)
        usleep(50000);
    assert_int_equal(procbus_get_name(&h.r, "b", &p), -ENOENT);
    for (int i = 0; i < 200; i++) {
        if (procbus_get_name(&h.r, "c", &p) == 0 && p.state == PROCBUS_STATE_RUNNING &&
            p.pid != c0.pid)
            break;
        usleep(50000);
    }
    assert_int_equal(p.state, PROCBUS_STATE_RUNNING);
    assert_true(p.pid != c0.pid);
    assert_string_equal(p.cmdline + 6, "999");
    assert_int_equal(procbus_get_name(&h.r, "a", &p), 0);
    assert_int_equal(p.pid, a0.pid); /* unchanged: untouched */
    assert_int_equal(p.restarts, 0);
    /* SIGHUP does the same */
    pbt_write_conf(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n");
    kill(h.pid, SIGHUP);
    for (int i = 0; i < 200 && procbus_get_name(&h.r, "d", &p) == 0; i++)
        usleep(50000);
    assert_int_equal(procbus_get_name(&h.r, "d", &p), -ENOENT);
    assert_int_equal(procbus_get_name(&h.r, "a", &p), 0);
    assert_int_equal(p.pid, a0.pid);
    pbt_stop_daemon(&h);
}

static void test_hundred_programs(void **state)
{
    static struct procbus_proc list[200];
    struct daemon_h h;
    char *body = malloc(100 * 80), *w = body;
    size_t n = 0;
    int running = 0;
    (void)state;

    for (int i = 0; i < 100; i++)
        w += sprintf(w, "[program:p%03d]\ncommand = sleep 1000\nstartsecs = 0\n", i);
    start_daemon(&h, body);
    free(body);
    for (int tries = 0; tries < 300 && running < 100; tries++) {
        uint64_t g = procbus_generation(&h.r);
        running = 0;
        assert_int_equal(procbus_list(&h.r, list, 200, &n), 0);
        for (size_t i = 0; i < n; i++)
            running += list[i].state == PROCBUS_STATE_RUNNING && list[i].pid > 0;
        if (running < 100)
            procbus_wait(&h.r, g, 100);
    }
    assert_int_equal(n, 100);
    assert_int_equal(running, 100);
    assert_int_equal(cli(&h, "stop all"), 0);
    assert_int_equal(procbus_list(&h.r, list, 200, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].state, PROCBUS_STATE_STOPPED);
    pbt_stop_daemon(&h);
}

static void test_control_socket_permissions(void **state)
{
    struct daemon_h h;
    struct stat st;
    struct passwd *nobody = getpwnam("nobody");
    pid_t pid;
    (void)state;

    start_daemon(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n");
    /* the tracer loads before anything starts: wait, or the check below proves nothing */
    assert_int_equal(pbt_wait_state(&h, "a", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    assert_int_equal(stat(h.sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    if (geteuid() == 0 && nobody != NULL) {
        chmod(h.dir, 0755);
        pid = fork();
        if (pid == 0) {
            char exe[256];
            if (setgid(nobody->pw_gid) < 0 || setuid(nobody->pw_uid) < 0)
                _exit(100);
            pbt_bin("procbus", exe, sizeof(exe));
            execl(exe, exe, "-S", h.sock, "-s", h.seg, "stop", "a", (char *)NULL);
            _exit(101);
        }
        assert_int_equal(pbt_wait_child(pid), 4); /* cannot reach it */
        assert_int_equal(state_of(&h, "a"), PROCBUS_STATE_RUNNING);
    }
    pbt_stop_daemon(&h);
}

static void test_check_and_bad_config(void **state)
{
    char exe[256], cmd[512], dir[] = "/tmp/pbd-cfg-XXXXXX", path[128];
    FILE *f;
    int st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    f = fopen(path, "w");
    fprintf(f, "[program:x]\ncommand = sleep 1\nstartsecs = -3\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s --check -c %s 2>%s/err", pbt_bin("procbusd", exe, sizeof(exe)),
             path, dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'bad.conf:3' %s/err && grep -q startsecs %s/err", dir, dir);
    assert_int_equal(system(cmd), 0);
    f = fopen(path, "w");
    fprintf(f, "[program:x]\ncommand = sleep 1\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s --check -c %s >/dev/null 2>&1", exe, path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Output goes to size-rotated logs; a flood of output does not stall the loop. */
static void test_logs_rotate_and_loop_stays_responsive(void **state)
{
    struct daemon_h h;
    char body[1024], log[64], log1[128], log2[128], log3[128];
    struct procbus_proc p;
    int i;
    (void)state;

    snprintf(log, sizeof(log), "/tmp/pbd-chatty-%d.log", (int)getpid());
    snprintf(log1, sizeof(log1), "%s.1", log);
    snprintf(log2, sizeof(log2), "%s.2", log);
    snprintf(log3, sizeof(log3), "%s.3", log);
    unlink(log); /* sizes below assume fresh files */
    unlink(log1);
    unlink(log2);
    unlink(log3);
    snprintf(body, sizeof(body),
             "[program:chatty]\ncommand = sh -c 'while :; do echo "
             "0123456789012345678901234567890123456789; echo err >&2; done'\n"
             "startsecs = 0\nredirect_stderr = true\nstdout_logfile = %s\n"
             "stdout_logfile_maxbytes = 64KB\nstdout_logfile_backups = 2\n"
             "[program:quiet]\ncommand = sleep 1000\nstartsecs = 0\n",
             log);
    start_daemon(&h, body);
    assert_int_equal(pbt_wait_state(&h, "quiet", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    for (i = 0; i < 400 && file_size(log2) < 0; i++)
        usleep(50000);
    /* the loop still serves control requests and publishes while chatty floods it */
    assert_int_equal(cli(&h, "stop quiet"), 0);
    assert_int_equal(cli(&h, "start quiet"), 0);
    assert_int_equal(cli(&h, "stop chatty"), 0);
    assert_true(file_size(log) >= 0 && file_size(log) < 64 * 1024);
    /* supervisord's rule: a rotation follows the write that made the file reach maxbytes, so
     * a rotated file holds maxbytes or more, at most one read of the pipe (64 KiB) more */
    assert_true(file_size(log1) >= 64 * 1024 && file_size(log1) < 128 * 1024);
    assert_true(file_size(log2) >= 64 * 1024 && file_size(log2) < 128 * 1024);
    assert_int_equal(file_size(log3), -1); /* backups = 2 */
    {
        char cmd[512];
        /* stderr went to the same log (redirect_stderr) */
        snprintf(cmd, sizeof(cmd), "grep -q '^err$' %s", log1);
        assert_int_equal(system(cmd), 0);
    }
    assert_int_equal(procbus_get_name(&h.r, "chatty", &p), 0);
    assert_int_equal(p.state, PROCBUS_STATE_STOPPED);
    pbt_stop_daemon(&h);
    unlink(log);
    unlink(log1);
    unlink(log2);
}

/* CPU and memory are sampled for the whole tree, not just the main pid. */
static void test_tree_usage_sampled(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    int i;
    (void)state;

    /* the main process sleeps; its child burns CPU */
    start_daemon(&h, "[program:tree]\ncommand = sh -c 'sh -c \"while :; do :; done\" & "
                     "exec sleep 1000'\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "tree", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    for (i = 0; i < 400; i++) {
        if (procbus_get_name(&h.r, "tree", &p) == 0 && p.cpu_ns >= 200000000ull && p.rss_bytes > 0)
            break;
        usleep(50000);
    }
    print_message("tree cpu %.3f s, rss %.1f MiB\n", (double)p.cpu_ns / 1e9,
                  (double)p.rss_bytes / 1048576.0);
    assert_true(p.cpu_ns >= 200000000ull); /* only the child burns: it must be counted */
    assert_true(p.rss_bytes > 0);
    pbt_stop_daemon(&h);
}

/* user= (as root), umask, directory and environment reach the program. */
static void test_credentials_and_environment(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    struct passwd *nobody = getpwnam("nobody");
    char path[64], line[256];
    unsigned uid = 0;
    FILE *f;
    (void)state;

    if (geteuid() != 0 || nobody == NULL)
        skip(); /* user= only applies when procbusd runs as root */
    start_daemon(&h, "[program:asnobody]\ncommand = sleep 1000\nuser = nobody\nstartsecs = 0\n"
                     "[program:envdir]\ncommand = sh -c 'echo \"$GREETING $(pwd) $(umask)\" > "
                     "/tmp/pbd-envdir-out; exec sleep 1000'\ndirectory = /tmp\numask = 027\n"
                     "environment = GREETING=\"hello world\"\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "asnobody", PROCBUS_STATE_RUNNING, 10000, &p), 0);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p.pid);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Uid: %u", &uid) == 1)
            break;
    fclose(f);
    assert_int_equal(uid, nobody->pw_uid);
    assert_int_equal(pbt_wait_state(&h, "envdir", PROCBUS_STATE_RUNNING, 10000, NULL), 0);
    for (int i = 0; i < 200; i++) { /* the program writes it right after starting */
        f = fopen("/tmp/pbd-envdir-out", "r");
        if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            fclose(f);
            break;
        }
        if (f != NULL)
            fclose(f);
        line[0] = '\0';
        usleep(50000);
    }
    assert_string_equal(line, "hello world /tmp 0027\n");
    unlink("/tmp/pbd-envdir-out");
    pbt_stop_daemon(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_start_and_exit_status, pbt_teardown),
        cmocka_unit_test_teardown(test_startretries_reach_fatal, pbt_teardown),
        cmocka_unit_test_teardown(test_autorestart_variants, pbt_teardown),
        cmocka_unit_test_teardown(test_exponential_backoff, pbt_teardown),
        cmocka_unit_test_teardown(test_stop_escalates_and_kills_group, pbt_teardown),
        cmocka_unit_test_teardown(test_dependencies_and_readiness, pbt_teardown),
        cmocka_unit_test_teardown(test_reload, pbt_teardown),
        cmocka_unit_test_teardown(test_hundred_programs, pbt_teardown),
        cmocka_unit_test_teardown(test_control_socket_permissions, pbt_teardown),
        cmocka_unit_test_teardown(test_check_and_bad_config, pbt_teardown),
        cmocka_unit_test_teardown(test_logs_rotate_and_loop_stays_responsive, pbt_teardown),
        cmocka_unit_test_teardown(test_tree_usage_sampled, pbt_teardown),
        cmocka_unit_test_teardown(test_credentials_and_environment, pbt_teardown),
    };
    return cmocka_run_group_tests_name("procbusd", tests, NULL, NULL);
}
