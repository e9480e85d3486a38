/* config_daemon.c - [procbusd], [supervisord], the http servers, [group:x], and the sections
 * procbusd ignores. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>

/* The keys of one section, in file order, through the key table; unknown keys and the ones
 * procbusd ignores are warned about. 0 or L->rc. */
static int load_section(struct loader *L, const struct section *S, enum pbd_config_section section,
                        void *base)
{
    struct xctx x = {.here = L->files[S->file].here};
    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        const struct pbd_config_key *k = pbd_config_key_find(section, kv->key);
        struct loc at = {L->files[S->file].path, kv->line, S->name, kv->key};
        int r;
        if (!k) {
            pbd_cfg_warn(L, &at, "unknown key, ignored");
            continue;
        }
        if (k->type == PBD_KT_IGNORED) {
            pbd_cfg_warn(L, &at, "supervisord key ignored by procbusd: %s", k->doc);
            continue;
        }
        r = pbd_cfg_apply(L, k, &x, kv->val, &at, 1, base);
        if (r)
            return r;
    }
    return 0;
}

int pbd_cfg_load_daemon(struct loader *L, const struct section *S, enum pbd_config_section sec,
                        struct pbd_daemon_conf *d)
{
    return load_section(L, S, sec, d);
}

int pbd_cfg_is_ignored_section(const char *name)
{
    static const char *const exact[] = {"supervisorctl", NULL};
    static const char *const prefix[] = {"rpcinterface:", "ctlplugin:", NULL};
    for (const char *const *e = exact; *e; e++)
        if (!strcmp(name, *e))
            return 1;
    for (const char *const *pf = prefix; *pf; pf++)
        if (!strncmp(name, *pf, strlen(*pf)))
            return 1;
    return 0;
}

int pbd_cfg_prog_section(const char *name, size_t *prefix)
{
    static const struct {
        const char *prefix;
        enum pbd_prog_kind kind;
    } kinds[] = {{"program:", PBD_KIND_PROGRAM},
                 {"eventlistener:", PBD_KIND_EVENTLISTENER},
                 {"fcgi-program:", PBD_KIND_FCGI}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (!strncmp(name, kinds[i].prefix, n)) {
            *prefix = n;
            return (int)kinds[i].kind;
        }
    }
    return -1;
}

/* The section that defines program `name` ([program:name] or [fcgi-program:name]); -1 if none,
 * -2 if both do. */
static long program_section(const struct loader *L, const char *name)
{
    long found = -1;
    for (size_t si = 0; si < L->n_secs; si++) {
        const char *s = L->secs[si].name;
        const char *rest = !strncmp(s, "program:", 8)         ? s + 8
                           : !strncmp(s, "fcgi-program:", 13) ? s + 13
                                                              : NULL;
        if (!rest)
            continue;
        while (isspace((unsigned char)*rest))
            rest++;
        if (strncmp(rest, name, strlen(name)) || *lskip(rest + strlen(name)))
            continue;
        if (found >= 0)
            return -2;
        found = (long)si;
    }
    return found;
}

int pbd_cfg_load_groups(struct loader *L, struct pbd_config *cfg)
{
    size_t cap = 0;
    for (size_t si = 0; si < L->n_secs; si++) {
        const struct section *S = &L->secs[si];
        struct loc at = {L->files[S->file].path, S->line, S->name, NULL};
        char why[512];
        struct pbd_group *g, *ng;
        const char *name;
        int r;

        if (strncmp(S->name, "group:", 6))
            continue;
        name = lskip(S->name + 6);
        if (pbd_cfg_check_name(name, "group name", why, sizeof(why)) < 0)
            return pbd_cfg_fail(L, -EINVAL, &at, "%s", why);
        for (size_t i = 0; i < cfg->n_groups; i++)
            if (!strcmp(cfg->groups[i].name, name))
                return pbd_cfg_fail(L, -EINVAL, &at, "duplicate group (first at %s:%d)",
                                    cfg->groups[i].source_file, cfg->groups[i].source_line);
        ng = grow(cfg->groups, &cap, cfg->n_groups + 1, sizeof(*cfg->groups));
        if (!ng)
            return pbd_cfg_oom(L);
        cfg->groups = ng;
        g = &cfg->groups[cfg->n_groups++];
        memset(g, 0, sizeof(*g));
        snprintf(g->name, sizeof(g->name), "%s", name);
        g->source_line = S->line;
        g->source_file = strdup(at.file);
        if (!g->source_file)
            return pbd_cfg_oom(L);
        r = pbd_cfg_defaults(L, PBD_SECTION_GROUP, g);
        if (!r)
            r = load_section(L, S, PBD_SECTION_GROUP, g);
        if (r)
            return r;
        if (!g->programs) {
            at.key = "programs";
            return pbd_cfg_fail(L, -EINVAL, &at, "missing: a [group:x] needs programs = a,b");
        }
        for (size_t p = 0; g->programs[p]; p++) {
            long ps = program_section(L, g->programs[p]);
            at.key = "programs";
            if (ps == -1)
                return pbd_cfg_fail(L, -EINVAL, &at, "unknown program or fcgi-program '%s'",
                                    g->programs[p]);
            if (ps == -2)
                return pbd_cfg_fail(L, -EINVAL, &at,
                                    "'%s' is ambiguous (a program and an fcgi-program)",
                                    g->programs[p]);
            for (size_t o = 0; o + 1 < cfg->n_groups; o++)
                for (size_t q = 0; cfg->groups[o].programs[q]; q++)
                    if (!strcmp(cfg->groups[o].programs[q], g->programs[p]))
                        return pbd_cfg_fail(
                            L, -EINVAL, &at,
                            "'%s' is in [group:%s] already (procbusd names every process once; "
                            "supervisord would run it twice)",
                            g->programs[p], cfg->groups[o].name);
        }
    }
    return 0;
}
