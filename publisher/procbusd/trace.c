/* trace.c - procbusd's process table of its programs' trees (or the host), fed by the eBPF
 * tracer or by /proc walks, published as descendant / observed records. See trace.h. */
#define _GNU_SOURCE
#include "trace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "procbus_pub.h"
#include "sampler.h"
#ifdef PBD_HAVE_TRACER
#include "proctrace_user.h"
#endif

#define NS 1000000000ull

/* Publish a batch after this many changes: a storm never outgrows the copy-on-write reserve. */
#define COMMIT_EVERY 256u
/* After a tracer loss, /proc is walked again, at most this often. */
#define RECONCILE_MIN_NS (200ull * 1000000ull)

/* One process. Roots (programs' main processes) are kept only to attribute their children. */
struct tp {
    struct procbus_proc rec; /* as published (rec.id); a root: pid and program_id only */
    struct tp *hnext;        /* hash chain, by pid */
    struct tp *qnext, *qprev;
    uint64_t exit_mono; /* CLOCK_MONOTONIC of the exit (exited queue order) */
    uint8_t alive, root, seen;
    uint8_t exact; /* start_boot_ns is the kernel's (tracer), not /proc's clock-tick value */
};

struct pbd_tracing {
    struct procbus_pub *pub;
    struct pbd_trace_opts o;
    enum pbd_trace mode;
    struct proctrace *pt;
    struct tp **tbl;
    size_t mask, count;
    struct tp *qhead, *qtail; /* exited records, oldest first */
    uint32_t staged, commit_every, capacity;
    uint64_t lost_seen, trackfail_seen;
    int reconcile_pending;
    uint64_t next_poll, last_walk, next_batch;
    uint64_t tick_ns;     /* /proc start-time resolution */
    int64_t boot_to_real; /* CLOCK_REALTIME - CLOCK_BOOTTIME, refreshed per batch */
    pid_t self;
};

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void refresh_offset(struct pbd_tracing *t)
{
    uint64_t b = now_ns(CLOCK_BOOTTIME), r = now_ns(CLOCK_REALTIME);
    t->boot_to_real = (int64_t)(r - b);
}

static uint64_t to_real(const struct pbd_tracing *t, uint64_t boot_ns)
{
    return boot_ns + (uint64_t)t->boot_to_real;
}

/* ---- the table ---- */

static size_t slot_of(const struct pbd_tracing *t, int32_t pid)
{
    return ((uint32_t)pid * 0x9E3779B1u) & t->mask;
}

static int grow(struct pbd_tracing *t)
{
    size_t n = (t->mask + 1) * 2, i;
    struct tp **nt = calloc(n, sizeof(*nt));

    if (nt == NULL)
        return -ENOMEM;
    for (i = 0; i <= t->mask; i++) {
        struct tp *e = t->tbl[i], *next;
        for (; e != NULL; e = next) {
            size_t s = ((uint32_t)e->rec.pid * 0x9E3779B1u) & (n - 1);
            next = e->hnext;
            e->hnext = nt[s];
            nt[s] = e;
        }
    }
    free(t->tbl);
    t->tbl = nt;
    t->mask = n - 1;
    return 0;
}

static struct tp *tp_new(struct pbd_tracing *t, int32_t pid)
{
    struct tp *e;
    size_t s;

    if (t->count >= 2 * (t->mask + 1) && grow(t) < 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->rec.pid = pid;
    s = slot_of(t, pid);
    e->hnext = t->tbl[s];
    t->tbl[s] = e;
    t->count++;
    return e;
}

static void queue_unlink(struct pbd_tracing *t, struct tp *e)
{
    if (e->qprev != NULL)
        e->qprev->qnext = e->qnext;
    else if (t->qhead == e)
        t->qhead = e->qnext;
    if (e->qnext != NULL)
        e->qnext->qprev = e->qprev;
    else if (t->qtail == e)
        t->qtail = e->qprev;
    e->qnext = e->qprev = NULL;
}

static void tp_free(struct pbd_tracing *t, struct tp *e)
{
    struct tp **pp = &t->tbl[slot_of(t, e->rec.pid)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp == e)
        *pp = e->hnext;
    queue_unlink(t, e);
    t->count--;
    free(e);
}

/* The live process (or root) with this pid. */
static struct tp *find_live(const struct pbd_tracing *t, int32_t pid)
{
    struct tp *e;

