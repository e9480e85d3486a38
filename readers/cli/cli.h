/* cli.h - shared declarations of the procbus command's source files. */
#ifndef PROCBUS_CLI_H
#define PROCBUS_CLI_H

#include "procbus.h"

#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* Exit codes. */
#define EX_OK      0
#define EX_FAIL    1 /* a request failed */
#define EX_USAGE   2 /* bad command line */
#define EX_NOTRUN  3 /* status NAME: not RUNNING (as supervisorctl) */
#define EX_NOSEG   4 /* no segment / daemon not reachable / no such program */
#define EX_TIMEOUT 5 /* a wait timed out */
#define EX_FATAL   6 /* wait: the program went FATAL */

struct opts {
    const char *segment, *socket;
    int timeout_s;
    int no_wait;
    const struct pbd_config *cfg; /* NULL: no configuration given */
};

struct json_object;

/* procbus.c */
const char *state_name(unsigned s);
int state_by_name(const char *s); /* -1 if unknown */
int open_segment(const struct opts *o, struct procbus_reader *r);
int warn_liveness(const struct procbus_reader *r);
void fmt_duration(char *buf, size_t len, uint64_t ns);
void fmt_exit(char *buf, size_t len, const struct procbus_proc *p);
void fmt_exit_ev(char *buf, size_t len, uint8_t kind, int32_t code, int core);
void fmt_time(char *buf, size_t len, uint64_t realtime_ns, int with_ms);
uint64_t realtime_ns(void);
/* All records of one snapshot, malloc'd into *out; 0 or a negative errno (message printed). */
int list_all(struct procbus_reader *r, struct procbus_proc **out, size_t *n);

/* cli_read.c */
int cmd_ps(const struct opts *o, int argc, char **argv);
int cmd_get(const struct opts *o, int argc, char **argv);
int cmd_watch(const struct opts *o, int argc, char **argv);
int cmd_wait(const struct opts *o, int argc, char **argv);
int cmd_logs(const struct opts *o, int argc, char **argv);
/* "30s", "500ms", "2m", "1h", "10" (seconds) -> milliseconds; -1 if malformed. */
long long parse_duration_ms(const char *s);

/* cli_top.c */
/* A state with a live main process (a record keeps its last pid after it ends). */
/* A record's display name into buf: its name, or for a traced process (no name) its comm. */
const char *cli_label(char *buf, size_t len, const struct procbus_proc *p);

int cli_live(const struct procbus_proc *p);
/* 1234K / 56M / 78G. */
void cli_fmt_bytes(char *buf, size_t len, uint64_t b);
/* HH:MM:SS, or NdHHh past a day. */
void cli_fmt_short_duration(char *buf, size_t len, uint64_t ns);

/* Sort keys shared by ps and top: the larger value (or the oldest run) first, then by name. */
enum cli_sort {
    CLI_SORT_NAME,
    CLI_SORT_PID,
    CLI_SORT_CPU,
    CLI_SORT_RSS,
    CLI_SORT_RESTARTS,
    CLI_SORT_AGE
};
/* qsort-style order of two records by `key`; ties by name, then pid. */
int cli_proc_cmp(const struct procbus_proc *x, const struct procbus_proc *y, enum cli_sort key);

int cmd_top(const struct opts *o, int argc, char **argv);

/* cli_json.c: objects of the schema in docs/JSON.md (free with json_object_put). */
struct json_object *json_proc(const struct procbus_proc *p);
struct json_object *json_event(const struct procbus_event *ev, const char *name);
/* Print one object on one line (watch) or pretty (ps/get) to stdout. */
void json_print(struct json_object *obj, int pretty);

#endif /* PROCBUS_CLI_H */
