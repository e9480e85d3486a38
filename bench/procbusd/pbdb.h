/* pbdb.h - what procbusd-bench's files share: its state, daemons, readers, the parts it runs. */
#ifndef PROCBUS_PBDB_H
#define PROCBUS_PBDB_H

#define _GNU_SOURCE
#include "procbus.h"
#define BENCH_NAME        "procbusd-bench"
#define BENCH_MAX_ROWS    256
#define BENCH_UTIL_SHARED /* main.c holds bench_util.h's state */
#include "bench_util.h"

#include <inttypes.h>
#include <sys/mman.h>

/* ---- state (main.c) ---- */

extern int g_verbose;              /* --verbose */
extern char g_self[PATH_MAX - 64]; /* this binary: the exiter's command */
extern char g_client[PATH_MAX];    /* bench/xmlrpc_getinfo.py */
extern char g_python[PATH_MAX], g_supervisord[PATH_MAX], g_supervisorctl[PATH_MAX];

/* ---- daemons.c ---- */

/* Mean of v[0..n); NAN when n is 0. */
double mean_of(const double *v, int n);

/* A `Field:` of /proc/PID/status in kB (VmRSS, RssAnon, ...); -1 if unreadable. */
long proc_status_kb(pid_t pid, const char *field);

/* A busy loop pinned to `cpu`, killed with this process; its pid (tracked) or -1. */
pid_t start_burner(int cpu);

/* A burner pinned to each of (up to) the first two CPUs this process may use; how many. */
int start_burners(pid_t burn[2]);

/* SIGKILL and reap the burners of start_burners (zeroes burn[]). */
void stop_burners(pid_t burn[2]);

/* Start procbusd on d->conf (written by the caller, after bench_daemon_init) without its
 * tracer; 0 or -1 (said). */
int daemon_start(struct bench_daemon *d);

/* Open the daemon's segment once it exists (timeout_ms at most); 0 or -1 (said). */
int open_seg(struct procbus_reader *r, const struct bench_daemon *d, int timeout_ms);

/* Wait until `want` supervised records are RUNNING; 0 or -1 (said). */
int wait_running(struct procbus_reader *r, const struct bench_daemon *d, size_t want,
                 int timeout_ms);

/* ---- the parts (each adds its rows; 0, or -1 when it could not run) ---- */

/* exit.c: `procbusd-bench --exiter FILE`, the program the exit benchmarks run. */
int exiter_main(const char *path);

/* exit.c: exit -> EXITED visible, procbusd and its floor (exit-floor) in the same run:
 * idle, loaded, with 1,000 sampled programs; `samples` exits timed per run. */
int bench_exit_latency(int samples);

/* rss.c: procbusd's memory and idle CPU with n sleeping programs. */
int bench_rss(int n);

/* peer.c: against supervisord, nprog programs. */
int bench_peer(int nprog, int ctl_runs, int pb_runs, int xml_calls, long get_calls);

/* startup.c: n programs started by procbusd beside a bare posix_spawn loop of the same n;
 * heartbeat, control requests and tracer losses during it; `rounds` of each. */
int bench_startup(int n, int rounds);

/* startup.c: n programs (thousands) started, then stopped with SIGTERM: after all run, and
 * during the start-up; what is left behind. */
int bench_startup_stop(int n);

#endif /* PROCBUS_PBDB_H */
