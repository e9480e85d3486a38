/* test_config.c - procbusd's INI parser: defaults, keys, expansions, includes, the bad-config
 * corpus. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "config.h"

/* The environment every load sees for %(ENV_X)s (not the test's own). */
static char *test_env[] = {"HOME=/home/pbd-tester", "PORT=8080",          "FOO=from-env",
                           "LOGLEVEL=debug",        "PATH=/usr/bin:/bin", NULL};

#define assert_contains(hay, needle)                                        \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (!h_ || !strstr(h_, n_))                                         \
            fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
    } while (0)

/* ------------------------------------------------------------------ helpers */

/* Fixtures are under tests/config of the repository: the current folder
 * (make test runs from the root), else $PROCBUS_SRCDIR. */
static void fixture(char *buf, size_t n, const char *rel)
{
    const char *dir = getenv("PROCBUS_SRCDIR");
    if (access("tests/config/good/minimal.conf", R_OK) == 0 || !dir || !*dir)
        snprintf(buf, n, "tests/config/%s", rel);
    else
        snprintf(buf, n, "%s/tests/config/%s", dir, rel);
}

struct warns {
    int n;
    char msg[64][512];
};

static void collect(void *arg, const char *msg)
{
    struct warns *w = arg;
    if (w->n < 64)
        snprintf(w->msg[w->n++], sizeof(w->msg[0]), "%s", msg);
}

/* 1 if one warning holds both substrings (b may be NULL). */
static int has_warn(const struct warns *w, const char *a, const char *b)
{
    for (int i = 0; i < w->n; i++)
        if (strstr(w->msg[i], a) && (!b || strstr(w->msg[i], b)))
            return 1;
    return 0;
}

static void print_warns(const struct warns *w)
{
    for (int i = 0; i < w->n; i++)
        print_message("  warning: %s\n", w->msg[i]);
}

static int load_env(struct pbd_config *c, const char *path, char **env, struct warns *w, char *err,
                    size_t errlen)
{
    memset(w, 0, sizeof(*w));
    return pbd_config_load(c, path, env, err, errlen, collect, w);
}

static int load(struct pbd_config *c, const char *path, struct warns *w, char *err, size_t errlen)
{
    return load_env(c, path, test_env, w, err, errlen);
}

static int load_fixture(struct pbd_config *c, const char *rel, struct warns *w)
{
    char path[PATH_MAX], err[1024];
    int r;
    fixture(path, sizeof(path), rel);
    r = load(c, path, w, err, sizeof(err));
    if (r)
        fail_msg("%s: %d: %s", path, r, err);
    return r;
}

static const struct pbd_program *find(const struct pbd_config *c, const char *name)
{
    const struct pbd_program *p = pbd_config_find(c, name);
    if (!p)
        fail_msg("no program '%s'", name);
    return p;
}

