/* cli_fmt.c - how the procbus command spells durations, times, exits, sizes and command lines. */
#define _GNU_SOURCE
#include "cli_fmt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_proc.h"
#include "textsafe.h"
#include "util.h"

void cli_fmt_duration(char *buf, size_t len, uint64_t ns)
{
    uint64_t s = ns / PB_NS_PER_SEC;

    if (s >= 86400)
        snprintf(buf, len, "%llu days, %llu:%02llu:%02llu", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600), (unsigned long long)(s % 3600 / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

void cli_fmt_short_duration(char *buf, size_t len, uint64_t ns)
{
    uint64_t s = ns / PB_NS_PER_SEC;

    if (s >= 86400)
        snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
    else
        snprintf(buf, len, "%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

void cli_fmt_exit_ev(char *buf, size_t len, uint8_t kind, int32_t code, int core)
{
    if (kind == PROCBUS_EXIT_CODE)
        snprintf(buf, len, "exit status %d", code);
    else if (kind == PROCBUS_EXIT_SIGNAL)
        snprintf(buf, len, "terminated by SIG%s%s", sigabbrev_np(code) ? sigabbrev_np(code) : "?",
                 core ? " (core dumped)" : "");
    else
        snprintf(buf, len, "not started");
}

void cli_fmt_exit(char *buf, size_t len, const struct procbus_proc *p)
{
    if (p->exit_kind == PROCBUS_EXIT_NONE && (p->flags & PROCBUS_F_EXIT_UNKNOWN))
        snprintf(buf, len, "status unknown"); /* it ended while nothing could see how */
    else
        cli_fmt_exit_ev(buf, len, p->exit_kind, p->exit_code,
                        (p->flags & PROCBUS_F_CORE_DUMPED) != 0);
}

void cli_fmt_time(char *buf, size_t len, uint64_t ns, int with_ms)
{
    time_t t = (time_t)(ns / PB_NS_PER_SEC);
    struct tm tm;
    size_t n;

    if (ns == 0) {
        snprintf(buf, len, "-");
        return;
    }
    localtime_r(&t, &tm);
    n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    if (with_ms && n < len)
        snprintf(buf + n, len - n, ".%03u", (unsigned)(ns / 1000000ull % 1000));
}

void cli_fmt_bytes(char *buf, size_t len, uint64_t b)
{
    if (b >= 10ull << 30)
        snprintf(buf, len, "%lluG", (unsigned long long)(b >> 30));
    else if (b >= 10ull << 20)
        snprintf(buf, len, "%lluM", (unsigned long long)(b >> 20));
    else
        snprintf(buf, len, "%lluK", (unsigned long long)(b >> 10));
}

void cli_fmt_cpu(char *buf, size_t len, uint64_t cpu_ns)
{
    snprintf(buf, len, "%llu.%02llus", (unsigned long long)(cpu_ns / PB_NS_PER_SEC),
             (unsigned long long)(cpu_ns / 10000000ull % 100));
}

void cli_fmt_pid(char *buf, size_t len, const struct procbus_proc *p)
{
    snprintf(buf, len, cli_live(p) || (p->name[0] == '\0' && p->pid > 0) ? "%d" : "-", p->pid);
}

void cli_fmt_uptime(char *buf, size_t len, const struct procbus_proc *p, uint64_t now_ns)
{
    if (cli_live(p) && p->start_realtime_ns != 0 && now_ns > p->start_realtime_ns)
        cli_fmt_short_duration(buf, len, now_ns - p->start_realtime_ns);
    else
        snprintf(buf, len, "-");
}

void cli_fmt_cmdline(char *buf, size_t len, const struct procbus_proc *p)
{
    size_t i = 0, n = p->cmdline_len < PROCBUS_CMDLINE_LEN ? p->cmdline_len : PROCBUS_CMDLINE_LEN,
           used = 0;

    buf[0] = '\0';
    while (i < n && used + 1 < len) { /* NUL-separated arguments, one space between */
        size_t arg = strnlen(p->cmdline + i, n - i);
        if (arg > 0) {
            if (used > 0)
                buf[used++] = ' ';
            pb_text_safe(buf + used, len - used, p->cmdline + i, arg, PB_TEXT_TERMINAL);
            used += strlen(buf + used);
        }
        i += arg + 1;
    }
    buf[used < len ? used : len - 1] = '\0';
    if (p->flags & PROCBUS_F_CMDLINE_TRUNCATED && used + 4 < len)
        strcat(buf, "...");
}

long long cli_parse_duration_ms(const char *s)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-')
        return -1;
    v = strtod(s, &end);
    if (end == s || v < 0 || v > 1e9)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return (long long)(v * 1000.0);
    if (strcmp(end, "ms") == 0)
        return (long long)v;
    if (strcmp(end, "m") == 0)
        return (long long)(v * 60000.0);
    if (strcmp(end, "h") == 0)
        return (long long)(v * 3600000.0);
    return -1;
}
