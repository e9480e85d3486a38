/* config_keys.c - the key table (every key procbusd reads, described once) and how rows apply. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_NUMPROCS 100000

/* Where a key lands: its section and the field of that section's struct. */
#define DAEMON(m)                                                                 \
    .section = PBD_SECTION_DAEMON, .offset = offsetof(struct pbd_daemon_conf, m), \
    .size = sizeof(((struct pbd_daemon_conf *)0)->m)
#define PROG(m)                                                                \
    .section = PBD_SECTION_PROGRAM, .offset = offsetof(struct pbd_program, m), \
    .size = sizeof(((struct pbd_program *)0)->m)
#define NOWHERE(sec) .section = (sec), .offset = PBD_KEY_NOWHERE, .size = 0

/* --------------------------------------------------------- special parsing */

/* An int that must also be a power of two (trace_ring_kb). */
static int apply_pow2(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base);
/* exitcodes: the codes and their count. */
static int apply_exitcodes(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                           void *base);
/* A program's environment: its pairs are set over [supervisord]'s (already in the vector). */
static int apply_env(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base);
/* depends_on: the dependencies and their count. */
static int apply_deps(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base);

/* ------------------------------------------------------------------ choices */

static const struct pbd_config_choice log_levels[] = {{"error", 0}, {"warn", 1},  {"warning", 1},
                                                      {"info", 2},  {"debug", 3}, {NULL, 0}};

static const struct pbd_config_choice traces[] = {{"auto", PBD_TRACE_AUTO},
                                                  {"proc", PBD_TRACE_PROC},
                                                  {"on", PBD_TRACE_ON},
                                                  {"true", PBD_TRACE_ON},
                                                  {"yes", PBD_TRACE_ON},
                                                  {"1", PBD_TRACE_ON},
                                                  {"off", PBD_TRACE_OFF},
                                                  {"false", PBD_TRACE_OFF},
                                                  {"no", PBD_TRACE_OFF},
                                                  {"0", PBD_TRACE_OFF},
                                                  {NULL, 0}};

static const struct pbd_config_choice autorestarts[] = {{"unexpected", PBD_RESTART_UNEXPECTED},
                                                        {"true", PBD_RESTART_TRUE},
                                                        {"yes", PBD_RESTART_TRUE},
                                                        {"on", PBD_RESTART_TRUE},
                                                        {"1", PBD_RESTART_TRUE},
                                                        {"false", PBD_RESTART_FALSE},
                                                        {"no", PBD_RESTART_FALSE},
                                                        {"off", PBD_RESTART_FALSE},
                                                        {"0", PBD_RESTART_FALSE},
                                                        {NULL, 0}};

static const struct pbd_config_choice backoffs[] = {
    {"linear", PBD_BACKOFF_LINEAR}, {"exponential", PBD_BACKOFF_EXPONENTIAL}, {NULL, 0}};

/* ---------------------------------------------------------------- the table */

