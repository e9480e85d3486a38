/* reload.c - procbusd's configuration reload (SIGHUP, `procbus reload`): apply what changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_int.h"
#include "parity.h"

/* pbd_config_load's warning callback: one warn line each. */
static void print_warning(void *arg, const char *msg)
{
    const struct pbd_daemon *d = arg;
    pbd_say(d, PBD_L_WARN, "%s", msg);
}

/* 1 if an instance's settings (prog or next_prog) point into cfg's programs. */
static int config_in_use(const struct pbd_daemon *d, const struct pbd_config *cfg)
{
    const struct pbd_program *lo = cfg->progs, *hi = cfg->progs + cfg->n_progs;

    for (size_t i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *in = d->inst[i];
        if ((in->prog >= lo && in->prog < hi) || (in->next_prog >= lo && in->next_prog < hi))
            return 1;
    }
    return 0;
}

/* Free the configurations earlier reloads replaced that no instance refers to any more (the
 * ones stopping instances still use stay until a later reload finds them unused). */
static void free_unused_configs(struct pbd_daemon *d)
{
    size_t i = 0, kept = 0;

    for (i = 0; i < d->n_old; i++) {
        if (d->old_cfgs[i].n_progs > 0 && config_in_use(d, &d->old_cfgs[i]))
            d->old_cfgs[kept++] = d->old_cfgs[i];
        else
            pbd_config_free(&d->old_cfgs[i]);
    }
    d->n_old = kept;
    if (kept == 0) {
        free(d->old_cfgs);
        d->old_cfgs = NULL;
    }
}

/*
 * What must hold before `next` replaces the running configuration: its users
 * (pbd_config_check_runner), room in the segment (whose capacity is fixed
 * while procbusd runs) for its instances and for the removed ones still
 * stopping, and, unless allowed, at least one program when some run now.
 * 0, or a negative errno with the reason in err.
 */
static int check_next(struct pbd_daemon *d, const struct pbd_config *next, unsigned flags,
                      char *err, size_t errlen)
{
    size_t i, current = 0, leaving = 0;
    int rc = pbd_config_check_runner(next, geteuid(), err, errlen);

    if (rc < 0)
        return rc;
    for (i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *in = d->inst[i];
        int stays = !in->removing && pbd_config_find(next, in->prog->name) != NULL;
        current += !in->removing;
        leaving += !stays && pbd_inst_alive(in);
    }
    if (next->n_progs + leaving > d->cfg.daemon.capacity) {
        snprintf(err, errlen,
                 "%s: %zu program instances (and %zu removed ones still stopping) need more "
                 "records than the segment's capacity of %u: raise [procbusd] capacity and "
                 "restart procbusd (capacity takes effect at start)",
                 next->path, next->n_progs, leaving, d->cfg.daemon.capacity);
        return -ENOSPC;
    }
    if (next->n_progs == 0 && current > 0 && !(flags & PBD_RELOAD_ALLOW_EMPTY)) {
        snprintf(err, errlen,
                 "%s has no program: the reload would stop and remove all %zu; refused "
                 "(`procbus reload allow-empty` does it)",
                 next->path, current);
        return -ENOENT;
    }
    return 0;
}

int pbd_reload(struct pbd_daemon *d, char *err, size_t errlen)
{
    return pbd_reload_flags(d, 0, err, errlen);
}

int pbd_reload_flags(struct pbd_daemon *d, unsigned flags, char *err, size_t errlen)
{
    return pbd_reload_groups(d, flags, NULL, 0, NULL, err, errlen);
}

/* The settings an instance runs with now, or will once a change is applied. */
static const struct pbd_program *current(const struct pbd_inst *in)
{
    return in->next_prog != NULL ? in->next_prog : in->prog;
}

/* 1 if group g is in the list (no list: every group). */
static int wanted(const char *g, char *const *groups, size_t n)
{
    if (groups == NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(groups[i], g) == 0)
            return 1;
    return 0;
}

