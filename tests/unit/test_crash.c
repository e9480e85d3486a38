/* test_crash.c - a publisher killed mid-commit, and readers stopped or killed mid-read. */
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

enum {
    NKEYS = 48,      /* keys the committed steps use */
    NSTEPS = 20,     /* commits before the fatal one (more than the slots: incremental path) */
    CAPACITY = 64,   /* the fatal commit may add keys NKEYS..CAPACITY-1 */
    SLOTS = 4,       /* snapshot slots */
    TIMEOUT_S = 300, /* against hangs only */
};

#define MS 1000000ull

/* The segment the running test uses: the teardown removes it even when an assertion failed. */
static char g_segment[64];

static int unlink_segment(void **state)
{
    (void)state;
    if (g_segment[0] != '\0')
        pbt_unlink(g_segment);
    g_segment[0] = '\0';
    return 0;
}

/* ---- the publisher child's deterministic history ---- */

/* Key k exists after step s iff (k + s) % 7 != 0. */
static int h_present(int k, int s)
{
    return k < NKEYS && s >= 1 && (k + s) % 7 != 0;
}

static int h_written(int k, int s)
{
    return h_present(k, s) && (s == 1 || !h_present(k, s - 1) || (k + s) % 3 == 0);
}

/* The step whose version of key k is visible after step s. */
static int h_version(int k, int s)
{
    while (!h_written(k, s))
        s--;
    return s;
}

static void h_rec(struct procbus_proc *r, int k, int s)
{
    char nm[16];

    snprintf(nm, sizeof(nm), "ck%d", k);
    pbt_fill(r, (uint64_t)k + 1, 30000 + k, nm, (uint16_t)(1 + (s + k) % 8));
    r->size = sizeof(*r);
    r->restarts = (uint32_t)s;
    r->cpu_ns = (uint64_t)s * 1000 + (uint64_t)k;
    r->rss_bytes = (uint64_t)s << 20;
    memset(r->cmdline + r->cmdline_len, 'a' + s % 26, 16);
}

/* Stage step s of the history. */
static int h_stage(struct procbus_pub *p, int s)
{
    struct procbus_proc rec;
    int k, errs = 0;

    for (k = 0; k < NKEYS; k++) {
        if (h_written(k, s)) {
            h_rec(&rec, k, s);
            errs += procbus_pub_upsert(p, &rec) != 0;
        } else if (s > 1 && h_present(k, s - 1) && !h_present(k, s)) {
            errs += procbus_pub_remove(p, (uint64_t)k + 1) != 0;
        }
    }
    return errs;
}

/* The fatal commit's batch: small (a couple of entries) or big (every record, new keys). */
enum fatal_batch { BATCH_SMALL, BATCH_BIG };

static int stage_fatal(struct procbus_pub *p, enum fatal_batch b)
{
    struct procbus_proc rec;
    int k, errs = 0;

    if (b == BATCH_SMALL) {
        h_rec(&rec, 1, 999);
        errs += procbus_pub_upsert(p, &rec) != 0;
        for (k = 0; k < NKEYS; k++)
            if (h_present(k, NSTEPS))
                break;
        errs += procbus_pub_remove(p, (uint64_t)k + 1) != 0;
        return errs;
    }
    for (k = 0; k < CAPACITY; k++) {
        h_rec(&rec, k, 999);
        errs += procbus_pub_upsert(p, &rec) != 0;
    }
    return errs;
}

/*
 * The publisher child: commit NSTEPS steps, report the last generation, wait
 * for the go, then die inside the fatal commit at failpoint `fp`. Exit codes
 * other than death by SIGKILL mean something went wrong before the failpoint.
 */
