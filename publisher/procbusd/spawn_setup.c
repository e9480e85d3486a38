/* spawn_setup.c - what a program inherits: its environment, credentials, descriptors, limits. */
#define _GNU_SOURCE
#include "spawn_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* ---- credentials ---- */

int pbd_creds_resolve(const struct pbd_program *prog, struct pbd_creds *c, char *why, size_t whylen)
{
    int rc, n = 64;

    memset(c, 0, sizeof(*c));
    if (prog->user == NULL)
        return 0;
    rc = pbd_user_lookup(prog->user, &c->user);
    if (rc < 0) {
        snprintf(why, whylen, "user %s: %s", prog->user,
                 rc == -ENOENT ? "no such user" : strerror(-rc));
        return rc;
    }
    c->has_user = 1;
    if (geteuid() != 0)
        return 0; /* the configuration check allowed only procbusd's own user */
    c->change = 1;
    for (;;) {
        gid_t *g = realloc(c->groups, (size_t)n * sizeof(*g));
        int want = n;
        if (g == NULL) {
            snprintf(why, whylen, "user %s: out of memory", prog->user);
            pbd_creds_free(c);
            return -ENOMEM;
        }
        c->groups = g;
        if (getgrouplist(c->user.name, c->user.gid, g, &want) >= 0) {
            c->n_groups = want;
            return 0;
        }
        if (want <= n || want > 65536) { /* it failed for another reason: primary group only */
            g[0] = c->user.gid;
            c->n_groups = 1;
            return 0;
        }
        n = want;
    }
}

void pbd_creds_free(struct pbd_creds *c)
{
    free(c->groups);
    c->groups = NULL;
    c->n_groups = 0;
}

int pbd_creds_apply(const struct pbd_creds *c, const char **step)
{
    if (!c->change)
        return 0;
    /* raw syscalls: glibc's wrappers may try to sync other threads, and only this one exists */
    *step = "setgroups";
    if (syscall(SYS_setgroups, (size_t)c->n_groups, c->groups) < 0)
        return -1;
    *step = "setgid";
    if (syscall(SYS_setresgid, c->user.gid, c->user.gid, c->user.gid) < 0)
        return -1;
    *step = "setuid";
    if (syscall(SYS_setresuid, c->user.uid, c->user.uid, c->user.uid) < 0)
        return -1;
    return 0;
}

/* ---- environment ---- */

struct envb {
    char **v;
    size_t n, cap;
    char **owned; /* strings made here, freed with the vector */
    size_t n_owned;
    int oom;
};

/* Set entry "KEY=..." (replacing KEY in place when present). */
static void env_put(struct envb *b, char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t klen = eq != NULL ? (size_t)(eq - entry) + 1 : strlen(entry);

    for (size_t i = 0; i < b->n; i++) {
        if (strncmp(b->v[i], entry, klen) == 0 &&
            (b->v[i][klen - 1] == '=' || b->v[i][klen - 1] == '\0')) {
            b->v[i] = entry;
            return;
        }
    }
    if (b->n + 1 >= b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        char **nv = realloc(b->v, nc * sizeof(*nv));
        if (nv == NULL) {
            b->oom = 1;
            return;
        }
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = entry;
    b->v[b->n] = NULL;
}

/* Make "KEY=VALUE" (owned by the vector) and set it. */
static void env_set(struct envb *b, const char *key, const char *val)
{
    char *e = NULL, **no;

    if (b->oom)
        return;
    no = realloc(b->owned, (b->n_owned + 2) * sizeof(*no));
    if (no == NULL || asprintf(&e, "%s=%s", key, val) < 0) {
        if (no != NULL)
            b->owned = no;
        b->oom = 1;
        return;
    }
    b->owned = no;
    b->owned[b->n_owned++] = e;
    b->owned[b->n_owned] = NULL;
    env_put(b, e);
}

char **pbd_env_build(const struct pbd_program *prog, const struct pbd_creds *c)
{
    struct envb b = {0};
    char **out;
    size_t i;

    if (prog->clean_env)
        env_put(&b, (char *)PBD_CLEAN_PATH);
    else
        for (i = 0; environ[i] != NULL && !b.oom; i++)
            env_put(&b, environ[i]);
    if (c->has_user && c->user.uid != geteuid()) {
        env_set(&b, "HOME", c->user.home);
        env_set(&b, "USER", c->user.name);
        env_set(&b, "LOGNAME", c->user.name);
        env_set(&b, "SHELL", c->user.shell);
    }
    /* supervisord's, before environment= (which may replace them, as in supervisord) */
    env_set(&b, "SUPERVISOR_ENABLED", "1");
    if (prog->serverurl != NULL)
        env_set(&b, "SUPERVISOR_SERVER_URL", prog->serverurl);
    env_set(&b, "SUPERVISOR_PROCESS_NAME", prog->name);
    env_set(&b, "SUPERVISOR_GROUP_NAME", prog->group);
    for (i = 0; prog->env != NULL && prog->env[i] != NULL && !b.oom; i++)
        env_put(&b, prog->env[i]);
    env_set(&b, "PROCBUS_PROCESS_NAME", prog->name);
    env_set(&b, "PROCBUS_GROUP_NAME", prog->group);
    /* one block: the vector, then the pointer to the owned strings behind its NULL */
    out = b.oom ? NULL : calloc(b.n + 2, sizeof(*out));
    if (out != NULL) {
        memcpy(out, b.v, b.n * sizeof(*out));
        out[b.n + 1] = (char *)b.owned;
        b.owned = NULL;
    }
    for (i = 0; b.owned != NULL && i < b.n_owned; i++)
        free(b.owned[i]);
    free(b.owned);
    free(b.v);
    return out;
}

void pbd_env_free(char **env)
{
    size_t n = 0;
    char **owned;

    if (env == NULL)
        return;
    while (env[n] != NULL)
        n++;
    owned = (char **)env[n + 1];
    for (size_t i = 0; owned != NULL && owned[i] != NULL; i++)
        free(owned[i]);
    free(owned);
    free(env);
}

/* ---- descriptors and limits ---- */

void pbd_child_fds_and_limits(unsigned long long nofile)
{
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0) {
        struct rlimit rl;
        long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20 ? (long)rl.rlim_cur
                                                                                : 1L << 20;
        for (long fd = 3; fd < max; fd++)
            (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }
    if (nofile != PBD_NOFILE_KEEP && nofile != 0) { /* 0: not set (a zeroed struct) */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > nofile) {
            rl.rlim_cur = (rlim_t)nofile;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
}

int pbd_nofile_raise(unsigned long long *programs)
{
    struct rlimit rl;

    *programs = PBD_NOFILE_KEEP;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= rl.rlim_max)
        return 0;
    *programs = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        *programs = PBD_NOFILE_KEEP;
        return -errno;
    }
    return 0;
}

long long pbd_nofile_current(void)
{
    struct rlimit rl;

    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long long)rl.rlim_cur : -1;
}

void pbd_spawn_hint(char *why, size_t whylen, int err)
{
    size_t used = strlen(why);

    if (err == EMFILE && used < whylen)
        snprintf(why + used, whylen - used,
                 " (procbusd's open-file limit is %lld: raise the hard RLIMIT_NOFILE, e.g. "
                 "LimitNOFILE= in procbusd.service)",
                 pbd_nofile_current());
    else if (err == ENFILE && used < whylen)
        snprintf(why + used, whylen - used, " (the system-wide open-file limit, fs.file-max)");
}
