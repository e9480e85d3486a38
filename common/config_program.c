/* config_program.c - the instances of one [program:x] (or [eventlistener:x], [fcgi-program:x]),
 * built from its keys via the key table. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>

struct pbuild {
    struct loader *L;
    const struct section *S;
    const char *file;
    const char *program;
    enum pbd_prog_kind kind;
    const struct pbd_group *group; /* the [group:x] that lists it, or NULL */
    struct pbd_program tmpl;       /* the defaults and the section-stage keys (numprocs ...) */
    int first;                     /* the first instance: warnings are given once per section */
};

/* The section's value of key, or NULL. */
static const struct kv *sec_kv(const struct section *S, const char *key)
{
    for (size_t i = 0; i < S->n_kv; i++)
        if (!strcmp(S->kv[i].key, key))
            return &S->kv[i];
    return NULL;
}

/* Where a key's message points (its own line, else the section header). */
static struct loc key_loc(const struct pbuild *B, const char *key)
{
    const struct kv *kv = sec_kv(B->S, key);
    struct loc at = {B->file, kv ? kv->line : B->S->line, B->S->name, key};
    return at;
}

/* The key table of a kind's own keys ([eventlistener:x], [fcgi-program:x]); -1 for programs. */
static int kind_section(enum pbd_prog_kind kind)
{
    return kind == PBD_KIND_EVENTLISTENER ? PBD_SECTION_EVENTLISTENER
           : kind == PBD_KIND_FCGI        ? PBD_SECTION_FCGI
                                          : -1;
}

const struct pbd_config_key *pbd_cfg_prog_key(enum pbd_prog_kind kind, const char *key)
{
    int ks = kind_section(kind);
    const struct pbd_config_key *k =
        ks >= 0 ? pbd_config_key_find((enum pbd_config_section)ks, key) : NULL;
    return k ? k : pbd_config_key_find(PBD_SECTION_PROGRAM, key);
}

int pbd_cfg_program_defaults(struct loader *L, struct progs_acc *acc)
{
    struct pbd_program *p = &acc->defaults;
    memset(p, 0, sizeof(*p));
    p->umask = (mode_t)-1; /* inherit */
    p->ready_fd = -1;      /* none */
    p->killasgroup = -1;   /* unset: stopasgroup's value */
    return pbd_cfg_defaults(L, PBD_SECTION_PROGRAM, p);
}

/* 1 if argv runs a shell on a command string (sh -c '...', bash -lc '...'): that shell expands
 * what the string holds, so nothing in it is "passed as is". */
static int runs_shell_string(char **argv)
{
    static const char *const shells[] = {"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", NULL};
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (!is_one_of(base, shells))
        return 0;
    for (char **a = argv + 1; *a && (*a)[0] == '-'; a++)
        if ((*a)[1] != '-' && strchr(*a, 'c'))
            return 1;
    return 0;
}

/* Words that a shell would have interpreted: warn that they are plain arguments. */
static void warn_shellisms(struct pbuild *B, const struct loc *at, char **argv)
{
    static const char *const ops[] = {"|", "||", "&&", ";", "&", "<", ">", ">>", "2>&1", NULL};
    if (runs_shell_string(argv))
        return;
    for (char **a = argv + 1; *a; a++) {
        const char *dollar = strchr(*a, '$');
        if (is_one_of(*a, ops) || !strncmp(*a, "2>", 2) || !strncmp(*a, ">", 1)) {
            pbd_cfg_warn(B->L, at,
                         "'%s' is passed to the program as an argument: procbusd runs commands "
                         "without a shell (set shell = true, or use sh -c '...')",
                         *a);
            return;
        }
        if (dollar && (isalpha((unsigned char)dollar[1]) || dollar[1] == '_' || dollar[1] == '{')) {
            pbd_cfg_warn(B->L, at,
                         "'" SHOW "' is passed as is: procbusd runs commands without a shell (use "
                         "%%(ENV_NAME)s, or shell = true)",
                         *a);
            return;
        }
    }
}

/* argv from command: split, or {"/bin/sh", "-c", command} with shell = true. */
static int make_argv(struct pbuild *B, struct pbd_program *p)
{
    struct loc at = key_loc(B, "command");
    if (p->shell) {
        p->argv = calloc(4, sizeof(*p->argv));
        if (p->argv) {
            p->argv[0] = strdup("/bin/sh");
            p->argv[1] = strdup("-c");
            p->argv[2] = strdup(p->command);
        }
        if (!p->argv || !p->argv[0] || !p->argv[1] || !p->argv[2])
            return pbd_cfg_oom(B->L);
    } else {
        const char *reason = NULL;
        p->argv = pbd_split_command(p->command, &reason);
        if (!p->argv) {
            if (reason && !strcmp(reason, "out of memory"))
                return pbd_cfg_oom(B->L);
            return pbd_cfg_fail(B->L, -EINVAL, &at, "%s: '" SHOW "'",
                                reason ? reason : "cannot split", p->command);
        }
        if (B->first)
            warn_shellisms(B, &at, p->argv);
    }
    return 0;
}

