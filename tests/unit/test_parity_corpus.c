/* test_parity_corpus.c - real-world supervisord configurations read by supervisord 4.2.5's own
 * parser (tests/parity/sv_dump.py) and by procbusd's, compared field by field. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "support.h"

/* One "NAME FIELD VALUE" line of a dump. */
struct fieldv {
    char *name, *field, *value;
};

struct dump {
    struct fieldv *v;
    size_t n, cap;
};

static void add(struct dump *d, const char *name, const char *field, const char *value)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        assert_non_null(d->v);
    }
    d->v[d->n].name = strdup(name);
    d->v[d->n].field = strdup(field);
    d->v[d->n].value = strdup(value);
    d->n++;
}

static void dump_free(struct dump *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].name);
        free(d->v[i].field);
        free(d->v[i].value);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

/* ---- procbusd's side: the same fields, printed the way sv_dump.py prints them ---- */

/* JSON string, as Python's json.dumps(s, ensure_ascii=False). */
static void json(char *out, size_t len, const char *s)
{
    size_t o = 0;
    if (s == NULL) {
        snprintf(out, len, "null");
        return;
    }
    out[o++] = '"';
    for (; *s && o + 8 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void put_s(struct dump *d, const char *name, const char *field, const char *s)
{
    char buf[8192];
    json(buf, sizeof(buf), s);
    add(d, name, field, buf);
}

static void put_i(struct dump *d, const char *name, const char *field, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    add(d, name, field, buf);
}

/* Python's oct(): "0o22" ("0o0" for 0). */
static void put_oct(struct dump *d, const char *name, const char *field, long long v)
{
    char buf[32];
    if (v < 0) {
        add(d, name, field, "null");
        return;
    }
    snprintf(buf, sizeof(buf), "\"0o%llo\"", v);
    add(d, name, field, buf);
}

/* A user name or uid as a uid (null: none). */
static void put_uid(struct dump *d, const char *name, const char *field, const char *user)
{
    struct passwd *pw;
    if (user == NULL) {
        add(d, name, field, "null");
        return;
    }
    pw = getpwnam(user);
    if (pw == NULL)
        pw = getpwuid((uid_t)strtoul(user, NULL, 10));
    assert_non_null(pw);
    put_i(d, name, field, pw->pw_uid);
}

/* "user[:group]" as "uid:gid" (the user's group without one). */
static void put_owner(struct dump *d, const char *name, const char *owner)
{
    char user[128], buf[64];
    const char *colon;
    struct passwd *pw;
    gid_t gid;
    if (owner == NULL) {
        add(d, name, "socket_owner", "null");
        return;
    }
    colon = strchr(owner, ':');
    snprintf(user, sizeof(user), "%.*s", colon ? (int)(colon - owner) : (int)strlen(owner), owner);
    pw = getpwnam(user);
    assert_non_null(pw);
    gid = pw->pw_gid;
    if (colon != NULL) {
        struct group *gr = getgrnam(colon + 1);
        gid = gr != NULL ? gr->gr_gid : (gid_t)strtoul(colon + 1, NULL, 10);
    }
    snprintf(buf, sizeof(buf), "\"%u:%u\"", (unsigned)pw->pw_uid, (unsigned)gid);
    add(d, name, "socket_owner", buf);
}

static const char *temp_dir(void)
{
    static const char *const vars[] = {"TMPDIR", "TEMP", "TMP"};
    for (size_t i = 0; i < 3; i++)
        if (getenv(vars[i]) && getenv(vars[i])[0] == '/')
            return getenv(vars[i]);
    return "/tmp";
}

static void dump_program(struct dump *d, const struct pbd_program *p)
{
    static const char *const kinds[] = {"program", "eventlistener", "fcgi-program"};
    static const char *const restarts[] = {"false", "unexpected", "true"};
    char n[160], buf[8192], one[4096];
    size_t o = 0;
    int codes[PBD_MAX_EXITCODES], nc = p->n_exitcodes;

    pbd_namespec(p, n, sizeof(n));
    put_s(d, n, "kind", kinds[p->kind]);
    put_s(d, n, "group", p->group);
    put_i(d, n, "group_priority", p->group_priority);
    put_s(d, n, "command", p->command);
    /* argv as JSON: the list sv_dump.py prints is shlex.split(command) */
    buf[o++] = '[';
    for (int i = 0; p->argv[i]; i++) {
        json(one, sizeof(one), p->argv[i]);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ", " : "", one);
    }
    snprintf(buf + o, sizeof(buf) - o, "]");
    add(d, n, "argv", buf);
    put_s(d, n, "directory", p->directory);
    put_oct(d, n, "umask", p->umask == (mode_t)-1 ? -1 : (long long)p->umask);
    put_i(d, n, "priority", p->priority);
    put_i(d, n, "autostart", p->autostart);
    put_s(d, n, "autorestart", restarts[p->autorestart]);
    put_i(d, n, "startsecs", p->startsecs);
    put_i(d, n, "startretries", p->startretries);
    put_i(d, n, "stopsignal", p->stopsignal);
    put_i(d, n, "stopwaitsecs", p->stopwaitsecs);
    put_i(d, n, "stopasgroup", p->stopasgroup);
    put_i(d, n, "killasgroup", p->killasgroup);
    memcpy(codes, p->exitcodes, sizeof(codes));
    for (int i = 0; i < nc; i++) /* sorted, as sv_dump.py prints them */
        for (int j = i + 1; j < nc; j++)
            if (codes[j] < codes[i]) {
                int t = codes[i];
                codes[i] = codes[j];
                codes[j] = t;
            }
    o = 0;
    buf[0] = '\0';
    for (int i = 0; i < nc; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%d", i ? "," : "", codes[i]);
    put_s(d, n, "exitcodes", buf);
    put_i(d, n, "redirect_stderr", p->redirect_stderr);
    put_uid(d, n, "user", p->user);
    for (int s = 0; s < 2; s++) {
        const struct pbd_logconf *lc = s ? &p->err : &p->out;
        const char *ch = s ? "stderr" : "stdout";
        char f[64];
        snprintf(f, sizeof(f), "%s_logfile", ch);
        put_s(d, n, f, lc->path);
        snprintf(f, sizeof(f), "%s_logfile_maxbytes", ch);
        put_i(d, n, f, (long long)lc->maxbytes);
        snprintf(f, sizeof(f), "%s_logfile_backups", ch);
        put_i(d, n, f, lc->backups);
        snprintf(f, sizeof(f), "%s_events_enabled", ch);
        put_i(d, n, f, lc->events);
        snprintf(f, sizeof(f), "%s_capture_maxbytes", ch);
        put_i(d, n, f, (long long)lc->capture_maxbytes);
    }
    {
        /* KEY=VALUE sorted by key, ';'-joined */
        size_t ne = 0;
        char **env;
        while (p->env && p->env[ne])
            ne++;
        env = calloc(ne + 1, sizeof(*env));
        assert_non_null(env);
        if (ne > 0)
            memcpy(env, p->env, ne * sizeof(*env));
        for (size_t i = 0; i < ne; i++)
            for (size_t j = i + 1; j < ne; j++)
                if (strcmp(env[j], env[i]) < 0) {
                    char *t = env[i];
                    env[i] = env[j];
                    env[j] = t;
                }
        o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < ne; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ";" : "", env[i]);
        free(env);
        put_s(d, n, "environment", buf);
    }
    put_s(d, n, "serverurl", p->serverurl);
    if (p->kind == PBD_KIND_EVENTLISTENER) {
        o = 0;
        buf[0] = '\0';
        for (int t = 0; t < PBD_EVT__COUNT; t++)
            if (p->evl_events & (1ull << t))
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? "," : "",
                                      pbd_evtype_name((enum pbd_evtype)t));
        put_s(d, n, "events", buf);
        put_i(d, n, "buffer_size", p->evl_buffer_size);
    }
    if (p->kind == PBD_KIND_FCGI) {
        int unix_sock = strncmp(p->fcgi_socket, "unix://", 7) == 0;
        put_s(d, n, "socket", p->fcgi_socket);
        /* supervisord: a unix socket without socket_owner belongs to the program's user */
        put_owner(d, n, unix_sock ? (p->fcgi_socket_owner ? p->fcgi_socket_owner : p->user) : NULL);
        put_oct(d, n, "socket_mode", unix_sock ? (long long)p->fcgi_socket_mode : -1);
        put_i(d, n, "socket_backlog", p->fcgi_socket_backlog);
    }
}

