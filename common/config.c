/* config.c - the configuration API: load (sections to structs), free, find, copy, compare. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <unistd.h>

extern char **environ;

/* supervisord's fallback SUPERVISOR_SERVER_URL: its unix socket, else its inet one. NULL with
 * *oom 0 when neither is configured. */
static char *default_serverurl(const struct pbd_daemon_conf *d, int *oom)
{
    char *url = NULL, *path;
    *oom = 0;
    if (d->sv_unix_file) {
        path = pbd_cfg_normpath(d->sv_unix_file);
        if (!path || asprintf(&url, "unix://%s", path) < 0)
            url = NULL;
        free(path);
    } else if (d->sv_inet_port) {
        const char *colon = strrchr(d->sv_inet_port, ':');
        const char *host = colon && colon > d->sv_inet_port ? d->sv_inet_port : "localhost";
        int hlen = colon && colon > d->sv_inet_port ? (int)(colon - d->sv_inet_port) : 9;
        if (asprintf(&url, "http://%.*s:%s", hlen, host, colon ? colon + 1 : d->sv_inet_port) < 0)
            url = NULL;
    } else {
        return NULL;
    }
    *oom = url == NULL;
    return url;
}

/* The sections read into cfg: the daemon's first ([procbusd], [supervisord], the http servers),
 * then [group:x], then the programs, then the checks across programs. 0 or L->rc. */
static int build(struct loader *L, struct pbd_config *cfg)
{
    struct progs_acc acc = {0};
    int r = pbd_cfg_program_defaults(L, &acc);

    for (size_t si = 0; si < L->n_secs && !r; si++) {
        const struct section *S = &L->secs[si];
        struct loc at = {L->files[S->file].path, S->line, S->name, NULL};
        size_t plen;
        if (!strcmp(S->name, "include")) {
            continue;
        } else if (!strcmp(S->name, "procbusd")) {
            r = pbd_cfg_load_daemon(L, S, PBD_SECTION_DAEMON, &cfg->daemon);
        } else if (!strcmp(S->name, "supervisord")) {
            cfg->daemon.sv_section = 1;
            r = pbd_cfg_load_daemon(L, S, PBD_SECTION_SUPERVISORD, &cfg->daemon);
        } else if (!strncmp(S->name, "unix_http_server", 16) &&
                   (!S->name[16] || S->name[16] == ':')) {
            r = pbd_cfg_load_daemon(L, S, PBD_SECTION_UNIX_HTTP, &cfg->daemon);
        } else if (!strncmp(S->name, "inet_http_server", 16) &&
                   (!S->name[16] || S->name[16] == ':')) {
            r = pbd_cfg_load_daemon(L, S, PBD_SECTION_INET_HTTP, &cfg->daemon);
        } else if (!strncmp(S->name, "group:", 6)) {
            continue; /* pbd_cfg_load_groups */
        } else if (pbd_cfg_prog_section(S->name, &plen) >= 0) {
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
            pbd_cfg_warn(L, &at, "section ignored by procbusd");
        } else {
            r = pbd_cfg_fail(L, -EINVAL, &at,
                             "unknown section (procbusd reads [procbusd], supervisord's "
                             "[supervisord], [program:NAME], [group:NAME], [eventlistener:NAME], "
                             "[fcgi-program:NAME], [include] and the http servers, and ignores "
                             "[supervisorctl], [rpcinterface:x], [ctlplugin:x])");
        }
    }
    if (!r)
        r = pbd_cfg_load_groups(L, cfg);
    for (size_t si = 0; si < L->n_secs && !r; si++) {
        size_t plen;
        if (pbd_cfg_prog_section(L->secs[si].name, &plen) >= 0)
            r = pbd_cfg_load_program(L, si, cfg, &acc);
    }
    for (size_t i = 0; i < cfg->n_progs && !r; i++) {
        int oom;
        if (cfg->progs[i].serverurl)
            continue;
        cfg->progs[i].serverurl = default_serverurl(&cfg->daemon, &oom);
        if (oom)
            r = pbd_cfg_oom(L);
    }
    if (!r)
        r = pbd_cfg_check_programs(L, cfg, acc.meta);
    free(acc.meta);
    free(acc.defaults.out.path); /* the template's AUTO defaults (instances have copies) */
    free(acc.defaults.err.path);
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
    if (!r)
        r = pbd_cfg_defaults(&L, PBD_SECTION_SUPERVISORD, &cfg->daemon);
    cfg->daemon.umask = (mode_t)-1; /* [supervisord] umask: keep procbusd's unless given */
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
    free(p->serverurl);
    free(p->fcgi_socket);
    free(p->fcgi_socket_owner);
    free(p->source_file);
    memset(p, 0, sizeof(*p));
}

int pbd_log_is_auto(const char *path)
{
    return path != NULL && strcmp(path, PBD_LOG_AUTO) == 0;
}