    for (e = t->tbl[slot_of(t, pid)]; e != NULL; e = e->hnext)
        if (e->rec.pid == pid && e->alive)
            return e;
    return NULL;
}

/*
 * The process (live first, else exited) that is (pid, start). Two kernel start
 * times must be equal; a start read from /proc has clock-tick resolution, so
 * it matches within a tick. `exact`: `start` is the kernel's.
 */
static struct tp *find_exact(const struct pbd_tracing *t, int32_t pid, uint64_t start, int exact)
{
    struct tp *e, *gone = NULL;

    for (e = t->tbl[slot_of(t, pid)]; e != NULL; e = e->hnext) {
        uint64_t s = e->rec.start_boot_ns;
        if (e->rec.pid != pid || e->root)
            continue;
        if (exact && e->exact ? s != start
                              : (s > start ? s - start : start - s) >= t->tick_ns + 1000000ull)
            continue;
        if (e->alive)
            return e;
        gone = gone != NULL ? gone : e;
    }
    return gone;
}

/* ---- publishing ---- */

/* Publish a batch mid-storm; the heartbeat too, as the loop may not get back to its timer soon. */
static void commit(struct pbd_tracing *t)
{
    procbus_pub_commit(t->pub);
    procbus_pub_heartbeat(t->pub);
    t->staged = 0;
}

/* Drop the oldest exited record (its transitions stay in the event ring). */
static void expire_one(struct pbd_tracing *t)
{
    struct tp *e = t->qhead;

    procbus_pub_remove(t->pub, e->rec.id);
    t->staged++;
    tp_free(t, e);
}

static void stage(struct pbd_tracing *t, struct tp *e)
{
    int rc;

    if (e->rec.id == 0) { /* new: make room first, oldest exited record out */
        while (procbus_pub_count(t->pub) >= t->capacity && t->qhead != NULL && t->qhead != e)
            expire_one(t);
        e->rec.id = procbus_pub_new_id(t->pub);
    }
    rc = procbus_pub_upsert(t->pub, &e->rec);
    if (rc == 0)
        t->staged++;
    if (t->staged >= t->commit_every)
        commit(t);
}

static void set_exited(struct pbd_tracing *t, struct tp *e, uint64_t when_real)
{
    e->alive = 0;
    e->rec.state = PROCBUS_STATE_EXITED;
    e->rec.state_since_ns = when_real;
    e->exit_mono = now_ns(CLOCK_MONOTONIC);
    queue_unlink(t, e);
    e->qprev = t->qtail;
    if (t->qtail != NULL)
        t->qtail->qnext = e;
    else
        t->qhead = e;
    t->qtail = e;
}

static void set_cmdline(struct procbus_proc *r, const char *args, size_t len, int truncated)
{
    if (len > PROCBUS_CMDLINE_LEN) {
        len = PROCBUS_CMDLINE_LEN;
        truncated = 1;
    }
    memset(r->cmdline, 0, sizeof(r->cmdline));
    memcpy(r->cmdline, args, len);
    if (len == PROCBUS_CMDLINE_LEN && r->cmdline[len - 1] != '\0') {
        r->cmdline[len - 1] = '\0';
        truncated = 1;
    }
    r->cmdline_len = (uint32_t)len;
    r->flags = truncated ? r->flags | PROCBUS_F_CMDLINE_TRUNCATED
                         : r->flags & ~PROCBUS_F_CMDLINE_TRUNCATED;
}

/* The program a new process with parent `ppid` belongs to (0: none known). */
static uint64_t program_of_parent(const struct pbd_tracing *t, int32_t ppid, const struct tp **par)
{
    const struct tp *p = find_live(t, ppid);

    if (par != NULL)
        *par = p;
    return p != NULL ? p->rec.program_id : 0;
}

/* A new process record (not staged yet); NULL if it is none of ours or out of memory. */
static struct tp *track_new(struct pbd_tracing *t, int32_t pid, int32_t ppid, uint64_t start_boot,
                            uint64_t program_id, const char *comm)
{
    struct tp *e;

    if (program_id == 0 && !t->o.observe)
        return NULL;
    e = tp_new(t, pid);
    if (e == NULL)
        return NULL;
    e->alive = 1;
    e->rec.ppid = ppid;
    e->rec.program_id = program_id;
    e->rec.flags = program_id != 0 ? PROCBUS_F_DESCENDANT : 0;
    e->rec.state = PROCBUS_STATE_RUNNING;
    e->rec.start_boot_ns = start_boot;
    e->rec.start_realtime_ns = to_real(t, start_boot);
    e->rec.state_since_ns = e->rec.start_realtime_ns;
    snprintf(e->rec.comm, sizeof(e->rec.comm), "%s", comm);
    return e;
}

/* A process found gone without its exit being seen: EXITED, status unknown. */
static void vanished(struct pbd_tracing *t, struct tp *e)
{
    e->rec.exit_kind = PROCBUS_EXIT_NONE;
    e->rec.exit_code = 0;
    set_exited(t, e, now_ns(CLOCK_REALTIME));
    stage(t, e);
}

/* ---- the eBPF tracer's events ---- */

#ifdef PBD_HAVE_TRACER
/* The tracer knows the exact start time: keep it (a /proc walk only had a clock tick's worth). */
static void exact_start(struct tp *e, const struct proctrace_event *ev)
{
    e->rec.start_boot_ns = ev->start_boot_ns;
    e->exact = 1;
}

static void on_fork(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    const struct tp *par;
    struct tp *e = find_live(t, ev->tgid);
    uint64_t prog;

    if (e != NULL && (e->root || find_exact(t, ev->tgid, ev->start_boot_ns, 1) == e))
        return; /* a program's main process, or already found by a /proc walk */
    if (e != NULL)
        vanished(t, e); /* its pid was reused: the old one exited unseen */
    if (ev->ppid == t->self && !t->o.observe)
        return; /* procbusd's own fork: a program's main process (a root, or a failed spawn) */
    prog = program_of_parent(t, ev->ppid, &par);
    e = track_new(t, ev->tgid, ev->ppid, ev->start_boot_ns, prog, ev->comm);
    if (e == NULL)
        return;
    e->exact = 1;
    e->rec.ns_pid = ev->ns_tgid;
    e->rec.state_since_ns = to_real(t, ev->ts_ns);
    if (par != NULL && !par->root) {
        e->rec.pgid = par->rec.pgid;
        set_cmdline(&e->rec, par->rec.cmdline, par->rec.cmdline_len,
                    (par->rec.flags & PROCBUS_F_CMDLINE_TRUNCATED) != 0);
    } else if (par != NULL) {
        struct procbus_proc prog_rec;
        if (procbus_pub_get(t->pub, prog, &prog_rec) == 0)
            set_cmdline(&e->rec, prog_rec.cmdline, prog_rec.cmdline_len,
                        (prog_rec.flags & PROCBUS_F_CMDLINE_TRUNCATED) != 0);
        e->rec.pgid = par->rec.pid; /* programs run in their own session and group */
    }
    stage(t, e);
}

static void on_exec(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct tp *e = find_exact(t, ev->tgid, ev->start_boot_ns, 1);

    if (e == NULL && (e = find_live(t, ev->tgid)) != NULL && !e->root) {
        vanished(t, e); /* another process had this pid: it exited unseen */
        e = NULL;
    }
    if (e != NULL && e->root) { /* the program's own exec: an EXEC event on its record */
        struct procbus_proc r;
        if (procbus_pub_get(t->pub, e->rec.program_id, &r) == 0) {
            snprintf(r.comm, sizeof(r.comm), "%s", ev->comm);
            r.name[0] = '\0'; /* the event names the new image (comm), as for descendants */
            procbus_pub_event(t->pub, PROCBUS_EV_EXEC, &r);
            t->staged++;
        }
        return;
    }
    if (e == NULL || !e->alive) { /* its fork was not seen (a loss, or before the walk) */
        if (ev->ppid == t->self && !t->o.observe)
            return;
        e = track_new(t, ev->tgid, ev->ppid, ev->start_boot_ns,
                      program_of_parent(t, ev->ppid, NULL), ev->comm);
        if (e == NULL)
            return;
    }
    exact_start(e, ev);
    e->rec.ns_pid = ev->ns_tgid;
    snprintf(e->rec.comm, sizeof(e->rec.comm), "%s", ev->comm);
    if (ev->args_len > 0)
        set_cmdline(&e->rec, ev->args, ev->args_len, (ev->flags & PROCTRACE_F_ARGS_TRUNCATED) != 0);
    else
        set_cmdline(&e->rec, ev->filename, strnlen(ev->filename, sizeof(ev->filename)) + 1,
                    (ev->flags & PROCTRACE_F_FILENAME_TRUNC) != 0);
    e->rec.state_since_ns = to_real(t, ev->ts_ns);
    stage(t, e);
    procbus_pub_event(t->pub, PROCBUS_EV_EXEC, &e->rec);
    t->staged++;
}

static void on_exit_ev(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct tp *e = find_exact(t, ev->tgid, ev->start_boot_ns, 1);

    if (e == NULL) {
        struct tp *l = find_live(t, ev->tgid);
        if (l != NULL && l->root)
            return; /* a program's main process: procbusd reaps it and publishes that */
        if (l != NULL)
            vanished(t, l);
        if (ev->ppid == t->self)
            return; /* a main process the daemon already reported, or a failed spawn */
        /* nobody saw it start (a loss, or before the walk): it still gets a record */
        e = track_new(t, ev->tgid, ev->ppid, ev->start_boot_ns,
                      program_of_parent(t, ev->ppid, NULL), ev->comm);
        if (e == NULL)
            return;
        e->rec.ns_pid = ev->ns_tgid;
    } else if (!e->alive) {
        return; /* already ended (reaped by procbusd, or a /proc walk saw it gone) */
    }
    exact_start(e, ev);
    if (ev->flags & PROCTRACE_F_SIGNALED) {
        e->rec.exit_kind = PROCBUS_EXIT_SIGNAL;
        e->rec.exit_code = ev->exit_signal;
    } else {
        e->rec.exit_kind = PROCBUS_EXIT_CODE;
        e->rec.exit_code = ev->exit_code;
    }
    if (ev->flags & PROCTRACE_F_CORE_DUMPED)
        e->rec.flags |= PROCBUS_F_CORE_DUMPED;
    set_exited(t, e, to_real(t, ev->ts_ns));
    stage(t, e);
}

static int on_event(void *arg, const struct proctrace_event *ev)
{
    struct pbd_tracing *t = arg;

    switch (ev->kind) {
    case PROCTRACE_FORK:
        on_fork(t, ev);
        break;
    case PROCTRACE_EXEC:
        on_exec(t, ev);
        break;
    case PROCTRACE_EXIT:
        on_exit_ev(t, ev);
        break;
    }
    return 0;
}
#endif /* PBD_HAVE_TRACER */

/* ---- /proc walks ---- */

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
        set_cmdline(r, buf, (size_t)n, n > PROCBUS_CMDLINE_LEN);
}