static void dump_procbusd(const struct pbd_config *c, struct dump *d)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const struct pbd_daemon_conf *dc = &c->daemon;
    const char *n = "[daemon]";

    put_s(d, n, "childlogdir", dc->childlogdir ? dc->childlogdir : temp_dir());
    put_s(d, n, "identifier", dc->identifier ? dc->identifier : "supervisor");
    put_s(d, n, "logfile", dc->logfile);
    put_i(d, n, "logfile_maxbytes", (long long)dc->logfile_maxbytes);
    put_i(d, n, "logfile_backups", dc->logfile_backups);
    put_s(d, n, "loglevel", levels[dc->log_level]);
    put_s(d, n, "pidfile", dc->pidfile);
    put_i(d, n, "nocleanup", dc->nocleanup);
    put_i(d, n, "strip_ansi", dc->strip_ansi);
    put_i(d, n, "nodaemon", dc->nodaemon);
    put_i(d, n, "silent", dc->silent);
    put_oct(d, n, "umask", dc->umask == (mode_t)-1 ? 022 : (long long)dc->umask);
    put_i(d, n, "minfds", dc->minfds);
    put_i(d, n, "minprocs", dc->minprocs);
    put_uid(d, n, "user", dc->user);
    put_s(d, n, "directory", dc->directory);
    for (size_t i = 0; i < c->n_progs; i++)
        dump_program(d, &c->progs[i]);
}