/* Per-test scratch folder: *state is its path. */
static int tmp_setup(void **state)
{
    char *dir = strdup("/tmp/pbt-config-XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int tmp_teardown(void **state)
{
    nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

/* Write dir/name (making dir/sub folders as needed); the path in out[PATH_MAX]. */
static const char *put(const char *dir, const char *name, const char *text, char *out)
{
    FILE *f;
    char *slash;
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
    for (slash = strchr(out + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(out, 0755);
        *slash = '/';
    }
    f = fopen(out, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return out;
}

/* Load `text` written as dir/t.conf. */
static int load_text(void **state, const char *text, struct pbd_config *c, struct warns *w,
                     char *err, size_t errlen)
{
    char path[PATH_MAX];
    put(*state, "t.conf", text, path);
    return load(c, path, w, err, errlen);
}

/* Expect `text` to fail with -EINVAL and a message holding each given substring. */
static void expect_error(void **state, const char *text, const char *s1, const char *s2)
{
    struct pbd_config c;
    struct warns w;
    char err[1024];
    int r = load_text(state, text, &c, &w, err, sizeof(err));
    if (r != -EINVAL)
        fail_msg("expected -EINVAL, got %d (%s) for:\n%s", r, err, text);
    assert_contains(err, "t.conf:");
    assert_contains(err, s1);
    if (s2)
        assert_contains(err, s2);
    assert_int_equal(c.n_progs, 0);
    assert_null(c.progs);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    struct pbd_config c;
    struct warns w;
    const struct pbd_program *p;
    (void)state;

    load_fixture(&c, "good/minimal.conf", &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(c.n_progs, 1);
    assert_int_equal(c.n_files, 1);
    assert_contains(c.files[0], "good/minimal.conf");
    assert_contains(c.path, "good/minimal.conf");
    p = &c.progs[0];
    assert_string_equal(p->name, "sleeper");
    assert_string_equal(p->group, "sleeper");
    assert_int_equal(p->process_num, 0);
    assert_int_equal(p->numprocs, 1);
    assert_string_equal(p->command, "/bin/sleep 1000");
    assert_string_equal(p->argv[0], "/bin/sleep");
    assert_string_equal(p->argv[1], "1000");
    assert_null(p->argv[2]);
    assert_int_equal(p->shell, 0);
    assert_null(p->directory);
    assert_null(p->env);
    assert_null(p->user);
    assert_true(p->umask == (mode_t)-1);
    assert_int_equal(p->autostart, 1);
    assert_int_equal(p->autorestart, PBD_RESTART_UNEXPECTED);
    assert_int_equal(p->n_exitcodes, 1);
    assert_int_equal(p->exitcodes[0], 0);
    assert_int_equal(p->startsecs, 1);
    assert_int_equal(p->startretries, 3);
    assert_int_equal(p->stopsignal, SIGTERM);
    assert_int_equal(p->stopwaitsecs, 10);
    assert_int_equal(p->stopasgroup, 0);
    assert_int_equal(p->killasgroup, 0);
    assert_int_equal(p->priority, 999);
    assert_int_equal(p->redirect_stderr, 0);
    assert_string_equal(p->out.path, PBD_LOG_AUTO); /* supervisord's AUTO: a file in childlogdir */
    assert_string_equal(p->err.path, PBD_LOG_AUTO);
    assert_string_equal(p->group, p->name); /* no [group:x]: its own group */
    assert_string_equal(p->program, p->name);
    assert_null(p->serverurl);
    assert_true(p->out.maxbytes == 50ull * 1024 * 1024);
    assert_true(p->err.maxbytes == 50ull * 1024 * 1024);
    assert_int_equal(p->out.backups, 10);
    assert_int_equal(p->err.backups, 10);
    assert_int_equal(p->n_deps, 0);
    assert_int_equal(p->ready_fd, -1);
    assert_null(p->ready_log);
    assert_int_equal(p->backoff, PBD_BACKOFF_LINEAR);
    assert_int_equal(p->backoff_max, 60);
    assert_contains(p->source_file, "good/minimal.conf");
    assert_int_equal(p->source_line, 2);

    assert_null(c.daemon.segment);
    assert_null(c.daemon.socket);
    assert_int_equal(c.daemon.log_level, 2);
    assert_int_equal(c.daemon.heartbeat_ms, 500);
    assert_int_equal(c.daemon.sample_ms, 1000);
    assert_int_equal(c.daemon.trace, PBD_TRACE_AUTO);
    assert_int_equal(c.daemon.capacity, 4096);
    assert_int_equal(c.daemon.observe, 0);
    assert_int_equal(c.daemon.keep_exited_secs, 60);
    assert_int_equal(c.daemon.trace_ring_kb, 256);
    assert_int_equal(c.daemon.trace_batch_ms, 0);
    pbd_config_free(&c);
    assert_null(c.progs);
}

/* killasgroup follows stopasgroup unless set. */
static void test_killasgroup_default(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512];
    assert_int_equal(load_text(state,
                               "[program:a]\ncommand=/bin/a\nstopasgroup=true\n"
                               "[program:b]\ncommand=/bin/b\nkillasgroup=true\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_int_equal(find(&c, "a")->killasgroup, 1);
    assert_int_equal(find(&c, "b")->stopasgroup, 0);
    assert_int_equal(find(&c, "b")->killasgroup, 1);
    pbd_config_free(&c);
}

/* --------------------------------------------------------------- every key */

static void test_every_key(void **state)
{
    struct pbd_config c;
    struct warns w;
    const struct pbd_program *p;
    (void)state;

    load_fixture(&c, "good/all_keys.conf", &w);
    print_warns(&w);
    assert_int_equal(w.n, 0);
    assert_string_equal(c.daemon.segment, "procbus-test");
    assert_string_equal(c.daemon.socket, "/tmp/procbus-test.sock");
    assert_int_equal(c.daemon.log_level, 3);
    assert_int_equal(c.daemon.heartbeat_ms, 250);
    assert_int_equal(c.daemon.sample_ms, 2000);
    assert_int_equal(c.daemon.trace, PBD_TRACE_OFF);
    assert_int_equal(c.daemon.capacity, 128);
    assert_int_equal(c.daemon.observe, 0);
    assert_int_equal(c.daemon.keep_exited_secs, 5);
    assert_int_equal(c.daemon.trace_ring_kb, 64);
    assert_int_equal(c.daemon.trace_batch_ms, 10);

    assert_int_equal(c.n_progs, 6);
    p = find(&c, "api");
    assert_string_equal(p->argv[0], "/usr/bin/env");
    assert_string_equal(p->argv[1], "hello world");
    assert_string_equal(p->argv[2], "single quoted");
    assert_string_equal(p->argv[3], "back slash");
    assert_null(p->argv[4]);
    assert_string_equal(p->directory, "/tmp");
    assert_string_equal(p->env[0], "LANG=C.UTF-8");
    assert_string_equal(p->env[1], "LIST=a,b,c");
    assert_string_equal(p->env[2], "QUOTED=it is");
    assert_string_equal(p->env[3], "EMPTY=");
    assert_string_equal(p->env[4], "PLAIN=plain");
    assert_null(p->env[5]);
    assert_string_equal(p->user, "nobody");
    assert_int_equal(p->umask, 027);
    assert_int_equal(p->autostart, 0);
    assert_int_equal(p->autorestart, PBD_RESTART_TRUE);
    assert_int_equal(p->n_exitcodes, 3);
    assert_int_equal(p->exitcodes[0], 0);
    assert_int_equal(p->exitcodes[1], 2);
    assert_int_equal(p->exitcodes[2], 143);
    assert_int_equal(p->startsecs, 5);
    assert_int_equal(p->startretries, 7);
    assert_int_equal(p->stopsignal, SIGINT);
    assert_int_equal(p->stopwaitsecs, 30);
    assert_int_equal(p->stopasgroup, 1);
    assert_int_equal(p->killasgroup, 1);
    assert_int_equal(p->priority, 10);
    assert_int_equal(p->redirect_stderr, 0);
    assert_string_equal(p->out.path, "/tmp/api.out.log");
    assert_true(p->out.maxbytes == 1024 * 1024);
    assert_int_equal(p->out.backups, 3);
    assert_string_equal(p->err.path, "/tmp/api.err.log");
    assert_true(p->err.maxbytes == 512 * 1024);
    assert_int_equal(p->err.backups, 0);
    assert_int_equal(p->n_deps, 4);
    assert_string_equal(p->deps[0].name, "db");
    assert_int_equal(p->deps[0].cond, PBD_DEP_READY);
    assert_string_equal(p->deps[1].name, "cache");
    assert_int_equal(p->deps[1].cond, PBD_DEP_RUNNING);
    assert_string_equal(p->deps[2].name, "migrate");
    assert_int_equal(p->deps[2].cond, PBD_DEP_COMPLETED);
    assert_string_equal(p->deps[3].name, "log");
    assert_int_equal(p->deps[3].cond, PBD_DEP_STARTED);
    assert_int_equal(p->ready_fd, 4);
    assert_string_equal(p->ready_log, "listening on (port )?[0-9]+");
    assert_int_equal(p->backoff, PBD_BACKOFF_EXPONENTIAL);
    assert_int_equal(p->backoff_max, 120);
    assert_int_equal(p->shell, 0);
    assert_string_equal(find(&c, "db")->ready_log, "^ready$");
    assert_int_equal(find(&c, "migrate")->autorestart, PBD_RESTART_FALSE);
    assert_int_equal(find(&c, "migrate")->startsecs, 0);
    /* numprocs_start = 1 */
    assert_int_equal(find(&c, "log1")->process_num, 1);
    assert_int_equal(find(&c, "log2")->process_num, 2);
    assert_int_equal(find(&c, "log2")->numprocs, 2);
    assert_string_equal(find(&c, "log2")->group, "log");
    assert_null(pbd_config_find(&c, "log0"));
    pbd_config_free(&c);
}

/* Booleans, signals, byte sizes and octal umasks in their accepted spellings. */
static void test_value_spellings(void **state)
{
    static const struct {
        const char *text;
        int autostart;
    } bools[] = {{"true", 1},  {"TRUE", 1}, {"yes", 1}, {"On", 1}, {"1", 1},
                 {"false", 0}, {"No", 0},   {"off", 0}, {"0", 0},  {"FaLsE", 0}};
    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"0", 0},         {"1234", 1234},         {"10kb", 10240},    {"10KB", 10240},
                 {"3MB", 3145728}, {"2GB", 2147483648ull}, {"50 MB", 52428800}};
    struct pbd_config c;
    struct warns w;
    char err[512], text[512];

    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        snprintf(text, sizeof(text), "[program:a]\ncommand=/bin/a\nautostart=%s\n", bools[i].text);
        assert_int_equal(load_text(state, text, &c, &w, err, sizeof(err)), 0);
        assert_int_equal(c.progs[0].autostart, bools[i].autostart);
        pbd_config_free(&c);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(text, sizeof(text), "[program:a]\ncommand=/bin/a\nstdout_logfile_maxbytes=%s\n",
                 sizes[i].text);
        assert_int_equal(load_text(state, text, &c, &w, err, sizeof(err)), 0);
        assert_true(c.progs[0].out.maxbytes == sizes[i].bytes);
        pbd_config_free(&c);
    }
    assert_int_equal(load_text(state,
                               "[program:a]\ncommand=/bin/a\nstopsignal=hup\numask=0o022\n"
                               "autorestart=UNEXPECTED\nexitcodes=\n"
                               "[program:b]\ncommand=/bin/b\nstopsignal=SIGUSR2\numask=0\n"
                               "autorestart=yes\nexitcodes= 1 , 2\n"
                               "[program:c]\ncommand=/bin/c\nstopsignal=9\numask=777\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_int_equal(find(&c, "a")->stopsignal, SIGHUP);
    assert_int_equal(find(&c, "a")->umask, 022);
    assert_int_equal(find(&c, "a")->autorestart, PBD_RESTART_UNEXPECTED);
    assert_int_equal(find(&c, "a")->n_exitcodes, 0); /* supervisord: an empty list */
    assert_int_equal(find(&c, "b")->stopsignal, SIGUSR2);
    assert_int_equal(find(&c, "b")->umask, 0);
    assert_int_equal(find(&c, "b")->autorestart, PBD_RESTART_TRUE);
    assert_int_equal(find(&c, "b")->n_exitcodes, 2);
    assert_int_equal(find(&c, "b")->exitcodes[1], 2);
    assert_int_equal(find(&c, "c")->stopsignal, SIGKILL);
    assert_int_equal(find(&c, "c")->umask, 0777);
    pbd_config_free(&c);

    assert_int_equal(load_text(state,
                               "[procbusd]\nlog_level=WARNING\ntrace=on\n"
                               "[program:a]\ncommand=/bin/a\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_int_equal(c.daemon.log_level, 1);
    assert_int_equal(c.daemon.trace, PBD_TRACE_ON);
    pbd_config_free(&c);
    assert_int_equal(
        load_text(state, "[procbusd]\ntrace=proc\nobserve=yes\n", &c, &w, err, sizeof(err)), 0);
    assert_int_equal(c.daemon.trace, PBD_TRACE_PROC);
    assert_int_equal(c.daemon.observe, 1);
    pbd_config_free(&c);
    assert_int_equal(
        load_text(state, "[procbusd]\nlog_level=error\ntrace=auto\n", &c, &w, err, sizeof(err)), 0);
    assert_int_equal(c.daemon.log_level, 0);
    assert_int_equal(c.daemon.trace, PBD_TRACE_AUTO);
    assert_int_equal(c.n_progs, 0);
    pbd_config_free(&c);
}

/* --------------------------------------------------------------- expansions */

static void test_expansions(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512], here[PATH_MAX], want[PATH_MAX + 1024];
    struct utsname u;
    const struct pbd_program *p;

    assert_non_null(realpath(*state, here));
    assert_int_equal(uname(&u), 0);
    assert_int_equal(
        load_text(state,
                  "[program:web]\n"
                  "command = /bin/echo %(program_name)s %(group_name)s %(host_node_name)s "
                  "%(here)s %(ENV_FOO)s 100%% [%(process_num)03d|%(process_num)-3d|"
                  "%(program_name)5s|%(program_name).2s|%(numprocs)d|%(process_num)s|"
                  "%(process_num)x]\n"
                  "numprocs = 2\n"
                  "numprocs_start = 10\n"
                  "process_name = %(program_name)s-%(process_num)d\n"
                  "directory = %(here)s\n"
                  "stdout_logfile = %(here)s/%(program_name)s-%(process_num)02d.log\n",
                  &c, &w, err, sizeof(err)),
        0);
    assert_int_equal(c.n_progs, 2);
    p = find(&c, "web-11");
    snprintf(want, sizeof(want), "/bin/echo web web %s %s from-env 100%% [011|11 |  web|we|2|11|b]",
             u.nodename, here);
    assert_string_equal(p->command, want);
    assert_string_equal(p->directory, here);
    snprintf(want, sizeof(want), "%s/web-11.log", here);
    assert_string_equal(p->out.path, want);
    assert_int_equal(p->process_num, 11);
    pbd_config_free(&c);

    /* the program's own environment= defines ENV_X for its other values, and wins */
    assert_int_equal(load_text(state,
                               "[program:a]\n"
                               "environment = PORT=9090,DIR=\"%(here)s\"\n"
                               "command = /bin/a --port=%(ENV_PORT)s --path=%(ENV_PATH)s\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_string_equal(c.progs[0].command, "/bin/a --port=9090 --path=/usr/bin:/bin");
    snprintf(want, sizeof(want), "DIR=%s", here);
    assert_string_equal(c.progs[0].env[1], want);
    pbd_config_free(&c);

    /* %(here)s and ENV_ in [procbusd] too */
    assert_int_equal(load_text(state, "[procbusd]\nsocket = %(here)s/%(ENV_FOO)s.sock\n", &c, &w,
                               err, sizeof(err)),
                     0);
    snprintf(want, sizeof(want), "%s/from-env.sock", here);
    assert_string_equal(c.daemon.socket, want);
    pbd_config_free(&c);

    expect_error(state, "[program:a]\ncommand = /bin/a %(ENV_PBD_NOT_SET)s\n",
                 "t.conf:2: [program:a] command: ", "PBD_NOT_SET is not set");
    expect_error(state, "[program:a]\ncommand = /bin/a %(process)s\n", "command",
                 "unknown expansion %(process)s");
    expect_error(state, "[program:a]\ncommand = /bin/a 50%\n", "command", "'%'");
    expect_error(state, "[program:a]\ncommand = /bin/a %(program_name\n", "command",
                 "unterminated");
    expect_error(state, "[program:a]\ncommand = /bin/a %(program_name)\n", "command",
                 "incomplete format");
    expect_error(state, "[program:a]\ncommand = /bin/a %(program_name)r\n", "command",
                 "unsupported conversion 'r'");
    expect_error(state, "[program:a]\ncommand = /bin/a %(program_name)99999s\n", "command",
                 "too large");
    /* numprocs is known before the instances: process_num cannot be used in it */
    expect_error(state, "[program:a]\ncommand = /bin/a\nnumprocs = %(process_num)d\n",
                 "t.conf:3: [program:a] numprocs: ", "unknown expansion %(process_num)d");
    /* program_name does not exist outside [program:x] */
    expect_error(state, "[procbusd]\nsegment = %(program_name)s\n", "segment",
                 "unknown expansion %(program_name)s");
}

/* ---------------------------------------------------------------- numprocs */

static void test_numprocs(void **state)
{
    struct pbd_config c;
    struct warns w;
    char name[64];
    (void)state;

    load_fixture(&c, "good/laravel_worker.conf", &w);
    assert_int_equal(c.n_progs, 8);
    for (int i = 0; i < 8; i++) {
        const struct pbd_program *p = &c.progs[i];
        char log[64];
        snprintf(name, sizeof(name), "laravel-worker_%02d", i);
        snprintf(log, sizeof(log), "/tmp/laravel-worker_%02d.log", i);
        assert_string_equal(p->name, name);
        assert_string_equal(p->group, "laravel-worker");
        assert_int_equal(p->process_num, i);
        assert_int_equal(p->numprocs, 8);
        assert_string_equal(p->out.path, log);
        assert_null(p->err.path);
        assert_int_equal(p->redirect_stderr, 1);
        assert_int_equal(p->stopwaitsecs, 3600);
        assert_int_equal(p->autorestart, PBD_RESTART_TRUE);
        assert_string_equal(p->user, "nobody");
        assert_string_equal(p->argv[1], "/srv/app/artisan");
    }
    pbd_config_free(&c);

    /* numprocs = 1 with a process_name (without process_num) is fine */
    load_fixture(&c, "good/debian_default.conf", &w);
    assert_non_null(pbd_config_find(&c, "nginx_00"));
    assert_string_equal(pbd_config_find(&c, "nginx_00")->group, "nginx");
    pbd_config_free(&c);
}

/* ----------------------------------------------------------------- includes */

static void test_includes(void **state)
{
    struct pbd_config c;
    struct warns w;
    char dir[PATH_MAX], here[PATH_MAX], want[PATH_MAX + 16];
    const struct pbd_program *p;
    (void)state;

    load_fixture(&c, "good/include_glob.conf", &w);
    print_warns(&w);
    assert_int_equal(w.n, 0);
    assert_int_equal(c.n_progs, 4);
    assert_int_equal(c.n_files, 4);
    assert_contains(c.files[0], "good/include_glob.conf");
    assert_contains(c.files[1], "good/inc/a.conf");
    assert_contains(c.files[2], "good/inc/b.conf");
    assert_contains(c.files[3], "good/other/one.ini");
    assert_null(pbd_config_find(&c, "never"));
    /* definition order: the main file's sections, then the included files' */
    assert_string_equal(c.progs[0].name, "main");
    assert_string_equal(c.progs[1].name, "inc_a");
    assert_string_equal(c.progs[2].name, "inc_b");
    assert_string_equal(c.progs[3].name, "other_one");
    /* %(here)s is each file's own (absolute) folder */
    fixture(dir, sizeof(dir), "good/inc");
    assert_non_null(realpath(dir, here));
    p = find(&c, "inc_a");
    snprintf(want, sizeof(want), "/bin/a %s", here);
    assert_string_equal(p->command, want);
    assert_contains(p->source_file, "good/inc/a.conf");
    assert_int_equal(p->source_line, 1);
    assert_int_equal(find(&c, "inc_b")->n_deps, 2);
    pbd_config_free(&c);

    load_fixture(&c, "good/debian_default.conf", &w);
    assert_int_equal(c.n_progs, 2);
    assert_contains(find(&c, "redis")->source_file, "good/conf.d/redis.conf");
    assert_false(has_warn(&w, "[supervisord]", "ignored")); /* read: logfile, pidfile ... */
    assert_true(has_warn(&w, "[rpcinterface:supervisor]", "ignored"));
    assert_string_equal(c.progs[0].serverurl, "unix:///var/run/supervisor.sock");
    pbd_config_free(&c);
}

static void test_include_loop(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512], path[PATH_MAX];

    load_fixture(&c, "good/include_loop.conf", &w);
    assert_int_equal(c.n_progs, 2);
    assert_int_equal(c.n_files, 2);
    assert_true(has_warn(&w, "loop/b.conf:5: [include] files: ", "include loop"));
    pbd_config_free(&c);

    /* a glob that matches the including file itself */
    put(*state, "x.conf", "[program:x]\ncommand=/bin/x\n", path);
    put(*state, "self.conf", "[include]\nfiles = *.conf\n[program:self]\ncommand=/bin/self\n",
        path);
    assert_int_equal(load(&c, path, &w, err, sizeof(err)), 0);
    assert_int_equal(c.n_progs, 2);
    assert_true(has_warn(&w, "self.conf:2: [include] files: ", "include loop"));
    pbd_config_free(&c);

    /* a file included twice (not a loop) is read once */
    put(*state, "d/one.conf", "[program:one]\ncommand=/bin/one\n", path);
    put(*state, "twice.conf", "[include]\nfiles = d/one.conf d/*.conf\n", path);
    assert_int_equal(load(&c, path, &w, err, sizeof(err)), 0);
    assert_int_equal(c.n_progs, 1);
    assert_true(has_warn(&w, "was read already", NULL));
    pbd_config_free(&c);
}

static void test_include_edges(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[1024], path[PATH_MAX], name[64], text[256];

    /* no match: a warning, as supervisord */
    assert_int_equal(
        load_text(state, "[include]\nfiles = nothing/*.conf\n", &c, &w, err, sizeof(err)), 0);
    assert_true(has_warn(&w, "t.conf:2: [include] files: ", "no file matches"));
    pbd_config_free(&c);

    /* a folder matched by a glob is skipped; an absolute glob works */
    put(*state, "dir.conf/keep", "", path);
    snprintf(text, sizeof(text), "[include]\nfiles = %s/*.conf\n", (char *)*state);
    assert_int_equal(load_text(state, text, &c, &w, err, sizeof(err)), 0);
    assert_true(has_warn(&w, "dir.conf", "is a folder"));
    pbd_config_free(&c);

    /* a chain deeper than the limit */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "chain/c%02d.conf", i);
        snprintf(text, sizeof(text), "[include]\nfiles = c%02d.conf\n[program:p%d]\ncommand=/x\n",
                 i + 1, i);
        put(*state, name, text, path);
    }
    put(*state, "chain/c20.conf", "[program:last]\ncommand=/x\n", path);
    snprintf(path, sizeof(path), "%s/chain/c00.conf", (char *)*state);
    assert_int_equal(load(&c, path, &w, err, sizeof(err)), -EINVAL);
    assert_contains(err, "c16.conf:2: [include] files: includes nested deeper than 16");
    assert_int_equal(c.n_progs, 0);

    /* an [include] with another key warns about it */
    assert_int_equal(load_text(state, "[include]\nfiles = none/*.x\nrecursive = yes\n", &c, &w, err,
                               sizeof(err)),
                     0);
    assert_true(has_warn(&w, "t.conf:3: [include] recursive: ", "unknown key"));
    pbd_config_free(&c);
}

/* --------------------------------------------------------------- environment */

static void test_environment(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512];
    const struct pbd_program *p;

    assert_int_equal(
        load_text(state,
                  "[program:a]\ncommand=/bin/a\n"
                  "environment=A=\"x, y\",B='1 2', C = plain ,D=\"\",E=a=b,F=\"it's\",G='say "
                  "\"hi\"',A=again,URL=http://h:80/p?q=1\n",
                  &c, &w, err, sizeof(err)),
        0);
    p = &c.progs[0];
    assert_string_equal(p->env[0], "A=again"); /* last one wins, first position */
    assert_string_equal(p->env[1], "B=1 2");
    assert_string_equal(p->env[2], "C=plain");
    assert_string_equal(p->env[3], "D=");
    assert_string_equal(p->env[4], "E=a=b");
    assert_string_equal(p->env[5], "F=it's");
    assert_string_equal(p->env[6], "G=say \"hi\"");
    assert_string_equal(p->env[7], "URL=http://h:80/p?q=1");
    assert_null(p->env[8]);
    pbd_config_free(&c);

    /* continuation lines, trailing comma */
    load_fixture(&c, "good/multiline.conf", &w);
    p = find(&c, "multi");
    assert_string_equal(p->env[0], "A=1");
    assert_string_equal(p->env[1], "B=two words");
    assert_string_equal(p->env[2], "C=3");
    assert_null(p->env[3]);
    pbd_config_free(&c);

    /* [supervisord] environment: every program gets it, a program's own wins */
    load_fixture(&c, "good/fixture_env_1170.conf", &w);
    p = find(&c, "echo");
    assert_string_equal(p->argv[2], "echo 'set from [program] section'");
    assert_string_equal(p->env[0], "FOO=set from [program] section");
    assert_string_equal(p->env[1], "BAR=global");
    p = find(&c, "echo_global");
    assert_string_equal(p->argv[2], "echo 'set from [supervisord] section' 'global'");
    assert_string_equal(p->env[0], "FOO=set from [supervisord] section");
    assert_false(has_warn(&w, "[supervisord]", NULL));
    pbd_config_free(&c);

    expect_error(state, "[program:a]\ncommand=/bin/a\nenvironment=A='x\n", "environment",
                 "unterminated single quote");
    expect_error(state, "[program:a]\ncommand=/bin/a\nenvironment==1\n", "environment",
                 "expected KEY=VALUE");
    expect_error(state, "[program:a]\ncommand=/bin/a\nenvironment=A=\"x\"y\n", "environment",
                 "expected ','");
    expect_error(state, "[supervisord]\nenvironment=A=1 B\n[program:a]\ncommand=/bin/a\n",
                 "t.conf:2: [supervisord] environment: ", "expected ','");
}

/* -------------------------------------------------------- syntax, comments */

static void test_syntax(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512];
    const struct pbd_program *p;

    load_fixture(&c, "good/multiline.conf", &w);
    p = find(&c, "multi");
    assert_string_equal(p->command, "/usr/bin/env\n--first\n--second=a;b");
    assert_string_equal(p->argv[1], "--first");
    assert_string_equal(p->argv[2], "--second=a;b");
    assert_null(p->argv[3]);
    assert_int_equal(p->startsecs, 2); /* "STARTSECS : 2" */
    assert_int_equal(p->stopsignal, SIGUSR1);
    p = find(&c, "long");
    assert_true(strlen(p->command) > 200);
    assert_string_equal(p->argv[3], "end");
    assert_non_null(pbd_config_find(&c, "a_program_with_a_rather_long_name_of_fifty_one_chars"));
    pbd_config_free(&c);

    /* BOM, CRLF, ';' and '#' comments only after whitespace, as configparser */
    assert_int_equal(load_text(state,
                               "\xEF\xBB\xBF; comment\r\n"
                               "[program:a] ; after a header\r\n"
                               "command=/bin/a x;y z#w ;c1\r\n"
                               "  # an indented comment line\r\n"
                               "directory=/tmp #c2\r\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_string_equal(c.progs[0].command, "/bin/a x;y z#w");
    assert_string_equal(c.progs[0].directory, "/tmp");
    pbd_config_free(&c);

    /* a key set twice: the later one wins, with a warning */
    assert_int_equal(load_text(state, "[program:a]\ncommand=/bin/a\nstartsecs=1\nstartsecs=7\n", &c,
                               &w, err, sizeof(err)),
                     0);
    assert_int_equal(c.progs[0].startsecs, 7);
    assert_true(has_warn(&w, "t.conf:4: [program:a] startsecs: ", "line 3"));
    pbd_config_free(&c);

    /* a line far beyond inih's 200 bytes, as a key line and as a continuation */
    {
        size_t n = 6000;
        char *text = malloc(n + 256), *q = text;
        q += sprintf(q, "[program:big]\ncommand = /bin/echo ");
        for (size_t i = 0; i < n / 2; i++)
            *q++ = 'x';
        q += sprintf(q, " ; comment\n   ");
        for (size_t i = 0; i < n / 2; i++)
            *q++ = 'y';
        q += sprintf(q, " tail\nstartsecs = 3\n");
        *q = '\0';
        assert_int_equal(load_text(state, text, &c, &w, err, sizeof(err)), 0);
        free(text);
        p = &c.progs[0];
        assert_int_equal(strlen(p->argv[1]), n / 2);
        assert_int_equal(strlen(p->argv[2]), n / 2);
        assert_string_equal(p->argv[3], "tail");
        assert_int_equal(p->startsecs, 3);
        pbd_config_free(&c);
    }

    /* an empty value and a value on continuation lines only */
    assert_int_equal(
        load_text(state, "[program:a]\ncommand =\n  /bin/a\n  -v\n", &c, &w, err, sizeof(err)), 0);
    assert_string_equal(c.progs[0].command, "/bin/a\n-v");
    pbd_config_free(&c);

    expect_error(state, "[program:a]\ncommand=/bin/a\n[]\n", "t.conf:3: ", "empty section name");
    expect_error(state, "[program:a] x\ncommand=/bin/a\n", "t.conf:1: ", "after ']'");
    expect_error(state, "[program:a]\n= value\ncommand=/bin/a\n", "t.conf:2: [program:a]",
                 "without a key");
    expect_error(state, "[program:a]\ncommand=/bin/a\njunk\n", "t.conf:3: [program:a]",
                 "expected 'key = value'");
    {
        static const char bytes[] = "[program:a]\ncommand=/bin/a\n\nx\0y=1\n";
        char path[PATH_MAX];
        FILE *f;
        snprintf(path, sizeof(path), "%s/nul.conf", (char *)*state);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, sizeof(bytes) - 1, f), sizeof(bytes) - 1);
        fclose(f);
        assert_int_equal(load(&c, path, &w, err, sizeof(err)), -EINVAL);
        assert_contains(err, "nul.conf:4: ");
        assert_contains(err, "NUL byte");
    }
}

/* ------------------------------------------------------------- log files */

static void test_logfiles(void **state)
{
    char *env[] = {"HOME=/tmp", NULL};
    struct pbd_config c;
    struct warns w;
    char err[512], path[PATH_MAX];
    const struct pbd_program *p;

    put(*state, "t.conf",
        "[program:a]\ncommand=/bin/a\nstdout_logfile=NONE\nstderr_logfile=off\n"
        "[program:b]\ncommand=/bin/b\nstdout_logfile=AUTO\nstderr_logfile=syslog\n"
        "[program:c]\ncommand=/bin/c\nstdout_logfile=~/c.log\nstderr_logfile=relative.log\n"
        "[program:d]\ncommand=/bin/d\nredirect_stderr=true\nstderr_logfile=/tmp/d.err\n"
        "[program:e]\ncommand=/bin/e\nstdout_logfile=/dev/stdout\n"
        "[program:f]\ncommand=/bin/f\nnumprocs=2\nprocess_name=f%(process_num)d\n"
        "stdout_logfile=/tmp/f.log\n",
        path);
    assert_int_equal(load_env(&c, path, env, &w, err, sizeof(err)), 0);
    print_warns(&w);
    p = find(&c, "a");
    assert_null(p->out.path);
    assert_null(p->err.path);
    p = find(&c, "b");
    assert_string_equal(p->out.path, PBD_LOG_AUTO); /* kept, as supervisord, in childlogdir */
    assert_null(p->err.path);
    assert_false(has_warn(&w, "t.conf:7: [program:b] stdout_logfile: ", NULL));
    assert_true(has_warn(&w, "t.conf:8: [program:b] stderr_logfile: ", "syslog"));
    p = find(&c, "c");
    assert_string_equal(p->out.path, "/tmp/c.log"); /* ~ from HOME */
    assert_string_equal(p->err.path, "relative.log");
    p = find(&c, "d");
    assert_null(p->err.path);
    assert_true(has_warn(&w, "t.conf:16: [program:d] stderr_logfile: ", "redirect_stderr"));
    p = find(&c, "e");
    assert_string_equal(p->out.path, "/dev/stdout");
    assert_true(p->out.maxbytes == 0);
    assert_true(has_warn(&w, "[program:e] stdout_logfile: ", "rotation disabled"));
    assert_true(has_warn(&w, "[program:f] stdout_logfile: ", "same file"));
    /* one warning per section, not per instance */
    {
        int n = 0;
        for (int i = 0; i < w.n; i++)
            n += strstr(w.msg[i], "same file") != NULL;
        assert_int_equal(n, 1);
    }
    pbd_config_free(&c);
}

/* ---------------------------------------------------------------- warnings */

static void test_warnings(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512];

    assert_int_equal(load_text(state,
                               "[unix_http_server]\nfile=/tmp/x.sock\n"
                               "[inet_http_server]\nport=9001\n"
                               "[ctlplugin:x]\nsupervisor.ctl_factory = x\n"
                               "[fcgi-program:f]\ncommand=/bin/f\n"
                               "[program:a]\ncommand=/bin/a | grep x\nstdout_events_enabled=true\n"
                               "stderr_capture_maxbytes=1MB\nserverurl=AUTO\nstderr_syslog=false\n"
                               "frobnicate=yes\n"
                               "[program:b]\ncommand=/bin/b $HOME\n"
                               "[procbusd]\ncolour=blue\n"
                               "[program:c]\ncommand=sh -c 'echo $HOME | tr a b'\n"
                               "[unix_http_server:x]\nchmod=0700\n",
                               &c, &w, err, sizeof(err)),
                     -EINVAL); /* [fcgi-program:f] without socket, as supervisord */
    assert_contains(err, "t.conf:7: [fcgi-program:f] socket: missing");
    assert_int_equal(load_text(state,
                               "[unix_http_server]\nfile=/tmp/x.sock\n"
                               "[inet_http_server]\nport=9001\n"
                               "[ctlplugin:x]\nsupervisor.ctl_factory = x\n"
                               "[fcgi-program:f]\ncommand=/bin/f\nsocket=tcp://127.0.0.1:0\n"
                               "[program:a]\ncommand=/bin/a | grep x\nstdout_events_enabled=true\n"
                               "stderr_capture_maxbytes=1MB\nserverurl=AUTO\nstderr_syslog=false\n"
                               "frobnicate=yes\n"
                               "[program:b]\ncommand=/bin/b $HOME\n"
                               "[procbusd]\ncolour=blue\n"
                               "[program:c]\ncommand=sh -c 'echo $HOME | tr a b'\n"
                               "[unix_http_server:x]\nchmod=0700\n",
                               &c, &w, err, sizeof(err)),
                     0);
    print_warns(&w);
    assert_false(has_warn(&w, "[unix_http_server]: ", NULL)); /* read: SUPERVISOR_SERVER_URL */
    assert_false(has_warn(&w, "[inet_http_server]: ", NULL));
    assert_true(has_warn(&w, "t.conf:5: [ctlplugin:x]: ", "ignored"));
    assert_false(has_warn(&w, "[fcgi-program:f]", NULL));
    assert_false(has_warn(&w, "stdout_events_enabled", NULL)); /* event listeners use them */
    assert_false(has_warn(&w, "stderr_capture_maxbytes", NULL));
    assert_false(has_warn(&w, "serverurl", NULL));
    assert_true(has_warn(&w, "t.conf:15: [program:a] stderr_syslog: ", "ignored"));
    assert_true(has_warn(&w, "t.conf:16: [program:a] frobnicate: ", "unknown key"));
    assert_true(has_warn(&w, "t.conf:11: [program:a] command: ", "'|'"));
    assert_true(has_warn(&w, "t.conf:18: [program:b] command: ", "$HOME"));
    assert_true(has_warn(&w, "t.conf:20: [procbusd] colour: ", "unknown key"));
    assert_false(has_warn(&w, "[program:c]", NULL)); /* sh -c '...': the shell expands it */
    assert_true(has_warn(&w, "t.conf:24: [unix_http_server:x] chmod: ", "ignored"));
    assert_int_equal(c.n_progs, 4);
    /* the words stay plain arguments */
    assert_string_equal(find(&c, "a")->argv[1], "|");
    assert_int_equal(find(&c, "a")->out.events, 1);
    assert_true(find(&c, "a")->err.capture_maxbytes == 1024 * 1024);
    /* supervisord's SUPERVISOR_SERVER_URL: the unix socket first */
    assert_string_equal(find(&c, "a")->serverurl, "unix:///tmp/x.sock");
    assert_int_equal(find(&c, "f")->kind, PBD_KIND_FCGI);
    assert_string_equal(find(&c, "f")->fcgi_socket, "tcp://127.0.0.1:0");
    pbd_config_free(&c);

    /* no warn callback: no crash, same result */
    {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/t.conf", (char *)*state);
        assert_int_equal(pbd_config_load(&c, path, NULL, NULL, 0, NULL, NULL), 0);
        pbd_config_free(&c);
    }
}

/* ------------------------------------------------------------------- files */

static void test_missing_file(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[512], path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/nope.conf", (char *)*state);
    assert_int_equal(load(&c, path, &w, err, sizeof(err)), -ENOENT);
    assert_contains(err, path);
    assert_contains(err, "No such file or directory");
    assert_int_equal(c.n_progs, 0);
    assert_null(c.path);

    assert_int_equal(load(&c, *state, &w, err, sizeof(err)), -EISDIR);
    assert_contains(err, "directory");

    assert_int_equal(load(&c, "", &w, err, sizeof(err)), -EINVAL);
    assert_int_equal(load(&c, NULL, &w, err, sizeof(err)), -EINVAL);

    /* a tiny error buffer is still NUL-terminated */
    assert_int_equal(load(&c, path, &w, err, 8), -ENOENT);
    assert_int_equal(strlen(err), 7);
}

/* --------------------------------------------------------- bad-config corpus */

/*
 * Each tests/config/bad/NAME.conf starts with
 *   ; expect: LINE TOKEN [REASON]
 *   ; expect-file: PATH   (optional: the message names this file, relative to bad/)
 * The load must fail with -EINVAL and a message that holds "FILE:LINE:",
 * TOKEN (the key, or the section for section errors) and REASON.
 */
static int check_bad(const char *path, char *why, size_t wl)
{
    struct pbd_config c;
    struct warns w;
    char err[1024], line[512], token[128] = "", reason[256] = "", efile[PATH_MAX];
    char want[PATH_MAX + 32];
    int eline = 0, r, n = 0;
    FILE *f = fopen(path, "r");

    snprintf(efile, sizeof(efile), "%s", path);
    if (!f) {
        snprintf(why, wl, "cannot open");
        return -1;
    }
    while (n++ < 3 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "; expect: %d %127s", &eline, token) == 2) {
            const char *rest = strstr(line, token) + strlen(token);
            snprintf(reason, sizeof(reason), "%s", rest + (*rest == ' '));
        } else if (!strncmp(line, "; expect-file: ", 15)) {
            char *slash;
            snprintf(efile, sizeof(efile), "%s", path);
            slash = strrchr(efile, '/');
            snprintf(slash + 1, sizeof(efile) - (size_t)(slash + 1 - efile), "%s", line + 15);
        }
    }
    fclose(f);
    if (!eline || !*token) {
        snprintf(why, wl, "no '; expect: LINE TOKEN' first line");
        return -1;
    }
    r = load(&c, path, &w, err, sizeof(err));
    if (r == 0) {
        pbd_config_free(&c);
        snprintf(why, wl, "loaded without error");
        return -1;
    }
    if (c.n_progs || c.progs || c.path) {
        snprintf(why, wl, "the config is not zeroed after an error");
        return -1;
    }
    snprintf(want, sizeof(want), "%s:%d: ", efile, eline);
    if (r != -EINVAL || !strstr(err, want) || !strstr(err, token) || !strstr(err, reason)) {
        snprintf(why, wl, "rc %d, message \"%.600s\", wanted \"%.300s\" + \"%.100s\" + \"%.200s\"",
                 r, err, want, token, reason);
        return -1;
    }
    return 0;
}

static void test_bad_corpus(void **state)
{
    char pattern[PATH_MAX], why[2048];
    glob_t g;
    int failed = 0;
    (void)state;

    fixture(pattern, sizeof(pattern), "bad/*.conf");
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 50);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (check_bad(g.gl_pathv[i], why, sizeof(why)) < 0) {
            print_error("%s: %s\n", g.gl_pathv[i], why);
            failed++;
        }
    }
    print_message("  %zu bad configs checked\n", g.gl_pathc);
    globfree(&g);
    assert_int_equal(failed, 0);
}