/*
 * A walk found a known process alive: take in what the tracer did not (or
 * could not, when polling) tell: an exec (another comm or argv), a new parent
 * after its own died (reparenting).
 */
static void refresh(struct pbd_tracing *t, struct tp *e, const struct pbd_proc_stat *st)
{
    struct procbus_proc now = e->rec;

    snprintf(now.comm, sizeof(now.comm), "%.*s", PROCBUS_COMM_LEN - 1, st->comm);
    now.ppid = st->ppid;
    now.pgid = st->pgid;
    if (t->mode == PBD_TRACE_PROC || strcmp(now.comm, e->rec.comm) != 0)
        read_cmdline(&now, st->pid);
    if (strcmp(now.comm, e->rec.comm) != 0 || now.cmdline_len != e->rec.cmdline_len ||
        memcmp(now.cmdline, e->rec.cmdline, now.cmdline_len) != 0) {
        now.state_since_ns = now_ns(CLOCK_REALTIME); /* it exec'd: when the walk saw it */
        e->rec = now;
        stage(t, e);
        procbus_pub_event(t->pub, PROCBUS_EV_EXEC, &e->rec);
        t->staged++;
    } else if (now.ppid != e->rec.ppid || now.pgid != e->rec.pgid) {
        e->rec = now;
        stage(t, e);
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

/*
 * Walk /proc once: processes not in the table that belong (by their parent,
 * or by procbusd's environment mark for orphans it adopted) get records;
 * table entries /proc no longer shows are marked EXITED (status unknown).
 */
static int walk_proc(struct pbd_tracing *t, int startup)
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
    refresh_offset(t);
    for (i = 0; i <= t->mask; i++) {
        struct tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext)
            e->seen = 0;
    }
    for (i = 0; i < n; i++) {
        const struct pbd_proc_stat *st = &w[i].st;
        struct tp *e = find_exact(t, st->pid, st->start_boot_ns, 0), *l;
        uint64_t prog;

        if (e != NULL) {
            e->seen = st->state != 'Z'; /* a zombie has exited: vanished() below */
            if (e->seen && !e->root && e->alive)
                refresh(t, e, st);
            continue;
        }
        l = find_live(t, st->pid);
        if (l != NULL && l->root) {
            l->seen = 1;
            continue;
        }
        if (l != NULL)
            vanished(t, l);
        if (st->state == 'Z')
            continue;
        prog = program_of_parent(t, st->ppid, NULL);
        if (prog == 0 && st->ppid == t->self)
            prog = program_by_environ(t, st->pid);
        e = track_new(t, st->pid, st->ppid, st->start_boot_ns, prog, st->comm);
        if (e == NULL)
            continue;
        e->seen = 1;
        e->rec.pgid = st->pgid;
        if (startup)
            e->rec.flags |= PROCBUS_F_PREEXISTING;
        else
            e->rec.state_since_ns = now_ns(CLOCK_REALTIME);
        read_cmdline(&e->rec, st->pid);
#ifdef PBD_HAVE_TRACER
        if (t->pt != NULL && !t->o.observe)
            proctrace_track(t->pt, st->pid); /* its forks from now on */
#endif
        stage(t, e);
    }
    free(w);
    for (i = 0; i <= t->mask; i++) {
        struct tp *e, *next;
        for (e = t->tbl[i]; e != NULL; e = next) {
            next = e->hnext;
            if (e->alive && !e->seen && !e->root)
                vanished(t, e);
        }
    }
    t->last_walk = now_ns(CLOCK_MONOTONIC);
    t->reconcile_pending = 0;
    return 0;
}

