/* metrics.c - read one procbus snapshot and render it in the Prometheus text format 0.0.4. */
#define _GNU_SOURCE
#include "exporter.h"

#include "segguard.h"
#include "textsafe.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An appender over s->out that remembers whether it ran out of room. */
struct sink {
    char *buf;
    size_t cap, len;
    int full;
};

static void put(struct sink *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sink *k, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (k->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(k->buf + k->len, k->cap - k->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= k->cap - k->len) {
        k->full = 1;
        return;
    }
    k->len += (size_t)n;
}

static void header(struct sink *k, const char *name, const char *type, const char *help)
{
    put(k, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A program is a supervised record: not a descendant of one, nor an observed process (no name). */
static int is_program(const struct procbus_proc *p)
{
    return (p->flags & PROCBUS_F_DESCENDANT) == 0 && p->name[0] != '\0';
}

static void render_programs(struct exp_state *s, struct sink *k, size_t n)
{
    /* names made label-safe (textsafe.h, PROM): up to 3 bytes per input byte, plus NUL */
    char lab[PB_TEXT_ROOM(PROCBUS_NAME_LEN)];
    size_t i;
    unsigned st;

#define EACH_PROGRAM                   \
    for (i = 0; i < n; i++)            \
        if (is_program(&s->recs[i]) && \
            (pb_text_safe(lab, sizeof(lab), s->recs[i].name, PROCBUS_NAME_LEN, PB_TEXT_PROM), 1))

    header(k, "procbus_program_state", "gauge",
           "Current state of a supervised program: 1 for its state, 0 for the others.");
    EACH_PROGRAM
    {
        for (st = 0; st < PROCBUS_STATE_COUNT_; st++)
            put(k, "procbus_program_state{program=\"%s\",state=\"%s\"} %d\n", lab,
                procbus_state_name(st), s->recs[i].state == st);
    }
    header(k, "procbus_program_restarts_total", "counter",
           "Times the supervisor restarted the program.");
    EACH_PROGRAM
    put(k, "procbus_program_restarts_total{program=\"%s\"} %" PRIu32 "\n", lab,
        s->recs[i].restarts);
    header(k, "procbus_program_last_exit_code", "gauge",
           "Exit status code of the program's last run (only when it exited normally).");
    EACH_PROGRAM
    if (s->recs[i].exit_kind == PROCBUS_EXIT_CODE)
        put(k, "procbus_program_last_exit_code{program=\"%s\"} %" PRId32 "\n", lab,
            s->recs[i].exit_code);
    header(k, "procbus_program_last_exit_signal", "gauge",
           "Signal number that killed the program's last run (only when a signal ended it).");
    EACH_PROGRAM
    if (s->recs[i].exit_kind == PROCBUS_EXIT_SIGNAL)
        put(k, "procbus_program_last_exit_signal{program=\"%s\"} %" PRId32 "\n", lab,
            s->recs[i].exit_code);
    header(k, "procbus_program_start_time_seconds", "gauge",
           "Start of the program's current or last run, seconds since the Unix epoch.");
    EACH_PROGRAM
    if (s->recs[i].start_realtime_ns != 0)
        put(k, "procbus_program_start_time_seconds{program=\"%s\"} %" PRIu64 ".%09" PRIu64 "\n",
            lab, s->recs[i].start_realtime_ns / 1000000000u,
            s->recs[i].start_realtime_ns % 1000000000u);
    header(k, "procbus_program_cpu_seconds_total", "counter",
           "User+system CPU time of the program's process tree, seconds.");
    EACH_PROGRAM
    put(k, "procbus_program_cpu_seconds_total{program=\"%s\"} %" PRIu64 ".%09" PRIu64 "\n", lab,
        s->recs[i].cpu_ns / 1000000000u, s->recs[i].cpu_ns % 1000000000u);
    header(k, "procbus_program_resident_memory_bytes", "gauge",
           "Resident memory of the program's process tree, bytes.");
    EACH_PROGRAM
    put(k, "procbus_program_resident_memory_bytes{program=\"%s\"} %" PRIu64 "\n", lab,
        s->recs[i].rss_bytes);
    header(k, "procbus_program_descendants", "gauge",
           "Descendant process records that belong to the program.");
    EACH_PROGRAM
    put(k, "procbus_program_descendants{program=\"%s\"} %" PRIu32 "\n", lab, s->desc[i]);
#undef EACH_PROGRAM
}

/* Descendant counts: for each descendant record, find its program (O(descendants x n)). */
static void count_descendants(struct exp_state *s, size_t n)
{
    size_t i, j;

    memset(s->desc, 0, n * sizeof(*s->desc));
    for (i = 0; i < n; i++) {
        if (is_program(&s->recs[i]) || s->recs[i].program_id == 0)
            continue;
        for (j = 0; j < n; j++)
            if (is_program(&s->recs[j]) && s->recs[j].id == s->recs[i].program_id) {
                s->desc[j]++;
                break;
            }
    }
}

static void report(struct exp_state *s, int err, const char *what)
{
    if (err == s->last_err)
        return;
    s->last_err = err;
    if (err == 0)
        fprintf(stderr, "procbus-exporter: segment %s readable again\n",
                s->segment ? s->segment : "(default)");
    else
        fprintf(stderr, "procbus-exporter: %s %s: %s (publisher_up 0; retrying on each scrape)\n",
                what, s->segment ? s->segment : "(default)",
                err == EFAULT ? "it shrank while being read (truncated by its writer: SIGBUS)"
                              : procbus_strerror(err));
}

/* Grow the record buffers to hold `need` records. 0 or -ENOMEM. */
static int grow_recs(struct exp_state *s, size_t need)
{
    size_t cap = s->recs_cap;
    struct procbus_proc *r;
    uint32_t *d;

    while (cap < need)
        cap *= 2;
    r = realloc(s->recs, cap * sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    s->recs = r;
    d = realloc(s->desc, cap * sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    s->desc = d;
    s->recs_cap = cap;
    return 0;
}

int exp_init(struct exp_state *s, const char *segment, size_t initial_records)
{
    struct pb_guard g;

    memset(s, 0, sizeof(*s));
    s->segment = segment;
    s->recs_cap = initial_records ? initial_records : 256;
    s->recs = calloc(s->recs_cap, sizeof(*s->recs));
    s->desc = calloc(s->recs_cap, sizeof(*s->desc));
    s->out_cap = 64 * 1024;
    s->out = malloc(s->out_cap);
    if (s->recs == NULL || s->desc == NULL || s->out == NULL) {
        exp_fini(s);
        return -ENOMEM;
    }
    pb_guard_arm(&g, NULL, 0); /* a file shrinking while it is validated: not open */
    if (sigsetjmp(g.env, 1) != 0) {
        procbus_close(&s->r);
        s->open = 0;
    } else {
        int rc = procbus_open(&s->r, segment);
        s->open = rc == 0;
        s->last_err = -rc; /* main says it; the first scrape does not repeat it */
        pb_guard_disarm(&g);
    }
    return 0;
}

void exp_fini(struct exp_state *s)
{
    if (s->open)
        procbus_close(&s->r);
    s->open = 0;
    free(s->recs);
    free(s->desc);
    free(s->out);
    s->recs = NULL;
    s->desc = NULL;
    s->out = NULL;
}

/* Make sure a live segment is mapped; the liveness verdict, or a negative errno. */
static int attach(struct exp_state *s)
{
    int rc, l;

    if (!s->open) {
        rc = procbus_open(&s->r, s->segment);
        if (rc < 0) {
            report(s, -rc, "cannot open segment");
            return rc;
        }
        s->open = 1;
    }
    l = procbus_liveness(&s->r, procbus_stale_after_ns(&s->r));
    if (l == PROCBUS_GONE) { /* superseded or removed: map the new one if there is one */
        rc = procbus_follow(&s->r);
        if (rc < 0) {
            report(s, -rc, "segment gone, cannot reopen");
            return l;
        }
        l = procbus_liveness(&s->r, procbus_stale_after_ns(&s->r));
    }
    return l;
}

/* What one scrape read from the segment. */
struct scrape {
    int l, rc, have_info;
    size_t n;
    struct procbus_info info;
};

/* Every read of the segment a scrape makes (guarded by exp_render). 0 or -ENOMEM. */
static int read_segment(struct exp_state *s, struct scrape *sc)
{
    sc->l = attach(s);
    if (sc->l > 0) {
        while ((sc->rc = procbus_list(&s->r, s->recs, s->recs_cap, &sc->n)) == -ENOSPC)
            if (grow_recs(s, sc->n) < 0)
                return -ENOMEM;
        if (sc->rc < 0) {
            report(s, -sc->rc, "cannot read segment");
            sc->n = 0;
        } else if (sc->l == PROCBUS_ALIVE) {
            report(s, 0, NULL);
        }
    }
    if (sc->rc == 0)
        count_descendants(s, sc->n);
    sc->have_info = s->open && procbus_info(&s->r, &sc->info) == 0;
    return 0;
}

int exp_render(struct exp_state *s)
{
    struct scrape sc = {.rc = -ENOENT};
    const struct procbus_info *info = &sc.info;
    struct pb_guard g;
    struct timespec ts;
    struct sink k;
    size_t n;
    int rc, up;
    uint64_t now;

    /* A segment shrunk under the scrape (its writer truncated it) faults with SIGBUS: the
     * scrape then serves publisher_up 0 and the next one maps the segment again. */
    pb_guard_arm(&g, NULL, 0);
    if (sigsetjmp(g.env, 1) != 0) {
        report(s, EFAULT, "cannot read segment");
        procbus_close(&s->r);
        s->open = 0;
        memset(&sc, 0, sizeof(sc));
        sc.rc = -EFAULT;
    } else {
        rc = read_segment(s, &sc);
        pb_guard_disarm(&g);
        if (rc < 0)
            return rc;
    }
    n = sc.n;
    rc = sc.rc;
    up = rc == 0 && sc.l == PROCBUS_ALIVE;
    for (;;) {
        k.buf = s->out;
        k.cap = s->out_cap;
        k.len = 0;
        k.full = 0;
        header(&k, "procbus_publisher_up", "gauge",
               "1 when the segment is readable and the publisher's heartbeat is fresh.");
        put(&k, "procbus_publisher_up %d\n", up);
        if (sc.have_info) {
            clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
            now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            if (info->heartbeat_ns != PROCBUS_HB_GONE &&
                info->heartbeat_ns != PROCBUS_HB_SHUTDOWN) {
                uint64_t age = now > info->heartbeat_ns ? now - info->heartbeat_ns : 0;
                header(&k, "procbus_publisher_heartbeat_age_seconds", "gauge",
                       "Seconds since the publisher's last heartbeat.");
                put(&k, "procbus_publisher_heartbeat_age_seconds %" PRIu64 ".%09" PRIu64 "\n",
                    age / 1000000000u, age % 1000000000u);
            }
            header(&k, "procbus_publisher_epoch", "gauge",
                   "Segment epoch: 1 for a fresh name, +1 on each publisher takeover.");
            put(&k, "procbus_publisher_epoch %" PRIu64 "\n", info->epoch);
            header(&k, "procbus_events_lost_total", "counter",
                   "State transitions the publisher lost before the event ring.");
            put(&k, "procbus_events_lost_total %" PRIu64 "\n", info->events_dropped);
            header(&k, "procbus_tracer_drops_total", "counter",
                   "Kernel-side tracer reserve failures.");
            put(&k, "procbus_tracer_drops_total %" PRIu64 "\n", info->tracer_drops);
            header(&k, "procbus_records_dropped_total", "counter",
                   "Record upserts refused because the process table was full.");
            put(&k, "procbus_records_dropped_total %" PRIu64 "\n", info->records_dropped);
        }
        if (rc == 0)
            render_programs(s, &k, n);
        if (!k.full)
            break;
        /* grow and render the same snapshot again */
        {
            char *nb = realloc(s->out, s->out_cap * 2);
            if (nb == NULL)
                return -ENOMEM;
            s->out = nb;
            s->out_cap *= 2;
        }
    }
    s->out_len = k.len;
    return 0;
}