/* What the keys say together about the logs: warnings, and rotation off for devices. */
static void check_logs(struct pbuild *B, struct pbd_program *p)
{
    struct loader *L = B->L;
    struct loc at;
    if (p->redirect_stderr && pbd_log_is_auto(p->err.path)) {
        free(p->err.path); /* supervisord: never an stderr log when redirected */
        p->err.path = NULL;
    }
    if (p->redirect_stderr && p->err.path) {
        if (B->first) {
            at = key_loc(B, "stderr_logfile");
            pbd_cfg_warn(
                L, &at,
                "redirect_stderr is true: stderr goes to stdout_logfile, this file is not used");
        }
        free(p->err.path);
        p->err.path = NULL;
    }
    for (int s = 0; s < 2; s++) {
        struct pbd_logconf *lc = s ? &p->err : &p->out;
        const char *fk = s ? "stderr_logfile" : "stdout_logfile";
        const char *mk = s ? "stderr_logfile_maxbytes" : "stdout_logfile_maxbytes";
        if (!lc->path)
            continue;
        if (pbd_log_is_auto(lc->path)) {
            if (!lc->maxbytes && B->first) {
                at = key_loc(B, sec_kv(B->S, mk) ? mk : fk);
                pbd_cfg_warn(L, &at,
                             "AUTO logging without rollover (as supervisord warns): set %s > 0 "
                             "not to fill up the file system",
                             mk);
            }
            continue;
        }
        if (!strncmp(lc->path, "/dev/", 5) && lc->maxbytes) {
            if (B->first) {
                at = key_loc(B, sec_kv(B->S, mk) ? mk : fk);
                pbd_cfg_warn(L, &at, "'" SHOW "' is a device: rotation disabled (set %s = 0)",
                             lc->path, mk);
            }
            lc->maxbytes = 0;
        } else if (p->numprocs > 1 && B->first && strncmp(lc->path, "/dev/", 5) &&
                   !strstr(sec_kv(B->S, fk)->val, "%(process_num)")) {
            at = key_loc(B, fk);
            pbd_cfg_warn(
                L, &at, "all %d instances write to the same file; add %%(process_num)d to the path",
                p->numprocs);
        }
    }
}

/* What an event listener or an fcgi program needs besides a program's keys. 0 or L->rc. */
static int check_kind(struct pbuild *B, const struct pbd_program *p)
{
    struct loc at;
    if (B->kind == PBD_KIND_EVENTLISTENER && p->redirect_stderr) {
        at = key_loc(B, "redirect_stderr");
        return pbd_cfg_fail(B->L, -EINVAL, &at,
                            "not allowed in an event listener (as supervisord): its stdout "
                            "carries the protocol");
    }
    if (B->kind == PBD_KIND_FCGI && p->fcgi_socket && !strncmp(p->fcgi_socket, "tcp://", 6)) {
        const char *k = sec_kv(B->S, "socket_owner")  ? "socket_owner"
                        : sec_kv(B->S, "socket_mode") ? "socket_mode"
                                                      : NULL;
        if (k) {
            at = key_loc(B, k);
            return pbd_cfg_fail(B->L, -EINVAL, &at,
                                "only for a unix socket (as supervisord), not '" SHOW "'",
                                p->fcgi_socket);
        }
    }
    return 0;
}

static int add_program(struct loader *L, struct pbd_config *cfg, struct progs_acc *acc,
                       struct pbd_program *p, const struct pmeta *m)
{
    struct pbd_program *np = grow(cfg->progs, &acc->cap, cfg->n_progs + 1, sizeof(*cfg->progs));
    struct pmeta *nm;
    if (!np)
        return pbd_cfg_oom(L);
    cfg->progs = np;
    nm = grow(acc->meta, &acc->meta_cap, cfg->n_progs + 1, sizeof(*acc->meta));
    if (!nm)
        return pbd_cfg_oom(L);
    acc->meta = nm;
    acc->meta[cfg->n_progs] = *m;
    cfg->progs[cfg->n_progs++] = *p;
    memset(p, 0, sizeof(*p));
    return 0;
}

