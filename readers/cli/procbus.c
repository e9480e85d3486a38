/* procbus.c - the procbus command: main, dispatch, status and control requests to procbusd. */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "ctl.h"

static const char *const state_names[] = {"UNKNOWN",  "STOPPED", "STARTING", "RUNNING", "BACKOFF",
                                          "STOPPING", "EXITED",  "FATAL",    "READY"};

const char *state_name(unsigned s)
{
    return s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

int state_by_name(const char *s)
{
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (strcasecmp(s, state_names[i]) == 0)
            return (int)i;
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: procbus [-c FILE] [-s SEGMENT] [-S SOCKET] COMMAND [ARGS]\n"
               "\n"
               "Reading (from the shared-memory segment, no daemon round trip):\n"
               "  status [NAME...]            supervisorctl-like status; exit 3 if a named\n"
               "                              program is not RUNNING/READY\n"
               "  ps [--all] [--tree] [--json] [-o FIELDS] [--sort KEY]\n"
               "                              table of programs (one consistent snapshot)\n"
               "  get NAME|PID [--json]       every field of one record\n"
               "  watch [NAME...] [--json] [--from-start]\n"
               "                              follow state transitions until interrupted\n"
               "  wait NAME --state STATE [--timeout 30s]\n"
               "                              until NAME reaches STATE (exit 5 timeout, 6 FATAL)\n"
               "  logs NAME [-f] [-n N]       captured output (needs -c FILE or $PROCBUS_CONFIG)\n"
               "  top                         live full-screen view (sort, filter, tree; q quits)\n"
               "Control (through procbusd's socket):\n"
               "  start NAME|GROUP:*|all ...  start and wait until RUNNING (or failed)\n"
               "  stop NAME|GROUP:*|all ...   stop and wait until stopped\n"
               "  restart NAME|GROUP:*|all ...\n"
               "  signal SIG NAME ...         send a signal to the main process\n"
               "  reload                      re-read the configuration: apply added, removed and\n"
               "                              changed programs, leave the others alone\n"
               "  shutdown                    stop everything and exit procbusd\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE   read [procbusd] segment/socket from FILE\n"
               "  -s, --segment NAME  segment (default $PROCBUS_SEGMENT or \"procbus\")\n"
               "  -S, --socket PATH   control socket (default $XDG_RUNTIME_DIR/procbus.sock or\n"
               "                      /run/procbus/procbus.sock)\n"
               "  -t, --timeout SECS  how long start/stop/restart wait (default 120; 0: no wait)\n"
               "Every command takes --help.\n"
               "Exit codes: 0 ok, 1 request failed, 2 usage, 3 not running, 4 no daemon/segment/\n"
               "program, 5 timed out, 6 (wait) the program went FATAL.\n");
}

int open_segment(const struct opts *o, struct procbus_reader *r)
{
    int rc = procbus_open(r, o->segment);

    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        fprintf(stderr,
                "procbus: no segment named %s: is procbusd running? set PROCBUS_SEGMENT or -s\n",
                o->segment ? o->segment
                           : (getenv("PROCBUS_SEGMENT") ? getenv("PROCBUS_SEGMENT") : "procbus"));
    else
        fprintf(stderr, "procbus: cannot read segment %s: %s\n", o->segment ? o->segment : "",
                strerror(-rc));
    return -1;
}

/* Say so when the publisher is not alive; returns its liveness. */
int warn_liveness(const struct procbus_reader *r)
{
    int l = procbus_liveness(r, 5ull * 1000000000ull);

    if (l == PROCBUS_SHUTDOWN)
        fprintf(stderr, "procbus: procbusd has shut down; showing its last state\n");
    else if (l == PROCBUS_STALE)
        fprintf(stderr, "procbus: procbusd is not responding (heartbeat older than 5 s); "
                        "showing its last state\n");
    else if (l == PROCBUS_GONE)
        fprintf(stderr, "procbus: this segment was replaced; run the command again\n");
    return l;
}