/* ---- the interface ---- */

int pbd_trace_open(struct pbd_tracing **out, struct procbus_pub *pub,
                   const struct pbd_trace_opts *o, char *why, size_t whylen)
{
    struct pbd_tracing *t = calloc(1, sizeof(*t));
    long tck = sysconf(_SC_CLK_TCK);

    *out = NULL;
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (t == NULL || (t->tbl = calloc(1024, sizeof(*t->tbl))) == NULL) {
        free(t);
        return -ENOMEM;
    }
    t->mask = 1023;
    t->pub = pub;
    t->o = *o;
    t->self = getpid();
    t->tick_ns = NS / (uint64_t)(tck > 0 ? tck : 100);
    t->capacity = o->capacity ? o->capacity : PROCBUS_PUB_DEFAULT_CAPACITY;
    t->commit_every = t->capacity / 4 < COMMIT_EVERY ? t->capacity / 4 + 1 : COMMIT_EVERY;
    refresh_offset(t);
    t->mode = o->mode == PBD_TRACE_AUTO ? PBD_TRACE_ON : o->mode;
    if (t->mode == PBD_TRACE_ON) {
#ifdef PBD_HAVE_TRACER
        struct proctrace_opts po = {.observe_all = o->observe,
                                    .ring_bytes = (size_t)(o->ring_kb ? o->ring_kb : 256) * 1024};
        po.wake_gap_ns = (uint64_t)o->batch_ms * 1000000ull;
        int rc = proctrace_open(&t->pt, &po, why, whylen);
        if (rc == 0 && !o->observe)
            rc = proctrace_track(t->pt, t->self); /* its forks: every program, from its start */
        if (rc < 0) {
            proctrace_close(t->pt);
            t->pt = NULL;
            if (o->mode == PBD_TRACE_ON) {
                pbd_trace_close(t);
                return rc;
            }
            t->mode = PBD_TRACE_PROC;
        }
#else
        snprintf(why, whylen, "this build has no eBPF tracer (no kernel BTF when it was built)");
        if (o->mode == PBD_TRACE_ON) {
            pbd_trace_close(t);
            return -ENOTSUP;
        }
        t->mode = PBD_TRACE_PROC;
#endif
    }
    if (t->mode != PBD_TRACE_OFF && o->observe)
        walk_proc(t, 1);
    *out = t;
    return 0;
}

