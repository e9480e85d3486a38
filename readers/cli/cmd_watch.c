/* cmd_watch.c - procbus watch and wait: following state transitions through the event ring. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_cmds.h"
#include "cli_ctl.h"
#include "cli_fmt.h"
#include "cli_follow.h"
#include "cli_json.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "textsafe.h"
#include "util.h"

/* ---- watch ---- */

static void watch_usage(FILE *f)
{
    fprintf(f, "usage: procbus watch [NAME...] [--json] [--from-start]\n"
               "Print every state transition (of the NAMEd programs, or all) as it happens,\n"
               "until interrupted (SIGINT/SIGTERM) or procbusd shuts down; exit 0.\n"
               "  --json        one JSON object per line (docs/JSON.md)\n"
               "  --from-start  begin with the oldest events still in the ring\n");
}

/* record id -> full name, refreshed from a snapshot when an id is unknown */
struct names {
    struct procbus_proc *list;
    size_t n;
    uint64_t gen; /* the generation the list was read at */
    char label[PROCBUS_NAME_LEN + PROCBUS_COMM_LEN + 2];
};

struct watch {
    struct procbus_reader r;
    struct names nm;
    int json;
    char **names; /* the NAMEs given (nnames of them): only their transitions */
    int nnames;
    int truncated; /* watch_idle found the file shorter than the mapping */
};

/* A record's label, raw (made safe where it is printed): its name; a traced process has none:
 * "PROGRAM/comm", or its comm. */
static const char *label_of(struct names *nm, const struct procbus_proc *p)
{
    if (p->name[0] != '\0')
        return p->name;
    for (size_t i = 0; p->program_id != 0 && i < nm->n; i++)
        if (nm->list[i].id == p->program_id) {
            snprintf(nm->label, sizeof(nm->label), "%.*s/%.*s", PROCBUS_NAME_LEN, nm->list[i].name,
                     PROCBUS_COMM_LEN, p->comm);
            return nm->label;
        }
    snprintf(nm->label, sizeof(nm->label), "%.*s", PROCBUS_COMM_LEN, p->comm);
    return nm->label;
}

static const char *name_of(struct procbus_reader *r, struct names *nm,
                           const struct procbus_event *ev)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nm->n; i++)
            if (nm->list[i].id == ev->record_id)
                return label_of(nm, &nm->list[i]);
        /* re-read the table once per generation at most (a traced storm of unknown ids
         * must not cost a full list per event) */
        if (pass == 0 && (nm->list == NULL || procbus_generation(r) != nm->gen)) {
            struct procbus_proc *l;
            size_t n;
            nm->gen = procbus_generation(r);
            if (cli_list_all(r, &l, &n) < 0)
                break;
            free(nm->list);
            nm->list = l;
            nm->n = n;
        }
    }
    snprintf(nm->label, sizeof(nm->label), "%.*s", PROCBUS_COMM_LEN, ev->name);
    return nm->label; /* removed meanwhile: the event's (possibly truncated) name */
}

/* Record ids are only unique within a segment (an epoch): forget the names of the last one. */
static void names_forget(struct names *nm)
{
    free(nm->list);
    nm->list = NULL;
    nm->n = 0;
    nm->gen = 0;
}

static int name_wanted(const struct watch *w, const char *name)
{
    if (w->nnames == 0)
        return 1;
    for (int i = 0; i < w->nnames; i++)
        if (strcmp(name, w->names[i]) == 0)
            return 1;
    return 0;
}

/* A note from watch itself (not an event): "-- text --", or a JSON object of `kind` with its
 * message (and `epoch` when not 0). `text` is watch's own (safe) words. */
static void print_note_epoch(const char *kind, const char *text, uint64_t epoch, int json)
{
    if (json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string(kind));
        json_object_object_add(o, "time_ns", json_object_new_uint64(pb_now_ns(CLOCK_REALTIME)));
        json_object_object_add(o, "message", json_object_new_string(text));
        if (epoch != 0)
            json_object_object_add(o, "epoch", json_object_new_uint64(epoch));
        cli_json_print(o, 0);
        json_object_put(o);
    } else {
        printf("-- %s --\n", text);
    }
}

static void print_note(const char *kind, const char *text, int json)
{
    print_note_epoch(kind, text, 0, json);
}

static int watch_missed(void *ctx, uint64_t missed)
{
    const struct watch *w = ctx;

    if (w->json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string("missed"));
        json_object_object_add(o, "count", json_object_new_uint64(missed));
        cli_json_print(o, 0);
        json_object_put(o);
    } else {
        printf("-- missed %llu events (the ring was lapped) --\n", (unsigned long long)missed);
    }
    return CLI_FOLLOW_MORE;
}

