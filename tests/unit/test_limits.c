/* test_limits.c - procbusd's resources and liveness (issue 10, 7 8 9 10 11 14 15 16 18): reload
 * memory, capacity, descriptor limits, control-socket slots and timeouts, the CLI's refusals and
 * -t, lost log output, the start limit, empty reloads, the systemd unit. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "daemon_harness.h"
#include "procbus.h"
#include "support.h"
#include "unpriv.h"

static void start_daemon(struct daemon_h *h, const char *body)
{
    pbt_start_daemon(h, "/tmp/pbd-test", body);
}

/* 1 if the segment has a record named `name`. */
static int has_record(struct daemon_h *h, const char *name)
{
    struct procbus_proc p;
    return procbus_get_name(&h->r, name, &p) == 0;
}

/* Wait until `name` is RUNNING or FATAL (up to timeout_ms); its state, or -1. */
static int wait_settled(struct daemon_h *h, const char *name, int timeout_ms)
{
    long end = pbt_now_ms() + timeout_ms;
    struct procbus_proc p;

    do {
        if (procbus_get_name(&h->r, name, &p) == 0 &&
            (p.state == PROCBUS_STATE_RUNNING || p.state == PROCBUS_STATE_FATAL))
            return p.state;
        usleep(20000);
    } while (pbt_now_ms() < end);
    return -1;
}

/* procbusd's own log (its stderr) in the harness's folder. */
static const char *daemon_log(const struct daemon_h *h, char *buf, size_t len)
{
    snprintf(buf, len, "%s/procbusd.log", h->dir);
    return buf;
}

/* A control request from this process; its final line's reason (or "") in why. 0, 1, -errno. */
static int request(const struct daemon_h *h, const char *line, char *why, size_t whylen)
{
    char copy[256], *argv[8], *out = NULL, *err = NULL, *save = NULL;
    size_t olen = 0, elen = 0;
    FILE *fo = open_memstream(&out, &olen), *fe = open_memstream(&err, &elen);
    int argc = 0, rc;

    snprintf(copy, sizeof(copy), "%s", line);
    for (char *w = strtok_r(copy, " ", &save); w != NULL && argc < 7;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    rc = pbd_ctl_request_timeout(h->sock, argc, argv, fo, fe, 60000);
    fclose(fo);
    fclose(fe);
    snprintf(why, whylen, "%s", err != NULL ? err : "");
    free(out);
    free(err);
    return rc;
}

static long vm_rss_kb(pid_t pid)
{
    char path[64], *s, *p;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    s = pbt_slurp(path, NULL);
    if (s != NULL && (p = strstr(s, "VmRSS:")) != NULL)
        kb = strtol(p + 6, NULL, 10);
    free(s);
    return kb;
}

/* Item 7: reloads do not keep every configuration they replaced. */
static void test_reload_frees_replaced_configs(void **state)
{
    struct daemon_h h;
    char why[512];
    long before, after;
    (void)state;

    /* under ASan, freed memory waits in a quarantine before reuse: none, to measure reuse */
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan != NULL ? strdup(asan) : NULL, opts[512];

    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", saved ? saved : "", saved ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    start_daemon(&h, "[program:p]\ncommand = /bin/sleep 1000 with some arguments to copy\n"
                     "process_name = p%(process_num)03d\nnumprocs = 200\nautostart = false\n"
                     "environment = A=\"one value\",B=\"another value\",C=a-third-one\n"
                     "stdout_logfile = NONE\n");
    if (saved != NULL)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
    for (int i = 0; i < 10; i++) /* warm up: the allocator's own pools */
        assert_int_equal(request(&h, "reload", why, sizeof(why)), 0);
    before = vm_rss_kb(h.pid);
    for (int i = 0; i < 100; i++)
        assert_int_equal(request(&h, "reload", why, sizeof(why)), 0);
    after = vm_rss_kb(h.pid);
    print_message("VmRSS %ld kB -> %ld kB after 100 reloads of 200 programs\n", before, after);
    assert_true(before > 0);
    assert_true(after - before < 4096); /* kept configurations grew it by ~40 MB */
    pbt_stop_daemon(&h);
}

