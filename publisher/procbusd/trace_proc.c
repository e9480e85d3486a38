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
 * A walk found a known process alive: take in what the tracer did not (or
 * could not, when polling) tell: an exec (another comm or argv), a new parent
 * after its own died (reparenting).
 */
static void refresh(struct pbd_tracing *t, struct pbd_tp *e, const struct pbd_proc_stat *st)
{
    struct procbus_proc now = e->rec;

    snprintf(now.comm, sizeof(now.comm), "%.*s", PROCBUS_COMM_LEN - 1, st->comm);
    now.ppid = st->ppid;
    now.pgid = st->pgid;
    if (t->mode == PBD_TRACE_PROC || strcmp(now.comm, e->rec.comm) != 0)
        read_cmdline(&now, st->pid);
    if (strcmp(now.comm, e->rec.comm) != 0 || now.cmdline_len != e->rec.cmdline_len ||
        memcmp(now.cmdline, e->rec.cmdline, now.cmdline_len) != 0) {
        now.state_since_ns = pb_now_ns(CLOCK_REALTIME); /* it exec'd: when the walk saw it */
        e->rec = now;
        pbd_tp_stage(t, e);
        pbd_tp_exec_event(t, &e->rec);
    } else if (now.ppid != e->rec.ppid || now.pgid != e->rec.pgid) {
        e->rec = now;
        pbd_tp_stage(t, e);
    }
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

int pbd_trace_walk(struct pbd_tracing *t, int startup)
{
    struct walked *w = NULL;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    DIR *dir = opendir("/proc");

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

        if (e != NULL) {
            e->seen = st->state != 'Z'; /* a zombie has exited: pbd_tp_vanished() below */
            if (e->seen && !e->root && e->alive)
                refresh(t, e, st);
            continue;
        }
        l = pbd_tp_find_live(t, st->pid);
        if (l != NULL && l->root) {
            l->seen = 1;
            continue;
        }
        if (l != NULL)
            pbd_tp_vanished(t, l);
        if (st->state == 'Z')
            continue;
        prog = pbd_tp_program_of_parent(t, st->ppid, NULL);
        if (prog == 0 && st->ppid == t->self)
            prog = program_by_environ(t, st->pid);
        e = pbd_tp_track_new(t, st->pid, st->ppid, st->start_boot_ns, prog, st->comm);
        if (e == NULL)
            continue;
        e->seen = 1;
        e->rec.pgid = st->pgid;
        if (startup)
            e->rec.flags |= PROCBUS_F_PREEXISTING;
        else
            e->rec.state_since_ns = pb_now_ns(CLOCK_REALTIME);
        read_cmdline(&e->rec, st->pid);
        pbd_ebpf_track(t, st->pid); /* its forks from now on */
        pbd_tp_stage(t, e);
    }
    free(w);
    for (i = 0; i <= t->mask; i++) {
        struct pbd_tp *e, *next;
        for (e = t->tbl[i]; e != NULL; e = next) {
            next = e->hnext;
            if (e->alive && !e->seen && !e->root)
                pbd_tp_vanished(t, e);
        }
    }
    t->last_walk = pb_now_ns(CLOCK_MONOTONIC);
    t->reconcile_pending = 0;
    return 0;
}
