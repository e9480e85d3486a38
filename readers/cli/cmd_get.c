/* cmd_get.c - procbus get: every field of one record, by program name or by pid. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_fmt.h"
#include "cli_json.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "util.h"

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
        return CLI_EX_NOSEG;
    }
    fprintf(stderr, "procbus: cannot read the segment: %s\n", procbus_strerror(rc));
    return CLI_EX_FAIL;
}

/* " (PROGRAM)": the name of the program a traced process belongs to, or "". */
static void program_of(struct procbus_reader *r, const struct procbus_proc *p, char *prog,
                       size_t len)
{
    struct procbus_proc *l;
    size_t n;

    if (p->program_id == 0 || cli_list_all(r, &l, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (l[i].id == p->program_id) {
            char lab[CLI_LABEL_MAX];
            snprintf(prog, len, " (%s)", cli_label(lab, sizeof(lab), &l[i]));
        }
    free(l);
}

static void print_record(const struct procbus_proc *p, const char *prog)
{
    char a[128], b[128], cmd[CLI_CMDLINE_MAX], safe[CLI_LABEL_MAX];
    uint64_t now = pb_now_ns(CLOCK_REALTIME);

    printf("name:          %s\n", p->name[0]
                                      ? cli_safe(safe, sizeof(safe), p->name, PROCBUS_NAME_LEN)
                                      : "- (a traced process)");
    printf("id:            %llu%s%s\n", (unsigned long long)p->id,
           (p->flags & PROCBUS_F_DESCENDANT) ? " (descendant)" : "",
           (p->flags & PROCBUS_F_PREEXISTING) ? " (there before procbusd)" : "");
    if (p->program_id != 0)
        printf("program_id:    %llu%s\n", (unsigned long long)p->program_id, prog);
    printf("state:         %s\n", procbus_state_name(p->state));
    cli_fmt_time(a, sizeof(a), p->state_since_ns, 1);
    printf("state since:   %s\n", a);
    if (cli_live(p))
        printf("pid:           %d\n", p->pid);
    else if (p->pid > 0)
        printf("pid:           %d (last run; not running)\n", p->pid);
    else
        printf("pid:           - (not running)\n");
    printf("ppid:          %d\n", p->ppid);
    printf("pgid:          %d\n", p->pgid);
    if (p->ns_pid != 0)
        printf("ns pid:        %d\n", p->ns_pid);
    cli_fmt_time(a, sizeof(a), p->start_realtime_ns, 1);
    printf("started:       %s\n", a);
    if (cli_live(p) && p->start_realtime_ns != 0 && now > p->start_realtime_ns) {
        cli_fmt_duration(b, sizeof(b), now - p->start_realtime_ns);
        printf("uptime:        %s\n", b);
    }
    cli_fmt_exit(a, sizeof(a), p);
    if (p->name[0] == '\0') { /* only programs are restarted and sampled */
        printf("exit:          %s\n", p->exit_kind != PROCBUS_EXIT_NONE ? a
                                      : p->state == PROCBUS_STATE_EXITED
                                          ? "unknown (seen gone by a /proc walk)"
                                          : "-");
    } else {
        printf("restarts:      %u\n", p->restarts);
        printf("last exit:     %s\n", p->exit_kind != PROCBUS_EXIT_NONE ? a
                                      : (p->flags & PROCBUS_F_EXIT_UNKNOWN)
                                          ? "unknown (it ended while no procbusd could see how)"
                                          : "-");
        if (p->flags & PROCBUS_F_ADOPTED)
            printf("adopted:       yes (started by a procbusd that died)\n");
        printf("cpu:           %llu.%03llu s\n", (unsigned long long)(p->cpu_ns / PB_NS_PER_SEC),
               (unsigned long long)(p->cpu_ns / 1000000ull % 1000));
        cli_fmt_bytes(a, sizeof(a), p->rss_bytes);
        printf("rss:           %s (%llu bytes)\n", a, (unsigned long long)p->rss_bytes);
    }
    printf("comm:          %s\n", cli_safe(safe, sizeof(safe), p->comm, PROCBUS_COMM_LEN));
    cli_fmt_cmdline(cmd, sizeof(cmd), p);
    printf("cmdline:       %s\n", cmd);
}

int cli_cmd_get(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct procbus_reader r;
    struct procbus_proc p;
    int json = 0, opt, rc;
    char prog[CLI_LABEL_MAX + 4] = "";

    optind = 0;
    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'j') {
            json = 1;
        } else if (opt == 'h') {
            get_usage(stdout);
            return CLI_EX_OK;
        } else {
            get_usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "procbus get: give exactly one NAME or PID (see procbus get --help)\n");
        return CLI_EX_USAGE;
    }
    if (cli_open_segment(o->segment, &r) < 0)
        return CLI_EX_NOSEG;
    cli_warn_liveness(&r);
    rc = find_record(&r, cli_process_part(argv[optind]), &p); /* NAME or GROUP:NAME */
    if (rc == 0) /* a traced process: which program it belongs to */
        program_of(&r, &p, prog, sizeof(prog));
    procbus_close(&r);
    if (rc != 0)
        return rc;
    if (json) {
        struct json_object *obj = cli_json_proc(&p);
        cli_json_print(obj, 1);
        json_object_put(obj);
        return CLI_EX_OK;
    }
    print_record(&p, prog);
    return CLI_EX_OK;
}
