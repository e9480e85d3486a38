/* proctrace.h - the tracer's event record, shared by the BPF program and the loader library. */
#ifndef PROCTRACE_H
#define PROCTRACE_H

/*
 * Included by proctrace.bpf.c (after vmlinux.h, which defines the __u* types)
 * and by user space (where <linux/types.h> does). Fixed-width types only.
 *
 * FORK, EXIT and RENAME records are sent short: only the bytes before
 * `args_len` (PROCTRACE_EVENT_BASE_SIZE); EXEC records are sent whole. A
 * consumer copies what it got into a zeroed struct proctrace_event.
 *
 * Pids (pid, tgid, ppid, reaper) are numbers in the pid namespace of the
 * process that loaded the tracer (the "target" namespace; the initial one on a
 * host, the container's inside a container). Processes that have no number
 * there (outside it) are not reported.
 */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PROCTRACE_COMM_LEN     16
#define PROCTRACE_FILENAME_LEN 160
#define PROCTRACE_ARGS_LEN     256

enum proctrace_kind {
    PROCTRACE_FORK = 1,   /* pid/tgid: the new process; ppid: its real parent */
    PROCTRACE_EXEC = 2,   /* the process replaced its image; old_pid: the calling thread */
    PROCTRACE_EXIT = 3,   /* the last thread of the group is gone */
    PROCTRACE_RENAME = 4, /* the process's comm changed without an exec (prctl PR_SET_NAME,
                           * a write to /proc/PID/comm): comm is the new name */
};

/* flags */
#define PROCTRACE_F_ARGS_TRUNCATED 0x1u /* args holds a prefix of the argument block */
#define PROCTRACE_F_CORE_DUMPED    0x2u /* EXIT: killed by exit_signal and dumped core */
#define PROCTRACE_F_SIGNALED       0x4u /* EXIT: killed by a signal (exit_signal) */
#define PROCTRACE_F_FILENAME_TRUNC 0x8u /* filename was cut at PROCTRACE_FILENAME_LEN - 1 */

struct proctrace_event {
    __u32 kind;          /* enum proctrace_kind */
    __u32 flags;         /* PROCTRACE_F_* */
    __s32 pid;           /* thread id of the event's task, target namespace (== tgid for EXEC) */
    __s32 tgid;          /* process id, target namespace */
    __s32 ppid;          /* real_parent's process id, target namespace (0: its parent is outside) */
    __s32 ns_tgid;       /* tgid inside the process's own pid namespace where it differs, else 0 */
    __u64 start_boot_ns; /* the process's start, CLOCK_BOOTTIME ns: (tgid, start) is unique */
    __u64 ts_ns;         /* bpf_ktime_get_boot_ns() at the event (CLOCK_BOOTTIME) */
    __s32 old_pid;       /* EXEC: the tid that called execve (differs from tgid: non-leader) */
    __s32 exit_code;     /* EXIT: status code (0..255) if not signaled */
    __s32 exit_signal;   /* EXIT: the signal number if PROCTRACE_F_SIGNALED */
    __u32 raw_status;    /* EXIT: the wait status word as the kernel keeps it */
    __u64 tag;           /* the tracked process's tag (proctrace_track, spawn tags); 0: none */
    __s32 reaper;        /* EXIT: the process its children are reparented to (0: unknown) */
    __u32 reserved0;
    char comm[PROCTRACE_COMM_LEN];
    /* EXEC only from here on */
    __u32 args_len; /* bytes used in args (NUL-separated) */
    __u32 reserved;
    char filename[PROCTRACE_FILENAME_LEN]; /* NUL-terminated */
    char args[PROCTRACE_ARGS_LEN];         /* argv[0]\0argv[1]\0..., args_len bytes */
};

#define PROCTRACE_EVENT_BASE_SIZE __builtin_offsetof(struct proctrace_event, args_len)

/* Indexes of the per-CPU counters map. */
enum proctrace_counter {
    PROCTRACE_CNT_RESERVE_FAILED = 0, /* ring buffer full: an event was dropped */
    PROCTRACE_CNT_TRACK_FAILED = 1,   /* tracked map full: a forked child went untracked */
    PROCTRACE_CNT_MAX_ = 2,
};

#endif
