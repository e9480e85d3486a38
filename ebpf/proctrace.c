/* proctrace.c - loader library of the eBPF tracer: open/load/attach, tracked set, ring consumer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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
    struct proctrace_bpf *skel; /* loaded by this process; NULL when a pinned set was taken */
    int fd_events, fd_tracked, fd_counters, fd_bss, fd_rodata; /* owned when taken over */
    void *bss_map; /* taken over: the global data, mapped here */
    size_t bss_len;
    __u64 *spawn_tag; /* in the global data (either way) */
    __s32 *self_tgid;
    __u64 *published_pos; /* (proctrace_release_keep) */
    /* the ring buffer, read here (not through libbpf, so that consumption can wait for the
     * caller's commit: proctrace_release) */
    int epfd;
    void *cons_map, *prod_map;
    size_t page, prod_len;
    unsigned long *cons_pos, *prod_pos;
    unsigned char *data;
    uint64_t mask, read_pos;
    uint64_t event_pos;  /* the ring position of the event being delivered */
    uint64_t replay_end; /* events below it were acted on by an earlier loader */
    int defer_release;
    int exit_mode;
    int ncpus;
    int reused, pinned;
    char pin_dir[256];
    proctrace_cb cb; /* set for the duration of proctrace_consume */
    void *cb_arg;
    char *log; /* the kernel's log of a failed load (libbpf fills it only on failure) */
};

/* What a pinned set holds, one bpffs name each (proctrace_opts.pin_dir). */
static const char *const pin_names[] = {"events",       "tracked",       "counters",  "bss",
                                        "rodata",       "link_fork",     "link_exec", "link_rename",
                                        "link_exit_gd", "link_exit_live"};
#define PIN_N (sizeof(pin_names) / sizeof(pin_names[0]))
/* The global data layout both sides of a pinned set must agree on. */
#define PROCTRACE_PIN_LAYOUT ((1u << 16) | (uint32_t)sizeof(struct proctrace_bpf__bss))

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

/* ---- the ring buffer (include/uapi/linux/bpf.h: BPF_RINGBUF_*; kernel/bpf/ringbuf.c) ---- */

#define RB_BUSY 0x80000000u
#define RB_DISC 0x40000000u
#define RB_HDR  8u

/* Map the consumer page (read-write) and the producer page with the data, mapped twice over
 * (read-only), of ring map `fd` of `ring` bytes; an epoll set on it. 0 or -errno. */
