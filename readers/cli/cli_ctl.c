/* cli_ctl.c - a control request whose reply a command reads: procbusd's look-ups. */
#define _GNU_SOURCE
#include "cli_ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"

int cli_ctl_capture(const struct cli_opts *o, int argc, char **argv, int timeout_ms, char **reply,
                    char **why)
{
    size_t rlen = 0, wlen = 0;
    FILE *out, *err;
    int rc;

    *reply = *why = NULL;
    out = open_memstream(reply, &rlen);
    err = open_memstream(why, &wlen);
    if (out == NULL || err == NULL) {
        if (out != NULL)
            fclose(out);
        if (err != NULL)
            fclose(err);
        free(*reply);
        free(*why);
        *reply = *why = NULL;
        return -ENOMEM;
    }
    signal(SIGPIPE, SIG_IGN);
    rc = pbd_ctl_request_timeout(o->socket, argc, argv, out, err, timeout_ms);
    fclose(out);
    fclose(err);
    if (rc < 0) {
        free(*reply);
        free(*why);
        *reply = *why = NULL;
    }
    return rc;
}

int cli_names_fetch(const struct cli_opts *o, int timeout_ms, struct cli_names *out)
{
    char *words[] = {"names", NULL}, *reply, *why, *save = NULL;
    size_t cap = 0;
    int rc = cli_ctl_capture(o, 1, words, timeout_ms, &reply, &why);

    memset(out, 0, sizeof(*out));
    if (rc != 0) {
        free(reply);
        free(why);
        return rc < 0 ? rc : -EPERM;
    }
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char g[64], nm[64];
        if (sscanf(line, "%63s %63s", g, nm) != 2)
            continue;
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char(*ng)[64] = realloc(out->group, nc * sizeof(*ng));
            char(*nn)[64] = ng ? realloc(out->name, nc * sizeof(*nn)) : NULL;
            if (ng)
                out->group = ng;
            if (!ng || !nn)
                break;
            out->name = nn;
            cap = nc;
        }
        memcpy(out->group[out->n], g, sizeof(g));
        memcpy(out->name[out->n], nm, sizeof(nm));
        out->n++;
    }
    free(reply);
    free(why);
    return 0;
}

void cli_names_free(struct cli_names *n)
{
    free(n->group);
    free(n->name);
    memset(n, 0, sizeof(*n));
}

const char *cli_names_group(const struct cli_names *n, const char *name)
{
    for (size_t i = 0; n != NULL && i < n->n; i++)
        if (strcmp(n->name[i], name) == 0)
            return n->group[i];
    return NULL;
}

const char *cli_namespec(char *buf, size_t len, const struct cli_names *n, const char *name)
{
    const char *g = cli_names_group(n, name);

    if (g == NULL || strcmp(g, name) == 0)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%s:%s", g, name);
    return buf;
}

const char *cli_process_part(const char *arg)
{
    const char *colon = strchr(arg, ':');

    return colon != NULL && colon[1] != '\0' && colon[1] != '*' ? colon + 1 : arg;
}

/* Ask procbusd for name's log files. 0 or an exit code (said). */
static int paths_from_daemon(const struct cli_opts *o, const char *cmd, const char *name,
                             struct cli_logs *out)
{
    char *words[] = {"logfile", (char *)name, NULL}, *reply, *why, *save = NULL;
    int rc = cli_ctl_capture(o, 2, words, 10000, &reply, &why);

    if (rc < 0) {
        fprintf(stderr,
                "%s: cannot ask procbusd where %s logs: %s (give the configuration with -c FILE, "
                "or -S SOCKET)\n",
                cmd, name, strerror(-rc));
        return CLI_EX_NOSEG;
    }
    if (rc == 1) {
        fprintf(stderr, "%s: %s", cmd, why && *why ? why : "procbusd refused\n");
        free(reply);
        free(why);
        return CLI_EX_NOSEG;
    }
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "stdout ", 7))
            snprintf(out->path[0], sizeof(out->path[0]), "%s", line + 7);
        else if (!strncmp(line, "stderr ", 7))
            snprintf(out->path[1], sizeof(out->path[1]), "%s", line + 7);
    }
    free(reply);
    free(why);
    return 0;
}

int cli_log_paths(const struct cli_opts *o, const char *cmd, const char *name, struct cli_logs *out)
{
    const struct pbd_program *prog;
    int need_daemon = o->cfg == NULL;

    memset(out, 0, sizeof(*out));
    if (o->cfg != NULL) {
        prog = pbd_config_find(o->cfg, name);
        if (prog == NULL) {
            fprintf(stderr, "%s: no program named '%s' in %s\n", cmd, name,
                    o->cfg->path ? o->cfg->path : "the configuration");
            return CLI_EX_NOSEG;
        }
        for (int i = 0; i < 2; i++) {
            const char *p = i ? prog->err.path : prog->out.path;
            if (i == 1 && prog->redirect_stderr)
                p = NULL;
            if (pbd_log_is_auto(p))
                need_daemon = 1; /* its name is chosen by procbusd */
            else if (p != NULL)
                snprintf(out->path[i], sizeof(out->path[i]), "%s", p);
        }
    }
    if (need_daemon) {
        struct cli_logs d;
        int rc = paths_from_daemon(o, cmd, name, &d);
        if (rc != 0)
            return rc;
        for (int i = 0; i < 2; i++)
            if (out->path[i][0] == '\0')
                memcpy(out->path[i], d.path[i], sizeof(d.path[i]));
    }
    return 0;
}
