/* peer.c - procbusd-bench: `procbus status` and one query against supervisord's, same run. */
#include "pbdb.h"

static volatile uint64_t g_sink;

/* ---- against supervisord ---- */

static int count_running(const char *path)
{
    char line[512];
    FILE *fp = fopen(path, "r");
    int n = 0;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, " RUNNING ") != NULL;
    fclose(fp);
    return n;
}

static double json_num(const char *text, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static int read_small(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
        return -1;
    n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return 0;
}

struct series {
    double *v;
    int n;
};

int bench_peer(int nprog, int ctl_runs, int pb_runs, int xml_calls, long get_calls)
{
    char text[2048], sock[128], slog[128], out[128], jout[128], jbuf[2048];
    char arg_n[16], arg_w[16], arg_c[16];
    struct procbus_reader r;
    struct bench_daemon d;
    struct series ctl = {0}, pb = {0}, tru = {0};
    pid_t sup = 0;
    int rc = -1, st = 0, i, k, rounds = 10, opened = 0, ok;
    double mean_ctl, mean_pb, xml_ns, get_ns, nan = NAN;
    char *sup_argv[5], *ctl_argv[5], *pb_argv[6], *py_argv[8], *true_argv[2];

    snprintf(sock, sizeof(sock), "%s/supervisor.sock", g_tmp);
    snprintf(slog, sizeof(slog), "%s/supervisord.out", g_tmp);
    bench_daemon_init(&d, "peer"); /* supervisord reads d.conf too */
    snprintf(out, sizeof(out), "%s/status.out", g_tmp);
    snprintf(jout, sizeof(jout), "%s/client.json", g_tmp);
    snprintf(text, sizeof(text),
             "; procbusd-bench: %d programs; supervisord and procbusd both load this file\n"
             "[unix_http_server]\nfile = %s\nchmod = 0700\n\n"
             "[supervisord]\nnodaemon = true\nlogfile = %s/supervisord.log\n"
             "pidfile = %s/supervisord.pid\nchildlogdir = %s\n\n"
             "[rpcinterface:supervisor]\n"
             "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
             "[supervisorctl]\nserverurl = unix://%s\n\n"
             "[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)03d\nstartsecs = 0\n"
             "stdout_logfile = NONE\nstderr_logfile = NONE\n",
             nprog, sock, g_tmp, g_tmp, g_tmp, sock, nprog);
    if (write_file(d.conf, text) < 0) {
        bench_daemon_stop(&d, 60000);
        return -1;
    }
    ctl.v = calloc((size_t)ctl_runs, sizeof(double));
    pb.v = calloc((size_t)pb_runs, sizeof(double));
    tru.v = calloc((size_t)pb_runs, sizeof(double));
    if (ctl.v == NULL || pb.v == NULL || tru.v == NULL)
        goto out;

    say("peer: starting supervisord and procbusd with the same %d programs", nprog);
    sup_argv[0] = g_supervisord;
    sup_argv[1] = "-n";
    sup_argv[2] = "-c";
    sup_argv[3] = d.conf;
    sup_argv[4] = NULL;
    sup = start_bg(sup_argv, slog, SIGTERM);
    if (sup < 0 || daemon_start(&d) < 0)
        goto out;
    if (open_seg(&r, &d, 10000) < 0)
        goto out;
    opened = 1;
    if (wait_running(&r, &d, (size_t)nprog, 60000) < 0)
        goto out;
    snprintf(arg_n, sizeof(arg_n), "%d", nprog);
    py_argv[0] = g_python;
    py_argv[1] = g_client;
    py_argv[2] = "wait";
    py_argv[3] = sock;
    py_argv[4] = arg_n;
    py_argv[5] = "60";
    py_argv[6] = NULL;
    if (run_timed(py_argv, jout, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("supervisord did not get %d programs RUNNING", nprog);
        show_tail(g_errlog);
        show_tail(slog);
        goto out;
    }

    /* both tools must print the same 100 RUNNING lines */
    ctl_argv[0] = g_supervisorctl;
    ctl_argv[1] = "-c";
    ctl_argv[2] = d.conf;
    ctl_argv[3] = "status";
    ctl_argv[4] = NULL;
    pb_argv[0] = g_procbus;
    pb_argv[1] = "-s";
    pb_argv[2] = d.seg;
    pb_argv[3] = "status";
    pb_argv[4] = NULL;
    true_argv[0] = "/bin/true";
    true_argv[1] = NULL;
    if (run_timed(ctl_argv, out, &st) < 0 || st != 0 || count_running(out) != nprog) {
        say("supervisorctl status: wait status 0x%x, %d RUNNING lines", st, count_running(out));
        show_tail(out);
        show_tail(g_errlog);
        goto out;
    }
    if (run_timed(pb_argv, out, &st) < 0 || st != 0 || count_running(out) != nprog) {
        say("procbus status: wait status 0x%x, %d RUNNING lines", st, count_running(out));
        show_tail(out);
        show_tail(g_errlog);
        goto out;
    }
    unlink(out);
    for (i = 0; i < 2; i++) { /* warm the page cache */
        run_timed(ctl_argv, NULL, &st);
        run_timed(pb_argv, NULL, &st);
    }
    say("peer: %d x supervisorctl status, %d x procbus status, interleaved in %d rounds", ctl_runs,
        pb_runs, rounds);
    for (k = 0; k < rounds && !g_stop; k++) {
        for (i = k * ctl_runs / rounds; i < (k + 1) * ctl_runs / rounds && !g_stop; i++) {
            int64_t t = run_timed(ctl_argv, NULL, &st);
            if (t < 0 || st != 0) {
                say("supervisorctl status failed (wait status 0x%x)", st);
                show_tail(g_errlog);
                goto out;
            }
            ctl.v[ctl.n++] = (double)t / 1e6;
        }
        for (i = k * pb_runs / rounds; i < (k + 1) * pb_runs / rounds && !g_stop; i++) {
            int64_t t = run_timed(pb_argv, NULL, &st);
            if (t < 0 || st != 0) {
                say("procbus status failed (wait status 0x%x)", st);
                show_tail(g_errlog);
                goto out;
            }
            pb.v[pb.n++] = (double)t / 1e6;
            t = run_timed(true_argv, NULL, &st); /* the floor: any process at all */
            if (t >= 0 && st == 0)
                tru.v[tru.n++] = (double)t / 1e6;
        }
    }
    if (g_stop)
        goto out;
    mean_ctl = mean_of(ctl.v, ctl.n);
    mean_pb = mean_of(pb.v, pb.n);
    snprintf(text, sizeof(text), "`procbus status`, whole process, %d programs: mean of %d runs",
             nprog, pb.n);
    add("status_procbus_mean_ms", text, mean_pb, "ms", T_NONE, 0, 1);
    add("status_procbus_p50_ms", "  same, median", pct(pb.v, pb.n, 50), "ms", T_NONE, 0, 1);
    add("status_procbus_min_ms", "status_procbus_min_ms", pct(pb.v, pb.n, 0), "ms", T_NONE, 0, 0);
    add("status_procbus_max_ms", "status_procbus_max_ms", pct(pb.v, pb.n, 100), "ms", T_NONE, 0, 0);
    add("status_procbus_runs", "status_procbus_runs", pb.n, "", T_NONE, 0, 0);
    add("spawn_true_mean_ms", "  control: the same spawn/exec/wait of /bin/true: mean",
        mean_of(tru.v, tru.n), "ms", T_NONE, 0, 1);
    snprintf(text, sizeof(text),
             "`supervisorctl status`, whole process, %d programs: mean of %d runs", nprog, ctl.n);
    add("status_supervisorctl_mean_ms", text, mean_ctl, "ms", T_NONE, 0, 1);
    add("status_supervisorctl_p50_ms", "  same, median", pct(ctl.v, ctl.n, 50), "ms", T_NONE, 0, 1);
    add("status_supervisorctl_min_ms", "status_supervisorctl_min_ms", pct(ctl.v, ctl.n, 0), "ms",
        T_NONE, 0, 0);
    add("status_supervisorctl_max_ms", "status_supervisorctl_max_ms", pct(ctl.v, ctl.n, 100), "ms",
        T_NONE, 0, 0);
    add("status_supervisorctl_runs", "status_supervisorctl_runs", ctl.n, "", T_NONE, 0, 0);
    add("status_speedup", "status speedup (supervisorctl mean / procbus mean)", mean_ctl / mean_pb,
        "x", T_GE, 50, 1);

    /* one query: procbus_get_name in this process, mean over get_calls */
    say("peer: %ld x procbus_get_name(\"p000\") in-process", get_calls);
    {
        struct procbus_proc p;
        uint64_t acc = 0, t0, t1;
        long c;
        int32_t pid0;

        if (procbus_get_name(&r, "p000", &p) != 0 || p.pid <= 0) {
            say("procbus_get_name(p000) failed");
            goto out;
        }
        pid0 = p.pid;
        for (c = 0; c < 100000; c++) { /* warm-up */
            if (procbus_get_name(&r, "p000", &p) < 0)
                break;
            __asm__ __volatile__("" : : "r"(&p) : "memory");
        }
        t0 = mono();
        for (c = 0; c < get_calls; c++) {
            int g = procbus_get_name(&r, "p000", &p);
            __asm__ __volatile__("" : : "r"(&p) : "memory"); /* the 384-byte copy must happen */
            if (g != 0 || p.pid != pid0) {
                say("procbus_get_name(p000): rc %d pid %d (expected %d)", g, p.pid, pid0);
                goto out;
            }
            acc += p.id ^ (uint64_t)p.pid;
        }
        t1 = mono();
        g_sink = acc;
        get_ns = (double)(t1 - t0) / (double)get_calls;
    }
    add("get_name_ns", "procbus_get_name(\"p000\") via procbus.h, in-process: mean", get_ns, "ns",
        T_NONE, 0, 1);
    add("get_name_calls", "get_name_calls", (double)get_calls, "", T_NONE, 0, 0);
    /* control: all 100 names in a shuffled order (the same record every time is the best case) */
    {
        enum { ORDER = 4096 };
        static char names[100][8];
        static const char *order[ORDER];
        static int32_t want[ORDER];
        int32_t pids[100];
        struct procbus_proc p;
        uint64_t acc = 0, t0, t1, x = 88172645463325252ull;
        long c;
        int j;

        for (j = 0; j < 100 && j < nprog; j++) {
            snprintf(names[j], sizeof(names[j]), "p%03d", j);
            if (procbus_get_name(&r, names[j], &p) != 0 || p.pid <= 0) {
                say("procbus_get_name(%s) failed", names[j]);
                goto out;
            }
            pids[j] = p.pid;
        }
        for (c = 0; c < ORDER; c++) { /* xorshift64: a fixed pseudo-random order */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order[c] = names[x % (uint64_t)j];
            want[c] = pids[x % (uint64_t)j];
        }
        t0 = mono();
        for (c = 0; c < get_calls; c++) {
            int g = procbus_get_name(&r, order[c & (ORDER - 1)], &p);
            __asm__ __volatile__("" : : "r"(&p) : "memory");
            if (g != 0 || p.pid != want[c & (ORDER - 1)]) {
                say("procbus_get_name(%s): rc %d pid %d", order[c & (ORDER - 1)], g, p.pid);
                goto out;
            }
            acc += p.id ^ (uint64_t)p.pid;
        }
        t1 = mono();
        g_sink += acc;
        add("get_name_shuffled_ns",
            "  control: procbus_get_name over all 100 names, shuffled order: mean",
            (double)(t1 - t0) / (double)get_calls, "ns", T_NONE, 0, 1);
    }

    say("peer: %d x XML-RPC getProcessInfo(\"p:p000\") from a warm Python client", xml_calls);
    snprintf(arg_w, sizeof(arg_w), "%d", xml_calls / 10);
    snprintf(arg_c, sizeof(arg_c), "%d", xml_calls);
    py_argv[2] = "bench";
    py_argv[3] = sock;
    py_argv[4] = "p:p000";
    py_argv[5] = arg_w;
    py_argv[6] = arg_c;
    py_argv[7] = NULL;
    ok = run_timed(py_argv, jout, &st) >= 0 && st == 0 && read_small(jout, jbuf, sizeof(jbuf)) == 0;
    xml_ns = ok ? json_num(jbuf, "mean_ns") : nan;
    if (!isfinite(xml_ns)) {
        say("the XML-RPC client failed");
        show_tail(g_errlog);
        goto out;
    }
    if (g_verbose)
        say("client: %s", jbuf);
    add("xmlrpc_getprocessinfo_us", "supervisord XML-RPC getProcessInfo, warm client: mean",
        xml_ns / 1e3, "us", T_NONE, 0, 1);
    add("xmlrpc_getprocessinfo_p50_us", "  same, median", json_num(jbuf, "p50_ns") / 1e3, "us",
        T_NONE, 0, 1);
    add("xmlrpc_getprocessinfo_p99_us", "xmlrpc_getprocessinfo_p99_us",
        json_num(jbuf, "p99_ns") / 1e3, "us", T_NONE, 0, 0);
    add("xmlrpc_calls", "xmlrpc_calls", json_num(jbuf, "n"), "", T_NONE, 0, 0);
    add("query_speedup", "single query speedup (XML-RPC mean / get_name mean)", xml_ns / get_ns,
        "x", T_GE, 10000, 1);

    snprintf(text, sizeof(text), "supervisord VmRSS, %d programs RUNNING (same run)", nprog);
    add("supervisord_rss_kib", text, (double)proc_status_kb(sup, "VmRSS"), "KiB", T_NONE, 0, 1);
    snprintf(text, sizeof(text),
             "procbusd VmRSS, %d programs RUNNING (same run, default capacity 4096)", nprog);
    add("procbusd_rss_peer_kib", text, (double)proc_status_kb(d.pid, "VmRSS"), "KiB", T_NONE, 0, 1);
    rc = 0;
out:
    if (opened)
        procbus_close(&r);
    if (sup > 0) {
        int s = stop_bg(sup, 30000, "supervisord");
        if (s != 0) {
            say("supervisord exited with status %d", s);
            show_tail(slog);
        }
    }
    bench_daemon_stop(&d, 60000);
    free(ctl.v);
    free(pb.v);
    free(tru.v);
    return rc;
}