enum pbd_trace pbd_trace_mode(const struct pbd_tracing *t)
{
    return t->mode;
}

int pbd_trace_fd(const struct pbd_tracing *t)
{
#ifdef PBD_HAVE_TRACER
    if (t->pt != NULL)
        return proctrace_fd(t->pt);
#endif
    (void)t;
    return -1;
}

/* Changes staged since the last call: the caller commits them. */
static int take_staged(struct pbd_tracing *t)
{
    int n = (int)t->staged;
    t->staged = 0;
    return n;
}

int pbd_trace_consume(struct pbd_tracing *t)
{
#ifdef PBD_HAVE_TRACER
    uint64_t lost, tf;
    int rc;

    if (t->pt == NULL)
        return 0;
    refresh_offset(t);
    rc = proctrace_consume(t->pt, on_event, t);
    if (rc < 0)
        return rc;
    /* with rate-limited wake-ups, events may come without one: read again a gap later, for
     * as long as reads find events */
    if (t->o.batch_ms > 0)
        t->next_batch =
            rc > 0 ? now_ns(CLOCK_MONOTONIC) + (uint64_t)t->o.batch_ms * 1000000ull : UINT64_MAX;
    lost = proctrace_lost(t->pt);
    tf = proctrace_track_failed(t->pt);
    if (lost != t->lost_seen || tf != t->trackfail_seen) {
        procbus_pub_count_drops(t->pub, lost - t->lost_seen, 0);
        t->lost_seen = lost;
        t->trackfail_seen = tf;
        t->reconcile_pending = 1; /* pbd_trace_tick walks /proc */
    }
#endif
    return take_staged(t);
}

