/* trace_harness.h - what the tracer's procbusd tests share: a procbusd (on the host or in a pid
 * namespace of its own), its records, waits, and /proc scans for the processes it must kill. */
#ifndef PROCBUS_TRACE_HARNESS_H
#define PROCBUS_TRACE_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon_harness.h"
#include "procbus.h"

/* A procbusd under test. */
struct tdaemon {
    struct daemon_h h; /* segment, socket, folder, config, reader; h.pid: what we forked */
    pid_t procbusd;    /* procbusd's pid here (in pidns mode: unshare's child) */
    int pidns;         /* procbusd runs under unshare --pid --fork --mount-proc */
};

/*
 * Skip (printing why) when this machine cannot run the eBPF tracer for a reason that is not
 * the tracer's fault: no privilege (EPERM), no kernel BTF (ENOENT), no BPF (ENOSYS). Any
 * other failure, a verifier rejection above all, fails the test.
 */
void pbtt_need_bpf(void);

/* Start procbusd on a config of `body` under a [procbusd] section (pbt_write_conf), in a pid
 * namespace of its own when `pidns`; wait for its segment. Asserts on failure. */
void pbtt_start(struct tdaemon *d, int pidns, const char *body);

/* SIGTERM procbusd; assert exit 0 and a clean shutdown; remove its files. */
void pbtt_stop(struct tdaemon *d);

/* cmocka teardown: kill what a failed test left (procbusd, its namespace, processes whose
 * argv carries a marker given to pbtt_mark), remove the files. */
int pbtt_teardown(void **state);

/* Kill processes whose argv contains `marker` at teardown (one marker at a time). */
void pbtt_mark(const char *marker);

/* Run `procbus ARGS` against d; its exit code. Its output into out (if out) and printed. */
int pbtt_cli(struct tdaemon *d, const char *args, char *out, size_t len);

/* Every record of one snapshot, in a buffer owned here (valid until the next call). */
size_t pbtt_list(struct tdaemon *d, const struct procbus_proc **recs);

/* Descendant records of program `prog_id` (0: any record) whose argv is args[0..len) (NUL
 * separated, the final NUL optional), in `state` (0: any); the newest into *out. How many. */
int pbtt_find_argv(struct tdaemon *d, uint64_t prog_id, const char *args, size_t len,
                   uint16_t state, struct procbus_proc *out);

/* The record `id` now: 0, or -ENOENT. */
int pbtt_get(struct tdaemon *d, uint64_t id, struct procbus_proc *out);

/* Wait until cond(d, arg) holds, re-checking on each commit (at least every 100 ms), up to
 * `ms`. 1 if it held, 0 on timeout (or procbusd died: then says so). */
int pbtt_wait(struct tdaemon *d, int ms, int (*cond)(struct tdaemon *d, void *arg), void *arg);

/* Print the descendant records (up to 40): what a failure saw. */
void pbtt_dump(struct tdaemon *d);

/* Processes whose argv contains `marker` (argv[1..], whole words): those still running into
 * *running (neither zombie nor exiting, PF_EXITING), exiting ones into *exiting (if asked),
 * up to max pids of running ones into pids[]. */
void pbtt_scan_marked(const char *marker, int *running, int *exiting, pid_t *pids, int max);

/* procbusd's stderr so far (malloc'd, NUL-terminated; "" if none). */
char *pbtt_log(struct tdaemon *d);

/* procbusd's whole stderr as the last pbtt_stop found it ("" before any). */
const char *pbtt_last_log(void);

/* The argv block literal ("sleep\0" "300") and its length, for pbtt_find_argv. */
#define PBTT_ARGV(s) s, sizeof(s) - 1

#endif
