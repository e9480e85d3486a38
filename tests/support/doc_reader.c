/* doc_reader.c - a second procbus reader, written from docs/ABI.md alone (no procbus header). */
#define _GNU_SOURCE
#include "doc_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(PROCBUS_ABI_H) || defined(PROCBUS_H)
#error "the doc reader is written from docs/ABI.md alone: no procbus header"
#endif

/* docs/ABI.md, "Constants" (the names are the doc's). */
#define DR_MAGIC          0x00535542434f5250ull
#define DR_ABI_MAJOR      1u
#define DR_HEADER_SIZE    4096u
#define DR_PROC_MIN_SIZE  384u
#define DR_NAME_LEN       64u
#define DR_COMM_LEN       16u
#define DR_CMDLINE_LEN    208u
#define DR_EVENT_SIZE     64u
#define DR_SNAP_DENSE_OFF 64u
#define DR_CUR_OFF_BITS   24u
#define DR_CUR_GEN_BITS   40u
#define DR_SEQ_BUSY       18446744073709551615ull
#define DR_MAX_CAPACITY   4194304u
#define DR_MAX_SNAP_SLOTS 64u
#define DR_MAX_RING       16777216u
#define DR_MAX_SEGMENT    68719476736ull
#define DR_FNV_BASIS      2166136261u
#define DR_FNV_PRIME      16777619u
#define DR_HOME_MULT      0x9E3779B1u
#define DR_READ_RETRIES   64

const struct docr_const docr_constants[] = {
    {"PROCBUS_MAGIC", DR_MAGIC},
    {"PROCBUS_ABI_MAJOR", DR_ABI_MAJOR},
    {"PROCBUS_HEADER_SIZE", DR_HEADER_SIZE},
    {"PROCBUS_PROC_MIN_SIZE", DR_PROC_MIN_SIZE},
    {"PROCBUS_NAME_LEN", DR_NAME_LEN},
    {"PROCBUS_COMM_LEN", DR_COMM_LEN},
    {"PROCBUS_CMDLINE_LEN", DR_CMDLINE_LEN},
    {"PROCBUS_EVENT_SIZE", DR_EVENT_SIZE},
    {"PROCBUS_SNAP_DENSE_OFF", DR_SNAP_DENSE_OFF},
    {"PROCBUS_CUR_OFF_BITS", DR_CUR_OFF_BITS},
    {"PROCBUS_CUR_GEN_BITS", DR_CUR_GEN_BITS},
    {"PROCBUS_SEQ_BUSY", DR_SEQ_BUSY},
    {"PROCBUS_MAX_CAPACITY", DR_MAX_CAPACITY},
    {"PROCBUS_MAX_SNAP_SLOTS", DR_MAX_SNAP_SLOTS},
    {"PROCBUS_MAX_RING", DR_MAX_RING},
    {"PROCBUS_MAX_SEGMENT", DR_MAX_SEGMENT},
    {"PROCBUS_FNV_BASIS", DR_FNV_BASIS},
    {"PROCBUS_FNV_PRIME", DR_FNV_PRIME},
    {"PROCBUS_HOME_MULT", DR_HOME_MULT},
    {"PROCBUS_READ_RETRIES", DR_READ_RETRIES},
    {NULL, 0},
};

/* Header offsets ("Header block"). */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_SEGMENT_SIZE = 16,
    H_EPOCH = 40,
    H_RING_FIRST = 56,
    H_RECORD_SIZE = 64,
    H_CAPACITY = 68,
    H_ARENA_SLOTS = 72,
    H_SNAP_SLOTS = 76,
    H_SNAP_SLOT_SIZE = 80,
    H_BUCKETS = 84,
    H_SNAP_OFF = 88,
    H_ARENA_OFF = 96,
    H_RING_OFF = 104,
    H_RING_CAP = 112,
    H_EVENT_SIZE = 116,
    H_CURRENT = 128,
    H_RING_HEAD = 144
};
/* Record offsets ("Record"), event offsets ("Event"). */
enum { R_SIZE = 0, R_PID = 24, R_CMDLINE_LEN = 76, R_COMM = 96, R_NAME = 112 };
enum { E_SEQ = 0, E_NAME = 48 };

