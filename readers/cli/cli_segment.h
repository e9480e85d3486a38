/* cli_segment.h - opening procbusd's segment for a command, and reading it whole, guarded. */
#ifndef PROCBUS_CLI_SEGMENT_H
#define PROCBUS_CLI_SEGMENT_H

#include <stddef.h>

#include "procbus.h"

/* The segment `segment` (the -s option, may be NULL) names, as procbus_open resolves it:
 * NULL or "" means $PROCBUS_SEGMENT, and that unset or "" means "procbus". For messages. */
const char *cli_segment_name(const char *segment);

/*
 * procbus_open(r, segment), saying why on stderr when it fails, in words a person can act on
 * (procbus_strerror, plus the file's type or owner when that is the reason, and a hint when
 * there is no such segment). Never blocks: procbus_open opens with O_NONBLOCK. Returns 0 or
 * procbus_open's negative errno; r is then not open.
 */
int cli_open_segment(const char *segment, struct procbus_reader *r);

/* The same without a message (for retries); the message of an error is cli_say_open_error's. */
void cli_say_open_error(const char *segment, int err);

/* Say on stderr that the publisher is not alive (dead: its segment's lock is free; shut down;
 * stale past procbus_stale_after_ns; or its segment replaced). Returns pb_publisher_check(r)
 * (liveprobe.h): PROCBUS_ALIVE .. PROCBUS_GONE or PB_PUBLISHER_DEAD. */
int cli_warn_liveness(const struct procbus_reader *r);

/*
 * Run fn(r, arg) with r's mapping guarded (segguard.h): if the segment file shrinks under it
 * (SIGBUS: its writer truncated it), the run is abandoned and -EFAULT returned; r must then be
 * closed (and reopened). Otherwise fn's result. Whatever fn wrote into memory of its own is
 * unspecified after -EFAULT. For the tools that recover (watch, top); main's guard around every
 * command turns any other such fault into a message and exit 1. Needs pb_guard_install (main).
 */
int cli_guarded(struct procbus_reader *r, int (*fn)(struct procbus_reader *r, void *arg),
                void *arg);

/* The message for -EFAULT from cli_guarded: the segment shrank while being read. */
#define CLI_TRUNCATED_MSG "the segment shrank while being read (truncated by its writer: SIGBUS)"

/*
 * All records of one consistent snapshot, malloc'd into *out (the caller frees) and their
 * number into *n; procbus_read_generation(r) then says which snapshot. Returns 0, or a negative
 * errno (-ENOMEM, or procbus_list's) after printing why on stderr; *out is then untouched.
 */
int cli_list_all(struct procbus_reader *r, struct procbus_proc **out, size_t *n);

/*
 * What a table command starts with: cli_open_segment, cli_warn_liveness, cli_list_all.
 * Returns 0 with r open and *out, *n set (the caller frees *out and closes r), or an exit code
 * after the message: CLI_EX_NOSEG (no segment) or CLI_EX_FAIL (unreadable table; r closed).
 */
int cli_open_table(const char *segment, struct procbus_reader *r, struct procbus_proc **out,
                   size_t *n);

/*
 * The supervised programs' records of one consistent snapshot (not the traced processes:
 * descendants, observed processes), malloc'd into *out (the caller frees), their number into *n.
 * One zero-copy walk (procbus_section.h) copies only those records: a table of thousands of
 * traced processes costs a pointer walk, not a copy of each. Returns 0, or a negative errno
 * (-ENOMEM, or the section's) after printing why on stderr; *out is then untouched.
 */
int cli_list_programs(struct procbus_reader *r, struct procbus_proc **out, size_t *n);

/* cli_open_table for the programs alone (cli_list_programs): what status starts with. */
int cli_open_programs(const char *segment, struct procbus_reader *r, struct procbus_proc **out,
                      size_t *n);

#endif /* PROCBUS_CLI_SEGMENT_H */
