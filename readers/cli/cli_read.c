/* cli_read.c - the reading subcommands of procbus: ps, get, watch, wait and logs. */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logfile.h"

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGINT/SIGTERM end watch and logs -f cleanly (no SA_RESTART: waits return EINTR). */
static void catch_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

long long parse_duration_ms(const char *s)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-')
        return -1;
    v = strtod(s, &end);
    if (end == s || v < 0 || v > 1e9)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return (long long)(v * 1000.0);
    if (strcmp(end, "ms") == 0)
        return (long long)v;
    if (strcmp(end, "m") == 0)
        return (long long)(v * 60000.0);
    if (strcmp(end, "h") == 0)
        return (long long)(v * 3600000.0);
    return -1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ps ---- */

enum col {
    C_NAME,
    C_PID,
    C_STATE,
    C_UPTIME,
    C_RESTARTS,
    C_CPU,
    C_RSS,
    C_PPID,
    C_PGID,
    C_ID,
    C_EXIT,
    C_SINCE,
    C_COMM,
    C_CMD,
    C_COUNT
};

static const struct {
    const char *key, *title;
    int right; /* right-aligned */
} cols[C_COUNT] = {
    {"name", "NAME", 0},     {"pid", "PID", 1},           {"state", "STATE", 0},
    {"uptime", "UPTIME", 1}, {"restarts", "RESTARTS", 1}, {"cpu", "CPU", 1},
    {"rss", "RSS", 1},       {"ppid", "PPID", 1},         {"pgid", "PGID", 1},
    {"id", "ID", 1},         {"exit", "EXIT", 0},         {"since", "SINCE", 0},
    {"comm", "COMM", 0},     {"cmd", "COMMAND", 0},
};

static void ps_usage(FILE *f)
{
    fprintf(f, "usage: procbus ps [--all] [--tree] [--json] [-o FIELDS] [--sort KEY]\n"
               "Table of the supervised programs from one consistent snapshot.\n"
               "  -a, --all         also list descendant (unsupervised) processes\n"
               "      --tree        show descendants indented under their program\n"
               "      --json        JSON object {\"processes\": [...]} (docs/JSON.md)\n"
               "  -o FIELDS         comma-separated columns out of: name pid state uptime\n"
               "                    restarts cpu rss ppid pgid id exit since comm cmd\n"
               "                    (default name,pid,state,uptime,restarts,cpu,rss,cmd)\n"
               "      --sort KEY    cpu|rss|restarts|age|name|pid (default name; cpu, rss,\n"
               "                    restarts and age sort largest/oldest first)\n"
               "The table fits the terminal width; colours only on a terminal without NO_COLOR.\n");
}

const char *cli_label(char *buf, size_t len, const struct procbus_proc *p)
{
    if (p->name[0] != '\0')
        snprintf(buf, len, "%.*s", PROCBUS_NAME_LEN, p->name);
    else
        snprintf(buf, len, "%.*s", PROCBUS_COMM_LEN, p->comm);
    return buf;
}

/* A state with a live main process (the record keeps the last pid after it ends). */
int cli_live(const struct procbus_proc *p)
{
    return p->pid > 0 && (p->state == PROCBUS_STATE_STARTING || p->state == PROCBUS_STATE_RUNNING ||
                          p->state == PROCBUS_STATE_READY || p->state == PROCBUS_STATE_STOPPING);
}

static int sort_key;
enum {
    S_NAME = CLI_SORT_NAME,
    S_PID = CLI_SORT_PID,
    S_CPU = CLI_SORT_CPU,
    S_RSS = CLI_SORT_RSS,
    S_RESTARTS = CLI_SORT_RESTARTS,
    S_AGE = CLI_SORT_AGE
};