static const struct pbd_config_key daemon_keys[] = {
    {.name = "segment",
     .type = PBD_KT_STRING,
     DAEMON(segment),
     .expect = "empty (remove the line for the default)",
     .doc = "segment name (/run/procbus/NAME as root, else /dev/shm/NAME) or a path with '/'; "
            "default $PROCBUS_SEGMENT, else procbus"},
    {.name = "socket",
     .type = PBD_KT_STRING,
     DAEMON(socket),
     .expect = "empty (remove the line for the default)",
     .doc = "control socket path; default $XDG_RUNTIME_DIR/procbus.sock, else "
            "/run/procbus/procbus.sock"},
    {.name = "log_level",
     .type = PBD_KT_ENUM,
     DAEMON(log_level),
     .choices = log_levels,
     .expect = "one of error, warn, info, debug",
     .def = "info",
     .doc = "the least severe message procbusd logs"},
    {.name = "heartbeat_ms",
     .type = PBD_KT_INT,
     DAEMON(heartbeat_ms),
     .min = 1,
     .max = 3600000,
     .def = "500",
     .doc = "publisher heartbeat period, ms (stated in the segment: readers call procbusd "
            "stale after 10 periods, at least 1 s)"},
    {.name = "sample_ms",
     .type = PBD_KT_INT,
     DAEMON(sample_ms),
     .min = 1,
     .max = INT_MAX,
     .def = "1000",
     .doc = "CPU/RSS sampling period, ms"},
    {.name = "trace",
     .type = PBD_KT_ENUM,
     DAEMON(trace),
     .choices = traces,
     .expect = "one of auto, on, off, proc",
     .def = "auto",
     .doc = "process-tree tracing: eBPF if it loads (auto), eBPF or fail (on), /proc polling "
            "(proc), none (off)"},
    {.name = "observe",
     .type = PBD_KT_BOOL,
     DAEMON(observe),
     .expect = "a boolean (true/false)",
     .def = "false",
     .doc = "publish every process on the host, not only the programs' trees"},
    {.name = "keep_exited_secs",
     .type = PBD_KT_INT,
     DAEMON(keep_exited_secs),
     .min = 0,
     .max = 86400 * 365,
     .def = "60",
     .doc = "seconds an exited descendant or observed record stays in the snapshot"},
    {.name = "trace_ring_kb",
     .type = PBD_KT_INT,
     DAEMON(trace_ring_kb),
     .min = 4,
     .max = 1 << 20,
     .def = "256",
     .apply = apply_pow2,
     .doc = "the eBPF ring buffer, KiB, a power of two"},
    {.name = "trace_batch_ms",
     .type = PBD_KT_INT,
     DAEMON(trace_batch_ms),
     .min = 0,
     .max = 1000,
     .def = "0",
     .doc = "0: wake for every tracer event; N: at most one wake-up per N ms"},
    {.name = "capacity",
     .type = PBD_KT_INT,
     DAEMON(capacity),
     .min = 1,
     /* the most whose 8 snapshot slots fit the 1 GiB `current` can address (ABI.md) */
     .max = 1u << 21,
     .def = "4096",
     .doc = "segment capacity, in process records"},
    {.name = "segment_mode",
     .type = PBD_KT_MODE,
     DAEMON(segment_mode),
     .min = 0600,
     .max = 0644,
     .def = "0640",
     .doc = "the segment file's mode, octal: 0600, 0640 or 0644 (who may read the segment)"},
    {.name = "segment_group",
     .type = PBD_KT_GROUP,
     DAEMON(segment_gid),
     .def = "none",
     .doc = "the segment file's group (name or gid), e.g. a monitoring group with "
            "segment_mode = 0640; none: procbusd's"},
};

