/* mainlog.c - procbusd's own log file ([supervisord] logfile, read by `procbus maintail`) and
 * [supervisord]'s start-up settings (user, umask, directory, minfds, minprocs). */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"
#include "spawn_setup.h"
#include "userdb.h"

int pbd_mainlog_open(struct pbd_daemon *d)
{
    const struct pbd_daemon_conf *c = &d->cfg.daemon;
    struct pbd_par *p = pbd_par_of(d);
    int rc;

    if (p == NULL)
        return -ENOMEM;
    if (c->logfile == NULL)
        return 0;
    rc = pbd_log_open(&p->mainlog, c->logfile, c->logfile_maxbytes, c->logfile_backups);
    if (rc < 0)
        fprintf(stderr, "procbusd: cannot open its log file %s ([supervisord] logfile): %s\n",
                c->logfile, strerror(-rc));
    return rc;
}

void pbd_mainlog_close(struct pbd_daemon *d)
{
    if (d->par != NULL) {
        pbd_log_close(d->par->mainlog);
        d->par->mainlog = NULL;
    }
}

const char *pbd_mainlog_path(const struct pbd_daemon *d)
{
    return d->par != NULL ? pbd_log_path(d->par->mainlog) : NULL;
}

void pbd_mainlog_vwrite(const struct pbd_daemon *d, int level, const char *fmt, va_list ap)
{
    /* supervisord's level names */
    static const char *const names[] = {"ERRO", "WARN", "INFO", "DEBG"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    if (d->par == NULL || d->par->mainlog == NULL || level > d->log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ",%03ld %s ", ts.tv_nsec / 1000000,
                          names[level >= 0 && level <= 3 ? level : 3]);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (k < 0)
        return;
    n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    line[n++] = '\n';
    pbd_log_write(d->par->mainlog, line, n); /* a lost line is not worth another */
}

void pbd_mainlog_write(const struct pbd_daemon *d, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pbd_mainlog_vwrite(d, level, fmt, ap);
    va_end(ap);
}

/* supervisord's set_rlimits_or_exit for one resource: soft (and hard, as root) up to min. */
static int raise_limit(int res, const char *name, const char *key, unsigned long long min,
                       char *err, size_t errlen)
{
    struct rlimit rl;

    if (min == 0 || getrlimit(res, &rl) < 0)
        return 0;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= min)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < min)
        rl.rlim_max = min;
    rl.rlim_cur = min;
    if (setrlimit(res, &rl) < 0) {
        getrlimit(res, &rl);
        snprintf(err, errlen,
                 "[supervisord] %s = %llu: %s is at most %llu here and cannot be raised (%s): "
                 "raise it (LimitNOFILE=/LimitNPROC= in the unit) or lower %s",
                 key, min, name, (unsigned long long)rl.rlim_max, strerror(errno), key);
        return -EPERM;
    }
    return 0;
}

int pbd_svd_startup(struct pbd_daemon *d, const struct pbd_config *cfg, char *err, size_t errlen)
{
    const struct pbd_daemon_conf *c = &cfg->daemon;
    int rc;

    if (!c->sv_section)
        return 0; /* no [supervisord]: supervisord's defaults (minfds, umask ...) do not apply */
    rc = raise_limit(RLIMIT_NOFILE, "the open-file limit", "minfds", c->minfds, err, errlen);
    if (rc == 0)
        rc = raise_limit(RLIMIT_NPROC, "the process limit", "minprocs", c->minprocs, err, errlen);
    if (rc < 0)
        return rc;
    /* programs get back procbusd's original soft limit (spawn_setup.h), but at least minfds */
    if (d->spawn_opts.nofile != PBD_NOFILE_KEEP && d->spawn_opts.nofile < c->minfds)
        d->spawn_opts.nofile = c->minfds;
    /* supervisord applies these when it daemonizes, i.e. without nodaemon */
    if (!c->nodaemon) {
        umask(c->umask != (mode_t)-1 ? c->umask : 022);
        if (c->directory != NULL && chdir(c->directory) < 0) {
            rc = -errno;
            snprintf(err, errlen, "[supervisord] directory: cannot chdir to %s: %s", c->directory,
                     strerror(errno));
            return rc;
        }
    }
    if (c->user != NULL) {
        struct pbd_user u;
        rc = pbd_user_lookup(c->user, &u);
        if (rc < 0) {
            snprintf(err, errlen, "[supervisord] user: '%s': %s", c->user,
                     rc == -ENOENT ? "no such user" : strerror(-rc));
            return -EINVAL;
        }
        if (u.uid != geteuid()) {
            if (geteuid() != 0) {
                snprintf(err, errlen,
                         "[supervisord] user = %s, but procbusd runs as uid %u and cannot "
                         "switch (supervisord: \"Can't drop privilege as nonroot user\")",
                         c->user, (unsigned)geteuid());
                return -EPERM;
            }
            if (initgroups(u.name, u.gid) < 0 || setgid(u.gid) < 0 || setuid(u.uid) < 0) {
                rc = -errno;
                snprintf(err, errlen, "[supervisord] user = %s: cannot switch: %s", c->user,
                         strerror(errno));
                return rc;
            }
            /* the programs' user= must now be this user's own (it cannot switch any more) */
            rc = pbd_config_check_runner(cfg, geteuid(), err, errlen);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}
