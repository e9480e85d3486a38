/* startup.c - procbusd-bench: starting N programs beside a bare posix_spawn loop; stopping them. */
#include "pbdb.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ---- the floor: a bare posix_spawn loop of the same programs ---- */

/* posix_spawnp `sleep 1000` n times (each returns once the child exec'd); the time from the
 * first call to the last return, ms; then SIGKILL and reap them. NAN if one failed. */
static double bare_spawn_ms(int n)
{
    char *argv[] = {"sleep", "1000", NULL};
    pid_t *pids = calloc((size_t)n, sizeof(*pids));
    uint64_t t0, t1;
    int i, started = 0;

    if (pids == NULL)
        return NAN;
    t0 = mono();
    for (i = 0; i < n && !g_stop; i++) {
        if (posix_spawnp(&pids[i], "sleep", NULL, NULL, argv, environ) != 0)
            break;
        started++;
    }
    t1 = mono();
    for (i = 0; i < started; i++)
        kill(pids[i], SIGKILL);
    for (i = 0; i < started; i++)
        waitpid(pids[i], NULL, 0);
    free(pids);
    return started == n ? (double)(t1 - t0) / 1e6 : NAN;
}

/* ---- what the daemon does meanwhile: heartbeat, control requests ---- */

/* One control request (ctl.h's protocol) on `sock`: connect, send `line`, read the reply to
 * its end. The round trip in ms, or -1. */
static double ctl_roundtrip(const char *sock, const char *line)
{
    struct sockaddr_un sa;
    char buf[4096];
    uint64_t t0 = mono();
    ssize_t n;
    int fd, final = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        close(fd);
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        final |= strstr(buf, "OK\n") != NULL || strstr(buf, "ERR") != NULL;
    }
    close(fd);
    return final ? (double)(mono() - t0) / 1e6 : -1;
}

/* Watched while the programs start (a thread each: the heartbeat's age every ms, a control
 * request every 20 ms), for the window the main thread opens and closes. */
struct watch {
    struct procbus_reader r; /* the watcher's own reader */
    const char *sock, *req;
    volatile int in_window, done;
    double hb_max_ms;
    unsigned long polls, not_alive;
    double *ctl;
    int n_ctl, cap_ctl, ctl_failed;
};

static void *heartbeat_watcher(void *arg)
{
    struct watch *w = arg;

    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
        struct procbus_info in;
        if (__atomic_load_n(&w->in_window, __ATOMIC_ACQUIRE) && procbus_info(&w->r, &in) == 0) {
            double age = (double)((int64_t)mono() - (int64_t)in.heartbeat_ns) / 1e6;
            if (age > w->hb_max_ms)
                w->hb_max_ms = age;
            w->polls++;
            w->not_alive += procbus_liveness(&w->r, PROCBUS_STALE_AFTER_NS) != PROCBUS_ALIVE;
        }
        sleep_us(1000);
    }
    return NULL;
}

static void *control_requester(void *arg)
{
    struct watch *w = arg;

    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&w->in_window, __ATOMIC_ACQUIRE) && w->n_ctl < w->cap_ctl) {
            double ms = ctl_roundtrip(w->sock, w->req);
            if (ms < 0)
                w->ctl_failed++;
            else
                w->ctl[w->n_ctl++] = ms;
        }
        sleep_ms(20);
    }
    return NULL;
}

/* ---- procbusd starting n programs ---- */

struct start_result {
    double start_ms;  /* first STARTING staged -> last RUNNING staged (the publisher's clock) */
    double seen_ms;   /* procbusd's exec -> all RUNNING seen by a reader */
    double hb_max_ms; /* oldest heartbeat seen in the window */
    unsigned long not_alive, polls;
    double ctl_p50_ms, ctl_max_ms;
    int n_ctl, ctl_failed;
    uint64_t tracer_drops;
    double stop_ms; /* SIGTERM -> exit, all running */
};

/* Write the config of n `sleep 1000` programs (startsecs = 0) with room for them. */
static int write_conf(struct bench_daemon *d, int n)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "; procbusd-bench: %d programs started at once\n"
             "[procbusd]\ncapacity = %d\n"
             "[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)05d\nstartsecs = 0\n",
             n, n + n / 2 + 64, n);
    return write_file(d->conf, text);
}

/*
 * Follow the ring until `n` program records reached RUNNING (or `stop_at` of them, then
 * return: 0 with *running the count): the staging time of the first STARTING and the last
 * RUNNING into first/last (CLOCK_REALTIME). A lapped reader counts from a snapshot. 0 or -1.
 */
