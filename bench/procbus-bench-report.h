/* procbus-bench-report.h - procbus-bench's suite (what runs, in which order) and its report. */
#ifndef PBB_REPORT_H
#define PBB_REPORT_H

/*
 * Part of procbus-bench.c. The suite: the matrix (columns: ways to read; rows:
 * situations), then extras (controls, the 10,000-record table, whole-table
 * reads, allocations, commits). Every round runs all of it in this order,
 * row by row, so each figure is taken beside its floor.
 */

enum col { C_FLOOR, C_ZC_PID, C_ZC_NAME, C_COPY, C_RWLOCK, C_MUTEX, C_SOCKET, C_COUNT };
enum mrow { R_ONE, R_TEN, R_WRITER, R_COUNT };
#define MX(c, r) ((r)*C_COUNT + (c))

static const struct {
    const char *key, *head, *label;
    enum rkind kind;
    enum side side[R_COUNT];
} cols[C_COUNT] = {
    {"floor",
     "floor",
     "floor: bare seqlock read of one cache line",
     RK_FLOOR,
     {SIDE_FLOOR_IDLE, SIDE_FLOOR_IDLE, SIDE_FLOOR_WRITER}},
    {"zc_pid",
     "zero-copy, pid",
     "section: state by pid (zero-copy)",
     RK_ZC_PID,
     {SIDE_PUB_IDLE, SIDE_PUB_IDLE, SIDE_PUB_CHURN}},
    {"zc_name",
     "zero-copy, name",
     "section: state by name (zero-copy)",
     RK_ZC_NAME,
     {SIDE_PUB_IDLE, SIDE_PUB_IDLE, SIDE_PUB_CHURN}},
    {"copy_pid",
     "copying get_pid",
     "procbus_get_pid (copies the record)",
     RK_COPY_PID,
     {SIDE_PUB_IDLE, SIDE_PUB_IDLE, SIDE_PUB_CHURN}},
    {"rwlock",
     "rwlock",
     "process-shared rwlock",
     RK_RWLOCK,
     {SIDE_LOCK_IDLE, SIDE_LOCK_IDLE, SIDE_LOCK_WRITER}},
    {"mutex",
     "mutex",
     "process-shared mutex",
     RK_MUTEX,
     {SIDE_LOCK_IDLE, SIDE_LOCK_IDLE, SIDE_LOCK_WRITER}},
    {"socket",
     "unix socket",
     "unix-socket query",
     RK_SOCKET,
     {SIDE_SOCKET, SIDE_SOCKET, SIDE_SOCKET_WRITER}},
};

static const struct {
    const char *key, *head;
    int nreaders;
} mrows[R_COUNT] = {
    {"1r", "1 reader, other side idle", 1},
    {"10r", "10 reader processes", NREADERS},
    {"writer", "1 reader, writer at full speed", 1},
};

enum {
    E_FLOOR_N = C_COUNT * R_COUNT, /* the floor over 1,000 lines, in the lookup order */
    E_PROBE,                       /* the floor of a lookup: bare probe, no checks */
    E_PROBE_IX,                    /* the same, the index alone */
    E_ZC_BUSY,                     /* control: zero-copy pid, the other CPU busy, no writes */
    E_ZC_10K,                      /* zero-copy pid on the 10,000-record table */
    E_COPY_10K,                    /* copying get_pid on the 10,000-record table */
    E_SOCK_XCPU,                   /* socket query, server on the other CPU */
    E_LIST100,                     /* procbus_list of 100 records + aggregate */
    E_LIST10K,                     /* procbus_list of 10,000 records + aggregate */
    E_ITER10K,                     /* section walk of 10,000 records, aggregate */
    E_ITER10K_CHURN,               /* the same while the publisher commits at full speed */
    E_ALLOC,                       /* allocations per read */
    E_C100,
    E_C1K,
    E_C10K,
    NSPECS
};

static struct spec S[NSPECS];
static char spec_labels[NSPECS][128];

static void spec_set(int i, const char *key, const char *label, enum side side, enum rkind kind,
                     uint32_t n, const struct order *ord, int nreaders, unsigned ops)
{
    struct spec *sp = &S[i];

    memset(sp, 0, sizeof(*sp));
    snprintf(spec_labels[i], sizeof(spec_labels[i]), "%s", label);
    sp->key = key;
    sp->label = spec_labels[i];
    sp->side = side;
    sp->kind = kind;
    sp->n = n;
    sp->ord = ord;
    sp->nreaders = nreaders;
    sp->ops = ops;
}