/* ---- supervisord's side ---- */

/* The interpreter supervisord runs with (its script's #! line), into buf; 0 if there is none. */
static int sv_python(char *buf, size_t len)
{
    FILE *f = popen("command -v supervisord", "r");
    char path[PATH_MAX] = "", line[PATH_MAX];
    if (f == NULL)
        return 0;
    if (fgets(path, sizeof(path), f) == NULL)
        path[0] = '\0';
    pclose(f);
    path[strcspn(path, "\n")] = '\0';
    if (path[0] == '\0' || (f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL || strncmp(line, "#!", 2) != 0) {
        fclose(f);
        return 0;
    }
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    snprintf(buf, len, "%s", line + 2);
    return 1;
}

/* Run sv_dump.py on path: its lines into d. 0, or 2 when supervisord refuses the file. */
static int dump_supervisord(const char *python, const char *src, const char *path, struct dump *d)
{
    char cmd[PATH_MAX * 3], line[16384];
    FILE *f;
    int st;

    snprintf(cmd, sizeof(cmd), "%s %s/tests/parity/sv_dump.py %s 2>/dev/null", python, src, path);
    f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *a = strtok(line, " "), *b = strtok(NULL, " "), *c = strtok(NULL, "\n");
        if (a && b)
            add(d, a, b, c ? c : "");
    }
    st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the comparison ---- */

/*
 * The differences that are deliberate, each with its reason (docs/SUPERVISORD.md). A field
 * matches a row when procbusd says `ours` (NULL: anything) and supervisord `theirs_prefix`
 * (NULL: anything).
 */
static const struct explained {
    const char *field;
    const char *ours;
    const char *theirs_prefix;
    const char *reason;
} explained[] = {
    {"logfile", "null", NULL,
     "procbusd writes its own log file only where [supervisord] logfile says (supervisord: "
     "supervisord.log in its working folder); it always logs to stderr"},
    {"pidfile", "null", NULL,
     "procbusd writes a pidfile only where [supervisord] pidfile says (supervisord: "
     "supervisord.pid in its working folder)"},
    {"stdout_logfile_maxbytes", "0", NULL,
     "a /dev/ log (/dev/stdout) cannot rotate: procbusd sets 0 with a warning, supervisord fails "
     "at run time with 'Illegal seek'"},
    {"stderr_logfile_maxbytes", "0", NULL,
     "a /dev/ log (/dev/stderr) cannot rotate: procbusd sets 0 with a warning, supervisord "
     "fails at run time with 'Illegal seek'"},
};

static const char *find_value(const struct dump *d, const char *name, const char *field)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].name, name) && !strcmp(d->v[i].field, field))
            return d->v[i].value;
    return NULL;
}

/* Compare: every (name, field) of supervisord's dump in procbusd's with the same value, and no
 * process procbusd has that supervisord lacks. Returns the unexplained differences; counts the
 * fields compared and the explained ones. */