/* ----------------------------------------------------- good (real) configs */

static void test_good_corpus(void **state)
{
    char pattern[PATH_MAX], err[1024];
    struct pbd_config c;
    struct warns w;
    glob_t g;
    int failed = 0;
    (void)state;

    fixture(pattern, sizeof(pattern), "good/*.conf");
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 12);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int r = load(&c, g.gl_pathv[i], &w, err, sizeof(err));
        if (r) {
            print_error("%s: %d: %s\n", g.gl_pathv[i], r, err);
            failed++;
        } else if (!c.n_progs) {
            print_error("%s: no program\n", g.gl_pathv[i]);
            failed++;
        }
        pbd_config_free(&c);
    }
    globfree(&g);
    assert_int_equal(failed, 0);
}

static void test_real_configs(void **state)
{
    struct pbd_config c;
    struct warns w;
    const struct pbd_program *p;
    (void)state;

    load_fixture(&c, "good/supervisord_sample.conf", &w);
    p = find(&c, "theprogramname");
    assert_int_equal(p->stopsignal, SIGQUIT);
    assert_int_equal(p->umask, 022);
    assert_int_equal(p->redirect_stderr, 1);
    assert_null(p->err.path); /* NONE */
    assert_true(p->out.maxbytes == 1024 * 1024);
    assert_string_equal(p->env[0], "A=1");
    assert_string_equal(p->group, "thegroupname"); /* [group:thegroupname] programs= */
    assert_string_equal(p->program, "theprogramname");
    assert_string_equal(p->serverurl, "unix:///tmp/supervisor.sock");
    assert_false(has_warn(&w, "stdout_capture_maxbytes", NULL));
    p = find(&c, "theeventlistenername");
    assert_int_equal(p->kind, PBD_KIND_EVENTLISTENER);
    assert_true(p->evl_events == (1ull << PBD_EVT__COUNT) - 1); /* EVENT: every type */
    assert_int_equal(p->evl_buffer_size, 10);
    assert_int_equal(p->priority, 999);      /* as supervisord: the process keeps 999 */
    assert_int_equal(p->group_priority, -1); /* the pool starts first */
    assert_string_equal(p->group, "theeventlistenername");
    assert_string_equal(c.daemon.logfile, "/tmp/supervisord.log");
    assert_string_equal(c.daemon.pidfile, "/tmp/supervisord.pid");
    assert_int_equal(c.daemon.minfds, 1024);
    pbd_config_free(&c);

    load_fixture(&c, "good/fixture_percent_986.conf", &w);
    assert_string_equal(c.progs[0].argv[2],
                        "echo 'dhcrelay -d -q -a %h:%p %P -i Vlan1000 192.168.0.1'");
    pbd_config_free(&c);

    load_fixture(&c, "good/fixture_misc.conf", &w);
    assert_string_equal(find(&c, "produce-unicode-error")->argv[2], "echo -e \"\\x88\"");
    assert_non_null(pbd_config_find(&c, "test_\xc3\xb6\xc3\xa4\xc3\xbc"));
    assert_contains(find(&c, "nonexistent")->argv[0], "/tests/config/good/nonexistent");
    assert_int_equal(c.n_progs, 4); /* and [eventlistener:fatalexit] */
    assert_int_equal(find(&c, "fatalexit")->kind, PBD_KIND_EVENTLISTENER);
    assert_true(find(&c, "fatalexit")->evl_events == 1ull << PBD_EVT_PROCESS_STATE_FATAL);
    assert_int_equal(c.daemon.log_level, 3); /* [supervisord] loglevel = debug */
    pbd_config_free(&c);

    load_fixture(&c, "good/docker.conf", &w);
    p = find(&c, "nginx");
    assert_string_equal(p->argv[2], "daemon off;");
    assert_string_equal(p->env[0], "HOME=/home/pbd-tester");
    assert_string_equal(p->env[1], "PORT=8080");
    assert_string_equal(find(&c, "gunicorn")->argv[2], "0.0.0.0:8080");
    assert_string_equal(find(&c, "php-fpm")->err.path, "/dev/stderr");
    pbd_config_free(&c);

    load_fixture(&c, "good/celery.conf", &w);
    p = find(&c, "celery");
    assert_int_equal(p->stopwaitsecs, 600);
    assert_int_equal(p->stopasgroup, 1);
    assert_int_equal(p->killasgroup, 1);
    assert_int_equal(p->priority, 1000);
    assert_string_equal(p->out.path, p->err.path);
    pbd_config_free(&c);

    load_fixture(&c, "good/procbusd_deps.conf", &w);
    p = find(&c, "report");
    assert_int_equal(p->shell, 1);
    assert_string_equal(p->argv[0], "/bin/sh");
    assert_string_equal(p->argv[1], "-c");
    assert_string_equal(p->argv[2], "/srv/app/bin/report | gzip > /tmp/report.gz");
    assert_null(p->argv[3]);
    assert_false(has_warn(&w, "'|'", NULL)); /* shell = true: no "no shell" warning */
    assert_string_equal(p->deps[0].name, "app");
    assert_int_equal(find(&c, "app-1")->ready_fd, 3);
    assert_string_equal(find(&c, "app-1")->argv[2], ":1808");
    pbd_config_free(&c);
}