int cli_proc_cmp(const struct procbus_proc *x, const struct procbus_proc *y, enum cli_sort key)
{
    int byname;

    switch (key) {
    case CLI_SORT_PID:
        if (x->pid != y->pid)
            return x->pid < y->pid ? -1 : 1;
        break;
    case CLI_SORT_CPU:
        if (x->cpu_ns != y->cpu_ns)
            return x->cpu_ns > y->cpu_ns ? -1 : 1;
        break;
    case CLI_SORT_RSS:
        if (x->rss_bytes != y->rss_bytes)
            return x->rss_bytes > y->rss_bytes ? -1 : 1;
        break;
    case CLI_SORT_RESTARTS:
        if (x->restarts != y->restarts)
            return x->restarts > y->restarts ? -1 : 1;
        break;
    case CLI_SORT_AGE: { /* running ones first, longest-running first */
        uint64_t xa = cli_live(x) ? x->start_realtime_ns : UINT64_MAX;
        uint64_t ya = cli_live(y) ? y->start_realtime_ns : UINT64_MAX;
        if (xa != ya)
            return xa < ya ? -1 : 1;
        break;
    }
    default:
        break;
    }
    byname = strcmp(x->name, y->name);
    if (byname == 0 && x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return byname;
}

static int ps_cmp(const void *a, const void *b)
{
    return cli_proc_cmp(a, b, (enum cli_sort)sort_key);
}

void cli_fmt_bytes(char *buf, size_t len, uint64_t b)
{
    if (b >= 10ull << 30)
        snprintf(buf, len, "%lluG", (unsigned long long)(b >> 30));
    else if (b >= 10ull << 20)
        snprintf(buf, len, "%lluM", (unsigned long long)(b >> 20));
    else
        snprintf(buf, len, "%lluK", (unsigned long long)(b >> 10));
}

void cli_fmt_short_duration(char *buf, size_t len, uint64_t ns)
{
    uint64_t s = ns / 1000000000ull;
    if (s >= 86400)
        snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
    else
        snprintf(buf, len, "%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

static void cell(char *buf, size_t len, enum col c, const struct procbus_proc *p, int depth)
{
    uint64_t now = realtime_ns();
    char tmp[96];

    buf[0] = '\0';
    switch (c) {
    case C_NAME:
        snprintf(buf, len, "%*s%s", depth * 2, "", cli_label(tmp, sizeof(tmp), p));
        break;
    case C_PID:
        /* a traced process keeps its pid after its exit: it is what identifies it */
        snprintf(buf, len, cli_live(p) || (p->name[0] == '\0' && p->pid > 0) ? "%d" : "-", p->pid);
        break;
    case C_STATE:
        snprintf(buf, len, "%s", state_name(p->state));
        break;
    case C_UPTIME:
        if (cli_live(p) && p->start_realtime_ns != 0 && now > p->start_realtime_ns)
            cli_fmt_short_duration(buf, len, now - p->start_realtime_ns);
        else
            snprintf(buf, len, "-");
        break;
    case C_RESTARTS:
    case C_CPU:
    case C_RSS:
        if (p->name[0] == '\0') /* a traced process: only programs are sampled and restarted */
            snprintf(buf, len, "-");
        else if (c == C_RESTARTS)
            snprintf(buf, len, "%u", p->restarts);
        else if (c == C_RSS)
            cli_fmt_bytes(buf, len, p->rss_bytes);
        else
            snprintf(buf, len, "%llu.%02llus", (unsigned long long)(p->cpu_ns / 1000000000ull),
                     (unsigned long long)(p->cpu_ns / 10000000ull % 100));
        break;
    case C_PPID:
        snprintf(buf, len, "%d", p->ppid);
        break;
    case C_PGID:
        snprintf(buf, len, "%d", p->pgid);
        break;
    case C_ID:
        snprintf(buf, len, "%llu", (unsigned long long)p->id);
        break;
    case C_EXIT:
        if (p->exit_kind == PROCBUS_EXIT_NONE)
            snprintf(buf, len, "-");
        else if (p->exit_kind == PROCBUS_EXIT_CODE)
            snprintf(buf, len, "%d", p->exit_code);
        else
            snprintf(buf, len, "SIG%s%s",
                     sigabbrev_np(p->exit_code) ? sigabbrev_np(p->exit_code) : "?",
                     (p->flags & PROCBUS_F_CORE_DUMPED) ? "(core)" : "");
        break;
    case C_SINCE:
        fmt_time(tmp, sizeof(tmp), p->state_since_ns, 0);
        snprintf(buf, len, "%s", tmp);
        break;
    case C_COMM:
        snprintf(buf, len, "%s", p->comm);
        break;
    case C_CMD: {
        size_t n = p->cmdline_len < len - 1 ? p->cmdline_len : len - 1;
        memcpy(buf, p->cmdline, n);
        while (n > 0 && buf[n - 1] == '\0')
            n--;
        buf[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0' || (unsigned char)buf[i] < 0x20)
                buf[i] = ' ';
        if (p->flags & PROCBUS_F_CMDLINE_TRUNCATED && n + 4 < len)
            strcat(buf, "...");
        break;
    }
    default:
        break;
    }
}

static const char *state_colour(uint16_t s)
{
    switch (s) {
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_READY:
        return "\033[32m";
    case PROCBUS_STATE_FATAL:
    case PROCBUS_STATE_BACKOFF:
        return "\033[31m";
    case PROCBUS_STATE_STARTING:
    case PROCBUS_STATE_STOPPING:
        return "\033[33m";
    default:
        return "";
    }
}

#define CELL_MAX 256

struct row {
    const struct procbus_proc *p;
    int depth;
};

int cmd_ps(const struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"all", no_argument, NULL, 'a'},  {"tree", no_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'}, {"sort", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    enum col sel[C_COUNT * 2];
    int nsel = 0, all = 0, tree = 0, json = 0, opt, widths[C_COUNT * 2], term = 80;
    const char *fields = "name,pid,state,uptime,restarts,cpu,rss,cmd";
    struct procbus_reader r;
    struct procbus_proc *list;
    struct row *rows;
    size_t n, nrows = 0, i, j;
    struct winsize ws;
    int colour;

    sort_key = S_NAME;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "ajo:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'a':
            all = 1;
            break;
        case 'T':
            tree = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'o':
            fields = optarg;
            break;
        case 'S': {
            static const char *k[] = {"name", "pid", "cpu", "rss", "restarts", "age"};
            int found = -1;
            for (int x = 0; x < 6; x++)
                if (strcmp(optarg, k[x]) == 0)
                    found = x;
            if (found < 0) {
                fprintf(stderr,
                        "procbus ps: unknown sort key '%s' (cpu|rss|restarts|age|name|pid)\n",
                        optarg);
                return EX_USAGE;
            }
            sort_key = found;
            break;
        }
        case 'h':
            ps_usage(stdout);
            return EX_OK;
        default:
            ps_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "procbus ps: unexpected argument '%s' (see procbus ps --help)\n",
                argv[optind]);
        return EX_USAGE;
    }
    for (const char *f = fields; *f != '\0';) {
        size_t len = strcspn(f, ",");
        int found = -1;
        for (int c = 0; c < C_COUNT; c++)
            if (strlen(cols[c].key) == len && strncmp(cols[c].key, f, len) == 0)
                found = c;
        if (found < 0 || nsel >= C_COUNT * 2) {
            fprintf(stderr,
                    "procbus ps: unknown field '%.*s' in -o (name pid state uptime restarts cpu "
                    "rss ppid pgid id exit since comm cmd)\n",
                    (int)len, f);
            return EX_USAGE;
        }
        sel[nsel++] = (enum col)found;
        f += len;
        if (*f == ',')
            f++;
    }
    if (open_segment(o, &r) < 0)
        return EX_NOSEG;
    warn_liveness(&r);
    if (list_all(&r, &list, &n) < 0) {
        procbus_close(&r);
        return EX_FAIL;
    }
    qsort(list, n, sizeof(*list), ps_cmp);
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL) {
        free(list);
        procbus_close(&r);
        return EX_FAIL;
    }
    for (i = 0; i < n; i++) {
        if (list[i].flags & PROCBUS_F_DESCENDANT) {
            if (all && !tree)
                rows[nrows++] = (struct row){&list[i], 0};
            continue;
        }
        rows[nrows++] = (struct row){&list[i], 0};
        if (tree) /* descendants of this program (the tracer publishes them) */
            for (j = 0; j < n; j++)
                if ((list[j].flags & PROCBUS_F_DESCENDANT) && list[j].program_id == list[i].id)
                    rows[nrows++] = (struct row){&list[j], 1};
    }
    if (json) {
        struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
        struct procbus_info info = {0};
        int l = procbus_liveness(&r, 5ull * 1000000000ull);
        procbus_info(&r, &info);
        json_object_object_add(root, "generation", json_object_new_uint64(procbus_generation(&r)));
        json_object_object_add(root, "publisher_pid", json_object_new_int(info.publisher_pid));
        json_object_object_add(root, "liveness",
                               json_object_new_string(l == PROCBUS_ALIVE      ? "alive"
                                                      : l == PROCBUS_STALE    ? "stale"
                                                      : l == PROCBUS_SHUTDOWN ? "shutdown"
                                                                              : "gone"));
        for (i = 0; i < nrows; i++)
            json_object_array_add(arr, json_proc(rows[i].p));
        json_object_object_add(root, "processes", arr);
        json_print(root, 1);
        json_object_put(root);
        goto out;
    }
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        term = ws.ws_col;
    colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    for (int c = 0; c < nsel; c++) {
        widths[c] = (int)strlen(cols[sel[c]].title);
        for (i = 0; i < nrows; i++) {
            char b[CELL_MAX];
            cell(b, sizeof(b), sel[c], rows[i].p, rows[i].depth);
            if ((int)strlen(b) > widths[c])
                widths[c] = (int)strlen(b);
        }
    }
    { /* fit the width: shrink the widest text columns (cmd first, then name) */
        int total = 0;
        for (int c = 0; c < nsel; c++)
            total += widths[c] + (c > 0);
        for (int pass = 0; pass < 2 && total > term; pass++)
            for (int c = 0; c < nsel && total > term; c++) {
                int minw = (int)strlen(cols[sel[c]].title), cut;
                if (sel[c] != (pass == 0 ? C_CMD : C_NAME) || widths[c] <= minw)
                    continue;
                if (pass == 1 && minw < 12)
                    minw = 12;
                cut = total - term < widths[c] - minw ? total - term : widths[c] - minw;
                if (cut > 0) {
                    widths[c] -= cut;
                    total -= cut;
                }
            }
        while (total > term && nsel > 1) { /* still too wide: drop columns from the right */
            nsel--;
            total -= widths[nsel] + 1;
        }
    }
    for (long ri = -1; ri < (long)nrows; ri++) {
        char line[4096];
        size_t pos = 0;
        for (int c = 0; c < nsel; c++) {
            char b[CELL_MAX];
            int w = widths[c], last = c == nsel - 1;
            const char *on = "", *off = "";
            if (ri < 0)
                snprintf(b, sizeof(b), "%s", cols[sel[c]].title);
            else
                cell(b, sizeof(b), sel[c], rows[ri].p, rows[ri].depth);
            if ((int)strlen(b) > w) { /* truncate, marking it with '+' */
                b[w] = '\0';
                if (w > 0)
                    b[w - 1] = '+';
            }
            if (colour && ri >= 0 && sel[c] == C_STATE) {
                on = state_colour(rows[ri].p->state);
                off = on[0] ? "\033[0m" : "";
            } else if (colour && ri < 0) {
                on = "\033[1m";
                off = "\033[0m";
            }
            if (pos < sizeof(line))
                pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s%*s%s", c ? " " : "",
                                        on, cols[sel[c]].right ? w : (last ? 0 : -w), b, off);
        }
        if (pos >= sizeof(line))
            pos = sizeof(line) - 1;
        while (pos > 0 && line[pos - 1] == ' ')
            line[--pos] = '\0';
        puts(line);
    }
out:
    free(rows);
    free(list);
    procbus_close(&r);
    return EX_OK;
}

