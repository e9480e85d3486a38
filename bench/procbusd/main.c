/* main.c - procbusd-bench: options, which benchmarks run, the table and the JSON. */
#define BENCH_UTIL_MAIN /* bench_util.h's state lives in this file */
#include "pbdb.h"

/*
 * Groups of benchmarks, selected on the command line:
 *
 *   --procbusd  needs only the build (procbusd, procbus, bench/exit-floor):
 *     - exit-to-visible (exit.c): a program whose command is this binary in --exiter
 *       mode sleeps 20 ms, stores its CLOCK_MONOTONIC (and CLOCK_REALTIME) time into a
 *       shared file and _exit()s; the daemon restarts it. This process follows the
 *       event ring as a reader and, for every EXITED event of that record, reads its own
 *       clock right away: latency = seen - exit stamp. procbusd (autorestart=true,
 *       startsecs=0) and its floor, exit-floor (a minimal pidfd + epoll loop that
 *       publishes one record with libprocbus-pub), take turns in the same run: idle,
 *       loaded (a busy loop pinned to each CPU), a spinning reader, and with 1,000 more
 *       programs that procbusd samples every 100 ms.
 *     - start-up (startup.c): 1,000 `sleep 1000` programs, procbusd's first STARTING to
 *       last RUNNING beside a bare posix_spawn loop of the same programs, rounds
 *       alternating; meanwhile the heartbeat's age, control requests' round trips and
 *       the tracer's losses. Then 5,000 programs: SIGTERM once all run, and during the
 *       start-up; time to exit and what is left behind.
 *     - resident memory of procbusd with 100 and 1,000 `sleep 1000` programs (rss.c).
 *   --exit, --startup: only those parts of --procbusd.
 *   --peer      needs Debian's supervisor package too: the same 100 `sleep 1000`
 *     programs under supervisord and procbusd at once (one config file that
 *     both load); whole-process `supervisorctl status` vs `procbus status`, and
 *     one XML-RPC getProcessInfo round trip from a warm Python client
 *     (bench/xmlrpc_getinfo.py) vs procbus_get_name in this process (peer.c).
 *
 * Everything lives in a private mkdtemp folder under /tmp and uniquely named
 * segments; daemons get PR_SET_PDEATHSIG, this process is a child subreaper,
 * and every process is stopped and reaped before exit, also on SIGINT/SIGTERM.
 */

/* ---- globals shared by procbusd-bench's files (pbdb.h) ---- */

int g_verbose;
char g_self[PATH_MAX - 64];
char g_client[PATH_MAX];
char g_python[PATH_MAX], g_supervisord[PATH_MAX], g_supervisorctl[PATH_MAX];

/* ---- main ---- */

