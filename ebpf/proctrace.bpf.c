/* proctrace.bpf.c - tp_btf fork/exec/exit tracer: tracked-tgid filter, ring buffer, loss counter.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "proctrace.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGNAL_GROUP_EXIT_FLAG 0x00000004 /* include/linux/sched/signal.h, stable since 2.6 */

/* Set by the loader before load. */
const volatile bool observe_all = false;
/* 0: wake the consumer for every event it is waiting for (the kernel's adaptive default).
 * Else at most one wake-up per wake_gap_ns (the first event after a quiet spell wakes it at
 * once), and always once wakeup_bytes are pending; the consumer reads again wake_gap_ns
 * after each read that found events, so nothing waits longer than that. */
const volatile __u64 wake_gap_ns = 0;
const volatile __u64 wakeup_bytes = 0;
__u64 last_wake_ns = 0; /* racy across CPUs by design: a lost update only adds a wake-up */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024); /* resized by the loader before load */
} events SEC(".maps");

/* Tracked processes: tgid -> 1. Forks of a tracked process are tracked; exits untrack. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} tracked SEC(".maps");

/* Exit dedup for the live-count fallback (two threads may both see live == 0). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, __u64);
} exited SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PROCTRACE_CNT_MAX_);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
    __u64 *v = bpf_map_lookup_elem(&counters, &idx);

    if (v)
        *v += 1; /* per-CPU slot: no other writer */
}

/* Flags for bpf_ringbuf_submit: a wake-up costs more than the rest of an event (an IPI). */
static __always_inline __u64 submit_flags(__u64 now)
{
    if (wake_gap_ns == 0)
        return 0;
    if (now - last_wake_ns >= wake_gap_ns ||
        bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes) {
        last_wake_ns = now;
        return BPF_RB_FORCE_WAKEUP;
    }
    return BPF_RB_NO_WAKEUP;
}

static __always_inline bool is_tracked(__u32 tgid)
{
    return observe_all || bpf_map_lookup_elem(&tracked, &tgid) != NULL;
}

/*
 * tp_btf programs get BTF-typed task pointers: fields are read with plain loads
 * (CO-RE relocated, faults fixed up by the kernel), not bpf_probe_read_kernel
 * calls, which matters at one event per fork, exec and exit on the host.
 */
static __always_inline __u64 task_start_boot(struct task_struct *leader)
{
    if (bpf_core_field_exists(leader->start_boottime))
        return leader->start_boottime;
    return leader->start_time;
}

/* The tgid inside the process's own pid namespace, 0 if it is the initial one. */
static __always_inline __s32 task_ns_tgid(struct task_struct *leader)
{
    struct pid *p = leader->thread_pid;
    unsigned int level = p->level;

    if (level == 0)
        return 0;
    return BPF_CORE_READ(p, numbers[level & 31].nr); /* a variable index: a probe read */
}

static __always_inline void fill_common(struct proctrace_event *e, __u32 kind,
                                        struct task_struct *task)
{
    struct task_struct *leader = task->group_leader;

    e->kind = kind;
    e->flags = 0;
    e->pid = task->pid;
    e->tgid = task->tgid;
    e->ppid = task->real_parent->tgid;
    e->ns_tgid = task_ns_tgid(leader);
    e->start_boot_ns = task_start_boot(leader);
    e->ts_ns = bpf_ktime_get_boot_ns();
    e->old_pid = 0;
    e->exit_code = 0;
    e->exit_signal = 0;
    e->raw_status = 0;
    /* the comm of the task the event is about: the running one for exec and exit; for fork
     * the parent, whose comm the child has just copied */
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proctrace_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 ptgid = parent->tgid;
    __u32 ctgid = child->tgid;
    struct proctrace_event *e;
    __u8 one = 1;

