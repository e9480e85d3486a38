/* test_trace.c - procbusd's process tracing end to end: real trees, a real procbusd, the reader. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <grp.h>
#include <pwd.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "proctrace_user.h"
#include "support.h"

/*
 * The contract under test is procbusd's tracing (trace = on|proc|off, observe,
 * keep_exited_secs, trace_ring_kb): descendant records, their events, stopping a
 * whole traced tree, loss accounting and reconciliation. Every wait is generous
 * (a loaded 2-core machine); nothing asserts how fast something happened.
 *
 * Run as `test_trace --storm N [--exec] [--batch B] [--sleeper-at K] [--go-file F]` or
 * `test_trace --zombies K GOFILE` it is a workload procbusd supervises in some tests (see
 * storm_main, zombies_main). `test_trace PATTERN` runs only the tests matching PATTERN.
 */

/* An argv block literal ("sleep\0" "300") and its length, for find_desc. */
#define ARGV_LIT(s) s, sizeof(s) - 1

static char g_self[512]; /* this binary, the storm workload */

/* ---- the storm workload (runs under procbusd, not under cmocka) ---- */

/* Wait (up to 60 s) until `path` exists: the test says when. 0, or -1 on timeout. */
static int wait_go(const char *path)
{
    int k;

    for (k = 0; path != NULL && access(path, F_OK) != 0; k++) {
        if (k > 6000)
            return -1;
        usleep(10 * 1000);
    }
    return 0;
}

/*
 * `test_trace --zombies K GOFILE`: fork K children that block; once GOFILE exists, run a
 * noise storm of fork + _exit (to fill the tracer's ring), then let the K children exit,
 * and never reap them: they stay zombies until this process dies.
 */
