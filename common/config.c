/* config.c - procbusd's supervisord-compatible INI configuration parser (inih based). */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

extern char **environ;

#define MAX_INCLUDE_DEPTH 16
#define MAX_NUMPROCS      100000
#define SHOW              "%.120s" /* how a value is quoted in messages */

/* ------------------------------------------------------------------ strings */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
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

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
    sb_addn(b, &c, 1);
}

/* The built string ("" if nothing was added), or NULL if an allocation failed. */
static char *sb_take(struct sbuf *b)
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

static char *lskip(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return (char *)s;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* Trim a malloc'd string in place. */
static void trim(char *s)
{
    char *b = lskip(s);
    if (b != s)
        memmove(s, b, strlen(b) + 1);
    rstrip(s);
}

static int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(s, *list) == 0)
            return 1;
    return 0;
}

static const char *const truthy[] = {"true", "yes", "on", "1", NULL};
static const char *const falsy[] = {"false", "no", "off", "0", NULL};

/* "a/b/c.conf" -> "a/b"; "c.conf" -> "."; "/c.conf" -> "/". */
static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    while (slash > path && slash[-1] == '/')
        slash--;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Grow an array to hold `need` elements; returns the (maybe moved) array or NULL. */
static void *grow(void *p, size_t *cap, size_t need, size_t elsz)
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

void pbd_free_argv(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
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

/* "NAME=..." in env (n entries, or up to a NULL when n is SIZE_MAX): the value or NULL. */
static const char *env_get(char *const *env, size_t n, const char *name, size_t nlen)
{
    if (!env)
        return NULL;
    for (size_t i = 0; i < n && env[i]; i++)
        if (strncmp(env[i], name, nlen) == 0 && env[i][nlen] == '=')
            return env[i] + nlen + 1;
    return NULL;
}

/* ---------------------------------------------------------- command, signals */

char **pbd_split_command(const char *cmd, const char **why)
{
    struct sbuf word = {0};
    char **v = NULL, **nv;
    size_t n = 0, cap = 0;
    const char *p = cmd ? cmd : "";
    const char *reason = NULL;
    int have = 0;

    for (;;) {
        char c = *p;
        if (c == '\0' || isspace((unsigned char)c)) {
            if (have) {
                char *w = sb_take(&word);
                nv = w ? grow(v, &cap, n + 2, sizeof(*v)) : NULL;
                if (!nv) {
                    free(w);
                    reason = "out of memory";
                    goto fail;
                }
                v = nv;
                v[n++] = w;
                v[n] = NULL;
                have = 0;
            }
            if (!c)
                break;
            p++;
            continue;
        }
        if (c == '\\' && p[1] == '\n') { /* line continuation: not part of a word */
            p += 2;
            continue;
        }
        have = 1;
        if (c == '\\') {
            if (!p[1]) {
                reason = "trailing backslash";
                goto fail;
            }
            sb_addc(&word, p[1]);
            p += 2;
        } else if (c == '\'') {
            const char *q = strchr(p + 1, '\'');
            if (!q) {
                reason = "unterminated single quote";
                goto fail;
            }
            sb_addn(&word, p + 1, (size_t)(q - p - 1));
            p = q + 1;
        } else if (c == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    reason = "unterminated double quote";
                    goto fail;
                }
                if (*p == '"') {
                    p++;
                    break;
                }
                if (*p == '\\' && p[1] && strchr("$`\"\\\n", p[1])) {
                    if (p[1] != '\n')
                        sb_addc(&word, p[1]);
                    p += 2;
                    continue;
                }
                sb_addc(&word, *p++);
            }
        } else {
            sb_addc(&word, c);
            p++;
        }
        if (word.oom) {
            reason = "out of memory";
            goto fail;
        }
    }
    if (n == 0) {
        reason = "empty command";
        goto fail;
    }
    return v;
fail:
    free(sb_take(&word));
    pbd_free_argv(v);
    if (why)
        *why = reason;
    return NULL;
}

