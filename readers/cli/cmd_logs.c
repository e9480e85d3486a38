/* cmd_logs.c - procbus logs: a program's captured output (its log files), optionally followed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_cmds.h"
#include "cli_follow.h"
#include "cli_ctl.h"
#include "config.h"
#include "logfile.h"

static void logs_usage(FILE *f)
{
    fprintf(f, "usage: procbus [-c FILE] logs NAME [-f] [-n N]\n"
               "Print the captured output of program NAME (or GROUP:NAME): its stdout_logfile\n"
               "and, when separate, its stderr_logfile, as procbusd says (AUTO logs too), or\n"
               "as configured in FILE (-c, or $PROCBUS_CONFIG).\n"
               "  -n, --lines N   the last N lines of each file (default 10)\n"
               "  -f, --follow    keep printing what is appended (survives rotation) until\n"
               "                  interrupted\n");
}

/* A log file being followed: where we are in which file. */
struct tail {
    const char *path;
    int fd; /* -1: not open (not there yet) */
    dev_t dev;
    ino_t ino;
    off_t off;
};

static void tail_open(struct tail *t, int at_end)
{
    struct stat st;

    t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0 || fstat(t->fd, &st) < 0) {
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
        return;
    }
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->off = at_end ? st.st_size : 0;
}

/* Copy what was appended to stdout; reopen when the file was rotated. */
static void tail_poll(struct tail *t)
{
    struct stat st;
    char buf[16384];
    ssize_t n;

    if (t->fd < 0) {
        tail_open(t, 0);
        if (t->fd < 0)
            return;
    }
    for (;;) {
        n = pread(t->fd, buf, sizeof(buf), t->off);
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
        t->off += n;
    }
    fflush(stdout);
    if (stat(t->path, &st) < 0 || st.st_ino != t->ino || st.st_dev != t->dev) {
        close(t->fd); /* rotated (or removed): the rest went to the old file, read above */
        t->fd = -1;
        tail_open(t, 0);
    } else if (st.st_size < t->off) {
        t->off = 0; /* truncated */
    }
}

/* The program's log files into paths[] (stdout's, then stderr's when separate); how many, or -1
 * (message printed) with *rc the exit code. */
static int log_paths(const struct cli_opts *o, const char *name, struct cli_logs *logs,
                     const char *paths[2], int *rc)
{
    int np = 0;

    *rc = cli_log_paths(o, "procbus logs", name, logs);
    if (*rc != 0)
        return -1;
    if (logs->path[0][0] != '\0')
        paths[np++] = logs->path[0];
    if (logs->path[1][0] != '\0' && (np == 0 || strcmp(logs->path[1], paths[0]) != 0))
        paths[np++] = logs->path[1];
    if (np == 0) {
        fprintf(stderr,
                "procbus logs: program '%s' has no log file (its stdout_logfile and "
                "stderr_logfile are NONE)\n",
                name);
        *rc = CLI_EX_FAIL;
        return -1;
    }
    return np;
}

int cli_cmd_logs(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"follow", no_argument, NULL, 'f'},
                                       {"lines", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *paths[2];
    struct cli_logs logs;
    struct tail tl[2];
    int np, follow = 0, lines = 10, opt, i, rc = CLI_EX_OK;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "fn:h", lo, NULL)) != -1) {
        if (opt == 'f') {
            follow = 1;
        } else if (opt == 'n') {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 1000000000) {
                fprintf(stderr, "procbus logs: -n wants a number of lines, not '%s'\n", optarg);
                return CLI_EX_USAGE;
            }
            lines = (int)v;
        } else if (opt == 'h') {
            logs_usage(stdout);
            return CLI_EX_OK;
        } else {
            logs_usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "procbus logs: give one program NAME (see procbus logs --help)\n");
        return CLI_EX_USAGE;
    }
    np = log_paths(o, argv[optind], &logs, paths, &rc);
    if (np < 0)
        return rc;
    for (i = 0; i < np; i++) {
        int trc;
        if (np > 1)
            printf("%s==> %s <==\n", i ? "\n" : "", paths[i]);
        fflush(stdout);
        trc = pbd_log_tail(paths[i], lines, STDOUT_FILENO);
        if (trc == -ENOENT)
            fprintf(stderr, "procbus logs: %s does not exist yet (has %s run?)\n", paths[i],
                    argv[optind]);
        else if (trc < 0 && trc != -EPIPE) {
            fprintf(stderr, "procbus logs: cannot read %s: %s\n", paths[i], strerror(-trc));
            return CLI_EX_FAIL;
        }
        tl[i].path = paths[i];
        tail_open(&tl[i], 1);
    }
    if (follow) {
        cli_catch_stop_signal(SIGINT);
        cli_catch_stop_signal(SIGTERM);
        while (!cli_stop_requested) {
            for (i = 0; i < np; i++)
                tail_poll(&tl[i]);
            usleep(200000);
        }
    }
    for (i = 0; i < np; i++)
        if (tl[i].fd >= 0)
            close(tl[i].fd);
    return CLI_EX_OK;
}
