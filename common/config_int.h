/* config_int.h - what the config_*.c files share (private to the configuration parser). */
#ifndef PROCBUS_CONFIG_INT_H
#define PROCBUS_CONFIG_INT_H

#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/utsname.h>

#define MAX_INCLUDE_DEPTH 16
#define SHOW              "%.120s" /* how a value is quoted in messages */

/* ------------------------------------------------------------- the loader */

struct kv {
    char *key; /* lower-cased, as Python's configparser does */
    char *val; /* continuation lines joined with '\n' */
    int line;
};

struct section {
    char *name;
    size_t file;
    int line;
    struct kv *kv;
    size_t n_kv, cap_kv;
};

struct srcfile {
    char *path; /* as given or as globbed: used in messages */
    char *here; /* absolute folder, for %(here)s */
    dev_t dev;
    ino_t ino;
    int active; /* its includes are being read */
};

struct loader {
    char **env;
    char *err;
    size_t errlen;
    void (*warn)(void *arg, const char *msg);
    void *warn_arg;
    int rc; /* the first error, 0 while all is well */
    char host[sizeof(((struct utsname *)0)->nodename)];

    struct srcfile *files;
    size_t n_files, cap_files;
    struct section *secs;
    size_t n_secs, cap_secs;
    char **genv; /* [supervisord] environment, "KEY=VALUE" */
    size_t n_genv, cap_genv;

    /* the file inih is reading */
    FILE *fp;
    size_t file;
    int lineno;
    char *line;
    size_t linecap;
    long cur_sec;         /* index in secs, -1 before the first header */
    long last_kv;         /* the key continuation lines extend; -1 after a header */
    int cont;             /* the current line continues last_kv */
    int long_pending;     /* the line was too long for inih: use long_key/long_val */
    const char *long_key; /* point into line */
    const char *long_val;
};

/* Where a message points: "FILE:LINE: [SECTION] KEY: ". Any part may be absent. */
struct loc {
    const char *file;
    int line;
    const char *section;
    const char *key;
};

/* What %(name)X may refer to where a value is expanded. */
struct xctx {
    const char *here;    /* folder of the file the value comes from */
    const char *program; /* program_name (and group_name without group); NULL outside a program */
    const char *group;   /* group_name when it is not program (a [group:x] lists it); or NULL */
    int has_num;         /* process_num and numprocs are defined */
    long long process_num, numprocs;
    char **penv; /* the program's environment (ENV_X before [supervisord]'s and procbusd's) */
    size_t n_penv;
};

/* What a row's apply function may use besides the value (pbd_key_apply_fn). */
struct pbd_key_ctx {
    struct loader *L;
    const struct loc *at; /* where the value is (for warnings) */
    int first;            /* the first instance of its section: warnings are given once */
    char *why;            /* the reason of a -EINVAL */
    size_t wl;
};

/* Per program instance, what the checks after parsing need. */
struct pmeta {
    size_t sec;
    int dep_line; /* line of depends_on, or the section's */
    int name_line;
};

/* The programs built so far (cfg->progs grows with meta). */
struct progs_acc {
    size_t cap;
    struct pmeta *meta;
    size_t meta_cap;
    struct pbd_program defaults; /* every row's default applied (scalars, and the AUTO log
                                    paths, which each instance copies) */
};

/* ------------------------------------------- small string and array helpers */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static inline void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        char *np;
        while (nc < b->len + n + 1)
            nc *= 2;
        np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static inline void sb_addc(struct sbuf *b, char c)
{
    sb_addn(b, &c, 1);
}

/* The built string ("" if nothing was added), or NULL if an allocation failed. */
static inline char *sb_take(struct sbuf *b)
{
    char *s = b->p;
    if (b->oom) {
        free(s);
        s = NULL;
    } else if (!s) {
        s = strdup("");
    }
    memset(b, 0, sizeof(*b));
    return s;
}

static inline char *lskip(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return (char *)s;
}

