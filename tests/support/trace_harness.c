/* trace_harness.c - the tracer tests' procbusd (host or own pid namespace), records, /proc scans.
 */
#define _GNU_SOURCE
#include "trace_harness.h"

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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctrace_user.h"
#include "support.h"
#include "util.h"

/* What the teardown cleans: copies, as handles live on the tests' stacks. */
static struct {
    pid_t pid, procbusd;
    char seg[64], dir[64];
    char marker[64];
} g_cur;

static struct procbus_proc *g_recs;
static size_t g_cap;
static char *g_lastlog; /* procbusd's stderr, kept by pbtt_stop */

void pbtt_need_bpf(void)
{
    char why[512] = "";
    int rc = proctrace_available(why, sizeof(why));

    if (rc == 0)
        return;
    if (rc == -EPERM || rc == -ENOENT || rc == -ENOSYS) {
        printf("[   SKIP   ] the eBPF tracer cannot run here: %s\n", why);
        fflush(stdout);
        skip();
    }
    fail_msg("the eBPF tracer failed to load (%d): %s", rc, why);
}

static int is_child(pid_t pid, void *arg)
{
    pid_t ppid = 0;

    return pbt_proc_stat(pid, &ppid, NULL) != 0 && ppid == *(pid_t *)arg;
}

/* The child of `parent` (unshare's: procbusd), waiting up to 30 s for it; 0 if none. */
static pid_t child_of(pid_t parent)
{
    pid_t kids[4];
    int k;

    for (k = 0; k < 1500; k++) {
        if (pbt_scan_pids(is_child, &parent, kids, 4) > 0)
            return kids[0];
        usleep(20000);
    }
    return 0;
}

void pbtt_start(struct tdaemon *d, int pidns, const char *body)
{
    char exe[256];
    int i, rc = -1;

    memset(d, 0, sizeof(*d));
    d->pidns = pidns;
    snprintf(d->h.dir, sizeof(d->h.dir), "/tmp/pbd-ttest-XXXXXX");
    assert_non_null(mkdtemp(d->h.dir));
    pbt_name(d->h.seg);
    snprintf(d->h.sock, sizeof(d->h.sock), "%s/ctl.sock", d->h.dir);
    snprintf(d->h.conf, sizeof(d->h.conf), "%s/procbus.conf", d->h.dir);
    pbt_write_conf(&d->h, body);
    pbt_bin("procbusd", exe, sizeof(exe));
    d->h.pid = fork();
    assert_true(d->h.pid >= 0);
    if (d->h.pid == 0) {
        char logpath[160];
        int log;
        snprintf(logpath, sizeof(logpath), "%s/procbusd.log", d->h.dir);
        log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test runner that died */
        if (getenv("PBD_TEST_VERBOSE") == NULL && log >= 0)
            dup2(log, 2);
        if (pidns)
            execlp("unshare", "unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
                   exe, "-c", d->h.conf, (char *)NULL);
        else
            execl(exe, exe, "-c", d->h.conf, (char *)NULL);
        _exit(127);
    }
    g_cur.pid = d->h.pid;
    snprintf(g_cur.seg, sizeof(g_cur.seg), "%s", d->h.seg);
    snprintf(g_cur.dir, sizeof(g_cur.dir), "%s", d->h.dir);
    for (i = 0; i < 1500; i++) { /* until the segment exists (generous: ASan, slow CI) */
        int st;
        rc = procbus_open(&d->h.r, d->h.seg);
        if (rc == 0)
            break;
        if (waitpid(d->h.pid, &st, WNOHANG) == d->h.pid) {
            char *log = pbtt_log(d);
            fprintf(stderr, "procbusd exited while starting (status 0x%x); its stderr:\n%s", st,
                    log);
            free(log);
            d->h.pid = g_cur.pid = 0;
            break;
        }
        usleep(20000);
    }
    assert_int_equal(rc, 0);
    d->procbusd = pidns ? child_of(d->h.pid) : d->h.pid;
    assert_true(d->procbusd > 0);
    g_cur.procbusd = d->procbusd;
}

static void remove_files(void)
{
    char cmd[128];

    if (g_cur.seg[0] != '\0')
        pbt_unlink(g_cur.seg);
    if (g_cur.dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_cur.dir);
        if (system(cmd) != 0) {
            /* best effort */
        }
    }
}

