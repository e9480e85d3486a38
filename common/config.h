/* config.h - procbusd's configuration model and its supervisord-compatible INI parser. */
#ifndef PROCBUSD_CONFIG_H
#define PROCBUSD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmdline.h" /* pbd_split_command, pbd_free_argv (kept here for callers) */
#include "signals.h" /* pbd_signal_number */

/*
 * A configuration is read from one INI file plus the files its
 * `[include] files =` globs name (relative to the including file's folder).
 * Sections understood:
 *   [procbusd]            the daemon's own settings (struct pbd_daemon_conf)
 *   [supervisord]         supervisord's daemon settings procbusd honours (same struct)
 *   [program:NAME]        one program, or numprocs instances of it
 *   [eventlistener:NAME]  a pool of event listeners (supervisord's protocol)
 *   [fcgi-program:NAME]   a program whose instances share a listening socket as fd 0
 *   [group:NAME]          programs = a,b: their processes form group NAME
 *   [unix_http_server], [inet_http_server]: only for SUPERVISOR_SERVER_URL
 *   [include]             files = glob [glob ...]
 * Sections supervisord has that procbusd ignores with a warning:
 *   [supervisorctl] [rpcinterface:*] [ctlplugin:*]
 * Any other section is an error. docs/CONFIG.md documents every key; the key
 * table below describes each one once.
 *
 * The parser, by concern: config_ini.c (INI reading, includes), config_expand.c
 * (%(name)s), config_values.c (value syntaxes), config_keys.c (the key table),
 * config_keys_sv.c (the rows of supervisord's other sections), config_program.c
 * ([program:x] and its kinds), config_daemon.c ([procbusd], supervisord's sections,
 * [group:x]), config_check.c (names, dependencies), config.c (this API).
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
    /* An instance's name, else a [program:NAME] or [group:NAME] (then every instance of it). */
    char name[64];
    enum pbd_dep_cond cond;
};

/* stdout_logfile = AUTO (the default): captured into a file procbusd names in childlogdir,
 * as supervisord does (publisher/procbusd/autolog.c). */
#define PBD_LOG_AUTO "AUTO"

struct pbd_logconf {
    char *path;        /* NULL: not captured (/dev/null); PBD_LOG_AUTO: a file in childlogdir */
    uint64_t maxbytes; /* rotate when a write reaches it (after the write); 0: never; 50MB */
    int backups;       /* rotated files kept (path.1 .. path.N); default 10 */
    int events;        /* *_events_enabled: PROCESS_LOG events for event listeners */
    uint64_t capture_maxbytes; /* *_capture_maxbytes: PROCESS_COMMUNICATION capture; 0: off */
};

/* 1 if a log path is AUTO (pbd_logconf.path). */
int pbd_log_is_auto(const char *path);

/* What a [program:x]-like section makes. */
enum pbd_prog_kind {
    PBD_KIND_PROGRAM = 0,   /* [program:x] */
    PBD_KIND_EVENTLISTENER, /* [eventlistener:x]: events on stdin, READY/RESULT on stdout */
    PBD_KIND_FCGI           /* [fcgi-program:x]: the group's listening socket as stdin */
};

/* Event types an event listener may subscribe to (events = ...), supervisord's names. Bits of
 * pbd_program.evl_events; a parent name (PROCESS_STATE, TICK, EVENT ...) sets its children. */
enum pbd_evtype {
    PBD_EVT_PROCESS_STATE_STOPPED = 0,
    PBD_EVT_PROCESS_STATE_EXITED,
    PBD_EVT_PROCESS_STATE_STARTING,
    PBD_EVT_PROCESS_STATE_STOPPING,
    PBD_EVT_PROCESS_STATE_BACKOFF,
    PBD_EVT_PROCESS_STATE_FATAL,
    PBD_EVT_PROCESS_STATE_RUNNING,
    PBD_EVT_PROCESS_STATE_UNKNOWN,
    PBD_EVT_PROCESS_COMMUNICATION_STDOUT,
    PBD_EVT_PROCESS_COMMUNICATION_STDERR,
    PBD_EVT_PROCESS_LOG_STDOUT,
    PBD_EVT_PROCESS_LOG_STDERR,
    PBD_EVT_REMOTE_COMMUNICATION,
    PBD_EVT_SUPERVISOR_STATE_CHANGE_RUNNING,
    PBD_EVT_SUPERVISOR_STATE_CHANGE_STOPPING,
    PBD_EVT_TICK_5,
    PBD_EVT_TICK_60,
    PBD_EVT_TICK_3600,
    PBD_EVT_PROCESS_GROUP_ADDED,
    PBD_EVT_PROCESS_GROUP_REMOVED,
    PBD_EVT__COUNT
};

