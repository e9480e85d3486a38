/* test_crash_parity.c - crash-only procbusd with supervisord parity's features: an event
 * listener, groups, AUTO logs and stdin pipes across `procbus reexec`, SIGRTMIN+1, kill -9. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "procbus.h"
#include "support.h"

/*
 * The configuration: [group:grp] of `talk` (a numbered line every 5 ms into its AUTO log; it
 * exits 9 as soon as its stdin pipe ends, which is what a program reading its stdin sees when
 * nobody holds the pipe's other end) and `slp` (sleep); [group:gone] of `c`, removed with
 * `procbus remove` before the upgrades; [eventlistener:lis] taking PROCESS_STATE events (each
 * one recorded in a file with the listener's pid and the event's serial).
 *
 * Across `procbus reexec` and SIGRTMIN+1: every pid stays, the listener is the same process and
 * gets the events made after the upgrade with serials going on from before it, `talk` never
 * sees its stdin end and logs on into the one AUTO file (every line once, in order), `gone`
 * stays removed, the pidfile names procbusd. Across kill -9 and a restart (adoption): `talk`
 * and `slp` are adopted (same pids), `talk`'s stdin is kept by the fd holder and its AUTO file
 * is logged on into; the listener is started again (its place in the protocol died with
 * procbusd: documented) and gets the events made after; `gone` is back as the configuration
 * has it (its removal lived in the dead procbusd's memory: documented).
 */

static char g_self[512], g_mark[48];

/* ---- the programs' side ---- */

static int talk_main(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    char line[64];

    for (unsigned long long n = 1;; n++) {
        int k = snprintf(line, sizeof(line), "talk %llu\n", n);
        if (poll(&p, 1, 5) > 0) { /* (nothing is ever written to it) */
            char c;
            if (read(0, &c, 1) <= 0)
                return 9; /* its stdin ended */
        }
        if (write(1, line, (size_t)k) != k)
            return 1;
    }
}

/* supervisord's listener protocol: READY, a header line, its payload, RESULT 2 OK. Each event
 * is appended to `rec` as "PID SERIAL EVENTNAME PROCESSNAME". */
static int listener_main(const char *rec)
{
    char head[512], body[4096];

    for (;;) {
        char *p, name[64] = "", ev[64] = "", proc[64] = "";
        unsigned long long serial = 0;
        size_t len = 0;
        FILE *f;
        fputs("READY\n", stdout);
        fflush(stdout);
        if (fgets(head, sizeof(head), stdin) == NULL)
            return 7;
        p = strstr(head, "len:");
        if (p != NULL)
            len = strtoul(p + 4, NULL, 10);
        if ((p = strstr(head, "serial:")) != NULL)
            serial = strtoull(p + 7, NULL, 10);
        if ((p = strstr(head, "eventname:")) != NULL)
            sscanf(p + 10, "%63s", ev);
        if (len >= sizeof(body) || fread(body, 1, len, stdin) != len)
            return 8;
        body[len] = '\0';
        if ((p = strstr(body, "processname:")) != NULL)
            sscanf(p + 12, "%63s", proc);
        snprintf(name, sizeof(name), "%s", proc);
        f = fopen(rec, "a");
        if (f != NULL) {
            fprintf(f, "%d %llu %s %s\n", (int)getpid(), serial, ev, name);
            fclose(f);
        }
        fputs("RESULT 2\nOK", stdout);
        fflush(stdout);
    }
}

/* ---- the test's side ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Every process with our mark in its environment. */
static int marked(pid_t pid, void *arg)
{
    char path[64], *env;
    size_t len = 0;
    int found = 0;
    char st = pbt_proc_stat(pid, NULL, NULL);

    if (st == 0 || st == 'Z' || st == 'X')
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    env = pbt_slurp(path, &len);
    for (size_t i = 0; env != NULL && i < len; i += strlen(env + i) + 1)
        found |= strncmp(env + i, "PBT_CRASHPAR=", 13) == 0 && strcmp(env + i + 13, arg) == 0;
    free(env);
    return found;
}

/* The AUTO log files of `talk`'s stdout in `dir`: how many, the (last) one into path. */
static int talk_logs(const char *dir, char *path, size_t len)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL)
        if (strncmp(e->d_name, "talk-stdout---", 14) == 0) {
            snprintf(path, len, "%s/%s", dir, e->d_name);
            n++;
        }
    closedir(dp);
    return n;
}

/* talk's lines in its log: all of them "talk N", N from 1 without a gap or a repeat; how many. */
static unsigned long long talk_lines(const char *path)
{
    char *text = pbt_slurp(path, NULL), *save = NULL, *line;
    unsigned long long want = 1;

    assert_non_null(text);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long got = 0;
        if (sscanf(line, "talk %llu", &got) != 1 || got != want) {
            print_message("%s: line %llu is '%s'\n", path, want, line);
            fail();
        }
        want++;
    }
    free(text);
    return want - 1;
}

