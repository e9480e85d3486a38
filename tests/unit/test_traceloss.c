/* test_traceloss.c - a forced loss in the tracer's ring: what did arrive keeps its real status,
 * what did not is counted exactly, and nothing is recorded twice. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "procbus.h"
#include "support.h"
#include "trace_harness.h"

/*
 * A program forks N children into one process group, slowly (no loss); the test then
 * SIGKILLs the group at once through a 4 KiB ring, so that most exit events cannot fit
 * (forced: procbusd is SIGSTOPped until every child is dead; or left to race them).
 * Then:
 *   - every exit event procbusd read (counted by its callback: the "trace: read ..." line it
 *     logs at shutdown) left a record with the real status (SIGNAL 9);
 *   - the children whose exit event was lost are EXITED with status unknown, and there are
 *     exactly as many as the segment's tracer_drops grew by;
 *   - no (pid, start) has two records.
 * `test_traceloss --burst N FILE TAG` is the workload (it writes its group's id to FILE).
 */

#define BURST 400

static char g_self[512], g_tag[64], g_file[128];

__attribute__((noreturn)) static void burst_main(int n, const char *file)
{
    pid_t g = 0, c;
    char buf[32], tmp[256];
    int i, fd;

    for (i = 0; i < n; i++) {
        c = fork();
        if (c == 0) {
            setpgid(0, g); /* the first makes the group; the others join it */
            for (;;)
                pause();
        }
        if (c < 0) {
            usleep(10000);
            i--;
            continue;
        }
        setpgid(c, g == 0 ? c : g);
        if (g == 0)
            g = c;
        usleep(2000); /* a fork at a time: no loss here */
    }
    /* written whole under another name, then renamed: the test takes FILE's existence to mean
     * its content is there (created in place, it could read it empty) */
    snprintf(buf, sizeof(buf), "%d\n", (int)g);
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || rename(tmp, file) != 0) {
            /* the test times out waiting */
        }
        close(fd);
    }
    for (;;)
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
            pause();
}

struct counts {
    uint64_t prog;
    int running, real, unknown, other, dups, total;
};

static int cmp_ps(const void *a, const void *b)
{
    const struct procbus_proc *x = a, *y = b;

    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->start_boot_ns < y->start_boot_ns ? -1 : x->start_boot_ns > y->start_boot_ns;
}

/* The children's records (descendants of prog carrying the tag), by outcome. */
static void count(struct tdaemon *d, struct counts *c)
{
    const struct procbus_proc *all;
    struct procbus_proc *mine;
    size_t i, n = pbtt_list(d, &all), k = 0;
    uint64_t prog = c->prog;

    memset(c, 0, sizeof(*c));
    c->prog = prog;
    mine = calloc(n + 1, sizeof(*mine));
    assert_non_null(mine);
    for (i = 0; i < n; i++) {
        const struct procbus_proc *p = &all[i];
        if (!(p->flags & PROCBUS_F_DESCENDANT) || p->program_id != prog)
            continue;
        if (memmem(p->cmdline, p->cmdline_len < sizeof(p->cmdline) ? p->cmdline_len : 0, g_tag,
                   strlen(g_tag)) == NULL)
            continue;
        mine[k++] = *p;
        if (p->state == PROCBUS_STATE_RUNNING)
            c->running++;
        else if (p->exit_kind == PROCBUS_EXIT_SIGNAL && p->exit_code == SIGKILL)
            c->real++;
        else if (p->exit_kind == PROCBUS_EXIT_NONE)
            c->unknown++;
        else
            c->other++;
    }
    c->total = (int)k;
    qsort(mine, k, sizeof(*mine), cmp_ps);
    for (i = 1; i < k; i++)
        c->dups +=
            mine[i].pid == mine[i - 1].pid && mine[i].start_boot_ns == mine[i - 1].start_boot_ns;
    free(mine);
}

static int cond_all_running(struct tdaemon *d, void *arg)
{
    struct counts *c = arg;

    count(d, c);
    return c->running == BURST && access(g_file, F_OK) == 0;
}

static int cond_none_running(struct tdaemon *d, void *arg)
{
    struct counts *c = arg;

    count(d, c);
    return c->running == 0 && c->total >= BURST;
}

/* The "exit" figure of the "trace: read ..." line of the last procbusd's log. */
static long exits_read(void)
{
    const char *p = strstr(pbtt_last_log(), "trace: read ");
    long fork_n, exec_n, exit_n = -1;

    if (p == NULL ||
        sscanf(p, "trace: read %ld fork, %ld exec, %ld exit", &fork_n, &exec_n, &exit_n) != 3)
        exit_n = -1;
    return exit_n;
}

