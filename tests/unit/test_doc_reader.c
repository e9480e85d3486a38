/* test_doc_reader.c - docs/ABI.md is enough to write a reader: its constants are the header's,
 * and a reader written from it alone (tests/support/doc_reader.c) agrees with procbus.h. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "doc_reader.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

/* ---- the doc ---- */

/* docs/ABI.md's text (malloc'd): $PROCBUS_SRCDIR, else up from the current folder. */
static char *read_abi_doc(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    const char *env = getenv("PROCBUS_SRCDIR");

    if (env != NULL) {
        snprintf(path, sizeof(path), "%s/docs/ABI.md", env);
        return pbt_slurp(path, NULL);
    }
    if (getcwd(dir, sizeof(dir)) == NULL)
        return NULL;
    for (int depth = 0; depth < 16; depth++) {
        char *text, *slash;
        snprintf(path, sizeof(path), "%s/docs/ABI.md", dir);
        text = pbt_slurp(path, NULL);
        if (text != NULL)
            return text;
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            break;
        *slash = '\0';
    }
    return NULL;
}

/* The value of `name` in the doc's "## Constants" table (| `NAME` | value | meaning |). */
static int doc_constant(const char *doc, const char *name, uint64_t *value)
{
    const char *sec = strstr(doc, "\n## Constants\n"), *end;
    char key[96];

    if (sec == NULL)
        return -1;
    end = strstr(sec + 1, "\n## ");
    snprintf(key, sizeof(key), "\n| `%s` | ", name);
    for (const char *p = strstr(sec, key); p != NULL && (end == NULL || p < end);) {
        char *stop;
        errno = 0;
        *value = strtoull(p + strlen(key), &stop, 0);
        return errno == 0 && stop != p + strlen(key) ? 0 : -1;
    }
    return -1;
}

/* Every `PROCBUS_*` name the doc's Constants table lists, into names[] (at most max). */
static size_t doc_constant_names(const char *doc, char names[][64], size_t max)
{
    const char *sec = strstr(doc, "\n## Constants\n"), *end, *p;
    size_t n = 0;

    if (sec == NULL)
        return 0;
    end = strstr(sec + 1, "\n## ");
    for (p = strstr(sec, "\n| `"); p != NULL && (end == NULL || p < end) && n < max;
         p = strstr(p + 1, "\n| `")) {
        const char *b = p + 4, *e = strchr(b, '`');
        if (e != NULL && (size_t)(e - b) < 64) {
            memcpy(names[n], b, (size_t)(e - b));
            names[n][e - b] = '\0';
            n++;
        }
    }
    return n;
}

/* The header's value of each constant the doc must state. */
static const struct {
    const char *name;
    uint64_t value;
} g_header[] = {
    {"PROCBUS_MAGIC", PROCBUS_MAGIC},
    {"PROCBUS_ABI_MAJOR", PROCBUS_ABI_MAJOR},
    {"PROCBUS_ABI_MINOR", PROCBUS_ABI_MINOR},
    {"PROCBUS_HEADER_SIZE", PROCBUS_HEADER_SIZE},
    {"PROCBUS_PROC_MIN_SIZE", PROCBUS_PROC_MIN_SIZE},
    {"PROCBUS_NAME_LEN", PROCBUS_NAME_LEN},
    {"PROCBUS_COMM_LEN", PROCBUS_COMM_LEN},
    {"PROCBUS_CMDLINE_LEN", PROCBUS_CMDLINE_LEN},
    {"PROCBUS_EVENT_SIZE", PROCBUS_EVENT_SIZE},
    {"PROCBUS_SNAP_DENSE_OFF", PROCBUS_SNAP_DENSE_OFF},
    {"PROCBUS_CUR_OFF_BITS", PROCBUS_CUR_OFF_BITS},
    {"PROCBUS_CUR_GEN_BITS", PROCBUS_CUR_GEN_BITS},
    {"PROCBUS_HB_SHUTDOWN", PROCBUS_HB_SHUTDOWN},
    {"PROCBUS_HB_GONE", PROCBUS_HB_GONE},
    {"PROCBUS_SEQ_BUSY", PROCBUS_SEQ_BUSY},
    {"PROCBUS_MAX_CAPACITY", PROCBUS_MAX_CAPACITY},
    {"PROCBUS_MAX_SNAP_SLOTS", PROCBUS_MAX_SNAP_SLOTS},
    {"PROCBUS_MAX_RING", PROCBUS_MAX_RING},
    {"PROCBUS_MAX_SEGMENT", PROCBUS_MAX_SEGMENT},
    {"PROCBUS_MAX_HEARTBEAT_NS", PROCBUS_MAX_HEARTBEAT_NS},
    {"PROCBUS_FNV_BASIS", PROCBUS_FNV_BASIS},
    {"PROCBUS_FNV_PRIME", PROCBUS_FNV_PRIME},
    {"PROCBUS_HOME_MULT", PROCBUS_HOME_MULT},
    {"PROCBUS_READ_RETRIES", PROCBUS_READ_RETRIES},
    {"PROCBUS_STALE_AFTER_NS", PROCBUS_STALE_AFTER_NS},
    {"PROCBUS_STALE_BEATS", PROCBUS_STALE_BEATS},
    {"PROCBUS_STALE_MIN_NS", PROCBUS_STALE_MIN_NS},
    {"PROCBUS_PATH_MAX", PROCBUS_PATH_MAX},
};
#define NHEADER (sizeof(g_header) / sizeof(g_header[0]))