static int compare(const char *file, const struct dump *sv, const struct dump *pb, int *fields,
                   int *explained_n)
{
    int bad = 0;
    for (size_t i = 0; i < sv->n; i++) {
        const char *ours = find_value(pb, sv->v[i].name, sv->v[i].field);
        int ok = 0;
        (*fields)++;
        if (ours != NULL && !strcmp(ours, sv->v[i].value))
            continue;
        for (size_t e = 0; ours && e < sizeof(explained) / sizeof(explained[0]) && !ok; e++) {
            const struct explained *x = &explained[e];
            ok = !strcmp(x->field, sv->v[i].field) && (!x->ours || !strcmp(x->ours, ours)) &&
                 (!x->theirs_prefix ||
                  !strncmp(sv->v[i].value, x->theirs_prefix, strlen(x->theirs_prefix)));
        }
        if (ok) {
            (*explained_n)++;
            continue;
        }
        print_error("%s: %s %s: supervisord %s, procbusd %s\n", file, sv->v[i].name, sv->v[i].field,
                    sv->v[i].value, ours ? ours : "(missing)");
        bad++;
    }
    for (size_t i = 0; i < pb->n; i++) {
        if (!strcmp(pb->v[i].field, "kind") && !find_value(sv, pb->v[i].name, "kind")) {
            print_error("%s: procbusd has process %s, supervisord does not\n", file, pb->v[i].name);
            bad++;
        }
    }
    return bad;
}

static char g_src[PATH_MAX], g_python[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    /* the corpus uses %(ENV_X)s of these */
    setenv("SMOKESCREEN_OPTS", "--egress-acl-file=/etc/smokescreen/acl.yaml", 1);
    if (getenv("HOME") == NULL)
        setenv("HOME", "/root", 1);
    return 0;
}

/* The source tree: the folder holding tests/parity/sv_dump.py, from here or up. */
static int find_src(void)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    if (!getcwd(dir, sizeof(dir)))
        return 0;
    for (int depth = 0; depth < 8; depth++) {
        snprintf(probe, sizeof(probe), "%s/tests/parity/sv_dump.py", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(g_src, sizeof(g_src), "%s", dir);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            return 0;
        *slash = '\0';
    }
    return 0;
}

static void run_corpus(const char *pattern_rel, int min_files, int need_all)
{
    char pattern[PATH_MAX + 64];
    glob_t g;
    int files = 0, refused = 0, fields = 0, explained_n = 0, bad = 0;
    size_t procs = 0;

    snprintf(pattern, sizeof(pattern), "%s/%s", g_src, pattern_rel);
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct dump sv = {0}, pb = {0};
        struct pbd_config c;
        char err[1024];
        int rc = dump_supervisord(g_python, g_src, g.gl_pathv[i], &sv);
        if (rc == 2) { /* supervisord refuses it: nothing to compare */
            refused++;
            if (need_all)
                print_error("%s: supervisord refuses it\n", g.gl_pathv[i]);
            bad += need_all;
            dump_free(&sv);
            continue;
        }
        assert_int_equal(rc, 0);
        if (pbd_config_load(&c, g.gl_pathv[i], NULL, err, sizeof(err), NULL, NULL) != 0) {
            print_error("%s: supervisord loads it, procbusd does not: %s\n", g.gl_pathv[i], err);
            bad++;
            dump_free(&sv);
            continue;
        }
        dump_procbusd(&c, &pb);
        bad += compare(g.gl_pathv[i], &sv, &pb, &fields, &explained_n);
        files++;
        procs += c.n_progs;
        pbd_config_free(&c);
        dump_free(&sv);
        dump_free(&pb);
    }
    globfree(&g);
    print_message("  %s: %d configurations compared (%d refused by supervisord), %zu processes, "
                  "%d fields, %d explained differences, %d unexplained\n",
                  pattern_rel, files, refused, procs, fields, explained_n, bad);
    assert_true(files >= min_files);
    assert_int_equal(bad, 0);
}

/* The corpus written for this test: every file loads in both, with the same meaning. */
static void test_corpus(void **state)
{
    (void)state;
    if (!find_src() || !sv_python(g_python, sizeof(g_python))) {
        print_message("  skipped: supervisord (Debian's supervisor package) or the source tree "
                      "is not here\n");
        skip();
    }
    run_corpus("tests/parity/corpus/*.conf", 20, 1);
}

/* procbusd's own test configurations that supervisord also accepts: the same meaning too. */
static void test_config_fixtures(void **state)
{
    (void)state;
    if (!find_src() || !sv_python(g_python, sizeof(g_python))) {
        print_message("  skipped: supervisord or the source tree is not here\n");
        skip();
    }
    run_corpus("tests/config/good/*.conf", 5, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_config_fixtures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