/* supervisord's name of a leaf event type ("PROCESS_STATE_RUNNING"); "?" out of range. */
const char *pbd_evtype_name(enum pbd_evtype t);

/* The bits `name` (any case: a leaf or a parent such as PROCESS_STATE, TICK, EVENT) stands
 * for; 0 for an unknown name. */
uint64_t pbd_evtype_mask(const char *name);

/* One process instance to supervise (a [program:x] with numprocs=3 yields 3). */
struct pbd_program {
    char name[64];    /* process_name after expansion: unique */
    char group[64];   /* its group: the [group:G] listing it, else the section's NAME */
    char program[64]; /* NAME of its [program:NAME] (or [eventlistener:NAME] ...) section */
    enum pbd_prog_kind kind;
    int group_priority; /* the [group:G] priority, else priority (supervisord's group order) */
    int process_num;    /* numprocs_start .. numprocs_start+numprocs-1 */
    int numprocs;       /* instances made from the same [program:NAME] */
    char **argv;        /* NULL-terminated; argv[0] is the executable (PATH-searched) */
    int shell;          /* argv came from "sh -c CMD" (shell = true) */
    char *command;      /* the command line as written (after expansions) */
    char *directory;    /* NULL: inherit */
    char **env;         /* extra "KEY=VALUE" entries, NULL-terminated; NULL: none */
    int clean_env;      /* clean_environment: start from PATH only, not procbusd's; default 0 */
    char *user;         /* NULL: do not change (a name or a uid: pbd_user_lookup) */
    mode_t umask;       /* (mode_t)-1: inherit */
    int autostart;      /* default 1 */
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
    int startlimit_burst;     /* at most this many starts ... */
    int startlimit_interval;  /* ... within this many seconds (0: no limit); default 5 in 10 */
    char *serverurl; /* SUPERVISOR_SERVER_URL: serverurl=, else from [unix_http_server] file or
                        [inet_http_server] port; NULL: not set (as supervisord) */
    /* [eventlistener:x] */
    uint64_t evl_events; /* events =: bits (1 << enum pbd_evtype) */
    int evl_buffer_size; /* events kept while no listener of the pool is READY; default 10 */
    /* [fcgi-program:x]: the socket every instance gets as fd 0 (one per section) */
    char *fcgi_socket;       /* "tcp://HOST:PORT" or "unix:///PATH" */
    char *fcgi_socket_owner; /* unix: "user[:group]"; NULL: procbusd's (or `user`'s) */
    mode_t fcgi_socket_mode; /* unix: default 0700 */
    int fcgi_socket_backlog; /* listen(2) backlog, 1 .. 65535; default SOMAXCONN */
    char *source_file;       /* where it was defined, for messages */
    int source_line;
};

/* A [group:NAME] section: the programs whose processes form the group. */
struct pbd_group {
    char name[64];
    char **programs; /* [program:x] (or [fcgi-program:x]) names, NULL-terminated */
    int priority;    /* default 999 */
    char *source_file;
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
    mode_t segment_mode;       /* the segment file's mode, within 0644; default 0640 */
    long long segment_gid;     /* the segment file's group; -1 (default): procbusd's */
    /* [supervisord] */
    int sv_section;            /* the file has a [supervisord] section: its defaults apply */
    char *logfile;             /* procbusd's own log (maintail); NULL: stderr only */
    uint64_t logfile_maxbytes; /* default 50MB */
    int logfile_backups;       /* default 10 */
    char *pidfile;             /* NULL: none */
    char *childlogdir;         /* where AUTO logs go; default $TMPDIR, else /tmp */
    char *identifier;          /* AUTO log names, event envelopes; default "supervisor" */
    int nocleanup;             /* keep old AUTO logs at start; default false */
    int strip_ansi;            /* strip ANSI escapes from programs' logs; default false */
    mode_t umask;              /* procbusd's (and so the programs') umask; (mode_t)-1: keep */
    char *user;                /* the user procbusd must run as; NULL: any */
    char *directory;           /* procbusd's working folder; NULL: keep */
    uint32_t minfds;           /* RLIMIT_NOFILE at least this; default 1024 */
    uint32_t minprocs;         /* RLIMIT_NPROC at least this; default 200 */
    int nodaemon, silent;      /* accepted: procbusd stays in the foreground, logs to stderr */
    char *sv_unix_file;        /* [unix_http_server] file: SUPERVISOR_SERVER_URL unix:// */
    char *sv_inet_port;        /* [inet_http_server] port: SUPERVISOR_SERVER_URL http:// */
};