uint16_t docr_u16(const unsigned char *b, size_t off)
{
    uint16_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

uint32_t docr_u32(const unsigned char *b, size_t off)
{
    uint32_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

uint64_t docr_u64(const unsigned char *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

/* The words the protocol loads with an ordering: naturally aligned, loaded atomically. */
static uint64_t ld64(const unsigned char *p, int order)
{
    return __atomic_load_n((const uint64_t *)(const void *)p, order);
}

static uint32_t ld32(const unsigned char *p, int order)
{
    return __atomic_load_n((const uint32_t *)(const void *)p, order);
}

uint32_t docr_name_hash(const char *name)
{
    uint32_t h = DR_FNV_BASIS;
    for (size_t i = 0; i < DR_NAME_LEN && name[i] != '\0'; i++) {
        h ^= (unsigned char)name[i];
        h *= DR_FNV_PRIME;
    }
    return h;
}

uint32_t docr_home(uint32_t key, uint32_t mask)
{
    uint32_t h = key * DR_HOME_MULT;
    return (h ^ (h >> 16)) & mask;
}

static int pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* [off, off + size) within [lo, hi) */
static int within(uint64_t off, uint64_t size, uint64_t lo, uint64_t hi)
{
    return off >= lo && off <= hi && size <= hi - off;
}

/* "Validation (what a reader checks, in order)". */
static int validate(struct docr *d, const unsigned char *b, size_t len)
{
    uint32_t version, cap, bk, slots, ssz, rsz, arena, ring;
    uint64_t seg, pid_off, name_off, snap_end, arena_end, ring_end, so, ao, ro;

    if (len < 8 || docr_u64(b, H_MAGIC) != DR_MAGIC) /* 1 */
        return -EPROTO;
    if (len < DR_HEADER_SIZE)
        return -EBADMSG;
    version = ld32(b + H_VERSION, __ATOMIC_ACQUIRE); /* 2: creation step 2 */
    if (version == 0)
        return -EINPROGRESS;
    if ((version >> 16) != DR_ABI_MAJOR)
        return -EPROTO;
    seg = docr_u64(b, H_SEGMENT_SIZE); /* 3 */
    if (docr_u32(b, H_HEADER_SIZE) != DR_HEADER_SIZE || seg != len || seg > DR_MAX_SEGMENT)
        return -EBADMSG;
    cap = docr_u32(b, H_CAPACITY); /* 4 */
    bk = docr_u32(b, H_BUCKETS);
    if (cap < 1 || cap > DR_MAX_CAPACITY || !pow2(bk) || bk <= cap || bk > 2 * DR_MAX_CAPACITY)
        return -EBADMSG;
    slots = docr_u32(b, H_SNAP_SLOTS); /* 5 */
    ssz = docr_u32(b, H_SNAP_SLOT_SIZE);
    pid_off = DR_SNAP_DENSE_OFF + ((4ull * cap + 7) & ~7ull);
    name_off = pid_off + 8ull * bk;
    if (slots < 2 || slots > DR_MAX_SNAP_SLOTS || ssz % 64 || ssz < name_off + 8ull * bk)
        return -EBADMSG;
    rsz = docr_u32(b, H_RECORD_SIZE); /* 6 */
    arena = docr_u32(b, H_ARENA_SLOTS);
    if (rsz < DR_PROC_MIN_SIZE || rsz % 64 || arena < cap || arena >= 0xffffffffu)
        return -EBADMSG;
    ring = docr_u32(b, H_RING_CAP); /* 7 */
    if (!pow2(ring) || ring > DR_MAX_RING || docr_u32(b, H_EVENT_SIZE) != DR_EVENT_SIZE)
        return -EBADMSG;
    so = docr_u64(b, H_SNAP_OFF); /* 8 */
    ao = docr_u64(b, H_ARENA_OFF);
    ro = docr_u64(b, H_RING_OFF);
    snap_end = (uint64_t)slots * ssz;
    arena_end = (uint64_t)arena * rsz;
    ring_end = (uint64_t)ring * DR_EVENT_SIZE;
    if (so % 64 || ao % 64 || ro % 64 || !within(so, snap_end, DR_HEADER_SIZE, seg) ||
        !within(ao, arena_end, DR_HEADER_SIZE, seg) || !within(ro, ring_end, DR_HEADER_SIZE, seg) ||
        so + snap_end > ao || ao + arena_end > ro || so + snap_end > (1ull << DR_CUR_OFF_BITS) * 64)
        return -EBADMSG;
    d->base = b;
    d->len = len;
    d->capacity = cap;
    d->buckets = bk;
    d->snap_slots = slots;
    d->snap_slot_size = ssz;
    d->record_size = rsz;
    d->arena_slots = arena;
    d->ring_cap = ring;
    d->snap_off = so;
    d->arena_off = ao;
    d->ring_off = ro;
    d->pid_off = pid_off;
    d->name_off = name_off;
    d->ring_first = docr_u64(b, H_RING_FIRST);
    d->epoch = docr_u64(b, H_EPOCH);
    d->cursor = ld64(b + H_RING_HEAD, __ATOMIC_ACQUIRE); /* events step 1 */
    if (d->cursor < d->ring_first)
        d->cursor = d->ring_first;
    d->skipped = 0;
    return 0;
}

int docr_open(struct docr *d, const char *path)
{
    struct stat st;
    void *m;
    int fd, rc;

    memset(d, 0, sizeof(*d));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
        close(fd);
        return -EPROTO;
    }
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    rc = -errno;
    close(fd);
    if (m == MAP_FAILED)
        return rc;
    rc = validate(d, m, (size_t)st.st_size);
    if (rc < 0)
        munmap(m, (size_t)st.st_size);
    return rc;
}

void docr_close(struct docr *d)
{
    if (d->base != NULL)
        munmap((void *)d->base, d->len);
    d->base = NULL;
}

/* Read steps 1-2: the current slot and its generation. 0; 1 (moving: retry); -EBADMSG. */
static int begin(struct docr *d, const unsigned char **slot, uint64_t *gen)
{
    uint64_t cur = ld64(d->base + H_CURRENT, __ATOMIC_ACQUIRE);
    uint64_t off = (cur & ((1ull << DR_CUR_OFF_BITS) - 1)) * 64, g;

    if (off < d->snap_off || (off - d->snap_off) % d->snap_slot_size != 0 ||
        off >= d->snap_off + (uint64_t)d->snap_slots * d->snap_slot_size)
        return -EBADMSG;
    g = ld64(d->base + off, __ATOMIC_ACQUIRE);
    if (g == 0 || (g & ((1ull << DR_CUR_GEN_BITS) - 1)) != cur >> DR_CUR_OFF_BITS)
        return 1;
    *slot = d->base + off;
    *gen = g;
    return 0;
}

/* Read step 4. */
static int still(const unsigned char *slot, uint64_t gen)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return ld64(slot, __ATOMIC_RELAXED) == gen;
}

static const unsigned char *rec_at(const struct docr *d, uint32_t slot)
{
    return d->base + d->arena_off + (uint64_t)slot * d->record_size;
}

/* Copy one record; 0 or -EBADMSG (its size). Terminators forced, cmdline_len clamped. */
static int copy_rec(const struct docr *d, const unsigned char *src, struct docr_proc *out)
{
    uint32_t sz = ld32(src + R_SIZE, __ATOMIC_RELAXED), cl;

    if (sz < DR_PROC_MIN_SIZE || sz > d->record_size)
        return -EBADMSG;
    memcpy(out->b, src, sizeof(out->b));
    out->b[R_NAME + DR_NAME_LEN - 1] = 0;
    out->b[R_COMM + DR_COMM_LEN - 1] = 0;
    cl = docr_u32(out->b, R_CMDLINE_LEN);
    if (cl > DR_CMDLINE_LEN) {
        cl = DR_CMDLINE_LEN;
        memcpy(out->b + R_CMDLINE_LEN, &cl, sizeof(cl));
    }
    return 0;
}

int docr_list(struct docr *d, struct docr_proc *out, size_t cap, size_t *n, uint64_t *gen)
{
    for (int attempt = 0; attempt < DR_READ_RETRIES; attempt++) {
        const unsigned char *slot;
        uint64_t g;
        uint32_t count;
        int rc = begin(d, &slot, &g), bad = 0;

        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        count = ld32(slot + 8, __ATOMIC_RELAXED);
        if (count > d->capacity)
            bad = 1;
        for (uint32_t i = 0; !bad && count <= cap && i < count; i++) {
            uint32_t s = ld32(slot + DR_SNAP_DENSE_OFF + 4ull * i, __ATOMIC_RELAXED);
            bad = s >= d->arena_slots || copy_rec(d, rec_at(d, s), &out[i]) < 0;
        }
        if (!still(slot, g))
            continue;
        if (bad)
            return -EBADMSG;
        *n = count;
        *gen = g;
        return count > cap ? -ENOSPC : 0;
    }
    return -EAGAIN;
}

/* A lookup in one index (by_pid: match the pid, else the name). */
static int lookup(struct docr *d, int by_pid, uint32_t key, const char *name, struct docr_proc *out,
                  uint64_t *gen)
{
    for (int attempt = 0; attempt < DR_READ_RETRIES; attempt++) {
        const unsigned char *slot, *tbl, *best = NULL;
        uint64_t g;
        uint32_t mask = d->buckets - 1, pos;
        int rc = begin(d, &slot, &g), bad = 0;

        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        tbl = slot + (by_pid ? d->pid_off : d->name_off);
        pos = docr_home(key, mask);
        for (uint32_t i = 0; i < d->buckets; i++, pos = (pos + 1) & mask) {
            uint64_t b = ld64(tbl + 8ull * pos, __ATOMIC_RELAXED);
            const unsigned char *p;
            uint32_t s;

            if (b == 0)
                break;
            if ((uint32_t)(b >> 32) != key)
                continue;
            s = (uint32_t)(b & 0xffffffffu) - 1;
            if (s >= d->arena_slots) {
                bad = 1;
                break;
            }
            p = rec_at(d, s);
            if (by_pid) {
                if ((int32_t)ld32(p + R_PID, __ATOMIC_RELAXED) != (int32_t)key)
                    continue;
            } else {
                char here[DR_NAME_LEN];
                memcpy(here, p + R_NAME, sizeof(here));
                if (strncmp(here, name, DR_NAME_LEN) != 0)
                    continue;
            }
            best = p;
            break;
        }
        if (!bad && best != NULL && copy_rec(d, best, out) < 0)
            bad = 1;
        if (!still(slot, g))
            continue;
        if (bad)
            return -EBADMSG;
        if (best == NULL)
            return -ENOENT;
        *gen = g;
        return 0;
    }
    return -EAGAIN;
}

int docr_get_pid(struct docr *d, int32_t pid, struct docr_proc *out, uint64_t *gen)
{
    if (pid <= 0) /* "a record with pid 0 is not in by_pid" */
        return -ENOENT;
    return lookup(d, 1, (uint32_t)pid, NULL, out, gen);
}

int docr_get_name(struct docr *d, const char *name, struct docr_proc *out, uint64_t *gen)
{
    if (name[0] == '\0' || strlen(name) >= DR_NAME_LEN)
        return -ENOENT;
    return lookup(d, 0, docr_name_hash(name), name, out, gen);
}

void docr_seek_oldest(struct docr *d)
{
    uint64_t head = ld64(d->base + H_RING_HEAD, __ATOMIC_ACQUIRE);

    d->cursor = head - d->ring_first > d->ring_cap ? head - d->ring_cap : d->ring_first;
    d->skipped = 0;
}

int docr_next_event(struct docr *d, struct docr_event *ev, uint64_t *missed)
{
    const unsigned char *ring = d->base + d->ring_off;
    uint64_t c = d->cursor < d->ring_first ? d->ring_first : d->cursor;

    for (int attempt = 0; attempt < DR_READ_RETRIES; attempt++) {
        uint64_t head = ld64(d->base + H_RING_HEAD, __ATOMIC_ACQUIRE), s; /* events step 1 */
        const unsigned char *e;

        if (c > head)
            c = head;
        if (head - c > d->ring_cap)
            c = head - d->ring_cap;
        if (c == head) {
            *missed = (c > d->cursor ? c - d->cursor : 0) + d->skipped;
            d->skipped = 0;
            d->cursor = c;
            return -ENOENT;
        }
        e = ring + (c & (d->ring_cap - 1)) * DR_EVENT_SIZE;
        s = ld64(e + E_SEQ, __ATOMIC_ACQUIRE); /* events step 2 */
        if (s != c) {
            if (s != DR_SEQ_BUSY && s < c)
                return -EBADMSG;
            c++;
            continue;
        }
        memcpy(ev->b, e, sizeof(ev->b));
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* events step 3 */
        if (ld64(e + E_SEQ, __ATOMIC_RELAXED) != c) {
            c++;
            continue;
        }
        ev->b[E_NAME + DR_COMM_LEN - 1] = 0;
        *missed = (c > d->cursor ? c - d->cursor : 0) + d->skipped;
        d->skipped = 0;
        d->cursor = c + 1;
        return 0;
    }
    if (c > d->cursor) {
        d->skipped += c - d->cursor;
        d->cursor = c;
    }
    return -EAGAIN;
}
