/* rate.c - tracer-bench: figures 1 and 2, offered rate, loss and BPF cost per event. */
#include "tb.h"

/* ---- figure 1 + 2: offered rate, loss, BPF cost ---- */

struct genctl {
    volatile int go, stop;
    uint64_t count[MAX_WORKER]; /* processes created and reaped, per worker */
    int errors;
};

static char *const g_true_argv[] = {"true", NULL};
static char *const g_empty_env[] = {NULL};

static void worker_main(struct genctl *c, int idx, int exec, double per_s)
{
    uint64_t period = per_s > 0 ? (uint64_t)(1e9 / per_s) : 0, base, k = 0, n = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_TIMERSLACK, 1UL);
    while (!c->go && !c->stop)
        usleep(200);
    base = mono();
    while (!c->stop) {
        pid_t p;
        if (period) {
            uint64_t due = base + k * period, now = mono();
            if (due > now) {
                struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            } else if (now - due > 50 * NS_PER_MS) { /* far behind: no burst to catch up */
                base = now;
                k = 0;
            }
            k++;
        }
        p = fork();
        if (p == 0) {
            if (exec)
                execve("/bin/true", g_true_argv, g_empty_env);
            _exit(0);
        }
        if (p < 0) {
            __atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
            usleep(1000);
            continue;
        }
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        __atomic_store_n(&c->count[idx], ++n, __ATOMIC_RELAXED);
    }
    _exit(0);
}

static int run_step(struct step *s, struct genctl *c, const struct bench_daemon *d,
                    struct procbus_reader *r, int step_ms)
{
    uint64_t ns0[MAX_PROGS], cnt0[MAX_PROGS], ns1[MAX_PROGS], cnt1[MAX_PROGS];
    uint64_t t0, t1, procs = 0, dns = 0, dcnt = 0;
    struct procbus_info i0, i1, im;
    pid_t w[MAX_WORKER];
    long tk0, tk1;
    int k, j;

    memset(c, 0, sizeof(*c));
    memset(&i0, 0, sizeof(i0));
    memset(&i1, 0, sizeof(i1));
    memset(&im, 0, sizeof(im));
    for (k = 0; k < s->workers; k++) {
        w[k] = fork();
        if (w[k] == 0)
            worker_main(c, k, s->exec, s->rate > 0 ? (double)s->rate / s->workers : 0);
        if (w[k] < 0) {
            say("fork: %s", strerror(errno));
            c->stop = 1;
            for (j = 0; j < k; j++)
                waitpid(w[j], NULL, 0);
            return -1;
        }
    }
    sleep_ms(50);
    if (observer_catch_up(r, 5000) < 0)
        say("%s: procbusd did not catch up before the step", s->name);
    procbus_info(r, &i0);
    progs_read(ns0, cnt0);
    tk0 = proc_cpu_ticks(d->pid);
    t0 = mono();
    c->go = 1;
    sleep_ms(step_ms);
    for (k = 0; k < s->workers; k++)
        procs += __atomic_load_n(&c->count[k], __ATOMIC_RELAXED);
    t1 = mono();
    progs_read(ns1, cnt1);
    tk1 = proc_cpu_ticks(d->pid);
    procbus_info(r, &im);
    c->stop = 1;
    for (k = 0; k < s->workers; k++)
        while (waitpid(w[k], NULL, 0) < 0 && errno == EINTR)
            ;
    {
        uint64_t a = mono();
        s->drain_timeout = observer_catch_up(r, 20000) < 0;
        sleep_ms(100); /* the drop counters are copied on procbusd's loop turn */
        s->drain_ms = (double)(mono() - a) / 1e6 - 100;
    }
    procbus_info(r, &i1);
    for (k = 0; k < g_nprogs; k++) {
        g_progs[k].run_ns += ns1[k] - ns0[k];
        g_progs[k].run_cnt += cnt1[k] - cnt0[k];
        dns += ns1[k] - ns0[k];
        dcnt += cnt1[k] - cnt0[k];
    }
    s->secs = (double)(t1 - t0) / 1e9;
    s->procs = procs;
    s->procs_per_s = (double)procs / s->secs;
    s->events_per_s = s->procs_per_s * (s->exec ? 3 : 2);
    s->bpf_runs_per_s = (double)dcnt / s->secs;
    s->bpf_ns_per_run = dcnt ? (double)dns / (double)dcnt : NAN;
    s->ring_events_per_s = (double)(im.ring_head - i0.ring_head) / s->secs;
    s->pbd_cpu_pct = tk0 >= 0 && tk1 >= 0
                         ? 100.0 * (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK) / s->secs
                         : NAN;
    s->tracer_drops = i1.tracer_drops - i0.tracer_drops;
    s->events_dropped = i1.events_dropped - i0.events_dropped;
    s->records_dropped = i1.records_dropped - i0.records_dropped;
    s->loss = s->tracer_drops + s->events_dropped;
    s->ran = 1;
    say("  %-14s %7.0f proc/s %8.0f ev/s  bpf %6.0f ns/run  procbusd %3.0f%% CPU  loss %" PRIu64
        " (tracer %" PRIu64 ", publisher %" PRIu64 ")%s",
        s->name, s->procs_per_s, s->events_per_s, s->bpf_ns_per_run, s->pbd_cpu_pct, s->loss,
        s->tracer_drops, s->events_dropped, s->drain_timeout ? "  [catch-up timed out]" : "");
    if (c->errors)
        say("  %s: %d fork failures", s->name, c->errors);
    return 0;
}

