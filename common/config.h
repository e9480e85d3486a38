/* config.h - procbusd's configuration model and its supervisord-compatible INI parser. */
#ifndef PROCBUSD_CONFIG_H
#define PROCBUSD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A configuration is read from one INI file plus the files its
 * `[include] files =` globs name (relative to the including file's folder).
 * Sections understood:
 *   [procbusd]          the daemon's own settings (struct pbd_daemon_conf)
 *   [program:NAME]      one program, or numprocs instances of it
 *   [include]           files = glob [glob ...]
 * Sections supervisord has that procbusd ignores with a warning:
 *   [supervisord] [supervisorctl] [unix_http_server] [inet_http_server]
 *   [rpcinterface:*] [ctlplugin:*] [group:*] [eventlistener:*] [fcgi-program:*]
 * (except `environment` of [supervisord], which is added to every program's
 * environment and to the %(ENV_X)s expansions, as supervisord does).
 * Any other section is an error. docs/CONFIG.md documents every key.
 */

enum pbd_autorestart { PBD_RESTART_FALSE = 0, PBD_RESTART_UNEXPECTED, PBD_RESTART_TRUE };
enum pbd_backoff { PBD_BACKOFF_LINEAR = 0, PBD_BACKOFF_EXPONENTIAL };
enum pbd_dep_cond {
    PBD_DEP_STARTED = 0, /* the dependency has been started (STARTING or later) */
    PBD_DEP_RUNNING,     /* it reached RUNNING (startsecs passed) */
    PBD_DEP_READY,       /* it reported readiness (ready_fd / ready_log) */
    PBD_DEP_COMPLETED    /* it exited with an expected exit code */
};
/* Process-tree tracing (trace.h): auto = eBPF if it loads, else /proc polling. */
enum pbd_trace { PBD_TRACE_AUTO = 0, PBD_TRACE_ON, PBD_TRACE_OFF, PBD_TRACE_PROC };

#define PBD_MAX_EXITCODES 32
#define PBD_MAX_DEPS      16

struct pbd_dep {
    /* An instance's name, else a [program:NAME] (then every instance of it). */
    char name[64];
    enum pbd_dep_cond cond;
};

struct pbd_logconf {
    char *path;        /* NULL: not captured (/dev/null); "AUTO" is read as NULL */
    uint64_t maxbytes; /* rotate when a write would exceed it; 0: never; default 50MB */
    int backups;       /* rotated files kept (path.1 .. path.N); default 10 */
};

/* One process instance to supervise (a [program:x] with numprocs=3 yields 3). */
struct pbd_program {
    char name[64];   /* process_name after expansion: unique */
    char group[64];  /* the [program:NAME] section name */
    int process_num; /* numprocs_start .. numprocs_start+numprocs-1 */
    int numprocs;    /* instances made from the same [program:NAME] */
    char **argv;     /* NULL-terminated; argv[0] is the executable (PATH-searched) */
    int shell;       /* argv came from "sh -c CMD" (shell = true) */
    char *command;   /* the command line as written (after expansions) */
    char *directory; /* NULL: inherit */
    char **env;      /* extra "KEY=VALUE" entries, NULL-terminated; NULL: none */
    char *user;      /* NULL: do not change */
    mode_t umask;    /* (mode_t)-1: inherit */
    int autostart;   /* default 1 */
    enum pbd_autorestart autorestart; /* default unexpected */
    int exitcodes[PBD_MAX_EXITCODES]; /* default {0} */
    int n_exitcodes;
    int startsecs;       /* default 1 */
    int startretries;    /* default 3 */
    int stopsignal;      /* default SIGTERM */
    int stopwaitsecs;    /* default 10 */
    int stopasgroup;     /* default 0 (procbusd always signals the group when 1) */
    int killasgroup;     /* default = stopasgroup */
    int priority;        /* default 999; lower starts first, stops last */
    int redirect_stderr; /* default 0 */
    struct pbd_logconf out, err;
    struct pbd_dep deps[PBD_MAX_DEPS];
    int n_deps;
    int ready_fd;             /* >= 3: the fd number the program writes a newline to; -1: none */
    char *ready_log;          /* POSIX extended regex matched against output lines; NULL: none */
    enum pbd_backoff backoff; /* default linear (supervisord: 1s, 2s, 3s ...) */
    int backoff_max;          /* seconds, default 60 */
    char *source_file;        /* where it was defined, for messages */
    int source_line;
};

struct pbd_daemon_conf {
    char *segment;        /* NULL: $PROCBUS_SEGMENT or "procbus" */
    char *socket;         /* NULL: $XDG_RUNTIME_DIR/procbus.sock or /run/procbus/procbus.sock */
    int log_level;        /* 0 error, 1 warn, 2 info (default), 3 debug */
    int heartbeat_ms;     /* default 500 */
    int sample_ms;        /* cpu/rss sampling period, default 1000 */
    enum pbd_trace trace; /* default auto */
    uint32_t capacity;    /* segment records, default 4096 */
    int observe;          /* publish every process on the host; default 0 */
    uint32_t keep_exited_secs; /* exited descendant/observed records stay; default 60 */
    uint32_t trace_ring_kb;    /* eBPF ring buffer, KiB, power of two >= 4; default 256 */
    uint32_t trace_batch_ms;   /* 0 (default): read each tracer event at once; N: every N ms */
};

struct pbd_config {
    struct pbd_daemon_conf daemon;
    struct pbd_program *progs; /* in definition order (files, sections, process_num) */
    size_t n_progs;
    char *path;   /* the main file */
    char **files; /* every file read, main first (display paths) */
    size_t n_files;
};

/*
 * Parse `path` (and its includes). On success returns 0 and fills *cfg
 * (overwritten, not freed: load a reload into a second struct).
 * On error returns a negative errno (-EINVAL for a configuration error,
 * including an included file that cannot be read; -ENOENT for a missing main
 * file, -EACCES/-EISDIR/-EIO for an unreadable one; -ENOMEM) and zeroes *cfg,
 * and writes ONE human message (the first error found) into
 * err[errlen] of the form "FILE:LINE: [SECTION] KEY: reason" (or
 * "FILE: reason" when no line applies). Warnings (unknown keys, ignored
 * sections, unsupported-but-harmless supervisord keys) are passed, one line
 * each, to warn(arg, msg) if warn is non-NULL.
 * `env` is the environment used for %(ENV_X)s expansions (NULL: environ).
 */
int pbd_config_load(struct pbd_config *cfg, const char *path, char **env, char *err, size_t errlen,
                    void (*warn)(void *arg, const char *msg), void *arg);

/* Free everything pbd_config_load allocated. Safe on a zeroed struct. */
void pbd_config_free(struct pbd_config *cfg);

/* Deep-copy src into dst (e.g. to keep a running instance across a reload).
 * 0, or -ENOMEM with dst left zeroed. Free with pbd_program_clear. */
int pbd_program_copy(struct pbd_program *dst, const struct pbd_program *src);

/* Free what a program owns (argv, strings, env) and zero it. Safe on a zeroed struct. */
void pbd_program_clear(struct pbd_program *p);

/* Look a program instance up by name; NULL if absent. */
const struct pbd_program *pbd_config_find(const struct pbd_config *cfg, const char *name);

/*
 * 1 if a and b would run the same way (command, env, user, directory, umask,
 * logs, readiness ...), so a reload may leave the running instance alone.
 * Compared: name, group, process_num, argv, shell, command, directory, env
 * (as a set), user, umask, redirect_stderr, out, err, ready_fd, ready_log.
 * Not compared (they only steer supervision; apply them to the running
 * instance): priority, autostart, autorestart, exitcodes, startsecs,
 * startretries, stopsignal, stopwaitsecs, stopasgroup, killasgroup, deps,
 * backoff, backoff_max, numprocs, source_file/line.
 */
int pbd_program_same(const struct pbd_program *a, const struct pbd_program *b);

/* Split a command line into argv like a POSIX shell without expansions:
 * whitespace (space, tab, newline ...) separates, '...' quotes literally,
 * "..." quotes with backslash escaping only $ ` " \ and newline, and outside
 * quotes a backslash escapes any character (backslash-newline joins lines).
 * Operators (| > && ;) are plain words. Returns a malloc'd NULL-terminated
 * vector (argv[0] non-NULL) or NULL with *why (if why) set to a static reason:
 * "empty command", "unterminated single quote", "unterminated double quote",
 * "trailing backslash", "out of memory". */
char **pbd_split_command(const char *cmd, const char **why);
void pbd_free_argv(char **argv);

/* "SIGTERM", "TERM", "term", "15" -> 15 (any Linux signal name, with or
 * without SIG, case-insensitive; RTMIN/RTMAX; numbers 1.._NSIG-1); -1 if unknown. */
int pbd_signal_number(const char *name);

#endif /* PROCBUSD_CONFIG_H */