/*
 * The doc states every constant a reader needs, with the header's value; it
 * states no constant the header does not have; the doc reader uses the doc's
 * values; and the worked example's numbers are what both hash functions give.
 */
static void test_doc_constants_are_the_headers(void **state)
{
    char *doc = read_abi_doc(), names[128][64];
    size_t n, i, j;
    int bad = 0;
    (void)state;

    if (doc == NULL)
        fail_msg("docs/ABI.md not found (run from the source tree or set PROCBUS_SRCDIR)");
    for (i = 0; i < NHEADER; i++) {
        uint64_t v = 0;
        if (doc_constant(doc, g_header[i].name, &v) < 0) {
            print_error("docs/ABI.md: the Constants table does not state %s\n", g_header[i].name);
            bad++;
        } else if (v != g_header[i].value) {
            print_error("docs/ABI.md: %s is %llu there, %llu in the header\n", g_header[i].name,
                        (unsigned long long)v, (unsigned long long)g_header[i].value);
            bad++;
        }
    }
    n = doc_constant_names(doc, names, 128);
    for (i = 0; i < n; i++) {
        int known = 0;
        for (j = 0; j < NHEADER; j++)
            known |= strcmp(names[i], g_header[j].name) == 0;
        if (!known) {
            print_error("docs/ABI.md: %s is not a constant of the headers\n", names[i]);
            bad++;
        }
    }
    for (i = 0; docr_constants[i].name != NULL; i++) { /* the doc reader reads the doc */
        uint64_t v = 0;
        if (doc_constant(doc, docr_constants[i].name, &v) < 0 || v != docr_constants[i].value) {
            print_error("doc_reader.c: %s differs from docs/ABI.md\n", docr_constants[i].name);
            bad++;
        }
    }
    print_message("  %zu constants in docs/ABI.md, %zu checked against the headers\n", n,
                  (size_t)NHEADER);

    /* the worked example */
    assert_int_equal(docr_name_hash("web"), 0x0fd9bc91u);
    assert_int_equal(procbus_name_hash("web", PROCBUS_NAME_LEN), 0x0fd9bc91u);
    assert_int_equal(docr_home(0x0fd9bc91u, 8191), 2451);
    assert_int_equal(procbus_key_home(0x0fd9bc91u, 8191), 2451);
    assert_int_equal(docr_home(4242, 8191), 1484);
    assert_int_equal(procbus_key_home(4242, 8191), 1484);
    assert_int_equal(PROCBUS_BUCKET(0x0fd9bc91u, 5), 0x0fd9bc9100000006ull);
    assert_int_equal(procbus_name_hash("db", PROCBUS_NAME_LEN), 0x571cc6c3u);
    assert_int_equal(procbus_key_home(0x571cc6c3u, 8191), 5487);
    assert_int_equal(procbus_key_home(1, 8191), 1926);
    assert_non_null(strstr(doc, "265927825 = 0x0fd9bc91"));
    assert_non_null(strstr(doc, "| 2451 |"));
    assert_non_null(strstr(doc, "| 1484 |"));
    assert_non_null(strstr(doc, "0x0fd9bc9100000006"));
    assert_non_null(strstr(doc, "0x0000109200000006"));
    /* hashing stops at the first NUL, and at 64 bytes */
    {
        char a[80];
        memset(a, 'x', sizeof(a));
        assert_int_equal(docr_name_hash(a), procbus_name_hash(a, PROCBUS_NAME_LEN));
        assert_int_equal(docr_name_hash("ab\0cd"), procbus_name_hash("ab", PROCBUS_NAME_LEN));
    }
    free(doc);
    assert_int_equal(bad, 0);
}

