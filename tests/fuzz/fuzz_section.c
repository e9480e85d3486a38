/* fuzz_section.c - libFuzzer target: input bytes as a segment, read through zero-copy sections. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procbus.h"

/*
 * The input is a segment (copied into a 64-byte-aligned buffer whose bytes past
 * the input are poisoned for ASan, so a read one byte past the end is
 * reported) followed, in its last bytes, by the keys to look up and a script
 * of writes. When procbus_attach accepts it, sections look records up by pid
 * and by name, walk the snapshot, and load fields and strings by pointer.
 *
 * The script plays the publisher: inside a section's body, between its
 * lookups, it writes bytes into the segment (an index word, a count, a
 * record, the slot's gen, `current`), as a concurrent commit would - the
 * case a section exists for. Whatever the bytes, the body must only ever get
 * NULL or a pointer on a record boundary inside the arena; the string
 * accessors must stay within their clamps; procbus_section_retry must end the
 * loop with a documented code; and a section that validated over bytes
 * nothing wrote meanwhile must agree with the copying calls. A contract
 * violation aborts, which libFuzzer reports as a crash. No system calls.
 */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FUZZ_ASAN)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define BUF_MAX    (1u << 20)
#define LIST_MAX   64
#define SCRIPT_MAX 8 /* writes the script makes, at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Alignas(64) unsigned char g_buf[BUF_MAX];
static struct procbus_proc g_list[LIST_MAX];

#define REQUIRE(cond)                                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_section: contract violated: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* One step of the script: `len` bytes of `val` at `off` into the segment; or (commit) a
 * publisher's whole commit: the current slot copied into slot `off % snap_slots`, stamped with
 * the next generation and swapped in, the old slot reopened (gen 0). */
struct write {
    uint32_t off;
    uint8_t len, val[8];
    int commit;
};

struct script {
    struct write w[SCRIPT_MAX];
    unsigned n, next;
    unsigned char *buf;
    size_t size;
    const struct procbus_reader *r; /* the geometry procbus_attach validated */
};

/* A commit as the publisher makes it (ABI.md commit steps 2-5), on the reader's own bytes. */
static void script_commit(struct script *sc, uint32_t to)
{
    const struct procbus_reader *r = sc->r;
    struct procbus_header *h = (struct procbus_header *)(void *)sc->buf;
    uint64_t cur = h->current, from = PROCBUS_CUR_OFF(cur), dest, g;
    struct procbus_snap *old, *nw;

    dest = r->snap_off + (uint64_t)(to % r->snap_slots) * r->snap_slot_size;
    if (from < r->snap_off ||
        from + r->snap_slot_size > r->snap_off + (uint64_t)r->snap_slots * r->snap_slot_size ||
        (from - r->snap_off) % r->snap_slot_size != 0 || dest == from)
        return; /* `current` already garbage, or the same slot: nothing sensible to do */
    old = (struct procbus_snap *)(void *)(sc->buf + from);
    nw = (struct procbus_snap *)(void *)(sc->buf + dest);
    g = old->gen + 1;
    nw->gen = 0;
    memcpy((unsigned char *)nw + 8, (unsigned char *)old + 8, r->snap_slot_size - 8);
    nw->gen = g;
    h->current = PROCBUS_CUR_PACK(g, dest);
    h->generation = g;
    old->gen = 0; /* reopened for a later commit: a section still on it must retry */
}

/* Make the script's next write, if any (in the section's body, as a publisher would). */
static void script_step(struct script *sc)
{
    const struct write *w;

    if (sc->next >= sc->n)
        return;
    w = &sc->w[sc->next++];
    if (w->commit)
        script_commit(sc, w->off);
    else if (w->off < sc->size && w->len <= sc->size - w->off)
        memcpy(sc->buf + w->off, w->val, w->len);
}

/* Every pointer a section gives: on a record boundary of the arena, inside the mapping, and its
 * strings read within their clamps. Returns a value folded from its fields. */