/* ------------------------------------------------------------ dependencies */

static void test_dependencies(void **state)
{
    struct pbd_config c;
    struct warns w;
    char err[1024];

    /* a diamond, and a dependency on a group and on one instance: no cycle */
    assert_int_equal(load_text(state,
                               "[program:a]\ncommand=/a\ndepends_on=b, c:started\n"
                               "[program:b]\ncommand=/b\ndepends_on=d\n"
                               "[program:c]\ncommand=/c\ndepends_on=d:completed,w,w_1:ready,\n"
                               "[program:d]\ncommand=/d\n"
                               "[program:w]\ncommand=/w\nnumprocs=2\nready_fd=3\n"
                               "process_name=w_%(process_num)d\n",
                               &c, &w, err, sizeof(err)),
                     0);
    assert_int_equal(find(&c, "c")->n_deps, 3);
    assert_int_equal(find(&c, "c")->deps[2].cond, PBD_DEP_READY);
    pbd_config_free(&c);

    expect_error(state,
                 "[program:a]\ncommand=/a\ndepends_on=b\n"
                 "[program:b]\ncommand=/b\ndepends_on=c\n"
                 "[program:c]\ncommand=/c\ndepends_on=b\n",
                 "t.conf:6: [program:b] depends_on: ", "dependency cycle: b -> c -> b");
    expect_error(state, "[program:a]\ncommand=/a\ndepends_on=:ready\n", "depends_on",
                 "without a program name");
    expect_error(state, "[program:a]\ncommand=/a\ndepends_on=b c\n[program:b]\ncommand=/b\n",
                 "depends_on", "invalid program name 'b c'");
    expect_error(state,
                 "[program:a]\ncommand=/a\ndepends_on=b1,b2,b3,b4,b5,b6,b7,b8,b9,b10,b11,b12,b13,"
                 "b14,b15,b16,b17\n",
                 "depends_on", "more than 16");
}