static void suite_init(const struct params *P, const struct order *o1k, const struct order *o10k)
{
    int c, r;

    for (r = 0; r < R_COUNT; r++)
        for (c = 0; c < C_COUNT; c++) {
            char label[128];
            snprintf(label, sizeof(label), "%s, %s", cols[c].label, mrows[r].head);
            spec_set(MX(c, r), NULL, label, cols[c].side[r], cols[c].kind, TABLE_N, o1k,
                     mrows[r].nreaders, c == C_SOCKET ? P->ops_socket : P->ops_fast);
        }
    spec_set(E_FLOOR_N, "floor_1000lines_1r_ns",
             "floor over the lookups' working set: one of 1,000 lines, in the lookup order",
             SIDE_FLOOR_IDLE, RK_FLOOR_N, TABLE_N, o1k, 1, P->ops_fast);
    spec_set(E_PROBE, "floor_probe_1r_ns",
             "floor of a lookup: bare seqlock probe of the same segment (index probe, the "
             "record's state; no checks), 1 reader",
             SIDE_PUB_IDLE, RK_PROBE, TABLE_N, o1k, 1, P->ops_fast);
    spec_set(E_PROBE_IX, "floor_probe_index_1r_ns",
             "the same bare probe without the record: the index alone, 1 reader", SIDE_PUB_IDLE,
             RK_PROBE_IX, TABLE_N, o1k, 1, P->ops_fast);
    spec_set(E_ZC_BUSY, "zc_pid_busy_neighbour_ns",
             "control: section state by pid, publisher idle but its CPU busy", SIDE_PUB_BUSY,
             RK_ZC_PID, TABLE_N, o1k, 1, P->ops_fast);
    spec_set(E_ZC_10K, "zc_pid_10000rec_ns", "section: state by pid, 10,000-record table",
             SIDE_PUB_IDLE, RK_ZC_PID, BIG_N, o10k, 1, P->ops_fast);
    spec_set(E_COPY_10K, "copy_pid_10000rec_ns", "procbus_get_pid, 10,000-record table",
             SIDE_PUB_IDLE, RK_COPY_PID, BIG_N, o10k, 1, P->ops_fast);
    spec_set(E_SOCK_XCPU, "socket_xcpu_1r_ns", "unix-socket query, server on the other CPU",
             SIDE_SOCKET_XCPU, RK_SOCKET, TABLE_N, o1k, 1, P->ops_socket);
    spec_set(E_LIST100, "list_100_us", "procbus_list of 100 records, then count by state, sum RSS",
             SIDE_PUB_IDLE, RK_LIST, 100, o1k, 1, P->ops_list);
    spec_set(E_LIST10K, "list_10000_us",
             "procbus_list of 10,000 records, then count by state, sum RSS", SIDE_PUB_IDLE, RK_LIST,
             BIG_N, o10k, 1, P->ops_big);
    spec_set(E_ITER10K, "walk_10000_us",
             "section walk of 10,000 records: count by state, sum RSS (no copy)", SIDE_PUB_IDLE,
             RK_ITER, BIG_N, o10k, 1, P->ops_big);
    spec_set(E_ITER10K_CHURN, "walk_10000_churn_us",
             "the same walk, publisher committing at full speed", SIDE_PUB_CHURN, RK_ITER, BIG_N,
             o10k, 1, P->ops_big);
    spec_set(E_ALLOC, "allocs_per_read",
             "allocations per read (sections by pid/name/walk, get_pid, list)", SIDE_PUB_CHURN,
             RK_ALLOC, TABLE_N, o1k, 1, 0);
    spec_set(E_C100, "commit_1change_100_us", "commit, 1 changed record, 100-record table",
             SIDE_COMMIT, RK_ALLOC, 100, NULL, 0, 0);
    spec_set(E_C1K, "commit_1change_1000_us", "commit, 1 changed record, 1,000-record table",
             SIDE_COMMIT, RK_ALLOC, 1000, NULL, 0, 0);
    spec_set(E_C10K, "commit_1change_10000_us", "commit, 1 changed record, 10,000-record table",
             SIDE_COMMIT, RK_ALLOC, 10000, NULL, 0, 0);
}

/* ---- figures over rounds ---- */

static double g_med(const struct bus_run *r)
{
    return r->med;
}

static double g_p99(const struct bus_run *r)
{
    return r->p99;
}

static double g_rate(const struct bus_run *r)
{
    return r->other_rate;
}

static double g_retries(const struct bus_run *r)
{
    return r->retries;
}

static double g_eagain(const struct bus_run *r)
{
    return (double)r->eagain;
}

