/* config_keys_sv.c - the key rows of supervisord's other sections ([supervisord], [group:x],
 * [eventlistener:x], [fcgi-program:x], the http servers) and the event type names. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Where a key lands: its section and the field of that section's struct. */
#define SV(sec, m)                                                   \
    .section = (sec), .offset = offsetof(struct pbd_daemon_conf, m), \
    .size = sizeof(((struct pbd_daemon_conf *)0)->m)
#define PROGK(sec, m)                                            \
    .section = (sec), .offset = offsetof(struct pbd_program, m), \
    .size = sizeof(((struct pbd_program *)0)->m)
#define GROUPK(m)                                                          \
    .section = PBD_SECTION_GROUP, .offset = offsetof(struct pbd_group, m), \
    .size = sizeof(((struct pbd_group *)0)->m)
#define NOWHERE(sec) .section = (sec), .offset = PBD_KEY_NOWHERE, .size = 0

/* ---------------------------------------------------------- event types */

static const char *const evt_names[PBD_EVT__COUNT] = {
    [PBD_EVT_PROCESS_STATE_STOPPED] = "PROCESS_STATE_STOPPED",
    [PBD_EVT_PROCESS_STATE_EXITED] = "PROCESS_STATE_EXITED",
    [PBD_EVT_PROCESS_STATE_STARTING] = "PROCESS_STATE_STARTING",
    [PBD_EVT_PROCESS_STATE_STOPPING] = "PROCESS_STATE_STOPPING",
    [PBD_EVT_PROCESS_STATE_BACKOFF] = "PROCESS_STATE_BACKOFF",
    [PBD_EVT_PROCESS_STATE_FATAL] = "PROCESS_STATE_FATAL",
    [PBD_EVT_PROCESS_STATE_RUNNING] = "PROCESS_STATE_RUNNING",
    [PBD_EVT_PROCESS_STATE_UNKNOWN] = "PROCESS_STATE_UNKNOWN",
    [PBD_EVT_PROCESS_COMMUNICATION_STDOUT] = "PROCESS_COMMUNICATION_STDOUT",
    [PBD_EVT_PROCESS_COMMUNICATION_STDERR] = "PROCESS_COMMUNICATION_STDERR",
    [PBD_EVT_PROCESS_LOG_STDOUT] = "PROCESS_LOG_STDOUT",
    [PBD_EVT_PROCESS_LOG_STDERR] = "PROCESS_LOG_STDERR",
    [PBD_EVT_REMOTE_COMMUNICATION] = "REMOTE_COMMUNICATION",
    [PBD_EVT_SUPERVISOR_STATE_CHANGE_RUNNING] = "SUPERVISOR_STATE_CHANGE_RUNNING",
    [PBD_EVT_SUPERVISOR_STATE_CHANGE_STOPPING] = "SUPERVISOR_STATE_CHANGE_STOPPING",
    [PBD_EVT_TICK_5] = "TICK_5",
    [PBD_EVT_TICK_60] = "TICK_60",
    [PBD_EVT_TICK_3600] = "TICK_3600",
    [PBD_EVT_PROCESS_GROUP_ADDED] = "PROCESS_GROUP_ADDED",
    [PBD_EVT_PROCESS_GROUP_REMOVED] = "PROCESS_GROUP_REMOVED",
};

const char *pbd_evtype_name(enum pbd_evtype t)
{
    return (unsigned)t < PBD_EVT__COUNT ? evt_names[t] : "?";
}

#define BIT(t)      (1ull << (t))
#define RANGE(a, b) ((BIT(b) << 1) - BIT(a)) /* bits a .. b */

