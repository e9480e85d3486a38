/* cli.h - what every file of the procbus command shares: the global options and the exit codes. */
#ifndef PROCBUS_CLI_H
#define PROCBUS_CLI_H

/*
 * The command's files form a one-way graph (no file calls into one above it):
 *   main.c        options, the command table, help generated from it, dispatch
 *   cmd_*.c       one command or one small family each (entry points in cli_cmds.h); they call
 *                 the helpers below, never each other
 *   cli_json      JSON objects                      -> cli_fmt
 *   cli_fmt       formatting, duration parsing      -> cli_proc
 *   cli_follow    the one event-ring follower, stop signals
 *   cli_segment   opening the segment, liveness warning, whole-table reads
 *   cli_proc      labels, liveness of a record, sort order, the one process-tree builder
 *   cli.h         this file: options and exit codes, no code
 */

/* Exit codes (documented in `procbus --help` and procbus(1)). */
#define CLI_EX_OK      0
#define CLI_EX_FAIL    1 /* a request failed */
#define CLI_EX_USAGE   2 /* bad command line */
#define CLI_EX_NOTRUN  3 /* status NAME: not RUNNING (as supervisorctl) */
#define CLI_EX_NOSEG   4 /* no segment / daemon not reachable / no such program */
#define CLI_EX_TIMEOUT 5 /* a wait timed out */
#define CLI_EX_FATAL   6 /* wait: the program went FATAL */
#define CLI_EX_NOTLIVE                                                    \
    7 /* status: procbusd is not live (dead, shut down, stale): the state \
       * shown is its last, not what runs now */

struct pbd_config;

/* The global options (before the command word), as main parsed them. */
struct cli_opts {
    const char *segment;          /* -s; NULL: $PROCBUS_SEGMENT or "procbus" */
    const char *socket;           /* -S or $PROCBUS_SOCKET; NULL: the default path */
    int timeout_s;                /* -t: how long start/stop/restart wait; 0: no wait */
    const struct pbd_config *cfg; /* -c FILE (or $PROCBUS_CONFIG for logs); NULL: none */
};

#endif /* PROCBUS_CLI_H */