/* ---- agreement on a churning segment ---- */

#define CHURN_CAP   64
#define CHURN_NAMES 40

/* The child: a publisher that churns (starts, exits, pid reuse, removals, renames of state)
 * until killed, committing about every 200 us. */
static void churn(const char *name, int ready_fd)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    uint64_t ids[CHURN_NAMES] = {0};
    unsigned seed = 12345;
    char c = 1;

    o.segment = name;
    o.capacity = CHURN_CAP;
    o.snap_slots = 4;
    o.ring_capacity = 256;
    if (procbus_pub_open(&p, &o) < 0)
        _exit(2);
    if (write(ready_fd, &c, 1) != 1)
        _exit(3);
    for (uint64_t round = 0;; round++) {
        int changes = 1 + (int)(rand_r(&seed) % 6);
        for (int k = 0; k < changes; k++) {
            int i = (int)(rand_r(&seed) % CHURN_NAMES);
            struct procbus_proc rec;
            char nm[32];

            if (ids[i] != 0 && rand_r(&seed) % 8 == 0) {
                (void)procbus_pub_remove(p, ids[i]);
                ids[i] = 0;
                continue;
            }
            if (ids[i] == 0)
                ids[i] = procbus_pub_new_id(p);
            snprintf(nm, sizeof(nm), "svc-%d", i);
            /* pids from a small range: reuse, and records sharing a pid (newest wins) */
            pbt_fill(&rec, ids[i], (int32_t)(1000 + rand_r(&seed) % 50), nm,
                     (uint16_t)(1 + rand_r(&seed) % 8));
            rec.start_boot_ns = round * 100 + (uint64_t)k;
            if (rand_r(&seed) % 5 == 0)
                rec.pid = 0; /* never ran: not in by_pid */
            if (rand_r(&seed) % 7 == 0)
                rec.name[0] = '\0'; /* traced-like: not in by_name */
            if (procbus_pub_upsert(p, &rec) < 0 && procbus_pub_commit(p) < 0)
                _exit(4); /* full (the reserve): commit and go on */
        }
        if (procbus_pub_commit(p) < 0)
            _exit(5);
        procbus_pub_heartbeat(p);
        usleep(200);
    }
}

static int rec_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct procbus_proc *)a)->id, y = ((const struct procbus_proc *)b)->id;
    return x < y ? -1 : x > y;
}

static int drec_cmp(const void *a, const void *b)
{
    uint64_t x = docr_u64(((const struct docr_proc *)a)->b, 8);
    uint64_t y = docr_u64(((const struct docr_proc *)b)->b, 8);
    return x < y ? -1 : x > y;
}

/* One side's event stream: it must account for every sequence from its start exactly once. */
struct stream {
    uint64_t start, returned, missed, last;
    int have_last, bad;
};

static void account(struct stream *s, uint64_t seq, uint64_t missed)
{
    s->missed += missed;
    if (s->have_last && seq <= s->last)
        s->bad = 1;
    s->last = seq;
    s->have_last = 1;
    s->returned++;
}

/*
 * A reader written from docs/ABI.md alone agrees with procbus.h on a churning
 * segment: at equal generation, the same records, byte for byte (lists, and
 * lookups by pid and by name); the same events for the same sequence numbers;
 * and each side's returned events plus its missed counts cover exactly the
 * sequences from its start to its cursor.
 */
