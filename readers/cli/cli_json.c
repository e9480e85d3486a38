/* cli_json.c - JSON objects for the procbus command (schema: docs/JSON.md), built with json-c. */
#define _GNU_SOURCE
#include "cli_json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli_fmt.h"
#include "cli_proc.h"
#include "textsafe.h"
#include "util.h"

static const char *exit_kind_name(uint8_t k)
{
    return k == PROCBUS_EXIT_CODE ? "code" : k == PROCBUS_EXIT_SIGNAL ? "signal" : "none";
}

static struct json_object *json_u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

/* A string from the segment (at most `max` bytes, NUL-terminated or not) as a JSON string:
 * valid UTF-8 always (pb_text_safe, JSON: stray bytes and C1 controls become U+FFFD; json-c
 * escapes the rest). */
static struct json_object *json_text(const char *s, size_t max)
{
    char buf[PB_TEXT_ROOM(PROCBUS_CMDLINE_LEN)];
    size_t n = pb_text_safe(buf, sizeof(buf), s, max, PB_TEXT_JSON);

    return json_object_new_string_len(buf, (int)(n < sizeof(buf) ? n : sizeof(buf) - 1));
}

/* ISO 8601 UTC with milliseconds, or null for 0. */
static struct json_object *json_time(uint64_t ns)
{
    char buf[40];
    time_t t = (time_t)(ns / PB_NS_PER_SEC);
    struct tm tm;

    if (ns == 0)
        return NULL;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03uZ",
             (unsigned)(ns / 1000000ull % 1000));
    return json_object_new_string(buf);
}

static void add_exit(struct json_object *o, uint8_t kind, int32_t code, int core)
{
    char text[96];

    cli_fmt_exit_ev(text, sizeof(text), kind, code, core);
    json_object_object_add(o, "exit_kind", json_object_new_string(exit_kind_name(kind)));
    json_object_object_add(o, "exit_code",
                           kind == PROCBUS_EXIT_CODE ? json_object_new_int(code) : NULL);
    if (kind == PROCBUS_EXIT_SIGNAL) {
        char sig[24];
        snprintf(sig, sizeof(sig), "SIG%s", sigabbrev_np(code) ? sigabbrev_np(code) : "?");
        json_object_object_add(o, "exit_signal", json_object_new_string(sig));
        json_object_object_add(o, "exit_signal_number", json_object_new_int(code));
    } else {
        json_object_object_add(o, "exit_signal", NULL);
        json_object_object_add(o, "exit_signal_number", NULL);
    }
    json_object_object_add(o, "core_dumped", json_object_new_boolean(core));
    json_object_object_add(o, "exit_text",
                           kind == PROCBUS_EXIT_NONE ? NULL : json_object_new_string(text));
}

struct json_object *cli_json_proc(const struct procbus_proc *p)
{
    struct json_object *o = json_object_new_object(), *argv = json_object_new_array();
    /* the table's rule (cli_live): an EXITED descendant is not running, whatever its flags */
    int running = cli_live(p) && p->start_realtime_ns != 0;
    uint64_t now = pb_now_ns(CLOCK_REALTIME);
    size_t i = 0, len = p->cmdline_len;