uint64_t pbd_evtype_mask(const char *name)
{
    /* supervisord's abstract types: each stands for its subclasses */
    static const struct {
        const char *name;
        uint64_t mask;
    } parents[] = {
        {"EVENT", RANGE(0, PBD_EVT__COUNT - 1)},
        {"PROCESS_STATE", RANGE(PBD_EVT_PROCESS_STATE_STOPPED, PBD_EVT_PROCESS_STATE_UNKNOWN)},
        {"PROCESS_COMMUNICATION",
         RANGE(PBD_EVT_PROCESS_COMMUNICATION_STDOUT, PBD_EVT_PROCESS_COMMUNICATION_STDERR)},
        {"PROCESS_LOG", RANGE(PBD_EVT_PROCESS_LOG_STDOUT, PBD_EVT_PROCESS_LOG_STDERR)},
        {"SUPERVISOR_STATE_CHANGE",
         RANGE(PBD_EVT_SUPERVISOR_STATE_CHANGE_RUNNING, PBD_EVT_SUPERVISOR_STATE_CHANGE_STOPPING)},
        {"TICK", RANGE(PBD_EVT_TICK_5, PBD_EVT_TICK_3600)},
        {"PROCESS_GROUP", RANGE(PBD_EVT_PROCESS_GROUP_ADDED, PBD_EVT_PROCESS_GROUP_REMOVED)},
    };
    for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++)
        if (!strcasecmp(name, parents[i].name))
            return parents[i].mask;
    for (int t = 0; t < PBD_EVT__COUNT; t++)
        if (!strcasecmp(name, evt_names[t]))
            return BIT(t);
    return 0;
}

/* ------------------------------------------------------- special parsing */

/* serverurl: AUTO (any case) is the default, anything else is the URL itself. */
int pbd_cfg_apply_serverurl(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                            void *base)
{
    char **dst = (char **)((char *)base + k->offset);
    (void)c;
    free(*dst);
    *dst = NULL;
    if (!**v || !strcasecmp(*v, "auto"))
        return 0;
    *dst = *v;
    *v = NULL;
    return 0;
}

/* events = A, B: supervisord's names, any case, at least one. */
static int apply_events(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base)
{
    struct pbd_program *p = base;
    char **names = NULL;
    uint64_t mask = 0;
    int r = pbd_cfg_get_list(*v, &names, c->why, c->wl);
    (void)k;
    for (size_t i = 0; !r && names && names[i]; i++) {
        uint64_t m = pbd_evtype_mask(names[i]);
        if (!m) {
            snprintf(c->why, c->wl, "unknown event type '%.64s' (PROCESS_STATE, TICK_60, ...)",
                     names[i]);
            r = -EINVAL;
        }
        mask |= m;
    }
    if (!r && !mask) {
        snprintf(c->why, c->wl, "no event type (as supervisord: an event listener needs some)");
        r = -EINVAL;
    }
    if (!r)
        p->evl_events = mask;
    pbd_free_argv(names);
    return r;
}

/* result_handler: procbusd has supervisord's default handler only (OK accepts the event, any
 * other result rejects it and it is sent again). */
static int apply_result_handler(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                                void *base)
{
    (void)k;
    (void)base;
    if (strcmp(*v, "supervisor.dispatchers:default_handler") != 0 && c->first)
        pbd_cfg_warn(c->L, c->at,
                     "procbusd has only supervisord's default result handler (RESULT OK accepts "
                     "an event, anything else rejects it): '" SHOW "' is not used",
                     *v);
    return 0;
}

/* socket = tcp://HOST:PORT | unix:///ABSOLUTE/PATH (supervisord's parse_fcgi_socket). */
static int apply_fcgi_socket(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                             void *base)
{
    struct pbd_program *p = base;
    const char *s = *v;
    (void)k;
    if (!strncmp(s, "unix://", 7)) {
        if (s[7] != '/') {
            snprintf(c->why, c->wl, "unix socket path is not absolute: '" SHOW "'", s + 7);
            return -EINVAL;
        }
    } else if (!strncmp(s, "tcp://", 6)) {
        const char *colon = strrchr(s + 6, ':');
        long long port;
        if (!colon || colon == s + 6 || strpbrk(s + 6, " \t") ||
            pbd_cfg_parse_ll(colon + 1, &port) != 0 || port < 0 || port > 65535 ||
            !isdigit((unsigned char)colon[1])) {
            snprintf(c->why, c->wl, "not tcp://HOST:PORT: '" SHOW "'", s);
            return -EINVAL;
        }
    } else {
        snprintf(c->why, c->wl, "bad socket format (tcp://HOST:PORT or unix:///PATH): '" SHOW "'",
                 s);
        return -EINVAL;
    }
    free(p->fcgi_socket);
    p->fcgi_socket = *v;
    *v = NULL;
    return 0;
}

