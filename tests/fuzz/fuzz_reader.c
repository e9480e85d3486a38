/* fuzz_reader.c - libFuzzer target: input bytes as a segment; reader calls must stay in bounds. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procbus.h"

/*
 * The input bytes are copied into a 64-byte-aligned buffer (as a mapping
 * would be) whose bytes past the input are poisoned for ASan, so a read even
 * one byte past the end is reported. procbus_attach validates the copy; when
 * it accepts it, every read call runs with lookup keys taken from the input
 * and from what list returned. No system calls: no files, no clocks, no
 * allocation for inputs up to BUF_MAX. A contract violation (an undocumented
 * return code, an unterminated string, an event sequence out of order)
 * aborts, which libFuzzer reports as a crash.
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

#define BUF_MAX     (1u << 20)
#define LIST_MAX    64
#define EVENT_CALLS 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Alignas(64) unsigned char g_buf[BUF_MAX];
static struct procbus_proc g_list[LIST_MAX];

#define REQUIRE(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_reader: contract violated: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static int lookup_rc_ok(int rc)
{
    return rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EBADMSG;
}

static void check_rec(const struct procbus_reader *r, const struct procbus_proc *p)
{
    REQUIRE(strnlen(p->name, PROCBUS_NAME_LEN) < PROCBUS_NAME_LEN);
    REQUIRE(strnlen(p->comm, PROCBUS_COMM_LEN) < PROCBUS_COMM_LEN);
    REQUIRE(p->cmdline_len <= PROCBUS_CMDLINE_LEN);
    REQUIRE(p->size >= PROCBUS_PROC_MIN_SIZE && p->size <= r->record_size);
}

static void get_pid(struct procbus_reader *r, int32_t pid)
{
    struct procbus_proc out;
    int rc = procbus_get_pid(r, pid, &out);

    REQUIRE(lookup_rc_ok(rc));
    if (rc == 0) {
        check_rec(r, &out);
        REQUIRE(out.pid == pid);
    }
}

static void get_name(struct procbus_reader *r, const char *name)
{
    struct procbus_proc out;
    int rc = procbus_get_name(r, name, &out);

    REQUIRE(lookup_rc_ok(rc) || (rc == -ENAMETOOLONG && strlen(name) >= PROCBUS_NAME_LEN));
    if (rc == 0) {
        check_rec(r, &out);
        REQUIRE(strcmp(out.name, name) == 0);
    }
}

static void read_events(struct procbus_reader *r)
{
    struct procbus_event ev;
    uint64_t missed;
    int calls, rc = 0;

    for (calls = 0; calls < EVENT_CALLS; calls++) {
        uint64_t before = r->cursor, carried = r->skipped;
        rc = procbus_next_event(r, &ev, &missed);
        REQUIRE(rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EBADMSG);
        if (rc != 0)
            break;
        REQUIRE(ev.seq + 1 == r->cursor);
        /* exact: the gap since the cursor plus what an earlier -EAGAIN skipped */
        REQUIRE(ev.seq >= before ? missed == ev.seq - before + carried : missed == carried);
        REQUIRE(strnlen(ev.name, sizeof(ev.name)) < sizeof(ev.name));
    }
    /* a ring gives at most ring_cap events in a row before "no new event" */
    if (rc != 0)
        REQUIRE((uint64_t)calls <= r->ring_cap);
    else
        REQUIRE(r->ring_cap >= EVENT_CALLS);
}

static void exercise(const unsigned char *buf, size_t size, const uint8_t *data)
{
    struct procbus_reader r;
    struct procbus_info info;
    char name[PROCBUS_NAME_LEN];
    size_t n = 0, i, k;
    int32_t pid = 1;
    int rc;

    rc = procbus_attach(&r, buf, size);
    REQUIRE(rc == 0 || rc == -EINPROGRESS || rc == -EPROTO || rc == -EBADMSG);
    if (rc == -EINPROGRESS) { /* only for the right magic with the version word still 0 */
        const struct procbus_header *h = (const struct procbus_header *)(const void *)buf;
        REQUIRE(size >= PROCBUS_HEADER_SIZE && h->magic == PROCBUS_MAGIC && h->version == 0);
    }
    if (rc != 0)
        return;
    REQUIRE(r.len <= size && r.capacity > 0 && r.ring_cap > 0);

    /* keys from the input: its last bytes are a pid and a name */
    k = 0;
    if (size >= 4 + sizeof(name) - 1) {
        k = sizeof(name) - 1;
        memcpy(&pid, data + size - 4, sizeof(pid));
        memcpy(name, data + size - 4 - k, k);
    }
    name[k] = '\0';
    get_pid(&r, pid);
    get_pid(&r, pid & 0xffff);
    if (name[0] != '\0')
        get_name(&r, name);

    rc = procbus_list(&r, g_list, LIST_MAX, &n);
    REQUIRE(lookup_rc_ok(rc) || rc == -ENOSPC);
    REQUIRE(rc != -ENOENT);
    if (rc == 0 || rc == -ENOSPC)
        REQUIRE(n <= r.capacity);
    if (rc == -ENOSPC)
        REQUIRE(n > LIST_MAX);
    if (rc == 0) {
        for (i = 0; i < n; i++)
            check_rec(&r, &g_list[i]);
        /* keys of the records themselves, so lookups reach the arena */
        for (i = 0; i < n && i < 8; i++) {
            char nm[PROCBUS_NAME_LEN];
            memcpy(nm, g_list[i].name, sizeof(nm));
            if (g_list[i].pid > 0)
                get_pid(&r, g_list[i].pid);
            if (nm[0] != '\0')
                get_name(&r, nm);
        }
    }
    rc = procbus_list(&r, NULL, 0, &n);
    REQUIRE(rc == 0 || rc == -ENOSPC || rc == -EAGAIN || rc == -EBADMSG);

    read_events(&r); /* from the head (normally nothing new) */
    REQUIRE(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST) == 0);
    read_events(&r);
    read_events(&r); /* again from wherever that stopped */
    /* a cursor carried over from another segment (procbus_follow keeps it) */
    if (size >= 4 + sizeof(name) - 1 + 8) {
        memcpy(&r.cursor, data + size - 4 - (sizeof(name) - 1) - 8, sizeof(r.cursor));
        read_events(&r);
    }

    REQUIRE(procbus_info(&r, &info) == 0);
    REQUIRE(info.capacity == r.capacity && info.ring_capacity == r.ring_cap);
    (void)procbus_generation(&r);
    procbus_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= BUF_MAX) {
        /* g_buf[0, g_hi) was addressable last time, the rest poisoned; make
         * exactly [0, size) addressable, touching only the shadow that changes */
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
