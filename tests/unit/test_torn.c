/* test_torn.c - readers (copying and zero-copy) racing a fast publisher never see a torn record. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"
#include "util.h"

/*
 * The model. Commit G (a generation) is fully determined by G: key k (0..63)
 * is present iff (k + G) % absent_every != 0, and a present key holds the
 * record make_rec(k, v) where v is the generation that last wrote it:
 * v == G when every == 1 (each commit rewrites every present record), else the
 * last generation <= G at which (k + v) % every == 0 or the key was re-added.
 * Every field of make_rec(k, v) but the id derives from v, so a reader can
 * tell from any record alone which commit wrote it, and from r.last_gen which
 * commit the read came from: a torn record fails make_rec, a snapshot mixing
 * generations fails v == m_v(k, G) or the key set.
 */
enum {
    NKEYS = 64,
    NREADERS = 4,
    PID_BASE = 40000,
    TIMEOUT_S = 300, /* against hangs only */
    LIST_CAP = NKEYS + 4,
};

struct cfg {
    const char *label;
    uint32_t every;        /* a present record is rewritten when (k + G) % every == 0 */
    uint32_t absent_every; /* key k is absent at G iff (k + G) % absent_every == 0 */
    uint32_t slots;        /* snapshot slots */
    uint32_t reserve;      /* arena reserve; 0: the default (= capacity: forced laps) */
    uint32_t ring;         /* event ring capacity */
};

struct model {
    const struct cfg *c;
    uint64_t v0; /* the first commit: every present key written */
};

static int m_present(const struct model *m, int k, uint64_t g)
{
    return g >= m->v0 && ((uint64_t)k + g) % m->c->absent_every != 0;
}

/* Does commit g upsert key k? */
static int m_written(const struct model *m, int k, uint64_t g)
{
    if (!m_present(m, k, g))
        return 0;
    return g == m->v0 || ((uint64_t)k + g) % m->c->every == 0 || !m_present(m, k, g - 1);
}

/* Does commit g remove key k? */
static int m_removed(const struct model *m, int k, uint64_t g)
{
    return g > m->v0 && !m_present(m, k, g) && m_present(m, k, g - 1);
}

/* The generation whose record key k shows at g (k present at g). */
static uint64_t m_v(const struct model *m, int k, uint64_t g)
{
    while (g > m->v0 && !m_written(m, k, g))
        g--;
    return g;
}

static uint32_t m_count(const struct model *m, uint64_t g)
{
    uint32_t n = 0;
    int k;

    for (k = 0; k < NKEYS; k++)
        n += (uint32_t)m_present(m, k, g);
    return n;
}

static int32_t rec_pid(int k, uint64_t v)
{
    return PID_BASE + 2 * k + (int32_t)(v & 1);
}

static uint16_t rec_state(int k, uint64_t v)
{
    return (uint16_t)(1 + (v + (uint64_t)k) % 7);
}

static void make_rec(struct procbus_proc *r, int k, uint64_t v, uint64_t id)
{
    size_t i;

    memset(r, 0, sizeof(*r));
    r->size = sizeof(*r);
    r->flags = (uint32_t)(v & 0xf);
    r->id = id;
    r->program_id = v ^ 0x9e3779b97f4a7c15ull;
    r->pid = rec_pid(k, v);
    r->ppid = (int32_t)(v % 1000003) + 1;
    r->pgid = (int32_t)((v * 7 + (uint64_t)k) % 2000000011u) + 1;
    r->ns_pid = (int32_t)(v % 65536);
    r->state = rec_state(k, v);
    r->exit_kind = (uint8_t)(v % 3);
    r->exit_code = (int32_t)(v % 256);
    r->start_realtime_ns = 1700000000000000000ull + v;
    r->start_boot_ns = v * 3 + (uint64_t)k;
    r->state_since_ns = ~v;
    r->restarts = (uint32_t)v;
    r->cmdline_len = 1 + (uint32_t)(v % PROCBUS_CMDLINE_LEN);
    r->cpu_ns = v;
    r->rss_bytes = v * 4096 + (uint64_t)k;
    snprintf(r->comm, sizeof(r->comm), "c%llx", (unsigned long long)(v & 0xffffffffffffull));
    snprintf(r->name, sizeof(r->name), "k%d", k);
    for (i = 0; i < PROCBUS_CMDLINE_LEN; i++)
        r->cmdline[i] = (char)(unsigned char)((v >> (8 * (i % 8))) ^ (i * 131u) ^ (uint64_t)k);
}

/* Key of a record or event name "k<digits>", or -1. */
static int parse_key(const char *name, size_t len)
{
    int k = 0;
    size_t i;

    if (len < 2 || name[0] != 'k')
        return -1;
    for (i = 1; i < len && name[i] != '\0'; i++) {
        if (name[i] < '0' || name[i] > '9' || i > 3)
            return -1;
        k = k * 10 + (name[i] - '0');
    }
    return i == 1 || k >= NKEYS ? -1 : k;
}

/*
 * The record checker: 0 when *r is exactly make_rec(k, v) for its own key k
 * and v = r->cpu_ns (every byte compared: padding, strings, the whole
 * cmdline), else -1. Only the id is free.
 */
static int check_rec(const struct procbus_proc *r, int *k_out, uint64_t *v_out)
{
    /* make_rec is slow next to a read; keep the last few versions of each key */
    static struct {
        uint64_t v;
        struct procbus_proc rec;
    } cache[NKEYS][8];
    struct procbus_proc want;
    int k = parse_key(r->name, sizeof(r->name)), slot;

    if (k < 0)
        return -1;
    slot = (int)(r->cpu_ns % 8);
    if (cache[k][slot].v != r->cpu_ns || cache[k][slot].rec.size == 0) {
        make_rec(&cache[k][slot].rec, k, r->cpu_ns, 0);
        cache[k][slot].v = r->cpu_ns;
    }
    want = cache[k][slot].rec;
    want.id = r->id;
    if (memcmp(&want, r, sizeof(want)) != 0 || r->id == 0)
        return -1;
    *k_out = k;
    *v_out = r->cpu_ns;
    return 0;
}

