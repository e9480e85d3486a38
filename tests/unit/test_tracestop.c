/* test_tracestop.c - a stop leaves nothing alive: hydras, setsid'd daemons, on the host and in a
 * pid namespace of procbusd's own, with the eBPF tracer read at once or in batches. */
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
#include <unistd.h>

#include "procbus.h"
#include "support.h"
#include "trace_harness.h"

/*
 * The contract: `procbus stop NAME` answers "stopped" only once no process of the program's
 * tree runs, whatever the tree does meanwhile (fork as fast as it can, setsid() out of the
 * program's session); a program that exited leaving a daemon has that daemon recorded and
 * `procbus stop` kills it; shutdown leaves nothing either. Checked in /proc after each stop:
 * a process of the tree that is neither gone, a zombie nor exiting (PF_EXITING) is a
 * survivor. The same with procbusd inside `unshare --pid --fork --mount-proc`.
 *
 * `test_tracestop --hydra TAG K` and `--sleeper TAG` are the workloads (see hydra_main).
 * PBTT_ROUNDS=N overrides the number of rounds of each case (default 100 hydra stops, 50
 * daemon rounds; fewer under sanitizers).
 */

static char g_self[512];

/* ---- workloads (run under procbusd, not cmocka) ---- */

/* One head: fork, and the parent exits at once; every other generation leaves the session.
 * A moving target: at any time one process, never the same for long. */
static void head(void)
{
    unsigned gen = 0;

    for (;;) {
        pid_t p = fork();
        if (p < 0) {
            usleep(1000);
            continue;
        }
        if (p > 0)
            _exit(0);
        if (++gen % 2 == 0)
            setsid();
    }
}

/* `--hydra TAG K`: K heads forking as fast as they can; the main process waits for its stop. */
__attribute__((noreturn)) static void hydra_main(int k)
{
    int i;

    for (i = 0; i < k; i++)
        if (fork() == 0)
            head();
    for (;;)
        pause();
}

/* ---- helpers ---- */

static int rounds(int dflt)
{
    const char *e = getenv("PBTT_ROUNDS");
    int n = e != NULL ? atoi(e) : (int)(dflt * pbt_scale());

    return n > 0 ? n : 1;
}

static char g_tag[64];

static const char *tag(const char *what)
{
    snprintf(g_tag, sizeof(g_tag), "%s-%d", what, (int)getpid());
    pbtt_mark(g_tag);
    return g_tag;
}

/* Wait (up to 30 s) until no process carrying the marker is left at all, not even exiting. */
static void wait_all_gone(const char *marker)
{
    int running, exiting, k;

    for (k = 0; k < 3000; k++) {
        pbtt_scan_marked(marker, &running, &exiting, NULL, 0);
        if (running == 0 && exiting == 0)
            return;
        usleep(10000);
    }
    fail_msg("processes marked %s still there 30 s later (%d running, %d exiting)", marker, running,
             exiting);
}

/* No survivor now: every process of the tree is gone, a zombie or exiting. */
static void assert_no_survivor(struct tdaemon *d, const char *marker, const char *when, int round)
{
    pid_t pids[8];
    int running, exiting;

    pbtt_scan_marked(marker, &running, &exiting, pids, 8);
    if (running != 0) {
        pbtt_dump(d);
        fail_msg("%s (round %d): %d process(es) of the tree still running (pid %d first), "
                 "%d exiting",
                 when, round, running, (int)pids[0], exiting);
    }
}

struct running_at_least {
    const char *marker;
    int n;
};

static int cond_running(struct tdaemon *d, void *arg)
{
    struct running_at_least *q = arg;
    int running;
    (void)d;

    pbtt_scan_marked(q->marker, &running, NULL, NULL, 0);
    return running >= q->n;
}

/* ---- the hydra ---- */

