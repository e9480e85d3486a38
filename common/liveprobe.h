/* liveprobe.h - is a segment's publisher alive? At once, for tools that may make a system call. */
#ifndef PROCBUS_LIVEPROBE_H
#define PROCBUS_LIVEPROBE_H

#include "procbus.h"

/* A verdict beyond procbus_liveness's: the publisher process is gone (killed, crashed) and
 * nobody took the segment over yet. */
#define PB_PUBLISHER_DEAD 5

/*
 * The reader's heartbeat verdict (procbus_liveness with procbus_stale_after_ns), sharpened by
 * asking the kernel: a publisher holds an exclusive flock(2) on its segment file for as long as
 * its process lives, and the kernel drops it the instant the process dies. So, unless the
 * heartbeat already says SHUTDOWN or GONE, the file at the reader's name is opened again
 * (read-only, no links followed, never blocking) and:
 *   - another file is there now, or none: PROCBUS_GONE (follow it, procbus_follow);
 *   - a LOCK_SH | LOCK_NB on it succeeds (released at once): PB_PUBLISHER_DEAD, immediately
 *     after the death rather than after the stale threshold;
 *   - it is held: PROCBUS_ALIVE, or PROCBUS_STALE when the heartbeat is old (alive but stuck:
 *     SIGSTOPped, or looping).
 * A probe holds the shared lock for a few microseconds; a publisher taking the name over
 * retries its lock for longer than that (shm/segment.c), so the probe never makes it fail.
 * The zero-syscall reader API keeps its heartbeat rule; this is for the CLI and the exporter.
 * Returns one of PROCBUS_ALIVE .. PROCBUS_GONE or PB_PUBLISHER_DEAD, or -EINVAL (r not open).
 * System calls: clock_gettime (vDSO), open, fstat, flock (twice), close.
 */
int pb_publisher_check(const struct procbus_reader *r);

#endif /* PROCBUS_LIVEPROBE_H */
