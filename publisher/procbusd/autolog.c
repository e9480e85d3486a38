/* autolog.c - AUTO log files: supervisord's names in childlogdir, the cleanup at start, and the
 * names a predecessor chose (a procbusd taking over or re-executed logs on into the same file). */
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

/* `path` is a name pbd_autolog_path could have chosen for `in`: defined below. */
static int auto_name_of(struct pbd_daemon *d, const struct pbd_inst *in, int which,
                        const char *path);

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
    if (d->auto_hint[which] != NULL && auto_name_of(d, in, which, d->auto_hint[which]))
        return x->auto_path[which] = strdup(d->auto_hint[which]); /* a predecessor's file */
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

/* `path` is a name pbd_autolog_path could have chosen for `in` (which 0 stdout, 1 stderr): in
 * the AUTO folder now, NAME-stdout---IDENT-XXXXXXXX.log. */
static int auto_name_of(struct pbd_daemon *d, const struct pbd_inst *in, int which,
                        const char *path)
{
    const char *dir = pbd_autolog_dir(d), *base = strrchr(path, '/'), *tail;
    char head[256];
    size_t dl = strlen(dir);

    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (base == NULL || (size_t)(base - path) != dl || strncmp(path, dir, dl) != 0)
        return 0;
    snprintf(head, sizeof(head), "%s-%s---%s-", in->prog->name, which ? "stderr" : "stdout",
             identifier(d));
    base++;
    if (strncmp(base, head, strlen(head)) != 0)
        return 0;
    tail = base + strlen(head);
    return strlen(tail) == 8 + 4 && strcmp(tail + 8, ".log") == 0 && strchr(tail, '/') == NULL;
}

int pbd_autolog_reuse(struct pbd_daemon *d, struct pbd_inst *in, int which, const char *path)
{
    struct pbd_par_inst *x;
    char *copy;

    if (path == NULL || !auto_name_of(d, in, which, path))
        return 0;
    x = pbd_par_inst_of(in);
    if (x == NULL || (x->auto_path[which] != NULL && strcmp(x->auto_path[which], path) == 0) ||
        (copy = strdup(path)) == NULL)
        return 0; /* (taken already: pbd_daemon.auto_hint) */
    if (x->auto_path[which] != NULL && strcmp(x->auto_path[which], path) != 0) {
        struct stat st; /* the empty file just made for a name of its own: not needed */
        if (lstat(x->auto_path[which], &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
            st.st_uid == geteuid())
            unlink(x->auto_path[which]);
    }
    free(x->auto_path[which]);
    x->auto_path[which] = copy;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The base names of the AUTO files the instances log to, sorted (malloc'd; *n of them). */
static const char **names_in_use(const struct pbd_daemon *d, size_t *n)
{
    const char **v = calloc(2 * d->n_inst + 1, sizeof(*v));

    *n = 0;
    for (size_t i = 0; v != NULL && i < d->n_inst; i++) {
        const struct pbd_par_inst *x = d->inst[i]->par;
        for (int w = 0; x != NULL && w < 2; w++) {
            const char *base = x->auto_path[w] != NULL ? strrchr(x->auto_path[w], '/') : NULL;
            if (base != NULL)
                v[(*n)++] = base + 1;
        }
    }
    if (v != NULL)
        qsort(v, *n, sizeof(*v), cmp_str);
    return v;
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
    const char **used;
    size_t n_used;
    DIR *dp;
    int n = 0;

    if (dfd < 0)
        return;
    used = names_in_use(d, &n_used);
    dp = used != NULL ? fdopendir(dfd) : NULL;
    if (dp == NULL) {
        free(used);
        close(dfd);
        return;
    }
    while ((e = readdir(dp)) != NULL) {
        struct stat st;
        const char *name = e->d_name;
        if (!auto_name(name, identifier(d)) ||
            bsearch(&name, used, n_used, sizeof(*used), cmp_str) != NULL)
            continue; /* (in use: an adopted program's, logged on into) */
        /* only procbusd's own files: root could remove anyone's in /tmp */
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0)
            n++;
    }
    closedir(dp);
    free(used);
    if (n > 0)
        pbd_say(d, PBD_L_INFO, "removed %d AUTO log file(s) of an earlier run from %s", n, dir);
}