struct pbd_config {
    struct pbd_daemon_conf daemon;
    struct pbd_program *progs; /* in definition order (files, sections, process_num) */
    size_t n_progs;
    struct pbd_group *groups; /* [group:x] sections, in file order */
    size_t n_groups;
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

/*
 * The checks that depend on who runs the configuration, made by procbusd
 * (start, --check, reload), not by every reader of the file: every `user`
 * exists (a name or a uid), and when procbusd is not root (euid != 0) each is
 * procbusd's own user, since it cannot switch users (supervisord refuses too).
 * Returns 0, or -EINVAL / -EPERM with one message "FILE:LINE: [program:x]
 * user: reason" in err[errlen].
 */
int pbd_config_check_runner(const struct pbd_config *cfg, uid_t euid, char *err, size_t errlen);

/* Free everything pbd_config_load allocated. Safe on a zeroed struct. */
void pbd_config_free(struct pbd_config *cfg);

/* Deep-copy src into dst (e.g. to keep a running instance across a reload).
 * 0, or -ENOMEM with dst left zeroed. Free with pbd_program_clear. */
int pbd_program_copy(struct pbd_program *dst, const struct pbd_program *src);

/* Free what a program owns (argv, strings, env) and zero it. Safe on a zeroed struct. */
void pbd_program_clear(struct pbd_program *p);

/* Look a program instance up by name, or by supervisord's GROUP:NAME; NULL if absent. */
const struct pbd_program *pbd_config_find(const struct pbd_config *cfg, const char *name);

/* supervisord's name of a process, "GROUP:NAME", or NAME when the two are the same (what its
 * status prints): into buf[len] (128 bytes hold any); returns buf. */
const char *pbd_namespec(const struct pbd_program *p, char *buf, size_t len);

/*
 * 1 if a and b would run the same way (command, env, user, directory, umask,
 * logs, readiness ...), so a reload may leave the running instance alone.
 * Compared: name, group, program, kind, process_num, argv, shell, command, directory, env
 * (as a set), clean_env, user, umask, redirect_stderr, out, err, ready_fd,
 * ready_log, serverurl, the event listener and fcgi keys.
 * Not compared (they only steer supervision; apply them to the running
 * instance): priority, autostart, autorestart, exitcodes, startsecs,
 * startretries, stopsignal, stopwaitsecs, stopasgroup, killasgroup, deps,
 * backoff, backoff_max, startlimit_burst, startlimit_interval, numprocs,
 * source_file/line.
 */
int pbd_program_same(const struct pbd_program *a, const struct pbd_program *b);

/* 1 if every key of a and b is the same, the supervision ones too (supervisord's notion of a
 * changed program, for `reread`): pbd_program_same and priority, autostart ... numprocs. */
int pbd_program_identical(const struct pbd_program *a, const struct pbd_program *b);

/* ------------------------------------------------------------ the key table */

/*
 * Every key procbusd reads is one row of a table (common/config_keys.c): its
 * name, value type, range, default, the struct field it lands in and a one-line
 * doc. The table drives parsing, the defaults, the docs check
 * (tests/unit/test_config_keys.c against docs/CONFIG.md) and the table tests.
 * Adding a key = adding one row (and its struct field).
 */

enum pbd_config_section {
    PBD_SECTION_DAEMON = 0,    /* [procbusd]: lands in struct pbd_daemon_conf */
    PBD_SECTION_PROGRAM,       /* [program:NAME]: lands in struct pbd_program, per instance */
    PBD_SECTION_INCLUDE,       /* [include]: followed while the files are read */
    PBD_SECTION_SUPERVISORD,   /* [supervisord]: lands in struct pbd_daemon_conf */
    PBD_SECTION_GROUP,         /* [group:NAME]: lands in struct pbd_group */
    PBD_SECTION_EVENTLISTENER, /* [eventlistener:NAME]: its own keys, then the program keys */
    PBD_SECTION_FCGI,          /* [fcgi-program:NAME]: its own keys, then the program keys */
    PBD_SECTION_UNIX_HTTP,     /* [unix_http_server]: lands in struct pbd_daemon_conf */
    PBD_SECTION_INET_HTTP,     /* [inet_http_server]: lands in struct pbd_daemon_conf */
    PBD_SECTION__COUNT
};

/* What a value may be (the syntax), hence how it is parsed and stored. */
enum pbd_key_type {
    PBD_KT_STRING = 0, /* text, not empty: char * (malloc'd) */
    PBD_KT_BOOL,       /* true/false, yes/no, on/off, 1/0: int 0/1 */
    PBD_KT_INT,        /* decimal integer in [min, max]: int or uint32_t (by size) */
    PBD_KT_BYTES,      /* N, NKB, NMB, NGB (powers of 1024): uint64_t */
    PBD_KT_ENUM,       /* one of choices (any case): int (an enum) */
    PBD_KT_SIGNAL,     /* a signal name or number: int */
    PBD_KT_UMASK,      /* octal 000 .. 777: mode_t */
    PBD_KT_USER,       /* an existing user name or uid: char * */
    PBD_KT_LOGFILE,    /* a path (folder must exist), NONE/OFF, AUTO, syslog: char * or NULL */
    PBD_KT_REGEX,      /* a POSIX extended regular expression: char * */
    PBD_KT_EXITCODES,  /* comma-separated 0-255: int[] and a count */
    PBD_KT_ENV,        /* KEY=VALUE pairs, comma-separated, maybe quoted: char ** */
    PBD_KT_DEPS,       /* NAME[:CONDITION], comma-separated: struct pbd_dep[] and a count */
    PBD_KT_NAME,       /* a process name (1-63 bytes, no space, ':' or '/'): char[64] */
    PBD_KT_GLOBS,      /* globs separated by whitespace */
    PBD_KT_IGNORED,    /* a supervisord key procbusd accepts with a warning and ignores */
    PBD_KT_MODE,       /* an octal file mode within the bits of `max` (0644), with `min` (0600) */
    PBD_KT_GROUP,      /* an existing group name or gid, or "none": long long gid, -1 for none */
    PBD_KT_LIST,       /* comma-separated words (supervisord's list_of_strings): char ** */
    PBD_KT_FOLDER,     /* an existing folder: char * */
    PBD_KT__COUNT
};

/* When a [program:x] key is applied (other sections: always PBD_STAGE_VALUE, in file order,
 * except [include] files: PBD_STAGE_READ). */
enum pbd_key_stage {
    PBD_STAGE_VALUE = 0, /* per instance, in file order (the first bad line is reported) */
    PBD_STAGE_SECTION,   /* once per [program:x], before its instances (no %(process_num)) */
    PBD_STAGE_FIRST,     /* per instance, before the VALUE keys (environment: feeds %(ENV_X)s) */
    PBD_STAGE_LAST,      /* per instance, after the VALUE keys (process_name) */
    PBD_STAGE_READ       /* by the INI reader, while the files are read ([include] files) */
};

#define PBD_KEY_REQUIRED 1u           /* the section is an error without it */
#define PBD_KEY_NOWHERE  ((size_t)-1) /* offset of a key that lands in no struct field */

struct pbd_config_choice {
    const char *name; /* accepted spelling, any case */
    int value;
};

struct pbd_config_key;
struct pbd_key_ctx; /* private to the parser (config_int.h) */

/* How a row with special parsing applies its (expanded, trimmed) value: 0, -EINVAL (reason in
 * the context), -ENOMEM. It may take *value (then sets it NULL). base: the struct the section's
 * offsets are relative to. */
typedef int pbd_key_apply_fn(const struct pbd_config_key *key, struct pbd_key_ctx *ctx,
                             char **value, void *base);

struct pbd_config_key {
    const char *name; /* as written (keys are case-insensitive: this is the lower-case form) */
    enum pbd_config_section section;
    enum pbd_key_type type;
    enum pbd_key_stage stage;
    unsigned flags;                          /* PBD_KEY_REQUIRED */
    long long min, max;                      /* PBD_KT_INT: the accepted range */
    const struct pbd_config_choice *choices; /* PBD_KT_ENUM: {NULL, 0}-terminated */
    /* PBD_KT_BOOL / PBD_KT_ENUM: what the error says a value must be ("not EXPECT: 'v'");
     * PBD_KT_STRING: the whole error for an empty value. NULL: the type's own. */
    const char *expect;
    /* The default in the key's own syntax, applied through the row before the file's values
     * (process_name: the template used when the key is absent); NULL: the field's zero or
     * "unset" value, described in doc and docs/CONFIG.md. */
    const char *def;
    size_t offset;   /* where it lands: offsetof in the section's struct, or PBD_KEY_NOWHERE */
    size_t size;     /* sizeof that field (0 with PBD_KEY_NOWHERE) */
    const char *doc; /* one line */
    pbd_key_apply_fn *apply; /* NULL: parsed and stored by type */
};

/* The keys of one section, in table order; *n (if n) is their count. The table is static and
 * read-only; NULL with *n = 0 for an unknown section. */
const struct pbd_config_key *pbd_config_keys(enum pbd_config_section section, size_t *n);

/* A section's row for key (lower case, as the parser stores keys); NULL if there is none. */
const struct pbd_config_key *pbd_config_key_find(enum pbd_config_section section, const char *key);

/* "string", "bool", "int" ... for a type; "procbusd", "program:NAME", "include", "supervisord",
 * "group:NAME" ... for a section. "?" when out of range. */
const char *pbd_config_type_name(enum pbd_key_type type);
const char *pbd_config_section_name(enum pbd_config_section section);

#endif /* PROCBUSD_CONFIG_H */
