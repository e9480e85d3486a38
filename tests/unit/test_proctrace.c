/* test_proctrace.c - the eBPF fork/exec/exit tracer, for real: trees, threads, signals, storms. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctrace_user.h"
#include "support.h"

extern char **environ;

/* Events received, stored (up to cap) and counted per kind. */
struct col {
    struct proctrace_event *ev;
    size_t n, cap;
    int store;
    uint64_t kinds[4];
};

static int col_cb(void *arg, const struct proctrace_event *e)
{
    struct col *c = arg;

    if (e->kind < 4)
        c->kinds[e->kind]++;
    if (!c->store)
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        struct proctrace_event *nev = realloc(c->ev, ncap * sizeof(*nev));

        if (!nev)
            return -ENOMEM;
        c->ev = nev;
        c->cap = ncap;
    }
    c->ev[c->n++] = *e;
    return 0;
}

static void col_free(struct col *c)
{
    free(c->ev);
    memset(c, 0, sizeof(*c));
}

/* Open the tracer, or skip the test with the reason when BPF is not usable here (no
 * privilege, no BTF, no BPF, a mode this kernel lacks); a verifier rejection fails. */
static struct proctrace *pt_open(int observe_all, size_t ring, int exit_mode)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = NULL;
    char why[256] = "";
    int rc;

    o.observe_all = observe_all;
    o.ring_bytes = ring;
    o.exit_mode = exit_mode;
    rc = proctrace_open(&t, &o, why, sizeof(why));
    if (rc == -EPERM || rc == -ENOENT || rc == -ENOTSUP || rc == -ENOSYS) {
        printf("[   SKIP   ] eBPF tracer unavailable: %s\n", why);
        skip();
    }
    if (rc != 0)
        fail_msg("proctrace_open: %d: %s", rc, why);
    return t;
}

/* Consume once, after waiting up to `ms` for the ring's descriptor. */
static void pt_poll(struct proctrace *t, struct col *c, int ms)
{
    struct epoll_event ee;

    (void)epoll_wait(proctrace_fd(t), &ee, 1, ms);
    assert_true(proctrace_consume(t, col_cb, c) >= 0);
}

static const struct proctrace_event *find(const struct col *c, uint32_t kind, int32_t tgid)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->ev[i].kind == kind && c->ev[i].tgid == tgid)
            return &c->ev[i];
    return NULL;
}

static size_t count_of(const struct col *c, uint32_t kind, int32_t tgid)
{
    size_t i, k = 0;

    for (i = 0; i < c->n; i++)
        if (c->ev[i].kind == kind && c->ev[i].tgid == tgid)
            k++;
    return k;
}

/* Events of one process, (tgid, start): pids recycle (pid_max 32768) under a busy host. */
static size_t count_of_proc(const struct col *c, uint32_t kind, int32_t tgid, uint64_t start)
{
    size_t i, k = 0;

    for (i = 0; i < c->n; i++)
        if (c->ev[i].kind == kind && c->ev[i].tgid == tgid && c->ev[i].start_boot_ns == start)
            k++;
    return k;
}

/* Consume until the EXIT of `tgid` is in, or 5 s pass. */
static void pt_until_exit(struct proctrace *t, struct col *c, int32_t tgid)
{
    long t0 = pbt_now_ms();

    pt_poll(t, c, 0);
    while (!find(c, PROCTRACE_EXIT, tgid) && pbt_now_ms() - t0 < 5000)
        pt_poll(t, c, 50);
    pt_poll(t, c, 20); /* stragglers that would be duplicates */
}

/*
 * Fork a child that waits until it is tracked (when `track`), then runs fn(arg) and exits
 * with its return value.
 */
static pid_t spawn_fn(struct proctrace *t, int track, int (*fn)(void *), void *arg)
{
    int p[2];
    char b = 0;
    pid_t pid;

    fflush(stdout); /* a child that calls exit() must not print our buffer again */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        if (read(p[0], &b, 1) != 1)
            _exit(120);
        close(p[0]);
        _exit(fn(arg));
    }
    close(p[0]);
    if (track)
        assert_int_equal(proctrace_track(t, pid), 0);
    assert_int_equal(write(p[1], &b, 1), 1);
    close(p[1]);
    return pid;
}

