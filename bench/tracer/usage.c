/* usage.c - tracer-bench: figures 4 and 5, overhead on a fork/exec workload and procbus ps --all vs
 * ps -e. */
#include "tb.h"

/* ---- figure 4: overhead on a fork/exec workload ---- */

/* n x fork + execve(/bin/true) (empty environment) + waitpid, one after another; ns taken. */
static int64_t fork_exec_workload(int n)
{
    static char *const true_argv[] = {"true", NULL};
    static char *const empty_env[] = {NULL};
    uint64_t t0 = mono();
    int i;

    for (i = 0; i < n && !g_stop; i++) {
        pid_t p = fork();
        if (p == 0) {
            execve("/bin/true", true_argv, empty_env);
            _exit(127);
        }
        if (p < 0)
            return -1;
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    return (int64_t)(mono() - t0);
}

int bench_overhead(void)
{
    int n = g_quick ? 500 : 2000, pairs = g_quick ? 3 : 5, k, no = 0, nn = 0;
    double off[16], on[16], moff, mon;
    uint64_t drops = 0;
    char label[200];

    say("overhead: %d rounds of %d x fork+execve(/bin/true)+waitpid, off/on interleaved", 2 * pairs,
        n);
    fork_exec_workload(n / 4); /* warm-up */
    for (k = 0; k < pairs && !g_stop; k++) {
        struct procbus_reader r;
        struct procbus_info i0, i1;
        struct bench_daemon d;
        int64_t t = fork_exec_workload(n);
        if (t < 0)
            return -1;
        off[no++] = (double)t / 1e6;
        memset(&i0, 0, sizeof(i0));
        memset(&i1, 0, sizeof(i1));
        if (observer_start(&d, &r, "ovh") < 0)
            return -1;
        sleep_ms(100);
        procbus_info(&r, &i0);
        t = fork_exec_workload(n);
        observer_catch_up(&r, 10000);
        sleep_ms(100);
        procbus_info(&r, &i1);
        drops += i1.tracer_drops - i0.tracer_drops + i1.events_dropped - i0.events_dropped;
        procbus_close(&r);
        bench_daemon_stop(&d, 30000);
        if (t < 0)
            return -1;
        on[nn++] = (double)t / 1e6;
        say("  round %d: off %.1f ms, on %.1f ms", k + 1, off[no - 1], on[nn - 1]);
    }
    if (g_stop)
        return -1;
    moff = pct(off, no, 50);
    mon = pct(on, nn, 50);
    snprintf(label, sizeof(label), "%d x fork+exec+wait, tracing off (no procbusd): median of %d",
             n, no);
    add("overhead_off_ms", label, moff, "ms", T_NONE, 0, 1);
    snprintf(label, sizeof(label), "%d x fork+exec+wait, procbusd --observe: median of %d", n, nn);
    add("overhead_on_ms", label, mon, "ms", T_NONE, 0, 1);
    add("overhead_off_us_per_proc", "  same, per process, tracing off", moff * 1e3 / n, "us",
        T_NONE, 0, 1);
    add("overhead_on_us_per_proc", "  same, per process, tracing on", mon * 1e3 / n, "us", T_NONE,
        0, 1);
    add("overhead_ratio", "overhead: on / off (medians, same run)", mon / moff, "x", T_NONE, 0, 1);
    add("overhead_off_min_ms", "overhead_off_min_ms", pct(off, no, 0), "ms", T_NONE, 0, 0);
    add("overhead_off_max_ms", "overhead_off_max_ms", pct(off, no, 100), "ms", T_NONE, 0, 0);
    add("overhead_on_min_ms", "overhead_on_min_ms", pct(on, nn, 0), "ms", T_NONE, 0, 0);
    add("overhead_on_max_ms", "overhead_on_max_ms", pct(on, nn, 100), "ms", T_NONE, 0, 0);
    add("overhead_on_loss", "overhead_on_loss", (double)drops, "events", T_NONE, 0, 0);
    return 0;
}

/* ---- figure 5: procbus ps --all vs ps -e ---- */

static long count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    long n = 0;
    int ch;

    if (fp == NULL)
        return -1;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

int bench_ps(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    int runs = g_quick ? 10 : 30, i, st = 0, rc = -1, nb = 0, np = 0;
    double *pb = calloc((size_t)runs, sizeof(double)), *pe = calloc((size_t)runs, sizeof(double));
    char out1[160], out2[160], label[200];
    char *pb_argv[6], *ps_argv[3];
    long lines_pb, lines_ps;
    size_t nrec = 0;
    struct procbus_proc *list = NULL;

    if (pb == NULL || pe == NULL)
        goto done;
    say("ps: %d x `procbus ps --all` and %d x `ps -e`, interleaved", runs, runs);
    if (observer_start(&d, &r, "ps") < 0)
        goto done;
    pb_argv[0] = g_procbus;
    pb_argv[1] = "-s";
    pb_argv[2] = d.seg;
    pb_argv[3] = "ps";
    pb_argv[4] = "--all";
    pb_argv[5] = NULL;
    ps_argv[0] = g_ps;
    ps_argv[1] = "-e";
    ps_argv[2] = NULL;
    snprintf(out1, sizeof(out1), "%s/procbus-ps.out", g_tmp);
    snprintf(out2, sizeof(out2), "%s/ps-e.out", g_tmp);
    if (run_timed(pb_argv, out1, &st) < 0 || st != 0) {
        say("`procbus ps --all` failed (wait status 0x%x)", st);
        show_tail(g_errlog);
        goto out;
    }
    if (run_timed(ps_argv, out2, &st) < 0 || st != 0) {
        say("`ps -e` failed (wait status 0x%x)", st);
        goto out;
    }
    lines_pb = count_lines(out1) - 1; /* minus the header line */
    lines_ps = count_lines(out2) - 1;
    {
        size_t cap = 65536;
        list = malloc(cap * sizeof(*list));
        if (list == NULL || procbus_list(&r, list, cap, &nrec) != 0)
            nrec = 0;
    }
    for (i = 0; i < 2; i++) { /* warm the page cache */
        run_timed(pb_argv, NULL, &st);
        run_timed(ps_argv, NULL, &st);
    }
    for (i = 0; i < runs && !g_stop; i++) {
        int64_t t = run_timed(pb_argv, NULL, &st);
        if (t >= 0 && st == 0)
            pb[nb++] = (double)t / 1e6;
        t = run_timed(ps_argv, NULL, &st);
        if (t >= 0 && st == 0)
            pe[np++] = (double)t / 1e6;
    }
    if (g_stop || nb == 0 || np == 0)
        goto out;
    snprintf(label, sizeof(label), "`procbus ps --all`, whole process: median of %d", nb);
    add("ps_procbus_ms", label, pct(pb, nb, 50), "ms", T_NONE, 0, 1);
    add("ps_procbus_max_ms", "ps_procbus_max_ms", pct(pb, nb, 100), "ms", T_NONE, 0, 0);
    snprintf(label, sizeof(label), "`ps -e`, whole process: median of %d", np);
    add("ps_e_ms", label, pct(pe, np, 50), "ms", T_NONE, 0, 1);
    add("ps_e_max_ms", "ps_e_max_ms", pct(pe, np, 100), "ms", T_NONE, 0, 0);
    add("ps_speedup", "ps -e median / procbus ps --all median", pct(pe, np, 50) / pct(pb, nb, 50),
        "x", T_NONE, 0, 1);
    add("ps_procbus_lines", "  lines printed by `procbus ps --all` (less the header)",
        (double)lines_pb, "lines", T_NONE, 0, 1);
    add("ps_e_lines", "  lines printed by `ps -e` (less the header)", (double)lines_ps, "lines",
        T_NONE, 0, 1);
    add("ps_segment_records", "  records in the segment at that moment", (double)nrec, "records",
        T_NONE, 0, 1);
    rc = 0;
out:
    free(list);
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
done:
    free(pb);
    free(pe);
    return rc;
}
