/* scrape-bench.c - publish N records, run procbus-exporter on them, time scrapes over loopback. */
/*
 * Beside every /metrics figure, in the same run, its floor: the same HTTP exchange for the
 * landing page "/" (a fixed 150-byte body: connection, request, libmicrohttpd, response) on the
 * same exporter. With BASELINE (another exporter binary, e.g. one built from an older commit)
 * both exporters serve the same segment and are scraped in alternating rounds, so the two are
 * compared under the same load.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus_pub.h"
#include "util.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One GET of `path`; the response size, or -1. */
static long fetch(int port, const char *path, char *buf, size_t cap)
{
    char req[128];
    struct sockaddr_in sa = {0};
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rl;

    rl = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, req, (size_t)rl) != (ssize_t)rl) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? (long)len : -1;
}

/* Start exporter `exe` on a free loopback port for segment `seg`: its port, or -1. */
static int start_exporter(const char *exe, const char *seg, pid_t *pid)
{
    char line[128];
    size_t len = 0;
    int pfd[2], port = -1;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    *pid = fork();
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        execl(exe, exe, "--listen", "127.0.0.1:0", "-s", seg, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    while (len < sizeof(line) - 1 && read(pfd[0], line + len, 1) == 1 && line[len] != '\n')
        len++;
    line[len] = '\0';
    close(pfd[0]);
    if (*pid < 0 || sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "scrape-bench: %s did not start (%s)\n", exe, line);
        return -1;
    }
    return port;
}

/* Latencies of one exporter, /metrics and its floor "/", ns. */
struct lat {
    uint64_t *m, *f;
    int nm, nf;
    long bytes;
};

static void report_lat(const char *what, struct lat *l)
{
    qsort(l->m, (size_t)l->nm, sizeof(*l->m), cmp_u64);
    qsort(l->f, (size_t)l->nf, sizeof(*l->f), cmp_u64);
    printf("%s: /metrics p50_us=%.1f p99_us=%.1f max_us=%.1f; floor (GET /) p50_us=%.1f "
           "p99_us=%.1f; /metrics p50 over its floor %.1fx\n",
           what, l->m[l->nm / 2] / 1e3, l->m[(size_t)l->nm * 99 / 100] / 1e3, l->m[l->nm - 1] / 1e3,
           l->f[l->nf / 2] / 1e3, l->f[(size_t)l->nf * 99 / 100] / 1e3,
           (double)l->m[l->nm / 2] / (double)l->f[l->nf / 2]);
}

static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

#define ROUNDS 10

int main(int argc, char **argv)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_proc rec;
    char seg[64], *buf;
    int scrapes = argc > 2 ? atoi(argv[2]) : 1000, records = argc > 3 ? atoi(argv[3]) : 1000;
    const char *exe[2] = {argv[1], argc > 4 ? argv[4] : NULL};
    int nexe = exe[1] != NULL ? 2 : 1, port[2] = {-1, -1}, i, e, k, rc = 0, failed = 0;
    struct lat lat[2];
    pid_t ex[2] = {-1, -1};
    double load0 = loadavg();

    if (argc < 2 || scrapes < ROUNDS || records <= 0) {
        fprintf(stderr, "usage: scrape-bench EXPORTER [SCRAPES [RECORDS [BASELINE_EXPORTER]]]\n");
        return 2;
    }
    snprintf(seg, sizeof(seg), "pbexp-bench-%d", (int)getpid());
    o.segment = seg;
    o.capacity = (uint32_t)records * 2;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0) {
        fprintf(stderr, "scrape-bench: cannot create %s: %s\n", seg, strerror(-rc));
        return 1;
    }
    for (i = 0; i < records; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.id = procbus_pub_new_id(p);
        rec.pid = 100000 + i;
        rec.ppid = 1;
        rec.pgid = rec.pid;
        rec.state = (uint16_t)(1 + i % 8);
        rec.restarts = (uint32_t)(i % 5);
        rec.exit_kind = i % 3 == 0 ? PROCBUS_EXIT_CODE : PROCBUS_EXIT_NONE;
        rec.start_realtime_ns = 1700000000000000000ull + (uint64_t)i;
        rec.cpu_ns = (uint64_t)i * 12345678u;
        rec.rss_bytes = (uint64_t)i * 4096u;
        snprintf(rec.name, sizeof(rec.name), "program-%04d", i);
        snprintf(rec.comm, sizeof(rec.comm), "prog%d", i);
        if ((rc = procbus_pub_upsert(p, &rec)) < 0)
            break;
    }
    if (rc < 0 || (rc = procbus_pub_commit(p)) < 0) {
        fprintf(stderr, "scrape-bench: cannot publish: %s\n", strerror(-rc));
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
        return 1;
    }
    procbus_pub_heartbeat(p);

    buf = malloc(8 << 20);
    for (e = 0; e < nexe; e++) {
        lat[e].m = calloc((size_t)scrapes, sizeof(uint64_t));
        lat[e].f = calloc((size_t)scrapes, sizeof(uint64_t));
        lat[e].nm = lat[e].nf = 0;
        port[e] = start_exporter(exe[e], seg, &ex[e]);
        if (port[e] < 0 || buf == NULL || lat[e].m == NULL || lat[e].f == NULL)
            failed = 1;
        for (i = 0; !failed && i < 20; i++) /* warm-up: buffers grown, pages touched */
            fetch(port[e], "/metrics", buf, 8 << 20);
    }
    if (!failed && getenv("SCRAPE_BENCH_PAUSE")) { /* time to attach strace -c -p EXPORTER */
        fprintf(stderr, "exporter pid %d; press enter\n", (int)ex[0]);
        getchar();
    }
    /* rounds alternate between the exporters; in each, /metrics then the floor */
    for (k = 0; !failed && k < ROUNDS; k++)
        for (e = 0; !failed && e < nexe; e++)
            for (i = 0; !failed && i < 2 * (scrapes / ROUNDS); i++) {
                int metrics = i < scrapes / ROUNDS;
                uint64_t t0 = pb_now_ns(CLOCK_MONOTONIC), t;
                long bytes = fetch(port[e], metrics ? "/metrics" : "/", buf, 8 << 20);
                t = pb_now_ns(CLOCK_MONOTONIC) - t0;
                if (bytes < 0) {
                    fprintf(stderr, "scrape-bench: a scrape of %s failed\n", exe[e]);
                    failed = 1;
                } else if (metrics) {
                    lat[e].m[lat[e].nm++] = t;
                    lat[e].bytes = bytes;
                } else {
                    lat[e].f[lat[e].nf++] = t;
                }
                if (i % 64 == 0)
                    procbus_pub_heartbeat(p);
            }
    for (e = 0; e < nexe; e++)
        if (ex[e] > 0) {
            int st;
            kill(ex[e], SIGTERM);
            waitpid(ex[e], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failed = 1;
        }
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    if (failed)
        return 1;
    printf("records=%d scrapes=%d response_bytes=%ld loadavg_start=%.2f loadavg_end=%.2f\n",
           records, lat[0].nm, lat[0].bytes, load0, loadavg());
    report_lat(exe[0], &lat[0]);
    if (nexe == 2) {
        report_lat(exe[1], &lat[1]);
        printf("speedup (p50 of %s over p50 of %s): %.2fx; response bytes %ld vs %ld\n", exe[1],
               exe[0], (double)lat[1].m[lat[1].nm / 2] / (double)lat[0].m[lat[0].nm / 2],
               lat[0].bytes, lat[1].bytes);
    }
    for (e = 0; e < nexe; e++) {
        free(lat[e].m);
        free(lat[e].f);
    }
    free(buf);
    return 0;
}
