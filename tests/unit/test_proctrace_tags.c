/* test_proctrace_tags.c - the tracer's tags, rename events, reapers, pid namespaces, and a
 * verifier rejection told apart from a permission problem. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctrace_user.h"
#include "support.h"

/* Events received (up to COL_MAX). */
#define COL_MAX 4096
struct col {
    struct proctrace_event ev[COL_MAX];
    size_t n;
};

static int col_cb(void *arg, const struct proctrace_event *e)
{
    struct col *c = arg;

    if (c->n < COL_MAX)
        c->ev[c->n++] = *e;
    return 0;
}

/* Open the tracer, or skip when this machine cannot run it for a reason that is not the
 * tracer's: no privilege, no BTF, no BPF. A verifier rejection (-ENOEXEC) fails. */
static struct proctrace *pt_open(const struct proctrace_opts *o)
{
    struct proctrace *t = NULL;
    char why[512] = "";
    int rc = proctrace_open(&t, o, why, sizeof(why));

    if (rc == -EPERM || rc == -ENOENT || rc == -ENOSYS) {
        printf("[   SKIP   ] eBPF tracer unavailable: %s\n", why);
        skip();
    }
    if (rc != 0)
        fail_msg("proctrace_open: %d: %s", rc, why);
    return t;
}

static void pt_drain(struct proctrace *t, struct col *c, int ms)
{
    struct epoll_event ee;
    long t0 = pbt_now_ms();

    do {
        (void)epoll_wait(proctrace_fd(t), &ee, 1, 20);
        assert_true(proctrace_consume(t, col_cb, c) >= 0);
    } while (pbt_now_ms() - t0 < ms);
}

static const struct proctrace_event *find(const struct col *c, uint32_t kind, int32_t tgid)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->ev[i].kind == kind && c->ev[i].tgid == tgid)
            return &c->ev[i];
    return NULL;
}

static size_t count(const struct col *c, uint32_t kind, int32_t tgid)
{
    size_t i, k = 0;

    for (i = 0; i < c->n; i++)
        k += c->ev[i].kind == kind && c->ev[i].tgid == tgid;
    return k;
}

static int wait_status(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return st;
}

/* ---- a verifier rejection ---- */

static void test_verifier_rejection_is_not_eperm(void **state)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = NULL;
    char why[512] = "";
    int rc;
    (void)state;

    proctrace_close(pt_open(&o)); /* the real program loads here */
    o.test_invalid = 1;
    rc = proctrace_open(&t, &o, why, sizeof(why));
    printf("a program the verifier refuses: %d: %s\n", rc, why);
    assert_null(t);
    assert_int_equal(rc, -ENOEXEC);
    assert_non_null(strstr(why, "verifier"));
    assert_non_null(strstr(why, "proctrace_invalid"));
    assert_null(strstr(why, "need root"));
}

/* ---- comm changes ---- */

static void *thread_rename(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "thrname", 0, 0, 0); /* a thread's own name: not the process's */
    return NULL;
}

static void test_rename_events(void **state)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = pt_open(&o);
    static struct col c;
    const struct proctrace_event *r;
    int p[2];
    pid_t pid;
    char b = 0;
    (void)state;

    c.n = 0;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        pthread_t th;
        close(p[1]);
        if (read(p[0], &b, 1) != 1)
            _exit(120);
        if (pthread_create(&th, NULL, thread_rename, NULL) == 0)
            pthread_join(th, NULL);
        prctl(PR_SET_NAME, "renamed1", 0, 0, 0);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    assert_int_equal(proctrace_track(t, pid), 0);
    assert_int_equal(write(p[1], &b, 1), 1);
    close(p[1]);
    assert_int_equal(wait_status(pid), 0);
    pt_drain(t, &c, 200);
    assert_int_equal(count(&c, PROCTRACE_RENAME, pid), 1); /* not the thread's, not the exec's */
    r = find(&c, PROCTRACE_RENAME, pid);
    assert_string_equal(r->comm, "renamed1");
    assert_int_equal(count(&c, PROCTRACE_EXEC, pid), 1);
    assert_string_equal(find(&c, PROCTRACE_EXEC, pid)->comm, "true");
    printf("rename: one RENAME ('%s'), none for a thread's name or for the exec\n", r->comm);
    proctrace_close(t);
}

/* ---- tags ---- */

static void test_tags_follow_forks(void **state)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = pt_open(&o);
    static struct col c;
    const struct proctrace_event *e;
    uint64_t tag = 0;
    pid_t pid;
    int p[2];
    size_t i, n7 = 0;
    char b = 0;
    (void)state;

    c.n = 0;
    /* a spawn tag: the loader tracks itself, tags the next fork, and its child's tree has it */
    assert_int_equal(proctrace_track(t, getpid()), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stdout);
    proctrace_set_spawn_tag(t, 7);
    pid = fork();
    proctrace_set_spawn_tag(t, 0);
    if (pid == 0) {
        pid_t g;
        close(p[1]);
        if (read(p[0], &b, 1) != 1)
            _exit(120);
        g = fork();
        if (g == 0)
            _exit(0);
        waitpid(g, NULL, 0);
        _exit(0);
    }
    close(p[0]);
    assert_int_equal(proctrace_untrack(t, getpid()), 0);
    assert_int_equal(proctrace_tag(t, pid, &tag), 0);
    assert_int_equal(tag, 7);
    assert_int_equal(write(p[1], &b, 1), 1);
    close(p[1]);
    assert_int_equal(wait_status(pid), 0);
    pt_drain(t, &c, 200);
    for (i = 0; i < c.n; i++) {
        e = &c.ev[i];
        if (e->tgid == pid || e->ppid == pid) {
            assert_int_equal(e->tag, 7);
            n7++;
        }
    }
    assert_true(n7 >= 4); /* fork + exit of the child, fork + exit of its child */
    assert_int_equal(proctrace_tag(t, pid, &tag), -ENOENT); /* an exit untracks */
    /* proctrace_track_tag: a walk's find */
    assert_int_equal(proctrace_track_tag(t, 999999, 11), 0);
    assert_int_equal(proctrace_tag(t, 999999, &tag), 0);
    assert_int_equal(tag, 11);
    assert_int_equal(proctrace_untrack(t, 999999), 0);
    printf("tags: %zu events of the spawned tree carry tag 7\n", n7);
    proctrace_close(t);
}

