/* test_cli.c - the procbus reading subcommands (ps/get/watch/wait/logs) against a live procbusd. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus.h"
#include "daemon_harness.h"
#include "support.h"

/* Start procbusd with a chatty `web` program (20 log lines) plus `body`. */
static void start_daemon(struct daemon_h *h, const char *body)
{
    char conf[4096];

    snprintf(conf, sizeof(conf),
             "[program:web]\ncommand = sh -c 'i=0; while [ $i -lt 20 ]; do echo line$i; "
             "i=$((i+1)); done; exec sleep 1000'\nstdout_logfile = %%(here)s/web.log\n"
             "stderr_logfile = NONE\nstartsecs = 0\n%s",
             body);
    pbt_start_daemon(h, "/tmp/pbcli-test", conf);
}

static void stop_daemon(struct daemon_h *h)
{
    assert_int_equal(pbt_term_daemon(h), 0);
    procbus_close(&h->r);
}

/* Run `procbus -s SEG -S SOCK ARGS`, stdout into DIR/out, stderr into DIR/err; exit code. */
static int cli(struct daemon_h *h, const char *args)
{
    char redir[256];

    snprintf(redir, sizeof(redir), ">%s/out 2>%s/err", h->dir, h->dir);
    return pbt_cli(h, args, redir);
}

/* The whole of a file, NUL-terminated (caller frees); asserts it can be read. */
static char *slurp(const char *path)
{
    char *s = pbt_slurp(path, NULL);
    assert_non_null(s);
    return s;
}

static char *out_of(struct daemon_h *h, const char *which)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", h->dir, which);
    return slurp(path);
}

static int cli_contains(struct daemon_h *h, const char *which, const char *needle)
{
    char *s = out_of(h, which);
    int found = strstr(s, needle) != NULL;
    if (!found)
        fprintf(stderr, "expected '%s' in %s:\n%s\n", needle, which, s);
    free(s);
    return found;
}

static void wait_state(struct daemon_h *h, const char *name, uint16_t state)
{
    char args[128];
    snprintf(args, sizeof(args), "wait %s --state %s --timeout 60s", name,
             procbus_state_name(state));
    assert_int_equal(cli(h, args), 0);
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_string));
    return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *key)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

static int jbool(struct json_object *o, const char *key)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_boolean));
    return json_object_get_boolean(v);
}

static int jnull(struct json_object *o, const char *key)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    return v == NULL;
}

/* The record fields a JSON process object must carry, checked against the reader's copy. */
static void check_proc_json(struct json_object *o, const struct procbus_proc *p)
{
    struct json_object *argv;
    const char *states[] = {"UNKNOWN",  "STOPPED", "STARTING", "RUNNING", "BACKOFF",
                            "STOPPING", "EXITED",  "FATAL",    "READY"};

    assert_string_equal(jstr(o, "name"), p->name);
    assert_int_equal(jint(o, "id"), (int64_t)p->id);
    assert_int_equal(jint(o, "program_id"), (int64_t)p->program_id);
    assert_int_equal(jint(o, "pid"), p->pid);
    assert_int_equal(jint(o, "pgid"), p->pgid);
    assert_string_equal(jstr(o, "state"), states[p->state]);
    assert_int_equal(jint(o, "restarts"), p->restarts);
    assert_int_equal(jint(o, "start_realtime_ns"), (int64_t)p->start_realtime_ns);
    assert_int_equal(jint(o, "state_since_ns"), (int64_t)p->state_since_ns);
    assert_string_equal(jstr(o, "comm"), p->comm);
    assert_true(jint(o, "cpu_ns") >= 0);
    assert_true(jint(o, "rss_bytes") >= 0);
    assert_int_equal(jbool(o, "descendant"), (p->flags & PROCBUS_F_DESCENDANT) != 0);
    assert_true(json_object_object_get_ex(o, "cmdline", &argv));
    assert_true(json_object_is_type(argv, json_type_array));
    if (p->cmdline_len > 0) {
        assert_true(json_object_array_length(argv) >= 1);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(argv, 0)), p->cmdline);
    }
}

/* ---- tests ---- */

