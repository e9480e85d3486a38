/* test_readers_hostile.c - every tool (ps, get, status, watch, top, the exporter) against what a
 * hostile or broken segment does: a FIFO, a folder, a half-made file, a file that shrinks under
 * it, names with escapes and stray bytes; and the JSON telling the truth (issue 11). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "daemon_harness.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

#define TIMEOUT_MS 30000

static char g_dir[64]; /* the test's folder (root's, 0700: a trusted folder) */

/* ---- running the tools ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int have_tool(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* Run `procbus -s SEG ARGS` (at most 30 s: a tool that blocks is killed, exit 137); its exit
 * status, its stdout and stderr together in *out (malloc'd). */
static int tool(const char *seg, const char *args, char **out)
{
    char exe[256], cmd[1024], path[160];
    int st;

    snprintf(path, sizeof(path), "%s/out", g_dir);
    snprintf(cmd, sizeof(cmd), "timeout -s KILL 30 %s -s '%s' %s >%s 2>&1 </dev/null",
             pbt_bin("procbus", exe, sizeof(exe)), seg, args, path);
    st = system(cmd);
    *out = pbt_slurp(path, NULL);
    if (*out == NULL)
        *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* 1 when s holds no byte a terminal would act on (C0 but newline, DEL) and is valid UTF-8. */
static int terminal_safe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        int n = *p < 0x80             ? 1
                : (*p & 0xe0) == 0xc0 ? 2
                : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4
                                      : 0;
        if (n == 0)
            return 0;
        if (n == 1 && ((*p < 0x20 && *p != '\n') || *p == 0x7f))
            return 0;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) /* C1 */
            return 0;
        p += n;
    }
    return 1;
}

/* Fork+exec argv (PR_SET_PDEATHSIG); stdout to *out_fd (a pipe) when asked, stderr to errpath
 * (NULL: /dev/null); tracked for the teardown. */