/*
 * Check one get_pid / get_name result. want_key: the key asked for; pid_bit:
 * for a pid lookup the low bit asked for (key k's pid at v is
 * PID_BASE + 2k + (v & 1)), -1 for a name lookup. g is r.last_gen after the
 * call, [g1, g2] the procbus_generation values read just before and after it:
 * the snapshot read lies in [g1, g2 + 1] (the header's generation is stored
 * right after `current`, so it may lag it by one). NULL when consistent, else
 * what is wrong. An ENOENT is accepted only if some generation in that window
 * lacks the key.
 */
static const char *check_get(const struct model *m, int want_key, int pid_bit, int rc,
                             const struct procbus_proc *r, uint64_t g, uint64_t g1, uint64_t g2)
{
    uint64_t v, x;
    int k;

    if (rc == -EAGAIN)
        return NULL;
    if (rc == -ENOENT) {
        /* only if some generation the read may have come from lacks the key */
        for (x = g1; x <= g2 + 1; x++)
            if (!m_present(m, want_key, x) ||
                (pid_bit >= 0 && (m_v(m, want_key, x) & 1) != (uint64_t)pid_bit))
                return NULL;
        return "ENOENT although every generation in the read's window has the key";
    }
    if (rc != 0)
        return "unexpected error code";
    if (check_rec(r, &k, &v) != 0)
        return "torn record (fields from different writes)";
    if (k != want_key)
        return "record of another key";
    if (g < g1 || g > g2 + 1)
        return "last_gen outside the window of the read";
    if (!m_present(m, k, g))
        return "key not present in the generation read";
    if (v != m_v(m, k, g))
        return "record version does not belong to the generation read (mixed snapshot)";
    if (pid_bit >= 0 && (v & 1) != (uint64_t)pid_bit)
        return "pid lookup returned a record with another pid";
    return NULL;
}

/* Check one procbus_list result read from generation g. NULL when consistent. */
static const char *check_list(const struct model *m, const struct procbus_proc *recs, size_t n,
                              uint64_t g)
{
    uint64_t seen = 0, v;
    size_t i;
    int k;

    if (n != m_count(m, g))
        return "list length differs from the generation's key count";
    for (i = 0; i < n; i++) {
        if (check_rec(&recs[i], &k, &v) != 0)
            return "torn record in list";
        if (seen & (1ull << k))
            return "key listed twice";
        seen |= 1ull << k;
        if (!m_present(m, k, g))
            return "list holds a key absent from its generation";
        if (v != m_v(m, k, g))
            return "list mixes generations";
    }
    return NULL;
}

/* ---- the zero-copy section's checker ---- */

/*
 * A record as a section reads it: every scalar field by PROCBUS_FIELD, the
 * strings through the clamping accessors, by pointer into the segment - no
 * copy of the record. Untrusted until procbus_section_retry returns 0.
 */
struct zc_view {
    struct procbus_proc f; /* scalars; name, comm terminated; cmdline[0, cmdline_len) */
    size_t name_len, comm_len, cmd_len;
};

static void zc_read(const struct procbus_proc *p, struct zc_view *z)
{
    memset(z, 0, sizeof(*z));
    z->f.size = PROCBUS_FIELD(p, size);
    z->f.flags = PROCBUS_FIELD(p, flags);
    z->f.id = PROCBUS_FIELD(p, id);
    z->f.program_id = PROCBUS_FIELD(p, program_id);
    z->f.pid = PROCBUS_FIELD(p, pid);
    z->f.ppid = PROCBUS_FIELD(p, ppid);
    z->f.pgid = PROCBUS_FIELD(p, pgid);
    z->f.ns_pid = PROCBUS_FIELD(p, ns_pid);
    z->f.state = PROCBUS_FIELD(p, state);
    z->f.exit_kind = PROCBUS_FIELD(p, exit_kind);
    z->f.exit_code = PROCBUS_FIELD(p, exit_code);
    z->f.start_realtime_ns = PROCBUS_FIELD(p, start_realtime_ns);
    z->f.start_boot_ns = PROCBUS_FIELD(p, start_boot_ns);
    z->f.state_since_ns = PROCBUS_FIELD(p, state_since_ns);
    z->f.restarts = PROCBUS_FIELD(p, restarts);
    z->f.cmdline_len = PROCBUS_FIELD(p, cmdline_len);
    z->f.cpu_ns = PROCBUS_FIELD(p, cpu_ns);
    z->f.rss_bytes = PROCBUS_FIELD(p, rss_bytes);
    z->name_len = procbus_rec_name(p, z->f.name, sizeof(z->f.name));
    z->comm_len = procbus_rec_comm(p, z->f.comm, sizeof(z->f.comm));
    z->cmd_len = procbus_rec_cmdline(p, z->f.cmdline, sizeof(z->f.cmdline));
}

/* 0 when the view is exactly make_rec(k, v) for its own key k and v = cpu_ns (every field, the
 * strings, the cmdline bytes the length covers), else -1. Only the id is free. */
