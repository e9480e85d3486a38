/* inst.c - procbusd's program instances: the table of them and the records they publish. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "parity.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "pubcall.h"
#include "util.h"

/* ---- records ---- */

static void fill_cmdline(struct procbus_proc *rec, char *const *argv)
{
    size_t used = 0;
    int i;

    for (i = 0; argv != NULL && argv[i] != NULL; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (used + n > PROCBUS_CMDLINE_LEN) {
            size_t room = PROCBUS_CMDLINE_LEN - used;
            if (room > 0) {
                memcpy(rec->cmdline + used, argv[i], room - 1);
                rec->cmdline[used + room - 1] = '\0';
                used += room;
            }
            rec->flags |= PROCBUS_F_CMDLINE_TRUNCATED;
            break;
        }
        memcpy(rec->cmdline + used, argv[i], n);
        used += n;
    }
    rec->cmdline_len = (uint32_t)used;
}

void pbd_inst_publish(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct procbus_proc rec;
    const char *base;

    memset(&rec, 0, sizeof(rec));
    rec.id = in->id;
    rec.pid = in->last_pid; /* after an exit: the pid it had (the state says it is gone) */
    rec.ppid = in->adopted ? in->adopt_ppid : in->last_pid ? (int32_t)getpid() : 0;
    rec.pgid = in->last_pid;
    rec.state = in->state;
    rec.exit_kind = in->exit_kind;
    rec.exit_code = in->exit_code;
    rec.flags = in->core ? PROCBUS_F_CORE_DUMPED : 0;
    if (in->adopted)
        rec.flags |= PROCBUS_F_ADOPTED;
    if (in->exit_unknown)
        rec.flags |= PROCBUS_F_EXIT_UNKNOWN;
    rec.start_realtime_ns = in->start_real;
    rec.start_boot_ns = in->start_boot;
    rec.state_since_ns = in->since;
    rec.restarts = in->restarts;
    rec.cpu_ns = in->cpu_ns;
    rec.rss_bytes = in->rss;
    snprintf(rec.name, sizeof(rec.name), "%s", in->prog->name);
    base = strrchr(in->prog->argv[0], '/');
    snprintf(rec.comm, sizeof(rec.comm), "%s", base ? base + 1 : in->prog->argv[0]);
    fill_cmdline(&rec, in->prog->argv);
    /* a failure is logged there; the state lives on here, but a program without a record is
     * not started (supervise.c) */
    in->unpublished = pbd_pub_upsert(d->pub, &rec, 0) == -ENOSPC;
    d->staged = 1;
}

void pbd_inst_set_state(struct pbd_daemon *d, struct pbd_inst *in, uint16_t s)
{
    uint16_t from = in->state;

    if (in->state == s)
        return;
    pbd_say(d, PBD_L_INFO, "%s: %s -> %s", in->prog->name, procbus_state_name(in->state),
            procbus_state_name(s));
    in->state = s;
    /* the state its main process's exit led to dates from the exit, as the kernel saw it */
    in->since = in->exit_real != 0 ? in->exit_real : pb_now_ns(CLOCK_REALTIME);
    in->exit_real = 0;
    pbd_inst_publish(d, in);
    pbd_par_state(d, in, from); /* PROCESS_STATE events, supervisord's log line */
}

int pbd_inst_alive(const struct pbd_inst *in)
{
    return pbd_state_has_process(in->state) || in->state == PROCBUS_STATE_BACKOFF;
}

int pbd_inst_expected_exit(const struct pbd_inst *in)
{
    int i;

    if (in->exit_kind != PROCBUS_EXIT_CODE)
        return 0;
    for (i = 0; i < in->prog->n_exitcodes; i++)
        if (in->prog->exitcodes[i] == in->exit_code)
            return 1;
    return 0;
}

/* ---- the table ---- */

static int cmp_inst(const void *a, const void *b)
{
    const struct pbd_inst *x = *(struct pbd_inst *const *)a, *y = *(struct pbd_inst *const *)b;
    /* supervisord's order: groups by priority, then processes by theirs (a program outside a
     * [group:x] is its own group, of its own priority; event listener pools come first) */
    if (x->prog->group_priority != y->prog->group_priority)
        return x->prog->group_priority < y->prog->group_priority ? -1 : 1;
    if (x->prog->priority != y->prog->priority)
        return x->prog->priority < y->prog->priority ? -1 : 1;
    return strcmp(x->prog->name, y->prog->name);
}