/* ---- get ---- */

static void get_usage(FILE *f)
{
    fprintf(f, "usage: procbus get NAME|PID [--json]\n"
               "Every field of one record (a program by name, or any process by pid).\n"
               "  --json   one JSON object (docs/JSON.md)\n"
               "Exit 4 when there is no such record.\n");
}

/* NAME or PID -> record; 0, or prints why and returns an exit code. */
static int find_record(struct procbus_reader *r, const char *key, struct procbus_proc *p)
{
    char *end;
    long pid = strtol(key, &end, 10);
    int rc;

    if (*key != '\0' && *end == '\0' && pid > 0 && pid <= INT32_MAX) {
        rc = procbus_get_pid(r, (int32_t)pid, p);
        if (rc == -ENOENT)
            rc = procbus_get_name(r, key, p); /* a program may be named "123" */
    } else {
        rc = procbus_get_name(r, key, p);
    }
    if (rc == 0)
        return 0;
    if (rc == -ENOENT || rc == -ENAMETOOLONG) {
        fprintf(stderr, "procbus: no program or process '%s' (see procbus status)\n", key);
        return EX_NOSEG;
    }
    fprintf(stderr, "procbus: cannot read the segment: %s\n", strerror(-rc));
    return EX_FAIL;
}

int cmd_get(const struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct procbus_reader r;
    struct procbus_proc p;
    int json = 0, opt, rc;
    char a[128], b[128], cmd[PROCBUS_CMDLINE_LEN + 8], prog[PROCBUS_NAME_LEN + 4] = "";

    optind = 0;
    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'j') {
            json = 1;
        } else if (opt == 'h') {
            get_usage(stdout);
            return EX_OK;
        } else {
            get_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "procbus get: give exactly one NAME or PID (see procbus get --help)\n");
        return EX_USAGE;
    }
    if (open_segment(o, &r) < 0)
        return EX_NOSEG;
    warn_liveness(&r);
    rc = find_record(&r, argv[optind], &p);
    if (rc == 0 && p.program_id != 0) { /* a traced process: which program it belongs to */
        struct procbus_proc *l;
        size_t n;
        if (list_all(&r, &l, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                if (l[i].id == p.program_id)
                    snprintf(prog, sizeof(prog), " (%.*s)", PROCBUS_NAME_LEN, l[i].name);
            free(l);
        }
    }
    procbus_close(&r);
    if (rc != 0)
        return rc;
    if (json) {
        struct json_object *obj = json_proc(&p);
        json_print(obj, 1);
        json_object_put(obj);
        return EX_OK;
    }
    printf("name:          %s\n", p.name[0] ? p.name : "- (a traced process)");
    printf("id:            %llu%s%s\n", (unsigned long long)p.id,
           (p.flags & PROCBUS_F_DESCENDANT) ? " (descendant)" : "",
           (p.flags & PROCBUS_F_PREEXISTING) ? " (there before procbusd)" : "");
    if (p.program_id != 0)
        printf("program_id:    %llu%s\n", (unsigned long long)p.program_id, prog);
    printf("state:         %s\n", state_name(p.state));
    fmt_time(a, sizeof(a), p.state_since_ns, 1);
    printf("state since:   %s\n", a);
    if (cli_live(&p))
        printf("pid:           %d\n", p.pid);
    else if (p.pid > 0)
        printf("pid:           %d (last run; not running)\n", p.pid);
    else
        printf("pid:           - (not running)\n");
    printf("ppid:          %d\n", p.ppid);
    printf("pgid:          %d\n", p.pgid);
    if (p.ns_pid != 0)
        printf("ns pid:        %d\n", p.ns_pid);
    fmt_time(a, sizeof(a), p.start_realtime_ns, 1);
    printf("started:       %s\n", a);
    if (cli_live(&p) && p.start_realtime_ns != 0 && realtime_ns() > p.start_realtime_ns) {
        fmt_duration(b, sizeof(b), realtime_ns() - p.start_realtime_ns);
        printf("uptime:        %s\n", b);
    }
    fmt_exit(a, sizeof(a), &p);
    if (p.name[0] == '\0') { /* only programs are restarted and sampled */
        printf("exit:          %s\n", p.exit_kind != PROCBUS_EXIT_NONE ? a
                                      : p.state == PROCBUS_STATE_EXITED
                                          ? "unknown (seen gone by a /proc walk)"
                                          : "-");
    } else {
        printf("restarts:      %u\n", p.restarts);
        printf("last exit:     %s\n", p.exit_kind == PROCBUS_EXIT_NONE ? "-" : a);
        printf("cpu:           %llu.%03llu s\n", (unsigned long long)(p.cpu_ns / 1000000000ull),
               (unsigned long long)(p.cpu_ns / 1000000ull % 1000));
        cli_fmt_bytes(a, sizeof(a), p.rss_bytes);
        printf("rss:           %s (%llu bytes)\n", a, (unsigned long long)p.rss_bytes);
    }
    printf("comm:          %s\n", p.comm);
    cell(cmd, sizeof(cmd), C_CMD, &p, 0);
    printf("cmdline:       %s\n", cmd);
    return EX_OK;
}