static void print_event_text(const struct procbus_event *ev, const char *raw_name)
{
    char when[64], ex[96] = "", name[PB_TEXT_ROOM(PROCBUS_NAME_LEN + PROCBUS_COMM_LEN + 2)];
    char comm[PB_TEXT_ROOM(PROCBUS_COMM_LEN)];
    const char *from = procbus_state_name(ev->old_state), *to = procbus_state_name(ev->new_state);

    cli_safe(name, sizeof(name), raw_name, strlen(raw_name));
    cli_fmt_time(when, sizeof(when), ev->time_ns, 1);
    if (ev->exit_kind != PROCBUS_EXIT_NONE &&
        (ev->new_state == PROCBUS_STATE_EXITED || ev->new_state == PROCBUS_STATE_BACKOFF ||
         ev->new_state == PROCBUS_STATE_FATAL || ev->new_state == PROCBUS_STATE_STOPPED)) {
        ex[0] = ' ';
        cli_fmt_exit_ev(ex + 1, sizeof(ex) - 1, ev->exit_kind, ev->exit_code,
                        (ev->flags & PROCBUS_F_CORE_DUMPED) != 0);
    } else if (ev->flags & PROCBUS_F_EXIT_UNKNOWN) {
        snprintf(ex, sizeof(ex), " status unknown");
    }
    if (ev->kind == PROCBUS_EV_STATE)
        printf("%s %s %s -> %s pid %d%s\n", when, name, from, to, ev->pid, ex);
    else if (ev->kind == PROCBUS_EV_ADD)
        printf("%s %s added %s pid %d\n", when, name, to, ev->pid);
    else if (ev->kind == PROCBUS_EV_REMOVE)
        printf("%s %s removed\n", when, name);
    else if (ev->kind == PROCBUS_EV_EXEC) /* ev->name: the new image's comm */
        printf("%s %s exec %s pid %d\n", when, name,
               cli_safe(comm, sizeof(comm), ev->name, PROCBUS_COMM_LEN), ev->pid);
}

static int watch_event(void *ctx, const struct procbus_event *ev)
{
    struct watch *w = ctx;
    const char *name;

    if (ev->kind == PROCBUS_EV_EPOCH) {
        char text[128];
        if (w->nnames > 0) /* NAMEs given: only their transitions */
            return CLI_FOLLOW_MORE;
        /* record_id: the epoch that began (ABI 1.1; 0 from an older publisher) */
        if (ev->record_id == 1)
            snprintf(text, sizeof(text), "procbusd (pid %d) created the segment (epoch 1)",
                     (int)ev->pid);
        else if (ev->record_id > 1)
            snprintf(text, sizeof(text),
                     "a new segment took the name over (epoch %llu, procbusd pid %d)",
                     (unsigned long long)ev->record_id, (int)ev->pid);
        else
            snprintf(text, sizeof(text), "a new segment began (procbusd pid %d)", (int)ev->pid);
        print_note_epoch("epoch", text, ev->record_id, w->json);
        return CLI_FOLLOW_MORE;
    }
    if (ev->kind < PROCBUS_EV_ADD || ev->kind > PROCBUS_EV_EXEC)
        return CLI_FOLLOW_MORE; /* a kind a newer publisher added: skipped (text and JSON) */
    name = name_of(&w->r, &w->nm, ev);
    if (!name_wanted(w, name))
        return CLI_FOLLOW_MORE;
    if (w->json) {
        struct json_object *obj = cli_json_event(ev, name);
        if (obj != NULL) {
            cli_json_print(obj, 0);
            json_object_put(obj);
        }
    } else {
        print_event_text(ev, name);
    }
    return CLI_FOLLOW_MORE;
}

/* The segment was replaced: follow the new one (events carry on), or wait on. */
static int watch_idle(void *ctx)
{
    struct watch *w = ctx;
    struct stat st;

    /* A file shrunk under the mapping faults only when the lost pages are read (the next
     * event): find it out now, while idle, and reopen (one stat per idle round). */
    if (stat(w->r.spec, &st) == 0 && (uint64_t)st.st_ino == w->r.ino &&
        (uint64_t)st.st_dev == w->r.dev && (uint64_t)st.st_size < w->r.len) {
        w->truncated = 1;
        return CLI_FOLLOW_DONE;
    }
    if (procbus_liveness(&w->r, procbus_stale_after_ns(&w->r)) == PROCBUS_GONE &&
        procbus_follow(&w->r) == 1) {
        names_forget(&w->nm);
        print_note_epoch("epoch", "following the new segment", w->r.epoch, w->json);
        return CLI_FOLLOW_AGAIN;
    }
    return CLI_FOLLOW_MORE;
}