void pbd_inst_sort(struct pbd_daemon *d)
{
    if (d->n_inst > 1) /* none: an observe-only daemon (qsort of NULL is undefined) */
        qsort(d->inst, d->n_inst, sizeof(*d->inst), cmp_inst);
}

struct pbd_inst *pbd_inst_new(struct pbd_daemon *d, const struct pbd_program *p)
{
    struct pbd_inst *in = pbd_inst_create(d, p, 0);

    if (in != NULL)
        pbd_inst_publish(d, in);
    return in;
}

struct pbd_inst *pbd_inst_create(struct pbd_daemon *d, const struct pbd_program *p, uint64_t id)
{
    struct pbd_inst *in = calloc(1, sizeof(*in)), **grown;

    if (in == NULL)
        return NULL;
    grown = realloc(d->inst, (d->n_inst + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(in);
        return NULL;
    }
    d->inst = grown;
    in->prog = p;
    in->id = id != 0 ? id : procbus_pub_new_id(d->pub);
    in->state = PROCBUS_STATE_STOPPED;
    in->since = pb_now_ns(CLOCK_REALTIME);
    in->sp.pidfd = in->sp.status_fd = in->sp.out_fd = in->sp.err_fd = in->sp.ready_fd = -1;
    in->sp.go_fd = -1;
    in->w_pid = (struct pbd_watch){.kind = PBD_W_PIDFD, .inst = in};
    in->w_out = (struct pbd_watch){.kind = PBD_W_OUT, .inst = in};
    in->w_err = (struct pbd_watch){.kind = PBD_W_ERR, .inst = in};
    in->w_ready = (struct pbd_watch){.kind = PBD_W_READY, .inst = in};
    in->w_exec = (struct pbd_watch){.kind = PBD_W_EXEC, .inst = in};
    in->want_start = p->autostart;
    for (int w = 0; w < 2; w++) /* the AUTO names it takes over (adoption, an upgrade) */
        if (d->auto_hint[w] != NULL && pbd_log_is_auto(w ? p->err.path : p->out.path))
            pbd_autolog_path(d, in, w);
    if (!d->defer_logs)
        pbd_inst_open_logs(d, in);
    d->inst[d->n_inst++] = in;
    return in;
}

void pbd_inst_open_deferred(struct pbd_daemon *d)
{
    if (!d->defer_logs)
        return;
    d->defer_logs = 0;
    for (size_t i = 0; i < d->n_inst; i++)
        if (d->inst[i]->out_log == NULL && d->inst[i]->err_log == NULL)
            pbd_inst_open_logs(d, d->inst[i]);
}

void pbd_inst_free(struct pbd_daemon *d, struct pbd_inst *in)
{
    pbd_spawnq_remove(d, in);
    if (in->sp.go_fd >= 0) { /* never released: the child exits without exec'ing */
        close(in->sp.go_fd);
        in->sp.go_fd = -1;
        d->go_pending--;
    }
    pbd_watch_close(d, &in->sp.pidfd);
    pbd_watch_close(d, &in->sp.status_fd);
    pbd_watch_close(d, &in->sp.out_fd);
    pbd_watch_close(d, &in->sp.err_fd);
    pbd_watch_close(d, &in->sp.ready_fd);
    pbd_log_close(in->out_log);
    pbd_log_close(in->err_log);
    if (in->has_re)
        regfree(&in->ready_re);
    pbd_par_inst_free(d, in);
    free(in->lines);
    if (in->own_prog != NULL) {
        pbd_program_clear(in->own_prog);
        free(in->own_prog);
    }
    free(in);
}

void pbd_inst_drop_removed(struct pbd_daemon *d)
{
    size_t i = 0;

    while (i < d->n_inst) {
        struct pbd_inst *in = d->inst[i];
        if (in->removing && !pbd_inst_alive(in)) {
            pbd_say(d, PBD_L_INFO, "%s: removed", in->prog->name);
            pbd_holder_drop(&d->holder, in->prog->name);
            pbd_pub_remove(d->pub, in->id);
            d->staged = 1;
            pbd_inst_free(d, in);
            memmove(&d->inst[i], &d->inst[i + 1], (d->n_inst - i - 1) * sizeof(*d->inst));
            d->n_inst--;
        } else {
            i++;
        }
    }
}

struct pbd_inst *pbd_inst_by_pid(struct pbd_daemon *d, pid_t pid)
{
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (d->inst[i]->sp.pid == pid)
            return d->inst[i];
    return NULL;
}
