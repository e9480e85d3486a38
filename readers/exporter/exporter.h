/* exporter.h - procbus-exporter's snapshot reader and Prometheus text renderer. */
#ifndef PROCBUS_EXPORTER_H
#define PROCBUS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "procbus.h"
#include "textsafe.h"

/*
 * What a scrape keeps of one supervised program: the fields its series show,
 * read from the segment by a zero-copy walk (metrics.c), and its label made
 * valid (pb_text_safe, PROM) once per scrape.
 */
struct exp_prog {
    uint64_t id, start_ns, cpu_ns, rss;
    uint32_t restarts, desc; /* desc: descendant records that belong to it */
    int32_t exit_code;
    uint16_t state;
    uint8_t exit_kind;
    uint32_t lab_len;
    char name[PROCBUS_NAME_LEN];
    char lab[PB_TEXT_ROOM(PROCBUS_NAME_LEN)];
};

/* What one scrape read: the publisher's facts and the programs of one snapshot. */
struct exp_scrape {
    int up;        /* procbus_publisher_up */
    int have_info; /* the header facts below were read */
    int have_recs; /* the snapshot was read: the program families are rendered */
    struct procbus_info info;
    uint64_t now_ns; /* CLOCK_MONOTONIC when the scrape read the segment */
};

/*
 * Exporter state: one reader and buffers preallocated at start-up, grown only
 * when the table (its capacity) or the text outgrows them. Used by one thread
 * at a time (the HTTP server's polling thread).
 */
struct exp_state {
    const char *segment; /* -s argument; NULL: $PROCBUS_SEGMENT or "procbus" */
    struct procbus_reader r;
    int open;     /* 1 while r holds a mapping */
    int last_err; /* the last open/read error reported on stderr (0: none) */
    struct exp_prog *progs;
    size_t nprogs, progs_cap;
    uint64_t *desc_of; /* program_id of each descendant record of the snapshot */
    size_t ndesc;
    uint32_t *order; /* scratch: program indexes sorted by id */
    char *out;       /* rendered exposition text */
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

/*
 * Render the metric families (families.c: the one table of them) for what a
 * scrape read into s->out. Returns 0, or -ENOMEM when the buffer could not grow.
 */
int exp_render_families(struct exp_state *s, const struct exp_scrape *sc);

/*
 * The metric family table, one line per family: "NAME<TAB>TYPE<TAB>LABELS<TAB>HELP" (LABELS:
 * comma-separated, "-" for none), in the order the exposition has them. What
 * `procbus-exporter --list-metrics` prints and the docs check (test_exporter_doc) compares with
 * docs/EXPORTER.md.
 */
void exp_list_metrics(FILE *f);

#endif
