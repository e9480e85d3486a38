/* test_seccomp.c - the reader's read path makes no system call, proved under SECCOMP_MODE_STRICT.
 */
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
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"
#include "util.h"

/*
 * In strict mode only read(2), write(2), exit(2) (not exit_group) and
 * rt_sigreturn(2) are allowed; any other system call kills the thread with
 * SIGKILL. So a child that gets through a million reader calls in strict mode
 * and then leaves through SYS_exit with status 0 made no other system call.
 */

/* The sandboxed code never allocates, so ASan's runtime stays quiet and the test runs
 * in the ASan build too; PBT_ASAN only adds a hint to a failure message there. */
#if defined(__SANITIZE_ADDRESS__)
#define PBT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PBT_ASAN 1
#endif
#endif
#ifndef PBT_ASAN
#define PBT_ASAN 0
#endif

enum {
    NKEYS = 32,             /* records in the table (one of them comes and goes) */
    MIN_CALLS = 1000000,    /* reader calls (all ops but generation) in strict mode, at least */
    MIN_COMMITS_SEEN = 200, /* the generation must move this much while the child reads */
    TIMEOUT_S = 600,        /* only against hangs; never reached on a healthy run */
};

enum op {
    OP_PID,
    OP_NAME,
    OP_LIST,
    OP_EVENT,
    OP_SEC_PID,  /* zero-copy section: state by pid */
    OP_SEC_NAME, /* zero-copy section: a record's fields and strings by name */
    OP_SEC_WALK, /* zero-copy section: walk the snapshot, sum a field */
    OP_GEN,
    OP_COUNT_
};
static const char *const op_names[OP_COUNT_] = {"get_pid",      "get_name",    "list",
                                                "next_event",   "section_pid", "section_name",
                                                "section_walk", "generation"};

/* What the sandboxed child reports through the pipe. */
struct counts {
    uint64_t magic;
    uint64_t calls, ok, eagain, enoent, other;
    uint64_t per_op[OP_COUNT_], per_op_ok[OP_COUNT_];
    uint64_t events, missed, retries;
    uint64_t gen_first, gen_last;
    int64_t first_other_rc;
};
#define COUNTS_MAGIC 0x5345434f4d50ULL

static int32_t key_pid(int k)
{
    return 20000 + k;
}

static void key_name(int k, char out[16])
{
    snprintf(out, 16, "sc%d", k);
}

static void key_record(struct procbus_proc *rec, int k, uint64_t round)
{
    char nm[16];

    key_name(k, nm);
    /* a key is rewritten every 16 rounds: its state moves on every time (events flow) */
    pbt_fill(rec, (uint64_t)k + 1, key_pid(k), nm,
             (uint16_t)(PROCBUS_STATE_STOPPED + (round / 16) % 8));
    rec->restarts = (uint32_t)round;
    rec->cpu_ns = round * 1000;
}

/* Enter strict mode; 0 or -errno. Nothing but read/write/exit is possible afterwards. */
static int enter_strict(void)
{
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0)
        return -errno;
    return 0;
}

/* Leave the sandboxed child: SYS_exit ends this thread (the only one) without exit_group. */
static void strict_exit(int code)
{
    syscall(SYS_exit, code);
    for (;;)
        ;
}

/* One zero-copy read of kind op (OP_SEC_*): the section's result (0, -EAGAIN, ...), or -ENOENT
 * when it validated but found nothing. Everything it does is loads and caller-memory copies. */
static int section_op(struct procbus_reader *r, enum op op, int k, const char *name)
{
    struct procbus_section s;
    const struct procbus_proc *p = NULL;
    char nm[PROCBUS_NAME_LEN], cmd[PROCBUS_CMDLINE_LEN];
    uint64_t sum = 0;
    uint32_t i, n;
    int rc;

    procbus_section_begin(r, &s);
    do {
        if (op == OP_SEC_PID) {
            p = procbus_section_pid(&s, key_pid(k));
            sum = p != NULL ? PROCBUS_FIELD(p, state) : 0;
        } else if (op == OP_SEC_NAME) {
            p = procbus_section_name(&s, name);
            if (p != NULL)
                sum = PROCBUS_FIELD(p, restarts) + procbus_rec_name(p, nm, sizeof(nm)) +
                      procbus_rec_comm(p, nm, sizeof(nm)) +
                      procbus_rec_cmdline(p, cmd, sizeof(cmd));
        } else {
            n = procbus_section_count(&s);
            for (i = 0, sum = 0; i < n && (p = procbus_section_at(&s, i)) != NULL; i++)
                sum += PROCBUS_FIELD(p, cpu_ns);
            p = n > 0 ? p : NULL;
        }
    } while ((rc = procbus_section_retry(&s)) > 0);
    if (rc == 0 && p == NULL && op != OP_SEC_WALK)
        rc = -ENOENT;
    __asm__ volatile("" : : "r"(sum));
    return rc;
}