/* socket_owner = user[:group], both existing. */
static int apply_socket_owner(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                              void *base)
{
    struct pbd_program *p = base;
    char *colon = strchr(*v, ':');
    long long gid;
    int r;
    (void)k;
    if (colon)
        *colon = '\0';
    r = pbd_cfg_get_user(*v, c->why, c->wl);
    if (!r && colon)
        r = pbd_cfg_get_group(colon + 1, &gid, c->why, c->wl);
    if (colon)
        *colon = ':';
    if (r)
        return r;
    free(p->fcgi_socket_owner);
    p->fcgi_socket_owner = *v;
    *v = NULL;
    return 0;
}

/* [supervisord] logfile, pidfile: a path whose folder exists; NONE: none; syslog: none, with a
 * warning (procbusd logs to stderr, which systemd's journal or docker keep). */
static int apply_daemon_file(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                             void *base)
{
    char **dst = (char **)((char *)base + k->offset);
    int r;
    if (!strcasecmp(*v, "auto")) {
        snprintf(c->why, c->wl, "AUTO is for program logs only: give a path, or NONE");
        return -EINVAL;
    }
    if (!strcasecmp(*v, "syslog")) {
        pbd_cfg_warn(c->L, c->at,
                     "syslog is not supported by procbusd: it logs to stderr (and to a file "
                     "given here)");
        free(*dst);
        *dst = NULL;
        return 0;
    }
    free(*dst);
    *dst = NULL;
    r = pbd_cfg_get_logfile(c, *v, dst);
    if (r == -EINVAL && strstr(c->why, "does not exist")) {
        /* supervisord refuses to start; procbusd can do without: said, and not used */
        pbd_cfg_warn(c->L, c->at, "%s: not used", c->why);
        return 0;
    }
    if (r == 0 && *dst != NULL) { /* absolute, as supervisord: [supervisord] directory may
                                     change the working folder before it is opened */
        char *norm = pbd_cfg_normpath(*dst);
        if (norm == NULL)
            return -ENOMEM;
        free(*dst);
        *dst = norm;
    }
    return r;
}

/* ------------------------------------------------------------------ choices */

/* supervisord's loglevel names onto procbusd's levels (critical is error, trace and blather
 * are debug). */
static const struct pbd_config_choice sv_levels[] = {{"critical", 0}, {"error", 0},   {"warn", 1},
                                                     {"warning", 1},  {"info", 2},    {"debug", 3},
                                                     {"trace", 3},    {"blather", 3}, {NULL, 0}};

/* ---------------------------------------------------------------- the tables */

#define SVD PBD_SECTION_SUPERVISORD