static const struct pbd_config_key program_keys[] = {
    {.name = "command",
     .type = PBD_KT_STRING,
     PROG(command),
     .flags = PBD_KEY_REQUIRED,
     .doc = "the program and its arguments, split like a shell without one (or run by sh -c "
            "with shell = true)"},
    {.name = "process_name",
     .type = PBD_KT_NAME,
     PROG(name),
     .stage = PBD_STAGE_LAST,
     .def = "%(program_name)s",
     .doc = "the instance name, expanded per instance; needs %(process_num) when numprocs > 1"},
    {.name = "numprocs",
     .type = PBD_KT_INT,
     PROG(numprocs),
     .stage = PBD_STAGE_SECTION,
     .min = 1,
     .max = MAX_NUMPROCS,
     .def = "1",
     .doc = "number of instances"},
    {.name = "numprocs_start",
     .type = PBD_KT_INT,
     PROG(process_num),
     .stage = PBD_STAGE_SECTION,
     .min = 0,
     .max = INT_MAX - MAX_NUMPROCS,
     .def = "0",
     .doc = "process_num of the first instance (the next ones count up)"},
    {.name = "priority",
     .type = PBD_KT_INT,
     PROG(priority),
     .min = INT_MIN,
     .max = INT_MAX,
     .def = "999",
     .doc = "lower starts first and stops last"},
    {.name = "autostart",
     .type = PBD_KT_BOOL,
     PROG(autostart),
     .def = "true",
     .doc = "start when procbusd starts"},
    {.name = "autorestart",
     .type = PBD_KT_ENUM,
     PROG(autorestart),
     .choices = autorestarts,
     .expect = "one of true, false, unexpected",
     .def = "unexpected",
     .doc = "restart after an exit: never, always, or when the code is not in exitcodes"},
    {.name = "startsecs",
     .type = PBD_KT_INT,
     PROG(startsecs),
     .min = 0,
     .max = INT_MAX,
     .def = "1",
     .doc = "seconds the program must stay up to be RUNNING"},
    {.name = "startretries",
     .type = PBD_KT_INT,
     PROG(startretries),
     .min = 0,
     .max = INT_MAX,
     .def = "3",
     .doc = "failed starts in a row before FATAL"},
    {.name = "exitcodes",
     .type = PBD_KT_EXITCODES,
     PROG(exitcodes),
     .def = "0",
     .apply = apply_exitcodes,
     .doc = "the expected exit codes, comma-separated, at most 32"},
    {.name = "stopsignal",
     .type = PBD_KT_SIGNAL,
     PROG(stopsignal),
     .def = "TERM",
     .doc = "the signal that asks the program to stop"},
    {.name = "stopwaitsecs",
     .type = PBD_KT_INT,
     PROG(stopwaitsecs),
     .min = 0,
     .max = INT_MAX,
     .def = "10",
     .doc = "seconds between stopsignal and SIGKILL"},
    {.name = "stopasgroup",
     .type = PBD_KT_BOOL,
     PROG(stopasgroup),
     .def = "false",
     .doc = "send stopsignal to the process group"},
    {.name = "killasgroup",
     .type = PBD_KT_BOOL,
     PROG(killasgroup),
     .doc = "send SIGKILL to the process group; default: stopasgroup's value"},
    {.name = "user",
     .type = PBD_KT_USER,
     PROG(user),
     .doc = "the user to run as (name or uid; must exist); default procbusd's"},
    {.name = "directory",
     .type = PBD_KT_STRING,
     PROG(directory),
     .expect = "empty (remove the line to keep procbusd's folder)",
     .doc = "the folder to chdir to before exec; default procbusd's"},
    {.name = "umask",
     .type = PBD_KT_UMASK,
     PROG(umask),
     .doc = "the umask, octal; default procbusd's"},
    {.name = "environment",
     .type = PBD_KT_ENV,
     PROG(env),
     .stage = PBD_STAGE_FIRST,
     .apply = apply_env,
     .doc = "KEY=VALUE pairs added to the environment (and to %(ENV_X)s)"},
    {.name = "clean_environment",
     .type = PBD_KT_BOOL,
     PROG(clean_env),
     .def = "false",
     .doc = "start from an empty environment (PATH only) instead of procbusd's; environment= "
            "and the user's HOME, USER, LOGNAME, SHELL still apply"},
    {.name = "redirect_stderr",
     .type = PBD_KT_BOOL,
     PROG(redirect_stderr),
     .def = "false",
     .doc = "stderr goes to the stdout log"},
    {.name = "stdout_logfile",
     .type = PBD_KT_LOGFILE,
     PROG(out.path),
     .def = "AUTO",
     .doc = "where stdout goes: a path, NONE, or AUTO (a file procbusd names in childlogdir)"},
    {.name = "stdout_logfile_maxbytes",
     .type = PBD_KT_BYTES,
     PROG(out.maxbytes),
     .def = "50MB",
     .doc = "rotate the stdout log once a write makes it reach this size; 0: never"},
    {.name = "stdout_logfile_backups",
     .type = PBD_KT_INT,
     PROG(out.backups),
     .min = 0,
     .max = INT_MAX,
     .def = "10",
     .doc = "rotated stdout logs kept"},
    {.name = "stdout_events_enabled",
     .type = PBD_KT_BOOL,
     PROG(out.events),
     .def = "false",
     .doc = "send each piece of stdout to event listeners as PROCESS_LOG_STDOUT"},
    {.name = "stdout_capture_maxbytes",
     .type = PBD_KT_BYTES,
     PROG(out.capture_maxbytes),
     .def = "0",
     .doc = "capture mode: stdout between supervisord's BEGIN and END tokens becomes a "
            "PROCESS_COMMUNICATION_STDOUT event (at most this many bytes); 0: off"},
    {.name = "stderr_logfile",
     .type = PBD_KT_LOGFILE,
     PROG(err.path),
     .def = "AUTO",
     .doc = "where stderr goes: a path, NONE, or AUTO (a file procbusd names in childlogdir)"},
    {.name = "stderr_logfile_maxbytes",
     .type = PBD_KT_BYTES,
     PROG(err.maxbytes),
     .def = "50MB",
     .doc = "rotate the stderr log once a write makes it reach this size; 0: never"},
    {.name = "stderr_logfile_backups",
     .type = PBD_KT_INT,
     PROG(err.backups),
     .min = 0,
     .max = INT_MAX,
     .def = "10",
     .doc = "rotated stderr logs kept"},
    {.name = "stderr_events_enabled",
     .type = PBD_KT_BOOL,
     PROG(err.events),
     .def = "false",
     .doc = "send each piece of stderr to event listeners as PROCESS_LOG_STDERR"},
    {.name = "stderr_capture_maxbytes",
     .type = PBD_KT_BYTES,
     PROG(err.capture_maxbytes),
     .def = "0",
     .doc = "capture mode for stderr (PROCESS_COMMUNICATION_STDERR); 0: off"},
    {.name = "serverurl",
     .type = PBD_KT_STRING,
     PROG(serverurl),
     .apply = pbd_cfg_apply_serverurl,
     .doc = "SUPERVISOR_SERVER_URL for the program; AUTO (default): from [unix_http_server] or "
            "[inet_http_server], as supervisord"},
    {.name = "depends_on",
     .type = PBD_KT_DEPS,
     PROG(deps),
     .apply = apply_deps,
     .doc = "NAME[:started|running|ready|completed], comma-separated, at most 16"},
    {.name = "ready_fd",
     .type = PBD_KT_INT,
     PROG(ready_fd),
     .min = 3,
     .max = INT_MAX,
     .doc = "the descriptor the program writes a newline to when ready; default none"},
    {.name = "ready_log",
     .type = PBD_KT_REGEX,
     PROG(ready_log),
     .doc = "the program is ready when an output line matches this regex; default none"},
    {.name = "backoff",
     .type = PBD_KT_ENUM,
     PROG(backoff),
     .choices = backoffs,
     .expect = "one of linear, exponential",
     .def = "linear",
     .doc = "how the delay between restart attempts grows"},
    {.name = "backoff_max",
     .type = PBD_KT_INT,
     PROG(backoff_max),
     .min = 1,
     .max = INT_MAX,
     .def = "60",
     .doc = "the longest delay between restart attempts, seconds"},
    {.name = "startlimit_burst",
     .type = PBD_KT_INT,
     PROG(startlimit_burst),
     .min = 1,
     .max = INT_MAX,
     .def = "5",
     .doc = "starts allowed within startlimit_interval_secs; an autorestart beyond them waits "
            "in BACKOFF"},
    {.name = "startlimit_interval_secs",
     .type = PBD_KT_INT,
     PROG(startlimit_interval),
     .min = 0,
     .max = 86400 * 365,
     .def = "10",
     .doc = "the start limit's window, seconds; 0: no start limit"},
    {.name = "shell",
     .type = PBD_KT_BOOL,
     PROG(shell),
     .def = "false",
     .doc = "run command with /bin/sh -c instead of splitting it"},
    /* supervisord keys procbusd accepts and ignores (with a warning) */
    {.name = "stdout_syslog",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_PROGRAM),
     .doc = "procbusd does not log to syslog"},
    {.name = "stderr_syslog",
     .type = PBD_KT_IGNORED,
     NOWHERE(PBD_SECTION_PROGRAM),
     .doc = "procbusd does not log to syslog"},
};

