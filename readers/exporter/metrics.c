/* metrics.c - the exporter's scrape: one zero-copy walk of a procbus snapshot, then the text. */
#define _GNU_SOURCE
#include "exporter.h"

#include "liveprobe.h"
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

/* Room for `need` records of each kind (the table's capacity bounds a snapshot). 0 or -ENOMEM. */
static int grow(struct exp_state *s, size_t need)
{
    size_t cap = s->progs_cap ? s->progs_cap : 256;
    struct exp_prog *p;
    uint64_t *d;
    uint32_t *o;

    if (need <= s->progs_cap)
        return 0;
    while (cap < need)
        cap *= 2;
    p = realloc(s->progs, cap * sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    s->progs = p;
    d = realloc(s->desc_of, cap * sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    s->desc_of = d;
    o = realloc(s->order, cap * sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    s->order = o;
    s->progs_cap = cap;
    return 0;
}

int exp_init(struct exp_state *s, const char *segment, size_t initial_records)
{
    struct pb_guard g;

    memset(s, 0, sizeof(*s));
    s->segment = segment;
    s->out_cap = 64 * 1024;
    s->out = malloc(s->out_cap);
    if (s->out == NULL || grow(s, initial_records ? initial_records : 256) < 0) {
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
    free(s->progs);
    free(s->desc_of);
    free(s->order);
    free(s->out);
    s->progs = NULL;
    s->desc_of = NULL;
    s->order = NULL;
    s->out = NULL;
    s->progs_cap = 0;
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

/*
 * One zero-copy walk of the current snapshot (procbus_section.h): a program's
 * fields are copied into s->progs, a descendant's program_id into s->desc_of,
 * nothing else. Inside the section every value is untrusted: they are only
 * stored (the arrays hold the table's capacity, so no count can overrun them),
 * and used once procbus_section_retry says the walk was one snapshot.
 * Returns 0, or the section's error.
 */
static int walk(struct exp_state *s)
{
    struct procbus_section sec;
    const struct procbus_proc *p;
    uint32_t n, i;
    size_t np, nd;
    int rc;

    procbus_section_begin(&s->r, &sec);
    do {
        n = procbus_section_count(&sec);
        np = nd = 0;
        for (i = 0; i < n && (p = procbus_section_at(&sec, i)) != NULL; i++) {
            if (procbus_rec_is_program(p)) {
                struct exp_prog *e = &s->progs[np++];
                e->id = PROCBUS_FIELD(p, id);
                e->start_ns = PROCBUS_FIELD(p, start_realtime_ns);
                e->cpu_ns = PROCBUS_FIELD(p, cpu_ns);
                e->rss = PROCBUS_FIELD(p, rss_bytes);
                e->restarts = PROCBUS_FIELD(p, restarts);
                e->exit_code = PROCBUS_FIELD(p, exit_code);
                e->state = PROCBUS_FIELD(p, state);
                e->exit_kind = PROCBUS_FIELD(p, exit_kind);
                procbus_rec_name(p, e->name, sizeof(e->name));
            } else {
                uint64_t prog = PROCBUS_FIELD(p, program_id);
                if (prog != 0)
                    s->desc_of[nd++] = prog;
            }
        }
    } while ((rc = procbus_section_retry(&sec)) > 0);
    s->nprogs = rc == 0 ? np : 0;
    s->ndesc = rc == 0 ? nd : 0;
    return rc;
}

/* qsort_r order of program indexes: by id, then by their place in the snapshot. */
static int by_id(const void *a, const void *b, void *arg)
{
    const struct exp_prog *p = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    if (p[x].id != p[y].id)
        return p[x].id < p[y].id ? -1 : 1;
    return x < y ? -1 : x > y;
}

/*
 * Labels, and descendant counts: each descendant record counts for the first
 * program in the snapshot whose id is its program_id (a binary search among the
 * programs sorted by id: O((programs + descendants) log programs)).
 */
static void finish(struct exp_state *s)
{
    size_t i, n = s->nprogs;

    for (i = 0; i < n; i++) {
        struct exp_prog *e = &s->progs[i];
        size_t len = pb_text_safe(e->lab, sizeof(e->lab), e->name, sizeof(e->name), PB_TEXT_PROM);
        e->lab_len = (uint32_t)(len < sizeof(e->lab) ? len : sizeof(e->lab) - 1);
        e->desc = 0;
        s->order[i] = (uint32_t)i;
    }
    qsort_r(s->order, n, sizeof(*s->order), by_id, s->progs);
    for (i = 0; i < s->ndesc; i++) {
        size_t lo = 0, hi = n;
        uint64_t id = s->desc_of[i];
        while (lo < hi) { /* the first of the programs with this id, in sorted order */
            size_t mid = lo + (hi - lo) / 2;
            if (s->progs[s->order[mid]].id < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < n && s->progs[s->order[lo]].id == id)
            s->progs[s->order[lo]].desc++;
    }
}

/* What one scrape read from the segment. */
struct scrape {
    int l, rc, have_info;
    struct procbus_info info;
};

/* Every read of the segment a scrape makes (guarded by exp_render). 0 or -ENOMEM. */
static int read_segment(struct exp_state *s, struct scrape *sc)
{
    sc->l = attach(s);
    if (sc->l > 0) {
        if (grow(s, s->r.capacity) < 0) /* a snapshot holds at most the table's capacity */
            return -ENOMEM;
        sc->rc = walk(s);
        if (sc->rc < 0)
            report(s, -sc->rc, "cannot read segment");
        else if (sc->l == PROCBUS_ALIVE)
            report(s, 0, NULL);
    }
    sc->have_info = s->open && procbus_info(&s->r, &sc->info) == 0;
    return 0;
}

int exp_render(struct exp_state *s)
{
    struct scrape sc = {.rc = -ENOENT};
    struct exp_scrape out;
    struct pb_guard g;
    struct timespec ts;
    int rc, up;

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
    rc = sc.rc;
    /* alive by its heartbeat and, at once, by its segment's lock (a killed publisher: 0 now,
     * not after the stale threshold) */
    up = rc == 0 && sc.l == PROCBUS_ALIVE && s->open && pb_publisher_check(&s->r) == PROCBUS_ALIVE;
    if (rc == 0)
        finish(s);
    else
        s->nprogs = s->ndesc = 0;
    memset(&out, 0, sizeof(out));
    out.up = up;
    out.have_info = sc.have_info;
    out.have_recs = rc == 0;
    out.info = sc.info;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    out.now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return exp_render_families(s, &out);
}
