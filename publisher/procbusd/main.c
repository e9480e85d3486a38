/* main.c - procbusd: the supervisor that publishes every program's state into a procbus segment. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "config.h"
#include "daemon.h"
#include "parity.h"
#include "spawn_setup.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: procbusd [-c FILE] [--check] [-s SEGMENT] [--socket PATH] [--observe]\n"
               "                [--trace=auto|on|off|proc] [--log-level error|warn|info|debug]\n"
               "\n"
               "Runs and watches the programs of a supervisord-style INI file and publishes\n"
               "their state into the shared-memory segment SEGMENT (default: $PROCBUS_SEGMENT\n"
               "or \"procbus\"), readable with `procbus status` or the procbus.h reader.\n"
               "\n"
               "  -c, --config FILE   configuration (default: $PROCBUS_CONFIG, ./procbus.conf,\n"
               "                      /etc/procbus/procbus.conf)\n"
               "      --check         validate the configuration and exit (0 = valid)\n"
               "  -s, --segment NAME  segment name or path (overrides [procbusd] segment)\n"
               "      --socket PATH   control socket (overrides [procbusd] socket)\n"
               "      --trace MODE    each program's whole process tree, published as descendant\n"
               "                      records: auto (default: eBPF if it loads, else /proc\n"
               "                      polling), on (eBPF or fail), proc (polling), off\n"
               "      --observe       publish every process on the host (no programs needed)\n"
               "      --log-level L   error, warn, info (default), debug\n"
               "\n"
               "Signals: SIGTERM/SIGINT/SIGQUIT stop every program (dependents first) and exit\n"
               "0; SIGHUP reloads the configuration (like `procbus reload`); SIGUSR2 reopens\n"
               "the log files; SIGRTMIN+1 re-executes the binary at procbusd's own path in\n"
               "place (like `procbus reexec`), keeping every program, pipe and the segment.\n"
               "kill -9 is safe: a procbusd started again adopts what runs (procbusd(8),\n"
               "RESTARTS AND UPGRADES).\n");
}

static void print_warning(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "procbusd: warning: %s\n", msg);
}

/* Soft RLIMIT_NOFILE up to the hard one: every program costs procbusd descriptors (pidfd,
 * pipes, logs), and 1,024 (systemd's default soft limit) runs out at a few hundred programs.
 * The programs get the old soft limit back (spawn_setup.h). */
static void raise_fd_limit(struct pbd_daemon *d)
{
    int rc = pbd_nofile_raise(&d->spawn_opts.nofile);

    if (rc < 0)
        fprintf(stderr, "procbusd: warning: cannot raise the open-file limit: %s\n", strerror(-rc));
}

/*
 * Grow the descriptor table once, now, to what the programs will need (PBD_FDS_PER_PROGRAM
 * each: their pipes, pidfd, log files). The kernel grows it by doubling, and once a process has
 * threads (liburcu's, after procbus_pub_open) each growth waits for an RCU grace period: taking
 * back 1,000 programs' pipes from the fd holder waited for 7 of them (8 to 25 ms each here).
 * Before any thread, growing waits for nothing. Capped by RLIMIT_NOFILE and at 2^20.
 */
#define PBD_FDS_PER_PROGRAM 8
static void reserve_fd_table(size_t n_progs)
{
    struct rlimit rl;
    size_t want = n_progs * PBD_FDS_PER_PROGRAM + 256;
    int fd, hi;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && want >= rl.rlim_cur)
        want = (size_t)rl.rlim_cur - 1;
    if (want > (size_t)1 << 20)
        want = (size_t)1 << 20;
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)want - 1); /* the lowest free one from there */
    if (hi >= 0)
        close(hi);
    close(fd);
}

