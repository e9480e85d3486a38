/* cmd_ps.c - procbus ps: the process table from one consistent snapshot, as text or JSON. */
#define _GNU_SOURCE
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli_cmds.h"
#include "cli_fmt.h"
#include "cli_json.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "util.h"

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

/* --sort keys, by enum cli_sort. */
static const char *const sort_keys[] = {
    [CLI_SORT_NAME] = "name", [CLI_SORT_PID] = "pid",           [CLI_SORT_CPU] = "cpu",
    [CLI_SORT_RSS] = "rss",   [CLI_SORT_RESTARTS] = "restarts", [CLI_SORT_AGE] = "age"};

#define CELL_MAX CLI_CMDLINE_MAX /* the longest cell: an escaped command line */
#define SEL_MAX  (C_COUNT * 2)   /* -o may repeat a column */

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

/* One cell of the table (`depth`: tree indentation of the name). */
static void cell(char *buf, size_t len, enum col c, const struct procbus_proc *p, int depth)
{
    char tmp[CLI_LABEL_MAX];

    buf[0] = '\0';
    switch (c) {
    case C_NAME:
        snprintf(buf, len, "%*s%s", depth * 2, "", cli_label(tmp, sizeof(tmp), p));
        break;
    case C_PID:
        cli_fmt_pid(buf, len, p);
        break;
    case C_STATE:
        snprintf(buf, len, "%s", procbus_state_name(p->state));
        break;
    case C_UPTIME:
        cli_fmt_uptime(buf, len, p, pb_now_ns(CLOCK_REALTIME));
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
            cli_fmt_cpu(buf, len, p->cpu_ns);
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
        cli_fmt_time(buf, len, p->state_since_ns, 0);
        break;
    case C_COMM:
        cli_safe(buf, len, p->comm, PROCBUS_COMM_LEN);
        break;
    case C_CMD:
        cli_fmt_cmdline(buf, len, p);
        break;
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

/* -o FIELDS into sel[]; their number, or -1 (message printed). */
static int parse_fields(const char *fields, enum col *sel)
{
    int nsel = 0;

    for (const char *f = fields; *f != '\0';) {
        size_t len = strcspn(f, ",");
        int found = -1;
        for (int c = 0; c < C_COUNT; c++)
            if (strlen(cols[c].key) == len && strncmp(cols[c].key, f, len) == 0)
                found = c;
        if (found < 0 || nsel >= SEL_MAX) {
            fprintf(stderr,
                    "procbus ps: unknown field '%.*s' in -o (name pid state uptime restarts cpu "
                    "rss ppid pgid id exit since comm cmd)\n",
                    (int)len, f);
            return -1;
        }
        sel[nsel++] = (enum col)found;
        f += len;
        if (*f == ',')
            f++;
    }
    return nsel;
}

static int ps_cmp(const void *a, const void *b, void *key)
{
    return cli_proc_cmp(a, b, *(const enum cli_sort *)key);
}

/* What to list, in list's (sorted) order: programs; with `all` every record; with `tree` each
 * program's descendants under it. Writes n rows at most. */
static size_t select_rows(const struct procbus_proc *list, size_t n, int all, int tree,
                          struct cli_tree_row *rows)
{
    const struct procbus_proc **recs;
    size_t nrows = 0;

    if (all && !tree) {
        for (size_t i = 0; i < n; i++)
            rows[nrows++] = (struct cli_tree_row){i, 0};
        return nrows;
    }
    recs = malloc((n ? n : 1) * sizeof(*recs));
    if (recs == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        recs[i] = &list[i];
    nrows = cli_tree_build(recs, n, tree, NULL, NULL, rows);
    free(recs);
    return nrows;
}

static void print_json(struct procbus_reader *r, const struct procbus_proc *list,
                       const struct cli_tree_row *rows, size_t nrows)
{
    struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
    struct procbus_info info = {0};
    int l = procbus_liveness(r, procbus_stale_after_ns(r));

    procbus_info(r, &info);
    /* the snapshot the list came from (procbus_generation may have moved on since) */
    json_object_object_add(root, "generation", json_object_new_uint64(procbus_read_generation(r)));
    json_object_object_add(root, "publisher_pid", json_object_new_int(info.publisher_pid));
    json_object_object_add(root, "liveness",
                           json_object_new_string(l == PROCBUS_ALIVE      ? "alive"
                                                  : l == PROCBUS_STALE    ? "stale"
                                                  : l == PROCBUS_SHUTDOWN ? "shutdown"
                                                                          : "gone"));
    for (size_t i = 0; i < nrows; i++)
        json_object_array_add(arr, cli_json_proc(&list[rows[i].idx]));
    json_object_object_add(root, "processes", arr);
    cli_json_print(root, 1);
    json_object_put(root);
}

/* Column widths that fit `term` columns: shrink the widest text columns (cmd first, then name),
 * then drop columns from the right. Returns how many columns stay. */
static int fit_widths(const enum col *sel, int nsel, int *widths, int term)
{
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
    return nsel;
}

static void print_table(const struct procbus_proc *list, const struct cli_tree_row *rows,
                        size_t nrows, const enum col *sel, int nsel)
{
    int widths[SEL_MAX], term = 80, colour;
    struct winsize ws;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        term = ws.ws_col;
    colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    for (int c = 0; c < nsel; c++) {
        widths[c] = (int)strlen(cols[sel[c]].title);
        for (size_t i = 0; i < nrows; i++) {
            char b[CELL_MAX];
            cell(b, sizeof(b), sel[c], &list[rows[i].idx], rows[i].depth);
            if ((int)strlen(b) > widths[c])
                widths[c] = (int)strlen(b);
        }
    }
    nsel = fit_widths(sel, nsel, widths, term);
    for (long ri = -1; ri < (long)nrows; ri++) { /* -1: the title line */
        const struct procbus_proc *p = ri < 0 ? NULL : &list[rows[ri].idx];
        char line[4096];
        size_t pos = 0;
        for (int c = 0; c < nsel; c++) {
            char b[CELL_MAX];
            int w = widths[c], last = c == nsel - 1;
            const char *on = "", *off = "";
            if (p == NULL)
                snprintf(b, sizeof(b), "%s", cols[sel[c]].title);
            else
                cell(b, sizeof(b), sel[c], p, rows[ri].depth);
            if ((int)strlen(b) > w) { /* truncate, marking it with '+' */
                b[w] = '\0';
                if (w > 0)
                    b[w - 1] = '+';
            }
            if (colour && p != NULL && sel[c] == C_STATE) {
                on = state_colour(p->state);
                off = on[0] ? "\033[0m" : "";
            } else if (colour && p == NULL) {
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
}

int cli_cmd_ps(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"all", no_argument, NULL, 'a'},  {"tree", no_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'}, {"sort", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    enum col sel[SEL_MAX];
    enum cli_sort sort = CLI_SORT_NAME;
    int nsel, all = 0, tree = 0, json = 0, opt, rc;
    const char *fields = "name,pid,state,uptime,restarts,cpu,rss,cmd";
    struct procbus_reader r;
    struct procbus_proc *list;
    struct cli_tree_row *rows;
    size_t n, nrows;

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
            int found = -1;
            for (int k = 0; k < (int)(sizeof(sort_keys) / sizeof(sort_keys[0])); k++)
                if (strcmp(optarg, sort_keys[k]) == 0)
                    found = k;
            if (found < 0) {
                fprintf(stderr,
                        "procbus ps: unknown sort key '%s' (cpu|rss|restarts|age|name|pid)\n",
                        optarg);
                return CLI_EX_USAGE;
            }
            sort = (enum cli_sort)found;
            break;
        }
        case 'h':
            ps_usage(stdout);
            return CLI_EX_OK;
        default:
            ps_usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "procbus ps: unexpected argument '%s' (see procbus ps --help)\n",
                argv[optind]);
        return CLI_EX_USAGE;
    }
    nsel = parse_fields(fields, sel);
    if (nsel < 0)
        return CLI_EX_USAGE;
    rc = cli_open_table(o->segment, &r, &list, &n);
    if (rc != 0)
        return rc;
    qsort_r(list, n, sizeof(*list), ps_cmp, &sort);
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL) {
        free(list);
        procbus_close(&r);
        return CLI_EX_FAIL;
    }
    nrows = select_rows(list, n, all, tree, rows);
    if (json)
        print_json(&r, list, rows, nrows);
    else
        print_table(list, rows, nrows, sel, nsel);
    free(rows);
    free(list);
    procbus_close(&r);
    return CLI_EX_OK;
}