void fmt_duration(char *buf, size_t len, uint64_t ns)
{
    uint64_t s = ns / 1000000000ull;

    if (s >= 86400)
        snprintf(buf, len, "%llu days, %llu:%02llu:%02llu", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600), (unsigned long long)(s % 3600 / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

void fmt_exit_ev(char *buf, size_t len, uint8_t kind, int32_t code, int core)
{
    if (kind == PROCBUS_EXIT_CODE)
        snprintf(buf, len, "exit status %d", code);
    else if (kind == PROCBUS_EXIT_SIGNAL)
        snprintf(buf, len, "terminated by SIG%s%s", sigabbrev_np(code) ? sigabbrev_np(code) : "?",
                 core ? " (core dumped)" : "");
    else
        snprintf(buf, len, "not started");
}

void fmt_exit(char *buf, size_t len, const struct procbus_proc *p)
{
    fmt_exit_ev(buf, len, p->exit_kind, p->exit_code, (p->flags & PROCBUS_F_CORE_DUMPED) != 0);
}

/* Local time "2026-11-27 12:42:01" (with_ms: ".123" appended); "-" for 0. */
void fmt_time(char *buf, size_t len, uint64_t ns, int with_ms)
{
    time_t t = (time_t)(ns / 1000000000ull);
    struct tm tm;
    size_t n;

    if (ns == 0) {
        snprintf(buf, len, "-");
        return;
    }
    localtime_r(&t, &tm);
    n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    if (with_ms && n < len)
        snprintf(buf + n, len - n, ".%03u", (unsigned)(ns / 1000000ull % 1000));
}

int list_all(struct procbus_reader *r, struct procbus_proc **out, size_t *count)
{
    struct procbus_proc *list = NULL;
    size_t n = 0, cap = 256;
    int rc;

    for (;;) {
        struct procbus_proc *grown = realloc(list, cap * sizeof(*list));
        if (grown == NULL) {
            fprintf(stderr, "procbus: out of memory\n");
            free(list);
            return -ENOMEM;
        }
        list = grown;
        rc = procbus_list(r, list, cap, &n);
        if (rc != -ENOSPC)
            break;
        cap = n + 64;
    }
    if (rc < 0) {
        fprintf(stderr, "procbus: cannot read the process table: %s\n", strerror(-rc));
        free(list);
        return rc;
    }
    *out = list;
    *count = n;
    return 0;
}

uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A supervised program's record (status lists only those): not a traced process. */
static int is_program(const struct procbus_proc *p)
{
    return !(p->flags & PROCBUS_F_DESCENDANT) && p->name[0] != '\0';
}

static void print_status_line(const struct procbus_proc *p, int width)
{
    char detail[160], tmp[96], when[32];
    time_t t = (time_t)(p->state_since_ns / 1000000000ull);
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%b %d %H:%M:%S", &tm);
    switch (p->state) {
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_READY:
    case PROCBUS_STATE_STARTING:
    case PROCBUS_STATE_STOPPING:
        fmt_duration(tmp, sizeof(tmp), realtime_ns() - p->start_realtime_ns);
        snprintf(detail, sizeof(detail), "pid %d, uptime %s", p->pid, tmp);
        break;
    case PROCBUS_STATE_BACKOFF:
        fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "exited too quickly (%s), retrying", tmp);
        break;
    case PROCBUS_STATE_FATAL:
        fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "gave up: %s", tmp);
        break;
    case PROCBUS_STATE_EXITED:
        fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "%s, %s", when, tmp);
        break;
    default:
        snprintf(detail, sizeof(detail), "%s", p->exit_kind ? when : "Not started");
        break;
    }
    if (p->restarts > 0)
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), ", restarts %u",
                 p->restarts);
    printf("%-*s %-9s %s\n", width, p->name, state_name(p->state), detail);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct procbus_proc *)a)->name, ((const struct procbus_proc *)b)->name);
}

static int cmd_status(const struct opts *o, int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_proc *list = NULL;
    size_t n = 0, i;
    int width = 8, bad = 0, a;

    if (open_segment(o, &r) < 0)
        return EX_NOSEG;
    warn_liveness(&r);
    if (list_all(&r, &list, &n) < 0) {
        procbus_close(&r);
        return EX_FAIL;
    }
    qsort(list, n, sizeof(*list), by_name);
    for (i = 0; i < n; i++)
        if (is_program(&list[i]) && (int)strlen(list[i].name) > width)
            width = (int)strlen(list[i].name);
    width = width < 32 ? 32 : width;
    if (argc == 0) {
        for (i = 0; i < n; i++)
            if (is_program(&list[i]))
                print_status_line(&list[i], width);
    }
    for (a = 0; a < argc; a++) {
        int found = 0;
        size_t glen = strlen(argv[a]);
        int group = glen > 0 && (argv[a][glen - 1] == '*' || argv[a][glen - 1] == ':');
        if (group)
            glen -= argv[a][glen - 1] == '*' ? 2 : 1;
        for (i = 0; i < n; i++) {
            const struct procbus_proc *p = &list[i];
            if (!is_program(p))
                continue;
            if (group ? strncmp(p->name, argv[a], glen) == 0 &&
                            (p->name[glen] == ':' || p->name[glen] == '_' || p->name[glen] == '\0')
                      : strcmp(p->name, argv[a]) == 0) {
                found = 1;
                print_status_line(p, width);
                if (p->state != PROCBUS_STATE_RUNNING && p->state != PROCBUS_STATE_READY)
                    bad = 1;
            }
        }
        if (!found) {
            printf("%-*s ERROR (no such process)\n", width, argv[a]);
            bad = 1;
        }
    }
    free(list);
    procbus_close(&r);
    return bad ? EX_NOTRUN : EX_OK;
}