/* Item 8: more instances than capacity: refused at load (--check, start) and at reload. */
static void test_capacity_checked(void **state)
{
    char dir[] = "/tmp/pbd-cap-XXXXXX", path[128], cmd[512], exe[256], why[512];
    struct daemon_h h;
    FILE *f;
    int st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/big.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[procbusd]\ncapacity = 100\n[program:w]\ncommand = sleep 1000\n"
               "process_name = w%%(process_num)d\nnumprocs = 150\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s --check -c %s >%s/out 2>&1",
             pbt_bin("procbusd", exe, sizeof(exe)), path, dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(path, sizeof(path), "%s/out", dir);
    assert_true(pbt_file_has(path, "150 program instances", 0));
    assert_true(pbt_file_has(path, "raise [procbusd] capacity", 0));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);

    /* a running daemon's segment keeps its capacity: a reload needing more is refused */
    start_daemon(&h, "[procbusd]\ncapacity = 8\n[program:s]\ncommand = sleep 1000\n"
                     "process_name = s%(process_num)d\nnumprocs = 5\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "s4", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    pbt_write_conf(&h, "[procbusd]\ncapacity = 100\n[program:s]\ncommand = sleep 1000\n"
                       "process_name = s%(process_num)d\nnumprocs = 20\nstartsecs = 0\n");
    assert_int_equal(request(&h, "reload", why, sizeof(why)), 1);
    assert_non_null(strstr(why, "capacity"));
    assert_false(has_record(&h, "s19"));
    pbt_stop_daemon(&h);
}

/* "Max open files  SOFT  HARD" of a process. */
static void nofile_of(pid_t pid, long *soft, long *hard)
{
    char path[64], *s, *p;

    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    s = pbt_slurp(path, NULL);
    assert_non_null(s);
    p = strstr(s, "Max open files");
    assert_non_null(p);
    assert_int_equal(sscanf(p + 14, "%ld %ld", soft, hard), 2);
    free(s);
}

/* The wrapper folder of start_limited and the PROCBUS_BUILD_DIR it replaced ("": none), for
 * teardown_limited when a test stops half-way. */
static char g_wrap[32], g_build_dir[256];
static int g_had_build_dir;

/* Put PROCBUS_BUILD_DIR back and remove the wrapper folder (once). */
static void unwrap(void)
{
    char cmd[64];

    if (g_wrap[0] == '\0')
        return;
    if (g_had_build_dir)
        setenv("PROCBUS_BUILD_DIR", g_build_dir, 1);
    else
        unsetenv("PROCBUS_BUILD_DIR");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_wrap);
    if (system(cmd) != 0)
        print_error("could not remove %s\n", g_wrap);
    g_wrap[0] = '\0';
}

static int teardown_limited(void **state)
{
    unwrap();
    return pbt_teardown(state);
}

/*
 * Start procbusd with RLIMIT_NOFILE soft/hard: through a wrapper script that lowers them and
 * execs the real one (this process could not raise its own hard limit back without
 * CAP_SYS_RESOURCE, which root lacks in some containers). The CLI keeps working meanwhile.
 */
static void start_limited(struct daemon_h *h, const char *body, unsigned soft, unsigned hard)
{
    char real[PATH_MAX], path[300], cli[PATH_MAX];
    const char *env = getenv("PROCBUS_BUILD_DIR");
    FILE *f;

    g_had_build_dir = env != NULL;
    snprintf(g_build_dir, sizeof(g_build_dir), "%s", env != NULL ? env : "");
    pbt_bin("procbusd", path, sizeof(path));
    if (realpath(path, real) == NULL)
        snprintf(real, sizeof(real), "%s", path);
    pbt_bin("procbus", path, sizeof(path));
    if (realpath(path, cli) == NULL)
        snprintf(cli, sizeof(cli), "%s", path);
    snprintf(g_wrap, sizeof(g_wrap), "/tmp/pbd-wrap-XXXXXX");
    assert_non_null(mkdtemp(g_wrap));
    snprintf(path, sizeof(path), "%s/procbusd", g_wrap);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nulimit -S -n %u && ulimit -H -n %u && exec %s \"$@\"\n", soft, hard,
            real);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/procbus", g_wrap);
    assert_int_equal(symlink(cli, path), 0);
    setenv("PROCBUS_BUILD_DIR", g_wrap, 1);
    start_daemon(h, body);
    unwrap();
}

/* Item 9: procbusd raises its soft descriptor limit (its programs get the old one back), and a
 * spawn that runs out of descriptors says EMFILE, not a later call's error. */