/* Wait for child `pid` while consuming events (the ring never fills); its wait status. */
static int wait_consuming(struct proctrace *t, struct col *c, pid_t pid)
{
    int st = 0;
    pid_t r;

    while ((r = waitpid(pid, &st, WNOHANG)) == 0)
        pt_poll(t, c, 20);
    assert_int_equal(r, pid);
    return st;
}

static int wait_status(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return st;
}

/* ---- workloads (run in forked children) ---- */

static int run_sh(void *arg)
{
    execl("/bin/sh", "sh", "-c", (const char *)arg, (char *)NULL);
    return 127;
}

static int run_double_fork(void *arg)
{
    pid_t mid, daemon;
    int st;
    (void)arg;

    mid = fork();
    if (mid < 0)
        return 1;
    if (mid == 0) {
        setsid();
        daemon = fork();
        if (daemon < 0)
            _exit(1);
        if (daemon == 0) {
            usleep(100 * 1000); /* outlive both ancestors */
            _exit(5);
        }
        _exit(0);
    }
    waitpid(mid, &st, 0);
    return 0;
}

static void *thread_exit3(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
    _exit(3); /* exit_group from the last thread, long after the leader (no atexit, no LSan) */
}

static void *thread_return(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
    syscall(SYS_exit, 5); /* the last thread ends by a plain thread exit: status is the leader's */
    return NULL;
}

/* The leader leaves first (pthread_exit in main); a thread ends the process later. */
static int run_leader_exits(void *arg)
{
    pthread_t th;

    if (pthread_create(&th, NULL, arg ? thread_exit3 : thread_return, NULL))
        return 1;
    pthread_exit(NULL);
}

static void *thread_exec(void *arg)
{
    (void)arg;
    execl("/bin/sh", "sh", "-c", "exit 4", (char *)NULL);
    return NULL;
}

/* Exec from a non-leader thread, while the leader sleeps. */
static int run_thread_exec(void *arg)
{
    pthread_t th;
    (void)arg;

    if (pthread_create(&th, NULL, thread_exec, NULL))
        return 1;
    pthread_join(th, NULL);
    return 1; /* not reached: the exec replaces the whole group */
}

struct sig_case {
    int sig;
    int core_limit; /* RLIMIT_CORE: 0 = no core, else unlimited */
    const char *dir;
};

static int run_signal(void *arg)
{
    const struct sig_case *s = arg;
    struct rlimit rl;

    rl.rlim_cur = rl.rlim_max = s->core_limit ? RLIM_INFINITY : 0;
    if (setrlimit(RLIMIT_CORE, &rl) || chdir(s->dir))
        return 1;
    prctl(PR_SET_DUMPABLE, 1);
    signal(s->sig, SIG_DFL);
    raise(s->sig);
    return 2;
}

/* Fork and exec /bin/true `n` times, one after another. */
static int run_storm(void *arg)
{
    long i, n = (long)(intptr_t)arg;
    char *argv[] = {"true", NULL};
    pid_t pid;
    int st;

    for (i = 0; i < n; i++) {
        pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            execve("/bin/true", argv, environ);
            _exit(127);
        }
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
            return 2;
    }
    return 0;
}

/* ---- tests ---- */