static void plan_steps(void)
{
    static const int fork_full[] = {2000, 5000, 10000, 20000};
    static const int exec_full[] = {1000, 2000, 5000, 10000};
    static const int fork_quick[] = {5000, 20000};
    static const int exec_quick[] = {2000};
    static const int workers_full[] = {1, 2, 4};
    static const int workers_quick[] = {2};
    int e, i;

    g_nsteps = 0;
    for (e = 0; e < 2; e++) {
        const int *rates =
            e ? (g_quick ? exec_quick : exec_full) : (g_quick ? fork_quick : fork_full);
        int nr = e ? (g_quick ? 1 : 4) : (g_quick ? 2 : 4);
        const int *ws = g_quick ? workers_quick : workers_full;
        int nw = g_quick ? 1 : 3;
        for (i = 0; i < nr; i++) {
            struct step *s = &g_steps[g_nsteps++];
            memset(s, 0, sizeof(*s));
            s->exec = e;
            s->workers = 2;
            s->rate = rates[i];
            snprintf(s->name, sizeof(s->name), "%s %dk/s", e ? "exec" : "fork", rates[i] / 1000);
        }
        for (i = 0; i < nw; i++) {
            struct step *s = &g_steps[g_nsteps++];
            memset(s, 0, sizeof(*s));
            s->exec = e;
            s->workers = ws[i];
            s->rate = 0;
            snprintf(s->name, sizeof(s->name), "%s max x%d", e ? "exec" : "fork", ws[i]);
        }
    }
}