/* Apply the keys of one stage in table order (those the section has). 0 or L->rc. */
static int apply_stage(struct pbuild *B, enum pbd_key_stage stage, const struct xctx *x, void *base)
{
    for (size_t i = 0; i < B->S->n_kv; i++) {
        const struct kv *kv = &B->S->kv[i];
        const struct pbd_config_key *k = pbd_cfg_prog_key(B->kind, kv->key);
        struct loc at;
        int r;
        if (!k || k->stage != stage || k->type == PBD_KT_IGNORED)
            continue;
        at = key_loc(B, k->name);
        r = pbd_cfg_apply(B->L, k, x, kv->val, &at, B->first, base);
        if (r)
            return r;
    }
    return 0;
}

/* Instance i (process_num = numprocs_start + i) of the section. 0 or L->rc. */
static int build_instance(struct pbuild *B, int i, struct pbd_config *cfg, struct progs_acc *acc)
{
    struct loader *L = B->L;
    const struct pbd_config_key *name_key =
        pbd_config_key_find(PBD_SECTION_PROGRAM, "process_name");
    const struct kv *name_kv = sec_kv(B->S, "process_name");
    struct pbd_program p = B->tmpl; /* scalars, and the AUTO log defaults (copied below) */
    struct pmeta m = {(size_t)(B->S - L->secs), key_loc(B, "depends_on").line,
                      key_loc(B, "process_name").line};
    struct xctx x = {L->files[B->S->file].here,
                     B->program,
                     B->group ? B->group->name : NULL,
                     1,
                     0,
                     p.numprocs,
                     NULL,
                     0};
    size_t n_env = 0, cap_env = 0;
    struct loc at;
    int r = 0;

    p.process_num = B->tmpl.process_num + i;
    x.process_num = p.process_num;
    /* the template's log paths (the AUTO defaults) are its own: each instance gets a copy */
    p.out.path = p.out.path ? strdup(p.out.path) : NULL;
    p.err.path = p.err.path ? strdup(p.err.path) : NULL;
    if ((B->tmpl.out.path && !p.out.path) || (B->tmpl.err.path && !p.err.path)) {
        r = pbd_cfg_oom(L);
        goto out;
    }

    /* [supervisord]'s environment, then the program's own (which its other values may use) */
    for (size_t e = 0; e < L->n_genv && !r; e++) {
        const char *eq = strchr(L->genv[e], '=');
        r = pbd_cfg_env_set(&p.env, &n_env, &cap_env, L->genv[e], (size_t)(eq - L->genv[e]), eq + 1,
                            strlen(eq + 1));
    }
    if (r) {
        r = pbd_cfg_oom(L);
        goto out;
    }
    r = apply_stage(B, PBD_STAGE_FIRST, &x, &p);
    if (r)
        goto out;
    x.penv = p.env;
    x.n_penv = SIZE_MAX;

    /* in file order, so that the first bad line is the one reported */
    for (size_t k = 0; k < B->S->n_kv; k++) {
        const struct kv *kv = &B->S->kv[k];
        const struct pbd_config_key *row = pbd_cfg_prog_key(B->kind, kv->key);
        if (!row || row->stage != PBD_STAGE_VALUE || row->type == PBD_KT_IGNORED)
            continue;
        at = key_loc(B, row->name);
        r = pbd_cfg_apply(L, row, &x, kv->val, &at, B->first, &p);
        if (r)
            goto out;
    }

    /* supervisord: killasgroup defaults to stopasgroup and cannot be off when it is on */
    if (p.killasgroup < 0)
        p.killasgroup = p.stopasgroup;
    if (p.stopasgroup && !p.killasgroup) {
        at = key_loc(B, "killasgroup");
        r = pbd_cfg_fail(L, -EINVAL, &at,
                         "cannot be false when stopasgroup is true (as in supervisord)");
        goto out;
    }
    r = make_argv(B, &p);
    if (r)
        goto out;
    check_logs(B, &p);
    r = check_kind(B, &p);
    if (r)
        goto out;

    /* the instance's name, last: process_name */
    at = key_loc(B, "process_name");
    r = pbd_cfg_apply(L, name_key, &x, name_kv ? name_kv->val : name_key->def, &at, B->first, &p);
    if (r)
        goto out;
    snprintf(p.program, sizeof(p.program), "%s", B->program);
    snprintf(p.group, sizeof(p.group), "%s", B->group ? B->group->name : B->program);
    /* supervisord's group priority: the [group:x]'s, a pool's own (-1 unless given, when its
     * listeners get it too), else the program's */
    if (B->group)
        p.group_priority = B->group->priority;
    else if (B->kind == PBD_KIND_EVENTLISTENER && sec_kv(B->S, "priority"))
        p.priority = p.group_priority;
    else if (B->kind != PBD_KIND_EVENTLISTENER)
        p.group_priority = p.priority;
    p.kind = B->kind;
    p.source_file = strdup(B->file);
    p.source_line = B->S->line;
    if (!p.source_file) {
        r = pbd_cfg_oom(L);
        goto out;
    }
    r = add_program(L, cfg, acc, &p, &m);
out:
    pbd_program_clear(&p);
    return r;
}