const struct pbd_config_key pbd_cfg_supervisord_keys[] = {
    {.name = "environment",
     .type = PBD_KT_ENV,
     NOWHERE(SVD),
     .apply = pbd_cfg_apply_genv,
     .doc = "KEY=VALUE pairs added to every program's environment (before its own) and to "
            "%(ENV_X)s"},
    {.name = "logfile",
     .type = PBD_KT_LOGFILE,
     SV(SVD, logfile),
     .apply = apply_daemon_file,
     .doc = "procbusd's own log file (procbus maintail), besides stderr; default none"},
    {.name = "logfile_maxbytes",
     .type = PBD_KT_BYTES,
     SV(SVD, logfile_maxbytes),
     .def = "50MB",
     .doc = "rotate procbusd's log once a write makes it reach this size; 0: never"},
    {.name = "logfile_backups",
     .type = PBD_KT_INT,
     SV(SVD, logfile_backups),
     .min = 0,
     .max = INT_MAX,
     .def = "10",
     .doc = "rotated copies of procbusd's log kept"},
    {.name = "loglevel",
     .type = PBD_KT_ENUM,
     SV(SVD, log_level),
     .choices = sv_levels,
     .expect = "one of critical, error, warn, info, debug, trace, blather",
     .doc = "the least severe message procbusd logs (as [procbusd] log_level; the later wins)"},
    {.name = "pidfile",
     .type = PBD_KT_LOGFILE,
     SV(SVD, pidfile),
     .apply = apply_daemon_file,
     .doc = "a file procbusd writes its pid to at start and removes at exit; default none"},
    {.name = "childlogdir",
     .type = PBD_KT_FOLDER,
     SV(SVD, childlogdir),
     .doc = "the folder of AUTO log files; default $TMPDIR, else /tmp"},
    {.name = "identifier",
     .type = PBD_KT_STRING,
     SV(SVD, identifier),
     .expect = "empty (remove the line for the default)",
     .doc = "names AUTO log files and event envelopes (server:); default supervisor"},
    {.name = "nocleanup",
     .type = PBD_KT_BOOL,
     SV(SVD, nocleanup),
     .def = "false",
     .doc = "keep the AUTO log files of earlier runs (same identifier) instead of removing them "
            "at start"},
    {.name = "strip_ansi",
     .type = PBD_KT_BOOL,
     SV(SVD, strip_ansi),
     .def = "false",
     .doc = "remove ANSI escape sequences from what programs' log files get"},
    {.name = "umask",
     .type = PBD_KT_UMASK,
     SV(SVD, umask),
     .doc = "procbusd's umask, which programs inherit; default procbusd's"},
    {.name = "user",
     .type = PBD_KT_USER,
     SV(SVD, user),
     .doc = "the user procbusd must run as: another one is refused at start (procbusd does not "
            "switch)"},
    {.name = "directory",
     .type = PBD_KT_FOLDER,
     SV(SVD, directory),
     .doc = "procbusd's working folder (programs inherit it); default the one it started in"},
    {.name = "minfds",
     .type = PBD_KT_INT,
     SV(SVD, minfds),
     .min = 0,
     .max = INT_MAX,
     .def = "1024",
     .doc = "open-file limit procbusd and its programs get at least (raised, else refused)"},
    {.name = "minprocs",
     .type = PBD_KT_INT,
     SV(SVD, minprocs),
     .min = 0,
     .max = INT_MAX,
     .def = "200",
     .doc = "process limit (RLIMIT_NPROC) procbusd gets at least (raised, else refused)"},
    {.name = "nodaemon",
     .type = PBD_KT_BOOL,
     SV(SVD, nodaemon),
     .def = "false",
     .doc = "accepted: procbusd always stays in the foreground"},
    {.name = "silent",
     .type = PBD_KT_BOOL,
     SV(SVD, silent),
     .def = "false",
     .doc = "accepted: procbusd always logs to stderr"},
    {.name = NULL},
};

const struct pbd_config_key pbd_cfg_group_keys[] = {
    {.name = "programs",
     .type = PBD_KT_LIST,
     GROUPK(programs),
     .flags = PBD_KEY_REQUIRED,
     .doc = "the [program:x] (or [fcgi-program:x]) names whose processes form the group"},
    {.name = "priority",
     .type = PBD_KT_INT,
     GROUPK(priority),
     .min = INT_MIN,
     .max = INT_MAX,
     .def = "999",
     .doc = "the group's start order: lower groups start first"},
    {.name = NULL},
};

#define EVL PBD_SECTION_EVENTLISTENER

