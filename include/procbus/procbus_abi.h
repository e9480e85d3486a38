/* procbus_abi.h - the shared-memory segment layout, ABI v1: the single source of truth. */
#ifndef PROCBUS_ABI_H
#define PROCBUS_ABI_H

/*
 * Everything a publisher and a reader must agree on lives here: fixed-width
 * types, byte offsets from the segment start (never pointers), and a static
 * assertion on every offset and size. docs/ABI.md is the prose spec of the
 * same layout and of the memory-ordering protocol.
 *
 * This header is included by the header-only reader, so it must compile as
 * C99 (-pedantic) and as C++ as well as C11. It declares no functions with
 * linkage (only the two static inline hash helpers at the end).
 *
 * Segment layout (all regions 64-byte aligned, sizes in the header block):
 *
 *   [0, 4096)            struct procbus_header
 *   [snap_off, ...)      snap_slots x snapshot slot (struct procbus_snap + index arrays)
 *   [arena_off, ...)     arena_slots x record (record_size bytes each, struct procbus_proc)
 *   [ring_off, ...)      ring_capacity x struct procbus_event
 */

#include <stdint.h>
#include <stddef.h>

#if defined(__cplusplus)
#define PROCBUS_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define PROCBUS_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else
#define PROCBUS_SA_CAT2(a, b) a##b
#define PROCBUS_SA_CAT(a, b)  PROCBUS_SA_CAT2(a, b)
#define PROCBUS_STATIC_ASSERT(cond, msg) \
    typedef char PROCBUS_SA_CAT(procbus_static_assert_, __LINE__)[(cond) ? 1 : -1]
#endif

/*
 * PROCBUS_MUST_CHECK marks a function whose result the caller must look at:
 * ignoring it is a bug (an unopened reader used, a staged change silently lost,
 * a commit that did not happen). GCC and Clang warn (-Wunused-result); GCC
 * warns even through a (void) cast, so the attribute is only on functions
 * where no caller has a reason to ignore the result. Empty elsewhere.
 */
#if defined(__GNUC__) || defined(__clang__)
#define PROCBUS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PROCBUS_MUST_CHECK
#endif

/* "PROCBUS" followed by a zero byte, read as a little-endian u64. */
#define PROCBUS_MAGIC     0x00535542434f5250ULL
#define PROCBUS_ABI_MAJOR 1u
/* 1.1: heartbeat_interval_ns, EPOCH record_id; 1.2: log_bytes_lost, F_ADOPTED, F_EXIT_UNKNOWN */
#define PROCBUS_ABI_MINOR              2u
#define PROCBUS_VERSION_WORD(maj, min) (((uint32_t)(maj) << 16) | (uint32_t)(min))
#define PROCBUS_DEFAULT_SEGMENT        "procbus"
#define PROCBUS_SEGMENT_ENV            "PROCBUS_SEGMENT"
#define PROCBUS_OWNER_ENV              "PROCBUS_SEGMENT_OWNER" /* a uid readers also trust */
#define PROCBUS_RUN_DIR                "/run/procbus"          /* names of a root publisher */
#define PROCBUS_SHM_DIR                "/dev/shm"              /* names of any other publisher */
#define PROCBUS_PATH_MAX               4096 /* bytes of a segment path, with its NUL (PATH_MAX) */
#define PROCBUS_HEADER_SIZE            4096u

/* Heartbeat values that are not timestamps. */
#define PROCBUS_HB_SHUTDOWN UINT64_MAX       /* publisher closed cleanly */
#define PROCBUS_HB_GONE     (UINT64_MAX - 1) /* superseded by a newer segment or removed */

/* The `current` word: generation (low 40 bits) << 24 | snapshot-slot offset / 64 (24 bits). */
#define PROCBUS_CUR_OFF_BITS 24
#define PROCBUS_CUR_GEN_BITS 40
#define PROCBUS_CUR_GEN_MASK ((1ULL << PROCBUS_CUR_GEN_BITS) - 1)
#define PROCBUS_CUR_OFF_MASK ((1ULL << PROCBUS_CUR_OFF_BITS) - 1)
#define PROCBUS_CUR_PACK(gen, off) \
    ((((uint64_t)(gen)&PROCBUS_CUR_GEN_MASK) << PROCBUS_CUR_OFF_BITS) | ((uint64_t)(off) >> 6))