/* Preallocated before strict mode: list output and the child's names. */
static struct procbus_proc g_list[NKEYS + 8];
static char g_names[NKEYS][16];

static void tally(struct counts *c, enum op op, int rc)
{
    c->calls++;
    c->per_op[op]++;
    if (rc == 0) {
        c->ok++;
        c->per_op_ok[op]++;
    } else if (rc == -EAGAIN) {
        c->eagain++;
    } else if (rc == -ENOENT) {
        c->enoent++;
    } else {
        if (c->other == 0)
            c->first_other_rc = rc;
        c->other++;
    }
}

/*
 * The sandboxed reader. Opens the segment (system calls allowed), touches every
 * buffer, enters strict mode and reads until it made MIN_CALLS calls (plus the
 * generation loads between them) and saw
 * the publisher commit MIN_COMMITS_SEEN times meanwhile (so it never depends
 * on speed, only on both sides making progress). Never returns.
 */
static void sandboxed_reader(const char *segment, int wfd)
{
    struct procbus_reader r;
    struct procbus_proc one;
    struct procbus_event ev;
    struct counts c;
    uint64_t i = 0, missed, g;
    size_t n;
    int k, rc;

    memset(&c, 0, sizeof(c));
    memset(&one, 0, sizeof(one));
    memset(&ev, 0, sizeof(ev));
    memset(g_list, 0, sizeof(g_list));
    for (k = 0; k < NKEYS; k++)
        key_name(k, g_names[k]);
    c.magic = COUNTS_MAGIC;
    if (procbus_open(&r, segment) != 0)
        _exit(10);
    if (enter_strict() != 0)
        _exit(11);
    /* ---- from here on: read, write, SYS_exit only ---- */
    c.gen_first = procbus_generation(&r);
    for (;;) {
        enum op op = (enum op)(i % OP_COUNT_);
        k = (int)((i / OP_COUNT_) % NKEYS);
        switch (op) {
        case OP_PID:
            rc = procbus_get_pid(&r, key_pid(k), &one);
            break;
        case OP_NAME:
            rc = procbus_get_name(&r, g_names[k], &one);
            break;
        case OP_LIST:
            rc = procbus_list(&r, g_list, NKEYS + 8, &n);
            break;
        case OP_SEC_PID:
        case OP_SEC_NAME:
        case OP_SEC_WALK:
            rc = section_op(&r, op, k, g_names[k]);
            break;
        case OP_EVENT:
            missed = 0;
            rc = procbus_next_event(&r, &ev, &missed);
            c.missed += missed;
            if (rc == 0)
                c.events++;
            break;
        default:
            g = procbus_generation(&r);
            rc = g != 0 ? 0 : -EINVAL;
            c.gen_last = g;
            break;
        }
        tally(&c, op, rc);
        i++;
        if (op == OP_GEN && c.calls - c.per_op[OP_GEN] >= MIN_CALLS && c.events > 0 &&
            c.gen_last - c.gen_first >= MIN_COMMITS_SEEN)
            break;
    }
    c.retries = r.retries;
    if (pb_write_all(wfd, &c, sizeof(c)) != 0)
        strict_exit(12);
    strict_exit(0);
}