/* ---------------------------------------------------------- program_same */

static void test_program_same(void **state)
{
    struct pbd_config c1, c2;
    struct warns w;
    char err[512];
    struct pbd_program a, b;
    const char *text = "[program:a]\ncommand=/bin/a -x\nenvironment=A=1,B=2\nuser=nobody\n"
                       "directory=/tmp\nready_log=up\n";

    assert_int_equal(load_text(state, text, &c1, &w, err, sizeof(err)), 0);
    assert_int_equal(load_text(state,
                               "[program:a]\ncommand=/bin/a -x\nenvironment=B=2,A=1\nuser=nobody\n"
                               "directory=/tmp\nready_log=up\npriority=1\nstopsignal=KILL\n"
                               "startsecs=9\nautorestart=false\n",
                               &c2, &w, err, sizeof(err)),
                     0);
    /* env order and supervision-only keys do not matter */
    assert_true(pbd_program_same(&c1.progs[0], &c2.progs[0]));
    assert_true(pbd_program_same(&c1.progs[0], &c1.progs[0]));

    assert_int_equal(pbd_program_copy(&a, &c1.progs[0]), 0);
    assert_true(pbd_program_same(&a, &c1.progs[0]));
    assert_ptr_not_equal(a.argv, c1.progs[0].argv);
    assert_ptr_not_equal(a.env[0], c1.progs[0].env[0]);

#define DIFFERS(mutation)                              \
    do {                                               \
        assert_int_equal(pbd_program_copy(&b, &a), 0); \
        mutation;                                      \
        assert_false(pbd_program_same(&a, &b));        \
        assert_false(pbd_program_same(&b, &a));        \
        pbd_program_clear(&b);                         \
    } while (0)
    DIFFERS(b.argv[1][1] = 'y');
    DIFFERS(free(b.argv[1]); b.argv[1] = NULL);
    DIFFERS(b.shell = 1);
    DIFFERS(b.command[0] = 'X');
    DIFFERS(free(b.directory); b.directory = NULL);
    DIFFERS(b.env[1][2] = '3');
    DIFFERS(free(b.env[1]); b.env[1] = NULL);
    DIFFERS(free(b.user); b.user = strdup("root"));
    DIFFERS(b.umask = 022);
    DIFFERS(b.redirect_stderr = 1);
    DIFFERS(free(b.out.path); b.out.path = strdup("/tmp/x.log"));
    DIFFERS(b.err.maxbytes = 1);
    DIFFERS(b.out.backups = 1);
    DIFFERS(b.ready_fd = 3);
    DIFFERS(free(b.ready_log); b.ready_log = NULL);
    DIFFERS(b.name[0] = 'z');
    DIFFERS(b.process_num = 4);
#undef DIFFERS
    pbd_program_clear(&a);
    assert_null(a.argv);
    pbd_program_clear(&a); /* twice: fine */
    pbd_config_free(&c1);
    pbd_config_free(&c2);
    pbd_config_free(&c2);
}

