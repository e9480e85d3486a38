/* latency.c - tracer-bench: figure 3, exec -> visible beside its floor (tracer-floor). */
#include "tb.h"

/* ---- figure 3: exec -> visible ---- */

struct latctx {
    char seg[96];
    int block, want;
    pid_t parent;
    volatile int done, ready;
    int n, stale, getfail, err;
    uint64_t missed;
    double *lat, *detect, *wake; /* µs */
};

static void *lat_reader(void *arg)
{
    struct latctx *x = arg;
    struct procbus_reader r;
    struct procbus_event ev;
    struct procbus_proc rec;
    uint64_t missed;

    if (procbus_open(&r, x->seg) != 0) {
        x->err = 1;
        x->ready = 1;
        return NULL;
    }
    procbus_seek_events(&r, PROCBUS_SEEK_NOW);
    x->ready = 1;
    while (!x->done && x->n < x->want) {
        uint64_t gen = procbus_generation(&r), now;
        int rc = procbus_next_event(&r, &ev, &missed);
        if (rc == -ENOENT) {
            x->missed += missed;
            if (x->block)
                procbus_wait(&r, gen, 100);
            continue;
        }
        if (rc != 0)
            continue;
        x->missed += missed;
        if (ev.kind != PROCBUS_EV_EXEC || strcmp(ev.name, "sleep") != 0)
            continue;
        rc = procbus_get_pid(&r, ev.pid, &rec);
        now = pb_now_ns(CLOCK_REALTIME);
        if (rc != 0) {
            x->getfail++;
            continue;
        }
        if (rec.ppid != x->parent)
            continue; /* someone else's sleep */
        if (strncmp(rec.comm, "sleep", PROCBUS_COMM_LEN) != 0) {
            x->stale++;
            continue;
        }
        x->lat[x->n] = ((double)now - (double)rec.state_since_ns) / 1e3;
        x->detect[x->n] = ((double)ev.time_ns - (double)rec.state_since_ns) / 1e3;
        x->wake[x->n] = ((double)now - (double)ev.time_ns) / 1e3;
        x->n++;
    }
    procbus_close(&r);
    return NULL;
}

/* Reap the children in kids[] that have exited (all of them if `all`), never anyone else's:
 * procbusd is our child too. */
static void reap_kids(pid_t *kids, int *n, int all)
{
    int i = 0;

    while (i < *n) {
        pid_t r = waitpid(kids[i], NULL, all ? 0 : WNOHANG);
        if (r == kids[i] || (r < 0 && errno != EINTR))
            kids[i] = kids[--*n];
        else if (r == 0 || !all)
            i++;
    }
}

/* Percentiles 50, 99, 99.9 of v[0..n) into p[3]. */
static void pcts(double *v, int n, double p[3])
{
    int k;

    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    p[0] = pct(v, n, 50);
    p[1] = pct(v, n, 99);
    k = (int)(((long)n * 999 + 999) / 1000) - 1; /* pct()'s rank rule; it takes whole percents */
    p[2] = n > 0 ? v[k < 0 ? 0 : k < n ? k : n - 1] : NAN;
}

/* Fork children that exec /bin/sleep 0.05, 1.5 ms apart, until done() says so (or `n` of them
 * when done is NULL, or the deadline passes); reap them all. How many were forked. */
static int exec_workload(int n, int (*done)(void *), void *arg, uint64_t end)
{
    static char *const sleep_argv[] = {"sleep", "0.05", NULL};
    pid_t kids[1024];
    int nkids = 0, forked = 0;

    while (!g_stop && mono() < end && (done != NULL ? !done(arg) : forked < n)) {
        pid_t p = fork();
        struct timespec gap = {0, 1500000};
        if (p == 0) {
            execv("/bin/sleep", sleep_argv);
            _exit(127);
        }
        if (p > 0) {
            forked++;
            if (nkids < 1024)
                kids[nkids++] = p;
        }
        nanosleep(&gap, NULL);
        reap_kids(kids, &nkids, 0);
    }
    reap_kids(kids, &nkids, 1);
    return forked;
}

