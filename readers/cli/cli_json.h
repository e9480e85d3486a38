/* cli_json.h - the procbus command's JSON output (schema: docs/JSON.md), built with json-c. */
#ifndef PROCBUS_CLI_JSON_H
#define PROCBUS_CLI_JSON_H

#include "procbus.h"

struct json_object;

/* A process object (ps --json, get --json), its strings valid UTF-8 (pb_text_safe); the caller
 * frees it with json_object_put. */
struct json_object *cli_json_proc(const struct procbus_proc *p);
/* An event object (watch --json) naming its record `name` (raw: made valid UTF-8 here); NULL
 * for an event kind this version does not know (skipped, as text watch skips it). Freed with
 * json_object_put. */
struct json_object *cli_json_event(const struct procbus_event *ev, const char *name);
/* Print one object to stdout and a newline: pretty (ps, get) or on one line (watch). */
void cli_json_print(struct json_object *obj, int pretty);

#endif /* PROCBUS_CLI_JSON_H */
