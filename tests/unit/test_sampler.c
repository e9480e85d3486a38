/* test_sampler.c - procbusd process-tree CPU/RSS sampler and per-pid stat, on real trees. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "sampler.h"
#include "support.h"

enum {
    BURN_MS = 200,          /* CPU each grandchild burns (measured by itself) */
    TOUCH_MB = 20,          /* memory each grandchild allocates and touches */
    REPORT_TIMEOUT_S = 300, /* against hangs only, never a timing assertion */
    SAFETY_ALARM_S = 600,   /* children kill themselves if the test dies */
};

#define MS 1000000ull
#define MB (1024ull * 1024ull)
/* Lower bounds with generous margins: /proc reports whole clock ticks (truncated). */
#define BURN_LOW_NS ((uint64_t)(BURN_MS - 50) * MS)
#define TOUCH_LOW   ((uint64_t)(TOUCH_MB - 2) * MB)

/*
 * Every process a test forks, so that the teardown can kill them when an
 * assertion failed before the test's own cleanup (they would otherwise pause()
 * until their safety alarm, holding the runner's output pipe open).
 */
static pid_t g_spawned[64];
static int g_nspawned;

/* pid < 0: a process group (kill(-pgid)). */
static void remember(pid_t pid)
{
    if (pid != 0 && g_nspawned < (int)(sizeof(g_spawned) / sizeof(g_spawned[0])))
        g_spawned[g_nspawned++] = pid;
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < g_nspawned; i++)
        kill(g_spawned[i], SIGKILL); /* ESRCH for the ones already gone */
    for (int i = 0; i < g_nspawned; i++)
        if (g_spawned[i] > 0)
            waitpid(g_spawned[i], NULL, 0); /* ECHILD for those not ours */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    g_nspawned = 0;
    return 0;
}

/* In a forked child: keep the test runner's output pipe free of leftovers. */
static void quiet_child(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    alarm(SAFETY_ALARM_S);
}

/* A grandchild: burn CPU, touch memory, report its pid, then wait to be killed. */
static void grandchild(int report_fd, int do_setsid)
{
    volatile uint64_t sink = 0;
    uint64_t t0 = pb_now_ns(CLOCK_PROCESS_CPUTIME_ID);
    char *mem;
    pid_t me;

    if (do_setsid && setsid() < 0)
        _exit(90);
    while (pb_now_ns(CLOCK_PROCESS_CPUTIME_ID) - t0 < (uint64_t)BURN_MS * MS)
        for (int i = 0; i < 10000; i++)
            sink += (uint64_t)i * 2654435761u;
    mem = malloc(TOUCH_MB * MB);
    if (mem == NULL)
        _exit(91);
    /* Volatile stores: at -O2 a malloc+memset never read back is optimised away. */
    for (volatile char *v = mem; v < mem + TOUCH_MB * MB; v += 512)
        *v = 0x5a;
    me = getpid();
    if (write(report_fd, &me, sizeof(me)) != sizeof(me))
        _exit(92);
    for (;;)
        pause();
}

struct tree {
    pid_t root;
    pid_t gc[4];
    int ngc;
};

/*
 * Fork a root that starts its own session (as procbusd does) and forks `ngc`
 * grandchildren (the first `nsetsid` of them call setsid()). Returns once every
 * grandchild reported that it finished burning and touching.
 */
static void spawn_tree(struct tree *t, int ngc, int nsetsid)
{
    int pfd[2];

    memset(t, 0, sizeof(*t));
    t->ngc = ngc;
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    t->root = fork();
    assert_true(t->root >= 0);
    if (t->root == 0) {
        quiet_child();
        close(pfd[0]);
        if (setsid() < 0)
            _exit(93);
        for (int i = 0; i < ngc; i++) {
            pid_t g = fork();
            if (g < 0)
                _exit(94);
            if (g == 0)
                grandchild(pfd[1], i < nsetsid);
        }
        close(pfd[1]);
        for (;;)
            pause();
    }
    remember(-t->root); /* its process group: grandchildren not reported yet */
    remember(t->root);
    close(pfd[1]);
    for (int i = 0; i < ngc; i++) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        assert_int_equal(poll(&p, 1, REPORT_TIMEOUT_S * 1000), 1);
        assert_int_equal(read(pfd[0], &t->gc[i], sizeof(pid_t)), (ssize_t)sizeof(pid_t));
        remember(t->gc[i]);
    }
    close(pfd[0]);
}