static void crash_child(const char *segment, enum procbus_failpoint fp, enum fatal_batch b, int wfd,
                        int rfd)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    uint64_t gen;
    char go;
    int s;

    alarm(TIMEOUT_S);
    o.segment = segment;
    o.capacity = CAPACITY;
    o.snap_slots = SLOTS;
    if (procbus_pub_open(&p, &o) != 0)
        _exit(2);
    for (s = 1; s <= NSTEPS; s++)
        if (h_stage(p, s) != 0 || procbus_pub_commit(p) != 0)
            _exit(3);
    gen = procbus_pub_generation(p);
    if (pb_write_all(wfd, &gen, sizeof(gen)) != 0 || pb_read_all(rfd, &go, 1) != 0)
        _exit(4);
    procbus_pub_set_failpoint(p, fp);
    if (stage_fatal(p, b) != 0)
        _exit(5);
    procbus_pub_heartbeat(p); /* the heartbeat the readers will see age */
    if (procbus_pub_commit(p) < 0)
        _exit(7);
    _exit(6); /* the failpoint did not fire */
}

/* The reader sees exactly the state after step NSTEPS: every key, the list, nothing staged. */
static void assert_last_committed(struct procbus_reader *r, uint64_t gen)
{
    static struct procbus_proc list[CAPACITY];
    struct procbus_proc out, want;
    uint64_t seen = 0;
    size_t n = 0, i, count = 0;
    int k;

    assert_int_equal(procbus_generation(r), gen);
    for (k = 0; k < CAPACITY; k++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "ck%d", k);
        if (!h_present(k, NSTEPS)) {
            assert_int_equal(procbus_get_pid(r, 30000 + k, &out), -ENOENT);
            assert_int_equal(procbus_get_name(r, nm, &out), -ENOENT);
            continue;
        }
        count++;
        h_rec(&want, k, h_version(k, NSTEPS));
        assert_int_equal(procbus_get_pid(r, 30000 + k, &out), 0);
        assert_int_equal(r->last_gen, gen);
        assert_memory_equal(&out, &want, sizeof(want));
        memset(&out, 0, sizeof(out));
        assert_int_equal(procbus_get_name(r, nm, &out), 0);
        assert_memory_equal(&out, &want, sizeof(want));
    }
    assert_int_equal(procbus_list(r, list, CAPACITY, &n), 0);
    assert_int_equal(r->last_gen, gen);
    assert_int_equal(n, count);
    for (i = 0; i < n; i++) {
        k = (int)list[i].id - 1;
        assert_true(k >= 0 && k < NKEYS && h_present(k, NSTEPS));
        assert_false(seen & (1ull << k));
        seen |= 1ull << k;
        h_rec(&want, k, h_version(k, NSTEPS));
        assert_memory_equal(&list[i], &want, sizeof(want));
    }
}

/* Drain the reader's events; all must be contiguous and from commits <= gen. Returns how many. */
static uint64_t drain_events(struct procbus_reader *r, uint64_t max_gen)
{
    struct procbus_event ev;
    uint64_t missed = 1, n = 0, expect = r->cursor;
    int rc;

    while ((rc = procbus_next_event(r, &ev, &missed)) == 0) {
        assert_int_equal(missed, 0);
        assert_int_equal(ev.seq, expect);
        assert_true(ev.generation <= max_gen);
        expect++;
        n++;
    }
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(missed, 0);
    return n;
}

