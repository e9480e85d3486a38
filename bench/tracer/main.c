/* main.c - tracer-bench: options, which parts run, the table of rate steps and the JSON. */
#define BENCH_UTIL_MAIN /* bench_util.h's state lives in this file */
#include "tb.h"

/* ---- globals (the shared ones are in bench_util.h) ---- */

int g_quick, g_ring_kb, g_batch_ms;
char g_mode[64]; /* "full" or "quick", and the non-default procbusd settings */
char g_ps[PATH_MAX];

/* ---- rate steps (figure 1), kept for the step table ---- */

struct step g_steps[MAX_STEPS];
int g_nsteps;

/* The flat JSON of bench_util.h (mode quick or full) plus "steps": one object per step run. */
static int write_json(const char *path, const struct machine *m)
{
    char tmp[PATH_MAX + 16];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, g_mode);
    int i;

    if (fp == NULL)
        return -1;
    fprintf(fp, ",\n  \"steps\": [");
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        if (!s->ran)
            continue;
        fprintf(fp, "%s\n    {\"name\": ", i ? "," : "");
        json_str(fp, s->name);
        fprintf(fp,
                ", \"exec\": %d, \"workers\": %d, \"target_per_s\": %d, \"secs\": %.3f, "
                "\"processes\": %" PRIu64 ", \"processes_per_s\": %.1f, \"events_per_s\": %.1f, "
                "\"bpf_runs_per_s\": %.1f, \"bpf_ns_per_run\": %.1f, \"ring_events_per_s\": %.1f, "
                "\"procbusd_cpu_pct\": %.1f, \"loss\": %" PRIu64 ", \"tracer_drops\": %" PRIu64
                ", \"events_dropped\": %" PRIu64 ", \"records_dropped\": %" PRIu64
                ", \"drain_ms\": %.1f, \"drain_timeout\": %d}",
                s->exec, s->workers, s->rate, s->secs, s->procs, s->procs_per_s, s->events_per_s,
                s->bpf_runs_per_s, isfinite(s->bpf_ns_per_run) ? s->bpf_ns_per_run : -1.0,
                s->ring_events_per_s, s->pbd_cpu_pct, s->loss, s->tracer_drops, s->events_dropped,
                s->records_dropped, s->drain_ms, s->drain_timeout);
    }
    fprintf(fp, "\n  ]");
    return json_end(fp, tmp, path);
}

/* bench_util.h's report, then the table of rate steps. */
static void print_table(const struct machine *m)
{
    int i;

    print_rows("tracer", g_mode, m, NULL);
    if (g_nsteps == 0)
        return;
    printf("\n### rate steps (observe mode; loss = tracer_drops + events_dropped)\n\n");
    printf(
        "| step | workers | target/s | processes/s | tracer events/s | BPF runs/s | BPF ns/run "
        "| procbusd CPU | loss | catch-up |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < g_nsteps; i++) {
        const struct step *s = &g_steps[i];
        char tgt[32], ns[32];
        if (!s->ran)
            continue;
        if (s->rate > 0)
            snprintf(tgt, sizeof(tgt), "%d", s->rate);
        else
            snprintf(tgt, sizeof(tgt), "max");
        fmt_val(ns, sizeof(ns), s->bpf_ns_per_run);
        printf("| %s | %d | %s | %.0f | %.0f | %.0f | %s | %.0f%% | %" PRIu64 " | %.0f ms%s |\n",
               s->name, s->workers, tgt, s->procs_per_s, s->events_per_s, s->bpf_runs_per_s, ns,
               s->pbd_cpu_pct, s->loss, s->drain_ms, s->drain_timeout ? " (timeout)" : "");
    }
}

/* ---- main ---- */

