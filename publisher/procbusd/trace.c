/* trace.c - procbusd's table of its programs' processes (or the host's): records, trace.h API. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "procbus_pub.h"
#include "pubcall.h"
#include "sampler.h"
#include "trace_int.h"
#include "util.h"

/* Publish a batch after this many changes: a storm never outgrows the copy-on-write reserve. */
#define COMMIT_EVERY 256u
/* After a tracer loss, /proc is walked again, at most this often. */
#define RECONCILE_MIN_NS (200ull * 1000000ull)

/* ---- clocks ---- */

void pbd_trace_clock_sync(struct pbd_tracing *t)
{
    uint64_t b = pb_now_ns(CLOCK_BOOTTIME), r = pb_now_ns(CLOCK_REALTIME);
    t->boot_to_real = (int64_t)(r - b);
}

uint64_t pbd_trace_to_real(const struct pbd_tracing *t, uint64_t boot_ns)
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
    struct pbd_tp **nt = calloc(n, sizeof(*nt));

    if (nt == NULL)
        return -ENOMEM;
    for (i = 0; i <= t->mask; i++) {
        struct pbd_tp *e = t->tbl[i], *next;
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

static struct pbd_tp *tp_new(struct pbd_tracing *t, int32_t pid)
{
    struct pbd_tp *e;
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

static void queue_unlink(struct pbd_tracing *t, struct pbd_tp *e)
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

void pbd_tp_hold_end(struct pbd_tracing *t, struct pbd_tp *e, uint64_t ring_pos)
{
    struct pbd_tp **pp = &t->held;

    if (e->end_held)
        return;
    while (*pp != NULL)
        pp = &(*pp)->held_next;
    *pp = e;
    e->held_next = NULL;
    e->held_pos = ring_pos;
    e->end_held = 1;
    t->ends_held++;
}

/* The root's end is taken (or it is no root any more): its exit event may leave the ring. */
static void end_taken(struct pbd_tracing *t, struct pbd_tp *e)
{
    struct pbd_tp **pp = &t->held;

    if (!e->end_held)
        return;
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->held_next;
    if (*pp == e)
        *pp = e->held_next;
    e->held_next = NULL;
    e->end_held = 0;
    t->ends_held--;
}

static void tp_free(struct pbd_tracing *t, struct pbd_tp *e)
{
    struct pbd_tp **pp = &t->tbl[slot_of(t, e->rec.pid)];

    end_taken(t, e);

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp == e)
        *pp = e->hnext;
    queue_unlink(t, e);
    t->count--;
    free(e);
}

struct pbd_tp *pbd_tp_find_live(const struct pbd_tracing *t, int32_t pid)
{
    struct pbd_tp *e;

    for (e = t->tbl[slot_of(t, pid)]; e != NULL; e = e->hnext)
        if (e->rec.pid == pid && e->alive)
            return e;
    return NULL;
}

struct pbd_tp *pbd_tp_find_exact(const struct pbd_tracing *t, int32_t pid, uint64_t start,
                                 int exact)
{
    struct pbd_tp *e, *gone = NULL;

    for (e = t->tbl[slot_of(t, pid)]; e != NULL; e = e->hnext) {
        uint64_t s = e->rec.start_boot_ns;
        if (e->rec.pid != pid || e->root)
            continue;
        if (exact && e->exact ? s != start : !pbd_tp_same_start(t, s, start))
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
    /* a failure (logged) leaves the changes staged: the daemon's next commit takes them */
    t->staged = pbd_pub_commit(t->pub) == 0 ? 0 : 1;
    procbus_pub_heartbeat(t->pub);
}

/* Drop the oldest exited record (its transitions stay in the event ring); a dead root has
 * none to remove. */
static void expire_one(struct pbd_tracing *t)
{
    struct pbd_tp *e = t->qhead;

    if (!e->root) {
        pbd_pub_remove(t->pub, e->rec.id);
        t->staged++;
    }
    tp_free(t, e);
}

void pbd_tp_stage(struct pbd_tracing *t, struct pbd_tp *e)
{
    int rc;

    if (e->rec.id == 0) { /* new: make room first, oldest exited record out */
        while (procbus_pub_count(t->pub) >= t->capacity && t->qhead != NULL && t->qhead != e)
            expire_one(t);
        e->rec.id = procbus_pub_new_id(t->pub);
    }
    rc = pbd_pub_upsert(t->pub, &e->rec, PBD_PUB_QUIET_FULL);
    if (rc == 0)
        t->staged++;
    if (t->staged >= t->commit_every)
        commit(t);
}

void pbd_tp_exec_event(struct pbd_tracing *t, const struct procbus_proc *rec)
{
    pbd_pub_event(t->pub, PROCBUS_EV_EXEC, rec);
    t->staged++;
}

void pbd_tp_set_exited(struct pbd_tracing *t, struct pbd_tp *e, uint64_t when_real)
{
    e->alive = 0;
    e->rec.state = PROCBUS_STATE_EXITED;
    e->rec.state_since_ns = when_real;
    e->exit_mono = pb_now_ns(CLOCK_MONOTONIC);
    queue_unlink(t, e);
    e->qprev = t->qtail;
    if (t->qtail != NULL)
        t->qtail->qnext = e;
    else
        t->qhead = e;
    t->qtail = e;
}

void pbd_tp_set_cmdline(struct procbus_proc *r, const char *args, size_t len, int truncated)
{
    while (len >= 2 && args[len - 1] == '\0' && args[len - 2] == '\0')
        len--; /* "a\0b\0\0\0": a rewritten argv's padding, not empty arguments to show */
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

uint64_t pbd_tp_program_of_parent(struct pbd_tracing *t, int32_t ppid, const struct pbd_tp **par)
{
    struct pbd_tp *p = pbd_tp_find_live(t, ppid);

    if (par != NULL)
        *par = p;
    if (p == NULL)
        return 0;
    p->forked = 1;
    return p->rec.program_id;
}

void pbd_tp_reparent(struct pbd_tracing *t, int32_t pid, int32_t reaper)
{
    struct pbd_tp *r;
    size_t i;

    if (reaper <= 0 || reaper == pid)
        return;
    for (i = 0; i <= t->mask; i++) {
        struct pbd_tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext) {
            if (!e->alive || e->root || e->rec.ppid != pid)
                continue;
            e->rec.ppid = reaper;
            pbd_tp_stage(t, e);
        }
    }
    r = pbd_tp_find_live(t, reaper);
    if (r != NULL)
        r->forked = 1;
}

struct pbd_tp *pbd_tp_track_new(struct pbd_tracing *t, int32_t pid, int32_t ppid,
                                uint64_t start_boot, uint64_t program_id, const char *comm)
{
    struct pbd_tp *e;

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
    e->rec.start_realtime_ns = pbd_trace_to_real(t, start_boot);
    e->rec.state_since_ns = e->rec.start_realtime_ns;
    snprintf(e->rec.comm, sizeof(e->rec.comm), "%s", comm);
    return e;
}

void pbd_tp_vanished(struct pbd_tracing *t, struct pbd_tp *e)
{
    e->rec.exit_kind = PROCBUS_EXIT_NONE;
    e->rec.exit_code = 0;
    e->provisional = 1;
    t->stats.vanished++;
    pbd_tp_set_exited(t, e, pb_now_ns(CLOCK_REALTIME));
    pbd_tp_stage(t, e);
}

/* ---- adoption ---- */

#define PF_EXITING_FLAG 0x4ul /* include/linux/sched.h */

/* One record of a predecessor's (pbd_trace_opts.seeds) into the table. */
static void seed(struct pbd_tracing *t, const struct procbus_proc *r)
{
    struct pbd_proc_stat st;
    struct pbd_tp *e;
    int alive;

    if (r->pid <= 0 || t->mode == PBD_TRACE_OFF || (r->program_id == 0 && !t->o.observe) ||
        pbd_tp_find_exact(t, r->pid, r->start_boot_ns, 0) != NULL) {
        pbd_pub_remove(t->pub, r->id);
        t->staged++;
        return;
    }
    if ((e = tp_new(t, r->pid)) == NULL)
        return;
    e->rec = *r;
    alive = pbd_proc_stat(r->pid, &st) == 0 && st.state != 'Z' && st.state != 'X' &&
            !(st.flags & PF_EXITING_FLAG);
    alive = alive && pbd_tp_same_start(t, st.start_boot_ns, r->start_boot_ns);
    if (r->state != PROCBUS_STATE_EXITED && alive) {
        e->alive = 1;
        e->sid = st.sid;
    } else if (r->state != PROCBUS_STATE_EXITED) {
        e->alive = 1;
        pbd_tp_vanished(t, e); /* gone while no procbusd ran: a backlog event may say how */
    } else {
        e->provisional = r->exit_kind == PROCBUS_EXIT_NONE;
        pbd_tp_set_exited(t, e, r->state_since_ns); /* expires keep_exited_secs from now */
    }
}

void pbd_trace_adopt_root(struct pbd_tracing *t, pid_t pid, uint64_t start_boot_ns,
                          uint64_t program_id, int alive)
{
    const struct pbd_tp *e;

    if (t == NULL || pid <= 0 || t->mode == PBD_TRACE_OFF)
        return;
    e = alive ? NULL : pbd_tp_find_live(t, pid);
    if (e != NULL) {
        /* a live entry with the pid: the same process (the backlog's fork event, the tracked
         * set taken over, before its exit event: it died as adoption looked) when it started
         * then, within a clock tick; else its pid is another live process's now, and no exit
         * event can be told apart */
        uint64_t s = e->rec.start_boot_ns;
        if (e->root || s == 0 || start_boot_ns == 0 || !pbd_tp_same_start(t, s, start_boot_ns))
            return;
    }
    pbd_trace_root(t, pid, start_boot_ns, program_id);
    if (alive)
        pbd_ebpf_track(t, pid, program_id);
}

int pbd_trace_root_status(const struct pbd_tracing *t, pid_t pid, int *code, int *core,
                          uint64_t *when_real)
{
    const struct pbd_tp *e;

    if (t == NULL || (e = pbd_tp_find_live(t, pid)) == NULL || !e->root ||
        e->rec.exit_kind == PROCBUS_EXIT_NONE)
        return PROCBUS_EXIT_NONE;
    *code = e->rec.exit_code;
    *core = (e->rec.flags & PROCBUS_F_CORE_DUMPED) != 0;
    *when_real = e->exit_boot != 0 ? pbd_trace_to_real(t, e->exit_boot) : 0;
    return e->rec.exit_kind;
}

uint32_t pbd_trace_take_root_exits(struct pbd_tracing *t)
{
    uint32_t n = t != NULL ? t->root_exits : 0;

    if (t != NULL)
        t->root_exits = 0;
    return n;
}

int pbd_trace_committed(struct pbd_tracing *t)
{
    /* a main process's exit event read, its end not yet taken (a child of procbusd: the event
     * comes before the kernel makes it a zombie, so before its pidfd says so), lives only in
     * this process: the ring keeps it (pbd_ebpf_release), for a successor if procbusd dies */
    return t != NULL ? pbd_ebpf_release(t) : 0;
}

uint32_t pbd_trace_ends_held(const struct pbd_tracing *t)
{
    return t != NULL ? t->ends_held : 0;
}

int pbd_trace_reused(const struct pbd_tracing *t)
{
    return t != NULL && pbd_ebpf_reused(t);
}

int pbd_trace_pinned(const struct pbd_tracing *t)
{
    return t != NULL && pbd_ebpf_pinned(t);
}

void pbd_trace_unpin(struct pbd_tracing *t)
{
    if (t != NULL)
        pbd_ebpf_unpin(t);
}

void pbd_trace_adopting(struct pbd_tracing *t)
{
    if (t != NULL && t->mode != PBD_TRACE_OFF)
        t->reconcile_pending = 1;
}

/* ---- the interface ---- */

/*
 * 0 if the /proc mounted here numbers processes as this process's pid namespace does (walks,
 * start-time checks before a signal and pidfds must agree on a pid); -EXDEV (or -ENOENT: no
 * /proc) with the reason in why.
 */
static int proc_is_ours(char *why, size_t whylen)
{
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

    if (n <= 0) {
        snprintf(why, whylen, "/proc is not mounted");
        return -ENOENT;
    }
    buf[n] = '\0';
    if (atoi(buf) == (int)getpid())
        return 0;
    snprintf(
        why, whylen,
        "the /proc mounted here belongs to another pid namespace (this process is %d here, "
        "%s in /proc): a pid namespace needs its own /proc (unshare --pid --fork --mount-proc)",
        (int)getpid(), buf);
    return -EXDEV;
}

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
    t->tick_ns = PB_NS_PER_SEC / (uint64_t)(tck > 0 ? tck : 100);
    t->capacity = o->capacity ? o->capacity : PROCBUS_PUB_DEFAULT_CAPACITY;
    t->commit_every = t->capacity / 4 < COMMIT_EVERY ? t->capacity / 4 + 1 : COMMIT_EVERY;
    pbd_trace_clock_sync(t);
    t->mode = o->mode == PBD_TRACE_AUTO ? PBD_TRACE_ON : o->mode;
    if (t->mode != PBD_TRACE_OFF && why != NULL) {
        int rc = proc_is_ours(why, whylen);
        if (rc < 0 && o->mode != PBD_TRACE_AUTO) {
            pbd_trace_close(t);
            return rc;
        }
        if (rc < 0)
            t->mode = PBD_TRACE_OFF; /* AUTO: neither feed can be trusted; `why` says why */
    }
    if (t->mode == PBD_TRACE_ON) {
        int rc = pbd_ebpf_open(t, why, whylen);
        if (rc < 0) {
            if (o->mode == PBD_TRACE_ON) {
                pbd_trace_close(t);
                return rc;
            }
            t->mode = PBD_TRACE_PROC; /* AUTO: poll /proc instead; `why` says why */
        }
    }
    for (size_t i = 0; i < o->n_seeds; i++)
        seed(t, &o->seeds[i]);
    for (size_t i = 0; o->n_seeds > 0 && i <= t->mask; i++) /* followed from now on */
        for (struct pbd_tp *e = t->tbl[i]; e != NULL; e = e->hnext)
            if (e->alive && !e->root)
                pbd_ebpf_track(t, e->rec.pid, e->rec.program_id);
    t->o.seeds = NULL;
    t->o.n_seeds = 0;
    if (t->mode != PBD_TRACE_OFF && o->observe)
        pbd_trace_walk(t, 1);
    *out = t;
    return 0;
}

enum pbd_trace pbd_trace_mode(const struct pbd_tracing *t)
{
    return t->mode;
}

int pbd_trace_fd(const struct pbd_tracing *t)
{
    return pbd_ebpf_fd(t);
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
    int rc = pbd_ebpf_consume(t);

    return rc < 0 ? rc : take_staged(t);
}

/* Read the ring up to now and, after a loss, reconcile with /proc (at once when `walk`, else
 * at most every RECONCILE_MIN_NS); walk anyway when `walk` and polling. Changes stay staged
 * (t->staged). */
static void sync_staged(struct pbd_tracing *t, int walk)
{
    if (t->pt != NULL) {
        pbd_ebpf_consume(t);
        if (t->reconcile_pending &&
            (walk || pb_now_ns(CLOCK_MONOTONIC) >= t->last_walk + RECONCILE_MIN_NS))
            pbd_trace_walk(t, 0); /* reads the ring again before and after its scan */
    } else if (walk && t->mode == PBD_TRACE_PROC) {
        pbd_trace_walk(t, 0);
    }
}

int pbd_trace_sync(struct pbd_tracing *t, int walk)
{
    if (t == NULL)
        return 0;
    sync_staged(t, walk);
    return take_staged(t);
}

void pbd_trace_spawning(struct pbd_tracing *t, uint64_t program_id)
{
    if (t != NULL)
        pbd_ebpf_spawn_tag(t, program_id);
}

void pbd_trace_root(struct pbd_tracing *t, pid_t pid, uint64_t start_boot_ns, uint64_t program_id)
{
    struct pbd_tp *e;

    if (t == NULL || t->mode == PBD_TRACE_OFF)
        return;
    e = pbd_tp_find_live(t, pid);
    if (e != NULL && !e->root) { /* observe mode walked it first: it is the program now */
        pbd_pub_remove(t->pub, e->rec.id);
        t->staged++;
        tp_free(t, e);
        e = NULL;
    }
    if (e == NULL && (e = tp_new(t, pid)) == NULL)
        return;
    end_taken(t, e); /* (a root entry again: a new run) */
    e->root = 1;
    e->alive = 1;
    e->rec.program_id = program_id;
    e->rec.start_boot_ns = start_boot_ns;
}

void pbd_trace_root_gone(struct pbd_tracing *t, pid_t pid)
{
    struct pbd_tp *e;

    if (t == NULL)
        return;
    e = pbd_tp_find_live(t, pid);
    if (e == NULL || !e->root)
        return;
    end_taken(t, e);       /* published by the caller's coming commit, before any ring release */
    if (e->exit_boot == 0) /* no exit event: it was gone by now, at the latest */
        e->exit_boot = pb_now_ns(CLOCK_BOOTTIME);
    /* kept a while, dead: /proc polling attributes orphans by when it lived */
    pbd_tp_set_exited(t, e, pbd_trace_to_real(t, e->exit_boot));
}

uint64_t pbd_trace_root_exit(const struct pbd_tracing *t, pid_t pid)
{
    const struct pbd_tp *e;

    if (t == NULL || (e = pbd_tp_find_live(t, pid)) == NULL || !e->root || e->exit_boot == 0)
        return 0;
    return pbd_trace_to_real(t, e->exit_boot);
}

size_t pbd_trace_tree_live(const struct pbd_tracing *t, uint64_t program_id)
{
    size_t i, n = 0;

    if (t == NULL || program_id == 0)
        return 0;
    for (i = 0; i <= t->mask; i++) {
        const struct pbd_tp *e;
        for (e = t->tbl[i]; e != NULL; e = e->hnext)
            if (e->alive && !e->root && e->rec.program_id == program_id)
                n++;
    }
    return n;
}

int pbd_trace_tick(struct pbd_tracing *t, uint64_t now_mono, uint64_t poll_ns)
{
    uint64_t keep = (uint64_t)t->o.keep_exited_secs * PB_NS_PER_SEC;
    int expire = t->qhead != NULL && t->qhead->exit_mono + keep <= now_mono;

    /* one ordered stream: what the ring holds is older than this expiry or batch read (an
     * exit event that fills in a provisional record must not find it gone) */
    if (t->pt != NULL && (expire || (t->o.batch_ms > 0 && now_mono >= t->next_batch)))
        pbd_ebpf_consume(t);
    while (t->qhead != NULL && t->qhead->exit_mono + keep <= now_mono)
        expire_one(t);
    if (t->mode == PBD_TRACE_PROC && now_mono >= t->next_poll) {
        pbd_trace_walk(t, 0);
        t->next_poll = now_mono + poll_ns;
    } else if (t->reconcile_pending && now_mono >= t->last_walk + RECONCILE_MIN_NS) {
        pbd_trace_walk(t, 0);
    }
    return take_staged(t);
}

uint64_t pbd_trace_next_deadline(const struct pbd_tracing *t)
{
    uint64_t next = UINT64_MAX;

    if (t == NULL)
        return next;
    if (t->qhead != NULL)
        next = t->qhead->exit_mono + (uint64_t)t->o.keep_exited_secs * PB_NS_PER_SEC;
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
    struct pbd_tp *e;

    /* with the tracer its exit event is read first (pbd_trace_sync): nothing is left to do */
    if (t == NULL || (e = pbd_tp_find_live(t, pid)) == NULL || e->root)
        return;
    e->rec.exit_kind = how == CLD_EXITED ? PROCBUS_EXIT_CODE : PROCBUS_EXIT_SIGNAL;
    e->rec.exit_code = status;
    if (how == CLD_DUMPED)
        e->rec.flags |= PROCBUS_F_CORE_DUMPED;
    pbd_tp_set_exited(t, e, pb_now_ns(CLOCK_REALTIME));
    pbd_tp_stage(t, e);
}

/* Signal one process if it still is the one we know (pidfd, then its start time checked). */
static int signal_exact(const struct pbd_tp *e, int sig)
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
        const struct pbd_tp *e;
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
        const struct pbd_tp *e;
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

struct pbd_trace_stats pbd_trace_stats(const struct pbd_tracing *t)
{
    struct pbd_trace_stats none = {0};

    return t != NULL ? t->stats : none;
}

void pbd_trace_close(struct pbd_tracing *t)
{
    size_t i;

    if (t == NULL)
        return;
    pbd_ebpf_close(t);
    for (i = 0; t->tbl != NULL && i <= t->mask; i++) {
        struct pbd_tp *e = t->tbl[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(t->tbl);
    free(t);
}