/* Publish changes until child `pid` exits; returns its status (pbt_wait_child coding). */
static int publish_until_exit(struct procbus_pub *p, pid_t pid, uint64_t *commits)
{
    struct procbus_proc rec;
    const uint64_t t0 = pb_now_ns(CLOCK_MONOTONIC);
    uint64_t round = 1;
    int st;

    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        int k = (int)(round % NKEYS);

        if (w == pid)
            break;
        if (pb_now_ns(CLOCK_MONOTONIC) - t0 > (uint64_t)TIMEOUT_S * PB_NS_PER_SEC) {
            kill(pid, SIGKILL);
            pbt_wait_child(pid);
            return -1;
        }
        /* a state change of two records (events flow), and key 0 comes and goes */
        key_record(&rec, k, round);
        if (procbus_pub_upsert(p, &rec) < 0)
            return -1;
        key_record(&rec, (k + NKEYS / 2) % NKEYS, round);
        if (procbus_pub_upsert(p, &rec) < 0)
            return -1;
        if (round % 16 == 0) {
            procbus_pub_remove(p, 1);
        } else if (round % 16 == 1) {
            key_record(&rec, 0, round);
            if (procbus_pub_upsert(p, &rec) < 0)
                return -1;
        }
        if (procbus_pub_commit(p) == 0)
            (*commits)++;
        if (round % 64 == 0)
            procbus_pub_heartbeat(p);
        round++;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static void test_read_path_makes_no_syscall(void **state)
{
    char name[64];
    struct procbus_pub *p;
    struct procbus_proc rec;
    struct counts c;
    uint64_t commits = 0;
    int fds[2], status, k, got;
    pid_t pid;
    (void)state;

    p = pbt_pub(pbt_name(name), NKEYS, 0);
    assert_non_null(p);
    for (k = 0; k < NKEYS; k++) {
        key_record(&rec, k, 0);
        assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    }
    assert_int_equal(procbus_pub_commit(p), 0);
    assert_int_equal(pipe(fds), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        sandboxed_reader(name, fds[1]);
    }
    close(fds[1]);
    status = publish_until_exit(p, pid, &commits);
    memset(&c, 0, sizeof(c));
    got = pb_read_all(fds[0], &c, sizeof(c));
    close(fds[0]);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);

    print_message("strict-mode child: exit %d, %llu calls (%llu ok, %llu EAGAIN, %llu ENOENT, "
                  "%llu other, first %lld), %llu events (%llu missed), %llu seqlock retries, "
                  "generation %llu -> %llu; publisher made %llu commits\n",
                  status, (unsigned long long)c.calls, (unsigned long long)c.ok,
                  (unsigned long long)c.eagain, (unsigned long long)c.enoent,
                  (unsigned long long)c.other, (long long)c.first_other_rc,
                  (unsigned long long)c.events, (unsigned long long)c.missed,
                  (unsigned long long)c.retries, (unsigned long long)c.gen_first,
                  (unsigned long long)c.gen_last, (unsigned long long)commits);
    for (k = 0; k < OP_COUNT_; k++)
        print_message("  %-12s %10llu calls, %10llu ok\n", op_names[k],
                      (unsigned long long)c.per_op[k], (unsigned long long)c.per_op_ok[k]);
    if (status == 128 + SIGKILL)
        print_message("the sandboxed child was killed by SIGKILL: a reader call made a system "
                      "call other than read/write/exit\n");
    if (PBT_ASAN && status == 128 + SIGKILL)
        print_message("note: ASan build; the sandboxed child never allocates, but an ASan "
                      "runtime change could make a system call of its own\n");
    assert_int_not_equal(status, -1);            /* not timed out */
    assert_int_not_equal(status, 128 + SIGKILL); /* killed: a forbidden system call */
    assert_int_equal(status, 0);
    assert_int_equal(got, 0);
    assert_true(c.magic == COUNTS_MAGIC);
    assert_true(c.calls - c.per_op[OP_GEN] >= MIN_CALLS);
    assert_true(c.ok + c.eagain + c.enoent + c.other == c.calls);
    {
        uint64_t sum = 0;
        for (k = 0; k < OP_COUNT_; k++)
            sum += c.per_op[k];
        assert_true(sum == c.calls);
    }
    assert_int_equal(c.other, 0); /* no -EBADMSG / -EINVAL from a healthy segment */
    assert_true(c.ok > c.calls / 2);
    assert_true(c.events > 0);
    /* the publisher really committed while the child read */
    assert_true(c.gen_last - c.gen_first >= MIN_COMMITS_SEEN);
    /* every lookup kind succeeded often, not only the cheap ones */
    assert_true(c.per_op_ok[OP_PID] > c.per_op[OP_PID] / 2);
    assert_true(c.per_op_ok[OP_NAME] > c.per_op[OP_NAME] / 2);
    assert_true(c.per_op_ok[OP_LIST] > c.per_op[OP_LIST] / 2);
    for (k = OP_SEC_PID; k <= OP_SEC_WALK; k++) /* and so did the zero-copy sections */
        assert_true(c.per_op_ok[k] > c.per_op[k] / 2);
}

