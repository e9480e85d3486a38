/* procbus-bench.c - procbus reads (zero-copy, copying) and commits against locks, a socket, a
 * floor. */
#define _GNU_SOURCE
#include "procbus.h"
#include "procbus_pub.h"
#define BENCH_NAME     "procbus-bench"
#define BENCH_MAX_ROWS 200
#include "bench_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * One question, "what is the state of process PID?", asked across processes
 * seven ways side by side (the columns): a bare seqlock read of one cache line
 * (the floor: what any cross-process read costs at least), the zero-copy
 * section by pid and by name, the copying procbus_get_pid, a process-shared
 * rwlock and mutex around the same table, and a unix-socket query. Three
 * situations (the rows): one reader with the other side idle, ten reader
 * processes, one reader while the other side writes at full speed. Beside
 * them the floor of a lookup: a bare probe of the same segment without the
 * section's checks, with and without the record. Every
 * figure is measured beside its floor in the same round; a run's figures are
 * the median and p99 of its per-batch mean ns/op (ten readers: their batches
 * pooled), and a figure over rounds is the median round with the range.
 *
 * The program is split by concern into headers of this one translation unit
 * (bench_util.h keeps its state in statics): procbus-bench-proc.h (CPUs,
 * control block, children), -table.h (records, orders, lock tables, floor),
 * -sides.h (publisher, writers, socket server, commits), -readers.h (the timed
 * batches). This file: the suite, the rounds and the report.
 */
#include "procbus-bench-proc.h"
#include "procbus-bench-table.h"
#include "procbus-bench-sides.h"
#include "procbus-bench-readers.h"

#define MAX_ROUNDS  9
#define FLOOR_BYTES ((size_t)BIG_N * sizeof(struct floor_line)) /* the floor's lines */

struct params {
    int quick, rounds;
    double budget_ns;                                 /* measured time per run (per reader) */
    unsigned ops_fast, ops_socket, ops_list, ops_big; /* ops per batch */
    unsigned cwarm, cbatches, cops;                   /* commits */
    unsigned alloc_reads;
};

static void params_init(struct params *P, int quick)
{
    memset(P, 0, sizeof(*P));
    P->quick = quick;
    P->ops_fast = 2000;
    P->ops_socket = 20;
    P->ops_list = 20;
    P->ops_big = 1;
    if (!quick) {
        P->budget_ns = 0.5e9;
        P->cwarm = 3, P->cbatches = 100, P->cops = 1000;
        P->alloc_reads = 200000;
    } else {
        P->budget_ns = 0.1e9;
        P->cwarm = 2, P->cbatches = 30, P->cops = 500;
        P->alloc_reads = 50000;
    }
}

static double t_start; /* for the progress lines */
static int failures;

static void report_child_error(const char *bench, const char *msg)
{
    fprintf(stderr, "procbus-bench: %s: %s\n", bench, msg[0] ? msg : "child failed");
    failures++;
}

/* ---- one benchmark run ---- */

enum side {
    SIDE_PUB_IDLE,      /* publisher process, idle after filling the table */
    SIDE_PUB_CHURN,     /* publisher committing at full speed */
    SIDE_PUB_BUSY,      /* publisher idle, its process burning CPU (control) */
    SIDE_LOCK_IDLE,     /* shared lock table, no writer */
    SIDE_LOCK_WRITER,   /* shared lock table, writer at full speed (the reader's lock kind) */
    SIDE_SOCKET,        /* unix socket query server on the reader's CPU */
    SIDE_SOCKET_XCPU,   /* the same, server on the other CPU */
    SIDE_SOCKET_WRITER, /* server on the reader's CPU, a writer feeding it from the other */
    SIDE_FLOOR_IDLE,    /* the floor's line, no writer */
    SIDE_FLOOR_WRITER,  /* the floor's line rewritten at full speed */
    SIDE_COMMIT         /* commits only (commit_main), no readers */
};

/* One benchmark of the suite, with its result in every round. */
struct bus_run {
    double med, p99;   /* of the per-batch means, ns/op (commits: us/commit) */
    double retries;    /* per op */
    double other_rate; /* commits/s or writer updates/s while measuring */
    uint64_t allocs, reads, eagain, forced_laps;
    int ok;
};

struct spec {
    const char *key, *label;
    enum side side;
    enum rkind kind;
    uint32_t n;
    const struct order *ord;
    int nreaders;
    unsigned ops;
    struct bus_run r[MAX_ROUNDS];
};

static double g_pool[NREADERS * MAX_BATCHES]; /* the run's samples, pooled over its readers */

