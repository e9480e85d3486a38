/* cli_proc.c - facts about one record, their order, and the process tree (ps and top). */
#define _GNU_SOURCE
#include "cli_proc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "textsafe.h"

const char *cli_safe(char *buf, size_t len, const char *s, size_t max)
{
    pb_text_safe(buf, len, s, max, PB_TEXT_TERMINAL);
    return buf;
}

const char *cli_label(char *buf, size_t len, const struct procbus_proc *p)
{
    if (p->name[0] != '\0')
        return cli_safe(buf, len, p->name, PROCBUS_NAME_LEN);
    return cli_safe(buf, len, p->comm, PROCBUS_COMM_LEN);
}

int cli_live(const struct procbus_proc *p)
{
    return p->pid > 0 && (p->state == PROCBUS_STATE_STARTING || p->state == PROCBUS_STATE_RUNNING ||
                          p->state == PROCBUS_STATE_READY || p->state == PROCBUS_STATE_STOPPING);
}

int cli_proc_cmp(const struct procbus_proc *x, const struct procbus_proc *y, enum cli_sort key)
{
    int byname;

    switch (key) {
    case CLI_SORT_PID:
        if (x->pid != y->pid)
            return x->pid < y->pid ? -1 : 1;
        break;
    case CLI_SORT_CPU:
        if (x->cpu_ns != y->cpu_ns)
            return x->cpu_ns > y->cpu_ns ? -1 : 1;
        break;
    case CLI_SORT_RSS:
        if (x->rss_bytes != y->rss_bytes)
            return x->rss_bytes > y->rss_bytes ? -1 : 1;
        break;
    case CLI_SORT_RESTARTS:
        if (x->restarts != y->restarts)
            return x->restarts > y->restarts ? -1 : 1;
        break;
    case CLI_SORT_AGE: { /* running ones first, longest-running first */
        uint64_t xa = cli_live(x) ? x->start_realtime_ns : UINT64_MAX;
        uint64_t ya = cli_live(y) ? y->start_realtime_ns : UINT64_MAX;
        if (xa != ya)
            return xa < ya ? -1 : 1;
        break;
    }
    default:
        break;
    }
    byname = strcmp(x->name, y->name);
    if (byname == 0 && x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return byname;
}

static int is_descendant(const struct procbus_proc *p)
{
    return (p->flags & PROCBUS_F_DESCENDANT) != 0;
}

size_t cli_tree_build(const struct procbus_proc *const *recs, size_t n, int with_kids,
                      int (*match)(const struct procbus_proc *p, const void *ctx), const void *ctx,
                      struct cli_tree_row *out)
{
    size_t nrows = 0;

    for (size_t i = 0; i < n && nrows < n; i++) {
        int shown;

        if (is_descendant(recs[i]))
            continue;
        shown = match == NULL || match(recs[i], ctx);
        if (shown)
            out[nrows++] = (struct cli_tree_row){i, 0};
        if (!with_kids)
            continue;
        /* the tracer publishes a program's descendants with program_id = the program's id */
        for (size_t k = 0; k < n && nrows < n; k++) /* (< n: even if ids repeat) */
            if (is_descendant(recs[k]) && recs[k]->program_id == recs[i]->id &&
                (shown || match(recs[k], ctx)))
                out[nrows++] = (struct cli_tree_row){k, 1};
    }
    for (size_t k = 0; with_kids && k < n && nrows < n; k++) { /* descendants of no program here */
        int has_program = 0;
        if (!is_descendant(recs[k]))
            continue;
        for (size_t i = 0; i < n && !has_program; i++)
            has_program = !is_descendant(recs[i]) && recs[i]->id == recs[k]->program_id;
        if (!has_program && (match == NULL || match(recs[k], ctx)))
            out[nrows++] = (struct cli_tree_row){k, 0};
    }
    return nrows;
}
