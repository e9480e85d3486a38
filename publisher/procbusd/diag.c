/* diag.c - procbusd's own messages on stderr: one line each, "procbusd: LEVEL: text". */
#include "diag.h"

#include <stdio.h>

void pbd_vdiag(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    fprintf(stderr,
            "procbusd: %s: ", level >= PBD_L_ERR && level <= PBD_L_DEBUG ? names[level] : "debug");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void pbd_diag(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pbd_vdiag(level, fmt, ap);
    va_end(ap);
}