static const struct {
    const char *name;
    int num;
} sigtab[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},   {"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},  {"CONT", SIGCONT},
    {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},     {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int pbd_signal_number(const char *name)
{
    const char *s;
    if (!name || !*name)
        return -1;
    if (isdigit((unsigned char)name[0])) {
        char *end;
        long v;
        errno = 0;
        v = strtol(name, &end, 10);
        if (*end || errno || v < 1 || v >= _NSIG)
            return -1;
        return (int)v;
    }
    s = strncasecmp(name, "SIG", 3) == 0 ? name + 3 : name;
    for (size_t i = 0; i < sizeof(sigtab) / sizeof(sigtab[0]); i++)
        if (strcasecmp(s, sigtab[i].name) == 0)
            return sigtab[i].num;
    if (strcasecmp(s, "RTMIN") == 0)
        return SIGRTMIN;
    if (strcasecmp(s, "RTMAX") == 0)
        return SIGRTMAX;
    return -1;
}

/* ------------------------------------------------------------------ loader */

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

static size_t addf(char *out, size_t outlen, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t addf(char *out, size_t outlen, size_t off, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (off >= outlen)
        return off;
    va_start(ap, fmt);
    k = vsnprintf(out + off, outlen - off, fmt, ap);
    va_end(ap);
    return k > 0 ? off + (size_t)k : off;
}

static void compose(char *out, size_t outlen, const struct loc *at, const char *fmt, va_list ap)
{
    size_t off = 0;
    if (!outlen)
        return;
    out[0] = '\0';
    if (at && at->file && at->line > 0)
        off = addf(out, outlen, off, "%s:%d: ", at->file, at->line);
    else if (at && at->file)
        off = addf(out, outlen, off, "%s: ", at->file);
    if (at && at->section && at->key)
        off = addf(out, outlen, off, "[%s] %s: ", at->section, at->key);
    else if (at && at->section)
        off = addf(out, outlen, off, "[%s]: ", at->section);
    else if (at && at->key)
        off = addf(out, outlen, off, "%s: ", at->key);
    if (off < outlen)
        vsnprintf(out + off, outlen - off, fmt, ap);
}

static int fail(struct loader *L, int rc, const struct loc *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the first error (later ones are consequences) and return it. */
static int fail(struct loader *L, int rc, const struct loc *at, const char *fmt, ...)
{
    va_list ap;
    if (L->rc)
        return L->rc;
    L->rc = rc;
    if (L->err && L->errlen) {
        va_start(ap, fmt);
        compose(L->err, L->errlen, at, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int oom(struct loader *L)
{
    return fail(L, -ENOMEM, NULL, "out of memory");
}

static void warnf(struct loader *L, const struct loc *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warnf(struct loader *L, const struct loc *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!L->warn)
        return;
    va_start(ap, fmt);
    compose(msg, sizeof(msg), at, fmt, ap);
    va_end(ap);
    L->warn(L->warn_arg, msg);
}

/* ------------------------------------------------------------- expansions */

/* What %(name)X may refer to where a value is expanded. */
struct xctx {
    const char *here;    /* folder of the file the value comes from */
    const char *program; /* program_name and group_name; NULL outside [program:x] */
    int has_num;         /* process_num and numprocs are defined */
    long long process_num, numprocs;
    char **penv; /* the program's own environment= pairs (ENV_X), or NULL */
    size_t n_penv;
};

/* 1: string in *s, 2: number in *n, 0: unknown. */
static int lookup(const struct loader *L, const struct xctx *x, const char *name, size_t len,
                  const char **s, long long *n)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (IS("here") && x->here) {
        *s = x->here;
        return 1;
    }
    if (IS("host_node_name")) {
        *s = L->host;
        return 1;
    }
    if ((IS("program_name") || IS("group_name")) && x->program) {
        *s = x->program;
        return 1;
    }
    if (IS("process_num") && x->has_num) {
        *n = x->process_num;
        return 2;
    }
    if (IS("numprocs") && x->has_num) {
        *n = x->numprocs;
        return 2;
    }
#undef IS
    if (len > 4 && memcmp(name, "ENV_", 4) == 0) {
        const char *v = env_get(x->penv, x->n_penv, name + 4, len - 4);
        if (!v)
            v = env_get(L->genv, L->n_genv, name + 4, len - 4);
        if (!v)
            v = env_get(L->env, SIZE_MAX, name + 4, len - 4);
        if (v) {
            *s = v;
            return 1;
        }
    }
    return 0;
}

/*
 * Python's `value % expansions`, as supervisord does: %(name)s, %(name)d with
 * flags/width/precision (%(process_num)02d), %% for a percent sign. Any other
 * '%' is an error, as in supervisord. 0, -EINVAL (reason in why), -ENOMEM.
 */
static int expand(const struct loader *L, const struct xctx *x, const char *in, char **out,
                  char *why, size_t wl)
{
    struct sbuf b = {0};
    const char *p = in;
    *out = NULL;
    while (*p) {
        const char *pct = strchr(p, '%'), *name, *close, *q;
        char flags[8], fmt[32], conv, tmp[64];
        size_t nf = 0, nlen;
        int width = -1, prec = -1, kind;
        const char *sval = NULL;
        long long nval = 0;

        if (!pct) {
            sb_add(&b, p);
            break;
        }
        sb_addn(&b, p, (size_t)(pct - p));
        if (pct[1] == '%') {
            sb_addc(&b, '%');
            p = pct + 2;
            continue;
        }
        if (pct[1] != '(') {
            snprintf(why, wl,
                     "a '%%' must start an expansion like %%(program_name)s or be doubled "
                     "(%%%%): '" SHOW "'",
                     in);
            goto inval;
        }
        name = pct + 2;
        close = strchr(name, ')');
        if (!close) {
            snprintf(why, wl, "unterminated %%(...) in '" SHOW "'", in);
            goto inval;
        }
        nlen = (size_t)(close - name);
        q = close + 1;
        while (*q && strchr("-+ #0", *q)) {
            if (nf < sizeof(flags) - 1 && !memchr(flags, *q, nf))
                flags[nf++] = *q;
            q++;
        }
        flags[nf] = '\0';
        if (isdigit((unsigned char)*q)) {
            width = 0;
            while (isdigit((unsigned char)*q) && width < 10000)
                width = width * 10 + (*q++ - '0');
        }
        if (*q == '.') {
            prec = 0;
            q++;
            while (isdigit((unsigned char)*q) && prec < 10000)
                prec = prec * 10 + (*q++ - '0');
        }
        if (width > 999 || prec > 999 || isdigit((unsigned char)*q)) {
            snprintf(why, wl, "field width too large in %%(%.*s)", (int)nlen, name);
            goto inval;
        }
        while (*q && strchr("hlL", *q))
            q++;
        conv = *q;
        if (!conv || !strchr("sdiuxXo", conv)) {
            if (!conv)
                snprintf(why, wl, "incomplete format %%(%.*s) (add a conversion, e.g. s)",
                         (int)nlen, name);
            else
                snprintf(why, wl, "unsupported conversion '%c' in %%(%.*s)%c (use s or d)", conv,
                         (int)nlen, name, conv);
            goto inval;
        }
        p = q + 1;
        kind = lookup(L, x, name, nlen, &sval, &nval);
        if (!kind) {
            if (nlen > 4 && memcmp(name, "ENV_", 4) == 0)
                snprintf(why, wl, "environment variable %.*s is not set (%%(%.*s)%c)",
                         (int)nlen - 4, name + 4, (int)nlen, name, conv);
            else
                snprintf(why, wl,
                         "unknown expansion %%(%.*s)%c (known here: %s%shost_node_name%s, "
                         "ENV_<variable>)",
                         (int)nlen, name, conv, x->program ? "program_name, group_name, " : "",
                         x->here ? "here, " : "", x->has_num ? ", process_num, numprocs" : "");
            goto inval;
        }
        if (kind == 1 && conv != 's') {
            snprintf(why, wl, "%%(%.*s)%c needs a number, but %.*s is text ('" SHOW "')", (int)nlen,
                     name, conv, (int)nlen, name, sval);
            goto inval;
        }
        /* build a C format: "%" flags [width] [.prec] (s | lld | llx ...) */
        {
            size_t off = 0;
            fmt[off++] = '%';
            for (size_t i = 0; i < nf; i++)
                if (conv != 's' || flags[i] == '-')
                    fmt[off++] = flags[i];
            fmt[off] = '\0';
            if (width >= 0)
                off += (size_t)snprintf(fmt + off, sizeof(fmt) - off, "%d", width);
            if (prec >= 0)
                off += (size_t)snprintf(fmt + off, sizeof(fmt) - off, ".%d", prec);
            if (conv == 's')
                snprintf(fmt + off, sizeof(fmt) - off, "s");
            else
                snprintf(fmt + off, sizeof(fmt) - off, "ll%c",
                         conv == 'i' || conv == 'u' ? 'd' : conv);
        }
        if (kind == 2 && conv == 's') {
            snprintf(tmp, sizeof(tmp), "%lld", nval);
            sval = tmp;
        }
        {
            int k = sval ? snprintf(NULL, 0, fmt, sval) : snprintf(NULL, 0, fmt, nval);
            char *piece = k >= 0 ? malloc((size_t)k + 1) : NULL;
            if (!piece) {
                free(sb_take(&b));
                return -ENOMEM;
            }
            if (sval)
                snprintf(piece, (size_t)k + 1, fmt, sval);
            else
                snprintf(piece, (size_t)k + 1, fmt, nval);
            sb_add(&b, piece);
            free(piece);
        }
    }
    *out = sb_take(&b);
    return *out ? 0 : -ENOMEM;
inval:
    free(sb_take(&b));
    return -EINVAL;
}

/* ------------------------------------------------------------ value types */

/* 0, -1 (not an integer), -2 (out of long long range) */
static int parse_ll(const char *s, long long *v)
{
    char *end;
    long long r;
    s = lskip(s);
    if (!*s)
        return -1;
    errno = 0;
    r = strtoll(s, &end, 10);
    if (end == s || *lskip(end))
        return -1;
    if (errno == ERANGE)
        return -2;
    *v = r;
    return 0;
}

static int get_int(const char *s, long long min, long long max, long long *out, char *why,
                   size_t wl)
{
    long long v = 0;
    int r = parse_ll(s, &v);
    if (r == -1 || (r == 0 && v < min)) {
        if (min == 0)
            snprintf(why, wl, "not a non-negative integer: '" SHOW "'", s);
        else if (min == 1)
            snprintf(why, wl, "not a positive integer: '" SHOW "'", s);
        else if (min > 1)
            snprintf(why, wl, "not an integer >= %lld: '" SHOW "'", min, s);
        else
            snprintf(why, wl, "not an integer: '" SHOW "'", s);
        return -EINVAL;
    }
    if (r == -2 || v > max) {
        snprintf(why, wl, "out of range (at most %lld): '" SHOW "'", max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int get_bool(const char *s, int *out, char *why, size_t wl)
{
    if (is_one_of(s, truthy))
        *out = 1;
    else if (is_one_of(s, falsy))
        *out = 0;
    else {
        snprintf(why, wl, "not a boolean (true/false, yes/no, on/off, 1/0): '" SHOW "'", s);
        return -EINVAL;
    }
    return 0;
}

/* supervisord's byte_size: N, NKB, NMB, NGB (case-insensitive, powers of 1024). */
static int get_bytes(const char *s, uint64_t *out, char *why, size_t wl)
{
    size_t n = strlen(s);
    uint64_t mult = 1;
    long long v;
    char num[64];
    if (n >= 2 && n < sizeof(num)) {
        const char *suf = s + n - 2;
        if (strcasecmp(suf, "kb") == 0)
            mult = 1024ull;
        else if (strcasecmp(suf, "mb") == 0)
            mult = 1024ull * 1024;
        else if (strcasecmp(suf, "gb") == 0)
            mult = 1024ull * 1024 * 1024;
    }
    if (n >= sizeof(num))
        goto bad;
    memcpy(num, s, n + 1);
    if (mult != 1)
        num[n - 2] = '\0';
    if (parse_ll(num, &v) != 0 || v < 0)
        goto bad;
    if ((uint64_t)v > UINT64_MAX / mult)
        goto bad;
    *out = (uint64_t)v * mult;
    return 0;
bad:
    snprintf(why, wl, "not a byte size (like 1024, 500KB, 50MB, 1GB): '" SHOW "'", s);
    return -EINVAL;
}

static int get_umask(const char *s, mode_t *out, char *why, size_t wl)
{
    const char *p = s;
    unsigned v = 0;
    if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        p += 2;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '7')
            goto bad;
        v = v * 8 + (unsigned)(*p - '0');
        if (v > 0777)
            goto bad;
    }
    *out = (mode_t)v;
    return 0;
bad:
    snprintf(why, wl, "not an octal umask from 000 to 777 (like 022): '" SHOW "'", s);
    return -EINVAL;
}

static int get_exitcodes(const char *s, int *codes, int *n, char *why, size_t wl)
{
    const char *p = s;
    int k = 0;
    if (!*lskip(s)) { /* supervisord: an empty list, every exit is unexpected */
        *n = 0;
        return 0;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        long long v;
        if (len >= sizeof(item))
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_ll(item, &v) != 0 || v < 0 || v > 255)
            goto bad;
        if (k == PBD_MAX_EXITCODES) {
            snprintf(why, wl, "more than %d exit codes: '" SHOW "'", PBD_MAX_EXITCODES, s);
            return -EINVAL;
        }
        codes[k++] = (int)v;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = k;
    return 0;
bad:
    snprintf(why, wl, "not a comma-separated list of exit codes 0-255: '" SHOW "'", s);
    return -EINVAL;
}

/* Set KEY=VALUE in a vector (replacing KEY if present: last one wins, first position). */
static int env_set(char ***v, size_t *n, size_t *cap, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
    char *e = malloc(klen + vlen + 2);
    char **nv;
    if (!e)
        return -ENOMEM;
    memcpy(e, key, klen);
    e[klen] = '=';
    memcpy(e + klen + 1, val, vlen);
    e[klen + 1 + vlen] = '\0';
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*v)[i], key, klen) == 0 && (*v)[i][klen] == '=') {
            free((*v)[i]);
            (*v)[i] = e;
            return 0;
        }
    }
    nv = grow(*v, cap, *n + 2, sizeof(**v));
    if (!nv) {
        free(e);
        return -ENOMEM;
    }
    *v = nv;
    (*v)[(*n)++] = e;
    (*v)[*n] = NULL;
    return 0;
}

/*
 * supervisord's environment syntax: KEY=VALUE pairs separated by commas;
 * a value may be "double" or 'single' quoted (then it may hold commas and
 * spaces; quotes are not kept, there are no escapes). Pairs are added to *v.
 */
static int parse_env_pairs(const char *s, char ***v, size_t *n, size_t *cap, char *why, size_t wl)
{
    const char *p = s;
    for (;;) {
        const char *k, *vs, *ve;
        size_t klen;
        p = lskip(p);
        if (!*p)
            return 0;
        k = p;
        while (*p && *p != '=' && *p != ',' && *p != '"' && *p != '\'' &&
               !isspace((unsigned char)*p))
            p++;
        klen = (size_t)(p - k);
        p = lskip(p);
        if (!klen || *p != '=') {
            snprintf(why, wl, "expected KEY=VALUE at '%.40s'", k);
            return -EINVAL;
        }
        p = lskip(p + 1);
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            vs = p;
            ve = strchr(p, q);
            if (!ve) {
                snprintf(why, wl, "unterminated %s quote in the value of %.*s",
                         q == '"' ? "double" : "single", (int)klen, k);
                return -EINVAL;
            }
            p = ve + 1;
        } else {
            vs = p;
            while (*p && *p != ',' && !isspace((unsigned char)*p))
                p++;
            ve = p;
        }
        p = lskip(p);
        if (*p == ',')
            p++;
        else if (*p) {
            snprintf(why, wl,
                     "expected ',' after the value of %.*s (quote a value that holds spaces or "
                     "commas): '%.40s'",
                     (int)klen, k, p);
            return -EINVAL;
        }
        if (env_set(v, n, cap, k, klen, vs, (size_t)(ve - vs)) < 0) {
            snprintf(why, wl, "out of memory");
            return -ENOMEM;
        }
    }
}

/* "~" and "~user" at the start of a path, like Python's os.path.expanduser. */
static char *expand_user(const struct loader *L, const char *path)
{
    const char *rest, *home = NULL;
    struct passwd pw, *res = NULL;
    char buf[4096], *out;
    if (path[0] != '~')
        return strdup(path);
    rest = path + 1;
    while (*rest && *rest != '/')
        rest++;
    if (rest == path + 1) {
        home = env_get(L->env, SIZE_MAX, "HOME", 4);
        if (!home && getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
            home = pw.pw_dir;
    } else {
        char user[256];
        size_t ulen = (size_t)(rest - path - 1);
        if (ulen < sizeof(user)) {
            memcpy(user, path + 1, ulen);
            user[ulen] = '\0';
            if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res)
                home = pw.pw_dir;
        }
    }
    if (!home)
        return strdup(path);
    if (asprintf(&out, "%s%s", home, rest) < 0)
        return NULL;
    return out;
}

/* A valid program or process name (what: "program name" ...): not empty, < 64 bytes, no ' ', ':'
 * or '/' (as supervisord). */
static int check_name(const char *name, const char *what, char *why, size_t wl)
{
    const char *bad;
    if (!*name) {
        snprintf(why, wl, "empty %s", what);
        return -EINVAL;
    }
    if (strlen(name) >= 64) {
        snprintf(why, wl, "%s longer than 63 bytes: '" SHOW "'", what, name);
        return -EINVAL;
    }
    bad = strpbrk(name, " \t\n:/");
    if (bad) {
        snprintf(why, wl, "invalid %s '" SHOW "': '%c' is not allowed", what, name,
                 *bad == '\n' || *bad == '\t' ? ' ' : *bad);
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------- INI reading */

static int add_section(struct loader *L, const char *name)
{
    struct section *ns = grow(L->secs, &L->cap_secs, L->n_secs + 1, sizeof(*L->secs));
    struct section *s;
    if (!ns)
        return oom(L);
    L->secs = ns;
    s = &L->secs[L->n_secs];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (!s->name)
        return oom(L);
    s->file = L->file;
    s->line = L->lineno;
    L->cur_sec = (long)L->n_secs++;
    L->last_kv = -1;
    return 0;
}

/*
 * inih's reader. Counts lines for messages (Debian's inih has no line
 * numbers), strips Python configparser's inline comments (';' or '#' after
 * whitespace: inih only knows ';'), tracks the section itself (inih cuts
 * section names at 49 bytes), reports syntax errors precisely, and replaces a
 * line longer than inih's 200-byte buffer by a short stand-in whose real
 * key/value the handler takes from the loader.
 */
static char *ini_reader_cb(char *buf, int num, void *stream)
{
    struct loader *L = stream;
    struct loc at;
    ssize_t n;
    char *p, *s, *eq;

    L->cont = 0;
    L->long_pending = 0;
    if (L->rc || num < 8)
        return NULL;
    errno = 0;
    n = getline(&L->line, &L->linecap, L->fp);
    if (n < 0) {
        if (ferror(L->fp)) {
            int e = errno ? errno : EIO;
            at = (struct loc){L->files[L->file].path, L->lineno + 1, NULL, NULL};
            fail(L, -e, &at, "read error: %s", strerror(e));
        }
        return NULL;
    }
    L->lineno++;
    at = (struct loc){L->files[L->file].path, L->lineno, NULL, NULL};
    if (memchr(L->line, '\0', (size_t)n)) {
        fail(L, -EINVAL, &at, "the line holds a NUL byte (is this a text file?)");
        return NULL;
    }
    p = L->line;
    if (L->lineno == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3;
    rstrip(p);
    s = lskip(p);
    if (!*s || *s == ';' || *s == '#') {
        snprintf(buf, (size_t)num, "\n");
        return buf;
    }
    for (char *c = s + 1; *c; c++) {
        if ((*c == ';' || *c == '#') && isspace((unsigned char)c[-1])) {
            *c = '\0';
            break;
        }
    }
    rstrip(s);
    if (s > p && L->last_kv >= 0) { /* indented: continues the previous value */
        L->cont = 1;
        if (strlen(s) + 3 <= (size_t)num) {
            snprintf(buf, (size_t)num, " %s\n", s);
        } else {
            L->long_pending = 1;
            L->long_val = s;
            snprintf(buf, (size_t)num, " -\n");
        }
        return buf;
    }
    if (*s == '[') {
        char *close = strchr(s + 1, ']');
        if (!close) {
            fail(L, -EINVAL, &at, "a section header needs a closing ']': '" SHOW "'", s);
            return NULL;
        }
        if (close[1]) {
            fail(L, -EINVAL, &at, "unexpected text after ']': '" SHOW "'", s);
            return NULL;
        }
        *close = '\0';
        if (!s[1]) {
            fail(L, -EINVAL, &at, "empty section name '[]'");
            return NULL;
        }
        if (add_section(L, s + 1) < 0)
            return NULL;
        snprintf(buf, (size_t)num, "[s]\n");
        return buf;
    }
    eq = strpbrk(s, "=:");
    if (!eq) {
        if (L->cur_sec >= 0)
            at.section = L->secs[L->cur_sec].name;
        fail(L, -EINVAL, &at, "expected 'key = value', a [section] header or a comment: '" SHOW "'",
             s);
        return NULL;
    }
    if (strlen(s) + 2 <= (size_t)num) {
        snprintf(buf, (size_t)num, "%s\n", s);
        return buf;
    }
    *eq = '\0';
    rstrip(s);
    L->long_key = s;
    L->long_val = lskip(eq + 1);
    L->long_pending = 1;
    snprintf(buf, (size_t)num, "k=v\n");
    return buf;
}

static int ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
    struct loader *L = user;
    struct section *S;
    struct loc at = {L->files[L->file].path, L->lineno, NULL, NULL};
    char *key, *val;
    (void)section; /* inih truncates it; the reader keeps the real one */

    if (L->rc)
        return 1;
    if (L->long_pending) {
        if (!L->cont)
            name = L->long_key;
        value = L->long_val;
    }
    if (L->cur_sec < 0) {
        at.key = name;
        fail(L, -EINVAL, &at, "key outside of any [section]");
        return 1;
    }
    S = &L->secs[L->cur_sec];
    at.section = S->name;
    if (L->cont) {
        struct kv *kv = &S->kv[L->last_kv];
        char *nv;
        if (!*kv->val)
            nv = strdup(value);
        else if (asprintf(&nv, "%s\n%s", kv->val, value) < 0)
            nv = NULL;
        if (!nv) {
            oom(L);
            return 1;
        }
        free(kv->val);
        kv->val = nv;
        return 1;
    }
    if (!*name) {
        fail(L, -EINVAL, &at, "a value without a key before '='");
        return 1;
    }
    key = strdup(name);
    val = strdup(value);
    if (!key || !val) {
        free(key);
        free(val);
        oom(L);
        return 1;
    }
    for (char *c = key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (size_t i = 0; i < S->n_kv; i++) {
        if (strcmp(S->kv[i].key, key) == 0) {
            at.key = key;
            warnf(L, &at, "set again: this value replaces the one of line %d", S->kv[i].line);
            free(key);
            free(S->kv[i].val);
            S->kv[i].val = val;
            S->kv[i].line = L->lineno;
            L->last_kv = (long)i;
            return 1;
        }
    }
    {
        struct kv *nkv = grow(S->kv, &S->cap_kv, S->n_kv + 1, sizeof(*S->kv));
        if (!nkv) {
            free(key);
            free(val);
            oom(L);
            return 1;
        }
        S->kv = nkv;
        S->kv[S->n_kv] = (struct kv){key, val, L->lineno};
        L->last_kv = (long)S->n_kv++;
    }
    return 1;
}

static int read_file(struct loader *L, const char *path, const struct loc *from, int depth);

/* Glob special characters in a literal folder name are escaped for glob(3). */
static char *glob_escape(const char *s)
{
    struct sbuf b = {0};
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            sb_addc(&b, '\\');
        sb_addc(&b, *s);
    }
    return sb_take(&b);
}

static int do_include(struct loader *L, size_t si, int depth)
{
    const struct section *S = &L->secs[si];
    size_t file = S->file;
    struct loc at = {L->files[file].path, S->line, "include", "files"};
    const struct kv *fkv = NULL;
    struct xctx x = {.here = L->files[file].here};
    char why[512], *val = NULL, *dir = NULL, *edir = NULL, *save = NULL, *w;
    int r;

    for (size_t i = 0; i < S->n_kv; i++) {
        if (strcmp(S->kv[i].key, "files") == 0) {
            fkv = &S->kv[i];
        } else {
            struct loc k = {at.file, S->kv[i].line, "include", S->kv[i].key};
            warnf(L, &k, "unknown key, ignored");
        }
    }
    if (!fkv)
        return fail(L, -EINVAL, &at, "missing: an [include] section needs 'files = GLOB ...'");
    at.line = fkv->line;
    if (depth >= MAX_INCLUDE_DEPTH)
        return fail(L, -EINVAL, &at, "includes nested deeper than %d files", MAX_INCLUDE_DEPTH);
    r = expand(L, &x, fkv->val, &val, why, sizeof(why));
    if (r == -ENOMEM)
        return oom(L);
    if (r)
        return fail(L, r, &at, "%s", why);
    /* from here on S and L->files may move: use only copies */
    dir = path_dir(at.file);
    edir = dir ? glob_escape(dir) : NULL;
    if (!edir) {
        r = oom(L);
        goto out;
    }
    w = strtok_r(val, " \t\r\n\f\v", &save);
    if (!w)
        warnf(L, &at, "lists no file");
    for (; w && !L->rc; w = strtok_r(NULL, " \t\r\n\f\v", &save)) {
        char *pattern;
        glob_t g;
        int gr;
        if (w[0] == '/' || strcmp(dir, ".") == 0)
            pattern = strdup(w);
        else if (asprintf(&pattern, "%s%s%s", edir, dir[strlen(dir) - 1] == '/' ? "" : "/", w) < 0)
            pattern = NULL;
        if (!pattern) {
            r = oom(L);
            goto out;
        }
        gr = glob(pattern, 0, NULL, &g);
        if (gr == GLOB_NOMATCH) {
            warnf(L, &at, "no file matches '" SHOW "'", pattern);
        } else if (gr != 0) {
            fail(L, gr == GLOB_NOSPACE ? -ENOMEM : -EIO, &at, "cannot expand '" SHOW "'", pattern);
        } else {
            for (size_t k = 0; k < g.gl_pathc && !L->rc; k++) {
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && S_ISDIR(st.st_mode)) {
                    warnf(L, &at, "'" SHOW "' is a folder, skipped", g.gl_pathv[k]);
                    continue;
                }
                read_file(L, g.gl_pathv[k], &at, depth + 1);
            }
            globfree(&g);
        }
        free(pattern);
    }
    r = L->rc;
out:
    free(val);
    free(dir);
    free(edir);
    return r;
}

/* Read one file (its sections and keys), then the files its [include] names. */
static int read_file(struct loader *L, const char *path, const struct loc *from, int depth)
{
    FILE *fp = fopen(path, "re");
    struct srcfile *nf, *f;
    struct stat st;
    size_t idx, first_sec, end_sec;
    int r;

    if (!fp) {
        int e = errno;
        struct loc at = {path, 0, NULL, NULL};
        if (from) /* a configuration error: the line that includes it is wrong */
            return fail(L, e == ENOMEM ? -ENOMEM : -EINVAL, from, "cannot open '" SHOW "': %s",
                        path, strerror(e));
        return fail(L, -e, &at, "cannot open the configuration file: %s", strerror(e));
    }
    r = fstat(fileno(fp), &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (r) {
        int e = -r;
        struct loc at = {path, 0, NULL, NULL};
        fclose(fp);
        if (from)
            return fail(L, -EINVAL, from, "cannot read '" SHOW "': %s", path, strerror(e));
        return fail(L, -e, &at, "cannot read the configuration file: %s", strerror(e));
    }
    for (size_t i = 0; i < L->n_files; i++) {
        if (L->files[i].dev == st.st_dev && L->files[i].ino == st.st_ino) {
            if (L->files[i].active)
                warnf(L, from, "include loop: '" SHOW "' is being read already, skipped", path);
            else
                warnf(L, from, "'" SHOW "' was read already, skipped", path);
            fclose(fp);
            return 0;
        }
    }
    nf = grow(L->files, &L->cap_files, L->n_files + 1, sizeof(*L->files));
    if (!nf) {
        fclose(fp);
        return oom(L);
    }
    L->files = nf;
    idx = L->n_files;
    f = &L->files[idx];
    memset(f, 0, sizeof(*f));
    f->path = strdup(path);
    {
        char *dir = path_dir(path);
        f->here = dir ? realpath(dir, NULL) : NULL;
        if (!f->here && dir)
            f->here = strdup(dir);
        free(dir);
    }
    L->n_files++;
    if (!f->path || !f->here) {
        fclose(fp);
        return oom(L);
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->active = 1;

    L->fp = fp;
    L->file = idx;
    L->lineno = 0;
    L->cur_sec = -1;
    L->last_kv = -1;
    first_sec = L->n_secs;
    r = ini_parse_stream(ini_reader_cb, L, ini_handler_cb, L);
    fclose(fp);
    L->fp = NULL;
    if (!L->rc && r == -2)
        oom(L);
    else if (!L->rc && r != 0) {
        struct loc at = {path, r > 0 ? r : 0, NULL, NULL};
        fail(L, -EINVAL, &at, "syntax error");
    }
    if (L->rc)
        return L->rc;
    end_sec = L->n_secs;
    for (size_t si = first_sec; si < end_sec; si++) {
        if (L->secs[si].file == idx && strcmp(L->secs[si].name, "include") == 0) {
            r = do_include(L, si, depth);
            if (r)
                return r;
        }
    }
    L->files[idx].active = 0;
    return 0;
}

/* ------------------------------------------------------- [procbusd] section */

static int load_daemon(struct loader *L, const struct section *S, struct pbd_daemon_conf *d)
{
    struct xctx x = {.here = L->files[S->file].here};
    char why[512];
    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        struct loc at = {L->files[S->file].path, kv->line, S->name, kv->key};
        char *v = NULL;
        long long n;
        int r;
        static const char *const known[] = {
            "segment", "socket",           "log_level",     "heartbeat_ms",   "sample_ms", "trace",
            "observe", "keep_exited_secs", "trace_ring_kb", "trace_batch_ms", "capacity",  NULL};
        if (!is_one_of(kv->key, known)) {
            warnf(L, &at, "unknown key, ignored");
            continue;
        }
        r = expand(L, &x, kv->val, &v, why, sizeof(why));
        if (r == -ENOMEM)
            return oom(L);
        if (r)
            return fail(L, r, &at, "%s", why);
        trim(v);
        r = 0;
        if (!strcmp(kv->key, "segment") || !strcmp(kv->key, "socket")) {
            char **dst = !strcmp(kv->key, "segment") ? &d->segment : &d->socket;
            if (!*v) {
                snprintf(why, sizeof(why), "empty (remove the line for the default)");
                r = -EINVAL;
            } else {
                free(*dst);
                *dst = v;
                v = NULL;
            }
        } else if (!strcmp(kv->key, "log_level")) {
            if (!strcasecmp(v, "error"))
                d->log_level = 0;
            else if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning"))
                d->log_level = 1;
            else if (!strcasecmp(v, "info"))
                d->log_level = 2;
            else if (!strcasecmp(v, "debug"))
                d->log_level = 3;
            else {
                snprintf(why, sizeof(why), "not one of error, warn, info, debug: '" SHOW "'", v);
                r = -EINVAL;
            }
        } else if (!strcmp(kv->key, "heartbeat_ms") || !strcmp(kv->key, "sample_ms")) {
            r = get_int(v, 1, INT_MAX, &n, why, sizeof(why));
            if (!r)
                *(!strcmp(kv->key, "sample_ms") ? &d->sample_ms : &d->heartbeat_ms) = (int)n;
        } else if (!strcmp(kv->key, "trace")) {
            if (!strcasecmp(v, "auto"))
                d->trace = PBD_TRACE_AUTO;
            else if (!strcasecmp(v, "proc"))
                d->trace = PBD_TRACE_PROC;
            else if (is_one_of(v, truthy))
                d->trace = PBD_TRACE_ON;
            else if (is_one_of(v, falsy))
                d->trace = PBD_TRACE_OFF;
            else {
                snprintf(why, sizeof(why), "not one of auto, on, off, proc: '" SHOW "'", v);
                r = -EINVAL;
            }
        } else if (!strcmp(kv->key, "observe")) {
            if (is_one_of(v, truthy))
                d->observe = 1;
            else if (is_one_of(v, falsy))
                d->observe = 0;
            else {
                snprintf(why, sizeof(why), "not a boolean (true/false): '" SHOW "'", v);
                r = -EINVAL;
            }
        } else if (!strcmp(kv->key, "keep_exited_secs")) {
            r = get_int(v, 0, 86400 * 365, &n, why, sizeof(why));
            if (!r)
                d->keep_exited_secs = (uint32_t)n;
        } else if (!strcmp(kv->key, "trace_batch_ms")) {
            r = get_int(v, 0, 1000, &n, why, sizeof(why));
            if (!r)
                d->trace_batch_ms = (uint32_t)n;
        } else if (!strcmp(kv->key, "trace_ring_kb")) {
            r = get_int(v, 4, 1 << 20, &n, why, sizeof(why));
            if (!r && (n & (n - 1)) != 0) {
                snprintf(why, sizeof(why), "not a power of two: %lld", n);
                r = -EINVAL;
            }
            if (!r)
                d->trace_ring_kb = (uint32_t)n;
        } else { /* capacity */
            r = get_int(v, 1, UINT32_MAX, &n, why, sizeof(why));
            if (!r)
                d->capacity = (uint32_t)n;
        }
        free(v);
        if (r)
            return fail(L, r, &at, "%s", why);
    }
    return 0;
}

/* [supervisord] environment= applies to every program (and to ENV_X), as in supervisord. */
static int load_supervisord_env(struct loader *L, const struct section *S)
{
    struct xctx x = {.here = L->files[S->file].here};
    char why[512];
    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        struct loc at = {L->files[S->file].path, kv->line, S->name, kv->key};
        char *v = NULL;
        int r;
        if (strcmp(kv->key, "environment") != 0)
            continue;
        r = expand(L, &x, kv->val, &v, why, sizeof(why));
        if (!r)
            r = parse_env_pairs(v, &L->genv, &L->n_genv, &L->cap_genv, why, sizeof(why));
        free(v);
        if (r == -ENOMEM)
            return oom(L);
        if (r)
            return fail(L, r, &at, "%s", why);
    }
    return 0;
}

/* ----------------------------------------------------------- [program:x] */

enum pkey {
    PK_COMMAND,
    PK_PROCESS_NAME,
    PK_NUMPROCS,
    PK_NUMPROCS_START,
    PK_PRIORITY,
    PK_AUTOSTART,
    PK_AUTORESTART,
    PK_STARTSECS,
    PK_STARTRETRIES,
    PK_EXITCODES,
    PK_STOPSIGNAL,
    PK_STOPWAITSECS,
    PK_STOPASGROUP,
    PK_KILLASGROUP,
    PK_USER,
    PK_REDIRECT_STDERR,
    PK_STDOUT_LOGFILE,
    PK_STDOUT_MAXBYTES,
    PK_STDOUT_BACKUPS,
    PK_STDERR_LOGFILE,
    PK_STDERR_MAXBYTES,
    PK_STDERR_BACKUPS,
    PK_ENVIRONMENT,
    PK_DIRECTORY,
    PK_UMASK,
    PK_DEPENDS_ON,
    PK_READY_FD,
    PK_READY_LOG,
    PK_BACKOFF,
    PK_BACKOFF_MAX,
    PK_SHELL,
    PK__COUNT
};

static const char *const prog_keys[PK__COUNT + 1] = {
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "environment",
    "directory",
    "umask",
    "depends_on",
    "ready_fd",
    "ready_log",
    "backoff",
    "backoff_max",
    "shell",
    NULL,
};

/* Index of a [program:x] key in prog_keys, or -1. */
static int prog_key_index(const char *key)
{
    for (int k = 0; k < PK__COUNT; k++)
        if (!strcmp(key, prog_keys[k]))
            return k;
    return -1;
}

/* supervisord keys procbusd accepts and ignores (with a warning). */
static const char *const prog_ignored[] = {
    "serverurl",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    NULL,
};

/* Per instance, what the checks after parsing need. */
struct pmeta {
    size_t sec;
    int dep_line; /* line of depends_on, or the section's */
    int name_line;
};

struct pbuild {
    struct loader *L;
    const struct section *S;
    const char *file;
    const char *program;
    const struct kv *kv[PK__COUNT];
    int first; /* the first instance: warnings are given once per section */
    int killasgroup_set;
};

static int get_logfile(struct pbuild *B, const struct loc *at, const char *v, char **path,
                       char *why, size_t wl)
{
    char *p, *dir;
    struct stat st;
    *path = NULL;
    if (!strcasecmp(v, "none") || !strcasecmp(v, "off"))
        return 0;
    if (!strcasecmp(v, "auto")) {
        if (B->first)
            warnf(B->L, at,
                  "AUTO log files are not created by procbusd: the output is discarded (set a "
                  "path, or NONE to silence this warning)");
        return 0;
    }
    if (!strcasecmp(v, "syslog")) {
        if (B->first)
            warnf(B->L, at, "syslog is not supported by procbusd: the output is discarded");
        return 0;
    }
    if (!*v) {
        snprintf(why, wl, "empty (use NONE to discard the output)");
        return -EINVAL;
    }
    p = expand_user(B->L, v);
    if (!p)
        return -ENOMEM;
    if (strchr(p, '/')) {
        dir = path_dir(p);
        if (!dir) {
            free(p);
            return -ENOMEM;
        }
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(why, wl, "the folder '" SHOW "' does not exist", dir);
            free(dir);
            free(p);
            return -EINVAL;
        }
        free(dir);
    }
    *path = p;
    return 0;
}

static int get_user(const char *v, char *why, size_t wl)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    long long uid;
    int found;
    if (!*v) {
        snprintf(why, wl, "empty (remove the line to keep procbusd's user)");
        return -EINVAL;
    }
    if (parse_ll(v, &uid) == 0)
        found = uid >= 0 && uid <= UINT32_MAX &&
                getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res;
    else
        found = getpwnam_r(v, &pw, buf, sizeof(buf), &res) == 0 && res;
    if (!found) {
        snprintf(why, wl, "unknown user: '" SHOW "'", v);
        return -EINVAL;
    }
    return 0;
}

static int get_deps(const char *v, struct pbd_program *p, char *why, size_t wl)
{
    char *copy = strdup(v), *save = NULL, *item;
    int r = 0;
    if (!copy)
        return -ENOMEM;
    p->n_deps = 0;
    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        enum pbd_dep_cond cond = PBD_DEP_RUNNING;
        if (colon) {
            char *c = colon + 1;
            *colon = '\0';
            trim(c);
            if (!strcasecmp(c, "started"))
                cond = PBD_DEP_STARTED;
            else if (!strcasecmp(c, "running"))
                cond = PBD_DEP_RUNNING;
            else if (!strcasecmp(c, "ready"))
                cond = PBD_DEP_READY;
            else if (!strcasecmp(c, "completed"))
                cond = PBD_DEP_COMPLETED;
            else {
                trim(item);
                snprintf(why, wl,
                         "unknown condition '%.40s' for '%.64s' (started, running, ready or "
                         "completed)",
                         c, item);
                r = -EINVAL;
                break;
            }
        }
        trim(item);
        if (!*item) {
            if (colon) {
                snprintf(why, wl, "a condition without a program name: '" SHOW "'", v);
                r = -EINVAL;
                break;
            }
            continue; /* "a, b," */
        }
        if (check_name(item, "program name", why, wl) < 0) {
            r = -EINVAL;
            break;
        }
        if (p->n_deps == PBD_MAX_DEPS) {
            snprintf(why, wl, "more than %d dependencies", PBD_MAX_DEPS);
            r = -EINVAL;
            break;
        }
        snprintf(p->deps[p->n_deps].name, sizeof(p->deps[0].name), "%s", item);
        p->deps[p->n_deps++].cond = cond;
    }
    free(copy);
    return r;
}