/* bench_util.h's flat JSON, nothing more. */
static int write_json(const char *path, const struct machine *m, const char *mode)
{
    char tmp[PATH_MAX + 16];
    FILE *fp = json_begin(path, tmp, sizeof(tmp), m, mode);

    return fp != NULL ? json_end(fp, tmp, path) : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: procbusd-bench [--procbusd | --exit | --startup | --peer | --all]\n"
               "                      [--json PATH] [--bin-dir DIR] [--client PATH] [--samples N]\n"
               "                      [--programs N] [--big N] [--rounds N] [--verbose] [--help]\n"
               "\n"
               "  --procbusd     exit-to-visible latency beside its floor (idle, loaded,\n"
               "                 spinning reader, 1,000 sampled programs), start-up of 1,000\n"
               "                 programs beside a bare posix_spawn loop, 5,000 programs and\n"
               "                 SIGTERM, procbusd's resident memory with 100 and 1,000\n"
               "  --exit         only the exit-to-visible part of --procbusd\n"
               "  --startup      only the start-up parts of --procbusd\n"
               "  --peer         100 programs under supervisord and procbusd at once:\n"
               "                 `supervisorctl status` vs `procbus status`, XML-RPC\n"
               "                 getProcessInfo vs procbus_get_name (needs Debian's supervisor)\n"
               "  --all          both (the default)\n"
               "  --json PATH    also write the figures as flat JSON keys to PATH\n"
               "  --bin-dir DIR  where procbusd and procbus are (default: this binary's ../)\n"
               "  --client PATH  bench/xmlrpc_getinfo.py (default: found next to the tree)\n"
               "  --samples N    exit events timed per latency run and side (default 1000,\n"
               "                 at least 300)\n"
               "  --programs N   programs of the start-up comparison (default 1000)\n"
               "  --big N        programs of the start-and-SIGTERM runs (default 5000)\n"
               "  --rounds N     start-up rounds (1 to 9, default 3)\n"
               "  --verbose      also print the XML-RPC client's raw figures\n"
               "\n"
               "Prints a markdown table on stdout, progress on stderr. Exit status 0 when\n"
               "every benchmark ran (targets missed or not), 1 when one could not run, 2 on\n"
               "bad usage.\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *mode = "all";
    int do_exit = 1, do_start = 1, do_rss = 1, do_peer = 1, samples = 1000, failed = 0, i;
    int programs = 1000, big = 5000, rounds = 3;
    struct machine m;
    ssize_t n;

    if (argc == 3 && strcmp(argv[1], "--exiter") == 0)
        return exiter_main(argv[2]);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--procbusd") == 0) {
            do_exit = do_start = do_rss = 1;
            do_peer = 0;
            mode = "procbusd";
        } else if (strcmp(argv[i], "--exit") == 0) {
            do_exit = 1;
            do_start = do_rss = do_peer = 0;
            mode = "exit";
        } else if (strcmp(argv[i], "--startup") == 0) {
            do_start = 1;
            do_exit = do_rss = do_peer = 0;
            mode = "startup";
        } else if (strcmp(argv[i], "--peer") == 0) {
            do_exit = do_start = do_rss = 0;
            do_peer = 1;
            mode = "peer";
        } else if (strcmp(argv[i], "--all") == 0) {
            do_exit = do_start = do_rss = do_peer = 1;
            mode = "all";
        } else if (strcmp(argv[i], "--programs") == 0 && i + 1 < argc) {
            programs = atoi(argv[++i]);
            if (programs < 10 || programs > 20000) {
                fprintf(stderr, "procbusd-bench: --programs: 10 to 20000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--big") == 0 && i + 1 < argc) {
            big = atoi(argv[++i]);
            if (big < 10 || big > 20000) {
                fprintf(stderr, "procbusd-bench: --big: 10 to 20000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > 9) {
                fprintf(stderr, "procbusd-bench: --rounds: 1 to 9\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            snprintf(g_bindir, sizeof(g_bindir), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
            snprintf(g_client, sizeof(g_client), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            samples = atoi(argv[++i]);
            if (samples < 300 || samples > 100000) {
                fprintf(stderr, "procbusd-bench: --samples: 300 to 100000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--verbose") == 0) {
            g_verbose = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0) {
        say("cannot resolve /proc/self/exe");
        return 1;
    }
    g_self[n] = '\0';
    if (g_bindir[0] == '\0') { /* .../build/bench/procbusd-bench -> .../build */
        char *s;
        snprintf(g_bindir, sizeof(g_bindir), "%s", g_self);
        for (i = 0; i < 2 && (s = strrchr(g_bindir, '/')) != NULL; i++)
            *s = '\0';
    }
    if (bench_find_programs("--bin-dir") < 0)
        return 1;
    if (do_peer) {
        if (g_client[0] == '\0') {
            char root[PATH_MAX], *s;
            snprintf(root, sizeof(root), "%s", g_bindir); /* the tree: bin-dir's parent */
            s = strrchr(root, '/');
            if (s != NULL)
                *s = '\0';
            if (access("bench/xmlrpc_getinfo.py", R_OK) == 0)
                snprintf(g_client, sizeof(g_client), "bench/xmlrpc_getinfo.py");
            else
                snprintf(g_client, sizeof(g_client), "%.*s/bench/xmlrpc_getinfo.py",
                         (int)(sizeof(g_client) - 32), root);
        }
        /* Debian's python3 is the one with the supervisor module */
        if (find_exe("/usr/bin/python3", g_python, sizeof(g_python)) < 0 &&
            find_exe("python3", g_python, sizeof(g_python)) < 0) {
            say("python3 not found");
            return 1;
        }
        if (access(g_client, R_OK) < 0 ||
            find_exe("supervisord", g_supervisord, sizeof(g_supervisord)) < 0 ||
            find_exe("supervisorctl", g_supervisorctl, sizeof(g_supervisorctl)) < 0) {
            say("--peer needs %s and supervisord/supervisorctl (Debian: apt-get install "
                "supervisor, or scripts/deps.sh peer)",
                g_client);
            return 1;
        }
    }

    if (bench_setup() < 0)
        return 1;

    machine_start(&m);
    if (do_exit && !g_stop)
        failed |= bench_exit_latency(samples) < 0;
    if (do_start && !g_stop) {
        failed |= bench_startup(programs, rounds) < 0;
        failed |= !g_stop && bench_startup_stop(big) < 0;
    }
    if (do_rss && !g_stop) {
        failed |= bench_rss(100) < 0;
        failed |= !g_stop && bench_rss(1000) < 0;
    }
    if (do_peer && !g_stop)
        failed |= bench_peer(100, 30, 300, 2000, 5000000) < 0;
    machine_end(&m);
    bench_cleanup();
    if (g_stop) {
        say("interrupted");
        return 1;
    }
    print_rows("procbusd", mode, &m, NULL);
    if (json != NULL && write_json(json, &m, mode) < 0)
        failed = 1;
    if (failed)
        say("some benchmarks could not run (see above)");
    return failed ? 1 : 0;
}