static int watch_ended(void *ctx)
{
    struct watch *w = ctx;

    if (procbus_follow(&w->r) == 1) { /* superseded rather than shut down */
        names_forget(&w->nm);
        print_note_epoch("epoch", "following the new segment", w->r.epoch, w->json);
        return CLI_FOLLOW_AGAIN;
    }
    print_note("shutdown", "procbusd has shut down", w->json);
    return CLI_FOLLOW_DONE;
}

static int follow_fn(struct procbus_reader *r, void *arg)
{
    (void)r;
    return cli_follow(arg);
}

/*
 * The segment shrank under watch (SIGBUS, cli_guarded): say so, drop the mapping and open the
 * name again until it works or watch is stopped, keeping the event cursor (events lost meanwhile
 * are reported as missed). 0 when reopened, -1 when stopped.
 */
static int watch_reopen(struct watch *w, const char *segment)
{
    uint64_t cursor = w->r.cursor;
    int rc, said = 0;

    print_note("truncated", "segment truncated: reopening", w->json);
    procbus_close(&w->r);
    while ((rc = procbus_open(&w->r, segment)) < 0) {
        if (!said) {
            cli_say_open_error(segment, rc);
            said = 1;
        }
        if (cli_stop_requested)
            return -1;
        usleep(200000);
    }
    w->r.cursor = cursor;
    names_forget(&w->nm);
    print_note_epoch("reopened", "segment reopened", w->r.epoch, w->json);
    return 0;
}

