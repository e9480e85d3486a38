/* trace_bpf.c - the trace module's eBPF feed (fork, exec, exit): built only with the tracer. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "procbus_pub.h"
#include "proctrace_user.h"
#include "trace_int.h"
#include "util.h"

/* ---- events ---- */

/* The tracer knows the exact start time: keep it (a /proc walk only had a clock tick's worth). */
static void exact_start(struct pbd_tp *e, const struct proctrace_event *ev)
{
    e->rec.start_boot_ns = ev->start_boot_ns;
    e->exact = 1;
}

/* The program a process belongs to: its kernel tag (the kernel decided at its fork), else
 * its live parent's. Marks the parent as having children. */
static uint64_t program_of(struct pbd_tracing *t, const struct proctrace_event *ev,
                           const struct pbd_tp **par)
{
    uint64_t prog = pbd_tp_program_of_parent(t, ev->ppid, par);

    if (ev->tag != 0 && ev->tag != prog) {
        if (prog == 0)
            t->stats.tagged++;
        prog = ev->tag;
    }
    return prog;
}

/* A record for a process whose fork was not read (a loss, or before the startup walk), or
 * NULL when it belongs to no one (or is procbusd's own fork: a main process, or a spawn that
 * failed). */
static struct pbd_tp *late_new(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct pbd_tp *e;

    if (ev->ppid == t->self && !t->o.observe)
        return NULL;
    e = pbd_tp_track_new(t, ev->tgid, ev->ppid, ev->start_boot_ns, program_of(t, ev, NULL),
                         ev->comm);
    if (e != NULL)
        e->rec.ns_pid = ev->ns_tgid;
    return e;
}

/* The live main process of a program with this pid, if the event is about it. */
static struct pbd_tp *root_of(const struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct pbd_tp *l = pbd_tp_find_live(t, ev->tgid);

    return l != NULL && l->root ? l : NULL;
}

static void on_fork(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    const struct pbd_tp *par;
    struct pbd_tp *e = pbd_tp_find_live(t, ev->tgid);
    uint64_t prog;

    if (e != NULL && e->root) { /* a program's main process: procbusd publishes it */
        exact_start(e, ev);
        return;
    }
    if (e != NULL && pbd_tp_find_exact(t, ev->tgid, ev->start_boot_ns, 1) == e) {
        exact_start(e, ev); /* a /proc walk found it first */
        return;
    }
    if (e != NULL)
        pbd_tp_vanished(t, e); /* its pid was reused: the old one exited unseen */
    if (ev->ppid == t->self && !t->o.observe)
        return; /* procbusd's own fork: a program's main process (a root, or a failed spawn) */
    if (pbd_tp_find_exact(t, ev->tgid, ev->start_boot_ns, 1) != NULL)
        return; /* recorded already (a walk saw it come and go): never a second record */
    prog = program_of(t, ev, &par);
    e = pbd_tp_track_new(t, ev->tgid, ev->ppid, ev->start_boot_ns, prog, ev->comm);
    if (e == NULL)
        return;
    e->exact = 1;
    e->rec.ns_pid = ev->ns_tgid;
    e->rec.state_since_ns = pbd_trace_to_real(t, ev->ts_ns);
    if (par != NULL && !par->root) {
        e->rec.pgid = par->rec.pgid;
        e->sid = par->sid;
        pbd_tp_set_cmdline(&e->rec, par->rec.cmdline, par->rec.cmdline_len,
                           (par->rec.flags & PROCBUS_F_CMDLINE_TRUNCATED) != 0);
    } else if (par != NULL) {
        struct procbus_proc prog_rec;
        if (procbus_pub_get(t->pub, prog, &prog_rec) == 0)
            pbd_tp_set_cmdline(&e->rec, prog_rec.cmdline, prog_rec.cmdline_len,
                               (prog_rec.flags & PROCBUS_F_CMDLINE_TRUNCATED) != 0);
        e->rec.pgid = par->rec.pid; /* programs run in their own session and group */
        e->sid = par->rec.pid;
    }
    pbd_tp_stage(t, e);
}