/* Words that a shell would have interpreted: warn that they are plain arguments. */
static void warn_shellisms(struct pbuild *B, const struct loc *at, char **argv)
{
    static const char *const ops[] = {"|", "||", "&&", ";", "&", "<", ">", ">>", "2>&1", NULL};
    for (char **a = argv + 1; *a; a++) {
        const char *dollar = strchr(*a, '$');
        if (is_one_of(*a, ops) || !strncmp(*a, "2>", 2) || !strncmp(*a, ">", 1)) {
            warnf(B->L, at,
                  "'%s' is passed to the program as an argument: procbusd runs commands without "
                  "a shell (set shell = true, or use sh -c '...')",
                  *a);
            return;
        }
        if (dollar && (isalpha((unsigned char)dollar[1]) || dollar[1] == '_' || dollar[1] == '{')) {
            warnf(B->L, at,
                  "'" SHOW "' is passed as is: procbusd runs commands without a shell (use "
                  "%%(ENV_NAME)s, or shell = true)",
                  *a);
            return;
        }
    }
}

static int apply_key(struct pbuild *B, struct pbd_program *p, enum pkey k, char **vp,
                     const struct loc *at, char *why, size_t wl)
{
    const char *v = *vp;
    long long n = 0;
    int r = 0;
    switch (k) {
    case PK_COMMAND:
        if (!*v) {
            snprintf(why, wl, "empty");
            return -EINVAL;
        }
        p->command = *vp;
        *vp = NULL;
        return 0;
    case PK_PRIORITY:
        r = get_int(v, INT_MIN, INT_MAX, &n, why, wl);
        p->priority = (int)n;
        return r;
    case PK_AUTOSTART:
        return get_bool(v, &p->autostart, why, wl);
    case PK_AUTORESTART:
        if (!strcasecmp(v, "unexpected"))
            p->autorestart = PBD_RESTART_UNEXPECTED;
        else if (is_one_of(v, truthy))
            p->autorestart = PBD_RESTART_TRUE;
        else if (is_one_of(v, falsy))
            p->autorestart = PBD_RESTART_FALSE;
        else {
            snprintf(why, wl, "not one of true, false, unexpected: '" SHOW "'", v);
            return -EINVAL;
        }
        return 0;
    case PK_STARTSECS:
    case PK_STARTRETRIES:
    case PK_STOPWAITSECS:
        r = get_int(v, 0, INT_MAX, &n, why, wl);
        *(k == PK_STARTSECS      ? &p->startsecs
          : k == PK_STARTRETRIES ? &p->startretries
                                 : &p->stopwaitsecs) = (int)n;
        return r;
    case PK_EXITCODES:
        return get_exitcodes(v, p->exitcodes, &p->n_exitcodes, why, wl);
    case PK_STOPSIGNAL:
        p->stopsignal = pbd_signal_number(v);
        if (p->stopsignal < 0) {
            snprintf(why, wl,
                     "not a signal name or number (TERM, HUP, INT, QUIT, KILL, USR1, USR2 ...): "
                     "'" SHOW "'",
                     v);
            return -EINVAL;
        }
        return 0;
    case PK_STOPASGROUP:
        return get_bool(v, &p->stopasgroup, why, wl);
    case PK_KILLASGROUP:
        B->killasgroup_set = 1;
        return get_bool(v, &p->killasgroup, why, wl);
    case PK_REDIRECT_STDERR:
        return get_bool(v, &p->redirect_stderr, why, wl);
    case PK_SHELL:
        return get_bool(v, &p->shell, why, wl);
    case PK_USER:
        r = get_user(v, why, wl);
        if (!r) {
            p->user = *vp;
            *vp = NULL;
        }
        return r;
    case PK_STDOUT_LOGFILE:
    case PK_STDERR_LOGFILE: {
        struct pbd_logconf *lc = k == PK_STDOUT_LOGFILE ? &p->out : &p->err;
        free(lc->path);
        return get_logfile(B, at, v, &lc->path, why, wl);
    }
    case PK_STDOUT_MAXBYTES:
    case PK_STDERR_MAXBYTES:
        return get_bytes(v, k == PK_STDOUT_MAXBYTES ? &p->out.maxbytes : &p->err.maxbytes, why, wl);
    case PK_STDOUT_BACKUPS:
    case PK_STDERR_BACKUPS:
        r = get_int(v, 0, INT_MAX, &n, why, wl);
        (k == PK_STDOUT_BACKUPS ? &p->out : &p->err)->backups = (int)n;
        return r;
    case PK_DIRECTORY:
        if (!*v) {
            snprintf(why, wl, "empty (remove the line to keep procbusd's folder)");
            return -EINVAL;
        }
        p->directory = *vp;
        *vp = NULL;
        return 0;
    case PK_UMASK:
        return get_umask(v, &p->umask, why, wl);
    case PK_DEPENDS_ON:
        return get_deps(v, p, why, wl);
    case PK_READY_FD:
        r = get_int(v, 3, INT_MAX, &n, why, wl);
        p->ready_fd = (int)n;
        return r;
    case PK_READY_LOG: {
        regex_t re;
        int rc;
        if (!*v) {
            snprintf(why, wl, "empty regular expression");
            return -EINVAL;
        }
        rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char msg[128];
            regerror(rc, &re, msg, sizeof(msg));
            snprintf(why, wl, "bad regular expression '" SHOW "': %s", v, msg);
            return -EINVAL;
        }
        regfree(&re);
        p->ready_log = *vp;
        *vp = NULL;
        return 0;
    }
    case PK_BACKOFF:
        if (!strcasecmp(v, "linear"))
            p->backoff = PBD_BACKOFF_LINEAR;
        else if (!strcasecmp(v, "exponential"))
            p->backoff = PBD_BACKOFF_EXPONENTIAL;
        else {
            snprintf(why, wl, "not one of linear, exponential: '" SHOW "'", v);
            return -EINVAL;
        }
        return 0;
    case PK_BACKOFF_MAX:
        r = get_int(v, 1, INT_MAX, &n, why, wl);
        p->backoff_max = (int)n;
        return r;
    case PK_PROCESS_NAME:
    case PK_NUMPROCS:
    case PK_NUMPROCS_START:
    case PK_ENVIRONMENT:
    case PK__COUNT:
        break;
    }
    return 0;
}