static pid_t spawn(char *const argv[], int *out_fd, const char *errpath, const char *outpath)
{
    int p[2] = {-1, -1};
    pid_t pid;

    if (out_fd)
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int e = open(errpath ? errpath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int o = outpath ? open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
        int n = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(n, 0);
        dup2(out_fd ? p[1] : o >= 0 ? o : n, 1);
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

static int stop_child(pid_t pid)
{
    kill(pid, SIGTERM);
    pbt_track_bg(pid, 0);
    return pbt_wait_child(pid);
}

/* The exporter on 127.0.0.1:0 for `seg`; *port from its "listening on" line (it must get
 * there: a FIFO at the segment's path used to block it in open, before it listened). */
static pid_t start_exporter(const char *seg, const char *errpath, int *port)
{
    char exe[256], line[128];
    char *argv[] = {exe, "--listen", "127.0.0.1:0", "-s", (char *)seg, NULL};
    size_t len = 0;
    int fd;
    pid_t pid;

    pbt_bin("procbus-exporter", exe, sizeof(exe));
    pid = spawn(argv, &fd, errpath, NULL);
    while (len < sizeof(line) - 1) { /* the line or EOF; the teardown kills a stuck exporter */
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

/* GET /metrics; the body (malloc'd) or NULL when the exporter did not answer 200. */
static char *metrics(int port)
{
    struct sockaddr_in sa = {0};
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t len = 0, cap = 1 << 20;
    char *buf = malloc(cap), *body;
    ssize_t n;
    int fd, status = -1;

    assert_non_null(buf);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        free(buf);
        return NULL;
    }
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200 || body == NULL) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

/* The value of `series` (the whole name+labels) in an exposition, or -1. */
static double sample(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; (p = strstr(p, series)) != NULL; p += n)
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* ---- top in a terminal (tmux, as test_top) ---- */

static char g_tmux[64];

static int tmux(const char *args)
{
    char cmd[1400];
    int st;

    snprintf(cmd, sizeof(cmd), "tmux -L %s %s >/dev/null 2>&1", g_tmux, args);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start `procbus -s SEG top` in a detached 120x30 session; stderr and the exit status go to
 * ERRFILE when it ends. 0, or -1 (no tmux). */
static int top_start(const char *seg, const char *errfile)
{
    char exe[256], args[1200];

    if (!have_tool("tmux"))
        return -1;
    snprintf(g_tmux, sizeof(g_tmux), "pbt-rh-%d", (int)getpid());
    snprintf(args, sizeof(args),
             "new-session -d -s top -x 120 -y 30 \"%s -s '%s' top 2>%s; echo exit=\\$? >>%s; "
             "sleep 60\"",
             pbt_bin("procbus", exe, sizeof(exe)), seg, errfile, errfile);
    return tmux(args) == 0 ? 0 : -1;
}

static char *top_screen(void)
{
    char cmd[256];
    FILE *f;
    size_t len = 0, n;
    char *buf = calloc(1, 1 << 16);

    snprintf(cmd, sizeof(cmd), "tmux -L %s capture-pane -p -t top 2>/dev/null", g_tmux);
    f = popen(cmd, "r");
    if (f == NULL || buf == NULL) {
        free(buf);
        return NULL;
    }
    while (len < (1 << 16) - 1 && (n = fread(buf + len, 1, (1 << 16) - 1 - len, f)) > 0)
        len += n;
    pclose(f);
    return buf;
}

/* Wait until top's screen holds `want`; 0 or -1 (the last screen printed). */
static int top_wait(const char *want)
{
    char *scr = NULL;
    for (long t0 = pbt_now_ms(); pbt_now_ms() - t0 < TIMEOUT_MS; sleep_ms(100)) {
        free(scr);
        scr = top_screen();
        if (scr != NULL && strstr(scr, want) != NULL) {
            free(scr);
            return 0;
        }
    }
    fprintf(stderr, "top's screen never showed '%s'; last:\n%s\n", want, scr ? scr : "");
    free(scr);
    return -1;
}

static void top_stop(void)
{
    if (g_tmux[0] != '\0')
        tmux("kill-server");
    g_tmux[0] = '\0';
}

/* Wait until `path` holds `want`; 0 or -1 (its last content printed). */
static int file_wait(const char *path, const char *want)
{
    char *text = NULL;
    for (long t0 = pbt_now_ms(); pbt_now_ms() - t0 < TIMEOUT_MS; sleep_ms(50)) {
        free(text);
        text = pbt_slurp(path, NULL);
        if (text != NULL && strstr(text, want) != NULL) {
            free(text);
            return 0;
        }
    }
    fprintf(stderr, "%s never held '%s'; it holds:\n%s\n", path, want, text ? text : "(nothing)");
    free(text);
    return -1;
}

/* file_wait for text written after the first `skip` bytes of the file. */
static int file_wait_after(const char *path, size_t skip, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    for (long t0 = pbt_now_ms(); pbt_now_ms() - t0 < TIMEOUT_MS; sleep_ms(50)) {
        free(text);
        text = pbt_slurp(path, &len);
        if (text != NULL && len > skip && strstr(text + skip, want) != NULL) {
            free(text);
            return 0;
        }
    }
    fprintf(stderr, "%s never held '%s' after byte %zu; it holds:\n%s\n", path, want, skip,
            text ? text : "(nothing)");
    free(text);
    return -1;
}

static int rh_teardown(void **state)
{
    char cmd[128];

    top_stop();
    if (g_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", g_dir);
    }
    g_dir[0] = '\0';
    return pbt_teardown(state);
}

static void make_dir(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/pbt-rh-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
}

/* ---- publishers in children (the parent stays free of liburcu's threads) ---- */

typedef void fill_fn(struct procbus_pub *p, uint64_t round);

/*
 * A child that publishes at `path`: fill(p, 0) then a commit, then "ready" on a pipe, then
 * every `every_us` (0: only heartbeats) fill(p, round) and a commit, and a heartbeat, until
 * killed. Its pid.
 */
static pid_t publisher(const char *path, fill_fn *fill, unsigned every_us)
{
    int pfd[2];
    char c = 0;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct procbus_pub_opts o = {0};
        struct procbus_pub *p = NULL;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* a fault here (its file truncated under it) kills it: not cmocka's handlers, which
         * would go on running the tests in this child */
        signal(SIGBUS, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        close(pfd[0]);
        o.segment = path;
        o.capacity = 64;
        o.heartbeat_interval_ns = 100000000ull;
        if (procbus_pub_open(&p, &o) < 0)
            _exit(2);
        fill(p, 0);
        if (procbus_pub_commit(p) < 0 || write(pfd[1], "r", 1) != 1)
            _exit(3);
        for (uint64_t round = 1;; round++) {
            usleep(every_us ? every_us : 100000);
            if (every_us) {
                fill(p, round);
                if (procbus_pub_commit(p) < 0)
                    _exit(4);
            }
            procbus_pub_heartbeat(p);
        }
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    pbt_track_bg(pid, 1);
    return pid;
}

static void kill_publisher(pid_t pid)
{
    kill(pid, SIGKILL);
    pbt_track_bg(pid, 0);
    pbt_wait_child(pid);
}

static void put(struct procbus_pub *p, const struct procbus_proc *rec)
{
    if (procbus_pub_upsert(p, rec) < 0)
        _exit(5);
}

static void fill_alpha(struct procbus_pub *p, uint64_t round)
{
    struct procbus_proc rec;
    pbt_fill(&rec, 1, 3001, "alpha", round % 2 ? PROCBUS_STATE_STARTING : PROCBUS_STATE_RUNNING);
    put(p, &rec);
}

static void fill_beta(struct procbus_pub *p, uint64_t round)
{
    struct procbus_proc rec;
    pbt_fill(&rec, 1, 3002, "beta", round % 2 ? PROCBUS_STATE_STARTING : PROCBUS_STATE_RUNNING);
    put(p, &rec);
}

static void fill_gamma(struct procbus_pub *p, uint64_t round)
{
    struct procbus_proc rec;
    pbt_fill(&rec, 1, 3003, "gamma", round % 2 ? PROCBUS_STATE_STARTING : PROCBUS_STATE_RUNNING);
    put(p, &rec);
}

/* ---- 1: not a segment ---- */

/* A half-made segment: a real one's bytes with `version` 0 (its publisher never finished). */
static void make_version0(const char *path)
{
    char tmp[128];
    pid_t pub;
    unsigned char *img;
    size_t len;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/real", g_dir);
    pub = publisher(tmp, fill_alpha, 0);
    img = (unsigned char *)pbt_slurp(tmp, &len);
    kill_publisher(pub);
    unlink(tmp);
    assert_non_null(img);
    ((struct procbus_header *)(void *)img)->version = 0;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    close(fd);
    free(img);
}

/*
 * A FIFO, a folder or a half-made (version 0) file where the segment should be: every tool
 * answers at once with what is there, in words (a FIFO used to block every one of them in
 * open() forever, the exporter before it even listened; a folder and a half-made file said
 * "Protocol error"); the exporter serves publisher_up 0.
 */
static void test_not_a_segment_every_tool(void **state)
{
    static const struct {
        const char *what, *says;
    } cases[] = {
        {"fifo", "not a procbus segment"},
        {"folder", "a directory, not a segment"},
        {"version0", "has not finished creating it"},
    };
    static const char *const cmds[] = {"ps",        "ps --json",
                                       "get alpha", "status",
                                       "watch",     "wait alpha --state RUNNING --timeout 1s"};
    (void)state;

    make_dir();
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char path[128], errfile[160], *out, *err;
        int port, st;
        pid_t ex;
        double up;

        snprintf(path, sizeof(path), "%s/%s", g_dir, cases[c].what);
        if (c == 0)
            assert_int_equal(mkfifo(path, 0600), 0);
        else if (c == 1)
            assert_int_equal(mkdir(path, 0700), 0);
        else
            make_version0(path);
        for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
            st = tool(path, cmds[k], &out);
            print_message("  %s: procbus %s -> %d: %s", cases[c].what, cmds[k], st, out);
            if (st == 137)
                fail_msg("procbus %s blocked on a %s", cmds[k], cases[c].what);
            assert_int_equal(st, 4); /* no readable segment */
            assert_non_null(strstr(out, cases[c].says));
            if (c == 0)
                assert_non_null(strstr(out, "(a FIFO)"));
            free(out);
        }
        /* top: the same words, before it takes the terminal over */
        snprintf(errfile, sizeof(errfile), "%s/top-%s.err", g_dir, cases[c].what);
        if (top_start(path, errfile) == 0) {
            assert_int_equal(file_wait(errfile, "exit=4"), 0);
            err = pbt_slurp(errfile, NULL);
            assert_non_null(err);
            assert_non_null(strstr(err, cases[c].says));
            free(err);
            top_stop();
        } else {
            print_message("  (no tmux: top not run)\n");
        }
        /* the exporter: listens, serves publisher_up 0, says why once */
        snprintf(errfile, sizeof(errfile), "%s/exporter-%s.err", g_dir, cases[c].what);
        ex = start_exporter(path, errfile, &port);
        out = metrics(port);
        assert_non_null(out);
        up = sample(out, "procbus_publisher_up");
        assert_true(up == 0.0);
        free(out);
        assert_int_equal(stop_child(ex), 0);
        err = pbt_slurp(errfile, NULL);
        assert_non_null(err);
        print_message("  %s: exporter: %s", cases[c].what, err);
        assert_non_null(strstr(err, cases[c].says));
        free(err);
    }
}

/* ---- 2: a segment that shrinks under the long-running tools ---- */

/* Shrink the file at `path` to `len` bytes (what a writer of it can do at any time). */
static void shrink(const char *path, off_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, len), 0);
    close(fd);
}

/*
 * watch, top and the exporter run on a segment; its file is truncated under them (the
 * publisher dies of it), then a new publisher takes the path; twice (to a page, then to
 * nothing). None of the tools dies of SIGBUS (they all did): watch says "segment truncated:
 * reopening" and follows the new segment's events, top shows the truncation and then the new
 * segment, the exporter keeps answering with publisher_up 0 and then serves the new segment
 * with publisher_up 1.
 */
static void test_shrinking_segment_long_running_tools(void **state)
{
    char path[128], watch_out[160], watch_json[160], top_err[160], exe[256], *body;
    pid_t pub, w_text, w_json, ex;
    int port, have_top;
    long t0;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    snprintf(watch_out, sizeof(watch_out), "%s/watch.out", g_dir);
    snprintf(watch_json, sizeof(watch_json), "%s/watch.json", g_dir);
    snprintf(top_err, sizeof(top_err), "%s/top.err", g_dir);
    pub = publisher(path, fill_alpha, 50000);
    {
        char *argv1[] = {exe, "-s", path, "watch", "--from-start", NULL};
        char *argv2[] = {exe, "-s", path, "watch", "--json", "--from-start", NULL};
        pbt_bin("procbus", exe, sizeof(exe));
        w_text = spawn(argv1, NULL, NULL, watch_out);
        w_json = spawn(argv2, NULL, NULL, watch_json);
    }
    ex = start_exporter(path, NULL, &port);
    have_top = top_start(path, top_err) == 0;
    assert_int_equal(file_wait(watch_out, "alpha"), 0);
    assert_int_equal(file_wait(watch_json, "\"alpha\""), 0);
    if (have_top)
        assert_int_equal(top_wait("alpha"), 0);
    body = metrics(port);
    assert_non_null(body);
    assert_true(sample(body, "procbus_publisher_up") == 1.0);
    free(body);

    /* Twice: shrunk to its header page (the records and events are lost: top and the
     * exporter fault on their next read, watch finds it while idle), then to nothing (the
     * header too: every access faults). Each time a new publisher then takes the path, with
     * a new name in it. */
    for (int phase = 0; phase < 2; phase++) {
        const char *next = phase == 0 ? "beta" : "gamma";
        char want[64];
        size_t seen_text, seen_json;

        {
            char *t = pbt_slurp(watch_out, &seen_text), *j = pbt_slurp(watch_json, &seen_json);
            free(t);
            free(j);
        }
        shrink(path, phase == 0 ? 4096 : 0);
        assert_int_equal(
            file_wait_after(watch_out, seen_text, "-- segment truncated: reopening --"), 0);
        assert_int_equal(file_wait_after(watch_json, seen_json, "\"kind\":\"truncated\""), 0);
        if (have_top)
            assert_int_equal(top_wait("segment truncated: reopening"), 0);
        for (t0 = pbt_now_ms();; sleep_ms(50)) { /* the exporter answers, up 0 */
            body = metrics(port);
            assert_non_null(body);
            if (sample(body, "procbus_publisher_up") == 0.0)
                break;
            free(body);
            assert_true(pbt_now_ms() - t0 < TIMEOUT_MS);
        }
        free(body);
        kill_publisher(pub); /* if its own next write did not kill it already */
        assert_int_equal(kill(w_text, 0), 0);
        assert_int_equal(kill(w_json, 0), 0);
        assert_int_equal(kill(ex, 0), 0);

        /* a new publisher at the path: every tool picks it up */
        assert_int_equal(unlink(path), 0);
        pub = publisher(path, phase == 0 ? fill_beta : fill_gamma, 50000);
        assert_int_equal(file_wait_after(watch_out, seen_text, "-- segment reopened --"), 0);
        assert_int_equal(file_wait_after(watch_out, seen_text, next), 0);
        snprintf(want, sizeof(want), "\"%s\"", next);
        assert_int_equal(file_wait_after(watch_json, seen_json, want), 0);
        if (have_top)
            assert_int_equal(top_wait(next), 0);
        snprintf(want, sizeof(want), "procbus_program_state{program=\"%s\",state=\"RUNNING\"}",
                 next);
        for (t0 = pbt_now_ms();; sleep_ms(50)) {
            body = metrics(port);
            assert_non_null(body);
            if (sample(body, "procbus_publisher_up") == 1.0 && sample(body, want) >= 0)
                break;
            free(body);
            assert_true(pbt_now_ms() - t0 < TIMEOUT_MS);
        }
        free(body);
    }
    assert_int_equal(stop_child(w_text), 0);
    assert_int_equal(stop_child(w_json), 0);
    assert_int_equal(stop_child(ex), 0);
    top_stop();
    kill_publisher(pub);
}

/* The one-shot commands: the segment shrinks and grows back over and over while they read it.
 * Each run ends with an answer or a message, never killed by SIGBUS (they used to be, now and
 * then). */
static void fill_many(struct procbus_pub *p, uint64_t round)
{
    (void)round;
    for (uint64_t i = 1; i <= 60; i++) {
        struct procbus_proc rec;
        char nm[16];
        snprintf(nm, sizeof(nm), "svc-%llu", (unsigned long long)i);
        pbt_fill(&rec, i, (int32_t)(4000 + i), nm, PROCBUS_STATE_RUNNING);
        put(p, &rec);
    }
}

static void test_shrinking_segment_one_shot_tools(void **state)
{
    static const char *const cmds[] = {"ps --all", "ps --json", "get svc-7",
                                       "get 4007", "status",    "status svc-3"};
    char path[128], *out;
    unsigned char *img;
    size_t len;
    pid_t pub, toggler;
    int runs = 0, truncated = 0, answered = 0;
    long t0, budget = (long)(4000 * pbt_scale()) + 1000;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    pub = publisher(path, fill_many, 0);
    img = (unsigned char *)pbt_slurp(path, &len);
    assert_non_null(img);
    kill_publisher(pub); /* the file stays (the tools say the publisher is gone: fine) */
    toggler = fork();
    assert_true(toggler >= 0);
    if (toggler == 0) { /* shrink to a page, then write the rest back: forever */
        int fd = open(path, O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            if (ftruncate(fd, 4096) < 0 ||
                pwrite(fd, img + 4096, len - 4096, 4096) != (ssize_t)(len - 4096))
                _exit(1);
            usleep(300);
        }
    }
    pbt_track_bg(toggler, 1);
    for (t0 = pbt_now_ms(); pbt_now_ms() - t0 < budget; runs++) {
        const char *cmd = cmds[runs % (sizeof(cmds) / sizeof(cmds[0]))];
        int st = tool(path, cmd, &out);
        if (st >= 128) {
            print_message("procbus %s died: status %d: %s\n", cmd, st, out);
            fail();
        }
        truncated += strstr(out, "shrank while being read") != NULL;
        answered += st == 0 || st == 3;
        free(out);
    }
    kill_publisher(toggler);
    free(img);
    print_message("  %d runs: %d answered, %d said the segment shrank while being read, the rest "
                  "refused a short file at open; none died\n",
                  runs, answered, truncated);
    assert_true(runs > 10);
}

/* ---- 3: hostile text ---- */

#define EVIL_NAME "ev\x1b[31mil\nname\xff"
#define EVIL_COMM "co\x07mm\x1b"

static void fill_hostile(struct procbus_pub *p, uint64_t round)
{
    static const char cmd[] = "echo\0\x1b]0;pwned\x07\0ar\xc3g\0\xc2\x9b"
                              "6n";
    struct procbus_proc rec;

    (void)round;
    pbt_fill(&rec, 1, 5001, EVIL_NAME, PROCBUS_STATE_RUNNING);
    snprintf(rec.comm, sizeof(rec.comm), "%s", EVIL_COMM);
    memcpy(rec.cmdline, cmd, sizeof(cmd));
    rec.cmdline_len = sizeof(cmd);
    put(p, &rec);
    pbt_fill(&rec, 2, 5002, "plain", PROCBUS_STATE_EXITED);
    put(p, &rec);
    pbt_fill(&rec, 3, 5003, "", PROCBUS_STATE_RUNNING); /* traced: its comm is its label */
    snprintf(rec.comm, sizeof(rec.comm), "\x1b[2J\xe2\x80\xae");
    rec.flags = PROCBUS_F_DESCENDANT;
    rec.program_id = 1;
    put(p, &rec);
}

/* JSON from `text` parses with jq (when installed) and with json-c; 1 when it does. */
static int json_ok(const char *text, const char *jq_filter)
{
    char path[160], cmd[400];
    struct json_object *o = json_tokener_parse(text);
    FILE *f;
    int ok = o != NULL;

    json_object_put(o);
    if (!ok || !have_tool("jq"))
        return ok;
    snprintf(path, sizeof(path), "%s/json", g_dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "jq -e '%s' <%s >/dev/null 2>&1", jq_filter, path);
    return system(cmd) == 0;
}

/*
 * A name with ESC, a newline and a byte that is not UTF-8, a comm with BEL, a command line with
 * an OSC sequence and a C1 CSI, published through the library: no tool lets a control byte or
 * a stray byte through to a terminal (the escaped forms show instead), every JSON output is
 * valid (jq parses it, the name is there with U+FFFD for the stray byte), and the exporter's
 * exposition passes promtool.
 */
static void test_hostile_names_every_tool(void **state)
{
    static const char *const text_cmds[] = {"ps --all", "ps --all --tree", "ps -o name,comm,cmd",
                                            "get 5001", "get 5003",        "status"};
    char path[128], *out, watch_out[160], watch_json[160], exe[256], *body, errfile[160];
    pid_t pub, w_text, w_json, ex;
    int port;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    pub = publisher(path, fill_hostile, 0);
    for (size_t k = 0; k < sizeof(text_cmds) / sizeof(text_cmds[0]); k++) {
        int st = tool(path, text_cmds[k], &out);
        print_message("  procbus %s -> %d:\n%s", text_cmds[k], st, out);
        assert_true(st == 0 || st == 3);
        if (!terminal_safe(out))
            fail_msg("procbus %s let a control or stray byte through", text_cmds[k]);
        free(out);
    }
    assert_int_equal(tool(path, "ps --all", &out), 0);
    assert_non_null(strstr(out, "ev\\x1b[31mil\\nname\\xff")); /* shown escaped */
    assert_non_null(strstr(out, "\\x1b[2J\\u202e"));           /* a traced process's comm */
    free(out);
    assert_int_equal(tool(path, "get 5001", &out), 0);
    assert_non_null(strstr(out, "co\\x07mm\\x1b"));
    assert_non_null(strstr(out, "echo \\x1b]0;pwned\\x07 ar\\xc3g \\xc2\\x9b6n"));
    free(out);

    /* JSON: valid, and what it says survives (U+FFFD for the stray byte, C1 too) */
    assert_int_equal(tool(path, "ps --all --json", &out), 0);
    assert_true(terminal_safe(out));
    assert_true(json_ok(out, ".processes | length == 3"));
    assert_true(json_ok(out, ".processes[] | select(.name == \"ev\\u001b[31mil\\nname\\ufffd\")"));
    free(out);
    assert_int_equal(tool(path, "get 5001 --json", &out), 0);
    assert_true(terminal_safe(out));
    assert_true(json_ok(out, ".comm == \"co\\u0007mm\\u001b\" and .cmdline[2] == \"ar\\ufffdg\""));
    free(out);

    /* watch, text and JSON: the ADD events from the start of the ring */
    snprintf(watch_out, sizeof(watch_out), "%s/watch.out", g_dir);
    snprintf(watch_json, sizeof(watch_json), "%s/watch.json", g_dir);
    {
        char *argv1[] = {exe, "-s", path, "watch", "--from-start", NULL};
        char *argv2[] = {exe, "-s", path, "watch", "--json", "--from-start", NULL};
        pbt_bin("procbus", exe, sizeof(exe));
        w_text = spawn(argv1, NULL, NULL, watch_out);
        w_json = spawn(argv2, NULL, NULL, watch_json);
    }
    assert_int_equal(file_wait(watch_out, "plain added"), 0);
    assert_int_equal(file_wait(watch_json, "\"plain\""), 0);
    assert_int_equal(stop_child(w_text), 0);
    assert_int_equal(stop_child(w_json), 0);
    out = pbt_slurp(watch_out, NULL);
    assert_non_null(out);
    print_message("  watch:\n%s", out);
    assert_true(terminal_safe(out));
    assert_non_null(strstr(out, "ev\\x1b[31mil\\nname\\xff added"));
    assert_non_null(strstr(out, "created the segment (epoch 1)")); /* a fresh segment */
    assert_null(strstr(out, "took over"));
    free(out);
    out = pbt_slurp(watch_json, NULL);
    assert_non_null(out);
    assert_true(terminal_safe(out));
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (!json_ok(line, "."))
            fail_msg("watch --json printed a line that is not JSON: %s", line);
    free(out);

    /* top */
    snprintf(errfile, sizeof(errfile), "%s/top.err", g_dir);
    if (top_start(path, errfile) == 0) {
        assert_int_equal(top_wait("ev\\x1b[31mil\\nname\\xff"), 0);
        top_stop();
    }

    /* the exporter: the label is valid UTF-8 with its newline escaped; promtool agrees */
    ex = start_exporter(path, NULL, &port);
    body = metrics(port);
    assert_non_null(body);
    assert_true(terminal_safe(body));
    assert_non_null(strstr(body, "program=\"ev\xef\xbf\xbd[31mil\\nname\xef\xbf\xbd\""));
    if (have_tool("promtool")) {
        char mpath[160], cmd[400];
        FILE *f;
        snprintf(mpath, sizeof(mpath), "%s/metrics", g_dir);
        f = fopen(mpath, "w");
        assert_non_null(f);
        fputs(body, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", mpath);
        assert_int_equal(system(cmd), 0);
    } else {
        print_message("  (promtool not installed: check skipped)\n");
    }
    free(body);
    assert_int_equal(stop_child(ex), 0);
    kill_publisher(pub);
}

/* ---- 4: the JSON tells the truth ---- */

/* Every commit rewrites every record with restarts = the generation that commit gets. */
static void fill_stamped(struct procbus_pub *p, uint64_t round)
{
    uint64_t g = procbus_pub_generation(p) + 1;
    (void)round;
    for (uint64_t i = 1; i <= 8; i++) {
        struct procbus_proc rec;
        char nm[16];
        snprintf(nm, sizeof(nm), "s%llu", (unsigned long long)i);
        pbt_fill(&rec, i, (int32_t)(6000 + i), nm, PROCBUS_STATE_RUNNING);
        rec.restarts = (uint32_t)g;
        put(p, &rec);
    }
}

/*
 * ps --json under a churning publisher: `generation` is the generation of the snapshot the
 * processes came from (every record of a snapshot carries its generation in `restarts`). It
 * used to be read after the list was copied and sorted: a newer one, 15% of the time.
 */
static void test_json_generation_is_the_snapshots(void **state)
{
    char path[128], *out;
    pid_t pub;
    int runs;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    pub = publisher(path, fill_stamped, 300);
    for (runs = 0; runs < 60; runs++) {
        struct json_object *root, *procs, *gen;
        uint64_t g;

        assert_int_equal(tool(path, "ps --json", &out), 0);
        root = json_tokener_parse(out);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "generation", &gen));
        assert_true(json_object_object_get_ex(root, "processes", &procs));
        g = json_object_get_uint64(gen);
        assert_int_equal(json_object_array_length(procs), 8);
        for (size_t i = 0; i < 8; i++) {
            struct json_object *rs;
            assert_true(
                json_object_object_get_ex(json_object_array_get_idx(procs, i), "restarts", &rs));
            if ((uint64_t)json_object_get_int64(rs) != (uint32_t)g)
                fail_msg("run %d: generation %llu, but a process of generation %lld", runs,
                         (unsigned long long)g, (long long)json_object_get_int64(rs));
        }
        json_object_put(root);
        free(out);
    }
    print_message("  %d ps --json runs: each generation is that of its processes\n", runs);
    kill_publisher(pub);
}