static const struct pbd_config_key include_keys[] = {
    {.name = "files",
     .type = PBD_KT_GLOBS,
     NOWHERE(PBD_SECTION_INCLUDE),
     .stage = PBD_STAGE_READ,
     .flags = PBD_KEY_REQUIRED,
     .doc = "more files to read: globs, relative to the including file's folder"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const struct pbd_config_key *keys; /* NULL-name terminated when n is 0 */
    size_t n;
    const char *name;
} sections[PBD_SECTION__COUNT] = {
    [PBD_SECTION_DAEMON] = {daemon_keys, N_OF(daemon_keys), "procbusd"},
    [PBD_SECTION_PROGRAM] = {program_keys, N_OF(program_keys), "program:NAME"},
    [PBD_SECTION_INCLUDE] = {include_keys, N_OF(include_keys), "include"},
    [PBD_SECTION_SUPERVISORD] = {pbd_cfg_supervisord_keys, 0, "supervisord"},
    [PBD_SECTION_GROUP] = {pbd_cfg_group_keys, 0, "group:NAME"},
    [PBD_SECTION_EVENTLISTENER] = {pbd_cfg_evl_keys, 0, "eventlistener:NAME"},
    [PBD_SECTION_FCGI] = {pbd_cfg_fcgi_keys, 0, "fcgi-program:NAME"},
    [PBD_SECTION_UNIX_HTTP] = {pbd_cfg_unix_http_keys, 0, "unix_http_server"},
    [PBD_SECTION_INET_HTTP] = {pbd_cfg_inet_http_keys, 0, "inet_http_server"},
};

/* The count of a section's rows (the tables of config_keys_sv.c end with a NULL name). */
static size_t section_count(enum pbd_config_section section)
{
    size_t n = sections[section].n;
    if (n == 0)
        while (sections[section].keys[n].name)
            n++;
    return n;
}

static const char *const type_names[PBD_KT__COUNT] = {
    [PBD_KT_STRING] = "string",     [PBD_KT_BOOL] = "bool",           [PBD_KT_INT] = "int",
    [PBD_KT_BYTES] = "bytes",       [PBD_KT_ENUM] = "enum",           [PBD_KT_SIGNAL] = "signal",
    [PBD_KT_UMASK] = "umask",       [PBD_KT_USER] = "user",           [PBD_KT_LOGFILE] = "logfile",
    [PBD_KT_REGEX] = "regex",       [PBD_KT_EXITCODES] = "exitcodes", [PBD_KT_ENV] = "environment",
    [PBD_KT_DEPS] = "dependencies", [PBD_KT_NAME] = "name",           [PBD_KT_GLOBS] = "globs",
    [PBD_KT_IGNORED] = "ignored",   [PBD_KT_MODE] = "mode",           [PBD_KT_GROUP] = "group",
    [PBD_KT_LIST] = "list",         [PBD_KT_FOLDER] = "folder",
};

const struct pbd_config_key *pbd_config_keys(enum pbd_config_section section, size_t *n)
{
    if ((unsigned)section >= PBD_SECTION__COUNT) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = section_count(section);
    return sections[section].keys;
}

const struct pbd_config_key *pbd_config_key_find(enum pbd_config_section section, const char *key)
{
    size_t n;
    const struct pbd_config_key *k = pbd_config_keys(section, &n);
    for (size_t i = 0; key && i < n; i++)
        if (!strcmp(k[i].name, key))
            return &k[i];
    return NULL;
}

const char *pbd_config_type_name(enum pbd_key_type type)
{
    return (unsigned)type < PBD_KT__COUNT ? type_names[type] : "?";
}

const char *pbd_config_section_name(enum pbd_config_section section)
{
    return (unsigned)section < PBD_SECTION__COUNT ? sections[section].name : "?";
}

/* ------------------------------------------------------ storing by type */

static void *field(const struct pbd_config_key *k, void *base)
{
    return (char *)base + k->offset;
}

/* Store n (in range for the field: the row's min/max say so) into a 1, 2, 4 or 8 byte field. */
static void store_int(const struct pbd_config_key *k, void *base, long long n)
{
    void *f = field(k, base);
    if (k->size == sizeof(uint64_t)) {
        uint64_t v = (uint64_t)n;
        memcpy(f, &v, sizeof(v));
    } else if (k->size == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)n;
        memcpy(f, &v, sizeof(v));
    } else if (k->size == sizeof(uint16_t)) {
        uint16_t v = (uint16_t)n;
        memcpy(f, &v, sizeof(v));
    } else {
        uint8_t v = (uint8_t)n;
        memcpy(f, &v, sizeof(v));
    }
}

