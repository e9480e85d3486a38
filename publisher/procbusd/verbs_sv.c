/* verbs_sv.c - supervisorctl's control verbs: update (and reload), reread, add, remove, avail,
 * clear, and the look-ups the CLI makes (logfile, mainlog, names). Rows in verbs.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parity.h"
#include "verbs.h"

/* pbd_config_load's warnings while re-reading: procbusd's log. */
static void warn_cb(void *arg, const char *msg)
{
    pbd_say(arg, PBD_L_WARN, "%s", msg);
}

/* Read the configuration into the reread slot (what avail and add see). 0, or a negative errno
 * with rq->final set. */
static int reread_config(struct pbd_daemon *d, struct req *rq)
{
    struct pbd_par *p = pbd_par_of(d);
    struct pbd_config next;
    char err[1024];
    int rc;

    if (p == NULL) {
        snprintf(rq->final, rq->flen, "ERR out of memory\n");
        return -ENOMEM;
    }
    rc = pbd_config_load(&next, d->config_path, NULL, err, sizeof(err), warn_cb, d);
    if (rc < 0) {
        snprintf(rq->final, rq->flen, "ERR %s\n", err);
        return rc;
    }
    if (p->has_reread)
        pbd_config_free(&p->reread);
    p->reread = next;
    p->has_reread = 1;
    return 0;
}

/* ---- update, reload ---- */

struct reply_to {
    struct pbd_daemon *d;
    int slot;
    int lines;
};

static void reply_line(void *arg, const char *text)
{
    struct reply_to *r = arg;
    pbd_ctl_reply(&r->d->ctl, r->slot, "%s\n", text);
    r->lines++;
}

/* 1 if some running instance, or the configuration, has group g. */
static int group_known(const struct pbd_daemon *d, const char *g)
{
    for (size_t i = 0; i < d->n_inst; i++)
        if (!strcmp(d->inst[i]->prog->group, g))
            return 1;
    for (size_t i = 0; i < d->cfg.n_progs; i++)
        if (!strcmp(d->cfg.progs[i].group, g))
            return 1;
    return 0;
}

void pbd_verb_update(struct pbd_daemon *d, struct req *rq)
{
    struct reply_to to = {d, rq->slot, 0};
    struct pbd_reload_report rep = {reply_line, &to};
    char err[1024], **groups = calloc((size_t)rq->argc + 1, sizeof(*groups));
    size_t n = 0;
    unsigned flags = 0;
    int all = 0, bad = 0;

    if (groups == NULL) {
        snprintf(rq->final, rq->flen, "ERR out of memory\n");
        return;
    }
    for (int a = 1; a < rq->argc; a++) {
        if (!strcmp(rq->argv[a], "allow-empty"))
            flags |= PBD_RELOAD_ALLOW_EMPTY;
        else if (!strcmp(rq->argv[a], "all"))
            all = 1;
        else
            groups[n++] = rq->argv[a];
    }
    if (pbd_reload_groups(d, flags, all || n == 0 ? NULL : groups, n, &rep, err, sizeof(err)) < 0) {
        snprintf(rq->final, rq->flen, "ERR %s\n", err);
        free(groups);
        return;
    }
    for (size_t i = 0; !all && i < n; i++) {
        if (!group_known(d, groups[i])) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: no such group: %s\n", groups[i]);
            bad++;
        }
    }
    if (to.lines == 0 && bad == 0 && !strcmp(rq->argv[0], "reload"))
        pbd_ctl_reply(&d->ctl, rq->slot, "No config updates to processes\n");
    if (bad)
        snprintf(rq->final, rq->flen, "ERR %d unknown group(s)\n", bad);
    else
        snprintf(rq->final, rq->flen, "OK\n");
    free(groups);
}

/* ---- reread ---- */

struct change {
    char name[64];
    enum pbd_group_change what;
};

struct changes {
    struct change *c;
    size_t n;
};