int bench_rate(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    struct genctl *c;
    int step_ms = g_quick ? 1500 : 3000, i, rc = -1, stats = 0;
    double best = NAN, first_loss = NAN;
    const struct step *sb = NULL, *sl = NULL;
    uint64_t tot_ns = 0, tot_cnt = 0;
    char text[200];

    c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return -1;
    plan_steps();
    say("rate: %d steps of %.1f s, procbusd --observe, BPF run-time statistics on", g_nsteps,
        step_ms / 1000.0);
    if (observer_start(&d, &r, "rate") < 0) {
        munmap(c, sizeof(*c));
        return -1;
    }
    for (i = 0; i < 100 && find_progs(d.pid) < 0; i++) /* the programs may attach after the walk */
        sleep_ms(20);
    if (g_nprogs == 0)
        say("no proctrace_* BPF program found: no BPF cost figures");
    for (i = 0; i < g_nprogs; i++)
        say("BPF program %u %s%s", g_progs[i].id, g_progs[i].name,
            g_progs_by_owner ? " (procbusd's)" : " (any owner)");
    stats = stats_on() == 0;
    if (!stats)
        say("cannot enable BPF run-time statistics: no BPF cost figures");
    for (i = 0; i < g_nsteps && !g_stop; i++) {
        if (!bench_daemon_alive(&d)) {
            say("procbusd died during the rate steps");
            show_tail(d.log);
            goto out;
        }
        if (run_step(&g_steps[i], c, &d, &r, step_ms) < 0)
            goto out;
    }
    if (g_stop)
        goto out;
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        if (!s->ran)
            continue;
        if (s->loss == 0 && (!isfinite(best) || s->events_per_s > best)) {
            best = s->events_per_s;
            sb = s;
        }
        if (s->loss > 0 && (!isfinite(first_loss) || s->events_per_s < first_loss)) {
            first_loss = s->events_per_s;
            sl = s;
        }
    }
    snprintf(text, sizeof(text), "highest tracer event rate with zero loss (step \"%s\")",
             sb ? sb->name : "none");
    add("zero_loss_events_per_s", text, best, "events/s", T_NONE, 0, 1);
    add("zero_loss_processes_per_s", "  same, processes/s", sb ? sb->procs_per_s : NAN, "procs/s",
        T_NONE, 0, 1);
    snprintf(text, sizeof(text), "lowest tracer event rate with loss (%s%s%s)",
             sl ? "step \"" : "not reached in any step", sl ? sl->name : "", sl ? "\"" : "");
    add("loss_begins_events_per_s", text, first_loss, "events/s", T_NONE, 0, 1);
    add("loss_begins_loss", "  events lost in that step", sl ? (double)sl->loss : NAN, "events",
        T_NONE, 0, 1);
    {
        double maxp = 0;
        for (i = 0; i < g_nsteps; i++)
            if (g_steps[i].ran && g_steps[i].events_per_s > maxp)
                maxp = g_steps[i].events_per_s;
        add("max_offered_events_per_s", "highest tracer event rate offered in any step", maxp,
            "events/s", T_NONE, 0, 1);
    }
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        char key[80], base[48];
        int j, o = 0;
        if (!s->ran)
            continue;
        for (j = 0; s->name[j] && o < (int)sizeof(base) - 1; j++)
            base[o++] = s->name[j] == ' ' || s->name[j] == '/' ? '_' : s->name[j];
        base[o] = '\0';
        snprintf(key, sizeof(key), "step_%s_events_per_s", base);
        add(key, key, s->events_per_s, "events/s", T_NONE, 0, 0);
        snprintf(key, sizeof(key), "step_%s_loss", base);
        add(key, key, (double)s->loss, "events", T_NONE, 0, 0);
    }
    if (stats) {
        for (i = 0; i < g_nprogs; i++) {
            char key[80], label[160], shortname[BPF_OBJ_NAME_LEN + 1];
            size_t l;
            snprintf(shortname, sizeof(shortname), "%s", g_progs[i].name + 10);
            l = strlen(shortname);
            while (l > 0 && shortname[l - 1] == '_')
                shortname[--l] = '\0';
            snprintf(key, sizeof(key), "bpf_%s_ns_per_run", shortname);
            snprintf(label, sizeof(label), "BPF %s: run time per run, %.3g runs", g_progs[i].name,
                     (double)g_progs[i].run_cnt);
            add(key, label,
                g_progs[i].run_cnt ? (double)g_progs[i].run_ns / (double)g_progs[i].run_cnt : NAN,
                "ns", T_NONE, 0, 1);
            tot_ns += g_progs[i].run_ns;
            tot_cnt += g_progs[i].run_cnt;
        }
        add("bpf_ns_per_event", "BPF run time per program run, all proctrace_* programs",
            tot_cnt ? (double)tot_ns / (double)tot_cnt : NAN, "ns", T_LT, 1000, 1);
        add("bpf_runs", "bpf_runs", (double)tot_cnt, "", T_NONE, 0, 0);
    }
    rc = 0;
out:
    stats_off();
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
    munmap(c, sizeof(*c));
    return rc;
}