static void run_commit(const struct params *P, struct spec *sp, struct bus_run *out)
{
    struct ctl *c = ctl_new();
    char seg[64];
    struct commit_args ca;
    int rc;

    seg_name(seg, sizeof(seg));
    ca = (struct commit_args){c, seg, sp->n, cpu_a(), P->cwarm, P->cbatches, P->cops};
    rc = reap(spawn(commit_main, &ca));
    if (rc != 0 || !c->res[0].done) {
        char m[256];
        snprintf(m, sizeof(m), "%s (exit %d)", c->res[0].msg, rc);
        report_child_error(sp->label, m);
    } else {
        memcpy(g_pool, c->samples[0], c->res[0].batches * sizeof(double));
        out->med = median(g_pool, c->res[0].batches) / 1000.0; /* ns -> us */
        out->p99 = pct(g_pool, (int)c->res[0].batches, 99) / 1000.0;
        out->forced_laps = c->pub_forced_laps;
        out->ok = 1;
    }
    seg_cleanup();
    ctl_free(c);
}

/* Start the side across from the readers; 0, or -1 (said). *other: its pid (or -1). */
static int start_side(const struct spec *sp, struct ctl *c, char *seg, size_t segcap,
                      struct flat **f, size_t *fsz, struct floor_line **line,
                      int sv[NREADERS + 1][2], pid_t *other, pid_t *writer)
{
    static struct pub_args pa;
    static struct writer_args wa;
    static struct server_args sa;
    static struct sock_writer_args swa;
    static struct floor_args fa;
    uint32_t bk;
    int i;

    switch (sp->side) {
    case SIDE_PUB_IDLE:
    case SIDE_PUB_CHURN:
    case SIDE_PUB_BUSY:
        seg_name(seg, segcap);
        pa = (struct pub_args){c, seg, sp->n,
                               sp->side == SIDE_PUB_CHURN  ? PUB_CHURN
                               : sp->side == SIDE_PUB_BUSY ? PUB_BUSY
                                                           : PUB_IDLE,
                               cpu_b()};
        *other = spawn(publisher_main, &pa);
        return 0;
    case SIDE_LOCK_IDLE:
    case SIDE_LOCK_WRITER:
        *fsz = flat_size(sp->n, &bk);
        *f = mmap(NULL, *fsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (*f == MAP_FAILED || flat_build(*f, sp->n, 1) < 0) {
            report_child_error(sp->label, "cannot build the lock table");
            return -1;
        }
        if (sp->side == SIDE_LOCK_WRITER) {
            wa = (struct writer_args){c, *f, sp->kind == RK_MUTEX, cpu_b()};
            *other = spawn(writer_main, &wa);
        } else {
            st(&c->pub_ready, 1);
        }
        return 0;
    case SIDE_SOCKET:
    case SIDE_SOCKET_XCPU:
    case SIDE_SOCKET_WRITER:
        nsock_ends = 0;
        for (i = 0; i < sp->nreaders + (sp->side == SIDE_SOCKET_WRITER); i++) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) < 0) {
                report_child_error(sp->label, strerror(errno));
                return -1;
            }
            sock_ends[nsock_ends++] = sv[i][0];
            sock_ends[nsock_ends++] = sv[i][1];
        }
        memset(&sa, 0, sizeof(sa));
        sa.ctl = c;
        sa.nfds = sp->nreaders;
        for (i = 0; i < sp->nreaders; i++)
            sa.fds[i] = sv[i][1];
        sa.wfd = sp->side == SIDE_SOCKET_WRITER ? sv[sp->nreaders][1] : -1;
        sa.n = sp->n;
        sa.cpu = sp->side == SIDE_SOCKET_XCPU ? cpu_b() : cpu_a();
        *other = spawn(server_main, &sa);
        if (sp->side == SIDE_SOCKET_WRITER) {
            if (wait_flag(&c->pub_ready, 1, &c->pub_err) < 0)
                return -1;
            st(&c->pub_ready, 0);
            swa = (struct sock_writer_args){c, sv[sp->nreaders][0], sp->n, cpu_b()};
            *writer = spawn(sock_writer_main, &swa);
        }
        return 0;
    case SIDE_FLOOR_IDLE:
    case SIDE_FLOOR_WRITER:
        *line = mmap(NULL, FLOOR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (*line == MAP_FAILED) {
            report_child_error(sp->label, "cannot map the floor's line");
            return -1;
        }
        if (sp->side == SIDE_FLOOR_WRITER) {
            fa = (struct floor_args){c, *line, cpu_b()};
            *other = spawn(floor_writer_main, &fa);
        } else {
            st(&c->pub_ready, 1);
        }
        return 0;
    case SIDE_COMMIT:
        break;
    }
    return -1;
}