#define PROCBUS_CUR_GEN(cur) ((uint64_t)(cur) >> PROCBUS_CUR_OFF_BITS)
#define PROCBUS_CUR_OFF(cur) (((uint64_t)(cur)&PROCBUS_CUR_OFF_MASK) << 6)

/* Snapshot index buckets: 0 = empty, else key << 32 | (arena slot + 1). */
#define PROCBUS_BUCKET(key, slot) (((uint64_t)(uint32_t)(key) << 32) | ((uint64_t)(slot) + 1))
#define PROCBUS_BUCKET_KEY(b)     ((uint32_t)((b) >> 32))
#define PROCBUS_BUCKET_SLOT(b)    ((uint32_t)((b)&0xffffffffu) - 1u)

/* Process states: supervisord's set, plus what the tracer reports. */
enum procbus_state {
    PROCBUS_STATE_UNKNOWN = 0,
    PROCBUS_STATE_STOPPED = 1,
    PROCBUS_STATE_STARTING = 2,
    PROCBUS_STATE_RUNNING = 3,
    PROCBUS_STATE_BACKOFF = 4,
    PROCBUS_STATE_STOPPING = 5,
    PROCBUS_STATE_EXITED = 6,
    PROCBUS_STATE_FATAL = 7,
    PROCBUS_STATE_READY = 8, /* running and reported readiness */
    PROCBUS_STATE_COUNT_ = 9
};

/* How the last run ended (procbus_proc.exit_kind, procbus_event.exit_kind). */
enum procbus_exit_kind {
    PROCBUS_EXIT_NONE = 0,   /* still running, or never ran */
    PROCBUS_EXIT_CODE = 1,   /* exited; exit_code is the status code */
    PROCBUS_EXIT_SIGNAL = 2, /* killed; exit_code is the signal number */
};

/* procbus_proc.flags */
#define PROCBUS_F_CMDLINE_TRUNCATED 0x1u /* cmdline holds a prefix of the real one */
#define PROCBUS_F_DESCENDANT        0x2u /* not supervised itself; see program_id */
#define PROCBUS_F_PREEXISTING       0x4u /* existed before the publisher started watching */
#define PROCBUS_F_CORE_DUMPED       0x8u /* last run dumped core */
#define PROCBUS_F_ADOPTED                                     \
    0x10u /* the run was started by an earlier publisher (one \
           * that died) and adopted, pid and start checked */
#define PROCBUS_F_EXIT_UNKNOWN                                 \
    0x20u /* the run ended but nothing saw how (it ended while \
           * no publisher ran, without a tracer): exit_kind    \
           * NONE, never a made-up code */

#define PROCBUS_NAME_LEN    64
#define PROCBUS_COMM_LEN    16
#define PROCBUS_CMDLINE_LEN 208

/*
 * One process record. In the segment: immutable once a snapshot refers to it
 * (the publisher writes a changed record to a fresh arena slot). `size` is the
 * number of meaningful bytes; a later minor version appends fields after the
 * last one here, and a reader copies min(size, sizeof) and zero-fills the rest.
 * Strings are NUL-padded; a reader never relies on a terminator being present.
 * cmdline holds the arguments separated by NUL bytes, cmdline_len bytes of it.
 */
struct procbus_proc {
    uint32_t size;
    uint32_t flags;
    uint64_t id;         /* stable, never reused within an epoch; never 0 */
    uint64_t program_id; /* id of the supervised program this belongs to; 0 = none/self */
    int32_t pid; /* initial pid namespace; of the current or last run (see state); 0 = never ran */
    int32_t ppid;
    int32_t pgid;
    int32_t ns_pid; /* pid inside its own pid namespace, where it differs; else 0 */
    uint16_t state; /* enum procbus_state */
    uint8_t exit_kind;
    uint8_t reserved0;
    int32_t exit_code;          /* status code or signal number, per exit_kind */
    uint64_t start_realtime_ns; /* CLOCK_REALTIME when the current/last run started */
    uint64_t start_boot_ns;     /* CLOCK_BOOTTIME of the same instant (pid-reuse safe) */
    uint64_t state_since_ns;    /* CLOCK_REALTIME of the last state change */
    uint32_t restarts;
    uint32_t cmdline_len;
    uint64_t cpu_ns;    /* user+system CPU time of the whole tree (supervised programs) */
    uint64_t rss_bytes; /* resident memory of the whole tree */
    char comm[PROCBUS_COMM_LEN];
    char name[PROCBUS_NAME_LEN];
    char cmdline[PROCBUS_CMDLINE_LEN];
};

PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, size) == 0, "proc.size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, flags) == 4, "proc.flags");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, id) == 8, "proc.id");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, program_id) == 16, "proc.program_id");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, pid) == 24, "proc.pid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, ppid) == 28, "proc.ppid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, pgid) == 32, "proc.pgid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, ns_pid) == 36, "proc.ns_pid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, state) == 40, "proc.state");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, exit_kind) == 42, "proc.exit_kind");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, exit_code) == 44, "proc.exit_code");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, start_realtime_ns) == 48, "proc.start_rt");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, start_boot_ns) == 56, "proc.start_boot");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, state_since_ns) == 64, "proc.state_since");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, restarts) == 72, "proc.restarts");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, cmdline_len) == 76, "proc.cmdline_len");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, cpu_ns) == 80, "proc.cpu_ns");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, rss_bytes) == 88, "proc.rss_bytes");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, comm) == 96, "proc.comm");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, name) == 112, "proc.name");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_proc, cmdline) == 176, "proc.cmdline");
PROCBUS_STATIC_ASSERT(sizeof(struct procbus_proc) == 384, "proc size (ABI v1.0)");
/* Smallest record a v1 reader accepts: everything up to and including cmdline. */
#define PROCBUS_PROC_MIN_SIZE 384u

/* Event kinds (procbus_event.kind). */
enum procbus_event_kind {
    PROCBUS_EV_ADD = 1,    /* a record appeared (new_state is its state) */
    PROCBUS_EV_STATE = 2,  /* a record's state changed old_state -> new_state */
    PROCBUS_EV_REMOVE = 3, /* a record left the table */
    PROCBUS_EV_EXEC = 4,   /* a process exec'd (tracer) */
    PROCBUS_EV_EPOCH = 5,  /* a segment began (first event of every segment): record_id is
                              its epoch (1.1; 0 from a 1.0 publisher), pid its publisher's */
};

/*
 * One event-ring entry. `seq` is the 64-bit sequence number; the entry for
 * sequence n lives at index n % ring_capacity. While the publisher rewrites an
 * entry its seq holds PROCBUS_SEQ_BUSY.
 */
#define PROCBUS_SEQ_BUSY UINT64_MAX
struct procbus_event {
    uint64_t seq;
    uint64_t record_id;
    uint64_t generation; /* the commit that published it */
    uint64_t time_ns;    /* CLOCK_REALTIME */
    int32_t pid;
    int32_t exit_code; /* per exit_kind, as in procbus_proc */
    uint16_t kind;     /* enum procbus_event_kind */
    uint16_t old_state;
    uint16_t new_state;
    uint8_t exit_kind;
    uint8_t flags; /* PROCBUS_F_CORE_DUMPED when the run dumped core */
    char name[PROCBUS_COMM_LEN];
};
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, seq) == 0, "ev.seq");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, record_id) == 8, "ev.record_id");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, generation) == 16, "ev.generation");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, time_ns) == 24, "ev.time_ns");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, pid) == 32, "ev.pid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, exit_code) == 36, "ev.exit_code");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, kind) == 40, "ev.kind");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, old_state) == 42, "ev.old_state");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, new_state) == 44, "ev.new_state");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, exit_kind) == 46, "ev.exit_kind");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, flags) == 47, "ev.flags");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_event, name) == 48, "ev.name");
#define PROCBUS_EVENT_SIZE 64u
PROCBUS_STATIC_ASSERT(sizeof(struct procbus_event) == PROCBUS_EVENT_SIZE, "event size");