    if (child->pid != ctgid) /* a new thread, not a new process */
        return 0;
    if (!observe_all) {
        if (!bpf_map_lookup_elem(&tracked, &ptgid))
            return 0;
        if (bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY))
            count(PROCTRACE_CNT_TRACK_FAILED);
    }
    e = bpf_ringbuf_reserve(&events, PROCTRACE_EVENT_BASE_SIZE, 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return 0;
    }
    fill_common(e, PROCTRACE_FORK, child);
    bpf_ringbuf_submit(e, submit_flags(e->ts_ns));
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proctrace_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 tgid = p->tgid;
    struct proctrace_event *e;
    unsigned long start, end, len;
    const char *fname;
    long n;

    if (!is_tracked(tgid))
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return 0;
    }
    fill_common(e, PROCTRACE_EXEC, p);
    e->old_pid = old_pid;
    fname = bprm->filename;
    n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), fname);
    if (n < 0)
        e->filename[0] = 0;
    else if (n == sizeof(e->filename))
        e->flags |= PROCTRACE_F_FILENAME_TRUNC;

    e->args_len = 0;
    e->reserved = 0;
    start = p->mm->arg_start;
    end = p->mm->arg_end;
    len = end > start ? end - start : 0;
    if (len > PROCTRACE_ARGS_LEN) {
        len = PROCTRACE_ARGS_LEN;
        e->flags |= PROCTRACE_F_ARGS_TRUNCATED;
    }
    if (len > 0 && bpf_probe_read_user(e->args, len, (const void *)start) == 0)
        e->args_len = len;
    else if (len > 0)
        e->flags |= PROCTRACE_F_ARGS_TRUNCATED; /* not readable without faulting */
    bpf_ringbuf_submit(e, submit_flags(e->ts_ns));
    return 0;
}

/* The exit of a whole thread group; `task` is its last thread. */
static __always_inline void report_exit(struct task_struct *task, __u32 tgid)
{
    struct signal_struct *sig = task->signal;
    struct proctrace_event *e;
    __u32 status;

    if (!observe_all && bpf_map_delete_elem(&tracked, &tgid) != 0)
        return; /* not tracked, or already reported by another thread (fallback path) */
    e = bpf_ringbuf_reserve(&events, PROCTRACE_EVENT_BASE_SIZE, 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return;
    }
    fill_common(e, PROCTRACE_EXIT, task);
    /* what wait_task_zombie() reports for the group */
    if (sig->flags & SIGNAL_GROUP_EXIT_FLAG)
        status = sig->group_exit_code;
    else
        status = task->group_leader->exit_code;
    e->raw_status = status;
    if ((status & 0x7f) == 0) {
        e->exit_code = (status >> 8) & 0xff;
    } else {
        e->exit_signal = status & 0x7f;
        e->flags |= PROCTRACE_F_SIGNALED;
        if (status & 0x80)
            e->flags |= PROCTRACE_F_CORE_DUMPED;
    }
    bpf_ringbuf_submit(e, submit_flags(e->ts_ns));
}

/* Kernels 6.16+: sched_process_exit(p, group_dead). Loaded when BTF shows the third argument. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proctrace_exit_gd, struct task_struct *p, bool group_dead)
{
    __u32 tgid = p->tgid;

    if (!group_dead)
        return 0;
    if (!observe_all && !bpf_map_lookup_elem(&tracked, &tgid))
        return 0;
    report_exit(p, tgid);
    return 0;
}

/* Older kernels: signal->live is already decremented when the tracepoint fires. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proctrace_exit_live, struct task_struct *p)
{
    __u32 tgid = p->tgid;
    __u64 start, *seen;

    if (p->signal->live.counter != 0)
        return 0;
    if (!observe_all && !bpf_map_lookup_elem(&tracked, &tgid))
        return 0;
    if (observe_all) { /* no tracked entry to delete: dedup on (tgid, start) */
        start = task_start_boot(p->group_leader);
        seen = bpf_map_lookup_elem(&exited, &tgid);
        if (seen && *seen == start)
            return 0;
        if (bpf_map_update_elem(&exited, &tgid, &start, seen ? BPF_EXIST : BPF_NOEXIST))
            return 0; /* lost the race to another thread of the group */
    }
    report_exit(p, tgid);
    return 0;
}