static void test_pipeline_tree(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    const struct proctrace_event *e, *x;
    size_t i, forks = 0, cat = 0, wc = 0;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    pid = spawn_fn(t, 1, run_sh, "echo a | cat | wc -c >/dev/null; exit 7");
    st = wait_status(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
    pt_until_exit(t, &c, pid);

    /* the shell itself: exec with its arguments, exit 7 */
    e = find(&c, PROCTRACE_EXEC, pid);
    assert_non_null(e);
    assert_int_equal(e->pid, pid);
    assert_int_equal(e->old_pid, pid);
    assert_int_equal(e->ppid, getpid());
    assert_string_equal(e->filename, "/bin/sh");
    assert_true(e->args_len > 6);
    assert_memory_equal(e->args, "sh\0-c\0echo a", 12);
    assert_int_equal(e->flags & PROCTRACE_F_ARGS_TRUNCATED, 0);
    x = find(&c, PROCTRACE_EXIT, pid);
    assert_non_null(x);
    assert_int_equal(count_of(&c, PROCTRACE_EXIT, pid), 1);
    assert_int_equal(x->exit_code, 7);
    assert_int_equal(x->flags & PROCTRACE_F_SIGNALED, 0);
    assert_int_equal(x->start_boot_ns, e->start_boot_ns);
    assert_int_equal(find(&c, PROCTRACE_FORK, pid), NULL); /* tracked after its fork */

    /* every child of the shell: forked by it, exits 0 exactly once, execs cat or wc or none */
    for (i = 0; i < c.n; i++) {
        const struct proctrace_event *f = &c.ev[i], *ex;

        if (f->kind != PROCTRACE_FORK)
            continue;
        forks++;
        assert_int_equal(f->ppid, pid);
        assert_int_equal(f->pid, f->tgid);
        assert_int_equal(f->ns_tgid, 0);
        assert_true(f->start_boot_ns >= e->start_boot_ns);
        assert_int_equal(count_of(&c, PROCTRACE_EXIT, f->tgid), 1);
        x = find(&c, PROCTRACE_EXIT, f->tgid);
        assert_int_equal(x->exit_code, 0);
        assert_int_equal(x->flags & PROCTRACE_F_SIGNALED, 0);
        assert_int_equal(x->start_boot_ns, f->start_boot_ns);
        ex = find(&c, PROCTRACE_EXEC, f->tgid);
        if (ex) {
            assert_int_equal(ex->ppid, pid);
            assert_int_equal(ex->start_boot_ns, f->start_boot_ns);
            cat += strcmp(ex->comm, "cat") == 0;
            wc += strcmp(ex->comm, "wc") == 0;
        }
    }
    printf("pipeline: %zu events, %zu forks\n", c.n, forks);
    assert_int_equal(forks, 3); /* dash forks each pipeline element; echo is a builtin */
    assert_int_equal(cat, 1);
    assert_int_equal(wc, 1);
    assert_int_equal(c.kinds[PROCTRACE_EXEC], 3);
    assert_int_equal(c.kinds[PROCTRACE_EXIT], 4);
    assert_int_equal(proctrace_lost(t), 0);
    col_free(&c);
    proctrace_close(t);
}

static void test_double_fork_daemon(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    const struct proctrace_event *fm = NULL, *fd = NULL, *x;
    size_t i;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the daemon is reparented to us */
    pid = spawn_fn(t, 1, run_double_fork, NULL);
    st = wait_status(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pt_poll(t, &c, 50);
    for (i = 0; i < c.n; i++)
        if (c.ev[i].kind == PROCTRACE_FORK && c.ev[i].ppid == pid)
            fm = &c.ev[i];
    assert_non_null(fm);
    for (i = 0; i < c.n; i++)
        if (c.ev[i].kind == PROCTRACE_FORK && c.ev[i].ppid == fm->tgid)
            fd = &c.ev[i];
    assert_non_null(fd);
    st = wait_status(fd->tgid); /* reaped by us, the subreaper */
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    pt_until_exit(t, &c, fd->tgid);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);

    x = find(&c, PROCTRACE_EXIT, fd->tgid);
    assert_non_null(x);
    assert_int_equal(count_of(&c, PROCTRACE_EXIT, fd->tgid), 1);
    assert_int_equal(x->exit_code, 5);
    assert_int_equal(x->ppid, getpid()); /* reparented */
    assert_int_equal(x->start_boot_ns, fd->start_boot_ns);
    assert_int_equal(find(&c, PROCTRACE_EXIT, fm->tgid)->exit_code, 0);
    assert_int_equal(find(&c, PROCTRACE_EXIT, pid)->exit_code, 0);
    assert_int_equal(c.kinds[PROCTRACE_FORK], 2);
    assert_int_equal(c.kinds[PROCTRACE_EXIT], 3);
    col_free(&c);
    proctrace_close(t);
}

static void leader_exits(int mode, int observe_all)
{
    struct proctrace *t = pt_open(observe_all, 0, mode);
    struct col c = {0};
    const struct proctrace_event *x;
    pid_t pid;
    int st, k;

    c.store = 1;
    for (k = 0; k < 2; k++) {
        pid = spawn_fn(t, !observe_all, run_leader_exits, k ? "exit3" : NULL);
        st = wait_status(pid);
        assert_true(WIFEXITED(st));
        pt_until_exit(t, &c, pid);
        assert_int_equal(count_of(&c, PROCTRACE_EXIT, pid), 1);
        x = find(&c, PROCTRACE_EXIT, pid);
        assert_int_not_equal(x->pid, pid); /* reported by the last thread, not the leader */
        assert_int_equal(x->exit_code, WEXITSTATUS(st)); /* the group's status, as waitpid */
        if (k)
            assert_int_equal(x->exit_code, 3);
        assert_int_equal(count_of(&c, PROCTRACE_FORK, pid), observe_all ? 1 : 0);
    }
    if (!observe_all)
        assert_int_equal(c.kinds[PROCTRACE_EXIT], 2);
    if (mode == PROCTRACE_EXIT_LIVE)
        assert_int_equal(proctrace_exit_mode(t), PROCTRACE_EXIT_LIVE);
    printf("exit detection: %s%s\n",
           proctrace_exit_mode(t) == PROCTRACE_EXIT_GROUP_DEAD ? "group_dead argument"
                                                               : "signal->live == 0",
           observe_all ? " (observe all)" : "");
    col_free(&c);
    proctrace_close(t);
}

static void test_leader_exits_first(void **state)
{
    (void)state;
    leader_exits(PROCTRACE_EXIT_AUTO, 0);
}

/* The older kernels' path (signal->live == 0), forced; observe-all uses its dedup map. */
static void test_leader_exits_first_live_fallback(void **state)
{
    (void)state;
    leader_exits(PROCTRACE_EXIT_LIVE, 0);
    leader_exits(PROCTRACE_EXIT_LIVE, 1);
}

static int run_in_pidns(void *arg)
{
    pid_t pid;
    int st;
    (void)arg;

    if (unshare(CLONE_NEWPID) != 0)
        return 99;
    pid = fork();
    if (pid == 0)
        _exit(getpid() == 1 ? 6 : 1);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static void test_pid_namespace(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    const struct proctrace_event *f, *x;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    pid = spawn_fn(t, 1, run_in_pidns, NULL);
    st = wait_status(pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 99) {
        printf("[   SKIP   ] unshare(CLONE_NEWPID) refused\n");
        col_free(&c);
        proctrace_close(t);
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 6);
    pt_until_exit(t, &c, pid);
    assert_int_equal(c.kinds[PROCTRACE_FORK], 1);
    f = &c.ev[0];
    assert_int_equal(f->kind, PROCTRACE_FORK);
    assert_int_equal(f->ppid, pid);
    assert_int_equal(f->ns_tgid, 1); /* init of the new namespace */
    assert_int_not_equal(f->tgid, 1);
    x = find(&c, PROCTRACE_EXIT, f->tgid);
    assert_non_null(x);
    assert_int_equal(x->ns_tgid, 1);
    assert_int_equal(x->exit_code, 6);
    assert_int_equal(find(&c, PROCTRACE_EXIT, pid)->ns_tgid, 0);
    col_free(&c);
    proctrace_close(t);
}

static void test_exec_from_thread(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    const struct proctrace_event *e, *x;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    pid = spawn_fn(t, 1, run_thread_exec, NULL);
    st = wait_status(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 4);
    pt_until_exit(t, &c, pid);
    e = find(&c, PROCTRACE_EXEC, pid);
    assert_non_null(e);
    assert_int_equal(count_of(&c, PROCTRACE_EXEC, pid), 1);
    assert_int_equal(e->pid, pid);         /* de_thread made the caller the leader */
    assert_int_not_equal(e->old_pid, pid); /* ... it was another thread */
    assert_true(e->old_pid > 0);
    assert_string_equal(e->filename, "/bin/sh");
    assert_int_equal(count_of(&c, PROCTRACE_EXIT, pid), 1); /* not the zapped old leader */
    x = find(&c, PROCTRACE_EXIT, pid);
    assert_int_equal(x->exit_code, 4);
    assert_int_equal(x->start_boot_ns, e->start_boot_ns);
    col_free(&c);
    proctrace_close(t);
}

static void rm_dir(const char *dir)
{
    char path[512];
    struct dirent *d;
    DIR *dp = opendir(dir);

    if (dp) {
        while ((d = readdir(dp)) != NULL) {
            if (d->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

static void test_signal_and_core(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    char dir[] = "/tmp/proctrace-core-XXXXXX";
    struct sig_case cases[] = {
        {SIGABRT, 1, dir}, {SIGSEGV, 0, dir}, {SIGKILL, 1, dir}, {SIGTERM, 1, dir}};
    const struct proctrace_event *x;
    size_t i;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    assert_non_null(mkdtemp(dir));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid = spawn_fn(t, 1, run_signal, &cases[i]);
        st = wait_status(pid);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), cases[i].sig);
        pt_until_exit(t, &c, pid);
        x = find(&c, PROCTRACE_EXIT, pid);
        assert_non_null(x);
        assert_int_equal(count_of(&c, PROCTRACE_EXIT, pid), 1);
        assert_true(x->flags & PROCTRACE_F_SIGNALED);
        assert_int_equal(x->exit_signal, cases[i].sig);
        assert_int_equal(!!(x->flags & PROCTRACE_F_CORE_DUMPED), !!WCOREDUMP(st));
        printf("signal %d: core %s (waitpid agrees)\n", cases[i].sig,
               WCOREDUMP(st) ? "dumped" : "not dumped");
    }
    rm_dir(dir);
    col_free(&c);
    proctrace_close(t);
}

static void test_short_lived_all_seen(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    const long n = 500;
    size_t i, execs = 0;
    pid_t pid;
    int st;
    (void)state;

    c.store = 1;
    pid = spawn_fn(t, 1, run_storm, (void *)(intptr_t)n);
    st = wait_consuming(t, &c, pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pt_until_exit(t, &c, pid);
    for (i = 0; i < c.n; i++) {
        if (c.ev[i].kind != PROCTRACE_EXEC)
            continue;
        execs++;
        assert_string_equal(c.ev[i].filename, "/bin/true");
        assert_int_equal(c.ev[i].ppid, pid);
        assert_int_equal(count_of_proc(&c, PROCTRACE_EXIT, c.ev[i].tgid, c.ev[i].start_boot_ns), 1);
        assert_int_equal(count_of_proc(&c, PROCTRACE_FORK, c.ev[i].tgid, c.ev[i].start_boot_ns), 1);
    }
    assert_int_equal(proctrace_lost(t), 0);
    assert_int_equal(execs, n);
    assert_int_equal(c.kinds[PROCTRACE_FORK], n);
    assert_int_equal(c.kinds[PROCTRACE_EXIT], n + 1);
    col_free(&c);
    proctrace_close(t);
}

static int run_untracked_parent(void *arg)
{
    (void)arg;
    return run_storm((void *)(intptr_t)3);
}

static void test_untracked_not_reported(void **state)
{
    struct proctrace *t = pt_open(0, 0, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    pid_t quiet, quiet2, loud;
    size_t i;
    int st;
    (void)state;

    c.store = 1;
    quiet = spawn_fn(t, 0, run_untracked_parent, NULL);
    /* tracked then untracked before it runs: as if never tracked */
    fflush(stdout);
    quiet2 = fork();
    assert_true(quiet2 >= 0);
    if (quiet2 == 0) {
        usleep(50 * 1000);
        _exit(run_untracked_parent(NULL));
    }
    assert_int_equal(proctrace_track(t, quiet2), 0);
    assert_int_equal(proctrace_untrack(t, quiet2), 0);
    assert_int_equal(proctrace_untrack(t, quiet2), -ENOENT);
    loud = spawn_fn(t, 1, run_sh, "exit 0");
    st = wait_status(quiet);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = wait_status(quiet2);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = wait_status(loud);
    pt_until_exit(t, &c, loud);
    for (i = 0; i < c.n; i++) {
        assert_int_equal(c.ev[i].tgid, loud);
        assert_int_not_equal(c.ev[i].ppid, quiet);
        assert_int_not_equal(c.ev[i].ppid, quiet2);
    }
    assert_int_equal(c.n, 2); /* loud's EXEC and EXIT */
    assert_int_equal(proctrace_track(t, 0), -EINVAL);
    col_free(&c);
    proctrace_close(t);
}

/*
 * A storm of n spawn+exec+exit from one tracked parent: n FORK, n EXEC and n + 1 EXIT
 * (the parent too) happen; every one of them is either delivered or counted as lost:
 * seen(kind) <= expected(kind) and the sum over kinds of seen + lost == total, exactly.
 */
static void storm(size_t ring, long n, int consume_during)
{
    struct proctrace *t = pt_open(0, ring, PROCTRACE_EXIT_AUTO);
    struct col c = {0};
    long t0;
    uint64_t lost, total = (uint64_t)n * 3 + 1, seen;
    pid_t pid;
    int st;

    t0 = pbt_now_ms();
    pid = spawn_fn(t, 1, run_storm, (void *)(intptr_t)n);
    st = consume_during ? wait_consuming(t, &c, pid) : wait_status(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pt_poll(t, &c, 0); /* every event was submitted before the parent's waitpid returned */
    pt_poll(t, &c, 0);
    lost = proctrace_lost(t);
    seen = c.kinds[PROCTRACE_FORK] + c.kinds[PROCTRACE_EXEC] + c.kinds[PROCTRACE_EXIT];
    printf("storm of %ld (ring %zu KiB, %s): %ld ms, fork %llu exec %llu exit %llu, lost %llu\n", n,
           (ring ? ring : 256 * 1024) / 1024, consume_during ? "consumed during" : "consumed after",
           pbt_now_ms() - t0, (unsigned long long)c.kinds[PROCTRACE_FORK],
           (unsigned long long)c.kinds[PROCTRACE_EXEC], (unsigned long long)c.kinds[PROCTRACE_EXIT],
           (unsigned long long)lost);
    assert_true(c.kinds[PROCTRACE_FORK] <= (uint64_t)n);
    assert_true(c.kinds[PROCTRACE_EXEC] <= (uint64_t)n);
    assert_true(c.kinds[PROCTRACE_EXIT] <= (uint64_t)n + 1);
    assert_true(c.kinds[PROCTRACE_EXEC] + lost >= (uint64_t)n);
    assert_true(c.kinds[PROCTRACE_EXIT] + lost >= (uint64_t)n + 1);
    assert_int_equal(seen + lost, total);
    assert_int_equal(proctrace_track_failed(t), 0);
    col_free(&c);
    proctrace_close(t);
}

static void test_fork_storm(void **state)
{
    (void)state;
    /* forking an ASan process costs ~20 ms: 20,000 there would take minutes */
    storm(0, pbt_scale() < 1 ? 1000 : 20000, 1);
}

/* A ring too small, read only afterwards: drops happen and every one is counted. */
static void test_loss_is_counted(void **state)
{
    (void)state;
    storm(4096, pbt_scale() < 1 ? 300 : 2000, 0);
}

static void test_bad_options(void **state)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = NULL;
    char why[128] = "";
    (void)state;

    o.ring_bytes = 5000;
    assert_int_equal(proctrace_open(&t, &o, why, sizeof(why)), -EINVAL);
    assert_null(t);
    assert_true(strlen(why) > 0);
    assert_int_equal(proctrace_open(NULL, NULL, NULL, 0), -EINVAL);
    proctrace_close(NULL);
}

static void test_available_and_observe_all(void **state)
{
    struct proctrace *t;
    struct col c = {0};
    char why[256] = "";
    pid_t pid;
    int rc;
    (void)state;

    rc = proctrace_available(why, sizeof(why));
    if (rc != 0) {
        printf("[   SKIP   ] eBPF tracer unavailable: %s\n", why);
        skip();
    }
    t = pt_open(1, 0, PROCTRACE_EXIT_AUTO);
    c.store = 1;
    pid = spawn_fn(t, 0, run_sh, "exit 9"); /* not tracked, seen anyway */
    wait_status(pid);
    pt_until_exit(t, &c, pid);
    assert_non_null(find(&c, PROCTRACE_FORK, pid));
    assert_non_null(find(&c, PROCTRACE_EXEC, pid));
    assert_int_equal(find(&c, PROCTRACE_EXIT, pid)->exit_code, 9);
    assert_int_equal(count_of(&c, PROCTRACE_EXIT, pid), 1);
    col_free(&c);
    proctrace_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_available_and_observe_all),
        cmocka_unit_test(test_pipeline_tree),
        cmocka_unit_test(test_double_fork_daemon),
        cmocka_unit_test(test_leader_exits_first),
        cmocka_unit_test(test_leader_exits_first_live_fallback),
        cmocka_unit_test(test_exec_from_thread),
        cmocka_unit_test(test_pid_namespace),
        cmocka_unit_test(test_signal_and_core),
        cmocka_unit_test(test_short_lived_all_seen),
        cmocka_unit_test(test_untracked_not_reported),
        cmocka_unit_test(test_fork_storm),
        cmocka_unit_test(test_loss_is_counted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