static int lat_done(void *arg)
{
    struct latctx *x = arg;

    return x->err || x->n >= x->want;
}

static int lat_run(const struct bench_daemon *d, int block, int want, const char *tag,
                   double p_out[3])
{
    struct latctx x;
    pthread_t th;
    uint64_t end;
    int forked = 0, rc = -1;
    char key[80], label[200];
    double p[3];
    const char *what = block ? "blocking reader (procbus_wait)" : "spinning reader";

    memset(&x, 0, sizeof(x));
    snprintf(x.seg, sizeof(x.seg), "%s", d->seg);
    x.block = block;
    x.want = want;
    x.parent = getpid();
    x.lat = calloc((size_t)want, sizeof(double));
    x.detect = calloc((size_t)want, sizeof(double));
    x.wake = calloc((size_t)want, sizeof(double));
    if (x.lat == NULL || x.detect == NULL || x.wake == NULL)
        goto out;
    if (pthread_create(&th, NULL, lat_reader, &x) != 0)
        goto out;
    while (!x.ready)
        usleep(100);
    end = mono() + (uint64_t)(want * 20 + 10000) * NS_PER_MS;
    forked = exec_workload(want, lat_done, &x, end);
    x.done = 1;
    pthread_join(th, NULL);
    if (x.err || x.n < want / 2) {
        say("exec latency (%s): only %d of %d samples from %d children", what, x.n, want, forked);
        goto out;
    }
    snprintf(key, sizeof(key), "exec_visible_%s_p50_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p50", what);
    add(key, label, pct(x.lat, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_p99_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p99", what);
    add(key, label, pct(x.lat, x.n, 99), "us", block ? T_NONE : T_LT, 200, 1);
    pcts(x.lat, x.n, p);
    if (p_out != NULL)
        memcpy(p_out, p, sizeof(p));
    snprintf(key, sizeof(key), "exec_visible_%s_p999_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: p99.9", what);
    add(key, label, p[2], "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_max_us", tag);
    snprintf(label, sizeof(label), "exec -> record visible, %s: max", what);
    add(key, label, pct(x.lat, x.n, 100), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_min_us", tag);
    add(key, key, pct(x.lat, x.n, 0), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_detect_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: exec -> event staged by procbusd (p50)", what);
    add(key, label, pct(x.detect, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_detect_p99_us", tag);
    add(key, key, pct(x.detect, x.n, 99), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_wake_p50_us", tag);
    snprintf(label, sizeof(label), "  breakdown, %s: staged -> seen (commit, wake-up) (p50)", what);
    add(key, label, pct(x.wake, x.n, 50), "us", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "exec_visible_%s_wake_p99_us", tag);
    add(key, key, pct(x.wake, x.n, 99), "us", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_samples", tag);
    add(key, key, x.n, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_stale", tag);
    add(key, key, x.stale, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_get_failed", tag);
    add(key, key, x.getfail, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "exec_visible_%s_ring_missed", tag);
    add(key, key, (double)x.missed, "", T_NONE, 0, 0);
    say("  %s: %d samples, %d stale records, %d lookups failed, %" PRIu64 " ring events missed",
        what, x.n, x.stale, x.getfail, x.missed);
    rc = 0;
out:
    free(x.lat);
    free(x.detect);
    free(x.wake);
    return rc;
}

/*
 * The floor: tracer-floor (beside this binary) consumes the same BPF program's events with
 * nothing to do but timestamp them, under the same exec workload. Its p50/p99/p99.9 into
 * p[3]; 0, or -1 (said).
 */
static int floor_run(int want, double p[3])
{
    char exe[PATH_MAX], out[PATH_MAX], ready[PATH_MAX + 8], log[PATH_MAX], ring[16], batch[16],
        parent[16];
    char *argv[] = {exe, out, parent, ring, batch, NULL};
    double *lat = NULL;
    ssize_t k;
    uint64_t end;
    pid_t pid;
    FILE *f;
    int n = 0;

    k = readlink("/proc/self/exe", exe, sizeof(exe) - 16);
    if (k <= 0)
        return -1;
    exe[k] = '\0';
    snprintf(strrchr(exe, '/') != NULL ? strrchr(exe, '/') + 1 : exe, 16, "tracer-floor");
    if (access(exe, X_OK) != 0) {
        say("no %s: the floor is not measured", exe);
        return -1;
    }
    snprintf(out, sizeof(out), "%s/floor.txt", g_tmp);
    snprintf(ready, sizeof(ready), "%s.ready", out);
    snprintf(log, sizeof(log), "%s/floor.log", g_tmp);
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    snprintf(ring, sizeof(ring), "%d", g_ring_kb);
    snprintf(batch, sizeof(batch), "%d", g_batch_ms);
    pid = start_bg(argv, log, SIGKILL);
    if (pid < 0)
        return -1;
    end = mono() + 20000 * NS_PER_MS;
    while (access(ready, F_OK) != 0 && bg_alive(pid) && mono() < end)
        sleep_ms(5);
    if (access(ready, F_OK) != 0) {
        say("tracer-floor did not start");
        show_tail(log);
        stop_bg(pid, 5000, "tracer-floor");
        return -1;
    }
    exec_workload(want, NULL, NULL, mono() + (uint64_t)(want * 20 + 10000) * NS_PER_MS);
    sleep_ms(200 + g_batch_ms);
    if (stop_bg(pid, 10000, "tracer-floor") != 0 || (f = fopen(out, "r")) == NULL) {
        show_tail(log);
        return -1;
    }
    lat = calloc((size_t)want + 1, sizeof(*lat));
    while (lat != NULL && n <= want && fscanf(f, "%lf", &lat[n]) == 1)
        n++;
    fclose(f);
    if (lat == NULL || n < want / 2) {
        say("tracer-floor: only %d of %d samples", n, want);
        free(lat);
        return -1;
    }
    pcts(lat, n, p);
    add("exec_floor_p50_us", "floor (same BPF program, a consumer that only timestamps): p50", p[0],
        "us", T_NONE, 0, 1);
    add("exec_floor_p99_us", "floor: p99", p[1], "us", T_NONE, 0, 1);
    add("exec_floor_p999_us", "floor: p99.9", p[2], "us", T_NONE, 0, 1);
    add("exec_floor_samples", "exec_floor_samples", n, "", T_NONE, 0, 0);
    say("  floor: %d samples", n);
    free(lat);
    return 0;
}

int bench_latency(void)
{
    struct procbus_reader r;
    struct bench_daemon d;
    int want = g_quick ? 500 : 2000, rc = -1;
    double spin[3], block[3], flo[3];
    static const char *const pname[3] = {"p50", "p99", "p999"};

    say("exec latency: %d execs of /bin/sleep 0.05, 1.5 ms apart, spinning then blocking reader, "
        "then the floor",
        want);
    if (observer_start(&d, &r, "lat") < 0)
        return -1;
    if (lat_run(&d, 0, want, "spin", spin) == 0 && !g_stop &&
        lat_run(&d, 1, want, "block", block) == 0)
        rc = 0;
    procbus_close(&r);
    bench_daemon_stop(&d, 30000);
    if (rc == 0 && !g_stop && floor_run(want, flo) == 0) {
        /* the spinning reader takes a CPU of its own, which the floor does not: on 2 CPUs
         * the blocking reader's ratio is the fairer one under load */
        for (int i = 0; i < 6; i++) {
            char key[64], label[128];
            const char *rd = i < 3 ? "spin" : "block";
            double v = i < 3 ? spin[i] : block[i - 3];
            snprintf(key, sizeof(key), "exec_visible_%s_ratio_to_floor_%s", rd, pname[i % 3]);
            snprintf(label, sizeof(label), "procbusd (%s reader) / floor, %s",
                     i < 3 ? "spinning" : "blocking", i % 3 == 2 ? "p99.9" : pname[i % 3]);
            add(key, label, flo[i % 3] > 0 ? v / flo[i % 3] : NAN, "x", T_NONE, 0, 1);
        }
    }
    return rc;
}
