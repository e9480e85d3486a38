/* hold_glue.c - procbusd's use of its fd holder: start or find it, hand it each run's pipes. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_int.h"
#include "parity.h"
#include "procbus_pub.h"

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s != NULL ? s : "", s != NULL ? strlen(s) + 1 : 1);
}

uint64_t pbd_program_digest(const struct pbd_program *p)
{
    uint64_t h = 14695981039346656037ull, env = 0;
    int i;

    h = fnv_str(h, p->name);
    h = fnv_str(h, p->group);
    h = fnv(h, &p->process_num, sizeof(p->process_num));
    for (i = 0; p->argv != NULL && p->argv[i] != NULL; i++)
        h = fnv_str(h, p->argv[i]);
    h = fnv(h, &p->shell, sizeof(p->shell));
    h = fnv_str(h, p->command);
    h = fnv_str(h, p->directory);
    for (i = 0; p->env != NULL && p->env[i] != NULL; i++) /* a set: order does not matter */
        env += fnv_str(14695981039346656037ull, p->env[i]);
    h = fnv(h, &env, sizeof(env));
    h = fnv(h, &p->clean_env, sizeof(p->clean_env));
    h = fnv_str(h, p->user);
    h = fnv(h, &p->umask, sizeof(p->umask));
    h = fnv(h, &p->redirect_stderr, sizeof(p->redirect_stderr));
    h = fnv_str(h, p->out.path);
    h = fnv(h, &p->out.maxbytes, sizeof(p->out.maxbytes));
    h = fnv(h, &p->out.backups, sizeof(p->out.backups));
    h = fnv_str(h, p->err.path);
    h = fnv(h, &p->err.maxbytes, sizeof(p->err.maxbytes));
    h = fnv(h, &p->err.backups, sizeof(p->err.backups));
    h = fnv(h, &p->ready_fd, sizeof(p->ready_fd));
    h = fnv_str(h, p->ready_log);
    /* supervisord parity's settings (pbd_program_same compares them too) */
    h = fnv(h, &p->out.events, sizeof(p->out.events));
    h = fnv(h, &p->out.capture_maxbytes, sizeof(p->out.capture_maxbytes));
    h = fnv(h, &p->err.events, sizeof(p->err.events));
    h = fnv(h, &p->err.capture_maxbytes, sizeof(p->err.capture_maxbytes));
    h = fnv_str(h, p->program);
    h = fnv(h, &p->kind, sizeof(p->kind));
    h = fnv_str(h, p->serverurl);
    h = fnv(h, &p->evl_events, sizeof(p->evl_events));
    h = fnv(h, &p->evl_buffer_size, sizeof(p->evl_buffer_size));
    h = fnv_str(h, p->fcgi_socket);
    h = fnv_str(h, p->fcgi_socket_owner);
    h = fnv(h, &p->fcgi_socket_mode, sizeof(p->fcgi_socket_mode));
    h = fnv(h, &p->fcgi_socket_backlog, sizeof(p->fcgi_socket_backlog));
    return h;
}

/* What holds entries taken from a predecessor's holder until adoption claims them. */
struct taken {
    struct pbd_hold_entry e;
    int fds[PBD_HOLD_NFDS];
};

