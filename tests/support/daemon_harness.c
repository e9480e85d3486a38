/* daemon_harness.c - start a real procbusd for a test, and clean up whatever a failed test left. */
#define _GNU_SOURCE
#include "daemon_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "util.h"

#ifndef PROCBUS_BUILD_DIR
#define PROCBUS_BUILD_DIR "build"
#endif

#define MAX_BG 8

/* What the teardown cleans (a copy: handles live on the tests' stacks). */
static struct {
    pid_t pid, bg[MAX_BG];
    char seg[64], dir[64];
} g_current;

const char *pbt_bin(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("PROCBUS_BUILD_DIR");
    snprintf(buf, len, "%s/%s", dir ? dir : PROCBUS_BUILD_DIR, name);
    return buf;
}

void pbt_write_conf(struct daemon_h *h, const char *body)
{
    FILE *f = fopen(h->conf, "w");
    assert_non_null(f);
    fprintf(f, "[procbusd]\nsegment = %s\nsocket = %s\nheartbeat_ms = 100\nsample_ms = 200\n\n%s",
            h->seg, h->sock, body);
    fclose(f);
}

/* Fork and exec procbusd on h->conf (stderr appended to h->dir/procbusd.log). */
static pid_t exec_daemon(const struct daemon_h *h)
{
    char exe[256];
    pid_t pid;

    pbt_bin("procbusd", exe, sizeof(exe));
    pid = fork();
    if (pid == 0) {
        char logpath[160];
        int log;
        snprintf(logpath, sizeof(logpath), "%s/procbusd.log", h->dir);
        log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test runner that died */
        if (getenv("PBD_TEST_VERBOSE") == NULL && log >= 0)
            dup2(log, 2); /* shown by the harness if procbusd dies while starting */
        execl(exe, exe, "-c", h->conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int pbt_ctl_ping(const struct daemon_h *h, int timeout_ms)
{
    const long end = pbt_now_ms() + timeout_ms;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (strlen(h->sock) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, h->sock, strlen(h->sock) + 1);
    while (pbt_now_ms() < end) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char buf[256];
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            write(fd, "ping\n", 5) == 5) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 2000) > 0 && read(fd, buf, sizeof(buf)) > 0) {
                close(fd);
                return 0;
            }
        }
        if (fd >= 0)
            close(fd);
        usleep(10000);
    }
    return -ETIMEDOUT;
}

void pbt_restart_daemon(struct daemon_h *h, int wait_ready)
{
    h->pid = exec_daemon(h);
    assert_true(h->pid > 0);
    g_current.pid = h->pid;
    if (!wait_ready)
        return;
    if (pbt_ctl_ping(h, 60000) != 0) {
        char cmd[200];
        fprintf(stderr, "procbusd does not answer after a restart; its stderr:\n");
        snprintf(cmd, sizeof(cmd), "tail -20 %s/procbusd.log >&2", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        fail();
    }
    assert_true(procbus_follow(&h->r) >= 0);
}

void pbt_start_daemon(struct daemon_h *h, const char *prefix, const char *body)
{
    int i, rc = -1;

    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(h->dir));
    pbt_name(h->seg);
    snprintf(h->sock, sizeof(h->sock), "%s/ctl.sock", h->dir);
    snprintf(h->conf, sizeof(h->conf), "%s/procbus.conf", h->dir);
    pbt_write_conf(h, body);
    h->pid = exec_daemon(h);
    g_current.pid = h->pid;
    snprintf(g_current.seg, sizeof(g_current.seg), "%s", h->seg);
    snprintf(g_current.dir, sizeof(g_current.dir), "%s", h->dir);
    for (i = 0; i < 1500; i++) { /* until the segment exists (generous: ASan, slow CI) */
        int st;
        rc = procbus_open(&h->r, h->seg);
        if (rc == 0)
            break;
        if (waitpid(h->pid, &st, WNOHANG) == h->pid) { /* it gave up: say why, fail now */
            char cmd[200];
            fprintf(stderr, "procbusd exited while starting (status 0x%x); its stderr:\n", st);
            snprintf(cmd, sizeof(cmd), "cat %s/procbusd.log >&2", h->dir);
            if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
            h->pid = g_current.pid = 0;
            break;
        }
        usleep(20000);
    }
    assert_int_equal(rc, 0);
}

int pbt_term_daemon(struct daemon_h *h)
{
    int st;

    kill(h->pid, SIGTERM);
    st = pbt_wait_child(h->pid);
    h->pid = 0;
    g_current.pid = 0;
    return st;
}

void pbt_remove_daemon(struct daemon_h *h)
{
    char cmd[128];

    procbus_close(&h->r);
    pbt_unlink(h->seg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
    assert_int_equal(system(cmd), 0);
    memset(&g_current, 0, sizeof(g_current));
}

void pbt_stop_daemon(struct daemon_h *h)
{
    assert_int_equal(pbt_term_daemon(h), 0);
    assert_int_equal(procbus_liveness(&h->r, 60 * PB_NS_PER_SEC), PROCBUS_SHUTDOWN);
    pbt_remove_daemon(h);
}

void pbt_track_bg(pid_t pid, int track)
{
    for (int i = 0; i < MAX_BG; i++) {
        if (track && g_current.bg[i] == 0) {
            g_current.bg[i] = pid;
            return;
        }
        if (!track && g_current.bg[i] == pid) {
            g_current.bg[i] = 0;
            return;
        }
    }
}

static void reap(pid_t pid)
{
    if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

int pbt_teardown(void **state)
{
    char cmd[128];
    (void)state;

    for (int i = 0; i < MAX_BG; i++)
        reap(g_current.bg[i]);
    reap(g_current.pid);
    if (g_current.seg[0] != '\0')
        pbt_unlink(g_current.seg);
    if (g_current.dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_current.dir);
        if (system(cmd) != 0) {
            /* best effort */
        }
    }
    memset(&g_current, 0, sizeof(g_current));
    return 0;
}

int pbt_cli(const struct daemon_h *h, const char *args, const char *redirects)
{
    char exe[256], cmd[2048];
    int st;

    snprintf(cmd, sizeof(cmd), "%s -s %s -S %s %s %s", pbt_bin("procbus", exe, sizeof(exe)), h->seg,
             h->sock, args, redirects);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int pbt_wait_state(struct daemon_h *h, const char *name, uint16_t state, int timeout_ms,
                   struct procbus_proc *out)
{
    const uint64_t end = pb_now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
    struct procbus_proc p;

    for (;;) {
        uint64_t g = procbus_generation(&h->r);
        if (procbus_get_name(&h->r, name, &p) == 0 && p.state == state) {
            if (out)
                *out = p;
            return 0;
        }
        if (pb_now_ns(CLOCK_MONOTONIC) > end)
            return -ETIMEDOUT;
        procbus_wait(&h->r, g, 200);
    }
}