static void on_exec(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct pbd_tp *e = pbd_tp_find_exact(t, ev->tgid, ev->start_boot_ns, 1), *r;

    if (e == NULL && (r = root_of(t, ev)) != NULL) { /* the program's own exec: an EXEC
                                                      * event on its record */
        struct procbus_proc rec;
        if (procbus_pub_get(t->pub, r->rec.program_id, &rec) == 0) {
            snprintf(rec.comm, sizeof(rec.comm), "%s", ev->comm);
            rec.name[0] = '\0'; /* the event names the new image (comm), as for descendants */
            pbd_tp_exec_event(t, &rec);
        }
        return;
    }
    if (e == NULL && (r = pbd_tp_find_live(t, ev->tgid)) != NULL)
        pbd_tp_vanished(t, r); /* another process had this pid: it exited unseen */
    if (e == NULL && (e = late_new(t, ev)) == NULL)
        return;
    /* a provisional record (a walk found it gone before this older event was read) takes
     * the exec in; it stays EXITED */
    exact_start(e, ev);
    e->rec.ns_pid = ev->ns_tgid;
    snprintf(e->rec.comm, sizeof(e->rec.comm), "%s", ev->comm);
    if (ev->args_len > 0)
        pbd_tp_set_cmdline(&e->rec, ev->args, ev->args_len,
                           (ev->flags & PROCTRACE_F_ARGS_TRUNCATED) != 0);
    else
        pbd_tp_set_cmdline(&e->rec, ev->filename, strnlen(ev->filename, sizeof(ev->filename)) + 1,
                           (ev->flags & PROCTRACE_F_FILENAME_TRUNC) != 0);
    if (e->alive)
        e->rec.state_since_ns = pbd_trace_to_real(t, ev->ts_ns);
    pbd_tp_stage(t, e);
    pbd_tp_exec_event(t, &e->rec);
}

static void on_rename(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct pbd_tp *e = pbd_tp_find_exact(t, ev->tgid, ev->start_boot_ns, 1);

    if (e == NULL || strncmp(e->rec.comm, ev->comm, sizeof(e->rec.comm)) == 0)
        return; /* a main process (its record is the program's), or not ours */
    snprintf(e->rec.comm, sizeof(e->rec.comm), "%s", ev->comm);
    pbd_tp_stage(t, e); /* a rename is no exec: no EXEC event */
}

static void on_exit_ev(struct pbd_tracing *t, const struct proctrace_event *ev)
{
    struct pbd_tp *e = pbd_tp_find_exact(t, ev->tgid, ev->start_boot_ns, 1), *l;

    if (e == NULL) {
        if ((l = root_of(t, ev)) != NULL) { /* procbusd reaps it and publishes that (or, not
                                             * its child, takes the status from here) */
            l->exit_boot = ev->ts_ns;
            l->rec.exit_kind =
                (ev->flags & PROCTRACE_F_SIGNALED) ? PROCBUS_EXIT_SIGNAL : PROCBUS_EXIT_CODE;
            l->rec.exit_code = (ev->flags & PROCTRACE_F_SIGNALED) ? ev->exit_signal : ev->exit_code;
            if (ev->flags & PROCTRACE_F_CORE_DUMPED)
                l->rec.flags |= PROCBUS_F_CORE_DUMPED;
            pbd_tp_reparent(t, ev->tgid, ev->reaper);
            t->root_exits++; /* an adopted one's is published before this event is let go */
            /* and a child's is kept in the ring until reaped (pbd_trace_committed) */
            pbd_tp_hold_end(t, l, proctrace_event_pos(t->pt));
            return;
        }
        if ((l = pbd_tp_find_live(t, ev->tgid)) != NULL)
            pbd_tp_vanished(t, l);
        /* nobody saw it start (a loss, or before the walk): it still gets a record */
        if ((e = late_new(t, ev)) == NULL)
            return;
    } else if (!e->alive && !e->provisional) {
        return; /* ended with its status already (reaped by procbusd) */
    }
    if (!e->alive)
        t->stats.merged++; /* a walk found it gone first: the real status fills it in */
    e->provisional = 0;
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
    pbd_tp_set_exited(t, e, pbd_trace_to_real(t, ev->ts_ns));
    pbd_tp_stage(t, e);
    if (e->forked)
        pbd_tp_reparent(t, ev->tgid, ev->reaper);
}

/* A replayed event (a predecessor read it and published what it made, but kept it in the
 * ring: the exit of a main process it had not reaped yet) counts only as the exit of a main
 * process this procbusd took over, the very process (start time within a tick). */
static int replay_wanted(const struct pbd_tracing *t, const struct proctrace_event *ev)
{
    const struct pbd_tp *l;

    if (ev->kind != PROCTRACE_EXIT || (l = root_of(t, ev)) == NULL)
        return 0;
    return l->rec.start_boot_ns == 0 ||
           pbd_tp_same_start(t, l->rec.start_boot_ns, ev->start_boot_ns);
}