static int check_view(const struct zc_view *z, int *k_out, uint64_t *v_out)
{
    struct procbus_proc w;
    int k = parse_key(z->f.name, sizeof(z->f.name));

    if (k < 0)
        return -1;
    make_rec(&w, k, z->f.cpu_ns, z->f.id);
    if (z->f.size != w.size || z->f.flags != w.flags || z->f.id == 0 ||
        z->f.program_id != w.program_id || z->f.pid != w.pid || z->f.ppid != w.ppid ||
        z->f.pgid != w.pgid || z->f.ns_pid != w.ns_pid || z->f.state != w.state ||
        z->f.exit_kind != w.exit_kind || z->f.exit_code != w.exit_code ||
        z->f.start_realtime_ns != w.start_realtime_ns || z->f.start_boot_ns != w.start_boot_ns ||
        z->f.state_since_ns != w.state_since_ns || z->f.restarts != w.restarts ||
        z->f.cmdline_len != w.cmdline_len || z->f.rss_bytes != w.rss_bytes)
        return -1;
    if (z->name_len != strlen(w.name) || strcmp(z->f.name, w.name) != 0 ||
        z->comm_len != strlen(w.comm) || strcmp(z->f.comm, w.comm) != 0 ||
        z->cmd_len != w.cmdline_len || memcmp(z->f.cmdline, w.cmdline, z->cmd_len) != 0)
        return -1;
    *k_out = k;
    *v_out = z->f.cpu_ns;
    return 0;
}

/*
 * One zero-copy read of the kind `kind` (0: key k by pid, 1: key k by name and
 * key k2 by pid in the same section, 2: a walk of the whole snapshot), checked
 * against the model at the generation the section validated. NULL when
 * consistent. *ok: 1 when the section returned 0.
 */
static const char *section_read(const struct model *m, struct procbus_reader *r, int kind, int k,
                                int k2, int bit, const char *name, int *ok, uint64_t *gen)
{
    static struct zc_view views[LIST_CAP];
    const struct procbus_proc *p, *p2;
    struct procbus_section s;
    struct zc_view a, b;
    uint64_t g1 = procbus_generation(r), g2, g, v, seen = 0;
    uint32_t n = 0, i, got = 0;
    int rc, kk, found1 = 0, found2 = 0, want1, want2;

    *ok = 0;
    procbus_section_begin(r, &s);
    do {
        found1 = found2 = 0;
        got = 0;
        if (kind == 0) {
            p = procbus_section_pid(&s, PID_BASE + 2 * k + bit);
            if ((found1 = p != NULL))
                zc_read(p, &a);
        } else if (kind == 1) {
            p = procbus_section_name(&s, name);
            p2 = procbus_section_pid(&s, PID_BASE + 2 * k2 + bit);
            if ((found1 = p != NULL))
                zc_read(p, &a);
            if ((found2 = p2 != NULL))
                zc_read(p2, &b);
        } else {
            n = procbus_section_count(&s);
            for (i = 0; i < n && i < LIST_CAP; i++) {
                if ((p = procbus_section_at(&s, i)) == NULL)
                    break;
                zc_read(p, &views[got++]);
            }
        }
    } while ((rc = procbus_section_retry(&s)) > 0);
    g2 = procbus_generation(r);
    if (rc == -EAGAIN)
        return NULL;
    if (rc != 0)
        return "section ended with an unexpected error";
    *ok = 1;
    g = procbus_section_generation(&s);
    *gen = g;
    if (g != r->last_gen)
        return "section generation is not procbus_read_generation's";
    if (g < g1 || g > g2 + 1)
        return "section generation outside the window of the read";
    if (kind == 2) {
        if (got != n || n != m_count(m, g))
            return "walk length differs from the generation's key count";
        for (i = 0; i < n; i++) {
            if (check_view(&views[i], &kk, &v) != 0)
                return "torn record in a walk";
            if (seen & (1ull << kk))
                return "key walked twice";
            seen |= 1ull << kk;
            if (!m_present(m, kk, g) || v != m_v(m, kk, g))
                return "walk mixes generations";
        }
        return NULL;
    }
    want1 = m_present(m, k, g) && (kind == 1 || (m_v(m, k, g) & 1) == (uint64_t)bit);
    want2 = kind == 1 && m_present(m, k2, g) && (m_v(m, k2, g) & 1) == (uint64_t)bit;
    if (found1 != want1 || (kind == 1 && found2 != want2))
        return "a key found, or not, against the model of the generation read";
    if (found1) {
        if (check_view(&a, &kk, &v) != 0)
            return "torn record read by pointer";
        if (kk != k || v != m_v(m, k, g))
            return "record read by pointer is not the generation's (mixed snapshot)";
        if (kind == 0 && (v & 1) != (uint64_t)bit)
            return "pid lookup by pointer returned a record with another pid";
    }
    if (kind == 1 && found2) {
        if (check_view(&b, &kk, &v) != 0)
            return "torn second record in one section";
        if (kk != k2 || v != m_v(m, k2, g) || (v & 1) != (uint64_t)bit)
            return "two records of one section from different generations";
    }
    return NULL;
}

/* ---- the event follower's checker ---- */

/* How many events commit g publishes. */
static uint32_t m_events(const struct model *m, uint64_t g)
{
    uint32_t n = 0;
    int k;

    for (k = 0; k < NKEYS; k++) {
        if (m_removed(m, k, g))
            n++;
        else if (m_written(m, k, g) && (g == m->v0 || !m_present(m, k, g - 1) ||
                                        rec_state(k, g) != rec_state(k, m_v(m, k, g - 1))))
            n++;
    }
    return n;
}

