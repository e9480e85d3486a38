/* families.c - the exporter's metric families: one table drives the text, HELP/TYPE and the docs.
 */
#define _GNU_SOURCE
#include "exporter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every metric family is one row of `families` below: name, type, labels, help
 * text, and the function that writes its series. The table drives the
 * exposition (in its order, HELP and TYPE lines from the row), `procbus-exporter
 * --list-metrics`, and through it the docs check (tests/unit/test_exporter_doc.c:
 * docs/EXPORTER.md lists exactly these families, with these types and labels).
 * Adding a metric is one row and one series function.
 *
 * The text is written with the appenders below (no printf: a scrape of 1,000
 * programs is about 17,000 lines), into s->out, grown and written again when it
 * does not fit.
 */

/* ---- appending to the output buffer ---- */

struct out {
    char *buf;
    size_t cap, len;
    int full; /* ran out of room: grow and render again */
};

static inline void out_mem(struct out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define OUT_LIT(o, lit) out_mem((o), (lit), sizeof(lit) - 1)

static inline void out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static inline void out_u64(struct out *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);

    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    out_mem(o, tmp + i, sizeof(tmp) - i);
}

static inline void out_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        OUT_LIT(o, "-");
        out_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        out_u64(o, (uint64_t)v);
    }
}

/* ns as seconds with nine decimals: "12.000000345" */
static inline void out_secs(struct out *o, uint64_t ns)
{
    char frac[10];
    uint64_t f = ns % 1000000000u;
    int i;

    out_u64(o, ns / 1000000000u);
    frac[0] = '.';
    for (i = 9; i >= 1; i--, f /= 10)
        frac[i] = (char)('0' + f % 10);
    out_mem(o, frac, sizeof(frac));
}

/* `name{program="LABEL"` - the start of a program's series (the caller closes the braces) */
static inline void out_prog(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    out_mem(o, name, nlen);
    OUT_LIT(o, "{program=\"");
    out_mem(o, p->lab, p->lab_len);
    OUT_LIT(o, "\"");
}

/* ---- the families' series ---- */

/* The series of one program family for program p (name: the family's, nlen its length). */
typedef void (*prog_fn)(struct out *o, const char *name, size_t nlen, const struct exp_prog *p);
/* The series of one publisher family; returns 0 to leave the family out of this scrape. */
typedef int (*pub_fn)(struct out *o, const char *name, size_t nlen, const struct exp_scrape *sc);

static void s_state(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    unsigned st;

    for (st = 0; st < PROCBUS_STATE_COUNT_; st++) {
        out_prog(o, name, nlen, p);
        OUT_LIT(o, ",state=\"");
        out_str(o, procbus_state_name(st));
        if (p->state == st)
            OUT_LIT(o, "\"} 1\n");
        else
            OUT_LIT(o, "\"} 0\n");
    }
}

static void s_restarts(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_u64(o, p->restarts);
    OUT_LIT(o, "\n");
}

static void s_exit_code(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    if (p->exit_kind != PROCBUS_EXIT_CODE)
        return;
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_i64(o, p->exit_code);
    OUT_LIT(o, "\n");
}

static void s_exit_signal(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    if (p->exit_kind != PROCBUS_EXIT_SIGNAL)
        return;
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_i64(o, p->exit_code);
    OUT_LIT(o, "\n");
}

static void s_start(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    if (p->start_ns == 0)
        return;
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_secs(o, p->start_ns);
    OUT_LIT(o, "\n");
}

static void s_cpu(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_secs(o, p->cpu_ns);
    OUT_LIT(o, "\n");
}

static void s_rss(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_u64(o, p->rss);
    OUT_LIT(o, "\n");
}

static void s_desc(struct out *o, const char *name, size_t nlen, const struct exp_prog *p)
{
    out_prog(o, name, nlen, p);
    OUT_LIT(o, "} ");
    out_u64(o, p->desc);
    OUT_LIT(o, "\n");
}

/* A publisher family's one series: `name value`. */
static void pub_u64(struct out *o, const char *name, size_t nlen, uint64_t v)
{
    out_mem(o, name, nlen);
    OUT_LIT(o, " ");
    out_u64(o, v);
    OUT_LIT(o, "\n");
}

static int p_up(struct out *o, const char *name, size_t nlen, const struct exp_scrape *sc)
{
    pub_u64(o, name, nlen, sc->up != 0);
    return 1;
}

/* absent after a clean shutdown and once the segment is gone: there is no heartbeat to age */
static int p_hb_age(struct out *o, const char *name, size_t nlen, const struct exp_scrape *sc)
{
    uint64_t hb = sc->info.heartbeat_ns;

    if (!sc->have_info || hb == PROCBUS_HB_GONE || hb == PROCBUS_HB_SHUTDOWN)
        return 0;
    out_mem(o, name, nlen);
    OUT_LIT(o, " ");
    out_secs(o, sc->now_ns > hb ? sc->now_ns - hb : 0);
    OUT_LIT(o, "\n");
    return 1;
}

#define PUB_FIELD(fn, field)                                                                 \
    static int fn(struct out *o, const char *name, size_t nlen, const struct exp_scrape *sc) \
    {                                                                                        \
        if (!sc->have_info)                                                                  \
            return 0;                                                                        \
        pub_u64(o, name, nlen, sc->info.field);                                              \
        return 1;                                                                            \
    }