/*
 * Kill everything and reap what is ours: the root, and, when `reap_gc` (we are a
 * subreaper, so the grandchildren come to us once the root is gone), the
 * grandchildren, so that none lingers as a zombie in the root's session.
 */
static void kill_tree(struct tree *t, int reap_gc)
{
    for (int i = 0; i < t->ngc; i++)
        if (t->gc[i] > 0)
            kill(t->gc[i], SIGKILL);
    if (t->root > 0) {
        kill(t->root, SIGKILL);
        pbt_wait_child(t->root);
        t->root = 0;
    }
    for (int i = 0; reap_gc && i < t->ngc; i++)
        if (t->gc[i] > 0)
            pbt_wait_child(t->gc[i]);
    memset(t->gc, 0, sizeof(t->gc));
}

static void subreaper(int on)
{
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0), 0);
}

static void sample(struct pbd_sampler *s, const struct pbd_tree_root *roots, size_t n,
                   struct pbd_tree_usage *out)
{
    assert_int_equal(pbd_sample_trees(roots, n, out, s), 0);
}

static void test_proc_stat_self(void **state)
{
    struct pbd_proc_stat st;
    char comm[64] = "";
    (void)state;

    assert_int_equal(pbd_proc_stat(getpid(), &st), 0);
    assert_int_equal(st.pid, getpid());
    assert_int_equal(st.ppid, getppid());
    assert_int_equal(st.pgid, getpgrp());
    assert_int_equal(st.sid, getsid(0));
    assert_int_equal(st.state, 'R');
    assert_true(st.rss_bytes > 0);
    assert_true(st.num_threads >= 1);
    assert_true(st.start_boot_ns > 0 && st.start_boot_ns <= pb_now_ns(CLOCK_BOOTTIME));
    assert_non_null(pbt_proc_comm(0, comm, sizeof(comm)));
    assert_string_equal(st.comm, comm);

    assert_int_equal(pbd_proc_stat(0, &st), -EINVAL);
    assert_int_equal(pbd_proc_stat(-5, &st), -EINVAL);
    assert_int_equal(pbd_proc_stat(getpid(), NULL), -EINVAL);
}

static void test_proc_stat_child(void **state)
{
    struct pbd_proc_stat st;
    long tick_ns = 1000000000L / sysconf(_SC_CLK_TCK);
    uint64_t before, after;
    int pfd[2];
    char c;
    pid_t pid;
    (void)state;

    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    before = pb_now_ns(CLOCK_BOOTTIME);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A comm with the characters that trip naive parsers. */
        prctl(PR_SET_NAME, "a) b (c) 1 2", 0, 0, 0);
        setpgid(0, 0);
        quiet_child();
        close(pfd[0]);
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    after = pb_now_ns(CLOCK_BOOTTIME);
    remember(pid);
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    assert_int_equal(pbd_proc_stat(pid, &st), 0);
    assert_string_equal(st.comm, "a) b (c) 1 2");
    assert_int_equal(st.ppid, getpid());
    assert_int_equal(st.pgid, pid);
    assert_int_equal(st.sid, getsid(0));
    assert_true(st.state == 'S' || st.state == 'R'); /* it may not have reached pause() */
    /* Start time: CLOCK_BOOTTIME, truncated to a tick. Ordering only, no timing. */
    assert_true(st.start_boot_ns + 2 * (uint64_t)tick_ns >= before);
    assert_true(st.start_boot_ns <= after + (uint64_t)tick_ns);
    kill(pid, SIGKILL);
    pbt_wait_child(pid);
    /* Reaped: gone. */
    int rc = pbd_proc_stat(pid, &st);
    assert_true(rc == -ENOENT || rc == -ESRCH);
}

/* ---- trees ---- */