const struct pbd_config_key pbd_cfg_evl_keys[] = {
    {.name = "events",
     .type = PBD_KT_LIST,
     PROGK(EVL, evl_events),
     .flags = PBD_KEY_REQUIRED,
     .apply = apply_events,
     .doc = "the event types sent to the pool: PROCESS_STATE, PROCESS_STATE_FATAL, TICK_60, "
            "PROCESS_LOG ... (supervisord's names)"},
    {.name = "buffer_size",
     .type = PBD_KT_INT,
     PROGK(EVL, evl_buffer_size),
     .min = 1,
     .max = 1 << 20,
     .def = "10",
     .doc = "events kept while no listener of the pool is ready; the oldest is dropped beyond"},
    {.name = "result_handler",
     .type = PBD_KT_STRING,
     NOWHERE(EVL),
     .apply = apply_result_handler,
     .doc = "supervisord's default handler only (RESULT OK accepts, anything else rejects)"},
    {.name = "priority",
     .type = PBD_KT_INT,
     PROGK(EVL, group_priority),
     .min = INT_MIN,
     .max = INT_MAX,
     .def = "-1",
     .doc = "the pool's priority (and its listeners'): pools start first and stop last"},
    {.name = NULL},
};

#define FCGI PBD_SECTION_FCGI

const struct pbd_config_key pbd_cfg_fcgi_keys[] = {
    {.name = "socket",
     .type = PBD_KT_STRING,
     PROGK(FCGI, fcgi_socket),
     .flags = PBD_KEY_REQUIRED,
     .apply = apply_fcgi_socket,
     .doc = "the listening socket every instance gets as fd 0: tcp://HOST:PORT or "
            "unix:///PATH"},
    {.name = "socket_owner",
     .type = PBD_KT_STRING,
     PROGK(FCGI, fcgi_socket_owner),
     .apply = apply_socket_owner,
     .doc = "unix socket: its owner, user[:group]; default procbusd's, or user's"},
    {.name = "socket_mode",
     .type = PBD_KT_UMASK,
     PROGK(FCGI, fcgi_socket_mode),
     .def = "0700",
     .doc = "unix socket: its mode, octal"},
    {.name = "socket_backlog",
     .type = PBD_KT_INT,
     PROGK(FCGI, fcgi_socket_backlog),
     .min = 1,
     .max = 65535,
     .def = "4096",
     .doc = "the listen(2) backlog (the kernel caps it at net.core.somaxconn)"},
    {.name = NULL},
};

const struct pbd_config_key pbd_cfg_unix_http_keys[] = {
    {.name = "file",
     .type = PBD_KT_STRING,
     SV(PBD_SECTION_UNIX_HTTP, sv_unix_file),
     .doc = "only names SUPERVISOR_SERVER_URL (unix://FILE): procbusd serves no XML-RPC"},
    {.name = "chmod",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_UNIX_HTTP),
     .doc = "procbusd's control socket is [procbusd] socket, mode 0600"},
    {.name = "chown",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_UNIX_HTTP),
     .doc = "procbusd's control socket belongs to procbusd's user"},
    {.name = "username",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_UNIX_HTTP),
     .doc = "procbusd checks who connects by uid (SO_PEERCRED): root and its own user"},
    {.name = "password",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_UNIX_HTTP),
     .doc = "procbusd checks who connects by uid (SO_PEERCRED): root and its own user"},
    {.name = NULL},
};

const struct pbd_config_key pbd_cfg_inet_http_keys[] = {
    {.name = "port",
     .type = PBD_KT_STRING,
     SV(PBD_SECTION_INET_HTTP, sv_inet_port),
     .doc = "only names SUPERVISOR_SERVER_URL (http://HOST:PORT): procbusd serves no XML-RPC"},
    {.name = "username",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_INET_HTTP),
     .doc = "procbusd has no HTTP server"},
    {.name = "password",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_INET_HTTP),
     .doc = "procbusd has no HTTP server"},
    {.name = NULL},
};