static void test_ps_get_wait(void **state)
{
    struct daemon_h h;
    struct procbus_proc web, done, bad;
    struct json_object *root, *procs;
    char args[128], *s;
    int seen = 0;
    (void)state;

    start_daemon(&h, "[program:manual]\ncommand = sleep 1000\nautostart = false\n"
                     "[program:bad]\ncommand = sh -c 'exit 1'\nstartsecs = 1\nstartretries = 0\n"
                     "[program:done]\ncommand = sh -c 'exit 3'\nstartsecs = 0\n"
                     "autorestart = false\n");
    /* wait: success, already-there, FATAL, timeout, no such program, usage */
    wait_state(&h, "web", PROCBUS_STATE_RUNNING);
    wait_state(&h, "bad", PROCBUS_STATE_FATAL);
    wait_state(&h, "done", PROCBUS_STATE_EXITED);
    assert_int_equal(cli(&h, "wait web --state RUNNING --timeout 0"), 0);
    assert_int_equal(cli(&h, "wait bad --state RUNNING --timeout 60s"), 6);
    assert_int_equal(cli(&h, "wait manual --state RUNNING --timeout 300ms"), 5);
    assert_true(cli_contains(&h, "err", "still STOPPED"));
    assert_int_equal(cli(&h, "wait nosuch --state RUNNING"), 4);
    assert_int_equal(cli(&h, "wait web --state BOGUS"), 2);
    assert_int_equal(cli(&h, "wait web --state RUNNING --timeout 3x"), 2);

    assert_int_equal(procbus_get_name(&h.r, "web", &web), 0);
    assert_int_equal(procbus_get_name(&h.r, "done", &done), 0);
    assert_int_equal(procbus_get_name(&h.r, "bad", &bad), 0);

    /* ps: a table with a header and one line per program */
    assert_int_equal(cli(&h, "ps"), 0);
    s = out_of(&h, "out");
    assert_non_null(strstr(s, "NAME"));
    assert_non_null(strstr(s, "STATE"));
    assert_non_null(strstr(s, "RUNNING"));
    assert_non_null(strstr(s, "FATAL"));
    assert_non_null(strstr(s, "manual"));
    assert_null(strchr(s, '\033')); /* not a tty: no colours */
    for (char *line = s; line != NULL && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        size_t len = strcspn(line, "\n");
        assert_true(len <= 80); /* not a terminal: fits 80 columns */
    }
    free(s);
    assert_int_equal(cli(&h, "ps -o name,pid,state --sort pid"), 0);
    s = out_of(&h, "out");
    assert_true(strncmp(s, "NAME", 4) == 0);
    assert_null(strstr(s, "RSS"));
    free(s);
    assert_int_equal(cli(&h, "ps -o name,pid,state --sort cpu"), 0);
    assert_int_equal(cli(&h, "ps --tree --all"), 0);
    assert_int_equal(cli(&h, "ps -o name,bogus"), 2);
    assert_int_equal(cli(&h, "ps --sort bogus"), 2);

    /* ps --json: parsed back, field by field */
    assert_int_equal(cli(&h, "ps --json"), 0);
    s = out_of(&h, "out");
    root = json_tokener_parse(s);
    free(s);
    assert_non_null(root);
    assert_string_equal(jstr(root, "liveness"), "alive");
    assert_int_equal(jint(root, "publisher_pid"), h.pid);
    assert_true(json_object_object_get_ex(root, "processes", &procs));
    assert_int_equal(json_object_array_length(procs), 4);
    for (size_t i = 0; i < json_object_array_length(procs); i++) {
        struct json_object *p = json_object_array_get_idx(procs, i);
        const char *name = jstr(p, "name");
        if (strcmp(name, "web") == 0) {
            check_proc_json(p, &web);
            assert_true(jbool(p, "running"));
            assert_string_equal(jstr(p, "exit_kind"), "none");
            assert_true(jnull(p, "exit_code"));
            seen |= 1;
        } else if (strcmp(name, "done") == 0) {
            check_proc_json(p, &done);
            assert_false(jbool(p, "running"));
            assert_string_equal(jstr(p, "exit_kind"), "code");
            assert_int_equal(jint(p, "exit_code"), 3);
            assert_string_equal(jstr(p, "exit_text"), "exit status 3");
            seen |= 2;
        } else if (strcmp(name, "bad") == 0) {
            check_proc_json(p, &bad);
            assert_string_equal(jstr(p, "state"), "FATAL");
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    json_object_put(root);

    /* get: by name and by pid, text and JSON */
    assert_int_equal(cli(&h, "get web --json"), 0);
    s = out_of(&h, "out");
    root = json_tokener_parse(s);
    free(s);
    assert_non_null(root);
    check_proc_json(root, &web);
    json_object_put(root);
    snprintf(args, sizeof(args), "get %d", web.pid);
    assert_int_equal(cli(&h, args), 0);
    assert_true(cli_contains(&h, "out", "name:          web"));
    assert_true(cli_contains(&h, "out", "state:         RUNNING"));
    assert_true(cli_contains(&h, "out", "cmdline:       sh -c i=0;"));
    assert_int_equal(cli(&h, "get done"), 0);
    assert_true(cli_contains(&h, "out", "exit status 3"));
    assert_int_equal(cli(&h, "get nosuch"), 4);
    assert_true(cli_contains(&h, "err", "no program or process 'nosuch'"));
    assert_int_equal(cli(&h, "get"), 2);

    /* --help everywhere, usage errors */
    assert_int_equal(cli(&h, "ps --help"), 0);
    assert_true(cli_contains(&h, "out", "usage: procbus ps"));
    assert_int_equal(cli(&h, "get --help"), 0);
    assert_true(cli_contains(&h, "out", "usage: procbus get"));
    assert_int_equal(cli(&h, "watch --help"), 0);
    assert_true(cli_contains(&h, "out", "usage: procbus watch"));
    assert_int_equal(cli(&h, "wait --help"), 0);
    assert_true(cli_contains(&h, "out", "usage: procbus wait"));
    assert_int_equal(cli(&h, "logs --help"), 0);
    assert_true(cli_contains(&h, "out", "usage: procbus"));
    assert_int_equal(cli(&h, "status --help"), 0);

    /* no segment: exit 4 and a hint */
    {
        char exe[256], cmd[1024];
        int st;
        snprintf(cmd, sizeof(cmd), "%s -s pbt-no-such-segment ps >/dev/null 2>%s/err",
                 pbt_bin("procbus", exe, sizeof(exe)), h.dir);
        st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 4);
        assert_true(cli_contains(&h, "err", "is procbusd running?"));
    }

    /* after a shutdown, reading commands say so */
    stop_daemon(&h);
    assert_int_equal(cli(&h, "ps"), 0);
    assert_true(cli_contains(&h, "err", "shut down"));
}

/* Start `procbus ARGS` in the background with stdout into `out`. */
static pid_t spawn_cli(struct daemon_h *h, const char *out, const char *const *args)
{
    char exe[256];
    const char *argv[16];
    int n = 0;
    pid_t pid;

    pbt_bin("procbus", exe, sizeof(exe));
    argv[n++] = exe;
    argv[n++] = "-s";
    argv[n++] = h->seg;
    for (int i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    pbt_track_bg(pid, 1);
    return pid;
}

static void forget_bg(pid_t pid)
{
    pbt_track_bg(pid, 0);
}

/* How often `needle` occurs in the file at `path`. */
static int count_in(const char *path, const char *needle)
{
    char *s = slurp(path), *pos;
    int n = 0;

    for (pos = s; (pos = strstr(pos, needle)) != NULL; pos++)
        n++;
    free(s);
    return n;
}

static void test_watch_sees_every_transition(void **state)
{
    static const char *const text_args[] = {"watch", "--from-start", "manual", NULL};
    static const char *const json_args[] = {"watch", "--json", "--from-start", "manual", NULL};
    static const char *const all_args[] = {"watch", NULL};
    static const char *const want[] = {
        "STOPPED -> STARTING", "STARTING -> RUNNING", "RUNNING -> STOPPING", "STOPPING -> STOPPED",
        "STOPPED -> STARTING", "STARTING -> RUNNING", "RUNNING -> STOPPING", "STOPPING -> STOPPED"};
    struct daemon_h h;
    char tpath[160], jpath[160], apath[160], *s, *line, *save = NULL;
    pid_t tw, jw, aw;
    int i = 0;
    (void)state;

    start_daemon(&h, "[program:manual]\ncommand = sleep 1000\nautostart = false\n"
                     "startsecs = 0\n");
    snprintf(tpath, sizeof(tpath), "%s/watch.txt", h.dir);
    snprintf(jpath, sizeof(jpath), "%s/watch.json", h.dir);
    snprintf(apath, sizeof(apath), "%s/watch-all.txt", h.dir);
    /* --from-start: the watchers see the whole scenario however late they start */
    tw = spawn_cli(&h, tpath, text_args);
    jw = spawn_cli(&h, jpath, json_args);
    aw = spawn_cli(&h, apath, all_args);
    assert_int_equal(cli(&h, "start manual"), 0);
    assert_int_equal(cli(&h, "stop manual"), 0);
    assert_int_equal(cli(&h, "start manual"), 0);
    assert_int_equal(cli(&h, "stop manual"), 0);
    /* wait until both watchers have printed all eight transitions (no timing assumption) */
    for (int tries = 0; tries < 3000; tries++) {
        if (count_in(tpath, " -> ") >= 8 && count_in(jpath, "\"kind\":\"state\"") >= 8)
            break;
        usleep(20000);
    }
    kill(tw, SIGINT);
    kill(jw, SIGINT);
    assert_int_equal(pbt_wait_child(tw), 0);
    assert_int_equal(pbt_wait_child(jw), 0);
    forget_bg(tw);
    forget_bg(jw);

    s = slurp(tpath);
    for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        assert_non_null(strstr(line, " manual "));
        if (strstr(line, " -> ") == NULL) { /* --from-start also shows "manual added STOPPED" */
            if (strstr(line, " manual exec sleep pid ") != NULL)
                continue; /* the tracer saw its exec */
            assert_non_null(strstr(line, " manual added "));
            continue;
        }
        assert_true(i < 8);
        assert_non_null(strstr(line, want[i]));
        i++;
    }
    assert_int_equal(i, 8);
    free(s);

    /* the JSON lines parse and carry the same transitions in order */
    s = slurp(jpath);
    i = 0;
    save = NULL;
    for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        struct json_object *o = json_tokener_parse(line);
        char tr[64];
        assert_non_null(o);
        assert_string_equal(jstr(o, "name"), "manual");
        if (strcmp(jstr(o, "kind"), "state") != 0) {
            if (strcmp(jstr(o, "kind"), "exec") == 0) { /* the tracer saw its exec */
                json_object_put(o);
                continue;
            }
            assert_string_equal(jstr(o, "kind"), "add");
            json_object_put(o);
            continue;
        }
        assert_true(jint(o, "seq") >= 0);
        assert_true(jint(o, "time_ns") > 0);
        assert_true(jint(o, "pid") >= 0); /* STARTING may precede the fork */
        snprintf(tr, sizeof(tr), "%s -> %s", jstr(o, "old_state"), jstr(o, "new_state"));
        assert_true(i < 8);
        assert_string_equal(tr, want[i]);
        if (strstr(want[i], "-> STOPPED") != NULL) {
            assert_string_equal(jstr(o, "exit_kind"), "signal");
            assert_string_equal(jstr(o, "exit_signal"), "SIGTERM");
        }
        json_object_put(o);
        i++;
    }
    assert_int_equal(i, 8);
    free(s);

    /* a watcher without --from-start ends (exit 0) when procbusd shuts down */
    stop_daemon(&h);
    assert_int_equal(pbt_wait_child(aw), 0);
    forget_bg(aw);
    s = slurp(apath);
    assert_non_null(strstr(s, "procbusd has shut down"));
    free(s);
}

