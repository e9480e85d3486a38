/* trace_glue.c - procbusd's use of the trace module: options, program attribution, losses. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "procbus_pub.h"
#include "util.h"

/* pbd_trace_opts.program_by_name: the record id of the program called `name`, or 0. */
static uint64_t program_by_name(void *arg, const char *name)
{
    struct pbd_daemon *d = arg;
    size_t i;

    for (i = 0; i < d->n_inst; i++)
        if (strcmp(d->inst[i]->prog->name, name) == 0)
            return d->inst[i]->id;
    return 0;
}

/* pbd_trace_opts.is_own: procbusd's fd holder or an upgrade's probe. */
static int is_own(void *arg, pid_t pid)
{
    const struct pbd_daemon *d = arg;

    return pid > 0 && (pid == d->holder.pid || pid == d->reexec.probe);
}

void pbd_trace_glue_staged(struct pbd_daemon *d, int n)
{
    uint64_t lost = pbd_trace_lost(d->trace), now;

    if (n > 0)
        d->staged = 1;
    if (lost == d->trace_lost_logged)
        return;
    now = pb_now_ns(CLOCK_MONOTONIC);
    if (now < d->trace_lost_log_at)
        return; /* at most one line a second during a storm */
    pbd_say(d, PBD_L_WARN,
            "tracer: %llu event(s) lost in the kernel (ring buffer full, %llu in all); "
            "reconciling from /proc",
            (unsigned long long)(lost - d->trace_lost_logged), (unsigned long long)lost);
    d->trace_lost_logged = lost;
    d->trace_lost_log_at = now + PB_NS_PER_SEC;
}

/* Where tracers are pinned (bpffs), one folder per segment; PROCBUS_BPF_PIN_ROOT overrides it
 * (tests). */
#define PBD_PIN_ROOT "/sys/fs/bpf/procbus"

static const char *pin_root(void)
{
    const char *env = getenv("PROCBUS_BPF_PIN_ROOT");
    return env != NULL && env[0] == '/' ? env : PBD_PIN_ROOT;
}

/* A segment path as one bpffs name: '/' and '%' escaped as %2f and %25 (reversible, so a stale
 * folder names its segment); "h-HASH" when that would be too long. */
