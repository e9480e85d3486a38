/* config_msg.c - the configuration parser's messages: "FILE:LINE: [SECTION] KEY: reason". */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <stdarg.h>

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

int pbd_cfg_fail(struct loader *L, int rc, const struct loc *at, const char *fmt, ...)
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

int pbd_cfg_oom(struct loader *L)
{
    return pbd_cfg_fail(L, -ENOMEM, NULL, "out of memory");
}

void pbd_cfg_warn(struct loader *L, const struct loc *at, const char *fmt, ...)
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