    json_object_object_add(o, "name", json_text(p->name, PROCBUS_NAME_LEN));
    json_object_object_add(o, "id", json_u64(p->id));
    json_object_object_add(o, "program_id", json_u64(p->program_id));
    json_object_object_add(o, "pid", json_object_new_int(p->pid));
    json_object_object_add(o, "ppid", json_object_new_int(p->ppid));
    json_object_object_add(o, "pgid", json_object_new_int(p->pgid));
    json_object_object_add(o, "ns_pid", json_object_new_int(p->ns_pid));
    json_object_object_add(o, "state", json_object_new_string(procbus_state_name(p->state)));
    json_object_object_add(o, "running", json_object_new_boolean(running));
    json_object_object_add(o, "state_since_ns", json_u64(p->state_since_ns));
    json_object_object_add(o, "state_since", json_time(p->state_since_ns));
    json_object_object_add(o, "start_realtime_ns", json_u64(p->start_realtime_ns));
    json_object_object_add(o, "started", json_time(p->start_realtime_ns));
    json_object_object_add(o, "start_boot_ns", json_u64(p->start_boot_ns));
    json_object_object_add(
        o, "uptime_ns",
        json_u64(running && now > p->start_realtime_ns ? now - p->start_realtime_ns : 0));
    json_object_object_add(o, "restarts", json_object_new_int64(p->restarts));
    json_object_object_add(o, "cpu_ns", json_u64(p->cpu_ns));
    json_object_object_add(o, "rss_bytes", json_u64(p->rss_bytes));
    add_exit(o, p->exit_kind, p->exit_code, (p->flags & PROCBUS_F_CORE_DUMPED) != 0);
    json_object_object_add(o, "comm", json_text(p->comm, PROCBUS_COMM_LEN));
    if (len > PROCBUS_CMDLINE_LEN)
        len = PROCBUS_CMDLINE_LEN;
    while (i < len) { /* NUL-separated arguments */
        size_t n = strnlen(p->cmdline + i, len - i);
        json_object_array_add(argv, json_text(p->cmdline + i, n));
        i += n + 1;
    }
    json_object_object_add(o, "cmdline", argv);
    json_object_object_add(o, "cmdline_truncated",
                           json_object_new_boolean((p->flags & PROCBUS_F_CMDLINE_TRUNCATED) != 0));
    json_object_object_add(o, "descendant",
                           json_object_new_boolean((p->flags & PROCBUS_F_DESCENDANT) != 0));
    json_object_object_add(o, "preexisting",
                           json_object_new_boolean((p->flags & PROCBUS_F_PREEXISTING) != 0));
    json_object_object_add(o, "adopted",
                           json_object_new_boolean((p->flags & PROCBUS_F_ADOPTED) != 0));
    json_object_object_add(o, "exit_unseen",
                           json_object_new_boolean((p->flags & PROCBUS_F_EXIT_UNKNOWN) != 0));
    json_object_object_add(o, "flags", json_object_new_int64(p->flags));
    return o;
}

static const char *event_kind_name(uint16_t k)
{
    switch (k) {
    case PROCBUS_EV_ADD:
        return "add";
    case PROCBUS_EV_STATE:
        return "state";
    case PROCBUS_EV_REMOVE:
        return "remove";
    case PROCBUS_EV_EXEC:
        return "exec";
    case PROCBUS_EV_EPOCH:
        return "epoch";
    default: /* a kind a newer publisher added: skipped, as text watch skips it */
        return NULL;
    }
}

struct json_object *cli_json_event(const struct procbus_event *ev, const char *name)
{
    struct json_object *o;

    if (event_kind_name(ev->kind) == NULL)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(event_kind_name(ev->kind)));
    json_object_object_add(o, "seq", json_u64(ev->seq));
    json_object_object_add(o, "time_ns", json_u64(ev->time_ns));
    json_object_object_add(o, "time", json_time(ev->time_ns));
    json_object_object_add(o, "name", json_text(name, strlen(name)));
    json_object_object_add(o, "record_id", json_u64(ev->record_id));
    json_object_object_add(o, "pid", json_object_new_int(ev->pid));
    json_object_object_add(o, "old_state",
                           json_object_new_string(procbus_state_name(ev->old_state)));
    json_object_object_add(o, "new_state",
                           json_object_new_string(procbus_state_name(ev->new_state)));
    add_exit(o, ev->exit_kind, ev->exit_code, (ev->flags & PROCBUS_F_CORE_DUMPED) != 0);
    json_object_object_add(o, "exit_unseen",
                           json_object_new_boolean((ev->flags & PROCBUS_F_EXIT_UNKNOWN) != 0));
    if (ev->kind == PROCBUS_EV_EXEC) /* the event's own name: the new image's comm */
        json_object_object_add(o, "comm", json_text(ev->name, PROCBUS_COMM_LEN));
    return o;
}

void cli_json_print(struct json_object *obj, int pretty)
{
    int flags =
        JSON_C_TO_STRING_NOSLASHESCAPE |
        (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

    fputs(json_object_to_json_string_ext(obj, flags), stdout);
    fputc('\n', stdout);
}
