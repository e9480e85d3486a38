/* bpfstats.c - tracer-bench: BPF run-time statistics of procbusd's programs (raw bpf(2)), and its
 * procbusd. */
#include "tb.h"

/* ---- BPF run-time statistics (figure 2): raw bpf(2), no libbpf ---- */

static int g_stats_fd = -1;  /* BPF_ENABLE_STATS descriptor: stats on while it is open */
static int g_stats_old = -1; /* kernel.bpf_stats_enabled before we wrote 1 (fallback path) */

struct bpfprog g_progs[MAX_PROGS];
int g_nprogs;
int g_progs_by_owner; /* 1: ids found in procbusd's fds; 0: every proctrace_* program */

static long sys_bpf(int cmd, union bpf_attr *a)
{
    return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int bpf_prog_info_of(uint32_t id, struct bpf_prog_info *info)
{
    union bpf_attr a;
    int fd, rc;

    memset(&a, 0, sizeof(a));
    a.prog_id = id;
    fd = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
    if (fd < 0)
        return -errno;
    memset(info, 0, sizeof(*info));
    memset(&a, 0, sizeof(a));
    a.info.bpf_fd = (uint32_t)fd;
    a.info.info_len = sizeof(*info);
    a.info.info = (uint64_t)(uintptr_t)info;
    rc = (int)sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
    if (rc < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int stats_on(void)
{
    union bpf_attr a;
    FILE *fp;

    memset(&a, 0, sizeof(a));
    a.enable_stats.type = BPF_STATS_RUN_TIME;
    g_stats_fd = (int)sys_bpf(BPF_ENABLE_STATS, &a);
    if (g_stats_fd >= 0)
        return 0;
    fp = fopen("/proc/sys/kernel/bpf_stats_enabled", "r"); /* kernels before 5.8 */
    if (fp != NULL) {
        if (fscanf(fp, "%d", &g_stats_old) != 1)
            g_stats_old = -1;
        fclose(fp);
    }
    if (g_stats_old >= 0 && write_file("/proc/sys/kernel/bpf_stats_enabled", "1\n") < 0)
        g_stats_old = -1;
    return g_stats_old >= 0 ? 0 : -1;
}

void stats_off(void)
{
    char v[16];

    if (g_stats_fd >= 0) {
        close(g_stats_fd);
        g_stats_fd = -1;
    }
    if (g_stats_old >= 0) {
        snprintf(v, sizeof(v), "%d\n", g_stats_old);
        write_file("/proc/sys/kernel/bpf_stats_enabled", v);
        g_stats_old = -1;
    }
}

static int prog_known(uint32_t id)
{
    int i;

    for (i = 0; i < g_nprogs; i++)
        if (g_progs[i].id == id)
            return 1;
    return 0;
}

static void prog_add(uint32_t id)
{
    struct bpf_prog_info info;

    if (g_nprogs >= MAX_PROGS || prog_known(id) || bpf_prog_info_of(id, &info) < 0)
        return;
    if (strncmp(info.name, "proctrace_", 10) != 0)
        return;
    g_progs[g_nprogs].id = id;
    memcpy(g_progs[g_nprogs].name, info.name, BPF_OBJ_NAME_LEN);
    g_progs[g_nprogs].name[BPF_OBJ_NAME_LEN] = '\0';
    g_progs[g_nprogs].run_ns = g_progs[g_nprogs].run_cnt = 0;
    g_nprogs++;
}

/* procbusd's proctrace_* programs: the prog_id lines of its descriptors' fdinfo (prog and link
 * fds); if there are none, every loaded proctrace_* program. */
int find_progs(pid_t owner)
{
    char path[96], line[128];
    DIR *d;
    struct dirent *e;
    union bpf_attr a;

    g_nprogs = 0;
    snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)owner);
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p2[400];
        FILE *fp;
        unsigned id;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof(p2), "%s/%s", path, e->d_name);
        fp = fopen(p2, "r");
        if (fp == NULL)
            continue;
        while (fgets(line, sizeof(line), fp) != NULL)
            if (sscanf(line, "prog_id: %u", &id) == 1)
                prog_add(id);
        fclose(fp);
    }
    if (d != NULL)
        closedir(d);
    g_progs_by_owner = g_nprogs > 0;
    if (g_nprogs > 0)
        return 0;
    memset(&a, 0, sizeof(a));
    while (sys_bpf(BPF_PROG_GET_NEXT_ID, &a) == 0) {
        prog_add(a.next_id);
        a.start_id = a.next_id;
    }
    return g_nprogs > 0 ? 0 : -1;
}