/* The content of one event against the model. NULL when right. */
static const char *check_event_content(const struct model *m, const struct procbus_event *e)
{
    struct procbus_proc w;
    char nm[PROCBUS_COMM_LEN] = {0};
    uint64_t g = e->generation, v;
    int k = parse_key(e->name, sizeof(e->name));

    if (k < 0)
        return "event name is not a key";
    snprintf(nm, sizeof(nm), "k%d", k);
    if (memcmp(nm, e->name, sizeof(nm)) != 0)
        return "event name padding";
    if (g < m->v0 || e->record_id == 0 || e->time_ns == 0)
        return "event generation/id/time";
    switch (e->kind) {
    case PROCBUS_EV_ADD:
        if (!m_present(m, k, g) || (g > m->v0 && m_present(m, k, g - 1)))
            return "ADD of a key that did not appear in that generation";
        v = g;
        if (e->old_state != PROCBUS_STATE_UNKNOWN || e->new_state != rec_state(k, v))
            return "ADD states";
        break;
    case PROCBUS_EV_STATE:
        if (g == m->v0 || !m_present(m, k, g - 1) || !m_written(m, k, g))
            return "STATE event for a key not rewritten in that generation";
        v = g;
        if (e->old_state != rec_state(k, m_v(m, k, g - 1)) || e->new_state != rec_state(k, v) ||
            e->old_state == e->new_state)
            return "STATE event states";
        break;
    case PROCBUS_EV_REMOVE:
        if (!m_removed(m, k, g))
            return "REMOVE of a key not removed in that generation";
        v = m_v(m, k, g - 1);
        if (e->old_state != rec_state(k, v) || e->new_state != rec_state(k, v))
            return "REMOVE states";
        break;
    default:
        return "unexpected event kind";
    }
    make_rec(&w, k, v, 1);
    if (e->pid != w.pid || e->exit_code != w.exit_code || e->exit_kind != w.exit_kind ||
        e->flags != (uint8_t)(w.flags & PROCBUS_F_CORE_DUMPED))
        return "event fields do not match the record";
    return NULL;
}

/*
 * Follows the ring: sequences are contiguous except exactly where `missed`
 * says, events match the model, generations never go back, and every
 * generation seen whole (no miss around it) carries exactly the events the
 * model says, generations skipped without a miss carry none.
 */
struct evcheck {
    const struct model *m;
    uint64_t expect_seq;
    uint64_t cur_gen; /* generation of the last event; 0 = none yet */
    uint32_t cur_count;
    int cur_tainted, gap_pending;
    uint64_t events, missed, gens_verified;
};

static void evcheck_init(struct evcheck *ec, const struct model *m, uint64_t cursor)
{
    memset(ec, 0, sizeof(*ec));
    ec->m = m;
    ec->expect_seq = cursor;
}

/* After a reported violation: carry on from the reader's cursor, counts kept. */
static void evcheck_resync(struct evcheck *ec, uint64_t cursor)
{
    ec->expect_seq = cursor;
    ec->cur_gen = 0;
    ec->cur_tainted = 1;
    ec->gap_pending = 1;
}

/* Feed one procbus_next_event result. NULL when consistent. */
static const char *evcheck_feed(struct evcheck *ec, int rc, const struct procbus_event *e,
                                uint64_t missed)
{
    const char *why;
    int gap;

    if (rc == -EAGAIN)
        return NULL;
    if (rc == -ENOENT) {
        ec->expect_seq += missed;
        ec->missed += missed;
        if (missed > 0)
            ec->gap_pending = 1;
        return NULL;
    }
    if (rc != 0)
        return "next_event error";
    if (e->seq != ec->expect_seq + missed)
        return "event sequence gap not reported exactly by missed";
    ec->expect_seq = e->seq + 1;
    ec->missed += missed;
    ec->events++;
    gap = ec->gap_pending || missed > 0;
    ec->gap_pending = 0;
    if ((why = check_event_content(ec->m, e)) != NULL)
        return why;
    if (e->generation < ec->cur_gen)
        return "event generations go back";
    if (e->generation != ec->cur_gen) {
        if (ec->cur_gen != 0 && !ec->cur_tainted && !gap) {
            uint64_t g;
            if (ec->cur_count != m_events(ec->m, ec->cur_gen))
                return "a generation's events are incomplete (lost silently)";
            ec->gens_verified++;
            for (g = ec->cur_gen + 1; g < e->generation; g++)
                if (m_events(ec->m, g) != 0)
                    return "a generation's events are missing (lost silently)";
        }
        ec->cur_gen = e->generation;
        ec->cur_count = 0;
        ec->cur_tainted = gap;
    } else if (gap) {
        ec->cur_tainted = 1;
    }
    ec->cur_count++;
    return NULL;
}

/* ---- the reader processes ---- */

struct ctl {
    int ready, stop;
    uint64_t progress[NREADERS]; /* successful reads so far */
};

struct report {
    uint64_t magic;
    uint64_t calls, ok, enoent, eagain, violations, retries;
    uint64_t lists, list_ok;
    uint64_t sections, section_ok, walks_ok; /* zero-copy reads (procbus_section.h) */
    uint64_t events, missed, ev_violations, ev_eagain, gens_verified;
    uint64_t gen_first, gen_last;
    double secs;
    char first_violation[128];
};
#define REPORT_MAGIC 0x746f726e72657074ull

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void violation(struct report *rep, uint64_t *counter, const char *why, uint64_t g)
{
    if (rep->violations + rep->ev_violations == 0)
        snprintf(rep->first_violation, sizeof(rep->first_violation), "%s (generation %llu)", why,
                 (unsigned long long)g);
    (*counter)++;
}

