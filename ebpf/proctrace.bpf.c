/* proctrace.bpf.c - tp_btf fork/exec/exit/rename tracer: tagged tracked set, pid namespace, ring.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "proctrace.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched/signal.h and include/linux/sched.h, stable for many years */
#define SIGNAL_GROUP_EXIT_FLAG 0x00000004
#define PF_KTHREAD_FLAG        0x00200000
#define MAX_NS_LEVEL           32 /* MAX_PID_NS_LEVEL */
#define REAPER_DEPTH           16 /* ancestors searched for a child subreaper */

/* Set by the loader before load. */
const volatile bool observe_all = false;
/* 0: wake the consumer for every event it is waiting for (the kernel's adaptive default).
 * Else at most one wake-up per wake_gap_ns (the first event after a quiet spell wakes it at
 * once), and always once wakeup_bytes are pending; the consumer reads again wake_gap_ns
 * after each read that found events, so nothing waits longer than that. */
const volatile __u64 wake_gap_ns = 0;
const volatile __u64 wakeup_bytes = 0;
/* The pid namespace pids are reported in (its inode number, /proc/self/ns/pid of the
 * loader); 0: the initial namespace, where task->pid and task->tgid are the numbers. */
const volatile __u32 ns_inum = 0;
/* The layout of the global data the loader maps (PROCTRACE_PIN_LAYOUT): a pinned tracer is
 * taken over only by a loader that agrees on it. */
const volatile __u32 pin_layout = 0;

__u64 last_wake_ns = 0; /* racy across CPUs by design: a lost update only adds a wake-up */
/* Written by the loader's user (through the memory-mapped .bss) just before it forks a
 * process it wants tagged, and cleared after: the fork runs on the same thread, after it. */
__u64 spawn_tag = 0;
/* The loader's own tgid (in that namespace): a process it forks while it is tracked gets
 * spawn_tag as its tag instead of the loader's. 0: none. Written data, not a constant: the
 * programs outlive their loader when pinned, and the next loader (another pid) takes them. */
__s32 self_tgid = 0;
/* The loader's, never the programs': the ring position up to which its user acted on the events
 * and published the outcome (proctrace_release_keep). Ring space it kept below that (events it
 * read but could not finish) is read again by the next loader, flagged as replayed. */
__u64 published_pos = 0;
/* The level of the target namespace, found at the first event from inside it (every process
 * there has its number at that same level); -1 until then. */
__s32 ns_level = -1;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024); /* resized by the loader before load */
} events SEC(".maps");

/*
 * Tracked processes: tgid -> tag. A fork of a tracked process is tracked with its parent's
 * tag (a fork of the loader itself: spawn_tag); an exit untracks. The kernel decides who
 * belongs, the consumer follows the tag, so a process whose parent's events were lost or
 * not read yet is still attributed.
 */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __s32);
    __type(value, __u64);
} tracked SEC(".maps");

/* Exit dedup for the live-count fallback (two threads may both see live == 0). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __s32);
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

/* ---- pids in the target namespace ---- */

/* The level of the target namespace in `p`'s chain, remembered once found; -1 if none. */
static __always_inline int find_level(struct pid *p, unsigned int level)
{
    struct pid_namespace *ns;
    int i;

    for (i = 0; i < MAX_NS_LEVEL; i++) {
        if (i > level)
            break;
        ns = BPF_CORE_READ(p, numbers[i].ns);
        if (ns && BPF_CORE_READ(ns, ns.inum) == ns_inum) {
            ns_level = i;
            return i;
        }
    }
    return -1;
}

/* The number of pid `p` in the target namespace (not the initial one); 0 if it has none. */
static __always_inline __s32 nr_in_target(struct pid *p)
{
    struct pid_namespace *ns;
    unsigned int level;
    int l;

    if (!p)
        return 0;
    level = BPF_CORE_READ(p, level);
    l = ns_level;
    if (l < 0 && (l = find_level(p, level)) < 0)
        return 0;
    if ((unsigned int)l > level)
        return 0; /* a shallower namespace: outside the target */
    ns = BPF_CORE_READ(p, numbers[l & 31].ns);
    if (!ns || BPF_CORE_READ(ns, ns.inum) != ns_inum)
        return 0; /* a sibling namespace at the same depth */
    return BPF_CORE_READ(p, numbers[l & 31].nr);
}

/*
 * tp_btf programs get BTF-typed task pointers: fields are read with plain loads
 * (CO-RE relocated, faults fixed up by the kernel), not bpf_probe_read_kernel
 * calls, which matters at one event per fork, exec and exit on the host. In a
 * namespace, the pid chain is read with probe reads (a variable index).
 */