static int follow_start(struct procbus_reader *r, const struct bench_daemon *d, int n, int stop_at,
                        struct watch *w, uint64_t *first, uint64_t *last, int *running)
{
    uint64_t end = mono() + 300000 * NS_PER_MS;
    int count = 0;

    *first = *last = 0;
    while (count < stop_at) {
        uint64_t gen = procbus_generation(r), missed = 0;
        struct procbus_event ev;
        int rc;

        while ((rc = procbus_next_event(r, &ev, &missed)) == 0 || missed > 0) {
            if (rc != 0) { /* lapped: count from the snapshot */
                struct procbus_proc *list = calloc((size_t)n + 64, sizeof(*list));
                size_t got = 0, i;
                if (list != NULL && procbus_list(r, list, (size_t)n + 64, &got) == 0) {
                    count = 0;
                    for (i = 0; i < got; i++)
                        count += !(list[i].flags & PROCBUS_F_DESCENDANT) &&
                                 list[i].state == PROCBUS_STATE_RUNNING;
                }
                free(list);
                break;
            }
            if (ev.kind != PROCBUS_EV_STATE)
                continue;
            if (ev.new_state == PROCBUS_STATE_STARTING && *first == 0) {
                *first = ev.time_ns;
                if (w != NULL)
                    __atomic_store_n(&w->in_window, 1, __ATOMIC_RELEASE);
            }
            if (ev.new_state == PROCBUS_STATE_RUNNING && ev.old_state == PROCBUS_STATE_STARTING) {
                count++;
                *last = ev.time_ns;
            }
        }
        if (count >= stop_at)
            break;
        if (mono() > end || g_stop || !bench_daemon_alive(d)) {
            say("procbusd: %d of %d programs RUNNING", count, n);
            show_tail(d->log);
            return -1;
        }
        procbus_wait(r, gen, 100);
    }
    *running = count;
    return 0;
}

/* One procbusd start of n programs with the tracer as configured by default (eBPF when it
 * loads), watched; then SIGTERM. 0 or -1. */
static int procbusd_start_once(int n, struct start_result *res)
{
    struct bench_daemon d;
    struct procbus_reader r;
    struct watch w;
    pthread_t th[2];
    struct procbus_info in;
    uint64_t first, last;
    char req[64];
    int rc = -1, running = 0, threads = 0, st;

    memset(res, 0, sizeof(*res));
    memset(&w, 0, sizeof(w));
    bench_daemon_init(&d, "start");
    if (write_conf(&d, n) < 0 || bench_daemon_start(&d, NULL) < 0 || open_seg(&r, &d, 30000) < 0)
        goto out;
    procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
    if (open_seg(&w.r, &d, 1000) < 0) {
        procbus_close(&r);
        goto out;
    }
    /* a request the daemon answers at once: the last program, not yet running */
    snprintf(req, sizeof(req), "signal CONT p%05d\n", n - 1);
    w.sock = d.sock;
    w.req = req;
    w.cap_ctl = 4096;
    w.ctl = calloc((size_t)w.cap_ctl, sizeof(double));
    if (w.ctl != NULL && pthread_create(&th[0], NULL, heartbeat_watcher, &w) == 0) {
        threads++;
        if (pthread_create(&th[1], NULL, control_requester, &w) == 0)
            threads++;
    }
    if (threads == 2 && follow_start(&r, &d, n, n, &w, &first, &last, &running) == 0) {
        res->seen_ms = (double)(mono() - d.t_start) / 1e6;
        res->start_ms = (double)(last - first) / 1e6;
        rc = 0;
    }
    __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
    while (threads > 0)
        pthread_join(th[--threads], NULL);
    res->hb_max_ms = w.hb_max_ms;
    res->not_alive = w.not_alive;
    res->polls = w.polls;
    res->n_ctl = w.n_ctl;
    res->ctl_failed = w.ctl_failed;
    res->ctl_max_ms = w.n_ctl > 0 ? pct(w.ctl, w.n_ctl, 100) : NAN;
    res->ctl_p50_ms = w.n_ctl > 0 ? pct(w.ctl, w.n_ctl, 50) : NAN;
    if (procbus_info(&r, &in) == 0)
        res->tracer_drops = in.tracer_drops;
    procbus_close(&w.r);
    procbus_close(&r);
    if (rc == 0) {
        uint64_t t0 = mono();
        kill(d.pid, SIGTERM);
        if (wait_exit(d.pid, 60000, &st) == 0) {
            res->stop_ms = (double)(mono() - t0) / 1e6;
            unlink_seg(d.seg, d.pid);
            d.pid = 0;
        }
    }
out:
    free(w.ctl);
    bench_daemon_stop(&d, 60000);
    return rc;
}

