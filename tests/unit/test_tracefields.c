/* test_tracefields.c - fresh record fields (comm, ppid, exit time, cmdline), how a tracer that
 * cannot load says why, /proc polling's attribution, pid namespaces and kernel threads. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procbus.h"
#include "support.h"
#include "trace_harness.h"

/*
 * `test_tracefields --sleeper TAG`, `--renamer TAG NAME GO`, `--family TAG GO` and
 * `--retitle TAG` are workloads procbusd runs (below); GO is a file the test creates when
 * the workload may go on.
 */

static char g_self[512];
static char g_tag[64], g_go[128];

/* ---- workloads ---- */

static void wait_go(const char *go)
{
    int k;

    for (k = 0; k < 60000 && access(go, F_OK) != 0; k++)
        usleep(10000);
}

__attribute__((noreturn)) static void sleep_forever(void)
{
    for (;;)
        pause();
}

/* A child that renames itself (prctl PR_SET_NAME) once GO exists; the parent waits. */
__attribute__((noreturn)) static void renamer_main(const char *name, const char *go)
{
    if (fork() == 0) {
        wait_go(go);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        sleep_forever();
    }
    sleep_forever();
}

/* A child A with a child G; A exits once GO exists, so G is reparented (to procbusd). */
__attribute__((noreturn)) static void family_main(const char *go)
{
    if (fork() == 0) {
        if (fork() == 0)
            sleep_forever();
        wait_go(go);
        _exit(0);
    }
    sleep_forever();
}

/* Rewrite its own argv in place (as setproctitle does): one word, then NUL padding. */
__attribute__((noreturn)) static void retitle_main(int argc, char **argv)
{
    char *start = argv[0], *end = argv[argc - 1] + strlen(argv[argc - 1]);
    char title[64];

    snprintf(title, sizeof(title), "retitled-%s", argv[2]);
    memset(start, 0, (size_t)(end - start));
    memcpy(start, title, strlen(title) < (size_t)(end - start) ? strlen(title) : 0);
    sleep_forever();
}

/* ---- helpers ---- */

static const char *tag(const char *what)
{
    snprintf(g_tag, sizeof(g_tag), "%s-%d", what, (int)getpid());
    snprintf(g_go, sizeof(g_go), "/tmp/pbtt-go-%d", (int)getpid());
    unlink(g_go);
    pbtt_mark(g_tag);
    return g_tag;
}

