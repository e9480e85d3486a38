/* cli_ctl.h - a control request whose reply a command reads (not prints): procbusd's look-ups
 * (names, log paths) for status, logs, tail, maintail. */
#ifndef PROCBUS_CLI_CTL_H
#define PROCBUS_CLI_CTL_H

#include <stddef.h>

#include "cli.h"

/*
 * Send the words argv[0..argc) to procbusd's socket (o->socket, else the default) and keep
 * its reply: the detail lines in *reply and the reason of an ERR in *why (both malloc'd,
 * NUL-terminated; the caller frees both). At most timeout_ms for the whole exchange. Returns 0
 * (OK), 1 (ERR), or a negative errno when procbusd cannot be reached (then *reply and *why are
 * NULL). Prints nothing.
 */
int cli_ctl_capture(const struct cli_opts *o, int argc, char **argv, int timeout_ms, char **reply,
                    char **why);

/* Supervisord's groups of the programs, from procbusd ("names"): group[i] of name[i]. */
struct cli_names {
    char (*group)[64];
    char (*name)[64];
    size_t n;
};

/* Ask procbusd (at most timeout_ms); 0 with *out filled (free with cli_names_free), or a
 * negative errno with *out empty (procbusd unreachable, or the socket refused us: the caller
 * then shows plain names). */
int cli_names_fetch(const struct cli_opts *o, int timeout_ms, struct cli_names *out);
void cli_names_free(struct cli_names *n);

/* The group of program `name`, or NULL when unknown. */
const char *cli_names_group(const struct cli_names *n, const char *name);

/* supervisord's name of a process into buf: "GROUP:NAME", or NAME when its group is itself or
 * unknown. Returns buf. */
const char *cli_namespec(char *buf, size_t len, const struct cli_names *n, const char *name);

/* The record name in a supervisord name: what follows "GROUP:", or arg itself. */
const char *cli_process_part(const char *arg);

/* A program's log files: [0] stdout, [1] stderr ("" when it has none). */
struct cli_logs {
    char path[2][4096];
};

/*
 * Where program `name` (NAME or GROUP:NAME) logs: from the configuration of -c or
 * $PROCBUS_CONFIG when given (an AUTO log's name comes from procbusd), else from procbusd
 * ("logfile NAME"). Returns 0 with *out filled, or an exit code after saying why on stderr
 * (`cmd` starts the message): CLI_EX_NOSEG (no such program, procbusd unreachable), CLI_EX_FAIL.
 */
int cli_log_paths(const struct cli_opts *o, const char *cmd, const char *name,
                  struct cli_logs *out);

#endif /* PROCBUS_CLI_CTL_H */
