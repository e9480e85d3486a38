/* reload.c - procbusd's configuration reload (SIGHUP, `procbus reload`): apply what changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"

/* pbd_config_load's warning callback: one warn line each. */
static void print_warning(void *arg, const char *msg)
{
    const struct pbd_daemon *d = arg;
    pbd_say(d, PBD_L_WARN, "%s", msg);
}

int pbd_reload(struct pbd_daemon *d, char *err, size_t errlen)
{
    struct pbd_config next, *olds;
    size_t i, j;
    int rc;

    memset(&next, 0, sizeof(next));
    rc = pbd_config_load(&next, d->config_path, NULL, err, errlen, print_warning, d);
    if (rc < 0) {
        pbd_say(d, PBD_L_ERR, "reload refused, nothing changed: %s", err);
        return rc;
    }
    olds = realloc(d->old_cfgs, (d->n_old + 1) * sizeof(*olds));
    if (olds == NULL) {
        pbd_config_free(&next);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->old_cfgs = olds;
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
    return 0;
}