static void test_fd_limit(void **state)
{
    struct daemon_h h;
    struct procbus_proc p;
    char body[1024], log[200];
    long soft, hard;
    int fatal = 0;
    (void)state;

    snprintf(body, sizeof(body),
             "[procbusd]\ntrace = off\n[program:w]\ncommand = sleep 1000\n"
             "process_name = w%%(process_num)02d\nnumprocs = 40\nstartsecs = 0\n"
             "startretries = 0\nstdout_logfile = /tmp/pbd-limits-%d-%%(process_num)d.out\n"
             "stderr_logfile = /tmp/pbd-limits-%d-%%(process_num)d.err\n",
             (int)getpid(), (int)getpid());
    start_limited(&h, body, 64, 4096); /* 40 programs need ~200 descriptors */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%02d", i);
        assert_int_equal(pbt_wait_state(&h, name, PROCBUS_STATE_RUNNING, 20000, &p), 0);
    }
    nofile_of(h.pid, &soft, &hard);
    assert_int_equal(soft, 4096);
    nofile_of(p.pid, &soft, &hard);
    assert_int_equal(soft, 64); /* the program: the limit procbusd was given */
    pbt_stop_daemon(&h);
    assert_int_equal(system("rm -f /tmp/pbd-limits-*.out /tmp/pbd-limits-*.err"), 0);

    /* soft = hard: nothing to raise; the spawns that run out say why */
    start_limited(&h,
                  "[procbusd]\ntrace = off\n[program:w]\ncommand = sleep 1000\n"
                  "process_name = w%(process_num)02d\nnumprocs = 40\nstartsecs = 0\n"
                  "startretries = 0\n",
                  40, 40);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%02d", i);
        fatal += wait_settled(&h, name, 20000) == PROCBUS_STATE_FATAL;
    }
    assert_true(fatal > 0);
    daemon_log(&h, log, sizeof(log));
    assert_true(pbt_file_has(log, "Too many open files", 0));
    assert_true(pbt_file_has(log, "LimitNOFILE", 0));
    assert_false(pbt_file_has(log, "Invalid argument", 0));
    pbt_stop_daemon(&h);
}

/* FDSize of /proc/PID/status: how many descriptor slots the process's table has. */
static long fd_slots_of(pid_t pid)
{
    char path[64], *s, *p;
    long n = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    s = pbt_slurp(path, NULL);
    assert_non_null(s);
    p = strstr(s, "FDSize:");
    assert_non_null(p);
    assert_int_equal(sscanf(p + 7, "%ld", &n), 1);
    free(s);
    return n;
}

/* procbusd grows its descriptor table for its programs once, before it has threads: grown
 * later, one slot block at a time, every growth waited for an RCU grace period (adopting
 * 1,000 programs spent about 50 ms there). 300 programs, none started: the table is already
 * sized for them (8 descriptors each, 256 more), within procbusd's open-file limit. */
static void test_fd_table_reserved(void **state)
{
    struct daemon_h h;
    long soft, hard, want = 300 * 8 + 256;
    (void)state;

    start_daemon(&h, "[procbusd]\ntrace = off\n[program:w]\ncommand = sleep 1000\n"
                     "process_name = w%(process_num)03d\nnumprocs = 300\nautostart = false\n");
    assert_int_equal(pbt_wait_state(&h, "w299", PROCBUS_STATE_STOPPED, 20000, NULL), 0);
    nofile_of(h.pid, &soft, &hard);
    if (want > soft - 1)
        want = soft - 1;
    assert_true(fd_slots_of(h.pid) >= want);
    pbt_stop_daemon(&h);
}

/* A raw connection to the control socket. */
static int raw_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Item 10: idle and half-sent control connections are closed ("ERR timeout"), so they cannot
 * hold every slot. */
