/* cmd_status.c - procbus status: supervisorctl-like status lines from the segment. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_cmds.h"
#include "cli_fmt.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "util.h"

/* A supervised program's record (status lists only those): not a traced process. */
static int is_program(const struct procbus_proc *p)
{
    return !(p->flags & PROCBUS_F_DESCENDANT) && p->name[0] != '\0';
}

static void print_status_line(const struct procbus_proc *p, int width)
{
    char detail[160], tmp[96], when[32], name[CLI_LABEL_MAX];
    time_t t = (time_t)(p->state_since_ns / PB_NS_PER_SEC);
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%b %d %H:%M:%S", &tm);
    switch (p->state) {
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_READY:
    case PROCBUS_STATE_STARTING:
    case PROCBUS_STATE_STOPPING:
        cli_fmt_duration(tmp, sizeof(tmp), pb_now_ns(CLOCK_REALTIME) - p->start_realtime_ns);
        snprintf(detail, sizeof(detail), "pid %d, uptime %s", p->pid, tmp);
        break;
    case PROCBUS_STATE_BACKOFF:
        cli_fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "exited too quickly (%s), retrying", tmp);
        break;
    case PROCBUS_STATE_FATAL:
        cli_fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "gave up: %s", tmp);
        break;
    case PROCBUS_STATE_EXITED:
        cli_fmt_exit(tmp, sizeof(tmp), p);
        snprintf(detail, sizeof(detail), "%s, %s", when, tmp);
        break;
    default:
        snprintf(detail, sizeof(detail), "%s", p->exit_kind ? when : "Not started");
        break;
    }
    if (p->restarts > 0)
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), ", restarts %u",
                 p->restarts);
    printf("%-*s %-9s %s\n", width, cli_label(name, sizeof(name), p), procbus_state_name(p->state),
           detail);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct procbus_proc *)a)->name, ((const struct procbus_proc *)b)->name);
}

/* Does program `name` answer to `arg`: NAME exactly, or GROUP:* / GROUP: (its group's). */
static int name_selected(const char *name, const char *arg)
{
    size_t glen = strlen(arg);
    int group = glen > 0 && (arg[glen - 1] == '*' || arg[glen - 1] == ':');

    if (!group)
        return strcmp(name, arg) == 0;
    glen -= arg[glen - 1] == '*' && glen >= 2 ? 2 : 1; /* GROUP:* -> GROUP */
    return strncmp(name, arg, glen) == 0 &&
           (name[glen] == ':' || name[glen] == '_' || name[glen] == '\0');
}

int cli_cmd_status(const struct cli_opts *o, int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_proc *list = NULL;
    size_t n = 0, i;
    int width = 8, bad = 0, a;
    int rc = cli_open_programs(o->segment, &r, &list, &n); /* programs only, zero-copy walk */

    if (rc != 0)
        return rc;
    qsort(list, n, sizeof(*list), by_name);
    for (i = 0; i < n; i++) {
        char name[CLI_LABEL_MAX];
        if (is_program(&list[i]) && (int)strlen(cli_label(name, sizeof(name), &list[i])) > width)
            width = (int)strlen(name);
    }
    width = width < 32 ? 32 : width;
    if (argc <= 1) {
        for (i = 0; i < n; i++)
            if (is_program(&list[i]))
                print_status_line(&list[i], width);
    }
    for (a = 1; a < argc; a++) {
        int found = 0;
        for (i = 0; i < n; i++) {
            const struct procbus_proc *p = &list[i];
            if (!is_program(p) || !name_selected(p->name, argv[a]))
                continue;
            found = 1;
            print_status_line(p, width);
            if (p->state != PROCBUS_STATE_RUNNING && p->state != PROCBUS_STATE_READY)
                bad = 1;
        }
        if (!found) {
            printf("%-*s ERROR (no such process)\n", width, argv[a]);
            bad = 1;
        }
    }
    free(list);
    procbus_close(&r);
    return bad ? CLI_EX_NOTRUN : CLI_EX_OK;
}