static __always_inline __s32 tgid_of(struct task_struct *task)
{
    if (ns_inum == 0)
        return task->tgid;
    return nr_in_target(task->group_leader->thread_pid);
}

static __always_inline __s32 tid_of(struct task_struct *task)
{
    if (ns_inum == 0)
        return task->pid;
    return nr_in_target(task->thread_pid);
}

/* The same for a task pointer read with a probe read (not BTF-typed). */
static __always_inline __s32 tgid_of_probed(struct task_struct *task)
{
    if (!task)
        return 0;
    if (ns_inum == 0)
        return BPF_CORE_READ(task, tgid);
    return nr_in_target(BPF_CORE_READ(task, group_leader, thread_pid));
}

static __always_inline __u64 task_start_boot(struct task_struct *leader)
{
    if (bpf_core_field_exists(leader->start_boottime))
        return leader->start_boottime;
    return leader->start_time;
}

/* The tgid inside the process's own pid namespace where that is not the target one, else 0. */
static __always_inline __s32 task_ns_tgid(struct task_struct *leader)
{
    struct pid *p = leader->thread_pid;
    unsigned int level = p->level;

    if ((ns_inum == 0 && level == 0) || (ns_inum != 0 && (int)level == ns_level))
        return 0;
    return BPF_CORE_READ(p, numbers[level & 31].nr); /* a variable index: a probe read */
}

static __always_inline __u64 *tag_of(__s32 tgid)
{
    return tgid != 0 ? bpf_map_lookup_elem(&tracked, &tgid) : NULL;
}

static __always_inline void fill_common(struct proctrace_event *e, __u32 kind,
                                        struct task_struct *task, __s32 tgid, __u64 tag)
{
    struct task_struct *leader = task->group_leader;

    e->kind = kind;
    e->flags = 0;
    e->pid = tid_of(task);
    e->tgid = tgid;
    e->ppid = tgid_of(task->real_parent);
    e->ns_tgid = task_ns_tgid(leader);
    e->start_boot_ns = task_start_boot(leader);
    e->ts_ns = bpf_ktime_get_boot_ns();
    e->old_pid = 0;
    e->exit_code = 0;
    e->exit_signal = 0;
    e->raw_status = 0;
    e->tag = tag;
    e->reaper = 0;
    e->reserved0 = 0;
    /* the comm of the task the event is about: the running one for exec and exit; for fork
     * the parent, whose comm the child has just copied */
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proctrace_fork, struct task_struct *parent, struct task_struct *child)
{
    struct proctrace_event *e;
    __s32 ctgid, ptgid;
    __u64 tag = 0, *ptag;

    if (child->pid != child->tgid) /* a new thread, not a new process */
        return 0;
    if (child->flags & PF_KTHREAD_FLAG) /* kernel threads are not processes to supervise */
        return 0;
    ctgid = tgid_of(child);
    if (ctgid == 0)
        return 0; /* outside the target namespace */
    ptgid = tgid_of(parent);
    ptag = tag_of(ptgid);
    if (ptag) {
        tag = self_tgid != 0 && ptgid == self_tgid ? spawn_tag : *ptag;
        if (bpf_map_update_elem(&tracked, &ctgid, &tag, BPF_ANY))
            count(PROCTRACE_CNT_TRACK_FAILED);
    } else if (!observe_all) {
        return 0;
    }
    e = bpf_ringbuf_reserve(&events, PROCTRACE_EVENT_BASE_SIZE, 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return 0;
    }
    fill_common(e, PROCTRACE_FORK, child, ctgid, tag);
    bpf_ringbuf_submit(e, submit_flags(e->ts_ns));
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proctrace_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __s32 tgid = tgid_of(p);
    struct proctrace_event *e;
    unsigned long start, end, len;
    const char *fname;
    __u64 *tagp;
    long n;

    if (tgid == 0)
        return 0;
    tagp = tag_of(tgid);
    if (!tagp && !observe_all)
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return 0;
    }
    fill_common(e, PROCTRACE_EXEC, p, tgid, tagp ? *tagp : 0);
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