/* Current run_time_ns and run_cnt of each program in g_progs. */
void progs_read(uint64_t *ns, uint64_t *cnt)
{
    struct bpf_prog_info info;
    int i;

    for (i = 0; i < g_nprogs; i++) {
        ns[i] = cnt[i] = 0;
        if (bpf_prog_info_of(g_progs[i].id, &info) == 0) {
            ns[i] = info.run_time_ns;
            cnt[i] = info.run_cnt;
        }
    }
}

/* ---- procbusd ---- */

/*
 * Start procbusd in observe mode (trace = on, keep_exited_secs = 0) with a fresh segment, and
 * open it in *r; returns once this process has a record (the startup /proc walk is done).
 */
int observer_start(struct bench_daemon *d, struct procbus_reader *r, const char *tag)
{
    char body[1024], ring[96] = "";
    uint64_t end;
    int rc = -1, opened = 0;

    bench_daemon_init(d, tag);
    if (g_ring_kb > 0)
        snprintf(ring, sizeof(ring), "trace_ring_kb = %d\n", g_ring_kb);
    if (g_batch_ms > 0)
        snprintf(ring + strlen(ring), sizeof(ring) - strlen(ring), "trace_batch_ms = %d\n",
                 g_batch_ms);
    snprintf(body, sizeof(body),
             "[procbusd]\nsegment = %s\nsocket = %s\nobserve = true\ntrace = on\n"
             "keep_exited_secs = 0\ncapacity = 16384\nlog_level = warn\n%s",
             d->seg, d->sock, ring);
    if (write_file(d->conf, body) < 0 || bench_daemon_start(d, NULL) < 0) {
        bench_daemon_stop(d, 30000);
        return -1;
    }
    end = mono() + 20000 * NS_PER_MS;
    while (!g_stop) {
        if (!opened && procbus_open(r, d->seg) == 0)
            opened = 1;
        if (opened) {
            struct procbus_proc me;
            if (procbus_get_pid(r, getpid(), &me) == 0) {
                rc = 0;
                break;
            }
        }
        if (!bench_daemon_alive(d)) {
            say("procbusd exited at startup (observe = true, trace = on)");
            show_tail(d->log);
            break;
        }
        if (mono() > end) {
            say("procbusd: %s within 20 s (is its observe mode built in?)",
                opened ? "this process never got a record" : "no segment");
            show_tail(d->log);
            break;
        }
        sleep_ms(5);
    }
    if (rc < 0) {
        if (opened)
            procbus_close(r);
        bench_daemon_stop(d, 30000);
    }
    return rc;
}

/*
 * Wait until procbusd has published everything the kernel queued before now: fork a marker
 * child that exits at once and follow the ring until its EXITED (or REMOVE) event shows up.
 * The BPF ring is in reservation order, so everything before the marker's exit is done too.
 */
int observer_catch_up(struct procbus_reader *r, int timeout_ms)
{
    struct procbus_event ev;
    uint64_t missed, end = mono() + (uint64_t)timeout_ms * NS_PER_MS;
    pid_t m;
    int rc;

    procbus_seek_events(r, PROCBUS_SEEK_NOW);
    m = fork();
    if (m < 0)
        return -1;
    if (m == 0)
        _exit(0);
    waitpid(m, NULL, 0);
    while (!g_stop && mono() < end) {
        uint64_t gen = procbus_generation(r);
        rc = procbus_next_event(r, &ev, &missed);
        if (rc == -ENOENT) {
            procbus_wait(r, gen, 50);
            continue;
        }
        if (rc == 0 && ev.pid == m &&
            ((ev.kind == PROCBUS_EV_STATE && ev.new_state == PROCBUS_STATE_EXITED) ||
             ev.kind == PROCBUS_EV_REMOVE))
            return 0;
    }
    return -1;
}