/*
 * Harness controls. The harness must be able to fail: a child making one
 * forbidden system call in strict mode is seen as killed by SIGKILL. And the
 * way out the test relies on (SYS_exit) must be allowed while exit_group is not.
 */
enum strict_action { ACT_EXIT_CLEANLY, ACT_GETPID, ACT_EXIT_GROUP };

static int run_strict_child(enum strict_action act)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (enter_strict() != 0)
            _exit(11);
        if (act == ACT_GETPID)
            syscall(SYS_getpid);
        else if (act == ACT_EXIT_GROUP)
            _exit(0); /* glibc's _exit is exit_group(2) */
        strict_exit(0);
    }
    return pbt_wait_child(pid);
}

static void test_harness_detects_a_syscall(void **state)
{
    (void)state;
    assert_int_equal(run_strict_child(ACT_EXIT_CLEANLY), 0);
    assert_int_equal(run_strict_child(ACT_GETPID), 128 + SIGKILL);
    assert_int_equal(run_strict_child(ACT_EXIT_GROUP), 128 + SIGKILL);
}

/*
 * procbus_liveness reads CLOCK_MONOTONIC through the vDSO. Strict mode cannot
 * show that it makes no system call: on x86 it also disables the TSC
 * (TIF_NOTSC), so a vDSO clock read faults with SIGSEGV without any system
 * call. A seccomp filter with strict mode's allow-list (read, write, exit,
 * rt_sigreturn; anything else kills the process) proves the same property
 * without touching the TSC.
 */
#if defined(__x86_64__)
#define PBT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PBT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static int enter_strict_filter(void)
{
#ifdef PBT_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PBT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        return -errno;
    return 0;
#else
    return -ENOSYS;
#endif
}

enum filter_action { FACT_EXIT_CLEANLY, FACT_GETPID, FACT_CLOCK, FACT_LIVENESS };

/* Run `act` in a child under the allow-list filter; its status (pbt_wait_child coding). */
static int run_filter_child(enum filter_action act, const char *segment)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct procbus_reader r;
        struct timespec ts;
        int i, bad = 0;

        if (act == FACT_LIVENESS && procbus_open(&r, segment) != 0)
            _exit(10);
        if (enter_strict_filter() != 0)
            _exit(11);
        switch (act) {
        case FACT_GETPID:
            syscall(SYS_getpid);
            break;
        case FACT_CLOCK:
            for (i = 0; i < 1000; i++)
                clock_gettime(CLOCK_MONOTONIC, &ts);
            break;
        case FACT_LIVENESS:
            for (i = 0; i < 100000; i++)
                if (procbus_liveness(&r, 3600ull * 1000000000ull) != PROCBUS_ALIVE)
                    bad++;
            break;
        default:
            break;
        }
        strict_exit(bad == 0 ? 0 : 1);
    }
    return pbt_wait_child(pid);
}

static void test_liveness_makes_no_syscall(void **state)
{
    char name[64];
    struct procbus_pub *p;
    int status;
    (void)state;

    status = run_filter_child(FACT_EXIT_CLEANLY, NULL);
    if (status == 11) {
        print_message("skipped: cannot install a seccomp filter here\n");
        skip();
    }
    assert_int_equal(status, 0);
    assert_int_equal(run_filter_child(FACT_GETPID, NULL), 128 + SIGSYS); /* the control */
    if (run_filter_child(FACT_CLOCK, NULL) != 0) {
        print_message("skipped: clock_gettime(CLOCK_MONOTONIC) is a system call on this "
                      "machine (no vDSO clock source)\n");
        skip();
    }
    p = pbt_pub(pbt_name(name), 4, 0);
    assert_non_null(p);
    status = run_filter_child(FACT_LIVENESS, name);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    assert_int_equal(status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_harness_detects_a_syscall),
        cmocka_unit_test(test_read_path_makes_no_syscall),
        cmocka_unit_test(test_liveness_makes_no_syscall),
    };
    return cmocka_run_group_tests_name("seccomp", tests, NULL, NULL);
}
