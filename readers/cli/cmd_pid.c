/* cmd_pid.c - supervisorctl's pid: procbusd's pid, or programs' pids (0 when not running), from
 * the segment. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_proc.h"
#include "cli_segment.h"

/* supervisorctl exits 7 (LSB "program is not running") when a named program has no pid. */
#define CLI_EX_PID_NOT_RUNNING 7

/* The pid supervisord would say: the main process's while there is one, else 0. */
static int pid_of(const struct procbus_proc *p)
{
    return p->state == PROCBUS_STATE_STARTING || p->state == PROCBUS_STATE_RUNNING ||
                   p->state == PROCBUS_STATE_READY || p->state == PROCBUS_STATE_STOPPING
               ? p->pid
               : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct procbus_proc *)a)->name, ((const struct procbus_proc *)b)->name);
}

int cli_cmd_pid(const struct cli_opts *o, int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_info info;
    struct procbus_proc *list = NULL, p;
    size_t n = 0;
    int rc, all = 0;

    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: procbus pid [NAME...|all]\n"
               "procbusd's pid; with names (NAME or GROUP:NAME), each program's pid (0 when it\n"
               "does not run: exit 7, as supervisorctl); all: every program's.\n");
        return CLI_EX_OK;
    }
    for (int a = 1; a < argc; a++)
        all |= strcmp(argv[a], "all") == 0;
    if (argc <= 1) {
        rc = cli_open_segment(o->segment, &r);
        if (rc < 0)
            return CLI_EX_NOSEG;
        rc = procbus_info(&r, &info);
        procbus_close(&r);
        if (rc < 0)
            return CLI_EX_FAIL;
        printf("%d\n", (int)info.publisher_pid);
        return CLI_EX_OK;
    }
    rc = cli_open_table(o->segment, &r, &list, &n);
    if (rc != 0)
        return rc;
    rc = CLI_EX_OK;
    if (all) {
        if (n > 1)
            qsort(list, n, sizeof(*list), by_name);
        for (size_t i = 0; i < n; i++)
            if (!(list[i].flags & PROCBUS_F_DESCENDANT) && list[i].name[0] != '\0')
                printf("%d\n", pid_of(&list[i]));
    } else {
        for (int a = 1; a < argc; a++) {
            if (procbus_get_name(&r, cli_process_part(argv[a]), &p) != 0 ||
                (p.flags & PROCBUS_F_DESCENDANT)) {
                printf("No such process %s\n", argv[a]);
                rc = CLI_EX_FAIL;
                continue;
            }
            printf("%d\n", pid_of(&p));
            if (pid_of(&p) == 0 && rc == CLI_EX_OK)
                rc = CLI_EX_PID_NOT_RUNNING;
        }
    }
    free(list);
    procbus_close(&r);
    return rc;
}