/* Move the value into a char * field (freeing what was there). */
static void take_string(const struct pbd_config_key *k, void *base, char **v)
{
    char **dst = field(k, base);
    free(*dst);
    *dst = *v;
    *v = NULL;
}

static int apply_by_type(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **vp,
                         void *base)
{
    const char *v = *vp;
    long long n = 0;
    int r;
    switch (k->type) {
    case PBD_KT_STRING:
        if (!*v) {
            snprintf(c->why, c->wl, "%s", k->expect ? k->expect : "empty");
            return -EINVAL;
        }
        take_string(k, base, vp);
        return 0;
    case PBD_KT_BOOL:
        return pbd_cfg_get_bool(v, k->expect, field(k, base), c->why, c->wl);
    case PBD_KT_INT:
        r = pbd_cfg_get_int(v, k->min, k->max, &n, c->why, c->wl);
        if (!r)
            store_int(k, base, n);
        return r;
    case PBD_KT_BYTES:
        return pbd_cfg_get_bytes(v, field(k, base), c->why, c->wl);
    case PBD_KT_ENUM:
        for (const struct pbd_config_choice *ch = k->choices; ch && ch->name; ch++) {
            if (!strcasecmp(v, ch->name)) {
                store_int(k, base, ch->value);
                return 0;
            }
        }
        snprintf(c->why, c->wl, "not %s: '" SHOW "'", k->expect ? k->expect : "a known value", v);
        return -EINVAL;
    case PBD_KT_SIGNAL:
        n = pbd_signal_number(v);
        if (n < 0) {
            snprintf(c->why, c->wl,
                     "not a signal name or number (TERM, HUP, INT, QUIT, KILL, USR1, USR2 ...): "
                     "'" SHOW "'",
                     v);
            return -EINVAL;
        }
        store_int(k, base, n);
        return 0;
    case PBD_KT_UMASK:
        return pbd_cfg_get_umask(v, field(k, base), c->why, c->wl);
    case PBD_KT_USER:
        r = pbd_cfg_get_user(v, c->why, c->wl);
        if (!r)
            take_string(k, base, vp);
        return r;
    case PBD_KT_LOGFILE: {
        char **dst = field(k, base);
        free(*dst);
        return pbd_cfg_get_logfile(c, v, dst);
    }
    case PBD_KT_REGEX:
        r = pbd_cfg_get_regex(v, c->why, c->wl);
        if (!r)
            take_string(k, base, vp);
        return r;
    case PBD_KT_NAME:
        r = pbd_cfg_check_name(v, "process name", c->why, c->wl);
        if (!r)
            snprintf(field(k, base), k->size, "%s", v);
        return r;
    case PBD_KT_MODE: {
        mode_t m = 0;
        r = pbd_cfg_get_umask(v, &m, c->why, c->wl);
        if (!r && ((m & ~(mode_t)k->max) || (m & (mode_t)k->min) != (mode_t)k->min)) {
            snprintf(c->why, c->wl,
                     "not an octal mode within %04llo that includes %04llo: '" SHOW "'",
                     (unsigned long long)k->max, (unsigned long long)k->min, v);
            r = -EINVAL;
        }
        if (!r)
            memcpy(field(k, base), &m, sizeof(m));
        return r;
    }
    case PBD_KT_GROUP: {
        long long gid = -1;
        r = pbd_cfg_get_group(v, &gid, c->why, c->wl);
        if (!r)
            memcpy(field(k, base), &gid, sizeof(gid));
        return r;
    }
    case PBD_KT_LIST: {
        char ***dst = field(k, base);
        pbd_free_argv(*dst);
        *dst = NULL;
        return pbd_cfg_get_list(v, dst, c->why, c->wl);
    }
    case PBD_KT_FOLDER:
        r = pbd_cfg_get_folder(v, c->why, c->wl);
        if (!r)
            take_string(k, base, vp);
        return r;
    case PBD_KT_EXITCODES: /* these have their own apply */
    case PBD_KT_ENV:
    case PBD_KT_DEPS:
        snprintf(c->why, c->wl, "internal error: no parser for this key");
        return -EINVAL;
    case PBD_KT_GLOBS:   /* followed by the INI reader */
    case PBD_KT_IGNORED: /* warned about, never applied */
    case PBD_KT__COUNT:
        break;
    }
    return 0;
}