static void test_tree_totals(void **state)
{
    struct pbd_sampler s;
    struct pbd_proc_stat rst;
    struct pbd_tree_usage out[2];
    struct tree t;
    uint64_t allocs;
    (void)state;

    subreaper(1);
    assert_int_equal(pbd_sampler_init(&s), 0);
    spawn_tree(&t, 2, 0);
    struct pbd_tree_root roots[2] = {
        {.pid = t.root, .sid = t.root},
        {.pid = getpid(), .sid = 0}, /* the test process: its own tree contains ours */
    };
    sample(&s, roots, 1, out);
    assert_int_equal(out[0].root_alive, 1);
    assert_int_equal(out[0].nprocs, 3);
    assert_true(out[0].cpu_ns >= 2 * BURN_LOW_NS);
    assert_true(out[0].rss_bytes >= 2 * TOUCH_LOW);
    /* More than the root alone (which only sleeps). */
    assert_int_equal(pbd_proc_stat(t.root, &rst), 0);
    assert_true(out[0].cpu_ns > rst.cpu_ns);
    assert_true(out[0].rss_bytes > rst.rss_bytes);
    assert_int_equal(out[0].reaped_cpu_ns, 0);

    /* Both roots: the nearest root wins, nothing is counted twice. */
    sample(&s, roots, 2, out);
    assert_int_equal(out[0].nprocs, 3);
    assert_true(out[1].nprocs >= 1); /* the test process (and other children it may have) */
    assert_true(out[0].cpu_ns >= 2 * BURN_LOW_NS);

    /* Steady state: repeated samples do not allocate. */
    sample(&s, roots, 2, out);
    allocs = s.allocs;
    for (int i = 0; i < 5; i++)
        sample(&s, roots, 2, out);
    assert_int_equal(s.allocs, allocs);

    kill_tree(&t, 1);
    /* All gone: zeros, root not alive. */
    sample(&s, roots, 1, out);
    assert_int_equal(out[0].root_alive, 0);
    assert_int_equal(out[0].nprocs, 0);
    assert_int_equal(out[0].cpu_ns, 0);
    assert_int_equal(out[0].rss_bytes, 0);
    pbd_sampler_free(&s);
    pbd_sampler_free(&s); /* safe twice */
    subreaper(0);
}

static void test_setsid_grandchild(void **state)
{
    struct pbd_sampler s;
    struct pbd_tree_usage out[3];
    struct tree t;
    (void)state;

    subreaper(1); /* like procbusd: the orphan comes to us, outside its old tree */
    assert_int_equal(pbd_sampler_init(&s), 0);
    spawn_tree(&t, 1, 1); /* its only grandchild left the session */
    struct pbd_tree_root roots[3] = {
        {.pid = t.root, .sid = t.root},
        /* sid-only roots: the grandchild's new session is its own pid, not the root's */
        {.pid = -1, .sid = t.root},
        {.pid = -1, .sid = t.gc[0]},
    };
    sample(&s, roots, 3, out);
    /* Attributed by ancestry while its parent lives. */
    assert_int_equal(out[0].nprocs, 2);
    assert_true(out[0].cpu_ns >= BURN_LOW_NS);
    assert_true(out[0].rss_bytes >= TOUCH_LOW);
    /* Ancestry wins over sid matches: the root is in roots[1]'s session, the
     * grandchild in roots[2]'s. */
    assert_int_equal(out[1].nprocs, 0);
    assert_int_equal(out[2].nprocs, 0);

    /* Its parent dies: reparented to us, and its session is not the root's -> lost. */
    kill(t.root, SIGKILL);
    pbt_wait_child(t.root);
    struct pbd_proc_stat gst;
    assert_int_equal(pbd_proc_stat(t.gc[0], &gst), 0);
    assert_int_equal(gst.ppid, getpid());
    sample(&s, roots, 2, out);
    assert_int_equal(out[0].root_alive, 0);
    assert_int_equal(out[0].nprocs, 0);
    assert_int_equal(out[1].nprocs, 0);
    /* The lookup by its own session still finds it (the rule is not ancestry-only). */
    sample(&s, roots, 3, out);
    assert_int_equal(out[2].nprocs, 1);
    t.root = 0;
    kill_tree(&t, 1);
    pbd_sampler_free(&s);
    subreaper(0);
}

static void test_orphan_by_sid(void **state)
{
    struct pbd_sampler s;
    struct pbd_proc_stat gst;
    struct pbd_tree_usage out[2];
    struct tree t;
    (void)state;

    subreaper(1);
    assert_int_equal(pbd_sampler_init(&s), 0);
    spawn_tree(&t, 2, 0);
    struct pbd_tree_root roots[2] = {
        {.pid = t.root, .sid = t.root},
        {.pid = t.root, .sid = 0}, /* the same program, sid rule off */
    };
    /* The program's main process exits; its children are reparented to us. */
    kill(t.root, SIGKILL);
    pbt_wait_child(t.root);
    for (int i = 0; i < t.ngc; i++) {
        assert_int_equal(pbd_proc_stat(t.gc[i], &gst), 0);
        assert_int_equal(gst.ppid, getpid());
        assert_int_equal(gst.sid, t.root);
    }
    sample(&s, roots, 2, out);
    assert_int_equal(out[0].root_alive, 0);
    assert_int_equal(out[0].nprocs, 2);
    assert_true(out[0].cpu_ns >= 2 * BURN_LOW_NS);
    assert_true(out[0].rss_bytes >= 2 * TOUCH_LOW);
    assert_int_equal(out[1].nprocs, 0);
    assert_int_equal(out[1].cpu_ns, 0);

    t.root = 0;
    kill_tree(&t, 1); /* they are our children now */
    sample(&s, roots, 1, out);
    assert_int_equal(out[0].nprocs, 0);
    subreaper(0);
    pbd_sampler_free(&s);
}

