/* proctrace.c - loader library of the eBPF tracer: open/load/attach, tracked set, ring consumer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "proctrace_user.h"
#include "proctrace.skel.h"

#define PROCTRACE_BTF_PATH     "/sys/kernel/btf/vmlinux"
#define PROCTRACE_DEFAULT_RING (256u * 1024u)
#define PROCTRACE_PIDNS_PATH   "/proc/self/ns/pid"
#define PROC_PID_INIT_INO      0xEFFFFFFCu /* the initial pid namespace (include/linux/proc_ns.h) */
#define PROCTRACE_LOG_SIZE     (64u * 1024u) /* the verifier's log of a refused program */

struct proctrace {
    struct proctrace_bpf *skel;
    struct ring_buffer *rb;
    int exit_mode;
    int ncpus;
    proctrace_cb cb; /* set for the duration of proctrace_consume */
    void *cb_arg;
    char *log; /* the kernel's log of a failed load (libbpf fills it only on failure) */
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

/* The pid namespace the loader lives in: 0 for the initial one, else its inode number. */
static int proctrace_own_pidns(uint32_t *inum, char *why, size_t whylen)
{
    struct stat st;

    if (stat(PROCTRACE_PIDNS_PATH, &st) != 0) {
        int rc = -errno;
        why_set(why, whylen, "cannot find this process's pid namespace (%s: %s)",
                PROCTRACE_PIDNS_PATH, strerror(-rc));
        return rc;
    }
    *inum = st.st_ino == PROC_PID_INIT_INO ? 0 : (uint32_t)st.st_ino;
    return 0;
}

/* The verifier's verdict: the last line of its log that is not a statistic. */
static void proctrace_verdict(const char *log, char *out, size_t outlen)
{
    const char *p = log, *best = NULL, *eol;
    size_t bestlen = 0;

    out[0] = '\0';
    for (; *p != '\0'; p = *eol ? eol + 1 : eol) {
        size_t n;
        eol = strchr(p, '\n');
        if (eol == NULL)
            eol = p + strlen(p);
        n = (size_t)(eol - p);
        if (n == 0 || strncmp(p, "processed ", 10) == 0 ||
            strncmp(p, "verification time", 17) == 0 || strncmp(p, "stack depth", 11) == 0)
            continue;
        best = p;
        bestlen = n;
    }
    if (best != NULL)
        snprintf(out, outlen, "%.*s", (int)bestlen, best);
}

/* A slice of t->log per program: libbpf fills the one of a program the kernel refuses. */
static int proctrace_log_bufs(struct proctrace *t)
{
    struct bpf_program *prog;
    size_t n = 0, each, i = 0;
    int rc;

    bpf_object__for_each_program(prog, t->skel->obj) n++;
    each = n ? PROCTRACE_LOG_SIZE / n : 0;
    bpf_object__for_each_program(prog, t->skel->obj)
    {
        rc = bpf_program__set_log_buf(prog, t->log + i++ * each, each);
        if (rc)
            return rc;
    }
    return 0;
}

/* Why the load failed, told apart: the verifier refused a program (its log says why), the
 * caller lacks the privilege, or something else. Returns the errno to report. */
static int proctrace_load_failed(struct proctrace *t, int rc, char *why, size_t whylen)
{
    struct bpf_program *prog, *failed = NULL;
    const char *log = NULL;
    char verdict[256];
    size_t sz;

    bpf_object__for_each_program(prog, t->skel->obj)
    {
        const char *b = bpf_program__log_buf(prog, &sz);
        if (b != NULL && sz > 0 && b[0] != '\0') {
            failed = prog;
            log = b;
            break;
        }
    }
    if (log != NULL) {
        proctrace_verdict(log, verdict, sizeof(verdict));
        why_set(why, whylen,
                "the kernel's BPF verifier rejected program %s (%s): %s "
                "(PROCTRACE_DEBUG=1 prints the whole log)",
                failed ? bpf_program__name(failed) : "?", strerror(-rc),
                verdict[0] ? verdict : "no reason given");
        return -ENOEXEC;
    }
    if (rc == -EPERM)
        why_set(why, whylen, "BPF load refused (%s): need root or CAP_BPF+CAP_PERFMON",
                strerror(-rc));
    else
        why_set(why, whylen, "BPF load failed (%s; PROCTRACE_DEBUG=1 shows libbpf's log)",
                strerror(-rc));
    return rc;
}

int proctrace_open(struct proctrace **out, const struct proctrace_opts *o, char *why, size_t whylen)
{
    struct proctrace_opts def = {0};
    struct proctrace *t = NULL;
    size_t ring;
    long page = sysconf(_SC_PAGESIZE);
    uint32_t ns_inum = 0;
    int rc, gd, invalid;

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
    rc = proctrace_own_pidns(&ns_inum, why, whylen);
    if (rc < 0)
        return rc;
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
    t->log = calloc(1, PROCTRACE_LOG_SIZE);
    if (!t->log) {
        rc = -ENOMEM;
        why_set(why, whylen, "out of memory");
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
    t->skel->rodata->ns_inum = ns_inum;
    t->skel->rodata->self_tgid = getpid();
    invalid = o->test_invalid || (getenv("PROCTRACE_TEST_INVALID_PROG") != NULL &&
                                  strcmp(getenv("PROCTRACE_TEST_INVALID_PROG"), "1") == 0);
    rc = bpf_map__set_max_entries(t->skel->maps.events, (__u32)ring);
    if (rc == 0)
        rc = bpf_program__set_autoload(t->skel->progs.proctrace_invalid, invalid);
    if (rc == 0)
        rc = proctrace_log_bufs(t);
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
        rc = proctrace_load_failed(t, rc, why, whylen);
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
    return proctrace_track_tag(t, tgid, 0);
}

int proctrace_track_tag(struct proctrace *t, pid_t tgid, uint64_t tag)
{
    __s32 key = (__s32)tgid;
    __u64 val = tag;

    if (!t || tgid <= 0)
        return -EINVAL;
    if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.tracked), &key, &val, BPF_ANY))
        return -errno;
    return 0;
}

int proctrace_tag(const struct proctrace *t, pid_t tgid, uint64_t *tag)
{
    __s32 key = (__s32)tgid;
    __u64 val = 0;

    if (!t || tgid <= 0 || !tag)
        return -EINVAL;
    if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.tracked), &key, &val))
        return -errno;
    *tag = val;
    return 0;
}

void proctrace_set_spawn_tag(struct proctrace *t, uint64_t tag)
{
    if (t && t->skel->bss)
        __atomic_store_n(&t->skel->bss->spawn_tag, tag, __ATOMIC_SEQ_CST);
}

int proctrace_untrack(struct proctrace *t, pid_t tgid)
{
    __s32 key = (__s32)tgid;

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
    free(t->log);
    free(t);
}