static double g_allocs(const struct bus_run *r)
{
    return r->reads ? (double)r->allocs / (double)r->reads : NAN;
}

/* A figure of one benchmark across the rounds: median, smallest, largest (NAN: a round failed). */
static double across(const struct spec *sp, int rounds, double (*get)(const struct bus_run *),
                     double scale, double *lo, double *hi)
{
    double v[MAX_ROUNDS], med;
    int i;

    for (i = 0; i < rounds; i++) {
        if (!sp->r[i].ok) {
            *lo = *hi = NAN;
            return NAN;
        }
        v[i] = get(&sp->r[i]) * scale;
    }
    med = median(v, (unsigned)rounds);
    *lo = v[0];
    *hi = v[rounds - 1];
    return med;
}

static double fig(const char *key, const char *label, const struct spec *sp, int rounds,
                  double (*get)(const struct bus_run *), double scale, const char *unit, enum tgt t,
                  double target, int table)
{
    double lo, hi, med = across(sp, rounds, get, scale, &lo, &hi);
    add_row(key, label, med, lo, hi, unit, t, target, table);
    return med;
}

/* The ratio a/b of two benchmarks' medians, taken per round (same conditions), over rounds. */
static double ratio(const char *key, const char *label, const struct spec *a, const struct spec *b,
                    int rounds, enum tgt t, double target, int table)
{
    double v[MAX_ROUNDS], med = NAN, lo = NAN, hi = NAN;
    int i;

    for (i = 0; i < rounds; i++) {
        if (!a->r[i].ok || !b->r[i].ok || !(b->r[i].med > 0))
            break;
        v[i] = a->r[i].med / b->r[i].med;
    }
    if (i == rounds) {
        med = median(v, (unsigned)rounds);
        lo = v[0];
        hi = v[rounds - 1];
    }
    add_row(key, label, med, lo, hi, "x", t, target, table);
    return med;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: procbus-bench [--quick] [--rounds N] [--json PATH] [--help]\n"
            "\n"
            "Asks \"what is the state of process PID?\" across processes seven ways - a bare\n"
            "seqlock read of one cache line (the floor), the zero-copy section by pid and by\n"
            "name, the copying procbus_get_pid, a process-shared rwlock and mutex, a unix-socket\n"
            "query - with 1 reader, 10 readers and 1 reader beside a writer at full speed; the\n"
            "floor of a lookup (a bare probe of the segment with no checks, with and without\n"
            "the record); then whole-table reads, allocations and commits. Prints markdown\n"
            "tables on stdout (medians and p99 of per-batch means, ratios, targets and\n"
            "verdicts), progress on stderr.\n"
            "\n"
            "  --quick      shorter runs, 3 rounds (well under a minute)\n"
            "  --rounds N   repeat the whole suite N times (1-9; default 5, --quick 3); figures\n"
            "               are the median round, with the range\n"
            "  --json PATH  also write every figure as flat JSON keys to PATH\n"
            "  --help       this text\n"
            "\n"
            "Exit status: 0 when every benchmark ran (targets may still be MISSed), 1 when a\n"
            "benchmark failed to run or a read returned a wrong record, 2 on bad usage.\n");
}

