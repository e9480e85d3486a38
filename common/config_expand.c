/* config_expand.c - %(name)s expansions in values, as supervisord does them (Python's %). */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <stdint.h>

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
    if (IS("group_name") && x->group) {
        *s = x->group;
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
        const char *v = pbd_cfg_env_get(x->penv, x->n_penv, name + 4, len - 4);
        if (!v)
            v = pbd_cfg_env_get(L->genv, L->n_genv, name + 4, len - 4);
        if (!v)
            v = pbd_cfg_env_get(L->env, SIZE_MAX, name + 4, len - 4);
        if (v) {
            *s = v;
            return 1;
        }
    }
    return 0;
}

int pbd_cfg_expand(const struct loader *L, const struct xctx *x, const char *in, char **out,
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