/* ---- watch ---- */

static void watch_usage(FILE *f)
{
    fprintf(f, "usage: procbus watch [NAME...] [--json] [--from-start]\n"
               "Print every state transition (of the NAMEd programs, or all) as it happens,\n"
               "until interrupted (SIGINT/SIGTERM) or procbusd shuts down; exit 0.\n"
               "  --json        one JSON object per line (docs/JSON.md)\n"
               "  --from-start  begin with the oldest events still in the ring\n");
}

/* record id -> full name, refreshed from a snapshot when an id is unknown */
struct names {
    struct procbus_proc *list;
    size_t n;
    uint64_t gen; /* the generation the list was read at */
    char label[PROCBUS_NAME_LEN + PROCBUS_COMM_LEN + 2];
};

/* A record's label: its name; a traced process has none: "PROGRAM/comm", or its comm. */
static const char *label_of(struct names *nm, const struct procbus_proc *p)
{
    if (p->name[0] != '\0')
        return p->name;
    for (size_t i = 0; p->program_id != 0 && i < nm->n; i++)
        if (nm->list[i].id == p->program_id) {
            snprintf(nm->label, sizeof(nm->label), "%.*s/%.*s", PROCBUS_NAME_LEN, nm->list[i].name,
                     PROCBUS_COMM_LEN, p->comm);
            return nm->label;
        }
    snprintf(nm->label, sizeof(nm->label), "%.*s", PROCBUS_COMM_LEN, p->comm);
    return nm->label;
}