void pbtt_stop(struct tdaemon *d)
{
    siginfo_t si;
    int st;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, d->h.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == d->h.pid)
        fail_msg("procbusd died during the test: %s %d",
                 si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
    kill(d->procbusd, SIGTERM);
    st = pbt_wait_child(d->h.pid);
    d->h.pid = g_cur.pid = g_cur.procbusd = 0;
    if (st != 0) {
        char *log = pbtt_log(d);
        fprintf(stderr, "procbusd exited with %d; its stderr:\n%s", st, log);
        free(log);
    }
    assert_int_equal(st, 0);
    assert_int_equal(procbus_liveness(&d->h.r, 60 * PB_NS_PER_SEC), PROCBUS_SHUTDOWN);
    procbus_close(&d->h.r);
    free(g_lastlog);
    g_lastlog = pbtt_log(d);
    remove_files();
    memset(&g_cur, 0, offsetof(__typeof__(g_cur), marker)); /* the marker stays for teardown */
}

void pbtt_mark(const char *marker)
{
    snprintf(g_cur.marker, sizeof(g_cur.marker), "%s", marker ? marker : "");
}

int pbtt_teardown(void **state)
{
    int i, st;
    (void)state;

    if (g_cur.procbusd > 0 && g_cur.pid > 0 && waitpid(g_cur.pid, &st, WNOHANG) == 0) {
        kill(g_cur.procbusd, SIGCONT);
        kill(g_cur.procbusd, SIGTERM);
        for (i = 0; i < 100 && waitpid(g_cur.pid, &st, WNOHANG) == 0; i++)
            usleep(100 * 1000);
        if (i == 100) {
            kill(g_cur.pid, SIGKILL); /* unshare --kill-child takes its namespace with it */
            kill(g_cur.procbusd, SIGKILL);
            waitpid(g_cur.pid, &st, 0);
        }
    }
    if (g_cur.marker[0] != '\0') {
        pid_t pids[256];
        int running = 0, k, n;
        for (k = 0; k < 50; k++) {
            pbtt_scan_marked(g_cur.marker, &running, NULL, pids, 256);
            if (running == 0)
                break;
            for (n = 0; n < running && n < 256; n++)
                kill(pids[n], SIGKILL);
            usleep(20000);
        }
    }
    remove_files();
    memset(&g_cur, 0, sizeof(g_cur));
    return 0;
}

int pbtt_cli(struct tdaemon *d, const char *args, char *out, size_t len)
{
    char redir[256], path[128], buf[4096];
    size_t n = 0;
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/cli.out", d->h.dir);
    snprintf(redir, sizeof(redir), ">%s 2>&1 </dev/null", path);
    rc = pbt_cli(&d->h, args, redir);
    buf[0] = '\0';
    f = fopen(path, "r");
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    if (out != NULL && len > 0)
        snprintf(out, len, "%s", buf);
    if (getenv("PBTT_QUIET") == NULL)
        print_message("procbus %s -> %d: %s%s", args, rc, buf,
                      n == 0 || buf[n - 1] != '\n' ? "\n" : "");
    return rc;
}

size_t pbtt_list(struct tdaemon *d, const struct procbus_proc **recs)
{
    size_t n = 0;
    int rc, tries;

    for (tries = 0; tries < 1000; tries++) {
        rc = procbus_list(&d->h.r, g_recs, g_cap, &n);
        if (rc == 0) {
            *recs = g_recs;
            return n;
        }
        if (rc == -ENOSPC) {
            free(g_recs);
            g_cap = n + 256;
            g_recs = calloc(g_cap, sizeof(*g_recs));
            assert_non_null(g_recs);
        } else if (rc != -EAGAIN) {
            fail_msg("procbus_list: %d", rc);
        }
    }
    fail_msg("procbus_list: lapped 1000 times");
    return 0;
}

static int has_argv(const struct procbus_proc *p, const char *args, size_t len)
{
    return (p->cmdline_len == len || (p->cmdline_len == len + 1 && p->cmdline[len] == '\0')) &&
           len <= sizeof(p->cmdline) && memcmp(p->cmdline, args, len) == 0;
}

int pbtt_find_argv(struct tdaemon *d, uint64_t prog_id, const char *args, size_t len,
                   uint16_t state, struct procbus_proc *out)
{
    const struct procbus_proc *r;
    size_t i, n = pbtt_list(d, &r);
    uint64_t best = 0;
    int k = 0;

    for (i = 0; i < n; i++) {
        if (prog_id != 0 && (!(r[i].flags & PROCBUS_F_DESCENDANT) || r[i].program_id != prog_id))
            continue;
        if (!has_argv(&r[i], args, len) || (state != 0 && r[i].state != state))
            continue;
        k++;
        if (out != NULL && r[i].id > best) {
            best = r[i].id;
            *out = r[i];
        }
    }
    return k;
}