static void go(void)
{
    int fd = open(g_go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
}

static int teardown(void **state)
{
    unlink(g_go);
    return pbtt_teardown(state);
}

struct want {
    uint64_t prog;
    char argv[512];
    size_t len;
    uint16_t state;
    struct procbus_proc rec;
};

static int cond_argv(struct tdaemon *d, void *arg)
{
    struct want *q = arg;

    return pbtt_find_argv(d, q->prog, q->argv, q->len, q->state, &q->rec) > 0;
}

/* The argv block SELF\0 a\0 b (words separated by spaces) into q (its final NUL left out). */
static void build_argv(struct want *q, const char *words)
{
    const char *p;
    size_t n = (size_t)snprintf(q->argv, sizeof(q->argv), "%s", g_self) + 1;

    for (p = words; *p != '\0' && n + strlen(p) + 1 < sizeof(q->argv);) {
        size_t w = strcspn(p, " ");
        memcpy(q->argv + n, p, w);
        n += w;
        q->argv[n++] = '\0';
        p += w;
        p += *p == ' ';
    }
    q->len = n - 1; /* the final NUL is optional for pbtt_find_argv */
}

/* Wait for a record of program `prog` with argv SELF\0 a\0 b... (words separated by spaces). */
static struct procbus_proc wait_rec(struct tdaemon *d, uint64_t prog, const char *words,
                                    uint16_t state)
{
    struct want q;

    memset(&q, 0, sizeof(q));
    q.prog = prog;
    q.state = state;
    build_argv(&q, words);
    if (!pbtt_wait(d, 30000, cond_argv, &q)) {
        pbtt_dump(d);
        fail_msg("no record of program %llu with argv '%s %s' in state %u",
                 (unsigned long long)prog, g_self, words, state);
    }
    return q.rec;
}

static struct procbus_proc prog_rec(struct tdaemon *d, const char *name, uint16_t state)
{
    struct procbus_proc p;

    if (pbt_wait_state(&d->h, name, state, 30000, &p) != 0)
        fail_msg("program %s never reached state %u", name, state);
    return p;
}

struct field_q {
    uint64_t id;
    int kind; /* 0 comm, 1 ppid, 2 exited */
    const char *comm;
    int32_t ppid;
    struct procbus_proc rec;
};

static int cond_field(struct tdaemon *d, void *arg)
{
    struct field_q *q = arg;

    if (pbtt_get(d, q->id, &q->rec) != 0)
        return 0;
    switch (q->kind) {
    case 0:
        return strncmp(q->rec.comm, q->comm, sizeof(q->rec.comm)) == 0;
    case 1:
        return q->rec.ppid == q->ppid;
    default:
        return q->rec.state == PROCBUS_STATE_EXITED;
    }
}

/* EXEC events about record `id` still in the event ring. */
static int exec_events(struct tdaemon *d, uint64_t id)
{
    struct procbus_reader r2;
    struct procbus_event ev;
    uint64_t missed;
    int rc, n = 0;

    assert_int_equal(procbus_open(&r2, d->h.seg), 0);
    procbus_seek_events(&r2, PROCBUS_SEEK_OLDEST);
    while ((rc = procbus_next_event(&r2, &ev, &missed)) == 0 || rc == -EAGAIN)
        if (rc == 0 && ev.record_id == id && ev.kind == PROCBUS_EV_EXEC)
            n++;
    procbus_close(&r2);
    return n;
}

/* ---- comm follows renames; a rename is no exec ---- */

static void rename_case(const char *mode, const char *extra)
{
    struct tdaemon d;
    struct procbus_proc prog, kid;
    struct field_q q = {0};
    char body[2048], words[320], name[16];

    if (strcmp(mode, "on") == 0)
        pbtt_need_bpf();
    tag("renamer");
    snprintf(name, sizeof(name), "rn%d", (int)getpid() % 100000);
    snprintf(body, sizeof(body),
             "trace = %s\n%s[program:rn]\ncommand = %s --renamer %s %s %s\nstartsecs = 0\n", mode,
             extra, g_self, g_tag, name, g_go);
    pbtt_start(&d, 0, body);
    prog = prog_rec(&d, "rn", PROCBUS_STATE_RUNNING);
    snprintf(words, sizeof(words), "--renamer %s %s %s", g_tag, name, g_go);
    kid = wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
    assert_string_not_equal(kid.comm, name);
    go();
    q.id = kid.id;
    q.comm = name;
    if (!pbtt_wait(&d, 30000, cond_field, &q))
        fail_msg("trace=%s: the renamed process's record still says comm '%.16s', not '%s'", mode,
                 q.rec.comm, name);
    assert_int_equal(exec_events(&d, kid.id), 0); /* it renamed itself: it never exec'd */
    printf("trace=%s: comm '%s' after prctl(PR_SET_NAME), no EXEC event\n", mode, q.rec.comm);
    assert_int_equal(pbtt_cli(&d, "stop rn", NULL, 0), 0);
    pbtt_stop(&d);
}

static void test_rename_comm_ebpf(void **state)
{
    (void)state;
    rename_case("on", "");
}

static void test_rename_comm_proc(void **state)
{
    (void)state;
    rename_case("proc", "");
}

/* ---- ppid follows reparenting ---- */

static void reparent_case(const char *mode)
{
    struct tdaemon d;
    struct procbus_proc prog, a, g;
    struct field_q q = {0};
    char body[2048], words[320];
    pid_t ppid = 0;

    if (strcmp(mode, "on") == 0)
        pbtt_need_bpf();
    tag("family");
    snprintf(body, sizeof(body),
             "trace = %s\n[program:fam]\ncommand = %s --family %s %s\n"
             "startsecs = 0\n",
             mode, g_self, g_tag, g_go);
    pbtt_start(&d, 0, body);
    prog = prog_rec(&d, "fam", PROCBUS_STATE_RUNNING);
    snprintf(words, sizeof(words), "--family %s %s", g_tag, g_go);
    /* A (child of the main process) and G (child of A): both carry the argv */
    for (;;) {
        const struct procbus_proc *r;
        size_t i, n;
        int found = 0;
        (void)wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
        n = pbtt_list(&d, &r);
        memset(&a, 0, sizeof(a));
        memset(&g, 0, sizeof(g));
        for (i = 0; i < n; i++) {
            if (!(r[i].flags & PROCBUS_F_DESCENDANT) || r[i].program_id != prog.id ||
                r[i].state != PROCBUS_STATE_RUNNING)
                continue;
            if (r[i].ppid == prog.pid)
                a = r[i], found |= 1;
        }
        for (i = 0; i < n && (found & 1); i++)
            if ((r[i].flags & PROCBUS_F_DESCENDANT) && r[i].ppid == a.pid &&
                r[i].state == PROCBUS_STATE_RUNNING)
                g = r[i], found |= 2;
        if (found == 3)
            break;
        usleep(50000);
    }
    go(); /* A exits: G goes to procbusd (a child subreaper) */
    assert_int_not_equal(pbt_proc_stat(g.pid, &ppid, NULL), 0);
    q.id = a.id;
    q.kind = 2;
    assert_true(pbtt_wait(&d, 30000, cond_field, &q));
    q.id = g.id;
    q.kind = 1;
    q.ppid = d.procbusd;
    if (!pbtt_wait(&d, 30000, cond_field, &q))
        fail_msg("trace=%s: grandchild %d was reparented to procbusd %d (/proc: parent %d) but "
                 "its record still says ppid %d",
                 mode, (int)g.pid, (int)d.procbusd,
                 pbt_proc_stat(g.pid, &ppid, NULL) ? (int)ppid : -1, (int)q.rec.ppid);
    printf("trace=%s: ppid %d -> %d when its parent exited\n", mode, (int)a.pid, (int)q.rec.ppid);
    assert_int_equal(pbtt_cli(&d, "stop fam", NULL, 0), 0);
    pbtt_stop(&d);
}

static void test_reparent_ppid_ebpf(void **state)
{
    (void)state;
    reparent_case("on");
}

static void test_reparent_ppid_proc(void **state)
{
    (void)state;
    reparent_case("proc");
}

/* ---- exits dated when they happened, not when procbusd noticed (issue 10, item 17) ---- */

static void exit_time_case(const char *mode)
{
    struct tdaemon d;
    struct procbus_proc prog, kid = {0};
    struct field_q q = {0};
    char body[2048], words[320];
    uint64_t t_dead, t_cont;
    int k;

    if (strcmp(mode, "on") == 0)
        pbtt_need_bpf();
    tag("exitime");
    snprintf(body, sizeof(body),
             "trace = %s\n[program:ex]\ncommand = sh -c '%s --sleeper %s & exec %s --sleeper %s'\n"
             "startsecs = 0\nautorestart = false\n",
             mode, g_self, g_tag, g_self, g_tag);
    pbtt_start(&d, 0, body);
    prog = prog_rec(&d, "ex", PROCBUS_STATE_RUNNING);
    snprintf(words, sizeof(words), "--sleeper %s", g_tag);
    if (strcmp(mode, "off") != 0)
        kid = wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
    /* procbusd stalls; both exit meanwhile; it resumes 1 s after they are dead */
    assert_int_equal(kill(d.procbusd, SIGSTOP), 0);
    assert_int_equal(kill(prog.pid, SIGKILL), 0);
    if (strcmp(mode, "off") != 0)
        assert_int_equal(kill(kid.pid, SIGKILL), 0);
    for (k = 0; k < 3000 && pbt_proc_stat(prog.pid, NULL, NULL) != 'Z'; k++)
        usleep(10000);
    assert_int_equal(pbt_proc_stat(prog.pid, NULL, NULL), 'Z'); /* dead, not reaped */
    t_dead = pb_now_ns(CLOCK_REALTIME);
    usleep(1000 * 1000);
    t_cont = pb_now_ns(CLOCK_REALTIME);
    assert_int_equal(kill(d.procbusd, SIGCONT), 0);
    prog = prog_rec(&d, "ex", PROCBUS_STATE_EXITED);
    if (strcmp(mode, "on") == 0) {
        if (prog.state_since_ns > t_dead)
            fail_msg("trace=on: EXITED is dated %.3f s after the main process was already dead "
                     "(when procbusd noticed, not the kernel's exit time)",
                     (double)(prog.state_since_ns - t_dead) / 1e9);
        q.id = kid.id;
        q.kind = 2;
        assert_true(pbtt_wait(&d, 30000, cond_field, &q));
        assert_true(q.rec.state_since_ns <= t_dead);
        printf("trace=on: exits dated %.3f s and %.3f s before procbusd resumed\n",
               (double)(t_cont - prog.state_since_ns) / 1e9,
               (double)(t_cont - q.rec.state_since_ns) / 1e9);
    } else { /* documented: without the tracer, when procbusd reaped it */
        int running;
        pid_t left[4];
        pbtt_scan_marked(g_tag, &running, NULL, left, 4);
        while (running-- > 0) /* its child: trace = off does not know it */
            kill(left[running], SIGKILL);
        assert_true(prog.state_since_ns >= t_cont);
        printf("trace=%s: EXITED dated when procbusd reaped it, %.3f s after the exit (as "
               "documented)\n",
               mode, (double)(prog.state_since_ns - t_dead) / 1e9);
    }
    pbtt_stop(&d);
}

static void test_exit_time_kernel(void **state)
{
    (void)state;
    exit_time_case("on");
}

static void test_exit_time_without_tracer(void **state)
{
    (void)state;
    exit_time_case("off");
}

/* ---- cmdlines without empty trailing arguments ---- */

static void test_cmdline_trimmed(void **state)
{
    struct tdaemon d;
    struct procbus_proc prog, r;
    char body[2048], want[512], words[320];
    size_t n;
    (void)state;

    pbtt_need_bpf();
    tag("trim");
    /* an exec with empty trailing arguments (eBPF: the exec event's argv) and a process that
     * rewrites its argv with NUL padding (a walk: trace = proc) */
    snprintf(body, sizeof(body),
             "trace = on\n[program:ta]\ncommand = sh -c '%s --sleeper %s \"\" \"\" \"\" & wait'\n"
             "startsecs = 0\n",
             g_self, g_tag);
    pbtt_start(&d, 0, body);
    prog = prog_rec(&d, "ta", PROCBUS_STATE_RUNNING);
    snprintf(words, sizeof(words), "--sleeper %s", g_tag);
    r = wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
    n = strlen(g_self) + 1 + strlen("--sleeper") + 1 + strlen(g_tag) + 1;
    assert_int_equal(r.cmdline_len, n);
    pbtt_stop(&d);

    snprintf(body, sizeof(body),
             "trace = proc\n[program:tb]\ncommand = sh -c '%s --retitle %s some more words & "
             "wait'\nstartsecs = 0\n",
             g_self, g_tag);
    pbtt_start(&d, 0, body);
    prog = prog_rec(&d, "tb", PROCBUS_STATE_RUNNING);
    {
        struct want q;
        memset(&q, 0, sizeof(q));
        q.prog = prog.id;
        q.state = PROCBUS_STATE_RUNNING;
        q.len = (size_t)snprintf(q.argv, sizeof(q.argv), "retitled-%s", g_tag);
        snprintf(want, sizeof(want), "%s", q.argv);
        if (!pbtt_wait(&d, 30000, cond_argv, &q)) {
            pbtt_dump(&d);
            fail_msg("trace=proc: no record with the rewritten argv '%s' and nothing after it",
                     want);
        }
        assert_int_equal(q.rec.cmdline_len, strlen(want) + 1);
    }
    printf("cmdlines: empty trailing arguments and NUL padding dropped\n");
    pbtt_stop(&d);
}

/* ---- a verifier rejection is one, not a permission problem ---- */

/* Run procbusd on `conf` with PROCTRACE_TEST_INVALID_PROG=1 until it exits or has started
 * (segment there); its stderr into err. Returns its exit status, or -1 if it kept running
 * (then it is stopped). */
static int run_invalid(struct tdaemon *d, const char *mode, char *err, size_t len)
{
    char body[256], exe[256], *log;
    pid_t pid;
    int k, st = -1;

    memset(d, 0, sizeof(*d));
    snprintf(d->h.dir, sizeof(d->h.dir), "/tmp/pbd-ttest-XXXXXX");
    assert_non_null(mkdtemp(d->h.dir));
    pbt_name(d->h.seg);
    snprintf(d->h.sock, sizeof(d->h.sock), "%s/ctl.sock", d->h.dir);
    snprintf(d->h.conf, sizeof(d->h.conf), "%s/procbus.conf", d->h.dir);
    snprintf(body, sizeof(body), "trace = %s\n[program:x]\ncommand = sleep 3333\n", mode);
    pbt_write_conf(&d->h, body);
    pbt_bin("procbusd", exe, sizeof(exe));
    pid = fork();
    if (pid == 0) {
        char path[160];
        int fd;
        snprintf(path, sizeof(path), "%s/procbusd.log", d->h.dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        setenv("PROCTRACE_TEST_INVALID_PROG", "1", 1);
        execl(exe, exe, "-c", d->h.conf, (char *)NULL);
        _exit(127);
    }
    for (k = 0; k < 3000; k++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        log = pbtt_log(d);
        if (strstr(log, "supervising") != NULL) { /* started: the line after the tracer's */
            free(log);
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
            st = -1;
            break;
        }
        free(log);
        usleep(10000);
    }
    log = pbtt_log(d);
    snprintf(err, len, "%s", log);
    free(log);
    pbt_unlink(d->h.seg);
    snprintf(body, sizeof(body), "rm -rf %s", d->h.dir);
    assert_int_equal(system(body), 0);
    return st;
}

static void test_verifier_rejection(void **state)
{
    struct tdaemon d;
    char err[4096];
    int st;
    (void)state;

    pbtt_need_bpf();
    st = run_invalid(&d, "on", err, sizeof(err));
    printf("trace=on, a program the verifier refuses: exit %d: %s", st, err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "verifier"));
    assert_null(strstr(err, "need root"));
    st = run_invalid(&d, "auto", err, sizeof(err));
    printf("trace=auto, the same: %s", err);
    assert_int_equal(st, -1); /* it runs, polling /proc */
    assert_non_null(strstr(err, "verifier"));
    assert_non_null(strstr(err, "polling /proc"));
    assert_null(strstr(err, "need root"));
}

/* ---- /proc polling: a daemon that cleared its environment and left the session ---- */

static void test_proc_env_cleared_daemon(void **state)
{
    struct tdaemon d;
    struct procbus_proc prog, r;
    char body[2048], words[320], out[256];
    int running, k, round;
    (void)state;

    tag("envi");
    snprintf(body, sizeof(body),
             "trace = proc\n[program:ed]\ncommand = sh -c 'setsid env -i %s --sleeper %s & "
             "exit 0'\nstartsecs = 0\nautorestart = false\nautostart = false\n"
             "[program:other]\ncommand = sleep 3456\nstartsecs = 0\nautostart = false\n",
             g_self, g_tag);
    pbtt_start(&d, 0, body);
    snprintf(words, sizeof(words), "--sleeper %s", g_tag);
    for (round = 0; round < 5; round++) {
        assert_int_equal(pbtt_cli(&d, "start ed", NULL, 0), 0);
        prog = prog_rec(&d, "ed", PROCBUS_STATE_EXITED);
        r = wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
        assert_int_equal(pbtt_cli(&d, "stop ed", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "killing 1 leftover"));
        for (k = 0; k < 3000; k++) {
            pbtt_scan_marked(g_tag, &running, NULL, NULL, 0);
            if (running == 0)
                break;
            usleep(10000);
        }
        assert_int_equal(running, 0);
    }
    printf("trace=proc: the env -i daemon (pid %d, last of 5) was program ed's each time\n",
           (int)r.pid);
    /* documented: with two programs running when it started, it is nobody's */
    assert_int_equal(pbtt_cli(&d, "start other", NULL, 0), 0);
    assert_int_equal(pbtt_cli(&d, "start ed", NULL, 0), 0);
    prog = prog_rec(&d, "ed", PROCBUS_STATE_EXITED);
    for (k = 0; k < 3000; k++) {
        pbtt_scan_marked(g_tag, &running, NULL, NULL, 0);
        if (running == 1)
            break;
        usleep(10000);
    }
    usleep(600 * 1000); /* three walks */
    {
        struct want q;
        memset(&q, 0, sizeof(q));
        build_argv(&q, words);
        printf("trace=proc: with another program running, %d record(s) for it (documented: "
               "none)\n",
               pbtt_find_argv(&d, prog.id, q.argv, q.len, PROCBUS_STATE_RUNNING, NULL));
    }
    assert_int_equal(pbtt_cli(&d, "stop other", NULL, 0), 0);
    pbtt_stop(&d);
}

/* ---- pid namespaces: observe shows the namespace's processes, with its pids ---- */

static void test_pidns_observe(void **state)
{
    struct tdaemon d;
    struct procbus_proc prog, r;
    const struct procbus_proc *all;
    char body[2048], words[320];
    size_t i, n;
    pid_t host;
    (void)state;

    pbtt_need_bpf();
    tag("nsobs");
    host = fork(); /* a process outside the namespace, busy forking: never in the records */
    if (host == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            pid_t p = fork();
            if (p == 0)
                _exit(0);
            waitpid(p, NULL, 0);
            usleep(1000);
        }
    }
    snprintf(body, sizeof(body),
             "trace = on\nobserve = true\n[program:in]\ncommand = sh -c '%s --sleeper %s & "
             "wait'\nstartsecs = 0\n",
             g_self, g_tag);
    pbtt_start(&d, 1, body);
    prog = prog_rec(&d, "in", PROCBUS_STATE_RUNNING);
    snprintf(words, sizeof(words), "--sleeper %s", g_tag);
    r = wait_rec(&d, prog.id, words, PROCBUS_STATE_RUNNING);
    n = pbtt_list(&d, &all);
    for (i = 0; i < n; i++) /* the namespace holds procbusd (1) and the program's few */
        if (all[i].pid > 64)
            fail_msg("observe in a pid namespace: record %llu has pid %d: not a pid of the "
                     "namespace (comm '%.16s')",
                     (unsigned long long)all[i].id, (int)all[i].pid, all[i].comm);
    printf("observe in a pid namespace: %zu records, all with the namespace's pids (the "
           "program's is %d, its child %d)\n",
           n, (int)prog.pid, (int)r.pid);
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    assert_int_equal(pbtt_cli(&d, "stop in", NULL, 0), 0);
    pbtt_stop(&d);
}