static void program_defaults(struct pbd_program *p)
{
    memset(p, 0, sizeof(*p));
    p->umask = (mode_t)-1;
    p->autostart = 1;
    p->autorestart = PBD_RESTART_UNEXPECTED;
    p->exitcodes[0] = 0;
    p->n_exitcodes = 1;
    p->startsecs = 1;
    p->startretries = 3;
    p->stopsignal = SIGTERM;
    p->stopwaitsecs = 10;
    p->priority = 999;
    p->out.maxbytes = p->err.maxbytes = 50ull * 1024 * 1024;
    p->out.backups = p->err.backups = 10;
    p->ready_fd = -1;
    p->backoff = PBD_BACKOFF_LINEAR;
    p->backoff_max = 60;
    p->numprocs = 1;
}

/* Where a key's message points (its own line, else the section header). */
static struct loc key_loc(const struct pbuild *B, enum pkey k)
{
    struct loc at = {B->file, B->S->line, B->S->name, prog_keys[k]};
    if (B->kv[k])
        at.line = B->kv[k]->line;
    return at;
}

static int add_program(struct loader *L, struct pbd_config *cfg, size_t *cap, struct pmeta **meta,
                       size_t *meta_cap, struct pbd_program *p, const struct pmeta *m)
{
    struct pbd_program *np = grow(cfg->progs, cap, cfg->n_progs + 1, sizeof(*cfg->progs));
    struct pmeta *nm;
    if (!np)
        return oom(L);
    cfg->progs = np;
    nm = grow(*meta, meta_cap, cfg->n_progs + 1, sizeof(**meta));
    if (!nm)
        return oom(L);
    *meta = nm;
    (*meta)[cfg->n_progs] = *m;
    cfg->progs[cfg->n_progs++] = *p;
    memset(p, 0, sizeof(*p));
    return 0;
}