static void collect(void *arg, const char *g, enum pbd_group_change what)
{
    struct changes *cs = arg;
    struct change *grown = realloc(cs->c, (cs->n + 1) * sizeof(*cs->c));

    if (grown == NULL)
        return;
    cs->c = grown;
    snprintf(cs->c[cs->n].name, sizeof(cs->c[0].name), "%s", g);
    cs->c[cs->n++].what = what;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct change *)a)->name, ((const struct change *)b)->name);
}

void pbd_verb_reread(struct pbd_daemon *d, struct req *rq)
{
    static const char *const words[] = {"", "available", "changed", "disappeared"};
    struct changes cs = {NULL, 0};

    if (reread_config(d, rq) < 0)
        return;
    pbd_reload_diff(d, &d->par->reread, collect, &cs);
    if (cs.n > 1)
        qsort(cs.c, cs.n, sizeof(*cs.c), by_name);
    for (size_t i = 0; i < cs.n; i++)
        pbd_ctl_reply(&d->ctl, rq->slot, "%s: %s\n", cs.c[i].name, words[cs.c[i].what]);
    if (cs.n == 0)
        pbd_ctl_reply(&d->ctl, rq->slot, "No config updates to processes\n");
    free(cs.c);
    snprintf(rq->final, rq->flen, "OK\n");
}

/* ---- add, remove ---- */

/* 1 if group g has an instance that is not being removed. */
static int group_active(const struct pbd_daemon *d, const char *g)
{
    for (size_t i = 0; i < d->n_inst; i++)
        if (!d->inst[i]->removing && !strcmp(d->inst[i]->prog->group, g))
            return 1;
    return 0;
}

void pbd_verb_add(struct pbd_daemon *d, struct req *rq)
{
    int bad = 0;

    if (reread_config(d, rq) < 0)
        return;
    for (int a = 1; a < rq->argc; a++) {
        const char *g = rq->argv[a];
        char err[1024], *one[1] = {(char *)g};
        int known = 0;
        for (size_t i = 0; i < d->par->reread.n_progs && !known; i++)
            known = !strcmp(d->par->reread.progs[i].group, g);
        if (group_active(d, g)) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: process group already active\n");
        } else if (!known) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: no such process/group: %s\n", g);
            bad++;
        } else if (pbd_reload_groups(d, 0, one, 1, NULL, err, sizeof(err)) < 0) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: %s\n", err);
            bad++;
        } else {
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: added process group\n", g);
        }
    }
    if (bad)
        snprintf(rq->final, rq->flen, "ERR %d error(s)\n", bad);
    else
        snprintf(rq->final, rq->flen, "OK\n");
}

void pbd_verb_remove(struct pbd_daemon *d, struct req *rq)
{
    int bad = 0;

    for (int a = 1; a < rq->argc; a++) {
        const char *g = rq->argv[a];
        int running = 0;
        for (size_t i = 0; i < d->n_inst; i++)
            if (!d->inst[i]->removing && !strcmp(d->inst[i]->prog->group, g))
                running |= pbd_inst_alive(d->inst[i]);
        if (!group_active(d, g)) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: no such process/group: %s\n", g);
            bad++;
        } else if (running) {
            pbd_ctl_reply(&d->ctl, rq->slot, "ERROR: process/group still running: %s\n", g);
            bad++;
        } else {
            for (size_t i = 0; i < d->n_inst; i++) {
                if (!strcmp(d->inst[i]->prog->group, g)) {
                    d->inst[i]->removing = 1; /* dropped by the loop, record and all */
                    d->inst[i]->want_start = 0;
                }
            }
            pbd_par_group_event(d, g, 0);
            pbd_say(d, PBD_L_INFO, "%s: process group removed (remove)", g);
            pbd_ctl_reply(&d->ctl, rq->slot, "%s: removed process group\n", g);
        }
    }
    if (bad)
        snprintf(rq->final, rq->flen, "ERR %d error(s)\n", bad);
    else
        snprintf(rq->final, rq->flen, "OK\n");
}

/* ---- avail ---- */

struct avail_row {
    const struct pbd_program *p;
    size_t order; /* the configuration's order */
};

/* supervisord's order (getAllConfigInfo): by process name. */
static int avail_cmp(const void *a, const void *b)
{
    const struct avail_row *x = a, *y = b;
    int c = strcmp(x->p->name, y->p->name);
    return c ? c : x->order < y->order ? -1 : x->order > y->order;
}