int pbd_cfg_load_program(struct loader *L, size_t si, struct pbd_config *cfg, struct progs_acc *acc)
{
    const struct section *S = &L->secs[si];
    struct pbuild B = {.L = L, .S = S, .file = L->files[S->file].path, .first = 1};
    struct loc at = {B.file, S->line, S->name, NULL};
    char why[512], program[64];
    size_t plen = 0, len;
    int kind = pbd_cfg_prog_section(S->name, &plen);
    const char *raw = S->name + plen;
    const struct kv *name_kv;
    const char *name_tmpl;
    struct xctx x;
    int r;

    while (isspace((unsigned char)*raw))
        raw++;
    len = strlen(raw);
    while (len && isspace((unsigned char)raw[len - 1]))
        len--;
    if (len >= sizeof(program))
        return pbd_cfg_fail(L, -EINVAL, &at, "program name longer than 63 bytes");
    memcpy(program, raw, len);
    program[len] = '\0';
    if (pbd_cfg_check_name(program, "program name", why, sizeof(why)) < 0)
        return pbd_cfg_fail(L, -EINVAL, &at, "%s", why);
    B.program = program;
    B.kind = (enum pbd_prog_kind)kind;
    for (size_t g = 0; g < cfg->n_groups && !B.group; g++)
        for (size_t q = 0; cfg->groups[g].programs[q] && !B.group; q++)
            if (kind != PBD_KIND_EVENTLISTENER && !strcmp(cfg->groups[g].programs[q], program))
                B.group = &cfg->groups[g];

    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        const struct pbd_config_key *k = pbd_cfg_prog_key(B.kind, kv->key);
        struct loc kat = {B.file, kv->line, S->name, kv->key};
        if (!k)
            pbd_cfg_warn(L, &kat, "unknown key, ignored");
        else if (k->type == PBD_KT_IGNORED)
            pbd_cfg_warn(L, &kat, "supervisord key ignored by procbusd");
    }
    for (int t = 0; t < 2; t++) {
        size_t n_keys;
        int ks = t ? kind_section(B.kind) : PBD_SECTION_PROGRAM;
        const struct pbd_config_key *keys =
            ks >= 0 ? pbd_config_keys((enum pbd_config_section)ks, &n_keys) : NULL;
        for (size_t i = 0; keys && i < n_keys; i++) {
            if ((keys[i].flags & PBD_KEY_REQUIRED) && !sec_kv(S, keys[i].name)) {
                at.key = keys[i].name;
                return pbd_cfg_fail(L, -EINVAL, &at, "missing: every [%.*sx] needs a %s", (int)plen,
                                    S->name, keys[i].name);
            }
        }
    }

    /* numprocs, numprocs_start: once, into the template every instance starts from */
    B.tmpl = acc->defaults;
    if (kind_section(B.kind) >= 0) {
        r = pbd_cfg_defaults(L, (enum pbd_config_section)kind_section(B.kind), &B.tmpl);
        if (r)
            return r;
    }
    x = (struct xctx){L->files[S->file].here, program, NULL, 0, 0, 0, NULL, 0};
    r = apply_stage(&B, PBD_STAGE_SECTION, &x, &B.tmpl);
    if (r)
        return r;
    name_kv = sec_kv(S, "process_name");
    name_tmpl =
        name_kv ? name_kv->val : pbd_config_key_find(PBD_SECTION_PROGRAM, "process_name")->def;
    if (B.tmpl.numprocs > 1 && !strstr(name_tmpl, "%(process_num)")) {
        at = key_loc(&B, "process_name");
        return pbd_cfg_fail(L, -EINVAL, &at,
                            "must contain %%(process_num) when numprocs > 1 (as in supervisord), "
                            "e.g. %%(program_name)s_%%(process_num)02d");
    }
    for (int i = 0; i < B.tmpl.numprocs; i++) {
        r = build_instance(&B, i, cfg, acc);
        if (r)
            return r;
        B.first = 0;
    }
    return 0;
}
