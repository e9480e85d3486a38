/* proctrace.c - loader library of the eBPF tracer: open/load/attach, tracked set, ring consumer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "proctrace_user.h"
#include "proctrace.skel.h"

#define PROCTRACE_BTF_PATH     "/sys/kernel/btf/vmlinux"
#define PROCTRACE_DEFAULT_RING (256u * 1024u)

struct proctrace {
    struct proctrace_bpf *skel;
    struct ring_buffer *rb;
    int exit_mode;
    int ncpus;
    proctrace_cb cb; /* set for the duration of proctrace_consume */
    void *cb_arg;
};

static void why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (!why || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* libbpf's own messages only with PROCTRACE_DEBUG set (they are multi-line verifier logs). */
static int proctrace_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    if (!getenv("PROCTRACE_DEBUG"))
        return 0;
    return vfprintf(stderr, fmt, ap);
}

/* 1 if sched_process_exit carries group_dead (3 tracepoint arguments), 0 if not, -errno. */
static int proctrace_btf_has_group_dead(char *why, size_t whylen)
{
    const struct btf_type *t;
    struct btf *btf;
    int id, rc;

    if (access(PROCTRACE_BTF_PATH, R_OK) != 0) {
        rc = -errno;
        why_set(why, whylen, "no kernel BTF at %s (%s)", PROCTRACE_BTF_PATH, strerror(-rc));
        return rc;
    }
    btf = btf__load_vmlinux_btf();
    if (!btf) {
        rc = errno ? -errno : -ENOENT;
        why_set(why, whylen, "cannot parse kernel BTF at %s (%s)", PROCTRACE_BTF_PATH,
                strerror(-rc));
        return rc;
    }
    rc = 0;
    id = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
    if (id < 0) {
        rc = -ENOTSUP;
        why_set(why, whylen, "kernel BTF has no sched_process_exit tracepoint");
        goto cleanup;
    }
    t = btf__type_by_id(btf, id);
    t = t ? btf__type_by_id(btf, t->type) : NULL; /* pointer */
    t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
    if (!t || !btf_is_func_proto(t)) {
        rc = -ENOTSUP;
        why_set(why, whylen, "unexpected BTF for btf_trace_sched_process_exit");
        goto cleanup;
    }
    /* (void *__data, struct task_struct *p[, bool group_dead]) */
    rc = btf_vlen(t) >= 3;
cleanup:
    btf__free(btf);
    return rc;
}

static int proctrace_ring_cb(void *ctx, void *data, size_t size)
{
    struct proctrace *t = ctx;
    struct proctrace_event ev;

    memset(&ev, 0, sizeof(ev));
    memcpy(&ev, data, size < sizeof(ev) ? size : sizeof(ev));
    return t->cb(t->cb_arg, &ev);
}

