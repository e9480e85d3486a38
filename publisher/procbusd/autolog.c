/* autolog.c - AUTO log files: supervisord's names in childlogdir, and the cleanup at start. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"
#include "util.h"

/* The identifier AUTO names carry: [supervisord] identifier, else supervisord's default. */
static const char *identifier(const struct pbd_daemon *d)
{
    return d->cfg.daemon.identifier != NULL ? d->cfg.daemon.identifier : "supervisor";
}

const char *pbd_autolog_dir(const struct pbd_daemon *d)
{
    static const char *const vars[] = {"TMPDIR", "TEMP", "TMP"};

    if (d->cfg.daemon.childlogdir != NULL)
        return d->cfg.daemon.childlogdir;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] == '/')
            return v;
    }
    return "/tmp";
}

const char *pbd_autolog_path(struct pbd_daemon *d, struct pbd_inst *in, int which)
{
    /* Python's tempfile names: 8 of these, at random */
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
    struct pbd_par_inst *x = pbd_par_inst_of(in);
    unsigned char rnd[8];
    char tail[9];
    const char *dir;

    if (x == NULL)
        return NULL;
    if (x->auto_path[which] != NULL)
        return x->auto_path[which];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = pb_now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)in;
        memcpy(rnd, &t, sizeof(rnd));
    }
    for (size_t i = 0; i < 8; i++)
        tail[i] = chars[rnd[i] % (sizeof(chars) - 1)];
    tail[8] = '\0';
    dir = pbd_autolog_dir(d);
    if (asprintf(&x->auto_path[which], "%s%s%s-%s---%s-%s.log", dir,
                 dir[strlen(dir) - 1] == '/' ? "" : "/", in->prog->name,
                 which ? "stderr" : "stdout", identifier(d), tail) < 0)
        x->auto_path[which] = NULL;
    return x->auto_path[which];
}

/*
 * supervisord's re.match(r'.+?---IDENT-\S+\.log\.{0,1}\d{0,4}', name): something, then
 * "---IDENT-", then non-space characters up to a ".log" (re.match is anchored at the start
 * only, so what follows does not matter).
 */
static int auto_name(const char *name, const char *ident)
{
    char needle[300];
    const char *p, *dot;

    snprintf(needle, sizeof(needle), "---%s-", ident);
    p = strstr(name, needle);
    if (p == NULL || p == name)
        return 0;
    p += strlen(needle);
    dot = strstr(p, ".log");
    if (dot == NULL || dot == p)
        return 0;
    for (const char *c = p; c < dot; c++)
        if (*c == ' ' || *c == '\t' || *c == '\n')
            return 0;
    return 1;
}

void pbd_autolog_cleanup(struct pbd_daemon *d)
{
    const char *dir = pbd_autolog_dir(d);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *e;
    DIR *dp;
    int n = 0;

    if (dfd < 0)
        return;
    dp = fdopendir(dfd);
    if (dp == NULL) {
        close(dfd);
        return;
    }
    while ((e = readdir(dp)) != NULL) {
        struct stat st;
        if (!auto_name(e->d_name, identifier(d)))
            continue;
        /* only procbusd's own files: root could remove anyone's in /tmp */
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0)
            n++;
    }
    closedir(dp);
    if (n > 0)
        pbd_say(d, PBD_L_INFO, "removed %d AUTO log file(s) of an earlier run from %s", n, dir);
}