static uint64_t check_ptr(const struct procbus_reader *r, const struct procbus_proc *p)
{
    const unsigned char *q = (const unsigned char *)p, *arena = r->base + r->arena_off;
    char buf[PROCBUS_CMDLINE_LEN + 8];
    size_t n, off;
    uint64_t v;

    REQUIRE(q >= arena);
    off = (size_t)(q - arena);
    REQUIRE(off % r->record_size == 0 && off / r->record_size < r->arena_slots);
    REQUIRE((size_t)(q - r->base) + sizeof(*p) <= r->len);
    v = PROCBUS_FIELD(p, state) + (uint64_t)PROCBUS_FIELD(p, pid) + PROCBUS_FIELD(p, cpu_ns) +
        PROCBUS_FIELD(p, rss_bytes) + PROCBUS_FIELD(p, size);
    n = procbus_rec_name(p, buf, sizeof(buf));
    REQUIRE(n < PROCBUS_NAME_LEN && buf[n] == '\0' && strlen(buf) == n);
    v += n;
    n = procbus_rec_comm(p, buf, 5);
    REQUIRE(n <= 4 && buf[n] == '\0');
    n = procbus_rec_cmdline(p, buf, sizeof(buf));
    REQUIRE(n <= PROCBUS_CMDLINE_LEN);
    REQUIRE(procbus_rec_cmdline(p, buf, 7) <= 7);
    REQUIRE(procbus_rec_name(p, NULL, 10) == 0 && procbus_rec_name(p, buf, 0) == 0);
    return v + n + (uint64_t)procbus_rec_name_is(p, "x");
}

static int section_rc_ok(int rc)
{
    return rc == 0 || rc == -EAGAIN || rc == -EBADMSG;
}

/* What run_section reads. */
#define DO_PID  1u
#define DO_NAME 2u
#define DO_WALK 4u

/*
 * One section: look up `pid` and `name`, walk up to `walk` records (as `what` says), running the
 * script's writes between the reads. Returns the section's code; *found_pid / *found_name /
 * *walked say what the attempt that ended it saw.
 */
static int run_section(struct procbus_reader *r, struct script *sc, unsigned what, int32_t pid,
                       const char *name, uint32_t walk, int *found_pid, int *found_name,
                       uint32_t *walked)
{
    struct procbus_section s;
    const struct procbus_proc *p;
    volatile uint64_t sink = 0;
    unsigned attempts = 0;
    uint32_t n, i;
    int rc;

    rc = procbus_section_begin(r, &s);
    REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EAGAIN);
    do {
        REQUIRE(++attempts <= PROCBUS_READ_RETRIES + 1); /* the loop is bounded */
        *found_pid = *found_name = 0;
        *walked = 0;
        script_step(sc);
        if (what & DO_PID) {
            p = procbus_section_pid(&s, pid);
            *found_pid = p != NULL;
            if (p != NULL) {
                sink += check_ptr(r, p);
                REQUIRE(PROCBUS_FIELD(p, pid) == pid); /* no write between the find and here */
            }
            script_step(sc);
        }
        if (what & DO_NAME) {
            p = procbus_section_name(&s, name);
            *found_name = p != NULL;
            if (p != NULL)
                sink += check_ptr(r, p);
            script_step(sc);
        }
        if (what & DO_WALK) {
            n = procbus_section_count(&s);
            REQUIRE(n <= r->capacity);
            for (i = 0; i < n && i < walk; i++) {
                if ((p = procbus_section_at(&s, i)) == NULL)
                    break;
                sink += check_ptr(r, p);
                if (i == 0)
                    script_step(sc);
            }
            *walked = i;
            /* past the count: nothing (unless a write moved the count meanwhile) */
            REQUIRE(procbus_section_at(&s, n) == NULL || sc->n > 0);
        }
    } while ((rc = procbus_section_retry(&s)) > 0);
    REQUIRE(section_rc_ok(rc));
    if (rc == 0) {
        REQUIRE(procbus_section_generation(&s) != 0);
        REQUIRE(procbus_read_generation(r) == procbus_section_generation(&s));
    }
    (void)sink;
    return rc;
}

