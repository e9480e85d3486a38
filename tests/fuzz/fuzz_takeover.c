/* fuzz_takeover.c - libFuzzer target: input bytes as a dead predecessor segment at the name a
 * publisher takes over; what the new segment inherits must stay sound. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"

/*
 * Each input is written as the file at the segment's path (a predecessor whose publisher is
 * gone: no lock on it), then procbus_pub_open takes the name over (ABI.md "Creation": the
 * predecessor is validated before anything is inherited). Either the takeover is refused with
 * a documented error and the file is left as it was, or the new segment at the name is sound:
 * it validates, its epoch is 1 or the predecessor's + 1 (never 0: no wrap), its generation and
 * sequence numbers are below 2^62 (room to go on, never near PROCBUS_SEQ_BUSY), its first event
 * is the EPOCH event naming that epoch, and a commit works. A violation aborts (a crash for
 * libFuzzer). The publisher runs with ASan and UBSan like the reader target.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                             \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "fuzz_takeover: contract violated: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

static char g_dir[64], g_path[128];

static void cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

static void setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/pbfuzz-takeover-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        abort();
    snprintf(g_path, sizeof(g_path), "%s/seg", g_dir);
    atexit(cleanup);
}

/* The predecessor's epoch as the takeover may read it (only if it validates). */
static uint64_t pred_epoch(const uint8_t *data, size_t size)
{
    struct procbus_header h;

    if (size < sizeof(h))
        return 0;
    memcpy(&h, data, sizeof(h));
    return h.epoch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct procbus_pub_opts o;
    struct procbus_pub *p = NULL;
    struct procbus_reader r;
    struct procbus_event ev;
    struct procbus_proc rec;
    uint64_t missed, epoch;
    int fd, rc;

    if (g_dir[0] == '\0')
        setup();
    fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);

    memset(&o, 0, sizeof(o));
    o.segment = g_path;
    o.capacity = 4;
    o.snap_slots = 2;
    o.ring_capacity = 16;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0) {
        struct stat st;
        REQUIRE(rc == -EEXIST); /* not a procbus segment: refused, left alone */
        REQUIRE(stat(g_path, &st) == 0 && (size_t)st.st_size == size);
        unlink(g_path);
        return 0;
    }
    epoch = procbus_pub_epoch(p);
    REQUIRE(epoch >= 1 && epoch <= (1ULL << 62));
    REQUIRE(epoch == 1 || epoch == pred_epoch(data, size) + 1);
    REQUIRE(procbus_pub_generation(p) >= 1 && procbus_pub_generation(p) <= (1ULL << 62));

    REQUIRE(procbus_open(&r, g_path) == 0);
    REQUIRE(r.epoch == epoch);
    REQUIRE(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST) == 0);
    REQUIRE(procbus_next_event(&r, &ev, &missed) == 0);
    REQUIRE(ev.kind == PROCBUS_EV_EPOCH && ev.record_id == epoch && missed == 0);
    REQUIRE(ev.seq < (1ULL << 62));
    memset(&rec, 0, sizeof(rec));
    rec.id = procbus_pub_new_id(p);
    rec.pid = 42;
    rec.state = PROCBUS_STATE_RUNNING;
    snprintf(rec.name, sizeof(rec.name), "svc");
    REQUIRE(procbus_pub_upsert(p, &rec) == 0);
    REQUIRE(procbus_pub_commit(p) == 0);
    REQUIRE(procbus_get_name(&r, "svc", &rec) == 0 && rec.pid == 42);
    REQUIRE(procbus_next_event(&r, &ev, &missed) == 0 && ev.kind == PROCBUS_EV_ADD);
    procbus_close(&r);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    return 0;
}