static void test_logs(void **state)
{
    struct daemon_h h;
    char path[160], exe[256], cmd[1024], *s;
    int st;
    (void)state;

    start_daemon(&h, "[program:quiet]\ncommand = sleep 1000\nautostart = false\n"
                     "[program:none]\ncommand = sleep 1000\nautostart = false\n"
                     "stdout_logfile = NONE\nstderr_logfile = NONE\n");
    wait_state(&h, "web", PROCBUS_STATE_RUNNING);
    snprintf(path, sizeof(path), "%s/web.log", h.dir);
    for (int tries = 0; tries < 3000; tries++) { /* until all 20 lines are written */
        s = slurp(path);
        st = strstr(s, "line19\n") != NULL;
        free(s);
        if (st)
            break;
        usleep(20000);
    }
    snprintf(cmd, sizeof(cmd), "-c %s logs web -n 3", h.conf);
    assert_int_equal(cli(&h, cmd), 0);
    s = out_of(&h, "out");
    assert_string_equal(s, "line17\nline18\nline19\n");
    free(s);
    snprintf(cmd, sizeof(cmd), "-c %s logs web", h.conf);
    assert_int_equal(cli(&h, cmd), 0);
    s = out_of(&h, "out");
    assert_true(strncmp(s, "line10\n", 7) == 0); /* default: 10 lines */
    free(s);
    /* $PROCBUS_CONFIG instead of -c */
    snprintf(cmd, sizeof(cmd), "PROCBUS_CONFIG=%s %s logs web -n 1 >%s/out 2>&1", h.conf,
             pbt_bin("procbus", exe, sizeof(exe)), h.dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(cli_contains(&h, "out", "line19\n"));
    /* AUTO (quiet's default) is a file of its own, as supervisord's: it exists, empty */
    snprintf(cmd, sizeof(cmd), "-c %s logs quiet", h.conf);
    assert_int_equal(cli(&h, cmd), 0);
    /* without a configuration, procbusd says where the logs are */
    assert_int_equal(cli(&h, "logs web -n 1"), 0);
    assert_true(cli_contains(&h, "out", "line19\n"));
    /* no log file at all / no such program */
    snprintf(cmd, sizeof(cmd), "-c %s logs none", h.conf);
    assert_int_equal(cli(&h, cmd), 1);
    assert_true(cli_contains(&h, "err", "no log file"));
    snprintf(cmd, sizeof(cmd), "-c %s logs nosuch", h.conf);
    assert_int_equal(cli(&h, cmd), 4);
    snprintf(cmd, sizeof(cmd), "-c %s logs web -n x", h.conf);
    assert_int_equal(cli(&h, cmd), 2);
    stop_daemon(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ps_get_wait, pbt_teardown),
        cmocka_unit_test_teardown(test_watch_sees_every_transition, pbt_teardown),
        cmocka_unit_test_teardown(test_logs, pbt_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