/* ---- kernel threads are not processes to observe ---- */

static int cond_self(struct tdaemon *d, void *arg)
{
    const struct procbus_proc *all;
    size_t i, n = pbtt_list(d, &all);
    (void)arg;

    for (i = 0; i < n; i++)
        if (all[i].pid == getpid())
            return 1;
    return 0;
}

static void test_observe_no_kernel_threads(void **state)
{
    struct tdaemon d;
    const struct procbus_proc *all;
    size_t i, n;
    int seen_self = 0;
    (void)state;

    pbtt_need_bpf();
    pbtt_start(&d, 0, "trace = on\nobserve = true\n");
    assert_true(pbtt_wait(&d, 30000, cond_self, NULL));
    n = pbtt_list(&d, &all);
    for (i = 0; i < n; i++) {
        if (all[i].pid == 2 || all[i].ppid == 2)
            fail_msg("observe: record %llu (pid %d, comm '%.16s') is a kernel thread",
                     (unsigned long long)all[i].id, (int)all[i].pid, all[i].comm);
        seen_self |= all[i].pid == getpid();
    }
    assert_true(seen_self);
    printf("observe: %zu records, no kernel thread\n", n);
    pbtt_stop(&d);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rename_comm_ebpf, teardown),
        cmocka_unit_test_teardown(test_rename_comm_proc, teardown),
        cmocka_unit_test_teardown(test_reparent_ppid_ebpf, teardown),
        cmocka_unit_test_teardown(test_reparent_ppid_proc, teardown),
        cmocka_unit_test_teardown(test_exit_time_kernel, teardown),
        cmocka_unit_test_teardown(test_exit_time_without_tracer, teardown),
        cmocka_unit_test_teardown(test_cmdline_trimmed, teardown),
        cmocka_unit_test_teardown(test_verifier_rejection, teardown),
        cmocka_unit_test_teardown(test_proc_env_cleared_daemon, teardown),
        cmocka_unit_test_teardown(test_pidns_observe, teardown),
        cmocka_unit_test_teardown(test_observe_no_kernel_threads, teardown),
    };

    if (argc >= 3 && strcmp(argv[1], "--sleeper") == 0)
        sleep_forever();
    if (argc >= 5 && strcmp(argv[1], "--renamer") == 0)
        renamer_main(argv[3], argv[4]);
    if (argc >= 4 && strcmp(argv[1], "--family") == 0)
        family_main(argv[3]);
    if (argc >= 3 && strcmp(argv[1], "--retitle") == 0)
        retitle_main(argc, argv);
    if (realpath("/proc/self/exe", g_self) == NULL)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
