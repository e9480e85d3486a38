/* cli_cmds.h - the procbus commands' entry points, one per row of main.c's command table. */
#ifndef PROCBUS_CLI_CMDS_H
#define PROCBUS_CLI_CMDS_H

#include "cli.h"

/*
 * Every command has this shape: `argv[0]` is the command word, the rest its
 * arguments (argc counts both). It may print to stdout/stderr and returns one
 * of the CLI_EX_* exit codes. A command whose table row says it parses its own
 * --help prints its usage itself; the others never see --help (main prints
 * the general usage).
 */
typedef int cli_cmd_fn(const struct cli_opts *o, int argc, char **argv);

/* cmd_status.c */
cli_cmd_fn cli_cmd_status;
/* cmd_ps.c */
cli_cmd_fn cli_cmd_ps;
/* cmd_get.c */
cli_cmd_fn cli_cmd_get;
/* cmd_watch.c */
cli_cmd_fn cli_cmd_watch;
cli_cmd_fn cli_cmd_wait;
/* cmd_logs.c */
cli_cmd_fn cli_cmd_logs;
/* cmd_top.c */
cli_cmd_fn cli_cmd_top;
/* cmd_tail.c: supervisorctl's tail (a program's log, by bytes and stream) and maintail */
cli_cmd_fn cli_cmd_tail;
cli_cmd_fn cli_cmd_maintail;
/* cmd_pid.c */
cli_cmd_fn cli_cmd_pid;
/* cmd_control.c: start/stop/restart wait for the programs to settle; send passes the words on */
cli_cmd_fn cli_cmd_start;
cli_cmd_fn cli_cmd_stop;
cli_cmd_fn cli_cmd_restart;
cli_cmd_fn cli_cmd_send;
/* reexec [BINARY]: the verb with BINARY made absolute (procbusd runs elsewhere); the answer
 * comes from the new image, or from the old one when the upgrade could not go */
cli_cmd_fn cli_cmd_reexec;

#endif /* PROCBUS_CLI_CMDS_H */
