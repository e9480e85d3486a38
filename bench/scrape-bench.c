/* scrape-bench.c - publish N records, run procbus-exporter on them, time scrapes over loopback. */
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

/* One GET /metrics; the body size, or -1. */
static long scrape(int port, char *buf, size_t cap)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in sa = {0};
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? (long)len : -1;
}

int main(int argc, char **argv)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_proc rec;
    char seg[64], line[128], *buf;
    int scrapes = argc > 2 ? atoi(argv[2]) : 1000, records = argc > 3 ? atoi(argv[3]) : 1000;
    int pfd[2], port = 0, i, rc;
    uint64_t *lat;
    size_t len = 0;
    long bytes = 0;
    pid_t ex;

    if (argc < 2 || scrapes <= 0 || records <= 0) {
        fprintf(stderr, "usage: scrape-bench EXPORTER [SCRAPES [RECORDS]]\n");
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

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return 1;
    ex = fork();
    if (ex == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        execl(argv[1], argv[1], "--listen", "127.0.0.1:0", "-s", seg, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    while (len < sizeof(line) - 1 && read(pfd[0], line + len, 1) == 1 && line[len] != '\n')
        len++;
    line[len] = '\0';
    close(pfd[0]);
    if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "scrape-bench: exporter did not start (%s)\n", line);
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
        return 1;
    }
    buf = malloc(8 << 20);
    lat = calloc((size_t)scrapes, sizeof(*lat));
    if (buf == NULL || lat == NULL)
        return 1;
    for (i = 0; i < 20; i++) /* warm-up: buffers grown, pages touched */
        scrape(port, buf, 8 << 20);
    if (getenv("SCRAPE_BENCH_PAUSE")) { /* time to attach strace -c -p EXPORTER */
        fprintf(stderr, "exporter pid %d; press enter\n", (int)ex);
        getchar();
    }
    for (i = 0; i < scrapes; i++) {
        uint64_t t0 = pb_now_ns(CLOCK_MONOTONIC);
        bytes = scrape(port, buf, 8 << 20);
        lat[i] = pb_now_ns(CLOCK_MONOTONIC) - t0;
        if (bytes < 0) {
            fprintf(stderr, "scrape-bench: scrape %d failed\n", i);
            break;
        }
        if (i % 64 == 0)
            procbus_pub_heartbeat(p);
    }
    kill(ex, SIGTERM);
    waitpid(ex, &rc, 0);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    if (bytes < 0)
        return 1;
    qsort(lat, (size_t)scrapes, sizeof(*lat), cmp_u64);
    printf("records=%d scrapes=%d response_bytes=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           records, scrapes, bytes, lat[scrapes / 2] / 1e3, lat[(size_t)scrapes * 99 / 100] / 1e3,
           lat[scrapes - 1] / 1e3);
    free(buf);
    free(lat);
    return WIFEXITED(rc) && WEXITSTATUS(rc) == 0 ? 0 : 1;
}