static const char *name_of(struct procbus_reader *r, struct names *nm,
                           const struct procbus_event *ev)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nm->n; i++)
            if (nm->list[i].id == ev->record_id)
                return label_of(nm, &nm->list[i]);
        /* re-read the table once per generation at most (a traced storm of unknown ids
         * must not cost a full list per event) */
        if (pass == 0 && (nm->list == NULL || procbus_generation(r) != nm->gen)) {
            struct procbus_proc *l;
            size_t n;
            nm->gen = procbus_generation(r);
            if (list_all(r, &l, &n) < 0)
                break;
            free(nm->list);
            nm->list = l;
            nm->n = n;
        }
    }
    snprintf(nm->label, sizeof(nm->label), "%.*s", PROCBUS_COMM_LEN, ev->name);
    return nm->label; /* removed meanwhile: the event's (possibly truncated) name */
}

static int name_wanted(const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (strcmp(name, argv[i]) == 0)
            return 1;
    return 0;
}

static void print_missed(uint64_t missed, int json)
{
    if (json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string("missed"));
        json_object_object_add(o, "count", json_object_new_uint64(missed));
        json_print(o, 0);
        json_object_put(o);
    } else {
        printf("-- missed %llu events (the ring was lapped) --\n", (unsigned long long)missed);
    }
}