static int build_instance(struct pbuild *B, long long num, long long numprocs, const char *tmpl,
                          struct pbd_config *cfg, size_t *cap, struct pmeta **meta,
                          size_t *meta_cap)
{
    struct loader *L = B->L;
    struct pbd_program p;
    struct pmeta m = {(size_t)(B->S - L->secs), B->S->line, B->S->line};
    struct xctx x = {L->files[B->S->file].here, B->program, 1, num, numprocs, NULL, 0};
    char why[512], *v = NULL, **penv = NULL, **env = NULL, *name = NULL;
    size_t n_penv = 0, cap_penv = 0, n_env = 0, cap_env = 0;
    struct loc at;
    int r = 0;

    program_defaults(&p);
    B->killasgroup_set = 0;
    at = key_loc(B, PK_COMMAND);

    /* environment first: the other values may use its variables as %(ENV_X)s */
    if (B->kv[PK_ENVIRONMENT]) {
        at = key_loc(B, PK_ENVIRONMENT);
        r = expand(L, &x, B->kv[PK_ENVIRONMENT]->val, &v, why, sizeof(why));
        if (!r)
            r = parse_env_pairs(v, &penv, &n_penv, &cap_penv, why, sizeof(why));
        free(v);
        v = NULL;
        if (r)
            goto bad;
        x.penv = penv;
        x.n_penv = n_penv;
    }
    for (size_t i = 0; i < L->n_genv && !r; i++) {
        const char *eq = strchr(L->genv[i], '=');
        r = env_set(&env, &n_env, &cap_env, L->genv[i], (size_t)(eq - L->genv[i]), eq + 1,
                    strlen(eq + 1));
    }
    for (size_t i = 0; i < n_penv && !r; i++) {
        const char *eq = strchr(penv[i], '=');
        r = env_set(&env, &n_env, &cap_env, penv[i], (size_t)(eq - penv[i]), eq + 1,
                    strlen(eq + 1));
    }
    if (r) {
        at = key_loc(B, PK_ENVIRONMENT);
        snprintf(why, sizeof(why), "out of memory");
        goto bad;
    }
    p.env = env;
    env = NULL;

    /* in file order, so that the first bad line is the one reported */
    for (size_t i = 0; i < B->S->n_kv; i++) {
        int k = prog_key_index(B->S->kv[i].key);
        if (k < 0 || k == PK_ENVIRONMENT || k == PK_NUMPROCS || k == PK_NUMPROCS_START ||
            k == PK_PROCESS_NAME)
            continue;
        at = key_loc(B, (enum pkey)k);
        if (k == PK_DEPENDS_ON)
            m.dep_line = at.line;
        r = expand(L, &x, B->kv[k]->val, &v, why, sizeof(why));
        if (!r) {
            trim(v);
            r = apply_key(B, &p, (enum pkey)k, &v, &at, why, sizeof(why));
        }
        free(v);
        v = NULL;
        if (r)
            goto bad;
    }

    /* supervisord: killasgroup defaults to stopasgroup and cannot be off when it is on */
    if (!B->killasgroup_set)
        p.killasgroup = p.stopasgroup;
    if (p.stopasgroup && !p.killasgroup) {
        at = key_loc(B, PK_KILLASGROUP);
        snprintf(why, sizeof(why), "cannot be false when stopasgroup is true (as in supervisord)");
        r = -EINVAL;
        goto bad;
    }

    at = key_loc(B, PK_COMMAND);
    if (p.shell) {
        p.argv = calloc(4, sizeof(*p.argv));
        if (p.argv) {
            p.argv[0] = strdup("/bin/sh");
            p.argv[1] = strdup("-c");
            p.argv[2] = strdup(p.command);
        }
        if (!p.argv || !p.argv[0] || !p.argv[1] || !p.argv[2]) {
            r = -ENOMEM;
            goto bad;
        }
    } else {
        const char *reason = NULL;
        p.argv = pbd_split_command(p.command, &reason);
        if (!p.argv) {
            snprintf(why, sizeof(why), "%s: '" SHOW "'", reason ? reason : "cannot split",
                     p.command);
            r = reason && !strcmp(reason, "out of memory") ? -ENOMEM : -EINVAL;
            goto bad;
        }
        if (B->first)
            warn_shellisms(B, &at, p.argv);
    }

    if (p.redirect_stderr && p.err.path) {
        if (B->first) {
            at = key_loc(B, PK_STDERR_LOGFILE);
            warnf(L, &at,
                  "redirect_stderr is true: stderr goes to stdout_logfile, this file is not used");
        }
        free(p.err.path);
        p.err.path = NULL;
    }
    for (int s = 0; s < 2; s++) {
        struct pbd_logconf *lc = s ? &p.err : &p.out;
        enum pkey fk = s ? PK_STDERR_LOGFILE : PK_STDOUT_LOGFILE;
        enum pkey mk = s ? PK_STDERR_MAXBYTES : PK_STDOUT_MAXBYTES;
        if (!lc->path)
            continue;
        if (!strncmp(lc->path, "/dev/", 5) && lc->maxbytes) {
            if (B->first) {
                at = key_loc(B, B->kv[mk] ? mk : fk);
                warnf(L, &at, "'" SHOW "' is a device: rotation disabled (set %s = 0)", lc->path,
                      prog_keys[mk]);
            }
            lc->maxbytes = 0;
        } else if (numprocs > 1 && B->first && strncmp(lc->path, "/dev/", 5) &&
                   !strstr(B->kv[fk]->val, "%(process_num)")) {
            at = key_loc(B, fk);
            warnf(L, &at,
                  "all %lld instances write to the same file; add %%(process_num)d to the path",
                  numprocs);
        }
    }

    /* the instance's name */
    at = key_loc(B, PK_PROCESS_NAME);
    m.name_line = at.line;
    r = expand(L, &x, tmpl, &name, why, sizeof(why));
    if (!r) {
        trim(name);
        r = check_name(name, "process name", why, sizeof(why));
    }
    if (r)
        goto bad;
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.group, sizeof(p.group), "%s", B->program);
    p.process_num = (int)num;
    p.numprocs = (int)numprocs;
    p.source_file = strdup(B->file);
    p.source_line = B->S->line;
    if (!p.source_file) {
        r = -ENOMEM;
        goto bad;
    }
    free(name);
    pbd_free_argv(penv);
    r = add_program(L, cfg, cap, meta, meta_cap, &p, &m);
    pbd_program_clear(&p);
    return r;

