/* test_exporter.c - procbus-exporter against a live procbusd: /metrics values, promtool,
 * Prometheus. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#include "procbus.h"
#include "daemon_harness.h"
#include "support.h"

#define BODY_MAX (1 << 20)

/* The known programs: one running, one FATAL, one stopped. */
static void start_daemon(struct daemon_h *h)
{
    pbt_start_daemon(h, "/tmp/pbexp-test",
                     "[program:web]\ncommand = sleep 1000\nstartsecs = 0\n"
                     "[program:bad]\ncommand = sh -c 'exit 1'\nstartsecs = 1\nstartretries = 0\n"
                     "[program:manual]\ncommand = sleep 1000\nautostart = false\n");
    assert_int_equal(pbt_wait_state(h, "web", PROCBUS_STATE_RUNNING, 60000, NULL), 0);
    assert_int_equal(pbt_wait_state(h, "bad", PROCBUS_STATE_FATAL, 60000, NULL), 0);
    assert_int_equal(pbt_wait_state(h, "manual", PROCBUS_STATE_STOPPED, 60000, NULL), 0);
}

/* Fork+exec argv with PR_SET_PDEATHSIG; stdout to *out_fd (a pipe) when non-NULL, stderr to
 * errpath. */
static pid_t spawn(char *const argv[], int *out_fd, const char *errpath)
{
    int p[2] = {-1, -1};
    pid_t pid;

    if (out_fd)
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int e = open(errpath ? errpath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int n = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(n, 0);
        dup2(out_fd ? p[1] : n, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
    }
    pbt_track_bg(pid, 1);
    return pid;
}

/* Start the exporter on 127.0.0.1:0 for `seg`; its port from the "listening on" line. */
static pid_t start_exporter(const char *seg, const char *errpath, int *port)
{
    char exe[256], line[128];
    char *argv[] = {exe, "--listen", "127.0.0.1:0", "-s", (char *)seg, NULL};
    size_t len = 0;
    int fd;
    pid_t pid;

    pbt_bin("procbus-exporter", exe, sizeof(exe));
    pid = spawn(argv, &fd, errpath);
    while (len < sizeof(line) - 1) { /* blocking read: the line or EOF (exporter died) */
        ssize_t n = read(fd, line + len, 1);
        if (n <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(fd);
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", port), 1);
    return pid;
}

/* Stop a background child with SIGTERM; its exit status. */
static int stop_child(pid_t pid)
{
    kill(pid, SIGTERM);
    pbt_track_bg(pid, 0);
    return pbt_wait_child(pid);
}

/* A tiny HTTP/1.0 GET over loopback. The status code (-1: no connection); body (NUL-ended) in buf.
 */
static int http_get(int port, const char *path, char *buf, size_t cap)
{
    struct sockaddr_in sa = {0};
    char req[1024], *body;
    size_t len = 0;
    ssize_t n;
    int fd, status = -1;

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

/* The value of the sample whose name+labels are exactly `series` (a line "series value"). */
static int sample(const char *body, const char *series, double *v)
{
    size_t n = strlen(series);
    const char *p = body;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == ' ') {
            *v = strtod(p + n + 1, NULL);
            return 0;
        }
        p += n;
    }
    return -1;
}

static double must_sample(const char *body, const char *series)
{
    double v = -1;
    if (sample(body, series, &v) != 0) {
        fprintf(stderr, "missing series %s in:\n%s\n", series, body);
        fail();
    }
    return v;
}

static int have_tool(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* Every state series of `prog` is present and exactly `want` is 1. */
static void check_one_hot(const char *body, const char *prog, const char *want)
{
    char series[160];
    for (unsigned i = 0; i < PROCBUS_STATE_COUNT_; i++) {
        const char *name = procbus_state_name(i);
        snprintf(series, sizeof(series), "procbus_program_state{program=\"%s\",state=\"%s\"}", prog,
                 name);
        assert_true(must_sample(body, series) == (strcmp(name, want) == 0 ? 1.0 : 0.0));
    }
}

static void test_metrics(void **state)
{
    struct daemon_h h;
    struct procbus_proc web, bad;
    char errpath[128], series[128], path[160], cmd[512];
    char *body = malloc(BODY_MAX);
    int port, i, st;
    double rss = 0;
    pid_t ex;
    (void)state;

    assert_non_null(body);
    start_daemon(&h);
    snprintf(errpath, sizeof(errpath), "%s/exporter.err", h.dir);
    ex = start_exporter(h.seg, errpath, &port);

    /* rss is sampled (sample_ms = 200): poll until it shows up */
    for (i = 0; i < 300; i++) {
        assert_int_equal(http_get(port, "/metrics", body, BODY_MAX), 200);
        if (sample(body, "procbus_program_resident_memory_bytes{program=\"web\"}", &rss) == 0 &&
            rss > 0)
            break;
        usleep(100000);
    }
    assert_true(rss > 0);
    assert_true(must_sample(body, "procbus_publisher_up") == 1.0);
    assert_true(must_sample(body, "procbus_publisher_epoch") >= 1.0);
    assert_true(must_sample(body, "procbus_publisher_heartbeat_age_seconds") >= 0.0);
    assert_true(must_sample(body, "procbus_events_lost_total") == 0.0);
    assert_true(must_sample(body, "procbus_tracer_drops_total") == 0.0);
    assert_true(must_sample(body, "procbus_log_bytes_lost_total") == 0.0);
    assert_true(must_sample(body, "procbus_records_dropped_total") == 0.0);
    check_one_hot(body, "web", "RUNNING");
    check_one_hot(body, "bad", "FATAL");
    check_one_hot(body, "manual", "STOPPED");
    assert_non_null(strstr(body, "# TYPE procbus_program_restarts_total counter\n"));
    assert_non_null(strstr(body, "# TYPE procbus_program_state gauge\n"));

    /* values agree with the reader's own copy (these fields do not change any more) */
    assert_int_equal(procbus_get_name(&h.r, "web", &web), 0);
    assert_int_equal(procbus_get_name(&h.r, "bad", &bad), 0);
    snprintf(series, sizeof(series), "procbus_program_restarts_total{program=\"bad\"}");
    assert_true(must_sample(body, series) == (double)bad.restarts);
    assert_true(must_sample(body, "procbus_program_restarts_total{program=\"web\"}") == 0.0);
    assert_true(must_sample(body, "procbus_program_restarts_total{program=\"manual\"}") == 0.0);
    assert_int_equal(bad.exit_kind, PROCBUS_EXIT_CODE);
    assert_true(must_sample(body, "procbus_program_last_exit_code{program=\"bad\"}") == 1.0);
    assert_true(sample(body, "procbus_program_last_exit_code{program=\"web\"}", &rss) != 0);
    {
        /* printed with 9 decimals and parsed back: equal to a microsecond, not to the ulp */
        double d = must_sample(body, "procbus_program_start_time_seconds{program=\"web\"}") -
                   (double)web.start_realtime_ns / 1e9;
        assert_true(d < 1e-6 && d > -1e-6);
    }
    assert_true(must_sample(body, "procbus_program_cpu_seconds_total{program=\"web\"}") >= 0.0);
    assert_true(must_sample(body, "procbus_program_descendants{program=\"web\"}") == 0.0);

    /* promtool validates the exposition */
    snprintf(path, sizeof(path), "%s/metrics.txt", h.dir);
    {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(body, f);
        fclose(f);
    }
    if (have_tool("promtool")) {
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
        st = system(cmd);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    } else {
        fprintf(stderr, "SKIP promtool check: promtool not installed "
                        "(Debian package prometheus; scripts/deps.sh)\n");
    }

    /* landing page, 404 */
    assert_int_equal(http_get(port, "/", body, BODY_MAX), 200);
    assert_non_null(strstr(body, "/metrics"));
    assert_int_equal(http_get(port, "/nope", body, BODY_MAX), 404);
    assert_int_equal(http_get(port, "/metricsx", body, BODY_MAX), 404);

    assert_int_equal(stop_child(ex), 0);
    assert_int_equal(pbt_term_daemon(&h), 0);
    pbt_remove_daemon(&h);
    free(body);
}

/* No segment: keep serving publisher_up 0, say why on stderr, pick the segment up once it exists.
 */
static void test_no_segment(void **state)
{
    struct daemon_h h;
    char errpath[] = "/tmp/pbexp-noseg-XXXXXX", *body = malloc(BODY_MAX), buf[512];
    int port, fd, i;
    double up = -1;
    ssize_t n;
    pid_t ex;
    (void)state;

    assert_non_null(body);
    fd = mkstemp(errpath);
    assert_true(fd >= 0);
    close(fd);
    ex = start_exporter("pbexp-no-such-segment", errpath, &port);
    for (i = 0; i < 2; i++) { /* a retry on each scrape: still up 0 */
        assert_int_equal(http_get(port, "/metrics", body, BODY_MAX), 200);
        assert_true(must_sample(body, "procbus_publisher_up") == 0.0);
        assert_null(strstr(body, "procbus_program_state"));
    }
    assert_int_equal(stop_child(ex), 0);
    fd = open(errpath, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(errpath);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "pbexp-no-such-segment"));
    assert_non_null(strstr(buf, "No such file"));

    /* the segment appears after the exporter started: the next scrape finds it */
    start_daemon(&h);
    pbt_unlink(h.seg); /* re-created below under the same name once the exporter runs */
    assert_int_equal(pbt_term_daemon(&h), 0);
    procbus_close(&h.r);
    ex = start_exporter(h.seg, NULL, &port);
    assert_int_equal(http_get(port, "/metrics", body, BODY_MAX), 200);
    assert_true(must_sample(body, "procbus_publisher_up") == 0.0);
    {
        char exe[256];
        pid_t d;
        char *argv[] = {exe, "-c", h.conf, NULL};
        pbt_bin("procbusd", exe, sizeof(exe));
        d = spawn(argv, NULL, NULL);
        for (i = 0; i < 600; i++) {
            assert_int_equal(http_get(port, "/metrics", body, BODY_MAX), 200);
            if (sample(body, "procbus_program_state{program=\"web\",state=\"RUNNING\"}", &up) ==
                    0 &&
                up == 1.0)
                break;
            usleep(100000);
        }
        assert_true(up == 1.0);
        assert_true(must_sample(body, "procbus_publisher_up") == 1.0);
        assert_int_equal(stop_child(d), 0);
    }
    assert_int_equal(stop_child(ex), 0);
    pbt_remove_daemon(&h);
    free(body);
}

/* A free loopback TCP port (bind port 0, read it, close). */
static int free_port(void)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A real Prometheus server scrapes the exporter; the value comes back through its query API. */
static void test_prometheus(void **state)
{
    struct daemon_h h;
    char conf[160], tsdb[160], listen[64], cfgarg[192], tsdbarg[192], webarg[96], exe[64];
    char *argv[] = {exe, cfgarg, tsdbarg, webarg, NULL};
    char *body = malloc(BODY_MAX);
    int port, pport, i, ok = 0;
    pid_t ex, prom;
    FILE *f;
    (void)state;

    if (!have_tool("prometheus")) {
        fprintf(stderr, "SKIP Prometheus integration: the prometheus server is not installed "
                        "(Debian package prometheus; scripts/deps.sh)\n");
        free(body);
        skip();
    }
    assert_non_null(body);
    start_daemon(&h);
    ex = start_exporter(h.seg, NULL, &port);
    snprintf(conf, sizeof(conf), "%s/prometheus.yml", h.dir);
    snprintf(tsdb, sizeof(tsdb), "%s/tsdb", h.dir);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: procbus\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%d']\n",
            port);
    fclose(f);
    pport = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", pport);
    snprintf(exe, sizeof(exe), "/usr/bin/prometheus");
    snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", conf);
    snprintf(tsdbarg, sizeof(tsdbarg), "--storage.tsdb.path=%s", tsdb);
    snprintf(webarg, sizeof(webarg), "--web.listen-address=%s", listen);
    prom = spawn(argv, NULL, NULL);
    /* query: procbus_program_state{program="web",state="RUNNING"} */
    for (i = 0; i < 1200 && !ok; i++) { /* up to ~2 min: start-up, first scrape */
        int code = http_get(pport,
                            "/api/v1/query?query=procbus_program_state%7Bprogram%3D%22web%22%2C"
                            "state%3D%22RUNNING%22%7D",
                            body, BODY_MAX);
        if (code == 200 && strstr(body, "\"status\":\"success\"") &&
            strstr(body, "\"job\":\"procbus\"")) {
            assert_non_null(strstr(body, "\"1\"]}"));
            printf("Prometheus answered: %s\n", body);
            ok = 1;
            break;
        }
        usleep(100000);
    }
    if (!ok)
        fprintf(stderr, "last Prometheus answer: %s\n", body);
    assert_true(ok);
    /* a FATAL program reads 1 in its FATAL series, and publisher_up is 1 */
    assert_int_equal(http_get(pport,
                              "/api/v1/query?query=procbus_program_state%7Bprogram%3D%22bad%22%2C"
                              "state%3D%22FATAL%22%7D",
                              body, BODY_MAX),
                     200);
    assert_non_null(strstr(body, "\"1\"]}"));
    assert_int_equal(http_get(pport, "/api/v1/query?query=procbus_publisher_up", body, BODY_MAX),
                     200);
    assert_non_null(strstr(body, "\"1\"]}"));

    stop_child(prom);
    assert_int_equal(stop_child(ex), 0);
    assert_int_equal(pbt_term_daemon(&h), 0);
    pbt_remove_daemon(&h);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metrics, pbt_teardown),
        cmocka_unit_test_teardown(test_no_segment, pbt_teardown),
        cmocka_unit_test_teardown(test_prometheus, pbt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
