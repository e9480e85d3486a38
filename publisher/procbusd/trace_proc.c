/* trace_proc.c - the trace module's /proc feed: walks that find, refresh and lose processes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sampler.h"
#include "trace_int.h"
#include "util.h"

struct walked {
    struct pbd_proc_stat st;
};

static int cmp_start(const void *a, const void *b)
{
    const struct walked *x = a, *y = b;
    if (x->st.start_boot_ns != y->st.start_boot_ns)
        return x->st.start_boot_ns < y->st.start_boot_ns ? -1 : 1;
    return x->st.pid < y->st.pid ? -1 : x->st.pid > y->st.pid;
}

static void read_cmdline(struct procbus_proc *r, pid_t pid)
{
    char path[64], buf[PROCBUS_CMDLINE_LEN + 1];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n > 0)
        pbd_tp_set_cmdline(r, buf, (size_t)n, n > PROCBUS_CMDLINE_LEN);
}

/*
 * A walk found a known process alive: take in what the tracer did not (or, polling, could
 * not) tell. With the tracer, execs and renames come as events: a walk never makes an EXEC
 * of a comm change, it only fills in a rename, a new parent or an argv a loss hid. Polling,
 * another argv is an exec (EXEC event; a program that rewrites its own argv looks the same),
 * another comm alone is a rename.
 */
static void refresh(struct pbd_tracing *t, struct pbd_tp *e, const struct pbd_proc_stat *st)
{
    struct procbus_proc now = e->rec;
    int renamed, argv_changed;

    e->sid = st->sid;
    snprintf(now.comm, sizeof(now.comm), "%.*s", PROCBUS_COMM_LEN - 1, st->comm);
    now.ppid = st->ppid;
    now.pgid = st->pgid;
    renamed = strcmp(now.comm, e->rec.comm) != 0;
    if (t->pt == NULL || renamed || t->reconcile_pending)
        read_cmdline(&now, st->pid);
    argv_changed = now.cmdline_len != e->rec.cmdline_len ||
                   memcmp(now.cmdline, e->rec.cmdline, now.cmdline_len) != 0;
    if (t->pt == NULL && argv_changed) {
        now.state_since_ns = pb_now_ns(CLOCK_REALTIME); /* it exec'd: when the walk saw it */
        e->rec = now;
        pbd_tp_stage(t, e);
        pbd_tp_exec_event(t, &e->rec);
    } else if (renamed || argv_changed || now.ppid != e->rec.ppid || now.pgid != e->rec.pgid) {
        e->rec = now;
        pbd_tp_stage(t, e);
    }
}

#define PF_EXITING_FLAG 0x4ul      /* include/linux/sched.h: in do_exit(), dying */
#define PF_KTHREAD_FLAG 0x200000ul /* a kernel thread: never recorded */

/* Dead for a walk: a zombie, or past the start of do_exit() (its exit event may be in the
 * ring already, or lost: found gone, provisionally, unless the event is read after the scan). */
static int dying(const struct pbd_proc_stat *st)
{
    return st->state == 'Z' || st->state == 'X' || (st->flags & PF_EXITING_FLAG) != 0;
}

/* The program an orphan belongs to, by the PROCBUS_PROCESS_NAME procbusd gave its ancestor. */
static uint64_t program_by_environ(const struct pbd_tracing *t, pid_t pid)
{
    static const char key[] = "PROCBUS_PROCESS_NAME=";
    char path[64], *buf, *p, *end;
    uint64_t id = 0;
    ssize_t n;
    int fd;

    if (t->o.program_by_name == NULL)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    buf = malloc(65536);
    n = buf != NULL ? read(fd, buf, 65535) : -1;
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        for (p = buf, end = buf + n; p < end; p += strlen(p) + 1)
            if (strncmp(p, key, sizeof(key) - 1) == 0) {
                id = t->o.program_by_name(t->o.arg, p + sizeof(key) - 1);
                break;
            }
    }
    free(buf);
    return id;
}

/*
 * Polling: the program of an orphan procbusd adopted whose environment says nothing (it
 * cleared it), by what a walk recorded: a known process (alive or not) whose pid is its
 * session or group, or with the same session (a daemon that called setsid() and forked
 * again); else the one program whose main process was alive when it started. 0 if none
 * or several.
 */
static uint64_t program_by_lineage(const struct pbd_tracing *t, const struct pbd_proc_stat *st)
{
    uint64_t only = 0, slack = t->tick_ns + 1000000ull;
    size_t i;
    int several = 0;

    for (i = 0; i <= t->mask; i++) {
        const struct pbd_tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext) {
            if (e->rec.program_id == 0 || e->rec.pid == st->pid)
                continue;
            if ((st->sid > 0 && (e->rec.pid == st->sid || e->sid == st->sid)) ||
                (st->pgid > 0 && e->rec.pid == st->pgid))
                return e->rec.program_id;
        }
    }
    for (i = 0; i <= t->mask; i++) {
        const struct pbd_tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext) {
            if (!e->root || e->rec.start_boot_ns > st->start_boot_ns + slack)
                continue;
            if (!e->alive && e->exit_boot + slack < st->start_boot_ns)
                continue;
            if (only != 0 && only != e->rec.program_id)
                several = 1;
            only = e->rec.program_id;
        }
    }
    return several ? 0 : only;
}