static int on_event(void *arg, const struct proctrace_event *ev)
{
    struct pbd_tracing *t = arg;

    if (proctrace_event_replayed(t->pt) && !replay_wanted(t, ev))
        return 0;
    switch (ev->kind) {
    case PROCTRACE_FORK:
        t->stats.forks++;
        on_fork(t, ev);
        break;
    case PROCTRACE_EXEC:
        t->stats.execs++;
        on_exec(t, ev);
        break;
    case PROCTRACE_EXIT:
        t->stats.exits++;
        on_exit_ev(t, ev);
        break;
    case PROCTRACE_RENAME:
        t->stats.renames++;
        on_rename(t, ev);
        break;
    }
    return 0;
}

/* ---- the feed ---- */

int pbd_ebpf_open(struct pbd_tracing *t, char *why, size_t whylen)
{
    struct proctrace_opts po = {.observe_all = t->o.observe,
                                .ring_bytes = (size_t)(t->o.ring_kb ? t->o.ring_kb : 256) * 1024};
    int rc;

    po.wake_gap_ns = (uint64_t)t->o.batch_ms * 1000000ull;
    po.pin_dir = t->o.pin_dir;
    po.pin_reuse = t->o.pin_reuse;
    po.defer_release = 1; /* released once committed: pbd_trace_committed */
    rc = proctrace_open(&t->pt, &po, why, whylen);
    if (rc == 0) /* its forks: every program, from its start, tagged with the program */
        rc = proctrace_track(t->pt, t->self);
    if (rc < 0) {
        proctrace_close(t->pt);
        t->pt = NULL;
    }
    return rc;
}

int pbd_ebpf_fd(const struct pbd_tracing *t)
{
    return t->pt != NULL ? proctrace_fd(t->pt) : -1;
}

int pbd_ebpf_consume(struct pbd_tracing *t)
{
    uint64_t lost, tf;
    int rc;

    if (t->pt == NULL)
        return 0;
    pbd_trace_clock_sync(t);
    rc = proctrace_consume(t->pt, on_event, t);
    if (rc < 0)
        return rc;
    /* with rate-limited wake-ups, events may come without one for a gap after the last
     * wake-up: read again a gap after each read that found events, for as long as reads find
     * events. A read that finds none (a sync before a decision, between two batches) ends
     * that only once the pending batch read is due: until then an event may still come
     * without a wake-up, and would wait for the next one that has one. */
    if (t->o.batch_ms > 0) {
        uint64_t now = pb_now_ns(CLOCK_MONOTONIC);
        if (rc > 0)
            t->next_batch = now + (uint64_t)t->o.batch_ms * 1000000ull;
        else if (now >= t->next_batch)
            t->next_batch = UINT64_MAX;
    }
    lost = proctrace_lost(t->pt);
    tf = proctrace_track_failed(t->pt);
    if (lost != t->lost_seen || tf != t->trackfail_seen) {
        procbus_pub_count_drops(t->pub, lost - t->lost_seen, 0);
        t->lost_seen = lost;
        t->trackfail_seen = tf;
        t->reconcile_pending = 1; /* pbd_trace_tick walks /proc */
    }
    return rc;
}

void pbd_ebpf_track(struct pbd_tracing *t, pid_t pid, uint64_t program_id)
{
    if (t->pt != NULL && (program_id != 0 || !t->o.observe))
        proctrace_track_tag(t->pt, pid, program_id);
}

uint64_t pbd_ebpf_tag(const struct pbd_tracing *t, pid_t pid)
{
    uint64_t tag = 0;

    if (t->pt == NULL || proctrace_tag(t->pt, pid, &tag) != 0)
        return 0;
    return tag;
}

void pbd_ebpf_spawn_tag(struct pbd_tracing *t, uint64_t program_id)
{
    proctrace_set_spawn_tag(t->pt, program_id);
}

int pbd_trace_pin_fs(const char *dir, char *why, size_t whylen)
{
    return proctrace_pin_check_fs(dir, why, whylen);
}

int pbd_trace_pin_remove(const char *dir)
{
    return proctrace_pin_remove(dir);
}

int pbd_ebpf_release(struct pbd_tracing *t)
{
    return t->pt != NULL
               ? proctrace_release_keep(t->pt, t->held != NULL ? t->held->held_pos : UINT64_MAX)
               : 0;
}

int pbd_ebpf_reused(const struct pbd_tracing *t)
{
    return proctrace_reused(t->pt);
}

int pbd_ebpf_pinned(const struct pbd_tracing *t)
{
    return proctrace_pinned(t->pt);
}

void pbd_ebpf_unpin(struct pbd_tracing *t)
{
    proctrace_unpin(t->pt);
}

void pbd_ebpf_close(struct pbd_tracing *t)
{
    proctrace_close(t->pt);
    t->pt = NULL;
}