static void hydra_stops(int pidns, int batch_ms, int n)
{
    struct tdaemon d;
    char body[1024], out[512];
    const char *mk = tag("hydra");
    struct running_at_least q = {mk, 3};
    int i;

    pbtt_need_bpf();
    snprintf(body, sizeof(body),
             "trace = on\ntrace_batch_ms = %d\nkeep_exited_secs = 0\n"
             "[program:hydra]\ncommand = %s --hydra %s 3\nstartsecs = 0\nautostart = false\n"
             "autorestart = false\nstopwaitsecs = 30\n",
             batch_ms, g_self, mk);
    pbtt_start(&d, pidns, body);
    setenv("PBTT_QUIET", "1", 1);
    for (i = 0; i < n; i++) {
        assert_int_equal(pbtt_cli(&d, "start hydra", out, sizeof(out)), 0);
        if (!pbtt_wait(&d, 30000, cond_running, &q))
            fail_msg("round %d: the hydra did not get going", i);
        if (pbtt_cli(&d, "stop hydra", out, sizeof(out)) != 0 || strstr(out, "stopped") == NULL)
            fail_msg("round %d: procbus stop hydra: %s", i, out);
        assert_no_survivor(&d, mk, "after procbus stop said stopped", i);
        wait_all_gone(mk);
    }
    unsetenv("PBTT_QUIET");
    printf("hydra (%s, trace_batch_ms = %d): %d stops, 0 survivors\n",
           pidns ? "own pid namespace" : "host", batch_ms, n);
    pbtt_stop(&d);
}

static void test_hydra_batch0(void **state)
{
    (void)state;
    hydra_stops(0, 0, rounds(100));
}

static void test_hydra_batch100(void **state)
{
    (void)state;
    hydra_stops(0, 100, rounds(100));
}

static void test_pidns_hydra_batch0(void **state)
{
    (void)state;
    hydra_stops(1, 0, rounds(100));
}

static void test_pidns_hydra_batch100(void **state)
{
    (void)state;
    hydra_stops(1, 100, rounds(100));
}

/* ---- the setsid'd daemon of a program that exits at once ---- */

struct want_rec {
    uint64_t prog;
    char argv[256];
    size_t len;
    struct procbus_proc rec;
};

static int cond_recorded(struct tdaemon *d, void *arg)
{
    struct want_rec *q = arg;

    return pbtt_find_argv(d, q->prog, q->argv, q->len, PROCBUS_STATE_RUNNING, &q->rec) > 0;
}

/* The pid of the process carrying `marker` as the innermost namespace numbers it (NSpid). */
static pid_t ns_pid_of(pid_t host_pid)
{
    char path[64], *s, *p;
    long last = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)host_pid);
    s = pbt_slurp(path, NULL);
    if (s == NULL)
        return 0;
    p = strstr(s, "\nNSpid:");
    if (p != NULL)
        for (p += 7; *p != '\0' && *p != '\n';) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            last = v;
            p = end;
        }
    free(s);
    return (pid_t)last;
}

