/* procbus_section.h - zero-copy read sections: records by pointer into the segment, validated. */
#ifndef PROCBUS_SECTION_H
#define PROCBUS_SECTION_H

#include "procbus_core.h"

/*
 * A read section, in the kernel's read_seqbegin/read_seqretry idiom: begin on
 * the current snapshot, find records by pid or name or walk the snapshot by
 * pointer into the read-only mapping (nothing is copied), load only the fields
 * needed, then ask whether the publisher moved meanwhile:
 *
 *     struct procbus_section s;
 *     unsigned state = 0;
 *     int rc;
 *
 *     procbus_section_begin(&r, &s);
 *     do {
 *         const struct procbus_proc *p = procbus_section_name(&s, "web");
 *         state = p != NULL ? PROCBUS_FIELD(p, state) : 0;
 *     } while ((rc = procbus_section_retry(&s)) > 0);
 *     if (rc < 0)
 *         ...   (-EAGAIN, -EBADMSG, -EINVAL: nothing read is valid)
 *
 * The contract:
 *   - Values loaded inside a section are UNTRUSTED until procbus_section_retry
 *     returns 0: the publisher may be rewriting the very bytes being read (a
 *     recycled record), so a value may be torn or from a later commit. Do not
 *     act on them (index with them, print them, keep pointers) before that; a
 *     loop body must be safe to run on garbage: use values, never follow them.
 *     After 0, every value loaded since the last begin comes from one snapshot,
 *     of generation procbus_section_generation(&s).
 *   - Pointers returned by a section are bounds-checked exactly as the copying
 *     API checks (every arena slot against arena_slots, `count` against
 *     capacity, a record's `size` against record_size, at most `buckets`
 *     probes): a hostile segment gives NULL and then -EBADMSG from
 *     procbus_section_retry, never a pointer outside the mapping. A record
 *     pointer is valid for sizeof(struct procbus_proc) bytes (the v1 fields)
 *     and only until the section ends; it points into PROT_READ memory.
 *   - Load scalar fields with PROCBUS_FIELD (a relaxed atomic load: one plain
 *     load the compiler may neither repeat nor invent) and strings with the
 *     accessors below (procbus_rec_name, _comm, _cmdline), which copy into
 *     caller memory and clamp every length. A record's bytes may lie between
 *     two writes of the publisher; only the generation check says they do not.
 *   - A section holds nothing: leaving the loop early (break, return) is
 *     allowed and validates nothing. Begin again for a new read.
 *
 * Context: one section at a time per reader (the section updates r's
 * statistics and its cached snapshot offset); any number of readers in any
 * processes. No system call, no lock, no allocation. Ordering: ABI.md read
 * steps 1-4 - procbus_section_begin makes steps 1-2 (acquire loads of
 * `current` and of the slot's gen), the lookups step 3, procbus_section_retry
 * step 4 (acquire fence, then the re-check of the slot's gen).
 */