/* ---------------------------------------------------------- split_command */

static void test_split_command(void **state)
{
    static const struct {
        const char *cmd;
        const char *argv[8];
    } ok[] = {
        {"a", {"a"}},
        {"  a   b\tc\n d  ", {"a", "b", "c", "d"}},
        {"sh -c 'exec foo \"$1\"; echo done'", {"sh", "-c", "exec foo \"$1\"; echo done"}},
        {"echo \"a b\" 'c d' e\\ f", {"echo", "a b", "c d", "e f"}},
        {"x''y \"\" ''", {"xy", "", ""}},
        {"a\"b\"'c'd", {"abcd"}},
        {"\"\\$HOME \\\" \\\\ \\n\"", {"$HOME \" \\ \\n"}},
        {"'\\n' \\'", {"\\n", "'"}},
        {"a \\\n b", {"a", "b"}},
        {"\"a\\\nb\"", {"ab"}},
        {"a | b > c 2>&1", {"a", "|", "b", ">", "c", "2>&1"}},
        {"\\ ", {" "}},
        {"caf\xc3\xa9 \"\xc3\xb6\"", {"caf\xc3\xa9", "\xc3\xb6"}},
    };
    static const struct {
        const char *cmd, *why;
    } bad[] = {
        {"", "empty command"},
        {" \t\n", "empty command"},
        {NULL, "empty command"},
        {"\\\n", "empty command"},
        {"a 'b", "unterminated single quote"},
        {"a \"b\\\"", "unterminated double quote"},
        {"a \\", "trailing backslash"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *why = "unset";
        char **v = pbd_split_command(ok[i].cmd, &why);
        size_t k;
        if (!v)
            fail_msg("split(%s): %s", ok[i].cmd, why);
        for (k = 0; ok[i].argv[k]; k++) {
            if (!v[k] || strcmp(v[k], ok[i].argv[k]))
                fail_msg("split(%s)[%zu] = '%s', wanted '%s'", ok[i].cmd, k, v[k] ? v[k] : "NULL",
                         ok[i].argv[k]);
        }
        assert_null(v[k]);
        pbd_free_argv(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        assert_null(pbd_split_command(bad[i].cmd, &why));
        assert_non_null(why);
        assert_string_equal(why, bad[i].why);
        assert_null(pbd_split_command(bad[i].cmd, NULL));
    }
    pbd_free_argv(NULL);
}

/* ---------------------------------------------------------- signal_number */

static void test_signal_number(void **state)
{
    (void)state;
    assert_int_equal(pbd_signal_number("TERM"), SIGTERM);
    assert_int_equal(pbd_signal_number("SIGTERM"), SIGTERM);
    assert_int_equal(pbd_signal_number("term"), SIGTERM);
    assert_int_equal(pbd_signal_number("SigTerm"), SIGTERM);
    assert_int_equal(pbd_signal_number("15"), SIGTERM);
    assert_int_equal(pbd_signal_number("HUP"), SIGHUP);
    assert_int_equal(pbd_signal_number("INT"), SIGINT);
    assert_int_equal(pbd_signal_number("SIGQUIT"), SIGQUIT);
    assert_int_equal(pbd_signal_number("KILL"), SIGKILL);
    assert_int_equal(pbd_signal_number("USR1"), SIGUSR1);
    assert_int_equal(pbd_signal_number("SIGUSR2"), SIGUSR2);
    assert_int_equal(pbd_signal_number("WINCH"), SIGWINCH);
    assert_int_equal(pbd_signal_number("CHLD"), SIGCHLD);
    assert_int_equal(pbd_signal_number("RTMIN"), SIGRTMIN);
    assert_int_equal(pbd_signal_number("SIGRTMAX"), SIGRTMAX);
    assert_int_equal(pbd_signal_number("1"), 1);
    assert_int_equal(pbd_signal_number("64"), 64);
    assert_int_equal(pbd_signal_number("0"), -1);
    assert_int_equal(pbd_signal_number("65"), -1);
    assert_int_equal(pbd_signal_number("-15"), -1);
    assert_int_equal(pbd_signal_number("15x"), -1);
    assert_int_equal(pbd_signal_number("99999999999999999999"), -1);
    assert_int_equal(pbd_signal_number("SIG"), -1);
    assert_int_equal(pbd_signal_number("TERMINATE"), -1);
    assert_int_equal(pbd_signal_number(""), -1);
    assert_int_equal(pbd_signal_number(NULL), -1);
}

/* ---------------------------------------------------------------- misc API */

static void test_api_edges(void **state)
{
    struct pbd_config c;
    struct pbd_program p;
    (void)state;

    memset(&c, 0, sizeof(c));
    pbd_config_free(&c);
    pbd_config_free(NULL);
    memset(&p, 0, sizeof(p));
    pbd_program_clear(&p);
    pbd_program_clear(NULL);
    assert_null(pbd_config_find(&c, "x"));
    assert_null(pbd_config_find(NULL, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_killasgroup_default, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test_setup_teardown(test_value_spellings, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_expansions, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_numprocs),
        cmocka_unit_test(test_includes),
        cmocka_unit_test_setup_teardown(test_include_loop, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_include_edges, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_environment, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_syntax, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_logfiles, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_warnings, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_bad_corpus),
        cmocka_unit_test(test_good_corpus),
        cmocka_unit_test(test_real_configs),
        cmocka_unit_test_setup_teardown(test_dependencies, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_program_same, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_split_command),
        cmocka_unit_test(test_signal_number),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
