/* cli_fmt.h - how the procbus command spells durations, times, exits, sizes and command lines. */
#ifndef PROCBUS_CLI_FMT_H
#define PROCBUS_CLI_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "procbus.h"

/*
 * Every cli_fmt_* writes a NUL-terminated string into buf (len bytes, > 0),
 * truncating what does not fit. None fails; none allocates.
 */

/* "H:MM:SS", or "N days, H:MM:SS" past a day (status, get). */
void cli_fmt_duration(char *buf, size_t len, uint64_t ns);
/* "HH:MM:SS", or "NdHHh" past a day (ps, top: fixed width). */
void cli_fmt_short_duration(char *buf, size_t len, uint64_t ns);
/* How a run ended: "exit status 3", "terminated by SIGKILL (core dumped)", "not started". */
void cli_fmt_exit_ev(char *buf, size_t len, uint8_t kind, int32_t code, int core);
/* cli_fmt_exit_ev of a record's last exit. */
void cli_fmt_exit(char *buf, size_t len, const struct procbus_proc *p);
/* Local time "2026-11-27 12:42:01" (with_ms: ".123" appended); "-" for 0. */
void cli_fmt_time(char *buf, size_t len, uint64_t realtime_ns, int with_ms);
/* 1234K / 56M / 78G. */
void cli_fmt_bytes(char *buf, size_t len, uint64_t bytes);
/* CPU time "12.34s". */
void cli_fmt_cpu(char *buf, size_t len, uint64_t cpu_ns);
/* The pid column: the pid while the process runs (a traced process keeps it after its exit:
 * it is what identifies it), else "-". */
void cli_fmt_pid(char *buf, size_t len, const struct procbus_proc *p);
/* The uptime column at wall time `now_ns`: cli_fmt_short_duration of the current run, or "-". */
void cli_fmt_uptime(char *buf, size_t len, const struct procbus_proc *p, uint64_t now_ns);
/* The command line: its arguments separated by spaces, each made safe for a terminal
 * (pb_text_safe: control characters and stray bytes escaped), "..." if truncated. buf should
 * hold CLI_CMDLINE_MAX bytes. */
#define CLI_CMDLINE_MAX (4 * PROCBUS_CMDLINE_LEN + 8)
void cli_fmt_cmdline(char *buf, size_t len, const struct procbus_proc *p);

/* "30s", "500ms", "2m", "1h", "10" (seconds) -> milliseconds; -1 if malformed or negative. */
long long cli_parse_duration_ms(const char *s);

#endif /* PROCBUS_CLI_FMT_H */