void pbd_trace_root(struct pbd_tracing *t, pid_t pid, uint64_t start_boot_ns, uint64_t program_id)
{
    struct tp *e;

    if (t == NULL || t->mode == PBD_TRACE_OFF)
        return;
    e = find_live(t, pid);
    if (e != NULL && !e->root) { /* observe mode walked it first: it is the program now */
        procbus_pub_remove(t->pub, e->rec.id);
        t->staged++;
        tp_free(t, e);
        e = NULL;
    }
    if (e == NULL && (e = tp_new(t, pid)) == NULL)
        return;
    e->root = 1;
    e->alive = 1;
    e->rec.program_id = program_id;
    e->rec.start_boot_ns = start_boot_ns;
}

void pbd_trace_root_gone(struct pbd_tracing *t, pid_t pid)
{
    struct tp *e;

    if (t == NULL)
        return;
    e = find_live(t, pid);
    if (e != NULL && e->root)
        tp_free(t, e);
}

int pbd_trace_tick(struct pbd_tracing *t, uint64_t now_mono, uint64_t poll_ns)
{
    uint64_t keep = (uint64_t)t->o.keep_exited_secs * NS;

    while (t->qhead != NULL && t->qhead->exit_mono + keep <= now_mono)
        expire_one(t);
    if (t->o.batch_ms > 0 && t->pt != NULL && now_mono >= t->next_batch) {
        uint32_t before = t->staged;
        int m = pbd_trace_consume(t); /* hands over (and clears) staged: keep it for the caller */
        t->staged = before + (m > 0 ? (uint32_t)m : 0);
    }
    if (t->mode == PBD_TRACE_PROC && now_mono >= t->next_poll) {
        walk_proc(t, 0);
        t->next_poll = now_mono + poll_ns;
    } else if (t->reconcile_pending && now_mono >= t->last_walk + RECONCILE_MIN_NS) {
        walk_proc(t, 0);
    }
    return take_staged(t);
}