bad:
    free(name);
    pbd_free_argv(penv);
    pbd_free_argv(env);
    pbd_program_clear(&p);
    if (r == -ENOMEM)
        return oom(L);
    return fail(L, r, &at, "%s", why);
}

static int load_program(struct loader *L, size_t si, struct pbd_config *cfg, size_t *cap,
                        struct pmeta **meta, size_t *meta_cap)
{
    const struct section *S = &L->secs[si];
    struct pbuild B = {.L = L, .S = S, .file = L->files[S->file].path, .first = 1};
    struct loc at = {B.file, S->line, S->name, NULL};
    char why[512], program[64], *v = NULL;
    const char *raw = S->name + strlen("program:");
    long long numprocs = 1, start = 0;
    const char *tmpl;
    struct xctx x;
    size_t len;

    while (isspace((unsigned char)*raw))
        raw++;
    len = strlen(raw);
    while (len && isspace((unsigned char)raw[len - 1]))
        len--;
    if (len >= sizeof(program))
        return fail(L, -EINVAL, &at, "program name longer than 63 bytes");
    memcpy(program, raw, len);
    program[len] = '\0';
    if (check_name(program, "program name", why, sizeof(why)) < 0)
        return fail(L, -EINVAL, &at, "%s", why);
    B.program = program;