static void crash_and_recover(enum procbus_failpoint fp, enum fatal_batch b)
{
    char name[64];
    struct procbus_reader r, fresh;
    struct procbus_info info;
    struct procbus_pub_opts o = {0};
    struct procbus_pub *q = NULL;
    struct procbus_proc rec, out, list[CAPACITY];
    struct procbus_event ev;
    uint64_t gen = 0, missed = 0, old_head, hb, age, c0, ring_cap;
    size_t n = 0;
    int to_child[2], from_child[2], status, rc, i;
    pid_t pid;

    memset(&info, 0, sizeof(info));
    snprintf(g_segment, sizeof(g_segment), "%s", pbt_name(name));
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        crash_child(name, fp, b, from_child[1], to_child[0]);
    }
    close(to_child[0]);
    close(from_child[1]);
    rc = pb_read_all(from_child[0], &gen, sizeof(gen));
    if (rc == 0) {
        /* a reader attached while the publisher lived, its event cursor at the oldest event */
        rc = procbus_open(&r, name);
        procbus_seek_events(&r, PROCBUS_SEEK_OLDEST);
    }
    if (pb_write_all(to_child[1], "g", 1) != 0 && rc == 0)
        rc = -EPIPE;
    close(to_child[1]);
    close(from_child[0]);
    status = pbt_wait_child(pid);
    if (rc != 0 || status != 128 + SIGKILL) {
        print_message("publisher child: status %d (want %d: SIGKILL), setup rc %d\n", status,
                      128 + SIGKILL, rc);
        if (rc == 0)
            procbus_close(&r);
        pbt_unlink(name);
        fail();
    }

    /* 1. the last committed snapshot, whole and alone, for the old reader and a new one */
    assert_last_committed(&r, gen);
    assert_int_equal(procbus_open(&fresh, name), 0);
    assert_last_committed(&fresh, gen);
    procbus_close(&fresh);
    /* the fatal commit's events were written to the ring but never published */
    assert_true(drain_events(&r, gen) > 0);
    assert_int_equal(procbus_info(&r, &info), 0);
    old_head = info.ring_head;
    assert_int_equal(info.generation, gen);
    assert_int_equal(info.publishes, NSTEPS);
    {
        /* peek at the raw ring: the entry past the head holds the dead commit's first event */
        const struct procbus_event *ring =
            (const struct procbus_event *)(const void *)(r.base + r.ring_off);
        const struct procbus_event *e = &ring[old_head & (r.ring_cap - 1)];
        assert_int_equal(e->seq, old_head);
        assert_int_equal(e->generation, gen + 1);
    }

    /* 2. liveness: a dead publisher is not "shut down"; it turns stale when the heartbeat ages */
    hb = info.heartbeat_ns;
    assert_true(hb != PROCBUS_HB_SHUTDOWN && hb != PROCBUS_HB_GONE);
    assert_int_equal(procbus_liveness(&r, 3600ull * 1000 * MS), PROCBUS_ALIVE);
    age = pb_now_ns(CLOCK_MONOTONIC) - hb;
    if (age < 50 * MS)
        assert_int_equal(procbus_liveness(&r, 100 * MS), PROCBUS_ALIVE);
    else
        print_message("note: %llu ms passed since the last heartbeat already; the ALIVE check "
                      "at 100 ms is skipped (slow machine)\n",
                      (unsigned long long)(age / MS));
    while (pb_now_ns(CLOCK_MONOTONIC) - hb <= 150 * MS)
        usleep(10000);
    assert_int_equal(procbus_liveness(&r, 100 * MS), PROCBUS_STALE);
    assert_int_equal(procbus_wait(&r, gen, 0), -ETIMEDOUT); /* not -EPIPE: it did not shut down */
    assert_int_equal(procbus_follow(&r), 0);                /* nobody replaced it yet */
    assert_last_committed(&r, gen);                         /* still readable when stale */

    /* 3. a new publisher takes the name over: the dead one's lock died with it */
    o.segment = name;
    o.capacity = CAPACITY;
    o.ring_capacity = 64;
    assert_int_equal(procbus_pub_open(&q, &o), 0);
    assert_int_equal(procbus_pub_epoch(q), 2);
    assert_true(procbus_pub_generation(q) > gen);
    assert_int_equal(procbus_liveness(&r, 3600ull * 1000 * MS), PROCBUS_GONE);
    assert_int_equal(procbus_wait(&r, gen, 0), -EPIPE);
    assert_last_committed(&r, gen); /* the old mapping stays readable until we follow */
    pbt_fill(&rec, procbus_pub_new_id(q), 31337, "successor", PROCBUS_STATE_RUNNING);
    assert_int_equal(procbus_pub_upsert(q, &rec), 0);
    assert_int_equal(procbus_pub_commit(q), 0);

    /* 4. follow: the new segment's records, the event cursor carried over */
    assert_int_equal(procbus_follow(&r), 1);
    assert_int_equal(r.epoch, 2);
    assert_int_equal(procbus_follow(&r), 0);
    assert_int_equal(procbus_liveness(&r, 3600ull * 1000 * MS), PROCBUS_ALIVE);
    assert_int_equal(procbus_get_pid(&r, 31337, &out), 0);
    assert_string_equal(out.name, "successor");
    assert_int_equal(r.last_gen, procbus_pub_generation(q));
    assert_int_equal(procbus_get_pid(&r, 30001, &out), -ENOENT);
    assert_int_equal(procbus_list(&r, list, CAPACITY, &n), 0);
    assert_int_equal(n, 1);
    /* the takeover's EPOCH event continues the old sequence: nothing missed */
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(missed, 0);
    assert_int_equal(ev.seq, old_head);
    assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(missed, 0);
    assert_int_equal(ev.seq, old_head + 1);
    assert_int_equal(ev.kind, PROCBUS_EV_ADD);
    assert_int_equal(ev.pid, 31337);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);

    /* 5. lapped on the new ring: missed is exact */
    assert_int_equal(procbus_info(&r, &info), 0);
    ring_cap = info.ring_capacity;
    c0 = r.cursor;
    for (i = 0; i < (int)ring_cap + 36; i++) {
        rec.state = (uint16_t)(i % 2 ? PROCBUS_STATE_RUNNING : PROCBUS_STATE_BACKOFF);
        assert_int_equal(procbus_pub_upsert(q, &rec), 0);
        assert_int_equal(procbus_pub_commit(q), 0);
    }
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(missed, 36);
    assert_int_equal(ev.seq, c0 + 36);
    for (i = 1; i < (int)ring_cap; i++) {
        assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
        assert_int_equal(missed, 0);
        assert_int_equal(ev.seq, c0 + 36 + (uint64_t)i);
        assert_int_equal(ev.kind, PROCBUS_EV_STATE);
    }
    assert_int_equal(procbus_next_event(&r, &ev, &missed), -ENOENT);
    assert_int_equal(missed, 0);

    procbus_close(&r);
    procbus_pub_close(q, PROCBUS_PUB_UNLINK);
}