/* Wait until talk's one AUTO log has `at_least` lines (all in order); its count. */
static unsigned long long wait_lines(const char *dir, unsigned long long at_least)
{
    char path[512];
    unsigned long long n = 0;

    for (long t0 = pbt_now_ms(); n < at_least; sleep_ms(20)) {
        assert_int_equal(talk_logs(dir, path, sizeof(path)), 1);
        n = talk_lines(path);
        assert_true(pbt_now_ms() - t0 < 30000);
    }
    return n;
}

/* The largest serial in the record file, and whether listener `pid` recorded event `ev` of
 * `proc` with a serial above `after`. */
static unsigned long long recorded(const char *rec, pid_t pid, const char *ev, const char *proc,
                                   unsigned long long after, int *seen)
{
    char *text = pbt_slurp(rec, NULL), *save = NULL, *line;
    unsigned long long top = 0;

    *seen = 0;
    for (line = text != NULL ? strtok_r(text, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        int lp = 0;
        unsigned long long serial = 0;
        char e[64] = "", p[64] = "";
        if (sscanf(line, "%d %llu %63s %63s", &lp, &serial, e, p) < 3)
            continue;
        top = serial > top ? serial : top;
        if ((pid == 0 || lp == pid) && serial > after && !strcmp(e, ev) && !strcmp(p, proc))
            *seen = 1;
    }
    free(text);
    return top;
}

/* Wait until listener `pid` (0: any) recorded `ev` of `proc` with a serial above `after`. */
static void wait_event(const char *rec, pid_t pid, const char *ev, const char *proc,
                       unsigned long long after)
{
    int seen = 0;

    for (long t0 = pbt_now_ms(); !seen; sleep_ms(20)) {
        recorded(rec, pid, ev, proc, after, &seen);
        if (!seen && pbt_now_ms() - t0 > 30000) {
            char *text = pbt_slurp(rec, NULL);
            print_message("no %s of %s by listener %d after serial %llu; recorded:\n%s", ev, proc,
                          (int)pid, after, text ? text : "(nothing)\n");
            free(text);
            fail();
        }
    }
}

/* Wait until procbusd's log (h->dir/procbusd.log) says `what` `times` times. */
static void wait_log(const struct daemon_h *h, const char *what, int times)
{
    char path[160];

    snprintf(path, sizeof(path), "%s/procbusd.log", h->dir);
    for (long t0 = pbt_now_ms();; sleep_ms(20)) {
        char *text = pbt_slurp(path, NULL), *p = text;
        int n = 0;
        while (p != NULL && (p = strstr(p, what)) != NULL) {
            n++;
            p += strlen(what);
        }
        if (n >= times) {
            free(text);
            return;
        }
        if (pbt_now_ms() - t0 > 30000) {
            print_message("procbusd's log says '%s' %d time(s), not %d:\n", what, n, times);
            fputs(text != NULL ? text : "(none)\n", stdout); /* (print_message truncates) */
            free(text);
            fail();
        }
        free(text);
    }
}

/* lim's log: every run printed the same open-file limit (wait for two runs' lines). */
static void lim_same(const char *dir)
{
    char path[160], *text = NULL, *nl;

    snprintf(path, sizeof(path), "%s/lim.log", dir);
    for (long t0 = pbt_now_ms();; sleep_ms(20)) {
        free(text);
        text = pbt_slurp(path, NULL);
        if (text != NULL && (nl = strchr(text, '\n')) != NULL && strchr(nl + 1, '\n') != NULL)
            break;
        assert_true(pbt_now_ms() - t0 < 30000);
    }
    nl = strchr(text, '\n');
    *nl = '\0';
    if (strncmp(nl + 1, text, strlen(text)) != 0 || nl[1 + strlen(text)] != '\n') {
        print_message("open-file limits of lim's runs: %s, then %s", text, nl + 1);
        fail();
    }
    free(text);
}

/* No record is procbusd's fd holder (it is procbusd's own helper, never a program's). */
static void no_holder_record(struct daemon_h *h)
{
    static struct procbus_proc list[256];
    size_t n = 0;

    assert_int_equal(procbus_list(&h->r, list, 256, &n), 0);
    for (size_t i = 0; i < n; i++) {
        const char *arg1 = list[i].cmdline + strnlen(list[i].cmdline, list[i].cmdline_len) + 1;
        if (arg1 < list[i].cmdline + list[i].cmdline_len && strcmp(arg1, "--fd-holder") == 0) {
            print_message("record %llu (pid %d, program %llu) is the fd holder\n",
                          (unsigned long long)list[i].id, (int)list[i].pid,
                          (unsigned long long)list[i].program_id);
            fail();
        }
    }
}

static pid_t pid_of(struct daemon_h *h, const char *name)
{
    struct procbus_proc p;

    assert_int_equal(procbus_get_name(&h->r, name, &p), 0);
    return p.pid;
}

static void test_parity_across_restarts(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    char body[4096], rec[160], pidfile[160], *text;
    pid_t talk0, slp0, lis0, lis1;
    unsigned long long top, lines;
    int seen;
    (void)state;

    snprintf(g_mark, sizeof(g_mark), "crashpar-%d", (int)getpid());
    {
        /* a soft open-file limit below the hard one: procbusd raises its own, programs keep
         * this one (lim_same checks it across an upgrade) */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max > 1024) {
            rl.rlim_cur = 1024;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    pbt_start_daemon(&h, "/tmp/pbd-crashpar", "");
    kill(h.pid, SIGTERM);
    assert_int_equal(pbt_wait_child(h.pid), 0);
    snprintf(rec, sizeof(rec), "%s/events", h.dir);
    snprintf(pidfile, sizeof(pidfile), "%s/procbusd.pid", h.dir);
    snprintf(body, sizeof(body),
             "trace = proc\n\n"
             "[supervisord]\nchildlogdir = %s\nlogfile = %s/main.log\npidfile = %s\n"
             "environment = PBT_CRASHPAR=%s\n\n"
             "[group:grp]\nprograms = talk,slp\n\n"
             "[program:talk]\ncommand = %s talk\nstdout_logfile = AUTO\nstartsecs = 0\n\n"
             "[program:slp]\ncommand = sleep 3600\nstartsecs = 0\n\n"
             "[program:lim]\ncommand = sh -c 'ulimit -Sn; exec sleep 3600'\nstartsecs = 0\n"
             "stdout_logfile = %s/lim.log\n\n"
             "[group:gone]\nprograms = c\n\n"
             "[program:c]\ncommand = sleep 3601\nstartsecs = 0\n\n"
             "[eventlistener:lis]\ncommand = %s listener %s\nevents = PROCESS_STATE\n"
             "startsecs = 0\n",
             h.dir, h.dir, pidfile, g_mark, g_self, h.dir, g_self, rec);
    pbt_write_conf(&h, body);
    pbt_restart_daemon(&h, 1);
    assert_int_equal(pbt_wait_state(&h, "talk", PROCBUS_STATE_RUNNING, 30000, &p), 0);
    talk0 = p.pid;
    assert_int_equal(pbt_wait_state(&h, "slp", PROCBUS_STATE_RUNNING, 30000, &p), 0);
    slp0 = p.pid;
    assert_int_equal(pbt_wait_state(&h, "c", PROCBUS_STATE_RUNNING, 30000, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "lis", PROCBUS_STATE_RUNNING, 30000, &p), 0);
    lis0 = p.pid;
    wait_event(rec, lis0, "PROCESS_STATE_RUNNING", "c", 0);
    /* gone: stopped and removed (supervisorctl's remove: until an update or an add) */
    assert_int_equal(pbt_cli(&h, "stop gone:*", ">/dev/null"), 0);
    assert_int_equal(pbt_cli(&h, "remove gone", ">/dev/null"), 0);
    for (long t0 = pbt_now_ms(); procbus_get_name(&h.r, "c", &p) == 0; sleep_ms(20))
        assert_true(pbt_now_ms() - t0 < 30000);
    lines = wait_lines(h.dir, 50);
    no_holder_record(&h);

    /* ---- procbus reexec ---- */
    top = recorded(rec, 0, "", "", 0, &seen);
    assert_int_equal(pbt_cli(&h, "reexec", ">/dev/null"), 0);
    assert_int_equal(pid_of(&h, "talk"), talk0);
    assert_int_equal(pid_of(&h, "slp"), slp0);
    assert_int_equal(pid_of(&h, "lis"), lis0);
    assert_int_not_equal(procbus_get_name(&h.r, "c", &p), 0); /* still removed */
    assert_int_equal(pbt_cli(&h, "avail", "| grep -q '^gone:c  *avail '"), 0);
    assert_int_equal(pbt_cli(&h, "status grp:*", ">/dev/null"), 0); /* both RUNNING */
    /* the same listener gets what happens next, serials going on */
    assert_int_equal(pbt_cli(&h, "restart grp:slp", ">/dev/null"), 0);
    wait_event(rec, lis0, "PROCESS_STATE_RUNNING", "slp", top);
    slp0 = pid_of(&h, "slp");
    /* talk never saw its stdin end, and logs on into the same AUTO file */
    lines = wait_lines(h.dir, lines + 50);
    assert_int_equal(pid_of(&h, "talk"), talk0);
    text = pbt_slurp(pidfile, NULL);
    assert_non_null(text);
    assert_int_equal(atoi(text), h.pid);
    free(text);

    /* the programs' open-file limit is the one they had (not the one procbusd raised) */
    assert_int_equal(pbt_cli(&h, "restart lim", ">/dev/null"), 0);
    lim_same(h.dir);

    /* ---- SIGRTMIN+1: the same, by a signal ---- */
    top = recorded(rec, 0, "", "", 0, &seen);
    kill(h.pid, SIGRTMIN + 1);
    wait_log(&h, "re-executed in place", 2);
    assert_int_equal(pbt_ctl_ping(&h, 30000), 0);
    assert_int_equal(pid_of(&h, "talk"), talk0);
    assert_int_equal(pid_of(&h, "lis"), lis0);
    assert_int_not_equal(procbus_get_name(&h.r, "c", &p), 0);
    assert_int_equal(pbt_cli(&h, "restart grp:slp", ">/dev/null"), 0);
    wait_event(rec, lis0, "PROCESS_STATE_RUNNING", "slp", top);
    slp0 = pid_of(&h, "slp");
    lines = wait_lines(h.dir, lines + 50);
    assert_int_equal(pid_of(&h, "talk"), talk0);

    /* ---- kill -9 and a restart: adoption ---- */
    kill(h.pid, SIGKILL);
    assert_int_equal(pbt_wait_child(h.pid), 128 + SIGKILL);
    sleep_ms(200); /* (talk writes on meanwhile: into the pipe the fd holder keeps) */
    pbt_restart_daemon(&h, 1);
    assert_int_equal(procbus_get_name(&h.r, "talk", &p), 0);
    assert_int_equal(p.pid, talk0);
    assert_true(p.flags & PROCBUS_F_ADOPTED);
    assert_int_equal(pid_of(&h, "slp"), slp0);
    /* talk's stdin was kept by the fd holder: it logs on, into the same AUTO file */
    lines = wait_lines(h.dir, lines + 50);
    assert_int_equal(procbus_get_name(&h.r, "talk", &p), 0);
    assert_int_equal(p.pid, talk0);
    assert_int_equal(p.state, PROCBUS_STATE_RUNNING);
    /* the listener is started again, and gets what happens next */
    for (long t0 = pbt_now_ms();; sleep_ms(20)) {
        assert_int_equal(procbus_get_name(&h.r, "lis", &p), 0);
        if (p.pid != lis0 && p.state == PROCBUS_STATE_RUNNING)
            break;
        assert_true(pbt_now_ms() - t0 < 30000);
    }
    lis1 = p.pid;
    top = recorded(rec, 0, "", "", 0, &seen);
    assert_int_equal(pbt_cli(&h, "restart grp:slp", ">/dev/null"), 0);
    wait_event(rec, lis1, "PROCESS_STATE_RUNNING", "slp", 0);
    (void)top;
    /* the group removed by the dead procbusd is back, as configured */
    assert_int_equal(pbt_wait_state(&h, "c", PROCBUS_STATE_RUNNING, 30000, NULL), 0);
    assert_int_equal(pbt_cli(&h, "status grp:*", ">/dev/null"), 0);

    no_holder_record(&h);

    /* ---- shutdown: nothing left, the pidfile gone ---- */
    assert_int_equal(pbt_term_daemon(&h), 0);
    assert_int_equal(access(pidfile, F_OK), -1);
    {
        pid_t left[16];
        for (long t0 = pbt_now_ms(); pbt_scan_pids(marked, g_mark, left, 16) > 0; sleep_ms(20))
            assert_true(pbt_now_ms() - t0 < 30000);
    }
    print_message("talk logged %llu lines once each across 2 upgrades and a kill -9; listener "
                  "%d kept across the upgrades, %d after the kill\n",
                  wait_lines(h.dir, lines), (int)lis0, (int)lis1);
    pbt_remove_daemon(&h);
}

/* pbt_teardown, and whatever a failed test's programs left. */
static int teardown(void **state)
{
    pid_t left[64];
    int n;

    pbt_teardown(state);
    while (g_mark[0] != '\0' && (n = pbt_scan_pids(marked, g_mark, left, 64)) > 0)
        for (int i = 0; i < n; i++)
            kill(left[i], SIGKILL);
    g_mark[0] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_parity_across_restarts, teardown),
    };
    ssize_t n;

    if (argc >= 2 && strcmp(argv[1], "talk") == 0)
        return talk_main();
    if (argc >= 3 && strcmp(argv[1], "listener") == 0)
        return listener_main(argv[2]);
    n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0)
        return 1;
    g_self[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