/* ------------------------------------------------------- special parsing */

static int apply_pow2(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base)
{
    long long n = 0;
    int r = pbd_cfg_get_int(*v, k->min, k->max, &n, c->why, c->wl);
    if (!r && (n & (n - 1)) != 0) {
        snprintf(c->why, c->wl, "not a power of two: %lld", n);
        r = -EINVAL;
    }
    if (!r)
        store_int(k, base, n);
    return r;
}

static int apply_exitcodes(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v,
                           void *base)
{
    struct pbd_program *p = base;
    (void)k;
    return pbd_cfg_get_exitcodes(*v, p->exitcodes, &p->n_exitcodes, c->why, c->wl);
}

static int apply_env(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base)
{
    char ***env = field(k, base);
    size_t n = 0, cap;
    while (*env && (*env)[n])
        n++;
    cap = *env ? n + 1 : 0;
    return pbd_cfg_env_pairs(*v, env, &n, &cap, c->why, c->wl);
}

int pbd_cfg_apply_genv(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base)
{
    struct loader *L = c->L;
    (void)k;
    (void)base;
    return pbd_cfg_env_pairs(*v, &L->genv, &L->n_genv, &L->cap_genv, c->why, c->wl);
}

static int apply_deps(const struct pbd_config_key *k, struct pbd_key_ctx *c, char **v, void *base)
{
    (void)k;
    return pbd_cfg_get_deps(*v, base, c->why, c->wl);
}

