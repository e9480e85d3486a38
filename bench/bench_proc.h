/* bench_proc.h - bench_util.h's second half: processes, segments, procbusd instances, set-up. */
#ifndef PROCBUS_BENCH_PROC_H
#define PROCBUS_BENCH_PROC_H

#ifndef PROCBUS_BENCH_UTIL_H
#error "include bench_util.h, which includes this file"
#endif

/* ---- processes ---- */

/* Remember pid in g_bg (bench_cleanup stops it); ignored when g_bg is full. */
static inline void track_bg(pid_t pid)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] == 0) {
            g_bg[i] = pid;
            return;
        }
}

/* Forget pid in g_bg (it has been reaped). */
static inline void untrack_bg(pid_t pid)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] == pid)
            g_bg[i] = 0;
}

/* Start argv in its own process group (stdin /dev/null, stdout+stderr to log, deathsig if we
 * die), tracked in g_bg; its pid, or -1 (said). */
static inline pid_t start_bg(char *const argv[], const char *log, int deathsig)
{
    pid_t parent = getpid(), pid = fork();

    if (pid < 0) {
        say("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, deathsig);
        if (getppid() != parent)
            _exit(127);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track_bg(pid);
    return pid;
}

/* Wait up to timeout_ms for pid to exit; 0 and *status when it did (untracked), -1 if running. */
static inline int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    uint64_t end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (status != NULL)
                *status = st;
            untrack_bg(pid);
            return 0;
        }
        if (mono() > end)
            return -1;
        sleep_ms(5);
    }
}

/* SIGTERM, wait up to timeout_ms, then SIGKILL (it and its group); exit code, 128+sig or -1. */
static inline int stop_bg(pid_t pid, int timeout_ms, const char *what)
{
    int st = 0;

    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    if (wait_exit(pid, timeout_ms, &st) == 0)
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    say("%s (pid %d) still running %d ms after SIGTERM: SIGKILL", what, (int)pid, timeout_ms);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    wait_exit(pid, 5000, &st);
    return -1;
}

/* Is child pid still running? Does not reap it (WNOWAIT), so its pid cannot be reused. */
static inline int bg_alive(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return pid > 0 && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == 0;
}

/* Kill and reap every remaining child (a subreaper: orphans land here too). */
static inline void reap_strays(void)
{
    pid_t me = getpid();
    int round;

    for (round = 0; round < 3; round++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;

        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[300], buf[512], *p;
            int fd;
            ssize_t n;
            long ppid;

            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = '\0';
            p = strrchr(buf, ')');
            if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1 || ppid != (long)me)
                continue;
            found = 1;
            kill((pid_t)atol(e->d_name), SIGKILL);
        }
        if (d != NULL)
            closedir(d);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (!found)
            break;
        sleep_ms(20);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}

/* Run argv to completion (stdin /dev/null, stdout to out or /dev/null, stderr appended to
 * g_errlog); wall ns from spawn to reaped and *status, or -1 (said). */
static inline int64_t run_timed(char *const argv[], const char *out, int *status)
{
    posix_spawn_file_actions_t fa;
    uint64_t t0, t1;
    pid_t pid;
    int rc, st = 0;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&fa, 2, g_errlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
    t0 = mono();
    rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    if (rc == 0) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    t1 = mono();
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        say("spawn %s: %s", argv[0], strerror(rc));
        return -1;
    }
    *status = st;
    return (int64_t)(t1 - t0);
}

/* utime + stime of pid in clock ticks, or -1. */
static inline long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* ---- segments ---- */

/* Remember segment seg in g_segs (bench_cleanup unlinks it); ignored when g_segs is full. */
static inline void track_seg(const char *seg)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_segs[i][0] == '\0') {
            snprintf(g_segs[i], sizeof(g_segs[i]), "%s", seg);
            return;
        }
}

/* Forget segment seg in g_segs. */
static inline void forget_seg(const char *seg)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (strcmp(g_segs[i], seg) == 0)
            g_segs[i][0] = '\0';
}

/* Unlink segment seg's file (procbus_segment_path: /run/procbus/seg as root, else /dev/shm/seg)
 * and, if owner > 0, the temp files a publisher killed while creating its segment leaves beside
 * it; then forget seg. */