void pbd_verb_avail(struct pbd_daemon *d, struct req *rq)
{
    const struct pbd_config *c = d->par != NULL && d->par->has_reread ? &d->par->reread : &d->cfg;
    struct avail_row *rows = calloc(c->n_progs + 1, sizeof(*rows));

    if (rows == NULL) {
        snprintf(rq->final, rq->flen, "ERR out of memory\n");
        return;
    }
    for (size_t i = 0; i < c->n_progs; i++) {
        rows[i].p = &c->progs[i];
        rows[i].order = i;
    }
    qsort(rows, c->n_progs, sizeof(*rows), avail_cmp); /* supervisord's: by name */
    for (size_t i = 0; i < c->n_progs; i++) {
        const struct pbd_program *p = rows[i].p;
        char nm[160], prio[64];
        int inuse = 0;
        for (size_t k = 0; k < d->n_inst && !inuse; k++)
            inuse = !d->inst[k]->removing && !strcmp(d->inst[k]->prog->name, p->name) &&
                    !strcmp(d->inst[k]->prog->group, p->group);
        snprintf(prio, sizeof(prio), "%d:%d", p->group_priority, p->priority);
        pbd_ctl_reply(&d->ctl, rq->slot, "%-32s %-9s %-9s %s\n", pbd_namespec(p, nm, sizeof(nm)),
                      inuse ? "in use" : "avail", p->autostart ? "auto" : "manual", prio);
    }
    free(rows);
    snprintf(rq->final, rq->flen, "OK\n");
}

/* ---- clear ---- */

enum target_rc pbd_verb_clear_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in)
{
    char nm[160];
    int rc = 0;

    pbd_namespec(in->prog, nm, sizeof(nm));
    if (in->out_log != NULL)
        rc = pbd_log_clear(in->out_log);
    if (rc == 0 && in->err_log != NULL)
        rc = pbd_log_clear(in->err_log);
    if (rc < 0) {
        pbd_ctl_reply(&d->ctl, rq->slot, "%s: ERROR (failed: %s)\n", nm, strerror(-rc));
        return TARGET_ERROR;
    }
    pbd_ctl_reply(&d->ctl, rq->slot, "%s: cleared\n", nm);
    return TARGET_OK;
}

/* ---- look-ups for the CLI ---- */

void pbd_verb_logfile(struct pbd_daemon *d, struct req *rq)
{
    struct pbd_inst *in = NULL;
    int named = 0;

    if (pbd_verb_select(d, rq->argv[1], &in, 1, &named) != 1 || !named) {
        snprintf(rq->final, rq->flen, "ERR no such process '%s'\n", rq->argv[1]);
        return;
    }
    if (in->out_log != NULL && pbd_log_path(in->out_log) != NULL)
        pbd_ctl_reply(&d->ctl, rq->slot, "stdout %s\n", pbd_log_path(in->out_log));
    if (in->err_log != NULL && pbd_log_path(in->err_log) != NULL)
        pbd_ctl_reply(&d->ctl, rq->slot, "stderr %s\n", pbd_log_path(in->err_log));
    snprintf(rq->final, rq->flen, "OK\n");
}

void pbd_verb_mainlog(struct pbd_daemon *d, struct req *rq)
{
    const char *path = pbd_mainlog_path(d);

    if (path == NULL) {
        snprintf(rq->final, rq->flen,
                 "ERR no log file (procbusd logs to stderr; set [supervisord] logfile)\n");
        return;
    }
    pbd_ctl_reply(&d->ctl, rq->slot, "%s\n", path);
    snprintf(rq->final, rq->flen, "OK\n");
}

void pbd_verb_names(struct pbd_daemon *d, struct req *rq)
{
    for (size_t i = 0; i < d->n_inst; i++)
        if (!d->inst[i]->removing)
            pbd_ctl_reply(&d->ctl, rq->slot, "%s %s\n", d->inst[i]->prog->group,
                          d->inst[i]->prog->name);
    snprintf(rq->final, rq->flen, "OK\n");
}