static inline void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* Trim a malloc'd string in place. */
static inline void trim(char *s)
{
    char *b = lskip(s);
    if (b != s)
        memmove(s, b, strlen(b) + 1);
    rstrip(s);
}

/* 1 if s is one of the NULL-terminated list, ignoring case. */
static inline int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(s, *list) == 0)
            return 1;
    return 0;
}

/* Grow an array to hold `need` elements; returns the (maybe moved) array or NULL. */
static inline void *grow(void *p, size_t *cap, size_t need, size_t elsz)
{
    size_t nc;
    void *np;
    if (need <= *cap)
        return p;
    nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    np = reallocarray(p, nc, elsz);
    if (np)
        *cap = nc;
    return np;
}

/* --------------------------------------------------- messages (config_msg.c) */

/* Record the first error (later ones are consequences) in L->err and return it (L->rc). */
int pbd_cfg_fail(struct loader *L, int rc, const struct loc *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* pbd_cfg_fail(L, -ENOMEM, NULL, "out of memory"). */
int pbd_cfg_oom(struct loader *L);

/* Pass one warning line to L->warn (if any). */
void pbd_cfg_warn(struct loader *L, const struct loc *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------- INI reading (config_ini.c) */

/* Read path (and the files its [include]s name) into L's sections. 0 or L->rc. */
int pbd_cfg_read_file(struct loader *L, const char *path, const struct loc *from, int depth);

/* Free what reading allocated (sections, files, genv, the line buffer). */
void pbd_cfg_loader_free(struct loader *L);

/* ------------------------------------------------ expansions (config_expand.c) */

/*
 * Python's `value % expansions`, as supervisord does: %(name)s, %(name)d with
 * flags/width/precision (%(process_num)02d), %% for a percent sign. Any other
 * '%' is an error, as in supervisord. 0 with a malloc'd *out, -EINVAL (reason
 * in why), -ENOMEM.
 */
int pbd_cfg_expand(const struct loader *L, const struct xctx *x, const char *in, char **out,
                   char *why, size_t wl);

/* ---------------------------------------------- value syntaxes (config_values.c) */

/* Each: 0, or -EINVAL with the reason in why[wl], or -ENOMEM. */
int pbd_cfg_parse_ll(const char *s, long long *v); /* 0, -1 not an integer, -2 out of range */
int pbd_cfg_get_int(const char *s, long long min, long long max, long long *out, char *why,
                    size_t wl);
int pbd_cfg_get_bool(const char *s, const char *expect, int *out, char *why, size_t wl);
int pbd_cfg_get_bytes(const char *s, uint64_t *out, char *why, size_t wl);
int pbd_cfg_get_umask(const char *s, mode_t *out, char *why, size_t wl);
int pbd_cfg_get_exitcodes(const char *s, int *codes, int *n, char *why, size_t wl);
int pbd_cfg_get_user(const char *v, char *why, size_t wl);
/* An existing group name or gid, or "none" (*gid = -1). 0 or -EINVAL with why. */
int pbd_cfg_get_group(const char *v, long long *gid, char *why, size_t wl);
int pbd_cfg_get_regex(const char *v, char *why, size_t wl);
/* supervisord's list_of_strings: comma-separated, each trimmed; *out NULL-terminated (NULL for an
 * empty value). 0, -EINVAL (an empty item), -ENOMEM. */
int pbd_cfg_get_list(const char *v, char ***out, char *why, size_t wl);
/* An existing folder (after ~ expansion is not done: supervisord's existing_directory). */
int pbd_cfg_get_folder(const char *v, char *why, size_t wl);
int pbd_cfg_get_deps(const char *v, struct pbd_program *p, char *why, size_t wl);
int pbd_cfg_get_logfile(struct pbd_key_ctx *c, const char *v, char **path);
int pbd_cfg_env_pairs(const char *s, char ***v, size_t *n, size_t *cap, char *why, size_t wl);
int pbd_cfg_check_name(const char *name, const char *what, char *why, size_t wl);

/* Set KEY=VALUE in a vector (replacing KEY if present: last one wins, first position).
 * 0 or -ENOMEM. */
int pbd_cfg_env_set(char ***v, size_t *n, size_t *cap, const char *key, size_t klen,
                    const char *val, size_t vlen);

/* "NAME=..." in env (n entries, or up to a NULL when n is SIZE_MAX): the value or NULL. */
const char *pbd_cfg_env_get(char *const *env, size_t n, const char *name, size_t nlen);

/* os.path.normpath(os.path.abspath(p)), as supervisord normalizes its socket, log and pidfile
 * paths: relative to the working folder, "." and ".." folded. malloc'd, NULL if out of memory. */
char *pbd_cfg_normpath(const char *p);

/* "a/b/c.conf" -> "a/b"; "c.conf" -> "."; "/c.conf" -> "/". malloc'd, NULL if out of memory. */
char *pbd_cfg_path_dir(const char *path);

/* ---------------------------------------------------- the keys (config_keys.c) */

/*
 * Apply one value of row k: expand raw with x (x NULL: taken as is, for defaults), trim it
 * (except environments), then parse and store it into base (the row's apply, else by type).
 * On error records it at `at` (pbd_cfg_fail) and returns L->rc; else 0.
 */
int pbd_cfg_apply(struct loader *L, const struct pbd_config_key *k, const struct xctx *x,
                  const char *raw, const struct loc *at, int first, void *base);

/* Apply the default (def) of every row of section whose stage is not PBD_STAGE_LAST. 0 or L->rc. */
int pbd_cfg_defaults(struct loader *L, enum pbd_config_section section, void *base);

/* Rows shared by the tables (config_keys.c, config_keys_sv.c). */
pbd_key_apply_fn pbd_cfg_apply_genv;      /* [supervisord] environment, kept by the loader */
pbd_key_apply_fn pbd_cfg_apply_serverurl; /* serverurl: AUTO is NULL */

/* The tables of config_keys_sv.c, each ending with a row whose name is NULL. */
extern const struct pbd_config_key pbd_cfg_supervisord_keys[];
extern const struct pbd_config_key pbd_cfg_group_keys[];
extern const struct pbd_config_key pbd_cfg_evl_keys[];
extern const struct pbd_config_key pbd_cfg_fcgi_keys[];
extern const struct pbd_config_key pbd_cfg_unix_http_keys[];
extern const struct pbd_config_key pbd_cfg_inet_http_keys[];

/* A program-like section's row for key: its kind's own table first ([eventlistener:x] events),
 * then [program:x]'s. NULL if neither has it. */
const struct pbd_config_key *pbd_cfg_prog_key(enum pbd_prog_kind kind, const char *key);

/* ---------------------------------------- sections (config_daemon.c, config_program.c) */

/* A section procbusd reads into the daemon's settings ([procbusd], [supervisord], the http
 * servers), through its key table. 0 or L->rc. */
int pbd_cfg_load_daemon(struct loader *L, const struct section *S, enum pbd_config_section sec,
                        struct pbd_daemon_conf *d);
int pbd_cfg_is_ignored_section(const char *name);
/* [group:x] sections into cfg->groups (checked: known programs, each in one group). 0 or L->rc. */
int pbd_cfg_load_groups(struct loader *L, struct pbd_config *cfg);
/* The kind a section name makes ("program:", "eventlistener:", "fcgi-program:"), with *prefix
 * its length; -1 for another section. */
int pbd_cfg_prog_section(const char *name, size_t *prefix);
int pbd_cfg_program_defaults(struct loader *L, struct progs_acc *acc);
int pbd_cfg_load_program(struct loader *L, size_t si, struct pbd_config *cfg,
                         struct progs_acc *acc);

/* ------------------------------------------ checks across programs (config_check.c) */

/* Unique instance names; every dependency known, "ready" ones possible, no cycle; no more
 * instances than [procbusd] capacity records. 0 or L->rc. */
int pbd_cfg_check_programs(struct loader *L, const struct pbd_config *cfg,
                           const struct pmeta *meta);

#endif /* PROCBUS_CONFIG_INT_H */