static void print_note(const char *kind, const char *text, int json)
{
    if (json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string(kind));
        json_object_object_add(o, "time_ns", json_object_new_uint64(realtime_ns()));
        json_object_object_add(o, "message", json_object_new_string(text));
        json_print(o, 0);
        json_object_put(o);
    } else {
        printf("-- %s --\n", text);
    }
}

int cmd_watch(const struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"from-start", no_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct procbus_reader r;
    struct names nm = {0};
    int json = 0, from_start = 0, opt, rc = EX_OK;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'j') {
            json = 1;
        } else if (opt == 'F') {
            from_start = 1;
        } else if (opt == 'h') {
            watch_usage(stdout);
            return EX_OK;
        } else {
            watch_usage(stderr);
            return EX_USAGE;
        }
    }
    if (open_segment(o, &r) < 0)
        return EX_NOSEG;
    catch_stop_signals();
    procbus_seek_events(&r, from_start ? PROCBUS_SEEK_OLDEST : PROCBUS_SEEK_NOW);
    if (warn_liveness(&r) == PROCBUS_SHUTDOWN && !from_start) {
        print_note("shutdown", "procbusd has shut down", json);
        procbus_close(&r);
        free(nm.list);
        return EX_OK;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!stop_requested) {
        struct procbus_event ev;
        uint64_t missed = 0, gen = procbus_generation(&r);
        int w, l;

        while ((w = procbus_next_event(&r, &ev, &missed)) == 0 || missed > 0) {
            if (missed > 0)
                print_missed(missed, json);
            if (w != 0)
                break;
            if (ev.kind == PROCBUS_EV_EPOCH) {
                if (optind < argc) /* NAMEs given: only their transitions */
                    continue;
                print_note("epoch", "a new procbusd took over the segment", json);
                continue;
            }
            const char *name = name_of(&r, &nm, &ev);
            if (!name_wanted(name, argc, argv, optind))
                continue;
            if (json) {
                struct json_object *obj = json_event(&ev, name);
                json_print(obj, 0);
                json_object_put(obj);
                continue;
            }
            {
                char when[64], ex[96] = "";
                fmt_time(when, sizeof(when), ev.time_ns, 1);
                if (ev.exit_kind != PROCBUS_EXIT_NONE &&
                    (ev.new_state == PROCBUS_STATE_EXITED ||
                     ev.new_state == PROCBUS_STATE_BACKOFF || ev.new_state == PROCBUS_STATE_FATAL ||
                     ev.new_state == PROCBUS_STATE_STOPPED)) {
                    ex[0] = ' ';
                    fmt_exit_ev(ex + 1, sizeof(ex) - 1, ev.exit_kind, ev.exit_code,
                                (ev.flags & PROCBUS_F_CORE_DUMPED) != 0);
                }
                if (ev.kind == PROCBUS_EV_STATE)
                    printf("%s %s %s -> %s pid %d%s\n", when, name, state_name(ev.old_state),
                           state_name(ev.new_state), ev.pid, ex);
                else if (ev.kind == PROCBUS_EV_ADD)
                    printf("%s %s added %s pid %d\n", when, name, state_name(ev.new_state), ev.pid);
                else if (ev.kind == PROCBUS_EV_REMOVE)
                    printf("%s %s removed\n", when, name);
                else if (ev.kind == PROCBUS_EV_EXEC) /* ev.name: the new image's comm */
                    printf("%s %s exec %.*s pid %d\n", when, name, PROCBUS_COMM_LEN, ev.name,
                           ev.pid);
            }
        }
        if (stop_requested)
            break;
        l = procbus_liveness(&r, 5ull * 1000000000ull);
        if (l == PROCBUS_GONE) {
            if (procbus_follow(&r) == 1) {
                print_note("epoch", "following the new segment", json);
                continue;
            }
        }
        w = procbus_wait(&r, gen, 1000);
        if (w == -EPIPE) {
            if (procbus_follow(&r) == 1) { /* superseded rather than shut down */
                print_note("epoch", "following the new segment", json);
                continue;
            }
            print_note("shutdown", "procbusd has shut down", json);
            break;
        }
    }
    free(nm.list);
    procbus_close(&r);
    return rc;
}