static void test_killed_mid_snapshot_small_batch(void **state)
{
    (void)state;
    crash_and_recover(PROCBUS_FP_MID_SNAPSHOT, BATCH_SMALL);
}

static void test_killed_mid_snapshot_big_batch(void **state)
{
    (void)state;
    crash_and_recover(PROCBUS_FP_MID_SNAPSHOT, BATCH_BIG);
}

static void test_killed_before_swap(void **state)
{
    (void)state;
    crash_and_recover(PROCBUS_FP_BEFORE_SWAP, BATCH_BIG);
}

/*
 * Invariant 5 across a takeover: events the reader had not read yet when it
 * followed to the new segment are gone with the old mapping; next_event must
 * count them in `missed` rather than drop them silently.
 */
static void test_follow_reports_unread_events_as_missed(void **state)
{
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 16, 0), *q;
    snprintf(g_segment, sizeof(g_segment), "%s", name);
    struct procbus_reader r;
    struct procbus_proc rec;
    struct procbus_event ev;
    uint64_t missed = 0, unread, old_head;
    int i;
    (void)state;

    assert_non_null(p);
    assert_int_equal(procbus_open(&r, name), 0);
    for (i = 1; i <= 5; i++) {
        pbt_fill(&rec, (uint64_t)i, 700 + i, "unread", PROCBUS_STATE_RUNNING);
        assert_int_equal(procbus_pub_upsert(p, &rec), 0);
    }
    assert_int_equal(procbus_pub_commit(p), 0);
    /* read two of the five ADD events, leave three */
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    unread = 3;
    old_head = r.cursor + unread;
    procbus_pub_close(p, 0);
    q = pbt_pub(name, 16, 0);
    assert_non_null(q);
    assert_int_equal(procbus_follow(&r), 1);
    assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
    assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
    assert_int_equal(ev.seq, old_head);
    if (missed != unread)
        print_message("after procbus_follow the %llu unread events of the old segment are "
                      "reported as %llu missed\n",
                      (unsigned long long)unread, (unsigned long long)missed);
    procbus_close(&r);
    procbus_pub_close(q, PROCBUS_PUB_UNLINK);
    assert_int_equal(missed, unread);
}

/* ---- readers stopped or killed mid-read cannot hold the publisher back ---- */

enum { SR_KEYS = 32, SR_PID = 50000 };

struct sr_ctl {
    int stop;
    uint64_t reads[2];
    uint64_t violations[2];
};

