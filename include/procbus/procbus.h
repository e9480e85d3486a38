/* procbus.h - header-only reader of a procbus segment: the read path is plain loads, no syscall. */
#ifndef PROCBUS_H
#define PROCBUS_H

/*
 * Include this header and read the process table a procbus publisher keeps in
 * shared memory. Nothing here allocates or takes a lock. Compiles as C99
 * (-pedantic) and C++; needs GCC or Clang (the __atomic builtins) and Linux.
 *
 * Context: a struct procbus_reader is used by one thread at a time (use one
 * per thread). Any number of readers, in any processes, may read one segment;
 * they never write to it, and the publisher never waits for them.
 *
 * System calls - the one list; each function's block repeats its own entry,
 * and docs/ABI.md ("System calls on the reader side") says the same:
 *   procbus_open      for a name: geteuid, and lstat when not root (the name
 *                     rule); open, fstat, geteuid, stat (the folder), mmap,
 *                     close (munmap when validation fails)
 *   procbus_close     munmap (only when procbus_open mapped the segment)
 *   procbus_follow    clock_gettime, stat; procbus_open's calls when the name
 *                     moved on
 *   procbus_wait      futex(FUTEX_WAIT); clock_gettime when timeout_ms > 0
 *   procbus_liveness  clock_gettime(CLOCK_MONOTONIC)
 * clock_gettime goes through the vDSO: no system call with a vDSO clocksource
 * (the TSC, the usual case), a real clock_gettime otherwise.
 * procbus_segment_path makes the name rule's geteuid/lstat for a name. Every
 * other function (procbus_attach, procbus_get_pid, procbus_get_name,
 * procbus_list, procbus_generation, procbus_read_generation, procbus_info,
 * procbus_stale_after_ns, procbus_seek_events, procbus_next_event,
 * procbus_state_name, procbus_state_from_name, procbus_strerror, and the
 * section API: procbus_section_*, procbus_rec_*) makes none: loads from the
 * read-only mapping, plus copies into memory the caller owns.
 *
 * Trust: procbus_open maps only a regular file owned by root, the caller or
 * $PROCBUS_SEGMENT_OWNER, in a folder only such users can change (the open
 * path checks it; reads stay system-call free). Strings in records are
 * untrusted bytes: escape them before a terminal, make them valid UTF-8
 * before JSON (docs/ABI.md, "Record").
 *
 * Two ways to read: the copying API (procbus_get_pid, procbus_get_name,
 * procbus_list) copies whole records into caller memory; the zero-copy
 * section (procbus_section.h: begin, find or walk records by pointer into the
 * segment, load only the fields needed, then validate and retry) reads one
 * field of one record for the price of one index probe and one cache line.
 * The copying API is a section around a lookup and a copy.
 *
 * Consistency: a read copies from one snapshot and then re-checks that
 * snapshot's generation stamp (a seqlock; docs/ABI.md "Read (reader)", steps
 * 1-4); if the publisher rewrote the slot meanwhile the read is retried, at
 * most PROCBUS_READ_RETRIES times, after which -EAGAIN is returned.
 * Everything read from the segment is bounds-checked against the validated
 * geometry first, so a corrupt segment gives -EBADMSG, never an out-of-bounds
 * access.
 *
 * Errors are negative errno values:
 *   -ENOENT   no such record / segment / (next_event) no new event yet
 *   -EAGAIN   lapped by the publisher more than PROCBUS_READ_RETRIES times
 *   -EINPROGRESS  (open, attach) a procbus segment (right magic) whose
 *             `version` is still 0: its publisher has not finished creating
 *             it. Retry later, with a deadline (a publisher killed while
 *             creating leaves it so). Opening by name never sees it: the file
 *             gets its name only after `version` is written (ABI.md creation
 *             step 3); a temporary file opened by path or a copy can.
 *   -EPROTO   not a procbus segment (wrong magic, not a regular file, empty)
 *             or an incompatible ABI major
 *   -EISDIR   (open) a directory where the segment should be
 *   -EPERM    (open) a file of an untrusted owner, or in a folder others can
 *             change (docs/ABI.md "Who can read the segment")
 *   -EBADMSG  the segment fails validation (corrupt or hostile)
 *   -ENOSPC   (list) the caller's array is too small; *count says how many
 *   -EINVAL   a bad argument (NULL pointer, unopened reader, "." or ".." as a
 *             segment name)
 *   -ENAMETOOLONG  (open) the segment name or path is too long;
 *             (get_name) the name cannot be in the table
 */

#include "procbus_core.h"     /* types, segment names, state names, procbus_strerror */
#include "procbus_section.h"  /* the zero-copy read section: begin, pid/name/at, retry */
#include "procbus_snapshot.h" /* attach, get_pid, get_name, list, generations, info */
#include "procbus_events.h"   /* seek_events, next_event, wait */
#include "procbus_open.h"     /* open, close, stale threshold, liveness, follow */

#endif /* PROCBUS_H */