uint64_t pbd_trace_next_deadline(const struct pbd_tracing *t)
{
    uint64_t next = UINT64_MAX;

    if (t == NULL)
        return next;
    if (t->qhead != NULL)
        next = t->qhead->exit_mono + (uint64_t)t->o.keep_exited_secs * NS;
    if (t->mode == PBD_TRACE_PROC && t->next_poll < next)
        next = t->next_poll;
    if (t->o.batch_ms > 0 && t->pt != NULL && t->next_batch < next)
        next = t->next_batch;
    if (t->reconcile_pending && t->last_walk + RECONCILE_MIN_NS < next)
        next = t->last_walk + RECONCILE_MIN_NS;
    return next;
}

void pbd_trace_reaped(struct pbd_tracing *t, pid_t pid, int how, int status)
{
    struct tp *e;

    if (t == NULL || (e = find_live(t, pid)) == NULL || e->root)
        return;
    e->rec.exit_kind = how == CLD_EXITED ? PROCBUS_EXIT_CODE : PROCBUS_EXIT_SIGNAL;
    e->rec.exit_code = status;
    if (how == CLD_DUMPED)
        e->rec.flags |= PROCBUS_F_CORE_DUMPED;
    set_exited(t, e, now_ns(CLOCK_REALTIME));
    stage(t, e);
}

/* Signal one process if it still is the one we know (pidfd, then its start time checked). */
static int signal_exact(const struct tp *e, int sig)
{
    struct pbd_proc_stat st;
    int fd = (int)syscall(SYS_pidfd_open, e->rec.pid, 0), ok = 0;
    uint64_t d;

    if (fd < 0)
        return 0;
    if (pbd_proc_stat(e->rec.pid, &st) == 0) {
        d = st.start_boot_ns > e->rec.start_boot_ns ? st.start_boot_ns - e->rec.start_boot_ns
                                                    : e->rec.start_boot_ns - st.start_boot_ns;
        ok = d < 20000000ull && syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0;
    }
    close(fd);
    return ok;
}

int pbd_trace_signal_tree(struct pbd_tracing *t, uint64_t program_id, int sig)
{
    size_t i;
    int n = 0;

    if (t == NULL || program_id == 0)
        return 0;
    for (i = 0; i <= t->mask; i++) {
        const struct tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext)
            if (e->alive && !e->root && e->rec.program_id == program_id)
                n += signal_exact(e, sig);
    }
    return n;
}

size_t pbd_trace_descendants(const struct pbd_tracing *t, pid_t *pids, uint64_t *program_ids,
                             size_t max)
{
    size_t i, n = 0;

    for (i = 0; t != NULL && i <= t->mask; i++) {
        const struct tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext) {
            if (!e->alive || e->root || e->rec.program_id == 0)
                continue;
            if (n < max) {
                pids[n] = e->rec.pid;
                program_ids[n] = e->rec.program_id;
            }
            n++;
        }
    }
    return n < max || max == 0 ? n : max;
}

uint64_t pbd_trace_lost(const struct pbd_tracing *t)
{
    return t != NULL ? t->lost_seen : 0;
}

size_t pbd_trace_count(const struct pbd_tracing *t)
{
    return t != NULL ? t->count : 0;
}

void pbd_trace_close(struct pbd_tracing *t)
{
    size_t i;

    if (t == NULL)
        return;
#ifdef PBD_HAVE_TRACER
    proctrace_close(t->pt);
#endif
    for (i = 0; t->tbl != NULL && i <= t->mask; i++) {
        struct tp *e = t->tbl[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(t->tbl);
    free(t);
}