/* supervisord's diff_to_active for one group: added, removed, changed or the same. */
static enum pbd_group_change group_change(const struct pbd_daemon *d, const struct pbd_config *next,
                                          const char *g)
{
    size_t active = 0, nxt = 0;
    int changed = 0;

    for (size_t i = 0; i < next->n_progs; i++)
        nxt += strcmp(next->progs[i].group, g) == 0;
    for (size_t i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *in = d->inst[i];
        const struct pbd_program *np;
        if (in->removing || strcmp(in->prog->group, g) != 0)
            continue;
        active++;
        np = pbd_config_find(next, in->prog->name);
        changed |=
            np == NULL || strcmp(np->group, g) != 0 || !pbd_program_identical(current(in), np);
    }
    if (active == 0)
        return nxt ? PBD_GROUP_ADDED : PBD_GROUP_SAME;
    if (nxt == 0)
        return PBD_GROUP_REMOVED;
    return changed || active != nxt ? PBD_GROUP_CHANGED : PBD_GROUP_SAME;
}

int pbd_reload_diff(const struct pbd_daemon *d, const struct pbd_config *next,
                    void (*cb)(void *arg, const char *group, enum pbd_group_change what), void *arg)
{
    int n = 0;

    /* the configuration's groups in its order, then the running ones it dropped */
    for (size_t i = 0; i < next->n_progs; i++) {
        const char *g = next->progs[i].group;
        int seen = 0;
        enum pbd_group_change c;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(next->progs[k].group, g) == 0;
        if (seen || (c = group_change(d, next, g)) == PBD_GROUP_SAME)
            continue;
        cb(arg, g, c);
        n++;
    }
    for (size_t i = 0; i < d->n_inst; i++) {
        const char *g = d->inst[i]->prog->group;
        int seen = d->inst[i]->removing;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !d->inst[k]->removing && strcmp(d->inst[k]->prog->group, g) == 0;
        for (size_t k = 0; k < next->n_progs && !seen; k++)
            seen = strcmp(next->progs[k].group, g) == 0;
        if (!seen) {
            cb(arg, g, PBD_GROUP_REMOVED);
            n++;
        }
    }
    return n;
}

/* What update says of each group, in supervisorctl's order: removed, changed, added. */
struct said {
    const struct pbd_reload_report *rep;
    char *const *groups;
    size_t n_groups;
    enum pbd_group_change pass;
    const struct pbd_daemon *d;
    const struct pbd_config *next;
};

/* 1 if applying `next` restarts or removes an instance of group g (it gets "stopped"). */
static int group_stops(const struct pbd_daemon *d, const struct pbd_config *next, const char *g)
{
    for (size_t i = 0; i < d->n_inst; i++) {
        const struct pbd_inst *in = d->inst[i];
        const struct pbd_program *np;
        if (in->removing || strcmp(in->prog->group, g) != 0)
            continue;
        np = pbd_config_find(next, in->prog->name);
        if (np == NULL || !pbd_program_same(current(in), np))
            return 1;
    }
    return 0;
}

static void say_change(void *arg, const char *g, enum pbd_group_change what)
{
    struct said *s = arg;
    char line[160];

    if (what != s->pass || !wanted(g, s->groups, s->n_groups))
        return;
    if (what == PBD_GROUP_REMOVED) {
        snprintf(line, sizeof(line), "%s: stopped", g);
        s->rep->line(s->rep->arg, line);
        snprintf(line, sizeof(line), "%s: removed process group", g);
    } else if (what == PBD_GROUP_CHANGED) {
        if (group_stops(s->d, s->next, g)) {
            snprintf(line, sizeof(line), "%s: stopped", g);
            s->rep->line(s->rep->arg, line);
        }
        snprintf(line, sizeof(line), "%s: updated process group", g);
    } else {
        snprintf(line, sizeof(line), "%s: added process group", g);
    }
    s->rep->line(s->rep->arg, line);
}

/* PROCESS_GROUP_ADDED / _REMOVED for the groups the update adds or removes. */
static void group_events(void *arg, const char *g, enum pbd_group_change what)
{
    struct said *s = arg;

    if (wanted(g, s->groups, s->n_groups) && (what == PBD_GROUP_ADDED || what == PBD_GROUP_REMOVED))
        pbd_par_group_event((struct pbd_daemon *)s->d, g, what == PBD_GROUP_ADDED);
}

