/* config_daemon.c - [procbusd], and supervisord's sections (ignored, but for environment). */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>

/* The keys of one section, in file order, through the key table; unknown keys are warned about
 * (warn_unknown) or skipped. 0 or L->rc. */
static int load_section(struct loader *L, const struct section *S, enum pbd_config_section section,
                        int warn_unknown, void *base)
{
    struct xctx x = {.here = L->files[S->file].here};
    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        const struct pbd_config_key *k = pbd_config_key_find(section, kv->key);
        struct loc at = {L->files[S->file].path, kv->line, S->name, kv->key};
        int r;
        if (!k) {
            if (warn_unknown)
                pbd_cfg_warn(L, &at, "unknown key, ignored");
            continue;
        }
        r = pbd_cfg_apply(L, k, &x, kv->val, &at, 1, base);
        if (r)
            return r;
    }
    return 0;
}

int pbd_cfg_load_daemon(struct loader *L, const struct section *S, struct pbd_daemon_conf *d)
{
    return load_section(L, S, PBD_SECTION_DAEMON, 1, d);
}

/* [supervisord] environment= applies to every program (and to ENV_X), as in supervisord; the
 * section's other keys are supervisord's own (the section is warned about as a whole). */
int pbd_cfg_load_supervisord(struct loader *L, const struct section *S)
{
    return load_section(L, S, PBD_SECTION_SUPERVISORD, 0, NULL);
}

int pbd_cfg_is_ignored_section(const char *name)
{
    static const char *const exact[] = {"supervisord", "supervisorctl", "unix_http_server",
                                        "inet_http_server", NULL};
    static const char *const prefix[] = {
        "rpcinterface:",     "ctlplugin:",        "group:", "eventlistener:", "fcgi-program:",
        "unix_http_server:", "inet_http_server:", NULL};
    for (const char *const *e = exact; *e; e++)
        if (!strcmp(name, *e))
            return 1;
    for (const char *const *pf = prefix; *pf; pf++)
        if (!strncmp(name, *pf, strlen(*pf)))
            return 1;
    return 0;
}