/* Every figure as a row (the matrix cells JSON-only), then the report on stdout. */
static void report(const struct params *P, const struct machine *m)
{
    const int R = P->rounds;
    char note[400], key[96], label[200];
    int c, r;

    /* the headline figures, with the targets */
    fig("zc_pid_1r_ns", "section: state by pid, 1 reader (median ns/op)", &S[MX(C_ZC_PID, R_ONE)],
        R, g_med, 1, "ns/op", T_LE, 10, 1);
    fig("floor_1r_ns", "floor: bare seqlock read of one cache line, same round",
        &S[MX(C_FLOOR, R_ONE)], R, g_med, 1, "ns/op", T_NONE, 0, 1);
    ratio("zc_pid_over_floor_1r", "section by pid / floor, 1 reader", &S[MX(C_ZC_PID, R_ONE)],
          &S[MX(C_FLOOR, R_ONE)], R, T_LE, 2, 1);
    ratio("rwlock_over_zc_pid_1r", "rwlock / section by pid, 1 reader", &S[MX(C_RWLOCK, R_ONE)],
          &S[MX(C_ZC_PID, R_ONE)], R, T_GE, 3, 1);
    ratio("rwlock_over_zc_pid_10r", "rwlock / section by pid, 10 readers", &S[MX(C_RWLOCK, R_TEN)],
          &S[MX(C_ZC_PID, R_TEN)], R, T_GE, 10, 1);
    ratio("rwlock_over_zc_pid_writer", "rwlock / section by pid, writer at full speed",
          &S[MX(C_RWLOCK, R_WRITER)], &S[MX(C_ZC_PID, R_WRITER)], R, T_GE, 20, 1);
    ratio("socket_over_zc_pid_1r", "unix-socket query / section by pid, 1 reader",
          &S[MX(C_SOCKET, R_ONE)], &S[MX(C_ZC_PID, R_ONE)], R, T_GE, 1000, 1);
    fig("allocs_per_read", S[E_ALLOC].label, &S[E_ALLOC], R, g_allocs, 1, "allocs/op", T_EQ, 0, 1);
    /* every cell of the matrix, and its ratios to the floor and to the zero-copy pid read */
    for (r = 0; r < R_COUNT; r++)
        for (c = 0; c < C_COUNT; c++) {
            const struct spec *sp = &S[MX(c, r)];
            snprintf(key, sizeof(key), "%s_%s_ns", cols[c].key, mrows[r].key);
            fig(key, sp->label, sp, R, g_med, 1, "ns/op", T_NONE, 0, 0);
            snprintf(key, sizeof(key), "%s_%s_p99_ns", cols[c].key, mrows[r].key);
            fig(key, sp->label, sp, R, g_p99, 1, "ns/op", T_NONE, 0, 0);
            snprintf(key, sizeof(key), "%s_%s_retries_per_op", cols[c].key, mrows[r].key);
            fig(key, sp->label, sp, R, g_retries, 1, "retries/op", T_NONE, 0, 0);
            snprintf(key, sizeof(key), "%s_%s_eagain", cols[c].key, mrows[r].key);
            fig(key, sp->label, sp, R, g_eagain, 1, "reads", T_NONE, 0, 0);
            if (r == R_WRITER) {
                snprintf(key, sizeof(key), "%s_writer_updates_per_s", cols[c].key);
                fig(key, "the other side's commits or updates per second", sp, R, g_rate, 1, "/s",
                    T_NONE, 0, 0);
            }
            if (c != C_FLOOR) {
                snprintf(key, sizeof(key), "%s_over_floor_%s", cols[c].key, mrows[r].key);
                snprintf(label, sizeof(label), "%s / floor, %s", cols[c].head, mrows[r].head);
                ratio(key, label, sp, &S[MX(C_FLOOR, r)], R, T_NONE, 0, 0);
            }
            if (c != C_ZC_PID && c != C_FLOOR) {
                snprintf(key, sizeof(key), "%s_over_zc_pid_%s", cols[c].key, mrows[r].key);
                snprintf(label, sizeof(label), "%s / zero-copy pid, %s", cols[c].head,
                         mrows[r].head);
                ratio(key, label, sp, &S[MX(C_ZC_PID, r)], R, T_NONE, 0, 0);
            }
        }
    ratio("zc_pid_over_floor_1000lines_1r", "section by pid / floor over 1,000 lines, 1 reader",
          &S[MX(C_ZC_PID, R_ONE)], &S[E_FLOOR_N], R, T_NONE, 0, 1);
    ratio("zc_pid_over_probe_1r", "section by pid / bare probe: what the checks and the API cost",
          &S[MX(C_ZC_PID, R_ONE)], &S[E_PROBE], R, T_NONE, 0, 1);
    ratio("rwlock_over_probe_1r",
          "rwlock / bare probe, 1 reader: the most any reader of this layout could show",
          &S[MX(C_RWLOCK, R_ONE)], &S[E_PROBE], R, T_NONE, 0, 1);
    ratio("socket_over_probe_1r",
          "unix-socket query / bare probe, 1 reader: the most any reader of this layout could show",
          &S[MX(C_SOCKET, R_ONE)], &S[E_PROBE], R, T_NONE, 0, 1);
    ratio("socket_over_probe_index_1r",
          "unix-socket query / bare probe of the index alone (no record line): the most any "
          "reader that probes a pid index could show",
          &S[MX(C_SOCKET, R_ONE)], &S[E_PROBE_IX], R, T_NONE, 0, 1);
    for (c = E_FLOOR_N; c <= E_ITER10K_CHURN; c++) {
        int us = S[c].kind == RK_LIST || S[c].kind == RK_ITER;
        fig(S[c].key, S[c].label, &S[c], R, g_med, us ? 1e-3 : 1, us ? "us/op" : "ns/op", T_NONE, 0,
            1);
    }
    ratio("list_over_walk_10000", "procbus_list + aggregate / section walk, 10,000 records",
          &S[E_LIST10K], &S[E_ITER10K], R, T_NONE, 0, 1);
    fig("walk_10000_churn_eagain", "walks that gave up (-EAGAIN) under full-speed commits",
        &S[E_ITER10K_CHURN], R, g_eagain, 1, "walks", T_NONE, 0, 1);
    fig("walk_10000_churn_retries_per_op", "retries per walk under full-speed commits",
        &S[E_ITER10K_CHURN], R, g_retries, 1, "retries/op", T_NONE, 0, 1);
    for (c = E_C100; c <= E_C10K; c++)
        fig(S[c].key, S[c].label, &S[c], R, g_med, 1, "us/commit", c == E_C10K ? T_LE : T_NONE, 20,
            1);

    snprintf(note, sizeof(note),
             "value: median over %d rounds (each round: fresh processes and segments; per run the "
             "median of per-batch mean ns/op, %u ops per batch, %.2f s per run); range: smallest "
             "and largest round. Ratios are taken per round, then the median.",
             R, P->ops_fast, P->budget_ns / 1e9);
    print_rows("procbus", P->quick ? "quick" : "full", m, note);
    if (ncpus < 2)
        printf("\nnote: only one CPU is usable: the other side shares it with the reader.\n");

    printf("\n### The matrix: state of one process, median / p99 of per-batch ns/op\n\n|  |");
    for (c = 0; c < C_COUNT; c++)
        printf(" %s |", cols[c].head);
    printf("\n|---|");
    for (c = 0; c < C_COUNT; c++)
        printf("---:|");
    printf("\n");
    for (r = 0; r < R_COUNT; r++) {
        printf("| %s |", mrows[r].head);
        for (c = 0; c < C_COUNT; c++) {
            double lo, hi, md = across(&S[MX(c, r)], R, g_med, 1, &lo, &hi);
            double p = across(&S[MX(c, r)], R, g_p99, 1, &lo, &hi);
            char a[32], b[32];
            fmt_val(a, sizeof(a), md);
            fmt_val(b, sizeof(b), p);
            printf(" %s / %s |", a, b);
        }
        printf("\n");
    }
    printf("| writer's updates/s (commits for procbus) |");
    for (c = 0; c < C_COUNT; c++) {
        double lo, hi, v = across(&S[MX(c, R_WRITER)], R, g_rate, 1, &lo, &hi);
        char a[32];
        fmt_val(a, sizeof(a), v);
        printf(" %s |", a);
    }
    printf("\n\n### Ratios (per-round median ratio): each column / zero-copy pid, and / floor\n\n"
           "| row | zero-copy pid / floor |");
    for (c = 0; c < C_COUNT; c++)
        if (c != C_FLOOR && c != C_ZC_PID)
            printf(" %s / zc pid |", cols[c].head);
    printf("\n|---|---:|");
    for (c = 2; c < C_COUNT; c++)
        printf("---:|");
    printf("\n");
    for (r = 0; r < R_COUNT; r++) {
        char a[32];
        int i;
        printf("| %s |", mrows[r].head);
        for (i = 0; i < nrows; i++) { /* the ratio rows recorded above, by key */
            snprintf(key, sizeof(key), "zc_pid_over_floor_%s", mrows[r].key);
            if (strcmp(rows[i].key, key) == 0) {
                fmt_val(a, sizeof(a), rows[i].value);
                printf(" %s |", a);
                break;
            }
        }
        for (c = 0; c < C_COUNT; c++) {
            if (c == C_FLOOR || c == C_ZC_PID)
                continue;
            snprintf(key, sizeof(key), "%s_over_zc_pid_%s", cols[c].key, mrows[r].key);
            for (i = 0; i < nrows; i++)
                if (strcmp(rows[i].key, key) == 0) {
                    fmt_val(a, sizeof(a), rows[i].value);
                    printf(" %s |", a);
                    break;
                }
        }
        printf("\n");
    }
}

/* bench_util.h's flat JSON plus "machine" (one line), "quick" and "rounds". */
static int write_json(const char *path, const struct machine *m, int quick, int rounds)
{
    char tmp[PATH_MAX + 16], buf[400];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, quick ? "quick" : "full");

    if (fp == NULL)
        return -1;
    snprintf(buf, sizeof(buf), "%s, %d CPUs, %s", m->cpu, m->online, m->kernel);
    fprintf(fp, ",\n  \"machine\": ");
    json_str(fp, buf);
    fprintf(fp, ",\n  \"quick\": %s,\n  \"rounds\": %d", quick ? "true" : "false", rounds);
    return json_end(fp, tmp, path);
}

#endif /* PBB_REPORT_H */