int pbd_reload_groups(struct pbd_daemon *d, unsigned flags, char *const *groups, size_t n_groups,
                      const struct pbd_reload_report *rep, char *err, size_t errlen)
{
    struct pbd_config next, *olds;
    size_t i, j;
    int rc;

    free_unused_configs(d);
    memset(&next, 0, sizeof(next));
    rc = pbd_config_load(&next, d->config_path, NULL, err, errlen, print_warning, d);
    if (rc == 0 && (rc = check_next(d, &next, flags, err, errlen)) < 0)
        pbd_config_free(&next);
    if (rc < 0) {
        pbd_say(d, PBD_L_ERR, "reload refused, nothing changed: %s", err);
        return rc;
    }
    next.daemon.capacity = d->cfg.daemon.capacity; /* the segment's, until a restart */
    olds = realloc(d->old_cfgs, (d->n_old + 1) * sizeof(*olds));
    if (olds == NULL) {
        pbd_config_free(&next);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->old_cfgs = olds;
    {
        struct said s = {rep, groups, n_groups, PBD_GROUP_REMOVED, d, &next};
        for (int pass = 0; rep != NULL && pass < 3; pass++) {
            static const enum pbd_group_change order[3] = {PBD_GROUP_REMOVED, PBD_GROUP_CHANGED,
                                                           PBD_GROUP_ADDED};
            s.pass = order[pass];
            pbd_reload_diff(d, &next, say_change, &s);
        }
        pbd_reload_diff(d, &next, group_events, &s);
    }
    if (next.n_progs == 0 && d->n_inst > 0)
        pbd_say(d, PBD_L_WARN, "reload with no program (allow-empty): stopping and removing all");
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        const struct pbd_program *np = in->removing ? NULL : pbd_config_find(&next, in->prog->name);
        if (in->removing || !(wanted(in->prog->group, groups, n_groups) ||
                              (np != NULL && wanted(np->group, groups, n_groups))))
            continue; /* not asked for: it keeps its settings (the old configuration stays) */
        if (np == NULL) {
            pbd_say(d, PBD_L_INFO, "%s: removed from the configuration", in->prog->name);
            in->removing = 1;
            in->want_start = 0;
            if (pbd_inst_alive(in))
                pbd_inst_fire(d, in, PBD_EV_STOP);
        } else if (pbd_program_same(in->prog, np)) {
            in->prog = np; /* unchanged: leave it alone */
            in->next_prog = NULL;
        } else {
            pbd_say(d, PBD_L_INFO, "%s: changed, restarting with the new settings", in->prog->name);
            if (pbd_inst_alive(in)) {
                in->next_prog = np;
                in->want_start = np->autostart || pbd_state_has_process(in->state);
                pbd_inst_fire(d, in, PBD_EV_STOP);
            } else {
                in->prog = np;
                pbd_inst_open_logs(d, in);
                in->want_start = np->autostart;
                pbd_inst_publish(d, in);
            }
        }
    }
    for (j = 0; j < next.n_progs; j++) {
        int found = !wanted(next.progs[j].group, groups, n_groups);
        for (i = 0; i < d->n_inst && !found; i++)
            found =
                !d->inst[i]->removing &&
                (d->inst[i]->prog == &next.progs[j] || d->inst[i]->next_prog == &next.progs[j] ||
                 strcmp(d->inst[i]->prog->name, next.progs[j].name) == 0);
        if (!found) {
            pbd_say(d, PBD_L_INFO, "%s: added", next.progs[j].name);
            pbd_inst_new(d, &next.progs[j]);
        }
    }
    d->old_cfgs[d->n_old++] = d->cfg; /* stopping instances may still point into it */
    d->cfg = next;
    pbd_inst_sort(d);
    free_unused_configs(d);
    if (pbd_evl_sync_pools(d) < 0)
        pbd_say(d, PBD_L_ERR, "reload: out of memory for the event listener pools");
    return 0;
}