static void test_doc_reader_agrees(void **state)
{
    static struct procbus_proc a[CHURN_CAP];
    static struct docr_proc b[CHURN_CAP];
    static struct procbus_event evs[4096];
    static uint64_t evseq[4096];
    char name[64], path[128];
    struct procbus_reader r;
    struct docr d;
    struct stream sa = {0}, sb = {0};
    size_t nevs = 0;
    long rounds = 0, lists = 0, lookups = 0, same_events = 0, t0;
    long budget = (long)(3000 * pbt_scale()) + 500;
    int pfd[2];
    pid_t child;
    char c;
    (void)state;

    pbt_name(name);
    assert_int_equal(pipe(pfd), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(pfd[0]);
        churn(name, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    pbt_track_bg(child, 1);

    assert_int_equal(procbus_open(&r, name), 0);
    assert_int_equal(docr_open(&d, pbt_path(name, path)), 0);
    assert_int_equal(d.epoch, r.epoch);
    assert_int_equal(d.capacity, r.capacity);
    assert_int_equal(d.buckets, r.buckets);
    assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
    docr_seek_oldest(&d);
    sa.start = r.cursor;
    sb.start = d.cursor;

    for (t0 = pbt_now_ms(); pbt_now_ms() - t0 < budget; rounds++) {
        size_t na = 0, nb = 0;
        uint64_t gb = 0, ga;

        /* lists at equal generation */
        if (procbus_list(&r, a, CHURN_CAP, &na) == 0 &&
            docr_list(&d, b, CHURN_CAP, &nb, &gb) == 0 &&
            (ga = procbus_read_generation(&r)) == gb) {
            assert_int_equal(na, nb);
            qsort(a, na, sizeof(a[0]), rec_cmp);
            qsort(b, nb, sizeof(b[0]), drec_cmp);
            for (size_t i = 0; i < na; i++)
                assert_memory_equal(&a[i], b[i].b, sizeof(a[i]));
            lists++;
            /* lookups of what the list holds, each compared when both read one generation */
            for (size_t i = 0; i < na; i++) {
                struct procbus_proc x;
                struct docr_proc y;
                uint64_t gy = 0;
                int rx, ry;

                if (a[i].pid > 0) {
                    rx = procbus_get_pid(&r, a[i].pid, &x);
                    ry = docr_get_pid(&d, a[i].pid, &y, &gy);
                    if (rx == 0 && ry == 0 && procbus_read_generation(&r) == gy) {
                        assert_memory_equal(&x, y.b, sizeof(x));
                        lookups++;
                    }
                }
                if (a[i].name[0] != '\0') {
                    rx = procbus_get_name(&r, a[i].name, &x);
                    ry = docr_get_name(&d, a[i].name, &y, &gy);
                    if (rx == 0 && ry == 0 && procbus_read_generation(&r) == gy) {
                        assert_memory_equal(&x, y.b, sizeof(x));
                        lookups++;
                    }
                }
            }
        }
        /* events: both drain; the same sequence carries the same bytes */
        for (;;) {
            struct procbus_event ev;
            uint64_t missed = 0;
            int rc = procbus_next_event(&r, &ev, &missed);
            if (rc == -ENOENT) {
                sa.missed += missed;
                break;
            }
            if (rc == -EAGAIN)
                continue;
            assert_int_equal(rc, 0);
            account(&sa, ev.seq, missed);
            evs[nevs % 4096] = ev;
            evseq[nevs % 4096] = ev.seq;
            nevs++;
        }
        for (;;) {
            struct docr_event ev;
            uint64_t missed = 0, seq;
            int rc = docr_next_event(&d, &ev, &missed);
            if (rc == -ENOENT) {
                sb.missed += missed;
                break;
            }
            if (rc == -EAGAIN)
                continue;
            assert_int_equal(rc, 0);
            seq = docr_u64(ev.b, 0);
            account(&sb, seq, missed);
            for (size_t k = nevs > 4096 ? nevs - 4096 : 0; k < nevs; k++)
                if (evseq[k % 4096] == seq) {
                    assert_memory_equal(&evs[k % 4096], ev.b, sizeof(ev.b));
                    same_events++;
                    break;
                }
        }
    }
    kill(child, SIGKILL);
    pbt_wait_child(child);
    pbt_track_bg(child, 0);

    print_message("  %ld rounds: %ld lists and %ld lookups agreed at equal generation; "
                  "events: procbus.h %llu returned + %llu missed, doc reader %llu + %llu, "
                  "%ld compared byte for byte\n",
                  rounds, lists, lookups, (unsigned long long)sa.returned,
                  (unsigned long long)sa.missed, (unsigned long long)sb.returned,
                  (unsigned long long)sb.missed, same_events);
    assert_false(sa.bad);
    assert_false(sb.bad);
    /* every sequence accounted for exactly once, on both sides */
    assert_int_equal(sa.returned + sa.missed, r.cursor - sa.start);
    assert_int_equal(sb.returned + sb.missed, d.cursor - sb.start);
    assert_true(lists > 10);
    assert_true(lookups > 100);
    assert_true(same_events > 100);
    procbus_close(&r);
    docr_close(&d);
    pbt_unlink(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_constants_are_the_headers),
        cmocka_unit_test_teardown(test_doc_reader_agrees, pbt_teardown),
    };
    return cmocka_run_group_tests_name("doc_reader", tests, NULL, NULL);
}
