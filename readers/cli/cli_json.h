/* cli_json.h - the procbus command's JSON output (schema: docs/JSON.md), built with json-c. */
#ifndef PROCBUS_CLI_JSON_H
#define PROCBUS_CLI_JSON_H

#include "procbus.h"

struct json_object;

/* A process object (ps --json, get --json); the caller frees it with json_object_put. */
struct json_object *cli_json_proc(const struct procbus_proc *p);
/* An event object (watch --json) naming its record `name`; freed with json_object_put. */
struct json_object *cli_json_event(const struct procbus_event *ev, const char *name);
/* Print one object to stdout and a newline: pretty (ps, get) or on one line (watch). */
void cli_json_print(struct json_object *obj, int pretty);

#endif /* PROCBUS_CLI_JSON_H */