static void exercise(unsigned char *buf, size_t size, const uint8_t *data)
{
    struct procbus_reader r;
    struct procbus_proc out;
    struct script sc;
    char name[PROCBUS_NAME_LEN];
    int32_t pid = 1;
    size_t k = 0, n = 0, tail = sizeof(name) - 1 + 4, i;
    int rc, fp, fn, rc2;
    uint32_t walked;

    rc = procbus_attach(&r, buf, size);
    REQUIRE(rc == 0 || rc == -EINPROGRESS || rc == -EPROTO || rc == -EBADMSG);
    if (rc != 0)
        return;
    REQUIRE(r.len <= size && r.capacity > 0);

    /* keys from the input's last bytes: a pid and a name */
    if (size >= tail) {
        k = sizeof(name) - 1;
        memcpy(&pid, data + size - 4, sizeof(pid));
        memcpy(name, data + size - tail, k);
    }
    name[k] = '\0';

    /* 1: no writes. Each kind of section must agree with its copying call exactly. */
    memset(&sc, 0, sizeof(sc));
    rc = run_section(&r, &sc, DO_PID, pid, name, 0, &fp, &fn, &walked);
    rc2 = procbus_get_pid(&r, pid, &out);
    REQUIRE(rc2 == (rc == 0 && !fp ? -ENOENT : rc) || (pid <= 0 && rc2 == -ENOENT));
    if (name[0] != '\0') {
        rc = run_section(&r, &sc, DO_NAME, pid, name, 0, &fp, &fn, &walked);
        rc2 = procbus_get_name(&r, name, &out);
        REQUIRE(rc2 == (rc == 0 && !fn ? -ENOENT : rc));
    }
    rc = run_section(&r, &sc, DO_WALK, pid, name, UINT32_MAX, &fp, &fn, &walked);
    rc2 = procbus_list(&r, g_list, LIST_MAX, &n);
    if (rc == 0)
        REQUIRE(walked > LIST_MAX ? rc2 == -ENOSPC && n == walked : rc2 == 0 && n == walked);
    else
        REQUIRE(rc2 == rc || (rc2 == -ENOSPC && n > LIST_MAX));

    /* keys of the records themselves, so that lookups reach the arena; all reads in one section */
    if (rc == 0 && rc2 == 0)
        for (i = 0; i < n && i < 4; i++)
            run_section(&r, &sc, DO_PID | DO_NAME | DO_WALK, g_list[i].pid, g_list[i].name, 4, &fp,
                        &fn, &walked);

    /* 2: the script plays a publisher writing while sections read. */
    memset(&sc, 0, sizeof(sc));
    sc.buf = buf;
    sc.size = r.len;
    sc.r = &r;
    if (size >= tail + 1) {
        const uint8_t *s = data + size - tail - 1;
        size_t avail = size - tail - 1, need = sizeof(uint32_t) + 1 + 8;
        unsigned want = *s % (SCRIPT_MAX + 1);
        for (sc.n = 0; sc.n < want && avail >= need; sc.n++) {
            struct write *w = &sc.w[sc.n];
            const uint8_t *p = s - need * (sc.n + 1);
            uint64_t cur_off;
            uint32_t at;
            if (p < data)
                break;
            memcpy(&at, p, sizeof(at));
            /* aim at the hot places: `current`, the slot's gen, the current slot, the arena;
             * or make a whole commit */
            cur_off = PROCBUS_CUR_OFF(((const struct procbus_header *)(const void *)buf)->current);
            w->commit = 0;
            switch (at % 6) {
            case 0:
                w->off = 128 + (at >> 3) % 8;
                break;
            case 1:
                w->off = (uint32_t)(cur_off + (at >> 3) % 8);
                break;
            case 2:
                w->off = (uint32_t)(cur_off + (at >> 3) % r.snap_slot_size);
                break;
            case 3:
                w->off =
                    (uint32_t)(r.arena_off + (at >> 3) % ((uint64_t)r.arena_slots * r.record_size));
                break;
            case 4:
                w->commit = 1;
                w->off = at >> 3;
                break;
            default:
                w->off = (at >> 3) % (uint32_t)r.len;
                break;
            }
            w->len = (uint8_t)(1 + p[4] % 8);
            memcpy(w->val, p + 5, 8);
            avail -= need;
        }
    }
    rc = run_section(&r, &sc, DO_PID | DO_NAME | DO_WALK, pid, name, UINT32_MAX, &fp, &fn, &walked);
    REQUIRE(section_rc_ok(rc));
    /* and the copying calls still keep their contract over whatever the writes left */
    rc = procbus_get_pid(&r, pid, &out);
    REQUIRE(rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EBADMSG);
    rc = procbus_list(&r, g_list, LIST_MAX, &n);
    REQUIRE(rc == 0 || rc == -ENOSPC || rc == -EAGAIN || rc == -EBADMSG);
    procbus_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= BUF_MAX) {
        /* make exactly [0, size) addressable, touching only the shadow that changes */
        static size_t g_hi = BUF_MAX;
        UNPOISON(g_buf, size);
        if (g_hi > size)
            POISON(g_buf + size, g_hi - size);
        g_hi = size;
        memcpy(g_buf, data, size);
        exercise(g_buf, size, data);
    } else {
        unsigned char *b = malloc(size); /* exact size: ASan's redzone follows it */
        if (b == NULL)
            return 0;
        memcpy(b, data, size);
        exercise(b, size, data);
        free(b);
    }
    return 0;
}
