/* reexec_par.c - supervisord parity's state across an upgrade in place (parity.h, reexec.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parity.h"
#include "rxbuf.h"

#define PAR_MAGIC 0x31524150u /* "PAR1": this layout */

/* A program of the configuration without an instance: its group was removed with `remove`
 * (until `update` or `add`). */
static int removed(const struct pbd_daemon *d, const struct pbd_program *p)
{
    for (size_t i = 0; i < d->n_inst; i++)
        if (!d->inst[i]->removing && !strcmp(d->inst[i]->prog->name, p->name))
            return 0;
    return 1;
}

void pbd_par_save(const struct pbd_daemon *d, struct pbd_rxbuf *b)
{
    size_t n = 0;

    pbd_rx_u64(b, PAR_MAGIC);
    for (size_t i = 0; i < d->cfg.n_progs; i++)
        n += removed(d, &d->cfg.progs[i]);
    pbd_rx_u64(b, n);
    for (size_t i = 0; i < d->cfg.n_progs; i++)
        if (removed(d, &d->cfg.progs[i]))
            pbd_rx_str(b, d->cfg.progs[i].name);
    pbd_evl_save(d, b);
    pbd_fcgi_save(d, b);
    for (size_t k = 0; k < d->n_inst; k++) {
        const struct pbd_inst *in = d->inst[k];
        const struct pbd_par_inst *x = in->par;
        pbd_rx_u64(b, (uint64_t)(int64_t)(x != NULL ? x->stdin_w : -1));
        for (int w = 0; w < 2; w++)
            pbd_rx_str(b, x != NULL ? x->auto_path[w] : NULL);
        for (int w = 0; w < 2; w++) {
            const struct pbd_capture *c = x != NULL ? &x->capture[w] : NULL;
            pbd_rx_u64(b, c != NULL && c->on);
            pbd_rx_bytes(b, c != NULL ? c->pend : NULL, c != NULL ? c->pend_len : 0);
            pbd_rx_bytes(b, c != NULL ? c->cap : NULL, c != NULL ? c->cap_len : 0);
        }
        pbd_evl_inst_save(in, b);
    }
}

void pbd_par_keep(const struct pbd_daemon *d, int keep)
{
    for (size_t k = 0; k < d->n_inst; k++) {
        const struct pbd_par_inst *x = d->inst[k]->par;
        if (x != NULL && x->stdin_w >= 0)
            fcntl(x->stdin_w, F_SETFD, keep ? 0 : FD_CLOEXEC);
    }
    pbd_fcgi_keep(d, keep);
}

int pbd_par_restore_daemon(struct pbd_daemon *d, struct pbd_rxrd *r, char ***removed_out,
                           size_t *n_removed)
{
    uint64_t n;
    char **names;
    int rc;

    *removed_out = NULL;
    *n_removed = 0;
    if (pbd_rx_get_u64(r) != PAR_MAGIC)
        return r->err != 0 ? r->err : -EPROTO;
    n = pbd_rx_get_u64(r);
    if (r->err != 0 || n > r->len)
        return r->err != 0 ? r->err : -EPROTO;
    names = calloc((size_t)n + 1, sizeof(*names));
    if (names == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < n && r->err == 0; i++)
        names[i] = pbd_rx_get_str(r);
    *removed_out = names;
    *n_removed = (size_t)n;
    rc = pbd_evl_restore(d, r);
    if (rc == 0)
        rc = pbd_fcgi_restore(d, r);
    return rc;
}

int pbd_par_restore_inst(struct pbd_daemon *d, struct pbd_rxrd *r, struct pbd_inst *in)
{
    int stdin_w = (int)(int64_t)pbd_rx_get_u64(r), again = 0;
    char *paths[2];
    struct pbd_par_inst *x = in != NULL ? pbd_par_inst_of(in) : NULL;

    if (r->err == 0 && stdin_w >= 0) {
        fcntl(stdin_w, F_SETFD, FD_CLOEXEC);
        if (x != NULL && pbd_state_has_process(in->state) && x->stdin_w < 0)
            x->stdin_w = stdin_w; /* (a listener's is non-blocking already) */
        else
            close(stdin_w);
    }
    for (int w = 0; w < 2; w++)
        paths[w] = pbd_rx_get_str(r);
    if (x != NULL && r->err == 0) { /* AUTO logs: the same files */
        if (pbd_log_is_auto(in->prog->out.path))
            again |= pbd_autolog_reuse(d, in, 0, paths[0]);
        if (pbd_log_is_auto(in->prog->err.path) && !in->prog->redirect_stderr)
            again |= pbd_autolog_reuse(d, in, 1, paths[1]);
        if (again)
            pbd_inst_open_logs(d, in);
    }
    free(paths[0]);
    free(paths[1]);
    for (int w = 0; w < 2; w++) {
        struct pbd_capture *c = x != NULL ? &x->capture[w] : NULL;
        int on = (int)pbd_rx_get_u64(r);
        size_t pend_len, cap_len;
        char *pend = pbd_rx_get_bytes(r, &pend_len), *cap = pbd_rx_get_bytes(r, &cap_len);
        if (c == NULL || r->err != 0) {
            free(pend);
            free(cap);
            continue;
        }
        c->on = on != 0;
        free(c->pend);
        c->pend = pend;
        c->pend_len = pend_len;
        free(c->cap);
        c->cap = cap;
        c->cap_len = cap_len;
    }
    pbd_evl_inst_restore(x != NULL ? in : NULL, r);
    return r->err;
}
