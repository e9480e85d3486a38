/* config.c - the configuration API: load (sections to structs), free, find, copy, compare. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>

extern char **environ;

/* The sections read into cfg: [procbusd] and supervisord's first, then the programs, then the
 * checks across programs. 0 or L->rc. */
static int build(struct loader *L, struct pbd_config *cfg)
{
    struct progs_acc acc = {0};
    int r = pbd_cfg_program_defaults(L, &acc);

    for (size_t si = 0; si < L->n_secs && !r; si++) {
        const struct section *S = &L->secs[si];
        struct loc at = {L->files[S->file].path, S->line, S->name, NULL};
        if (!strcmp(S->name, "include"))
            continue;
        if (!strcmp(S->name, "procbusd")) {
            r = pbd_cfg_load_daemon(L, S, &cfg->daemon);
        } else if (!strncmp(S->name, "program:", 8)) {
            for (size_t sj = 0; sj < si; sj++) {
                if (!strcmp(L->secs[sj].name, S->name)) {
                    r = pbd_cfg_fail(
                        L, -EINVAL, &at,
                        "duplicate section (first at %s:%d; supervisord would merge them, "
                        "procbusd wants one)",
                        L->files[L->secs[sj].file].path, L->secs[sj].line);
                    break;
                }
            }
        } else if (pbd_cfg_is_ignored_section(S->name)) {
            int has_env = 0;
            if (!strcmp(S->name, "supervisord")) {
                for (size_t i = 0; i < S->n_kv; i++)
                    has_env |= !strcmp(S->kv[i].key, "environment");
                r = pbd_cfg_load_supervisord(L, S);
            }
            if (r)
                break;
            if (has_env)
                pbd_cfg_warn(L, &at,
                             "section ignored by procbusd, except environment (added to every "
                             "program)");
            else
                pbd_cfg_warn(L, &at, "section ignored by procbusd");
        } else {
            r = pbd_cfg_fail(
                L, -EINVAL, &at,
                "unknown section (procbusd reads [procbusd], [program:NAME] and [include], "
                "and ignores supervisord's own)");
        }
    }
    for (size_t si = 0; si < L->n_secs && !r; si++)
        if (!strncmp(L->secs[si].name, "program:", 8))
            r = pbd_cfg_load_program(L, si, cfg, &acc);
    if (!r)
        r = pbd_cfg_check_programs(L, cfg, acc.meta);
    free(acc.meta);
    return r;
}

static char **vec_dup(char *const *v)
{
    size_t n = 0;
    char **out;
    if (!v)
        return NULL;
    while (v[n])
        n++;
    out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            pbd_free_argv(out);
            return NULL;
        }
    }
    return out;
}

int pbd_config_load(struct pbd_config *cfg, const char *path, char **env, char *err, size_t errlen,
                    void (*warn)(void *arg, const char *msg), void *arg)
{
    struct loader L;
    struct utsname u;
    int r;

    memset(&L, 0, sizeof(L));
    memset(cfg, 0, sizeof(*cfg));
    if (err && errlen)
        err[0] = '\0';
    L.env = env ? env : environ;
    L.err = err;
    L.errlen = errlen;
    L.warn = warn;
    L.warn_arg = arg;
    L.cur_sec = -1;
    L.last_kv = -1;
    if (uname(&u) == 0)
        snprintf(L.host, sizeof(L.host), "%s", u.nodename);

    r = pbd_cfg_defaults(&L, PBD_SECTION_DAEMON, &cfg->daemon);
    if (r) {
        /* a bad default in the key table: the table tests catch it */
    } else if (!path || !*path) {
        r = pbd_cfg_fail(&L, -EINVAL, NULL, "no configuration file given");
    } else {
        r = pbd_cfg_read_file(&L, path, NULL, 0);
        if (!r)
            r = build(&L, cfg);
    }
    if (!r) {
        cfg->path = strdup(path);
        cfg->files = calloc(L.n_files + 1, sizeof(*cfg->files));
        if (!cfg->path || !cfg->files)
            r = pbd_cfg_oom(&L);
        for (size_t i = 0; !r && i < L.n_files; i++) {
            cfg->files[i] = strdup(L.files[i].path);
            if (!cfg->files[i])
                r = pbd_cfg_oom(&L);
            cfg->n_files = i + 1;
        }
    }
    pbd_cfg_loader_free(&L);
    if (r)
        pbd_config_free(cfg);
    return r;
}