static int ring_open(struct proctrace *t, int fd, size_t ring)
{
    struct epoll_event ev = {.events = EPOLLIN};

    t->page = (size_t)sysconf(_SC_PAGESIZE);
    t->cons_map = mmap(NULL, t->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (t->cons_map == MAP_FAILED) {
        t->cons_map = NULL;
        return -errno;
    }
    t->prod_len = t->page + 2 * ring;
    t->prod_map = mmap(NULL, t->prod_len, PROT_READ, MAP_SHARED, fd, (off_t)t->page);
    if (t->prod_map == MAP_FAILED) {
        t->prod_map = NULL;
        return -errno;
    }
    t->cons_pos = t->cons_map;
    t->prod_pos = t->prod_map;
    t->data = (unsigned char *)t->prod_map + t->page;
    t->mask = ring - 1;
    /* what an earlier consumer (a pinned set's previous loader) had released is where reading
     * goes on: nothing it did not commit is skipped */
    t->read_pos = __atomic_load_n(t->cons_pos, __ATOMIC_ACQUIRE);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->epfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

static void ring_close(struct proctrace *t)
{
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->prod_map != NULL)
        munmap(t->prod_map, t->prod_len);
    if (t->cons_map != NULL)
        munmap(t->cons_map, t->page);
    t->epfd = -1;
    t->prod_map = t->cons_map = NULL;
}

/* The kernel's ring may hand out what it wrote up to the consumer position: store it. The
 * release pairs with the kernel's acquire load of consumer_pos in bpf_ringbuf_reserve. */
static void ring_free_upto(struct proctrace *t, uint64_t pos)
{
    __atomic_store_n(t->cons_pos, (unsigned long)pos, __ATOMIC_RELEASE);
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

/* ---- pinned sets ---- */

#define BPF_FS_MAGIC_ 0xcafe4a11

static void pin_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

int proctrace_pin_remove(const char *dir)
{
    char path[512];
    size_t i;

    if (dir == NULL)
        return -EINVAL;
    for (i = 0; i < PIN_N; i++) {
        pin_path(path, sizeof(path), dir, pin_names[i]);
        unlink(path);
    }
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

int proctrace_pin_check_fs(const char *dir, char *why, size_t whylen)
{
    char parent[256];
    struct statfs fs;
    char *slash;

    snprintf(parent, sizeof(parent), "%s", dir);
    while ((slash = strrchr(parent, '/')) != NULL && slash != parent) { /* the nearest existing */
        *slash = '\0';
        if (statfs(parent, &fs) == 0)
            break;
    }
    if (statfs(parent, &fs) < 0 || fs.f_type != BPF_FS_MAGIC_) {
        why_set(why, whylen, "%s is not on a BPF file system (mount -t bpf bpf /sys/fs/bpf)", dir);
        return -ENOTSUP;
    }
    return 0;
}

/* mkdir -p, 0700 for what it makes. */
static int make_dirs(const char *dir)
{
    char buf[256];
    size_t i, n = strlen(dir);

    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    return 0;
}

/* Pin what a later loader needs to take this tracer over (its links keep it attached). */
static int pin_all(struct proctrace *t)
{
    struct {
        const char *name;
        struct bpf_map *map;
        struct bpf_link *link;
    } v[] = {{"events", t->skel->maps.events, NULL},
             {"tracked", t->skel->maps.tracked, NULL},
             {"counters", t->skel->maps.counters, NULL},
             {"bss", t->skel->maps.bss, NULL},
             {"rodata", t->skel->maps.rodata, NULL},
             {"link_fork", NULL, t->skel->links.proctrace_fork},
             {"link_exec", NULL, t->skel->links.proctrace_exec},
             {"link_rename", NULL, t->skel->links.proctrace_rename},
             {"link_exit_gd", NULL, t->skel->links.proctrace_exit_gd},
             {"link_exit_live", NULL, t->skel->links.proctrace_exit_live}};
    char path[512];
    size_t i;
    int rc = make_dirs(t->pin_dir);

    for (i = 0; rc == 0 && i < sizeof(v) / sizeof(v[0]); i++) {
        if (v[i].map == NULL && v[i].link == NULL)
            continue; /* (the exit program not loaded) */
        pin_path(path, sizeof(path), t->pin_dir, v[i].name);
        rc = v[i].map != NULL ? bpf_map__pin(v[i].map, path) : bpf_link__pin(v[i].link, path);
    }
    if (rc < 0)
        proctrace_pin_remove(t->pin_dir);
    return rc;
}

/* Take over a pinned set that matches what `o` asks for (options, layout): 0, -ENOENT (none
 * there), -ESTALE (one that does not match: the caller removes it), or another -errno. */
static int take_pinned(struct proctrace *t, const struct proctrace_opts *o, size_t ring,
                       uint32_t ns_inum, char *why, size_t whylen)
{
    struct proctrace_bpf__rodata ro;
    struct bpf_map_info info;
    __u32 len = sizeof(info), key = 0;
    char path[512];
    size_t i;
    int have_gd, have_live;

    for (i = 0; i < PIN_N; i++) {
        pin_path(path, sizeof(path), t->pin_dir, pin_names[i]);
        if (access(path, F_OK) != 0 && strncmp(pin_names[i], "link_exit", 9) != 0)
            return i == 0 ? -ENOENT : -ESTALE;
    }
    pin_path(path, sizeof(path), t->pin_dir, "link_exit_gd");
    have_gd = access(path, F_OK) == 0;
    pin_path(path, sizeof(path), t->pin_dir, "link_exit_live");
    have_live = access(path, F_OK) == 0;
    if (have_gd == have_live)
        return -ESTALE;
#define GET(fd, name)                                   \
    do {                                                \
        pin_path(path, sizeof(path), t->pin_dir, name); \
        if ((fd = bpf_obj_get(path)) < 0)               \
            return -ESTALE;                             \
    } while (0)
    GET(t->fd_events, "events");
    GET(t->fd_tracked, "tracked");
    GET(t->fd_counters, "counters");
    GET(t->fd_bss, "bss");
    GET(t->fd_rodata, "rodata");
#undef GET
    memset(&ro, 0, sizeof(ro));
    if (bpf_map_lookup_elem(t->fd_rodata, &key, &ro) != 0 ||
        ro.pin_layout != PROCTRACE_PIN_LAYOUT || ro.observe_all != (o->observe_all != 0) ||
        ro.wake_gap_ns != o->wake_gap_ns || ro.wakeup_bytes != ring / 4 || ro.ns_inum != ns_inum)
        return -ESTALE;
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(t->fd_events, &info, &len) != 0 || info.max_entries != ring)
        return -ESTALE;
    if (o->exit_mode != PROCTRACE_EXIT_AUTO &&
        o->exit_mode != (have_gd ? PROCTRACE_EXIT_GROUP_DEAD : PROCTRACE_EXIT_LIVE))
        return -ESTALE;
    t->exit_mode = have_gd ? PROCTRACE_EXIT_GROUP_DEAD : PROCTRACE_EXIT_LIVE;
    memset(&info, 0, sizeof(info));
    len = sizeof(info);
    if (bpf_obj_get_info_by_fd(t->fd_bss, &info, &len) != 0 ||
        info.value_size > sizeof(struct proctrace_bpf__bss) ||
        info.value_size < offsetof(struct proctrace_bpf__bss, self_tgid) + sizeof(__s32) ||
        info.value_size < offsetof(struct proctrace_bpf__bss, published_pos) + sizeof(__u64))
        return -ESTALE; /* (the section has no tail padding: it may be shorter) */
    t->bss_len = ((size_t)info.value_size + t->page - 1) / t->page * t->page;
    t->bss_map = mmap(NULL, t->bss_len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd_bss, 0);
    if (t->bss_map == MAP_FAILED) {
        t->bss_map = NULL;
        why_set(why, whylen, "cannot map the pinned tracer's data (%s)", strerror(errno));
        return -errno;
    }
    t->spawn_tag = &((struct proctrace_bpf__bss *)t->bss_map)->spawn_tag;
    t->self_tgid = &((struct proctrace_bpf__bss *)t->bss_map)->self_tgid;
    t->published_pos = &((struct proctrace_bpf__bss *)t->bss_map)->published_pos;
    t->reused = t->pinned = 1;
    int rc = ring_open(t, t->fd_events, ring);
    if (rc == 0) /* what the previous loader's user had published, kept or not */
        t->replay_end = __atomic_load_n(t->published_pos, __ATOMIC_ACQUIRE);
    return rc;
}

/* Load, attach and (with a pin_dir) pin a new tracer. */
static int load_new(struct proctrace *t, const struct proctrace_opts *o, size_t ring,
                    uint32_t ns_inum, char *why, size_t whylen)
{
    int rc, invalid;

    t->skel = proctrace_bpf__open();
    if (!t->skel) {
        rc = errno ? -errno : -ENOMEM;
        why_set(why, whylen, "BPF object open failed (%s)", strerror(-rc));
        return rc;
    }
    t->skel->rodata->observe_all = o->observe_all != 0;
    t->skel->rodata->wake_gap_ns = o->wake_gap_ns;
    t->skel->rodata->wakeup_bytes = ring / 4;
    t->skel->rodata->ns_inum = ns_inum;
    t->skel->rodata->pin_layout = PROCTRACE_PIN_LAYOUT;
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
        return rc;
    }
    rc = proctrace_bpf__load(t->skel);
    if (rc)
        return proctrace_load_failed(t, rc, why, whylen);
    t->skel->bss->self_tgid = getpid();
    t->spawn_tag = &t->skel->bss->spawn_tag;
    t->self_tgid = &t->skel->bss->self_tgid;
    t->published_pos = &t->skel->bss->published_pos;
    rc = proctrace_bpf__attach(t->skel);
    if (rc) {
        why_set(why, whylen, "BPF attach failed (%s)", strerror(-rc));
        return rc;
    }
    t->fd_tracked = bpf_map__fd(t->skel->maps.tracked);
    t->fd_counters = bpf_map__fd(t->skel->maps.counters);
    rc = ring_open(t, bpf_map__fd(t->skel->maps.events), ring);
    if (rc) {
        why_set(why, whylen, "ring buffer setup failed (%s)", strerror(-rc));
        return rc;
    }
    if (t->pin_dir[0] != '\0')
        t->pinned = pin_all(t) == 0;
    return 0;
}

int proctrace_open(struct proctrace **out, const struct proctrace_opts *o, char *why, size_t whylen)
{
    struct proctrace_opts def = {0};
    struct proctrace *t = NULL;
    size_t ring;
    long page = sysconf(_SC_PAGESIZE);
    uint32_t ns_inum = 0;
    int rc, gd;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!o)
        o = &def;
    ring = o->ring_bytes ? o->ring_bytes : PROCTRACE_DEFAULT_RING;
    if ((ring & (ring - 1)) != 0 || ring < (size_t)page || ring > (1u << 30) ||
        o->exit_mode < PROCTRACE_EXIT_AUTO || o->exit_mode > PROCTRACE_EXIT_LIVE ||
        (o->pin_dir != NULL && strlen(o->pin_dir) >= sizeof(t->pin_dir))) {
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
    t->fd_events = t->fd_tracked = t->fd_counters = t->fd_bss = t->fd_rodata = t->epfd = -1;
    t->defer_release = o->defer_release;
    t->page = (size_t)page;
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
    if (o->pin_dir != NULL)
        snprintf(t->pin_dir, sizeof(t->pin_dir), "%s", o->pin_dir);
    if (o->pin_dir != NULL && o->pin_reuse && !o->test_invalid) {
        rc = take_pinned(t, o, ring, ns_inum, why, whylen);
        if (rc == 0) {
            *t->self_tgid = getpid(); /* its forks take spawn tags from now on */
            *out = t;
            return 0;
        }
        /* nothing there, or not what is asked for now (or half of it): start afresh */
        proctrace_close(t); /* (keeps nothing pinned: t->pinned is 0 unless all was taken) */
        t = NULL;
        if (rc != -ENOENT)
            proctrace_pin_remove(o->pin_dir);
        {
            struct proctrace_opts again = *o;
            again.pin_reuse = 0;
            return proctrace_open(out, &again, why, whylen);
        }
    }
    if (o->pin_dir != NULL)
        proctrace_pin_remove(o->pin_dir); /* a leftover nobody asked to take over */
    rc = load_new(t, o, ring, ns_inum, why, whylen);
    if (rc)
        goto cleanup;
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
    if (bpf_map_update_elem(t->fd_tracked, &key, &val, BPF_ANY))
        return -errno;
    return 0;
}

int proctrace_tag(const struct proctrace *t, pid_t tgid, uint64_t *tag)
{
    __s32 key = (__s32)tgid;
    __u64 val = 0;

    if (!t || tgid <= 0 || !tag)
        return -EINVAL;
    if (bpf_map_lookup_elem(t->fd_tracked, &key, &val))
        return -errno;
    *tag = val;
    return 0;
}

void proctrace_set_spawn_tag(struct proctrace *t, uint64_t tag)
{
    if (t && t->spawn_tag)
        __atomic_store_n(t->spawn_tag, tag, __ATOMIC_SEQ_CST);
}

int proctrace_untrack(struct proctrace *t, pid_t tgid)
{
    __s32 key = (__s32)tgid;

    if (!t || tgid <= 0)
        return -EINVAL;
    if (bpf_map_delete_elem(t->fd_tracked, &key))
        return -errno;
    return 0;
}

int proctrace_fd(const struct proctrace *t)
{
    return t ? t->epfd : -EINVAL;
}

int proctrace_consume(struct proctrace *t, proctrace_cb cb, void *arg)
{
    uint64_t prod;
    int n = 0, rc = 0;

    if (!t || !cb)
        return -EINVAL;
    /* pairs with the kernel's release store of producer_pos in bpf_ringbuf_commit: the
     * records below it are complete, or still marked busy */
    prod = __atomic_load_n(t->prod_pos, __ATOMIC_ACQUIRE);
    while (t->read_pos < prod) {
        uint32_t *hdr = (uint32_t *)(t->data + (t->read_pos & t->mask));
        /* pairs with the kernel's release store of the record's length (commit) */
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE), size;
        if (len & RB_BUSY)
            break; /* reserved, not committed yet: the next call */
        size = len & ~(RB_BUSY | RB_DISC);
        t->event_pos = t->read_pos;
        t->read_pos += (size + RB_HDR + 7) & ~7u;
        if (!(len & RB_DISC)) {
            struct proctrace_event e;
            memset(&e, 0, sizeof(e));
            memcpy(&e, (unsigned char *)hdr + RB_HDR, size < sizeof(e) ? size : sizeof(e));
            rc = cb(arg, &e);
            n++;
        }
        if (!t->defer_release)
            ring_free_upto(t, t->read_pos);
        if (rc != 0)
            return rc;
        if (t->read_pos >= prod)
            prod = __atomic_load_n(t->prod_pos, __ATOMIC_ACQUIRE);
    }
    return n;
}

