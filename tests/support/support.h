/* support.h - helpers shared by the cmocka tests: unique segment names, records, children,
 * whole files. */
#ifndef PROCBUS_TEST_SUPPORT_H
#define PROCBUS_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procbus_abi.h"
#include "util.h"

struct procbus_pub;

/* A segment name unique to this process and call ("pbt-<pid>-<n>"), in buf[64]. */
const char *pbt_name(char buf[64]);

/* The file segment name <name> means (procbus_segment_path: /run/procbus/<name> as root, else
 * /dev/shm/<name>) into buf[128]. */
const char *pbt_path(const char *name, char buf[128]);

/* Remove the file of segment <name> if present (test cleanup). */
void pbt_unlink(const char *name);

/* A record with every field set from (id, pid, name, state). */
void pbt_fill(struct procbus_proc *r, uint64_t id, int32_t pid, const char *name, uint16_t state);

/* Open a publisher on `name` with `capacity` records and `slots` snapshot slots (0: default). */
struct procbus_pub *pbt_pub(const char *name, uint32_t capacity, uint32_t slots);

/* Wait for child `pid`; returns its exit status (0..255), or 128+signal. */
int pbt_wait_child(pid_t pid);

/* /proc/PID/stat: the state letter (0 if gone); if asked, the parent and the start in ticks. */
char pbt_proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start);

/* The pids in /proc for which match(pid, arg) is nonzero, up to max, into out[]; how many. */
int pbt_scan_pids(int (*match)(pid_t pid, void *arg), void *arg, pid_t *out, int max);

/*
 * The whole of a file (regular or /proc), NUL-terminated, malloc'd (caller frees); *len, if asked,
 * is its length without the NUL. NULL (errno set) if it cannot be opened or read.
 */
char *pbt_slurp(const char *path, size_t *len);

/* /proc/PID/comm (pid 0: this process) without its newline, into buf; buf, or NULL if unreadable
 * (buf then empty). */
char *pbt_proc_comm(pid_t pid, char *buf, size_t len);

/* CLOCK_MONOTONIC now, in ms: the tests' deadlines (pb_now_ns underneath). */
static inline long pbt_now_ms(void)
{
    return (long)(pb_now_ns(CLOCK_MONOTONIC) / 1000000u);
}

/* Scale factor for long tests: 1 normally, smaller under sanitizers (PROCBUS_TEST_SCALE=asan). */
double pbt_scale(void);

#endif