void pbd_program_clear(struct pbd_program *p)
{
    if (!p)
        return;
    pbd_free_argv(p->argv);
    free(p->command);
    free(p->directory);
    pbd_free_argv(p->env);
    free(p->user);
    free(p->out.path);
    free(p->err.path);
    free(p->ready_log);
    free(p->source_file);
    memset(p, 0, sizeof(*p));
}

void pbd_config_free(struct pbd_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_progs; i++)
        pbd_program_clear(&cfg->progs[i]);
    free(cfg->progs);
    free(cfg->daemon.segment);
    free(cfg->daemon.socket);
    free(cfg->path);
    pbd_free_argv(cfg->files);
    memset(cfg, 0, sizeof(*cfg));
}

const struct pbd_program *pbd_config_find(const struct pbd_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_progs; i++)
        if (!strcmp(cfg->progs[i].name, name))
            return &cfg->progs[i];
    return NULL;
}

int pbd_program_copy(struct pbd_program *dst, const struct pbd_program *src)
{
    *dst = *src;
    dst->argv = NULL;
    dst->command = dst->directory = dst->user = dst->ready_log = dst->source_file = NULL;
    dst->env = NULL;
    dst->out.path = dst->err.path = NULL;
#define DUP(f)                                    \
    do {                                          \
        if (src->f && !(dst->f = strdup(src->f))) \
            goto nomem;                           \
    } while (0)
    DUP(command);
    DUP(directory);
    DUP(user);
    DUP(ready_log);
    DUP(source_file);
    DUP(out.path);
    DUP(err.path);
#undef DUP
    if (src->argv && !(dst->argv = vec_dup(src->argv)))
        goto nomem;
    if (src->env && !(dst->env = vec_dup(src->env)))
        goto nomem;
    return 0;
nomem:
    pbd_program_clear(dst);
    return -ENOMEM;
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static int vec_eq(char *const *a, char *const *b)
{
    if (!a || !b)
        return (!a || !*a) && (!b || !*b);
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b))
            return 0;
    return !*a && !*b;
}

/* Same entries, in any order (entries are unique by key). */
static int env_eq(char *const *a, char *const *b)
{
    size_t na = 0, nb = 0;
    while (a && a[na])
        na++;
    while (b && b[nb])
        nb++;
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i], b[j]))
            j++;
        if (j == nb)
            return 0;
    }
    return 1;
}

static int log_eq(const struct pbd_logconf *a, const struct pbd_logconf *b)
{
    return str_eq(a->path, b->path) && a->maxbytes == b->maxbytes && a->backups == b->backups;
}

int pbd_program_same(const struct pbd_program *a, const struct pbd_program *b)
{
    return !strcmp(a->name, b->name) && !strcmp(a->group, b->group) &&
           a->process_num == b->process_num && vec_eq(a->argv, b->argv) && a->shell == b->shell &&
           str_eq(a->command, b->command) && str_eq(a->directory, b->directory) &&
           env_eq(a->env, b->env) && a->clean_env == b->clean_env && str_eq(a->user, b->user) &&
           a->umask == b->umask && a->redirect_stderr == b->redirect_stderr &&
           log_eq(&a->out, &b->out) && log_eq(&a->err, &b->err) && a->ready_fd == b->ready_fd &&
           str_eq(a->ready_log, b->ready_log);
}
