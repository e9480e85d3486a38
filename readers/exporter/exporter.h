/* exporter.h - procbus-exporter's snapshot reader and Prometheus text renderer. */
#ifndef PROCBUS_EXPORTER_H
#define PROCBUS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "procbus.h"

/*
 * Exporter state: one reader, a record buffer preallocated at start-up and
 * grown only when the table is bigger than it, and an output buffer grown the
 * same way. Used by one thread at a time (the HTTP server's polling thread).
 */
struct exp_state {
    const char *segment; /* -s argument; NULL: $PROCBUS_SEGMENT or "procbus" */
    struct procbus_reader r;
    int open;     /* 1 while r holds a mapping */
    int last_err; /* the last open/read error reported on stderr (0: none) */
    struct procbus_proc *recs;
    size_t recs_cap;
    uint32_t *desc; /* descendant count per record, recs_cap entries */
    char *out;      /* rendered exposition text */
    size_t out_cap, out_len;
};

/*
 * Allocate the buffers for `initial_records` records (0: 256) and try to open
 * the segment (a missing one is not an error: it is retried on every scrape).
 * Returns 0 or -ENOMEM.
 */
int exp_init(struct exp_state *s, const char *segment, size_t initial_records);

/* Free everything and unmap. */
void exp_fini(struct exp_state *s);

/*
 * Read one snapshot and render the whole exposition into s->out (s->out_len
 * bytes, NUL-terminated). System calls only when the segment is not open yet,
 * was superseded or removed (procbus_follow/procbus_open), or a buffer must
 * grow. Errors are reported on stderr once per change, and publisher_up is 0:
 * no segment, one that is not a segment or not trusted (procbus_open), one
 * that fails validation, one still being created, and one that shrank under
 * the scrape (SIGBUS, caught by a guard: segguard.h; it is mapped again on
 * the next scrape). Labels are made valid (pb_text_safe, PROM). Needs
 * pb_guard_install (main does it).
 * Returns 0, or -ENOMEM when a buffer could not grow (s->out is then unusable).
 */
int exp_render(struct exp_state *s);

#endif