static void fill_family(struct procbus_pub *p, uint64_t round)
{
    struct procbus_proc rec;
    (void)round;
    pbt_fill(&rec, 1, 7001, "prog", PROCBUS_STATE_RUNNING);
    put(p, &rec);
    /* descendants of prog: one running, one that exited */
    pbt_fill(&rec, 2, 7002, "", PROCBUS_STATE_RUNNING);
    snprintf(rec.comm, sizeof(rec.comm), "kid-live");
    rec.flags = PROCBUS_F_DESCENDANT;
    rec.program_id = 1;
    put(p, &rec);
    pbt_fill(&rec, 3, 7003, "", PROCBUS_STATE_EXITED);
    snprintf(rec.comm, sizeof(rec.comm), "kid-dead");
    rec.flags = PROCBUS_F_DESCENDANT;
    rec.program_id = 1;
    rec.exit_kind = PROCBUS_EXIT_CODE;
    put(p, &rec);
    /* a descendant whose program is not in the table (removed by a reload) */
    pbt_fill(&rec, 4, 7004, "", PROCBUS_STATE_RUNNING);
    snprintf(rec.comm, sizeof(rec.comm), "orphan");
    rec.flags = PROCBUS_F_DESCENDANT;
    rec.program_id = 99;
    put(p, &rec);
}

