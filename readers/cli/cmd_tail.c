/* cmd_tail.c - supervisorctl's tail and maintail: the last bytes of a program's log (by stream)
 * or of procbusd's own log, optionally followed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_follow.h"

#define TAIL_DEFAULT_BYTES 1600 /* supervisorctl's */

/* The last `bytes` bytes of path on stdout, then (follow) what is appended, across rotations,
 * until SIGINT/SIGTERM. supervisorctl prints its reply and a newline: so do we (not when
 * following). 0, or -errno (open). */
static int tail_bytes(const char *path, long bytes, int follow)
{
    char buf[16384];
    struct stat st;
    off_t off;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    off = st.st_size > bytes ? st.st_size - bytes : 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
        off += n;
    }
    if (!follow) {
        fputc('\n', stdout);
        close(fd);
        return 0;
    }
    fflush(stdout);
    cli_catch_stop_signal(SIGINT);
    cli_catch_stop_signal(SIGTERM);
    while (!cli_stop_requested) {
        struct stat now;
        ssize_t n;
        while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
            fwrite(buf, 1, (size_t)n, stdout);
            off += n;
        }
        fflush(stdout);
        if (stat(path, &now) == 0 && (now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
            int nfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            if (nfd >= 0) { /* rotated: the rest of the old file was read above */
                close(fd);
                fd = nfd;
                fstat(fd, &st);
                off = 0;
            }
        } else if (stat(path, &now) == 0 && now.st_size < off) {
            off = 0; /* truncated (clear) */
        }
        usleep(200000);
    }
    close(fd);
    return 0;
}

/* "-N" (bytes) or "-f": 1 when it is one of them (*bytes or *follow set), 0 when arg is not an
 * option, -1 when it is a bad one. */
static int modifier(const char *arg, long *bytes, int *follow)
{
    char *end;
    long v;

    if (arg[0] != '-')
        return 0;
    if (!strcmp(arg, "-f")) {
        *follow = 1;
        return 1;
    }
    v = strtol(arg + 1, &end, 10);
    if (arg[1] == '\0' || *end != '\0' || v < 0)
        return -1;
    *bytes = v;
    return 1;
}

int cli_cmd_tail(const struct cli_opts *o, int argc, char **argv)
{
    long bytes = TAIL_DEFAULT_BYTES;
    int follow = 0, a = 1, rc, which = 0;
    struct cli_logs logs;
    const char *name;

    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: procbus tail [-f|-BYTES] NAME [stdout|stderr]\n"
               "The last BYTES (default %d) bytes of NAME's (or GROUP:NAME's) stdout log, or\n"
               "of its stderr log; -f keeps printing what is appended (supervisorctl's tail).\n",
               TAIL_DEFAULT_BYTES);
        return CLI_EX_OK;
    }
    if (argc > 1 && (rc = modifier(argv[1], &bytes, &follow)) != 0) {
        if (rc < 0) {
            fprintf(stderr, "Error: bad argument %s\n", argv[1]);
            return CLI_EX_FAIL;
        }
        a++;
    }
    if (a >= argc || argc - a > 2) {
        fprintf(stderr, "Error: %s (usage: procbus tail [-f|-BYTES] NAME [stdout|stderr])\n",
                a >= argc ? "tail requires process name" : "too many arguments");
        return CLI_EX_FAIL;
    }
    name = argv[a];
    if (a + 1 < argc) {
        if (!strcasecmp(argv[a + 1], "stderr"))
            which = 1;
        else if (strcasecmp(argv[a + 1], "stdout") != 0) {
            fprintf(stderr, "Error: bad channel '%s'\n", argv[a + 1]);
            return CLI_EX_FAIL;
        }
    }
    rc = cli_log_paths(o, "procbus tail", name, &logs);
    if (rc != 0) {
        printf("%s: ERROR (no such process name)\n", name);
        return rc;
    }
    if (logs.path[which][0] == '\0' || tail_bytes(logs.path[which], bytes, follow) < 0) {
        printf("%s: ERROR (no log file)\n", name);
        return CLI_EX_FAIL;
    }
    return CLI_EX_OK;
}

int cli_cmd_maintail(const struct cli_opts *o, int argc, char **argv)
{
    char *words[] = {"mainlog", NULL}, *reply = NULL, *why = NULL;
    long bytes = TAIL_DEFAULT_BYTES;
    int follow = 0, rc;

    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: procbus maintail [-f|-BYTES]\n"
               "The last BYTES (default %d) bytes of procbusd's own log ([supervisord]\n"
               "logfile); -f keeps printing what is appended (supervisorctl's maintail).\n",
               TAIL_DEFAULT_BYTES);
        return CLI_EX_OK;
    }
    if (argc > 2 || (argc == 2 && modifier(argv[1], &bytes, &follow) != 1)) {
        fprintf(stderr, "Error: bad argument %s\n", argc > 1 ? argv[argc - 1] : "");
        return CLI_EX_FAIL;
    }
    rc = cli_ctl_capture(o, 1, words, 10000, &reply, &why);
    if (rc < 0) {
        fprintf(stderr, "procbus maintail: cannot reach procbusd: %s\n", strerror(-rc));
        return CLI_EX_NOSEG;
    }
    if (rc == 1 || reply == NULL || reply[0] == '\0') {
        printf("supervisord: ERROR (no log file)\n");
        if (why != NULL && why[0] != '\0')
            fprintf(stderr, "procbus maintail: %s", why);
        free(reply);
        free(why);
        return CLI_EX_FAIL;
    }
    reply[strcspn(reply, "\n")] = '\0';
    rc = tail_bytes(reply, bytes, follow);
    if (rc < 0)
        printf("supervisord: ERROR (no log file)\n");
    free(reply);
    free(why);
    return rc < 0 ? CLI_EX_FAIL : CLI_EX_OK;
}
