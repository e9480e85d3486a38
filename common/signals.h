/* signals.h - Linux signal names to numbers, as configuration files and the CLI write them. */
#ifndef PROCBUS_SIGNALS_H
#define PROCBUS_SIGNALS_H

/* "SIGTERM", "TERM", "term", "15" -> 15 (any Linux signal name, with or
 * without SIG, case-insensitive; RTMIN/RTMAX; numbers 1.._NSIG-1); -1 if
 * unknown or NULL. No allocation, thread-safe. */
int pbd_signal_number(const char *name);

#endif /* PROCBUS_SIGNALS_H */