static void sr_rec(struct procbus_proc *r, int k, uint64_t v)
{
    char nm[16];

    snprintf(nm, sizeof(nm), "sk%d", k);
    pbt_fill(r, (uint64_t)k + 1, SR_PID + k, nm, (uint16_t)(1 + v % 8));
    r->restarts = (uint32_t)v;
    r->cpu_ns = v * 3;
    r->rss_bytes = v ^ 0xabcdefull;
    r->start_realtime_ns = v;
    memset(r->cmdline, (int)('a' + v % 26), sizeof(r->cmdline));
    r->cmdline_len = sizeof(r->cmdline);
}

/* The publisher rewrites every record each commit with v = the commit's generation. */
static int sr_ok(const struct procbus_proc *r, uint64_t gen)
{
    struct procbus_proc want;
    int k = (int)r->id - 1;

    if (k < 0 || k >= SR_KEYS)
        return 0;
    sr_rec(&want, k, gen);
    want.size = sizeof(want);
    return memcmp(&want, r, sizeof(want)) == 0;
}

/* Reader child `idx`: read and verify until told to stop; exit 0 when nothing was wrong. */
static void sr_reader(const char *segment, int idx, struct sr_ctl *ctl)
{
    static struct procbus_proc list[SR_KEYS];
    struct procbus_reader r;
    struct procbus_proc one;
    uint64_t i;

    alarm(TIMEOUT_S);
    if (procbus_open(&r, segment) != 0)
        _exit(10);
    for (i = 0; !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE); i++) {
        size_t n = 0, j;
        int rc, bad = 0;
        if (i % 2 == 0) {
            rc = procbus_get_pid(&r, SR_PID + (int)(i / 2 % SR_KEYS), &one);
            bad = rc == 0 ? !sr_ok(&one, r.last_gen) : rc != -EAGAIN;
        } else {
            rc = procbus_list(&r, list, SR_KEYS, &n);
            if (rc == 0) {
                bad = n != SR_KEYS;
                for (j = 0; j < n && !bad; j++)
                    bad = !sr_ok(&list[j], r.last_gen);
            } else {
                bad = rc != -EAGAIN;
            }
        }
        if (bad)
            __atomic_fetch_add(&ctl->violations[idx], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&ctl->reads[idx], 1, __ATOMIC_RELAXED);
    }
    _exit(0);
}

/* Commit the next generation: every record rewritten with v = that generation. Errors. */
static int sr_commit(struct procbus_pub *p)
{
    struct procbus_proc rec;
    uint64_t v = procbus_pub_generation(p) + 1;
    int k, errs = 0;

    for (k = 0; k < SR_KEYS; k++) {
        sr_rec(&rec, k, v);
        errs += procbus_pub_upsert(p, &rec) != 0;
    }
    return errs + (procbus_pub_commit(p) != 0);
}

/* Wait until reader idx made at_least reads; 0, or -1 after the (generous) timeout. */
static int wait_reads(struct sr_ctl *ctl, int idx, uint64_t at_least)
{
    uint64_t t0 = pb_now_ns(CLOCK_MONOTONIC);

    while (__atomic_load_n(&ctl->reads[idx], __ATOMIC_RELAXED) < at_least) {
        if (pb_now_ns(CLOCK_MONOTONIC) - t0 > (uint64_t)TIMEOUT_S * 1000 * MS)
            return -1;
        usleep(1000);
    }
    return 0;
}

/*
 * how: SIGSTOP (a stalled reader, resumed later) or SIGKILL (a crashed one).
 * Nothing is asserted until both children are reaped.
 */