    for (size_t i = 0; i < S->n_kv; i++) {
        const struct kv *kv = &S->kv[i];
        struct loc k = {B.file, kv->line, S->name, kv->key};
        int j = prog_key_index(kv->key);
        if (j >= 0) {
            B.kv[j] = kv;
            continue;
        }
        if (is_one_of(kv->key, prog_ignored))
            warnf(L, &k, "supervisord key ignored by procbusd");
        else
            warnf(L, &k, "unknown key, ignored");
    }
    if (!B.kv[PK_COMMAND]) {
        at.key = "command";
        return fail(L, -EINVAL, &at, "missing: every [program:x] needs a command");
    }

    x = (struct xctx){L->files[S->file].here, program, 0, 0, 0, NULL, 0};
    if (B.kv[PK_NUMPROCS] || B.kv[PK_NUMPROCS_START]) {
        for (int k = PK_NUMPROCS; k <= PK_NUMPROCS_START; k++) {
            long long n;
            int r;
            if (!B.kv[k])
                continue;
            at = key_loc(&B, (enum pkey)k);
            r = expand(L, &x, B.kv[k]->val, &v, why, sizeof(why));
            if (!r) {
                trim(v);
                r = k == PK_NUMPROCS ? get_int(v, 1, MAX_NUMPROCS, &n, why, sizeof(why))
                                     : get_int(v, 0, INT_MAX - MAX_NUMPROCS, &n, why, sizeof(why));
            }
            free(v);
            v = NULL;
            if (r == -ENOMEM)
                return oom(L);
            if (r)
                return fail(L, r, &at, "%s", why);
            *(k == PK_NUMPROCS ? &numprocs : &start) = n;
        }
    }
    tmpl = B.kv[PK_PROCESS_NAME] ? B.kv[PK_PROCESS_NAME]->val : "%(program_name)s";
    if (numprocs > 1 && !strstr(tmpl, "%(process_num)")) {
        at = key_loc(&B, PK_PROCESS_NAME);
        return fail(L, -EINVAL, &at,
                    "must contain %%(process_num) when numprocs > 1 (as in supervisord), e.g. "
                    "%%(program_name)s_%%(process_num)02d");
    }
    for (long long i = 0; i < numprocs; i++) {
        int r = build_instance(&B, start + i, numprocs, tmpl, cfg, cap, meta, meta_cap);
        if (r)
            return r;
        B.first = 0;
    }
    return 0;
}

/* ------------------------------------------------ names and dependencies */

struct name_ix {
    const char *name;
    size_t i;
};