/* ---- wait ---- */

static void wait_usage(FILE *f)
{
    fprintf(f,
            "usage: procbus wait NAME --state STATE [--timeout DURATION]\n"
            "Wait until program NAME is in STATE (being in it already counts).\n"
            "  --state STATE        STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL READY\n"
            "  --timeout DURATION   e.g. 30s, 500ms, 2m (default 30s; 0: just check)\n"
            "Exit codes: 0 reached, 5 timed out, 6 the program went FATAL (unless FATAL was\n"
            "asked), 4 no such program or no segment, 1 procbusd shut down meanwhile.\n");
}

int cmd_wait(const struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"state", required_argument, NULL, 'S'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct procbus_reader r;
    struct procbus_proc p;
    long long timeout_ms = 30000;
    int want = -1, opt, rc;
    int64_t deadline;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (opt == 'S') {
            want = state_by_name(optarg);
            if (want <= 0) {
                fprintf(stderr,
                        "procbus wait: unknown state '%s' (STOPPED STARTING RUNNING BACKOFF "
                        "STOPPING EXITED FATAL READY)\n",
                        optarg);
                return EX_USAGE;
            }
        } else if (opt == 't') {
            timeout_ms = parse_duration_ms(optarg);
            if (timeout_ms < 0) {
                fprintf(stderr, "procbus wait: bad duration '%s' (e.g. 30s, 500ms, 2m)\n", optarg);
                return EX_USAGE;
            }
        } else if (opt == 'h') {
            wait_usage(stdout);
            return EX_OK;
        } else {
            wait_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc - 1 || want < 0) {
        fprintf(stderr,
                "procbus wait: give one NAME and --state STATE (see procbus wait --help)\n");
        return EX_USAGE;
    }
    if (open_segment(o, &r) < 0)
        return EX_NOSEG;
    procbus_seek_events(&r, PROCBUS_SEEK_NOW); /* before the snapshot: no transition is lost */
    rc = procbus_get_name(&r, argv[optind], &p);
    if (rc < 0) {
        if (rc == -ENOENT || rc == -ENAMETOOLONG)
            fprintf(stderr, "procbus wait: no program named '%s' (see procbus status)\n",
                    argv[optind]);
        else
            fprintf(stderr, "procbus wait: cannot read the segment: %s\n", strerror(-rc));
        procbus_close(&r);
        return rc == -ENOENT || rc == -ENAMETOOLONG ? EX_NOSEG : EX_FAIL;
    }
    deadline = mono_ms() + timeout_ms;
    rc = -1;
    if (p.state == want)
        rc = EX_OK;
    else if (p.state == PROCBUS_STATE_FATAL)
        rc = EX_FATAL;
    else if (warn_liveness(&r) != PROCBUS_ALIVE)
        rc = EX_FAIL;
    while (rc < 0) {
        struct procbus_event ev;
        uint64_t missed = 0, gen = procbus_generation(&r);
        int w;
        int64_t left;

        while ((w = procbus_next_event(&r, &ev, &missed)) == 0 || missed > 0) {
            if (missed > 0 && procbus_get_name(&r, argv[optind], &p) == 0) { /* lapped */
                if (p.state == want)
                    rc = EX_OK;
                else if (p.state == PROCBUS_STATE_FATAL)
                    rc = EX_FATAL;
            }
            if (w != 0 || rc >= 0)
                break;
            if (ev.record_id != p.id || ev.kind != PROCBUS_EV_STATE)
                continue;
            if (ev.new_state == want)
                rc = EX_OK;
            else if (ev.new_state == PROCBUS_STATE_FATAL)
                rc = EX_FATAL;
            if (rc >= 0)
                break;
        }
        if (rc >= 0)
            break;
        left = deadline - mono_ms();
        if (left <= 0) {
            rc = EX_TIMEOUT;
            break;
        }
        w = procbus_wait(&r, gen, left > 500 ? 500 : (int)left);
        if (w == -EPIPE) {
            warn_liveness(&r);
            rc = EX_FAIL;
        }
    }
    if (rc == EX_TIMEOUT || rc == EX_FATAL) {
        if (procbus_get_name(&r, argv[optind], &p) == 0) {
            char why[96];
            fmt_exit(why, sizeof(why), &p);
            if (rc == EX_TIMEOUT)
                fprintf(stderr, "procbus wait: %s is still %s after %lld ms (not %s)\n",
                        argv[optind], state_name(p.state), timeout_ms, state_name((unsigned)want));
            else
                fprintf(stderr, "procbus wait: %s went FATAL (%s)\n", argv[optind], why);
        }
    }
    procbus_close(&r);
    return rc;
}

