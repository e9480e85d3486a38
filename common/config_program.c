/* config_program.c - the instances of one [program:x], built from its keys via the key table. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>

struct pbuild {
    struct loader *L;
    const struct section *S;
    const char *file;
    const char *program;
    struct pbd_program tmpl; /* the defaults and the section-stage keys (numprocs ...) */
    int first;               /* the first instance: warnings are given once per section */
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

int pbd_cfg_program_defaults(struct loader *L, struct progs_acc *acc)
{
    struct pbd_program *p = &acc->defaults;
    memset(p, 0, sizeof(*p));
    p->umask = (mode_t)-1; /* inherit */
    p->ready_fd = -1;      /* none */
    p->killasgroup = -1;   /* unset: stopasgroup's value */
    return pbd_cfg_defaults(L, PBD_SECTION_PROGRAM, p);
}

/* Words that a shell would have interpreted: warn that they are plain arguments. */
static void warn_shellisms(struct pbuild *B, const struct loc *at, char **argv)
{
    static const char *const ops[] = {"|", "||", "&&", ";", "&", "<", ">", ">>", "2>&1", NULL};
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
    size_t n;
    const struct pbd_config_key *k = pbd_config_keys(PBD_SECTION_PROGRAM, &n);
    for (size_t i = 0; i < n; i++) {
        const struct kv *kv;
        struct loc at;
        int r;
        if (k[i].stage != stage || !(kv = sec_kv(B->S, k[i].name)))
            continue;
        at = key_loc(B, k[i].name);
        r = pbd_cfg_apply(B->L, &k[i], x, kv->val, &at, B->first, base);
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
    struct pbd_program p = B->tmpl; /* scalars only: no pointer to share */
    struct pmeta m = {(size_t)(B->S - L->secs), key_loc(B, "depends_on").line,
                      key_loc(B, "process_name").line};
    struct xctx x = {L->files[B->S->file].here, B->program, 1, 0, p.numprocs, NULL, 0};
    size_t n_env = 0, cap_env = 0;
    struct loc at;
    int r = 0;

    p.process_num = B->tmpl.process_num + i;
    x.process_num = p.process_num;

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
        const struct pbd_config_key *row = pbd_config_key_find(PBD_SECTION_PROGRAM, kv->key);
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

    /* the instance's name, last: process_name */
    at = key_loc(B, "process_name");
    r = pbd_cfg_apply(L, name_key, &x, name_kv ? name_kv->val : name_key->def, &at, B->first, &p);
    if (r)
        goto out;
    snprintf(p.group, sizeof(p.group), "%s", B->program);
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
    const char *raw = S->name + strlen("program:");
    const struct kv *name_kv;
    const char *name_tmpl;
    size_t n_keys, len;
    const struct pbd_config_key *keys = pbd_config_keys(PBD_SECTION_PROGRAM, &n_keys);
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

    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        const struct pbd_config_key *k = pbd_config_key_find(PBD_SECTION_PROGRAM, kv->key);
        struct loc kat = {B.file, kv->line, S->name, kv->key};
        if (!k)
            pbd_cfg_warn(L, &kat, "unknown key, ignored");
        else if (k->type == PBD_KT_IGNORED)
            pbd_cfg_warn(L, &kat, "supervisord key ignored by procbusd");
    }
    for (size_t i = 0; i < n_keys; i++) {
        if ((keys[i].flags & PBD_KEY_REQUIRED) && !sec_kv(S, keys[i].name)) {
            at.key = keys[i].name;
            return pbd_cfg_fail(L, -EINVAL, &at, "missing: every [program:x] needs a %s",
                                keys[i].name);
        }
    }

    /* numprocs, numprocs_start: once, into the template every instance starts from */
    B.tmpl = acc->defaults;
    x = (struct xctx){L->files[S->file].here, program, 0, 0, 0, NULL, 0};
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