#ifdef __cplusplus
extern "C" {
#endif

/* A read section (procbus_section_begin). Caller-owned; treat the fields as private. */
struct procbus_section {
    struct procbus_reader *r;
    const unsigned char *snap; /* the slot being read; NULL: the section failed (err) */
    const unsigned char *look; /* snap while the attempt has met no error, else NULL: the one
                                  test of the lookups and of retry's usual case */
    uint64_t gen;              /* the slot's generation when the attempt began */
    int err;                   /* 0, or the error this attempt ends with */
    unsigned attempt;          /* attempts so far: at most PROCBUS_READ_RETRIES */
};

/*
 * PROCBUS_FIELD(p, field) - load one scalar field of record p (from a
 * section) with a relaxed atomic load: the value as one load saw it, untrusted
 * until procbus_section_retry returns 0. Not for the arrays (name, comm,
 * cmdline): use procbus_rec_name and friends.
 */
#define PROCBUS_FIELD(p, field) __atomic_load_n(&(p)->field, __ATOMIC_RELAXED)

/* ---- internals (procbus__ prefix: not part of the API) ---- */

/* Is `off` (from `current`) the start of a snapshot slot? 0 (remembered in r->cur_off_ok),
 * or -EBADMSG. Out of line: run once per distinct offset. */
static PROCBUS__COLD int procbus__check_off(struct procbus_reader *r, uint64_t off)
{
    uint64_t rel;

    if (off < r->snap_off)
        return -EBADMSG;
    rel = off - r->snap_off;
    if (rel >= (uint64_t)r->snap_slots * r->snap_slot_size ||
        (uint32_t)rel % r->snap_slot_size != 0)
        return -EBADMSG;
    r->cur_off_ok = off;
    return 0;
}

/*
 * Begin a seqlock read (ABI.md read steps 1-2): find the current snapshot
 * slot. On success *snap points at it and *gen is its full generation; returns
 * 0. Returns 1 when the publisher is mid-swap (retry) and -EBADMSG for an
 * impossible `current`.
 */
static PROCBUS__HOT int procbus__begin(struct procbus_reader *r, const unsigned char **snap,
                                       uint64_t *gen)
{
    /* Read step 1: acquire, pairs with the release store of `current` in
     * commit step 5 (procbus_pub_commit): the slot it names is complete. */
    uint64_t cur = PROCBUS__LD_ACQ(&procbus__hdr(r)->current);
    uint64_t off = PROCBUS_CUR_OFF(cur), g;
    const struct procbus_snap *s;

    if (off != r->cur_off_ok && procbus__check_off(r, off) < 0)
        return -EBADMSG; /* validated once per distinct offset: avoids a division */
    s = (const struct procbus_snap *)(const void *)(r->base + off);
    /* Read step 2: acquire, pairs with the release store of the slot's gen in
     * commit step 4: the entries and count written in step 3 are visible. */
    g = PROCBUS__LD_ACQ(&s->gen);
    if (g == 0 || (g & PROCBUS_CUR_GEN_MASK) != PROCBUS_CUR_GEN(cur))
        return 1;
    *snap = r->base + off;
    *gen = g;
    return 0;
}

/* End a seqlock read (ABI.md read step 4): 1 if the slot still holds generation `gen`. */
static PROCBUS__HOT int procbus__still(const unsigned char *snap, uint64_t gen)
{
    /*
     * Read step 4: this acquire fence pairs with the release fence after the
     * `gen = 0` store of commit step 2 (and with the one in a forced lap,
     * reclaim_early in publisher.c). If step 3's loads saw any byte written
     * after that fence, the load below sees 0 or a newer gen.
     * Record bytes (procbus__copy's memcpy, the string accessors, and the
     * PROCBUS_FIELD loads of a section) race by design with the publisher's
     * staging of a recycled record: a seqlock read; one that overlapped a
     * write is discarded here. Index words and counts are loaded with
     * __atomic loads and stored with relaxed atomic stores (publisher.c
     * copy_entry), so they are not data races.
     */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return PROCBUS__LD(&((const struct procbus_snap *)(const void *)snap)->gen) == gen;
}

static PROCBUS__HOT const struct procbus_proc *procbus__rec(const struct procbus_reader *r,
                                                            uint32_t slot)
{
    return (const struct procbus_proc *)(const void *)(r->base + r->arena_off +
                                                       (uint64_t)slot * r->record_size);
}

/* A record's `size` is possible: at least the v1 record, at most the arena stride. */
static PROCBUS__HOT int procbus__rec_sane(const struct procbus_reader *r,
                                          const struct procbus_proc *p)
{
    /* PROCBUS_PROC_MIN_SIZE <= size <= record_size, in one unsigned comparison */
    return PROCBUS__LD(&p->size) - PROCBUS_PROC_MIN_SIZE <= r->record_size - PROCBUS_PROC_MIN_SIZE;
}

/*
 * Does arena record `p` really carry the key (its pid, or its name over
 * PROCBUS_NAME_LEN bytes)? A read of record bytes, like procbus__copy's: it
 * may overlap the staging of a recycled record (by design; read step 4 then
 * discards the lookup).
 */
static PROCBUS__HOT int procbus__rec_carries(const struct procbus_proc *p, int by_pid, uint32_t key,
                                             const char *name)
{
    return by_pid ? PROCBUS__LD(&p->pid) == (int32_t)key
                  : strncmp(p->name, name, PROCBUS_NAME_LEN) == 0;
}

/* Copy one record out; 0, or -EBADMSG when its size field is impossible. */
static inline int procbus__copy(const struct procbus_reader *r, const struct procbus_proc *src,
                                struct procbus_proc *out)
{
    uint32_t sz = PROCBUS__LD(&src->size);
    size_t n;

    if (sz < PROCBUS_PROC_MIN_SIZE || sz > r->record_size)
        return -EBADMSG;
    n = sz < sizeof(*out) ? sz : sizeof(*out);
    /* Keep n opaque: with a known size GCC inlines `rep movsq`, whose start-up
     * cost dominates a 384-byte copy; libc's memcpy uses vector moves. */
    __asm__("" : "+r"(n));
    memcpy(out, src, n);
    if (n < sizeof(*out))
        memset((char *)out + n, 0, sizeof(*out) - n);
    out->name[PROCBUS_NAME_LEN - 1] = '\0';
    out->comm[PROCBUS_COMM_LEN - 1] = '\0';
    if (out->cmdline_len > PROCBUS_CMDLINE_LEN)
        out->cmdline_len = PROCBUS_CMDLINE_LEN;
    return 0;
}

/* The attempt failed with `err` (kept: the first one wins); returns NULL for the callers. */
static inline const struct procbus_proc *procbus__fail(struct procbus_section *s, int err)
{
    if (s->err == 0)
        s->err = err;
    s->look = NULL;
    return NULL;
}

/* Steps 1-2 for attempt s->attempt onwards: 0, or the error (s then failed). Out of line:
 * a begin's first attempt is inlined in procbus_section_begin, this is for the retries. */
static PROCBUS__COLD int procbus__section_start(struct procbus_section *s)
{
    s->snap = s->look = NULL;
    s->err = 0;
    for (; s->attempt < PROCBUS_READ_RETRIES; s->attempt++) {
        int rc = procbus__begin(s->r, &s->snap, &s->gen);
        if (rc == 0) {
            s->look = s->snap;
            return 0;
        }
        if (rc < 0) {
            s->snap = NULL;
            return s->err = rc;
        }
        s->r->retries++; /* mid-swap: look again */
    }
    s->snap = NULL;
    return s->err = -EAGAIN;
}

/* Bucket `b` holds `key`: does the record it names carry it? 1 (*out: the record), 0 (no:
 * probe on), or -EBADMSG (an arena slot or record size out of range). */
static PROCBUS__HOT int procbus__bucket_rec(const struct procbus_reader *r, uint64_t b, int by_pid,
                                            uint32_t key, const char *name,
                                            const struct procbus_proc **out)
{
    uint32_t slot = PROCBUS_BUCKET_SLOT(b);
    const struct procbus_proc *p;

    if (slot >= r->arena_slots)
        return -EBADMSG;
    p = procbus__rec(r, slot);
    if (!procbus__rec_carries(p, by_pid, key, name))
        return 0;
    /* one entry per key: the publisher indexes the newest holder */
    if (!procbus__rec_sane(r, p))
        return -EBADMSG;
    *out = p;
    return 1;
}

/*
 * Find `key` in the index at `tbl_off` of the section's slot (ABI.md read step
 * 3): linear probing from the key's home bucket, at most `buckets` probes,
 * ending at the first empty bucket. The record, or NULL (absent, or a bounds
 * failure recorded in s->err). One plain loop: at the index's load factor
 * (<= 1/4) most keys sit in their home bucket, so its branch predicts well.
 */
static PROCBUS__HOT const struct procbus_proc *procbus__find(struct procbus_section *s,
                                                             uint64_t tbl_off, int by_pid,
                                                             uint32_t key, const char *name)
{
    const struct procbus_reader *r = s->r;
    const uint64_t *tbl = (const uint64_t *)(const void *)(s->look + tbl_off);
    uint32_t mask = r->buckets - 1, pos = procbus_key_home(key, mask), i;
    const struct procbus_proc *p = NULL;
    int rc;

    for (i = 0; i <= mask; i++, pos = (pos + 1) & mask) {
        uint64_t b = PROCBUS__LD(&tbl[pos]);

        if (b == 0)
            return NULL; /* an empty bucket: not in the table */
        if (PROCBUS_BUCKET_KEY(b) != key)
            continue;
        rc = procbus__bucket_rec(r, b, by_pid, key, name, &p);
        if (rc > 0)
            return p;
        if (rc < 0)
            return procbus__fail(s, rc);
    }
    return NULL;
}

/* ---- the API: sections ---- */

/*
 * procbus_section_begin - begin a read section on the current snapshot of `r`
 * (ABI.md read steps 1-2; retries a publisher caught mid-swap).
 * Context: an open reader; `s` is overwritten. No system call.
 * Returns: 0; or -EINVAL (r or s NULL, r not open), -EBADMSG (an impossible
 * `current`), -EAGAIN (the publisher was mid-swap PROCBUS_READ_RETRIES times).
 * On an error the section is failed: its lookups give NULL, its count 0, and
 * procbus_section_retry returns the error, so a begin/do/while loop needs no
 * check of its own (the body runs once, finding nothing).
 * Ordering: acquire loads of `current` (pairs with commit step 5) and of the
 * slot's gen (commit step 4).
 */
static PROCBUS__HOT int procbus_section_begin(struct procbus_reader *r, struct procbus_section *s)
{
    int rc;

    if (s == NULL)
        return -EINVAL;
    s->r = r;
    s->snap = s->look = NULL;
    s->gen = 0;
    s->attempt = 0;
    s->err = 0;
    if (r == NULL || r->base == NULL)
        return s->err = -EINVAL;
    rc = procbus__begin(r, &s->snap, &s->gen);
    if (rc == 0) {
        s->look = s->snap;
        return 0;
    }
    if (rc < 0)
        return s->err = rc; /* an impossible `current` (s->snap still NULL) */
    r->retries++;           /* mid-swap: the next attempts out of line */
    s->attempt = 1;
    return procbus__section_start(s);
}

/* procbus_section_retry's rare cases, out of line: a NULL or failed section, an error
 * met by a consistent read, a publisher that moved (the next attempt begins). */
static PROCBUS__COLD int procbus__retry(struct procbus_section *s)
{
    if (s == NULL)
        return -EINVAL;
    if (s->snap == NULL)
        return s->err != 0 ? s->err : -EINVAL;
    if (procbus__still(s->snap, s->gen)) {
        if (s->err != 0)
            return s->err; /* consistent, so not a torn read: the segment is corrupt */
        s->r->last_gen = s->gen;
        return 0;
    }
    s->r->retries++;
    if (++s->attempt >= PROCBUS_READ_RETRIES) {
        s->snap = s->look = NULL;
        return s->err = -EAGAIN;
    }
    return procbus__section_start(s) == 0 ? 1 : s->err;
}

/*
 * procbus_section_retry - end the attempt (ABI.md read step 4): did the
 * snapshot stay put while the section read it?
 * Context: a section begun with procbus_section_begin. No system call.
 * Returns:
 *    0  everything loaded since the begin (or the last 1) is one consistent
 *       snapshot; procbus_read_generation(r) and procbus_section_generation
 *       say which. Lookups that gave NULL found nothing.
 *    1  the publisher moved: discard everything loaded; the section has begun
 *       again on the current snapshot, run the body again.
 *   <0  -EBADMSG (a consistent read met an impossible index entry, count or
 *       record size: a corrupt segment), -EAGAIN (lapped PROCBUS_READ_RETRIES
 *       times in all), or the error procbus_section_begin returned. Nothing
 *       loaded is valid.
 * Ordering: acquire fence, then the re-load of the slot's gen (pairs with the
 * release fence of commit step 2).
 */
PROCBUS_MUST_CHECK static PROCBUS__HOT int procbus_section_retry(struct procbus_section *s)
{
    /* the usual case inline; a moved publisher, a failed section or an error out of line */
    if (s != NULL && s->look != NULL && procbus__still(s->look, s->gen)) {
        s->r->last_gen = s->gen;
        return 0;
    }
    return procbus__retry(s);
}

/*
 * procbus_section_generation - the generation of the snapshot the section's
 * current attempt reads (0 for a failed section). Trust it only once
 * procbus_section_retry returned 0. No system call. Ordering: none.
 */
static inline uint64_t procbus_section_generation(const struct procbus_section *s)
{
    return s == NULL || s->snap == NULL ? 0 : s->gen;
}

/*
 * procbus_section_pid - the record of process `pid` in the section's
 * snapshot, by pointer into the segment (the newest process when several
 * records carry the pid). O(1): one index probe sequence.
 * Context: a begun section. No system call.
 * Returns: the record, or NULL: no such pid (or pid <= 0), a failed section,
 * or a bounds failure (procbus_section_retry then says -EBADMSG, unless the
 * attempt was torn). Untrusted until procbus_section_retry returns 0.
 */
static PROCBUS__HOT const struct procbus_proc *procbus_section_pid(struct procbus_section *s,
                                                                   int32_t pid)
{
    if (s->look == NULL || pid <= 0)
        return NULL;
    return procbus__find(s, s->r->pid_off, 1, (uint32_t)pid, NULL);
}

/*
 * procbus_section_name - the record named `name` (newest wins, as for pids),
 * by pointer into the segment. O(1).
 * Context: a begun section; `name` a NUL-terminated string. No system call.
 * Returns: the record, or NULL: no such name (also for NULL, "" and names of
 * PROCBUS_NAME_LEN bytes or more, which cannot be in the table), a failed
 * section, or a bounds failure (-EBADMSG from procbus_section_retry).
 * Untrusted until procbus_section_retry returns 0.
 */
static PROCBUS__HOT const struct procbus_proc *procbus_section_name(struct procbus_section *s,
                                                                    const char *name)
{
    if (s->look == NULL || name == NULL || name[0] == '\0' ||
        strnlen(name, PROCBUS_NAME_LEN) >= PROCBUS_NAME_LEN)
        return NULL;
    return procbus__find(s, s->r->name_off, 0, procbus_name_hash(name, PROCBUS_NAME_LEN), name);
}

/*
 * procbus_section_count - how many records the section's snapshot holds
 * (procbus_section_at's range).
 * Context: a begun section. No system call.
 * Returns: the count; 0 for a failed section or an impossible count (over the
 * capacity: -EBADMSG from procbus_section_retry). Untrusted until
 * procbus_section_retry returns 0.
 */
static inline uint32_t procbus_section_count(struct procbus_section *s)
{
    uint32_t n;

    if (s->look == NULL)
        return 0;
    n = PROCBUS__LD(&((const struct procbus_snap *)(const void *)s->look)->count);
    if (n > s->r->capacity) {
        procbus__fail(s, -EBADMSG);
        return 0;
    }
    return n;
}

/*
 * procbus_section_at - record i (0 <= i < procbus_section_count) of the
 * section's snapshot, in the snapshot's order, by pointer into the segment:
 * a walk of the whole table without copying.
 * Context: a begun section. No system call.
 * Returns: the record, or NULL: i out of range, a failed section, or a bounds
 * failure (an arena slot or record size out of range: -EBADMSG from
 * procbus_section_retry; every later call of the attempt gives NULL, so a
 * walk stops). Untrusted until procbus_section_retry returns 0.
 */
static inline const struct procbus_proc *procbus_section_at(struct procbus_section *s, uint32_t i)
{
    const struct procbus_reader *r = s->r;
    const struct procbus_proc *p;
    uint32_t slot;

    if (s->look == NULL || i >= r->capacity ||
        i >= PROCBUS__LD(&((const struct procbus_snap *)(const void *)s->look)->count))
        return NULL;
    slot = PROCBUS__LD(&((const uint32_t *)(const void *)(s->look + PROCBUS_SNAP_DENSE_OFF))[i]);
    if (slot >= r->arena_slots)
        return procbus__fail(s, -EBADMSG);
    p = procbus__rec(r, slot);
    return procbus__rec_sane(r, p) ? p : procbus__fail(s, -EBADMSG);
}

/*
 * procbus_section_copy - copy record p (from this section) into *out, as the
 * copying API does: min(size, sizeof *out) bytes, the rest zeroed, name and
 * comm terminated, cmdline_len clamped to PROCBUS_CMDLINE_LEN.
 * Context: a begun section; p from it. No system call.
 * Returns: 0, or -EBADMSG (the record's size is impossible; the attempt has
 * failed). *out is untrusted until procbus_section_retry returns 0.
 */
static inline int procbus_section_copy(struct procbus_section *s, const struct procbus_proc *p,
                                       struct procbus_proc *out)
{
    if (s->snap == NULL || p == NULL || out == NULL)
        return -EINVAL;
    if (procbus__copy(s->r, p, out) < 0) {
        procbus__fail(s, -EBADMSG);
        return -EBADMSG;
    }
    return 0;
}

/* Copy a NUL-padded string field of `max` bytes into buf[cap], terminated; its length. */
static inline size_t procbus__rec_str(const char *field, size_t max, char *buf, size_t cap)
{
    size_t n;

    if (buf == NULL || cap == 0)
        return 0;
    n = cap - 1 < max - 1 ? cap - 1 : max - 1;
    memcpy(buf, field, n); /* the record's bytes once; then only caller memory is read */
    buf[n] = '\0';
    return strlen(buf);
}

/*
 * procbus_rec_name, procbus_rec_comm - copy record p's name (comm) into
 * buf[cap], NUL-terminated: at most PROCBUS_NAME_LEN - 1 (PROCBUS_COMM_LEN -
 * 1) bytes and at most cap - 1, up to the field's first NUL. The bytes are
 * untrusted (escape them before a terminal) and, inside a section, unchecked
 * until procbus_section_retry returns 0.
 * Context: p from a section. No system call.
 * Returns: the length copied (0 when buf is NULL or cap is 0: nothing written).
 */
static inline size_t procbus_rec_name(const struct procbus_proc *p, char *buf, size_t cap)
{
    return procbus__rec_str(p->name, PROCBUS_NAME_LEN, buf, cap);
}

static inline size_t procbus_rec_comm(const struct procbus_proc *p, char *buf, size_t cap)
{
    return procbus__rec_str(p->comm, PROCBUS_COMM_LEN, buf, cap);
}

/*
 * procbus_rec_cmdline - copy record p's command line (arguments separated by
 * NUL bytes) into buf[cap]: cmdline_len bytes, clamped to PROCBUS_CMDLINE_LEN
 * and to cap; a NUL follows when there is room.
 * Context: p from a section. No system call.
 * Returns: the bytes copied (0 when buf is NULL or cap is 0).
 */
static inline size_t procbus_rec_cmdline(const struct procbus_proc *p, char *buf, size_t cap)
{
    size_t n = PROCBUS_FIELD(p, cmdline_len);

    if (buf == NULL || cap == 0)
        return 0;
    if (n > PROCBUS_CMDLINE_LEN)
        n = PROCBUS_CMDLINE_LEN;
    if (n > cap)
        n = cap;
    memcpy(buf, p->cmdline, n);
    if (n < cap)
        buf[n] = '\0';
    return n;
}

/*
 * procbus_rec_is_program - 1 when record p is a supervised program's, else 0
 * (a traced process: a descendant, PROCBUS_F_DESCENDANT, or an observed
 * process, which has no name). The one rule the tools share. Works on a
 * record of a section (untrusted until the retry) and on a copy alike.
 * No system call.
 */
static inline int procbus_rec_is_program(const struct procbus_proc *p)
{
    return !(PROCBUS_FIELD(p, flags) & PROCBUS_F_DESCENDANT) && PROCBUS_FIELD(p, name[0]) != '\0';
}

/*
 * procbus_rec_name_is - 1 when record p is named `name` (compared over at
 * most PROCBUS_NAME_LEN bytes), else 0. Untrusted inside a section until
 * procbus_section_retry returns 0. No system call.
 */
static inline int procbus_rec_name_is(const struct procbus_proc *p, const char *name)
{
    return name != NULL && strncmp(p->name, name, PROCBUS_NAME_LEN) == 0;
}

#ifdef __cplusplus
}
#endif

#endif /* PROCBUS_SECTION_H */