/* ---- reapers ---- */

static void test_exit_names_the_reaper(void **state)
{
    struct proctrace_opts o = {0};
    struct proctrace *t = pt_open(&o);
    static struct col c;
    const struct proctrace_event *x;
    int p[2], q[2];
    pid_t a, b_pid = 0;
    char b = 0;
    size_t i;
    (void)state;

    c.n = 0;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(pipe(q), 0);
    fflush(stdout);
    a = fork();
    if (a == 0) { /* A: a subreaper; its child B exits leaving C, which goes to A */
        pid_t bb;
        close(p[1]);
        close(q[0]);
        if (read(p[0], &b, 1) != 1)
            _exit(120);
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        bb = fork();
        if (bb == 0) {
            if (fork() == 0) {
                usleep(200 * 1000);
                _exit(0);
            }
            _exit(0);
        }
        if (write(q[1], &bb, sizeof(bb)) != sizeof(bb))
            _exit(121);
        while (wait(NULL) > 0 || errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    close(q[1]);
    assert_int_equal(proctrace_track(t, a), 0);
    assert_int_equal(write(p[1], &b, 1), 1);
    close(p[1]);
    assert_int_equal(read(q[0], &b_pid, sizeof(b_pid)), (ssize_t)sizeof(b_pid));
    close(q[0]);
    assert_int_equal(wait_status(a), 0);
    pt_drain(t, &c, 200);
    x = find(&c, PROCTRACE_EXIT, b_pid);
    assert_non_null(x);
    assert_int_equal(x->reaper, a);
    for (i = 0; i < c.n; i++) /* C's parent was B */
        if (c.ev[i].kind == PROCTRACE_FORK && c.ev[i].ppid == b_pid)
            break;
    assert_true(i < c.n);
    printf("reaper: B's exit names A (%d), the subreaper its child went to\n", (int)a);
    proctrace_close(t);
}

/* ---- a loader inside a pid namespace ---- */

/* Runs as pid 1 of a new pid namespace with its own /proc: observe everything for a while
 * and check every event is of this namespace, with its pids. Exit 0 if so. */
static int ns_init_main(void)
{
    struct proctrace_opts o = {.observe_all = 1};
    struct proctrace *t = NULL;
    static struct col c;
    char why[512];
    pid_t w;
    size_t i;
    int forks = 0;

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("proc", "/proc", "proc", 0, NULL) != 0)
        return 90;
    if (proctrace_open(&t, &o, why, sizeof(why)) != 0) {
        fprintf(stderr, "in the namespace: %s\n", why);
        return 91;
    }
    w = fork();
    if (w == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    waitpid(w, NULL, 0);
    pt_drain(t, &c, 300);
    for (i = 0; i < c.n; i++) {
        if (c.ev[i].tgid > 16 || c.ev[i].tgid <= 0)
            return 92; /* a process of another namespace, or a host pid */
        forks += c.ev[i].kind == PROCTRACE_FORK && c.ev[i].tgid == w && c.ev[i].ppid == 1;
    }
    proctrace_close(t);
    return forks == 1 && find(&c, PROCTRACE_EXEC, w) != NULL ? 0 : 93;
}

static void test_loader_in_pid_namespace(void **state)
{
    struct proctrace_opts o = {0};
    pid_t x, noise;
    int st;
    (void)state;

    proctrace_close(pt_open(&o));
    noise = fork(); /* the host keeps forking meanwhile */
    if (noise == 0) {
        for (;;) {
            pid_t k = fork();
            if (k == 0)
                _exit(0);
            waitpid(k, NULL, 0);
            usleep(500);
        }
    }
    fflush(stdout);
    x = fork();
    if (x == 0) {
        pid_t g;
        if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0)
            _exit(99);
        g = fork();
        if (g == 0)
            _exit(ns_init_main());
        waitpid(g, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 98);
    }
    st = wait_status(x);
    kill(noise, SIGKILL);
    waitpid(noise, NULL, 0);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 99) {
        printf("[   SKIP   ] unshare(CLONE_NEWPID) refused\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
    printf("pid namespace: a loader there sees its own processes only, with its pids\n");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verifier_rejection_is_not_eperm),
        cmocka_unit_test(test_rename_events),
        cmocka_unit_test(test_tags_follow_forks),
        cmocka_unit_test(test_exit_names_the_reaper),
        cmocka_unit_test(test_loader_in_pid_namespace),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
