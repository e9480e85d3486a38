/* doc_reader.h - a second procbus reader, written from docs/ABI.md alone (no procbus header):
 * test_doc_reader checks that the doc is enough, by making it agree with procbus.h. */
#ifndef PROCBUS_DOC_READER_H
#define PROCBUS_DOC_READER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Everything here comes from docs/ABI.md: the offsets of its tables, the
 * numbers of its "Constants" table (under the same names, in docr_constants),
 * the hash functions of "Index hashing", the checks of "Validation", and the
 * read and events protocols. Errors are negative errno values, as the doc's.
 */

/* A record copied out: the 384 bytes of a v1 record (fields at the doc's offsets). */
struct docr_proc {
    unsigned char b[384];
};

/* An event copied out: its 64 bytes. */
struct docr_event {
    unsigned char b[64];
};

struct docr {
    const unsigned char *base;
    size_t len;
    uint32_t capacity, buckets, snap_slots, snap_slot_size, record_size, arena_slots, ring_cap;
    uint64_t snap_off, arena_off, ring_off, pid_off, name_off, ring_first, epoch;
    uint64_t cursor;  /* next event sequence */
    uint64_t skipped; /* sequences skipped by a call that gave up, reported by the next */
};

/* One number of the doc's Constants table, as this reader uses it. */
struct docr_const {
    const char *name;
    uint64_t value;
};
extern const struct docr_const docr_constants[];

/* Field accessors over a copied record or event (little-endian, the doc's offsets). */
uint32_t docr_u32(const unsigned char *b, size_t off);
uint64_t docr_u64(const unsigned char *b, size_t off);
uint16_t docr_u16(const unsigned char *b, size_t off);

/* The two hash functions of "Index hashing". */
uint32_t docr_name_hash(const char *name);
uint32_t docr_home(uint32_t key, uint32_t mask);

/* Open and validate the segment at `path` (a path: the name rule is not this reader's
 * concern). 0, or -errno. Events start at the head. */
int docr_open(struct docr *d, const char *path);
void docr_close(struct docr *d);

/* One consistent snapshot: every record into out[0..cap), *n of them, *gen its generation.
 * 0; -ENOSPC (*n needed); -EAGAIN; -EBADMSG. */
int docr_list(struct docr *d, struct docr_proc *out, size_t cap, size_t *n, uint64_t *gen);

/* Lookups in the current snapshot: 0 (*gen: its generation); -ENOENT; -EAGAIN; -EBADMSG. */
int docr_get_pid(struct docr *d, int32_t pid, struct docr_proc *out, uint64_t *gen);
int docr_get_name(struct docr *d, const char *name, struct docr_proc *out, uint64_t *gen);

/* Events: move the cursor to the oldest held; the next event after it (*missed: sequences
 * skipped before it). 0; -ENOENT (none new; *missed counts skipped ones); -EAGAIN (lapped 64
 * times: the skipped ones are reported by the next call); -EBADMSG. */
void docr_seek_oldest(struct docr *d);
int docr_next_event(struct docr *d, struct docr_event *ev, uint64_t *missed);

#endif /* PROCBUS_DOC_READER_H */