/* A comm change that is not an exec's (exec reports its comm in the EXEC event). */
SEC("tp_btf/task_rename")
int BPF_PROG(proctrace_rename, struct task_struct *task, const char *comm)
{
    struct proctrace_event *e;
    __u64 *tagp;
    __s32 tgid;

    if (task->pid != task->tgid) /* a thread's own name: the process's comm is its leader's */
        return 0;
    if (task->flags & PF_KTHREAD_FLAG)
        return 0;
    if (BPF_CORE_READ_BITFIELD(task, in_execve)) /* exec names the new image: EXEC says it */
        return 0;
    tgid = tgid_of(task);
    if (tgid == 0)
        return 0;
    tagp = tag_of(tgid);
    if (!tagp && !observe_all)
        return 0;
    e = bpf_ringbuf_reserve(&events, PROCTRACE_EVENT_BASE_SIZE, 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return 0;
    }
    fill_common(e, PROCTRACE_RENAME, task, tgid, tagp ? *tagp : 0);
    /* the tracepoint runs before the new name is copied in: take it from the argument */
    if (bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm) < 0)
        e->comm[0] = 0;
    bpf_ringbuf_submit(e, submit_flags(e->ts_ns));
    return 0;
}

/*
 * Where the children of the exiting group go (kernel/exit.c find_new_reaper()): the nearest
 * ancestor in the same namespace that is a child subreaper with a live thread, else the
 * namespace's init. As a tgid in the target namespace; 0 if it has none there.
 */
static __always_inline __s32 exit_reaper(struct task_struct *task)
{
    struct task_struct *leader = task->group_leader, *p, *init;
    struct signal_struct *lsig = leader->signal;
    struct pid *lp = leader->thread_pid;
    unsigned int level = lp->level;
    int i;

    init = BPF_CORE_READ(lp, numbers[level & 31].ns, child_reaper);
    if (!BPF_CORE_READ_BITFIELD_PROBED(lsig, has_child_subreaper))
        return tgid_of_probed(init);
    p = BPF_CORE_READ(leader, real_parent);
    for (i = 0; i < REAPER_DEPTH; i++) {
        struct signal_struct *sig;

        if (!p || p == init || BPF_CORE_READ(p, pid) == 0)
            break;
        if (BPF_CORE_READ(p, thread_pid, level) != level)
            break;
        sig = BPF_CORE_READ(p, signal);
        if (sig && BPF_CORE_READ_BITFIELD_PROBED(sig, is_child_subreaper) &&
            BPF_CORE_READ(sig, live.counter) > 0)
            return tgid_of_probed(p);
        p = BPF_CORE_READ(p, real_parent);
    }
    return tgid_of_probed(init);
}

/* The exit of a whole thread group; `task` is its last thread. */
static __always_inline void report_exit(struct task_struct *task, __s32 tgid)
{
    struct signal_struct *sig = task->signal;
    struct proctrace_event *e;
    __u64 tag = 0, *tagp;
    __u32 status;

    tagp = tag_of(tgid);
    if (tagp) {
        tag = *tagp;
        if (bpf_map_delete_elem(&tracked, &tgid) != 0)
            return; /* already reported by another thread (fallback path) */
    } else if (!observe_all) {
        return;
    }
    e = bpf_ringbuf_reserve(&events, PROCTRACE_EVENT_BASE_SIZE, 0);
    if (!e) {
        count(PROCTRACE_CNT_RESERVE_FAILED);
        return;
    }
    fill_common(e, PROCTRACE_EXIT, task, tgid, tag);
    e->reaper = exit_reaper(task);
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
    __s32 tgid;

    if (!group_dead || (p->flags & PF_KTHREAD_FLAG))
        return 0;
    tgid = tgid_of(p);
    if (tgid == 0 || (!observe_all && !tag_of(tgid)))
        return 0;
    report_exit(p, tgid);
    return 0;
}

/* Older kernels: signal->live is already decremented when the tracepoint fires. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proctrace_exit_live, struct task_struct *p)
{
    __u64 start, *seen;
    __s32 tgid;

    if (p->signal->live.counter != 0 || (p->flags & PF_KTHREAD_FLAG))
        return 0;
    tgid = tgid_of(p);
    if (tgid == 0)
        return 0;
    if (!tag_of(tgid)) {
        if (!observe_all)
            return 0;
        /* no tracked entry to delete: dedup on (tgid, start) */
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

/*
 * Test-only: a program the verifier must refuse (a map value used without its NULL check).
 * Never loaded unless the loader is asked to (proctrace_opts.test_invalid, or
 * PROCTRACE_TEST_INVALID_PROG=1 in the environment), so that tests can prove a verifier
 * rejection is reported as one.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(proctrace_invalid, struct task_struct *parent, struct task_struct *child)
{
    __s32 key = 1;
    __u64 *v = bpf_map_lookup_elem(&tracked, &key); /* a hash map: may be NULL */

    return *v != 0;
}