static inline void unlink_seg(const char *seg, pid_t owner)
{
    char path[PROCBUS_PATH_MAX + 64], *slash;
    glob_t g;
    size_t i;

    if (procbus_segment_path(seg, path, PROCBUS_PATH_MAX) < 0)
        return;
    unlink(path);
    slash = strrchr(path, '/');
    if (owner > 0 && slash != NULL) {
        snprintf(slash, sizeof(path) - (size_t)(slash - path), "/.procbus-tmp.%d.*", (int)owner);
        if (glob(path, 0, NULL, &g) == 0) {
            for (i = 0; i < g.gl_pathc; i++)
                unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    forget_seg(seg);
}

/* ---- procbusd instances ---- */

/* g_procbusd and g_procbus: g_bindir/procbusd and g_bindir/procbus. 0, or -1 (said, with `hint`:
 * how to name another folder) if either is not executable. */
static inline int bench_find_programs(const char *hint)
{
    snprintf(g_procbusd, sizeof(g_procbusd), "%s/procbusd", g_bindir);
    snprintf(g_procbus, sizeof(g_procbus), "%s/procbus", g_bindir);
    if (access(g_procbusd, X_OK) == 0 && access(g_procbus, X_OK) == 0)
        return 0;
    say("%s or %s missing: make %s/procbusd %s/procbus (or %s)", g_procbusd, g_procbus, g_bindir,
        g_bindir, hint);
    return -1;
}

/* A procbusd this program runs: its segment, control socket, log and config file. */
struct bench_daemon {
    pid_t pid; /* 0: not running */
    char seg[96], sock[128], log[128], conf[128];
    uint64_t t_start; /* mono() when it was started */
};

/* Name d's files after `tag` (and a counter: unique per call): segment BENCH_NAME-PID-TAG-N
 * (tracked for bench_cleanup), g_tmp/TAG-N.sock, g_tmp/procbusd-TAG-N.log and .conf. */
static inline void bench_daemon_init(struct bench_daemon *d, const char *tag)
{
    int n = g_daemon_seq++;

    memset(d, 0, sizeof(*d));
    snprintf(d->seg, sizeof(d->seg), BENCH_NAME "-%d-%s-%d", (int)getpid(), tag, n);
    snprintf(d->sock, sizeof(d->sock), "%s/%s-%d.sock", g_tmp, tag, n);
    snprintf(d->log, sizeof(d->log), "%s/procbusd-%s-%d.log", g_tmp, tag, n);
    snprintf(d->conf, sizeof(d->conf), "%s/procbusd-%s-%d.conf", g_tmp, tag, n);
    track_seg(d->seg);
}

/* Start `g_procbusd -c CONF -s SEG --socket SOCK extra...` (extra: NULL-terminated, at most 8;
 * write d->conf first) with PR_SET_PDEATHSIG and its output in d->log; 0, or -1 (said). */
static inline int bench_daemon_start(struct bench_daemon *d, const char *const extra[])
{
    char *argv[16] = {g_procbusd, "-c", d->conf, "-s", d->seg, "--socket", d->sock};
    int i;

    for (i = 0; extra != NULL && extra[i] != NULL && i < 8; i++)
        argv[7 + i] = (char *)extra[i];
    d->t_start = mono();
    d->pid = start_bg(argv, d->log, SIGTERM);
    if (d->pid < 0)
        d->pid = 0;
    return d->pid > 0 ? 0 : -1;
}

/* Still running? Does not reap it (WNOWAIT): bench_daemon_stop does, so its pid is not reused. */
static inline int bench_daemon_alive(const struct bench_daemon *d)
{
    return bg_alive(d->pid);
}

/*
 * Stop d if it runs (SIGTERM, SIGKILL after timeout_ms; its log's tail unless it exited 0) and
 * remove its segment (with the temp files of a publisher killed while creating it), socket and
 * config file. Safe on a bench_daemon that never started (zeroed or only named).
 */
static inline void bench_daemon_stop(struct bench_daemon *d, int timeout_ms)
{
    if (d->pid > 0) {
        int rc = stop_bg(d->pid, timeout_ms, "procbusd");
        if (rc != 0) {
            say("procbusd exited with status %d", rc);
            show_tail(d->log);
        }
        unlink_seg(d->seg, d->pid);
        unlink(d->sock);
        d->pid = 0;
    } else if (d->seg[0] != '\0') {
        unlink_seg(d->seg, 0);
    }
    if (d->conf[0] != '\0')
        unlink(d->conf);
}

/* ---- setup and cleanup ---- */

/* Signal handler: set g_stop. */
static inline void bench_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* nftw callback: remove path (files, then folders with FTW_DEPTH). */
static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Make g_tmp and g_errlog, become a child subreaper, set g_stop on SIGINT/SIGTERM/SIGHUP and
 * ignore SIGPIPE; 0, or -1 (said) if the folder cannot be made. */
static inline int bench_setup(void)
{
    struct sigaction sa;

    snprintf(g_tmp, sizeof(g_tmp), "/tmp/" BENCH_NAME "-XXXXXX");
    if (mkdtemp(g_tmp) == NULL) {
        say("mkdtemp: %s", strerror(errno));
        g_tmp[0] = '\0';
        return -1;
    }
    snprintf(g_errlog, sizeof(g_errlog), "%s/runs.err", g_tmp);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Stop the processes in g_bg, reap every other child, unlink the segments in g_segs and remove
 * g_tmp; safe to call again. */
static inline void bench_cleanup(void)
{
    int i;

    for (i = 0; i < MAX_BG; i++)
        if (g_bg[i] > 0)
            stop_bg(g_bg[i], 10000, "background process");
    reap_strays();
    for (i = 0; i < MAX_BG; i++)
        if (g_segs[i][0] != '\0')
            unlink_seg(g_segs[i], 0);
    if (g_tmp[0] != '\0')
        nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_tmp[0] = '\0';
}

#endif
