/* cli_segment.c - opening procbusd's segment for a command, and reading it whole. */
#define _GNU_SOURCE
#include "cli_segment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

const char *cli_segment_name(const char *segment)
{
    if (segment == NULL || segment[0] == '\0')
        segment = getenv(PROCBUS_SEGMENT_ENV);
    return segment != NULL && segment[0] != '\0' ? segment : PROCBUS_DEFAULT_SEGMENT;
}

int cli_open_segment(const char *segment, struct procbus_reader *r)
{
    int rc = procbus_open(r, segment);

    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        fprintf(stderr,
                "procbus: no segment named %s: is procbusd running? set PROCBUS_SEGMENT or -s\n",
                cli_segment_name(segment));
    else
        fprintf(stderr, "procbus: cannot read segment %s: %s\n", cli_segment_name(segment),
                strerror(-rc));
    return rc;
}

int cli_warn_liveness(const struct procbus_reader *r)
{
    int l = procbus_liveness(r, PROCBUS_STALE_AFTER_NS);

    if (l == PROCBUS_SHUTDOWN)
        fprintf(stderr, "procbus: procbusd has shut down; showing its last state\n");
    else if (l == PROCBUS_STALE)
        fprintf(stderr,
                "procbus: procbusd is not responding (heartbeat older than %llu s); "
                "showing its last state\n",
                (unsigned long long)(PROCBUS_STALE_AFTER_NS / PB_NS_PER_SEC));
    else if (l == PROCBUS_GONE)
        fprintf(stderr, "procbus: this segment was replaced; run the command again\n");
    return l;
}

int cli_list_all(struct procbus_reader *r, struct procbus_proc **out, size_t *count)
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

int cli_open_table(const char *segment, struct procbus_reader *r, struct procbus_proc **out,
                   size_t *n)
{
    if (cli_open_segment(segment, r) < 0)
        return CLI_EX_NOSEG;
    cli_warn_liveness(r);
    if (cli_list_all(r, out, n) < 0) {
        procbus_close(r);
        return CLI_EX_FAIL;
    }
    return 0;
}