/*
 * Snapshot slot. snap_slots of them, each snap_slot_size bytes, at
 * snap_off + i * snap_slot_size. After the 64-byte slot header:
 *   uint32_t dense[record_capacity]   arena slot of each of the `count` records
 *   (padding to 8)
 *   uint64_t by_pid[hash_buckets]     open addressing, linear probing, key = pid
 *   uint64_t by_name[hash_buckets]    key = procbus_name_hash(name)
 * `gen` is a seqlock stamp: 0 while the publisher rewrites the slot, else the
 * full 64-bit generation the slot holds.
 */
struct procbus_snap {
    uint64_t gen;
    uint32_t count;
    uint32_t reserved0;
    uint64_t reserved[6];
};
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_snap, gen) == 0, "snap.gen");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_snap, count) == 8, "snap.count");
PROCBUS_STATIC_ASSERT(sizeof(struct procbus_snap) == 64, "snap header size");
#define PROCBUS_SNAP_DENSE_OFF              64u
#define PROCBUS_SNAP_PID_OFF(cap)           (PROCBUS_SNAP_DENSE_OFF + (((uint64_t)(cap)*4u + 7u) & ~7ULL))
#define PROCBUS_SNAP_NAME_OFF(cap, buckets) (PROCBUS_SNAP_PID_OFF(cap) + (uint64_t)(buckets)*8u)
#define PROCBUS_SNAP_BYTES(cap, buckets) \
    (PROCBUS_SNAP_NAME_OFF(cap, buckets) + (uint64_t)(buckets)*8u)

/*
 * The header block, at offset 0. Cold (written once before `version`) fields
 * first, then the hot words on their own cache lines.
 */
struct procbus_header {
    /* --- identity and geometry: written before `version`, then constant --- */
    uint64_t magic;              /*   0 PROCBUS_MAGIC */
    uint32_t version;            /*   8 PROCBUS_VERSION_WORD; written LAST, release */
    uint32_t header_size;        /*  12 PROCBUS_HEADER_SIZE */
    uint64_t segment_size;       /*  16 bytes, equals the file size */
    int32_t publisher_pid;       /*  24 */
    uint32_t flags;              /*  28 reserved, 0 */
    uint64_t publisher_start_ns; /* 32 CLOCK_BOOTTIME-based start of the publisher process */
    uint64_t epoch;              /*  40 1 for a fresh name, +1 on each takeover */
    uint64_t created_ns;         /*  48 CLOCK_REALTIME at creation */
    uint64_t ring_first;         /*  56 first event sequence this segment holds */
    uint32_t record_size;        /*  64 arena stride, >= PROCBUS_PROC_MIN_SIZE, multiple of 64 */
    uint32_t record_capacity;    /*  68 max records in one snapshot */
    uint32_t arena_slots;        /*  72 records in the arena (capacity + copy-on-write reserve) */
    uint32_t snap_slots;         /*  76 number of snapshot slots */
    uint32_t snap_slot_size;     /*  80 bytes per snapshot slot, multiple of 64 */
    uint32_t hash_buckets;       /*  84 per index, power of two, > record_capacity */
    uint64_t snap_off;           /*  88 */
    uint64_t arena_off;          /*  96 */
    uint64_t ring_off;           /* 104 */
    uint32_t ring_capacity;      /* 112 events, power of two */
    uint32_t event_size;         /* 116 sizeof(struct procbus_event) */
    uint64_t reserved1;          /* 120 */
    /* --- written by every commit (cache line 2) --- */
    uint64_t current;      /* 128 PROCBUS_CUR_PACK(gen, snapshot slot offset); release */
    uint64_t generation;   /* 136 full generation of `current`; release, after current */
    uint64_t ring_head;    /* 144 next event sequence to be written; release */
    uint32_t futex;        /* 152 bumped after every commit and at close; FUTEX_WAKE'd */
    uint32_t reserved2;    /* 156 */
    uint64_t reserved3[4]; /* 160 */
    /* --- heartbeat (cache line 3) --- */
    uint64_t heartbeat_ns;          /* 192 CLOCK_MONOTONIC, or PROCBUS_HB_SHUTDOWN / _GONE */
    uint64_t heartbeat_interval_ns; /* 200 (1.1) period of heartbeat_ns stores; 0: not said */
    uint64_t reserved4[6];          /* 208 */
    /* --- counters (cache line 4), relaxed stores by the publisher --- */
    uint64_t publishes;       /* 256 commits made by this publisher */
    uint64_t records_dropped; /* 264 upserts refused because the table was full */
    uint64_t events_dropped;  /* 272 transitions the publisher lost before the ring */
    uint64_t tracer_drops;    /* 280 kernel-side tracer reserve failures (ebpf/) */
    uint64_t
        log_bytes_lost;    /* 288 (1.2) program output the publisher could not write to its logs */
    uint64_t reserved5[3]; /* 296 */
};
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, magic) == 0, "hdr.magic");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, version) == 8, "hdr.version");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, header_size) == 12, "hdr.header_size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, segment_size) == 16, "hdr.segment_size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, publisher_pid) == 24, "hdr.pid");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, publisher_start_ns) == 32, "hdr.start");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, epoch) == 40, "hdr.epoch");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, created_ns) == 48, "hdr.created");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, ring_first) == 56, "hdr.ring_first");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, record_size) == 64, "hdr.record_size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, record_capacity) == 68, "hdr.capacity");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, arena_slots) == 72, "hdr.arena_slots");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, snap_slots) == 76, "hdr.snap_slots");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, snap_slot_size) == 80, "hdr.snap_size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, hash_buckets) == 84, "hdr.buckets");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, snap_off) == 88, "hdr.snap_off");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, arena_off) == 96, "hdr.arena_off");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, ring_off) == 104, "hdr.ring_off");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, ring_capacity) == 112, "hdr.ring_cap");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, event_size) == 116, "hdr.event_size");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, current) == 128, "hdr.current");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, generation) == 136, "hdr.generation");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, ring_head) == 144, "hdr.ring_head");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, futex) == 152, "hdr.futex");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, heartbeat_ns) == 192, "hdr.heartbeat");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, heartbeat_interval_ns) == 200, "hdr.hb_iv");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, publishes) == 256, "hdr.publishes");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, records_dropped) == 264, "hdr.rec_drop");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, events_dropped) == 272, "hdr.ev_drop");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, tracer_drops) == 280, "hdr.tracer_drops");
PROCBUS_STATIC_ASSERT(offsetof(struct procbus_header, log_bytes_lost) == 288, "hdr.log_bytes_lost");
PROCBUS_STATIC_ASSERT(sizeof(struct procbus_header) == 320, "header struct size");
PROCBUS_STATIC_ASSERT(sizeof(struct procbus_header) <= PROCBUS_HEADER_SIZE, "header fits block");

