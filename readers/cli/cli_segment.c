/* cli_segment.c - opening procbusd's segment for a command, and reading it whole, guarded. */
#define _GNU_SOURCE
#include "cli_segment.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "liveprobe.h"
#include "segguard.h"
#include "util.h"

const char *cli_segment_name(const char *segment)
{
    if (segment == NULL || segment[0] == '\0')
        segment = getenv(PROCBUS_SEGMENT_ENV);
    return segment != NULL && segment[0] != '\0' ? segment : PROCBUS_DEFAULT_SEGMENT;
}

/* What is at `path` when it is not a segment: " (a FIFO)", " (owned by uid N)" ... or "". */
static void describe(const char *path, int err, char *buf, size_t len)
{
    struct stat st;

    buf[0] = '\0';
    if (lstat(path, &st) < 0)
        return;
    if (err == -EPROTO && !S_ISREG(st.st_mode))
        snprintf(buf, len, " (%s)",
                 S_ISFIFO(st.st_mode)   ? "a FIFO"
                 : S_ISSOCK(st.st_mode) ? "a socket"
                 : S_ISCHR(st.st_mode)  ? "a character device"
                 : S_ISBLK(st.st_mode)  ? "a block device"
                                        : "not a regular file");
    else if (err == -EPERM && S_ISREG(st.st_mode))
        snprintf(buf, len, " (the file is owned by uid %u; set %s=%u to trust it)",
                 (unsigned)st.st_uid, PROCBUS_OWNER_ENV, (unsigned)st.st_uid);
}

void cli_say_open_error(const char *segment, int err)
{
    char path[PROCBUS_PATH_MAX], what[128];

    if (procbus_segment_path(segment, path, sizeof(path)) < 0)
        snprintf(path, sizeof(path), "%s", cli_segment_name(segment));
    if (err == -ENOENT) {
        fprintf(stderr,
                "procbus: no segment %s (%s): is procbusd running? set PROCBUS_SEGMENT or -s\n",
                cli_segment_name(segment), path);
        return;
    }
    describe(path, err, what, sizeof(what));
    fprintf(stderr, "procbus: cannot read segment %s: %s%s\n", path, procbus_strerror(err), what);
}

int cli_open_segment(const char *segment, struct procbus_reader *r)
{
    int rc = procbus_open(r, segment);

    if (rc < 0)
        cli_say_open_error(segment, rc);
    return rc;
}

int cli_warn_liveness(const struct procbus_reader *r)
{
    uint64_t stale = procbus_stale_after_ns(r);
    int l = pb_publisher_check(r); /* the heartbeat, and at once the segment's lock */

    if (l == PB_PUBLISHER_DEAD)
        fprintf(stderr, "procbus: procbusd is not running (it died without shutting down); "
                        "showing its last state\n");
    else if (l == PROCBUS_SHUTDOWN)
        fprintf(stderr, "procbus: procbusd has shut down; showing its last state\n");
    else if (l == PROCBUS_STALE)
        fprintf(stderr,
                "procbus: procbusd is not responding (no heartbeat for over %.1f s); "
                "showing its last state\n",
                (double)stale / (double)PB_NS_PER_SEC);
    else if (l == PROCBUS_GONE)
        fprintf(stderr, "procbus: this segment was replaced; run the command again\n");
    return l;
}

int cli_guarded(struct procbus_reader *r, int (*fn)(struct procbus_reader *r, void *arg), void *arg)
{
    struct pb_guard g;
    volatile int rc = -EFAULT;

    pb_guard_arm(&g, r->base, r->len);
    if (sigsetjmp(g.env, 1) == 0) {
        rc = fn(r, arg);
        pb_guard_disarm(&g);
    }
    return rc;
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
        fprintf(stderr, "procbus: cannot read the process table: %s\n", procbus_strerror(rc));
        free(list);
        return rc;
    }
    *out = list;
    *count = n;
    return 0;
}

int cli_list_programs(struct procbus_reader *r, struct procbus_proc **out, size_t *count)
{
    struct procbus_proc *list = NULL;
    size_t cap = 64, m = 0, want = 0;
    int rc;

    for (;;) {
        struct procbus_proc *grown = realloc(list, cap * sizeof(*list));
        struct procbus_section s;
        const struct procbus_proc *p;
        uint32_t n, i;

        if (grown == NULL) {
            fprintf(stderr, "procbus: out of memory\n");
            free(list);
            return -ENOMEM;
        }
        list = grown;
        /* one zero-copy walk: only the programs' records are copied, up to cap of them; the
         * values stay unused until the section says they were one snapshot */
        procbus_section_begin(r, &s);
        do {
            n = procbus_section_count(&s);
            for (i = 0, m = want = 0; i < n && (p = procbus_section_at(&s, i)) != NULL; i++)
                if (procbus_rec_is_program(p) && want++ < cap)
                    procbus_section_copy(&s, p, &list[m++]);
        } while ((rc = procbus_section_retry(&s)) > 0);
        if (rc < 0 || want <= cap)
            break;
        cap = want + 64; /* more programs than room: again, with room */
    }
    if (rc < 0) {
        fprintf(stderr, "procbus: cannot read the process table: %s\n", procbus_strerror(rc));
        free(list);
        return rc;
    }
    *out = list;
    *count = m;
    return 0;
}

int cli_open_programs(const char *segment, struct procbus_reader *r, struct procbus_proc **out,
                      size_t *n)
{
    if (cli_open_segment(segment, r) < 0)
        return CLI_EX_NOSEG;
    cli_warn_liveness(r);
    if (cli_list_programs(r, out, n) < 0) {
        procbus_close(r);
        return CLI_EX_FAIL;
    }
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