static int zombies_main(int argc, char **argv)
{
    long i, k = atol(argv[2]);
    int p[2], st;
    char c;
    pid_t pid;

    if (argc < 4 || pipe(p) != 0)
        return 1;
    for (i = 0; i < k; i++) {
        pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(p[1]);
            while (read(p[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0); /* on EOF: the parent closed the pipe */
        }
    }
    close(p[0]);
    if (wait_go(argv[3]) != 0)
        return 4;
    for (i = 0; i < 500; i++) {
        pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            return 2;
    }
    close(p[1]); /* the K children exit now */
    for (;;)
        pause();
}

static int storm_main(int argc, char **argv)
{
    long i, k, j, n = atol(argv[2]), sleeper_at = -1, batch = 1;
    const char *go = NULL;
    int do_exec = 0, st;
    pid_t pid, kids[1024];

    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--exec") == 0)
            do_exec = 1;
        else if (strcmp(argv[i], "--sleeper-at") == 0 && i + 1 < argc)
            sleeper_at = atol(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atol(argv[++i]);
        else if (strcmp(argv[i], "--go-file") == 0 && i + 1 < argc)
            go = argv[++i];
    }
    if (wait_go(go) != 0)
        return 4;
    if (batch < 1 || batch > 1024)
        batch = 1;
    for (i = 0; i < n;) {
        /* `batch` children at once (a burst for the tracer's ring), then reap them all */
        for (k = 0; k < batch && i < n; k++, i++) {
            if (i == sleeper_at) { /* one long-lived process in the middle, never waited for */
                pid = fork();
                if (pid == 0) {
                    execl("/bin/sleep", "sleep", "3091", (char *)NULL);
                    _exit(127);
                }
            }
            pid = fork();
            if (pid < 0) {
                if (errno != EAGAIN)
                    return 1;
                usleep(1000); /* no process was made: this one again after the reaping */
                break;
            }
            if (pid == 0) {
                if (do_exec)
                    execl("/bin/true", "true", (char *)NULL);
                _exit(0);
            }
            kids[k] = pid;
        }
        for (j = 0; j < k; j++)
            if (waitpid(kids[j], &st, 0) != kids[j] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return 2;
    }
    return 0;
}

/* Skip (with the reason) when the eBPF tracer cannot run here for a reason that is not its
 * own: no privilege, no kernel BTF, no BPF. Anything else (a verifier rejection) fails. */
static void need_bpf(void)
{
    char why[512] = "";
    int rc = proctrace_available(why, sizeof(why));

    if (rc == -EPERM || rc == -ENOENT || rc == -ENOSYS) {
        printf("test_trace: skipped: %s\n", why);
        fflush(stdout);
        skip();
    }
    if (rc != 0)
        fail_msg("the eBPF tracer failed to load (%d): %s", rc, why);
}

/* Alive and not a zombie. */
static int alive(pid_t pid)
{
    char s = pbt_proc_stat(pid, NULL, NULL);
    return s != 0 && s != 'Z' && s != 'X';
}

static pid_t proc_ppid(pid_t pid)
{
    pid_t ppid = 0;

    return pbt_proc_stat(pid, &ppid, NULL) != 0 ? ppid : 0;
}

/* /proc/PID/cmdline into buf; its length (0 if gone or a kernel thread). */
static size_t proc_cmdline(pid_t pid, char *buf, size_t len)
{
    char path[64];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    n = read(fd, buf, len);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

/* The first live process whose argv is exactly args[0..len) and whose parent is ppid (0: any). */
struct argv_query {
    const char *args;
    size_t len;
    pid_t ppid; /* 0: any parent */
};

static int argv_matches(pid_t pid, void *arg)
{
    const struct argv_query *q = arg;
    char buf[256];
    size_t n = proc_cmdline(pid, buf, sizeof(buf));

    return (n == q->len || (n == q->len + 1 && buf[q->len] == '\0')) &&
           memcmp(buf, q->args, q->len) == 0 && (q->ppid == 0 || proc_ppid(pid) == q->ppid) &&
           alive(pid);
}

/* A live process with exactly this argv (and parent, unless 0); 0 if none. */
static pid_t proc_find(const char *args, size_t len, pid_t ppid)
{
    struct argv_query q = {args, len, ppid};
    pid_t found = 0;

    pbt_scan_pids(argv_matches, &q, &found, 1);
    return found;
}

static int child_of(pid_t pid, void *ppid)
{
    return proc_ppid(pid) == *(pid_t *)ppid && alive(pid);
}

/* Children of `ppid` (alive), up to max. */
static int proc_children(pid_t ppid, pid_t *out, int max)
{
    return pbt_scan_pids(child_of, &ppid, out, max);
}

/* ---- cleanup of what a failed test leaves: processes we found, procbusd, its files ---- */

#define KILL_MAX 64
static struct {
    pid_t pid;
    unsigned long long start;
} g_kill[KILL_MAX];

/* Remember `pid` (with its start time: a reused pid is left alone) for the teardown. */
static void track_kill(pid_t pid)
{
    unsigned long long st = 0;
    int i;

    if (pid <= 0 || pbt_proc_stat(pid, NULL, &st) == 0)
        return;
    for (i = 0; i < KILL_MAX; i++)
        if (g_kill[i].pid == pid && g_kill[i].start == st)
            return;
    for (i = 0; i < KILL_MAX; i++) {
        if (g_kill[i].pid == 0) {
            g_kill[i].pid = pid;
            g_kill[i].start = st;
            return;
        }
    }
}

static struct procbus_proc *g_recs; /* list_all's buffer */
static size_t g_recs_cap;

static pid_t g_daemon; /* the procbusd of the running test, until stop_daemon */

/*
 * After a failure: let procbusd stop its programs (SIGTERM; it may be SIGSTOPped), kill
 * the processes the test found, then the harness's cleanup (SIGKILL, files).
 */
static int trace_teardown(void **state)
{
    unsigned long long st;
    int i, status;

    if (g_daemon > 0 && waitpid(g_daemon, &status, WNOHANG) == 0) {
        kill(g_daemon, SIGCONT);
        kill(g_daemon, SIGTERM);
        for (i = 0; i < 100 && waitpid(g_daemon, &status, WNOHANG) == 0; i++)
            usleep(100 * 1000);
    }
    g_daemon = 0;
    for (i = 0; i < KILL_MAX; i++) {
        if (g_kill[i].pid > 0 && pbt_proc_stat(g_kill[i].pid, NULL, &st) != 0 &&
            st == g_kill[i].start)
            kill(g_kill[i].pid, SIGKILL);
    }
    memset(g_kill, 0, sizeof(g_kill));
    for (i = 0; i < 3; i++) { /* the go files a workload waits for */
        char go[128];
        snprintf(go, sizeof(go), "/tmp/pbd-trace-%s-%d",
                 i == 0   ? "late"
                 : i == 1 ? "go"
                          : "zgo",
                 (int)getpid());
        unlink(go);
    }
    return pbt_teardown(state);
}

/* ---- procbusd ---- */

/* pbt_start_daemon (which fails at once, with procbusd's stderr, if it exits while starting). */
static void start(struct daemon_h *h, const char *body)
{
    pbt_start_daemon(h, "/tmp/pbd-trace", body);
    g_daemon = h->pid;
}

/* Fail now, saying so, if procbusd has died (it is not reaped: pbt_term_daemon still can). */
static void daemon_check(struct daemon_h *h, const char *doing)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (h->pid > 0 && waitid(P_PID, h->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == h->pid)
        fail_msg("procbusd (pid %d) died while %s: %s %d", (int)h->pid, doing,
                 si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
}

/* SIGTERM, expect a clean exit 0 and a SHUTDOWN segment, then remove everything. */
static void stop_daemon(struct daemon_h *h)
{
    daemon_check(h, "the test ran");
    g_daemon = 0;
    pbt_stop_daemon(h);
}

/* Waiting for a condition: re-check on every commit, at least every 100 ms, up to `ms`. */
struct waiter {
    struct daemon_h *h;
    long t0;
    int ms;
    uint64_t gen;
};

static void wbegin(struct waiter *w, struct daemon_h *h, int ms)
{
    w->h = h;
    w->t0 = pbt_now_ms();
    w->ms = ms;
    w->gen = procbus_generation(&h->r);
}

/* 1: waited for the next commit (or 100 ms), check again; 0: out of time. */
static int wnext(struct waiter *w)
{
    if (pbt_now_ms() - w->t0 > w->ms)
        return 0;
    if (procbus_wait(&w->h->r, w->gen, 100) == -EPIPE)
        usleep(100 * 1000);
    w->gen = procbus_generation(&w->h->r);
    return 1;
}

static void dump_desc(struct daemon_h *h);

/* Wait until cond holds, or fail (saying whether procbusd died, and what records it shows). */
#define WAIT_OR_FAIL(h, w, ms, cond, ...)   \
    for (wbegin(&(w), (h), (ms)); !(cond);) \
        if (!wnext(&(w))) {                 \
            daemon_check((h), "waiting");   \
            dump_desc(h);                   \
            fail_msg(__VA_ARGS__);          \
        }

/* Every record of one snapshot (in a buffer owned here, valid until the next call). */
static size_t list_all(struct daemon_h *h)
{
    size_t n = 0;
    int rc, tries;

    for (tries = 0; tries < 1000; tries++) {
        rc = procbus_list(&h->r, g_recs, g_recs_cap, &n);
        if (rc == 0)
            return n;
        if (rc == -ENOSPC) {
            free(g_recs);
            g_recs_cap = n + 256;
            g_recs = calloc(g_recs_cap, sizeof(*g_recs));
            assert_non_null(g_recs);
        } else if (rc != -EAGAIN) {
            fail_msg("procbus_list: %d", rc);
        }
    }
    fail_msg("procbus_list: lapped 1000 times");
    return 0;
}

/* Print the descendant records (up to 40): what the failure saw. */
static void dump_desc(struct daemon_h *h)
{
    size_t i, j, n = list_all(h);
    int k = 0;

    for (i = 0; i < n && k < 40; i++) {
        const struct procbus_proc *p = &g_recs[i];
        char args[PROCBUS_CMDLINE_LEN + 1];
        size_t len = p->cmdline_len < sizeof(p->cmdline) ? p->cmdline_len : sizeof(p->cmdline);

        if (!(p->flags & PROCBUS_F_DESCENDANT))
            continue;
        for (j = 0; j < len; j++)
            args[j] = p->cmdline[j] ? p->cmdline[j] : ' ';
        args[len] = '\0';
        print_message("  record %llu program %llu pid %d ppid %d state %u exit %u/%d comm '%.16s' "
                      "argv '%s' (%u bytes)\n",
                      (unsigned long long)p->id, (unsigned long long)p->program_id, (int)p->pid,
                      (int)p->ppid, p->state, p->exit_kind, p->exit_code, p->comm, args,
                      p->cmdline_len);
        k++;
    }
}

static int has_argv(const struct procbus_proc *p, const char *args, size_t len)
{
    return (p->cmdline_len == len || (p->cmdline_len == len + 1 && p->cmdline[len] == '\0')) &&
           len <= sizeof(p->cmdline) && memcmp(p->cmdline, args, len) == 0;
}

/*
 * Descendant records of program `prog_id` whose argv is exactly args[0..len), in `state`
 * (0: any). Copies the first (newest by id) into *out if out; returns how many.
 */
static int find_desc(struct daemon_h *h, uint64_t prog_id, const char *args, size_t len,
                     uint16_t state, struct procbus_proc *out)
{
    size_t i, n = list_all(h);
    int k = 0;
    uint64_t best = 0;

    for (i = 0; i < n; i++) {
        const struct procbus_proc *p = &g_recs[i];
        if (!(p->flags & PROCBUS_F_DESCENDANT) || p->program_id != prog_id ||
            !has_argv(p, args, len) || (state && p->state != state))
            continue;
        k++;
        if (out && p->id > best) {
            best = p->id;
            *out = *p;
        }
    }
    return k;
}

/* The record with id `id` in the current snapshot; 0, or -ENOENT. */
static int get_id(struct daemon_h *h, uint64_t id, struct procbus_proc *out)
{
    size_t i, n = list_all(h);

    for (i = 0; i < n; i++) {
        if (g_recs[i].id == id) {
            if (out)
                *out = g_recs[i];
            return 0;
        }
    }
    return -ENOENT;
}

static uint16_t state_of_id(struct daemon_h *h, uint64_t id)
{
    struct procbus_proc p;
    return get_id(h, id, &p) == 0 ? p.state : 0;
}

static int count_flag(struct daemon_h *h, uint32_t flag)
{
    size_t i, n = list_all(h);
    int k = 0;

    for (i = 0; i < n; i++)
        k += (g_recs[i].flags & flag) != 0;
    return k;
}

/* Descendant records of program `prog_id` in `state` (0: any). */
static int count_desc(struct daemon_h *h, uint64_t prog_id, uint16_t state)
{
    size_t i, n = list_all(h);
    int k = 0;

    for (i = 0; i < n; i++)
        k += (g_recs[i].flags & PROCBUS_F_DESCENDANT) && g_recs[i].program_id == prog_id &&
             (state == 0 || g_recs[i].state == state);
    return k;
}

/* The first event of record `id` of `kind` (and `new_state` unless 0) still in the ring. */
static int find_event(struct daemon_h *h, uint64_t id, uint16_t kind, uint16_t new_state,
                      struct procbus_event *out)
{
    struct procbus_reader r2;
    struct procbus_event ev;
    uint64_t missed;
    int rc, found = 0;

    assert_int_equal(procbus_open(&r2, h->seg), 0);
    procbus_seek_events(&r2, PROCBUS_SEEK_OLDEST);
    while ((rc = procbus_next_event(&r2, &ev, &missed)) == 0 || rc == -EAGAIN) {
        if (rc == 0 && ev.record_id == id && ev.kind == kind &&
            (new_state == 0 || ev.new_state == new_state)) {
            if (out)
                *out = ev;
            found = 1;
            break;
        }
    }
    procbus_close(&r2);
    return found ? 0 : -ENOENT;
}

static struct procbus_info info_of(struct daemon_h *h)
{
    struct procbus_info in;
    assert_int_equal(procbus_info(&h->r, &in), 0);
    return in;
}

/* Run the procbus CLI; its exit code. Its output goes to out (if out) and is printed. */
static int cli_out(struct daemon_h *h, const char *args, char *out, size_t len)
{
    char redir[256], path[128];
    size_t n = 0;
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/cli.out", h->dir);
    snprintf(redir, sizeof(redir), ">%s 2>&1 </dev/null", path);
    rc = pbt_cli(h, args, redir);
    f = fopen(path, "r");
    if (f != NULL) {
        char buf[4096];
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        if (out)
            snprintf(out, len, "%s", buf);
        print_message("procbus %s -> %d: %s", args, rc, buf);
        if (n == 0 || buf[n - 1] != '\n')
            print_message("\n");
    } else if (out && len) {
        out[0] = '\0';
    }
    return rc;
}

static int cli(struct daemon_h *h, const char *args)
{
    return cli_out(h, args, NULL, 0);
}

/* The program record `name`, waiting up to 10 s for it to exist. */
static struct procbus_proc program(struct daemon_h *h, const char *name)
{
    struct procbus_proc p;
    struct waiter w;

    WAIT_OR_FAIL(h, w, 10000, procbus_get_name(&h->r, name, &p) == 0, "no record for program %s",
                 name);
    assert_int_equal(p.flags & PROCBUS_F_DESCENDANT, 0);
    assert_int_equal(p.program_id, 0);
    return p;
}

/* Checks every descendant record of a live, exec'd process must pass. */
static void check_live_desc(const struct procbus_proc *d, const struct procbus_proc *prog,
                            const char *comm)
{
    unsigned long long ticks = 0;
    uint64_t tick_ns = PB_NS_PER_SEC / (uint64_t)sysconf(_SC_CLK_TCK);
    int64_t off, conv;

    assert_true(d->flags & PROCBUS_F_DESCENDANT);
    assert_int_equal(d->program_id, prog->id);
    assert_int_not_equal(d->id, prog->id);
    assert_int_equal(d->name[0], '\0');
    if (strcmp(d->comm, comm) != 0) {
        char now[32];
        if (pbt_proc_comm(d->pid, now, sizeof(now)) == NULL)
            snprintf(now, sizeof(now), "?");
        fail_msg("descendant record %llu (pid %d) has the exec'd argv but comm '%.16s', not "
                 "'%s' (/proc says '%s')",
                 (unsigned long long)d->id, (int)d->pid, d->comm, comm, now);
    }
    assert_int_equal(d->state, PROCBUS_STATE_RUNNING);
    assert_int_equal(d->exit_kind, PROCBUS_EXIT_NONE);
    assert_true(d->pid > 0);
    assert_int_not_equal(d->pid, prog->pid); /* the main process has no second record */
    assert_int_equal(d->ns_pid, 0);          /* same pid namespace as everything here */
    assert_true(alive(d->pid));
    assert_int_equal(d->flags & PROCBUS_F_CMDLINE_TRUNCATED, 0);
    /* start_boot_ns is the kernel's start time: /proc's starttime is it in clock ticks */
    assert_int_not_equal(pbt_proc_stat(d->pid, NULL, &ticks), 0);
    assert_true(d->start_boot_ns / tick_ns + 1 >= ticks && d->start_boot_ns / tick_ns <= ticks + 1);
    /* start_realtime_ns is the same instant on CLOCK_REALTIME (5 s: clock steps, not timing) */
    off = (int64_t)(pb_now_ns(CLOCK_REALTIME) - pb_now_ns(CLOCK_BOOTTIME));
    conv = (int64_t)d->start_boot_ns + off - (int64_t)d->start_realtime_ns;
    assert_true(conv < 5 * (int64_t)PB_NS_PER_SEC && conv > -5 * (int64_t)PB_NS_PER_SEC);
    /* state_since_ns: the exec (or fork), not before the start, not in the future */
    assert_true(d->state_since_ns + 100000000ull >= d->start_realtime_ns);
    assert_true(d->state_since_ns <= pb_now_ns(CLOCK_REALTIME) + PB_NS_PER_SEC);
}

/* ---- the event-ring follower (a thread with its own reader) ---- */

struct follower {
    pthread_t th;
    struct procbus_reader r;
    uint64_t prog_id;   /* events of other records count as descendants' */
    char exec_name[16]; /* EXEC events with this name are counted live */
    int stop;
    /* live counters (atomic loads from the test thread) */
    uint64_t n_events, n_add, n_exited, n_exec_named, missed;
    int err;
    /* every event, read after the join */
    struct procbus_event *ev;
    size_t n, cap;
};

static void *follow_main(void *arg)
{
    struct follower *f = arg;
    struct procbus_event e;
    uint64_t m = 0;
    int draining = 0, rc;

    for (;;) {
        rc = procbus_next_event(&f->r, &e, &m);
        if (rc == 0 || rc == -ENOENT)
            __atomic_add_fetch(&f->missed, m, __ATOMIC_RELAXED);
        if (rc == 0) {
            if (f->n == f->cap) {
                size_t ncap = f->cap ? f->cap * 2 : 4096;
                struct procbus_event *nev = realloc(f->ev, ncap * sizeof(*nev));
                if (nev == NULL) {
                    f->err = -ENOMEM;
                    break;
                }
                f->ev = nev;
                f->cap = ncap;
            }
            f->ev[f->n++] = e;
            if (e.record_id != f->prog_id) {
                if (e.kind == PROCBUS_EV_ADD)
                    __atomic_add_fetch(&f->n_add, 1, __ATOMIC_RELAXED);
                else if (e.kind == PROCBUS_EV_STATE && e.new_state == PROCBUS_STATE_EXITED)
                    __atomic_add_fetch(&f->n_exited, 1, __ATOMIC_RELAXED);
                else if (e.kind == PROCBUS_EV_EXEC && f->exec_name[0] &&
                         strcmp(e.name, f->exec_name) == 0)
                    __atomic_add_fetch(&f->n_exec_named, 1, __ATOMIC_RELAXED);
            }
            __atomic_add_fetch(&f->n_events, 1, __ATOMIC_RELEASE);
            continue;
        }
        if (rc == -EAGAIN)
            continue;
        if (rc != -ENOENT) {
            f->err = rc;
            break;
        }
        if (draining)
            break;
        if (__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
            draining = 1; /* one more pass: everything published before the stop */
            continue;
        }
        usleep(200);
    }
    return NULL;
}

/* Follow h's ring from its oldest event; events of prog_id are the program's own. */
static void follow_start(struct follower *f, struct daemon_h *h, uint64_t prog_id,
                         const char *exec_name)
{
    memset(f, 0, sizeof(*f));
    f->prog_id = prog_id;
    if (exec_name)
        snprintf(f->exec_name, sizeof(f->exec_name), "%s", exec_name);
    assert_int_equal(procbus_open(&f->r, h->seg), 0);
    procbus_seek_events(&f->r, PROCBUS_SEEK_OLDEST);
    assert_int_equal(pthread_create(&f->th, NULL, follow_main, f), 0);
}

static uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/*
 * Wait until the live counters reach the wanted values (then a short grace for excess
 * events), or no event came for idle_ms, or cap_ms passed.
 */
static void follow_settle(struct follower *f, uint64_t want_add, uint64_t want_exited,
                          uint64_t want_exec, int idle_ms, int cap_ms)
{
    long t0 = pbt_now_ms(), last = t0;
    uint64_t seen = ld(&f->n_events);

    while (pbt_now_ms() - t0 < cap_ms && pbt_now_ms() - last < idle_ms) {
        if (ld(&f->n_add) >= want_add && ld(&f->n_exited) >= want_exited &&
            ld(&f->n_exec_named) >= want_exec) {
            usleep(300 * 1000);
            break;
        }
        usleep(50 * 1000);
        if (ld(&f->n_events) != seen) {
            seen = ld(&f->n_events);
            last = pbt_now_ms();
        }
    }
}

static void follow_stop(struct follower *f)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(f->th, NULL), 0);
    procbus_close(&f->r);
    assert_int_equal(f->err, 0);
}

static void follow_free(struct follower *f)
{
    free(f->ev);
    f->ev = NULL;
}

/* After follow_stop: the first followed event of record `id` of `kind` (and `new_state`). */
static int follow_find(const struct follower *f, uint64_t id, uint16_t kind, uint16_t new_state,
                       struct procbus_event *out)
{
    size_t i;

    for (i = 0; i < f->n; i++) {
        const struct procbus_event *e = &f->ev[i];
        if (e->record_id == id && e->kind == kind &&
            (new_state == 0 || e->new_state == new_state)) {
            *out = *e;
            return 0;
        }
    }
    return -ENOENT;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int has_id(const uint64_t *sorted, size_t n, uint64_t id)
{
    return bsearch(&id, sorted, n, sizeof(id), cmp_u64) != NULL;
}

/* ---- tests ---- */

/*
 * Program `name` runs sh -c '(until GO exists: sleep 0.1; then exec sleep 3106) & exec
 * sleep 3107'. Its subshell inherits the program's argv and comm until it execs; then the
 * same record carries the new image's.
 */
static void check_late_exec(struct daemon_h *h, const char *name, const char *go)
{
    struct procbus_proc prog, sub, x;
    struct waiter w;
    size_t i, n;
    int fd;

    assert_int_equal(pbt_wait_state(h, name, PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    memset(&sub, 0, sizeof(sub));
    for (wbegin(&w, h, 10000);;) {
        n = list_all(h);
        for (i = 0; i < n; i++)
            if ((g_recs[i].flags & PROCBUS_F_DESCENDANT) && g_recs[i].program_id == prog.id &&
                g_recs[i].ppid == prog.pid && g_recs[i].state == PROCBUS_STATE_RUNNING &&
                strcmp(g_recs[i].comm, "sh") == 0)
                sub = g_recs[i];
        if (sub.id != 0 || !wnext(&w))
            break;
    }
    if (sub.id == 0) {
        dump_desc(h);
        fail_msg("%s: no RUNNING descendant record of comm 'sh' for the subshell", name);
    }
    track_kill(sub.pid);
    assert_int_equal(sub.cmdline_len, prog.cmdline_len); /* inherited until it execs */
    assert_memory_equal(sub.cmdline, prog.cmdline, prog.cmdline_len);
    fd = open(go, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    WAIT_OR_FAIL(h, w, 10000,
                 get_id(h, sub.id, &x) == 0 && x.state == PROCBUS_STATE_RUNNING &&
                     strcmp(x.comm, "sleep") == 0 &&
                     has_argv(&x, ARGV_LIT("sleep\0"
                                           "3106")),
                 "%s: the subshell (pid %d, record %llu) exec'd sleep 3106, but its record "
                 "shows comm '%.16s', %u argv bytes, state %u",
                 name, (int)sub.pid, (unsigned long long)sub.id, x.comm, x.cmdline_len, x.state);
    assert_int_equal(x.pid, sub.pid);
    assert_int_equal(x.start_boot_ns, sub.start_boot_ns);
    unlink(go);
}

/* 1. A pipeline's processes get descendant records; a stop ends them all. */
static void test_pipeline_tree(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, d[3];
    struct procbus_event ev;
    struct waiter w;
    char body[1024], go[128];
    int i;
    (void)state;

    need_bpf();
    snprintf(go, sizeof(go), "/tmp/pbd-trace-late-%d", (int)getpid());
    unlink(go);
    snprintf(body, sizeof(body),
             "trace = on\n[program:pipe]\ncommand = sh -c 'sleep 3011 | cat | sleep 3012'\n"
             "startsecs = 0\n[program:late]\ncommand = sh -c '(while [ ! -e %s ]; do sleep 0.1; "
             "done; exec sleep 3106) & exec sleep 3107'\nstartsecs = 0\n",
             go);
    start(&h, body);
    assert_int_equal(pbt_wait_state(&h, "pipe", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3011"),
                           PROCBUS_STATE_RUNNING, &d[0]) &&
                     find_desc(&h, prog.id, ARGV_LIT("cat"), PROCBUS_STATE_RUNNING, &d[1]) &&
                     find_desc(&h, prog.id,
                               ARGV_LIT("sleep\0"
                                        "3012"),
                               PROCBUS_STATE_RUNNING, &d[2]),
                 "pipeline: descendant records sleep 3011, cat, sleep 3012 not all RUNNING "
                 "after 10 s (%d descendant records in all)",
                 count_flag(&h, PROCBUS_F_DESCENDANT));
    for (i = 0; i < 3; i++) {
        track_kill(d[i].pid);
        check_live_desc(&d[i], &prog, i == 1 ? "cat" : "sleep");
        assert_int_equal(d[i].ppid, prog.pid);
        assert_int_equal(find_desc(&h, prog.id, d[i].cmdline, d[i].cmdline_len, 0, NULL), 1);
        /* its fork and its exec are in the ring, the exec named after the new comm */
        assert_int_equal(find_event(&h, d[i].id, PROCBUS_EV_ADD, 0, &ev), 0);
        assert_int_equal(ev.new_state, PROCBUS_STATE_RUNNING);
        assert_int_equal(ev.pid, d[i].pid);
        assert_int_equal(find_event(&h, d[i].id, PROCBUS_EV_EXEC, 0, &ev), 0);
        assert_string_equal(ev.name, d[i].comm);
        assert_int_equal(ev.pid, d[i].pid);
    }
    assert_int_not_equal(d[0].id, d[2].id);
    assert_int_equal(count_desc(&h, prog.id, 0), 3); /* sh itself has none */
    /* the program's own exec is an EXEC event on its record */
    assert_int_equal(find_event(&h, prog.id, PROCBUS_EV_EXEC, 0, &ev), 0);
    assert_string_equal(ev.name, "sh");

    assert_int_equal(cli(&h, "stop pipe"), 0);
    for (i = 0; i < 3; i++) {
        struct procbus_proc x;
        WAIT_OR_FAIL(&h, w, 10000, state_of_id(&h, d[i].id) == PROCBUS_STATE_EXITED,
                     "after stop: descendant %d (%s) still in state %u, alive %d", (int)d[i].pid,
                     d[i].comm, state_of_id(&h, d[i].id), alive(d[i].pid));
        assert_int_equal(get_id(&h, d[i].id, &x), 0);
        /* the tracer reports the exit from inside do_exit(): the task turns zombie just after */
        WAIT_OR_FAIL(&h, w, 10000, !alive(d[i].pid), "descendant %d EXITED but still running",
                     (int)d[i].pid);
        if (info_of(&h).tracer_drops == 0) /* seen by the tracer: the status is known */
            assert_int_not_equal(x.exit_kind, PROCBUS_EXIT_NONE);
        assert_int_equal(find_event(&h, d[i].id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev), 0);
        assert_int_equal(ev.old_state, PROCBUS_STATE_RUNNING);
        assert_int_equal(ev.exit_kind, x.exit_kind);
        assert_int_equal(ev.exit_code, x.exit_code);
    }
    assert_int_equal(procbus_get_name(&h.r, "pipe", &prog), 0);
    assert_int_equal(prog.state, PROCBUS_STATE_STOPPED);
    check_late_exec(&h, "late", go);
    assert_int_equal(cli(&h, "stop late"), 0);
    stop_daemon(&h);
}

/* 2. A double-forked daemon in another session stays in its program's tree and dies on stop. */
static void test_double_fork_and_setsid(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, d, x;
    struct waiter w;
    char out[4096];
    (void)state;

    need_bpf();
    start(&h, "trace = on\n"
              "[program:dfork]\ncommand = sh -c '(setsid sleep 3021 &); exit 0'\n"
              "startsecs = 0\nautorestart = false\n"
              "[program:escapee]\ncommand = sh -c 'setsid sleep 3022 & exec sleep 3023'\n"
              "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "dfork", PROCBUS_STATE_EXITED, 10000, &prog), 0);
    assert_int_equal(prog.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(prog.exit_code, 0);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3021"),
                           PROCBUS_STATE_RUNNING, &d),
                 "double fork: no RUNNING descendant record for 'sleep 3021' of dfork (its pid "
                 "in /proc: %d)",
                 (int)proc_find(ARGV_LIT("sleep\0"
                                         "3021"),
                                0));
    track_kill(d.pid);
    check_live_desc(&d, &prog, "sleep");
    assert_int_equal(kill(d.pid, 0), 0);
    assert_int_equal(getsid(d.pid), d.pid); /* its own session: not found through the old one */
    assert_int_not_equal(getsid(d.pid), prog.pid);
    /* the program exited; its leftover is killed by a stop, which says so and succeeds */
    assert_int_equal(procbus_get_name(&h.r, "dfork", &x), 0);
    assert_int_equal(x.state, PROCBUS_STATE_EXITED);
    assert_int_equal(cli_out(&h, "stop dfork", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "dfork: killing 1 leftover process"));
    WAIT_OR_FAIL(&h, w, 10000, !alive(d.pid) && state_of_id(&h, d.id) == PROCBUS_STATE_EXITED,
                 "stop dfork: leftover sleep %d alive %d, record state %u", (int)d.pid,
                 alive(d.pid), state_of_id(&h, d.id));
    assert_int_equal(get_id(&h, d.id, &x), 0);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(x.exit_code, SIGKILL);
    assert_int_equal(x.flags & PROCBUS_F_CORE_DUMPED, 0);

    /* a RUNNING program with a setsid() escapee: the stop kills the escapee too */
    assert_int_equal(pbt_wait_state(&h, "escapee", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3022"),
                           PROCBUS_STATE_RUNNING, &d),
                 "escapee: no RUNNING descendant record for 'sleep 3022'");
    track_kill(d.pid);
    check_live_desc(&d, &prog, "sleep");
    assert_int_equal(getsid(d.pid), d.pid);
    assert_int_equal(cli(&h, "stop escapee"), 0);
    assert_int_equal(procbus_get_name(&h.r, "escapee", &x), 0);
    assert_int_equal(x.state, PROCBUS_STATE_STOPPED);
    WAIT_OR_FAIL(&h, w, 10000, !alive(d.pid) && state_of_id(&h, d.id) == PROCBUS_STATE_EXITED,
                 "stop escapee: setsid'd sleep %d alive %d, record state %u", (int)d.pid,
                 alive(d.pid), state_of_id(&h, d.id));
    assert_int_equal(get_id(&h, d.id, &x), 0);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(x.exit_code, SIGKILL); /* stopasgroup=false: only the SIGKILL reached it */
    stop_daemon(&h);
}

/* 3. 300 short-lived /bin/true: every exec and every exit is an event. */
/* `daemon_keys`: extra [procbusd] lines (trace_batch_ms: events read late must all arrive). */
static void short_lived(const char *daemon_keys)
{
    const uint64_t n = 300;
    struct daemon_h h;
    struct procbus_proc prog;
    struct procbus_info in;
    struct follower f;
    uint64_t *ids, execs = 0, exits = 0, other_exits = 0, dup = 0, lost;
    size_t i;
    char body[512];

    need_bpf();
    snprintf(body, sizeof(body),
             "trace = on\n%s[program:short]\n"
             "command = sh -c 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; "
             "exec sleep 3031'\nstartsecs = 0\nautostart = false\n",
             daemon_keys);
    start(&h, body);
    prog = program(&h, "short");
    follow_start(&f, &h, prog.id, "true");
    assert_int_equal(cli(&h, "start short"), 0);
    follow_settle(&f, n, n, n, 5000, 60000);
    follow_stop(&f);
    in = info_of(&h);

    ids = calloc(f.n + 1, sizeof(*ids));
    assert_non_null(ids);
    for (i = 0; i < f.n; i++)
        if (f.ev[i].kind == PROCBUS_EV_EXEC && f.ev[i].record_id != prog.id &&
            strcmp(f.ev[i].name, "true") == 0)
            ids[execs++] = f.ev[i].record_id;
    qsort(ids, execs, sizeof(*ids), cmp_u64);
    for (i = 1; i < execs; i++)
        dup += ids[i] == ids[i - 1];
    for (i = 0; i < f.n; i++) {
        const struct procbus_event *e = &f.ev[i];
        if (e->kind != PROCBUS_EV_STATE || e->new_state != PROCBUS_STATE_EXITED)
            continue;
        if (has_id(ids, execs, e->record_id) && e->exit_kind == PROCBUS_EXIT_CODE &&
            e->exit_code == 0)
            exits++;
        else
            other_exits++;
    }
    lost = in.tracer_drops + in.events_dropped + f.missed;
    print_message("short-lived: %llu EXEC 'true' (%llu records twice), %llu exit 0, %llu other "
                  "exits; tracer_drops %llu, events_dropped %llu, reader missed %llu\n",
                  (unsigned long long)execs, (unsigned long long)dup, (unsigned long long)exits,
                  (unsigned long long)other_exits, (unsigned long long)in.tracer_drops,
                  (unsigned long long)in.events_dropped, (unsigned long long)f.missed);
    assert_int_equal(dup, 0); /* one exec per process */
    assert_true(execs <= n);
    assert_true(exits <= execs);
    if (lost == 0) {
        assert_int_equal(execs, n);
        assert_int_equal(exits, n);
        assert_int_equal(other_exits, 0);
    } else { /* every shortfall is a counted loss */
        assert_true(n - execs <= lost);
        assert_true(n - exits <= 2 * lost);
    }
    free(ids);
    follow_free(&f);
    assert_int_equal(cli(&h, "stop short"), 0);
    stop_daemon(&h);
}

static void test_short_lived(void **state)
{
    (void)state;
    short_lived("");
}

/* Rate-limited wake-ups: the last events of a burst come with no wake-up; the re-read gets them. */
static void test_short_lived_batched(void **state)
{
    (void)state;
    short_lived("trace_batch_ms = 50\n");
}

/* 4. How a descendant ended: by which signal, or with which code. */
static void test_exit_by_signal(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, t, k, c, x;
    struct procbus_event ev;
    struct waiter w;
    (void)state;

    need_bpf();
    start(&h, "trace = on\n[program:sig]\n"
              "command = sh -c 'sleep 3041 & sleep 3042 & sh -c \"exit 7\"; exec sleep 3043'\n"
              "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "sig", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3041"),
                           PROCBUS_STATE_RUNNING, &t) &&
                     find_desc(&h, prog.id,
                               ARGV_LIT("sleep\0"
                                        "3042"),
                               PROCBUS_STATE_RUNNING, &k) &&
                     find_desc(&h, prog.id, ARGV_LIT("sh\0-c\0exit 7"), PROCBUS_STATE_EXITED, &c),
                 "signals: want RUNNING sleep 3041 and 3042 and an EXITED 'sh -c exit 7' (%d "
                 "descendant records)",
                 count_flag(&h, PROCBUS_F_DESCENDANT));
    track_kill(t.pid);
    track_kill(k.pid);
    assert_string_equal(c.comm, "sh");
    assert_int_equal(c.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(c.exit_code, 7);
    assert_int_equal(find_event(&h, c.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev), 0);
    assert_int_equal(ev.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(ev.exit_code, 7);

    assert_int_equal(kill(t.pid, SIGTERM), 0);
    assert_int_equal(kill(k.pid, SIGKILL), 0);
    WAIT_OR_FAIL(&h, w, 10000,
                 state_of_id(&h, t.id) == PROCBUS_STATE_EXITED &&
                     state_of_id(&h, k.id) == PROCBUS_STATE_EXITED,
                 "killed sleeps not EXITED: states %u and %u", state_of_id(&h, t.id),
                 state_of_id(&h, k.id));
    assert_int_equal(get_id(&h, t.id, &x), 0);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(x.exit_code, SIGTERM);
    assert_int_equal(x.flags & PROCBUS_F_CORE_DUMPED, 0);
    assert_int_equal(x.pid, t.pid);
    assert_int_equal(find_event(&h, t.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev), 0);
    assert_int_equal(ev.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(ev.exit_code, SIGTERM);
    assert_int_equal(get_id(&h, k.id, &x), 0);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(x.exit_code, SIGKILL);
    assert_int_equal(find_event(&h, k.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev), 0);
    assert_int_equal(ev.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(ev.exit_code, SIGKILL);
    assert_int_equal(cli(&h, "stop sig"), 0);
    stop_daemon(&h);
}

/*
 * Storm analysis shared by tests 5 and 8: descendant ADD and EXITED events of a storm of
 * n processes. Record ids of ADDs are distinct; each record exits at most once; counts
 * equal n unless counted losses explain the difference.
 */
static void check_storm(struct daemon_h *h, struct follower *f, uint64_t prog_id, uint64_t n,
                        long ms, const char *what)
{
    struct procbus_info in = info_of(h);
    uint64_t *adds, *exits, na = 0, ne = 0, code0 = 0, none = 0, removes = 0, dup_add = 0;
    uint64_t dup_exit = 0, orphan_exit = 0, lost;
    size_t i;

    adds = calloc(f->n + 1, sizeof(*adds));
    exits = calloc(f->n + 1, sizeof(*exits));
    assert_non_null(adds);
    assert_non_null(exits);
    for (i = 0; i < f->n; i++) {
        const struct procbus_event *e = &f->ev[i];
        if (e->record_id == prog_id)
            continue;
        if (e->kind == PROCBUS_EV_ADD) {
            adds[na++] = e->record_id;
            assert_int_equal(e->new_state, PROCBUS_STATE_RUNNING);
        } else if (e->kind == PROCBUS_EV_STATE && e->new_state == PROCBUS_STATE_EXITED) {
            exits[ne++] = e->record_id;
            code0 += e->exit_kind == PROCBUS_EXIT_CODE && e->exit_code == 0;
            none += e->exit_kind == PROCBUS_EXIT_NONE;
        } else if (e->kind == PROCBUS_EV_REMOVE) {
            removes++;
        }
    }
    qsort(adds, na, sizeof(*adds), cmp_u64);
    qsort(exits, ne, sizeof(*exits), cmp_u64);
    for (i = 1; i < na; i++)
        dup_add += adds[i] == adds[i - 1];
    for (i = 1; i < ne; i++)
        dup_exit += exits[i] == exits[i - 1];
    for (i = 0; i < ne; i++)
        orphan_exit += !has_id(adds, na, exits[i]);
    lost = in.tracer_drops + in.events_dropped + f->missed;
    print_message("%s of %llu: %ld ms; ADD %llu, EXITED %llu (code 0: %llu, unknown: %llu), "
                  "REMOVE %llu; tracer_drops %llu, events_dropped %llu, reader missed %llu\n",
                  what, (unsigned long long)n, ms, (unsigned long long)na, (unsigned long long)ne,
                  (unsigned long long)code0, (unsigned long long)none, (unsigned long long)removes,
                  (unsigned long long)in.tracer_drops, (unsigned long long)in.events_dropped,
                  (unsigned long long)f->missed);
    assert_int_equal(dup_add, 0); /* one record per process: ids never shared */
    assert_int_equal(dup_exit, 0);
    assert_true(orphan_exit <= f->missed); /* an exit without its ADD: only if we missed it */
    assert_true(na <= n);
    assert_true(ne <= n);
    if (lost == 0) {
        assert_int_equal(na, n);
        assert_int_equal(ne, n);
        assert_int_equal(code0, n);
    } else {
        assert_true(n - na <= lost);
        assert_true(n - ne <= lost);
        assert_true((n - na) + (n - ne) <= 2 * in.tracer_drops + in.events_dropped + f->missed);
        assert_true(none <= in.tracer_drops); /* status unknown only after a tracer loss */
    }
    free(adds);
    free(exits);
}

/* 5 + 8. A fork storm: every process appears and exits once, with its own record id. */
static void test_fork_storm(void **state)
{
    const uint64_t n = pbt_scale() < 1 ? 1000 : 20000;
    struct daemon_h h;
    struct procbus_proc prog;
    struct follower f;
    char body[1024];
    long t0;
    (void)state;

    need_bpf();
    snprintf(body, sizeof(body),
             "trace = on\nkeep_exited_secs = 0\n[program:storm]\ncommand = %s --storm %llu\n"
             "startsecs = 0\nautostart = false\nautorestart = false\n",
             g_self, (unsigned long long)n);
    start(&h, body);
    prog = program(&h, "storm");
    follow_start(&f, &h, prog.id, NULL);
    t0 = pbt_now_ms();
    cli(&h, "start storm"); /* it may be done before the CLI sees RUNNING */
    if (pbt_wait_state(&h, "storm", PROCBUS_STATE_EXITED, 120000, &prog) != 0) {
        daemon_check(&h, "the storm ran");
        fail_msg("storm: the program did not exit within 120 s");
    }
    assert_int_equal(prog.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(prog.exit_code, 0);
    follow_settle(&f, n, n, 0, 5000, 60000);
    follow_stop(&f);
    daemon_check(&h, "the storm ran");
    check_storm(&h, &f, prog.id, n, pbt_now_ms() - t0, "fork storm");
    follow_free(&f);
    stop_daemon(&h);
}

/* 6. Observe mode: every process on the host, the ones already there marked so. */
static void test_observe(void **state)
{
    struct daemon_h h;
    struct procbus_proc me, c;
    struct procbus_event ev;
    struct follower f;
    struct waiter w;
    char marker[32], argv_c[64], comm[32] = "";
    size_t len;
    pid_t pid;
    int st;
    (void)state;

    need_bpf();
    start(&h, "trace = on\nobserve = true\n");
    WAIT_OR_FAIL(&h, w, 10000, procbus_get_pid(&h.r, getpid(), &me) == 0,
                 "observe: no record for the test process %d (%zu records)", (int)getpid(),
                 list_all(&h));
    assert_true(me.flags & PROCBUS_F_PREEXISTING);
    assert_int_equal(me.flags & PROCBUS_F_DESCENDANT, 0);
    assert_int_equal(me.program_id, 0);
    assert_int_equal(me.name[0], '\0');
    assert_int_equal(me.state, PROCBUS_STATE_RUNNING);
    assert_int_equal(me.ppid, getppid());
    assert_non_null(pbt_proc_comm(0, comm, sizeof(comm)));
    assert_string_equal(me.comm, comm);

    /* a child: appears with its argv, then exits 0 (its events followed as they come: with
     * every process on the host in it, the ring may lap a reader that looks later) */
    follow_start(&f, &h, 0, NULL);
    snprintf(marker, sizeof(marker), "0.00%05d", (int)getpid() % 100000);
    len = (size_t)snprintf(argv_c, sizeof(argv_c), "sleep%c1%c%s", 0, 0, marker);
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "1", marker, (char *)NULL);
        _exit(127);
    }
    WAIT_OR_FAIL(&h, w, 10000, procbus_get_pid(&h.r, pid, &c) == 0 && has_argv(&c, argv_c, len),
                 "observe: child %d has no record with its argv", (int)pid);
    assert_int_equal(c.program_id, 0);
    assert_int_equal(c.flags & (PROCBUS_F_DESCENDANT | PROCBUS_F_PREEXISTING), 0);
    assert_int_equal(c.name[0], '\0');
    assert_string_equal(c.comm, "sleep");
    assert_int_equal(c.ppid, getpid());
    assert_int_not_equal(c.id, me.id);
    st = pbt_wait_child(pid);
    assert_int_equal(st, 0);
    WAIT_OR_FAIL(&h, w, 10000, get_id(&h, c.id, &c) == 0 && c.state == PROCBUS_STATE_EXITED,
                 "observe: child %d not EXITED (state %u)", (int)pid, c.state);
    assert_int_equal(c.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(c.exit_code, 0);
    usleep(200 * 1000); /* the EXITED event is published with the record: let the thread see it */
    follow_stop(&f);
    print_message("observe: %zu events followed, %llu missed\n", f.n, (unsigned long long)f.missed);
    if (f.missed == 0 || follow_find(&f, c.id, PROCBUS_EV_ADD, 0, &ev) == 0) {
        assert_int_equal(follow_find(&f, c.id, PROCBUS_EV_ADD, 0, &ev), 0);
        assert_int_equal(ev.pid, pid);
    }
    if (f.missed == 0 || follow_find(&f, c.id, PROCBUS_EV_EXEC, 0, &ev) == 0) {
        assert_int_equal(follow_find(&f, c.id, PROCBUS_EV_EXEC, 0, &ev), 0);
        assert_string_equal(ev.name, "sleep");
    }
    if (f.missed == 0 || follow_find(&f, c.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev) == 0) {
        assert_int_equal(follow_find(&f, c.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ev), 0);
        assert_int_equal(ev.exit_kind, PROCBUS_EXIT_CODE);
        assert_int_equal(ev.exit_code, 0);
    }
    follow_free(&f);
    assert_int_equal(procbus_get_pid(&h.r, getpid(), &me), 0); /* we are still there */
    stop_daemon(&h);
}

/* 7. keep_exited_secs: an exited descendant stays a while, then leaves (its events stay). */
static void test_retention(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, d, x;
    struct procbus_event rm, ex;
    struct waiter w;
    int seen_exited = 0;
    long t0;
    int64_t kept;
    (void)state;

    need_bpf();
    start(&h, "trace = on\nkeep_exited_secs = 1\n[program:keep]\n"
              "command = sh -c 'sleep 3071 & exec sleep 3072'\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "keep", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3071"),
                           PROCBUS_STATE_RUNNING, &d),
                 "retention: no RUNNING record for sleep 3071");
    track_kill(d.pid);
    assert_int_equal(kill(d.pid, SIGKILL), 0);
    /* right after the exit the record is there, EXITED (reads are loads: a tight loop) */
    t0 = pbt_now_ms();
    while (pbt_now_ms() - t0 < 10000) {
        if (procbus_get_pid(&h.r, d.pid, &x) == 0 && x.id == d.id &&
            x.state == PROCBUS_STATE_EXITED) {
            seen_exited = 1;
            break;
        }
        if (get_id(&h, d.id, NULL) != 0) /* gone before we saw it EXITED */
            break;
        usleep(1000);
    }
    assert_true(seen_exited);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(x.exit_code, SIGKILL);
    WAIT_OR_FAIL(&h, w, 15000, get_id(&h, d.id, NULL) != 0,
                 "retention: exited record %llu still there after 15 s (keep_exited_secs = 1)",
                 (unsigned long long)d.id);
    assert_true(procbus_get_pid(&h.r, d.pid, &x) != 0 || x.id != d.id);
    assert_int_equal(find_event(&h, d.id, PROCBUS_EV_REMOVE, 0, &rm), 0);
    assert_int_equal(find_event(&h, d.id, PROCBUS_EV_STATE, PROCBUS_STATE_EXITED, &ex), 0);
    kept = (int64_t)rm.time_ns - (int64_t)x.state_since_ns;
    print_message("retention: removed %.3f s after the exit\n", (double)kept / 1e9);
    assert_true(kept >= 900 * 1000000ll); /* N seconds after the exit, not before */
    assert_true(rm.seq > ex.seq);
    /* the program's own record is not subject to it */
    assert_int_equal(procbus_get_name(&h.r, "keep", &prog), 0);
    assert_int_equal(cli(&h, "stop keep"), 0);
    stop_daemon(&h);
}

/* Write `pid` to ns_last_pid: the next fork gets pid + 1 if it is free. 0 or -errno. */
static int set_last_pid(pid_t pid)
{
    char buf[32];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY), n, rc = 0;

    if (fd < 0)
        return -errno;
    n = snprintf(buf, sizeof(buf), "%d", (int)pid);
    if (write(fd, buf, (size_t)n) != n)
        rc = -errno;
    close(fd);
    return rc;
}

/* 8. Records are per process: sequential children and a reused pid never share one. */
static void test_pid_reuse(void **state)
{
    struct daemon_h h;
    struct procbus_proc a, b, x;
    struct waiter w;
    pid_t pa, pb = 0, pc;
    int tries, rc = 0, fd[2];
    size_t i, n;
    char go;
    (void)state;

    need_bpf();
    start(&h, "trace = on\nobserve = true\n");
    WAIT_OR_FAIL(&h, w, 10000, procbus_get_pid(&h.r, getpid(), &x) == 0,
                 "observe: no record for the test process");
    fflush(stdout);
    pa = fork();
    assert_true(pa >= 0);
    if (pa == 0) {
        execl("/bin/true", "true", "3080", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(pbt_wait_child(pa), 0);
    WAIT_OR_FAIL(&h, w, 10000,
                 procbus_get_pid(&h.r, pa, &a) == 0 && a.state == PROCBUS_STATE_EXITED &&
                     has_argv(&a, ARGV_LIT("true\0"
                                           "3080")),
                 "pid reuse: no EXITED record for child %d ('true 3080')", (int)pa);
    pc = fork();
    assert_true(pc >= 0);
    if (pc == 0) {
        execl("/bin/true", "true", "3081", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(pbt_wait_child(pc), 0);
    WAIT_OR_FAIL(&h, w, 10000,
                 procbus_get_pid(&h.r, pc, &x) == 0 && x.state == PROCBUS_STATE_EXITED &&
                     has_argv(&x, ARGV_LIT("true\0"
                                           "3081")),
                 "pid reuse: no EXITED record for child %d ('true 3081')", (int)pc);
    assert_int_not_equal(x.id, a.id); /* sequential children: two records */

    /* force the pid of the exited child onto a new one (root: ns_last_pid) */
    for (tries = 0; tries < 50; tries++) {
        rc = set_last_pid(pa - 1);
        if (rc != 0)
            break;
        assert_int_equal(pipe(fd), 0);
        pb = fork();
        assert_true(pb >= 0);
        if (pb == 0) {
            close(fd[1]);
            if (read(fd[0], &go, 1) == 1 && go == 'g')
                execl("/bin/sleep", "sleep", "3082", (char *)NULL);
            _exit(0);
        }
        close(fd[0]);
        go = pb == pa ? 'g' : 'q';
        assert_int_equal(write(fd[1], &go, 1), 1);
        close(fd[1]);
        if (pb == pa)
            break;
        pbt_wait_child(pb);
        pb = 0;
    }
    if (pb != pa) {
        print_message("pid reuse: could not force pid %d again (%s); only distinct ids checked\n",
                      (int)pa, rc ? strerror(-rc) : "other forks took it");
        stop_daemon(&h);
        return;
    }
    pbt_track_bg(pb, 1);
    WAIT_OR_FAIL(&h, w, 10000,
                 procbus_get_pid(&h.r, pb, &b) == 0 && b.id != a.id &&
                     b.state == PROCBUS_STATE_RUNNING &&
                     has_argv(&b, ARGV_LIT("sleep\0"
                                           "3082")),
                 "pid reuse: pid %d reused: the lookup does not give the new process's record "
                 "(gives id %llu, old id %llu)",
                 (int)pb, (unsigned long long)b.id, (unsigned long long)a.id);
    assert_true(b.start_boot_ns > a.start_boot_ns);
    /* the old process's record is still there, unchanged, beside the new one */
    n = list_all(&h);
    for (i = 0; i < n && g_recs[i].id != a.id; i++)
        ;
    assert_true(i < n);
    assert_int_equal(g_recs[i].pid, pa);
    assert_int_equal(g_recs[i].state, PROCBUS_STATE_EXITED);
    assert_int_equal(g_recs[i].start_boot_ns, a.start_boot_ns);
    assert_true(has_argv(&g_recs[i], ARGV_LIT("true\0"
                                              "3080")));
    kill(pb, SIGKILL);
    assert_int_equal(pbt_wait_child(pb), 128 + SIGKILL);
    pbt_track_bg(pb, 0);
    WAIT_OR_FAIL(&h, w, 10000, get_id(&h, b.id, &x) == 0 && x.state == PROCBUS_STATE_EXITED,
                 "pid reuse: the new process's record is not EXITED");
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_SIGNAL);
    assert_int_equal(get_id(&h, a.id, &x), 0);
    assert_int_equal(x.exit_kind, PROCBUS_EXIT_CODE); /* the old one's exit is its own */
    stop_daemon(&h);
}

/* RUNNING descendant records whose process is gone; prints them (up to 5) when `say`. */
static int stale_running(struct daemon_h *h, int *running, int say)
{
    size_t i, n = list_all(h);
    int stale = 0;

    *running = 0;
    for (i = 0; i < n; i++) {
        const struct procbus_proc *p = &g_recs[i];
        char st;

        if (!(p->flags & PROCBUS_F_DESCENDANT) || p->state != PROCBUS_STATE_RUNNING)
            continue;
        (*running)++;
        st = pbt_proc_stat(p->pid, NULL, NULL);
        if (kill(p->pid, 0) == 0 && st != 0 && st != 'Z' && st != 'X')
            continue;
        if (say && stale < 5)
            print_message("loss: record %llu (program %llu) pid %d '%s' RUNNING since %.3f s "
                          "ago, but the process is %s\n",
                          (unsigned long long)p->id, (unsigned long long)p->program_id, (int)p->pid,
                          p->comm, (double)(pb_now_ns(CLOCK_REALTIME) - p->state_since_ns) / 1e9,
                          st == 'Z' ? "a zombie" : "gone");
        stale++;
    }
    return stale;
}

/*
 * 9. A 4 KiB tracer ring overflows: the loss is counted and /proc reconciles the tree.
 * First deterministically: procbusd is frozen (SIGSTOP) while a storm runs, and a
 * long-lived sleep starts in the middle of it, so its fork and exec events cannot fit in
 * the ring; only the /proc re-walk can find it. Then a burst storm with procbusd running,
 * which loses events intermittently. Afterwards no record may stay RUNNING for a process
 * that is gone.
 */
static void test_loss_then_reconciliation(void **state)
{
    const int n = pbt_scale() < 1 ? 500 : 2000;
    struct daemon_h h;
    struct procbus_proc prog, s;
    struct procbus_info in;
    struct waiter w;
    char body[2048], go[128];
    pid_t sleeper = 0;
    int running = 0, stale, fd;
    long t0;
    (void)state;

    memset(&s, 0, sizeof(s));
    need_bpf();
    snprintf(go, sizeof(go), "/tmp/pbd-trace-go-%d", (int)getpid());
    unlink(go);
    snprintf(body, sizeof(body),
             "trace = on\ntrace_ring_kb = 4\nkeep_exited_secs = 0\n"
             "[program:frozen]\ncommand = %s --storm %d --exec --batch 16 --sleeper-at %d "
             "--go-file %s\nstartsecs = 0\nautorestart = false\n"
             "[program:lossy]\ncommand = %s --storm %d --exec --batch 64\nstartsecs = 0\n"
             "autorestart = false\nautostart = false\n",
             g_self, n, n / 2, go, g_self, n + n / 2);
    start(&h, body);
    assert_int_equal(pbt_wait_state(&h, "frozen", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);

    /* the storm runs while procbusd cannot read the ring */
    assert_int_equal(kill(h.pid, SIGSTOP), 0);
    fd = open(go, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    t0 = pbt_now_ms();
    while (alive(prog.pid) && pbt_now_ms() - t0 < 60000) {
        if (sleeper == 0)
            sleeper = proc_find(ARGV_LIT("sleep\0"
                                         "3091"),
                                prog.pid);
        usleep(20 * 1000);
    }
    if (sleeper == 0)
        sleeper = proc_find(ARGV_LIT("sleep\0"
                                     "3091"),
                            0);
    track_kill(sleeper);
    assert_int_equal(kill(h.pid, SIGCONT), 0);
    unlink(go);
    assert_false(alive(prog.pid)); /* the storm is over (a zombie until procbusd reaps it) */
    assert_true(sleeper > 0);

    if (pbt_wait_state(&h, "frozen", PROCBUS_STATE_EXITED, 30000, &prog) != 0) {
        daemon_check(&h, "the storm ran");
        fail_msg("loss: the frozen storm's program is not EXITED 30 s after procbusd resumed");
    }
    assert_int_equal(prog.exit_kind, PROCBUS_EXIT_CODE);
    assert_int_equal(prog.exit_code, 0);
    WAIT_OR_FAIL(&h, w, 10000, info_of(&h).tracer_drops > 0,
                 "loss: tracer_drops still 0 after a %d-process storm through a 4 KiB ring "
                 "that nobody read",
                 n);
    WAIT_OR_FAIL(&h, w, 15000,
                 procbus_get_pid(&h.r, sleeper, &s) == 0 && (s.flags & PROCBUS_F_DESCENDANT) &&
                     s.program_id == prog.id && s.state == PROCBUS_STATE_RUNNING &&
                     has_argv(&s, ARGV_LIT("sleep\0"
                                           "3091")),
                 "loss: the sleeper %d (started mid-storm, its events lost) is not a RUNNING "
                 "descendant of 'frozen' with argv 'sleep 3091' (lookup: %d, state %u, "
                 "program_id %llu of %llu)",
                 (int)sleeper, procbus_get_pid(&h.r, sleeper, &s), s.state,
                 (unsigned long long)s.program_id, (unsigned long long)prog.id);
    assert_string_equal(s.comm, "sleep");
    assert_true(alive(sleeper));

    /*
     * A burst storm while procbusd keeps pausing (SIGSTOP 20 ms, SIGCONT 20 ms): losses come
     * and go while re-walks of /proc run, with exited but not yet reaped children around.
     */
    assert_int_equal(cli(&h, "start lossy"), 0);
    assert_int_equal(procbus_get_name(&h.r, "lossy", &prog), 0);
    track_kill(prog.pid);
    t0 = pbt_now_ms();
    while (alive(prog.pid) && pbt_now_ms() - t0 < 60000) {
        kill(h.pid, SIGSTOP);
        usleep(20 * 1000);
        kill(h.pid, SIGCONT);
        usleep(20 * 1000);
    }
    kill(h.pid, SIGCONT);
    if (pbt_wait_state(&h, "lossy", PROCBUS_STATE_EXITED, 60000, &prog) != 0) {
        daemon_check(&h, "the second storm ran");
        fail_msg("loss: the second storm did not exit within 120 s");
    }
    assert_int_equal(prog.exit_code, 0);

    /* no record stays RUNNING for a process that is gone (the re-walk marks them EXITED) */
    wbegin(&w, &h, 10000);
    while ((stale = stale_running(&h, &running, 0)) != 0 && wnext(&w))
        ;
    if (stale)
        stale_running(&h, &running, 1);
    in = info_of(&h);
    print_message("loss: storms through 4 KiB: tracer_drops %llu, events_dropped %llu; %d "
                  "RUNNING descendant record(s), %d of them for processes that are gone\n",
                  (unsigned long long)in.tracer_drops, (unsigned long long)in.events_dropped,
                  running, stale);
    assert_int_equal(stale, 0);
    assert_true(running >= 1); /* the sleeper */
    assert_int_equal(cli(&h, "stop frozen"), 0);
    WAIT_OR_FAIL(&h, w, 10000, !alive(sleeper), "loss: stop frozen left the sleeper %d alive",
                 (int)sleeper);
    stop_daemon(&h);
}

static int zombie_child_of(pid_t pid, void *ppid)
{
    return proc_ppid(pid) == *(pid_t *)ppid && pbt_proc_stat(pid, NULL, NULL) == 'Z';
}

/* Children of `ppid` that are zombies. */
static int zombie_children(pid_t ppid)
{
    pid_t found[4096];

    return pbt_scan_pids(zombie_child_of, &ppid, found, 4096);
}

/*
 * 9b. Exits lost in an overflow, of children nobody has reaped yet: the re-walk after
 * the loss still finds their pids in /proc, as zombies. They have exited: their records
 * must not stay RUNNING.
 */
static void test_loss_zombies_exited(void **state)
{
    const int k = 20;
    struct daemon_h h;
    struct procbus_proc prog;
    struct waiter w;
    char body[1024], go[128];
    uint64_t drops0;
    int fd, running;
    long t0;
    (void)state;

    need_bpf();
    snprintf(go, sizeof(go), "/tmp/pbd-trace-zgo-%d", (int)getpid());
    unlink(go);
    snprintf(body, sizeof(body),
             "trace = on\ntrace_ring_kb = 4\n[program:zomb]\ncommand = %s --zombies %d %s\n"
             "startsecs = 0\n",
             g_self, k, go);
    start(&h, body);
    assert_int_equal(pbt_wait_state(&h, "zomb", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000, count_desc(&h, prog.id, PROCBUS_STATE_RUNNING) == k,
                 "zombies: %d RUNNING descendant records, want %d",
                 count_desc(&h, prog.id, PROCBUS_STATE_RUNNING), k);
    drops0 = info_of(&h).tracer_drops;

    /* procbusd frozen: the noise fills the ring, then the children's exits are lost */
    assert_int_equal(kill(h.pid, SIGSTOP), 0);
    fd = open(go, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    t0 = pbt_now_ms();
    while (zombie_children(prog.pid) < k && pbt_now_ms() - t0 < 60000)
        usleep(20 * 1000);
    assert_int_equal(kill(h.pid, SIGCONT), 0);
    unlink(go);
    assert_int_equal(zombie_children(prog.pid), k);
    WAIT_OR_FAIL(&h, w, 10000, info_of(&h).tracer_drops > drops0,
                 "zombies: tracer_drops did not grow (%llu) after 500 forks through a 4 KiB "
                 "ring nobody read",
                 (unsigned long long)drops0);
    wbegin(&w, &h, 10000);
    while (count_desc(&h, prog.id, PROCBUS_STATE_RUNNING) != 0 && wnext(&w))
        ;
    print_message("zombies: tracer_drops %llu; of %d exited (unreaped) children, %d record(s) "
                  "still RUNNING, %d EXITED\n",
                  (unsigned long long)info_of(&h).tracer_drops, k,
                  count_desc(&h, prog.id, PROCBUS_STATE_RUNNING),
                  count_desc(&h, prog.id, PROCBUS_STATE_EXITED));
    if (count_desc(&h, prog.id, PROCBUS_STATE_RUNNING) != 0) {
        stale_running(&h, &running, 1);
        fail_msg("zombies: %d of %d children have exited (zombies in /proc, exit events lost) "
                 "but their records are still RUNNING 10 s after the loss",
                 count_desc(&h, prog.id, PROCBUS_STATE_RUNNING), k);
    }
    assert_true(count_desc(&h, prog.id, PROCBUS_STATE_EXITED) >= k);
    assert_int_equal(cli(&h, "stop zomb"), 0);
    stop_daemon(&h);
}

/* 10. trace = proc: the same tree by polling /proc, and a stop still reaches an escapee. */
static void test_proc_polling(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, d[4];
    struct waiter w;
    int i;
    (void)state;

    start(&h, "trace = proc\n[program:polled]\n"
              "command = sh -c 'setsid sleep 3101 & sleep 3102 | cat | sleep 3103'\n"
              "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "polled", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3101"),
                           PROCBUS_STATE_RUNNING, &d[0]) &&
                     find_desc(&h, prog.id,
                               ARGV_LIT("sleep\0"
                                        "3102"),
                               PROCBUS_STATE_RUNNING, &d[1]) &&
                     find_desc(&h, prog.id, ARGV_LIT("cat"), PROCBUS_STATE_RUNNING, &d[2]) &&
                     find_desc(&h, prog.id,
                               ARGV_LIT("sleep\0"
                                        "3103"),
                               PROCBUS_STATE_RUNNING, &d[3]),
                 "trace=proc: the tree (setsid sleep 3101, sleep 3102 | cat | sleep 3103) not "
                 "all RUNNING descendants with those argv after 10 s (%d descendant records)",
                 count_flag(&h, PROCBUS_F_DESCENDANT));
    for (i = 0; i < 4; i++) {
        track_kill(d[i].pid);
        check_live_desc(&d[i], &prog, i == 2 ? "cat" : "sleep");
    }
    assert_int_equal(d[1].ppid, prog.pid);
    assert_int_equal(getsid(d[0].pid), d[0].pid);
    assert_int_equal(cli(&h, "stop polled"), 0);
    for (i = 0; i < 4; i++)
        WAIT_OR_FAIL(&h, w, 10000,
                     !alive(d[i].pid) && state_of_id(&h, d[i].id) == PROCBUS_STATE_EXITED,
                     "trace=proc: after stop, %s pid %d alive %d, record state %u", d[i].comm,
                     (int)d[i].pid, alive(d[i].pid), state_of_id(&h, d[i].id));
    stop_daemon(&h);
}

/* 10b. trace = proc: a process polled before its exec gets the new comm and argv after. */
static void test_proc_exec_refresh(void **state)
{
    struct daemon_h h;
    char body[1024], go[128];
    (void)state;

    snprintf(go, sizeof(go), "/tmp/pbd-trace-late-%d", (int)getpid());
    unlink(go);
    snprintf(body, sizeof(body),
             "trace = proc\n[program:late]\ncommand = sh -c '(while [ ! -e %s ]; do sleep 0.1; "
             "done; exec sleep 3106) & exec sleep 3107'\nstartsecs = 0\n",
             go);
    start(&h, body);
    check_late_exec(&h, "late", go);
    assert_int_equal(cli(&h, "stop late"), 0);
    stop_daemon(&h);
}

/* 10c. trace = proc: a descendant killed but never reaped (a zombie) has exited. */
static void test_proc_zombie_exited(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, z, x;
    struct waiter w;
    (void)state;

    start(&h, "trace = proc\n"
              "[program:noreap]\ncommand = sh -c 'sleep 3104 & exec sleep 3105'\nstartsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "noreap", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000,
                 find_desc(&h, prog.id,
                           ARGV_LIT("sleep\0"
                                    "3104"),
                           PROCBUS_STATE_RUNNING, &z),
                 "trace=proc: no RUNNING record for sleep 3104");
    track_kill(z.pid);
    assert_int_equal(kill(z.pid, SIGKILL), 0);
    WAIT_OR_FAIL(&h, w, 10000, pbt_proc_stat(z.pid, NULL, NULL) == 'Z',
                 "sleep 3104 did not become a zombie");
    wbegin(&w, &h, 10000);
    while (state_of_id(&h, z.id) != PROCBUS_STATE_EXITED && wnext(&w))
        ;
    assert_int_equal(get_id(&h, z.id, &x), 0);
    if (x.state != PROCBUS_STATE_EXITED)
        fail_msg("trace=proc: sleep 3104 (pid %d) was killed and is a zombie (its parent does "
                 "not reap), but its record is still in state %u 10 s later (want EXITED)",
                 (int)z.pid, x.state);
    assert_int_equal(cli(&h, "stop noreap"), 0);
    stop_daemon(&h);
}

/* 11. trace = off: direct children only, as before the tracer. */
static void test_trace_off(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog;
    struct waiter w;
    pid_t kids[8];
    long t0;
    (void)state;

    start(&h, "trace = off\n[program:plain]\ncommand = sh -c 'sleep 3111 | cat | sleep 3112'\n"
              "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "plain", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(&h, w, 10000, proc_children(prog.pid, kids, 8) >= 3,
                 "trace=off: the pipeline did not start");
    for (int i = 0; i < proc_children(prog.pid, kids, 8); i++)
        track_kill(kids[i]);
    t0 = pbt_now_ms(); /* several sample periods (200 ms): nothing may show up */
    while (pbt_now_ms() - t0 < 1500) {
        assert_int_equal(count_flag(&h, PROCBUS_F_DESCENDANT), 0);
        usleep(100 * 1000);
    }
    assert_int_equal(list_all(&h), 1);
    assert_int_equal(cli(&h, "stop plain"), 0);
    stop_daemon(&h);
}

/* 13. A daemon that left the program's session still counts in the program's CPU time. */
static void test_escapee_cpu_counted(void **state)
{
    struct daemon_h h;
    struct procbus_proc prog, d;
    struct waiter w;
    (void)state;

    need_bpf();
    start(&h, "trace = on\nsample_ms = 200\n[program:spinner]\n"
              "command = sh -c '(setsid sh -c \"while :; do :; done\" &); exec sleep 3131'\n"
              "startsecs = 0\n");
    assert_int_equal(pbt_wait_state(&h, "spinner", PROCBUS_STATE_RUNNING, 10000, &prog), 0);
    track_kill(prog.pid);
    WAIT_OR_FAIL(
        &h, w, 10000,
        find_desc(&h, prog.id, ARGV_LIT("sh\0-c\0while :; do :; done"), PROCBUS_STATE_RUNNING, &d),
        "the setsid'd busy loop has no RUNNING descendant record");
    track_kill(d.pid);
    assert_int_not_equal(getsid(d.pid), getsid(prog.pid)); /* it left the session */
    /* the main process (sleep) uses no CPU: only the escapee can make this grow */
    WAIT_OR_FAIL(&h, w, 30000, (prog = program(&h, "spinner")).cpu_ns >= 300ull * 1000000ull,
                 "spinner: cpu %llu ns after 30 s; its setsid'd busy loop is not counted",
                 (unsigned long long)prog.cpu_ns);
    print_message("spinner: %.2f s of CPU, all of it its setsid'd descendant's\n",
                  (double)prog.cpu_ns / 1e9);
    assert_int_equal(cli(&h, "stop spinner"), 0);
    WAIT_OR_FAIL(&h, w, 10000, !alive(d.pid), "stop left the busy loop %d running", (int)d.pid);
    stop_daemon(&h);
}

/*
 * 12. Without BPF privileges (procbusd run as nobody): trace = auto says why in one line and
 * follows the program's tree by polling /proc; trace = on exits 1 with the reason.
 */
static pid_t run_unprivileged(const char *conf, const char *errpath, const struct passwd *pw)
{
    char exe[256];
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
        if (pw != NULL &&
            (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
            _exit(125);
        execl(pbt_bin("procbusd", exe, sizeof(exe)), "procbusd", "-c", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_unprivileged_fallback(void **state)
{
    char dir[] = "/tmp/pbd-trace-unpriv-XXXXXX", conf[160], errpath[160], seg[64], text[2048];
    char shm_seg[128], owner[16];
    const struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
    struct procbus_reader r;
    struct procbus_proc list[16];
    size_t n = 0;
    int st, found = 0, lines = 0;
    pid_t pid;
    long t0;
    FILE *f;
    (void)state;

    if (geteuid() == 0 && pw == NULL) {
        printf("test_trace: skipped: no user 'nobody' to run procbusd unprivileged\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0777), 0);
    pbt_name(seg);
    snprintf(conf, sizeof(conf), "%s/procbus.conf", dir);
    snprintf(errpath, sizeof(errpath), "%s/stderr", dir);

    /* trace = on: refused, with the reason */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[procbusd]\nsegment = %s\nsocket = %s/ctl.sock\ntrace = on\n", seg, dir);
    fclose(f);
    pid = run_unprivileged(conf, errpath, pw);
    st = pbt_wait_child(pid);
    f = fopen(errpath, "r");
    assert_non_null(f);
    text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
    fclose(f);
    if (st == 127) { /* e.g. a build under /root: other users cannot reach the binary */
        printf("test_trace: skipped: user nobody cannot execute %s\n",
               pbt_bin("procbusd", text, sizeof(text)));
        snprintf(text, sizeof(text), "rm -rf %s", dir);
        assert_int_equal(system(text), 0);
        skip();
    }
    print_message("trace=on, unprivileged: exit %d: %s", st, text);
    assert_int_equal(st, 1);
    assert_non_null(strstr(text, "the eBPF tracer cannot run: "));
    pbt_unlink(seg);
    snprintf(text, sizeof(text), "%s/%s", PROCBUS_SHM_DIR, seg);
    unlink(text);

    /* trace = auto: one line saying why, then /proc polling finds the pipeline */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[procbusd]\nsegment = %s\nsocket = %s/ctl.sock\nsample_ms = 200\n"
            "[program:pipe]\ncommand = sh -c 'sleep 3121 | sleep 3122'\nstartsecs = 0\n",
            seg, dir);
    fclose(f);
    pid = run_unprivileged(conf, errpath, pw);
    pbt_track_bg(pid, 1);
    /* nobody's name is /dev/shm/NAME; root reads it by path, trusting nobody's uid (a name
     * would mean /run/procbus/NAME for root, and another user's file is refused by default) */
    snprintf(shm_seg, sizeof(shm_seg), "%s/%s", PROCBUS_SHM_DIR, seg);
    snprintf(owner, sizeof(owner), "%u", (unsigned)pw->pw_uid);
    setenv(PROCBUS_OWNER_ENV, owner, 1);
    for (t0 = pbt_now_ms(); procbus_open(&r, shm_seg) != 0; usleep(20000))
        assert_true(pbt_now_ms() - t0 < 30000);
    unsetenv(PROCBUS_OWNER_ENV);
    for (t0 = pbt_now_ms(); pbt_now_ms() - t0 < 20000 && found < 2; usleep(50000)) {
        found = 0;
        if (procbus_list(&r, list, 16, &n) == 0)
            for (size_t i = 0; i < n; i++)
                found += (list[i].flags & PROCBUS_F_DESCENDANT) && list[i].program_id != 0 &&
                         strcmp(list[i].comm, "sleep") == 0 &&
                         list[i].state == PROCBUS_STATE_RUNNING;
    }
    f = fopen(errpath, "r");
    assert_non_null(f);
    while (fgets(text, sizeof(text), f) != NULL)
        if (strstr(text, "eBPF unavailable (") != NULL) {
            lines++;
            print_message("trace=auto, unprivileged: %s", text);
            assert_non_null(strstr(text, "polling /proc every 200 ms"));
        }
    fclose(f);
    kill(pid, SIGTERM);
    assert_int_equal(pbt_wait_child(pid), 0);
    pbt_track_bg(pid, 0);
    procbus_close(&r);
    unlink(shm_seg);
    snprintf(text, sizeof(text), "rm -rf %s", dir);
    assert_int_equal(system(text), 0);
    assert_int_equal(lines, 1); /* one line, saying why */
    assert_int_equal(found, 2); /* both sleeps of the pipeline, by /proc polling */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pipeline_tree, trace_teardown),
        cmocka_unit_test_teardown(test_double_fork_and_setsid, trace_teardown),
        cmocka_unit_test_teardown(test_short_lived, trace_teardown),
        cmocka_unit_test_teardown(test_short_lived_batched, trace_teardown),
        cmocka_unit_test_teardown(test_exit_by_signal, trace_teardown),
        cmocka_unit_test_teardown(test_fork_storm, trace_teardown),
        cmocka_unit_test_teardown(test_observe, trace_teardown),
        cmocka_unit_test_teardown(test_retention, trace_teardown),
        cmocka_unit_test_teardown(test_pid_reuse, trace_teardown),
        cmocka_unit_test_teardown(test_loss_then_reconciliation, trace_teardown),
        cmocka_unit_test_teardown(test_loss_zombies_exited, trace_teardown),
        cmocka_unit_test_teardown(test_proc_polling, trace_teardown),
        cmocka_unit_test_teardown(test_proc_exec_refresh, trace_teardown),
        cmocka_unit_test_teardown(test_proc_zombie_exited, trace_teardown),
        cmocka_unit_test_teardown(test_trace_off, trace_teardown),
        cmocka_unit_test_teardown(test_unprivileged_fallback, trace_teardown),
        cmocka_unit_test_teardown(test_escapee_cpu_counted, trace_teardown),
    };
    ssize_t n;
    int rc;

    if (argc >= 3 && strcmp(argv[1], "--storm") == 0)
        _exit(storm_main(argc, argv)); /* no atexit work: an ASan leak check would fork */
    if (argc >= 4 && strcmp(argv[1], "--zombies") == 0)
        _exit(zombies_main(argc, argv));
    n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0)
        return 1;
    g_self[n] = '\0';
    if (argc >= 2) /* a test name or a glob: run only those */
        cmocka_set_test_filter(argv[1]);
    rc = cmocka_run_group_tests_name("trace", tests, NULL, NULL);
    free(g_recs);
    return rc;
}