/* ------------------------------------------------------------ applying */

int pbd_cfg_apply(struct loader *L, const struct pbd_config_key *k, const struct xctx *x,
                  const char *raw, const struct loc *at, int first, void *base)
{
    char why[512], *v = NULL;
    struct pbd_key_ctx c = {L, at, first, why, sizeof(why)};
    int r;

    why[0] = '\0';
    if (x)
        r = pbd_cfg_expand(L, x, raw, &v, why, sizeof(why));
    else
        r = (v = strdup(raw)) ? 0 : -ENOMEM;
    if (!r) {
        if (k->type != PBD_KT_ENV) /* quotes may keep spaces at the ends */
            trim(v);
        r = k->apply ? k->apply(k, &c, &v, base) : apply_by_type(k, &c, &v, base);
    }
    free(v);
    if (r == -ENOMEM)
        return pbd_cfg_oom(L);
    if (r)
        return pbd_cfg_fail(L, r, at, "%s", why);
    return 0;
}

int pbd_cfg_defaults(struct loader *L, enum pbd_config_section section, void *base)
{
    size_t n;
    const struct pbd_config_key *k = pbd_config_keys(section, &n);
    for (size_t i = 0; i < n; i++) {
        struct loc at = {"built-in default", 0, pbd_config_section_name(section), k[i].name};
        int r;
        if (!k[i].def || k[i].stage == PBD_STAGE_LAST)
            continue;
        r = pbd_cfg_apply(L, &k[i], NULL, k[i].def, &at, 0, base);
        if (r)
            return r;
    }
    return 0;
}