static void test_control_idle_timeout(void **state)
{
    struct daemon_h h;
    int fds[16];
    char why[512];
    long end;
    (void)state;

    start_daemon(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\nautostart = false\n");
    for (int i = 0; i < 16; i++)
        fds[i] = raw_connect(h.sock);
    assert_int_equal(write(fds[0], "sta", 3), 3); /* half a request */
    end = pbt_now_ms() + 60000;
    for (int i = 0; i < 16; i++) {
        struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
        char buf[128] = "";
        long left = end - pbt_now_ms();
        assert_int_equal(poll(&pfd, 1, left > 0 ? (int)left : 0), 1);
        assert_true(read(fds[i], buf, sizeof(buf) - 1) > 0);
        assert_non_null(strstr(buf, "ERR timeout"));
        close(fds[i]);
    }
    assert_int_equal(request(&h, "start a", why, sizeof(why)), 0);
    pbt_stop_daemon(&h);
}

struct hog {
    const char *sock;
    int report, hold; /* pipes: the 16th connection's answer goes out; EOF on hold releases */
};

/* (as nobody) 16 connections; what the 16th is told goes to the report pipe; hold the rest. */
static int hog_slots(void *arg)
{
    const struct hog *hg = arg;
    int fds[16];
    char buf[128] = "";
    ssize_t n;

    struct timeval tv = {.tv_sec = 15};

    alarm(120); /* a test that failed half-way never releases it */
    for (int i = 0; i < 16; i++)
        fds[i] = raw_connect(hg->sock);
    setsockopt(fds[15], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* never told: "" */
    n = read(fds[15], buf, sizeof(buf) - 1);
    if (write(hg->report, buf, n > 0 ? (size_t)n : 1) < 0)
        return 1;
    n = read(hg->hold, buf, 1); /* until the test is done */
    return 0;
}

/* Item 10: procbusd running as nobody: nobody's own connections cannot take the last slot,
 * which stays for root. */
static void test_control_slot_kept_for_root(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[] = "/tmp/pbd-slot-XXXXXX", conf[128], sock[128], logp[128], seg[64], exe[256];
    char buf[128] = "", why[512], cmd[160];
    int rep[2], hold[2], st;
    struct daemon_h h;
    pid_t daemon, hog;
    FILE *f;
    (void)state;

    if (nb == NULL)
        skip(); /* needs root and a "nobody" user */
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chown(dir, nb->pw_uid, nb->pw_gid), 0);
    pbt_name(seg);
    snprintf(conf, sizeof(conf), "%s/procbus.conf", dir);
    snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
    snprintf(logp, sizeof(logp), "%s/procbusd.log", dir);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[procbusd]\nsegment = %s\nsocket = %s\ntrace = off\n[program:a]\n"
            "command = sleep 1000\nautostart = false\n",
            seg, sock);
    fclose(f);
    assert_int_equal(chmod(conf, 0644), 0);
    pbt_bin("procbusd", exe, sizeof(exe));
    daemon = fork();
    if (daemon == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        if (setgroups(0, NULL) < 0 || setresgid(nb->pw_gid, nb->pw_gid, nb->pw_gid) < 0 ||
            setresuid(nb->pw_uid, nb->pw_uid, nb->pw_uid) < 0)
            _exit(100);
        execl(exe, exe, "-c", conf, (char *)NULL);
        _exit(127);
    }
    pbt_track_bg(daemon, 1);
    memset(&h, 0, sizeof(h));
    snprintf(h.sock, sizeof(h.sock), "%s", sock);
    for (int i = 0; i < 1500 && request(&h, "bogus", why, sizeof(why)) < 0; i++) {
        if (waitpid(daemon, &st, WNOHANG) == daemon) {
            print_message("procbusd as nobody exited (status 0x%x): skipped\n", st);
            pbt_track_bg(daemon, 0);
            snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
            assert_int_equal(system(cmd), 0);
            skip();
        }
        usleep(20000);
    }
    assert_int_equal(pipe(rep), 0);
    assert_int_equal(pipe(hold), 0);
    {
        struct hog hg = {sock, rep[1], hold[0]};
        hog = fork();
        if (hog == 0) {
            close(hold[1]);
            _exit(pbt_as_user(nb, hog_slots, &hg));
        }
    }
    close(rep[1]);
    close(hold[0]);
    assert_true(read(rep[0], buf, sizeof(buf) - 1) > 0);
    assert_non_null(strstr(buf, "busy")); /* nobody's 16th: the last slot is root's */
    assert_int_equal(request(&h, "bogus", why, sizeof(why)), 1);
    assert_non_null(strstr(why, "unknown command")); /* root is served */
    close(hold[1]);
    close(rep[0]);
    pbt_wait_child(hog);
    kill(daemon, SIGTERM);
    pbt_wait_child(daemon);
    pbt_track_bg(daemon, 0);
    pbt_unlink(seg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Run `procbus ARGS` with stderr into errpath; its pid. */
static pid_t spawn_cli(const char *sock, const char *const *args, const char *errpath)
{
    char exe[256];
    const char *argv[16];
    int n = 0;
    pid_t pid;

    pbt_bin("procbus", exe, sizeof(exe));
    argv[n++] = exe;
    argv[n++] = "-S";
    argv[n++] = sock;
    for (int i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Item 11: a refusal that closes the connection before the CLI sent its request is reported,
 * not a death by SIGPIPE. The fake daemon runs at real-time priority on the CLI's CPU, so it
 * accepts, refuses and closes before the CLI writes (every time). */
static void test_cli_refusal_no_sigpipe(void **state)
{
    char dir[] = "/tmp/pbd-pipe-XXXXXX", sock[96], errp[128], cmd[160];
    const char *args[] = {"-t", "5", "reload", NULL};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct sched_param rt = {.sched_priority = 10}, normal = {.sched_priority = 0};
    cpu_set_t one, all;
    int lfd, c, st;
    pid_t pid;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
    snprintf(errp, sizeof(errp), "%s/err", dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    pid = spawn_cli(sock, args, errp); /* on this CPU too */
    if (sched_setscheduler(0, SCHED_FIFO, &rt) < 0) {
        print_message("no real-time priority here (%s): the refusal is not forced first\n",
                      strerror(errno));
    }
    {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        c = poll(&pfd, 1, 60000) == 1 ? accept(lfd, NULL, NULL) : -1;
    }
    if (c < 0) {
        sched_setscheduler(0, SCHED_OTHER, &normal);
        sched_setaffinity(0, sizeof(all), &all);
        kill(pid, SIGKILL);
    }
    assert_true(c >= 0);
    assert_int_equal(write(c, "ERR busy: too many control connections\n", 39), 39);
    close(c);
    sched_setscheduler(0, SCHED_OTHER, &normal);
    sched_setaffinity(0, sizeof(all), &all);
    st = pbt_wait_child(pid);
    close(lfd);
    assert_int_equal(st, 1); /* not 128 + SIGPIPE */
    assert_true(pbt_file_has(errp, "busy", 0));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Item 11: a stopped daemon: the CLI gives up after -t seconds and says so. */
static void test_cli_timeout_on_stopped_daemon(void **state)
{
    const char *args[] = {"-t", "2", "stop", "a", NULL};
    struct daemon_h h;
    char errp[200];
    pid_t pid;
    long end;
    int st = -1;
    (void)state;

    start_daemon(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "a", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    snprintf(errp, sizeof(errp), "%s/cli.err", h.dir);
    kill(h.pid, SIGSTOP);
    pid = spawn_cli(h.sock, args, errp);
    end = pbt_now_ms() + 60000;
    while (pbt_now_ms() < end && waitpid(pid, &st, WNOHANG) == 0)
        usleep(50000);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    kill(h.pid, SIGCONT);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 5);
    assert_true(pbt_file_has(errp, "did not answer within 2 s", 0));
    pbt_stop_daemon(&h);
}

/* The last "writing again; N bytes were lost (M in all)" of the log: M, or -1. */
static long long lost_in_all(const char *log)
{
    char *s = pbt_slurp(log, NULL), *p = s, *last = NULL;
    unsigned long long run, all;
    long long r = -1;

    while (p != NULL && (p = strstr(p, "writing again; ")) != NULL)
        last = p++;
    if (last != NULL &&
        sscanf(last, "writing again; %llu bytes were lost (%llu in all)", &run, &all) == 2)
        r = (long long)all;
    free(s);
    return r;
}

/* Item 14: a log that cannot take the output (a full disk: /dev/full; a FIFO nobody reads) is
 * reported once, counted, and said to work again. */
static void test_lost_log_output(void **state)
{
    struct daemon_h h;
    char body[1024], fifo[64], go[64], log[200], buf[65536];
    long long ys = 0, total = -1;
    int rfd, after = 0, told_go = 0;
    long end;
    (void)state;

    snprintf(fifo, sizeof(fifo), "/tmp/pbd-fifo-%d", (int)getpid());
    snprintf(go, sizeof(go), "/tmp/pbd-fifo-%d.go", (int)getpid());
    unlink(fifo);
    unlink(go);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* so procbusd's open succeeds */
    assert_true(rfd >= 0);
    snprintf(body, sizeof(body),
             "[program:full]\ncommand = sh -c 'head -c 3000000 /dev/zero | tr \"\\\\000\" x; "
             "exec sleep 1000'\nstartsecs = 0\nstdout_logfile = /dev/full\n"
             "[program:fifo]\ncommand = sh -c 'head -c 300000 /dev/zero | tr \"\\\\000\" y; "
             "while [ ! -e %s ]; do sleep 0.05; done; echo after; exec sleep 1000'\n"
             "startsecs = 0\nstdout_logfile = %s\nstdout_logfile_maxbytes = 0\n",
             go, fifo);
    start_daemon(&h, body);
    daemon_log(&h, log, sizeof(log));
    assert_true(pbt_file_has(log, "full: log /dev/full: output lost", 20000));
    assert_true(pbt_file_has(log, "fifo: log", 20000));
    /*
     * Read the FIFO (it was full). Once procbusd has dealt with every 'y' (each one read from
     * the FIFO here, or counted as lost in the segment's log_bytes_lost beside /dev/full's
     * 3,000,000) and the FIFO is empty, let the program write once more: that line must get
     * through (before, a slow procbusd could still be filling the FIFO when "after" came).
     */
    end = pbt_now_ms() + 60000;
    while (!after && pbt_now_ms() < end) {
        struct procbus_info inf = {0};
        ssize_t n = read(rfd, buf, sizeof(buf));
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                ys += buf[i] == 'y';
            after = memmem(buf, (size_t)n, "after\n", 6) != NULL;
            continue;
        }
        if (!told_go && procbus_info(&h.r, &inf) == 0 && inf.log_bytes_lost >= 3000000ull &&
            inf.log_bytes_lost - 3000000ull + (unsigned long long)ys == 300000ull) {
            assert_int_equal(close(open(go, O_CREAT | O_WRONLY, 0644)), 0);
            told_go = 1;
        }
        usleep(20000);
    }
    if (!after)
        fail_msg("no 'after' through the FIFO: %lld y read, go %s", ys,
                 told_go ? "given" : "not given");
    /* every byte was written or counted as lost */
    end = pbt_now_ms() + 20000;
    while ((total = lost_in_all(log)) + ys != 300000 && pbt_now_ms() < end)
        usleep(20000);
    print_message("%lld bytes through the FIFO, %lld counted as lost\n", ys, total);
    assert_int_equal(total + ys, 300000);
    /* the segment publishes the count (header log_bytes_lost, ABI 1.2): both programs' losses */
    {
        struct procbus_info inf = {0};
        end = pbt_now_ms() + 20000;
        while ((procbus_info(&h.r, &inf) != 0 ||
                inf.log_bytes_lost != 3000000ull + (unsigned long long)total) &&
               pbt_now_ms() < end)
            usleep(20000);
        print_message("log_bytes_lost in the segment: %llu\n",
                      (unsigned long long)inf.log_bytes_lost);
        assert_int_equal(inf.log_bytes_lost, 3000000ull + (unsigned long long)total);
    }
    /* all 3 MB of the first program went to /dev/full meanwhile: one line, not one per read */
    assert_int_equal(pbt_file_count(log, "full: log /dev/full"), 1);
    close(rfd);
    pbt_stop_daemon(&h);
    unlink(fifo);
    unlink(go);
}

static int count_state_events(struct daemon_h *h, const char *name, uint16_t want)
{
    struct procbus_reader r2;
    struct procbus_event ev;
    struct procbus_proc p;
    uint64_t missed;
    int n = 0;

    assert_int_equal(procbus_get_name(&h->r, name, &p), 0);
    assert_int_equal(procbus_open(&r2, h->seg), 0);
    procbus_seek_events(&r2, PROCBUS_SEEK_OLDEST);
    while (procbus_next_event(&r2, &ev, &missed) == 0)
        n += ev.record_id == p.id && ev.kind == PROCBUS_EV_STATE && ev.new_state == want;
    procbus_close(&r2);
    return n;
}

/* Item 15: a program that exits at once with autorestart = true is restarted at most
 * startlimit_burst times in the window, then waits in BACKOFF (the default: 5 in 10 s). */
static void test_start_limit(void **state)
{
    struct daemon_h h;
    char log[200];
    (void)state;

    start_daemon(&h, "[program:burst3]\ncommand = true\nautorestart = true\nstartsecs = 0\n"
                     "startlimit_burst = 3\nstartlimit_interval_secs = 3600\n"
                     "[program:default]\ncommand = true\nautorestart = true\nstartsecs = 0\n"
                     "[program:nolimit]\ncommand = true\nautorestart = true\nstartsecs = 0\n"
                     "startlimit_interval_secs = 0\nautostart = false\n");
    assert_int_equal(pbt_wait_state(&h, "burst3", PROCBUS_STATE_BACKOFF, 30000, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "default", PROCBUS_STATE_BACKOFF, 30000, NULL), 0);
    assert_int_equal(count_state_events(&h, "burst3", PROCBUS_STATE_STARTING), 3);
    assert_int_equal(count_state_events(&h, "default", PROCBUS_STATE_STARTING), 5);
    daemon_log(&h, log, sizeof(log));
    assert_true(pbt_file_has(log, "burst3: started 3 times within 3600 s (startlimit_burst", 0));
    /* still held: a second look finds no new start */
    usleep(300000);
    assert_int_equal(count_state_events(&h, "burst3", PROCBUS_STATE_STARTING), 3);
    pbt_stop_daemon(&h);
}

/* Item 16: a reload to a configuration without programs is refused unless allowed. */
static void test_empty_reload_refused(void **state)
{
    struct daemon_h h;
    char why[512];
    (void)state;

    start_daemon(&h, "[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
                     "[program:b]\ncommand = sleep 1000\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "a", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    /* (b's exec is reported on its own: RUNNING may come a turn after a's) */
    assert_int_equal(pbt_wait_state(&h, "b", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    pbt_write_conf(&h, "");
    assert_int_equal(request(&h, "reload", why, sizeof(why)), 1);
    assert_non_null(strstr(why, "allow-empty"));
    assert_int_equal(pbt_wait_state(&h, "a", PROCBUS_STATE_RUNNING, 1, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "b", PROCBUS_STATE_RUNNING, 1, NULL), 0);
    assert_int_equal(pbt_cli(&h, "reload", ">/dev/null 2>&1"), 1);
    assert_int_equal(pbt_cli(&h, "reload allow-empty", ">/dev/null 2>&1"), 0);
    for (int i = 0; i < 500 && has_record(&h, "a"); i++)
        usleep(20000);
    assert_false(has_record(&h, "a"));
    pbt_stop_daemon(&h);
}

/* Item 18: the shipped unit restarts a failed procbusd and sets the descriptor limit. */
static void test_service_unit(void **state)
{
    const char *src = getenv("PROCBUS_SRCDIR");
    char path[512];
    char *s;
    (void)state;

    snprintf(path, sizeof(path), "%s/packaging/procbusd.service", src && *src ? src : ".");
    s = pbt_slurp(path, NULL);
    if (s == NULL) {
        print_message("%s: not found (run from the source tree or set PROCBUS_SRCDIR)\n", path);
        skip();
    }
    assert_non_null(strstr(s, "\nRestart=on-failure\n"));
    assert_non_null(strstr(s, "\nLimitNOFILE="));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_reload_frees_replaced_configs, pbt_teardown),
        cmocka_unit_test_teardown(test_capacity_checked, pbt_teardown),
        cmocka_unit_test_teardown(test_fd_limit, teardown_limited),
        cmocka_unit_test_teardown(test_fd_table_reserved, pbt_teardown),
        cmocka_unit_test_teardown(test_control_idle_timeout, pbt_teardown),
        cmocka_unit_test_teardown(test_control_slot_kept_for_root, pbt_teardown),
        cmocka_unit_test_teardown(test_cli_refusal_no_sigpipe, pbt_teardown),
        cmocka_unit_test_teardown(test_cli_timeout_on_stopped_daemon, pbt_teardown),
        cmocka_unit_test_teardown(test_lost_log_output, pbt_teardown),
        cmocka_unit_test_teardown(test_start_limit, pbt_teardown),
        cmocka_unit_test_teardown(test_empty_reload_refused, pbt_teardown),
        cmocka_unit_test(test_service_unit),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