/* A row of the median of v[0..n) over rounds, with their range (sorts v). */
static void add_med(const char *key, const char *label, double *v, int n, const char *unit,
                    enum tgt t, double target)
{
    double m = median(v, (unsigned)n); /* sorted now: v[0] and v[n-1] are the range */
    add_row(key, label, m, v[0], v[n - 1], unit, t, target, 1);
}

int bench_startup(int n, int rounds)
{
    double bare[9], pbd[9], seen[9], ratio[9], ctlmax = 0, ctl50[9], hbmax = 0, stop[9];
    unsigned long not_alive = 0, polls = 0;
    uint64_t drops = 0;
    int i, ok = 1, nctl = 0, ctlfail = 0;
    char key[80], label[200];

    if (rounds > 9)
        rounds = 9;
    for (i = 0; i < rounds && ok && !g_stop; i++) {
        struct start_result s;
        say("start-up: %d programs, round %d of %d: bare posix_spawn loop, then procbusd", n, i + 1,
            rounds);
        bare[i] = bare_spawn_ms(n);
        ok = isfinite(bare[i]) && procbusd_start_once(n, &s) == 0;
        if (!ok)
            break;
        pbd[i] = s.start_ms;
        seen[i] = s.seen_ms;
        stop[i] = s.stop_ms;
        ctl50[i] = s.ctl_p50_ms;
        if (s.ctl_max_ms > ctlmax)
            ctlmax = s.ctl_max_ms;
        if (s.hb_max_ms > hbmax)
            hbmax = s.hb_max_ms;
        not_alive += s.not_alive;
        polls += s.polls;
        nctl += s.n_ctl;
        ctlfail += s.ctl_failed;
        drops += s.tracer_drops;
        say("  bare %.0f ms, procbusd %.0f ms (seen %.0f ms after its exec), heartbeat <= %.0f ms, "
            "%d control requests <= %.1f ms, tracer drops %" PRIu64,
            bare[i], pbd[i], seen[i], s.hb_max_ms, s.n_ctl, s.ctl_max_ms, s.tracer_drops);
    }
    if (!ok || g_stop)
        return -1;
    for (i = 0; i < rounds; i++)
        ratio[i] = pbd[i] / bare[i];
    snprintf(key, sizeof(key), "startup_bare_%d_ms", n);
    snprintf(label, sizeof(label), "floor: bare posix_spawn loop of %d `sleep 1000`", n);
    add_med(key, label, bare, rounds, "ms", T_NONE, 0);
    snprintf(key, sizeof(key), "startup_procbusd_%d_ms", n);
    snprintf(label, sizeof(label), "procbusd: first STARTING -> %d RUNNING (staged; startsecs = 0)",
             n);
    add_med(key, label, pbd, rounds, "ms", T_NONE, 0);
    snprintf(key, sizeof(key), "startup_%d_ratio", n);
    snprintf(label, sizeof(label), "  ratio procbusd / bare loop, %d programs", n);
    add_med(key, label, ratio, rounds, "x", T_LE, 1.5);
    snprintf(key, sizeof(key), "startup_seen_%d_ms", n);
    snprintf(label, sizeof(label), "procbusd exec -> %d RUNNING seen by a reader", n);
    add_med(key, label, seen, rounds, "ms", T_NONE, 0);
    snprintf(key, sizeof(key), "startup_%d_heartbeat_max_age_ms", n);
    snprintf(label, sizeof(label),
             "during it: oldest heartbeat seen (polled every ms; every "
             "round; interval 500 ms)");
    add(key, label, hbmax, "ms", T_LE, 1000, 1);
    snprintf(key, sizeof(key), "startup_%d_not_alive_polls", n);
    snprintf(label, sizeof(label), "during it: polls where procbus_liveness was not ALIVE (of %lu)",
             polls);
    add(key, label, (double)not_alive, "", T_EQ, 0, 1);
    snprintf(key, sizeof(key), "startup_%d_ctl_max_ms", n);
    snprintf(label, sizeof(label),
             "during it: control request round trip, slowest of %d (one every 20 ms)", nctl);
    add(key, label, ctlmax, "ms", T_LT, 50, 1);
    snprintf(key, sizeof(key), "startup_%d_ctl_p50_ms", n);
    snprintf(label, sizeof(label), "during it: control request round trip, median round's p50");
    add(key, label, median(ctl50, (unsigned)rounds), "ms", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "startup_%d_ctl_failed", n);
    add(key, key, ctlfail, "", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "startup_%d_tracer_drops", n);
    snprintf(label, sizeof(label),
             "tracer events lost in the kernel during it (all rounds; "
             "default ring)");
    add(key, label, (double)drops, "events", T_EQ, 0, 1);
    snprintf(key, sizeof(key), "startup_%d_stop_ms", n);
    snprintf(label, sizeof(label), "procbusd SIGTERM -> exit, %d programs running", n);
    add(key, label, median(stop, (unsigned)rounds), "ms", T_NONE, 0, 1);
    return 0;
}