int proctrace_open(struct proctrace **out, const struct proctrace_opts *o, char *why, size_t whylen)
{
    struct proctrace_opts def = {0};
    struct proctrace *t = NULL;
    size_t ring;
    long page = sysconf(_SC_PAGESIZE);
    int rc, gd;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!o)
        o = &def;
    ring = o->ring_bytes ? o->ring_bytes : PROCTRACE_DEFAULT_RING;
    if ((ring & (ring - 1)) != 0 || ring < (size_t)page || ring > (1u << 30) ||
        o->exit_mode < PROCTRACE_EXIT_AUTO || o->exit_mode > PROCTRACE_EXIT_LIVE) {
        why_set(why, whylen, "bad options (ring size must be a power of two >= %ld)", page);
        return -EINVAL;
    }
    gd = proctrace_btf_has_group_dead(why, whylen);
    if (gd < 0)
        return gd;
    if (o->exit_mode == PROCTRACE_EXIT_GROUP_DEAD && !gd) {
        why_set(why, whylen, "this kernel's sched_process_exit has no group_dead argument");
        return -ENOTSUP;
    }
    libbpf_set_print(proctrace_libbpf_print);

    t = calloc(1, sizeof(*t));
    if (!t) {
        why_set(why, whylen, "out of memory");
        return -ENOMEM;
    }
    t->exit_mode =
        o->exit_mode ? o->exit_mode : (gd ? PROCTRACE_EXIT_GROUP_DEAD : PROCTRACE_EXIT_LIVE);
    t->ncpus = libbpf_num_possible_cpus();
    if (t->ncpus <= 0) {
        rc = t->ncpus < 0 ? t->ncpus : -EINVAL;
        why_set(why, whylen, "cannot count possible CPUs (%s)", strerror(-rc));
        goto cleanup;
    }
    t->skel = proctrace_bpf__open();
    if (!t->skel) {
        rc = errno ? -errno : -ENOMEM;
        why_set(why, whylen, "BPF object open failed (%s)", strerror(-rc));
        goto cleanup;
    }
    t->skel->rodata->observe_all = o->observe_all != 0;
    t->skel->rodata->wake_gap_ns = o->wake_gap_ns;
    t->skel->rodata->wakeup_bytes = ring / 4;
    rc = bpf_map__set_max_entries(t->skel->maps.events, (__u32)ring);
    if (rc == 0)
        rc = bpf_program__set_autoload(t->skel->progs.proctrace_exit_gd,
                                       t->exit_mode == PROCTRACE_EXIT_GROUP_DEAD);
    if (rc == 0)
        rc = bpf_program__set_autoload(t->skel->progs.proctrace_exit_live,
                                       t->exit_mode == PROCTRACE_EXIT_LIVE);
    if (rc) {
        why_set(why, whylen, "BPF object setup failed (%s)", strerror(-rc));
        goto cleanup;
    }
    rc = proctrace_bpf__load(t->skel);
    if (rc) {
        if (rc == -EPERM || rc == -EACCES)
            why_set(why, whylen, "BPF load refused (%s): need root or CAP_BPF+CAP_PERFMON",
                    strerror(-rc));
        else
            why_set(why, whylen, "BPF load failed (%s; PROCTRACE_DEBUG=1 shows libbpf's log)",
                    strerror(-rc));
        goto cleanup;
    }
    rc = proctrace_bpf__attach(t->skel);
    if (rc) {
        why_set(why, whylen, "BPF attach failed (%s)", strerror(-rc));
        goto cleanup;
    }
    t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), proctrace_ring_cb, t, NULL);
    if (!t->rb) {
        rc = errno ? -errno : -ENOMEM;
        why_set(why, whylen, "ring buffer setup failed (%s)", strerror(-rc));
        goto cleanup;
    }
    *out = t;
    return 0;
cleanup:
    proctrace_close(t);
    return rc;
}

int proctrace_available(char *why, size_t whylen)
{
    struct proctrace *t = NULL;
    struct proctrace_opts o = {0};
    int rc;

    o.ring_bytes = (size_t)sysconf(_SC_PAGESIZE);
    rc = proctrace_open(&t, &o, why, whylen);
    proctrace_close(t);
    return rc;
}

int proctrace_track(struct proctrace *t, pid_t tgid)
{
    __u32 key = (__u32)tgid;
    __u8 one = 1;

    if (!t || tgid <= 0)
        return -EINVAL;
    if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.tracked), &key, &one, BPF_ANY))
        return -errno;
    return 0;
}

int proctrace_untrack(struct proctrace *t, pid_t tgid)
{
    __u32 key = (__u32)tgid;

    if (!t || tgid <= 0)
        return -EINVAL;
    if (bpf_map_delete_elem(bpf_map__fd(t->skel->maps.tracked), &key))
        return -errno;
    return 0;
}

int proctrace_fd(const struct proctrace *t)
{
    return t ? ring_buffer__epoll_fd(t->rb) : -EINVAL;
}

int proctrace_consume(struct proctrace *t, proctrace_cb cb, void *arg)
{
    int rc;

    if (!t || !cb)
        return -EINVAL;
    t->cb = cb;
    t->cb_arg = arg;
    rc = ring_buffer__consume(t->rb);
    t->cb = NULL;
    t->cb_arg = NULL;
    return rc;
}

static uint64_t proctrace_counter(const struct proctrace *t, __u32 idx)
{
    uint64_t sum = 0;
    __u64 *vals;
    int i;

    if (!t)
        return 0;
    vals = calloc((size_t)t->ncpus, sizeof(*vals));
    if (!vals)
        return 0;
    if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &idx, vals) == 0)
        for (i = 0; i < t->ncpus; i++)
            sum += vals[i];
    free(vals);
    return sum;
}

uint64_t proctrace_lost(const struct proctrace *t)
{
    return proctrace_counter(t, PROCTRACE_CNT_RESERVE_FAILED);
}

uint64_t proctrace_track_failed(const struct proctrace *t)
{
    return proctrace_counter(t, PROCTRACE_CNT_TRACK_FAILED);
}

int proctrace_exit_mode(const struct proctrace *t)
{
    return t ? t->exit_mode : -EINVAL;
}

void proctrace_close(struct proctrace *t)
{
    if (!t)
        return;
    ring_buffer__free(t->rb);
    proctrace_bpf__destroy(t->skel);
    free(t);
}