static void pin_name(const char *seg, char *out, size_t len)
{
    size_t o = 0;
    uint64_t h = 14695981039346656037ull;

    for (const char *c = seg; *c != '\0'; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (const char *c = seg; *c != '\0' && o + 4 < len && o < 200; c++) {
        if (*c == '/' || *c == '%')
            o += (size_t)snprintf(out + o, len - o, "%%%02x", (unsigned char)*c);
        else
            out[o++] = *c;
    }
    out[o] = '\0';
    if (o >= 200 || o + 4 >= len)
        snprintf(out, len, "h-%016llx", (unsigned long long)h);
}

/* The segment path a pin folder's name says, or 0 ("h-..." names do not say). */
static int pin_segment(const char *name, char *out, size_t len)
{
    size_t o = 0;

    if (strncmp(name, "h-", 2) == 0)
        return 0;
    for (const char *c = name; *c != '\0' && o + 1 < len; c++) {
        unsigned v;
        if (*c == '%' && sscanf(c + 1, "%2x", &v) == 1) {
            out[o++] = (char)v;
            c += 2;
        } else {
            out[o++] = *c;
        }
    }
    out[o] = '\0';
    return o > 0 && out[0] == '/';
}

/* Remove pinned tracers of segments nobody will take over: the segment file is gone, or it was
 * shut down cleanly (a pinned tracer left by a procbusd killed during its shutdown). A segment
 * whose publisher died without a shutdown keeps its tracer for the next procbusd on it. */
static void remove_stale_pins(struct pbd_daemon *d, const char *mine)
{
    char dir[512], seg[512];
    struct dirent *de;
    DIR *root = opendir(pin_root());

    if (root == NULL)
        return;
    while ((de = readdir(root)) != NULL) {
        uint64_t hb = 0;
        int fd, stale;
        if (de->d_name[0] == '.' || strcmp(de->d_name, mine) == 0 ||
            !pin_segment(de->d_name, seg, sizeof(seg)))
            continue;
        fd = open(seg, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        stale = fd < 0
                    ? errno == ENOENT
                    : pread(fd, &hb, sizeof(hb), offsetof(struct procbus_header, heartbeat_ns)) ==
                              (ssize_t)sizeof(hb) &&
                          hb == PROCBUS_HB_SHUTDOWN;
        if (fd >= 0)
            close(fd);
        if (!stale)
            continue;
        snprintf(dir, sizeof(dir), "%s/%s", pin_root(), de->d_name);
        if (pbd_trace_pin_remove(dir) == 0)
            pbd_say(d, PBD_L_INFO, "trace: removed the stale pinned tracer of %s (%s)", seg,
                    fd < 0 ? "the segment is gone" : "it was shut down");
    }
    closedir(root);
}

/* The tracer's pin folder for this segment, when bpffs is there (else NULL, and why). */
static const char *pin_dir_for(struct pbd_daemon *d, char *buf, size_t len)
{
    char name[256], why[256];
    int n;

    pin_name(procbus_pub_path(d->pub), name, sizeof(name));
    n = snprintf(buf, len, "%s/%s", pin_root(), name);
    if (n < 0 || (size_t)n >= len || pbd_trace_pin_fs(buf, why, sizeof(why)) < 0) {
        pbd_say(d, PBD_L_WARN,
                "trace: not pinned (%s): exits while procbusd is down will be unknown",
                n < 0 || (size_t)n >= len ? "the pin path is too long" : why);
        return NULL;
    }
    remove_stale_pins(d, name);
    return buf;
}

int pbd_trace_glue_start(struct pbd_daemon *d)
{
    static const char *const modes[] = {"auto", "on", "off", "proc"};
    struct pbd_trace_opts o = {0};
    char why[256] = "";
    int rc;

    o.mode = d->cfg.daemon.trace;
    o.observe = d->cfg.daemon.observe || d->observe_override;
    o.keep_exited_secs = d->cfg.daemon.keep_exited_secs;
    o.ring_kb = d->cfg.daemon.trace_ring_kb;
    o.capacity = d->cfg.daemon.capacity;
    o.batch_ms = d->cfg.daemon.trace_batch_ms;
    o.program_by_name = program_by_name;
    o.is_own = is_own;
    o.arg = d;
    o.seeds = d->seeds; /* a predecessor's descendants (adopt.c) */
    o.n_seeds = d->n_seeds;
    if (o.mode == PBD_TRACE_AUTO || o.mode == PBD_TRACE_ON) {
        o.pin_dir = pin_dir_for(d, d->pin_dir, sizeof(d->pin_dir));
        o.pin_reuse = d->adopting; /* a crashed predecessor's tracer, with its backlog */
    }
    if (o.mode == PBD_TRACE_OFF && o.observe) {
        fprintf(stderr, "procbusd: observe needs tracing: trace=off contradicts it\n");
        return -EINVAL;
    }
    rc = pbd_trace_open(&d->trace, d->pub, &o, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "procbusd: --trace=%s: %s: %s\n", modes[o.mode],
                o.mode == PBD_TRACE_ON ? "the eBPF tracer cannot run" : "cannot follow processes",
                why[0] ? why : strerror(-rc));
        return rc;
    }
    if (o.mode == PBD_TRACE_AUTO && pbd_trace_mode(d->trace) == PBD_TRACE_PROC)
        fprintf(stderr,
                "procbusd: trace: eBPF unavailable (%s); following descendants by polling "
                "/proc every %d ms\n",
                why, d->cfg.daemon.sample_ms);
    if (o.mode == PBD_TRACE_AUTO && pbd_trace_mode(d->trace) == PBD_TRACE_OFF)
        fprintf(stderr, "procbusd: trace: cannot follow descendants (%s); direct children only\n",
                why);
    if (pbd_trace_fd(d->trace) >= 0) {
        d->w_trace.kind = PBD_W_TRACE;
        pbd_watch_add(d, pbd_trace_fd(d->trace), &d->w_trace);
    }
    pbd_say(d, PBD_L_INFO, "trace: %s (configured %s)%s%s%s",
            pbd_trace_mode(d->trace) == PBD_TRACE_ON     ? "eBPF"
            : pbd_trace_mode(d->trace) == PBD_TRACE_PROC ? "/proc polling"
                                                         : "off, direct children only",
            modes[o.mode], o.observe ? "; observing every process on the host" : "",
            pbd_trace_reused(d->trace)   ? "; taken over from the pinned tracer at "
            : pbd_trace_pinned(d->trace) ? "; pinned at "
                                         : "",
            pbd_trace_pinned(d->trace) ? d->pin_dir : "");
    return 0;
}

void pbd_trace_glue_sync(struct pbd_daemon *d, int walk)
{
    if (d->trace != NULL)
        pbd_trace_glue_staged(d, pbd_trace_sync(d->trace, walk));
}

void pbd_trace_glue_hold(struct pbd_daemon *d)
{
    int fd = d->trace != NULL ? pbd_trace_fd(d->trace) : -1;
    int hold = pbd_trace_ends_held(d->trace) > 0;

    if (fd < 0 || hold == d->trace_paused)
        return;
    if (hold) {
        epoll_ctl(d->epfd_urgent, EPOLL_CTL_DEL, fd, NULL);
    } else {
        pbd_watch_add(d, fd, &d->w_trace);
        d->trace_unread = 1; /* what came meanwhile woke nobody */
    }
    d->trace_paused = hold;
}

void pbd_trace_glue_tick(struct pbd_daemon *d)
{
    if (d->trace != NULL)
        pbd_trace_glue_staged(d, pbd_trace_tick(d->trace, pb_now_ns(CLOCK_MONOTONIC),
                                                (uint64_t)d->cfg.daemon.sample_ms * 1000000ull));
    pbd_stop_tree_poll(d);
}

void pbd_trace_glue_close(struct pbd_daemon *d)
{
    struct pbd_trace_stats s = pbd_trace_stats(d->trace);

    if (d->trace != NULL && pbd_trace_mode(d->trace) != PBD_TRACE_OFF)
        pbd_say(d, PBD_L_INFO,
                "trace: read %llu fork, %llu exec, %llu exit, %llu rename event(s); %llu lost in "
                "the kernel; %llu walk(s); %llu exit(s) merged into records a walk had ended; "
                "%llu record(s) ended with status unknown; %llu attributed by kernel tag",
                (unsigned long long)s.forks, (unsigned long long)s.execs,
                (unsigned long long)s.exits, (unsigned long long)s.renames,
                (unsigned long long)pbd_trace_lost(d->trace), (unsigned long long)s.walks,
                (unsigned long long)s.merged, (unsigned long long)s.vanished,
                (unsigned long long)s.tagged);
    if (d->clean_exit) /* a shutdown: nothing to record for a successor */
        pbd_trace_unpin(d->trace);
    pbd_trace_close(d->trace);
    d->trace = NULL;
}