static void on_taken(void *arg, const struct pbd_hold_entry *e, int fds[PBD_HOLD_NFDS])
{
    struct pbd_daemon *d = arg;
    struct taken *grown = realloc(d->taken, (d->n_taken + 1) * sizeof(*grown));

    if (grown == NULL) {
        for (int i = 0; i < PBD_HOLD_NFDS; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return;
    }
    d->taken = grown;
    grown[d->n_taken].e = *e;
    memcpy(grown[d->n_taken].fds, fds, sizeof(grown[d->n_taken].fds));
    d->n_taken++;
}

void pbd_holder_start(struct pbd_daemon *d, int take)
{
    char why[512] = "";
    int rc = pbd_holder_connect(&d->holder, procbus_pub_path(d->pub), why, sizeof(why));

    if (rc < 0) {
        pbd_say(d, PBD_L_WARN,
                "fd holder: %s; programs' output will not survive procbusd's death (they would "
                "get SIGPIPE)",
                why);
        return;
    }
    d->w_holder = (struct pbd_watch){.kind = PBD_W_HOLDER};
    pbd_watch_add(d, d->holder.fd, &d->w_holder); /* its death: a new one (pbd_holder_lost) */
    if (rc == 1 && take) {                        /* a predecessor's: what it kept is ours now */
        rc = pbd_holder_take(&d->holder, on_taken, d);
        if (rc < 0)
            pbd_say(d, PBD_L_WARN, "fd holder: taking back the pipes it keeps: %s", strerror(-rc));
        else
            pbd_say(d, PBD_L_INFO, "fd holder: took back the pipes of %d program run(s)", rc);
    }
}

int pbd_holder_claim(struct pbd_daemon *d, const char *name, struct pbd_hold_entry *e,
                     int fds[PBD_HOLD_NFDS])
{
    for (size_t i = 0; i < d->n_taken; i++) {
        struct taken *t = &((struct taken *)d->taken)[i];
        if (t->e.name[0] == '\0' || strcmp(t->e.name, name) != 0)
            continue;
        *e = t->e;
        memcpy(fds, t->fds, sizeof(t->fds));
        t->e.name[0] = '\0'; /* claimed */
        return 1;
    }
    for (int k = 0; k < PBD_HOLD_NFDS; k++)
        fds[k] = -1;
    return 0;
}

void pbd_holder_unclaimed(struct pbd_daemon *d)
{
    for (size_t i = 0; i < d->n_taken; i++) {
        struct taken *t = &((struct taken *)d->taken)[i];
        if (t->e.name[0] == '\0')
            continue;
        pbd_say(d, PBD_L_WARN, "fd holder: %s: no such program any more; its pipes are closed",
                t->e.name);
        pbd_holder_drop(&d->holder, t->e.name);
        for (int k = 0; k < PBD_HOLD_NFDS; k++)
            if (t->fds[k] >= 0)
                close(t->fds[k]);
    }
    free(d->taken);
    d->taken = NULL;
    d->n_taken = 0;
}

/* The file a log of `in` goes to as opened (an AUTO log's own name), else as configured. */
static const char *log_file(const struct pbd_log *log, const struct pbd_logconf *lc)
{
    const char *path = log != NULL ? pbd_log_path(log) : NULL;

    return path != NULL ? path : lc->path;
}

void pbd_inst_hold_put(struct pbd_daemon *d, struct pbd_inst *in)
{
    struct pbd_hold_entry e;
    int fds[PBD_HOLD_NFDS] = {in->sp.out_fd, in->sp.err_fd, in->sp.ready_fd,
                              in->par != NULL ? in->par->stdin_w : -1},
        rc;
    const struct pbd_program *p = in->prog;
    const char *out = log_file(in->out_log, &p->out), *err = log_file(in->err_log, &p->err);

    if (d->holder.fd < 0 || in->sp.pid <= 0 ||
        (fds[0] < 0 && fds[1] < 0 && fds[2] < 0 && fds[3] < 0))
        return;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "%s", p->name);
    e.pid = in->sp.pid;
    e.start_boot = in->start_boot;
    e.digest = pbd_program_digest(p);
    if (out != NULL && strlen(out) < sizeof(e.out_path))
        snprintf(e.out_path, sizeof(e.out_path), "%s", out);
    if (err != NULL && !p->redirect_stderr && strlen(err) < sizeof(e.err_path))
        snprintf(e.err_path, sizeof(e.err_path), "%s", err);
    rc = pbd_holder_put(&d->holder, &e, fds);
    if (rc < 0)
        pbd_say(d, PBD_L_WARN, "%s: fd holder: %s (this run's output does not survive procbusd)",
                p->name, strerror(-rc));
}

void pbd_inst_hold_release(struct pbd_daemon *d, struct pbd_inst *in)
{
    if (in->sp.out_fd < 0 && in->sp.err_fd < 0 && in->sp.ready_fd < 0)
        pbd_holder_drop(&d->holder, in->prog->name);
}

void pbd_holder_lost(struct pbd_daemon *d)
{
    size_t i;

    /* the holder never writes to us: readable means it closed (died, or was killed) */
    pbd_say(d, PBD_L_WARN, "fd holder: it went away; starting another and handing it the pipes");
    pbd_watch_close(d, &d->holder.fd);
    pbd_holder_start(d, 0);
    for (i = 0; i < d->n_inst; i++)
        pbd_inst_hold_put(d, d->inst[i]);
}