int cli_cmd_watch(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"from-start", no_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct watch w;
    struct cli_follower f = {.ctx = &w,
                             .on_event = watch_event,
                             .on_missed = watch_missed,
                             .on_idle = watch_idle,
                             .on_ended = watch_ended,
                             .slice_ms = 1000,
                             .stoppable = 1};
    int from_start = 0, opt;

    memset(&w, 0, sizeof(w));
    optind = 0;
    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'j') {
            w.json = 1;
        } else if (opt == 'F') {
            from_start = 1;
        } else if (opt == 'h') {
            watch_usage(stdout);
            return CLI_EX_OK;
        } else {
            watch_usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    w.names = argv + optind;
    w.nnames = argc - optind;
    if (cli_open_segment(o->segment, &w.r) < 0)
        return CLI_EX_NOSEG;
    cli_catch_stop_signal(SIGINT);
    cli_catch_stop_signal(SIGTERM);
    procbus_seek_events(&w.r, from_start ? PROCBUS_SEEK_OLDEST : PROCBUS_SEEK_NOW);
    if (cli_warn_liveness(&w.r) == PROCBUS_SHUTDOWN && !from_start) {
        print_note("shutdown", "procbusd has shut down", w.json);
        procbus_close(&w.r);
        return CLI_EX_OK;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    f.r = &w.r;
    /* until interrupted or procbusd shut down (both a normal end); a segment truncated under
     * it is reopened */
    for (;;) {
        int rc = cli_guarded(&w.r, follow_fn, &f);
        if ((rc != -EFAULT && !w.truncated) || watch_reopen(&w, o->segment) < 0)
            break;
        w.truncated = 0;
    }
    free(w.nm.list);
    procbus_close(&w.r);
    return CLI_EX_OK;
}

/* ---- wait ---- */

static void wait_usage(FILE *f)
{
    fprintf(f,
            "usage: procbus wait NAME --state STATE [--timeout DURATION]\n"
            "Wait until program NAME is in STATE (being in it already counts).\n"
            "  --state STATE        STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL READY\n"
            "  --timeout DURATION   e.g. 30s, 500ms, 2m (default 30s; 0: just check)\n"
            "Exit codes: 0 reached, 5 timed out, 6 the program went FATAL (unless FATAL was\n"
            "asked), 4 no such program or no segment, 1 procbusd shut down meanwhile.\n");
}

struct waiting {
    struct procbus_reader r;
    const char *name;
    struct procbus_proc p; /* its record (refreshed when the ring was lapped) */
    int want;              /* the state waited for */
    int rc;                /* the exit code once decided, else -1 */
};

/* The exit code a state means for the wait, or -1: not there yet. */
static int verdict(const struct waiting *w, unsigned state)
{
    if (state == (unsigned)w->want)
        return CLI_EX_OK;
    return state == PROCBUS_STATE_FATAL ? CLI_EX_FATAL : -1;
}

static int wait_missed(void *ctx, uint64_t missed)
{
    struct waiting *w = ctx;

    (void)missed; /* lapped: judge from the snapshot */
    if (procbus_get_name(&w->r, w->name, &w->p) == 0)
        w->rc = verdict(w, w->p.state);
    return w->rc >= 0 ? CLI_FOLLOW_DONE : CLI_FOLLOW_MORE;
}

static int wait_event(void *ctx, const struct procbus_event *ev)
{
    struct waiting *w = ctx;

    if (ev->record_id != w->p.id || ev->kind != PROCBUS_EV_STATE)
        return CLI_FOLLOW_MORE;
    w->rc = verdict(w, ev->new_state);
    return w->rc >= 0 ? CLI_FOLLOW_DONE : CLI_FOLLOW_MORE;
}

static int wait_ended(void *ctx)
{
    struct waiting *w = ctx;

    cli_warn_liveness(&w->r);
    w->rc = CLI_EX_FAIL;
    return CLI_FOLLOW_DONE;
}

/* Parse wait's arguments into w and *timeout_ms. Returns -1 to go on, or the exit code to
 * return now (after --help, or a usage error it printed). */
static int wait_args(struct waiting *w, long long *timeout_ms, int argc, char **argv)
{
    static const struct option lo[] = {{"state", required_argument, NULL, 'S'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int opt;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (opt == 'S') {
            w->want = procbus_state_from_name(optarg);
            if (w->want <= 0) {
                fprintf(stderr,
                        "procbus wait: unknown state '%s' (STOPPED STARTING RUNNING BACKOFF "
                        "STOPPING EXITED FATAL READY)\n",
                        optarg);
                return CLI_EX_USAGE;
            }
        } else if (opt == 't') {
            *timeout_ms = cli_parse_duration_ms(optarg);
            if (*timeout_ms < 0) {
                fprintf(stderr, "procbus wait: bad duration '%s' (e.g. 30s, 500ms, 2m)\n", optarg);
                return CLI_EX_USAGE;
            }
        } else if (opt == 'h') {
            wait_usage(stdout);
            return CLI_EX_OK;
        } else {
            wait_usage(stderr);
            return CLI_EX_USAGE;
        }
    }
    if (optind != argc - 1 || w->want < 0) {
        fprintf(stderr,
                "procbus wait: give one NAME and --state STATE (see procbus wait --help)\n");
        return CLI_EX_USAGE;
    }
    w->name = cli_process_part(argv[optind]); /* NAME or supervisord's GROUP:NAME */
    return -1;
}

int cli_cmd_wait(const struct cli_opts *o, int argc, char **argv)
{
    struct waiting w = {.want = -1, .rc = -1};
    struct cli_follower f = {.r = &w.r,
                             .ctx = &w,
                             .on_event = wait_event,
                             .on_missed = wait_missed,
                             .on_ended = wait_ended,
                             .slice_ms = 500};
    long long timeout_ms = 30000;
    int rc = wait_args(&w, &timeout_ms, argc, argv);

    if (rc >= 0)
        return rc;
    if (cli_open_segment(o->segment, &w.r) < 0)
        return CLI_EX_NOSEG;
    procbus_seek_events(&w.r, PROCBUS_SEEK_NOW); /* before the snapshot: no transition is lost */
    rc = procbus_get_name(&w.r, w.name, &w.p);
    if (rc < 0) {
        if (rc == -ENOENT || rc == -ENAMETOOLONG)
            fprintf(stderr, "procbus wait: no program named '%s' (see procbus status)\n", w.name);
        else
            fprintf(stderr, "procbus wait: cannot read the segment: %s\n", strerror(-rc));
        procbus_close(&w.r);
        return rc == -ENOENT || rc == -ENAMETOOLONG ? CLI_EX_NOSEG : CLI_EX_FAIL;
    }
    f.deadline_ns = pb_now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
    w.rc = verdict(&w, w.p.state);
    if (w.rc < 0 && cli_warn_liveness(&w.r) != PROCBUS_ALIVE)
        w.rc = CLI_EX_FAIL;
    if (w.rc < 0 && cli_follow(&f) == CLI_FOLLOW_TIMEOUT)
        w.rc = CLI_EX_TIMEOUT;
    if (w.rc == CLI_EX_TIMEOUT || w.rc == CLI_EX_FATAL) {
        if (procbus_get_name(&w.r, w.name, &w.p) == 0) {
            char why[96];
            cli_fmt_exit(why, sizeof(why), &w.p);
            if (w.rc == CLI_EX_TIMEOUT)
                fprintf(stderr, "procbus wait: %s is still %s after %lld ms (not %s)\n", w.name,
                        procbus_state_name(w.p.state), timeout_ms,
                        procbus_state_name((unsigned)w.want));
            else
                fprintf(stderr, "procbus wait: %s went FATAL (%s)\n", w.name, why);
        }
    }
    procbus_close(&w.r);
    return w.rc;
}