int proctrace_release(struct proctrace *t)
{
    return proctrace_release_keep(t, UINT64_MAX);
}

int proctrace_release_keep(struct proctrace *t, uint64_t keep_from)
{
    uint64_t upto;

    if (!t)
        return 0;
    upto = keep_from < t->read_pos ? keep_from : t->read_pos;
    /* first the mark (everything read is acted on), then the consumer position: a loader
     * killed between the two leaves its successor a replay, never a second application; the
     * release store below orders the two */
    if (t->published_pos != NULL)
        __atomic_store_n(t->published_pos, (__u64)t->read_pos, __ATOMIC_RELAXED);
    if (upto > (uint64_t)__atomic_load_n(t->cons_pos, __ATOMIC_RELAXED))
        ring_free_upto(t, upto);
    /* a record the kernel committed after our last read and before the store above did not
     * wake us (it wakes only a consumer that had caught up): look */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(t->prod_pos, __ATOMIC_ACQUIRE) > t->read_pos;
}

uint64_t proctrace_event_pos(const struct proctrace *t)
{
    return t != NULL ? t->event_pos : 0;
}

int proctrace_event_replayed(const struct proctrace *t)
{
    return t != NULL && t->event_pos < t->replay_end;
}

int proctrace_unread(const struct proctrace *t)
{
    return t != NULL && __atomic_load_n(t->prod_pos, __ATOMIC_ACQUIRE) > t->read_pos;
}

int proctrace_reused(const struct proctrace *t)
{
    return t != NULL && t->reused;
}

int proctrace_pinned(const struct proctrace *t)
{
    return t != NULL && t->pinned;
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
    if (bpf_map_lookup_elem(t->fd_counters, &idx, vals) == 0)
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

void proctrace_unpin(struct proctrace *t)
{
    if (t && t->pinned) {
        proctrace_pin_remove(t->pin_dir);
        t->pinned = 0;
    }
}

void proctrace_close(struct proctrace *t)
{
    if (!t)
        return;
    ring_close(t);
    if (t->bss_map != NULL)
        munmap(t->bss_map, t->bss_len);
    if (t->skel == NULL) { /* a pinned set's descriptors (loaded: the skeleton owns them) */
        int *fds[] = {&t->fd_events, &t->fd_tracked, &t->fd_counters, &t->fd_bss, &t->fd_rodata};
        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
            if (*fds[i] >= 0)
                close(*fds[i]);
    }
    proctrace_bpf__destroy(t->skel); /* pinned links stay attached: the pins hold them */
    free(t->log);
    free(t);
}