/* BPF statistics back as they were, then bench_util.h's cleanup (processes, segments, g_tmp). */
static void cleanup(void)
{
    stats_off();
    bench_cleanup();
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tracer-bench [--quick] [--json FILE] [--ring-kb N] [--batch-ms N] [BUILD_DIR]\n"
            "\n"
            "Benchmarks procbusd's eBPF tracer in observe mode with the binaries of BUILD_DIR\n"
            "(default: $PROCBUS_BUILD_DIR, else build): event rate and where loss begins, BPF\n"
            "run time per event, exec -> visible latency, overhead on a fork/exec workload,\n"
            "and `procbus ps --all` against `ps -e`.\n"
            "\n"
            "  --quick        shorter steps and fewer samples (about 30 s)\n"
            "  --json FILE    also write the figures as flat JSON keys to FILE\n"
            "  --ring-kb N    procbusd's trace_ring_kb (BPF ring size; default: its own)\n"
            "  --batch-ms N   procbusd's trace_batch_ms (rate-limited wake-ups; default 0)\n"
            "  --bin-dir DIR  same as BUILD_DIR\n"
            "\n"
            "Needs root and kernel BTF (else prints \"tracer-bench: skipped: ...\" and exits 0).\n"
            "Prints a markdown table on stdout, progress on stderr. Exit status 0 when every\n"
            "benchmark ran (targets missed or not), 1 when one could not run, 2 on bad usage.\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *dir = NULL;
    struct machine m;
    int failed = 0, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            g_quick = 1;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--ring-kb") == 0 && i + 1 < argc) {
            g_ring_kb = atoi(argv[++i]);
            if (g_ring_kb < 4 || (g_ring_kb & (g_ring_kb - 1)) != 0) {
                fprintf(stderr, "tracer-bench: --ring-kb: a power of two >= 4\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--batch-ms") == 0 && i + 1 < argc) {
            g_batch_ms = atoi(argv[++i]);
            if (g_batch_ms < 0 || g_batch_ms > 1000) {
                fprintf(stderr, "tracer-bench: --batch-ms: 0 .. 1000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && dir == NULL) {
            dir = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    snprintf(g_mode, sizeof(g_mode), "%s%s", g_quick ? "quick" : "full",
             g_batch_ms > 0 || g_ring_kb > 0 ? "," : "");
    if (g_batch_ms > 0)
        snprintf(g_mode + strlen(g_mode), sizeof(g_mode) - strlen(g_mode), " trace_batch_ms=%d",
                 g_batch_ms);
    if (g_ring_kb > 0)
        snprintf(g_mode + strlen(g_mode), sizeof(g_mode) - strlen(g_mode), " trace_ring_kb=%d",
                 g_ring_kb);
    if (dir == NULL)
        dir = getenv("PROCBUS_BUILD_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "build";
    snprintf(g_bindir, sizeof(g_bindir), "%s", dir);

    if (geteuid() != 0) {
        printf("tracer-bench: skipped: not root (the eBPF tracer needs root)\n");
        return 0;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        printf("tracer-bench: skipped: no kernel BTF at /sys/kernel/btf/vmlinux\n");
        return 0;
    }
    if (bench_find_programs("pass BUILD_DIR") < 0)
        return 1;
    if (find_exe("ps", g_ps, sizeof(g_ps)) < 0 && find_exe("/bin/ps", g_ps, sizeof(g_ps)) < 0) {
        say("ps not found (Debian: apt-get install procps)");
        return 1;
    }
    if (access("/bin/true", X_OK) < 0 || access("/bin/sleep", X_OK) < 0) {
        say("/bin/true or /bin/sleep missing");
        return 1;
    }

    if (bench_setup() < 0)
        return 1;
    atexit(cleanup);

    machine_start(&m);
    failed |= bench_rate() < 0;
    if (!g_stop)
        failed |= bench_latency() < 0;
    if (!g_stop)
        failed |= bench_overhead() < 0;
    if (!g_stop)
        failed |= bench_ps() < 0;
    machine_end(&m);
    cleanup();
    if (g_stop) {
        say("interrupted");
        return 1;
    }
    print_table(&m);
    if (json != NULL && write_json(json, &m) < 0)
        failed = 1;
    if (failed)
        say("some benchmarks could not run (see above)");
    return failed ? 1 : 0;
}
