/* cli_segment.h - opening procbusd's segment for a command, and reading it whole. */
#ifndef PROCBUS_CLI_SEGMENT_H
#define PROCBUS_CLI_SEGMENT_H

#include <stddef.h>

#include "procbus.h"

/* The segment `segment` (the -s option, may be NULL) names, as procbus_open resolves it:
 * NULL or "" means $PROCBUS_SEGMENT, and that unset or "" means "procbus". For messages. */
const char *cli_segment_name(const char *segment);

/*
 * procbus_open(r, segment), saying why on stderr when it fails (with a hint when there is no
 * such segment). Returns 0 or procbus_open's negative errno; r is then not open.
 */
int cli_open_segment(const char *segment, struct procbus_reader *r);

/* Say on stderr that the publisher is not alive (shut down, stale past PROCBUS_STALE_AFTER_NS,
 * or its segment replaced). Returns procbus_liveness(r, PROCBUS_STALE_AFTER_NS). */
int cli_warn_liveness(const struct procbus_reader *r);

/*
 * All records of one consistent snapshot, malloc'd into *out (the caller frees) and their
 * number into *n. Returns 0, or a negative errno (-ENOMEM, or procbus_list's) after printing
 * why on stderr; *out is then untouched.
 */
int cli_list_all(struct procbus_reader *r, struct procbus_proc **out, size_t *n);

/*
 * What a table command starts with: cli_open_segment, cli_warn_liveness, cli_list_all.
 * Returns 0 with r open and *out, *n set (the caller frees *out and closes r), or an exit code
 * after the message: CLI_EX_NOSEG (no segment) or CLI_EX_FAIL (unreadable table; r closed).
 */
int cli_open_table(const char *segment, struct procbus_reader *r, struct procbus_proc **out,
                   size_t *n);

#endif /* PROCBUS_CLI_SEGMENT_H */