/* ---- control with waiting ---- */

struct target {
    char name[PROCBUS_NAME_LEN];
    uint64_t id;
    int done, ok;
    uint16_t last_state;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Which final states end the wait for `cmd`, and whether they mean success. */
static int judge(const char *cmd, uint16_t s, int *ok)
{
    if (strcmp(cmd, "stop") == 0) {
        *ok = 1;
        return s == PROCBUS_STATE_STOPPED || s == PROCBUS_STATE_EXITED || s == PROCBUS_STATE_FATAL;
    }
    *ok = s == PROCBUS_STATE_RUNNING || s == PROCBUS_STATE_READY;
    return *ok || s == PROCBUS_STATE_FATAL || s == PROCBUS_STATE_EXITED;
}

static int cmd_control(const struct opts *o, int argc, char **argv)
{
    const char *cmd = argv[0];
    int waits =
        strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0;
    struct procbus_reader r;
    struct target *t = NULL;
    size_t nt = 0, i, pending;
    char *buf = NULL;
    size_t blen = 0;
    FILE *mem;
    int rc, have_reader = 0, result = EX_OK;
    struct timespec t0;

    if (waits && o->timeout_s > 0 && procbus_open(&r, o->segment) == 0) {
        have_reader = 1; /* before the request: every transition after it is in the ring */
        procbus_seek_events(&r, PROCBUS_SEEK_NOW);
    }
    mem = open_memstream(&buf, &blen);
    if (mem == NULL)
        return EX_FAIL;
    rc = pbd_ctl_request(o->socket, argc, argv, mem, stderr);
    fclose(mem);
    if (rc < 0) {
        char def[108];
        if (o->socket == NULL)
            pbd_ctl_default_path(def, sizeof(def));
        fprintf(stderr,
                "procbus: cannot reach procbusd at %s: %s (is it running? -S sets the "
                "socket)\n",
                o->socket ? o->socket : def, strerror(-rc));
        free(buf);
        if (have_reader)
            procbus_close(&r);
        return EX_NOSEG;
    }
    /* detail lines: "NAME: start queued" / "NAME: ERROR (...)" / "NAME: killing N leftover
     * process(es)" (a stopped program's descendants: SIGKILL, nothing to wait for) */
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *colon = strstr(line, ": ");
        if (!waits || !have_reader || colon == NULL || strstr(colon, "ERROR") != NULL ||
            strstr(colon, "leftover") != NULL) {
            printf("%s\n", line);
            continue;
        }
        struct target *grown = realloc(t, (nt + 1) * sizeof(*t));
        if (grown == NULL)
            break;
        t = grown;
        memset(&t[nt], 0, sizeof(t[nt]));
        snprintf(t[nt].name, sizeof(t[nt].name), "%.*s", (int)(colon - line), line);
        {
            struct procbus_proc p;
            if (procbus_get_name(&r, t[nt].name, &p) == 0) {
                t[nt].id = p.id;
                t[nt].last_state = p.state;
                nt++;
            } else {
                printf("%s\n", line);
            }
        }
    }
    free(buf);
    if (rc == 1)
        result = EX_FAIL;
    if (nt == 0) {
        free(t);
        if (have_reader)
            procbus_close(&r);
        return result;
    }
    /* follow the event ring until each target settles */
    signal(SIGINT, on_sigint);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pending = nt;
    while (pending > 0 && !interrupted) {
        struct procbus_event ev;
        uint64_t missed = 0, gen = procbus_generation(&r);
        struct timespec now;
        int w;

        while ((w = procbus_next_event(&r, &ev, &missed)) == 0 || missed > 0) {
            if (missed > 0) { /* lapped: judge from the snapshot instead */
                for (i = 0; i < nt; i++) {
                    struct procbus_proc p;
                    int ok;
                    if (!t[i].done && procbus_get_name(&r, t[i].name, &p) == 0 &&
                        p.state != t[i].last_state && judge(cmd, p.state, &ok)) {
                        t[i].done = 1;
                        t[i].ok = ok;
                        t[i].last_state = p.state;
                        pending--;
                    }
                }
            }
            if (w != 0)
                break;
            for (i = 0; i < nt; i++) {
                int ok;
                if (t[i].done || ev.record_id != t[i].id || ev.kind != PROCBUS_EV_STATE)
                    continue;
                t[i].last_state = ev.new_state;
                if (judge(cmd, ev.new_state, &ok)) {
                    t[i].done = 1;
                    t[i].ok = ok;
                    pending--;
                }
            }
        }
        if (pending == 0)
            break;
        if (procbus_liveness(&r, 10ull * 1000000000ull) != PROCBUS_ALIVE) {
            warn_liveness(&r);
            result = EX_FAIL;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= o->timeout_s) {
            result = EX_TIMEOUT;
            break;
        }
        procbus_wait(&r, gen, 500);
    }
    for (i = 0; i < nt; i++) {
        struct procbus_proc p;
        char why[128] = "";
        if (procbus_get_name(&r, t[i].name, &p) == 0)
            fmt_exit(why, sizeof(why), &p);
        if (!t[i].done) {
            printf("%s: still %s (gave up waiting)\n", t[i].name, state_name(t[i].last_state));
            if (result == EX_OK)
                result = interrupted ? EX_FAIL : EX_TIMEOUT;
        } else if (t[i].ok) {
            printf("%s: %s\n", t[i].name, strcmp(cmd, "stop") == 0 ? "stopped" : "started");
        } else {
            printf("%s: ERROR (%s: %s)\n", t[i].name, state_name(t[i].last_state), why);
            result = EX_FAIL;
        }
    }
    free(t);
    procbus_close(&r);
    return result;
}