static void run_bench(const struct params *P, struct spec *sp, struct bus_run *out)
{
    struct ctl *c = ctl_new();
    char seg[64] = "";
    struct reader_args ra[NREADERS];
    pid_t other = -1, writer = -1, rpid[NREADERS];
    struct flat *f = NULL;
    struct floor_line *line = NULL;
    size_t fsz = 0, npool = 0;
    int sv[NREADERS + 1][2], i, bad = 0;
    uint64_t ops_total = 0, retries = 0;

    memset(sv, -1, sizeof(sv));
    if (start_side(sp, c, seg, sizeof(seg), &f, &fsz, &line, sv, &other, &writer) < 0 ||
        wait_flag(&c->pub_ready, 1, &c->pub_err) < 0) {
        report_child_error(sp->label,
                           c->pub_msg[0] ? c->pub_msg : "publisher/writer/server did not start");
        goto out;
    }
    for (i = 0; i < sp->nreaders; i++) {
        int rcpu = sp->nreaders == 1 ? cpu_a() : cpus[i % ncpus];
        ra[i] = (struct reader_args){.ctl = c,
                                     .idx = i,
                                     .cpu = rcpu,
                                     .kind = sp->kind,
                                     .seg = seg,
                                     .ord = sp->ord,
                                     .n = sp->n,
                                     .f = f,
                                     .line = line,
                                     .fd = sv[i][0],
                                     .ops = sp->kind == RK_ALLOC ? P->alloc_reads : sp->ops,
                                     .max_batches = MAX_BATCHES,
                                     .budget_ns = P->budget_ns};
        rpid[i] = spawn(reader_main, &ra[i]);
    }
    for (i = 0; i < nsock_ends; i++) /* only the children hold the socket ends now */
        close(sock_ends[i]);
    nsock_ends = 0;
    if (wait_flag(&c->nready, sp->nreaders, NULL) < 0) {
        report_child_error(sp->label, "readers did not start");
        goto out;
    }
    st(&c->go, 1);
    for (i = 0; i < sp->nreaders; i++) {
        int rc = reap(rpid[i]);
        struct stat_out *r = &c->res[i];
        if (rc != 0 || !r->done) {
            char m[256];
            snprintf(m, sizeof(m), "reader %d: %s (exit %d)", i, r->msg, rc);
            report_child_error(sp->label, m);
            bad = 1;
            continue;
        }
        memcpy(g_pool + npool, c->samples[i], r->batches * sizeof(double));
        npool += r->batches;
        ops_total += r->ops;
        retries += r->retries;
        out->allocs += r->allocs;
        out->reads += r->reads;
        out->eagain += r->eagain;
        out->other_rate += r->other_rate / sp->nreaders;
    }
    st(&c->stop, 1);
    for (i = 0; i < 2; i++) {
        pid_t pid = i == 0 ? writer : other;
        int rc;
        if (pid <= 0)
            continue;
        rc = reap(pid);
        if (rc != 0 || c->pub_err) {
            report_child_error(sp->label,
                               c->pub_msg[0] ? c->pub_msg : "publisher/writer/server failed");
            bad = 1;
        }
    }
    writer = other = -1;
    if (!bad) {
        out->med = sp->kind == RK_ALLOC ? 0 : median(g_pool, (unsigned)npool);
        out->p99 = sp->kind == RK_ALLOC ? 0 : pct(g_pool, (int)npool, 99);
        out->retries = ops_total ? (double)retries / (double)ops_total : 0;
        out->forced_laps = c->pub_forced_laps;
        out->ok = 1;
    }
out:
    st(&c->stop, 1);
    st(&c->go, 1);
    for (i = 0; i < nsock_ends; i++)
        close(sock_ends[i]);
    nsock_ends = 0;
    if (nchildren > 0) {
        /* something went wrong: give well-behaved children a moment, then kill */
        sleep_us(200000);
        kill_children();
    }
    seg_cleanup();
    if (f != NULL && f != MAP_FAILED) {
        flat_destroy(f);
        munmap(f, fsz);
    }
    if (line != NULL && line != MAP_FAILED)
        munmap(line, FLOOR_BYTES);
    ctl_free(c);
}

static void run_spec(const struct params *P, struct spec *sp, int round)
{
    struct bus_run *out = &sp->r[round];

    fprintf(stderr, "procbus-bench: [%6.1fs] %s\n", ((double)mono() - t_start) / 1e9, sp->label);
    memset(out, 0, sizeof(*out));
    out->med = out->p99 = NAN;
    if (sp->side == SIDE_COMMIT)
        run_commit(P, sp, out);
    else
        run_bench(P, sp, out);
}

#include "procbus-bench-report.h"

int main(int argc, char **argv)
{
    struct params P;
    struct machine m;
    struct order ord1k, ord10k;
    const char *json = NULL;
    int quick = 0, rounds = 0, i, k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strncmp(argv[i], "--json=", 7) == 0) {
            json = argv[i] + 7;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "procbus-bench: --rounds takes 1 to %d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "procbus-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (rounds == 0)
        rounds = quick ? 3 : 5;
    parent_pid = getpid();
    t_start = (double)mono();
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);
    cpus_init();
    machine_start(&m);
    params_init(&P, quick);
    P.rounds = rounds;
    order_init(&ord1k, TABLE_N);
    order_init(&ord10k, BIG_N);
    suite_init(&P, &ord1k, &ord10k);

    for (k = 0; k < rounds; k++) {
        fprintf(stderr, "procbus-bench: round %d of %d (load %.2f)\n", k + 1, rounds, loadavg1());
        for (i = 0; i < NSPECS; i++)
            run_spec(&P, &S[i], k);
    }
    machine_end(&m);

    report(&P, &m);
    if (json != NULL && write_json(json, &m, quick, rounds) < 0)
        failures++;
    return failures ? 1 : 0;
}
