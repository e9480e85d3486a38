/* cmd_control.c - the control verbs (start stop restart signal reload shutdown) through procbusd's
 * socket; start/stop/restart then follow the event ring until each program settles. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_fmt.h"
#include "cli_follow.h"
#include "cli_segment.h"
#include "ctl.h"
#include "util.h"

/* What the verb waits for once procbusd accepted it. */
enum settle { SETTLE_NONE, SETTLE_STARTED, SETTLE_STOPPED };

/* A program the request named, followed until it settles. */
struct target {
    char name[PROCBUS_NAME_LEN]; /* its record */
    char label[160];             /* what procbusd called it: supervisord's GROUP:NAME */
    uint64_t id;
    int done, ok;
    uint16_t last_state;
};

struct control {
    struct procbus_reader r;
    enum settle settle;
    struct target *t;
    size_t nt, pending;
    int result; /* exit code so far */
};

/* Whether state `s` ends the wait for a target, and (*ok) whether it means success. */
static int judge(enum settle settle, uint16_t s, int *ok)
{
    if (settle == SETTLE_STOPPED) {
        *ok = 1;
        return s == PROCBUS_STATE_STOPPED || s == PROCBUS_STATE_EXITED || s == PROCBUS_STATE_FATAL;
    }
    *ok = s == PROCBUS_STATE_RUNNING || s == PROCBUS_STATE_READY;
    return *ok || s == PROCBUS_STATE_FATAL || s == PROCBUS_STATE_EXITED;
}

/* Target i reached state s: done if that settles it. */
static void settle_target(struct control *c, size_t i, uint16_t s)
{
    int ok;

    c->t[i].last_state = s;
    if (judge(c->settle, s, &ok)) {
        c->t[i].done = 1;
        c->t[i].ok = ok;
        c->pending--;
    }
}

static int control_missed(void *ctx, uint64_t missed)
{
    struct control *c = ctx;

    (void)missed; /* lapped: judge from the snapshot instead */
    for (size_t i = 0; i < c->nt; i++) {
        struct procbus_proc p;
        int ok;
        if (!c->t[i].done && procbus_get_name(&c->r, c->t[i].name, &p) == 0 &&
            p.state != c->t[i].last_state && judge(c->settle, p.state, &ok))
            settle_target(c, i, p.state);
    }
    return c->pending == 0 ? CLI_FOLLOW_DONE : CLI_FOLLOW_MORE;
}

static int control_event(void *ctx, const struct procbus_event *ev)
{
    struct control *c = ctx;

    for (size_t i = 0; i < c->nt; i++)
        if (!c->t[i].done && ev->record_id == c->t[i].id && ev->kind == PROCBUS_EV_STATE)
            settle_target(c, i, ev->new_state);
    return c->pending == 0 ? CLI_FOLLOW_DONE : CLI_FOLLOW_MORE;
}

static int control_idle(void *ctx)
{
    struct control *c = ctx;

    if (procbus_liveness(&c->r, procbus_stale_after_ns(&c->r)) == PROCBUS_ALIVE)
        return CLI_FOLLOW_MORE;
    cli_warn_liveness(&c->r);
    c->result = CLI_EX_FAIL;
    return CLI_FOLLOW_DONE;
}

/* How long a control request (connect, send, the whole reply) may take: -t, else 30 s. */
#define CONTROL_REQUEST_DEFAULT_S 30

static int request_seconds(const struct cli_opts *o)
{
    return o->timeout_s > 0 ? o->timeout_s : CONTROL_REQUEST_DEFAULT_S;
}

/* Say that procbusd could not be reached or did not answer (pbd_ctl_request_timeout's negative
 * errno rc); the exit code. */
static int say_unreachable(const struct cli_opts *o, int rc)
{
    const char *sock = o->socket;
    char def[108];

    if (sock == NULL) {
        pbd_ctl_default_path(def, sizeof(def));
        sock = def;
    }
    if (rc == -ETIMEDOUT) {
        fprintf(stderr,
                "procbus: procbusd at %s did not answer within %d s (stopped or hung? -t sets "
                "the time)\n",
                sock, request_seconds(o));
        return CLI_EX_TIMEOUT;
    }
    fprintf(stderr,
            "procbus: cannot reach procbusd at %s: %s (is it running? -S sets the socket)\n", sock,
            strerror(-rc));
    return CLI_EX_NOSEG;
}

/* The reply's detail lines: "NAME: start queued" / "NAME: ERROR (...)" / "NAME: killing N
 * leftover process(es)" (a stopped program's descendants: SIGKILL, nothing to wait for). Lines
 * naming a program to wait for become targets; the others are printed. */