static void reader_main(const struct model *m, const char *segment, int idx, struct ctl *ctl,
                        int wfd)
{
    static struct procbus_proc list[LIST_CAP];
    struct procbus_reader r;
    struct procbus_proc one;
    struct procbus_event ev;
    struct evcheck ec;
    struct report rep;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(idx + 1), prev_gen = 0, i;
    char names[NKEYS][16];
    double t0;
    int k;

    alarm(TIMEOUT_S);
    memset(&rep, 0, sizeof(rep));
    rep.magic = REPORT_MAGIC;
    for (k = 0; k < NKEYS; k++)
        snprintf(names[k], sizeof(names[k]), "k%d", k);
    if (procbus_open(&r, segment) != 0)
        _exit(10);
    evcheck_init(&ec, m, r.cursor);
    rep.gen_first = procbus_generation(&r);
    __atomic_fetch_add(&ctl->ready, 1, __ATOMIC_ACQ_REL);
    t0 = (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9;
    for (i = 0; !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE); i++) {
        uint64_t g1 = procbus_generation(&r), g2, rnd = xorshift(&seed);
        const char *why = NULL;
        int rc, bit = -1;
        size_t n = 0;

        k = (int)(rnd % NKEYS);
        if (i % 6 >= 3) { /* the zero-copy section: by pid, by name + pid, a walk */
            int ok = 0, k2 = (int)((rnd >> 20) % NKEYS);
            uint64_t sg = 0;
            bit = (int)((rnd >> 8) & 1);
            why = section_read(m, &r, (int)(i % 6) - 3, k, k2, bit, names[k], &ok, &sg);
            rep.sections++;
            rep.calls++;
            if (ok) {
                rep.section_ok++;
                rep.ok++;
                rep.walks_ok += i % 6 == 5;
                if (why == NULL && sg < prev_gen)
                    why = "section generation went back";
                prev_gen = sg;
                __atomic_store_n(&ctl->progress[idx], rep.ok, __ATOMIC_RELAXED);
            } else {
                rep.eagain++;
            }
            if (why != NULL)
                violation(&rep, &rep.violations, why, r.last_gen);
            goto events;
        }
        switch (i % 3) {
        case 0:
            bit = (int)((rnd >> 8) & 1);
            rc = procbus_get_pid(&r, PID_BASE + 2 * k + bit, &one);
            break;
        case 1:
            rc = procbus_get_name(&r, names[k], &one);
            break;
        default:
            rc = procbus_list(&r, list, LIST_CAP, &n);
            rep.lists++;
            break;
        }
        g2 = procbus_generation(&r);
        rep.calls++;
        if (rc == 0) {
            rep.ok++;
            if (r.last_gen < prev_gen)
                why = "last_gen went back";
            prev_gen = r.last_gen;
            __atomic_store_n(&ctl->progress[idx], rep.ok, __ATOMIC_RELAXED);
        } else if (rc == -ENOENT) {
            rep.enoent++;
        } else if (rc == -EAGAIN) {
            rep.eagain++;
        }
        if (why == NULL) {
            if (i % 3 != 2)
                why = check_get(m, k, bit, rc, &one, r.last_gen, g1, g2);
            else if (rc == 0)
                why = check_list(m, list, n, r.last_gen);
            else if (rc != -EAGAIN)
                why = "list failed";
            if (why == NULL && rc == 0 && i % 3 == 2) {
                rep.list_ok++;
                if (r.last_gen < g1 || r.last_gen > g2 + 1)
                    why = "list's last_gen outside the window of the read";
            }
        }
        if (why != NULL)
            violation(&rep, &rep.violations, why, r.last_gen);
    events:
        if (idx == 0) { /* the event follower */
            int j;
            for (j = 0; j < 16; j++) {
                uint64_t missed = 0;
                int erc = procbus_next_event(&r, &ev, &missed);
                if (erc == -EAGAIN)
                    rep.ev_eagain++;
                why = evcheck_feed(&ec, erc, &ev, missed);
                if (why != NULL) {
                    violation(&rep, &rep.ev_violations, why, erc == 0 ? ev.generation : 0);
                    evcheck_resync(&ec, r.cursor);
                }
                if (erc != 0)
                    break;
            }
        }
    }
    rep.secs = (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9 - t0;
    rep.retries = r.retries;
    rep.gen_last = procbus_generation(&r);
    rep.events = ec.events;
    rep.missed = ec.missed;
    rep.gens_verified = ec.gens_verified;
    if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(12);
    _exit(0);
}

/* ---- the publisher (this process) ---- */

/* Stage and commit generation procbus_pub_generation(p) + 1 of the model. */
static int publish_one(struct procbus_pub *p, const struct model *m, uint64_t ids[NKEYS])
{
    uint64_t g = procbus_pub_generation(p) + 1;
    struct procbus_proc rec;
    int k, errs = 0;

    for (k = 0; k < NKEYS; k++) {
        if (m_written(m, k, g)) {
            if (ids[k] == 0)
                ids[k] = procbus_pub_new_id(p);
            make_rec(&rec, k, g, ids[k]);
            errs += procbus_pub_upsert(p, &rec) != 0;
        } else if (m_removed(m, k, g)) {
            errs += procbus_pub_remove(p, ids[k]) != 0;
            ids[k] = 0;
        }
    }
    errs += procbus_pub_commit(p) != 0;
    return errs;
}

static void run_race(const struct cfg *c)
{
    const double secs = 1.5 * pbt_scale();
    const uint64_t min_ok = (uint64_t)(20000 * pbt_scale()),
                   min_commits = (uint64_t)(4000 * pbt_scale());
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct report rep[NREADERS];
    struct model m;
    struct ctl *ctl;
    uint64_t ids[NKEYS] = {0}, commits = 0, pub_errs = 0, forced;
    char name[64];
    int fds[NREADERS], got[NREADERS], status[NREADERS], i, timed_out = 0;
    pid_t pids[NREADERS];
    double t0, el = 0;

    o.segment = pbt_name(name);
    o.capacity = NKEYS;
    o.reserve = c->reserve;
    o.snap_slots = c->slots;
    o.ring_capacity = c->ring;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    m.c = c;
    m.v0 = procbus_pub_generation(p) + 1;
    ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ctl != MAP_FAILED);
    memset(ctl, 0, sizeof(*ctl));
    fflush(NULL);
    for (i = 0; i < NREADERS; i++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(pfd[0]);
            reader_main(&m, name, i, ctl, pfd[1]);
        }
        close(pfd[1]);
        fds[i] = pfd[0];
    }

    /* commit while every reader reads; stop once the time is up AND enough work was done */
    t0 = (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9;
    while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < NREADERS &&
           (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9 - t0 < TIMEOUT_S)
        usleep(1000);
    t0 = (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9;
    for (;;) {
        int enough = commits >= min_commits;
        el = (double)pb_now_ns(CLOCK_MONOTONIC) / 1e9 - t0;
        for (i = 0; i < NREADERS && enough; i++)
            enough = __atomic_load_n(&ctl->progress[i], __ATOMIC_RELAXED) >= min_ok;
        if ((enough && el >= secs) || el > TIMEOUT_S) {
            timed_out = !(enough && el >= secs);
            break;
        }
        pub_errs += (uint64_t)publish_one(p, &m, ids);
        commits++;
        if (commits % 256 == 0)
            procbus_pub_heartbeat(p);
    }
    __atomic_store_n(&ctl->stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < NREADERS; i++) {
        memset(&rep[i], 0, sizeof(rep[i]));
        got[i] = pb_read_all(fds[i], &rep[i], sizeof(rep[i]));
        close(fds[i]);
        status[i] = pbt_wait_child(pids[i]);
    }
    forced = procbus_pub_forced_laps(p);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    munmap(ctl, sizeof(*ctl));

    print_message("[%s] %llu commits in %.2f s (%.0f/s), %llu forced laps\n", c->label,
                  (unsigned long long)commits, el, (double)commits / (el > 0 ? el : 1),
                  (unsigned long long)forced);
    for (i = 0; i < NREADERS; i++) {
        const struct report *x = &rep[i];
        print_message("  reader %d: %llu reads (%.0f/s): %llu ok, %llu ENOENT, %llu EAGAIN, "
                      "%llu lists ok, %llu zero-copy sections ok (%llu walks); %llu seqlock "
                      "retries; %llu violations%s%s\n",
                      i, (unsigned long long)x->calls,
                      (double)x->calls / (x->secs > 0 ? x->secs : 1), (unsigned long long)x->ok,
                      (unsigned long long)x->enoent, (unsigned long long)x->eagain,
                      (unsigned long long)x->list_ok, (unsigned long long)x->section_ok,
                      (unsigned long long)x->walks_ok, (unsigned long long)x->retries,
                      (unsigned long long)(x->violations + x->ev_violations),
                      x->first_violation[0] ? ": first: " : "", x->first_violation);
        if (i == 0)
            print_message("  reader 0 events: %llu read, %llu missed, %llu EAGAIN, %llu whole "
                          "generations verified complete, %llu event violations\n",
                          (unsigned long long)x->events, (unsigned long long)x->missed,
                          (unsigned long long)x->ev_eagain, (unsigned long long)x->gens_verified,
                          (unsigned long long)x->ev_violations);
    }
    assert_false(timed_out);
    assert_int_equal(pub_errs, 0);
    for (i = 0; i < NREADERS; i++) {
        assert_int_equal(status[i], 0);
        assert_int_equal(got[i], 0);
        assert_true(rep[i].magic == REPORT_MAGIC);
        assert_int_equal(rep[i].violations, 0);
        assert_int_equal(rep[i].ev_violations, 0);
        assert_true(rep[i].ok >= min_ok);
        assert_true(rep[i].list_ok > 0);
        assert_true(rep[i].section_ok > 0 && rep[i].walks_ok > 0);
        assert_true(rep[i].ok + rep[i].enoent + rep[i].eagain == rep[i].calls);
        assert_true(rep[i].gen_last > rep[i].gen_first); /* it read while commits happened */
    }
    assert_true(rep[0].events > 0);
}

/* Large rings let the follower verify whole generations; small ones lap it all the time. */
static const struct cfg cfg_all_2slots = {
    "every record every commit, 2 slots, forced laps, ring 32768", 1, 5, 2, 0, 1u << 15};
static const struct cfg cfg_all_8slots = {
    "every record every commit, 8 slots, large reserve, ring 256", 1, 5, 8, 1024, 256};
static const struct cfg cfg_incremental = {
    "few records per commit (incremental rewrite), 4 slots, ring 32768", 16, 32, 4, 1024, 1u << 15};
static const struct cfg cfg_incremental_laps = {
    "few records per commit, 8 slots, small reserve: forced laps, ring 64", 16, 32, 8, 16, 64};

static void test_race_all_records_2_slots(void **state)
{
    (void)state;
    run_race(&cfg_all_2slots);
}

static void test_race_all_records_8_slots(void **state)
{
    (void)state;
    run_race(&cfg_all_8slots);
}

static void test_race_incremental(void **state)
{
    (void)state;
    run_race(&cfg_incremental);
}

static void test_race_incremental_forced_laps(void **state)
{
    (void)state;
    run_race(&cfg_incremental_laps);
}

/* ---- negative controls: the checkers must catch what they are meant to ---- */

static void test_checker_flags_torn_records(void **state)
{
    struct model m = {&cfg_all_8slots, 10};
    struct procbus_proc a, b, x;
    uint64_t v;
    size_t off, split;
    int k, flagged = 0, mixes = 0;
    (void)state;

    make_rec(&a, 17, 1234, 99);
    make_rec(&b, 17, 1235, 99);
    assert_int_equal(check_rec(&a, &k, &v), 0);
    assert_int_equal(k, 17);
    assert_int_equal(v, 1234);
    /* any single corrupted byte but the id's is caught */
    for (off = 0; off < sizeof(a); off++) {
        if (off >= offsetof(struct procbus_proc, id) && off < offsetof(struct procbus_proc, id) + 8)
            continue;
        x = a;
        ((unsigned char *)&x)[off] ^= 0x5a;
        assert_int_equal(check_rec(&x, &k, &v), -1);
    }
    /* a record torn between two writes, at any byte, is caught */
    for (split = 1; split < sizeof(a); split++) {
        memcpy(&x, &a, split);
        memcpy((char *)&x + split, (char *)&b + split, sizeof(x) - split);
        if (memcmp(&x, &a, sizeof(x)) == 0 || memcmp(&x, &b, sizeof(x)) == 0)
            continue; /* not actually mixed */
        mixes++;
        flagged += check_rec(&x, &k, &v) != 0;
    }
    assert_true(mixes > 300);
    assert_int_equal(flagged, mixes);
    /* get results: right, torn, wrong generation, impossible ENOENT */
    make_rec(&x, 3, m_v(&m, 3, 20), 5);
    assert_null(check_get(&m, 3, -1, 0, &x, 20, 20, 20));
    assert_non_null(check_get(&m, 3, -1, 0, &x, 21, 20, 21)); /* record from 20, read "21" */
    assert_non_null(check_get(&m, 4, -1, 0, &x, 20, 20, 20)); /* wrong key */
    assert_non_null(check_get(&m, 3, 1 - (int)(x.pid & 1), 0, &x, 20, 20, 20));
    assert_non_null(check_get(&m, 3, -1, 0, &x, 25, 20, 21)); /* outside the window */
    x.restarts++;
    assert_non_null(check_get(&m, 3, -1, 0, &x, 20, 20, 20));
    /* key 0 is absent at 20 (20 % 5 == 0), present at 21 */
    assert_null(check_get(&m, 0, -1, -ENOENT, NULL, 0, 20, 20));
    assert_non_null(check_get(&m, 0, -1, -ENOENT, NULL, 0, 21, 22)); /* 21..23 all have it */
    assert_non_null(check_get(&m, 3, -1, -EBADMSG, NULL, 0, 21, 22));
}

/* The section's checker: a view of a record torn between two writes, at any byte a view reads,
 * is caught; so is any single field changed. */
static void test_checker_flags_torn_views(void **state)
{
    struct procbus_proc a, b, x;
    struct zc_view za, zb, zx;
    uint64_t v;
    size_t split;
    int k, flagged = 0, mixes = 0;
    (void)state;

    make_rec(&a, 17, 1234, 99);
    make_rec(&b, 17, 1235, 99);
    zc_read(&a, &za);
    zc_read(&b, &zb);
    assert_int_equal(check_view(&za, &k, &v), 0);
    assert_int_equal(k, 17);
    assert_int_equal(v, 1234);
    assert_int_equal(check_view(&zb, &k, &v), 0);
    for (split = 1; split < sizeof(a); split++) {
        memcpy(&x, &a, split);
        memcpy((char *)&x + split, (char *)&b + split, sizeof(x) - split);
        zc_read(&x, &zx);
        if (memcmp(&zx, &za, sizeof(zx)) == 0 || memcmp(&zx, &zb, sizeof(zx)) == 0)
            continue; /* the bytes that differ are ones a view does not read */
        mixes++;
        flagged += check_view(&zx, &k, &v) != 0;
    }
    assert_true(mixes > 100);
    assert_int_equal(flagged, mixes);
    zx = za;
    zx.f.restarts++;
    assert_int_not_equal(check_view(&zx, &k, &v), 0);
    zx = za;
    zx.f.cmdline[zx.cmd_len - 1] ^= 1;
    assert_int_not_equal(check_view(&zx, &k, &v), 0);
    zx = za;
    zx.cmd_len--;
    assert_int_not_equal(check_view(&zx, &k, &v), 0);
}

static void build_list(const struct model *m, uint64_t g, struct procbus_proc *out, size_t *n)
{
    int k;

    *n = 0;
    for (k = 0; k < NKEYS; k++)
        if (m_present(m, k, g))
            make_rec(&out[(*n)++], k, m_v(m, k, g), (uint64_t)k + 1);
}

static void test_checker_flags_mixed_lists(void **state)
{
    static struct procbus_proc l[LIST_CAP];
    const struct cfg *cfgs[] = {&cfg_all_8slots, &cfg_incremental};
    size_t n, c;
    uint64_t g;
    (void)state;

    for (c = 0; c < 2; c++) {
        struct model m = {cfgs[c], 5};
        for (g = 5; g < 80; g++) {
            build_list(&m, g, l, &n);
            assert_true(n > 0 && n < LIST_CAP);
            assert_null(check_list(&m, l, n, g));
            assert_non_null(check_list(&m, l, n, g + 1)); /* the key set moves every commit */
            assert_non_null(check_list(&m, l, n - 1, g)); /* one record short */
            l[n] = l[0];
            assert_non_null(check_list(&m, l, n + 1, g)); /* a key twice */
            /* one record from the next commit */
            {
                int k = parse_key(l[n / 2].name, sizeof(l[n / 2].name));
                struct procbus_proc keep = l[n / 2];
                make_rec(&l[n / 2], k, m_v(&m, k, g) + 1, keep.id);
                assert_non_null(check_list(&m, l, n, g));
                l[n / 2] = keep;
            }
            /* an absent key instead of a present one */
            {
                int absent = 0;
                struct procbus_proc keep = l[0];
                while (m_present(&m, absent, g))
                    absent++;
                make_rec(&l[0], absent, g, 1);
                assert_non_null(check_list(&m, l, n, g));
                l[0] = keep;
            }
        }
    }
}

/* The model's events of commit g, in the publisher's order, numbered from *seq. */
static size_t model_events(const struct model *m, uint64_t g, uint64_t *seq,
                           struct procbus_event *out)
{
    size_t n = 0;
    int k;

    for (k = 0; k < NKEYS; k++) {
        struct procbus_proc rec;
        struct procbus_event *e = &out[n];
        int kind = 0;
        uint64_t v = g;
        uint16_t old_state = 0;

        if (m_removed(m, k, g)) {
            kind = PROCBUS_EV_REMOVE;
            v = m_v(m, k, g - 1);
            old_state = rec_state(k, v);
        } else if (m_written(m, k, g)) {
            if (g == m->v0 || !m_present(m, k, g - 1)) {
                kind = PROCBUS_EV_ADD;
            } else {
                old_state = rec_state(k, m_v(m, k, g - 1));
                if (old_state != rec_state(k, g))
                    kind = PROCBUS_EV_STATE;
            }
        }
        if (kind == 0)
            continue;
        make_rec(&rec, k, v, (uint64_t)k + 1);
        memset(e, 0, sizeof(*e));
        e->seq = (*seq)++;
        e->record_id = rec.id;
        e->generation = g;
        e->time_ns = 1;
        e->pid = rec.pid;
        e->exit_code = rec.exit_code;
        e->kind = (uint16_t)kind;
        e->old_state = old_state;
        e->new_state = rec.state;
        e->exit_kind = rec.exit_kind;
        e->flags = (uint8_t)(rec.flags & PROCBUS_F_CORE_DUMPED);
        snprintf(e->name, sizeof(e->name), "k%d", k);
        n++;
    }
    return n;
}

enum ev_fault { EVF_NONE, EVF_SKIP_UNREPORTED, EVF_MISSED_WRONG, EVF_LOST_RENUMBERED, EVF_STATE };

/* Feed the model's events of generations [5, 40) through a checker, with one fault. */
static int run_evcheck(const struct cfg *c, enum ev_fault fault)
{
    static struct procbus_event evs[4 * NKEYS];
    struct model m = {c, 5};
    struct evcheck ec;
    uint64_t seq = 100, g;
    int violations = 0, faulted = 0;

    evcheck_init(&ec, &m, seq);
    for (g = 5; g < 40; g++) {
        size_t n = model_events(&m, g, &seq, evs), i;
        for (i = 0; i < n; i++) {
            struct procbus_event e = evs[i];
            uint64_t missed = 0;
            if (!faulted && g >= 20 && n >= 3 && i == n / 2) {
                faulted = 1;
                if (fault == EVF_SKIP_UNREPORTED || fault == EVF_MISSED_WRONG) {
                    i++; /* drop one event ... */
                    e = evs[i];
                    missed = fault == EVF_MISSED_WRONG ? 2 : 0; /* ... report it wrong */
                } else if (fault == EVF_LOST_RENUMBERED) {
                    /* the publisher lost one without a trace: later seqs close the gap */
                    seq--;
                    for (size_t j = i + 1; j < n; j++)
                        evs[j].seq--;
                    continue;
                } else if (fault == EVF_STATE) {
                    e.new_state = (uint16_t)(e.new_state % 7 + 1);
                }
            }
            violations += evcheck_feed(&ec, 0, &e, missed) != NULL;
        }
        violations += evcheck_feed(&ec, -ENOENT, NULL, 0) != NULL;
    }
    /* a correctly reported lap is fine */
    if (fault == EVF_NONE) {
        struct procbus_event e;
        size_t n = model_events(&m, 40, &seq, evs);
        n += model_events(&m, 41, &seq, evs + n);
        e = evs[n - 1];
        violations += evcheck_feed(&ec, 0, &e, n - 1) != NULL;
        violations += ec.gens_verified < 30;
    }
    return violations;
}

static void test_checker_flags_event_faults(void **state)
{
    (void)state;
    assert_int_equal(run_evcheck(&cfg_all_8slots, EVF_NONE), 0);
    assert_int_equal(run_evcheck(&cfg_incremental, EVF_NONE), 0);
    assert_true(run_evcheck(&cfg_all_8slots, EVF_SKIP_UNREPORTED) > 0);
    assert_true(run_evcheck(&cfg_all_8slots, EVF_MISSED_WRONG) > 0);
    assert_true(run_evcheck(&cfg_all_8slots, EVF_LOST_RENUMBERED) > 0);
    assert_true(run_evcheck(&cfg_incremental, EVF_LOST_RENUMBERED) > 0);
    assert_true(run_evcheck(&cfg_all_8slots, EVF_STATE) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_flags_torn_records),
        cmocka_unit_test(test_checker_flags_mixed_lists),
        cmocka_unit_test(test_checker_flags_torn_views),
        cmocka_unit_test(test_checker_flags_event_faults),
        cmocka_unit_test(test_race_all_records_2_slots),
        cmocka_unit_test(test_race_all_records_8_slots),
        cmocka_unit_test(test_race_incremental),
        cmocka_unit_test(test_race_incremental_forced_laps),
    };
    return cmocka_run_group_tests_name("torn", tests, NULL, NULL);
}