static void load_conf(struct opts *o, const char *path, struct pbd_config *cfg)
{
    char err[512];

    if (pbd_config_load(cfg, path, NULL, err, sizeof(err), NULL, NULL) < 0) {
        fprintf(stderr, "procbus: %s\n", err);
        exit(EX_USAGE);
    }
    if (o->segment == NULL)
        o->segment = cfg->daemon.segment;
    if (o->socket == NULL)
        o->socket = cfg->daemon.socket;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"segment", required_argument, NULL, 's'},
        {"socket", required_argument, NULL, 'S'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    struct opts o = {.timeout_s = 120};
    struct pbd_config cfg;
    const char *conf = NULL, *cmd;
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
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    cmd = argv[optind];
    for (int i = optind + 1; i < argc && strcmp(cmd, "status") == 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EX_OK;
        }
    if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0 ||
        strcmp(cmd, "signal") == 0 || strcmp(cmd, "reload") == 0 || strcmp(cmd, "shutdown") == 0)
        for (int i = optind + 1; i < argc; i++)
            if (strcmp(argv[i], "--help") == 0) {
                usage(stdout);
                return EX_OK;
            }
    if (conf == NULL && strcmp(cmd, "logs") == 0 && getenv("PROCBUS_CONFIG") != NULL &&
        getenv("PROCBUS_CONFIG")[0] != '\0')
        conf = getenv("PROCBUS_CONFIG");
    if (conf != NULL) {
        load_conf(&o, conf, &cfg);
        o.cfg = &cfg;
    }
    if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&o, argc - optind - 1, argv + optind + 1);
    else if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0 ||
             strcmp(cmd, "signal") == 0 || strcmp(cmd, "reload") == 0 ||
             strcmp(cmd, "shutdown") == 0)
        rc = cmd_control(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "ps") == 0)
        rc = cmd_ps(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "get") == 0)
        rc = cmd_get(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "watch") == 0)
        rc = cmd_watch(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "wait") == 0)
        rc = cmd_wait(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "logs") == 0)
        rc = cmd_logs(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "top") == 0)
        rc = cmd_top(&o, argc - optind, argv + optind);
    else if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        rc = EX_OK;
    } else {
        fprintf(stderr, "procbus: unknown command '%s' (see procbus --help)\n", cmd);
        rc = EX_USAGE;
    }
    pbd_config_free(&cfg);
    return rc;
}
