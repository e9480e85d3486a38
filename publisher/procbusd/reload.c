/* reload.c - procbusd's configuration reload (SIGHUP, `procbus reload`): apply what changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_int.h"

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
    if (next.n_progs == 0 && d->n_inst > 0)
        pbd_say(d, PBD_L_WARN, "reload with no program (allow-empty): stopping and removing all");
    for (i = 0; i < d->n_inst; i++) {
        struct pbd_inst *in = d->inst[i];
        const struct pbd_program *np = in->removing ? NULL : pbd_config_find(&next, in->prog->name);
        if (np == NULL) {
            if (!in->removing)
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
        int found = 0;
        for (i = 0; i < d->n_inst && !found; i++)
            found = !d->inst[i]->removing &&
                    (d->inst[i]->prog == &next.progs[j] || d->inst[i]->next_prog == &next.progs[j]);
        if (!found) {
            pbd_say(d, PBD_L_INFO, "%s: added", next.progs[j].name);
            pbd_inst_new(d, &next.progs[j]);
        }
    }
    d->old_cfgs[d->n_old++] = d->cfg; /* stopping instances may still point into it */
    d->cfg = next;
    pbd_inst_sort(d);
    free_unused_configs(d);
    return 0;
}