static void read_reply(struct control *c, char *reply, int follow)
{
    for (char *line = strtok(reply, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *colon = strstr(line, ": ");
        struct target *grown;
        struct procbus_proc p;

        if (!follow || colon == NULL || strstr(colon, "ERROR") != NULL ||
            strstr(colon, "leftover") != NULL) {
            printf("%s\n", line);
            continue;
        }
        grown = realloc(c->t, (c->nt + 1) * sizeof(*c->t));
        if (grown == NULL)
            break;
        c->t = grown;
        memset(&c->t[c->nt], 0, sizeof(c->t[c->nt]));
        snprintf(c->t[c->nt].label, sizeof(c->t[c->nt].label), "%.*s", (int)(colon - line), line);
        snprintf(c->t[c->nt].name, sizeof(c->t[c->nt].name), "%s",
                 cli_process_part(c->t[c->nt].label));
        if (procbus_get_name(&c->r, c->t[c->nt].name, &p) == 0) {
            c->t[c->nt].id = p.id;
            c->t[c->nt].last_state = p.state;
            c->nt++;
        } else {
            printf("%s\n", line);
        }
    }
}

/* One line per target: settled, failed, or still waiting; updates c->result. */
static void report(struct control *c)
{
    for (size_t i = 0; i < c->nt; i++) {
        const struct target *t = &c->t[i];
        struct procbus_proc p;
        char why[128] = "";

        if (procbus_get_name(&c->r, t->name, &p) == 0)
            cli_fmt_exit(why, sizeof(why), &p);
        if (!t->done) {
            printf("%s: still %s (gave up waiting)\n", t->label, procbus_state_name(t->last_state));
            if (c->result == CLI_EX_OK)
                c->result = cli_stop_requested ? CLI_EX_FAIL : CLI_EX_TIMEOUT;
        } else if (t->ok) {
            printf("%s: %s\n", t->label, c->settle == SETTLE_STOPPED ? "stopped" : "started");
        } else {
            printf("%s: ERROR (%s: %s)\n", t->label, procbus_state_name(t->last_state), why);
            c->result = CLI_EX_FAIL;
        }
    }
}

/* Send the request, then (settle, -t > 0 and the segment readable) follow every program it
 * queued until it settles, -t seconds pass, SIGINT, or procbusd stops answering. */
static int control(const struct cli_opts *o, int argc, char **argv, enum settle settle)
{
    struct control c = {.settle = settle, .result = CLI_EX_OK};
    struct cli_follower f = {.r = &c.r,
                             .ctx = &c,
                             .on_event = control_event,
                             .on_missed = control_missed,
                             .on_idle = control_idle,
                             .slice_ms = 500,
                             .stoppable = 1};
    int have_reader = 0, rc;
    char *reply = NULL;
    size_t len = 0;
    FILE *mem;

    if (settle != SETTLE_NONE && o->timeout_s > 0 && procbus_open(&c.r, o->segment) == 0) {
        have_reader = 1; /* before the request: every transition after it is in the ring */
        procbus_seek_events(&c.r, PROCBUS_SEEK_NOW);
    }
    mem = open_memstream(&reply, &len);
    if (mem == NULL) {
        if (have_reader)
            procbus_close(&c.r);
        return CLI_EX_FAIL;
    }
    /* a daemon that refuses and closes at once must not kill us before we print why */
    signal(SIGPIPE, SIG_IGN);
    rc = pbd_ctl_request_timeout(o->socket, argc, argv, mem, stderr,
                                 request_seconds(o) * 1000); /* 0 OK, 1 ERR, or -errno */
    fclose(mem);
    if (rc < 0) {
        int ex = say_unreachable(o, rc);
        free(reply);
        if (have_reader)
            procbus_close(&c.r);
        return ex;
    }
    read_reply(&c, reply, have_reader);
    free(reply);
    if (rc == 1)
        c.result = CLI_EX_FAIL;
    if (c.nt > 0) {
        c.pending = c.nt;
        cli_catch_stop_signal(SIGINT);
        f.deadline_ns = pb_now_ns(CLOCK_MONOTONIC) + (uint64_t)o->timeout_s * PB_NS_PER_SEC;
        if (cli_follow(&f) == CLI_FOLLOW_TIMEOUT)
            c.result = CLI_EX_TIMEOUT;
        report(&c);
    }
    free(c.t);
    if (have_reader)
        procbus_close(&c.r);
    return c.result;
}

int cli_cmd_start(const struct cli_opts *o, int argc, char **argv)
{
    return control(o, argc, argv, SETTLE_STARTED);
}

int cli_cmd_stop(const struct cli_opts *o, int argc, char **argv)
{
    return control(o, argc, argv, SETTLE_STOPPED);
}

int cli_cmd_restart(const struct cli_opts *o, int argc, char **argv)
{
    return control(o, argc, argv, SETTLE_STARTED);
}

int cli_cmd_send(const struct cli_opts *o, int argc, char **argv)
{
    return control(o, argc, argv, SETTLE_NONE);
}

int cli_cmd_reexec(const struct cli_opts *o, int argc, char **argv)
{
    char abs[PATH_MAX], *args[3] = {argv[0], NULL, NULL};

    if (argc > 2) {
        fprintf(stderr, "procbus reexec: one binary at most\n");
        return CLI_EX_USAGE;
    }
    if (argc == 2) {
        if (realpath(argv[1], abs) == NULL) {
            fprintf(stderr, "procbus reexec: %s: %s\n", argv[1], strerror(errno));
            return CLI_EX_USAGE;
        }
        args[1] = abs;
    }
    return control(o, argc, args, SETTLE_NONE);
}