static int cmp_name_ix(const void *a, const void *b)
{
    const struct name_ix *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int check_names(struct loader *L, const struct pbd_config *cfg, const struct pmeta *meta,
                       struct name_ix *ix)
{
    size_t dup = SIZE_MAX, orig = 0;
    for (size_t i = 0; i < cfg->n_progs; i++)
        ix[i] = (struct name_ix){cfg->progs[i].name, i};
    qsort(ix, cfg->n_progs, sizeof(*ix), cmp_name_ix);
    for (size_t i = 1; i < cfg->n_progs; i++) {
        if (!strcmp(ix[i].name, ix[i - 1].name) && (i < 2 || strcmp(ix[i].name, ix[i - 2].name)) &&
            ix[i].i < dup) {
            dup = ix[i].i; /* the second definition of a name; the earliest such */
            orig = ix[i - 1].i;
        }
    }
    if (dup != SIZE_MAX) {
        const struct pbd_program *a = &cfg->progs[orig], *b = &cfg->progs[dup];
        const struct section *S = &L->secs[meta[dup].sec];
        struct loc at = {b->source_file, meta[dup].name_line, S->name, "process_name"};
        return fail(L, -EINVAL, &at,
                    "duplicate process name '%s' (also made by [program:%s] at %s:%d)", b->name,
                    a->group, a->source_file, a->source_line);
    }
    return 0;
}

static const struct name_ix *find_ix(const struct name_ix *ix, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix[mid].name, name);
        if (c == 0)
            return &ix[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Every dependency names a known instance or program; "ready" targets have
 * readiness configured; the graph has no cycle. ix is sorted by name.
 */
static int check_deps(struct loader *L, const struct pbd_config *cfg, const struct pmeta *meta,
                      const struct name_ix *ix)
{
    size_t n = cfg->n_progs, n_edges = 0, e = 0, top;
    size_t *start = NULL, *adj = NULL, *stk = NULL, *pos = NULL;
    unsigned char *color = NULL;
    int r = 0;

    /* pass 1: resolve and count; pass 2: fill the adjacency (CSR) */
    start = calloc(n + 1, sizeof(*start));
    if (!start)
        return oom(L);
    for (int pass = 0; pass < 2 && !r; pass++) {
        if (pass == 1) {
            adj = calloc(n_edges + 1, sizeof(*adj));
            if (!adj) {
                r = oom(L);
                break;
            }
        }
        e = 0;
        for (size_t i = 0; i < n && !r; i++) {
            const struct pbd_program *p = &cfg->progs[i];
            start[i] = e;
            for (int d = 0; d < p->n_deps && !r; d++) {
                const struct pbd_dep *dep = &p->deps[d];
                const struct name_ix *hit = find_ix(ix, n, dep->name);
                size_t lo = hit ? hit->i : 0, hi = hit ? hit->i + 1 : n, found = 0;
                for (size_t j = lo; j < hi; j++) {
                    const struct pbd_program *t = &cfg->progs[j];
                    if (!hit && strcmp(t->group, dep->name))
                        continue;
                    found++;
                    if (pass == 0 && dep->cond == PBD_DEP_READY && t->ready_fd < 0 &&
                        !t->ready_log) {
                        struct loc at = {p->source_file, meta[i].dep_line,
                                         L->secs[meta[i].sec].name, "depends_on"};
                        r = fail(L, -EINVAL, &at,
                                 "'%s:ready' but %s has neither ready_fd nor ready_log, so it "
                                 "never becomes ready",
                                 dep->name, t->name);
                        break;
                    }
                    if (pass == 1)
                        adj[e] = j;
                    e++;
                }
                if (!found && !r) {
                    struct loc at = {p->source_file, meta[i].dep_line, L->secs[meta[i].sec].name,
                                     "depends_on"};
                    r = fail(L, -EINVAL, &at, "unknown program '%s'", dep->name);
                }
            }
        }
        start[n] = e;
        n_edges = e;
    }
    if (r)
        goto out;

    /* iterative DFS; a grey target is a cycle */
    color = calloc(n ? n : 1, 1);
    stk = calloc(n ? n : 1, sizeof(*stk));
    pos = calloc(n ? n : 1, sizeof(*pos));
    if (!color || !stk || !pos) {
        r = oom(L);
        goto out;
    }
    for (size_t s = 0; s < n && !r; s++) {
        if (color[s])
            continue;
        top = 0;
        stk[top] = s;
        pos[top] = start[s];
        color[s] = 1;
        for (;;) {
            size_t u = stk[top];
            if (pos[top] < start[u + 1]) {
                size_t v = adj[pos[top]++];
                if (color[v] == 1) {
                    struct sbuf b = {0};
                    size_t k = 0;
                    struct loc at = {cfg->progs[v].source_file, meta[v].dep_line,
                                     L->secs[meta[v].sec].name, "depends_on"};
                    while (stk[k] != v)
                        k++;
                    for (; k <= top; k++) {
                        sb_add(&b, cfg->progs[stk[k]].name);
                        sb_add(&b, " -> ");
                    }
                    sb_add(&b, cfg->progs[v].name);
                    if (b.oom) {
                        free(sb_take(&b));
                        r = oom(L);
                    } else {
                        r = fail(L, -EINVAL, &at, "dependency cycle: %s", b.p);
                        free(sb_take(&b));
                    }
                    break;
                }
                if (color[v] == 0) {
                    color[v] = 1;
                    stk[++top] = v;
                    pos[top] = start[v];
                }
            } else {
                color[u] = 2;
                if (top == 0)
                    break;
                top--;
            }
        }
    }
out:
    free(start);
    free(adj);
    free(color);
    free(stk);
    free(pos);
    return r;
}

/* -------------------------------------------------------------- building */

static int is_ignored_section(const char *name)
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

static int build(struct loader *L, struct pbd_config *cfg)
{
    size_t cap = 0, meta_cap = 0;
    struct pmeta *meta = NULL;
    struct name_ix *ix = NULL;
    int r = 0;

    for (size_t si = 0; si < L->n_secs && !r; si++) {
        const struct section *S = &L->secs[si];
        struct loc at = {L->files[S->file].path, S->line, S->name, NULL};
        if (!strcmp(S->name, "include"))
            continue;
        if (!strcmp(S->name, "procbusd")) {
            r = load_daemon(L, S, &cfg->daemon);
        } else if (!strncmp(S->name, "program:", 8)) {
            for (size_t sj = 0; sj < si; sj++) {
                if (!strcmp(L->secs[sj].name, S->name)) {
                    r = fail(L, -EINVAL, &at,
                             "duplicate section (first at %s:%d; supervisord would merge them, "
                             "procbusd wants one)",
                             L->files[L->secs[sj].file].path, L->secs[sj].line);
                    break;
                }
            }
        } else if (is_ignored_section(S->name)) {
            int has_env = 0;
            if (!strcmp(S->name, "supervisord")) {
                for (size_t i = 0; i < S->n_kv; i++)
                    has_env |= !strcmp(S->kv[i].key, "environment");
                r = load_supervisord_env(L, S);
            }
            if (r)
                break;
            if (has_env)
                warnf(L, &at,
                      "section ignored by procbusd, except environment (added to every "
                      "program)");
            else
                warnf(L, &at, "section ignored by procbusd");
        } else {
            r = fail(L, -EINVAL, &at,
                     "unknown section (procbusd reads [procbusd], [program:NAME] and [include], "
                     "and ignores supervisord's own)");
        }
    }
    for (size_t si = 0; si < L->n_secs && !r; si++)
        if (!strncmp(L->secs[si].name, "program:", 8))
            r = load_program(L, si, cfg, &cap, &meta, &meta_cap);
    if (!r && cfg->n_progs) {
        ix = calloc(cfg->n_progs, sizeof(*ix));
        if (!ix)
            r = oom(L);
        if (!r)
            r = check_names(L, cfg, meta, ix);
        if (!r)
            r = check_deps(L, cfg, meta, ix);
    }
    free(ix);
    free(meta);
    return r;
}

static void loader_free(struct loader *L)
{
    for (size_t i = 0; i < L->n_secs; i++) {
        for (size_t k = 0; k < L->secs[i].n_kv; k++) {
            free(L->secs[i].kv[k].key);
            free(L->secs[i].kv[k].val);
        }
        free(L->secs[i].kv);
        free(L->secs[i].name);
    }
    free(L->secs);
    for (size_t i = 0; i < L->n_files; i++) {
        free(L->files[i].path);
        free(L->files[i].here);
    }
    free(L->files);
    pbd_free_argv(L->genv);
    free(L->line);
}

/* ------------------------------------------------------------------- API */

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

    cfg->daemon.log_level = 2;
    cfg->daemon.heartbeat_ms = 500;
    cfg->daemon.sample_ms = 1000;
    cfg->daemon.trace = PBD_TRACE_AUTO;
    cfg->daemon.keep_exited_secs = 60;
    cfg->daemon.trace_ring_kb = 256;
    cfg->daemon.capacity = 4096;

    if (!path || !*path) {
        r = fail(&L, -EINVAL, NULL, "no configuration file given");
    } else {
        r = read_file(&L, path, NULL, 0);
        if (!r)
            r = build(&L, cfg);
    }
    if (!r) {
        cfg->path = strdup(path);
        cfg->files = calloc(L.n_files + 1, sizeof(*cfg->files));
        if (!cfg->path || !cfg->files)
            r = oom(&L);
        for (size_t i = 0; !r && i < L.n_files; i++) {
            cfg->files[i] = strdup(L.files[i].path);
            if (!cfg->files[i])
                r = oom(&L);
            cfg->n_files = i + 1;
        }
    }
    loader_free(&L);
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
           env_eq(a->env, b->env) && str_eq(a->user, b->user) && a->umask == b->umask &&
           a->redirect_stderr == b->redirect_stderr && log_eq(&a->out, &b->out) &&
           log_eq(&a->err, &b->err) && a->ready_fd == b->ready_fd &&
           str_eq(a->ready_log, b->ready_log);
}
