/* rss.c - procbusd-bench: procbusd's resident memory and idle CPU with N sleeping programs. */
#include "pbdb.h"

/* ---- resident memory ---- */

int bench_rss(int n)
{
    char text[1024], key[64], label[160], tag[16], seg[160];
    struct procbus_reader r;
    struct bench_daemon d;
    struct stat sb;
    double t_run_ms, t_stop_ms, idle_cpu;
    long rss, hwm, anon, file, shm, cpu0, cpu1;
    uint64_t t0;
    int rc = -1, st;

    snprintf(tag, sizeof(tag), "rss%d", n);
    bench_daemon_init(&d, tag);
    snprintf(text, sizeof(text),
             "; procbusd-bench: %d sleeping programs\n"
             "[procbusd]\ncapacity = %d\n"
             "[program:p]\ncommand = sleep 1000\nnumprocs = %d\n"
             "process_name = p%%(process_num)0%dd\nstartsecs = 0\n",
             n, n, n, n > 1000 ? 5 : 3);
    if (write_file(d.conf, text) < 0 || daemon_start(&d) < 0)
        goto out;
    say("resident memory with %d programs", n);
    if (open_seg(&r, &d, 10000) < 0)
        goto out;
    if (wait_running(&r, &d, (size_t)n, 120000) < 0) {
        procbus_close(&r);
        goto out;
    }
    t_run_ms = (double)(mono() - d.t_start) / 1e6;
    procbus_close(&r);
    sleep_ms(1200); /* a pass of the 1 s CPU/RSS sampler, then measure over 3 more s */
    cpu0 = proc_cpu_ticks(d.pid);
    t0 = mono();
    sleep_ms(3000);
    cpu1 = proc_cpu_ticks(d.pid);
    idle_cpu = cpu0 < 0 || cpu1 < cpu0
                   ? NAN
                   : 100.0 * (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) /
                         ((double)(mono() - t0) / 1e9);
    rss = proc_status_kb(d.pid, "VmRSS");
    hwm = proc_status_kb(d.pid, "VmHWM");
    anon = proc_status_kb(d.pid, "RssAnon");
    file = proc_status_kb(d.pid, "RssFile");
    shm = proc_status_kb(d.pid, "RssShmem");
    if (rss < 0 || procbus_segment_path(d.seg, seg, sizeof(seg)) < 0 || stat(seg, &sb) < 0) {
        say("cannot read procbusd's memory or segment");
        goto out;
    }
    snprintf(key, sizeof(key), "procbusd_rss_%d_kib", n);
    snprintf(label, sizeof(label), "procbusd VmRSS, %d programs RUNNING", n);
    add(key, label, (double)rss, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_rss_anon_%d_kib", n);
    snprintf(label, sizeof(label), "  of which RssAnon (private heap, stacks), %d programs", n);
    add(key, label, (double)anon, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_rss_file_%d_kib", n);
    add(key, key, (double)file, "KiB", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "procbusd_rss_shmem_%d_kib", n);
    snprintf(label, sizeof(label), "  of which RssShmem (segment pages it touched), %d programs",
             n);
    add(key, label, (double)shm, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_hwm_%d_kib", n);
    add(key, key, (double)hwm, "KiB", T_NONE, 0, 0);
    snprintf(key, sizeof(key), "segment_size_%d_kib", n);
    snprintf(label, sizeof(label), "segment file size, capacity %d (shared, tmpfs)", n);
    add(key, label, (double)sb.st_size / 1024.0, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "segment_resident_%d_kib", n);
    snprintf(label, sizeof(label), "segment pages allocated, capacity %d", n);
    add(key, label, (double)sb.st_blocks * 512.0 / 1024.0, "KiB", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_idle_cpu_%d_pct", n);
    snprintf(label, sizeof(label), "procbusd CPU use, %d programs, nothing happening (3 s)", n);
    add(key, label, idle_cpu, "% of a CPU", T_NONE, 0, 1);
    snprintf(key, sizeof(key), "procbusd_all_running_%d_ms", n);
    snprintf(label, sizeof(label), "procbusd start to %d programs RUNNING", n);
    add(key, label, t_run_ms, "ms", T_NONE, 0, 1);
    t0 = mono();
    kill(d.pid, SIGTERM);
    if (wait_exit(d.pid, 60000, &st) == 0) {
        t_stop_ms = (double)(mono() - t0) / 1e6;
        snprintf(key, sizeof(key), "procbusd_stop_%d_ms", n);
        snprintf(label, sizeof(label), "procbusd SIGTERM to exit, %d programs", n);
        add(key, label, t_stop_ms, "ms", T_NONE, 0, 1);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            say("procbusd exited with status 0x%x", st);
        unlink_seg(d.seg, d.pid);
        unlink(d.sock);
        d.pid = 0;
    }
    rc = 0;
out:
    bench_daemon_stop(&d, 60000);
    return rc;
}
