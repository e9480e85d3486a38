/* cmd_status.c - procbus status: supervisorctl's status lines (and exit codes) from the segment. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_fmt.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "liveprobe.h"
#include "util.h"

/* A supervised program's record (status lists only those): not a traced process. */
static int is_program(const struct procbus_proc *p)
{
    return !(p->flags & PROCBUS_F_DESCENDANT) && p->name[0] != '\0';
}

/* The name status shows: supervisord's GROUP:NAME (escaped for the terminal). */
static const char *status_label(char *buf, size_t len, const struct cli_names *names,
                                const struct procbus_proc *p, char *name)
{
    const char *g = cli_names_group(names, p->name);

    cli_label(name, CLI_LABEL_MAX, p);
    if (g == NULL || strcmp(g, p->name) == 0)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%.63s:%s", g, name);
    return buf;
}

/* supervisord's uptime: whole seconds between start and now, as Python's timedelta prints
 * them ("0:01:02", "3 days, 4:05:06"). */
static void sv_uptime(char *buf, size_t len, const struct procbus_proc *p)
{
    uint64_t now = pb_now_ns(CLOCK_REALTIME) / PB_NS_PER_SEC;
    uint64_t start = p->start_realtime_ns / PB_NS_PER_SEC;
    uint64_t s = now > start ? now - start : 0, days = s / 86400;

    s %= 86400;
    if (days > 0)
        snprintf(buf, len, "%llu day%s, %llu:%02llu:%02llu", (unsigned long long)days,
                 days == 1 ? "" : "s", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

/* One line, as supervisorctl's: NAME padded, the state in 10 columns, supervisord's words
 * (rpcinterface's _interpretProcessInfo). `procbus ps` and `get` say more. */
static void print_status_line(const struct procbus_proc *p, int width,
                              const struct cli_names *names)
{
    char detail[160], tmp[96], name[CLI_LABEL_MAX], spec[CLI_LABEL_MAX + 70];
    time_t t = (time_t)(p->state_since_ns / PB_NS_PER_SEC);
    struct tm tm;

    detail[0] = '\0';
    switch (p->state) {
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_READY:
        sv_uptime(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "pid %d, uptime %s", p->pid, tmp);
        break;
    case PROCBUS_STATE_BACKOFF:
    case PROCBUS_STATE_FATAL:
        /* supervisord's spawnerr: an exit before startsecs, else the start itself failed */
        snprintf(detail, sizeof(detail), "%s",
                 p->exit_kind != PROCBUS_EXIT_NONE
                     ? "Exited too quickly (process log may have details)"
                     : "spawn error");
        break;
    case PROCBUS_STATE_STOPPED:
    case PROCBUS_STATE_EXITED:
        if (p->start_realtime_ns == 0) {
            snprintf(detail, sizeof(detail), "Not started");
        } else {
            localtime_r(&t, &tm);
            strftime(detail, sizeof(detail), "%b %d %I:%M %p", &tm);
        }
        break;
    default: /* STARTING, STOPPING: supervisord says nothing more */
        break;
    }
    printf("%-*s %-9s %s\n", width, status_label(spec, sizeof(spec), names, p, name),
           procbus_state_name(p->state), detail);
}

/* supervisord's order (getAllProcessInfo): by group, then by name (qsort_r; arg: the names). */
static int by_group(const void *a, const void *b, void *arg)
{
    const struct cli_names *names = arg;
    const char *na = ((const struct procbus_proc *)a)->name;
    const char *nb = ((const struct procbus_proc *)b)->name;
    const char *ga = cli_names_group(names, na), *gb = cli_names_group(names, nb);
    int c = strcmp(ga ? ga : na, gb ? gb : nb);

    return c ? c : strcmp(na, nb);
}

/* Does program `name` answer to `arg`: NAME, GROUP:NAME, GROUP:* or GROUP: (its group's; the
 * group is procbusd's when it says, else what the name starts with: NAME_ / NAME:). */
static int name_selected(const struct cli_names *names, const char *name, const char *arg)
{
    const char *colon = strchr(arg, ':'), *g = cli_names_group(names, name);
    size_t glen = colon ? (size_t)(colon - arg) : 0;
    int whole = colon != NULL && (colon[1] == '*' || colon[1] == '\0');

    if (colon == NULL)
        return strcmp(name, arg) == 0;
    if (g != NULL && (strlen(g) != glen || strncmp(g, arg, glen) != 0))
        return 0;
    if (!whole)
        return strcmp(name, colon + 1) == 0 && (g != NULL || strncmp(name, arg, glen) == 0);
    if (g != NULL)
        return 1;
    return strncmp(name, arg, glen) == 0 &&
           (name[glen] == ':' || name[glen] == '_' || name[glen] == '\0');
}

/* supervisord's STOPPED_STATES: what makes `status` exit 3. */
static int stopped_state(uint16_t s)
{
    return s == PROCBUS_STATE_STOPPED || s == PROCBUS_STATE_EXITED || s == PROCBUS_STATE_FATAL ||
           s == PROCBUS_STATE_UNKNOWN;
}

int cli_cmd_status(const struct cli_opts *o, int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_proc *list = NULL;
    struct cli_names names;
    size_t n = 0, i;
    int width = 8, stopped = 0, unknown = 0, all = argc <= 1, a, live;
    int rc = cli_open_programs(o->segment, &r, &list, &n); /* programs only, zero-copy walk */

    if (rc != 0)
        return rc;
    cli_names_fetch(o, 2000, &names); /* groups (GROUP:NAME), when procbusd answers */
    qsort_r(list, n, sizeof(*list), by_group, &names);
    for (i = 0; i < n; i++) {
        char name[CLI_LABEL_MAX], spec[CLI_LABEL_MAX + 70];
        if (is_program(&list[i]) &&
            (int)strlen(status_label(spec, sizeof(spec), &names, &list[i], name)) + 2 > width)
            width = (int)strlen(spec) + 2;
    }
    width = width < 32 ? 32 : width; /* supervisorctl: max(30, longest) + 3 columns */
    for (a = 1; a < argc; a++)
        all |= strcmp(argv[a], "all") == 0;
    for (a = 1; !all && a < argc; a++) { /* supervisorctl: the unknown names first */
        int found = 0;
        for (i = 0; i < n && !found; i++)
            found = is_program(&list[i]) && name_selected(&names, list[i].name, argv[a]);
        if (!found) {
            const char *colon = strchr(argv[a], ':');
            int group = colon != NULL && (colon[1] == '*' || colon[1] == '\0');
            printf("%.*s: ERROR (no such %s)\n", group ? (int)(colon - argv[a]) : 64, argv[a],
                   group ? "group" : "process");
            unknown = 1;
        }
    }
    for (i = 0; i < n; i++) {
        const struct procbus_proc *p = &list[i];
        int shown = 0;
        if (!is_program(p))
            continue;
        for (a = 1; !all && a < argc && !shown; a++)
            shown = name_selected(&names, p->name, argv[a]);
        if (!all && !shown)
            continue;
        print_status_line(p, width, &names);
        stopped |= stopped_state(p->state);
    }
    live = pb_publisher_check(&r); /* the heartbeat, and at once the segment's lock */
    free(list);
    cli_names_free(&names);
    procbus_close(&r);
    if (live != PROCBUS_ALIVE) /* what it showed is a dead (or stuck) publisher's last state */
        return CLI_EX_NOTLIVE;
    return stopped ? CLI_EX_NOTRUN : unknown ? CLI_EX_NOSEG : CLI_EX_OK;
}