int pbtt_get(struct tdaemon *d, uint64_t id, struct procbus_proc *out)
{
    const struct procbus_proc *r;
    size_t i, n = pbtt_list(d, &r);

    for (i = 0; i < n; i++) {
        if (r[i].id == id) {
            if (out != NULL)
                *out = r[i];
            return 0;
        }
    }
    return -ENOENT;
}

int pbtt_wait(struct tdaemon *d, int ms, int (*cond)(struct tdaemon *d, void *arg), void *arg)
{
    long t0 = pbt_now_ms();
    uint64_t gen = procbus_generation(&d->h.r);
    siginfo_t si;

    while (!cond(d, arg)) {
        if (pbt_now_ms() - t0 > ms) {
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, d->h.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == d->h.pid)
                print_message("(procbusd has died: %s %d)\n",
                              si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
            return 0;
        }
        if (procbus_wait(&d->h.r, gen, 100) == -EPIPE)
            usleep(100 * 1000);
        gen = procbus_generation(&d->h.r);
    }
    return 1;
}

void pbtt_dump(struct tdaemon *d)
{
    const struct procbus_proc *r;
    size_t i, j, n = pbtt_list(d, &r);
    int k = 0;

    for (i = 0; i < n && k < 40; i++) {
        const struct procbus_proc *p = &r[i];
        char args[PROCBUS_CMDLINE_LEN + 1];
        size_t len = p->cmdline_len < sizeof(p->cmdline) ? p->cmdline_len : sizeof(p->cmdline);

        if (!(p->flags & PROCBUS_F_DESCENDANT))
            continue;
        for (j = 0; j < len; j++)
            args[j] = p->cmdline[j] ? p->cmdline[j] : ' ';
        args[len] = '\0';
        print_message("  record %llu program %llu pid %d ppid %d state %u exit %u/%d comm '%.16s' "
                      "argv '%s'\n",
                      (unsigned long long)p->id, (unsigned long long)p->program_id, (int)p->pid,
                      (int)p->ppid, p->state, p->exit_kind, p->exit_code, p->comm, args);
        k++;
    }
}

/* /proc/PID/stat: state letter and flags; 0 if gone. */
static char stat_of(pid_t pid, unsigned long *flags)
{
    char path[64], buf[1024], *p, st = 0;
    ssize_t n;
    int fd, i;

    *flags = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0')
        return 0;
    st = p[2];
    for (i = 0; p != NULL && i < 7; i++) /* ") S ppid pgrp session tty tpgid flags" */
        p = strchr(p + 1, ' ');
    if (p != NULL)
        *flags = strtoul(p + 1, NULL, 10);
    return st;
}

struct marked {
    const char *marker;
    int running, exiting;
};

static int marked_match(pid_t pid, void *arg)
{
    struct marked *m = arg;
    char path[64], buf[1024];
    unsigned long flags;
    ssize_t n, off;
    char st;
    int fd, hit = 0;

    if (pid == getpid())
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (off = (ssize_t)strlen(buf) + 1; off < n && !hit; off += (ssize_t)strlen(buf + off) + 1)
        hit = strcmp(buf + off, m->marker) == 0;
    if (!hit)
        return 0;
    st = stat_of(pid, &flags);
    if (st == 0 || st == 'Z' || st == 'X')
        return 0;
    if (flags & 0x4ul) { /* PF_EXITING: past do_exit()'s start, dying */
        m->exiting++;
        return 0;
    }
    m->running++;
    return 1;
}

void pbtt_scan_marked(const char *marker, int *running, int *exiting, pid_t *pids, int max)
{
    struct marked m = {marker, 0, 0};
    static pid_t all[8192];
    int n = pbt_scan_pids(marked_match, &m, all, 8192), i;

    for (i = 0; pids != NULL && i < n && i < max; i++)
        pids[i] = all[i];
    *running = m.running;
    if (exiting != NULL)
        *exiting = m.exiting;
}

const char *pbtt_last_log(void)
{
    return g_lastlog != NULL ? g_lastlog : "";
}

char *pbtt_log(struct tdaemon *d)
{
    char path[160], *s;

    snprintf(path, sizeof(path), "%s/procbusd.log", d->h.dir);
    s = pbt_slurp(path, NULL);
    return s != NULL ? s : strdup("");
}
