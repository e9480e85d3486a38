/* diag.c - procbusd's own messages on stderr: one line each, "procbusd: LEVEL: text". */
#include "diag.h"

#include <stdio.h>
#include <unistd.h>

void pbd_vdiag(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *name = level >= PBD_L_ERR && level <= PBD_L_DEBUG ? names[level] : "debug";
    char line[1024];
    va_list again;
    int head, len;

    /* one write(2) per line: cheap on the loop's path, and never interleaved with another
     * writer's line on a shared pipe or file (O_APPEND) */
    va_copy(again, ap);
    head = snprintf(line, sizeof(line), "procbusd: %s: ", name);
    len = vsnprintf(line + head, sizeof(line) - (size_t)head, fmt, again);
    va_end(again);
    if (len >= 0 && (size_t)head + (size_t)len + 1 < sizeof(line)) {
        line[head + len] = '\n';
        fflush(stderr); /* (stderr is unbuffered; nothing of its own is pending) */
        if (write(STDERR_FILENO, line, (size_t)head + (size_t)len + 1) < 0) {
            /* nowhere to say it */
        }
        return;
    }
    fprintf(stderr, "procbusd: %s: ", name); /* a long line: in pieces */
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