/* A root that waited for its children keeps their CPU in reaped_cpu_ns. */
static void test_reaped_children(void **state)
{
    struct pbd_sampler s;
    struct pbd_tree_usage out[1];
    struct pbd_tree_root root;
    int pfd[2];
    char c;
    pid_t pid;
    (void)state;

    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        quiet_child();
        close(pfd[0]);
        setsid();
        pid_t g = fork();
        if (g == 0) {
            uint64_t t0 = pb_now_ns(CLOCK_PROCESS_CPUTIME_ID);
            volatile uint64_t sink = 0;
            while (pb_now_ns(CLOCK_PROCESS_CPUTIME_ID) - t0 < (uint64_t)BURN_MS * MS)
                sink++;
            _exit(0);
        }
        waitpid(g, NULL, 0);
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    remember(pid);
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    assert_int_equal(pbd_sampler_init(&s), 0);
    root.pid = pid;
    root.sid = pid;
    sample(&s, &root, 1, out);
    assert_int_equal(out[0].nprocs, 1);
    assert_true(out[0].reaped_cpu_ns >= BURN_LOW_NS);
    assert_true(out[0].cpu_ns >= out[0].reaped_cpu_ns);
    kill(pid, SIGKILL);
    pbt_wait_child(pid);
    pbd_sampler_free(&s);
}

static void test_sampler_args(void **state)
{
    struct pbd_sampler s;
    struct pbd_tree_usage out[2];
    struct pbd_tree_root roots[2] = {{.pid = 0, .sid = 0}, {.pid = -3, .sid = -3}};
    (void)state;

    memset(&s, 0, sizeof(s));
    assert_int_equal(pbd_sample_trees(roots, 2, out, &s), -EINVAL); /* not initialised */
    pbd_sampler_free(&s);                                           /* zeroed: harmless */
    assert_int_equal(pbd_sampler_init(NULL), -EINVAL);
    assert_int_equal(pbd_sampler_init(&s), 0);
    assert_int_equal(pbd_sample_trees(NULL, 2, out, &s), -EINVAL);
    assert_int_equal(pbd_sample_trees(roots, 2, NULL, &s), -EINVAL);
    assert_int_equal(pbd_sample_trees(roots, 2, out, NULL), -EINVAL);
    assert_int_equal(pbd_sample_trees(NULL, 0, NULL, &s), 0);
    memset(out, 0xff, sizeof(out));
    sample(&s, roots, 2, out);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(out[i].nprocs, 0);
        assert_int_equal(out[i].cpu_ns, 0);
        assert_int_equal(out[i].rss_bytes, 0);
        assert_int_equal(out[i].root_alive, 0);
    }
    pbd_sampler_free(&s);
}