/* ---- thousands of programs, and SIGTERM ---- */

/* Processes this bench (a child subreaper) inherited from a daemon that exited: its
 * leftovers. Zombies do not count (they are reaped below). SIGKILLs them; how many. */
static int count_leftovers(void)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    pid_t me = getpid();
    int n = 0;

    if (dir == NULL)
        return -1;
    while ((de = readdir(dir)) != NULL) {
        char path[64], buf[512], *p;
        int fd, ppid = 0;
        ssize_t len;
        char state;
        pid_t pid = (pid_t)atoi(de->d_name);

        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        p = strrchr(buf, ')');
        if (p == NULL || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid != me || state == 'Z')
            continue;
        n++;
        kill(pid, SIGKILL);
    }
    closedir(dir);
    reap_strays();
    return n;
}

/* Start n programs; SIGTERM once `term_at` of them are RUNNING (n: all). Rows with `tag`. */
static int start_then_term(int n, int term_at, const char *tag, const char *what)
{
    struct bench_daemon d;
    struct procbus_reader r;
    uint64_t first, last, t0;
    int rc = -1, running = 0, st, left;
    char key[80], label[200];

    bench_daemon_init(&d, tag);
    if (write_conf(&d, n) < 0 || bench_daemon_start(&d, NULL) < 0 || open_seg(&r, &d, 30000) < 0)
        goto out;
    procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
    if (follow_start(&r, &d, n, term_at, NULL, &first, &last, &running) < 0) {
        procbus_close(&r);
        goto out;
    }
    procbus_close(&r);
    if (term_at == n) {
        snprintf(key, sizeof(key), "startup_procbusd_%d_ms", n);
        snprintf(label, sizeof(label), "procbusd: first STARTING -> %d RUNNING (staged)", n);
        add(key, label, (double)(last - first) / 1e6, "ms", T_NONE, 0, 1);
    }
    t0 = mono();
    kill(d.pid, SIGTERM);
    if (wait_exit(d.pid, 120000, &st) != 0) {
        say("procbusd did not exit within 120 s of SIGTERM");
        goto out;
    }
    snprintf(key, sizeof(key), "stop_%s_ms", tag);
    snprintf(label, sizeof(label), "procbusd SIGTERM -> exit, %s", what);
    add(key, label, (double)(mono() - t0) / 1e6, "ms", T_LT, 2000, 1);
    unlink_seg(d.seg, d.pid);
    d.pid = 0;
    left = count_leftovers();
    snprintf(key, sizeof(key), "stop_%s_leftovers", tag);
    snprintf(label, sizeof(label), "  processes left behind, %s", what);
    add(key, label, left, "", T_EQ, 0, 1);
    rc = 0;
out:
    bench_daemon_stop(&d, 60000);
    return rc;
}

int bench_startup_stop(int n)
{
    char what[96];
    int failed = 0;

    say("start-up and stop: %d programs, SIGTERM once all run", n);
    snprintf(what, sizeof(what), "%d programs running", n);
    failed |= start_then_term(n, n, "all", what) < 0;
    if (g_stop)
        return -1;
    say("start-up and stop: %d programs, SIGTERM once %d run", n, n / 4);
    snprintf(what, sizeof(what), "during a %d-program start (at %d RUNNING)", n, n / 4);
    failed |= start_then_term(n, n / 4, "during", what) < 0;
    return failed || g_stop ? -1 : 0;
}