/* Every child of the burst dead (a zombie or gone), by the pids of their records. */
static int all_dead(struct tdaemon *d, uint64_t prog)
{
    const struct procbus_proc *all;
    size_t i, n = pbtt_list(d, &all);

    for (i = 0; i < n; i++) {
        char s;
        if (!(all[i].flags & PROCBUS_F_DESCENDANT) || all[i].program_id != prog ||
            all[i].state != PROCBUS_STATE_RUNNING)
            continue;
        s = pbt_proc_stat(all[i].pid, NULL, NULL);
        if (s != 0 && s != 'Z' && s != 'X')
            return 0;
    }
    return 1;
}

static void burst(int batch_ms, int forced)
{
    struct tdaemon d;
    struct procbus_proc prog;
    struct procbus_info i0 = {0}, i1 = {0};
    struct counts c = {0};
    char body[2048], buf[32];
    long exits;
    pid_t g;
    int fd;
    ssize_t n;

    pbtt_need_bpf();
    snprintf(g_tag, sizeof(g_tag), "burst-%d", (int)getpid());
    snprintf(g_file, sizeof(g_file), "/tmp/pbtt-burst-%d", (int)getpid());
    unlink(g_file);
    pbtt_mark(g_tag);
    snprintf(body, sizeof(body),
             "trace = on\ntrace_ring_kb = 4\ntrace_batch_ms = %d\nkeep_exited_secs = 600\n"
             "capacity = 4096\n"
             "[program:burst]\ncommand = %s --burst %d %s %s\nstartsecs = 0\n",
             batch_ms, g_self, BURST, g_file, g_tag);
    pbtt_start(&d, 0, body);
    assert_int_equal(pbt_wait_state(&d.h, "burst", PROCBUS_STATE_RUNNING, 30000, &prog), 0);
    c.prog = prog.id;
    if (!pbtt_wait(&d, 120000, cond_all_running, &c))
        fail_msg("%d of %d children RUNNING after 120 s", c.running, BURST);
    assert_int_equal(procbus_info(&d.h.r, &i0), 0);
    if (i0.tracer_drops != 0) /* a stalled procbusd lost some forks: a walk recorded those */
        printf("(%llu events lost while the children were forked; counted apart)\n",
               (unsigned long long)i0.tracer_drops);
    fd = open(g_file, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    g = (pid_t)atoi(buf);
    assert_true(g > 0);
    if (forced) /* it reads nothing until they are all dead: the ring must overflow */
        assert_int_equal(kill(d.procbusd, SIGSTOP), 0);
    assert_int_equal(kill(-g, SIGKILL), 0); /* 400 exits at once */
    if (forced) {
        int k;
        for (k = 0; k < 12000 && !all_dead(&d, prog.id); k++)
            usleep(10000);
        assert_int_equal(kill(d.procbusd, SIGCONT), 0);
    }
    if (!pbtt_wait(&d, 120000, cond_none_running, &c))
        fail_msg("%d of the %d children still RUNNING 120 s after they were killed", c.running,
                 BURST);
    assert_int_equal(procbus_info(&d.h.r, &i1), 0);
    assert_int_equal(pbtt_cli(&d, "stop burst", NULL, 0), 0);
    pbtt_stop(&d); /* its log now has the "trace: read ..." line */
    exits = exits_read();
    printf("burst of %d SIGKILLed through a 4 KiB ring (trace_batch_ms = %d%s): %d exits with "
           "their status, %d unknown, tracer_drops %llu; %ld exit events read (+1: the main "
           "process's); %d other, %d duplicate (pid, start)\n",
           BURST, batch_ms, forced ? ", procbusd stopped meanwhile" : "", c.real, c.unknown,
           (unsigned long long)(i1.tracer_drops - i0.tracer_drops), exits, c.other, c.dups);
    if (forced)
        assert_true(i1.tracer_drops > i0.tracer_drops);
    assert_int_equal(c.total, BURST);
    assert_int_equal(c.dups, 0);
    assert_int_equal(c.other, 0);
    assert_int_equal(c.real + c.unknown, BURST);
    assert_int_equal((uint64_t)c.unknown, i1.tracer_drops - i0.tracer_drops);
    assert_int_equal(exits, c.real + 1); /* every exit event read kept its status */
    unlink(g_file);
}

static void test_burst_loss_forced(void **state)
{
    (void)state;
    burst(100, 1);
}

static void test_burst_loss_batch100(void **state)
{
    (void)state;
    burst(100, 0);
}

static void test_burst_loss_batch0(void **state)
{
    (void)state;
    burst(0, 0);
}

static int teardown(void **state)
{
    unlink(g_file);
    return pbtt_teardown(state);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_burst_loss_forced, teardown),
        cmocka_unit_test_teardown(test_burst_loss_batch100, teardown),
        cmocka_unit_test_teardown(test_burst_loss_batch0, teardown),
    };

    if (argc >= 5 && strcmp(argv[1], "--burst") == 0)
        burst_main(atoi(argv[2]), argv[3]);
    if (realpath("/proc/self/exe", g_self) == NULL)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