/* Many roots, in no particular order, with duplicate sids: every process once at most. */
static void test_many_roots(void **state)
{
    struct pbd_sampler s;
    struct tree t[3];
    struct pbd_tree_root roots[8];
    struct pbd_tree_usage out[8];
    (void)state;

    subreaper(1);
    assert_int_equal(pbd_sampler_init(&s), 0);
    for (int i = 0; i < 3; i++)
        spawn_tree(&t[i], 1, 0);
    roots[0] = (struct pbd_tree_root){t[2].root, t[2].root};
    roots[1] = (struct pbd_tree_root){-1, t[0].root}; /* sid-only duplicate of [5] */
    roots[2] = (struct pbd_tree_root){t[1].gc[0], 0}; /* a root inside t[1] */
    roots[3] = (struct pbd_tree_root){t[1].root, t[1].root};
    roots[4] = (struct pbd_tree_root){999999999, 999999998}; /* absent */
    roots[5] = (struct pbd_tree_root){t[0].root, t[0].root};
    roots[6] = (struct pbd_tree_root){t[2].root, t[2].root}; /* duplicate of [0] */
    roots[7] = (struct pbd_tree_root){0, 0};
    sample(&s, roots, 8, out);
    assert_int_equal(out[0].nprocs, 2);
    assert_int_equal(out[1].nprocs, 0); /* ancestry through [5] wins */
    assert_int_equal(out[2].nprocs, 1); /* the nearest root on the chain */
    assert_int_equal(out[3].nprocs, 1);
    assert_int_equal(out[4].nprocs, 0);
    assert_int_equal(out[4].root_alive, 0);
    assert_int_equal(out[5].nprocs, 2);
    assert_int_equal(out[6].nprocs, 0); /* the first of duplicate roots gets the processes */
    assert_int_equal(out[6].root_alive, 1);
    assert_int_equal(out[7].nprocs, 0);
    assert_true(out[2].cpu_ns >= BURN_LOW_NS);
    for (int i = 0; i < 3; i++)
        kill_tree(&t[i], 1);
    pbd_sampler_free(&s);
    subreaper(0);
}

/* The pass in slices (procbusd reads a few processes per loop turn): begin, step until done,
 * attribute. It finds what one pass finds, a slice of 1 process at a time included; its
 * errors are the contract's. */
static void test_incremental_scan(void **state)
{
    struct pbd_sampler s;
    struct pbd_tree_usage whole[1], sliced[1];
    struct tree t;
    uint64_t allocs;
    int rc, steps = 0;
    (void)state;

    subreaper(1);
    assert_int_equal(pbd_sampler_init(&s), 0);
    /* nothing under way yet */
    assert_int_equal(pbd_sampler_scan_step(&s, 8), -EINVAL);
    spawn_tree(&t, 2, 0);
    struct pbd_tree_root roots[1] = {{.pid = t.root, .sid = t.root}};
    assert_int_equal(pbd_sampler_attribute(roots, 1, sliced, &s), -EINVAL); /* no scan yet */
    sample(&s, roots, 1, whole);
    assert_int_equal(whole[0].nprocs, 3);

    assert_int_equal(pbd_sampler_scan_begin(&s), 0);
    while ((rc = pbd_sampler_scan_step(&s, 1)) == 0)
        steps++;
    assert_int_equal(rc, 1);
    assert_true(steps >= 3); /* one process per step: at least the tree's three */
    assert_int_equal(pbd_sampler_scan_step(&s, 1), -EINVAL); /* done: a new begin is needed */
    assert_int_equal(pbd_sampler_attribute(roots, 1, sliced, &s), 0);
    assert_int_equal(sliced[0].root_alive, 1);
    assert_int_equal(sliced[0].nprocs, 3);
    assert_true(sliced[0].cpu_ns >= whole[0].cpu_ns); /* read later: never less CPU */
    assert_true(sliced[0].rss_bytes > 0);
    /* attribute again with the same scan: the same answer */
    assert_int_equal(pbd_sampler_attribute(roots, 1, whole, &s), 0);
    assert_int_equal(whole[0].nprocs, sliced[0].nprocs);
    assert_int_equal(whole[0].cpu_ns, sliced[0].cpu_ns);

    /* a begin drops a scan under way; steady state does not allocate */
    assert_int_equal(pbd_sampler_scan_begin(&s), 0);
    assert_int_equal(pbd_sampler_scan_step(&s, 2), 0);
    allocs = s.allocs;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pbd_sampler_scan_begin(&s), 0);
        while ((rc = pbd_sampler_scan_step(&s, 16)) == 0)
            ;
        assert_int_equal(rc, 1);
        assert_int_equal(pbd_sampler_attribute(roots, 1, sliced, &s), 0);
        assert_int_equal(sliced[0].nprocs, 3);
    }
    assert_int_equal(s.allocs, allocs);
    kill_tree(&t, 1);
    pbd_sampler_free(&s);
    assert_int_equal(pbd_sampler_scan_begin(&s), -EINVAL); /* freed */
    subreaper(0);
}

#define T(t) cmocka_unit_test_teardown(t, kill_leftovers)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_stat_self),
        T(test_proc_stat_child),
        T(test_tree_totals),
        T(test_setsid_grandchild),
        T(test_orphan_by_sid),
        T(test_reaped_children),
        cmocka_unit_test(test_sampler_args),
        T(test_many_roots),
        T(test_incremental_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