const char *pbd_namespec(const struct pbd_program *p, char *buf, size_t len)
{
    if (!strcmp(p->group, p->name))
        snprintf(buf, len, "%s", p->name);
    else
        snprintf(buf, len, "%s:%s", p->group, p->name);
    return buf;
}

void pbd_config_free(struct pbd_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_progs; i++)
        pbd_program_clear(&cfg->progs[i]);
    free(cfg->progs);
    for (size_t i = 0; i < cfg->n_groups; i++) {
        pbd_free_argv(cfg->groups[i].programs);
        free(cfg->groups[i].source_file);
    }
    free(cfg->groups);
    free(cfg->daemon.segment);
    free(cfg->daemon.socket);
    free(cfg->daemon.logfile);
    free(cfg->daemon.pidfile);
    free(cfg->daemon.childlogdir);
    free(cfg->daemon.identifier);
    free(cfg->daemon.user);
    free(cfg->daemon.directory);
    free(cfg->daemon.sv_unix_file);
    free(cfg->daemon.sv_inet_port);
    free(cfg->path);
    pbd_free_argv(cfg->files);
    memset(cfg, 0, sizeof(*cfg));
}

const struct pbd_program *pbd_config_find(const struct pbd_config *cfg, const char *name)
{
    const char *colon;
    if (!cfg || !name)
        return NULL;
    colon = strchr(name, ':');
    for (size_t i = 0; i < cfg->n_progs; i++) {
        const struct pbd_program *p = &cfg->progs[i];
        if (!colon && !strcmp(p->name, name))
            return p;
        if (colon && !strcmp(p->name, colon + 1) && strlen(p->group) == (size_t)(colon - name) &&
            !strncmp(p->group, name, (size_t)(colon - name)))
            return p;
    }
    return NULL;
}

int pbd_program_copy(struct pbd_program *dst, const struct pbd_program *src)
{
    *dst = *src;
    dst->argv = NULL;
    dst->command = dst->directory = dst->user = dst->ready_log = dst->source_file = NULL;
    dst->serverurl = dst->fcgi_socket = dst->fcgi_socket_owner = NULL;
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
    DUP(serverurl);
    DUP(fcgi_socket);
    DUP(fcgi_socket_owner);
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
    return str_eq(a->path, b->path) && a->maxbytes == b->maxbytes && a->backups == b->backups &&
           a->events == b->events && a->capture_maxbytes == b->capture_maxbytes;
}

int pbd_program_same(const struct pbd_program *a, const struct pbd_program *b)
{
    return !strcmp(a->name, b->name) && !strcmp(a->group, b->group) &&
           a->process_num == b->process_num && vec_eq(a->argv, b->argv) && a->shell == b->shell &&
           str_eq(a->command, b->command) && str_eq(a->directory, b->directory) &&
           env_eq(a->env, b->env) && a->clean_env == b->clean_env && str_eq(a->user, b->user) &&
           a->umask == b->umask && a->redirect_stderr == b->redirect_stderr &&
           log_eq(&a->out, &b->out) && log_eq(&a->err, &b->err) && a->ready_fd == b->ready_fd &&
           str_eq(a->ready_log, b->ready_log) && !strcmp(a->program, b->program) &&
           a->kind == b->kind && str_eq(a->serverurl, b->serverurl) &&
           a->evl_events == b->evl_events && a->evl_buffer_size == b->evl_buffer_size &&
           str_eq(a->fcgi_socket, b->fcgi_socket) &&
           str_eq(a->fcgi_socket_owner, b->fcgi_socket_owner) &&
           a->fcgi_socket_mode == b->fcgi_socket_mode &&
           a->fcgi_socket_backlog == b->fcgi_socket_backlog;
}

static int deps_eq(const struct pbd_program *a, const struct pbd_program *b)
{
    if (a->n_deps != b->n_deps)
        return 0;
    for (int i = 0; i < a->n_deps; i++)
        if (strcmp(a->deps[i].name, b->deps[i].name) || a->deps[i].cond != b->deps[i].cond)
            return 0;
    return 1;
}

int pbd_program_identical(const struct pbd_program *a, const struct pbd_program *b)
{
    return pbd_program_same(a, b) && a->priority == b->priority &&
           a->group_priority == b->group_priority && a->autostart == b->autostart &&
           a->autorestart == b->autorestart && a->n_exitcodes == b->n_exitcodes &&
           !memcmp(a->exitcodes, b->exitcodes, sizeof(a->exitcodes[0]) * (size_t)a->n_exitcodes) &&
           a->startsecs == b->startsecs && a->startretries == b->startretries &&
           a->stopsignal == b->stopsignal && a->stopwaitsecs == b->stopwaitsecs &&
           a->stopasgroup == b->stopasgroup && a->killasgroup == b->killasgroup && deps_eq(a, b) &&
           a->backoff == b->backoff && a->backoff_max == b->backoff_max &&
           a->startlimit_burst == b->startlimit_burst &&
           a->startlimit_interval == b->startlimit_interval && a->numprocs == b->numprocs;
}