static void stalled_reader(int how)
{
    const int per_cycle = 1 + (int)(500 * pbt_scale()), commits = per_cycle * 10;
    char name[64];
    struct procbus_pub *p = pbt_pub(pbt_name(name), SR_KEYS, 2);
    snprintf(g_segment, sizeof(g_segment), "%s", name);
    struct procbus_reader r;
    struct procbus_proc one;
    struct sr_ctl *ctl;
    uint64_t base;
    pid_t pid[2];
    enum { CYCLES = 10 }; /* with per_cycle commits each */
    int c, i, st, status[2], errs = 0, waits = 0, stopped = 0, done = 0;

    assert_non_null(p);
    assert_int_equal(sr_commit(p), 0);
    ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ctl != MAP_FAILED);
    memset(ctl, 0, sizeof(*ctl));
    fflush(NULL);
    for (i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0)
            sr_reader(name, i, ctl);
    }
    alarm(TIMEOUT_S); /* a publisher blocked by a reader would hang: fail the run instead */
    waits += wait_reads(ctl, 0, 1000) + wait_reads(ctl, 1, 1000);
    /*
     * Reader 0 stops (or dies) wherever it is, often inside a read; a stopped
     * one is resumed and stopped again, CYCLES times, so some stop surely lands
     * mid-read. Meanwhile the publisher makes its commits and reader 1 reads.
     */
    for (c = 0; c < (how == SIGSTOP ? CYCLES : 1) && waits == 0; c++) {
        kill(pid[0], how);
        if (how == SIGSTOP)
            stopped += waitpid(pid[0], &st, WUNTRACED) == pid[0] && WIFSTOPPED(st);
        base = __atomic_load_n(&ctl->reads[1], __ATOMIC_RELAXED);
        for (i = 0; i < (how == SIGSTOP ? per_cycle : commits); i++, done++)
            errs += sr_commit(p);
        waits += wait_reads(ctl, 1, base + 1000); /* the other reader kept going */
        if (how == SIGSTOP) {
            base = __atomic_load_n(&ctl->reads[0], __ATOMIC_RELAXED);
            kill(pid[0], SIGCONT);
            waits += wait_reads(ctl, 0, base + 1000); /* the stalled reader recovers */
        }
    }
    __atomic_store_n(&ctl->stop, 1, __ATOMIC_RELEASE);
    if (waits != 0) { /* a reader is stuck: do not wait for it forever */
        kill(pid[0], SIGKILL);
        kill(pid[1], SIGKILL);
    }
    status[0] = pbt_wait_child(pid[0]);
    status[1] = pbt_wait_child(pid[1]);
    alarm(0);
    print_message("reader 0 (%s): %llu reads, %llu violations; reader 1: %llu reads, %llu "
                  "violations; %d commits while reader 0 was %s\n",
                  how == SIGSTOP ? "stopped, then resumed" : "killed",
                  (unsigned long long)ctl->reads[0], (unsigned long long)ctl->violations[0],
                  (unsigned long long)ctl->reads[1], (unsigned long long)ctl->violations[1], done,
                  how == SIGSTOP ? "stopped" : "dead");
    assert_int_equal(waits, 0);
    assert_int_equal(errs, 0);
    assert_int_equal(done, commits);
    if (how == SIGSTOP)
        assert_int_equal(stopped, CYCLES);
    assert_int_equal(status[0], how == SIGSTOP ? 0 : 128 + SIGKILL);
    assert_int_equal(status[1], 0);
    assert_int_equal(ctl->violations[0], 0);
    assert_int_equal(ctl->violations[1], 0);
    munmap(ctl, sizeof(*ctl));
    /* a reader opened now sees the latest commit */
    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(procbus_get_pid(&r, SR_PID + 3, &one), 0);
    assert_int_equal(r.last_gen, procbus_pub_generation(p));
    assert_true(sr_ok(&one, r.last_gen));
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
}

static void test_stopped_reader_cannot_block_publisher(void **state)
{
    (void)state;
    stalled_reader(SIGSTOP);
}

static void test_killed_reader_cannot_block_publisher(void **state)
{
    (void)state;
    stalled_reader(SIGKILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_killed_mid_snapshot_small_batch, unlink_segment),
        cmocka_unit_test_teardown(test_killed_mid_snapshot_big_batch, unlink_segment),
        cmocka_unit_test_teardown(test_killed_before_swap, unlink_segment),
        cmocka_unit_test_teardown(test_follow_reports_unread_events_as_missed, unlink_segment),
        cmocka_unit_test_teardown(test_stopped_reader_cannot_block_publisher, unlink_segment),
        cmocka_unit_test_teardown(test_killed_reader_cannot_block_publisher, unlink_segment),
    };
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
