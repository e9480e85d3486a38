/* main.c - the procbus command: global options, the command table, help generated from it,
 * dispatch. Adding a command: a cmd_*.c file (declared in cli_cmds.h) and one row below. */
#define _GNU_SOURCE
#include <getopt.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_segment.h"
#include "segguard.h"
#include "config.h"

/* Row flags. */
enum {
    CMD_DAEMON = 1,     /* goes through procbusd's socket (else: reads the segment or files) */
    CMD_OWN_HELP = 2,   /* parses its own --help; otherwise main prints the general usage */
    CMD_CONFIG_ENV = 4, /* without -c, reads the configuration named by $PROCBUS_CONFIG */
};

struct cli_command {
    const char *name;
    cli_cmd_fn *run;
    const char *args; /* synopsis after the name ("" if none; NULL: not listed in the usage) */
    const char *help; /* one line; a '\n' continues it on the next line of the help column */
    unsigned flags;
};

static int cmd_help(const struct cli_opts *o, int argc, char **argv);

/* Every command, in the order `procbus --help` lists them (reading, then control). */
static const struct cli_command commands[] = {
    {"status", cli_cmd_status, "[NAME...]",
     "supervisorctl-like status; exit 3 if a named\nprogram is not RUNNING/READY", 0},
    {"ps", cli_cmd_ps, "[--all] [--tree] [--json] [-o FIELDS] [--sort KEY]",
     "table of programs (one consistent snapshot)", CMD_OWN_HELP},
    {"get", cli_cmd_get, "NAME|PID [--json]", "every field of one record", CMD_OWN_HELP},
    {"watch", cli_cmd_watch, "[NAME...] [--json] [--from-start]",
     "follow state transitions until interrupted", CMD_OWN_HELP},
    {"wait", cli_cmd_wait, "NAME --state STATE [--timeout 30s]",
     "until NAME reaches STATE (exit 5 timeout, 6 FATAL)", CMD_OWN_HELP},
    {"logs", cli_cmd_logs, "NAME [-f] [-n N]", "captured output, the last N lines of each log",
     CMD_OWN_HELP | CMD_CONFIG_ENV},
    {"tail", cli_cmd_tail, "[-f|-BYTES] NAME [stdout|stderr]",
     "the last bytes of a log (supervisorctl's tail)", CMD_OWN_HELP | CMD_CONFIG_ENV},
    {"maintail", cli_cmd_maintail, "[-f|-BYTES]", "the last bytes of procbusd's own log",
     CMD_OWN_HELP},
    {"pid", cli_cmd_pid, "[NAME...|all]", "procbusd's pid, or programs' (0: not running)",
     CMD_OWN_HELP},
    {"top", cli_cmd_top, "", "live full-screen view (sort, filter, tree; q quits)", CMD_OWN_HELP},
    {"start", cli_cmd_start, "NAME|GROUP:*|all ...", "start and wait until RUNNING (or failed)",
     CMD_DAEMON},
    {"stop", cli_cmd_stop, "NAME|GROUP:*|all ...", "stop and wait until stopped", CMD_DAEMON},
    {"restart", cli_cmd_restart, "NAME|GROUP:*|all ...",
     "stop, then start and wait until RUNNING (or failed)", CMD_DAEMON},
    {"signal", cli_cmd_send, "SIG NAME ...", "send a signal to the main process", CMD_DAEMON},
    {"reload", cli_cmd_send, "[allow-empty]",
     "re-read the configuration: apply added, removed and\nchanged programs, leave the others "
     "alone, say\nwhat changed (one with no program only with\nallow-empty); not "
     "supervisorctl's reload",
     CMD_DAEMON},
    {"update", cli_cmd_send, "[GROUP...|all]",
     "supervisorctl's update: as reload, for the groups\ngiven", CMD_DAEMON},
    {"reread", cli_cmd_send, "", "what the configuration changes, applying nothing", CMD_DAEMON},
    {"add", cli_cmd_send, "GROUP...", "add groups of the configuration that do not run",
     CMD_DAEMON},
    {"remove", cli_cmd_send, "GROUP...", "remove stopped groups (until an update)", CMD_DAEMON},
    {"avail", cli_cmd_send, "", "the configuration's processes, in use or not", CMD_DAEMON},
    {"clear", cli_cmd_send, "NAME|GROUP:*|all ...", "empty programs' log files", CMD_DAEMON},
    {"shutdown", cli_cmd_send, "", "stop everything and exit procbusd", CMD_DAEMON},
    {"reexec", cli_cmd_reexec, "[BINARY]",
     "upgrade procbusd in place: it re-executes BINARY\n(else its own path), keeping every "
     "program,\npipe, the tracer and the segment",
     CMD_DAEMON},
    {"help", cmd_help, NULL, NULL, 0},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

#define HELP_COLUMN 30 /* where the help text of a command starts */

/* "  NAME ARGS   help", the help aligned at HELP_COLUMN (on the next line if NAME ARGS is long). */
static void usage_row(FILE *f, const struct cli_command *c)
{
    char syn[128];
    const char *h = c->help;
    int n = snprintf(syn, sizeof(syn), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);

    if (n + 2 + 2 <= HELP_COLUMN)
        fprintf(f, "  %-*s", HELP_COLUMN - 2, syn);
    else
        fprintf(f, "  %s\n%*s", syn, HELP_COLUMN, "");
    for (;;) {
        size_t len = strcspn(h, "\n");
        fprintf(f, "%.*s\n", (int)len, h);
        if (h[len] == '\0')
            break;
        h += len + 1;
        fprintf(f, "%*s", HELP_COLUMN, "");
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: procbus [-c FILE] [-s SEGMENT] [-S SOCKET] COMMAND [ARGS]\n"
               "\n"
               "Reading (from the shared-memory segment, no daemon round trip):\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].args != NULL && !(commands[i].flags & CMD_DAEMON))
            usage_row(f, &commands[i]);
    fprintf(f, "Control (through procbusd's socket):\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].args != NULL && (commands[i].flags & CMD_DAEMON))
            usage_row(f, &commands[i]);
    fprintf(f, "\n"
               "Options:\n"
               "  -c, --config FILE   read [procbusd] segment/socket from FILE\n"
               "  -s, --segment NAME  segment (default $PROCBUS_SEGMENT or \"procbus\")\n"
               "  -S, --socket PATH   control socket (default $XDG_RUNTIME_DIR/procbus.sock or\n"
               "                      /run/procbus/procbus.sock)\n"
               "  -t, --timeout SECS  how long start/stop/restart wait (default 120; 0: no wait)\n"
               "Every command takes --help.\n"
               "Exit codes: 0 ok, 1 request failed, 2 usage, 3 not running, 4 no daemon/segment/\n"
               "program, 5 timed out, 6 (wait) the program went FATAL, 7 (pid) not running,\n"
               "(status) procbusd not live: what it shows is a dead procbusd's last state.\n"
               "supervisorctl's commands work as supervisorctl's: docs/SUPERVISORD.md.\n");
}

static int cmd_help(const struct cli_opts *o, int argc, char **argv)
{
    (void)o;
    (void)argc;
    (void)argv;
    usage(stdout);
    return CLI_EX_OK;
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* --help or -h among a command's arguments. */
static int asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static void load_conf(struct cli_opts *o, const char *path, struct pbd_config *cfg)
{
    char err[512];

    if (pbd_config_load(cfg, path, NULL, err, sizeof(err), NULL, NULL) < 0) {
        fprintf(stderr, "procbus: %s\n", err);
        exit(CLI_EX_USAGE);
    }
    if (o->segment == NULL)
        o->segment = cfg->daemon.segment;
    if (o->socket == NULL)
        o->socket = cfg->daemon.socket;
}

struct run {
    const struct cli_command *cmd;
    const struct cli_opts *o;
    int argc;
    char **argv;
};

/* A segment shrunk under a command (its writer truncated the file) faults with SIGBUS on the
 * next load from it: said, not a crash (watch and top recover on their own, with inner guards).
 * Returns the command's exit code, or CLI_EX_FAIL after such a fault. */
static int run_guarded(const struct run *run)
{
    static struct pb_guard guard;
    int rc;

    pb_guard_install();
    pb_guard_arm(&guard, NULL, 0);
    if (sigsetjmp(guard.env, 1) != 0) {
        fflush(stdout);
        fprintf(stderr, "procbus: %s\n", CLI_TRUNCATED_MSG);
        return CLI_EX_FAIL;
    }
    rc = run->cmd->run(run->o, run->argc, run->argv);
    pb_guard_disarm(&guard);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"segment", required_argument, NULL, 's'},
        {"socket", required_argument, NULL, 'S'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    struct cli_opts o = {.timeout_s = 120};
    struct pbd_config cfg;
    const struct cli_command *cmd;
    const char *conf = NULL;
    int opt, rc;

    memset(&cfg, 0, sizeof(cfg));
    o.socket = getenv("PROCBUS_SOCKET");
    while ((opt = getopt_long(argc, argv, "+c:s:S:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 's':
            o.segment = optarg;
            break;
        case 'S':
            o.socket = optarg;
            break;
        case 't':
            o.timeout_s = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return CLI_EX_OK;
        default:
            usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_EX_USAGE;
    }
    argc -= optind; /* from here argv[0] is the command word */
    argv += optind;
    cmd = find_command(argv[0]);
    if (cmd != NULL && !(cmd->flags & CMD_OWN_HELP) && asks_help(argc, argv)) {
        usage(stdout);
        return CLI_EX_OK;
    }
    if (conf == NULL && cmd != NULL && (cmd->flags & CMD_CONFIG_ENV) &&
        getenv("PROCBUS_CONFIG") != NULL && getenv("PROCBUS_CONFIG")[0] != '\0')
        conf = getenv("PROCBUS_CONFIG");
    if (conf != NULL) {
        load_conf(&o, conf, &cfg);
        o.cfg = &cfg;
    }
    if (cmd != NULL) {
        struct run run = {cmd, &o, argc, argv};
        rc = run_guarded(&run);
    } else {
        fprintf(stderr, "procbus: unknown command '%s' (see procbus --help)\n", argv[0]);
        rc = CLI_EX_USAGE;
    }
    pbd_config_free(&cfg);
    return rc;
}