/* Geometry limits both sides enforce. */
#define PROCBUS_MAX_CAPACITY   (1u << 22) /* records per snapshot */
#define PROCBUS_MAX_SNAP_SLOTS 64u
#define PROCBUS_MAX_RING       (1u << 24)
#define PROCBUS_MAX_SEGMENT    (1ULL << 36)
/* Longest heartbeat_interval_ns a publisher states (1 hour); readers clamp larger values. */
#define PROCBUS_MAX_HEARTBEAT_NS (3600ULL * 1000000000ULL)

/*
 * Index hashing: both sides must compute exactly these (docs/ABI.md "Index
 * hashing", with a worked example). A key (a pid, or the name hash below) is
 * looked up from bucket procbus_key_home(key, buckets - 1) onwards, linear
 * probing, until an empty bucket.
 */
#define PROCBUS_HOME_MULT 0x9E3779B1u /* Fibonacci hashing: 2^32 / golden ratio */
#define PROCBUS_FNV_BASIS 2166136261u /* 32-bit FNV-1a offset basis */
#define PROCBUS_FNV_PRIME 16777619u   /* 32-bit FNV prime */

static inline uint32_t procbus_key_home(uint32_t key, uint32_t mask)
{
    uint32_t h = key * PROCBUS_HOME_MULT;
    return (h ^ (h >> 16)) & mask;
}

/* FNV-1a (32 bits) over the name's bytes up to its first NUL or maxlen (PROCBUS_NAME_LEN). */
static inline uint32_t procbus_name_hash(const char *name, size_t maxlen)
{
    uint32_t h = PROCBUS_FNV_BASIS;
    size_t i;
    for (i = 0; i < maxlen && name[i] != '\0'; i++) {
        h ^= (unsigned char)name[i];
        h *= PROCBUS_FNV_PRIME;
    }
    return h;
}

#endif /* PROCBUS_ABI_H */