/* The running flag of the process with `pid` in a JSON object or array of them; -1 if absent. */
static int running_of(struct json_object *o, int pid, uint64_t *uptime)
{
    struct json_object *v;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            int r = running_of(json_object_array_get_idx(o, i), pid, uptime);
            if (r >= 0)
                return r;
        }
        return -1;
    }
    if (!json_object_object_get_ex(o, "pid", &v) || json_object_get_int(v) != pid)
        return -1;
    assert_true(json_object_object_get_ex(o, "uptime_ns", &v));
    *uptime = json_object_get_uint64(v);
    assert_true(json_object_object_get_ex(o, "running", &v));
    return json_object_get_boolean(v);
}

/*
 * An EXITED descendant is not running (JSON used to say "running": true with a growing
 * uptime, while the table said "-"); a live one is. ps --tree shows a descendant whose program
 * is not in the table (it used to drop it).
 */
static void test_exited_descendants_and_orphans(void **state)
{
    char path[128], *out;
    struct json_object *root, *procs;
    uint64_t up = 0;
    pid_t pub;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    pub = publisher(path, fill_family, 0);
    assert_int_equal(tool(path, "ps --all --json", &out), 0);
    root = json_tokener_parse(out);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "processes", &procs));
    assert_int_equal(running_of(procs, 7003, &up), 0);
    assert_int_equal(up, 0);
    assert_int_equal(running_of(procs, 7002, &up), 1);
    assert_true(up > 0);
    json_object_put(root);
    free(out);
    assert_int_equal(tool(path, "get 7003 --json", &out), 0);
    root = json_tokener_parse(out);
    assert_non_null(root);
    assert_int_equal(running_of(root, 7003, &up), 0);
    json_object_put(root);
    free(out);
    assert_int_equal(tool(path, "ps --tree", &out), 0);
    print_message("  ps --tree:\n%s", out);
    assert_non_null(strstr(out, "kid-live"));
    assert_non_null(strstr(out, "kid-dead"));
    assert_non_null(strstr(out, "orphan"));
    free(out);
    kill_publisher(pub);
}