PUB_FIELD(p_epoch, epoch)
PUB_FIELD(p_events_lost, events_dropped)
PUB_FIELD(p_tracer_drops, tracer_drops)
PUB_FIELD(p_records_dropped, records_dropped)
PUB_FIELD(p_log_bytes_lost, log_bytes_lost)
#undef PUB_FIELD

/* ---- the table ---- */

struct family {
    const char *name, *type, *labels, *help;
    pub_fn pub;   /* a publisher family: one series, or none this scrape */
    prog_fn prog; /* a program family: series per program */
};

static const struct family families[] = {
    {"procbus_publisher_up", "gauge", "-",
     "1 when the segment is readable, the publisher's heartbeat is fresh and its process holds "
     "the segment's lock.",
     p_up, NULL},
    {"procbus_publisher_heartbeat_age_seconds", "gauge", "-",
     "Seconds since the publisher's last heartbeat.", p_hb_age, NULL},
    {"procbus_publisher_epoch", "gauge", "-",
     "Segment epoch: 1 for a fresh name, +1 on each publisher takeover.", p_epoch, NULL},
    {"procbus_events_lost_total", "counter", "-",
     "State transitions the publisher lost before the event ring.", p_events_lost, NULL},
    {"procbus_tracer_drops_total", "counter", "-", "Kernel-side tracer reserve failures.",
     p_tracer_drops, NULL},
    {"procbus_records_dropped_total", "counter", "-",
     "Record upserts refused because the process table was full.", p_records_dropped, NULL},
    {"procbus_log_bytes_lost_total", "counter", "-",
     "Program output the publisher could not write to its log files (a full disk, a lost file).",
     p_log_bytes_lost, NULL},
    {"procbus_program_state", "gauge", "program,state",
     "Current state of a supervised program: 1 for its state, 0 for the others.", NULL, s_state},
    {"procbus_program_restarts_total", "counter", "program",
     "Times the supervisor restarted the program.", NULL, s_restarts},
    {"procbus_program_last_exit_code", "gauge", "program",
     "Exit status code of the program's last run (only when it exited normally).", NULL,
     s_exit_code},
    {"procbus_program_last_exit_signal", "gauge", "program",
     "Signal number that killed the program's last run (only when a signal ended it).", NULL,
     s_exit_signal},
    {"procbus_program_start_time_seconds", "gauge", "program",
     "Start of the program's current or last run, seconds since the Unix epoch.", NULL, s_start},
    {"procbus_program_cpu_seconds_total", "counter", "program",
     "User+system CPU time of the program's process tree, seconds.", NULL, s_cpu},
    {"procbus_program_resident_memory_bytes", "gauge", "program",
     "Resident memory of the program's process tree, bytes.", NULL, s_rss},
    {"procbus_program_descendants", "gauge", "program",
     "Descendant process records that belong to the program.", NULL, s_desc},
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

static void header(struct out *o, const struct family *f)
{
    OUT_LIT(o, "# HELP ");
    out_str(o, f->name);
    OUT_LIT(o, " ");
    out_str(o, f->help);
    OUT_LIT(o, "\n# TYPE ");
    out_str(o, f->name);
    OUT_LIT(o, " ");
    out_str(o, f->type);
    OUT_LIT(o, "\n");
}

/* Every family, in the table's order, into o. A publisher family whose function leaves it out
 * this scrape loses its HELP/TYPE lines too. */
static void render(struct out *o, const struct exp_state *s, const struct exp_scrape *sc)
{
    size_t f, i;

    for (f = 0; f < NFAMILIES && !o->full; f++) {
        const struct family *fa = &families[f];
        size_t nlen = strlen(fa->name), mark = o->len;

        if (fa->pub != NULL) {
            header(o, fa);
            if (!fa->pub(o, fa->name, nlen, sc))
                o->len = mark;
        } else if (sc->have_recs) {
            header(o, fa);
            for (i = 0; i < s->nprogs && !o->full; i++)
                fa->prog(o, fa->name, nlen, &s->progs[i]);
        }
    }
}

int exp_render_families(struct exp_state *s, const struct exp_scrape *sc)
{
    /* about what a program's series need, so that one pass usually fits */
    size_t want = 4096 + s->nprogs * (1100 + 17 * (size_t)PB_TEXT_ROOM(PROCBUS_NAME_LEN) / 4);

    for (;;) {
        struct out o;

        if (s->out_cap < want) {
            char *nb = realloc(s->out, want);
            if (nb == NULL)
                return -ENOMEM;
            s->out = nb;
            s->out_cap = want;
        }
        o.buf = s->out;
        o.cap = s->out_cap - 1; /* room for the NUL */
        o.len = 0;
        o.full = 0;
        render(&o, s, sc);
        if (!o.full) {
            s->out[o.len] = '\0';
            s->out_len = o.len;
            return 0;
        }
        want = s->out_cap * 2; /* grow and render the same snapshot again */
    }
}

void exp_list_metrics(FILE *f)
{
    size_t i;

    for (i = 0; i < NFAMILIES; i++)
        fprintf(f, "%s\t%s\t%s\t%s\n", families[i].name, families[i].type, families[i].labels,
                families[i].help);
}