/* The program a process the table does not know belongs to (0: none). */
static uint64_t program_of_walked(struct pbd_tracing *t, const struct pbd_proc_stat *st,
                                  int *tagged)
{
    uint64_t prog;

    *tagged = 0;
    if (t->o.is_own != NULL && t->o.is_own(t->o.arg, st->pid))
        return 0; /* procbusd's own helper: nobody's */
    prog = pbd_ebpf_tag(t, st->pid);
    *tagged = prog != 0;
    if (prog != 0) /* the kernel decided at its fork */
        return prog;
    prog = pbd_tp_program_of_parent(t, st->ppid, NULL);
    if (prog == 0 && st->ppid == t->self) {
        prog = program_by_environ(t, st->pid);
        if (prog == 0 && t->pt == NULL)
            prog = program_by_lineage(t, st);
    }
    return prog;
}

int pbd_trace_walk(struct pbd_tracing *t, int startup)
{
    struct walked *w = NULL;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    uint64_t t0, lost0, tf0;
    DIR *dir;

    /* one ordered stream: every event older than the scan is in the table first */
    pbd_ebpf_consume(t);
    lost0 = t->lost_seen;
    tf0 = t->trackfail_seen;
    t0 = pb_now_ns(CLOCK_BOOTTIME);
    dir = opendir("/proc");
    if (dir == NULL)
        return -errno;
    while ((de = readdir(dir)) != NULL) {
        char *endp;
        long pid = strtol(de->d_name, &endp, 10);
        if (*endp != '\0' || pid <= 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 512;
            struct walked *nw = realloc(w, ncap * sizeof(*nw));
            if (nw == NULL) {
                closedir(dir);
                free(w);
                return -ENOMEM;
            }
            w = nw;
            cap = ncap;
        }
        if (pbd_proc_stat((pid_t)pid, &w[n].st) == 0)
            n++;
    }
    closedir(dir);
    qsort(w, n, sizeof(*w), cmp_start); /* parents before their children */
    pbd_trace_clock_sync(t);
    for (i = 0; i <= t->mask; i++) {
        struct pbd_tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext)
            e->seen = 0;
    }
    for (i = 0; i < n; i++) {
        const struct pbd_proc_stat *st = &w[i].st;
        struct pbd_tp *e = pbd_tp_find_exact(t, st->pid, st->start_boot_ns, 0), *l;
        uint64_t prog;
        int tagged;

        if (e != NULL) {
            e->seen = !dying(st); /* it has exited: pbd_tp_vanished() below, unless its exit
                                   * event is read after the scan */
            if (e->seen && !e->root && e->alive)
                refresh(t, e, st);
            continue; /* one record per (pid, start), even one a walk ended too early */
        }
        l = pbd_tp_find_live(t, st->pid);
        if (l != NULL && l->root) {
            l->seen = 1;
            continue;
        }
        if (l != NULL)
            pbd_tp_vanished(t, l);
        if (dying(st) || (st->flags & PF_KTHREAD_FLAG) != 0)
            continue;
        prog = program_of_walked(t, st, &tagged);
        e = pbd_tp_track_new(t, st->pid, st->ppid, st->start_boot_ns, prog, st->comm);
        if (e == NULL)
            continue;
        e->seen = 1;
        e->sid = st->sid;
        e->rec.pgid = st->pgid;
        if (startup)
            e->rec.flags |= PROCBUS_F_PREEXISTING;
        else
            e->rec.state_since_ns = pb_now_ns(CLOCK_REALTIME);
        read_cmdline(&e->rec, st->pid);
        if (!tagged)
            pbd_ebpf_track(t, st->pid, prog); /* its forks from now on */
        pbd_tp_stage(t, e);
    }
    free(w);
    /* exits the scan saw (gone, or zombies) have their events in the ring by now: read them,
     * so that only a process whose exit event was lost is found gone below */
    pbd_ebpf_consume(t);
    for (i = 0; i <= t->mask; i++) {
        struct pbd_tp *e, *next;
        for (e = t->tbl[i]; e != NULL; e = next) {
            next = e->hnext;
            /* (a process that started after the scan began may simply not be in it) */
            if (e->alive && !e->seen && !e->root && e->rec.start_boot_ns < t0)
                pbd_tp_vanished(t, e);
        }
    }
    t->stats.walks++;
    t->last_walk = pb_now_ns(CLOCK_MONOTONIC);
    /* a loss during the scan may hide something newer than it: walk again (later) */
    t->reconcile_pending = t->lost_seen != lost0 || t->trackfail_seen != tf0;
    return 0;
}
