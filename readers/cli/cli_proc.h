/* cli_proc.h - facts about one record, their order, and the process tree (ps and top). */
#ifndef PROCBUS_CLI_PROC_H
#define PROCBUS_CLI_PROC_H

#include <stddef.h>

#include "procbus.h"

/* Room for a display label (cli_label): a name whose every byte needs an escape. */
#define CLI_LABEL_MAX (4 * PROCBUS_NAME_LEN + 1)

/* A record's display name into buf and returns buf: its name, or for a traced process (it has
 * none) its comm; made safe for a terminal (pb_text_safe, textsafe.h: control characters and
 * stray bytes escaped). buf should hold CLI_LABEL_MAX bytes. */
const char *cli_label(char *buf, size_t len, const struct procbus_proc *p);

/* A string from the segment (at most `max` bytes, NUL-terminated or not) made safe for a
 * terminal into buf, which it returns (pb_text_safe, TERMINAL). */
const char *cli_safe(char *buf, size_t len, const char *s, size_t max);

/* 1 when the record is in a state with a live main process (a record keeps its last pid after
 * the process ended), else 0. */
int cli_live(const struct procbus_proc *p);

/* Sort keys shared by ps and top: the larger value (or the oldest run) first, then by name. */
enum cli_sort {
    CLI_SORT_NAME,
    CLI_SORT_PID,
    CLI_SORT_CPU,
    CLI_SORT_RSS,
    CLI_SORT_RESTARTS,
    CLI_SORT_AGE
};

/* qsort-style order of two records by `key` (<0: x first); ties by name, then pid. */
int cli_proc_cmp(const struct procbus_proc *x, const struct procbus_proc *y, enum cli_sort key);

/* One line of a process tree: recs[idx] of the cli_tree_build input, indented `depth` levels. */
struct cli_tree_row {
    size_t idx;
    int depth;
};

/*
 * The process tree of ps --tree and top's tree view. `recs` holds n records in the order to
 * show them. Each record that is not a descendant becomes a row (depth 0), followed, when
 * `with_kids`, by the descendants its program has (program_id == its id) in their order in recs
 * (depth 1); without with_kids descendants are left out. With with_kids, a descendant whose
 * program is not in recs (removed by a reload, say, while its processes live on) is not lost:
 * it gets a row of its own at depth 0 after the others. With `match` (may be NULL: everything
 * matches), a program is shown only if it matches, and a descendant if it or its program
 * matches. Writes the rows to out (room for n) and returns how many; never fails. O(n^2) with
 * with_kids.
 */
size_t cli_tree_build(const struct procbus_proc *const *recs, size_t n, int with_kids,
                      int (*match)(const struct procbus_proc *p, const void *ctx), const void *ctx,
                      struct cli_tree_row *out);

#endif /* PROCBUS_CLI_PROC_H */