/* ---- logs ---- */

static void logs_usage(FILE *f)
{
    fprintf(f, "usage: procbus [-c FILE] logs NAME [-f] [-n N]\n"
               "Print the captured output of program NAME: its stdout_logfile and, when\n"
               "separate, its stderr_logfile, as configured in FILE (-c, or $PROCBUS_CONFIG).\n"
               "  -n, --lines N   the last N lines of each file (default 10)\n"
               "  -f, --follow    keep printing what is appended (survives rotation) until\n"
               "                  interrupted\n");
}

struct follow {
    const char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    off_t off;
};

static void follow_open(struct follow *f, int at_end)
{
    struct stat st;

    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &st) < 0) {
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
        return;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->off = at_end ? st.st_size : 0;
}

/* Copy what was appended to stdout; reopen when the file was rotated. */
static void follow_poll(struct follow *f)
{
    struct stat st;
    char buf[16384];
    ssize_t n;

    if (f->fd < 0) {
        follow_open(f, 0);
        if (f->fd < 0)
            return;
    }
    for (;;) {
        n = pread(f->fd, buf, sizeof(buf), f->off);
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
        f->off += n;
    }
    fflush(stdout);
    if (stat(f->path, &st) < 0 || st.st_ino != f->ino || st.st_dev != f->dev) {
        close(f->fd); /* rotated (or removed): the rest went to the old file, read above */
        f->fd = -1;
        follow_open(f, 0);
    } else if (st.st_size < f->off) {
        f->off = 0; /* truncated */
    }
}

int cmd_logs(const struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"follow", no_argument, NULL, 'f'},
                                       {"lines", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const struct pbd_program *prog;
    const char *paths[2];
    struct follow fl[2];
    int np = 0, follow = 0, lines = 10, opt, i;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "fn:h", lo, NULL)) != -1) {
        if (opt == 'f') {
            follow = 1;
        } else if (opt == 'n') {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 1000000000) {
                fprintf(stderr, "procbus logs: -n wants a number of lines, not '%s'\n", optarg);
                return EX_USAGE;
            }
            lines = (int)v;
        } else if (opt == 'h') {
            logs_usage(stdout);
            return EX_OK;
        } else {
            logs_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "procbus logs: give one program NAME (see procbus logs --help)\n");
        return EX_USAGE;
    }
    if (o->cfg == NULL) {
        fprintf(stderr, "procbus logs: the log files are named in procbusd's configuration: "
                        "give it with -c FILE or set PROCBUS_CONFIG\n");
        return EX_USAGE;
    }
    prog = pbd_config_find(o->cfg, argv[optind]);
    if (prog == NULL) {
        fprintf(stderr, "procbus logs: no program named '%s' in %s\n", argv[optind],
                o->cfg->path ? o->cfg->path : "the configuration");
        return EX_NOSEG;
    }
    if (prog->out.path != NULL)
        paths[np++] = prog->out.path;
    if (prog->err.path != NULL && !prog->redirect_stderr &&
        (np == 0 || strcmp(prog->err.path, paths[0]) != 0))
        paths[np++] = prog->err.path;
    if (np == 0) {
        fprintf(stderr,
                "procbus logs: program '%s' has no log file: set stdout_logfile (and "
                "stderr_logfile) in its [program:...] section\n",
                argv[optind]);
        return EX_FAIL;
    }
    for (i = 0; i < np; i++) {
        int rc;
        if (np > 1)
            printf("%s==> %s <==\n", i ? "\n" : "", paths[i]);
        fflush(stdout);
        rc = pbd_log_tail(paths[i], lines, STDOUT_FILENO);
        if (rc == -ENOENT)
            fprintf(stderr, "procbus logs: %s does not exist yet (has %s run?)\n", paths[i],
                    argv[optind]);
        else if (rc < 0 && rc != -EPIPE) {
            fprintf(stderr, "procbus logs: cannot read %s: %s\n", paths[i], strerror(-rc));
            return EX_FAIL;
        }
        fl[i].path = paths[i];
        follow_open(&fl[i], 1);
    }
    if (follow) {
        catch_stop_signals();
        while (!stop_requested) {
            for (i = 0; i < np; i++)
                follow_poll(&fl[i]);
            usleep(200000);
        }
    }
    for (i = 0; i < np; i++)
        if (fl[i].fd >= 0)
            close(fl[i].fd);
    return EX_OK;
}
