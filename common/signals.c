/* signals.c - Linux signal names to numbers, as configuration files and the CLI write them. */
#define _GNU_SOURCE
#include "signals.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>

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
