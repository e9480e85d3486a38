/* diag.h - procbusd's own messages on stderr: one line each, "procbusd: LEVEL: text". */
#ifndef PROCBUSD_DIAG_H
#define PROCBUSD_DIAG_H

#include <stdarg.h>

/* Message levels, as [procbusd] log_level and --log-level number them. */
enum pbd_level { PBD_L_ERR = 0, PBD_L_WARN, PBD_L_INFO, PBD_L_DEBUG };

/*
 * Print one line "procbusd: LEVEL: <fmt ...>\n" on stderr, whatever the
 * configured level (callers that filter by level use pbd_say, daemon_int.h).
 * `level` is an enum pbd_level. Never fails (stderr errors are ignored).
 */
void pbd_diag(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pbd_diag with a va_list. */
void pbd_vdiag(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif /* PROCBUSD_DIAG_H */