static const char *default_config(void)
{
    const char *env = getenv("PROCBUS_CONFIG");

    if (env != NULL && env[0] != '\0')
        return env;
    if (access("procbus.conf", F_OK) == 0)
        return "procbus.conf";
    return "/etc/procbus/procbus.conf";
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"check", no_argument, NULL, 'k'},
                                             {"segment", required_argument, NULL, 's'},
                                             {"socket", required_argument, NULL, 'S'},
                                             {"trace", required_argument, NULL, 't'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"observe", no_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct pbd_daemon d;
    struct pbd_config cfg;
    const char *path = NULL, *trace = NULL, *level = NULL;
    char err[1024];
    int check = 0, opt, rc;

    if (argc == 4 && strcmp(argv[1], "--fd-holder") == 0) /* holder.h: started by procbusd */
        return pbd_holder_main(atoi(argv[2]), argv[3]);
    memset(&d, 0, sizeof(d));
    memset(&cfg, 0, sizeof(cfg));
    while ((opt = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 's':
            d.segment_override = optarg;
            break;
        case 'S':
            d.socket_override = optarg;
            break;
        case 't':
            trace = optarg;
            break;
        case 'l':
            level = optarg;
            break;
        case 'o':
            d.observe_override = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "procbusd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (path == NULL) {
        path = default_config();
        /* --observe alone needs no configuration: the defaults, no programs */
        if (d.observe_override && access(path, F_OK) != 0)
            path = "/dev/null";
    }
    rc = pbd_config_load(&cfg, path, NULL, err, sizeof(err), print_warning, NULL);
    if (rc == 0 && (rc = pbd_config_check_runner(&cfg, geteuid(), err, sizeof(err))) < 0)
        pbd_config_free(&cfg);
    if (rc < 0) {
        fprintf(stderr, "procbusd: %s\n", err);
        return 1;
    }
    if (trace != NULL) {
        if (strcmp(trace, "auto") == 0)
            cfg.daemon.trace = PBD_TRACE_AUTO;
        else if (strcmp(trace, "on") == 0)
            cfg.daemon.trace = PBD_TRACE_ON;
        else if (strcmp(trace, "off") == 0)
            cfg.daemon.trace = PBD_TRACE_OFF;
        else if (strcmp(trace, "proc") == 0)
            cfg.daemon.trace = PBD_TRACE_PROC;
        else {
            fprintf(stderr, "procbusd: --trace: expected auto, on, off or proc, not '%s'\n", trace);
            pbd_config_free(&cfg);
            return 2;
        }
    }
    if (level != NULL) {
        static const char *names[] = {"error", "warn", "info", "debug"};
        int i;
        for (i = 0; i < 4 && strcmp(level, names[i]) != 0; i++)
            ;
        if (i == 4) {
            fprintf(stderr, "procbusd: --log-level: expected error, warn, info or debug\n");
            pbd_config_free(&cfg);
            return 2;
        }
        cfg.daemon.log_level = i;
    }
    if (check) {
        printf("%s: OK (%zu program%s)\n", path, cfg.n_progs, cfg.n_progs == 1 ? "" : "s");
        pbd_config_free(&cfg);
        return 0;
    }
    raise_fd_limit(&d);
    d.argv = argv;
    {
        ssize_t n = readlink("/proc/self/exe", d.self_path, sizeof(d.self_path) - 1);
        d.self_path[n > 0 ? n : 0] = '\0';
    }
    if (pbd_svd_startup(&d, &cfg, err, sizeof(err)) < 0) { /* [supervisord] user, minfds ... */
        fprintf(stderr, "procbusd: %s\n", err);
        if (getenv("PROCBUS_REEXEC") != NULL) /* an upgrade's new image: the old one goes on */
            pbd_reexec_refuse(&d, err);
        pbd_config_free(&cfg);
        return 1;
    }
    reserve_fd_table(cfg.n_progs);        /* before liburcu's threads (pbd_daemon_init, _resume) */
    if (getenv("PROCBUS_REEXEC") != NULL) /* the new image of an upgrade in place */
        rc = pbd_daemon_resume(&d, &cfg, path);
    else
        rc = pbd_daemon_init(&d, &cfg, path);
    if (rc == 0)
        rc = pbd_daemon_run(&d);
    else
        rc = 1;
    pbd_daemon_free(&d);
    return rc;
}