/* An event kind this version does not know (a newer publisher's): text and JSON watch both
 * skip it (JSON used to print "kind":"unknown" that text watch skipped). */
static void test_watch_skips_unknown_kinds(void **state)
{
    char path[128], out_text[160], out_json[160], exe[256], *text;
    pid_t pub, w_text, w_json;
    struct procbus_header *h;
    struct procbus_event *ring, *e;
    struct stat st;
    uint64_t head;
    void *m;
    int fd;
    (void)state;

    make_dir();
    snprintf(path, sizeof(path), "%s/seg", g_dir);
    snprintf(out_text, sizeof(out_text), "%s/watch.out", g_dir);
    snprintf(out_json, sizeof(out_json), "%s/watch.json", g_dir);
    pub = publisher(path, fill_alpha, 0); /* commits nothing more: the ring is ours to extend */
    {
        char *argv1[] = {exe, "-s", path, "watch", "--from-start", NULL};
        char *argv2[] = {exe, "-s", path, "watch", "--json", "--from-start", NULL};
        pbt_bin("procbus", exe, sizeof(exe));
        w_text = spawn(argv1, NULL, NULL, out_text);
        w_json = spawn(argv2, NULL, NULL, out_json);
    }
    assert_int_equal(file_wait(out_text, "alpha added"), 0);
    assert_int_equal(file_wait(out_json, "\"add\""), 0);
    /* append an event of kind 9, then one the tools know, as a publisher would */
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    h = m;
    ring = (struct procbus_event *)(void *)((unsigned char *)m + h->ring_off);
    head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
    for (int k = 0; k < 2; k++) {
        e = &ring[(head + (uint64_t)k) & (h->ring_capacity - 1)];
        memset(e, 0, sizeof(*e));
        e->record_id = 1;
        e->pid = 3001;
        e->kind = k == 0 ? 9 : PROCBUS_EV_STATE;
        e->old_state = PROCBUS_STATE_RUNNING;
        e->new_state = PROCBUS_STATE_STOPPING;
        snprintf(e->name, sizeof(e->name), "alpha");
        __atomic_store_n(&e->seq, head + (uint64_t)k, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&h->ring_head, head + 2, __ATOMIC_RELEASE);
    __atomic_store_n(&h->generation, h->generation + 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&h->futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &h->futex, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
    munmap(m, (size_t)st.st_size);
    close(fd);
    assert_int_equal(file_wait(out_text, "RUNNING -> STOPPING"), 0);
    assert_int_equal(file_wait(out_json, "\"STOPPING\""), 0);
    assert_int_equal(stop_child(w_text), 0);
    assert_int_equal(stop_child(w_json), 0);
    text = pbt_slurp(out_json, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "unknown"));
    free(text);
    text = pbt_slurp(out_text, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "unknown"));
    free(text);
    kill_publisher(pub);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_not_a_segment_every_tool, rh_teardown),
        cmocka_unit_test_teardown(test_shrinking_segment_long_running_tools, rh_teardown),
        cmocka_unit_test_teardown(test_shrinking_segment_one_shot_tools, rh_teardown),
        cmocka_unit_test_teardown(test_hostile_names_every_tool, rh_teardown),
        cmocka_unit_test_teardown(test_json_generation_is_the_snapshots, rh_teardown),
        cmocka_unit_test_teardown(test_exited_descendants_and_orphans, rh_teardown),
        cmocka_unit_test_teardown(test_watch_skips_unknown_kinds, rh_teardown),
    };
    if (argc >= 2) /* a test name or a glob: run only those */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("readers_hostile", tests, NULL, NULL);
}