static void daemon_rounds(int pidns, int batch_ms, int n)
{
    struct tdaemon d;
    struct procbus_proc prog;
    struct want_rec q;
    char body[1024], out[512];
    const char *mk = tag("sleeper");
    pid_t pids[4];
    int i, running;

    pbtt_need_bpf();
    snprintf(body, sizeof(body),
             "trace = on\ntrace_batch_ms = %d\n"
             "[program:ds]\ncommand = sh -c '(setsid %s --sleeper %s &); exit 0'\n"
             "startsecs = 0\nautostart = false\nautorestart = false\n",
             batch_ms, g_self, mk);
    pbtt_start(&d, pidns, body);
    memset(&q, 0, sizeof(q));
    q.len = (size_t)snprintf(q.argv, sizeof(q.argv), "%s%c--sleeper%c%s", g_self, 0, 0, mk);
    setenv("PBTT_QUIET", "1", 1);
    for (i = 0; i < n; i++) {
        assert_int_equal(pbtt_cli(&d, "start ds", out, sizeof(out)), 0);
        assert_int_equal(pbt_wait_state(&d.h, "ds", PROCBUS_STATE_EXITED, 30000, &prog), 0);
        q.prog = prog.id;
        if (!pbtt_wait(&d, 30000, cond_recorded, &q)) {
            const struct procbus_proc *all;
            size_t k, nr;
            pbtt_scan_marked(mk, &running, NULL, pids, 4);
            nr = pbtt_list(&d, &all);
            for (k = 0; k < nr; k++) /* what procbusd has for that pid */
                if (running > 0 && all[k].pid == pids[0])
                    print_message("  its record %llu: program %llu ppid %d state %u comm '%.16s' "
                                  "cmdline %u bytes '%.40s'\n",
                                  (unsigned long long)all[k].id,
                                  (unsigned long long)all[k].program_id, (int)all[k].ppid,
                                  all[k].state, all[k].comm, all[k].cmdline_len, all[k].cmdline);
            fail_msg("round %d: the setsid'd daemon (%d running, pid %d) has no RUNNING record "
                     "of program ds",
                     i, running, running ? (int)pids[0] : 0);
        }
        pbtt_scan_marked(mk, &running, NULL, pids, 4);
        assert_int_equal(running, 1);
        if (pidns) /* the record's pid is the one procbusd and its readers see */
            assert_int_equal(q.rec.pid, ns_pid_of(pids[0]));
        else
            assert_int_equal(q.rec.pid, pids[0]);
        if (pbtt_cli(&d, "stop ds", out, sizeof(out)) != 0 ||
            strstr(out, "killing 1 leftover") == NULL)
            fail_msg("round %d: procbus stop ds: %s", i, out);
        wait_all_gone(mk);
    }
    unsetenv("PBTT_QUIET");
    printf("setsid'd daemon (%s, trace_batch_ms = %d): %d rounds, recorded and killed each time\n",
           pidns ? "own pid namespace" : "host", batch_ms, n);
    /* and shutdown kills one left running */
    assert_int_equal(pbtt_cli(&d, "start ds", out, sizeof(out)), 0);
    assert_true(pbtt_wait(&d, 30000, cond_recorded, &q));
    kill(d.procbusd, SIGTERM);
    assert_int_equal(pbt_wait_child(d.h.pid), 0);
    d.h.pid = 0;
    assert_no_survivor(&d, mk, "after procbusd's shutdown", n);
    wait_all_gone(mk);
    procbus_close(&d.h.r);
    pbtt_teardown(NULL);
}

static void test_setsid_daemon_batch100(void **state)
{
    (void)state;
    daemon_rounds(0, 100, rounds(50));
}

static void test_setsid_daemon_batch0(void **state)
{
    (void)state;
    daemon_rounds(0, 0, rounds(10));
}

static void test_pidns_setsid_daemon_batch100(void **state)
{
    (void)state;
    daemon_rounds(1, 100, rounds(50));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hydra_batch0, pbtt_teardown),
        cmocka_unit_test_teardown(test_hydra_batch100, pbtt_teardown),
        cmocka_unit_test_teardown(test_setsid_daemon_batch100, pbtt_teardown),
        cmocka_unit_test_teardown(test_setsid_daemon_batch0, pbtt_teardown),
        cmocka_unit_test_teardown(test_pidns_hydra_batch0, pbtt_teardown),
        cmocka_unit_test_teardown(test_pidns_hydra_batch100, pbtt_teardown),
        cmocka_unit_test_teardown(test_pidns_setsid_daemon_batch100, pbtt_teardown),
    };

    if (argc >= 4 && strcmp(argv[1], "--hydra") == 0)
        hydra_main(atoi(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "--sleeper") == 0) {
        for (;;)
            pause();
    }
    if (realpath("/proc/self/exe", g_self) == NULL)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
